"""TTL-BPTT (Guo et al., Front. Neurosci. 2023): temporally truncated, locally supervised BPTT.

The neuron layers are cut into blocks of ``block`` layers; every block but the last has its own local
classifier (a linear read-out of its last layer's spikes) and no error crosses a block boundary (a block's
input is a constant). Time is cut into windows of ``window`` steps: BPTT inside a window, the state
carried into the next window as a constant. ``window = T`` with one block is BPTT; ``window = 1`` with one
block is SLTT.

Recurrent layers and ALIF: BPTT through the recurrent edge, the membrane and the adaptation inside each window;
``u``, ``a`` and ``s`` (so the first recurrent input of a window) are carried into the next window as constants.
With ``loss_steps`` only the scored steps carry a loss (a window without one makes no backward pass).

Update cadence: ``update="batch"`` (default) accumulates every window's gradient and updates the weights once
per batch, as the other rules do and as the on-chip kernel (``hwsim/learning/kernels/graph.py``) does, so torch and
chip stay comparable; ``update="window"`` steps the optimizer after every window's backward pass -- truncated
BPTT as Williams & Peng define it, the reading under which the paper's "backward and update unlocking" holds.
The paper's text available here (abstract and summary) does not state its cadence; both are offered.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from hwsim.methods.models import SpikingNet
from hwsim.methods.neuron import LIFState
from hwsim.methods.rule import RuleError, StepResult, TrainingRule
from torch import nn


class TTLBPTT(TrainingRule):
    name = "ttl_bptt"

    def __init__(self, model: SpikingNet, window: int, block: int, seed: int = 0, update: str = "batch"):
        super().__init__(model)
        if update not in ("batch", "window"):
            raise RuleError(f"TTL-BPTT update cadence must be 'batch' or 'window', got {update!r}")
        self.update = update
        self.updates_inside_batch = update == "window"
        layers = len(model.stages)
        if window < 1:
            raise RuleError(f"TTL-BPTT needs a window k >= 1, got {window}")
        if block < 1 or layers % block:
            raise RuleError(f"TTL-BPTT block size {block} does not divide the network's {layers} neuron layers "
                            f"(choose one of {[b for b in range(1, layers + 1) if layers % b == 0]})")
        self.window, self.block = window, block
        self.blocks = [(lo, lo + block) for lo in range(0, layers, block)]
        generator = torch.Generator().manual_seed(seed)
        heads = []
        for _, hi in self.blocks[:-1]:
            features = int(np.prod(model.stages[hi - 1].out_shape))
            head = nn.Linear(features, model.n_classes)
            with torch.no_grad():
                bound = 1.0 / np.sqrt(features)
                head.weight.uniform_(-bound, bound, generator=generator)
                head.bias.uniform_(-bound, bound, generator=generator)
            heads.append(head)
        self.classifiers = nn.ModuleList(heads).to(next(model.parameters()).device)

    def parameters(self) -> Iterator[nn.Parameter]:
        yield from self.model.parameters()
        yield from self.classifiers.parameters()

    def modules(self) -> list[nn.Module]:
        return [self.model, self.classifiers]

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        if self.update == "window":
            raise RuleError("TTL-BPTT with update='window' steps the optimizer every window: use step(x, y, optimizer)")
        return self._run(x, y, None)

    def step(self, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> StepResult:
        if self.update == "batch":
            return super().step(x, y, optimizer)
        optimizer.zero_grad(set_to_none=True)
        return self._run(x, y, optimizer)

    def _run(self, x: torch.Tensor, y: torch.Tensor, optimizer) -> StepResult:
        steps = x.shape[0]
        if self.window > steps:
            raise RuleError(f"TTL-BPTT window k={self.window} is longer than T={steps}")
        scored, divisor = self.scoring(steps)
        states: list[LIFState | None] = [None] * len(self.model.stages)
        total, logits = 0.0, 0.0
        for start in range(0, steps, self.window):
            states = [None if s is None else LIFState(*(None if v is None else v.detach() for v in s))
                      for s in states]  # u, s (and a) enter the window as constants
            loss, stop = 0.0, min(start + self.window, steps)
            with torch.set_grad_enabled(any(scored[start:stop]) and torch.is_grad_enabled()):
                for t in range(start, stop):
                    inp = x[t]
                    for b, (lo, hi) in enumerate(self.blocks):
                        chunk, states[lo:hi] = states[lo:hi], [None] * (hi - lo)  # consumed by step
                        out, spikes, states[lo:hi] = self.model.step(inp.detach(), chunk, start=lo, stop=hi)
                        if scored[t]:
                            local = out if b == len(self.blocks) - 1 else self.classifiers[b](spikes[-1].flatten(1))
                            loss = loss + self.loss(local, y, divisor)
                        inp = spikes[-1]
                    if scored[t]:
                        logits = logits + out.detach().flatten(1)
            if not torch.is_tensor(loss):  # no scored step in this window: nothing to back-propagate
                continue
            loss.backward()
            if optimizer is not None:  # update="window": one weight update per window
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            total += float(loss.detach())
        return StepResult(total, logits)

    def describe(self) -> dict:
        return {"rule": self.name, "window": self.window, "block": self.block, "update": self.update,
                "blocks": [[s.name for s in self.model.stages[lo:hi]] for lo, hi in self.blocks]}


def build(entry, network, surrogate, options, device) -> TTLBPTT:
    """The registry's builder: TTL-BPTT with the window, block and update cadence of ``options``."""
    model = SpikingNet.from_network(network, surrogate).to(device)
    return TTLBPTT(model, window=options.window, block=options.block, seed=options.seed, update=options.ttl_update)
