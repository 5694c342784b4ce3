"""Fixed mode equals Lava 0.10.0 ``fixed_pt`` spike for spike and voltage for voltage (real Lava)."""

import numpy as np
import pytest

from hwsim.formats.lava import run_lava
from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import Dense, LoihiLIF, Network, from_spec

pytestmark = pytest.mark.lava


def _net(rng, sizes, neurons, weight_exps, low, high, bias=None):
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.integers(low, high + 1, size=(n_out, n_in))
        b = None if bias is None else rng.integers(bias[0], bias[1] + 1, size=n_out)
        layers.append(Dense(w, neuron=neurons[k], weight_exp=weight_exps[k], bias=b))
    return Network(sizes[0], layers)


def _cases():
    rng = np.random.default_rng(2024)
    lif = LoihiLIF
    yield "spec-mlp", from_spec("24-16-12-6", mode="fixed", seed=5), 0.3
    # du, dv at both ends; weight_exp from -3 to +7 across layers
    yield "du0-dv0", _net(rng, [20, 12, 8], [lif(0, 0, 200), lif(0, 0, 300)], [-3, 0], -60, 60), 0.3
    yield "du4095-dv4095", _net(rng, [20, 12, 8], [lif(4095, 4095, 5), lif(4095, 4095, 10)], [1, 2], -40, 80), 0.4
    yield "du0-dv4095", _net(rng, [18, 10, 6], [lif(0, 4095, 100), lif(4095, 0, 50)], [-2, -1], -100, 120), 0.3
    yield "wexp-3..7", _net(rng, [16, 12, 10, 8, 6], [lif(100, 300, 1000)] * 4, [3, 4, 5, 7], -20, 30), 0.4
    # saturating v: no voltage decay, u ~ 2**21 per step -> v pinned at -(2**23 - 1), or clipped at the
    # top where only the clip lets it pass the largest threshold (131071 << 6 = 2**23 - 64)
    yield "saturate+", _net(rng, [8, 4], [lif(4095, 0, 131071)], [7], 60, 64), 0.5
    yield "saturate-", _net(rng, [8, 4], [lif(4095, 0, 10)], [7], -64, -60), 0.5
    # current wraps at 24 bit (du = 0 keeps integrating)
    yield "u-wrap", _net(rng, [30, 8], [lif(0, 2000, 131071)], [6], 50, 255), 0.5
    # sign modes: excitatory only (up to 255), inhibitory only (down to -255), mixed with odd weights
    yield "excitatory", _net(rng, [20, 10], [lif(300, 400, 150)], [0], 0, 255), 0.3
    yield "inhibitory", _net(rng, [20, 10], [lif(300, 400, 20)], [0], -255, 0, bias=(1000, 4095)), 0.3
    yield "mixed-odd", _net(rng, [20, 12, 8], [lif(500, 800, 60)] * 2, [0, -1], -255, 255, bias=(-500, 500)), 0.3
    # bias exponent and negative bias
    yield "bias-exp", _net(rng, [10, 8], [lif(1000, 200, 300, bias_exp=5)], [0], -30, 30, bias=(-4096, 4095)), 0.2
    # a << 6 beyond int32: 1100 simultaneous input spikes of weight 255 << 7
    yield "int32-wrap", _net(rng, [1100, 4], [lif(4095, 4095, 131071)], [7], 250, 255), 1.0


CASES = list(_cases())


@pytest.mark.parametrize("name,network,rate", CASES, ids=[c[0] for c in CASES])
def test_fixed_mode_equals_lava(name, network, rate):
    steps = 16
    x = bernoulli((steps, 1, network.input_shape[0]), rate, seed=len(name))
    ours = simulate(network, x, record=True)
    lava = run_lava(network, x[:, 0])
    for k in range(len(network.layers)):
        np.testing.assert_array_equal(ours.spikes[k][:, 0], lava.spikes[k], err_msg=f"{name}: spikes, layer {k}")
        np.testing.assert_array_equal(ours.membranes[k][:, 0], lava.v[k], err_msg=f"{name}: v, layer {k}")
        np.testing.assert_array_equal(ours.currents[k][:, 0], lava.u[k], err_msg=f"{name}: u, layer {k}")


def test_edge_cases_reach_their_edges():
    """The cases above really exercise saturation, wrap-around and firing (else equality proves little)."""
    by_name = {name: (net, rate) for name, net, rate in CASES}
    v_max = 2**23 - 1

    def run(name):
        net, rate = by_name[name]
        return simulate(net, bernoulli((16, 1, net.input_shape[0]), rate, seed=len(name)), record=True)

    top = run("saturate+")
    assert top.spikes[0].sum() > 0  # v passes the largest threshold only next to the clip
    assert (run("saturate-").membranes[0][-4:] == -v_max).all()
    u = run("u-wrap").currents[0]
    assert (np.diff(u[:, 0], axis=0) < 0).any() and u.max() > 2**22  # grew to the top, then wrapped
    assert run("spec-mlp").spikes[-1].sum() > 0
    assert run("mixed-odd").spikes[0].sum() > 0


CONV_SPECS = ["2x6x6-c3k3p1-8", "2x8x8-c4k3p1-p2-c4k3s2p1-10", "1x7x5-c2k3s2-p2-6"]


@pytest.mark.parametrize("spec", CONV_SPECS)
def test_fixed_conv_and_pool_equal_lava(spec):
    """Conv2d -> Lava Conv (flipped, (W, H, C) layout, 24-bit wrap), SumPool2d -> diagonal Conv, Flatten ->
    permuted Dense columns: spikes, v and u equal at every step."""
    network = from_spec(spec, mode="fixed", seed=3)
    x = bernoulli((12, 1, *network.input_shape), 0.4, seed=5)
    ours = simulate(network, x, record=True)
    lava = run_lava(network, x[:, 0])
    for k in range(len(lava.spikes)):
        np.testing.assert_array_equal(ours.spikes[k][:, 0].reshape(12, -1), lava.spikes[k], err_msg=f"{spec} {k}")
        np.testing.assert_array_equal(ours.membranes[k][:, 0].reshape(12, -1), lava.v[k], err_msg=f"{spec} {k}")
        np.testing.assert_array_equal(ours.currents[k][:, 0].reshape(12, -1), lava.u[k], err_msg=f"{spec} {k}")
    assert lava.spikes[0].sum() > 0


def test_conv_weights_lava_cannot_fold_are_refused():
    from hwsim.sim.network import Conv2d, LoihiLIF, Network, NetworkError

    net = Network((1, 4, 4), [Conv2d(np.full((1, 1, 3, 3), 3), neuron=LoihiLIF(), weight_exp=-1)])
    with pytest.raises(NetworkError, match=r"layer 0 \(conv2d0\): Lava's Conv applies no weight exponent"):
        run_lava(net, np.zeros((3, 1, 4, 4), np.uint8))
