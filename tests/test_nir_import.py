"""NIR in: graphs exported by snnTorch and spikingjelly, imported by ``nir_io.read``, run in hwsim spike for spike
equal to the framework's own simulation of the model it exported; foreign nodes and bad graphs are refused
with one line naming the node."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.formats import nir_io
from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import NetworkError

T, B = 30, 4


def _dyadic(module, rng, scale=64):
    """Weights on a 1/64 grid: every partial sum is exact in float32, so summation order cannot matter."""
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.from_numpy(np.round(rng.normal(0, 0.6, p.shape) * scale) / scale).float())


def _run_torch(layers, x, step):
    """Step a list of modules over x (T, B, ...); returns the spikes of every layer ``step`` marks."""
    import torch

    out = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            h, spikes = torch.from_numpy(x[t]).float(), []
            for m in layers:
                h, is_neuron = step(m, h)
                if is_neuron:
                    spikes.append(h.numpy().copy())
            out.append(spikes)
    return [np.stack([o[k] for o in out]) for k in range(len(out[0]))]


def _compare(path, framework_spikes, x):
    net = nir_io.read(path)
    assert net.mode == "float"
    ours = simulate(net, x).spikes
    assert len(ours) == len(framework_spikes)
    for k, (a, b) in enumerate(zip(ours, framework_spikes)):
        np.testing.assert_array_equal(a.reshape(a.shape[0], a.shape[1], -1), b.reshape(b.shape[0], b.shape[1], -1),
                                      err_msg=f"layer {k}")
    assert sum(int(s.sum()) for s in ours) > 50
    return net


@pytest.mark.parametrize("conv", [False, True, "conv-pool"])
def test_snntorch_exported_graph_runs_equal_in_hwsim(tmp_path, conv):
    pytest.importorskip("snntorch")
    import nir
    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    rng = np.random.default_rng(1)

    def leaky(beta, *shape):
        # per-neuron parameter tensors: with scalars snnTorch 1.0.0 writes shapeless LIF nodes that fail NIR's
        # own type inference inside its export_to_nir
        return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape), init_hidden=True,
                         reset_mechanism="zero", reset_delay=False)

    if conv == "conv-pool":  # Conv2d -> AvgPool2d -> neuron: merged into one strided conv on import
        layers = [torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.AvgPool2d(2), leaky(0.5, 3, 4, 4),
                  torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5), leaky(0.875, 5)]
        shape = (1, 8, 8)
    elif conv:
        layers = [torch.nn.Conv2d(1, 3, 3, padding=1), leaky(0.75, 3, 8, 8), torch.nn.AvgPool2d(2),
                  leaky(0.5, 3, 4, 4), torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5), leaky(0.875, 5)]
        shape = (1, 8, 8)
    else:
        layers = [torch.nn.Linear(12, 10), leaky(0.75, 10), torch.nn.Linear(10, 4), leaky(0.5, 4)]
        shape = (12,)
    model = torch.nn.Sequential(*layers)
    for m in layers:
        _dyadic(m, rng)
    x = bernoulli((T, B, *shape), 0.4, seed=3)
    graph = export_to_nir(model, torch.zeros(1, *shape), ignore_dims=[0])
    path = tmp_path / "snntorch.nir"
    nir.write(path, graph)

    def step(m, h):
        if isinstance(m, snn.Leaky):
            return m(h), True
        return m(h), False

    for m in layers:
        if isinstance(m, snn.Leaky):
            m.reset_hidden()
    spikes = _run_torch(layers, x, step)
    _compare(path, spikes, x)


@pytest.mark.parametrize("kind", ["lif", "if", "conv"])
def test_spikingjelly_exported_graph_runs_equal_in_hwsim(tmp_path, kind):
    pytest.importorskip("spikingjelly")
    import torch
    from spikingjelly.activation_based import layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    rng = np.random.default_rng(2)
    if kind == "conv":
        layers = [layer.Conv2d(1, 3, 3, padding=1, stride=2), neuron.LIFNode(tau=2.0, v_threshold=1.3),
                  layer.Flatten(), layer.Linear(3 * 4 * 4, 5), neuron.IFNode(v_threshold=1.3)]
        shape = (1, 8, 8)
    else:
        node = (lambda: neuron.LIFNode(tau=4.0, decay_input=False, v_threshold=1.3)) if kind == "lif" else (
            lambda: neuron.IFNode(v_threshold=1.3))
        layers = [layer.Linear(12, 10), node(), layer.Linear(10, 4), node()]
        shape = (12,)
    model = torch.nn.Sequential(*layers)
    for m in layers:
        _dyadic(m, rng)
    x = bernoulli((T, B, *shape), 0.4, seed=4)
    path = tmp_path / "sj.nir"
    export_to_nir(model, torch.zeros(B, *shape), save_path=path)

    def step(m, h):
        return m(h), isinstance(m, neuron.BaseNode)

    for m in layers:
        if isinstance(m, neuron.BaseNode):
            m.reset()
    spikes = _run_torch(layers, x, step)
    _compare(path, spikes, x)


def _write(tmp_path, nodes, edges, name="g.nir"):
    import nir

    path = tmp_path / name
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    return path


def test_foreign_graphs_that_hwsim_cannot_run_are_refused_with_the_node_named(tmp_path):
    import nir

    w = np.ones((3, 3))
    lif = lambda: nir.LIF(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3),  # noqa: E731
                          v_threshold=np.ones(3), v_reset=np.zeros(3))
    io = {"in": nir.Input(input_type={"input": np.array([3])}),
          "out": nir.Output(output_type={"output": np.array([3])})}
    recurrent = _write(tmp_path, io | {"a": nir.Linear(weight=w), "n": lif(), "rec": nir.Linear(weight=w)},
                       [("in", "a"), ("a", "n"), ("n", "rec"), ("rec", "a"), ("n", "out")], "rec.nir")
    with pytest.raises(NetworkError, match=r"rec.nir: .*(recurrent|feeds both|inputs)"):
        nir_io.read(recurrent)
    delay = _write(tmp_path, io | {"a": nir.Linear(weight=w), "d": nir.Delay(delay=np.ones(3)), "n": lif()},
                   [("in", "a"), ("a", "d"), ("d", "n"), ("n", "out")], "delay.nir")
    with pytest.raises(NetworkError, match=r"delay.nir: node 'd' has type Delay, which hwsim cannot import"):
        nir_io.read(delay)
    cuba = nir.CubaLIF(tau_syn=np.full(3, 5e-4), tau_mem=np.full(3, 1e-3), r=np.full(3, 10.0), v_leak=np.zeros(3),
                       v_threshold=np.ones(3), w_in=np.full(3, 5.0))
    smooth = _write(tmp_path, io | {"a": nir.Linear(weight=w), "n": cuba}, [("in", "a"), ("a", "n"), ("n", "out")],
                    "cuba.nir")
    with pytest.raises(NetworkError, match=r"cuba.nir: node 'n' \(CubaLIF\): tau_syn"):
        nir_io.read(smooth)
    mixed = nir.LIF(tau=np.array([2e-4, 3e-4, 2e-4]), r=np.full(3, 2.0), v_leak=np.zeros(3), v_threshold=np.ones(3),
                    v_reset=np.zeros(3))
    path = _write(tmp_path, io | {"a": nir.Linear(weight=w), "n": mixed}, [("in", "a"), ("a", "n"), ("n", "out")],
                  "mixed.nir")
    with pytest.raises(NetworkError, match=r"mixed.nir: node 'n' \(LIF\): tau differs between neurons"):
        nir_io.read(path)


def test_cubalif_without_current_memory_and_if_convert_exactly(tmp_path):
    import nir

    dt = 1e-3
    w = np.array([[0.5, -0.25], [0.75, 0.5]])
    cuba = nir.CubaLIF(tau_syn=np.full(2, dt), tau_mem=np.full(2, 4 * dt), r=np.full(2, 4.0), v_leak=np.zeros(2),
                       v_threshold=np.full(2, 0.6), w_in=np.ones(2))
    io = {"in": nir.Input(input_type={"input": np.array([2])}),
          "out": nir.Output(output_type={"output": np.array([2])})}
    graph = nir.NIRGraph(nodes=io | {"a": nir.Affine(weight=w, bias=np.array([0.125, 0.0])), "n": cuba},
                         edges=[("in", "a"), ("a", "n"), ("n", "out")], metadata={"dt": dt}, type_check=False)
    net = nir_io.from_nir(graph)
    lif = net.layers[0].neuron
    assert lif.lam == pytest.approx(0.75) and lif.reset == "zero" and np.float32(lif.v_th) > np.float32(0.6)
    np.testing.assert_allclose(net.layers[0].weight, w)  # gain r*dt/tau_mem * w_in*dt/tau_syn = 1
    from tests import nir_reference as ref

    x = bernoulli((20, 3, 2), 0.5, seed=1)
    (expected, _), = ref.run(graph, x, dt)
    np.testing.assert_array_equal(simulate(net, x).spikes[0], expected)


@pytest.mark.parametrize("framework", ["spikingjelly", "snntorch"])
def test_pooling_after_the_neuron_runs_equal_in_hwsim(tmp_path, framework):
    """spikingjelly's usual LIF -> AvgPool -> Conv and snnTorch's Leaky -> AvgPool -> Flatten -> Linear: the pooling
    node (linear) merges into the next synapse -- one Conv2d, or one Affine over the unpooled input."""
    pytest.importorskip(framework)
    import torch

    rng = np.random.default_rng(5)
    shape = (1, 8, 8)
    x = bernoulli((T, B, *shape), 0.5, seed=6)
    path = tmp_path / f"{framework}.nir"
    if framework == "spikingjelly":
        from spikingjelly.activation_based import layer, neuron
        from spikingjelly.activation_based.nir_exchange import export_to_nir

        layers = [layer.Conv2d(1, 4, 3, padding=1), neuron.LIFNode(tau=2.0, v_threshold=0.7), layer.AvgPool2d(2),
                  layer.Conv2d(4, 6, 3, padding=1), neuron.LIFNode(tau=2.0, v_threshold=0.7), layer.AvgPool2d(2),
                  layer.Flatten(), layer.Linear(6 * 2 * 2, 5), neuron.IFNode(v_threshold=0.7)]
        for m in layers:
            _dyadic(m, rng)
        export_to_nir(torch.nn.Sequential(*layers), torch.zeros(B, *shape), save_path=path)
        for m in layers:
            if isinstance(m, neuron.BaseNode):
                m.reset()
        is_neuron = lambda m: isinstance(m, neuron.BaseNode)  # noqa: E731
        expected_kinds = ["conv2d", "conv2d", "flatten", "dense"]
    else:
        import nir
        import snntorch as snn
        from snntorch.export_nir import export_to_nir

        def leaky(beta, *size):
            return snn.Leaky(beta=torch.full(size, beta), threshold=torch.full(size, 0.7), init_hidden=True,
                             reset_mechanism="zero", reset_delay=False)

        layers = [torch.nn.Conv2d(1, 3, 3, padding=1), leaky(0.75, 3, 8, 8), torch.nn.AvgPool2d(2),
                  torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5), leaky(0.875, 5)]
        for m in layers:
            _dyadic(m, rng)
        nir.write(path, export_to_nir(torch.nn.Sequential(*layers), torch.zeros(1, *shape), ignore_dims=[0]))
        for m in layers:
            if isinstance(m, snn.Leaky):
                m.reset_hidden()
        is_neuron = lambda m: isinstance(m, snn.Leaky)  # noqa: E731
        expected_kinds = ["conv2d", "flatten", "dense"]
    net = _compare(path, _run_torch(layers, x, lambda m, h: (m(h), is_neuron(m))), x)
    assert [layer.kind for layer in net.layers] == expected_kinds


def _graph(tmp_path, name, middle, edges):
    import nir

    w = np.ones((3, 3))
    io = {"in": nir.Input(input_type={"input": np.array([3])}),
          "out": nir.Output(output_type={"output": np.array([3])})}
    lif = nir.LIF(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3), v_threshold=np.ones(3),
                  v_reset=np.zeros(3))
    nodes = io | {"a": nir.Linear(weight=w), "n": lif} | middle
    return _write(tmp_path, nodes, edges, name)


def test_layouts_hwsim_cannot_run_are_refused_in_one_line_naming_the_node(tmp_path):
    import nir

    chain = [("in", "a"), ("a", "n"), ("n", "out")]
    cases = {
        "skip.nir": ({"b": nir.Linear(weight=np.ones((3, 3))), "m": nir.LIF(
            tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3), v_threshold=np.ones(3),
            v_reset=np.zeros(3))}, [("in", "a"), ("a", "n"), ("n", "b"), ("b", "m"), ("n", "m"), ("m", "out")],
            r"node 'n' feeds both '.' and '.' \(a branch, e.g. a skip connection\)"),
        "recurrent.nir": ({"rec": nir.Linear(weight=np.ones((3, 3)))}, chain + [("n", "rec"), ("rec", "a")],
                          r"recurrent edge '.*' -> '.*' \(a cycle\)"),
        "li.nir": ({"li": nir.LI(tau=np.full(3, 2e-4), r=np.ones(3), v_leak=np.zeros(3))},
                   [("in", "a"), ("a", "n"), ("n", "li"), ("li", "out")], r"node 'li' has type LI, which hwsim"),
        "threshold.nir": ({"n": nir.LIF(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3),
                                        v_threshold=np.array([1.0, 2.0, 1.0]), v_reset=np.zeros(3))}, chain,
                          r"node 'n' \(LIF\): v_threshold differs between neurons"),
    }
    for name, (middle, edges, message) in cases.items():
        with pytest.raises(NetworkError, match=f"{name}: {message}") as err:
            nir_io.read(_graph(tmp_path, name, middle, edges))
        assert len(str(err.value).splitlines()) == 1, name
    conv1d = _write(tmp_path, {"in": nir.Input(input_type={"input": np.array([1, 4])}),
                               "c": nir.Conv1d(input_shape=4, weight=np.ones((1, 1, 2)), stride=1, padding=0,
                                               dilation=1, groups=1, bias=np.zeros(1)),
                               "out": nir.Output(output_type={"output": np.array([1, 3])})},
                    [("in", "c"), ("c", "out")], "conv1d.nir")
    with pytest.raises(NetworkError, match=r"conv1d.nir: node 'c' has type Conv1d, which hwsim cannot import"):
        nir_io.read(conv1d)


@pytest.mark.parametrize("framework", ["snntorch", "spikingjelly"])
def test_a_float_synaptic_current_is_refused_in_one_line(tmp_path, framework):
    """snnTorch's Synaptic and spikingjelly's CUBALIFNode (c_decay > 0) filter their input: hwsim's float LIF has no
    synaptic current, and their float weights are not Loihi's integers."""
    pytest.importorskip(framework)
    import torch

    path = tmp_path / f"{framework}.nir"
    if framework == "snntorch":
        import nir
        import snntorch as snn
        from snntorch.export_nir import export_to_nir

        neuron = snn.Synaptic(alpha=torch.full((4,), 0.5), beta=torch.full((4,), 0.8), threshold=torch.ones(4),
                              init_hidden=True, reset_mechanism="zero", reset_delay=False)
        nir.write(path, export_to_nir(torch.nn.Sequential(torch.nn.Linear(6, 4), neuron), torch.zeros(1, 6),
                                      ignore_dims=[0]))
    else:
        from spikingjelly.activation_based import layer, neuron
        from spikingjelly.activation_based.nir_exchange import export_to_nir

        export_to_nir(torch.nn.Sequential(layer.Linear(6, 4), neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75)),
                      torch.zeros(2, 6), save_path=path)
    with pytest.raises(NetworkError, match=r"\(CubaLIF\): tau_syn = 0.0002 s != dt = 0.0001 s needs a synaptic "
                                           r"current, which hwsim's float LIF lacks") as err:
        nir_io.read(path)
    assert len(str(err.value).splitlines()) == 1


def test_complex_parameters_are_refused_not_cast(tmp_path):
    """numpy would drop the imaginary part with a warning; the import refuses the graph in one line instead."""
    import warnings

    import nir

    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([3])), "fc": nir.Linear(weight=np.ones((4, 3)) + 1j),
                                "lif": nir.LIF(tau=np.full(4, 0.02), r=np.ones(4), v_leak=np.zeros(4),
                                               v_threshold=np.ones(4)),
                                "output": nir.Output(np.array([4]))},
                         edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    nir.write(tmp_path / "complex.nir", graph)
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning if hasattr(np, "exceptions") else Warning)
        with pytest.raises(NetworkError, match="complex128 values where real numbers are expected"):
            nir_io.read(tmp_path / "complex.nir")
