"""The ``hwsim`` command: JSON schema of ``hwsim run`` and one-line errors for bad input."""

import json
import subprocess
import sys

import pytest

from hwsim.cli import main
from hwsim.engine import bernoulli, simulate
from hwsim.network import from_spec, save


def test_run_json_schema_and_values(capsys):
    assert main(["run", "--net", "40-20-5", "--timesteps", "9", "--rate", "0.3", "--batch", "2", "--seed", "4",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"timesteps", "batch", "mode", "layers"}
    assert (out["timesteps"], out["batch"], out["mode"]) == (9, 2, "float")
    fields = {"name", "kind", "n_in", "n_out", "spikes_in", "spikes_out", "sop", "neuron_updates",
              "mem_read_bytes", "mem_write_bytes"}
    assert [set(layer) for layer in out["layers"]] == [fields, fields]
    # the same run through the library gives the same numbers
    net = from_spec("40-20-5", seed=4)
    result = simulate(net, bernoulli((9, 2, 40), 0.3, seed=5))
    for record, lc in zip(out["layers"], result.counts.layers):
        assert record["sop"] == lc.total("sop") and record["spikes_out"] == lc.total("spikes_out")


def test_run_table_fixed_mode_and_saved_network(tmp_path, capsys):
    path = save(from_spec("1x6x6-c2k3p1-p2-4", mode="fixed"), tmp_path / "net.npz")
    assert main(["run", "--net", str(path), "--mode", "fixed", "-T", "5"]) == 0
    text = capsys.readouterr().out
    assert "conv2d0" in text and "sumpool2d1" in text and "total" in text


@pytest.mark.parametrize("argv,message", [
    (["run", "--net", "784-abc-10"], "malformed network spec '784-abc-10'"),
    (["run", "--net", "784-10", "--mode", "half"], "--mode: unknown mode 'half'"),
    (["run", "--net", "no_such_net.npz"], "no_such_net.npz: no such network file"),
])
def test_bad_input_is_one_line(argv, message):
    proc = subprocess.run([sys.executable, "-m", "hwsim.cli", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv,message", [
    (["run", "--net", "10-5", "--rate", "1.5"], "--rate: expected a probability in [0, 1]"),
    (["run", "--net", "10-5", "--timesteps", "0"], "--timesteps/-T: expected a positive integer"),
])
def test_bad_numbers_rejected_by_parser(argv, message):
    proc = subprocess.run([sys.executable, "-m", "hwsim.cli", *argv], capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_help_mentions_units(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    assert "probability" in text and "time steps" in text


def test_chips_list_and_show(capsys):
    assert main(["chips", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"loihi", "truenorth", "odin"} <= {row["name"] for row in listed}
    assert main(["chips", "show", "loihi", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["energy"]["sop_pj"] == 23.6 and "Davies" in shown["energy"]["source"]


def test_estimate_all_chips_json_and_plot(tmp_path, capsys):
    png = tmp_path / "energy.png"
    assert main(["estimate", "--net", "50-20-5", "--chip", "all", "-T", "20", "--rate", "0.2", "--json",
                 "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    keys = {"chip", "energy_j", "energy_by_action_j", "latency_s", "fits", "cores_used", "limits_broken", "unpriced"}
    assert all(keys <= set(r) for r in out["chips"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_estimate_unknown_chip_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "hwsim.cli", "estimate", "--net", "10-5", "--chip", "loihi9"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown chip 'loihi9'; known chips: anp_i" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_saved_networks_run_in_their_own_mode_or_are_quantised(tmp_path, capsys):
    path = save(from_spec("30-12-4", mode="float", seed=1), tmp_path / "float.npz")
    assert main(["run", "--net", str(path), "-T", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "float"
    assert main(["run", "--net", str(path), "-T", "4", "--mode", "fixed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "fixed"  # quantised on the way
    fixed = save(from_spec("30-12-4", mode="fixed", seed=1), tmp_path / "fixed.npz")
    assert main(["run", "--net", str(fixed), "--mode", "float"]) == 2
    assert "has no float form" in capsys.readouterr().err
