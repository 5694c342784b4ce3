"""Kills, reruns, second writers, Ctrl-C and Lava workers: what ``docs/reliability.md`` promises.

* ``hwsim train`` and ``hwsim study`` killed (SIGKILL) at random moments and rerun end with exactly the
  result of an uninterrupted run, network file included;
* a kill between the network file and the checkpoint (the narrow window, forced here) is caught: export
  refuses the mismatched pair and ``--resume`` rewrites the network;
* a second writer of the same output gets "in use by PID N" (exit status 1);
* Ctrl-C prints one line and exits 130;
* a SIGKILLed ``hwsim export --verify`` leaves no Lava process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hwsim.methods.train import TrainConfig, load_checkpoint, network_digest, train

from hwsim.cli.main import main
from hwsim.safeio import OutputLock
from hwsim.sim.network import load
from tests.processes import group_alive

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1",
       "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
TRAIN = dict(rule="sltt", dataset="digits", epochs=3, timesteps=2, net="64-16-10", batch_size=128, seed=3)
TRAIN_ARGS = ["--rules", "sltt", "--epochs", "3", "-T", "2", "--net", "64-16-10", "--batch-size", "128", "--seed", "3",
              "--no-progress"]


def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hwsim", *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _same_checkpoints(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa["epoch"] == sb["epoch"] and len(sa["history"]) == len(sb["history"])
    for ma, mb in zip(sa["modules"], sb["modules"], strict=True):
        for key in ma:
            torch.testing.assert_close(ma[key], mb[key], rtol=0, atol=0)
    na, nb = load(a.with_suffix(".network.npz")), load(b.with_suffix(".network.npz"))
    assert network_digest(na) == network_digest(nb) == sa["network_sha256"] == sb["network_sha256"]


def _kill_and_rerun(argv_for, folder: Path, rounds: int, seed: int, span: float) -> list[str]:
    """Start ``argv_for()`` ``rounds`` times, each killed (SIGKILL) after a random delay in 0.5..``span``
    seconds unless it ended before, then once more to the end; returns what happened."""
    rng = np.random.default_rng(seed)
    events = []
    for _ in range(rounds):
        delay = float(rng.uniform(0.5, span))
        proc = _cli(*argv_for(), cwd=folder)
        try:
            proc.wait(timeout=delay)
            events.append(f"finished before {delay:.1f} s")
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            events.append(f"killed at {delay:.1f} s")
    proc = _cli(*argv_for(), cwd=folder)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{events}: {err[-2000:]}"
    assert any(e.startswith("killed") for e in events), events
    print("kill rounds:", events)
    return events


@pytest.mark.slow
def test_train_killed_at_random_moments_ends_as_an_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference.pt"
    start = time.perf_counter()
    train(TrainConfig(**TRAIN), out=reference, progress=False, log=lambda *_: None)
    span = time.perf_counter() - start + 5  # + the imports of a fresh process
    ckpt = tmp_path / "k.pt"

    def argv():
        return ["train", *TRAIN_ARGS, "--out", str(ckpt), *(["--resume", str(ckpt)] if ckpt.is_file() else [])]

    events = _kill_and_rerun(argv, tmp_path, rounds=3, seed=15, span=span)
    _same_checkpoints(reference, ckpt)
    assert not list(tmp_path.glob(".*.tmp*")), f"temporary files left: {events}"


def test_kill_between_network_and_checkpoint_is_caught_and_repaired(tmp_path, monkeypatch):
    """The network file is written first, then the checkpoint: die in between (forced here) and the network
    is an epoch ahead. Export refuses the pair; --resume rewrites the network; the end result is exact."""
    from hwsim.formats.bundle import load_trained
    from hwsim.sim.network import NetworkError

    reference = tmp_path / "reference.pt"
    train(TrainConfig(**TRAIN), out=reference, progress=False, log=lambda *_: None)
    ckpt = tmp_path / "k.pt"
    real_save, calls = torch.save, []

    def dying_save(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # epoch 2: its network file is written, its checkpoint is not
            raise KeyboardInterrupt
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**TRAIN), out=ckpt, progress=False, log=lambda *_: None)
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(ckpt)["epoch"] == 0
    with pytest.raises(NetworkError, match="not the network of checkpoint"):
        load_trained(ckpt)
    train(TrainConfig(**TRAIN), out=ckpt, resume=ckpt, progress=False, log=lambda *_: None)
    _same_checkpoints(reference, ckpt)
    load_trained(ckpt)


TINY_STUDY = """
epochs: 1
eval_samples: 30
network: 64-16-10
timesteps: 4
chips: [loihi, odin]
train_rules: [sltt]
rules: [sltt, ottt_a]
memory_timesteps: [2]
on_chip: {rules: [sltt], samples: 8}
export: false
"""


MEASURED = ("seconds", "allocator", "whole_kib")  # wall time, allocator peaks: measured, not results


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not any(m in k for m in MEASURED)}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


@pytest.mark.slow
def test_study_killed_at_random_moments_ends_as_an_uninterrupted_run(tmp_path):
    import json

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_STUDY)
    start = time.perf_counter()
    assert main(["study", "--config", str(config), "--out", str(tmp_path / "reference"), "--no-progress"]) == 0
    span = time.perf_counter() - start + 5  # + the imports of a fresh process
    out = tmp_path / "killed"
    events = _kill_and_rerun(lambda: ["study", "--config", str(config), "--out", str(out), "--no-progress"],
                             tmp_path, rounds=3, seed=16, span=span)
    a = json.loads((tmp_path / "reference" / "results.json").read_text())
    b = json.loads((out / "results.json").read_text())
    assert _without_times(a) == _without_times(b), events
    for name in ("train/sltt.network.npz", "fixed.network.npz"):
        assert network_digest(load(tmp_path / "reference" / name)) == network_digest(load(out / name)), name


def test_a_second_writer_gets_in_use_by_pid(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_STUDY)
    out = tmp_path / "study"
    out.mkdir()
    with OutputLock(out, folder=True):
        assert main(["study", "--config", str(config), "--out", str(out), "--no-progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"in use by PID {os.getpid()}" in err
        assert main(["export", "--checkpoint", str(tmp_path / "none.npz"), "--out", str(out)]) == 2  # input first
    ckpt = tmp_path / "a.pt"
    with OutputLock(ckpt, folder=False):
        assert main(["train", *TRAIN_ARGS, "--out", str(ckpt)]) == 1
        assert f"--out {ckpt}: in use by PID {os.getpid()}" in capsys.readouterr().err
    assert not ckpt.exists()


def test_two_processes_training_into_one_checkpoint(tmp_path):
    """Two real processes: the second is refused while the first trains (the first runs until it is
    interrupted, so the second always meets it), and the first's checkpoint stays intact."""
    ckpt = tmp_path / "a.pt"
    long_args = list(TRAIN_ARGS)
    long_args[long_args.index("--epochs") + 1] = "100000"  # still training when the second starts
    first = _cli("train", *long_args, "--out", str(ckpt), cwd=tmp_path)
    assert first.stdout.readline().startswith("epoch 1/100000"), first.stderr.read()  # lock held, one epoch saved
    second = _cli("train", *long_args, "--out", str(ckpt), cwd=tmp_path)
    _, err = second.communicate(timeout=300)
    assert first.poll() is None, "the first run ended before the second was refused"
    first.send_signal(signal.SIGINT)
    _, first_err = first.communicate(timeout=120)
    assert second.returncode == 1 and f"in use by PID {first.pid}" in err and err.strip().count("\n") == 0, err
    assert first.returncode == 130, first_err
    assert load_checkpoint(ckpt)["epoch"] >= 0 and not (tmp_path / "a.pt.lock").exists()


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    proc = _cli("train", "--rules", "sltt", "--epochs", "200", "-T", "2", "--net", "64-16-10", "--no-progress",
                "--out", str(tmp_path / "c.pt"), cwd=tmp_path)
    lines = [proc.stdout.readline() for _ in range(2)]  # epoch 1 is over and checkpointed: inside the loop now
    assert lines[1].startswith("epoch 2/200"), "".join(lines) + proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip() == "hwsim train: interrupted"
    assert load_checkpoint(tmp_path / "c.pt")["epoch"] >= 0  # every finished epoch is kept
    assert not list(tmp_path.glob(".*tmp*")), "a temporary file was left"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # ended meanwhile
        return b""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.lava
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_killed_export_leaves_no_lava_process(tmp_path):
    """SIGKILL ``hwsim export --verify`` while Lava runs a 300-step sample: within seconds no process of the
    Lava child's group is left, and its exchange folder is gone (only the watchdog removes it then)."""
    from hwsim.sim.network import from_spec, save

    save(from_spec("64-8-10", seed=1), tmp_path / "net.npz")
    proc = _cli("export", "--checkpoint", str(tmp_path / "net.npz"), "--out", str(tmp_path / "out"), "--verify",
                "--dataset", "digits", "-T", "300", cwd=tmp_path)
    deadline, child, group = time.monotonic() + 300, None, []
    while time.monotonic() < deadline and proc.poll() is None:
        kids = [k for k in _children(proc.pid) if b"lava_child" in _cmdline(k)]
        if kids:
            child = kids[0]
            group = group_alive(child)
            if len(group) > 1:  # Lava's workers are up
                break
        time.sleep(0.05)
    assert proc.poll() is None and child is not None and len(group) > 1, (proc.poll(), child, group)
    folder = Path(_cmdline(child).split(b"\0")[4].decode())
    assert folder.is_dir() and folder.name.startswith("hwsim-lava-")
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while (group_alive(child) or folder.exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_alive(child) == [], "Lava processes outlived the export"
    assert not folder.exists(), "the Lava child did not notice that hwsim died"


def test_ctrl_c_inside_a_finalizer_is_kept_for_the_next_check():
    """Python prints and drops an exception raised in a ``weakref.finalize`` callback (the memory meter runs
    one per saved tensor), so a Ctrl-C landing there would be lost; the handler keeps it for the training
    loop's next check instead, and raises at once anywhere else."""
    import weakref

    from hwsim import errors

    errors.clear_interrupt()
    raised = []

    def callback():
        try:
            errors.on_sigint(signal.SIGINT, sys._getframe())
        except KeyboardInterrupt:
            raised.append(True)

    class Box:
        pass

    box = Box()
    weakref.finalize(box, callback)
    del box
    assert not raised
    with pytest.raises(KeyboardInterrupt):
        errors.check_interrupt()
    errors.clear_interrupt()
    errors.check_interrupt()  # nothing pending
    with pytest.raises(KeyboardInterrupt):
        errors.on_sigint(signal.SIGINT, sys._getframe())
    errors.clear_interrupt()
