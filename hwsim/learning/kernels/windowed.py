"""On-chip learning kernel with state history: BPTT, TTL-BPTT and STDL-online on a graph of dense layers.

The graph holds the network's layers and, for blocks that learn locally, their heads (TTL-BPTT: one linear
classifier; STDL: the auxiliary network ``hwsim.learning.stdl_plan.plan`` chooses for the budget -- layers with the
architecture of following layers but their own weights, then a classifier unless they reach the read-out),
in topological order. Layer g reads the
spikes of layer ``src[g]`` (-1: the network input); ``lif[g]`` says whether it has LIF neurons (a linear
classifier head does not); ``readout[g]`` whether its synaptic current is a read-out with a loss;
``pass_error[g]`` whether its error may flow into ``src[g]`` (false across a block boundary).

Time runs in windows of ``window`` steps. Inside a window the forward pass stores every layer's membrane
and spikes (the history a chip must keep); at the window's end the error runs backwards through time and
layers (the state entering the window is a constant):

    dL/ds^g[t] = sum over consumers c: W_c^T dL/dI^c[t]  + (reset path into u^g[t+1])
    dL/du^g[t] = g'(u^g[t] - V_th) dL/ds^g[t] + (du^g[t+1]/du^g[t]) dL/du^g[t+1]
    dL/dI^g[t] = dL/du^g[t] (+ dCE/do / (B T) where g is a read-out)
    dW^g += dL/dI^g[t] s^{src}[t]^T

W^T products are done only at neurons whose surrogate derivative is non-zero. ``window = T`` with one block
is BPTT; ``window = 1`` drops every temporal term (SLTT-like per-step learning, as STDL-online uses).
Weights are updated once per batch (plain SGD); in fixed point (``w_levels`` > 0) error messages are
quantised and weights written back onto their grid by stochastic rounding, as in ``hwsim.learning.kernels.online``.
Layouts and counters as ``hwsim.learning.kernels.online``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.learning.kernels.online import quantise_vector, stochastic_round, surrogate
from hwsim.sim.kernels.lif import lif_float_step
from hwsim.sim.kernels.synapses import dense_events


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

