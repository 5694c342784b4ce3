"""On-chip learning: run a time-local rule the way a chip would and count every learning operation.

``OnChipLearner(network, rule).train_batch(spikes, labels)`` trains one mini-batch of a float network
in place and returns the learning-phase :class:`~hwsim.sim.counts.Counts`: the forward events of the
inference engine plus ``error_macs`` (W^T delta products, only at neurons with g' != 0), ``grad_ops``
(per-synapse gradient accumulations, gated by presynaptic spikes or traces), ``trace_updates``,
``weight_updates`` (weights written back) and bytes by memory kind.

Every rule with an on-chip kernel in the rule registry (:mod:`hwsim.learning.registry`: ``bptt``, ``sltt``,
``sltt_k``, ``ottt_a``, ``ottt_o``, ``ttl_bptt``, ``stdl``) runs in one kernel family,
:func:`hwsim.learning.kernels.graph.train`, on a graph (:mod:`hwsim.learning.conv_graph`) of the network's dense,
conv and sum-pool layers plus the heads of locally trained blocks, with state history inside a window (T for
BPTT, k for TTL-BPTT, one step for the online rules and STDL). The read-out, loss and update are those of
``methods/``: the last layer's synaptic current, cross-entropy per step / T, plain SGD -- so the weight change
equals the torch reference's ``-lr * grad``. TTL-BPTT's local classifiers and STDL's auxiliary networks (the
heads) live in the learner; pass ``heads`` to start them from given weights (per block, a list of ``(weight,
bias)``; a pool copy of a conv network takes ``(None, None)``). STDL's auxiliary networks are those
:func:`hwsim.learning.stdl_plan.plan` chooses for ``budget_bytes`` at ``batch_size`` (the same choice and the
same initial weights as the torch rule built with the same budget, batch size and seed).

Recurrent layers (:class:`hwsim.sim.network.Recurrent`) and ALIF neurons (:class:`hwsim.sim.network.FloatALIF`)
learn with every rule, with each rule's temporal treatment of the recurrent path (docs/rules.md): BPTT and TTL-BPTT
back-propagate through the recurrent synapses, the membrane and the adaptation inside their window; the online
rules cut them (the layer's own spikes of the step before are one more presynaptic input, ``dW_rec += delta[t]
s[t-1]^T``; OTTT takes their trace ``r_hat[t] = lam r_hat[t-1] + s[t-1]``). The recurrent weights are written back
into ``layer.recurrent``. Fixed point takes recurrent LIF layers (input and recurrent weights on one grid per
layer, as the quantiser gives them one exponent); ALIF is float only, as in the network description.

A task may score only some steps (``loss_steps``, bool (T,): cue accumulation scores its decision steps): the
per-step loss is then ``CE(o[t], y) / n_scored`` on the scored steps and 0 elsewhere, the online rules have no
backward pass at the other steps (SLTT-K draws its K steps among the scored ones), and the read-out is summed over
the scored steps (None: every step, ``/ T``).

A conv kernel is shared by all output positions, so its gradient accumulates into the one shared weight and a
written kernel weight counts once; ``channel_weight_updates`` holds those writes per output channel, and the
mapper turns them into writes per core with the chip's weight sharing. Pools have fixed taps: they pass errors,
learn nothing.

Options come as two records: the rule's (:class:`hwsim.learning.registry.RuleOptions`: k, window, block, subnet,
budget_bytes, surrogate, alpha -- None: the shape's own, triangle 1, sigmoid 4) and the number format
(:class:`NumberFormat`: precision, weight_bits, trace_bits, error_bits); the same names as keywords still work
(``OnChipLearner(net, rule, k=3, precision="fixed")``). Options the registry marks as torch-only (the MSE
loss term, TTL-BPTT's update cadence) do not apply on chip: the kernels compute the cross-entropy read-out and
write weights once per batch (every step for OTTT_O). The neuron options (tau, V_th) are the network's: set them
on it first (:func:`hwsim.learning.assess.apply_neuron_options`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import typeof

from hwsim.errors import LearningError
from hwsim.learning import registry
from hwsim.learning.conv_graph import GraphError, Node, build_graph, graph_record, pack, unpack, unpack_recurrent
from hwsim.learning.kernels.graph import train
from hwsim.learning.kernels.records import (
    C_ERRORS,
    CONV,
    COUNTER_NAMES,
    DENSE,
    KIND_NAMES,
    RECTANGLE,
    RECURRENT_NAME,
    SIGMOID,
    TRIANGLE,
    Batch,
    RuleParams,
    Tally,
    new_state,
    new_tally,
)
from hwsim.learning.registry import RegistryError, RuleOptions
from hwsim.sim.counts import Counts, LayerCounts, add_inference_bytes
from hwsim.sim.engine import check_input
from hwsim.sim.kernels.synapses import scan_learning_input
from hwsim.sim.network import FloatALIF, Network, NetworkError, Recurrent

GRAPH_KERNELS = ("online", "windowed")  # the registry kernels this learner runs (e-prop: hwsim.learning.eprop)
ON_CHIP_RULES = tuple(r for r in registry.names(on_chip=True) if registry.get(r).kernel in GRAPH_KERNELS)
SURROGATES = {"triangle": TRIANGLE, "sigmoid": SIGMOID, "rectangle": RECTANGLE}
FLOAT_BYTES = 4
RULE_KEYWORDS = ("k", "window", "block", "subnet", "budget_bytes", "surrogate", "alpha")
FORMAT_KEYWORDS = ("precision", "weight_bits", "trace_bits", "error_bits")
KEYWORD_DEFAULTS = {"window": 1}  # the learner's own default for a TTL-BPTT window given as a keyword


@dataclass(frozen=True)
class NumberFormat:
    """How the learner holds its numbers: ``precision="float"`` (float32 everywhere) or ``"fixed"`` (the chip's
    fixed point: weights on a per-layer grid of ``2^(weight_bits-1) - 1`` levels each side, written back by
    stochastic rounding; presynaptic traces on ``2^trace_bits - 1`` levels; error messages on
    ``2^(error_bits-1) - 1`` levels of one shared scale per vector). Bit widths in 2..24."""

    precision: str = "float"
    weight_bits: int = 8
    trace_bits: int = 7
    error_bits: int = 8

    def __post_init__(self) -> None:
        if self.precision not in ("float", "fixed"):
            raise LearningError(f"precision must be 'float' or 'fixed', got {self.precision!r}")
        for name in ("weight_bits", "trace_bits", "error_bits"):
            bits = getattr(self, name)
            try:
                valid = 2 <= int(bits) <= 24
            except (TypeError, ValueError):
                valid = False
            if not valid:
                raise LearningError(f"{name} must be in 2..24, got {bits!r}")

    @property
    def fixed(self) -> bool:
        return self.precision == "fixed"

    @property
    def w_levels(self) -> int:
        """Weight levels each side of zero (0: float)."""
        return 2 ** (int(self.weight_bits) - 1) - 1 if self.fixed else 0

    @property
    def trace_levels(self) -> int:
        """Trace levels (0: float)."""
        return 2 ** int(self.trace_bits) - 1 if self.fixed else 0

    @property
    def error_levels(self) -> int:
        """Error-message levels each side of zero (0: float)."""
        return 2 ** (int(self.error_bits) - 1) - 1 if self.fixed else 0

    def value_bytes(self) -> dict[str, int]:
        """Bytes per stored value by memory kind: float32 4 B each; fixed point the bit widths rounded up to whole
        bytes, 2-byte gradient accumulators."""
        if not self.fixed:
            return {"weights": FLOAT_BYTES, "traces": FLOAT_BYTES, "errors": FLOAT_BYTES, "grad_accum": FLOAT_BYTES}
        return {"weights": -(-int(self.weight_bits) // 8), "traces": -(-int(self.trace_bits) // 8),
                "errors": -(-int(self.error_bits) // 8), "grad_accum": 2}


@dataclass
class LearnResult:
    """One trained batch: its learning-phase counts, the read-out summed over the steps ``(B, classes)`` and
    the steps that had a backward pass."""

    counts: Counts
    readout: np.ndarray  # (B, classes): read-out summed over the steps
    learn_steps: list[int]


class OnChipLearner:
    """Trains a float :class:`Network` (dense, recurrent and ALIF, or conv + pool + dense) in place with an on-chip
    rule (see module docstring). ``options``: the rule's options (defaults where None; the keywords ``k``, ``window``,
    ``block``, ``subnet``, ``budget_bytes``, ``surrogate``, ``alpha`` instead, with a TTL-BPTT window of 1 step
    unless given); ``number_format``: float or fixed point (or the keywords ``precision``, ``weight_bits``,
    ``trace_bits``, ``error_bits``); ``seed``: SLTT-K's step draws, the heads' initial weights and the
    stochastic rounding; ``batch_size``: the batch STDL's memory budget is planned for."""

    def __init__(self, network: Network, rule: str, lr: float = 0.1, options: RuleOptions | None = None,
                 number_format: NumberFormat | None = None, seed: int = 0, batch_size: int = 32,
                 heads: list[list[tuple]] | None = None, **keywords: Any):
        known = tuple(r for r in registry.names(on_chip=True) if registry.get(r).kernel in GRAPH_KERNELS)
        if rule in registry.RULES and registry.get(rule).kernel not in (None, *GRAPH_KERNELS):
            raise LearningError(f"{rule} runs in its own learner (kernel {registry.get(rule).kernel}: "
                                f"hwsim.learning.{registry.get(rule).kernel}); OnChipLearner runs " + ", ".join(known))
        if rule not in known:
            raise LearningError(f"unknown on-chip rule {rule!r}; known rules: {', '.join(known)}")
        if network.mode != "float":
            raise LearningError("on-chip learning takes the float network; pass precision='fixed' to learn in the "
                                "chip's fixed point (8-bit weights, 7-bit traces, 8-bit errors)")
        self.options, self.number_format = _records(options, number_format, keywords)
        if self.number_format.fixed and any(isinstance(layer.neuron, FloatALIF) for layer in network.layers):
            raise LearningError("on-chip learning in fixed point takes LIF neurons; adaptive (ALIF) neurons are float "
                                "only: use precision='float'")
        self.network, self.rule, self.lr, self.seed = network, rule, float(lr), int(seed)
        self.spec = registry.get(rule)
        self.rng = np.random.default_rng(seed)
        resets = {layer.neuron.reset for layer in network.layers if layer.neuron is not None}
        if len(resets) != 1:
            raise LearningError("on-chip learning needs one reset mode for all layers")
        self.soft = resets.pop() == "soft"
        self.batches = 0
        self._entry = None  # the compiled kernel for this learner's record types (see _run)
        self._value_bytes = self.number_format.value_bytes()
        spec, fmt = self.spec, self.number_format  # the kernel's settings but the window, the rate and the seed
        self._settings = (bool(spec.traces), bool(spec.update_every_step), spec.kernel == "windowed",
                          SURROGATES[self.options.surrogate], np.float32(self.alpha), self.soft)
        self._levels = (fmt.w_levels, fmt.trace_levels, fmt.error_levels)
        opts = self.options
        aux = self.spec.needs.aux  # heads of locally trained blocks: TTL-BPTT's classifiers, STDL's copies
        size = opts.block if "block" in self.spec.options else opts.subnet if "subnet" in self.spec.options else None
        self.stdl_plan = _stdl_plan(network, opts.subnet, opts.budget_bytes, batch_size) if aux == "copy" else None
        try:
            self.nodes: list[Node] = build_graph(network, rule, aux, size, self.stdl_plan, heads, self.seed)
        except GraphError as err:
            raise LearningError(str(err)) from None
        self.graph = graph_record(self.nodes)
        self.state = new_state(self.graph, *pack(self.nodes))
        if self.number_format.fixed:  # weights on a per-layer grid: max |W| / levels, rounded there once
            levels = self.number_format.w_levels
            for g in range(len(self.nodes)):
                part = self.state.w[self.graph.w_off[g]: self.graph.w_off[g + 1]]
                if part.size:
                    step = max(float(np.abs(part).max()), 1e-12) / levels
                    self.state.w_step[g] = step
                    part[:] = np.clip(np.rint(part / self.state.w_step[g]), -levels, levels) * self.state.w_step[g]
            self.sync()

    # ---- the rule's settings -------------------------------------------------------------------------------------
    @property
    def k(self) -> int:
        return int(self.options.k)

    @property
    def window(self) -> int:
        return int(self.options.window)

    @property
    def alpha(self) -> float:
        """The surrogate's width/steepness: the option, or the shape's own paper default when it is None."""
        return registry.surrogate_alpha(self.options.surrogate, self.options.alpha)

    @property
    def precision(self) -> str:
        return self.number_format.precision

    @property
    def w(self) -> np.ndarray:
        """All weights, flat (W,) float32 (layouts: :class:`~hwsim.learning.kernels.records.Graph`)."""
        return self.state.w

    @property
    def b(self) -> np.ndarray:
        """All biases, flat (S,) float32."""
        return self.state.bias

    @property
    def w_step(self) -> np.ndarray:
        """Weight grid step per graph node (G,) float32 (1 in float)."""
        return self.state.w_step

    def window_steps(self, steps: int) -> int:
        """Steps of history the rule keeps for its backward pass: T (BPTT), k (TTL-BPTT), 1 (the others)."""
        return {"T": steps, "option": self.window}.get(self.spec.window, 1)

    def params(self, steps: int) -> RuleParams:
        """The kernel's :class:`~hwsim.learning.kernels.records.RuleParams` for a batch of ``steps`` steps."""
        return RuleParams(self.window_steps(steps), *self._settings, float(self.lr), *self._levels,
                          self.seed + self.batches)

    def learn_steps(self, steps: int, scored: np.ndarray | None = None) -> list[int]:
        """The steps with a learning (backward) pass: all, or K drawn without replacement (SLTT-K). With a task's
        scored steps ``scored`` (bool (T,)), a rule without history (window of one step) learns at the scored
        steps only (SLTT-K draws among them); BPTT and TTL-BPTT still walk back through every step."""
        if self.spec.window == "option" and self.window > steps:
            raise LearningError(f"{self.spec.title} window k={self.window} is longer than T={steps}")
        online = self.window_steps(steps) == 1
        candidates = list(range(steps)) if scored is None or not online else np.flatnonzero(scored).tolist()
        if not self.spec.sampled_steps:
            return candidates
        if self.k > len(candidates):
            what = f"the number of time steps T={steps}" if len(candidates) == steps else \
                f"the task's {len(candidates)} scored steps (loss_steps)"
            raise LearningError(f"{self.spec.title}: K={self.k} is larger than {what}")
        if len(candidates) == steps:
            return sorted(self.rng.permutation(steps)[: self.k].tolist())
        return sorted(candidates[i] for i in self.rng.permutation(len(candidates))[: self.k].tolist())

    # ---- weights in and out --------------------------------------------------------------------------------------
    def heads(self) -> list[tuple[str, np.ndarray | None, np.ndarray | None]]:
        """The learned heads (TTL-BPTT classifiers, STDL auxiliary layers): (name, weight, bias); a pool
        copy in a conv network's auxiliary chain has (name, None, None), a head without biases bias None."""
        tensors = unpack(self.nodes, self.graph, self.state.w, self.state.bias)
        return [(node.name, *tensors[g]) for g, node in enumerate(self.nodes) if node.layer_index < 0]

    def head_recurrent(self) -> list[np.ndarray | None]:
        """The recurrent weights ``(n, n)`` of each head in :meth:`heads`' order (an STDL auxiliary layer that
        mirrors a recurrent layer); None for a head without recurrent synapses."""
        recurrent = unpack_recurrent(self.nodes, self.graph, self.state.w)
        return [recurrent[g] for g, node in enumerate(self.nodes) if node.layer_index < 0]

    def sync(self) -> Network:
        """Write the learner's weights into the network (fan-in major, as hwsim stores them)."""
        recurrent = unpack_recurrent(self.nodes, self.graph, self.state.w)
        for node, (weight, bias), w_rec in zip(self.nodes, unpack(self.nodes, self.graph, self.state.w,
                                                                  self.state.bias), recurrent):
            if node.layer_index >= 0 and weight is not None:
                layer = self.network.layers[node.layer_index]
                layer.weight = weight
                if layer.bias is not None:
                    layer.bias = bias
                if isinstance(layer, Recurrent):
                    layer.recurrent = w_rec
        return self.network

    # ---- training ------------------------------------------------------------------------------------------------
    def evaluate(self, spikes: np.ndarray, loss_steps: np.ndarray | None = None) -> np.ndarray:
        """Forward only (no learning): the read-out summed over the steps (the scored ones with ``loss_steps``),
        ``(B, classes)``."""
        lr, self.lr = self.lr, 0.0
        try:
            return self.train_batch(spikes, np.zeros(np.asarray(spikes).shape[1], np.int64), learn_steps=[],
                                    sync=False, loss_steps=loss_steps).readout
        finally:
            self.lr = lr

    def train_batch(self, spikes: np.ndarray, labels: np.ndarray, learn_steps: list[int] | None = None,
                    sync: bool = True, loss_steps: np.ndarray | None = None) -> LearnResult:
        """One mini-batch: ``spikes`` (T, B, *input_shape) 0/1, ``labels`` (B,) ints; ``loss_steps`` (bool (T,) or
        None): the task's scored steps (module docstring). The learner keeps the weights in its own flat arrays;
        ``sync`` writes them back into the network after the batch (call :meth:`sync` yourself after a loop of
        ``sync=False`` batches)."""
        s_in = check_input(self.network, spikes)
        steps, batch = s_in.shape[:2]
        labels = np.array(labels, np.int64)  # a fresh, writable, contiguous copy (the kernel's argument type)
        classes = int(np.prod(self.network.output_shape))
        if labels.shape != (batch,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= classes:
            raise LearningError(f"labels must be {batch} integers in 0..{classes - 1}, got shape {labels.shape}")
        scored = scored_steps(loss_steps, steps)
        chosen = self.learn_steps(steps, scored) if learn_steps is None else sorted(learn_steps)
        mask = np.zeros(steps, np.uint8)
        mask[chosen] = 1
        in_off, in_events = scan_learning_input(s_in)
        tally = new_tally(self.graph, steps, batch, classes)
        records = (self.graph, self.params(steps), self.state, tally,
                   Batch(in_off, in_events, labels, mask, loss_weights(scored, steps, batch)))
        self._run(records)
        self.batches += 1
        if sync:
            self.sync()
        return LearnResult(self._counts(tally, steps, batch), tally.readout, chosen)

    def _run(self, records: tuple) -> None:
        """The kernel on ``(graph, params, state, tally, batch)``. The first call dispatches (compiling or loading
        the kernel for these record types); later calls go straight to the compiled entry for them: numba's
        dispatch types every array of five records on each call (about 13 us, a tenth of a small dense batch),
        and the learner makes every record with the same types each batch."""
        if self._entry is None:
            train(*records)
            self._entry = train.get_overload(tuple(typeof(record) for record in records))
        else:
            self._entry(*records)

    # ---- counts --------------------------------------------------------------------------------------------------
    def _counts(self, tally: Tally, steps: int, batch: int) -> Counts:
        """The batch's :class:`Counts`: one layer per graph node, with the learning bytes and per-neuron totals."""
        gr = self.graph
        counts = Counts(timesteps=steps, batch=batch, mode="float", phase="learning")
        history = self.window_steps(steps) > 1
        for g, node in enumerate(self.nodes):
            lc = self._layer_counts(node, tally.counters[g], steps, history=history and node.lif)
            lc.neuron_spikes = tally.neuron_spikes[gr.n_off[g]: gr.n_off[g + 1]]
            lc.neuron_active = tally.neuron_active[gr.n_off[g]: gr.n_off[g + 1]]
            lc.input_spikes = tally.input_spikes[gr.in_off[g]: gr.in_off[g] + node.n_in]  # feed-forward inputs
            writes = tally.writes[gr.c_off[g]: gr.c_off[g + 1]]
            if node.kind == DENSE:  # writes per postsynaptic neuron
                lc.neuron_weight_updates = writes
            elif node.kind == CONV:  # writes of each output channel's shared kernel
                lc.channel_weight_updates = writes
            counts.layers.append(lc)
        return counts

    def _layer_counts(self, node: Node, counters: np.ndarray, steps: int, history: bool) -> LayerCounts:
        """Node counters ``(len(COUNTER_NAMES), T)`` as a :class:`LayerCounts` with bytes by memory kind (a recurrent
        node's kind is ``recurrent``; ALIF neurons keep their adaptation in their state and their history)."""
        lc = LayerCounts(node.name, RECURRENT_NAME if node.n_rec else KIND_NAMES[node.kind], node.n_in, node.n_out,
                         steps)
        for c, counter in enumerate(COUNTER_NAMES):
            if counter in lc.events:
                lc.events[counter][:] = counters[c]
        if node.adapt:
            add_inference_bytes(lc, self.precision, has_bias=node.bias is not None, adaptive=True)
        else:
            add_inference_bytes(lc, self.precision, has_bias=node.bias is not None)
        add_learning_bytes(lc, counters[C_ERRORS], bool(self.spec.traces), self._value_bytes)
        if history:  # membrane and spike (and adaptation) of every neuron and step kept for the backward pass,
            kept = (3 if node.adapt else 2) * FLOAT_BYTES  # read back once
            lc.mem_write_bytes["history"] += lc.events["neuron_updates"] * kept
            lc.mem_read_bytes["history"] += lc.events["neuron_updates"] * kept
        if node.layer_index < 0:  # a head's weights and accumulators are auxiliary state
            for table in (lc.mem_read_bytes, lc.mem_write_bytes):
                table["aux"] += table["weights"] + table["grad_accum"]
                table["weights"][:] = 0
                table["grad_accum"][:] = 0
        return lc


def _records(options: RuleOptions | None, number_format: NumberFormat | None,
             keywords: dict[str, Any]) -> tuple[RuleOptions, NumberFormat]:
    """The two option records, from the records given or from the keywords (not both for one record)."""
    unknown = [name for name in keywords if name not in RULE_KEYWORDS + FORMAT_KEYWORDS]
    if unknown:
        raise LearningError(f"unknown learner option {unknown[0]!r}; rule options: {', '.join(RULE_KEYWORDS)}; "
                            f"number format: {', '.join(FORMAT_KEYWORDS)}")
    rule_given = {k: v for k, v in keywords.items() if k in RULE_KEYWORDS and v is not None}
    format_given = {k: v for k, v in keywords.items() if k in FORMAT_KEYWORDS}
    if options is not None and rule_given:
        raise LearningError(f"give rule options as options=RuleOptions(...) or as keywords, not both "
                            f"({', '.join(rule_given)})")
    if number_format is not None and format_given:
        raise LearningError(f"give the number format as number_format=NumberFormat(...) or as keywords, not both "
                            f"({', '.join(format_given)})")
    if options is None:
        try:
            options = RuleOptions({**KEYWORD_DEFAULTS, **rule_given})
        except RegistryError as err:
            raise LearningError(str(err)) from None
    return options, number_format if number_format is not None else NumberFormat(**format_given)


def _stdl_plan(network: Network, subnet: int, budget_bytes: int | None, batch_size: int):
    """STDL's subnetworks and auxiliary networks for the budget (:func:`hwsim.learning.stdl_plan.plan`, as the
    torch rule)."""
    from hwsim.learning.stdl_plan import DEFAULT_BUDGET_BYTES, STDLError, plan

    try:
        return plan(network, subnet, DEFAULT_BUDGET_BYTES if budget_bytes is None else budget_bytes, batch_size)
    except STDLError as err:
        raise LearningError(str(err)) from None


def scored_steps(loss_steps: np.ndarray | None, steps: int) -> np.ndarray | None:
    """A task's ``loss_steps`` checked against ``steps``: a bool (T,) array, or None (every step scored). A mask
    of another length, of non-boolean values or scoring no step is one :class:`LearningError` line."""
    if loss_steps is None:
        return None
    mask = np.asarray(loss_steps)
    if mask.ndim != 1 or mask.shape[0] != steps:
        raise LearningError(f"loss_steps must be a bool mask of the T={steps} steps, got shape {mask.shape}")
    if mask.dtype != np.bool_ and not (np.issubdtype(mask.dtype, np.integer) and np.isin(mask, (0, 1)).all()):
        raise LearningError(f"loss_steps must be a bool mask of the T={steps} steps, got dtype {mask.dtype}")
    mask = mask.astype(bool)
    if not mask.any():
        raise LearningError("loss_steps scores no step: at least one step must carry the loss")
    return mask


def loss_weights(scored: np.ndarray | None, steps: int, batch: int) -> np.ndarray:
    """The kernel's per-step dCE/do scale (T,) float32: ``1 / (B T)`` on every step, or ``1 / (B n_scored)`` on the
    scored steps and 0 elsewhere."""
    if scored is None:
        return np.full(steps, np.float32(1.0 / max(batch * steps, 1)), np.float32)
    return np.where(scored, np.float32(1.0 / max(batch * int(scored.sum()), 1)), np.float32(0.0)).astype(np.float32)


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
        progress: bool = False, loss_steps: np.ndarray | None = None) -> Counts | None:
    """Train on samples ``x`` (N, T, *input_shape) 0/1 with labels ``y`` (N,) for ``epochs`` epochs of shuffled
    mini-batches (the task's scored steps ``loss_steps``, bool (T,), or None: every step); returns the counts of
    the last batch. Weights are synced into the network at the end."""
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
            last = learner.train_batch(np.moveaxis(x[index], 1, 0).astype(np.uint8), y[index], sync=False,
                                       loss_steps=loss_steps).counts
    learner.sync()
    return last


def accuracy(learner: OnChipLearner, x: np.ndarray, y: np.ndarray, batch_size: int = 256,
             loss_steps: np.ndarray | None = None) -> float:
    """Fraction of samples whose read-out (summed over time, or over the scored steps ``loss_steps``) peaks at
    the label."""
    correct = 0
    for start in range(0, len(y), batch_size):
        batch = np.moveaxis(np.asarray(x[start: start + batch_size]), 1, 0).astype(np.uint8)
        readout = learner.evaluate(batch, loss_steps=loss_steps)
        correct += int((readout.argmax(1) == np.asarray(y[start: start + batch_size])).sum())
    return correct / max(len(y), 1)


__all__ = ["ON_CHIP_RULES", "LearnResult", "LearningError", "NetworkError", "NumberFormat", "OnChipLearner",
           "accuracy", "add_learning_bytes", "fit"]
