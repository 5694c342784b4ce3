"""Whole-run layer loops: one call runs one neuron layer over all ``T`` steps and ``B`` samples.

Feed-forward networks are run layer after layer (each layer sees the previous layer's complete spike
train), which is exact for feed-forward graphs and keeps every step's work inside compiled code.
Counters are filled per event as the loops run.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.kernels.lif import U24, lif_fixed_step, lif_float_step
from hwsim.kernels.synapses import DENSE, emit_events, propagate

MASK24 = (1 << 24) - 1


@nb.njit(cache=True)
def run_float_layer(kind, in_off, in_events, w2d, geom, bias, lam, v_th, soft, s_out, u_rec,
                    spikes_in, sop, spikes_out, active, neuron_spikes, neuron_active, input_spikes):
    """Float layer. Input address events ``in_events`` with offsets ``in_off`` (B*T + 1,); ``s_out``
    (T, B, n_out) uint8 (zeroed); ``u_rec`` (T, B, n_out) float32 or (0, 0, 0) to skip recording;
    counters (T,) int64 and per-neuron totals. Returns the output events ``(offsets, indices)``."""
    steps, batch, n_out = s_out.shape
    out_off = np.zeros(batch * steps + 1, np.int64)
    out_events = np.empty(max(16, in_events.shape[0]), np.int32)
    count = 0
    acc = np.zeros(n_out, np.float32)
    u = np.zeros(n_out, np.float32)
    s = np.zeros(n_out, np.float32)
    no_rec = np.zeros(0, np.float32)
    record = u_rec.shape[0] > 0
    spikes32 = np.zeros(n_out, np.int32)  # per-neuron totals kept narrow in the loop (T * B < 2**31)
    active32 = np.zeros(n_out, np.int32)
    for b in range(batch):
        u[:] = 0.0
        s[:] = 0.0
        for t in range(steps):
            acc[:] = 0.0
            slot = b * steps + t
            spikes_in[t] += in_off[slot + 1] - in_off[slot]
            sop[t] += propagate(kind, in_events, in_off[slot], in_off[slot + 1], w2d, geom, acc, input_spikes)
            rec = u_rec[t, b] if record else no_rec
            fired, busy = lif_float_step(acc, bias, lam, v_th, soft, u, s, s_out[t, b], rec, spikes32, active32)
            spikes_out[t] += fired
            active[t] += busy
            out_events, count = emit_events(s_out[t, b], out_events, count)
            out_off[slot + 1] = count
    neuron_spikes += spikes32
    neuron_active += active32
    return out_off, out_events


@nb.njit(cache=True)
def run_fixed_layer(kind, in_off, in_events, w2d, factor, geom, weight_exp, du, dv, vth, bias_eff, s_out,
                    v_rec, u_rec, spikes_in, sop, spikes_out, active, neuron_spikes, neuron_active, input_spikes):
    """Fixed-point layer with Lava's one-step synaptic delay: spikes arriving at step t reach the neurons
    at step t + 1. Shapes as :func:`run_float_layer`. Lava's effective weights are ``factor * w2d``: dense
    weights are stored in 8 bits (``w2d`` int8 with factor 2 for mixed signs, uint8 with factor +-1 for
    one sign), conv/pool weights as int16 with factor 1; sums are exact in int32 for fan-in < 2**23.
    Dense output is shifted by ``weight_exp`` (as Lava ``Dense``); conv and pool output is shifted, then
    wrapped to signed 24 bit (as Lava ``Conv``, which applies no weight exponent itself)."""
    steps, batch, n_out = s_out.shape
    out_off = np.zeros(batch * steps + 1, np.int64)
    out_events = np.empty(max(16, in_events.shape[0]), np.int32)
    count = 0
    pending = np.zeros(n_out, np.int32)
    acc = np.zeros(n_out, np.int32)
    u = np.zeros(n_out, np.int32)
    v = np.zeros(n_out, np.int32)
    no_rec = np.zeros(0, np.int32)
    record = v_rec.shape[0] > 0
    spikes32 = np.zeros(n_out, np.int32)  # per-neuron totals kept narrow in the loop (T * B < 2**31)
    active32 = np.zeros(n_out, np.int32)
    for b in range(batch):
        u[:] = 0
        v[:] = 0
        pending[:] = 0
        for t in range(steps):
            rec_v = v_rec[t, b] if record else no_rec
            rec_u = u_rec[t, b] if record else no_rec
            fired, busy = lif_fixed_step(pending, du, dv, vth, bias_eff, u, v, s_out[t, b], rec_v, rec_u,
                                         spikes32, active32)
            spikes_out[t] += fired
            active[t] += busy
            out_events, count = emit_events(s_out[t, b], out_events, count)
            out_off[b * steps + t + 1] = count
            acc[:] = 0
            slot = b * steps + t
            spikes_in[t] += in_off[slot + 1] - in_off[slot]
            sop[t] += propagate(kind, in_events, in_off[slot], in_off[slot + 1], w2d, geom, acc, input_spikes)
            left = max(weight_exp, 0)
            right = max(-weight_exp, 0)
            for i in range(n_out):
                a = ((np.int64(acc[i]) * factor) << left) >> right
                if kind != DENSE:
                    a = ((a + U24) & MASK24) - U24  # Lava Conv's signed 24-bit wrap of its output
                pending[i] = np.int32(a)  # the int32 channel from synapse to neuron
    neuron_spikes += spikes32
    neuron_active += active32
    return out_off, out_events
