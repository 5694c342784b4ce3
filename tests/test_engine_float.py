"""Float mode equals an independent dense reference (spikes exactly, membranes to 1e-5)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hwsim.sim.engine import Engine, bernoulli, simulate
from hwsim.sim.network import Conv2d, Dense, Flatten, FloatLIF, Network, SumPool2d
from tests.reference import reference_float


def _weights(rng, shape, fan_in, dyadic):
    w = rng.normal(0.0, 2.5 / np.sqrt(fan_in), size=shape)
    if dyadic:  # multiples of 1/64: every sum is exact in float32, so u must match bit for bit
        w = np.round(w * 64) / 64
    return w.astype(np.float32)


@st.composite
def mlp_case(draw):
    sizes = draw(st.lists(st.integers(1, 40), min_size=2, max_size=4))
    neuron = FloatLIF(lam=draw(st.sampled_from([0.0, 1 - 1 / 1.1, 0.5, 0.9, 1.0])),
                      v_th=draw(st.sampled_from([0.25, 0.5, 1.0, 1.5])),
                      reset=draw(st.sampled_from(["soft", "zero"])))
    dyadic = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bias = None
        if draw(st.booleans()):
            bias = np.round(rng.normal(0, 0.3, n_out) * 64) / 64
        layers.append(Dense(_weights(rng, (n_out, n_in), n_in, dyadic), neuron=neuron, bias=bias))
    steps, batch = draw(st.integers(1, 12)), draw(st.integers(1, 3))
    rate = draw(st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0]))
    x = bernoulli((steps, batch, sizes[0]), rate, seed=draw(st.integers(0, 1000)))
    return Network(sizes[0], layers), x, dyadic


@st.composite
def conv_case(draw):
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(3, 9)), draw(st.integers(3, 9))
    k = draw(st.integers(1, min(h, w, 4)))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    out_ch = draw(st.integers(1, 4))
    neuron = FloatLIF(lam=draw(st.sampled_from([0.0, 0.5, 0.9])), v_th=1.0,
                      reset=draw(st.sampled_from(["soft", "zero"])))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    layers = [Conv2d(_weights(rng, (out_ch, c, k, k), c * k * k, True), stride=stride, padding=pad,
                     neuron=neuron, bias=np.round(rng.normal(0, 0.2, out_ch) * 64) / 64)]
    shape = layers[0].out_shape((c, h, w))
    if min(shape[1:]) >= 2 and draw(st.booleans()):
        pk = draw(st.integers(1, 2))
        layers.append(SumPool2d(pk, stride=draw(st.integers(1, 2)), weight=0.5, neuron=neuron))
        shape = layers[-1].out_shape(shape)
    n = int(np.prod(shape))
    layers += [Flatten(), Dense(_weights(rng, (5, n), n, True), neuron=neuron)]
    steps, batch = draw(st.integers(1, 8)), draw(st.integers(1, 2))
    x = bernoulli((steps, batch, c, h, w), draw(st.sampled_from([0.1, 0.3, 0.7])), seed=draw(st.integers(0, 99)))
    return Network((c, h, w), layers), x


def _assert_matches(network, x, exact):
    result = simulate(network, x, record=True)
    ref_spikes, ref_u = reference_float(network, x)
    assert len(result.spikes) == len(ref_spikes)
    for k, (s, u, rs, ru) in enumerate(zip(result.spikes, result.membranes, ref_spikes, ref_u)):
        np.testing.assert_array_equal(s, rs, err_msg=f"spikes of layer {k}")
        if exact:
            np.testing.assert_array_equal(u, ru, err_msg=f"membrane of layer {k}")
        else:
            np.testing.assert_allclose(u, ru, atol=1e-5, rtol=1e-5, err_msg=f"membrane of layer {k}")


@given(mlp_case())
def test_float_mlp_matches_dense_reference(case):
    network, x, dyadic = case
    _assert_matches(network, x, exact=dyadic)


@given(conv_case())
def test_float_conv_matches_dense_reference(case):
    network, x = case
    _assert_matches(network, x, exact=True)


def test_float_conv_spec_network_matches_reference():
    from hwsim.sim.network import from_spec

    network = from_spec("2x10x10-c6k3p1-p2-c8k3s2p1-12", seed=3)
    x = bernoulli((10, 2, 2, 10, 10), 0.3, seed=4)
    _assert_matches(network, x, exact=False)
    assert sum(s.sum() for s in simulate(network, x).spikes) > 0


def test_golden_trajectory_by_hand():
    """One neuron, weight 0.6, lam 0.5, v_th 1, soft reset, input spikes every step:
    u = 0.6, 0.9, 1.05 (spike), 0.6 + 0.5*(1.05 - 1) = 0.625, 0.9125, 1.05625 (spike)."""
    net = Network(1, [Dense(np.array([[0.6]]), neuron=FloatLIF(lam=0.5, v_th=1.0))])
    result = simulate(net, np.ones((6, 1, 1), np.uint8), record=True)
    np.testing.assert_allclose(result.membranes[0][:, 0, 0], [0.6, 0.9, 1.05, 0.625, 0.9125, 1.05625], rtol=1e-6)
    assert result.spikes[0][:, 0, 0].tolist() == [0, 0, 1, 0, 0, 1]
    zero = Network(1, [Dense(np.array([[0.6]]), neuron=FloatLIF(lam=0.5, v_th=1.0, reset="zero"))])
    result = simulate(zero, np.ones((4, 1, 1), np.uint8), record=True)
    np.testing.assert_allclose(result.membranes[0][:, 0, 0], [0.6, 0.9, 1.05, 0.6], rtol=1e-6)


def test_batch_samples_are_independent():
    from hwsim.sim.network import from_spec

    network = from_spec("30-20-5", seed=1)
    x = bernoulli((9, 4, 30), 0.3, seed=2)
    engine = Engine(network)
    whole = engine.run(x, record="spikes")
    for b in range(4):
        alone = engine.run(x[:, b:b + 1], record="spikes")
        for k in range(2):
            np.testing.assert_array_equal(whole.spikes[k][:, b], alone.spikes[k][:, 0])
