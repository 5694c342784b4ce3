"""Resource bounds, hostile names and links, quiet refusals (issue 26): every case is a real ``python -m hwsim``
process, and each asserts its exit status, one line on stderr, no traceback, no raw terminal escape on the screen,
nothing written (its working folder and the shared input folder unchanged, byte for byte) and its own peak
resident memory under 500 MB, read from ``wait4``'s rusage of that process alone.

The inputs are the attacks of the issue: small files that declare (or really unpack to) gigabytes -- network
``.npz`` and ``--input`` archives built here as real deflate bombs (hundreds of MB of zeros in under a MB) --,
study and sweep configurations whose network or point count is huge, symbolic links planted at ``--plot`` and at
an output's lock, layer names holding terminal escape codes, and bad arguments that must be refused before the
heavy imports (torch, numba, Dask, matplotlib: checked by name, not by a clock). The cases run four at a time so
that the file stays well under its 90 s budget on two cores; a sweep interrupted by Ctrl-C and a study refused
and then corrected have tests of their own.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PEAK_BYTES = 500 << 20  # peak resident memory of one case's process
CASE_SECONDS = 60
HEAVY = ("torch", "numba", "distributed", "matplotlib", "lava", "pandas", "h5py")
ESCAPE = "\x1b[31mRED\x1b]0;owned\x07\x9b2J"  # colour, window title, and a one-byte C1 CSI ("clear screen")
PROBE = """import sys
from hwsim.cli.main import main
try:
    code = main(sys.argv[2:])
finally:
    with open("/proc/self/status") as status:  # this process image's own peak (ru_maxrss would carry the parent's)
        peak_kib = next(line.split()[1] for line in status if line.startswith("VmHWM"))
    with open(sys.argv[1], "w") as handle:
        handle.write(peak_kib + "\\n" + " ".join(m for m in {heavy!r} if m in sys.modules))
sys.exit(code)
"""


# ---------------------------------------------------------------------------------------------------------
# Inputs: deflate bombs, lying headers, hostile names
# ---------------------------------------------------------------------------------------------------------
def _npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return b"\x93NUMPY\x01\x00" + header.getvalue()[8:]


def _deflated(prefix: bytes, zeros: int) -> tuple[bytes, int, int]:
    """A raw deflate stream of ``prefix`` then ``zeros`` zero bytes, its CRC-32 and its length unpacked: one
    compressed MiB of zeros repeated (each copy self-contained after a full flush), so 600 MB cost 0.2 s."""
    chunk = 1 << 20
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = [first.compress(prefix) + first.flush(zlib.Z_FULL_FLUSH)]
    block_maker = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = block_maker.compress(bytes(chunk)) + block_maker.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    zero_chunk = bytes(chunk)
    for _ in range(zeros // chunk):
        stream.append(block)
        crc = zlib.crc32(zero_chunk, crc)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    rest = bytes(zeros % chunk)
    stream.append(tail.compress(rest) + tail.flush(zlib.Z_FINISH))
    return b"".join(stream), zlib.crc32(rest, crc), len(prefix) + zeros


def _zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip archive of already deflated members ``(name, data, crc, unpacked size, method)``."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, data, crc, size, method in members:
        offset = out.tell()
        raw = name.encode()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size,
                              len(raw), 0) + raw + data)
        central.write(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                                  len(data), size, len(raw), 0, 0, 0, 0, 0, offset) + raw)
    directory = central.getvalue()
    start = out.tell()
    out.write(directory + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members),
                                      len(directory), start, 0))
    return out.getvalue()


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, zlib.crc32(data), len(data), 0


def _bomb_member(name: str, shape: tuple[int, ...], descr: str) -> tuple[str, bytes, int, int, int]:
    header = _npy_header(shape, descr)
    nbytes = int(np.prod(shape)) * np.dtype(descr).itemsize
    data, crc, size = _deflated(header, nbytes)
    return f"{name}.npy", data, crc, size, 8


def _lying_member(name: str, shape: tuple[int, ...], descr: str) -> tuple[str, bytes, int, int, int]:
    """A member whose header declares ``shape`` but which holds 16 bytes of data."""
    return _stored(f"{name}.npy", _npy_header(shape, descr) + bytes(16))


def _array_member(name: str, value: np.ndarray) -> tuple[str, bytes, int, int, int]:
    buffer = io.BytesIO()
    np.save(buffer, value)
    return _stored(f"{name}.npy", buffer.getvalue())


def _description(input_shape: list[int], layers: list[dict]) -> tuple[str, bytes, int, int, int]:
    text = json.dumps({"format": "hwsim-network", "version": 1, "mode": "float", "input_shape": input_shape,
                       "layers": layers}).encode()
    return _array_member("__network__", np.frombuffer(text, np.uint8))


def _dense(name: str = "dense0") -> dict:
    return {"kind": "dense", "name": name, "weight_exp": 0,
            "neuron": {"type": "FloatLIF", "lam": 0.1, "v_th": 1.0, "reset": "soft"}}


def _make_inputs(folder: Path) -> None:
    from hwsim.sim.network import from_spec, save

    write = lambda name, members: (folder / name).write_bytes(_zip(members))  # noqa: E731
    # network files
    write("net_bomb.npz", [_description([10000], [_dense()]), _bomb_member("layers.0.weight", (15000, 10000), "<f4")])
    write("net_members_sum.npz", [_description([1 << 14], [_dense(f"d{i}") for i in range(3)]),
                                  *[_lying_member(f"layers.{i}.weight", (1 << 14, 1 << 14), "<f4") for i in range(3)]])
    write("net_lying.npz", [_description([1 << 15], [_dense()]),
                            _lying_member("layers.0.weight", (10000, 1 << 15), "<f4")])
    write("net_deep.npz", [_description([8], [{"kind": "flatten", "name": ""}] * 20000)])
    write("net_huge_input.npz", [_description([1, 100000, 100000], [
        {"kind": "sumpool2d", "name": "p", "kernel": 2, "stride": 2, "weight": 1.0, "weight_exp": 0,
         "neuron": {"type": "FloatLIF", "lam": 0.1, "v_th": 1.0, "reset": "soft"}}])])
    write("net_name_list.npz", [_description([4], [_dense(["a"])]),
                                _array_member("layers.0.weight", np.ones((2, 4), np.float32))])
    escaped = from_spec("6-5-3")
    escaped.layers[0].name = ESCAPE
    save(escaped, folder / "net_escape.npz")
    arrays = dict(np.load(folder / "net_escape.npz"))
    arrays["layers.1.weight"] = np.full((3, 5), np.nan, np.float32)  # refused, naming the layer
    desc = json.loads(arrays["__network__"].tobytes())
    desc["layers"][1]["name"] = ESCAPE
    arrays["__network__"] = np.frombuffer(json.dumps(desc).encode(), np.uint8)
    np.savez(folder / "net_escape_bad.npz", **arrays)
    save(from_spec("10-5"), folder / "net_small.npz")
    # --input files
    write("in_bomb.npz", [_bomb_member("spikes", (2000, 1, 100000), "|u1")])
    write("in_lying.npz", [_lying_member("spikes", (1000000, 1000000, 10), "|u1")])
    write("in_events_many.npz", [_lying_member("t", (10**10,), "<i8"), _lying_member("x", (10**10,), "<i8"),
                                 _array_member("sensor_size", np.array([10]))])
    (folder / "in_lying.npy").write_bytes(_npy_header((100000, 100000, 10), "|u1") + bytes(16))
    np.savez(folder / "in_events_far.npz", t=np.array([0, 2**40]), x=np.array([0, 1]), sensor_size=np.array([10]))
    np.savez(folder / "in_events_batch.npz", t=np.array([0, 1]), x=np.array([0, 1]), b=np.array([0, 10**12]),
             sensor_size=np.array([10]))
    np.savez(folder / "in_events_nan.npz", t=np.array([0.0, np.nan]), x=np.array([0, 1]), sensor_size=np.array([10]))
    np.savez(folder / "in_events_dt.npz", t=np.array([0, 1]), x=np.array([0, 1]), sensor_size=np.array([10]),
             dt=np.array(np.inf))
    np.savez(folder / "in_sensor_long.npz", t=np.array([0]), x=np.array([0]), sensor_size=np.ones(10**5, np.int64))
    np.savez(folder / "in_many_keys.npz", **{f"k{i:04d}": np.zeros(1) for i in range(1000)})
    write("in_unread.npz", [_array_member("spikes", np.zeros((3, 1, 10), np.uint8)),
                            _lying_member("junk", (1 << 33,), "<f4")])
    # study and sweep configurations
    (folder / "study_wide.yaml").write_text("network: 64-" + "-".join(["4096"] * 120) + "-10\n")  # 615 bytes
    (folder / "study_huge.yaml").write_text("network: 64-" + "-".join(["16384"] * 400) + "-10\n")
    (folder / "study_deep.yaml").write_text("network: " + "8-" * 1_000_000 + "8\n")  # 2 MB, a million layers
    (folder / "study_activations.yaml").write_text("network: 64-4096-10\ntimesteps: 10000\nbatch_size: 65536\n")
    (folder / "study_small.yaml").write_text("network: 64-10\nepochs: 1\nexport: false\n")
    axes = {"seed": list(range(100)), "timesteps": list(range(1, 101)), "epochs": list(range(1, 51)),
            "eval_samples": list(range(1, 53)), "chips": ["loihi"], "train_rules": ["sltt"]}  # 26 M points
    (folder / "sweep_points.yaml").write_text(json.dumps({"base": {"dataset": "digits"}, "axes": axes}))
    (folder / "sweep_values.yaml").write_text(json.dumps({"axes": {"seed": list(range(50_000))}}))
    (folder / "sweep_spec.yaml").write_text(json.dumps({"axes": {"network": ["64-" + "x" * 500_000]}}))
    (folder / "sweep_network.yaml").write_text(json.dumps({"base": {"network": "64-" + "-".join(["16384"] * 400)},
                                                           "axes": {"seed": [0, 1]}}))
    (folder / "chip_escape.yaml").write_text(
        'name: mychip\nfull_name: "My \\e[31mRED\\e]0;owned\\a chip \\x9b2J"\nenergy: {source: "A. Author, Venue '
        '2020, table 1", basis: measured, all_in: false, includes_memory: false, sop_pj: 23.6}\n')
    (folder / "victim.txt").write_text("the target of a planted link: must stay as it is\n")
    _make_checkpoints(folder / "ck")


TRAIN_ARGS = ["--rules", "sltt", "--epochs", "1", "-T", "2", "--net", "64-8-10", "--batch-size", "256",
              "--no-progress"]


def _make_checkpoints(folder: Path) -> None:
    """A trained checkpoint ``a.pt`` with its network, a copy with every tensor damaged (``bad.pt``) and one
    without checksums (``old.pt``), each with its network file (issue 26: overwrites and integrity)."""
    import torch
    from hwsim.methods.train import TrainConfig, train

    from tests.test_train_outputs import _corrupt_tensor_bytes

    folder.mkdir()
    train(TrainConfig(rule="sltt", dataset="digits", epochs=1, timesteps=2, net="64-8-10", batch_size=256),
          out=folder / "a.pt", progress=False, log=lambda *_: None)
    network = (folder / "a.network.npz").read_bytes()
    _corrupt_tensor_bytes(folder / "a.pt", folder / "bad.pt")
    state = torch.load(folder / "a.pt", weights_only=True)
    del state["content_sha256"]
    torch.save(state, folder / "old.pt")
    for name in ("bad", "old"):
        (folder / f"{name}.network.npz").write_bytes(network)


# ---------------------------------------------------------------------------------------------------------
# The cases: (id, argv, exit status, fragment of the one line, options)
#   argv: {F} the shared input folder; other paths are relative to the case's own (empty) working folder
#   options: light -- refused before any heavy import; link -- a symbolic link at this name in the working folder,
#   pointing to {F}/victim.txt; lockfolder -- a folder whose .hwsim.lock is such a link; env -- extra variables
# ---------------------------------------------------------------------------------------------------------
GIB = "--max-memory"
CASES = [
    # network files: sizes from the headers, before any array is read
    ("net-deflate-bomb", ["run", "--net", "{F}/net_bomb.npz", GIB, "256M"], 2, "over the limit of 256.0 MiB", {}),
    ("net-members-sum", ["run", "--net", "{F}/net_members_sum.npz"], 2, "over the limit of 2147483648 bytes", {}),
    ("net-lying-header", ["estimate", "--net", "{F}/net_lying.npz", "--chip", "loihi", GIB, "8G"], 2, "truncated",
     {}),
    ("net-lying-header-limit", ["run", "--net", "{F}/net_lying.npz", GIB, "100M"], 2, "would take", {}),
    ("net-too-many-layers", ["run", "--net", "{F}/net_deep.npz"], 2, "20000 layers, over the limit", {}),
    ("net-huge-input", ["run", "--net", "{F}/net_huge_input.npz", "-T", "2"], 2, "over the limit", {}),
    ("net-name-not-text", ["run", "--net", "{F}/net_name_list.npz"], 2, "name must be a text", {}),
    ("net-escape-in-error", ["run", "--net", "{F}/net_escape_bad.npz"], 2, "\\x1b[31mRED", {}),
    # (--engine torch: these runs need no numba kernel, so a cold kernel cache does not slow them)
    ("net-escape-in-table", ["run", "--net", "{F}/net_escape.npz", "-T", "2", "--engine", "torch"], 0, "",
     {"stdout": "\\x1b[31mRED"}),
    ("net-escape-in-json", ["run", "--net", "{F}/net_escape.npz", "-T", "2", "--engine", "torch", "--json"], 0, "",
     {"stdout": "\\u001b[31mRED"}),
    ("chip-escape", ["chips", "show", "{F}/chip_escape.yaml"], 0, "", {"stdout": "\\e[31mRED", "light": True}),
    ("chip-escape-json", ["chips", "show", "{F}/chip_escape.yaml", "--json"], 0, "",
     {"stdout": "\\u009b2J", "light": True}),
    # --input: members read lazily, sizes from headers
    ("input-deflate-bomb", ["run", "--net", "100000-4", "--input", "{F}/in_bomb.npz", GIB, "256M"], 2,
     "over the limit of 256.0 MiB", {}),
    ("input-lying-header", ["run", "--net", "10-4", "--input", "{F}/in_lying.npz"], 2,
     "over the limit of 268435456", {}),
    ("input-lying-npy", ["estimate", "--net", "10-4", "--input", "{F}/in_lying.npy", "--chip", "loihi"], 2,
     "over the limit", {}),
    ("input-events-declared", ["run", "--net", "10-4", "--input", "{F}/in_events_many.npz", GIB, "8G"], 2,
     "would take", {}),
    ("input-events-far", ["run", "--net", "10-4", "--input", "{F}/in_events_far.npz"], 2, "over the limit", {}),
    ("input-events-batch", ["run", "--net", "10-4", "--input", "{F}/in_events_batch.npz"], 2, "over the limit", {}),
    ("input-events-nan", ["run", "--net", "10-4", "--input", "{F}/in_events_nan.npz"], 2, "finite", {}),
    ("input-events-dt", ["run", "--net", "10-4", "--input", "{F}/in_events_dt.npz"], 2, "dt must be a finite", {}),
    ("input-sensor-long", ["run", "--net", "10-4", "--input", "{F}/in_sensor_long.npz"], 2, "at most 3", {}),
    ("input-many-keys", ["run", "--net", "10-4", "--input", "{F}/in_many_keys.npz"], 2, "expected an array", {}),
    ("input-unread-member", ["run", "--net", "10-4", "--input", "{F}/in_unread.npz", "--engine", "torch", "--json"],
     0, "", {}),
    # spec strings: counted before a weight is drawn
    ("spec-wide", ["run", "--net", "64-" + "-".join(["4096"] * 120) + "-10", GIB, "1G"], 2, "would take", {}),
    ("spec-huge", ["run", "--net", "64-" + "-".join(["16384"] * 400)], 2, "over the limit", {"light": True}),
    ("spec-huge-estimate", ["estimate", "--net", "64-" + "-".join(["16384"] * 400)], 2, "over the limit", {}),
    ("spec-huge-feasibility", ["feasibility", "--net", "64-" + "-".join(["16384"] * 400)], 2, "over the limit", {}),
    ("train-net-huge", ["train", "--rules", "sltt", "--net", "64-" + "-".join(["16384"] * 400)], 2,
     "over the limit", {"light": True}),
    ("env-limit", ["run", "--net", "64-1024-1024-10"], 2, "over the limit of 1.0 MiB (HWSIM_MAX_MEMORY)",
     {"env": {"HWSIM_MAX_MEMORY": "1M"}}),
    ("env-limit-bad", ["run", "--net", "64-512-10"], 2, "HWSIM_MAX_MEMORY: expected a size",
     {"env": {"HWSIM_MAX_MEMORY": "plenty"}}),
    ("max-memory-bad", ["run", "--net", "10-5", GIB, "lots"], 2, "--max-memory", {"light": True}),
    # study and sweep configurations: the network's size and the point count from the configuration alone
    ("study-wide", ["study", "--config", "{F}/study_wide.yaml", "--out", "out", GIB, "1G"], 2, "would take",
     {"light": True}),
    ("study-huge", ["study", "--config", "{F}/study_huge.yaml", "--out", "out"], 2, "over the limit",
     {"light": True}),
    ("study-deep", ["study", "--config", "{F}/study_deep.yaml", "--out", "out"], 2, "over the limit of 10000 layers",
     {"light": True}),
    ("study-activations", ["study", "--config", "{F}/study_activations.yaml", "--out", "out"], 2, "would take",
     {"light": True}),
    ("sweep-points", ["sweep", "--config", "{F}/sweep_points.yaml", "--out", "out"], 2,
     "26000000 points", {"light": True}),
    ("sweep-values", ["sweep", "--config", "{F}/sweep_values.yaml", "--out", "out"], 2, "over the limit of 10000",
     {"light": True}),
    ("sweep-spec", ["sweep", "--config", "{F}/sweep_spec.yaml", "--out", "out"], 2, "malformed network spec",
     {"light": True}),
    ("sweep-network", ["sweep", "--config", "{F}/sweep_network.yaml", "--out", "out"], 2, "over the limit",
     {"light": True}),
    # links: never written through; a lock planted as a link is refused
    ("plot-link-estimate", ["estimate", "--net", "10-5", "--plot", "p.png"], 2, "symbolic link",
     {"link": "p.png", "light": True}),
    ("plot-link-feasibility", ["feasibility", "--net", "10-5", "--plot", "p.png"], 2, "symbolic link",
     {"link": "p.png", "light": True}),
    ("study-lock-link", ["study", "--config", "{F}/study_small.yaml", "--out", "out"], 2, "symbolic link",
     {"lockfolder": "out"}),
    ("export-lock-link", ["export", "--checkpoint", "{F}/net_small.npz", "--out", "out"], 2, "symbolic link",
     {"lockfolder": "out"}),
    # bad arguments: refused before torch, numba, Dask or matplotlib are imported
    ("train-lr-text", ["train", "--rules", "sltt", "--lr", "x"], 2, "--lr", {"light": True}),
    ("train-rule-unknown", ["train", "--rules", "hebb"], 2, "unknown rule", {"light": True}),
    ("train-option-unused", ["train", "--rules", "sltt", "--k", "3"], 2, "--k applies to sltt_k", {"light": True}),
    ("train-resume-missing", ["train", "--rules", "sltt", "--resume", "none.pt"], 2, "no such checkpoint",
     {"light": True}),
    ("train-net-malformed", ["train", "--rules", "sltt", "--net", "64-abc-10"], 2, "malformed network spec",
     {"light": True}),
    ("train-out-proc", ["train", "--rules", "sltt", "--out", "/proc/x/y.pt"], 2, "--out", {"light": True}),
    ("estimate-chip-unknown", ["estimate", "--net", "10-5", "--chip", "nochip"], 2, "unknown chip", {"light": True}),
    ("feasibility-rule-unknown", ["feasibility", "--net", "10-5", "--rules", "hebb"], 2, "unknown rule",
     {"light": True}),
    ("export-missing", ["export", "--checkpoint", "none.pt", "--out", "out"], 2, "no such checkpoint",
     {"light": True}),
    ("sweep-serial-workers", ["sweep", "--config", "{F}/sweep_points.yaml", "--out", "out", "--serial", "--workers",
                              "2"], 2, "--serial", {"light": True}),
    # train outputs and checkpoint integrity (the inputs folder must stay as it is: nothing replaced)
    ("train-onto-another-rule", ["train", *TRAIN_ARGS[2:], "--rules", "ottt_a", "--out", "{F}/ck/a.pt"], 2,
     "exists (an hwsim checkpoint)", {"light": True}),
    ("train-shares-a-network", ["train", *TRAIN_ARGS, "--out", "{F}/ck/a.ckpt"], 2, "belongs to the checkpoint a.pt",
     {"light": True}),
    ("train-out-device", ["train", *TRAIN_ARGS, "--out", "/dev/null", "--force"], 2, "a device, FIFO or socket",
     {"light": True}),
    ("train-resume-damaged", ["train", *TRAIN_ARGS, "--epochs", "2", "--resume", "{F}/ck/bad.pt", "--out", "c.pt"],
     2, "does not match the checksum", {}),
    ("export-damaged", ["export", "--checkpoint", "{F}/ck/bad.pt", "--out", "out"], 2, "does not match the checksum",
     {}),
    ("export-no-checksum", ["export", "--checkpoint", "{F}/ck/old.pt", "--out", "out"], 2,
     "carries no content checksum", {}),
]
assert len(CASES) >= 40


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: a link's target, a file's size and SHA-256, a folder as such."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            out[key] = ("link", os.readlink(path))
        elif path.is_file():
            out[key] = ("file", path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            out[key] = ("dir",)
    return out


def _run_case(case: tuple, inputs: Path, work: Path, probes: Path) -> dict:
    label, argv, _, _, options = case
    folder = work / label
    folder.mkdir()
    if "link" in options:
        (folder / options["link"]).symlink_to(inputs / "victim.txt")
    if "lockfolder" in options:
        (folder / options["lockfolder"]).mkdir()
        (folder / options["lockfolder"] / ".hwsim.lock").symlink_to(inputs / "victim.txt")
    before = _snapshot(folder)
    probe = probes / f"{label}.txt"
    argv = [a.replace("{F}", str(inputs)) for a in argv]
    env = {k: v for k, v in os.environ.items() if k != "HWSIM_MAX_MEMORY"}
    env.update({"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                "OMP_NUM_THREADS": "1",  # one thread each, four cases at a time (and no probe of the free cores)
                **options.get("env", {})})
    with open(probes / f"{label}.out", "wb") as out, open(probes / f"{label}.err", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", PROBE.format(heavy=HEAVY), str(probe), *argv], cwd=folder,
                                stdout=out, stderr=err, env=env)
        timer = threading.Timer(CASE_SECONDS, proc.kill)
        timer.start()
        start = time.perf_counter()
        _, status, usage = os.wait4(proc.pid, 0)  # this process's own rusage, not the whole test session's
        elapsed = time.perf_counter() - start
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {"code": proc.returncode, "stdout": (probes / f"{label}.out").read_text(errors="replace"),
            "stderr": (probes / f"{label}.err").read_text(errors="replace"), "seconds": elapsed,
            "peak": _peak(probe, usage), "heavy": probe.read_text().split()[1:] if probe.is_file() else None,
            "changed": before != _snapshot(folder)}


def _peak(probe: Path, usage) -> int:
    """Peak resident bytes of the case's process image: ``VmHWM`` as the probe wrote it at exit. ``wait4``'s
    ``ru_maxrss`` keeps the high-water mark of the process before ``exec`` (Linux carries it over), i.e. the test
    session's own size at the fork; it is the fallback only when the probe could not write (a killed case)."""
    if probe.is_file() and probe.read_text().split():
        return int(probe.read_text().split()[0]) * 1024
    return usage.ru_maxrss * 1024


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    inputs, work, probes = (tmp_path_factory.mktemp(name) for name in ("inputs", "work", "probes"))
    _make_inputs(inputs)
    before = _snapshot(inputs)
    with ThreadPoolExecutor(4) as pool:
        done = dict(zip([c[0] for c in CASES], pool.map(lambda c: _run_case(c, inputs, work, probes), CASES)))
    done["_inputs_unchanged"] = before == _snapshot(inputs)
    done["_inputs"] = inputs
    slow = sorted(((r["seconds"], label) for label, r in done.items() if isinstance(r, dict)), reverse=True)[:5]
    print("slowest cases:", ", ".join(f"{label} {seconds:.1f} s" for seconds, label in slow))
    return done


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bounded_and_one_line(results, case):
    label, _, expected, fragment, options = case
    r = results[label]
    lines = r["stderr"].strip().splitlines()
    assert r["code"] == expected, f"{label}: exit status {r['code']}, expected {expected}: {r['stderr'][-800:]}"
    assert "Traceback" not in r["stderr"] and "internal error" not in r["stderr"], f"{label}: {r['stderr'][-800:]}"
    if expected:
        assert len(lines) == 1, f"{label}: {len(lines)} lines on stderr: {r['stderr'][-800:]}"
        assert fragment in lines[0], f"{label}: {fragment!r} not in {lines[0]!r}"
        assert len(lines[0]) < 1200, f"{label}: a message of {len(lines[0])} characters"
    else:
        assert lines == [], f"{label}: {r['stderr'][-800:]}"
    if "stdout" in options:
        assert options["stdout"] in r["stdout"], f"{label}: {options['stdout']!r} not shown: {r['stdout'][:400]}"
    for text in (r["stdout"], r["stderr"]):
        assert not any(c in text for c in "\x1b\x07\x9b"), f"{label}: a raw terminal control reached the screen"
    assert not r["changed"], f"{label}: its working folder changed (an output was written)"
    assert r["peak"] < PEAK_BYTES, f"{label}: peak resident memory {r['peak'] / 2**20:.0f} MiB"
    if options.get("light"):
        assert r["heavy"] == [], f"{label}: refused only after importing {r['heavy']}"
        assert r["seconds"] < 30, f"{label}: {r['seconds']:.1f} s"  # (four at a time; alone: see below)


def test_no_case_touched_the_inputs_or_a_link_target(results):
    assert results["_inputs_unchanged"]


QUICK = ["net-deflate-bomb", "input-deflate-bomb", "study-wide", "sweep-points", "train-lr-text", "train-net-huge"]


def test_refusals_are_quick_when_run_alone(results, tmp_path):
    """The issue's "within a second": each refusal of a large input, alone on the machine, well within a few
    seconds of process start (interpreter start-up and imports included; the check itself is milliseconds)."""
    inputs = results["_inputs"]
    times = {}
    for label in QUICK:
        case = next(c for c in CASES if c[0] == label)
        r = _run_case((label, *case[1:]), inputs, tmp_path, tmp_path)
        assert r["code"] == case[2], r["stderr"]
        times[label] = r["seconds"]
    print("alone:", ", ".join(f"{label} {seconds:.2f} s" for label, seconds in times.items()))
    assert max(times.values()) < 5, times


# ---------------------------------------------------------------------------------------------------------
# Ctrl-C on a sweep; a study refused, then corrected on the same folder
# ---------------------------------------------------------------------------------------------------------
def test_ctrl_c_on_a_dask_sweep_is_one_line_and_leaves_no_worker(tmp_path):
    """SIGINT to the whole process group (what a terminal's Ctrl-C does) while the workers train: the workers
    ignore it (the sweep closes them), so stderr holds the sweep's own lines and ``interrupted``, nothing else."""
    config = tmp_path / "sweep.yaml"
    config.write_text(json.dumps({"base": {"dataset": "digits", "epochs": 30, "eval_samples": 20, "network": "64-32-10",
                                           "timesteps": 4, "export": False, "chips": ["loihi"],
                                           "train_rules": ["sltt"]},
                                  "axes": {"seed": [0, 1]}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "hwsim", "sweep", "--config", str(config), "--out",
                             str(tmp_path / "out"), "--workers", "2", "--no-progress"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if "Dask scheduler" in line or not line:
            break
    time.sleep(2)  # the workers are training now
    os.killpg(proc.pid, signal.SIGINT)
    try:
        rest = proc.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    err = "".join(lines) + rest
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "hwsim sweep: interrupted", err
    assert [line for line in err.strip().splitlines() if not line.startswith("sweep: ")] == \
        ["hwsim sweep: interrupted"], err
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # no process of the group is left (workers, tracker)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("processes of the sweep outlived it")


def test_a_refused_study_blocks_nothing_and_a_finished_one_names_what_differs(tmp_path):
    from hwsim.errors import StudyError
    from hwsim.study.pipeline import Study, StudyConfig

    out = tmp_path / "study"
    first = Study(StudyConfig(network="64-10", epochs=1), out, progress=False)  # refused later, at its train stage
    first.run(())  # nothing ran: the study holds its configuration and nothing else
    second = Study(StudyConfig(network="64-12-10", epochs=1), out, progress=False)
    second.run(())
    assert "64-12-10" in (out / "study.yaml").read_text()
    (out / "stages" / "train.json").write_text("{}")  # a finished stage: results of that configuration
    with pytest.raises(StudyError, match=r"keys that differ: epochs"):
        Study(StudyConfig(network="64-12-10", epochs=2), out, progress=False)
    assert "epochs: 1" in (out / "study.yaml").read_text()


def test_memory_limit_reads_the_address_space_limit():
    """The default limit follows what this process can still get: under RLIMIT_AS it is the room left there."""
    code = ("import resource; from hwsim.safeio import available_memory, memory_limit; "
            "soft = 3 << 30; resource.setrlimit(resource.RLIMIT_AS, (soft, soft)); "
            "print(available_memory(), memory_limit()[0])")
    env = {k: v for k, v in os.environ.items() if k != "HWSIM_MAX_MEMORY"}
    env["PYTHONPATH"] = str(ROOT)
    free, limit = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                          check=True).stdout.split())
    assert 0 < free < 3 << 30 and 0 < limit <= 0.8 * (3 << 30) and abs(limit - 0.8 * free) < 64 << 20
