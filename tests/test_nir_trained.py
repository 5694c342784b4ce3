"""Trained networks, exported, run end to end by every reader (issue #24).

A conv + sum-pool network trained for three epochs on digits (BPTT) and one trained with biases are exported by
``hwsim.formats.bundle.export``; the export's NIR file runs in a numpy reading of NIR's equations, in snnTorch and
in spikingjelly with no layer fed the golden input, over 40 test samples back to back (320 steps): at least 99 %
of the spikes equal the golden (Lava fixed-point) spikes, layer by layer and at the output. The biased network's
``model.net`` (biases at netx's fixed ``bias_exp = 6``) runs in the real lava-dl netx equal to the golden spikes.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from hwsim.sim.engine import simulate
from hwsim.sim.network import Conv2d, Dense, load
from tests import nir_readers

SPEC = "1x8x8-c4k3p1-p2-c8k3s2p1-10"  # the network
BIASED_SPEC = "1x8x8-c4k3p1-p2-16-10"
SAMPLES, LANES = 40, 2


def _with_biases(network):
    for layer in network.layers:
        if isinstance(layer, (Dense, Conv2d)):
            layer.bias = np.zeros(layer.weight.shape[0], np.float32)
    return network


def _trained_export(folder, spec: str, biases: bool) -> dict:
    """Train ``spec`` on digits (BPTT, 3 epochs, T = 8), export it with the test data; the pieces the tests use."""
    import hwsim.methods.train as train_module
    import nir
    from hwsim.methods.data import load_dataset

    from hwsim.formats.bundle import export, load_trained

    config = train_module.TrainConfig(rule="bptt", dataset="digits", net=spec, epochs=3, timesteps=8)
    with pytest.MonkeyPatch.context() as patch:
        if biases:  # torch layers have biases by default; hwsim's spec networks have none
            original = train_module.from_spec
            patch.setattr(train_module, "from_spec", lambda *a, **k: _with_biases(original(*a, **k)))
        train_module.train(config, out=folder / "net.pt", progress=False, log=lambda *a: None)
    network, _ = load_trained(folder / "net.pt")
    data = load_dataset("digits", 8, seed=0)
    x, y = (a.numpy() for a in data.split("test"))
    x = x.reshape(*x.shape[:2], *network.input_shape)
    summary = export(network, folder / "export", x, y)
    fixed = load(folder / "export" / "network.npz")
    long = np.stack([np.concatenate(list(x[lane * SAMPLES: (lane + 1) * SAMPLES])) for lane in range(LANES)], 1)
    golden = simulate(fixed, long, time_major=True).spikes
    return {"network": network, "fixed": fixed, "summary": summary, "x": long, "golden": golden,
            "graph": nir.read(folder / "export" / "model.nir"), "folder": folder / "export"}


@pytest.fixture(scope="module")
def conv_pool(tmp_path_factory):
    return _trained_export(tmp_path_factory.mktemp("conv_pool"), SPEC, biases=False)


@pytest.fixture(scope="module")
def biased(tmp_path_factory):
    return _trained_export(tmp_path_factory.mktemp("biased"), BIASED_SPEC, biases=True)


def _reader(name):
    if name != "numpy":
        pytest.importorskip(name)


@pytest.mark.parametrize("reader", nir_readers.READERS)
def test_trained_conv_pool_export_runs_in_the_reader_as_users_run_it(conv_pool, reader):
    """The reader's own model forward, no delays: its output at step t is Lava's at step t + depth."""
    _reader(reader)
    graph, x, golden = conv_pool["graph"], conv_pool["x"], conv_pool["golden"][-1]
    depth = nir_readers.depth(graph)
    with contextlib.redirect_stdout(io.StringIO()):
        out = nir_readers.run_whole(reader, graph, x)
    golden = golden.reshape(len(golden), LANES, -1)
    share = nir_readers.agreement(out[:-depth], golden[depth:])
    print(f"\n[{reader}] trained {SPEC}: output spikes equal {share:.4f} over {len(x)} steps x {LANES} "
          f"({int(golden.sum())} golden spikes)")
    assert len(x) >= 200 and golden.sum() > 500
    assert share >= 0.99


@pytest.mark.parametrize("reader", nir_readers.READERS)
@pytest.mark.parametrize("which", ["conv_pool", "biased"])
def test_trained_export_runs_end_to_end_layer_by_layer(request, which, reader):
    """With a one-step delay before every synapse (Lava's timing), every layer lines up with the golden spikes."""
    _reader(reader)
    case = request.getfixturevalue(which)
    with contextlib.redirect_stdout(io.StringIO()):
        spikes = nir_readers.run_delayed(reader, case["graph"], case["x"])
    shares = [nir_readers.agreement(s, g.reshape(s.shape)) for s, g in zip(spikes, case["golden"])]
    print(f"\n[{reader}] trained {which}: share of equal spikes per layer {[round(v, 4) for v in shares]} "
          f"(golden {[int(g.sum()) for g in case['golden']]})")
    assert min(shares) >= 0.99
    assert all(int(g.sum()) > 0 for g in case["golden"])


def test_the_export_reports_where_quantisation_changes_the_activity(conv_pool, biased):
    report = json.loads((conv_pool["folder"] / "quantization.json").read_text())
    assert [row["layer"] for row in report["spikes"]] == ["conv2d0", "sumpool2d1", "conv2d2", "dense4"]
    assert all(row["float"] > 0 and row["fixed"] > 0 for row in report["spikes"])
    biased_report = biased["summary"]["quantization"]
    assert any("bias_exp = 6" in note for note in biased_report["notes"])
    assert "model.net" in biased["summary"]["files"] and "not_written" not in biased["summary"]
    assert all(layer.neuron.bias_exp == 6 for layer in biased["fixed"].layers if layer.bias is not None)
    assert any(layer.bias is not None for layer in biased["fixed"].layers)
    assert biased_report["accuracy_fixed"] > 0.5


@pytest.mark.lava
def test_trained_biased_export_runs_in_real_netx_equal_to_golden(biased):
    pytest.importorskip("lava.lib.dl")
    from tests.test_netx import run_netx

    steps = 48
    x = biased["x"][:steps, :1]
    golden = simulate(biased["fixed"], x, time_major=True).spikes
    spikes = run_netx(biased["folder"] / "model.net", biased["fixed"], x[:, 0])
    for k, (a, g) in enumerate(zip(spikes, golden)):
        np.testing.assert_array_equal(a, g.reshape(len(g), -1), err_msg=f"layer {k}")
    assert all(int(g.sum()) > 0 for g in golden)
