"""On-chip learning on recurrent and ALIF networks: every on-chip rule equals an independent torch autograd reference
(``tests/recurrent_learning_reference.py``, written from the equations) over several batches; the learning counters
of a tiny recurrent net against a hand count; loss on scored steps; fixed point; write-back."""

import copy

import numpy as np
import pytest
import torch

from hwsim.learning.learner import LearningError, OnChipLearner
from hwsim.sim.network import Dense, FloatALIF, FloatLIF, Network, Recurrent, from_spec
from tests import recurrent_learning_reference as ref

RULES = {  # rule name -> (learner options, the reference's temporal treatment: window None = T)
    "bptt": ({}, dict(window=None, traces=False, update_every_step=False)),
    "sltt": ({}, dict(window=1, traces=False, update_every_step=False)),
    "sltt_k": ({"k": 3}, dict(window=1, traces=False, update_every_step=False)),
    "ottt_a": ({}, dict(window=1, traces=True, update_every_step=False)),
    "ottt_o": ({}, dict(window=1, traces=True, update_every_step=True)),
    "ttl_bptt": ({"window": 3, "block": 1}, dict(window=3, traces=False, update_every_step=False)),
    "stdl": ({"subnet": 1, "budget_bytes": 10**8, "batch_size": 2}, dict(window=1, traces=False,
                                                                        update_every_step=False)),
}


def _net(kind: str, reset: str = "soft", seed: int = 3) -> Network:
    """10-r12-4 (recurrent LIF), 10-a12-4 (recurrent ALIF) or 10-r8-a6-4 (two recurrent layers, LIF then ALIF),
    biases everywhere, a leak and recurrent weights strong enough for the recurrence to matter in a few steps,
    an adaptation fast enough to matter in T = 8."""
    rng = np.random.default_rng(seed)
    lif = FloatLIF(lam=0.6, v_th=1.0, reset=reset)
    alif = FloatALIF(lam=0.6, v_th=1.0, reset=reset, rho=0.8, beta=0.4)
    sizes = {"r": [(10, 12, lif)], "a": [(10, 12, alif)], "rr": [(10, 8, lif), (8, 6, alif)]}[kind]
    layers = []
    for n_in, n, neuron in sizes:
        w = rng.normal(0, 3 / np.sqrt(n_in), (n, n_in)).astype(np.float32)
        w_rec = rng.normal(0, 1.5 / np.sqrt(n), (n, n)).astype(np.float32)
        np.fill_diagonal(w_rec, 0)
        layers.append(Recurrent(w, w_rec, neuron=neuron, bias=rng.normal(0, 0.1, n).astype(np.float32)))
    n_last = sizes[-1][1]
    layers.append(Dense(rng.normal(0, 3 / np.sqrt(n_last), (4, n_last)).astype(np.float32), neuron=lif,
                        bias=rng.normal(0, 0.1, 4).astype(np.float32)))
    return Network(10, layers)


def _reference_layers(net: Network, learner: OnChipLearner, rule: str) -> list:
    """The reference's layers: the network's (each reading the one below; a block or subnetwork start reads it
    detached), then the learner's heads as they start (TTL-BPTT classifiers; STDL auxiliary networks from the
    STDL plan), each chain reading its block's last layer."""
    count = len(net.layers)
    opts = RULES[rule][0]
    if rule == "ttl_bptt":
        starts = set(range(0, count, opts["block"]))
    elif rule == "stdl":
        starts = {lo for lo, _ in learner.stdl_plan.subnets}
    else:
        starts = {0}
    layers = [ref.layer_of(layer, g - 1, g in starts and g > 0, g == count - 1) for g, layer in enumerate(net.layers)]
    heads, rec = learner.heads(), learner.head_recurrent()
    position = 0
    if rule == "ttl_bptt":
        for hi in sorted(starts)[1:]:
            _, w, b = heads[position]
            layers.append(ref.RefLayer(torch.tensor(w), None, torch.tensor(b), None, hi - 1, False, True))
            position += 1
    if rule == "stdl":
        for (_, hi), aux in zip(learner.stdl_plan.subnets, learner.stdl_plan.auxiliary):
            chain = list(aux.layers) + ([None] if aux.classifier else [])
            src = hi - 1
            for k, mirrored in enumerate(chain):
                _, w, b = heads[position]
                last = k == len(chain) - 1
                if mirrored is None:
                    layers.append(ref.RefLayer(torch.tensor(w), None, torch.tensor(b), None, src, False, True))
                else:
                    layers.append(ref.layer_of(net.layers[mirrored], src, False, last, (w, b, rec[position])))
                src = len(layers) - 1
                position += 1
    assert position == len(heads)
    return layers


def _run_both(kind, rule, reset, surrogate, batches=3, batch=2, steps=8, loss_steps=None, seed=0):
    """``batches`` mini-batches on chip and in the reference from the same start; returns (net on chip, learner,
    reference layers, read-outs on chip, read-outs of the reference's forward)."""
    opts, temporal = RULES[rule]
    alpha = 4.0 if surrogate == "sigmoid" else 1.0
    net = _net(kind, reset)
    chip = copy.deepcopy(net)
    learner = OnChipLearner(chip, rule, lr=0.5, surrogate=surrogate, alpha=alpha, seed=seed, **opts)
    layers = _reference_layers(net, learner, rule)
    rule_ref = dict(temporal, window=temporal["window"] or steps, surrogate=surrogate, alpha=alpha)
    rng = np.random.default_rng(seed + 11)
    for _ in range(batches):
        x = (rng.random((steps, batch, 10)) < 0.35).astype(np.uint8)
        y = rng.integers(0, 4, batch)
        result = learner.train_batch(x, y, sync=False, loss_steps=loss_steps)
        ref.train_batch(layers, torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y), rule_ref, 0.5,
                        loss_steps=loss_steps, learn=result.learn_steps)
    learner.sync()
    return net, chip, learner, layers


def _assert_equal_to_reference(net, chip, learner, layers):
    moved = 0.0
    for g, (layer, before) in enumerate(zip(chip.layers, net.layers)):
        np.testing.assert_allclose(layer.weight, layers[g].weight.numpy(), rtol=0, atol=1e-5, err_msg=f"W{g}")
        np.testing.assert_allclose(layer.bias, layers[g].bias.numpy(), rtol=0, atol=1e-5, err_msg=f"b{g}")
        moved = max(moved, float(np.abs(layer.weight - before.weight).max()))
        if isinstance(layer, Recurrent):
            np.testing.assert_allclose(layer.recurrent, layers[g].recurrent.numpy(), rtol=0, atol=1e-5,
                                       err_msg=f"W_rec{g}")
    heads = learner.heads()
    for (_, w, b), w_rec, head in zip(heads, learner.head_recurrent(), layers[len(chip.layers):], strict=True):
        np.testing.assert_allclose(w, head.weight.numpy(), rtol=0, atol=1e-5)
        if b is not None:
            np.testing.assert_allclose(b, head.bias.numpy(), rtol=0, atol=1e-5)
        if w_rec is not None:
            np.testing.assert_allclose(w_rec, head.recurrent.numpy(), rtol=0, atol=1e-5)
    assert moved > 1e-3  # the update is real, not a no-op that matches trivially
    rec_moved = max(float(np.abs(a.recurrent - b.recurrent).max()) for a, b in zip(chip.layers, net.layers)
                    if isinstance(a, Recurrent))
    assert rec_moved > 1e-4  # the recurrent weights learn too


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("kind", ["r", "a", "rr"])
@pytest.mark.parametrize("reset,surrogate", [("soft", "triangle"), ("zero", "sigmoid")])
def test_on_chip_equals_the_autograd_reference(rule, kind, reset, surrogate):
    """Three batches of two samples, T = 8: weights, recurrent weights, biases and heads equal to 1e-5."""
    _assert_equal_to_reference(*_run_both(kind, rule, reset, surrogate))


@pytest.mark.parametrize("rule", list(RULES))
def test_loss_on_scored_steps_equals_the_reference(rule):
    """A task that scores steps 4, 6 and 7 of 8 (``CE / 3`` there, 0 elsewhere): on chip equal to the reference,
    and the read-out is summed over the scored steps only."""
    mask = np.zeros(8, bool)
    mask[[4, 6, 7]] = True
    _assert_equal_to_reference(*_run_both("a", rule, "soft", "triangle", loss_steps=mask))


def test_readout_is_summed_over_the_scored_steps():
    net = _net("r")
    x = (np.random.default_rng(0).random((6, 2, 10)) < 0.4).astype(np.uint8)
    mask = np.array([0, 0, 1, 0, 1, 1], bool)
    learner = OnChipLearner(copy.deepcopy(net), "sltt", lr=0.0)
    every = [learner.evaluate(x[: t + 1]) for t in range(6)]  # the read-out summed over steps 0..t
    per_step = [every[0]] + [every[t] - every[t - 1] for t in range(1, 6)]
    expected = sum(per_step[t] for t in (2, 4, 5))
    np.testing.assert_allclose(learner.evaluate(x, loss_steps=mask), expected, rtol=0, atol=1e-5)
    result = learner.train_batch(x, np.array([0, 1]), loss_steps=mask)
    assert result.learn_steps == [2, 4, 5]  # the online rules learn at the scored steps only


def test_bad_loss_steps_are_one_line():
    learner = OnChipLearner(_net("r"), "sltt_k", k=3)
    x = np.zeros((6, 1, 10), np.uint8)
    with pytest.raises(LearningError, match=r"loss_steps must be a bool mask of the T=6 steps, got shape \(5,\)"):
        learner.train_batch(x, np.array([0]), loss_steps=np.ones(5, bool))
    with pytest.raises(LearningError, match="loss_steps scores no step"):
        learner.train_batch(x, np.array([0]), loss_steps=np.zeros(6, bool))
    with pytest.raises(LearningError, match="K=3 is larger than the task's 2 scored steps"):
        learner.train_batch(x, np.array([0]), loss_steps=np.array([0, 0, 0, 0, 1, 1], bool))


# ---- counters by hand ------------------------------------------------------------------------------------------
def _hand_net():
    """1 input -> 2 recurrent LIF (W = (1.5, 0.5)^T, W_rec = [[0, 1], [1, 0]]) -> 2 read-out (identity), lam 0.5,
    v_th 1, soft reset, no biases."""
    neuron = FloatLIF(lam=0.5, v_th=1.0)
    return Network(1, [Recurrent(np.array([[1.5], [0.5]], np.float32), np.array([[0, 1], [1, 0]], np.float32),
                                 neuron=neuron),
                       Dense(np.eye(2, dtype=np.float32), neuron=neuron)])


HAND_X = np.array([[[1]], [[0]], [[0]]], np.uint8)  # the input spikes at t=0 only


def test_learning_counters_by_hand_sltt():
    """Forward. t=0: I = W x = (1.5, 0.5), u = (1.5, 0.5), s = (1, 0). t=1: the recurrent input is s[0] = (1, 0):
    I = W_rec s[0] = (0, 1), u = 0.5 (1.5 - 1) + 0 = 0.25 and 0.5 * 0.5 + 1 = 1.25, s = (0, 1). t=2: I = W_rec
    (0, 1) = (1, 0), u = 0.5 * 0.25 + 1 = 1.125 and 0.5 (1.25 - 1) = 0.125, s = (1, 0).
    Recurrent layer: spikes_in (feed-forward only) (1, 0, 0); SOPs 2 + 0 + 0 feed-forward and 0, 2, 2 recurrent
    (one spike of the step before x 2 synapses); sop_recurrent (0, 2, 2). Read-out: its input is the hidden spikes
    (1, 0), (0, 1), (1, 0): SOPs 2 each.
    SLTT backward (recurrent input a constant): the read-out's error reaches both hidden neurons when g'(u - 1) !=
    0: triangle max(0, 1 - |u - 1|): t=0 (0.5, 0.5), t=1 (0.25, 0.75), t=2 (0.875, 0.125): never zero: 2 x 2 = 4
    error MACs per step at the read-out, none through W_rec (the cut). Hidden deltas non-zero: 2 each step.
    Gradient ops = active presynaptic inputs x non-zero deltas: hidden t=0: input 1 x 2; t=1: input 0 + own
    previous spike 1 -> 1 x 2; t=2: 1 x 2 -> (2, 2, 2); read-out: one hidden spike x 2 deltas each step (2, 2, 2).
    Weights written: hidden input row (both), recurrent rows of neurons 0 and 1 (both spiked once before the last
    step): 2 + 2 + 2 = 6, per postsynaptic neuron 3 and 3; read-out rows of both hidden neurons: 4."""
    result = OnChipLearner(_hand_net(), "sltt").train_batch(HAND_X, np.array([1]))
    hidden, out = result.counts.layers
    assert hidden.kind == "recurrent" and out.kind == "dense"
    assert hidden.events["spikes_in"].tolist() == [1, 0, 0] and hidden.events["spikes_out"].tolist() == [1, 1, 1]
    assert hidden.events["sop"].tolist() == [2, 2, 2]
    assert hidden.events["sop_recurrent"].tolist() == [0, 2, 2]
    assert out.events["sop"].tolist() == [2, 2, 2] and out.events["sop_recurrent"].tolist() == [0, 0, 0]
    assert out.events["error_macs"].tolist() == [4, 4, 4] and hidden.events["error_macs"].tolist() == [0, 0, 0]
    assert hidden.events["grad_ops"].tolist() == [2, 2, 2] and out.events["grad_ops"].tolist() == [2, 2, 2]
    assert hidden.total("weight_updates") == 6 and hidden.neuron_weight_updates.tolist() == [3, 3]
    assert out.total("weight_updates") == 4
    assert hidden.input_spikes.tolist() == [1]  # feed-forward inputs only
    assert hidden.events["neuron_updates_active"].tolist() == [2, 1, 1]  # t=1, 2: one neuron's input is 0
    # bytes: every SOP (recurrent ones too) and every error MAC reads a weight, each written weight is read and
    # written; errors: the hidden layer receives 2 error values per step
    assert hidden.mem_read_bytes["weights"].sum() == (6 + 0 + 6) * 4
    assert hidden.mem_write_bytes["errors"].sum() == 3 * 2 * 4


def test_learning_counters_by_hand_bptt():
    """Same net and input, BPTT (one window of 3 steps). Through W_rec: at t = 1 and 2 the hidden error dL/dI[t]
    goes back to dL/ds[t-1] of both neurons where g'(u[t-1] - 1) != 0 (never zero here: 2 neurons x 2 synapses)
    -> 4 recurrent error MACs at t = 1 and 2, none at t = 0 (the window's start); the read-out's 4 MACs each step.
    The hidden layer's error count adds the 2 values it sends itself at t = 1, 2 to the 2 it receives each step.
    History: u and s of every neuron and step, 2 x 4 B per neuron update, written and read once."""
    result = OnChipLearner(_hand_net(), "bptt").train_batch(HAND_X, np.array([1]))
    hidden, out = result.counts.layers
    assert hidden.events["error_macs"].tolist() == [0, 4, 4]
    assert out.events["error_macs"].tolist() == [4, 4, 4]
    assert hidden.mem_write_bytes["errors"].tolist() == [2 * 4, 4 * 4, 4 * 4]
    assert hidden.mem_write_bytes["history"].sum() == 3 * 2 * 2 * 4
    assert hidden.mem_read_bytes["history"].sum() == 3 * 2 * 2 * 4
    assert hidden.total("sop_recurrent") == 4


def test_learning_counters_by_hand_ottt():
    """Same net, OTTT_A: the recurrent input gets a trace r̂[t] = 0.5 r̂[t-1] + s[t-1]: t=0 (0, 0), t=1 (1, 0),
    t=2 (0.5, 1) -> 0, 1, 2 non-zero; the feed-forward input is the network's (raw, no trace). Hidden gradient
    ops: (input 1 + 0 traces) x 2, (0 + 1) x 2, (0 + 2) x 2 = (2, 2, 4). Trace updates: the 2 recurrent traces
    every step at the hidden layer; the read-out's 2 input traces every step."""
    result = OnChipLearner(_hand_net(), "ottt_a").train_batch(HAND_X, np.array([1]))
    hidden, out = result.counts.layers
    assert hidden.events["trace_updates"].tolist() == [2, 2, 2] and out.events["trace_updates"].tolist() == [2, 2, 2]
    assert hidden.events["grad_ops"].tolist() == [2, 2, 4]
    assert hidden.mem_read_bytes["traces"].sum() == (6 + 8) * 4  # trace updates + traced gradient ops


@pytest.mark.parametrize("spec", ["10-r12-4", "10-a12-4", "10-r8-a6-4"])
def test_forward_while_learning_equals_the_inference_engine(spec):
    """The learner's forward pass is the engine's, spike for spike: every forward counter (``sop_recurrent``
    included) and per-neuron total equal; with no learning step, the bytes too (ALIF state included)."""
    from hwsim.sim.engine import simulate

    net = from_spec(spec, seed=2)
    x = (np.random.default_rng(0).random((6, 3, 10)) < 0.4).astype(np.uint8)
    inference = simulate(copy.deepcopy(net), x).counts
    learning = OnChipLearner(net, "bptt", lr=0.0).train_batch(x, np.array([0, 1, 2])).counts
    forward = OnChipLearner(copy.deepcopy(net), "sltt").train_batch(x, np.array([0, 1, 2]), learn_steps=[]).counts
    for a, b, c in zip(inference.layers, learning.layers, forward.layers, strict=True):
        assert a.kind == b.kind
        for name in ("spikes_in", "spikes_out", "sop", "sop_recurrent", "neuron_updates", "neuron_updates_active"):
            np.testing.assert_array_equal(a.events[name], b.events[name], err_msg=name)
        for name in ("neuron_spikes", "neuron_active", "input_spikes"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        for kind in a.mem_read_bytes:
            np.testing.assert_array_equal(a.mem_read_bytes[kind], c.mem_read_bytes[kind], err_msg=kind)
            np.testing.assert_array_equal(a.mem_write_bytes[kind], c.mem_write_bytes[kind], err_msg=kind)
    assert inference.total("sop_recurrent") > 0


# ---- the rest --------------------------------------------------------------------------------------------------
def test_recurrent_weights_are_written_back_and_fixed_point_keeps_them_on_the_grid():
    net = from_spec("10-r12-4", seed=1)
    before = net.layers[0].recurrent.copy()
    learner = OnChipLearner(net, "sltt", lr=0.5, precision="fixed", weight_bits=6)
    x = (np.random.default_rng(0).random((8, 3, 10)) < 0.4).astype(np.uint8)
    for _ in range(3):
        learner.train_batch(x, np.array([0, 1, 2]))
    layer = net.layers[0]
    assert not np.array_equal(layer.recurrent, before)
    step = learner.w_step[0]  # one grid for the layer's input and recurrent weights
    for part in (layer.weight, layer.recurrent):
        q = part / step
        np.testing.assert_allclose(q, np.rint(q), atol=1e-3)
        assert np.abs(np.rint(q)).max() <= 31


def test_alif_in_fixed_point_is_one_line():
    with pytest.raises(LearningError, match="adaptive \\(ALIF\\) neurons are float only"):
        OnChipLearner(from_spec("10-a12-4"), "sltt", precision="fixed")


def test_dense_alif_layer_learns_as_the_reference():
    """A feed-forward layer of ALIF neurons (adaptation without recurrent synapses), BPTT and SLTT."""
    rng = np.random.default_rng(4)
    alif = FloatALIF(lam=0.6, v_th=1.0, rho=0.7, beta=0.5)
    net = Network(10, [Dense(rng.normal(0, 1, (9, 10)).astype(np.float32), neuron=alif,
                             bias=rng.normal(0, 0.1, 9).astype(np.float32)),
                       Dense(rng.normal(0, 1, (4, 9)).astype(np.float32), neuron=FloatLIF(lam=0.6),
                             bias=np.zeros(4, np.float32))])
    x = (rng.random((8, 2, 10)) < 0.4).astype(np.uint8)
    y = np.array([1, 2])
    for rule in ("bptt", "sltt"):
        chip = copy.deepcopy(net)
        OnChipLearner(chip, rule, lr=0.5).train_batch(x, y)
        layers = [ref.layer_of(layer, g - 1, False, g == 1) for g, layer in enumerate(net.layers)]
        temporal = dict(RULES[rule][1], window=RULES[rule][1]["window"] or 8, surrogate="triangle", alpha=1.0)
        ref.train_batch(layers, torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y), temporal, 0.5)
        for layer, r in zip(chip.layers, layers):
            np.testing.assert_allclose(layer.weight, r.weight.numpy(), rtol=0, atol=1e-5)


# ---- against the torch rules (hwsim.methods) -------------------------------------------------------------------
def _torch_heads(rule_ref, rule):
    """The torch rule's heads as the learner takes them: TTL-BPTT classifiers; STDL auxiliary layers, with their
    recurrent weights where they mirror a recurrent layer."""
    def arr(t):
        return None if t is None else t.detach().numpy()

    if rule == "ttl_bptt":
        return [[(arr(h.weight), arr(h.bias))] for h in rule_ref.classifiers]
    if rule == "stdl":
        heads = []
        for aux in rule_ref.aux:
            chain = [(arr(st.synapse.weight), arr(st.synapse.bias)) + (() if st.recurrent is None else
                                                                         (arr(st.recurrent.weight),))
                     for st in ([] if aux.body is None else aux.body.stages)]
            if aux.classifier is not None:
                chain.append((arr(aux.classifier.weight), arr(aux.classifier.bias)))
            heads.append(chain)
        return heads
    return None


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("kind", ["r", "a", "rr"])
@pytest.mark.parametrize("reset,surrogate,scored", [("soft", "triangle", False), ("zero", "sigmoid", True)])
def test_on_chip_equals_the_torch_rule(rule, kind, reset, surrogate, scored):
    """``hwsim.methods.build_rule`` (the torch reference training) and the on-chip learner from the same weights
    and heads, two batches (the second with a task's scored steps 3, 5, 6, 7 of 8): weights, recurrent weights and
    biases equal to 1e-5."""
    from hwsim.methods import build_rule
    from hwsim.methods.neuron import Sigmoid

    opts = dict(RULES[rule][0])
    net = _net(kind, reset)
    sur = Sigmoid(4.0) if surrogate == "sigmoid" else None
    torch_rule = build_rule(rule, copy.deepcopy(net), surrogate=sur, seed=1, **opts)
    optimizer = torch.optim.SGD(list(torch_rule.parameters()), lr=0.5)
    chip = copy.deepcopy(net)
    learner = OnChipLearner(chip, rule, lr=0.5, surrogate=surrogate, alpha=4.0 if sur else 1.0,
                            heads=_torch_heads(torch_rule, rule), **opts)
    rng = np.random.default_rng(5)
    mask = np.array([0, 0, 0, 1, 0, 1, 1, 1], bool)
    for i in range(2):
        x = (rng.random((8, 2, 10)) < 0.35).astype(np.uint8)
        y = rng.integers(0, 4, 2)
        loss_steps = mask if scored and i == 1 else None
        torch_rule.loss_steps = None if loss_steps is None else torch.from_numpy(loss_steps)
        torch_rule.step(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y), optimizer)
        steps = torch_rule.last_backward_steps if rule == "sltt_k" else None
        learner.train_batch(x, y, learn_steps=steps, sync=False, loss_steps=loss_steps)
    learner.sync()
    torch_net = torch_rule.model.write_back(copy.deepcopy(net))
    for g, (a, b) in enumerate(zip(chip.layers, torch_net.layers)):
        np.testing.assert_allclose(a.weight, b.weight, rtol=0, atol=1e-5, err_msg=f"W{g}")
        np.testing.assert_allclose(a.bias, b.bias, rtol=0, atol=1e-5, err_msg=f"b{g}")
        if isinstance(a, Recurrent):
            np.testing.assert_allclose(a.recurrent, b.recurrent, rtol=0, atol=1e-5, err_msg=f"W_rec{g}")
    assert max(float(np.abs(a.weight - b.weight).max()) for a, b in zip(chip.layers, net.layers)) > 1e-3
