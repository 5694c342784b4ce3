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
