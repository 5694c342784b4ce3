"""``hwsim export``: a trained network -> Lava, netx and NIR files, golden spikes, and the proof.

Files written to the output folder:

* ``network.npz`` -- the fixed-point network (hwsim format); ``quantization.json`` -- the quantisation report
  (scales, clipped values, accuracy before and after on the data);
* ``model.net`` -- netx HDF5 for lava-dl; ``model.nir`` -- NIR graph for other frameworks;
* ``golden.npz`` -- ``input`` (T', n_in) 0/1 spikes (the data's first sample, padded with one silent step
  per layer for Lava's delays) and ``layer<i>`` (T', n_i) output spikes of every layer from hwsim's fixed
  mode; any backend can check itself against them;
* ``run_lava.py`` -- builds the Lava process graph (``RingBuffer -> Dense -> LIF ...``) from
  ``network.npz`` and runs it on ``golden.npz`` under ``Loihi2SimCfg(select_tag="fixed_pt")``;
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
              "layer k at step t moves layer k+1 at step t+1, so layer k lags the input k+1 steps; the input ends "
              "with one silent step per layer. A delay-free simulator (NIR readers) reproduces layer<i> when a "
              "one-step delay is inserted before every synapse; without it, layer k comes k+1 steps early (exactly "
              "so only when no layer has a bias).",
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
a neuron spikes when v > v_threshold and resets to 0.

**Timing.** Lava adds one step per connection: layer k's spikes at step t move layer k+1 at step t+1, and
input column t reaches layer 0 at step t+1, so layer k lags the input by k+1 steps (`golden.npz` `meta`
says so; its input ends with one silent step per layer). NIR has no delays: a NIR simulator reproduces
`layer<k>` when a one-step delay is put before every synapse node; run without it, its layer k is k+1 steps
early (exactly so only for networks without biases, which act from the first step).
"""


def load_trained(path: str | Path) -> tuple[Network, dict]:
    """A float network from an ``hwsim train`` checkpoint (its ``.network.npz`` beside it) or an .npz file,
    and the training configuration when there is one."""
    path = Path(path)
    if not path.exists():
        raise NetworkError(f"{path}: no such checkpoint or network file")
    if path.suffix == ".npz":
        return load(path), {}
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


def export(network: Network, out: str | Path, x: np.ndarray | None = None, y: np.ndarray | None = None,
           verify: bool = False, learning: bool = False) -> dict:
    """Quantise (if float), write every file, optionally verify in Lava; returns the summary."""
    from hwsim.formats import netx, nir_io
    from hwsim.formats.lava import check_lava_expressible
    from hwsim.sim.quantize import QuantReport, quantize

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if network.mode == "float":
        fixed, report = quantize(network, x, y)
    else:
        fixed, report = network, QuantReport(notes=["network was already fixed point"])
    save(fixed, out / "network.npz")
    atomic_write(out / "quantization.json", json.dumps(report.to_dict(), indent=2))
    not_written = {}
    for name, writer in (("model.net", netx.write), ("model.nir", nir_io.write)):
        try:
            with atomic_path(out / name) as tmp:
                writer(fixed, tmp)
        except NetworkError as err:  # a value the format cannot hold exactly: no file rather than a wrong one
            not_written[name] = str(err)
            (out / name).unlink(missing_ok=True)
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
    summary = {"out": str(out), "files": files, "quantization": report.to_dict()}
    if not_written:
        summary["not_written"] = not_written
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
