"""Recurrent layers exported: Lava (a recurrent LIF = LIF + Dense(input) + Dense(recurrent) from its own s_out,
verified spike for spike), netx (``dense_rec``, run by the real lava-dl 0.6.0 netx), and ``hwsim export`` on a
recurrent net (every format written and verified; ALIF refused in one line before anything is written).

References: the engine's golden spikes, and the plain-numpy fixed-point reference written from Lava's sources
(:func:`tests.nir_recurrent_reference.run_fixed`), which agrees with both.
"""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from hwsim.cli.main import main
from hwsim.formats import netx, nir_io
from hwsim.formats.bundle import export
from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import LoihiLIF, Network, NetworkError, Recurrent, from_spec, load, save
from tests import nir_recurrent_reference as ref


def _with_bias(spec: str, seed: int, bias_exp: int = 6) -> Network:
    rng = np.random.default_rng(seed)
    net = from_spec(spec, mode="fixed", seed=seed)
    for layer in net.layers:
        n = layer.neuron
        layer.neuron = LoihiLIF(du=n.du, dv=n.dv, vth=n.vth, bias_exp=bias_exp)
        layer.bias = rng.integers(-3, 5, layer.n_out).astype(np.int32)
    return Network(net.input_shape, net.layers)


def _edge_cases(seed: int = 5) -> Network:
    """Odd weights (Lava's sign-mode bit and each Dense's own shift), weight_exp -2, current memory, bias."""
    rng = np.random.default_rng(seed)
    w, r = rng.integers(-90, 120, (8, 10)), rng.integers(-100, 100, (8, 8))
    return Network(10, [Recurrent(w, r, neuron=LoihiLIF(du=1500, dv=300, vth=30, bias_exp=2), weight_exp=-2,
                                  bias=rng.integers(-100, 200, 8))])


def _same(a, b) -> bool:
    return bool(np.array_equal(np.asarray(a).reshape(len(a), -1), np.asarray(b).reshape(len(b), -1)))


LAVA_CASES = {"20-r16-5": lambda: from_spec("20-r16-5", mode="fixed", seed=1), "edge cases": _edge_cases,
              "12-r10-r8-3 + bias": lambda: _with_bias("12-r10-r8-3", seed=2)}


@pytest.mark.lava
def test_lava_runs_recurrent_layers_bit_exact_with_the_reference():
    """Lava's LIF + Dense(input) + Dense(recurrent) from its own s_out, as hwsim builds it, equals the reference in
    spikes and voltages (each Dense shifts its own sum by weight_exp: with odd weights and a negative exponent
    that differs from shifting the layer's summed input)."""
    from hwsim.formats.lava import run_lava

    for name, make in LAVA_CASES.items():
        net = make()
        x = bernoulli((25, 1, *net.input_shape), 0.35, seed=3)
        lava = run_lava(net, x[:, 0])
        spikes, volts = ref.run_fixed(net, x, record_v=True)
        for k in range(len(spikes)):
            assert _same(lava.spikes[k], spikes[k][:, 0]) and _same(lava.v[k], volts[k][:, 0]), (name, k)
        assert all(int(s.sum()) > 3 for s in spikes), (name, [int(s.sum()) for s in spikes])


def test_the_engine_is_bit_exact_with_the_reference_on_the_lava_cases():
    for name, make in LAVA_CASES.items():
        net = make()
        x = bernoulli((25, 1, *net.input_shape), 0.35, seed=3)
        spikes, volts = ref.run_fixed(net, x, record_v=True)
        engine = simulate(net, x, record=True)
        for k in range(len(spikes)):
            assert _same(engine.spikes[k], spikes[k]), (name, k, "spikes")
            assert _same(engine.membranes[k], volts[k]), (name, k, "v")


@pytest.mark.lava
def test_hwsim_export_of_a_recurrent_net_verifies_in_lava_and_runs_standalone(tmp_path, capsys):
    """A float recurrent net (soft reset) goes through the quantisation step; every file is written; Lava equals
    the golden spikes; run_lava.py (lava-nc and numpy only) says so too; NIR and netx read back to network.npz."""
    net_path = save(from_spec("16-r12-4", seed=4), tmp_path / "rec.npz")
    out = tmp_path / "bundle"
    assert main(["export", "--checkpoint", str(net_path), "--out", str(out), "--verify", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["verify"]["equal"] and [v["layer"] for v in summary["verify"]["layers"]] == ["recurrent0", "dense1"]
    assert all(v["spikes"] > 0 for v in summary["verify"]["layers"])
    assert {"network.npz", "model.net", "model.nir", "golden.npz", "run_lava.py"} <= set(summary["files"])
    assert any("soft reset converted" in note for note in summary["quantization"]["notes"])
    fixed = load(out / "network.npz")
    assert fixed.mode == "fixed" and isinstance(fixed.layers[0], Recurrent)
    for back in (nir_io.read(out / "model.nir"), netx.read(out / "model.net")):
        x = bernoulli((20, 2, 16), 0.3, seed=1)
        assert all(_same(a, b) for a, b in zip(simulate(back, x).spikes, simulate(fixed, x).spikes))
    block_hwsim = ("import sys, runpy; sys.modules['hwsim'] = None; sys.argv = ['run_lava.py']; "
                   "runpy.run_path('run_lava.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", block_hwsim], cwd=out, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "spikes equal per layer: [True, True]" in done.stdout


@pytest.mark.lava
def test_real_netx_runs_dense_rec_equal_to_golden(tmp_path):
    """lava-dl 0.6.0's netx reads ``dense_rec`` (one weight exponent fitted to weight and weight_rec together) and
    builds its RecurrentDense block, which runs equal to the golden spikes."""
    pytest.importorskip("lava.lib.dl")
    from tests.test_netx import run_netx

    for i, net in enumerate((from_spec("20-r16-5", mode="fixed", seed=1), _with_bias("12-r10-r8-3", seed=2))):
        x = bernoulli((20, 1, *net.input_shape), 0.4, seed=2)
        golden = simulate(net, x).spikes
        spikes = run_netx(netx.write(net, tmp_path / f"{i}.net"), net, x[:, 0])
        assert all(_same(a, g) for a, g in zip(spikes, golden)) and all(int(g.sum()) > 3 for g in golden)


def test_netx_dense_rec_layout_and_read_back(tmp_path):
    net = _with_bias("12-r10-r8-3", seed=2)
    path = netx.write(net, tmp_path / "model.net")
    with h5py.File(path, "r") as f:
        assert [f[f"layer/{i}/type"][()] for i in range(4)] == [b"input", b"dense_rec", b"dense_rec", b"dense"]
        for i, layer in enumerate(net.layers[:2], start=1):
            np.testing.assert_array_equal(f[f"layer/{i}/weight"][()], layer.weight.astype(np.int64) >> 1)  # 2w, -1
            np.testing.assert_array_equal(f[f"layer/{i}/weight_rec"][()], layer.recurrent.astype(np.int64) >> 1)
            np.testing.assert_array_equal(f[f"layer/{i}/bias"][()], layer.bias)
    back = netx.read(path)
    assert [layer.kind for layer in back.layers] == ["recurrent", "recurrent", "dense"]
    x = bernoulli((20, 2, 12), 0.3, seed=6)
    assert all(_same(a, b) for a, b in zip(simulate(back, x).spikes, ref.run_fixed(net, x)))
    with h5py.File(path, "r+") as f:
        del f["layer/1/weight_rec"]
    with pytest.raises(NetworkError, match=r"model.net: layer 1: a dense_rec layer without 'weight_rec'"):
        netx.read(path)


def test_export_writes_every_format_of_a_recurrent_net_and_the_golden_spikes(tmp_path):
    net = _with_bias("12-r10-4", seed=7)
    summary = export(net, tmp_path / "b")
    assert {"network.npz", "model.net", "model.nir", "golden.npz", "run_lava.py"} <= set(summary["files"])
    golden = np.load(tmp_path / "b" / "golden.npz")
    x = golden["input"].reshape(len(golden["input"]), 1, -1)
    for i, spikes in enumerate(ref.run_fixed(net, x)):
        np.testing.assert_array_equal(spikes.reshape(len(spikes), -1), golden[f"layer{i}"])
    assert nir_io.read(tmp_path / "b" / "model.nir").describe() == net.describe()


def test_alif_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys):
    alif = from_spec("12-a10-4", seed=1)
    with pytest.raises(NetworkError, match=r"^layer 0 \(recurrent0\): adaptive-threshold \(ALIF\) neurons have no "
                                           r"Lava, netx or NIR form") as err:
        export(alif, tmp_path / "direct")
    assert len(str(err.value).splitlines()) == 1 and not (tmp_path / "direct").exists()
    path = save(alif, tmp_path / "alif.npz")
    assert main(["export", "--checkpoint", str(path), "--out", str(tmp_path / "cli")]) == 2
    message = capsys.readouterr().err.strip()
    assert "adaptive-threshold (ALIF)" in message and len(message.splitlines()) == 1
    assert not [p for p in (tmp_path / "cli").glob("*") if not p.name.startswith(".")]
    for writer in (netx.write, nir_io.write):
        with pytest.raises(NetworkError, match=r"layer 0 \(recurrent0\): adaptive-threshold \(ALIF\)"):
            writer(alif, tmp_path / "x")
    from hwsim.formats.lava import check_lava_expressible

    with pytest.raises(NetworkError, match=r"layer 0 \(recurrent0\): adaptive-threshold \(ALIF\) neurons have no "
                                           r"Lava LIF form"):
        check_lava_expressible(alif)


def _slayer_recurrent(tmp_path):
    """lava-dl slayer's recurrent CUBA block and a dense read-out, exported by slayer's own ``export_hdf5``."""
    import torch

    from tests.test_netx_lava_dl import PARAMS, _export, _slayer

    slayer = _slayer()
    torch.manual_seed(0)
    blocks = torch.nn.ModuleList([slayer.block.cuba.Recurrent(PARAMS, 30, 20, weight_scale=4),
                                  slayer.block.cuba.Dense(PARAMS, 20, 10, weight_scale=4)])
    return blocks, _export(blocks, tmp_path / "slayer_rec.net", (30,))


def test_slayers_recurrent_block_reads_as_a_recurrent_layer_equal_to_slayer(tmp_path):
    """slayer writes its ``cuba.Recurrent`` block as ``dense_rec``: hwsim reads it and runs it equal to slayer's own
    (Loihi-quantised) forward pass."""
    from tests.test_netx_lava_dl import _slayer_forward

    blocks, path = _slayer_recurrent(tmp_path)
    net = netx.read(path)
    assert [layer.kind for layer in net.layers] == ["recurrent", "dense"] and net.input_shape == (30,)
    x = bernoulli((40, 1, 30), 0.3, seed=1)
    ours = simulate(net, x).spikes
    assert all(_same(a, b) for a, b in zip(ours, _slayer_forward(blocks, x[:, 0])))
    assert all(int(s.sum()) > 50 for s in ours)


@pytest.mark.lava
def test_slayers_recurrent_block_runs_equal_in_netx(tmp_path):
    from tests.test_netx import run_netx

    _, path = _slayer_recurrent(tmp_path)
    net = netx.read(path)
    x = bernoulli((40, 1, 30), 0.3, seed=1)
    assert all(_same(a, b) for a, b in zip(simulate(net, x).spikes, run_netx(path, net, x[:, 0])))
