"""A walker over every output record: no energy, latency or power field may hold 0 for what is unknown.

A 0 joule or 0 second figure is never a real energy or time of a run that did something, so any such field equal to
0 is an unknown written as a number -- unless it sits in a breakdown (``energy_by_action_j``, ``energy_by_layer_j``,
``energy_by_core_j``, ``unpriced_counts``), where a part with zero count honestly costs 0. NaN and infinity are
refused everywhere (JSON cannot hold them; Parquet NaN is how pandas reads a None back, so Parquet rows are read
with NaN as None first).
"""

from __future__ import annotations

import math
import re

FIGURE = re.compile(r"(energy|latency|power|static|time).*(_j|_s|_uj|_ms|_us|_w|_mw|_pj)$")
BREAKDOWNS = ("energy_by_action_j", "energy_by_layer_j", "energy_by_core_j", "unpriced_counts", "by_timesteps",
              "by_rate")


def zeros_for_unknown(value, path: str = "") -> list[str]:
    """Paths of figure fields equal to 0 (or non-finite) in a record tree."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if key in BREAKDOWNS:
                continue
            if isinstance(item, (dict, list)):
                found += zeros_for_unknown(item, here)
            elif isinstance(item, float) and not math.isfinite(item):
                found.append(f"{here}={item}")
            elif isinstance(item, (int, float)) and not isinstance(item, bool) and item == 0 and FIGURE.search(key):
                found.append(f"{here}=0")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += zeros_for_unknown(item, f"{path}[{i}]")
    return found
