"""An independent per-step reference for recurrent layers and adaptive (ALIF) neurons, in plain numpy.

Written from the equations (``hwsim.sim.network.FloatALIF`` / ``Recurrent`` docstrings, DESIGN.md section 2 and
Lava 0.10.0's ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc``), not from the kernels: the whole network advances
one step at a time (the engine runs layer after layer over all steps), currents are dense float64 or int64
matrix products of whole spike vectors (the engine adds fan-out rows of events), and every counter is counted
from the dense spike and input arrays.

Float, per layer and step t (s[-1] = 0, a[-1] = 0)::

    I[t] = float32(W x[t]) + float32(W_rec s[t-1])            (W_rec = 0 for dense layers)
    u[t] = lam * (u[t-1] - v_th s[t-1]) + (I[t] + b)          (zero reset: lam * (u[t-1] (1 - s[t-1])) + ...)
    a[t] = rho * a[t-1] + s[t-1]                             (ALIF; LIF: no adaptation)
    s[t] = u[t] >= v_th + beta a[t]

each operation a float32 rounding, in this order. Fixed point (Lava's graph: the input ``Dense`` and the
recurrent ``Dense`` from the layer's own ``s_out`` both feed the ``LIF``'s ``a_in``): at step t each layer's LIF
updates with the ``a_in`` its Dense processes computed at step t - 1, then the Dense processes read this step's
spikes (the layer below's and the layer's own) and compute the next ``a_in``: each Dense's integer sum of its
effective weights, shifted by the layer's weight_exp, as an int32; ``a_in`` their int32 sum.
"""

from __future__ import annotations

import numpy as np

from hwsim.sim.network import Dense, Flatten, FloatALIF, LoihiLIF, Network, Recurrent

COUNTERS = ("spikes_in", "spikes_out", "sop", "sop_recurrent", "neuron_updates", "neuron_updates_active")


def _i32(x: np.ndarray) -> np.ndarray:
    """Two's complement wrap of int64 values to int32."""
    return ((np.asarray(x, np.int64) + 2**31) % 2**32 - 2**31).astype(np.int64)


def _lava_weights(weight: np.ndarray) -> np.ndarray:
    """Lava's Dense effective weights: with mixed signs the lowest bit is dropped (8-bit sign mode 'mixed')."""
    w = np.asarray(weight, np.int64)
    if w.min(initial=0) < 0 < w.max(initial=0):
        w = (w // 2) * 2
    return w


def _shift(x: np.ndarray, exp: int) -> np.ndarray:
    return x << exp if exp >= 0 else x >> -exp


def _trunc(x: np.ndarray, factor: int) -> np.ndarray:
    p = x * factor
    return np.sign(p) * (np.abs(p) >> 12)


class _Layer:
    """One neuron layer's state for a batch ``(B, n)`` and its counters ``(T,)``."""

    def __init__(self, layer, steps: int, batch: int, fixed: bool):
        self.layer = layer
        n = layer.n_out
        self.recurrent = layer.recurrent if isinstance(layer, Recurrent) else None
        dtype = np.int64 if fixed else np.float32
        self.u = np.zeros((batch, n), dtype)
        self.v = np.zeros((batch, n), np.int64)
        self.a = np.zeros((batch, n), np.float32)
        self.s = np.zeros((batch, n), np.float32)
        self.a_in = np.zeros((batch, n), np.int64)  # fixed: what the Dense processes send next step
        self.busy = np.zeros((batch, n), bool)
        self.spikes = np.zeros((steps, batch, n), np.uint8)
        self.membrane = np.zeros((steps, batch, n), np.float32 if not fixed else np.int64)
        self.current = np.zeros((steps, batch, n), np.int64)
        self.counts = {name: np.zeros(steps, np.int64) for name in COUNTERS}
        self.neuron_active = np.zeros(n, np.int64)


def _float_step(st: _Layer, x: np.ndarray, t: int) -> np.ndarray:
    layer, neuron = st.layer, st.layer.neuron
    ff = (x.astype(np.float64) @ layer.weight.astype(np.float64).T).astype(np.float32)
    rec = np.zeros_like(ff)
    if st.recurrent is not None:
        rec = (st.s.astype(np.float64) @ st.recurrent.astype(np.float64).T).astype(np.float32)
    current = ff + rec
    if layer.bias is not None:
        current = current + layer.bias.astype(np.float32)
    lam, v_th = np.float32(neuron.lam), np.float32(neuron.v_th)
    if neuron.reset == "soft":
        u = lam * (st.u - v_th * st.s) + current
    else:
        u = lam * (st.u * (np.float32(1) - st.s)) + current
    threshold = np.full_like(u, v_th)
    if isinstance(neuron, FloatALIF):
        st.a = np.float32(neuron.rho) * st.a + st.s
        threshold = v_th + np.float32(neuron.beta) * st.a
    active = (ff != 0) | (rec != 0)
    _count(st, t, x, active)
    st.u = u
    st.s = (u >= threshold).astype(np.float32)
    st.membrane[t] = u
    return _emit(st, t)


def _fixed_lif(st: _Layer, t: int) -> np.ndarray:
    """The LIF part of step t: integrate the a_in computed at step t - 1 (Lava ``PyLifModelBitAcc``)."""
    neuron: LoihiLIF = st.layer.neuron
    act = _i32(st.a_in << 6)
    cur = _i32(_trunc(st.u, 4095 - neuron.du) + act)
    cur = np.where(cur > 2**23, cur - 2**24, cur)
    cur = np.where(cur <= -(2**23), cur + 2**24, cur)
    bias = 0 if st.layer.bias is None else st.layer.bias.astype(np.int64) << neuron.bias_exp
    v = np.clip(_i32(_trunc(st.v, 4096 - neuron.dv) + cur + bias), -(2**23 - 1), 2**23 - 1)
    fired = v > (neuron.vth << 6)
    st.u, st.v = cur, np.where(fired, 0, v)
    st.s = fired.astype(np.float32)
    st.membrane[t], st.current[t] = st.v, st.u
    st.counts["neuron_updates_active"][t] += int(st.busy.sum())
    st.neuron_active += st.busy.sum(axis=0)
    return _emit(st, t)


def _fixed_dense(st: _Layer, x: np.ndarray, t: int) -> None:
    """The Dense part of step t: this step's spikes (input and own) into the next a_in."""
    layer = st.layer
    exp = int(layer.weight_exp)
    ff = _i32(_shift(x.astype(np.int64) @ _lava_weights(layer.weight).T, exp))
    rec = np.zeros_like(ff)
    if st.recurrent is not None:
        rec = _i32(_shift(st.s.astype(np.int64) @ _lava_weights(st.recurrent).T, exp))
    st.a_in = _i32(ff + rec)
    st.busy = (ff != 0) | (rec != 0)
    _count(st, t, x, None)


def _count(st: _Layer, t: int, x: np.ndarray, active: np.ndarray | None) -> None:
    """SOPs of step t: every input spike of this step and every own spike of the step before, times n_out."""
    n = st.layer.n_out
    st.counts["spikes_in"][t] += int(x.sum())
    own = int(st.s.sum()) if st.recurrent is not None else 0
    st.counts["sop"][t] += (int(x.sum()) + own) * n
    st.counts["sop_recurrent"][t] += own * n
    st.counts["neuron_updates"][t] += x.shape[0] * n
    if active is not None:
        st.counts["neuron_updates_active"][t] += int(active.sum())
        st.neuron_active += active.sum(axis=0)


def _emit(st: _Layer, t: int) -> np.ndarray:
    st.spikes[t] = st.s.astype(np.uint8)
    st.counts["spikes_out"][t] += int(st.s.sum())
    return st.spikes[t]


def reference_run(network: Network, x: np.ndarray) -> list[dict]:
    """Run ``network`` (dense and recurrent layers, Flatten allowed) on 0/1 ``x`` ``(T, B, n_in)``, one step of
    the whole network at a time. Per neuron layer: ``spikes`` (T, B, n) uint8, ``membrane`` (float: u before
    reset; fixed: v after reset), ``current`` (fixed: u), ``counts`` (per-step arrays named as the engine's
    counters) and ``neuron_active`` (n,)."""
    steps, batch = x.shape[:2]
    fixed = network.mode == "fixed"
    layers = []
    for layer in network.layers:
        if isinstance(layer, Flatten):
            continue
        if not isinstance(layer, (Dense, Recurrent)):
            raise TypeError(f"the recurrent reference runs dense and recurrent layers, not {layer.kind}")
        layers.append(_Layer(layer, steps, batch, fixed))
    for t in range(steps):
        inp = x[t].reshape(batch, -1)
        for st in layers:
            if fixed:
                out = _fixed_lif(st, t)
                _fixed_dense(st, inp, t)
                inp = out
            else:
                inp = _float_step(st, inp, t)
    return [{"spikes": st.spikes, "membrane": st.membrane, "current": st.current, "counts": st.counts,
             "neuron_active": st.neuron_active} for st in layers]
