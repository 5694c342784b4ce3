"""Fixed-point recurrent layers equal Lava 0.10.0 ``fixed_pt`` spike for spike, v and u at every step (real Lava).

Lava's graph of a recurrent layer, built here from Lava's own processes (independent of hwsim's exporter): a
``Dense`` of the input weights from the layer below and a ``Dense`` of the recurrent weights from the layer's own
``LIF.s_out``, both into the ``LIF``'s ``a_in`` (Lava's port adds them), each with the layer's ``weight_exp``.
The engine runs the same network; both run the same T steps of the same input. The cases cover random nets of
several shapes (recurrent after dense, two recurrent layers, dense read-out) and the edge cases of the dense
path: 24-bit wrap of u, reset to zero, bias with exponent, weight_exp positive and negative, one-sign and
mixed-sign (odd) recurrent weights, input and recurrent sums that cancel.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import Dense, LoihiLIF, Network, Recurrent, from_spec
from tests.recurrent_reference import reference_run

pytestmark = pytest.mark.lava


def run_lava_graph(network: Network, x: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Run ``network`` (Dense and Recurrent layers of LoihiLIF) in Lava on one sample ``x`` ``(T, n_in)``;
    per layer ``s``, ``v``, ``u`` ``(T, n)``."""
    from hwsim.formats.lava_compat import import_lava

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense as LavaDense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    steps = x.shape[0]
    source = RingBuffer(data=np.ascontiguousarray(x.T).astype(np.int32))
    port, monitors = source.s_out, []
    for layer in network.layers:
        n, neuron = layer.n_out, layer.neuron
        bias = np.zeros(n, np.int32) if layer.bias is None else layer.bias.astype(np.int32)
        lif = LIF(shape=(n,), du=neuron.du, dv=neuron.dv, vth=neuron.vth, bias_mant=bias, bias_exp=neuron.bias_exp)
        synapse = LavaDense(weights=layer.weight.astype(np.int32), weight_exp=int(layer.weight_exp))
        port.connect(synapse.s_in)
        synapse.a_out.connect(lif.a_in)
        if isinstance(layer, Recurrent):
            feedback = LavaDense(weights=layer.recurrent.astype(np.int32), weight_exp=int(layer.weight_exp))
            lif.s_out.connect(feedback.s_in)
            feedback.a_out.connect(lif.a_in)
        probes = {}
        for key, var in (("s", lif.s_out), ("v", lif.v), ("u", lif.u)):
            probes[key] = Monitor()
            probes[key].probe(var, steps)
        monitors.append((lif.name, probes))
        port = lif.s_out
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = []
        for name, probes in monitors:
            layer_data = {}
            for key, monitor in probes.items():
                data = monitor.get_data()[name]
                layer_data[key] = np.asarray(next(iter(data.values()))).reshape(steps, -1).astype(np.int64)
            out.append(layer_data)
    finally:
        source.stop()
    return out


def _rec(rng, n_in, n, neuron, weight_exp, w_range, r_range, bias=None):
    w = rng.integers(w_range[0], w_range[1] + 1, size=(n, n_in))
    r = rng.integers(r_range[0], r_range[1] + 1, size=(n, n))
    b = None if bias is None else rng.integers(bias[0], bias[1] + 1, size=n)
    return Recurrent(w, r, neuron=neuron, weight_exp=weight_exp, bias=b)


def _cases():
    rng = np.random.default_rng(21)
    lif = LoihiLIF
    yield "spec 20-r16-8", from_spec("20-r16-8", mode="fixed", seed=1), 0.3
    yield "spec 30-r24-r12-5", from_spec("30-r24-r12-5", mode="fixed", seed=2), 0.3
    dense_in = Dense(rng.integers(-80, 81, size=(14, 16)), neuron=lif(300, 500, 40), weight_exp=0)
    yield "dense then recurrent", Network(16, [dense_in, _rec(rng, 14, 10, lif(200, 700, 60), -1, (-90, 90),
                                                              (-120, 120)), Dense(rng.integers(-60, 61, (4, 10)),
                                                              neuron=lif(4095, 0, 30))]), 0.4
    # u wraps at 24 bit: du = 0 keeps integrating excitatory recurrent input, weight_exp +6
    yield "u-wrap", Network(6, [_rec(rng, 6, 5, lif(0, 2000, 131071), 6, (60, 255), (100, 255))]), 0.5
    # frequent reset: low threshold, strong recurrent inhibition (one sign: Lava's uint8 magnitudes, factor -1)
    yield "reset, inhibitory recurrent", Network(12, [_rec(rng, 12, 8, lif(2000, 300, 2), 0, (0, 60), (-255, 0))]), 0.4
    # bias with exponent, negative and positive, mixed odd recurrent weights (Lava drops the lowest bit)
    yield "bias-exp, mixed odd", Network(10, [_rec(rng, 10, 8, lif(1000, 200, 300, bias_exp=5), -3, (-255, 255),
                                                   (-255, 255), bias=(-4096, 4095))]), 0.3
    # weight_exp positive on an excitatory-only layer; zero input weights so only recurrence and bias drive
    yield "wexp+3, recurrence only", Network(8, [_rec(rng, 8, 6, lif(500, 800, 20), 3, (0, 0), (0, 40),
                                                      bias=(200, 400))]), 0.3


CASES = list(_cases())


@pytest.mark.parametrize("name,network,rate", CASES, ids=[c[0] for c in CASES])
def test_recurrent_fixed_equals_lava(name, network, rate):
    steps = 24
    x = bernoulli((steps, 1, network.input_shape[0]), rate, seed=len(name))
    ours = simulate(network, x, record=True)
    lava = run_lava_graph(network, x[:, 0])
    for k, data in enumerate(lava):
        np.testing.assert_array_equal(ours.spikes[k][:, 0], data["s"], err_msg=f"{name}: spikes, layer {k}")
        np.testing.assert_array_equal(ours.membranes[k][:, 0], data["v"], err_msg=f"{name}: v, layer {k}")
        np.testing.assert_array_equal(ours.currents[k][:, 0], data["u"], err_msg=f"{name}: u, layer {k}")
    # the per-step reference (written from Lava's equations) agrees too, so its other tests mean Lava's timing
    ref = reference_run(network, x)
    for k, layer_ref in enumerate(ref):
        np.testing.assert_array_equal(layer_ref["spikes"][:, 0], lava[k]["s"], err_msg=f"{name}: reference {k}")


def test_cases_reach_their_edges():
    """The cases above fire, feed back, wrap and reset (else equality proves little)."""
    by_name = {name: (net, rate) for name, net, rate in CASES}

    def run(name):
        net, rate = by_name[name]
        return simulate(net, bernoulli((24, 1, net.input_shape[0]), rate, seed=len(name)), record=True)

    for name in by_name:
        result = run(name)
        recurrent = [lc for lc in result.counts.layers if lc.kind == "recurrent"]
        assert all(lc.total("sop_recurrent") > 0 for lc in recurrent), name  # the recurrent path carried spikes
    u = run("u-wrap").currents[0][:, 0]
    assert (np.diff(u, axis=0) < 0).any() and u.max() > 2**22  # grew to the top, then wrapped
    reset = run("reset, inhibitory recurrent")
    assert reset.spikes[0].sum() > 10 and (reset.membranes[0][reset.spikes[0] == 1] == 0).all()
    only = run("wexp+3, recurrence only").counts.layers[0]
    assert only.total("spikes_in") > 0
    assert only.total("sop") == only.total("sop_recurrent") + 6 * only.total("spikes_in")
