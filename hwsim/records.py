"""One serialisation for every result record: JSON on stdout, ``results.json``, Parquet rows and reports.

Records are dataclasses (or objects with ``to_dict()``) whose field names carry their unit (``_j``, ``_s``,
``_bytes``, ``_percent``) and hold ``None`` for what is unknown, unpublished or not priced — never 0.
:func:`plain` turns a record tree into JSON-able Python values (numpy scalars and arrays to numbers and lists;
a non-finite float, which no record may hold, to ``None`` so that the output stays valid JSON — strict readers
refuse ``NaN``/``Infinity``); :func:`dumps` writes it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any


def plain(value: Any) -> Any:
    """``value`` as plain JSON-able Python: dicts, lists, str, int, float (finite), bool, None."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return plain(value.tolist())
    raise TypeError(f"not serialisable as JSON: {type(value).__name__}")


# Characters JSON may carry raw (``ensure_ascii=False``) that a terminal acts on: C1 controls (0x9b is a one-byte
# CSI), Unicode line separators and bidirectional overrides. C0 controls are escaped by ``json`` itself.
_TERMINAL_ESCAPES = {c: f"\\u{c:04x}" for c in (*range(0x7F, 0xA0), 0x2028, 0x2029, 0x200E, 0x200F,
                                                *range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def dumps(value: Any, indent: int | None = 2) -> str:
    """JSON text of ``value`` (see :func:`plain`); never ``NaN`` or ``Infinity``; no character a terminal would act
    on (names read from files may hold escape codes): those are written as ``\\uXXXX`` escapes, the same JSON."""
    return json.dumps(plain(value), indent=indent, allow_nan=False, ensure_ascii=False).translate(_TERMINAL_ESCAPES)


__all__ = ["dumps", "plain"]
