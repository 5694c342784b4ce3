"""The on-chip learning kernel: every rule (BPTT, SLTT, SLTT-K, OTTT_A, OTTT_O, TTL-BPTT, STDL-online) on a graph of
dense (recurrent and ALIF included), conv and sum-pool nodes, float32 or the chip's fixed point.

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
    dL/dI^g[t] = dL/du^g[t] (+ dCE/do / (B T) where g is a read-out; / (B n_scored) on a task's scored steps)
    dW^g += dL/dI^g[t] a^{src}[t]^T      (a: presynaptic spike, or trace a = lam a + s with OTTT)

A recurrent node (``Graph.n_rec`` > 0) also reads its own spikes of the step before: inside a window its
``W_rec^T dL/dI^g[t]`` joins ``dL/ds^g[t-1]`` and its recurrent rows learn from ``s^g[t-1]`` (OTTT: from their trace
``r̂[t] = lam r̂[t-1] + s^g[t-1]``); an ALIF node adds its adaptation path; with a window of one step both are cut
(:mod:`~hwsim.learning.kernels.recurrent` has the equations).

``window = T`` with one block is BPTT; ``window = 1`` drops every temporal term: SLTT (all steps), SLTT-K (the
steps of ``learn_mask``), OTTT (``traces``; the network input is used raw, as the paper's code does; with
``update_every_step`` the weights are written after every learning step, OTTT_O) and STDL-online. Weights are
written once per batch otherwise (plain SGD, ``W -= lr * grad``); in fixed point error messages are quantised per
vector and weights written back onto their grid by stochastic rounding (``hwsim.learning.kernels.ops``).

Counting (DESIGN.md section 4; ``Tally.counters`` indexed by the ``C_*`` constants): ``sop`` per event x its
actual fan-out (borders and strides exact); ``error_macs`` = the fan-out of every presynaptic neuron whose
surrogate derivative is non-zero (one weight x error product per synapse); ``grad_ops`` = pairs (active
presynaptic neuron or non-zero trace, postsynaptic neuron with a non-zero error) over the actual synapses, each
one accumulation into the (shared) weight's accumulator; ``trace_updates`` = inputs of a learning node every step
(a recurrent node's own ones included); ``sop_recurrent`` = the recurrent part of ``sop``; a recurrent node's
``W_rec^T dI`` products are its own ``error_macs`` and the values it sends itself its own ``errors``;
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
from hwsim.learning.kernels.ops import quantise_vector, surrogate, update_traces
from hwsim.learning.kernels.records import (
    C_ERROR_MACS,
    C_ERRORS,
    C_GRAD_OPS,
    C_NEURON_UPDATES,
    C_NEURON_UPDATES_ACTIVE,
    C_SOP,
    C_SOP_RECURRENT,
    C_SPIKES_IN,
    C_SPIKES_OUT,
    C_TRACE_UPDATES,
    CONV,
    DENSE,
    POOL,
    Scratch,
)
from hwsim.learning.kernels.recurrent import alif_step, margins, recurrent_error, recurrent_events
from hwsim.learning.kernels.update import write_back
from hwsim.sim.kernels.lif import lif_float_step
from hwsim.sim.kernels.synapses import dense_events


@nb.njit(cache=True)
def train(graph, rule, state, tally, batch):
    """Train one mini-batch in place (``state``, ``tally``) window after window (module docstring)."""
    steps, samples, nodes = batch.learn_mask.shape[0], batch.labels.shape[0], graph.kind.shape[0]
    np.random.seed(rule.seed)  # stochastic rounding draws (numba's own generator)
    work = scratch(graph, rule.window, samples)
    kernels_channels_last(graph, state.w, state.w_cl)
    expand_bias(graph, state.bias, work.bias_n)
    kind, geom, n_in, n_out, src, lif = graph.kind, graph.geom, graph.n_in, graph.n_out, graph.src, graph.lif
    lams, v_th, pool_w, w_off, c_off, n_off = graph.lams, graph.v_th, graph.pool_w, graph.w_off, graph.c_off, \
        graph.n_off
    in_off, w, w_cl, grad_w, grad_cl = graph.in_off, state.w, state.w_cl, state.grad_w, state.grad_cl
    counters, events, traces, u, s, n_events = tally.counters, work.events, work.traces, work.u, work.s, work.n_events
    u_hist, s_hist, o_hist, x_hist, d_i = work.u_hist, work.s_hist, work.o_hist, work.x_hist, work.d_i
    n_rec, adapt, beta, a_hist, main = graph.n_rec, graph.adapt, graph.beta, work.a_hist, graph.main_out
    sur, online, fill_x = (rule.surrogate, rule.alpha), rule.window == 1, rule.window > 1 or kind[0] != DENSE
    temporal = not online and (n_rec.max() > 0 or adapt.max() > 0)  # recurrent or adaptive paths through time
    for start in range(0, steps, rule.window):
        stop = min(start + rule.window, steps)
        if temporal:  # a window's first recurrent input: the spikes entering it
            work.s_enter[:] = s
        for t in range(start, stop):
            h = t - start
            for b in range(samples):  # ---- forward, node after node, keeping the history
                slot = b * steps + t
                step_events = batch.in_events[batch.in_off[slot]: batch.in_off[slot + 1]]
                if fill_x:  # the network input as values: histories, conv gradients
                    mark_inputs(step_events, x_hist[h, b])
                for g in range(nodes):
                    ni, no, lo, ev0, sg, nr = n_in[g], n_out[g], n_off[g], in_off[g], src[g], n_rec[g]
                    node_events = events[b, ev0: ev0 + ni + nr]
                    count = gather_events(step_events, node_events, tally.input_spikes[ev0: ev0 + ni]) if sg < 0 else \
                        spike_events(s[b, n_off[sg]: n_off[sg] + ni], node_events, tally.input_spikes[ev0: ev0 + ni])
                    n_events[b, g] = count
                    if rule.traces and kind[g] != POOL and sg >= 0:  # OTTT: the network input is used raw
                        update_traces(traces[b, ev0: ev0 + ni], node_events[:count], lams[sg], rule.trace_levels, 0)
                        counters[g, C_TRACE_UPDATES, t] += ni
                    acc = o_hist[h, b, lo: lo + no]
                    acc[:] = 0.0
                    if kind[g] == DENSE:
                        sops = dense_events(node_events, 0, count, w[w_off[g]: w_off[g + 1]].reshape((ni + nr, no)),
                                            acc)
                    else:
                        sops = spatial_forward(kind[g], geom[g], pool_w[g], w_cl[w_off[g]: w_off[g + 1]],
                                               node_events[:count], acc, work.acc_cl, work.tap_k, work.tap_p)
                    kept = 0 if online else no  # the history of a window (online: the current state serves)
                    if nr > 0 or adapt[g]:  # its own spikes of the step before, then the recurrent / ALIF step
                        fired, active, n_events[b, g] = recurrent_step(graph, rule, (g, b, h, t, count, kept), (
                            node_events, w[w_off[g]: w_off[g + 1]].reshape((ni + nr, no)), o_hist[h, b], work.racc,
                            work.bias_n, u, s, work.a, u_hist, s_hist, a_hist,
                            tally.input_spikes[ev0 + ni: ev0 + ni + nr], traces[b, ev0 + ni: ev0 + ni + nr],
                            work.spike_buf, tally.neuron_spikes, tally.neuron_active), counters[g])
                    else:
                        fired, active = neurons_step((lif[g], lams[g], v_th[g], rule.soft), acc,
                                                     work.bias_n[lo: lo + no], u[b, lo: lo + no], s[b, lo: lo + no],
                                                     work.spike_buf[lo: lo + no], u_hist[h, b, lo: lo + kept],
                                                     s_hist[h, b, lo: lo + kept], tally.neuron_spikes[lo: lo + no],
                                                     tally.neuron_active[lo: lo + no])
                    count_step(counters, g, t, count, sops, no, fired, active)
                if batch.loss_w[t] != 0.0:  # the read-out summed over the scored steps
                    add_into(o_hist[h, b, n_off[main]: n_off[main] + n_out[main]], tally.readout[b])
        for b in range(samples):  # ---- backward through the window's learning steps, last node first
            clear(work.du, work.da, work.ds_rec, temporal)  # the errors carried back through the window
            for t in range(stop - 1, start - 1, -1):
                if batch.learn_mask[t] == 0:
                    continue
                h = t - start
                u_now, s_now = (u[b], s[b]) if online else (u_hist[h, b], s_hist[h, b])
                work.ds[:] = 0.0
                for g in range(nodes - 1, -1, -1):
                    ni, no, lo, sg, nr = n_in[g], n_out[g], n_off[g], src[g], n_rec[g]
                    d = d_i[lo: lo + no]
                    if nr > 0 or adapt[g]:  # a recurrent or ALIF node: its own step (through time in a window)
                        nonzero = recurrent_backward(graph, rule, (g, b, h, t), batch, state, work, counters)
                    else:
                        node_error((lif[g], lams[g], v_th[g], rule.soft), sur, online, u_now[lo: lo + no],
                                   s_now[lo: lo + no], work.du[lo: lo + no], work.ds[lo: lo + no],
                                   work.gp[lo: lo + no], d)
                        if graph.readout[g] and batch.loss_w[t] != 0.0:
                            readout_error(o_hist[h, b, lo: lo + no], batch.labels[b], batch.loss_w[t], d)
                            counters[g, C_ERRORS, t] += no
                        quantise_vector(d, rule.error_levels)  # the graded error message as sent
                        nonzero = bias_gradients(kind[g], geom[g], d, state.grad_b[c_off[g]: c_off[g + 1]])
                        if kind[g] == CONV:
                            errors_channels_last(geom[g], d, work.d_cl, work.nz_pos)
                        if nonzero > 0 and kind[g] != POOL:
                            traced = rule.traces and sg >= 0  # dW += dI a: a the presynaptic spike or trace
                            pre = traces[b, in_off[g]: in_off[g] + ni] if traced else x_hist[h, b, :] if sg < 0 else \
                                s_now[n_off[sg]: n_off[sg] + ni]
                            if kind[g] != DENSE:
                                ops = conv_gradients(geom[g], pre, work.d_cl, work.nz_pos,
                                                     grad_cl[w_off[g]: w_off[g + 1]], work.tap_k, work.tap_p)
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
                    below, v_src, u_src = n_off[sg], v_th[sg], u_now[n_off[sg]: n_off[sg] + ni]  # W^T dI, gated by g'
                    if adapt[sg]:  # the layer below has ALIF neurons: g'(u - A), their margins against 0
                        u_src, v_src = margins(u_src, (work.a[b] if online else a_hist[h, b])[below: below + ni],
                                               v_th[sg], beta[sg], work.margin[below: below + ni]), np.float32(0.0)
                    if kind[g] == DENSE:
                        macs, sent = dense_back(w[w_off[g]: w_off[g + 1]].reshape((ni + nr, no))[:ni], d, u_src,
                                                v_src, sur, work.ds[below: below + ni], work.gp[below: below + ni])
                    else:
                        macs, sent = spatial_back(kind[g], geom[g], pool_w[g], w_cl[w_off[g]: w_off[g + 1]], d,
                                                  work.d_cl, u_src, v_src, sur,
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
    """The working arrays (:class:`~hwsim.learning.kernels.records.Scratch`) of one call, zero (the adaptation
    history only when the graph has ALIF nodes). Allocated one by one in this order: a dense node's speed depends
    on where the allocator puts them (a single aligned pool measured 2-3 % slower on 64-128-10)."""
    nodes = graph.kind.shape[0]
    n_total, inputs = graph.n_off[nodes], graph.in_off[nodes]
    taps_max, conv_out, plane_max = 1, 1, 1
    for g in range(nodes):
        if graph.kind[g] != DENSE:
            taps_max = max(taps_max, graph.geom[g, 6] * graph.geom[g, 7])
        if graph.kind[g] == CONV:
            conv_out = max(conv_out, graph.n_out[g])
            plane_max = max(plane_max, graph.geom[g, 4] * graph.geom[g, 5])
    adapt_n = n_total if graph.adapt.max() > 0 else 0
    f32 = np.float32
    state_n, hist_n = np.zeros((samples, n_total), f32), np.zeros((window, samples, n_total), f32)
    return Scratch(state_n, state_n.copy(), state_n.copy(), state_n.copy(), hist_n, hist_n.copy(),
                   np.zeros((window, samples, adapt_n), f32), hist_n.copy(),
                   np.zeros((window, samples, graph.n_in[0]), f32), np.zeros((samples, inputs), f32),
                   np.zeros((samples, inputs), np.int32), np.zeros((samples, nodes), np.int64),
                   np.zeros(n_total, np.uint8), np.zeros(n_total, f32),
                   np.zeros(n_total, f32), np.zeros(n_total, f32), np.zeros(n_total, f32), np.zeros(n_total, f32),
                   np.zeros(n_total, f32), np.zeros(n_total, f32), np.zeros(n_total, f32), np.zeros(n_total, f32),
                   np.zeros(conv_out, f32), np.zeros(conv_out, f32), np.zeros(plane_max, np.int64),
                   np.zeros(taps_max, np.int64), np.zeros(taps_max, np.int64))


@nb.njit(cache=True, inline="always")
def clear(du, da, ds_rec, temporal):
    """Zero the errors a window carries back through time: dL/du, and with recurrent or ALIF nodes (``temporal``)
    dL/da and the recurrent synapses' dL/ds (N,) float32."""
    du[:] = 0.0
    if temporal:
        da[:] = 0.0
        ds_rec[:] = 0.0


@nb.njit(cache=True, inline="always")
def count_step(counters, g, t, count, sops, updates, fired, active):
    """Node ``g``'s forward counters at step ``t``: feed-forward events, SOPs, neuron updates, spikes, active
    updates."""
    counters[g, C_SPIKES_IN, t] += count
    counters[g, C_SOP, t] += sops
    counters[g, C_NEURON_UPDATES, t] += updates
    counters[g, C_SPIKES_OUT, t] += fired
    counters[g, C_NEURON_UPDATES_ACTIVE, t] += active


@nb.njit(cache=True)
def recurrent_step(graph, rule, ids, arrays, counters):
    """The forward step of recurrent or ALIF node g, once its feed-forward events are in and summed (called only
    for such nodes, so a dense node's step is untouched): its own spikes of the step before as address events after
    the feed-forward ones (OTTT: their traces ``r̂ = lam r̂ + s[t-1]``), their sum through the recurrent rows into
    the recurrent current, then the neurons
    (:func:`~hwsim.learning.kernels.recurrent.alif_step`). ``ids`` = (g, sample b, window slot h, step t,
    feed-forward events, neurons kept in the history); ``arrays`` = (the node's events, weights (n_in + n_rec,
    n_out), the currents of this step and slot (N,), recurrent-current scratch (N,), biases (N,), u, s, a (B, N),
    their histories (H, B, N), the node's own per-input counts and recurrent traces (n_rec,), spike buffer,
    per-neuron spikes and active updates (N,)); ``counters`` the node's (counter, T). Returns ``(spikes, active
    updates, events in)``."""
    g, b, h, t, count, kept = ids
    events, w2d, currents, racc_all, bias, u, s, a, u_hist, s_hist, a_hist, own_counts, own_traces, spike_buf, \
        neuron_spikes, neuron_active = arrays
    n_in, n_rec, lo, no = graph.n_in[g], graph.n_rec[g], graph.n_off[g], graph.n_out[g]
    own = 0
    if n_rec > 0:
        own = recurrent_events(s[b, lo: lo + no], events[count:], n_in, own_counts)
        if rule.traces:
            update_traces(own_traces, events[count: count + own], graph.lams[g], rule.trace_levels, n_in)
            counters[C_TRACE_UPDATES, t] += n_rec
    racc = racc_all[lo: lo + no]
    racc[:] = 0.0
    rec_sops = dense_events(events, count, count + own, w2d, racc)
    counters[C_SOP, t] += rec_sops
    counters[C_SOP_RECURRENT, t] += rec_sops
    kept_a = kept if graph.adapt[g] else 0
    fired, active = alif_step((graph.lams[g], graph.v_th[g], rule.soft, graph.rho[g], graph.beta[g]),
                              currents[lo: lo + no], racc, bias[lo: lo + no],
                              (u[b, lo: lo + no], s[b, lo: lo + no], a[b, lo: lo + no]), spike_buf[lo: lo + no],
                              (u_hist[h, b, lo: lo + kept], s_hist[h, b, lo: lo + kept], a_hist[h, b, lo: lo + kept_a]),
                              neuron_spikes[lo: lo + no], neuron_active[lo: lo + no])
    return fired, active, count + own


@nb.njit(cache=True)
def recurrent_backward(graph, rule, ids, batch, state, work, counters):
    """The backward step of recurrent or ALIF node g at step t (called only for such nodes): its error -- in a
    window through time, with the recurrent synapses' dL/ds sent from t + 1 and the adaptation path
    (:func:`~hwsim.learning.kernels.recurrent.recurrent_error`); online cut, as a dense node's --, the read-out
    error, the message, its gradients (input rows as a dense node's, recurrent rows from its own spikes of t - 1:
    their events online, OTTT's ``r̂``, the window's history or the spikes entering it), and in a window
    ``W_rec^T dI[t]`` into its own dL/ds[t-1], gated by g' at t - 1. ``ids`` = (g, sample b, window slot h, step
    t). Returns the non-zero errors."""
    g, b, h, t = ids
    n_in, n_rec, no, lo, sg, ev0 = graph.n_in[g], graph.n_rec[g], graph.n_out[g], graph.n_off[g], graph.src[g], \
        graph.in_off[g]
    online, sur, neuron = rule.window == 1, (rule.surrogate, rule.alpha), (graph.lams[g], graph.v_th[g], rule.soft)
    u_now, s_now, a_now = (work.u[b], work.s[b], work.a[b]) if online else (work.u_hist[h, b], work.s_hist[h, b],
                                                                            work.a_hist[h, b])
    d = work.d_i[lo: lo + no]
    if online:
        node_error((True, *neuron), sur, True, u_now[lo: lo + no], s_now[lo: lo + no], work.du[lo: lo + no],
                   work.ds[lo: lo + no], work.gp[lo: lo + no], d)
    else:
        recurrent_error((*neuron, graph.rho[g], graph.beta[g]), sur, u_now[lo: lo + no], s_now[lo: lo + no],
                        a_now[lo: lo + (no if graph.adapt[g] else 0)], (work.du[lo: lo + no], work.da[lo: lo + no],
                                                                         work.ds[lo: lo + no],
                                                                         work.ds_rec[lo: lo + no]), d)
    if graph.readout[g] and batch.loss_w[t] != 0.0:
        readout_error(work.o_hist[h, b, lo: lo + no], batch.labels[b], batch.loss_w[t], d)
        counters[g, C_ERRORS, t] += no
    quantise_vector(d, rule.error_levels)  # the graded error message as sent
    nonzero = bias_gradients(DENSE, graph.geom[g], d, state.grad_b[graph.c_off[g]: graph.c_off[g + 1]])
    w2d = state.w[graph.w_off[g]: graph.w_off[g + 1]].reshape((n_in + n_rec, no))
    if nonzero > 0:  # dW += dI a over the input rows, then the recurrent rows
        grad2d = state.grad_w[graph.w_off[g]: graph.w_off[g + 1]].reshape((n_in + n_rec, no))
        touched, traces = state.touched[ev0: ev0 + n_in + n_rec], work.traces[b, ev0: ev0 + n_in + n_rec]
        events = work.events[b, ev0: ev0 + work.n_events[b, g]]
        if online and not rule.traces:  # this step's spikes as address events, its own ones included
            ops = event_gradients(events, d, grad2d, touched, nonzero)
        else:
            if rule.traces and sg >= 0:
                ops = value_gradients(traces[:n_in], d, grad2d[:n_in], touched[:n_in], nonzero)
            elif online:  # OTTT's first layer: the raw input's events (its own ones follow them)
                n_ff = 0
                while n_ff < events.shape[0] and events[n_ff] < n_in:
                    n_ff += 1
                ops = event_gradients(events[:n_ff], d, grad2d, touched, nonzero)
            else:
                pre = work.x_hist[h, b, :] if sg < 0 else s_now[graph.n_off[sg]: graph.n_off[sg] + n_in]
                ops = value_gradients(pre, d, grad2d[:n_in], touched[:n_in], nonzero)
            if n_rec > 0:
                previous = traces[n_in:] if rule.traces else work.s_hist[h - 1, b, lo: lo + no] if h > 0 else \
                    work.s_enter[b, lo: lo + no]
                ops += value_gradients(previous, d, grad2d[n_in:], touched[n_in:], nonzero)
        counters[g, C_GRAD_OPS, t] += ops
    if n_rec > 0 and not online and h > 0 and not (rule.skip_silent and nonzero == 0):
        u_prev, v_prev = work.u_hist[h - 1, b, lo: lo + no], graph.v_th[g]
        if graph.adapt[g]:  # g'(u - A) at t - 1
            u_prev = margins(u_prev, work.a_hist[h - 1, b, lo: lo + no], v_prev, graph.beta[g],
                             work.margin[lo: lo + no])
            v_prev = np.float32(0.0)
        macs, sent = dense_back(w2d[n_in:], d, u_prev, v_prev, sur, work.ds_rec[lo: lo + no], work.gp[lo: lo + no])
        counters[g, C_ERROR_MACS, t] += macs
        counters[g, C_ERRORS, t] += sent
    return nonzero


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
