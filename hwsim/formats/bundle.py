"""``hwsim export``: a trained network -> Lava, netx and NIR files, golden spikes, and the proof.

Files written to the output folder:

* ``network.npz`` -- the fixed-point network (hwsim format); ``quantization.json`` -- the quantisation report
  (scales, clipped values, accuracy before and after on the data);
* ``model.net`` -- netx HDF5 for lava-dl; ``model.nir`` -- NIR graph for other frameworks;
* ``golden.npz`` -- ``input`` (T', n_in) 0/1 spikes (the data's first sample, padded with one silent step
  per layer for Lava's delays) and ``layer<i>`` (T', n_i) output spikes of every layer from hwsim's fixed
  mode; any backend can check itself against them;
* ``run_lava.py`` -- builds the Lava process graph (``RingBuffer -> Dense -> LIF ...``; a recurrent layer's LIF
  also fed by a ``Dense`` from its own ``s_out``) from ``network.npz`` and runs it on ``golden.npz`` under
  ``Loihi2SimCfg(select_tag="fixed_pt")``;
* with ``--verify``: ``verify.json`` -- per layer, whether Lava's spikes equal hwsim's, step for step;
* with ``--learning``: ``learning.json`` -- the read-out layer trained in Lava by an OTTT-like three-factor
  ``LearningDense`` rule on the golden sample, against hwsim's fixed-point OTTT prediction (correlation of the
  weight changes, ``hwsim.formats.lava_learning``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwsim.formats.lava_child import run_isolated
from hwsim.safeio import atomic_path, atomic_write
from hwsim.sim.engine import simulate
from hwsim.sim.network import Network, NetworkError, load, save

RUN_LAVA = (Path(__file__).with_name("run_lava_template.py")).read_text()


GOLDEN_META = {
    "format": "hwsim-golden", "layout": "input (T, n_in) and layer<i> (T, n_i) 0/1 spikes, hwsim (C, H, W) order",
    "delay_steps_per_synapse": 1,
    "timing": "Lava fixed_pt (and hwsim fixed mode): input column t reaches layer 0 at step t+1 and a spike of "
              "layer k at step t moves layer k+1 at step t+1, so layer k lags the input k+1 steps (a recurrent "
              "layer's own spikes of step t reach it at step t+1); the input ends with one silent step per layer. A "
              "delay-free simulator (NIR readers) reproduces layer<i> when a one-step delay is inserted before every "
              "feed-forward synapse (a recurrent loop is a one-step delay by itself); without it, layer k comes k+1 "
              "steps early (exactly so only when no layer has a bias).",
}

README = """# hwsim export

| file | what |
|---|---|
| `network.npz` | the fixed-point network (hwsim format; `hwsim run --net network.npz`) |
| `quantization.json` | how the float network was quantised, accuracy before and after |
| `model.net` | netx HDF5 for lava-dl (`lava.lib.dl.netx.hdf5.Network(net_config="model.net")`) |
| `model.nir` | NIR graph (snnTorch, spikingjelly, ... `nir.read("model.nir")`) |
| `golden.npz` | `input` and every layer's spikes `layer<i>`, (T, n) 0/1, from hwsim's fixed mode = Lava fixed_pt |
| `run_lava.py` | builds the Lava processes with lava-nc and numpy only and checks them against `golden.npz` |

**Units (NIR).** Weights, biases and thresholds are in units of synaptic input (the integer Lava's Dense/Conv
sends, weights times 2**weight_exp); time constants in seconds with `dt` = graph metadata `dt` (1e-4 s);
a neuron spikes when v > v_threshold and resets to 0. `v_threshold` is Lava's `vth` plus 63/4096: Lava's
integer membrane fires from `vth` + 1/64 on, and a float reader keeps the fraction of a 1/64 grain that Lava's
decay truncates, so a threshold just below the next grain makes the float readers decide as Lava does.

**Neurons.** du = 4095 (no current memory): `LIF` with `tau = dt*4096/dv`, `r = tau/dt`, bias in the synapse
node. dv = 0 (no leak) is written as a `LIF` with `tau = 2**50 dt` (a leak below float precision) because
snnTorch 1.0 reads `nir.IF` as a leaky neuron (beta 0.9) and wants `r = 1` while spikingjelly wants
`r = 1/dt`. du < 4095: `CubaLIF` (`tau_syn = dt*4096/(du+1)`, `w_in = tau_syn/dt`, `v_leak = 0`); its bias is
a current in the synapse node, `bias * (1 - alpha)` with `alpha = (4095 - du)/4096` -- the readers refuse
`v_leak` -- which equals Lava's voltage bias once the current has settled (its first steps differ by
`bias * alpha**(t+1)`).

**Timing.** Lava adds one step per connection: layer k's spikes at step t move layer k+1 at step t+1, and
input column t reaches layer 0 at step t+1, so layer k lags the input by k+1 steps (`golden.npz` `meta`
says so; its input ends with one silent step per layer). NIR has no delays: a NIR simulator reproduces
`layer<k>` when a one-step delay is put before every synapse node; run without it, its layer k is k+1 steps
early (exactly so only for networks without biases, which act from the first step).

**Recurrent layers.** In Lava (`run_lava.py`) a recurrent layer is its `LIF` fed by two `Dense` processes into
the same `a_in`: the input weights from the layer below and the recurrent weights from the `LIF`'s own `s_out`
(one `weight_exp`; each Dense shifts its own sum). In NIR it is the synapse `Affine` into the neuron node plus a
recurrent loop, neuron -> `Linear` (`<layer>.recurrent`, the recurrent weights in units of synaptic input) ->
the same neuron, as snnTorch writes `RLeaky`; the loop is itself the one-step delay of Lava's recurrent Dense, so
a delayed reader inserts its one-step delay before the feed-forward synapse nodes only. In netx it is a
`dense_rec` layer (`weight`, `weight_rec`), which lava-dl 0.6.0 builds as its `RecurrentDense` block.

**Readers.** Checked end to end (no layer fed the golden input) over 200+ steps: a numpy reading of NIR's
equations, snnTorch 1.0 (`snntorch.import_nir.import_from_nir`) and spikingjelly 2.0
(`spikingjelly.activation_based.nir_exchange.import_from_nir(graph, dt=1e-4)`) give the golden spikes up to
Lava's truncation (>= 99 % of spikes equal on trained networks; exact without leak). snnTorch assumes dt =
1e-4 s and turns `Flatten(start_dim=0)` into `torch.nn.Flatten(0)`, which folds the batch axis in: run it one
sample at a time. spikingjelly fires on v >= v_threshold, which the threshold above makes the same rule.
"""


CONVERTIBLE = (".npz", ".nir", ".net", ".h5", ".hdf5")  # network files export converts (hwsim.formats.files)


def load_trained(path: str | Path) -> tuple[Network, dict]:
    """The network to export and the training configuration when there is one: from an ``hwsim train``
    checkpoint (its ``.network.npz`` beside it), or from a network file -- hwsim ``.npz``, NIR ``.nir`` or netx
    ``.net``/``.h5`` -- so that ``export`` converts between formats."""
    path = Path(path)
    if not path.exists():
        raise NetworkError(f"{path}: no such checkpoint or network file")
    if path.suffix.lower() in CONVERTIBLE:
        from hwsim.formats.files import load_network

        return load_network(path), {}
    from hwsim.methods.data import DataError
    from hwsim.methods.train import load_checkpoint

    try:
        state = load_checkpoint(path)
    except DataError as err:
        raise NetworkError(str(err)) from None
    network_file = path.with_suffix(".network.npz")
    if not network_file.is_file():
        raise NetworkError(f"{network_file}: missing; hwsim train writes it beside the checkpoint {path.name}")
    network = load(network_file)
    from hwsim.methods.train import network_digest

    if state.get("network_sha256") not in (None, network_digest(network)):
        raise NetworkError(f"{network_file}: not the network of checkpoint {path.name} (interrupted between the "
                           f"two writes?); run hwsim train --resume {path} --out {path} to rewrite it")
    return network, state["config"]


def netx_biases(fixed: Network, float_network: Network | None = None, scales: list[float] | None = None) -> int:
    """Re-express every bias of the fixed-point ``fixed`` (in place) at ``bias_exp = 6``, the exponent netx fixes:
    whole units of synaptic input. From the float network's biases times each neuron layer's quantisation
    ``scales`` when given (one rounding), else from the fixed mantissas. Returns how many biases changed value;
    values beyond the 13-bit mantissa raise :class:`NetworkError` naming the layer."""
    from hwsim.sim.network import BIAS_MANT_MAX, BIAS_MANT_MIN, LoihiLIF

    changed, k = 0, 0
    float_layers = float_network.layers if float_network is not None else [None] * len(fixed.layers)
    for i, (layer, source) in enumerate(zip(fixed.layers, float_layers)):
        if layer.neuron is None:
            continue
        k += 1
        if layer.bias is None or layer.neuron.bias_exp == 6:
            continue
        exact = layer.bias.astype(np.float64) * 2.0**layer.neuron.bias_exp / 64
        units = np.asarray(source.bias, np.float64) * scales[k - 1] if scales is not None else exact
        mant = np.rint(units)
        if mant.min() < BIAS_MANT_MIN or mant.max() > BIAS_MANT_MAX:
            raise NetworkError(f"layer {i} ({layer.name}): a bias of {float(np.abs(units).max()):.0f} units of "
                               f"synaptic input exceeds netx's 13-bit bias mantissa at its fixed bias_exp = 6")
        changed += int(np.count_nonzero(mant * 64 != exact * 64))
        n = layer.neuron
        layer.neuron = LoihiLIF(du=n.du, dv=n.dv, vth=n.vth, bias_exp=6)
        layer.bias = mant.astype(np.int32)
    return changed


def spikes_per_layer(float_network: Network, fixed: Network, x: np.ndarray, samples: int = 64) -> list[dict]:
    """Spikes of every neuron layer on the first ``samples`` of ``x`` (N, T, *input_shape), in the float network
    (hwsim's float engine) and in its fixed-point export (Lava's timing: T + depth steps): where quantisation
    changes the activity."""
    spikes = np.moveaxis(np.asarray(x[:samples]), 1, 0).astype(np.uint8)
    depth = sum(1 for layer in fixed.layers if layer.neuron is not None)
    padded = np.concatenate([spikes, np.zeros((depth, *spikes.shape[1:]), np.uint8)])
    floats = simulate(float_network, spikes, time_major=True)
    fixeds = simulate(fixed, padded, time_major=True)
    return [{"layer": name, "float": int(a.sum()), "fixed": int(b.sum())}
            for name, a, b in zip(fixeds.layer_names, floats.spikes, fixeds.spikes)]


def _write_formats(fixed: Network, out: Path) -> None:
    """``model.net`` and ``model.nir``, both or neither: a value a format cannot hold is one NetworkError line."""
    from hwsim.formats import netx, nir_io

    written = []
    for name, writer in (("model.net", netx.write), ("model.nir", nir_io.write)):
        try:
            with atomic_path(out / name) as tmp:
                writer(fixed, tmp)
        except NetworkError as err:  # a value the format cannot hold exactly: refuse rather than write a wrong one
            for done in written:
                (out / done).unlink(missing_ok=True)
            raise NetworkError(f"{out / name}: not written: {err}") from None
        written.append(name)


def check_exportable(network: Network) -> None:
    """Refuse, in one :class:`NetworkError` line naming the layer, a network that neither Lava nor netx nor NIR
    can hold: adaptive-threshold (ALIF) neurons (Loihi's LIF, netx's CUBA and NIR's neurons have fixed
    thresholds, and quantisation has no counterpart for them)."""
    from hwsim.sim.network import FloatALIF

    for i, layer in enumerate(network.layers):
        if isinstance(layer.neuron, FloatALIF):
            raise NetworkError(f"layer {i} ({layer.name}): adaptive-threshold (ALIF) neurons have no Lava, netx or "
                               f"NIR form (their thresholds are fixed); nothing exported")


def export(network: Network, out: str | Path, x: np.ndarray | None = None, y: np.ndarray | None = None,
           verify: bool = False, learning: bool = False) -> dict:
    """Quantise (if float), write every file, optionally verify in Lava; returns the summary. A network no format
    can hold (ALIF neurons) is refused in one line before anything is written."""
    from hwsim.formats.lava import check_lava_expressible
    from hwsim.sim.quantize import QuantReport, fixed_accuracy, quantize

    check_exportable(network)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if network.mode == "float":
        fixed, report = quantize(network, x, y)
        changed = netx_biases(fixed, network, [q.scale for q in report.layers])
        if changed:
            report.notes.append(f"biases in whole units of synaptic input (bias_exp = 6, the exponent netx fixes): "
                                f"{changed} rounded; the accuracy after includes it")
            if x is not None and y is not None:
                report.accuracy_fixed = fixed_accuracy(fixed, x, y)
    else:
        fixed, report = network, QuantReport(notes=["network was already fixed point"])
    _write_formats(fixed, out)
    save(fixed, out / "network.npz")
    quantization = report.to_dict()
    if x is not None and network.mode == "float":
        quantization["spikes"] = spikes_per_layer(network, fixed, x)
    atomic_write(out / "quantization.json", json.dumps(quantization, indent=2))
    depth = sum(1 for layer in fixed.layers if layer.neuron is not None)
    if x is not None:
        sample = np.asarray(x[0]).reshape(np.asarray(x[0]).shape[0], -1)
    else:
        sample = (np.random.default_rng(0).random((16, int(np.prod(fixed.input_shape)))) < 0.2)
    golden_in = np.concatenate([sample, np.zeros((depth, sample.shape[1]))]).astype(np.uint8)
    result = simulate(fixed, golden_in.reshape(golden_in.shape[0], 1, *fixed.input_shape), time_major=True)
    golden = {"input": golden_in} | {f"layer{i}": s.reshape(s.shape[0], -1) for i, s in enumerate(result.spikes)}
    with atomic_path(out / "golden.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(GOLDEN_META | {"layers": result.layer_names})), **golden)
    atomic_write(out / "README.md", README)
    atomic_write(out / "run_lava.py", RUN_LAVA)
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # not the lock file
    summary = {"out": str(out), "files": files, "quantization": quantization}
    if verify:
        check_lava_expressible(fixed)
        lava = run_isolated("verify", fixed, golden_in)  # in a child that dies with this process
        layers = [{"layer": layer_name, "equal": bool(np.array_equal(a, golden[f"layer{i}"])),
                   "spikes": int(a.sum())} for i, (layer_name, a) in enumerate(zip(result.layer_names, lava["spikes"]))]
        summary["verify"] = {"equal": all(v["equal"] for v in layers), "layers": layers,
                             "timesteps": int(golden_in.shape[0])}
        atomic_write(out / "verify.json", json.dumps(summary["verify"], indent=2))
    if learning:
        if network.mode != "float":
            raise NetworkError("--learning compares against the float network's errors; give the trained float network")
        label = int(y[0]) if y is not None else 0
        summary["learning"] = run_isolated("learning", network, sample.reshape(len(sample), -1), label)
        atomic_write(out / "learning.json", json.dumps(summary["learning"], indent=2))
    return summary
