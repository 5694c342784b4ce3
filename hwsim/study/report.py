"""The study report: ``report.md`` (figures and tables) and ``results.json`` (every number it shows).

``results.json`` holds the records as the Python API returns them (joules, seconds, bytes; None for unknown);
the report shows them in µJ, ms and KiB to three significant figures.
"""

from __future__ import annotations

from pathlib import Path

from hwsim.records import dumps


def write_report(config, results: dict, out: Path) -> None:
    data = {"config": config.model_dump(), **{k: v for k, v in results.items() if k != "report"}}
    from hwsim.safeio import atomic_write

    atomic_write(out / "results.json", dumps(data))
    c = config
    lines = [f"# hwsim study: `{c.network}` on {c.dataset}", "",
             f"Time steps T = {c.timesteps}, {c.epochs} training epochs, batch {c.batch_size}, seed {c.seed}. "
             "Every number below is in `results.json`.", *_data_lines(results["train"].get("data")), "",
             "## Training in torch", "",
             "| rule | test accuracy (%) | activation memory, meter (KiB) | allocator peak (KiB) | whole training "
             "memory (KiB) | s/epoch |", "|---|---|---|---|---|---|"]
    for rule, r in results["train"]["rules"].items():
        lines.append(f"| {rule} | {r['test_accuracy_percent']} | {r['activation_kib']} | "
                     f"{_dash(r.get('allocator_kib'))} | {_dash(r.get('whole_kib'))} | {r['seconds_per_epoch']} |")
    sim = results["simulate"]
    lines += ["", "## The trained network in hwsim", "",
              f"On {sim['samples']} test samples: float read-out {sim['quantized_float_percent']} %, "
              f"fixed point (Lava-exact) {sim['quantized_fixed_percent']} % "
              f"({sim['clipped_weights']} weights clipped); {sim['sop_per_sample']} SOPs and "
              f"{sim['spikes_per_sample']} spikes per sample.", "",
              "![accuracy before and after quantisation](quantization_accuracy.png)", "",
              "![spike raster](spike_raster.png)", "", "## Activation memory against T", "",
              f"KiB at batch {results['memory']['batch']}: bytes kept for the backward pass (saved-tensor meter) / "
              f"the allocator's peak over one training batch (what existed, gradients and temporaries included) / "
              f"whole training memory, the papers' basis (weights, gradients and optimizer state too):",
              ""]
    memory = results["memory"]
    allocator = memory.get("allocator_kib", {})
    steps = sorted({int(t) for r in memory["activation_kib"].values() for t in r})
    lines += ["| rule | " + " | ".join(f"T = {t}" for t in steps) + " |", "|---|" + "---|" * len(steps)]
    whole = memory.get("whole_kib", {})
    for rule, points in memory["activation_kib"].items():
        cells = [f"{points[str(t)]} / {allocator.get(rule, {}).get(str(t), '-')} / "
                 f"{_dash(whole.get(rule, {}).get(str(t)))}" for t in steps]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    skipped = [f"{rule} left out: {why}" for rule, why in memory.get("skipped", {}).items()]
    plans = [line for plan in memory.get("plans", {}).values() for line in _stdl_lines(config, plan)]
    lines += ["", *plans, *(skipped and [*skipped, ""]),
              "![memory against T](memory_vs_T.png)",
              "", "## On-chip fine-tuning (numba, counted)", ""]
    if results["on_chip"]["rules"]:
        lines += ["| rule | samples | accuracy before (%) | after (%) | error MACs | gradient ops | weights written |",
                  "|---|---|---|---|---|---|---|"]
        for rule, r in results["on_chip"]["rules"].items():
            lines.append(f"| {rule} | {r['samples']} | {r['before_percent']} | {r['after_percent']} | "
                         f"{r['error_macs_last_sample']} | {r['grad_ops_last_sample']} | "
                         f"{r['weight_updates_last_sample']} |")
        lines += ["", "(operation counts of the last training sample)"]
    else:
        lines.append(results["on_chip"].get("note", ""))
    lines += ["", "## Inference on every chip", "",
              f"Fixed-point network, {results['costs']['samples']} test samples. Dynamic energy (the chip's actions) "
              "and static energy (static power x simulated time; the assumption per chip below) apart; ≥ marks a "
              "lower bound: actions with a count but no published figure, listed in `results.json` with their "
              "counts, never counted as zero.", "",
              "| chip | dynamic (µJ/sample) | static (µJ/sample) | energy per sample (µJ) | band (µJ) | latency per "
              "sample (ms) | fits | cores | static assumption |", "|---|---|---|---|---|---|---|---|---|"]
    for chip, r in results["costs"]["chips"].items():
        priced = r.get("energy_j") is not None
        dynamic = _uj(r.get("energy_dynamic_per_sample_j")) if priced else "-"
        if priced and r.get("lower_bound") and dynamic != "-":
            dynamic = f"≥ {dynamic}"  # the unpriced actions are dynamic ones
        if r.get("energy_all_in_j") is not None:
            dynamic = "all-in"
        static = _uj(r.get("energy_static_per_sample_j"))
        energy = _energy_cell(_uj(r.get("energy_per_sample_j"), None), r["unpriced"], priced)
        band = _band(r.get("energy_per_sample_low_j"), r.get("energy_per_sample_high_j"))
        latency = "-" if r.get("latency_per_sample_s") is None else f"{r['latency_per_sample_s'] * 1e3:.3g}"
        lines.append(f"| {chip} | {dynamic} | {static} | {energy} | {band} ({r.get('validation', '-')}) | {latency} | "
                     f"{_fits(r['fits'])} | {r['cores_used']} | {r.get('static_assumption', '')} |")
    warnings = [w for r in results["costs"]["chips"].values() for w in r.get("warnings", [])]
    if warnings:
        lines += [""] + [f"- warning: {w}" for w in warnings]
    lines += ["", "![energy per chip](energy_per_chip.png)", "", "## On-chip learning: chips x rules", "",
              "![feasibility](feasibility.png)", "",
              f"Counted on {results['feasibility'].get('input', 'one training sample')}.", "",
              "Energy of one training sample (≥: a lower bound); largest T whose learning state fits (any: it does "
              "not grow with T); rank by energy per training sample among the feasible pairs whose energy is fully "
              "priced (a lower bound is not ranked: leaving actions unpriced would move a chip up).", "",
              "| chip | rule | verdict | max T | cores | memory per core (KiB) | energy per sample (µJ) | rank |",
              "|---|---|---|---|---|---|---|---|"]
    for chip, rules in results["feasibility"]["table"].items():
        for rule, r in rules.items():
            uj = _uj(r.get("energy_per_sample_j"), None)
            energy = _energy_cell(uj, r.get("unpriced", []), uj is not None)
            max_t = r.get("max_timesteps")
            max_t = max_t if max_t is not None else ("any" if str(r.get("max_timesteps_note", "")).startswith("any")
                                                     else "?")
            rank = "-" if r.get("rank") is None else str(r["rank"])
            lines.append(f"| {chip} | {rule} | `{r['verdict']}` | {max_t} | {r.get('cores_needed', '-')} | "
                         f"{r['memory_per_core_bytes'] / 1024:.1f} | {energy} | {rank} |")
    lines += [f"\n{rule} left out: {why}" for rule, why in results["feasibility"].get("skipped", {}).items()]
    export = results["export"]
    lines += ["", "## Export to Lava", ""]
    if export.get("skipped"):
        lines.append("Skipped (export: false).")
    else:
        lines.append(f"Files in `export/`; Lava `fixed_pt` equals hwsim on every layer: "
                     f"{'yes' if export['verified_equal'] else 'NO'}.")
        if "learning_correlation" in export:
            lines.append(f"Three-factor `LearningDense` rule in Lava against hwsim's fixed-point OTTT: weight-change "
                         f"correlation {export['learning_correlation']}.")
    atomic_write(out / "report.md", "\n".join(lines) + "\n")


def _stdl_lines(config, plan: dict | None) -> list[str]:
    """Which auxiliary network STDL's budget admitted per subnetwork, and whether the budget binds (the whole
    run of following layers would not fit)."""
    if not plan:
        return []
    from hwsim.learning.stdl_plan import training_bytes
    from hwsim.sim.network import from_spec

    network = from_spec(config.network)
    count = len(plan["subnetworks"])
    parts, binds = [], False
    for index, (aux, need) in enumerate(zip(plan["auxiliary"], plan["auxiliary_training_bytes"])):
        done = sum(len(s) for s in plan["subnetworks"][: index + 1])  # neuron layers up to this subnetwork
        rest = list(range(done, sum(len(s) for s in plan["subnetworks"][:count])))
        full = training_bytes(network, rest, False, plan["batch"]) if rest else need
        binds |= full > plan["budget_bytes"]
        parts.append(f"subnetwork {index} trains against {' + '.join(aux)} ({need} B"
                     + (f"; all following layers would need {full} B)" if full > plan["budget_bytes"] else ")"))
    verdict = "binds" if binds else "does not bind (every auxiliary network is the whole run of following layers)"
    return [f"STDL's memory budget ({plan['budget_bytes']} B per auxiliary network, batch {plan['batch']}) "
            f"{verdict}: " + "; ".join(parts) + ". Its auxiliary layers have their own weights (Ma et al. 2025; "
            "our reading of the budget: docs/rules.md).", ""]


def _data_lines(data: dict | None) -> list[str]:
    """How the data set was split and its events binned (event data sets say it; the others give no binning)."""
    if not data:
        return []
    return ["", f"Data: {data['split']}" + (f"; events in {data['binning']}." if data.get("binning") else ".")]


def _dash(value) -> str:
    return "-" if value is None else str(value)


def _uj(joules: float | None, missing: str | None = "-"):
    """Joules as µJ to 3 significant figures (``missing`` for None)."""
    return missing if joules is None else float(f"{joules * 1e6:.3g}")


def _band(low: float | None, high: float | None) -> str:
    """A band in µJ: ``87–390``, ``≥ 87`` (no upper end: a lower bound), ``-`` (none)."""
    if low is None:
        return "-"
    return f"≥ {low * 1e6:.2g}" if high is None else f"{low * 1e6:.2g}–{high * 1e6:.2g}"


def _energy_cell(uj, unpriced, priced: bool) -> str:
    """A table cell for an energy in µJ: the number, ``≥ number (N unpriced)`` for a lower bound, or
    ``unpriced (N actions)`` when nothing could be priced."""
    n = len(unpriced) if isinstance(unpriced, list) else int(unpriced or 0)
    if not priced or uj is None:
        return f"unpriced ({n} actions)" if n else "-"
    return f"≥ {uj} ({n} unpriced)" if n else str(uj)


def _fits(fits) -> str:
    return "unknown" if fits is None else ("yes" if fits else "no")
