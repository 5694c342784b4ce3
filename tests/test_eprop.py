"""e-prop in torch (hwsim.methods.eprop): its online update equals an offline autograd computation of the same
factorised gradient (Bellec et al. 2020), written here from the equations, not from the module.

The offline reference runs the recurrent network forward in float64 with autograd and cuts exactly the dependencies
e-prop drops: the recurrent input spikes ``s[t-1]`` into ``u[t]`` and the reset term enter as constants; each neuron's
own membrane path (and, per synapse, its own adaptation path ``a[t] = rho a[t-1] + s[t-1]``) is kept; the error
reaches the hidden spikes through the feedback matrix B instead of W_out (an identity in value, ``W_out s.detach() +
B^T (s - s.detach())``), through the read-out filter ``y = kappa y + ...`` (per synapse, the paper's ``ebar``) or
from the same step only (per neuron, ReckOn's variant: no filter of e, no adaptation path). One backward pass of
``sum_t l[t]`` then gives ``sum_t L_j[t] ebar_ji[t]`` and the read-out's exact gradient.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hwsim.methods import build_rule
from hwsim.methods.errors import RuleError

from hwsim.learning import registry
from hwsim.learning.eprop import random_feedback
from hwsim.sim.network import Dense, FloatALIF, FloatLIF, Network, Recurrent, from_spec

N_IN, N, K, T, B = 6, 5, 3, 14, 3


def network(alif: bool, seed: int = 0, bias: bool = True) -> Network:
    """A small recurrent net with enough activity that psi, the adaptation and the reset all matter."""
    rng = np.random.default_rng(seed)
    neuron = FloatALIF(lam=0.8, v_th=1.0, rho=0.9, beta=0.4) if alif else FloatLIF(lam=0.8, v_th=1.0)
    w_rec = rng.normal(0, 0.6, (N, N))
    np.fill_diagonal(w_rec, 0)
    rec = Recurrent(rng.normal(0.35, 0.7, (N, N_IN)), w_rec, neuron,
                    bias=rng.normal(0, 0.2, N) if bias else None)
    out = Dense(rng.normal(0, 0.8, (K, N)), FloatLIF(), bias=rng.normal(0, 0.2, K) if bias else None)
    return Network(N_IN, [rec, out])


def inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, N_IN, generator=g) < 0.45).double(), torch.tensor([0, 2, 1])


def triangle(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(1.0 - x.abs(), min=0.0)


class Spike(torch.autograd.Function):
    """H(x) forward, the triangle surrogate (alpha = 1) backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * triangle(x)


def offline(net: Network, x, y, eligibility: str, feedback: np.ndarray | None, kappa: float, mask=None,
            cut_reset: bool = True) -> dict[str, np.ndarray]:
    """The factorised gradient by one backward pass through the network with e-prop's cuts (module docstring)."""
    rec, out = net.layers
    n = rec.neuron
    alif = isinstance(n, FloatALIF)
    def leaf(values):
        return torch.tensor(np.asarray(values, np.float64), requires_grad=True)

    params = {"w_in": leaf(rec.weight), "w_rec": leaf(rec.recurrent), "b_rec": leaf(rec.bias),
              "w_out": leaf(out.weight), "b_out": leaf(out.bias)}
    b_t = params["w_out"].detach() if feedback is None else torch.tensor(feedback.T, dtype=torch.float64)
    u = torch.zeros(B, N, dtype=torch.float64)
    a, s, y_val = u.clone(), u.clone(), torch.zeros(B, K, dtype=torch.float64)
    scored = np.ones(T, bool) if mask is None else mask
    loss = 0.0
    for t in range(T):
        s_const = s.detach()
        reset = s_const if cut_reset else s
        current = x[t] @ params["w_in"].t() + s_const @ params["w_rec"].t() + params["b_rec"]
        u = (u - n.v_th * reset) * n.lam + current
        if alif:
            a = n.rho * a + (s if eligibility == "per_synapse" else s_const)
            threshold = n.v_th + n.beta * a
        else:
            threshold = torch.full_like(u, n.v_th)
        s = Spike.apply(u - threshold)
        through_b = (s - s.detach()) @ b_t.t()  # zero in value; carries dl/dy to s through B
        if eligibility == "per_synapse":  # the filter carries the error of later steps back: ebar
            y_val = kappa * y_val + s.detach() @ params["w_out"].t() + params["b_out"] + through_b
            y_loss = y_val
        else:  # the error of this step only reaches s[t]: e unfiltered
            y_val = kappa * y_val + s.detach() @ params["w_out"].t() + params["b_out"]
            y_loss = y_val + through_b
        if scored[t]:
            loss = loss + torch.nn.functional.cross_entropy(y_loss, y) / scored.sum()
    loss.backward()
    return {name: p.grad.numpy() for name, p in params.items()}


def online(net: Network, x, y, **options) -> dict[str, np.ndarray]:
    mask = options.pop("mask", None)
    rule = build_rule("eprop", net)
    model = rule.model.double()
    model.kappa = options.get("kappa", 0.0)
    rule.eligibility, rule.feedback = options.get("eligibility", "per_synapse"), options.get("feedback", "symmetric")
    rule.per_neuron = rule.eligibility == "per_neuron"
    rule.loss_steps = mask
    rule.accumulate(x, y)
    return {name: getattr(model, name).grad.numpy() for name in ("w_in", "w_rec", "b_rec", "w_out", "b_out")}


CASES = list(itertools.product((False, True), ("symmetric", "random"), (0.0, 0.6), ("per_synapse", "per_neuron")))


@pytest.mark.parametrize("alif, feedback, kappa, eligibility", CASES)
def test_online_update_equals_the_offline_factorised_gradient(alif, feedback, kappa, eligibility):
    net = network(alif)
    x, y = inputs()
    b_matrix = random_feedback(N, K, 0) if feedback == "random" else None
    for mask in (None, np.arange(T) >= T - 4):
        want = offline(net, x, y, eligibility, b_matrix, kappa, mask)
        got = online(net, x, y, kappa=kappa, feedback=feedback, eligibility=eligibility, mask=mask)
        for name in want:
            scale = max(np.abs(want[name]).max(), 1e-12)
            assert np.abs(got[name] - want[name]).max() <= 1e-6 * scale, (name, mask is None)
        assert np.abs(want["w_in"]).max() > 1e-4 and np.abs(want["w_rec"]).max() > 1e-4  # the case is not trivial


def test_the_comparison_can_fail():
    """The reset path left in (not e-prop), a per-neuron gradient on ALIF, a wrong kappa: each is told apart."""
    x, y = inputs()
    lif, alif = network(False), network(True)
    got = online(lif, x, y)
    with_reset = offline(lif, x, y, "per_synapse", None, 0.0, cut_reset=False)
    assert np.abs(got["w_in"] - with_reset["w_in"]).max() > 1e-3 * np.abs(got["w_in"]).max()
    per_neuron = online(alif, x, y, eligibility="per_neuron")
    per_synapse = offline(alif, x, y, "per_synapse", None, 0.0)
    assert np.abs(per_neuron["w_in"] - per_synapse["w_in"]).max() > 1e-3 * np.abs(per_synapse["w_in"]).max()
    filtered = online(lif, x, y, kappa=0.6)
    assert np.abs(filtered["w_in"] - offline(lif, x, y, "per_synapse", None, 0.3)["w_in"]).max() > 1e-4


def test_lif_without_filter_is_the_same_per_synapse_and_per_neuron():
    """With LIF neurons and kappa = 0 the per-synapse eligibility is psi_j eps_i already: both forms agree."""
    net = network(False)
    x, y = inputs(3)
    a, b = online(net, x, y), online(net, x, y, eligibility="per_neuron")
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-15)


def test_per_neuron_writes_weights_at_every_scored_step():
    """ReckOn's cadence: with SGD the per-neuron rule changes the weights after each scored step, the per-synapse
    rule once per batch; at a learning rate of 0 both leave them."""
    net = network(False, bias=False)
    x, y = inputs()
    rule = build_rule("eprop", net, seed=0)
    assert not rule.updates_inside_batch
    mask = np.arange(T) >= T - 3
    per_neuron = build_rule("eprop", net)
    per_neuron.eligibility, per_neuron.per_neuron = "per_neuron", True
    per_neuron.loss_steps = mask
    seen = []
    optimizer = torch.optim.SGD(per_neuron.parameters(), lr=0.5)
    original = optimizer.step
    optimizer.step = lambda: (seen.append(per_neuron.model.w_in.detach().clone()), original())[1]
    per_neuron.step(x.float(), y, optimizer)
    assert len(seen) == 3 and not torch.equal(per_neuron.model.w_in, seen[0])


def test_registry_entry_and_needs():
    entry = registry.get("eprop")
    assert entry.kernel == "eprop" and entry.torch == "hwsim.methods.eprop:build"
    assert entry.needs.learning_signal and entry.needs.history is None
    assert registry.needs_of("eprop").eligibility == "per_synapse" and registry.needs_of("eprop").accumulators
    per_neuron = registry.needs_of("eprop", registry.RuleOptions({"eligibility": "per_neuron"}))
    assert per_neuron.eligibility == "per_neuron" and not per_neuron.accumulators
    assert registry.needs_of("sltt").eligibility is None and not registry.needs_of("sltt").learning_signal
    with pytest.raises(registry.RegistryError, match="--kappa: expected a number in 0..1"):
        registry.RuleOptions.build(["eprop"], {"kappa": 1.5}, where="flag")
    with pytest.raises(registry.RegistryError, match="--eligibility applies to eprop only"):
        registry.RuleOptions.build(["sltt"], {"eligibility": "per_neuron"}, where="flag")


@pytest.mark.parametrize("spec, message", [
    ("6-5-3", "e-prop trains networks input-rN-out or input-aN-out"),
    ("6-r5-r4-3", "e-prop trains networks input-rN-out or input-aN-out"),
    ("6-r5", "e-prop trains networks input-rN-out or input-aN-out"),
])
def test_other_networks_are_refused_in_one_line(spec, message):
    with pytest.raises(RuleError, match=message) as err:
        build_rule("eprop", from_spec(spec))
    assert "\n" not in str(err.value)


def test_zero_reset_is_refused_in_one_line():
    net = from_spec("6-r5-3")
    net.layers[0].neuron = FloatLIF(reset="zero")
    with pytest.raises(RuleError, match="soft reset"):
        build_rule("eprop", net)


def test_trains_and_writes_back():
    """A few SGD steps lower the loss on a fixed batch, and write_back puts the weights into the network."""
    net = network(True, bias=False)
    x, y = inputs(5)
    rule = build_rule("eprop", net)
    optimizer = torch.optim.SGD(rule.parameters(), lr=1.0)
    first = rule.step(x.float(), y, optimizer).loss
    for _ in range(20):
        last = rule.step(x.float(), y, optimizer).loss
    assert last < first
    rule.model.write_back(net)
    np.testing.assert_array_equal(net.layers[0].recurrent, rule.model.w_rec.detach().numpy())
