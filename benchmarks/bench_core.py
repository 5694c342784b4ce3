"""Core speed, side by side in one run: hwsim (float, fixed) vs Lava fixed_pt vs a plain torch loop.

Network 784-512-512-10 (``hwsim.sim.network.from_spec``, seed 0), T = 100, Bernoulli input at 5 % and 20 %.
Every contender runs on one core (``hwsim.sim.threads.set_threads(1)``: numba kernels and torch on one thread;
Lava is timed as it runs, with its own processes); hwsim is also timed on all threads (``--threads``,
default all cores). Reported per contender:

* synaptic events/s -- the SOPs of that run (hwsim's exact count for the same network and input; for the
  torch loop, the SOPs an event-driven core would do for the same work) per second of wall time;
* steps/s -- simulated time steps per second (all batch samples advance together);
* ratios against torch (same batch) and, for fixed mode, against Lava (batch 1);
* the counting overhead: hwsim float against the same event propagation and LIF with no counter at all;
* the thread speed-up of hwsim (all threads / 1 thread, timed alternately for at least ``THREAD_SECONDS``,
  best of each), target >= 1.7x at batch 64 on two
  cores or more (runs below ``hwsim.sim.engine.PARALLEL_MIN_WORK`` neuron updates, batch 1 here, stay on one
  thread: the speed-up there is 1 by design);
* recurrent against dense: the G SOP/s of the recurrent layer of 256-r512-10 beside those of the dense layer of
  256-512-10 (each layer's own SOPs over its own wall time, ``Engine.layer_seconds``, best of at least
  ``BEST_SECONDS`` of alternating runs), float and fixed, batch 1 and 64, one core. Dense baselines: the dense
  layer on the same 5 % input (fewer SOPs per step: no spikes fed back); the dense layer at the same activity (an
  input rate giving it as many presynaptic events per step as the recurrent layer gets, its input spikes plus
  its own spikes fed back; a third of the synapses, so its rows stay in cache more); and the target's baseline,
  a dense layer of the same synapses (512 x (256 + 512): the input and the recurrent weights side by side) fed
  the same events (the input, and the recurrent layer's own spikes of the step before): the same weight rows
  read in the same order, so the ratio is the per-SOP speed of the recurrent kernel against the dense one.
  Target: within 30 % (``--recurrent-only`` runs just this part);
* peak memory of 4096-4096-4096-10, T = 100, batch 64 at 5 % input (``from_spec``, ``bernoulli``,
  ``Engine.run``, in a fresh process): peak resident set size (everything, including Python, numba and the
  loaded kernels; target < 350 MB) and the tracemalloc peak of the arrays numpy allocates (the engine's
  event buffers are anonymous memory outside numpy's allocator: only in the resident figure).

Lava is timed after a one-step warm-up run (graph compilation and process start-up excluded), with no
monitors. hwsim is timed on a built :class:`hwsim.sim.engine.Engine` after one warm-up call (kernel load
excluded). Best of at least ``--repeats`` runs and ``BEST_SECONDS`` of running, for hwsim and torch alike.

    python benchmarks/bench_core.py [--json FILE] [--repeats N] [--skip-lava] [--threads N] [--recurrent-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import hwsim.sim.threads  # noqa: E402, F401, I001  (first: the OpenMP wait policy, before torch and numba start)

import numba as nb
import numpy as np
import torch


from alternate import StealMeter, alternate_best, best_within  # noqa: E402
from hwsim.sim.engine import Engine, bernoulli  # noqa: E402
from hwsim.sim.kernels.synapses import dense_events, emit_events, scan_events  # noqa: E402
from hwsim.sim.network import Dense, FloatLIF, Network, from_spec  # noqa: E402
from hwsim.sim.threads import available_threads, set_threads  # noqa: E402

SPEC, STEPS = "784-512-512-10", 100
TARGETS = {"float_b1_gsops": 5.0, "fixed_vs_lava": 100.0, "torch_b1": 8.0, "torch_b64": 2.0, "threads_b64": 1.7,
           "peak_mb": 350.0, "recurrent_vs_dense": 0.7, "counting_overhead_b1": 0.15}
RECURRENT_SPEC, DENSE_SPEC, RECURRENT_RATE = "256-r512-10", "256-512-10", 0.05
THREAD_SECONDS = 4.0  # 1 and all threads alternate for at least this long (each keeps its best run)
BEST_SECONDS = 1.0  # every other timing: best run of at least --repeats runs and this many seconds
MEMORY_SCRIPT = """
import resource, sys, tracemalloc
sys.path.insert(0, {root!r})
from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.network import from_spec
from hwsim.sim.threads import set_threads
set_threads({threads})
Engine(from_spec("8-8-8")).run(bernoulli((2, 1, 8), 0.5))  # load the kernels
tracemalloc.start()
network = from_spec("4096-4096-4096-10")
Engine(network).run(bernoulli((100, 64, 4096), 0.05, seed=1))
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(peak, tracemalloc.get_traced_memory()[1] / 2**20)
"""


def peak_memory(threads: int) -> tuple[float, float]:
    """(peak RSS MB, tracemalloc peak MB) of the 4096-4096-4096-10 run in a fresh process."""
    code = MEMORY_SCRIPT.format(root=str(Path(__file__).resolve().parents[1]), threads=threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def best_of(fn, repeats: int) -> float:
    """Best wall time of at least ``repeats`` runs and ``BEST_SECONDS`` of running (the first runs after a
    switch of work are often slow on a shared machine; every contender gets the same time)."""
    return best_within(fn, repeats, BEST_SECONDS)[0]


def interleaved(first, second, repeats: int, setups=(None, None), min_seconds: float = 0.0) -> tuple[float, float]:
    """Best wall time of each of two callables, run alternately (see ``alternate.alternate_best``)."""
    (one, _), (two, _) = alternate_best((first, second), repeats, min_seconds, setups)
    return one, two


def steal_note(fraction: float | None) -> str:
    """`` (steal N %)``: CPU time the hypervisor gave to other guests while the threads were timed."""
    return "" if fraction is None else f"  (steal {fraction:.0%} of this machine's CPU time meanwhile)"


def torch_loop(network: Network, x: torch.Tensor) -> torch.Tensor:
    """The same float LIF network as a plain torch loop over time (dense matmuls); returns output spikes."""
    weights = [torch.from_numpy(layer.weight) for layer in network.layers]
    neuron: FloatLIF = network.layers[0].neuron
    lam, vth = neuron.lam, neuron.v_th
    with torch.no_grad():
        u = [torch.zeros(x.shape[1], w.shape[0]) for w in weights]
        s = [torch.zeros_like(ui) for ui in u]
        out = []
        for t in range(x.shape[0]):
            inp = x[t]
            for k, w in enumerate(weights):
                u[k] = lam * (u[k] - vth * s[k]) + inp @ w.T
                s[k] = (u[k] >= vth).float()
                inp = s[k]
            out.append(inp)
    return torch.stack(out)


@nb.njit(cache=True)
def _bare_float_layer(in_off, in_events, w2d, lam, v_th, steps, batch):
    """The float layer without any counter: the same event propagation, LIF and spike output (dense and as
    events), for the overhead check."""
    n_out = w2d.shape[1]
    s_out = np.zeros((steps, batch, n_out), np.uint8)
    out_off = np.zeros(batch * steps + 1, np.int64)
    out_events = np.empty(max(16, in_events.shape[0]), np.int32)
    fired = np.zeros(n_out, np.uint8)
    acc = np.zeros(n_out, np.float32)
    u = np.zeros(n_out, np.float32)
    s = np.zeros(n_out, np.float32)
    count = 0
    for b in range(batch):
        u[:] = 0.0
        s[:] = 0.0
        for t in range(steps):
            slot = b * steps + t
            acc[:] = 0.0
            dense_events(in_events, in_off[slot], in_off[slot + 1], w2d, acc)
            for i in range(n_out):
                u[i] = lam * (u[i] - v_th * s[i]) + acc[i]
                spike = u[i] >= v_th
                s[i] = np.float32(1.0) if spike else np.float32(0.0)
                fired[i] = spike
                s_out[t, b, i] = spike
            out_events, count = emit_events(fired, out_events, count)
            out_off[slot + 1] = count
    return out_off, out_events


def bare_run(network: Network, x: np.ndarray) -> None:
    """Run the float network through the uncounted kernels (weights already transposed)."""
    steps, batch = x.shape[:2]
    off, events = scan_events(np.ascontiguousarray(x.reshape(steps, batch, -1)))
    for layer, w2d in zip(network.layers, network._bare_weights):
        off, events = _bare_float_layer(off, events, w2d, np.float32(layer.neuron.lam), np.float32(layer.neuron.v_th),
                                        steps, batch)


def time_lava(network: Network, x: np.ndarray) -> float:
    from lava.magma.core.run_conditions import RunSteps

    from hwsim.formats.lava import build_lava, fixed_pt_config

    warm = np.concatenate([np.zeros((1, x.shape[1]), x.dtype), x])  # one warm-up step, then T steps
    source, _ = build_lava(network, warm, probe_state=False, monitor_spikes=False)
    try:
        source.run(condition=RunSteps(num_steps=1), run_cfg=fixed_pt_config())
        start = time.perf_counter()
        source.run(condition=RunSteps(num_steps=x.shape[0]), run_cfg=fixed_pt_config())
        return time.perf_counter() - start
    finally:
        source.stop()


def layer_best(runs: list[tuple[Engine, np.ndarray]], repeats: int) -> list[float]:
    """Best wall seconds of the first layer of each ``(engine, input)`` run, the runs alternating (at least
    ``repeats`` rounds and ``2 * BEST_SECONDS``, so that machine noise hits them alike), the layer's time as the
    engine measures it (``Engine.layer_seconds``)."""
    best = [float("inf")] * len(runs)
    started, rounds = time.perf_counter(), 0
    while rounds < repeats or time.perf_counter() - started < 2 * BEST_SECONDS:
        for k, (engine, x) in enumerate(runs):
            engine.run(x)
            best[k] = min(best[k], engine.layer_seconds[0])
        rounds += 1
    return best


def _layer_entry(engine: Engine, x: np.ndarray, rate: float) -> dict:
    """SOPs, recurrent SOPs, input and output rate of the first layer of ``engine`` on ``x``."""
    engine.run(x[:2])
    layer = engine.run(x).counts.layers[0]
    steps, batch = x.shape[:2]
    return {"sop": layer.total("sop"), "sop_recurrent": layer.total("sop_recurrent"), "rate_in": rate,
            "rate_out": layer.total("spikes_out") / (steps * batch * layer.n_out)}


def recurrent_vs_dense(repeats: int) -> list[dict]:
    """The recurrent layer of ``RECURRENT_SPEC`` against the dense layer of ``DENSE_SPEC``, on the same input and
    at the same activity (module docstring): SOPs, rates and G SOP/s of each, float and fixed, batch 1 and 64,
    on the current thread count."""
    rows = []
    for mode in ("float", "fixed"):
        rec_layer = from_spec(RECURRENT_SPEC, mode).layers[0]  # each layer alone: its spikes kept alike
        recurrent = Engine(Network(256, [rec_layer]))
        dense = Engine(Network(256, [from_spec(DENSE_SPEC, mode).layers[0]]))
        side_by_side = np.concatenate([rec_layer.weight, rec_layer.recurrent], axis=1)
        stacked = Engine(Network(256 + rec_layer.n_out, [Dense(side_by_side, neuron=rec_layer.neuron,
                                                               weight_exp=rec_layer.weight_exp)]))
        for batch in (1, 64):
            x = bernoulli((STEPS, batch, 256), RECURRENT_RATE, seed=1)
            entry = {"mode": mode, "batch": batch, "recurrent": _layer_entry(recurrent, x, RECURRENT_RATE),
                     "dense": _layer_entry(dense, x, RECURRENT_RATE)}
            matched = min(1.0, entry["recurrent"]["sop"] / rec_layer.n_out / (STEPS * batch * 256))
            x_matched = bernoulli((STEPS, batch, 256), matched, seed=1)
            entry["dense_same_activity"] = _layer_entry(dense, x_matched, matched)
            own = recurrent.run(x, record="spikes").spikes[0]
            x_same = np.concatenate([x, np.concatenate([np.zeros_like(own[:1]), own[:-1]])], axis=2)
            entry["dense_same_synapses"] = _layer_entry(stacked, x_same, float(x_same.mean()))
            if mode == "float":  # same sums, same order of rows: the same spikes
                assert np.array_equal(stacked.run(x_same).output, recurrent.run(x).output)
            timed = layer_best([(recurrent, x), (dense, x), (dense, x_matched), (stacked, x_same)], repeats)
            for name, seconds in zip(("recurrent", "dense", "dense_same_activity", "dense_same_synapses"), timed):
                entry[name].update(seconds=seconds, gsops=entry[name]["sop"] / seconds / 1e9)
            entry["ratio"] = entry["recurrent"]["gsops"] / entry["dense_same_synapses"]["gsops"]
            entry["ratio_same_activity"] = entry["recurrent"]["gsops"] / entry["dense_same_activity"]["gsops"]
            rows.append(entry)
    return rows


def print_recurrent(rows: list[dict]) -> list[tuple]:
    """Print the recurrent-vs-dense table; returns its target checks ``(name, value, target)``."""
    print(f"\nrecurrent vs dense layer, {RECURRENT_SPEC} vs {DENSE_SPEC}, T={STEPS}, input {RECURRENT_RATE:.0%}, "
          f"one core (each layer's SOPs / its wall time)\n")
    print(f"{'mode':<5}  {'batch':>5}  {'layer':<21}  {'rate_in':>7}  {'SOP':>10}  {'of them rec.':>12}  "
          f"{'rate_out':>8}  {'ms':>8}  {'G SOP/s':>8}")
    checks = []
    names = {"recurrent": "recurrent", "dense": "dense, same input", "dense_same_activity": "dense, same activity",
             "dense_same_synapses": "dense, same synapses"}
    for entry in rows:
        for key, name in names.items():
            e = entry[key]
            print(f"{entry['mode']:<5}  {entry['batch']:>5}  {name:<21}  {e['rate_in']:7.3f}  {e['sop']:>10}  "
                  f"{e['sop_recurrent']:>12}  {e['rate_out']:8.3f}  {e['seconds'] * 1e3:8.2f}  {e['gsops']:8.2f}")
        print(f"{'':<14}recurrent / dense G SOP/s: {entry['ratio']:.2f} (same synapses and events), "
              f"{entry['ratio_same_activity']:.2f} (256-512 at the same activity)")
        checks.append((f"recurrent / dense G SOP/s, {entry['mode']} b{entry['batch']}", entry["ratio"],
                       TARGETS["recurrent_vs_dense"]))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions for hwsim and torch")
    parser.add_argument("--skip-lava", action="store_true", help="leave Lava out (it takes a while)")
    parser.add_argument("--threads", type=int, default=None, help="'all threads' count (default: all cores)")
    parser.add_argument("--recurrent-only", action="store_true", help="only the recurrent-vs-dense comparison")
    args = parser.parse_args()
    threads = set_threads(args.threads or available_threads())  # every core, busy or not (not the default)
    set_threads(1)
    recurrent_rows = recurrent_vs_dense(args.repeats)
    recurrent_checks = print_recurrent(recurrent_rows)
    if args.recurrent_only:
        for name, value, target in recurrent_checks:
            print(f"  {'met ' if value >= target else 'MISS'}  {name:<34} {value:9.2f}  (>= {target:g})")
        if args.json:
            Path(args.json).write_text(json.dumps({"recurrent_vs_dense": recurrent_rows}, indent=2))
        return

    float_net, fixed_net = from_spec(SPEC, "float"), from_spec(SPEC, "fixed")
    float_net._bare_weights = [np.ascontiguousarray(layer.weight.T) for layer in float_net.layers]
    engines = {"float": Engine(float_net), "fixed": Engine(fixed_net)}
    rows, results = [], {"network": SPEC, "timesteps": STEPS, "machine": platform.processor() or platform.machine(),
                         "cpu_count": os.cpu_count(), "runs": []}
    for rate in (0.05, 0.20):
        for batch in (1, 64):
            x = bernoulli((STEPS, batch, 784), rate, seed=1)
            entry = {"rate": rate, "batch": batch}
            for mode, engine in engines.items():
                engine.run(x[:2])
                result = engine.run(x)
                sops = result.counts.total("sop")
                seconds = best_of(lambda engine=engine, x=x: engine.run(x), args.repeats)
                entry[mode] = {"seconds": seconds, "sop": sops, "sops_per_s": sops / seconds,
                               "steps_per_s": STEPS / seconds}
                if threads > 1:  # 1 and all threads alternately, so that machine noise hits both alike
                    with StealMeter() as steal:
                        one, many = interleaved(lambda engine=engine, x=x: engine.run(x),
                                                lambda engine=engine, x=x: engine.run(x), 5 * args.repeats,
                                                setups=(lambda: set_threads(1), lambda: set_threads(threads)),
                                                min_seconds=THREAD_SECONDS)
                    set_threads(1)
                    entry[mode].update({"seconds_all_threads": many, "thread_speedup": one / many,
                                        "steal_during_threads": steal.fraction})
            bare_run(float_net, x[:2])
            counted, bare = interleaved(lambda x=x: engines["float"].run(x), lambda x=x: bare_run(float_net, x),
                                        3 * args.repeats, min_seconds=BEST_SECONDS)
            entry["bare_float"] = {"seconds": bare, "steps_per_s": STEPS / bare}
            entry["counting_overhead"] = counted / bare - 1.0
            xt = torch.from_numpy(x.astype(np.float32))
            torch_out = torch_loop(float_net, xt)
            seconds = best_of(lambda xt=xt: torch_loop(float_net, xt), args.repeats)
            sops = entry["float"]["sop"]
            agree = float((torch_out.numpy().astype(np.uint8) == engines["float"].run(x).output).mean())
            entry["torch"] = {"seconds": seconds, "sops_per_s": sops / seconds, "steps_per_s": STEPS / seconds,
                              "output_agreement": agree}
            if batch == 1 and not args.skip_lava:
                seconds = time_lava(fixed_net, x[:, 0])
                entry["lava"] = {"seconds": seconds, "sops_per_s": entry["fixed"]["sop"] / seconds,
                                 "steps_per_s": STEPS / seconds}
                entry["fixed_vs_lava"] = entry["fixed"]["steps_per_s"] / entry["lava"]["steps_per_s"]
            entry["float_vs_torch"] = entry["float"]["steps_per_s"] / entry["torch"]["steps_per_s"]
            entry["fixed_vs_torch"] = entry["fixed"]["steps_per_s"] / entry["torch"]["steps_per_s"]
            results["runs"].append(entry)
            for name in ("float", "fixed", "torch", "lava"):
                if name in entry:
                    rows.append((f"{rate:.0%}", batch, name, entry[name]["sops_per_s"] / 1e9,
                                 entry[name]["steps_per_s"]))
            print(f"rate {rate:.0%} batch {batch}: float {entry['float']['sops_per_s'] / 1e9:.2f} G SOP/s, "
                  f"float/torch {entry['float_vs_torch']:.1f}x"
                  + (f", fixed/lava {entry['fixed_vs_lava']:.0f}x" if "fixed_vs_lava" in entry else ""),
                  flush=True)

    print(f"\n{SPEC}, T={STEPS}, one core (hwsim all-thread figures below)\n")
    print(f"{'input':>5}  {'batch':>5}  {'engine':<6}  {'G SOP/s':>8}  {'steps/s':>10}")
    for rate, batch, name, gsops, steps in rows:
        print(f"{rate:>5}  {batch:>5}  {name:<6}  {gsops:8.3f}  {steps:10.1f}")
    print("\nratios (targets in brackets)")
    checks = []
    for entry in results["runs"]:
        tag = f"{entry['rate']:.0%}, batch {entry['batch']}"
        print(f"  {tag:<15} hwsim float / torch {entry['float_vs_torch']:6.1f}x   "
              f"hwsim fixed / torch {entry['fixed_vs_torch']:6.1f}x"
              + (f"   hwsim fixed / Lava {entry['fixed_vs_lava']:8.0f}x" if "fixed_vs_lava" in entry else ""))
        if entry["batch"] == 1:
            checks.append((f"float G SOP/s at batch 1, {entry['rate']:.0%}",
                           entry["float"]["sops_per_s"] / 1e9, TARGETS["float_b1_gsops"]))
            if "fixed_vs_lava" in entry:
                checks.append((f"fixed / Lava steps/s, {entry['rate']:.0%}", entry["fixed_vs_lava"],
                               TARGETS["fixed_vs_lava"]))
        if entry["rate"] == 0.05:
            key = "torch_b1" if entry["batch"] == 1 else "torch_b64"
            checks.append((f"float / torch, batch {entry['batch']}, 5%", entry["float_vs_torch"], TARGETS[key]))
    print("\ncounting overhead (hwsim float Engine.run, all counters and Python bookkeeping, vs the same kernels "
          "with no counter)")
    for entry in results["runs"]:
        print(f"  {entry['rate']:.0%}, batch {entry['batch']:>2}: {entry['counting_overhead']:+.1%}")
    if threads > 1:
        print(f"\nthread speed-up of hwsim ({threads} threads / 1 thread; batch 1 stays on one thread by design)")
        for entry in results["runs"]:
            print(f"  {entry['rate']:.0%}, batch {entry['batch']:>2}: float {entry['float']['thread_speedup']:.2f}x, "
                  f"fixed {entry['fixed']['thread_speedup']:.2f}x{steal_note(entry['float']['steal_during_threads'])}")
            if entry["batch"] >= 16:
                checks.append((f"float {threads} threads / 1, batch {entry['batch']}, {entry['rate']:.0%}",
                               entry["float"]["thread_speedup"], TARGETS["threads_b64"],
                               entry["float"]["steal_during_threads"]))
    print_recurrent(recurrent_rows)
    results["recurrent_vs_dense"] = recurrent_rows
    checks.extend(recurrent_checks)
    rss, traced = peak_memory(threads)
    results["memory"] = {"peak_rss_mb": rss, "tracemalloc_peak_mb": traced}
    print(f"\npeak memory, 4096-4096-4096-10, T=100, batch 64, 5 % input: {rss:.0f} MB resident (whole process), "
          f"{traced:.0f} MB numpy arrays (tracemalloc; the engine's event buffers are anonymous memory it does not "
          f"see, resident only where written and inside the resident figure)")
    print("\ntargets")
    checks = [check if len(check) == 4 else (*check, None) for check in checks]
    for name, value, target, steal in checks:
        note = "" if steal is None else f"  steal {steal:.0%} meanwhile"
        print(f"  {'met ' if value >= target else 'MISS'}  {name:<34} {value:9.2f}  (>= {target:g}){note}")
    print(f"  {'met ' if rss < TARGETS['peak_mb'] else 'MISS'}  {'peak resident MB, 4096x3, batch 64':<34} "
          f"{rss:9.0f}  (< {TARGETS['peak_mb']:g})")
    results["targets"] = [{"name": n, "value": v, "target": t, "met": v >= t, "steal": st} for n, v, t, st in checks]
    results["targets"].append({"name": "peak resident MB", "value": rss, "target": TARGETS["peak_mb"],
                               "met": rss < TARGETS["peak_mb"]})
    for entry in results["runs"]:  # counting at nearly no cost at batch 1 (an upper bound, so printed apart)
        if entry["batch"] == 1:
            overhead, limit = entry["counting_overhead"], TARGETS["counting_overhead_b1"]
            name = f"counting overhead, batch 1, {entry['rate']:.0%}"
            print(f"  {'met ' if overhead <= limit else 'MISS'}  {name:<34} {overhead:+9.1%}  (<= {limit:+.0%})")
            results["targets"].append({"name": name, "value": overhead, "target": limit, "met": overhead <= limit})
    print("(steal: CPU time this machine's hypervisor gave to other guests while 1 and all threads were timed)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
