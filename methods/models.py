"""Torch modules built from, and written back into, :class:`hwsim.sim.network.Network` (float mode).

A :class:`SpikingNet` is a list of stages, one per neuron layer: a synapse module (``nn.Linear``,
``nn.Conv2d`` or :class:`SumPool`; a Flatten folds into the next stage) and its :class:`FloatLIF` or
:class:`FloatALIF`. The read-out ``o[t]`` is the synaptic current of the last layer (``W s[t] + b``), the
quantity the per-step loss is taken on (as the SLTT/OTTT classifiers are non-spiking); its LIF still runs, so
the network is the same one hwsim simulates.

A recurrent layer (:class:`hwsim.sim.network.Recurrent`) is a stage with a second, bias-free ``nn.Linear``
(``recurrent``, n x n) from the layer's own spikes of the step before: its current is
``I[t] = W x[t] + b + W_rec s[t-1]`` (``s[-1] = 0``, so step 0 has no recurrent term). The state a layer carries
from step to step (:class:`~hwsim.methods.neuron.LIFState`) holds ``u[t]``, ``s[t]`` and, for ALIF, ``a[t]``;
``detach_state`` makes all three -- and so the recurrent input ``s[t-1]`` -- constants of the next step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from hwsim.methods.neuron import LIFState, Surrogate, Triangle, lif_advance
from torch import nn

from hwsim.sim.network import Conv2d, Dense, Flatten, FloatALIF, FloatLIF, Network, NetworkError, Recurrent, SumPool2d


class SumPool(nn.Module):
    """Channel-wise sum pooling with a fixed scalar tap weight (no parameters)."""

    def __init__(self, kernel: int, stride: int, weight: float):
        super().__init__()
        self.kernel, self.stride, self.weight = kernel, stride, float(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel, self.stride) * (self.kernel * self.kernel * self.weight)


@dataclass
class Stage:
    """One neuron layer: optional flatten, synapses, neuron parameters, hwsim layer index, output shape, and
    (recurrent layers) the recurrent synapses ``recurrent`` (a bias-free ``nn.Linear`` n -> n)."""

    synapse: nn.Module
    neuron: FloatLIF | FloatALIF
    flatten_before: bool
    index: int
    name: str
    out_shape: tuple[int, ...]
    recurrent: nn.Linear | None = None


class SpikingNet(nn.Module):
    """A float hwsim network as torch modules; see the module docstring."""

    def __init__(self, stages: list[Stage], input_shape: tuple[int, ...], surrogate: Surrogate | None = None):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.surrogate = surrogate or Triangle()
        self.stages = list(stages)
        self.synapses = nn.ModuleList([stage.synapse for stage in self.stages])
        recurrent = [stage.recurrent for stage in self.stages if stage.recurrent is not None]
        if recurrent:  # registered only when present: a feed-forward net's parameters and state_dict are as before
            self.recurrents = nn.ModuleList(recurrent)
        self.n_classes = int(np.prod(self.stages[-1].out_shape))

    @classmethod
    def from_network(cls, network: Network, surrogate: Surrogate | None = None) -> SpikingNet:
        """Torch modules holding a copy of ``network``'s weights."""
        if network.mode != "float":
            raise NetworkError("torch training needs a float network (FloatLIF or FloatALIF neurons)")
        stages, flatten = [], False
        for index, (layer, (_, out_shape)) in enumerate(zip(network.layers, network.layer_shapes())):
            if isinstance(layer, Flatten):
                flatten = True
                continue
            stages.append(Stage(_synapse_module(layer), layer.neuron, flatten, index, layer.name, out_shape,
                                _recurrent_module(layer) if isinstance(layer, Recurrent) else None))
            flatten = False
        return cls(stages, network.input_shape, surrogate)

    def current(self, k: int, inputs: torch.Tensor, weight_inputs: torch.Tensor | None = None) -> torch.Tensor:
        """Synaptic current of stage ``k``. With ``weight_inputs`` (e.g. OTTT's traces) the value is still
        computed from ``inputs`` but the weight gradient sees ``weight_inputs``."""
        stage = self.stages[k]
        if stage.flatten_before:
            inputs = inputs.flatten(1)
            weight_inputs = None if weight_inputs is None else weight_inputs.flatten(1)
        syn = stage.synapse
        if weight_inputs is None or not isinstance(syn, (nn.Linear, nn.Conv2d)):
            return syn(inputs)  # a sum-pool is linear without weights: its input gradient is the same either way
        conv = None if isinstance(syn, nn.Linear) else (syn.stride, syn.padding)
        return _Traced.apply(inputs, weight_inputs.detach(), syn.weight, syn.bias, conv)

    def recurrent_current(self, k: int, previous: torch.Tensor, trace: torch.Tensor | None = None) -> torch.Tensor:
        """Recurrent current ``W_rec s[t-1]`` of stage ``k`` from its own spikes ``previous`` of the step before
        (the caller detaches them where the rule cuts the temporal path). With ``trace`` (OTTT's ``r_hat``) the
        value still comes from ``previous`` and the weight gradient sees the trace."""
        rec = self.stages[k].recurrent
        if trace is None:
            return rec(previous)
        return _Traced.apply(previous, trace.detach(), rec.weight, None, None)

    def stage_current(self, k: int, inputs: torch.Tensor, state: LIFState | None, detach_state: bool = False,
                      weight_inputs: torch.Tensor | None = None, trace: torch.Tensor | None = None) -> torch.Tensor:
        """The whole input current of stage ``k`` at one step: :meth:`current` of ``inputs`` plus, for a recurrent
        stage with a ``state`` (not the first step), :meth:`recurrent_current` of the state's spikes ``s[t-1]``
        (detached with ``detach_state``; ``trace``: OTTT's recurrent trace)."""
        current = self.current(k, inputs, weight_inputs)
        if self.stages[k].recurrent is None or state is None:
            return current
        previous = state.s.detach() if detach_state else state.s
        return current + self.recurrent_current(k, previous, trace)

    def step(self, x_t: torch.Tensor, states: list[LIFState | None] | None, detach_state: bool = False,
             weight_inputs: list[torch.Tensor] | None = None, start: int = 0, stop: int | None = None
             ) -> tuple[torch.Tensor, list[torch.Tensor], list[LIFState]]:
        """One time step through stages ``start..stop-1``: returns the last stage's current (the read-out
        when ``stop`` is the end), every stage's spikes, and the new states.

        Lifetimes: the entries of ``states`` are consumed (set to None) as each layer steps, so a layer's state
        before this step is freed as soon as that layer has its new one (when the caller holds no other
        reference), and a hidden layer's synaptic current is dropped once its membrane is updated. During the
        step only one layer holds both its old and its new state."""
        stop = len(self.stages) if stop is None else stop
        states = states if states is not None else [None] * (stop - start)
        inp, spikes, new_states, out = x_t, [], [], None
        for j, k in enumerate(range(start, stop)):
            neuron, w_in = self.stages[k].neuron, None if weight_inputs is None else weight_inputs[j]
            if k < stop - 1:  # the current is not kept: lif_advance frees it once the membrane is updated
                s, state = lif_advance(self.stage_current(k, inp, states[j], detach_state, w_in), states, j, neuron,
                                       self.surrogate, detach_state)
            else:  # the last stage's current is the read-out the loss is taken on
                out = self.stage_current(k, inp, states[j], detach_state, w_in)
                s, state = lif_advance(out, states, j, neuron, self.surrogate, detach_state)
            spikes.append(s)
            new_states.append(state)
            inp = s
        return (x_t if out is None else out), spikes, new_states

    def forward(self, x: torch.Tensor, scored: torch.Tensor | None = None) -> torch.Tensor:
        """Read-out summed over time for ``x`` of shape ``(T, B, *input_shape)`` -> ``(B, classes)``; with
        ``scored`` (bool (T,), a task's ``loss_steps``) summed over the scored steps only."""
        states, total = None, 0.0
        keep = None if scored is None else [bool(v) for v in scored]
        for t in range(x.shape[0]):
            out, _, states = self.step(x[t], states)
            if keep is None or keep[t]:
                total = total + out.flatten(1)
        return total

    def write_back(self, network: Network) -> Network:
        """Copy the trained weights and biases into ``network`` (in place) and return it."""
        for stage in self.stages:
            layer = network.layers[stage.index]
            if isinstance(stage.synapse, (nn.Linear, nn.Conv2d)):
                layer.weight = stage.synapse.weight.detach().cpu().numpy().astype(np.float32).copy()
                if stage.synapse.bias is not None:
                    layer.bias = stage.synapse.bias.detach().cpu().numpy().astype(np.float32).copy()
            if stage.recurrent is not None:
                layer.recurrent = stage.recurrent.weight.detach().cpu().numpy().astype(np.float32).copy()
        return network


class _Traced(torch.autograd.Function):
    """``y = W s + b`` (dense or conv) computed once from the spikes ``s``; backward: ``dL/ds`` as usual,
    ``dL/dW`` and ``dL/db`` from the trace instead of ``s`` (OTTT). Saves the trace and the weight only -- the
    trace is the rule's own state -- and runs one forward product, where computing the synapse twice (once on
    the spikes for the value, once on the trace for the gradient) would build and drop a second graph."""

    @staticmethod
    def forward(ctx, s, trace, weight, bias, conv):
        ctx.save_for_backward(trace, weight)
        ctx.conv, ctx.has_bias, ctx.in_shape = conv, bias is not None, tuple(s.shape)
        if conv is None:
            return F.linear(s, weight, bias)
        return F.conv2d(s, weight, bias, stride=conv[0], padding=conv[1])

    @staticmethod
    def backward(ctx, grad):
        trace, weight = ctx.saved_tensors
        if ctx.conv is None:
            grad_s = grad.mm(weight) if ctx.needs_input_grad[0] else None
            grad_w = grad.t().mm(trace)
            grad_b = grad.sum(0) if ctx.has_bias else None
        else:
            stride, padding = ctx.conv  # one backward call, as autograd's own: the trace stands in for the input
            grad_s, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad, trace, weight, [weight.shape[0]] if ctx.has_bias else None, stride, padding, (1, 1), False,
                (0, 0), 1, [ctx.needs_input_grad[0], True, ctx.has_bias])
        return grad_s, None, grad_w, grad_b, None


def _recurrent_module(layer: Recurrent) -> nn.Linear:
    """The recurrent synapses of ``layer`` as a bias-free ``nn.Linear`` (n -> n), a copy of ``layer.recurrent``."""
    module = nn.Linear(layer.n_out, layer.n_out, bias=False)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.asarray(layer.recurrent, np.float32)))
    return module


def _synapse_module(layer: Dense | Recurrent | Conv2d | SumPool2d) -> nn.Module:
    if isinstance(layer, (Dense, Recurrent)):
        module = nn.Linear(layer.n_in, layer.n_out, bias=layer.bias is not None)
    elif isinstance(layer, Conv2d):
        o, c, kh, kw = layer.weight.shape
        module = nn.Conv2d(c, o, (kh, kw), stride=layer.stride, padding=layer.padding, bias=layer.bias is not None)
    else:
        return SumPool(layer.kernel, layer.stride, layer.weight)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.asarray(layer.weight, np.float32)))
        if layer.bias is not None:
            module.bias.copy_(torch.from_numpy(np.asarray(layer.bias, np.float32)))
    return module
