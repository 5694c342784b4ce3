"""Matplotlib figures of a study: each helper returns the :class:`~matplotlib.figure.Figure` (restyle it in a
notebook) and, given ``path``, also writes it as a PNG (parent folders created).

Every figure says what it shows and on what (title), gives units on its axes and a legend for its categories;
colours come from :mod:`hwsim.study.palette`, so a rule or a chip has the same colour in every figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from hwsim.study.palette import INPUT_COLOR, chip_color, mode_color, rule_color  # noqa: E402


def save(fig: Figure, path: str | Path | None, dpi: int = 120) -> Figure:
    """Write ``fig`` to ``path`` (PNG, PDF or SVG by its suffix; parent folders created) when a path is given;
    return the figure.

    Written as every output is (:func:`hwsim.safeio.atomic_path`): to a fresh temporary name, then renamed over
    ``path`` -- never through a symbolic link at ``path``, never a half-drawn file, the user's umask, and a full disk
    is one line naming the file. The figure is detached from pyplot's list of open figures, so a loop of plots
    does not pile them up; it stays usable (``fig.savefig`` again, change its axes)."""
    if path is not None:
        write_figure(fig, path, dpi)
    plt.close(fig)
    return fig


def write_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """``fig`` written to ``path`` atomically (see :func:`save`); the format from the suffix (``.png`` default)."""
    from hwsim.safeio import atomic_path

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt)
    return path


# ---------------------------------------------------------------------------------------------------------
# Spikes
# ---------------------------------------------------------------------------------------------------------
def spike_raster(result, path: str | Path | None = None, title: str = "", inputs: np.ndarray | None = None,
                 sample: int = 0) -> Figure:
    """Spike raster of one sample: the input spikes (if given, ``(T, B, *input_shape)``) in the top panel, then
    one panel per neuron layer of ``result`` (an ``Engine.run`` result). Neuron indices are integers."""
    panels = ([("input", np.asarray(inputs))] if inputs is not None else []) + list(zip(result.layer_names,
                                                                                          result.spikes))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.0 + 1.35 * len(panels)), sharex=True, squeeze=False)
    steps = panels[-1][1].shape[0]
    for ax, (name, spikes) in zip(axes[:, 0], panels):
        flat = spikes[:, sample].reshape(spikes.shape[0], -1)
        color = INPUT_COLOR if name == "input" else "black"
        # one cell per (step, neuron): a spike is a filled cell, readable at any T and layer width
        ax.imshow(flat.T.astype(np.uint8), aspect="auto", origin="lower", interpolation="nearest", vmin=0, vmax=1,
                  cmap=ListedColormap(["white", color]), extent=(-0.5, flat.shape[0] - 0.5, -0.5, flat.shape[1] - 0.5))
        ax.set_ylabel(f"{name}\nneuron index", fontsize=8)
        ax.set_ylim(-0.5, flat.shape[1] - 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        rate = flat.mean() if flat.size else 0.0
        ax.text(1.0, 1.0, f"{int(flat.sum())} spikes, rate {rate:.3f} per neuron-step", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7)
    axes[-1, 0].set_xlabel("time step")
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlim(-0.5, steps - 0.5)
    fig.suptitle(title or "spike raster of one sample")
    fig.tight_layout()
    return save(fig, path, dpi=110)


def layer_spike_rates(rates: dict[str, dict[str, float]], path: str | Path | None = None, title: str = "",
                      input_rate: float | None = None) -> Figure:
    """Mean spike rate per layer (spikes per neuron per time step), grouped bars per numeric mode.

    ``rates``: ``{mode: {layer: rate}}`` (e.g. ``float`` and ``fixed``); ``input_rate``: the input's rate,
    drawn as the first group."""
    layers = list(dict.fromkeys(layer for per_mode in rates.values() for layer in per_mode))
    groups = (["input"] if input_rate is not None else []) + layers
    width = 0.8 / max(len(rates), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(groups) + 3, 3.6))
    x = np.arange(len(groups))
    if input_rate is not None:
        ax.bar(x[0], input_rate, width=0.8 * 0.6, color=INPUT_COLOR, label="input")
    offset = 1 if input_rate is not None else 0
    for k, (mode, per_layer) in enumerate(rates.items()):
        values = [per_layer.get(layer, np.nan) for layer in layers]
        pos = x[offset:] - 0.4 + width * (k + 0.5)
        bars = ax.bar(pos, values, width=width, color=mode_color(mode), label=f"{mode} point" if mode in (
            "float", "fixed") else mode)
        for bar, value in zip(bars, values):
            ax.text(bar.get_x() + bar.get_width() / 2, value, f"{value:.3f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, groups)
    ax.set_ylabel("spike rate (spikes per neuron per step)")
    ax.set_title(title or "spike rate per layer")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


# ---------------------------------------------------------------------------------------------------------
# Accuracy
# ---------------------------------------------------------------------------------------------------------
def quantization_accuracy(y: np.ndarray, float_pred: np.ndarray, fixed_pred: np.ndarray,
                          path: str | Path | None = None, title: str = "") -> Figure:
    """What quantisation changed: left, the float and fixed-point accuracies (%) on a zoomed axis with their
    binomial standard errors and the difference labelled; right, sample by sample, how many are right in both,
    in one only, or in neither (the difference is the two middle bars)."""
    y, float_pred, fixed_pred = (np.asarray(a) for a in (y, float_pred, fixed_pred))
    n = max(len(y), 1)
    ok_float, ok_fixed = float_pred == y, fixed_pred == y
    acc = np.array([ok_float.mean(), ok_fixed.mean()]) * 100
    err = np.sqrt(acc * (100 - acc) / n)
    fig, (ax_acc, ax_split) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1, 1.4]})
    names = ["float", "fixed"]
    ax_acc.errorbar([0, 1], acc, yerr=err, fmt="none", ecolor="black", capsize=6, zorder=3)
    ax_acc.scatter([0, 1], acc, s=90, color=[mode_color(m) for m in names], zorder=4)
    for k, value in enumerate(acc):
        ax_acc.annotate(f"{value:.1f} %", (k, value), textcoords="offset points", xytext=(12, 0), va="center")
    low, high = (acc - err).min(), (acc + err).max()
    pad = max(2.0, (high - low) * 0.6)
    ax_acc.set_ylim(max(0.0, low - pad), min(100.0, high + pad))
    ax_acc.set_xlim(-0.6, 1.9)
    ax_acc.set_xticks([0, 1], ["float point\n(hwsim float engine)", "fixed point\n(Lava-exact)"])
    ax_acc.set_ylabel("test accuracy (%), zoomed axis")
    delta = acc[1] - acc[0]
    ax_acc.set_title(f"difference fixed - float: {delta:+.1f} points", fontsize=10)
    ax_acc.grid(axis="y", alpha=0.3)
    counts = {"right in both": int((ok_float & ok_fixed).sum()),
              "right in float only": int((ok_float & ~ok_fixed).sum()),
              "right in fixed only": int((~ok_float & ok_fixed).sum()),
              "wrong in both": int((~ok_float & ~ok_fixed).sum())}
    colors = ["#8fbf8f", mode_color("float"), mode_color("fixed"), "#bdbdbd"]
    bars = ax_split.barh(list(counts), list(counts.values()), color=colors)
    for bar, value in zip(bars, counts.values()):
        ax_split.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value}", va="center", fontsize=8)
    ax_split.invert_yaxis()
    ax_split.set_xlabel(f"test samples (of {len(y)})")
    ax_split.set_title("sample by sample", fontsize=10)
    fig.suptitle(title or "accuracy before (float) and after (fixed point) quantisation")
    fig.tight_layout()
    return save(fig, path)


def accuracy_comparison(values: dict[str, float], path: str | Path | None = None, title: str = "",
                        samples: int | None = None) -> Figure:
    """Accuracies (%) side by side on a zoomed axis, each labelled, with the difference to the first written
    on the figure (and binomial standard errors when ``samples`` is given)."""
    names, acc = list(values), np.array(list(values.values()), float)
    err = np.sqrt(acc * (100 - acc) / samples) if samples else np.zeros_like(acc)
    fig, ax = plt.subplots(figsize=(1.8 * len(names) + 2.5, 3.6))
    x = np.arange(len(names))
    colors = [mode_color("float" if "float" in n else "fixed" if "fixed" in n else n) for n in names]
    ax.errorbar(x, acc, yerr=err, fmt="none", ecolor="black", capsize=6, zorder=3)
    ax.scatter(x, acc, s=90, color=colors, zorder=4)
    for k, value in enumerate(acc):
        label = f"{value:.1f} %" + ("" if k == 0 else f"\n({value - acc[0]:+.1f} points)")
        ax.annotate(label, (k, value), textcoords="offset points", xytext=(12, 0), va="center", fontsize=9)
    low, high = (acc - err).min(), (acc + err).max()
    pad = max(2.0, (high - low) * 0.6)
    ax.set_ylim(max(0.0, low - pad), min(100.0, high + pad))
    ax.set_xlim(-0.6, len(names) - 0.1)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("test accuracy (%), zoomed axis")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or "accuracy before and after quantisation")
    fig.tight_layout()
    return save(fig, path)


def accuracy_vs_memory(points: dict[str, tuple[float, float]], path: str | Path | None = None,
                       title: str = "") -> Figure:
    """Test accuracy (%) against the activation memory kept for backward (KiB, log scale), one point per rule,
    with the Pareto front (no other rule is both more accurate and lighter) drawn as a step line.

    ``points``: ``{rule: (accuracy_percent, activation_kib)}``."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for rule, (acc, kib) in points.items():
        ax.scatter(kib, acc, s=70, color=rule_color(rule), label=rule, zorder=3, edgecolors="black", linewidths=0.5)
    front = pareto_front(points)
    if len(front) > 1:
        kib = [points[r][1] for r in front]
        acc = [points[r][0] for r in front]
        ax.step(kib, acc, where="post", color="black", alpha=0.4, linestyle="--", label="Pareto front", zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("activation memory kept for backward (KiB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "accuracy against training memory, per rule")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return save(fig, path)


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Rules not dominated (another rule at most as heavy and at least as accurate, better in one), by memory."""
    front = [r for r, (acc, kib) in points.items()
             if not any((a >= acc and k <= kib) and (a > acc or k < kib) for o, (a, k) in points.items() if o != r)]
    return sorted(front, key=lambda r: points[r][1])


def training_curves(histories: dict[str, list[dict]], path: str | Path | None = None, title: str = "") -> Figure:
    """Loss and accuracy (%) per epoch, one colour per rule: loss left; test accuracy (solid) and train
    accuracy (dotted) right. ``histories``: ``{rule: [{epoch, loss, train_accuracy, test_accuracy}, ...]}``
    (accuracies as fractions, epochs counted from 0 as ``hwsim train`` stores them)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for rule, history in histories.items():
        epochs = [h["epoch"] + 1 for h in history]
        color = rule_color(rule)
        ax_loss.plot(epochs, [h["loss"] for h in history], marker="o", color=color, label=rule)
        ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in history], marker="o", color=color, label=f"{rule} test")
        ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], linestyle=":", color=color,
                    label=f"{rule} train")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_loss.set_ylabel("training loss (cross-entropy / T)")
    ax_acc.set_ylabel("accuracy (%)")
    fig.suptitle(title or "training curves per rule")
    fig.tight_layout()
    return save(fig, path)


def on_chip_curve(curves: dict[str, list[tuple[int, float]]], path: str | Path | None = None,
                  title: str = "") -> Figure:
    """On-chip fine-tuning: test accuracy (%) against the training samples seen, one line per rule.
    ``curves``: ``{rule: [(samples_seen, accuracy_percent), ...]}`` starting at 0 samples (before)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for rule, points in curves.items():
        seen, acc = zip(*points)
        ax.plot(seen, acc, marker="o", color=rule_color(rule), label=rule)
    ax.set_xlabel("on-chip training samples seen")
    ax.set_ylabel("test accuracy (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title or "on-chip fine-tuning")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


# ---------------------------------------------------------------------------------------------------------
# Energy
# ---------------------------------------------------------------------------------------------------------
def energy_vs_latency(chips: dict[str, dict], path: str | Path | None = None, title: str = "") -> Figure:
    """Energy (µJ) against latency (ms) per inference sample, one point per chip (log-log).

    ``chips``: ``{chip: {"energy_uj": float | None, "latency_ms": float | None, "fits": bool | None,
    "lower_bound": bool}}``. A hollow marker: the network does not fit the chip; a triangle: a lower bound
    (some actions have no published price). Chips without a latency or an energy are named in a note."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    missing = []
    for chip, r in chips.items():
        if not r.get("energy_uj") or r.get("latency_ms") is None:
            missing.append(chip)
            continue
        color = chip_color(chip)
        marker = "^" if r.get("lower_bound") else "o"
        face = color if r.get("fits") is not False else "none"
        ax.scatter(r["latency_ms"], r["energy_uj"], s=70, marker=marker, facecolors=face, edgecolors=color,
                   linewidths=1.5, label=chip, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency per sample (ms, log scale)")
    ax.set_ylabel("energy per sample (µJ, log scale)")
    ax.set_title(title or "energy against latency per chip")
    if ax.collections:
        ax.legend(fontsize=7, ncol=2, loc="best")
    ax.grid(alpha=0.3, which="both")
    note = "triangle: lower bound (unpriced actions) · hollow: does not fit"
    if missing:
        note += f" · not shown (no energy or latency figure): {', '.join(missing)}"
    fig.text(0.01, 0.005, note, fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save(fig, path)


def energy_sweeps(by_steps: dict[str, list[tuple[int, float]]], by_rate: dict[str, list[tuple[float, float]]],
                  path: str | Path | None = None, title: str = "", rate: float | None = None,
                  steps: int | None = None, lower_bound: set[str] | frozenset[str] = frozenset()) -> Figure:
    """Energy per inference sample (µJ, log scale) against the time steps T (left, at input rate ``rate``) and
    against the input spike rate (right, at ``steps`` steps), one line per chip. Dashed: a lower bound."""
    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, data in ((ax_t, by_steps), (ax_r, by_rate)):
        for chip, points in data.items():
            points = [(x, e) for x, e in points if e and e > 0]
            if not points:
                continue
            xs, es = zip(*points)
            ax.plot(xs, es, marker="o", color=chip_color(chip), label=chip,
                    linestyle="--" if chip in lower_bound else "-")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    ax_t.set_xlabel("time steps T")
    ax_t.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_r.set_xlabel("input spike rate (probability per input neuron per step)")
    ax_t.set_ylabel("energy per sample (µJ, log scale)")
    ax_t.set_title("against T" + (f" (input rate {rate:g})" if rate is not None else ""), fontsize=10)
    ax_r.set_title("against the input rate" + (f" (T = {steps})" if steps is not None else ""), fontsize=10)
    handles, labels = ax_t.get_legend_handles_labels()
    if handles:
        ax_r.legend(handles, labels, fontsize=7, ncol=2, loc="best")
    fig.suptitle(title or "inference energy against T and input rate")
    if lower_bound:
        fig.text(0.01, 0.005, "dashed: lower bound (some actions have no published price)", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save(fig, path)


__all__ = ["accuracy_comparison", "accuracy_vs_memory", "energy_sweeps", "energy_vs_latency", "layer_spike_rates",
           "on_chip_curve", "pareto_front", "quantization_accuracy", "save", "spike_raster", "training_curves"]
