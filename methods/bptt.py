"""BPTT: backpropagation through the whole unrolled sequence (the reference; memory O(L N T)).

Recurrent layers and ALIF: the gradient runs through every temporal path over all T steps -- the membrane, the
recurrent edge ``W_rec s[t-1]`` and the adaptation ``a[t]`` (plain autograd of the unrolled network)."""

from __future__ import annotations

import torch
from hwsim.methods.rule import StepResult, TrainingRule


class BPTT(TrainingRule):
    name = "bptt"

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        scored, divisor = self.scoring(x.shape[0])
        states, loss, logits = None, 0.0, 0.0
        for t, counted in enumerate(scored):
            out, _, states = self.model.step(x[t], states)
            if counted:  # unscored steps carry no loss; their states still carry the gradient through time
                loss = loss + self.loss(out, y, divisor)
                logits = logits + out.detach().flatten(1)
        loss.backward()
        return StepResult(float(loss.detach()), logits)


def build(entry, network, surrogate, options, device) -> BPTT:
    """The registry's builder (:mod:`hwsim.learning.registry`): BPTT over a torch copy of ``network``."""
    from hwsim.methods.models import SpikingNet

    return BPTT(SpikingNet.from_network(network, surrogate).to(device))
