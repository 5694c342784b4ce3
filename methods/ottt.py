"""OTTT (Xiao et al., NeurIPS 2022): SLTT's per-step spatial error with presynaptic traces.

``a[t] = lam * a[t-1] + s[t]`` per input of a hidden or read-out layer (each trace decays with the lam of
the layer that emits the spikes); the weight gradient is ``delta^l[t] a^{l-1}[t]^T`` while the forward
value still uses the spikes, and the error reaches the layer below through ``a[t]``'s dependence on
``s[t]``. The first layer takes the raw input: its gradient is ``delta^1[t] x[t]^T``, no trace on the network
input, as in the paper's official code (its first layer is not wrapped by the trace operator). OTTT_A
accumulates the gradient over the sample and updates once; OTTT_O updates the weights every step.

Recurrent layers and ALIF: as SLTT, the previous state (``u``, ``s``, ``a``) enters each step as a constant; the
recurrent weights learn from a presynaptic trace of the layer's own previous spikes, ``dW_rec += delta[t]
r_hat[t]^T`` with ``r_hat[t] = lam r_hat[t-1] + s[t-1]`` (the layer's own lam; ``r_hat[0] = 0``), while the forward
value uses ``s[t-1]``. With ``loss_steps`` only the scored steps back-propagate (and OTTT_O updates there only).
"""

from __future__ import annotations

import torch
from hwsim.methods.models import SpikingNet
from hwsim.methods.neuron import lif_advance
from hwsim.methods.rule import RuleError, StepResult, TrainingRule


class OTTT(TrainingRule):
    name = "ottt"

    def __init__(self, model: SpikingNet, variant: str = "A"):
        super().__init__(model)
        if variant not in ("A", "O"):
            raise RuleError(f"OTTT variant must be 'A' (accumulate) or 'O' (update every step), got {variant!r}")
        self.variant = variant
        self.name = f"ottt_{variant.lower()}"
        self.updates_inside_batch = variant == "O"

    def _run(self, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> StepResult:
        scored, divisor = self.scoring(x.shape[0])
        traces: list[torch.Tensor | None] = [None] * len(self.model.stages)  # trace of the spikes entering stage k
        recurrent: list[torch.Tensor | None] = [None] * len(self.model.stages)  # r_hat of a recurrent stage
        states: list = [None] * len(self.model.stages)
        total, logits = 0.0, 0.0
        for t, counted in enumerate(scored):
            with torch.set_grad_enabled(counted and torch.is_grad_enabled()):  # unscored: forward only
                out = self._forward(x[t], states, traces, recurrent)
                if not counted:
                    continue
                loss = self.loss(out, y, divisor)
            loss.backward()
            if optimizer is not None:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            total += float(loss.detach())
            logits = logits + out.detach().flatten(1)
        return StepResult(total, logits)

    def _forward(self, x_t: torch.Tensor, states: list, traces: list, recurrent: list) -> torch.Tensor:
        """One step through every stage (states and traces updated in place in the lists); returns the read-out."""
        model = self.model
        stages, last = model.stages, len(model.stages) - 1
        inp = x_t
        for k, stage in enumerate(stages):
            trace = None
            if k > 0:  # the raw input has no trace; a hidden layer's trace decays with that layer's lam
                with torch.no_grad():  # updated in place: the step before's graph (which saved it) is gone
                    if traces[k] is None:
                        traces[k] = inp.detach().clone()
                    else:
                        traces[k].mul_(stages[k - 1].neuron.lam).add_(inp)
                trace = traces[k]
            if stage.recurrent is not None and states[k] is not None:  # r_hat[t] = lam r_hat[t-1] + s[t-1]
                with torch.no_grad():
                    if recurrent[k] is None:
                        recurrent[k] = states[k].s.detach().clone()
                    else:
                        recurrent[k].mul_(stage.neuron.lam).add_(states[k].s)
            if k < last:  # the current is not kept (lif_advance frees it once the membrane exists)
                inp, states[k] = lif_advance(model.stage_current(k, inp, states[k], True, trace, recurrent[k]),
                                             states, k, stage.neuron, model.surrogate, detach_state=True)
            else:
                out = model.stage_current(k, inp, states[k], True, trace, recurrent[k])
                _, states[k] = lif_advance(out, states, k, stage.neuron, model.surrogate, detach_state=True)
                return out
        raise AssertionError("a network has at least one stage")

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        if self.variant == "O":
            raise RuleError("OTTT_O updates the weights every step: use step(x, y, optimizer)")
        return self._run(x, y, None)

    def step(self, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> StepResult:
        if self.variant == "A":
            return super().step(x, y, optimizer)
        optimizer.zero_grad(set_to_none=True)
        return self._run(x, y, optimizer)

    def describe(self) -> dict:
        return {"rule": self.name}


def build(entry, network, surrogate, options, device) -> OTTT:
    """The registry's builder: OTTT_O when the registry entry updates every step, else OTTT_A."""
    model = SpikingNet.from_network(network, surrogate).to(device)
    return OTTT(model, variant="O" if entry.update_every_step else "A")
