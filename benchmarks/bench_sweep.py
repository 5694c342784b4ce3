"""Wall time of the example sweep on a LocalCluster of 1 and of 2 workers, and the speed-up (target >= 1.6x on
2 cores).

Each run starts from an empty folder (every training, hwsim run and point is computed) and includes starting the
cluster and its workers, as a user's ``hwsim sweep`` does. On a machine that others share, the speed-up says as much
about them as about the sweep, so the benchmark also prints the load average before and after each run and the
cores actually free to it: two processes of the same pure-Python loop against one (2.0 when two cores are free,
1.0 when the two together get no more CPU than one alone -- then no worker count can speed anything up).

    python benchmarks/bench_sweep.py [--config examples/sweep_small.yaml] [--workers 1 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.study.sweep import load_sweep, run_sweep  # noqa: E402

TARGET = 1.6


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def free_cores(workers: int = 2, n: int = 5_000_000) -> float:
    """How many of ``workers`` processes' worth of CPU this process tree gets now (``workers`` when idle)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_spin, [1000] * workers))  # processes started before timing
        start = time.perf_counter()
        list(pool.map(_spin, [n]))
        one = time.perf_counter() - start
        start = time.perf_counter()
        list(pool.map(_spin, [n] * workers))
        many = time.perf_counter() - start
    return workers * one / many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "examples" / "sweep_small.yaml"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    config = load_sweep(args.config)
    print(f"{args.config}; {os.cpu_count()} cores on this machine; free to this benchmark now: {free_cores():.1f} "
          f"(load average {os.getloadavg()[0]:.2f})")
    results = {}
    for n in args.workers:
        with tempfile.TemporaryDirectory(prefix=f"bench_sweep_{n}_") as folder:
            load = os.getloadavg()[0]
            start = time.perf_counter()
            summary = run_sweep(config, Path(folder) / "out", workers=n, progress=False, log=lambda *_: None)
            seconds = time.perf_counter() - start
            results[n] = {"seconds": round(seconds, 1), "points": summary.points, "failed": summary.failed,
                          "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}
        print(f"  {n} worker(s): {seconds:7.1f} s for {summary.points} points ({summary.failed} failed); "
              f"load average {results[n]['load_before']} before, {results[n]['load_after']} after")
    results["free_cores_after"] = round(free_cores(), 2)
    print(f"free cores after: {results['free_cores_after']:.1f}")
    if 1 in results and 2 in results:
        speedup = results[1]["seconds"] / results[2]["seconds"]
        results["speedup_2_over_1"] = round(speedup, 2)
        print(f"speed-up 2 workers over 1: {speedup:.2f}x (target >= {TARGET}x): "
              f"{'met' if speedup >= TARGET else 'MISS'}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
