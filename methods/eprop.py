"""e-prop (Bellec et al., "A solution to the learning dilemma for recurrent networks of spiking neurons", Nat. Commun.
11:3625, 2020): online learning of one recurrent LIF or ALIF layer and its dense read-out, in torch.

The gradient of the recurrent layer is factorised into an eligibility trace per synapse, computed forward in time
from what the synapse sees (each neuron's own membrane and adaptation; the recurrent input spikes and the reset
enter as constants), and a learning signal per neuron broadcast from the read-out. hwsim's neurons (soft reset,
``a[t] = rho a[t-1] + s[t-1]``, ``A = v_th + beta a``), presynaptic input ``pre_p[t]`` = ``x_p[t]`` (input weights),
``s_p[t-1]`` (recurrent weights) or 1 (bias)::

    eps_p[t]     = lam eps_p[t-1] + pre_p[t]                                        du_j[t]/dW_jp
    eps_a,jp[t]  = psi_j[t-1] eps_p[t-1] + (rho - beta psi_j[t-1]) eps_a,jp[t-1]    da_j[t]/dW_jp   (ALIF)
    e_jp[t]      = psi_j[t] (eps_p[t] - beta eps_a,jp[t]),   psi_j[t] = g'(u_j[t] - A_j[t])
    ebar_jp[t]   = kappa ebar_jp[t-1] + e_jp[t]
    y[t]         = kappa y[t-1] + W_out s[t] + b_out                                 read-out (kappa 0: the current)
    L_j[t]       = sum_k B_jk dl[t]/dy_k[t],   B = W_out^T (symmetric) or a fixed random matrix (random e-prop)
    dW_jp        = sum_t L_j[t] ebar_jp[t],   dW_out,kj = sum_t dl[t]/dy_k[t] sbar_j[t],   sbar = kappa sbar + s

with ``l[t] = CE(y[t], label) / T`` (or ``/ n_scored`` on the task's scored steps, 0 elsewhere). The weights are
updated once per batch from the accumulated gradient (``eligibility="per_synapse"``, the paper). ReckOn's variant
(``eligibility="per_neuron"``, Frenkel & Indiveri, ISSCC 2022) keeps only per-neuron traces: ``e_jp = psi_j eps_p``
formed on the fly (no adaptation trace, no kappa filter of e) and writes the weights at every scored step. The
on-chip form (:mod:`hwsim.learning.eprop`) equals this module to 1e-5; docs/eprop.md has the equations, the memory
and what differs from the paper.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hwsim.methods.neuron import Surrogate, Triangle
from hwsim.methods.rule import RuleError, StepResult, TrainingRule
from torch import nn

from hwsim.errors import LearningError
from hwsim.learning import registry
from hwsim.learning.eprop import eprop_layout, loss_weights, random_feedback
from hwsim.sim.network import FloatALIF, Network


class EpropNet(nn.Module):
    """A float ``input-(r|a)N-out`` network as torch parameters: ``w_in`` (N, n_in), ``w_rec`` (N, N), ``b_rec``
    (N,) or None, ``w_out`` (K, N), ``b_out`` (K,) or None. ``forward`` returns the read-out ``y`` (filtered with
    ``kappa``) summed over the scored steps (``loss_steps``; every step when None), ``(B, K)``."""

    def __init__(self, network: Network, kappa: float = 0.0):
        super().__init__()
        try:
            self.layout = eprop_layout(network)
        except LearningError as err:
            raise RuleError(str(err)) from None
        rec, out = network.layers[self.layout.rec], network.layers[self.layout.out]
        self.neuron, self.kappa, self.loss_steps = rec.neuron, float(kappa), None
        self.alif = isinstance(rec.neuron, FloatALIF)
        self.w_in, self.w_rec, self.w_out = _parameter(rec.weight), _parameter(rec.recurrent), _parameter(out.weight)
        self.b_rec = None if rec.bias is None else _parameter(rec.bias)
        self.b_out = None if out.bias is None else _parameter(out.bias)

    def cell(self, x_t: torch.Tensor, state: tuple) -> tuple:
        """One step of the recurrent layer: ``state = (u, a, s)`` of step t-1 -> ``(u, a, s, A)`` of step t (the
        arithmetic of hwsim's engine: ``lam (u - v_th s) + ((W_in x + W_rec s) + b)``, ``s = u >= A``)."""
        u, a, s = state
        n = self.neuron
        current = F.linear(x_t, self.w_in) + F.linear(s, self.w_rec)
        if self.b_rec is not None:
            current = current + self.b_rec
        u = torch.sub(u, s, alpha=n.v_th).mul(n.lam).add(current)
        if self.alif:
            a = a * n.rho + s
            threshold = a * n.beta + n.v_th
        else:
            threshold = torch.full_like(u, n.v_th)
        return u, a, (u >= threshold).to(u.dtype), threshold

    def readout(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``kappa y + W_out s + b_out``."""
        return F.linear(s, self.w_out, self.b_out) + self.kappa * y

    def zero_state(self, batch: int) -> tuple:
        """``(u, a, s)`` zeros of a batch, and the read-out y."""
        n, k = self.layout.n_hidden, self.layout.n_out
        z = self.w_in.new_zeros((batch, n))
        return (z, z.clone(), z.clone()), self.w_in.new_zeros((batch, k))

    def forward(self, x: torch.Tensor, loss_steps=None) -> torch.Tensor:
        """Read-out summed over the scored steps (``loss_steps``, bool (T,); default the model's, None: every step)
        for ``x`` (T, B, *input_shape) -> (B, K)."""
        steps, batch = x.shape[:2]
        mask = self.loss_steps if loss_steps is None else np.asarray(torch.as_tensor(loss_steps).cpu(), bool)
        try:
            weights = loss_weights(steps, mask)
        except LearningError as err:
            raise RuleError(str(err)) from None
        state, y = self.zero_state(batch)
        total = y.clone()
        for t in range(steps):
            u, a, s, _ = self.cell(x[t].flatten(1).to(y.dtype), state)
            state = (u, a, s)
            y = self.readout(s, y)
            if weights[t] != 0:
                total = total + y
        return total

    def write_back(self, network: Network) -> Network:
        """Copy the trained weights and biases into ``network`` (in place) and return it."""
        rec, out = network.layers[self.layout.rec], network.layers[self.layout.out]
        rec.weight, rec.recurrent, out.weight = _array(self.w_in), _array(self.w_rec), _array(self.w_out)
        if self.b_rec is not None:
            rec.bias = _array(self.b_rec)
        if self.b_out is not None:
            out.bias = _array(self.b_out)
        return network


def _parameter(values: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.tensor(np.asarray(values, np.float32)))


def _array(param: torch.Tensor) -> np.ndarray:
    return param.detach().cpu().numpy().astype(np.float32).copy()


class Eprop(TrainingRule):
    """Online e-prop (module docstring). ``eligibility``: ``per_synapse`` or ``per_neuron``; ``feedback``:
    ``symmetric`` or ``random`` (``feedback_seed`` draws B, :func:`hwsim.learning.eprop.random_feedback`);
    ``loss_steps``: the task's scored steps (bool (T,)) or None."""

    name = "eprop"

    def __init__(self, model: EpropNet, surrogate: Surrogate | None = None, eligibility: str = "per_synapse",
                 feedback: str = "symmetric", feedback_seed: int = 0):
        super().__init__(model)
        self.surrogate = surrogate or Triangle()
        self.eligibility, self.feedback = eligibility, feedback
        self.per_neuron = eligibility == "per_neuron"
        self.updates_inside_batch = self.per_neuron  # ReckOn writes the weights at every scored step
        lay = model.layout
        self.random_b = torch.from_numpy(random_feedback(lay.n_hidden, lay.n_out, feedback_seed)).to(model.w_in.device)

    @property
    def loss_steps(self) -> np.ndarray | torch.Tensor | None:
        return self.model.loss_steps

    @loss_steps.setter
    def loss_steps(self, mask) -> None:
        self.model.loss_steps = None if mask is None else np.asarray(torch.as_tensor(mask).cpu(), bool)

    def feedback_matrix(self) -> torch.Tensor:
        """B ``(N, K)``: the read-out's ``W_out^T`` now (symmetric) or the fixed random matrix."""
        w_out = self.model.w_out.detach()
        return self.random_b.to(w_out) if self.feedback == "random" else w_out.t()

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        """The e-prop gradient of the batch at fixed weights, added to the parameters' ``.grad``."""
        return self._run(x, y, None)

    def step(self, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> StepResult:
        if not self.per_neuron:
            return super().step(x, y, optimizer)
        optimizer.zero_grad(set_to_none=True)
        return self._run(x, y, optimizer)

    @torch.no_grad()
    def _run(self, x: torch.Tensor, target: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> StepResult:
        """The online pass (module docstring); with ``optimizer`` (per neuron) the weights are written after every
        scored step, else the batch's gradient is accumulated into ``.grad``."""
        m = self.model
        steps, batch = x.shape[:2]
        scored, n_scored = self.scoring(steps)
        trace = _Traces(m, batch, self.per_neuron)
        state, y = m.zero_state(batch)
        grads = _Grads()
        total, logits = 0.0, torch.zeros_like(y)
        for t in range(steps):
            s_prev = state[2]
            trace.before(s_prev, x[t].flatten(1).to(y.dtype))
            u, a, s, threshold = m.cell(x[t].flatten(1).to(y.dtype), state)
            state = (u, a, s)
            psi = self.surrogate(u - threshold)
            trace.after(psi)
            y = m.readout(s, y)
            trace.readout(s)
            if not scored[t]:
                continue
            logits += y
            leaf = y.detach().requires_grad_(True)
            with torch.enable_grad():
                loss = self.loss(leaf, target, n_scored)
                (err,) = torch.autograd.grad(loss, leaf)
            total += float(loss)
            grads.add(trace, err, err @ self.feedback_matrix().t(), psi)
            if optimizer is not None:
                grads.store(m)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        if optimizer is None:
            grads.store(m)
        return StepResult(total, logits)

    def describe(self) -> dict:
        return {"rule": self.name, "eligibility": self.eligibility, "feedback": self.feedback,
                "kappa": self.model.kappa}


class _Traces:
    """The eligibility state of a batch: presynaptic traces ``eps`` (B, P) over the slots [inputs, recurrent
    neurons, bias]; per synapse (the paper's form) ALIF's ``eps_a`` and, with kappa > 0, ``ebar``, each (B, N, P);
    the read-out's output traces ``sbar`` (B, N) and ``bbar`` (a number)."""

    def __init__(self, model: EpropNet, batch: int, per_neuron: bool):
        lay = model.layout
        self.model, self.per_neuron = model, per_neuron
        self.slots = lay.n_in + lay.n_hidden + (model.b_rec is not None)
        new = model.w_in.new_zeros
        self.eps = new((batch, self.slots))
        self.psi = new((batch, lay.n_hidden))
        self.per_synapse = not per_neuron and (model.alif or model.kappa != 0.0)
        self.eps_a = new((batch, lay.n_hidden, self.slots)) if self.per_synapse and model.alif else None
        self.ebar = new((batch, lay.n_hidden, self.slots)) if self.per_synapse and model.kappa != 0.0 else None
        self.sbar, self.bbar = new((batch, lay.n_hidden)), 0.0

    def before(self, s_prev: torch.Tensor, x_t: torch.Tensor) -> None:
        """Step t, before the neurons: ALIF's eps_a (from eps[t-1], psi[t-1]), then eps[t]."""
        n = self.model.neuron
        if self.eps_a is not None:
            self.eps_a = self.psi[:, :, None] * self.eps[:, None, :] + \
                (n.rho - n.beta * self.psi)[:, :, None] * self.eps_a
        pre = [x_t, s_prev] + ([torch.ones_like(s_prev[:, :1])] if self.model.b_rec is not None else [])
        self.eps = n.lam * self.eps + torch.cat(pre, 1)

    def after(self, psi: torch.Tensor) -> None:
        """Step t, after the neurons: psi[t] and, per synapse with kappa > 0, ebar[t]."""
        self.psi = psi
        if self.ebar is not None:
            self.ebar = self.model.kappa * self.ebar + self.eligibility()

    def eligibility(self) -> torch.Tensor:
        """e[t] per synapse (B, N, P): ``psi (eps - beta eps_a)`` (``psi eps`` without adaptation)."""
        if self.eps_a is None:
            return self.psi[:, :, None] * self.eps[:, None, :]
        return self.psi[:, :, None] * (self.eps[:, None, :] - self.model.neuron.beta * self.eps_a)

    def readout(self, s: torch.Tensor) -> None:
        """The output traces: ``sbar = kappa sbar + s``, ``bbar = kappa bbar + 1``."""
        self.sbar = self.model.kappa * self.sbar + s
        self.bbar = self.model.kappa * self.bbar + 1.0


class _Grads:
    """The gradients accumulated over the scored steps: the recurrent layer's over the slots (N, P), the read-out's
    (K, N) and its bias (K,)."""

    def __init__(self):
        self.rec = None
        self.out = None
        self.b_out = None

    def add(self, trace: _Traces, err: torch.Tensor, signal: torch.Tensor, psi: torch.Tensor) -> None:
        """One scored step: ``err`` dl/dy (B, K), the learning signal ``signal`` (B, N)."""
        if trace.ebar is not None:
            rec = torch.einsum("bj,bjp->jp", signal, trace.ebar)
        elif trace.eps_a is not None:
            rec = torch.einsum("bj,bjp->jp", signal, trace.eligibility())
        else:
            rec = (signal * psi).t() @ trace.eps
        out, b_out = err.t() @ trace.sbar, err.sum(0) * trace.bbar
        self.rec = rec if self.rec is None else self.rec + rec
        self.out = out if self.out is None else self.out + out
        self.b_out = b_out if self.b_out is None else self.b_out + b_out

    def store(self, model: EpropNet) -> None:
        """Add the gradients into the parameters' ``.grad`` and start again."""
        if self.rec is None:
            return
        lay = model.layout
        parts = [(model.w_in, self.rec[:, : lay.n_in]), (model.w_rec, self.rec[:, lay.n_in: lay.n_in + lay.n_hidden]),
                 (model.w_out, self.out)]
        if model.b_rec is not None:
            parts.append((model.b_rec, self.rec[:, -1]))
        if model.b_out is not None:
            parts.append((model.b_out, self.b_out))
        for param, grad in parts:
            param.grad = grad.clone() if param.grad is None else param.grad + grad
        self.rec = self.out = self.b_out = None


def build(entry, network, surrogate, options, device) -> Eprop:
    """The registry's builder: e-prop over a torch copy of ``network`` (``input-(r|a)N-out``), with the options
    ``eligibility``, ``feedback`` and ``kappa`` (registry defaults where the options record lacks them) and
    ``seed`` (the random feedback matrix)."""
    given = {name: getattr(options, name, registry.OPTIONS[name].default) for name in ("eligibility", "feedback",
                                                                                     "kappa")}
    try:
        checked = {name: registry.OPTIONS[name].check(value, name) for name, value in given.items()}
    except registry.RegistryError as err:
        raise RuleError(str(err)) from None
    model = EpropNet(network, kappa=checked["kappa"]).to(device)
    return Eprop(model, surrogate, checked["eligibility"], checked["feedback"], int(getattr(options, "seed", 0)))
