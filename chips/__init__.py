"""Chip profiles: ``load(name_or_path)`` and ``names()``.

A name is the stem of a shipped ``chips/<name>.yaml``; anything ending in ``.yaml``/``.yml`` or naming an
existing file is read as a user's own profile. Every profile is validated against ``chips.schema.Chip``;
errors name the file, the field and what was expected.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from chips.schema import UNIT_SUFFIXES, Chip

CHIP_DIR = Path(__file__).resolve().parent


class ChipError(ValueError):
    """A chip profile could not be found, read or validated."""


def names() -> list[str]:
    """Names of the shipped chip profiles, sorted."""
    return sorted(p.stem for p in CHIP_DIR.glob("*.yaml"))


def load(name_or_path: str | Path) -> Chip:
    """Load a shipped profile by name, or a profile file by path."""
    text = str(name_or_path)
    path = Path(text)
    if text.endswith((".yaml", ".yml")) or path.is_file():
        return _load_file(path.resolve())
    if text not in names():
        raise ChipError(f"unknown chip {text!r}; known chips: {', '.join(names())} (or give a path to a .yaml file)")
    return _load_file(CHIP_DIR / f"{text}.yaml")


def load_all() -> list[Chip]:
    return [load(name) for name in names()]


@lru_cache(maxsize=64)
def _load_file(path: Path) -> Chip:
    if not path.is_file():
        raise ChipError(f"{path}: no such chip profile")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ChipError(f"{path}: malformed YAML{line}: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise ChipError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}")
    try:
        chip = Chip.model_validate(data)
    except ValidationError as err:
        raise ChipError(f"{path}: " + "; ".join(_describe(e) for e in err.errors())) from None
    if path.parent == CHIP_DIR and chip.name != path.stem:
        raise ChipError(f"{path}: field 'name' is {chip.name!r}, expected the file stem {path.stem!r}")
    chip._path = str(path)
    return chip


def _describe(error: dict) -> str:
    loc = [str(part) for part in error["loc"]]
    field = ".".join(loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_fields(loc[:-1])
        hint = difflib.get_close_matches(loc[-1], known, n=1)
        unit = next((f" ({UNIT_SUFFIXES[s]})" for s in sorted(UNIT_SUFFIXES, key=len, reverse=True)
                     if hint and s + "_" in hint[0] + "_"), "")
        suggestion = f"; did you mean {hint[0]!r}{unit}?" if hint else ""
        return f"field {field!r} is not a known field{suggestion} (known: {', '.join(known)})"
    if kind == "missing":
        return f"field {field!r} is missing"
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
        return message if message.startswith("field ") else f"field {field or '(top level)'!r}: {message}"
    value = error.get("input")
    if kind in ("greater_than_equal", "greater_than"):
        return f"field {field!r} must be {'>= 0' if kind == 'greater_than_equal' else '> 0'}, got {value!r}"
    if kind in ("float_type", "int_type") and isinstance(value, str):
        return (f"field {field!r} must be a plain number in the unit its name gives, got the string {value!r} "
                f"(write units in the field name, not the value)")
    return f"field {field!r}: {error['msg']} (got {value!r})"


def _known_fields(loc: list[str]) -> list[str]:
    model = Chip
    for part in loc:
        info = model.model_fields.get(part)
        if info is None:
            return []
        annotation = info.annotation
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        model = next((a for a in candidates if hasattr(a, "model_fields")), None)
        if model is None:
            return []
    return list(model.model_fields)


__all__ = ["Chip", "ChipError", "load", "load_all", "names", "CHIP_DIR"]
