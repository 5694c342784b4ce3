"""Feasibility on recurrent nets: every rule's learning state counts W_rec, its accumulators, traces and history
(hand counts from the layer sizes and the profile's bit widths), reasons name the recurrent state and the missing
capability, e-prop is judged on the chips' e-prop capabilities (ReckOn feasible for its own network at its trace
widths; a per-synapse e-prop refused there), the ReckOn energy band, and conv- or pool-headed nets judged without an
internal error (issue 26 item 5)."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hwsim.chips.schema import Chip
from pydantic import ValidationError

from hwsim import chips
from hwsim.hardware.cost import estimate
from hwsim.learning import registry
from hwsim.learning.assess import judge, price_training
from hwsim.learning.feasibility import check, learning_state, recurrent_state
from hwsim.learning.registry import Needs, Rule, RuleOptions
from hwsim.sim.counts import Counts, LayerCounts
from hwsim.sim.network import from_spec

LOIHI = chips.load("loihi")  # 8-bit weights (1 byte), 24-bit state (3 bytes), 7-bit traces (1 byte), 9-bit tags
RECKON = chips.load("reckon")


def _split(spec: str, rule: str, steps: int = 10, chip: Chip = LOIHI, **options) -> dict[str, int]:
    """The busiest core's learning state of ``rule`` on ``spec`` (the recurrent layer's, on these nets)."""
    opts = RuleOptions(options, frozenset(options)) if options else None
    window = options.get("window", 1)
    return learning_state(from_spec(spec, seed=0), chip, rule, steps, window=window, options=opts)[1]


def test_cut_rules_keep_w_rec_and_its_accumulators_but_no_transposed_w_rec():
    """SLTT: 128 neurons x (40 + 128) synapses, 2-byte accumulators, a 2-byte error per neuron, and a transposed copy
    of the input weights only (the recurrent edge carries no error)."""
    split = _split("40-r128-16", "sltt")
    assert split == {"weights": 128 * 168, "weights_transposed": 128 * 40, "errors": 128 * 2,
                     "grad_accum": 128 * 168 * 2}


def test_bptt_keeps_the_history_of_u_and_the_spikes_and_sends_errors_through_w_rec():
    split10, split20 = _split("40-r128-16", "bptt", 10), _split("40-r128-16", "bptt", 20)
    assert split10["weights_transposed"] == 128 * 168
    assert split10["history"] == 10 * 128 * (3 + 1)  # membrane (24 bit) + spike per neuron per step
    assert split20["history"] - split10["history"] == 10 * 128 * 4


def test_alif_history_adds_the_adaptation_per_step():
    split = _split("40-a64-16", "bptt", 10)
    assert split["history"] == 10 * 64 * (3 + 1 + 3)


def test_ottt_keeps_a_trace_of_the_layers_own_spikes():
    split = _split("40-r128-16", "ottt_a")
    assert split["traces"] == (40 + 128) * 1


def test_ttl_bptt_history_is_its_window():
    split = _split("40-r128-16", "ttl_bptt", 10, window=3)
    assert split["history"] == 3 * 128 * 4 and split["weights_transposed"] == 128 * 168


def test_eprop_per_synapse_state_on_loihi():
    """Per synapse (Bellec et al. 2020): an eligibility value per synapse of W and W_rec at Loihi's 9-bit tag width
    (2 bytes), a second one with a filtered read-out (kappa > 0), a 2-byte accumulator per synapse, the
    pseudo-derivative per neuron; no error buffer (Loihi's learning signal is taken as broadcast); no transposed
    copy. ALIF: 2 eligibility values per synapse."""
    assert _split("40-r64-16", "eprop") == {"weights": 64 * 104, "eligibility": 64 * 104 * 2, "traces": 64 * 2,
                                            "grad_accum": 64 * 104 * 2}
    assert _split("40-r64-16", "eprop", kappa=0.9)["eligibility"] == 64 * 104 * 2 * 2
    assert _split("40-a64-16", "eprop")["eligibility"] == 64 * 104 * 2 * 2


def test_eprop_per_neuron_on_reckon_is_feasible_at_its_trace_widths():
    """ReckOn's own network with its variant: 256 x 12 + 256 x 12 + 256 x 10 bits of traces = 1,088 bytes, the
    trace fields of its neuron SRAM; one core; no history, so any T."""
    net = from_spec("256-r256-16", seed=0)
    options = RuleOptions({"eligibility": "per_neuron"}, frozenset({"eligibility"}))
    verdict = check(net, RECKON, "eprop", 100, options=options)
    assert verdict.verdict == "feasible", verdict.verdict
    assert verdict.cores_needed == 1 and verdict.fits is True
    learning = {k: v for k, v in verdict.memory_by_kind_bytes.items() if k != "weights"}
    assert learning == {"traces": (256 * 12 + 256 * 12 + 256 * 10) // 8} and verdict.memory_limit_bytes == 1088
    assert verdict.max_timesteps is None and "unbounded" in verdict.max_timesteps_note
    assert verdict.recurrent_state == ["recurrent0: presynaptic traces of its inputs and of its own spikes (the "
                                       "recurrent input), no history"]


def test_bptt_and_per_synapse_eprop_on_reckon_name_the_capability_and_the_recurrent_state():
    net = from_spec("256-r256-16", seed=0)
    bptt = check(net, RECKON, "bptt", 100)
    assert bptt.verdict.startswith("infeasible: needs graded error messages")
    assert "recurrent state: recurrent0: W_rec (256x256) and its gradient accumulators; the history of u, s[t-1] " \
           "of every step" in bptt.verdict
    synapse = check(net, RECKON, "eprop", 100)
    assert "needs eligibility traces per synapse (reckon keeps them per neuron only" in synapse.verdict
    assert "an eligibility value per synapse of W and W_rec" in synapse.verdict


def test_recurrent_state_in_words_per_rule():
    net = from_spec("40-r64-16", seed=0)
    texts = {rule: recurrent_state(net, rule, 4)[0] for rule in ("bptt", "sltt", "ottt_a", "ttl_bptt", "stdl")}
    assert "every step" in texts["bptt"] and "W_rec^T" in texts["bptt"]
    assert "s[t-1]) enter as a constant input" in texts["sltt"] and "no history" in texts["stdl"]
    assert "r_hat[t] = lam r_hat[t-1] + s[t-1]" in texts["ottt_a"]
    assert "each window's 4 steps" in texts["ttl_bptt"]
    assert recurrent_state(from_spec("40-64-16", seed=0), "bptt") == []


def test_a_toy_eprop_like_rule_is_judged_on_the_eprop_capabilities():
    """A rule registered here with e-prop's needs: per-synapse eligibility and a broadcast learning signal. ReckOn
    lacks the first; a chip without a broadcast learning signal lacks the second; unpublished is unknown."""
    registry.register(Rule("toy_eprop", "toy e-prop", "test", "hwsim.methods.sltt:build",
                           Needs(("third_factor",), eligibility="per_synapse", learning_signal=True), "online"))
    try:
        net = from_spec("20-r16-4", seed=0)
        assert "needs eligibility traces per synapse" in check(net, RECKON, "toy_eprop", 10).verdict
        learning = LOIHI.learning
        silent = LOIHI.model_copy(update={"learning": learning.model_copy(update={"broadcast_learning_signal":
                                                                                   False})})
        assert "needs a learning signal broadcast from the readout" in check(net, silent, "toy_eprop", 10).verdict
        unpublished = LOIHI.model_copy(update={"learning": learning.model_copy(
            update={"broadcast_learning_signal": None, "eligibility_traces": None})})
        verdict = check(net, unpublished, "toy_eprop", 10).verdict
        assert verdict.startswith("unknown:") and "eligibility traces per synapse (learning.eligibility_traces " \
                                                  "not published)" in verdict
        assert "learning.broadcast_learning_signal not published" in verdict
        assert check(net, LOIHI, "toy_eprop", 10).verdict == "feasible"
    finally:
        registry.unregister("toy_eprop")


def _learning_counts(steps: int, sops: int) -> Counts:
    lc = LayerCounts("r", "recurrent", 4, 4, steps)
    lc.events["sop"][0] = sops
    lc.neuron_spikes = np.zeros(4, np.int64)
    lc.input_spikes = np.zeros(4, np.int64)
    lc.neuron_active = np.zeros(4, np.int64)
    lc.events["weight_updates"][0] = 10  # unpriced on ReckOn: the energy is a lower bound
    return Counts(steps, 1, "float", "learning", [lc])


def test_reckon_learning_energy_band_is_its_sops_to_its_published_power():
    """≥ SOPs x 5.3 pJ (learning actions unpriced) up to < 50 uW x T x 1 ms (real-time learning, ISSCC 2022)."""
    net = from_spec("4-r4", seed=0)
    report = estimate(net, _learning_counts(100, 200_000), RECKON)
    assert report.energy_j == pytest.approx(200_000 * 5.3e-12) and report.lower_bound
    assert report.energy_high_j == pytest.approx(50e-6 * 100 * 1e-3)
    assert report.to_dict()["energy_per_sample_power_bound_j"] == pytest.approx(5e-6)
    assert report.energy_text().endswith("≤ 5 µJ (published power bound)")
    busy = estimate(net, _learning_counts(100, 2_000_000), RECKON)
    assert busy.energy_high_j is None and "exceeded" in busy.energy_text()
    assert any("busier than the published operating point" in w for w in busy.warnings)
    inference = _learning_counts(100, 200_000)
    inference.phase = "inference"
    assert estimate(net, inference, RECKON).energy_high_j is None  # the bound is for learning in real time


@pytest.mark.parametrize("spec", ["1x8x8-c4", "1x8x8-c4-p2"])
def test_conv_and_pool_headed_nets_are_judged_and_priced(spec):
    """The output layer's flattened neurons are the classes (it crashed on ``network.layers[-1].n_out``)."""
    net = from_spec(spec, seed=0)
    judgement = judge(net, [LOIHI], ["sltt"], 5)
    verdict = judgement.verdicts[0]
    assert verdict.energy_per_sample_j is not None and verdict.energy_per_sample_j > 0
    counts, records = price_training(net, [LOIHI], "sltt", 5)
    assert counts.phase == "learning" and records[0].estimate["energy_j"] > 0


def test_chip_profiles_carry_eprop_capabilities_with_sources():
    learning = RECKON.learning
    assert learning.eligibility_traces == "per_neuron" and learning.broadcast_learning_signal is True
    assert learning.eligibility_trace_bits == {"input": 12, "recurrent": 12, "output": 10}
    assert learning.update_cadence == "per_step" and learning.learning_power_max_mw == 0.05
    for name in ("reckon", "loihi", "loihi2", "spinnaker2"):
        learning = chips.load(name).learning
        for field in ("eligibility_traces", "eligibility_trace_bits", "broadcast_learning_signal", "update_cadence"):
            assert getattr(learning, field) is not None and field in learning.sources, (name, field)
    assert chips.load("spinnaker2").learning.sources["eligibility_trace_bits"].basis == "assumed"
    assert chips.load("odin").learning.eligibility_traces is None  # unpublished: unknown, never guessed


def test_eprop_capability_fields_are_checked_on_load():
    base = {"name": "bad", "full_name": "bad", "learning": {"source": "test", "basis": "specified",
                                                            "on_chip_learning": True}}
    with pytest.raises(ValidationError, match="unknown trace kind 'synapse'"):
        Chip.model_validate({**base, "learning": {**base["learning"], "eligibility_trace_bits": {"synapse": 8}}})
    with pytest.raises(ValidationError, match="plausible range"):
        Chip.model_validate({**base, "learning": {**base["learning"], "eligibility_trace_bits": {"input": 99}}})
    with pytest.raises(ValidationError, match="needs timing.tick_us"):
        Chip.model_validate({**base, "learning": {**base["learning"], "learning_power_max_mw": 0.05}})
    with pytest.raises(ValidationError):
        Chip.model_validate({**base, "learning": {**base["learning"], "eligibility_traces": "per_core"}})


def test_reckon_feasibility_command_prints_the_verdict_and_the_band():
    """The done-when command: feasible on 1 core, any T, an energy with its band (or the bound it exceeds); bptt
    refused naming the capability."""
    argv = [sys.executable, "-m", "hwsim", "feasibility", "--net", "256-r256-16", "--chip", "reckon", "--rules",
            "eprop,bptt", "--eligibility", "per_neuron", "--rate", "0.02", "-T", "50", "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    verdicts = {v["rule"]: v for v in json.loads(proc.stdout)}
    eprop, bptt = verdicts["eprop"], verdicts["bptt"]
    assert eprop["verdict"] == "feasible" and eprop["cores_needed"] == 1 and eprop["max_timesteps"] is None
    assert eprop["energy_per_sample_j"] > 0 and eprop["lower_bound"]
    assert eprop["energy_per_sample_power_bound_j"] == pytest.approx(50e-6 * 50 * 1e-3)
    assert math.isclose(eprop["memory_by_kind_bytes"]["traces"], 1088)
    assert bptt["verdict"].startswith("infeasible: needs graded error messages")
