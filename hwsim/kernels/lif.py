"""LIF neuron updates over one population for one step.

Float (DESIGN.md section 2, SLTT/OTTT form)::

    u[t] = lam * (u[t-1] - v_th * s[t-1]) + I[t]      (soft reset)
    u[t] = lam * (u[t-1] * (1 - s[t-1])) + I[t]       (zero reset)
    s[t] = u[t] >= v_th

Fixed point: Lava 0.10.0 ``PyLifModelBitAcc`` (``fixed_pt``) bit for bit, including its int32 wrap-around
(the Dense output channel is int32, ``a << 6`` is an int32 shift), the 24-bit wrap of u, saturation of v
at +-(2**23 - 1), the strict threshold ``v > vth << 6`` and the reset ``v <- 0``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

U24 = 1 << 23
V_MAX = (1 << 23) - 1


@nb.njit(cache=True, inline="always")
def wrap32(x):
    """Two's complement wrap of an integer to int32 (as numpy does when storing into an int32 array)."""
    return np.int64(np.int32(x))


@nb.njit(cache=True, inline="always")
def trunc_decay(x, factor):
    """``sign(x * factor) * (|x * factor| >> 12)``: Lava's decay, rounding toward zero."""
    p = np.int64(x) * np.int64(factor)
    if p >= 0:
        return p >> 12
    return -((-p) >> 12)


@nb.njit(cache=True)
def lif_float_step(acc, bias, lam, v_th, soft, u, s, s_out, u_rec, neuron_spikes):
    """One float step for ``n`` neurons. ``acc`` (n,) synaptic input; ``u``/``s`` state (updated in place);
    writes spikes to ``s_out`` (n,) uint8 and u (before reset) to ``u_rec`` (n,) when it is non-empty;
    counts each spike into ``neuron_spikes`` (n,). Returns the number of spikes."""
    n = u.shape[0]
    spikes = 0
    record = u_rec.shape[0] > 0
    for i in range(n):
        if soft:
            x = lam * (u[i] - v_th * s[i]) + (acc[i] + bias[i])
        else:
            x = lam * (u[i] * (np.float32(1.0) - s[i])) + (acc[i] + bias[i])
        u[i] = x
        if record:
            u_rec[i] = x
        if x >= v_th:
            s[i] = 1.0
            s_out[i] = 1
            neuron_spikes[i] += 1
            spikes += 1
        else:
            s[i] = 0.0
    return spikes


@nb.njit(cache=True)
def lif_fixed_step(a, du, dv, vth, bias_eff, u, v, s_out, v_rec, u_rec, neuron_spikes):
    """One fixed-point step. ``a`` (n,) int64 synaptic input already shifted by weight_exp; ``u``/``v``
    int32 state (updated in place); ``bias_eff`` = bias_mant << bias_exp. Returns the number of spikes."""
    n = u.shape[0]
    spikes = 0
    record = v_rec.shape[0] > 0
    vth_eff = np.int64(vth) << 6
    for i in range(n):
        act = wrap32(wrap32(a[i]) << 6)
        cur = wrap32(trunc_decay(u[i], 4095 - du) + act)
        wrapped = cur
        if cur > U24:
            wrapped = cur - 2 * U24
        if wrapped <= -U24:
            wrapped = cur + 2 * U24
        new_u = wrap32(wrapped)
        volt = wrap32(wrap32(trunc_decay(v[i], 4096 - dv) + new_u) + bias_eff[i])
        if volt > V_MAX:
            volt = V_MAX
        elif volt < -V_MAX:
            volt = -V_MAX
        u[i] = new_u
        if volt > vth_eff:
            s_out[i] = 1
            neuron_spikes[i] += 1
            spikes += 1
            volt = 0
        v[i] = volt
        if record:
            v_rec[i] = volt
            u_rec[i] = new_u
    return spikes
