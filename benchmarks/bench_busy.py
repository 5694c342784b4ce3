"""The default thread count on a busy machine: never more than 5 % slower than one thread.

CPU hogs (Python busy loops) are pinned to ``--hogs`` cores of this process's affinity (the last ones). A fresh
interpreter then starts as the CLI does (``hwsim.sim.threads`` imported first, ``set_threads(None)`` once its
imports are done), reports the default count it chose, and times ``Engine.run`` at one thread, at that count and
at every core, in turn (``alternate.alternate_best_many``: each keeps its best run over at least ``--seconds``;
where the default is one thread, its column times the very same set-up again: the spread between the two is
the machine's noise), on

* 784-512-512-10, T = 100, batch 64, 5 % Bernoulli input (float), the dense workload of ``bench_core.py``;
* 3x32x32-c16p1-p2-c32p1-p2-10, T = 8, batch 16, 20 % input (float), a conv workload.

Target: default / 1 thread <= 1.05 with the hogs running. The all-cores column is what a default of every
core would cost. ``--hogs 0`` measures the same without a hog (the default should then take every free core).

    python benchmarks/bench_busy.py [--seconds S] [--hogs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.05
HOG = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"
CHILD = """
import sys, time
sys.path[:0] = [{root!r}, {bench!r}]
import hwsim.sim.threads as threads  # first, as in the CLI: the probe window opens here
import numba
import numpy as np
from alternate import alternate_best_many
from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.network import from_spec
chosen = threads.set_threads(None)
every = threads.available_threads()
out = {{"default_threads": chosen, "available": every, "workloads": {{}}}}
for name, spec, shape, rate in (("dense 784-512-512-10, T=100, B=64", "784-512-512-10", (100, 64, 784), 0.05),
                                 ("conv 3x32x32-c16p1-p2-c32p1-p2-10, T=8, B=16", "3x32x32-c16p1-p2-c32p1-p2-10",
                                  (8, 16, 3, 32, 32), 0.2)):
    engine = Engine(from_spec(spec, seed=0))
    x = bernoulli(shape, rate, seed=1)
    for n in {{1, chosen, every}}:
        threads.set_threads(n)
        engine.run(x)  # kernels loaded, buffers made
    run = lambda: engine.run(x)
    (one, _), (default, _), (every_t, _) = alternate_best_many(
        (run, run, run), 3, {seconds},
        (lambda: threads.set_threads(1), lambda: threads.set_threads(chosen), lambda: threads.set_threads(every)))
    out["workloads"][name] = {{"one_s": one, "default_s": default, "all_s": every_t}}
print("RESULT", __import__("json").dumps(out))
"""


def measure(seconds: float) -> dict:
    code = CHILD.format(root=str(ROOT), bench=str(ROOT / "benchmarks"), seconds=seconds)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    line = [row for row in proc.stdout.splitlines() if row.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="minimum wall time of each alternating pair")
    parser.add_argument("--hogs", type=int, default=1, help="cores to keep busy with a CPU hog each (default 1)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    hogged = cpus[len(cpus) - min(max(args.hogs, 0), len(cpus)):]
    hogs = [subprocess.Popen([sys.executable, "-c", HOG, str(cpu)]) for cpu in hogged]
    if hogs:
        time.sleep(1.0)  # spinning before the measured process starts
    try:
        result = measure(args.seconds)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    result["hogs_on_cpus"] = hogged
    where = f"a CPU hog on CPU {', '.join(map(str, hogged))}" if hogs else "no hog"
    print(f"{len(cpus)} cores available, {where}: default {result['default_threads']} thread(s)")
    print(f"{'workload':<48} {'1 thread s':>10} {'default s':>10} {'all s':>10} {'default/1':>10} {'all/1':>7}")
    ok = True
    for name, w in result["workloads"].items():
        ratio, every = w["default_s"] / w["one_s"], w["all_s"] / w["one_s"]
        w["default_over_one"], w["all_over_one"] = ratio, every
        ok &= ratio <= TARGET or not hogs
        print(f"{name:<48} {w['one_s']:10.4f} {w['default_s']:10.4f} {w['all_s']:10.4f} {ratio:10.3f} "
              f"{every:7.3f}")
    if hogs:
        print(f"target: default <= {TARGET:g} x one thread with the hogs running: {'met' if ok else 'MISS'}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
