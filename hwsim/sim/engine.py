"""The engine: runs a :class:`~hwsim.sim.network.Network` on spike input, event by event, and counts.

Input layout is ``(T, B, *input_shape)`` of 0/1 spikes. Float mode implements the SLTT/OTTT LIF with no
synaptic delay; fixed mode is Lava 0.10.0 ``fixed_pt`` bit for bit, including its one-step delay per
connection (hwsim step t is Lava step t + 1 when Lava's input ``RingBuffer`` holds the same columns).
Recurrent layers (:class:`~hwsim.sim.network.Recurrent`) feed their own spikes of step t - 1 back into step t
through their recurrent synapses, event by event (float and fixed alike: in fixed mode that is Lava's
one-step delay of the recurrent ``Dense``); dense and recurrent layers of adaptive
(:class:`~hwsim.sim.network.FloatALIF`) neurons run in float mode.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numba
import numpy as np

import hwsim.sim.threads  # noqa: F401  (sets the OpenMP wait policy before the first parallel kernel)
from hwsim.errors import InputError
from hwsim.sim.counts import (
    COUNTER_ROWS,
    EVENT_COUNTERS,
    EVENT_ROW,
    INFERENCE_BYTES,
    Counts,
    LayerCounts,
    add_inference_bytes_rows,
    inference_byte_sizes,
)
from hwsim.sim.kernels.layer import (
    run_fixed_layer,
    run_fixed_layer_serial,
    run_fixed_rec_layer,
    run_fixed_rec_layer_serial,
    run_float_layer,
    run_float_layer_serial,
    run_float_rec_layer,
    run_float_rec_layer_serial,
)
from hwsim.sim.kernels.records import (
    ACTIVE,
    N_COUNTERS,
    SOP,
    SOP_RECURRENT,
    SPIKES_IN,
    SPIKES_OUT,
    FixedNeurons,
    FloatNeurons,
    Recurrence,
    Synapses,
)
from hwsim.sim.kernels.synapses import CONV, DENSE, POOL, scan_events, scan_events_serial
from hwsim.sim.kernels.tally import assemble_counts
from hwsim.sim.network import (
    DRAW_CHUNK,
    Conv2d,
    Dense,
    Flatten,
    FloatALIF,
    FloatLIF,
    LoihiLIF,
    Network,
    NetworkError,
    Recurrent,
    SumPool2d,
)


@dataclass
class SimResult:
    """Output of :func:`simulate`.

    ``spikes[k]``: layer k's output spikes, ``(T, B, *out_shape)`` uint8, one entry per neuron layer;
    ``membranes[k]``: float mode u (before reset, float32); fixed mode v (after reset, int32);
    ``currents[k]``: fixed mode u (int32); both None unless ``record=True``.
    """

    spikes: list[np.ndarray]
    counts: Counts
    layer_names: list[str]
    membranes: list[np.ndarray] | None = None
    currents: list[np.ndarray] | None = None

    @property
    def output(self) -> np.ndarray:
        return self.spikes[-1]


@dataclass
class LayerPlan:
    """A neuron layer compiled for the kernels (internal). ``rec``: the :class:`Recurrence` record of a
    recurrent layer or a dense layer of adaptive neurons (they run in the recurrent kernels), else None."""

    layer: Dense | Recurrent | Conv2d | SumPool2d
    kind: int
    w2d: np.ndarray
    geom: np.ndarray
    n_in: int
    out_shape: tuple[int, ...]
    factor: int = 1
    in_layout: tuple[int, ...] = ()  # shape of the input as produced upstream (channels last inside the kernels)
    rec: Recurrence | None = None

    @property
    def recurrent(self) -> bool:
        """True when the layer has recurrent synapses (its work items then own whole samples)."""
        return self.rec is not None and self.rec.w_rec.shape[0] > 0

    def synapses(self, mode: str) -> Synapses:
        """The kernels' :class:`~hwsim.sim.kernels.records.Synapses` record of this layer."""
        weight_exp = int(self.layer.weight_exp) if mode == "fixed" else 0
        return Synapses(self.kind, self.w2d, self.geom, int(self.factor), weight_exp)


def check_shape(network: Network, shape: tuple, time_major: bool | None, move_hint: str) -> None:
    """The input's shape ``(T, B, *input_shape)`` and the axis guard (see :func:`check_input`), for numpy arrays
    and torch tensors alike; ``move_hint`` names how the caller moves the time axis first."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(network.input_shape) + 2 or shape[2:] != tuple(network.input_shape):
        raise InputError(f"input spikes must have shape (T, B, {', '.join(map(str, network.input_shape))}), "
                         f"got {shape}")
    if shape[0] < 1 or shape[1] < 1:
        raise InputError(f"input spikes need T >= 1 and B >= 1, got {shape}")
    declared = getattr(network, "timesteps", None)
    if not time_major and declared is not None and shape[1] == declared != shape[0]:
        raise InputError(f"input spikes {shape} look like (N, T, ...) data: axis 1 has {declared} steps, "
                         f"the T this network was trained with; the engine takes (T, B, ...), so pass "
                         f"{move_hint} (or time_major=True to run {shape[0]} steps of batch {declared})")


def check_input(network: Network, spikes: np.ndarray, time_major: bool | None = None) -> np.ndarray:
    """Validate spike input ``(T, B, *input_shape)`` and return it as uint8 ``(T, B, n_in)``.

    Axis guard: data sets are ``(N, T, ...)``, the engine takes ``(T, B, ...)``. When the network declares
    the time steps it was trained with (``network.timesteps``), input whose axis 1 has that many steps and
    whose axis 0 has another count is refused as swapped, unless ``time_major=True`` says axis 0 is time."""
    spikes = np.asarray(spikes)
    check_shape(network, spikes.shape, time_major, "np.moveaxis(x, 1, 0)")
    if spikes.dtype == np.bool_:
        flat = spikes.view(np.uint8)
    elif spikes.dtype == np.uint8:
        if spikes.max() > 1:
            raise InputError("input spikes must be 0/1 values; got uint8 values above 1")
        flat = spikes
    elif spikes.dtype.kind in "iuf":
        if not np.all((spikes == 0) | (spikes == 1)):
            raise InputError(f"input spikes must be 0/1 values; got dtype {spikes.dtype} with other values "
                             f"(encode analogue input first, e.g. hwsim.encoding.bernoulli)")
        flat = spikes.astype(np.uint8)
    else:
        raise InputError(f"input spikes must be bool, integer or float 0/1, got dtype {spikes.dtype}")
    return np.ascontiguousarray(flat.reshape(spikes.shape[0], spikes.shape[1], -1))


def lava_effective_weights(weight: np.ndarray) -> np.ndarray:
    """The weights Lava's fixed-point Dense really uses: with mixed signs the lowest bit is dropped."""
    w = weight.astype(np.int32)
    if w.min(initial=0) < 0 < w.max(initial=0):
        w = (w >> 1) << 1
    return w


def packed_dense_weights(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """Lava's effective Dense weights as 8-bit storage and a factor: ``effective == factor * stored``.

    Mixed signs: even values in -256..254, stored halved as int8 (factor 2); one sign: magnitudes 0..255
    as uint8 (factor 1 or -1). Transposed to fan-out-major ``(n_in, n_out)``.
    """
    w = lava_effective_weights(weight)
    if w.min(initial=0) < 0 < w.max(initial=0):
        return np.ascontiguousarray((w >> 1).T.astype(np.int8)), 2
    if w.min(initial=0) < 0:
        return np.ascontiguousarray((-w).T.astype(np.uint8)), -1
    return np.ascontiguousarray(w.T.astype(np.uint8)), 1


def channels_last_order(shape: tuple[int, ...]) -> np.ndarray:
    """Index map of the kernels' layout: ``flat_channels_last = flat_channels_first[order]`` for a
    ``(C, H, W)`` tensor (identity for 1-D shapes)."""
    n = int(np.prod(shape))
    if len(shape) != 3:
        return np.arange(n)
    return np.arange(n).reshape(shape).transpose(1, 2, 0).ravel()


def to_channels_last(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(..., C*H*W)`` channels first -> ``(..., H*W*C)`` channels last (a copy; 1-D shapes unchanged)."""
    if len(shape) != 3:
        return values
    lead = values.shape[:-1]
    return np.ascontiguousarray(np.moveaxis(values.reshape(*lead, *shape), -3, -1).reshape(*lead, -1))


def to_channels_first(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(..., H*W*C)`` channels last -> ``(..., C, H, W)`` (contiguous; 1-D shapes only reshaped)."""
    lead = values.shape[:-1]
    if len(shape) != 3:
        return values.reshape(*lead, *shape)
    c, h, w = shape
    return np.ascontiguousarray(np.moveaxis(values.reshape(*lead, h, w, c), -1, -3))


def conv_rows_weights(weight: np.ndarray) -> np.ndarray:
    """Conv weights ``(O, C, kh, kw)`` as the kernels' rows ``(kh*kw*C, O)``: row ``(ky*kw + kx)*C + c``."""
    o, c, kh, kw = weight.shape
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0).reshape(kh * kw * c, o))


def fanout_weights(weight: np.ndarray, mode: str) -> tuple[np.ndarray, int]:
    """Dense weights ``(n_out, n_in)`` fan-out-major ``(n_in, n_out)`` as the kernels read them, and their factor
    (fixed mode: :func:`packed_dense_weights`; float mode: float32, factor 1, no copy when the weights are
    stored column-major, as ``from_spec`` makes them)."""
    if mode == "fixed":
        return packed_dense_weights(weight)
    return np.ascontiguousarray(weight.T), 1


def recurrence(layer, mode: str) -> Recurrence | None:
    """The :class:`Recurrence` record of a recurrent layer or of a dense layer of adaptive neurons, else None:
    recurrent weights fan-out-major (``(0, 0)`` without them), adaptation ``rho``, ``beta`` (0 for LIF)."""
    adaptive = isinstance(layer.neuron, FloatALIF)
    if not isinstance(layer, Recurrent) and not adaptive:
        return None
    if isinstance(layer, Recurrent):
        w_rec, factor = fanout_weights(layer.recurrent, mode)
    else:
        w_rec, factor = np.zeros((0, 0), np.float32), 1
    rho = np.float32(layer.neuron.rho if adaptive else 0.0)
    beta = np.float32(layer.neuron.beta if adaptive else 0.0)
    return Recurrence(w_rec, int(factor), rho, beta)


def plan_layers(network: Network) -> list[LayerPlan]:
    """Compile each neuron layer: fan-out-major weights in the kernels' layout (channels last, see
    :mod:`hwsim.sim.kernels.synapses`) and geometry; Flatten layers fold away."""
    plans = []
    produced = network.input_shape  # shape of the tensor feeding the next layer, as the previous layer made it
    for layer, (in_shape, out_shape) in zip(network.layers, network.layer_shapes()):
        if isinstance(layer, Flatten):
            continue
        n_in = int(np.prod(in_shape))
        if n_in >= 2**23:
            raise NetworkError(f"layer {layer.name}: {n_in} inputs; the int32 accumulators are exact up to 2**23")
        geom = np.zeros(10, np.int64)
        if isinstance(layer, (Dense, Recurrent)):
            w2d, factor = fanout_weights(layer.weight, network.mode)
            if len(produced) == 3:  # after a spatial layer: rows in channels-last input order
                w2d = w2d[channels_last_order(produced)]
            plans.append(LayerPlan(layer, DENSE, w2d, geom, n_in, out_shape, factor, produced,
                                   recurrence(layer, network.mode)))
        else:
            c, h, w_in = in_shape
            if isinstance(layer, Conv2d):
                o, _, kh, kw = layer.weight.shape
                geom[:] = (c, h, w_in, o, out_shape[1], out_shape[2], kh, kw, layer.stride, layer.padding)
                w2d = conv_rows_weights(layer.weight)
                if network.mode == "fixed":
                    w2d = w2d.astype(np.int16)
                plans.append(LayerPlan(layer, CONV, w2d, geom, n_in, out_shape, 1, in_shape))
            else:
                k = layer.kernel
                geom[:] = (c, h, w_in, c, out_shape[1], out_shape[2], k, k, layer.stride, 0)
                dtype = np.float32 if network.mode == "float" else np.int16
                plans.append(LayerPlan(layer, POOL, np.full((1, 1), layer.weight, dtype), geom, n_in, out_shape, 1,
                                       in_shape))
        produced = out_shape
    return plans


# the kernels' counter rows are the first rows of a LayerCounts block (see hwsim.sim.kernels.records)
if {SPIKES_IN: "spikes_in", SPIKES_OUT: "spikes_out", SOP: "sop", SOP_RECURRENT: "sop_recurrent",
        ACTIVE: "neuron_updates_active"} != {k: EVENT_COUNTERS[k] for k in (SPIKES_IN, SPIKES_OUT, SOP, SOP_RECURRENT,
                                                                         ACTIVE)}:
    raise ImportError("hwsim.sim.kernels.records counter rows differ from hwsim.sim.counts.EVENT_COUNTERS")
NEURON_UPDATES = EVENT_ROW["neuron_updates"]
# the byte rows that follow a counter depending on the input's shape alone go into a shape's template; the rest
# (those following the kernels' counters) are added after each run by assemble_counts, from this table
_SHAPE_EVENTS = ("neuron_updates",)
_KERNEL_BYTES = np.array([entry for entry in INFERENCE_BYTES if EVENT_COUNTERS[entry[1]] not in _SHAPE_EVENTS],
                         np.int64).reshape(-1, 3)
# the arrays a kernel call does not use (zero-sized: never written, shared by every run)
_NO_RANGES, _NO_EVENTS = np.zeros(0, np.int64), np.zeros(0, np.int32)
_NO_DENSE, _NO_COUNTS = np.zeros((0, 0, 0), np.uint8), np.zeros((1, 0), np.int32)
_NO_SINK = (_NO_RANGES, _NO_RANGES, _NO_EVENTS)
_NO_STATE = {"float": np.zeros((0, 0, 0), np.float32), "fixed": np.zeros((0, 0, 0), np.int32)}

PARALLEL_MIN_WORK = 1_000_000  # neuron updates (T x B x neurons) below which a run stays on one thread
EMIT_RESERVE_BYTES = 2**30  # largest event buffer a layer reserves (virtual memory) to emit its events


CHUNKS_PER_THREAD = 2  # sample chunks per thread, handed out one at a time (see work_split)


def work_split(kind: int, batch: int, n_out: int, group: int, threads: int) -> tuple[int, int]:
    """``(n_chunks, n_blocks)`` for a layer: on several threads the samples in up to ``CHUNKS_PER_THREAD``
    chunks per thread, which the kernels hand out one at a time as threads become free (on a shared machine
    one core is often slower for a while, and with one fixed half of the batch per core the other waits for
    it). More chunks cost per-chunk state and counters, which for conv layers of 64k neurons outweighed
    the balance (measured on 2 cores: 784-512-512-10 at batch 64 gained with 2 chunks per thread, the VGG-like
    conv net at batch 16 lost 30 % with 8). When the batch is smaller than the thread count each sample's
    output neurons are also split into blocks (dense: columns, at least 64 per block; conv/pool: output
    positions). Results do not depend on the split."""
    chunks = 1 if threads <= 1 else max(1, min(batch, CHUNKS_PER_THREAD * threads))
    blocks = 1
    if batch < threads:
        units = max(1, n_out // 64) if kind == DENSE else n_out // group
        blocks = max(1, min(-(-threads // batch), units))
    return chunks, blocks


@dataclass(frozen=True)
class _LayerRun:
    """What every run of one neuron layer needs, fixed when the engine is built: its plan, the kernels' records
    as plain tuples (numba types those in C, named tuples in Python), its kernels and byte sizes per event."""

    plan: LayerPlan
    name: str
    kind: str
    n_out: int
    group: int  # neurons per accumulation pass (dense: all; conv/pool: the channels of a position)
    synapses: tuple
    neurons: tuple
    recurrence: tuple | None
    serial: object  # the numba kernels, one thread / parallel
    parallel: object
    weight_bytes: int
    state_read_bytes: int
    state_write_bytes: int
    neuron_offset: int  # where its per-neuron counters lie in a run's buffer (see Engine.refresh)

    @property
    def padded(self) -> int:
        """Per-chunk columns of each per-neuron counter: ``n_out`` rounded up to whole 64-byte lines of int32,
        so threads counting into neighbouring rows of a small layer never share a line."""
        return -(-self.n_out // 16) * 16

    @classmethod
    def of(cls, plan: LayerPlan, mode: str, neuron_offset: int) -> _LayerRun:
        layer = plan.layer
        n_out = math.prod(plan.out_shape)
        if plan.rec is None:
            serial, parallel = ((run_float_layer_serial, run_float_layer) if mode == "float" else
                                (run_fixed_layer_serial, run_fixed_layer))
        else:
            serial, parallel = ((run_float_rec_layer_serial, run_float_rec_layer) if mode == "float" else
                                (run_fixed_rec_layer_serial, run_fixed_rec_layer))
        sizes = inference_byte_sizes(mode, has_bias=layer.bias is not None,
                                     adaptive=isinstance(layer.neuron, FloatALIF))
        return cls(plan, layer.name, layer.kind, n_out, n_out if plan.kind == DENSE else int(plan.geom[3]),
                   tuple(plan.synapses(mode)), tuple(_neuron_record(layer, plan.out_shape, mode)),
                   None if plan.rec is None else tuple(plan.rec), serial, parallel, *sizes, neuron_offset)


@dataclass
class _LayerShape:
    """How one neuron layer runs for one input shape (see :class:`_RunShape`)."""

    blocks: int  # output-neuron blocks per sample chunk (work items = chunks x blocks)
    emit: bool  # the kernel writes the next layer's input events itself
    keep: bool  # its (T, B, n_out) spikes are returned
    neuron_spikes: np.ndarray  # (chunks, padded n_out) int32 views of the shape's per-neuron counter buffer
    neuron_active: np.ndarray
    in_counts: np.ndarray  # first layer: (chunks, n_in) int32 view; else the empty _NO_COUNTS
    sink: tuple  # (out_start, out_stop, out_buf) when it emits, else _NO_SINK
    out: tuple | None  # the kernel's whole output record when nothing in it is returned (see _RunShape), else None


@dataclass
class _RunShape:
    """What every run of one input shape ``(T, B)`` (with one thread split and record setting) needs besides its
    input and results, built once and kept for the runs of that shape that follow (:meth:`Engine._shape`):
    the chunks and per-layer work split, the kernels' counter rows ``kernel_counts`` ``(layers, N_COUNTERS, T)``
    and per-neuron counter buffer (both zeroed at the start of each run and copied out at its end), and the counter
    rows that depend on the shape alone (``template`` ``(layers, COUNTER_ROWS, T)``: ``neuron_updates`` and the
    bytes that follow it, zero elsewhere). A layer whose spikes are not returned, run as one work item per chunk,
    keeps its whole output record (a scratch spike row per chunk, its counter rows, its event sink)."""

    chunks: int
    kernel_counts: np.ndarray
    neuron_counts: np.ndarray
    template: np.ndarray
    layers: list[_LayerShape]
    # per layer (neuron_spikes, neuron_active) as (start, stop) into the run's int64 totals, when chunks == 1
    # and the layer is not spatial (else None: summed over chunks and reordered per run)
    totals_slices: list[tuple[tuple[int, int], tuple[int, int]] | None]


SHAPES_KEPT = 4  # input shapes whose _RunShape an engine keeps (runs alternating a few shapes rebuild none)
# a shape whose counter buffers are larger is not kept: runs that big spend far longer in the kernels than
# rebuilding takes, and an engine then holds at most SHAPES_KEPT x this beyond its two event buffers (which the
# kept shapes share with it: a shape is dropped when a buffer it holds is replaced)
SHAPE_KEEP_BYTES = 8 << 20


class Engine:
    """A network compiled for the kernels. Build once, then :meth:`run` many inputs.

    The engine keeps fan-out-major copies of the weights (shared with the network when a dense layer's
    weights are stored column-major); after changing ``network``'s weights build a new engine (or call
    :meth:`refresh`). Kernels run on ``numba.get_num_threads()`` threads (see :mod:`hwsim.sim.threads`);
    ``threads`` overrides the work split and runs the parallel kernels whenever numba has two threads or more,
    however small the run (for tests: any split gives bit-identical results); by default a run under
    ``PARALLEL_MIN_WORK`` neuron updates runs the serial kernels. What a run needs besides its input is kept per
    input shape (:class:`_RunShape`, up to ``SHAPES_KEPT``); results never share memory with it.
    After each :meth:`run`, ``layer_seconds`` holds the wall time per neuron layer (kernel, counters and
    the spike scan for the next layer) and, with ``cpu_times=True``, ``layer_cpu_seconds`` the process CPU time
    (all threads; a system call per layer, so off by default: ``[]``).
    """

    def __init__(self, network: Network, threads: int | None = None, cpu_times: bool = False):
        self.network = network
        self.threads = threads
        self.cpu_times = cpu_times
        self.layer_seconds: list[float] = []
        self.layer_cpu_seconds: list[float] = []
        self._event_buffers: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None, None]
        self._buffers_lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        """Recompile the layer plans from the network's current weights."""
        self.plans = plan_layers(self.network)
        # a run's per-neuron counters are one int32 buffer: per layer, spikes then active updates, each
        # (chunks, padded n_out), then the first layer's input spikes (chunks, n_in); offsets in units of chunks
        self._layer_runs, offset = [], 0
        for plan in self.plans:
            run = _LayerRun.of(plan, self.network.mode, offset)
            self._layer_runs.append(run)
            offset += 2 * run.padded
        self._input_count_offset = offset
        self._neuron_count_size = offset + self.plans[0].n_in
        self._n_outs = np.array([run.n_out for run in self._layer_runs], np.int64)
        self._neurons = int(self._n_outs.sum())
        self._byte_sizes = np.array([(run.weight_bytes, run.state_read_bytes, run.state_write_bytes)
                                     for run in self._layer_runs], np.int64)
        self._shapes: dict[tuple, _RunShape] = {}

    def run(self, spikes: np.ndarray, record: bool | str = False, time_major: bool | None = None) -> SimResult:
        """Run on 0/1 ``spikes`` of shape ``(T, B, *input_shape)``; returns spikes and exact counts.

        ``record``: ``False`` keeps the output layer's spikes only (hidden layers are ``None`` in
        ``SimResult.spikes``); ``"spikes"`` keeps every layer's spikes; ``True`` also every layer's
        membrane (and, fixed mode, current) per step.
        ``time_major=True`` skips the axis guard of :func:`check_input` (axis 0 is time, whatever its length).
        """
        if record not in (False, True, "spikes"):
            raise InputError(f"record must be False, True or 'spikes', got {record!r}")
        s_in = check_input(self.network, spikes, time_major)
        steps, batch = s_in.shape[:2]
        if steps * batch >= 2**31:
            raise InputError(f"T x B = {steps * batch} steps in one run; split the batch (limit 2**31)")
        numba_threads = numba.get_num_threads()
        threads = self.threads or numba_threads
        # one thread, or a run too small to pay for handing work to other threads (measured: 784-512-512-10 at
        # batch 1, T = 100, ran 3x slower on 2 threads): the serial kernels. Results are the same either way.
        work = steps * batch * self._neurons
        parallel = numba_threads > 1 and (self.threads is not None or work >= PARALLEL_MIN_WORK)
        if not parallel and self.threads is None:
            threads = 1  # on one thread a split only costs (column blocks also forgo the kernels' event emission)
        # event buffers and run shapes are kept between runs (fresh ones would cost page faults and Python on every
        # run), unless another Python thread is running this engine right now: then this run builds its own
        own_buffers = self._buffers_lock.acquire(blocking=False)
        # parallel kernels hand work items out one at a time (see work_split); the serial ones need no setting
        chunk_size = numba.set_parallel_chunksize(1) if parallel else None
        try:
            shape = self._shape(steps, batch, threads, record is not False, own_buffers)
            return self._run_layers(s_in, shape, record, parallel)
        finally:
            if chunk_size is not None:
                numba.set_parallel_chunksize(chunk_size)
            if own_buffers:
                self._buffers_lock.release()

    def _shape(self, steps: int, batch: int, threads: int, keep_all: bool, own: bool) -> _RunShape:
        """The :class:`_RunShape` of a run: the kept one when this engine ran this shape before (and ``own``: this
        run holds the engine's buffers), else a new one (kept when ``own``)."""
        key = (steps, batch, threads, keep_all)
        shape = self._shapes.get(key) if own else None
        if shape is not None:
            shape.kernel_counts.fill(0)
            shape.neuron_counts.fill(0)
            return shape
        runs = self._layer_runs
        # chunks is the same for every layer (see work_split); per-neuron counters per chunk, int32
        chunks = work_split(DENSE, batch, 1, 1, threads)[0]
        neuron_counts = np.zeros(chunks * self._neuron_count_size, np.int32)
        kernel_counts = np.zeros((len(runs), N_COUNTERS, steps), np.int64)
        template = np.zeros((len(runs), COUNTER_ROWS, steps), np.int64)
        template[:, NEURON_UPDATES] = batch * self._n_outs[:, None]
        add_inference_bytes_rows(template, self._byte_sizes, events=_SHAPE_EVENTS)
        layers, slices, last = [], [], len(runs) - 1
        blocks = [1 if run.plan.recurrent else work_split(run.plan.kind, batch, run.n_out, run.group, threads)[1]
                  for run in runs]  # per chunk (a recurrent step needs all spikes of the step before: one block)
        # a layer emits the next layer's input events itself when each work item owns whole steps (into a buffer
        # reserved for every neuron of every slot, touched only where written; above EMIT_RESERVE_BYTES the dense
        # spikes are scanned instead, so a run never reserves 4x its spikes)
        emits = [index < last and blocks[index] == 1 and batch * steps * run.n_out * 4 <= EMIT_RESERVE_BYTES
                 for index, run in enumerate(runs)]
        # layers alternate between two event buffers, each sized first for its largest layer (so no layer of this
        # shape holds a buffer a later layer replaced)
        sinks = [_NO_SINK, _NO_SINK]
        for parity in (0, 1):
            widest = max((run.n_out for index, run in enumerate(runs) if emits[index] and index % 2 == parity),
                         default=0)
            if widest:
                sinks[parity] = self._event_buffer(parity, batch * steps, widest, own)
        for index, run in enumerate(runs):
            emit, keep = emits[index], keep_all or index == last
            at, pad = chunks * run.neuron_offset, run.padded
            in_counts = _NO_COUNTS
            if index == 0:
                start = chunks * self._input_count_offset
                in_counts = neuron_counts[start:start + chunks * run.plan.n_in].reshape(chunks, run.plan.n_in)
            spikes = neuron_counts[at:at + chunks * pad].reshape(chunks, pad)
            active = neuron_counts[at + chunks * pad:at + 2 * chunks * pad].reshape(chunks, pad)
            sink = sinks[index % 2] if emit else _NO_SINK
            out = None
            if not keep and emit and chunks * blocks[index] == 1:  # spikes nobody asked for: one scratch row per chunk
                no_state = _NO_STATE[self.network.mode]
                out = (np.zeros((1, chunks, run.n_out), np.uint8), no_state, no_state, kernel_counts[index][None],
                       spikes, active, *sink)
            layers.append(_LayerShape(blocks[index], emit, keep, spikes, active, in_counts, sink, out))
            flat = chunks == 1 and len(run.plan.out_shape) != 3
            slices.append(((run.neuron_offset, run.neuron_offset + run.n_out),
                           (run.neuron_offset + run.padded, run.neuron_offset + run.padded + run.n_out))
                          if flat else None)
        shape = _RunShape(chunks, kernel_counts, neuron_counts, template, layers, slices)
        kept_bytes = kernel_counts.nbytes + neuron_counts.nbytes + template.nbytes
        if own and SHAPES_KEPT > 0 and kept_bytes <= SHAPE_KEEP_BYTES:
            if len(self._shapes) >= SHAPES_KEPT:
                self._shapes.pop(next(iter(self._shapes)))
            self._shapes[key] = shape
        return shape

    def _event_buffer(self, parity: int, slots: int, n_out: int, own: bool) -> tuple[np.ndarray, ...]:
        """``(out_start, out_stop, out_buf)`` for the layers of a run that emit events into buffer ``parity``: (slots,)
        int64 twice and room for every neuron of every slot of the widest of them (``slots * n_out`` int32, reserved:
        pages are touched only where events are written). Layers alternate between two buffers (a layer reads the
        one the layer before wrote), which the engine keeps and only ever grows (``out_start``/``out_stop`` are then
        the first ``slots`` entries of longer arrays): runs of other shapes reuse them, and the kept run shapes,
        which hold them, are dropped when one grows."""
        kept = self._event_buffers[parity] if own else None
        if kept is None or kept[0].shape[0] < slots or kept[2].shape[0] < slots * n_out:
            capacity = max(slots, kept[0].shape[0] if kept else 0)
            size = max(slots * n_out, kept[2].shape[0] if kept else 0)
            kept = (np.zeros(capacity, np.int64), np.zeros(capacity, np.int64), np.empty(size, np.int32))
            if own:
                self._event_buffers[parity] = kept
                self._shapes = {}  # they hold the buffer this one replaces
        return kept[0][:slots], kept[1][:slots], kept[2]

    def _run_layers(self, s_in: np.ndarray, shape: _RunShape, record: bool | str, parallel: bool) -> SimResult:
        """The layer loop of :meth:`run` on validated uint8 input ``(T, B, n_in)``.

        What does not depend on the input is the shape's (:class:`_RunShape`): the kernels count into its counter
        rows (a call of one work item straight into the layer's rows, more items into per-item rows summed here)
        and per-neuron buffer, and a layer whose spikes are not returned runs on its kept output record; the
        counts are assembled once for all layers after the last kernel (:meth:`_layer_counts`)."""
        network = self.network
        runs = self._layer_runs
        steps, batch = s_in.shape[:2]
        fixed = network.mode == "fixed"
        no_state = _NO_STATE[network.mode]
        chunks, cpu_times = shape.chunks, self.cpu_times
        # the first layer reads the dense input itself (each step's row turned into events in its work item);
        # later layers read the events the layer before emitted (or scanned), where they lie
        source = (_NO_RANGES, _NO_RANGES, _NO_EVENTS, to_channels_last(s_in, network.input_shape),
                  shape.layers[0].in_counts)
        del s_in
        out_spikes, membranes, currents = [], [], []
        last = len(runs) - 1
        self.layer_seconds, self.layer_cpu_seconds = [], []
        for index, (run, lay) in enumerate(zip(runs, shape.layers)):
            started = time.perf_counter()
            cpu_started = time.process_time() if cpu_times else 0.0
            items = chunks * lay.blocks
            out = lay.out
            if out is None:
                n_out = run.n_out
                step_counts = shape.kernel_counts[index][None] if items == 1 else np.zeros((items, N_COUNTERS, steps),
                                                                                          np.int64)
                # spikes nobody asked for never exist as a (T, B, n) array: each chunk writes one scratch row
                s_out = np.zeros((steps, batch, n_out) if lay.keep or not lay.emit else (1, chunks, n_out), np.uint8)
                u_rec = v_rec = no_state
                if record is True:
                    u_rec = np.zeros((steps, batch, n_out), no_state.dtype)
                    if fixed:
                        v_rec = np.zeros((steps, batch, n_out), np.int32)
                # records go to the kernels as plain tuples: numba types those in C, named tuples in Python (slower)
                out = (s_out, u_rec, v_rec, step_counts, lay.neuron_spikes, lay.neuron_active, *lay.sink)
            kernel = run.parallel if parallel else run.serial
            if run.recurrence is None:
                kernel(run.synapses, run.neurons, source, out, chunks, lay.blocks)
            else:  # the recurrent kernels also take the Recurrence record
                kernel(run.synapses, run.recurrence, run.neurons, source, out, chunks, lay.blocks)
            s_out, u_rec, v_rec, step_counts = out[:4]
            del out
            if items > 1:
                step_counts.sum(axis=0, out=shape.kernel_counts[index])
            if record is True:
                membranes.append(to_channels_first(v_rec if fixed else u_rec, run.plan.out_shape))
                if fixed:
                    currents.append(to_channels_first(u_rec, run.plan.out_shape))
            if lay.emit:
                source = (*lay.sink, _NO_DENSE, _NO_COUNTS)
            elif index < last:
                scan = scan_events if parallel else scan_events_serial
                offsets, events = scan(s_out)
                source = (offsets[:-1], offsets[1:], events, _NO_DENSE, _NO_COUNTS)
            self.layer_seconds.append(time.perf_counter() - started)
            if cpu_times:
                self.layer_cpu_seconds.append(time.process_time() - cpu_started)
            out_spikes.append(to_channels_first(s_out, run.plan.out_shape) if lay.keep else None)
            del s_out, u_rec, v_rec, step_counts
        counts = Counts(timesteps=steps, batch=batch, mode=network.mode, layers=self._layer_counts(shape))
        return SimResult(out_spikes, counts, [run.name for run in runs], membranes if record is True else None,
                         currents if record is True and fixed else None)

    def _layer_counts(self, shape: _RunShape) -> list[LayerCounts]:
        """Every layer's :class:`LayerCounts` of the run just made in ``shape``: the counter blocks ``(layers,
        COUNTER_ROWS, T)`` are the shape's template (``neuron_updates`` and its bytes) plus the kernels' rows, the
        bytes that follow them and the input spikes (:func:`~hwsim.sim.kernels.tally.assemble_counts`, one call for
        all layers); the per-neuron totals come from the per-chunk int32 buffer (regions as laid out in
        :meth:`refresh`). Everything is copied out of the shape, which serves the next run."""
        runs = self._layer_runs
        blocks, totals = assemble_counts(shape.template, shape.kernel_counts, _KERNEL_BYTES, self._byte_sizes,
                                         shape.neuron_counts)
        chunks, neuron_counts = shape.chunks, shape.neuron_counts

        def per_neuron(offset: int, n: int, padded: int, layout: tuple[int, ...]) -> np.ndarray:
            """One counter's per-neuron totals (channels first): ``n`` of ``padded`` per-chunk columns at
            ``offset`` (in units of ``chunks`` columns: rows of chunk ``c`` lie at ``chunks * offset + c *
            padded``)."""
            if chunks == 1:
                values = totals[offset:offset + n]
            else:
                values = neuron_counts[chunks * offset:chunks * (offset + padded)].reshape(chunks, padded)
                values = values[:, :n].sum(axis=0, dtype=np.int64)
            return _channels_first_counts(values, layout) if len(layout) == 3 else values

        layers = []
        for index, (run, block, flat) in enumerate(zip(runs, blocks, shape.totals_slices)):
            plan = run.plan
            lc = LayerCounts(run.name, run.kind, plan.n_in, run.n_out, blocks.shape[2], block)
            if flat is not None:  # one chunk, not spatial: views of the totals
                (a, b), (c, d) = flat
                lc.neuron_spikes, lc.neuron_active = totals[a:b], totals[c:d]
            else:
                lc.neuron_spikes = per_neuron(run.neuron_offset, run.n_out, run.padded, plan.out_shape)
                lc.neuron_active = per_neuron(run.neuron_offset + run.padded, run.n_out, run.padded, plan.out_shape)
            if index == 0:
                lc.input_spikes = per_neuron(self._input_count_offset, plan.n_in, plan.n_in, plan.in_layout)
            else:
                lc.input_spikes = layers[-1].neuron_spikes.copy()
            layers.append(lc)
        return layers


def simulate(network: Network, spikes: np.ndarray, record: bool | str = "spikes",
             time_major: bool | None = None) -> SimResult:
    """One-shot :class:`Engine` run (see :meth:`Engine.run`); keeps every layer's spikes unless
    ``record=False``."""
    return Engine(network).run(spikes, record=record, time_major=time_major)


def _channels_first_counts(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Per-neuron counters from the kernels' channels-last order back to the network's channels-first order."""
    values = values.astype(np.int64, copy=False)
    if len(shape) != 3:
        return values
    c, h, w = shape
    return np.ascontiguousarray(values.reshape(h, w, c).transpose(2, 0, 1).ravel())


def _neuron_record(layer, out_shape: tuple[int, ...], mode: str) -> FloatNeurons | FixedNeurons:
    """The kernels' neuron record of ``layer`` (bias per neuron, channels last)."""
    if mode == "float":
        lif: FloatLIF | FloatALIF = layer.neuron
        return FloatNeurons(_float_bias(layer, out_shape), np.float32(lif.lam), np.float32(lif.v_th),
                            lif.reset == "soft")
    fixed: LoihiLIF = layer.neuron
    return FixedNeurons(_fixed_bias(layer, out_shape, fixed.bias_exp), int(fixed.du), int(fixed.dv), int(fixed.vth))


def _float_bias(layer, out_shape) -> np.ndarray:
    n_out = int(np.prod(out_shape))
    if layer.bias is None:
        return np.zeros(n_out, np.float32)
    return np.tile(layer.bias.astype(np.float32), n_out // layer.bias.shape[0])  # per channel, channels last


def _fixed_bias(layer, out_shape, bias_exp: int) -> np.ndarray:
    n_out = int(np.prod(out_shape))
    if layer.bias is None:
        return np.zeros(n_out, np.int32)
    mant = np.tile(layer.bias.astype(np.int32), n_out // layer.bias.shape[0])  # per channel, channels last
    return (mant << bias_exp).astype(np.int32)


def bernoulli(shape: tuple[int, ...], rate: float, seed: int = 0) -> np.ndarray:
    """Bernoulli spikes with probability ``rate`` per entry, uint8 array of ``shape``.

    Written straight into the uint8 result, chunk by chunk (float32 draws of at most ``DRAW_CHUNK``
    values at a time); the values are those of one float32 draw of the whole shape compared with ``rate``.
    """
    if not 0.0 <= rate <= 1.0:
        raise InputError(f"rate must be a probability in [0, 1], got {rate}")
    rng = np.random.default_rng(seed)
    out = np.empty(shape, np.uint8)
    flat = out.reshape(-1).view(np.bool_)
    for start in range(0, flat.shape[0], DRAW_CHUNK):
        stop = min(flat.shape[0], start + DRAW_CHUNK)
        np.less(rng.random(stop - start, dtype=np.float32), rate, out=flat[start:stop])
    return out


__all__ = ["Engine", "simulate", "SimResult", "InputError", "NetworkError", "bernoulli", "check_input"]
