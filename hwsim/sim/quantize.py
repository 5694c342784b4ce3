"""Float network -> Loihi fixed point, with a report of what it cost.

Per neuron layer, with scale ``s = 127 / max|W|`` (integers in -127..127):

* weights ``w = round(W s)``, exported as ``2 w`` with ``weight_exp = -1`` (exact in every Lava sign mode:
  Lava drops the lowest bit of mixed-sign weights, and ``(sum 2w) >> 1 = sum w``);
* ``du = 4095`` (no current memory: the current each step is the synaptic input, as in the float LIF),
  ``dv = round(4096 (1 - lam))`` (voltage decay), ``vth = ceil(V_th s) - 1`` (the float neuron fires at
  ``u >= V_th``, Lava at ``v > vth << 6`` with ``v`` in units of 64 per weight step: on whole weight steps the same
  rule, so a sum that lands exactly on the threshold -- a sum pool's taps -- fires in both);
* bias ``b s 64`` per step into ``bias_mant << bias_exp`` (the smallest exponent that fits 13 bits);
* reset: Lava's LIF resets to zero. A soft-reset network is converted to zero reset (a documented
  conversion): the accuracy before and after, measured on the given data, shows its cost;
* recurrent layers: the recurrent weights share the layer's scale (``s = 127 / max(|W|, |W_rec|)``) and its one
  ``weight_exp = -1`` (Lava's two Dense processes into the layer's LIF then carry the same units), clipped
  values counted with the input weights'. Adaptive (ALIF) neurons have no counterpart in Loihi's LIF (its
  threshold does not adapt): such a network is refused in one line.

The accuracy before is the float network's in hwsim's own float engine (no torch: the simulator core runs
without it). Lava adds a one-step delay per connection, so a network of L layers answers L steps later: the evaluation
runs T + L steps (the input padded with silence) and reads the output layer's summed current
(``u / 64`` with ``du = 4095``), the fixed-point counterpart of the float read-out. Every clipped value
(weights beyond the range, thresholds beyond 17 bits, biases beyond 13 + 7 bits) is counted per layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hwsim.sim.engine import Engine
from hwsim.sim.network import (
    BIAS_MANT_MAX,
    BIAS_MANT_MIN,
    Conv2d,
    Dense,
    FloatALIF,
    FloatLIF,
    LoihiLIF,
    Network,
    NetworkError,
    Recurrent,
    SumPool2d,
)

WEIGHT_LEVELS = 127
VTH_MAX = 2**17 - 1


@dataclass
class LayerQuantisation:
    name: str
    scale: float
    du: int
    dv: int
    vth: int
    weights_clipped: int = 0
    vth_clipped: bool = False
    bias_clipped: int = 0
    reset_converted: bool = False


@dataclass
class QuantReport:
    """What quantisation did, layer by layer, and the accuracy before (float) and after (fixed)."""

    layers: list[LayerQuantisation] = field(default_factory=list)
    accuracy_float: float | None = None
    accuracy_fixed: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"layers": [vars(layer) for layer in self.layers], "accuracy_float": self.accuracy_float,
                "accuracy_fixed": self.accuracy_fixed, "notes": self.notes}


def quantize(network: Network, x: np.ndarray | None = None, y: np.ndarray | None = None) -> tuple[Network, QuantReport]:
    """Fixed-point copy of the float ``network``; with data ``x`` (N, T, *input_shape) 0/1 and labels ``y``,
    the report holds the accuracy before and after."""
    if network.mode != "float":
        raise NetworkError("quantize takes a float network; this one is already fixed point")
    for i, layer in enumerate(network.layers):
        if isinstance(layer.neuron, FloatALIF):
            raise NetworkError(f"layer {i} ({layer.name}): adaptive (ALIF) neurons cannot be quantised to Loihi's "
                               f"LIF, whose threshold does not adapt; quantise a network of LIF neurons")
    report = QuantReport()
    layers = []
    for layer in network.layers:
        if layer.neuron is None:
            layers.append(type(layer)(name=layer.name))
            continue
        neuron: FloatLIF = layer.neuron
        weights = np.asarray(layer.weight if not isinstance(layer, SumPool2d) else [layer.weight], np.float64)
        recurrent = np.asarray(layer.recurrent, np.float64) if isinstance(layer, Recurrent) else np.zeros(0)
        peak = max(float(np.abs(weights).max()), float(np.abs(recurrent).max(initial=0.0)))
        scale = WEIGHT_LEVELS / peak if peak > 0 else 1.0
        w_int, clipped = _integer_weights(weights, scale)
        r_int, r_clipped = _integer_weights(recurrent, scale)
        clipped += r_clipped
        vth_float = neuron.v_th * scale
        if vth_float < 1.0:  # the threshold under one weight step: every neuron fires on any input, meaningless
            raise NetworkError(f"layer {layer.name}: its largest weight ({peak:.3g}) is over {WEIGHT_LEVELS} times "
                               f"its threshold ({neuron.v_th:g}): Loihi's 8-bit weights cannot hold both (the "
                               f"threshold would quantise to 0)")
        vth = int(min(max(math.ceil(vth_float - 1e-9) - 1, 0), VTH_MAX))  # float fires at u >= V_th, Lava at v > vth
        dv = int(np.clip(round(4096 * (1.0 - neuron.lam)), 0, 4095))
        info = LayerQuantisation(layer.name, scale, 4095, dv, vth, clipped, vth_float > VTH_MAX)
        if neuron.reset == "soft":
            info.reset_converted = True
        bias_mant, bias_exp = None, 0
        if layer.bias is not None:
            target = np.asarray(layer.bias, np.float64) * scale * 64
            bias_exp = int(np.clip(np.ceil(np.log2(max(np.abs(target).max(), 1.0) / BIAS_MANT_MAX)), 0, 7))
            mant = np.rint(target / 2**bias_exp)
            info.bias_clipped = int(((mant < BIAS_MANT_MIN) | (mant > BIAS_MANT_MAX)).sum())
            bias_mant = np.clip(mant, BIAS_MANT_MIN, BIAS_MANT_MAX).astype(np.int32)
        fixed_neuron = LoihiLIF(du=4095, dv=dv, vth=vth, bias_exp=bias_exp)
        common = {"neuron": fixed_neuron, "weight_exp": -1, "name": layer.name}
        if isinstance(layer, Dense):
            layers.append(Dense(2 * w_int, bias=bias_mant, **common))
        elif isinstance(layer, Recurrent):
            layers.append(Recurrent(2 * w_int, 2 * r_int, bias=bias_mant, **common))
        elif isinstance(layer, Conv2d):
            layers.append(Conv2d(2 * w_int, stride=layer.stride, padding=layer.padding, bias=bias_mant, **common))
        else:
            layers.append(SumPool2d(layer.kernel, layer.stride, weight=int(2 * w_int[0]), **common))
        report.layers.append(info)
    fixed = Network(network.input_shape, layers, timesteps=network.timesteps)
    if any(q.reset_converted for q in report.layers):
        report.notes.append("soft reset converted to Lava's zero reset (the accuracy after includes its cost)")
    if x is not None and y is not None:
        report.accuracy_float = float_accuracy(network, x, y)
        report.accuracy_fixed = fixed_accuracy(fixed, x, y)
    return fixed, report


def _integer_weights(weights: np.ndarray, scale: float) -> tuple[np.ndarray, int]:
    """``round(weights * scale)`` clipped to -127..127 (int32), and how many values the clip changed."""
    w_int = np.rint(weights * scale)
    clipped = int((np.abs(w_int) > WEIGHT_LEVELS).sum())
    return np.clip(w_int, -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int32), clipped


def _batches(x: np.ndarray, batch: int):
    for start in range(0, len(x), batch):
        yield start, np.moveaxis(np.asarray(x[start: start + batch]), 1, 0)


def float_readout(network: Network, spikes: np.ndarray) -> np.ndarray:
    """The float read-out summed over time, ``(B, classes)`` float64, for 0/1 ``spikes`` ``(T, B, *input_shape)``.

    The read-out is the last neuron layer's synaptic current ``W s[t] + b`` (as in ``methods.models``), so its
    sum over the T steps is ``W (sum_t s[t]) + T b``: the float engine runs the network, and the last layer's
    linear map (dense, conv or sum-pool) is applied to the summed spikes that enter it. A recurrent last layer's
    current also holds its recurrent input ``W_rec o[t-1]`` (its own spikes of the step before), summed alike.
    No torch."""
    if network.mode != "float":
        raise NetworkError("float_readout takes a float network")
    result = Engine(network).run(spikes, record="spikes")
    neuron_layers = [(layer, shapes) for layer, shapes in zip(network.layers, network.layer_shapes())
                     if layer.neuron is not None]
    last, (in_shape, out_shape) = neuron_layers[-1]
    entering = np.asarray(spikes) if len(neuron_layers) == 1 else result.spikes[-2]
    steps, batch = entering.shape[:2]
    summed = entering.reshape(steps, batch, *in_shape).sum(axis=0, dtype=np.float64)
    if isinstance(last, (Dense, Recurrent)):
        out = summed.reshape(batch, -1) @ np.asarray(last.weight, np.float64).T
        if isinstance(last, Recurrent):  # its own spikes of steps 0..T-2 reach steps 1..T-1
            own = result.spikes[-1][:-1].reshape(steps - 1, batch, -1).sum(axis=0, dtype=np.float64)
            out = out + own @ np.asarray(last.recurrent, np.float64).T
    elif isinstance(last, Conv2d):
        out = _conv2d(summed, np.asarray(last.weight, np.float64), last.stride, last.padding)
    else:
        k = last.kernel
        stride = last.stride or k
        windows = np.lib.stride_tricks.sliding_window_view(summed, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
        out = windows.sum(axis=(-2, -1)) * float(last.weight)
    if last.bias is not None:
        bias = np.asarray(last.bias, np.float64)
        out = out + steps * bias.reshape(bias.shape[0], *([1] * (out.ndim - 2)))
    return out.reshape(batch, *out_shape).reshape(batch, -1)


def _conv2d(x: np.ndarray, weight: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """Cross-correlation as in torch: ``x`` (B, C, H, W), ``weight`` (O, C, kh, kw) -> (B, O, H_out, W_out)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = weight.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("bchwij,ocij->bohw", windows, weight, optimize=True)


def float_accuracy(network: Network, x: np.ndarray, y: np.ndarray, batch: int = 256) -> float:
    """Accuracy of a float network in hwsim's float engine: the read-out (the last layer's summed current)
    peaks at the label. ``x`` (N, T, *input_shape) 0/1, ``y`` (N,) labels."""
    correct = 0
    for start, xb in _batches(x, batch):
        readout = float_readout(network, xb)
        correct += int((readout.argmax(1) == y[start: start + len(readout)]).sum())
    return correct / max(len(y), 1)


def fixed_readout(network: Network, spikes: np.ndarray) -> np.ndarray:
    """The fixed-point read-out, ``(B, classes)`` int64, for 0/1 ``spikes`` ``(T, B, *input_shape)``: run
    T + L steps (the input padded with silence for Lava's one-step delay per layer) and sum the output layer's
    current ``u`` over them."""
    depth = sum(1 for layer in network.layers if layer.neuron is not None)
    spikes = np.asarray(spikes)
    padded = np.concatenate([spikes, np.zeros((depth, *spikes.shape[1:]), spikes.dtype)]).astype(np.uint8)
    result = Engine(network).run(padded, record=True, time_major=True)  # T + L steps: axis 0 is time
    return result.currents[-1].reshape(padded.shape[0], padded.shape[1], -1).astype(np.int64).sum(axis=0)


def fixed_accuracy(network: Network, x: np.ndarray, y: np.ndarray, batch: int = 256) -> float:
    """Accuracy of a fixed-point network (see :func:`fixed_readout`). ``x`` (N, T, *input_shape) 0/1."""
    correct = 0
    for start, xb in _batches(x, batch):
        readout = fixed_readout(network, xb)
        correct += int((readout.argmax(1) == y[start: start + readout.shape[0]]).sum())
    return correct / max(len(y), 1)
