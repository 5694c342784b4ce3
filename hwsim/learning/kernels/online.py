"""On-chip learning kernel for the per-step (online) rules on dense chains: SLTT, SLTT-K, OTTT_A, OTTT_O.

One call trains one mini-batch. The loop is time-outer, sample-inner (as a chip streams samples through
the same step): forward event by event, then, at a learning step, the error is injected at the read-out
(the last layer's synaptic current) and propagated down through the weights only at neurons whose
surrogate derivative is non-zero; gradients accumulate per synapse gated by presynaptic activity (spikes
for SLTT, non-zero traces for OTTT); weights are written back at the rule's cadence (end of batch, or every
step for OTTT_O). Float32 throughout; plain SGD (``W -= lr * grad``).

Layout: layer ly has ``sizes[ly]`` inputs and ``sizes[ly+1]`` neurons; its weights are fan-out major
``(sizes[ly], sizes[ly+1])`` stored flat in ``w`` from ``w_off[ly]``; biases flat from ``b_off[ly]``; neuron
arrays flat from ``n_off[ly]``; per-input arrays flat from the running sum of ``sizes[:-1]``. Counters
``(L, COUNTERS, T)`` summed over the batch, in the order of ``COUNTER_NAMES``; per-neuron spike and
active-update totals and per-input spike totals as the inference engine keeps them.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.sim.kernels.lif import lif_float_step
from hwsim.sim.kernels.synapses import dense_events

COUNTER_NAMES = ("spikes_in", "spikes_out", "sop", "neuron_updates", "neuron_updates_active", "error_macs",
                 "grad_ops", "trace_updates", "weight_updates", "errors")
TRIANGLE, SIGMOID, RECTANGLE = 0, 1, 2


@nb.njit(cache=True, inline="always")
def surrogate(kind, alpha, x):
    if kind == TRIANGLE:
        return max(0.0, alpha - alpha * alpha * abs(x))
    if kind == SIGMOID:
        sig = 1.0 / (1.0 + np.exp(-alpha * x))
        return alpha * sig * (1.0 - sig)
    return (1.0 / alpha) if abs(x) <= alpha / 2.0 else 0.0


@nb.njit(cache=True, inline="always")
def stochastic_round(value, step, levels):
    """``value`` onto the grid ``step * q``, ``|q| <= levels``, rounding up with probability equal to the
    remainder (unbiased); ``levels = 0`` leaves it as it is."""
    if levels == 0:
        return value
    x = value / step
    q = np.floor(x)
    if np.random.random() < x - q:
        q += 1.0
    q = min(max(q, -levels), levels)
    return np.float32(q * step)


@nb.njit(cache=True, inline="always")
def quantise_vector(values, levels):
    """Round ``values`` in place to ``levels`` steps of a shared scale max|v| / levels (a graded message with
    one exponent per vector); ``levels = 0`` leaves them."""
    if levels == 0:
        return
    peak = 0.0
    for i in range(values.shape[0]):
        peak = max(peak, abs(values[i]))
    if peak == 0.0:
        return
    step = peak / levels
    for i in range(values.shape[0]):
        values[i] = np.float32(np.rint(values[i] / step) * step)


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
