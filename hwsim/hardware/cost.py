"""The cost model: counts x a chip's energy per action (dynamic), plus static power x simulated time.

Dynamic energy (joules) by action, each from exact counts and one figure of the chip profile:

* ``sop`` -- SOPs x ``sop_pj`` (conv and pool layers: ``sop_conv_pj`` when the chip gives one);
* ``neuron_update`` -- active updates x ``neuron_update_active_pj`` + idle x ``neuron_update_idle_pj``
  when both are published, else all updates x ``neuron_update_pj``;
* ``spike_out`` -- spikes emitted x ``spike_out_pj``;
* ``packet`` -- packets x ``packet_pj``: one packet per spike and destination core, the input layer's
  included (SANA-FE's message-out energy);
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
(the difference is reported as static energy, "floored"; the run's dynamic energy above static power is then
unknown, so the floored figure is a lower bound, ``≥``).

An action with a count but no figure is listed in ``unpriced`` (with its count in ``unpriced_counts``) and
the energy is then a lower bound (``lower_bound``), printed as ``≥ 0.146 µJ, 2 actions unpriced``;
nothing is invented, nothing unpriced is shown as zero.

Latency per step, by the profile's ``timing.model``:

* ``simple`` (default) -- the busiest core's work (its SOPs, active/idle neuron updates, spikes, packets
  received and sent and, when learning, weights written x the chip's time per action) averaged over the run's
  steps and samples, plus the longest route (hops x hop time) and the barrier time for the tiles in use (linear
  between the published points, clamped at the ends);
* ``detailed`` -- every spike message of every step scheduled: a receiver handles one message at a time and
  cannot start one before it arrives, a sender stalls when its route's link buffers are full
  (:mod:`hwsim.hardware.noc_timing`, after Boyle et al., SANA-FE, IEEE TCAD 2025), plus the same barrier. The simple
  figure is reported next to it (``step_latency_simple_s``).

A chip with a fixed tick (``timing.step_time_us``, or ``cycles_per_step`` at ``clock_mhz``) runs at that tick.
Simulated time = T x B x step latency.

A GPU (``kind: gpu``) is priced as it runs the network: dense matrix products of every synapse every step
(its own count, :func:`dense_macs`) and an elementwise neuron update, a batch at a time; idle power x time +
dynamic energy per MAC; a launch-bound latency per step (kernels x launch time + MACs at peak). It is an
estimate and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.chips import ChipError
from hwsim.chips.schema import Chip
from hwsim.hardware.mapping import Mapping, map_network
from hwsim.hardware.noc_timing import detailed_step_latency_ns
from hwsim.sim.counts import WEIGHT_BYTES, Counts
from hwsim.sim.network import Network

PJ = 1e-12
STORED_KINDS = ("history",)  # memory kinds no action accesses: stored for later, priced as memory traffic
NS = 1e-9
STATIC_MODES = ("whole-chip", "cores-used", "none")
LEARNING_ACTIONS = {"weight_update": ("weight_updates", "weight_update_pj"),
                    "trace_update": ("trace_updates", "trace_update_pj"),
                    "error_mac": ("error_macs", "error_mac_pj"),
                    "grad_op": ("grad_ops", "grad_op_pj")}
FAR_CORES = 0.5  # an all-in figure used on under half its operating point's cores is "far" from it
FAR_RATE = (0.5, 2.0)  # ... or at a firing rate outside this ratio of its operating point's


class CostError(ChipError):
    """A cost option the chip profile cannot support (names the file and field)."""


@dataclass
class CostReport:
    """Energy (J), latency (s) and fit of one run on one chip: dynamic and static energy apart and their sum,
    by action, by layer and by core (a core's SOPs, neuron updates and spikes plus an equal share of static
    power; routing, packets and memory traffic belong to the network, not a core)."""

    chip: str
    energy_j: float
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
    energy_dynamic_j: float = 0.0
    energy_static_j: float = 0.0
    static_mode: str = "whole-chip"
    static_assumption: str = ""
    unpriced_counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    fits_reason: str = ""
    estimate_kind: str = "counts x published figures"
    latency_model: str | None = None
    step_latency_simple_s: float | None = None
    latency_untimed: dict[str, int] = field(default_factory=dict)  # work in the run with no published time

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
        joules = self.energy_j / self.samples if per_sample else self.energy_j
        return energy_text(joules, len(self.unpriced), self.priced)

    def to_dict(self) -> dict:
        n = self.samples
        return {"chip": self.chip, "energy_j": self.energy_j, "energy_dynamic_j": self.energy_dynamic_j,
                "energy_static_j": self.energy_static_j, "static_mode": self.static_mode,
                "static_assumption": self.static_assumption, "energy_by_action_j": self.energy_by_action_j,
                "energy_per_sample_j": self.energy_j / n, "energy_dynamic_per_sample_j": self.energy_dynamic_j / n,
                "energy_static_per_sample_j": self.energy_static_j / n, "lower_bound": self.lower_bound,
                "energy_text": self.energy_text(), "latency_s": self.latency_s, "step_latency_s": self.step_latency_s,
                "latency_model": self.latency_model, "step_latency_simple_s": self.step_latency_simple_s,
                "latency_lower_bound": self.latency_lower_bound, "latency_untimed": self.latency_untimed,
                "fits": self.fits, "fits_reason": self.fits_reason, "cores_used": self.cores_used,
                "limits_broken": self.limits_broken, "unpriced": self.unpriced,
                "unpriced_counts": self.unpriced_counts, "warnings": self.warnings,
                "estimate_kind": self.estimate_kind, "energy_by_layer_j": self.energy_by_layer_j,
                "energy_by_core_j": self.energy_by_core_j, "assumptions": self.assumptions}


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
    value = f"{joules * scale:.4g} {unit}"
    if unpriced:
        return f"≥ {value}, {unpriced} action{'s' if unpriced != 1 else ''} unpriced"
    return value


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
             static: str = "whole-chip") -> CostReport:
    """Price ``counts`` (a run of ``network``) on ``chip``; ``static`` is one of ``STATIC_MODES``."""
    if static not in STATIC_MODES:
        raise CostError(f"--static: unknown mode {static!r}; expected one of {', '.join(STATIC_MODES)}")
    mapping = mapping or map_network(network, chip, counts)
    if chip.kind == "gpu":
        return _estimate_gpu(network, counts, chip, mapping, static)
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

        packets = 0 if placement is None else placement.packets_in
        if e is not None and e.packet_pj is not None:
            add("packet", name, packets * e.packet_pj * PJ)

        hops_ew = 0 if placement is None else placement.hops_ew_in
        hops_ns = 0 if placement is None else placement.hops_ns_in
        if e is not None and e.hop_ew_pj is not None and e.hop_ns_pj is not None:
            add("routing", name, (hops_ew * e.hop_ew_pj + hops_ns * e.hop_ns_pj) * PJ)
        elif e is not None and e.hop_pj is not None:
            add("routing", name, (hops_ew + hops_ns) * e.hop_pj * PJ)
        elif not all_in:
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

    unpriced = [f"{action}: {count} {'bytes' if 'bytes' in action else 'events'}, no {figure} in profile "
                f"{chip.name}" for (action, figure), count in gaps.items()]
    unpriced_counts = {action: count for (action, _), count in gaps.items()}
    step_latency, assumptions = step_latency_s(mapping, counts, chip)
    model = latency_model(chip) if step_latency is not None else None
    simple = step_latency if model != "detailed" else step_latency_s(mapping, counts, chip, model="simple")[0]
    if heads > 0:
        assumptions.append(f"{heads} learning head layers (local classifiers, auxiliary copies) priced by their "
                           f"totals, without placement or routing")
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
    samples = counts.batch
    latency = step_latency * counts.timesteps * samples if step_latency is not None else None
    dynamic = float(sum(by_action.values()))
    report = CostReport(chip.name, dynamic, by_action, by_layer, [], latency, step_latency, mapping.fits,
                        mapping.cores_used, mapping.limits_broken, unpriced, mapping.assumptions + assumptions,
                        samples, energy_dynamic_j=dynamic, unpriced_counts=unpriced_counts,
                        fits_reason=mapping.fits_reason, latency_model=model, step_latency_simple_s=simple,
                        latency_untimed=untimed)
    _add_static(report, chip, static, mapping, counts)
    _check_weight_format(report, chip, counts)
    if report.energy_static_j > 0:
        by_core += report.energy_static_j / len(by_core)
    report.energy_by_core_j = [float(x) for x in by_core]
    return report


def _add_static(report: CostReport, chip: Chip, mode: str, mapping: Mapping, counts: Counts) -> None:
    """Static energy, its mode and assumption; an all-in figure's operating-point check and floor."""
    e, s = chip.energy, chip.static
    if mode == "cores-used" and s is not None and not s.scales_with_cores:
        raise CostError(f"{chip.path}: field 'static.scales_with_cores' is not true: its source gives the static "
                        f"power of the whole chip only; use --static whole-chip or none")
    if mode == "cores-used" and s is None and chip.kind != "gpu" and not (e and e.all_in):
        raise CostError(f"{chip.path}: field 'static' is missing: --static cores-used needs static.static_power_mw "
                        f"with static.scales_with_cores: true")
    latency = report.latency_s
    if e is not None and e.all_in:
        report.static_mode = "all-in"
        report.static_assumption = "static power included in the all-in figures (valid at their operating point)"
        _check_operating_point(report, chip, mapping, counts)
        if mode != "none" and s is not None and latency is not None and report.priced:
            floor = s.static_power_mw * 1e-3 * latency
            if report.energy_dynamic_j < floor:
                report.energy_static_j = floor - report.energy_dynamic_j
                report.energy_by_action_j["static"] = report.energy_static_j
                report.static_mode = "all-in, floored at static x time"
                report.warnings.append(
                    f"{chip.name}: the all-in figures give {report.energy_dynamic_j:.3g} J, below the static power "
                    f"alone ({s.static_power_mw} mW x {latency:.3g} s = {floor:.3g} J): floored at static x time")
                report.static_assumption += f"; floored at {s.static_power_mw} mW x time (whole chip)"
                # the run's own dynamic energy comes on top of the static power, but all-in figures cannot say
                # how much it is: the floor is a lower bound, and says so
                sops = sum(lc.total("sop") for lc in counts.layers)
                report.unpriced.append(f"dynamic energy above static power: {sops} SOPs, which {chip.name}'s all-in "
                                       f"figures cannot separate from its static power (floored at static x time)")
                report.unpriced_counts["dynamic above static"] = sops
        report.energy_j = report.energy_dynamic_j + report.energy_static_j
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
        report.static_assumption = f"{s.static_power_mw} mW for the whole chip x simulated time"
    report.static_mode = mode
    report.energy_static_j = s.static_power_mw * 1e-3 * share * latency
    report.energy_by_action_j["static"] = report.energy_static_j
    report.energy_j = report.energy_dynamic_j + report.energy_static_j


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
    unpriced, unpriced_counts = [], {}
    for lc in counts.layers:
        work = {"dense_mac": (macs[lc.name] * factor, e.dense_mac_pj if e else None, "energy.dense_mac_pj"),
                "neuron_update": (lc.total("neuron_updates"), e.neuron_update_pj if e else None,
                                  "energy.neuron_update_pj")}
        for action, (count, figure, _figure_name) in work.items():
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
                           f"{per_step_macs:.3g} MACs at peak throughput (launch-bound for small nets)")
    else:
        assumptions.append(f"{chip.name} publishes no kernel launch time or MAC throughput: latency not computed")
    latency = None if step is None else step * counts.timesteps
    dynamic = float(sum(by_action.values()))
    report = CostReport(chip.name, dynamic, by_action, by_layer, [], latency, step, mapping.fits, mapping.cores_used,
                        mapping.limits_broken, unpriced, mapping.assumptions + assumptions, counts.batch,
                        energy_dynamic_j=dynamic, unpriced_counts=unpriced_counts, fits_reason=mapping.fits_reason,
                        estimate_kind="estimate: a GPU running the dense network")
    _add_static(report, chip, static, mapping, counts)
    report.energy_by_core_j = [report.energy_j]
    return report


def latency_model(chip: Chip) -> str:
    """The step-latency model ``chip``'s figures use: ``fixed tick``, ``simple``, ``detailed`` or ``gpu launch``."""
    t = chip.timing
    if chip.kind == "gpu":
        return "gpu launch"
    if t is not None and (t.step_time_us is not None or (t.cycles_per_step is not None and t.clock_mhz)):
        return "fixed tick"
    return t.model if t is not None else "simple"


def step_latency_s(mapping: Mapping, counts: Counts, chip: Chip,
                   model: str | None = None) -> tuple[float | None, list[str]]:
    """Seconds per time step on ``chip`` (see module docstring) and the assumptions it took; ``model``
    (``simple`` or ``detailed``) overrides the profile's ``timing.model``."""
    t = chip.timing
    if t is None:
        return None, [f"{chip.name} publishes no timing: latency not computed"]
    if t.step_time_us is not None:
        return t.step_time_us * 1e-6, []
    if t.cycles_per_step is not None and t.clock_mhz:
        return t.cycles_per_step / (t.clock_mhz * 1e6), [f"fixed step: {t.cycles_per_step} cycles at "
                                                         f"{t.clock_mhz:g} MHz"]
    if t.sop_ns is None:
        return None, [f"{chip.name} publishes no time per SOP: latency not computed"]
    work = []
    for k, p in enumerate(mapping.layers):
        ns = _per_core(p.sop_per_core) * t.sop_ns
        if t.neuron_update_active_ns is not None and t.neuron_update_idle_ns is not None:
            ns = ns + _neuron_core_pj(p, t.neuron_update_active_ns, t.neuron_update_idle_ns)
        elif t.neuron_update_ns is not None:
            ns = ns + _per_core(p.updates_per_core) * t.neuron_update_ns
        if t.spike_out_ns is not None:
            ns = ns + _per_core(p.spikes_per_core) * t.spike_out_ns
        if t.packet_in_ns is not None:  # every packet into this layer is received by one of its cores
            ns = ns + p.packets_in / p.cores * t.packet_in_ns
        if t.packet_out_ns is not None and k + 1 < len(mapping.layers):
            fan = mapping.layers[k + 1].packets_in / max(int(_per_core(p.spikes_per_core).sum()), 1)
            ns = ns + _per_core(p.spikes_per_core) * fan * t.packet_out_ns
        if t.weight_update_ns is not None and p.weight_updates_per_core is not None:
            ns = ns + _per_core(p.weight_updates_per_core) * t.weight_update_ns
        work.append(ns)
    per_step = counts.timesteps * counts.batch
    busiest = max(float(w.max()) for w in work) / per_step
    hop_ns = max(t.hop_ew_ns or 0.0, t.hop_ns_ns or 0.0)
    routing = max(p.max_hops_in for p in mapping.layers) * hop_ns
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
__all__ = ["CostError", "CostReport", "STATIC_MODES", "dense_macs", "energy_text", "estimate", "latency_model",
           "step_latency_s"]
