"""The cue-accumulation study (examples/cue_accumulation.yaml, scaled down): a recurrent ALIF net trained with e-prop
and BPTT in torch, simulated in hwsim, fine-tuned on chip with e-prop, judged and priced on ReckOn, Loihi and
SpiNNaker 2, its export refused with the reason; a recurrent LIF net through the same stages into a Lava export
verified spike for spike. Every stage runs, every number of the report is in results.json, the e-prop counters
equal a hand count, and the scored-step read-outs equal independent references (torch e-prop's forward pass,
hwsim.sim.quantize's read-outs)."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.cli.main import main
from hwsim.study.pipeline import STAGES, StudyError, load_config, scored_readout

ROOT = Path(__file__).resolve().parent.parent
N_IN, N_HIDDEN, N_OUT, STEPS, RECALL = 40, 16, 2, 120, 15  # the cue task at its shortest T: 7 x (5 + 10) + 15

CUE_ALIF = f"""
dataset: cue
network: {N_IN}-a{N_HIDDEN}-{N_OUT}
timesteps: {STEPS}
epochs: 1
lr: 5.0
momentum: 0.0
train_rules: [eprop, bptt]
rules: [bptt, sltt, eprop]
chips: [reckon, loihi, spinnaker2]
memory_timesteps: [8]
rule_options: {{tau: 2.5}}
on_chip: {{rules: [eprop, sltt], samples: 10, lr: 0.05}}
eval_samples: 40
"""


def _study(folder: Path, text: str) -> tuple[Path, dict, str]:
    config = folder / "cue.yaml"
    config.write_text(text)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert main(["study", "--config", str(config), "--out", str(folder / "out"), "--no-progress"]) == 0
    lines = shown.getvalue().splitlines()
    assert any(line.startswith("hwsim: float ") for line in lines)  # its own line
    assert "\\x0a" not in shown.getvalue()  # a newline printed, not shown escaped
    out = folder / "out"
    return out, json.loads((out / "results.json").read_text()), (out / "report.md").read_text()


@pytest.fixture(scope="module")
def alif_study(tmp_path_factory):
    return _study(tmp_path_factory.mktemp("cue_alif"), CUE_ALIF)


def test_every_stage_ran_on_the_recurrent_alif_net(alif_study):
    out, results, report = alif_study
    assert all((out / "stages" / f"{stage}.json").is_file() for stage in STAGES)
    assert set(results["train"]["rules"]) == {"eprop", "bptt"}
    assert results["train"]["data"]["scored_steps"] == f"{STEPS - RECALL}-{STEPS - 1} of 0-{STEPS - 1}"
    assert results["train"]["rules"]["eprop"]["options"] == {"eligibility": "per_synapse", "feedback": "symmetric",
                                                             "kappa": 0.0}
    sim = results["simulate"]
    assert "ALIF" in sim["fixed_skipped"] and sim["quantized_fixed_percent"] is None
    assert 0 < sim["sop_recurrent_per_sample"] < sim["sop_per_sample"]
    assert not (out / "fixed.network.npz").exists()
    assert "ALIF" in results["costs"]["float_network"] and set(results["costs"]["chips"]) == {"reckon", "loihi",
                                                                                               "spinnaker2"}
    assert results["export"]["skipped"] is True and "ALIF" in results["export"]["reason"]
    assert "Skipped: layer 0 (recurrent0): adaptive-threshold (ALIF) neurons" in report
    assert results["memory"]["skipped"] == {} and set(results["memory"]["activation_kib"]) == {"bptt", "sltt",
                                                                                                 "eprop"}
    assert {"on_chip_curve.png", "training_curves.png"} <= set(results["figures"])
    assert "quantization_accuracy.png" not in results["figures"]  # no fixed point to compare with


def test_report_names_eprops_verdicts_on_the_learning_chips(alif_study):
    _, results, report = alif_study
    feasibility = results["feasibility"]
    other = feasibility["eprop_other_form"]["eprop"]
    assert other["eligibility"] == "per_neuron"
    section = report.split("## eprop on the learning chips", 1)[1].split("##", 1)[0]
    for chip in ("reckon", "loihi", "spinnaker2"):
        forms = (("per_synapse", feasibility["table"][chip]["eprop"]), ("per_neuron", other["table"][chip]))
        for form, record in forms:
            assert f"| {chip} | {form} | `{record['verdict']}` |" in section
    # ReckOn keeps eligibility traces per neuron only (its profile's capability, named in the reason)
    assert feasibility["table"]["reckon"]["eprop"]["verdict"].startswith("infeasible: needs eligibility traces per "
                                                                         "synapse")


def test_the_report_shows_only_numbers_results_json_holds(alif_study):
    import re

    from tests.test_study import _numbers

    _, results, report = alif_study
    text = re.sub(r"`[^`]*`", " ", report)
    text = re.sub(r"\([^)]*\.png\)", " ", text)
    shown = [float(m) for m in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text)]
    missing = sorted({n for n in shown if n not in _numbers(results)})
    assert not missing, f"numbers in report.md that results.json does not hold: {missing}"


def test_on_chip_eprop_counts_equal_a_hand_count(alif_study):
    """Batch 1, T steps, the recall window scored, ALIF, kappa 0, per synapse (docs/eprop.md's counter table): per
    step the recurrent layer updates its n_in + N (+1 bias) presynaptic traces and the adaptation eligibility eps_a
    of each of its P x N synapses; at each scored step N learning signals are broadcast, and the read-out forms the
    N x K products B_jk err_k."""
    out, results, _ = alif_study
    from hwsim.sim.network import load

    network = load(out / "train" / "eprop.network.npz")
    slots = N_IN + N_HIDDEN + int(network.layers[0].bias is not None)
    record = results["on_chip"]["rules"]["eprop"]
    assert record["samples"] == 10 and record["options"]["eligibility"] == "per_synapse"
    assert record["trace_updates_last_sample"] == slots * STEPS
    assert record["eligibility_updates_last_sample"] == slots * N_HIDDEN * STEPS
    assert record["learning_signals_last_sample"] == N_HIDDEN * RECALL
    assert record["error_macs_last_sample"] == N_HIDDEN * N_OUT * RECALL
    state = results["memory"]["eprop_state_values"]["eprop"]
    assert state["per_synapse"]["eligibility"] == slots * N_HIDDEN and state["per_neuron"]["eligibility"] == 0
    assert sum(state["per_neuron"].values()) < sum(state["per_synapse"].values())


def test_simulated_accuracy_on_the_scored_steps_equals_torch_eprops_forward(alif_study):
    """The simulate stage's float accuracy (hwsim's engine, the read-out summed over the recall window) equals the
    torch e-prop model's own forward pass on the same test trials, and the on-chip learner's before it learns."""
    import torch
    from hwsim.methods import build_rule
    from hwsim.methods.data import load_dataset

    from hwsim.sim.network import load

    out, results, _ = alif_study
    data = load_dataset("cue", STEPS, seed=0)
    x, y = (a.numpy() for a in data.split("test"))
    x, y = x[:40], y[:40]
    network = load(out / "train" / "eprop.network.npz")
    model = build_rule("eprop", network).model
    with torch.no_grad():
        found = model(torch.from_numpy(x).transpose(0, 1), data.loss_steps.numpy()).argmax(1).numpy()
    percent = round(100 * float((found == y).mean()), 1)
    assert results["simulate"]["quantized_float_percent"] == percent
    assert results["simulate"]["float_accuracy_percent"] == percent
    assert results["on_chip"]["rules"]["eprop"]["before_percent"] == percent


def _net(spec: str, seed: int):
    from hwsim.sim.network import from_spec

    network = from_spec(spec, seed=seed)
    for layer in network.layers:  # biases, so that the scored step count enters the read-out
        layer.bias = np.random.default_rng(seed).normal(0, 0.2, layer.weight.shape[0]).astype(np.float32)
    return network


@pytest.mark.parametrize("spec", ["12-a10-3", "12-r10-3", "12-r10-8-3", "12-8-r3"])
def test_scored_float_readout_equals_torch_and_the_full_readout(spec):
    """Float: over every step it equals hwsim.sim.quantize.float_readout; over a window, the difference of two full
    read-outs (the window at the end) and, for one recurrent layer and a dense read-out, torch e-prop's forward. A
    recurrent read-out (``12-8-r3``) adds its own spikes of the step before."""
    import torch

    from hwsim.sim.quantize import float_readout

    network = _net(spec, 3)
    spikes = (np.random.default_rng(1).random((30, 5, 12)) < 0.3).astype(np.uint8)
    every = np.ones(30, bool)
    assert np.allclose(scored_readout(network, spikes, every), float_readout(network, spikes), rtol=1e-6, atol=1e-6)
    window = np.zeros(30, bool)
    window[20:] = True
    found = scored_readout(network, spikes, window)
    tail = float_readout(network, spikes) - float_readout(network, spikes[:20])  # causal: the first 20 steps agree
    assert np.allclose(found, tail, rtol=1e-5, atol=1e-5)
    if spec in ("12-a10-3", "12-r10-3"):
        from hwsim.methods import build_rule

        model = build_rule("eprop", network).model
        with torch.no_grad():
            reference = model(torch.from_numpy(spikes).float(), window).double().numpy()
        assert np.allclose(found, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("spec", ["12-r10-3", "12-8-3"])
def test_scored_fixed_readout_is_the_output_current_after_the_layers_delay(spec):
    """Fixed point: over every step it equals hwsim.sim.quantize.fixed_readout (T + L steps); the last W steps
    equal the full read-out less the read-out of the first T - W steps (the run is causal, delayed by L)."""
    from hwsim.sim.quantize import fixed_readout, quantize

    fixed, _ = quantize(_net(spec, 5))
    spikes = (np.random.default_rng(2).random((25, 4, 12)) < 0.4).astype(np.uint8)
    assert np.array_equal(scored_readout(fixed, spikes, np.ones(25, bool)), fixed_readout(fixed, spikes))
    window = np.zeros(25, bool)
    window[18:] = True
    tail = fixed_readout(fixed, spikes) - fixed_readout(fixed, spikes[:18])
    assert np.array_equal(scored_readout(fixed, spikes, window), tail)
    assert np.abs(tail).sum() > 0


def test_eprop_is_left_out_of_a_feed_forward_study_with_the_reason():
    from hwsim.study.pipeline import StudyConfig

    config = StudyConfig()  # the built-in study: every on-chip rule analysed, e-prop included in the list
    assert "eprop" in config.rules
    rules, skipped = config.analysed_rules()
    assert "eprop" not in rules and rules == [r for r in config.rules if r != "eprop"]
    assert skipped["eprop"].endswith("got dense-dense-dense (e-prop needs one recurrent layer)")


@pytest.mark.parametrize("text,fragment", [
    ("train_rules: [eprop]\n", "key train_rules: eprop: e-prop trains networks input-rN-out or input-aN-out"),
    ("network: 40-r8-r8-2\ndataset: cue\ntimesteps: 170\non_chip: {rules: [eprop]}\n",
     "key on_chip.rules: eprop: e-prop trains networks input-rN-out or input-aN-out (one recurrent LIF or ALIF "
     "layer and a dense read-out), got recurrent-recurrent-dense"),
    ("dataset: cues\n", "unknown dataset 'cues'; expected digits, randman, dvs_bars, cue"),
    ("momentum: 1.0\n", "key 'momentum': Input should be less than 1"),
])
def test_configs_eprop_cannot_run_are_refused_in_one_line(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(StudyError) as err:
        load_config(path)
    assert fragment in str(err.value) and len(str(err.value).splitlines()) == 1


def test_the_example_config_is_a_valid_study():
    config = load_config(ROOT / "examples" / "cue_accumulation.yaml")
    assert config.dataset == "cue" and config.network == "40-a32b0.3-2" and config.train_rules[0] == "eprop"
    assert config.on_chip.rules[0] == "eprop" and config.analysed_rules()[1] == {}


@pytest.mark.lava
def test_a_recurrent_lif_study_exports_to_lava_verified(tmp_path):
    """The same task on a recurrent LIF net: fixed point on the scored steps, priced in fixed point, exported to
    Lava and verified spike for spike (ALIF cannot be)."""
    text = CUE_ALIF.replace(f"a{N_HIDDEN}", f"r{N_HIDDEN}").replace("train_rules: [eprop, bptt]",
                                                                   "train_rules: [eprop]")
    text = text.replace("rules: [bptt, sltt, eprop]", "rules: [eprop]").replace("[eprop, sltt]", "[eprop]")
    out, results, report = _study(tmp_path, text.replace("[reckon, loihi, spinnaker2]", "[reckon]"))
    sim = results["simulate"]
    assert "fixed_skipped" not in sim and sim["quantized_fixed_percent"] is not None
    assert "float_network" not in results["costs"] and (out / "fixed.network.npz").is_file()
    assert results["export"]["verified_equal"] is True and set(results["export"]["layers"]) == {"recurrent0",
                                                                                                 "dense1"}
    assert "Lava `fixed_pt` equals hwsim on every layer: yes" in report
