"""On-chip learning: run a time-local rule the way a chip would and count every learning operation.

``OnChipLearner(network, rule).train_batch(spikes, labels)`` trains one mini-batch of a float dense
network in place and returns the learning-phase :class:`~hwsim.counts.Counts`: the forward events of the
inference engine plus ``error_macs`` (W^T delta products, only at neurons with g' != 0), ``grad_ops``
(per-synapse gradient accumulations, gated by presynaptic spikes or traces), ``trace_updates``,
``weight_updates`` (weights written back) and bytes by memory kind.

Rules with an on-chip kernel: ``sltt``, ``sltt_k``, ``ottt_a``, ``ottt_o`` (``hwsim/rules/online.py``).
The read-out, loss and update are those of ``methods/``: the last layer's synaptic current, cross-entropy
per step / T, plain SGD -- so the weight change equals the torch reference's ``-lr * grad``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.counts import Counts, LayerCounts, add_inference_bytes
from hwsim.engine import check_input
from hwsim.kernels.synapses import scan_events
from hwsim.network import Dense, FloatLIF, Network, NetworkError
from hwsim.rules.online import COUNTER_NAMES, RECTANGLE, SIGMOID, TRIANGLE, train_online

ON_CHIP_RULES = ("sltt", "sltt_k", "ottt_a", "ottt_o")
SURROGATES = {"triangle": TRIANGLE, "sigmoid": SIGMOID, "rectangle": RECTANGLE}
FLOAT_BYTES = 4


class LearningError(ValueError):
    """A rule or option the on-chip learner cannot run; the message says which and why."""


@dataclass
class LearnResult:
    counts: Counts
    readout: np.ndarray  # (B, classes): read-out summed over the steps
    learn_steps: list[int]


class OnChipLearner:
    """Trains a float dense :class:`Network` in place with an on-chip rule (see module docstring)."""

    def __init__(self, network: Network, rule: str, lr: float = 0.1, k: int = 2, surrogate: str = "triangle",
                 alpha: float = 1.0, seed: int = 0):
        if rule not in ON_CHIP_RULES:
            raise LearningError(f"unknown on-chip rule {rule!r}; known rules: {', '.join(ON_CHIP_RULES)}")
        if network.mode != "float":
            raise LearningError("on-chip learning runs float networks here; fixed-point learning is not built yet")
        for i, layer in enumerate(network.layers):
            if not isinstance(layer, Dense):
                raise LearningError(f"layer {i} ({layer.name}): on-chip learning supports dense layers, "
                                    f"got {layer.kind}")
        if surrogate not in SURROGATES:
            raise LearningError(f"unknown surrogate {surrogate!r}; expected one of {', '.join(SURROGATES)}")
        self.network, self.rule, self.lr, self.k = network, rule, float(lr), int(k)
        self.sur_kind, self.alpha = SURROGATES[surrogate], float(alpha)
        self.rng = np.random.default_rng(seed)
        layers = network.layers
        self.sizes = np.array([layers[0].n_in] + [layer.n_out for layer in layers], np.int64)
        self.w_off = np.concatenate([[0], np.cumsum([layer.n_in * layer.n_out for layer in layers])]).astype(np.int64)
        self.b_off = np.concatenate([[0], np.cumsum([layer.n_out for layer in layers])]).astype(np.int64)
        self.lams = np.array([layer.neuron.lam for layer in layers], np.float32)
        self.v_th = np.array([layer.neuron.v_th for layer in layers], np.float32)
        resets = {layer.neuron.reset for layer in layers}
        if len(resets) != 1:
            raise LearningError("on-chip learning needs one reset mode for all layers")
        self.soft = resets.pop() == "soft"
        self.w, self.b = self._pack()
        self.grad_w, self.grad_b = np.zeros_like(self.w), np.zeros_like(self.b)
        self.touched = np.zeros(int(self.sizes[:-1].sum()), np.uint8)
        self.has_bias = np.array([layer.bias is not None for layer in layers], np.uint8)

    def _pack(self) -> tuple[np.ndarray, np.ndarray]:
        w = np.concatenate([np.ascontiguousarray(layer.weight.T).ravel() for layer in self.network.layers])
        b = np.concatenate([layer.bias if layer.bias is not None else np.zeros(layer.n_out, np.float32)
                            for layer in self.network.layers])
        return w.astype(np.float32), b.astype(np.float32)

    def _unpack(self, w: np.ndarray, b: np.ndarray) -> None:
        for ly, layer in enumerate(self.network.layers):
            layer.weight = w[self.w_off[ly]: self.w_off[ly + 1]].reshape(layer.n_in, layer.n_out).T.copy()
            if layer.bias is not None:
                layer.bias = b[self.b_off[ly]: self.b_off[ly + 1]].copy()

    def learn_steps(self, steps: int) -> list[int]:
        """The steps with a learning (backward) pass: all, or K drawn without replacement (SLTT-K)."""
        if self.rule != "sltt_k":
            return list(range(steps))
        if self.k > steps:
            raise LearningError(f"SLTT-K: K={self.k} is larger than the number of time steps T={steps}")
        return sorted(self.rng.permutation(steps)[: self.k].tolist())

    def sync(self) -> Network:
        """Write the learner's weights into the network (fan-in major, as hwsim stores them)."""
        self._unpack(self.w, self.b)
        return self.network

    def train_batch(self, spikes: np.ndarray, labels: np.ndarray, learn_steps: list[int] | None = None,
                    sync: bool = True) -> LearnResult:
        """One mini-batch: ``spikes`` (T, B, n_in) 0/1, ``labels`` (B,) ints. The learner keeps the weights
        in its own fan-out-major arrays; ``sync`` writes them back into the network after the batch (call
        :meth:`sync` yourself after a loop of ``sync=False`` batches)."""
        s_in = check_input(self.network, spikes)
        steps, batch = s_in.shape[:2]
        labels = np.asarray(labels, np.int64)
        classes = int(self.sizes[-1])
        if labels.shape != (batch,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= classes:
            raise LearningError(f"labels must be {batch} integers in 0..{classes - 1}, got shape {labels.shape}")
        chosen = self.learn_steps(steps) if learn_steps is None else sorted(learn_steps)
        mask = np.zeros(steps, np.uint8)
        mask[chosen] = 1
        in_off, in_events = scan_events(s_in)
        layers = len(self.network.layers)
        counters = np.zeros((layers, len(COUNTER_NAMES), steps), np.int64)
        readout = np.zeros((batch, classes), np.float32)
        neuron_spikes = np.zeros(int(self.b_off[-1]), np.int64)
        neuron_active = np.zeros_like(neuron_spikes)
        input_spikes = np.zeros(int(self.sizes[:-1].sum()), np.int64)
        train_online(self.sizes, self.w, self.w_off, self.b, self.b_off, self.b_off, self.lams, self.v_th,
                     self.soft, self.sur_kind, np.float32(self.alpha), in_off, in_events, labels, mask, self.lr,
                     self.rule.startswith("ottt"), self.rule == "ottt_o", self.grad_w, self.grad_b, self.touched,
                     self.has_bias, counters, readout, neuron_spikes, neuron_active, input_spikes)
        if sync:
            self.sync()
        counts = self._counts(counters, steps, batch)
        in_off = np.concatenate([[0], np.cumsum(self.sizes[:-1])])
        for ly, lc in enumerate(counts.layers):
            lc.neuron_spikes = neuron_spikes[self.b_off[ly]: self.b_off[ly + 1]]
            lc.neuron_active = neuron_active[self.b_off[ly]: self.b_off[ly + 1]]
            lc.input_spikes = input_spikes[in_off[ly]: in_off[ly + 1]]
        return LearnResult(counts, readout, chosen)

    def _counts(self, counters: np.ndarray, steps: int, batch: int) -> Counts:
        counts = Counts(timesteps=steps, batch=batch, mode="float", phase="learning")
        for ly, layer in enumerate(self.network.layers):
            lc = LayerCounts(layer.name, layer.kind, layer.n_in, layer.n_out, steps)
            for c, name in enumerate(COUNTER_NAMES):
                if name in lc.events:
                    lc.events[name][:] = counters[ly, c]
            add_inference_bytes(lc, "float", has_bias=layer.bias is not None)
            errors = counters[ly, COUNTER_NAMES.index("errors")]
            add_learning_bytes(lc, errors, uses_traces=self.rule.startswith("ottt"))
            counts.layers.append(lc)
        return counts


def add_learning_bytes(lc: LayerCounts, errors: np.ndarray, uses_traces: bool) -> None:
    """Learning bytes (float32, 4 B per value), from the learning counters:

    * an error MAC reads one weight (``weights``) and one error (``errors``); each error computed is written
      once (``errors``);
    * a gradient op reads and writes its accumulator (``grad_accum``) and, with traces, reads the trace;
    * a trace update reads and writes the trace (``traces``);
    * a weight update reads the accumulator and reads and writes the weight.
    """
    ev = lc.events
    lc.mem_read_bytes["weights"] += (ev["error_macs"] + ev["weight_updates"]) * FLOAT_BYTES
    lc.mem_write_bytes["weights"] += ev["weight_updates"] * FLOAT_BYTES
    lc.mem_read_bytes["errors"] += ev["error_macs"] * FLOAT_BYTES
    lc.mem_write_bytes["errors"] += errors * FLOAT_BYTES
    lc.mem_read_bytes["grad_accum"] += (ev["grad_ops"] + ev["weight_updates"]) * FLOAT_BYTES
    lc.mem_write_bytes["grad_accum"] += ev["grad_ops"] * FLOAT_BYTES
    lc.mem_read_bytes["traces"] += (ev["trace_updates"] + (ev["grad_ops"] if uses_traces else 0)) * FLOAT_BYTES
    lc.mem_write_bytes["traces"] += ev["trace_updates"] * FLOAT_BYTES


def float_network(network: Network) -> bool:
    return network.mode == "float" and all(isinstance(layer.neuron, FloatLIF) for layer in network.layers
                                           if layer.neuron is not None)


__all__ = ["ON_CHIP_RULES", "OnChipLearner", "LearnResult", "LearningError", "NetworkError"]
