"""netx both ways: hwsim's model.net loads in the real lava-dl 0.6.0 netx and runs equal to the golden spikes;
hwsim reads netx files back into a fixed-point network."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from hwsim.formats import netx
from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import Network, NetworkError, from_spec
from tests.test_nir import _with

CASES = {
    "dense+bias": lambda: _with(from_spec("20-16-5", mode="fixed", seed=1), bias_exp=6),
    "conv+pool, strided and padded, bias": lambda: _with(
        from_spec("1x12x12-c4k3p1-p2-c8k3s2-10", mode="fixed", seed=1), bias_exp=6),
    "conv stride 2 padding 2, pool 3 stride 2": lambda: from_spec("2x11x11-c3k3s2p2-p3s2-6", mode="fixed", seed=4),
}


def run_netx(path, network: Network, x: np.ndarray) -> list[np.ndarray]:
    """Load ``path`` with lava-dl's own ``netx.hdf5.Network``, feed ``x`` (T, *input_shape) from a RingBuffer,
    run under Lava's fixed_pt models; every layer's spikes (T, n) in hwsim's (C, H, W) order."""
    from hwsim.formats.lava import from_lava_layout, to_lava_layout
    from hwsim.formats.lava_compat import import_netx

    lava_netx = import_netx()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    steps = x.shape[0]
    net = lava_netx.hdf5.Network(net_config=str(path))
    data = to_lava_layout(x.reshape(steps, -1), network.input_shape)
    source = RingBuffer(data=np.ascontiguousarray(np.moveaxis(data, 0, -1)).astype(np.int32))
    source.s_out.connect(net.inp)
    monitors = []
    for block in net.layers:
        monitor = Monitor()
        monitor.probe(block.neuron.s_out, steps)
        monitors.append((monitor, block.neuron.name))
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        raw = [np.asarray(m.get_data()[name]["s_out"]) for m, name in monitors]
    finally:
        net.stop()
    shapes = [out for layer, (_, out) in zip(network.layers, network.layer_shapes()) if layer.neuron is not None]
    return [from_lava_layout(r, s).astype(np.uint8) for r, s in zip(raw, shapes)]


@pytest.mark.lava
@pytest.mark.parametrize("name", list(CASES))
def test_real_netx_runs_the_export_equal_to_golden_spikes(tmp_path, name):
    pytest.importorskip("lava.lib.dl")
    net = CASES[name]()
    x = bernoulli((16, 1, *net.input_shape), 0.3, seed=2)
    golden = simulate(net, x).spikes
    path = netx.write(net, tmp_path / "model.net")
    spikes = run_netx(path, net, x[:, 0])
    assert len(spikes) == len(golden)
    for k, (a, g) in enumerate(zip(spikes, golden)):
        np.testing.assert_array_equal(a, g.reshape(len(g), -1), err_msg=f"{name}: layer {k}")
    assert sum(int(g.sum()) for g in golden) > 0


@pytest.mark.parametrize("name", list(CASES))
def test_netx_read_gives_back_the_network(tmp_path, name):
    net = CASES[name]()
    back = netx.read(netx.write(net, tmp_path / "model.net"))
    assert back.mode == "fixed" and back.input_shape == net.input_shape
    assert [layer.kind for layer in back.layers] == [layer.kind for layer in net.layers]
    x = bernoulli((12, 2, *net.input_shape), 0.3, seed=5)
    for a, b in zip(simulate(net, x).spikes, simulate(back, x).spikes):
        np.testing.assert_array_equal(a, b)


def test_netx_layout_field_by_field(tmp_path):
    net = _with(from_spec("12-8-3", mode="fixed", seed=2), bias_exp=6)
    path = netx.write(net, tmp_path / "model.net")
    with h5py.File(path, "r") as f:
        assert sorted(f["layer"].keys()) == ["0", "1", "2"]
        assert f["layer/0/type"][()] == b"input" and f["layer/0/shape"][()].tolist() == [12]
        for i, layer in enumerate(net.layers, start=1):
            group = f[f"layer/{i}"]
            assert group["type"][()] == b"dense" and group["shape"][()].tolist() == [layer.n_out]
            np.testing.assert_array_equal(group["weight"][()], layer.weight.astype(np.int64) >> 1)  # 2w, exp -1
            np.testing.assert_array_equal(group["bias"][()], layer.bias)  # bias_exp 6 = netx's own
            neuron = group["neuron"]
            assert neuron["type"][()] == b"CUBA"
            assert neuron["iDecay"][()] == layer.neuron.du + 1 and neuron["vDecay"][()] == layer.neuron.dv
            assert neuron["vThMant"][()] == layer.neuron.vth
            assert neuron["refDelay"][()] == 1 and neuron["gradedSpike"][()] == 0


def test_netx_refuses_what_it_cannot_hold_and_bad_files(tmp_path):
    net = _with(from_spec("12-8-3", mode="fixed", seed=2), bias_exp=2)  # bias << 2 not a multiple of 64
    with pytest.raises(NetworkError, match="layer 0 .*multiple of 64"):
        netx.write(net, tmp_path / "x.net")
    good = netx.write(from_spec("12-8-3", mode="fixed", seed=2), tmp_path / "good.net")
    with h5py.File(good, "r+") as f:
        del f["layer/1/neuron/type"]
        f["layer/1/neuron/type"] = np.bytes_("SDNN")
    with pytest.raises(NetworkError, match=r"good.net: layer 1: neuron type 'SDNN' is not supported"):
        netx.read(good)
    junk = tmp_path / "junk.net"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(NetworkError, match="junk.net: not a readable netx HDF5 file"):
        netx.read(junk)
    with pytest.raises(NetworkError, match="no such netx file"):
        netx.read(tmp_path / "missing.net")
