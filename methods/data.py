"""Data: built-in (scikit-learn digits), procedural (Randman-style spike tasks), and local-file loaders.

Every dataset is a :class:`SpikeDataset`: ``x`` float32 0/1 spikes ``(N, T, *shape)`` built once (seeded,
deterministic), ``y`` int64 labels ``(N,)``, and a train/test split. Nothing is downloaded.

* ``digits`` -- scikit-learn's 8x8 digits (1797 samples, 10 classes), intensities scaled to [0, 1] and
  rate-encoded (Bernoulli, p = intensity per step) or latency-encoded (one spike at step
  ``round((1 - p) * (T - 1))`` for p > 0).
* ``randman`` -- a random-manifold spike task written from Zenke & Vogels (Neural Comput. 2021): each
  class is a smooth random map from a ``dim``-dimensional latent cube to one firing time per input unit;
  a sample is a uniform latent point, its units fire once at the mapped time (plus jitter).
* local files -- MNIST (IDX), N-MNIST (.bin event files), SHD (HDF5), a user's ``.npz``
  (``x_train, y_train, x_test, y_test``), tonic datasets (``tonic:NMNIST``, optional); event sets are binned
  per batch (:class:`LazySpikes`), and official train/test splits are kept where the files carry one.
* ``cue`` -- the e-prop paper's cue-accumulation task (:mod:`hwsim.methods.cue`): only its recall window is scored,
  which the dataset says in ``loss_steps`` (bool (T,); None elsewhere: every step is scored).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hwsim.methods.errors import DataError

DATASETS = ("digits", "randman", "mnist", "nmnist", "shd", "dvs_bars", "cue")


@dataclass
class SpikeDataset:
    """Spikes ``x`` (N, T, *shape) float32 and labels ``y`` (N,) int64, split at ``n_train``. ``loss_steps``: bool
    (T,) -- the steps the loss and the accuracy are taken on (a task that scores only its decision steps) -- or
    None: every step."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    n_train: int
    n_classes: int
    loss_steps: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[2:])

    @property
    def timesteps(self) -> int:
        return int(self.x.shape[1])

    def split(self, part: str) -> tuple[torch.Tensor | LazySpikes, torch.Tensor]:
        if isinstance(self.x, LazySpikes):
            lo, hi = (0, self.n_train) if part == "train" else (self.n_train, len(self.y))
            return self.x.subset(np.arange(lo, hi)), self.y[lo:hi]
        if part == "train":
            return self.x[: self.n_train], self.y[: self.n_train]
        return self.x[self.n_train:], self.y[self.n_train:]


class LazySpikes:
    """Spikes ``(N, T, *shape)`` made per batch: indexing (an int, slice, list, numpy or torch index) returns a
    dense float32 tensor of just those samples, built by ``fetch(i) -> (steps, flat neuron indices)`` of
    sample ``i``'s spikes (or, for array data, ``dense(indices)``). Event datasets (N-MNIST, SHD, tonic) stay
    as compact events; nothing holds the whole set as float32."""

    def __init__(self, n: int, steps: int, shape: tuple[int, ...], fetch=None, dense=None,
                 index: np.ndarray | None = None):
        self.steps, self.sample_shape = int(steps), tuple(int(s) for s in shape)
        self._fetch, self._dense = fetch, dense
        self.index = np.arange(n) if index is None else np.asarray(index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), self.steps, *self.sample_shape)

    def __len__(self) -> int:
        return len(self.index)

    def subset(self, positions) -> LazySpikes:
        return LazySpikes(0, self.steps, self.sample_shape, self._fetch, self._dense, self.index[positions])

    def reshape(self, *shape) -> LazySpikes:
        if tuple(shape[:2]) != self.shape[:2] or int(np.prod(shape[2:])) != int(np.prod(self.sample_shape)):
            raise DataError(f"cannot view spikes {self.shape} as {shape}")
        return LazySpikes(0, self.steps, tuple(shape[2:]), self._fetch, self._dense, self.index)

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        single = isinstance(key, (int, np.integer))
        chosen = self.index[np.atleast_1d(key) if single else key]
        if self._dense is not None:
            out = np.asarray(self._dense(chosen), np.float32).reshape(len(chosen), self.steps, *self.sample_shape)
        else:
            out = np.zeros((len(chosen), self.steps, int(np.prod(self.sample_shape))), np.float32)
            for row, i in enumerate(chosen):
                frames, neurons = self._fetch(int(i))
                out[row, frames, neurons] = 1.0
            out = out.reshape(len(chosen), self.steps, *self.sample_shape)
        tensor = torch.from_numpy(out)
        return tensor[0] if single else tensor

    def numpy(self) -> np.ndarray:
        return self[np.arange(len(self))].numpy()


# ---------------------------------------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------------------------------------
def rate_encode(values: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Bernoulli spikes: ``values`` (N, *shape) in [0, 1] -> (N, T, *shape) float32."""
    rng = np.random.default_rng(seed)
    draws = rng.random((values.shape[0], steps, *values.shape[1:]), dtype=np.float32)
    return (draws < values[:, None]).astype(np.float32)


def latency_encode(values: np.ndarray, steps: int) -> np.ndarray:
    """One spike per non-zero input at step round((1 - value) * (T - 1)); zeros never spike."""
    out = np.zeros((values.shape[0], steps, *values.shape[1:]), np.float32)
    when = np.rint((1.0 - values) * (steps - 1)).astype(np.int64)
    index = np.nonzero(values > 0)
    out[(index[0], when[index], *index[1:])] = 1.0
    return out


def _encode(values: np.ndarray, steps: int, encoding: str, seed: int) -> np.ndarray:
    if encoding == "rate":
        return rate_encode(values, steps, seed)
    if encoding == "latency":
        return latency_encode(values, steps)
    raise DataError(f"unknown encoding {encoding!r}; expected 'rate' or 'latency'")


def _shuffle_split(x: np.ndarray, y: np.ndarray, name: str, n_classes: int, test_fraction: float,
                   seed: int) -> SpikeDataset:
    order = np.random.default_rng(seed + 7).permutation(len(y))
    x, y = x[order], y[order]
    n_train = int(round(len(y) * (1.0 - test_fraction)))
    return SpikeDataset(name, torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64)),
                        n_train, n_classes)


# ---------------------------------------------------------------------------------------------------------
# Built-in and procedural data
# ---------------------------------------------------------------------------------------------------------
def digits(steps: int, encoding: str = "rate", seed: int = 0, test_fraction: float = 0.2) -> SpikeDataset:
    """scikit-learn's 8x8 digits, flattened to 64 inputs, encoded over ``steps`` steps."""
    from sklearn.datasets import load_digits

    data = load_digits()
    values = (data.data / 16.0).astype(np.float32)
    return _shuffle_split(_encode(values, steps, encoding, seed), data.target, "digits", 10, test_fraction, seed)


def randman(steps: int, n_classes: int = 10, units: int = 64, samples_per_class: int = 200, dim: int = 1,
            alpha: float = 2.0, frequencies: int = 4, jitter: float = 0.0, seed: int = 0,
            test_fraction: float = 0.2) -> SpikeDataset:
    """Random-manifold spike task. For class c, unit i and latent dim d, a smooth random function
    ``f(z) = sum_k a_k sin(2 pi (k z + phi_k))`` with amplitudes decaying as ``k**-alpha``; a unit's firing
    time is the mean over dims of ``f`` rescaled to [0, 1] across the class, times (T - 1)."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, frequencies + 1)
    xs, ys = [], []
    for c in range(n_classes):
        amp = rng.random((units, dim, frequencies)) * k ** (-alpha)
        phase = rng.random((units, dim, frequencies))
        z = rng.random((samples_per_class, dim))
        arg = 2 * np.pi * (k[None, None, None, :] * z[:, None, :, None] + phase[None])
        value = (amp[None] * np.sin(arg)).sum(axis=-1).mean(axis=-1)  # (samples, units)
        lo, hi = value.min(axis=0), value.max(axis=0)
        times = (value - lo) / np.where(hi > lo, hi - lo, 1.0)
        if jitter > 0:
            times = np.clip(times + rng.normal(0, jitter, times.shape), 0, 1)
        spikes = np.zeros((samples_per_class, steps, units), np.float32)
        step = np.rint(times * (steps - 1)).astype(np.int64)
        spikes[np.arange(samples_per_class)[:, None], step, np.arange(units)[None, :]] = 1.0
        xs.append(spikes)
        ys.append(np.full(samples_per_class, c))
    return _shuffle_split(np.concatenate(xs), np.concatenate(ys), "randman", n_classes, test_fraction, seed)


# ---------------------------------------------------------------------------------------------------------
# Local files
# ---------------------------------------------------------------------------------------------------------
def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (MNIST format): magic ``0x00 0x00 0x08 ndim``, big-endian uint32 sizes, uint8 data."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected an MNIST IDX file)")
    raw = path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] == 0:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (expected magic 00 00 08 <ndim>)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header (expected {ndim} uint32 sizes)")
    shape = struct.unpack(">" + "I" * ndim, raw[4: 4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise DataError(f"{path}: IDX body has {len(body)} bytes, the header promises {int(np.prod(shape))}")
    return np.frombuffer(body, np.uint8).reshape(shape)


def mnist(folder: str | Path, steps: int, encoding: str = "rate", seed: int = 0, limit: int | None = None,
          test_fraction: float = 0.2) -> SpikeDataset:
    """MNIST from ``folder/train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (IDX, uncompressed)."""
    folder = Path(folder)
    images = read_idx(folder / "train-images-idx3-ubyte")
    labels = read_idx(folder / "train-labels-idx1-ubyte")
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: expected images (N, 28, 28) and labels (N,), got {images.shape}, {labels.shape}")
    if limit:
        images, labels = images[:limit], labels[:limit]
    values = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return _shuffle_split(_encode(values, steps, encoding, seed), labels, "mnist", 10, test_fraction, seed)


def read_nmnist_events(path: str | Path) -> np.ndarray:
    """N-MNIST ``.bin``: 5 bytes per event -- x, y, then polarity (top bit) and a 23-bit timestamp in us.
    Returns a structured array with fields x, y, p, t."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected an N-MNIST .bin event file)")
    raw = np.frombuffer(path.read_bytes(), np.uint8)
    if raw.size % 5:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of 5-byte N-MNIST events")
    ev = raw.reshape(-1, 5).astype(np.uint32)
    events = np.zeros(len(ev), dtype=[("x", np.int64), ("y", np.int64), ("p", np.int64), ("t", np.int64)])
    events["x"], events["y"] = ev[:, 0], ev[:, 1]
    events["p"] = ev[:, 2] >> 7
    events["t"] = ((ev[:, 2] & 0x7F) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    if len(events) and (events["x"].max() >= 34 or events["y"].max() >= 34):
        raise DataError(f"{path}: event coordinates beyond 34x34; not an N-MNIST file")
    return events


def _nmnist_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9]/*.bin"))


def nmnist(folder: str | Path, steps: int, limit: int | None = None, test_fraction: float = 0.2,
           seed: int = 0) -> SpikeDataset:
    """N-MNIST from ``folder/<digit>/<id>.bin``; events binned into ``steps`` frames of (2, 34, 34) per batch
    (:class:`LazySpikes`; only file paths are held). With ``folder/Train`` and ``folder/Test`` (the official
    layout) that split is kept; otherwise one folder is split at random (``test_fraction``)."""
    folder = Path(folder)
    official = (folder / "Train").is_dir() and (folder / "Test").is_dir()
    parts = [_nmnist_files(folder / "Train"), _nmnist_files(folder / "Test")] if official else [_nmnist_files(folder)]
    if not any(parts):
        raise DataError(f"{folder}: no N-MNIST files (expected <folder>/<digit 0-9>/<id>.bin, or Train/ and Test/ "
                        f"folders of those)")
    if limit:
        parts = [p[:limit] for p in parts]
    if not official:
        order = np.random.default_rng(seed + 7).permutation(len(parts[0]))
        files = [parts[0][i] for i in order]
        n_train = int(round(len(files) * (1.0 - test_fraction)))
    else:
        files, n_train = parts[0] + parts[1], len(parts[0])
    y = np.array([int(p.parent.name) for p in files], np.int64)
    for p in files:  # a cheap whole-set check now, so that a bad file does not surface mid-training
        if p.stat().st_size % 5:
            raise DataError(f"{p}: {p.stat().st_size} bytes is not a whole number of 5-byte N-MNIST events")

    def fetch(i: int):
        events = read_nmnist_events(files[i])
        if not len(events):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        span = max(int(events["t"].max()) + 1, 1)
        frame = np.minimum(events["t"] * steps // span, steps - 1)
        return frame, (events["p"] * 34 + events["y"]) * 34 + events["x"]

    return SpikeDataset("nmnist", LazySpikes(len(files), steps, (2, 34, 34), fetch), torch.from_numpy(y), n_train,
                        10)


def _read_shd(path: Path, limit: int | None):
    import h5py

    if not path.is_file():
        raise DataError(f"{path}: no such file (expected an SHD .h5 file)")
    try:
        with h5py.File(path, "r") as f:
            for key in ("spikes/times", "spikes/units", "labels"):
                if key not in f:
                    raise DataError(f"{path}: missing dataset {key!r} (expected SHD layout spikes/times, "
                                    f"spikes/units, labels)")
            count = min(len(f["labels"]), limit) if limit else len(f["labels"])
            times = [np.asarray(t, np.float32) for t in f["spikes/times"][:count]]
            units = [np.asarray(u, np.int16) for u in f["spikes/units"][:count]]
            labels = np.asarray(f["labels"][:count]).astype(np.int64)
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None
    for n, u in enumerate(units):
        if u.size and (u.max() >= 700 or u.min() < 0):
            raise DataError(f"{path}: sample {n} has unit {int(u.max())}; SHD has 700 units")
    return times, units, labels


def shd(path: str | Path, steps: int, duration_s: float = 1.0, limit: int | None = None,
        test_fraction: float = 0.2, seed: int = 0) -> SpikeDataset:
    """Spiking Heidelberg Digits HDF5: ``spikes/times`` and ``spikes/units`` (ragged, one array per sample,
    times in seconds), ``labels``; 700 input units, 20 classes; binned into ``steps`` over ``duration_s`` per
    batch (:class:`LazySpikes`; the events are held, not the dense set). A folder with ``shd_train.h5`` and
    ``shd_test.h5``, or one of those two files, keeps the official split; another single file is split at
    random (``test_fraction``)."""
    path = Path(path)
    if path.is_dir():
        train, test = path / "shd_train.h5", path / "shd_test.h5"
    elif path.name.endswith("_train.h5") or path.name.endswith("_test.h5"):
        stem = path.name.rsplit("_", 1)[0]
        train, test = path.with_name(f"{stem}_train.h5"), path.with_name(f"{stem}_test.h5")
    else:
        train = test = None
    if train is not None and train.is_file() and test.is_file():
        a, b = _read_shd(train, limit), _read_shd(test, limit)
        times, units, labels, n_train = a[0] + b[0], a[1] + b[1], np.concatenate([a[2], b[2]]), len(a[2])
    else:
        if path.is_dir():
            raise DataError(f"{path}: expected shd_train.h5 and shd_test.h5 in this folder")
        times, units, labels = _read_shd(path, limit)
        order = np.random.default_rng(seed + 7).permutation(len(labels))
        times, units, labels = [times[i] for i in order], [units[i] for i in order], labels[order]
        n_train = int(round(len(labels) * (1.0 - test_fraction)))

    def fetch(i: int):
        t, u = times[i], units[i].astype(np.int64)
        keep = t < duration_s
        return np.minimum((t[keep] / duration_s * steps).astype(np.int64), steps - 1), u[keep]

    return SpikeDataset("shd", LazySpikes(len(labels), steps, (700,), fetch), torch.from_numpy(labels), n_train,
                        20)


def cue(steps: int | None = None, seed: int = 0, n_trials: int = 1000, test_fraction: float = 0.2,
        **task) -> SpikeDataset:
    """Cue accumulation (:func:`hwsim.methods.cue.cue_accumulation`): ``n_trials`` trials, 2 classes (0 left,
    1 right), 40 inputs, ``loss_steps`` the recall window. ``steps`` (when given) is the trial's length T: the
    delay takes up what the cues and the recall leave (T = 170 with the defaults; a ``delay_steps`` given with it
    must agree)."""
    from hwsim.methods.cue import cue_accumulation, task_steps

    if steps is not None:
        rest = task_steps(**{**task, "delay_steps": 0})
        if "delay_steps" in task and rest + task["delay_steps"] != steps:
            raise DataError(f"cue accumulation: T={steps} and delay_steps={task['delay_steps']} disagree (the cues "
                            f"and the recall take {rest} steps; T = {rest} + delay)")
        if steps < rest:
            raise DataError(f"cue accumulation needs T >= {rest} (the cues and the recall window; the delay is "
                            f"T - {rest}; the default task has T = {task_steps()}), got T={steps}")
        task = {**task, "delay_steps": steps - rest}
    x, y, loss_steps = cue_accumulation(n_trials, seed=seed, **task)
    data = _shuffle_split(x, y, "cue", 2, test_fraction, seed)
    data.loss_steps = torch.from_numpy(loss_steps)
    return data


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def npz_dataset(path: str | Path, steps: int | None = None) -> SpikeDataset:
    """A user's dataset file: ``.npz`` with ``x_train``, ``x_test`` -- 0/1 spikes ``(N, T, *shape)`` (bool,
    integer or float) -- and ``y_train``, ``y_test`` integer labels ``(N,)``. The file's split is kept; spikes
    are kept in their own dtype and made float32 per batch. ``steps`` (when given) must not exceed T; the
    first ``steps`` steps are used."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such dataset file")
    from hwsim.errors import printable
    from hwsim.safeio import NpzError, array_bytes, check_memory, npz_headers, npz_names, read_npz

    try:  # sizes from the members' headers first: nothing is read or allocated before they pass the limit
        names = npz_names(path, "numpy .npz file")
        missing = [k for k in NPZ_KEYS if k not in names]
        if missing:
            found = ", ".join(printable(n, 40) for n in sorted(names)[:8]) or "nothing"
            raise DataError(f"{path}: missing key {missing[0]!r}; a dataset file holds {', '.join(NPZ_KEYS)} "
                            f"(found {found})")
        headers = npz_headers(path, NPZ_KEYS.__contains__, what="numpy .npz file")
        stored = sum(array_bytes(shape, dtype) for shape, dtype in headers.values())
        spikes = sum(array_bytes(headers[k][0], np.uint8) for k in ("x_train", "x_test"))
        check_memory(stored + spikes, f"--dataset {path}", f"{', '.join(f'{k} {headers[k][0]}' for k in NPZ_KEYS)}"
                     f" as stored, and the spikes as one uint8 array")
        arrays = read_npz(path, NPZ_KEYS.__contains__, stored, what="numpy .npz file")
    except NpzError as err:
        raise DataError(f"{path}: {err}") from None
    xs, ys = [arrays["x_train"], arrays["x_test"]], [arrays["y_train"], arrays["y_test"]]
    for name, x, y in (("train", xs[0], ys[0]), ("test", xs[1], ys[1])):
        if x.ndim < 3:
            raise DataError(f"{path}: x_{name} has shape {x.shape}; expected (N, T, *input_shape)")
        if x.dtype.kind not in "biuf":
            raise DataError(f"{path}: x_{name} has dtype {x.dtype}; expected 0/1 bool, integer or float")
        if x.size and not np.all((x == 0) | (x == 1)):
            raise DataError(f"{path}: x_{name} must hold 0/1 spikes; found the value {x[(x != 0) & (x != 1)][0]}")
        if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
            raise DataError(f"{path}: y_{name} must be {len(x)} integer labels (N,), got {y.dtype} {y.shape}")
        if y.size and y.min() < 0:
            raise DataError(f"{path}: y_{name} has a negative label {int(y.min())}")
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise DataError(f"{path}: x_train {xs[0].shape} and x_test {xs[1].shape} differ beyond N")
    total = xs[0].shape[1]
    steps = total if steps is None else steps
    if steps > total:
        raise DataError(f"{path}: the study asks for {steps} time steps; the file has {total}")
    x = np.concatenate(xs).astype(np.uint8) if xs[0].dtype != np.uint8 else np.concatenate(xs)
    y = np.concatenate(ys).astype(np.int64)
    n_classes = int(y.max()) + 1 if y.size else 1
    lazy = LazySpikes(len(y), steps, x.shape[2:], dense=lambda idx: x[idx, :steps])
    return SpikeDataset(path.stem, lazy, torch.from_numpy(y), len(ys[0]), n_classes)


def tonic_dataset(name: str, steps: int, path: str | Path | None, bin_us: float | None = None,
                  seed: int = 0) -> SpikeDataset:
    """A tonic event dataset (``tonic:NMNIST``, ``tonic:SHD``, ...; ``pip install tonic``;
    :func:`hwsim.sim.inputs.tonic_source`): the official train/test split where the set has one, else a seeded
    held-out 20 %; events binned into ``steps`` frames of ``bin_us`` µs each (None: each sample's own duration cut
    into ``steps``), per batch (:class:`LazySpikes`). ``split_note`` and ``binning`` on the result say which."""
    from hwsim.errors import InputError
    from hwsim.sim.inputs import tonic_source

    try:
        source = tonic_source(name, path, steps, bin_us=bin_us, seed=seed)
    except InputError as err:
        raise DataError(str(err)) from None
    data = SpikeDataset(source.name, LazySpikes(len(source.labels), steps, source.shape, source.fetch),
                        torch.from_numpy(source.labels), source.n_train, source.n_classes)
    data.split_note, data.binning = source.split, source.binning
    return data


PROCEDURAL_BYTES_PER_ENTRY = 16  # an outside review measured cue at T = 3000 (1.2e8 entries): 1.8 GB at its peak


def _check_procedural_size(name: str, steps: int, options: dict) -> None:
    """Refuse (one line, before anything is generated) a built-in data set whose spikes at ``steps`` steps would
    not fit the memory limit: samples x steps x inputs x :data:`PROCEDURAL_BYTES_PER_ENTRY`. The sizes come from
    each generator's own defaults (``options`` override them, as they do the generator's) and constants."""
    import inspect

    from hwsim.safeio import check_memory

    def option(generator, key: str) -> int:
        return int(options.get(key, inspect.signature(generator).parameters[key].default))

    if name == "digits":
        from sklearn.datasets import load_digits

        samples, inputs = load_digits().data.shape
    elif name == "randman":
        samples, inputs = option(randman, "n_classes") * option(randman, "samples_per_class"), option(randman, "units")
    elif name == "cue":
        from hwsim.methods.cue import CHANNELS

        samples, inputs = option(cue, "n_trials"), CHANNELS
    elif name == "dvs_bars":
        from hwsim.methods.dvs_synthetic import DIRECTIONS, dvs_bars

        samples = len(DIRECTIONS) * option(dvs_bars, "samples_per_class")
        inputs = 2 * option(dvs_bars, "size") ** 2
    else:
        return
    check_memory(samples * int(steps) * inputs * PROCEDURAL_BYTES_PER_ENTRY, f"--dataset {name} at T={steps}",
                 f"{samples} samples x {steps} steps x {inputs} inputs, {PROCEDURAL_BYTES_PER_ENTRY} bytes each while "
                 f"generated")


def load_dataset(name: str, steps: int, seed: int = 0, path: str | Path | None = None, **options) -> SpikeDataset:
    """A dataset by name (``DATASETS``), a user's ``.npz`` file (:func:`npz_dataset`) or ``tonic:<Name>``;
    file-backed ones need ``path``."""
    if str(name).endswith(".npz"):
        return npz_dataset(name, steps)
    bin_us = options.pop("bin_us", None)
    if str(name).startswith("tonic:"):
        return tonic_dataset(str(name)[6:], steps, path, bin_us=bin_us, seed=seed)
    if bin_us is not None:
        raise DataError(f"bin_us {bin_us}: fixed event bins apply to tonic event data sets only, not "
                        f"{str(name)[:40]!r}")
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if steps < 1:
        raise DataError(f"timesteps must be >= 1, got {steps}")
    _check_procedural_size(name, steps, options)
    if name == "digits":
        return digits(steps, seed=seed, **options)
    if name == "randman":
        return randman(steps, seed=seed, **options)
    if name == "cue":  # the e-prop paper's cue-accumulation task (methods/cue.py)
        return cue(steps, seed=seed, **options)
    if name == "dvs_bars":  # procedural event-camera task (methods/dvs_synthetic.py)
        from hwsim.methods.dvs_synthetic import dvs_bars

        return dvs_bars(steps, seed=seed, **options)
    if path is None:
        raise DataError(f"dataset {name!r} reads local files: give --data-path (nothing is downloaded)")
    if name == "mnist":
        return mnist(path, steps, seed=seed, **options)
    if name == "nmnist":
        return nmnist(path, steps, seed=seed, **options)
    return shd(path, steps, seed=seed, **options)
