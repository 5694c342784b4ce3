"""OTTT (Xiao et al., NeurIPS 2022): SLTT's per-step spatial error with presynaptic traces.

``a[t] = lam * a[t-1] + s[t]`` per input of a hidden or read-out layer (each trace decays with the lam of
the layer that emits the spikes); the weight gradient is ``delta^l[t] a^{l-1}[t]^T`` while the forward
value still uses the spikes, and the error reaches the layer below through ``a[t]``'s dependence on
``s[t]``. The first layer takes the raw input: its gradient is ``delta^1[t] x[t]^T``, no trace on the network
input, as in the paper's official code (its first layer is not wrapped by the trace operator). OTTT_A
accumulates the gradient over the sample and updates once; OTTT_O updates the weights every step.
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
        model, steps = self.model, x.shape[0]
        stages, last = model.stages, len(model.stages) - 1
        traces: list[torch.Tensor | None] = [None] * len(stages)  # trace of the spikes entering stage k
        states: list = [None] * len(stages)
        total, logits = 0.0, 0.0
        for t in range(steps):
            inp, out = x[t], None
            for k, stage in enumerate(stages):
                trace = None
                if k > 0:  # the raw input has no trace; a hidden layer's trace decays with that layer's lam
                    with torch.no_grad():  # updated in place: the step before's graph (which saved it) is gone
                        if traces[k] is None:
                            traces[k] = inp.detach().clone()
                        else:
                            traces[k].mul_(stages[k - 1].neuron.lam).add_(inp)
                    trace = traces[k]
                if k < last:  # the current is not kept (lif_advance frees it once the membrane exists)
                    inp, states[k] = lif_advance(model.current(k, inp, trace), states, k, stage.neuron,
                                                 model.surrogate, detach_state=True)
                else:
                    out = model.current(k, inp, trace)
                    _, states[k] = lif_advance(out, states, k, stage.neuron, model.surrogate, detach_state=True)
            del inp
            loss = self.loss(out, y, steps)
            loss.backward()
            if optimizer is not None:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            total += float(loss.detach())
            logits = logits + out.detach().flatten(1)
        return StepResult(total, logits)

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
