"""The reversible node: its gradient is BPTT's, nothing per block is kept (allocator flat in depth), and the
regimes where reconstruction would not be exact."""

import pytest
import torch
import torch.nn.functional as F
from hwsim.methods import RuleError
from hwsim.methods.memory import measure
from hwsim.methods.revsnn import Reversible, RevSNN

from hwsim.cli.main import main
from hwsim.sim.network import FloatLIF

NEURON = FloatLIF(lam=0.5, v_th=0.5)


class _Spike(torch.autograd.Function):
    """Heaviside with the triangle surrogate max(0, 1 - |v|), written out independently of methods.neuron."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * torch.clamp(1 - v.abs(), min=0)


def _bptt_reference(model: RevSNN, x, y):
    """The same architecture unrolled step by step with plain autograd, every state of every step stored:
    BPTT. Returns the gradients in ``model.parameters()`` order."""
    params = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    named = dict(zip([n for n, _ in model.named_parameters()], params))
    lam, v_th = NEURON.lam, NEURON.v_th
    half = model.readout.in_features // 2
    layers = ["input_layer"] + [f"blocks.{b}.{fg}" for b in range(len(model.blocks)) for fg in ("f", "g")]
    u = dict.fromkeys(layers)
    s = dict.fromkeys(layers)

    def lif(name, current):
        u[name] = current if u[name] is None else lam * (u[name] - v_th * s[name]) + current
        s[name] = _Spike.apply(u[name] - v_th)
        return s[name]

    loss = 0.0
    for t in range(x.shape[0]):
        h = lif("input_layer", x[t] @ named["input_layer.weight"].T + named["input_layer.bias"])
        x1, x2 = h[:, :half], h[:, half:]
        for b in range(len(model.blocks)):
            f_w, f_b = named[f"blocks.{b}.f.weight"], named[f"blocks.{b}.f.bias"]
            g_w, g_b = named[f"blocks.{b}.g.weight"], named[f"blocks.{b}.g.bias"]
            x1 = x1 + lif(f"blocks.{b}.f", x2 @ f_w.T + f_b)
            x2 = x2 + lif(f"blocks.{b}.g", x1 @ g_w.T + g_b)
        out = torch.cat([x1, x2], 1) @ named["readout.weight"].T + named["readout.bias"]
        loss = loss + F.cross_entropy(out, y) / x.shape[0]
    loss.backward()
    return [p.grad for p in params]


def _data(steps=6, batch=4, n_in=10, classes=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n_in, generator=g) < 0.5).to(dtype), torch.randint(0, classes, (batch,),
                                                                                       generator=g)


def _rel(got, want):
    num = sum(float((a - b).pow(2).sum()) for a, b in zip(got, want)) ** 0.5
    return num / sum(float(b.pow(2).sum()) for b in want) ** 0.5


@pytest.mark.parametrize("backward", ["revnet", "naive"])
def test_reversible_gradient_equals_bptt_of_the_same_architecture(backward):
    x, y = _data()
    model = RevSNN(10, 8, blocks=3, n_classes=3, neuron=NEURON, seed=3, backward=backward).double()
    info = Reversible(model).accumulate(x, y).info
    assert info["recomputed_blocks"] == (3 if backward == "revnet" else 6)
    got = [p.grad for p in model.parameters()]
    want = _bptt_reference(model, x, y)
    assert sum(float(g.abs().sum()) for g in got[2:-2]) > 0  # the blocks do receive gradient
    assert _rel(got, want) <= 1e-6
    plain = RevSNN(10, 8, blocks=3, n_classes=3, neuron=NEURON, seed=3, reversible=False).double()
    Reversible(plain).accumulate(x, y)
    assert _rel([p.grad for p in plain.parameters()], want) <= 1e-6


def test_reversible_gradient_in_float32(capsys):
    """float32: block inputs are spike counts, so the reconstruction is still exact; the difference to the
    float64 BPTT reference is float32 rounding of the gradient arithmetic (reported)."""
    x, y = _data()
    model = RevSNN(10, 8, blocks=3, n_classes=3, neuron=NEURON, seed=3)
    Reversible(model).accumulate(x.float(), y)
    reference = RevSNN(10, 8, blocks=3, n_classes=3, neuron=NEURON, seed=3).double()
    err = _rel([p.grad.double() for p in model.parameters()], _bptt_reference(reference, x, y))
    print(f"float32 reversible vs float64 BPTT: relative L2 error {err:.2e}")
    assert err <= 1e-5


def _memory(blocks, steps, reversible, width=64):
    model = RevSNN(32, width, blocks=blocks, n_classes=5, seed=0, reversible=reversible)
    x, y = _data(steps=steps, batch=16, n_in=32, classes=5, dtype=torch.float32)
    return measure(Reversible(model), x, y)


def test_allocator_peak_is_flat_in_depth_and_linear_in_T():
    """Allocator peak (not the meter) after a warm-up batch (gradient buffers exist). From two blocks on it does
    not change with depth; one block needs one (T, B, W) tensor less (its reconstructed input is a view of the
    saved output, which autograd holds until the stack's backward returns)."""
    rev = [_memory(blocks, 8, True).allocator_peak_bytes for blocks in (2, 4, 12)]
    plain = [_memory(blocks, 8, False).allocator_peak_bytes for blocks in (2, 4, 12)]
    assert rev[0] == rev[1] == rev[2], rev  # flat in depth
    assert plain[2] > 3 * plain[0] and plain[2] > 3 * rev[2], plain
    by_steps = [_memory(4, steps, True).allocator_peak_bytes for steps in (4, 8, 16)]
    assert by_steps[2] - by_steps[1] == pytest.approx(2 * (by_steps[1] - by_steps[0]), rel=0.1), by_steps


def test_no_global_reseeding():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    RevSNN(10, 8, blocks=2, n_classes=3, seed=7)
    torch.testing.assert_close(torch.rand(3), expected)
    a, b = RevSNN(10, 8, 2, 3, seed=7), RevSNN(10, 8, 2, 3, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_reconstruction_is_exact_on_spike_counts_only():
    """Where reconstruction is exact, and where it would not be (documented in methods/revsnn.py and
    docs/rules.md): (1) integers (spike counts): (x + f) - f == x bit for bit; real values: not always;
    (2) a LIF membrane cannot be inverted backwards in time -- with soft reset u[t] = lam (u[t-1] - V_th s[t-1])
    + I[t] is the same for u[t-1] = 0.2 (no spike) and u[t-1] = 0.7 (spike, V_th = 0.5), so the state before
    is not determined by the state after; the implementation recomputes membranes forward instead."""
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 20, (1000,), generator=g).float()
    spikes = (torch.rand(1000, generator=g) < 0.5).float()
    assert torch.equal((counts + spikes) - spikes, counts)
    real = torch.rand(1000, generator=g) * 3.7
    noisy = torch.rand(1000, generator=g) * 1e-3
    assert not torch.equal((real + noisy) - noisy, real)
    lam, v_th, current = NEURON.lam, NEURON.v_th, torch.tensor(0.3)
    after = [lam * (u - v_th * float(u >= v_th)) + current for u in (torch.tensor(0.2), torch.tensor(0.7))]
    assert torch.equal(after[0], after[1])


def test_width_that_cannot_be_split_is_one_clear_line(capsys):
    with pytest.raises(RuleError, match="W must be even and >= 2, got 7"):
        RevSNN(10, 7, 2, 3)
    assert main(["train", "--rules", "revsnn", "--net", "64-7-7-10", "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "W must be even and >= 2, got 7" in err and err.count("\n") == 1
