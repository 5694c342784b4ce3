"""Records the layer kernels take: numba-compatible named tuples of arrays and scalars.

One whole-run layer call (:mod:`hwsim.sim.kernels.layer`) reads a :class:`Synapses` record (weights and
geometry), a neuron record (:class:`FloatNeurons` or :class:`FixedNeurons`) and an :class:`EventSource`
(its input), and writes a :class:`LayerOutput` (spikes, recorded state, counters, the next layer's events).
The recurrent kernels (recurrent layers; dense layers of adaptive ALIF neurons) also read a :class:`Recurrence`
record (recurrent synapses, adaptation).
``B`` is the batch, ``T`` the steps, ``n_in``/``n_out`` the layer's input/output neurons (channels last for
spatial layers, see :mod:`hwsim.sim.kernels.synapses`), ``W = n_chunks * n_blocks`` the work items of the call.
Arrays are C-contiguous. A field a call does not use is passed empty (shape given below), so each record type
is compiled once per dtype combination.

The kernels unpack every record by position, once at the top of a work item, in the field order of these
classes (reading a field is then free inside the compiled code), so they take a record or the plain tuple of
its fields alike. The engine passes plain tuples (``tuple(record)``): numba's dispatcher types a plain tuple of
arrays in C but a named tuple in Python (measured per call of ``run_float_layer_serial`` on an 8-neuron layer:
10 us with named tuples, 3 us with plain ones, 7 us with the former 16 positional arguments). Reordering the
fields of a record means reordering the kernels' unpacking.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# rows of LayerOutput.step_counts[w, k, t]: the positions of these counters in hwsim.sim.counts.EVENT_COUNTERS
# (checked when the engine is imported), so a one-item run counts straight into its LayerCounts rows
SPIKES_IN, SPIKES_OUT, SOP, SOP_RECURRENT, ACTIVE = 0, 1, 2, 3, 5
N_COUNTERS = 6  # row 4 (neuron_updates) the kernels leave alone; SOP_RECURRENT only the recurrent kernels write


class Synapses(NamedTuple):
    """Weights and geometry of one layer.

    ``kind``: ``DENSE``, ``CONV`` or ``POOL`` (:mod:`hwsim.sim.kernels.synapses`), int;
    ``w2d``: fan-out-major weights -- dense ``(n_in, n_out)``, conv ``(kh*kw*C, O)``, pool ``(1, 1)`` (the tap);
    float32 in float mode; fixed mode int8 (dense, mixed signs), uint8 (dense, one sign) or int16 (conv, pool);
    ``geom``: ``(C, H, W, O, H_out, W_out, kh, kw, stride, padding)`` int64 ``(10,)`` (zeros for dense);
    ``factor``: fixed mode, Lava's effective weight is ``factor * w2d`` (2, 1 or -1; 1 in float mode), int;
    ``weight_exp``: fixed mode, the synaptic output is shifted left by it (right when negative; 0 in float
    mode), int.
    """

    kind: int
    w2d: np.ndarray
    geom: np.ndarray
    factor: int
    weight_exp: int


class FloatNeurons(NamedTuple):
    """Float LIF parameters of one layer (DESIGN.md section 2).

    ``bias``: ``(n_out,)`` float32, added to the synaptic input every step (units of the synaptic input);
    ``lam``: leak factor per step, ``1 - 1/tau``, float32 (dimensionless);
    ``v_th``: threshold, float32 (units of the synaptic input);
    ``soft``: soft reset (subtract ``v_th``) if true, else reset to zero, bool.
    """

    bias: np.ndarray
    lam: np.float32
    v_th: np.float32
    soft: bool


class FixedNeurons(NamedTuple):
    """Loihi / Lava ``fixed_pt`` CUBA LIF parameters of one layer (integers, Lava's units).

    ``bias_eff``: ``(n_out,)`` int32, ``bias_mant << bias_exp``; ``du``, ``dv``: current and voltage decays in
    0..4095 (units of 1/4096 per step), int; ``vth``: threshold mantissa (the voltage must exceed
    ``vth << 6``), int.
    """

    bias_eff: np.ndarray
    du: int
    dv: int
    vth: int


class Recurrence(NamedTuple):
    """Recurrent synapses and threshold adaptation of one layer with dense input (``Recurrent`` layers, and
    ``Dense`` layers of :class:`~hwsim.sim.network.FloatALIF` neurons).

    ``w_rec``: fan-out-major recurrent weights ``(n_out, n_out)``, ``w_rec[j, i]`` = ``recurrent[i, j]`` (the
    synapse from neuron j to neuron i), stored as :class:`Synapses` stores dense weights (float32; fixed mode
    int8 with factor 2 or uint8 with factor +-1); ``(0, 0)`` when the layer has no recurrent synapses;
    ``factor``: fixed mode, Lava's effective recurrent weight is ``factor * w_rec`` (1 in float mode), int;
    ``rho``: adaptation decay per step, float32 (dimensionless; 0 without adaptation);
    ``beta``: adaptation strength, float32 (units of the synaptic input per unit of ``a``; 0 without
    adaptation: the threshold is then ``v_th`` exactly). Fixed mode has no adaptation (``rho = beta = 0``).
    """

    w_rec: np.ndarray
    factor: int
    rho: np.float32
    beta: np.float32


class EventSource(NamedTuple):
    """A layer's input spikes: address events, or (first layer) the dense 0/1 input.

    ``in_start``, ``in_stop``: ``(B*T,)`` int64, slot ``b*T + t`` holds ``in_events[in_start[slot]:in_stop[slot]]``
    (ascending neuron indices), or ``(0,)`` with dense input; ``in_events``: int32 neuron indices, ``(0,)`` with
    dense input; ``in_dense``: ``(T, B, n_in)`` uint8 0/1 (channels last), or ``(0, 0, 0)`` with events;
    ``in_counts``: ``(n_chunks, n_in)`` int32, input spikes per neuron counted by the layer when the input is
    dense, else ``(1, 0)``.
    """

    in_start: np.ndarray
    in_stop: np.ndarray
    in_events: np.ndarray
    in_dense: np.ndarray
    in_counts: np.ndarray


class LayerOutput(NamedTuple):
    """What a layer call writes.

    ``s_out``: spikes ``(T, B, n_out)`` uint8, or ``(1, n_chunks, n_out)`` (a scratch row per sample chunk) when
    the spikes are not kept, in which case the layer must emit its events;
    ``u_rec``: float mode u before reset (float32), fixed mode u (int32), ``(T, B, n_out)``, or ``(0, 0, 0)`` to
    skip recording; ``v_rec``: fixed mode v after reset, int32, same shapes (float mode: ``(0, 0, 0)`` float32);
    ``step_counts``: ``(W, N_COUNTERS, T)`` int64 per work item, rows ``SOP`` (recurrent SOPs included),
    ``SPIKES_OUT``, ``ACTIVE`` (updates with non-zero synaptic input, feed-forward or recurrent), ``SPIKES_IN``
    (dense input only), ``SOP_RECURRENT`` (the SOPs of the recurrent synapses; recurrent kernels only), added to
    (the caller zeroes them; with one work item they can be the rows of the layer's ``LayerCounts`` block itself,
    else the caller sums them over ``W``); the row ``NEURON_UPDATES`` between them is left alone;
    ``neuron_spikes``, ``neuron_active``: ``(n_chunks, >= n_out)`` int32 per sample chunk (blocks of one chunk write
    disjoint columns);
    ``out_start``, ``out_stop``: ``(B*T,)`` int64 and ``out_buf``: ``(B*T*n_out,)`` int32, the output spikes as the
    next layer's address events (each chunk writing from ``first_sample * T * n_out``), or all three ``(0,)`` to
    skip them (emitting needs ``n_blocks == 1``: each work item then owns whole steps).
    """

    s_out: np.ndarray
    u_rec: np.ndarray
    v_rec: np.ndarray
    step_counts: np.ndarray
    neuron_spikes: np.ndarray
    neuron_active: np.ndarray
    out_start: np.ndarray
    out_stop: np.ndarray
    out_buf: np.ndarray
