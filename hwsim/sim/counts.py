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

from collections.abc import Iterator, MutableMapping
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

# a LayerCounts keeps its counters as rows of one (COUNTER_ROWS, T) int64 block, in this order
EVENT_ROW = {name: k for k, name in enumerate(EVENT_COUNTERS)}
READ_ROW = {kind: len(EVENT_COUNTERS) + k for k, kind in enumerate(MEMORY_KINDS)}
WRITE_ROW = {kind: len(EVENT_COUNTERS) + len(MEMORY_KINDS) + k for k, kind in enumerate(MEMORY_KINDS)}
COUNTER_ROWS = len(EVENT_COUNTERS) + 2 * len(MEMORY_KINDS)
READ_ROWS = slice(len(EVENT_COUNTERS), len(EVENT_COUNTERS) + len(MEMORY_KINDS))
WRITE_ROWS = slice(len(EVENT_COUNTERS) + len(MEMORY_KINDS), COUNTER_ROWS)


class CounterRows(MutableMapping):
    """Named counters that are rows of one int64 block: ``rows[name]`` is that row, a ``(T,)`` view (writes
    through it, ``rows[name] += x`` included, land in the block); ``rows[name] = values`` copies ``values``
    into the row. The names are fixed (``EVENT_COUNTERS`` or ``MEMORY_KINDS``): a counter is never added or
    removed, and an unknown name is a ``KeyError``. Built in O(1), so a run's counts cost no view per row."""

    __slots__ = ("_block", "_rows")

    def __init__(self, block: np.ndarray, rows: dict[str, int]):
        self._block, self._rows = block, rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self._block[self._rows[name]]

    def __setitem__(self, name: str, values) -> None:
        self._block[self._rows[name]] = values

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"counter {name!r} cannot be removed: every layer keeps every counter")

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"CounterRows({ {name: self[name].tolist() for name in self._rows} })"


@dataclass
class LayerCounts:
    """Counts of one neuron layer over ``timesteps`` steps; every per-step array has shape ``(T,)``.

    ``events``, ``mem_read_bytes`` and ``mem_write_bytes`` map counter names to the rows of ``block``
    ``(COUNTER_ROWS, T)`` int64 (:class:`CounterRows`; rows ``EVENT_ROW``, ``READ_ROW``, ``WRITE_ROW``): a zeroed
    block when none is given, else the given one itself (the engine's kernels count straight into it)."""

    name: str
    kind: str
    n_in: int
    n_out: int
    timesteps: int
    block: np.ndarray | None = field(default=None, repr=False)
    neuron_spikes: np.ndarray | None = None
    neuron_active: np.ndarray | None = None
    input_spikes: np.ndarray | None = None
    neuron_weight_updates: np.ndarray | None = None
    channel_weight_updates: np.ndarray | None = None  # conv: shared-kernel weights written per output channel

    def __post_init__(self) -> None:
        if self.block is None:
            self.block = np.zeros((COUNTER_ROWS, self.timesteps), np.int64)
        elif self.block.shape != (COUNTER_ROWS, self.timesteps) or self.block.dtype != np.int64:
            raise ValueError(f"LayerCounts block must be ({COUNTER_ROWS}, {self.timesteps}) int64, got "
                             f"{self.block.shape} {self.block.dtype}")
        self.events = CounterRows(self.block, EVENT_ROW)
        self.mem_read_bytes = CounterRows(self.block, READ_ROW)
        self.mem_write_bytes = CounterRows(self.block, WRITE_ROW)

    def total(self, counter: str) -> int:
        """Sum over steps of an event counter, or of ``mem_read_bytes``/``mem_write_bytes`` (all kinds)."""
        if counter == "mem_read_bytes":
            return int(self.block[READ_ROWS].sum())
        if counter == "mem_write_bytes":
            return int(self.block[WRITE_ROWS].sum())
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
    add_inference_bytes_rows(layer.block[None], np.array([inference_byte_sizes(mode, has_bias, adaptive)]))


# the inference byte convention (module docstring) as data: (byte row, the event row it follows, the column of
# inference_byte_sizes giving the bytes per event)
INFERENCE_BYTES = ((READ_ROW["weights"], EVENT_ROW["sop"], 0),
                   (READ_ROW["neuron_state"], EVENT_ROW["neuron_updates"], 1),
                   (WRITE_ROW["neuron_state"], EVENT_ROW["neuron_updates"], 2))


def add_inference_bytes_rows(blocks: np.ndarray, sizes: np.ndarray, events: tuple[str, ...] = EVENT_COUNTERS) -> None:
    """:func:`add_inference_bytes` for many layers at once: ``blocks`` ``(layers, COUNTER_ROWS, T)`` int64 (each a
    :class:`LayerCounts` block), ``sizes`` ``(layers, 3)`` int, each row :func:`inference_byte_sizes` of its layer.
    ``events``: add only the byte rows that follow these event counters (the engine adds those of
    ``neuron_updates``, which depend on the input's shape only, once per shape, and the ``sop`` ones per run)."""
    for byte_row, event_row, column in INFERENCE_BYTES:
        if EVENT_COUNTERS[event_row] in events:
            blocks[:, byte_row] += blocks[:, event_row] * sizes[:, column, None]


def inference_byte_sizes(mode: str, has_bias: bool, adaptive: bool = False) -> tuple[int, int, int]:
    """Bytes per event at inference (conventions above): ``(weight read per SOP, neuron state read per
    update, neuron state written per update)``."""
    state = STATE_BYTES[mode] + (ADAPTATION_BYTES[mode] if adaptive else 0)
    return WEIGHT_BYTES[mode], state + (BIAS_BYTES[mode] if has_bias else 0), state
