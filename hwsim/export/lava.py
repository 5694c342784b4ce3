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


def build_lava(network: Network, spikes: np.ndarray, probe_state: bool = True, monitor_spikes: bool = True):
    """Build the Lava process graph for one sample's input ``spikes`` ``(T, n_in)``; returns the source
    ``RingBuffer`` (run it to run the graph) and the monitors as ``(layer, var, Monitor, process name)``."""
    check_lava_expressible(network)
    import_lava()
    from lava.proc.dense.process import Dense as LavaDense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    spikes = np.asarray(spikes)
    steps = spikes.shape[0]
    source = RingBuffer(data=spikes.T.astype(np.int32))
    port = source.s_out
    monitors = []
    for index, layer in enumerate(network.layers):
        neuron = layer.neuron
        bias = np.zeros(layer.n_out, np.int32) if layer.bias is None else layer.bias.astype(np.int32)
        dense = LavaDense(weights=layer.weight.astype(np.int32), weight_exp=int(layer.weight_exp))
        lif = LIF(shape=(layer.n_out,), du=neuron.du, dv=neuron.dv, vth=neuron.vth,
                  bias_mant=bias, bias_exp=neuron.bias_exp)
        port.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        port = lif.s_out
        probes = {}
        if monitor_spikes:
            probes["s_out"] = lif.s_out
        if probe_state:
            probes.update(v=lif.v, u=lif.u)
        for key, target in probes.items():
            monitor = Monitor()
            monitor.probe(target, steps)
            monitors.append((index, key, monitor, lif.name))
    return source, monitors


def fixed_pt_config():
    """Lava's CPU simulation config with the bit-accurate fixed-point models."""
    import_lava()
    from lava.magma.core.run_configs import Loihi2SimCfg

    return Loihi2SimCfg(select_tag="fixed_pt")


def run_lava(network: Network, spikes: np.ndarray, probe_state: bool = True) -> LavaRun:
    """Run ``network`` in Lava (``fixed_pt``) on one sample's 0/1 input ``spikes`` ``(T, n_in)`` for T steps;
    returns every layer's spikes and, with ``probe_state``, its v and u per step."""
    from lava.magma.core.run_conditions import RunSteps

    steps = np.asarray(spikes).shape[0]
    source, monitors = build_lava(network, spikes, probe_state=probe_state)
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=fixed_pt_config())
        data = {(index, key): np.asarray(monitor.get_data()[name][key]).reshape(steps, -1)
                for index, key, monitor, name in monitors}
    finally:
        source.stop()
    n = len(network.layers)
    spikes_out = [data[(i, "s_out")].astype(np.uint8) for i in range(n)]
    v = [data[(i, "v")].astype(np.int64) for i in range(n)] if probe_state else None
    u = [data[(i, "u")].astype(np.int64) for i in range(n)] if probe_state else None
    return LavaRun(spikes_out, v, u)
