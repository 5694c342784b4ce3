"""An independent torch autograd reference for on-chip learning on recurrent and ALIF networks.

Written from the equations of the shared contract (docs/rules.md, ``hwsim.sim.network.Recurrent`` /
``FloatALIF``), not from the learning kernels nor from ``hwsim.methods``: a plain per-step torch forward of

    I[t] = W x[t] + W_rec s[t-1] + b                    (s[-1] = 0; the read-out o[t] is a read-out layer's I[t])
    a[t] = rho a[t-1] + s[t-1]                          (ALIF; a[-1] = 0)
    u[t] = lam (u[t-1] - v_th s[t-1]) + I[t]            (reset 'zero': lam u[t-1] (1 - s[t-1]) + I[t])
    s[t] = H(u[t] - A[t]),  A[t] = v_th + beta a[t]     (LIF: A = v_th); backward ds/du := g'(u[t] - A[t])

with the rule's detaches, then autograd and plain SGD (``W -= lr * grad``):

* windows of ``window`` steps (T: BPTT; k: TTL-BPTT; 1: SLTT, SLTT-K, OTTT, STDL): ``u``, ``s``, ``a`` (so the
  recurrent input of the window's first step) enter each window as constants; one backward per window of the sum
  of its steps' losses ``CE(o[t], y) / n`` (n = T, or the number of scored steps with ``loss_steps``; unscored
  steps carry no loss). A window of one step is the cut of the online rules. Steps outside ``learn`` (SLTT-K)
  run without gradient.
* traces (OTTT): the weight gradient of an input from a layer is taken from its trace ``â[t] = lam_src â[t-1] +
  s_src[t]`` (the network input is used raw), that of the recurrent synapses from ``r̂[t] = lam r̂[t-1] + s[t-1]``;
  the values are the spikes'. ``update_every_step`` (OTTT_O): SGD after every backward.
* heads: a layer may read another layer's spikes with its input detached (``detach_input``: a block or subnetwork
  boundary: no error crosses it) or not (a TTL-BPTT classifier, an STDL auxiliary network: their error trains the
  layer they read); every layer marked ``loss`` adds its current's loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class RefLayer:
    """One layer of the reference: weights as float32 tensors (``weight`` (n_out, n_in), ``recurrent`` (n_out,
    n_out) or None, ``bias`` (n_out,) or None); ``neuron``: dict(lam, v_th, reset, rho, beta, adapt) or None for a
    linear classifier (its current only); ``src``: the layer whose spikes it reads (-1: the network input)."""

    weight: torch.Tensor
    recurrent: torch.Tensor | None
    bias: torch.Tensor | None
    neuron: dict | None
    src: int
    detach_input: bool
    loss: bool

    def params(self) -> list[torch.Tensor]:
        return [p for p in (self.weight, self.recurrent, self.bias) if p is not None]


class _Heaviside(torch.autograd.Function):
    """H(m >= 0) forward, the surrogate g'(m) backward (m = u - A)."""

    @staticmethod
    def forward(ctx, m, shape, alpha):
        ctx.save_for_backward(m)
        ctx.shape, ctx.alpha = shape, alpha
        return (m >= 0).to(m.dtype)

    @staticmethod
    def backward(ctx, grad):
        (m,) = ctx.saved_tensors
        alpha = ctx.alpha
        if ctx.shape == "triangle":
            g = torch.clamp(alpha - alpha * alpha * m.abs(), min=0.0)
        elif ctx.shape == "sigmoid":
            sig = torch.sigmoid(alpha * m)
            g = alpha * sig * (1 - sig)
        else:
            g = (m.abs() <= alpha / 2).to(m.dtype) / alpha
        return grad * g, None, None


def _synapse(x: torch.Tensor, weight: torch.Tensor, trace: torch.Tensor | None) -> torch.Tensor:
    """``W x``; with a trace, the same value but the weight gradient taken from the trace."""
    if trace is None:
        return x @ weight.t()
    return x @ weight.detach().t() + (trace @ weight.t() - (trace @ weight.t()).detach())


def _step(layers, x_t, states, traces, rule) -> tuple[list, list]:
    """One step of every layer in order (``states[i]`` = (u, s, a) of the step before, replaced by this step's);
    with traces, each layer's traces advance first (no gradient): ``â = lam_src â + s_src[t]`` on an input from a
    layer, ``r̂ = lam r̂ + s[t-1]`` on the recurrent input. Returns (spikes or None per layer, currents)."""
    spikes, currents = [], []
    for i, layer in enumerate(layers):
        inp = x_t if layer.src < 0 else spikes[layer.src]
        if layer.detach_input:
            inp = inp.detach()
        u_prev, s_prev, a_prev = states[i]
        trace_in = trace_rec = None
        if rule["traces"]:
            with torch.no_grad():
                if layer.src >= 0:
                    traces[i][0] = layers[layer.src].neuron["lam"] * traces[i][0] + spikes[layer.src].detach()
                    trace_in = traces[i][0]
                if layer.recurrent is not None:
                    traces[i][1] = layer.neuron["lam"] * traces[i][1] + s_prev.detach()
                    trace_rec = traces[i][1]
        current = _synapse(inp, layer.weight, trace_in)
        if layer.recurrent is not None:
            current = current + _synapse(s_prev, layer.recurrent, trace_rec)
        if layer.bias is not None:
            current = current + layer.bias
        currents.append(current)
        n = layer.neuron
        if n is None:
            spikes.append(None)
            continue
        if n["reset"] == "soft":
            u = n["lam"] * (u_prev - n["v_th"] * s_prev) + current
        else:
            u = n["lam"] * (u_prev * (1.0 - s_prev)) + current
        a = n["rho"] * a_prev + s_prev if n["adapt"] else a_prev
        threshold = n["v_th"] + n["beta"] * a if n["adapt"] else n["v_th"]
        s = _Heaviside.apply(u - threshold, rule["surrogate"], rule["alpha"])
        states[i] = (u, s, a)
        spikes.append(s)
    return spikes, currents


def train_batch(layers: list[RefLayer], x: torch.Tensor, y: torch.Tensor, rule: dict, lr: float,
                loss_steps: np.ndarray | None = None, learn: list[int] | None = None) -> None:
    """One mini-batch (``x`` (T, B, n_in) float 0/1, ``y`` (B,)) of the rule ``rule`` = dict(window, traces,
    update_every_step, surrogate, alpha) on ``layers`` (their tensors updated in place by SGD)."""
    steps, batch = x.shape[:2]
    scored = np.ones(steps, bool) if loss_steps is None else np.asarray(loss_steps, bool)
    divisor = steps if loss_steps is None else int(scored.sum())
    learn = set(range(steps)) if learn is None else set(learn)
    window = rule["window"]
    params = [p for layer in layers for p in layer.params()]
    for p in params:
        p.requires_grad_(True)
        p.grad = None
    zeros = [torch.zeros(batch, layer.weight.shape[0]) for layer in layers]
    states = [(z, z, z) for z in zeros]
    traces = [[torch.zeros(batch, layer.weight.shape[1]), torch.zeros(batch, layer.weight.shape[0])]
              for layer in layers]
    for start in range(0, steps, window):
        states = [tuple(v.detach() for v in state) for state in states]  # the state entering a window: constants
        loss = None
        for t in range(start, min(start + window, steps)):
            with_grad = window > 1 or t in learn
            with torch.set_grad_enabled(with_grad):
                _, currents = _step(layers, x[t], states, traces, rule)
                if scored[t] and with_grad:
                    for layer, current in zip(layers, currents):
                        if layer.loss:
                            term = F.cross_entropy(current, y) / divisor
                            loss = term if loss is None else loss + term
            if window == 1 and loss is not None:  # the online rules: one backward per step
                loss.backward()
                loss = None
                if rule["update_every_step"]:
                    _sgd(params, lr)
            if window == 1:
                states = [tuple(v.detach() for v in state) for state in states]
        if loss is not None:
            loss.backward()
    if not rule["update_every_step"]:
        _sgd(params, lr)
    for p in params:
        p.requires_grad_(False)


def _sgd(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad
                p.grad = None


def neuron_of(layer) -> dict:
    """The reference's neuron dict of an hwsim layer (FloatLIF or FloatALIF), float32 parameters."""
    n = layer.neuron
    adapt = hasattr(n, "rho")
    f32 = lambda v: float(np.float32(v))  # noqa: E731  (the kernel keeps its parameters in float32)
    return {"lam": f32(n.lam), "v_th": f32(n.v_th), "reset": n.reset, "adapt": adapt,
            "rho": f32(n.rho) if adapt else 0.0, "beta": f32(n.beta) if adapt else 0.0}


def layer_of(layer, src: int, detach_input: bool, loss: bool, given: tuple | None = None) -> RefLayer:
    """A :class:`RefLayer` of an hwsim ``Dense`` or ``Recurrent`` layer: its own weight, bias and recurrent weights,
    or ``given`` = (weight, bias, recurrent) in their place (an auxiliary layer that mirrors it)."""
    def tensor(v):
        return None if v is None else torch.tensor(np.array(v, np.float32))

    w, b, r = (layer.weight, layer.bias, getattr(layer, "recurrent", None)) if given is None else given
    return RefLayer(tensor(w), tensor(r), tensor(b), neuron_of(layer), src, detach_input, loss)
