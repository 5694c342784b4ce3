"""Schema of a chip profile (``chips/*.yaml``), validated on load with pydantic.

A profile is a name plus groups of figures. Every group that holds a figure carries ``source`` (paper,
venue, year, table) and ``basis`` (how the figure was obtained). Units are in the field names: ``_pj``
picojoules, ``_ns`` nanoseconds, ``_us`` microseconds, ``_mw`` milliwatts, ``_bytes`` bytes, ``_bits`` bits.
A figure nobody published is left out; the cost model then lists what it could not price.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, model_validator

Basis = Literal["measured", "simulated", "derived", "estimate", "specified"]


class Group(BaseModel):
    """A group of figures sharing one source."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    source: str = Field(min_length=3, description="publication: authors, venue, year, table or page")
    basis: Basis
    note: str = ""

    def figures(self) -> dict[str, object]:
        """The figures this group sets (everything but source/basis/note and unset fields)."""
        skip = {"source", "basis", "note"}
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if k not in skip}


class Capacity(Group):
    cores: PositiveInt | None = None
    neurons_per_core: PositiveInt | None = None
    synapses_per_core: PositiveInt | None = None
    synaptic_memory_bytes_per_core: PositiveInt | None = None
    neuron_memory_bytes_per_core: PositiveInt | None = None
    learning_memory_bytes_per_core: PositiveInt | None = None
    fan_in_axons_per_core: PositiveInt | None = None
    fan_out_edges_per_core: PositiveInt | None = None
    fan_out_per_neuron: PositiveInt | None = None
    max_neurons: PositiveInt | None = None
    max_synapses: PositiveInt | None = None


class Layout(Group):
    """How cores sit on the network-on-chip: ``cores_per_tile`` share a router; tiles form a 2-D mesh
    ``mesh_width_tiles`` wide. Absent: one core per tile, a square mesh (our assumption, reported)."""

    cores_per_tile: PositiveInt | None = None
    mesh_width_tiles: PositiveInt | None = None


class Precision(Group):
    weight_bits: PositiveInt | None = None
    state_bits: PositiveInt | None = None
    trace_bits: PositiveInt | None = None


class Energy(Group):
    """Energy per action. ``all_in``: figures include static power (then static is not added again);
    ``includes_memory``: action energies include their own memory accesses (bytes not priced again)."""

    all_in: bool
    includes_memory: bool
    sop_pj: NonNegativeFloat | None = None
    sop_conv_pj: NonNegativeFloat | None = None
    neuron_update_pj: NonNegativeFloat | None = None
    neuron_update_active_pj: NonNegativeFloat | None = None
    neuron_update_idle_pj: NonNegativeFloat | None = None
    spike_out_pj: NonNegativeFloat | None = None
    hop_pj: NonNegativeFloat | None = None
    hop_ew_pj: NonNegativeFloat | None = None
    hop_ns_pj: NonNegativeFloat | None = None
    weight_update_pj: NonNegativeFloat | None = None
    trace_update_pj: NonNegativeFloat | None = None
    error_mac_pj: NonNegativeFloat | None = None
    grad_op_pj: NonNegativeFloat | None = None
    fp32_flop_pj: NonNegativeFloat | None = None
    bf16_flop_pj: NonNegativeFloat | None = None


class Memory(Group):
    """Energy per byte of on-chip memory access (one level) and, optionally, of off-chip DRAM/HBM."""

    read_pj_per_byte: NonNegativeFloat | None = None
    write_pj_per_byte: NonNegativeFloat | None = None
    offchip_pj_per_byte: NonNegativeFloat | None = None


class Static(Group):
    static_power_mw: NonNegativeFloat


class BarrierPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    tiles: PositiveInt
    ns: NonNegativeFloat


class Timing(Group):
    sop_ns: NonNegativeFloat | None = None
    neuron_update_ns: NonNegativeFloat | None = None
    neuron_update_active_ns: NonNegativeFloat | None = None
    neuron_update_idle_ns: NonNegativeFloat | None = None
    weight_update_ns: NonNegativeFloat | None = None
    spike_out_ns: NonNegativeFloat | None = None
    hop_ew_ns: NonNegativeFloat | None = None
    hop_ns_ns: NonNegativeFloat | None = None
    barrier_ns: list[BarrierPoint] | None = None
    step_time_us: NonNegativeFloat | None = None
    clock_mhz: NonNegativeFloat | None = None


class Learning(Group):
    """What the on-chip learning engine offers (absent = not published)."""

    on_chip_learning: bool
    rule: str | None = None
    local_traces: bool | None = None
    third_factor: bool | None = None
    graded_error_messages: bool | None = None
    transposed_weight_reads: bool | None = None
    programmable: bool | None = None
    learning_epoch_max_steps: PositiveInt | None = None


class Chip(BaseModel):
    """One chip profile."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    full_name: str
    kind: Literal["neuromorphic", "digital_baseline", "gpu"] = "neuromorphic"
    technology: str = ""
    summary: str = ""
    capacity: Capacity | None = None
    layout: Layout | None = None
    precision: Precision | None = None
    energy: Energy | None = None
    memory: Memory | None = None
    static: Static | None = None
    timing: Timing | None = None
    learning: Learning | None = None

    @model_validator(mode="after")
    def _barrier_sorted(self) -> Chip:
        if self.timing and self.timing.barrier_ns:
            tiles = [p.tiles for p in self.timing.barrier_ns]
            if tiles != sorted(set(tiles)):
                raise ValueError("timing.barrier_ns: points must have increasing 'tiles'")
        return self

    def groups(self) -> dict[str, Group]:
        return {name: getattr(self, name) for name in
                ("capacity", "layout", "precision", "energy", "memory", "static", "timing", "learning")
                if getattr(self, name) is not None}


UNIT_SUFFIXES = {"_pj": "picojoules", "_ns": "nanoseconds", "_us": "microseconds", "_mw": "milliwatts",
                 "_bytes": "bytes", "_bits": "bits", "_mhz": "megahertz", "_pj_per_byte": "picojoules per byte"}
