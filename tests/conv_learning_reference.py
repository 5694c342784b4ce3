"""A verbatim copy of ``hwsim.learning.kernels.conv`` as it was before its conv layers went channels-last
(scatter/gather over per-event fan-out lists): the reference the current kernel's counters and weights are
compared with in ``tests/test_learning_conv.py`` (run by ``tests.learning_reference.FormerLearner``)."""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.learning.kernels.conv import channel_of  # unchanged by the rewrite
from hwsim.learning.kernels.ops import quantise_vector, surrogate
from hwsim.sim.kernels.lif import lif_float_step
from hwsim.sim.kernels.synapses import dense_events
from tests.learning_reference import expand_bias, write_back  # the graph kernel's, before it took records

DENSE, CONV, POOL = 0, 1, 2


@nb.njit(cache=True, inline="always")
def fan_out(kind, geom, j, targets, taps):
    """Conv or pool: the outputs ``targets`` input ``j`` = (c, y, x) reaches and the kernel index ``taps``
    of each synapse (-1 for a pool tap); returns how many."""
    c_in, h, w = geom[0], geom[1], geom[2]
    out_ch, ho, wo, kh, kw, stride, pad = geom[3], geom[4], geom[5], geom[6], geom[7], geom[8], geom[9]
    c = j // (h * w)
    y = (j // w) % h
    x = j % w
    plane = ho * wo
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
            base = oy * wo + ox
            if kind == CONV:
                for o in range(out_ch):
                    targets[n] = o * plane + base
                    taps[n] = ((o * c_in + c) * kh + ky) * kw + kx
                    n += 1
            else:
                targets[n] = c * plane + base
                taps[n] = -1
                n += 1
    return n


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
    fan_max = 1
    for g in range(graph):
        in_base[g + 1] = in_base[g] + n_in[g]
        if kind[g] != DENSE:
            fan_max = max(fan_max, geom[g, 3] * geom[g, 6] * geom[g, 7])
    targets = np.zeros(fan_max, np.int64)
    taps = np.zeros(fan_max, np.int64)
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
                    else:
                        wk = w[w_off[g]: w_off[g + 1]]
                        for e in range(count):
                            n = fan_out(kind[g], geom[g], events[ev0 + e], targets, taps)
                            for q in range(n):
                                acc[targets[q]] += wk[taps[q]] if taps[q] >= 0 else pool_w[g]
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
                    # gradients: dW += dI a_src (a: presynaptic spike or trace), over the actual synapses
                    if nonzero > 0 and kind[g] != POOL:
                        ops = 0
                        for j in range(ni):
                            if use_traces and src[g] >= 0:
                                a = traces[b, in_base[g] + j]
                            else:
                                a = x_hist[h, b, j] if src[g] < 0 else s_hist[h, b, n_off[src[g]] + j]
                            if a == 0.0:
                                continue
                            if kind[g] == DENSE:
                                row = grad_w[w_off[g] + j * no: w_off[g] + (j + 1) * no]
                                for i in range(no):
                                    row[i] += dI[lo + i] * a
                                ops += nonzero
                            else:
                                n = fan_out(kind[g], geom[g], j, targets, taps)
                                for q in range(n):
                                    d = dI[lo + targets[q]]
                                    if d != 0.0:
                                        grad_w[w_off[g] + taps[q]] += d * a
                                        ops += 1
                        counters[g, 6, t] += ops
                    if src[g] < 0 or not pass_error[g] or (skip_silent and nonzero == 0):
                        continue
                    # W^T dI into the source's dL/ds, only at neurons with g' != 0
                    below = n_off[src[g]]
                    macs, sent = 0, 0
                    for j in range(ni):
                        if surrogate(sur_kind, sur_alpha, u_hist[h, b, below + j] - v_th[src[g]]) == 0.0:
                            continue
                        total_err = np.float32(0.0)
                        if kind[g] == DENSE:
                            row = w[w_off[g] + j * no: w_off[g] + (j + 1) * no]
                            for i in range(no):
                                total_err += row[i] * dI[lo + i]
                            macs += no
                        else:
                            n = fan_out(kind[g], geom[g], j, targets, taps)
                            for q in range(n):
                                tap = w[w_off[g] + taps[q]] if taps[q] >= 0 else pool_w[g]
                                total_err += tap * dI[lo + targets[q]]
                            macs += n
                        ds[below + j] += total_err
                        sent += 1
                    counters[g, 5, t] += macs
                    counters[src[g], 9, t] += sent
            if update_every_step and b == batch - 1 and learn_mask[stop - 1] != 0:
                write_back(kind, geom, n_in, n_out, w, w_off, bias, c_off, has_bias, grad_w, grad_b, lr, counters,
                           stop - 1, w_step, w_levels, chan_writes)
                expand_bias(kind, geom, n_out, bias, c_off, n_off, has_bias, bias_n)
    if not update_every_step:
        write_back(kind, geom, n_in, n_out, w, w_off, bias, c_off, has_bias, grad_w, grad_b, lr, counters,
                   steps - 1, w_step, w_levels, chan_writes)
