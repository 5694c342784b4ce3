"""``hwsim train --out`` never replaces another run's results without --force, and checkpoints carry a checksum of
their content that resume and export verify (issue 26: results overwritten without a word, a corrupted checkpoint
resumed silently)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hwsim.methods.train import content_digest, load_checkpoint, network_digest

from hwsim.cli.main import main
from hwsim.sim.network import Network, Recurrent, from_spec

TRAIN = ["train", "--rules", "sltt", "--epochs", "1", "-T", "2", "--net", "64-8-10", "--batch-size", "256",
         "--seed", "1", "--no-progress"]


def _train(out: Path, *extra: str) -> int:
    return main([*TRAIN, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    assert _train(folder / "a.pt") == 0
    return folder / "a.pt"


def _one_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_an_existing_out_file_is_not_replaced_without_force(tmp_path, trained, capsys):
    ckpt = tmp_path / "a.pt"
    ckpt.write_bytes(trained.read_bytes())
    before = ckpt.read_bytes()
    assert _train(ckpt, "--rules", "ottt_a") == 2  # another rule onto an existing checkpoint
    _one_line(capsys, f"--out {ckpt}: exists (an hwsim checkpoint)", "--resume", "--force")
    assert ckpt.read_bytes() == before and not ckpt.with_suffix(".network.npz").exists()
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert _train(notes) == 2
    _one_line(capsys, "exists (a file)")
    assert notes.read_text() == "mine"
    assert _train(notes, "--force") == 0  # the user's explicit choice
    assert load_checkpoint(notes)["config"]["rule"] == "sltt"


def test_two_checkpoint_names_sharing_one_network_file_are_refused(tmp_path, trained, capsys):
    """``a.pt`` and ``a.ckpt`` both write ``a.network.npz``: the second run may not replace the first's network."""
    for suffix in (".pt", ".network.npz"):
        (tmp_path / f"a{suffix}").write_bytes(trained.with_suffix(suffix).read_bytes())
    before = (tmp_path / "a.network.npz").read_bytes()
    assert _train(tmp_path / "a.ckpt") == 2
    _one_line(capsys, "its network file a.network.npz belongs to the checkpoint a.pt", "--force")
    assert (tmp_path / "a.network.npz").read_bytes() == before and not (tmp_path / "a.ckpt").exists()


def test_the_network_file_is_locked_with_the_checkpoint(tmp_path, capsys):
    """A run holding ``a.pt`` also holds ``a.network.npz``: a run into ``a.ckpt`` meets its lock."""
    from hwsim.safeio import OutputLock

    with OutputLock(tmp_path / "a.network.npz", folder=False):
        assert _train(tmp_path / "a.ckpt") == 1
    _one_line(capsys, "in use by PID", "a.network.npz.lock")


def test_an_orphan_network_file_from_a_killed_first_epoch_is_replaced(tmp_path, trained):
    (tmp_path / "a.network.npz").write_bytes(trained.with_suffix(".network.npz").read_bytes())
    assert _train(tmp_path / "a.pt") == 0
    assert load_checkpoint(tmp_path / "a.pt")["network_sha256"] is not None


def _corrupt_tensor_bytes(source: Path, target: Path, count: int = 40) -> None:
    """Copy the checkpoint with ``count`` bytes of every tensor record of at least ``count + 8`` bytes changed
    (weights, momentum, the generator state; the zip's CRC then wrong, which torch's reader does not check)."""
    raw = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        infos = [i for i in archive.infolist() if "/data/" in i.filename and i.file_size >= count + 8]
    for info in infos:
        name_len, extra_len = (int.from_bytes(raw[info.header_offset + at: info.header_offset + at + 2], "little")
                               for at in (26, 28))  # the local header's own lengths (torch pads its extra field)
        start = info.header_offset + 30 + name_len + extra_len
        for i in range(count):
            raw[start + 8 + i] ^= 0x5A
    target.write_bytes(bytes(raw))


def test_a_corrupted_checkpoint_is_refused_on_resume_and_export(tmp_path, trained, capsys):
    bad = tmp_path / "a.pt"
    _corrupt_tensor_bytes(trained, bad)
    (tmp_path / "a.network.npz").write_bytes(trained.with_suffix(".network.npz").read_bytes())
    assert main([*TRAIN, "--epochs", "2", "--resume", str(bad)]) == 2
    _one_line(capsys, "damaged checkpoint: its content does not match the checksum", "--force")
    assert main(["export", "--checkpoint", str(bad), "--out", str(tmp_path / "e")]) == 2
    _one_line(capsys, "does not match the checksum")
    assert not (tmp_path / "e").exists()
    damaged, good = load_checkpoint(bad, force=True), load_checkpoint(trained)  # --force: taken as it is
    weights = [next(iter(state["modules"][0].values())) for state in (damaged, good)]
    assert damaged["epoch"] == 0 and not torch.equal(*weights)  # the weights themselves were damaged


def test_a_checkpoint_without_checksums_needs_force(tmp_path, trained, capsys):
    state = torch.load(trained, weights_only=True)
    del state["content_sha256"]
    state["network_sha256"] = None
    old = tmp_path / "a.pt"
    torch.save(state, old)
    (tmp_path / "a.network.npz").write_bytes(trained.with_suffix(".network.npz").read_bytes())
    with pytest.raises(Exception, match="carries no content checksum"):
        load_checkpoint(old)
    assert main(["export", "--checkpoint", str(old), "--out", str(tmp_path / "e")]) == 2
    _one_line(capsys, "carries no content checksum", "--force")
    state["content_sha256"] = content_digest(state)  # checksummed, but naming no network
    torch.save(state, old)
    assert main(["export", "--checkpoint", str(old), "--out", str(tmp_path / "e")]) == 2
    _one_line(capsys, "names no network by its checksum", "--force")
    assert not (tmp_path / "e").exists()


def test_the_content_digest_sees_every_tensor_byte_and_field():
    state = {"a": torch.zeros(3), "b": [torch.ones(2, dtype=torch.int64), {"c": 1.5, "d": None}], "e": "x"}
    base = content_digest(state)
    assert content_digest(dict(state)) == base
    for change in (lambda s: s["a"].__setitem__(1, 1e-30), lambda s: s["b"][1].__setitem__("c", 1.25),
                   lambda s: s.__setitem__("e", "y"), lambda s: s.__setitem__("a", torch.zeros(1, 3))):
        copy = {"a": state["a"].clone(), "b": [state["b"][0].clone(), dict(state["b"][1])], "e": state["e"]}
        change(copy)
        assert content_digest(copy) != base


def test_the_network_digest_covers_recurrent_weights():
    network = from_spec("6-r4-2", seed=0)
    rec = network.layers[0]
    changed = Network(6, [Recurrent(rec.weight, rec.recurrent + np.float32(0.5), neuron=rec.neuron), network.layers[1]])
    assert network_digest(changed) != network_digest(network)


def test_a_dataset_file_too_large_is_refused_from_its_headers(tmp_path, capsys):
    """The members' headers set the size: refused in one line before anything is read."""
    import io

    path = tmp_path / "big.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, shape, dtype in (("x_train", (4000, 100, 700), "<f8"), ("x_test", (10, 100, 700), "<f8"),
                                   ("y_train", (4000,), "<i8"), ("y_test", (10,), "<i8")):
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
            archive.writestr(name + ".npy", header.getvalue() + b"\0" * 64)  # declares gigabytes, holds 64 bytes
    assert main(["train", "--rules", "sltt", "--dataset", str(path), "--net", "700-8-2", "--epochs", "1",
                 "--max-memory", "512M", "--out", str(tmp_path / "c.pt")]) == 2
    _one_line(capsys, f"--dataset {path}: would take", "over the limit of 512.0 MiB")
    assert not (tmp_path / "c.pt").exists()


def test_a_checkpoint_on_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path):
    """torch's zip writer turns a short write into RuntimeError: still one line naming the checkpoint (exit 1)."""
    import resource
    import signal
    import subprocess
    import sys

    def limit() -> None:  # a file-size limit: writes past 20 kB fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    run = subprocess.run([sys.executable, "-m", "hwsim", *TRAIN, "--net", "64-32-10", "--out", "a.pt"],
                         cwd=tmp_path, preexec_fn=limit, capture_output=True, text=True, timeout=300)
    err = run.stderr.strip()
    assert run.returncode == 1 and err.count("\n") == 0 and "Traceback" not in err, err
    assert "a.pt: cannot write" in err and "internal error" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.network.npz"]  # no checkpoint, no temporary file


def test_weights_gone_non_finite_stop_training_and_a_nan_checkpoint_is_refused(tmp_path, trained, capsys):
    """An ALIF beta of 100 drives this net's weights to NaN while the loss stays finite (found by an outside
    review): the epoch is refused in one line, nothing written. A checkpoint holding NaN weights is refused on
    resume even with --force (which only waives the checksum)."""
    out = tmp_path / "nb.pt"
    assert main(["train", "--dataset", "cue", "--net", "40-a32b100-2", "-T", "120", "--epochs", "1", "--rules",
                 "bptt", "--no-progress", "--out", str(out)]) == 1
    _one_line(capsys, "epoch 1: the weights became non-finite", "nothing of this epoch was written")
    assert not out.exists() and not out.with_suffix(".network.npz").exists()
    state = torch.load(trained, weights_only=True)
    first = next(iter(state["modules"][0]))
    state["modules"][0][first] = torch.full_like(state["modules"][0][first], float("nan"))
    state["content_sha256"] = content_digest(state)
    nan = tmp_path / "nan.pt"
    torch.save(state, nan)
    assert main([*TRAIN, "--epochs", "2", "--resume", str(nan), "--force"]) == 2
    _one_line(capsys, "damaged checkpoint: its weights hold NaN or infinite values")
