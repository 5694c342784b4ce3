"""The sweep table: one row per point (``points.parquet``), written atomically after every finished point.

Columns (units in the names; ``None``/NaN where a figure does not exist or the point failed):

* ``point`` (index in the sweep's order), ``point_id``, ``status`` (``ok`` or ``error``), ``error`` (one line);
* the point's study keys: ``dataset``, ``network``, ``timesteps``, ``epochs``, ``seed``, ``rule`` (its
  ``train_rules``), ``chip``, plus every other axis (values that are not scalars as JSON text), and ``config``
  (the whole study configuration as JSON);
* the network: ``width`` (neurons of its widest hidden layer), ``neurons`` (all layers);
* accuracy: ``train_accuracy_percent`` (torch), ``float_accuracy_percent`` and ``accuracy_percent`` (the
  fixed-point network in hwsim, what the chip runs);
* inference on the chip, per sample: ``energy_uj`` (the cost model's total: dynamic plus static where the chip
  publishes it), ``energy_dynamic_uj``/``energy_static_uj`` (when the cost model reports them apart),
  ``energy_lower_bound`` (some actions unpriced), ``unpriced``, ``latency_ms``, ``fits``, ``cores``;
* on-chip learning with the point's rule: ``learning_verdict``, ``learning_feasible``,
  ``learning_memory_kib_per_core``, ``learning_memory_limit_kib`` (the chip's memory per core; NaN unpublished),
  ``learning_energy_uj_per_sample``;
* ``seconds`` (the point's own stages; training is shared), ``worker``, ``finished_at`` (UTC, ISO 8601).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hwsim.study.sweep.config import Point

TABLE = "points.parquet"
STANDARD = ("dataset", "network", "timesteps", "epochs", "seed")
# Columns that say when and where a point ran, not what it computed.
RUN_COLUMNS = ("seconds", "worker", "finished_at")


class Table:
    """The rows of one sweep folder, kept in memory and rewritten atomically to ``points.parquet``."""

    def __init__(self, out: str | Path):
        self.path = Path(out) / TABLE
        self.rows: dict[str, dict] = {}
        if self.path.is_file():
            import pandas as pd

            for row in pd.read_parquet(self.path).to_dict("records"):
                self.rows[row["point_id"]] = {k: _clean(v) for k, v in row.items()}

    def done(self) -> set[str]:
        """Ids of the points that finished without error (an errored point runs again on a rerun)."""
        return {pid for pid, row in self.rows.items() if row.get("status") == "ok"}

    def add(self, row: dict) -> None:
        self.rows[row["point_id"]] = row
        self.write()

    def frame(self):
        import pandas as pd

        rows = sorted(self.rows.values(), key=lambda r: r["point"])
        return pd.DataFrame(rows)

    def write(self) -> None:
        from hwsim.safeio import atomic_path

        with atomic_path(self.path) as tmp:  # readers see the old table or the new one, never half of one
            self.frame().to_parquet(tmp, index=False)


def make_row(point: Point, outcome: dict | None = None, error: str | None = None) -> dict[str, Any]:
    """The table row of ``point`` from its task's ``outcome`` (:func:`hwsim.study.sweep.tasks.point_task`), or an
    error row."""
    c = point.config
    row: dict[str, Any] = {"point": point.index, "point_id": point.id, "status": "error" if error else "ok",
                           "error": error}
    row.update({k: c[k] for k in STANDARD})
    row["rule"], row["chip"] = point.rule, point.chip
    for key, value in point.axes.items():
        if key not in ("train_rules", "chips") and key not in row:
            row[key] = value if isinstance(value, (str, int, float, bool)) else json.dumps(value, sort_keys=True)
    row["config"] = json.dumps(c, sort_keys=True)
    row["width"], row["neurons"] = network_size(c["network"])
    metrics = dict.fromkeys(
        ("train_accuracy_percent", "float_accuracy_percent", "accuracy_percent", "energy_uj", "energy_dynamic_uj",
         "energy_static_uj", "energy_lower_bound", "unpriced", "latency_ms", "fits", "cores", "learning_verdict",
         "learning_feasible", "learning_memory_kib_per_core", "learning_memory_limit_kib",
         "learning_energy_uj_per_sample"))
    row.update(metrics)
    if outcome is not None:
        row.update(_metrics(point, outcome["results"]))
    row["seconds"] = None if outcome is None else outcome["seconds"]
    row["worker"] = None if outcome is None else outcome["worker"]
    row["finished_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    return row


def _metrics(point: Point, results: dict) -> dict[str, Any]:
    from hwsim import chips
    from hwsim.learning.feasibility import memory_limit

    train = results["train"]["rules"][point.rule]
    sim = results["simulate"]
    costs = results["costs"]
    chip = costs["chips"][point.chip]
    samples = costs.get("samples", 1)
    learn = results["feasibility"]["table"][point.chip][point.rule]
    unpriced = chip.get("unpriced")
    unpriced = len(unpriced) if isinstance(unpriced, list) else unpriced
    limit, _ = memory_limit(chips.load(point.chip))
    energy = _uj(chip, ("energy", "energy_total", "total"), samples)
    return {"train_accuracy_percent": train.get("test_accuracy_percent"),
            "float_accuracy_percent": sim.get("quantized_float_percent"),
            "accuracy_percent": sim.get("quantized_fixed_percent"),
            "energy_uj": energy if energy else None,  # nothing priced: unknown, never 0
            "energy_dynamic_uj": _uj(chip, ("energy_dynamic", "dynamic"), samples) if energy else None,
            "energy_static_uj": _uj(chip, ("energy_static", "static"), samples) if energy else None,
            "energy_lower_bound": bool(chip["lower_bound"]) if chip.get("lower_bound") is not None else bool(unpriced),
            "unpriced": unpriced,
            "latency_ms": chip.get("latency_ms_per_sample"),
            "fits": chip.get("fits"), "cores": chip.get("cores"),
            "learning_verdict": learn["verdict"], "learning_feasible": learn["verdict"] == "feasible",
            "learning_memory_kib_per_core": learn.get("memory_kib_per_core"),
            "learning_memory_limit_kib": None if limit is None else round(limit / 1024, 1),
            "learning_energy_uj_per_sample": learn.get("energy_uj_per_sample")}


def _uj(record: dict, stems: tuple[str, ...], samples: int) -> float | None:
    """Energy per sample in µJ from a cost summary, whichever way it is keyed: ``<stem>_uj_per_sample`` (µJ per
    sample), ``<stem>_per_sample_j`` (J per sample) or ``<stem>_j`` (J for the whole batch of ``samples``).
    ``energy_j`` (the cost model's total) wins over the older per-sample key when both are present."""
    for stem in stems:
        if record.get(f"{stem}_j") is not None:
            return _sig(float(record[f"{stem}_j"]) / samples * 1e6)
        if record.get(f"{stem}_per_sample_j") is not None:
            return _sig(float(record[f"{stem}_per_sample_j"]) * 1e6)
        if record.get(f"{stem}_uj_per_sample") is not None:
            return _sig(float(record[f"{stem}_uj_per_sample"]))
    return None


def _sig(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


def network_size(spec: str) -> tuple[int, int]:
    """(neurons of the widest hidden layer -- the output layer for a one-layer network --, all neurons)."""
    from hwsim.sim.network import from_spec

    layers = from_spec(spec).layers
    hidden = layers[:-1] or layers
    return max(layer.n_out for layer in hidden), sum(layer.n_out for layer in layers)


def pareto(rows: list[dict]) -> list[dict]:
    """Rows on the accuracy/energy Pareto front: no other row has at most their energy and more accuracy (or less
    energy and as much), lowest energy first. Rows without an energy or an accuracy, and networks that do not fit
    their chip (``fits`` false), are left out."""
    usable = [r for r in rows if _number(r.get("energy_uj")) and r["energy_uj"] > 0
              and _number(r.get("accuracy_percent")) and r.get("fits") is not False]
    usable.sort(key=lambda r: (r["energy_uj"], -r["accuracy_percent"]))
    front, best = [], float("-inf")
    for row in usable:
        if row["accuracy_percent"] > best:
            front.append(row)
            best = row["accuracy_percent"]
    return front


def write_json(path: Path, data: dict) -> None:
    from hwsim.safeio import atomic_write

    atomic_write(path, json.dumps(data, indent=2, default=_plain))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _clean(value):
    """A value read back from Parquet as the plain Python value it was written as (NaN -> None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
