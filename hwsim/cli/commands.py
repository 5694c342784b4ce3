"""The ``hwsim`` subcommands (argument parsing lives in :mod:`hwsim.cli.main`)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from hwsim.cli.rule_args import given_options, rule_options
from hwsim.cli.validate import check_run_size
from hwsim.errors import NetworkError, UsageError, printable, short
from hwsim.records import dumps
from hwsim.safeio import PLOT_SUFFIXES, OutputLock, check_output_dir, check_output_file

# One default per concept, shared by every command that takes the option (docs/cli.md says why).
DEFAULT_MODE = "fixed"  # what the chips compute in: run and estimate then count the same events and bytes
DEFAULT_RATE = 0.1  # input spike probability per input neuron per step

__all__ = ["UsageError"]  # re-exported: commands raise it for bad arguments (exit code 2)

RUN_FIELDS = ("name", "kind", "n_in", "n_out", "spikes_in", "spikes_out", "sop", "sop_recurrent", "neuron_updates",
              "mem_read_bytes", "mem_write_bytes")


def _load_network(net: str, mode: str | None, seed: int, default: str = DEFAULT_MODE):
    """A network file (``.npz``, ``.nir``, ``.net``; its own mode unless ``mode`` asks otherwise: a float
    network is then quantised) or a random one from a spec string (``mode``, else ``default``)."""
    from hwsim.formats.files import is_network_file, load_network
    from hwsim.sim.network import MODES, from_spec

    if mode is not None and mode not in MODES:
        raise UsageError(f"--mode: unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if is_network_file(net):
        network = load_network(net)
        network.trained_timesteps = network.timesteps  # for --input's axis guard
        network.timesteps = None  # the commands build (T, B, ...) input from -T/-B themselves: no axis guess
        if mode is None or network.mode == mode:
            return network
        if mode == "fixed":
            from hwsim.sim.quantize import quantize

            return quantize(network)[0]
        raise UsageError(f"--mode float: {net} is a fixed-point network; it has no float form")
    try:
        return from_spec(net, mode=mode or default, seed=seed)
    except NetworkError as err:
        if short(net, 80) in str(err):  # the spec is named already (bounded, as hwsim.sim.network shows it)
            raise
        raise NetworkError(f"--net {short(net)}: {err}") from None


def _input_spikes(args: argparse.Namespace, network):
    """``--input FILE`` spikes (T from the file unless -T is given), else Bernoulli noise at ``--rate``."""
    from hwsim.sim.engine import bernoulli

    if getattr(args, "input", None):
        from hwsim.sim.inputs import check_input_options, load_spikes

        check_input_options(rate=getattr(args, "rate_given", False), batch=getattr(args, "batch_given", False),
                            timesteps=getattr(args, "timesteps_given", False))
        spikes = load_spikes(args.input, network.input_shape,
                             trained_timesteps=getattr(network, "trained_timesteps", None),
                             check=lambda steps, batch: check_run_size(network, steps, batch,
                                                                       f"--input {printable(args.input, 200)}"))
        args.timesteps = spikes.shape[0]
        args.batch = spikes.shape[1]
        return spikes
    check_run_size(network, args.timesteps, args.batch)
    return bernoulli((args.timesteps, args.batch, *network.input_shape), args.rate, seed=args.seed + 1)


def _input_text(args: argparse.Namespace) -> str:
    return f"input {printable(args.input, 200)}" if getattr(args, "input", None) else f"input rate {args.rate:g}"


def _net_text(network) -> str:
    """The network's one-line description for the screen: its layer names come from a file, so they are shown
    with control characters and terminal escape codes made visible (``\\x1b``), never executed."""
    return printable(repr(network))


def cmd_run(args: argparse.Namespace) -> int:
    network = _load_network(args.net, args.mode, args.seed)
    spikes = _input_spikes(args, network)
    engine = _engine(args, network)
    engine.run(spikes[:1, :1], time_major=True)  # load the compiled kernels once, so the timing below is the run alone
    start = time.perf_counter()
    result = engine.run(spikes, time_major=True)  # built (T, B, ...) here: no axis guess
    elapsed = time.perf_counter() - start
    counts = result.counts
    layers = [{key: layer.to_dict()[key] for key in RUN_FIELDS} for layer in counts.layers]
    if args.json:
        print(dumps({"timesteps": counts.timesteps, "batch": counts.batch, "mode": counts.mode,
                     "engine": args.engine, "device": args.device, "layers": layers}))
        return 0
    print(f"{_net_text(network)}\nT={counts.timesteps} steps, batch {counts.batch}, {_input_text(args)}, "
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
    print(f"simulated in {elapsed * 1e3:.1f} ms ({total_sop / max(elapsed, 1e-12) / 1e9:.2f} G SOP/s; engine "
          f"{args.engine} on {args.device})")
    return 0


def cmd_chips(args: argparse.Namespace) -> int:
    from hwsim import chips

    if args.action == "show" or args.name:
        if not args.name:
            raise UsageError("chips show: give a chip NAME or a profile PATH")
        chip = chips.load(args.name)
        data = chip.model_dump(exclude_none=True)
        if args.json:
            print(dumps(data))
        else:
            import yaml

            print(yaml.safe_dump(data, sort_keys=False, width=110).rstrip())
        return 0
    rows = []
    for chip in chips.load_all():
        e, cap = chip.energy, chip.capacity
        op = e.operating_point if e and e.operating_point else None
        rows.append({"name": chip.name, "full_name": chip.full_name, "kind": chip.kind,
                     "cores": cap.cores if cap else None, "sop_pj": e.sop_pj if e else None,
                     "all_in": e.all_in if e else None,
                     "operating_point": op.model_dump() if op else None,
                     "static_power_mw": chip.static.static_power_mw if chip.static else None,
                     "on_chip_learning": chip.learning.on_chip_learning if chip.learning else None,
                     "energy_basis": e.basis if e else None, "energy_source": e.source if e else None})
    if args.json:
        print(dumps(rows))
        return 0
    _print_table(("name", "chip", "cores", "pJ/SOP (dynamic)", "static mW", "all-in", "basis", "learns"),
                 [(r["name"], r["full_name"], _dash(r["cores"]), _dash(r["sop_pj"]), _dash(r["static_power_mw"]),
                   "yes" if r["all_in"] else "-", _dash(r["energy_basis"]), _dash(r["on_chip_learning"]))
                  for r in rows])
    print("\nall-in: the per-SOP figure includes static power at its operating point; static mW: whole chip "
          "(gpu: idle). '-': not published.")
    return 0


def cmd_feasibility(args: argparse.Namespace) -> int:
    from hwsim.learning import registry

    if args.plot:
        check_output_file(args.plot, "--plot", PLOT_SUFFIXES)
    rules = registry.parse_rules(args.rules, "--rules", on_chip=True)
    options = rule_options(args, rules, args.timesteps)
    targets = _chip_list(args.chip)  # the arguments checked before the simulator (numba) is imported
    from hwsim.hardware.cost import latency_text
    from hwsim.learning.assess import judge

    network = _load_network(args.net, "float", args.seed)
    spikes = _input_spikes(args, network) if getattr(args, "input", None) else None
    if spikes is None:
        check_run_size(network, args.timesteps, 1)
    if any(registry.get(r).budgeted for r in rules) and args.rules != "all":  # checked before any work
        from hwsim.learning.assess import stdl_refusal

        if (refusal := stdl_refusal(network, options)) is not None:
            raise UsageError(f"--budget-bytes {options.budget_bytes}: {refusal}")
    pricing = _pricing(args)
    judgement = judge(network, targets, rules, args.timesteps, options, rate=args.rate, spikes=spikes,
                      pricing=pricing, seed=args.seed)
    for rule, reason in judgement.left_out.items():
        print(f"hwsim feasibility: {rule} left out of --rules all: {reason} (STDL's auxiliary networks are chosen "
              f"as its training chooses them, for the training batch, then run one sample at a time on chip; "
              f"give --budget-bytes N to include it)", file=sys.stderr)
    verdicts = judgement.to_dict()
    if args.plot:
        from hwsim.study.plots import feasibility_heatmap

        feasibility_heatmap(verdicts, args.plot, title=f"{args.net}, T={args.timesteps}: on-chip learning")
    if args.json:
        print(dumps(verdicts))
        return 0
    used = "".join(f", {options.text(r, args.timesteps, on_chip=True)}" for r in rules
                   if r not in judgement.left_out and options.of(r, args.timesteps, on_chip=True))
    print(f"{_net_text(network)}: one training sample, T={args.timesteps}, input rate {args.rate:g}{used}; "
          f"{pricing.text()}\n")
    rows = []
    for v in verdicts:
        latency = latency_text(v["latency_per_sample_s"], v["latency_lower_bound"])
        max_t = v["max_timesteps"] if v["max_timesteps"] is not None else (
            "any" if v["max_timesteps_note"].startswith("any") else "?")
        rows.append((v["chip"], v["rule"], v["verdict"].split(":")[0], max_t, v["cores_needed"],
                     f"{v['memory_per_core_bytes'] / 1024:.1f}", v["energy_text"], latency,
                     "-" if v["rank"] is None else str(v["rank"])))
    _print_table(("chip", "rule", "verdict", "max T", "cores", "KiB/core", "energy/sample", "ms/sample", "rank"),
                 rows)
    print()
    for v in verdicts:
        if v["verdict"] != "feasible":
            _print_note(f"{v['chip']}/{v['rule']}: {v['verdict']}")
    print()
    _print_note("max T: largest T whose learning state fits (any: the state does not grow with T; ?: memory "
                "unknown). rank: feasible pairs whose energy is fully priced, by energy per training sample (a lower "
                "bound, ≥, is not ranked; equal energies share a rank).", indent="")
    if args.plot:
        print(f"wrote {printable(args.plot)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hwsim.safeio import is_file

    if not is_file(args.checkpoint):  # before torch and Lava are imported
        raise UsageError(f"{printable(args.checkpoint, 200)}: no such checkpoint or network file")
    from hwsim.formats.bundle import export, load_trained
    from hwsim.methods.data import DATASETS, load_dataset

    network, config = load_trained(args.checkpoint, force=args.force)
    if args.learning and network.mode != "float":
        raise UsageError(f"--learning compares against the float network's errors; {args.checkpoint} is fixed point")
    from hwsim.formats.bundle import check_exportable

    check_exportable(network)  # before the output folder is made: a refused export leaves nothing behind
    if args.timesteps is not None and not (args.data or config.get("dataset")):
        raise UsageError(f"--timesteps sets the steps of the data set's samples; {printable(args.checkpoint, 200)} "
                         f"names no data set, so give --data NAME with it (or leave -T out)")
    check_output_dir(args.out, "--out")
    dataset = args.data or config.get("dataset")
    if dataset is not None and dataset not in DATASETS:
        raise UsageError(f"--data: unknown dataset {dataset!r}; known datasets: {', '.join(DATASETS)}")
    x = y = None
    if dataset:
        steps = args.timesteps or config.get("timesteps", 8)
        data = load_dataset(dataset, steps, seed=config.get("seed", 0), path=config.get("data_path"))
        if math.prod(data.shape) != math.prod(network.input_shape):
            raise UsageError(f"--data {dataset}: samples of shape {data.shape} do not fit the network's input "
                             f"{network.input_shape} ({args.checkpoint})")
        x, y = (a.numpy() for a in data.split("test"))
        x = x.reshape(*x.shape[:2], *network.input_shape)
    with OutputLock(args.out, f"--out {args.out}", folder=True):
        summary = export(network, args.out, x, y, verify=args.verify, learning=args.learning)
    failed = "verify" in summary and not summary["verify"]["equal"]
    if failed:
        print("hwsim export: verification failed: Lava's spikes differ from hwsim's (exit status 1)", file=sys.stderr)
    if args.json:
        print(dumps(summary))
        return 1 if failed else 0
    q = summary["quantization"]
    print(printable(f"wrote {', '.join(summary['files'])} to {args.out}"))
    if q["accuracy_float"] is not None:
        print(f"accuracy on {dataset} (test): float {q['accuracy_float']:.2%}, fixed point {q['accuracy_fixed']:.2%}")
    for layer in q["layers"]:
        print(f"  {printable(layer['name'], 80)}: scale {layer['scale']:.3g}, vth {layer['vth']}, dv {layer['dv']}, "
              f"clipped weights {layer['weights_clipped']}, bias {layer['bias_clipped']}"
              + (", soft reset -> zero reset" if layer["reset_converted"] else ""))
    if "verify" in summary:
        v = summary["verify"]
        for layer in v["layers"]:
            print(f"  Lava vs hwsim, {printable(layer['layer'], 80)}: {'equal' if layer['equal'] else 'DIFFERENT'} "
                  f"({layer['spikes']} spikes over {v['timesteps']} steps)")
    if "learning" in summary:
        lr = summary["learning"]
        print(f"  learning in Lava (LearningDense, three-factor OTTT-like rule, {lr['steps']} steps): weight-change "
              f"correlation with hwsim {lr['correlation']:.3f}, mean |difference| {lr['mean_abs_difference']:.2f} "
              f"of mean |change| {lr['mean_abs_change']:.2f}")
    return 1 if failed else 0


def cmd_study(args: argparse.Namespace) -> int:
    from hwsim.study.pipeline import Study, load_config

    config = load_config(args.config)
    check_output_dir(args.out, "--out")
    study = Study(config, args.out, progress=not args.no_progress)
    results = study.run()
    rows = [(rule, r["test_accuracy_percent"], r["activation_kib"]) for rule, r in results["train"]["rules"].items()]
    print()
    _print_table(("trained rule", "test acc %", "activation KiB"), rows)
    sim = results["simulate"]
    fixed = (f"{sim['quantized_fixed_percent']} %" if sim.get("quantized_fixed_percent") is not None else
             f"none ({sim.get('fixed_skipped', 'not run')})")
    print()
    print(printable(f"hwsim: float {sim['quantized_float_percent']} %, fixed point {fixed}"))
    from hwsim import chips

    baselines = {name for name in results["feasibility"]["table"] if chips.load(name).kind != "neuromorphic"}
    feasible = [chip for chip, rules in results["feasibility"]["table"].items()
                for rule, v in rules.items() if v["verdict"] == "feasible"]
    on_chip = sum(chip not in baselines for chip in feasible)
    print(f"feasible on-chip learning: {on_chip} neuromorphic chip x rule pairs"
          + (f" (and {len(feasible) - on_chip} on the baselines {', '.join(sorted(baselines))}, which train as "
             f"processors do)" if baselines else ""))
    if not results["export"].get("skipped"):
        print(f"Lava export verified: {results['export']['verified_equal']}")
    else:
        print(printable(f"Lava export: skipped ({results['export'].get('reason', 'not asked for')})"))
    print(printable(f"report: {Path(args.out) / 'report.md'}; numbers: {Path(args.out) / 'results.json'}"))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from hwsim.study.sweep import load_sweep, run_sweep

    if args.serial and (args.scheduler or args.workers):
        raise UsageError("--serial runs in this process: it takes neither --scheduler nor --workers")
    if args.scheduler and args.workers:
        raise UsageError("--workers sizes the LocalCluster; a --scheduler's cluster has its own workers")
    import sys

    summary = run_sweep(load_sweep(args.config), args.out, scheduler=args.scheduler, workers=args.workers,
                        serial=args.serial, connect_timeout_s=args.connect_timeout, progress=not args.no_progress,
                        log=lambda line: print(line, file=sys.stderr))
    out = summary.out
    if args.json:
        print(dumps({"points": summary.points, "done_before": summary.done_before, "ran": summary.ran,
                     "failed": summary.failed, "table": str(out / "points.parquet"),
                     "report": str(out / "sweep.md"), "figures": [str(out / f) for f in summary.figures]}))
    else:
        print(f"{summary.points} points: {summary.done_before} done before, {summary.ran} run now, "
              f"{summary.failed} failed\ntable: {out / 'points.parquet'}; report: {out / 'sweep.md'}; "
              f"figures: {', '.join(summary.figures)}")
    if summary.failed:
        print(f"{summary.failed} points failed (their error is in the table and sweep.md); rerun to retry them",
              file=sys.stderr)
        return 1
    return 0


def _dash(value) -> str:
    return "-" if value is None else str(value)


def cmd_estimate(args: argparse.Namespace) -> int:
    if args.plot:
        check_output_file(args.plot, "--plot", PLOT_SUFFIXES)
    targets = _chip_list(args.chip)
    rules, options = [], None
    if args.rules:
        from hwsim.learning import registry

        rules = registry.parse_rules(args.rules, "--rules", on_chip=True)
        options = rule_options(args, rules, args.timesteps)
        if args.mode not in (None, "float"):
            mode = short(args.mode, 20).strip("'")
            raise UsageError(f"--mode {mode}: estimate --rules prices on-chip learning of the float network (the "
                             f"learner keeps its own fixed-point format); leave --mode out")
    elif given_options(args):
        raise UsageError(f"{', '.join(registry_flag(n) for n in given_options(args))}: rule options need --rules")
    from hwsim.hardware.pricing import price_run, reorderings  # the simulator (numba) from here on

    pricing = _pricing(args)
    if rules:
        from hwsim.learning.assess import price_training

        network = _load_network(args.net, "float", args.seed)
        spikes = _input_spikes(args, network) if getattr(args, "input", None) else None
        if spikes is None:
            check_run_size(network, args.timesteps, args.batch)
        counts, reports = None, []
        for rule in rules:
            counts, found = price_training(network, targets, rule, args.timesteps, options, rate=args.rate,
                                           batch=args.batch, spikes=spikes, pricing=pricing, seed=args.seed)
            reports += [r.to_dict() for r in found]
    else:
        network = _load_network(args.net, args.mode, args.seed)
        counts = _engine(args, network).run(_input_spikes(args, network), time_major=True).counts
        reports = price_run(network, counts, targets, pricing)
    if args.plot:
        from hwsim.study.plots import energy_breakdown

        what = f"on-chip {', '.join(rules)} training" if rules else f"inference, {counts.mode} point"
        energy_breakdown(reports, args.plot, title=f"{args.net}, T={args.timesteps}, {_input_text(args)}, "
                                                   f"batch {counts.batch}, {what}, static: {args.static}")
    flips = [] if rules else reorderings(network, counts, targets, pricing)
    if args.json:
        print(dumps({"net": args.net, "timesteps": counts.timesteps, "batch": counts.batch, "mode": counts.mode,
                     "rate": None if getattr(args, "input", None) else args.rate,
                     "input": getattr(args, "input", None), "pricing": pricing, "rules": rules or None,
                     "counts": [lc.to_dict() for lc in counts.layers], "chips": reports,
                     "assumptions_that_reorder": flips}))
        return 0
    what = "inference"
    if rules:
        what = "on-chip " + ", ".join(options.text(r, counts.timesteps, on_chip=True) for r in rules) + " training"
    print(f"{_net_text(network)}\n{what}: T={counts.timesteps} steps, batch {counts.batch}, {_input_text(args)}, "
          f"{counts.total('sop')} SOPs; {pricing.text()}\n")
    _print_estimates(reports, bool(rules))
    if flips:
        print("\nAssumptions that would reorder these chips (energy per sample):")
        for sentence in flips:
            _print_note(sentence)
    if args.plot:
        print(f"wrote {printable(args.plot)}")
    return 0


def _print_estimates(reports: list[dict], learning: bool) -> None:
    """The estimate table (µJ per sample with its band, ms per sample as a sample experiences it) and its notes."""
    from hwsim.hardware.cost import band_text, energy_text, latency_text

    rows = []
    for r in reports:
        latency = latency_text(r["latency_per_sample_s"], r["latency_lower_bound"])
        dynamic = [k for k in r["energy_by_action_j"] if k != "static"]
        top = max(((k, r["energy_by_action_j"][k] or 0) for k in dynamic), key=lambda kv: kv[1], default=("-", 0))[0]
        priced = bool(dynamic)
        static = r.get("energy_static_per_sample_j")
        static_cell = "-" if static is None else f"{static * 1e6:.3g}"
        if r["static_mode"] == "all-in":
            static_cell = "in all-in"
        dynamic_cell = "-" if r["energy_dynamic_per_sample_j"] is None else ("≥ " if r["lower_bound"] else "") + \
            energy_text(r["energy_dynamic_per_sample_j"], 0, priced)  # unpriced actions are dynamic ones
        total = r["energy_text"] if str(r.get("energy_text")).startswith("not priced") else energy_text(
            r["energy_per_sample_j"], len(r["unpriced"]), priced)
        band = band_text(r.get("energy_per_sample_low_j"), r.get("energy_per_sample_high_j"))
        row = [r["chip"]] + ([r["rule"]] if learning else []) + [
            dynamic_cell, static_cell, total, band, r.get("validation") or "-", latency, _fits_text(r["fits"]),
            r["cores_used"], top]
        if learning:
            row.append(r["verdict"].split(":")[0])
        rows.append(tuple(row))
    header = ["chip"] + (["rule"] if learning else []) + ["dynamic/sample", "static µJ", "energy/sample", "band",
                                                          "validated", "ms/sample", "fits", "cores", "largest"]
    _print_table(tuple(header + (["verdict"] if learning else [])), rows)
    for r in {r["chip"]: r for r in reports}.values():  # notes about the chip: once, whatever the rule
        for limit in r["limits_broken"]:
            _print_note(f"{r['chip']}: does not fit: {limit}")
        if r["fits"] is None:
            _print_note(f"{r['chip']}: fit unknown: {r['fits_reason']}")
        for warning in r["warnings"]:
            _print_note(f"warning: {warning}")
    for r in reports:
        if learning and r["verdict"] != "feasible":
            _print_note(f"{r['chip']}/{r['rule']}: {r['verdict']}")
    print("\nTime base, placement and static power per chip:")
    for r in {r["chip"]: r for r in reports}.values():
        basis = r.get("step_time_basis") or r.get("time_base", "")
        _print_note(f"{r['chip']}: {basis}; {r.get('placement', 'packed')}; "
                    f"static: {r['static_assumption'] or r['static_mode']}")
    _print_note("≥ = a lower bound: actions with counts but no published figure are unpriced (listed with their "
                "counts in --json), never counted as zero.", indent="")


def _engine(args: argparse.Namespace, network):
    """The simulation engine of ``run``/``estimate``: numba on the CPU (default) or torch on ``--device`` (same
    counts; fixed point bit-identical). torch is not imported for the numba engine."""
    from hwsim.sim.torch_engine import make_engine

    return make_engine(network, engine=args.engine, device=args.device)


def _pricing(args: argparse.Namespace):
    """The pricing assumptions of ``estimate``/``feasibility`` (checked before any work)."""
    from hwsim.hardware.pricing import Pricing

    return Pricing(static=args.static, time_base=args.time_base, tick_us=args.tick_us, placement=args.placement)


def cmd_validate(args: argparse.Namespace) -> int:
    from hwsim.hardware import validation

    cases = validation.run()
    if args.json:
        print(dumps([c.to_dict() for c in cases]))
        return 0
    print(validation.table(cases))
    return 0


def _fits_text(fits) -> str:
    return "unknown" if fits is None else ("yes" if fits else "NO")


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from hwsim.learning import registry
    from hwsim.safeio import is_file

    # every check that needs no torch first: a bad argument is refused in a fraction of a second
    rules = registry.parse_rules(args.rules, "--rules")
    if len(rules) != 1:
        raise UsageError(f"--rules {short(args.rules)}: train takes one rule per run (each writes its own checkpoint)")
    rule = rules[0]
    options = rule_options(args, rules, args.timesteps)
    own = args.dataset.endswith(".npz") or args.dataset.startswith("tonic:")
    if args.bin_us is not None and not args.dataset.startswith("tonic:"):
        raise UsageError(f"--bin-us applies to tonic event data sets only, not --dataset {short(args.dataset, 40)}")
    if own and not args.net:
        raise UsageError(f"--dataset {printable(args.dataset, 200)}: give --net for your own data (e.g. --net "
                         f"700-128-20)")
    if args.net:
        _check_train_net(args.net)
    if args.resume and not is_file(args.resume):
        raise UsageError(f"{printable(args.resume, 200)}: no such checkpoint")
    out = args.out or args.resume or _default_checkpoint(rule, args.dataset)
    check_output_file(out, "--out" if args.out or not args.resume else "--resume (written back to as the output)")
    _check_train_outputs(Path(out), args.resume, args.force)
    from hwsim.methods.data import DATASETS  # torch from here on

    if args.dataset not in DATASETS and not own:
        raise UsageError(f"--dataset: unknown dataset {short(args.dataset, 60)}; known datasets: "
                         f"{', '.join(DATASETS)}, a FILE.npz (x_train, y_train, x_test, y_test) or tonic:<Name>")
    from hwsim.methods.train import TrainConfig, train

    o = options
    config = TrainConfig(rule=rule, dataset=args.dataset, epochs=args.epochs, timesteps=args.timesteps,
                         net=args.net, batch_size=args.batch_size, lr=args.lr, seed=args.seed, k=o.k,
                         window=o.window, block=o.block, subnet=o.subnet, budget_bytes=o.budget_bytes,
                         data_path=args.data_path, device=args.device, tau=o.tau, v_th=o.v_th, surrogate=o.surrogate,
                         alpha=o.alpha, mse=o.mse, mse_target=o.mse_target, ttl_update=o.ttl_update,
                         **{name: getattr(o, name) for name in ("eligibility", "feedback", "kappa") if name in o.given},
                         bin_us=args.bin_us)
    args.rule = rule
    note = [] if args.out else [printable(f"hwsim train: saving the checkpoint to {out} and the network to "
                                          f"{Path(out).with_suffix('.network.npz')} (choose with --out)")]

    def log(line: str) -> None:  # called by rank 0 after each epoch, just before the checkpoint is written
        while note:
            print(note.pop(), file=sys.stderr)
        print(line, file=sys.stderr if args.json else sys.stdout)

    result = train(config, out=out, resume=args.resume, progress=not args.no_progress, log=log, force=args.force)
    if args.json:
        network = str(Path(out).with_suffix(".network.npz")) if registry.get(config.rule).writes_network else None
        print(dumps({"config": asdict(config), "rule": result.describe, "checkpoint": str(out),
                     "network": network, "history": [asdict(h) for h in result.history]}))
    return 0


TRAIN_COPIES = 4  # weights, gradients, SGD momentum and the checkpoint's copy: bytes per weight byte in training


def _check_train_net(net: str) -> None:
    """``train --net SPEC``: the grammar and the sizes, counted without building it (one line if wrong), and the
    training's weight memory (weights, gradients, momentum, checkpoint copy) against the memory limit."""
    from hwsim.safeio import check_memory
    from hwsim.sim.network import spec_size

    try:
        size = spec_size(net)
    except NetworkError as err:
        raise NetworkError(f"--net: {err}") from None
    check_memory(TRAIN_COPIES * size.weight_bytes, f"--net {short(net, 80)}",
                 f"{size.weights} weights x {TRAIN_COPIES}: weights, gradients, momentum and a checkpoint copy")


def _is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a file torch saved (a zip archive holding ``*/data.pkl``): read from its directory only."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist()[:64])
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _is_network_file(path: Path) -> bool:
    """Whether ``path`` is an hwsim network file (a zip archive with a ``__network__`` member)."""
    from hwsim.safeio import NpzError, npz_names

    try:
        return "__network__" in npz_names(path)
    except NpzError:
        return False


def _check_train_outputs(out: Path, resume: str | None, force: bool) -> None:
    """``train --out``: both outputs (the checkpoint and the network file beside it) are regular files or absent
    (a folder, device, FIFO or socket is refused even with ``--force``). Without ``--force``, never replace an
    existing file that this run does not continue (a checkpoint of another rule or configuration, or any other
    file), nor the network file of another checkpoint (``a.pt`` and ``a.ckpt`` share ``a.network.npz``), nor a
    file at the network file's name that is not an hwsim network. Another run training into ``out`` right now
    is reported as "in use" (its lock). A network file no checkpoint names (left by a run killed in its first
    epoch) is replaced."""
    import glob
    import stat

    from hwsim.safeio import OutputLock

    network = out.with_suffix(".network.npz")
    for path, what in ((out, f"--out {printable(out, 200)}"),
                       (network, f"--out {printable(out, 200)}: its network file {printable(network.name, 200)}")):
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        except OSError as err:
            raise UsageError(f"{what}: cannot be examined ({err.strerror})") from None
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            kind = "a folder" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
            raise UsageError(f"{what}: exists and is {kind}, not a file; give a file path")
    if force:
        return
    continued = resume is not None and out.exists() and Path(resume).resolve() == out.resolve()
    if out.exists() and not continued:
        OutputLock(out, f"--out {out}", folder=False).acquire().release()  # busy: "in use by PID N", exit 1
        kind = "an hwsim checkpoint" if _is_checkpoint(out) else "a file"
        raise UsageError(f"--out {printable(out, 200)}: exists ({kind}); training would replace it: give --resume "
                         f"{printable(out, 200)} to continue it, --force to replace it, or another --out")
    if not network.exists() and not network.is_symlink():
        return
    siblings = map(Path, glob.glob(glob.escape(str(out.with_suffix(""))) + ".*"))
    owners = [p for p in siblings if p != out and not p.name.endswith((".network.npz", ".lock"))
              and p.with_suffix(".network.npz") == network and p.is_file() and _is_checkpoint(p)]
    if owners:
        raise UsageError(f"--out {printable(out, 200)}: its network file {printable(network.name, 200)} belongs to "
                         f"the checkpoint {printable(owners[0].name, 200)}; training would replace it: use another "
                         f"--out, or --force")
    if network.is_symlink() or not _is_network_file(network):
        raise UsageError(f"--out {printable(out, 200)}: its network file {printable(network.name, 200)} exists and "
                         f"is not an hwsim network file; training would replace it: use another --out, or --force")


def _default_checkpoint(rule: str, dataset: str) -> Path:
    """``runs/RULE-DATASET.pt``, numbered (``-2``, ``-3``, ...) when an earlier run holds the name."""
    if dataset.lower().endswith(".npz") or "/" in dataset or "\\" in dataset:
        dataset = Path(dataset).stem  # a data file: its name, never its folders
    dataset = dataset.replace(":", "-")  # tonic:NMNIST -> tonic-NMNIST
    path, n = Path("runs") / f"{rule}-{dataset}.pt", 1
    while path.exists() or path.with_suffix(".network.npz").exists():
        n += 1
        path = Path("runs") / f"{rule}-{dataset}-{n}.pt"
    return path


def _chip_list(values: list[str] | None) -> list:
    """The chips of ``--chip``: names or paths, comma-separated and/or repeated; none or 'all': every chip."""
    from hwsim import chips

    names = [n.strip() for value in values or [] for n in value.split(",") if n.strip()]
    if values and not names:  # --chips '' is a mistake, not "every chip"
        raise UsageError("--chip: give chip names or paths (comma-separated), or 'all'; got nothing")
    if not names or "all" in names:
        return chips.load_all()
    return [chips.load(name) for name in dict.fromkeys(names)]


def _output_parent(option: str, path: str | None) -> None:
    """Create the parent folder of an output file before the work starts (a bad path fails at once)."""
    if path is None:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot create its folder ({err.strerror or err})") from None


def registry_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _print_note(text: str, indent: str = "  ", width: int = 110) -> None:
    """A note wrapped at ``width`` columns (continuation lines indented two more)."""
    import textwrap

    print(textwrap.fill(printable(text), width, initial_indent=indent, subsequent_indent=indent + "  ",
                        break_long_words=False, break_on_hyphens=False))


def _print_table(header: tuple, rows: list[tuple]) -> None:
    cells = [tuple(printable(str(c)) for c in header)] + [tuple(printable(str(c)) for c in row) for row in rows]
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
