"""NIR (Neuromorphic Intermediate Representation) out and in.

**Out** (:func:`write`, :func:`to_nir`): a fixed-point network in NIR's own units, so that a reader using only
NIR's published node equations (no hwsim metadata) reproduces Lava's spikes. The unit of every value is one
unit of synaptic input: the integer that Lava's ``Dense``/``Conv`` sends to the neuron (weights times
``2**weight_exp``), so Lava's internal ``<< 6`` disappears. Per neuron layer:

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
**Delay**: Lava's every connection adds one step (layer k's spikes at step t move layer k+1 at t+1; layer 0
sees input column t at step t+1). NIR has no delay, so a delay-free reader of this graph is k+1 steps ahead at
layer k; with a one-step delay inserted before every synapse node it equals Lava step for step. The graph
metadata says so (``delay_steps_per_synapse = 1``). Exact integers ride in ``metadata["hwsim"]`` so that
:func:`read` rebuilds the identical fixed-point network.

**In** (:func:`read`): hwsim's own files come back exactly; any other feed-forward graph of ``Affine``/
``Linear``, ``Conv2d``, ``SumPool2d``/``AvgPool2d``, ``Flatten`` and ``LIF``/``CubaLIF``/``IF`` nodes becomes a
float network of :class:`~hwsim.sim.network.FloatLIF` neurons, or, when a CubaLIF filters its input (hwsim's
float LIF has no synaptic current), a Loihi fixed-point network if every value is one of Loihi's integers
(hwsim's own export without its metadata) -- see :func:`from_nir`. Refused in one line naming the node:
recurrent edges, branches and merges (skip connections), ``Delay``, ``Conv1d``, ``LI`` and every other node type,
per-neuron parameters, and the pairs of linear nodes without a single-synapse form.
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
# Lava fires on v > vth << 6 with v an integer, i.e. once v reaches vth + 1/64 in synaptic units; a float reader
# fires on v > v_threshold and keeps the fraction of a unit that Lava's decay truncates (0 <= residue, mostly
# below 1/64 unit). A threshold just under one grain above vth splits the two cases where Lava does.
THRESHOLD_MARGIN = 63 / 4096
IF_TAU_STEPS = 2.0**50  # tau of a neuron without leak (dv = 0): a LIF whose leak is below float precision


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
        lif, synapse_bias = _neuron_node(neuron, shape, bias, dt)
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
    from another framework (or hwsim's without its metadata) goes through :func:`from_nir` (``dt`` overrides the
    graph's, else 1e-4 s). Errors are one :class:`NetworkError` line naming the file and the node."""
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


def _cycle(graph) -> tuple[str, str] | None:
    """An edge that closes a cycle (a recurrent connection), or None."""
    following: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        following.setdefault(src, []).append(dst)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in graph.nodes:
        if root in state:
            continue
        stack = [(root, iter(following.get(root, [])))]
        state[root] = 1
        while stack:
            node, successors = stack[-1]
            nxt = next(successors, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return node, nxt
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(following.get(nxt, []))))
    return None


def _chain(graph) -> list[str]:
    """Node names from the input node to the output node; a cycle, branch or merge is an error naming it."""
    import nir

    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NetworkError(f"expected one Input and one Output node, found {len(inputs)} and {len(outputs)}; "
                           f"hwsim runs single-input feed-forward chains")
    for src, dst in graph.edges:
        if src not in graph.nodes or dst not in graph.nodes:
            raise NetworkError(f"edge {src} -> {dst} names a node that is not in the graph")
    closing = _cycle(graph)
    if closing is not None:
        raise NetworkError(f"recurrent edge '{closing[0]}' -> '{closing[1]}' (a cycle); hwsim's network description "
                           f"has no recurrent layers")
    following: dict[str, str] = {}
    incoming: dict[str, int] = {}
    for src, dst in graph.edges:
        if src in following:
            raise NetworkError(f"node '{src}' feeds both '{following[src]}' and '{dst}' (a branch, e.g. a skip "
                               f"connection); hwsim runs feed-forward chains only")
        following[src] = dst
        incoming[dst] = incoming.get(dst, 0) + 1
    order, node, seen = [], following.get(inputs[0]), {inputs[0]}
    while node is not None and node != outputs[0]:
        if incoming.get(node, 0) > 1:
            raise NetworkError(f"node '{node}' has {incoming[node]} inputs (a merge, e.g. a skip connection); hwsim "
                               f"runs feed-forward chains only")
        seen.add(node)
        order.append(node)
        node = following.get(node)
    if node is None:
        raise NetworkError(f"no path from '{inputs[0]}' to '{outputs[0]}'")
    unused = set(graph.nodes) - seen - {outputs[0]}
    if unused:
        name = sorted(unused)[0]
        raise NetworkError(f"node '{name}' is not on the input-output chain (dangling); hwsim runs feed-forward "
                           f"chains only")
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


def _graph_dt(graph, dt: float | None) -> float:
    if dt is not None:
        return float(dt)
    raw = (graph.metadata or {}).get("dt", DT)
    return float(np.asarray(raw).ravel()[0])


def _synaptic_current(graph, dt: float) -> str | None:
    """The first CubaLIF node that filters its input (tau_syn != dt; hwsim's float LIF has no synaptic current)."""
    import nir

    return next((name for name, node in graph.nodes.items() if isinstance(node, nir.CubaLIF) and not np.allclose(
        np.asarray(node.tau_syn, np.float64), dt, rtol=1e-9, atol=0.0)), None)


def from_nir(graph, dt: float | None = None) -> Network:
    """A :class:`Network` from a feed-forward NIR graph of another framework (or hwsim's without its metadata).

    Each ``synapse -> neuron`` pair becomes one hwsim layer. Float (the default): a :class:`FloatLIF` (zero
    reset), by forward Euler with step ``dt`` (the graph's ``metadata['dt']``, else 1e-4 s): ``lam = 1 -
    dt/tau``, and the input gain (``r*dt/tau``; CubaLIF also ``w_in*dt/tau_syn``) and constant drive
    (``v_leak*dt/tau``) fold into the weights and bias. NIR fires on ``v > v_threshold``, hwsim on ``u >= v_th``:
    the threshold is the next float32 above NIR's, which is the same rule in float32.

    A graph with a synaptic current (a CubaLIF with ``tau_syn != dt``) has no float form in hwsim; it is read in
    Loihi fixed point (:func:`_fixed_layer`) when every value is one of Loihi's integers, else refused.

    Linear nodes merge into the synapse of the next neuron where the composition is exact: ``Conv2d -> pool``,
    ``pool -> Conv2d`` and ``pool [-> Flatten] -> Affine/Linear`` (a pooling layer after the neuron, as in
    spikingjelly's usual ``LIF -> AvgPool -> Conv``). Refused with the node and parameter named: non-uniform
    neuron parameters, ``v_reset != 0``, grouped/dilated/asymmetric convolutions, padded pooling, a synapse node
    without a neuron after it, and every node type outside :data:`SUPPORTED`.
    """
    dt = _graph_dt(graph, dt)
    cuba = _synaptic_current(graph, dt)
    if cuba is None:
        return _build(graph, dt, _layer)
    try:
        return _build(graph, dt, _fixed_layer)
    except NetworkError as err:
        tau_syn = float(np.asarray(graph.nodes[cuba].tau_syn, np.float64).ravel()[0])
        raise NetworkError(f"node '{cuba}' (CubaLIF): tau_syn = {tau_syn:g} s != dt = {dt:g} s needs a synaptic "
                           f"current, which hwsim's float LIF lacks, and the graph is not in Loihi fixed point "
                           f"({err})") from None


def _build(graph, dt: float, make_layer) -> Network:
    """Walk the chain, pairing each synapse (after merging linear nodes) with its neuron; ``make_layer(syn_name,
    syn, neuron_name, neuron, in_shape, dt)`` builds the hwsim layer."""
    import nir

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
            if pending is None:
                pending = (name, node)
            else:  # the merged synapse keeps the name of its Conv2d/Affine node
                merged = _merge(pending, name, node, shape)
                pending = (name if isinstance(pending[1], (nir.SumPool2d, nir.AvgPool2d, _Flattened)) else pending[0],
                           merged)
        elif isinstance(node, nir.Flatten):
            if pending is not None and not isinstance(pending[1], (nir.SumPool2d, nir.AvgPool2d)):
                raise NetworkError(f"node '{name}' (Flatten) sits between synapse '{pending[0]}' and its neuron")
            if pending is not None:  # pool -> Flatten -> Affine: the merged Affine reads the unpooled input
                pending = (pending[0], _Flattened(pending[1]))
            if len(shape) > 1 and pending is None:
                layers.append(Flatten(name=name))
                shape = (int(np.prod(shape)),)
        elif isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
            if pending is None:
                raise NetworkError(f"node '{name}' ({kind}) has no synapse node before it")
            if isinstance(pending[1], _Flattened):
                raise NetworkError(f"node '{pending[0]}': a pooling node followed by Flatten needs an Affine or "
                                   f"Linear node before the neuron '{name}'")
            syn = pending[1]
            if isinstance(syn, (nir.Affine, nir.Linear)) and len(shape) > 1:
                layers.append(Flatten(name=f"{pending[0]}.flatten"))  # a merged pool -> Flatten -> Affine
                shape = (int(np.prod(shape)),)
            layer = make_layer(pending[0], syn, name, node, shape, dt)
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


class _Flattened:
    """A pooling node followed by Flatten, waiting for the Affine/Linear node it merges into."""

    def __init__(self, pool):
        self.pool = pool


def _merge(pending: tuple[str, object], name: str, node, shape: tuple[int, ...]):
    """The one synapse node equal to ``pending`` followed by ``node`` (both linear); ``shape`` is the input of
    ``pending``. A pair without an exact single-node form is refused naming both."""
    import nir

    first_name, first = pending
    pools = (nir.SumPool2d, nir.AvgPool2d)
    if isinstance(first, nir.Conv2d) and isinstance(node, pools):
        return _conv_then_pool(first_name, first, name, node)
    if isinstance(first, pools) and isinstance(node, nir.Conv2d):
        return _pool_then_conv(first_name, first, name, node, shape)
    if isinstance(first, _Flattened) and isinstance(node, (nir.Affine, nir.Linear)):
        return _pool_then_dense(first_name, first.pool, name, node, shape)
    raise NetworkError(f"node '{name}' ({type(node).__name__}) follows synapse node '{first_name}' "
                       f"({type(first).__name__}) with no neuron in between; hwsim merges Conv2d -> pool, pool -> "
                       f"Conv2d and pool -> Flatten -> Affine, and needs a neuron after every other synapse")


def _pool_geometry(name: str, pool) -> tuple[int, int, float]:
    """``(kernel, stride, tap)`` of an unpadded sum/average pooling node."""
    kind = type(pool).__name__
    kp, sp = _pair(pool.kernel_size, name, kind, "kernel_size"), _pair(pool.stride, name, kind, "stride")
    if _pair(pool.padding, name, kind, "padding") != 0:
        raise NetworkError(f"node '{name}' ({kind}): padded pooling has no hwsim form")
    return kp, sp, (1.0 / (kp * kp) if kind == "AvgPool2d" else 1.0)


def _pool_then_conv(pool_name: str, pool, conv_name: str, conv, shape: tuple[int, ...]):
    """One Conv2d equal to ``pool`` then ``conv`` on input ``shape`` (C, H, W): kernel ``sp*(k-1) + kp``,
    stride ``s*sp``, padding ``p*sp``; exact when the conv is unpadded or the pool windows tile the input."""
    import nir

    kp, sp, tap = _pool_geometry(pool_name, pool)
    s, p = _pair(conv.stride, conv_name, "Conv2d", "stride"), _pair(conv.padding, conv_name, "Conv2d", "padding")
    if _pair(conv.dilation, conv_name, "Conv2d", "dilation") != 1 or int(np.asarray(conv.groups)) != 1:
        raise NetworkError(f"node '{conv_name}' (Conv2d): only an ungrouped, undilated Conv2d merges with the "
                           f"pooling node '{pool_name}' before it")
    if len(shape) != 3:
        raise NetworkError(f"node '{pool_name}': pooling needs a (C, H, W) input, got {shape}")
    rest = [(size - kp) % sp for size in shape[1:]]
    if p and any(kp + r > sp for r in rest):
        raise NetworkError(f"node '{conv_name}' (Conv2d): its padding {p} after the pooling node '{pool_name}' "
                           f"(kernel {kp}, stride {sp}) on input {shape} has no single-convolution form")
    weight = np.asarray(conv.weight, np.float64)
    o, c, k, _ = weight.shape
    merged = np.zeros((o, c, sp * (k - 1) + kp, sp * (k - 1) + kp))
    for a in range(k):
        for b in range(k):
            merged[:, :, a * sp: a * sp + kp, b * sp: b * sp + kp] += weight[:, :, a: a + 1, b: b + 1] * tap
    return nir.Conv2d(input_shape=None, weight=merged, stride=s * sp, padding=p * sp, dilation=1, groups=1,
                      bias=np.asarray(conv.bias, np.float64) * np.ones(o))


def _pool_then_dense(pool_name: str, pool, dense_name: str, dense, shape: tuple[int, ...]):
    """One Affine equal to ``pool`` then (flattened) ``dense`` on input ``shape`` (C, H, W); it reads the
    unpooled input flattened channels first."""
    import nir

    kp, sp, tap = _pool_geometry(pool_name, pool)
    if len(shape) != 3:
        raise NetworkError(f"node '{pool_name}': pooling needs a (C, H, W) input, got {shape}")
    c, h, w = shape
    ho, wo = (h - kp) // sp + 1, (w - kp) // sp + 1
    weight = np.asarray(dense.weight, np.float64)
    if weight.ndim != 2 or weight.shape[1] != c * ho * wo:
        raise NetworkError(f"node '{dense_name}': weight {weight.shape} does not take the {c}x{ho}x{wo} output of "
                           f"pooling node '{pool_name}'")
    pooled = weight.reshape(-1, c, ho, wo) * tap
    merged = np.zeros((weight.shape[0], c, h, w))
    for u in range(kp):
        for v in range(kp):
            merged[:, :, u: u + sp * (ho - 1) + 1: sp, v: v + sp * (wo - 1) + 1: sp] += pooled
    bias = np.asarray(dense.bias, np.float64) if isinstance(dense, nir.Affine) else np.zeros(weight.shape[0])
    return nir.Affine(weight=merged.reshape(weight.shape[0], -1), bias=bias)


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
        stride, padding = _pair(syn.stride, syn_name, "Conv2d", "stride"), _pair(syn.padding, syn_name, "Conv2d",
                                                                                  "padding")
        tap = _channel_diagonal_tap(weight) if padding == 0 and not np.any(gain * bias + per_channel) else None
        if tap is not None:  # sum pooling written as a convolution (hwsim's and netx's export): a pooling layer
            return SumPool2d(weight.shape[2], stride, weight=tap * gain, neuron=lif, name=syn_name)
        return Conv2d(weight * gain, stride=stride, padding=padding, neuron=lif,
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


def _loihi_integer(value: float, name: str, kind: str, field: str, lo: int, hi: int) -> int:
    nearest = int(round(value)) if np.isfinite(value) else None
    if nearest is None or abs(value - nearest) > 1e-6 * max(1.0, abs(value)) or not lo <= nearest <= hi:
        raise NetworkError(f"node '{name}' ({kind}): {field} = {value:.9g} is not a Loihi integer in {lo}..{hi}")
    return nearest


def _fixed_neuron(name: str, node, dt: float) -> tuple[LoihiLIF, float, np.ndarray]:
    """``(neuron without bias_exp, current-to-voltage bias factor 1/(1 - alpha), v_leak drive per neuron in
    synaptic units)`` of a NIR neuron whose values are Loihi's integers (hwsim's own export: ``tau = dt*4096/dv``,
    ``tau_syn = dt*4096/(du+1)``, gains 1, threshold ``vth`` plus under 1/64)."""
    import nir

    kind = type(node).__name__
    if _uniform(name, kind, "v_reset", node.v_reset if node.v_reset is not None else 0.0) != 0.0:
        raise NetworkError(f"node '{name}' ({kind}): v_reset != 0; Loihi resets to 0")
    v_th = _uniform(name, kind, "v_threshold", node.v_threshold)
    vth = int(np.floor(v_th)) if np.isfinite(v_th) else -1
    if not 0 <= vth <= 2**17 - 1 or v_th - vth >= 1 / 64:
        raise NetworkError(f"node '{name}' ({kind}): v_threshold = {v_th:.9g} is not Loihi's (an integer vth up to "
                           f"2**17 - 1, plus less than 1/64)")
    if isinstance(node, nir.IF):
        _loihi_integer(_uniform(name, kind, "r", node.r) * dt, name, kind, "r*dt", 1, 1)
        return LoihiLIF(du=4095, dv=0, vth=vth), 1.0, np.zeros(np.shape(node.v_threshold))
    tau_field = "tau" if isinstance(node, nir.LIF) else "tau_mem"
    tau = _uniform(name, kind, tau_field, getattr(node, tau_field))
    dv = 0 if tau >= dt * 2.0**40 else _loihi_integer(4096 * dt / tau, name, kind, f"4096*dt/{tau_field}", 0, 4095)
    r = _uniform(name, kind, "r", node.r)
    gain = r * dt / tau if np.isfinite(tau) else (1.0 if np.isinf(r) else 0.0)
    _loihi_integer(gain, name, kind, f"r*dt/{tau_field}", 1, 1)  # the input gain must be 1
    drive = np.asarray(node.v_leak, np.float64) * (dt / tau if np.isfinite(tau) else 0.0)
    if isinstance(node, nir.LIF):
        return LoihiLIF(du=4095, dv=dv, vth=vth), 1.0, drive
    tau_syn = _uniform(name, kind, "tau_syn", node.tau_syn)
    du = _loihi_integer(4096 * dt / tau_syn, name, kind, "4096*dt/tau_syn", 1, 4096) - 1
    _loihi_integer(_uniform(name, kind, "w_in", node.w_in) * dt / tau_syn, name, kind, "w_in*dt/tau_syn", 1, 1)
    return LoihiLIF(du=du, dv=dv, vth=vth), 4096.0 / (du + 1), drive


def _bias_mantissa(bias: np.ndarray, name: str) -> tuple[np.ndarray | None, int]:
    """``(mantissa, exponent)`` with ``mantissa << exponent = 64 * bias`` exactly (bias in synaptic units)."""
    if not np.any(bias):
        return None, 0
    target = np.asarray(bias, np.float64) * 64.0
    for exp in range(8):
        mant = target / 2.0**exp
        if np.all(np.abs(mant - np.rint(mant)) <= 1e-6) and np.abs(np.rint(mant)).max() <= 4095:
            return np.rint(mant).astype(np.int32), exp
    raise NetworkError(f"node '{name}': bias {float(bias.ravel()[0]):.9g}... is not a Loihi bias (mantissa of 13 "
                       f"bits << exponent 0..7, in units of 1/64)")


def _integers(weight, name: str, kind: str) -> np.ndarray:
    weight = np.asarray(weight, np.float64)
    if not np.all(np.abs(weight - np.rint(weight)) <= 1e-9):
        raise NetworkError(f"node '{name}' ({kind}): weights are not integers")
    return np.rint(weight).astype(np.int64)


def _fixed_layer(syn_name: str, syn, neuron_name: str, neuron, in_shape, dt: float) -> Layer:
    """One Loihi fixed-point layer from a NIR synapse and neuron whose values are Loihi's integers (weights in
    units of synaptic input; a CubaLIF's synapse bias is a current, ``bias * (1 - alpha)``, read back as Lava's
    voltage bias -- equal once the current has settled, see the module docstring)."""
    import nir

    from hwsim.formats.netx import _dense_weights, _pool_or_conv

    lif, current_to_voltage, drive = _fixed_neuron(neuron_name, neuron, dt)
    syn_kind = type(syn).__name__
    if isinstance(syn, (nir.SumPool2d, nir.AvgPool2d)):
        kp, sp, tap = _pool_geometry(syn_name, syn)
        if tap != 1.0 or np.any(drive):
            raise NetworkError(f"node '{syn_name}' ({syn_kind}): only an unbiased sum pooling has a Loihi form")
        return SumPool2d(kp, sp, weight=1, neuron=lif, name=syn_name)
    weight = _integers(syn.weight, syn_name, syn_kind)
    bias = np.asarray(getattr(syn, "bias", 0.0), np.float64) * np.ones(weight.shape[0]) * current_to_voltage
    if isinstance(syn, nir.Conv2d):
        if int(np.asarray(syn.groups)) != 1 or _pair(syn.dilation, syn_name, syn_kind, "dilation") != 1:
            raise NetworkError(f"node '{syn_name}' (Conv2d): grouped or dilated; hwsim convolutions are neither")
        mant, exp = _bias_mantissa(bias + _per_channel(drive, weight.shape[0], neuron_name, "v_leak"), syn_name)
        layer = _pool_or_conv(weight, _pair(syn.stride, syn_name, syn_kind, "stride"),
                              _pair(syn.padding, syn_name, syn_kind, "padding"),
                              LoihiLIF(lif.du, lif.dv, lif.vth, exp), mant, f"node '{syn_name}'")
    else:
        per_neuron = bias + (drive.reshape(-1) if drive.size == weight.shape[0] else drive.ravel()[:1])
        mant, exp = _bias_mantissa(per_neuron, syn_name)
        w, weight_exp = _dense_weights(weight, f"node '{syn_name}'")
        layer = Dense(w, neuron=LoihiLIF(lif.du, lif.dv, lif.vth, exp), bias=mant, weight_exp=weight_exp)
    layer.name = syn_name
    return layer


def _conv_then_pool(conv_name: str, conv, pool_name: str, pool):
    """One Conv2d equal to ``conv`` followed by sum/average ``pool`` (both linear, so exact): kernel
    ``s*(kp-1) + k``, stride ``s*sp``, the conv's padding; the bias summed over the window (kept for average)."""
    import nir

    s = _pair(conv.stride, conv_name, "Conv2d", "stride")
    if _pair(conv.dilation, conv_name, "Conv2d", "dilation") != 1 or int(np.asarray(conv.groups)) != 1:
        raise NetworkError(f"node '{conv_name}' (Conv2d): only an ungrouped, undilated Conv2d merges with the "
                           f"pooling node '{pool_name}' after it")
    kp, sp, tap = _pool_geometry(pool_name, pool)
    weight = np.asarray(conv.weight, np.float64)
    o, c, k, _ = weight.shape
    merged = np.zeros((o, c, s * (kp - 1) + k, s * (kp - 1) + k))
    for i in range(kp):
        for j in range(kp):
            merged[:, :, i * s: i * s + k, j * s: j * s + k] += weight * tap
    bias = np.asarray(conv.bias, np.float64) * np.ones(o) * (tap * kp * kp)
    return nir.Conv2d(input_shape=None, weight=merged, stride=s * sp, padding=conv.padding, dilation=1, groups=1,
                      bias=bias)


def _channel_diagonal_tap(weight: np.ndarray) -> float | None:
    """The tap of a convolution that sums each channel's window alone with one weight, or None."""
    o, c = weight.shape[:2]
    if o != c:
        return None
    taps = weight[np.arange(c), np.arange(c)]
    off = weight.copy()
    off[np.arange(c), np.arange(c)] = 0
    if np.any(off) or not np.all(taps == taps.flat[0]) or taps.flat[0] == 0:
        return None
    return float(taps.flat[0])


def _per_channel(drive: np.ndarray, channels: int, name: str, kind: str) -> np.ndarray:
    if drive.size <= 1:
        return np.full(channels, float(drive.ravel()[0]) if drive.size else 0.0)
    per = drive.reshape(channels, -1)
    if np.any(per != per[:, :1]):
        raise NetworkError(f"node '{name}' ({kind}): v_leak varies within a channel; hwsim conv bias is per channel")
    return per[:, 0]


def _bias_or_none(bias: np.ndarray) -> np.ndarray | None:
    return None if not np.any(bias) else bias.astype(np.float32)
