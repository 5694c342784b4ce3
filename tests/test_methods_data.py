"""Data: built-in digits, the procedural Randman task, and local-file loaders on tiny files written here."""

import struct

import h5py
import numpy as np
import pytest
import torch
from hwsim.methods.data import DataError, digits, latency_encode, load_dataset, mnist, nmnist, randman, shd


def test_digits_rate_and_latency():
    data = digits(steps=6, seed=1)
    assert data.x.shape == (1797, 6, 64) and data.n_classes == 10 and set(data.x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(data.x, digits(steps=6, seed=1).x)  # seeded: the same spikes every time
    assert not torch.equal(data.x, digits(steps=6, seed=2).x)
    lat = digits(steps=5, encoding="latency")
    assert lat.x.sum(1).max() == 1  # at most one spike per input
    assert data.n_train == round(1797 * 0.8)


def test_latency_encoding_by_hand():
    out = latency_encode(np.array([[1.0, 0.5, 0.0]]), steps=5)
    assert out[0, :, 0].tolist() == [1, 0, 0, 0, 0]  # strongest fires first
    assert out[0, :, 1].tolist() == [0, 0, 1, 0, 0]
    assert out[0, :, 2].sum() == 0


def test_randman_is_seeded_one_spike_per_unit_and_learnable_structure():
    a = randman(steps=10, n_classes=3, units=20, samples_per_class=30, seed=4)
    b = randman(steps=10, n_classes=3, units=20, samples_per_class=30, seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert (a.x.sum(1) == 1).all()  # every unit fires exactly once
    # classes differ: the mean firing time per unit separates them
    times = a.x.argmax(1).float()
    means = torch.stack([times[a.y == c].mean(0) for c in range(3)])
    assert (means[0] - means[1]).abs().max() > 1.0


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_loader(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28))
    labels = np.arange(20) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    data = mnist(tmp_path, steps=4)
    assert data.x.shape == (20, 4, 784) and sorted(data.y.tolist()) == sorted(labels.tolist())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: IDX body has 3 bytes, the header promises 9"):
        mnist(tmp_path, steps=4)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="not an IDX file.*expected magic 00 00 08"):
        mnist(tmp_path, steps=4)
    with pytest.raises(DataError, match="no such file"):
        mnist(tmp_path / "nowhere", steps=4)


def _nmnist_event(x, y, p, t):
    return bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])


def test_nmnist_loader(tmp_path):
    for digit in (3, 7):
        folder = tmp_path / str(digit)
        folder.mkdir()
        events = [_nmnist_event(digit, 2, 1, 0), _nmnist_event(5, digit, 0, 150_000), _nmnist_event(1, 1, 1, 299_999)]
        (folder / "00001.bin").write_bytes(b"".join(events))
    data = nmnist(tmp_path, steps=3, test_fraction=0.0)
    assert data.x.shape == (2, 3, 2, 34, 34)
    sample = data.x[data.y.tolist().index(3)]
    assert sample[0, 1, 2, 3] == 1 and sample[1, 0, 3, 5] == 1 and sample[2, 1, 1, 1] == 1
    assert sample.sum() == 3
    (tmp_path / "3" / "00002.bin").write_bytes(b"\x01\x02\x03")
    with pytest.raises(DataError, match="00002.bin: 3 bytes is not a whole number of 5-byte N-MNIST events"):
        nmnist(tmp_path, steps=3)
    with pytest.raises(DataError, match="no N-MNIST files"):
        nmnist(tmp_path / "3", steps=3)


def test_shd_loader(tmp_path):
    path = tmp_path / "shd.h5"
    vlen = h5py.vlen_dtype(np.float32)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (2,), dtype=vlen)
        units = f.create_dataset("spikes/units", (2,), dtype=h5py.vlen_dtype(np.uint16))
        times[0], units[0] = np.array([0.0, 0.5, 0.99], np.float32), np.array([0, 10, 699], np.uint16)
        times[1], units[1] = np.array([0.25], np.float32), np.array([3], np.uint16)
        f["labels"] = np.array([4, 19])
    data = shd(path, steps=4, test_fraction=0.0)
    assert data.x.shape == (2, 4, 700) and data.n_classes == 20
    first = data.x[data.y.tolist().index(4)]
    assert first[0, 0] == 1 and first[2, 10] == 1 and first[3, 699] == 1 and first.sum() == 3
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["labels"] = np.array([1])
    with pytest.raises(DataError, match="bad.h5: missing dataset 'spikes/times'"):
        shd(bad, steps=4)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="junk.h5: not a readable HDF5 file"):
        shd(junk, steps=4)


def test_unknown_dataset_lists_known_and_files_need_a_path():
    with pytest.raises(DataError, match="unknown dataset 'cifar'; known datasets: digits, randman, mnist"):
        load_dataset("cifar", 4)
    with pytest.raises(DataError, match="reads local files: give --data-path"):
        load_dataset("mnist", 4)
