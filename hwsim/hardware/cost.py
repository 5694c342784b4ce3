"""The cost model: counts x a chip's energy per action (dynamic), plus static power x simulated time.

Dynamic energy (joules) by action, each from exact counts and one figure of the chip profile:

* ``sop`` -- SOPs x ``sop_pj`` (conv and pool layers: ``sop_conv_pj`` when the chip gives one);
* ``neuron_update`` -- active updates x ``neuron_update_active_pj`` + idle x ``neuron_update_idle_pj``
  when both are published, else all updates x ``neuron_update_pj``;
* ``spike_out`` -- spikes emitted x ``spike_out_pj``;
* ``packet`` -- packets x ``packet_pj``: one packet per spike and destination core, the input layer's
  included (SANA-FE's message-out energy), a recurrent layer's spikes back to its own cores too;
* ``routing`` -- east-west hops x ``hop_ew_pj`` + north-south hops x ``hop_ns_pj`` (or all x ``hop_pj``);
* ``memory`` -- bytes read x ``read_pj_per_byte`` + bytes written x ``write_pj_per_byte``: every byte when
  the chip's action energies exclude their memory accesses; when they include them
  (``energy.includes_memory``), only the bytes of state kept outside every action (``STORED_KINDS``: the
  membrane and spike history BPTT and TTL-BPTT store for the backward pass), which no action's figure can
  contain -- unpriced, and the energy a lower bound, where the profile has no memory figure;
* learning actions -- ``weight_update``, ``trace_update``, ``error_mac``, ``grad_op`` x their figures.

Static energy: ``static_power_mw`` x simulated time, as ``static`` asks: ``whole-chip`` (default), ``cores-used``
(static x cores used / cores, only where the profile says its source supports it: ``static.scales_with_cores``)
or ``none`` (left out, said so). A profile whose figures are all-in (``energy.all_in``) includes static power
at its ``operating_point``; used far from it (under half its cores, or a firing rate outside 0.5-2x) the
estimate warns, and it never reports less than the chip's static power x time when the profile gives one
(the difference appears as the action ``static``, "floored"; the run's dynamic energy above static power is then
unknown, so the floored figure is a lower bound, ``≥``). An all-in profile's ``energy_dynamic_j`` and
``energy_static_j`` are None (its figures cannot separate them); its all-in total is ``energy_all_in_j``.

An action with a count but no figure is listed in ``unpriced`` (with its count in ``unpriced_counts``) and
the energy is then a lower bound (``lower_bound``), printed as ``≥ 0.146 µJ, 2 actions unpriced``;
nothing is invented, nothing unpriced is shown as zero. Recurrent SOPs are SOPs (the engine counts them in ``sop``,
and apart as ``sop_recurrent``); ALIF neurons' updates are neuron updates. A learning run on a chip that publishes an
upper bound on its real-time learning power (``learning.learning_power_max_mw``, ReckOn's < 50 uW) gets that power x
the run's real-time duration as the upper end of its band (``energy_power_bound_j``).

Latency per step, by the profile's ``timing.model``:

* ``simple`` (default) -- the busiest core's work (its SOPs, active/idle neuron updates, spikes, packets
  received and sent and, when learning, weights written x the chip's time per action) averaged over the run's
  steps and samples, plus the longest route (hops x hop time) and the barrier time for the tiles in use (linear
  between the published points, clamped at the ends);
* ``detailed`` -- every spike message of every step scheduled: a receiver handles one message at a time and
  cannot start one before it arrives, a sender stalls when its route's link buffers are full
  (:mod:`hwsim.hardware.noc_timing`, after Boyle et al., SANA-FE, IEEE TCAD 2025), plus the same barrier. The simple
  figure is reported next to it (``step_latency_simple_s``).

A chip with a fixed step (``timing.step_time_us``, or ``cycles_per_step`` at ``clock_mhz``) runs at it.

**Time base** (``time_base``, default the profile's ``timing.time_base``): ``compute`` -- a step takes the work it
does (above), plus the time the management cores take to inject the host's input spikes where the profile
publishes it (``system.input_spike_ns``: Loihi's x86 injects input spikes one at a time); ``tick`` -- a real-time
tick (``tick_us``, or the profile's ``timing.tick_us``): the step lasts the tick whatever the work, and static and
management power are paid for the whole tick. Simulated time = T x B x step (+ the input injection).

**System terms** (``system``): the management cores' power while a run is active (``management_power_mw``) x
the run's wall time, reported as the action ``management`` and part of the dynamic energy (a board measurement
of "running minus idle" contains it).

**Bands** (``uncertainty``): every energy and latency comes with ``_low``/``_high`` values, ``x / f .. x * f``
with the profile's factors, and the validation status that produced them (``calibrated``, ``fitted``,
``unvalidated``). A lower bound has no upper end (``_high`` is None).

**Unknown is None, never 0**: static energy not published or left out, a dynamic energy an all-in figure cannot
separate from static power, a latency with no published time -- all ``None`` in the record and ``null`` in JSON.

A GPU (``kind: gpu``) is priced as it runs the network: dense matrix products of every synapse every step
(its own count, :func:`dense_macs`) and an elementwise neuron update, a batch at a time; idle power x time +
dynamic energy per MAC; a launch-bound latency per step (kernels x launch time + MACs at peak). It is an
estimate and says so. A sample's latency on a GPU is the whole batch's (``latency_per_sample_s``): every sample
waits for the batch it runs in.

:func:`price_activity` prices activity totals (a source's published counts, a profiler's, a recurrent network's
published activity) with the same figures, apart from any simulation: ``hwsim.hardware.validation`` holds the
profiles against published silicon measurements with it. :func:`assumption_flips` says whether flipping an
assumption (time base, placement, static basis) would reorder a set of estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hwsim.chips import ChipError
from hwsim.chips.schema import Chip
from hwsim.hardware.mapping import (
    Mapping,
    map_network,
    neuron_layers,
    neuron_model_unknown,
    parse_placement,
    recurrent_sops,
)
from hwsim.hardware.noc_timing import detailed_step_latency_ns
from hwsim.sim.counts import WEIGHT_BYTES, Counts
from hwsim.sim.network import FloatALIF, Network, Recurrent

PJ = 1e-12
STORED_KINDS = ("history",)  # memory kinds no action accesses: stored for later, priced as memory traffic
NS = 1e-9
STATIC_MODES = ("whole-chip", "cores-used", "none")
TIME_BASES = ("compute", "tick")
VALIDATION = ("calibrated", "fitted", "unvalidated")
LEARNING_ACTIONS = {"weight_update": ("weight_updates", "weight_update_pj"),
                    "trace_update": ("trace_updates", "trace_update_pj"),
                    "error_mac": ("error_macs", "error_mac_pj"),
                    "grad_op": ("grad_ops", "grad_op_pj"),
                    "learning_signal": ("learning_signals", "learning_signal_pj"),
                    "eligibility_update": ("eligibility_updates", "eligibility_update_pj")}
FAR_CORES = 0.5  # an all-in figure used on under half its operating point's cores is "far" from it
FAR_RATE = (0.5, 2.0)  # ... or at a firing rate outside this ratio of its operating point's


class CostError(ChipError):
    """A cost option the chip profile cannot support (names the file and field, or the option)."""


@dataclass
class CostReport:
    """One run priced on one chip (also importable as :data:`Estimate`). Units are in the field names (joules,
    seconds); ``None`` is unknown: not published, not priced, or left out on request -- never 0.

    Energy: ``energy_dynamic_j`` (counts x energy per action, the management cores' energy included; ``None`` for
    an all-in profile, whose figures cannot separate dynamic from static power: its total is
    ``energy_all_in_j``), ``energy_static_j`` (static power x simulated time as ``static_mode`` says; ``None``
    when unpublished, left out, or with no step time), ``energy_j`` (what is priced of their sum; a lower bound,
    ``lower_bound``, when something with a count has no price), ``energy_management_j`` (the part of the dynamic
    energy that is the management cores'), by action, by layer and by core (a core's SOPs, neuron updates and
    spikes plus an equal share of static power; routing, packets and memory traffic belong to the network).

    Bands: ``energy_low_j``/``energy_high_j``, ``energy_dynamic_low_j``/``_high_j``, ``latency_low_s``/``_high_s``
    from the profile's ``uncertainty`` factors (``validation``: calibrated, fitted or unvalidated; ``band_note``
    says where the factors come from); ``None`` where the value is unknown, and ``_high`` is ``None`` for a lower
    bound. Assumptions that can reorder chips: ``time_base`` (compute-bound step or real-time tick, with
    ``step_time_basis`` in words), ``placement``, ``static_mode``."""

    chip: str
    energy_j: float | None
    energy_by_action_j: dict[str, float]
    energy_by_layer_j: dict[str, float]
    energy_by_core_j: list[float]
    latency_s: float | None
    step_latency_s: float | None
    fits: bool | None
    cores_used: int
    limits_broken: list[str]
    unpriced: list[str]
    assumptions: list[str] = field(default_factory=list)
    samples: int = 1
    energy_dynamic_j: float | None = None
    energy_static_j: float | None = None
    static_mode: str = "whole-chip"
    static_assumption: str = ""
    unpriced_counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    fits_reason: str = ""
    estimate_kind: str = "counts x published figures"
    latency_model: str | None = None
    step_latency_simple_s: float | None = None
    latency_untimed: dict[str, int] = field(default_factory=dict)  # work in the run with no published time
    energy_management_j: float | None = None
    energy_all_in_j: float | None = None
    time_base: str = "compute"
    step_time_basis: str = ""
    placement: str = "packed"
    latency_per_sample_s: float | None = None
    validation: str = "unvalidated"
    band_note: str = ""
    energy_low_j: float | None = None
    energy_high_j: float | None = None
    energy_dynamic_low_j: float | None = None
    energy_dynamic_high_j: float | None = None
    latency_low_s: float | None = None
    latency_high_s: float | None = None
    energy_power_bound_j: float | None = None  # a published power bound x the run's real-time duration

    @property
    def latency_lower_bound(self) -> bool:
        """True when the run did work the latency model cannot time (a learning run's error MACs and gradient
        ops, weight writes where no write time is published): the latency is then at least ``latency_s``."""
        return bool(self.latency_untimed)

    @property
    def lower_bound(self) -> bool:
        """True when some action with a count has no price: the energy is then at least ``energy_j``."""
        return bool(self.unpriced)

    @property
    def priced(self) -> bool:
        return bool(self.energy_by_action_j)

    def energy_text(self, per_sample: bool = True) -> str:
        """The energy as shown (:func:`energy_text`); a lower bound whose band has an upper end (a published power
        bound: ``learning.learning_power_max_mw``) shows it too: ``≥ 3.1 µJ, 3 actions unpriced; ≤ 5 µJ``."""
        joules = None if self.energy_j is None else (self.energy_j / self.samples if per_sample else self.energy_j)
        text = energy_text(joules, len(self.unpriced), self.priced)
        if joules is not None and self.energy_power_bound_j is not None:
            bound = self.energy_power_bound_j / self.samples if per_sample else self.energy_power_bound_j
            exceeded = self.energy_j > self.energy_power_bound_j
            text += (f"; published power bound {bound * 1e6:.3g} µJ exceeded" if exceeded else
                     f"; ≤ {bound * 1e6:.3g} µJ (published power bound)")
        return text

    def to_dict(self) -> dict:
        """The record as JSON-able values (no NaN or infinity: unknown is None). Per-sample values divide by the
        batch; ``latency_per_sample_s`` is the latency a sample experiences."""
        n = self.samples

        def per(value: float | None) -> float | None:
            return None if value is None else value / n

        out = {"chip": self.chip, "energy_j": self.energy_j, "energy_dynamic_j": self.energy_dynamic_j,
               "energy_static_j": self.energy_static_j, "energy_management_j": self.energy_management_j,
               "energy_all_in_j": self.energy_all_in_j, "static_mode": self.static_mode,
               "static_assumption": self.static_assumption, "energy_by_action_j": self.energy_by_action_j,
               "energy_per_sample_j": per(self.energy_j), "energy_dynamic_per_sample_j": per(self.energy_dynamic_j),
               "energy_static_per_sample_j": per(self.energy_static_j), "lower_bound": self.lower_bound,
               "energy_text": self.energy_text(), "energy_low_j": self.energy_low_j,
               "energy_high_j": self.energy_high_j, "energy_per_sample_low_j": per(self.energy_low_j),
               "energy_per_sample_high_j": per(self.energy_high_j), "energy_dynamic_low_j": self.energy_dynamic_low_j,
               "energy_dynamic_high_j": self.energy_dynamic_high_j, "validation": self.validation,
               "band_note": self.band_note, "latency_s": self.latency_s, "latency_low_s": self.latency_low_s,
               "latency_high_s": self.latency_high_s, "latency_per_sample_s": self.latency_per_sample_s,
               "step_latency_s": self.step_latency_s, "latency_model": self.latency_model,
               "step_latency_simple_s": self.step_latency_simple_s, "time_base": self.time_base,
               "step_time_basis": self.step_time_basis, "placement": self.placement,
               "latency_lower_bound": self.latency_lower_bound, "latency_untimed": self.latency_untimed,
               "fits": self.fits, "fits_reason": self.fits_reason, "cores_used": self.cores_used,
               "limits_broken": self.limits_broken, "unpriced": self.unpriced,
               "unpriced_counts": self.unpriced_counts, "warnings": self.warnings,
               "estimate_kind": self.estimate_kind, "energy_by_layer_j": self.energy_by_layer_j,
               "energy_by_core_j": self.energy_by_core_j, "assumptions": self.assumptions,
               "energy_power_bound_j": self.energy_power_bound_j,
               "energy_per_sample_power_bound_j": per(self.energy_power_bound_j)}
        return _finite(out)


Estimate = CostReport


def _finite(value):
    """``value`` with every NaN or infinite float replaced by None (JSON has neither)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def latency_text(seconds: float | None, lower_bound: bool) -> str:
    """A latency in ms as a reader should see it: ``0.463``, ``≥ 0.463`` when some work has no published
    time, ``-`` when unknown."""
    if seconds is None:
        return "-"
    return f"{'≥ ' if lower_bound else ''}{seconds * 1e3:.3g}"


def energy_text(joules: float | None, unpriced: int, priced: bool = True, unit: str = "µJ") -> str:
    """An energy as a reader should see it: ``0.146 µJ``, ``≥ 0.146 µJ, 2 actions unpriced`` when some
    actions have no price, ``unpriced (3 actions)`` when nothing could be priced."""
    scale = {"µJ": 1e6, "uJ": 1e6, "mJ": 1e3, "J": 1.0, "nJ": 1e9}[unit]
    if joules is None or (not priced and unpriced):
        return f"unpriced ({unpriced} action{'s' if unpriced != 1 else ''})" if unpriced else "-"
    value = f"{joules * scale:.3g} {unit}"
    if unpriced:
        return f"≥ {value}, {unpriced} action{'s' if unpriced != 1 else ''} unpriced"
    return value


def band_text(low: float | None, high: float | None, unit: str = "µJ") -> str:
    """A band as a reader should see it: ``55-210 µJ``, ``≥ 55 µJ`` (no upper end), ``-`` (unknown)."""
    scale = {"µJ": 1e6, "mJ": 1e3, "J": 1.0, "nJ": 1e9, "ms": 1e3, "us": 1e6, "µs": 1e6, "s": 1.0}[unit]
    if low is None:
        return "-"
    if high is None:
        return f"≥ {low * scale:.2g} {unit}"
    return f"{low * scale:.2g}-{high * scale:.2g} {unit}"


def dense_macs(network: Network, counts: Counts, mapping: Mapping | None = None) -> dict[str, int]:
    """Multiply-accumulates a GPU performs for ``counts``'s run, per layer: every structural synapse every
    step and sample (spike or not), as a dense matrix product does. Learning heads without a placement count
    ``n_in x n_out``."""
    mapping = mapping or map_network(network, _NO_CAPACITY)
    out = {}
    per_step = counts.timesteps * counts.batch
    for index, lc in enumerate(counts.layers):
        synapses = mapping.layers[index].synapses if index < len(mapping.layers) else lc.n_in * lc.n_out
        out[lc.name] = int(synapses) * per_step
    return out


def estimate(network: Network, counts: Counts, chip: Chip, mapping: Mapping | None = None,
             static: str = "whole-chip", time_base: str | None = None, tick_us: float | None = None,
             placement: str | int | None = None) -> CostReport:
    """Price ``counts`` (a run of ``network``) on ``chip``.

    ``static``: one of ``STATIC_MODES``; ``time_base``: ``compute`` or ``tick`` (default: the profile's
    ``timing.time_base``); ``tick_us``: the real-time tick in microseconds (default: the profile's
    ``timing.tick_us``; giving it implies ``tick``); ``placement``: ``packed`` (default), ``spread``, ``N`` or
    ``N+input`` (:func:`hwsim.hardware.mapping.parse_placement`), used when ``mapping`` is not given."""
    if static not in STATIC_MODES:
        raise CostError(f"--static: unknown mode {static!r}; expected one of {', '.join(STATIC_MODES)}")
    base, tick_s, basis = _time_base(chip, time_base, tick_us)
    if mapping is None:
        per_core, input_cores, label = parse_placement(placement, network, chip)
        mapping = map_network(network, chip, counts, neurons_per_core=per_core, input_cores=input_cores)
        mapping.placement = label
    elif placement is not None:
        raise CostError("--placement: give a placement or a ready mapping, not both")
    if chip.kind == "gpu":
        report = _estimate_gpu(network, counts, chip, mapping, static)
        _add_bands(report, chip)
        return report
    by_action, by_layer, by_core, gaps, heads = _price_layers(counts, mapping, chip)
    unpriced = [f"{action}: {count} {'bytes' if 'bytes' in action else 'events'}, no {figure} in profile "
                f"{chip.name}" for (action, figure), count in gaps.items()]
    unpriced_counts = {action: count for (action, _), count in gaps.items()}
    step_latency, assumptions = step_latency_s(mapping, counts, chip)
    model = latency_model(chip) if step_latency is not None else None
    simple = step_latency if model != "detailed" else step_latency_s(mapping, counts, chip, model="simple")[0]
    if heads > 0:
        assumptions.append(f"{heads} learning head layers (local classifiers, auxiliary copies) priced by their "
                           f"totals, without placement or routing")
    assumptions += _recurrent_notes(network, counts)
    untimed = _untimed(counts, chip, step_latency, assumptions)
    samples = counts.batch
    if step_latency is not None and base == "tick":
        assumptions.append(f"time base: real-time tick of {tick_s * 1e6:g} us ({basis}); the work takes "
                           f"{step_latency * 1e6:.3g} us of it")
        step_latency = tick_s
    elif base == "tick":  # no published time per action: the step still lasts the tick
        assumptions.append(f"time base: real-time tick of {tick_s * 1e6:g} us ({basis}); {chip.name} publishes no "
                           f"time per action, so the step's work is assumed to fit in the tick")
        step_latency, model = tick_s, "tick"
    injected = int(counts.layers[0].total("spikes_in")) if counts.layers else 0
    latency, inject_note = _run_time(step_latency, counts.timesteps * samples, injected, chip, base)
    if inject_note:
        assumptions.append(inject_note)
    dynamic = float(sum(by_action.values()))
    report = CostReport(chip.name, dynamic, by_action, by_layer, [], latency, step_latency, mapping.fits,
                        mapping.cores_used, mapping.limits_broken, unpriced, mapping.assumptions + assumptions,
                        samples, energy_dynamic_j=dynamic, unpriced_counts=unpriced_counts,
                        fits_reason=mapping.fits_reason, latency_model=model, step_latency_simple_s=simple,
                        latency_untimed=untimed, time_base=base, step_time_basis=basis if base == "tick" else
                        _compute_basis(chip, model), placement=mapping.placement)
    report.latency_per_sample_s = None if latency is None else latency / samples
    _add_management(report, chip)
    _add_static(report, chip, static, mapping, counts)
    _check_weight_format(report, chip, counts)
    if report.energy_static_j:
        by_core += report.energy_static_j / len(by_core)
    report.energy_by_core_j = [float(x) for x in by_core]
    _add_bands(report, chip)
    _add_power_bound(report, chip, counts)
    unknown = neuron_model_unknown(network, chip)
    if unknown is not None:
        report.warnings.append(f"{chip.name}: whether it runs this network is unknown: {unknown}")
    return report


def _add_power_bound(report: CostReport, chip: Chip, counts: Counts) -> None:
    """The upper end of a learning run's band where the chip publishes an upper bound on its power while learning
    in real time (``learning.learning_power_max_mw`` at ``timing.tick_us`` per step; ReckOn: < 50 uW at 1 ms): that
    power x the run's real-time duration (T x B ticks) bounds its whole energy, static included. The priced energy
    (a lower bound where learning actions have no price) is its lower end. A run whose priced energy already exceeds
    the bound is busier than the published operating point: said, and no upper end is given."""
    power = chip.learning.learning_power_max_mw if chip.learning is not None else None
    if power is None or counts.phase != "learning" or report.energy_j is None:
        return
    tick_us = chip.timing.tick_us
    steps = counts.timesteps * counts.batch
    bound = power * 1e-3 * steps * tick_us * 1e-6
    source = chip.learning.source_of("learning_power_max_mw")
    report.energy_power_bound_j = bound
    if report.energy_j > bound:
        report.warnings.append(f"{chip.name}: the priced energy ({report.energy_j:.3g} J) exceeds the published "
                               f"real-time learning power bound ({power * 1e3:g} uW x {steps} steps x {tick_us:g} us "
                               f"= {bound:.3g} J): this run is busier than the published operating point")
        return
    report.energy_high_j = bound
    report.band_note += (f"; upper end: the published real-time learning power, < {power * 1e3:g} uW x {steps} "
                         f"steps x {tick_us:g} us ({source})")


def _recurrent_notes(network: Network, counts: Counts) -> list[str]:
    """What the estimate assumed for recurrent layers and adaptive (ALIF) neurons, with the recurrent SOP count."""
    notes = []
    layers = [layer for layer, _, _ in neuron_layers(network)]
    recurrent = [(lc.name, recurrent_sops(lc)) for layer, lc in zip(layers, counts.layers)
                 if isinstance(layer, Recurrent)]
    if recurrent:
        total = sum(lc.total("sop") for lc in counts.layers)
        notes.append(f"recurrent synapses: {sum(n for _, n in recurrent)} of the {total} SOPs are recurrent ("
                     + ", ".join(f"{name} {n}" for name, n in recurrent) + "), priced as SOPs; a recurrent layer's "
                     "spikes are routed to the next layer and back to every core of their own layer")
    if any(isinstance(layer.neuron, FloatALIF) for layer in layers):
        notes.append("adaptive (ALIF) neurons: each update priced as one neuron update (the adaptation variable is "
                     "part of the neuron state; its bytes are in the neuron-state traffic)")
    return notes


def _time_base(chip: Chip, time_base: str | None, tick_us: float | None) -> tuple[str, float | None, str]:
    """The time base asked for (or the profile's), the tick in seconds when it is ``tick``, and its basis."""
    t = chip.timing
    base = time_base or ("tick" if tick_us is not None else (t.time_base if t is not None else "compute"))
    if base not in TIME_BASES:
        raise CostError(f"--tick: unknown time base {base!r}; expected one of {', '.join(TIME_BASES)}")
    if base == "compute":
        if tick_us is not None:
            raise CostError("--tick: a tick in microseconds implies the tick time base, not 'compute'")
        return base, None, ""
    if tick_us is not None:
        if not (isinstance(tick_us, (int, float)) and math.isfinite(tick_us) and 1e-3 <= tick_us <= 1e8):
            raise CostError(f"--tick: the tick must be 0.001..1e8 microseconds, got {tick_us!r}")
        return base, tick_us * 1e-6, "given"
    if chip.kind == "gpu":
        raise CostError(f"--tick: {chip.name} is a GPU: it has no real-time tick (use the compute time base)")
    if t is not None and t.tick_us is not None:
        return base, t.tick_us * 1e-6, f"{chip.name}'s real-time tick ({t.source})"
    if t is not None and t.step_time_us is not None:
        return base, t.step_time_us * 1e-6, f"{chip.name}'s fixed step ({t.source})"
    raise CostError(f"{chip.path}: field 'timing.tick_us' is missing: {chip.name} publishes no real-time tick; "
                    f"give one (--tick MICROSECONDS) or use the compute time base")


def _compute_basis(chip: Chip, model: str | None) -> str:
    t = chip.timing
    if model is None:
        return "no published time: latency unknown"
    if model == "fixed tick":
        return f"{chip.name} runs at its fixed step ({t.source}): no faster compute-bound step is published"
    return f"compute-bound: the step takes its work ({model} model)"


def _run_time(step: float | None, steps: int, injected: int, chip: Chip, base: str) -> tuple[float | None, str]:
    """Simulated time of the run (s) and, where the management cores inject the input spikes one at a time
    (``system.input_spike_ns``, compute time base), the sentence saying so."""
    if step is None:
        return None, ""
    total = step * steps
    s = chip.system
    if base == "compute" and s is not None and s.input_spike_ns is not None and injected > 0:
        extra = injected * s.input_spike_ns * NS
        return total + extra, (f"{injected} input spikes injected by the management cores at "
                               f"{s.input_spike_ns:g} ns each: +{extra * 1e6:.3g} us ({s.basis}: {s.source})")
    return total, ""


def _untimed(counts: Counts, chip: Chip, step_latency: float | None, assumptions: list[str]) -> dict[str, int]:
    """Learning work with no published time (the latency is then a lower bound), by counter."""
    untimed: dict[str, int] = {}
    if counts.phase == "learning" and step_latency is not None:
        assumptions.append("latency counts the forward work, routing, barriers and the weight write-back where the "
                           "chip publishes its time; error MACs and gradient ops have no published time, so the "
                           "latency of a learning run is a lower bound")
        timing = chip.timing
        for counter in ("error_macs", "grad_ops", "trace_updates") + (
                () if timing is not None and timing.weight_update_ns is not None else ("weight_updates",)):
            total = sum(lc.total(counter) for lc in counts.layers)
            if total > 0:
                untimed[counter] = int(total)
    return untimed


def _price_layers(counts: Counts, mapping: Mapping, chip: Chip):
    """Dynamic energy of every layer's actions: ``(by_action, by_layer, by_core, gaps, heads)``; ``gaps`` maps
    (action, missing figure) to the count that could not be priced."""
    e = chip.energy
    by_action: dict[str, float] = {}
    by_layer = {lc.name: 0.0 for lc in counts.layers}
    by_core = np.zeros(max(mapping.cores_used, 1))
    all_in = bool(e and e.all_in)

    def add(action: str, layer: str, joules: float, cores: np.ndarray | None = None, per_core=None) -> None:
        by_action[action] = by_action.get(action, 0.0) + joules
        by_layer[layer] += joules
        if cores is not None and per_core is not None:
            by_core[cores] += per_core

    gaps: dict[tuple[str, str], int] = {}

    def missing(action: str, count: int, figure: str) -> None:
        if count > 0:
            gaps[(action, figure)] = gaps.get((action, figure), 0) + int(count)

    heads = len(counts.layers) - len(mapping.layers)
    for index, lc in enumerate(counts.layers):
        # learning heads (TTL-BPTT classifiers, STDL auxiliary copies) have no placement: priced by totals
        placement = mapping.layers[index] if index < len(mapping.layers) else None
        cores = None if placement is None else placement.first_core + np.arange(placement.cores)

        def split(attr: str, figure: float, placement=placement):
            return None if placement is None else _per_core(getattr(placement, attr)) * figure * PJ

        name = lc.name
        sops = lc.total("sop")
        sop_pj = None
        if e is not None:
            sop_pj = e.sop_conv_pj if lc.kind in ("conv2d", "sumpool2d") and e.sop_conv_pj is not None else e.sop_pj
        if sop_pj is not None:
            add("sop", name, sops * sop_pj * PJ, cores, split("sop_per_core", sop_pj))
        else:
            missing("sop", sops, "energy.sop_pj")

        updates, active = lc.total("neuron_updates"), lc.total("neuron_updates_active")
        if e is not None and e.neuron_update_active_pj is not None and e.neuron_update_idle_pj is not None:
            a, i = e.neuron_update_active_pj, e.neuron_update_idle_pj
            per_core = None if placement is None else _neuron_core_pj(placement, a, i) * PJ
            add("neuron_update", name, (active * a + (updates - active) * i) * PJ, cores, per_core)
        elif e is not None and e.neuron_update_pj is not None:
            add("neuron_update", name, updates * e.neuron_update_pj * PJ, cores,
                split("updates_per_core", e.neuron_update_pj))
        elif not all_in:
            missing("neuron_update", updates, "energy.neuron_update_pj (or _active_pj and _idle_pj)")

        spikes = lc.total("spikes_out")
        if e is not None and e.spike_out_pj is not None:
            add("spike_out", name, spikes * e.spike_out_pj * PJ, cores, split("spikes_per_core", e.spike_out_pj))
        elif not all_in:
            missing("spike_out", spikes, "energy.spike_out_pj")

        # packets and hops into the layer: the feed-forward ones and a recurrent layer's own spikes back to its cores
        packets = 0 if placement is None else placement.packets_in + placement.packets_recurrent
        if e is not None and e.packet_pj is not None:
            add("packet", name, packets * e.packet_pj * PJ)

        hops_ew = 0 if placement is None else placement.hops_ew_in + placement.hops_ew_recurrent
        hops_ns = 0 if placement is None else placement.hops_ns_in + placement.hops_ns_recurrent
        if e is not None and e.hop_ew_pj is not None and e.hop_ns_pj is not None:
            add("routing", name, (hops_ew * e.hop_ew_pj + hops_ns * e.hop_ns_pj) * PJ)
        elif e is not None and e.hop_pj is not None:
            add("routing", name, (hops_ew + hops_ns) * e.hop_pj * PJ)
        elif not all_in and not (e is not None and e.includes_routing):
            missing("routing", hops_ew + hops_ns, "energy.hop_pj (or hop_ew_pj and hop_ns_pj)")

        # the bytes no action's figure can include: all of them when the actions exclude their memory accesses,
        # else only the state kept outside every action (BPTT's and TTL-BPTT's history)
        covered = e is not None and e.includes_memory
        kinds = STORED_KINDS if covered else tuple(lc.mem_read_bytes)
        read = int(sum(lc.mem_read_bytes[k].sum() for k in kinds if k in lc.mem_read_bytes))
        write = int(sum(lc.mem_write_bytes[k].sum() for k in kinds if k in lc.mem_write_bytes))
        what = "history bytes" if covered else "memory bytes"
        m = chip.memory
        if m is not None and m.read_pj_per_byte is not None:
            add("memory", name, read * m.read_pj_per_byte * PJ)
        else:
            missing(f"{what} read", read, "memory.read_pj_per_byte")
        if m is not None and m.write_pj_per_byte is not None:
            add("memory", name, write * m.write_pj_per_byte * PJ)
        else:
            missing(f"{what} written", write, "memory.write_pj_per_byte")

        for action, (counter, figure) in LEARNING_ACTIONS.items():
            count = lc.total(counter)
            if counter == "weight_updates" and placement is not None and placement.weight_updates_per_core is not None:
                count = int(placement.weight_updates_per_core.sum())  # conv: every stored copy of a weight is written
            value = getattr(e, figure) if e is not None else None
            if value is not None:
                add(action, name, count * value * PJ)
            else:
                missing(action, count, f"energy.{figure}")

    return by_action, by_layer, by_core, gaps, heads


def _add_management(report: CostReport, chip: Chip) -> None:
    """The management cores' power x the run's wall time, as dynamic energy (action ``management``)."""
    s = chip.system
    if s is None or s.management_power_mw is None:
        return
    if report.latency_s is None:
        report.unpriced.append(f"management: {s.management_power_mw} mW but no step time for {chip.name}")
        report.unpriced_counts["management"] = 1
        return
    joules = s.management_power_mw * 1e-3 * report.latency_s
    report.energy_by_action_j["management"] = joules
    report.energy_management_j = joules
    report.energy_dynamic_j = (report.energy_dynamic_j or 0.0) + joules
    report.energy_j = report.energy_dynamic_j
    report.assumptions.append(f"management cores: {s.management_power_mw:g} mW while the run is active x "
                              f"{report.latency_s * 1e6:.4g} us ({s.basis}: {s.source})")


def _add_static(report: CostReport, chip: Chip, mode: str, mapping: Mapping, counts: Counts) -> None:
    """Static energy, its mode and assumption; an all-in figure's operating-point check and floor. Unknown
    static energy stays None; an all-in profile's dynamic energy is None (its figures include static power)."""
    e, s = chip.energy, chip.static
    if mode == "cores-used" and s is not None and not s.scales_with_cores:
        raise CostError(f"{chip.path}: field 'static.scales_with_cores' is not true: its source gives the static "
                        f"power of the whole chip only; use --static whole-chip or none")
    if mode == "cores-used" and s is None and chip.kind != "gpu" and not (e and e.all_in):
        raise CostError(f"{chip.path}: field 'static' is missing: --static cores-used needs static.static_power_mw "
                        f"with static.scales_with_cores: true")
    if not report.priced:
        report.energy_j = report.energy_dynamic_j = None
    if e is not None and e.all_in:
        _all_in_static(report, chip, mode, mapping, counts)
        return
    if mode == "none":
        report.static_mode = "none"
        report.static_assumption = "static power left out (--static none): the energy is dynamic only"
        return
    if s is None:
        report.static_mode = "unpublished"
        report.static_assumption = f"no static power published for {chip.name}"
        report.unpriced.append(f"static: no static power published for {chip.name}")
        report.unpriced_counts["static"] = counts.timesteps * counts.batch
        return
    latency = report.latency_s
    if latency is None:
        report.static_mode = mode
        report.static_assumption = f"{s.static_power_mw} mW, but no step time: static energy unknown"
        report.unpriced.append(f"static: {s.static_power_mw} mW but no step time for {chip.name}")
        report.unpriced_counts["static"] = counts.timesteps * counts.batch
        return
    share = 1.0
    if mode == "cores-used":
        share = min(1.0, mapping.cores_used / chip.capacity.cores)
        report.static_assumption = (f"{s.static_power_mw} mW x {mapping.cores_used}/{chip.capacity.cores} cores in "
                                    f"use x simulated time")
    elif chip.kind == "gpu":
        report.static_assumption = f"{s.static_power_mw / 1e3:g} W idle power of the whole GPU x run time"
    else:
        report.static_assumption = (f"{s.static_power_mw} mW for the whole chip x simulated time ({s.basis}: "
                                    f"{s.source})")
    report.static_mode = mode
    report.energy_static_j = s.static_power_mw * 1e-3 * share * latency
    report.energy_by_action_j["static"] = report.energy_static_j
    report.energy_j = (report.energy_dynamic_j or 0.0) + report.energy_static_j


def _all_in_static(report: CostReport, chip: Chip, mode: str, mapping: Mapping, counts: Counts) -> None:
    """An all-in profile: the priced figure includes static power, so dynamic and static are unknown apart
    (None); the total never drops below static power x time (floored, then a lower bound)."""
    s = chip.static
    all_in = report.energy_dynamic_j
    report.energy_all_in_j = all_in
    report.energy_dynamic_j = None
    report.energy_j = all_in
    report.static_mode = "all-in"
    report.static_assumption = "static power included in the all-in figures (valid at their operating point)"
    _check_operating_point(report, chip, mapping, counts)
    latency = report.latency_s
    if mode != "none" and s is not None and latency is not None and all_in is not None:
        floor = s.static_power_mw * 1e-3 * latency
        if all_in < floor:
            report.energy_by_action_j["static"] = floor - all_in
            report.energy_j = floor
            report.static_mode = "all-in, floored at static x time"
            report.warnings.append(
                f"{chip.name}: the all-in figures give {all_in:.3g} J, below the static power alone "
                f"({s.static_power_mw} mW x {latency:.3g} s = {floor:.3g} J): floored at static x time")
            report.static_assumption += f"; floored at {s.static_power_mw} mW x time (whole chip)"
            # the run's own dynamic energy comes on top of the static power, but all-in figures cannot say
            # how much it is: the floor is a lower bound, and says so
            sops = sum(lc.total("sop") for lc in counts.layers)
            report.unpriced.append(f"dynamic energy above static power: {sops} SOPs, which {chip.name}'s all-in "
                                   f"figures cannot separate from its static power (floored at static x time)")
            report.unpriced_counts["dynamic above static"] = sops


def _add_bands(report: CostReport, chip: Chip) -> None:
    """``_low``/``_high`` of every known energy and latency from the profile's ``uncertainty`` factors; static
    energy takes ``static_factor`` (else the energy factor); a lower bound has no upper end."""
    u = chip.uncertainty
    if u is None:
        report.validation = "unvalidated"
        report.band_note = f"{chip.name} carries no uncertainty: no band"
        return
    report.validation = u.status
    fe = u.energy_factor
    fs = u.static_factor or fe
    report.band_note = (f"{u.status}: energy x/{fe:g}" + (f", static x/{fs:g}" if fs != fe else "")
                        + (f", latency x/{u.latency_factor:g}" if u.latency_factor else "") + f" ({u.source})")
    dyn = report.energy_dynamic_j if report.energy_dynamic_j is not None else report.energy_all_in_j
    stat = report.energy_static_j or 0.0
    if dyn is not None:
        report.energy_dynamic_low_j, report.energy_dynamic_high_j = dyn / fe, dyn * fe
    if report.energy_j is not None:
        floor = report.energy_by_action_j.get("static", 0.0) if report.energy_all_in_j is not None else 0.0
        dyn_part = report.energy_j - stat - floor
        report.energy_low_j = dyn_part / fe + (stat + floor) / fs
        report.energy_high_j = dyn_part * fe + (stat + floor) * fs
    if report.lower_bound:
        report.energy_high_j = None
        report.energy_dynamic_high_j = None if report.unpriced_counts.keys() - {"static"} else \
            report.energy_dynamic_high_j
    if report.latency_s is not None and u.latency_factor is not None:
        report.latency_low_s = report.latency_s / u.latency_factor
        report.latency_high_s = None if report.latency_lower_bound else report.latency_s * u.latency_factor


def _check_weight_format(report: CostReport, chip: Chip, counts: Counts) -> None:
    """Warn when the chip's synapses hold fewer bits than the 8-bit weights of hwsim's fixed-point form (the
    form a network takes on a chip): the network as given cannot run there without training for that weight
    format, which hwsim does not model (the fit counts capacity only)."""
    bits = chip.precision.weight_bits if chip.precision is not None else None
    fixed_bits = 8 * WEIGHT_BYTES["fixed"]
    if bits is not None and bits < fixed_bits:
        note = f" ({chip.precision.note})" if chip.precision.note else ""
        report.warnings.append(f"{chip.name}: {bits}-bit synapses{note} cannot hold {fixed_bits}-bit weights; the "
                               f"network would need training for that weight format (not modelled): the counts, "
                               f"energy and fit are those of the network as given")


def _check_operating_point(report: CostReport, chip: Chip, mapping: Mapping, counts: Counts) -> None:
    op = chip.energy.operating_point
    neurons = sum(lc.n_out for lc in counts.layers[:len(mapping.layers)])
    spikes = sum(lc.total("spikes_out") for lc in counts.layers[:len(mapping.layers)])
    tick_s = report.step_latency_s if report.step_latency_s else op.tick_us * 1e-6
    rate_hz = spikes / max(neurons * counts.timesteps * counts.batch, 1) / tick_s
    far = []
    if mapping.cores_used < FAR_CORES * op.cores:
        far.append(f"{mapping.cores_used} cores in use against {op.cores}")
    if not FAR_RATE[0] * op.rate_hz <= rate_hz <= FAR_RATE[1] * op.rate_hz:
        far.append(f"a mean firing rate of {rate_hz:.3g} Hz against {op.rate_hz:g} Hz")
    if far:
        report.warnings.append(f"{chip.name}: its all-in figures hold at {op.rate_hz:g} Hz on {op.cores} cores with "
                               f"{op.tick_us:g} us ticks; this run is far from that point ({', '.join(far)})")


def _estimate_gpu(network: Network, counts: Counts, chip: Chip, mapping: Mapping, static: str) -> CostReport:
    e, t = chip.energy, chip.timing
    macs = dense_macs(network, counts, mapping)
    learning = counts.phase == "learning"
    factor = 3 if learning else 1  # training: forward, error back-propagation and weight-gradient products
    by_action: dict[str, float] = {}
    by_layer = {lc.name: 0.0 for lc in counts.layers}
    unpriced_counts: dict[str, int] = {}
    for lc in counts.layers:
        work = {"dense_mac": (macs[lc.name] * factor, e.dense_mac_pj if e else None),
                "neuron_update": (lc.total("neuron_updates"), e.neuron_update_pj if e else None)}
        for action, (count, figure) in work.items():
            if figure is None:
                if count:
                    unpriced_counts[action] = unpriced_counts.get(action, 0) + count
                continue
            by_action[action] = by_action.get(action, 0.0) + count * figure * PJ
            by_layer[lc.name] += count * figure * PJ
    unpriced = [f"{action}: {count} events, no figure in profile {chip.name}"
                for action, count in unpriced_counts.items()]
    assumptions = [f"GPU estimate: dense matrix products of every synapse every step ({sum(macs.values())} MACs"
                   + (", x3 for training: forward, error and weight-gradient products" if learning else "")
                   + "), an elementwise LIF update per neuron, the batch in parallel"]
    step = None
    if t is not None and t.kernel_launch_us is not None and t.dense_mac_ns is not None:
        kernels = len(counts.layers) * (t.kernels_per_layer or 1) * factor
        per_step_macs = sum(macs.values()) * factor / counts.timesteps
        step = kernels * t.kernel_launch_us * 1e-6 + per_step_macs * t.dense_mac_ns * NS
        assumptions.append(f"latency per step: {kernels} kernel launches x {t.kernel_launch_us} us + "
                           f"{per_step_macs:.3g} MACs at peak throughput (launch-bound for small nets); a sample "
                           f"waits for its whole batch of {counts.batch}")
    else:
        assumptions.append(f"{chip.name} publishes no kernel launch time or MAC throughput: latency not computed")
    latency = None if step is None else step * counts.timesteps
    dynamic = float(sum(by_action.values()))
    report = CostReport(chip.name, dynamic, by_action, by_layer, [], latency, step, mapping.fits, mapping.cores_used,
                        mapping.limits_broken, unpriced, mapping.assumptions + assumptions, counts.batch,
                        energy_dynamic_j=dynamic, unpriced_counts=unpriced_counts, fits_reason=mapping.fits_reason,
                        estimate_kind="estimate: a GPU running the dense network", latency_model="gpu launch",
                        step_time_basis="launch-bound: kernel launches + MACs at peak throughput",
                        placement="whole batch on the GPU")
    report.latency_per_sample_s = latency  # the batch runs together: every sample waits for all of it
    _add_static(report, chip, static, mapping, counts)
    report.energy_by_core_j = [report.energy_j] if report.energy_j is not None else []
    return report


@dataclass
class Activity:
    """Activity totals of a run, priced by :func:`price_activity` without a network or a simulation: a source's
    published counts, a profiler's, or a recurrent network's stated activity. Counts are totals over the run
    (all ``steps`` x ``samples``); ``busiest_core_*`` are the busiest core's counts per step (for the latency);
    ``injected_spikes``: input spikes the management cores inject from the host; ``tiles_used``: for the barrier.
    Unknown counts are None and make the energy a lower bound where the chip prices them."""

    steps: int
    samples: int
    sop: int
    neuron_updates: int
    spikes_out: int
    neuron_updates_active: int | None = None
    packets: int = 0
    hops: int = 0
    injected_spikes: int = 0
    cores_used: int = 1
    tiles_used: int = 1
    busiest_core_sop: float | None = None
    busiest_core_updates: float | None = None
    busiest_core_spikes: float = 0.0


def price_activity(chip: Chip, activity: Activity, static: str = "whole-chip", time_base: str | None = None,
                   tick_us: float | None = None) -> CostReport:
    """Price ``activity`` on ``chip`` with the same figures and rules as :func:`estimate` (dynamic energy per
    action, the simple latency model from the busiest core, input injection, management power, static power,
    bands). Used to hold the profiles against silicon measurements apart from any simulation."""
    if static not in STATIC_MODES:
        raise CostError(f"--static: unknown mode {static!r}; expected one of {', '.join(STATIC_MODES)}")
    base, tick_s, basis = _time_base(chip, time_base, tick_us)
    e = chip.energy
    a = activity
    active = a.neuron_updates_active
    terms: dict[str, tuple[float | None, str]] = {"sop": (a.sop * e.sop_pj if e and e.sop_pj is not None else None,
                                                          "energy.sop_pj")}
    if e is not None and e.neuron_update_active_pj is not None and e.neuron_update_idle_pj is not None:
        idle_share = a.neuron_updates - (active if active is not None else 0)
        upd = (active or 0) * e.neuron_update_active_pj + idle_share * e.neuron_update_idle_pj
        terms["neuron_update"] = (upd, "energy.neuron_update_active_pj")
    else:
        terms["neuron_update"] = (a.neuron_updates * e.neuron_update_pj if e and e.neuron_update_pj is not None
                                  else None, "energy.neuron_update_pj")
    terms["spike_out"] = (a.spikes_out * e.spike_out_pj if e and e.spike_out_pj is not None else None,
                          "energy.spike_out_pj")
    terms["packet"] = (a.packets * e.packet_pj if e and e.packet_pj is not None else None, "energy.packet_pj")
    hop = (e.hop_pj if e.hop_pj is not None else e.hop_ew_pj) if e is not None else None
    terms["routing"] = (a.hops * hop if hop is not None else None, "energy.hop_pj")
    counts_of = {"sop": a.sop, "neuron_update": a.neuron_updates, "spike_out": a.spikes_out, "packet": a.packets,
                 "routing": a.hops}
    by_action, unpriced, unpriced_counts = {}, [], {}
    all_in = bool(e and e.all_in)
    for action, (pj, figure) in terms.items():
        if pj is not None:
            if counts_of[action] > 0:
                by_action[action] = pj * PJ
        elif counts_of[action] > 0 and not (all_in or (action == "routing" and e is not None and e.includes_routing)
                                            or (action == "packet")):
            unpriced.append(f"{action}: {counts_of[action]} events, no {figure} in profile {chip.name}")
            unpriced_counts[action] = counts_of[action]
    step, assumptions = _activity_step(chip, a)
    if step is not None and base == "tick":
        step = tick_s
    latency, note = _run_time(step, a.steps * a.samples, a.injected_spikes, chip, base)
    assumptions += [note] if note else []
    dynamic = float(sum(by_action.values()))
    report = CostReport(chip.name, dynamic, by_action, {}, [], latency, step, None, a.cores_used, [], unpriced,
                        assumptions, a.samples, energy_dynamic_j=dynamic, unpriced_counts=unpriced_counts,
                        estimate_kind="activity totals x published figures", latency_model=None if step is None
                        else ("tick" if base == "tick" else "simple (busiest core)"), time_base=base,
                        step_time_basis=basis if base == "tick" else "compute-bound: the busiest core's work",
                        placement=f"{a.cores_used} cores (as the source ran it)")
    report.latency_per_sample_s = None if latency is None else latency / a.samples
    _add_management(report, chip)
    _add_static_activity(report, chip, static, a)
    _add_bands(report, chip)
    return report


def _activity_step(chip: Chip, a: Activity) -> tuple[float | None, list[str]]:
    """The simple step latency from the busiest core's counts per step (+ barrier), or a fixed step."""
    fixed = _fixed_step(chip)
    if fixed is not None:
        return fixed[0], fixed[1] if fixed[0] is None else []
    t = chip.timing
    if t.sop_ns is None or a.busiest_core_sop is None:
        return None, [f"{chip.name}: no time per SOP or no busiest-core counts: latency not computed"]
    update_ns = t.neuron_update_ns if t.neuron_update_ns is not None else t.neuron_update_idle_ns
    ns = a.busiest_core_sop * t.sop_ns + (a.busiest_core_updates or 0.0) * (update_ns or 0.0)
    ns += a.busiest_core_spikes * (t.spike_out_ns or 0.0)
    if t.barrier_ns:
        ns += _barrier_ns(t.barrier_ns, a.tiles_used)
    return ns * NS, ["latency: the busiest core's SOPs, neuron updates and spikes per step x the chip's times + "
                     "the barrier (simple model)"]


def _add_static_activity(report: CostReport, chip: Chip, mode: str, a: Activity) -> None:
    """Static energy of priced activity: whole chip, cores used (``a.cores_used`` of the chip's cores) or none."""
    s, e = chip.static, chip.energy
    if e is not None and e.all_in:
        report.energy_all_in_j, report.energy_dynamic_j = report.energy_dynamic_j, None
        report.static_mode = "all-in"
        report.static_assumption = "static power included in the all-in figures (valid at their operating point)"
        return
    if mode == "none" or s is None or report.latency_s is None:
        report.static_mode = "none" if mode == "none" else "unpublished" if s is None else mode
        if mode != "none":
            report.unpriced.append(f"static: no static power or no step time for {chip.name}")
            report.unpriced_counts["static"] = a.steps * a.samples
        return
    share = min(1.0, a.cores_used / chip.capacity.cores) if mode == "cores-used" and chip.capacity else 1.0
    report.static_mode = mode
    report.energy_static_j = s.static_power_mw * 1e-3 * share * report.latency_s
    report.energy_by_action_j["static"] = report.energy_static_j
    report.energy_j = (report.energy_dynamic_j or 0.0) + report.energy_static_j
    report.static_assumption = (f"{s.static_power_mw} mW" + (f" x {a.cores_used}/{chip.capacity.cores} cores"
                                                             if share < 1.0 else " (whole chip)") + " x time")


def assumption_flips(reports: dict[str, dict[str, CostReport]], metric: str = "energy_j") -> list[str]:
    """Which alternative assumptions reorder the chips: ``reports`` maps an assumption's label (e.g.
    ``"time base: compute"``, ``"time base: tick"``) to ``{chip: report}`` priced under it; the first label is the
    reference. Returns one sentence per pair of chips whose order by ``metric`` (per sample) differs between the
    reference and another label, naming both values; empty when no flip reorders them. Pairs whose bands overlap
    under the reference are said to be ties already (``distinguishable``)."""
    labels = list(reports)
    if not labels:
        return []
    ref = labels[0]
    out = []
    for label in labels[1:]:
        chips_here = [c for c in reports[ref] if c in reports[label]]
        for i, a in enumerate(chips_here):
            for b in chips_here[i + 1:]:
                before = _order(reports[ref][a], reports[ref][b], metric)
                after = _order(reports[label][a], reports[label][b], metric)
                if before is None or after is None or before == after:
                    continue
                tie = "" if distinguishable(reports[ref][a], reports[ref][b]) else " (their bands overlap already)"
                first, second = (a, b) if before < 0 else (b, a)
                out.append(f"{first} ranks before {second} under '{ref}' but after it under '{label}'{tie}")
    return out


def _order(a: CostReport, b: CostReport, metric: str) -> int | None:
    """-1 when ``a`` comes first by ``metric`` per sample, 1 when ``b`` does, 0 on a tie, None when unknown. A
    lower bound orders only when it already exceeds the other's exact value."""
    x, y = getattr(a, metric), getattr(b, metric)
    if x is None or y is None or (a.lower_bound and b.lower_bound):
        return None
    x, y = x / a.samples, y / b.samples
    if a.lower_bound:
        return 1 if x > y else None
    if b.lower_bound:
        return -1 if y > x else None
    return -1 if x < y else 1 if x > y else 0


def distinguishable(a: CostReport, b: CostReport) -> bool:
    """True when the energy bands of ``a`` and ``b`` (per sample) do not overlap; False when they do, or when
    either is a lower bound or unknown (then no order between them is shown as a rank)."""
    if a.energy_j is None or b.energy_j is None or a.lower_bound or b.lower_bound:
        return False
    lows = [(r.energy_low_j if r.energy_low_j is not None else r.energy_j) / r.samples for r in (a, b)]
    highs = [(r.energy_high_j if r.energy_high_j is not None else r.energy_j) / r.samples for r in (a, b)]
    return highs[0] < lows[1] or highs[1] < lows[0]


def compare_assumptions(network: Network, counts: Counts, chips_list: list[Chip],
                        static: str = "whole-chip") -> dict[str, list[str]]:
    """Price ``counts`` on every chip under the default assumptions and under each alternative (time base: the
    real-time tick where a chip publishes one; placement: spread; static: none) and say, per assumption, which
    pairs of chips it reorders (:func:`assumption_flips`). Chips that cannot take an alternative keep their
    default under it (said in the sentence's label)."""
    def run(**options) -> dict[str, CostReport]:
        out = {}
        for chip in chips_list:
            try:
                out[chip.name] = estimate(network, counts, chip, **options)
            except (CostError, ValueError):
                out[chip.name] = estimate(network, counts, chip, static=static)
        return out

    default = run(static=static)
    alternatives = {"time base: real-time tick": run(static=static, time_base="tick"),
                    "placement: spread": run(static=static, placement="spread"),
                    "static: none": run(static="none")}
    return {label: assumption_flips({"default": default, label: reports})
            for label, reports in alternatives.items()}


def latency_model(chip: Chip) -> str:
    """The step-latency model ``chip``'s figures use: ``fixed tick``, ``simple``, ``detailed`` or ``gpu launch``."""
    t = chip.timing
    if chip.kind == "gpu":
        return "gpu launch"
    if t is not None and (t.step_time_us is not None or (t.cycles_per_step is not None and t.clock_mhz)):
        return "fixed tick"
    return t.model if t is not None else "simple"


def _fixed_step(chip: Chip) -> tuple[float | None, list[str]] | None:
    """A step time that does not depend on the work: none published (None seconds), a published step time, or a
    fixed cycle count at the clock; None when the step is compute-bound (the caller times the work)."""
    t = chip.timing
    if t is None:
        return None, [f"{chip.name} publishes no timing: latency not computed"]
    if t.step_time_us is not None:
        return t.step_time_us * 1e-6, []
    if t.cycles_per_step is not None and t.clock_mhz:
        return t.cycles_per_step / (t.clock_mhz * 1e6), [f"fixed step: {t.cycles_per_step} cycles at "
                                                         f"{t.clock_mhz:g} MHz"]
    return None


def step_latency_s(mapping: Mapping, counts: Counts, chip: Chip,
                   model: str | None = None) -> tuple[float | None, list[str]]:
    """Seconds per time step on ``chip`` (see module docstring) and the assumptions it took; ``model``
    (``simple`` or ``detailed``) overrides the profile's ``timing.model``."""
    fixed = _fixed_step(chip)
    if fixed is not None:
        return fixed
    t = chip.timing
    if t.sop_ns is None:
        return None, [f"{chip.name} publishes no time per SOP: latency not computed"]
    work = np.zeros(max(mapping.cores_used, 1))  # per core: layers sharing a core add up
    for k, p in enumerate(mapping.layers):
        ns = _per_core(p.sop_per_core) * t.sop_ns
        if t.neuron_update_active_ns is not None and t.neuron_update_idle_ns is not None:
            ns = ns + _neuron_core_pj(p, t.neuron_update_active_ns, t.neuron_update_idle_ns)
        elif t.neuron_update_ns is not None:
            ns = ns + _per_core(p.updates_per_core) * t.neuron_update_ns
        if t.spike_out_ns is not None:
            ns = ns + _per_core(p.spikes_per_core) * t.spike_out_ns
        if t.packet_in_ns is not None:  # every packet into this layer (its own recurrent ones too) is received here
            ns = ns + (p.packets_in + p.packets_recurrent) / p.cores * t.packet_in_ns
        sent = (mapping.layers[k + 1].packets_in if k + 1 < len(mapping.layers) else 0) + p.packets_recurrent
        if t.packet_out_ns is not None and sent:
            fan = sent / max(int(_per_core(p.spikes_per_core).sum()), 1)
            ns = ns + _per_core(p.spikes_per_core) * fan * t.packet_out_ns
        if t.weight_update_ns is not None and p.weight_updates_per_core is not None:
            ns = ns + _per_core(p.weight_updates_per_core) * t.weight_update_ns
        work[p.first_core:p.first_core + p.cores] += ns
    per_step = counts.timesteps * counts.batch
    busiest = float(work.max()) / per_step
    hop_ns = max(t.hop_ew_ns or 0.0, t.hop_ns_ns or 0.0)
    routing = max(max(p.max_hops_in, p.max_hops_recurrent) for p in mapping.layers) * hop_ns
    barrier = _barrier_ns(t.barrier_ns, mapping.tiles_used) if t.barrier_ns else 0.0
    if (model or t.model) == "detailed":
        if t.model != "detailed" and (t.packet_in_ns is None or t.packet_out_ns is None or
                                      t.link_buffer_messages is None):
            raise CostError(f"{chip.path}: timing.model detailed needs timing.packet_in_ns, packet_out_ns and "
                            f"link_buffer_messages")
        schedule, assumptions = detailed_step_latency_ns(mapping, counts, chip)
        learning = 0.0  # the weight write-back follows the step's messages (Loihi's learning phase)
        if t.weight_update_ns is not None:
            writes = [_per_core(p.weight_updates_per_core) for p in mapping.layers
                      if p.weight_updates_per_core is not None]
            learning = max((float(w.max()) for w in writes), default=0.0) * t.weight_update_ns / per_step
        return (float(schedule.mean()) + learning + barrier) * NS, assumptions
    return (busiest + routing + barrier) * NS, []


def _barrier_ns(points, tiles: int) -> float:
    xs = [p.tiles for p in points]
    ys = [p.ns for p in points]
    return float(np.interp(tiles, xs, ys))


def _per_core(values: np.ndarray | None) -> np.ndarray:
    if values is None:
        raise ValueError("the mapping holds no per-core work: build it with the run's counts")
    return values.astype(np.float64)


def _neuron_core_pj(placement, active_figure: float, idle_figure: float) -> np.ndarray:
    active = _per_core(placement.active_per_core)
    idle = _per_core(placement.updates_per_core) - active
    return active * active_figure + idle * idle_figure


_NO_CAPACITY = Chip.model_validate({"name": "structure_only", "full_name": "structure only (no limits)"})
__all__ = ["Activity", "CostError", "CostReport", "Estimate", "STATIC_MODES", "TIME_BASES", "assumption_flips",
           "band_text", "compare_assumptions", "dense_macs", "distinguishable", "energy_text", "estimate",
           "latency_model", "price_activity", "step_latency_s"]
