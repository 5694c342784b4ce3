"""Training loop: exact resume, checkpoints, torch model = hwsim engine, bad input, data parallel."""

import os

import numpy as np
import pytest
import torch
from hwsim.methods import RuleError, build_rule
from hwsim.methods.data import DataError
from hwsim.methods.models import SpikingNet
from hwsim.methods.train import TrainConfig, load_checkpoint, train

from hwsim.cli.main import main
from hwsim.sim.engine import simulate
from hwsim.sim.network import Conv2d, Dense, Flatten, FloatLIF, Network, SumPool2d, from_spec, load


def _dyadic(rng, shape):
    return (np.round(rng.normal(0, 0.4, shape) * 64) / 64).astype(np.float32)


def test_torch_model_equals_hwsim_engine_and_writes_back():
    rng = np.random.default_rng(0)
    neuron = FloatLIF(lam=0.75, v_th=0.5)
    net = Network((2, 6, 6), [Conv2d(_dyadic(rng, (3, 2, 3, 3)), padding=1, neuron=neuron, bias=_dyadic(rng, 3)),
                              SumPool2d(2, weight=0.5, neuron=neuron), Flatten(),
                              Dense(_dyadic(rng, (5, 27)), neuron=neuron)])
    x = (np.random.default_rng(1).random((7, 3, 2, 6, 6)) < 0.4).astype(np.float32)
    model = SpikingNet.from_network(net)
    states, torch_spikes = None, []
    with torch.no_grad():
        for t in range(7):
            _, spikes, states = model.step(torch.from_numpy(x[t]), states)
            torch_spikes.append([s.numpy() for s in spikes])
    ours = simulate(net, x).spikes
    for k in range(3):
        np.testing.assert_array_equal(np.stack([step[k] for step in torch_spikes]).astype(np.uint8), ours[k])
    with torch.no_grad():
        model.synapses[0].weight.mul_(2)
    model.write_back(net)
    np.testing.assert_array_equal(net.layers[0].weight, model.synapses[0].weight.detach().numpy())


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    config = TrainConfig(rule="sltt_k", dataset="digits", epochs=3, timesteps=4, batch_size=64, k=2, seed=3)
    whole = tmp_path / "whole.pt"
    train(config, out=whole, progress=False, log=lambda *_: None)
    part = tmp_path / "part.pt"
    train(TrainConfig(**{**config.__dict__, "epochs": 1}), out=part, progress=False, log=lambda *_: None)
    resumed = tmp_path / "resumed.pt"
    os.replace(part, resumed)
    result = train(config, out=resumed, resume=resumed, progress=False, log=lambda *_: None)
    a, b = load_checkpoint(whole), load_checkpoint(resumed)
    assert a["epoch"] == b["epoch"] == 2 and len(result.history) == 3
    for key, value in a["modules"][0].items():
        torch.testing.assert_close(value, b["modules"][0][key], rtol=0, atol=0)
    network = load(resumed.with_suffix(".network.npz"))
    np.testing.assert_array_equal(network.layers[0].weight, b["modules"][0]["synapses.0.weight"].numpy())


def test_training_learns_digits(tmp_path):
    result = train(TrainConfig(rule="sltt", dataset="digits", epochs=2, timesteps=4), progress=False,
                   log=lambda *_: None)
    assert result.history[-1].test_accuracy > 0.8
    assert result.history[-1].activation_bytes > 0


def test_ottt_at_its_paper_setting_trains_and_reports_both_memory_bases(tmp_path):
    """OTTT with the paper's tau = 2, sigmoid surrogate alpha = 4 and the code's CE + 0.05 MSE (one-hot) loss, from
    TrainConfig; every epoch carries the allocator's peak and the whole training memory beside the meter's, and
    the network written beside the checkpoint carries the trained neuron (lam = 1 - 1/2)."""
    config = TrainConfig(rule="ottt_a", dataset="digits", epochs=2, timesteps=4, tau=2.0, surrogate="sigmoid",
                         alpha=4.0, mse=0.05)
    out = tmp_path / "ottt.pt"
    result = train(config, out=out, progress=False, log=lambda *_: None)
    assert result.history[-1].test_accuracy > 0.7
    for stats in result.history:
        params = 3 * sum(p.size for layer in load(out.with_suffix(".network.npz")).layers
                         for p in (layer.weight, layer.bias) if p is not None) * 4  # weights, grads, momentum
        assert stats.allocator_peak_bytes > stats.activation_bytes > 0
        assert stats.whole_training_bytes >= stats.allocator_peak_bytes + params * 2 // 3  # weights + momentum
    assert all(layer.neuron.lam == 0.5 for layer in load(out.with_suffix(".network.npz")).layers)
    assert load_checkpoint(out)["config"]["surrogate"] == "sigmoid"


def test_rule_options_are_checked_one_line_each():
    net = from_spec("8-6-4", seed=0)
    cases = {"tau": (0.5, "tau: expected a number in 1..1e"), "v_th": (0.0, "v_th: expected a number in 1e-06.."),
             "surrogate": ("relu", "surrogate: expected one of triangle, sigmoid, rectangle, got 'relu'"),
             "alpha": (-1.0, "alpha: expected a number in 0.001..1000"),
             "mse": (1.5, "mse: expected a number in 0..1"), "mse_target": ("zeros", "mse_target: expected one of"),
             "ttl_update": ("epoch", "ttl_update: expected one of batch, window"), "k": (0, "k: expected an integer"),
             "lambda_": (1, "unknown rule option 'lambda_'")}
    for name, (value, message) in cases.items():
        with pytest.raises(RuleError, match=message):
            build_rule("sltt", net, **{name: value})
    rule = build_rule("ottt_o", net, tau=2, surrogate="sigmoid", alpha=4, mse=0.05)
    assert rule.model.surrogate.alpha == 4 and rule.model.stages[0].neuron.lam == 0.5
    assert rule.loss_mix.target == "one_hot" and build_rule("sltt", net, mse=0.05).loss_mix.target == "means"
    assert net.layers[0].neuron.lam == pytest.approx(1 - 1 / 1.1)  # the caller's network is left as it was


def test_the_loss_mix_is_the_papers_code():
    """((1 - 0.05) CE + 0.05 MSE) / T, MSE against the one-hot label (OTTT code) or every output against 1 (SLTT
    code's loss_means), written out here with torch.nn.functional."""
    import torch.nn.functional as F
    from hwsim.methods.rule import LossMix, step_loss

    g = torch.Generator().manual_seed(0)
    out, y = torch.randn(5, 4, generator=g), torch.tensor([0, 3, 1, 1, 2])
    ce = F.cross_entropy(out, y)
    one_hot = ((1 - 0.05) * ce + 0.05 * ((out - F.one_hot(y, 4).float()) ** 2).mean()) / 6
    means = ((1 - 0.05) * ce + 0.05 * ((out - 1.0) ** 2).mean()) / 6
    torch.testing.assert_close(step_loss(out, y, 6, LossMix(0.05, "one_hot")), one_hot)
    torch.testing.assert_close(step_loss(out, y, 6, LossMix(0.05, "means")), means)
    assert torch.equal(step_loss(out, y, 6, LossMix()), ce / 6)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(DataError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match="bad.pt: not a readable hwsim training checkpoint"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(2)}, other)
    with pytest.raises(DataError, match="other.pt: not an hwsim training checkpoint"):
        load_checkpoint(other)
    ckpt = tmp_path / "ok.pt"
    train(TrainConfig(rule="bptt", epochs=1, timesteps=2), out=ckpt, progress=False, log=lambda *_: None)
    with pytest.raises(DataError, match="different configuration"):
        train(TrainConfig(rule="sltt", epochs=2, timesteps=2), resume=ckpt, progress=False, log=lambda *_: None)


@pytest.mark.parametrize("kwargs,message", [
    ({"rule": "sltt_k", "k": 9}, "K=9 is larger than the number of time steps T=4"),
    ({"rule": "ttl_bptt", "block": 2, "net": "64-32-32-10"}, "block size 2 does not divide the network's 3"),
    ({"rule": "stdl", "budget_bytes": 100}, "budget 100 bytes is too small for any auxiliary network"),
    ({"rule": "bptt", "net": "60-10"}, "does not match the digits data"),
])
def test_bad_rule_options(kwargs, message):
    config = TrainConfig(**{"dataset": "digits", "epochs": 1, "timesteps": 4, **kwargs})
    with pytest.raises((RuleError, DataError), match=message):
        train(config, progress=False, log=lambda *_: None)


@pytest.mark.parametrize("argv,message", [
    (["train", "--rules", "hebb"], "unknown rule 'hebb'; known rules: bptt, sltt, sltt_k, ottt_a, ottt_o"),
    (["train", "--rules", "sltt", "--dataset", "imagenet"], "unknown dataset 'imagenet'; known datasets: digits"),
    (["train", "--rules", "sltt", "--dataset", "mnist", "--data-path", "/no/such"], "no such file"),
    (["train", "--rules", "sltt_k", "--k", "9", "-T", "4"], "--k: SLTT-K backpropagates at K of the T steps; K=9 is "
                                                           "larger than T=4"),
])
def test_cli_bad_input(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unknown_rule_from_python():
    with pytest.raises(RuleError, match="known rules"):
        build_rule("hebb", Network(4, [Dense(np.ones((2, 4)))]))


def _ddp_worker(rank: int, world: int, init_file: str, result_dir: str):
    import torch.distributed as dist
    from hwsim.methods.train import SyncedOptimizer, end_distributed

    from hwsim.sim.network import from_spec

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    rule = build_rule("sltt", from_spec("16-12-4", seed=0))
    params = list(rule.parameters())
    optimizer = SyncedOptimizer(torch.optim.SGD(params, lr=0.5, momentum=0.9), params)
    g = torch.Generator().manual_seed(100 + rank)  # each rank sees different data
    x = (torch.rand(4, 6, 16, generator=g) < 0.5).float()
    y = torch.randint(0, 4, (6,), generator=g)
    with optimizer.accumulating():  # as the training loop runs it: per-step passes local, step() all-reduces
        rule.step(x, y, optimizer)
    torch.save([p.detach() for p in params], os.path.join(result_dir, f"rank{rank}.pt"))
    end_distributed(optimizer)


def test_data_parallel_ranks_hold_identical_weights(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for pa, pb in zip(a, b):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    from hwsim.sim.network import from_spec

    initial = SpikingNet.from_network(from_spec("16-12-4", seed=0))
    assert not torch.equal(a[0], initial.synapses[0].weight.detach())  # the step did change the weights


def test_torchrun_training_from_the_cli_ends_cleanly(tmp_path):
    """Two gloo ranks through ``torchrun -m hwsim train``: both exit 0 (the group is destroyed before exit),
    rank 0 alone writes the checkpoint and network, and the written network loads."""
    import subprocess
    import sys

    env = {**os.environ, "HWSIM_DDP_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "hwsim",
                           "train", "--rules", "sltt", "--epochs", "1", "--threads", "1", "--no-progress",
                           "--out", "m"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("epoch 1/1") == 1  # rank 0 alone reports
    assert load(tmp_path / "m.network.npz").layers


def test_training_that_diverges_stops_in_one_line_and_writes_nothing(tmp_path):
    """A loss that turns NaN or infinite ends the run naming the epoch and the likely cause; no network or
    checkpoint of that epoch is written (before, a NaN network was written and exit was 0)."""
    from hwsim.methods.train import TrainConfig, train

    from hwsim.errors import Failure

    out = tmp_path / "run.pt"
    with pytest.raises(Failure, match=r"epoch 1: the training loss is (nan|inf).*learning rate 1e\+38"):
        train(TrainConfig(rule="sltt", epochs=1, timesteps=2, net="64-10", lr=1e38, batch_size=8), out=out,
              progress=False, log=lambda *_: None)
    assert not out.exists() and not out.with_suffix(".network.npz").exists()
