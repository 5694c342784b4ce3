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

Every file is written into a private staging folder inside the output (``.hwsim-export-<pid>-*.tmp``) and renamed
into place at the end: a full disk, an I/O error, a value a format cannot hold or Ctrl-C leaves the output folder as
it was (see :class:`_Staging`); what the export would take is checked first (:func:`check_export`).
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hwsim.errors import WriteError
from hwsim.formats.bounds import write_failure
from hwsim.formats.lava_child import run_isolated
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


def load_trained(path: str | Path, force: bool = False) -> tuple[Network, dict]:
    """The network to export and the training configuration when there is one: from an ``hwsim train``
    checkpoint (its ``.network.npz`` beside it, which must be the network the checkpoint names by its SHA-256),
    or from a network file -- hwsim ``.npz``, NIR ``.nir`` or netx ``.net``/``.h5`` -- so that ``export``
    converts between formats. ``force`` accepts a checkpoint whose checksum is missing or wrong, or which names
    no network (the file beside it is then taken as it is)."""
    path = Path(path)
    if not path.exists():
        raise NetworkError(f"{path}: no such checkpoint or network file")
    if path.suffix.lower() in CONVERTIBLE:
        from hwsim.formats.files import load_network

        return load_network(path), {}
    from hwsim.methods.data import DataError
    from hwsim.methods.train import load_checkpoint

    try:
        state = load_checkpoint(path, force)
    except DataError as err:
        raise NetworkError(str(err)) from None
    network_file = path.with_suffix(".network.npz")
    if not network_file.is_file():
        raise NetworkError(f"{network_file}: missing; hwsim train writes it beside the checkpoint {path.name}")
    network = load(network_file)
    from hwsim.methods.train import network_digest

    named = state.get("network_sha256")
    if named is None and not force:
        raise NetworkError(f"{path}: names no network by its checksum, so {network_file.name} beside it may be "
                           f"another run's; give --force to export that file anyway")
    if named is not None and named != network_digest(network) and not force:
        raise NetworkError(f"{network_file}: not the network of checkpoint {path.name} (a run interrupted between "
                           f"the two writes: hwsim train --resume {path} --out {path} rewrites it from the checkpoint; "
                           f"--force exports the file as it is)")
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


def _format_files(fixed: Network, stage: _Staging) -> None:
    """``model.net`` and ``model.nir``, both or neither: a value a format cannot hold is one NetworkError line."""
    from hwsim.formats import netx, nir_io

    for name, writer in (("model.net", netx.write), ("model.nir", nir_io.write)):
        try:
            stage.put_with(name, lambda path, writer=writer: writer(fixed, path))
        except NetworkError as err:  # a value the format cannot hold exactly: refuse rather than write a wrong one
            raise NetworkError(f"{stage.out / name}: not written: {err}") from None


def check_exportable(network: Network) -> None:
    """Refuse, in one :class:`NetworkError` line naming the layer, a network that neither Lava nor netx nor NIR
    can hold: adaptive-threshold (ALIF) neurons (Loihi's LIF, netx's CUBA and NIR's neurons have fixed
    thresholds, and quantisation has no counterpart for them), and a layer name no file of the export could be read
    back with (over 200 characters, or not valid Unicode; :func:`hwsim.formats.bounds.check_names`). Other names,
    NUL, ``/`` and control characters included, are written as they are (NIR's node names rewritten)."""
    from hwsim.formats.bounds import check_names
    from hwsim.sim.network import FloatALIF

    check_names(network)

    for i, layer in enumerate(network.layers):
        if isinstance(layer.neuron, FloatALIF):
            raise NetworkError(f"layer {i} ({layer.name}): adaptive-threshold (ALIF) neurons have no Lava, netx or "
                               f"NIR form (their thresholds are fixed); nothing exported")


def export_memory(network: Network, x: np.ndarray | None = None) -> tuple[int, str]:
    """``(bytes, what they are)`` an export of ``network`` would take at its peak, from its shapes and the data's:
    the formats' copies of every weight (netx's int64, NIR's float64 and, in fixed point, its JSON metadata), sum
    pooling written as a channel-diagonal convolution (channels² x kernel² taps), the NIR neuron nodes (one value
    per neuron and parameter), and the runs: the golden sample, and with data ``x`` (N, T, ...) the quantisation's
    accuracy runs and the per-layer spike counts."""
    from hwsim.sim.network import SumPool2d

    weights = sum(int(getattr(layer, name).size) for layer in network.layers
                  for name in ("weight", "recurrent") if isinstance(getattr(layer, name, None), np.ndarray))
    taps = sum(shape[0] ** 2 * layer.kernel ** 2 for layer, (shape, _) in zip(network.layers, network.layer_shapes())
               if isinstance(layer, SumPool2d))
    units = math.prod(network.input_shape) + sum(math.prod(out) for _, out in network.layer_shapes())
    depth = sum(1 for layer in network.layers if layer.neuron is not None)
    samples, steps = (int(x.shape[0]), int(x.shape[1])) if x is not None else (0, 16)
    entries = (steps + depth) * units * (1 + samples + min(samples, 64) * 2)
    total = (weights * EXPORT_BYTES_PER_WEIGHT + taps * EXPORT_BYTES_PER_TAP + units * EXPORT_BYTES_PER_NEURON
             + entries * RUN_BYTES_PER_ENTRY)
    return total, (f"{weights} weights, {taps} pooling taps written as convolutions, {units} inputs and neurons, "
                   f"{entries} spike entries in its runs")


EXPORT_BYTES_PER_WEIGHT = 64  # netx int64 copies, NIR float64, fixed point's JSON lists, images (46 measured)
EXPORT_BYTES_PER_TAP = 48  # a pooling tap written as a convolution weight: NIR float64, netx int64 and its copies
EXPORT_BYTES_PER_NEURON = 64  # the NIR neuron node's per-neuron parameters (float64 each)
RUN_BYTES_PER_ENTRY = 8  # one input or neuron of one step of one sample in a run (spikes, state, copies)
EXPORT_FILES = ("model.net", "model.nir", "network.npz", "quantization.json", "golden.npz", "README.md",
                "run_lava.py", "verify.json", "learning.json")  # every file an export may write
STAGING_PREFIX = ".hwsim-export-"  # the private folder inside the output where an export is written first


class _Staging:
    """A private folder inside ``out`` (``mkdtemp``: a fresh name, mode 0700) where every file of one export is
    written; :meth:`publish` renames them into ``out`` at the end. On any error (a full disk, a value a format cannot
    hold, Ctrl-C) the folder is removed with everything in it: ``out`` keeps what it held. A folder left by a killed
    export (its process gone) is removed by the next export into ``out``."""

    def __init__(self, out: Path):
        self.out, self.names = out, []

    def __enter__(self) -> _Staging:
        _remove_stale_staging(self.out)
        try:
            self.path = Path(tempfile.mkdtemp(dir=self.out, prefix=f"{STAGING_PREFIX}{os.getpid()}-", suffix=".tmp"))
        except OSError as err:
            raise write_failure(self.out, err, "nothing was exported") from None
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def _failed(self, name: str, err: BaseException):
        return write_failure(self.out / name, err, f"nothing was exported ({self.out} was left as it was: no partial "
                                                   f"file, no temporary file)")

    def put(self, name: str, data: str | bytes) -> None:
        """Write file ``name`` (text as UTF-8) into the staging folder, flushed to disk."""
        self.put_with(name, lambda path: _write_new(path, data.encode() if isinstance(data, str) else data))

    def put_with(self, name: str, writer: Callable[[Path], object]) -> None:
        """Let ``writer(path)`` write file ``name`` into the staging folder; an ``OSError`` or
        :class:`~hwsim.errors.WriteError` becomes one line naming ``out/name``."""
        failure, hook = None, sys.unraisablehook
        try:
            writer(self.path / name)
        except (OSError, WriteError) as err:
            sys.unraisablehook = _ignore  # until what the failed writer left is freed (see _ignore)
            failure = self._failed(name, err)
        if failure is not None:
            try:
                gc.collect()
            finally:
                sys.unraisablehook = hook
            raise failure
        self.names.append(name)

    def publish(self) -> list[str]:
        """Rename every staged file into ``out`` (a link at a file's name is replaced, never followed) and remove the
        files an earlier export left that this one does not write (``verify.json``, ``learning.json``), so that the
        folder holds one export. Returns the names."""
        moved: list[str] = []
        for name in self.names:
            try:
                os.replace(self.path / name, self.out / name)
            except OSError as err:
                for done in moved:
                    with contextlib.suppress(OSError):
                        (self.out / done).unlink()
                raise write_failure(self.out / name, err, "the export is incomplete: its files already moved into "
                                                          "place were removed") from None
            moved.append(name)
        for name in set(EXPORT_FILES) - set(self.names):
            with contextlib.suppress(OSError):
                if (self.out / name).is_symlink() or (self.out / name).is_file():
                    (self.out / name).unlink()
        return sorted(self.names)


def _ignore(unraisable) -> None:
    """An unraisable-exception hook that drops it: ``np.savez`` (in :func:`hwsim.sim.network.save`) leaves its
    ``ZipFile`` open when a write fails, and that object's finalizer, run once the failure is dropped, would print an
    "Exception ignored ... seek of closed file" traceback (its file was closed by then)."""


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never an existing file or a link: ``O_EXCL``) with the user's umask, write ``data`` and
    flush it to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, 0o666)
    with open(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _remove_stale_staging(out: Path) -> None:
    """Remove the staging folders of exports into ``out`` whose process is gone (killed mid-export)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(out):
            if not entry.name.startswith(STAGING_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            pid = entry.name[len(STAGING_PREFIX):].split("-", 1)[0]
            if pid.isdecimal() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts: ``EPERM``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


def _golden(fixed: Network, x: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict, list[str]]:
    """``(sample (T, n_in), golden input (T + depth, n_in), {input, layer<i>}, layer names)``: the data's first
    sample (or 16 steps of Bernoulli(0.2) input), padded with one silent step per layer, and hwsim's fixed spikes."""
    depth = sum(1 for layer in fixed.layers if layer.neuron is not None)
    if x is not None:
        sample = np.asarray(x[0]).reshape(np.asarray(x[0]).shape[0], -1)
    else:
        sample = (np.random.default_rng(0).random((16, int(np.prod(fixed.input_shape)))) < 0.2)
    golden_in = np.concatenate([sample, np.zeros((depth, sample.shape[1]))]).astype(np.uint8)
    result = simulate(fixed, golden_in.reshape(golden_in.shape[0], 1, *fixed.input_shape), time_major=True)
    golden = {"input": golden_in} | {f"layer{i}": s.reshape(s.shape[0], -1) for i, s in enumerate(result.spikes)}
    return sample, golden_in, golden, list(result.layer_names)


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def check_export(network: Network, out: str | Path, x: np.ndarray | None = None, learning: bool = False) -> None:
    """Every refusal of :func:`export` that needs no quantisation, in one line, before anything is written (a caller
    may run it before it makes the output folder): a network no format can hold (:func:`check_exportable`), a
    fixed-point one with ``learning``, and an export of more memory than the limit (:func:`export_memory`,
    :class:`~hwsim.errors.TooLarge` naming ``out``)."""
    from hwsim.safeio import check_memory

    check_exportable(network)
    if learning and network.mode != "float":
        raise NetworkError("--learning compares against the float network's errors; give the trained float network")
    nbytes, detail = export_memory(network, x)
    check_memory(nbytes, f"export to {out}", detail)


def export(network: Network, out: str | Path, x: np.ndarray | None = None, y: np.ndarray | None = None,
           verify: bool = False, learning: bool = False) -> dict:
    """Quantise (if float), write every file, optionally verify in Lava; returns the summary.

    Refused in one line before anything is written: a network no format can hold (ALIF neurons), one Lava cannot
    run when ``verify``, a fixed-point one with ``learning``, and an export that would take more memory than the
    limit (:func:`export_memory`, :class:`~hwsim.errors.TooLarge`). Every file is written into a private staging
    folder inside ``out`` and renamed into place at the end (:class:`_Staging`): a full disk, an I/O error or a value
    a format cannot hold ends in one line naming the file, with ``out`` left as it was."""
    from hwsim.formats.lava import check_lava_expressible
    from hwsim.sim.quantize import QuantReport, fixed_accuracy, quantize

    out = Path(out)
    check_export(network, out, x, learning)
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
    if verify:
        check_lava_expressible(fixed)
    out.mkdir(parents=True, exist_ok=True)
    with _Staging(out) as stage:
        _format_files(fixed, stage)
        stage.put_with("network.npz", lambda path: save(fixed, path))
        quantization = report.to_dict()
        if x is not None and network.mode == "float":
            quantization["spikes"] = spikes_per_layer(network, fixed, x)
        stage.put("quantization.json", json.dumps(quantization, indent=2))
        sample, golden_in, golden, layer_names = _golden(fixed, x)
        meta = np.array(json.dumps(GOLDEN_META | {"layers": layer_names}))
        stage.put("golden.npz", _npz_bytes(meta=meta, **golden))
        stage.put("README.md", README)
        stage.put("run_lava.py", RUN_LAVA)
        summary = {"out": str(out), "quantization": quantization}
        if verify:
            lava = run_isolated("verify", fixed, golden_in)  # in a child that dies with this process
            layers = [{"layer": name, "equal": bool(np.array_equal(a, golden[f"layer{i}"])), "spikes": int(a.sum())}
                      for i, (name, a) in enumerate(zip(layer_names, lava["spikes"]))]
            summary["verify"] = {"equal": all(v["equal"] for v in layers), "layers": layers,
                                 "timesteps": int(golden_in.shape[0])}
            stage.put("verify.json", json.dumps(summary["verify"], indent=2))
        if learning:
            label = int(y[0]) if y is not None else 0
            summary["learning"] = run_isolated("learning", network, sample.reshape(len(sample), -1), label)
            stage.put("learning.json", json.dumps(summary["learning"], indent=2))
        summary["files"] = stage.publish()
    return {"out": summary["out"], "files": summary["files"]} | {k: v for k, v in summary.items()
                                                                  if k not in ("out", "files")}
