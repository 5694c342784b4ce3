"""The ``hwsim`` command: JSON schema of ``hwsim run``, one-line errors for bad input, and the conventions
every command shares (docs/cli.md): only JSON on stdout with ``--json``, exit statuses, output folders
created, ``--version``, one name and one default per concept."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.cli.main import main
from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import from_spec, save


def test_run_json_schema_and_values(capsys):
    assert main(["run", "--net", "40-20-5", "--timesteps", "9", "--rate", "0.3", "--batch-size", "2", "--seed", "4",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"timesteps", "batch", "mode", "engine", "device", "layers"}
    assert (out["timesteps"], out["batch"], out["mode"]) == (9, 2, "fixed")
    fields = {"name", "kind", "n_in", "n_out", "spikes_in", "spikes_out", "sop", "sop_recurrent", "neuron_updates",
              "mem_read_bytes", "mem_write_bytes"}
    assert [set(layer) for layer in out["layers"]] == [fields, fields]
    # the same run through the library gives the same numbers
    net = from_spec("40-20-5", mode="fixed", seed=4)
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
    proc = subprocess.run([sys.executable, "-m", "hwsim", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv,message", [
    (["run", "--net", "10-5", "--rate", "1.5"], "--rate: expected a probability in [0, 1]"),
    (["run", "--net", "10-5", "--timesteps", "0"], "--timesteps/-T: expected a positive integer"),
])
def test_bad_numbers_rejected_by_parser(argv, message):
    proc = subprocess.run([sys.executable, "-m", "hwsim", *argv], capture_output=True, text=True)
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
    proc = subprocess.run([sys.executable, "-m", "hwsim", "estimate", "--net", "10-5", "--chip", "loihi9"],
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


# ---------------------------------------------------------------------------------------------------------
# Conventions shared by every command
# ---------------------------------------------------------------------------------------------------------
def _cli(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "hwsim", *argv], capture_output=True, text=True,
                          cwd=cwd or root, env=env, timeout=600)


@pytest.mark.parametrize("argv", [
    ["run", "--net", "16-8-4", "-T", "3"],
    ["chips"],
    ["chips", "show", "odin"],
    ["estimate", "--net", "16-8-4", "-T", "3", "--chip", "loihi,odin"],
    ["estimate", "--net", "16-8-4", "-T", "3", "--chip", "loihi", "--rules", "sltt"],
    ["feasibility", "--net", "16-8-4", "-T", "3", "--chip", "loihi", "--rules", "sltt,ttl_bptt"],
    ["train", "--rules", "sltt", "--net", "64-10", "-T", "2", "--epochs", "1", "--batch-size", "256"],
])
def test_json_commands_print_only_json_on_stdout(argv, tmp_path):
    proc = _cli(*argv, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)  # the whole of stdout is one JSON document
    if argv[0] == "train":  # the epoch line and the note on the default checkpoint went to stderr
        assert "epoch 1/1" in proc.stderr and "epoch" not in proc.stdout.split("{", 1)[0]
        assert "runs/sltt-digits.pt" in proc.stderr and (tmp_path / "runs" / "sltt-digits.network.npz").is_file()


def test_train_without_out_keeps_every_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--rules", "sltt", "--net", "64-10", "-T", "2", "--epochs", "1", "--batch-size", "256",
            "--no-progress", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert (first["checkpoint"], second["checkpoint"]) == ("runs/sltt-digits.pt", "runs/sltt-digits-2.pt")
    for record in (first, second):  # nothing overwritten: both runs' files are there
        assert Path(record["checkpoint"]).is_file() and Path(record["network"]).is_file()
    from hwsim.sim.network import load

    assert load(first["network"]).timesteps == 2  # the trained T travels with the network (the axis guard)


def test_export_verification_failure_exits_1(tmp_path, monkeypatch, capsys):
    import hwsim.formats.bundle as bundle

    path = save(from_spec("8-4", seed=0), tmp_path / "net.npz")
    summary = {"files": [], "quantization": {"accuracy_float": None, "layers": []},
               "verify": {"equal": False, "timesteps": 3, "layers": [{"layer": "dense0", "equal": False, "spikes": 2}]}}
    monkeypatch.setattr(bundle, "export", lambda *a, **k: summary)
    argv = ["export", "--checkpoint", str(path), "--out", str(tmp_path / "o"), "--verify"]
    assert main(argv) == 1
    assert "DIFFERENT" in capsys.readouterr().out
    assert main([*argv, "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["verify"]["equal"] is False and "verification failed" in captured.err
    summary["verify"]["equal"] = summary["verify"]["layers"][0]["equal"] = True
    assert main([*argv, "--json"]) == 0


def test_plot_folders_are_created(tmp_path, capsys):
    estimate_png = tmp_path / "new" / "deeper" / "energy.png"
    assert main(["estimate", "--net", "16-8-4", "-T", "3", "--chip", "loihi", "--plot", str(estimate_png)]) == 0
    feasibility_png = tmp_path / "other" / "feasibility.png"
    assert main(["feasibility", "--net", "16-8-4", "-T", "3", "--chip", "loihi", "--rules", "sltt",
                 "--plot", str(feasibility_png)]) == 0
    assert estimate_png.stat().st_size > 1000 and feasibility_png.stat().st_size > 1000
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["estimate", "--net", "16-8-4", "--plot", str(blocker / "x.png")]) == 2
    assert "--plot" in capsys.readouterr().err


def test_estimate_plot_title_names_the_mode(monkeypatch, tmp_path):
    import hwsim.study.plots

    titles = []
    monkeypatch.setattr(hwsim.study.plots, "energy_breakdown", lambda reports, path, title="": titles.append(title))
    assert main(["estimate", "--net", "16-8-4", "-T", "3", "--chip", "loihi", "--plot", str(tmp_path / "e.png")]) == 0
    assert main(["estimate", "--net", "16-8-4", "-T", "3", "--chip", "loihi", "--rules", "sltt",
                 "--plot", str(tmp_path / "e.png")]) == 0
    assert "None" not in titles[0] and "fixed point" in titles[0] and "on-chip sltt training" in titles[1]


def test_version():
    import tomllib

    import hwsim

    proc = _cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"hwsim {hwsim.__version__}"
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hwsim.__version__"}


def test_chip_lists_are_one_option_everywhere(capsys):
    def chips_of(argv):
        assert main(argv) == 0
        out = json.loads(capsys.readouterr().out)
        return [r["chip"] for r in (out["chips"] if isinstance(out, dict) else out)]

    base = ["estimate", "--net", "16-8-4", "-T", "3", "--json"]
    expected = ["loihi", "odin", "truenorth"]
    assert chips_of([*base, "--chip", "loihi,odin,truenorth"]) == expected
    assert chips_of([*base, "--chip", "loihi", "--chip", "odin,truenorth"]) == expected
    assert chips_of([*base, "--chips", "loihi,odin", "--chip", "truenorth", "--chip", "loihi"]) == expected
    fea = ["feasibility", "--net", "16-8-4", "-T", "3", "--rules", "sltt", "--json"]
    assert chips_of([*fea, "--chip", "loihi", "--chips", "odin,truenorth"]) == expected
    assert len(chips_of([*fea, "--chip", "all"])) == len(chips_of(base)) > 5  # 'all' and the default agree


def test_one_default_per_concept():
    from hwsim.cli.main import build_parser

    parser = build_parser()
    run = parser.parse_args(["run", "--net", "8-4"])
    est = parser.parse_args(["estimate", "--net", "8-4"])
    fea = parser.parse_args(["feasibility", "--net", "8-4"])
    tr = parser.parse_args(["train", "--rules", "ttl_bptt"])
    assert run.mode == est.mode is None  # both fall back to DEFAULT_MODE for a spec
    assert run.rate == est.rate == fea.rate == 0.1
    assert tr.opt_window is fea.opt_window is None  # not given: the registry's default, one for every command
    from hwsim.methods.train import TrainConfig

    from hwsim.learning.registry import OPTIONS, RuleOptions

    assert TrainConfig(rule="ttl_bptt").window == RuleOptions().window == OPTIONS["window"].default == 2


def test_estimate_and_run_count_the_same_events_by_default(capsys):
    assert main(["run", "--net", "30-12-4", "-T", "6", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert main(["estimate", "--net", "30-12-4", "-T", "6", "--chip", "loihi", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert run["mode"] == est["mode"] == "fixed"
    assert [layer["sop"] for layer in run["layers"]] == [layer["sop"] for layer in est["counts"]]


def test_commands_run_a_trained_network_at_any_T_and_batch(tmp_path, capsys):
    net = from_spec("16-8-4", seed=0)
    net.timesteps = 8  # trained with T = 8: a batch of 8 at another T must not be mistaken for (N, T) data
    path = save(net, tmp_path / "trained.npz")
    common = ["--net", str(path), "-T", "20", "-B", "8", "--json"]
    for argv in (["run", *common], ["estimate", *common, "--chip", "loihi"],
                 ["estimate", *common, "--chip", "loihi", "--rules", "sltt"]):
        assert main(argv) == 0, capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["timesteps"] == 20
