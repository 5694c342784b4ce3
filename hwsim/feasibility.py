"""Is on-chip learning feasible? Per chip and rule: capabilities, learning state per core, energy, latency.

For a rule, ``RULE_NEEDS`` lists what its learning engine must offer and which state it keeps:

| rule | capabilities | state per core (besides the weights) |
|---|---|---|
| bptt | graded error messages, third factor | gradient accumulators, state history of all T steps |
| sltt, sltt_k | graded error messages, third factor | gradient accumulators, error buffer |
| ottt_a | + local traces | + presynaptic traces |
| ottt_o | local traces, graded error messages, third factor | traces, error buffer (updates every step) |
| ttl_bptt | graded error messages, third factor | accumulators, history of the window k, local classifiers |
| stdl | graded error messages, third factor | accumulators, auxiliary networks chosen by ``hwsim.stdl.plan`` |

Every rule sends errors backwards through W^T: a chip that cannot read its synaptic memory transposed
(``learning.transposed_weight_reads`` false or unpublished) keeps a transposed copy of the weights.

Sizes (bytes): weights at the chip's ``weight_bits``; traces at ``trace_bits`` (1 byte when absent);
errors, accumulators 2 bytes (16 bit, as Lava's Loihi learning accumulator); history per neuron per step
``ceil(state_bits / 8)`` + 1 (membrane and spike). The learning state of a layer lives on its cores (the
mapping of ``hwsim.mapping``); it must fit ``learning_memory_bytes_per_core`` when published, else the
synaptic memory together with the weights. A capability the chip's profile does not publish gives the
verdict "unknown", never a guess; a missing one gives "infeasible: needs ...". Energy and latency per
training sample come from an on-chip learning run (``hwsim.learning``) priced by ``hwsim.cost``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from chips.schema import Chip
from hwsim.counts import Counts
from hwsim.mapping import map_network
from hwsim.network import Dense, Network

RULES = ("bptt", "sltt", "sltt_k", "ottt_a", "ottt_o", "ttl_bptt", "stdl")
CAPABILITY_TEXT = {"graded_error_messages": "graded error messages", "third_factor": "a third factor",
                   "local_traces": "local presynaptic traces"}


@dataclass(frozen=True)
class Needs:
    capabilities: tuple[str, ...]
    accumulators: bool
    traces: bool
    history: str | None  # "T", "window" or None
    aux: str | None  # "classifier", "copy" or None


RULE_NEEDS = {
    "bptt": Needs(("graded_error_messages", "third_factor"), True, False, "T", None),
    "sltt": Needs(("graded_error_messages", "third_factor"), True, False, None, None),
    "sltt_k": Needs(("graded_error_messages", "third_factor"), True, False, None, None),
    "ottt_a": Needs(("local_traces", "graded_error_messages", "third_factor"), True, True, None, None),
    "ottt_o": Needs(("local_traces", "graded_error_messages", "third_factor"), False, True, None, None),
    "ttl_bptt": Needs(("graded_error_messages", "third_factor"), True, False, "window", "classifier"),
    "stdl": Needs(("graded_error_messages", "third_factor"), True, False, None, "copy"),
}


class FeasibilityError(ValueError):
    """An unknown rule or an option the analysis cannot take."""


@dataclass
class Verdict:
    """One chip x rule."""

    chip: str
    rule: str
    verdict: str  # "feasible", "infeasible: ...", "unknown: ..."
    memory_per_core_bytes: int
    memory_by_kind_bytes: dict[str, int]
    memory_limit_bytes: int | None
    cores_needed: int = 0
    energy_per_sample_j: float | None = None
    latency_per_sample_s: float | None = None
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    limits_broken: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return self.verdict == "feasible"

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("chip", "rule", "verdict", "memory_per_core_bytes",
                                             "memory_by_kind_bytes", "memory_limit_bytes", "cores_needed",
                                             "energy_per_sample_j",
                                             "latency_per_sample_s", "missing", "unknown", "limits_broken",
                                             "unpriced", "assumptions")}


def memory_limit(chip: Chip) -> tuple[int | None, bool]:
    """Bytes of learning memory per core and whether the weights share it (synaptic memory)."""
    cap = chip.capacity
    if cap is not None and cap.learning_memory_bytes_per_core:
        return cap.learning_memory_bytes_per_core, False
    if cap is not None and cap.synaptic_memory_bytes_per_core:
        return cap.synaptic_memory_bytes_per_core, True
    return None, True


def learning_state(network: Network, chip: Chip, rule: str, timesteps: int, window: int = 1,
                   block: int = 1, subnet: int = 1, budget_bytes: int | None = None
                   ) -> tuple[int, dict[str, int], list[str], int]:
    """Largest learning memory on one core (bytes), its split by kind, the assumptions taken, and the cores
    used. Each layer starts on the cores the inference mapping gives it and is spread over more cores (as
    many as its neurons allow) until its busiest core fits the chip's memory per core."""
    if rule not in RULE_NEEDS:
        raise FeasibilityError(f"unknown rule {rule!r}; known rules: {', '.join(RULES)}")
    needs = RULE_NEEDS[rule]
    prec = chip.precision
    learning = chip.learning
    wbytes = (prec.weight_bits if prec and prec.weight_bits else 8) / 8
    tbytes = math.ceil((prec.trace_bits if prec and prec.trace_bits else 8) / 8)
    sbytes = math.ceil((prec.state_bits if prec and prec.state_bits else 16) / 8) + 1
    ebytes = abytes = 2
    assumptions = []
    transposed = not (learning is not None and learning.transposed_weight_reads)
    if transposed:
        assumptions.append("transposed weight reads not published as available: a transposed copy is kept")
    limit, shared = memory_limit(chip)
    mapping = map_network(network, chip)
    layers = [layer for layer in network.layers if layer.neuron is not None]
    classes = layers[-1].n_out
    stdl_aux = _stdl_aux_synapses(network, subnet, budget_bytes) if needs.aux == "copy" else {}

    def busiest(index: int, layer, cores: int, placement) -> dict[str, float]:
        dense = isinstance(layer, Dense)
        neurons = math.ceil(layer.n_out / cores) if dense else int(placement.neurons_per_core.max())
        synapses = neurons * layer.n_in if dense else int(placement.synapses_per_core.max())
        axons = layer.n_in if dense else int(placement.axons_per_core.max())
        split = {"weights": synapses * wbytes}
        if transposed:
            split["weights_transposed"] = synapses * wbytes
        split["errors"] = neurons * ebytes
        if needs.accumulators:
            split["grad_accum"] = synapses * abytes
        if needs.traces:
            split["traces"] = axons * tbytes
        if needs.history == "T":
            split["history"] = timesteps * neurons * sbytes
        elif needs.history == "window":
            split["history"] = min(window, timesteps) * neurons * sbytes
        if needs.aux == "classifier" and (index + 1) % block == 0 and index + 1 < len(layers):
            split["aux"] = math.ceil(layer.n_out * classes * wbytes / cores)
        if index in stdl_aux:  # STDL: the auxiliary network the budget admits, weights and accumulators
            split["aux"] = math.ceil(stdl_aux[index] * (wbytes + abytes) / cores)
        return split

    def load(split: dict[str, float]) -> float:
        return sum(split.values()) - (0 if shared else split["weights"])

    worst, worst_split, cores_used = 0, {}, 0
    for index, (layer, placement) in enumerate(zip(layers, mapping.layers)):
        cores = placement.cores
        split = busiest(index, layer, cores, placement)
        while limit is not None and isinstance(layer, Dense) and load(split) > limit and cores < layer.n_out:
            cores += 1
            split = busiest(index, layer, cores, placement)
        cores_used += cores
        total = int(sum(split.values()))
        if total > worst:
            worst, worst_split = total, {k: int(v) for k, v in split.items()}
    return worst, worst_split, assumptions, cores_used


def _stdl_aux_synapses(network: Network, subnet: int, budget_bytes: int | None) -> dict[int, int]:
    """Synapses of STDL's auxiliary network behind each subnetwork's last neuron layer (``hwsim.stdl.plan``)."""
    from hwsim.stdl import DEFAULT_BUDGET_BYTES, STDLError, init_weights, plan

    try:
        chosen = plan(network, subnet, DEFAULT_BUDGET_BYTES if budget_bytes is None else budget_bytes)
    except STDLError as err:
        raise FeasibilityError(str(err)) from None
    weights = init_weights(network, chosen)
    return {hi - 1: sum(0 if w is None else int(w.size) for w, _ in chain)
            for (_, hi), chain in zip(chosen.subnets, weights)}


def check(network: Network, chip: Chip, rule: str, timesteps: int, counts: Counts | None = None,
          window: int = 1, block: int = 1, subnet: int = 1, budget_bytes: int | None = None) -> Verdict:
    """The verdict for ``rule`` on ``chip``; ``counts`` (a learning run) adds energy and latency."""
    from hwsim.cost import estimate

    if rule not in RULE_NEEDS:
        raise FeasibilityError(f"unknown rule {rule!r}; known rules: {', '.join(RULES)}")
    memory, split, assumptions, cores_needed = learning_state(network, chip, rule, timesteps, window, block, subnet,
                                                              budget_bytes)
    missing, unknown, broken = [], [], []
    if not all(isinstance(layer, Dense) for layer in network.layers):
        assumptions.append("learning state sized for the layers as mapped; conv learning kernels are not built")
    general = chip.kind != "neuromorphic"
    if general:
        assumptions.append(f"{chip.kind}: a programmable processor, assumed to run any rule")
    elif chip.learning is None:
        unknown.append("the learning engine is not published")
    elif not chip.learning.on_chip_learning:
        missing.append("on-chip learning")
    else:
        for capability in RULE_NEEDS[rule].capabilities:
            value = getattr(chip.learning, capability)
            if value is None:
                unknown.append(f"{CAPABILITY_TEXT[capability]} (not published)")
            elif not value:
                missing.append(CAPABILITY_TEXT[capability])
    cap = chip.capacity
    limit, shared = memory_limit(chip)
    used = memory - (0 if shared else split.get("weights", 0))
    if limit is not None and used > limit:
        what = "weights + learning state" if shared else "learning state"
        broken.append(f"memory per core: {what} need {used} bytes on a core even spread over every neuron, "
                      f"chip has {limit}")
    elif limit is None and not general:
        unknown.append("memory per core (not published)")
    if cap is not None and cap.cores and cores_needed > cap.cores:
        broken.append(f"cores: weights and learning state need {cores_needed} cores, the chip has {cap.cores}")
    mapping = map_network(network, chip)
    broken.extend(limit_text for limit_text in mapping.limits_broken if not limit_text.startswith("cores:"))
    if missing or broken:
        reasons = [f"needs {m}" for m in missing] + broken
        text = "infeasible: " + "; ".join(reasons)
    elif unknown:
        text = "unknown: " + "; ".join(unknown)
    else:
        text = "feasible"
    verdict = Verdict(chip.name, rule, text, memory, split, limit, cores_needed, missing=missing, unknown=unknown,
                      limits_broken=broken, assumptions=assumptions)
    if counts is not None and not missing:
        report = estimate(network, counts, chip)
        priced = bool(report.energy_by_action_j)
        verdict.energy_per_sample_j = report.energy_j / counts.batch if priced else None
        verdict.latency_per_sample_s = None if report.latency_s is None else report.latency_s / counts.batch
        verdict.unpriced = report.unpriced
        verdict.assumptions += report.assumptions
    return verdict


def learning_counts(network: Network, rule: str, timesteps: int, rate: float, batch: int = 1, seed: int = 0,
                    k: int = 2, window: int = 1, block: int = 1, subnet: int = 1,
                    budget_bytes: int | None = None) -> Counts | None:
    """Counts of one on-chip training batch of ``rule`` on Bernoulli input with random labels (None when no
    on-chip kernel exists for it)."""
    import copy

    from hwsim.engine import bernoulli
    from hwsim.learning import ON_CHIP_RULES, OnChipLearner

    if rule not in ON_CHIP_RULES:
        return None
    learner = OnChipLearner(copy.deepcopy(network), rule, k=min(k, timesteps), seed=seed,
                            window=min(window, timesteps), block=block, subnet=subnet, budget_bytes=budget_bytes)
    spikes = bernoulli((timesteps, batch, *network.input_shape), rate, seed=seed + 1)
    labels = np.random.default_rng(seed).integers(0, network.layers[-1].n_out, batch)
    return learner.train_batch(spikes, labels).counts
