"""The sweep table: one row per point (``points.parquet``), written atomically after every finished point.

Columns (units in the names; ``None``/NaN where a figure does not exist or the point failed):

* ``point`` (index in the sweep's order), ``point_id``, ``status`` (``ok`` or ``error``), ``error`` (one line);
* the point's study keys: ``dataset``, ``network``, ``timesteps``, ``epochs``, ``seed``, ``rule`` (its
  ``train_rules``), ``chip``, plus every other axis (values that are not scalars as JSON text), and ``config``
  (the whole study configuration as JSON);
* the network: ``width`` (neurons of its widest hidden layer), ``neurons`` (all layers);
* accuracy: ``train_accuracy_percent`` (torch), ``float_accuracy_percent`` and ``accuracy_percent`` (the
  fixed-point network in hwsim, what the chip runs);
* inference on the chip, per sample (:class:`SweepMetrics`): ``energy_uj`` (the cost model's total: dynamic plus
  static where the chip publishes it), ``energy_low_uj``/``energy_high_uj`` (its band), ``energy_validation``
  (calibrated, fitted or unvalidated), ``energy_dynamic_uj``/``energy_static_uj`` (None where the profile does
  not separate them or publishes no static power), ``energy_lower_bound`` (some actions unpriced), ``unpriced``,
  ``latency_ms``, ``fits``, ``cores``;
* on-chip learning with the point's rule: ``learning_verdict``, ``learning_feasible``,
  ``learning_memory_kib_per_core``, ``learning_memory_limit_kib`` (the chip's memory per core; NaN unpublished),
  ``learning_energy_uj_per_sample``;
* ``seconds`` (the point's own stages; training is shared), ``worker``, ``finished_at`` (UTC, ISO 8601).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
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

            try:
                records = pd.read_parquet(self.path).to_dict("records")
            except MemoryError:
                raise
            except Exception as err:  # pyarrow's errors have many types; none is a ValueError subclass
                from hwsim.errors import SweepError, one_line

                raise SweepError(f"{self.path}: not a readable sweep table ({type(err).__name__}: "
                                 f"{one_line(str(err), 160)}); move it away to start the table over") from None
            for row in records:
                if not isinstance(row.get("point_id"), str):
                    from hwsim.errors import SweepError

                    raise SweepError(f"{self.path}: a row without a point_id; not a sweep table of hwsim")
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


@dataclass
class SweepMetrics:
    """What one point measured, units in the names; ``None`` where a figure does not exist (unpublished, not
    priced, or the point failed) -- never 0. Read from the point's study results: the cost record of its chip
    (joules, seconds) and the feasibility verdict of its rule on that chip, converted once, here."""

    train_accuracy_percent: float | None = None
    float_accuracy_percent: float | None = None
    accuracy_percent: float | None = None
    energy_uj: float | None = None
    energy_low_uj: float | None = None
    energy_high_uj: float | None = None
    energy_dynamic_uj: float | None = None
    energy_static_uj: float | None = None
    energy_lower_bound: bool | None = None
    energy_validation: str | None = None
    unpriced: int | None = None
    latency_ms: float | None = None
    fits: bool | None = None
    cores: int | None = None
    learning_verdict: str | None = None
    learning_feasible: bool | None = None
    learning_memory_kib_per_core: float | None = None
    learning_memory_limit_kib: float | None = None
    learning_energy_uj_per_sample: float | None = None

    @classmethod
    def of(cls, point: Point, results: dict) -> SweepMetrics:
        from hwsim import chips
        from hwsim.learning.feasibility import memory_limit

        train = results["train"]["rules"][point.rule]
        sim = results["simulate"]
        cost = results["costs"]["chips"][point.chip]
        learn = results["feasibility"]["table"][point.chip][point.rule]
        limit, _ = memory_limit(chips.load(point.chip))
        return cls(train_accuracy_percent=train.get("test_accuracy_percent"),
                   float_accuracy_percent=sim.get("quantized_float_percent"),
                   accuracy_percent=sim.get("quantized_fixed_percent"),
                   energy_uj=_uj(cost.get("energy_per_sample_j")),
                   energy_low_uj=_uj(cost.get("energy_per_sample_low_j")),
                   energy_high_uj=_uj(cost.get("energy_per_sample_high_j")),
                   energy_dynamic_uj=_uj(cost.get("energy_dynamic_per_sample_j")),
                   energy_static_uj=_uj(cost.get("energy_static_per_sample_j")),
                   energy_lower_bound=bool(cost.get("lower_bound")), energy_validation=cost.get("validation"),
                   unpriced=len(cost.get("unpriced") or []),
                   latency_ms=None if cost.get("latency_per_sample_s") is None else
                   _sig(cost["latency_per_sample_s"] * 1e3),
                   fits=cost.get("fits"), cores=cost.get("cores_used"),
                   learning_verdict=learn["verdict"], learning_feasible=learn["verdict"] == "feasible",
                   learning_memory_kib_per_core=round(learn["memory_per_core_bytes"] / 1024, 1),
                   learning_memory_limit_kib=None if limit is None else round(limit / 1024, 1),
                   learning_energy_uj_per_sample=_uj(learn.get("energy_per_sample_j")))


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
    metrics = SweepMetrics() if outcome is None else SweepMetrics.of(point, outcome["results"])
    row.update(asdict(metrics))
    row["seconds"] = None if outcome is None else outcome["seconds"]
    row["worker"] = None if outcome is None else outcome["worker"]
    row["finished_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    return row


def _uj(joules: float | None) -> float | None:
    """Joules as µJ to three significant figures; None stays None (unknown is never 0)."""
    return None if joules is None else _sig(float(joules) * 1e6)


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
