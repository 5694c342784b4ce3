"""What every training rule shares: the per-step loss, the step interface, the registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from hwsim.methods.errors import RuleError  # noqa: F401  (re-exported: methods.rule.RuleError)
from hwsim.methods.models import SpikingNet


@dataclass
class StepResult:
    """One training step: mean loss (float) and the read-out summed over time ``(B, classes)``."""

    loss: float
    logits: torch.Tensor
    info: dict = field(default_factory=dict)


def step_loss(readout: torch.Tensor, target: torch.Tensor, steps: int) -> torch.Tensor:
    """Per-step loss on the read-out: cross-entropy / T (SLTT and OTTT)."""
    return F.cross_entropy(readout.flatten(1), target) / steps


class TrainingRule:
    """Base class. A rule fills the parameters' ``.grad`` for one batch in :meth:`accumulate`
    (weights are then updated once per batch by :meth:`step`); rules that update inside the sample
    (OTTT_O) override :meth:`step`."""

    name = "base"
    updates_inside_batch = False  # True: weights change during the batch, so only step(x, y, optimizer) runs

    def __init__(self, model: SpikingNet):
        self.model = model

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """Every trainable parameter: the network's and any auxiliary (local classifiers, STDL copies)."""
        yield from self.model.parameters()

    def modules(self) -> list[torch.nn.Module]:
        return [self.model]

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        raise NotImplementedError

    def step(self, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> StepResult:
        optimizer.zero_grad(set_to_none=True)
        result = self.accumulate(x, y)
        optimizer.step()
        return result

    def describe(self) -> dict:
        """Options and choices of the rule, for reports."""
        return {"rule": self.name}
