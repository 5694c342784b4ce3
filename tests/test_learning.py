"""On-chip learning: weight updates equal the torch reference; learning counters against a hand count."""

import copy

import numpy as np
import pytest
import torch
from hwsim.methods import build_rule
from hwsim.methods.neuron import Sigmoid

from hwsim.learning.learner import OnChipLearner
from hwsim.sim.engine import simulate
from hwsim.sim.network import Dense, FloatLIF, Network, from_spec


def _net(reset="soft", seed=3):
    rng = np.random.default_rng(seed)
    layers = []
    for a, b in ((20, 16), (16, 12), (12, 5)):
        layers.append(Dense(rng.normal(0, 3 / np.sqrt(a), (b, a)).astype(np.float32),
                            bias=rng.normal(0, 0.1, b).astype(np.float32),
                            neuron=FloatLIF(lam=0.6, v_th=1.0, reset=reset)))
    return Network(20, layers)


@pytest.mark.parametrize("rule", ["sltt", "sltt_k", "ottt_a", "ottt_o"])
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("reset,surrogate", [("soft", "triangle"), ("zero", "sigmoid")])
def test_on_chip_update_equals_torch_reference(rule, batch, reset, surrogate):
    net = _net(reset)
    g = torch.Generator().manual_seed(batch)
    x = (torch.rand(7, batch, 20, generator=g) < 0.4).float()
    y = torch.randint(0, 5, (batch,), generator=g)
    sur = Sigmoid(4.0) if surrogate == "sigmoid" else None
    ref = build_rule(rule, copy.deepcopy(net), k=3, seed=1, surrogate=sur)
    ref.step(x, y, torch.optim.SGD(list(ref.parameters()), lr=0.5))
    chip_net = copy.deepcopy(net)
    learner = OnChipLearner(chip_net, rule, lr=0.5, k=3, surrogate=surrogate, alpha=4.0 if sur else 1.0)
    steps = ref.last_backward_steps if rule == "sltt_k" else None
    learner.train_batch(x.numpy().astype(np.uint8), y.numpy(), learn_steps=steps)
    moved = 0.0
    for layer, before, synapse in zip(chip_net.layers, net.layers, ref.model.synapses):
        np.testing.assert_allclose(layer.weight, synapse.weight.detach().numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(layer.bias, synapse.bias.detach().numpy(), rtol=0, atol=1e-5)
        moved = max(moved, float(np.abs(layer.weight - before.weight).max()))
    assert moved > 1e-3  # the update is real, not a no-op that matches trivially


def _hand_net():
    neuron = FloatLIF(lam=0.5, v_th=1.0)
    return Network(2, [Dense(np.array([[1.5, 0.0], [0.5, 0.25]]), neuron=neuron),
                       Dense(np.eye(2), neuron=neuron)])


HAND_X = np.array([[[1, 0]], [[0, 1]]], np.uint8)  # t=0: input 0 spikes; t=1: input 1 spikes


def test_learning_counters_by_hand_sltt():
    """Hidden layer by hand: t=0 I=(1.5, 0.5), u=(1.5, 0.5), s=(1, 0); t=1 I=(0, 0.25),
    u=(0.5*(1.5-1)+0, 0.5*0.5+0.25)=(0.25, 0.5), s=(0, 0). Triangle g'(u-1): t=0 (0.5, 0.5), t=1 (0.25, 0.5):
    never zero, so each step sends W^T delta to both hidden neurons: 2 x 2 = 4 error MACs at layer 1.
    Gradient ops = presynaptic spikes x non-zero deltas (2 each): layer 0: 1x2 + 1x2; layer 1: 1x2 + 0x2.
    Weights written: layer 0: all 4 (both inputs spiked once); layer 1: hidden 0's row only (2)."""
    result = OnChipLearner(_hand_net(), "sltt").train_batch(HAND_X, np.array([1]))
    l0, l1 = result.counts.layers
    assert l0.events["spikes_in"].tolist() == [1, 1] and l1.events["spikes_in"].tolist() == [1, 0]
    assert l0.events["sop"].tolist() == [2, 2] and l1.events["sop"].tolist() == [2, 0]
    assert l0.events["error_macs"].tolist() == [0, 0] and l1.events["error_macs"].tolist() == [4, 4]
    assert l0.events["grad_ops"].tolist() == [2, 2] and l1.events["grad_ops"].tolist() == [2, 0]
    assert l0.total("trace_updates") == 0 and l1.total("trace_updates") == 0
    assert l0.total("weight_updates") == 4 and l1.total("weight_updates") == 2
    assert l1.mem_read_bytes["weights"].sum() == (2 + 0 + 8 + 2) * 4  # SOPs + error MACs + updates, float32
    assert l1.mem_write_bytes["errors"].sum() == 2 * 2 * 4  # two read-out errors per step


def test_learning_counters_by_hand_ottt():
    """Same network, OTTT_A: traces a = lam a + s on the hidden spikes; the first layer takes the raw input (no
    trace, as OTTT's code). Input spikes: t=0 (1, 0), t=1 (0, 1) -> 1 then 1; hidden traces: t=0 (1, 0),
    t=1 (0.5, 0) -> 1 then 1 non-zero. Gradient ops = non-zero inputs x 2 deltas: layer 0: 2 + 2, layer 1:
    2 + 2. The hidden trace updates every step: 2 per step at layer 1, none at layer 0."""
    result = OnChipLearner(_hand_net(), "ottt_a").train_batch(HAND_X, np.array([1]))
    l0, l1 = result.counts.layers
    assert l0.events["grad_ops"].tolist() == [2, 2] and l1.events["grad_ops"].tolist() == [2, 2]
    assert l0.events["trace_updates"].tolist() == [0, 0] and l1.events["trace_updates"].tolist() == [2, 2]
    assert l1.events["error_macs"].tolist() == [4, 4]
    assert l0.total("weight_updates") == 4 and l1.total("weight_updates") == 2


def test_forward_counts_while_learning_equal_the_inference_engine():
    net = from_spec("30-20-6", seed=2)
    x = (np.random.default_rng(0).random((5, 3, 30)) < 0.3).astype(np.uint8)
    inference = simulate(copy.deepcopy(net), x).counts
    learning = OnChipLearner(net, "sltt", lr=0.0).train_batch(x, np.array([0, 1, 2])).counts
    for a, b in zip(inference.layers, learning.layers):
        for name in ("spikes_in", "spikes_out", "sop", "neuron_updates", "neuron_updates_active"):
            np.testing.assert_array_equal(a.events[name], b.events[name], err_msg=name)


def test_on_chip_learning_bad_input():
    from hwsim.learning.learner import LearningError

    with pytest.raises(LearningError, match="unknown on-chip rule 'hebb'; known rules: bptt, sltt, sltt_k, ottt_a"):
        OnChipLearner(from_spec("4-2"), "hebb")
    with pytest.raises(LearningError, match="K=9 is larger than the number of time steps T=3"):
        OnChipLearner(from_spec("4-2"), "sltt_k", k=9).train_batch(np.zeros((3, 1, 4), np.uint8), np.array([0]))
    with pytest.raises(LearningError, match="block/subnetwork size 3 does not fit the network's 2 neuron layers"):
        OnChipLearner(from_spec("1x4x4-c2k3-2"), "ttl_bptt", block=3)  # conv nets learn; bad options do not
    with pytest.raises(LearningError, match="labels must be 2 integers in 0..1"):
        OnChipLearner(from_spec("4-2"), "sltt").train_batch(np.zeros((3, 2, 4), np.uint8), np.array([0, 5]))


@pytest.mark.parametrize("rule", ["sltt", "ottt_o"])
def test_consecutive_batches_stay_equal_to_torch(rule):
    """The learner keeps weights and accumulators between batches; a network without biases stays so."""
    net = from_spec("30-20-5", seed=0)
    rng = np.random.default_rng(1)
    xs = (rng.random((4, 5, 2, 30)) < 0.3).astype(np.uint8)
    ys = rng.integers(0, 5, (4, 2))
    chip = copy.deepcopy(net)
    learner = OnChipLearner(chip, rule, lr=0.2)
    ref = build_rule(rule, copy.deepcopy(net))
    optimizer = torch.optim.SGD(list(ref.parameters()), lr=0.2)
    for x, y in zip(xs, ys):
        learner.train_batch(x, y, sync=False)
        ref.step(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y), optimizer)
    learner.sync()
    for layer, synapse in zip(chip.layers, ref.model.synapses):
        assert layer.bias is None
        np.testing.assert_allclose(layer.weight, synapse.weight.detach().numpy(), rtol=0, atol=1e-5)


def test_per_neuron_totals_while_learning_equal_the_inference_engine():
    net = from_spec("30-20-6", seed=2)
    x = (np.random.default_rng(0).random((5, 3, 30)) < 0.3).astype(np.uint8)
    inference = simulate(copy.deepcopy(net), x).counts
    learning = OnChipLearner(net, "sltt", lr=0.0).train_batch(x, np.array([0, 1, 2])).counts
    for a, b in zip(inference.layers, learning.layers):
        np.testing.assert_array_equal(a.neuron_spikes, b.neuron_spikes)
        np.testing.assert_array_equal(a.neuron_active, b.neuron_active)
        np.testing.assert_array_equal(a.input_spikes, b.input_spikes)


def _torch_heads(ref, rule):
    if rule == "ttl_bptt":
        return [[(h.weight.detach().numpy(), h.bias.detach().numpy())] for h in ref.classifiers]
    if rule == "stdl":
        heads = []
        for aux in ref.aux:
            chain = []
            for stage in ([] if aux.body is None else aux.body.stages):
                bias = None if stage.synapse.bias is None else stage.synapse.bias.detach().numpy()
                chain.append((stage.synapse.weight.detach().numpy(), bias))
            if aux.classifier is not None:
                chain.append((aux.classifier.weight.detach().numpy(), aux.classifier.bias.detach().numpy()))
            heads.append(chain)
        return heads
    return None


@pytest.mark.parametrize("rule,opts", [("bptt", {}), ("ttl_bptt", {"window": 2, "block": 1}),
                                       ("ttl_bptt", {"window": 7, "block": 3}), ("stdl", {"subnet": 1})])
@pytest.mark.parametrize("batch,reset", [(1, "soft"), (3, "zero")])
def test_windowed_rules_equal_torch_reference(rule, opts, batch, reset):
    net = _net(reset)
    g = torch.Generator().manual_seed(batch + 10)
    x = (torch.rand(7, batch, 20, generator=g) < 0.4).float()
    y = torch.randint(0, 5, (batch,), generator=g)
    ref = build_rule(rule, copy.deepcopy(net), budget_bytes=10**8, batch_size=batch, **opts)
    heads = _torch_heads(ref, rule)
    chip_net = copy.deepcopy(net)
    extra = {"budget_bytes": 10**8, "batch_size": batch} if rule == "stdl" else {}
    learner = OnChipLearner(chip_net, rule, lr=0.5, heads=heads, **opts, **extra)
    ref.step(x, y, torch.optim.SGD(list(ref.parameters()), lr=0.5))
    learner.train_batch(x.numpy().astype(np.uint8), y.numpy())
    for layer, synapse in zip(chip_net.layers, ref.model.synapses):
        np.testing.assert_allclose(layer.weight, synapse.weight.detach().numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(layer.bias, synapse.bias.detach().numpy(), rtol=0, atol=1e-5)
    if heads:
        learned = learner.heads()
        expected = [t for chain in _torch_heads(ref, rule) for t in chain]
        assert len(learned) == len(expected)
        for (_, weight, bias), (w_ref, b_ref) in zip(learned, expected):
            np.testing.assert_allclose(weight, w_ref, rtol=0, atol=1e-5)
            if b_ref is not None:
                np.testing.assert_allclose(bias, b_ref, rtol=0, atol=1e-5)
    assert max(float(np.abs(a.weight - b.weight).max()) for a, b in zip(chip_net.layers, net.layers)) > 1e-3


def test_bptt_equals_sltt_when_the_window_is_one_step():
    net = _net()
    x = (np.random.default_rng(0).random((6, 2, 20)) < 0.4).astype(np.uint8)
    y = np.array([1, 3])
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    OnChipLearner(a, "ttl_bptt", window=1, block=3).train_batch(x, y)
    OnChipLearner(b, "sltt").train_batch(x, y)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_allclose(la.weight, lb.weight, rtol=0, atol=1e-6)


def test_fixed_point_learning_on_digits_is_within_3_points_of_float():
    """Fixed point: weights on an 8-bit per-layer grid with stochastic rounding, 7-bit traces, 8-bit error
    messages. On-chip SLTT on digits (T = 8, 6 epochs): both reach > 90 % and differ by at most 3 points."""
    from hwsim.methods.data import digits

    from hwsim.learning.learner import accuracy, fit

    data = digits(steps=8, seed=0)
    xtr, ytr = (a.numpy() for a in data.split("train"))
    xte, yte = (a.numpy() for a in data.split("test"))
    scores = {}
    for precision in ("float", "fixed"):
        learner = OnChipLearner(from_spec("64-128-10", seed=0), "sltt", lr=0.5, precision=precision)
        fit(learner, xtr, ytr, epochs=6)
        scores[precision] = accuracy(learner, xte, yte)
    assert scores["float"] > 0.9 and scores["fixed"] > 0.9
    assert abs(scores["float"] - scores["fixed"]) <= 0.03, scores


def test_fixed_point_weights_stay_on_the_grid():
    net = from_spec("20-10-4", seed=1)
    learner = OnChipLearner(net, "ottt_a", lr=0.5, precision="fixed", weight_bits=4)
    x = (np.random.default_rng(0).random((6, 3, 20)) < 0.4).astype(np.uint8)
    learner.train_batch(x, np.array([0, 1, 2]))
    for ly, layer in enumerate(net.layers):
        q = layer.weight / learner.w_step[ly]
        np.testing.assert_allclose(q, np.rint(q), atol=1e-3)
        assert np.abs(np.rint(q)).max() <= 7


@pytest.mark.parametrize("rule,opts", [("bptt", {}), ("ttl_bptt", {"window": 2, "block": 1}), ("stdl", {})])
def test_fixed_point_windowed_rules_learn_on_the_grid(rule, opts):
    """BPTT, TTL-BPTT and STDL in fixed point: weights (heads included) stay on their 8-bit grids and the
    network learns as well as in float on a tiny digits run (within 5 points, far above chance)."""
    from hwsim.methods.data import digits

    from hwsim.learning.learner import accuracy, fit

    data = digits(steps=4, seed=0)
    xtr, ytr = (a.numpy()[:400] for a in data.split("train"))
    xte, yte = (a.numpy()[:200] for a in data.split("test"))
    scores = {}
    for precision in ("float", "fixed"):
        learner = OnChipLearner(from_spec("64-48-10", seed=0), rule, lr=0.5, precision=precision, **opts)
        fit(learner, xtr, ytr, epochs=3)
        scores[precision] = accuracy(learner, xte, yte)
    assert scores["fixed"] > 0.3 and abs(scores["fixed"] - scores["float"]) <= 0.05, scores
    offsets = learner.graph.w_off
    for g in range(len(offsets) - 1):
        q = learner.w[offsets[g]: offsets[g + 1]] / learner.w_step[g]
        np.testing.assert_allclose(q, np.rint(q), atol=1e-3)


def test_weights_written_per_postsynaptic_neuron_add_up():
    from hwsim.learning.feasibility import learning_counts

    net = from_spec("30-20-6", seed=2)
    for rule in ("sltt", "bptt", "stdl"):
        counts = learning_counts(net, rule, 5, 0.3, batch=2)
        for lc in counts.layers:
            assert lc.neuron_weight_updates.sum() == lc.total("weight_updates"), (rule, lc.name)
        assert counts.total("weight_updates") > 0


def _reference_net(kind, reset):
    """A dense net (20-16-12-5) or a conv net with padding, pooling and a strided conv, biases everywhere."""
    if kind == "dense":
        return _net(reset)
    from hwsim.sim.network import Conv2d

    net = from_spec("2x9x9-c5k3p1-p2-c6k3s2p1-7", seed=3)
    rng = np.random.default_rng(5)
    for layer in net.layers:
        if isinstance(layer, (Conv2d, Dense)):
            layer.bias = rng.normal(0, 0.1, layer.weight.shape[0]).astype(np.float32)
        if layer.neuron is not None:
            layer.neuron = FloatLIF(lam=0.6, v_th=1.0, reset=reset)
    return net


@pytest.mark.parametrize("net_kind", ["dense", "conv"])
@pytest.mark.parametrize("precision", ["float", "fixed"])
@pytest.mark.parametrize("rule,opts", [("bptt", {}), ("sltt", {}), ("sltt_k", {"k": 3}), ("ottt_a", {}),
                                       ("ottt_o", {}), ("ttl_bptt", {"window": 2, "block": 1}),
                                       ("stdl", {"subnet": 1})])
@pytest.mark.parametrize("reset,surrogate", [("soft", "triangle"), ("zero", "sigmoid")])
def test_kernel_equals_the_former_kernels_bit_for_bit(rule, opts, precision, net_kind, reset, surrogate):
    """The one learning kernel against the kernels it replaced (``tests/learning_reference.py``: dense online,
    dense windowed, conv graph; frozen) over three batches: every counter, byte, per-neuron and per-channel
    total and read-out equal, and weights, biases (heads included) and accumulators equal bit for bit."""
    from tests.learning_reference import FormerLearner

    base = _reference_net(net_kind, reset)
    learner = OnChipLearner(copy.deepcopy(base), rule, lr=0.5, surrogate=surrogate,
                            alpha=4.0 if surrogate == "sigmoid" else 1.0, precision=precision, seed=2, **opts)
    former = FormerLearner(learner)
    start = learner.w.copy()
    rng = np.random.default_rng(7)
    for _ in range(3):
        x = (rng.random((6, 2, *base.input_shape)) < 0.35).astype(np.uint8)
        y = rng.integers(0, int(np.prod(base.output_shape)), 2)
        result = learner.train_batch(x, y, sync=False)
        counts, readout = former.train_batch(x, y, result.learn_steps)
        np.testing.assert_array_equal(result.readout, readout)
        for lc, ref in zip(result.counts.layers, counts.layers, strict=True):
            assert (lc.name, lc.kind, lc.n_in, lc.n_out) == (ref.name, ref.kind, ref.n_in, ref.n_out)
            for name in ref.events:
                np.testing.assert_array_equal(lc.events[name], ref.events[name], err_msg=f"{lc.name} {name}")
            for kind in ref.mem_read_bytes:
                np.testing.assert_array_equal(lc.mem_read_bytes[kind], ref.mem_read_bytes[kind], err_msg=kind)
                np.testing.assert_array_equal(lc.mem_write_bytes[kind], ref.mem_write_bytes[kind], err_msg=kind)
            for name in ("neuron_spikes", "neuron_active", "input_spikes", "neuron_weight_updates",
                         "channel_weight_updates"):
                a, b = getattr(lc, name), getattr(ref, name)
                assert (a is None) == (b is None), name
                if a is not None:
                    np.testing.assert_array_equal(a, b, err_msg=f"{lc.name} {name}")
        np.testing.assert_array_equal(learner.w, former.w)
        np.testing.assert_array_equal(learner.b, former.b)
        np.testing.assert_array_equal(learner.state.grad_w, former.grad_w)
        np.testing.assert_array_equal(learner.state.grad_b, former.grad_b)
    assert result.counts.total("weight_updates") > 0 and not np.array_equal(learner.w, start)
