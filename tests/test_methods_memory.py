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


# --- the allocator beside the meter: a rule cannot keep more than the meter reports --------------------------

def _both(name, steps, rule=None, **opts):
    from methods.memory import measure

    rule = rule or build_rule(name, from_spec(NET, seed=0), batch_size=8, **opts)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(steps, 8, 32, generator=g) < 0.3).float()
    y = torch.randint(0, 10, (8,), generator=g)
    optimizer = torch.optim.SGD(list(rule.parameters()), lr=0.0) if name == "ottt_o" else None
    return measure(rule, x, y, optimizer)


def _hidden_growth(name, make=None, **opts):
    """How much more the allocator holds beyond the meter at T = 16 than at T = 4 (bytes)."""
    reports = [_both(name, steps, None if make is None else make(), **opts) for steps in (4, 16)]
    assert all(r.allocator_peak_bytes is not None and r.allocator_peak_bytes > 0 for r in reports)
    return reports[1].unmetered_bytes - reports[0].unmetered_bytes, reports


class _LeakySLTT:
    """SLTT that also stashes every step's membranes in an attribute: the meter cannot see them."""

    def __new__(cls):
        from methods.sltt import SLTT

        class Leaky(SLTT):
            def accumulate(self, x, y):
                self.stash = []
                states, result = None, None
                for t in range(x.shape[0]):
                    out, _, states = self.model.step(x[t], states, detach_state=True)
                    self.stash.append([s.u.detach().clone() for s in states])
                    result = out
                from methods.rule import step_loss

                step_loss(result, y, x.shape[0]).backward()
                return None

        from methods.models import SpikingNet

        return Leaky(SpikingNet.from_network(from_spec(NET, seed=0)))


def test_allocator_catches_state_hidden_from_the_meter():
    growth, reports = _hidden_growth("sltt", make=_LeakySLTT)
    assert reports[0].peak_bytes == reports[1].peak_bytes  # the meter is fooled: flat in T
    assert growth >= 12 * 8 * (48 + 48 + 10) * 4  # the allocator sees 12 more steps of membranes


@pytest.mark.parametrize("name,opts", [("bptt", {}), ("sltt", {}), ("sltt_k", {"k": 2}), ("ottt_a", {}),
                                       ("ottt_o", {}), ("ttl_bptt", {"window": 2}), ("stdl", {}), ("revsnn", {})])
def test_no_rule_keeps_more_than_the_meter_reports(name, opts):
    """Beyond the meter the allocator holds only transient backward buffers: the same at T = 4 and T = 16."""
    growth, _ = _hidden_growth(name, **opts)
    assert growth <= 1024, f"{name}: {growth} bytes more held outside the meter at T=16 than at T=4"
