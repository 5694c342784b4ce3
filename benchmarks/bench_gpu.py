"""Training rules on a GPU: memory from the CUDA allocator and time per training step, on VGG-11-shaped nets.

The seed papers report GPU memory and training time (SLTT, Meng et al., ICCV 2023, Table 3; OTTT, Xiao et al.,
NeurIPS 2022; the reversible node, Lei et al., arXiv 2308.08649). This benchmark measures the same kind of
figure for hwsim's torch rules, side by side in one run:

* **memory vs T**, every rule, VGG-11 (3x32x32, CIFAR-shaped; hwsim's spiking sum-pooling, no batch norm),
  batch ``--batch``: the allocator peak of one training batch above the level at entry (activations and backward
  temporaries: ``methods.memory.measure``, after a warm-up batch) and the absolute peak
  ``torch.cuda.max_memory_allocated`` (parameters, gradients and momentum included);
* **whole training memory**, the papers' basis: that peak plus parameters, gradients and SGD momentum
  (``methods.memory.measure``);
* **time per training batch** (best of ``--repeats`` after a warm-up, CUDA synchronised, with the spread), each
  vs BPTT;
* **against the SLTT paper's ratios** SLTT / BPTT (and OTTT / SLTT) of the whole training memory at the paper's T
  (VGG-11 on DVS-CIFAR10 at 2x48x48, T = 10; DVS-Gesture, T = 20 at 2x48x48 here), side by side with the paper's
  ratios -- not like for like (their batch sizes, batch norm, their framework's workspaces), so the
  benchmark prints whether the trend holds (SLTT flat in T, BPTT linear; ratio of the same order), not a
  pass on absolute GB;
* **reversible node vs depth**: RevSNN (W = 1024) against the same network stored normally, 1 to 16 blocks.

    python benchmarks/bench_gpu.py [--batch 64] [--repeats 5] [--json FILE] [--markdown FILE]
    python benchmarks/bench_gpu.py --device cpu --quick     # a smoke run of the code path, tiny sizes
    python benchmarks/bench_gpu.py --device cpu --memory-only --repeats 1   # VGG-11 memory vs T on CPU

TF32 is left at torch's defaults (cuDNN convolutions in TF32, matrix products in full float32), as users train.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from hwsim.methods import RuleError, build_rule  # noqa: E402
from hwsim.methods.memory import measure  # noqa: E402

from hwsim.sim.network import from_spec  # noqa: E402

VGG11 = "c64p1-p2-c128p1-p2-c256p1-c256p1-p2-c512p1-c512p1-p2-c512p1-c512p1-p2"
OPTIONS = {"bptt": {}, "sltt": {}, "sltt_k": {"k": 2}, "ottt_a": {}, "ottt_o": {},
           "ttl_bptt": {"window": 2, "block": 1}, "stdl": {"subnet": 1, "budget_bytes": 256 * 2**20}}
# SLTT paper, Table 3 (whole training memory, GB): (dataset, T) -> (BPTT, SLTT)
PAPER = {("DVS-CIFAR10, VGG-11", 10): (3.70, 1.07), ("DVS-Gesture, VGG-11", 20): (5.82, 1.07)}
MIB = 2**20


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def one_rule(name: str, spec: str, shape: tuple[int, ...], steps: int, batch: int, device: str, repeats: int,
             classes: int = 10) -> dict:
    """Memory on both bases and time of one training batch of ``name`` on ``spec`` (input ``shape``), T = ``steps``:
    the allocator peak of a batch above its start (activation basis), whole training memory (parameters,
    gradients and SGD momentum added: the papers' basis), the CUDA absolute peak, and the best of ``repeats``
    timed batches with the spread (slowest / best - 1)."""
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    try:
        rule = build_rule(name, from_spec(spec, seed=0), batch_size=batch, seed=0, device=device, **OPTIONS[name])
    except RuleError as err:
        return {"rule": name, "T": steps, "error": str(err)}
    params = list(rule.parameters())
    optimizer = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(steps, batch, *shape, generator=g) < 0.2).float().to(device)
    y = torch.randint(0, classes, (batch,), generator=g).to(device)
    rule.step(x, y, optimizer)  # warm-up: gradient buffers and momentum exist from here on
    _sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        rule.step(x, y, optimizer)
        _sync(device)
        times.append(time.perf_counter() - start)
    absolute = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    report = measure(rule, x, y, optimizer)
    return {"rule": name, "T": steps, "batch": batch, "allocator_mib": report.allocator_peak_bytes / MIB,
            "whole_mib": report.whole_bytes / MIB, "meter_mib": report.peak_bytes / MIB,
            "absolute_mib": None if absolute is None else absolute / MIB,
            "ms_per_batch": min(times) * 1e3, "time_spread": max(times) / min(times) - 1,
            "params_mib": report.parameter_bytes / MIB}


def memory_vs_T(args) -> list[dict]:
    rows = []
    spec = f"{args.shape}-{args.body}-10"
    shape = tuple(int(v) for v in args.shape.split("x"))
    for steps in args.timesteps:
        base = None
        for name in args.rules:
            row = one_rule(name, spec, shape, steps, args.batch, args.device, args.repeats)
            if name == "bptt" and "error" not in row:
                base = row
            if base is not None and "error" not in row:
                row["allocator_vs_bptt"] = row["allocator_mib"] / base["allocator_mib"]
                row["whole_vs_bptt"] = row["whole_mib"] / base["whole_mib"]
                row["time_vs_bptt"] = row["ms_per_batch"] / base["ms_per_batch"]
                if row["absolute_mib"] is not None:
                    row["absolute_vs_bptt"] = row["absolute_mib"] / base["absolute_mib"]
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def paper_ratios(args) -> list[dict]:
    """The SLTT paper's Table 3 settings on the paper's basis (whole training memory), and OTTT / SLTT."""
    rows = []
    shape = (2, 48, 48) if not args.quick else (2, 16, 16)
    spec = "x".join(map(str, shape)) + f"-{args.body}-10"
    for (task, steps), (bptt_gb, sltt_gb) in PAPER.items():
        steps = steps if not args.quick else 4
        trio = {name: one_rule(name, spec, shape, steps, args.dvs_batch, args.device, 2)
                for name in ("bptt", "sltt", "ottt_a")}
        key = "whole_mib"
        measured = trio["sltt"][key] / trio["bptt"][key]
        row = {"task": task, "T": steps, "batch": args.dvs_batch, "bptt_mib": trio["bptt"][key],
               "sltt_mib": trio["sltt"][key], "ottt_mib": trio["ottt_a"][key], "measured_ratio": measured,
               "paper_ratio": sltt_gb / bptt_gb, "paper_bptt_gb": bptt_gb, "paper_sltt_gb": sltt_gb, "basis": key,
               "ottt_vs_sltt": trio["ottt_a"][key] / trio["sltt"][key],
               "activation_ratio": trio["sltt"]["allocator_mib"] / trio["bptt"]["allocator_mib"]}
        rows.append(row)
        print(f"{task}, T={steps}: SLTT/BPTT whole {measured:.2f} ({trio['sltt'][key]:.0f} / "
              f"{trio['bptt'][key]:.0f} MiB), paper {sltt_gb / bptt_gb:.2f} ({sltt_gb} / {bptt_gb} GB); activation "
              f"{row['activation_ratio']:.2f}; OTTT/SLTT whole {row['ottt_vs_sltt']:.2f} (paper 1.71-2.29)",
              flush=True)
    return rows


def reversible_depth(args) -> list[dict]:
    from hwsim.methods.revsnn import Reversible, RevSNN

    rows = []
    width, steps, batch = (1024, 8, 128) if not args.quick else (64, 4, 8)
    for blocks in (1, 4, 16):
        row = {"blocks": blocks}
        for reversible in (True, False):
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
            rule = Reversible(RevSNN(784, width, blocks, 10, reversible=reversible).to(args.device))
            g = torch.Generator().manual_seed(0)
            x = (torch.rand(steps, batch, 784, generator=g) < 0.2).float().to(args.device)
            y = torch.randint(0, 10, (batch,), generator=g).to(args.device)
            report = measure(rule, x, y)
            row["reversible_mib" if reversible else "stored_mib"] = report.allocator_peak_bytes / MIB
        rows.append(row)
        print(f"RevSNN W={width}, T={steps}, batch {batch}, {blocks:2d} blocks: reversible "
              f"{row['reversible_mib']:.1f} MiB, stored {row['stored_mib']:.1f} MiB "
              f"({row['stored_mib'] / row['reversible_mib']:.2f}x)", flush=True)
    return rows


def _line(row: dict) -> str:
    if "error" in row:
        return f"T={row['T']:2d} {row['rule']:9s} not run: {row['error']}"
    absolute = f", absolute {row['absolute_mib']:8.1f} MiB" if row["absolute_mib"] is not None else ""
    return (f"T={row['T']:2d} {row['rule']:9s} allocator {row['allocator_mib']:8.1f} MiB "
            f"({row.get('allocator_vs_bptt', 1):.2f}x BPTT), whole {row['whole_mib']:8.1f} MiB "
            f"({row.get('whole_vs_bptt', 1):.2f}x){absolute}, {row['ms_per_batch']:7.1f} ms/batch best "
            f"(+{row['time_spread']:.0%}; {row.get('time_vs_bptt', 1):.2f}x)")


def markdown(result: dict) -> str:
    lines = [f"Device: {result['device_name']}; torch {result['torch']}; network {result['network']}, batch "
             f"{result['batch']}.", "", "| T | rule | allocator peak of a batch (MiB) | vs BPTT | whole training (MiB) "
             "| vs BPTT | CUDA absolute peak (MiB) | ms / batch (best, spread) | vs BPTT |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["memory_vs_T"]:
        if "error" in r:
            lines.append(f"| {r['T']} | {r['rule']} | not run: {r['error']} | | | | | | |")
            continue
        absolute = f"{r['absolute_mib']:.0f}" if r["absolute_mib"] is not None else "-"
        lines.append(f"| {r['T']} | {r['rule']} | {r['allocator_mib']:.1f} | {r.get('allocator_vs_bptt', 1):.2f}× | "
                     f"{r['whole_mib']:.1f} | {r.get('whole_vs_bptt', 1):.2f}× | {absolute} | "
                     f"{r['ms_per_batch']:.1f} (+{r['time_spread']:.0%}) | {r.get('time_vs_bptt', 1):.2f}× |")
    if result["paper_ratios"]:
        lines += ["", "| task (SLTT paper, Table 3) | T | batch here | BPTT here, whole (MiB) | SLTT here, whole (MiB) "
                  "| SLTT/BPTT here (whole / activation) | SLTT/BPTT paper | OTTT/SLTT here, whole |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in result["paper_ratios"]:
            lines.append(f"| {r['task']} | {r['T']} | {r['batch']} | {r['bptt_mib']:.0f} | {r['sltt_mib']:.0f} | "
                         f"{r['measured_ratio']:.2f} / {r['activation_ratio']:.2f} | {r['paper_ratio']:.2f} "
                         f"({r['paper_sltt_gb']} / {r['paper_bptt_gb']} GB) | {r['ottt_vs_sltt']:.2f} |")
    if result["reversible_depth"]:
        lines += ["", "| RevSNN blocks | reversible (MiB) | stored normally (MiB) | ratio |", "|---|---|---|---|"]
        for r in result["reversible_depth"]:
            lines.append(f"| {r['blocks']} | {r['reversible_mib']:.1f} | {r['stored_mib']:.1f} | "
                         f"{r['stored_mib'] / r['reversible_mib']:.2f}× |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dvs-batch", type=int, default=32)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--rules", nargs="+", default=list(OPTIONS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code path, measures nothing")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the memory-vs-T table (e.g. VGG-11 on CPU: --device cpu --memory-only)")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--markdown", metavar="FILE")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.exit(2, "bench_gpu: --device cuda: torch sees no CUDA device here (try --device cpu --quick)\n")
    args.shape, args.body = ("3x32x32", VGG11) if not args.quick else ("3x8x8", "c8p1-p2-c16p1-p2")
    if args.quick:
        args.batch, args.dvs_batch, args.timesteps, args.repeats = 4, 4, [2, 4], 1
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    result = {"device_name": name, "torch": torch.__version__, "network": f"{args.shape}-{args.body}-10",
              "batch": args.batch, "memory_vs_T": memory_vs_T(args),
              "paper_ratios": [] if args.memory_only else paper_ratios(args),
              "reversible_depth": [] if args.memory_only else reversible_depth(args)}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    text = markdown(result)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
