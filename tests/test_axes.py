"""The axis guard: data sets are (N, T, ...), the engine takes (T, B, ...); a network that declares the
time steps it was trained with refuses input whose axes look swapped, with a message saying what to do."""

import numpy as np
import pytest

from hwsim.learning.learner import OnChipLearner
from hwsim.sim.engine import Engine, InputError, bernoulli, simulate
from hwsim.sim.network import NetworkError, from_spec, load, save
from hwsim.sim.quantize import quantize


def _trained_like(steps: int = 8, mode: str = "float"):
    net = from_spec("64-32-10", mode=mode, seed=0)
    net.timesteps = steps
    return net


def test_digits_test_set_in_data_layout_is_refused():
    from hwsim.methods.data import load_dataset

    x, _ = (a.numpy() for a in load_dataset("digits", 8, seed=0).split("test"))
    assert x.shape == (359, 8, 64)  # (N, T, n_in): the case that used to run as T = 359, B = 8
    net = _trained_like(8)
    with pytest.raises(InputError, match=r"look like \(N, T, \.\.\.\) data.*np\.moveaxis\(x, 1, 0\)"):
        Engine(net).run(x)
    result = Engine(net).run(np.moveaxis(x, 1, 0))  # the right layout runs
    assert result.counts.timesteps == 8 and result.counts.batch == 359
    forced = simulate(net, x[:20], time_major=True)  # an explicit choice is respected
    assert forced.counts.timesteps == 20 and forced.counts.batch == 8


def test_guard_needs_a_declared_T_and_leaves_other_lengths_alone():
    undeclared = from_spec("64-32-10", seed=0)
    assert undeclared.timesteps is None
    assert simulate(undeclared, bernoulli((30, 8, 64), 0.1)).counts.timesteps == 30  # nothing to check against
    net = _trained_like(8)
    for shape in [(8, 8, 64), (12, 3, 64), (3, 1, 64), (100, 1, 64)]:  # axis 1 is not T, or axis 0 is T
        assert simulate(net, bernoulli(shape, 0.1)).counts.timesteps == shape[0]


def test_on_chip_learner_is_guarded_too():
    learner = OnChipLearner(_trained_like(6), "sltt")
    with pytest.raises(InputError, match="np.moveaxis"):
        learner.train_batch(bernoulli((20, 6, 64), 0.2), np.zeros(6, np.int64))


def test_declared_timesteps_survive_save_load_and_quantisation(tmp_path):
    net = _trained_like(5)
    loaded = load(save(net, tmp_path / "net.npz"))
    assert loaded.timesteps == 5
    fixed, _ = quantize(loaded)
    assert fixed.timesteps == 5
    with pytest.raises(InputError, match="np.moveaxis"):
        simulate(fixed, bernoulli((40, 5, 64), 0.2))
    assert load(save(from_spec("4-2"), tmp_path / "plain.npz")).timesteps is None
    with pytest.raises(NetworkError, match="timesteps must be a positive integer"):
        type(net)(net.input_shape, net.layers, timesteps=0)


def test_fixed_point_accuracy_with_padding_is_not_refused():
    from hwsim.sim.quantize import fixed_accuracy

    fixed, _ = quantize(_trained_like(4))
    x = bernoulli((9, 4, 64), 0.3)  # (N, T, n_in); its padded batches are (T + L, B): B = 4 would look swapped
    y = np.zeros(9, np.int64)
    assert 0.0 <= fixed_accuracy(fixed, x, y, batch=4) <= 1.0
