"""On-chip learning of conv + sum-pool + flatten + dense networks: every rule equals the torch reference,
counters against independent counts, fixed point on its grid, bad options refused."""

import copy

import numpy as np
import pytest
import torch
from hwsim.methods import build_rule
from hwsim.methods.neuron import Sigmoid

from hwsim.hardware.mapping import connectivity
from hwsim.learning.learner import LearningError, OnChipLearner
from hwsim.sim.engine import simulate
from hwsim.sim.network import Conv2d, Dense, Flatten, FloatLIF, Network, SumPool2d, from_spec


def _net(reset="soft", bias=True, seed=0):
    """conv(pad 1) -> sum pool -> conv(stride 2, pad 1) -> flatten -> dense: borders, strides, pooling."""
    rng = np.random.default_rng(seed)
    n = FloatLIF(lam=0.6, v_th=1.0, reset=reset)

    def b(size):
        return rng.normal(0, 0.1, size).astype(np.float32) if bias else None

    return Network((2, 8, 8), [
        Conv2d(rng.normal(0, 1.2, (4, 2, 3, 3)).astype(np.float32), padding=1, bias=b(4), neuron=n),
        SumPool2d(2, weight=0.6, neuron=n),
        Conv2d(rng.normal(0, 0.8, (6, 4, 3, 3)).astype(np.float32), stride=2, padding=1, bias=b(6), neuron=n),
        Flatten(),
        Dense(rng.normal(0, 0.5, (5, 24)).astype(np.float32), bias=b(5), neuron=n)])


def _batches(count=3, batch=2, steps=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    xs = [(torch.rand(steps, batch, 2, 8, 8, generator=g) < 0.3).float() for _ in range(count)]
    ys = [torch.randint(0, 5, (batch,), generator=g) for _ in range(count)]
    return xs, ys


def _torch_heads(ref, rule):
    """The reference's heads in the learner's order; a pool copy is (None, None)."""
    if rule == "ttl_bptt":
        return [[(h.weight.detach().numpy(), h.bias.detach().numpy())] for h in ref.classifiers]
    if rule != "stdl":
        return None
    heads = []
    for aux in ref.aux:
        chain = []
        for stage in ([] if aux.body is None else aux.body.stages):
            syn = stage.synapse
            if not hasattr(syn, "weight") or not isinstance(syn.weight, torch.Tensor):
                chain.append((None, None))
                continue
            chain.append((syn.weight.detach().numpy(), None if syn.bias is None else syn.bias.detach().numpy()))
        if aux.classifier is not None:
            chain.append((aux.classifier.weight.detach().numpy(), aux.classifier.bias.detach().numpy()))
        heads.append(chain)
    return heads


def _assert_equal_to_torch(chip, base, ref, learner=None, rule=None):
    moved = 0.0
    for stage in ref.model.stages:
        if not isinstance(getattr(stage.synapse, "weight", None), torch.Tensor):
            continue
        layer = chip.layers[stage.index]
        np.testing.assert_allclose(layer.weight, stage.synapse.weight.detach().numpy(), rtol=0, atol=1e-5)
        if layer.bias is not None:
            np.testing.assert_allclose(layer.bias, stage.synapse.bias.detach().numpy(), rtol=0, atol=1e-5)
        else:
            assert stage.synapse.bias is None
        moved = max(moved, float(np.abs(layer.weight - base.layers[stage.index].weight).max()))
    assert moved > 1e-3  # the update is real, not a no-op that matches trivially
    expected = _torch_heads(ref, rule) if rule else None
    if expected:
        learned = learner.heads()
        flat = [t for chain in expected for t in chain]
        assert len(learned) == len(flat)
        for (_, weight, bias), (w_ref, b_ref) in zip(learned, flat):
            if w_ref is None:
                assert weight is None
                continue
            np.testing.assert_allclose(weight, w_ref, rtol=0, atol=1e-5)
            if b_ref is not None:
                np.testing.assert_allclose(bias, b_ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("rule,opts", [("sltt", {}), ("sltt_k", {"k": 3}), ("ottt_a", {}), ("ottt_o", {}),
                                       ("bptt", {}), ("ttl_bptt", {"window": 2, "block": 1}),
                                       ("ttl_bptt", {"window": 3, "block": 2}), ("stdl", {"subnet": 1}),
                                       ("stdl", {"subnet": 2})])
@pytest.mark.parametrize("reset,surrogate", [("soft", "triangle"), ("zero", "sigmoid")])
def test_conv_on_chip_learning_equals_torch_over_consecutive_batches(rule, opts, reset, surrogate):
    base = _net(reset)
    xs, ys = _batches()
    sur = Sigmoid(4.0) if surrogate == "sigmoid" else None
    ref = build_rule(rule, copy.deepcopy(base), seed=1, surrogate=sur, budget_bytes=10**8, batch_size=2, **opts)
    optimizer = torch.optim.SGD(list(ref.parameters()), lr=0.5)
    chip = copy.deepcopy(base)
    learner = OnChipLearner(chip, rule, lr=0.5, surrogate=surrogate, alpha=4.0 if sur else 1.0,
                            heads=_torch_heads(ref, rule), **opts)
    for x, y in zip(xs, ys):
        ref.step(x, y, optimizer)
        steps = ref.last_backward_steps if rule == "sltt_k" else None
        learner.train_batch(x.numpy().astype(np.uint8), y.numpy(), learn_steps=steps, sync=False)
    learner.sync()
    _assert_equal_to_torch(chip, base, ref, learner, rule)


@pytest.mark.parametrize("rule", ["sltt", "ottt_o"])
def test_conv_without_biases_stays_without(rule):
    base = _net(bias=False)
    xs, ys = _batches(count=2)
    ref = build_rule(rule, copy.deepcopy(base))
    optimizer = torch.optim.SGD(list(ref.parameters()), lr=0.5)
    chip = copy.deepcopy(base)
    learner = OnChipLearner(chip, rule, lr=0.5)
    for x, y in zip(xs, ys):
        ref.step(x, y, optimizer)
        learner.train_batch(x.numpy().astype(np.uint8), y.numpy())
    _assert_equal_to_torch(chip, base, ref)


@pytest.mark.parametrize("rule", ["sltt", "ottt_a", "ottt_o", "bptt", "ttl_bptt", "stdl"])
def test_graph_kernel_counts_a_dense_network_as_the_dense_kernels_do(rule):
    """A Flatten in front of a dense network changes nothing: every counter, byte count and per-neuron total
    and every weight equal those of the network without it (the former dense kernels, which the one kernel
    equals bit for bit, ``tests/test_learning.py``)."""
    rng = np.random.default_rng(4)
    layers = [Dense(rng.normal(0, 3 / np.sqrt(a), (b, a)).astype(np.float32),
                    bias=rng.normal(0, .1, b).astype(np.float32), neuron=FloatLIF(lam=0.6))
              for a, b in ((20, 16), (16, 12), (12, 5))]
    dense = Network(20, layers)
    graph = Network(20, [Flatten()] + copy.deepcopy(layers))
    x = (rng.random((6, 3, 20)) < 0.4).astype(np.uint8)
    y = np.array([0, 3, 4])
    opts = {"window": 2} if rule == "ttl_bptt" else {}
    a = OnChipLearner(dense, rule, lr=0.5, **opts).train_batch(x, y).counts
    learner = OnChipLearner(graph, rule, lr=0.5, **opts)
    b = learner.train_batch(x, y).counts
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        for name in la.events:
            np.testing.assert_array_equal(la.events[name], lb.events[name], err_msg=f"{rule} {la.name} {name}")
        for kind in la.mem_read_bytes:
            np.testing.assert_array_equal(la.mem_read_bytes[kind], lb.mem_read_bytes[kind], err_msg=kind)
            np.testing.assert_array_equal(la.mem_write_bytes[kind], lb.mem_write_bytes[kind], err_msg=kind)
        np.testing.assert_array_equal(la.neuron_weight_updates, lb.neuron_weight_updates)
    for la, lb in zip(dense.layers, graph.layers[1:]):
        np.testing.assert_allclose(la.weight, lb.weight, rtol=0, atol=1e-6)


def test_conv_learning_counters_against_the_structure():
    """SLTT, one sample: the forward counts equal the inference engine's; error MACs of a layer equal the
    structural fan-out (``hwsim.hardware.mapping.connectivity``) of the source neurons with g' != 0 (triangle:
    |u - V_th| < 1); gradient ops of the layers feeding a hidden layer equal the pairs (presynaptic spike,
    synapse, postsynaptic g' != 0) under the read-out; the dense read-out's equal its input spikes x classes."""
    base = _net()
    x = (np.random.default_rng(3).random((5, 1, 2, 8, 8)) < 0.3).astype(np.uint8)
    sim = simulate(copy.deepcopy(base), x, record=True)
    counts = OnChipLearner(copy.deepcopy(base), "sltt", lr=0.0).train_batch(x, np.array([2])).counts
    layers = [(layer, shapes) for layer, shapes in zip(base.layers, base.layer_shapes()) if layer.neuron is not None]
    spikes_in = [x.reshape(5, -1)] + [s.reshape(5, -1) for s in sim.spikes[:-1]]
    active = [(np.abs(m.reshape(5, -1) - 1.0) < 1.0) for m in sim.membranes]
    for k, ((layer, (i_shape, o_shape)), lc, inf) in enumerate(zip(layers, counts.layers, sim.counts.layers)):
        for name in ("spikes_in", "spikes_out", "sop", "neuron_updates", "neuron_updates_active"):
            np.testing.assert_array_equal(lc.events[name], inf.events[name], err_msg=name)
        conn = connectivity(layer, i_shape, o_shape)
        if k > 0:
            fan_out = np.asarray(conn.sum(axis=1)).ravel() if conn is not None else np.full(lc.n_in, lc.n_out)
            np.testing.assert_array_equal(lc.events["error_macs"], active[k - 1] @ fan_out, err_msg=layer.name)
        if isinstance(layer, SumPool2d):
            assert lc.total("grad_ops") == 0 and lc.total("weight_updates") == 0
        elif conn is None:
            np.testing.assert_array_equal(lc.events["grad_ops"], spikes_in[k].sum(1) * lc.n_out)
        else:  # exact under the read-out (its error is never zero); below, g' != 0 is necessary, not sufficient
            pairs = np.array([spikes_in[k][t] @ (conn @ active[k][t]) for t in range(5)])
            if k == len(layers) - 2:
                np.testing.assert_array_equal(lc.events["grad_ops"], pairs, err_msg=layer.name)
            else:
                assert np.all(lc.events["grad_ops"] <= pairs) and lc.total("grad_ops") > 0
    conv = counts.layers[0]
    assert conv.channel_weight_updates.shape == (4,)
    assert conv.channel_weight_updates.sum() == conv.total("weight_updates") <= 4 * 2 * 3 * 3
    assert conv.total("weight_updates") > 0
    assert counts.layers[-1].neuron_weight_updates.sum() == counts.layers[-1].total("weight_updates")


def test_conv_trace_updates_and_bytes():
    """OTTT keeps one trace per input of a learning layer (none for a pool, none on the network input, which
    the first layer uses raw as the paper's code does): trace updates = inputs x steps x batch; bytes follow
    the counters (float32: 4 B per value)."""
    base = _net()
    x = (np.random.default_rng(3).random((4, 2, 2, 8, 8)) < 0.3).astype(np.uint8)
    counts = OnChipLearner(base, "ottt_a").train_batch(x, np.array([1, 2])).counts
    for index, lc in enumerate(counts.layers):
        expected = 0 if lc.kind == "sumpool2d" or index == 0 else lc.n_in * 2
        assert lc.events["trace_updates"].tolist() == [expected] * 4, lc.name
        assert lc.mem_write_bytes["traces"].sum() == lc.total("trace_updates") * 4
        assert lc.mem_read_bytes["grad_accum"].sum() == (lc.total("grad_ops") + lc.total("weight_updates")) * 4


def test_fixed_point_conv_learning_stays_on_the_grid_and_learns():
    """Fixed point (8-bit weights, 7-bit traces, 8-bit errors): every weight stays on its layer's grid, and
    on a separable toy task (class = which half of the frame is active) SLTT and OTTT learn it as float does."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 96)
    x = (rng.random((96, 4, 1, 6, 6)) < 0.08).astype(np.uint8)
    for i, label in enumerate(y):
        half = (slice(None), 0, slice(0, 3) if label == 0 else slice(3, 6), slice(None))
        x[i][half] |= (rng.random((4, 3, 6)) < 0.5).astype(np.uint8)
    from hwsim.learning.learner import accuracy, fit

    for rule in ("sltt", "ottt_a"):
        scores = {}
        for precision in ("float", "fixed"):
            learner = OnChipLearner(from_spec("1x6x6-c4k3p1-p2-2", seed=1), rule, lr=0.3, precision=precision)
            fit(learner, x[:64], y[:64], epochs=4, batch_size=8)
            scores[precision] = accuracy(learner, x[64:], y[64:])
            if precision == "fixed":
                for g in range(len(learner.nodes)):
                    part = learner.w[learner.graph.w_off[g]: learner.graph.w_off[g + 1]]
                    q = part / learner.w_step[g]
                    np.testing.assert_allclose(q, np.rint(q), atol=1e-3)
                    assert np.abs(np.rint(q)).max(initial=0) <= 127
        assert scores["fixed"] >= 0.8 and scores["float"] >= 0.8, (rule, scores)


def test_conv_rule_options_that_cannot_apply():
    net = _net()
    with pytest.raises(LearningError, match="ttl_bptt: block/subnetwork size 3 does not fit the network's 4 neuron"):
        OnChipLearner(net, "ttl_bptt", block=3)
    with pytest.raises(LearningError, match="STDL subnetwork size must be in 1..3 for a network of 4 neuron"):
        OnChipLearner(net, "stdl", subnet=4)
    with pytest.raises(LearningError, match="STDL memory budget 16 bytes is too small for any auxiliary network"):
        OnChipLearner(net, "stdl", budget_bytes=16)
    with pytest.raises(LearningError, match="K=9 is larger than the number of time steps T=3"):
        OnChipLearner(net, "sltt_k", k=9).train_batch(np.zeros((3, 1, 2, 8, 8), np.uint8), np.array([0]))
    with pytest.raises(LearningError, match="TTL-BPTT window k=4 is longer than T=3"):
        OnChipLearner(net, "ttl_bptt", window=4).train_batch(np.zeros((3, 1, 2, 8, 8), np.uint8), np.array([0]))


# ---- mapping, feasibility and costs of conv learning ------------------------------------------------------
def _chip(sharing, tmp_path=None, **capacity):
    """Loihi's profile with the given conv weight sharing and capacity overrides (optionally as a file)."""
    import yaml
    from hwsim.chips.schema import Chip

    from hwsim import chips

    data = yaml.safe_load((chips.CHIP_DIR / "loihi.yaml").read_text())
    data["conv"]["weight_sharing"] = sharing
    data["capacity"].update(capacity)
    if tmp_path is None:
        return Chip.model_validate(data)
    path = tmp_path / f"loihi_{sharing}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


CONV_NET = "2x8x8-c4k3p1-4"  # conv: 4 channels x 8 x 8 = 256 neurons, kernel 2 x 3 x 3 = 18 weights


def test_conv_layers_are_placed_by_channel_tiles_with_the_chips_weight_sharing():
    """256 conv neurons on cores of 100: blocks of 86 (channel planes of 64): neurons 0-85 (channels 0, 1),
    86-171 (1, 2), 172-255 (2, 3)."""
    from hwsim.hardware.mapping import map_network

    net = from_spec(CONV_NET, seed=0)
    stored = {}
    for sharing in ("per_core_copy", "shared_kernel", "expanded"):
        mapping = map_network(net, _chip(sharing, neurons_per_core=100))
        conv = mapping.layers[0]
        assert conv.cores == 3 and conv.neurons_per_core.tolist() == [86, 86, 84]
        stored[sharing] = conv.synapses_per_core.tolist()
        assert any(f"conv weights on loihi: {sharing}" in a for a in mapping.assumptions)
    assert stored["per_core_copy"] == [2 * 18, 2 * 18, 2 * 18]
    assert stored["shared_kernel"] == [4 * 18, 0, 0]
    assert sum(stored["expanded"]) == map_network(net, _chip("expanded")).layers[0].synapses  # every connection


def test_conv_weight_writes_per_core_follow_the_copies():
    """A shared kernel weight is written once per stored copy: channels (1, 2, 3, 4) writes ->
    per-core copies (3, 5, 7); one shared kernel (3, 3, 4) (each channel on its first core)."""
    from hwsim.hardware.mapping import _LayerGeometry, conv_weight_writes, neuron_layers

    layer, i_shape, o_shape = neuron_layers(from_spec(CONV_NET, seed=0))[0]
    writes = np.array([1, 2, 3, 4])
    copy_geo = _LayerGeometry(layer, i_shape, o_shape, "per_core_copy")
    assert conv_weight_writes(copy_geo, 3, writes).tolist() == [3, 5, 7]
    shared_geo = _LayerGeometry(layer, i_shape, o_shape, "shared_kernel")
    assert conv_weight_writes(shared_geo, 3, writes).tolist() == [3, 3, 4]


def test_conv_learning_energy_prices_every_written_copy():
    """Loihi prices weight updates: on a per-core-copy chip the conv layer's write energy is its writes per
    core (channels' writes x the cores that hold them) x the figure, more than the logical count."""
    from hwsim import chips
    from hwsim.hardware.cost import estimate
    from hwsim.hardware.mapping import map_network
    from hwsim.learning.feasibility import learning_counts

    net = from_spec(CONV_NET, seed=0)
    counts = learning_counts(net, "sltt", 6, 0.3, batch=2, seed=1)
    chip = _chip("per_core_copy", neurons_per_core=100)
    mapping = map_network(net, chip, counts)
    conv = mapping.layers[0]
    expected = int(channels_per_core_writes(counts.layers[0].channel_weight_updates))
    assert int(conv.weight_updates_per_core.sum()) == expected > counts.layers[0].total("weight_updates")
    report = estimate(net, counts, chip, mapping)
    written = expected + counts.layers[1].total("weight_updates")
    assert report.energy_by_action_j["weight_update"] == pytest.approx(
        written * chips.load("loihi").energy.weight_update_pj * 1e-12, rel=1e-12)


def channels_per_core_writes(writes):
    """Cores 0..2 host channels (0, 1), (1, 2), (2, 3): the copies of each channel's writes."""
    return writes[0] + 2 * writes[1] + 2 * writes[2] + writes[3]


def test_conv_learning_memory_per_core_follows_the_stored_weights():
    from hwsim.hardware.mapping import core_load, neuron_layers
    from hwsim.learning.feasibility import learning_state

    net = from_spec("2x8x8-c4k3p1", seed=0)  # the conv layer alone
    chip = _chip("per_core_copy", neurons_per_core=100)
    memory, split, assumptions, cores = learning_state(net, chip, "ottt_a", 8)
    assert cores == 3 and memory == sum(split.values())
    layer, i_shape, o_shape = neuron_layers(net)[0]
    neurons, weights, axons = core_load(layer, i_shape, o_shape, 3, "per_core_copy")
    assert (neurons, weights) == (86, 36)
    assert split["weights"] == weights and split["grad_accum"] == 2 * weights  # 8-bit weights, 16-bit accumulators
    assert split["errors"] == 2 * neurons and split["traces"] == axons  # 1-byte traces
    assert any("conv learning state" in a for a in assumptions)


def test_a_conv_net_too_large_for_a_core_names_the_limit(tmp_path, capsys):
    """One channel's kernel (64 x 3 x 3 = 576 weights) exceeds a core holding 512: the estimate says so in
    one line, and the feasibility verdict names the limit."""
    from hwsim import chips
    from hwsim.cli.main import main
    from hwsim.learning.feasibility import check

    path = _chip("per_core_copy", tmp_path, synaptic_memory_bytes_per_core=512)
    net = from_spec("64x6x6-c8k3p1-4", seed=0)
    verdict = check(net, chips.load(str(path)), "sltt", 4)
    assert "synapses_per_core: layer conv2d0 needs 576 kernel weights (per_core_copy) on a core" in verdict.verdict
    assert main(["estimate", "--net", "64x6x6-c8k3p1-4", "--chip", str(path), "-T", "3"]) == 0
    notes = " ".join(capsys.readouterr().out.split()).split("loihi: does not fit: ")[1:]  # notes are wrapped
    assert notes and "needs 576 kernel weights (per_core_copy) on a core" in notes[0] and "chip holds 512" in notes[0]


def test_estimate_and_feasibility_take_conv_nets(capsys):
    import json

    from hwsim.cli.main import main

    assert main(["estimate", "--net", "2x8x8-c4k3p1-p2-4", "--chip", "loihi", "--rule", "ottt_a", "-T", "4",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    conv = out["counts"][0]
    assert conv["kind"] == "conv2d" and conv["grad_ops"] > 0 and conv["trace_updates"] == 0  # raw input
    assert out["counts"][2]["trace_updates"] > 0 and out["counts"][2]["error_macs"] > 0
    assert out["chips"][0]["energy_j"] > 0
    assert main(["feasibility", "--net", "2x8x8-c4k3p1-p2-4", "--chips", "loihi,spinnaker2", "--rules", "sltt,stdl",
                 "-T", "4", "--json"]) == 0
    verdicts = json.loads(capsys.readouterr().out)
    assert len(verdicts) == 4 and all(v["memory_per_core_bytes"] > 0 for v in verdicts)
    assert all("energy: no on-chip learning kernel" not in " ".join(v["unpriced"]) for v in verdicts)


@pytest.mark.parametrize("rule", ["sltt_k", "ottt_o", "bptt", "ttl_bptt", "stdl"])
def test_fixed_point_conv_rules_keep_every_weight_on_its_grid(rule):
    """Every rule in fixed point on a conv net: weights (heads included) move and stay on their 8-bit grids."""
    net = from_spec("2x8x8-c4k3p1-p2-c6k3p1-4", seed=0)
    x = (np.random.default_rng(0).random((5, 3, 2, 8, 8)) < 0.3).astype(np.uint8)
    learner = OnChipLearner(net, rule, precision="fixed", lr=0.5, window=2)
    before = learner.w.copy()
    counts = learner.train_batch(x, np.array([0, 1, 2])).counts
    assert counts.total("weight_updates") > 0 and not np.array_equal(before, learner.w)
    for g in range(len(learner.nodes)):
        q = learner.w[learner.graph.w_off[g]: learner.graph.w_off[g + 1]] / learner.w_step[g]
        np.testing.assert_allclose(q, np.rint(q), atol=1e-3)
        assert np.abs(np.rint(q)).max(initial=0) <= 127


@pytest.mark.parametrize("rule,opts", [("sltt", {}), ("ottt_a", {}), ("ottt_o", {}), ("bptt", {}),
                                       ("ttl_bptt", {"window": 2}), ("stdl", {}), ("sltt", {"precision": "fixed"}),
                                       ("ottt_a", {"precision": "fixed"})])
def test_channels_last_conv_kernel_equals_the_scatter_reference(rule, opts):
    """The kernel (conv layers channels last inside) against its former self (``tests/conv_learning_reference``:
    a scatter over each input's fan-out, run as the former learner ran it) on a graph with padding, pooling
    and a strided conv, two batches: every counter and per-neuron / per-channel total equal, weights and biases
    equal to float rounding."""
    from tests import conv_learning_reference as reference
    from tests.learning_reference import FormerLearner

    base = from_spec("2x9x9-c5k3p1-p2-c6k3s2p1-7", seed=3)
    rng = np.random.default_rng(5)
    for layer in base.layers:
        if isinstance(layer, (Conv2d, Dense)):
            layer.bias = rng.normal(0, 0.1, layer.weight.shape[0]).astype(np.float32)
    xs = [(rng.random((6, 2, 2, 9, 9)) < 0.3).astype(np.uint8) for _ in range(2)]
    ys = [rng.integers(0, 7, 2) for _ in range(2)]
    net = copy.deepcopy(base)
    learner = OnChipLearner(net, rule, lr=0.5, **opts)
    scatter = FormerLearner(learner, conv_kernel=reference.train_graph)
    counts, ref_counts = [], []
    for x, y in zip(xs, ys):
        result = learner.train_batch(x, y)
        counts.append(result.counts)
        ref_counts.append(scatter.train_batch(x, y, result.learn_steps)[0])
    assert np.abs(net.layers[0].weight - base.layers[0].weight).max() > 1e-4
    for batch, ref_batch in zip(counts, ref_counts):
        for lc, ref in zip(batch.layers, ref_batch.layers, strict=True):
            for name in ref.events:
                np.testing.assert_array_equal(lc.events[name], ref.events[name], err_msg=f"{rule} {lc.name} {name}")
            for name in ("neuron_spikes", "neuron_active", "input_spikes", "neuron_weight_updates",
                         "channel_weight_updates"):
                np.testing.assert_array_equal(getattr(lc, name), getattr(ref, name), err_msg=f"{lc.name} {name}")
            assert lc.total("grad_ops") > 0 or lc.kind == "sumpool2d"
    from hwsim.learning.conv_graph import unpack

    for node, (weight, bias) in zip(learner.nodes, unpack(learner.nodes, learner.graph, scatter.w, scatter.b)):
        if node.layer_index >= 0 and weight is not None:  # the scatter run's weights in the network's shapes
            layer = net.layers[node.layer_index]
            np.testing.assert_allclose(layer.weight, weight, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(layer.bias, bias, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(learner.w, scatter.w, rtol=1e-5, atol=1e-7)  # heads included
    np.testing.assert_allclose(learner.b, scatter.b, rtol=1e-5, atol=1e-7)
