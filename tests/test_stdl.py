"""STDL: the auxiliary network a budget admits, its own weights (STDL is not SLTT), torch = on chip."""

import copy

import numpy as np
import pytest
import torch
from hwsim.methods import RuleError, build_rule

from hwsim.cli.main import main
from hwsim.learning.learner import LearningError, OnChipLearner
from hwsim.learning.stdl_plan import STDLError, plan, training_bytes
from hwsim.sim.network import from_spec

HAND = "10-8-6-4"  # dense0 10->8, dense1 8->6, dense2 6->4 (the read-out); no biases


def test_plan_equals_the_hand_worked_example():
    """Batch 2, float32, no biases; bytes = 4 x (3 x parameters + state + largest working set + loss 2 B C), where
    the loss term is 2 x 2 x 4 = 16 values (hwsim/learning/stdl_plan.py). Subnetwork 0 (dense0, 8 spikes out):
      [dense1, dense2]      3 x (48 + 24) + 2 x 2 x (6 + 4) + max(dense1 back: 2 x (6 + 8) + 48 = 76,
                            dense2 back: 2 x (4 + 6) + 24 = 44, forward 2 x 2 x 6 = 24) + 16   = 348 -> 1392 bytes
      [dense1] + classifier 3 x (48 + 28) + 2 x 2 x 6 + max(76, classifier 2 x (4 + 6) + 28 = 48) + 16
                                                                                            = 344 -> 1376 bytes
      classifier alone      3 x 36 + (2 x (4 + 8) + 36 = 60) + 16                         = 184 ->  736 bytes
    Subnetwork 1 (dense1): [dense2] 3 x 24 + 2 x 2 x 4 + (2 x (4 + 6) + 24 = 44) + 16 = 148 -> 592 bytes."""
    net = from_spec(HAND, seed=0)
    assert training_bytes(net, [1, 2], False, 2) == 1392
    assert training_bytes(net, [1], True, 2) == 1376
    tight = plan(net, 1, 1000, 2)
    assert [a.names for a in tight.auxiliary] == [("classifier",), ("dense2",)]
    assert [a.bytes for a in tight.auxiliary] == [736, 592]
    loose = plan(net, 1, 1392, 2)
    assert [a.names for a in loose.auxiliary] == [("dense1", "dense2"), ("dense2",)]
    assert plan(net, 2, 1000, 2).subnets == ((0, 2), (2, 3))
    with pytest.raises(STDLError, match="budget 735 bytes is too small for any auxiliary network of subnetwork 0 "
                                        r"\(dense0\): the smallest \(a classifier alone\) needs 736 bytes at batch 2"):
        plan(net, 1, 735, 2)


CONV = "2x16x16-c16k3p1-c16k3p1-p2-c32k3p1-p2-c32k3p1-10"  # 16- and 32-channel conv layers, pools, a read-out


@pytest.mark.parametrize("spec,budget", [("64-128-128-10", None), ("64-128-128-10", 10**9), (CONV, 2_000_000),
                                         (CONV, 10**9)])
def test_plan_matches_the_allocator(spec, budget):
    """Each chosen auxiliary network, trained alone as STDL trains it, takes its planned bytes within 10 % by the
    allocator (parameters, gradients and momentum counted tensor by tensor, plus the allocator peak of a batch)."""
    from hwsim.methods.stdl import measure_auxiliary

    rule = build_rule("stdl", from_spec(spec, seed=0), budget_bytes=budget, batch_size=32)
    for index, aux in enumerate(rule.plan.auxiliary):
        got = measure_auxiliary(rule, index)
        assert abs(got["measured"] / got["planned"] - 1) <= 0.10, (aux.names, got)
    if budget == 2_000_000:  # the budget binds: classifiers where the longest runs do not fit
        assert [a.names[-1] for a in rule.plan.auxiliary][:2] == ["classifier", "classifier"]


def test_the_conv_budget_message_names_a_size_that_works():
    """The smallest need named by the refusal is a budget that is accepted, and the auxiliary network it admits
    takes no more than that by the allocator (within 10 %)."""
    from hwsim.methods.stdl import measure_auxiliary

    net = from_spec(CONV, seed=0)
    with pytest.raises(RuleError, match="needs") as refused:
        build_rule("stdl", net, budget_bytes=1_000_000, batch_size=32)
    named = int(str(refused.value).split("needs ")[1].split(" bytes")[0])
    rule = build_rule("stdl", net, budget_bytes=named, batch_size=32)
    assert rule.plan.auxiliary[0].bytes == named
    assert measure_auxiliary(rule, 0)["measured"] <= 1.10 * named


def _batches(count, steps, batch, n_in, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [((torch.rand(steps, batch, n_in, generator=g) < 0.3).float(), torch.randint(0, 10, (batch,), generator=g))
            for _ in range(count)]


@pytest.mark.parametrize("budget", [None, 1 << 20])
def test_stdl_is_not_sltt_after_training(budget):
    """With the default budget (auxiliary networks: a classifier, then a mirror of dense2) and with a budget that
    admits every following layer, the auxiliary layers have their own weights, so STDL trains differently."""
    net = from_spec("64-128-128-10", seed=0)
    stdl = build_rule("stdl", copy.deepcopy(net), batch_size=32, budget_bytes=budget)
    sltt = build_rule("sltt", copy.deepcopy(net))
    assert len(stdl.aux) == 2
    for aux, stage in zip(stdl.aux, stdl.model.stages[1:]):  # never a copy of the mirrored layer
        if aux.body is not None:
            assert not torch.allclose(aux.body.synapses[0].weight, stage.synapse.weight)
    optimizers = [torch.optim.SGD(list(r.parameters()), lr=0.1, momentum=0.9) for r in (stdl, sltt)]
    for x, y in _batches(10, 4, 32, 64):
        for rule, optimizer in zip((stdl, sltt), optimizers):
            rule.step(x, y, optimizer)
    pairs = zip(stdl.model.parameters(), sltt.model.parameters())
    difference = max(float((a - b).detach().abs().max()) for a, b in pairs)
    assert difference > 1e-3


def test_default_budget_binds_on_the_bench_network():
    info = build_rule("stdl", from_spec("64-128-128-10", seed=0), batch_size=32).describe()
    assert info["auxiliary"] == [["classifier"], ["dense2"]]  # [dense1, dense2] would need 348,160 bytes
    assert plan(from_spec("64-128-128-10"), 1, 10**9, 32).auxiliary[0].bytes == 348160


def test_on_chip_stdl_with_a_budget_equals_torch_over_several_batches():
    rng = np.random.default_rng(0)
    net = from_spec("20-16-16-12-10", seed=3)
    for layer in net.layers:
        layer.bias = rng.normal(0, 0.1, layer.n_out).astype(np.float32)
    budget, batch = 4000, 3
    ref = build_rule("stdl", copy.deepcopy(net), budget_bytes=budget, batch_size=batch, seed=4)
    assert ref.describe()["auxiliary"] == [["classifier"], ["classifier"], ["dense3"]]  # the budget binds
    chip = copy.deepcopy(net)
    learner = OnChipLearner(chip, "stdl", lr=0.3, budget_bytes=budget, batch_size=batch, seed=4)
    optimizer = torch.optim.SGD(list(ref.parameters()), lr=0.3)
    for x, y in _batches(4, 7, batch, 20):
        ref.step(x, y, optimizer)
        learner.train_batch(x.numpy().astype(np.uint8), y.numpy(), sync=False)
    learner.sync()
    for layer, synapse in zip(chip.layers, ref.model.synapses):
        np.testing.assert_allclose(layer.weight, synapse.weight.detach().numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(layer.bias, synapse.bias.detach().numpy(), rtol=0, atol=1e-5)
    expected = []
    for aux in ref.aux:
        for stage in [] if aux.body is None else aux.body.stages:
            expected.append((stage.synapse.weight, stage.synapse.bias))
        if aux.classifier is not None:
            expected.append((aux.classifier.weight, aux.classifier.bias))
    learned = learner.heads()
    assert len(learned) == len(expected) == 3
    for (_, weight, bias), (w_ref, b_ref) in zip(learned, expected):
        np.testing.assert_allclose(weight, w_ref.detach().numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(bias, b_ref.detach().numpy(), rtol=0, atol=1e-5)
    assert max(float(np.abs(a.weight - b.weight).max()) for a, b in zip(chip.layers, net.layers)) > 1e-3


def test_a_budget_too_small_is_one_clear_line(capsys):
    net = from_spec(HAND, seed=0)
    message = "budget 100 bytes is too small for any auxiliary network of subnetwork 0"
    with pytest.raises(RuleError, match=message):
        build_rule("stdl", net, budget_bytes=100, batch_size=2)
    with pytest.raises(LearningError, match=message):
        OnChipLearner(net, "stdl", budget_bytes=100, batch_size=2)
    assert main(["train", "--rules", "stdl", "--budget-bytes", "100", "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "budget 100 bytes is too small for any auxiliary network" in err and err.count("\n") == 1


def test_feasibility_and_on_chip_counts_honour_the_budget():
    from hwsim import chips
    from hwsim.learning.feasibility import FeasibilityError, learning_counts, learning_state

    net = from_spec("64-128-128-10", seed=0)
    loihi = chips.load("loihi")
    _, loose, _, _ = learning_state(net, loihi, "stdl", 8, budget_bytes=10**7)
    _, tight, _, _ = learning_state(net, loihi, "stdl", 8)  # default budget: a classifier behind dense0
    assert tight["aux"] < loose["aux"]
    heads = {budget: [lc.name for lc in learning_counts(net, "stdl", 4, 0.3, budget_bytes=budget).layers[3:]]
             for budget in (None, 10**7)}
    assert heads == {None: ["dense0.head0", "dense1.head0"],
                     10**7: ["dense0.head0", "dense0.head1", "dense1.head0"]}
    with pytest.raises(FeasibilityError, match="budget 100 bytes is too small"):
        learning_state(net, loihi, "stdl", 8, budget_bytes=100)


def test_one_default_budget_everywhere():
    """Torch training, the study, the CLI and the on-chip learner share hwsim.learning.stdl_plan's default budget."""
    from hwsim.methods.train import TrainConfig

    from hwsim.cli.main import build_parser
    from hwsim.learning.registry import OPTIONS
    from hwsim.learning.stdl_plan import DEFAULT_BUDGET_BYTES
    from hwsim.study.pipeline import StudyConfig

    build_parser()  # the command line's option flags come from the registry (default: not given)
    assert TrainConfig("stdl").budget_bytes == StudyConfig().options.budget_bytes == DEFAULT_BUDGET_BYTES
    assert OPTIONS["budget_bytes"].default == DEFAULT_BUDGET_BYTES


def test_a_study_whose_budget_admits_no_auxiliary_network_stops_before_training(tmp_path, capsys):
    from hwsim.cli.main import main

    config = tmp_path / "s.yaml"
    config.write_text("dataset: dvs_bars\nnetwork: 2x16x16-c4k3p1-p2-4\ntrain_rules: [sltt, stdl]\n")
    assert main(["study", "--config", str(config), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "budget_bytes: STDL memory budget 131072 bytes is too small" in err
    assert not (tmp_path / "out" / "stages").exists()  # nothing trained


def test_a_study_that_only_analyses_stdl_leaves_it_out_with_the_reason():
    from hwsim.study.pipeline import StudyConfig

    config = StudyConfig(network="64-768-10")  # a classifier alone on 768 neurons needs more than 128 KiB
    rules, skipped = config.analysed_rules()
    assert "stdl" not in rules and "sltt" in rules
    assert "budget_bytes: STDL memory budget 131072 bytes is too small" in skipped["stdl"]
