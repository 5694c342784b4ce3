"""Start-up time of the ``hwsim`` command: wall time of whole short commands, each in a fresh interpreter.

* ``hwsim --version`` -- the interpreter and the argument parser alone;
* ``hwsim chips --json`` -- list the chip profiles (reads and validates every YAML file);
* ``hwsim run --net 16-8-4 -T 1`` -- everything a run loads before it simulates (numba, the engine, the
  compiled kernels from numba's on-disk cache) plus a one-step run;
* ``import hwsim.cli.main, hwsim.sim.engine`` -- the imports of ``hwsim run`` alone;
* ``numba floor`` -- a fresh interpreter that imports numpy and numba and calls one trivial ``@njit(cache=True)``
  function from numba's on-disk cache: what any numba program pays before its first result (importing numba,
  then numba's type registries on the first dispatch, which import its numpy support and, with it, SciPy's
  BLAS bindings). ``hwsim run`` cannot start faster than this floor; the benchmark prints what hwsim adds to it.

Target: ``hwsim chips`` and ``hwsim run`` under 0.5 s. The kernels are compiled once (a warm-up call) before
timing, so the numbers are those of a user's second and later calls. Best of ``--repeats``.

    python benchmarks/bench_startup.py [--repeats N] [--json FILE]
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
TARGET_S = 0.5
COMMANDS = {
    "hwsim --version": ["-m", "hwsim", "--version"],
    "hwsim chips --json": ["-m", "hwsim", "chips", "--json"],
    "hwsim run --net 16-8-4 -T 1": ["-m", "hwsim", "run", "--net", "16-8-4", "-T", "1"],
    "import hwsim.cli.main, hwsim.sim.engine": ["-c", "import hwsim.cli.main, hwsim.sim.engine"],
}
FLOOR_NAME = "numba floor (one cached @njit call)"
FLOOR = """
import numba, numpy
@numba.njit(cache=True)
def first(x):
    return x.sum()
first(numpy.ones(3))
"""
TARGETS = {"hwsim chips --json": TARGET_S, "hwsim run --net 16-8-4 -T 1": TARGET_S}


def wall(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True, cwd=ROOT, env=env)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    floor_dir = ROOT / ".bench_startup_cache"  # the floor's function is cached like hwsim's kernels
    floor_dir.mkdir(exist_ok=True)
    (floor_dir / "numba_floor.py").write_text(FLOOR)
    commands = {**COMMANDS, FLOOR_NAME: [str(floor_dir / "numba_floor.py")]}
    for argv in commands.values():  # warm-up: numba's kernel cache, the OS file cache
        wall(argv, env)
    results = {}
    for name, argv in commands.items():
        results[name] = min(wall(argv, env) for _ in range(args.repeats))
        target = TARGETS.get(name)
        verdict = "" if target is None else (
            f"  target < {target:g} s: {'met' if results[name] < target else 'MISS'} "
            f"(ratio {target / results[name]:.2f})")
        print(f"{name:34s} {results[name]:.3f} s{verdict}")
    run_s, floor_s = results["hwsim run --net 16-8-4 -T 1"], results[FLOOR_NAME]
    print(f"hwsim run above the numba floor: {run_s - floor_s:+.3f} s "
          f"({'the 0.5 s target is below the floor itself' if floor_s >= TARGET_S else 'floor below the target'})")
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": results, "target_s": TARGET_S,
                                               "run_above_floor_s": run_s - floor_s}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
