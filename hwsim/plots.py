"""Matplotlib figures (Agg backend, written to PNG files); more in :mod:`hwsim.figures`, colours from
:mod:`hwsim.palette` (one colour per rule, chip, action and verdict in every figure)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hwsim.palette import VERDICT_COLORS, action_color, chip_color, rule_color  # noqa: E402

ACTION_ORDER = ("sop", "neuron_update", "spike_out", "routing", "memory", "static",
                "weight_update", "trace_update", "error_mac", "grad_op")


def energy_breakdown(reports: list[dict], path: str | Path, title: str = "") -> Path:
    """Per chip: total energy per sample (log scale) and the share of each action (stacked to 100 %).

    ``reports`` are :meth:`hwsim.cost.CostReport.to_dict` records."""
    path = Path(path)
    unpriced_chips = [r["chip"] for r in reports if r["energy_j"] <= 0]
    reports = [r for r in reports if r["energy_j"] > 0]
    if not reports:
        raise ValueError("no chip could price any action: nothing to plot")
    names = [r["chip"] + ("" if r["fits"] else " (does not fit)") for r in reports]
    actions = [a for a in ACTION_ORDER if any(r["energy_by_action_j"].get(a, 0) > 0 for r in reports)]
    fig, (ax_total, ax_share) = plt.subplots(1, 2, figsize=(12, 0.45 * len(reports) + 1.8), sharey=True)
    totals = [r["energy_per_sample_j"] * 1e6 for r in reports]
    ax_total.barh(names, totals, color=[chip_color(r["chip"]) for r in reports])
    ax_total.set_xscale("log")
    ax_total.set_xlabel("energy per sample (µJ, log scale)")
    ax_total.invert_yaxis()
    for y, (value, r) in enumerate(zip(totals, reports)):
        label = f"{value:.3g}" + (" *" if r["unpriced"] else "")
        ax_total.text(value, y, " " + label, va="center", fontsize=8)
    left = [0.0] * len(reports)
    for action in actions:
        share = [r["energy_by_action_j"].get(action, 0.0) / r["energy_j"] * 100 for r in reports]
        ax_share.barh(names, share, left=left, color=action_color(action), label=action)
        left = [a + b for a, b in zip(left, share)]
    ax_share.set_xlabel("share of energy by action (%)")
    ax_share.set_xlim(0, 100)
    ax_share.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(actions), 5), fontsize=8)
    fig.suptitle(title or "energy per chip", y=1.0)
    note = "* some actions could not be priced (no published figure)"
    if unpriced_chips:
        note += f"; not shown, nothing priced: {', '.join(unpriced_chips)}"
    fig.text(0.01, 0.005, note, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def feasibility_heatmap(verdicts: list[dict], path: str | Path, title: str = "") -> Path:
    """Chips (rows) x rules (columns): colour = verdict (feasible / unknown / infeasible), text = energy per
    training sample (µJ) and the learning memory per core (KiB). ``verdicts`` are ``Verdict.to_dict()``."""
    import numpy as np
    from matplotlib.colors import ListedColormap

    path = Path(path)
    chips = list(dict.fromkeys(v["chip"] for v in verdicts))
    rules = list(dict.fromkeys(v["rule"] for v in verdicts))
    grid = np.zeros((len(chips), len(rules)))
    fig, ax = plt.subplots(figsize=(1.45 * len(rules) + 2.5, 0.55 * len(chips) + 1.8))
    for v in verdicts:
        r, c = chips.index(v["chip"]), rules.index(v["rule"])
        grid[r, c] = 2 if v["verdict"] == "feasible" else (1 if v["verdict"].startswith("unknown") else 0)
        energy = "-" if v["energy_per_sample_j"] is None else f"{v['energy_per_sample_j'] * 1e6:.3g} µJ"
        if v["energy_per_sample_j"] is not None and v["unpriced"]:
            energy += " *"
        ax.text(c, r, f"{energy}\n{v['memory_per_core_bytes'] / 1024:.0f} KiB", ha="center", va="center", fontsize=7)
    ax.imshow(grid, cmap=ListedColormap([VERDICT_COLORS[v] for v in ("infeasible", "unknown", "feasible")]),
              vmin=0, vmax=2, aspect="auto")
    ax.set_xticks(range(len(rules)), rules)
    ax.set_yticks(range(len(chips)), chips)
    ax.set_title(title or "on-chip learning: energy per training sample, learning memory per core")
    fig.text(0.01, 0.005, "green: feasible · grey: unknown (capability or capacity not published) · red: infeasible"
             " · * some actions unpriced (no published figure)", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def spike_raster(result, path: str | Path | None = None, title: str = "", inputs=None):
    """Spike raster of one sample with the input (see :func:`hwsim.figures.spike_raster`); returns the Figure."""
    from hwsim.figures import spike_raster as raster

    return raster(result, path, title=title, inputs=inputs)


def memory_vs_timesteps(memory_kib: dict[str, dict[str, float]], path: str | Path, batch: int) -> Path:
    """Activation memory kept for backward (KiB) against T, one line per rule."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for rule, points in memory_kib.items():
        steps = sorted(int(t) for t in points)
        ax.plot(steps, [points[str(t)] for t in steps], marker="o", label=rule, color=rule_color(rule))
    ax.set_xlabel("time steps T")
    ax.set_ylabel(f"activation memory, KiB (batch {batch})")
    ax.set_title("memory kept for the backward pass")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def accuracy_bars(values: dict[str, float], path: str | Path | None = None, samples: int | None = None):
    """Accuracy (%) before and after quantisation on a zoomed axis with the difference labelled (see
    :func:`hwsim.figures.accuracy_comparison`); returns the Figure."""
    from hwsim.figures import accuracy_comparison

    return accuracy_comparison(values, path, samples=samples)
