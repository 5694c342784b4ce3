"""SLTT and SLTT-K (Meng et al., ICCV 2023): per-step backward through layers only.

The temporal gradient path is cut (the previous membrane and spikes enter each step as constants), so
every step's graph is freed by its own backward and memory does not grow with T:
``dW^l += delta^l[t] s^{l-1}[t]^T`` with ``delta^l[t] = g'(u^l[t] - V_th) * (W^{l+1}^T delta^{l+1}[t])``.
SLTT-K back-propagates only at K steps drawn uniformly without replacement per batch (``randperm(T)[:K]``);
the other steps run forward only; the loss is still divided by T.

Recurrent layers and ALIF: the recurrent input ``s[t-1]``, like ``u[t-1]`` and ``a[t-1]``, enters step t as a
constant, so the recurrent weights learn as from one more presynaptic input, ``dW_rec += delta[t] s[t-1]^T``, and
the adaptation ``a[t]`` is a constant of the step (the surrogate is taken at ``u[t] - A[t]``). A task that scores
only some steps (``loss_steps``) back-propagates on those (loss / their number); SLTT-K draws its K steps among them.
"""

from __future__ import annotations

import torch
from hwsim.methods.models import SpikingNet
from hwsim.methods.rule import RuleError, StepResult, TrainingRule


class SLTT(TrainingRule):
    name = "sltt"
    paper_mse_target = "means"  # the SLTT code's default: mse_n_reg off, every output against loss_means = 1

    def __init__(self, model: SpikingNet, k: int | None = None, generator: torch.Generator | None = None):
        super().__init__(model)
        if k is not None and k < 1:
            raise RuleError(f"SLTT-K needs K >= 1, got K={k}")
        self.k = k
        self.generator = generator or torch.Generator().manual_seed(0)
        self.last_backward_steps: list[int] = []

    def backward_steps(self, steps: int, scored: list[bool] | None = None) -> set[int]:
        """The steps that back-propagate: every scored step (SLTT), or K of them drawn uniformly without
        replacement (SLTT-K: ``randperm`` over the scored steps; over all T when every step is scored)."""
        candidates = list(range(steps)) if scored is None else [t for t in range(steps) if scored[t]]
        if self.k is None:
            return set(candidates)
        if self.k > len(candidates):
            what = f"the number of time steps T={steps}" if len(candidates) == steps else \
                f"the task's {len(candidates)} scored steps (loss_steps)"
            raise RuleError(f"SLTT-K: K={self.k} is larger than {what}")
        if len(candidates) == steps:
            return set(torch.randperm(steps, generator=self.generator)[: self.k].tolist())
        drawn = torch.randperm(len(candidates), generator=self.generator)[: self.k].tolist()
        return {candidates[i] for i in drawn}

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        steps = x.shape[0]
        scored, divisor = self.scoring(steps)
        chosen = self.backward_steps(steps, scored)
        self.last_backward_steps = sorted(chosen)
        states, total, logits = None, 0.0, 0.0
        for t in range(steps):
            if t in chosen:
                out, states = self.model.step(x[t], states, detach_state=True)[::2]  # spikes not kept
                loss = self.loss(out, y, divisor)
                loss.backward()
                total += float(loss.detach())
            else:
                with torch.no_grad():
                    out, states = self.model.step(x[t], states, detach_state=True)[::2]  # spikes not kept
                    if scored[t]:
                        total += float(self.loss(out, y, divisor))
            if scored[t]:
                logits = logits + out.detach().flatten(1)
        return StepResult(total, logits, {"backward_steps": self.last_backward_steps})

    def describe(self) -> dict:
        return {"rule": self.name if self.k is None else "sltt_k", "k": self.k}


def build(entry, network, surrogate, options, device) -> SLTT:
    """The registry's builder: SLTT, or SLTT-K when the registry entry samples its backward steps."""
    model = SpikingNet.from_network(network, surrogate).to(device)
    return SLTT(model, k=options.k if entry.sampled_steps else None,
                generator=torch.Generator().manual_seed(options.seed))
