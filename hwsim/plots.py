"""Matplotlib figures (Agg backend, written to PNG files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
    ax_total.barh(names, totals, color="#4c72b0")
    ax_total.set_xscale("log")
    ax_total.set_xlabel("energy per sample (µJ, log scale)")
    ax_total.invert_yaxis()
    for y, (value, r) in enumerate(zip(totals, reports)):
        label = f"{value:.3g}" + (" *" if r["unpriced"] else "")
        ax_total.text(value, y, " " + label, va="center", fontsize=8)
    left = [0.0] * len(reports)
    cmap = plt.get_cmap("tab10")
    for k, action in enumerate(actions):
        share = [r["energy_by_action_j"].get(action, 0.0) / r["energy_j"] * 100 for r in reports]
        ax_share.barh(names, share, left=left, color=cmap(k % 10), label=action)
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
    ax.imshow(grid, cmap=ListedColormap(["#f4a6a6", "#d9d9d9", "#a6dba0"]), vmin=0, vmax=2, aspect="auto")
    ax.set_xticks(range(len(rules)), rules)
    ax.set_yticks(range(len(chips)), chips)
    ax.set_title(title or "on-chip learning: energy per training sample, learning memory per core")
    fig.text(0.01, 0.005, "green: feasible · grey: unknown (capability or capacity not published) · red: infeasible"
             " · * some actions unpriced (no published figure)", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def spike_raster(result, path: str | Path, title: str = "") -> Path:
    """Spike raster of one sample, one panel per layer (``result`` is an ``Engine.run`` result, batch 1)."""
    path = Path(path)
    layers = result.spikes
    fig, axes = plt.subplots(len(layers), 1, figsize=(8, 1.2 + 1.3 * len(layers)), sharex=True)
    axes = axes if len(layers) > 1 else [axes]
    for ax, spikes, name in zip(axes, layers, result.layer_names):
        steps = spikes.shape[0]
        flat = spikes[:, 0].reshape(steps, -1)
        t, n = flat.nonzero()
        ax.scatter(t, n, s=4, marker="|", color="black")
        ax.set_ylabel(f"{name}\nneuron")
        ax.set_ylim(-0.5, flat.shape[1] - 0.5)
    axes[-1].set_xlabel("time step")
    fig.suptitle(title or "spike raster")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


RULE_STYLE = {"bptt": ("#c44e52", "o"), "sltt": ("#4c72b0", "s"), "sltt_k": ("#8172b2", "v"),
              "ottt_a": ("#55a868", "^"), "ottt_o": ("#64b5cd", "<"), "ttl_bptt": ("#ccb974", "D"),
              "stdl": ("#dd8452", "P"), "revsnn": ("#937860", "X")}


def memory_vs_timesteps(memory_kib: dict[str, dict[str, float]], path: str | Path, batch: int,
                        allocator_kib: dict[str, dict[str, float]] | None = None) -> Path:
    """Training memory (KiB, log scale) against T: the saved-tensor meter (left) and, when given, the allocator
    peak (right), the bytes that actually existed. One colour and marker per rule, points nudged apart in T and
    every line labelled with its value at the largest T, so rules with close figures (SLTT, SLTT-K, STDL) stay
    apart."""
    path = Path(path)
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
            colour, marker = RULE_STYLE.get(rule, (plt.get_cmap("tab10")(n % 10), "o"))
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
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _label_ends(ax, ends: list[tuple[float, str, object, int]]) -> None:
    """Write 'rule value' right of each line's last point, spread apart vertically (log axis) when close."""
    placed: list[float] = []
    for value, rule, colour, last in sorted(ends):
        y = value if not placed else max(value, placed[-1] * 1.12)
        placed.append(y)
        ax.annotate(f"{rule} {value:.0f}", (last * 1.15, y), fontsize=7, color=colour, va="center",
                    annotation_clip=False)
    ax.set_xlim(right=max((e[3] for e in ends), default=1) * 2.2)


def accuracy_bars(values: dict[str, float], path: str | Path) -> Path:
    """Accuracy (%) before and after quantisation."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    bars = ax.bar(list(values), list(values.values()), color=["#4c72b0", "#dd8452"])
    for bar, value in zip(bars, values.values()):
        ax.text(bar.get_x() + bar.get_width() / 2, value, f"{value:.1f} %", ha="center", va="bottom")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("accuracy before and after quantisation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
