"""Conv speed, side by side in one run: hwsim float (event driven) vs the same network as torch Conv2d + LIF.

Network ``3x32x32-c64p1-c64p1-p2-c128p1-c128p1-p2-c256p1-p2-10`` (``hwsim.sim.network.from_spec``, seed 0,
VGG-like), T = 8. For each activity level the thresholds are scaled, layer by layer, so that every hidden
layer fires that fraction of its neurons per step (bisection on a calibration input; the input is
Bernoulli at the same rate). Reported per activity level and batch:

* hwsim seconds at 1 thread and at all threads, torch seconds at 1 thread (``torch.set_num_threads(1)``;
  dense ``conv2d``/``avg_pool2d``/``linear`` per step plus the same LIF in torch ops);
* hwsim conv layers, G SOP/s per core (their share of the network run, ``Engine.layer_seconds``, 1 thread);
* ratios hwsim / torch (> 1: hwsim faster) and the thread speed-up;
* where event-driven stops paying: the activity at which hwsim (1 thread) and torch (1 thread) take
  the same time, at batch 1 and 16, interpolated between the measured levels (2 % to 60 %).

Timings are the best of ``--repeats`` runs after one warm-up run (kernel load excluded); hwsim at 1 and at all
threads is run alternately for at least ``THREAD_SECONDS`` (and ``--repeats`` times), each keeping its best.

    python benchmarks/bench_conv.py [--json FILE] [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import hwsim.sim.threads  # noqa: E402, F401, I001  (first: the OpenMP wait policy, before torch and numba start)

import numpy as np
import torch
import torch.nn.functional as F

from alternate import StealMeter, alternate_best, best_within  # noqa: E402
from hwsim.sim.engine import Engine, bernoulli  # noqa: E402
from hwsim.sim.network import Conv2d, Dense, Flatten, Network, SumPool2d, from_spec  # noqa: E402
from hwsim.sim.threads import available_threads, set_threads  # noqa: E402

SPEC, STEPS = "3x32x32-c64p1-c64p1-p2-c128p1-c128p1-p2-c256p1-p2-10", 8
LEVELS = (0.05, 0.20)  # the two activity levels the targets are set at
SWEEP = (0.02, 0.05, 0.10, 0.20, 0.30, 0.45, 0.60)  # levels for the crossover
TARGETS = {"conv_b1_gsops": 5.0, "vs_torch_b1_5": 1.0, "vs_torch_b16_5": 1.0, "vs_torch_b1_20": 0.5,
           "threads_b16": 1.7}
THREAD_SECONDS = 4.0  # 1 and all threads alternate for at least this long (each keeps its best run)


def with_thresholds(network: Network, thresholds: list[float]) -> Network:
    """A copy of ``network`` (weights shared) whose neuron layers have the given thresholds."""
    layers, k = [], 0
    for layer in network.layers:
        layer = dataclasses.replace(layer)
        if layer.neuron is not None:
            layer.neuron = dataclasses.replace(layer.neuron, v_th=thresholds[k])
            k += 1
        layers.append(layer)
    return Network(network.input_shape, layers)


def calibrate(network: Network, rate: float, x: np.ndarray) -> Network:
    """Thresholds such that every hidden neuron layer fires about ``rate`` of its neurons per step
    (bisection in log space, layer after layer, each on the network up to that layer)."""
    n_layers = sum(layer.neuron is not None for layer in network.layers)
    thresholds = [1.0] * n_layers
    for k in range(n_layers - 1):  # the output layer keeps its threshold
        lo, hi = 1e-2, 1e2
        for _ in range(14):
            mid = float(np.sqrt(lo * hi))
            thresholds[k] = mid
            tuned = with_thresholds(network, thresholds)
            upto = [i for i, layer in enumerate(tuned.layers) if layer.neuron is not None][k]
            fired = Engine(Network(tuned.input_shape, tuned.layers[:upto + 1])).run(x).counts.layers[k]
            if fired.total("spikes_out") / (x.shape[0] * x.shape[1] * fired.n_out) > rate:
                lo = mid
            else:
                hi = mid
        thresholds[k] = float(np.sqrt(lo * hi))
    return with_thresholds(network, thresholds)


def torch_run(network: Network, x: torch.Tensor) -> torch.Tensor:
    """The same float LIF network in torch: dense conv/pool/linear per step, same LIF; output spikes."""
    with torch.no_grad():
        state: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        out = []
        for t in range(x.shape[0]):
            s = x[t]
            for k, layer in enumerate(network.layers):
                if isinstance(layer, Flatten):
                    s = s.flatten(1)
                    continue
                if isinstance(layer, Conv2d):
                    cur = F.conv2d(s, layer._torch_w, stride=layer.stride, padding=layer.padding)
                elif isinstance(layer, SumPool2d):
                    cur = F.avg_pool2d(s, layer.kernel, layer.stride) * (layer.kernel ** 2 * layer.weight)
                else:
                    cur = F.linear(s, layer._torch_w)
                n = layer.neuron
                u, prev = state.get(k, (torch.zeros_like(cur), torch.zeros_like(cur)))
                u = n.lam * (u - n.v_th * prev) + cur
                s = (u >= n.v_th).float()
                state[k] = (u, s)
            out.append(s)
    return torch.stack(out)


def conv_layer_speed(engine: Engine, x: np.ndarray, repeats: int) -> tuple[float, float]:
    """G SOP/s of the conv layers inside the network run (their kernels, counters and spike scans), from
    ``Engine.layer_seconds`` (wall) and ``Engine.layer_cpu_seconds`` (CPU), best of at least ``repeats`` runs
    and ``THREAD_SECONDS / 2`` of wall time."""
    convs = [k for k, plan in enumerate(engine.plans) if isinstance(plan.layer, Conv2d)]
    sops, wall, cpu = 0, float("inf"), float("inf")

    def run() -> None:
        nonlocal sops, wall, cpu
        counts = engine.run(x).counts
        wall = min(wall, sum(engine.layer_seconds[k] for k in convs))
        cpu = min(cpu, sum(engine.layer_cpu_seconds[k] for k in convs))
        sops = sum(counts.layers[k].total("sop") for k in convs)

    best_within(run, repeats, THREAD_SECONDS / 2)
    return sops / wall / 1e9, sops / max(cpu, 1e-9) / 1e9


def measure(network: Network, rate: float, batch: int, repeats: int, threads: int, conv: bool) -> dict:
    x = bernoulli((STEPS, batch, *network.input_shape), rate, seed=1)
    engine = Engine(network, cpu_times=True)
    engine.run(x[:1, :1])
    result = engine.run(x)
    counts = result.counts
    hidden = counts.layers[:-1]
    entry = {"rate": rate, "batch": batch, "sop": counts.total("sop"),
             "hidden_activity": sum(lc.total("spikes_out") for lc in hidden)
             / (STEPS * batch * sum(lc.n_out for lc in hidden))}
    # 1 thread and all threads alternately (the switch untimed), so that machine noise hits both alike, for at
    # least THREAD_SECONDS: the best of a few runs still carries a shared machine's noise into the speed-up
    with StealMeter() as steal:
        first, second = alternate_best((lambda: engine.run(x), lambda: engine.run(x)), repeats, THREAD_SECONDS,
                                       setups=(lambda: set_threads(1), lambda: set_threads(threads)))
    entry["steal_during_threads"] = steal.fraction
    best = {1: first, threads: second} if threads > 1 else {1: (min(first[0], second[0]), min(first[1], second[1]))}
    for n, (wall, _) in best.items():
        entry[f"hwsim_{n}t"] = wall
    entry["hwsim_1t_cpu"] = best[1][1]
    xt = torch.from_numpy(x.astype(np.float32))
    torch_out = torch_run(network, xt)
    # torch gets the same chance of a quiet moment as hwsim's alternating runs: half their minimum wall time
    entry["torch_1t"], entry["torch_1t_cpu"] = best_within(lambda: torch_run(network, xt), repeats,
                                                           THREAD_SECONDS / 2)
    entry["output_agreement"] = float((torch_out.numpy().astype(np.uint8) == result.output).mean())
    if conv:
        set_threads(1)
        entry["conv_gsops_1t"], entry["conv_gsops_1t_cpu"] = conv_layer_speed(engine, x, repeats)
    set_threads(threads)
    entry["vs_torch"] = entry["torch_1t"] / entry["hwsim_1t"]
    entry["vs_torch_cpu"] = entry["torch_1t_cpu"] / entry["hwsim_1t_cpu"]
    entry["thread_speedup"] = entry["hwsim_1t"] / entry[f"hwsim_{threads}t"]
    return entry


def crossover(points: list[tuple[float, float]]) -> float | None:
    """Activity where hwsim/torch speed ratio crosses 1, log-interpolated; None if it never does."""
    for (r0, v0), (r1, v1) in zip(points, points[1:]):
        if v0 >= 1.0 > v1:
            f = np.log(v0) / (np.log(v0) - np.log(v1))
            return float(np.exp(np.log(r0) + f * (np.log(r1) - np.log(r0))))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per contender")
    parser.add_argument("--threads", type=int, default=None, help="'all threads' count (default: all cores)")
    parser.add_argument("--quick", action="store_true", help="only the two target levels (no crossover sweep)")
    args = parser.parse_args()
    threads = set_threads(args.threads or available_threads())  # every core, busy or not (not the default)
    base = from_spec(SPEC, "float", seed=0)
    calib_x = bernoulli((STEPS, 2, *base.input_shape), 0.1, seed=7)
    results = {"network": SPEC, "timesteps": STEPS, "machine": platform.processor() or platform.machine(),
               "cpu_count": os.cpu_count(), "threads": threads, "runs": [], "sweep": []}
    levels = LEVELS if args.quick else tuple(sorted(set(LEVELS) | set(SWEEP)))
    networks = {}
    for rate in levels:
        x = bernoulli(calib_x.shape, rate, seed=7)
        net = calibrate(base, rate, x)
        for layer in net.layers:
            if isinstance(layer, (Conv2d, Dense)):
                layer._torch_w = torch.from_numpy(np.ascontiguousarray(layer.weight))
        networks[rate] = net
        print(f"calibrated {rate:.0%}: thresholds "
              f"{[round(layer.neuron.v_th, 3) for layer in net.layers if layer.neuron]}", flush=True)
    for rate in levels:
        for batch in (1, 16):
            entry = measure(networks[rate], rate, batch, args.repeats, threads, conv=batch == 1 and rate in LEVELS)
            if rate in LEVELS:
                results["runs"].append(entry)
            results["sweep"].append(entry)
            print(f"activity {rate:.0%} (measured {entry['hidden_activity']:.1%}) batch {batch:>2}: hwsim "
                  f"{entry['hwsim_1t']:.4f} s (1t), {entry[f'hwsim_{threads}t']:.4f} s ({threads}t); torch "
                  f"{entry['torch_1t']:.4f} s; hwsim/torch {entry['vs_torch']:.2f}x"
                  + (f"; conv layers {entry['conv_gsops_1t']:.2f} G SOP/s" if "conv_gsops_1t" in entry else ""),
                  flush=True)

    print(f"\n{SPEC}, T={STEPS}; hwsim float vs torch Conv2d+LIF (1 thread); {threads} = all threads\n")
    print(f"{'activity':>8}  {'batch':>5}  {'hwsim 1t s':>10}  {f'hwsim {threads}t s':>10}  {'torch 1t s':>10}  "
          f"{'hwsim/torch':>11}  {'speed-up':>8}  {'conv GSOP/s':>11}  {'CPU-time: hwsim/torch':>21}  "
          f"{'conv GSOP/s':>11}")
    for e in results["runs"]:
        conv = f"{e['conv_gsops_1t']:11.2f}" if "conv_gsops_1t" in e else f"{'':>11}"
        conv_cpu = f"{e['conv_gsops_1t_cpu']:11.2f}" if "conv_gsops_1t" in e else f"{'':>11}"
        print(f"{e['hidden_activity']:8.1%}  {e['batch']:5d}  {e['hwsim_1t']:10.4f}  {e[f'hwsim_{threads}t']:10.4f}  "
              f"{e['torch_1t']:10.4f}  {e['vs_torch']:10.2f}x  {e['thread_speedup']:7.2f}x  {conv}  "
              f"{e['vs_torch_cpu']:20.2f}x  {conv_cpu}")
    print("(CPU-time columns: process CPU seconds of the 1-thread runs; on a machine shared with other jobs they "
          "show the speed per core that wall time hides)")
    if not args.quick:
        for batch in (1, 16):
            sweep = sorted((e["rate"], e["vs_torch"]) for e in results["sweep"] if e["batch"] == batch)
            print(f"\nbatch {batch} sweep (hwsim 1 thread / torch 1 thread): "
                  + ", ".join(f"{r:.0%}: {v:.2f}x" for r, v in sweep))
            cross = crossover(sweep)
            results[f"crossover_activity_b{batch}"] = cross
            print(f"event-driven stops paying at batch {batch} above about "
                  + (f"{cross:.0%} hidden activity" if cross else "(no crossover in the measured range)"))
    checks = []
    for e in results["runs"]:
        tag = f"{e['rate']:.0%}, batch {e['batch']}"
        if e["batch"] == 1:
            checks.append((f"conv layers G SOP/s per core, {tag}", e["conv_gsops_1t"], TARGETS["conv_b1_gsops"]))
        if e["rate"] == 0.05:
            key = "vs_torch_b1_5" if e["batch"] == 1 else "vs_torch_b16_5"
            checks.append((f"hwsim / torch speed, {tag}", e["vs_torch"], TARGETS[key]))
        if e["rate"] == 0.20 and e["batch"] == 1:
            checks.append((f"hwsim / torch speed, {tag}", e["vs_torch"], TARGETS["vs_torch_b1_20"]))
        if e["batch"] == 16 and threads > 1:
            checks.append((f"{threads} threads / 1 thread, {tag}", e["thread_speedup"], TARGETS["threads_b16"],
                           e["steal_during_threads"]))
    print("\ntargets")
    checks = [check if len(check) == 4 else (*check, None) for check in checks]
    for name, value, target, steal in checks:
        note = "" if steal is None else f"  steal {steal:.0%} meanwhile"
        print(f"  {'met ' if value >= target else 'MISS'}  {name:<40} {value:8.2f}  (>= {target:g}){note}")
    print("(steal: CPU time this machine's hypervisor gave to other guests while 1 and all threads were timed)")
    results["targets"] = [{"name": n, "value": v, "target": t, "met": v >= t, "steal": st}
                          for n, v, t, st in checks]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    if available_threads() < 1:
        raise SystemExit("no CPU available")
    main()
