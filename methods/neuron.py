"""The float LIF of DESIGN.md section 2 in torch, and the adaptive ALIF, with surrogate gradients as small named
objects.

    u[t] = lam * (u[t-1] - v_th * s[t-1]) + I[t]      (soft reset)
    u[t] = lam * (u[t-1] * (1 - s[t-1])) + I[t]       (zero reset)
    s[t] = H(u[t] - v_th),   backward: ds/du := g'(u[t] - v_th)

    ALIF (Bellec et al. 2018/2020; :class:`hwsim.sim.network.FloatALIF`), the same membrane and
    a[t] = rho * a[t-1] + s[t-1],   s[t] = H(u[t] - A[t]),   A[t] = v_th + beta * a[t],
    backward: ds/du := g'(u[t] - A[t]), ds/da := -beta g'(u[t] - A[t])

The forward pass is the same arithmetic, in the same order, as ``hwsim.sim.kernels.lif.lif_float_step`` (a spike
is ``u >= v_th``, as there). Memory: one step allocates the new membrane once (the leak is applied in place on a
fresh tensor) and the spike function saves the membrane itself -- the state the next step needs anyway -- not a
shifted copy, so a layer's step leaves exactly two tensors of its size behind: ``u[t]`` and ``s[t]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from hwsim.methods.errors import RuleError

from hwsim.sim.network import FloatALIF, FloatLIF


@dataclass(frozen=True)
class Triangle:
    """g'(x) = max(0, alpha - alpha**2 |x|): peak alpha, support |x| < 1/alpha (SLTT default, alpha = 1: the
    paper code's spikingjelly ``PiecewiseQuadratic``)."""

    alpha: float = 1.0
    name = "triangle"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.alpha - self.alpha**2 * x.abs(), min=0.0)

    def derivative_(self, x: torch.Tensor) -> torch.Tensor:
        """The same values, computed in place in ``x`` (a fresh tensor the caller gives up)."""
        return x.abs_().mul_(-self.alpha**2).add_(self.alpha).clamp_(min=0.0)


@dataclass(frozen=True)
class Sigmoid:
    """g'(x) = alpha * sigma(alpha x) * (1 - sigma(alpha x)): peak alpha / 4 (OTTT default, alpha = 4: the paper
    code's ``surrogate.Sigmoid``)."""

    alpha: float = 4.0
    name = "sigmoid"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        sig = torch.sigmoid(self.alpha * x)
        return self.alpha * sig * (1.0 - sig)

    def derivative_(self, x: torch.Tensor) -> torch.Tensor:
        """The same values, computed in place in ``x`` (one more temporary of its size)."""
        sig = x.mul_(self.alpha).sigmoid_()
        return sig.neg().add_(1.0).mul_(sig).mul_(self.alpha)


@dataclass(frozen=True)
class Rectangle:
    """g'(x) = 1/a for |x| <= a/2, else 0 (width ``a``, in the membrane's unit; ``alpha`` of the options)."""

    a: float = 1.0
    name = "rectangle"

    @property
    def alpha(self) -> float:
        return self.a

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() <= self.a / 2).to(x.dtype) / self.a

    def derivative_(self, x: torch.Tensor) -> torch.Tensor:
        """The same values, written into ``x``."""
        return x.copy_(x.abs_() <= self.a / 2).div_(self.a)


Surrogate = Triangle | Sigmoid | Rectangle
SURROGATES = {"triangle": Triangle, "sigmoid": Sigmoid, "rectangle": Rectangle}
ALPHA_RANGE = (1e-3, 1e3)  # accepted surrogate widths / steepnesses


def make_surrogate(surrogate: str | Surrogate | None = None, alpha: float | None = None) -> Surrogate:
    """A surrogate from its name (``triangle``, ``sigmoid``, ``rectangle``) and ``alpha`` (None: the shape's paper
    default, 1 / 4 / 1), or an existing surrogate object (``alpha`` then replaces its own). ``None``: the triangle
    with alpha 1. Bad values are one :class:`RuleError` line naming the option."""
    if surrogate is None:
        surrogate = "triangle"
    if not isinstance(surrogate, str):
        if not isinstance(surrogate, (Triangle, Sigmoid, Rectangle)):
            raise RuleError(f"surrogate: expected one of {', '.join(SURROGATES)} or a surrogate object, "
                            f"got {type(surrogate).__name__}")
        if alpha is None:
            return surrogate
        surrogate = surrogate.name
    if surrogate not in SURROGATES:
        raise RuleError(f"surrogate: expected one of {', '.join(SURROGATES)}, got {str(surrogate)[:40]!r}")
    if alpha is None:
        return SURROGATES[surrogate]()
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
            or not ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1]:
        raise RuleError(f"alpha: the surrogate width/steepness must be a number in {ALPHA_RANGE[0]:g}.."
                        f"{ALPHA_RANGE[1]:g}, got {alpha!r}")
    return SURROGATES[surrogate](float(alpha))


class _Spike(torch.autograd.Function):
    """Heaviside forward (``u >= v_th``, as hwsim), surrogate derivative of ``u - v_th`` backward. Saves ``u``."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, v_th: float, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.v_th, ctx.surrogate = v_th, surrogate
        return (u >= v_th).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (u,) = ctx.saved_tensors
        return ctx.surrogate.derivative_(u - ctx.v_th).mul_(grad_out), None, None


def spike(u: torch.Tensor, v_th: float, surrogate: Surrogate) -> torch.Tensor:
    """H(u - v_th) with surrogate gradient ``surrogate(u - v_th)``."""
    return _Spike.apply(u, v_th, surrogate)


class LIFState(NamedTuple):
    """Membrane ``u``, last spikes ``s`` and (ALIF) adaptation ``a`` of one layer, shape ``(B, *layer_shape)``.
    ``a`` is ``a[t]``, the adaptation the step's threshold used; None for a plain LIF (and for an ALIF at its
    first step, where ``a[0] = 0``)."""

    u: torch.Tensor
    s: torch.Tensor
    a: torch.Tensor | None = None


def lif_advance(current: torch.Tensor, states: list, index: int, neuron: FloatLIF | FloatALIF, surrogate: Surrogate,
                detach_state: bool = False) -> tuple[torch.Tensor, LIFState]:
    """:func:`lif_step` that takes the layer's state out of ``states[index]`` (leaving None there) and frees the
    state before, and ``current``, as soon as the new membrane exists -- before the spikes are allocated -- when
    the caller holds no other reference to them (pass ``current`` as an expression, not a kept variable). A
    layer's step then needs at most its current and its new membrane beside the state it replaces.

    ALIF (:class:`~hwsim.sim.network.FloatALIF`): ``a[t] = rho a[t-1] + s[t-1]``, spikes ``H(u[t] - A[t])`` with
    ``A[t] = v_th + beta a[t]`` and the surrogate taken at ``u[t] - A[t]``; the soft reset subtracts the base
    ``v_th``. With ``detach_state`` ``a[t]`` is a constant of the step (built from the detached ``a[t-1]`` and
    ``s[t-1]``); without it the gradient runs through the adaptation too (BPTT)."""
    state, states[index] = states[index], None
    a = None
    if state is None:
        u = current
    else:
        u_prev, s_prev = (state.u.detach(), state.s.detach()) if detach_state else (state.u, state.s)
        if isinstance(neuron, FloatALIF):  # a[t] = rho a[t-1] + s[t-1] (a[0] = 0, so a[1] = s[0])
            a_prev = state.a if state.a is None or not detach_state else state.a.detach()
            a = s_prev if a_prev is None else a_prev.mul(neuron.rho).add_(s_prev)
            del a_prev
        del state
        if neuron.reset == "soft":  # s is 0 or 1, so v_th * s is exact and the fused subtraction rounds as hwsim's
            u = torch.sub(u_prev, s_prev, alpha=neuron.v_th)
        else:
            u = u_prev * (1.0 - s_prev)
        del u_prev, s_prev
        u = u.mul_(neuron.lam).add_(current)  # in place on a fresh tensor that no backward needs
    del current
    if a is None:
        s = spike(u, neuron.v_th, surrogate)
    else:  # u - A >= 0 exactly when u >= A (IEEE subtraction keeps the sign), so the spikes are hwsim's
        s = spike(u - a.mul(neuron.beta).add_(neuron.v_th), 0.0, surrogate)
    return s, LIFState(u, s, a)


def lif_step(current: torch.Tensor, state: LIFState | None, neuron: FloatLIF | FloatALIF, surrogate: Surrogate,
             detach_state: bool = False) -> tuple[torch.Tensor, LIFState]:
    """One LIF (or ALIF) step: returns the spikes and the new state. ``detach_state`` cuts the temporal gradient
    path (the previous u, s and a enter as constants), as SLTT and OTTT do. ``current`` is not kept: once this
    returns only ``u[t]``, ``s[t]`` (and ``a[t]``) remain (with the state before, if the caller still holds it)."""
    states = [state]
    del state
    return lif_advance(current, states, 0, neuron, surrogate, detach_state)
