"""hwsim's inference SOPs against NeuroBench's effective synaptic operations on the same network and input.

NeuroBench (``neurobench.metrics.utils.layers.single_layer_MACs``, v2.3.0) counts, per Linear/Conv layer,
the connections whose input is non-zero *and whose weight is non-zero*; it averages per sample and does
not count pooling layers. hwsim counts every structural synapse of a spike's fan-out (a chip reads the
weight even when it is zero) and counts sum-pooling synapses too. So: equal when no weight is zero; the
difference is exactly the spikes that met zero weights; pooling SOPs are hwsim-only.
"""

import numpy as np
import torch
from neurobench.metrics.utils.layers import single_layer_MACs

from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.network import Conv2d, Dense, SumPool2d, from_spec


def _torch_layer(layer):
    if isinstance(layer, Dense):
        module = torch.nn.Linear(layer.n_in, layer.n_out, bias=False)
    else:
        o, c, kh, kw = layer.weight.shape
        module = torch.nn.Conv2d(c, o, (kh, kw), stride=layer.stride, padding=layer.padding, bias=False)
    module.weight.data = torch.from_numpy(layer.weight.astype(np.float32))
    return module


def _neurobench_sops(network, x, result):
    per_layer = []
    inputs = x
    k = 0
    for layer, (in_shape, _) in zip(network.layers, network.layer_shapes()):
        if layer.kind == "flatten":
            continue
        s = torch.from_numpy(inputs.reshape(-1, *in_shape).astype(np.float32))
        if isinstance(layer, SumPool2d):
            per_layer.append(None)  # NeuroBench has no synaptic operations for pooling
        else:
            ops, spiking = single_layer_MACs(s, _torch_layer(layer))
            assert spiking
            per_layer.append(ops)
        inputs = result.spikes[k]
        k += 1
    return per_layer


def test_sop_equals_neurobench_effective_acs_mlp_and_conv():
    for spec, shape in (("64-40-10", (64,)), ("2x12x12-c4k3s1p1-c6k3s2p1-p2-10", (2, 12, 12))):
        network = from_spec(spec, mode="float", seed=7)
        x = bernoulli((8, 3, *shape), 0.3, seed=8)
        result = Engine(network).run(x, record="spikes")
        ours = [lc.total("sop") for lc in result.counts.layers]
        theirs = _neurobench_sops(network, x, result)
        for k, (a, b) in enumerate(zip(ours, theirs)):
            if b is not None:
                assert a == b, f"{spec}, layer {k}: hwsim {a} vs NeuroBench {b}"
        assert sum(a for a, b in zip(ours, theirs) if b is None) > 0 or "p2" not in spec


def test_zero_weights_are_the_only_difference():
    network = from_spec("30-20", mode="float", seed=1)
    w = network.layers[0].weight
    w[:, ::3] = 0.0  # every third input's synapses carry zero weight
    w[5, 1] = 0.0
    x = bernoulli((10, 2, 30), 0.4, seed=2)
    result = Engine(network).run(x)
    ours = result.counts.layers[0].total("sop")
    (theirs,) = _neurobench_sops(network, x, result)
    zero_fanout = (w == 0).sum(axis=0)  # zero-weight synapses per input neuron
    assert ours - theirs == int((x.reshape(-1, 30).sum(axis=0) * zero_fanout).sum()) > 0
    assert isinstance(network.layers[0], Dense) and not isinstance(network.layers[0], Conv2d)


def test_gpu_dense_macs_equal_neurobench_total_macs():
    """The GPU baseline's own counter (every structural synapse every step) against NeuroBench's total
    (dense) MACs, which count zero inputs too."""
    from hwsim import chips
    from hwsim.hardware.cost import dense_macs
    from hwsim.hardware.mapping import map_network

    for spec, shape in (("64-40-10", (64,)), ("2x12x12-c4k3s1p1-c6k3s2p1-p2-10", (2, 12, 12))):
        network = from_spec(spec, mode="float", seed=7)
        x = bernoulli((5, 2, *shape), 0.3, seed=8)
        counts = Engine(network).run(x).counts
        ours = dense_macs(network, counts, map_network(network, chips.load("gpu_a100")))
        k = 0
        for layer, (in_shape, _) in zip(network.layers, network.layer_shapes()):
            if layer.kind == "flatten":
                continue
            name = counts.layers[k].name
            k += 1
            if isinstance(layer, SumPool2d):
                continue
            per_step, _ = single_layer_MACs(torch.zeros(1, *in_shape), _torch_layer(layer), total=True)
            assert ours[name] == per_step * 5 * 2, f"{spec}, {name}"
