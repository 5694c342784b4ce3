"""The ``hwsim`` subcommands (argument parsing lives in :mod:`hwsim.cli`)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hwsim.network import MODES

RUN_FIELDS = ("name", "kind", "n_in", "n_out", "spikes_in", "spikes_out", "sop", "neuron_updates",
              "mem_read_bytes", "mem_write_bytes")


class UsageError(ValueError):
    """A command-line argument is invalid."""


def _load_network(net: str, mode: str | None, seed: int, default: str = "float"):
    """A saved network (its own mode unless ``mode`` asks otherwise: a float file is then quantised) or a
    random one from a spec string (``mode``, else ``default``)."""
    from pathlib import Path

    from hwsim.network import from_spec, load

    if mode is not None and mode not in MODES:
        raise UsageError(f"--mode: unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if net.endswith(".npz") or Path(net).is_file():
        network = load(net)
        if mode is None or network.mode == mode:
            return network
        if mode == "fixed":
            from hwsim.quantize import quantize

            return quantize(network)[0]
        raise UsageError(f"--mode float: {net} is a fixed-point network; it has no float form")
    return from_spec(net, mode=mode or default, seed=seed)


def cmd_run(args: argparse.Namespace) -> int:
    from hwsim.engine import Engine, bernoulli

    network = _load_network(args.net, args.mode, args.seed, default="float")
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


def cmd_chips(args: argparse.Namespace) -> int:
    import chips

    if args.action == "show" or args.name:
        if not args.name:
            raise UsageError("chips show: give a chip NAME or a profile PATH")
        chip = chips.load(args.name)
        data = chip.model_dump(exclude_none=True)
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            import yaml

            print(yaml.safe_dump(data, sort_keys=False, width=110).rstrip())
        return 0
    rows = []
    for chip in chips.load_all():
        e, cap = chip.energy, chip.capacity
        rows.append({"name": chip.name, "full_name": chip.full_name, "kind": chip.kind,
                     "cores": cap.cores if cap else None, "sop_pj": e.sop_pj if e else None,
                     "all_in": e.all_in if e else None,
                     "on_chip_learning": chip.learning.on_chip_learning if chip.learning else None,
                     "energy_source": e.source if e else None})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _print_table(("name", "chip", "cores", "pJ/SOP", "all-in", "learns"),
                 [(r["name"], r["full_name"], _dash(r["cores"]), _dash(r["sop_pj"]), _dash(r["all_in"]),
                   _dash(r["on_chip_learning"])) for r in rows])
    return 0


def cmd_feasibility(args: argparse.Namespace) -> int:
    import chips
    from hwsim.feasibility import RULES, check, learning_counts

    targets = chips.load_all() if args.chips == "all" else [chips.load(n.strip()) for n in args.chips.split(",")]
    rules = list(RULES) if args.rules == "all" else [r.strip() for r in args.rules.split(",")]
    for rule in rules:
        if rule not in RULES:
            raise UsageError(f"--rules: unknown rule {rule!r}; known rules: {', '.join(RULES)}")
    network = _load_network(args.net, "float", args.seed)
    verdicts = []
    for rule in rules:
        counts = learning_counts(network, rule, args.timesteps, args.rate, seed=args.seed, window=args.window)
        for chip in targets:
            verdict = check(network, chip, rule, args.timesteps, counts, window=args.window)
            if counts is None and not verdict.missing:
                verdict.unpriced.append(f"energy: no on-chip learning kernel for {rule} yet")
            verdicts.append(verdict.to_dict())
    if args.plot:
        from hwsim.plots import feasibility_heatmap

        feasibility_heatmap(verdicts, args.plot, title=f"{args.net}, T={args.timesteps}: on-chip learning")
    if args.json:
        print(json.dumps(verdicts, indent=2))
        return 0
    rows = []
    for v in verdicts:
        energy = "-" if v["energy_per_sample_j"] is None else f"{v['energy_per_sample_j'] * 1e6:.4g}"
        rows.append((v["chip"], v["rule"], energy, f"{v['memory_per_core_bytes'] / 1024:.1f}", v["verdict"]))
    _print_table(("chip", "rule", "uJ/sample", "KiB/core", "verdict"), rows)
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hwsim.export.bundle import export, load_trained
    from methods.data import load_dataset

    network, config = load_trained(args.checkpoint)
    dataset = args.data or config.get("dataset")
    x = y = None
    if dataset:
        steps = args.timesteps or config.get("timesteps", 8)
        data = load_dataset(dataset, steps, seed=config.get("seed", 0), path=config.get("data_path"))
        x, y = (a.numpy() for a in data.split("test"))
        x = x.reshape(*x.shape[:2], *network.input_shape)
    summary = export(network, args.out, x, y, verify=args.verify, learning=args.learning)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    q = summary["quantization"]
    print(f"wrote {', '.join(summary['files'])} to {args.out}")
    if q["accuracy_float"] is not None:
        print(f"accuracy on {dataset} (test): float {q['accuracy_float']:.2%}, fixed point {q['accuracy_fixed']:.2%}")
    for layer in q["layers"]:
        print(f"  {layer['name']}: scale {layer['scale']:.3g}, vth {layer['vth']}, dv {layer['dv']}, "
              f"clipped weights {layer['weights_clipped']}, bias {layer['bias_clipped']}"
              + (", soft reset -> zero reset" if layer["reset_converted"] else ""))
    if "verify" in summary:
        v = summary["verify"]
        for layer in v["layers"]:
            print(f"  Lava vs hwsim, {layer['layer']}: {'equal' if layer['equal'] else 'DIFFERENT'} "
                  f"({layer['spikes']} spikes over {v['timesteps']} steps)")
        if not v["equal"]:
            return 1
    if "learning" in summary:
        lr = summary["learning"]
        print(f"  learning in Lava (LearningDense, three-factor OTTT-like rule, {lr['steps']} steps): weight-change "
              f"correlation with hwsim {lr['correlation']:.3f}, mean |difference| {lr['mean_abs_difference']:.2f} "
              f"of mean |change| {lr['mean_abs_change']:.2f}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from hwsim.study import Study, load_config

    study = Study(load_config(args.config), args.out, progress=not args.no_progress)
    results = study.run()
    rows = [(rule, r["test_accuracy_percent"], r["activation_kib"]) for rule, r in results["train"]["rules"].items()]
    print()
    _print_table(("trained rule", "test acc %", "activation KiB"), rows)
    sim = results["simulate"]
    print(f"\nhwsim: float {sim['quantized_float_percent']} %, fixed point {sim['quantized_fixed_percent']} %")
    feasible = [f"{chip}/{rule}" for chip, rules in results["feasibility"]["table"].items()
                for rule, v in rules.items() if v["verdict"] == "feasible"]
    print(f"feasible on-chip learning: {len(feasible)} chip x rule pairs")
    if not results["export"].get("skipped"):
        print(f"Lava export verified: {results['export']['verified_equal']}")
    print(f"report: {Path(args.out) / 'report.md'}; numbers: {Path(args.out) / 'results.json'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from hwsim.sweep import load_sweep, run_sweep

    if args.connect_timeout <= 0:
        raise UsageError(f"--connect-timeout: expected a positive number of seconds, got {args.connect_timeout:g}")
    if args.serial and (args.scheduler or args.workers):
        raise UsageError("--serial runs in this process: it takes neither --scheduler nor --workers")
    if args.scheduler and args.workers:
        raise UsageError("--workers sizes the LocalCluster; a --scheduler's cluster has its own workers")
    summary = run_sweep(load_sweep(args.config), args.out, scheduler=args.scheduler, workers=args.workers,
                        serial=args.serial, connect_timeout_s=args.connect_timeout, progress=not args.no_progress)
    out = summary.out
    print(f"{summary.points} points: {summary.done_before} done before, {summary.ran} run now, {summary.failed} failed"
          f"\ntable: {out / 'points.parquet'}; report: {out / 'sweep.md'}; figures: {', '.join(summary.figures)}")
    if summary.failed:
        print(f"{summary.failed} points failed (their error is in the table and sweep.md); rerun to retry them")
        return 1
    return 0


def _dash(value) -> str:
    return "-" if value is None else str(value)


def cmd_estimate(args: argparse.Namespace) -> int:
    import chips
    from hwsim.cost import estimate
    from hwsim.engine import Engine, bernoulli
    from hwsim.mapping import map_network

    targets = chips.load_all() if args.chip == "all" else [chips.load(args.chip)]
    if args.rule:
        from hwsim.feasibility import learning_counts
        from hwsim.learning import ON_CHIP_RULES

        if args.rule not in ON_CHIP_RULES:
            raise UsageError(f"--rule: no on-chip kernel for {args.rule!r}; rules with one: {', '.join(ON_CHIP_RULES)}")
        network = _load_network(args.net, "float", args.seed)
        counts = learning_counts(network, args.rule, args.timesteps, args.rate, batch=args.batch, seed=args.seed)
    else:
        network = _load_network(args.net, args.mode, args.seed, default="fixed")
        spikes = bernoulli((args.timesteps, args.batch, *network.input_shape), args.rate, seed=args.seed + 1)
        counts = Engine(network).run(spikes).counts
    reports = []
    for chip in targets:
        mapping = map_network(network, chip, counts)
        report = estimate(network, counts, chip, mapping).to_dict()
        report["mapping"] = mapping.to_dict(chip)
        reports.append(report)
    if args.plot:
        from hwsim.plots import energy_breakdown

        energy_breakdown(reports, args.plot, title=f"{args.net}, T={args.timesteps}, rate {args.rate:g}, "
                                                   f"{args.mode} mode")
    layers = []
    for lc in counts.layers:
        record = lc.to_dict()
        layers.append(record)
    if args.json:
        print(json.dumps({"net": args.net, "timesteps": counts.timesteps, "batch": counts.batch,
                          "mode": counts.mode, "rate": args.rate, "counts": layers, "chips": reports}, indent=2))
        return 0
    what = f"on-chip {args.rule} training" if args.rule else "inference"
    print(f"{network!r}\n{what}: T={counts.timesteps} steps, batch {counts.batch}, input rate {args.rate:g}, "
          f"{counts.total('sop')} SOPs\n")
    rows = []
    for r in reports:
        latency = "-" if r["latency_s"] is None else f"{r['latency_s'] / counts.batch * 1e3:.3g}"
        top = max(r["energy_by_action_j"].items(), key=lambda kv: kv[1], default=("-", 0))[0]
        energy = f"{r['energy_per_sample_j'] * 1e6:.4g}" if r["energy_by_action_j"] else "-"
        rows.append((r["chip"], energy, latency, "yes" if r["fits"] else "NO",
                     r["cores_used"], top, len(r["unpriced"])))
    _print_table(("chip", "uJ/sample", "ms/sample", "fits", "cores", "largest", "unpriced"), rows)
    for r in reports:
        for limit in r["limits_broken"]:
            print(f"  {r['chip']}: does not fit: {limit}")
    print("\nunpriced = actions with counts but no published figure (see --json); nothing is invented.")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from methods import RULES
    from methods.data import DATASETS
    from methods.train import TrainConfig, train

    if args.rule not in RULES:
        raise UsageError(f"--rule: unknown rule {args.rule!r}; known rules: {', '.join(RULES)}")
    if args.dataset not in DATASETS:
        raise UsageError(f"--dataset: unknown dataset {args.dataset!r}; known datasets: {', '.join(DATASETS)}")
    config = TrainConfig(rule=args.rule, dataset=args.dataset, epochs=args.epochs, timesteps=args.timesteps,
                         net=args.net, batch_size=args.batch_size, lr=args.lr, seed=args.seed, k=args.k,
                         window=args.window, block=args.block, subnet=args.subnet, budget_bytes=args.budget_bytes,
                         data_path=args.data_path, device=args.device)
    result = train(config, out=args.out, resume=args.resume, progress=not args.no_progress)
    if args.json:
        print(json.dumps({"config": asdict(config), "rule": result.describe,
                          "history": [asdict(h) for h in result.history]}, indent=2))
    return 0


def _print_table(header: tuple, rows: list[tuple]) -> None:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) for i in range(len(header))]
    for k, row in enumerate(cells):
        print("  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text in ("-", "")
    return True
