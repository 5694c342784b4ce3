"""Reversible SNN node (after Lei et al., arXiv 2308.08649, 2023): recompute states instead of storing them.

A :class:`RevSNN` is an input layer (n_in -> W spiking neurons), ``blocks`` reversible blocks on the
W spikes split in two halves, and a linear read-out (W -> classes)::

    y1 = x1 + F(x2),   y2 = x2 + G(y1)          F, G: Linear (W/2 -> W/2) + LIF, stateful in time
    backward: x2 = y2 - G(y1),  x1 = y1 - F(x2)  (exact: every term is a small integer count of spikes)

The whole stack of blocks is one autograd function that keeps only its final output; the backward pass
walks the blocks in reverse, reconstructs each block's input from its output, recomputes the block with
gradients and back-propagates through it, so the activation memory does not grow with depth (the
recomputed block forwards are counted in ``recomputed_blocks``). Time is handled online as in SLTT (the
previous LIF state enters each step as a constant; one backward per step).

The reversible network is not a feed-forward chain of hwsim layers, so it has no
:class:`hwsim.network.Network` form: it is trained and measured in torch only. :func:`from_network`
takes the sizes of an MLP ``n_in-W-W-...-C``: its first layer, one reversible block per further hidden
layer, its read-out.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hwsim.network import Dense, FloatLIF, Network
from methods.neuron import LIFState, Surrogate, Triangle, lif_step
from methods.rule import RuleError, StepResult, TrainingRule, step_loss


class RevBlock(nn.Module):
    """One reversible block: F and G are Linear + LIF on half the width."""

    def __init__(self, half: int, neuron: FloatLIF, surrogate: Surrogate):
        super().__init__()
        self.f, self.g = nn.Linear(half, half), nn.Linear(half, half)
        self.neuron, self.surrogate = neuron, surrogate

    def forward(self, x1, x2, f_state, g_state):
        """Returns ``y1, y2`` and the new F and G states (the previous ones enter as constants)."""
        fs, f_state = lif_step(self.f(x2), f_state, self.neuron, self.surrogate, detach_state=True)
        y1 = x1 + fs
        gs, g_state = lif_step(self.g(y1), g_state, self.neuron, self.surrogate, detach_state=True)
        return y1, x2 + gs, f_state, g_state

    def inverse(self, y1, y2, f_state, g_state):
        gs, _ = lif_step(self.g(y1), g_state, self.neuron, self.surrogate, detach_state=True)
        x2 = y2 - gs
        fs, _ = lif_step(self.f(x2), f_state, self.neuron, self.surrogate, detach_state=True)
        return y1 - fs, x2


class _ReversibleStack(torch.autograd.Function):
    """Runs the blocks without keeping their activations; the backward reconstructs and recomputes."""

    @staticmethod
    def forward(ctx, x, owner, prev_states, *params):
        half = x.shape[1] // 2
        x1, x2 = x[:, :half], x[:, half:]
        new_states = []
        with torch.no_grad():
            for block, (f_state, g_state) in zip(owner.blocks, prev_states):
                x1, x2, f_new, g_new = block(x1, x2, f_state, g_state)
                new_states.append((f_new, g_new))
        y = torch.cat([x1, x2], dim=1)
        ctx.save_for_backward(y)
        ctx.owner, ctx.prev_states = owner, prev_states
        owner._new_states = new_states
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        owner, prev_states = ctx.owner, ctx.prev_states
        half = y.shape[1] // 2
        y1, y2 = y[:, :half].detach(), y[:, half:].detach()
        g1, g2 = grad_y[:, :half], grad_y[:, half:]
        for block, (f_state, g_state) in zip(reversed(owner.blocks), reversed(prev_states)):
            with torch.no_grad():
                x1, x2 = block.inverse(y1, y2, f_state, g_state)
            x1, x2 = x1.detach().requires_grad_(True), x2.detach().requires_grad_(True)
            with torch.enable_grad():
                out1, out2, _, _ = block(x1, x2, f_state, g_state)
                torch.autograd.backward((out1, out2), (g1, g2))
            owner.recomputed_blocks += 1
            g1, g2 = x1.grad, x2.grad
            y1, y2 = x1.detach(), x2.detach()
        return torch.cat([g1, g2], dim=1), None, None, *([None] * len(ctx.needs_input_grad[3:]))


class RevSNN(nn.Module):
    """Input spiking layer, reversible blocks, linear read-out (see module docstring)."""

    def __init__(self, n_in: int, width: int, blocks: int, n_classes: int, neuron: FloatLIF | None = None,
                 surrogate: Surrogate | None = None, seed: int = 0, reversible: bool = True):
        super().__init__()
        if width % 2:
            raise RuleError(f"a reversible network needs an even width to split in two halves, got {width}")
        torch.manual_seed(seed)
        self.neuron, self.surrogate = neuron or FloatLIF(), surrogate or Triangle()
        self.input_layer = nn.Linear(n_in, width)
        self.blocks = nn.ModuleList([RevBlock(width // 2, self.neuron, self.surrogate) for _ in range(blocks)])
        self.readout = nn.Linear(width, n_classes)
        with torch.no_grad():  # the scale hwsim.network.from_spec uses: N(0, (3 / sqrt(fan_in))^2), no bias
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    module.weight.normal_(0.0, 3.0 / np.sqrt(module.in_features))
                    module.bias.zero_()
        self.reversible = reversible
        self.recomputed_blocks = 0
        self._new_states = None
        self.n_classes = n_classes
        self.input_shape = (n_in,)

    def step(self, x_t: torch.Tensor, states: dict | None) -> tuple[torch.Tensor, dict]:
        """One time step. ``states``: {"input": LIFState, "blocks": [(F state, G state)]}."""
        states = states or {"input": None, "blocks": [(None, None)] * len(self.blocks)}
        s, input_state = lif_step(self.input_layer(x_t), states["input"], self.neuron, self.surrogate,
                                  detach_state=True)
        if self.reversible:
            params = [p for block in self.blocks for p in block.parameters()]
            y = _ReversibleStack.apply(s, self, states["blocks"], *params)
            block_states = self._new_states
        else:  # the same computation with plain autograd (keeps every activation)
            half = s.shape[1] // 2
            x1, x2, block_states = s[:, :half], s[:, half:], []
            for block, (f_state, g_state) in zip(self.blocks, states["blocks"]):
                x1, x2, f_new, g_new = block(x1, x2, f_state, g_state)
                block_states.append((f_new, g_new))
            y = torch.cat([x1, x2], dim=1)
        block_states = [(_detached(f), _detached(g)) for f, g in block_states]
        return self.readout(y), {"input": input_state, "blocks": block_states}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, total = None, 0.0
        for t in range(x.shape[0]):
            out, states = self.step(x[t], states)
            total = total + out
        return total


def _detached(state: LIFState | None) -> LIFState | None:
    return None if state is None else LIFState(state.u.detach(), state.s.detach())


def from_network(network: Network, reversible: bool = True, seed: int = 0) -> RevSNN:
    """The reversible form of a float MLP ``n_in-W-W-...-C`` (see module docstring)."""
    layers = network.layers
    if not all(isinstance(layer, Dense) for layer in layers) or len(layers) < 2:
        raise RuleError("the reversible node needs a dense MLP n_in-W-...-C (at least one hidden layer)")
    width = layers[0].n_out
    hidden = [layer.n_out for layer in layers[:-1]]
    if any(h != width for h in hidden):
        raise RuleError(f"the reversible node needs equal hidden widths, got {hidden}")
    model = RevSNN(layers[0].n_in, width, len(hidden) - 1, layers[-1].n_out, layers[0].neuron,
                   seed=seed, reversible=reversible)
    with torch.no_grad():  # the input layer and the read-out start from the network's own weights
        for module, layer in ((model.input_layer, layers[0]), (model.readout, layers[-1])):
            module.weight.copy_(torch.from_numpy(np.asarray(layer.weight, np.float32)))
            if layer.bias is not None:
                module.bias.copy_(torch.from_numpy(np.asarray(layer.bias, np.float32)))
            else:
                module.bias.zero_()
    return model


class Reversible(TrainingRule):
    """Online (per-step) training of a :class:`RevSNN`; the backward pass recomputes block activations."""

    name = "revsnn"

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        steps = x.shape[0]
        states, total, logits = None, 0.0, 0.0
        before = self.model.recomputed_blocks
        for t in range(steps):
            out, states = self.model.step(x[t], states)
            loss = step_loss(out, y, steps)
            loss.backward()
            total += float(loss.detach())
            logits = logits + out.detach()
        return StepResult(total, logits, {"recomputed_blocks": self.model.recomputed_blocks - before})

    def describe(self) -> dict:
        return {"rule": self.name, "blocks": len(self.model.blocks),
                "width": int(np.asarray(self.model.readout.in_features))}
