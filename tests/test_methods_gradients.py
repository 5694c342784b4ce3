"""Each rule's gradients against an independent computation written out in the test."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hwsim.methods import build_rule

from hwsim.sim.network import Dense, FloatLIF, Network, from_spec


@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons need no float32 rounding noise; restore the default afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _net(sizes=(12, 10, 8, 4), lam=0.6, reset="soft", seed=0):
    rng = np.random.default_rng(seed)
    layers = [Dense(rng.normal(0, 1.2 / np.sqrt(a), (b, a)), bias=rng.normal(0, 0.1, b),
                    neuron=FloatLIF(lam=lam, v_th=0.5, reset=reset)) for a, b in zip(sizes[:-1], sizes[1:])]
    return Network(sizes[0], layers)


def _data(steps=6, batch=5, n_in=12, classes=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(steps, batch, n_in, generator=g) < 0.5).double()
    return x, torch.randint(0, classes, (batch,), generator=g)


def _grads(rule):
    return [p.grad.clone() for p in rule.model.parameters()]


def _params(net):
    return [(torch.tensor(layer.weight, dtype=torch.float64), torch.tensor(layer.bias, dtype=torch.float64))
            for layer in net.layers]


def _rule(name, net, **opts):
    rule = build_rule(name, net, **opts)
    rule.model.double()
    return rule


def test_bptt_equals_autograd_of_the_unrolled_network():
    net, (x, y) = _net(), _data()
    rule = _rule("bptt", net)
    rule.accumulate(x, y)
    # independent unrolled network: plain tensors, a straight-through-free spike with the triangle surrogate
    params = [(w.clone().requires_grad_(), b.clone().requires_grad_()) for w, b in _params(net)]

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v >= 0).double()

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            return g * torch.clamp(1 - v.abs(), min=0)

    u = [None] * 3
    s = [None] * 3
    loss = 0
    for t in range(x.shape[0]):
        inp = x[t]
        for k, (w, b) in enumerate(params):
            current = inp @ w.T + b
            u[k] = current if u[k] is None else 0.6 * (u[k] - 0.5 * s[k]) + current
            s[k] = Spike.apply(u[k] - 0.5)
            inp = s[k]
        loss = loss + F.cross_entropy(current, y) / x.shape[0]
    loss.backward()
    expected = [g for w, b in params for g in (w.grad, b.grad)]
    for got, want in zip(_grads(rule), expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def _forward_values(net, x, ottt=False):
    """Per step: each layer's input (spikes, or OTTT traces), u, and the read-out, with no autograd."""
    params = _params(net)
    lam = 0.6
    u, s, trace = [None] * 3, [None] * 3, [None] * 3
    steps = []
    for t in range(x.shape[0]):
        inp, record = x[t], []
        for k, (w, b) in enumerate(params):
            trace[k] = inp if trace[k] is None or k == 0 else lam * trace[k] + inp  # no trace on the input
            current = inp @ w.T + b
            u[k] = current if u[k] is None else lam * (u[k] - 0.5 * s[k]) + current
            s[k] = (u[k] >= 0.5).double()
            record.append((trace[k] if ottt else inp, u[k].clone(), current))
            inp = s[k]
        steps.append(record)
    return steps


def _explicit(net, x, y, ottt=False, only=None):
    """dW^l = sum_t delta^l[t] a^{l-1}[t]^T with delta^L = dCE/do / T and
    delta^l = g'(u^l - V_th) * (W^{l+1}^T delta^{l+1}) (a = spikes for SLTT, traces for OTTT); ``only``
    restricts the sum to those steps (SLTT-K)."""
    params = _params(net)
    grads = [[torch.zeros_like(w), torch.zeros_like(b)] for w, b in params]
    steps = x.shape[0]
    for t, record in enumerate(_forward_values(net, x, ottt)):
        if only is not None and t not in only:
            continue
        readout = record[-1][2]
        delta = (torch.softmax(readout, 1) - F.one_hot(y, 4).double()) / (len(y) * steps)
        for k in range(2, -1, -1):
            a_prev, u_k, _ = record[k]
            if k < 2:
                delta = torch.clamp(1 - (u_k - 0.5).abs(), min=0) * (delta @ params[k + 1][0])
            grads[k][0] += delta.T @ a_prev
            grads[k][1] += delta.sum(0)
    return [g for pair in grads for g in pair]


def test_sltt_equals_the_explicit_formula():
    net, (x, y) = _net(), _data()
    rule = _rule("sltt", net)
    rule.accumulate(x, y)
    for got, want in zip(_grads(rule), _explicit(net, x, y)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_ottt_equals_the_explicit_formula_with_traces():
    net, (x, y) = _net(), _data()
    rule = _rule("ottt_a", net)
    rule.accumulate(x, y)
    for got, want in zip(_grads(rule), _explicit(net, x, y, ottt=True)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert not all(torch.allclose(a, b) for a, b in zip(_grads(rule), _explicit(net, x, y)))


def test_sltt_k_backpropagates_only_at_its_k_steps():
    net, (x, y) = _net(), _data(steps=8)
    rule = _rule("sltt_k", net, k=3, seed=5)
    rule.accumulate(x, y)
    chosen = rule.last_backward_steps
    assert len(chosen) == 3 and len(set(chosen)) == 3
    # the same gradient: the explicit formula restricted to those steps (the loss still divided by T)
    for got, want in zip(_grads(rule), _explicit(net, x, y, only=set(chosen))):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset", ["soft", "zero"])
def test_ttl_bptt_limits(reset):
    net, (x, y) = _net(reset=reset), _data()
    bptt, sltt = _rule("bptt", net), _rule("sltt", net)
    bptt.accumulate(x, y)
    sltt.accumulate(x, y)
    whole = _rule("ttl_bptt", net, window=x.shape[0], block=3)
    whole.accumulate(x, y)
    local = _rule("ttl_bptt", net, window=1, block=3)
    local.accumulate(x, y)
    for a, b in zip(_grads(whole), _grads(bptt)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(_grads(local), _grads(sltt)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    middle = _rule("ttl_bptt", net, window=2, block=1)
    middle.accumulate(x, y)
    assert len(list(middle.classifiers.parameters())) == 4  # two local classifiers (weight, bias)


def test_ttl_bptt_blocks_do_not_pass_errors():
    net, (x, y) = _net(), _data()
    rule = _rule("ttl_bptt", net, window=2, block=1)
    rule.accumulate(x, y)
    # the first layer's gradient comes only from its local classifier: zero that head, no gradient remains
    for p in rule.model.parameters():
        p.grad = None
    with torch.no_grad():
        rule.classifiers[0].weight.zero_()
    rule.accumulate(x, y)
    assert float(rule.model.synapses[0].weight.grad.abs().sum()) == 0.0
    assert float(rule.model.synapses[1].weight.grad.abs().sum()) > 0.0


def test_stdl_gradient_of_a_subnetwork_comes_from_its_auxiliary_network():
    net, (x, y) = _net(), _data()
    rule = _rule("stdl", net, subnet=1, budget_bytes=10**7, batch_size=5)
    info = rule.describe()
    assert info["auxiliary"] == [["dense1", "dense2"], ["dense2"]]  # the largest runs fit a large budget
    rule.aux.double()
    rule.accumulate(x, y)
    assert float(rule.model.synapses[0].weight.grad.abs().sum()) > 0
    # first subnetwork alone, trained online (SLTT) against its auxiliary network = same gradient
    from hwsim.methods.models import SpikingNet

    stages = rule.model.stages[:1] + rule.aux[0].body.stages
    chain = SpikingNet(stages, rule.model.input_shape, rule.model.surrogate)
    for p in chain.parameters():
        p.grad = None
    from hwsim.methods.sltt import SLTT

    SLTT(chain).accumulate(x, y)
    torch.testing.assert_close(rule.model.synapses[0].weight.grad, chain.synapses[0].weight.grad,
                               rtol=1e-10, atol=1e-12)


def test_float32_training_runs_on_default_dtype():
    torch.set_default_dtype(torch.float32)
    rule = build_rule("sltt", from_spec("12-8-4", seed=1))
    x, y = _data()
    rule.accumulate(x.float(), y)
    assert rule.model.synapses[0].weight.grad.dtype == torch.float32


def test_ttl_bptt_window_cadence_updates_once_per_window():
    """update='window': the optimizer steps after every window's backward (truncated BPTT); one window of T
    steps equals the per-batch cadence."""
    net, (x, y) = _net(), _data()
    calls = []

    class Counting(torch.optim.SGD):
        def step(self, closure=None):
            calls.append(1)
            return super().step(closure)

    rule = _rule("ttl_bptt", net, window=2, block=1, ttl_update="window")
    rule.step(x, y, Counting(list(rule.parameters()), lr=0.1))
    assert len(calls) == 3  # T = 6, windows of 2
    whole = [_rule("ttl_bptt", net, window=6, block=1, ttl_update=u) for u in ("window", "batch")]
    for rule in whole:
        rule.step(x, y, torch.optim.SGD(list(rule.parameters()), lr=0.1))
    for a, b in zip(whole[0].parameters(), whole[1].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(Exception, match="ttl_update: expected one of batch, window, got 'epoch'"):
        _rule("ttl_bptt", net, window=2, ttl_update="epoch")
