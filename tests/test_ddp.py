"""Data-parallel training with DistributedDataParallel (``methods.train.SyncedOptimizer``), 2 gloo ranks:

* every rank ends with the same weights, bit for bit;
* DDP's bucketed all-reduce gives bit for bit what a hand-written ``all_reduce`` of each gradient followed by
  a division by the world size gives (for 2 ranks both orders of summing and halving are exact);
* the result equals single-process training on the whole batch up to float rounding (the gradient is the
  same mean, summed in another order).
"""

import os

import pytest
import torch
from hwsim.methods import build_rule

from hwsim.sim.network import from_spec

RULES = ("sltt", "sltt_k", "ottt_o", "ttl_bptt", "bptt")
SPEC, STEPS, BATCH = "16-12-4", 4, 6


def _data(seed: int):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(STEPS, BATCH, 16, generator=g) < 0.5).float(), torch.randint(0, 4, (BATCH,), generator=g)


def _rule(name: str):
    torch.manual_seed(0)
    return build_rule(name, from_spec(SPEC, seed=0), window=2, seed=0)


class _HandWritten:
    """The former hand-written reduction: all_reduce(SUM) of every gradient, then / world."""

    def __init__(self, optimizer, params):
        import torch.distributed as dist

        self.optimizer, self.params, self.dist = optimizer, params, dist

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self):
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            self.dist.all_reduce(p.grad, op=self.dist.ReduceOp.SUM)
            p.grad /= self.dist.get_world_size()
        self.optimizer.step()


def _worker(rank: int, world: int, init_file: str, result_dir: str):
    import torch.distributed as dist
    from hwsim.methods.train import SyncedOptimizer

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    x, y = _data(7)
    shard = slice(rank, None, world)
    results = {}
    for name in RULES:
        for kind, wrapper in (("ddp", SyncedOptimizer), ("hand", _HandWritten)):
            rule = _rule(name)
            params = list(rule.parameters())
            optimizer = wrapper(torch.optim.SGD(params, lr=0.5, momentum=0.9), params)
            for _ in range(2):  # two batches: momentum and the second reduction count too
                if kind == "ddp":
                    with optimizer.accumulating():
                        rule.step(x[:, shard], y[shard], optimizer)
                else:
                    rule.step(x[:, shard], y[shard], optimizer)
            results[f"{name}/{kind}"] = [p.detach().clone() for p in params]
    torch.save(results, os.path.join(result_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    import torch.multiprocessing as mp

    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, str(folder / "init"), str(folder)), nprocs=2, join=True)
    return [torch.load(folder / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


@pytest.mark.parametrize("name", RULES)
def test_ddp_ranks_agree_and_equal_the_hand_written_reduction(ranks, name):
    a, b = ranks
    for pa, pb, ph in zip(a[f"{name}/ddp"], b[f"{name}/ddp"], a[f"{name}/hand"]):
        assert torch.equal(pa, pb)  # identical weights on both ranks
        assert torch.equal(pa, ph)  # DDP == all_reduce(SUM) / 2, bit for bit


@pytest.mark.parametrize("name", RULES)
def test_ddp_equals_single_process_training_up_to_rounding(ranks, name):
    rule = _rule(name)
    params = list(rule.parameters())
    optimizer = torch.optim.SGD(params, lr=0.5, momentum=0.9)
    x, y = _data(7)
    order = torch.cat([torch.arange(0, BATCH, 2), torch.arange(1, BATCH, 2)])  # rank 0's half, then rank 1's
    for _ in range(2):
        rule.step(x[:, order], y[order], optimizer)
    initial = [p.detach() for p in _rule(name).parameters()]
    for p_ddp, p_one, p_0 in zip(ranks[0][f"{name}/ddp"], params, initial):
        assert not torch.equal(p_ddp, p_0) or not torch.equal(p_one.detach(), p_0)  # something was learned
        torch.testing.assert_close(p_ddp, p_one.detach(), rtol=0, atol=1e-5)
