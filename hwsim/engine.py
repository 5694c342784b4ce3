"""The engine: runs a :class:`~hwsim.network.Network` on spike input, event by event, and counts.

Input layout is ``(T, B, *input_shape)`` of 0/1 spikes. Float mode implements the SLTT/OTTT LIF with no
synaptic delay; fixed mode is Lava 0.10.0 ``fixed_pt`` bit for bit, including its one-step delay per
connection (hwsim step t is Lava step t + 1 when Lava's input ``RingBuffer`` holds the same columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.counts import Counts, LayerCounts, add_inference_bytes
from hwsim.errors import InputError
from hwsim.kernels.layer import run_fixed_layer, run_float_layer
from hwsim.kernels.synapses import CONV, DENSE, POOL, scan_events
from hwsim.network import Conv2d, Dense, Flatten, FloatLIF, LoihiLIF, Network, NetworkError, SumPool2d


@dataclass
class SimResult:
    """Output of :func:`simulate`.

    ``spikes[k]``: layer k's output spikes, ``(T, B, *out_shape)`` uint8, one entry per neuron layer;
    ``membranes[k]``: float mode u (before reset, float32); fixed mode v (after reset, int32);
    ``currents[k]``: fixed mode u (int32); both None unless ``record=True``.
    """

    spikes: list[np.ndarray]
    counts: Counts
    layer_names: list[str]
    membranes: list[np.ndarray] | None = None
    currents: list[np.ndarray] | None = None

    @property
    def output(self) -> np.ndarray:
        return self.spikes[-1]


@dataclass
class LayerPlan:
    """A neuron layer compiled for the kernels (internal)."""

    layer: Dense | Conv2d | SumPool2d
    kind: int
    w2d: np.ndarray
    geom: np.ndarray
    n_in: int
    out_shape: tuple[int, ...]
    factor: int = 1


def check_input(network: Network, spikes: np.ndarray, time_major: bool | None = None) -> np.ndarray:
    """Validate spike input ``(T, B, *input_shape)`` and return it as uint8 ``(T, B, n_in)``.

    Axis guard: data sets are ``(N, T, ...)``, the engine takes ``(T, B, ...)``. When the network declares
    the time steps it was trained with (``network.timesteps``), input whose axis 1 has that many steps and
    whose axis 0 has another count is refused as swapped, unless ``time_major=True`` says axis 0 is time."""
    spikes = np.asarray(spikes)
    expected = ("T", "B", *network.input_shape)
    if spikes.ndim != len(expected) or tuple(spikes.shape[2:]) != network.input_shape:
        raise InputError(f"input spikes must have shape (T, B, {', '.join(map(str, network.input_shape))}), "
                         f"got {spikes.shape}")
    if spikes.shape[0] < 1 or spikes.shape[1] < 1:
        raise InputError(f"input spikes need T >= 1 and B >= 1, got {spikes.shape}")
    declared = getattr(network, "timesteps", None)
    if not time_major and declared is not None and spikes.shape[1] == declared != spikes.shape[0]:
        raise InputError(f"input spikes {spikes.shape} look like (N, T, ...) data: axis 1 has {declared} steps, "
                         f"the T this network was trained with; the engine takes (T, B, ...), so pass "
                         f"np.moveaxis(x, 1, 0) (or time_major=True to run {spikes.shape[0]} steps of batch "
                         f"{declared})")
    if spikes.dtype == np.bool_:
        flat = spikes.view(np.uint8)
    elif spikes.dtype == np.uint8:
        if spikes.max() > 1:
            raise InputError("input spikes must be 0/1 values; got uint8 values above 1")
        flat = spikes
    elif spikes.dtype.kind in "iuf":
        if not np.all((spikes == 0) | (spikes == 1)):
            raise InputError(f"input spikes must be 0/1 values; got dtype {spikes.dtype} with other values "
                             f"(encode analogue input first, e.g. hwsim.encoding.bernoulli)")
        flat = spikes.astype(np.uint8)
    else:
        raise InputError(f"input spikes must be bool, integer or float 0/1, got dtype {spikes.dtype}")
    return np.ascontiguousarray(flat.reshape(spikes.shape[0], spikes.shape[1], -1))


def lava_effective_weights(weight: np.ndarray) -> np.ndarray:
    """The weights Lava's fixed-point Dense really uses: with mixed signs the lowest bit is dropped."""
    w = weight.astype(np.int32)
    if w.min(initial=0) < 0 < w.max(initial=0):
        w = (w >> 1) << 1
    return w


def packed_dense_weights(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """Lava's effective Dense weights as 8-bit storage and a factor: ``effective == factor * stored``.

    Mixed signs: even values in -256..254, stored halved as int8 (factor 2); one sign: magnitudes 0..255
    as uint8 (factor 1 or -1). Transposed to fan-out-major ``(n_in, n_out)``.
    """
    w = lava_effective_weights(weight)
    if w.min(initial=0) < 0 < w.max(initial=0):
        return np.ascontiguousarray((w >> 1).T.astype(np.int8)), 2
    if w.min(initial=0) < 0:
        return np.ascontiguousarray((-w).T.astype(np.uint8)), -1
    return np.ascontiguousarray(w.T.astype(np.uint8)), 1


def plan_layers(network: Network) -> list[LayerPlan]:
    """Compile each neuron layer: fan-out-major weights and geometry; Flatten layers fold away."""
    plans = []
    for layer, (in_shape, out_shape) in zip(network.layers, network.layer_shapes()):
        if isinstance(layer, Flatten):
            continue
        n_in = int(np.prod(in_shape))
        if n_in >= 2**23:
            raise NetworkError(f"layer {layer.name}: {n_in} inputs; the int32 accumulators are exact up to 2**23")
        geom = np.zeros(10, np.int64)
        if isinstance(layer, Dense):
            if network.mode == "fixed":
                w2d, factor = packed_dense_weights(layer.weight)
                plans.append(LayerPlan(layer, DENSE, w2d, geom, n_in, out_shape, factor))
            else:
                plans.append(LayerPlan(layer, DENSE, np.ascontiguousarray(layer.weight.T), geom, n_in, out_shape))
            continue
        c, h, w_in = in_shape
        if isinstance(layer, Conv2d):
            o, _, kh, kw = layer.weight.shape
            geom[:] = (c, h, w_in, o, out_shape[1], out_shape[2], kh, kw, layer.stride, layer.padding)
            w2d = np.ascontiguousarray(layer.weight.transpose(1, 2, 3, 0).reshape(c * kh * kw, o))
            if network.mode == "fixed":
                w2d = w2d.astype(np.int16)
            plans.append(LayerPlan(layer, CONV, w2d, geom, n_in, out_shape))
        else:
            k = layer.kernel
            geom[:] = (c, h, w_in, c, out_shape[1], out_shape[2], k, k, layer.stride, 0)
            dtype = np.float32 if network.mode == "float" else np.int16
            plans.append(LayerPlan(layer, POOL, np.full((1, 1), layer.weight, dtype), geom, n_in, out_shape))
    return plans


class Engine:
    """A network compiled for the kernels. Build once, then :meth:`run` many inputs.

    The engine keeps fan-out-major copies of the weights; after changing ``network``'s weights build a
    new engine (or call :meth:`refresh`).
    """

    def __init__(self, network: Network):
        self.network = network
        self.refresh()

    def refresh(self) -> None:
        """Recompile the layer plans from the network's current weights."""
        self.plans = plan_layers(self.network)
        mode = self.network.mode
        self._bias = [_float_bias(p.layer, p.out_shape) if mode == "float"
                      else _fixed_bias(p.layer, p.out_shape, p.layer.neuron.bias_exp) for p in self.plans]

    def run(self, spikes: np.ndarray, record: bool = False, time_major: bool | None = None) -> SimResult:
        """Run on 0/1 ``spikes`` of shape ``(T, B, *input_shape)``; returns spikes and exact counts.

        ``record=True`` also returns every layer's membrane (and, fixed mode, current) per step.
        ``time_major=True`` skips the axis guard of :func:`check_input` (axis 0 is time, whatever its length).
        """
        network = self.network
        s_in = check_input(network, spikes, time_major)
        steps, batch = s_in.shape[:2]
        if steps * batch >= 2**31:
            raise InputError(f"T x B = {steps * batch} steps in one run; split the batch (limit 2**31)")
        in_off, in_events = scan_events(s_in)
        counts = Counts(timesteps=steps, batch=batch, mode=network.mode)
        out_spikes, membranes, currents, names = [], [], [], []
        for plan, bias in zip(self.plans, self._bias):
            layer = plan.layer
            n_out = int(np.prod(plan.out_shape))
            lc = LayerCounts(layer.name, layer.kind, plan.n_in, n_out, steps)
            lc.neuron_spikes = np.zeros(n_out, np.int64)
            lc.input_spikes = np.zeros(plan.n_in, np.int64)
            lc.neuron_active = np.zeros(n_out, np.int64)
            s_out = np.zeros((steps, batch, n_out), np.uint8)
            ev = lc.events
            rec_shape = (steps, batch, n_out) if record else (0, 0, 0)
            if network.mode == "float":
                neuron: FloatLIF = layer.neuron
                u_rec = np.zeros(rec_shape, np.float32)
                in_off, in_events = run_float_layer(
                    plan.kind, in_off, in_events, plan.w2d, plan.geom, bias, np.float32(neuron.lam),
                    np.float32(neuron.v_th), neuron.reset == "soft", s_out, u_rec, ev["spikes_in"], ev["sop"],
                    ev["spikes_out"], ev["neuron_updates_active"], lc.neuron_spikes, lc.neuron_active, lc.input_spikes)
                if record:
                    membranes.append(u_rec.reshape(steps, batch, *plan.out_shape))
            else:
                neuron: LoihiLIF = layer.neuron
                v_rec, u_rec = np.zeros(rec_shape, np.int32), np.zeros(rec_shape, np.int32)
                in_off, in_events = run_fixed_layer(
                    plan.kind, in_off, in_events, plan.w2d, plan.factor, plan.geom, int(layer.weight_exp), neuron.du,
                    neuron.dv, neuron.vth, bias, s_out, v_rec, u_rec, ev["spikes_in"], ev["sop"], ev["spikes_out"],
                    ev["neuron_updates_active"], lc.neuron_spikes, lc.neuron_active, lc.input_spikes)
                if record:
                    membranes.append(v_rec.reshape(steps, batch, *plan.out_shape))
                    currents.append(u_rec.reshape(steps, batch, *plan.out_shape))
            ev["neuron_updates"][:] = batch * n_out
            add_inference_bytes(lc, network.mode, has_bias=layer.bias is not None)
            counts.layers.append(lc)
            out_spikes.append(s_out.reshape(steps, batch, *plan.out_shape))
            names.append(layer.name)
        return SimResult(out_spikes, counts, names, membranes if record else None,
                         currents if record and network.mode == "fixed" else None)


def simulate(network: Network, spikes: np.ndarray, record: bool = False, time_major: bool | None = None) -> SimResult:
    """One-shot :class:`Engine` run (see :meth:`Engine.run`)."""
    return Engine(network).run(spikes, record=record, time_major=time_major)


def _float_bias(layer, out_shape) -> np.ndarray:
    n_out = int(np.prod(out_shape))
    if layer.bias is None:
        return np.zeros(n_out, np.float32)
    return np.repeat(layer.bias.astype(np.float32), n_out // layer.bias.shape[0])


def _fixed_bias(layer, out_shape, bias_exp: int) -> np.ndarray:
    n_out = int(np.prod(out_shape))
    if layer.bias is None:
        return np.zeros(n_out, np.int32)
    mant = np.repeat(layer.bias.astype(np.int32), n_out // layer.bias.shape[0])
    return (mant << bias_exp).astype(np.int32)


def bernoulli(shape: tuple[int, ...], rate: float, seed: int = 0) -> np.ndarray:
    """Bernoulli spikes with probability ``rate`` per entry, uint8 array of ``shape``."""
    if not 0.0 <= rate <= 1.0:
        raise InputError(f"rate must be a probability in [0, 1], got {rate}")
    rng = np.random.default_rng(seed)
    return (rng.random(shape, dtype=np.float32) < rate).astype(np.uint8)


__all__ = ["Engine", "simulate", "SimResult", "InputError", "NetworkError", "bernoulli", "check_input"]
