"""Schema of a chip profile (``chips/*.yaml``), validated on load with pydantic.

A profile is a name plus groups of figures. Every group that holds a figure carries ``source`` (paper,
venue, year, table) and ``basis`` (how the figure was obtained). Units are in the field names: ``_pj``
picojoules, ``_ns`` nanoseconds, ``_us`` microseconds, ``_mw`` milliwatts, ``_bytes`` bytes, ``_bits`` bits.
A figure nobody published is left out; the cost model then lists what it could not price and marks the
energy as a lower bound.

Every capacity field is enforced by ``hwsim.hardware.mapping`` (or, for learning memory,
``hwsim.learning.feasibility``).
An ``all_in`` energy figure must carry the ``operating_point`` it was measured at.

Every figure must lie within the physically plausible range of its unit (``PLAUSIBLE``, by the field name's unit
suffix): a figure outside it (``sop_pj: 1e308``, a 0 pJ price standing for "unknown") is refused with one line
naming the file, the field, the value and the range. Unknown is left out, never written as 0.

``system`` holds what a measurement of the whole system includes beyond the neuromorphic cores (Loihi's embedded
x86 management cores: their power while a run is active, the shortest step they allow); ``uncertainty`` the band
every estimate on the chip carries and how it was obtained (``calibrated``/``fitted`` from the validation
residuals against published silicon measurements, ``unvalidated`` from the spread of the profile's sources:
``hwsim.hardware.validation``, docs/validation.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    model_validator,
)

Basis = Literal["measured", "simulated", "derived", "estimate", "specified", "fitted"]

# Physically plausible range of a figure, by the unit suffix of its field name (longest suffix first). A price of
# exactly 0 is outside every energy range: an action with no published price is left out (unpriced), never 0.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "_pj_per_byte": (1e-3, 1e5),  # picojoules per byte: a register file to off-chip DRAM
    "_pj": (1e-3, 1e6),           # picojoules per operation
    "_ns": (1e-4, 1e9),           # nanoseconds per action (up to a second)
    "_us": (1e-3, 1e8),           # microseconds (a step of up to 100 s)
    "_mw": (1e-4, 1e6),           # milliwatts (up to a kilowatt board)
    "_mhz": (1e-3, 1e5),          # megahertz
    "_hz": (1e-4, 1e6),           # hertz (firing rates)
    "_bytes": (1, 1e13),          # bytes
    "_bits": (1, 64),             # bits
    "_factor": (1.0, 100.0),      # multiplicative band half-widths (x / factor .. x * factor)
}


def _plausible_suffix(name: str) -> str | None:
    return next((s for s in sorted(PLAUSIBLE, key=len, reverse=True) if name.endswith(s)), None)


def check_plausible(values: dict[str, object], where: str) -> None:
    """Raise ``ValueError`` naming the first field of ``values`` outside its unit's plausible range."""
    for name, value in values.items():
        suffix = _plausible_suffix(name)
        if suffix is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        low, high = PLAUSIBLE[suffix]
        if not low <= value <= high:
            unit = UNIT_SUFFIXES.get(suffix, suffix.lstrip("_"))
            raise ValueError(f"field '{where}{name}' = {value:g} is outside the plausible range {low:g}..{high:g} "
                             f"({unit}); leave an unknown figure out instead of writing 0")


class Group(BaseModel):
    """A group of figures sharing one source."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    source: str = Field(min_length=3, description="publication: authors, venue, year, table or page")
    basis: Basis
    note: str = ""

    @model_validator(mode="after")
    def _plausible(self) -> Group:
        check_plausible({k: getattr(self, k) for k in type(self).model_fields if getattr(self, k) is not None},
                        f"{_GROUP_NAMES.get(type(self).__name__, type(self).__name__.lower())}.")
        return self

    def figures(self) -> dict[str, object]:
        """The figures this group sets (everything but source/basis/note and unset fields)."""
        skip = {"source", "basis", "note"}
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if k not in skip}


class Capacity(Group):
    """Per-core and per-chip limits, each enforced by the mapper (``hwsim.hardware.mapping``) except
    ``learning_memory_bytes_per_core`` (``hwsim.learning.feasibility``). ``fan_in_per_neuron``: synapses into one
    neuron; ``fan_out_per_neuron``: synapses out of one input; ``max_neurons``/``max_synapses``: whole chip."""

    cores: PositiveInt | None = None
    neurons_per_core: PositiveInt | None = None
    synapses_per_core: PositiveInt | None = None
    synaptic_memory_bytes_per_core: PositiveInt | None = None
    learning_memory_bytes_per_core: PositiveInt | None = None
    fan_in_axons_per_core: PositiveInt | None = None
    fan_out_edges_per_core: PositiveInt | None = None
    fan_in_per_neuron: PositiveInt | None = None
    fan_out_per_neuron: PositiveInt | None = None
    max_neurons: PositiveInt | None = None
    max_synapses: PositiveInt | None = None


class Layout(Group):
    """How cores sit on the network-on-chip: ``cores_per_tile`` share a router; tiles form a 2-D mesh
    ``mesh_width_tiles`` wide. Absent: one core per tile, a square mesh (our assumption, reported). ``noc: false``:
    a single-core chip without an on-chip network (no hops are counted). ``layers_share_cores``: consecutive
    dense/recurrent layers may share one core when together they fit its limits (ReckOn's one core holds its
    recurrent and readout neurons); false (default): every layer gets cores of its own."""

    cores_per_tile: PositiveInt | None = None
    mesh_width_tiles: PositiveInt | None = None
    noc: bool = True
    layers_share_cores: bool = False


class Precision(Group):
    weight_bits: PositiveInt | None = None
    state_bits: PositiveInt | None = None
    trace_bits: PositiveInt | None = None


NEURON_MODELS = ("lif", "alif")  # lif: leaky integrate-and-fire; alif: LIF with an adaptive threshold (Bellec et al.)


class Neurons(Group):
    """The neuron models the chip implements (``models``): ``lif``, and ``alif`` where its neurons can adapt their
    threshold (Bellec et al. 2018), natively or by a published construction. Absent: not published; a network of
    ALIF layers is then judged unknown on a neuromorphic chip, never assumed to run."""

    models: list[Literal["lif", "alif"]] = Field(min_length=1)


class OperatingPoint(BaseModel):
    """Where an all-in figure was measured: mean firing rate of the neurons (Hz), cores active, tick (us)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    rate_hz: PositiveFloat
    cores: PositiveInt
    tick_us: PositiveFloat


class Energy(Group):
    """Energy per action. ``all_in``: figures include static power (then static is not added again) and hold
    at ``operating_point`` only; ``includes_memory``: action energies include their own memory accesses
    (bytes not priced again); ``includes_routing``: the figures were fitted to a measurement that contains the
    mesh's routing energy, so hops are not priced apart (nor unpriced).
    ``packet_pj``: one packet sent per destination core (SANA-FE's message out);
    ``dense_mac_pj``: a GPU's dynamic energy per dense multiply-accumulate."""

    all_in: bool
    includes_memory: bool
    includes_routing: bool = False
    operating_point: OperatingPoint | None = None
    sop_pj: NonNegativeFloat | None = None
    sop_conv_pj: NonNegativeFloat | None = None
    neuron_update_pj: NonNegativeFloat | None = None
    neuron_update_active_pj: NonNegativeFloat | None = None
    neuron_update_idle_pj: NonNegativeFloat | None = None
    spike_out_pj: NonNegativeFloat | None = None
    packet_pj: NonNegativeFloat | None = None
    hop_pj: NonNegativeFloat | None = None
    hop_ew_pj: NonNegativeFloat | None = None
    hop_ns_pj: NonNegativeFloat | None = None
    weight_update_pj: NonNegativeFloat | None = None
    trace_update_pj: NonNegativeFloat | None = None
    error_mac_pj: NonNegativeFloat | None = None
    grad_op_pj: NonNegativeFloat | None = None
    learning_signal_pj: NonNegativeFloat | None = None  # e-prop: one learning-signal value broadcast to a neuron
    eligibility_update_pj: NonNegativeFloat | None = None  # e-prop: one per-synapse eligibility state update
    fp32_flop_pj: NonNegativeFloat | None = None
    bf16_flop_pj: NonNegativeFloat | None = None
    dense_mac_pj: NonNegativeFloat | None = None

    @model_validator(mode="after")
    def _all_in_has_operating_point(self) -> Energy:
        if self.all_in and self.operating_point is None:
            raise ValueError("field 'energy.operating_point' is missing: an all_in figure holds only where it was "
                             "measured; give rate_hz, cores and tick_us")
        return self


class Memory(Group):
    """Energy per byte of on-chip memory access (one level) and, optionally, of off-chip DRAM/HBM."""

    read_pj_per_byte: NonNegativeFloat | None = None
    write_pj_per_byte: NonNegativeFloat | None = None
    offchip_pj_per_byte: NonNegativeFloat | None = None


class Static(Group):
    """Static (leakage + clock) power of the whole chip. ``scales_with_cores``: the source supports charging
    only the cores in use (``--static cores-used``: static x cores used / cores)."""

    static_power_mw: NonNegativeFloat
    scales_with_cores: bool = False


class BarrierPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    tiles: PositiveInt
    ns: NonNegativeFloat


class Timing(Group):
    """Times per action. ``model`` picks the step-latency model (``hwsim.hardware.cost``): ``simple`` (busiest core's
    work + longest route + barrier) or ``detailed`` (every message scheduled, receivers one message at a time,
    senders stalled when a route's link buffers of ``link_buffer_messages`` are full: ``hwsim.hardware.noc_timing``).

    ``time_base`` is the chip's default time base: ``compute`` (a step takes the work it does: the latency model above,
    or a fixed ``step_time_us`` / ``cycles_per_step`` the chip cannot run faster than) or ``tick`` (a real-time tick
    of ``tick_us``: the chip waits for the tick, and static power is paid for the whole tick). ``tick_us`` is the
    real-time tick the chip runs at when asked to (Loihi throttled to 1 ms; TrueNorth's 1 ms)."""

    model: Literal["simple", "detailed"] = "simple"
    link_buffer_messages: PositiveInt | None = None
    sop_ns: NonNegativeFloat | None = None
    neuron_update_ns: NonNegativeFloat | None = None
    neuron_update_active_ns: NonNegativeFloat | None = None
    neuron_update_idle_ns: NonNegativeFloat | None = None
    weight_update_ns: NonNegativeFloat | None = None
    spike_out_ns: NonNegativeFloat | None = None
    packet_in_ns: NonNegativeFloat | None = None
    packet_out_ns: NonNegativeFloat | None = None
    dense_mac_ns: NonNegativeFloat | None = None
    kernel_launch_us: NonNegativeFloat | None = None
    kernels_per_layer: PositiveInt | None = None
    hop_ew_ns: NonNegativeFloat | None = None
    hop_ns_ns: NonNegativeFloat | None = None
    barrier_ns: list[BarrierPoint] | None = None
    step_time_us: NonNegativeFloat | None = None
    clock_mhz: NonNegativeFloat | None = None
    cycles_per_step: PositiveInt | None = None
    time_base: Literal["compute", "tick"] = "compute"
    tick_us: PositiveFloat | None = None


class System(Group):
    """What a system-level measurement includes beyond the neuromorphic cores. ``management_power_mw``: power of the
    embedded management cores (Loihi's x86) while a run is active, charged for the run's wall time as dynamic energy;
    ``input_spike_ns``: time the management cores take to inject one input spike from the host into the mesh
    (added to the run's wall time under the compute time base)."""

    management_power_mw: PositiveFloat | None = None
    input_spike_ns: PositiveFloat | None = None


class Uncertainty(Group):
    """The band every energy and latency on this chip carries: ``x / factor .. x * factor``. ``status``:
    ``calibrated`` (factors from the residuals of the profile against published silicon measurements,
    ``hwsim.hardware.validation``), ``fitted`` (figures fitted to one measurement; factor from the fit's residual and
    the spread of what it could not separate) or ``unvalidated`` (no measurement to hold it against: factor from the
    spread of its sources). ``cases``: the validation cases behind the factors."""

    status: Literal["calibrated", "fitted", "unvalidated"]
    energy_factor: PositiveFloat
    latency_factor: PositiveFloat | None = None
    static_factor: PositiveFloat | None = None
    cases: list[str] = Field(default_factory=list)

    def figures(self) -> dict[str, object]:
        out = super().figures()
        out.pop("cases", None)
        out.pop("status", None)
        return out


class FieldSource(BaseModel):
    """Where one figure or capability comes from, when it is not the group's own ``source``: the publication and
    how the value was obtained (``assumed`` where no publication says)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    source: str = Field(min_length=3)
    basis: Literal["measured", "simulated", "derived", "estimate", "specified", "fitted", "assumed"]


ELIGIBILITY_TRACE_KINDS = ("input", "recurrent", "output")


class Learning(Group):
    """What the on-chip learning engine offers (absent = not published). ``local_traces``: presynaptic
    traces at the synapse; ``post_traces``: a postsynaptic trace (e.g. ODIN's calcium variable);
    ``spike_coded_errors``: error signals sent as spikes (no payload) suffice for error-driven learning
    (Loihi 1: Renner et al., Nat. Commun. 2024).

    What e-prop needs (Bellec et al., Nat. Commun. 11:3625, 2020): ``eligibility_traces`` -- the eligibility state
    the engine can keep, ``per_synapse`` (a trace or tag per synapse) or ``per_neuron`` (presynaptic traces per
    input and neuron, products formed on the fly: ReckOn's modified e-prop); ``eligibility_trace_bits`` -- their
    width in bits, one number, or per kind (``input``: a presynaptic trace per input, ``recurrent``: per recurrent
    neuron, ``output``: the readout-filtered trace per neuron; ReckOn 12/12/10); ``broadcast_learning_signal`` -- a
    learning signal can be broadcast from the readout to the neurons; ``update_cadence`` -- when weights are
    written, in words (``per_step``, ``per_sample``, ``every_t_epoch`` ...); ``learning_power_max_mw`` -- a published
    upper bound on the chip's power while learning in real time (at ``timing.tick_us`` per step): energy estimates
    of learning runs take it as the upper end of their band. ``sources`` gives a field its own source where the
    group's does not cover it (``basis: assumed`` where no publication says)."""

    on_chip_learning: bool
    rule: str | None = None
    local_traces: bool | None = None
    post_traces: bool | None = None
    spike_coded_errors: bool | None = None
    third_factor: bool | None = None
    graded_error_messages: bool | None = None
    transposed_weight_reads: bool | None = None
    programmable: bool | None = None
    learning_epoch_max_steps: PositiveInt | None = None
    eligibility_traces: Literal["per_synapse", "per_neuron"] | None = None
    eligibility_trace_bits: PositiveInt | dict[str, PositiveInt] | None = None
    broadcast_learning_signal: bool | None = None
    update_cadence: str | None = Field(default=None, min_length=3, max_length=120)
    learning_power_max_mw: PositiveFloat | None = None
    sources: dict[str, FieldSource] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _eprop_fields(self) -> Learning:
        bits = self.eligibility_trace_bits
        if isinstance(bits, dict):
            unknown = sorted(set(bits) - set(ELIGIBILITY_TRACE_KINDS))
            if unknown:
                raise ValueError(f"field 'learning.eligibility_trace_bits': unknown trace kind {unknown[0][:40]!r}; "
                                 f"known: {', '.join(ELIGIBILITY_TRACE_KINDS)}")
            low, high = PLAUSIBLE["_bits"]
            for kind, value in bits.items():
                if not low <= value <= high:
                    raise ValueError(f"field 'learning.eligibility_trace_bits.{kind}' = {value:g} is outside the "
                                     f"plausible range {low:g}..{high:g} (bits)")
        unknown = sorted(set(self.sources) - set(type(self).model_fields))
        if unknown:
            raise ValueError(f"field 'learning.sources': {unknown[0][:40]!r} is not a field of learning")
        return self

    def source_of(self, name: str) -> str:
        """The source of field ``name``: its own (``sources``) with its basis, else the group's."""
        own = self.sources.get(name)
        return f"{own.source} ({own.basis})" if own is not None else f"{self.source} ({self.basis})"

    def figures(self) -> dict[str, object]:
        out = super().figures()
        out.pop("sources", None)
        return out


class Conv(Group):
    """How the chip stores a convolution's weights (``weight_sharing``): ``shared_kernel`` -- one kernel per
    layer, written once, read by every core that hosts its output channels; ``per_core_copy`` -- each core
    keeps the kernels of the output channels it hosts (a shared weight is written once per copy);
    ``expanded`` -- every connection is its own synapse, as in a dense layer. Absent: ``expanded`` (assumed,
    reported). ``basis`` may be ``assumed`` where no publication says."""

    basis: Literal["measured", "simulated", "derived", "estimate", "specified", "assumed"]
    weight_sharing: Literal["shared_kernel", "per_core_copy", "expanded"]


class Chip(BaseModel):
    """One chip profile."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    full_name: str
    kind: Literal["neuromorphic", "digital_baseline", "gpu"] = "neuromorphic"
    technology: str = ""
    summary: str = ""
    capacity: Capacity | None = None
    neurons: Neurons | None = None
    layout: Layout | None = None
    precision: Precision | None = None
    energy: Energy | None = None
    memory: Memory | None = None
    static: Static | None = None
    timing: Timing | None = None
    system: System | None = None
    uncertainty: Uncertainty | None = None
    learning: Learning | None = None
    conv: Conv | None = None
    _path: str | None = PrivateAttr(default=None)

    @property
    def path(self) -> str:
        """The profile file this chip was read from (``chips/<name>.yaml`` when not known)."""
        return self._path or f"chips/{self.name}.yaml"

    @model_validator(mode="after")
    def _barrier_sorted(self) -> Chip:
        if self.timing and self.timing.barrier_ns:
            tiles = [p.tiles for p in self.timing.barrier_ns]
            if tiles != sorted(set(tiles)):
                raise ValueError("timing.barrier_ns: points must have increasing 'tiles'")
        if self.static is not None and self.static.scales_with_cores and not (self.capacity and self.capacity.cores):
            raise ValueError("static.scales_with_cores needs capacity.cores (the static power is divided by it)")
        t = self.timing
        if t is not None and t.cycles_per_step is not None and t.clock_mhz is None:
            raise ValueError("timing.cycles_per_step needs timing.clock_mhz (the step time is cycles / clock)")
        if t is not None and t.time_base == "tick" and t.tick_us is None and t.step_time_us is None:
            raise ValueError("timing.time_base 'tick' needs timing.tick_us (the real-time tick)")
        if self.learning is not None and self.learning.learning_power_max_mw is not None and (t is None or
                                                                                            t.tick_us is None):
            raise ValueError("field 'learning.learning_power_max_mw' needs timing.tick_us (the real-time step at "
                             "which the power bound holds)")
        if t is not None and t.model == "detailed":
            lacking = [f for f in ("sop_ns", "packet_in_ns", "packet_out_ns", "link_buffer_messages")
                       if getattr(t, f) is None]
            if lacking:
                raise ValueError(f"timing.model 'detailed' needs timing.{', timing.'.join(lacking)} "
                                 f"(messages' send and receive times and the link buffer size)")
        return self

    def groups(self) -> dict[str, Group]:
        return {name: getattr(self, name) for name in
                ("capacity", "layout", "precision", "energy", "memory", "static", "timing", "system", "uncertainty",
                 "learning", "conv")
                if getattr(self, name) is not None}


UNIT_SUFFIXES = {"_pj": "picojoules", "_ns": "nanoseconds", "_us": "microseconds", "_mw": "milliwatts",
                 "_bytes": "bytes", "_bits": "bits", "_mhz": "megahertz", "_pj_per_byte": "picojoules per byte",
                 "_hz": "hertz", "_messages": "messages", "_factor": "multiplicative factor"}
_GROUP_NAMES = {"Capacity": "capacity", "Neurons": "neurons", "Layout": "layout", "Precision": "precision",
                "Energy": "energy", "Memory": "memory", "Static": "static", "Timing": "timing", "System": "system",
                "Uncertainty": "uncertainty", "Learning": "learning", "Conv": "conv"}
