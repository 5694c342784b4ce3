"""Event-driven synaptic propagation: each presynaptic spike adds its fan-out into the accumulators.

Spikes travel between layers as address events: for a run of ``T`` steps and ``B`` samples, an int32
array of neuron indices plus offsets ``(B*T + 1,)``, sample-major (step t of sample b is slot b*T + t).

Weights are always passed as a 2-D array whose rows are the fan-out of one presynaptic index, so one
layer loop serves every kind:

* dense: ``w2d[j, i]`` = W[i, j], shape ``(n_in, n_out)``;
* conv: ``w2d[(c*kh + ky)*kw + kx, o]`` = W[o, c, ky, kx]; accumulators are ``(out_ch, H_out, W_out)``
  flattened; ``geom = (C, H, W, out_ch, H_out, W_out, kh, kw, stride, padding)``;
* sum pool: ``w2d[0, 0]`` is the tap weight; same ``geom`` with ``out_ch = C``.

Each function returns the SOPs it performed (one per weight read and accumulate), counted per event.
"""

from __future__ import annotations

import numba as nb
import numpy as np

DENSE, CONV, POOL = 0, 1, 2


@nb.njit(cache=True, inline="always")
def dense_events(events, start, stop, w2d, acc):
    """Add the fan-out rows ``w2d[j]`` of the events ``events[start:stop]`` into ``acc``; returns the SOPs.

    Rows are summed four events at a time before they reach the accumulators (a quarter of the
    accumulator traffic); for float32 this fixes the order of additions as ``((r0 + r1) + (r2 + r3))``.
    """
    n = acc.shape[0]
    cast = acc.dtype.type  # widen 8-bit weights before adding them
    e = start
    while e + 4 <= stop:
        r0, r1, r2, r3 = w2d[events[e]], w2d[events[e + 1]], w2d[events[e + 2]], w2d[events[e + 3]]
        for i in range(n):
            acc[i] += (cast(r0[i]) + cast(r1[i])) + (cast(r2[i]) + cast(r3[i]))
        e += 4
    while e < stop:
        r0 = w2d[events[e]]
        for i in range(n):
            acc[i] += cast(r0[i])
        e += 1
    return (stop - start) * n


@nb.njit(cache=True, inline="always")
def conv_event(j, w2d, geom, acc):
    """Scatter the kernel of input spike ``j`` = (c, y, x) onto every output it reaches; returns the SOPs."""
    h, w = geom[1], geom[2]
    out_ch, ho, wo, kh, kw, stride, pad = geom[3], geom[4], geom[5], geom[6], geom[7], geom[8], geom[9]
    c = j // (h * w)
    y = (j // w) % h
    x = j % w
    plane = ho * wo
    sops = 0
    for ky in range(kh):
        ny = y + pad - ky
        if ny < 0 or ny % stride != 0:
            continue
        oy = ny // stride
        if oy >= ho:
            continue
        for kx in range(kw):
            nx = x + pad - kx
            if nx < 0 or nx % stride != 0:
                continue
            ox = nx // stride
            if ox >= wo:
                continue
            row = w2d[(c * kh + ky) * kw + kx]
            base = oy * wo + ox
            for o in range(out_ch):
                acc[o * plane + base] += row[o]
            sops += out_ch
    return sops


@nb.njit(cache=True, inline="always")
def pool_event(j, w2d, geom, acc):
    """Add the pool weight to every pooling window that contains input spike ``j``; returns the SOPs."""
    h, w = geom[1], geom[2]
    ho, wo, k, stride = geom[4], geom[5], geom[6], geom[8]
    c = j // (h * w)
    y = (j // w) % h
    x = j % w
    tap = w2d[0, 0]
    sops = 0
    for ky in range(k):
        ny = y - ky
        if ny < 0 or ny % stride != 0:
            continue
        oy = ny // stride
        if oy >= ho:
            continue
        for kx in range(k):
            nx = x - kx
            if nx < 0 or nx % stride != 0:
                continue
            ox = nx // stride
            if ox >= wo:
                continue
            acc[(c * ho + oy) * wo + ox] += tap
            sops += 1
    return sops


@nb.njit(cache=True, inline="always")
def propagate(kind, events, start, stop, w2d, geom, acc, input_spikes):
    """Deliver the address events ``events[start:stop]`` (presynaptic indices) into ``acc``.

    Increments ``input_spikes[j]`` per event. Returns the SOPs performed.
    """
    for e in range(start, stop):
        input_spikes[events[e]] += 1
    if kind == DENSE:
        return dense_events(events, start, stop, w2d, acc)
    sops = 0
    for e in range(start, stop):
        if kind == CONV:
            sops += conv_event(events[e], w2d, geom, acc)
        else:
            sops += pool_event(events[e], w2d, geom, acc)
    return sops


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
    return events, count


@nb.njit(cache=True)
def scan_events(spikes):
    """0/1 spikes ``(T, B, n)`` uint8 -> address events ``(offsets (B*T + 1,), indices)``, sample-major."""
    steps, batch, n = spikes.shape
    offsets = np.zeros(batch * steps + 1, np.int64)
    events = np.empty(1024, np.int32)
    count = 0
    for b in range(batch):
        for t in range(steps):
            events, count = emit_events(spikes[t, b], events, count)
            offsets[b * steps + t + 1] = count
    return offsets, events[:count]
