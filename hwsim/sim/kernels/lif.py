"""LIF neuron updates over one population for one step (branch-free, so the loops vectorise).

Float (DESIGN.md section 2, SLTT/OTTT form)::

    u[t] = lam * (u[t-1] - v_th * s[t-1]) + I[t]      (soft reset)
    u[t] = lam * (u[t-1] * (1 - s[t-1])) + I[t]       (zero reset)
    s[t] = u[t] >= v_th

Recurrent and adaptive (ALIF, Bellec et al. 2018) float neurons (:func:`alif_float_step`): the synaptic input
is the feed-forward plus the recurrent current, and the threshold adapts::

    u[t] = lam * (u[t-1] - v_th * s[t-1]) + ((I_ff[t] + I_rec[t]) + b)   (zero reset as above)
    a[t] = rho * a[t-1] + s[t-1]
    s[t] = u[t] >= v_th + beta * a[t]

(with ``rho = beta = 0`` the threshold is ``v_th`` exactly: a recurrent LIF).

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
def alif_float_step(acc, racc, bias, params, soft, u, s, adapt, s_out, u_rec, neuron_spikes, neuron_active):
    """One float step of recurrent or adaptive neurons (module docstring): ``acc`` (n,) the feed-forward and
    ``racc`` (n,) the recurrent synaptic input (zeros without recurrent synapses); ``params`` the float32 scalars
    ``(lam, v_th, rho, beta)``; ``adapt`` (n,) float32 the adaptation ``a`` (updated in place, as ``u`` and
    ``s``). An update is active when its feed-forward or its recurrent input is non-zero. Otherwise as
    :func:`lif_float_step`; returns ``(spikes, active updates)``."""
    lam, v_th, rho, beta = params
    n = u.shape[0]
    spikes = np.int32(0)
    active = np.int32(0)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for i in range(n):
        f = acc[i]
        r = racc[i]
        x = leak(soft, lam, v_th, u[i], s[i]) + ((f + r) + bias[i])
        ad = rho * adapt[i] + s[i]
        fired = x >= v_th + beta * ad
        busy = (f != zero) | (r != zero)
        u[i] = x
        adapt[i] = ad
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
def fixed_neuron(a, u, v, u_decay, v_decay, vth_eff, bias):
    """One fixed-point neuron for one step (Lava ``PyLifModelBitAcc``): input ``a`` (int32 value), state ``u``,
    ``v``, ``u_decay = 4095 - du``, ``v_decay = 4096 - dv``, ``vth_eff = vth << 6``, ``bias`` = bias_mant <<
    bias_exp. Returns ``(u, v after reset, fired)``."""
    act = wrap32(np.int64(a) << 6)
    cur = wrap32(trunc_decay(u, u_decay) + act)
    wrapped = cur - 2 * U24 if cur > U24 else cur
    wrapped = cur + 2 * U24 if wrapped <= -U24 else wrapped
    new_u = wrap32(wrapped)
    volt = wrap32(trunc_decay(v, v_decay) + new_u + bias)
    volt = min(max(volt, -V_MAX), V_MAX)
    fired = volt > vth_eff
    return new_u, 0 if fired else volt, fired


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
        new_u, new_v, fired = fixed_neuron(a[i], u[i], v[i], u_decay, v_decay, vth_eff, bias_eff[i])
        u[i] = new_u
        v[i] = new_v
        s_out[i] = np.uint8(fired)
        neuron_spikes[i] += np.int64(fired)
        spikes += np.int64(fired)
    if v_rec.shape[0] > 0:
        v_rec[:] = v
        u_rec[:] = u
    return spikes, active


@nb.njit(cache=True, inline="always")
def lif_fixed_masked_step(a, busy, params, bias_eff, u, v, s_out, v_rec, u_rec, neuron_spikes, neuron_active):
    """:func:`lif_fixed_step` with the active updates given: ``busy`` (n,) uint8, 1 where the neuron's
    feed-forward or recurrent input (each as its Dense sends it) is non-zero (their sum ``a`` can be zero);
    ``params`` the integers ``(du, dv, vth)``."""
    du, dv, vth = params
    n = u.shape[0]
    spikes = 0
    active = 0
    vth_eff = np.int64(vth) << 6
    u_decay = 4095 - du
    v_decay = 4096 - dv
    for i in range(n):
        neuron_active[i] += np.int64(busy[i])
        active += np.int64(busy[i])
        new_u, new_v, fired = fixed_neuron(a[i], u[i], v[i], u_decay, v_decay, vth_eff, bias_eff[i])
        u[i] = new_u
        v[i] = new_v
        s_out[i] = np.uint8(fired)
        neuron_spikes[i] += np.int64(fired)
        spikes += np.int64(fired)
    if v_rec.shape[0] > 0:
        v_rec[:] = v
        u_rec[:] = u
    return spikes, active
