"""The chip-side learning questions as Python calls: judge chips × rules, price a training sample on chips.

``hwsim feasibility`` and ``hwsim estimate --rules`` only format what these return, so the Python API gives the
same numbers as the command line (tests/test_api_cli.py compares them):

* :func:`judge` — every chip × rule: a :class:`~hwsim.learning.feasibility.Verdict` (capabilities, learning state
  per core, largest T, energy and latency per training sample), ranked where ranking means something;
* :func:`price_training` — one on-chip training batch per rule, priced on each chip with the feasibility verdict's
  cores and fit beside the energy (a record per chip × rule).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from hwsim.chips.schema import Chip
from hwsim.errors import LearningError, NetworkError
from hwsim.hardware.pricing import Pricing
from hwsim.learning import registry
from hwsim.learning.feasibility import Verdict, check, learning_counts, rank
from hwsim.learning.registry import RuleOptions
from hwsim.sim.counts import Counts
from hwsim.sim.network import FloatALIF, FloatLIF, Network


@dataclass
class Judgement:
    """The verdicts of :func:`judge` (chips × rules, in rule-major order) and the rules left out with the reason
    (e.g. an STDL budget that admits no auxiliary network on this network)."""

    verdicts: list[Verdict]
    left_out: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> list[dict]:
        return [v.to_dict() for v in self.verdicts]


def apply_neuron_options(network: Network, options: RuleOptions) -> Network:
    """``network`` with the neuron options given explicitly (``tau``: leak 1 − 1/τ, ``v_th``) set on every float
    LIF or ALIF layer (a copy; the network itself when none was given; an ALIF keeps its adaptation)."""
    given = {"tau", "v_th"} & set(options.given)
    if not given:
        return network
    out = copy.deepcopy(network)
    for layer in out.layers:
        if isinstance(layer.neuron, (FloatLIF, FloatALIF)):
            lam = 1.0 - 1.0 / options.tau if "tau" in given else layer.neuron.lam
            v_th = options.v_th if "v_th" in given else layer.neuron.v_th
            layer.neuron = dataclasses.replace(layer.neuron, lam=lam, v_th=v_th)
    return out


def stdl_refusal(network: Network, options: RuleOptions, batch_size: int = 1) -> str | None:
    """Why STDL's budget admits no auxiliary network on ``network`` (None when it admits one)."""
    from hwsim.learning.stdl_plan import STDLError, plan

    try:
        plan(network, options.subnet, options.budget_bytes, batch_size)
    except STDLError as err:
        return str(err)
    return None


def judge(network: Network, chips: list[Chip], rules: list[str], timesteps: int, options: RuleOptions | None = None,
          rate: float = 0.1, spikes: np.ndarray | None = None, pricing: Pricing | None = None, seed: int = 0
          ) -> Judgement:
    """Every chip × rule for one training sample of ``timesteps`` steps on Bernoulli input of ``rate`` (or the
    given 0/1 ``spikes`` (T, 1, *input_shape)) with a random label. A rule whose options cannot hold on this
    network (STDL with a budget that admits no auxiliary network) is left out with the reason."""
    options = options or RuleOptions()
    pricing = pricing or Pricing()
    network = apply_neuron_options(network, options)
    left_out = {}
    budgeted = [r for r in rules if registry.get(r).budgeted]
    if budgeted and (reason := stdl_refusal(network, options)) is not None:
        left_out = dict.fromkeys(budgeted, reason)
        rules = [r for r in rules if r not in left_out]
    mappings = {chip.name: pricing.place(network, chip) for chip in chips}  # the same for every rule
    verdicts = []
    for rule in rules:
        counts, unpriced = _counts_or_reason(network, rule, timesteps, rate, seed, spikes, options)
        for chip in chips:
            verdict = check(network, chip, rule, timesteps, counts, options=options, pricing=pricing,
                            mapping=mappings[chip.name])
            if unpriced:
                verdict.assumptions.append(unpriced)
                verdict.energy_text = "not priced (no on-chip run: see assumptions)"
            verdicts.append(verdict)
    rank(verdicts)
    return Judgement(verdicts, left_out)


def _counts_or_reason(network: Network, rule: str, timesteps: int, rate: float, seed: int,
                      spikes: np.ndarray | None, options: RuleOptions) -> tuple[Counts | None, str]:
    """The learning run's counts, or (a network the rule's on-chip learner refuses: e-prop's kernel trains
    ``input-rN-out`` only, a recurrent layer a kernel does not take yet) None and the sentence saying why its verdicts
    carry no energy: the capability and memory verdict stands without them."""
    try:
        return learning_counts(network, rule, timesteps, rate, seed=seed, spikes=spikes, options=options), ""
    except (NetworkError, LearningError) as err:
        return None, f"energy and latency not priced: the on-chip learner does not run {rule} on this network ({err})"


@dataclass
class TrainingEstimate:
    """One chip × rule: the cost record of one on-chip training batch (``estimate``: the cost model's record as
    a dict, joules and seconds) and the feasibility verdict's text, cores and learning memory per core."""

    rule: str
    rule_options: dict
    estimate: dict
    verdict: str
    cores_needed: int
    fits: bool | None
    learning_memory_per_core_bytes: int

    def to_dict(self) -> dict:
        out = dict(self.estimate)
        out.update(rule=self.rule, rule_options=self.rule_options, verdict=self.verdict, cores_used=self.cores_needed,
                   fits=self.fits, learning_memory_per_core_bytes=self.learning_memory_per_core_bytes)
        return out


def price_training(network: Network, chips: list[Chip], rule: str, timesteps: int,
                   options: RuleOptions | None = None, rate: float = 0.1, batch: int = 1,
                   spikes: np.ndarray | None = None, pricing: Pricing | None = None, seed: int = 0
                   ) -> tuple[Counts, list[TrainingEstimate]]:
    """One on-chip training batch of ``rule`` (random labels), priced on every chip; the verdict, cores and fit
    are those of :func:`judge` for the same chip, rule and T. Returns the learning counts and one record per chip."""
    options, pricing = options or RuleOptions(), pricing or Pricing()
    if registry.get(rule).kernel is None:
        raise registry.RegistryError(f"--rules: {rule} has no on-chip form; rules with one: "
                                     f"{', '.join(registry.names(True))}")
    network = apply_neuron_options(network, options)
    counts = learning_counts(network, rule, timesteps, rate, batch=batch, seed=seed, spikes=spikes, options=options)
    found = []
    for chip in chips:
        mapping = pricing.place(network, chip, counts)
        report = pricing.estimate(network, counts, chip, mapping).to_dict()
        report["mapping"] = mapping.to_dict(chip)
        verdict = check(network, chip, rule, counts.timesteps, options=options, pricing=pricing, mapping=mapping)
        if verdict.missing:  # the chip cannot run the rule: no learning energy or latency is printed for it
            _unprice(report, f"not priced: {chip.name} cannot run {rule} ({'; '.join(verdict.missing)})")
        elif verdict.cores_needed != report["cores_used"]:
            report["assumptions"].append(
                f"energy and latency priced on the inference placement ({report['cores_used']} cores); the "
                f"learning state needs {verdict.cores_needed} cores")
        found.append(TrainingEstimate(rule, options.of(rule, counts.timesteps, on_chip=True), report, verdict.verdict,
                                      verdict.cores_needed, verdict.fits, verdict.memory_per_core_bytes))
    return counts, found


def _unprice(report: dict, reason: str) -> None:
    """Blank every energy and latency of a cost record (None, empty tables) with ``reason``."""
    for key, value in report.items():
        if key.startswith(("energy", "latency", "step_latency")) and not key.endswith(("_text", "_model")):
            report[key] = {} if isinstance(value, dict) else [] if isinstance(value, list) else None
    report["energy_text"] = reason
    report["latency_lower_bound"] = False


__all__ = ["Judgement", "TrainingEstimate", "apply_neuron_options", "judge", "price_training", "stdl_refusal"]
