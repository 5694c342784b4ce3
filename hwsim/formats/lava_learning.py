"""On-chip learning exported to Lava: an OTTT-like three-factor rule on ``LearningDense``.

Lava form (DESIGN.md section 2): ``RingBuffer -> LearningDense -> ErrorFeed``, with a
``Loihi3FLearningRule`` ``dw = 2^-s * u0 * x1 * y2 - 2^-s * u0 * x1 * y3`` updated every step
(``t_epoch = 1``): ``x1`` is the presynaptic trace (impulse per spike, decay ``exp(-1/tau)``, 7 bit,
stochastic rounding) and the post-synaptic :class:`ErrorFeed` process supplies the error message of every
step split into its positive (``y2``) and negative (``y3``) parts, 7 bit each.

hwsim form: the same layer's error ``delta[t] = dCE/do[t] / T`` from hwsim's read-out, quantised to the
same 7-bit messages, and hwsim's fixed-point OTTT trace (``a = lam a + impulse s``, rounded to integers)
give the predicted change ``dW = 2^-(s+3) sum_t (y2 - y3)[t] a[t]`` (Loihi's product of two 7-bit traces drops
3 bits of scale). Lava's learning model is tagged
bit-approximate (stochastic rounding of traces and weights), so the two are compared statistically: the
Pearson correlation of the weight changes over all synapses and the mean absolute difference.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from hwsim.formats.lava_compat import import_lava
from hwsim.sim.network import Dense, Network, NetworkError


@dataclass
class LearningComparison:
    correlation: float
    mean_abs_difference: float
    mean_abs_change: float
    lava_dw: np.ndarray
    hwsim_dw: np.ndarray
    steps: int

    def to_dict(self) -> dict:
        return {"correlation": self.correlation, "mean_abs_difference": self.mean_abs_difference,
                "mean_abs_change": self.mean_abs_change, "steps": self.steps, "synapses": int(self.lava_dw.size)}


def error_messages(network: Network, spikes: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray]:
    """hwsim's read-out error of a one-layer float network on one sample, as 7-bit messages (y2, y3),
    shapes ``(n_out, T)``: ``delta[t] = (softmax(o[t]) - onehot) / T``, scaled so the largest is 127."""
    layer = network.layers[0]
    current = spikes.astype(np.float64) @ layer.weight.T.astype(np.float64)
    if layer.bias is not None:
        current += layer.bias
    shifted = np.exp(current - current.max(axis=1, keepdims=True))
    delta = shifted / shifted.sum(axis=1, keepdims=True)
    delta[:, label] -= 1.0
    delta /= len(spikes)
    scale = 127.0 / max(np.abs(delta).max(), 1e-12)
    y2 = np.rint(np.clip(delta, 0, None) * scale).astype(np.int32).T
    y3 = np.rint(np.clip(-delta, 0, None) * scale).astype(np.int32).T
    return y2, y3


def hwsim_trace(spikes: np.ndarray, impulse: int, tau: float) -> np.ndarray:
    """hwsim's fixed-point OTTT presynaptic trace in Lava's units: ``a = round(exp(-1/tau) a + impulse s)``,
    clipped to 7 bits; shape ``(T, n_in)``."""
    decay = np.exp(-1.0 / tau)
    trace = np.zeros(spikes.shape[1])
    out = np.zeros(spikes.shape)
    for t, s in enumerate(spikes):
        trace = np.minimum(np.rint(decay * trace + impulse * s), 127)
        out[t] = trace
    return out


def compare_learning(network: Network, spikes: np.ndarray, label: int, impulse: int = 16, tau: float = 4.0,
                     shift: int = 6, weights: np.ndarray | None = None, seed: int = 0) -> LearningComparison:
    """Run the three-factor rule in Lava on one sample ``spikes`` (T, n_in) and compare its weight change
    with hwsim's fixed-point OTTT prediction (see module docstring)."""
    if not isinstance(network.layers[-1], Dense) or network.mode != "float":
        raise NetworkError("the learning export trains the read-out layer: a float network ending in a Dense layer")
    if len(network.layers) > 1:  # the read-out layer's input spikes come from hwsim's float forward pass
        from hwsim.sim.engine import simulate

        x = np.asarray(spikes).reshape(len(spikes), 1, *network.input_shape)
        spikes = simulate(network, x).spikes[-2].reshape(len(spikes), -1)
        network = Network(network.layers[-1].n_in, [network.layers[-1]])
    import_lava()
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.dense.process import LearningDense
    from lava.proc.io.source import RingBuffer

    from hwsim.formats.lava import fixed_pt_config
    from hwsim.formats.lava_processes import ErrorFeed
    spikes = np.asarray(spikes, np.int32)
    steps = spikes.shape[0]
    y2, y3 = error_messages(network, spikes, label)
    layer = network.layers[0]
    w0 = weights if weights is not None else np.clip(np.rint(layer.weight / np.abs(layer.weight).max() * 60),
                                                     -60, 60).astype(np.int32) * 2
    rule = Loihi3FLearningRule(dw=f"2^-{shift} * u0 * x1 * y2 - 2^-{shift} * u0 * x1 * y3", x1_impulse=impulse,
                               x1_tau=tau, t_epoch=1, rng_seed=seed)
    source = RingBuffer(data=spikes.T.copy())
    dense = LearningDense(weights=w0.copy(), learning_rule=rule, name="learning_dense")
    feed = ErrorFeed(y2=y2, y3=y3)
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(feed.a_in)
    feed.s_out_bap.connect(dense.s_in_bap)
    feed.s_out_y1.connect(dense.s_in_y1)
    feed.s_out_y2.connect(dense.s_in_y2)
    feed.s_out_y3.connect(dense.s_in_y3)
    try:
        with warnings.catch_warnings():  # Lava's model search trips over sibling modules; harmless
            warnings.simplefilter("ignore", UserWarning)
            source.run(condition=RunSteps(num_steps=steps), run_cfg=fixed_pt_config())
        w1 = np.asarray(dense.weights.get())
    finally:
        source.stop()
    lava_dw = (w1 - w0).astype(np.float64)
    trace = hwsim_trace(spikes, impulse, tau)
    hwsim_dw = ((y2 - y3).astype(np.float64) @ trace) / 2 ** (shift + 3)
    corr = float(np.corrcoef(lava_dw.ravel(), hwsim_dw.ravel())[0, 1])
    return LearningComparison(corr, float(np.abs(lava_dw - hwsim_dw).mean()), float(np.abs(hwsim_dw).mean()),
                              lava_dw, hwsim_dw, steps)
