"""Chip profiles: ``load(name_or_path)`` and ``names()``.

A name is the stem of a shipped ``chips/<name>.yaml``; anything ending in ``.yaml``/``.yml`` or naming an
existing file is read as a user's own profile. Every profile is validated against ``chips.schema.Chip``;
errors name the file, the field and what was expected.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path

from hwsim.chips.schema import UNIT_SUFFIXES, Chip
from pydantic import ValidationError

import hwsim
from hwsim.errors import short

hwsim._same_tree(__file__, "chips")  # refuse a copy of hwsim mixed from another checkout

CHIP_DIR = Path(__file__).resolve().parent


class ChipError(ValueError):
    """A chip profile could not be found, read or validated."""


def names() -> list[str]:
    """Names of the shipped chip profiles, sorted."""
    return sorted(p.stem for p in CHIP_DIR.glob("*.yaml"))


def load(name_or_path: str | Path) -> Chip:
    """Load a shipped profile by name, or a profile file by path."""
    from hwsim.safeio import is_file

    text = str(name_or_path)
    path = Path(text)
    if text.endswith((".yaml", ".yml")) or is_file(path):
        try:
            return _load_file(path.resolve())
        except OSError as err:  # a name the OS refuses (too long)
            raise ChipError(f"{short(text)}: cannot read the chip profile ({err.strerror or err})") from None
    if text not in names():
        raise ChipError(f"unknown chip {short(text)}; known chips: {', '.join(names())} "
                        f"(or give a path to a .yaml file)")
    return _load_file(CHIP_DIR / f"{text}.yaml")


def load_all() -> list[Chip]:
    return [load(name) for name in names()]


@lru_cache(maxsize=64)
def _load_file(path: Path) -> Chip:
    if not path.is_file():
        raise ChipError(f"{path}: no such chip profile")
    from hwsim.errors import UsageError
    from hwsim.safeio import load_yaml

    try:  # UTF-8 text, no duplicate keys, YAML 1.2 numbers (5e1), bounded alias expansion
        data = load_yaml(path, "chip profile")
    except UsageError as err:
        raise ChipError(str(err)) from None
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
    """One problem, in words; values are shown bounded (:func:`hwsim.errors.short`), never in full."""
    loc = [str(part)[:60] for part in error["loc"]]
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
        return f"field {field!r} must be {'>= 0' if kind == 'greater_than_equal' else '> 0'}, got {short(value)}"
    if kind == "finite_number":
        return f"field {field!r} must be a finite number, got {short(value)}"
    if kind in ("float_type", "int_type") and isinstance(value, str) and not _number(value):
        return (f"field {field!r} must be a plain number in the unit its name gives, got the string {short(value)} "
                f"(write units in the field name, not the value)")
    return f"field {field!r}: {error['msg']} (got {short(value)})"


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
