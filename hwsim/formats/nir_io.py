"""NIR (Neuromorphic Intermediate Representation) in, and the entry points for out.

**Out** (:func:`write`, :func:`to_nir`, written in :mod:`hwsim.formats.nir_out`): a fixed-point network in NIR's
own units, so that a reader using only NIR's published node equations reproduces Lava's spikes, or a float
network with zero reset as it is; recurrent layers as NIR's recurrent loop (neuron -> ``Linear`` -> the same
neuron); units, delays and what is refused (ALIF, float soft reset) in that module's docstring.

**In** (:func:`read`): hwsim's own files come back exactly; any other graph of ``Affine``/``Linear``, ``Conv2d``,
``SumPool2d``/``AvgPool2d``, ``Flatten`` and ``LIF``/``CubaLIF``/``IF`` nodes, a chain plus recurrent loops (a
neuron's output through one ``Affine``/``Linear`` node back into the same neuron, as snnTorch exports
``RLeaky``/``RSynaptic``; nested sub-graphs are spliced in, :mod:`hwsim.formats.nir_graph`), becomes a float
network of :class:`~hwsim.sim.network.FloatLIF` neurons (a loop: a :class:`~hwsim.sim.network.Recurrent` layer),
or, when a CubaLIF filters its input (hwsim's float LIF has no synaptic current), a Loihi fixed-point network if
every value is one of Loihi's integers (hwsim's own export without its metadata) -- see :func:`from_nir`. Refused
in one line naming the node: other cycles (feedback into a synapse node, through a convolution, across layers),
branches and merges (skip connections), ``Delay``, ``Conv1d``, ``LI`` and every other node type, per-neuron
parameters, and the pairs of linear nodes without a single-synapse form.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwsim.errors import TooLarge, UsageError, printable
from hwsim.formats.nir_graph import Structure, structure
from hwsim.formats.nir_out import DT, to_nir, write  # noqa: F401 (to_nir and write: the API, written there)
from hwsim.sim.network import (
    NEURON_TYPES,
    Conv2d,
    Dense,
    Flatten,
    FloatLIF,
    Layer,
    LoihiLIF,
    Network,
    NetworkError,
    Recurrent,
    SumPool2d,
)

# ---------------------------------------------------------------------------------------------------------
# In
# ---------------------------------------------------------------------------------------------------------
SUPPORTED = "Affine, Linear, Conv2d, SumPool2d, AvgPool2d, Flatten, LIF, CubaLIF, IF (plus Input, Output)"



def _real(value) -> np.ndarray:
    """A NIR parameter as float64, refused in one line unless it holds real numbers (complex values would lose
    their imaginary part silently, objects would not convert)."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise NetworkError(f"a NIR parameter holds {array.dtype} values where real numbers are expected")
    return array.astype(np.float64)

def read(path: str | Path, dt: float | None = None) -> Network:
    """A :class:`Network` from a NIR file: hwsim's own export rebuilds the exact fixed-point network; a graph
    from another framework (or hwsim's without its metadata) goes through :func:`from_nir` (``dt`` overrides the
    graph's, else 1e-4 s). Errors are one :class:`NetworkError` line naming the file and the node.

    Sizes are checked before anything is read (:mod:`hwsim.formats.bounds`): the datasets' declared shapes, the
    hwsim metadata's JSON, the arrays a merge of linear nodes makes and the inputs and neurons the graph declares
    -- each against the memory limit (:class:`~hwsim.errors.TooLarge`, one line naming the file)."""
    import nir

    from hwsim.formats.bounds import NIR_BYTES_PER_VALUE, check_names, check_network_memory, checked_hdf5

    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"{path}: no such NIR file")
    try:
        with checked_hdf5(path, "NIR file", NIR_BYTES_PER_VALUE) as handle:
            try:
                graph = nir.read(handle)
            except RecursionError:
                raise NetworkError("not a readable NIR file (its groups are nested too deeply)") from None
            except Exception as err:  # h5py and nir raise many types
                raise NetworkError(f"not a readable NIR file ({type(err).__name__}: {printable(str(err), 200)})") \
                    from None
        network = _read_hwsim(graph) if _is_hwsim(graph) and dt is None else from_nir(graph, dt)
        check_names(network)
        check_network_memory(network, f"NIR file {path}")
        return network
    except TooLarge as err:
        message = str(err)
        raise TooLarge(message if message.startswith("NIR file") else f"{path}: {message}") from None
    except UsageError:  # a bad HWSIM_MAX_MEMORY, named as such
        raise
    except NetworkError as err:
        raise NetworkError(f"{path}: {err}") from None
    except OSError as err:
        raise NetworkError(f"{path}: cannot read the NIR file ({err.strerror or type(err).__name__})") from None
    except (KeyError, TypeError, IndexError, OverflowError, ValueError) as err:  # a graph of unexpected values
        raise NetworkError(f"{path}: malformed NIR graph ({type(err).__name__}: {printable(str(err), 200)})") \
            from None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _hwsim_meta(node) -> dict | None:
    """The hwsim metadata of ``node`` (a JSON object), None when absent or not JSON; its size is checked before the
    JSON is parsed (a fixed-point layer's weights ride in it as lists)."""
    raw = (getattr(node, "metadata", None) or {}).get("hwsim")
    if raw is None:
        return None
    from hwsim.formats.bounds import JSON_BYTES_PER_CHAR
    from hwsim.safeio import check_memory

    text = _text(raw)
    check_memory(len(text) * JSON_BYTES_PER_CHAR, "its hwsim metadata", f"{len(text)} characters of JSON")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return meta if isinstance(meta, dict) else None


def _is_hwsim(graph) -> bool:
    header = _hwsim_meta(graph)
    if not header or header.get("format") != "hwsim-network":
        return False
    found = structure(graph)
    return all(_hwsim_meta(found.nodes[n]) is not None for n in found.order)


def _read_hwsim(graph) -> Network:
    """The exact network of hwsim's own export: fixed-point integers from the metadata; a float network's
    weights from its nodes (float32 values, exact in float64) and its neuron parameters from the metadata."""
    header, layers = _hwsim_meta(graph), []
    fixed = header.get("mode", "fixed") == "fixed"
    found = structure(graph)
    for name in found.order:
        meta = _hwsim_meta(found.nodes[name])
        kind = meta["kind"]
        if kind in ("lif", "neuron"):
            continue
        if kind == "flatten":
            layers.append(Flatten(name=meta["name"]))
        elif fixed:
            layers.append(_fixed_from_meta(meta))
        else:
            lif = found.order[found.order.index(name) + 1]  # the neuron node after this synapse node
            layers.append(_float_from_nodes(meta, found.nodes[name], found.nodes.get(found.loops.get(lif))))
    return Network(tuple(header["input_shape"]), layers)


def _fixed_from_meta(meta: dict) -> Layer:
    kind = meta["kind"]
    neuron = LoihiLIF(du=meta["du"], dv=meta["dv"], vth=meta["vth"], bias_exp=meta["bias_exp"])
    bias = None if "bias" not in meta else np.array(meta["bias"], np.int32)
    common = {"neuron": neuron, "weight_exp": meta["weight_exp"], "name": meta["name"]}
    if kind == "dense":
        return Dense(np.array(meta["weight"], np.int32), bias=bias, **common)
    if kind == "recurrent":
        return Recurrent(np.array(meta["weight"], np.int32), np.array(meta["recurrent"], np.int32), bias=bias,
                         **common)
    if kind == "conv2d":
        return Conv2d(np.array(meta["weight"], np.int32), stride=meta["stride"], padding=meta["padding"], bias=bias,
                      **common)
    return SumPool2d(meta["kernel"], meta["stride"], weight=meta["weight"], **common)


def _float_from_nodes(meta: dict, synapse, recurrent) -> Layer:
    params = dict(meta["neuron"])
    neuron = NEURON_TYPES[params.pop("type")](**params)
    common = {"neuron": neuron, "name": meta["name"]}
    weight = _real(synapse.weight).astype(np.float32)
    bias = _real(synapse.bias).astype(np.float32)
    bias = bias if np.any(bias) else None
    if meta["kind"] == "dense":
        return Dense(weight, bias=bias, **common)
    if meta["kind"] == "recurrent":
        loop_bias = getattr(recurrent, "bias", None)
        if loop_bias is not None and np.any(_real(loop_bias)):  # hwsim writes the loop as a bias-free Linear
            raise NetworkError(f"layer {meta['name']}: its recurrent loop node has a bias, which hwsim's own export "
                               f"never writes (an edited file?); a recurrent layer's bias sits on its input node")
        return Recurrent(weight, _real(recurrent.weight).astype(np.float32), bias=bias, **common)
    if meta["kind"] == "conv2d":
        return Conv2d(weight, stride=meta["stride"], padding=meta["padding"], bias=bias, **common)
    return SumPool2d(meta["kernel"], meta["stride"], weight=meta["weight"], **common)


def _uniform(node_name: str, kind: str, field: str, value) -> float:
    values = np.unique(_real(value))
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
        return 1.0 - k, r * k, v_th, _real(node.v_leak) * k
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
    return 1.0 - k, gain, v_th, _real(node.v_leak) * (0.0 if np.isinf(tau_mem) else k)


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


def _synaptic_current(nodes: dict, dt: float) -> str | None:
    """The first CubaLIF node that filters its input (tau_syn != dt; hwsim's float LIF has no synaptic current)."""
    import nir

    return next((name for name, node in nodes.items() if isinstance(node, nir.CubaLIF) and not np.allclose(
        _real(node.tau_syn), dt, rtol=1e-9, atol=0.0)), None)


def from_nir(graph, dt: float | None = None) -> Network:
    """A :class:`Network` from a NIR graph of another framework (or hwsim's without its metadata).

    Each ``synapse -> neuron`` pair becomes one hwsim layer; a neuron with a recurrent loop (its output through
    one ``Affine``/``Linear`` node back into itself, :mod:`hwsim.formats.nir_graph`) after an ``Affine``/``Linear``
    synapse becomes a :class:`Recurrent` layer: the loop's weights scaled by the same input gain, its bias (an
    ``Affine`` adds it every step, the first included) folded into the layer's bias.

    Float (the default): a :class:`FloatLIF` (zero reset), by forward Euler with step ``dt`` (the graph's
    ``metadata['dt']``, else 1e-4 s): ``lam = 1 - dt/tau``, and the input gain (``r*dt/tau``; CubaLIF also
    ``w_in*dt/tau_syn``) and constant drive (``v_leak*dt/tau``) fold into the weights and bias. NIR fires on
    ``v > v_threshold``, hwsim on ``u >= v_th``:
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
    found = structure(graph)
    cuba = _synaptic_current(found.nodes, dt)
    if cuba is None:
        return _build(found, dt, _layer)
    try:
        return _build(found, dt, _fixed_layer)
    except NetworkError as err:
        tau_syn = float(_real(found.nodes[cuba].tau_syn).ravel()[0])
        raise NetworkError(f"node '{cuba}' (CubaLIF): tau_syn = {tau_syn:g} s != dt = {dt:g} s needs a synaptic "
                           f"current, which hwsim's float LIF lacks, and the graph is not in Loihi fixed point "
                           f"({err})") from None


def _build(found: Structure, dt: float, make_layer) -> Network:
    """Walk the chain, pairing each synapse (after merging linear nodes) with its neuron; ``make_layer(syn_name,
    syn, neuron_name, neuron, in_shape, dt, loop)`` builds the hwsim layer (``loop``: ``(name, node)`` of the
    neuron's recurrent Affine/Linear node, or None)."""
    import nir

    order = found.order
    input_node = next(node for node in found.nodes.values() if isinstance(node, nir.Input))
    input_shape = tuple(int(s) for s in np.asarray(next(iter(input_node.input_type.values()))).ravel())
    if not input_shape:
        raise NetworkError("the Input node has no shape")
    shape = input_shape
    layers: list[Layer] = []
    pending: tuple[str, object] | None = None
    for name in order:
        node = found.nodes[name]
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
            loop = (found.loops[name], found.nodes[found.loops[name]]) if name in found.loops else None
            if loop is not None and not isinstance(syn, (nir.Affine, nir.Linear)):
                raise NetworkError(f"node '{name}' ({kind}): its recurrent loop through '{loop[0]}' needs a dense "
                                   f"(Affine/Linear) input synapse, but '{pending[0]}' is {type(syn).__name__}; "
                                   f"hwsim's recurrent layers are dense")
            layer = make_layer(pending[0], syn, name, node, shape, dt, loop)
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


def _check_merged(pool_name: str, kernel: int, shape: tuple[int, ...]) -> None:
    """Refuse a merge whose pooling kernel or merged weights (``shape``, from the graph's declared sizes) are too
    large, before the merged array is allocated."""
    from hwsim.formats.bounds import check_array, check_merge

    check_merge(kernel, f"node '{pool_name}'")
    check_array(shape, f"node '{pool_name}': the merged weights of a pooling node and the synapse after it")


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
    weight = _real(conv.weight)
    o, c, k, _ = weight.shape
    _check_merged(pool_name, kp, (o, c, sp * (k - 1) + kp, sp * (k - 1) + kp))
    merged = np.zeros((o, c, sp * (k - 1) + kp, sp * (k - 1) + kp))
    for a in range(k):
        for b in range(k):
            merged[:, :, a * sp: a * sp + kp, b * sp: b * sp + kp] += weight[:, :, a: a + 1, b: b + 1] * tap
    return nir.Conv2d(input_shape=None, weight=merged, stride=s * sp, padding=p * sp, dilation=1, groups=1,
                      bias=_real(conv.bias) * np.ones(o))


def _pool_then_dense(pool_name: str, pool, dense_name: str, dense, shape: tuple[int, ...]):
    """One Affine equal to ``pool`` then (flattened) ``dense`` on input ``shape`` (C, H, W); it reads the
    unpooled input flattened channels first."""
    import nir

    kp, sp, tap = _pool_geometry(pool_name, pool)
    if len(shape) != 3:
        raise NetworkError(f"node '{pool_name}': pooling needs a (C, H, W) input, got {shape}")
    c, h, w = shape
    ho, wo = (h - kp) // sp + 1, (w - kp) // sp + 1
    weight = _real(dense.weight)
    if weight.ndim != 2 or weight.shape[1] != c * ho * wo:
        raise NetworkError(f"node '{dense_name}': weight {weight.shape} does not take the {c}x{ho}x{wo} output of "
                           f"pooling node '{pool_name}'")
    _check_merged(pool_name, kp, (weight.shape[0], c, h, w))
    pooled = weight.reshape(-1, c, ho, wo) * tap
    merged = np.zeros((weight.shape[0], c, h, w))
    for u in range(kp):
        for v in range(kp):
            merged[:, :, u: u + sp * (ho - 1) + 1: sp, v: v + sp * (wo - 1) + 1: sp] += pooled
    bias = _real(dense.bias) if isinstance(dense, nir.Affine) else np.zeros(weight.shape[0])
    return nir.Affine(weight=merged.reshape(weight.shape[0], -1), bias=bias)


def _loop_weights(loop: tuple[str, object], n: int, neuron_name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(weight (n, n), bias (n,))`` of a neuron's recurrent Affine/Linear node, float64."""
    import nir

    name, node = loop
    weight = _real(node.weight)
    if weight.shape != (n, n):
        raise NetworkError(f"node '{name}' ({type(node).__name__}): recurrent weight of shape {weight.shape}; the "
                           f"loop of '{neuron_name}' ({n} neurons) needs ({n}, {n})")
    bias = _real(node.bias) * np.ones(n) if isinstance(node, nir.Affine) else np.zeros(n)
    return weight, bias


def _layer(syn_name: str, syn, neuron_name: str, neuron, in_shape, dt: float,
           loop: tuple[str, object] | None = None) -> Layer:
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
    drive = _real(drive)
    syn_kind = type(syn).__name__
    if isinstance(syn, (nir.Affine, nir.Linear)):
        weight = _real(syn.weight)
        bias = _real(syn.bias) if isinstance(syn, nir.Affine) else np.zeros(weight.shape[0])
        if weight.ndim != 2:
            raise NetworkError(f"node '{syn_name}' ({syn_kind}): weight must be 2-D, got shape {weight.shape}")
        total = gain * bias + drive.reshape(-1) if drive.size == weight.shape[0] else gain * bias + drive.ravel()[0]
        if loop is None:
            return Dense(weight * gain, neuron=lif, bias=_bias_or_none(total), name=syn_name)
        recurrent, loop_bias = _loop_weights(loop, weight.shape[0], neuron_name)
        return Recurrent(weight * gain, recurrent * gain, neuron=lif, bias=_bias_or_none(total + gain * loop_bias),
                         name=syn_name)
    if isinstance(syn, nir.Conv2d):
        if int(np.asarray(syn.groups)) != 1:
            raise NetworkError(f"node '{syn_name}' (Conv2d): groups = {syn.groups}; hwsim convolutions are ungrouped")
        if _pair(syn.dilation, syn_name, "Conv2d", "dilation") != 1:
            raise NetworkError(f"node '{syn_name}' (Conv2d): dilation = {np.asarray(syn.dilation).tolist()}; hwsim "
                               f"convolutions are undilated")
        if isinstance(syn.padding, str):
            raise NetworkError(f"node '{syn_name}' (Conv2d): padding = {syn.padding!r}; give it in pixels")
        weight = _real(syn.weight)
        if weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
            raise NetworkError(f"node '{syn_name}' (Conv2d): weight must be (out, in, k, k), got {weight.shape}")
        bias = _real(syn.bias) * np.ones(weight.shape[0])
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
    drive = _real(node.v_leak) * (dt / tau if np.isfinite(tau) else 0.0)
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
    target = _real(bias) * 64.0
    for exp in range(8):
        mant = target / 2.0**exp
        if np.all(np.abs(mant - np.rint(mant)) <= 1e-6) and np.abs(np.rint(mant)).max() <= 4095:
            return np.rint(mant).astype(np.int32), exp
    raise NetworkError(f"node '{name}': bias {float(bias.ravel()[0]):.9g}... is not a Loihi bias (mantissa of 13 "
                       f"bits << exponent 0..7, in units of 1/64)")


def _integers(weight, name: str, kind: str) -> np.ndarray:
    weight = _real(weight)
    if not np.all(np.abs(weight - np.rint(weight)) <= 1e-9):
        raise NetworkError(f"node '{name}' ({kind}): weights are not integers")
    return np.rint(weight).astype(np.int64)


def _fixed_layer(syn_name: str, syn, neuron_name: str, neuron, in_shape, dt: float,
                 loop: tuple[str, object] | None = None) -> Layer:
    """One Loihi fixed-point layer from a NIR synapse and neuron whose values are Loihi's integers (weights in
    units of synaptic input; a CubaLIF's synapse bias is a current, ``bias * (1 - alpha)``, read back as Lava's
    voltage bias -- equal once the current has settled, see the module docstring). A recurrent loop's weights
    share the input weights' exponent (one Lava ``weight_exp`` for both Dense processes of the layer)."""
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
    bias = _real(getattr(syn, "bias", 0.0)) * np.ones(weight.shape[0]) * current_to_voltage
    if isinstance(syn, nir.Conv2d):
        if int(np.asarray(syn.groups)) != 1 or _pair(syn.dilation, syn_name, syn_kind, "dilation") != 1:
            raise NetworkError(f"node '{syn_name}' (Conv2d): grouped or dilated; hwsim convolutions are neither")
        mant, exp = _bias_mantissa(bias + _per_channel(drive, weight.shape[0], neuron_name, "v_leak"), syn_name)
        layer = _pool_or_conv(weight, _pair(syn.stride, syn_name, syn_kind, "stride"),
                              _pair(syn.padding, syn_name, syn_kind, "padding"),
                              LoihiLIF(lif.du, lif.dv, lif.vth, exp), mant, f"node '{syn_name}'")
    else:
        n_in = weight.shape[1]
        if loop is not None:
            recurrent, loop_bias = _loop_weights(loop, weight.shape[0], neuron_name)
            weight = np.hstack([weight, _integers(recurrent, loop[0], type(loop[1]).__name__)])
            bias = bias + loop_bias * current_to_voltage
        per_neuron = bias + (drive.reshape(-1) if drive.size == weight.shape[0] else drive.ravel()[:1])
        mant, exp = _bias_mantissa(per_neuron, syn_name)
        w, weight_exp = _dense_weights(weight, f"node '{syn_name}'")
        fixed = LoihiLIF(lif.du, lif.dv, lif.vth, exp)
        layer = Dense(w, neuron=fixed, bias=mant, weight_exp=weight_exp) if loop is None else Recurrent(
            w[:, :n_in], w[:, n_in:], neuron=fixed, bias=mant, weight_exp=weight_exp)
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
    weight = _real(conv.weight)
    o, c, k, _ = weight.shape
    _check_merged(pool_name, kp, (o, c, s * (kp - 1) + k, s * (kp - 1) + k))
    merged = np.zeros((o, c, s * (kp - 1) + k, s * (kp - 1) + k))
    for i in range(kp):
        for j in range(kp):
            merged[:, :, i * s: i * s + k, j * s: j * s + k] += weight * tap
    bias = _real(conv.bias) * np.ones(o) * (tap * kp * kp)
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
