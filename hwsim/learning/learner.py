"""On-chip learning: run a time-local rule the way a chip would and count every learning operation.

``OnChipLearner(network, rule).train_batch(spikes, labels)`` trains one mini-batch of a float network
in place and returns the learning-phase :class:`~hwsim.sim.counts.Counts`: the forward events of the
inference engine plus ``error_macs`` (W^T delta products, only at neurons with g' != 0), ``grad_ops``
(per-synapse gradient accumulations, gated by presynaptic spikes or traces), ``trace_updates``,
``weight_updates`` (weights written back) and bytes by memory kind.

Rules with an on-chip kernel: ``sltt``, ``sltt_k``, ``ottt_a``, ``ottt_o`` (``hwsim/learning/kernels/online.py``) and
``bptt``, ``ttl_bptt``, ``stdl`` (``hwsim/learning/kernels/windowed.py``: a graph of the network's layers plus the
heads of locally trained blocks, with state history inside a window). The read-out, loss and update are
those of ``methods/``: the last layer's synaptic current, cross-entropy per step / T, plain SGD -- so the
weight change equals the torch reference's ``-lr * grad``. TTL-BPTT's local classifiers and STDL's
auxiliary networks (the heads) live in the learner; pass ``heads`` to start them from given weights. STDL's
auxiliary networks are those :func:`hwsim.learning.stdl_plan.plan` chooses for ``budget_bytes`` at
``batch_size`` (the same
choice and the same initial weights as the torch rule built with the same budget, batch size and seed).

Networks with conv and sum-pool layers (a Flatten before the dense read-out) run every rule in one graph
kernel, ``hwsim/learning/kernels/conv.py`` (graph built by ``hwsim/learning/conv_graph.py``): a conv kernel is
shared by all output positions, so its gradient accumulates into the one shared weight and a written kernel
weight counts once; ``channel_weight_updates`` holds those writes per output channel, and the mapper turns
them into writes per core with the chip's weight sharing. Pools have fixed taps: they pass errors, learn
nothing. Heads of a conv network are given per layer of the chain; a pool copy takes ``(None, None)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import LearningError
from hwsim.learning.kernels.online import COUNTER_NAMES, RECTANGLE, SIGMOID, TRIANGLE, train_online
from hwsim.learning.kernels.windowed import train_windowed
from hwsim.sim.counts import Counts, LayerCounts, add_inference_bytes
from hwsim.sim.engine import check_input
from hwsim.sim.kernels.synapses import scan_events
from hwsim.sim.network import Dense, Network, NetworkError

ON_CHIP_RULES = ("bptt", "sltt", "sltt_k", "ottt_a", "ottt_o", "ttl_bptt", "stdl")
WINDOWED_RULES = ("bptt", "ttl_bptt", "stdl")
SURROGATES = {"triangle": TRIANGLE, "sigmoid": SIGMOID, "rectangle": RECTANGLE}
FLOAT_BYTES = 4



@dataclass
class LearnResult:
    counts: Counts
    readout: np.ndarray  # (B, classes): read-out summed over the steps
    learn_steps: list[int]


class OnChipLearner:
    """Trains a float :class:`Network` (dense, or conv + pool + dense) in place with an on-chip rule (see
    module docstring)."""

    def __init__(self, network: Network, rule: str, lr: float = 0.1, k: int = 2, surrogate: str = "triangle",
                 alpha: float = 1.0, seed: int = 0, window: int = 1, block: int = 1, subnet: int = 1,
                 budget_bytes: int | None = None, batch_size: int = 32, heads: list[list[tuple]] | None = None,
                 precision: str = "float", weight_bits: int = 8, trace_bits: int = 7, error_bits: int = 8):
        if rule not in ON_CHIP_RULES:
            raise LearningError(f"unknown on-chip rule {rule!r}; known rules: {', '.join(ON_CHIP_RULES)}")
        if network.mode != "float":
            raise LearningError("on-chip learning takes the float network; pass precision='fixed' to learn in the "
                                "chip's fixed point (8-bit weights, 7-bit traces, 8-bit errors)")
        if surrogate not in SURROGATES:
            raise LearningError(f"unknown surrogate {surrogate!r}; expected one of {', '.join(SURROGATES)}")
        self.network, self.rule, self.lr, self.k = network, rule, float(lr), int(k)
        self.sur_kind, self.alpha = SURROGATES[surrogate], float(alpha)
        self.rng = np.random.default_rng(seed)
        self.seed = int(seed)
        resets = {layer.neuron.reset for layer in network.layers if layer.neuron is not None}
        if len(resets) != 1:
            raise LearningError("on-chip learning needs one reset mode for all layers")
        self.soft = resets.pop() == "soft"
        self._options(precision, weight_bits, trace_bits, error_bits)
        self.batches = 0
        self.window = int(window)
        self.stdl_plan = _stdl_plan(network, subnet, budget_bytes, batch_size) if rule == "stdl" else None
        self.conv = not all(isinstance(layer, Dense) for layer in network.layers)
        if self.conv:
            self._init_graph(block, subnet, self.stdl_plan, heads)
            return
        layers = network.layers
        self.sizes = np.array([layers[0].n_in] + [layer.n_out for layer in layers], np.int64)
        self.w_off = np.concatenate([[0], np.cumsum([layer.n_in * layer.n_out for layer in layers])]).astype(np.int64)
        self.b_off = np.concatenate([[0], np.cumsum([layer.n_out for layer in layers])]).astype(np.int64)
        self.lams = np.array([layer.neuron.lam for layer in layers], np.float32)
        self.v_th = np.array([layer.neuron.v_th for layer in layers], np.float32)
        self.graph = _Graph.build(network, rule, block, subnet, self.stdl_plan, heads, seed) \
            if rule in WINDOWED_RULES else None
        self.w, self.b = self._pack()
        self.grad_w, self.grad_b = np.zeros_like(self.w), np.zeros_like(self.b)
        self.touched = np.zeros(int(self.sizes[:-1].sum()), np.uint8)
        self.has_bias = np.array([layer.bias is not None for layer in layers], np.uint8)
        offsets = self.graph.w_off if self.graph is not None else self.w_off
        self.w_step = np.ones(len(offsets) - 1, np.float32)
        if precision == "fixed":  # weights on a per-layer grid: max |W| / levels, rounded there once
            for ly in range(len(offsets) - 1):
                part = self.w[offsets[ly]: offsets[ly + 1]]
                self.w_step[ly] = max(float(np.abs(part).max()), 1e-12) / self.w_levels
                part[:] = np.clip(np.rint(part / self.w_step[ly]), -self.w_levels, self.w_levels) * self.w_step[ly]
            self.sync()

    def _options(self, precision: str, weight_bits: int, trace_bits: int, error_bits: int) -> None:
        if precision not in ("float", "fixed"):
            raise LearningError(f"precision must be 'float' or 'fixed', got {precision!r}")
        for name, bits in (("weight_bits", weight_bits), ("trace_bits", trace_bits), ("error_bits", error_bits)):
            if not 2 <= int(bits) <= 24:
                raise LearningError(f"{name} must be in 2..24, got {bits}")
        self.precision = precision
        self.bits = {"weights": int(weight_bits), "traces": int(trace_bits), "errors": int(error_bits)}
        self.w_levels = 0 if precision == "float" else 2 ** (self.bits["weights"] - 1) - 1

    def _init_graph(self, block: int, subnet: int, stdl_plan, heads) -> None:
        """Conv / pool networks: the layer graph of ``hwsim.learning.conv_graph`` and its kernel."""
        from hwsim.learning.conv_graph import GraphArrays, GraphError, build_graph, pack

        try:
            self.nodes = build_graph(self.network, self.rule, block, subnet, stdl_plan, heads, self.seed)
        except GraphError as err:
            raise LearningError(str(err)) from None
        self.graph = None
        self.arrays = GraphArrays.of(self.nodes)
        self.w, self.b = pack(self.nodes)
        self.grad_w, self.grad_b = np.zeros_like(self.w), np.zeros_like(self.b)
        self.w_step = np.ones(len(self.nodes), np.float32)
        if self.precision == "fixed":  # weights on a per-layer grid: max |W| / levels, rounded there once
            for g in range(len(self.nodes)):
                part = self.w[self.arrays.w_off[g]: self.arrays.w_off[g + 1]]
                if part.size:
                    self.w_step[g] = max(float(np.abs(part).max()), 1e-12) / self.w_levels
                    part[:] = np.clip(np.rint(part / self.w_step[g]), -self.w_levels, self.w_levels) * self.w_step[g]
            self.sync()

    def _pack(self) -> tuple[np.ndarray, np.ndarray]:
        layers = [(layer.weight, layer.bias) for layer in self.network.layers]
        if self.graph is not None:
            layers += self.graph.head_tensors
        w = np.concatenate([np.ascontiguousarray(weight.T).ravel() for weight, _ in layers])
        b = np.concatenate([bias if bias is not None else np.zeros(weight.shape[0], np.float32)
                            for weight, bias in layers])
        return w.astype(np.float32), b.astype(np.float32)

    def heads(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """The learned heads (TTL-BPTT classifiers, STDL auxiliary layers): (name, weight, bias); a pool
        copy in a conv network's auxiliary chain has (name, None, None)."""
        if self.conv:
            from hwsim.learning.conv_graph import unpack

            tensors = unpack(self.nodes, self.arrays, self.w, self.b)
            return [(node.name, *tensors[g]) for g, node in enumerate(self.nodes) if node.layer_index < 0]
        if self.graph is None:
            return []
        out = []
        for g in range(len(self.network.layers), self.graph.size):
            n_in, n_out = int(self.graph.n_in[g]), int(self.graph.n_out[g])
            weight = self.w[self.graph.w_off[g]: self.graph.w_off[g + 1]].reshape(n_in, n_out).T.copy()
            out.append((self.graph.names[g], weight, self.b[self.graph.b_off[g]: self.graph.b_off[g + 1]].copy()))
        return out

    def _unpack(self, w: np.ndarray, b: np.ndarray) -> None:
        for ly, layer in enumerate(self.network.layers):
            layer.weight = w[self.w_off[ly]: self.w_off[ly + 1]].reshape(layer.n_in, layer.n_out).T.copy()
            if layer.bias is not None:
                layer.bias = b[self.b_off[ly]: self.b_off[ly + 1]].copy()

    def learn_steps(self, steps: int) -> list[int]:
        """The steps with a learning (backward) pass: all, or K drawn without replacement (SLTT-K)."""
        if self.rule in WINDOWED_RULES and self.rule == "ttl_bptt" and self.window > steps:
            raise LearningError(f"TTL-BPTT window k={self.window} is longer than T={steps}")
        if self.rule != "sltt_k":
            return list(range(steps))
        if self.k > steps:
            raise LearningError(f"SLTT-K: K={self.k} is larger than the number of time steps T={steps}")
        return sorted(self.rng.permutation(steps)[: self.k].tolist())

    def evaluate(self, spikes: np.ndarray) -> np.ndarray:
        """Forward only (no learning): the read-out summed over the steps, ``(B, classes)``."""
        lr, self.lr = self.lr, 0.0
        try:
            return self.train_batch(spikes, np.zeros(np.asarray(spikes).shape[1], np.int64), learn_steps=[],
                                    sync=False).readout
        finally:
            self.lr = lr

    def sync(self) -> Network:
        """Write the learner's weights into the network (fan-in major, as hwsim stores them)."""
        if self.conv:
            from hwsim.learning.conv_graph import unpack

            for node, (weight, bias) in zip(self.nodes, unpack(self.nodes, self.arrays, self.w, self.b)):
                if node.layer_index >= 0 and weight is not None:
                    layer = self.network.layers[node.layer_index]
                    layer.weight = weight
                    if layer.bias is not None:
                        layer.bias = bias
            return self.network
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
        classes = int(np.prod(self.network.output_shape))
        if labels.shape != (batch,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= classes:
            raise LearningError(f"labels must be {batch} integers in 0..{classes - 1}, got shape {labels.shape}")
        chosen = self.learn_steps(steps) if learn_steps is None else sorted(learn_steps)
        mask = np.zeros(steps, np.uint8)
        mask[chosen] = 1
        in_off, in_events = scan_events(s_in)
        if self.conv:
            return self._train_graph(in_off, in_events, labels, steps, batch, chosen, mask, sync)
        if self.graph is not None:
            return self._train_windowed(in_off, in_events, labels, steps, batch, chosen, sync)
        layers = len(self.network.layers)
        counters = np.zeros((layers, len(COUNTER_NAMES), steps), np.int64)
        readout = np.zeros((batch, classes), np.float32)
        neuron_spikes = np.zeros(int(self.b_off[-1]), np.int64)
        neuron_active = np.zeros_like(neuron_spikes)
        input_spikes = np.zeros(int(self.sizes[:-1].sum()), np.int64)
        neuron_writes = np.zeros_like(neuron_spikes)
        train_online(self.sizes, self.w, self.w_off, self.b, self.b_off, self.b_off, self.lams, self.v_th,
                     self.soft, self.sur_kind, np.float32(self.alpha), in_off, in_events, labels, mask, self.lr,
                     self.rule.startswith("ottt"), self.rule == "ottt_o", self.grad_w, self.grad_b, self.touched,
                     self.has_bias, counters, readout, neuron_spikes, neuron_active, input_spikes, self.w_step,
                     self.w_levels, 0 if self.precision == "float" else 2 ** self.bits["traces"] - 1,
                     0 if self.precision == "float" else 2 ** (self.bits["errors"] - 1) - 1, self.seed + self.batches,
                     neuron_writes)
        self.batches += 1
        if sync:
            self.sync()
        counts = self._counts(counters, steps, batch)
        in_off = np.concatenate([[0], np.cumsum(self.sizes[:-1])])
        for ly, lc in enumerate(counts.layers):
            lc.neuron_spikes = neuron_spikes[self.b_off[ly]: self.b_off[ly + 1]]
            lc.neuron_active = neuron_active[self.b_off[ly]: self.b_off[ly + 1]]
            lc.input_spikes = input_spikes[in_off[ly]: in_off[ly + 1]]
            lc.neuron_weight_updates = neuron_writes[self.b_off[ly]: self.b_off[ly + 1]]
        return LearnResult(counts, readout, chosen)

    def _train_windowed(self, in_off, in_events, labels, steps, batch, chosen, sync) -> LearnResult:
        gr = self.graph
        window = {"bptt": steps, "ttl_bptt": self.window, "stdl": 1}[self.rule]
        counters = np.zeros((gr.size, len(COUNTER_NAMES), steps), np.int64)
        readout = np.zeros((batch, int(self.sizes[-1])), np.float32)
        neuron_spikes = np.zeros(int(gr.b_off[-1]), np.int64)
        neuron_active = np.zeros_like(neuron_spikes)
        input_spikes = np.zeros(int(gr.n_in.sum()), np.int64)
        neuron_writes = np.zeros_like(neuron_spikes)
        train_windowed(gr.n_in, gr.n_out, gr.src, gr.lif, gr.readout, gr.pass_error, len(self.network.layers) - 1,
                       self.w, gr.w_off, self.b, gr.b_off, gr.b_off, gr.lams, gr.v_th, self.soft, self.sur_kind,
                       np.float32(self.alpha), in_off, in_events, labels, steps, window, self.lr, self.grad_w,
                       self.grad_b, gr.has_bias, counters, readout, neuron_spikes, neuron_active, input_spikes,
                       self.w_step, self.w_levels,
                       0 if self.precision == "float" else 2 ** (self.bits["errors"] - 1) - 1, self.seed + self.batches,
                       neuron_writes)
        self.batches += 1
        if sync:
            self.sync()
        counts = Counts(timesteps=steps, batch=batch, mode="float", phase="learning")
        in_base = np.concatenate([[0], np.cumsum(gr.n_in)])
        for g in range(gr.size):
            lc = self._layer_counts(gr.names[g], int(gr.n_in[g]), int(gr.n_out[g]), counters[g], steps,
                                    bool(gr.has_bias[g]), history=window > 1 and bool(gr.lif[g]),
                                    aux=g >= len(self.network.layers))
            lc.neuron_spikes = neuron_spikes[gr.b_off[g]: gr.b_off[g + 1]]
            lc.neuron_active = neuron_active[gr.b_off[g]: gr.b_off[g + 1]]
            lc.input_spikes = input_spikes[in_base[g]: in_base[g + 1]]
            lc.neuron_weight_updates = neuron_writes[gr.b_off[g]: gr.b_off[g + 1]]
            counts.layers.append(lc)
        return LearnResult(counts, readout, chosen)

    def _train_graph(self, in_off, in_events, labels, steps, batch, chosen, mask, sync) -> LearnResult:
        """Conv / pool networks (``hwsim.learning.kernels.conv``): every rule in one kernel."""
        from hwsim.learning.conv_graph import KIND_NAMES
        from hwsim.learning.kernels.conv import train_graph

        ga, nodes = self.arrays, self.nodes
        size = len(nodes)
        window = {"bptt": steps, "ttl_bptt": self.window}.get(self.rule, 1)
        counters = np.zeros((size, len(COUNTER_NAMES), steps), np.int64)
        readout = np.zeros((batch, int(np.prod(self.network.output_shape))), np.float32)
        neuron_spikes = np.zeros(int(ga.n_off[-1]), np.int64)
        neuron_active = np.zeros_like(neuron_spikes)
        input_spikes = np.zeros(int(ga.n_in.sum()), np.int64)
        chan_writes = np.zeros(int(ga.c_off[-1]), np.int64)
        traces = self.rule.startswith("ottt")
        fixed = self.precision == "fixed"
        train_graph(ga.kind, ga.geom, ga.n_in, ga.n_out, ga.src, ga.lif, ga.readout, ga.pass_error,
                    len(self.network.layers) - 1 - sum(1 for layer in self.network.layers if layer.neuron is None),
                    self.w, ga.w_off, ga.pool_w, self.b, ga.c_off, ga.has_bias, ga.n_off, ga.lams, ga.v_th, self.soft,
                    self.sur_kind, np.float32(self.alpha), in_off, in_events, labels, steps, window, mask, self.lr,
                    traces, self.rule == "ottt_o", self.rule in WINDOWED_RULES, self.grad_w, self.grad_b, counters,
                    readout, neuron_spikes, neuron_active, input_spikes, self.w_step, self.w_levels,
                    2 ** self.bits["traces"] - 1 if fixed else 0, 2 ** (self.bits["errors"] - 1) - 1 if fixed else 0,
                    self.seed + self.batches, chan_writes)
        self.batches += 1
        if sync:
            self.sync()
        counts = Counts(timesteps=steps, batch=batch, mode="float", phase="learning")
        in_base = np.concatenate([[0], np.cumsum(ga.n_in)])
        for g, node in enumerate(nodes):
            lc = self._layer_counts(node.name, node.n_in, node.n_out, counters[g], steps, node.bias is not None,
                                    history=window > 1 and node.lif, aux=node.layer_index < 0,
                                    kind=KIND_NAMES[node.kind], traces=traces)
            lc.neuron_spikes = neuron_spikes[ga.n_off[g]: ga.n_off[g + 1]]
            lc.neuron_active = neuron_active[ga.n_off[g]: ga.n_off[g + 1]]
            lc.input_spikes = input_spikes[in_base[g]: in_base[g + 1]]
            writes = chan_writes[ga.c_off[g]: ga.c_off[g + 1]]
            if node.kind == 0:  # dense: writes per postsynaptic neuron
                lc.neuron_weight_updates = writes
            elif node.kind == 1:  # conv: writes of each output channel's shared kernel
                lc.channel_weight_updates = writes
            counts.layers.append(lc)
        return LearnResult(counts, readout, chosen)

    def _layer_counts(self, name, n_in, n_out, counters, steps, has_bias, history=False, aux=False,
                      kind: str = "dense", traces: bool | None = None) -> LayerCounts:
        lc = LayerCounts(name, kind, n_in, n_out, steps)
        for c, counter in enumerate(COUNTER_NAMES):
            if counter in lc.events:
                lc.events[counter][:] = counters[c]
        add_inference_bytes(lc, self.precision, has_bias=has_bias)
        sizes = {"weights": FLOAT_BYTES, "traces": FLOAT_BYTES, "errors": FLOAT_BYTES, "grad_accum": FLOAT_BYTES}
        if self.precision == "fixed":
            sizes = {kind: -(-self.bits[kind] // 8) for kind in ("weights", "traces", "errors")}
            sizes["grad_accum"] = 2
        traces = self.rule.startswith("ottt") if traces is None else traces
        add_learning_bytes(lc, counters[COUNTER_NAMES.index("errors")], traces, sizes)
        if history:  # membrane and spike of every neuron and step kept for the backward pass, read back once
            lc.mem_write_bytes["history"] += lc.events["neuron_updates"] * 2 * FLOAT_BYTES
            lc.mem_read_bytes["history"] += lc.events["neuron_updates"] * 2 * FLOAT_BYTES
        if aux:  # a head's weights and accumulators are auxiliary state
            for table in (lc.mem_read_bytes, lc.mem_write_bytes):
                table["aux"] += table["weights"] + table["grad_accum"]
                table["weights"][:] = 0
                table["grad_accum"][:] = 0
        return lc

    def _counts(self, counters: np.ndarray, steps: int, batch: int) -> Counts:
        counts = Counts(timesteps=steps, batch=batch, mode="float", phase="learning")
        for ly, layer in enumerate(self.network.layers):
            counts.layers.append(self._layer_counts(layer.name, layer.n_in, layer.n_out, counters[ly], steps,
                                                    layer.bias is not None))
        return counts


@dataclass
class _Graph:
    """The layers the windowed kernel trains: the network's, then the heads of locally trained blocks."""

    names: list[str]
    n_in: np.ndarray
    n_out: np.ndarray
    src: np.ndarray
    lif: np.ndarray
    readout: np.ndarray
    pass_error: np.ndarray
    lams: np.ndarray
    v_th: np.ndarray
    has_bias: np.ndarray
    w_off: np.ndarray
    b_off: np.ndarray
    head_tensors: list[tuple[np.ndarray, np.ndarray | None]]

    @property
    def size(self) -> int:
        return len(self.names)

    @staticmethod
    def build(network: Network, rule: str, block: int, subnet: int, stdl_plan, heads, seed: int) -> _Graph:
        layers = network.layers
        count = len(layers)
        classes = layers[-1].n_out
        size = {"bptt": count, "ttl_bptt": block, "stdl": subnet}[rule]
        if size < 1 or (rule == "ttl_bptt" and count % size) or (rule == "stdl" and size >= count and count > 1):
            raise LearningError(f"{rule}: block/subnetwork size {size} does not fit the network's {count} layers")
        starts = list(range(0, count, size))
        if stdl_plan is not None:  # STDL: the budget's choice and the auxiliary layers' own initial weights
            from hwsim.learning.stdl_plan import init_weights

            starts = [lo for lo, _ in stdl_plan.subnets]
            initial = init_weights(network, stdl_plan, seed)
        rows = []  # (name, n_in, n_out, src, lif, readout, pass_error, lam, v_th, weight, bias)
        for g, layer in enumerate(layers):
            rows.append((layer.name, layer.n_in, layer.n_out, g - 1, 1, int(g == count - 1),
                         int(g == 0 or g not in starts), layer.neuron.lam, layer.neuron.v_th, None, None))
        rng = np.random.default_rng(seed)
        for index in range(len(starts) - 1):
            hi = starts[index + 1]
            given = heads[index] if heads is not None else None
            src = hi - 1
            if rule == "ttl_bptt":
                chain = [None]  # a linear classifier
            else:
                aux = stdl_plan.auxiliary[index]
                chain = list(aux.layers) + ([None] if aux.classifier else [])
                given = initial[index] if given is None else given
            for position, main in enumerate(chain):
                n_in = rows[src][2]
                if main is None:
                    bound = 1.0 / np.sqrt(n_in)
                    weight = rng.uniform(-bound, bound, (classes, n_in)).astype(np.float32)
                    bias = rng.uniform(-bound, bound, classes).astype(np.float32)
                    spec = (f"{layers[hi - 1].name}.head{position}", n_in, classes, src, 0, 1, 1, 1.0, 1.0)
                else:  # an auxiliary layer of STDL: the mirrored layer's architecture (weights from the plan)
                    weight, bias = None, None
                    last = main == count - 1
                    spec = (f"{layers[hi - 1].name}.head{position}", n_in, layers[main].n_out, src, 1, int(last),
                            1, layers[main].neuron.lam, layers[main].neuron.v_th)
                if given is not None:
                    weight, bias = given[position]
                rows.append((*spec, np.asarray(weight, np.float32), None if bias is None
                             else np.asarray(bias, np.float32)))
                src = len(rows) - 1
        n_in = np.array([r[1] for r in rows], np.int64)
        n_out = np.array([r[2] for r in rows], np.int64)
        return _Graph([r[0] for r in rows], n_in, n_out, np.array([r[3] for r in rows], np.int64),
                      np.array([r[4] for r in rows], np.uint8), np.array([r[5] for r in rows], np.uint8),
                      np.array([r[6] for r in rows], np.uint8), np.array([r[7] for r in rows], np.float32),
                      np.array([r[8] for r in rows], np.float32),
                      np.array([(layers[g].bias is not None) if g < count else (rows[g][10] is not None)
                                for g in range(len(rows))], np.uint8),
                      np.concatenate([[0], np.cumsum(n_in * n_out)]).astype(np.int64),
                      np.concatenate([[0], np.cumsum(n_out)]).astype(np.int64),
                      [(r[9], r[10]) for r in rows[count:]])


def _stdl_plan(network: Network, subnet: int, budget_bytes: int | None, batch_size: int):
    """STDL's subnetworks and auxiliary networks for the budget (:func:`hwsim.learning.stdl_plan.plan`, as the
    torch rule)."""
    from hwsim.learning.stdl_plan import DEFAULT_BUDGET_BYTES, STDLError, plan

    try:
        return plan(network, subnet, DEFAULT_BUDGET_BYTES if budget_bytes is None else budget_bytes, batch_size)
    except STDLError as err:
        raise LearningError(str(err)) from None


def add_learning_bytes(lc: LayerCounts, errors: np.ndarray, uses_traces: bool, size: dict[str, int]) -> None:
    """Learning bytes from the learning counters, ``size`` bytes per value of each kind (float: 4 B each;
    fixed: the bit widths rounded up to bytes, 2-byte accumulators):

    * an error MAC reads one weight (``weights``) and one error (``errors``); each error computed is written
      once (``errors``);
    * a gradient op reads and writes its accumulator (``grad_accum``) and, with traces, reads the trace;
    * a trace update reads and writes the trace (``traces``);
    * a weight update reads the accumulator and reads and writes the weight.
    """
    ev = lc.events
    lc.mem_read_bytes["weights"] += (ev["error_macs"] + ev["weight_updates"]) * size["weights"]
    lc.mem_write_bytes["weights"] += ev["weight_updates"] * size["weights"]
    lc.mem_read_bytes["errors"] += ev["error_macs"] * size["errors"]
    lc.mem_write_bytes["errors"] += errors * size["errors"]
    lc.mem_read_bytes["grad_accum"] += (ev["grad_ops"] + ev["weight_updates"]) * size["grad_accum"]
    lc.mem_write_bytes["grad_accum"] += ev["grad_ops"] * size["grad_accum"]
    lc.mem_read_bytes["traces"] += (ev["trace_updates"] + (ev["grad_ops"] if uses_traces else 0)) * size["traces"]
    lc.mem_write_bytes["traces"] += ev["trace_updates"] * size["traces"]




def fit(learner: OnChipLearner, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int = 32, seed: int = 0,
        progress: bool = False) -> Counts | None:
    """Train on samples ``x`` (N, T, *input_shape) 0/1 with labels ``y`` (N,) for ``epochs`` epochs of shuffled
    mini-batches; returns the counts of the last batch. Weights are synced into the network at the end."""
    from tqdm import tqdm

    x = np.asarray(x)
    y = np.asarray(y)
    if x.shape[0] != y.shape[0]:
        raise LearningError(f"x has {x.shape[0]} samples, y has {y.shape[0]} labels")
    last = None
    for epoch in tqdm(range(epochs), desc=f"on-chip {learner.rule}", disable=not progress, leave=False):
        order = np.random.default_rng(seed * 1000 + epoch).permutation(len(y))
        for start in range(0, len(y), batch_size):
            index = order[start: start + batch_size]
            last = learner.train_batch(np.moveaxis(x[index], 1, 0).astype(np.uint8), y[index], sync=False).counts
    learner.sync()
    return last


def accuracy(learner: OnChipLearner, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Fraction of samples whose read-out (summed over time) peaks at the label."""
    correct = 0
    for start in range(0, len(y), batch_size):
        batch = np.moveaxis(np.asarray(x[start: start + batch_size]), 1, 0).astype(np.uint8)
        correct += int((learner.evaluate(batch).argmax(1) == np.asarray(y[start: start + batch_size])).sum())
    return correct / max(len(y), 1)


__all__ = ["ON_CHIP_RULES", "OnChipLearner", "LearnResult", "LearningError", "NetworkError", "accuracy", "fit"]
