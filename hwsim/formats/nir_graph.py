"""The shape of a NIR graph as hwsim reads it: one chain from the Input to the Output node, plus recurrent loops.

A NIR graph may nest graphs (snnTorch 0.x wrote each ``RLeaky``/``RSynaptic`` as a sub-graph ``Input -> LIF ->
Output`` with ``LIF <-> Affine``); :func:`inline` splices them into one flat graph (node ``k.name`` for node
``name`` of sub-graph ``k``). A **recurrent loop** is NIR's way of writing a recurrent layer, as snnTorch 1.0
exports ``RLeaky``/``RSynaptic`` and hwsim exports :class:`~hwsim.sim.network.Recurrent`: a neuron node whose
output feeds one ``Affine``/``Linear`` node that feeds back into the same neuron and nowhere else. A cycle is a
one-step delay (the neuron's output of step t enters its input at step t + 1), so the loop is the recurrent
synapse of that neuron population. :func:`structure` takes the loops out and returns the chain that remains;
every other cycle, branch or merge is one :class:`NetworkError` line naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.sim.network import NetworkError

NEURON_TYPES = ("LIF", "CubaLIF", "IF")
LOOP_SYNAPSES = ("Affine", "Linear")
LOOP_RULE = ("hwsim's recurrent layers feed a neuron population's spikes back into the same neurons through one "
             "Affine or Linear node")


@dataclass
class Structure:
    """``nodes``: every node of the flat graph by name; ``order``: the node names from the Input to the Output
    node (both excluded); ``loops``: per neuron node on the chain, the name of its recurrent Affine/Linear node."""

    nodes: dict
    order: list[str]
    loops: dict[str, str]


def _kind(node) -> str:
    return type(node).__name__


def inline(nodes: dict, edges: list[tuple[str, str]]) -> tuple[dict, list[tuple[str, str]]]:
    """``(nodes, edges)`` with every nested ``NIRGraph`` node spliced in (recursively): an edge into sub-graph
    ``k`` goes to the nodes its Input feeds, an edge out of ``k`` leaves from the nodes that feed its Output."""
    flat_nodes, flat_edges = {}, []
    entries: dict[str, list[str]] = {}
    exits: dict[str, list[str]] = {}
    for key, node in nodes.items():
        if _kind(node) != "NIRGraph":
            flat_nodes[key] = node
            continue
        sub_nodes, sub_edges = inline(dict(node.nodes), list(node.edges))
        inputs = {n for n, sub in sub_nodes.items() if _kind(sub) == "Input"}
        outputs = {n for n, sub in sub_nodes.items() if _kind(sub) == "Output"}
        entries[key] = [f"{key}.{dst}" for src, dst in sub_edges if src in inputs]
        exits[key] = [f"{key}.{src}" for src, dst in sub_edges if dst in outputs]
        for name, sub in sub_nodes.items():
            if name not in inputs and name not in outputs:
                flat_nodes[f"{key}.{name}"] = sub
        flat_edges += [(f"{key}.{src}", f"{key}.{dst}") for src, dst in sub_edges
                       if src not in inputs and dst not in outputs]
    for src, dst in edges:
        for a in exits.get(src, [src]):
            flat_edges += [(a, b) for b in entries.get(dst, [dst])]
    return flat_nodes, list(dict.fromkeys(flat_edges))


def _closing_edge(nodes: dict, edges: list[tuple[str, str]]) -> tuple[str, str] | None:
    """An edge that closes a cycle, or None (iterative depth-first search)."""
    following: dict[str, list[str]] = {}
    for src, dst in edges:
        following.setdefault(src, []).append(dst)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in nodes:
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


def recurrent_loops(nodes: dict, edges: list[tuple[str, str]]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """``(loops, remaining edges)``: every neuron ``n`` with an Affine/Linear node ``r`` such that ``n -> r`` and
    ``r -> n`` are ``r``'s only edges; the other edges. A cycle left over is refused naming the edge."""
    loops: dict[str, str] = {}
    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    for src, dst in edges:
        outgoing.setdefault(src, []).append(dst)
        incoming.setdefault(dst, []).append(src)
    for name, node in nodes.items():
        if _kind(node) not in LOOP_SYNAPSES or incoming.get(name) != outgoing.get(name):
            continue
        sources = incoming.get(name, [])
        if len(sources) == 1 and sources[0] != name and _kind(nodes.get(sources[0])) in NEURON_TYPES:
            if sources[0] in loops:
                raise NetworkError(f"node '{sources[0]}' has two recurrent loops ('{loops[sources[0]]}' and "
                                   f"'{name}'); {LOOP_RULE}")
            loops[sources[0]] = name
    taken = {(n, r) for n, r in loops.items()} | {(r, n) for n, r in loops.items()}
    remaining = [edge for edge in edges if edge not in taken]
    closing = _closing_edge(nodes, remaining)
    if closing is not None:
        src, dst = closing
        if _kind(nodes[dst]) not in NEURON_TYPES:
            why = f"it feeds back into '{dst}' ({_kind(nodes[dst])}), which is not a neuron"
        elif _kind(nodes[src]) not in LOOP_SYNAPSES:
            why = f"the feedback into neuron '{dst}' comes from '{src}' ({_kind(nodes[src])})"
        else:
            why = f"the feedback through '{src}' is not '{dst}''s own (it has other inputs or outputs)"
        raise NetworkError(f"recurrent edge '{src}' -> '{dst}' (a cycle): {why}; {LOOP_RULE}")
    return loops, remaining


def structure(graph) -> Structure:
    """The chain and recurrent loops of ``graph``; a layout hwsim cannot run is one line naming the node."""
    nodes, edges = inline(dict(graph.nodes), list(graph.edges))
    for src, dst in edges:
        if src not in nodes or dst not in nodes:
            raise NetworkError(f"edge {src} -> {dst} names a node that is not in the graph")
    inputs = [n for n, node in nodes.items() if _kind(node) == "Input"]
    outputs = [n for n, node in nodes.items() if _kind(node) == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NetworkError(f"expected one Input and one Output node, found {len(inputs)} and {len(outputs)}; "
                           f"hwsim runs single-input feed-forward chains")
    loops, edges = recurrent_loops(nodes, edges)
    following: dict[str, str] = {}
    incoming: dict[str, int] = {}
    for src, dst in edges:
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
    unused = set(nodes) - seen - {outputs[0]} - set(loops.values())
    if unused:
        name = sorted(unused)[0]
        raise NetworkError(f"node '{name}' is not on the input-output chain (dangling); hwsim runs feed-forward "
                           f"chains only")
    loops = {n: r for n, r in loops.items() if n in seen}
    return Structure(nodes, order, loops)
