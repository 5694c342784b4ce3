"""Run a NIR graph end to end in the common readers: the numpy reading of NIR's equations
(:mod:`tests.nir_reference`), snnTorch 1.0's ``import_from_nir`` and spikingjelly 2.0's ``import_from_nir``.

Two ways, both with every layer fed by the reader's own previous layer (no teacher forcing):

* :func:`run_whole` -- the reader's own model forward, step by step, as a user would run it. NIR has no delays, so
  layer k of a delay-free reader is k+1 steps ahead of Lava (exactly so for networks without biases): output
  step t is compared with golden step t + depth.
* :func:`run_delayed` -- the reader's own modules, one per node, with a one-step delay before every synapse node
  (the graph metadata's ``delay_steps_per_synapse``), so every layer lines up with Lava step for step even with
  biases. Flatten nodes are applied here as a per-sample reshape.

snnTorch 1.0 turns NIR's ``Flatten(start_dim=0)`` (the first non-batch axis, as NIR's type inference reads it)
into ``torch.nn.Flatten(0)``, which folds the batch in, so its whole-model forward runs one sample at a time.
"""

from __future__ import annotations

import copy

import numpy as np

from tests import nir_reference as ref

READERS = ("numpy", "snntorch", "spikingjelly")


def import_model(reader: str, graph):
    """The reader's own module for ``graph`` (a copy: snnTorch edits the graph it imports)."""
    graph = copy.deepcopy(graph)
    if reader == "snntorch":
        from snntorch.import_nir import import_from_nir

        return import_from_nir(graph)
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    return import_from_nir(graph, dt=float(np.asarray(graph.metadata.get("dt", 1e-4))))


def depth(graph) -> int:
    return sum(type(graph.nodes[n]).__name__ in ref.NEURONS for n in ref.chain(graph))


def run_whole(reader: str, graph, x: np.ndarray) -> np.ndarray:
    """Output spikes ``(T, B, n)`` of the reader's own model forward on ``x`` ``(T, B, *input_shape)``."""
    steps, batch = x.shape[:2]
    if reader == "numpy":
        spikes, _ = ref.run(graph, x, float(np.asarray(graph.metadata.get("dt", 1e-4))))[-1]
        return spikes.reshape(steps, batch, -1)
    import torch

    out = np.zeros((steps, batch, 0))
    with torch.no_grad():
        if reader == "snntorch":
            lanes = []
            for b in range(batch):
                model = import_model(reader, graph)
                lanes.append(np.stack([model(torch.from_numpy(x[t, b:b + 1]).float())[0].numpy().reshape(-1)
                                       for t in range(steps)]))
            out = np.stack(lanes, axis=1)
        else:
            model, state, rows = import_model(reader, graph), None, []
            for t in range(steps):
                s, state = model(torch.from_numpy(x[t]).float(), state)
                rows.append(s.numpy().reshape(batch, -1))
            out = np.stack(rows)
    return out


def run_delayed(reader: str, graph, x: np.ndarray) -> list[np.ndarray]:
    """Every neuron layer's spikes ``(T, B, n)`` with a one-step delay before every synapse node."""
    steps, batch = x.shape[:2]
    if reader == "numpy":
        dt = float(np.asarray(graph.metadata.get("dt", 1e-4)))
        return [s.reshape(steps, batch, -1) for s, _ in ref.run(graph, x, dt, delay=1)]
    import torch

    model = import_model(reader, graph)
    modules = dict(model.named_children())
    order = ref.chain(graph)
    buffers = {name: None for name in order}
    states: dict = {name: None for name in order}
    rows = []
    with torch.no_grad():
        for t in range(steps):
            h, layers = torch.from_numpy(x[t]).float(), []
            for name in order:
                kind = type(graph.nodes[name]).__name__
                module = modules[name.replace(".", "_")]
                if kind in ref.SYNAPSES:
                    h, buffers[name] = (torch.zeros_like(h) if buffers[name] is None else buffers[name]), h
                    h = module(h)
                elif kind == "Flatten":
                    h = h.reshape(batch, -1)
                elif reader == "snntorch":
                    h = module(h)
                    layers.append(h.numpy().reshape(batch, -1).copy())
                else:
                    h, states[name] = module(h, states[name])
                    layers.append(h.numpy().reshape(batch, -1).copy())
            rows.append(layers)
    return [np.stack([row[k] for row in rows]) for k in range(len(rows[0]))]


def agreement(spikes: np.ndarray, golden: np.ndarray) -> float:
    """Share of spikes equal: 1 - (entries that differ) / (spikes in the larger of the two)."""
    spikes, golden = spikes.reshape(golden.shape), np.asarray(golden)
    total = max(int(spikes.sum()), int(golden.sum()), 1)
    return 1.0 - int((spikes != golden).sum()) / total
