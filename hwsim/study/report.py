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
    lines += _torch_option_lines(results["train"]["rules"])
    lines += _simulate_lines(results["simulate"])
    lines += ["## Activation memory against T", "",
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
    lines += ["", *plans, *(skipped and [*skipped, ""]), *_eprop_state_lines(memory),
              "![memory against T](memory_vs_T.png)",
              "", "## On-chip fine-tuning (numba, counted)", ""]
    if results["on_chip"]["rules"]:
        lines += ["| rule | samples | accuracy before (%) | after (%) | error MACs | gradient ops | weights written |",
                  "|---|---|---|---|---|---|---|"]
        for rule, r in results["on_chip"]["rules"].items():
            lines.append(f"| {rule} | {r['samples']} | {r['before_percent']} | {r['after_percent']} | "
                         f"{r['error_macs_last_sample']} | {r['grad_ops_last_sample']} | "
                         f"{r['weight_updates_last_sample']} |")
        lines += ["", "(operation counts of the last training sample)", *_eprop_on_chip_lines(results["on_chip"])]
    else:
        lines.append(results["on_chip"].get("note", ""))
    float_why = results["costs"].get("float_network")
    network = "Fixed-point network" if float_why is None else f"Float network ({float_why}; priced from its counts)"
    lines += ["", "## Inference on every chip", "",
              f"{network}, {results['costs']['samples']} test samples. Dynamic energy (the chip's actions) "
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
    lines += eprop_chip_lines(results["feasibility"])
    export = results["export"]
    lines += ["", "## Export to Lava", ""]
    if export.get("skipped"):
        lines.append(f"Skipped: {export['reason']}." if export.get("reason") else "Skipped (export: false).")
    else:
        lines.append(f"Files in `export/`; Lava `fixed_pt` equals hwsim on every layer: "
                     f"{'yes' if export['verified_equal'] else 'NO'}.")
        if "learning_correlation" in export:
            lines.append(f"Three-factor `LearningDense` rule in Lava against hwsim's fixed-point OTTT: weight-change "
                         f"correlation {export['learning_correlation']}.")
    atomic_write(out / "report.md", "\n".join(lines) + "\n")


def _torch_option_lines(rules: dict) -> list[str]:
    """The options a torch rule ran with where the study could not choose them (e-prop: its defaults)."""
    lines = [f"{rule} in torch ran with its default options "
             f"({', '.join(f'{k}={v}' for k, v in r['options'].items())}): torch training takes no e-prop option yet."
             for rule, r in rules.items() if r.get("options")]
    return ["", *lines] if lines else []


def _simulate_lines(sim: dict) -> list[str]:
    """The simulate stage: accuracy float and fixed point (or why there is no fixed point), SOPs, spikes."""
    recurrent = sim.get("sop_recurrent_per_sample")
    sops = f"{sim['sop_per_sample']} SOPs" + ("" if recurrent is None else f" ({recurrent} of them recurrent)")
    if sim.get("fixed_skipped"):
        first = (f"On {sim['samples']} test samples: float read-out {sim['quantized_float_percent']} %; no fixed "
                 f"point: {sim['fixed_skipped']}. {sops} and {sim['spikes_per_sample']} spikes per sample (float).")
        return ["", "## The trained network in hwsim", "", first, "", "![spike raster](spike_raster.png)", ""]
    first = (f"On {sim['samples']} test samples: float read-out {sim['quantized_float_percent']} %, "
             f"fixed point (Lava-exact) {sim['quantized_fixed_percent']} % "
             f"({sim['clipped_weights']} weights clipped); {sops} and {sim['spikes_per_sample']} spikes per sample.")
    return ["", "## The trained network in hwsim", "", first, "",
            "![accuracy before and after quantisation](quantization_accuracy.png)", "",
            "![spike raster](spike_raster.png)", ""]


def _eprop_state_lines(memory: dict) -> list[str]:
    """e-prop's learning state per sample, per synapse against per neuron (flat in T)."""
    lines = []
    for rule, forms in memory.get("eprop_state_values", {}).items():
        parts = [f"{form}: {', '.join(f'{k} {v}' for k, v in kinds.items())} values" for form, kinds in forms.items()]
        lines += [f"{rule} keeps its eligibility traces outside autograd (the meter does not see them; the allocator "
                  f"does): learning state per sample, at any T: {'; '.join(parts)}.", ""]
    return lines


def _eprop_on_chip_lines(on_chip: dict) -> list[str]:
    """e-prop's own learning counters and the options it ran with on chip."""
    lines = []
    for rule, r in on_chip["rules"].items():
        if "learning_signals_last_sample" not in r:
            continue
        options = ", ".join(f"{k}={v}" for k, v in r.get("options", {}).items())
        lines.append(f"{rule} ({options}), last sample: {r['trace_updates_last_sample']} trace updates, "
                     f"{r['eligibility_updates_last_sample']} eligibility updates (state per synapse), "
                     f"{r['learning_signals_last_sample']} learning signals broadcast.")
    return ["", *lines] if lines else []


LEARNING_CHIPS = ("reckon", "loihi", "spinnaker2")  # chips built for on-chip learning with e-prop-like rules


def eprop_chip_lines(feasibility: dict) -> list[str]:
    """A section on e-prop's verdicts on the learning chips (ReckOn, Loihi, SpiNNaker 2, those the study judged),
    in both eligibility forms: the study's and the other one (per synapse, Bellec et al. 2020; per neuron,
    ReckOn)."""
    other = feasibility.get("eprop_other_form", {})
    lines = []
    for rule, alt in other.items():
        study_form = "per_neuron" if alt["eligibility"] == "per_synapse" else "per_synapse"
        chips = [chip for chip in LEARNING_CHIPS if rule in feasibility["table"].get(chip, {})]
        if not chips:
            continue
        lines += ["", f"## {rule} on the learning chips", "",
                  f"Verdict, learning memory per core and energy per training sample of {rule} with eligibility "
                  f"traces per synapse (the e-prop paper's form) and per neuron (ReckOn's variant), on the same "
                  f"sample.",
                  "", "| chip | eligibility | verdict | cores | memory per core (KiB) | energy per sample (µJ) |",
                  "|---|---|---|---|---|---|"]
        for chip in chips:
            for form, r in ((study_form, feasibility["table"][chip][rule]), (alt["eligibility"], alt["table"][chip])):
                uj = _uj(r.get("energy_per_sample_j"), None)
                energy = _energy_cell(uj, r.get("unpriced", []), uj is not None)
                lines.append(f"| {chip} | {form} | `{r['verdict']}` | {r.get('cores_needed', '-')} | "
                             f"{r['memory_per_core_bytes'] / 1024:.1f} | {energy} |")
    return lines


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
    scored = f"; scored on steps {data['scored_steps']} (the task's decision steps)" if data.get("scored_steps") else ""
    return ["", f"Data: {data['split']}{scored}" + (f"; events in {data['binning']}." if data.get("binning") else ".")]


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
