"""The cue-accumulation task (hwsim.methods.cue, the e-prop paper's evidence accumulation), its ``loss_steps``
through ``load_dataset`` and ``hwsim train``, and the SHD reader on a recurrent net."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hwsim.methods.cue import DEFAULTS, cue_accumulation, task_steps
from hwsim.methods.data import DataError, load_dataset


def test_layout_by_hand():
    """Every channel group fires where the task says and nowhere else; the label is the side with more cues
    (counted here from the spikes themselves); only the recall window is scored."""
    x, y, loss_steps = cue_accumulation(64, seed=3, noise_rate=0.0, cue_rate=1.0, recall_rate=1.0)
    assert x.shape == (64, 170, 40) and x.dtype == np.float32 and y.dtype == np.int64 and loss_steps.dtype == bool
    assert task_steps() == 170 and loss_steps.tolist() == [False] * 155 + [True] * 15
    assert set(np.unique(x)) <= {0.0, 1.0}
    for trial in range(64):
        left = right = 0
        for k in range(7):
            window = x[trial, 15 * k + 5: 15 * k + 15]
            assert x[trial, 15 * k: 15 * k + 5].sum() == 0  # the gap before each cue is silent
            on_left, on_right = window[:, :10].all(), window[:, 10:20].all()
            assert on_left != on_right and window[:, 20:].sum() == 0  # one side per cue, nothing else
            left, right = left + on_left, right + on_right
        assert y[trial] == (1 if right > left else 0)
        assert x[trial, 105:155].sum() == 0  # the delay
        assert x[trial, 155:, 20:30].all() and x[trial, 155:, :20].sum() == 0 and x[trial, 155:, 30:].sum() == 0
    assert 0 < y.sum() < 64


def test_rates_seeds_and_balance():
    x, y, _ = cue_accumulation(400, seed=0)
    again = cue_accumulation(400, seed=0)
    assert np.array_equal(x, again[0]) and np.array_equal(y, again[1])
    assert not np.array_equal(x, cue_accumulation(400, seed=1)[0])
    assert abs(x[:, :, 30:].mean() - DEFAULTS["noise_rate"]) < 0.005  # noise at 0.1 per step throughout
    assert abs(x[:, 155:, 20:30].mean() - DEFAULTS["recall_rate"]) < 0.01
    cue_on = x[:, 5:15, :20].reshape(400, 10, 2, 10).mean(axis=(1, 3)).max(axis=1)  # first cue, its side
    assert abs(cue_on.mean() - DEFAULTS["cue_rate"]) < 0.01
    assert 0.4 < y.mean() < 0.6


def test_load_dataset_registers_cue_with_loss_steps():
    data = load_dataset("cue", 170, seed=0, n_trials=50)
    assert data.x.shape == (50, 170, 40) and data.n_classes == 2 and data.n_train == 40
    assert data.loss_steps.dtype == torch.bool and int(data.loss_steps.sum()) == 15
    longer = load_dataset("cue", 200, n_trials=4)  # T sets the delay: 200 - 120 steps
    assert longer.x.shape[1] == 200 and int(longer.loss_steps.sum()) == 15 and not longer.loss_steps[:185].any()
    with pytest.raises(DataError, match="cue accumulation needs T >= 120"):
        load_dataset("cue", 8)
    with pytest.raises(DataError, match="unknown setting 'cues'"):
        load_dataset("cue", 170, cues=3)
    with pytest.raises(DataError, match="n_cues must be odd"):
        cue_accumulation(4, n_cues=6)
    with pytest.raises(DataError, match="T=150 and delay_steps=50 disagree"):
        load_dataset("cue", 150, delay_steps=50)
    assert load_dataset("digits", 4).loss_steps is None  # other data sets: every step scored, as before


@pytest.fixture
def flush_denormals():
    """The leaky membranes decay into float32 subnormals in the silent delay, which makes CPU arithmetic about ten
    times slower; flushing them (to zero, below 1.2e-38) changes no spike. One torch thread: the flush holds for the
    calling thread, and nets this small gain nothing from a second one (docs/training.md). Restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)


def _train_cue(network, data, epochs: int, lr: float = 0.2, seed: int = 0) -> float:
    """BPTT with SGD (momentum 0.9, batch 32) as ``hwsim train`` runs it, torch seeded with ``seed``; returns the
    test accuracy (read-out summed over the recall window)."""
    from hwsim.methods import build_rule
    from hwsim.methods.train import evaluate

    torch.manual_seed(seed)
    rule = build_rule("bptt", network)
    rule.loss_steps = data.loss_steps
    optimizer = torch.optim.SGD(list(rule.parameters()), lr=lr, momentum=0.9)
    x, y = data.split("train")
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch))
        for lo in range(0, len(y), 32):
            index = order[lo: lo + 32]
            rule.step(x[index].transpose(0, 1), y[index], optimizer)
    return evaluate(rule, data, "test", "cpu")


def test_recurrent_alif_net_remembers_where_feed_forward_lif_cannot(flush_denormals):
    """The full task (T = 170, delay 50) on 600 trials (480 train, 120 test): BPTT on a recurrent ALIF net 40-a64-2
    (adaptation beta = 0.1, rho = exp(-1/200)), 6 epochs at lr 0.1, reaches >= 80 % on held-out trials; the
    feed-forward LIF net 40-64-2 of the same size, trained the same way, stays near chance (its membrane forgets
    within two steps: lam = 0.09; the larger class of the 120 test trials is 51-58 % for seeds 0-4).

    80 %, not 90 %: on this few training trials the last epoch depends on the seed (seeds 0-4 of data and weights:
    94.2, 90.8, 95.0, 94.2, 84.2 % at lr 0.1 after 6 epochs; at lr 0.2 after 4 epochs, the setting until
    2026-12-06, 95.8, 93.3, 92.5, 93.3, 77.5 %), so a 90 % bound on one seed held or failed with the machine's
    float rounding. The >= 90 % claim is the demonstration's below (1000 trials, three seeds, each >= 90 %).
    docs/training.md has the longer runs, the command line and the feed-forward ALIF control."""
    import dataclasses

    from hwsim.sim.network import FloatALIF, Network, from_spec

    data = load_dataset("cue", 170, seed=0, n_trials=600)
    base = from_spec("40-a64-2", seed=0)
    hidden = base.layers[0]
    alif = Network(40, [dataclasses.replace(hidden, neuron=dataclasses.replace(hidden.neuron, beta=0.1)),
                        base.layers[1]])
    assert isinstance(alif.layers[0].neuron, FloatALIF) and alif.layers[0].kind == "recurrent"
    recurrent = _train_cue(alif, data, epochs=6, lr=0.1)
    feed_forward = _train_cue(from_spec("40-64-2", seed=0), data, epochs=6, lr=0.1)
    print("cue accuracies", recurrent, feed_forward)
    assert recurrent >= 0.8, (recurrent, feed_forward)
    assert feed_forward <= 0.7, (recurrent, feed_forward)


def _shd_file(path, n: int, seed: int) -> None:
    """An SHD-format file as the dataset ships it (Cramer et al. 2020): ragged ``spikes/times`` (float64 seconds)
    and ``spikes/units`` (uint16), ``labels`` (uint16). Class c fires units 100 c .. 100 c + 49, early in the sample
    for c = 0, late for c = 1."""
    import h5py

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.uint16)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float64))
        units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i, label in enumerate(labels):
            count = 60
            units[i] = (100 * label + rng.integers(0, 50, count)).astype(np.uint16)
            lo = 0.0 if label == 0 else 0.5
            times[i] = np.sort(rng.uniform(lo, lo + 0.5, count))
        f["labels"] = labels
        f.create_group("extra")  # the real files carry speaker, keys and meta data here; not read


def test_shd_reader_trains_a_recurrent_net(tmp_path, flush_denormals):
    """The SHD reader reads the HDF5 layout (official split from shd_train.h5 / shd_test.h5) and a recurrent net
    trains on it through ``hwsim train``'s API."""
    from hwsim.methods.train import TrainConfig, train

    _shd_file(tmp_path / "shd_train.h5", 96, 0)
    _shd_file(tmp_path / "shd_test.h5", 32, 1)
    data = load_dataset("shd", 10, path=tmp_path)
    assert data.shape == (700,) and data.n_classes == 20 and data.n_train == 96 and data.loss_steps is None
    x, _ = data.split("train")
    assert x[np.arange(4)].shape == (4, 10, 700)
    config = TrainConfig(rule="bptt", dataset="shd", data_path=str(tmp_path), net="700-r16-20", timesteps=10,
                         epochs=4, batch_size=16, lr=0.1)
    result = train(config, progress=False, log=lambda line: None)
    assert result.history[-1].test_accuracy >= 0.9


@pytest.mark.slow
def test_demonstration_full_task(flush_denormals):
    """The demonstration of docs/training.md (about two minutes on 2 cores): 1000 trials (800 train, 200 test),
    T = 170, BPTT, 6 epochs each, lr 0.1. Prints accuracy and seconds per net and seed; asserts the recurrent ALIF
    net >= 90 % on each of three seeds (data and initial weights) and the feed-forward LIF net <= 70 %.

    lr 0.1 because at lr 0.2 (the setting until 2026-12-06) the test accuracy swung between epochs (0.95 -> 0.86
    -> 0.96 -> 0.78 on seed 0): a single run's last epoch then decided the test, and it failed on two machines."""
    import dataclasses
    import time

    from hwsim.sim.network import FloatALIF, Network, from_spec

    def adaptive(spec: str, seed: int) -> Network:
        base = from_spec(spec, seed=seed)
        hidden = base.layers[0]
        neuron = FloatALIF(lam=hidden.neuron.lam, beta=0.1)
        return Network(40, [dataclasses.replace(hidden, neuron=neuron), base.layers[1]])

    runs = [("40-a64-2, beta 0.1 (recurrent ALIF)", seed, adaptive("40-a64-2", seed)) for seed in (0, 1, 2)]
    runs += [("40-r64-2 (recurrent LIF)", 0, from_spec("40-r64-2", seed=0)),
             ("40-64-2 (feed-forward LIF)", 0, from_spec("40-64-2", seed=0)),
             ("40-64-2, ALIF beta 0.1 (feed-forward ALIF)", 0, adaptive("40-64-2", 0))]
    found = {}
    for name, seed, network in runs:
        data = load_dataset("cue", 170, seed=seed, n_trials=1000)
        start = time.perf_counter()
        found[name, seed] = _train_cue(network, data, epochs=6, lr=0.1, seed=seed)
        print(f"cue demonstration: {name}, seed {seed}: test {found[name, seed]:.1%}, "
              f"{time.perf_counter() - start:.1f} s")
    recurrent_alif = [found["40-a64-2, beta 0.1 (recurrent ALIF)", seed] for seed in (0, 1, 2)]
    assert min(recurrent_alif) >= 0.9, recurrent_alif
    assert found["40-64-2 (feed-forward LIF)", 0] <= 0.7
