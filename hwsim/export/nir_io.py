"""NIR export and import of fixed-point networks (``nir.write`` / ``nir.read``).

Mapping (DESIGN.md section 2), dt = 1 step: each neuron layer becomes its synapse node (``Linear`` with
the effective integer weights times 2**weight_exp; ``Conv2d``; ``SumPool2d`` as a channel-diagonal
``Conv2d``) followed by a ``CubaLIF`` with ``tau_syn = 4096 / (du + 1)``, ``tau_mem = 4096 / dv``,
``r = tau_mem``, ``w_in = tau_syn``, ``v_threshold = vth * 64``, ``v_leak = 0``, ``v_reset = 0``; Flatten
becomes ``Flatten``. Every node carries the exact hwsim integers in ``metadata["hwsim"]`` (kind, weights,
weight_exp, du, dv, vth, bias mantissa and exponent), so :func:`read` rebuilds the identical network.
Other frameworks read the float parameters; the metadata makes the round trip exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwsim.network import Conv2d, Dense, Flatten, LoihiLIF, Network, NetworkError, SumPool2d


def to_nir(network: Network):
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
        if isinstance(layer, Dense):
            synapse = nir.Linear(weight=layer.weight.astype(np.float64) * scale)
            meta["weight"] = layer.weight.tolist()
        elif isinstance(layer, Conv2d):
            synapse = nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=layer.weight.astype(np.float64) * scale,
                                 stride=layer.stride, padding=layer.padding, dilation=1, groups=1,
                                 bias=np.zeros(layer.weight.shape[0]))
            meta.update(weight=layer.weight.tolist(), stride=layer.stride, padding=layer.padding)
        else:
            c = in_shape[0]
            kernel = np.zeros((c, c, layer.kernel, layer.kernel))
            kernel[np.arange(c), np.arange(c)] = float(layer.weight) * scale
            synapse = nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=kernel, stride=layer.stride, padding=0,
                                 dilation=1, groups=1, bias=np.zeros(c))
            meta.update(kernel=layer.kernel, stride=layer.stride, weight=int(layer.weight))
        if layer.bias is not None:
            meta["bias"] = layer.bias.tolist()
        synapse.metadata = {"hwsim": json.dumps(meta)}
        shape = tuple(out_shape)
        n = int(np.prod(shape))
        tau_syn = 4096.0 / (neuron.du + 1)
        tau_mem = 4096.0 / neuron.dv if neuron.dv > 0 else np.inf
        bias = np.zeros(n) if layer.bias is None else np.repeat(
            layer.bias.astype(np.float64) * 2.0**neuron.bias_exp, n // layer.bias.shape[0])
        lif = nir.CubaLIF(tau_syn=np.full(shape, tau_syn), tau_mem=np.full(shape, tau_mem),
                          r=np.full(shape, tau_mem), v_leak=np.zeros(shape),
                          v_threshold=np.full(shape, neuron.vth * 64.0), v_reset=np.zeros(shape),
                          w_in=np.full(shape, tau_syn),
                          metadata={"hwsim": json.dumps({"kind": "lif", "bias": bias.tolist()})})
        nodes[f"{name}.synapse"], nodes[f"{name}.lif"] = synapse, lif
        edges += [(previous, f"{name}.synapse"), (f"{name}.synapse", f"{name}.lif")]
        previous = f"{name}.lif"
    nodes["output"] = nir.Output(output_type={"output": np.array(network.output_shape)})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"hwsim": json.dumps(
        {"format": "hwsim-network", "input_shape": list(network.input_shape)})}, type_check=False)


def write(network: Network, path: str | Path) -> Path:
    import nir

    path = Path(path)
    nir.write(path, to_nir(network))
    return path


def read(path: str | Path) -> Network:
    """Rebuild the exact fixed-point network from a ``model.nir`` this module wrote."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"{path}: no such NIR file")
    try:
        graph = nir.read(path)
    except Exception as err:  # h5py and nir raise many types
        raise NetworkError(f"{path}: not a readable NIR file ({type(err).__name__}: {err})") from None
    try:
        header = json.loads(_text(graph.metadata["hwsim"]))
    except (KeyError, TypeError, ValueError):
        raise NetworkError(f"{path}: no hwsim metadata; only NIR files written by hwsim rebuild exactly") from None
    order, layers = _chain(graph), []
    for name in order:
        meta = json.loads(_text(graph.nodes[name].metadata["hwsim"]))
        kind = meta["kind"]
        if kind == "lif":
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


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _chain(graph) -> list[str]:
    """Node names from input to output along the (linear) edge list."""
    following = dict(graph.edges)
    order, node = [], following.get("input")
    while node is not None and node != "output":
        order.append(node)
        node = following.get(node)
    return order
