"""Counters against independent counts: SOPs = sum of presynaptic spikes x actual fan-out, and the rest."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.sim.counts import BIAS_BYTES, STATE_BYTES, WEIGHT_BYTES
from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import Conv2d, Dense, Flatten, Network, SumPool2d, from_spec
from tests.reference import fanout


def _independent_sop(network, x, result):
    """SOPs per step from the input/output spike trains and an output-centric fan-out count."""
    steps, batch = x.shape[:2]
    s = x.reshape(steps, batch, -1)
    sops, k = [], 0
    for layer, (in_shape, _) in zip(network.layers, network.layer_shapes()):
        if isinstance(layer, Flatten):
            continue
        per_input = fanout(layer, in_shape)
        sops.append((s.reshape(steps, batch, -1).astype(np.int64) * per_input).sum(axis=(1, 2)))
        s = result.spikes[k]
        k += 1
    return sops


@st.composite
def conv_net(draw):
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(2, 11)), draw(st.integers(2, 11))
    k = draw(st.integers(1, min(h, w) + 2))
    pad = draw(st.integers(0, 2))
    if k > min(h, w) + 2 * pad:
        pad = (k - min(h, w) + 1) // 2 + 1
    stride = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    o = draw(st.integers(1, 5))
    layers = [Conv2d(rng.normal(0, 1, (o, c, k, k)), stride=stride, padding=pad)]
    shape = layers[0].out_shape((c, h, w))
    pk = draw(st.integers(1, 3))
    if pk <= min(shape[1:]):
        layers.append(SumPool2d(pk, stride=draw(st.integers(1, 3)), weight=0.7))
        shape = layers[-1].out_shape(shape)
    layers += [Flatten(), Dense(rng.normal(0, 1, (3, int(np.prod(shape)))))]
    x = bernoulli((draw(st.integers(1, 5)), draw(st.integers(1, 3)), c, h, w), draw(st.sampled_from([0.2, 0.6, 1.0])),
                  seed=draw(st.integers(0, 100)))
    return Network((c, h, w), layers), x


@given(conv_net())
def test_sop_equals_spikes_times_actual_fanout_conv(case):
    network, x = case
    result = simulate(network, x)
    for k, (expected, lc) in enumerate(zip(_independent_sop(network, x, result), result.counts.layers)):
        np.testing.assert_array_equal(lc.events["sop"], expected, err_msg=f"layer {k} ({lc.name})")


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_counters_mlp_against_independent_counts(mode):
    network = from_spec("50-30-20-4", mode=mode, seed=2)
    x = bernoulli((12, 3, 50), 0.3, seed=1)
    result = simulate(network, x)
    s = x
    for k, lc in enumerate(result.counts.layers):
        out = result.spikes[k]
        np.testing.assert_array_equal(lc.events["spikes_in"], s.sum(axis=(1, 2)))
        np.testing.assert_array_equal(lc.events["spikes_out"], out.sum(axis=(1, 2)))
        np.testing.assert_array_equal(lc.events["sop"], s.sum(axis=(1, 2)) * lc.n_out)
        np.testing.assert_array_equal(lc.events["neuron_updates"], np.full(12, 3 * lc.n_out))
        np.testing.assert_array_equal(lc.neuron_spikes, out.sum(axis=(0, 1)))
        np.testing.assert_array_equal(lc.input_spikes, s.sum(axis=(0, 1)))
        np.testing.assert_array_equal(lc.mem_read_bytes["weights"], lc.events["sop"] * WEIGHT_BYTES[mode])
        np.testing.assert_array_equal(lc.mem_write_bytes["neuron_state"], 3 * lc.n_out * STATE_BYTES[mode])
        for counter in ("error_macs", "grad_ops", "trace_updates", "weight_updates"):
            assert lc.total(counter) == 0
        s = out
    assert result.counts.total("sop") > 0 and result.counts.layers[-1].total("spikes_in") > 0


def test_bias_read_counted_per_neuron_update():
    net = Network(4, [Dense(np.ones((3, 4)), bias=np.zeros(3))])
    result = simulate(net, np.zeros((5, 2, 4), np.uint8))
    lc = result.counts.layers[0]
    assert lc.total("mem_read_bytes") == 5 * 2 * 3 * (STATE_BYTES["float"] + BIAS_BYTES["float"])
    assert lc.total("sop") == 0


def test_conv_border_fanout_by_hand():
    """3x3 input, 3x3 kernel, padding 1, stride 2 -> 2x2 output; the centre pixel reaches all 4 outputs,
    a corner only 1, an edge centre 2 (times 2 output channels)."""
    net = Network((1, 3, 3), [Conv2d(np.ones((2, 1, 3, 3)), stride=2, padding=1)])
    x = np.zeros((3, 1, 1, 3, 3), np.uint8)
    x[0, 0, 0, 1, 1] = 1  # centre
    x[1, 0, 0, 0, 0] = 1  # corner
    x[2, 0, 0, 0, 1] = 1  # top edge centre
    assert simulate(net, x).counts.layers[0].events["sop"].tolist() == [8, 2, 4]


def test_json_totals_sum_the_per_step_counters():
    result = simulate(from_spec("20-10", seed=1), bernoulli((7, 2, 20), 0.5, seed=3))
    lc = result.counts.layers[0]
    record = lc.to_dict()
    assert record["sop"] == int(lc.events["sop"].sum()) == 10 * record["spikes_in"]
    assert record["mem_read_bytes"] == sum(int(v.sum()) for v in lc.mem_read_bytes.values())


def test_active_neuron_updates_are_the_updates_with_nonzero_input():
    from tests.reference import layer_current

    network = from_spec("2x6x6-c3k3p1-p2-8", seed=3)
    x = bernoulli((7, 2, 2, 6, 6), 0.25, seed=4)
    result = simulate(network, x)
    s = x
    k = 0
    for layer, (in_shape, _) in zip(network.layers, network.layer_shapes()):
        if isinstance(layer, Flatten):
            continue
        current = layer_current(layer, s.reshape(-1, *in_shape).astype(np.float64)).reshape(7, 2, -1)
        lc = result.counts.layers[k]
        np.testing.assert_array_equal(lc.events["neuron_updates_active"], (current != 0).sum(axis=(1, 2)))
        np.testing.assert_array_equal(lc.neuron_active, (current != 0).sum(axis=(0, 1)))
        s = result.spikes[k]
        k += 1
