"""NIR (Neuromorphic Intermediate Representation) out and in.

**Out** (:func:`write`, :func:`to_nir`): a fixed-point network in NIR's own units, so that a reader using only
NIR's published node equations (no hwsim metadata) reproduces Lava's spikes. The unit of every value is one
unit of synaptic input: the integer that Lava's ``Dense``/``Conv`` sends to the neuron (weights times
``2**weight_exp``), so Lava's internal ``<< 6`` disappears. Per neuron layer:

* the synapse: ``Affine`` (Lava's effective dense weights, sign-mode bit included, times ``2**weight_exp``;
  ``bias`` = ``(bias_mant << bias_exp) / 64`` per neuron), ``Conv2d`` (same, bias per channel) or, for sum
  pooling, a channel-diagonal ``Conv2d``;
* the neuron, time constants in seconds with ``dt`` (graph metadata ``dt``, default 1e-4 s, the value snnTorch
  and spikingjelly assume): du = 4095 (no current memory) and dv > 0 -> ``LIF(tau = dt*4096/dv, r = tau/dt,
  v_leak = 0)``; du = 4095 and dv = 0 -> ``IF(r = 1/dt)``; otherwise ``CubaLIF(tau_syn = dt*4096/(du+1),
  tau_mem = dt*4096/dv, r = tau_mem/dt, w_in = tau_syn/dt)``, its bias in ``v_leak = bias * tau_mem/dt``
  (the synaptic filter would smooth an Affine bias); ``v_threshold = vth``; ``v_reset = 0``; spike iff
  ``v > v_threshold`` (NIR's rule and Lava's).

Forward-Euler with step dt gives exactly Lava's update order (current first, then voltage, then threshold and
reset), apart from Lava's integer truncation of the decays (below one unit of v's 1/64 grain per step).
**Delay**: Lava's every connection adds one step (layer k's spikes at step t move layer k+1 at t+1; layer 0
sees input column t at step t+1). NIR has no delay, so a delay-free reader of this graph is k+1 steps ahead at
layer k; with a one-step delay inserted before every synapse node it equals Lava step for step. The graph
metadata says so (``delay_steps_per_synapse = 1``). Exact integers ride in ``metadata["hwsim"]`` so that
:func:`read` rebuilds the identical fixed-point network.

**In** (:func:`read`): hwsim's own files come back exactly; any other feed-forward graph of ``Affine``/
``Linear``, ``Conv2d``, ``SumPool2d``/``AvgPool2d``, ``Flatten`` and ``LIF``/``CubaLIF``/``IF`` nodes becomes a
float network of :class:`~hwsim.sim.network.FloatLIF` neurons (see :func:`from_nir`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwsim.sim.network import (
    Conv2d,
    Dense,
    Flatten,
    FloatLIF,
    Layer,
    LoihiLIF,
    Network,
    NetworkError,
    SumPool2d,
)

DT = 1e-4  # seconds per step written into exported graphs (snnTorch's and spikingjelly's default)


# ---------------------------------------------------------------------------------------------------------
# Out
# ---------------------------------------------------------------------------------------------------------
def _effective_dense(weight: np.ndarray) -> np.ndarray:
    """The dense weights Lava really applies (mixed signs drop the lowest bit), as integers."""
    w = weight.astype(np.int64)
    if w.min(initial=0) < 0 < w.max(initial=0):
        w = (w >> 1) << 1
    return w


def _neuron_node(neuron: LoihiLIF, shape: tuple[int, ...], bias: np.ndarray, dt: float):
    """The NIR neuron for one fixed-point population (bias in synaptic units, per neuron, shape ``shape``);
    returns ``(node, bias_in_synapse)``: whether the bias belongs to the synapse node."""
    import nir

    full = lambda value: np.full(shape, value, np.float64)  # noqa: E731
    zero, vth = full(0.0), full(float(neuron.vth))
    if neuron.du == 4095 and neuron.dv > 0:
        tau = dt * 4096.0 / neuron.dv
        return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=zero, v_threshold=vth, v_reset=zero), True
    if neuron.du == 4095:
        return nir.IF(r=full(1.0 / dt), v_threshold=vth, v_reset=zero), True
    tau_syn = dt * 4096.0 / (neuron.du + 1)
    tau_mem = dt * 4096.0 / neuron.dv if neuron.dv > 0 else np.inf
    if np.any(bias != 0) and neuron.dv == 0:
        raise NetworkError("a biased neuron with current memory (du < 4095) and no leak (dv = 0) has no exact NIR "
                           "form: an Affine bias would be smoothed by the synaptic filter, and v_leak needs dv > 0")
    v_leak = bias.reshape(shape) * (tau_mem / dt) if neuron.dv > 0 else zero
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / dt), v_leak=v_leak,
                       v_threshold=vth, v_reset=zero, w_in=full(tau_syn / dt)), False


def to_nir(network: Network, dt: float = DT):
    """The NIR graph of a fixed-point ``network`` (units and delay in the module docstring)."""
    import nir

    if network.mode != "fixed":
        raise NetworkError("NIR export takes a fixed-point network; quantise the float network first")
    nodes = {"input": nir.Input(input_type={"input": np.array(network.input_shape)})}
    edges, previous = [], "input"
    for i, (layer, (in_shape, out_shape)) in enumerate(zip(network.layers, network.layer_shapes())):
        name = f"{i}_{layer.name}"
        if isinstance(layer, Flatten):
            nodes[name] = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1,
                                      metadata={"hwsim": json.dumps({"kind": "flatten", "name": layer.name})})
            edges.append((previous, name))
            previous = name
            continue
        neuron: LoihiLIF = layer.neuron
        scale = 2.0 ** layer.weight_exp
        meta = {"kind": layer.kind, "name": layer.name, "weight_exp": int(layer.weight_exp),
                "du": neuron.du, "dv": neuron.dv, "vth": neuron.vth, "bias_exp": neuron.bias_exp}
        n_channels = layer.weight.shape[0] if isinstance(layer, (Dense, Conv2d)) else in_shape[0]
        bias = np.zeros(n_channels) if layer.bias is None else (
            layer.bias.astype(np.float64) * 2.0**neuron.bias_exp / 64.0)
        shape = tuple(int(s) for s in out_shape)
        per_neuron = np.repeat(bias, int(np.prod(shape)) // n_channels)
        try:
            lif, bias_in_synapse = _neuron_node(neuron, shape, per_neuron, dt)
        except NetworkError as err:
            raise NetworkError(f"layer {i} ({layer.name}): {err}") from None
        synapse_bias = bias if bias_in_synapse else np.zeros_like(bias)
        if isinstance(layer, Dense):
            synapse = nir.Affine(weight=_effective_dense(layer.weight).astype(np.float64) * scale, bias=synapse_bias)
            meta["weight"] = layer.weight.tolist()
        elif isinstance(layer, Conv2d):
            synapse = nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=layer.weight.astype(np.float64) * scale,
                                 stride=layer.stride, padding=layer.padding, dilation=1, groups=1, bias=synapse_bias)
            meta.update(weight=layer.weight.tolist(), stride=layer.stride, padding=layer.padding)
        else:
            c = in_shape[0]
            kernel = np.zeros((c, c, layer.kernel, layer.kernel))
            kernel[np.arange(c), np.arange(c)] = float(layer.weight) * scale
            synapse = nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=kernel, stride=layer.stride, padding=0,
                                 dilation=1, groups=1, bias=synapse_bias)
            meta.update(kernel=layer.kernel, stride=layer.stride, weight=int(layer.weight))
        if layer.bias is not None:
            meta["bias"] = layer.bias.tolist()
        synapse.metadata = {"hwsim": json.dumps(meta)}
        lif.metadata = {"hwsim": json.dumps({"kind": "neuron"}), "dt": dt}
        nodes[f"{name}.synapse"], nodes[f"{name}.lif"] = synapse, lif
        edges += [(previous, f"{name}.synapse"), (f"{name}.synapse", f"{name}.lif")]
        previous = f"{name}.lif"
    nodes["output"] = nir.Output(output_type={"output": np.array(network.output_shape)})
    edges.append((previous, "output"))
    header = {"format": "hwsim-network", "input_shape": list(network.input_shape)}
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False, metadata={
        "hwsim": json.dumps(header), "dt": dt, "delay_steps_per_synapse": 1,
        "units": "synaptic input (Lava's a, before its << 6); spike iff v > v_threshold; reset to 0",
        "timing": "Lava adds one step per connection: insert a one-step delay before every synapse node to "
                  "reproduce Lava/hwsim fixed spikes step for step; a delay-free reader is k+1 steps ahead at "
                  "neuron layer k"})


def write(network: Network, path: str | Path, dt: float = DT) -> Path:
    """Write ``network`` (fixed point) as a NIR HDF5 file; returns the path."""
    import nir

    path = Path(path)
    nir.write(path, to_nir(network, dt))
    return path


# ---------------------------------------------------------------------------------------------------------
# In
# ---------------------------------------------------------------------------------------------------------
SUPPORTED = "Affine, Linear, Conv2d, SumPool2d, AvgPool2d, Flatten, LIF, CubaLIF, IF (plus Input, Output)"


def read(path: str | Path, dt: float | None = None) -> Network:
    """A :class:`Network` from a NIR file: hwsim's own export rebuilds the exact fixed-point network; a graph
    from another framework becomes a float network (:func:`from_nir`; ``dt`` overrides the graph's, else
    1e-4 s). Errors are one :class:`NetworkError` line naming the file and the node."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"{path}: no such NIR file")
    try:
        graph = nir.read(path)
    except Exception as err:  # h5py and nir raise many types
        raise NetworkError(f"{path}: not a readable NIR file ({type(err).__name__}: {err})") from None
    try:
        if _is_hwsim(graph) and dt is None:
            return _read_hwsim(graph)
        return from_nir(graph, dt)
    except NetworkError as err:
        raise NetworkError(f"{path}: {err}") from None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _hwsim_meta(node) -> dict | None:
    raw = (getattr(node, "metadata", None) or {}).get("hwsim")
    if raw is None:
        return None
    try:
        return json.loads(_text(raw))
    except ValueError:
        return None


def _is_hwsim(graph) -> bool:
    header = _hwsim_meta(graph)
    if not header or header.get("format") != "hwsim-network":
        return False
    return all(_hwsim_meta(graph.nodes[n]) is not None for n in _chain(graph))


def _read_hwsim(graph) -> Network:
    header, layers = _hwsim_meta(graph), []
    for name in _chain(graph):
        meta = _hwsim_meta(graph.nodes[name])
        kind = meta["kind"]
        if kind in ("lif", "neuron"):
            continue
        if kind == "flatten":
            layers.append(Flatten(name=meta["name"]))
            continue
        neuron = LoihiLIF(du=meta["du"], dv=meta["dv"], vth=meta["vth"], bias_exp=meta["bias_exp"])
        bias = None if "bias" not in meta else np.array(meta["bias"], np.int32)
        common = {"neuron": neuron, "weight_exp": meta["weight_exp"], "name": meta["name"]}
        if kind == "dense":
            layers.append(Dense(np.array(meta["weight"], np.int32), bias=bias, **common))
        elif kind == "conv2d":
            layers.append(Conv2d(np.array(meta["weight"], np.int32), stride=meta["stride"], padding=meta["padding"],
                                 bias=bias, **common))
        else:
            layers.append(SumPool2d(meta["kernel"], meta["stride"], weight=meta["weight"], **common))
    return Network(tuple(header["input_shape"]), layers)


def _chain(graph) -> list[str]:
    """Node names from the input node to the output node; a branch, merge or cycle is an error."""
    import nir

    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NetworkError(f"expected one Input and one Output node, found {len(inputs)} and {len(outputs)}; "
                           f"hwsim runs single-input feed-forward chains")
    following: dict[str, str] = {}
    incoming: dict[str, int] = {}
    for src, dst in graph.edges:
        if src not in graph.nodes or dst not in graph.nodes:
            raise NetworkError(f"edge {src} -> {dst} names a node that is not in the graph")
        if src in following:
            raise NetworkError(f"node '{src}' feeds both '{following[src]}' and '{dst}'; hwsim runs feed-forward "
                               f"chains only (no branches)")
        following[src] = dst
        incoming[dst] = incoming.get(dst, 0) + 1
    order, node, seen = [], following.get(inputs[0]), {inputs[0]}
    while node is not None and node != outputs[0]:
        if node in seen:
            raise NetworkError(f"recurrent edge into node '{node}'; hwsim runs feed-forward networks only")
        if incoming.get(node, 0) > 1:
            raise NetworkError(f"node '{node}' has {incoming[node]} inputs (a merge or recurrent edge); hwsim runs "
                               f"feed-forward chains only")
        seen.add(node)
        order.append(node)
        node = following.get(node)
    if node is None:
        raise NetworkError(f"no path from '{inputs[0]}' to '{outputs[0]}'")
    unused = set(graph.nodes) - seen - {outputs[0]}
    if unused:
        name = sorted(unused)[0]
        raise NetworkError(f"node '{name}' is not on the input-output chain (recurrent or dangling); hwsim runs "
                           f"feed-forward chains only")
    return order


def _uniform(node_name: str, kind: str, field: str, value) -> float:
    values = np.unique(np.asarray(value, np.float64))
    if values.size != 1:
        raise NetworkError(f"node '{node_name}' ({kind}): {field} differs between neurons ({values.size} values); "
                           f"hwsim's FloatLIF takes one value per layer")
    return float(values[0])


def _neuron(name: str, node, dt: float) -> tuple[float, float, float, np.ndarray]:
    """``(lam, input gain, threshold, constant drive per neuron)`` of a NIR neuron node under forward Euler
    with step ``dt``: ``v <- lam*v + gain*I + drive``, spike iff ``v > threshold``, reset to 0."""
    import nir

    kind = type(node).__name__
    v_th = _uniform(name, kind, "v_threshold", node.v_threshold)
    v_reset = _uniform(name, kind, "v_reset", node.v_reset if node.v_reset is not None else 0.0)
    if v_reset != 0.0:
        raise NetworkError(f"node '{name}' ({kind}): v_reset = {v_reset}; hwsim's FloatLIF resets to 0")
    if isinstance(node, nir.IF):
        return 1.0, _uniform(name, kind, "r", node.r) * dt, v_th, np.zeros(np.shape(node.v_threshold))
    if isinstance(node, nir.LIF):
        tau, r = _uniform(name, kind, "tau", node.tau), _uniform(name, kind, "r", node.r)
        if not tau >= dt:
            raise NetworkError(f"node '{name}' (LIF): tau = {tau} s is below dt = {dt} s (leak factor < 0)")
        k = dt / tau
        return 1.0 - k, r * k, v_th, np.asarray(node.v_leak, np.float64) * k
    tau_syn = _uniform(name, kind, "tau_syn", node.tau_syn)
    tau_mem, r = _uniform(name, kind, "tau_mem", node.tau_mem), _uniform(name, kind, "r", node.r)
    w_in = _uniform(name, kind, "w_in", node.w_in)
    if not np.isclose(tau_syn, dt, rtol=1e-9, atol=0.0):
        raise NetworkError(f"node '{name}' (CubaLIF): tau_syn = {tau_syn} s; hwsim's FloatLIF has no synaptic "
                           f"current, which is exact only for tau_syn = dt = {dt} s")
    if not tau_mem >= dt:
        raise NetworkError(f"node '{name}' (CubaLIF): tau_mem = {tau_mem} s is below dt = {dt} s")
    k = dt / tau_mem
    gain = w_in * (dt / tau_syn) * (1.0 if np.isinf(tau_mem) and np.isinf(r) else r * k)
    return 1.0 - k, gain, v_th, np.asarray(node.v_leak, np.float64) * (0.0 if np.isinf(tau_mem) else k)


def _pair(value, name: str, kind: str, field: str) -> int:
    values = np.atleast_1d(np.asarray(value))
    if values.dtype.kind not in "iuf" or values.size not in (1, 2) or values.min() != values.max():
        raise NetworkError(f"node '{name}' ({kind}): {field} = {np.asarray(value).tolist()}; hwsim takes one "
                           f"integer for both axes")
    return int(values[0])


def from_nir(graph, dt: float | None = None) -> Network:
    """A float :class:`Network` from a feed-forward NIR graph of another framework.

    Each ``synapse -> neuron`` pair becomes one hwsim layer with a :class:`FloatLIF` (zero reset): forward Euler
    with step ``dt`` (the graph's ``metadata['dt']``, else 1e-4 s) gives ``lam = 1 - dt/tau``, and the input gain
    (``r*dt/tau``; CubaLIF also ``w_in*dt/tau_syn``) and constant drive (``v_leak*dt/tau``) fold into the
    weights and bias. NIR fires on ``v > v_threshold``, hwsim on ``u >= v_th``: the threshold is the next float32
    above NIR's, which is the same rule in float32. Not exact, so refused with the node and parameter named:
    non-uniform neuron parameters, ``v_reset != 0``, CubaLIF with ``tau_syn != dt`` (hwsim has no synaptic
    current), grouped/dilated/asymmetric convolutions, padded pooling, a synapse without a neuron after it.
    """
    import nir

    if dt is None:
        raw = (graph.metadata or {}).get("dt", DT)
        dt = float(np.asarray(raw).ravel()[0])
    order = _chain(graph)
    input_node = next(node for node in graph.nodes.values() if isinstance(node, nir.Input))
    input_shape = tuple(int(s) for s in np.asarray(next(iter(input_node.input_type.values()))).ravel())
    if not input_shape:
        raise NetworkError("the Input node has no shape")
    shape = input_shape
    layers: list[Layer] = []
    pending: tuple[str, object] | None = None
    for name in order:
        node = graph.nodes[name]
        kind = type(node).__name__
        if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)):
            if pending is not None and isinstance(pending[1], nir.Conv2d) and isinstance(
                    node, (nir.SumPool2d, nir.AvgPool2d)):
                pending = (pending[0], _conv_then_pool(pending[0], pending[1], name, node))
                continue
            if pending is not None:
                raise NetworkError(f"node '{name}' ({kind}) follows synapse node '{pending[0]}' with no neuron in "
                                   f"between; hwsim needs a neuron after every synapse (a Conv2d followed by a "
                                   f"pooling node is the one pair it merges)")
            pending = (name, node)
        elif isinstance(node, nir.Flatten):
            if pending is not None:
                raise NetworkError(f"node '{name}' (Flatten) sits between synapse '{pending[0]}' and its neuron")
            if len(shape) > 1:
                layers.append(Flatten(name=name))
                shape = (int(np.prod(shape)),)
        elif isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
            if pending is None:
                raise NetworkError(f"node '{name}' ({kind}) has no synapse node before it")
            layer = _layer(pending[0], pending[1], name, node, shape, dt)
            try:
                shape = layer.out_shape(shape)
            except NetworkError as err:
                raise NetworkError(f"node '{pending[0]}': {err}") from None
            layers.append(layer)
            pending = None
        else:
            raise NetworkError(f"node '{name}' has type {kind}, which hwsim cannot import; supported: {SUPPORTED}")
    if pending is not None:
        raise NetworkError(f"synapse node '{pending[0]}' ends the graph without a neuron; hwsim layers end in "
                           f"neurons")
    if not layers:
        raise NetworkError("the graph has no neuron layer")
    return Network(input_shape, layers)


def _layer(syn_name: str, syn, neuron_name: str, neuron, in_shape, dt: float) -> Layer:
    import nir

    lam, gain, v_th, drive = _neuron(neuron_name, neuron, dt)
    kind = type(neuron).__name__
    if not v_th > 0:
        raise NetworkError(f"node '{neuron_name}' ({kind}): v_threshold = {v_th}; hwsim needs a threshold > 0")
    if not 0.0 <= lam <= 1.0:
        raise NetworkError(f"node '{neuron_name}' ({kind}): leak factor 1 - dt/tau = {lam} is outside [0, 1]")
    if gain <= 0 or not np.isfinite(gain):
        raise NetworkError(f"node '{neuron_name}' ({kind}): input gain {gain} (from r, w_in, tau and dt) must be "
                           f"finite and > 0")
    threshold = float(np.nextafter(np.float32(v_th), np.float32(np.inf)))
    lif = FloatLIF(lam=lam, v_th=threshold, reset="zero")
    drive = np.asarray(drive, np.float64)
    syn_kind = type(syn).__name__
    if isinstance(syn, (nir.Affine, nir.Linear)):
        weight = np.asarray(syn.weight, np.float64)
        bias = np.asarray(syn.bias, np.float64) if isinstance(syn, nir.Affine) else np.zeros(weight.shape[0])
        if weight.ndim != 2:
            raise NetworkError(f"node '{syn_name}' ({syn_kind}): weight must be 2-D, got shape {weight.shape}")
        total = gain * bias + drive.reshape(-1) if drive.size == weight.shape[0] else gain * bias + drive.ravel()[0]
        return Dense(weight * gain, neuron=lif, bias=_bias_or_none(total), name=syn_name)
    if isinstance(syn, nir.Conv2d):
        if int(np.asarray(syn.groups)) != 1:
            raise NetworkError(f"node '{syn_name}' (Conv2d): groups = {syn.groups}; hwsim convolutions are ungrouped")
        if _pair(syn.dilation, syn_name, "Conv2d", "dilation") != 1:
            raise NetworkError(f"node '{syn_name}' (Conv2d): dilation = {np.asarray(syn.dilation).tolist()}; hwsim "
                               f"convolutions are undilated")
        if isinstance(syn.padding, str):
            raise NetworkError(f"node '{syn_name}' (Conv2d): padding = {syn.padding!r}; give it in pixels")
        weight = np.asarray(syn.weight, np.float64)
        if weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
            raise NetworkError(f"node '{syn_name}' (Conv2d): weight must be (out, in, k, k), got {weight.shape}")
        bias = np.asarray(syn.bias, np.float64) * np.ones(weight.shape[0])
        per_channel = _per_channel(drive, weight.shape[0], neuron_name, kind)
        return Conv2d(weight * gain, stride=_pair(syn.stride, syn_name, "Conv2d", "stride"),
                      padding=_pair(syn.padding, syn_name, "Conv2d", "padding"), neuron=lif,
                      bias=_bias_or_none(gain * bias + per_channel), name=syn_name)
    k = _pair(syn.kernel_size, syn_name, syn_kind, "kernel_size")
    if _pair(syn.padding, syn_name, syn_kind, "padding") != 0:
        raise NetworkError(f"node '{syn_name}' ({syn_kind}): padding {np.asarray(syn.padding).tolist()}; hwsim sum "
                           f"pooling has none")
    if np.any(drive != 0):
        raise NetworkError(f"node '{neuron_name}' ({kind}): v_leak after a pooling node; hwsim pooling layers carry "
                           f"no bias")
    tap = gain / (k * k) if isinstance(syn, nir.AvgPool2d) else gain
    return SumPool2d(k, _pair(syn.stride, syn_name, syn_kind, "stride"), weight=tap, neuron=lif, name=syn_name)


def _conv_then_pool(conv_name: str, conv, pool_name: str, pool):
    """One Conv2d equal to ``conv`` followed by sum/average ``pool`` (both linear, so exact): kernel
    ``s*(kp-1) + k``, stride ``s*sp``, the conv's padding; the bias summed over the window (kept for average)."""
    import nir

    s = _pair(conv.stride, conv_name, "Conv2d", "stride")
    if _pair(conv.dilation, conv_name, "Conv2d", "dilation") != 1 or int(np.asarray(conv.groups)) != 1:
        raise NetworkError(f"node '{conv_name}' (Conv2d): only an ungrouped, undilated Conv2d merges with the "
                           f"pooling node '{pool_name}' after it")
    kind = type(pool).__name__
    kp, sp = _pair(pool.kernel_size, pool_name, kind, "kernel_size"), _pair(pool.stride, pool_name, kind, "stride")
    if _pair(pool.padding, pool_name, kind, "padding") != 0:
        raise NetworkError(f"node '{pool_name}' ({kind}): padded pooling has no hwsim form")
    weight = np.asarray(conv.weight, np.float64)
    o, c, k, _ = weight.shape
    tap = 1.0 / (kp * kp) if kind == "AvgPool2d" else 1.0
    merged = np.zeros((o, c, s * (kp - 1) + k, s * (kp - 1) + k))
    for i in range(kp):
        for j in range(kp):
            merged[:, :, i * s: i * s + k, j * s: j * s + k] += weight * tap
    bias = np.asarray(conv.bias, np.float64) * np.ones(o) * (1.0 if kind == "AvgPool2d" else kp * kp)
    return nir.Conv2d(input_shape=None, weight=merged, stride=s * sp, padding=conv.padding, dilation=1, groups=1,
                      bias=bias)


def _per_channel(drive: np.ndarray, channels: int, name: str, kind: str) -> np.ndarray:
    if drive.size <= 1:
        return np.full(channels, float(drive.ravel()[0]) if drive.size else 0.0)
    per = drive.reshape(channels, -1)
    if np.any(per != per[:, :1]):
        raise NetworkError(f"node '{name}' ({kind}): v_leak varies within a channel; hwsim conv bias is per channel")
    return per[:, 0]


def _bias_or_none(bias: np.ndarray) -> np.ndarray | None:
    return None if not np.any(bias) else bias.astype(np.float32)
