"""The learning graph :class:`hwsim.learning.learner.OnChipLearner` trains, for dense and conv networks alike.

A network's neuron layers (``Dense``, ``Recurrent``, ``Conv2d``, ``SumPool2d``; a ``Flatten`` folds away) become the
first nodes of a graph run by :func:`hwsim.learning.kernels.graph.train`; the heads of locally trained blocks
follow -- TTL-BPTT: one linear classifier of a block's last spikes; STDL: copies (own weights) of the
following layers, conv and pool included, then a classifier unless the copy reaches the read-out. Blocks
and subnetworks count neuron layers, as ``methods/`` does. :func:`graph_record` turns the nodes into the
kernel's :class:`~hwsim.learning.kernels.records.Graph`.

Weight layouts in the flat learner arrays: dense fan-out major ``(n_in, n_out)``, a recurrent layer its input rows
then its recurrent rows ``(n_in + n_out, n_out)`` (row ``n_in + j``: the synapses from its own neuron j, one step
delayed), conv ``(O, C, kh, kw)`` (the shared kernel), pool none (its tap is fixed); biases per neuron (dense) or
per channel (conv). A layer of ALIF neurons (:class:`hwsim.sim.network.FloatALIF`) carries its ``rho`` and ``beta``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.learning.kernels.conv import channels_last_index
from hwsim.learning.kernels.records import CONV, DENSE, POOL, Graph
from hwsim.sim.network import Conv2d, Dense, FloatALIF, Network, Recurrent, SumPool2d


class GraphError(ValueError):
    """A block or subnetwork size, or a head, that does not fit the network."""


@dataclass
class Node:
    """One layer of the learning graph (fields as the columns of :class:`~hwsim.learning.kernels.records.Graph`)."""

    name: str
    kind: int  # DENSE, CONV or POOL
    geom: tuple[int, ...]  # (C, H, W, O, H_out, W_out, kh, kw, stride, padding)
    src: int  # the node whose spikes it reads; -1: the network input
    lif: bool  # LIF neurons (False: a linear classifier head)
    readout: bool  # its synaptic current is a read-out with a loss
    pass_error: bool  # its error may flow into src (False across a block boundary)
    lam: float  # membrane leak, 1 - 1/tau
    v_th: float  # threshold, weight units
    weight: np.ndarray | None  # dense (n_out, n_in) / conv (O, C, kh, kw); None for a pool
    bias: np.ndarray | None
    pool_w: float = 0.0
    layer_index: int = -1  # index into network.layers for the network's own layers, -1 for heads
    recurrent: np.ndarray | None = None  # (n_out, n_out) recurrent synapses, recurrent[i, j] from neuron j to i
    adapt: bool = False  # ALIF neurons
    rho: float = 0.0  # ALIF adaptation decay per step
    beta: float = 0.0  # ALIF adaptation strength, weight units

    @property
    def n_rec(self) -> int:
        """Recurrent inputs: the node's own neurons (one step delayed), 0 without recurrent synapses."""
        return 0 if self.recurrent is None else self.n_out

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
    if isinstance(layer, (Dense, Recurrent)):
        geom = (layer.n_in, 1, 1, layer.n_out, 1, 1, 1, 1, 1, 0)
        kind, weight = DENSE, layer.weight
    elif isinstance(layer, Conv2d):
        o, c, kh, kw = layer.weight.shape
        geom = (c, *in_shape[1:], o, *out_shape[1:], kh, kw, layer.stride, layer.padding)
        kind, weight = CONV, layer.weight
    else:
        geom = (in_shape[0], *in_shape[1:], in_shape[0], *out_shape[1:], layer.kernel, layer.kernel, layer.stride, 0)
        kind, weight = POOL, None
    bias = None if isinstance(layer, SumPool2d) or layer.bias is None else np.asarray(layer.bias, np.float32).copy()
    neuron = layer.neuron
    adapt = isinstance(neuron, FloatALIF)
    recurrent = np.asarray(layer.recurrent, np.float32).copy() if isinstance(layer, Recurrent) else None
    return Node(name, kind, tuple(int(v) for v in geom), src, True, readout, pass_error, neuron.lam, neuron.v_th,
                None if weight is None else np.asarray(weight, np.float32).copy(), bias,
                float(layer.weight) if isinstance(layer, SumPool2d) else 0.0, index, recurrent, adapt,
                float(neuron.rho) if adapt else 0.0, float(neuron.beta) if adapt else 0.0)


def build_graph(network: Network, rule: str, aux: str | None, size: int | None, stdl_plan,
                heads: list[list[tuple]] | None, seed: int) -> list[Node]:
    """The graph of a rule (named ``rule`` in messages) whose locally trained blocks have heads of kind ``aux``
    (the rule registry's ``Needs.aux``): None -- the network alone; ``"classifier"`` -- blocks of ``size`` neuron
    layers, each but the last with a linear classifier (TTL-BPTT); ``"copy"`` -- subnetworks of ``size`` layers,
    each but the last with the auxiliary network of ``stdl_plan`` (:func:`hwsim.learning.stdl_plan.plan`, STDL),
    started from :func:`hwsim.learning.stdl_plan.init_weights` unless ``heads`` are given: their own weights,
    never copies of the layers they mirror. A head is given as ``(weight, bias)``, or ``(weight, bias, recurrent)``
    where it mirrors a recurrent layer; without ``recurrent`` such a head's recurrent weights are those of
    :func:`hwsim.learning.stdl_plan.init_recurrent` (as the torch rule's)."""
    stages = [(i, layer, shapes) for i, (layer, shapes) in enumerate(zip(network.layers, network.layer_shapes()))
              if layer.neuron is not None]
    count = len(stages)
    classes = int(np.prod(network.output_shape))
    size = count if aux is None else size
    if size < 1 or (aux == "classifier" and count % size) or (aux == "copy" and size >= count and count > 1):
        raise GraphError(f"{rule}: block/subnetwork size {size} does not fit the network's {count} neuron layers")
    starts = list(range(0, count, size))
    nodes = [_node(layer, shapes[0], shapes[1], g - 1, g == count - 1, g == 0 or g not in starts, i, layer.name)
             for g, (i, layer, shapes) in enumerate(stages)]
    rng = np.random.default_rng(seed)
    if aux == "copy":
        from hwsim.learning.stdl_plan import init_recurrent, init_weights

        starts = [lo for lo, _ in stdl_plan.subnets]
        initial = init_weights(network, stdl_plan, seed)
        initial_rec = init_recurrent(network, stdl_plan, seed)
    for index in range(len(starts) - 1):
        hi = starts[index + 1]
        given = heads[index] if heads is not None else None
        if aux == "classifier":
            chain = [None]  # a linear classifier
        else:
            copy = stdl_plan.auxiliary[index]
            chain = list(copy.layers) + ([None] if copy.classifier else [])
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
                weight, bias = given[position][:2]
                if node.kind != POOL:
                    node.weight = np.asarray(weight, np.float32).reshape(node.weight.shape)
                    node.bias = None if bias is None else np.asarray(bias, np.float32)
            if node.recurrent is not None:  # a mirror of a recurrent layer: its own recurrent weights too
                given_rec = given[position][2] if given is not None and len(given[position]) > 2 else None
                node.recurrent = np.asarray(initial_rec[index][position] if given_rec is None else given_rec,
                                            np.float32).reshape(node.recurrent.shape).copy()
            nodes.append(node)
            src = len(nodes) - 1
    return nodes


def graph_record(nodes: list[Node]) -> Graph:
    """The nodes as the kernel's :class:`~hwsim.learning.kernels.records.Graph` (offsets from the nodes' sizes;
    the read-out is the network's last neuron layer, the last node with ``layer_index >= 0``)."""
    def arr(values, dtype):
        return np.array(values, dtype)

    def offsets(sizes):
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    kind = arr([n.kind for n in nodes], np.int64)
    geom = arr([n.geom for n in nodes], np.int64).reshape(len(nodes), 10)
    w_off = offsets([(0 if n.weight is None else n.weight.size) + n.n_rec * n.n_out for n in nodes])
    cl_from, cl_to = channels_last_index(kind, geom, w_off)
    return Graph(kind, geom, arr([n.n_in for n in nodes], np.int64), arr([n.n_rec for n in nodes], np.int64),
                 arr([n.n_out for n in nodes], np.int64),
                 arr([n.src for n in nodes], np.int64), arr([n.lif for n in nodes], np.uint8),
                 arr([n.readout for n in nodes], np.uint8), arr([n.pass_error for n in nodes], np.uint8),
                 arr([n.bias is not None for n in nodes], np.uint8), arr([n.lam for n in nodes], np.float32),
                 arr([n.v_th for n in nodes], np.float32), arr([n.adapt for n in nodes], np.uint8),
                 arr([n.rho for n in nodes], np.float32), arr([n.beta for n in nodes], np.float32),
                 arr([n.pool_w for n in nodes], np.float32), w_off,
                 offsets([n.channels for n in nodes]), offsets([n.n_out for n in nodes]),
                 offsets([n.n_in + n.n_rec for n in nodes]), cl_from, cl_to,
                 max(g for g, n in enumerate(nodes) if n.layer_index >= 0))


def pack(nodes: list[Node]) -> tuple[np.ndarray, np.ndarray]:
    """Flat float32 weights (dense fan-out major, a recurrent node's recurrent rows after its input rows, conv as
    is) and per-channel biases (zeros where none)."""
    ws, bs = [np.zeros(0, np.float32)], [np.zeros(0, np.float32)]
    for n in nodes:
        if n.kind == POOL:
            continue
        ws.append(np.ascontiguousarray(n.weight.T).ravel() if n.kind == DENSE else n.weight.ravel())
        if n.recurrent is not None:
            ws.append(np.ascontiguousarray(n.recurrent.T).ravel())
        bs.append(n.bias if n.bias is not None else np.zeros(n.channels, np.float32))
    return np.concatenate(ws).astype(np.float32), np.concatenate(bs).astype(np.float32)


def unpack(nodes: list[Node], graph: Graph, w: np.ndarray, b: np.ndarray) -> list[tuple[np.ndarray | None,
                                                                                   np.ndarray | None]]:
    """(weight, bias) of every node in the network's shapes (pool: ``(None, None)``; bias None where the node has
    none), copied out of the flat ``w`` (W,) and ``b`` (S,)."""
    out = []
    for g, n in enumerate(nodes):
        if n.kind == POOL:
            out.append((None, None))
            continue
        flat = w[graph.w_off[g]: graph.w_off[g] + n.weight.size]  # a recurrent node's recurrent rows follow
        weight = flat.reshape(n.n_in, n.n_out).T.copy() if n.kind == DENSE else flat.reshape(n.weight.shape).copy()
        bias = b[graph.c_off[g]: graph.c_off[g + 1]].copy()
        out.append((weight, bias if n.bias is not None else None))
    return out


def unpack_recurrent(nodes: list[Node], graph: Graph, w: np.ndarray) -> list[np.ndarray | None]:
    """The recurrent weights ``(n_out, n_out)`` (``[i, j]``: from neuron j to neuron i) of every node, copied out of
    the flat ``w`` (W,); None for a node without recurrent synapses."""
    out: list[np.ndarray | None] = []
    for g, n in enumerate(nodes):
        if n.recurrent is None:
            out.append(None)
            continue
        flat = w[graph.w_off[g] + n.weight.size: graph.w_off[g + 1]]
        out.append(flat.reshape(n.n_out, n.n_out).T.copy())
    return out
