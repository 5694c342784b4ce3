"""Every command over a table of bad inputs: exit status != 0, one line on stderr, no traceback, quickly.

The table (``CASES``, well over 60 rows) covers the spec grammar, every kind of argument, every field type of
the chip profile and the study configuration, every file format truncated or binary, and the inputs of the
reliability report (issue 15). Each row runs in-process through ``hwsim.cli.main.main`` (the imports are paid
once) with a time bound and a bound on the rise of the resident set (its peak reset before each case); a
representative subset runs again as real ``python -m hwsim.cli.main`` processes under ``setrlimit`` (address space
and CPU time), where a traceback or a memory blow-up could not hide. Hypothesis adds generated spec strings
and chip profiles.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.cli.main import main
from hwsim.sim.network import from_spec, save

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 30  # per in-process case
PEAK_BYTES = 1 << 30  # rise of the resident set during one in-process case
SUBPROCESS_ADDRESS_SPACE = 12 << 30  # RLIMIT_AS of the subprocess runs (numba and torch map a lot, use little)


# ---------------------------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------------------------
GOOD_CHIP = """name: mychip
full_name: My chip
energy: {source: "A. Author, Venue 2020, table 1", basis: measured, all_in: false, includes_memory: false,
         sop_pj: 23.6}
"""
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _network_arrays(spec: str = "20-8-4") -> dict:
    path = FILES / "_tmp.npz"
    save(from_spec(spec), path)
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files}


def _huge_member_npz(name: str) -> bytes:
    """An archive whose member ``name`` declares 2**33 float32 values (32 GiB) but holds 16 bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 33,)})
    member = b"\x93NUMPY" + b"\x01\x00" + header.getvalue()[8:] + b"\0" * 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, value in _network_arrays().items():
            if key == name:
                continue
            data = io.BytesIO()
            np.save(data, value)
            archive.writestr(f"{key}.npy", data.getvalue())
        archive.writestr(f"{name}.npy", member)
    return buffer.getvalue()


FILES: Path = Path()


def _make_files(folder: Path) -> None:
    global FILES
    FILES = folder
    save(from_spec("20-8-4"), folder / "net.npz")
    save(from_spec("20-8-4", mode="fixed"), folder / "fixed.npz")
    good = (folder / "net.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(good[: len(good) // 2])
    (folder / "empty.npz").write_bytes(b"")
    (folder / "text.npz").write_text("784-10\n")
    arrays = _network_arrays()
    (folder / "complex.npz").write_bytes(_npz_bytes(**{**arrays, "layers.0.weight": arrays["layers.0.weight"] + 1j}))
    (folder / "object.npz").write_bytes(_npz_bytes(**{**arrays, "__network__": np.array([{"a": 1}], dtype=object)}))
    (folder / "nodesc.npz").write_bytes(_npz_bytes(**{k: v for k, v in arrays.items() if k != "__network__"}))
    (folder / "badjson.npz").write_bytes(_npz_bytes(**{**arrays, "__network__": np.frombuffer(b"{[", np.uint8)}))
    (folder / "listjson.npz").write_bytes(_npz_bytes(**{**arrays, "__network__": np.frombuffer(b"[1]", np.uint8)}))
    (folder / "noweight.npz").write_bytes(_npz_bytes(**{k: v for k, v in arrays.items() if k != "layers.0.weight"}))
    (folder / "huge.npz").write_bytes(_huge_member_npz("layers.0.weight"))
    (folder / "extra.npz").write_bytes(_huge_member_npz("junk"))  # never read: loads fine (see a test below)
    binary = bytes(range(256)) * 8
    (folder / "binary.yaml").write_bytes(binary)
    (folder / "latin1.yaml").write_bytes("full_name: Caf\xe9\n".encode("latin-1"))
    (folder / "notes.txt").write_text("a text file\n")
    chips = {
        "dup.yaml": GOOD_CHIP + "full_name: Again\n",
        "inf.yaml": GOOD_CHIP.replace("23.6", ".inf"),
        "nan.yaml": GOOD_CHIP.replace("23.6", ".nan"),
        "neg.yaml": GOOD_CHIP.replace("23.6", "-1"),
        "unitstring.yaml": GOOD_CHIP.replace("23.6", "23.6 pJ"),
        "boolnum.yaml": GOOD_CHIP.replace("23.6", "true"),
        "typo.yaml": GOOD_CHIP.replace("sop_pj", "sop_pJ"),
        "nosource.yaml": GOOD_CHIP.replace('source: "A. Author, Venue 2020, table 1", ', ""),
        "badbasis.yaml": GOOD_CHIP.replace("measured", "guessed"),
        "badname.yaml": GOOD_CHIP.replace("mychip", "My Chip"),
        "listtop.yaml": "- a\n- b\n",
        "emptychip.yaml": "",
        "malformed.yaml": "name: [a\n",
        "laughs.yaml": GOOD_CHIP + LAUGHS + "summary: *i\n",
        "deep.yaml": "name: " + "[" * 5000 + "]" * 5000 + "\n",
        "intstring.yaml": GOOD_CHIP + "capacity: {source: abcd, basis: measured, cores: '128'}\n",
        "zerocores.yaml": GOOD_CHIP + "capacity: {source: abcd, basis: measured, cores: 0}\n",
        "barrier.yaml": GOOD_CHIP + "timing: {source: abcd, basis: measured, barrier_ns: [{tiles: 4, ns: 1}, "
                                    "{tiles: 2, ns: 1}]}\n",
    }
    for name, text in chips.items():
        (folder / name).write_text(text)
    studies = {
        "s_dup.yaml": "epochs: 1\nepochs: 2\n",
        "s_bool.yaml": "epochs: true\n",
        "s_float_epochs.yaml": "epochs: 2.0\n",
        "s_string_steps.yaml": "timesteps: '8'\n",
        "s_no_train_rules.yaml": "train_rules: []\n",
        "s_no_chips.yaml": "chips: []\n",
        "s_no_rules.yaml": "rules: []\n",
        "s_no_onchip_rules.yaml": "on_chip: {rules: []}\n",
        "s_inf_lr.yaml": "on_chip: {lr: .inf}\n",
        "s_nan_lr.yaml": "on_chip: {lr: .nan}\n",
        "s_neg_lr.yaml": "on_chip: {lr: -0.1}\n",
        "s_seed.yaml": "seed: -1\n",
        "s_bigseed.yaml": "seed: 99999999999\n",
        "s_unknown.yaml": "epoch: 3\n",
        "s_dataset.yaml": "dataset: mnist\n",
        "s_network.yaml": "network: 64-abc-10\n",
        "s_hugenet.yaml": "network: 100000000-10\n",
        "s_chip.yaml": "chips: [loihi9]\n",
        "s_memsteps.yaml": "memory_timesteps: []\n",
        "s_hugesteps.yaml": "timesteps: 100000000\n",
        "s_export.yaml": "export: 1\n",
        "s_list.yaml": "[1, 2]\n",
        "s_laughs.yaml": LAUGHS + "chips: *i\n",
        "s_malformed.yaml": "epochs: [1\n",
    }
    for name, text in studies.items():
        (folder / name).write_text(text)
    torch.save({"format": "hwsim-train-checkpoint"}, folder / "noconfig.pt")
    torch.save({"format": "hwsim-train-checkpoint", "version": 1, "config": {"rule": "sltt", "lr": "fast"},
                "epoch": 0, "modules": [], "optimizer": {}, "history": []}, folder / "badconfig.pt")
    torch.save({"weights": torch.ones(2)}, folder / "other.pt")
    (folder / "garbage.pt").write_bytes(b"\x00garbage")
    (folder / "a_file").write_text("x")
    # an outside review of the recurrent/ALIF features (2026-12-05): bias NaN/inf, an ALIF beta of 1e308, huge
    # recurrent weights, a folder and a non-network file where train writes its network
    biased = from_spec("20-8-4")
    save(biased, folder / "biased.npz")
    with np.load(folder / "biased.npz") as archive:
        base = {k: archive[k] for k in archive.files}
    for name, value in (("bias_nan", np.nan), ("bias_inf", np.inf)):
        (folder / f"{name}.npz").write_bytes(_npz_bytes(**{**base, "layers.0.bias": np.full(8, value, np.float32)}))
    rec = _network_arrays("20-a8-4")
    described = json.loads(bytes(rec["__network__"]).decode())
    described["layers"][0]["neuron"]["beta"] = 1e308
    (folder / "alif_huge.npz").write_bytes(_npz_bytes(**{**rec, "__network__": np.frombuffer(
        json.dumps(described).encode(), np.uint8)}))
    rec = _network_arrays("20-r8-4")
    (folder / "rec_huge.npz").write_bytes(_npz_bytes(**{**rec, "layers.0.recurrent": np.full((8, 8), 3e38,
                                                                                             np.float32)}))
    (folder / "rec_big.npz").write_bytes(_npz_bytes(**{**rec, "layers.0.recurrent": np.full((8, 8), 1e6,
                                                                                            np.float32)}))
    (folder / "dirnet.network.npz").mkdir()
    (folder / "textnet.network.npz").write_text("precious")


# Each row: (id, argv with {F} for the folder of bad files, expected exit code, fragment of the message).
CASES = [
    # the command line itself
    ("no-command", [], 2, "give a COMMAND"),
    ("unknown-command", ["fly"], 2, "invalid choice"),
    ("unknown-option", ["run", "--net", "10-5", "--speed", "3"], 2, "unrecognized arguments"),
    # spec grammar, one rule each
    ("spec-empty", ["run", "--net", ""], 2, "malformed network spec"),
    ("spec-one-token", ["run", "--net", "784"], 2, "malformed network spec"),
    ("spec-bad-input", ["run", "--net", "x-10"], 2, "malformed network spec"),
    ("spec-zero-input", ["run", "--net", "0-10"], 2, "input sizes must be >= 1"),
    ("spec-zero-layer", ["run", "--net", "784-0"], 2, "token '0'"),
    ("spec-bad-token", ["run", "--net", "784-abc-10"], 2, "malformed network spec '784-abc-10'"),
    ("spec-empty-token", ["run", "--net", "784--10"], 2, "malformed network spec"),
    ("spec-trailing-dash", ["run", "--net", "784-10-"], 2, "malformed network spec"),
    ("spec-4d-input", ["run", "--net", "1x2x3x4-10"], 2, "malformed network spec"),
    ("spec-conv-on-flat", ["run", "--net", "784-c8"], 2, "needs a CxHxW input"),
    ("spec-conv-zero", ["run", "--net", "1x8x8-c0"], 2, "sizes >= 1"),
    ("spec-conv-stride0", ["run", "--net", "1x8x8-c4k3s0"], 2, "sizes >= 1"),
    ("spec-pool-on-flat", ["run", "--net", "64-p2"], 2, "needs a CxHxW input"),
    ("spec-pool-too-big", ["run", "--net", "1x4x4-p8-10"], 2, "malformed network spec"),
    ("spec-kernel-too-big", ["run", "--net", "1x4x4-c2k9-10"], 2, "malformed network spec"),
    ("spec-huge-dense", ["run", "--net", "100000000-10"], 2, "over the limit"),
    ("spec-superscript-digit", ["run", "--net", "10-\u00b2"], 2, "is not a layer"),
    ("train-lr-huge", ["train", "--rules", "sltt", "--lr", "1e308"], 2, "expected a learning rate in (0, 1000]"),
    ("train-lr-1e38", ["train", "--rules", "sltt", "--lr", "1e38"], 2, "expected a learning rate in (0, 1000]"),
    ("chips-empty", ["estimate", "--net", "10-5", "--chips", ""], 2, "--chip: give chip names"),
    ("rules-unknown", ["feasibility", "--net", "10-5", "--rules", "sltt,nope"], 2, "unknown rule 'nope'"),
    ("rules-empty-item", ["feasibility", "--net", "10-5", "--rules", "sltt,"], 2, "give rule names"),
    ("rule-option-nan", ["train", "--rules", "ottt_a", "--alpha", "nan"], 2, "--alpha: expected a finite number"),
    ("rule-option-bad-choice", ["train", "--rules", "ottt_a", "--surrogate", "tanh"], 2, "--surrogate: expected"),
    ("rule-option-unused", ["train", "--rules", "bptt", "--budget-bytes", "100"], 2, "applies to stdl only"),
    ("spec-huge-conv", ["run", "--net", "100000x1x1-c100000k1-10"], 2, "over the limit"),
    ("spec-huge-image", ["run", "--net", "1x100000x100000-p2"], 2, "over the limit"),
    ("spec-long", ["run", "--net", "8-" * 20000 + "x"], 2, "20000 layers, over the limit of 10000 layers"),
    # numbers on the command line
    ("seed-negative", ["run", "--net", "10-5", "--seed", "-1"], 2, "--seed"),
    ("seed-huge", ["run", "--net", "10-5", "--seed", "1" * 30], 2, "--seed"),
    ("seed-text", ["estimate", "--net", "10-5", "--seed", "one"], 2, "--seed"),
    ("steps-zero", ["run", "--net", "10-5", "-T", "0"], 2, "--timesteps/-T"),
    ("steps-text", ["run", "--net", "10-5", "-T", "ten"], 2, "--timesteps/-T"),
    ("steps-huge", ["run", "--net", "10-5", "-T", "100000000000"], 2, "over the limit"),
    ("steps-times-batch", ["run", "--net", "10-5", "-T", "50000", "-B", "50000"], 2, "over the limit"),
    ("batch-negative", ["run", "--net", "10-5", "-B", "-1"], 2, "--batch/-B"),
    ("rate-above-one", ["run", "--net", "10-5", "--rate", "1.5"], 2, "--rate"),
    ("rate-nan", ["run", "--net", "10-5", "--rate", "nan"], 2, "--rate"),
    ("mode-unknown", ["run", "--net", "10-5", "--mode", "half"], 2, "--mode: unknown mode"),
    ("mode-float-of-fixed", ["run", "--net", "{F}/fixed.npz", "--mode", "float"], 2, "no float form"),
    # network files
    ("npz-missing", ["run", "--net", "{F}/none.npz"], 2, "no such network file"),
    ("npz-truncated", ["run", "--net", "{F}/truncated.npz"], 2, "not a readable hwsim network file"),
    ("npz-empty", ["run", "--net", "{F}/empty.npz"], 2, "not a readable hwsim network file"),
    ("npz-text", ["run", "--net", "{F}/text.npz"], 2, "not a readable hwsim network file"),
    ("npz-complex", ["run", "--net", "{F}/complex.npz"], 2, "complex"),
    ("npz-object", ["run", "--net", "{F}/object.npz"], 2, "not allowed"),
    ("npz-no-description", ["run", "--net", "{F}/nodesc.npz"], 2, "missing '__network__'"),
    ("npz-bad-json", ["run", "--net", "{F}/badjson.npz"], 2, "not valid JSON"),
    ("npz-json-list", ["run", "--net", "{F}/listjson.npz"], 2, "not a JSON object"),
    ("npz-no-weight", ["run", "--net", "{F}/noweight.npz"], 2, "missing array"),
    ("npz-huge-member", ["estimate", "--net", "{F}/huge.npz"], 2, "over the limit of 2147483648 bytes"),
    # chip profiles
    ("chip-unknown", ["chips", "show", "loihi9"], 2, "unknown chip 'loihi9'"),
    ("chip-no-name", ["chips", "show"], 2, "give a chip NAME"),
    ("chip-missing-file", ["chips", "show", "{F}/none.yaml"], 2, "no such chip profile"),
    ("chip-binary", ["chips", "show", "{F}/binary.yaml"], 2, "binary file"),
    ("chip-latin1", ["chips", "show", "{F}/latin1.yaml"], 2, "not UTF-8"),
    ("chip-duplicate-key", ["chips", "show", "{F}/dup.yaml"], 2, "appears twice"),
    ("chip-inf", ["chips", "show", "{F}/inf.yaml"], 2, "finite number"),
    ("chip-nan", ["chips", "show", "{F}/nan.yaml"], 2, "finite number"),
    ("chip-negative", ["chips", "show", "{F}/neg.yaml"], 2, "must be >= 0"),
    ("chip-unit-in-value", ["chips", "show", "{F}/unitstring.yaml"], 2, "write units in the field name"),
    ("chip-bool-number", ["chips", "show", "{F}/boolnum.yaml"], 2, "energy.sop_pj"),
    ("chip-typo", ["chips", "show", "{F}/typo.yaml"], 2, "did you mean 'sop_pj'"),
    ("chip-no-source", ["chips", "show", "{F}/nosource.yaml"], 2, "energy.source' is missing"),
    ("chip-bad-basis", ["chips", "show", "{F}/badbasis.yaml"], 2, "energy.basis"),
    ("chip-bad-name", ["chips", "show", "{F}/badname.yaml"], 2, "field 'name'"),
    ("chip-list", ["chips", "show", "{F}/listtop.yaml"], 2, "expected a mapping"),
    ("chip-empty", ["chips", "show", "{F}/emptychip.yaml"], 2, "expected a mapping"),
    ("chip-malformed", ["chips", "show", "{F}/malformed.yaml"], 2, "malformed YAML at line"),
    ("chip-billion-laughs", ["chips", "show", "{F}/laughs.yaml"], 2, "expands to more than"),
    ("chip-deep", ["chips", "show", "{F}/deep.yaml"], 2, "deep.yaml: "),  # "nesting depth" (libyaml) or "nested"
    ("chip-int-as-string", ["chips", "show", "{F}/intstring.yaml"], 2, "capacity.cores"),
    ("chip-zero-cores", ["chips", "show", "{F}/zerocores.yaml"], 2, "must be > 0"),
    ("chip-barrier-order", ["chips", "show", "{F}/barrier.yaml"], 2, "increasing"),
    ("estimate-chip-unknown", ["estimate", "--net", "10-5", "--chip", "nochip"], 2, "unknown chip"),
    ("estimate-rule-unknown", ["estimate", "--net", "10-5", "--rules", "hebb"], 2, "--rules"),
    ("feasibility-chips", ["feasibility", "--net", "10-5", "--chips", "loihi,nochip"], 2, "unknown chip"),
    ("feasibility-rules", ["feasibility", "--net", "10-5", "--rules", "hebb"], 2, "--rules: unknown rule"),
    # output paths
    ("plot-in-proc", ["estimate", "--net", "10-5", "--plot", "/proc/x/x.png"], 2, "--plot"),
    ("plot-parent-file", ["estimate", "--net", "10-5", "--plot", "{F}/a_file/x.png"], 2, "is a file"),
    ("plot-txt", ["estimate", "--net", "10-5", "--plot", "{F}/out.txt"], 2, "expected a file name ending"),
    ("plot-folder", ["feasibility", "--net", "10-5", "--plot", "{F}"], 2, "--plot"),
    ("plot-feasibility-proc", ["feasibility", "--net", "10-5", "--plot", "/proc/y.png"], 2, "--plot"),
    ("export-out-file", ["export", "--checkpoint", "{F}/net.npz", "--out", "{F}/a_file"], 2, "not a folder"),
    ("export-out-proc", ["export", "--checkpoint", "{F}/net.npz", "--out", "/proc/x/y"], 2, "--out"),
    ("study-out-file", ["study", "--out", "{F}/a_file"], 2, "not a folder"),
    ("study-out-proc", ["study", "--out", "/proc/x/y"], 2, "--out"),
    ("train-out-proc", ["train", "--rules", "sltt", "--out", "/proc/x/y.pt"], 2, "--out"),
    ("train-out-parent-file", ["train", "--rules", "sltt", "--out", "{F}/a_file/y.pt"], 2, "is a file"),
    # export
    ("export-missing", ["export", "--checkpoint", "{F}/none.pt", "--out", "{F}/e1"], 2, "no such checkpoint"),
    ("export-no-config", ["export", "--checkpoint", "{F}/noconfig.pt", "--out", "{F}/e2"], 2, "'config'"),
    ("export-bad-config", ["export", "--checkpoint", "{F}/badconfig.pt", "--out", "{F}/e3"], 2, "field 'lr'"),
    ("export-garbage", ["export", "--checkpoint", "{F}/garbage.pt", "--out", "{F}/e4"], 2, "not a readable"),
    ("export-other-pt", ["export", "--checkpoint", "{F}/other.pt", "--out", "{F}/e5"], 2, "not an hwsim"),
    ("export-data-unknown", ["export", "--checkpoint", "{F}/net.npz", "--out", "{F}/e6", "--dataset", "cifar"], 2,
     "--data: unknown dataset"),
    ("export-data-shape", ["export", "--checkpoint", "{F}/net.npz", "--out", "{F}/e7", "--dataset", "randman"], 2,
     "do not fit the network's input"),
    ("export-learning-fixed", ["export", "--checkpoint", "{F}/fixed.npz", "--out", "{F}/e8", "--learning"], 2,
     "--learning"),
    # study configurations
    ("study-missing", ["study", "--config", "{F}/none.yaml", "--out", "{F}/s"], 2, "no such study configuration"),
    ("study-binary", ["study", "--config", "{F}/binary.yaml", "--out", "{F}/s"], 2, "binary file"),
    ("study-latin1", ["study", "--config", "{F}/latin1.yaml", "--out", "{F}/s"], 2, "not UTF-8"),
    *[(f"study-{name[2:-5]}", ["study", "--config", "{F}/" + name, "--out", "{F}/s"], 2, fragment)
      for name, fragment in [
        ("s_dup.yaml", "appears twice"), ("s_bool.yaml", "key 'epochs'"), ("s_float_epochs.yaml", "key 'epochs'"),
        ("s_string_steps.yaml", "key 'timesteps'"), ("s_no_train_rules.yaml", "key 'train_rules'"),
        ("s_no_chips.yaml", "key 'chips'"), ("s_no_rules.yaml", "key 'rules'"),
        ("s_no_onchip_rules.yaml", "key 'on_chip.rules'"), ("s_inf_lr.yaml", "finite number"),
        ("s_nan_lr.yaml", "finite number"), ("s_neg_lr.yaml", "key 'on_chip.lr'"), ("s_seed.yaml", "key 'seed'"),
        ("s_bigseed.yaml", "key 'seed'"), ("s_unknown.yaml", "is not a study key"),
        ("s_dataset.yaml", "key 'dataset'"), ("s_network.yaml", "key 'network'"),
        ("s_hugenet.yaml", "over the limit"), ("s_chip.yaml", "unknown chip 'loihi9'"),
        ("s_memsteps.yaml", "key 'memory_timesteps'"), ("s_hugesteps.yaml", "key 'timesteps'"),
        ("s_export.yaml", "key 'export'"), ("s_list.yaml", "expected a mapping"),
        ("s_laughs.yaml", "expands to more than"), ("s_malformed.yaml", "malformed YAML")]],
    # train
    ("train-rule", ["train", "--rules", "hebb"], 2, "--rules: unknown rule"),
    # a rule option the rule does not use would be ignored, and the run taken for another rule's
    ("train-k-not-sltt-k", ["train", "--rules", "sltt", "--k", "3"], 2, "--k applies to sltt_k only"),
    ("train-window-not-ttl", ["train", "--rules", "bptt", "--window", "3"], 2, "--window applies to ttl_bptt"),
    ("train-budget-abbrev", ["train", "--rules", "sltt", "--bud", "100"], 2, "--budget-bytes applies to stdl"),
    ("feasibility-window-longer-than-t", ["feasibility", "--net", "8-4", "--window", "20", "-T", "8", "--rules",
                                          "ttl_bptt"], 2, "window is longer than T=8"),
    ("feasibility-window-unused", ["feasibility", "--net", "8-4", "--window", "3", "--rules", "sltt"], 2,
     "--window applies to ttl_bptt"),
    ("estimate-window-unused", ["estimate", "--net", "8-4", "--rules", "sltt", "--window", "3"], 2,
     "--window applies to ttl_bptt"),
    ("feasibility-k-larger-than-t", ["feasibility", "--net", "8-4", "--rules", "sltt_k", "--k", "9", "-T", "8"], 2,
     "K=9 is larger than T=8"),
    ("estimate-k-unused", ["estimate", "--net", "8-4", "--rules", "bptt", "--k", "3"], 2, "--k applies to sltt_k"),
    ("train-dataset", ["train", "--rules", "sltt", "--dataset", "cifar"], 2, "--dataset: unknown dataset"),
    ("train-lr-negative", ["train", "--rules", "sltt", "--lr", "-1"], 2, "--lr"),
    ("train-lr-nan", ["train", "--rules", "sltt", "--lr", "nan"], 2, "--lr"),
    ("train-lr-inf", ["train", "--rules", "sltt", "--lr", "inf"], 2, "--lr"),
    ("train-seed", ["train", "--rules", "sltt", "--seed", "-1"], 2, "--seed"),
    ("train-device", ["train", "--rules", "sltt", "--device", "tpu"], 2, "--device"),
    ("train-epochs", ["train", "--rules", "sltt", "--epochs", "0"], 2, "--epochs"),
    ("train-resume-missing", ["train", "--rules", "sltt", "--resume", "{F}/none.pt"], 2, "no such checkpoint"),
    ("train-resume-no-config", ["train", "--rules", "sltt", "--resume", "{F}/noconfig.pt"], 2, "'config'"),
    ("train-resume-garbage", ["train", "--rules", "sltt", "--resume", "{F}/garbage.pt"], 2, "not a readable"),
    ("train-net-mismatch", ["train", "--rules", "sltt", "--net", "60-10", "--epochs", "1"], 2, "does not match"),
    ("run-bias-nan", ["run", "--net", "{F}/bias_nan.npz", "-T", "4"], 2, "bias must be finite"),
    ("run-bias-inf-fixed", ["run", "--net", "{F}/bias_inf.npz", "-T", "4", "--mode", "fixed"], 2,
     "bias must be finite"),
    ("run-alif-beta-huge", ["run", "--net", "{F}/alif_huge.npz", "-T", "4"], 2, "beta must be a number in 0..10000"),
    ("run-recurrent-huge", ["run", "--net", "{F}/rec_huge.npz", "-T", "4"], 2, "at most 1e+30 in magnitude"),
    ("export-recurrent-big", ["export", "--checkpoint", "{F}/rec_big.npz", "--out", "{F}/e_big"], 2,
     "over 127 times its threshold"),
    ("spec-tau-a-inf", ["run", "--net", "40-a8t" + "9" * 400 + "-2", "--mode", "float", "-T", "2"], 2,
     "t must be a finite number of steps > 0"),
    ("train-out-device", ["train", "--rules", "sltt", "--out", "/dev/null", "--force"], 2,
     "is a device, FIFO or socket, not a file"),
    ("train-network-folder", ["train", "--rules", "sltt", "--out", "{F}/dirnet.pt", "--force"], 2,
     "dirnet.network.npz: exists and is a folder"),
    ("train-network-not-ours", ["train", "--rules", "sltt", "--out", "{F}/textnet.pt"], 2,
     "is not an hwsim network file"),
    ("train-cue-huge-t", ["train", "--rules", "eprop", "--dataset", "cue", "--net", "40-r8-2", "-T", "100000000"], 2,
     "--dataset cue at T=100000000: would take"),
    ("export-t-without-data", ["export", "--checkpoint", "{F}/net.npz", "--out", "{F}/e_t", "-T", "100000000"], 2,
     "names no data set, so give --data NAME"),
    ("train-digits-t-over-limit", ["train", "--rules", "sltt", "-T", "3000", "--max-memory", "20M"], 2,
     "over the limit of 20.0 MiB"),
]
assert len(CASES) >= 60

# Run again as real processes (a traceback printed by the interpreter itself, or a blow-up, shows here).
SUBPROCESS = ["steps-times-batch", "npz-huge-member", "chip-billion-laughs", "study-laughs", "plot-in-proc",
              "train-lr-nan", "export-no-config", "export-data-shape"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    _make_files(folder)
    return folder


def _argv(argv: list[str], folder: Path) -> list[str]:
    return [a.replace("{F}", str(folder)) for a in argv]


def _check(code: int, err: str, expected: int, fragment: str, label: str) -> None:
    lines = err.strip().splitlines()
    assert code == expected, f"{label}: exit status {code}, expected {expected}; stderr: {err[-800:]}"
    assert len(lines) == 1, f"{label}: {len(lines)} lines on stderr: {err[-800:]}"
    assert "Traceback" not in err and "internal error" not in err, f"{label}: {err[-800:]}"
    assert fragment in lines[0], f"{label}: {fragment!r} not in {lines[0]!r}"
    assert len(lines[0]) < 1200, f"{label}: message of {len(lines[0])} characters"


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident set (VmHWM), Linux only."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _run_in_process(argv: list[str], capsys) -> tuple[int, str, float, int]:
    """Exit code, stderr, seconds, and how far the resident set rose above its start during the run (the
    peak is reset before each case on Linux; elsewhere the process's lifetime peak only)."""
    reset = _reset_peak_rss()
    before = _status_kib("VmRSS") if reset else None
    if before is None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    elapsed = time.perf_counter() - start
    peak = (_status_kib("VmHWM") if reset else None) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return code, capsys.readouterr().err, elapsed, max(peak - before, 0) * 1024


@pytest.mark.parametrize("label,argv,expected,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_in_process(files, capsys, label, argv, expected, fragment):
    code, err, elapsed, peak = _run_in_process(_argv(argv, files), capsys)
    _check(code, err, expected, fragment, label)
    assert elapsed < SECONDS, f"{label}: took {elapsed:.1f} s"
    assert peak < PEAK_BYTES, f"{label}: resident memory rose by {peak / 2**20:.0f} MiB"


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SUBPROCESS_ADDRESS_SPACE, SUBPROCESS_ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))


@pytest.mark.parametrize("label", SUBPROCESS)
def test_bad_input_in_a_real_process(files, label):
    _, argv, expected, fragment = next(c for c in CASES if c[0] == label)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hwsim", *_argv(argv, files)], capture_output=True, text=True,
                          timeout=90, preexec_fn=_limits, env=env, cwd=files)
    _check(proc.returncode, proc.stderr, expected, fragment, label)
    assert time.perf_counter() - start < 60


@pytest.mark.skipif(not _reset_peak_rss(), reason="needs Linux /proc/self/clear_refs")
def test_the_memory_bound_sees_a_blow_up(monkeypatch, capsys):
    """The in-process memory measure is not blind: a command that touches 300 MB is seen doing so."""
    import hwsim.cli.main

    def greedy(argv):
        np.ones(300 << 20, np.uint8)
        return 2

    monkeypatch.setattr(hwsim.cli.main, "main", greedy)
    monkeypatch.setitem(globals(), "main", greedy)
    _, _, _, peak = _run_in_process([], capsys)
    assert peak > 250 << 20


def test_unexpected_npz_members_are_never_read(files):
    """The archive declares a 32 GiB member beside the network; only the expected members are read."""
    from hwsim.sim.network import load

    network = load(files / "extra.npz")
    assert network.input_shape == (20,)


def test_yaml_numbers_without_a_dot_are_numbers(tmp_path):
    from hwsim import chips

    path = tmp_path / "e.yaml"
    path.write_text(GOOD_CHIP.replace("23.6", "5e1"))
    assert chips.load(path).energy.sop_pj == 50.0


# ---------------------------------------------------------------------------------------------------------
# Generated inputs
# ---------------------------------------------------------------------------------------------------------
_NUM = st.one_of(st.integers(0, 12).map(str), st.sampled_from(["99999999", "007", "", "1e3", "-1"]))
_TOKEN = st.one_of(
    _NUM,
    st.builds(lambda o, k, s, p: f"c{o}" + (f"k{k}" if k else "") + (f"s{s}" if s else "") + (f"p{p}" if p else ""),
              _NUM, _NUM, st.sampled_from(["", "1", "2", "0"]), st.sampled_from(["", "0", "1", "9"])),
    st.builds(lambda k, s: f"p{k}" + (f"s{s}" if s else ""), _NUM, st.sampled_from(["", "1", "2", "0"])),
    st.sampled_from(["f", "F", " 4", "x", "c", "p", "10x", "1x8x8"]),
    st.text(alphabet="0123456789xcpksf- ", max_size=6),
)
_INPUT = st.one_of(_NUM, st.builds(lambda c, h, w: f"{c}x{h}x{w}", _NUM, _NUM, _NUM))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=st.builds(lambda first, rest: "-".join([first, *rest]), _INPUT, st.lists(_TOKEN, max_size=4)))
def test_generated_spec_strings(spec, capsys):
    code, err, elapsed, peak = _run_in_process(["run", "--net", spec, "-T", "2", "--json"], capsys)
    if code == 0:
        assert err.strip() == ""
        return
    _check(code, err, 2, "", f"spec {spec!r}")
    assert elapsed < SECONDS and peak < PEAK_BYTES


_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=12), st.lists(st.integers(0, 3), max_size=3),
                   st.dictionaries(st.sampled_from(["source", "basis", "tiles", "ns", "x"]), st.integers(0, 9),
                                   max_size=3))
_GROUP_FIELDS = {"energy": ["source", "basis", "all_in", "includes_memory", "sop_pj", "hop_pj", "note"],
                 "capacity": ["source", "basis", "cores", "neurons_per_core"],
                 "timing": ["source", "basis", "sop_ns", "barrier_ns"],
                 "learning": ["source", "basis", "on_chip_learning", "rule"]}
_GROUP = st.sampled_from(sorted(_GROUP_FIELDS)).flatmap(
    lambda g: st.tuples(st.just(g), st.dictionaries(st.sampled_from(_GROUP_FIELDS[g] + ["bogus"]), _VALUE,
                                                    max_size=6)))
_COUNTER = iter(range(10**9))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(top=st.dictionaries(st.sampled_from(["name", "full_name", "kind", "summary", "technology", "extra"]), _VALUE,
                           max_size=5),
       groups=st.lists(_GROUP, max_size=3), mangle=st.sampled_from(["", "cut", "dup", "tab"]))
def test_generated_chip_profiles(top, groups, mangle, tmp_path_factory, capsys):
    data = {**top, **dict(groups)}
    text = yaml.safe_dump(data, allow_unicode=True)
    if mangle == "cut":
        text = text[: len(text) // 2]
    elif mangle == "dup" and data:
        text += text.splitlines()[0] + "\n"
    elif mangle == "tab":
        text = "\t" + text
    path = tmp_path_factory.getbasetemp() / f"gen{next(_COUNTER)}.yaml"
    path.write_text(text)
    code, err, _, _ = _run_in_process(["chips", "show", str(path), "--json"], capsys)
    if code == 0:
        assert err.strip() == ""
        return
    _check(code, err, 2, str(path), f"profile {text!r}")


def test_table_covers_every_command():
    commands = {argv[0] for _, argv, _, _ in CASES if argv}
    assert commands >= {"run", "chips", "estimate", "feasibility", "export", "study", "train"}
    json.dumps(CASES)  # the table is plain data
