"""The learning kernels as they were before they took records (a frozen, test-only reference): the dense online
kernel (SLTT, SLTT-K, OTTT), the dense windowed kernel (BPTT, TTL-BPTT, STDL) and the graph kernel of conv
networks (conv layers channels last), verbatim, with the former learner's choice between them and its byte
accounting (:class:`FormerLearner`). ``tests/test_learning.py`` holds the live kernel
(``hwsim.learning.kernels.graph``) to these counter for counter and weight for weight.

Only what the rewrite changed is copied; the helpers it left as they were are imported from the live modules.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.learning.kernels.conv import (
    channel_of,
    conv_gradients,
    conv_scatter,
    errors_channels_last,
    input_taps,
    position_taps,
)
from hwsim.learning.kernels.ops import dot, quantise_vector, stochastic_round, surrogate
from hwsim.learning.kernels.records import CONV, DENSE, KIND_NAMES, POOL
from hwsim.learning.learner import FLOAT_BYTES, add_learning_bytes
from hwsim.sim.counts import Counts, LayerCounts, add_inference_bytes
from hwsim.sim.kernels.lif import lif_float_step
from hwsim.sim.kernels.synapses import dense_events, scan_events

COUNTER_NAMES = ("spikes_in", "spikes_out", "sop", "neuron_updates", "neuron_updates_active", "error_macs",
                 "grad_ops", "trace_updates", "weight_updates", "errors")


# ---- hwsim/learning/kernels/online.py ---------------------------------------------------------------------------
@nb.njit(cache=True)
def apply_update(w, bias, grad_w, grad_b, lr, counters, t, w_off, b_off, sizes, touched, t_off, has_bias,
                 w_step, w_levels, neuron_writes):
    """``W -= lr * grad`` for every synapse with a non-zero gradient (only rows whose presynaptic neuron was
    active hold any), onto the chip's weight grid by stochastic rounding when ``w_levels`` > 0; zero the
    accumulators and the row flags. ``neuron_writes`` counts the weights written per postsynaptic neuron."""
    layers = sizes.shape[0] - 1
    rate = np.float32(lr)
    for ly in range(layers):
        n_in, n_out = sizes[ly], sizes[ly + 1]
        written = 0
        lo = b_off[ly]
        before = 0
        for i in range(n_out):
            before += neuron_writes[lo + i]
        for j in range(n_in):
            if touched[t_off[ly] + j] == 0:
                continue
            touched[t_off[ly] + j] = 0
            row = w_off[ly] + j * n_out
            if w_levels == 0:  # float: a plain, vectorised write-back
                w_row = w[row: row + n_out]
                g_row = grad_w[row: row + n_out]
                counts = neuron_writes[lo: lo + n_out]
                for i in range(n_out):
                    counts[i] += g_row[i] != 0.0
                    w_row[i] -= rate * g_row[i]
                    g_row[i] = 0.0
                continue
            for i in range(n_out):
                g = grad_w[row + i]
                if g != 0.0:
                    written += 1
                    neuron_writes[b_off[ly] + i] += 1
                    w[row + i] = stochastic_round(w[row + i] - rate * g, w_step[ly], w_levels)
                grad_w[row + i] = 0.0
        for k in range(b_off[ly], b_off[ly + 1]):
            if has_bias[ly]:  # a layer without bias has none to learn
                bias[k] -= rate * grad_b[k]
            grad_b[k] = 0.0
        if w_levels == 0:
            after = 0
            for i in range(n_out):
                after += neuron_writes[lo + i]
            written = after - before
        counters[ly, 8, t] += written


@nb.njit(cache=True)
def train_online(sizes, w, w_off, bias, b_off, n_off, lams, v_th, soft, sur_kind, sur_alpha,
                 in_off, in_events, labels, learn_mask, lr, use_traces, update_every_step,
                 grad_w, grad_b, touched, has_bias, counters, readout_sum, neuron_spikes, neuron_active,
                 input_spikes, w_step, w_levels, trace_levels, error_levels, seed, neuron_writes):
    layers = sizes.shape[0] - 1
    steps = learn_mask.shape[0]
    batch = labels.shape[0]
    n_total = n_off[layers]
    classes = sizes[layers]
    scale = np.float32(1.0 / (batch * steps))
    u = np.zeros((batch, n_total), np.float32)
    s = np.zeros((batch, n_total), np.float32)
    t_off = np.zeros(layers + 1, np.int64)
    for ly in range(layers):
        t_off[ly + 1] = t_off[ly] + sizes[ly]
    traces = np.zeros((batch, t_off[layers]), np.float32)
    acc = np.zeros(n_total, np.float32)
    delta = np.zeros(n_total, np.float32)
    events = np.zeros(t_off[layers], np.int32)  # presynaptic address events of every layer, this step
    n_events = np.zeros(layers, np.int64)
    spike_buf = np.zeros(n_total, np.uint8)
    no_rec = np.zeros(0, np.float32)
    one = np.float32(1.0)
    np.random.seed(seed)  # stochastic rounding draws (numba's own generator)
    for t in range(steps):
        for b in range(batch):
            # ---- forward, event by event --------------------------------------------------------------
            slot = b * steps + t
            for ly in range(layers):
                n_in, n_out = sizes[ly], sizes[ly + 1]
                lo, ev0 = n_off[ly], t_off[ly]
                count = 0
                if ly == 0:
                    for e in range(in_off[slot], in_off[slot + 1]):
                        events[ev0 + count] = in_events[e]
                        count += 1
                else:
                    below = n_off[ly - 1]
                    for j in range(n_in):
                        events[ev0 + count] = j
                        count += s[b, below + j] != 0.0
                n_events[ly] = count
                for e in range(count):
                    input_spikes[ev0 + events[ev0 + e]] += 1
                if use_traces and ly > 0:  # OTTT: no trace on the network input (the raw input, as the paper's code)
                    decay = lams[ly - 1]
                    for j in range(n_in):
                        traces[b, ev0 + j] *= decay
                    for e in range(count):
                        traces[b, ev0 + events[ev0 + e]] += one
                    if trace_levels > 0:  # traces held in their bit width: steps of a_max / levels
                        step = np.float32(1.0 / (1.0 - decay) / trace_levels) if decay < 1.0 else np.float32(1.0)
                        for j in range(n_in):
                            traces[b, ev0 + j] = np.float32(np.rint(traces[b, ev0 + j] / step) * step)
                    counters[ly, 7, t] += n_in
                w2d = w[w_off[ly]: w_off[ly + 1]].reshape((n_in, n_out))
                acc_l = acc[lo: lo + n_out]
                acc_l[:] = 0.0
                dense_events(events, ev0, ev0 + count, w2d, acc_l)
                counters[ly, 0, t] += count
                counters[ly, 2, t] += count * n_out
                counters[ly, 3, t] += n_out
                bias_l = bias[b_off[ly]: b_off[ly] + n_out]
                fired, active = lif_float_step(acc_l, bias_l, lams[ly], v_th[ly], soft, u[b, lo: lo + n_out],
                                               s[b, lo: lo + n_out], spike_buf[lo: lo + n_out], no_rec,
                                               neuron_spikes[lo: lo + n_out], neuron_active[lo: lo + n_out])
                for i in range(n_out):  # the read-out current includes the bias
                    acc_l[i] += bias_l[i]
                counters[ly, 1, t] += fired
                counters[ly, 4, t] += active
            out = n_off[layers - 1]
            for c in range(classes):
                readout_sum[b, c] += acc[out + c]
            if learn_mask[t] == 0:
                continue
            # ---- error at the read-out: dCE/do / (B T) ------------------------------------------------
            peak = acc[out]
            for c in range(classes):
                peak = max(peak, acc[out + c])
            total = 0.0
            for c in range(classes):
                total += np.exp(acc[out + c] - peak)
            for c in range(classes):
                p = np.exp(acc[out + c] - peak) / total
                delta[out + c] = np.float32(p - (1.0 if labels[b] == c else 0.0)) * scale
            counters[layers - 1, 9, t] += classes
            # ---- backward through the layers, gated -------------------------------------------------
            for ly in range(layers - 1, -1, -1):
                n_in, n_out = sizes[ly], sizes[ly + 1]
                lo, ev0 = n_off[ly], t_off[ly]
                delta_l = delta[lo: lo + n_out]
                quantise_vector(delta_l, error_levels)  # the graded error message as the chip sends it
                nonzero = 0
                for i in range(n_out):
                    if delta_l[i] != 0.0:
                        nonzero += 1
                        grad_b[b_off[ly] + i] += delta_l[i]
                g2d = grad_w[w_off[ly]: w_off[ly + 1]].reshape((n_in, n_out))
                active_inputs = 0
                if nonzero > 0:
                    if use_traces and ly > 0:  # gated by non-zero presynaptic traces
                        for j in range(n_in):
                            a = traces[b, ev0 + j]
                            if a != 0.0:
                                active_inputs += 1
                                touched[ev0 + j] = 1
                                row = g2d[j]
                                for i in range(n_out):  # zero deltas add nothing (the chip skips them)
                                    row[i] += delta_l[i] * a
                    else:  # gated by presynaptic spikes
                        for e in range(n_events[ly]):
                            j = events[ev0 + e]
                            active_inputs += 1
                            touched[ev0 + j] = 1
                            row = g2d[j]
                            for i in range(n_out):
                                row[i] += delta_l[i]
                counters[ly, 6, t] += active_inputs * nonzero
                if ly == 0:
                    break
                # delta of layer ly-1 = g'(u - v_th) * (W^T delta), only where g' != 0
                below = n_off[ly - 1]
                w2d = w[w_off[ly]: w_off[ly + 1]].reshape((n_in, n_out))
                macs, sent = 0, 0
                for j in range(n_in):
                    g = surrogate(sur_kind, sur_alpha, u[b, below + j] - v_th[ly - 1])
                    if g == 0.0:
                        delta[below + j] = 0.0
                        continue
                    row = w2d[j]
                    total_err = np.float32(0.0)
                    for i in range(n_out):
                        total_err += row[i] * delta_l[i]
                    delta[below + j] = np.float32(g) * total_err
                    macs += n_out
                    sent += 1
                counters[ly, 5, t] += macs
                counters[ly - 1, 9, t] += sent
        if update_every_step and learn_mask[t] != 0:
            apply_update(w, bias, grad_w, grad_b, lr, counters, t, w_off, b_off, sizes, touched, t_off, has_bias,
                         w_step, w_levels, neuron_writes)
    if not update_every_step:
        apply_update(w, bias, grad_w, grad_b, lr, counters, steps - 1, w_off, b_off, sizes, touched, t_off,
                     has_bias, w_step, w_levels, neuron_writes)


# ---- hwsim/learning/kernels/windowed.py -------------------------------------------------------------------------
@nb.njit(cache=True)
def train_windowed(n_in, n_out, src, lif, readout, pass_error, main_out, w, w_off, bias, b_off, n_off, lams, v_th,
                   soft, sur_kind, sur_alpha, in_off, in_events, labels, steps, window, lr, grad_w, grad_b, has_bias,
                   counters, readout_sum, neuron_spikes, neuron_active, input_spikes, w_step, w_levels,
                   error_levels, seed, neuron_writes):
    graph = n_in.shape[0]
    batch = labels.shape[0]
    np.random.seed(seed)  # stochastic rounding of the weight write-back (fixed point)
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
    for g in range(graph):
        in_base[g + 1] = in_base[g] + n_in[g]
    events = np.zeros(in_base[graph], np.int32)
    spike_buf = np.zeros(n_total, np.uint8)
    touched = np.zeros(in_base[graph], np.uint8)
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
                    w2d = w[w_off[g]: w_off[g + 1]].reshape((ni, no))
                    acc = o_hist[h, b, lo: lo + no]
                    acc[:] = 0.0
                    dense_events(events, ev0, ev0 + count, w2d, acc)
                    counters[g, 0, t] += count
                    counters[g, 2, t] += count * no
                    counters[g, 3, t] += no
                    bias_g = bias[b_off[g]: b_off[g] + no]
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
                h = t - start
                ds[:] = 0.0
                for g in range(graph - 1, -1, -1):
                    ni, no, lo = n_in[g], n_out[g], n_off[g]
                    # dL/du of this layer at t: surrogate x dL/ds, plus the temporal path from t+1
                    for i in range(no):
                        k = lo + i
                        grad_u = np.float32(0.0)
                        if lif[g]:
                            gp = surrogate(sur_kind, sur_alpha, u_hist[h, b, k] - v_th[g])
                            nxt = du[k]
                            if soft:
                                ds_total = ds[k] - lams[g] * v_th[g] * nxt
                                grad_u = np.float32(gp) * ds_total + lams[g] * nxt
                            else:
                                ds_total = ds[k] - lams[g] * u_hist[h, b, k] * nxt
                                grad_u = np.float32(gp) * ds_total + lams[g] * (one - s_hist[h, b, k]) * nxt
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
                    # gradients: dW += dI s_src^T (gated by presynaptic spikes), db += dI
                    nonzero = 0
                    for i in range(no):
                        if dI[lo + i] != 0.0:
                            nonzero += 1
                            grad_b[b_off[g] + i] += dI[lo + i]
                    g2d = grad_w[w_off[g]: w_off[g + 1]].reshape((ni, no))
                    active_inputs = 0
                    if nonzero > 0:
                        for j in range(ni):
                            a = x_hist[h, b, j] if src[g] < 0 else s_hist[h, b, n_off[src[g]] + j]
                            if a == 0.0:
                                continue
                            active_inputs += 1
                            touched[in_base[g] + j] = 1
                            row = g2d[j]
                            for i in range(no):
                                row[i] += dI[lo + i]
                    counters[g, 6, t] += active_inputs * nonzero
                    if src[g] < 0 or not pass_error[g] or nonzero == 0:
                        continue
                    # W^T dI into the source's dL/ds, only at neurons with g' != 0
                    below = n_off[src[g]]
                    w2d = w[w_off[g]: w_off[g + 1]].reshape((ni, no))
                    macs, sent = 0, 0
                    for j in range(ni):
                        if surrogate(sur_kind, sur_alpha, u_hist[h, b, below + j] - v_th[src[g]]) == 0.0:
                            continue
                        row = w2d[j]
                        total_err = np.float32(0.0)
                        for i in range(no):
                            total_err += row[i] * dI[lo + i]
                        ds[below + j] += total_err
                        macs += no
                        sent += 1
                    counters[g, 5, t] += macs
                    counters[src[g], 9, t] += sent
    # ---- weight write-back once per batch ---------------------------------------------------------------
    rate = np.float32(lr)
    for g in range(graph):
        ni, no = n_in[g], n_out[g]
        written = 0
        for j in range(ni):
            if touched[in_base[g] + j] == 0:
                continue
            row = w_off[g] + j * no
            w_row, g_row, counts = w[row: row + no], grad_w[row: row + no], neuron_writes[b_off[g]: b_off[g] + no]
            if w_levels == 0:  # float: a plain, vectorised write-back
                for i in range(no):
                    written += g_row[i] != 0.0
                    counts[i] += g_row[i] != 0.0
                    w_row[i] -= rate * g_row[i]
                    g_row[i] = 0.0
                continue
            for i in range(no):
                if g_row[i] != 0.0:
                    written += 1
                    counts[i] += 1
                    w_row[i] = stochastic_round(w_row[i] - rate * g_row[i], w_step[g], w_levels)
                g_row[i] = 0.0
        for k in range(b_off[g], b_off[g + 1]):
            if has_bias[g]:
                bias[k] -= rate * grad_b[k]
            grad_b[k] = 0.0
        counters[g, 8, steps - 1] += written


# ---- hwsim/learning/kernels/conv.py -----------------------------------------------------------------------------
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


# ---- hwsim/learning/learner.py: which kernel ran a batch, and its counts -------------------------------------------
WINDOWED_RULES = ("bptt", "ttl_bptt", "stdl")


class FormerLearner:
    """The former ``OnChipLearner``'s batches on the frozen kernels: dense networks through ``train_online``
    (SLTT, SLTT-K, OTTT) or ``train_windowed`` (BPTT, TTL-BPTT, STDL), any other network through ``train_graph``
    (or ``conv_kernel``, e.g. the scatter kernel of ``tests/conv_learning_reference.py``). It starts from the
    graph, weights and weight grid of ``learner`` (a live learner before its first batch) and keeps its own
    weights, accumulators and batch count."""

    def __init__(self, learner, conv_kernel=None):
        from hwsim.learning.learner import SURROGATES
        from hwsim.sim.network import Dense

        self.rule, self.lr, self.seed, self.soft = learner.rule, learner.lr, learner.seed, learner.soft
        self.nodes, self.graph, self.layers = learner.nodes, learner.graph, len(learner.network.layers)
        self.sur_kind, self.alpha = SURROGATES[learner.options.surrogate], np.float32(learner.alpha)
        self.window = learner.window
        fmt = learner.number_format
        self.precision, self.bytes = fmt.precision, fmt.value_bytes()
        self.levels = (fmt.w_levels, fmt.trace_levels, fmt.error_levels)
        self.w, self.b, self.w_step = learner.w.copy(), learner.b.copy(), learner.w_step.copy()
        self.grad_w, self.grad_b = np.zeros_like(self.w), np.zeros_like(self.b)
        self.dense = all(isinstance(layer, Dense) for layer in learner.network.layers)
        self.touched = np.zeros(int(self.graph.in_off[-1]), np.uint8)
        self.conv_kernel = train_graph if conv_kernel is None else conv_kernel
        self.batches = 0

    def train_batch(self, spikes, labels, learn_steps):
        """One batch with backward passes at ``learn_steps``; returns ``(Counts, readout (B, classes))``."""
        steps, batch = spikes.shape[:2]
        mask = np.zeros(steps, np.uint8)
        mask[list(learn_steps)] = 1
        in_off, in_events = scan_events(np.ascontiguousarray(spikes, np.uint8).reshape(steps, batch, -1))
        gr = self.graph
        size = len(self.nodes)
        counters = np.zeros((size, len(COUNTER_NAMES), steps), np.int64)
        readout = np.zeros((batch, int(gr.n_out[gr.main_out])), np.float32)
        spikes_n, active_n = np.zeros(int(gr.n_off[-1]), np.int64), np.zeros(int(gr.n_off[-1]), np.int64)
        input_spikes, writes = np.zeros(int(gr.in_off[-1]), np.int64), np.zeros(int(gr.c_off[-1]), np.int64)
        w_levels, trace_levels, error_levels = self.levels
        seed = self.seed + self.batches
        window = {"bptt": steps, "ttl_bptt": self.window}.get(self.rule, 1)
        traces = self.rule.startswith("ottt")
        if self.dense and self.rule not in WINDOWED_RULES:
            sizes = np.array([gr.n_in[0], *gr.n_out[: self.layers]], np.int64)
            w_off, b_off = gr.w_off[: self.layers + 1].copy(), gr.c_off[: self.layers + 1].copy()
            train_online(sizes, self.w, w_off, self.b, b_off, b_off, gr.lams[: self.layers].copy(),
                         gr.v_th[: self.layers].copy(), self.soft, self.sur_kind, self.alpha, in_off, in_events,
                         labels, mask, self.lr, traces, self.rule == "ottt_o", self.grad_w, self.grad_b,
                         self.touched, gr.has_bias[: self.layers].copy(), counters, readout, spikes_n, active_n,
                         input_spikes, self.w_step, w_levels, trace_levels, error_levels, seed, writes)
        elif self.dense:
            train_windowed(gr.n_in, gr.n_out, gr.src, gr.lif, gr.readout, gr.pass_error, self.layers - 1, self.w,
                           gr.w_off, self.b, gr.c_off, gr.n_off, gr.lams, gr.v_th, self.soft, self.sur_kind,
                           self.alpha, in_off, in_events, labels, steps, window, self.lr, self.grad_w, self.grad_b,
                           gr.has_bias, counters, readout, spikes_n, active_n, input_spikes, self.w_step, w_levels,
                           error_levels, seed, writes)
        else:
            self.conv_kernel(gr.kind, gr.geom, gr.n_in, gr.n_out, gr.src, gr.lif, gr.readout, gr.pass_error,
                             gr.main_out, self.w, gr.w_off, gr.pool_w, self.b, gr.c_off, gr.has_bias, gr.n_off,
                             gr.lams, gr.v_th, self.soft, self.sur_kind, self.alpha, in_off, in_events, labels,
                             steps, window, mask, self.lr, traces, self.rule == "ottt_o", self.rule in WINDOWED_RULES,
                             self.grad_w, self.grad_b, counters, readout, spikes_n, active_n, input_spikes,
                             self.w_step, w_levels, trace_levels, error_levels, seed, writes)
        self.batches += 1
        counts = Counts(timesteps=steps, batch=batch, mode="float", phase="learning")
        for g, node in enumerate(self.nodes):
            lc = self._layer_counts(node, counters[g], steps, window > 1 and node.lif, traces)
            lc.neuron_spikes = spikes_n[gr.n_off[g]: gr.n_off[g + 1]]
            lc.neuron_active = active_n[gr.n_off[g]: gr.n_off[g + 1]]
            lc.input_spikes = input_spikes[gr.in_off[g]: gr.in_off[g + 1]]
            if node.kind == DENSE:
                lc.neuron_weight_updates = writes[gr.c_off[g]: gr.c_off[g + 1]]
            elif node.kind == CONV:
                lc.channel_weight_updates = writes[gr.c_off[g]: gr.c_off[g + 1]]
            counts.layers.append(lc)
        return counts, readout

    def _layer_counts(self, node, counters, steps, history, traces):
        lc = LayerCounts(node.name, KIND_NAMES[node.kind], node.n_in, node.n_out, steps)
        for c, counter in enumerate(COUNTER_NAMES):
            if counter in lc.events:
                lc.events[counter][:] = counters[c]
        add_inference_bytes(lc, self.precision, has_bias=node.bias is not None)
        add_learning_bytes(lc, counters[COUNTER_NAMES.index("errors")], traces, self.bytes)
        if history:
            lc.mem_write_bytes["history"] += lc.events["neuron_updates"] * 2 * FLOAT_BYTES
            lc.mem_read_bytes["history"] += lc.events["neuron_updates"] * 2 * FLOAT_BYTES
        if node.layer_index < 0:
            for table in (lc.mem_read_bytes, lc.mem_write_bytes):
                table["aux"] += table["weights"] + table["grad_accum"]
                table["weights"][:] = 0
                table["grad_accum"][:] = 0
        return lc
