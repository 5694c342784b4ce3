"""NIR out: the exported graph, read by NIR's published equations alone (an independent numpy reading, snnTorch's
and spikingjelly's importers), reproduces hwsim's (= Lava's) fixed-point golden spikes.

The only differences allowed are where NIR's float maths and Lava's integers must part: Lava truncates its decays
to whole units of v's 1/64 grain, so a neuron whose float membrane lies within that truncation bound of the
threshold may fire on one side and not the other; and a reader that fires on ``v >= v_th`` (spikingjelly) where
NIR and Lava say ``v > v_th``. After a neuron's first such divergence its state differs, so only first
divergences are judged; all differences are counted and printed (``pytest -s``).
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.formats import nir_io
from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import Conv2d, Dense, LoihiLIF, Network, from_spec
from tests import nir_reference as ref

T, B = 40, 3


def _with(net: Network, du=None, dv=None, bias_exp=3, seed=0) -> Network:
    """The same layers with per-channel biases and, optionally, other decays."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if layer.neuron is None:
            continue
        n = layer.neuron
        layer.neuron = LoihiLIF(du=n.du if du is None else du, dv=n.dv if dv is None else dv, vth=n.vth,
                                bias_exp=bias_exp)
        if isinstance(layer, (Dense, Conv2d)):
            layer.bias = rng.integers(-200, 400, layer.weight.shape[0]).astype(np.int32)
    return Network(net.input_shape, net.layers)


NETS = {
    "dense": lambda: from_spec("20-16-5", mode="fixed", seed=1),
    "dense+bias": lambda: _with(from_spec("20-16-5", mode="fixed", seed=1)),
    "conv+pool+bias": lambda: _with(from_spec("1x12x12-c4k3p1-p2-c8k3s2-10", mode="fixed", seed=1)),
    "cuba (du<4095) + v_leak": lambda: _with(from_spec("20-16-5", mode="fixed", seed=2), du=1000, dv=500),
    "IF (dv=0) + bias": lambda: _with(from_spec("20-16-5", mode="fixed", seed=3), dv=0),
}


def truncation_bound(neuron: LoihiLIF, steps: int) -> float:
    """How far (in synaptic units) Lava's integer membrane can drift from NIR's float one: each truncated decay
    loses < 1/64 unit; u's error is carried into v."""
    a_u = (4095 - neuron.du) / 4096
    e_u = 0.0 if neuron.du == 4095 else (1 / 64) / (1 - a_u)
    if neuron.dv == 0:
        return e_u * steps
    return (1 / 64 + e_u) / (neuron.dv / 4096)


def judge(name, spikes, golden, v_ref, vth, bound):
    """Count differing spikes and check that each neuron's first divergence lies within ``bound`` of the
    threshold (``bound`` 0: exactly at it); returns (differences, first divergences, at equality)."""
    spikes = spikes.reshape(spikes.shape[0], -1)
    golden = golden.reshape(golden.shape[0], -1)
    v_ref = v_ref.reshape(v_ref.shape[0], -1)
    diff = spikes != golden
    columns = np.flatnonzero(diff.any(axis=0))
    first = diff[:, columns].argmax(axis=0)
    distance = np.abs(v_ref[first, columns] - vth)
    assert np.all(distance <= bound + 1e-3), (name, float(distance.max()), bound)
    return int(diff.sum()), len(columns), int((distance < 1e-6).sum())


@pytest.fixture(scope="module", params=list(NETS))
def case(request):
    net = NETS[request.param]()
    x = bernoulli((T, B, *net.input_shape), 0.3, seed=2)
    result = simulate(net, x)
    graph = nir_io.to_nir(net)
    # each neuron layer's input: the data, then the previous layer's golden spikes
    forced = [x] + list(result.spikes[:-1])
    bounds = [truncation_bound(layer.neuron, T) for layer in net.layers if layer.neuron is not None]
    reference = ref.run(graph, x, graph.metadata["dt"], delay=1, forced=forced)
    return request.param, net, x, result.spikes, graph, forced, bounds, reference


def test_nir_units_are_nirs_own():
    net = _with(from_spec("20-16-5", mode="fixed", seed=1))
    graph = nir_io.to_nir(net)
    dt = graph.metadata["dt"]
    affine, lif = graph.nodes["0_dense0.synapse"], graph.nodes["0_dense0.lif"]
    layer = net.layers[0]
    assert type(affine).__name__ == "Affine" and type(lif).__name__ == "LIF"
    np.testing.assert_array_equal(affine.weight, layer.weight / 2)  # 2w with weight_exp -1, in units of a
    np.testing.assert_array_equal(affine.bias, layer.bias * 2.0**3 / 64)  # bias in the synapse, a units
    assert np.all(lif.v_threshold == 64) and np.allclose(lif.tau, dt * 4096 / 3724) and np.allclose(lif.r, lif.tau / dt)
    assert graph.metadata["delay_steps_per_synapse"] == 1 and dt == 1e-4


def test_numpy_reading_of_nir_equations_reproduces_golden_spikes(case):
    name, net, x, golden, graph, forced, bounds, reference = case
    report = []
    for k, ((spikes, v), gold, bound) in enumerate(zip(reference, golden, bounds)):
        diff, first, at_equal = judge(name, spikes, gold, v, net_vth(net, k), bound)
        report.append((k, int(gold.sum()), diff, first))
        if bound == 0:
            assert diff == 0, (name, k)  # no truncation anywhere: exact
    total = sum(int(g.sum()) for g in golden)
    print(f"\n[numpy NIR reading] {name}: per layer (layer, golden spikes, differing, first divergences): {report}")
    assert sum(r[2] for r in report) <= 0.01 * total
    # End to end (each layer fed by the reader's own previous layer, one-step delay per synapse)
    chained = ref.run(graph, x, graph.metadata["dt"], delay=1)
    if name in ("dense", "dense+bias", "IF (dv=0) + bias"):
        for k, ((spikes, _), gold) in enumerate(zip(chained, golden)):
            np.testing.assert_array_equal(spikes, gold, err_msg=f"{name} layer {k}")


def net_vth(net: Network, k: int) -> float:
    return float([layer for layer in net.layers if layer.neuron is not None][k].neuron.vth)


def _run_reader(modules, graph, forced, golden, run_neuron):
    """Run a reader's own modules layer by layer over time, input of layer k = forced[k] delayed one step."""
    import torch

    outputs, k = [], 0
    for name in ref.chain(graph):
        kind = type(graph.nodes[name]).__name__
        if kind not in ref.NEURONS:
            continue
        synapse_name = f"{name[:-len('.lif')]}.synapse"
        x = np.asarray(forced[k], np.float32)
        in_shape = _synapse_input_shape(graph, synapse_name, golden, k, forced)
        x = x.reshape(x.shape[0], x.shape[1], *in_shape)
        x = np.concatenate([np.zeros_like(x[:1]), x[:-1]])
        synapse = modules[synapse_name.replace(".", "_")]
        with torch.no_grad():
            current = torch.stack([synapse(torch.from_numpy(x[t])) for t in range(x.shape[0])])
            spikes = run_neuron(modules[name.replace(".", "_")], current)
        outputs.append(spikes.numpy().reshape(golden[k].shape))
        k += 1
    return outputs


def _synapse_input_shape(graph, synapse_name, golden, k, forced):
    node = graph.nodes[synapse_name]
    if type(node).__name__ in ("Affine", "Linear"):
        return (node.weight.shape[1],)
    return tuple(forced[k].shape[2:])


def test_snntorch_reads_the_export_and_reproduces_golden_spikes(case):
    pytest.importorskip("snntorch")
    import torch
    from snntorch.import_nir import import_from_nir

    name, net, x, golden, graph, forced, bounds, reference = case
    if name == "IF (dv=0) + bias":
        # snnTorch 1.0.0 maps nir.IF to a Leaky with beta 0.9 and asserts r == 1 (NIR's IF has r in 1/s);
        # it cannot read a non-leaky neuron, which is snnTorch's limitation, stated here.
        with pytest.raises(AssertionError):
            import_from_nir(graph)
        return
    if name == "cuba (du<4095) + v_leak":
        with pytest.raises(AssertionError, match="v_leak"):  # snnTorch refuses v_leak != 0
            import_from_nir(graph)
        return
    model = import_from_nir(graph)
    modules = dict(model.named_children())

    def run_neuron(module, current):
        return torch.stack([module(current[t]) for t in range(current.shape[0])])

    spikes = _run_reader(modules, graph, forced, golden, run_neuron)
    report = [judge(name, s, g, v, net_vth(net, k), bounds[k] + 1e-3 * net_vth(net, k))
              for k, (s, g, (_, v)) in enumerate(zip(spikes, golden, reference))]
    print(f"\n[snnTorch] {name}: per layer (differing, first divergences, at v == v_th): {report}")
    assert sum(r[0] for r in report) <= 0.01 * sum(int(g.sum()) for g in golden)


def test_spikingjelly_reads_the_export_and_reproduces_golden_spikes(case):
    pytest.importorskip("spikingjelly")
    import torch
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    name, net, x, golden, graph, forced, bounds, reference = case
    if name in ("cuba (du<4095) + v_leak",):
        with pytest.raises(ValueError, match="v_leak"):  # spikingjelly refuses v_leak != 0 in CubaLIF
            import_from_nir(graph, dt=graph.metadata["dt"])
        return
    model = import_from_nir(graph, dt=graph.metadata["dt"])
    modules = dict(model.named_children())

    def run_neuron(module, current):
        state, out = None, []
        for t in range(current.shape[0]):
            s, state = module(current[t], state)
            out.append(s)
        return torch.stack(out)

    spikes = _run_reader(modules, graph, forced, golden, run_neuron)
    report = [judge(name, s, g, v, net_vth(net, k), bounds[k] + 1e-3 * net_vth(net, k))
              for k, (s, g, (_, v)) in enumerate(zip(spikes, golden, reference))]
    # spikingjelly fires on v >= v_th: its extra first divergences sit exactly at the threshold
    print(f"\n[spikingjelly] {name}: per layer (differing, first divergences, at v == v_th): {report}")
    # (the pool layer's integer inputs land exactly on the threshold often: hundreds of such spikes there)
    assert sum(r[1] - r[2] for r in report) <= 0.01 * sum(int(g.sum()) for g in golden)
