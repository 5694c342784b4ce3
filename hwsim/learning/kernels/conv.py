"""On-chip learning kernel for graphs of dense, conv and sum-pool layers: every rule, float and fixed point.

One call trains one mini-batch of a graph of layers (the network's neuron layers in order, then the heads
of locally trained blocks: TTL-BPTT classifiers, STDL auxiliary copies). Layer g reads the spikes of
``src[g]`` (-1: the network input). ``kind[g]`` is DENSE, CONV or POOL with
``geom[g] = (C, H, W, O, H_out, W_out, kh, kw, stride, padding)`` (dense: ``(n_in, 1, 1, n_out, 1, 1, 1, 1,
1, 0)``). A Flatten is no layer here: flat C-order indices of a ``(C, H, W)`` map are already its output.

Weights, flat in ``w`` from ``w_off[g]``: dense fan-out major ``(n_in, n_out)``; conv the kernel
``(O, C, kh, kw)`` shared by every output position (a gradient accumulates into the one shared weight);
pool has the fixed scalar tap ``pool_w[g]`` and learns nothing. Biases are per output neuron (dense) or per
output channel (conv), flat in ``bias`` from ``c_off[g]``. Neurons, histories and per-neuron counters are
channels first: output ``(o, oy, ox)`` of a conv layer is neuron ``o * H_out * W_out + oy * W_out + ox``.

Inside the kernel a conv layer works channels last, so every inner loop runs over the ``O`` output channels
in contiguous memory: a copy ``w_cl`` of each kernel as ``(kh, kw, C, O)`` (refreshed whenever the weights
are written), the forward sum and the error as ``(H_out, W_out, O)`` scratch vectors, and the gradient
accumulated as ``(kh, kw, C, O)`` then added into ``grad_w``'s ``(O, C, kh, kw)`` before each write-back.
Gradients and W^T dI visit the inputs one position at a time (its taps found once for all channels).
Forward sums, gradients and pool errors add the same terms in the same order as a scatter over each input's
fan-out; only a conv layer's W^T dI sums its products in another order (float rounding).

Time runs in windows of ``window`` steps; inside a window the forward pass keeps every layer's membrane,
spikes and synaptic current, and at the window's end the error runs back through time and layers
(``hwsim.learning.kernels.windowed`` gives the equations). ``window = 1`` drops every temporal term: SLTT (all steps),
SLTT-K (``learn_mask``), OTTT (``use_traces``: the gradient uses presynaptic traces ``a = lam a + s``; with
``update_every_step`` the weights are written after every learning step, OTTT_O) and STDL-online.

Counting (DESIGN.md section 4; counters ``(G, 10, T)`` in the order of ``hwsim.learning.kernels.online.COUNTER_NAMES``):
``sop`` per event x its actual fan-out (borders and strides exact); ``error_macs`` = the fan-out of every
presynaptic neuron whose surrogate derivative is non-zero (one weight x error product per synapse);
``grad_ops`` = pairs (active presynaptic neuron or non-zero trace, postsynaptic neuron with a non-zero
error) over the actual synapses, each one accumulation into the (shared) weight's accumulator;
``trace_updates`` = inputs of a learning layer every step; ``weight_updates`` = weights with a non-zero
gradient written back (a conv kernel weight once); ``chan_writes`` = those writes per output neuron
(dense) or per output channel (conv), flat from ``c_off``. With ``skip_silent`` a layer whose error vector
is all zero sends nothing down (the windowed rules' convention); without, the W^T products are counted
for every neuron with g' != 0 (the online rules' convention of ``hwsim.learning.kernels.online``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.learning.kernels.online import quantise_vector, stochastic_round, surrogate
from hwsim.sim.kernels.lif import lif_float_step
from hwsim.sim.kernels.synapses import dense_events

DENSE, CONV, POOL = 0, 1, 2


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


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def dot(x, y):
    """``sum_i x[i] * y[i]`` of two float32 vectors of one length, summed in whatever order vectorises (kept
    out of line: inlined into the caller it would lose these fast-math flags and run as one serial chain)."""
    total = np.float32(0.0)
    for i in range(x.shape[0]):
        total += x[i] * y[i]
    return total


@nb.njit(cache=True, inline="always")
def conv_scatter(geom, j, w_cl, acc_cl, tap_k, tap_p):
    """Forward: add input ``j``'s fan-out into ``acc_cl`` ``(H_out, W_out, O)`` flat, one contiguous
    ``w_cl[ky, kx, c, :]`` (this layer's ``(kh, kw, C, O)`` kernel, flat) per tap; returns the SOPs."""
    c_in, out_ch = geom[0], geom[3]
    c, n = input_taps(geom, j, tap_k, tap_p)
    for q in range(n):  # slices, not offset indices: they let the loop vectorise
        row = w_cl[(tap_k[q] * c_in + c) * out_ch: (tap_k[q] * c_in + c + 1) * out_ch]
        acc = acc_cl[tap_p[q] * out_ch: (tap_p[q] + 1) * out_ch]
        for o in range(out_ch):
            acc[o] += row[o]
    return n * out_ch


@nb.njit(cache=True)
def conv_gradients(geom, pre, d_cl, nz_pos, grad_cl, tap_k, tap_p):
    """``grad_cl[ky, kx, c, :] += a * d_cl[oy, ox, :]`` for every input (c, y, x) with a non-zero
    presynaptic value ``a = pre[j]`` (spike or trace, channels first) and each of its taps whose output
    position holds a non-zero error. ``grad_cl`` is the layer's ``(kh, kw, C, O)`` accumulator, flat; each
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
def spatial_back(kind, geom, pool_tap, w_cl, d, d_cl, u_src, v_th_src, sur_kind, sur_alpha, ds_src, tap_k, tap_p):
    """W^T dI of a conv or pool layer into its source's dL/ds ``ds_src`` (channels first) at every input
    whose surrogate derivative (membrane ``u_src``, threshold ``v_th_src``) is non-zero. Conv: the sum over
    the input's taps of ``dot(w_cl[ky, kx, c, :], d_cl[oy, ox, :])``; pool: ``pool_tap`` times the error
    ``d`` (channels first) of each target. Returns ``(products, inputs sent to)``, one product per synapse."""
    c_in, hw, out_ch, plane = geom[0], geom[1] * geom[2], geom[3], geom[4] * geom[5]
    macs, sent = 0, 0
    for pos in range(hw):
        n = position_taps(geom, pos, tap_k, tap_p)
        for c in range(c_in):
            j = c * hw + pos
            if surrogate(sur_kind, sur_alpha, u_src[j] - v_th_src) == 0.0:
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
    """A conv layer's error ``d`` (channels first, ``(O, H_out, W_out)`` flat) into ``d_cl``
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
def channels_last_index(kind, geom, w_off, size):
    """Where each entry of the flat weights (``size`` of them) lies in the channels-last copy: a conv kernel's
    ``(o, c, k)`` of ``(O, C, kh, kw)`` goes to ``(k, c, o)`` of ``(kh, kw, C, O)`` at the same offset; -1 for
    entries of dense and pool layers (no channels-last copy)."""
    index = np.full(size, -1, np.int64)
    for g in range(kind.shape[0]):
        if kind[g] != CONV:
            continue
        c_in, out_ch, taps = geom[g, 0], geom[g, 3], geom[g, 6] * geom[g, 7]
        base = w_off[g]
        for o in range(out_ch):
            for c in range(c_in):
                for k in range(taps):
                    index[base + (o * c_in + c) * taps + k] = base + (k * c_in + c) * out_ch + o
    return index


@nb.njit(cache=True)
def kernels_channels_last(to_cl, w, w_cl):
    """Copy every conv kernel of ``w`` into ``w_cl`` channels last (``to_cl``: :func:`channels_last_index`)."""
    for k in range(to_cl.shape[0]):
        if to_cl[k] >= 0:
            w_cl[to_cl[k]] = w[k]


@nb.njit(cache=True)
def fold_conv_gradients(to_cl, grad_cl, grad_w):
    """Add every conv layer's channels-last gradient ``grad_cl`` into ``grad_w`` (``(O, C, kh, kw)``) and zero it."""
    for k in range(to_cl.shape[0]):
        if to_cl[k] >= 0:
            grad_w[k] += grad_cl[to_cl[k]]
            grad_cl[to_cl[k]] = 0.0


@nb.njit(cache=True, inline="always")
def channel_of(kind, geom, i):
    """The bias / channel slot of output neuron ``i``: itself (dense), its channel (conv); -1 for pool."""
    if kind == DENSE:
        return i
    if kind == CONV:
        return i // (geom[4] * geom[5])
    return -1


@nb.njit(cache=True)
def expand_bias(kind, geom, n_out, bias, c_off, n_off, has_bias, bias_n):
    """Per-neuron bias ``bias_n`` from the per-channel (conv) or per-neuron (dense) biases."""
    for g in range(kind.shape[0]):
        for i in range(n_out[g]):
            ch = channel_of(kind[g], geom[g], i)
            bias_n[n_off[g] + i] = bias[c_off[g] + ch] if (ch >= 0 and has_bias[g]) else np.float32(0.0)


@nb.njit(cache=True)
def write_back(kind, geom, n_in, n_out, w, w_off, bias, c_off, has_bias, grad_w, grad_b, lr, counters, t,
               w_step, w_levels, chan_writes):
    """``W -= lr * grad`` for every weight with a non-zero gradient (onto the weight grid by stochastic
    rounding when ``w_levels`` > 0), biases likewise; zero the accumulators; count writes."""
    rate = np.float32(lr)
    for g in range(kind.shape[0]):
        if kind[g] == POOL:
            continue
        written = 0
        size = w_off[g + 1] - w_off[g]
        no = n_out[g]
        per = geom[g, 0] * geom[g, 6] * geom[g, 7]  # conv: weights per output channel
        for q in range(size):
            k = w_off[g] + q
            grad = grad_w[k]
            if grad == 0.0:
                continue
            written += 1
            slot = (q % no) if kind[g] == DENSE else (q // per)
            chan_writes[c_off[g] + slot] += 1
            if w_levels == 0:
                w[k] -= rate * grad
            else:
                w[k] = stochastic_round(w[k] - rate * grad, w_step[g], w_levels)
            grad_w[k] = 0.0
        for k in range(c_off[g], c_off[g + 1]):
            if has_bias[g]:
                bias[k] -= rate * grad_b[k]
            grad_b[k] = 0.0
        counters[g, 8, t] += written


@nb.njit(cache=True)
def train_graph(kind, geom, n_in, n_out, src, lif, readout, pass_error, main_out, w, w_off, pool_w, bias, c_off,
                has_bias, n_off, lams, v_th, soft, sur_kind, sur_alpha, in_off, in_events, labels, steps, window,
                learn_mask, lr, use_traces, update_every_step, skip_silent, grad_w, grad_b, counters, readout_sum,
                neuron_spikes, neuron_active, input_spikes, w_step, w_levels, trace_levels, error_levels, seed,
                chan_writes):
    graph = kind.shape[0]
    batch = labels.shape[0]
    np.random.seed(seed)  # stochastic rounding draws (numba's own generator)
    n_total = n_off[graph]
    scale = np.float32(1.0 / (batch * steps))
    one = np.float32(1.0)
    u = np.zeros((batch, n_total), np.float32)
    s = np.zeros((batch, n_total), np.float32)
    u_hist = np.zeros((window, batch, n_total), np.float32)
    s_hist = np.zeros((window, batch, n_total), np.float32)
    o_hist = np.zeros((window, batch, n_total), np.float32)  # synaptic currents (read-outs use them)
    x_hist = np.zeros((window, batch, n_in[0]), np.float32)
    in_base = np.zeros(graph + 1, np.int64)
    taps_max, conv_out, plane_max = 1, 1, 1
    for g in range(graph):
        in_base[g + 1] = in_base[g] + n_in[g]
        if kind[g] != DENSE:
            taps_max = max(taps_max, geom[g, 6] * geom[g, 7])
        if kind[g] == CONV:
            conv_out = max(conv_out, n_out[g])
            plane_max = max(plane_max, geom[g, 4] * geom[g, 5])
    tap_k = np.zeros(taps_max, np.int64)  # one input's taps: kernel index, output position
    tap_p = np.zeros(taps_max, np.int64)
    w_cl = np.zeros_like(w)  # conv kernels channels last, (kh, kw, C, O) from w_off[g]
    to_cl = channels_last_index(kind, geom, w_off, w.shape[0])
    kernels_channels_last(to_cl, w, w_cl)
    grad_cl = np.zeros_like(grad_w)  # conv gradients channels last, folded into grad_w at write-back
    acc_cl = np.zeros(conv_out, np.float32)  # one conv layer's forward sum, (H_out, W_out, O)
    d_cl = np.zeros(conv_out, np.float32)  # one conv layer's error, (H_out, W_out, O)
    nz_pos = np.zeros(plane_max, np.int64)  # non-zero errors per output position of that layer
    traces = np.zeros((batch, in_base[graph]), np.float32)
    events = np.zeros(in_base[graph], np.int32)
    spike_buf = np.zeros(n_total, np.uint8)
    bias_n = np.zeros(n_total, np.float32)
    expand_bias(kind, geom, n_out, bias, c_off, n_off, has_bias, bias_n)
    du = np.zeros(n_total, np.float32)  # dL/du at t+1, carried backwards through the window
    ds = np.zeros(n_total, np.float32)
    dI = np.zeros(n_total, np.float32)
    for start in range(0, steps, window):
        stop = min(start + window, steps)
        # ---- forward through the window, keeping the history --------------------------------------------
        for t in range(start, stop):
            h = t - start
            for b in range(batch):
                slot = b * steps + t
                x_hist[h, b, :] = 0.0
                for e in range(in_off[slot], in_off[slot + 1]):
                    x_hist[h, b, in_events[e]] = 1.0
                for g in range(graph):
                    ni, no, lo, ev0 = n_in[g], n_out[g], n_off[g], in_base[g]
                    count = 0
                    if src[g] < 0:
                        for e in range(in_off[slot], in_off[slot + 1]):
                            events[ev0 + count] = in_events[e]
                            count += 1
                    else:
                        below = n_off[src[g]]
                        for j in range(ni):
                            events[ev0 + count] = j
                            count += s[b, below + j] != 0.0
                    for e in range(count):
                        input_spikes[ev0 + events[ev0 + e]] += 1
                    if use_traces and kind[g] != POOL and src[g] >= 0:  # OTTT: the network input is used raw
                        decay = lams[src[g]]
                        for j in range(ni):
                            traces[b, ev0 + j] *= decay
                        for e in range(count):
                            traces[b, ev0 + events[ev0 + e]] += one
                        if trace_levels > 0:  # traces held in their bit width: steps of a_max / levels
                            step = np.float32(1.0 / (1.0 - decay) / trace_levels) if decay < 1.0 else one
                            for j in range(ni):
                                traces[b, ev0 + j] = np.float32(np.rint(traces[b, ev0 + j] / step) * step)
                        counters[g, 7, t] += ni
                    acc = o_hist[h, b, lo: lo + no]
                    acc[:] = 0.0
                    sops = 0
                    if kind[g] == DENSE:
                        w2d = w[w_off[g]: w_off[g + 1]].reshape((ni, no))
                        sops = dense_events(events, ev0, ev0 + count, w2d, acc)
                    elif kind[g] == CONV:  # channels last, then into the channels-first history
                        out_ch, plane = geom[g, 3], geom[g, 4] * geom[g, 5]
                        wk_cl = w_cl[w_off[g]: w_off[g + 1]]
                        acc_g = acc_cl[:no]
                        acc_g[:] = 0.0
                        for e in range(count):
                            sops += conv_scatter(geom[g], events[ev0 + e], wk_cl, acc_g, tap_k, tap_p)
                        for p in range(plane):
                            for o in range(out_ch):
                                acc[o * plane + p] = acc_g[p * out_ch + o]
                    else:
                        plane = geom[g, 4] * geom[g, 5]
                        for e in range(count):
                            c, n = input_taps(geom[g], events[ev0 + e], tap_k, tap_p)
                            for q in range(n):
                                acc[c * plane + tap_p[q]] += pool_w[g]
                            sops += n
                    counters[g, 0, t] += count
                    counters[g, 2, t] += sops
                    counters[g, 3, t] += no
                    bias_g = bias_n[lo: lo + no]
                    fired, active = 0, 0
                    if lif[g]:  # the engine's LIF; the history keeps u (before reset) and the spikes
                        fired, active = lif_float_step(acc, bias_g, lams[g], v_th[g], soft, u[b, lo: lo + no],
                                                       s[b, lo: lo + no], spike_buf[lo: lo + no],
                                                       u_hist[h, b, lo: lo + no], neuron_spikes[lo: lo + no],
                                                       neuron_active[lo: lo + no])
                        s_hist[h, b, lo: lo + no] = s[b, lo: lo + no]
                    else:  # a linear classifier head: no neurons, only its input is counted
                        for i in range(no):
                            busy = acc[i] != 0.0
                            active += busy
                            neuron_active[lo + i] += busy
                    for i in range(no):  # the read-out current includes the bias
                        acc[i] += bias_g[i]
                    counters[g, 1, t] += fired
                    counters[g, 4, t] += active
                for c in range(n_out[main_out]):
                    readout_sum[b, c] += o_hist[h, b, n_off[main_out] + c]
        # ---- backward through the window ----------------------------------------------------------------
        for b in range(batch):
            du[:] = 0.0
            for t in range(stop - 1, start - 1, -1):
                if learn_mask[t] == 0:
                    continue
                h = t - start
                ds[:] = 0.0
                for g in range(graph - 1, -1, -1):
                    ni, no, lo = n_in[g], n_out[g], n_off[g]
                    for i in range(no):  # dL/du at t: surrogate x dL/ds, plus the temporal path from t+1
                        k = lo + i
                        grad_u = np.float32(0.0)
                        if lif[g]:
                            gp = surrogate(sur_kind, sur_alpha, u_hist[h, b, k] - v_th[g])
                            nxt = du[k]
                            if soft:
                                grad_u = np.float32(gp) * (ds[k] - lams[g] * v_th[g] * nxt) + lams[g] * nxt
                            else:
                                grad_u = np.float32(gp) * (ds[k] - lams[g] * u_hist[h, b, k] * nxt) \
                                    + lams[g] * (one - s_hist[h, b, k]) * nxt
                        dI[k] = grad_u
                        du[k] = grad_u
                    if readout[g]:
                        acc = o_hist[h, b, lo: lo + no]
                        peak = acc[0]
                        for c in range(no):
                            peak = max(peak, acc[c])
                        total = 0.0
                        for c in range(no):
                            total += np.exp(acc[c] - peak)
                        for c in range(no):
                            p = np.exp(acc[c] - peak) / total
                            dI[lo + c] += np.float32(p - (1.0 if labels[b] == c else 0.0)) * scale
                        counters[g, 9, t] += no
                    quantise_vector(dI[lo: lo + no], error_levels)  # the graded error message as sent
                    nonzero = 0
                    for i in range(no):
                        if dI[lo + i] != 0.0:
                            nonzero += 1
                            ch = channel_of(kind[g], geom[g], i)
                            if ch >= 0:
                                grad_b[c_off[g] + ch] += dI[lo + i]
                    if kind[g] == CONV:
                        errors_channels_last(geom[g], dI[lo: lo + no], d_cl, nz_pos)
                    # gradients: dW += dI a_src (a: presynaptic spike or trace), over the actual synapses
                    if nonzero > 0 and kind[g] != POOL:
                        if use_traces and src[g] >= 0:
                            pre = traces[b, in_base[g]: in_base[g] + ni]
                        elif src[g] < 0:
                            pre = x_hist[h, b, :]
                        else:
                            pre = s_hist[h, b, n_off[src[g]]: n_off[src[g]] + ni]
                        ops = 0
                        if kind[g] == DENSE:
                            for j in range(ni):
                                a = pre[j]
                                if a == 0.0:
                                    continue
                                row = grad_w[w_off[g] + j * no: w_off[g] + (j + 1) * no]
                                for i in range(no):
                                    row[i] += dI[lo + i] * a
                                ops += nonzero
                        else:
                            ops = conv_gradients(geom[g], pre, d_cl, nz_pos, grad_cl[w_off[g]: w_off[g + 1]], tap_k,
                                                 tap_p)
                        counters[g, 6, t] += ops
                    if src[g] < 0 or not pass_error[g] or (skip_silent and nonzero == 0):
                        continue
                    # W^T dI into the source's dL/ds, only at neurons with g' != 0
                    below = n_off[src[g]]
                    macs, sent = 0, 0
                    if kind[g] == DENSE:
                        for j in range(ni):
                            if surrogate(sur_kind, sur_alpha, u_hist[h, b, below + j] - v_th[src[g]]) == 0.0:
                                continue
                            total_err = np.float32(0.0)
                            row = w[w_off[g] + j * no: w_off[g] + (j + 1) * no]
                            for i in range(no):
                                total_err += row[i] * dI[lo + i]
                            macs += no
                            ds[below + j] += total_err
                            sent += 1
                    else:
                        macs, sent = spatial_back(kind[g], geom[g], pool_w[g], w_cl[w_off[g]: w_off[g + 1]],
                                                  dI[lo: lo + no], d_cl, u_hist[h, b, below: below + ni], v_th[src[g]],
                                                  sur_kind, sur_alpha, ds[below: below + ni], tap_k, tap_p)
                    counters[g, 5, t] += macs
                    counters[src[g], 9, t] += sent
            if update_every_step and b == batch - 1 and learn_mask[stop - 1] != 0:
                fold_conv_gradients(to_cl, grad_cl, grad_w)
                write_back(kind, geom, n_in, n_out, w, w_off, bias, c_off, has_bias, grad_w, grad_b, lr, counters,
                           stop - 1, w_step, w_levels, chan_writes)
                expand_bias(kind, geom, n_out, bias, c_off, n_off, has_bias, bias_n)
                kernels_channels_last(to_cl, w, w_cl)
    if not update_every_step:
        fold_conv_gradients(to_cl, grad_cl, grad_w)
        write_back(kind, geom, n_in, n_out, w, w_off, bias, c_off, has_bias, grad_w, grad_b, lr, counters,
                   steps - 1, w_step, w_levels, chan_writes)
