"""The float LIF of DESIGN.md section 2 in torch, with surrogate gradients as small named objects.

    u[t] = lam * (u[t-1] - v_th * s[t-1]) + I[t]      (soft reset)
    u[t] = lam * (u[t-1] * (1 - s[t-1])) + I[t]       (zero reset)
    s[t] = H(u[t] - v_th),   backward: ds/du := g'(u[t] - v_th)

The forward pass is the same arithmetic, in the same order, as ``hwsim.sim.kernels.lif.lif_float_step``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from hwsim.sim.network import FloatLIF


@dataclass(frozen=True)
class Triangle:
    """g'(x) = max(0, alpha - alpha**2 |x|) (SLTT default, alpha = 1)."""

    alpha: float = 1.0
    name = "triangle"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.alpha - self.alpha**2 * x.abs(), min=0.0)


@dataclass(frozen=True)
class Sigmoid:
    """g'(x) = alpha * sigma(alpha x) * (1 - sigma(alpha x)) (OTTT default, alpha = 4)."""

    alpha: float = 4.0
    name = "sigmoid"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        sig = torch.sigmoid(self.alpha * x)
        return self.alpha * sig * (1.0 - sig)


@dataclass(frozen=True)
class Rectangle:
    """g'(x) = 1/a for |x| <= a/2, else 0."""

    a: float = 1.0
    name = "rectangle"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() <= self.a / 2).to(x.dtype) / self.a


Surrogate = Triangle | Sigmoid | Rectangle
SURROGATES = {"triangle": Triangle, "sigmoid": Sigmoid, "rectangle": Rectangle}


class _Spike(torch.autograd.Function):
    """Heaviside forward (x >= 0, as hwsim), surrogate derivative backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate(x), None


def spike(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """H(x) with surrogate gradient ``surrogate(x)``."""
    return _Spike.apply(x, surrogate)


class LIFState(NamedTuple):
    """Membrane ``u`` and last spikes ``s`` of one layer, shape ``(B, *layer_shape)``."""

    u: torch.Tensor
    s: torch.Tensor


def lif_step(current: torch.Tensor, state: LIFState | None, neuron: FloatLIF, surrogate: Surrogate,
             detach_state: bool = False) -> tuple[torch.Tensor, LIFState]:
    """One LIF step: returns the spikes and the new state. ``detach_state`` cuts the temporal gradient path
    (the previous u and s enter as constants), as SLTT and OTTT do."""
    if state is None:
        u = current
    else:
        u_prev, s_prev = (state.u.detach(), state.s.detach()) if detach_state else (state.u, state.s)
        if neuron.reset == "soft":
            u = neuron.lam * (u_prev - neuron.v_th * s_prev) + current
        else:
            u = neuron.lam * (u_prev * (1.0 - s_prev)) + current
    s = spike(u - neuron.v_th, surrogate)
    return s, LIFState(u, s)
