"""The torch-free float read-out of ``hwsim.sim.quantize`` against the torch model of ``methods.models``."""

import numpy as np
import pytest
import torch
from hwsim.methods.models import SpikingNet

from hwsim.sim.engine import bernoulli
from hwsim.sim.network import SumPool2d, from_spec
from hwsim.sim.quantize import float_accuracy, float_readout


@pytest.mark.parametrize("spec", ["30-12-5", "20-5", "1x6x6-c3k3p1-p2-4", "1x6x6-c2k3p1-c3k3s2"])
def test_float_readout_equals_torch_model(spec):
    net = from_spec(spec, seed=3)
    last = net.layers[-1]
    last.bias = np.random.default_rng(0).normal(0, 0.3, last.weight.shape[0]).astype(np.float32)
    spikes = bernoulli((7, 5, *net.input_shape), 0.3, seed=1)
    ours = float_readout(net, spikes)
    with torch.no_grad():
        theirs = SpikingNet.from_network(net)(torch.from_numpy(spikes.astype(np.float32))).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_float_readout_sum_pool_last_layer():
    net = from_spec("1x4x4-c2k3p1-p2", seed=2)
    assert isinstance(net.layers[-1], SumPool2d)
    spikes = bernoulli((6, 3, 1, 4, 4), 0.5, seed=0)
    with torch.no_grad():
        theirs = SpikingNet.from_network(net)(torch.from_numpy(spikes.astype(np.float32))).numpy()
    np.testing.assert_allclose(float_readout(net, spikes), theirs, rtol=1e-5, atol=1e-5)


def test_float_accuracy_matches_torch_argmax():
    net = from_spec("16-20-4", seed=5)
    x = bernoulli((40, 6, 16), 0.4, seed=2)  # (N, T, n_in), the data-set layout
    with torch.no_grad():
        out = SpikingNet.from_network(net)(torch.from_numpy(np.moveaxis(x, 1, 0).astype(np.float32))).numpy()
    y = out.argmax(1)
    y[:10] = (y[:10] + 1) % 4  # ten wrong labels: 75 %
    assert float_accuracy(net, x, y) == pytest.approx(0.75)
