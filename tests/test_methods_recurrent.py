"""Torch rules on recurrent (rN) and adaptive (aN) layers: each rule's weight gradient -- input, recurrent and
read-out weights and biases -- against an independent autograd computation written here, with the rule's
temporal treatment (docs/rules.md, "Recurrent layers and ALIF") spelled out as explicit detaches:

* BPTT: nothing detached (full autograd of the unrolled network);
* SLTT, SLTT-K, STDL: ``u[t-1]``, ``s[t-1]`` (so the recurrent input) and ``a[t-1]`` detached at every step;
* OTTT: as SLTT, the weight gradients taken from presynaptic traces (the layer below's spikes, and the layer's own
  previous spikes for ``W_rec``: ``r_hat[t] = lam r_hat[t-1] + s[t-1]``);
* TTL-BPTT: the state detached at window starts only.

The reference is its own code: zero initial state, its own Heaviside with a straight-through triangle surrogate
(``G(v) - G(v).detach()`` with ``G' = max(0, 1 - |v|)``), its own trace product, float64. Also: the loss on chosen
steps (``loss_steps``), the reversible node's refusal, write-back of recurrent weights, and the ALIF forward
against a hand loop.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hwsim.methods import build_rule
from hwsim.methods.errors import RuleError
from hwsim.methods.models import SpikingNet

from hwsim.sim.network import Dense, FloatALIF, FloatLIF, Network, Recurrent

T, B, N_IN, HIDDEN, CLASSES = 8, 3, 10, 12, 4


def _net(kind: str, seed: int = 1) -> Network:
    """10-r12-4 or 10-a12-4 with biases, a leak that keeps a memory (lam 0.7) and, for ALIF, a fast adaptation
    (rho 0.8, beta 0.4) so that every temporal path carries gradient within T = 8 steps."""
    rng = np.random.default_rng(seed)
    neuron = FloatLIF(lam=0.7) if kind == "r" else FloatALIF(lam=0.7, rho=0.8, beta=0.4)
    w1 = rng.normal(0, 3 / np.sqrt(N_IN), (HIDDEN, N_IN)).astype(np.float32)
    rec = rng.normal(0, 1.5 / np.sqrt(HIDDEN), (HIDDEN, HIDDEN)).astype(np.float32)
    np.fill_diagonal(rec, 0)
    hidden = Recurrent(w1, rec, neuron=neuron, bias=rng.normal(0, 0.2, HIDDEN).astype(np.float32), name="rec")
    out = Dense(rng.normal(0, 3 / np.sqrt(HIDDEN), (CLASSES, HIDDEN)).astype(np.float32), neuron=FloatLIF(lam=0.7),
                bias=rng.normal(0, 0.2, CLASSES).astype(np.float32), name="out")
    return Network(N_IN, [hidden, out])


def _data(seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, B, N_IN, generator=g) < 0.5).double()
    return x, torch.tensor([0, 3, 1])


# ------------------------------------------------------------------------------------------------------------
# The independent reference
# ------------------------------------------------------------------------------------------------------------
def _spike(v: torch.Tensor) -> torch.Tensor:
    """H(v) (1 at v >= 0) forward; backward the triangle max(0, 1 - |v|) via its antiderivative G."""
    g = torch.where(v < 0, 0.5 * torch.clamp(v + 1, min=0) ** 2, 1 - 0.5 * torch.clamp(1 - v, min=0) ** 2)
    return (v >= 0).double() + (g - g.detach())


def _traced(s: torch.Tensor, trace: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Value ``s @ w.T``; gradient to ``w`` from ``trace``, to ``s`` through ``w`` (OTTT's product)."""
    return s @ w.detach().T + trace @ w.T - (trace @ w.T).detach()


def _params(network: Network) -> list[dict]:
    out = []
    for layer in network.layers:
        p = {"w": torch.tensor(layer.weight, dtype=torch.float64, requires_grad=True),
             "b": None if layer.bias is None else torch.tensor(layer.bias, dtype=torch.float64, requires_grad=True),
             "r": None}
        if isinstance(layer, Recurrent):
            p["r"] = torch.tensor(layer.recurrent, dtype=torch.float64, requires_grad=True)
        out.append(p)
    return out


def _reference(network: Network, x, y, *, cut_at=lambda t: False, traces: bool = False, scored=None,
               backward_steps=None, head=None, block_input_cut: bool = False) -> list[dict]:
    """Gradients of every weight of ``network`` (list per layer: dict w, b, r) under the stated detaches.
    ``cut_at(t)``: the state entering step t is a constant; ``traces``: OTTT's products; ``scored``: bool (T,) of
    the steps with a loss (divisor: their number; None: every step, divisor T); ``backward_steps``: the only steps
    whose loss back-propagates (SLTT-K); ``head``: (w, b) of a local read-out of layer 0's spikes whose loss is added
    at every scored step (TTL-BPTT's classifier, STDL's auxiliary layer); ``block_input_cut``: the input of layer 1
    is a constant (a block/subnetwork boundary)."""
    params, layers = _params(network), network.layers
    steps = x.shape[0]
    scored = [True] * steps if scored is None else [bool(v) for v in scored]
    divisor = sum(scored)
    zeros = [torch.zeros(B, layer.n_out, dtype=torch.float64) for layer in layers]
    u, s, a = list(zeros), list(zeros), list(zeros)
    in_trace = [torch.zeros(B, layer.n_in, dtype=torch.float64) for layer in layers]
    rec_trace = list(zeros)
    loss = 0.0
    for t in range(steps):
        inp = x[t]
        for k, (layer, p) in enumerate(zip(layers, params)):
            n = layer.neuron
            u_prev, s_prev, a_prev = (u[k].detach(), s[k].detach(), a[k].detach()) if cut_at(t) else (u[k], s[k], a[k])
            if k == 1 and block_input_cut:
                inp = inp.detach()
            if traces and k > 0:
                in_trace[k] = layers[k - 1].neuron.lam * in_trace[k] + inp.detach()
                current = _traced(inp, in_trace[k], p["w"])
            else:
                current = inp @ p["w"].T
            if p["b"] is not None:
                current = current + p["b"]
            if p["r"] is not None:
                if traces:
                    rec_trace[k] = n.lam * rec_trace[k] + s_prev.detach()
                    current = current + _traced(s_prev, rec_trace[k], p["r"])
                else:
                    current = current + s_prev @ p["r"].T
            u[k] = n.lam * (u_prev - n.v_th * s_prev) + current
            threshold = n.v_th
            if isinstance(n, FloatALIF):
                a[k] = n.rho * a_prev + s_prev
                threshold = n.v_th + n.beta * a[k]
            s[k] = _spike(u[k] - threshold)
            if k == 0 and head is not None and scored[t] and (backward_steps is None or t in backward_steps):
                loss = loss + F.cross_entropy(s[k] @ head[0].T + head[1], y) / divisor
            inp = s[k]
        if scored[t] and (backward_steps is None or t in backward_steps):
            loss = loss + F.cross_entropy(current, y) / divisor
    loss.backward()
    return [{key: (None if v is None else v.grad) for key, v in p.items()} for p in params]


def _rule_grads(rule) -> list[dict]:
    model = rule.model
    out = []
    for stage in model.stages:
        out.append({"w": stage.synapse.weight.grad, "b": stage.synapse.bias.grad,
                    "r": None if stage.recurrent is None else stage.recurrent.weight.grad})
    return out


def _compare(got: list[dict], want: list[dict]) -> None:
    for k, (g, w) in enumerate(zip(got, want)):
        for key in ("w", "b", "r"):
            if w[key] is None:
                assert g[key] is None
                continue
            assert g[key] is not None, f"layer {k} {key}: no gradient"
            torch.testing.assert_close(g[key].double(), w[key], rtol=0, atol=1e-6, msg=f"layer {k} {key}")


def _build(name: str, network: Network, **options):
    rule = build_rule(name, network, batch_size=B, **options)
    for module in rule.modules():
        module.double()
    return rule


MASK = torch.tensor([False, False, True, False, True, True, False, True])


@pytest.mark.parametrize("kind", ["r", "a"])
@pytest.mark.parametrize("scored", [None, MASK], ids=["every_step", "loss_steps"])
@pytest.mark.parametrize("name", ["bptt", "sltt", "sltt_k", "ottt_a", "ttl_bptt"])
def test_rule_gradient_equals_reference(kind, scored, name):
    network, (x, y) = _net(kind), _data()
    rule = _build(name, network, **({"window": 3, "block": 2} if name == "ttl_bptt" else {}))
    rule.loss_steps = scored
    rule.accumulate(x, y)
    cut = {"bptt": lambda t: False, "ttl_bptt": lambda t: t % 3 == 0}.get(name, lambda t: True)
    chosen = set(rule.last_backward_steps) if name == "sltt_k" else None
    if chosen is not None:
        assert len(chosen) == 2 and (scored is None or all(bool(scored[t]) for t in chosen))
    want = _reference(network, x, y, cut_at=cut, traces=name.startswith("ottt"), scored=scored,
                      backward_steps=chosen)
    _compare(_rule_grads(rule), want)


@pytest.mark.parametrize("kind", ["r", "a"])
def test_bptt_equals_full_autograd_and_the_cut_matters(kind):
    """BPTT is plain autograd of the unrolled network; the SLTT reference of the same batch differs in the recurrent
    and input weights (the test can tell the treatments apart)."""
    network, (x, y) = _net(kind), _data()
    rule = _build("bptt", network)
    rule.accumulate(x, y)
    full = _reference(network, x, y)
    _compare(_rule_grads(rule), full)
    cut = _reference(network, x, y, cut_at=lambda t: True)
    assert (full[0]["r"] - cut[0]["r"]).abs().max() > 1e-3
    assert (full[0]["w"] - cut[0]["w"]).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["r", "a"])
def test_ottt_o_per_step_gradients_sum_to_ottt_a(kind):
    """OTTT_O back-propagates and updates at every step: with an optimizer that only records the per-step gradients
    (weights unchanged), their sum is the OTTT reference."""
    network, (x, y) = _net(kind), _data()
    rule = _build("ottt_o", network)
    params = list(rule.model.parameters())
    total = [torch.zeros_like(p) for p in params]

    class Recorder:
        def step(self):
            for acc, p in zip(total, params):
                if p.grad is not None:
                    acc += p.grad

        def zero_grad(self, set_to_none=True):
            for p in params:
                p.grad = None

    rule.step(x, y, Recorder())
    for p, acc in zip(params, total):
        p.grad = acc
    _compare(_rule_grads(rule), _reference(network, x, y, cut_at=lambda t: True, traces=True))


@pytest.mark.parametrize("kind", ["r", "a"])
def test_ttl_bptt_local_blocks_gradient(kind):
    """TTL-BPTT with one block per layer: a local classifier on the recurrent layer's spikes, the read-out layer's
    input a constant, BPTT inside windows of 3 steps."""
    network, (x, y) = _net(kind), _data()
    rule = _build("ttl_bptt", network, window=3, block=1)
    rule.loss_steps = MASK
    rule.accumulate(x, y)
    cls = rule.classifiers[0]
    head = (cls.weight.detach().double(), cls.bias.detach().double())
    want = _reference(network, x, y, cut_at=lambda t: t % 3 == 0, scored=MASK, head=head, block_input_cut=True)
    _compare(_rule_grads(rule), want)


@pytest.mark.parametrize("kind", ["r", "a"])
def test_stdl_online_gradient(kind):
    """STDL online, one layer per subnetwork: the recurrent layer learns from its auxiliary network (its own copy of
    the read-out layer's architecture, own weights), SLTT's cuts in time, the read-out's input a constant."""
    network, (x, y) = _net(kind), _data()
    rule = _build("stdl", network, subnet=1, budget_bytes=1 << 20)
    rule.loss_steps = MASK
    rule.accumulate(x, y)
    aux = rule.aux[0].body.stages[0].synapse
    assert rule.aux[0].classifier is None  # the auxiliary network reaches the read-out: its current is the output
    head = (aux.weight.detach().double(), aux.bias.detach().double())
    want = _reference(network, x, y, cut_at=lambda t: True, scored=MASK, head=head, block_input_cut=True)
    _compare(_rule_grads(rule), want)


def test_stdl_auxiliary_mirrors_recurrent_layer_with_own_weights():
    """A subnetwork followed by a recurrent layer: the auxiliary copy has recurrent synapses of its own (drawn by
    hwsim.learning.stdl_plan.init_recurrent, never the mirrored layer's), trained by the auxiliary loss."""
    from hwsim.learning.stdl_plan import init_recurrent, plan
    from hwsim.sim.network import from_spec

    network = from_spec("10-8-a12-4", seed=0)
    rule = build_rule("stdl", network, subnet=1, batch_size=B, budget_bytes=1 << 20)
    body = rule.aux[0].body
    assert rule.plan.auxiliary[0].layers == (1, 2) and body.stages[0].recurrent is not None
    own, mirrored = body.stages[0].recurrent.weight.detach(), rule.model.stages[1].recurrent.weight.detach()
    assert not torch.equal(own, mirrored)
    drawn = init_recurrent(network, rule.plan, seed=0)[0][0]
    assert np.array_equal(own.numpy(), drawn) and np.all(np.diag(drawn) == 0)
    ff = from_spec("10-8-12-4", seed=0)
    assert init_recurrent(ff, plan(ff, 1, 1 << 20, B), 0) == [[None, None], [None]]
    x = (torch.rand(T, B, 10, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    rule.accumulate(x, torch.tensor([0, 1, 2]))
    assert body.stages[0].recurrent.weight.grad is not None


@pytest.mark.parametrize("spec", ["64-128-r128-10", "64-128-a128-10"])
def test_stdl_plan_counts_recurrent_and_alif_layers(spec):
    """The plan's training memory of an auxiliary network that mirrors a recurrent / ALIF layer against the
    allocator's measurement (hwsim.methods.stdl.measure_auxiliary): within 10 %, as for dense layers."""
    from hwsim.methods.stdl import measure_auxiliary

    from hwsim.sim.network import from_spec

    rule = build_rule("stdl", from_spec(spec, seed=0), batch_size=32, budget_bytes=1 << 22)
    assert rule.plan.auxiliary[0].layers == (1, 2)
    got = measure_auxiliary(rule, 0)
    assert abs(got["measured"] / got["planned"] - 1) < 0.10, got


@pytest.mark.parametrize("name", ["sltt", "ottt_a"])
def test_online_need_of_recurrent_and_alif_layers(name):
    """The online rules' allocator peak on recurrent and ALIF nets against hwsim.methods.memory.online_need
    (within 15 %, as for dense nets) and flat in T."""
    from hwsim.methods.memory import measure, online_need

    from hwsim.sim.network import from_spec

    for spec, batch in (("32-r48-48-10", 64), ("32-a48-r48-10", 32)):
        peaks = []
        for steps in (4, 16):
            rule = build_rule(name, from_spec(spec, seed=0), batch_size=batch)
            g = torch.Generator().manual_seed(0)
            x = (torch.rand(steps, batch, 32, generator=g) < 0.3).float()
            peaks.append(measure(rule, x, torch.randint(0, 10, (batch,), generator=g)).allocator_peak_bytes)
        need = online_need(rule.model, batch, traces=name.startswith("ottt"))["need_bytes"]
        assert peaks[0] == peaks[1] and abs(peaks[0] / need - 1) < 0.15, (spec, peaks, need)


def test_reversible_node_refuses_recurrent_and_alif():
    with pytest.raises(RuleError, match=r"feed-forward LIF blocks only: layer 0 \(rec\) is recurrent"):
        build_rule("revsnn", _net("r"))
    ff_alif = Network(N_IN, [Dense(np.ones((HIDDEN, N_IN), np.float32), neuron=FloatALIF(), name="h"),
                             Dense(np.ones((CLASSES, HIDDEN), np.float32), name="o")])
    with pytest.raises(RuleError, match=r"layer 0 \(h\) is adaptive \(ALIF\)"):
        build_rule("revsnn", ff_alif)


def test_forward_matches_hand_loop_and_write_back():
    """The torch ALIF forward (spikes and read-out) equals a plain numpy loop of the network.py equations; the
    recurrent weights live in the state dict and are written back."""
    network = _net("a")
    x, _ = _data()
    model = SpikingNet.from_network(network).double()
    states, outs, spikes = None, [], []
    with torch.no_grad():
        for t in range(T):
            out, s, states = model.step(x[t], states)
            outs.append(out.numpy())
            spikes.append(s[0].numpy())
    h, o = network.layers
    n = h.neuron
    u = s_prev = a = np.zeros((B, HIDDEN))
    for t in range(T):
        xt = x[t].numpy()
        u = n.lam * (u - n.v_th * s_prev) + xt @ h.weight.T.astype(np.float64) + h.bias + s_prev @ h.recurrent.T
        a = n.rho * a + s_prev
        s_prev = (u >= n.v_th + n.beta * a).astype(np.float64)
        np.testing.assert_array_equal(spikes[t], s_prev)
        np.testing.assert_allclose(outs[t], s_prev @ o.weight.T + o.bias, atol=1e-12)
    assert sum(float(np.sum(s)) for s in spikes) > 0
    assert "recurrents.0.weight" in model.state_dict()
    with torch.no_grad():
        model.stages[0].recurrent.weight.mul_(2)
    back = model.write_back(_net("a"))
    np.testing.assert_allclose(back.layers[0].recurrent, 2 * network.layers[0].recurrent, rtol=1e-6)
    assert back.layers[0].recurrent.dtype == np.float32


def test_feedforward_state_dict_unchanged():
    """A feed-forward net keeps the parameter names it had (checkpoints stay loadable)."""
    from hwsim.sim.network import from_spec

    model = SpikingNet.from_network(from_spec("10-12-4"))
    assert list(model.state_dict()) == ["synapses.0.weight", "synapses.1.weight"]


def test_loss_steps_checked():
    network, (x, y) = _net("r"), _data()
    rule = _build("sltt", network)
    rule.loss_steps = torch.zeros(T, dtype=torch.bool)
    with pytest.raises(RuleError, match="scores no step"):
        rule.accumulate(x, y)
    rule.loss_steps = torch.ones(T + 1, dtype=torch.bool)
    with pytest.raises(RuleError, match="loss_steps has 9 entries; the input has T=8"):
        rule.accumulate(x, y)
    k_rule = _build("sltt_k", network, k=5)
    k_rule.loss_steps = MASK
    with pytest.raises(RuleError, match="K=5 is larger than the task's 4 scored steps"):
        k_rule.accumulate(x, y)


def test_logits_and_evaluation_sum_the_scored_steps():
    """StepResult.logits and SpikingNet.forward(x, scored) sum the read-out over the scored steps only."""
    network, (x, y) = _net("r"), _data()
    rule = _build("bptt", network)
    rule.loss_steps = MASK
    result = rule.accumulate(x, y)
    model = SpikingNet.from_network(network).double()
    with torch.no_grad():
        states, total = None, 0.0
        for t in range(T):
            out, _, states = model.step(x[t], states)
            if MASK[t]:
                total = total + out
        torch.testing.assert_close(model(x, MASK), total)
    torch.testing.assert_close(result.logits, total)
