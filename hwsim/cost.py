"""The cost model: counts x a chip's energy per action, plus static power x simulated time.

Energy (joules) by action, each from exact counts and one figure of the chip profile:

* ``sop`` -- SOPs x ``sop_pj`` (conv and pool layers: ``sop_conv_pj`` when the chip gives one);
* ``neuron_update`` -- active updates x ``neuron_update_active_pj`` + idle x ``neuron_update_idle_pj``
  when both are published, else all updates x ``neuron_update_pj``;
* ``spike_out`` -- spikes emitted x ``spike_out_pj``;
* ``routing`` -- east-west hops x ``hop_ew_pj`` + north-south hops x ``hop_ns_pj`` (or all x ``hop_pj``);
* ``memory`` -- bytes read x ``read_pj_per_byte`` + bytes written x ``write_pj_per_byte``, only when the
  chip's action energies do not already include their memory accesses (``energy.includes_memory``);
* learning actions -- ``weight_update``, ``trace_update``, ``error_mac``, ``grad_op`` x their figures;
* ``static`` -- ``static_power_mw`` x simulated time, unless the figures are all-in (``energy.all_in``).

Latency per step = the busiest core's work (its SOPs, active/idle neuron updates, spikes and, when
learning, weights written x the chip's time per action) averaged over the run's steps and samples, plus the
longest route (hops x hop time) and the barrier time for the tiles in use (linear between the published points,
clamped at the ends). A chip with a fixed tick (``timing.step_time_us``) runs at that tick. Simulated
time = T x B x step latency. An action with a count but no figure is listed in ``unpriced``; nothing is
invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chips.schema import Chip
from hwsim.counts import Counts
from hwsim.mapping import Mapping, map_network
from hwsim.network import Network

PJ = 1e-12
NS = 1e-9
LEARNING_ACTIONS = {"weight_update": ("weight_updates", "weight_update_pj"),
                    "trace_update": ("trace_updates", "trace_update_pj"),
                    "error_mac": ("error_macs", "error_mac_pj"),
                    "grad_op": ("grad_ops", "grad_op_pj")}


@dataclass
class CostReport:
    """Energy (J), latency (s) and fit of one run on one chip: totals, by action, by layer and by core (a
    core's SOPs, neuron updates and spikes plus an equal share of static power; routing and memory traffic
    belong to the network, not a core)."""

    chip: str
    energy_j: float
    energy_by_action_j: dict[str, float]
    energy_by_layer_j: dict[str, float]
    energy_by_core_j: list[float]
    latency_s: float | None
    step_latency_s: float | None
    fits: bool
    cores_used: int
    limits_broken: list[str]
    unpriced: list[str]
    assumptions: list[str] = field(default_factory=list)
    samples: int = 1

    def to_dict(self) -> dict:
        return {"chip": self.chip, "energy_j": self.energy_j, "energy_by_action_j": self.energy_by_action_j,
                "energy_per_sample_j": self.energy_j / self.samples,
                "latency_s": self.latency_s, "step_latency_s": self.step_latency_s, "fits": self.fits,
                "cores_used": self.cores_used, "limits_broken": self.limits_broken, "unpriced": self.unpriced,
                "energy_by_layer_j": self.energy_by_layer_j, "energy_by_core_j": self.energy_by_core_j,
                "assumptions": self.assumptions}


def estimate(network: Network, counts: Counts, chip: Chip, mapping: Mapping | None = None) -> CostReport:
    """Price ``counts`` (a run of ``network``) on ``chip``."""
    mapping = mapping or map_network(network, chip, counts)
    e = chip.energy
    unpriced: list[str] = []
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

        hops_ew = 0 if placement is None else placement.hops_ew_in
        hops_ns = 0 if placement is None else placement.hops_ns_in
        if e is not None and e.hop_ew_pj is not None and e.hop_ns_pj is not None:
            add("routing", name, (hops_ew * e.hop_ew_pj + hops_ns * e.hop_ns_pj) * PJ)
        elif e is not None and e.hop_pj is not None:
            add("routing", name, (hops_ew + hops_ns) * e.hop_pj * PJ)
        elif not all_in:
            missing("routing", hops_ew + hops_ns, "energy.hop_pj (or hop_ew_pj and hop_ns_pj)")

        if not (e is not None and e.includes_memory):
            m = chip.memory
            read, write = lc.total("mem_read_bytes"), lc.total("mem_write_bytes")
            if m is not None and m.read_pj_per_byte is not None:
                add("memory", name, read * m.read_pj_per_byte * PJ)
            else:
                missing("memory read bytes", read, "memory.read_pj_per_byte")
            if m is not None and m.write_pj_per_byte is not None:
                add("memory", name, write * m.write_pj_per_byte * PJ)
            else:
                missing("memory write bytes", write, "memory.write_pj_per_byte")

        for action, (counter, figure) in LEARNING_ACTIONS.items():
            count = lc.total(counter)
            if counter == "weight_updates" and placement is not None and placement.weight_updates_per_core is not None:
                count = int(placement.weight_updates_per_core.sum())  # conv: every stored copy of a weight is written
            value = getattr(e, figure) if e is not None else None
            if value is not None:
                add(action, name, count * value * PJ)
            else:
                missing(action, count, f"energy.{figure}")

    unpriced.extend(f"{action}: {count} events, no {figure} in profile {chip.name}"
                    for (action, figure), count in gaps.items())
    step_latency, assumptions = step_latency_s(mapping, counts, chip)
    if heads > 0:
        assumptions.append(f"{heads} learning head layers (local classifiers, auxiliary copies) priced by their "
                           f"totals, without placement or routing")
    if counts.phase == "learning" and step_latency is not None:
        assumptions.append("latency counts the forward work, routing, barriers and the weight write-back where the "
                           "chip publishes its time; error MACs and gradient ops have no published time")
    samples = counts.batch
    latency = step_latency * counts.timesteps * samples if step_latency is not None else None
    if chip.static is not None and not all_in:
        if latency is not None:
            joules = chip.static.static_power_mw * 1e-3 * latency
            by_action["static"] = joules
            by_core += joules / len(by_core)
        else:
            unpriced.append(f"static: {chip.static.static_power_mw} mW but no step time for {chip.name}")
    elif chip.static is None and not all_in and chip.kind == "neuromorphic":
        unpriced.append(f"static: no static power published for {chip.name}")
    return CostReport(chip.name, float(sum(by_action.values())), by_action, by_layer,
                      [float(x) for x in by_core], latency, step_latency, mapping.fits, mapping.cores_used,
                      mapping.limits_broken, unpriced, mapping.assumptions + assumptions, samples)


def step_latency_s(mapping: Mapping, counts: Counts, chip: Chip) -> tuple[float | None, list[str]]:
    """Seconds per time step on ``chip`` (see module docstring) and the assumptions it took."""
    t = chip.timing
    if t is None:
        return None, [f"{chip.name} publishes no timing: latency not computed"]
    if t.step_time_us is not None:
        return t.step_time_us * 1e-6, []
    if t.sop_ns is None:
        return None, [f"{chip.name} publishes no time per SOP: latency not computed"]
    work = []
    for p in mapping.layers:
        ns = _per_core(p.sop_per_core) * t.sop_ns
        if t.neuron_update_active_ns is not None and t.neuron_update_idle_ns is not None:
            ns = ns + _neuron_core_pj(p, t.neuron_update_active_ns, t.neuron_update_idle_ns)
        elif t.neuron_update_ns is not None:
            ns = ns + _per_core(p.updates_per_core) * t.neuron_update_ns
        if t.spike_out_ns is not None:
            ns = ns + _per_core(p.spikes_per_core) * t.spike_out_ns
        if t.weight_update_ns is not None and p.weight_updates_per_core is not None:
            ns = ns + _per_core(p.weight_updates_per_core) * t.weight_update_ns
        work.append(ns)
    per_step = counts.timesteps * counts.batch
    busiest = max(float(w.max()) for w in work) / per_step
    hop_ns = max(t.hop_ew_ns or 0.0, t.hop_ns_ns or 0.0)
    routing = max(p.max_hops_in for p in mapping.layers) * hop_ns
    barrier = _barrier_ns(t.barrier_ns, mapping.tiles_used) if t.barrier_ns else 0.0
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
