"""STDL, online mode (Ma et al., arXiv 2506.01117, 2025), as read from the paper's description.

The neuron layers are cut into subnetworks of ``subnet`` layers. Each subnetwork but the last trains
against its own auxiliary network: the *largest* run of the layers that follow it whose training memory fits
``budget_bytes`` -- the same architecture with its own, independently initialised weights (never a copy:
a copy would receive its layers' exact gradients and STDL would be SLTT) -- then a linear classifier of the
run's last spikes (none when the run reaches the network's read-out). The auxiliary network is trained only
by its own local loss. Subnetworks receive their input as a constant (no error crosses), and time is
decoupled as in SLTT (the previous state enters each step as a constant), so every step trains online.

Recurrent layers and ALIF: as SLTT -- ``u[t-1]``, ``a[t-1]`` and the recurrent input ``s[t-1]`` enter step t as
constants, ``dW_rec += delta[t] s[t-1]^T``; an auxiliary network that mirrors a recurrent layer has its own
recurrent weights too (:func:`hwsim.learning.stdl_plan.init_recurrent`), trained the same way. With ``loss_steps``
only the scored steps back-propagate; the others run forward only.

The choice, the memory model and the initial auxiliary weights come from :mod:`hwsim.learning.stdl_plan` (torch-free,
shared with the on-chip learner and the feasibility analysis); :meth:`STDL.describe` reports them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from hwsim.methods.models import SpikingNet, Stage
from hwsim.methods.rule import RuleError, StepResult, TrainingRule
from torch import nn

from hwsim.learning.stdl_plan import STDLError, plan
from hwsim.sim.network import Network


class AuxNet(nn.Module):
    """An auxiliary network: stages of the mirrored layers' architecture (own weights) and an optional linear
    classifier. ``weights``: (weight, bias) per stage then for the classifier, from
    :func:`hwsim.learning.stdl_plan.init_weights`; ``recurrent``: per stage the recurrent weights of a mirrored
    recurrent layer (None elsewhere), from :func:`hwsim.learning.stdl_plan.init_recurrent`."""

    def __init__(self, stages: list[Stage], n_classes: int, in_shape: tuple[int, ...], classifier: bool,
                 surrogate, weights: list[tuple], recurrent: list | None = None):
        super().__init__()
        own = []
        recurrent = recurrent if recurrent is not None else [None] * len(stages)
        for stage, (weight, bias), rec in zip(stages, weights, recurrent):
            stage = copy.deepcopy(stage)
            if weight is not None:
                with torch.no_grad():
                    stage.synapse.weight.copy_(torch.from_numpy(weight))
                    if stage.synapse.bias is not None:
                        stage.synapse.bias.copy_(torch.from_numpy(bias))
            if stage.recurrent is not None and rec is not None:
                with torch.no_grad():
                    stage.recurrent.weight.copy_(torch.from_numpy(rec))
            own.append(stage)
        self.body = SpikingNet(own, in_shape, surrogate) if own else None
        self.classifier = None
        if classifier:
            weight, bias = weights[-1]
            self.classifier = nn.Linear(weight.shape[1], n_classes)
            with torch.no_grad():
                self.classifier.weight.copy_(torch.from_numpy(weight))
                self.classifier.bias.copy_(torch.from_numpy(bias))
        self.names = [stage.name for stage in stages] + (["classifier"] if classifier else [])

    def step(self, spikes: torch.Tensor, states):
        if self.body is not None:
            out, body_spikes, states = self.body.step(spikes, states, detach_state=True)
            spikes = body_spikes[-1]
            if self.classifier is None:
                return out, states
        return self.classifier(spikes.flatten(1)), states


class STDL(TrainingRule):
    name = "stdl"

    def __init__(self, model: SpikingNet, subnet: int, budget_bytes: int, batch_size: int, seed: int = 0,
                 network: Network | None = None):
        """``network``: the hwsim network ``model`` was built from (its shapes size the plan); without it
        the plan is made from the model's own stages."""
        super().__init__(model)
        from hwsim.learning.stdl_plan import init_recurrent, init_weights

        network = network if network is not None else _network_of(model)
        try:
            self.plan = plan(network, subnet, budget_bytes, batch_size)
        except STDLError as err:
            raise RuleError(str(err)) from None
        self.subnet, self.budget = subnet, int(budget_bytes)
        self.subnets = list(self.plan.subnets)
        self.network = network
        device = next(model.parameters()).device
        auxes = []
        for (_, hi), aux, weights, rec in zip(self.subnets, self.plan.auxiliary, init_weights(network, self.plan, seed),
                                              init_recurrent(network, self.plan, seed)):
            stages = [model.stages[k] for k in aux.layers]
            in_shape = model.stages[hi - 1].out_shape
            auxes.append(AuxNet(stages, model.n_classes, in_shape, aux.classifier, model.surrogate,
                                weights, rec).to(device))
        self.aux = nn.ModuleList(auxes)
        self.aux_bytes = [aux.bytes for aux in self.plan.auxiliary]

    def parameters(self) -> Iterator[nn.Parameter]:
        yield from self.model.parameters()
        yield from self.aux.parameters()

    def modules(self) -> list[nn.Module]:
        return [self.model, self.aux]

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        scored, divisor = self.scoring(x.shape[0])
        states: list = [None] * len(self.model.stages)
        aux_states: list = [None] * len(self.aux)
        total, logits = 0.0, 0.0
        for t, counted in enumerate(scored):
            inp, loss, out = x[t], 0.0, None
            with torch.set_grad_enabled(counted and torch.is_grad_enabled()):  # unscored: forward only
                for i, (lo, hi) in enumerate(self.subnets):
                    chunk, states[lo:hi] = states[lo:hi], [None] * (hi - lo)  # consumed by step: freed early
                    out, spikes, states[lo:hi] = self.model.step(inp.detach(), chunk, detach_state=True, start=lo,
                                                                 stop=hi)
                    if i < len(self.aux):
                        local, aux_states[i] = self.aux[i].step(spikes[-1], aux_states[i])
                    else:
                        local = out
                    if counted:
                        loss = loss + self.loss(local, y, divisor)
                    inp = spikes[-1]
                    del spikes, local
            del inp
            if not counted:
                continue
            loss.backward()
            total += float(loss.detach())
            logits = logits + out.detach().flatten(1)
        return StepResult(total, logits)

    def describe(self) -> dict:
        return {"rule": self.name, "subnet": self.subnet, **self.plan.describe(self.network)}


def measure_auxiliary(rule: STDL, index: int, steps: int = 3, seed: int = 0) -> dict:
    """The auxiliary network ``index`` of ``rule`` trained alone as STDL trains it -- one backward per step, its
    input spikes receiving an error (they come from the subnetwork), SGD with momentum -- over ``steps`` steps of
    random spikes at the plan's batch size, after a warm-up batch. Returns bytes: ``planned`` (the plan's
    :func:`hwsim.learning.stdl_plan.training_bytes`), ``measured`` (parameters + gradients + momentum + the
    allocator peak of a batch above the level at its start), and those two parts."""
    from hwsim.methods.memory import ActivationMeter, persistent

    aux, (_, hi) = rule.aux[index], rule.subnets[index]
    batch = rule.plan.batch
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(steps, batch, *rule.model.stages[hi - 1].out_shape, generator=g) < 0.3).float()
    x = x.to(next(aux.parameters()).device)
    y = torch.randint(0, rule.model.n_classes, (batch,), generator=g).to(x.device)
    optimizer = torch.optim.SGD(list(aux.parameters()), lr=0.0, momentum=0.9)

    def run():
        for p in aux.parameters():
            if p.grad is not None:
                p.grad.zero_()
        states = None
        for t in range(steps):
            out, states = aux.step(x[t].requires_grad_(), states)
            rule.loss(out, y, steps).backward()
            del out
        optimizer.step()

    run()
    entry = sum(persistent([aux], optimizer))
    with ActivationMeter(aux, allocator=True) as meter:
        run()
    return {"planned": rule.plan.auxiliary[index].bytes, "measured": entry + meter.allocator_peak_bytes,
            "persistent": entry, "allocator_peak": meter.allocator_peak_bytes}


def _network_of(model: SpikingNet) -> Network:
    """A shape-only hwsim network of ``model``'s stages (weights as they are now), for the plan."""
    from hwsim.sim.network import Conv2d, Dense, Flatten, Recurrent, SumPool2d

    layers = []
    for stage in model.stages:
        if stage.flatten_before:
            layers.append(Flatten())
        syn = stage.synapse
        bias = None if getattr(syn, "bias", None) is None else syn.bias.detach().cpu().numpy()
        if stage.recurrent is not None:
            layers.append(Recurrent(syn.weight.detach().cpu().numpy(), stage.recurrent.weight.detach().cpu().numpy(),
                                    neuron=stage.neuron, bias=bias, name=stage.name))
        elif isinstance(syn, nn.Linear):
            layers.append(Dense(syn.weight.detach().cpu().numpy(), neuron=stage.neuron, bias=bias, name=stage.name))
        elif isinstance(syn, nn.Conv2d):
            layers.append(Conv2d(syn.weight.detach().cpu().numpy(), stride=syn.stride[0], padding=syn.padding[0],
                                 neuron=stage.neuron, bias=bias, name=stage.name))
        else:
            layers.append(SumPool2d(syn.kernel, syn.stride, weight=syn.weight, neuron=stage.neuron, name=stage.name))
    return Network(model.input_shape, layers)


def build(entry, network, surrogate, options, device) -> STDL:
    """The registry's builder: STDL with the auxiliary networks its budget admits at its batch size."""
    from hwsim.learning.stdl_plan import DEFAULT_BUDGET_BYTES

    model = SpikingNet.from_network(network, surrogate).to(device)
    budget = DEFAULT_BUDGET_BYTES if options.budget_bytes is None else options.budget_bytes
    return STDL(model, subnet=options.subnet, budget_bytes=budget, batch_size=options.batch_size, seed=options.seed,
                network=network)


__all__ = ["build", "AuxNet", "STDL", "measure_auxiliary"]
