"""The formats under attack (issue 26): exports that cannot corrupt, hostile names, sizes of NIR and netx graphs
checked before allocation, and outputs never written through a link.

* **Sizes**: NIR and netx files of a few kilobytes that declare gigabytes -- a weight dataset of 32768 x 32768 whose
  chunks were never written, one dataset hard-linked hundreds of times, an input of 100000 x 100000 pixels pooled
  to one neuron (no weight at all), a pooling node whose merge with the next synapse would allocate 40 G values,
  a 3 MB hwsim metadata JSON -- each run as a real ``python -m hwsim`` process: exit status 2, one line naming the
  file, the bytes and the limit, no traceback, nothing written, and the process's own peak resident memory (its
  ``wait4`` rusage, that process alone) under 500 MB; the refusal itself within a second (in process).
* **Full disk**: every writer of ``export`` (netx, NIR, network, quantisation report, golden spikes, README,
  ``run_lava.py``, ``verify.json``, ``learning.json``) failing in turn, and the final renames: one WriteError line
  naming the file, the output folder as it was (empty, or the previous export byte for byte), no temporary file or
  staging folder. Then the real thing, in real processes: a full tmpfs (root only) and ``RLIMIT_FSIZE`` (any user).
  The old export died of SIGSEGV there (HDF5 2.0's close after a failed flush; see ``hwsim/formats/bounds.py``).
* **Names**: NUL, control characters, ``/``, ``..``, bidirectional overrides in layer names: the export is written
  and every file of it reads back, names exact, spikes equal; names that no file could hold are refused in one line.
* **Links**: links planted at every export file's name, at a stale ``verify.json`` and as a staging folder: never
  followed, their targets unchanged.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

from hwsim.errors import TooLarge, WriteError
from hwsim.formats import bundle, netx, nir_io
from hwsim.formats.bundle import EXPORT_FILES, STAGING_PREFIX, export
from hwsim.safeio import set_memory_limit
from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import Dense, LoihiLIF, Network, NetworkError, SumPool2d, from_spec, load, save

ROOT = Path(__file__).resolve().parents[1]
PEAK_BYTES = 500 << 20  # peak resident memory of one case's process
CASE_SECONDS = 60
LIMIT = ["--max-memory", "2G"]  # the same limit on every machine: the inputs declare tens to hundreds of GiB
BIG = 100_000  # pixels per side of a declared input


# ---------------------------------------------------------------------------------------------------------
# Hostile inputs
# ---------------------------------------------------------------------------------------------------------
def _lif(shape: tuple[int, ...]):
    return nir.LIF(tau=np.full(shape, 1e-3), r=np.full(shape, 10.0), v_leak=np.zeros(shape),
                   v_threshold=np.ones(shape), v_reset=np.zeros(shape))


def _chain(path: Path, input_shape: tuple[int, ...], nodes: dict, output_shape: tuple[int, ...]) -> None:
    """A NIR file of ``Input -> nodes (in order) -> Output``, as another framework would write it."""
    names = ["input", *nodes, "output"]
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array(input_shape)}), **nodes,
                                "output": nir.Output(output_type={"output": np.array(output_shape)})},
                         edges=list(zip(names[:-1], names[1:])), type_check=False)
    nir.write(path, graph)


def _make_inputs(folder: Path) -> None:
    fixed = from_spec("20-8-4", mode="fixed", seed=1)
    save(fixed, folder / "net.npz")
    # a weight dataset that declares 32768 x 32768 float32 (4 GiB) in chunks never written: a file of 65 KB
    nir_io.write(fixed, folder / "declared.nir")
    with h5py.File(folder / "declared.nir", "a") as f:
        node = f["node/nodes/0_dense0.synapse"]
        del node["weight"]
        node.create_dataset("weight", shape=(32768, 32768), dtype="f4", chunks=(1024, 1024), compression="gzip")
    netx.write(fixed, folder / "declared.net")
    with h5py.File(folder / "declared.net", "a") as f:
        del f["layer/1/weight"]
        f["layer/1"].create_dataset("weight", shape=(32768, 32768), dtype="i4", chunks=(1024, 1024),
                                    compression="gzip")
    # one 8 MB dataset (compressed zeros) reachable through 500 hard links: 4 GB for a reader that follows them
    nir_io.write(fixed, folder / "links.nir")
    with h5py.File(folder / "links.nir", "a") as f:
        meta = f["node/nodes/0_dense0.synapse/metadata"]
        meta.create_dataset("w", data=np.zeros((1000, 1000)), compression="gzip")
        for i in range(500):
            meta[f"copy{i}"] = meta["w"]
    for kind, link in (("external", h5py.ExternalLink("/etc/hostname", "/")), ("soft", h5py.SoftLink("/node"))):
        nir_io.write(fixed, folder / f"{kind}.nir")
        with h5py.File(folder / f"{kind}.nir", "a") as f:
            f["node/nodes/0_dense0.synapse/metadata"]["link"] = link
    # 3 MB of hwsim metadata JSON ("[]," is an empty list: 64 bytes of Python objects per 3 characters)
    nir_io.write(fixed, folder / "json.nir")
    with h5py.File(folder / "json.nir", "a") as f:
        meta = f["node/nodes/0_dense0.synapse/metadata"]
        del meta["hwsim"]
        meta.create_dataset("hwsim", data="[" + "[]," * 1_000_000 + "[]]", dtype=h5py.string_dtype())
    # shapes declared without data: an input of 100000 x 100000 pooled to one neuron; a pool -> Flatten -> Affine
    # merge of 4 x 1 x 100000 x 100000 values; a pooling kernel of 100 merged into a convolution
    pool = nir.SumPool2d(kernel_size=np.array([BIG, BIG]), stride=np.array([BIG, BIG]), padding=np.array([0, 0]))
    _chain(folder / "input.nir", (1, BIG, BIG), {"pool": pool, "lif": _lif((1, 1, 1))}, (1, 1, 1))
    _chain(folder / "merge.nir", (1, BIG, BIG), {
        "pool": nir.SumPool2d(kernel_size=np.array([1, 1]), stride=np.array([BIG // 2] * 2), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=np.ones((4, 4)), bias=np.zeros(4)), "lif": _lif((4,))}, (4,))
    _chain(folder / "kernel.nir", (1, 100, 100), {
        "pool": nir.SumPool2d(kernel_size=np.array([100, 100]), stride=np.array([100, 100]), padding=np.array([0, 0])),
        "conv": nir.Conv2d(input_shape=(1, 1), weight=np.ones((2, 1, 1, 1)), stride=1, padding=0, dilation=1, groups=1,
                           bias=np.zeros(2)), "lif": _lif((2, 1, 1))}, (2, 1, 1))
    _chain(folder / "longname.nir", (3,), {"n" * 300: nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
                                           "lif": _lif((2,))}, (2,))
    with h5py.File(folder / "input.net", "w") as f:  # netx: the same declared input, hwsim's own pool layer
        f["layer/0/type"], f["layer/0/shape"] = np.bytes_("input"), np.array([1, BIG, BIG])
        layer = f.create_group("layer/1")
        layer["type"], layer["shape"] = np.bytes_("pool"), np.array([1, 1, 1])
        layer["kernel"], layer["stride"], layer["weight"] = BIG, BIG, 1
        for key, value in {"type": np.bytes_("CUBA"), "iDecay": 4096, "vDecay": 0, "vThMant": 1}.items():
            layer[f"neuron/{key}"] = value
    # hostile layer names in an hwsim network file: they become NIR node (HDF5 group) names on export
    for label, name in (("nul", "a\x00b"), ("slash", "a/../../b"), ("escape", "\x1b[31mRED\x1b]0;owned\x07\x9b2J")):
        net = from_spec("20-8-4", mode="fixed", seed=1)
        net.layers[0].name = name
        save(net, folder / f"name_{label}.npz")
    (folder / "victim.txt").write_text("not to be written\n")


# (id, argv, exit status, fragments of the one line); {F} is the shared input folder, other paths are relative to
# the case's own (empty) working folder, which must be unchanged by a refusal
CASES = [
    ("nir-declared", ["run", "--net", "{F}/declared.nir", "-T", "2", *LIMIT], 2,
     ("NIR file", "declared.nir: would take", "over the limit of 2.0 GiB")),
    ("nir-declared-export", ["export", "--checkpoint", "{F}/declared.nir", "--out", "out", *LIMIT], 2,
     ("declared.nir: would take", "over the limit of 2.0 GiB")),
    ("netx-declared", ["run", "--net", "{F}/declared.net", "-T", "2", *LIMIT], 2,
     ("netx HDF5 file", "declared.net: would take", "over the limit of 2.0 GiB")),
    ("netx-declared-export", ["export", "--checkpoint", "{F}/declared.net", "--out", "out", *LIMIT], 2,
     ("declared.net: would take",)),
    ("nir-hard-links", ["run", "--net", "{F}/links.nir", "-T", "2", *LIMIT], 2, ("links.nir: would take",)),
    ("nir-external-link", ["run", "--net", "{F}/external.nir", "-T", "2"], 2, ("external.nir", "an external link")),
    ("nir-soft-link", ["estimate", "--net", "{F}/soft.nir", "--chip", "loihi"], 2, ("soft.nir", "a soft link")),
    ("nir-metadata-json", ["run", "--net", "{F}/json.nir", "-T", "2", "--max-memory", "32M"], 2,
     ("json.nir: its hwsim metadata: would take", "over the limit of 32.0 MiB")),
    ("nir-declared-input", ["run", "--net", "{F}/input.nir", "-T", "2", *LIMIT], 2,
     ("input.nir: would take", "10000000001 inputs and neurons")),
    ("nir-declared-input-export", ["export", "--checkpoint", "{F}/input.nir", "--out", "out", *LIMIT], 2,
     ("input.nir: would take",)),
    ("netx-declared-input", ["feasibility", "--net", "{F}/input.net", *LIMIT], 2,
     ("input.net: would take", "10000000001 inputs and neurons")),
    ("nir-merge", ["run", "--net", "{F}/merge.nir", "-T", "2", *LIMIT], 2,
     ("merge.nir: node 'pool': the merged weights", "would take")),
    ("nir-merge-kernel", ["run", "--net", "{F}/kernel.nir", "-T", "2"], 2,
     ("kernel.nir: node 'pool': a pooling kernel of 100", "over the limit of 4096 windows")),
    ("nir-long-name", ["run", "--net", "{F}/longname.nir", "-T", "2"], 2, ("a name of 300 characters",)),
    ("export-name-nul", ["export", "--checkpoint", "{F}/name_nul.npz", "--out", "out"], 0, ()),
    ("export-name-slash", ["export", "--checkpoint", "{F}/name_slash.npz", "--out", "out"], 0, ()),
    ("export-name-escape", ["export", "--checkpoint", "{F}/name_escape.npz", "--out", "out"], 0, ()),
]


def _snapshot(folder: Path) -> dict:
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            out[key] = ("link", os.readlink(path))
        elif path.is_file():
            out[key] = path.read_bytes()
        else:
            out[key] = ("dir",)
    return out


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "HWSIM_MAX_MEMORY"}
    env.update({"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"})
    return env


# Runs ``hwsim`` and writes this process image's peak resident KiB (VmHWM) at exit: wait4's ru_maxrss carries the
# high-water mark from before exec (Linux), i.e. the test session's own size at the fork.
_PEAK_PROBE = """import sys
from hwsim.cli.main import main
try:
    code = main(sys.argv[2:])
finally:
    try:  # a case under a file-size limit may not write it: the caller then falls back to ru_maxrss
        with open("/proc/self/status") as status:
            peak_kib = next(line.split()[1] for line in status if line.startswith("VmHWM"))
        with open(sys.argv[1], "w") as handle:
            handle.write(peak_kib)
    except OSError:
        pass
sys.exit(code)
"""


def _process(argv: list[str], cwd: Path, preexec=None) -> dict:
    """Run ``python -m hwsim argv`` in ``cwd``; its exit status, output, seconds and own peak resident memory."""
    with open(cwd / ".stdout", "wb") as out, open(cwd / ".stderr", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", _PEAK_PROBE, str(cwd / ".peak"), *argv], cwd=cwd, stdout=out,
                                stderr=err, env=_env(), preexec_fn=preexec)
        timer = threading.Timer(CASE_SECONDS, proc.kill)
        timer.start()
        start = time.perf_counter()
        _, status, usage = os.wait4(proc.pid, 0)  # this process's own rusage, not the test session's children's
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    peak_file = cwd / ".peak"
    peak = int(peak_file.read_text()) * 1024 if peak_file.is_file() else usage.ru_maxrss * 1024
    peak_file.unlink(missing_ok=True)
    result = {"code": proc.returncode, "seconds": time.perf_counter() - start, "peak": peak,
              "stdout": (cwd / ".stdout").read_text(errors="replace"),
              "stderr": (cwd / ".stderr").read_text(errors="replace")}
    for name in (".stdout", ".stderr"):
        (cwd / name).unlink()
    return result


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile_inputs")
    _make_inputs(folder)
    return folder


@pytest.fixture(scope="module")
def results(inputs, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("hostile_work")
    before = _snapshot(inputs)

    def run(case):
        label, argv, *_ = case
        (work / label).mkdir()
        return _process([a.replace("{F}", str(inputs)) for a in argv], work / label)

    with ThreadPoolExecutor(4) as pool:
        done = dict(zip([c[0] for c in CASES], pool.map(run, CASES)))
    done["_work"], done["_inputs_unchanged"] = work, before == _snapshot(inputs)
    return done


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_files_are_one_line_bounded_and_write_nothing(results, case):
    label, _, expected, fragments = case
    r = results[label]
    lines = r["stderr"].strip().splitlines()
    assert r["code"] == expected, f"{label}: exit status {r['code']}: {r['stderr'][-800:]}"
    assert "Traceback" not in r["stderr"] and "internal error" not in r["stderr"], r["stderr"][-800:]
    assert r["peak"] < PEAK_BYTES, f"{label}: peak resident memory {r['peak'] >> 20} MiB"
    assert not any(c in r["stdout"] + r["stderr"] for c in "\x1b\x9b\x07\x00"), "raw terminal control on the screen"
    assert results["_inputs_unchanged"]
    folder = results["_work"] / label
    if expected:
        assert len(lines) == 1 and all(f in lines[0] for f in fragments), lines
        assert not any(folder.iterdir()), f"{label} wrote {sorted(p.name for p in folder.iterdir())}"
        return
    assert lines == [] and set(os.listdir(folder / "out")) == set(EXPORT_FILES) - {"verify.json", "learning.json"}


@pytest.mark.parametrize("label,name", [("nul", "a\x00b"), ("slash", "a/../../b"),
                                        ("escape", "\x1b[31mRED\x1b]0;owned\x07\x9b2J")])
def test_an_export_of_hostile_names_reads_back_exactly(results, inputs, label, name):
    """The exported files of the CLI cases above: every one reads back (hwsim, netx, NIR's own reader), names exact
    where the format holds names, NIR node names free of '/' and control characters, spikes equal."""
    out = results["_work"] / f"export-name-{label}" / "out"
    original = load(inputs / f"name_{label}.npz")
    x = bernoulli((12, 2, 20), 0.3, seed=4)
    expected = simulate(original, x).spikes
    for back in (nir_io.read(out / "model.nir"), load(out / "network.npz"), netx.read(out / "model.net")):
        for a, b in zip(expected, simulate(back, x).spikes):
            np.testing.assert_array_equal(a, b)
    assert nir_io.read(out / "model.nir").layers[0].name == name == load(out / "network.npz").layers[0].name
    keys = list(nir.read(out / "model.nir").nodes)
    assert len(keys) == 6 and not any(c in key for key in keys for c in "/\x00\x1b\x07\x9b"), keys
    assert json.loads(str(np.load(out / "golden.npz")["meta"]))["layers"][0] == name


# ---------------------------------------------------------------------------------------------------------
# Sizes: the refusal within a second, the export's own sizes
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("file", ["declared.nir", "declared.net", "links.nir", "input.nir", "input.net", "merge.nir"])
def test_size_refusals_come_within_a_second(inputs, file):
    reader = nir_io.read if file.endswith(".nir") else netx.read
    set_memory_limit(2 << 30)
    try:
        start = time.perf_counter()
        with pytest.raises(TooLarge) as err:
            reader(inputs / file)
        seconds = time.perf_counter() - start
    finally:
        set_memory_limit(None)
    message = str(err.value)
    assert seconds < 1.0 and len(message.splitlines()) == 1 and len(message) < 600
    assert file in message and "would take" in message and "over the limit of 2.0 GiB (--max-memory)" in message


def test_an_export_larger_than_the_limit_is_refused_before_its_folder_is_made(tmp_path):
    """Sum pooling on a declared 64 x 4096 x 4096 input holds no weight, but netx and NIR write it as a
    convolution of 64² x 4096² taps and the golden run holds a billion inputs per step."""
    net = Network((64, 4096, 4096), [SumPool2d(4096, 4096, weight=1, neuron=LoihiLIF(du=4095, dv=0, vth=1))])
    set_memory_limit(1 << 30)
    try:
        with pytest.raises(TooLarge, match=r"^export to .*big: would take .* over the limit of 1.0 GiB") as err:
            export(net, tmp_path / "big")
    finally:
        set_memory_limit(None)
    assert "68719476736 pooling taps" in str(err.value) and not (tmp_path / "big").exists()


def test_names_no_file_can_hold_are_refused_before_anything_is_written(tmp_path):
    for name, fragment in (("n" * 201, "a name of 201 characters"), ("a\ud800b", "not valid Unicode")):
        net = from_spec("6-3", mode="fixed", seed=0)
        net.layers[0].name = name
        with pytest.raises(NetworkError, match=fragment) as err:
            export(net, tmp_path / "out")
        assert len(str(err.value).splitlines()) == 1 and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------
# A full disk: every writer in turn (in process), then real ones (real processes)
# ---------------------------------------------------------------------------------------------------------
def _fake_lava(task, network, spikes, label=0):
    """``run_isolated`` without Lava: the golden spikes for "verify" (hwsim's own fixed run), a record for
    "learning" -- enough to make export write verify.json and learning.json."""
    if task == "learning":
        return {"correlation": 1.0, "steps": len(spikes)}
    return {"spikes": [s.reshape(s.shape[0], -1) for s in simulate(network, spikes.reshape(
        len(spikes), 1, *network.input_shape), time_major=True).spikes]}


@pytest.fixture(scope="module")
def float_net() -> Network:
    return from_spec("12-8-3", seed=2)


def _fsyncs(monkeypatch, fail_at: int | None) -> list[str]:
    """Record the file of every ``os.fsync`` (every export writer flushes its file once); with ``fail_at``, that
    call fails as a full disk whose delayed write error surfaces at the flush."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        if len(seen) - 1 == fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def _writer_names(paths: list[str]) -> list[str]:
    """The export file each flushed path is written for (atomic temporary names ``.model.xyz.tmp.net``)."""
    names = []
    for path in paths:
        name = Path(path).name
        names.append(next(n for n in EXPORT_FILES if name == n or (
            name.startswith(f".{Path(n).stem}.") and name.endswith(Path(n).suffix))))
    return names


def test_every_export_writer_on_a_full_disk_is_one_line_and_leaves_the_folder_as_it_was(tmp_path, monkeypatch,
                                                                                          float_net):
    monkeypatch.setattr(bundle, "run_isolated", _fake_lava)
    seen = _fsyncs(monkeypatch, None)
    export(float_net, tmp_path / "old", verify=True, learning=True)  # an earlier export to keep whole
    order = _writer_names(seen)
    assert sorted(order) == sorted(EXPORT_FILES), order  # every writer flushes its file once
    old = _snapshot(tmp_path / "old")
    for k, name in enumerate(order):
        for folder, before in ((tmp_path / f"new{k}", {}), (tmp_path / "old", old)):
            _fsyncs(monkeypatch, k)
            with pytest.raises(WriteError) as err:
                export(float_net, folder, verify=True, learning=True)
            message = str(err.value)
            assert len(message.splitlines()) == 1
            assert message.startswith(f"{folder / name}: cannot write: No space left on device"), message
            assert "nothing was exported" in message
            assert _snapshot(folder) == before, f"writer {name}: the folder changed"


def test_a_failed_rename_into_place_leaves_no_half_export(tmp_path, monkeypatch, float_net):
    out = tmp_path / "out"
    real = os.replace
    calls = []

    def replace(src, dst):
        if Path(dst).parent == out:
            calls.append(Path(dst).name)
            if len(calls) == 3:
                raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(WriteError, match=r"cannot write: Input/output error; the export is incomplete") as err:
        export(float_net, out)
    assert str(err.value).startswith(str(out / calls[2])) and _snapshot(out) == {}


def _full_disk_export(tmp_path: Path, preexec=None, folder: Path | None = None) -> dict:
    save(from_spec("64-40-10", mode="fixed", seed=0), tmp_path / "net.npz")
    return _process(["export", "--checkpoint", str(tmp_path / "net.npz"), "--out", str(folder or tmp_path / "out")],
                    tmp_path, preexec)


def _check_full_disk(r: dict, out: Path, reason: str) -> None:
    lines = r["stderr"].strip().splitlines()
    assert r["code"] == 1, f"exit status {r['code']} (the old export died of SIGSEGV, 139): {r['stderr'][-600:]}"
    assert len(lines) == 1 and "Traceback" not in r["stderr"], r["stderr"][-600:]
    assert f"cannot write: {reason}" in lines[0] and "nothing was exported" in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir()), sorted(os.listdir(out))


@pytest.mark.parametrize("limit", [2048, 40_000])
def test_export_under_a_file_size_limit_is_one_line(tmp_path, limit):
    """``RLIMIT_FSIZE`` makes every write past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored): a full disk for any
    user, hitting a different writer for each limit."""
    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    _check_full_disk(_full_disk_export(tmp_path, limited), tmp_path / "out", "File too large")


@pytest.fixture(scope="module")
def page_budgets(tmp_path_factory) -> list[tuple[str, int]]:
    """``(file, bytes)`` per export writer in order: a tmpfs of that size (the lock file's page and the pages of the
    files before it) is full exactly when that writer starts. From a dry run of the same export."""
    folder = tmp_path_factory.mktemp("dry")
    save(from_spec("64-40-10", mode="fixed", seed=0), folder / "net.npz")
    files = export(load(folder / "net.npz"), folder / "out")["files"]
    order = [n for n in ("model.net", "model.nir", "network.npz", "quantization.json", "golden.npz", "README.md",
                         "run_lava.py") if n in files]
    pages = [-(-(folder / "out" / n).stat().st_size // 4096) for n in order]
    return [(name, 4096 * (1 + sum(pages[:k]))) for k, name in enumerate(order)]  # 1: the page of the lock file


@pytest.mark.parametrize("k", range(7))
def test_export_onto_a_real_full_tmpfs_is_one_line_naming_each_writer(tmp_path, page_budgets, k):
    name, budget = page_budgets[k]
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={budget}", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        r = _full_disk_export(tmp_path, folder=disk / "out")
        _check_full_disk(r, disk / "out", "No space left on device")
        assert r["stderr"].startswith(f"hwsim export: error: {disk / 'out' / name}: cannot write"), r["stderr"]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# ---------------------------------------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------------------------------------
def test_an_export_never_writes_through_a_link(tmp_path, monkeypatch, float_net):
    """Links planted at every file an export writes (and at a stale verify.json it removes) are replaced, their
    targets untouched; a staging folder left by a dead export is removed without following the links in it; a link
    named like a staging folder is left alone."""
    monkeypatch.setattr(bundle, "run_isolated", _fake_lava)
    victims = tmp_path / "victims"
    victims.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    for name in EXPORT_FILES:
        (victims / name).write_text("victim\n")
        (out / name).symlink_to(victims / name)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / f"{STAGING_PREFIX}{int(dead.stdout)}-abc.tmp"
    stale.mkdir()
    (stale / "model.nir").symlink_to(victims / "model.nir")
    (stale / "folder").symlink_to(victims)
    (out / f"{STAGING_PREFIX}{int(dead.stdout)}-link.tmp").symlink_to(victims)
    before = _snapshot(victims)
    summary = export(float_net, out, learning=True)
    assert _snapshot(victims) == before
    assert "verify.json" not in summary["files"] and not os.path.lexists(out / "verify.json")
    assert not stale.exists() and (out / f"{STAGING_PREFIX}{int(dead.stdout)}-link.tmp").is_symlink()
    for name in summary["files"]:
        assert (out / name).is_file() and not (out / name).is_symlink(), name
    assert load(out / "network.npz").mode == "fixed" and json.loads((out / "learning.json").read_text())
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)) == [
        f"{STAGING_PREFIX}{int(dead.stdout)}-link.tmp"]


def test_a_refused_write_of_a_format_leaves_nothing(tmp_path):
    """A value netx cannot hold (a bias off netx's fixed exponent) is refused naming model.net; nothing of the
    export is left, the netx file included (it was written first)."""
    net = from_spec("12-8-3", mode="fixed", seed=2)
    layer = net.layers[0]
    net.layers[0] = Dense(layer.weight, neuron=LoihiLIF(du=4095, dv=100, vth=10, bias_exp=2),
                          bias=np.arange(8, dtype=np.int32) - 3, weight_exp=layer.weight_exp, name=layer.name)
    with pytest.raises(NetworkError, match=r"model.net: not written: layer 0 \(dense0\)"):
        export(Network(net.input_shape, net.layers), tmp_path / "b")
    assert _snapshot(tmp_path / "b") == {}
