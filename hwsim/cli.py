"""The ``hwsim`` command line.

Bad input ends with one line on stderr naming what was wrong (exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from hwsim.network import MODES, NetworkError

RUN_FIELDS = ("name", "kind", "n_in", "n_out", "spikes_in", "spikes_out", "sop", "neuron_updates",
              "mem_read_bytes", "mem_write_bytes")


class UsageError(ValueError):
    """A command-line argument is invalid."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwsim",
        description="Neuromorphic on-chip learning simulator: event-driven LIF cores with exact counts.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run Bernoulli spike input through a network and count every event",
        description="Run T steps of Bernoulli input through a network in the event-driven engine and print "
                    "per-layer counts: spikes, synaptic operations (SOPs), neuron updates, memory bytes.")
    run.add_argument("--net", required=True, metavar="SPEC|FILE",
                     help="network spec string (e.g. 784-512-10, 1x28x28-c8k3p1-p2-10) or a saved .npz network")
    run.add_argument("--timesteps", "-T", type=_positive_int, default=100, metavar="T",
                     help="number of time steps (default 100)")
    run.add_argument("--rate", type=_probability, default=0.05, metavar="P",
                     help="input spike probability per input neuron per step, 0..1 (default 0.05)")
    run.add_argument("--batch", "-B", type=_positive_int, default=1, metavar="B",
                     help="independent samples run side by side (default 1)")
    run.add_argument("--mode", default="float", metavar="MODE",
                     help="numeric form: float (float32 LIF) or fixed (Loihi/Lava fixed point); default float")
    run.add_argument("--seed", type=int, default=0, metavar="S", help="seed for weights and input (default 0)")
    run.add_argument("--json", action="store_true", help="print counts as JSON instead of a table")
    run.set_defaults(func=cmd_run)
    return parser


def _load_network(net: str, mode: str, seed: int):
    from pathlib import Path

    from hwsim.network import from_spec, load

    if mode not in MODES:
        raise UsageError(f"--mode: unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if net.endswith(".npz") or Path(net).is_file():
        network = load(net)
        if network.mode != mode:
            raise UsageError(f"--mode {mode}: {net} is a {network.mode}-mode network")
        return network
    return from_spec(net, mode=mode, seed=seed)


def cmd_run(args: argparse.Namespace) -> int:
    from hwsim.engine import Engine, bernoulli

    network = _load_network(args.net, args.mode, args.seed)
    spikes = bernoulli((args.timesteps, args.batch, *network.input_shape), args.rate, seed=args.seed + 1)
    engine = Engine(network)
    engine.run(spikes[:1, :1])  # load the compiled kernels once, so the timing below is the run alone
    start = time.perf_counter()
    result = engine.run(spikes)
    elapsed = time.perf_counter() - start
    counts = result.counts
    layers = [{key: layer.to_dict()[key] for key in RUN_FIELDS} for layer in counts.layers]
    if args.json:
        print(json.dumps({"timesteps": counts.timesteps, "batch": counts.batch, "mode": counts.mode,
                          "layers": layers}, indent=2))
        return 0
    print(f"{network!r}\nT={counts.timesteps} steps, batch {counts.batch}, input rate {args.rate:g}, "
          f"mode {counts.mode}")
    header = ("layer", "kind", "n_in", "n_out", "spikes_in", "spikes_out", "rate_out", "SOP", "neuron_upd",
              "read_B", "write_B")
    rows = []
    for layer in layers:
        rate = layer["spikes_out"] / (layer["n_out"] * counts.timesteps * counts.batch)
        rows.append((layer["name"], layer["kind"], layer["n_in"], layer["n_out"], layer["spikes_in"],
                     layer["spikes_out"], f"{rate:.3f}", layer["sop"], layer["neuron_updates"],
                     layer["mem_read_bytes"], layer["mem_write_bytes"]))
    total_sop = sum(layer["sop"] for layer in layers)
    rows.append(("total", "", "", "", "", "", "", total_sop, sum(lyr["neuron_updates"] for lyr in layers),
                 sum(lyr["mem_read_bytes"] for lyr in layers), sum(lyr["mem_write_bytes"] for lyr in layers)))
    _print_table(header, rows)
    print(f"simulated in {elapsed * 1e3:.1f} ms ({total_sop / max(elapsed, 1e-12) / 1e9:.2f} G SOP/s)")
    return 0


def _print_table(header: tuple, rows: list[tuple]) -> None:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for k, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from hwsim.engine import InputError

    try:
        return args.func(args)
    except (NetworkError, InputError, UsageError) as err:
        print(f"hwsim {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
