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

``--cold``: the first call on a fresh install, each in its own fresh ``NUMBA_CACHE_DIR`` (nothing compiled):

* ``hwsim run --net 16-8-4 -T 1`` (fixed point, the CLI's default mode);
* the study's first stage that runs kernels (``Study.stage_simulate``: the float network evaluated on chip with
  SLTT, quantised, run in float and fixed point; on ``StudyConfig()``'s defaults, digits, 64-128-128-10, T = 8,
  with an untrained network of that spec in place of the trained one), timed inside the process;
* ``python -m hwsim.cli.warm`` (what the install adds), then the same two in the cache it filled (warm start),
  best of ``--repeats``; the fraction of the cold start the warm-up removes is ``1 - warm / cold``.

``--specialisations``: compile seconds of each layer kernel per weight type (float32; int8, uint8, int16 in
fixed point), serial and parallel, first calls in a fresh cache -- what one signature instead of several saves.

    python benchmarks/bench_startup.py [--repeats N] [--json FILE] [--cold] [--specialisations]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
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
RUN = COMMANDS["hwsim run --net 16-8-4 -T 1"]
STAGE = """
import pathlib, shutil, sys, tempfile, time
import hwsim.sim.threads
from hwsim.sim.network import from_spec, save
from hwsim.study.pipeline import Study, StudyConfig
config = StudyConfig()
out = pathlib.Path(tempfile.mkdtemp(prefix="hwsim-stage-"))
study = Study(config, out, progress=False, log=lambda *args: None)
(out / "train").mkdir()
save(from_spec(config.network, seed=config.seed), out / "train" / f"{config.train_rules[0]}.network.npz")
try:
    start = time.perf_counter()
    study.stage_simulate({})
    print("STAGE", time.perf_counter() - start)
finally:
    shutil.rmtree(out, ignore_errors=True)
"""
SPECIALISATIONS = """
import time
import hwsim.sim.threads
import numba
import numpy as np
from hwsim.sim.kernels import layer
from hwsim.sim.kernels.records import EventSource, FixedNeurons, FloatNeurons, LayerOutput, Synapses
numba.njit(lambda x: x + 1)(1)  # numba's own first-compile set-up, outside the timings
steps, n_in, n_out = 2, 8, 4
empty = np.zeros(0, np.int64)
source = EventSource(empty, empty, np.zeros(0, np.int32), np.zeros((steps, 1, n_in), np.uint8),
                     np.zeros((1, n_in), np.int32))
for kernel in ("serial", "parallel"):
    for dtype in ("float32", "int8", "uint8", "int16"):
        fixed = dtype != "float32"
        state = np.int32 if fixed else np.float32
        neurons = (FixedNeurons(np.zeros(n_out, np.int32), 0, 0, 1) if fixed
                   else FloatNeurons(np.zeros(n_out, np.float32), np.float32(0.5), np.float32(1.0), True))
        out = LayerOutput(np.zeros((steps, 1, n_out), np.uint8), np.zeros((0, 0, 0), state),
                          np.zeros((0, 0, 0), state), np.zeros((1, 4, steps), np.int64),
                          np.zeros((1, 16), np.int32), np.zeros((1, 16), np.int32), empty, empty,
                          np.zeros(0, np.int32))
        run = getattr(layer, ("run_fixed_layer" if fixed else "run_float_layer")
                      + ("_serial" if kernel == "serial" else ""))
        start = time.perf_counter()
        run(Synapses(0, np.ones((n_in, n_out), dtype), np.zeros(10, np.int64), 1, 0), neurons, source, out, 1, 1)
        print("SPEC", kernel, dtype, time.perf_counter() - start)
"""


def wall(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True, cwd=ROOT, env=env)
    return time.perf_counter() - start


def tagged(code: str, env: dict, tag: str) -> list[list[str]]:
    """Run ``code`` in a fresh interpreter; the fields of its stdout lines that start with ``tag``."""
    proc = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT,
                          env=env)
    return [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith(tag + " ")]


def stage_seconds(env: dict) -> float:
    """Seconds of ``Study.stage_simulate`` in a fresh interpreter (imports excluded)."""
    return float(tagged(STAGE, env, "STAGE")[-1][0])


def fresh_cache(env: dict) -> tuple[dict, str]:
    folder = tempfile.mkdtemp(prefix="hwsim-cold-numba-")
    return {**env, "NUMBA_CACHE_DIR": folder}, folder


def cold_start(env: dict, repeats: int) -> dict:
    """First ``hwsim run`` and first study stage in fresh caches, the warm-up's own time, then both again in
    the cache the warm-up filled."""
    out, folders = {}, []
    try:
        cold, folder = fresh_cache(env)
        folders.append(folder)
        out["run_cold_s"] = wall(RUN, cold)
        cold, folder = fresh_cache(env)
        folders.append(folder)
        out["stage_cold_s"] = stage_seconds(cold)
        warmed, folder = fresh_cache(env)
        folders.append(folder)
        out["warm_up_s"] = wall(["-m", "hwsim.cli.warm", "--quiet"], warmed)
        out["run_warm_s"] = min(wall(RUN, warmed) for _ in range(repeats))
        out["stage_warm_s"] = min(stage_seconds(warmed) for _ in range(repeats))
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    for what in ("run", "stage"):
        out[f"{what}_removed_fraction"] = 1.0 - out[f"{what}_warm_s"] / out[f"{what}_cold_s"]
    return out


def specialisations(env: dict) -> dict[str, float]:
    """Compile seconds of each layer kernel per weight dtype (first calls in a fresh cache)."""
    cold, folder = fresh_cache(env)
    try:
        return {f"{kernel} {dtype}": float(s) for kernel, dtype, s in tagged(SPECIALISATIONS, cold, "SPEC")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--cold", action="store_true", help="also the first run and study stage on a fresh cache, "
                        "and what python -m hwsim.cli.warm removes of them")
    parser.add_argument("--specialisations", action="store_true",
                        help="also the compile time of each layer kernel per weight type")
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
    report = {"seconds": results, "target_s": TARGET_S, "run_above_floor_s": run_s - floor_s}
    if args.cold:
        cold = report["cold"] = cold_start(env, args.repeats)
        print(f"\ncold start (fresh numba cache) vs warm start (after python -m hwsim.cli.warm, "
              f"{cold['warm_up_s']:.1f} s at install)")
        for what, name in (("run", "hwsim run --net 16-8-4 -T 1 (whole command)"),
                           ("stage", "study stage 'simulate' (inside the process)")):
            print(f"  {name:46s} cold {cold[f'{what}_cold_s']:7.2f} s   warm {cold[f'{what}_warm_s']:6.2f} s   "
                  f"warm-up removes {cold[f'{what}_removed_fraction']:.0%}")
    if args.specialisations:
        spec = report["specialisations_s"] = specialisations(env)
        print("\ncompile seconds per layer kernel and weight type (first call, fresh cache)")
        for name, seconds in spec.items():
            print(f"  {name:18s} {seconds:6.2f} s")
        fixed = [spec[f"{k} {d}"] for k in ("serial", "parallel") for d in ("int8", "uint8", "int16")]
        one = [spec[f"{k} int8"] for k in ("serial", "parallel")]
        print(f"  fixed point, 3 weight types: {sum(fixed):.1f} s; one type would compile in about {sum(one):.1f} s "
              f"(a first command compiles only the types its network has)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
