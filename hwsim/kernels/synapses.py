"""Event-driven synaptic propagation: each presynaptic spike adds its fan-out into the accumulators.

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
def dense_event(j, w2d, acc):
    """Add row ``j`` of ``w2d`` (one presynaptic neuron's fan-out) into ``acc``; returns the SOPs."""
    row = w2d[j]
    n = acc.shape[0]
    for i in range(n):
        acc[i] += row[i]
    return n


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
def propagate(kind, spikes, w2d, geom, acc, input_spikes):
    """Deliver every spike in the 0/1 vector ``spikes`` (n_in,) into ``acc``.

    Increments ``input_spikes[j]`` per event. Returns ``(events, sops)``.
    """
    events = 0
    sops = 0
    for j in range(spikes.shape[0]):
        if spikes[j] == 0:
            continue
        events += 1
        input_spikes[j] += 1
        if kind == DENSE:
            sops += dense_event(j, w2d, acc)
        elif kind == CONV:
            sops += conv_event(j, w2d, geom, acc)
        else:
            sops += pool_event(j, w2d, geom, acc)
    return events, sops


def empty_geom() -> np.ndarray:
    return np.zeros(10, np.int64)
