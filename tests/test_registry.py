"""The rule registry and what is generated from it; the command line only formats what the Python API returns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim import chips
from hwsim.cli.main import build_parser, main
from hwsim.learning import registry
from hwsim.learning.registry import Needs, RegistryError, Rule, RuleOptions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy_rule():
    """A rule added through the registry alone (an on-chip form borrowed from SLTT's kernel family)."""
    registry.register(Rule("toy", "Toy rule", "nobody, 2026", "hwsim.methods.sltt:build",
                           Needs(("third_factor",)), "online", ("k",), color="#123456"))
    yield "toy"
    registry.unregister("toy")


def test_toy_rule_appears_everywhere_rules_are_listed(toy_rule, capsys):
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "toy" in help_text
    assert "toy" in registry.parse_rules("all", on_chip=True)
    from hwsim.study.palette import rule_color
    from hwsim.study.pipeline import StudyConfig

    config = StudyConfig.model_validate({"rules": ["toy", "sltt"], "on_chip": {"rules": ["toy"]}})
    assert config.rules == ["toy", "sltt"] and rule_color("toy") == "#123456"
    assert "toy" in StudyConfig().rules  # the study's default analyses every rule with an on-chip form
    assert main(["feasibility", "--net", "16-8-4", "--chip", "loihi", "-T", "4", "--rules", "toy", "--json"]) == 0
    verdicts = json.loads(capsys.readouterr().out)
    assert [v["rule"] for v in verdicts] == ["toy"] and verdicts[0]["verdict"] == "feasible"


def test_each_rule_name_is_written_in_one_registry_entry():
    """Rule names are not hand-listed through the package: outside the registry, a quoted rule name may appear
    only in that rule's own modules (methods/<rule>.py, its kernel) and the learner's kernel dispatch."""
    own = {"bptt": ["methods/bptt.py"], "sltt": ["methods/sltt.py"], "sltt_k": ["methods/sltt.py"],
           "ottt_a": ["methods/ottt.py"], "ottt_o": ["methods/ottt.py"], "ttl_bptt": ["methods/ttl_bptt.py"],
           "stdl": ["methods/stdl.py", "hwsim/learning/stdl_plan.py"], "revsnn": ["methods/revsnn.py"],
           # e-prop: its modules, and the learner dispatch on the kernel kind "eprop" (feasibility's learning counts)
           "eprop": ["methods/eprop.py", "hwsim/learning/eprop.py", "hwsim/learning/kernels/eprop.py",
                     "hwsim/learning/feasibility.py", "hwsim/study/pipeline.py"]}
    allowed_everywhere = {"hwsim/learning/registry.py"}
    found = []
    for folder in ("hwsim", "methods", "chips"):
        for path in (ROOT / folder).rglob("*.py"):
            rel = str(path.relative_to(ROOT))
            text = path.read_text()
            for name, files in own.items():
                if rel in allowed_everywhere or rel in files:
                    continue
                if f'"{name}"' in text or f"'{name}'" in text:
                    found.append(f"{rel}: {name}")
    assert found == [], "rule names hand-listed outside the registry: " + ", ".join(found)


def test_option_values_are_checked_in_one_line():
    with pytest.raises(RegistryError, match=r"--k: expected an integer in 1..100000, got 0"):
        RuleOptions.build(["sltt_k"], {"k": 0}, where="flag")
    with pytest.raises(RegistryError, match=r"--surrogate: expected one of triangle, sigmoid, rectangle"):
        RuleOptions.build(["ottt_a"], {"surrogate": "tanh"}, where="flag")
    with pytest.raises(RegistryError, match=r"--window applies to ttl_bptt only; sltt does not use it"):
        RuleOptions.build(["sltt"], {"window": 3}, where="flag")
    with pytest.raises(RegistryError, match=r"K=9 is larger than T=4"):
        RuleOptions.build(["sltt_k"], {"k": 9}, where="flag", timesteps=4)
    with pytest.raises(RegistryError, match=r"alpha: expected a finite number"):
        RuleOptions.build(["sltt"], {"alpha": "nan"}, where="key")
    options = RuleOptions.build(["ottt_a"], {"tau": "2", "surrogate": "sigmoid", "alpha": 4}, where="flag")
    assert (options.tau, options.surrogate, options.alpha) == (2.0, "sigmoid", 4.0)
    assert options.of("ottt_a") == {"surrogate": "sigmoid", "alpha": 4.0, "tau": 2.0}
    assert RuleOptions().of("sltt_k", timesteps=1) == {"k": 1}


@pytest.mark.parametrize("argv, message", [
    (["feasibility", "--net", "16-4", "--rules", "sltt", "--k", "3"], "--k applies to sltt_k only"),
    (["estimate", "--net", "16-4", "--k", "3"], "rule options need --rules"),
    (["estimate", "--net", "16-4", "--rules", "sltt", "--mode", "fixed"], "--mode fixed: estimate --rules"),
    (["estimate", "--net", "16-4", "--rules", "revsnn"], "revsnn has no on-chip form"),
    (["train", "--rules", "sltt,bptt"], "train takes one rule per run"),
    (["feasibility", "--net", "16-4", "--rules", "sltt_k", "--k", "9", "-T", "4"], "K=9 is larger than T=4"),
])
def test_rule_flags_refused_in_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_old_spellings_work_with_a_note(capsys):
    assert main(["feasibility", "--net", "16-8-4", "--chip", "loihi", "-T", "4", "--rule", "sltt", "--json"]) == 0
    captured = capsys.readouterr()
    assert "--rule is deprecated; use --rules" in captured.err and json.loads(captured.out)[0]["rule"] == "sltt"
    assert main(["run", "--net", "16-4", "-T", "3", "--batch", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert "--batch is deprecated; use --batch-size" in captured.err and json.loads(captured.out)["batch"] == 2


def test_feasibility_cli_prints_what_the_api_returns(capsys):
    from hwsim.learning.assess import judge
    from hwsim.records import plain
    from hwsim.sim.network import from_spec

    argv = ["feasibility", "--net", "16-12-4", "--chip", "loihi,gpu_a100", "-T", "5", "--rules", "sltt_k,ttl_bptt",
            "--k", "3", "--window", "2", "--seed", "4", "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    options = RuleOptions.build(["sltt_k", "ttl_bptt"], {"k": 3, "window": 2})
    api = judge(from_spec("16-12-4", seed=4), [chips.load("loihi"), chips.load("gpu_a100")], ["sltt_k", "ttl_bptt"],
                5, options, seed=4)
    assert printed == plain(api.to_dict())
    assert printed[0]["rule_options"] == {"k": 3} and printed[2]["rule_options"]["window"] == 2


def test_estimate_rules_cli_prints_what_the_api_returns(capsys):
    from hwsim.learning.assess import price_training
    from hwsim.records import plain
    from hwsim.sim.network import from_spec

    assert main(["estimate", "--net", "16-12-4", "--chip", "loihi,odin", "-T", "5", "--rules", "sltt",
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    _, found = price_training(from_spec("16-12-4", seed=0), [chips.load("loihi"), chips.load("odin")], "sltt", 5)
    assert printed["chips"] == plain([r.to_dict() for r in found])
    odin = printed["chips"][1]
    assert odin["verdict"].startswith("infeasible") and odin["energy_j"] is None
    assert odin["energy_text"].startswith("not priced: odin cannot run sltt")


def test_equal_energies_share_a_rank():
    from hwsim.learning.feasibility import Verdict, rank

    def v(chip, energy):
        return Verdict(chip, "sltt", "feasible", 0, {}, None, energy_per_sample_j=energy)

    found = [v("a", 0.305), v("b", 0.3051), v("c", 0.2), v("d", 0.5)]
    rank(found)
    assert [x.rank for x in found] == [2, 2, 1, 4]
    assert "tied with b/sltt" in found[0].rank_note


def test_options_table_in_the_docs_is_the_registry_s():
    assert registry.options_table() in (ROOT / "docs" / "cli.md").read_text()


def test_files_are_written_with_the_user_s_umask(tmp_path):
    code = ("import os, sys; os.umask(int(sys.argv[2], 8)); from hwsim.safeio import atomic_write; "
            "atomic_write(sys.argv[1], 'x'); print(oct(os.stat(sys.argv[1]).st_mode & 0o777))")
    for umask, mode in (("022", "0o644"), ("077", "0o600")):
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / f"f{umask}"), umask], capture_output=True,
                             text=True, check=True).stdout.strip()
        assert out == mode


def test_a_second_checkout_on_the_path_is_refused(tmp_path):
    """hwsim/ of another tree on PYTHONPATH with chips/ and methods/ from the installed one: refused in one line."""
    other = tmp_path / "other"
    shutil.copytree(ROOT / "hwsim", other / "hwsim", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(other)}
    proc = subprocess.run([sys.executable, "-c", "import hwsim.chips"], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    if proc.returncode == 0:  # hwsim.chips is not mapped from this checkout (not an editable install): nothing mixes
        pytest.skip("hwsim is not installed editable from this checkout")
    assert "two copies of hwsim are mixed" in proc.stderr


def test_estimate_of_every_chip_holds_no_zero_for_unknown(capsys):
    """``estimate --chip all --json`` (inference and on-chip training): every energy, latency and power field is a
    number, or None where the chip publishes nothing -- never 0 (tests/unknowns.py)."""
    from tests.unknowns import zeros_for_unknown

    for extra in ([], ["--rules", "sltt"]):
        assert main(["estimate", "--net", "16-12-4", "-T", "5", "--chip", "all", "--json", *extra]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert zeros_for_unknown(printed) == [], extra
        static = {r["chip"]: r["energy_static_j"] for r in printed["chips"]}
        assert static["odin"] is None and static["loihi"] > 0  # ODIN publishes no static power


def test_the_walker_finds_a_zero_for_unknown():
    from tests.unknowns import zeros_for_unknown

    record = {"chips": [{"energy_static_j": 0.0, "energy_by_action_j": {"sop": 0.0}, "latency_s": None}]}
    assert zeros_for_unknown(record) == ["chips[0].energy_static_j=0"]
