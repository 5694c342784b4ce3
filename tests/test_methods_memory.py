"""Activation memory (the saved-tensor meter): BPTT grows with T, the online rules do not."""

import pytest
import torch

from hwsim.network import from_spec
from methods import build_rule
from methods.memory import ActivationMeter

NET = "32-48-48-10"


def _peak(name, steps, **opts):
    net = from_spec(NET, seed=0)
    rule = build_rule(name, net, batch_size=8, **opts)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(steps, 8, 32, generator=g) < 0.3).float()
    y = torch.randint(0, 10, (8,), generator=g)
    with ActivationMeter(*rule.modules()) as meter:
        info = rule.accumulate(x, y).info
    return meter.report(), info


def test_meter_counts_saved_bytes_and_skips_parameters():
    layer = torch.nn.Linear(100, 50)
    x = torch.randn(7, 100, requires_grad=True)
    with ActivationMeter(layer) as meter:
        y = torch.tanh(layer(x))  # linear saves x (parameters skipped); tanh saves its output
        assert meter.live_bytes == 7 * 100 * 4 + 7 * 50 * 4
        y.sum().backward()
    del y
    assert meter.live_bytes == 0 and meter.peak_bytes == 7 * 150 * 4


def test_bptt_memory_grows_linearly_with_T():
    peaks = [_peak("bptt", steps)[0].peak_bytes for steps in (4, 8, 16)]
    assert peaks[0] < peaks[1] < peaks[2]
    assert peaks[2] - peaks[1] == pytest.approx(2 * (peaks[1] - peaks[0]), rel=0.02)


@pytest.mark.parametrize("name,opts", [("sltt", {}), ("ottt_a", {}),
                                       ("stdl", {"subnet": 1, "budget_bytes": 10**7}), ("revsnn", {})])
def test_online_rules_memory_is_constant_in_T(name, opts):
    peaks = {_peak(name, steps, **opts)[0].peak_bytes for steps in (4, 8, 16)}
    assert len(peaks) == 1 and peaks.pop() > 0


def test_sltt_k_backward_work_scales_with_k():
    saved = []
    for k in (1, 2, 4, 8):
        report, info = _peak("sltt_k", 8, k=k)
        assert len(info["backward_steps"]) == k
        saved.append(report.saved_tensors)
    assert saved[1] == 2 * saved[0] and saved[2] == 4 * saved[0] and saved[3] == 8 * saved[0]


def test_ttl_bptt_memory_grows_with_the_window_not_T():
    by_window = [_peak("ttl_bptt", 16, window=w, block=1)[0].peak_bytes for w in (1, 2, 4)]
    assert by_window[0] < by_window[1] < by_window[2]
    by_steps = {_peak("ttl_bptt", steps, window=2, block=1)[0].peak_bytes for steps in (4, 8, 16)}
    assert len(by_steps) == 1


def test_reversible_memory_does_not_grow_with_depth():
    from methods.revsnn import Reversible, RevSNN

    x = (torch.rand(3, 4, 16) < 0.4).float()
    y = torch.randint(0, 5, (4,))

    def peak(blocks, reversible):
        model = RevSNN(16, 32, blocks=blocks, n_classes=5, reversible=reversible)
        with ActivationMeter(model) as meter:
            Reversible(model).accumulate(x, y)
        return meter.report().peak_bytes

    assert peak(2, True) == peak(8, True)
    assert peak(8, False) > peak(2, False) > peak(2, True)
