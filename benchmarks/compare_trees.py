"""Engine speed of two source trees, A/B: the same workloads, each tree in its own fresh interpreter, alternating.

For checking that a change of the kernels or the engine keeps its speed (e.g. ``git worktree add /tmp/before
HEAD`` against the working tree). Each round runs every workload in one process per tree (before, then after;
the order flips every round), each workload timed as the best of at least ``--runs`` runs and ``--seconds`` of
running, in wall time and in process CPU time. A machine shared with other jobs inflates wall time by whatever
the neighbours do in that minute; CPU time of a one-thread run is far less sensitive, so both are reported, and
the ratio per workload is of the best of each over all rounds.

Workloads: ``bench_core.py``'s 784-512-512-10, T = 100, Bernoulli 5 % and 20 %, batch 1 and 64, float and fixed;
``bench_conv.py``'s VGG-like net, T = 8, batch 1 and 16, at the thresholds its calibration finds for 5 % and
20 % hidden activity (fixed here, so that both trees run the very same network). One thread unless
``--threads``.

    python benchmarks/compare_trees.py BEFORE_ROOT AFTER_ROOT [--rounds N] [--runs N] [--seconds S] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONV_SPEC = "3x32x32-c64p1-c64p1-p2-c128p1-c128p1-p2-c256p1-p2-10"
CONV_THRESHOLDS = {0.05: [1.078, 1.121, 0.542, 1.046, 1.104, 0.545, 1.112, 0.545, 1.0],
                   0.20: [1.003, 1.129, 1.0, 0.905, 1.08, 1.0, 1.004, 1.0, 1.0]}  # bench_conv.py's calibration
CHILD = """
import dataclasses, json, sys, time
sys.path[:0] = [{root!r}, {here!r}]
import hwsim.sim.threads as threads
threads.set_threads({threads})
from alternate import best_within
from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.network import Network, from_spec

def with_thresholds(network, values):
    layers, k = [], 0
    for layer in network.layers:
        layer = dataclasses.replace(layer)
        if layer.neuron is not None:
            layer.neuron = dataclasses.replace(layer.neuron, v_th=values[k])
            k += 1
        layers.append(layer)
    return Network(network.input_shape, layers)

out = {{}}
for rate in (0.05, 0.2):
    for batch in (1, 64):
        x = bernoulli((100, batch, 784), rate, seed=1)
        for mode in ("float", "fixed"):
            engine = Engine(from_spec("784-512-512-10", mode))
            engine.run(x)
            out[f"dense {{mode}} {{rate:.0%}} b{{batch}}"] = best_within(lambda: engine.run(x), {runs}, {seconds})
conv = from_spec({conv!r}, "float", seed=0)
for rate, values in {thresholds!r}.items():
    net = with_thresholds(conv, values)
    for batch in (1, 16):
        x = bernoulli((8, batch, 3, 32, 32), rate, seed=1)
        engine = Engine(net)
        engine.run(x)
        out[f"conv float {{rate:.0%}} b{{batch}}"] = best_within(lambda: engine.run(x), {runs}, {seconds})
print("RESULT", json.dumps(out))
"""


def run_tree(root: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    code = CHILD.format(root=str(root), here=str(HERE), threads=args.threads, runs=args.runs, seconds=args.seconds,
                        conv=CONV_SPEC, thresholds=CONV_THRESHOLDS)
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{root}: {proc.stderr.strip().splitlines()[-1]}")
    line = [row for row in proc.stdout.splitlines() if row.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5, help="runs per workload and process, at least")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per workload and process, at least")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    best: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for r in range(args.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for tag in order:
            for name, (wall, cpu) in run_tree(getattr(args, tag), args).items():
                old = best[tag].get(name, [float("inf"), float("inf")])
                best[tag][name] = [min(old[0], wall), min(old[1], cpu)]
        print(f"round {r + 1} of {args.rounds} done", flush=True)
    print(f"\n{args.threads} thread(s); best of {args.rounds} rounds; ms per Engine.run; after / before "
          f"(> 1: after slower)")
    print(f"{'workload':<22} {'before wall':>11} {'after wall':>11} {'ratio':>6}   {'before CPU':>10} "
          f"{'after CPU':>10} {'ratio':>6}")
    for name in best["before"]:
        (bw, bc), (aw, ac) = best["before"][name], best["after"][name]
        print(f"{name:<22} {bw * 1e3:11.3f} {aw * 1e3:11.3f} {aw / bw:6.3f}   {bc * 1e3:10.3f} {ac * 1e3:10.3f} "
              f"{ac / bc:6.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(best, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
