"""Event-driven synaptic propagation: each presynaptic spike adds its fan-out into the accumulators.

Spikes travel between layers as address events: for a run of ``T`` steps and ``B`` samples, an int32
array of neuron indices plus offsets ``(B*T + 1,)``, sample-major (step t of sample b is slot b*T + t),
the indices of one slot in ascending order.

**Layouts.** Spatial tensors are *channels last* inside the kernels: the neuron ``(c, y, x)`` of a
``(C, H, W)`` population has index ``(y*W + x)*C + c``. The network description, the recorded spikes and
the per-neuron counters stay channels first (as torch); the engine converts at the edges. Weights are a
2-D array whose rows are the fan-out of one presynaptic index, so every inner loop walks contiguous memory:

* dense: ``w2d[j, i]`` = W[i, j], shape ``(n_in, n_out)`` (``j`` in the layout of the layer's input, so a
  dense layer after a spatial one has its rows permuted to channels-last order);
* conv: ``w2d[(ky*kw + kx)*C + c, o]`` = W[o, c, ky, kx], shape ``(kh*kw*C, O)``; accumulators are
  ``(H_out, W_out, O)`` flattened; ``geom = (C, H, W, O, H_out, W_out, kh, kw, stride, padding)``;
* sum pool: ``w2d[0, 0]`` is the tap weight; same ``geom`` with ``O = C``.

Conv and pool are computed *output stationary*: for each output position the active inputs of its
receptive field are gathered (from per-position event ranges, :func:`position_starts`), then their kernel
rows are summed into that position's ``O`` accumulators (:func:`dense_rows`, a contiguous vector loop).
The SOPs are the same as scattering each input event over its actual fan-out: one per (input spike,
kernel tap that reaches a valid output, output channel). Every accumulator sums its terms in an order that
depends only on the input spikes, never on how the work is split across threads.

Each accumulate function returns the SOPs it performed (one per weight read and accumulate).
"""

from __future__ import annotations

import numba as nb
import numpy as np

DENSE, CONV, POOL = 0, 1, 2


@nb.njit(cache=True, inline="always")
def dense_rows(rows, start, stop, w2d, acc, lo):
    """Add ``w2d[rows[e], lo:lo + len(acc)]`` for ``e`` in ``start:stop`` into ``acc``; returns the SOPs.

    Rows are summed four at a time before they reach the accumulators (a quarter of the accumulator
    traffic); for float32 this fixes the order of additions per accumulator as ``((r0 + r1) + (r2 + r3))``
    over the rows in the given order, whatever ``lo`` is.
    """
    n = acc.shape[0]
    cast = acc.dtype.type  # widen 8/16-bit weights before adding them
    e = start
    while e + 4 <= stop:  # row views (not w2d[j, lo + i]): a runtime column offset defeats vectorisation
        r0, r1, r2, r3 = w2d[rows[e], lo:], w2d[rows[e + 1], lo:], w2d[rows[e + 2], lo:], w2d[rows[e + 3], lo:]
        for i in range(n):
            acc[i] += (cast(r0[i]) + cast(r1[i])) + (cast(r2[i]) + cast(r3[i]))
        e += 4
    while e < stop:
        r0 = w2d[rows[e], lo:]
        for i in range(n):
            acc[i] += cast(r0[i])
        e += 1
    return (stop - start) * n


@nb.njit(cache=True, inline="always")
def sum_rows(rows, n_rows, w2d, acc):
    """Add the rows ``w2d[rows[:n_rows]]`` into ``acc`` (all columns), eight at a time (an eighth of the
    accumulator traffic): the order per accumulator is a fixed tree over each group of eight rows, then
    fours, then single rows, so it depends only on the row list. Returns the SOPs."""
    n = acc.shape[0]
    cast = acc.dtype.type
    e = 0
    while e + 8 <= n_rows:
        r0, r1, r2, r3 = w2d[rows[e]], w2d[rows[e + 1]], w2d[rows[e + 2]], w2d[rows[e + 3]]
        r4, r5, r6, r7 = w2d[rows[e + 4]], w2d[rows[e + 5]], w2d[rows[e + 6]], w2d[rows[e + 7]]
        for i in range(n):
            acc[i] += (((cast(r0[i]) + cast(r1[i])) + (cast(r2[i]) + cast(r3[i])))
                       + ((cast(r4[i]) + cast(r5[i])) + (cast(r6[i]) + cast(r7[i]))))
        e += 8
    return dense_rows(rows, e, n_rows, w2d, acc, 0) + e * n


@nb.njit(cache=True, inline="always")
def dense_events(events, start, stop, w2d, acc):
    """Add the fan-out rows ``w2d[j]`` of the events ``events[start:stop]`` into ``acc`` (all columns);
    returns the SOPs. Same order of additions as :func:`dense_rows`."""
    return dense_rows(events, start, stop, w2d, acc, 0)


@nb.njit(cache=True, inline="always")
def position_starts(events, start, stop, channels, pos_start):
    """Per input position ``q``, the events of channels at ``q`` are ``events[pos_start[q]:pos_start[q+1]]``
    (channels-last indices ``q*C + c`` in ascending order). ``pos_start`` has ``H*W + 1`` entries."""
    n_pos = pos_start.shape[0] - 1
    e = start
    for q in range(n_pos):
        pos_start[q] = e
        limit = (q + 1) * channels
        while e < stop and events[e] < limit:
            e += 1
    pos_start[n_pos] = stop


@nb.njit(cache=True, inline="always")
def conv_rows(p, events, pos_start, geom, rows):
    """Kernel rows (indices into ``w2d``) of the active inputs in the receptive field of output position
    ``p`` = oy*W_out + ox, tap by tap (ky, kx), channels ascending; returns how many were written."""
    c_in, h, w = geom[0], geom[1], geom[2]
    wo, kh, kw, stride, pad = geom[5], geom[6], geom[7], geom[8], geom[9]
    oy = p // wo
    ox = p - oy * wo
    n = 0
    for ky in range(kh):
        iy = oy * stride - pad + ky
        if iy < 0 or iy >= h:
            continue
        for kx in range(kw):
            ix = ox * stride - pad + kx
            if ix < 0 or ix >= w:
                continue
            q = iy * w + ix
            tap = (ky * kw + kx) * c_in - q * c_in
            for e in range(pos_start[q], pos_start[q + 1]):
                rows[n] = tap + events[e]
                n += 1
    return n


@nb.njit(cache=True, inline="always")
def pool_position(p, events, pos_start, geom, tap, acc):
    """Add the pool tap weight for each active input in the window of output position ``p`` into
    ``acc`` (C,); returns the SOPs (one per input spike that reaches this window)."""
    c_in, w = geom[0], geom[2]
    wo, k, stride = geom[5], geom[6], geom[8]
    oy = p // wo
    ox = p - oy * wo
    sops = 0
    for ky in range(k):
        for kx in range(k):
            q = (oy * stride + ky) * w + ox * stride + kx
            base = q * c_in
            for e in range(pos_start[q], pos_start[q + 1]):
                acc[events[e] - base] += tap
            sops += pos_start[q + 1] - pos_start[q]
    return sops


@nb.njit(cache=True)
def conv_accumulate(events, start, stop, w2d, geom, acc):
    """One step of a conv layer for one sample: channels-last input events ``events[start:stop]`` into the
    channels-last accumulators ``acc`` (H_out*W_out*O,), added to what is there; returns the SOPs."""
    out_ch, n_pos = geom[3], geom[4] * geom[5]
    pos_start = np.empty(geom[1] * geom[2] + 1, np.int64)
    rows = np.empty(w2d.shape[0], np.int64)
    position_starts(events, start, stop, geom[0], pos_start)
    sops = 0
    for p in range(n_pos):
        n = conv_rows(p, events, pos_start, geom, rows)
        sops += dense_rows(rows, 0, n, w2d, acc[p * out_ch:(p + 1) * out_ch], 0)
    return sops


@nb.njit(cache=True)
def pool_accumulate(events, start, stop, w2d, geom, acc):
    """One step of a sum-pool layer for one sample (channels last, as :func:`conv_accumulate`)."""
    c_out, n_pos = geom[3], geom[4] * geom[5]
    pos_start = np.empty(geom[1] * geom[2] + 1, np.int64)
    position_starts(events, start, stop, geom[0], pos_start)
    sops = 0
    for p in range(n_pos):
        sops += pool_position(p, events, pos_start, geom, w2d[0, 0], acc[p * c_out:(p + 1) * c_out])
    return sops


@nb.njit(cache=True)
def propagate(kind, events, start, stop, w2d, geom, acc, input_spikes):
    """Deliver the address events ``events[start:stop]`` (presynaptic indices, layouts above) into ``acc``.

    Increments ``input_spikes[j]`` per event. Returns the SOPs performed.
    """
    for e in range(start, stop):
        input_spikes[events[e]] += 1
    if kind == DENSE:
        return dense_events(events, start, stop, w2d, acc)
    if kind == CONV:
        return conv_accumulate(events, start, stop, w2d, geom, acc)
    return pool_accumulate(events, start, stop, w2d, geom, acc)


@nb.njit(cache=True, inline="always")
def emit_events(fired, events, count):
    """Append the indices of the non-zero entries of ``fired`` (n,) uint8 to ``events`` at ``count``;
    ``events`` grows when it could overflow. Silent 8-neuron words are skipped whole.
    Returns ``(events, new count)``."""
    n = fired.shape[0]
    if count + n > events.shape[0]:
        grown = np.empty(max(2 * events.shape[0], count + n), np.int32)
        grown[:count] = events[:count]
        events = grown
    return events, fill_events(fired, events, count)


@nb.njit(cache=True, inline="always")
def fill_events(fired, events, count):
    """Write the indices of the non-zero entries of ``fired`` (n,) uint8 to ``events[count:]`` (which
    must have room); returns the new count."""
    n = fired.shape[0]
    n8 = n // 8
    words = fired[:n8 * 8].view(np.uint64)
    for w in range(n8):
        if words[w] != 0:
            base = w * 8
            for k in range(8):
                events[count] = base + k
                count += fired[base + k]
    for i in range(n8 * 8, n):
        events[count] = i
        count += fired[i]
    return count


@nb.njit(cache=True, inline="always")
def slot_size(spikes, slot):
    """Spikes in slot ``slot`` (step ``slot % T`` of sample ``slot // T``) of 0/1 ``spikes`` (T, B, n)."""
    steps, n = spikes.shape[0], spikes.shape[2]
    row = spikes[slot % steps, slot // steps]
    n8 = n // 8
    words = row[:n8 * 8].view(np.uint64)
    ones = np.uint64(0x0101010101010101)
    total = 0
    for w in range(n8):  # bytes are 0/1: their sum is the top byte of word * 0x0101...01
        total += (words[w] * ones) >> np.uint64(56)
    for i in range(n8 * 8, n):
        total += row[i]
    return total


@nb.njit(cache=True, inline="always")
def slot_fill(spikes, slot, events, count, end):
    """Write the indices of slot ``slot``'s spikes to ``events[count:end]``, never past ``end`` (so slots
    can be filled in parallel). Silent 8-neuron words are skipped whole; within a word every index is
    written and the count advances by the spike bit (no unpredictable branch)."""
    steps, n = spikes.shape[0], spikes.shape[2]
    row = spikes[slot % steps, slot // steps]
    n8 = n // 8
    words = row[:n8 * 8].view(np.uint64)
    for w in range(n8):
        if words[w] != 0:
            for i in range(w * 8, w * 8 + 8):
                if count < end:
                    events[count] = i
                count += row[i]
    for i in range(n8 * 8, n):
        if count < end:
            events[count] = i
        count += row[i]


@nb.njit(cache=True, inline="always")
def slot_offsets(sizes):
    offsets = np.zeros(sizes.shape[0] + 1, np.int64)
    for slot in range(sizes.shape[0]):
        offsets[slot + 1] = offsets[slot] + sizes[slot]
    return offsets


@nb.njit(cache=True, inline="always")
def memory_row_slot(row, steps, batch):
    """The slot (sample-major, ``b * T + t``) of row ``row`` of ``(T, B, n)`` spikes in memory order
    (``row = t * B + b``): scanning rows in memory order reads the array front to back."""
    return (row % batch) * steps + row // batch


@nb.njit(cache=True, parallel=True)
def scan_events(spikes):
    """0/1 spikes ``(T, B, n)`` uint8 -> address events ``(offsets (B*T + 1,), indices)``, sample-major.
    Parallel over the B*T rows, read in memory order (step-major; the events land in their sample-major
    slots); the result does not depend on the thread count."""
    steps, batch = spikes.shape[0], spikes.shape[1]
    slots = steps * batch
    sizes = np.zeros(slots, np.int64)
    for row in nb.prange(slots):
        slot = memory_row_slot(row, steps, batch)
        sizes[slot] = slot_size(spikes, slot)
    offsets = slot_offsets(sizes)
    events = np.empty(offsets[slots], np.int32)
    for row in nb.prange(slots):
        slot = memory_row_slot(row, steps, batch)
        slot_fill(spikes, slot, events, offsets[slot], offsets[slot + 1])
    return offsets, events


@nb.njit(cache=True)
def scan_events_serial(spikes):
    """:func:`scan_events` on the calling thread (the 1-thread path)."""
    steps, batch = spikes.shape[0], spikes.shape[1]
    slots = steps * batch
    sizes = np.zeros(slots, np.int64)
    for row in range(slots):
        slot = memory_row_slot(row, steps, batch)
        sizes[slot] = slot_size(spikes, slot)
    offsets = slot_offsets(sizes)
    events = np.empty(offsets[slots], np.int32)
    for row in range(slots):
        slot = memory_row_slot(row, steps, batch)
        slot_fill(spikes, slot, events, offsets[slot], offsets[slot + 1])
    return offsets, events


SCAN_PARALLEL_MIN = 1 << 20  # input values (T x B x inputs) below which a batch's spikes are scanned on one thread
# (measured: 784 inputs, T = 8, batch 1: 20 us in a parallel region against 4 us serial, about 3 % of a sample)


def scan_learning_input(spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`scan_events` of a learning batch's input ``(T, B, inputs)``: on the calling thread below
    :data:`SCAN_PARALLEL_MIN` values (a parallel region costs more than the scan there), in parallel above."""
    return (scan_events if spikes.size >= SCAN_PARALLEL_MIN else scan_events_serial)(spikes)

