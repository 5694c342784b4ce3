"""Atomic writes, locks, the bounded .npz reader, strict YAML, bounded messages and the private numba cache."""

from __future__ import annotations

import io
import os
import threading
import time
import zipfile

import numpy as np
import pytest

from hwsim.errors import OutputBusy, UsageError, short
from hwsim.safeio import (
    NpzError,
    OutputLock,
    atomic_write,
    check_output_dir,
    check_output_file,
    load_yaml,
    read_npz,
)


def test_atomic_writes_from_many_threads_never_show_a_partial_file(tmp_path):
    """Writers share no temporary name; a reader sees one whole version or another, never a mix."""
    target = tmp_path / "stage.json"
    versions = [bytes([65 + i]) * 200_000 for i in range(4)]
    atomic_write(target, versions[0])
    errors, stop = [], threading.Event()

    def writer(data):
        try:
            for _ in range(30):
                atomic_write(target, data)
        except Exception as err:  # noqa: BLE001 -- collected for the assertion
            errors.append(err)

    def reader():
        while not stop.is_set():
            if target.read_bytes() not in versions:
                errors.append("partial file seen")

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["stage.json"]  # no temporary file left


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from hwsim.safeio import atomic_path

    target = tmp_path / "a.txt"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_lock_names_the_owner_and_is_released(tmp_path):
    first = OutputLock(tmp_path, "--out x", folder=True).acquire()
    with pytest.raises(OutputBusy, match=f"--out x: in use by PID {os.getpid()}"):
        OutputLock(tmp_path, "--out x", folder=True).acquire()
    first.release()
    with OutputLock(tmp_path, folder=True):
        pass
    assert not (tmp_path / ".hwsim.lock").exists()  # a normal release removes its lock file


def test_a_dead_owner_leaves_no_lock(tmp_path):
    import subprocess
    import sys

    code = (f"from hwsim.safeio import OutputLock; import os; "
            f"held = OutputLock({str(tmp_path)!r}, folder=True).acquire(); os._exit(0)")  # no release: killed
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert (tmp_path / ".hwsim.lock").read_text().strip().isdigit()  # the file stays, the lock does not
    with OutputLock(tmp_path, folder=True):
        pass


def test_output_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file" / "sub", "--out")
    with pytest.raises(UsageError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "file", "--out")
    with pytest.raises(UsageError, match="cannot write there"):
        check_output_dir("/proc/hwsim-test", "--out")
    with pytest.raises(UsageError, match="ending in .png"):
        check_output_file(tmp_path / "plot.txt", "--plot", (".png",))
    assert check_output_dir(tmp_path / "new" / "deep", "--out").is_dir()
    assert check_output_file(tmp_path / "p" / "x.png", "--plot", (".png",)).parent.is_dir()
    assert sorted(p.name for p in (tmp_path / "new" / "deep").iterdir()) == []  # the probe is gone


def _npz(**arrays) -> io.BytesIO:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    return buffer


def test_read_npz_reads_only_what_is_expected_and_checks_before_reading(tmp_path):
    path = tmp_path / "a.npz"
    path.write_bytes(_npz(a=np.arange(6).reshape(2, 3), b=np.ones(3) + 1j, c=np.zeros(10**6)).getvalue())
    out = read_npz(path, lambda n: n == "a", max_bytes=1 << 20)
    assert list(out) == ["a"] and out["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and out["a"].flags.writeable
    with pytest.raises(NpzError, match="member 'b': dtype complex128 not allowed"):
        read_npz(path, lambda n: n == "b", max_bytes=1 << 20)
    with pytest.raises(NpzError, match="member 'c': 8000000 bytes"):
        read_npz(path, lambda n: n == "c", max_bytes=1 << 20)
    with pytest.raises(NpzError, match="missing member 'z'"):
        read_npz(path, lambda n: n == "z", max_bytes=1 << 20, required=("z",))


def test_read_npz_finds_truncation_and_corruption(tmp_path):
    data = _npz(a=np.arange(1000)).getvalue()
    (tmp_path / "cut.npz").write_bytes(data[:-200])
    with pytest.raises(NpzError, match="not a readable"):
        read_npz(tmp_path / "cut.npz", lambda n: True, max_bytes=1 << 20)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        member = io.BytesIO()
        np.save(member, np.arange(1000))
        archive.writestr("a.npy", member.getvalue())
    flipped = bytearray(buffer.getvalue())
    flipped[400] ^= 0xFF  # inside the array data: the CRC check catches it
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(NpzError):
        read_npz(tmp_path / "flip.npz", lambda n: True, max_bytes=1 << 20)


def test_strict_yaml(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("a: 5e1\nb: 1E-3\nc: 7\nd: 1.5\ne: '5e1'\nf: .inf\n")
    assert load_yaml(path, "x") == {"a": 50.0, "b": 0.001, "c": 7, "d": 1.5, "e": "5e1", "f": float("inf")}
    path.write_text("a: 1\nb: {c: 1, c: 2}\n")
    with pytest.raises(UsageError, match="key 'c' appears twice \\(lines 2 and 2\\)"):
        load_yaml(path, "x")
    path.write_text("a: &a [1, 2]\nb: *a\nc: {<<: {d: 1}}\n")  # aliases and merge keys stay legal
    assert load_yaml(path, "x") == {"a": [1, 2], "b": [1, 2], "c": {"d": 1}}


def test_billion_laughs_is_refused_quickly(tmp_path):
    path = tmp_path / "lol.yaml"
    path.write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")))
    start = time.perf_counter()
    with pytest.raises(UsageError, match="expands to more than"):
        load_yaml(path, "x")
    assert time.perf_counter() - start < 2


def test_short_is_bounded_in_time_and_length():
    value = ["x"] * 10
    for _ in range(9):
        value = [value] * 10  # 10**10 strings when expanded
    start = time.perf_counter()
    text = short(value)
    assert len(text) <= 80 and time.perf_counter() - start < 0.1


def test_numba_cache_fallback_is_private(tmp_path):
    from hwsim.sim.kernels import _private_dir

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    assert _private_dir(shared) is None  # writable by others: refused
    link = tmp_path / "link"
    link.symlink_to(shared)
    assert _private_dir(link) is None  # never followed through a symlink
    fresh = _private_dir(tmp_path / "fresh")
    assert fresh is not None and os.stat(fresh).st_mode & 0o777 == 0o700
    if os.getuid() == 0:
        os.chown(fresh, 4321, 4321)
        assert _private_dir(fresh) is None  # someone else's


# ---------------------------------------------------------------------------------------------------------
# Full disks and I/O errors: every writer ends in one line naming its file, with no temporary file left
# ---------------------------------------------------------------------------------------------------------
WRITERS = ["atomic_write", "network_save", "figure", "sweep_table", "sweep_report", "sweep_claim", "sweep_json",
           "study_config", "study_report_append"]
WRITER_SCRIPT = r'''
import json, os, resource, signal, sys
from pathlib import Path

folder, limit = Path(sys.argv[1]), int(sys.argv[2])
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
from hwsim.errors import WriteError
from hwsim.safeio import atomic_write
from hwsim.sim.network import from_spec, save
from hwsim.study.figures import save as save_figure
from hwsim.study.pipeline import Study, StudyConfig
from hwsim.study.study_figures import append_to_report
from hwsim.study.sweep.config import SweepConfig
from hwsim.study.sweep.report import write_report
from hwsim.study.sweep.run import _claim
from hwsim.study.sweep.table import Table, write_json

big = "x" * 200_000
net = from_spec("64-256-10")
fig, ax = plt.subplots()
ax.imshow(__import__("numpy").random.default_rng(0).random((200, 200)))
rows = [{"point": 0, "point_id": "a", "status": "ok", "chip": "loihi", "rule": "sltt", "network": big,
         "timesteps": 8, "accuracy_percent": 90.0, "energy_uj": 1.0, "fits": True, "learning_verdict": "feasible",
         "learning_memory_kib_per_core": 1.0}]
writers = {
    "atomic_write": ("a.json", lambda p: atomic_write(p, big)),
    "network_save": ("n.network.npz", lambda p: save(net, p)),
    "figure": ("f.png", lambda p: save_figure(fig, p)),
    "sweep_table": ("t/points.parquet", lambda p: (t := Table(p.parent / "empty"), setattr(t, "path", p),
                                                   setattr(t, "rows", {"a": rows[0]}), t.write())),
    "sweep_report": ("r/sweep.md", lambda p: write_report(SweepConfig(), rows, [], p.parent)),
    "sweep_claim": ("c/sweep.yaml", lambda p: _claim(p.parent, SweepConfig(base={"network": big}))),
    "sweep_json": ("j/results.json", lambda p: write_json(p, {"x": big})),
    "study_config": ("s/study.yaml", lambda p: Study(StudyConfig(dataset="digits", data_path=big), p.parent,
                                                     progress=False)),
    "study_report_append": ("m/report.md", lambda p: append_to_report(p, {"energy_vs_latency.png": {}})),
}
OLD = {name: "old" for name in writers}
OLD["study_report_append"] = "old report\n" * 90  # about 1 KiB: the appended section takes it past the limit
for name, (relative, _) in writers.items():  # the old version of every target, written before the disk "fills"
    target = folder / name / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if name not in ("sweep_claim", "study_config"):  # these refuse a folder that holds something else
        target.write_text(OLD[name])
if limit:  # files may not grow past `limit` bytes: writes fail with EFBIG (SIGXFSZ ignored), as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
else:  # the folder is a tiny tmpfs: fill it, so writes fail with ENOSPC
    try:
        with open(folder / "filler", "wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
    except OSError:
        pass
out = {}
for name, (relative, write) in writers.items():
    target = folder / name / relative
    try:
        write(target)
        out[name] = {"error": None}
    except Exception as err:
        out[name] = {"error": type(err).__name__, "message": str(err)}
    out[name]["left"] = sorted(p.name for p in target.parent.iterdir())
    out[name]["unchanged"] = (target.read_text() if target.is_file() else None) == OLD[name]
    out[name]["target"] = str(target)
print(json.dumps(out))
'''


def _writers_on_a_full_disk(folder, limit: int) -> dict:
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", WRITER_SCRIPT, str(folder), str(limit)], capture_output=True,
                          text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fsize_results(tmp_path_factory):
    """Every writer in a process whose files may not exceed 1 KiB (RLIMIT_FSIZE): a full disk for any user."""
    return _writers_on_a_full_disk(tmp_path_factory.mktemp("fsize"), 1024)


@pytest.fixture(scope="module")
def tmpfs_results(tmp_path_factory):
    """Every writer on a real, full tmpfs (ENOSPC); needs the right to mount (root), else skipped."""
    import subprocess

    folder = tmp_path_factory.mktemp("tmpfs")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield _writers_on_a_full_disk(folder, 0)
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def _check_writer(result: dict, name: str, reason: str) -> None:
    r = result[name]
    assert r["error"] == "WriteError", r
    message = r["message"]
    named = r["target"] in message or (name == "study_config" and r["target"].replace("study.yaml", ".hwsim.lock")
                                       in message)  # on a full disk the study's lock fails first
    assert "\n" not in message and named and reason in message, message
    assert not [n for n in r["left"] if ".tmp" in n], f"{name}: temporary files left: {r['left']}"
    if name not in ("sweep_claim", "study_config"):
        assert r["unchanged"], f"{name}: the old file was damaged"


@pytest.mark.parametrize("name", WRITERS)
def test_every_writer_on_a_full_disk_is_one_line_naming_its_file(fsize_results, name):
    _check_writer(fsize_results, name, "File too large")


@pytest.mark.parametrize("name", WRITERS)
def test_every_writer_on_a_real_full_tmpfs(tmpfs_results, name):
    _check_writer(tmpfs_results, name, "No space left on device")


def test_no_space_and_delayed_io_errors_name_the_file(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    from hwsim.errors import WriteError

    target = tmp_path / "results.json"
    atomic_write(target, "old")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(WriteError, match=r"results\.json: cannot write: No space left on device \(free some space"):
        atomic_write(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]

    def eio(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", eio)  # a delayed write error, reported by fsync before the rename
    with pytest.raises(WriteError, match="results.json: cannot write: Input/output error"):
        atomic_write(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


# ---------------------------------------------------------------------------------------------------------
# Links and the umask
# ---------------------------------------------------------------------------------------------------------
def test_outputs_are_never_written_through_a_link(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwsim.study.figures import save as save_figure

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    for name, write in (("a.json", lambda p: atomic_write(p, "new")), ("f.png", lambda p: save_figure(
            plt.subplots()[0], p))):
        link = tmp_path / name
        link.symlink_to(victim)
        write(link)  # replaces the link with a file of its own; the target is not written
        assert not link.is_symlink() and link.stat().st_size > 0 and victim.read_text() == "keep"
    plot = tmp_path / "p.png"
    plot.symlink_to(victim)
    with pytest.raises(UsageError, match="p.png: is a symbolic link"):
        check_output_file(plot, "--plot", (".png",))
    out = tmp_path / "out"
    out.mkdir()
    (out / ".hwsim.lock").symlink_to(victim)
    with pytest.raises(UsageError, match="lock .* is a symbolic link"):
        OutputLock(out, "--out out", folder=True).acquire()
    assert victim.read_text() == "keep"


def test_files_get_the_umask_of_their_write_time(tmp_path):
    before = os.umask(0o077)
    try:
        atomic_write(tmp_path / "private.txt", "x")
        os.umask(0o002)
        atomic_write(tmp_path / "group.txt", "x")
    finally:
        os.umask(before)
    assert os.stat(tmp_path / "private.txt").st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "group.txt").st_mode & 0o777 == 0o664


# ---------------------------------------------------------------------------------------------------------
# Sizes before allocation; printable names
# ---------------------------------------------------------------------------------------------------------
def test_headers_are_read_without_the_data_and_a_lying_member_costs_nothing(tmp_path):
    from hwsim.safeio import npz_headers

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 28,)})
    with zipfile.ZipFile(tmp_path / "lie.npz", "w") as archive:  # declares 1 GiB, holds 16 bytes
        archive.writestr("w.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + bytes(16))
        archive.writestr("b.npy", _npz_member(np.arange(3)))
    assert npz_headers(tmp_path / "lie.npz", lambda n: True) == {"w": ((1 << 28,), np.dtype("<f4")),
                                                                  "b": ((3,), np.dtype(int))}
    with open("/proc/self/status") as status:
        before = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    with pytest.raises(NpzError, match="truncated"):
        read_npz(tmp_path / "lie.npz", lambda n: n == "w", max_bytes=2 << 30)
    with open("/proc/self/status") as status:
        after = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    assert after - before < 64 << 10  # KiB: the 1 GiB buffer was never touched


def _npz_member(value) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, value)
    return buffer.getvalue()


def test_memory_limit_and_its_message(monkeypatch):
    from hwsim.errors import TooLarge
    from hwsim.safeio import MEMORY_ENV, check_memory, memory_limit, parse_size, set_memory_limit

    assert [parse_size(t) for t in ("512", "300M", "4G", "1.5GiB", "2kb")] == [512, 300 << 20, 4 << 30,
                                                                              3 << 29, 2048]
    for bad in ("", "x", "-1", "0", "1e3", "4GG"):
        with pytest.raises(ValueError):
            parse_size(bad)
    monkeypatch.setenv(MEMORY_ENV, "2M")
    assert memory_limit() == (2 << 20, MEMORY_ENV)
    with pytest.raises(TooLarge, match=r"^--net x\.npz: would take 3\.0 MiB of memory \(12 weights\), over the limit "
                                       r"of 2\.0 MiB \(HWSIM_MAX_MEMORY\)"):
        check_memory(3 << 20, "--net x.npz", "12 weights")
    set_memory_limit(4 << 20)
    try:
        check_memory(3 << 20, "--net x.npz")  # the command line's --max-memory wins
        assert memory_limit() == (4 << 20, "--max-memory")
    finally:
        set_memory_limit(None)
    monkeypatch.delenv(MEMORY_ENV)
    limit, source = memory_limit()
    assert limit is None or (limit > 0 and "this process can still get" in source)


def test_names_are_printable():
    from hwsim.errors import one_line, printable

    name = "conv\x1b[2J\x1b]0;x\x07\x9b1m\u202edone\x00"
    shown = printable(name)
    assert not any(c in shown for c in "\x1b\x07\x9b\u202e\x00")
    assert shown == "conv\\x1b[2J\\x1b]0;x\\x07\\x9b1m\\u202edone\\x00"
    assert printable("é and 中文 stay") == "é and 中文 stay"
    assert len(printable("\x1b" * 1000, 50)) == 50
    assert "\x1b" not in one_line(f"error in layer {name}")
