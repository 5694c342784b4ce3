"""The records the learning kernels take, and the names of their indices.

Numba compiles a ``NamedTuple`` of arrays and scalars into a plain struct, so a kernel takes five records instead
of dozens of positional arrays; the learner builds them (:mod:`hwsim.learning.learner`), the kernels read and
write them (:mod:`hwsim.learning.kernels.graph`). Sizes: ``G`` graph nodes, ``N`` neurons of all nodes, ``I``
inputs of all nodes (``sum n_in``), ``S`` bias / write-count slots of all nodes, ``W`` weights of all nodes,
``B`` samples, ``T`` steps.

Counters are ``(G, len(COUNTER_NAMES), T)`` int64, summed over the batch and indexed by the ``C_*`` constants
(the counting conventions: ``hwsim.sim.counts`` and ``docs/counting.md``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

COUNTER_NAMES = ("spikes_in", "spikes_out", "sop", "neuron_updates", "neuron_updates_active", "error_macs",
                 "grad_ops", "trace_updates", "weight_updates", "errors", "sop_recurrent")
(C_SPIKES_IN, C_SPIKES_OUT, C_SOP, C_NEURON_UPDATES, C_NEURON_UPDATES_ACTIVE, C_ERROR_MACS, C_GRAD_OPS,
 C_TRACE_UPDATES, C_WEIGHT_UPDATES, C_ERRORS, C_SOP_RECURRENT) = range(len(COUNTER_NAMES))
"""Counter indices: feed-forward events in, spikes out, synaptic operations (recurrent ones included), membrane
updates (all, and those with non-zero input), W^T delta products, gradient accumulations, trace updates, weights
written, error values computed, and the synaptic operations of recurrent synapses (a subset of ``sop``)."""

DENSE, CONV, POOL = 0, 1, 2
"""Node kinds: dense synapses, a shared conv kernel, a sum pool with one fixed tap. A recurrent layer is a dense
node with ``Graph.n_rec`` > 0: its inputs are the layer below's spikes of this step followed by its own spikes of
the step before (the one-step delay), and its weights the input rows followed by the recurrent rows."""
KIND_NAMES = {DENSE: "dense", CONV: "conv2d", POOL: "sumpool2d"}
RECURRENT_NAME = "recurrent"  # the counts' kind of a dense node with recurrent inputs

TRIANGLE, SIGMOID, RECTANGLE = 0, 1, 2
"""Surrogate derivative shapes (:func:`hwsim.learning.kernels.ops.surrogate`)."""

GEOM_FIELDS = ("C", "H", "W", "O", "H_out", "W_out", "kh", "kw", "stride", "padding")
"""Columns of ``Graph.geom``; a dense node is ``(n_in, 1, 1, n_out, 1, 1, 1, 1, 1, 0)``."""


class Graph(NamedTuple):
    """The learning graph: the network's neuron layers in order, then the heads of locally trained blocks, in
    topological order (a node reads the spikes of an earlier node or of the network input).

    Weights of node g are ``w[w_off[g]: w_off[g+1]]``: dense fan-out major ``(n_in, n_out)``; conv the kernel
    ``(O, C, kh, kw)`` shared by every output position; a pool has none (its tap is ``pool_w[g]``); a recurrent
    node ``(n_in + n_rec, n_out)``: the input rows, then the recurrent rows (row ``n_in + j`` holds the synapses
    from its own neuron j, ``recurrent[:, j]`` of the layer). Its biases
    and write counts are slots ``c_off[g]: c_off[g+1]`` (one per neuron for dense, per output channel for conv,
    none for a pool); its neurons ``n_off[g]: n_off[g+1]`` (conv channels first: ``o * H_out * W_out + oy *
    W_out + ox``); its inputs ``in_off[g]: in_off[g+1]`` (``n_in + n_rec`` of them). ``cl_from[k]`` -> ``cl_to[k]``:
    where conv weight ``(o, c, ky, kx)`` lies in the channels-last copy ``(kh, kw, C, O)`` at the same node
    offset."""

    kind: np.ndarray  # (G,) int64: DENSE, CONV or POOL
    geom: np.ndarray  # (G, 10) int64: GEOM_FIELDS
    n_in: np.ndarray  # (G,) int64: feed-forward inputs (C * H * W)
    n_rec: np.ndarray  # (G,) int64: recurrent inputs (the node's own neurons, one step delayed; 0: none)
    n_out: np.ndarray  # (G,) int64: neurons (O * H_out * W_out)
    src: np.ndarray  # (G,) int64: the node whose spikes it reads; -1: the network input
    lif: np.ndarray  # (G,) uint8: LIF neurons (0: a linear classifier head, a synaptic current only)
    readout: np.ndarray  # (G,) uint8: its synaptic current is a read-out with a cross-entropy loss
    pass_error: np.ndarray  # (G,) uint8: its error may flow into src (0 across a block boundary)
    has_bias: np.ndarray  # (G,) uint8: it has biases to learn
    lams: np.ndarray  # (G,) float32: membrane leak lambda = 1 - 1/tau
    v_th: np.ndarray  # (G,) float32: firing threshold, weight units (ALIF: the base threshold)
    adapt: np.ndarray  # (G,) uint8: adaptive-threshold (ALIF) neurons: a = rho a + s[t-1], A = v_th + beta a
    rho: np.ndarray  # (G,) float32: ALIF adaptation decay per step (0 for LIF)
    beta: np.ndarray  # (G,) float32: ALIF adaptation strength, weight units per unit of a (0 for LIF)
    pool_w: np.ndarray  # (G,) float32: a pool's fixed tap (0 for other kinds)
    w_off: np.ndarray  # (G + 1,) int64: weight offsets
    c_off: np.ndarray  # (G + 1,) int64: bias / write-count slot offsets
    n_off: np.ndarray  # (G + 1,) int64: neuron offsets
    in_off: np.ndarray  # (G + 1,) int64: input offsets
    cl_from: np.ndarray  # (K,) int64: flat index of every conv weight
    cl_to: np.ndarray  # (K,) int64: its index in the channels-last copy
    main_out: int  # the node whose synaptic current is the network's read-out


class RuleParams(NamedTuple):
    """How the kernel runs a rule, and the fixed-point format (``*_levels`` = 0: float32)."""

    window: int  # steps of history kept for the backward pass: T (BPTT), k (TTL-BPTT), 1 (the online rules)
    traces: bool  # the weight gradient uses presynaptic traces a = lam a + s (OTTT)
    update_every_step: bool  # weights written after every learning step (OTTT_O), else once per batch
    skip_silent: bool  # a node whose error vector is all zero sends nothing down (the windowed rules)
    surrogate: int  # TRIANGLE, SIGMOID or RECTANGLE
    alpha: np.float32  # surrogate width / steepness
    soft: bool  # soft reset (u -= V_th) or reset to zero
    lr: float  # SGD learning rate (W -= lr * grad)
    w_levels: int  # weights on a per-node grid w_step * q, |q| <= w_levels (stochastic rounding)
    trace_levels: int  # traces on a grid a_max / trace_levels
    error_levels: int  # error messages on a grid max|delta| / error_levels per vector
    seed: int  # seed of the stochastic-rounding draws of this batch


class State(NamedTuple):
    """What the learner keeps between batches (written in place by the kernels)."""

    w: np.ndarray  # (W,) float32 weights, layouts as Graph
    bias: np.ndarray  # (S,) float32 biases (0 where a node has none)
    grad_w: np.ndarray  # (W,) float32 gradient accumulators (zero between write-backs)
    grad_b: np.ndarray  # (S,) float32
    w_step: np.ndarray  # (G,) float32 weight grid step of each node (fixed point; 1 in float)
    w_cl: np.ndarray  # (W,) float32 conv kernels channels last (kh, kw, C, O), refreshed from w by the kernel
    grad_cl: np.ndarray  # (W,) float32 conv gradients channels last (zero between write-backs)
    touched: np.ndarray  # (I,) uint8 dense inputs whose gradient row holds terms (zero between write-backs)


class Tally(NamedTuple):
    """What one batch counted (zero on entry)."""

    counters: np.ndarray  # (G, len(COUNTER_NAMES), T) int64, indexed by the C_* constants
    readout: np.ndarray  # (B, classes) float32: the read-out current summed over the steps
    neuron_spikes: np.ndarray  # (N,) int64 spikes per neuron
    neuron_active: np.ndarray  # (N,) int64 updates with non-zero synaptic input per neuron
    input_spikes: np.ndarray  # (I,) int64 events per input
    writes: np.ndarray  # (S,) int64 weights written per output neuron (dense) or output channel (conv)


class Batch(NamedTuple):
    """One mini-batch of input events and labels."""

    in_off: np.ndarray  # (B * T + 1,) int64: events of sample b at step t are in_events[in_off[b*T+t]: ...+1]]
    in_events: np.ndarray  # (E,) int32: flat input indices (hwsim.sim.kernels.synapses.scan_events)
    labels: np.ndarray  # (B,) int64 classes
    learn_mask: np.ndarray  # (T,) uint8: 1 at the steps with a backward pass
    loss_w: np.ndarray  # (T,) float32: dCE/do scale of each step, 1 / (B T), or 1 / (B n_scored) on scored steps
    # and 0 elsewhere (a task's loss_steps); the read-out is summed over the steps with a non-zero weight


class Scratch(NamedTuple):
    """Working arrays of one kernel call (``H`` = the window; ``X`` = the largest conv output, ``P`` its largest
    output plane, ``K`` the most kernel taps of a node)."""

    u: np.ndarray  # (B, N) float32 membranes
    s: np.ndarray  # (B, N) float32 spikes
    a: np.ndarray  # (B, N) float32 ALIF adaptation a[t] (a recurrent LIF node's holds its last spikes, unused)
    s_enter: np.ndarray  # (B, N) float32 spikes entering the window (the recurrent input of its first step)
    u_hist: np.ndarray  # (H, B, N) float32 membranes before reset, this window
    s_hist: np.ndarray  # (H, B, N) float32 spikes, this window
    a_hist: np.ndarray  # (H, B, N) float32 adaptation, this window ((H, B, 0) without ALIF nodes)
    o_hist: np.ndarray  # (H, B, N) float32 synaptic currents (bias included), this window
    x_hist: np.ndarray  # (H, B, n_in[0]) float32 network input, this window
    traces: np.ndarray  # (B, I) float32 presynaptic traces (OTTT)
    events: np.ndarray  # (B, I) int32 address events into each node, this step (recurrent ones last)
    n_events: np.ndarray  # (B, G) int64 how many, per sample and node
    spike_buf: np.ndarray  # (N,) uint8
    bias_n: np.ndarray  # (N,) float32 bias of every neuron (conv: its channel's)
    racc: np.ndarray  # (N,) float32 a recurrent node's recurrent synaptic input, this step
    du: np.ndarray  # (N,) float32 dL/du at t + 1, carried back through the window
    ds: np.ndarray  # (N,) float32 dL/ds at t
    da: np.ndarray  # (N,) float32 dL/da at t + 1 (ALIF), carried back through the window
    ds_rec: np.ndarray  # (N,) float32 dL/ds at t - 1 through the recurrent synapses, sent at t
    margin: np.ndarray  # (N,) float32 u - A of an ALIF source, where a W^T pass gates on g'(u - A)
    d_i: np.ndarray  # (N,) float32 dL/dI at t (the error message of each neuron)
    gp: np.ndarray  # (N,) float32 g'(u - V_th) at t, where a W^T pass into the neuron found it
    acc_cl: np.ndarray  # (X,) float32 one conv node's forward sum, (H_out, W_out, O)
    d_cl: np.ndarray  # (X,) float32 one conv node's error, (H_out, W_out, O)
    nz_pos: np.ndarray  # (P,) int64 non-zero errors per output position of that node
    tap_k: np.ndarray  # (K,) int64 one input's taps: kernel index ky * kw + kx
    tap_p: np.ndarray  # (K,) int64 ... and output position oy * W_out + ox


def new_tally(graph: Graph, steps: int, batch: int, classes: int) -> Tally:
    """A zero :class:`Tally` for ``batch`` samples of ``steps`` steps and ``classes`` read-out values."""
    return Tally(np.zeros((len(graph.kind), len(COUNTER_NAMES), steps), np.int64),
                 np.zeros((batch, classes), np.float32), np.zeros(int(graph.n_off[-1]), np.int64),
                 np.zeros(int(graph.n_off[-1]), np.int64), np.zeros(int(graph.in_off[-1]), np.int64),
                 np.zeros(int(graph.c_off[-1]), np.int64))


def new_state(graph: Graph, w: np.ndarray, bias: np.ndarray) -> State:
    """A :class:`State` holding ``w`` and ``bias`` (float32, taken as they are), zero accumulators, unit steps."""
    return State(w, bias, np.zeros_like(w), np.zeros_like(bias), np.ones(len(graph.kind), np.float32),
                 np.zeros_like(w), np.zeros_like(w), np.zeros(int(graph.in_off[-1]), np.uint8))
