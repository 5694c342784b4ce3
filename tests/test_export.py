"""Export: quantisation, netx layout, NIR round trip, and Lava equality of a network trained by hwsim."""

import json

import numpy as np
import pytest

from hwsim.cli.main import main
from hwsim.formats import nir_io
from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import Dense, FloatLIF, Network, NetworkError, from_spec, load
from hwsim.sim.quantize import quantize


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    assert main(["train", "--rules", "sltt", "--epochs", "1", "-T", "6", "--out", str(folder / "sltt.pt"),
                 "--no-progress"]) == 0
    return folder / "sltt.pt"


@pytest.mark.lava
def test_export_of_a_trained_mlp_verifies_spike_for_spike_in_lava(trained, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["export", "--checkpoint", str(trained), "--out", str(out), "--verify", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["verify"]["equal"] and all(layer["equal"] for layer in summary["verify"]["layers"])
    assert sum(layer["spikes"] for layer in summary["verify"]["layers"]) > 0  # equality of something
    assert {"network.npz", "model.net", "model.nir", "golden.npz", "run_lava.py", "quantization.json"} <= set(
        summary["files"]) and (out / "verify.json").is_file()
    q = summary["quantization"]
    assert q["accuracy_float"] > 0.7 and abs(q["accuracy_float"] - q["accuracy_fixed"]) < 0.05
    golden = np.load(out / "golden.npz")  # the NIR file alone reproduces the golden spikes
    rebuilt = nir_io.read(out / "model.nir")
    result = simulate(rebuilt, golden["input"].reshape(len(golden["input"]), 1, -1))
    for i, spikes in enumerate(result.spikes):
        np.testing.assert_array_equal(spikes.reshape(len(spikes), -1), golden[f"layer{i}"])


@pytest.mark.parametrize("spec,shape", [("20-16-5", (20,)), ("2x8x8-c4k3p1-p2-10", (2, 8, 8))])
def test_nir_read_rebuilds_the_network_and_its_golden_spikes(tmp_path, spec, shape):
    import nir

    net = from_spec(spec, mode="fixed", seed=1)
    path = nir_io.write(net, tmp_path / "model.nir")
    graph = nir.read(path)
    assert {type(n).__name__ for n in graph.nodes.values()} >= {"Input", "Output", "LIF"}
    lif = next(n for n in graph.nodes.values() if type(n).__name__ == "LIF")  # du = 4095: no current memory
    # NIR's own units: threshold in units of synaptic input (vth, not Lava's internal vth << 6, plus 63/4096: Lava's
    # integer membrane fires from vth + 1/64 on), tau in seconds
    assert np.all(lif.v_threshold == 64 + 63 / 4096) and np.allclose(lif.tau, graph.metadata["dt"] * 4096 / 3724)
    back = nir_io.read(path)
    assert back.describe() == net.describe()
    x = bernoulli((12, 2, *shape), 0.3, seed=3)
    for a, b in zip(simulate(net, x).spikes, simulate(back, x).spikes):
        np.testing.assert_array_equal(a, b)


def test_quantisation_reports_clipping_and_reset_conversion():
    tiny = Network(3, [Dense(np.full((2, 3), 1e-4), neuron=FloatLIF(lam=0.5, v_th=1.0))])
    fixed, report = quantize(tiny)
    assert report.layers[0].vth_clipped and fixed.layers[0].neuron.vth == 2**17 - 1
    assert report.layers[0].reset_converted and "soft reset converted" in report.notes[0]
    assert fixed.layers[0].weight_exp == -1 and set(np.unique(fixed.layers[0].weight)) == {254}
    zero = Network(3, [Dense(np.ones((2, 3)), neuron=FloatLIF(lam=0.5, v_th=2.0, reset="zero"))])
    _, report = quantize(zero)
    # V_th s = 254 exactly: the float neuron fires at u >= 254 steps, Lava at v > vth << 6, so vth = 253
    assert not report.layers[0].reset_converted and report.layers[0].dv == 2048 and report.layers[0].vth == 253


def test_export_errors_name_the_file(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.pt: no such checkpoint" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a checkpoint")
    assert main(["export", "--checkpoint", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.pt: not a readable hwsim training checkpoint" in capsys.readouterr().err
    with pytest.raises(NetworkError, match="no such NIR file"):
        nir_io.read(tmp_path / "missing.nir")
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"junk")
    with pytest.raises(NetworkError, match="junk.nir: not a readable NIR file"):
        nir_io.read(junk)


def test_exported_network_file_is_the_fixed_network(trained, tmp_path):
    from hwsim.formats.bundle import export, load_trained

    network, config = load_trained(trained)
    assert config["rule"] == "sltt" and network.mode == "float"
    summary = export(network, tmp_path / "b")
    fixed = load(tmp_path / "b" / "network.npz")
    assert fixed.mode == "fixed" and "verify" not in summary


@pytest.mark.lava
def test_export_of_a_trained_conv_net_verifies_in_lava(tmp_path, capsys):
    ckpt = tmp_path / "conv.pt"
    assert main(["train", "--rules", "sltt", "--net", "1x8x8-c4k3p1-p2-10", "--epochs", "1", "-T", "6",
                 "--out", str(ckpt), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "b"), "--verify", "--json"]) == 0
    verify = json.loads(capsys.readouterr().out)["verify"]
    assert verify["equal"] and [layer["layer"] for layer in verify["layers"]] == ["conv2d0", "sumpool2d1", "dense3"]
    assert all(layer["spikes"] > 0 for layer in verify["layers"][:2])


@pytest.mark.lava
def test_learning_export_correlates_with_hwsim_fixed_point_ottt():
    from hwsim.formats.lava_learning import compare_learning

    for seed in range(2):
        network = from_spec("40-24-10", seed=seed)
        x = bernoulli((30, 40), 0.3, seed=seed + 5)
        result = compare_learning(network, x, label=seed, seed=seed)
        assert result.correlation >= 0.9, result.to_dict()
        assert result.mean_abs_change > 1.0  # the rule really changed the weights
        assert result.mean_abs_difference < 0.2 * result.mean_abs_change


@pytest.mark.lava
def test_export_cli_reports_learning_correlation(trained, tmp_path, capsys):
    assert main(["export", "--checkpoint", str(trained), "--out", str(tmp_path / "b"), "--learning", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["learning"]["correlation"] >= 0.9 and (tmp_path / "b" / "learning.json").is_file()


@pytest.mark.lava
def test_run_lava_script_needs_only_lava_and_numpy(tmp_path):
    import subprocess
    import sys

    from hwsim.formats.bundle import export

    net = from_spec("1x9x9-c3k3s2p1-p2-f-5", mode="fixed", seed=2)
    export(net, tmp_path / "b")
    golden = np.load(tmp_path / "b" / "golden.npz")
    assert "delay_steps_per_synapse" in json.loads(str(golden["meta"]))
    assert "one step per connection" in (tmp_path / "b" / "README.md").read_text()
    block_hwsim = ("import sys, runpy; sys.modules['hwsim'] = None; sys.argv = ['run_lava.py']; "
                   "runpy.run_path('run_lava.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", block_hwsim], cwd=tmp_path / "b", capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "spikes equal per layer: [True, True, True]" in done.stdout


def test_export_refuses_a_network_netx_cannot_hold_rather_than_leave_model_net_out(tmp_path):
    """A fixed-point network whose biases netx cannot hold (netx fixes bias_exp = 6): one line, nothing written.
    A float network is quantised with its biases at bias_exp = 6 (tests/test_nir_trained.py runs one in netx)."""
    from hwsim.formats.bundle import export
    from tests.test_nir import _with

    net = _with(from_spec("12-8-3", mode="fixed", seed=2), bias_exp=2)
    with pytest.raises(NetworkError, match=r"model.net: not written: layer 0 \(dense0\): .*multiple of 64") as err:
        export(net, tmp_path / "b")
    assert len(str(err.value).splitlines()) == 1
    assert not any((tmp_path / "b").iterdir())
    floating = from_spec("12-8-3", seed=2)
    for layer in floating.layers:
        layer.bias = np.linspace(-0.3, 0.4, layer.n_out).astype(np.float32)
    summary = export(floating, tmp_path / "f")
    assert "model.net" in summary["files"]
    assert all(layer.neuron.bias_exp == 6 for layer in load(tmp_path / "f" / "network.npz").layers)


def test_export_converts_nir_and_netx_network_files(tmp_path):
    """``export`` given a .nir or .net network writes every format of it (no unpickling of a checkpoint)."""
    from hwsim.formats import netx
    from hwsim.formats.bundle import export, load_trained

    net = from_spec("1x6x6-c2k3p1-p2-4", mode="fixed", seed=3)
    x = bernoulli((10, 2, 1, 6, 6), 0.3, seed=1)
    for path in (nir_io.write(net, tmp_path / "n.nir"), netx.write(net, tmp_path / "n.net")):
        network, config = load_trained(path)
        assert config == {} and network.mode == "fixed"
        summary = export(network, tmp_path / path.suffix[1:])
        assert {"model.net", "model.nir", "network.npz", "golden.npz"} <= set(summary["files"])
        back = load(tmp_path / path.suffix[1:] / "network.npz")
        for a, b in zip(simulate(net, x).spikes, simulate(back, x).spikes):
            np.testing.assert_array_equal(a, b)
