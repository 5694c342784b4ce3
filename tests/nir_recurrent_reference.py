"""Plain-numpy references for the recurrent formats tests (written from the equations, not from hwsim's code).

* :func:`run_float`, :func:`run_fixed` -- an hwsim network of dense and recurrent layers (``Flatten`` allowed),
  the whole network one step at a time, from the equations of ``hwsim.sim.network`` (``FloatLIF``, ``FloatALIF``,
  ``Recurrent``) and, for fixed point, Lava 0.10.0's ``PyLifModelBitAcc`` and ``PyDenseModelBitAcc`` (read in
  ``.venv/lib/python3.11/site-packages/lava/proc/{lif,dense}/models.py``).

  Float, per layer, step t (``s[-1] = 0``, ``a[-1] = 0``; every operation a float32 rounding)::

      I[t] = (W x[t] + W_rec s[t-1]) + b
      u[t] = lam * (u[t-1] - v_th s[t-1]) + I[t]        (zero reset: lam * u[t-1] (1 - s[t-1]) + I[t])
      a[t] = rho a[t-1] + s[t-1];  s[t] = u[t] >= v_th + beta a[t]      (LIF: beta = 0)

  Fixed point, hwsim's time axis (= Lava's, shifted by one step): every connection -- the input's, a layer's
  into the next, and a recurrent layer's from its own spikes -- delivers at step t what was sent at step t - 1.
  Each Lava ``Dense`` sums its effective weights (mixed signs drop the lowest bit) over the spikes and shifts by
  the layer's ``weight_exp`` on its own; the LIF's ``a_in`` is the sum of its Dense outputs; then
  ``u = trunc(u (4095 - du)) + (a << 6)`` wrapped to 24 bit, ``v = clip(trunc(v (4096 - dv)) + u + bias <<
  bias_exp)``, spike iff ``v > vth << 6``, then ``v = 0``.

* :func:`run_nir` -- a NIR graph read with NIR's published node equations only (forward Euler, step ``dt``), cycles
  included: nodes run in the order of a depth-first walk from the Input node, and an edge that closes a cycle
  carries the value its source had at the previous step, the one-step delay every NIR simulator gives a loop (at
  the first step the loop has carried no spikes yet: an ``Affine`` there gives its bias, as snnTorch's ``RLeaky``
  adds its recurrent bias from the first step on). ``ff_delay=1`` puts Lava's one-step delay on every edge into a
  synapse node that is on no cycle (the feed-forward connections).

* :func:`snntorch_run` -- snnTorch 1.0's importer, node by node: its ``_replace_rnn_subgraph_with_nirgraph`` (a
  neuron <-> Affine/Linear loop becomes a sub-graph) and ``_nir_to_snntorch_module`` (a loop becomes
  ``snn.RLeaky``/``snn.RSynaptic``), the modules stepped along the chain. ``snntorch.import_nir.import_from_nir``
  itself ends by handing that graph to nirtorch 2.6's ``nir_to_torch``, which cannot wire snnTorch's sub-graph
  node (``AttributeError: 'GraphModule' object has no attribute 'items'`` -- snnTorch's own ``RLeaky`` exports
  included); :func:`snntorch_nirtorch_run` runs ``import_from_nir`` with the sub-graph step left out, so nirtorch
  wires the loop itself (snnTorch's ``Leaky`` and ``Linear`` modules, the loop one step late).
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np

from hwsim.sim.network import Flatten, FloatALIF, Recurrent

SYNAPSES = ("Affine", "Linear", "Conv2d")
NEURONS = ("LIF", "CubaLIF", "IF")


# ---------------------------------------------------------------------------------------------------------
# hwsim networks
# ---------------------------------------------------------------------------------------------------------
def _neuron_layers(network):
    return [layer for layer in network.layers if not isinstance(layer, Flatten)]


def run_float(network, x: np.ndarray) -> list[np.ndarray]:
    """Every neuron layer's spikes ``(T, B, n)`` uint8 for 0/1 ``x`` ``(T, B, *input_shape)``."""
    x = np.asarray(x, np.float32).reshape(x.shape[0], x.shape[1], -1)
    steps, batch = x.shape[:2]
    f32 = np.float32
    layers = _neuron_layers(network)
    state = [dict(u=np.zeros((batch, n.n_out), f32), s=np.zeros((batch, n.n_out), f32),
                  a=np.zeros((batch, n.n_out), f32)) for n in layers]
    out = [np.zeros((steps, batch, n.n_out), np.uint8) for n in layers]
    for t in range(steps):
        h = x[t]
        for k, layer in enumerate(layers):
            st, neuron = state[k], layer.neuron
            current = h @ layer.weight.astype(f32).T
            if isinstance(layer, Recurrent):
                current = current + st["s"] @ layer.recurrent.astype(f32).T
            if layer.bias is not None:
                current = current + layer.bias.astype(f32)
            lam, v_th = f32(neuron.lam), f32(neuron.v_th)
            if neuron.reset == "soft":
                u = lam * (st["u"] - v_th * st["s"]) + current
            else:
                u = lam * (st["u"] * (f32(1) - st["s"])) + current
            threshold = v_th
            if isinstance(neuron, FloatALIF):
                st["a"] = f32(neuron.rho) * st["a"] + st["s"]
                threshold = v_th + f32(neuron.beta) * st["a"]
            s = (u >= threshold).astype(f32)
            st["u"], st["s"] = u.astype(f32), s
            out[k][t] = s
            h = s
    return out


def lava_weights(weight: np.ndarray) -> np.ndarray:
    """The integer weights one Lava ``Dense`` applies (8-bit, mixed signs lose their lowest bit)."""
    w = np.asarray(weight, np.int64)
    return (w >> 1) << 1 if w.min(initial=0) < 0 < w.max(initial=0) else w


def _dense_out(weight: np.ndarray, spikes: np.ndarray, exp: int) -> np.ndarray:
    a = spikes.astype(np.int64) @ lava_weights(weight).T
    return a << exp if exp >= 0 else a >> -exp


def _wrap32(value: np.ndarray) -> np.ndarray:
    return ((np.asarray(value, np.int64) + 2**31) % 2**32) - 2**31


def _trunc(value: np.ndarray, factor: int) -> np.ndarray:
    product = value.astype(np.int64) * factor
    return np.sign(product) * (np.abs(product) >> 12)


def run_fixed(network, x: np.ndarray, record_v: bool = False):
    """Every neuron layer's spikes ``(T, B, n)`` (and, with ``record_v``, v ``(T, B, n)``) of a fixed-point
    network on 0/1 ``x`` ``(T, B, *input_shape)``, Lava's timing on hwsim's axis."""
    x = np.asarray(x, np.int64).reshape(x.shape[0], x.shape[1], -1)
    steps, batch = x.shape[:2]
    layers = _neuron_layers(network)
    state = [dict(u=np.zeros((batch, n.n_out), np.int64), v=np.zeros((batch, n.n_out), np.int64),
                  a=np.zeros((batch, n.n_out), np.int64), s=np.zeros((batch, n.n_out), np.int64)) for n in layers]
    spikes = [np.zeros((steps, batch, n.n_out), np.uint8) for n in layers]
    volts = [np.zeros((steps, batch, n.n_out), np.int64) for n in layers]
    for t in range(steps):
        h = x[t]
        for k, layer in enumerate(layers):
            st, neuron = state[k], layer.neuron
            # the LIF runs on the a_in its Dense processes computed from the previous step's spikes
            u = _wrap32(_trunc(st["u"], 4095 - neuron.du) + _wrap32(st["a"] << 6))  # int32, as Lava's arrays
            u = np.where(u > 2**23, u - 2**24, u)
            u = np.where(u <= -(2**23), u + 2**24, u)
            bias = 0 if layer.bias is None else layer.bias.astype(np.int64) << neuron.bias_exp
            v = np.clip(_trunc(st["v"], 4096 - neuron.dv) + u + bias, -(2**23) + 1, 2**23 - 1)
            s = (v > (neuron.vth << 6)).astype(np.int64)
            v = np.where(s == 1, 0, v)
            a = _dense_out(layer.weight, h, layer.weight_exp)
            if isinstance(layer, Recurrent):
                a = _wrap32(a + _dense_out(layer.recurrent, s, layer.weight_exp))
            st.update(u=u, v=v, s=s, a=a)
            spikes[k][t], volts[k][t] = s, v
            h = s
    return (spikes, volts) if record_v else spikes


# ---------------------------------------------------------------------------------------------------------
# NIR graphs, by NIR's equations
# ---------------------------------------------------------------------------------------------------------
def _walk(graph) -> tuple[list[str], set[tuple[str, str]]]:
    """Nodes in depth-first post-order reversed from the Input node, and the edges that close cycles."""
    following: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        following.setdefault(src, []).append(dst)
    start = next(n for n, node in graph.nodes.items() if type(node).__name__ == "Input")
    post, back, on_path, done = [], set(), set(), set()

    def visit(node):
        on_path.add(node)
        for nxt in following.get(node, []):
            if nxt in on_path:
                back.add((node, nxt))
            elif nxt not in done:
                visit(nxt)
        on_path.discard(node)
        done.add(node)
        post.append(node)

    visit(start)
    return post[::-1], back


def _on_cycle(graph, node: str) -> bool:
    following: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        following.setdefault(src, []).append(dst)
    seen, queue = set(), list(following.get(node, []))
    while queue:
        current = queue.pop()
        if current == node:
            return True
        if current not in seen:
            seen.add(current)
            queue += following.get(current, [])
    return False


def _neuron_step(node, current, state, dt):
    kind = type(node).__name__
    if kind == "IF":
        v = state["v"] + dt * node.r * current
    elif kind == "LIF":
        v = state["v"] + dt / node.tau * (node.v_leak - state["v"] + node.r * current)
    else:
        state["i"] = state["i"] + dt / node.tau_syn * (-state["i"] + node.w_in * current)
        v = state["v"] + dt / node.tau_mem * (node.v_leak - state["v"] + node.r * state["i"])
    spikes = (v > node.v_threshold).astype(np.float64)
    state["v"] = np.where(spikes > 0, node.v_reset, v)
    return spikes


def run_nir(graph, x: np.ndarray, dt: float | None = None, ff_delay: int = 0) -> list[np.ndarray]:
    """Every neuron node's spikes ``(T, B, n)``, in the walk's order, for ``x`` ``(T, B, *input_shape)``."""
    if any(type(node).__name__ == "NIRGraph" for node in graph.nodes.values()):
        raise ValueError("nested NIR graphs are not read here")
    dt = float(np.asarray(graph.metadata.get("dt", 1e-4))) if dt is None else dt
    order, back = _walk(graph)
    x = np.asarray(x, np.float64)
    steps, batch = x.shape[:2]
    delayed = {name for name in order if type(graph.nodes[name]).__name__ in SYNAPSES and not _on_cycle(graph, name)}
    incoming: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        incoming.setdefault(dst, []).append(src)
    previous: dict[str, np.ndarray] = {}
    history: dict[str, list[np.ndarray]] = {}
    states = {name: {"v": 0.0, "i": 0.0} for name in order}
    neurons = [name for name in order if type(graph.nodes[name]).__name__ in NEURONS]
    out = {name: [] for name in neurons}
    for t in range(steps):
        values: dict[str, np.ndarray] = {}
        for name in order:
            node = graph.nodes[name]
            kind = type(node).__name__
            if kind == "Input":
                values[name] = x[t].reshape(batch, -1)
                continue
            parts = []
            for src in incoming.get(name, []):
                if (src, name) in back:  # before the first step the loop carries no spikes: an Affine gives its bias
                    parts.append(previous.get(src, getattr(graph.nodes[src], "bias", 0.0)))
                elif name in delayed and ff_delay:
                    past = history.get(src, [])
                    parts.append(past[-ff_delay] if len(past) >= ff_delay else np.zeros_like(values[src]))
                else:
                    parts.append(values[src])
            signal = sum(parts)
            if kind == "Affine":
                values[name] = signal @ node.weight.T + node.bias
            elif kind == "Linear":
                values[name] = signal @ node.weight.T
            elif kind == "Flatten":
                values[name] = signal.reshape(batch, -1)
            elif kind in NEURONS:
                values[name] = _neuron_step(node, signal, states[name], dt)
                out[name].append(values[name].copy())
            elif kind == "Output":
                values[name] = signal
            else:
                raise ValueError(f"node {name}: {kind} is not read here")
        for name, value in values.items():
            history.setdefault(name, []).append(value)
        previous = values
    return [np.stack(out[name]).astype(np.uint8) for name in neurons]


# ---------------------------------------------------------------------------------------------------------
# snnTorch's importer
# ---------------------------------------------------------------------------------------------------------
def _chain_after(graph) -> list[str]:
    following = dict(graph.edges)
    node = following[next(n for n, v in graph.nodes.items() if type(v).__name__ == "Input")]
    order = []
    while type(graph.nodes[node]).__name__ != "Output":
        order.append(node)
        node = following[node]
    return order


def snntorch_modules(graph):
    """``[(node kind, module)]`` along the chain, from snnTorch 1.0's own conversion steps."""
    from snntorch import import_nir

    graph = copy.deepcopy(graph)
    with contextlib.redirect_stdout(io.StringIO()):  # snnTorch prints while it converts
        graph = import_nir._replace_rnn_subgraph_with_nirgraph(graph)
        return [(type(graph.nodes[n]).__name__, import_nir._nir_to_snntorch_module(graph.nodes[n], init_hidden=True))
                for n in _chain_after(graph)]


def snntorch_run(graph, x: np.ndarray, ff_delay: int = 0) -> list[np.ndarray]:
    """Every neuron module's spikes ``(T, B, n)`` of snnTorch's modules for ``graph`` on ``x`` ``(T, B, n_in)``;
    ``ff_delay``: a one-step delay before every feed-forward synapse module (for Lava's timing)."""
    import torch

    modules = snntorch_modules(graph)
    buffers: dict[int, torch.Tensor] = {}
    rows = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            h, spikes = torch.from_numpy(np.asarray(x[t], np.float32)), []
            for k, (kind, module) in enumerate(modules):
                if kind in SYNAPSES and ff_delay:
                    h, buffers[k] = buffers.get(k, torch.zeros_like(h)), h
                h = module(h)
                if kind in NEURONS or kind == "NIRGraph":
                    spikes.append(h.numpy().copy())
            rows.append(spikes)
    return [np.stack([row[k] for row in rows]).astype(np.uint8) for k in range(len(rows[0]))]


def snntorch_nirtorch_run(graph, x: np.ndarray) -> np.ndarray:
    """The output spikes ``(T, B, n)`` of ``snntorch.import_nir.import_from_nir(graph)`` with its sub-graph step
    left out (nirtorch 2.6 wires the neuron <-> Linear loop itself, one step late)."""
    import torch
    from snntorch import import_nir

    original = import_nir._replace_rnn_subgraph_with_nirgraph
    import_nir._replace_rnn_subgraph_with_nirgraph = lambda g: g
    try:
        model = import_nir.import_from_nir(copy.deepcopy(graph))
    finally:
        import_nir._replace_rnn_subgraph_with_nirgraph = original
    rows, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = model(torch.from_numpy(np.asarray(x[t], np.float32)), state)
            rows.append(out.numpy().copy())
    return np.stack(rows).astype(np.uint8)


def agreement(spikes: np.ndarray, golden: np.ndarray) -> float:
    """Share of spikes equal: 1 - (entries that differ) / (spikes in the larger of the two)."""
    spikes, golden = np.asarray(spikes).reshape(np.shape(golden)), np.asarray(golden)
    total = max(int(spikes.sum()), int(golden.sum()), 1)
    return 1.0 - int((spikes != golden).sum()) / total
