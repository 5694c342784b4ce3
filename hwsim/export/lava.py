"""Build a fixed-point :class:`~hwsim.network.Network` as Lava 0.10.0 processes and run it.

The graph is ``RingBuffer -> Dense -> LIF -> Dense -> LIF ...`` run under
``Loihi2SimCfg(select_tag="fixed_pt")``. Lava's input ``RingBuffer`` emits column t-1 at (1-based) step t,
so with the same input columns Lava step t + 1 is hwsim step t (DESIGN.md section 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.export.lava_compat import import_lava
from hwsim.network import Dense, Network, NetworkError


@dataclass
class LavaRun:
    """Per neuron layer: spikes ``(T, n)`` uint8, and when probed, ``v`` and ``u`` ``(T, n)`` int64."""

    spikes: list[np.ndarray]
    v: list[np.ndarray] | None
    u: list[np.ndarray] | None


def check_lava_expressible(network: Network) -> None:
    """Raise :class:`NetworkError` naming the first layer Lava's Dense/LIF graph cannot express."""
    if network.mode != "fixed":
        raise NetworkError("Lava runs fixed-point networks; quantise the float network first")
    for i, layer in enumerate(network.layers):
        if not isinstance(layer, Dense):
            raise NetworkError(f"layer {i} ({layer.name}): kind {layer.kind!r} is not supported by the Lava "
                               f"runner yet (Dense layers only)")


def run_lava(network: Network, spikes: np.ndarray, probe_state: bool = True,
             monitor_spikes: bool = True) -> LavaRun:
    """Run ``network`` in Lava on one sample's input ``spikes`` ``(T, n_in)`` (0/1) for T steps.

    ``monitor_spikes=False`` and ``probe_state=False`` build the bare graph (no Monitor processes), as a
    deployment would run; the result then holds no data (used for timing).
    """
    check_lava_expressible(network)
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense as LavaDense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    spikes = np.asarray(spikes)
    steps = spikes.shape[0]
    source = RingBuffer(data=spikes.T.astype(np.int32))
    port = source.s_out
    lifs, monitors = [], []
    for layer in network.layers:
        neuron = layer.neuron
        bias = np.zeros(layer.n_out, np.int32) if layer.bias is None else layer.bias.astype(np.int32)
        dense = LavaDense(weights=layer.weight.astype(np.int32), weight_exp=int(layer.weight_exp))
        lif = LIF(shape=(layer.n_out,), du=neuron.du, dv=neuron.dv, vth=neuron.vth,
                  bias_mant=bias, bias_exp=neuron.bias_exp)
        port.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        port = lif.s_out
        lifs.append(lif)
        probes = {}
        if monitor_spikes:
            probes["s_out"] = lif.s_out
        if probe_state:
            probes.update(v=lif.v, u=lif.u)
        for key, target in probes.items():
            monitor = Monitor()
            monitor.probe(target, steps)
            monitors.append((len(lifs) - 1, key, monitor, lif.name))
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        data: dict[tuple[int, str], np.ndarray] = {}
        for index, key, monitor, name in monitors:
            recorded = monitor.get_data()[name]
            data[(index, key)] = np.asarray(recorded[key if key != "s_out" else "s_out"]).reshape(steps, -1)
    finally:
        source.stop()
    n = len(lifs)
    spikes_out = [data[(i, "s_out")].astype(np.uint8) for i in range(n)] if monitor_spikes else []
    v = [data[(i, "v")].astype(np.int64) for i in range(n)] if probe_state else None
    u = [data[(i, "u")].astype(np.int64) for i in range(n)] if probe_state else None
    return LavaRun(spikes_out, v, u)
