"""e-prop's on-chip kernel: one recurrent LIF/ALIF layer and its read-out, forward event by event, eligibility traces
and a broadcast learning signal (Bellec et al., Nat. Commun. 11:3625, 2020; ReckOn's per-neuron variant, Frenkel &
Indiveri, ISSCC 2022). The driver is :class:`hwsim.learning.eprop.EpropLearner`; the equations are docs/eprop.md's.

Per step t and sample (``P`` presynaptic slots: the ``n_in`` inputs, the ``N`` recurrent neurons' previous spikes and,
with a bias, a constant 1; weights fan-out major, ``(pre, post)``)::

    eps_a[p,j] = psi_j[t-1] eps[p] + (rho - beta psi_j[t-1]) eps_a[p,j]   ALIF, per synapse (eps still eps[t-1])
    eps[p]     = lam eps[p] + pre_p[t]                                      presynaptic trace, per neuron
    a = rho a + s[t-1];  u = lam (u - v_th s[t-1]) + ((W_in x + W_rec s[t-1]) + b);  A = v_th + beta a
    s = u >= A;  psi = g'(u - A)
    e[p,j]     = psi_j (eps[p] - beta eps_a[p,j])      (LIF and per neuron: psi_j eps[p])
    ebar[p,j]  = kappa ebar[p,j] + e[p,j]              per synapse, kappa > 0 (else ebar = e)
    y = kappa y + W_out s + b_out;  sbar = kappa sbar + s;  bbar = kappa bbar + 1
  at a scored step (loss weight w_t = 1/T or 1/n_scored):
    err_k = w_t (softmax(y)_k - [k = label]) / B;   L_j = sum_k B_jk err_k   (B = W_out^T or the fixed random matrix)
    g_in/rec[p,j] += L_j ebar[p,j]  (per neuron: L_j psi_j eps[p]);   g_out[j,k] += err_k sbar_j;  g_b_out += err bbar
  weights: W -= lr g once per batch (per synapse) or after every scored step (per neuron, as ReckOn).

Counters (``EpropTally.counters`` ``(2, len(EC_NAMES), T)``, node 0 the recurrent layer, node 1 the read-out, summed
over the batch): ``spikes_in`` feed-forward events in (node 0: the input's; node 1: the hidden spikes); ``sop`` one
per event x fan-out, recurrent included; ``sop_recurrent`` the recurrent part; ``neuron_updates`` every neuron every
step; ``neuron_updates_active`` those with non-zero feed-forward or recurrent input; ``spikes_out``;
``trace_updates`` presynaptic traces updated every step (node 0: ``n_in + N`` (+1 for a bias); node 1, kappa > 0
only: the ``N`` output traces sbar (+1 for a bias), with kappa = 0 the trace is the spike itself);
``eligibility_updates`` per-synapse eligibility state updated every step (node 0, per-synapse form: ``P x N`` for
ALIF's eps_a and again for kappa's ebar; 0 per neuron); ``errors`` read-out errors computed (node 1: K per sample and
scored step); ``error_macs`` the learning signal's products ``B_jk err_k`` (node 1: N x K per sample and scored step);
``learning_signals`` values broadcast from the read-out (node 0: N per sample and scored step); ``grad_ops``
products accumulated into a synapse's gradient (or, per neuron, into the step's update) where both factors are
non-zero; ``weight_updates`` weights written with a non-zero change (biases not counted), also per postsynaptic
neuron in ``EpropTally.writes``.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from hwsim.learning.kernels.ops import stochastic_round, surrogate

EC_NAMES = ("spikes_in", "spikes_out", "sop", "sop_recurrent", "neuron_updates", "neuron_updates_active",
            "error_macs", "grad_ops", "trace_updates", "weight_updates", "learning_signals", "eligibility_updates",
            "errors")
(EC_SPIKES_IN, EC_SPIKES_OUT, EC_SOP, EC_SOP_RECURRENT, EC_NEURON_UPDATES, EC_NEURON_UPDATES_ACTIVE, EC_ERROR_MACS,
 EC_GRAD_OPS, EC_TRACE_UPDATES, EC_WEIGHT_UPDATES, EC_BROADCASTS, EC_ELIGIBILITY, EC_ERRORS) = range(len(EC_NAMES))
REC, OUT = 0, 1  # counter nodes: the recurrent layer, the read-out


class EpropParams(NamedTuple):
    """The rule's settings and the neurons' parameters for one batch."""

    lam: np.float32  # membrane leak of the recurrent layer
    v_th: np.float32  # base threshold
    rho: np.float32  # adaptation decay (0: LIF)
    beta: np.float32  # adaptation strength (0: LIF)
    alif: bool  # adaptive neurons: per-synapse eps_a
    surrogate: int  # TRIANGLE, SIGMOID or RECTANGLE (hwsim.learning.kernels.records)
    alpha: np.float32  # surrogate width / steepness
    kappa: np.float32  # read-out filter (0: the read-out current)
    per_neuron: bool  # ReckOn's variant: no per-synapse state, weights written every scored step
    random_fb: bool  # B is the fixed random matrix (else W_out^T)
    lr: np.float32  # SGD rate
    bias_rec: bool  # the recurrent layer has (learned) biases
    bias_out: bool  # the read-out has (learned) biases
    w_levels: int  # fixed point: weight levels each side of zero (0: float)
    lev_in: int  # fixed point: input-trace levels (0: float)
    lev_rec: int  # fixed point: recurrent-trace levels
    lev_out: int  # fixed point: output-trace levels
    seed: int  # stochastic rounding draws of this batch
    loss_w: np.ndarray  # (T,) float32 loss weight of each step (0: not scored)


class EpropState(NamedTuple):
    """What the learner keeps between batches (float32; weights fan-out major, written in place)."""

    w_in: np.ndarray  # (n_in, N) input weights
    w_rec: np.ndarray  # (N, N) recurrent weights, (pre, post)
    b_rec: np.ndarray  # (N,) recurrent-layer biases (zeros when it has none)
    w_out: np.ndarray  # (N, K) read-out weights
    b_out: np.ndarray  # (K,) read-out biases (zeros when it has none)
    feedback: np.ndarray  # (N, K) random e-prop's fixed B
    w_step: np.ndarray  # (3,) weight grid steps of w_in, w_rec, w_out (fixed point; 1 in float)


class EpropTally(NamedTuple):
    """What one batch counted and produced (zero on entry)."""

    counters: np.ndarray  # (2, len(EC_NAMES), T) int64
    readout: np.ndarray  # (B, K) float32 read-out y summed over the scored steps
    loss: np.ndarray  # (1,) float64 sum over scored steps of w_t * mean CE
    neuron_spikes: np.ndarray  # (2, max(N, K)) int64 spikes per neuron
    neuron_active: np.ndarray  # (2, max(N, K)) int64 active updates per neuron
    input_spikes: np.ndarray  # (2, max(n_in, N)) int64 events per input
    writes: np.ndarray  # (2, max(N, K)) int64 weights written per postsynaptic neuron


class EpropWork(NamedTuple):
    """Working state of one call (per sample ``b``)."""

    u: np.ndarray  # (B, N) membranes
    a: np.ndarray  # (B, N) adaptation
    s: np.ndarray  # (B, N) spikes of this step (before the step: s[t-1])
    psi: np.ndarray  # (B, N) pseudo-derivatives of this step (before: psi[t-1])
    eps: np.ndarray  # (B, P) presynaptic traces
    eps_a: np.ndarray  # (B, P, N) ALIF per-synapse adaptation eligibility (per-synapse form)
    ebar: np.ndarray  # (B, P, N) kappa-filtered eligibility (per-synapse form, kappa > 0)
    y: np.ndarray  # (B, K) filtered read-out
    sbar: np.ndarray  # (B, N) output traces
    u_out: np.ndarray  # (B, K) read-out membranes
    s_out: np.ndarray  # (B, K) read-out spikes
    acc: np.ndarray  # (N,) feed-forward input of one sample
    racc: np.ndarray  # (N,) recurrent input of one sample
    oacc: np.ndarray  # (K,) read-out synaptic input of one sample
    err: np.ndarray  # (K,) read-out error of one sample
    sig: np.ndarray  # (N,) learning signal of one sample
    g: np.ndarray  # (P, N) gradient of the input, recurrent and bias weights
    g_out: np.ndarray  # (N + 1, K) read-out gradient, the bias in the last row
    bbar: np.ndarray  # (1,) filtered constant input of the read-out bias


def new_eprop_tally(n_in: int, n: int, k: int, steps: int, batch: int) -> EpropTally:
    """A zero :class:`EpropTally` for a batch of ``batch`` samples of ``steps`` steps."""
    wide = max(n, k)
    return EpropTally(np.zeros((2, len(EC_NAMES), steps), np.int64), np.zeros((batch, k), np.float32),
                      np.zeros(1, np.float64), np.zeros((2, wide), np.int64), np.zeros((2, wide), np.int64),
                      np.zeros((2, max(n_in, n)), np.int64), np.zeros((2, wide), np.int64))


@nb.njit(cache=True)
def eprop_work(n_in, n, k, batch, per_synapse_state):
    """The working arrays of one call, zero (per-synapse arrays only when ``per_synapse_state``)."""
    f32 = np.float32
    p = n_in + n + 1
    big = batch if per_synapse_state else 0
    return EpropWork(np.zeros((batch, n), f32), np.zeros((batch, n), f32), np.zeros((batch, n), f32),
                     np.zeros((batch, n), f32), np.zeros((batch, p), f32), np.zeros((big, p, n), f32),
                     np.zeros((big, p, n), f32), np.zeros((batch, k), f32), np.zeros((batch, n), f32),
                     np.zeros((batch, k), f32), np.zeros((batch, k), f32), np.zeros(n, f32), np.zeros(n, f32),
                     np.zeros(k, f32), np.zeros(k, f32), np.zeros(n, f32), np.zeros((p, n), f32),
                     np.zeros((n + 1, k), f32), np.zeros(1, f32))


@nb.njit(cache=True)
def train_eprop(p, st, tally, in_off, in_events, labels, learn, readout_neuron):
    """One mini-batch (module docstring): ``in_off``/``in_events`` the input's address events (sample ``b``, step
    ``t`` at ``in_off[b * T + t]``), ``labels`` (B,) int64, ``learn`` False for a forward pass only,
    ``readout_neuron`` = (lam, v_th, soft) of the read-out's own LIF neurons (run and counted, not learned)."""
    steps, batch = p.loss_w.shape[0], labels.shape[0]
    n_in, n = st.w_in.shape
    k = st.w_out.shape[1]
    np.random.seed(p.seed)
    per_synapse_state = learn and not p.per_neuron and (p.alif or p.kappa != 0.0)
    w = eprop_work(n_in, n, k, batch, per_synapse_state)
    bbar = np.float32(0.0)
    for t in range(steps):
        scored = p.loss_w[t] != 0.0
        bbar = p.kappa * bbar + np.float32(1.0)
        w.bbar[0] = bbar
        for b in range(batch):
            events = in_events[in_off[b * steps + t]: in_off[b * steps + t + 1]]
            hidden_step(p, st, w, tally, b, t, events, learn, per_synapse_state)
            readout_step(p, st, w, tally, b, t, readout_neuron, learn)
            if scored:
                score(p, st, w, tally, b, t, labels[b], learn, per_synapse_state)
        if learn and scored and p.per_neuron:
            write_weights(p, st, w, tally, t)
    if learn and not p.per_neuron:
        write_weights(p, st, w, tally, steps - 1)


@nb.njit(cache=True, inline="always")
def hidden_step(p, st, w, tally, b, t, events, learn, per_synapse_state):
    """The recurrent layer of sample ``b`` at step ``t``: traces, current, neurons, per-synapse eligibility."""
    n_in, n = st.w_in.shape
    c = tally.counters
    s, psi, eps = w.s[b], w.psi[b], w.eps[b]
    slots = n_in + n + (1 if p.bias_rec else 0)
    if per_synapse_state and p.alif:  # eps_a[t] = psi[t-1] eps[t-1] + (rho - beta psi[t-1]) eps_a[t-1]
        ea = w.eps_a[b]
        for q in range(slots):
            for j in range(n):
                ea[q, j] = psi[j] * eps[q] + (p.rho - p.beta * psi[j]) * ea[q, j]
        c[REC, EC_ELIGIBILITY, t] += slots * n
    w.acc[:] = 0.0
    w.racc[:] = 0.0
    for q in range(n_in):  # presynaptic traces: decay, then this step's events
        eps[q] = p.lam * eps[q]
    for e in range(events.shape[0]):
        i = events[e]
        eps[i] += np.float32(1.0)
        tally.input_spikes[REC, i] += 1
        row = st.w_in[i]
        for j in range(n):
            w.acc[j] += row[j]
    fired_before = 0
    for j in range(n):
        eps[n_in + j] = p.lam * eps[n_in + j] + s[j]
        if s[j] != 0.0:
            fired_before += 1
            row = st.w_rec[j]
            for i in range(n):
                w.racc[i] += row[i]
    if p.bias_rec:
        eps[n_in + n] = p.lam * eps[n_in + n] + np.float32(1.0)
    if learn:
        quantise_traces(eps, 0, n_in, p.lev_in, p.lam)
        quantise_traces(eps, n_in, n_in + n, p.lev_rec, p.lam)
        c[REC, EC_TRACE_UPDATES, t] += slots
    c[REC, EC_SPIKES_IN, t] += events.shape[0]
    c[REC, EC_SOP, t] += (events.shape[0] + fired_before) * n
    c[REC, EC_SOP_RECURRENT, t] += fired_before * n
    c[REC, EC_NEURON_UPDATES, t] += n
    fired, active = 0, 0
    for j in range(n):
        busy = w.acc[j] != 0.0 or w.racc[j] != 0.0
        adapt = p.rho * w.a[b, j] + s[j]
        x = p.lam * (w.u[b, j] - p.v_th * s[j]) + ((w.acc[j] + w.racc[j]) + st.b_rec[j])
        thr = p.v_th + p.beta * adapt
        spike = x >= thr
        w.u[b, j] = x
        w.a[b, j] = adapt
        s[j] = np.float32(1.0) if spike else np.float32(0.0)
        psi[j] = np.float32(surrogate(p.surrogate, p.alpha, x - thr))
        fired += spike
        active += busy
        tally.neuron_spikes[REC, j] += spike
        tally.neuron_active[REC, j] += busy
    c[REC, EC_SPIKES_OUT, t] += fired
    c[REC, EC_NEURON_UPDATES_ACTIVE, t] += active
    if per_synapse_state and p.kappa != 0.0:  # ebar = kappa ebar + e
        eb = w.ebar[b]
        for q in range(slots):
            for j in range(n):
                e = psi[j] * (eps[q] - p.beta * w.eps_a[b, q, j]) if p.alif else psi[j] * eps[q]
                eb[q, j] = p.kappa * eb[q, j] + e
        c[REC, EC_ELIGIBILITY, t] += slots * n


@nb.njit(cache=True, inline="always")
def quantise_traces(eps, lo, hi, levels, decay):
    """Fixed point: the traces ``eps[lo:hi]`` onto a grid of ``levels`` steps of their largest value
    ``1 / (1 - decay)`` (a spike every step), unsigned; ``levels`` = 0 leaves them (float)."""
    if levels == 0:
        return
    top = np.float32(1.0 / (1.0 - decay)) if decay < 1.0 else np.float32(1.0)
    step = top / np.float32(levels)
    for q in range(lo, hi):
        eps[q] = np.float32(min(np.rint(eps[q] / step), levels) * step)


@nb.njit(cache=True, inline="always")
def readout_step(p, st, w, tally, b, t, neuron, learn):
    """The read-out of sample ``b`` at step ``t``: its current from this step's hidden spikes, the filtered
    read-out y, the output traces, and its own neurons (counted)."""
    n, k = st.w_out.shape
    c = tally.counters
    s = w.s[b]
    w.oacc[:] = 0.0
    count = 0
    for j in range(n):
        if s[j] != 0.0:
            count += 1
            tally.input_spikes[OUT, j] += 1
            row = st.w_out[j]
            for i in range(k):
                w.oacc[i] += row[i]
        w.sbar[b, j] = p.kappa * w.sbar[b, j] + s[j]
    if p.kappa != 0.0 and learn:
        quantise_traces(w.sbar[b], 0, n, p.lev_out, p.kappa)
        c[OUT, EC_TRACE_UPDATES, t] += n + (1 if p.bias_out else 0)
    lam, v_th, soft = neuron
    fired, active = 0, 0
    for i in range(k):
        o = w.oacc[i] + st.b_out[i]
        w.y[b, i] = p.kappa * w.y[b, i] + o
        u_old, s_old = w.u_out[b, i], w.s_out[b, i]
        decayed = lam * (u_old - v_th * s_old) if soft else lam * (u_old * (np.float32(1.0) - s_old))
        x = decayed + o
        spike = x >= v_th
        w.u_out[b, i] = x
        w.s_out[b, i] = np.float32(1.0) if spike else np.float32(0.0)
        busy = w.oacc[i] != 0.0
        fired += spike
        active += busy
        tally.neuron_spikes[OUT, i] += spike
        tally.neuron_active[OUT, i] += busy
    c[OUT, EC_SPIKES_IN, t] += count
    c[OUT, EC_SOP, t] += count * k
    c[OUT, EC_NEURON_UPDATES, t] += k
    c[OUT, EC_SPIKES_OUT, t] += fired
    c[OUT, EC_NEURON_UPDATES_ACTIVE, t] += active


@nb.njit(cache=True, inline="always")
def score(p, st, w, tally, b, t, label, learn, per_synapse_state):
    """A scored step of sample ``b``: the read-out error and loss, the learning signal broadcast to the hidden
    neurons, and the gradient accumulations (module docstring)."""
    n_in, n = st.w_in.shape
    k = st.w_out.shape[1]
    c = tally.counters
    batch = w.u.shape[0]
    y = w.y[b]
    peak = y[0]
    for i in range(k):
        peak = max(peak, y[i])
        tally.readout[b, i] += y[i]
    total = 0.0
    for i in range(k):
        total += np.exp(y[i] - peak)
    tally.loss[0] += p.loss_w[t] * (np.log(total) - (y[label] - peak)) / batch
    if not learn:
        return
    scale = p.loss_w[t] / np.float32(batch)
    for i in range(k):
        w.err[i] = np.float32(np.exp(y[i] - peak) / total - (1.0 if i == label else 0.0)) * scale
    c[OUT, EC_ERRORS, t] += k
    fb = st.feedback if p.random_fb else st.w_out
    for j in range(n):  # the learning signal L_j = sum_k B_jk err_k, broadcast to neuron j
        total32 = np.float32(0.0)
        for i in range(k):
            total32 += fb[j, i] * w.err[i]
        w.sig[j] = total32
    c[OUT, EC_ERROR_MACS, t] += n * k
    c[REC, EC_BROADCASTS, t] += n
    ops = 0
    for j in range(n):  # read-out: g_out[j, k] += err_k sbar_j
        if w.sbar[b, j] != 0.0:
            for i in range(k):
                w.g_out[j, i] += w.err[i] * w.sbar[b, j]
                ops += w.err[i] != 0.0
    if p.bias_out:
        for i in range(k):
            w.g_out[n, i] += w.err[i] * w.bbar[0]
    c[OUT, EC_GRAD_OPS, t] += ops
    slots = n_in + n + (1 if p.bias_rec else 0)
    c[REC, EC_GRAD_OPS, t] += hidden_gradients(p, w, b, slots, n, per_synapse_state)


@nb.njit(cache=True, inline="always")
def hidden_gradients(p, w, b, slots, n, per_synapse_state):
    """The input, recurrent and bias gradients of sample ``b`` at a scored step; returns the accumulations that
    count (both factors non-zero)."""
    eps, psi, sig, g = w.eps[b], w.psi[b], w.sig, w.g
    ops = 0
    if per_synapse_state and p.kappa != 0.0:  # g += L ebar
        eb = w.ebar[b]
        for q in range(slots):
            for j in range(n):
                if eb[q, j] != 0.0 and sig[j] != 0.0:
                    g[q, j] += sig[j] * eb[q, j]
                    ops += 1
        return ops
    if per_synapse_state:  # ALIF, kappa = 0: e = psi (eps - beta eps_a), formed here
        ea = w.eps_a[b]
        for q in range(slots):
            for j in range(n):
                e = psi[j] * (eps[q] - p.beta * ea[q, j])
                if e != 0.0 and sig[j] != 0.0:
                    g[q, j] += sig[j] * e
                    ops += 1
        return ops
    for j in range(n):  # LIF with kappa = 0, or per neuron: e = psi eps formed on the fly
        w.acc[j] = sig[j] * psi[j]
    for q in range(slots):
        if eps[q] == 0.0:
            continue
        for j in range(n):
            if w.acc[j] != 0.0:
                g[q, j] += w.acc[j] * eps[q]
                ops += 1
    return ops


@nb.njit(cache=True)
def write_weights(p, st, w, tally, t):
    """``W -= lr g`` for every weight with a non-zero gradient (onto its grid by stochastic rounding in fixed point),
    biases likewise; zero the gradients; count the writes at step ``t``."""
    n_in, n = st.w_in.shape
    k = st.w_out.shape[1]
    written = write_matrix(st.w_in, w.g[:n_in], (st.w_step[0], p.w_levels, p.lr), tally.writes[REC])
    written += write_matrix(st.w_rec, w.g[n_in: n_in + n], (st.w_step[1], p.w_levels, p.lr), tally.writes[REC])
    tally.counters[REC, EC_WEIGHT_UPDATES, t] += written
    if p.bias_rec:
        for j in range(n):
            st.b_rec[j] -= p.lr * w.g[n_in + n, j]
    w.g[n_in + n, :] = 0.0
    written = write_matrix(st.w_out, w.g_out[:n], (st.w_step[2], p.w_levels, p.lr), tally.writes[OUT])
    tally.counters[OUT, EC_WEIGHT_UPDATES, t] += written
    if p.bias_out:
        for i in range(k):
            st.b_out[i] -= p.lr * w.g_out[n, i]
    w.g_out[n, :] = 0.0


@nb.njit(cache=True, inline="always")
def write_matrix(weights, grads, step, counts):
    """Write-back of one (pre, post) matrix; writes per postsynaptic neuron into ``counts``. Returns the writes."""
    grid, levels, rate = step
    written = 0
    for q in range(weights.shape[0]):
        for j in range(weights.shape[1]):
            if grads[q, j] == 0.0:
                continue
            if levels == 0:
                weights[q, j] -= rate * grads[q, j]
            else:
                weights[q, j] = stochastic_round(weights[q, j] - rate * grads[q, j], grid, levels)
            grads[q, j] = 0.0
            written += 1
            counts[j] += 1
    return written
