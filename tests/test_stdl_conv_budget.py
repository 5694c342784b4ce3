"""STDL on chip, on a conv network, with a memory budget that binds: the on-chip learner chooses the same auxiliary
networks as the torch rule (a shorter run with a classifier where the longest run does not fit), starts them from
the same weights, and both learn the same over consecutive batches (weights and auxiliary heads to 1e-5)."""

import copy

import numpy as np
import pytest
import torch
from hwsim.methods import RuleError, build_rule

from hwsim.learning.learner import LearningError, OnChipLearner
from hwsim.learning.stdl_plan import plan
from hwsim.sim.network import Conv2d, Dense, Flatten, FloatLIF, Network, SumPool2d

BUDGET, BATCH = 8100, 2  # bytes; binds on subnetwork 0 (its longest run needs 8804, the run [pool] + classifier 8076)


def _net(seed=0):
    """conv(pad 1) -> sum pool -> conv(stride 2, pad 1) -> flatten -> dense, with biases."""
    rng = np.random.default_rng(seed)
    n = FloatLIF(lam=0.6, v_th=1.0)
    return Network((2, 8, 8), [
        Conv2d(rng.normal(0, 1.2, (4, 2, 3, 3)).astype(np.float32), padding=1,
               bias=rng.normal(0, 0.1, 4).astype(np.float32), neuron=n),
        SumPool2d(2, weight=0.6, neuron=n),
        Conv2d(rng.normal(0, 0.8, (6, 4, 3, 3)).astype(np.float32), stride=2, padding=1,
               bias=rng.normal(0, 0.1, 6).astype(np.float32), neuron=n),
        Flatten(),
        Dense(rng.normal(0, 0.5, (5, 24)).astype(np.float32), bias=rng.normal(0, 0.1, 5).astype(np.float32),
              neuron=n)])


def test_the_budget_binds():
    loose = plan(_net(), 1, 10**9, BATCH).auxiliary
    tight = plan(_net(), 1, BUDGET, BATCH).auxiliary
    assert [a.names for a in loose] == [("sumpool2d1", "conv2d2", "dense4"), ("conv2d2", "dense4"), ("dense4",)]
    assert [a.names for a in tight] == [("sumpool2d1", "classifier"), ("conv2d2", "dense4"), ("dense4",)]
    assert all(a.bytes <= BUDGET for a in tight) and loose[0].bytes > BUDGET


def test_conv_stdl_on_chip_with_a_binding_budget_equals_torch():
    base = _net()
    g = torch.Generator().manual_seed(1)
    batches = [((torch.rand(6, BATCH, 2, 8, 8, generator=g) < 0.3).float(), torch.randint(0, 5, (BATCH,), generator=g))
               for _ in range(3)]
    ref = build_rule("stdl", copy.deepcopy(base), budget_bytes=BUDGET, batch_size=BATCH, seed=4)
    assert ref.describe()["auxiliary"] == [["sumpool2d1", "classifier"], ["conv2d2", "dense4"], ["dense4"]]
    chip = copy.deepcopy(base)
    learner = OnChipLearner(chip, "stdl", lr=0.5, budget_bytes=BUDGET, batch_size=BATCH, seed=4)
    optimizer = torch.optim.SGD(list(ref.parameters()), lr=0.5)
    for x, y in batches:
        ref.step(x, y, optimizer)
        learner.train_batch(x.numpy().astype(np.uint8), y.numpy(), sync=False)
    learner.sync()
    moved = 0.0
    for stage in ref.model.stages:
        if not isinstance(getattr(stage.synapse, "weight", None), torch.Tensor):
            continue
        layer = chip.layers[stage.index]
        np.testing.assert_allclose(layer.weight, stage.synapse.weight.detach().numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(layer.bias, stage.synapse.bias.detach().numpy(), rtol=0, atol=1e-5)
        moved = max(moved, float(np.abs(layer.weight - base.layers[stage.index].weight).max()))
    assert moved > 1e-3  # the update is real
    expected = []
    for aux in ref.aux:
        for stage in [] if aux.body is None else aux.body.stages:
            weight = getattr(stage.synapse, "weight", None)
            expected.append(None if not isinstance(weight, torch.Tensor) else (weight, stage.synapse.bias))
        if aux.classifier is not None:
            expected.append((aux.classifier.weight, aux.classifier.bias))
    learned = learner.heads()
    assert len(learned) == len(expected)
    for (_, weight, bias), want in zip(learned, expected):
        if want is None:  # a sum-pool copy has no weights
            assert weight is None
            continue
        np.testing.assert_allclose(weight, want[0].detach().numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(bias, want[1].detach().numpy(), rtol=0, atol=1e-5)


def test_a_budget_below_every_candidate_names_the_smallest_one():
    message = (r"budget 8000 bytes is too small for any auxiliary network of subnetwork 0 \(conv2d0\): the smallest "
               r"\(sumpool2d1 \+ a classifier\) needs 8076 bytes at batch 2")
    with pytest.raises(RuleError, match=message):
        build_rule("stdl", _net(), budget_bytes=8000, batch_size=BATCH)
    with pytest.raises(LearningError, match=message):
        OnChipLearner(_net(), "stdl", budget_bytes=8000, batch_size=BATCH)
