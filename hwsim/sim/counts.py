"""The ``Counts`` record: exact event counts per layer and per time step (DESIGN.md section 4).

The engine fills the event counters while it runs (one integer add per spike event in the kernels); the
byte counters follow from them by the fixed conventions below, which depend only on the representation,
never on a chip. The cost model (not the engine) decides what a count costs on a given chip.

Conventions (per layer; ``B`` = batch size, every counter summed over the batch):

* ``spikes_in[t]`` -- spike events reaching the layer's feed-forward synapses at step t (a recurrent layer's
  own spikes, fed back, are not counted here: they are its ``spikes_out``).
* ``sop[t]`` -- synaptic operations: one weight read + accumulate per (presynaptic spike x synapse of its
  actual fan-out); conv fan-out is counted per event, so borders and strides are exact. A recurrent layer's
  recurrent synapses are SOPs too: each of its spikes at step t - 1 reads its ``n_out`` recurrent weights
  (every stored synapse, zeros included, as for dense) at step t.
* ``sop_recurrent[t]`` -- the part of ``sop[t]`` done by recurrent synapses (0 for other layers).
* ``neuron_updates[t]`` -- every neuron every step (time-driven, as on Loihi): ``B * n_out``.
* ``neuron_updates_active[t]`` -- the updates of neurons whose synaptic input that step was non-zero
  (Loihi prices active and idle neuron updates differently; the rest are idle); in a recurrent layer, a
  neuron whose feed-forward or recurrent input that step was non-zero (either one, as each synapse set
  delivers it).
* ``spikes_out[t]`` -- spikes emitted by the layer's neurons.
* ``error_macs``, ``grad_ops``, ``trace_updates``, ``weight_updates`` -- learning counters (zero for
  inference; filled by the on-chip rules); e-prop adds ``learning_signals`` (values broadcast from the read-out
  to the neurons) and ``eligibility_updates`` (per-synapse eligibility state updates).
* ``mem_read_bytes[kind][t]`` / ``mem_write_bytes[kind][t]`` -- bytes by memory kind (``MEMORY_KINDS``).
  Inference: each SOP reads one weight (float32: 4 B; fixed point: 1 B, the 8-bit Loihi weight); each
  neuron update reads and writes its state (float: u, 4 B; fixed: u and v, 24 bit each, 3 + 3 B; adaptive
  ALIF neurons also their adaptation variable, float 4 B more) and reads its bias when it has one (float
  4 B; fixed 2 B, the 13-bit mantissa). Recurrent SOPs read their weights like any SOP (``weights``). The
  synaptic accumulate itself is part of the SOP (dendritic accumulators), not counted as memory traffic.
* ``neuron_spikes`` -- per output neuron, spikes over all steps and samples, shape ``(n_out,)``;
  ``neuron_active`` -- per output neuron, active updates, ``(n_out,)``; ``input_spikes`` -- per
  presynaptic neuron, ``(n_in,)``; while learning, ``neuron_weight_updates`` -- weights written per
  postsynaptic neuron, ``(n_out,)`` (dense layers); for a conv layer ``channel_weight_updates`` -- weights
  of each output channel's shared kernel written, ``(out_ch,)`` (one write per shared weight; the mapper
  multiplies by the copies a chip keeps). The mapper uses them to split work across cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EVENT_COUNTERS = ("spikes_in", "spikes_out", "sop", "sop_recurrent", "neuron_updates", "neuron_updates_active",
                  "error_macs", "grad_ops", "trace_updates", "weight_updates", "learning_signals",
                  "eligibility_updates")
MEMORY_KINDS = ("weights", "neuron_state", "traces", "errors", "grad_accum", "history", "aux")

WEIGHT_BYTES = {"float": 4, "fixed": 1}
STATE_BYTES = {"float": 4, "fixed": 6}
BIAS_BYTES = {"float": 4, "fixed": 2}
ADAPTATION_BYTES = {"float": 4}  # the ALIF adaptation variable a (float32); adaptive neurons exist in float only


@dataclass
class LayerCounts:
    """Counts of one neuron layer over ``timesteps`` steps; every per-step array has shape ``(T,)``."""

    name: str
    kind: str
    n_in: int
    n_out: int
    timesteps: int
    events: dict[str, np.ndarray] = field(default_factory=dict)
    mem_read_bytes: dict[str, np.ndarray] = field(default_factory=dict)
    mem_write_bytes: dict[str, np.ndarray] = field(default_factory=dict)
    neuron_spikes: np.ndarray | None = None
    neuron_active: np.ndarray | None = None
    input_spikes: np.ndarray | None = None
    neuron_weight_updates: np.ndarray | None = None
    channel_weight_updates: np.ndarray | None = None  # conv: shared-kernel weights written per output channel

    def __post_init__(self) -> None:
        # one block of (counters + 2 x memory kinds) rows, handed out as per-counter views (given ones kept)
        n_events, n_kinds = len(EVENT_COUNTERS), len(MEMORY_KINDS)
        block = np.zeros((n_events + 2 * n_kinds, self.timesteps), np.int64)
        rows = list(block)
        self.events = {**dict(zip(EVENT_COUNTERS, rows[:n_events])), **self.events}
        self.mem_read_bytes = {**dict(zip(MEMORY_KINDS, rows[n_events:n_events + n_kinds])), **self.mem_read_bytes}
        self.mem_write_bytes = {**dict(zip(MEMORY_KINDS, rows[n_events + n_kinds:])), **self.mem_write_bytes}

    def total(self, counter: str) -> int:
        """Sum over steps of an event counter, or of ``mem_read_bytes``/``mem_write_bytes`` (all kinds)."""
        if counter == "mem_read_bytes":
            return int(sum(v.sum() for v in self.mem_read_bytes.values()))
        if counter == "mem_write_bytes":
            return int(sum(v.sum() for v in self.mem_write_bytes.values()))
        return int(self.events[counter].sum())

    def to_dict(self) -> dict:
        """Totals as a JSON-ready dict (the ``hwsim run --json`` layer record, plus per-kind bytes)."""
        out = {"name": self.name, "kind": self.kind, "n_in": self.n_in, "n_out": self.n_out}
        out.update({name: self.total(name) for name in EVENT_COUNTERS})
        out["mem_read_bytes"] = self.total("mem_read_bytes")
        out["mem_write_bytes"] = self.total("mem_write_bytes")
        out["mem_read_bytes_by_kind"] = {k: int(v.sum()) for k, v in self.mem_read_bytes.items() if v.any()}
        out["mem_write_bytes_by_kind"] = {k: int(v.sum()) for k, v in self.mem_write_bytes.items() if v.any()}
        return out


@dataclass
class Counts:
    """Counts of one run: ``phase`` is ``inference`` or ``learning``; one :class:`LayerCounts` per neuron layer."""

    timesteps: int
    batch: int
    mode: str
    phase: str = "inference"
    layers: list[LayerCounts] = field(default_factory=list)

    def total(self, counter: str) -> int:
        return sum(layer.total(counter) for layer in self.layers)

    def to_dict(self) -> dict:
        return {"timesteps": self.timesteps, "batch": self.batch, "mode": self.mode, "phase": self.phase,
                "layers": [layer.to_dict() for layer in self.layers]}


def add_inference_bytes(layer: LayerCounts, mode: str, has_bias: bool, adaptive: bool = False) -> None:
    """Fill the inference byte counters of ``layer`` from its event counts (conventions above); ``adaptive``:
    the layer's neurons are ALIF (their state includes the adaptation variable)."""
    ev = layer.events
    layer.mem_read_bytes["weights"] += ev["sop"] * WEIGHT_BYTES[mode]
    state = STATE_BYTES[mode] + (ADAPTATION_BYTES[mode] if adaptive else 0)
    state_read = state + (BIAS_BYTES[mode] if has_bias else 0)
    layer.mem_read_bytes["neuron_state"] += ev["neuron_updates"] * state_read
    layer.mem_write_bytes["neuron_state"] += ev["neuron_updates"] * state
