"""Is on-chip learning feasible? Per chip and rule: capabilities, learning state per core, energy, latency.

For a rule, its registry entry (:mod:`hwsim.learning.registry`, ``Rule.needs``) lists what its learning engine
must offer and which state it keeps:

| rule | capabilities | state per core (besides the weights) |
|---|---|---|
| bptt | graded error messages, third factor | gradient accumulators, state history of all T steps |
| sltt, sltt_k | graded error messages, third factor | gradient accumulators, error buffer |
| ottt_a | + local traces | + presynaptic traces |
| ottt_o | local traces, graded error messages, third factor | traces, error buffer (updates every step) |
| ttl_bptt | graded error messages, third factor | accumulators, history of the window k, local classifiers |
| stdl | graded error messages, third factor | accumulators, auxiliary networks chosen by ``stdl_plan.plan`` |
| eprop | + eligibility traces, a broadcast learning signal | eligibility, accumulators (per synapse); traces |

e-prop's needs (``Needs.eligibility``, ``Needs.learning_signal``) are held against ``learning.eligibility_traces``
(``per_synapse`` / ``per_neuron``) and ``learning.broadcast_learning_signal``; its state: per synapse, eligibility
values (2 for ALIF, + a filtered copy when ``kappa`` > 0) and accumulators; per neuron, presynaptic traces at the
chip's ``eligibility_trace_bits`` (ReckOn: 12/12/10 bits, packed).

Every rule but e-prop sends errors backwards through W^T: a chip that cannot read its synaptic memory transposed
(``learning.transposed_weight_reads`` false or unpublished) keeps a transposed copy of the weights (of W_rec too for
BPTT and TTL-BPTT, whose errors go back through the recurrent edge; the cut rules send none through it). e-prop's
learning signal goes through the read-out's feedback weights, formed as it is broadcast where the chip broadcasts it.

Recurrent layers: the weights, accumulators and (OTTT) presynaptic traces count W_rec and the layer's own spikes as
inputs (``n_in + n_out`` per neuron); BPTT's and TTL-BPTT's history holds u and s[t-1] per step (and a for ALIF).
:func:`recurrent_state` says in words what each rule keeps for each recurrent or ALIF layer; a verdict that is not
"feasible" ends with it. Layers that share a core in the inference mapping (ReckOn) share it for learning too, while
their learning state fits.

Sizes (bytes): weights at the chip's ``weight_bits``; traces at ``trace_bits`` (1 byte when absent);
errors, accumulators 2 bytes (16 bit, as Lava's Loihi learning accumulator); history per neuron per step
``ceil(state_bits / 8)`` + 1 (membrane and spike). The learning state of a layer lives on its cores (the
mapping of ``hwsim.hardware.mapping``); it must fit ``learning_memory_bytes_per_core`` when published, else the
synaptic memory together with the weights. A capability the chip's profile does not publish gives the
verdict "unknown", never a guess; a missing one gives "infeasible: needs ...". A chip whose errors can
travel as spikes (``learning.spike_coded_errors``: Loihi 1, Renner et al., Nat. Commun. 15:9691, 2024)
meets the need for graded error messages, with that assumption stated.

``max_timesteps``: the largest T whose learning state fits (memory per core and the chip's cores). BPTT keeps
the whole history, so it stops fitting at some T; TTL-BPTT's history grows up to its window; the online
rules (SLTT, OTTT, STDL, e-prop) keep no history: ``max_timesteps`` is then ``None`` with
``max_timesteps_note`` "any T" (or the reason it is unknown or 0).

Energy and latency per training sample come from an on-chip learning run (``hwsim.learning.learner``) priced by
``hwsim.hardware.cost``: dynamic and static apart, every learning action priced or listed in ``unpriced`` (the
energy is then a lower bound). :func:`rank` orders the feasible, fully priced chip x rule pairs by energy
per training sample; lower bounds are not ranked, and say why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hwsim.chips.schema import ELIGIBILITY_TRACE_KINDS, Chip
from hwsim.errors import FeasibilityError
from hwsim.hardware.mapping import (
    core_load,
    map_network,
    neuron_layers,
    neuron_model_unknown,
    stored_weights,
    weight_sharing,
    with_counts,
)
from hwsim.hardware.pricing import Pricing
from hwsim.learning import registry
from hwsim.learning.registry import Needs, RuleOptions
from hwsim.sim.counts import Counts
from hwsim.sim.network import Dense, FloatALIF, Network, Recurrent

CAPABILITY_TEXT = {"graded_error_messages": "graded error messages", "third_factor": "a third factor",
                   "local_traces": "local presynaptic traces"}
T_SEARCH_MAX = 1 << 20  # max_timesteps search stops here (reported as ">= T_SEARCH_MAX")
SPIKE_ERRORS = ("errors sent as spikes (no graded payload): exact backpropagation through the layers ran this way on "
                "Loihi 1 (Renner et al., Nat. Commun. 15:9691, 2024); the error precision is reduced")
SPIKE_ERRORS_IN_TIME = ("a reverse-time error pass with errors sent as spikes (Renner et al., Nat. Commun. "
                        "15:9691, 2024 backpropagated through the layers within a step only, with no pass back through "
                        "time: not shown on this chip)")


def needs(rule: str, options: RuleOptions | None = None) -> Needs:
    """What ``rule`` needs from a chip (:class:`hwsim.learning.registry.Needs`, declared in the rule registry), with
    the run's ``options`` applied where they change it (e-prop's ``eligibility``: :func:`registry.needs_of`)."""
    return registry.needs_of(rule, options)


def __getattr__(name: str):
    if name == "RULES":  # the rules with an on-chip form, as registered now
        return registry.names(on_chip=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _options(options: RuleOptions | None, legacy: dict) -> RuleOptions:
    """``options`` or, from the older keywords (k, window, block, subnet, budget_bytes), the record they make."""
    if options is not None and legacy:
        raise FeasibilityError(f"give rule options as options=RuleOptions(...) or keywords, not both "
                               f"({', '.join(legacy)})")
    if options is not None:
        return options
    return RuleOptions({k: v for k, v in legacy.items() if v is not None})


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
    latency_lower_bound: bool = False  # some learning work has no published time: at least this latency
    rule_options: dict[str, int] = field(default_factory=dict)  # e.g. SLTT-K's k, TTL-BPTT's window
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    limits_broken: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    fits: bool | None = None
    max_timesteps: int | None = None
    max_timesteps_note: str = ""
    energy_j: float | None = None
    energy_dynamic_j: float | None = None
    energy_static_j: float | None = None
    static_mode: str = ""
    unpriced_counts: dict[str, int] = field(default_factory=dict)
    energy_text: str = "-"
    rank: int | None = None
    rank_note: str = ""
    timesteps: int = 0
    energy_per_sample_low_j: float | None = None  # the band of the energy (the chip profile's uncertainty)
    energy_per_sample_high_j: float | None = None
    validation: str = ""  # calibrated, fitted or unvalidated: how the chip's figures were checked against silicon
    time_base: str = ""
    placement: str = ""
    recurrent_state: list[str] = field(default_factory=list)  # per recurrent / ALIF layer: what the rule keeps
    energy_per_sample_power_bound_j: float | None = None  # a published learning-power bound x the sample's time

    @property
    def feasible(self) -> bool:
        return self.verdict == "feasible"

    @property
    def lower_bound(self) -> bool:
        return bool(self.unpriced)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("chip", "rule", "verdict", "fits", "timesteps", "max_timesteps",
                                            "max_timesteps_note", "memory_per_core_bytes", "memory_by_kind_bytes",
                                            "memory_limit_bytes", "cores_needed", "energy_j", "energy_dynamic_j",
                                            "energy_static_j", "static_mode", "energy_per_sample_j", "energy_text",
                                            "latency_per_sample_s", "latency_lower_bound", "rule_options",
                                            "rank", "rank_note", "energy_per_sample_low_j",
                                            "energy_per_sample_high_j", "validation", "time_base", "placement",
                                            "recurrent_state", "energy_per_sample_power_bound_j", "missing",
                                            "unknown",
                                            "limits_broken", "unpriced", "unpriced_counts", "assumptions")}
        out["lower_bound"] = self.lower_bound
        return out


def memory_limit(chip: Chip) -> tuple[int | None, bool]:
    """Bytes of learning memory per core and whether the weights share it (synaptic memory)."""
    cap = chip.capacity
    if cap is not None and cap.learning_memory_bytes_per_core:
        return cap.learning_memory_bytes_per_core, False
    if cap is not None and cap.synaptic_memory_bytes_per_core:
        return cap.synaptic_memory_bytes_per_core, True
    return None, True


@dataclass
class _Widths:
    """Bytes of each kind of learning state on ``chip`` (see the module docstring): weights (fractional for packed
    sub-byte weights), traces, a step of history per neuron (membrane and spike; ALIF adds its adaptation),
    errors and accumulators, and e-prop's eligibility-trace bits per kind (input, recurrent, output)."""

    weight: float
    trace: int
    history: int
    state: int
    error: int = 2
    accum: int = 2
    eligibility_bits: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, chip: Chip, options: RuleOptions | None = None) -> _Widths:
        """The widths on ``chip``; e-prop's trace bits are the chip's published ones, else the run's rule options
        (``trace_bits_in``, ``_rec``, ``_out`` where declared), else the chip's ``precision.trace_bits``."""
        prec, learning = chip.precision, chip.learning
        trace_bits = prec.trace_bits if prec and prec.trace_bits else 8
        state = math.ceil((prec.state_bits if prec and prec.state_bits else 16) / 8)
        bits = learning.eligibility_trace_bits if learning is not None else None
        rule_bits = {kind: _option(options, f"trace_bits_{key}") for kind, key in
                     (("input", "in"), ("recurrent", "rec"), ("output", "out"))}
        if bits is None and all(v is not None for v in rule_bits.values()):
            bits = rule_bits
        if bits is None:
            bits = trace_bits
        per_kind = dict.fromkeys(ELIGIBILITY_TRACE_KINDS, bits) if isinstance(bits, int) else dict(bits)
        for kind in ELIGIBILITY_TRACE_KINDS:  # a kind the chip does not list takes the widest it lists
            per_kind.setdefault(kind, max(per_kind.values()))
        return cls((prec.weight_bits if prec and prec.weight_bits else 8) / 8, math.ceil(trace_bits / 8),
                   state + 1, state, eligibility_bits=per_kind)


def _eligibility(rule: str, options: RuleOptions | None) -> str | None:
    """The eligibility-trace variant a run of ``rule`` keeps (``per_synapse``/``per_neuron``; None: not e-prop): the
    rule's needs with the run's ``eligibility`` option applied (:func:`registry.needs_of`)."""
    return _needs_on_chip(rule, options).eligibility


def _option(options: RuleOptions | None, name: str):
    """A rule option's value (its declared default when ``options`` is None), None when the option is not declared."""
    return (options if options is not None else RuleOptions()).values.get(name)


def learning_state(network: Network, chip: Chip, rule: str, timesteps: int, window: int = 1,
                   block: int = 1, subnet: int = 1, mapping=None, budget_bytes: int | None = None,
                   options: RuleOptions | None = None) -> tuple[int, dict[str, int], list[str], int]:
    """Largest learning memory on one core (bytes), its split by kind, the assumptions taken, and the cores
    used. Each layer starts on the cores the inference mapping gives it and is spread over more cores (as
    many as its neurons allow) until its busiest core fits the chip's memory per core. Layers the mapping puts on
    one shared core (``layout.layers_share_cores``) stay together while their learning state fits it.
    ``options``: the run's rule options (e-prop's ``eligibility``, ``kappa``, ``feedback`` where declared)."""
    needs = _needs_on_chip(rule, options)
    learning = chip.learning
    widths = _Widths.of(chip, options)
    assumptions: list[str] = []
    eligibility = _eligibility(rule, options)
    transposed = eligibility is None and not (learning is not None and learning.transposed_weight_reads)
    if transposed:
        assumptions.append("transposed weight reads not published as available: a transposed copy is kept")
    limit, shared = memory_limit(chip)
    mapping = mapping or map_network(network, chip)  # the inference mapping (independent of T)
    sharing, _ = weight_sharing(chip)
    stages = neuron_layers(network)
    layers = [layer for layer, _, _ in stages]
    classes = int(np.prod(network.output_shape))
    if any(not isinstance(layer, (Dense, Recurrent)) for layer in layers):
        assumptions.append(f"conv learning state: weights, accumulators and traces per core as the weights are "
                           f"stored ({sharing}); each stored weight has its own gradient accumulator")
    stdl_aux = _stdl_aux_weights(network, subnet, budget_bytes, stages, sharing, classes) \
        if needs.aux == "copy" else {}
    if needs.history in ("T", "window"):
        kept = timesteps if needs.history == "T" else min(window, timesteps)
        inputs = int(np.prod(stages[0][1]))
        assumptions.append(f"history: each layer's presynaptic spikes of the kept steps are read back from the "
                           f"history of the layer before; the network input's ({inputs} inputs x {kept} steps) is "
                           f"replayed by the input source for the backward pass, not stored on chip (storing it "
                           f"on every core of the first layer would add {inputs * kept} bytes to each)")
    accumulate = needs.accumulators
    if eligibility is not None:
        accumulate = _eprop_assumptions(chip, needs, eligibility, options, assumptions)
    kept = timesteps if needs.history == "T" else min(window, timesteps) if needs.history == "window" else 0

    def busiest(index: int, cores: int) -> dict[str, float]:
        layer = layers[index]
        if isinstance(layer, (Dense, Recurrent)):
            neurons = math.ceil(layer.n_out / cores)
            rec = layer.n_out if isinstance(layer, Recurrent) else 0
            synapses, axons = neurons * (layer.n_in + rec), layer.n_in + rec
        else:
            neurons, synapses, axons = core_load(layer, stages[index][1], stages[index][2], cores, sharing)
        split = {"weights": synapses * widths.weight}
        if eligibility is not None:
            sizes = (int(np.prod(stages[index][1])), int(np.prod(stages[index][2])), neurons, synapses)
            split.update(_eprop_split(layer, index == len(layers) - 1, sizes, eligibility, widths, chip, options,
                                      classes))
            if accumulate:
                split["grad_accum"] = synapses * widths.accum
            return split
        if transposed:  # W^T sends errors down; BPTT and TTL-BPTT also send them back through W_rec^T
            cut = isinstance(layer, Recurrent) and needs.history is None
            split["weights_transposed"] = (neurons * layer.n_in if cut else synapses) * widths.weight
        split["errors"] = neurons * widths.error
        if needs.accumulators:
            split["grad_accum"] = synapses * widths.accum
        if needs.traces:
            split["traces"] = axons * widths.trace
        if kept:
            alif = widths.state if isinstance(layer.neuron, FloatALIF) else 0
            split["history"] = kept * neurons * (widths.history + alif)
        if needs.aux == "classifier" and (index + 1) % block == 0 and index + 1 < len(layers):
            split["aux"] = math.ceil(int(np.prod(stages[index][2])) * classes * widths.weight / cores)
        if index in stdl_aux:  # STDL: the auxiliary network the budget admits, weights and accumulators
            split["aux"] = math.ceil(stdl_aux[index] * (widths.weight + widths.accum) / cores)
        return split

    def load(split: dict[str, float]) -> float:
        return sum(split.values()) - (0 if shared else split["weights"])

    worst, worst_split, cores_used = 0, {}, 0
    for group in _core_groups(mapping):
        if len(group) > 1:
            together: dict[str, float] = {}
            for index in group:
                for kind, value in busiest(index, 1).items():
                    together[kind] = together.get(kind, 0.0) + value
            if limit is None or load(together) <= limit:
                cores_used += 1
                if sum(together.values()) > worst:
                    worst, worst_split = int(sum(together.values())), {k: int(v) for k, v in together.items()}
                continue
            assumptions.append(f"layers {' + '.join(layers[i].name for i in group)} share a core for inference; "
                               f"with their learning state they do not fit it together, so each gets its own")
        for index in group:
            placement = mapping.layers[index]
            cores = placement.cores
            split = busiest(index, cores)
            if limit is not None and load(split) > limit:
                cores, split = _spread(lambda c, i=index: busiest(i, c), load, limit, cores, placement.n_out)
            cores_used += cores
            total = int(sum(split.values()))
            if total > worst:
                worst, worst_split = total, {k: int(v) for k, v in split.items()}
    return worst, worst_split, assumptions, cores_used


def _core_groups(mapping) -> list[list[int]]:
    """The mapping's layers grouped by core: consecutive layers on one shared core form one group."""
    groups: list[list[int]] = []
    for index, placement in enumerate(mapping.layers):
        prev = mapping.layers[index - 1] if index else None
        if prev is not None and placement.cores == 1 and prev.cores == 1 and placement.first_core == prev.first_core:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def _eprop_assumptions(chip: Chip, needs: Needs, eligibility: str, options: RuleOptions | None,
                       assumptions: list[str]) -> bool:
    """e-prop's memory assumptions, in words; returns whether gradient accumulators are kept (not when the chip
    writes the weights at every step, ``learning.update_cadence: per_step``)."""
    learning = chip.learning
    cadence = learning.update_cadence if learning is not None else None
    kappa = _option(options, "kappa")
    if eligibility == "per_synapse":
        assumptions.append("e-prop, eligibility per synapse: 1 eligibility value per synapse of LIF neurons, 2 of "
                           "ALIF (membrane and adaptation), " + ("no filtered copy (kappa = 0)" if kappa == 0 else
                                                                 "a readout-filtered copy per synapse (kappa > 0)")
                           + ", a pseudo-derivative per neuron; the readout's weights use a presynaptic trace")
    else:
        assumptions.append("e-prop, eligibility per neuron (ReckOn's variant): a presynaptic trace per input and per "
                           "recurrent neuron, a readout-filtered trace per neuron feeding the readout; the per-synapse "
                           "products are formed on the fly when the weights are written")
    if learning is not None and learning.broadcast_learning_signal:
        assumptions.append("e-prop's learning signal (the readout's errors x the feedback weights) is formed as it is "
                           f"broadcast from the readout ({chip.name}: learning.broadcast_learning_signal): no error "
                           "buffer per neuron")
    if _option(options, "feedback") == "random":
        assumptions.append("random feedback: a fixed feedback weight per hidden neuron and output is stored")
    assumptions.append("e-prop keeps no history: online, the learning state does not grow with T")
    if needs.accumulators and cadence is not None and cadence.startswith("per_step"):
        assumptions.append(f"{chip.name} writes e-prop's weight updates at every step (learning.update_cadence: "
                           f"{cadence}; {learning.source_of('update_cadence')}): no gradient accumulator is kept, "
                           f"the per-sample update is applied online")
        return False
    return needs.accumulators


def _eprop_split(layer, readout: bool, sizes: tuple[int, int, int, int], eligibility: str, widths: _Widths,
                 chip: Chip, options: RuleOptions | None, classes: int) -> dict[str, float]:
    """e-prop's learning state on a layer's busiest core (bytes, besides the weights and accumulators): eligibility
    traces per synapse or per neuron, the learning signal where it is not broadcast, random feedback weights.
    ``sizes``: the layer's inputs and neurons, and the busiest core's neurons and synapses."""
    n_in, n_out, neurons, synapses = sizes
    bits = widths.eligibility_bits
    recurrent = isinstance(layer, Recurrent)
    alif = isinstance(layer.neuron, FloatALIF)
    split: dict[str, float] = {}
    if readout:  # the readout learns from the error x a filtered presynaptic trace per input
        split["traces"] = math.ceil(n_in * bits["output"] / 8)
    elif eligibility == "per_neuron":
        pre = n_in * bits["input"] + (n_out * bits["recurrent"] if recurrent else 0)
        post = n_out * bits["recurrent"] if alif else 0  # the adaptation's trace per neuron (assumed)
        split["traces"] = math.ceil((pre + post) / 8)
    else:
        per_value = math.ceil(max(bits.values()) / 8)
        filtered = 0 if _option(options, "kappa") == 0 else 1
        split["eligibility"] = synapses * ((2 if alif else 1) + filtered) * per_value
        split["traces"] = neurons * per_value  # the pseudo-derivative per neuron
    broadcast = chip.learning is not None and chip.learning.broadcast_learning_signal
    if not broadcast:
        split["errors"] = neurons * widths.error  # the learning signal per neuron, held until used
    if not readout and _option(options, "feedback") == "random":
        split["aux"] = neurons * classes * widths.weight
    return split


def _memory_fits(network: Network, chip: Chip, rule: str, timesteps: int, window: int, block: int,
                 subnet: int, mapping=None, budget_bytes: int | None = None,
                 options: RuleOptions | None = None) -> bool | None:
    """Whether the learning state at ``timesteps`` fits the chip's memory per core and cores (None: unknown)."""
    memory, split, _, cores = learning_state(network, chip, rule, timesteps, window, block, subnet, mapping,
                                             budget_bytes, options)
    limit, shared = memory_limit(chip)
    if limit is None:
        return None
    used = memory - (0 if shared else split.get("weights", 0))
    cap = chip.capacity
    return used <= limit and not (cap is not None and cap.cores and cores > cap.cores)


def max_timesteps(network: Network, chip: Chip, rule: str, window: int = 1, block: int = 1,
                  subnet: int = 1, budget_bytes: int | None = None, mapping=None,
                  options: RuleOptions | None = None) -> tuple[int | None, str]:
    """The largest T whose learning state fits (see module docstring) and a note saying what it means.
    ``mapping``: the inference mapping of ``network`` on ``chip`` when the caller has it (else made here)."""
    history = _needs_on_chip(rule, options).history
    mapping = mapping or map_network(network, chip)

    def fits(t: int) -> bool | None:
        return _memory_fits(network, chip, rule, t, window, block, subnet, mapping, budget_bytes, options)

    first = fits(1)
    if first is None:
        return None, "unknown: memory per core not published"
    if not first:
        return 0, "the learning state does not fit even at T = 1"
    if history is None and _eligibility(rule, options) is not None:
        return None, "any T: e-prop is online (eligibility traces, no history): max T unbounded"
    if history is None or (history == "window" and fits(window)):
        return None, "any T: the learning state does not grow with T"
    lo, hi = 1, 2
    while hi <= T_SEARCH_MAX and fits(hi):
        lo, hi = hi, hi * 2
    if hi > T_SEARCH_MAX:
        return lo, f">= {lo}: still fits at the search limit"
    while hi - lo > 1:  # fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo, f"T <= {lo}: the {'history' if history == 'T' else 'window history'} grows with T"


def rank(verdicts: list[Verdict], digits: int = 3) -> None:
    """Number the feasible chip x rule pairs whose learning energy is fully priced by energy per training
    sample (1 = least). Energies equal to ``digits`` significant figures are a tie and share a rank (the next
    distinct energy takes the rank after all of them, as in sport); a pair on different chips whose energy bands
    overlap keeps its order, but its ``rank_note`` says the two are not distinguishable within the bands. A lower
    bound is not ranked: a chip that leaves more actions unpriced would rank higher for that alone (measured: a
    profile pricing SOPs only came first for every rule, BPTT included). Unranked pairs get ``rank`` None and
    ``rank_note`` saying why."""
    ranked = []
    for v in verdicts:
        if not v.feasible:
            v.rank_note = "not ranked: " + v.verdict.split(":")[0]
        elif v.energy_per_sample_j is None:
            v.rank_note = "not ranked: energy not priced"
        elif v.unpriced:
            v.rank_note = f"not ranked: energy is a lower bound ({len(v.unpriced)} actions unpriced)"
        else:
            ranked.append(v)
    ranked.sort(key=lambda v: v.energy_per_sample_j)
    keys = [float(f"{v.energy_per_sample_j:.{digits - 1}e}") for v in ranked]
    for position, v in enumerate(ranked, start=1):
        first = keys.index(keys[position - 1])
        v.rank = first + 1
        tied = [f"{w.chip}/{w.rule}" for w, key in zip(ranked, keys) if key == keys[position - 1] and w is not v]
        v.rank_note = f"by energy per training sample (static: {v.static_mode})" + (
            f"; tied with {', '.join(tied)} (equal to {digits} significant figures)" if tied else "")
        overlap = [f"{w.chip}/{w.rule}" for w in ranked if w.chip != v.chip and _bands_overlap(v, w)]
        if overlap:
            v.rank_note += f"; its band overlaps {', '.join(overlap)} (not distinguishable within the chips' bands)"


def _bands_overlap(a: Verdict, b: Verdict) -> bool:
    """Whether two priced verdicts' energy bands overlap (a missing band: the value itself)."""
    a_low = a.energy_per_sample_low_j if a.energy_per_sample_low_j is not None else a.energy_per_sample_j
    a_high = a.energy_per_sample_high_j if a.energy_per_sample_high_j is not None else a.energy_per_sample_j
    b_low = b.energy_per_sample_low_j if b.energy_per_sample_low_j is not None else b.energy_per_sample_j
    b_high = b.energy_per_sample_high_j if b.energy_per_sample_high_j is not None else b.energy_per_sample_j
    return a_low <= b_high and b_low <= a_high


def _needs_on_chip(rule: str, options: RuleOptions | None = None) -> Needs:
    """The rule's needs with the run's ``options`` applied; a rule without an on-chip form (or unknown) is one
    line."""
    found = registry.RULES.get(rule)
    if found is None or found.kernel is None:
        raise FeasibilityError(f"unknown rule {str(rule)[:40]!r}; rules with an on-chip form: "
                               f"{', '.join(registry.names(on_chip=True))}")
    return registry.needs_of(rule, options)


def _spread(busiest, load, limit: int, cores: int, neurons: int) -> tuple[int, dict[str, float]]:
    """The fewest cores (from ``cores`` up to one per neuron) whose busiest core's learning load fits
    ``limit``; the load falls as cores are added, so a doubling then a bisection finds it. When even one
    neuron per core does not fit, that spread is returned (the caller reports the limit)."""
    low, high = cores, cores
    while load(busiest(high)) > limit:
        if high >= neurons:
            return neurons, busiest(neurons)
        low, high = high, min(2 * high, neurons)
    while high - low > 1:
        middle = (low + high) // 2
        if load(busiest(middle)) > limit:
            low = middle
        else:
            high = middle
    return high, busiest(high)


def _stdl_aux_weights(network: Network, subnet: int, budget_bytes: int | None, stages, sharing: str,
                      classes: int) -> dict[int, int]:
    """Weights stored for STDL's auxiliary network behind each subnetwork's last neuron layer (the one
    ``hwsim.learning.stdl_plan.plan`` chooses): the mirrored layers as the chip stores them, then the classifier."""
    from hwsim.learning.stdl_plan import DEFAULT_BUDGET_BYTES, STDLError, plan

    try:
        chosen = plan(network, subnet, DEFAULT_BUDGET_BYTES if budget_bytes is None else budget_bytes)
    except STDLError as err:
        raise FeasibilityError(str(err)) from None
    stored = {}
    for (_, hi), aux in zip(chosen.subnets, chosen.auxiliary):
        weights = sum(stored_weights(*stages[k], sharing) for k in aux.layers)
        if aux.classifier:
            last = aux.layers[-1] if aux.layers else hi - 1
            weights += int(np.prod(stages[last][2])) * classes
        stored[hi - 1] = weights
    return stored


def check(network: Network, chip: Chip, rule: str, timesteps: int, counts: Counts | None = None,
          options: RuleOptions | None = None, pricing: Pricing | None = None, mapping=None, **legacy) -> Verdict:
    """The verdict for ``rule`` on ``chip``; ``counts`` (a learning run) adds energy and latency. ``options``: the
    rule's options (:class:`~hwsim.learning.registry.RuleOptions`; the keywords ``window``, ``block``, ``subnet``,
    ``budget_bytes`` still work); ``pricing``: the assumptions of the energy and latency
    (:class:`~hwsim.hardware.pricing.Pricing`; a ``static=`` keyword still works). ``mapping``: the inference mapping
    of ``network`` on ``chip`` (:func:`hwsim.hardware.mapping.map_network`), when the caller checks several rules on
    one chip. On a network with recurrent layers (or ALIF neurons) the verdict's ``recurrent_state`` says what the
    rule keeps for them, and a verdict that is not "feasible" names it."""
    if "static" in legacy:
        pricing = Pricing(static=legacy.pop("static"))
    pricing = pricing or Pricing()
    options = _options(options, legacy)
    window, block, subnet = min(options.window, timesteps), options.block, options.subnet
    budget_bytes = options.budget_bytes
    _needs_on_chip(rule)
    mapping = mapping or pricing.place(network, chip)
    memory, split, assumptions, cores_needed = learning_state(network, chip, rule, timesteps, window, block, subnet,
                                                              mapping, budget_bytes, options)
    general = chip.kind != "neuromorphic"
    missing, unknown = _capabilities(chip, rule, timesteps, options, assumptions)
    broken = []
    cap = chip.capacity
    limit, shared = memory_limit(chip)
    used = memory - (0 if shared else split.get("weights", 0))
    if limit is not None and used > limit:
        what = "weights + learning state" if shared else "learning state"
        kinds = ", ".join(f"{kind} {int(value)}" for kind, value in split.items() if value and (shared or
                                                                                             kind != "weights"))
        broken.append(f"memory per core: {what} need {used} bytes on a core even spread over every neuron "
                      f"({kinds}), chip has {limit}")
    elif limit is None and not general:
        unknown.append("memory per core (not published)")
    if cap is not None and cap.cores and cores_needed > cap.cores:
        detail = next((t.split(" (", 1)[1].rstrip(")") for t in mapping.limits_broken
                       if t.startswith("cores:") and " (" in t), "")
        broken.append(f"cores: weights and learning state need {cores_needed} cores, the chip has {cap.cores}"
                      + (f" ({detail})" if detail else ""))
    broken.extend(limit_text for limit_text in mapping.limits_broken if not limit_text.startswith("cores:"))
    if (neurons_unknown := neuron_model_unknown(network, chip)) is not None:
        unknown.append(neurons_unknown)
    state = recurrent_state(network, rule, window, options)
    if missing or broken:
        text = "infeasible: " + "; ".join([f"needs {m}" for m in missing] + broken)
    elif unknown:
        text = "unknown: " + "; ".join(unknown)
    else:
        text = "feasible"
    if state and text != "feasible":
        text += "; recurrent state: " + "; ".join(state)
    verdict = Verdict(chip.name, rule, text, memory, split, limit, cores_needed, missing=missing, unknown=unknown,
                      limits_broken=broken, assumptions=assumptions, timesteps=timesteps,
                      rule_options=options.of(rule, timesteps, on_chip=True), recurrent_state=state)
    verdict.fits = False if broken else (None if limit is None else True)
    verdict.max_timesteps, verdict.max_timesteps_note = max_timesteps(network, chip, rule, window, block, subnet,
                                                                      budget_bytes, mapping, options)
    if counts is not None and not missing:
        _price(verdict, pricing.estimate(network, counts, chip, with_counts(mapping, network, chip, counts)))
    return verdict


def _capabilities(chip: Chip, rule: str, timesteps: int, options: RuleOptions,
                  assumptions: list[str]) -> tuple[list[str], list[str]]:
    """What ``chip``'s learning engine lacks for ``rule`` (missing) and does not publish (unknown), in words naming
    the capability; assumptions taken are appended to ``assumptions``."""
    missing: list[str] = []
    unknown: list[str] = []
    learning = chip.learning
    if chip.kind != "neuromorphic":
        assumptions.append(f"{chip.kind}: a programmable processor, assumed to run any rule")
        return missing, unknown
    if learning is None:
        return missing, ["the learning engine is not published"]
    if not learning.on_chip_learning:
        return ["on-chip learning"], unknown
    rule_needs = needs(rule, options)
    for capability in rule_needs.capabilities:
        value = getattr(learning, capability, None)
        text = CAPABILITY_TEXT.get(capability, capability.replace("_", " "))
        if capability == "graded_error_messages" and not value and learning.spike_coded_errors:
            if rule_needs.history is not None:  # BPTT, TTL-BPTT: what Renner et al. ran does not cover it
                unknown.append(SPIKE_ERRORS_IN_TIME)
            else:
                assumptions.append(SPIKE_ERRORS)
            continue
        if value is None:
            unknown.append(f"{text} (not published)")
        elif not value:
            missing.append(text)
    eligibility = _eligibility(rule, options)
    if eligibility is not None:
        have = learning.eligibility_traces
        wanted = eligibility.replace("_", " ")
        if have is None:
            unknown.append(f"eligibility traces {wanted} (learning.eligibility_traces not published)")
        elif eligibility == "per_synapse" and have == "per_neuron":
            missing.append(f"eligibility traces per synapse ({chip.name} keeps them per neuron only: "
                           f"learning.eligibility_traces)")
            assumptions.append(f"{chip.name}'s eligibility traces: {learning.source_of('eligibility_traces')}")
        else:
            kept = have.replace("_", " ")
            assumptions.append(f"e-prop with eligibility {wanted} on {chip.name}'s traces kept {kept} "
                               f"({learning.source_of('eligibility_traces')})")
    if getattr(rule_needs, "learning_signal", False):
        value = learning.broadcast_learning_signal
        if value is None:
            unknown.append("a learning signal broadcast from the readout (learning.broadcast_learning_signal not "
                           "published)")
        elif not value:
            missing.append("a learning signal broadcast from the readout (learning.broadcast_learning_signal)")
        else:
            assumptions.append(f"learning signal broadcast from the readout "
                               f"({learning.source_of('broadcast_learning_signal')})")
    epoch = learning.learning_epoch_max_steps
    if epoch is not None and timesteps > epoch and not registry.get(rule).update_every_step:
        assumptions.append(
            f"{chip.name} applies learning at the end of learning epochs of at most {epoch} steps; T={timesteps} "
            f"spans {math.ceil(timesteps / epoch)} of them, so the once-per-sample update is assumed to be "
            f"accumulated across epochs (e.g. in a synaptic tag) and written once; written every epoch instead, "
            f"the rule would become a more online one")
    return missing, unknown


def recurrent_state(network: Network, rule: str, window: int = 1, options: RuleOptions | None = None) -> list[str]:
    """What ``rule`` keeps, on chip, for each recurrent layer's recurrent path and each layer of adaptive (ALIF)
    neurons, in words (one entry per such layer; empty for a feed-forward LIF network). The temporal treatment is
    docs/rules.md's: BPTT through the recurrent edge over all T steps, TTL-BPTT inside each window, the cut rules
    (SLTT, SLTT-K, STDL) with s[t-1] as a constant input, OTTT with a presynaptic trace of the layer's own spikes,
    e-prop with eligibility traces and no history."""
    rule_needs = _needs_on_chip(rule, options)
    eligibility = _eligibility(rule, options)
    out = []
    for layer in network.layers:
        rec, alif = isinstance(layer, Recurrent), isinstance(layer.neuron, FloatALIF)
        if not (rec or alif):
            continue
        n = layer.n_out
        weights = f"W_rec ({n}x{n}) and its gradient accumulators; " if rec else ""
        history = "u, s[t-1]" + (" and a" if alif else "")
        through = ("W_rec^T, " if rec else "") + "the membrane" + (" and the adaptation" if alif else "")
        if eligibility == "per_synapse":
            values = "2 (membrane, adaptation)" if alif else "1"
            filtered = "" if _option(options, "kappa") == 0 else ", + a readout-filtered copy"
            text = (f"an eligibility value per synapse of W{' and W_rec' if rec else ''} ({values} each{filtered}), "
                    f"no history")
        elif eligibility == "per_neuron":
            text = ("presynaptic traces of its inputs" + (" and of its own spikes (the recurrent input)" if rec else "")
                    + ", no history")
        elif rule_needs.history == "T":
            text = f"{weights}the history of {history} of every step (errors back through {through} over all T steps)"
        elif rule_needs.history == "window":
            text = (f"{weights}the history of {history} of each window's {window} steps (BPTT through {through} "
                    f"inside a window; u, a and s carried into the next window as constants)")
        elif rule_needs.traces and rec:
            text = (f"{weights}OTTT's recurrent presynaptic trace r_hat[t] = lam r_hat[t-1] + s[t-1] per neuron "
                    f"(the recurrent input's trace); no history")
        else:
            text = (weights + ("its own spikes of the step before (s[t-1]) enter as a constant input; " if rec else
                               "") + ("the adaptation a[t] a constant of the step; " if alif else "")
                    + "temporal paths cut, no history")
        out.append(f"{layer.name}: {text}")
    return out


def _price(verdict: Verdict, report) -> None:
    """The verdict's energy, latency and band from the cost model's record of its learning run."""
    priced = report.priced
    summary = report.to_dict()
    verdict.energy_j = report.energy_j if priced else None
    verdict.energy_dynamic_j = report.energy_dynamic_j if priced else None
    verdict.energy_static_j = report.energy_static_j if priced else None
    verdict.static_mode = report.static_mode
    verdict.energy_per_sample_j = summary["energy_per_sample_j"] if priced else None
    verdict.energy_per_sample_low_j = summary["energy_per_sample_low_j"] if priced else None
    verdict.energy_per_sample_high_j = summary["energy_per_sample_high_j"] if priced else None
    verdict.energy_per_sample_power_bound_j = summary["energy_per_sample_power_bound_j"] if priced else None
    verdict.validation = report.validation
    verdict.time_base, verdict.placement = report.time_base, report.placement
    verdict.latency_per_sample_s = report.latency_per_sample_s
    verdict.latency_lower_bound = report.latency_lower_bound
    verdict.unpriced = report.unpriced
    verdict.unpriced_counts = report.unpriced_counts
    verdict.energy_text = report.energy_text()
    verdict.assumptions += report.assumptions + report.warnings


def learning_counts(network: Network, rule: str, timesteps: int, rate: float, batch: int = 1, seed: int = 0,
                    spikes: np.ndarray | None = None, options: RuleOptions | None = None, **legacy) -> Counts | None:
    """Counts of one on-chip training batch of ``rule`` on Bernoulli input (or the given 0/1 ``spikes``
    ``(T, B, *input_shape)``, which then set T and B) with random labels (None when no on-chip kernel
    exists for it). ``options`` as for :func:`check` (the keywords ``k``, ``window``, ``block``, ``subnet``,
    ``budget_bytes`` still work)."""
    import copy

    from hwsim.learning.learner import OnChipLearner
    from hwsim.sim.engine import bernoulli

    options = _options(options, legacy)
    kernel = registry.get(rule).kernel
    if kernel is None:
        return None
    if spikes is not None:
        timesteps, batch = int(spikes.shape[0]), int(spikes.shape[1])
    if kernel == "eprop":  # e-prop's own learner: one recurrent layer and its read-out (one line otherwise)
        from hwsim.learning.eprop import EpropLearner

        learner = EpropLearner(copy.deepcopy(network), options=options, seed=seed)
    else:
        learner = OnChipLearner(copy.deepcopy(network), rule, k=min(options.k, timesteps), seed=seed,
                                window=min(options.window, timesteps), block=options.block, subnet=options.subnet,
                                budget_bytes=options.budget_bytes, surrogate=options.surrogate,
                                alpha=registry.surrogate_alpha(options.surrogate, options.alpha))
    if spikes is None:
        spikes = bernoulli((timesteps, batch, *network.input_shape), rate, seed=seed + 1)
    classes = int(np.prod(network.output_shape))  # a conv or pool head: its flattened neurons are the classes
    labels = np.random.default_rng(seed).integers(0, classes, batch)
    return learner.train_batch(spikes, labels).counts
