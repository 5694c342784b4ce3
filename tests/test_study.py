"""The main job: a tiny study writes valid figures, every report number is in results.json, it resumes."""

import json
import re

import pytest

from hwsim.cli.main import main
from hwsim.study.pipeline import STAGES, Study, StudyError, load_config

TINY = """
epochs: 1
eval_samples: 40
chips: [loihi, spinnaker2, odin]
rules: [bptt, sltt, ottt_o]
memory_timesteps: [2, 4]
on_chip: {rules: [sltt], samples: 10}
"""
FIGURES = ("energy_per_chip.png", "memory_vs_T.png", "feasibility.png", "spike_raster.png",
           "quantization_accuracy.png", "training_curves.png", "accuracy_vs_memory.png", "layer_spike_rates.png",
           "on_chip_curve.png", "energy_vs_latency.png", "energy_sweeps.png")
NEW_FIGURES = FIGURES[4:]  # drawn by hwsim.study.study_figures; their data is in results.json under "figures"


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    config = folder / "tiny.yaml"
    config.write_text(TINY)
    assert main(["study", "--config", str(config), "--out", str(folder / "out"), "--no-progress"]) == 0
    return folder


def _shown(key: str, value: float) -> set[float]:
    """How the report shows a record's value: joules as µJ (3 or 2 significant figures), seconds as ms, bytes as
    KiB (one decimal); results.json keeps the records' own units."""
    if key.endswith("_j"):
        return {float(f"{value * 1e6:.3g}"), float(f"{value * 1e6:.2g}")}
    if key.endswith("_s"):
        return {float(f"{value * 1e3:.3g}")}
    if key.endswith("_bytes"):
        return {round(value / 1024, 1)}
    return set()


def _numbers(value) -> set[float]:
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            found |= _numbers(v) | _numbers(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                found |= _shown(str(k), float(v))
    elif isinstance(value, list):
        for v in value:
            found |= _numbers(v)
    elif isinstance(value, bool):
        pass
    elif isinstance(value, (int, float)):
        found.add(float(value))
    elif isinstance(value, str):
        found |= {float(m) for m in re.findall(r"\d+(?:\.\d+)?", value)}
    return found


@pytest.mark.lava
def test_study_results_hold_no_zero_for_unknown(study_dir):
    from tests.unknowns import zeros_for_unknown

    results = json.loads((study_dir / "out" / "results.json").read_text())
    assert zeros_for_unknown(results) == []
    assert results["costs"]["chips"]["odin"]["energy_static_j"] is None  # unpublished: None, never 0


def test_study_writes_figures_report_and_json(study_dir):
    out = study_dir / "out"
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    known = _numbers(results)
    text = re.sub(r"`[^`]*`", " ", report)  # code spans hold names, not figures
    text = re.sub(r"\([^)]*\.png\)", " ", text)  # image file names
    shown = [float(m) for m in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text)]
    assert len(shown) > 40
    missing = sorted({n for n in shown if n not in known})
    assert not missing, f"numbers in report.md that results.json does not hold: {missing}"
    assert results["export"]["verified_equal"] is True
    assert results["memory"]["activation_kib"]["bptt"]["4"] > results["memory"]["activation_kib"]["bptt"]["2"]
    assert results["memory"]["activation_kib"]["sltt"]["4"] == results["memory"]["activation_kib"]["sltt"]["2"]


@pytest.mark.lava
def test_rerun_resumes_without_redoing_finished_stages(study_dir, capsys):
    out = study_dir / "out"
    stages = {s: (out / "stages" / f"{s}.json").stat().st_mtime_ns for s in STAGES}
    (out / "stages" / "report.json").unlink()
    (out / "report.md").unlink()
    config = load_config(study_dir / "tiny.yaml")
    logs = []
    Study(config, out, progress=False, log=logs.append).run()
    assert [line for line in logs if "done before, kept" in line] == [f"[{s}] done before, kept" for s in STAGES[:-1]]
    for stage in STAGES[:-1]:
        assert (out / "stages" / f"{stage}.json").stat().st_mtime_ns == stages[stage]
    assert (out / "report.md").is_file()


def test_interrupted_stage_leaves_the_finished_ones(tmp_path, monkeypatch):
    config = load_config(None).model_copy(update={"epochs": 1, "eval_samples": 20, "chips": ["odin"],
                                                  "rules": ["sltt"], "memory_timesteps": [2], "export": False})
    config.on_chip.samples = 5

    def boom(self, results):
        raise KeyboardInterrupt

    monkeypatch.setattr(Study, "stage_costs", boom)
    with pytest.raises(KeyboardInterrupt):
        Study(config, tmp_path, progress=False, log=lambda *_: None).run()
    done = sorted(p.stem for p in (tmp_path / "stages").glob("*.json"))
    assert done == sorted(["train", "simulate", "memory", "on_chip"])
    monkeypatch.undo()
    logs = []
    results = Study(config, tmp_path, progress=False, log=logs.append).run()
    assert "[train] done before, kept" in logs and "[costs] running" in logs
    assert results["costs"]["chips"]["odin"]["fits"] in (True, False)


@pytest.mark.parametrize("text,fragment", [
    ("epoch: 3\n", "key 'epoch' is not a study key"),
    ("timesteps: 0\n", "key 'timesteps'"),
    ("rules: [sltt, hebb]\n", "key 'rules': unknown rule 'hebb'"),
    ("network: 64-abc-10\n", "key 'network'"),
    ("chips: [loihi9]\n", "unknown chip 'loihi9'"),
    ("on_chip: {rules: [sltt], speed: 3}\n", "key 'on_chip.speed' is not a study key"),
    ("[1, 2\n", "malformed YAML"),
])
def test_invalid_configs_name_the_key(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(StudyError) as err:
        load_config(path)
    assert fragment in str(err.value) and "bad.yaml" in str(err.value)


def test_another_config_in_the_same_folder_is_refused(tmp_path):
    Study(load_config(None), tmp_path, progress=False)
    other = load_config(None).model_copy(update={"epochs": 9})
    Study(other, tmp_path, progress=False)  # no result yet: the corrected config takes the folder over
    (tmp_path / "stages" / "train.json").write_text("{}")  # a stage result now holds it
    with pytest.raises(StudyError, match="another configuration"):
        Study(load_config(None), tmp_path, progress=False)


def test_help_of_every_command_states_units(capsys):
    for command in ("run", "estimate", "chips", "train", "feasibility", "export", "study"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert len(text) > 200, command
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    for command in ("run", "estimate", "chips", "train", "feasibility", "export", "study"):
        assert command in top


def _ink(path) -> tuple[float, int]:
    """Share of non-white pixels and number of distinct colours of a PNG."""
    import matplotlib.image as mpimg
    import numpy as np

    rgb = (mpimg.imread(path)[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    return float((rgb.min(axis=1) < 240).mean()), len(np.unique(rgb, axis=0))


@pytest.mark.lava
def test_study_figures_have_content(study_dir):
    out = study_dir / "out"
    for name in FIGURES:
        ink, colours = _ink(out / name)
        assert ink > 0.02 and colours > 8, (name, ink, colours)  # more than axes and text on white
    results = json.loads((out / "results.json").read_text())
    made = results["figures"]
    assert set(NEW_FIGURES) <= set(made)
    report = (out / "report.md").read_text()
    assert all(f"({name})" in report for name in FIGURES)
    assert made["training_curves.png"]["epochs"] == {"sltt": 1, "bptt": 1}
    assert set(made["accuracy_vs_memory.png"]["pareto_front"]) <= {"sltt", "bptt"}
    rates = made["layer_spike_rates.png"]["rates"]
    assert set(rates) == {"float", "fixed"} and all(0 < r < 1 for m in rates.values() for r in m.values())
    curve = made["on_chip_curve.png"]["curves"]["sltt"]
    assert curve[0][0] == 0 and curve[-1][0] == 10 and len(curve) > 2
    assert curve[0][1] == results["on_chip"]["rules"]["sltt"]["before_percent"]
    q = made["quantization_accuracy.png"]  # the same samples and networks as the simulate stage
    assert (q["float_percent"], q["fixed_percent"]) == (results["simulate"]["quantized_float_percent"],
                                                       results["simulate"]["quantized_fixed_percent"])
    sweeps = made["energy_sweeps.png"]
    for chip in ("loihi", "spinnaker2", "odin"):
        by_t = [e for _, e in sweeps["by_timesteps"][chip]]
        by_rate = [e for _, e in sweeps["by_rate"][chip]]
        assert len(by_t) >= 3 and by_t == sorted(by_t) and by_rate == sorted(by_rate)  # more work, more energy


def test_report_says_whether_stdls_budget_binds():
    """The default study network is deep enough for STDL's default budget to bind, and the report says so."""
    import json

    from hwsim.study.pipeline import StudyConfig
    from hwsim.study.report import _stdl_lines

    config = StudyConfig()
    plan = {"subnetworks": [["dense0"], ["dense1"], ["dense2"]], "auxiliary": [["classifier"], ["dense2"]],
            "auxiliary_training_bytes": [40864, 43264], "budget_bytes": config.options.budget_bytes, "batch": 32}
    text = _stdl_lines(config, json.loads(json.dumps(plan)))[0]
    assert config.network == "64-128-128-10" and "binds:" in text and "would need 348160 B" in text
