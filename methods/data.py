"""Data: built-in (scikit-learn digits), procedural (Randman-style spike tasks), and local-file loaders.

Every dataset is a :class:`SpikeDataset`: ``x`` float32 0/1 spikes ``(N, T, *shape)`` built once (seeded,
deterministic), ``y`` int64 labels ``(N,)``, and a train/test split. Nothing is downloaded.

* ``digits`` -- scikit-learn's 8x8 digits (1797 samples, 10 classes), intensities scaled to [0, 1] and
  rate-encoded (Bernoulli, p = intensity per step) or latency-encoded (one spike at step
  ``round((1 - p) * (T - 1))`` for p > 0).
* ``randman`` -- a random-manifold spike task written from Zenke & Vogels (Neural Comput. 2021): each
  class is a smooth random map from a ``dim``-dimensional latent cube to one firing time per input unit;
  a sample is a uniform latent point, its units fire once at the mapped time (plus jitter).
* local files -- MNIST (IDX), N-MNIST (.bin event files), SHD (HDF5), see the loaders' docstrings.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("digits", "randman", "mnist", "nmnist", "shd", "dvs_bars")


class DataError(ValueError):
    """A dataset name, file or option is wrong; the message names it and what was expected."""


@dataclass
class SpikeDataset:
    """Spikes ``x`` (N, T, *shape) float32 and labels ``y`` (N,) int64, split at ``n_train``."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    n_train: int
    n_classes: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[2:])

    @property
    def timesteps(self) -> int:
        return int(self.x.shape[1])

    def split(self, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        if part == "train":
            return self.x[: self.n_train], self.y[: self.n_train]
        return self.x[self.n_train:], self.y[self.n_train:]


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


def nmnist(folder: str | Path, steps: int, limit: int | None = None, test_fraction: float = 0.2,
           seed: int = 0) -> SpikeDataset:
    """N-MNIST from ``folder/<digit>/<id>.bin``; events binned into ``steps`` frames of (2, 34, 34)."""
    folder = Path(folder)
    files = sorted(folder.glob("[0-9]/*.bin"))
    if not files:
        raise DataError(f"{folder}: no N-MNIST files (expected <folder>/<digit 0-9>/<id>.bin)")
    files = files[:limit] if limit else files
    x = np.zeros((len(files), steps, 2, 34, 34), np.float32)
    y = np.zeros(len(files), np.int64)
    for n, path in enumerate(files):
        events = read_nmnist_events(path)
        y[n] = int(path.parent.name)
        if len(events):
            span = max(int(events["t"].max()) + 1, 1)
            frame = np.minimum(events["t"] * steps // span, steps - 1)
            x[n, frame, events["p"], events["y"], events["x"]] = 1.0
    return _shuffle_split(x, y, "nmnist", 10, test_fraction, seed)


def shd(path: str | Path, steps: int, duration_s: float = 1.0, limit: int | None = None,
        test_fraction: float = 0.2, seed: int = 0) -> SpikeDataset:
    """Spiking Heidelberg Digits HDF5: ``spikes/times`` and ``spikes/units`` (ragged, one array per sample,
    times in seconds), ``labels``; 700 input units, 20 classes; binned into ``steps`` over ``duration_s``."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected an SHD .h5 file)")
    try:
        with h5py.File(path, "r") as f:
            for key in ("spikes/times", "spikes/units", "labels"):
                if key not in f:
                    raise DataError(f"{path}: missing dataset {key!r} (expected SHD layout spikes/times, "
                                    f"spikes/units, labels)")
            times, units, labels = f["spikes/times"][:], f["spikes/units"][:], f["labels"][:]
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None
    count = min(len(labels), limit) if limit else len(labels)
    x = np.zeros((count, steps, 700), np.float32)
    for n in range(count):
        t, u = np.asarray(times[n]), np.asarray(units[n]).astype(np.int64)
        if u.size and u.max() >= 700:
            raise DataError(f"{path}: sample {n} has unit {u.max()}; SHD has 700 units")
        keep = t < duration_s
        frame = np.minimum((t[keep] / duration_s * steps).astype(np.int64), steps - 1)
        x[n, frame, u[keep]] = 1.0
    return _shuffle_split(x, np.asarray(labels[:count]).astype(np.int64), "shd", 20, test_fraction, seed)


def load_dataset(name: str, steps: int, seed: int = 0, path: str | Path | None = None, **options) -> SpikeDataset:
    """A dataset by name (``DATASETS``); file-backed ones need ``path``."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if steps < 1:
        raise DataError(f"timesteps must be >= 1, got {steps}")
    if name == "digits":
        return digits(steps, seed=seed, **options)
    if name == "randman":
        return randman(steps, seed=seed, **options)
    if name == "dvs_bars":  # procedural event-camera task (methods/dvs_synthetic.py)
        from methods.dvs_synthetic import dvs_bars

        return dvs_bars(steps, seed=seed, **options)
    if path is None:
        raise DataError(f"dataset {name!r} reads local files: give --data-path (nothing is downloaded)")
    if name == "mnist":
        return mnist(path, steps, seed=seed, **options)
    if name == "nmnist":
        return nmnist(path, steps, seed=seed, **options)
    return shd(path, steps, seed=seed, **options)
