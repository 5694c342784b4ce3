"""The on-chip learning kernel: every rule (BPTT, SLTT, SLTT-K, OTTT_A, OTTT_O, TTL-BPTT, STDL-online) on a graph of
dense, conv and sum-pool nodes, float32 or the chip's fixed point.

One :func:`train` call trains one mini-batch (:class:`~hwsim.learning.kernels.records.Batch`) of the graph
(:class:`~hwsim.learning.kernels.records.Graph`: the network's neuron layers, then the heads of locally trained
blocks -- TTL-BPTT classifiers, STDL auxiliary networks) with the rule's settings
(:class:`~hwsim.learning.kernels.records.RuleParams`), updating the learner's
:class:`~hwsim.learning.kernels.records.State` and counting into a
:class:`~hwsim.learning.kernels.records.Tally`. A dense network is a graph of dense nodes.

Time runs in windows of ``window`` steps, sample after sample inside a step (as a chip streams samples through
the same step). Inside a window the forward pass runs event by event and keeps every node's membrane, spikes and
synaptic current (the history a chip must keep); at the window's end the error runs back through time and nodes
(the state entering the window is a constant):

    dL/ds^g[t] = sum over consumers c: W_c^T dL/dI^c[t]  + (reset path into u^g[t+1])
    dL/du^g[t] = g'(u^g[t] - V_th) dL/ds^g[t] + (du^g[t+1]/du^g[t]) dL/du^g[t+1]
    dL/dI^g[t] = dL/du^g[t] (+ dCE/do / (B T) where g is a read-out)
    dW^g += dL/dI^g[t] a^{src}[t]^T      (a: presynaptic spike, or trace a = lam a + s with OTTT)

``window = T`` with one block is BPTT; ``window = 1`` drops every temporal term: SLTT (all steps), SLTT-K (the
steps of ``learn_mask``), OTTT (``traces``; the network input is used raw, as the paper's code does; with
``update_every_step`` the weights are written after every learning step, OTTT_O) and STDL-online. Weights are
written once per batch otherwise (plain SGD, ``W -= lr * grad``); in fixed point error messages are quantised per
vector and weights written back onto their grid by stochastic rounding (``hwsim.learning.kernels.ops``).

Counting (DESIGN.md section 4; ``Tally.counters`` indexed by the ``C_*`` constants): ``sop`` per event x its
actual fan-out (borders and strides exact); ``error_macs`` = the fan-out of every presynaptic neuron whose
surrogate derivative is non-zero (one weight x error product per synapse); ``grad_ops`` = pairs (active
presynaptic neuron or non-zero trace, postsynaptic neuron with a non-zero error) over the actual synapses, each
one accumulation into the (shared) weight's accumulator; ``trace_updates`` = inputs of a learning node every step;
``weight_updates`` = weights with a non-zero gradient written back (a conv kernel weight once); ``Tally.writes``
those writes per output neuron (dense) or output channel (conv). With ``skip_silent`` (the windowed rules) a node
whose error vector is all zero sends nothing down; without (the online rules), W^T products are counted for every
neuron with g' != 0.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.learning.kernels.conv import (
    channel_of,
    conv_gradients,
    errors_channels_last,
    expand_bias,
    kernels_channels_last,
    spatial_back,
    spatial_forward,
)
from hwsim.learning.kernels.ops import quantise_vector, surrogate
from hwsim.learning.kernels.records import (
    C_ERROR_MACS,
    C_ERRORS,
    C_GRAD_OPS,
    C_NEURON_UPDATES,
    C_NEURON_UPDATES_ACTIVE,
    C_SOP,
    C_SPIKES_IN,
    C_SPIKES_OUT,
    C_TRACE_UPDATES,
    CONV,
    DENSE,
    POOL,
    Scratch,
)
from hwsim.learning.kernels.update import write_back
from hwsim.sim.kernels.lif import lif_float_step
from hwsim.sim.kernels.synapses import dense_events


@nb.njit(cache=True)
def train(graph, rule, state, tally, batch):
    """Train one mini-batch: forward and backward window after window, weights written at the rule's cadence.
    Writes ``state`` and ``tally`` in place. With a window of one step (``online``) the backward pass of a step
    reads the neurons' current state and this step's address events instead of a history. (The loops over
    steps, samples and nodes stay in this one function and the helpers take arrays, not records: a record
    handed to a function costs a reference count per array in it, which per node and step would outweigh a
    dense layer's work.)"""
    steps, samples, nodes = batch.learn_mask.shape[0], batch.labels.shape[0], graph.kind.shape[0]
    np.random.seed(rule.seed)  # stochastic rounding draws (numba's own generator)
    work = scratch(graph, rule.window, samples)
    kernels_channels_last(graph, state.w, state.w_cl)
    expand_bias(graph, state.bias, work.bias_n)
    kind, geom, n_in, n_out, src, lif = graph.kind, graph.geom, graph.n_in, graph.n_out, graph.src, graph.lif
    lams, v_th, pool_w, w_off, c_off, n_off = graph.lams, graph.v_th, graph.pool_w, graph.w_off, graph.c_off, \
        graph.n_off
    in_off, w, w_cl, grad_w, grad_cl = graph.in_off, state.w, state.w_cl, state.grad_w, state.grad_cl
    counters, events, traces, u, s = tally.counters, work.events, work.traces, work.u, work.s
    u_hist, s_hist, o_hist, x_hist, d_i = work.u_hist, work.s_hist, work.o_hist, work.x_hist, work.d_i
    sur, scale = (rule.surrogate, rule.alpha), np.float32(1.0 / (samples * steps))
    online, n_events = rule.window == 1, work.n_events
    fill_x = not online or kind[0] != DENSE  # the network input as values: histories, conv gradients
    for start in range(0, steps, rule.window):
        stop = min(start + rule.window, steps)
        for t in range(start, stop):
            h = t - start
            for b in range(samples):  # ---- forward, node after node, keeping the history
                slot = b * steps + t
                step_events = batch.in_events[batch.in_off[slot]: batch.in_off[slot + 1]]
                if fill_x:
                    mark_inputs(step_events, x_hist[h, b])
                for g in range(nodes):
                    ni, no, lo, ev0, sg = n_in[g], n_out[g], n_off[g], in_off[g], src[g]
                    node_events = events[b, ev0: ev0 + ni]
                    if sg < 0:
                        count = gather_events(step_events, node_events, tally.input_spikes[ev0: ev0 + ni])
                    else:
                        count = spike_events(s[b, n_off[sg]: n_off[sg] + ni], node_events,
                                             tally.input_spikes[ev0: ev0 + ni])
                    n_events[b, g] = count
                    if rule.traces and kind[g] != POOL and sg >= 0:  # OTTT: the network input is used raw
                        update_traces(traces[b, ev0: ev0 + ni], node_events[:count], lams[sg], rule.trace_levels)
                        counters[g, C_TRACE_UPDATES, t] += ni
                    acc = o_hist[h, b, lo: lo + no]
                    acc[:] = 0.0
                    if kind[g] == DENSE:
                        sops = dense_events(node_events, 0, count, w[w_off[g]: w_off[g + 1]].reshape((ni, no)), acc)
                    else:
                        sops = spatial_forward(kind[g], geom[g], pool_w[g], w_cl[w_off[g]: w_off[g + 1]],
                                               node_events[:count], acc, work.acc_cl, work.tap_k, work.tap_p)
                    kept = 0 if online else no  # the history of a window (online: the current state serves)
                    fired, active = neurons_step((lif[g], lams[g], v_th[g], rule.soft), acc, work.bias_n[lo: lo + no],
                                                 u[b, lo: lo + no], s[b, lo: lo + no], work.spike_buf[lo: lo + no],
                                                 u_hist[h, b, lo: lo + kept], s_hist[h, b, lo: lo + kept],
                                                 tally.neuron_spikes[lo: lo + no], tally.neuron_active[lo: lo + no])
                    counters[g, C_SPIKES_IN, t] += count
                    counters[g, C_SOP, t] += sops
                    counters[g, C_NEURON_UPDATES, t] += no
                    counters[g, C_SPIKES_OUT, t] += fired
                    counters[g, C_NEURON_UPDATES_ACTIVE, t] += active
                main = graph.main_out
                add_into(o_hist[h, b, n_off[main]: n_off[main] + n_out[main]], tally.readout[b])
        for b in range(samples):  # ---- backward through the window's learning steps, last node first
            work.du[:] = 0.0
            for t in range(stop - 1, start - 1, -1):
                if batch.learn_mask[t] == 0:
                    continue
                h = t - start
                u_now, s_now = (u[b], s[b]) if online else (u_hist[h, b], s_hist[h, b])
                work.ds[:] = 0.0
                for g in range(nodes - 1, -1, -1):
                    ni, no, lo, sg = n_in[g], n_out[g], n_off[g], src[g]
                    d = d_i[lo: lo + no]
                    node_error((lif[g], lams[g], v_th[g], rule.soft), sur, online, u_now[lo: lo + no],
                               s_now[lo: lo + no], work.du[lo: lo + no], work.ds[lo: lo + no], work.gp[lo: lo + no], d)
                    if graph.readout[g]:
                        readout_error(o_hist[h, b, lo: lo + no], batch.labels[b], scale, d)
                        counters[g, C_ERRORS, t] += no
                    quantise_vector(d, rule.error_levels)  # the graded error message as sent
                    nonzero = bias_gradients(kind[g], geom[g], d, state.grad_b[c_off[g]: c_off[g + 1]])
                    if kind[g] == CONV:
                        errors_channels_last(geom[g], d, work.d_cl, work.nz_pos)
                    if nonzero > 0 and kind[g] != POOL:  # dW += dI a: a the presynaptic spike or trace
                        traced = rule.traces and sg >= 0
                        if traced:
                            pre = traces[b, in_off[g]: in_off[g] + ni]
                        elif sg < 0:
                            pre = x_hist[h, b, :]
                        else:
                            pre = s_now[n_off[sg]: n_off[sg] + ni]
                        if kind[g] != DENSE:
                            ops = conv_gradients(geom[g], pre, work.d_cl, work.nz_pos, grad_cl[w_off[g]: w_off[g + 1]],
                                                 work.tap_k, work.tap_p)
                        elif online and not traced:  # gated by this step's spikes: their address events
                            ops = event_gradients(events[b, in_off[g]: in_off[g] + n_events[b, g]], d,
                                                  grad_w[w_off[g]: w_off[g + 1]].reshape((ni, no)),
                                                  state.touched[in_off[g]: in_off[g] + ni], nonzero)
                        else:
                            ops = value_gradients(pre, d, grad_w[w_off[g]: w_off[g + 1]].reshape((ni, no)),
                                                  state.touched[in_off[g]: in_off[g] + ni], nonzero)
                        counters[g, C_GRAD_OPS, t] += ops
                    if sg < 0 or not graph.pass_error[g] or (rule.skip_silent and nonzero == 0):
                        continue
                    below = n_off[sg]
                    if kind[g] == DENSE:
                        macs, sent = dense_back(w[w_off[g]: w_off[g + 1]].reshape((ni, no)), d,
                                                u_now[below: below + ni], v_th[sg], sur, work.ds[below: below + ni],
                                                work.gp[below: below + ni])
                    else:
                        macs, sent = spatial_back(kind[g], geom[g], pool_w[g], w_cl[w_off[g]: w_off[g + 1]], d,
                                                  work.d_cl, u_now[below: below + ni], v_th[sg], sur,
                                                  (work.ds[below: below + ni], work.gp[below: below + ni]),
                                                  (work.tap_k, work.tap_p))
                    counters[g, C_ERROR_MACS, t] += macs
                    counters[sg, C_ERRORS, t] += sent
        if rule.update_every_step and samples > 0 and batch.learn_mask[stop - 1] != 0:
            write_back(graph, rule, state, tally, stop - 1)
            expand_bias(graph, state.bias, work.bias_n)
            kernels_channels_last(graph, state.w, state.w_cl)
    if not rule.update_every_step:
        write_back(graph, rule, state, tally, steps - 1)


@nb.njit(cache=True)
def scratch(graph, window, samples):
    """The working arrays (:class:`~hwsim.learning.kernels.records.Scratch`) of one call, zero."""
    nodes = graph.kind.shape[0]
    n_total, inputs = graph.n_off[nodes], graph.in_off[nodes]
    taps_max, conv_out, plane_max = 1, 1, 1
    for g in range(nodes):
        if graph.kind[g] != DENSE:
            taps_max = max(taps_max, graph.geom[g, 6] * graph.geom[g, 7])
        if graph.kind[g] == CONV:
            conv_out = max(conv_out, graph.n_out[g])
            plane_max = max(plane_max, graph.geom[g, 4] * graph.geom[g, 5])
    f32 = np.float32
    return Scratch(np.zeros((samples, n_total), f32), np.zeros((samples, n_total), f32),
                   np.zeros((window, samples, n_total), f32), np.zeros((window, samples, n_total), f32),
                   np.zeros((window, samples, n_total), f32), np.zeros((window, samples, graph.n_in[0]), f32),
                   np.zeros((samples, inputs), f32), np.zeros((samples, inputs), np.int32),
                   np.zeros((samples, nodes), np.int64), np.zeros(n_total, np.uint8),
                   np.zeros(n_total, f32), np.zeros(n_total, f32), np.zeros(n_total, f32), np.zeros(n_total, f32),
                   np.zeros(n_total, f32), np.zeros(conv_out, f32), np.zeros(conv_out, f32),
                   np.zeros(plane_max, np.int64), np.zeros(taps_max, np.int64), np.zeros(taps_max, np.int64))


# ---- forward ---------------------------------------------------------------------------------------------------
@nb.njit(cache=True, inline="always")
def mark_inputs(step_events, x):
    """The network input of one step as 0/1 values ``x`` (n_in,) from its address events."""
    x[:] = 0.0
    for e in range(step_events.shape[0]):
        x[step_events[e]] = 1.0


@nb.njit(cache=True, inline="always")
def gather_events(step_events, events, counts):
    """Copy the network input's address events into ``events``, counting each input in ``counts``; returns
    how many."""
    for e in range(step_events.shape[0]):
        events[e] = step_events[e]
        counts[step_events[e]] += 1
    return step_events.shape[0]


@nb.njit(cache=True, inline="always")
def spike_events(spikes, events, counts):
    """The address events of a source node's ``spikes`` (n_in,) into ``events`` (ascending), counting each
    input in ``counts``; returns how many."""
    count = 0
    for j in range(spikes.shape[0]):
        events[count] = j
        count += spikes[j] != 0.0
    for e in range(count):
        counts[events[e]] += 1
    return count


@nb.njit(cache=True, inline="always")
def update_traces(traces, events, decay, levels):
    """OTTT's presynaptic traces (n_in,): ``a = decay a + s`` for the ``events`` of this step, held on a grid
    of ``a_max / levels`` in fixed point (``levels`` > 0)."""
    one = np.float32(1.0)
    for j in range(traces.shape[0]):
        traces[j] *= decay
    for e in range(events.shape[0]):
        traces[events[e]] += one
    if levels > 0:  # traces held in their bit width: steps of a_max / levels
        step = np.float32(1.0 / (1.0 - decay) / levels) if decay < 1.0 else one
        for j in range(traces.shape[0]):
            traces[j] = np.float32(np.rint(traces[j] / step) * step)


@nb.njit(cache=True, inline="always")
def neurons_step(neuron, acc, bias, u, s, spike_buf, u_kept, s_kept, spikes, active_counts):
    """A node's neurons on its synaptic input ``acc`` (no,); ``neuron`` = (has LIF neurons, lam, V_th, soft
    reset). LIF: the engine's float step on ``u``, ``s``, counting spikes and active updates per neuron, with
    u (before reset) and the spikes kept in ``u_kept``, ``s_kept``; a linear classifier head has no neurons,
    only its busy inputs are counted. Then the bias is added to ``acc`` (the read-out current). Returns
    ``(spikes, active updates)``."""
    has_lif, lam, v_th, soft = neuron
    fired, active = 0, 0
    if has_lif:
        fired, active = lif_float_step(acc, bias, lam, v_th, soft, u, s, spike_buf, u_kept[:0], spikes, active_counts)
        for i in range(u.shape[0]):  # the history: u before reset, and the spikes
            u_kept[i] = u[i]
            s_kept[i] = s[i]
    else:
        for i in range(acc.shape[0]):
            busy = acc[i] != 0.0
            active += busy
            active_counts[i] += busy
    add_into(bias, acc)
    return fired, active


@nb.njit(cache=True, inline="always")
def add_into(values, total):
    """``total += values`` elementwise (two float32 vectors of one length)."""
    for i in range(values.shape[0]):
        total[i] += values[i]


# ---- backward --------------------------------------------------------------------------------------------------
@nb.njit(cache=True, inline="always")
def node_error(neuron, sur, online, u, s, du, ds, gp, d):
    """dL/du = dL/dI ``d`` (no,) of a node's neurons at one step: surrogate (``sur`` = (shape, alpha)) x dL/ds
    ``ds``, plus the temporal path from the next step held in ``du`` (soft reset: through the leak and the
    reset; reset to zero: through the leak of a silent neuron and the reset), which then takes the new value;
    zero for a linear head. ``online`` (a window of one step): no temporal path, ``du`` untouched, and the
    surrogate derivatives ``gp`` the W^T pass into this node kept (where an error arrived; elsewhere ``ds`` is
    0): ``d = gp ds``, the same values as the general form."""
    has_lif, lam, v_th, soft = neuron
    shape, alpha = sur
    one = np.float32(1.0)
    if online:
        for i in range(d.shape[0]):
            d[i] = gp[i] * ds[i] if has_lif else np.float32(0.0)
        return
    for i in range(d.shape[0]):
        grad_u = np.float32(0.0)
        if has_lif:
            gp = surrogate(shape, alpha, u[i] - v_th)
            nxt = du[i]
            if soft:
                grad_u = np.float32(gp) * (ds[i] - lam * v_th * nxt) + lam * nxt
            else:
                grad_u = np.float32(gp) * (ds[i] - lam * u[i] * nxt) + lam * (one - s[i]) * nxt
        d[i] = grad_u
        du[i] = grad_u


@nb.njit(cache=True, inline="always")
def readout_error(current, label, scale, d):
    """Add dCE/do of the read-out ``current`` (classes,) for ``label``, times ``scale`` = 1 / (B T), to ``d``."""
    peak = current[0]
    for c in range(current.shape[0]):
        peak = max(peak, current[c])
    total = 0.0
    for c in range(current.shape[0]):
        total += np.exp(current[c] - peak)
    for c in range(current.shape[0]):
        p = np.exp(current[c] - peak) / total
        d[c] += np.float32(p - (1.0 if label == c else 0.0)) * scale


@nb.njit(cache=True, inline="always")
def bias_gradients(kind, geom, d, grad_b):
    """``grad_b`` (one slot per neuron or channel) += the node's non-zero errors ``d``; returns how many."""
    nonzero = 0
    if kind == DENSE:  # a slot per neuron
        for i in range(d.shape[0]):
            if d[i] != 0.0:
                nonzero += 1
                grad_b[i] += d[i]
        return nonzero
    for i in range(d.shape[0]):
        if d[i] != 0.0:
            nonzero += 1
            ch = channel_of(kind, geom, i)
            if ch >= 0:
                grad_b[ch] += d[i]
    return nonzero


@nb.njit(cache=True, inline="always")
def accumulate(row, d, a):
    """``row += d * a``: one presynaptic neuron's gradient row (n_out,), ``a`` its spike (1) or trace."""
    for i in range(d.shape[0]):  # zero errors add nothing (a chip skips them; the counts do)
        row[i] += d[i] * a


@nb.njit(cache=True)
def event_gradients(events, d, grad, touched, nonzero):
    """Dense ``dW += dI s``, gated by the presynaptic spikes of this step given as address ``events``: rows of
    ``grad`` (n_in, n_out), each flagged in ``touched`` for the write-back. Returns the accumulations that count
    (``nonzero`` errors per active input)."""
    one = np.float32(1.0)
    for e in range(events.shape[0]):
        touched[events[e]] = 1
        accumulate(grad[events[e]], d, one)
    return events.shape[0] * nonzero


@nb.njit(cache=True)
def value_gradients(pre, d, grad, touched, nonzero):
    """Dense ``dW += dI a`` for every input with a non-zero presynaptic value ``a = pre[j]`` (a spike of the
    window's history, or a trace): rows of ``grad`` (n_in, n_out), each flagged in ``touched``. Returns the
    accumulations that count."""
    ops = 0
    for j in range(pre.shape[0]):
        if pre[j] != 0.0:
            touched[j] = 1
            accumulate(grad[j], d, pre[j])
            ops += nonzero
    return ops


@nb.njit(cache=True)
def dense_back(w2d, d, u_src, v_th, sur, ds_src, gp_src):
    """W^T dI of a dense node (weights ``w2d`` (n_in, n_out), error ``d``) into its source's dL/ds ``ds_src``,
    only at source neurons whose surrogate derivative (membrane ``u_src``, threshold ``v_th``, ``sur`` =
    (shape, alpha)) is non-zero; each derivative is kept in ``gp_src`` (float32). Returns ``(products, source
    neurons sent to)``."""
    shape, alpha = sur
    macs, sent = 0, 0
    for j in range(w2d.shape[0]):
        gp_src[j] = np.float32(surrogate(shape, alpha, u_src[j] - v_th))
        if gp_src[j] == 0.0:
            continue
        row = w2d[j]
        total = np.float32(0.0)
        for i in range(d.shape[0]):
            total += row[i] * d[i]
        ds_src[j] += total
        macs += d.shape[0]
        sent += 1
    return macs, sent
