"""``sweep.md``: the best points per chip and rule, the Pareto front, the figures and the failed points. Every
number it shows is a value of ``points.parquet`` (as stored)."""

from __future__ import annotations

from pathlib import Path

from hwsim.study.sweep.config import SweepConfig
from hwsim.study.sweep.table import STANDARD, TABLE, _number, pareto


def write_report(config: SweepConfig, rows: list[dict], figures: list[str], out: Path) -> Path:
    ok = [r for r in rows if r.get("status") == "ok"]
    failed = [r for r in rows if r.get("status") != "ok"]
    axes = [k for k in config.axes if k not in ("train_rules", "chips")]
    varied = [k for k in axes if k not in STANDARD]
    lines = ["# hwsim sweep", "",
             f"{len(rows)} points: {len(ok)} finished, {len(failed)} failed. One row per point in `{TABLE}`; each "
             "point's full results in `points/<point_id>/results.json`.", ""]
    if config.axes:
        lines += ["Axes: " + "; ".join(f"`{k}` = {', '.join(map(str, v))}" for k, v in config.axes.items()), ""]
    for name in figures:
        lines += [f"![{name[:-4].replace('_', ' ')}]({name})", ""]
    lines += ["## Best point per chip and rule", "",
              "Among the points whose network fits the chip (else those where the fit is unknown, else all): the "
              "highest fixed-point accuracy, ties to the lowest energy. Energy per inference in µJ (* a lower bound: "
              "some actions have no published price); learning memory per core in KiB.", ""]
    columns = ["chip", "rule", "accuracy (%)", "energy (µJ)", "network", "T", *varied, "fits", "learning on chip",
               "KiB/core", "point"]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    best: dict[tuple[str, str], dict] = {}
    for r in ok:
        key = (r["chip"], r["rule"])
        if key not in best or _better(r, best[key]):
            best[key] = r
    for (chip, rule), r in sorted(best.items()):
        lines.append("| " + " | ".join([chip, rule, _show(r["accuracy_percent"]), _energy(r), r["network"],
                                        _show(r["timesteps"]), *[_show(r.get(k)) for k in varied], _show(r["fits"]),
                                        f"`{r['learning_verdict']}`", _show(r["learning_memory_kib_per_core"]),
                                        f"`{r['point_id']}`"]) + " |")
    front = pareto(ok)
    lines += ["", "## Pareto front: accuracy against energy per inference", "",
              "No other point whose network fits its chip reaches this accuracy with less energy. Total energy "
              "(dynamic + static where the chip publishes static power): compare chips with that in mind.", "",
              "| energy (µJ) | accuracy (%) | chip | rule | network | T | point |", "|---|---|---|---|---|---|---|"]
    for r in front:
        lines.append(f"| {_energy(r)} | {_show(r['accuracy_percent'])} | {r['chip']} | {r['rule']} | {r['network']} "
                     f"| {_show(r['timesteps'])} | `{r['point_id']}` |")
    if failed:
        lines += ["", "## Failed points", "", "A rerun of the same command runs these again.", "",
                  "| point | chip | rule | network | T | error |", "|---|---|---|---|---|---|"]
        for r in failed:
            error = str(r.get("error")).replace("|", "/")
            lines.append(f"| `{r['point_id']}` | {r['chip']} | {r['rule']} | {r['network']} | "
                         f"{_show(r['timesteps'])} | {error} |")
    from hwsim.safeio import atomic_write

    return atomic_write(out / "sweep.md", "\n".join(lines) + "\n")


def _better(a: dict, b: dict) -> bool:
    return _rank(a) > _rank(b)


def _rank(row: dict) -> tuple[int, float, float]:
    """Fits the chip (yes > unknown > no), then accuracy, then the lower energy."""
    fits = {True: 2, None: 1, False: 0}.get(row.get("fits"), 1)
    accuracy = row["accuracy_percent"] if _number(row.get("accuracy_percent")) else float("-inf")
    energy = row["energy_uj"] if _number(row.get("energy_uj")) and row["energy_uj"] > 0 else float("inf")
    return fits, accuracy, -energy


def _energy(row: dict) -> str:
    value = row.get("energy_uj")
    if not _number(value) or value <= 0:
        return "-"
    return f"{value}" + (" *" if row.get("energy_lower_bound") else "")


def _show(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
