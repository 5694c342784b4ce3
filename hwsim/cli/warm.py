"""``python -m hwsim.cli.warm``: compile every numba kernel the first commands use into the on-disk cache.

Numba compiles a kernel on its first call for each signature (the dtypes and layouts of its arguments) and
keeps the machine code in its cache (:mod:`hwsim.sim.kernels`); a first ``hwsim run`` on a fresh install
therefore spends most of its time compiling. Run once after installing (the Makefile does), this module makes
those calls on tiny inputs, so the first real command loads every kernel from the cache:

* the engine's layer kernels, serial and (where numba may use two threads or more) parallel, for every weight
  type the engine passes: float32 (float mode: dense, conv, pool), int8 (fixed dense, mixed signs), uint8
  (fixed dense, one sign) and int16 (fixed conv and pool); the recurrent kernels (recurrent LIF and ALIF layers,
  dense ALIF layers; fixed point with input and recurrent weights of mixed signs, of one sign, and one of each);
  the spike scans;
* the on-chip learning kernels: every graph-kernel rule on a dense, a conv and a recurrent (LIF, and ALIF in float)
  network, in float and fixed point, through :class:`hwsim.learning.learner.OnChipLearner` (as ``hwsim study`` and
  ``hwsim estimate --rules`` do); e-prop through :class:`hwsim.learning.eprop.EpropLearner`;
* the cost model's kernels: every chip profile priced once (the detailed NoC timing model included).

Each part prints its seconds; a part that fails prints one line naming it and the exit status is 1. Results of
the tiny runs are discarded. ``--quiet`` prints only failures.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

import hwsim.sim.threads  # first: the OpenMP wait policy, before numba starts its threads

DENSE_SPEC = "16-12-10-4"  # two hidden layers: every rule (TTL-BPTT blocks, STDL's auxiliary networks) applies
CONV_SPEC = "2x6x6-c3k3p1-p2-c4k3p1-8-4"  # conv, sum pool, conv, flatten, dense: every layer kind
RECURRENT_SPEC = "16-r12-r10-4"  # recurrent layers (float: the second one adaptive, see _recurrent_networks)
RECURRENT_ALIF_SPEC = "16-a12-4"  # an ALIF recurrent layer (float only)
EPROP_CASES = (("8-r6-3", "float", "per_synapse"), ("8-a6-3", "float", "per_synapse"),
               ("8-r6-3", "float", "per_neuron"), ("8-r6-3", "fixed", "per_neuron"))  # e-prop: spec, precision, form
STEPS, BATCH = 3, 2


def _networks(mode: str) -> list:
    """Tiny networks covering every layer kind and weight type of ``mode``: dense and conv (fixed mode: dense
    weights of mixed signs, int8, and of one sign, uint8; conv and pool, int16)."""
    from hwsim.sim.network import Dense, from_spec

    dense, conv = from_spec(DENSE_SPEC, mode, seed=1), from_spec(CONV_SPEC, mode, seed=1)
    one_sign = from_spec(DENSE_SPEC, mode, seed=2)
    for layer in one_sign.layers:
        if isinstance(layer, Dense):
            layer.weight = np.abs(layer.weight)
    return [dense, conv, one_sign]


def _recurrent_networks(mode: str) -> list:
    """Tiny recurrent networks of ``mode``: float, a recurrent LIF, a recurrent ALIF and a dense ALIF layer; fixed,
    every pair of 8-bit storage types of input and recurrent weights (int8 mixed signs, uint8 one sign)."""
    from hwsim.sim.network import Dense, FloatALIF, Network, Recurrent, from_spec

    network = from_spec(RECURRENT_SPEC, mode, seed=1)
    if mode == "float":
        first, second, last = network.layers
        adaptive = FloatALIF(lam=second.neuron.lam)
        return [Network(16, [first, Recurrent(second.weight, second.recurrent, neuron=adaptive),
                             Dense(last.weight, neuron=adaptive)])]
    networks = [network]
    for one_sign in ((True, True), (True, False), (False, True)):
        layers = []
        for layer in network.layers:
            if isinstance(layer, Recurrent):
                w, r = (np.abs(m) if flag else m for m, flag in zip((layer.weight, layer.recurrent), one_sign))
                layer = Recurrent(w, r, neuron=layer.neuron, weight_exp=layer.weight_exp)
            layers.append(layer)
        networks.append(Network(16, layers))
    return networks


def _inputs(network, seed: int = 0) -> np.ndarray:
    from hwsim.sim.engine import bernoulli

    return bernoulli((STEPS, BATCH, *network.input_shape), 0.5, seed=seed)


def warm_engine() -> None:
    """The layer kernels (serial and parallel) and spike scans, float and fixed, every layer kind and weight type."""
    import numba

    from hwsim.sim.engine import Engine
    from hwsim.sim.kernels.synapses import scan_events, scan_events_serial

    parallel = numba.get_num_threads() > 1  # the engine's parallel kernels never run on one thread
    for mode in ("float", "fixed"):
        for network in _networks(mode) + _recurrent_networks(mode):
            x = _inputs(network)
            # the engine's default on these tiny inputs: the serial kernels (Engine(threads=1) would run the
            # parallel ones on a one-item split whenever numba has two threads or more)
            Engine(network).run(x, record=True)
            if parallel:
                Engine(network, threads=2).run(x, record=True)
                Engine(network, threads=2 * BATCH).run(x, record=True)  # output blocks: the spike scan
    spikes = np.zeros((STEPS, BATCH, 8), np.uint8)
    scan_events_serial(spikes)
    if parallel:
        scan_events(spikes)


def warm_learning() -> None:
    """Every graph-kernel rule on a dense, a conv and a recurrent network, float and fixed point (the recurrent
    network's ALIF variant in float): a batch and an evaluation; e-prop's learner on a recurrent LIF and ALIF
    network (float, per synapse and per neuron) and in ReckOn's fixed point (per neuron)."""
    from hwsim.learning.eprop import EpropLearner
    from hwsim.learning.learner import ON_CHIP_RULES, OnChipLearner, accuracy
    from hwsim.sim.network import from_spec

    labels = np.arange(BATCH) % 4
    for spec in (DENSE_SPEC, CONV_SPEC, RECURRENT_SPEC, RECURRENT_ALIF_SPEC):
        for rule in ON_CHIP_RULES:
            for precision in ("float",) if spec == RECURRENT_ALIF_SPEC else ("float", "fixed"):
                network = from_spec(spec, "float", seed=1)
                learner = OnChipLearner(network, rule, precision=precision, batch_size=BATCH)
                x = _inputs(network, seed=3)
                learner.train_batch(x, labels)
                accuracy(learner, np.moveaxis(x, 0, 1), labels)
    for spec, precision, eligibility in EPROP_CASES:
        network = from_spec(spec, "float", seed=1)
        EpropLearner(network, precision=precision, eligibility=eligibility).train_batch(_inputs(network, seed=3),
                                                                                         labels[:BATCH] % 3)


def warm_costs() -> None:
    """Every chip profile prices a tiny fixed-point run (the mapping and both timing models)."""
    from hwsim import chips
    from hwsim.hardware.cost import estimate
    from hwsim.sim.engine import Engine

    network = _networks("fixed")[0]
    counts = Engine(network).run(_inputs(network)).counts
    for name in chips.names():
        estimate(network, counts, chips.load(name))


PARTS: dict[str, Callable[[], None]] = {"engine kernels": warm_engine, "learning kernels": warm_learning,
                                        "cost model kernels": warm_costs}


def warm(parts: tuple[str, ...] = tuple(PARTS), log: Callable[[str], None] = print) -> dict[str, float | None]:
    """Run the warm-up ``parts`` (names of :data:`PARTS`); returns seconds per part, None for a part that failed
    (its error logged in one line)."""
    hwsim.sim.threads.set_threads(min(2, hwsim.sim.threads.available_threads()))  # the parallel kernels too
    seconds: dict[str, float | None] = {}
    for name in parts:
        start = time.perf_counter()
        try:
            PARTS[name]()
        except Exception as err:  # noqa: BLE001 -- a warm-up names what failed and goes on with the rest
            seconds[name] = None
            log(f"hwsim.cli.warm: {name} failed: {type(err).__name__}: {err}")
            continue
        seconds[name] = time.perf_counter() - start
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwsim.cli.warm", description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="print only failures")
    parser.add_argument("--part", action="append", choices=list(PARTS), help="only this part (repeatable)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    seconds = warm(tuple(args.part or PARTS), log=lambda line: print(line, file=sys.stderr))
    if not args.quiet:
        for name, spent in seconds.items():
            print(f"{name}: {'failed' if spent is None else f'{spent:.1f} s'}")
        print(f"numba kernels cached in {time.perf_counter() - started:.1f} s")
    return 1 if any(spent is None for spent in seconds.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
