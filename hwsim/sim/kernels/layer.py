"""Whole-run layer loops: one call runs one neuron layer over all ``T`` steps and ``B`` samples.

Networks are run layer after layer (each layer sees the previous layer's complete spike train), which is
exact for feed-forward graphs and keeps every step's work inside compiled code. A recurrent layer's loop over
steps feeds its own spikes back (the recurrent kernels at the end of this module): recurrence stays inside
one layer, so the layer order still holds.

**Records.** A call takes a :class:`~hwsim.sim.kernels.records.Synapses` record (weights, geometry), a neuron
record (:class:`~hwsim.sim.kernels.records.FloatNeurons` or :class:`~hwsim.sim.kernels.records.FixedNeurons`),
an :class:`~hwsim.sim.kernels.records.EventSource` (the input) and a
:class:`~hwsim.sim.kernels.records.LayerOutput` (spikes, recorded state, counters, emitted events); their
fields, shapes and dtypes are documented in :mod:`hwsim.sim.kernels.records`. Each work item unpacks them once.

**Parallel work split.** A call runs ``n_chunks * n_blocks`` independent work items in parallel
(``numba.prange``): item ``w`` takes the samples of chunk ``w // n_blocks`` (contiguous, ``B`` split as
evenly as possible) and the output neurons of block ``w % n_blocks`` (dense: a range of output columns;
conv and pool: a range of output positions, each with all its channels). Every neuron's arithmetic is the
same whatever the split, so spikes, membranes and counts are bit-identical for any thread count.

**Input.** Either address events (slot ``b*T + t`` holds ``in_events[in_start[slot]:in_stop[slot]]``,
ascending; the ranges of consecutive slots need not touch, so a layer reads the events the previous layer
emitted where they were written), or, for the first layer, the dense 0/1 input ``in_dense`` ``(T, B, n_in)``
uint8 (channels last), turned into each slot's events inside the work item while the row is in cache (no
separate scan pass). The unused form is passed empty.

Counters: ``step_counts[w, k, t]`` per work item (k: ``SOP``, ``SPIKES_OUT``, ``ACTIVE``, ``SPIKES_IN`` when
the input is dense; summed by the caller); ``neuron_spikes``/``neuron_active`` ``(n_chunks, n_out)`` int32
per sample chunk; ``in_counts`` ``(n_chunks, n_in)`` int32 spikes per input neuron when the input is dense
(counted by block 0 of each chunk), else ``(1, 0)``. Layouts as in :mod:`hwsim.sim.kernels.synapses`
(channels last).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.sim.kernels.lif import U24, alif_float_step, lif_fixed_masked_step, lif_fixed_step, lif_float_step, wrap32
from hwsim.sim.kernels.records import ACTIVE, SOP, SOP_RECURRENT, SPIKES_IN, SPIKES_OUT
from hwsim.sim.kernels.synapses import (
    DENSE,
    POOL,
    conv_rows,
    dense_rows,
    fill_events,
    pool_position,
    position_starts,
    sum_rows,
)

MASK24 = (1 << 24) - 1


@nb.njit(cache=True, inline="always")
def block_range(kind, n_out, group, n_blocks, blk):
    """Neurons ``[lo, hi)`` of block ``blk``: dense splits columns (multiples of 16 so vector loops stay
    aligned), conv/pool split output positions of ``group`` channels each."""
    if kind == DENSE:
        units = (n_out + 15) // 16
        lo = min(n_out, (blk * units // n_blocks) * 16)
        hi = min(n_out, ((blk + 1) * units // n_blocks) * 16)
        return lo, hi
    n_pos = n_out // group
    return (blk * n_pos // n_blocks) * group, ((blk + 1) * n_pos // n_blocks) * group


@nb.njit(cache=True, inline="always")
def layer_group(kind, n_out, geom):
    """Neurons that share one accumulation pass: dense all of them, conv/pool the channels of a position."""
    if kind == DENSE:
        return n_out
    return geom[3]


@nb.njit(cache=True, inline="always")
def accumulate_group(kind, in_events, start, stop, pos_start, rows, w2d, geom, p, lo, acc):
    """Synaptic input of one group for one step into ``acc`` (zeroed here); returns the SOPs.
    Dense: columns ``lo:lo+len(acc)``; conv/pool: output position ``p``."""
    acc[:] = 0
    if kind == DENSE:
        return dense_rows(in_events, start, stop, w2d, acc, lo)
    if kind == POOL:
        return pool_position(p, in_events, pos_start, geom, w2d[0, 0], acc)
    n = conv_rows(p, in_events, pos_start, geom, rows)
    return sum_rows(rows, n, w2d, acc)


@nb.njit(cache=True, inline="always")
def emit_slot(spike_row, out_buf, cursor, out_start, out_stop, slot):
    """Append the indices of ``spike_row``'s spikes to ``out_buf`` at ``cursor``, record where they lie as slot
    ``slot``'s range; returns the new cursor."""
    end = fill_events(spike_row, out_buf, cursor)
    out_start[slot] = cursor
    out_stop[slot] = end
    return end


@nb.njit(cache=True, inline="always")
def accumulate_block(kind, events, start, stop, pos_start, rows, w2d, geom, group, lo, hi, acc):
    """One step's synaptic input of the block's neurons ``lo:hi`` from ``events[start:stop]`` into ``acc``
    (``(hi - lo,)``, group after group); ``kind``, ``w2d``, ``geom`` as in :class:`Synapses`; ``pos_start``
    ``(H*W + 1,)`` and ``rows`` ``(kh*kw*C,)`` int64 are scratch for conv and pool. Returns the SOPs.

    The per-step helpers take arrays, not records: a record unpacked inside the step loop would take and drop a
    reference to each of its arrays every step (measured: fixed point 3-5 % slower)."""
    if kind == DENSE:  # one pass over the whole block (no per-group views)
        acc[:] = 0
        return dense_rows(events, start, stop, w2d, acc, lo)
    position_starts(events, start, stop, geom[0], pos_start)
    width = max(1, min(group, hi - lo))
    sops = 0
    for g0 in range(lo, hi, width):
        k0 = g0 - lo
        sops += accumulate_group(kind, events, start, stop, pos_start, rows, w2d, geom, g0 // group, g0,
                                 acc[k0:k0 + width])
    return sops


@nb.njit(cache=True, inline="always")
def step_events(in_start, in_stop, in_events, in_dense, local, t, b, steps):
    """Step ``t`` of sample ``b``'s input events (arrays of the :class:`EventSource`) as ``(events, start,
    stop)``: the dense input row's spike indices written into ``local`` (n_in,), or the slot's range of
    ``in_events`` where it lies (no copy; both int32 vectors, so the accumulation below is compiled once)."""
    if in_dense.shape[0] > 0:
        return local, 0, fill_events(in_dense[t, b], local, 0)
    slot = b * steps + t
    return in_events, in_start[slot], in_stop[slot]


@nb.njit(cache=True, inline="always")
def count_inputs(events, start, stop, in_counts_row, counts, t):
    """Dense input only: add the step's input spikes ``events[start:stop]`` to the per-neuron and per-step
    counters."""
    for e in range(start, stop):
        in_counts_row[events[e]] += 1
    counts[SPIKES_IN, t] += stop - start


@nb.njit(cache=True, inline="always")
def work_item_span(w, syn, source, out, n_chunks, n_blocks):
    """What work item ``w`` covers: ``(steps, batch, group, counting, lo, hi)`` -- its output neurons
    ``lo:hi``, ``group`` neurons per accumulation pass, and whether it counts the dense input (block 0 of each
    chunk does)."""
    kind, _, geom, _, _ = syn
    in_start, _, _, in_dense, _ = source
    s_out, _, _, step_counts, _, _, _, _, _ = out
    steps = step_counts.shape[2]
    batch = in_dense.shape[1] if in_dense.shape[0] > 0 else in_start.shape[0] // steps
    n_out = s_out.shape[2]
    group = layer_group(kind, n_out, geom)
    counting = in_dense.shape[0] > 0 and w % n_blocks == 0
    lo, hi = block_range(kind, n_out, group, n_blocks, w % n_blocks)
    return steps, batch, group, counting, lo, hi


@nb.njit(cache=True, inline="always")
def scratch(syn, n_out):
    """Per-item scratch of the accumulation: ``(pos_start (H*W + 1,), rows (kh*kw*C,), local (n_in,))``."""
    kind, w2d, geom, _, _ = syn
    n_pos_in = geom[1] * geom[2] if kind != DENSE else 0
    n_in = w2d.shape[0] if kind == DENSE else geom[0] * geom[1] * geom[2]
    pos_start = np.zeros(n_pos_in + 1, np.int64)
    rows = np.zeros(w2d.shape[0] if kind != DENSE else 0, np.int64)
    local = np.zeros(n_in, np.int32)  # one step's input events (one copy of accumulate_block to compile)
    return pos_start, rows, local


@nb.njit(cache=True, inline="always")
def float_work_item(w, syn, neurons, source, out, n_chunks, n_blocks):
    """Work item ``w`` of :func:`run_float_layer` (same arguments)."""
    kind, w2d, geom, _, _ = syn
    bias, lam, v_th, soft = neurons
    in_start, in_stop, in_events, in_dense, in_counts = source
    s_out, u_rec, _, step_counts, neuron_spikes, neuron_active, out_start, out_stop, out_buf = out
    steps, batch, group, counting, lo, hi = work_item_span(w, syn, source, out, n_chunks, n_blocks)
    if hi <= lo and not counting:
        return
    n_out = s_out.shape[2]
    full = s_out.shape[0] == steps and s_out.shape[1] == batch  # else a scratch row per chunk (spikes not kept)
    whole = lo == 0 and hi == n_out  # the item owns every neuron: no per-step view of its block
    emit = out_start.shape[0] > 0
    record = u_rec.shape[0] > 0
    chunk = w // n_blocks
    acc = np.zeros(hi - lo, np.float32)  # the block's synaptic input of one step, group after group
    u = np.zeros(hi - lo, np.float32)
    s = np.zeros(hi - lo, np.float32)
    pos_start, rows, local = scratch(syn, n_out)
    no_rec = np.zeros(0, np.float32)
    spikes_n = neuron_spikes[chunk, lo:hi]
    active_n = neuron_active[chunk, lo:hi]
    inputs_n = in_counts[chunk] if counting else in_counts[0]
    bias_b = bias[lo:hi]
    counts = step_counts[w]
    first = chunk * batch // n_chunks
    cursor = first * steps * n_out  # this chunk's region of out_buf (room for every neuron of its slots)
    for b in range(first, (chunk + 1) * batch // n_chunks):
        u[:] = 0.0
        s[:] = 0.0
        for t in range(steps):
            events, start, stop = step_events(in_start, in_stop, in_events, in_dense, local, t, b, steps)
            if counting:
                count_inputs(events, start, stop, inputs_n, counts, t)
            counts[SOP, t] += accumulate_block(kind, events, start, stop, pos_start, rows, w2d, geom, group, lo, hi,
                                             acc)
            rec = u_rec[t, b, lo:hi] if record else no_rec
            spike_row = s_out[t, b] if full else s_out[0, chunk]
            block_row = spike_row if whole else spike_row[lo:hi]
            fired, busy = lif_float_step(acc, bias_b, lam, v_th, soft, u, s, block_row, rec, spikes_n, active_n)
            counts[SPIKES_OUT, t] += fired
            counts[ACTIVE, t] += busy
            if emit:  # the next layer's input events, written while the step's spikes are in cache
                cursor = emit_slot(spike_row, out_buf, cursor, out_start, out_stop, b * steps + t)


@nb.njit(cache=True, parallel=True)
def run_float_layer(syn, neurons, source, out, n_chunks, n_blocks):
    """Float layer: ``syn`` a :class:`Synapses` record (float32 weights), ``neurons`` a :class:`FloatNeurons`,
    ``source`` an :class:`EventSource`, ``out`` a :class:`LayerOutput` (``u_rec``: u before reset, float32);
    ``n_chunks * n_blocks`` work items run in parallel (see the module docstring)."""
    for w in nb.prange(n_chunks * n_blocks):
        float_work_item(w, syn, neurons, source, out, n_chunks, n_blocks)


@nb.njit(cache=True)
def run_float_layer_serial(syn, neurons, source, out, n_chunks, n_blocks):
    """:func:`run_float_layer` on the calling thread (no thread hand-off: the 1-thread path)."""
    for w in range(n_chunks * n_blocks):
        float_work_item(w, syn, neurons, source, out, n_chunks, n_blocks)


@nb.njit(cache=True, inline="always")
def fixed_work_item(w, syn, neurons, source, out, n_chunks, n_blocks):
    """Work item ``w`` of :func:`run_fixed_layer` (same arguments)."""
    kind, w2d, geom, factor, weight_exp = syn
    bias_eff, du, dv, vth = neurons
    in_start, in_stop, in_events, in_dense, in_counts = source
    s_out, u_rec, v_rec, step_counts, neuron_spikes, neuron_active, out_start, out_stop, out_buf = out
    steps, batch, group, counting, lo, hi = work_item_span(w, syn, source, out, n_chunks, n_blocks)
    if hi <= lo and not counting:
        return
    n_out = s_out.shape[2]
    full = s_out.shape[0] == steps and s_out.shape[1] == batch  # else a scratch row per chunk (spikes not kept)
    whole = lo == 0 and hi == n_out  # the item owns every neuron: no per-step view of its block
    emit = out_start.shape[0] > 0
    record = v_rec.shape[0] > 0
    left = max(weight_exp, 0)
    right = max(-weight_exp, 0)
    chunk = w // n_blocks
    acc = np.zeros(hi - lo, np.int32)  # the block's synaptic input of one step, group after group
    pending = np.zeros(hi - lo, np.int32)
    u = np.zeros(hi - lo, np.int32)
    v = np.zeros(hi - lo, np.int32)
    pos_start, rows, local = scratch(syn, n_out)
    no_rec = np.zeros(0, np.int32)
    spikes_n = neuron_spikes[chunk, lo:hi]
    active_n = neuron_active[chunk, lo:hi]
    inputs_n = in_counts[chunk] if counting else in_counts[0]
    bias_b = bias_eff[lo:hi]
    counts = step_counts[w]
    first = chunk * batch // n_chunks
    cursor = first * steps * n_out  # this chunk's region of out_buf (room for every neuron of its slots)
    for b in range(first, (chunk + 1) * batch // n_chunks):
        u[:] = 0
        v[:] = 0
        pending[:] = 0
        for t in range(steps):
            rec_v = v_rec[t, b, lo:hi] if record else no_rec
            rec_u = u_rec[t, b, lo:hi] if record else no_rec
            spike_row = s_out[t, b] if full else s_out[0, chunk]
            block_row = spike_row if whole else spike_row[lo:hi]
            fired, busy = lif_fixed_step(pending, du, dv, vth, bias_b, u, v, block_row, rec_v, rec_u,
                                         spikes_n, active_n)
            counts[SPIKES_OUT, t] += fired
            counts[ACTIVE, t] += busy
            if emit:  # the next layer's input events, written while the step's spikes are in cache
                cursor = emit_slot(spike_row, out_buf, cursor, out_start, out_stop, b * steps + t)
            events, start, stop = step_events(in_start, in_stop, in_events, in_dense, local, t, b, steps)
            if counting:
                count_inputs(events, start, stop, inputs_n, counts, t)
            counts[SOP, t] += accumulate_block(kind, events, start, stop, pos_start, rows, w2d, geom, group, lo, hi,
                                             acc)
            for i in range(hi - lo):
                a = ((np.int64(acc[i]) * factor) << left) >> right
                if kind != DENSE:
                    a = ((a + U24) & MASK24) - U24  # Lava Conv's signed 24-bit wrap of its output
                pending[i] = np.int32(a)  # the int32 channel from synapse to neuron


@nb.njit(cache=True, parallel=True)
def run_fixed_layer(syn, neurons, source, out, n_chunks, n_blocks):
    """Fixed-point layer with Lava's one-step synaptic delay: spikes arriving at step t reach the neurons
    at step t + 1. ``neurons`` a :class:`FixedNeurons`; ``out.v_rec`` v after reset and ``out.u_rec`` u, int32;
    otherwise as :func:`run_float_layer`. Lava's effective weights are ``syn.factor * syn.w2d``: dense weights are
    stored in 8 bits (int8 with factor 2 for mixed signs, uint8 with factor +-1 for one sign), conv/pool weights
    as int16 with factor 1; sums are exact in int32 for fan-in < 2**23. Dense output is shifted by
    ``syn.weight_exp`` (as Lava ``Dense``); conv and pool output is shifted, then wrapped to signed 24 bit (as
    Lava ``Conv``, which applies no weight exponent itself)."""
    for w in nb.prange(n_chunks * n_blocks):
        fixed_work_item(w, syn, neurons, source, out, n_chunks, n_blocks)


@nb.njit(cache=True)
def run_fixed_layer_serial(syn, neurons, source, out, n_chunks, n_blocks):
    """:func:`run_fixed_layer` on the calling thread (no thread hand-off: the 1-thread path)."""
    for w in range(n_chunks * n_blocks):
        fixed_work_item(w, syn, neurons, source, out, n_chunks, n_blocks)


# ---------------------------------------------------------------------------------------------------------
# Recurrent layers and adaptive neurons (dense input)
# ---------------------------------------------------------------------------------------------------------
@nb.njit(cache=True, inline="always")
def recurrent_input(w_rec, prev, n_prev, racc, counts, t):
    """The recurrent synapses' input of one step: the fan-out rows of the layer's own previous-step spikes
    ``prev[:n_prev]`` into ``racc`` (zeroed here; all ``n_out`` columns), one row per spike as a dense layer
    adds its input's rows; the SOPs go to ``counts[SOP, t]`` and ``counts[SOP_RECURRENT, t]``."""
    racc[:] = 0
    if n_prev > 0:
        sops = dense_rows(prev, 0, n_prev, w_rec, racc, 0)
        counts[SOP, t] += sops
        counts[SOP_RECURRENT, t] += sops


@nb.njit(cache=True, inline="always")
def float_rec_work_item(w, syn, rec, neurons, source, out, n_chunks, n_blocks):
    """Work item ``w`` of :func:`run_float_rec_layer` (same arguments)."""
    _, w2d, _, _, _ = syn
    w_rec, _, rho, beta = rec
    bias, lam, v_th, soft = neurons
    in_start, in_stop, in_events, in_dense, in_counts = source
    s_out, u_rec, _, step_counts, neuron_spikes, neuron_active, out_start, out_stop, out_buf = out
    steps, batch, _, counting, lo, hi = work_item_span(w, syn, source, out, n_chunks, n_blocks)
    if hi <= lo and not counting:
        return
    n_out = s_out.shape[2]
    recurrent = w_rec.shape[0] > 0  # then the engine passes one block: this item owns every neuron
    full = s_out.shape[0] == steps and s_out.shape[1] == batch
    whole = lo == 0 and hi == n_out
    emit = out_start.shape[0] > 0
    record = u_rec.shape[0] > 0
    chunk = w // n_blocks
    acc = np.zeros(hi - lo, np.float32)
    racc = np.zeros(hi - lo, np.float32)  # stays zero without recurrent synapses
    u = np.zeros(hi - lo, np.float32)
    s = np.zeros(hi - lo, np.float32)
    adapt = np.zeros(hi - lo, np.float32)
    prev = np.zeros(n_out if recurrent else 0, np.int32)  # the layer's spikes of the step before, as events
    local = np.zeros(w2d.shape[0], np.int32)  # one step's input events
    no_rec = np.zeros(0, np.float32)
    spikes_n = neuron_spikes[chunk, lo:hi]
    active_n = neuron_active[chunk, lo:hi]
    inputs_n = in_counts[chunk] if counting else in_counts[0]
    bias_b = bias[lo:hi]
    counts = step_counts[w]
    first = chunk * batch // n_chunks
    cursor = first * steps * n_out
    for b in range(first, (chunk + 1) * batch // n_chunks):
        u[:] = 0.0
        s[:] = 0.0
        adapt[:] = 0.0
        n_prev = 0
        for t in range(steps):
            events, start, stop = step_events(in_start, in_stop, in_events, in_dense, local, t, b, steps)
            if counting:
                count_inputs(events, start, stop, inputs_n, counts, t)
            acc[:] = 0  # dense input only: the fan-out rows of the block's columns (accumulate_block's order)
            counts[SOP, t] += dense_rows(events, start, stop, w2d, acc, lo)
            if recurrent:
                recurrent_input(w_rec, prev, n_prev, racc, counts, t)
            rec_u = u_rec[t, b, lo:hi] if record else no_rec
            spike_row = s_out[t, b] if full else s_out[0, chunk]
            block_row = spike_row if whole else spike_row[lo:hi]
            fired, busy = alif_float_step(acc, racc, bias_b, (lam, v_th, rho, beta), soft, u, s, adapt, block_row,
                                          rec_u, spikes_n, active_n)
            counts[SPIKES_OUT, t] += fired
            counts[ACTIVE, t] += busy
            if recurrent:
                n_prev = fill_events(spike_row, prev, 0)
            if emit:
                cursor = emit_slot(spike_row, out_buf, cursor, out_start, out_stop, b * steps + t)


@nb.njit(cache=True, parallel=True)
def run_float_rec_layer(syn, rec, neurons, source, out, n_chunks, n_blocks):
    """Float layer with dense input, recurrent synapses and/or adaptive (ALIF) neurons: as
    :func:`run_float_layer`, plus ``rec`` a :class:`Recurrence` record. At step t the recurrent synapses carry
    the layer's own spikes of step t - 1 (one fan-out row per spike); ``out.step_counts`` needs the
    ``SOP_RECURRENT`` row. With recurrent synapses ``n_blocks`` must be 1 (a step needs every neuron's spikes
    of the step before)."""
    for w in nb.prange(n_chunks * n_blocks):
        float_rec_work_item(w, syn, rec, neurons, source, out, n_chunks, n_blocks)


@nb.njit(cache=True)
def run_float_rec_layer_serial(syn, rec, neurons, source, out, n_chunks, n_blocks):
    """:func:`run_float_rec_layer` on the calling thread."""
    for w in range(n_chunks * n_blocks):
        float_rec_work_item(w, syn, rec, neurons, source, out, n_chunks, n_blocks)


@nb.njit(cache=True, inline="always")
def shifted32(x, factor, left, right):
    """A Dense output as Lava sends it: ``factor * x`` shifted by the weight exponent, wrapped to int32."""
    return wrap32(((np.int64(x) * factor) << left) >> right)


@nb.njit(cache=True, inline="always")
def fixed_rec_work_item(w, syn, rec, neurons, source, out, n_chunks, n_blocks):
    """Work item ``w`` of :func:`run_fixed_rec_layer` (same arguments)."""
    _, w2d, _, factor, weight_exp = syn
    w_rec, rec_factor, _, _ = rec
    bias_eff, du, dv, vth = neurons
    in_start, in_stop, in_events, in_dense, in_counts = source
    s_out, u_rec, v_rec, step_counts, neuron_spikes, neuron_active, out_start, out_stop, out_buf = out
    steps, batch, _, counting, _, _ = work_item_span(w, syn, source, out, n_chunks, n_blocks)
    n_out = s_out.shape[2]
    full = s_out.shape[0] == steps and s_out.shape[1] == batch
    emit = out_start.shape[0] > 0
    record = v_rec.shape[0] > 0
    left = max(weight_exp, 0)
    right = max(-weight_exp, 0)
    chunk = w // n_blocks
    acc = np.zeros(n_out, np.int32)
    racc = np.zeros(n_out, np.int32)
    pending = np.zeros(n_out, np.int32)  # what the neurons receive next step: Lava's a_in, both Dense summed
    busy = np.zeros(n_out, np.uint8)  # ... and whether either Dense sent a non-zero value
    u = np.zeros(n_out, np.int32)
    v = np.zeros(n_out, np.int32)
    prev = np.zeros(n_out, np.int32)
    local = np.zeros(w2d.shape[0], np.int32)
    no_rec = np.zeros(0, np.int32)
    spikes_n = neuron_spikes[chunk, :n_out]
    active_n = neuron_active[chunk, :n_out]
    inputs_n = in_counts[chunk] if counting else in_counts[0]
    counts = step_counts[w]
    first = chunk * batch // n_chunks
    cursor = first * steps * n_out
    for b in range(first, (chunk + 1) * batch // n_chunks):
        u[:] = 0
        v[:] = 0
        pending[:] = 0
        busy[:] = 0
        for t in range(steps):
            rec_v = v_rec[t, b] if record else no_rec
            rec_u = u_rec[t, b] if record else no_rec
            spike_row = s_out[t, b] if full else s_out[0, chunk]
            fired, active = lif_fixed_masked_step(pending, busy, (du, dv, vth), bias_eff, u, v, spike_row, rec_v,
                                                  rec_u, spikes_n, active_n)
            counts[SPIKES_OUT, t] += fired
            counts[ACTIVE, t] += active
            if emit:
                cursor = emit_slot(spike_row, out_buf, cursor, out_start, out_stop, b * steps + t)
            n_prev = fill_events(spike_row, prev, 0)
            events, start, stop = step_events(in_start, in_stop, in_events, in_dense, local, t, b, steps)
            if counting:
                count_inputs(events, start, stop, inputs_n, counts, t)
            acc[:] = 0
            counts[SOP, t] += dense_rows(events, start, stop, w2d, acc, 0)
            recurrent_input(w_rec, prev, n_prev, racc, counts, t)
            for i in range(n_out):  # two Dense processes into one a_in: each output wrapped, then their int32 sum
                a_ff = shifted32(acc[i], factor, left, right)
                a_rec = shifted32(racc[i], rec_factor, left, right)
                pending[i] = np.int32(a_ff + a_rec)
                busy[i] = np.uint8((a_ff != 0) | (a_rec != 0))


@nb.njit(cache=True, parallel=True)
def run_fixed_rec_layer(syn, rec, neurons, source, out, n_chunks, n_blocks):
    """Fixed-point recurrent layer: Lava's ``LIF`` fed by a ``Dense`` of the input weights and a ``Dense`` of the
    recurrent weights from its own ``s_out``, bit for bit. Both connections have Lava's one-step delay: the
    input spikes and the layer's own spikes of step t reach the neurons at step t + 1, each Dense output shifted
    by the layer's ``weight_exp`` and wrapped to int32 on its own, then the two summed (int32, as Lava's
    ``a_in`` port adds them). Records as :func:`run_fixed_layer` plus ``rec`` (:class:`Recurrence`);
    ``n_blocks`` must be 1."""
    for w in nb.prange(n_chunks * n_blocks):
        fixed_rec_work_item(w, syn, rec, neurons, source, out, n_chunks, n_blocks)


@nb.njit(cache=True)
def run_fixed_rec_layer_serial(syn, rec, neurons, source, out, n_chunks, n_blocks):
    """:func:`run_fixed_rec_layer` on the calling thread."""
    for w in range(n_chunks * n_blocks):
        fixed_rec_work_item(w, syn, rec, neurons, source, out, n_chunks, n_blocks)
