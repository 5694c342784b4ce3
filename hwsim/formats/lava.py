"""Build a fixed-point :class:`~hwsim.sim.network.Network` as Lava 0.10.0 processes and run it.

The graph is ``RingBuffer -> Dense|Conv -> LIF -> ...`` (see :func:`build_lava`) run under
``Loihi2SimCfg(select_tag="fixed_pt")``. Lava's input ``RingBuffer`` emits column t-1 at (1-based) step t,
so with the same input columns Lava step t + 1 is hwsim step t (DESIGN.md section 2). A recurrent layer is its
``LIF`` fed by two ``Dense`` processes into the same ``a_in``: the input weights from the layer below and the
recurrent weights from the ``LIF``'s own ``s_out`` (one ``weight_exp`` for both; each Dense shifts its own sum).
Lava's Dense sends at step t what it summed at step t - 1, so the loop delivers the layer's spikes one step
later, as every feed-forward connection does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.formats.lava_compat import import_lava
from hwsim.sim.network import Conv2d, Dense, Flatten, FloatALIF, Network, NetworkError, Recurrent, SumPool2d


@dataclass
class LavaRun:
    """Per neuron layer: spikes ``(T, n)`` uint8, and when probed, ``v`` and ``u`` ``(T, n)`` int64, all in
    hwsim's flattened (C, H, W) order."""

    spikes: list[np.ndarray]
    v: list[np.ndarray] | None
    u: list[np.ndarray] | None


def check_lava_expressible(network: Network) -> None:
    """Raise :class:`NetworkError` naming the first layer Lava 0.10.0's processes cannot express exactly."""
    for i, layer in enumerate(network.layers):
        if isinstance(layer.neuron, FloatALIF):
            raise NetworkError(f"layer {i} ({layer.name}): adaptive-threshold (ALIF) neurons have no Lava LIF form "
                               f"(Lava 0.10.0's LIF has a fixed threshold); not exported")
    if network.mode != "fixed":
        raise NetworkError("Lava runs fixed-point networks; quantise the float network first")
    for i, layer in enumerate(network.layers):
        if isinstance(layer, (Conv2d, SumPool2d)) and layer.weight_exp < 0:
            weights = np.asarray(layer.weight if isinstance(layer, Conv2d) else [layer.weight], np.int64)
            if np.any(weights % (1 << -layer.weight_exp)):
                raise NetworkError(f"layer {i} ({layer.name}): Lava's Conv applies no weight exponent, and these "
                                   f"weights are not multiples of 2**{-layer.weight_exp}; they cannot be folded "
                                   f"into it exactly")


def lava_conv_weight(layer, channels: int) -> np.ndarray:
    """hwsim correlation weights (O, C, kh, kw) shifted by weight_exp, as Lava's Conv takes them:
    (O, kw, kh, C), spatially flipped (Lava convolves). Sum pooling is a channel-diagonal kernel."""
    if isinstance(layer, Conv2d):
        w = layer.weight.astype(np.int64)
    else:
        w = np.zeros((channels, channels, layer.kernel, layer.kernel), np.int64)
        w[np.arange(channels), np.arange(channels)] = int(layer.weight)
    e = int(layer.weight_exp)
    w = (w << e) if e >= 0 else (w >> -e)
    return np.ascontiguousarray(w.transpose(0, 3, 2, 1)[:, ::-1, ::-1]).astype(np.int32)


def to_lava_layout(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """hwsim (..., C*H*W) -> Lava (..., W, H, C); 1-D shapes pass through."""
    if len(shape) != 3:
        return values
    return np.swapaxes(values.reshape(*values.shape[:-1], *shape), -1, -3)


def from_lava_layout(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Lava (T, W, H, C) recordings -> hwsim (T, C*H*W)."""
    steps = values.shape[0]
    if len(shape) != 3:
        return values.reshape(steps, -1)
    c, h, w = shape
    return np.swapaxes(values.reshape(steps, w, h, c), 1, 3).reshape(steps, -1)


def build_lava(network: Network, spikes: np.ndarray, probe_state: bool = True, monitor_spikes: bool = True):
    """Build the Lava process graph for one sample's input ``spikes`` ``(T, n_in)``; returns the source
    ``RingBuffer`` (run it to run the graph) and the monitors as ``(layer, var, Monitor, name, shape)``.

    Dense -> ``Dense``; Recurrent -> ``Dense`` plus a recurrent ``Dense`` from the ``LIF``'s ``s_out`` back into
    its ``a_in``; Conv2d -> ``Conv`` (weights shifted by weight_exp and flipped, layout (W, H, C));
    SumPool2d -> a channel-diagonal ``Conv``; Flatten -> a permutation folded into the next Dense's columns
    (Lava flattens (W, H, C), hwsim (C, H, W)); every neuron layer -> ``LIF``."""
    check_lava_expressible(network)
    import_lava()
    from lava.proc.conv.process import Conv as LavaConv
    from lava.proc.dense.process import Dense as LavaDense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    spikes = np.asarray(spikes)
    steps = spikes.shape[0]
    data = to_lava_layout(spikes.reshape(steps, -1), network.input_shape)
    source = RingBuffer(data=np.ascontiguousarray(np.moveaxis(data, 0, -1)).astype(np.int32))
    port, port_shape = source.s_out, tuple(network.input_shape)
    monitors = []
    index = 0
    for layer, (in_shape, out_shape) in zip(network.layers, network.layer_shapes()):
        if isinstance(layer, Flatten):
            continue
        neuron = layer.neuron
        if isinstance(layer, (Dense, Recurrent)):
            weight = layer.weight.astype(np.int32)
            if len(port_shape) == 3:  # hwsim flattens (C, H, W); Lava flattens (W, H, C)
                c, h, w = port_shape
                weight = weight[:, np.arange(c * h * w).reshape(c, h, w).transpose(2, 1, 0).ravel()]
                port = port.flatten()
            synapse = LavaDense(weights=weight, weight_exp=int(layer.weight_exp))
        else:
            stride, pad = layer.stride, getattr(layer, "padding", 0)
            synapse = LavaConv(weight=lava_conv_weight(layer, in_shape[0]), input_shape=tuple(in_shape[::-1]),
                               padding=(pad, pad), stride=(stride, stride))
        n = int(np.prod(out_shape))
        lava_shape = tuple(out_shape[::-1]) if len(out_shape) == 3 else (n,)
        bias = np.zeros(n, np.int32) if layer.bias is None else np.repeat(layer.bias.astype(np.int32),
                                                                          n // layer.bias.shape[0])
        lif = LIF(shape=lava_shape, du=neuron.du, dv=neuron.dv, vth=neuron.vth,
                  bias_mant=to_lava_layout(bias, tuple(out_shape)).reshape(lava_shape), bias_exp=neuron.bias_exp)
        port.connect(synapse.s_in)
        synapse.a_out.connect(lif.a_in)
        if isinstance(layer, Recurrent):
            loop = LavaDense(weights=layer.recurrent.astype(np.int32), weight_exp=int(layer.weight_exp))
            lif.s_out.connect(loop.s_in)
            loop.a_out.connect(lif.a_in)
        port, port_shape = lif.s_out, tuple(out_shape)
        probes = {}
        if monitor_spikes:
            probes["s_out"] = lif.s_out
        if probe_state:
            probes.update(v=lif.v, u=lif.u)
        for key, target in probes.items():
            monitor = Monitor()
            monitor.probe(target, steps)
            monitors.append((index, key, monitor, lif.name, tuple(out_shape)))
        index += 1
    return source, monitors


def fixed_pt_config():
    """Lava's CPU simulation config with the bit-accurate fixed-point models."""
    import_lava()
    from lava.magma.core.run_configs import Loihi2SimCfg

    return Loihi2SimCfg(select_tag="fixed_pt")


def run_lava(network: Network, spikes: np.ndarray, probe_state: bool = True) -> LavaRun:
    """Run ``network`` in Lava (``fixed_pt``) on one sample's 0/1 input ``spikes`` ``(T, *input_shape)`` for
    T steps; returns every layer's spikes and, with ``probe_state``, its v and u per step."""
    from lava.magma.core.run_conditions import RunSteps

    steps = np.asarray(spikes).shape[0]
    source, monitors = build_lava(network, spikes, probe_state=probe_state)
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=fixed_pt_config())
        data = {(index, key): from_lava_layout(np.asarray(monitor.get_data()[name][key]), shape)
                for index, key, monitor, name, shape in monitors}
    finally:
        source.stop()
    n = sum(1 for layer in network.layers if layer.neuron is not None)
    spikes_out = [data[(i, "s_out")].astype(np.uint8) for i in range(n)]
    v = [data[(i, "v")].astype(np.int64) for i in range(n)] if probe_state else None
    u = [data[(i, "u")].astype(np.int64) for i in range(n)] if probe_state else None
    return LavaRun(spikes_out, v, u)
