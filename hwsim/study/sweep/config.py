"""A sweep's configuration (``sweep.yaml``) and its expansion into points.

A sweep names a base study (any ``hwsim study`` keys, see :class:`hwsim.study.pipeline.StudyConfig`) and axes:
study keys,
each with a list of values. Axes are crossed (every combination), or zipped (varied together, element by element)
when listed under ``zip``. Every combination is then split into one point per trained rule and chip: a point
trains one rule in torch, runs the trained network in hwsim, prices it on one chip and checks whether that chip
can learn with that same rule.

Keys decide what is shared: points that differ only in their chip share one trained network and its hwsim run;
points that differ only in evaluation keys (``eval_samples``, ``memory_timesteps``, ``on_chip``, ``export``) share
the training too.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hwsim.errors import SweepError, short, size_text

# Keys that do not change the trained network (everything else is part of the training key).
EVAL_KEYS = ("eval_samples", "memory_timesteps", "on_chip", "export")
# Keys that vary per point inside one trained network.
POINT_KEYS = ("chips", "rules")
# Study stages a sweep may add to what every point runs (train, simulate, costs, feasibility).
EXTRA_STAGES = ("memory", "on_chip", "export")
MAX_POINTS = 10_000  # points of one sweep: each trains (shared) and is priced; more is several sweeps
POINT_BYTES = 64 << 10  # memory per point while the sweep is planned and run: its configuration, ids, row, task


class SweepConfig(BaseModel):
    """``sweep.yaml``: ``base`` (study keys, or the path of a study YAML relative to the sweep file), ``axes``
    (study key -> list of values), ``zip`` (``true``: all axes vary together; or groups of axis names that vary
    together, the groups crossed with each other and the other axes), ``extra_stages`` (study stages to run per
    trained network besides train and simulate: memory, on_chip, export) and ``retries`` (Dask reruns of a task
    that raised; a worker that dies has its task rerun by the scheduler in any case)."""

    model_config = ConfigDict(extra="forbid")
    base: dict[str, Any] | str = Field(default_factory=dict)
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    zip: bool | list[list[str]] = False
    extra_stages: list[Literal["memory", "on_chip", "export"]] = Field(default_factory=list)
    retries: int = Field(1, ge=0, le=10)

    def canonical(self) -> str:
        """The configuration as YAML text, base inlined: two sweeps are the same sweep iff these agree."""
        return yaml.safe_dump(self.model_dump(), sort_keys=True)


@dataclass(frozen=True)
class Point:
    """One point: a full study configuration with one trained rule and one chip, and its identifiers."""

    index: int
    id: str
    axes: dict[str, Any]
    config: dict[str, Any]  # StudyConfig.model_dump() of this point
    train_key: str
    model_key: str

    @property
    def rule(self) -> str:
        return self.config["train_rules"][0]

    @property
    def chip(self) -> str:
        return self.config["chips"][0]

    def train_config(self) -> dict[str, Any]:
        """The configuration of its training (chip and evaluation keys at their defaults)."""
        return {**self.config, **_defaults(EVAL_KEYS), "chips": "all", "rules": self.config["rules"]}

    def model_config(self) -> dict[str, Any]:
        """The configuration of its trained network's hwsim run (chips at the default: those stages price none)."""
        return {**self.config, "chips": "all"}


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and validate ``path``; a ``base`` given as a file name is read relative to it and inlined."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: no such sweep configuration")
    from hwsim.safeio import load_yaml

    data = load_yaml(path, "sweep configuration")  # UsageError naming file and line when malformed
    if not isinstance(data, dict):
        raise SweepError(f"{path}: expected a mapping with keys base, axes (and optionally zip, extra_stages, "
                         "retries)")
    base = data.get("base")
    if isinstance(base, str):
        study = (path.parent / base)
        if not study.is_file():
            raise SweepError(f"{path}: key 'base': no such study configuration {study}")
        data["base"] = load_yaml(study, "study configuration") or {}
    return parse_sweep(data, where=str(path))


def parse_sweep(data: dict, where: str = "sweep") -> SweepConfig:
    """Validate a sweep given as a mapping (what ``sweep.yaml`` holds) and check every point it makes."""
    try:
        config = SweepConfig.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            raise SweepError(f"{where}: key {short(key, 60)} is not a sweep key (known: "
                             f"{', '.join(SweepConfig.model_fields)})") from None
        raise SweepError(f"{where}: key {short(key, 60)}: {e['msg']} (got {short(e.get('input'))})") from None
    if isinstance(config.base, str):
        raise SweepError(f"{where}: key 'base': a study file name is read by load_sweep; give a mapping here")
    expand(config, where)  # every point must be a valid study: refuse now, not hours into the sweep
    return config


def expand(config: SweepConfig, where: str = "sweep") -> list[Point]:
    """All points of the sweep, in a fixed order (axes in the order written, the last varying fastest)."""
    from hwsim.study.pipeline import StudyConfig

    known = list(StudyConfig.model_fields)
    base = dict(config.base)
    for key in base:
        if key not in known:
            raise SweepError(f"{where}: base: key {short(key, 60)} is not a study key (known: {', '.join(known)})")
    for key, values in config.axes.items():
        if key not in known:
            raise SweepError(f"{where}: axes: {short(key, 60)} is not a study key (known: {', '.join(known)})")
        if key == "rules":
            raise SweepError(f"{where}: axes: 'rules' is set per point from 'train_rules' (a point's trained rule is "
                             "the one checked for on-chip learning); vary 'train_rules' instead")
        if not values:
            raise SweepError(f"{where}: axes: {short(key, 60)} is an empty list; give at least one value")
    groups = _groups(config, where)
    count_points(config, groups, where)  # from the configuration alone, before any point is built
    for key, values in config.axes.items():
        seen = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(seen)) != len(seen):
            raise SweepError(f"{where}: axes: {short(key, 60)} lists a value twice: {short(values, 120)}")
    points: list[Point] = []
    for combo in itertools.product(*[list(zip(*[config.axes[k] for k in g])) for g in groups]):
        assign = {k: v for g, values in zip(groups, combo) for k, v in zip(g, values)}
        data = {**base, **assign}
        for key in ("train_rules", "chips"):
            if isinstance(data.get(key), str) and data[key] != "all":
                data[key] = [data[key]]
        data.pop("rules", None)
        try:
            study = StudyConfig.model_validate(data)
        except ValidationError as err:
            e = err.errors()[0]
            key = ".".join(str(p) for p in e["loc"])
            raise SweepError(f"{where}: point {short(assign, 200)}: study key {short(key, 60)}: "
                             f"{short_message(e['msg'])} (got {short(e.get('input'))})") from None
        except MemoryError:
            raise
        except Exception as err:  # a check that raised something other than a ValueError
            raise SweepError(f"{where}: point {short(assign, 200)}: {type(err).__name__}: {short_message(err)}"
                             ) from None
        from hwsim import chips

        chip_names = chips.names() if study.chips == "all" else list(dict.fromkeys(study.chips))
        if not chip_names or not study.train_rules:
            raise SweepError(f"{where}: point {short(assign, 200)}: needs at least one chip and one train rule")
        for rule in dict.fromkeys(study.train_rules):
            for chip in chip_names:
                point = study.model_copy(update={"train_rules": [rule], "rules": [rule], "chips": [chip]})
                dumped = point.model_dump()
                axes = {**assign, "train_rules": rule, "chips": chip}
                points.append(Point(len(points), _digest(dumped), axes, dumped,
                                    _digest({k: v for k, v in dumped.items() if k not in EVAL_KEYS + POINT_KEYS}),
                                    _digest({k: v for k, v in dumped.items() if k not in POINT_KEYS})))
    ids = [p.id for p in points]
    if len(set(ids)) != len(ids):
        raise SweepError(f"{where}: two axis combinations give the same study point (an axis repeats a base value "
                         "under another spelling?)")
    return points


def count_points(config: SweepConfig, groups: list[list[str]] | None = None, where: str = "sweep") -> int:
    """The number of points ``config`` makes, computed from the axes alone (no point built): the product over
    groups of axes varied together of the sum, over a group's values, of (train rules x chips) where the group sets
    them, times the base's train rules and chips otherwise. Refused (:class:`SweepError`, or
    :class:`~hwsim.errors.TooLarge`) above :data:`MAX_POINTS` or the memory limit, in one line."""
    from hwsim.safeio import check_memory

    groups = _groups(config, where) if groups is None else groups
    total, parts = 1, []
    for group in groups:
        n = sum(math.prod(_entries(key, config.axes[key][i]) for key in group if key in ("train_rules", "chips"))
                for i in range(len(config.axes[group[0]])))
        total *= n
        parts.append(f"{'+'.join(group)} ({n})")
    for key in ("train_rules", "chips"):
        if key not in config.axes:
            n = _entries(key, config.base.get(key, _defaults((key,))[key]) if isinstance(config.base, dict) else None)
            total *= n
            parts.append(f"{key} ({n})")
    if total > MAX_POINTS:
        raise SweepError(f"{where}: {total} points ({short_message(' x '.join(parts), 200)}), over the limit "
                         f"of {MAX_POINTS} points per sweep; narrow the axes or split the sweep")
    check_memory(total * POINT_BYTES, f"{where}: {total} points", f"{size_text(POINT_BYTES)} each to plan and track")
    return total


def _entries(key: str, value: Any) -> int:
    """How many points one value of ``train_rules`` or ``chips`` makes (a list: its length; ``all``: every chip)."""
    if key == "chips" and value == "all":
        from hwsim import chips

        return len(chips.names())
    if isinstance(value, list):
        return max(len(value), 1)
    return 1


def short_message(err: object, limit: int = 300) -> str:
    """An error message on one line, bounded (a validation message may quote megabytes of input)."""
    from hwsim.errors import one_line

    return one_line(str(err), limit)


def _groups(config: SweepConfig, where: str) -> list[list[str]]:
    """Axis names in groups that vary together (a lone axis is a group of one), in the order written."""
    names = list(config.axes)
    if config.zip is True:
        zipped = [names] if names else []
    elif config.zip is False:
        zipped = []
    else:
        zipped = config.zip
    grouped: dict[str, list[str]] = {}
    for group in zipped:
        for name in group:
            if name not in config.axes:
                raise SweepError(f"{where}: zip: {short(name, 60)} is not one of the axes "
                                 f"({', '.join(names) or 'none'})")
            if name in grouped:
                raise SweepError(f"{where}: zip: {short(name, 60)} is in two groups")
            grouped[name] = group
        lengths = {name: len(config.axes[name]) for name in group}
        if len(set(lengths.values())) > 1:
            raise SweepError(f"{where}: zip: axes zipped together need lists of one length, got "
                             + ", ".join(f"{k} ({n} values)" for k, n in lengths.items()))
    groups: list[list[str]] = []
    for name in names:
        group = grouped.get(name, [name])
        if all(g is not group for g in groups):
            groups.append(group)
    return groups


def _defaults(keys: tuple[str, ...]) -> dict[str, Any]:
    from hwsim.study.pipeline import StudyConfig

    default = StudyConfig().model_dump()
    return {k: default[k] for k in keys}


def _digest(data: dict) -> str:
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]
