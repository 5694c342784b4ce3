"""The sweep's figures (matplotlib, Agg, PNG), drawn from the table's rows (dicts, see :mod:`hwsim.study.sweep.table`).

* ``accuracy_vs_energy.png`` -- accuracy (fixed point, %) against energy per inference (µJ, log), one colour per
  rule, one marker per chip, hollow where the energy is a lower bound, crossed where the network does not fit the
  chip; the Pareto front (of the points that fit) joined and ringed;
* ``memory_vs_T.png`` -- learning memory per core (KiB) against T, one panel per chip, one line per rule (and
  network), the chip's memory per core as a dashed line where it publishes one;
* ``cores_vs_width.png`` -- cores needed for inference against the widest hidden layer, one line per chip (lines
  that coincide stay visible: each chip has its own line style and marker size).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from hwsim.study.palette import rule_color  # noqa: E402
from hwsim.study.sweep.table import _number, pareto  # noqa: E402

MARKERS = "osD^v<>ph*XP"
LINESTYLES = ("-", "--", ":", "-.")


def draw_all(rows: list[dict], out: Path) -> list[str]:
    """Every figure that the rows have data for; the file names written."""
    ok = [r for r in rows if r.get("status") == "ok"]
    written = []
    for name, draw in (("accuracy_vs_energy.png", accuracy_vs_energy), ("memory_vs_T.png", memory_vs_timesteps),
                       ("cores_vs_width.png", cores_vs_width)):
        if draw(ok, out / name) is not None:
            written.append(name)
    return written


def accuracy_vs_energy(rows: list[dict], path: Path) -> Path | None:
    rows = [r for r in rows
            if _number(r.get("energy_uj")) and r["energy_uj"] > 0 and _number(r.get("accuracy_percent"))]
    if not rows:
        return None
    rules, chip_names = _ordered(rows, "rule"), _ordered(rows, "chip")
    colours = {rule: rule_color(rule) for rule in rules}
    markers = {chip: MARKERS[k % len(MARKERS)] for k, chip in enumerate(chip_names)}
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        colour = colours[r["rule"]]
        ax.scatter(r["energy_uj"], r["accuracy_percent"], marker=markers[r["chip"]], s=40,
                   facecolors="none" if r.get("energy_lower_bound") else colour, edgecolors=colour)
        if r.get("fits") is False:  # does not fit its chip: crossed out, never on the front
            ax.scatter(r["energy_uj"], r["accuracy_percent"], marker="x", s=60, color="grey", linewidths=1)
    front = pareto(rows)
    ax.step([r["energy_uj"] for r in front], [r["accuracy_percent"] for r in front], where="post", color="black",
            linewidth=1, zorder=0)
    ax.scatter([r["energy_uj"] for r in front], [r["accuracy_percent"] for r in front], s=140, facecolors="none",
               edgecolors="black", linewidths=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("energy per inference (µJ, log scale; dynamic + static where published)")
    ax.set_ylabel("accuracy, fixed point in hwsim (%)")
    handles = [Line2D([], [], color=colours[r], marker="o", linestyle="", label=r) for r in rules]
    handles += [Line2D([], [], color="grey", marker=markers[c], linestyle="", label=c) for c in chip_names]
    handles += [Line2D([], [], color="black", marker="o", markerfacecolor="none", markersize=11, linestyle="-",
                       linewidth=1, label="Pareto front")]
    if any(r.get("fits") is False for r in rows):
        handles.append(Line2D([], [], color="grey", marker="x", linestyle="", label="does not fit the chip"))
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_title("accuracy against energy per inference (hollow: lower bound, some actions unpriced)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def memory_vs_timesteps(rows: list[dict], path: Path) -> Path | None:
    rows = [r for r in rows if _number(r.get("learning_memory_kib_per_core"))]
    if not rows:
        return None
    chip_names, rules, networks = _ordered(rows, "chip"), _ordered(rows, "rule"), _ordered(rows, "network")
    colours = {rule: rule_color(rule) for rule in rules}
    styles = {net: LINESTYLES[k % len(LINESTYLES)] for k, net in enumerate(networks)}
    cols = min(3, len(chip_names))
    nrows = -(-len(chip_names) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, chip in zip(axes.flat, chip_names):
        mine = [r for r in rows if r["chip"] == chip]
        for rule in rules:
            for net in networks:
                points = {}
                for r in mine:
                    if r["rule"] == rule and r["network"] == net:
                        points.setdefault(r["timesteps"], r["learning_memory_kib_per_core"])
                if points:
                    steps = sorted(points)
                    ax.plot(steps, [points[t] for t in steps], marker="o", color=colours[rule],
                            linestyle=styles[net])
        limits = {r["learning_memory_limit_kib"] for r in mine if _number(r.get("learning_memory_limit_kib"))}
        for limit in limits:
            ax.axhline(limit, color="red", linestyle="--", linewidth=1)
            ax.text(ax.get_xlim()[0], limit, f" {chip} memory per core {limit:g} KiB", color="red", fontsize=7,
                    va="bottom")
        if not limits:
            ax.text(0.02, 0.95, "memory per core not published", transform=ax.transAxes, fontsize=7, va="top")
        ax.set_title(chip, fontsize=10)
        ax.set_xlabel("time steps T")
        ax.set_ylabel("learning memory per core (KiB)")
        ax.set_yscale("log")
        _plain(ax.yaxis)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(chip_names):]:
        ax.axis("off")
    handles = [Line2D([], [], color=colours[r], marker="o", label=r) for r in rules]
    if len(networks) > 1:
        handles += [Line2D([], [], color="grey", linestyle=styles[n], label=n) for n in networks]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(handles), 6), fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def cores_vs_width(rows: list[dict], path: Path) -> Path | None:
    rows = [r for r in rows if _number(r.get("cores")) and _number(r.get("width"))]
    if not rows:
        return None
    chip_names = _ordered(rows, "chip")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, chip in enumerate(chip_names):
        points = {}
        for r in rows:
            if r["chip"] == chip:
                points.setdefault(r["width"], r["cores"])
        widths = sorted(points)
        ax.plot(widths, [points[w] for w in widths], marker=MARKERS[k % len(MARKERS)], label=chip,
                linestyle=LINESTYLES[k % len(LINESTYLES)], markersize=max(10 - 2 * k, 4), alpha=0.85)
    ax.set_xlabel("width: neurons of the widest hidden layer")
    ax.set_ylabel("cores needed (inference)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    widths = sorted({r["width"] for r in rows})
    ax.set_xticks(widths)  # one label per width swept, nothing in between (labels on every minor tick collided)
    _plain(ax.xaxis, minor=False)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    _plain(ax.yaxis, minor=False)
    if len(widths) > 6:
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("cores needed against network width", fontsize=10)
    return _save(fig, path)


def _plain(axis, minor: bool = True) -> None:
    """Tick labels of a log axis as plain numbers (40, 60, 100), not powers of ten; ``minor=False``: no labels
    on the minor ticks (they collide when the axis spans a decade or more)."""
    label = FuncFormatter(lambda value, _: f"{value:g}")
    axis.set_major_formatter(label)
    axis.set_minor_formatter(label if minor else NullFormatter())


def _ordered(rows: list[dict], key: str) -> list:
    return list(dict.fromkeys(r[key] for r in rows))


def _save(fig, path: Path) -> Path:
    from hwsim.study.figures import write_figure

    try:
        return write_figure(fig, path, dpi=110)  # atomic: never through a link, never half a file
    finally:
        plt.close(fig)
