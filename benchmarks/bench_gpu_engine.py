"""The torch engine for large batches (``hwsim.sim.torch_engine``) against the CPU engine and a plain torch loop.

Workloads, each in float and in Loihi fixed point, Bernoulli input at ``--rate`` (5 %):

* ``mlp``: 784-512-512-10 (``from_spec``, seed 0), T = 100;
* ``conv``: the VGG-style net of ``benchmarks/bench_conv.py`` (``3x32x32-c64p1-c64p1-p2-c128p1-c128p1-p2-c256p1-p2-10``,
  T = 8); float thresholds calibrated so that every hidden layer fires about ``--rate`` of its neurons per step
  (``bench_conv.calibrate``); fixed point as ``from_spec`` makes it.

At batch 1, 64 and 1024 (``--batches``) it times, best of at least ``--repeats`` runs and ``MIN_SECONDS`` of
running, after a warm-up run (kernel compilation, cuDNN's algorithm choice and CUDA start-up excluded):

* the torch engine on ``--device`` (a whole ``TorchEngine.run``: input to the device, every layer, exact counts,
  output spikes back to numpy), its neurons in fused Triton kernels where they run (CUDA with Triton installed),
  and at the largest batch also with its neurons op by op in torch (``lif="torch"``);
* the CPU engine (``hwsim.sim.engine.Engine``, numba) on ``--threads`` threads (default: all cores);
* a plain torch loop on ``--device`` (float only): per step every layer as a dense op plus the LIF in torch ops,
  no counting, TF32 off (as the engine) -- what a user would write by hand.

Reported: seconds per run, simulated steps per second (all samples advance together) and SOPs per second (the
exact SOPs of the run, the same for every contender), the speed-ups, and whether the torch engine's counts
(and, fixed point, spikes) are identical to the CPU engine's. Target: the torch engine at batch 1024
at least 20x the CPU engine on 16 cores, for both workloads; printed as met/MISS per workload and mode.

    python benchmarks/bench_gpu_engine.py [--device cuda] [--threads 16] [--json FILE]
    python benchmarks/bench_gpu_engine.py --device cpu --quick      # a smoke run of the code path, tiny sizes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import hwsim.sim.threads  # noqa: E402, F401, I001  (first: the OpenMP wait policy, before torch and numba start)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from alternate import best_within  # noqa: E402
from hwsim.sim.engine import Engine, bernoulli  # noqa: E402
from hwsim.sim.network import Conv2d, Dense, Flatten, Network, SumPool2d, from_spec  # noqa: E402
from hwsim.sim.threads import available_threads, set_threads  # noqa: E402
from hwsim.sim.torch_engine import TorchEngine, TorchEngineError, ieee_float32, resolve_device  # noqa: E402

TARGET = 20.0  # torch engine / CPU engine at batch 1024, CPU engine on TARGET_THREADS cores
TARGET_THREADS = 16
MIN_SECONDS = 0.5  # each timing: best run of at least --repeats runs and this many seconds
FULL = {"mlp": ("784-512-512-10", 100), "conv": ("3x32x32-c64p1-c64p1-p2-c128p1-c128p1-p2-c256p1-p2-10", 8)}
QUICK = {"mlp": ("64-48-48-10", 10), "conv": ("3x12x12-c8p1-p2-c16p1-p2-10", 4)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(network: Network, weights: list, x: torch.Tensor) -> torch.Tensor:
    """The float network as a plain torch loop over time on ``x``'s device: per step every layer's dense op and
    the same LIF (soft or zero reset), nothing counted; returns the output spikes (T, B, n)."""
    state: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    out = []
    with torch.no_grad(), ieee_float32():
        for t in range(x.shape[0]):
            s = x[t]
            for k, layer in enumerate(network.layers):
                if isinstance(layer, Flatten):
                    s = s.flatten(1)
                    continue
                if isinstance(layer, Conv2d):
                    cur = F.conv2d(s, weights[k], stride=layer.stride, padding=layer.padding)
                elif isinstance(layer, SumPool2d):
                    cur = F.avg_pool2d(s, layer.kernel, layer.stride, divisor_override=1) * layer.weight
                else:
                    cur = F.linear(s, weights[k])
                if layer.bias is not None:
                    cur = cur + weights[f"b{k}"]
                n = layer.neuron
                u, prev = state.get(k, (torch.zeros_like(cur), torch.zeros_like(cur)))
                u = n.lam * (u - n.v_th * prev) + cur if n.reset == "soft" else n.lam * (u * (1 - prev)) + cur
                s = (u >= n.v_th).float()
                state[k] = (u, s)
            out.append(s)
    return torch.stack(out)


def loop_weights(network: Network, device: torch.device) -> dict:
    weights = {}
    for k, layer in enumerate(network.layers):
        if isinstance(layer, (Dense, Conv2d)):
            weights[k] = torch.as_tensor(np.ascontiguousarray(layer.weight), dtype=torch.float32, device=device)
            if layer.bias is not None:
                shape = (-1,) + (1,) * (2 if isinstance(layer, Conv2d) else 0)
                weights[f"b{k}"] = torch.as_tensor(layer.bias.reshape(shape), dtype=torch.float32, device=device)
    return weights


def same_counts(a, b) -> bool:
    """Every counter of two runs identical (per step, per kind, per neuron)."""
    for la, lb in zip(a.layers, b.layers):
        if la.to_dict() != lb.to_dict():
            return False
        for key in la.events:
            if not np.array_equal(la.events[key], lb.events[key]):
                return False
        for key in ("neuron_spikes", "neuron_active", "input_spikes"):
            if not np.array_equal(getattr(la, key), getattr(lb, key)):
                return False
    return len(a.layers) == len(b.layers)


def networks(args) -> dict[tuple[str, str], Network]:
    """The four workload networks: (workload, mode) -> network (conv float calibrated to ``--rate``)."""
    import bench_conv

    specs = QUICK if args.quick else FULL
    nets = {}
    for name, (spec, steps) in specs.items():
        for mode in ("float", "fixed"):
            net = from_spec(spec, mode, seed=0)
            if name == "conv" and mode == "float":
                calib = bernoulli((steps, 2, *net.input_shape), args.rate, seed=7)
                started = time.perf_counter()
                net = bench_conv.calibrate(net, args.rate, calib)
                print(f"conv float: thresholds calibrated to {args.rate:.0%} hidden activity in "
                      f"{time.perf_counter() - started:.1f} s", flush=True)
            nets[name, mode] = net
    return nets


def measure(name: str, mode: str, network: Network, steps: int, batch: int, args, device: torch.device) -> dict:
    """One workload, mode and batch: every contender timed, counts compared."""
    x = bernoulli((steps, batch, *network.input_shape), args.rate, seed=1)
    engine = TorchEngine(network, device)
    ours = engine.run(x)  # warm-up (and the run compared below)
    cpu = Engine(network)
    ref = cpu.run(x)
    sops = ref.counts.total("sop")
    hidden = ref.counts.layers[:-1]
    entry = {"workload": name, "mode": mode, "batch": batch, "T": steps, "sop": sops,
             "hidden_activity": sum(lc.total("spikes_out") for lc in hidden)
             / max(1, steps * batch * sum(lc.n_out for lc in hidden)),
             "counts_identical": same_counts(ref.counts, ours.counts),
             "output_identical": bool(np.array_equal(ours.output, ref.output)), "chunks": list(engine.chunks)}
    entry["torch_engine_s"] = best_within(lambda: engine.run(x), args.repeats, MIN_SECONDS)[0]
    entry["layer_seconds"] = list(engine.layer_seconds)
    entry["lif"], entry["lif_note"] = engine.lif, engine.lif_note
    if engine.lif == "triton" and batch == max(args.batches):  # the same engine with its neurons op by op
        ops = TorchEngine(network, device, lif="torch")
        ops.run(x)
        entry["torch_ops_engine_s"] = best_within(lambda: ops.run(x), args.repeats, MIN_SECONDS)[0]
    entry["cpu_engine_s"] = best_within(lambda: cpu.run(x), 1 if batch >= 1024 else args.repeats, MIN_SECONDS)[0]
    if mode == "float":
        weights = loop_weights(network, device)
        xd = torch.from_numpy(x).to(device).float()

        def loop() -> None:
            plain_loop(network, weights, xd)
            sync(device)

        loop()
        entry["torch_loop_s"] = best_within(loop, args.repeats, MIN_SECONDS)[0]
    for who in ("torch_engine", "cpu_engine", "torch_loop"):
        if f"{who}_s" in entry:
            entry[f"{who}_steps_per_s"] = steps / entry[f"{who}_s"]
            entry[f"{who}_gsops"] = sops / entry[f"{who}_s"] / 1e9
    entry["vs_cpu_engine"] = entry["cpu_engine_s"] / entry["torch_engine_s"]
    if "torch_loop_s" in entry:
        entry["vs_torch_loop"] = entry["torch_loop_s"] / entry["torch_engine_s"]
    return entry


def line(e: dict) -> str:
    loop = (f"  loop {e['torch_loop_s'] * 1e3:9.2f} ms ({e['vs_torch_loop']:5.2f}x)" if "torch_loop_s" in e
            else f"  loop {'-':>9}   {'':8}")
    return (f"{e['workload']:4} {e['mode']:5} B={e['batch']:<5} activity {e['hidden_activity']:5.1%}  "
            f"torch engine {e['torch_engine_s'] * 1e3:9.2f} ms {e['torch_engine_steps_per_s']:9.1f} steps/s "
            f"{e['torch_engine_gsops']:8.2f} G SOP/s  CPU engine {e['cpu_engine_s'] * 1e3:9.2f} ms "
            f"{e['cpu_engine_gsops']:7.2f} G SOP/s  engine/CPU {e['vs_cpu_engine']:7.2f}x{loop}  counts "
            f"{'identical' if e['counts_identical'] else 'DIFFER'}  neurons: {e['lif']}"
            + (f" (torch ops: {e['torch_ops_engine_s'] * 1e3:.2f} ms)" if "torch_ops_engine_s" in e else "")
            + (f" [{e['lif_note']}]" if e["lif_note"] else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="torch device of the torch engine and loop (cuda, cpu)")
    parser.add_argument("--threads", type=int, default=None, help="CPU engine threads (default: all cores)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--workloads", nargs="+", choices=list(FULL), default=list(FULL))
    parser.add_argument("--modes", nargs="+", choices=["float", "fixed"], default=["float", "fixed"])
    parser.add_argument("--rate", type=float, default=0.05, help="input (and conv hidden) activity")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code path, measures nothing")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
    except TorchEngineError as err:
        parser.exit(2, f"bench_gpu_engine: --device: {err}\n")
    if args.quick:
        args.batches, args.repeats = [1, 4], 1
    threads = set_threads(args.threads or available_threads())  # every core, busy or not (as bench_core)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"torch engine on {device} ({name}); CPU engine on {threads} threads of {os.cpu_count()} cores; "
          f"torch {torch.__version__}", flush=True)
    nets = networks(args)
    specs = QUICK if args.quick else FULL
    results = {"device": str(device), "device_name": name, "threads": threads, "cpu_count": os.cpu_count(),
               "torch": torch.__version__, "rate": args.rate, "runs": []}
    for workload in args.workloads:
        for mode in args.modes:
            for batch in args.batches:
                entry = measure(workload, mode, nets[workload, mode], specs[workload][1], batch, args, device)
                results["runs"].append(entry)
                print(line(entry), flush=True)
    print("\ntargets (torch engine / CPU engine at the largest batch; the target is stated for the CPU engine on "
          f"{TARGET_THREADS} cores, here {threads} threads)")
    top = max(args.batches)
    results["targets"] = []
    for e in results["runs"]:
        if e["batch"] != top:
            continue
        met = e["vs_cpu_engine"] >= TARGET
        spec, steps = specs[e["workload"]]
        results["targets"].append({"workload": e["workload"], "mode": e["mode"], "batch": top,
                                   "value": e["vs_cpu_engine"], "target": TARGET, "met": met})
        print(f"  {'met ' if met else 'MISS'}  {e['workload']} {e['mode']:5} {spec}, T={steps}, batch {top}: "
              f"{e['vs_cpu_engine']:.1f}x the CPU engine (>= {TARGET:g}x)")
    differ = [e for e in results["runs"] if not e["counts_identical"]]
    print(f"counts identical to the CPU engine in {len(results['runs']) - len(differ)} of {len(results['runs'])} runs"
          + ("" if not differ else " (float runs may differ where a membrane lies within float32 rounding of the "
             "threshold; fixed point never may): " + ", ".join(f"{e['workload']} {e['mode']} B={e['batch']}"
                                                               for e in differ)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
