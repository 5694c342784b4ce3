"""netx files as lava-dl writes them (issue #24): networks built with lava-dl's slayer blocks and exported by
their own ``export_hdf5``, read by ``hwsim.formats.netx.read``.

* an N-MNIST-tutorial-style network (dense ``cuba`` blocks with ``delay=True``, weight norm, no input layer):
  with trained delays it is refused in one line (hwsim's network has no delays; never ignored); with delays that
  floor to 0 it runs equal to slayer's own forward pass and to netx's run in Lava, its input shape taken from
  ``inFeatures``;
* slayer's ``Pool`` block (``kernelSize``, a (1, 1, k, k) weight) runs equal to slayer (netx 0.6.0 has no pool);
* graded spikes (``neuron/messageBits`` > 0) are refused in one line;
* mixed-sign dense weights beyond Loihi's synapse are clipped to -256..254 with a warning, as netx does, and
  then run equal to netx in Lava.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from hwsim.formats import netx
from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import NetworkError, from_spec

PARAMS = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03, "scale_grad": 3,
          "requires_grad": True}  # the lava-dl N-MNIST tutorial's neuron
T = 40


def _slayer():
    pytest.importorskip("lava.lib.dl")
    from hwsim.formats.lava_compat import import_netx

    import_netx()  # the shim lava-dl needs on Python 3.11
    import lava.lib.dl.slayer as slayer

    return slayer


def _export(blocks, path, input_shape, with_input_layer=False):
    """lava-dl's own export: one group per block (an input layer only when asked, as in lava-dl's tutorials);
    slayer learns its neuron shapes in a first forward pass."""
    _slayer_forward(blocks, np.zeros((2, *input_shape)))
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        offset = 0
        if with_input_layer:
            group = layer.create_group("0")
            group["type"], group["shape"] = np.bytes_("input"), np.array(input_shape)
            offset = 1
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(f"{i + offset}"))
    return path


def _slayer_forward(blocks, x: np.ndarray) -> list[np.ndarray]:
    """slayer's own forward pass (eval mode: Loihi-quantised) on x (T, *shape); every block's spikes (T, n)."""
    import torch

    data = torch.from_numpy(np.moveaxis(x, 0, -1)[None].astype(np.float32))  # N C (H W) T
    out = []
    with torch.no_grad():
        for block in blocks:
            block.eval()
            data = block(data)
            if type(block).__name__ != "Flatten":
                out.append(np.moveaxis(data[0].numpy(), -1, 0).reshape(x.shape[0], -1))
    return out


def _nmnist_style(slayer, delays: bool):
    """Three dense CUBA blocks as in lava-dl's N-MNIST tutorial (smaller): delays on the first two."""
    import torch

    torch.manual_seed(0)
    blocks = torch.nn.ModuleList([
        slayer.block.cuba.Dense(PARAMS, 2 * 5 * 5, 24, weight_norm=True, delay=True, weight_scale=4),
        slayer.block.cuba.Dense(PARAMS, 24, 16, weight_norm=True, delay=True, weight_scale=4),
        slayer.block.cuba.Dense(PARAMS, 16, 10, weight_norm=True, weight_scale=4)])
    _slayer_forward(blocks, np.zeros((2, 50)))  # slayer draws its delays (in [0, 1)) in the first forward pass
    with torch.no_grad():
        for block in blocks[:2]:  # trained delays, as after the tutorial's training; or none
            shape = block.delay.delay.shape
            block.delay.delay.copy_(torch.randint(1, 4, shape).float() if delays else torch.full(shape, 0.4))
    return blocks


def test_a_network_with_synaptic_delays_is_refused_in_one_line(tmp_path):
    slayer = _slayer()
    path = _export(_nmnist_style(slayer, delays=True), tmp_path / "delays.net", (50,))
    with h5py.File(path, "r") as f:
        assert np.floor(f["layer/0/delay"][()]).max() >= 1  # lava-dl wrote the delays
    with pytest.raises(NetworkError, match=r"delays.net: layer 0: synaptic delays \('delay', 24 of 24 nonzero, up "
                                           r"to 3 steps\); hwsim's network has no delays") as err:
        netx.read(path)
    assert len(str(err.value).splitlines()) == 1


def test_a_dense_only_network_runs_equal_to_slayer(tmp_path):
    slayer = _slayer()
    blocks = _nmnist_style(slayer, delays=False)
    path = _export(blocks, tmp_path / "nmnist.net", (50,))
    net = netx.read(path)  # no input layer: the input shape comes from inFeatures
    assert net.input_shape == (50,) and [layer.kind for layer in net.layers] == ["dense"] * 3
    x = bernoulli((T, 1, 50), 0.3, seed=1)
    ours = simulate(net, x).spikes
    for k, (a, b) in enumerate(zip(ours, _slayer_forward(blocks, x[:, 0]))):
        np.testing.assert_array_equal(a.reshape(T, -1), b, err_msg=f"layer {k}")
    assert all(int(s.sum()) > 0 for s in ours)


@pytest.mark.lava
def test_a_dense_only_network_runs_equal_to_netx_in_lava(tmp_path):
    from tests.test_netx import run_netx

    slayer = _slayer()
    path = _export(_nmnist_style(slayer, delays=False), tmp_path / "nmnist.net", (50,))
    net = netx.read(path)
    x = bernoulli((T, 1, 50), 0.3, seed=1)
    for k, (a, b) in enumerate(zip(simulate(net, x).spikes, run_netx(path, net, x[:, 0]))):
        np.testing.assert_array_equal(a.reshape(T, -1), b, err_msg=f"layer {k}")


def test_slayer_pool_block_runs_equal_to_slayer(tmp_path):
    slayer = _slayer()
    import torch

    torch.manual_seed(0)
    blocks = torch.nn.ModuleList([
        slayer.block.cuba.Conv(PARAMS, 2, 4, 3, padding=1, weight_scale=3), slayer.block.cuba.Pool(PARAMS, 2),
        slayer.block.cuba.Flatten(), slayer.block.cuba.Dense(PARAMS, 4 * 3 * 3, 10, weight_scale=3)])
    path = _export(blocks, tmp_path / "pool.net", (2, 6, 6), with_input_layer=True)
    net = netx.read(path)
    assert [layer.kind for layer in net.layers] == ["conv2d", "sumpool2d", "flatten", "dense"]
    assert net.layers[1].kernel == 2 and net.layers[1].weight == 64
    x = bernoulli((T, 1, 2, 6, 6), 0.3, seed=1)
    ours = simulate(net, x).spikes
    for k, (a, b) in enumerate(zip(ours, _slayer_forward(blocks, x[:, 0]))):
        np.testing.assert_array_equal(a.reshape(T, -1), b, err_msg=f"layer {k}")
    assert all(int(s.sum()) > 0 for s in ours)


def test_graded_spikes_are_refused_in_one_line(tmp_path):
    path = netx.write(from_spec("12-8-3", mode="fixed", seed=2), tmp_path / "graded.net")
    with h5py.File(path, "r+") as f:
        f["layer/2/neuron/messageBits"] = 3
    with pytest.raises(NetworkError, match=r"graded.net: layer 2: graded spikes \(neuron/messageBits = 3\); hwsim's "
                                           r"spikes are binary"):
        netx.read(path)


def _oversized(tmp_path):
    net = from_spec("12-16-3", mode="fixed", seed=2)
    path = netx.write(net, tmp_path / "big.net")
    with h5py.File(path, "r+") as f:
        weight = f["layer/1/weight"][()] * 4  # beyond -256..254: Loihi's synapse cannot hold them
        del f["layer/1/weight"]
        f["layer/1/weight"] = weight
    return path, net, weight


def test_weights_beyond_the_synapse_are_clipped_as_netx_does_with_a_warning(tmp_path):
    path, _, weight = _oversized(tmp_path)
    assert weight.max() > 254 and weight.min() < -256
    with pytest.warns(UserWarning, match=r"layer 1: weight matrix cannot be optimized to fit in synapse .*clipped to "
                                         r"-256..254 as netx does"):
        net = netx.read(path)
    w = net.layers[0].weight.astype(np.int64) << net.layers[0].weight_exp if net.layers[0].weight_exp >= 0 else (
        net.layers[0].weight.astype(np.int64) >> -net.layers[0].weight_exp)
    np.testing.assert_array_equal(w, np.clip(weight, -256, 254))


@pytest.mark.lava
def test_clipped_weights_run_equal_to_netx_in_lava(tmp_path):
    _slayer()
    from tests.test_netx import run_netx

    path, _, _ = _oversized(tmp_path)
    with pytest.warns(UserWarning):
        net = netx.read(path)
    x = bernoulli((T, 1, 12), 0.4, seed=3)
    spikes = run_netx(path, net, x[:, 0])
    for k, (a, b) in enumerate(zip(simulate(net, x).spikes, spikes)):
        np.testing.assert_array_equal(a.reshape(T, -1), b, err_msg=f"layer {k}")
    assert sum(int(s.sum()) for s in spikes) > 0
