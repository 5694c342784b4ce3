"""Matplotlib figures (Agg backend, written to PNG files); more in :mod:`hwsim.study.figures`, colours from
:mod:`hwsim.study.palette` (one colour per rule, chip, action and verdict in every figure)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hwsim.study.figures import save  # noqa: E402
from hwsim.study.palette import VERDICT_COLORS, action_color, rule_color  # noqa: E402

ACTION_ORDER = ("sop", "dense_mac", "neuron_update", "spike_out", "packet", "routing", "memory", "management", "static",
                "weight_update", "trace_update", "error_mac", "grad_op")
DYNAMIC_COLOUR, STATIC_COLOUR, ALL_IN_COLOUR = "#4c72b0", action_color("static"), "#8172b2"


def rule_marker(rule: str) -> str:
    """The rule's marker in figures (its registry entry's)."""
    from hwsim.learning import registry

    found = registry.RULES.get(rule)
    return found.marker if found is not None else "o"


def energy_breakdown(reports: list[dict], path: str | Path | None, title: str = "") -> Figure:
    """Per chip: energy per sample (log scale) as side-by-side bars -- dynamic, static (or the all-in figure
    where the profile cannot separate them) -- and the total as a diamond with the profile's band as an error bar
    (a triangle and no upper whisker for a lower bound: some actions unpriced); right: the share of each action
    (stacked to 100 %, a linear axis). Nothing is stacked on the log axis, where stacking would exaggerate the
    upper part.

    ``reports`` are :meth:`hwsim.hardware.cost.CostReport.to_dict` records."""
    path = None if path is None else Path(path)
    unpriced_chips = [r["chip"] for r in reports if not r.get("energy_j")]
    reports = [r for r in reports if r.get("energy_j")]
    if not reports:
        raise ValueError("no chip could price any action: nothing to plot")
    fit_text = {True: "", False: " (does not fit)", None: " (fit unknown)"}
    names = [r["chip"] + fit_text[r["fits"]] for r in reports]
    seen = {a for r in reports for a, j in r["energy_by_action_j"].items() if (j or 0) > 0}
    actions = [a for a in ACTION_ORDER if a in seen] + sorted(seen - set(ACTION_ORDER))  # every priced action
    fig, (ax_total, ax_share) = plt.subplots(1, 2, figsize=(12, 0.5 * len(reports) + 1.9), sharey=True)
    labelled = set()
    for y, r in enumerate(reports):
        samples = max(r.get("samples") or 1, 1)
        parts = [("dynamic", r.get("energy_dynamic_per_sample_j"), DYNAMIC_COLOUR),
                 ("static", r.get("energy_static_per_sample_j"), STATIC_COLOUR)]
        if r.get("energy_all_in_j") is not None:
            parts = [("all-in (static included)", r["energy_all_in_j"] / samples, ALL_IN_COLOUR)]
        hatch = "//" if r["lower_bound"] else ""
        for k, (label, joules, colour) in enumerate(parts):
            if joules is None or joules <= 0:
                continue
            offset = (k - (len(parts) - 1) / 2) * 0.32
            ax_total.barh(y + offset, joules * 1e6, height=0.3, color=colour, hatch=hatch,
                          edgecolor="white" if hatch else None, label=None if label in labelled else label)
            labelled.add(label)
        total = r["energy_per_sample_j"] * 1e6
        low, high = r.get("energy_per_sample_low_j"), r.get("energy_per_sample_high_j")
        xerr = None
        if low is not None:
            xerr = [[total - low * 1e6], [0.0 if high is None else high * 1e6 - total]]
        ax_total.errorbar(total, y, xerr=xerr, fmt=">" if r["lower_bound"] else "D", color="black", markersize=5,
                          capsize=3, linewidth=1, label=None if "total" in labelled else "total with its band")
        labelled.add("total")
        text = ("≥ " if r["lower_bound"] else "") + f"{total:.3g}"
        if r["lower_bound"]:
            text += f" ({len(r['unpriced'])} unpriced)"
        ax_total.text(total * 1.15 if high is None else high * 1e6 * 1.1, y, " " + text, va="center", fontsize=8)
    ax_total.set_yticks(range(len(names)), names)
    ax_total.set_xscale("log")
    ax_total.set_xlabel("energy per sample (µJ, log scale): dynamic and static side by side; total with its band")
    ax_total.invert_yaxis()
    ax_total.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8)
    left = [0.0] * len(reports)
    for action in actions:
        share = [(r["energy_by_action_j"].get(action) or 0.0) / r["energy_j"] * 100 for r in reports]
        ax_share.barh(range(len(reports)), share, left=left, color=action_color(action), label=action)
        left = [a + b for a, b in zip(left, share)]
    ax_share.set_xlabel("share of the priced energy by action (%, linear)")
    ax_share.set_xlim(0, 100)
    ax_share.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(actions), 5), fontsize=8)
    fig.suptitle(title or "energy per chip", y=1.0)
    modes = sorted({r["static_mode"] for r in reports})
    note = ("hatched, triangle: a lower bound (some actions have no published figure; never counted as zero) · "
            "whiskers: the chip profile's band (validated against silicon where a measurement exists) · static: "
            + ", ".join(modes))
    if unpriced_chips:
        note += f" · not shown, nothing priced: {', '.join(unpriced_chips)}"
    fig.text(0.01, 0.005, note, fontsize=7)
    fig.tight_layout()
    return save(fig, path)


def _short_reason(verdict: str, width: int = 26) -> str:
    """The first reason of a verdict, cut to ``width`` characters for a heatmap cell."""
    if verdict == "feasible":
        return "feasible"
    head, _, reasons = verdict.partition(": ")
    first = reasons.split("; ")[0]
    first = first if len(first) <= width else first[: width - 1] + "…"
    return f"{head}: {first}" if len(head) + len(first) < width else first


def feasibility_heatmap(verdicts: list[dict], path: str | Path | None, title: str = "") -> Figure:
    """Chips (rows) x rules (columns): colour = verdict (feasible / unknown / infeasible); text = the reason
    (first one), energy per training sample (≥ when a lower bound), the largest T that fits, and the rank.
    ``verdicts`` are ``Verdict.to_dict()``."""
    import numpy as np
    from matplotlib.colors import ListedColormap

    path = None if path is None else Path(path)
    chips = list(dict.fromkeys(v["chip"] for v in verdicts))
    rules = list(dict.fromkeys(v["rule"] for v in verdicts))
    grid = np.zeros((len(chips), len(rules)))
    fig, ax = plt.subplots(figsize=(2.3 * len(rules) + 2.5, 0.75 * len(chips) + 1.8))
    for v in verdicts:
        r, c = chips.index(v["chip"]), rules.index(v["rule"])
        grid[r, c] = 2 if v["verdict"] == "feasible" else (1 if v["verdict"].startswith("unknown") else 0)
        energy = "-" if v["energy_per_sample_j"] is None else f"{v['energy_per_sample_j'] * 1e6:.3g} µJ"
        if v["energy_per_sample_j"] is not None and v.get("lower_bound", bool(v["unpriced"])):
            energy = "≥ " + energy
        max_t = v.get("max_timesteps")
        note = str(v.get("max_timesteps_note", ""))
        if max_t is not None:
            t_text = f"T ≤ {max_t}" if max_t else "fits no T"
        else:
            t_text = "any T" if note.startswith("any") else "T ?"
        rank = f" · #{v['rank']}" if v.get("rank") is not None else ""
        ax.text(c, r, f"{_short_reason(v['verdict'])}\n{energy}{rank}\n{t_text}", ha="center", va="center",
                fontsize=6)
    colours = ListedColormap([VERDICT_COLORS[v] for v in ("infeasible", "unknown", "feasible")])
    ax.imshow(grid, cmap=colours, vmin=0, vmax=2, aspect="auto")
    ax.set_xticks(range(len(rules)), rules)
    ax.set_yticks(range(len(chips)), chips)
    ax.set_title(title or "on-chip learning: verdict, energy per training sample, largest T that fits")
    fig.text(0.01, 0.005, "green: feasible · grey: unknown (capability or capacity not published) · red: infeasible"
             " · ≥: a lower bound (some actions unpriced) · #: rank by energy per training sample", fontsize=7)
    fig.tight_layout()
    return save(fig, path)


def spike_raster(result, path: str | Path | None = None, title: str = "", inputs=None):
    """Spike raster of one sample with the input (see :func:`hwsim.study.figures.spike_raster`); returns the Figure."""
    from hwsim.study.figures import spike_raster as raster

    return raster(result, path, title=title, inputs=inputs)




def memory_vs_timesteps(memory_kib: dict[str, dict[str, float]], path: str | Path | None, batch: int,
                        allocator_kib: dict[str, dict[str, float]] | None = None) -> Figure:
    """Training memory (KiB, log scale) against T: the saved-tensor meter (left) and, when given, the allocator
    peak (right), the bytes that actually existed. One colour and marker per rule, points nudged apart in T and
    every line labelled with its value at the largest T, so rules with close figures (SLTT, SLTT-K, STDL) stay
    apart."""
    path = None if path is None else Path(path)
    panels = [("saved for backward (meter)", memory_kib)]
    if allocator_kib:
        panels.append(("allocator peak", allocator_kib))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), sharey=True, squeeze=False)
    rules = list(memory_kib)
    for ax, (title, data) in zip(axes[0], panels):
        ends = []
        for n, rule in enumerate(rules):
            if rule not in data:
                continue
            colour, marker = rule_color(rule), rule_marker(rule)
            steps = sorted(int(t) for t in data[rule])
            nudge = 2 ** (0.035 * (n - (len(rules) - 1) / 2))
            values = [data[rule][str(t)] for t in steps]
            ax.plot([t * nudge for t in steps], values, marker=marker, color=colour, label=rule)
            ends.append((values[-1], rule, colour, steps[-1]))
        _label_ends(ax, ends)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        all_steps = sorted({int(t) for points in data.values() for t in points})
        ax.set_xticks(all_steps, [str(t) for t in all_steps])
        ax.set_xlim(left=min(all_steps) / 1.4)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("time steps T")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel(f"KiB (batch {batch}, log scale)")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("training memory against T")
    fig.tight_layout()
    return save(fig, path)


def _label_ends(ax, ends: list[tuple[float, str, object, int]]) -> None:
    """Write 'rule value' right of each line's last point, spread apart vertically (log axis) when close."""
    placed: list[float] = []
    for value, rule, colour, last in sorted(ends):
        y = value if not placed else max(value, placed[-1] * 1.12)
        placed.append(y)
        ax.annotate(f"{rule} {value:.0f}", (last * 1.15, y), fontsize=7, color=colour, va="center",
                    annotation_clip=False)
    ax.set_xlim(right=max((e[3] for e in ends), default=1) * 2.2)  # room for the labels; the left limit follows


def accuracy_bars(values: dict[str, float], path: str | Path | None = None, samples: int | None = None):
    """Accuracy (%) before and after quantisation on a zoomed axis with the difference labelled (see
    :func:`hwsim.study.figures.accuracy_comparison`); returns the Figure."""
    from hwsim.study.figures import accuracy_comparison

    return accuracy_comparison(values, path, samples=samples)
