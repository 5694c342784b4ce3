"""Scalar and vector operations every learning kernel shares: the surrogate derivative, the fixed-point roundings
of weights and error messages, OTTT's presynaptic traces, a vectorised dot product."""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.learning.kernels.records import SIGMOID, TRIANGLE


@nb.njit(cache=True, inline="always")
def surrogate(kind, alpha, x):
    """g'(x) at ``x = u - V_th``: triangle ``max(0, alpha - alpha^2 |x|)``, sigmoid ``alpha sig(alpha x)
    (1 - sig(alpha x))``, rectangle ``1/alpha`` for ``|x| <= alpha/2`` (float64)."""
    if kind == TRIANGLE:
        return max(0.0, alpha - alpha * alpha * abs(x))
    if kind == SIGMOID:
        sig = 1.0 / (1.0 + np.exp(-alpha * x))
        return alpha * sig * (1.0 - sig)
    return (1.0 / alpha) if abs(x) <= alpha / 2.0 else 0.0


@nb.njit(cache=True, inline="always")
def stochastic_round(value, step, levels):
    """``value`` onto the grid ``step * q``, ``|q| <= levels``, rounding up with probability equal to the
    remainder (unbiased; numba's generator); ``levels = 0`` leaves it as it is."""
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


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def dot(x, y):
    """``sum_i x[i] * y[i]`` of two float32 vectors of one length, summed in whatever order vectorises (kept
    out of line: inlined into the caller it would lose these fast-math flags and run as one serial chain)."""
    total = np.float32(0.0)
    for i in range(x.shape[0]):
        total += x[i] * y[i]
    return total


@nb.njit(cache=True, inline="always")
def update_traces(traces, events, decay, levels, offset):
    """OTTT's presynaptic traces (n,): ``a = decay a + s`` for the ``events`` of this step (input indices, trace
    ``events[e] - offset``), held on a grid of ``a_max / levels`` in fixed point (``levels`` > 0)."""
    one = np.float32(1.0)
    for j in range(traces.shape[0]):
        traces[j] *= decay
    for e in range(events.shape[0]):
        traces[events[e] - offset] += one
    if levels > 0:  # traces held in their bit width: steps of a_max / levels
        step = np.float32(1.0 / (1.0 - decay) / levels) if decay < 1.0 else one
        for j in range(traces.shape[0]):
            traces[j] = np.float32(np.rint(traces[j] / step) * step)
