"""On-chip SLTT training throughput vs the torch reference, side by side in one run.

Network 784-512-10 (``from_spec``, seed 0), batch 1, T = 8 (the SLTT paper's order of T for static data),
Bernoulli input at 10 % with random labels. hwsim runs ``OnChipLearner(rule="sltt")`` (numba, event-driven,
every learning operation counted); the reference runs ``methods`` SLTT in torch on the CPU with
``torch.set_num_threads(1)``; both update with plain SGD (lr 0.1), and both networks start equal. Reports
training samples/s, the ratio (target >= 5x), and the largest weight difference after the run.

It then trains on-chip SLTT on scikit-learn digits in float and in fixed point (8-bit weights with
stochastic rounding, 7-bit traces, 8-bit error messages) and reports both test accuracies. With ``--conv RULES``
it also times one on-chip training sample of a conv net (``3x32x32-c64p1-p2-c128p1-p2-10``, T = 100, 10 % input,
best of three, seconds) per rule, the figure docs/benchmarks.md quotes.

    python benchmarks/bench_learning.py [--samples 200] [--timesteps 8] [--epochs 6] [--conv sltt,bptt] [--json FILE]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwsim.methods import build_rule  # noqa: E402

from hwsim.learning.learner import OnChipLearner  # noqa: E402
from hwsim.sim.network import from_spec  # noqa: E402


def digits_float_vs_fixed(epochs: int, rule: str = "sltt") -> dict:
    """On-chip learning on scikit-learn digits (64-128-10, T = 8, lr 0.5), float vs fixed point."""
    from hwsim.methods.data import digits

    from hwsim.learning.learner import accuracy, fit

    data = digits(steps=8, seed=0)
    xtr, ytr = (a.numpy() for a in data.split("train"))
    xte, yte = (a.numpy() for a in data.split("test"))
    out = {}
    for precision in ("float", "fixed"):
        learner = OnChipLearner(from_spec("64-128-10", seed=0), rule, lr=0.5, precision=precision)
        fit(learner, xtr, ytr, epochs=epochs)
        out[precision] = accuracy(learner, xte, yte)
    return out


CONV_NET = "3x32x32-c64p1-p2-c128p1-p2-10"


def conv_sample_seconds(rules: list[str], steps: int = 100, repeats: int = 3) -> dict[str, float]:
    """Wall seconds of one on-chip training sample (batch 1, ``steps`` steps, 10 % Bernoulli input) on
    :data:`CONV_NET` per rule, best of ``repeats`` after a short warm-up run (TTL-BPTT with a window of 2, STDL
    with a budget of 1 GB)."""
    from hwsim.sim.engine import bernoulli

    x = bernoulli((steps, 1, *from_spec(CONV_NET, seed=0).input_shape), 0.1, seed=1)
    out = {}
    for rule in rules:
        opts = {"window": 2} if rule == "ttl_bptt" else {}
        if rule == "stdl":  # a budget that admits auxiliary networks of this net
            opts = {"budget_bytes": 10**9, "batch_size": 1}
        OnChipLearner(from_spec(CONV_NET, seed=0), rule, **opts).train_batch(x[:3], np.array([1]))  # compile
        best = float("inf")
        for _ in range(repeats):
            learner = OnChipLearner(from_spec(CONV_NET, seed=0), rule, **opts)
            start = time.perf_counter()
            learner.train_batch(x, np.array([1]))
            best = min(best, time.perf_counter() - start)
        out[rule] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--timesteps", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--rule", default="sltt")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the digits float vs fixed comparison")
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--conv", metavar="RULES", default="",
                        help="also time one conv training sample (T = 100) for these comma-separated rules")
    args = parser.parse_args()
    torch.set_num_threads(1)
    net = from_spec("784-512-10", seed=0)
    rng = np.random.default_rng(1)
    xs = (rng.random((args.samples, args.timesteps, 1, 784)) < args.rate).astype(np.uint8)
    ys = rng.integers(0, 10, args.samples)

    chip_net = copy.deepcopy(net)
    learner = OnChipLearner(chip_net, args.rule, lr=0.1)
    learner.train_batch(xs[0], ys[:1])  # compile / load kernels
    chip_net_timed = copy.deepcopy(net)
    learner = OnChipLearner(chip_net_timed, args.rule, lr=0.1)
    start = time.perf_counter()
    ops = 0
    for x, y in zip(xs, ys):
        counts = learner.train_batch(x, np.array([y]), sync=False).counts
        ops += counts.total("sop") + counts.total("error_macs") + counts.total("grad_ops")
    learner.sync()
    chip_seconds = time.perf_counter() - start

    rule = build_rule(args.rule, copy.deepcopy(net))
    optimizer = torch.optim.SGD(list(rule.parameters()), lr=0.1)
    xt = torch.from_numpy(xs.astype(np.float32))
    yt = torch.from_numpy(ys)
    rule.step(xt[0], yt[:1], optimizer)  # warm-up on a copy's state is not needed: reset below
    rule = build_rule(args.rule, copy.deepcopy(net))
    optimizer = torch.optim.SGD(list(rule.parameters()), lr=0.1)
    start = time.perf_counter()
    for i in range(args.samples):
        rule.step(xt[i], yt[i: i + 1], optimizer)
    torch_seconds = time.perf_counter() - start

    diff = max(float(np.abs(a.weight - s.weight.detach().numpy()).max())
               for a, s in zip(chip_net_timed.layers, rule.model.synapses))
    result = {"network": "784-512-10", "timesteps": args.timesteps, "batch": 1, "samples": args.samples,
              "rule": args.rule, "hwsim_samples_per_s": args.samples / chip_seconds,
              "torch_samples_per_s": args.samples / torch_seconds, "ratio": torch_seconds / chip_seconds,
              "hwsim_learning_ops_per_s": ops / chip_seconds, "max_weight_difference": diff}
    print(f"{args.rule} on-chip (hwsim, numba): {result['hwsim_samples_per_s']:.1f} samples/s "
          f"({result['hwsim_learning_ops_per_s'] / 1e6:.1f} M SOP+error MAC+grad op/s)")
    print(f"{args.rule} torch reference (CPU, 1 thread): {result['torch_samples_per_s']:.1f} samples/s")
    print(f"ratio: {result['ratio']:.1f}x (target >= 5x: {'met' if result['ratio'] >= 5 else 'MISSED'}); "
          f"weights after {args.samples} samples differ by at most {diff:.2e}")
    if not args.skip_digits:
        result["digits"] = digits_float_vs_fixed(args.epochs)
        d = result["digits"]
        print(f"digits, on-chip {args.rule}, T=8, {args.epochs} epochs: float {d['float'] * 100:.1f} %, fixed point "
              f"{d['fixed'] * 100:.1f} % (8-bit weights with stochastic rounding, 7-bit traces, 8-bit errors); "
              f"difference {abs(d['float'] - d['fixed']) * 100:.1f} points (target <= 3)")
    if args.conv:
        result["conv_sample_seconds"] = conv_sample_seconds([r.strip() for r in args.conv.split(",") if r.strip()])
        print(f"one conv training sample ({CONV_NET}, T=100): " + ", ".join(
            f"{rule} {seconds:.3f} s" for rule, seconds in result["conv_sample_seconds"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
