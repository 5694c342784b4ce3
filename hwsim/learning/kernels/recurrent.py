"""The recurrent and adaptive parts of the learning kernel: a recurrent node's own delayed spikes as input events,
the adaptive-threshold (ALIF) neuron step, its margin ``u - A`` for the surrogate, and the error of an ALIF node
through time.

A recurrent node (:class:`~hwsim.learning.kernels.records.Graph` ``n_rec > 0``) is a dense node whose inputs are
the layer below's spikes of this step followed by its own spikes of the step before (the one-step delay of
:class:`hwsim.sim.network.Recurrent`): the forward sum, the gradient rows and the write-back are the dense ones
over ``n_in + n_rec`` inputs. ALIF (:class:`hwsim.sim.network.FloatALIF`, Bellec et al. 2018/2020)::

    u[t] = lam (u[t-1] - v_th s[t-1]) + I[t] + b       (reset 'zero': lam u[t-1] (1 - s[t-1]) + ...)
    a[t] = rho a[t-1] + s[t-1],   A[t] = v_th + beta a[t],   s[t] = H(u[t] - A[t])

with the surrogate derivative taken at ``u[t] - A[t]``. Through time (BPTT inside a window), with ``S[t]`` the
total dL/ds[t] (consumers, the recurrent synapses' ``W_rec^T dI[t+1]``, the reset path into ``u[t+1]`` and the
adaptation path into ``a[t+1]``)::

    S[t]     = dL/ds[t] (consumers + recurrent) - lam v_th du[t+1] + da[t+1]     (zero reset: - lam u[t] du[t+1])
    du[t]    = g'(u[t] - A[t]) S[t] + lam du[t+1]                                (zero reset: lam (1 - s[t]) du[t+1])
    da[t]    = -beta g'(u[t] - A[t]) S[t] + rho da[t+1]

The graph kernel (:func:`hwsim.learning.kernels.graph.train`) calls these only for recurrent or ALIF nodes, so a
dense or conv node's step runs as before. Only kernels live here (their sources key the numba cache, see
``hwsim.sim.kernels``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.learning.kernels.ops import surrogate


@nb.njit(cache=True)
def recurrent_events(spikes, events, offset, counts):
    """The address events of a node's own spikes of the step before, ``spikes`` (n_rec,), into ``events`` as
    input indices ``offset + j`` (ascending; ``offset`` = the node's feed-forward inputs), counting each in
    ``counts`` (n_rec,); returns how many."""
    count = 0
    for j in range(spikes.shape[0]):
        events[count] = offset + j
        count += spikes[j] != 0.0
    for e in range(count):
        counts[events[e] - offset] += 1
    return count


@nb.njit(cache=True)
def alif_step(neuron, acc, racc, bias, state, spike_buf, kept, spikes, active_counts):
    """One float step of a recurrent or ALIF node's neurons (the inference engine's ``alif_float_step``, the same
    arithmetic in the same order): ``acc`` (no,) the feed-forward and ``racc`` (no,) the recurrent synaptic input
    (zeros without recurrent synapses); ``neuron`` = (lam, v_th, soft reset, rho, beta) -- ``rho = beta = 0`` is a
    LIF, whose threshold is then ``v_th`` exactly; ``state`` = (u, s, a) float32, updated in place (u before
    reset, as the LIF step keeps it); ``kept`` = (u, s, a) history of this step (empty: none kept). An update is
    active when its feed-forward or its recurrent input is non-zero. Counts spikes and active updates per neuron
    into ``spikes`` and ``active_counts``; ``acc`` becomes the whole synaptic current with the bias (the read-out
    current). Returns ``(spikes, active updates)``."""
    lam, v_th, soft, rho, beta = neuron
    u, s, a = state
    zero, one = np.float32(0.0), np.float32(1.0)
    fired_total, active = 0, 0
    for i in range(u.shape[0]):
        f, r = acc[i], racc[i]
        current = (f + r) + bias[i]
        x = (lam * (u[i] - v_th * s[i]) if soft else lam * (u[i] * (one - s[i]))) + current  # the LIF step's leak
        adapt = rho * a[i] + s[i]  # a[t] = rho a[t-1] + s[t-1]
        fired = x >= v_th + beta * adapt  # u - A >= 0 exactly when u >= A
        busy = (f != zero) | (r != zero)
        u[i] = x
        a[i] = adapt
        s[i] = one if fired else zero
        acc[i] = current
        spike_buf[i] = np.uint8(fired)
        spikes[i] += np.int64(fired)
        active_counts[i] += np.int64(busy)
        fired_total += np.int64(fired)
        active += np.int64(busy)
    u_kept, s_kept, a_kept = kept
    for i in range(u_kept.shape[0]):
        u_kept[i] = u[i]
        s_kept[i] = s[i]
    for i in range(a_kept.shape[0]):
        a_kept[i] = a[i]
    return fired_total, active


@nb.njit(cache=True, inline="always")
def margins(u, a, v_th, beta, out):
    """``out = u - A`` (n,) with ``A = v_th + beta a``: where an ALIF neuron's surrogate derivative is taken (a W^T
    pass into it gates on ``g'(out - 0)``)."""
    for i in range(u.shape[0]):
        out[i] = u[i] - (v_th + beta * a[i])
    return out


@nb.njit(cache=True)
def alif_error(neuron, sur, u, s, a, grads, d):
    """dL/dI ``d`` (no,) of an ALIF node's neurons at one step of a window, through time (module docstring):
    ``neuron`` = (lam, v_th, soft reset, rho, beta), ``sur`` = (shape, alpha); ``u``, ``s``, ``a`` this step's
    membrane (before reset), spikes and adaptation; ``grads`` = (du, da, ds): dL/du and dL/da of the step after
    (replaced by this step's) and dL/ds from consumers and recurrent synapses."""
    lam, v_th, soft, rho, beta = neuron
    shape, alpha = sur
    du, da, ds = grads
    one = np.float32(1.0)
    for i in range(d.shape[0]):
        gp = np.float32(surrogate(shape, alpha, u[i] - (v_th + beta * a[i])))
        nxt, nxt_a = du[i], da[i]
        if soft:
            total = ds[i] - lam * v_th * nxt + nxt_a
            grad_u = gp * total + lam * nxt
        else:
            total = ds[i] - lam * u[i] * nxt + nxt_a
            grad_u = gp * total + lam * (one - s[i]) * nxt
        d[i] = grad_u
        du[i] = grad_u
        da[i] = -beta * gp * total + rho * nxt_a


@nb.njit(cache=True)
def recurrent_error(neuron, sur, u, s, a, grads, d):
    """dL/dI ``d`` of a recurrent or ALIF node at one step of a window: first the recurrent synapses' dL/ds
    (``grads[3]``, sent from the step after) joins the consumers' (``grads[2]``) and is cleared, then
    :func:`alif_error` with ``grads[:3]`` = (du, da, ds) (a LIF: ``rho = beta = 0``, ``a`` may be empty -- the same
    values as the LIF's error through time)."""
    du, da, ds, ds_rec = grads
    for i in range(ds.shape[0]):
        ds[i] += ds_rec[i]
        ds_rec[i] = 0.0
    alif_error(neuron, sur, u, s, a if a.shape[0] > 0 else s, (du, da, ds), d)
