"""Reversible SNN blocks (after Lei et al., "Towards Zero Memory Footprint Spiking Neural Network Training",
arXiv 2308.08649, 2023): reconstruct activations from outputs instead of storing them.

A :class:`RevSNN` is an input layer (n_in -> W LIF neurons), ``blocks`` reversible blocks on the W spikes split
in two halves, and a linear read-out (W -> classes) applied at every step. Each block runs over the whole
sequence (multi-step, block after block, as spiking networks are trained with BPTT)::

    y1[t] = x1[t] + F(x2)[t],   y2[t] = x2[t] + G(y1)[t]      F, G: Linear (W/2 -> W/2) + LIF over t = 1..T
    inverse:  x2 = y2 - G(y1),  x1 = y1 - F(x2)

Temporal treatment: **BPTT** -- the loss is the per-step cross-entropy / T of the read-out and the gradient
runs through time inside every F and G (their LIF recurrence), so the reference is BPTT of the same
architecture with every state stored (``reversible=False``; ``tests/test_reversible.py``).

Memory: the whole stack of blocks is one autograd function that keeps only the stack's output sequence
``y`` (T, B, W). Nothing per block or per step is kept: no state in ``ctx`` beyond ``y``, no attributes,
no buffers. The backward walks the blocks in reverse; for each, it recomputes ``G(y1)`` with gradients
(its LIF from the zero initial state over t = 1..T), reconstructs ``x2 = y2 - G(y1)``, back-propagates
through G, then does the same for F and ``x1 = y1 - F(x2)``. Only one block's graph over T exists at a
time, so memory is O(T B W), flat in depth (BPTT of the same network: O(L T B W)).

``backward="revnet"`` (default) is the backward of RevNet itself (Gomez et al., NeurIPS 2017, Algorithm 1):
per block it runs G and then F once each with gradients, and the same outputs serve the reconstruction
(``x2 = y2 - G(y1)``, ``x1 = y1 - F(x2)``) and the backward pass -- two forward evaluations of F/G per block on
top of their backward. ``backward="naive"`` first inverts the block without gradients and then recomputes it
with gradients from the reconstructed input (as some reversible-layer code does): four evaluations per block, a
weaker baseline than RevNet's. Lei et al. report a "streamlined" backward that cuts training time by 23.8 % against
"current reversible layer backpropagation"; only their abstract could be read here, so what it adds beyond
RevNet's Algorithm 1 is not known and not implemented: ``benchmarks/bench_methods.py --claims`` measures RevNet's
backward against the naive one and against plain BPTT, and says so.

Where reconstruction is exact, and where not (see ``docs/rules.md``): the coupling adds spikes, so every
block input and output is a small integer (a spike count) and ``(x + f) - f == x`` holds exactly in float32
and float64; membranes are recomputed forward from the reconstructed inputs, bit for bit as in the forward
pass. It would not be exact (a) for real-valued block inputs (rounding in ``(x + f) - f``, and a recomputed
membrane that lands on the other side of the threshold flips a spike), nor (b) if membranes were inverted
backwards in time: ``u[t-1] - V_th s[t-1] = (u[t] - I[t]) / lam`` does not determine ``u[t-1]`` (with soft
reset both ``u`` and ``u + V_th`` map onto ``[0, V_th)``), and dividing by ``lam`` multiplies rounding
errors by ``1/lam`` per step -- so this implementation never does that.

Recurrent layers and ALIF neurons: the reversible node is defined for feed-forward blocks of LIF neurons only
(a block's inverse needs its input sequence from its output sequence alone); :func:`from_network` refuses a network
with a recurrent or adaptive layer in one line saying so.

The reversible network is not a feed-forward chain of hwsim layers, so it has no
:class:`hwsim.sim.network.Network` form: it is trained and measured in torch only. :func:`from_network` takes the
sizes of an MLP ``n_in-W-W-...-C``: its first layer, one reversible block per further hidden layer, its
read-out.
"""

from __future__ import annotations

import numpy as np
import torch
from hwsim.methods.neuron import Surrogate, Triangle, lif_step
from hwsim.methods.rule import RuleError, StepResult, TrainingRule
from torch import nn

from hwsim.sim.network import Dense, FloatALIF, FloatLIF, Network, Recurrent

BACKWARDS = ("revnet", "naive")


def lif_sequence(currents: torch.Tensor, neuron: FloatLIF, surrogate: Surrogate) -> torch.Tensor:
    """Spikes ``(T, B, N)`` of a LIF layer driven by ``currents`` ``(T, B, N)`` from the zero state (BPTT:
    the state is not detached)."""
    state, spikes = None, []
    for t in range(currents.shape[0]):
        s, state = lif_step(currents[t], state, neuron, surrogate)
        spikes.append(s)
    return torch.stack(spikes)


class RevBlock(nn.Module):
    """One reversible block: F and G are Linear + LIF on half the width, over the whole sequence."""

    def __init__(self, half: int, neuron: FloatLIF, surrogate: Surrogate):
        super().__init__()
        self.f, self.g = nn.Linear(half, half), nn.Linear(half, half)
        self.neuron, self.surrogate = neuron, surrogate

    def branch_f(self, x2: torch.Tensor) -> torch.Tensor:
        return lif_sequence(self.f(x2), self.neuron, self.surrogate)

    def branch_g(self, y1: torch.Tensor) -> torch.Tensor:
        return lif_sequence(self.g(y1), self.neuron, self.surrogate)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y1 = x1 + self.branch_f(x2)
        return y1, x2 + self.branch_g(y1)

    def inverse(self, y1: torch.Tensor, y2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x2 = y2 - self.branch_g(y1)
        return y1 - self.branch_f(x2), x2


class _ReversibleStack(torch.autograd.Function):
    """Runs the blocks keeping only the output sequence; the backward reconstructs and back-propagates."""

    @staticmethod
    def forward(ctx, x, blocks, backward, *params):
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        with torch.no_grad():
            for block in blocks:
                x1, x2 = block(x1, x2)
        y = torch.cat([x1, x2], dim=-1)
        ctx.save_for_backward(y)
        ctx.blocks, ctx.backward_kind = blocks, backward  # the modules themselves: no tensor kept aside
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        half = y.shape[-1] // 2
        y1, y2 = y[..., :half].detach(), y[..., half:].detach()
        work = [y1, y2, grad_y[..., :half], grad_y[..., half:]]  # handed on, so nothing outlives its block
        del y, y1, y2, grad_y
        step = _revnet if ctx.backward_kind == "revnet" else _naive
        for block in reversed(ctx.blocks):
            work = step(block, work)
        return torch.cat(work[2:], dim=-1), None, None, *([None] * (len(ctx.needs_input_grad) - 3))


def _revnet(block: RevBlock, work: list) -> list:
    """RevNet's Algorithm 1: G and F each run once with gradients; their outputs serve the reconstruction and
    the backward.
    ``work``: [y1, y2, dL/dy1, dL/dy2] of the block's output, emptied; returns the same for its input."""
    y1, y2, g1, g2 = work
    work.clear()
    with torch.enable_grad():
        y1_leaf = y1.requires_grad_(True)
        gs = block.branch_g(y1_leaf)
        torch.autograd.backward(gs, g2)
    x2 = y2 - gs.detach()
    g1 = g1 + y1_leaf.grad
    del gs, y2
    with torch.enable_grad():
        x2_leaf = x2.requires_grad_(True)
        fs = block.branch_f(x2_leaf)
        torch.autograd.backward(fs, g1)
    x1 = y1.detach() - fs.detach()
    del fs, y1, y1_leaf
    g2 = g2 + x2_leaf.grad
    return [x1, x2.detach(), g1, g2]


def _naive(block: RevBlock, work: list) -> list:
    """Invert without gradients, then recompute the block with gradients from the reconstructed input."""
    y1, y2, g1, g2 = work
    work.clear()
    with torch.no_grad():
        x1, x2 = block.inverse(y1, y2)
    with torch.enable_grad():
        x1_leaf, x2_leaf = x1.requires_grad_(True), x2.requires_grad_(True)
        out1, out2 = block(x1_leaf, x2_leaf)
        del y1, y2
        torch.autograd.backward((out1, out2), (g1, g2))
    del out1, out2, g1, g2
    return [x1.detach(), x2.detach(), x1_leaf.grad, x2_leaf.grad]


class RevSNN(nn.Module):
    """Input spiking layer, reversible blocks, linear read-out (see module docstring). Weights are drawn from a
    ``torch.Generator`` seeded with ``seed``; the global RNG is neither reseeded nor advanced."""

    def __init__(self, n_in: int, width: int, blocks: int, n_classes: int, neuron: FloatLIF | None = None,
                 surrogate: Surrogate | None = None, seed: int = 0, reversible: bool = True,
                 backward: str = "revnet"):
        super().__init__()
        if width < 2 or width % 2:
            raise RuleError(f"RevSNN width: a reversible block splits the W neurons into two halves, so W must be "
                            f"even and >= 2, got {width}")
        if blocks < 0:
            raise RuleError(f"RevSNN blocks must be >= 0, got {blocks}")
        if backward not in BACKWARDS:
            raise RuleError(f"RevSNN backward must be one of {', '.join(BACKWARDS)}, got {backward!r}")
        self.neuron, self.surrogate = neuron or FloatLIF(), surrogate or Triangle()
        with torch.random.fork_rng(devices=[]):  # nn.Linear's own init draws from the global RNG: restore it
            self.input_layer = nn.Linear(n_in, width)
            self.blocks = nn.ModuleList([RevBlock(width // 2, self.neuron, self.surrogate) for _ in range(blocks)])
            self.readout = nn.Linear(width, n_classes)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # the scale hwsim.sim.network.from_spec uses: N(0, (3 / sqrt(fan_in))^2), no bias
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator)
                                        * (3.0 / np.sqrt(module.in_features)))
                    module.bias.zero_()
        self.reversible, self.backward_kind = reversible, backward
        self.n_classes = n_classes
        self.input_shape = (n_in,)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Read-out at every step, ``(T, B, classes)``, for ``x`` of shape ``(T, B, n_in)``."""
        s = lif_sequence(self.input_layer(x), self.neuron, self.surrogate)
        if self.reversible and len(self.blocks):
            params = [p for block in self.blocks for p in block.parameters()]
            y = _ReversibleStack.apply(s, list(self.blocks), self.backward_kind, *params)
        else:  # the same computation with plain autograd: every state of every block and step stored
            half = s.shape[-1] // 2
            x1, x2 = s[..., :half], s[..., half:]
            for block in self.blocks:
                x1, x2 = block(x1, x2)
            y = torch.cat([x1, x2], dim=-1)
        return self.readout(y)

    def forward(self, x: torch.Tensor, scored: torch.Tensor | None = None) -> torch.Tensor:
        """Read-out summed over time, ``(B, classes)``; with ``scored`` (bool (T,)) over the scored steps only."""
        out = self.sequence(x)
        return out.sum(0) if scored is None else out[scored.to(out.device)].sum(0)


def from_network(network: Network, reversible: bool = True, seed: int = 0, surrogate: Surrogate | None = None,
                 backward: str = "revnet") -> RevSNN:
    """The reversible form of a float MLP ``n_in-W-W-...-C`` (see module docstring)."""
    layers = network.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, Recurrent) or isinstance(getattr(layer, "neuron", None), FloatALIF):
            what = "recurrent" if isinstance(layer, Recurrent) else "adaptive (ALIF)"
            raise RuleError(f"the reversible node (Lei et al. 2023) is defined for feed-forward LIF blocks only: "
                            f"layer {i} ({layer.name or layer.kind}) is {what}")
    if not all(isinstance(layer, Dense) for layer in layers) or len(layers) < 2:
        raise RuleError("the reversible node needs a dense MLP n_in-W-...-C (at least one hidden layer)")
    width = layers[0].n_out
    hidden = [layer.n_out for layer in layers[:-1]]
    if any(h != width for h in hidden):
        raise RuleError(f"the reversible node needs equal hidden widths, got {hidden}")
    model = RevSNN(layers[0].n_in, width, len(hidden) - 1, layers[-1].n_out, layers[0].neuron, surrogate,
                   seed=seed, reversible=reversible, backward=backward)
    with torch.no_grad():  # the input layer and the read-out start from the network's own weights
        for module, layer in ((model.input_layer, layers[0]), (model.readout, layers[-1])):
            module.weight.copy_(torch.from_numpy(np.asarray(layer.weight, np.float32)))
            if layer.bias is not None:
                module.bias.copy_(torch.from_numpy(np.asarray(layer.bias, np.float32)))
            else:
                module.bias.zero_()
    return model


class Reversible(TrainingRule):
    """BPTT of a :class:`RevSNN`: the per-step loss summed over the sequence, one backward per batch; the
    reversible stack recomputes block activations in its backward pass (``recomputed_blocks`` per batch:
    F and G recomputed once per block, twice with ``backward="naive"``)."""

    name = "revsnn"

    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        scored, divisor = self.scoring(x.shape[0])
        out = self.model.sequence(x)
        loss = sum(self.loss(out[t], y, divisor) for t in range(x.shape[0]) if scored[t])
        loss.backward()
        recomputed = len(self.model.blocks) * (2 if self.model.backward_kind == "naive" else 1) \
            if self.model.reversible else 0
        logits = out.detach().sum(0) if self.loss_steps is None else \
            out.detach()[torch.tensor(scored, device=out.device)].sum(0)
        return StepResult(float(loss.detach()), logits, {"recomputed_blocks": recomputed})

    def describe(self) -> dict:
        return {"rule": self.name, "blocks": len(self.model.blocks), "width": int(self.model.readout.in_features),
                "temporal": "BPTT", "reversible": self.model.reversible, "backward": self.model.backward_kind}


def build(entry, network, surrogate, options, device) -> Reversible:
    """The registry's builder: the reversible node over the network's architecture."""
    return Reversible(from_network(network, seed=options.seed, surrogate=surrogate).to(device))
