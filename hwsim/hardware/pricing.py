"""The assumptions a price depends on, as one record, and pricing a run on several chips with them.

Three assumptions can reorder chips (docs/cost_model.md): the **time base** (a compute-bound step, or the chip's
real-time tick, which charges static power for the whole tick), the **placement** (the fewest cores, ``packed``;
``spread`` over the chip; at most N neurons per core) and the **static basis** (whole chip, cores in use, none).
:class:`Pricing` carries them with the chip's own defaults where not given; every estimate records the ones it
used, and :func:`price_run` is what ``hwsim estimate`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.chips.schema import Chip
from hwsim.hardware.cost import STATIC_MODES, CostError, compare_assumptions, estimate
from hwsim.hardware.mapping import Mapping, map_network, parse_placement
from hwsim.sim.counts import Counts
from hwsim.sim.network import Network

TIME_BASES = ("compute", "tick")


@dataclass(frozen=True)
class Pricing:
    """``static``: one of ``STATIC_MODES``; ``time_base``: ``compute`` or ``tick`` (None: each chip's profile
    default); ``tick_us``: the real-time tick in µs (None: the profile's; giving it implies ``tick``);
    ``placement``: ``packed`` (None), ``spread``, ``N`` or ``N+input`` neurons per core."""

    static: str = "whole-chip"
    time_base: str | None = None
    tick_us: float | None = None
    placement: str | None = None

    def __post_init__(self) -> None:
        if self.static not in STATIC_MODES:
            raise CostError(f"--static: expected one of {', '.join(STATIC_MODES)}, got {str(self.static)[:40]!r}")
        if self.time_base is not None and self.time_base not in TIME_BASES:
            raise CostError(f"--time-base: expected compute or tick, got {str(self.time_base)[:40]!r}")
        if self.tick_us is not None and not (0 < self.tick_us <= 1e7):
            raise CostError(f"--tick-us: expected a tick in (0, 1e7] µs, got {self.tick_us!r}")

    def place(self, network: Network, chip: Chip, counts: Counts | None = None) -> Mapping:
        """``network`` on ``chip`` with this placement (``mapping.placement`` names it)."""
        per_core, input_cores, label = parse_placement(self.placement, network, chip)
        mapping = map_network(network, chip, counts, neurons_per_core=per_core, input_cores=input_cores)
        mapping.placement = label
        return mapping

    def estimate(self, network: Network, counts: Counts, chip: Chip, mapping: Mapping | None = None):
        """:func:`hwsim.hardware.cost.estimate` under these assumptions (the mapping made here when not given)."""
        mapping = mapping or self.place(network, chip, counts)
        return estimate(network, counts, chip, mapping, static=self.static, time_base=self.time_base,
                        tick_us=self.tick_us)

    def text(self) -> str:
        """``static power: whole-chip; time base: per chip; placement: packed`` — as tables print it."""
        base = self.time_base or "each chip's default"
        if self.tick_us is not None:
            base = f"tick of {self.tick_us:g} µs"
        return f"static power: {self.static}; time base: {base}; placement: {self.placement or 'packed'}"


def price_run(network: Network, counts: Counts, chips: list[Chip], pricing: Pricing | None = None) -> list[dict]:
    """One cost record per chip (as ``to_dict()``, with the chip's ``mapping``), under ``pricing``."""
    pricing = pricing or Pricing()
    found = []
    for chip in chips:
        mapping = pricing.place(network, chip, counts)
        report = pricing.estimate(network, counts, chip, mapping).to_dict()
        report["mapping"] = mapping.to_dict(chip)
        found.append(report)
    return found


def reorderings(network: Network, counts: Counts, chips: list[Chip], pricing: Pricing | None = None) -> list[str]:
    """Sentences naming each assumption whose alternative would reorder two of ``chips`` by energy (empty when
    no alternative reorders them, or for one chip)."""
    if len(chips) < 2:
        return []
    pricing = pricing or Pricing()
    flips = compare_assumptions(network, counts, chips, static=pricing.static)
    return [f"{label}: {sentence}" for label, sentences in flips.items() for sentence in sentences]


__all__ = ["TIME_BASES", "Pricing", "price_run", "reorderings"]
