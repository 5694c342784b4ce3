"""Conv and sum-pool geometry of the learning kernel: taps, channels-last copies, and the conv / pool parts of the
forward sum, the gradient and W^T delta.

A conv node's kernel ``(O, C, kh, kw)`` is shared by every output position, so its gradient accumulates into the
one shared weight; inside the kernel it works channels last, so every inner loop runs over the ``O`` output
channels in contiguous memory: the copy ``State.w_cl`` of each kernel as ``(kh, kw, C, O)`` (refreshed whenever
the weights are written), the forward sum and the error as ``(H_out, W_out, O)`` scratch vectors, and the gradient
accumulated as ``(kh, kw, C, O)`` in ``State.grad_cl``, then added into ``grad_w``'s ``(O, C, kh, kw)`` before each
write-back. Gradients and W^T delta visit the inputs one position at a time (its taps found once for all
channels). Forward sums, gradients and pool errors add the same terms in the same order as a scatter over each
input's fan-out; only a conv node's W^T delta sums its products in another order (float rounding). A pool has one
fixed tap ``pool_w`` and learns nothing. Geometry rows: :data:`hwsim.learning.kernels.records.GEOM_FIELDS`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.learning.kernels.ops import dot, surrogate
from hwsim.learning.kernels.records import CONV, DENSE


@nb.njit(cache=True, inline="always")
def position_taps(geom, pos, tap_k, tap_p):
    """Conv or pool input position ``pos`` = ``y * W + x``: the kernel taps that reach a valid output, as
    kernel index ``ky * kw + kx`` in ``tap_k`` and output position ``oy * W_out + ox`` in ``tap_p`` (borders
    and strides exact); returns how many. A tap reaches all ``O`` channels of its position (conv) or the
    input's own channel (pool)."""
    w = geom[2]
    wo, ho, kh, kw, stride, pad = geom[5], geom[4], geom[6], geom[7], geom[8], geom[9]
    y = pos // w
    x = pos - y * w
    n = 0
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
            tap_k[n] = ky * kw + kx
            tap_p[n] = oy * wo + ox
            n += 1
    return n


@nb.njit(cache=True, inline="always")
def input_taps(geom, j, tap_k, tap_p):
    """:func:`position_taps` of input neuron ``j`` = (c, y, x); returns ``(c, how many)``."""
    hw = geom[1] * geom[2]
    c = j // hw
    return c, position_taps(geom, j - c * hw, tap_k, tap_p)


@nb.njit(cache=True, inline="always")
def conv_scatter(geom, j, w_cl, acc_cl, tap_k, tap_p):
    """Forward: add input ``j``'s fan-out into ``acc_cl`` ``(H_out, W_out, O)`` flat, one contiguous
    ``w_cl[ky, kx, c, :]`` (this node's ``(kh, kw, C, O)`` kernel, flat) per tap; returns the SOPs."""
    c_in, out_ch = geom[0], geom[3]
    c, n = input_taps(geom, j, tap_k, tap_p)
    for q in range(n):  # slices, not offset indices: they let the loop vectorise
        row = w_cl[(tap_k[q] * c_in + c) * out_ch: (tap_k[q] * c_in + c + 1) * out_ch]
        acc = acc_cl[tap_p[q] * out_ch: (tap_p[q] + 1) * out_ch]
        for o in range(out_ch):
            acc[o] += row[o]
    return n * out_ch


@nb.njit(cache=True)
def spatial_forward(kind, geom, pool_tap, w_cl, events, acc, acc_cl, tap_k, tap_p):
    """The synaptic input ``acc`` (channels first, zero on entry) of a conv or pool node from its input
    ``events``: conv through the scratch ``acc_cl`` channels last, pool ``pool_tap`` per tap. Returns the SOPs."""
    plane = geom[4] * geom[5]
    sops = 0
    if kind == CONV:
        out_ch = geom[3]
        acc_g = acc_cl[: acc.shape[0]]
        acc_g[:] = 0.0
        for e in range(events.shape[0]):
            sops += conv_scatter(geom, events[e], w_cl, acc_g, tap_k, tap_p)
        for p in range(plane):
            for o in range(out_ch):
                acc[o * plane + p] = acc_g[p * out_ch + o]
        return sops
    for e in range(events.shape[0]):
        c, n = input_taps(geom, events[e], tap_k, tap_p)
        for q in range(n):
            acc[c * plane + tap_p[q]] += pool_tap
        sops += n
    return sops


@nb.njit(cache=True)
def conv_gradients(geom, pre, d_cl, nz_pos, grad_cl, tap_k, tap_p):
    """``grad_cl[ky, kx, c, :] += a * d_cl[oy, ox, :]`` for every input (c, y, x) with a non-zero
    presynaptic value ``a = pre[j]`` (spike or trace, channels first) and each of its taps whose output
    position holds a non-zero error. ``grad_cl`` is the node's ``(kh, kw, C, O)`` accumulator, flat; each
    weight gets its terms in input order, as a scatter would. Returns the accumulations that count (pairs
    with a non-zero error: ``nz_pos`` per output position)."""
    c_in, hw, out_ch = geom[0], geom[1] * geom[2], geom[3]
    ops = 0
    for pos in range(hw):  # the taps of a position, found once for all its channels
        n = position_taps(geom, pos, tap_k, tap_p)
        for c in range(c_in):
            a = pre[c * hw + pos]
            if a == 0.0:
                continue
            for q in range(n):
                p = tap_p[q]
                if nz_pos[p] == 0:
                    continue
                row = (tap_k[q] * c_in + c) * out_ch
                grad = grad_cl[row: row + out_ch]
                err = d_cl[p * out_ch: (p + 1) * out_ch]
                for o in range(out_ch):  # a zero error adds a zero product: the same sums as skipping it
                    grad[o] += err[o] * a
                ops += nz_pos[p]
    return ops


@nb.njit(cache=True)
def spatial_back(kind, geom, pool_tap, w_cl, d, d_cl, u_src, v_th_src, sur, into, taps):
    """W^T dI of a conv or pool node into its source's dL/ds (``into`` = (dL/ds, g'), channels first) at every
    input whose surrogate derivative (membrane ``u_src``, threshold ``v_th_src``, ``sur`` = (shape, alpha)) is
    non-zero; each derivative is kept in g' (float32). Conv: the sum over the input's taps of ``dot(w_cl[ky, kx,
    c, :], d_cl[oy, ox, :])`` (``d_cl``: :func:`errors_channels_last`); pool: ``pool_tap`` times the error ``d``
    (channels first) of each target. ``taps`` = (tap_k, tap_p) scratch of :func:`position_taps`. Returns
    ``(products, inputs sent to)``, one product per synapse."""
    c_in, hw, out_ch, plane = geom[0], geom[1] * geom[2], geom[3], geom[4] * geom[5]
    shape, alpha = sur
    ds_src, gp_src = into
    tap_k, tap_p = taps
    macs, sent = 0, 0
    for pos in range(hw):
        n = position_taps(geom, pos, tap_k, tap_p)
        for c in range(c_in):
            j = c * hw + pos
            gp_src[j] = np.float32(surrogate(shape, alpha, u_src[j] - v_th_src))
            if gp_src[j] == 0.0:
                continue
            total = np.float32(0.0)
            if kind == CONV:
                for q in range(n):
                    row = (tap_k[q] * c_in + c) * out_ch
                    total += dot(w_cl[row: row + out_ch], d_cl[tap_p[q] * out_ch: (tap_p[q] + 1) * out_ch])
                macs += n * out_ch
            else:
                for q in range(n):
                    total += pool_tap * d[c * plane + tap_p[q]]
                macs += n
            ds_src[j] += total
            sent += 1
    return macs, sent


@nb.njit(cache=True, inline="always")
def errors_channels_last(geom, d, d_cl, nz_pos):
    """A conv node's error ``d`` (channels first, ``(O, H_out, W_out)`` flat) into ``d_cl``
    ``(H_out, W_out, O)`` flat, with the count of non-zero errors at each output position in ``nz_pos``."""
    out_ch, plane = geom[3], geom[4] * geom[5]
    for p in range(plane):
        nz = 0
        for o in range(out_ch):
            v = d[o * plane + p]
            d_cl[p * out_ch + o] = v
            nz += v != 0.0
        nz_pos[p] = nz


@nb.njit(cache=True)
def channels_last_index(kind, geom, w_off):
    """``(cl_from, cl_to)``: every conv weight's flat index, ``(o, c, k)`` of ``(O, C, kh, kw)``, and where it
    lies in the channels-last copy, ``(k, c, o)`` of ``(kh, kw, C, O)`` at the same node offset (dense and pool
    nodes have no copy)."""
    size = 0
    for g in range(kind.shape[0]):
        if kind[g] == CONV:
            size += w_off[g + 1] - w_off[g]
    cl_from = np.empty(size, np.int64)
    cl_to = np.empty(size, np.int64)
    n = 0
    for g in range(kind.shape[0]):
        if kind[g] != CONV:
            continue
        c_in, out_ch, taps = geom[g, 0], geom[g, 3], geom[g, 6] * geom[g, 7]
        base = w_off[g]
        for o in range(out_ch):
            for c in range(c_in):
                for k in range(taps):
                    cl_from[n] = base + (o * c_in + c) * taps + k
                    cl_to[n] = base + (k * c_in + c) * out_ch + o
                    n += 1
    return cl_from, cl_to


@nb.njit(cache=True)
def kernels_channels_last(graph, w, w_cl):
    """Copy every conv kernel of ``w`` into ``w_cl`` channels last (``graph.cl_from`` -> ``graph.cl_to``)."""
    cl_from, cl_to = graph.cl_from, graph.cl_to
    for k in range(cl_from.shape[0]):
        w_cl[cl_to[k]] = w[cl_from[k]]


@nb.njit(cache=True)
def fold_conv_gradients(graph, grad_cl, grad_w):
    """Add every conv node's channels-last gradient ``grad_cl`` into ``grad_w`` (``(O, C, kh, kw)``) and zero
    it."""
    cl_from, cl_to = graph.cl_from, graph.cl_to
    for k in range(cl_from.shape[0]):
        grad_w[cl_from[k]] += grad_cl[cl_to[k]]
        grad_cl[cl_to[k]] = 0.0


@nb.njit(cache=True, inline="always")
def channel_of(kind, geom, i):
    """The bias / write-count slot of output neuron ``i``: itself (dense), its channel (conv); -1 for pool."""
    if kind == DENSE:
        return i
    if kind == CONV:
        return i // (geom[4] * geom[5])
    return -1


@nb.njit(cache=True)
def expand_bias(graph, bias, bias_n):
    """Per-neuron bias ``bias_n`` (N,) from the per-slot biases ``bias`` (S,): a conv neuron takes its channel's,
    a node without biases (or a pool) 0."""
    for g in range(graph.kind.shape[0]):
        kind, geom, on = graph.kind[g], graph.geom[g], graph.has_bias[g]
        slots, neurons = bias[graph.c_off[g]: graph.c_off[g + 1]], bias_n[graph.n_off[g]: graph.n_off[g + 1]]
        for i in range(neurons.shape[0]):
            ch = channel_of(kind, geom, i)
            neurons[i] = slots[ch] if (ch >= 0 and on) else np.float32(0.0)
