"""STDL, online mode (Ma et al., arXiv 2506.01117, 2025), as read from the paper's description.

The neuron layers are cut into subnetworks of ``subnet`` layers. Each subnetwork but the last trains
against its own auxiliary network: a copy (own weights, initialised from the current ones) of the
*largest* run of the layers that follow it whose training memory fits ``budget_bytes``, then a linear
classifier of the copy's last spikes (none when the copy reaches the network's read-out). Subnetworks
receive their input as a constant (no error crosses), and time is decoupled as in SLTT (the previous
state enters each step as a constant), so every step trains online.

Training memory of a candidate (our reading of "memory constraint") = 3 x its parameter bytes (weights,
gradients, SGD momentum) + the activation bytes autograd keeps for one step of it at the training batch
size, measured with :class:`methods.memory.ActivationMeter`. The choice is reported by :meth:`describe`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from methods.memory import ActivationMeter
from methods.models import SpikingNet, Stage
from methods.rule import RuleError, StepResult, TrainingRule, step_loss


class AuxNet(nn.Module):
    """An auxiliary network: copied stages (own weights) plus an optional linear classifier."""

    def __init__(self, stages: list[Stage], n_classes: int, in_shape: tuple[int, ...], reaches_readout: bool,
                 surrogate, generator: torch.Generator):
        super().__init__()
        self.body = SpikingNet([copy.deepcopy(stage) for stage in stages], in_shape, surrogate) if stages else None
        self.classifier = None
        if not reaches_readout:
            features = int(np.prod(stages[-1].out_shape if stages else in_shape))
            self.classifier = nn.Linear(features, n_classes)
            with torch.no_grad():
                bound = 1.0 / np.sqrt(features)
                self.classifier.weight.uniform_(-bound, bound, generator=generator)
                self.classifier.bias.uniform_(-bound, bound, generator=generator)
        self.names = [stage.name for stage in stages] + ([] if reaches_readout else ["classifier"])

    def step(self, spikes: torch.Tensor, states):
        if self.body is not None:
            out, body_spikes, states = self.body.step(spikes, states, detach_state=True)
            spikes = body_spikes[-1]
            if self.classifier is None:
                return out, states
        return self.classifier(spikes.flatten(1)), states


class STDL(TrainingRule):
    name = "stdl"

    def __init__(self, model: SpikingNet, subnet: int, budget_bytes: int, batch_size: int, seed: int = 0):
        super().__init__(model)
        layers = len(model.stages)
        if subnet < 1 or subnet >= layers:
            raise RuleError(f"STDL subnetwork size must be in 1..{layers - 1} for a network of {layers} neuron "
                            f"layers, got {subnet}")
        if budget_bytes <= 0:
            raise RuleError(f"STDL memory budget must be > 0 bytes, got {budget_bytes}")
        self.subnet, self.budget = subnet, int(budget_bytes)
        self.subnets = [(lo, min(lo + subnet, layers)) for lo in range(0, layers, subnet)]
        generator = torch.Generator().manual_seed(seed)
        device = next(model.parameters()).device
        auxes, self.aux_bytes = [], []
        for i, (_, hi) in enumerate(self.subnets[:-1]):
            aux, needed = self._choose(hi, batch_size, generator, device)
            if aux is None:
                raise RuleError(f"STDL memory budget {self.budget} bytes is too small for any auxiliary network of "
                                f"subnetwork {i}: the smallest (a classifier alone) needs {needed} bytes")
            auxes.append(aux)
            self.aux_bytes.append(needed)
        self.aux = nn.ModuleList(auxes)

    def _choose(self, hi: int, batch: int, generator: torch.Generator, device) -> tuple[AuxNet | None, int]:
        stages, last = self.model.stages, len(self.model.stages)
        in_shape = stages[hi - 1].out_shape
        smallest = None
        for m in range(last - hi, -1, -1):
            candidate = AuxNet(stages[hi:hi + m], self.model.n_classes, in_shape, hi + m == last,
                               self.model.surrogate, generator).to(device)
            needed = training_bytes(candidate, in_shape, batch, device)
            smallest = needed
            if needed <= self.budget:
                return candidate, needed
        return None, smallest

    def parameters(self) -> Iterator[nn.Parameter]:
        yield from self.model.parameters()
        yield from self.aux.parameters()

    def modules(self) -> list[nn.Module]:
        return [self.model, self.aux]

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        steps = x.shape[0]
        states: list = [None] * len(self.model.stages)
        aux_states: list = [None] * len(self.aux)
        total, logits = 0.0, 0.0
        for t in range(steps):
            inp, loss, out = x[t], 0.0, None
            for i, (lo, hi) in enumerate(self.subnets):
                out, spikes, states[lo:hi] = self.model.step(inp.detach(), states[lo:hi], detach_state=True,
                                                             start=lo, stop=hi)
                if i < len(self.aux):
                    local, aux_states[i] = self.aux[i].step(spikes[-1], aux_states[i])
                else:
                    local = out
                loss = loss + step_loss(local, y, steps)
                inp = spikes[-1]
            loss.backward()
            total += float(loss.detach())
            logits = logits + out.detach().flatten(1)
        return StepResult(total, logits)

    def describe(self) -> dict:
        return {"rule": self.name, "subnet": self.subnet, "budget_bytes": self.budget,
                "subnetworks": [[s.name for s in self.model.stages[lo:hi]] for lo, hi in self.subnets],
                "auxiliary": [aux.names for aux in self.aux], "auxiliary_training_bytes": self.aux_bytes}


def training_bytes(module: AuxNet, in_shape: tuple[int, ...], batch: int, device) -> int:
    """3 x parameter bytes + activation bytes kept for one step's backward at batch size ``batch``."""
    params = sum(p.numel() * p.element_size() for p in module.parameters())
    probe = torch.zeros((batch, *in_shape), device=device)
    with ActivationMeter(module) as meter:
        out, _ = module.step(probe, None)
        out.sum().backward()
    module.zero_grad(set_to_none=True)
    return 3 * params + meter.report().peak_bytes
