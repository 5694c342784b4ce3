"""LIF neuron updates over one population for one step (branch-free, so the loops vectorise).

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
    """``sign(x * factor) * (|x * factor| >> 12)``: Lava's decay, rounding toward zero (branch-free)."""
    p = np.int64(x) * np.int64(factor)
    return (p + ((p >> 63) & 4095)) >> 12


@nb.njit(cache=True, inline="always")
def leak(soft, lam, v_th, u, s):
    """The decayed membrane before this step's input: soft reset subtracts v_th, zero reset clears u."""
    if soft:
        return lam * (u - v_th * s)
    return lam * (u * (np.float32(1.0) - s))


@nb.njit(cache=True, inline="always")
def lif_float_step(acc, bias, lam, v_th, soft, u, s, s_out, u_rec, neuron_spikes, neuron_active):
    """One float step for ``n`` neurons. ``acc`` (n,) synaptic input; ``u``/``s`` float32 state (updated in
    place); writes spikes to ``s_out`` (n,) uint8 (zero on entry), u before reset to ``u_rec`` (n,) when it
    is non-empty, counts each spike into ``neuron_spikes`` (n,) and each update with non-zero synaptic input
    into ``neuron_active`` (n,). Returns ``(spikes, active updates)``."""
    n = u.shape[0]
    spikes = np.int32(0)  # 32-bit tallies keep the loop in one vector width with the float32 state
    active = np.int32(0)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for i in range(n):  # one fused pass: update, fire, count (the reset branch is loop-invariant)
        a = acc[i]
        x = leak(soft, lam, v_th, u[i], s[i]) + (a + bias[i])
        u[i] = x
        fired = x >= v_th
        busy = a != zero
        s[i] = one if fired else zero
        s_out[i] = np.uint8(fired)
        neuron_spikes[i] += np.int32(fired)
        neuron_active[i] += np.int32(busy)
        spikes += np.int32(fired)
        active += np.int32(busy)
    if u_rec.shape[0] > 0:
        u_rec[:] = u
    return spikes, active


@nb.njit(cache=True, inline="always")
def lif_fixed_step(a, du, dv, vth, bias_eff, u, v, s_out, v_rec, u_rec, neuron_spikes, neuron_active):
    """One fixed-point step. ``a`` (n,) int32 synaptic input as Lava's Dense sends it (already shifted by
    weight_exp and wrapped to int32); ``u``/``v`` int32 state (updated in place); ``bias_eff`` =
    bias_mant << bias_exp. Spikes go to ``s_out`` (zero on entry). Counts as :func:`lif_float_step`;
    returns ``(spikes, active updates)``."""
    n = u.shape[0]
    spikes = 0
    active = 0
    vth_eff = np.int64(vth) << 6
    u_decay = 4095 - du
    v_decay = 4096 - dv
    for i in range(n):
        busy = a[i] != 0
        neuron_active[i] += np.int64(busy)
        active += np.int64(busy)
        act = wrap32(np.int64(a[i]) << 6)
        cur = wrap32(trunc_decay(u[i], u_decay) + act)
        wrapped = cur - 2 * U24 if cur > U24 else cur
        wrapped = cur + 2 * U24 if wrapped <= -U24 else wrapped
        new_u = wrap32(wrapped)
        volt = wrap32(trunc_decay(v[i], v_decay) + new_u + bias_eff[i])
        volt = min(max(volt, -V_MAX), V_MAX)
        fired = volt > vth_eff
        u[i] = new_u
        v[i] = 0 if fired else volt
        s_out[i] = np.uint8(fired)
        neuron_spikes[i] += np.int64(fired)
        spikes += np.int64(fired)
    if v_rec.shape[0] > 0:
        v_rec[:] = v
        u_rec[:] = u
    return spikes, active
