"""Spike input from files (``--input``) and every network format on ``--net``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwsim.cli.main import main
from hwsim.formats import netx, nir_io
from hwsim.sim.engine import InputError, bernoulli, simulate
from hwsim.sim.inputs import events_to_file, load_spikes
from hwsim.sim.network import from_spec, save


def test_dense_spike_file_is_what_the_engine_runs(tmp_path):
    x = bernoulli((9, 2, 1, 4, 5), 0.3, seed=1)
    np.savez(tmp_path / "s.npz", spikes=x.astype(bool))
    np.testing.assert_array_equal(load_spikes(tmp_path / "s.npz", (1, 4, 5)), x)
    np.save(tmp_path / "one.npy", x[:, 0].astype(np.float32))  # (T, *shape): one sample
    assert load_spikes(tmp_path / "one.npy", (1, 4, 5)).shape == (9, 1, 1, 4, 5)
    assert load_spikes(tmp_path / "s.npz", (1, 4, 5), timesteps=4).shape[0] == 4


def test_events_are_binned_into_the_input_grid(tmp_path):
    path = events_to_file(tmp_path / "e.npz", t=[0, 0, 2.5, 2.7, 7], x=[1, 1, 3, 3, 0], y=[0, 0, 1, 1, 2],
                          p=[0, 0, 1, 1, 1], sensor_size=(4, 3, 2), dt=1.0)
    spikes = load_spikes(path, (2, 3, 4))
    assert spikes.shape == (8, 1, 2, 3, 4) and spikes.sum() == 3  # two duplicates merge; 2.5 and 2.7 -> step 2
    assert spikes[0, 0, 0, 0, 1] == 1 and spikes[2, 0, 1, 1, 3] == 1 and spikes[7, 0, 1, 2, 0] == 1
    flat = load_spikes(path, (24,), timesteps=5)  # flattened channels first; the event at step 7 is dropped
    assert flat.shape == (5, 1, 24) and flat[2, 0, (1 * 3 + 1) * 4 + 3] == 1 and flat.sum() == 2
    audio = events_to_file(tmp_path / "a.npz", t=[0, 1000, 2000], x=[3, 0, 3], b=[0, 1, 1], sensor_size=(4,),
                           dt=1000.0)
    s = load_spikes(audio, (4,))
    assert s.shape == (3, 2, 4) and s[0, 0, 3] and s[1, 1, 0] and s[2, 1, 3]


@pytest.mark.parametrize("arrays,message", [
    ({"spikes": np.zeros((5, 1, 7))}, r"bad.npz: spikes have shape \(5, 1, 7\); the network needs \(T, B, 6\)"),
    ({"spikes": np.full((5, 1, 6), 2)}, r"bad.npz: spikes must be 0/1; found the value 2"),
    ({"spikes": np.array([["a"] * 6] * 5)}, r"bad.npz: spikes have dtype <U1"),
    ({"t": np.array([0, 1]), "x": np.array([0, 9]), "sensor_size": np.array([6])},
     r"bad.npz: event field 'x' spans 0..9, outside the sensor"),
    ({"t": np.array([0, 1]), "x": np.array([0, 1])}, r"bad.npz: events need 'sensor_size'"),
    ({"a": np.zeros(3), "b": np.zeros(3)}, r"bad.npz: expected an array 'spikes'"),
])
def test_bad_input_files_are_one_clear_line(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=message):
        load_spikes(tmp_path / "bad.npz", (6,))


def test_run_takes_every_network_format_and_a_spike_file(tmp_path, capsys):
    net = from_spec("1x6x6-c2k3p1-p2-4", mode="fixed", seed=3)
    files = {"npz": save(net, tmp_path / "n.npz"), "nir": nir_io.write(net, tmp_path / "n.nir"),
             "net": netx.write(net, tmp_path / "n.net")}
    x = bernoulli((12, 3, 1, 6, 6), 0.3, seed=2)
    np.savez(tmp_path / "in.npz", spikes=x)
    expected = [int(s.sum()) for s in simulate(net, x).spikes]
    for kind, path in files.items():
        assert main(["run", "--net", str(path), "--input", str(tmp_path / "in.npz"), "--json"]) == 0, kind
        out = json.loads(capsys.readouterr().out)
        assert out["timesteps"] == 12 and out["batch"] == 3
        assert [layer["spikes_out"] for layer in out["layers"]] == expected, kind
    assert main(["estimate", "--net", str(files["nir"]), "--input", str(tmp_path / "in.npz"), "--chip", "loihi2",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input"].endswith("in.npz")


def test_commands_name_the_bad_file(tmp_path, capsys):
    np.savez(tmp_path / "wrong.npz", spikes=np.zeros((4, 1, 3)))
    assert main(["run", "--net", "6-4", "--input", str(tmp_path / "wrong.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "wrong.npz: spikes have shape (4, 1, 3)" in err and len(err.splitlines()) == 1
    assert main(["run", "--net", str(tmp_path / "missing.nir")]) == 2
    assert "missing.nir: no such NIR file" in capsys.readouterr().err
    (tmp_path / "m.xyz").write_text("x")
    assert main(["run", "--net", str(tmp_path / "m.xyz")]) == 2
    assert "unknown network file type '.xyz'" in capsys.readouterr().err


def test_dataset_file_keeps_its_split_and_names_a_missing_key(tmp_path):
    from hwsim.methods.data import DataError, LazySpikes, load_dataset

    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((10, 5, 6)) < 0.3, rng.random((4, 5, 6)) < 0.3
    np.savez(tmp_path / "d.npz", x_train=x_train, y_train=np.arange(10) % 3, x_test=x_test,
             y_test=np.array([2, 1, 0, 1]))
    data = load_dataset(str(tmp_path / "d.npz"), 4)
    assert isinstance(data.x, LazySpikes) and data.n_classes == 3 and data.shape == (6,) and data.timesteps == 4
    xt, yt = data.split("test")
    np.testing.assert_array_equal(xt[np.arange(4)].numpy(), x_test[:, :4].astype(np.float32))
    assert yt.tolist() == [2, 1, 0, 1] and len(data.split("train")[1]) == 10
    np.savez(tmp_path / "m.npz", x_train=x_train, y_train=np.arange(10), x_test=x_test)
    with pytest.raises(DataError, match=r"m.npz: missing key 'y_test'"):
        load_dataset(str(tmp_path / "m.npz"), 4)
    np.savez(tmp_path / "v.npz", x_train=x_train * 3, y_train=np.arange(10), x_test=x_test, y_test=np.arange(4))
    with pytest.raises(DataError, match=r"v.npz: x_train must hold 0/1 spikes; found the value 3"):
        load_dataset(str(tmp_path / "v.npz"), 4)


def test_event_datasets_keep_the_official_split_and_stay_events(tmp_path):
    import h5py
    from hwsim.methods.data import LazySpikes, shd

    for part, labels in (("train", [4, 19, 2]), ("test", [7])):
        with h5py.File(tmp_path / f"shd_{part}.h5", "w") as f:
            times = f.create_dataset("spikes/times", (len(labels),), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (len(labels),), dtype=h5py.vlen_dtype(np.uint16))
            for i in range(len(labels)):
                times[i], units[i] = np.array([0.1 * i], np.float32), np.array([i + 1], np.uint16)
            f["labels"] = np.array(labels)
    data = shd(tmp_path, steps=5)
    assert isinstance(data.x, LazySpikes) and data.n_train == 3
    assert data.split("test")[1].tolist() == [7] and data.split("train")[1].tolist() == [4, 19, 2]
    batch = data.x[np.array([1, 3])]
    assert batch.shape == (2, 5, 700) and batch[0, 0, 2] == 1 and batch[1, 0, 1] == 1 and batch.sum() == 2


def test_tonic_datasets_keep_their_split_and_are_binned_per_sample(tmp_path, monkeypatch):
    """tonic is optional; its dataset interface (``cls(save_to, train)``, ``sensor_size``, ``classes``,
    ``ds[i] -> (structured events t, x, y, p; label)``) is stood in for here, so hwsim's side is what is tested."""
    import sys
    import types

    from hwsim.methods.data import DataError, load_dataset

    dtype = [("t", np.int64), ("x", np.int64), ("y", np.int64), ("p", np.int64)]

    class Fake:
        sensor_size = (4, 3, 2)
        classes = ["a", "b", "c"]

        def __init__(self, save_to, train):
            assert save_to == str(tmp_path)
            self.samples = [(np.array([(0, 1, 2, 1), (900, 3, 0, 0)], dtype), 2)] if train else [
                (np.array([(50, 0, 0, 1)], dtype), 0), (np.array([(10, 2, 1, 0), (10, 2, 1, 0)], dtype), 1)]

        def __len__(self):
            return len(self.samples)

        def __getitem__(self, i):
            return self.samples[i]

    monkeypatch.setitem(sys.modules, "tonic", types.SimpleNamespace(datasets=types.SimpleNamespace(Fake=Fake)))
    data = load_dataset("tonic:Fake", 3, path=tmp_path)
    assert data.n_train == 1 and data.n_classes == 3 and data.shape == (2, 3, 4)
    assert data.split("train")[1].tolist() == [2] and data.split("test")[1].tolist() == [0, 1]
    x = data.x[np.arange(3)]
    assert x[0, 0, 1, 2, 1] == 1 and x[0, 2, 0, 0, 3] == 1 and x[0].sum() == 2
    assert x[1, 2, 1, 0, 0] == 1 and x[2].sum() == 1  # each sample spans its own T frames
    with pytest.raises(DataError, match="tonic has no dataset 'Nope'"):
        load_dataset("tonic:Nope", 3, path=tmp_path)


def test_feasibility_and_estimate_learning_take_a_spike_file(tmp_path, capsys):
    x = bernoulli((6, 2, 10), 0.3, seed=1)
    np.savez(tmp_path / "in.npz", spikes=x)
    assert main(["feasibility", "--net", "10-8-3", "--rules", "sltt", "--chips", "loihi2", "--input",
                 str(tmp_path / "in.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["rule"] == "sltt"
    assert main(["estimate", "--net", "10-8-3", "--rules", "sltt", "--chip", "loihi2", "--input",
                 str(tmp_path / "in.npz"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["timesteps"] == 6 and out["batch"] == 2


def test_train_takes_a_dataset_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default checkpoint goes to runs/ under the working folder
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x_train=rng.random((40, 4, 6)) < 0.4, y_train=rng.integers(0, 3, 40),
             x_test=rng.random((12, 4, 6)) < 0.4, y_test=rng.integers(0, 3, 12))
    assert main(["train", "--rules", "sltt", "--dataset", str(tmp_path / "d.npz"), "--net", "6-5-3", "--epochs", "1",
                 "-T", "4", "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"] == "runs/sltt-d.pt"
    np.savez(tmp_path / "k.npz", x_train=np.zeros((2, 4, 6)), y_train=np.zeros(2, int), x_test=np.zeros((1, 4, 6)))
    assert main(["train", "--rules", "sltt", "--dataset", str(tmp_path / "k.npz"), "--net", "6-5-3", "--epochs", "1",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "k.npz: missing key 'y_test'" in err and len(err.splitlines()) == 1


def test_dataset_layout_spike_files_are_refused_as_swapped(tmp_path):
    """A (N, T, ...) data-set array given as --input: the engine's axis guard, applied to the file."""
    from hwsim.sim.inputs import check_input_options

    x = bernoulli((20, 8, 64), 0.3, seed=1)  # 20 samples of the T = 8 the network was trained with
    np.savez(tmp_path / "data.npz", spikes=x)
    with pytest.raises(InputError, match=r"data.npz: spikes \(20, 8, 64\) look like \(N, T, ...\) data: axis 1 has "
                                         r"8 steps, the T this network was trained with"):
        load_spikes(tmp_path / "data.npz", (64,), trained_timesteps=8)
    assert load_spikes(tmp_path / "data.npz", (64,), trained_timesteps=20).shape == (20, 8, 64)  # T = 20: fine
    assert load_spikes(tmp_path / "data.npz", (64,)).shape == (20, 8, 64)  # nothing declared: no guess
    check_input_options(rate=False, batch=False, timesteps=False)
    for option, flag in (("rate", "--rate"), ("batch", "--batch-size"), ("timesteps", "-T/--timesteps")):
        with pytest.raises(InputError, match=f"{flag} cannot be combined with --input"):
            check_input_options(**{option: True})


def _fake_tonic(monkeypatch):
    import sys
    import types

    dtype = [("t", np.int64), ("x", np.int64), ("y", np.int64), ("p", np.int64)]
    samples = [(np.array([(0, 1, 2, 1), (950, 3, 0, 0), (2100, 0, 0, 0)], dtype), 1),
               (np.array([(10, 2, 1, 0), (40_000, 2, 1, 1)], dtype), 0),
               (np.array([(500, 0, 1, 1)], dtype), 2), (np.array([(1500, 1, 1, 1)], dtype), 1),
               (np.array([(0, 3, 2, 0)], dtype), 0)]

    class WithSplit:
        sensor_size = (4, 3, 2)
        classes = ["a", "b", "c"]

        def __init__(self, save_to, train):
            self.samples = samples[:3] if train else samples[3:]

        def __len__(self):
            return len(self.samples)

        def __getitem__(self, i):
            return self.samples[i]

    class NoSplit(WithSplit):  # as tonic's ASLDVS, NCARS-like classes without train=
        def __init__(self, save_to):
            self.samples = samples

    monkeypatch.setitem(sys.modules, "tonic", types.SimpleNamespace(
        datasets=types.SimpleNamespace(WithSplit=WithSplit, NoSplit=NoSplit)))
    return samples


def test_tonic_sets_without_a_split_get_a_seeded_held_out_split(tmp_path, monkeypatch):
    from hwsim.sim.inputs import tonic_source

    samples = _fake_tonic(monkeypatch)
    source = tonic_source("NoSplit", tmp_path, 4, seed=3)  # no TypeError for the missing train= argument
    assert source.n_train == 4 and len(source.labels) == 5 and "held out" in source.split and "seed 3" in source.split
    order = np.random.default_rng(3).permutation(5)
    assert source.labels.tolist() == [samples[i][1] for i in order]
    assert tonic_source("NoSplit", tmp_path, 4, seed=3).labels.tolist() == source.labels.tolist()  # reproducible
    official = tonic_source("WithSplit", tmp_path, 4)
    assert official.n_train == 3 and official.split == "official train/test split" and official.shape == (2, 3, 4)
    with pytest.raises(InputError, match="tonic has no dataset 'Nope'"):
        tonic_source("Nope", tmp_path, 4)


def test_tonic_events_binned_with_a_fixed_width_in_microseconds(tmp_path, monkeypatch):
    """With a bin width every sample has the same dt (events past T bins dropped); without, each sample's own
    duration is cut into T bins (the first sample's 2.1 ms and the second's 40 ms alike)."""
    from hwsim.sim.inputs import event_steps, tonic_source

    _fake_tonic(monkeypatch)
    fixed = tonic_source("WithSplit", tmp_path, 3, bin_us=1000)
    steps, index = fixed.fetch(0)
    assert steps.tolist() == [0, 0, 2] and index.tolist() == [(1 * 3 + 2) * 4 + 1, 3, 0]
    steps, index = fixed.fetch(1)
    assert steps.tolist() == [0] and index.tolist() == [1 * 4 + 2]  # the event at 40 ms is past 3 ms: dropped
    assert "1000 µs" in fixed.binning
    own = tonic_source("WithSplit", tmp_path, 3)
    assert own.fetch(0)[0].tolist() == [0, 1, 2] and own.fetch(1)[0].tolist() == [0, 2]
    assert event_steps(np.array([0, 999, 1000, 5000]), 4, bin_us=1000)[0].tolist() == [0, 0, 1, 5]
    with pytest.raises(InputError, match="bin width must be > 0"):
        event_steps(np.array([1]), 4, bin_us=0)


def test_tonic_fixed_bins_reach_training_and_the_study(tmp_path, monkeypatch):
    """A fixed bin width (µs) goes from the study key and TrainConfig to the data set, which says how it binned."""
    from hwsim.methods.data import DataError, load_dataset

    from hwsim.study.pipeline import StudyConfig, StudyError, load_config

    _fake_tonic(monkeypatch)
    data = load_dataset("tonic:NoSplit", 4, path=tmp_path, bin_us=250.0, seed=1)
    assert data.binning.startswith("fixed bins of 250 µs") and data.split_note.startswith("no official split")
    with pytest.raises(DataError, match="bin_us 250.0: fixed event bins apply to tonic event data sets only"):
        load_dataset("digits", 4, bin_us=250.0)
    assert StudyConfig.model_validate({"dataset": "tonic:NoSplit", "bin_us": 250.0}).bin_us == 250.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("bin_us: 250.0\n")
    with pytest.raises(StudyError, match="bin_us: fixed event bins apply to tonic event data sets only"):
        load_config(bad)
