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
  weight changes, ``hwsim.export.lava_learning``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwsim.engine import simulate
from hwsim.network import Network, NetworkError, load, save

RUN_LAVA = '''"""Run the exported network in Lava (fixed_pt) on the golden input and compare with the golden output."""
import sys
from pathlib import Path

import numpy as np

from hwsim.export.lava import run_lava
from hwsim.network import load

here = Path(__file__).resolve().parent
network = load(here / "network.npz")
golden = np.load(here / "golden.npz")
result = run_lava(network, golden["input"], probe_state=False)
same = [bool(np.array_equal(s, golden[f"layer{i}"])) for i, s in enumerate(result.spikes)]
print("spikes equal per layer:", same)
sys.exit(0 if all(same) else 1)
'''


def load_trained(path: str | Path) -> tuple[Network, dict]:
    """A float network from an ``hwsim train`` checkpoint (its ``.network.npz`` beside it) or an .npz file,
    and the training configuration when there is one."""
    path = Path(path)
    if not path.exists():
        raise NetworkError(f"{path}: no such checkpoint or network file")
    if path.suffix == ".npz":
        return load(path), {}
    from methods.data import DataError
    from methods.train import load_checkpoint

    try:
        state = load_checkpoint(path)
    except DataError as err:
        raise NetworkError(str(err)) from None
    network_file = path.with_suffix(".network.npz")
    if not network_file.is_file():
        raise NetworkError(f"{network_file}: missing; hwsim train writes it beside the checkpoint {path.name}")
    return load(network_file), state["config"]


def export(network: Network, out: str | Path, x: np.ndarray | None = None, y: np.ndarray | None = None,
           verify: bool = False, learning: bool = False) -> dict:
    """Quantise (if float), write every file, optionally verify in Lava; returns the summary."""
    from hwsim.export import netx, nir_io
    from hwsim.export.lava import check_lava_expressible
    from hwsim.quantize import QuantReport, quantize

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if network.mode == "float":
        fixed, report = quantize(network, x, y)
    else:
        fixed, report = network, QuantReport(notes=["network was already fixed point"])
    save(fixed, out / "network.npz")
    (out / "quantization.json").write_text(json.dumps(report.to_dict(), indent=2))
    netx.write(fixed, out / "model.net")
    nir_io.write(fixed, out / "model.nir")
    depth = sum(1 for layer in fixed.layers if layer.neuron is not None)
    if x is not None:
        sample = np.asarray(x[0]).reshape(np.asarray(x[0]).shape[0], -1)
    else:
        sample = (np.random.default_rng(0).random((16, int(np.prod(fixed.input_shape)))) < 0.2)
    golden_in = np.concatenate([sample, np.zeros((depth, sample.shape[1]))]).astype(np.uint8)
    result = simulate(fixed, golden_in.reshape(golden_in.shape[0], 1, *fixed.input_shape), time_major=True)
    golden = {"input": golden_in} | {f"layer{i}": s.reshape(s.shape[0], -1) for i, s in enumerate(result.spikes)}
    np.savez(out / "golden.npz", **golden)
    (out / "run_lava.py").write_text(RUN_LAVA)
    summary = {"out": str(out), "files": sorted(p.name for p in out.iterdir()), "quantization": report.to_dict()}
    if verify:
        from hwsim.export.lava import run_lava

        check_lava_expressible(fixed)
        lava = run_lava(fixed, golden_in, probe_state=False)
        layers = [{"layer": layer_name, "equal": bool(np.array_equal(a, golden[f"layer{i}"])),
                   "spikes": int(a.sum())} for i, (layer_name, a) in enumerate(zip(result.layer_names, lava.spikes))]
        summary["verify"] = {"equal": all(v["equal"] for v in layers), "layers": layers,
                             "timesteps": int(golden_in.shape[0])}
        (out / "verify.json").write_text(json.dumps(summary["verify"], indent=2))
    if learning:
        from hwsim.export.lava_learning import compare_learning

        if network.mode != "float":
            raise NetworkError("--learning compares against the float network's errors; give the trained float network")
        label = int(y[0]) if y is not None else 0
        summary["learning"] = compare_learning(network, sample.reshape(len(sample), -1), label).to_dict()
        (out / "learning.json").write_text(json.dumps(summary["learning"], indent=2))
    return summary
