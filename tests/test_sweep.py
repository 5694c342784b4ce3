"""``hwsim sweep``: Dask equals serial, a killed worker or a killed sweep loses nothing, failures are recorded, bad
input is one line. Tiny points (1 epoch, 2 time steps, 30 evaluation samples) keep it to tens of seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hwsim.cli.main import main
from hwsim.study.sweep import SweepError, expand, parse_sweep, run_sweep
from hwsim.study.sweep.table import RUN_COLUMNS, _uj, make_row, pareto
from tests.processes import group_alive

ROOT = Path(__file__).resolve().parents[1]
# 64-x-10 fit the digits (64 inputs); 32-8-10 does not: its training fails and its two points must say so.
TINY = {"base": {"dataset": "digits", "epochs": 1, "eval_samples": 30, "timesteps": 2, "train_rules": ["sltt"]},
        "axes": {"network": ["64-12-10", "64-24-10", "32-8-10"], "chips": ["spinnaker2", "loihi2"]}}
FAILING = "32-8-10"


def _frame(out: Path) -> pd.DataFrame:
    """The table without the columns that say when and where a point ran, in point order."""
    frame = pd.read_parquet(out / "points.parquet")
    return frame.drop(columns=list(RUN_COLUMNS)).sort_values("point_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "serial"
    summary = run_sweep(parse_sweep(TINY), out, serial=True, progress=False, log=lambda *_: None)
    assert (summary.points, summary.ran, summary.failed) == (6, 6, 2)
    return out


def test_points_cross_axes_split_per_rule_and_chip_and_share_training():
    config = parse_sweep({"base": {"train_rules": ["sltt", "bptt"]},
                          "axes": {"timesteps": [2, 4], "chips": ["loihi", "odin", "spinnaker2"],
                                   "eval_samples": [10, 20]}})
    points = expand(config)
    assert len(points) == 2 * 3 * 2 * 2  # T x chips x eval_samples, each split into the two rules
    assert [(p.config["timesteps"], p.chip, p.config["eval_samples"], p.rule) for p in points[:3]] == [
        (2, "loihi", 10, "sltt"), (2, "loihi", 10, "bptt"), (2, "loihi", 20, "sltt")]
    assert all(p.config["rules"] == p.config["train_rules"] == [p.rule] for p in points)
    assert len({p.id for p in points}) == 24
    assert len({p.model_key for p in points}) == 2 * 2 * 2  # chips share the trained network's hwsim run
    assert len({p.train_key for p in points}) == 2 * 2  # evaluation keys share the training too


def test_zipped_axes_vary_together():
    config = parse_sweep({"axes": {"network": ["64-8-10", "64-16-10"], "batch_size": [8, 16], "timesteps": [2, 4]},
                          "zip": [["network", "batch_size"]], "base": {"chips": ["loihi"], "train_rules": ["sltt"]}})
    pairs = [(p.config["network"], p.config["batch_size"], p.config["timesteps"]) for p in expand(config)]
    assert pairs == [("64-8-10", 8, 2), ("64-8-10", 8, 4), ("64-16-10", 16, 2), ("64-16-10", 16, 4)]
    everything = parse_sweep({"axes": {"network": ["64-8-10", "64-16-10"], "timesteps": [2, 4]}, "zip": True,
                              "base": {"chips": ["loihi"], "train_rules": ["sltt"]}})
    assert [(p.config["network"], p.config["timesteps"]) for p in expand(everything)] == [("64-8-10", 2),
                                                                                         ("64-16-10", 4)]


def test_energy_columns_come_from_the_cost_record_in_joules():
    assert _uj(2e-6) == 2.0 and _uj(1.23456e-5) == 12.3
    assert _uj(None) is None  # unknown stays unknown, never 0


def test_sweep_table_and_results_hold_no_zero_for_unknown(serial):
    import json

    from tests.unknowns import zeros_for_unknown

    rows = [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in _frame(serial).to_dict("records")]
    assert zeros_for_unknown(rows) == []
    for path in (serial / "points").glob("*/results.json"):
        assert zeros_for_unknown(json.loads(path.read_text())) == [], path


def test_pareto_front_keeps_only_undominated_points():
    rows = [{"energy_uj": e, "accuracy_percent": a, "id": i}
            for i, (e, a) in enumerate([(1.0, 50.0), (2.0, 40.0), (2.0, 70.0), (3.0, 70.0), (0.5, 20.0),
                                        (4.0, 90.0), (None, 99.0), (5.0, float("nan"))])]
    assert [r["id"] for r in pareto(rows)] == [4, 0, 2, 5]
    rows[5]["fits"] = False  # a network that does not fit its chip is no option
    assert [r["id"] for r in pareto(rows)] == [4, 0, 2]


def test_serial_sweep_records_failures_and_writes_table_report_and_figures(serial):
    frame = _frame(serial)
    assert len(frame) == 6
    failed = frame[frame.network == FAILING]
    assert list(failed.status) == ["error", "error"]
    assert all(e.startswith("stage train: DataError:") and "does not match the digits data" in e for e in failed.error)
    ok = frame[frame.network != FAILING]
    assert list(ok.status) == ["ok"] * 4 and ok.error.isna().all()
    assert ok.accuracy_percent.between(0, 100).all() and (ok.learning_memory_kib_per_core > 0).all()
    spinnaker = ok[ok.chip == "spinnaker2"]
    assert (spinnaker.energy_uj > 0).all() and (spinnaker.learning_memory_limit_kib == 125.0).all()
    assert (spinnaker.energy_dynamic_uj > 0).all() and spinnaker.energy_lower_bound.all()  # some actions unpriced
    loihi2 = ok[ok.chip == "loihi2"]  # priced from figures fitted to a Loihi 2 measurement, with its band
    assert (loihi2.energy_uj > 0).all() and (loihi2.energy_validation == "fitted").all()
    assert (loihi2.energy_low_uj < loihi2.energy_uj).all() and (loihi2.energy_uj < loihi2.energy_high_uj).all()
    assert list(ok.sort_values("width").width.unique()) == [12, 24]
    # points of one network share its training: same accuracy on both chips
    assert ok.groupby("network").accuracy_percent.nunique().eq(1).all()
    for pid in ok.point_id:
        assert (serial / "points" / pid / "results.json").is_file()
    for name in ("accuracy_vs_energy.png", "memory_vs_T.png", "cores_vs_width.png"):
        data = (serial / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    report = (serial / "sweep.md").read_text()
    assert "## Best point per chip and rule" in report and "## Failed points" in report
    assert report.count("stage train: DataError") == 2


def test_rerun_of_a_finished_sweep_runs_only_the_failed_points(serial):
    before = pd.read_parquet(serial / "points.parquet")
    logs = []
    summary = run_sweep(parse_sweep(TINY), serial, serial=True, progress=False, log=logs.append)
    assert (summary.done_before, summary.ran, summary.failed) == (4, 2, 2)
    assert logs[0] == "sweep: 6 points, 4 done before, 2 to run (1 trainings)"
    after = pd.read_parquet(serial / "points.parquet")
    kept = before.status == "ok"
    assert list(after[kept].finished_at) == list(before[kept].finished_at)  # not run again


@pytest.fixture(scope="module")
def cluster():
    """A 2-worker LocalCluster (one thread each) that the sweeps below reach by its address, as --scheduler."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=50) as running:
        yield running


def test_two_worker_local_cluster_equals_serial(serial, cluster, tmp_path):
    logs = []
    summary = run_sweep(parse_sweep(TINY), tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False,
                        log=logs.append)
    assert (summary.ran, summary.failed) == (6, 2)
    assert "with 2 workers; dashboard: http" in logs[1]
    frame = pd.read_parquet(tmp_path / "dask" / "points.parquet")
    assert frame[frame.status == "ok"].worker.str.startswith("tcp://").all()
    pd.testing.assert_frame_equal(_frame(tmp_path / "dask"), _frame(serial))


def test_killing_a_worker_mid_sweep_loses_nothing(serial, cluster, tmp_path):
    from distributed import Client

    out = tmp_path / "killed"
    with Client(cluster, set_as_default=False) as client:
        errors = []

        def sweep():
            try:
                run_sweep(parse_sweep(TINY), out, scheduler=cluster.scheduler_address, progress=False,
                          log=lambda *_: None)
            except Exception as err:  # pragma: no cover - reported below
                errors.append(err)

        thread = threading.Thread(target=sweep)
        thread.start()
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            busy = client.run(lambda dask_worker: [str(ts.key) for ts in dask_worker.state.tasks.values()
                                                   if ts.state == "executing"])
            training = [addr for addr, keys in busy.items() if any(k.startswith("hwsim-train-") for k in keys)]
            if training:
                victim = training[0]
            else:
                time.sleep(0.05)
        assert victim is not None, "no training task ever ran"
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)  # the worker dies in the middle of a training; its nanny starts a new one
        thread.join(timeout=300)
        assert not thread.is_alive() and not errors
        assert victim not in set(pd.read_parquet(out / "points.parquet").worker)
    pd.testing.assert_frame_equal(_frame(out), _frame(serial))


@pytest.mark.slow
def test_killing_the_whole_sweep_then_rerunning_completes_only_the_missing_points(serial, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))  # keys sorted: chips before network, so the points number otherwise
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "hwsim", "sweep", "--config", str(config), "--out", str(out),
                             "--workers", "1", "--no-progress"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "points.parquet").is_file() and len(pd.read_parquet(out / "points.parquet")) >= 1:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its Dask workers, at once
        proc.wait()
        _wait_for_group_to_end(proc.pid)
    _wait_for_free_locks(out)  # Dask workers (their own processes) end when they lose their scheduler
    before = pd.read_parquet(out / "points.parquet")
    assert 1 <= len(before) < 6, "the sweep finished before it could be killed"
    logs = []
    summary = run_sweep(parse_sweep(TINY), out, serial=True, progress=False, log=logs.append)
    finished = int((before.status == "ok").sum())
    assert (summary.done_before, summary.ran) == (finished, 6 - finished)
    after = pd.read_parquet(out / "points.parquet").set_index("point_id")
    for _, row in before[before.status == "ok"].iterrows():
        assert after.loc[row.point_id, "finished_at"] == row.finished_at
    pd.testing.assert_frame_equal(_frame(out), _frame(serial))


def _wait_for_group_to_end(pgid: int, timeout: float = 30.0) -> None:
    """Until no live process of group ``pgid`` is left (zombies count as ended)."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _wait_for_free_locks(out: Path, timeout: float = 120.0) -> None:
    """Until no process holds the lock of any point folder under ``out`` (a worker of a killed sweep keeps
    training its point, and holding its lock, until it notices that its scheduler is gone)."""
    import fcntl

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for lock in out.glob("**/.hwsim.lock"):
            try:
                fd = os.open(lock, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy = True
            finally:
                os.close(fd)
        if not busy:
            return
        time.sleep(0.1)


def _one_line_error(capsys, argv: list[str], status: int = 2) -> str:
    assert main(argv) == status
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and err.startswith("hwsim sweep: error: "), err
    return err


@pytest.mark.parametrize("config, expected", [
    ({"axes": {"netwrk": ["64-8-10"]}}, "axes: 'netwrk' is not a study key (known: dataset, "),
    ({"axes": {"timesteps": []}}, "axes: 'timesteps' is an empty list; give at least one value"),
    ({"axes": {"timesteps": [2, 0]}}, "point {'timesteps': 0}: study key 'timesteps': Input should be greater"),
    ({"axes": {"chips": ["loihi", "nochip"]}}, "point {'chips': 'nochip'}: study key 'chips'"),
    ({"axes": {"network": ["64-8-10"], "timesteps": [2, 4]}, "zip": [["network", "timesteps"]]},
     "zip: axes zipped together need lists of one length, got network (1 values), timesteps (2 values)"),
    ({"axes": {"rules": ["sltt"]}}, "vary 'train_rules' instead"),
    ({"base": {"epoch": 1}}, "base: key 'epoch' is not a study key"),
    ({"axis": {"timesteps": [2]}}, "key 'axis' is not a sweep key (known: base, axes"),
])
def test_bad_configuration_is_one_line(capsys, tmp_path, config, expected):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    err = _one_line_error(capsys, ["sweep", "--config", str(path), "--out", str(tmp_path / "out")])
    assert expected in err
    assert not (tmp_path / "out").exists()


def test_scheduler_that_does_not_answer_is_one_line_within_the_timeout(capsys, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(TINY))
    start = time.monotonic()
    err = _one_line_error(capsys, ["sweep", "--config", str(path), "--out", str(tmp_path / "out"), "--no-progress",
                                   "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"])
    assert time.monotonic() - start < 15
    assert "--scheduler tcp://127.0.0.1:9: no Dask scheduler answered within 1 s" in err


def test_out_holding_another_sweep_or_other_files_or_a_running_sweep_is_one_line(capsys, serial, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**TINY, "base": {**TINY["base"], "epochs": 2}}))
    err = _one_line_error(capsys, ["sweep", "--config", str(other), "--out", str(serial)])
    assert "holds a sweep of another configuration" in err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    err = _one_line_error(capsys, ["sweep", "--config", str(other), "--out", str(busy)])
    assert "not empty and holds no sweep (sweep.yaml)" in err
    from hwsim.safeio import OutputLock

    with OutputLock(serial, folder=True):  # as a running sweep holds it: the second one fails (exit 1)
        same = tmp_path / "same.yaml"
        same.write_text(yaml.safe_dump(TINY))
        err = _one_line_error(capsys, ["sweep", "--config", str(same), "--out", str(serial)], status=1)
    assert "another hwsim sweep: in use by PID" in err


def test_json_summary_and_notes_on_stderr(capsys, serial, tmp_path):
    import json

    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump(TINY))
    assert main(["sweep", "--config", str(same), "--out", str(serial), "--serial", "--no-progress", "--json"]) == 1
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert (summary["points"], summary["done_before"], summary["failed"]) == (6, 4, 2)
    assert "sweep: 6 points, 4 done before, 2 to run" in captured.err


def test_example_sweep_is_about_twenty_valid_points():
    from hwsim.study.sweep import load_sweep

    points = expand(load_sweep(ROOT / "examples" / "sweep_small.yaml"))
    assert 16 <= len(points) <= 30
    assert {p.config["dataset"] for p in points} == {"digits"}


def test_error_row_keeps_the_point_keys():
    point = expand(parse_sweep(TINY))[0]
    row = make_row(point, error="stage train: X")
    assert (row["status"], row["error"], row["network"], row["chip"], row["accuracy_percent"]) == (
        "error", "stage train: X", "64-12-10", "spinnaker2", None)
    with pytest.raises(SweepError):
        parse_sweep({"axes": {"chips": ["loihi", "loihi"]}})
