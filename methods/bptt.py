"""BPTT: backpropagation through the whole unrolled sequence (the reference; memory O(L N T))."""

from __future__ import annotations

import torch
from hwsim.methods.rule import StepResult, TrainingRule


class BPTT(TrainingRule):
    name = "bptt"

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        steps = x.shape[0]
        states, loss, logits = None, 0.0, 0.0
        for t in range(steps):
            out, _, states = self.model.step(x[t], states)
            loss = loss + self.loss(out, y, steps)
            logits = logits + out.detach().flatten(1)
        loss.backward()
        return StepResult(float(loss.detach()), logits)


def build(entry, network, surrogate, options, device) -> BPTT:
    """The registry's builder (:mod:`hwsim.learning.registry`): BPTT over a torch copy of ``network``."""
    from hwsim.methods.models import SpikingNet

    return BPTT(SpikingNet.from_network(network, surrogate).to(device))
