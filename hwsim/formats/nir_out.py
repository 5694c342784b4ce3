"""NIR out: a :class:`~hwsim.sim.network.Network` as a NIR graph in NIR's own units (read back by
:mod:`hwsim.formats.nir_io`, which re-exports :func:`to_nir` and :func:`write`).

**Fixed point** -- a reader using only NIR's published node equations (no hwsim metadata) reproduces Lava's
spikes. The unit of every value is one unit of synaptic input: the integer that Lava's ``Dense``/``Conv`` sends
to the neuron (weights times ``2**weight_exp``), so Lava's internal ``<< 6`` disappears. Per neuron layer:

* the synapse: ``Affine`` (Lava's effective dense weights, sign-mode bit included, times ``2**weight_exp``;
  ``bias`` = ``(bias_mant << bias_exp) / 64`` per neuron), ``Conv2d`` (same, bias per channel) or, for sum
  pooling, a channel-diagonal ``Conv2d``;
* the neuron, time constants in seconds with ``dt`` (graph metadata ``dt``, default 1e-4 s, the value snnTorch
  and spikingjelly assume): du = 4095 (no current memory) -> ``LIF(tau = dt*4096/dv, r = tau/dt, v_leak = 0)``,
  with ``tau = 2**50 dt`` for dv = 0 (no leak: snnTorch 1.0 reads ``nir.IF`` as a leaky neuron and wants r = 1,
  spikingjelly wants r = 1/dt, both read this LIF, whose leak is below float precision); otherwise
  ``CubaLIF(tau_syn = dt*4096/(du+1), tau_mem, r = tau_mem/dt, w_in = tau_syn/dt, v_leak = 0)``;
  ``v_reset = 0``; spike iff ``v > v_threshold`` (NIR's rule and Lava's).
* ``v_threshold = vth + 63/4096``: Lava's membrane is an integer in units of 1/64 and fires on ``v > vth << 6``,
  i.e. from ``vth + 1/64`` on; a float reader keeps the fraction of a grain that Lava's decay truncates (a
  residue mostly in [0, 1/64)), so a threshold just below the next grain decides as Lava does wherever the
  float membrane lies within 63/64 of a grain above Lava's (ties at ``vth`` itself, common in sum pooling whose
  taps are half the threshold, go Lava's way; spikingjelly's ``>=`` becomes the same rule).
* biases: a LIF's in its synapse node (``(bias_mant << bias_exp) / 64``, per neuron or per channel); a CubaLIF's
  as a current, ``bias * (1 - alpha)`` with ``alpha = (4095 - du)/4096``, because snnTorch and spikingjelly
  refuse ``v_leak``: it settles on Lava's voltage bias, its first steps lower by ``bias * alpha**(t+1)`` (the one
  place the export is not Lava's equation, measured in ``tests/test_nir.py``).

Forward-Euler with step dt gives exactly Lava's update order (current first, then voltage, then threshold and
reset), apart from Lava's integer truncation of the decays (below one unit of v's 1/64 grain per step).
**Delay**: Lava's every feed-forward connection adds one step (layer k's spikes at step t move layer k+1 at
t+1; layer 0 sees input column t at step t+1). NIR has no delay, so a delay-free reader of this graph is k+1
steps ahead at layer k; with a one-step delay inserted before every feed-forward synapse node it equals Lava
step for step. The graph metadata says so (``delay_steps_per_synapse = 1``). Exact integers ride in
``metadata["hwsim"]`` so that :func:`hwsim.formats.nir_io.read` rebuilds the identical network.

**Float** (:class:`~hwsim.sim.network.FloatLIF` with ``reset = "zero"``): weights, biases and the threshold as
they are (the unit of the weights), ``LIF(tau = dt/(1 - lam), r = tau/dt, v_leak = 0, v_reset = 0)`` (``lam = 1``:
``tau = 2**50 dt``; ``lam = 0``: ``tau = dt``), ``v_threshold`` the float32 just below ``v_th`` (hwsim fires on
``u >= v_th`` in float32, NIR on ``v > v_threshold``: the same rule). hwsim's float engine has no synaptic delay
(``delay_steps_per_synapse = 0``): a reader runs the graph as it is. Soft reset (subtract ``v_th``) has no NIR
form -- NIR's neurons reset to ``v_reset`` -- and is refused naming the layer; so is the adaptive threshold of
:class:`~hwsim.sim.network.FloatALIF` (no NIR primitive, and no exact composition: the adaptation variable would
need its own leaky state feeding the threshold, which NIR's neurons do not take).

**Names.** Node ``<i>_<name>.synapse`` / ``.lif`` / ``.recurrent`` (``<i>_<name>`` for a flatten) for layer ``i``:
the name with ``/``, NUL and other control characters replaced by ``_`` (an HDF5 group name;
:func:`hwsim.formats.bounds.node_key`); the exact name is in the node's hwsim metadata, which hwsim reads back.

**Recurrent layers** (:class:`~hwsim.sim.network.Recurrent`) are written NIR's way, as snnTorch 1.0 writes
``RLeaky``: the synapse ``Affine`` feeds the neuron node, and the neuron's output feeds a ``Linear`` node
(``<layer>.recurrent``: the recurrent weights in the same units as the input weights, Lava's effective ones in
fixed point) whose output feeds back into the same neuron. The cycle is the one-step delay: the spikes of step
t enter the neurons at step t + 1, as in hwsim (float and fixed) and as Lava's recurrent ``Dense`` from the
LIF's own ``s_out`` (metadata ``recurrent_delay_steps = 1``); a delayed reader of a fixed-point graph inserts
its one-step delay before the feed-forward synapse nodes only.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hwsim.formats.bounds import hdf5_image, node_key
from hwsim.sim.network import (
    Conv2d,
    Dense,
    Flatten,
    FloatALIF,
    FloatLIF,
    LoihiLIF,
    Network,
    NetworkError,
    Recurrent,
)

DT = 1e-4  # seconds per step written into exported graphs (snnTorch's and spikingjelly's default)
# Lava fires on v > vth << 6 with v an integer, i.e. once v reaches vth + 1/64 in synaptic units; a float reader
# fires on v > v_threshold and keeps the fraction of a unit that Lava's decay truncates (0 <= residue, mostly
# below 1/64 unit). A threshold just under one grain above vth splits the two cases where Lava does.
THRESHOLD_MARGIN = 63 / 4096
IF_TAU_STEPS = 2.0**50  # tau of a neuron without leak (dv = 0): a LIF whose leak is below float precision

TIMING = {
    "fixed": "Lava adds one step per feed-forward connection: insert a one-step delay before every feed-forward "
             "synapse node to reproduce Lava/hwsim fixed spikes step for step; a delay-free reader is k+1 steps "
             "ahead at neuron layer k. A recurrent loop (neuron -> Linear -> the same neuron) is a one-step delay "
             "by itself, as Lava's recurrent Dense: add none to it",
    "float": "hwsim's float engine has no synaptic delay: run the graph as it is. A recurrent loop (neuron -> "
             "Linear -> the same neuron) carries the neuron's spikes of step t into its input at step t+1",
}
UNITS = {"fixed": "synaptic input (Lava's a, before its << 6); spike iff v > v_threshold; reset to 0",
         "float": "hwsim's float weights; spike iff v > v_threshold (the float32 below hwsim's v_th); reset to 0"}


def _effective_dense(weight: np.ndarray) -> np.ndarray:
    """The dense weights Lava really applies (mixed signs drop the lowest bit), as integers."""
    w = weight.astype(np.int64)
    if w.min(initial=0) < 0 < w.max(initial=0):
        w = (w >> 1) << 1
    return w


def _neuron_node(neuron: LoihiLIF, shape: tuple[int, ...], bias: np.ndarray, dt: float):
    """The NIR neuron for one fixed-point population and the bias its synapse node carries.

    ``bias``: Lava's per-step voltage bias in synaptic units, per channel or per neuron. Returns ``(node,
    synapse_bias)``: a ``LIF`` takes the bias unchanged in its synapse node; a ``CubaLIF`` takes it as a current
    ``bias * (1 - alpha)`` (alpha = (4095 - du)/4096), which settles on Lava's voltage bias (see the module
    docstring). Time constants: ``tau = dt*4096/dv``, or ``IF_TAU_STEPS*dt`` for dv = 0 (no leak)."""
    import nir

    full = lambda value: np.full(shape, value, np.float64)  # noqa: E731
    zero, vth = full(0.0), full(float(neuron.vth) + THRESHOLD_MARGIN)
    tau_mem = dt * 4096.0 / neuron.dv if neuron.dv > 0 else dt * IF_TAU_STEPS
    if neuron.du == 4095:
        return nir.LIF(tau=full(tau_mem), r=full(tau_mem / dt), v_leak=zero, v_threshold=vth, v_reset=zero), bias
    tau_syn = dt * 4096.0 / (neuron.du + 1)
    alpha = (4095 - neuron.du) / 4096.0
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / dt), v_leak=zero,
                       v_threshold=vth, v_reset=zero, w_in=full(tau_syn / dt)), bias * (1.0 - alpha)


def _float_neuron_node(neuron: FloatLIF, shape: tuple[int, ...], dt: float):
    """The NIR ``LIF`` of a float zero-reset population: forward Euler with step ``dt`` is hwsim's update
    ``u <- lam u + I`` (``tau = dt/(1 - lam)``, input gain ``r dt/tau = 1``), firing on ``v > v_threshold``, the
    float32 below ``v_th`` (hwsim's ``u >= v_th`` in float32)."""
    import nir

    full = lambda value: np.full(shape, value, np.float64)  # noqa: E731
    lam = float(neuron.lam)
    tau = dt * IF_TAU_STEPS if lam >= 1.0 else dt / (1.0 - lam)
    threshold = float(np.nextafter(np.float32(neuron.v_th), np.float32(-np.inf)))
    return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=full(threshold),
                   v_reset=full(0.0))


def check_nir_expressible(network: Network) -> None:
    """Raise :class:`NetworkError` naming the first layer NIR's primitives cannot express: ALIF neurons, and a
    float soft reset (NIR's neurons reset to ``v_reset``)."""
    for i, layer in enumerate(network.layers):
        if isinstance(layer.neuron, FloatALIF):
            raise NetworkError(f"layer {i} ({layer.name}): adaptive-threshold (ALIF) neurons have no NIR primitive "
                               f"(NIR's neurons have a fixed threshold); not exported")
        if isinstance(layer.neuron, FloatLIF) and layer.neuron.reset != "zero":
            raise NetworkError(f"layer {i} ({layer.name}): soft reset (subtract v_th) has no NIR form, NIR's neurons "
                               f"reset to v_reset; train with reset='zero' or export the quantised network")


def _synapse_node(layer, in_shape: tuple[int, ...], scale: float, bias: np.ndarray, fixed: bool):
    """The NIR synapse of ``layer`` (weights times ``scale``, Lava's effective dense weights in fixed point) with
    ``bias`` in its node, and the layer's hwsim metadata entries for it."""
    import nir

    if isinstance(layer, (Dense, Recurrent)):
        weight = _effective_dense(layer.weight) if fixed else layer.weight
        return nir.Affine(weight=weight.astype(np.float64) * scale, bias=bias), (
            {"weight": layer.weight.tolist()} if fixed else {})
    if isinstance(layer, Conv2d):
        node = nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=layer.weight.astype(np.float64) * scale,
                          stride=layer.stride, padding=layer.padding, dilation=1, groups=1, bias=bias)
        return node, {"stride": layer.stride, "padding": layer.padding} | (
            {"weight": layer.weight.tolist()} if fixed else {})
    c = in_shape[0]
    kernel = np.zeros((c, c, layer.kernel, layer.kernel))
    kernel[np.arange(c), np.arange(c)] = float(layer.weight) * scale
    node = nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=kernel, stride=layer.stride, padding=0, dilation=1,
                      groups=1, bias=bias)
    return node, {"kernel": layer.kernel, "stride": layer.stride,
                  "weight": int(layer.weight) if fixed else float(layer.weight)}


def _layer_nodes(layer, in_shape, out_shape, dt: float, fixed: bool) -> tuple[object, object, dict]:
    """``(synapse, neuron, hwsim metadata)`` of one neuron layer."""
    scale = 2.0 ** layer.weight_exp if fixed else 1.0
    n_channels = layer.weight.shape[0] if isinstance(layer, (Dense, Recurrent, Conv2d)) else in_shape[0]
    shape = tuple(int(s) for s in out_shape)
    meta = {"kind": layer.kind, "name": layer.name}
    if fixed:
        neuron: LoihiLIF = layer.neuron
        bias = np.zeros(n_channels) if layer.bias is None else (
            layer.bias.astype(np.float64) * 2.0**neuron.bias_exp / 64.0)
        lif, synapse_bias = _neuron_node(neuron, shape, bias, dt)
        meta.update(weight_exp=int(layer.weight_exp), du=neuron.du, dv=neuron.dv, vth=neuron.vth,
                    bias_exp=neuron.bias_exp)
        if layer.bias is not None:
            meta["bias"] = layer.bias.tolist()
    else:
        lif = _float_neuron_node(layer.neuron, shape, dt)
        synapse_bias = np.zeros(n_channels) if layer.bias is None else layer.bias.astype(np.float64)
        meta["neuron"] = {"type": type(layer.neuron).__name__, **asdict(layer.neuron)}
    synapse, extra = _synapse_node(layer, in_shape, scale, synapse_bias, fixed)
    meta.update(extra)
    if isinstance(layer, Recurrent) and fixed:
        meta["recurrent"] = layer.recurrent.tolist()
    return synapse, lif, meta


def to_nir(network: Network, dt: float = DT):
    """The NIR graph of ``network``, fixed point or float with zero reset (units, delays and recurrent loops in
    the module docstring); a layer NIR cannot express is one :class:`NetworkError` line naming it."""
    import nir

    check_nir_expressible(network)
    fixed = network.mode == "fixed"
    nodes = {"input": nir.Input(input_type={"input": np.array(network.input_shape)})}
    edges, previous = [], "input"
    for i, (layer, (in_shape, out_shape)) in enumerate(zip(network.layers, network.layer_shapes())):
        name = f"{i}_{node_key(layer.name)}"  # an HDF5 group name: no '/', NUL or control character
        if isinstance(layer, Flatten):
            nodes[name] = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1,
                                      metadata={"hwsim": json.dumps({"kind": "flatten", "name": layer.name})})
            edges.append((previous, name))
            previous = name
            continue
        synapse, lif, meta = _layer_nodes(layer, in_shape, out_shape, dt, fixed)
        synapse.metadata = {"hwsim": json.dumps(meta)}
        lif.metadata = {"hwsim": json.dumps({"kind": "neuron"}), "dt": dt}
        nodes[f"{name}.synapse"], nodes[f"{name}.lif"] = synapse, lif
        edges += [(previous, f"{name}.synapse"), (f"{name}.synapse", f"{name}.lif")]
        if isinstance(layer, Recurrent):
            weight = _effective_dense(layer.recurrent) * 2.0**layer.weight_exp if fixed else layer.recurrent
            nodes[f"{name}.recurrent"] = nir.Linear(weight=weight.astype(np.float64), metadata={
                "hwsim": json.dumps({"kind": "recurrent_synapse"})})
            edges += [(f"{name}.lif", f"{name}.recurrent"), (f"{name}.recurrent", f"{name}.lif")]
        previous = f"{name}.lif"
    nodes["output"] = nir.Output(output_type={"output": np.array(network.output_shape)})
    edges.append((previous, "output"))
    header = {"format": "hwsim-network", "input_shape": list(network.input_shape), "mode": network.mode}
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False, metadata={
        "hwsim": json.dumps(header), "dt": dt, "delay_steps_per_synapse": 1 if fixed else 0,
        "recurrent_delay_steps": 1, "units": UNITS[network.mode], "timing": TIMING[network.mode]})


def write(network: Network, path: str | Path, dt: float = DT) -> Path:
    """Write ``network`` (fixed point, or float with zero reset) as a NIR HDF5 file; returns the path. The file is
    built in memory and written atomically (:func:`hwsim.formats.bounds.hdf5_image`): a full disk is one
    :class:`~hwsim.errors.WriteError` line naming ``path``, and ``path`` keeps its old content."""
    import nir

    from hwsim.safeio import atomic_write

    path = Path(path)
    graph = to_nir(network, dt)
    atomic_write(path, hdf5_image(lambda buffer: nir.write(buffer, graph)))
    return path
