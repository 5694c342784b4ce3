"""What every training rule shares: the per-step loss, the step interface, the registry.

Loss on chosen steps: a task may score only some steps (cue accumulation scores its recall window): its
``loss_steps`` (bool (T,), :attr:`TrainingRule.loss_steps`) makes the per-step loss ``CE(o[t], y) / n_scored`` on
the scored steps and 0 elsewhere; ``None`` (every step scored) keeps ``CE(o[t], y) / T`` on every step. A rule asks
:meth:`TrainingRule.scoring` once per batch; the read-out it returns (``StepResult.logits``) is summed over the
scored steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from hwsim.methods.errors import RuleError  # re-exported: methods.rule.RuleError
from hwsim.methods.models import SpikingNet


@dataclass
class StepResult:
    """One training step: mean loss (float) and the read-out summed over the scored steps ``(B, classes)`` (every
    step when the task scores every step)."""

    loss: float
    logits: torch.Tensor
    info: dict = field(default_factory=dict)


MSE_TARGETS = ("means", "one_hot")


@dataclass(frozen=True)
class LossMix:
    """The per-step loss of the papers' code: ``((1 - mse) CE(o, y) + mse MSE(o, goal)) / T``. ``mse`` is the
    weight of the mean-squared term (0: cross-entropy alone, hwsim's default and what the on-chip kernels
    compute; 0.05 in both the SLTT and the OTTT code, ``loss_lambda``); ``target`` the goal of that term:
    ``"means"`` every read-out against ``means`` (1.0) -- the SLTT code's default (``mse_n_reg`` off,
    ``loss_means`` 1.0) -- or ``"one_hot"`` the one-hot label -- the OTTT code."""

    mse: float = 0.0
    target: str = "means"
    means: float = 1.0


def step_loss(readout: torch.Tensor, target: torch.Tensor, steps: int, mix: LossMix | None = None) -> torch.Tensor:
    """Per-step loss on the read-out: cross-entropy / T (SLTT and OTTT), or the papers' CE + MSE mix."""
    out = readout.flatten(1)
    ce = F.cross_entropy(out, target)
    if mix is None or mix.mse == 0.0:
        return ce / steps
    goal = F.one_hot(target, out.shape[1]).to(out.dtype) if mix.target == "one_hot" else \
        torch.full_like(out, mix.means)
    return ((1.0 - mix.mse) * ce + mix.mse * F.mse_loss(out, goal)) / steps


class TrainingRule:
    """Base class. A rule fills the parameters' ``.grad`` for one batch in :meth:`accumulate`
    (weights are then updated once per batch by :meth:`step`); rules that update inside the sample
    (OTTT_O) override :meth:`step`."""

    name = "base"
    updates_inside_batch = False  # True: weights change during the batch, so only step(x, y, optimizer) runs
    loss_mix = LossMix()  # build_rule sets the run's mix
    loss_steps: torch.Tensor | None = None  # bool (T,): the scored steps (hwsim.methods.train sets the task's)
    paper_mse_target = "one_hot"  # the MSE goal of the rule's paper code (SLTT's: "means")

    def __init__(self, model: SpikingNet):
        self.model = model

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """Every trainable parameter: the network's and any auxiliary (local classifiers, STDL copies)."""
        yield from self.model.parameters()

    def modules(self) -> list[torch.nn.Module]:
        return [self.model]

    def loss(self, readout: torch.Tensor, target: torch.Tensor, steps: int) -> torch.Tensor:
        """The per-step loss with the rule's :class:`LossMix`; ``steps`` is the divisor: T, or the number of scored
        steps (:meth:`scoring`)."""
        return step_loss(readout, target, steps, self.loss_mix)

    def scoring(self, steps: int) -> tuple[list[bool], int]:
        """Which of ``steps`` steps carry a loss, and the loss's divisor: every step and T without
        :attr:`loss_steps`; else the task's mask and its number of scored steps. A mask of another length, or one
        that scores nothing, is one :class:`RuleError` line."""
        if self.loss_steps is None:
            return [True] * steps, steps
        mask = [bool(v) for v in self.loss_steps]
        if len(mask) != steps:
            raise RuleError(f"loss_steps has {len(mask)} entries; the input has T={steps} steps")
        scored = sum(mask)
        if scored == 0:
            raise RuleError("loss_steps scores no step: at least one step must carry the loss")
        return mask, scored

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
