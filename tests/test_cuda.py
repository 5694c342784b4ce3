"""The training rules on CUDA: the same updates as on CPU, memory read from the CUDA allocator, the CLI; and the
torch engine (hwsim.sim.torch_engine) on CUDA: the CPU engine's runs and counts.

Skipped where torch sees no CUDA device (CI has none); run on a GPU machine with
``python -m pytest tests/test_cuda.py``. Float32 throughout, TF32 off (cuDNN's default TF32 convolutions
round inputs to 10-bit mantissas, which would move membranes across the threshold)."""

import json
import subprocess
import sys

import pytest
import torch
from hwsim.methods import build_rule
from hwsim.methods.memory import measure

from hwsim.sim.network import from_spec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

OPTIONS = {"bptt": {}, "sltt": {}, "sltt_k": {"k": 2}, "ottt_a": {}, "ottt_o": {},
           "ttl_bptt": {"window": 2, "block": 1}, "stdl": {"subnet": 1, "budget_bytes": 10**7}, "revsnn": {}}
NETS = {"dense": ("16-24-24-4", (16,)), "conv": ("2x8x8-c4k3p1-p2-c8k3p1-p2-4", (2, 8, 8))}


@pytest.fixture(autouse=True)
def _no_tf32():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _trained(name: str, kind: str, device: str, batches: int = 3) -> list[torch.Tensor]:
    spec, shape = NETS[kind]
    rule = build_rule(name, from_spec(spec, seed=0), batch_size=8, seed=0, device=device, **OPTIONS[name])
    params = list(rule.parameters())
    optimizer = torch.optim.SGD(params, lr=0.2, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(batches):
        x = (torch.rand(6, 8, *shape, generator=g) < 0.4).float().to(device)
        y = torch.randint(0, 4, (8,), generator=g).to(device)
        rule.step(x, y, optimizer)
    return [p.detach().cpu() for p in params]


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("name", list(OPTIONS))
def test_rule_updates_on_cuda_equal_cpu(name, kind):
    if name == "revsnn" and kind == "conv":
        pytest.skip("the reversible node is defined for MLPs")
    cpu, gpu = _trained(name, kind, "cpu"), _trained(name, kind, "cuda")
    assert len(cpu) == len(gpu)
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def _cuda_report(name: str, steps: int, **opts):
    rule = build_rule(name, from_spec("3x16x16-c16p1-p2-c32p1-p2-10", seed=0), batch_size=32, device="cuda",
                      **opts)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(steps, 32, 3, 16, 16, generator=g) < 0.3).float().cuda()
    y = torch.randint(0, 10, (32,), generator=g).cuda()
    optimizer = torch.optim.SGD(list(rule.parameters()), lr=0.0) if rule.updates_inside_batch else None
    return measure(rule, x, y, optimizer)


def test_cuda_allocator_bptt_grows_with_T_sltt_does_not():
    bptt = [_cuda_report("bptt", t) for t in (4, 8, 16)]
    sltt = [_cuda_report("sltt", t) for t in (4, 8, 16)]
    alloc = [r.allocator_peak_bytes for r in bptt]
    assert alloc[0] < alloc[1] < alloc[2]
    assert alloc[2] - alloc[1] == pytest.approx(2 * (alloc[1] - alloc[0]), rel=0.15)
    flat = [r.allocator_peak_bytes for r in sltt]
    assert max(flat) - min(flat) <= 0.05 * max(flat), flat
    for report in bptt + sltt:  # the meter on CUDA is the same count as on CPU; the allocator sees at least it
        assert report.cuda_peak_bytes is not None and report.allocator_peak_bytes >= report.peak_bytes


def test_meter_uses_the_cpu_allocator_for_a_cpu_model_on_a_cuda_machine():
    rule = build_rule("sltt", from_spec("32-48-10", seed=0), batch_size=8)
    x, y = (torch.rand(4, 8, 32) < 0.3).float(), torch.randint(0, 10, (8,))
    report = measure(rule, x, y)
    assert report.cuda_peak_bytes is None and report.allocator_peak_bytes > report.peak_bytes > 0


def test_train_cli_on_cuda_writes_a_network_the_cpu_engine_runs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "hwsim", "train", "--rules", "sltt", "--device", "cuda",
                           "--epochs", "2", "--json", "--no-progress", "--out", str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    last = result["history"][-1]
    assert last["test_accuracy"] > 0.8 and last["cuda_peak_bytes"] > 0
    import numpy as np
    from hwsim.methods.data import digits

    from hwsim.sim.network import load
    from hwsim.sim.quantize import float_accuracy

    net = load(tmp_path / "m.network.npz")
    x, y = digits(net.timesteps, seed=0).split("test")
    x = np.asarray(x).reshape(len(y), net.timesteps, *net.input_shape)
    accuracy = float_accuracy(net, x, np.asarray(y))  # the CUDA-trained network in hwsim's CPU float engine
    assert accuracy == pytest.approx(last["test_accuracy"], abs=0.01)


# ---------------------------------------------------------------------------------------------------------
# The torch engine on CUDA: the CPU engine's runs and counts (hwsim.sim.torch_engine)
# ---------------------------------------------------------------------------------------------------------
def test_torch_engine_fixed_point_on_cuda_is_bit_identical_to_the_cpu_engine():
    """20 random nets (dense; conv with pool, strides, padding, biases) and the spec nets: spikes, v, u and every
    counter identical to the CPU engine, also with the general path (every int32 wrap applied) forced."""
    from hwsim.sim import triton_lif
    from hwsim.sim.engine import bernoulli
    from tests.test_torch_engine import RUNS, assert_fixed_identical, random_case

    for lif in ("torch", "triton") if triton_lif.available() else ("torch",):
        for index in range(RUNS):
            network, x = random_case(index, "fixed")
            assert_fixed_identical(network, x, device="cuda", lif=lif)
        for spec in ("784-64-10", "3x16x16-c16p1-p2-c32p1-p2-10"):
            network = from_spec(spec, mode="fixed", seed=1)
            x = bernoulli((12, 16, *network.input_shape), 0.2, seed=2)
            assert_fixed_identical(network, x, device="cuda", lif=lif)
            assert_fixed_identical(network, x, device="cuda", memory_bytes=2**20, lif=lif)  # many chunks


def test_torch_engine_float_on_cuda_within_float_rounding():
    """Float: power-of-two weights bit-identical on dense nets (cuBLAS sums plainly), within 1e-5 on conv nets
    (cuDNN may pick Winograd or FFT); arbitrary weights within float rounding (a first differing spike only
    where the CPU engine's membrane is within 1e-5 of the threshold, in at most 3 of 10 nets); TF32 switched
    off by the engine even where the caller allows it."""
    from hwsim.sim import triton_lif
    from hwsim.sim.network import Dense, Flatten
    from tests.test_torch_engine import RUNS, compare_float, random_case

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        for lif in ("torch", "triton") if triton_lif.available() else ("torch",):
            for index in range(RUNS):
                network, x = random_case(index, "float", dyadic=True)
                dense = all(isinstance(layer, (Dense, Flatten)) for layer in network.layers)
                compare_float(network, x, exact=dense, device="cuda", lif=lif)
            compared = sum(compare_float(*random_case(index, "float", dyadic=False), exact=False, device="cuda",
                                         lif=lif) for index in range(RUNS, RUNS + 10))
            assert compared >= 7
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_torch_engine_on_cuda_takes_device_tensors_and_large_batches():
    """Input already on the GPU, batch 256 of a VGG-style conv net: the CPU engine's spikes and counts (its
    speed is the business of ``benchmarks/bench_gpu_engine.py``)."""
    import numpy as np

    from hwsim.sim.engine import bernoulli
    from hwsim.sim.engine import simulate as cpu_simulate
    from hwsim.sim.torch_engine import simulate
    from tests.test_torch_engine import assert_same_counts

    network = from_spec("3x32x32-c16p1-p2-c32p1-p2-10", mode="fixed", seed=0)
    x = bernoulli((6, 256, 3, 32, 32), 0.05, seed=3)
    ours = simulate(network, torch.from_numpy(x).cuda(), device="cuda")
    ref = cpu_simulate(network, x)
    for a, b in zip(ours.spikes, ref.spikes):
        np.testing.assert_array_equal(a, b)
    assert_same_counts(ref.counts, ours.counts)
