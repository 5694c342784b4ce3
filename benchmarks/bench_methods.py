"""Every training rule on digits and on the procedural Randman task, same network, same budget.

For T in (4, 8, 16) and each dataset, every rule trains the same network (64-128-128-10, same initial
weights, SGD lr 0.1 momentum 0.9, batch 32, ``--epochs`` epochs, averaged over ``--seeds`` seeds) and the
table reports the final test accuracy, the peak activation memory kept for backward (methods.memory
meter, bytes), and the time per epoch -- each also relative to BPTT at the same T.

    python benchmarks/bench_methods.py [--epochs 8] [--seeds 2] [--json FILE] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from methods import RULES  # noqa: E402
from methods.train import TrainConfig, train  # noqa: E402

OPTIONS = {"sltt_k": {"k": 2}, "ttl_bptt": {"window": 2, "block": 1}, "stdl": {"subnet": 1, "budget_bytes": 1 << 20}}
NET = "64-128-128-10"


def run(rule: str, dataset: str, steps: int, epochs: int, seed: int) -> dict:
    config = TrainConfig(rule=rule, dataset=dataset, epochs=epochs, timesteps=steps, net=NET, seed=seed,
                         **OPTIONS.get(rule, {}))
    start = time.perf_counter()
    result = train(config, progress=False, log=lambda *_: None)
    last = result.history[-1]
    return {"accuracy": last.test_accuracy, "activation_bytes": max(h.activation_bytes for h in result.history),
            "seconds_per_epoch": (time.perf_counter() - start) / epochs, "describe": result.describe}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--datasets", nargs="+", default=["digits", "randman"])
    parser.add_argument("--rules", nargs="+", default=list(RULES))
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--markdown", metavar="FILE")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for dataset in args.datasets:
        for steps in args.timesteps:
            base = None
            for rule in args.rules:
                runs = [run(rule, dataset, steps, args.epochs, seed) for seed in range(args.seeds)]
                row = {"dataset": dataset, "T": steps, "rule": rule,
                       "accuracy": float(np.mean([r["accuracy"] for r in runs])),
                       "accuracy_std": float(np.std([r["accuracy"] for r in runs])),
                       "activation_bytes": int(np.mean([r["activation_bytes"] for r in runs])),
                       "seconds_per_epoch": float(np.mean([r["seconds_per_epoch"] for r in runs])),
                       "describe": runs[0]["describe"]}
                if rule == "bptt":
                    base = row
                if base is not None:
                    row["memory_vs_bptt"] = row["activation_bytes"] / base["activation_bytes"]
                    row["time_vs_bptt"] = row["seconds_per_epoch"] / base["seconds_per_epoch"]
                    row["accuracy_minus_bptt"] = row["accuracy"] - base["accuracy"]
                rows.append(row)
                print(f"{dataset:8s} T={steps:2d} {rule:9s} acc {row['accuracy']:.3f}±{row['accuracy_std']:.3f}  "
                      f"mem {row['activation_bytes'] / 1024:8.1f} KiB ({row.get('memory_vs_bptt', 1):.2f}x)  "
                      f"{row['seconds_per_epoch']:.2f} s/epoch ({row.get('time_vs_bptt', 1):.2f}x)", flush=True)
    lines = ["| dataset | T | rule | test acc. | Δ acc. vs BPTT (points) | activation memory | vs BPTT | s/epoch "
             "| vs BPTT |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        accuracy = f"{r['accuracy'] * 100:.1f} ± {r['accuracy_std'] * 100:.1f}"
        lines.append(f"| {r['dataset']} | {r['T']} | {r['rule']} | {accuracy} | "
                     f"{r.get('accuracy_minus_bptt', 0) * 100:+.1f} | {r['activation_bytes'] / 1024:.1f} KiB | "
                     f"{r.get('memory_vs_bptt', 1):.2f}× | {r['seconds_per_epoch']:.2f} | "
                     f"{r.get('time_vs_bptt', 1):.2f}× |")
    table = "\n".join(lines)
    print("\n" + table)
    for dataset in args.datasets:
        sltt = next((r for r in rows if r["dataset"] == dataset and r["T"] == 8 and r["rule"] == "sltt"), None)
        if sltt and "memory_vs_bptt" in sltt:
            saved = 1 - sltt["memory_vs_bptt"]
            gap = sltt["accuracy_minus_bptt"] * 100
            print(f"target ({dataset}, T=8): SLTT saves {saved:.0%} activation memory (>= 60 %: "
                  f"{'met' if saved >= 0.6 else 'MISSED'}), accuracy {gap:+.1f} points vs BPTT (within 1.5: "
                  f"{'met' if gap >= -1.5 else 'MISSED'})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
