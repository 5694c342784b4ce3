"""e-prop on chip: one recurrent LIF or ALIF layer and its read-out learning online, every learning operation counted.

e-prop (Bellec et al., "A solution to the learning dilemma for recurrent networks of spiking neurons", Nat. Commun.
11:3625, 2020) factorises the gradient of a recurrent layer into an eligibility trace per synapse, computed forward
in time from what the synapse sees, and a learning signal per neuron, computed at the read-out and broadcast back:

    dE/dW_ji ~= sum_t L_j[t] ebar_ji[t],     L_j[t] = sum_k B_jk dl[t]/dy_k[t]

(equations as implemented in docs/eprop.md and :mod:`hwsim.methods.eprop`, the torch reference this learner equals
to 1e-5). ``EpropLearner(network).train_batch(spikes, labels)`` trains a float network ``input-(r|a)N-out`` -- a
:class:`~hwsim.sim.network.Recurrent` layer (FloatLIF or FloatALIF neurons, soft reset) and a dense read-out -- in
place, the way a chip with e-prop's learning engine would (ReckOn, Frenkel & Indiveri, ISSCC 2022): the forward pass
event by event, traces updated every step, the learning signal broadcast at every scored step, weights written once
per batch (``eligibility="per_synapse"``, the paper) or at every scored step (``"per_neuron"``, ReckOn's variant). It
returns the learning-phase :class:`~hwsim.sim.counts.Counts` of the batch (counting conventions:
:mod:`hwsim.learning.kernels.eprop`). The public interface is :class:`~hwsim.learning.learner.OnChipLearner`'s:
``train_batch``, ``evaluate``, ``sync`` (write the weights back into the network), :func:`fit` and :func:`accuracy`.

Fixed point (``precision="fixed"``, ReckOn's per-neuron variant only): weights on a per-matrix grid of
``2^(weight_bits-1) - 1`` levels each side spanning twice the largest initial weight (:data:`HEADROOM`; ReckOn
scales its 8-bit weights by a shift chosen per task), written back by stochastic rounding (ReckOn: stochastic updates),
the per-neuron presynaptic traces unsigned on grids of ``2^bits - 1`` levels of their largest value with the rule
options ``trace_bits_in``, ``trace_bits_rec``, ``trace_bits_out`` (ReckOn: 12, 12 and 10 bits), each rounded after its
update. The per-synapse form keeps float state per synapse and is refused in fixed point (one line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from hwsim.errors import LearningError
from hwsim.learning import registry
from hwsim.learning.kernels.eprop import (
    EC_BROADCASTS,
    EC_ELIGIBILITY,
    EC_ERRORS,
    EC_NAMES,
    EpropParams,
    EpropState,
    new_eprop_tally,
    train_eprop,
)
from hwsim.learning.kernels.records import RECTANGLE, SIGMOID, TRIANGLE
from hwsim.learning.registry import RegistryError, RuleOptions
from hwsim.sim.counts import Counts, LayerCounts, add_inference_bytes
from hwsim.sim.engine import check_input
from hwsim.sim.kernels.synapses import scan_learning_input
from hwsim.sim.network import Dense, Flatten, FloatALIF, FloatLIF, Network, Recurrent

SURROGATES = {"triangle": TRIANGLE, "sigmoid": SIGMOID, "rectangle": RECTANGLE}
FLOAT_BYTES = 4
HEADROOM = 2.0  # fixed point: a weight grid spans twice the largest initial weight (one bit left to learn into)


class EpropLayout(NamedTuple):
    """Where e-prop's two layers sit in a network and what their neurons are."""

    rec: int  # index of the Recurrent layer
    out: int  # index of the dense read-out
    n_in: int  # inputs of the recurrent layer
    n_hidden: int  # recurrent neurons N
    n_out: int  # read-out classes K
    alif: bool  # FloatALIF neurons (adaptive threshold)


def eprop_layout(network: Network, what: str = "e-prop") -> EpropLayout:
    """The recurrent layer and the read-out of a float network ``input-(r|a)N-out`` (an optional Flatten first);
    one :class:`LearningError` line otherwise (other shapes, a fixed-point network, the zero reset)."""
    layers = [layer for layer in network.layers if not isinstance(layer, Flatten)]
    flat_ok = all(isinstance(layer, Flatten) for layer in network.layers[: len(network.layers) - 2])
    if len(layers) != 2 or not isinstance(layers[0], Recurrent) or not isinstance(layers[1], Dense) or not flat_ok:
        kinds = "-".join(layer.kind for layer in network.layers)
        raise LearningError(f"{what} trains networks input-rN-out or input-aN-out (one recurrent LIF or ALIF layer "
                            f"and a dense read-out), got {kinds}")
    rec, out = network.layers.index(layers[0]), network.layers.index(layers[1])
    if network.mode != "float" or not isinstance(layers[0].neuron, (FloatLIF, FloatALIF)):
        raise LearningError(f"{what} trains the float network (FloatLIF or FloatALIF neurons)")
    if not isinstance(layers[1].neuron, FloatLIF):
        raise LearningError(f"{what}: the read-out's own neurons must be LIF (its current is what learns), got "
                            f"{type(layers[1].neuron).__name__}")
    if layers[0].neuron.reset != "soft":
        raise LearningError(f"{what}: the recurrent layer resets to zero; e-prop's eligibility traces are defined for "
                            f"the soft reset (Bellec et al. 2020: u -= v_th)")
    return EpropLayout(rec, out, layers[0].n_in, layers[0].n_out, layers[1].n_out,
                       isinstance(layers[0].neuron, FloatALIF))


def learning_state(layout: EpropLayout, eligibility: str = "per_synapse", kappa: float = 0.0,
                   has_bias: bool = False) -> dict[str, int]:
    """Values e-prop keeps per sample to learn (besides the weights and the inference state ``u``, ``s``, ``a``),
    by kind, for a network of ``layout`` -- none of them grows with T:

    * ``traces``: the presynaptic traces eps (``n_in + N``, +1 with a bias) and, with kappa > 0, the output traces
      sbar (``N``);
    * ``eligibility``: per synapse only -- ALIF's eps_a and, with kappa > 0, the filtered ebar, ``P x N`` each
      (``P = n_in + N`` (+1)); 0 per neuron, where psi x eps is formed on the fly;
    * ``grad_accum``: per synapse, one accumulator per weight (``P x N + N x K`` (+K)), written once per batch; 0 per
      neuron (ReckOn writes the weights at every scored step);
    * ``learning_signal``: the K read-out errors and the N learning signals of a step."""
    slots = layout.n_in + layout.n_hidden + int(has_bias)
    per_synapse = eligibility == "per_synapse"
    return {"traces": slots + (layout.n_hidden if kappa != 0.0 else 0),
            "eligibility": slots * layout.n_hidden * (int(layout.alif) + int(kappa != 0.0)) if per_synapse else 0,
            "grad_accum": (slots * layout.n_hidden + (layout.n_hidden + int(has_bias)) * layout.n_out)
            if per_synapse else 0,
            "learning_signal": layout.n_out + layout.n_hidden}


def random_feedback(n_hidden: int, n_out: int, seed: int = 0) -> np.ndarray:
    """Random e-prop's fixed feedback matrix B, float32 ``(n_hidden, n_out)``, N(0, 1/n_hidden) (as the e-prop code
    draws it: ``randn(n_rec, n_out) / sqrt(n_rec)``), from ``numpy.random.default_rng(seed)`` -- the torch rule and
    the on-chip learner draw the same matrix for the same seed."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_hidden, n_out)) / np.sqrt(n_hidden)).astype(np.float32)


def loss_weights(steps: int, loss_steps: np.ndarray | None) -> np.ndarray:
    """Per-step loss weights ``(T,)`` float32: ``1/T`` at every step (``loss_steps`` None), else ``1/n_scored`` on
    the scored steps and 0 elsewhere (the task's ``loss_steps`` bool mask of length T)."""
    if loss_steps is None:
        return np.full(steps, 1.0 / steps, np.float32)
    mask = np.asarray(loss_steps, bool).reshape(-1)
    if mask.shape != (steps,) or not mask.any():
        raise LearningError(f"loss_steps must be a bool mask of the {steps} steps with at least one True, got shape "
                            f"{mask.shape}")
    return np.where(mask, np.float32(1.0 / mask.sum()), np.float32(0.0)).astype(np.float32)


@dataclass
class EpropResult:
    """One trained batch: learning-phase counts, the read-out summed over the scored steps ``(B, classes)``, the
    mean loss, and the steps with a learning signal."""

    counts: Counts
    readout: np.ndarray
    loss: float
    learn_steps: list[int]


class EpropLearner:
    """Trains ``network`` (``input-(r|a)N-out``, float) in place with on-chip e-prop (module docstring).

    ``options``: the rule options (:class:`~hwsim.learning.registry.RuleOptions`: eligibility, feedback, kappa, the
    fixed-point trace widths, surrogate, alpha), or the same names as keywords; ``lr``: SGD learning rate (``W -= lr
    * grad``); ``precision``/``weight_bits``: float32, or ReckOn's fixed point (per-neuron form only); ``seed``: the
    random feedback matrix (as the torch rule's ``seed``) and the stochastic rounding; ``loss_steps``: the task's
    scored steps (bool (T,), None: every step)."""

    def __init__(self, network: Network, lr: float = 0.1, options: RuleOptions | None = None,
                 precision: str = "float", weight_bits: int = 8, seed: int = 0,
                 loss_steps: np.ndarray | None = None, **keywords: Any):
        self.options = _options(options, keywords)
        self.layout = eprop_layout(network, "on-chip e-prop")
        if precision not in ("float", "fixed"):
            raise LearningError(f"precision must be 'float' or 'fixed', got {precision!r}")
        self.per_neuron = self.options.eligibility == "per_neuron"
        if precision == "fixed" and not self.per_neuron:
            raise LearningError("on-chip e-prop in fixed point is ReckOn's per-neuron form: use eligibility="
                                "'per_neuron' (the per-synapse form keeps float eligibility state per synapse)")
        if not 2 <= int(weight_bits) <= 24:
            raise LearningError(f"weight_bits must be in 2..24, got {weight_bits!r}")
        self.network, self.lr, self.seed, self.precision = network, float(lr), int(seed), precision
        self.weight_bits, self.loss_steps, self.batches = int(weight_bits), loss_steps, 0
        lay, rec, out = self.layout, network.layers[self.layout.rec], network.layers[self.layout.out]
        f32 = np.float32
        self.state = EpropState(np.ascontiguousarray(np.asarray(rec.weight, f32).T),  # fan-out major (pre, post)
                                np.ascontiguousarray(np.asarray(rec.recurrent, f32).T),
                                np.zeros(lay.n_hidden, f32) if rec.bias is None else np.asarray(rec.bias, f32).copy(),
                                np.ascontiguousarray(np.asarray(out.weight, f32).T),
                                np.zeros(lay.n_out, f32) if out.bias is None else np.asarray(out.bias, f32).copy(),
                                random_feedback(lay.n_hidden, lay.n_out, self.seed), np.ones(3, f32))
        self.has_bias = (rec.bias is not None, out.bias is not None)
        if precision == "fixed":  # weights on a per-matrix grid spanning twice max |W|, rounded there once
            levels = self.w_levels
            for m, part in enumerate((self.state.w_in, self.state.w_rec, self.state.w_out)):
                self.state.w_step[m] = HEADROOM * max(float(np.abs(part).max(initial=0.0)), 1e-12) / levels
                part[:] = np.clip(np.rint(part / self.state.w_step[m]), -levels, levels) * self.state.w_step[m]
            self.sync()

    # ---- settings ------------------------------------------------------------------------------------------------
    @property
    def w_levels(self) -> int:
        """Weight levels each side of zero (0: float)."""
        return 2 ** (self.weight_bits - 1) - 1 if self.precision == "fixed" else 0

    def params(self, steps: int, loss_steps: np.ndarray | None) -> EpropParams:
        """The kernel's settings for a batch of ``steps`` steps."""
        rec = self.network.layers[self.layout.rec].neuron
        o = self.options
        alpha = registry.surrogate_alpha(o.surrogate, o.alpha)
        rho, beta = (float(rec.rho), float(rec.beta)) if self.layout.alif else (0.0, 0.0)
        levels = (2 ** int(o.trace_bits_in) - 1, 2 ** int(o.trace_bits_rec) - 1, 2 ** int(o.trace_bits_out) - 1) \
            if self.precision == "fixed" else (0, 0, 0)
        return EpropParams(np.float32(rec.lam), np.float32(rec.v_th), np.float32(rho), np.float32(beta),
                           self.layout.alif, SURROGATES[o.surrogate], np.float32(alpha), np.float32(o.kappa),
                           self.per_neuron, o.feedback == "random", np.float32(self.lr), self.has_bias[0],
                           self.has_bias[1], self.w_levels, *levels, self.seed * 1_000_003 + self.batches,
                           loss_weights(steps, loss_steps))

    # ---- weights in and out --------------------------------------------------------------------------------------
    def sync(self) -> Network:
        """Write the learner's weights into the network."""
        rec, out = self.network.layers[self.layout.rec], self.network.layers[self.layout.out]
        rec.weight, rec.recurrent = self.state.w_in.T.copy(), self.state.w_rec.T.copy()
        out.weight = self.state.w_out.T.copy()
        if rec.bias is not None:
            rec.bias = self.state.b_rec.copy()
        if out.bias is not None:
            out.bias = self.state.b_out.copy()
        return self.network

    # ---- training ------------------------------------------------------------------------------------------------
    def evaluate(self, spikes: np.ndarray, loss_steps: np.ndarray | None = None) -> np.ndarray:
        """Forward only: the read-out summed over the scored steps (``loss_steps``, default the learner's),
        ``(B, classes)``."""
        lr, self.lr = self.lr, 0.0
        try:
            return self.train_batch(spikes, np.zeros(np.asarray(spikes).shape[1], np.int64), loss_steps,
                                    sync=False, learn=False).readout
        finally:
            self.lr = lr

    def train_batch(self, spikes: np.ndarray, labels: np.ndarray, loss_steps: np.ndarray | None = None,
                    sync: bool = True, learn: bool = True) -> EpropResult:
        """One mini-batch: ``spikes`` (T, B, *input_shape) 0/1, ``labels`` (B,) ints; ``loss_steps`` the scored
        steps (bool (T,); default the learner's). ``sync`` writes the weights back into the network afterwards;
        ``learn=False`` runs the forward pass only."""
        s_in = check_input(self.network, spikes)
        steps, batch = s_in.shape[:2]
        labels = np.array(labels, np.int64)
        if labels.shape != (batch,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= self.layout.n_out:
            raise LearningError(f"labels must be {batch} integers in 0..{self.layout.n_out - 1}, got shape "
                                f"{labels.shape}")
        mask = self.loss_steps if loss_steps is None else loss_steps
        params = self.params(steps, mask)
        if not learn:
            params = params._replace(lr=np.float32(0.0))
        flat = s_in.reshape(steps, batch, -1)
        in_off, in_events = scan_learning_input(flat)
        tally = new_eprop_tally(self.layout.n_in, self.layout.n_hidden, self.layout.n_out, steps, batch)
        readout = self.network.layers[self.layout.out].neuron
        train_eprop(params, self.state, tally, in_off, in_events, labels, learn,
                    (np.float32(readout.lam), np.float32(readout.v_th), readout.reset == "soft"))
        self.batches += learn
        if sync and learn:
            self.sync()
        scored = [int(t) for t in np.flatnonzero(params.loss_w)]
        loss = float(tally.loss[0])
        return EpropResult(self._counts(tally, steps, batch, learn), tally.readout, loss, scored if learn else [])

    # ---- counts --------------------------------------------------------------------------------------------------
    def _counts(self, tally, steps: int, batch: int, learn: bool) -> Counts:
        """The batch's :class:`Counts`: the recurrent layer and the read-out, learning counters and bytes."""
        lay = self.layout
        counts = Counts(timesteps=steps, batch=batch, mode="float", phase="learning" if learn else "inference")
        rec_name, out_name = self.network.layers[lay.rec].name, self.network.layers[lay.out].name
        for node, (name, kind, n_in, n_out) in enumerate(((rec_name, "recurrent", lay.n_in, lay.n_hidden),
                                                          (out_name, "dense", lay.n_hidden, lay.n_out))):
            lc = LayerCounts(name, kind, n_in, n_out, steps)
            for c, counter in enumerate(EC_NAMES):
                if counter == "errors":  # error values computed: bytes only, as the graph learner
                    continue
                if counter not in lc.events:  # e-prop's own counters until hwsim.sim.counts lists them
                    lc.events[counter] = np.zeros(steps, np.int64)
                lc.events[counter][:] = tally.counters[node, c]
            add_inference_bytes(lc, "float", has_bias=self.has_bias[node], adaptive=lay.alif and node == 0)
            self._learning_bytes(lc, tally.counters[node], node)
            lc.neuron_spikes = tally.neuron_spikes[node, :n_out].copy()
            lc.neuron_active = tally.neuron_active[node, :n_out].copy()
            lc.input_spikes = tally.input_spikes[node, :n_in].copy()
            lc.neuron_weight_updates = tally.writes[node, :n_out].copy()
            counts.layers.append(lc)
        return counts

    def _learning_bytes(self, lc: LayerCounts, counters: np.ndarray, node: int) -> None:
        """Learning bytes from the e-prop counters (conventions: :mod:`hwsim.learning.kernels.eprop`)."""
        fixed = self.precision == "fixed"
        w_bytes = -(-self.weight_bits // 8) if fixed else FLOAT_BYTES
        o = self.options
        trace_bytes = (-(-max(int(o.trace_bits_in), int(o.trace_bits_rec)) // 8) if node == 0 else
                       -(-int(o.trace_bits_out) // 8)) if fixed else FLOAT_BYTES
        ev = lc.events
        grad_bytes = 0 if self.per_neuron else FLOAT_BYTES  # per neuron: written straight into the weight
        error_bytes = 2 if fixed else FLOAT_BYTES  # ReckOn's learning signals are 16-bit
        updates = ev["trace_updates"] + counters[EC_ELIGIBILITY]
        lc.mem_read_bytes["weights"] += (ev["error_macs"] + ev["weight_updates"]) * w_bytes
        lc.mem_write_bytes["weights"] += ev["weight_updates"] * w_bytes
        lc.mem_read_bytes["traces"] += (updates + ev["grad_ops"]) * trace_bytes
        lc.mem_write_bytes["traces"] += updates * trace_bytes
        lc.mem_read_bytes["grad_accum"] += (ev["grad_ops"] + ev["weight_updates"]) * grad_bytes
        lc.mem_write_bytes["grad_accum"] += ev["grad_ops"] * grad_bytes
        lc.mem_write_bytes["errors"] += (counters[EC_ERRORS] + counters[EC_BROADCASTS]) * error_bytes
        lc.mem_read_bytes["errors"] += (ev["error_macs"] + counters[EC_BROADCASTS]) * error_bytes


def _options(options: RuleOptions | None, keywords: dict[str, Any]) -> RuleOptions:
    """The rule options from a record or from keywords (not both)."""
    if options is not None and keywords:
        raise LearningError(f"give rule options as options=RuleOptions(...) or as keywords, not both "
                            f"({', '.join(keywords)})")
    if options is not None:
        return options
    own = set(registry.options_of("eprop"))
    unknown = [name for name in keywords if name not in own]
    if unknown:
        raise LearningError(f"unknown e-prop option {unknown[0]!r}; known: {', '.join(sorted(own))}")
    try:
        return RuleOptions({k: v for k, v in keywords.items() if v is not None})
    except RegistryError as err:
        raise LearningError(str(err)) from None


def fit(learner: EpropLearner, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int = 32, seed: int = 0
        ) -> EpropResult | None:
    """Train on samples ``x`` (N, T, *input_shape) 0/1 with labels ``y`` (N,) for ``epochs`` epochs of shuffled
    mini-batches; returns the last batch's result. Weights are synced into the network at the end."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape[0] != y.shape[0]:
        raise LearningError(f"x has {x.shape[0]} samples, y has {y.shape[0]} labels")
    last = None
    for epoch in range(epochs):
        order = np.random.default_rng(seed * 1000 + epoch).permutation(len(y))
        for start in range(0, len(y), batch_size):
            index = order[start: start + batch_size]
            last = learner.train_batch(np.moveaxis(x[index], 1, 0).astype(np.uint8), y[index], sync=False)
    learner.sync()
    return last


def accuracy(learner: EpropLearner, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Fraction of samples whose read-out, summed over the scored steps, peaks at the label."""
    correct = 0
    for start in range(0, len(y), batch_size):
        batch = np.moveaxis(np.asarray(x[start: start + batch_size]), 1, 0).astype(np.uint8)
        correct += int((learner.evaluate(batch).argmax(1) == np.asarray(y[start: start + batch_size])).sum())
    return correct / max(len(y), 1)


__all__ = ["EpropLayout", "EpropLearner", "EpropResult", "accuracy", "eprop_layout", "fit", "learning_state",
           "loss_weights", "random_feedback"]
