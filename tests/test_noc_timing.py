"""``hwsim.hardware.noc_timing`` (numba schedule) against its former plain-Python version (``noc_timing_reference.py``):
the per-step latencies must be bit-identical and the assumptions the same, for dense and conv networks,
inference and on-chip learning counts, batches, subsampled runs (over ``MAX_MESSAGES`` messages), a chip
without a network-on-chip and the other timing options."""

import numpy as np
import pytest

from hwsim import chips
from hwsim.hardware import noc_timing
from hwsim.hardware.mapping import map_network
from hwsim.learning.feasibility import learning_counts
from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.network import from_spec
from tests import noc_timing_reference as reference


@pytest.fixture(scope="module")
def sanafe():
    return chips.load("loihi_sanafe")


def _timing(chip, **update):
    return chip.model_copy(update={"timing": chip.timing.model_copy(update=update)})


def _same(mapping, counts, chip):
    new, new_assumptions = noc_timing.detailed_step_latency_ns(mapping, counts, chip)
    old, old_assumptions = reference.detailed_step_latency_ns(mapping, counts, chip)
    np.testing.assert_array_equal(new, old)
    assert new.dtype == old.dtype and new.shape == old.shape
    assert new_assumptions == old_assumptions
    return new


@pytest.fixture(scope="module")
def dense():
    net = from_spec("100-60-30-10", mode="float", seed=1)
    return net, Engine(net).run(bernoulli((12, 2, 100), 0.2, seed=2)).counts


@pytest.fixture(scope="module")
def conv():
    net = from_spec("2x8x8-c4k3s1p1-p2-c6k3s1p1-10", mode="float", seed=4)
    return net, Engine(net).run(bernoulli((8, 1, 2, 8, 8), 0.3, seed=5)).counts


@pytest.mark.parametrize("neurons_per_core", [None, 7, 16])
def test_dense_inference(sanafe, dense, neurons_per_core):
    net, counts = dense
    out = _same(map_network(net, sanafe, counts, neurons_per_core=neurons_per_core), counts, sanafe)
    assert out.shape == (12,) and (out > 0).all()


@pytest.mark.parametrize("neurons_per_core", [None, 20])
def test_conv_inference(sanafe, conv, neurons_per_core):
    net, counts = conv
    _same(map_network(net, sanafe, counts, neurons_per_core=neurons_per_core), counts, sanafe)


def test_learning_counts(sanafe):
    """As ``hwsim.hardware.cost.step_latency_s`` prices an on-chip training batch."""
    net = from_spec("2x8x8-c4k3s1p1-p2-10", mode="float", seed=3)
    counts = learning_counts(net, "sltt", 6, 0.2, batch=2, seed=0)
    _same(map_network(net, sanafe, counts, neurons_per_core=30), counts, sanafe)


def test_over_max_messages_subsamples_steps(sanafe, dense, monkeypatch):
    net, counts = dense
    mapping = map_network(net, sanafe, counts, neurons_per_core=10)
    for module in (noc_timing, reference):
        monkeypatch.setattr(module, "MAX_MESSAGES", 300)
    out = _same(mapping, counts, sanafe)
    assert 1 <= len(out) < counts.timesteps
    assert "evenly spaced steps" in noc_timing.detailed_step_latency_ns(mapping, counts, sanafe)[1][-1]


def test_no_noc(sanafe, dense):
    net, counts = dense
    chip = sanafe.model_copy(update={"layout": sanafe.layout.model_copy(update={"noc": False})})
    _same(map_network(net, chip, counts, neurons_per_core=8), counts, chip)
    odin = chips.load("odin")
    assert odin.layout.noc is False
    odin = odin.model_copy(update={"timing": sanafe.timing})
    small = from_spec("30-12", mode="float", seed=0)
    small_counts = Engine(small).run(bernoulli((5, 1, 30), 0.3, seed=1)).counts
    _same(map_network(small, odin, small_counts), small_counts, odin)


@pytest.mark.parametrize("update", [
    {"link_buffer_messages": 1},  # senders stall: the blocking estimate at work
    {"neuron_update_active_ns": 5.0, "neuron_update_idle_ns": 1.5, "spike_out_ns": None},
    {"hop_ns_ns": None, "hop_ew_ns": 7.0},
    {"hop_ew_ns": None, "hop_ns_ns": None},
])
def test_timing_options(sanafe, conv, update):
    net, counts = conv
    chip = _timing(sanafe, **update)
    _same(map_network(net, chip, counts, neurons_per_core=25), counts, chip)


def test_silent_run(sanafe):
    net = from_spec("20-10-5", mode="float", seed=0)
    counts = Engine(net).run(np.zeros((4, 1, 20), np.uint8)).counts
    _same(map_network(net, sanafe, counts, neurons_per_core=4), counts, sanafe)


def test_congested_conv_learning(sanafe):
    """A larger case (a many-core mesh, congested links) where senders stall on small buffers: the capacity
    only matters through the stall, so the latencies must change with it."""
    net = from_spec("3x16x16-c16p1-p2-c16p1-10", mode="float", seed=2)
    counts = learning_counts(net, "sltt", 4, 0.3, seed=1)
    mapping = map_network(net, sanafe, counts, neurons_per_core=128)
    assert mapping.cores_used > 40
    _same(mapping, counts, sanafe)
    small_buffers = _timing(sanafe, link_buffer_messages=1)
    blocked = _same(mapping, counts, small_buffers)
    free_flow = _same(mapping, counts, _timing(sanafe, link_buffer_messages=10_000))
    assert not np.array_equal(blocked, free_flow)
