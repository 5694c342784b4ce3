"""The layer graph :class:`hwsim.learning.learner.OnChipLearner` trains when a network has conv or pool layers.

A network's neuron layers (``Conv2d``, ``SumPool2d``, ``Dense``; a ``Flatten`` folds away) become the first
nodes of a graph run by :func:`hwsim.learning.kernels.conv.train_graph`; the heads of locally trained blocks
follow -- TTL-BPTT: one linear classifier of a block's last spikes; STDL: copies (own weights) of the
following layers, conv and pool included, then a classifier unless the copy reaches the read-out. Blocks
and subnetworks count neuron layers, as ``methods/`` does.

Weight layouts in the flat learner arrays: dense fan-out major ``(n_in, n_out)``, conv ``(O, C, kh, kw)``
(the shared kernel), pool none (its tap is fixed); biases per neuron (dense) or per channel (conv).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.learning.kernels.conv import CONV, DENSE, POOL
from hwsim.sim.network import Conv2d, Dense, Network, SumPool2d

KIND_NAMES = {DENSE: "dense", CONV: "conv2d", POOL: "sumpool2d"}


class GraphError(ValueError):
    """A block or subnetwork size, or a head, that does not fit the network."""


@dataclass
class Node:
    """One layer of the learning graph."""

    name: str
    kind: int
    geom: tuple[int, ...]
    src: int
    lif: bool
    readout: bool
    pass_error: bool
    lam: float
    v_th: float
    weight: np.ndarray | None  # dense (n_out, n_in) / conv (O, C, kh, kw); None for a pool
    bias: np.ndarray | None
    pool_w: float = 0.0
    layer_index: int = -1  # index into network.layers for the network's own layers, -1 for heads

    @property
    def n_in(self) -> int:
        return int(self.geom[0] * self.geom[1] * self.geom[2])

    @property
    def n_out(self) -> int:
        return int(self.geom[3] * self.geom[4] * self.geom[5])

    @property
    def channels(self) -> int:
        """Bias / write-count slots: neurons (dense), output channels (conv), none (pool)."""
        return {DENSE: self.n_out, CONV: int(self.geom[3]), POOL: 0}[self.kind]


def _node(layer, in_shape, out_shape, src: int, readout: bool, pass_error: bool, index: int, name: str) -> Node:
    if isinstance(layer, Dense):
        geom = (layer.n_in, 1, 1, layer.n_out, 1, 1, 1, 1, 1, 0)
        kind, weight = DENSE, layer.weight
    elif isinstance(layer, Conv2d):
        o, c, kh, kw = layer.weight.shape
        geom = (c, *in_shape[1:], o, *out_shape[1:], kh, kw, layer.stride, layer.padding)
        kind, weight = CONV, layer.weight
    else:
        geom = (in_shape[0], *in_shape[1:], in_shape[0], *out_shape[1:], layer.kernel, layer.kernel, layer.stride, 0)
        kind, weight = POOL, None
    bias = None if isinstance(layer, SumPool2d) or layer.bias is None else layer.bias.copy()
    return Node(name, kind, tuple(int(v) for v in geom), src, True, readout, pass_error, layer.neuron.lam,
                layer.neuron.v_th, None if weight is None else weight.copy(), bias,
                float(layer.weight) if isinstance(layer, SumPool2d) else 0.0, index)


def build_graph(network: Network, rule: str, block: int, subnet: int, stdl_plan, heads: list[list[tuple]] | None,
                seed: int) -> list[Node]:
    """The graph for ``rule`` (online rules and BPTT: the network alone). STDL's auxiliary networks are those of
    ``stdl_plan`` (:func:`hwsim.learning.stdl_plan.plan`), started from
    :func:`hwsim.learning.stdl_plan.init_weights` unless ``heads`` are
    given: their own weights, never copies of the layers they mirror."""
    stages = [(i, layer, shapes) for i, (layer, shapes) in enumerate(zip(network.layers, network.layer_shapes()))
              if layer.neuron is not None]
    count = len(stages)
    classes = int(np.prod(network.output_shape))
    size = {"ttl_bptt": block, "stdl": subnet}.get(rule, count)
    if size < 1 or (rule == "ttl_bptt" and count % size) or (rule == "stdl" and size >= count and count > 1):
        raise GraphError(f"{rule}: block/subnetwork size {size} does not fit the network's {count} neuron layers")
    starts = list(range(0, count, size))
    nodes = [_node(layer, shapes[0], shapes[1], g - 1, g == count - 1, g == 0 or g not in starts, i, layer.name)
             for g, (i, layer, shapes) in enumerate(stages)]
    rng = np.random.default_rng(seed)
    if rule == "stdl":
        from hwsim.learning.stdl_plan import init_weights

        starts = [lo for lo, _ in stdl_plan.subnets]
        initial = init_weights(network, stdl_plan, seed)
    for index in range(len(starts) - 1):
        hi = starts[index + 1]
        given = heads[index] if heads is not None else None
        if rule == "ttl_bptt":
            chain = [None]  # a linear classifier
        else:
            aux = stdl_plan.auxiliary[index]
            chain = list(aux.layers) + ([None] if aux.classifier else [])
            given = initial[index] if given is None else given
        src = hi - 1
        for position, main in enumerate(chain):
            name = f"{stages[hi - 1][1].name}.head{position}"
            if main is None:
                n_in = nodes[src].n_out
                bound = 1.0 / np.sqrt(n_in)
                weight = rng.uniform(-bound, bound, (classes, n_in)).astype(np.float32)
                bias = rng.uniform(-bound, bound, classes).astype(np.float32)
                node = Node(name, DENSE, (n_in, 1, 1, classes, 1, 1, 1, 1, 1, 0), src, False, True, True, 1.0, 1.0,
                            weight, bias)
            else:
                _, layer, shapes = stages[main]
                node = _node(layer, shapes[0], shapes[1], src, main == count - 1, True, -1, name)
            if given is not None:
                weight, bias = given[position]
                if node.kind != POOL:
                    node.weight = np.asarray(weight, np.float32).reshape(node.weight.shape)
                    node.bias = None if bias is None else np.asarray(bias, np.float32)
            nodes.append(node)
            src = len(nodes) - 1
    return nodes


@dataclass
class GraphArrays:
    """The graph as the kernel's flat arrays."""

    kind: np.ndarray
    geom: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray
    src: np.ndarray
    lif: np.ndarray
    readout: np.ndarray
    pass_error: np.ndarray
    lams: np.ndarray
    v_th: np.ndarray
    has_bias: np.ndarray
    pool_w: np.ndarray
    w_off: np.ndarray
    c_off: np.ndarray
    n_off: np.ndarray

    @staticmethod
    def of(nodes: list[Node]) -> GraphArrays:
        def arr(values, dtype):
            return np.array(values, dtype)

        sizes = [0 if n.weight is None else n.weight.size for n in nodes]
        return GraphArrays(arr([n.kind for n in nodes], np.int64), arr([n.geom for n in nodes], np.int64),
                           arr([n.n_in for n in nodes], np.int64), arr([n.n_out for n in nodes], np.int64),
                           arr([n.src for n in nodes], np.int64), arr([n.lif for n in nodes], np.uint8),
                           arr([n.readout for n in nodes], np.uint8), arr([n.pass_error for n in nodes], np.uint8),
                           arr([n.lam for n in nodes], np.float32), arr([n.v_th for n in nodes], np.float32),
                           arr([n.bias is not None for n in nodes], np.uint8),
                           arr([n.pool_w for n in nodes], np.float32),
                           np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                           np.concatenate([[0], np.cumsum([n.channels for n in nodes])]).astype(np.int64),
                           np.concatenate([[0], np.cumsum([n.n_out for n in nodes])]).astype(np.int64))


def pack(nodes: list[Node]) -> tuple[np.ndarray, np.ndarray]:
    """Flat float32 weights (dense fan-out major, conv as is) and per-channel biases (zeros where none)."""
    ws, bs = [np.zeros(0, np.float32)], [np.zeros(0, np.float32)]
    for n in nodes:
        if n.kind == POOL:
            continue
        ws.append(np.ascontiguousarray(n.weight.T).ravel() if n.kind == DENSE else n.weight.ravel())
        bs.append(n.bias if n.bias is not None else np.zeros(n.channels, np.float32))
    return np.concatenate(ws).astype(np.float32), np.concatenate(bs).astype(np.float32)


def unpack(nodes: list[Node], arrays: GraphArrays, w: np.ndarray, b: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of every node in the network's shapes (pool: ``(None, None)``)."""
    out = []
    for g, n in enumerate(nodes):
        if n.kind == POOL:
            out.append((None, None))
            continue
        flat = w[arrays.w_off[g]: arrays.w_off[g + 1]]
        weight = flat.reshape(n.n_in, n.n_out).T.copy() if n.kind == DENSE else flat.reshape(n.weight.shape).copy()
        bias = b[arrays.c_off[g]: arrays.c_off[g + 1]].copy()
        out.append((weight, bias if n.bias is not None else None))
    return out
