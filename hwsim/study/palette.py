"""One colour per category across every hwsim figure: a rule, a chip, an energy action, a verdict or a numeric
mode is drawn in the same colour wherever it appears.

Rules take the colour of their registry entry (:mod:`hwsim.learning.registry`; the Okabe-Ito
colour-blind-safe set); related chips share a hue family (the Loihi generations in
blues, the TrueNorth profiles in greens). A name not listed here gets a stable colour from its hash (the same
in every run and every figure), so a user's own chip profile is consistent too.
"""

from __future__ import annotations

import hashlib

CHIP_COLORS = {
    "loihi": "#1f5fa8",
    "loihi2": "#4a90d9",
    "loihi_sanafe": "#9cc3ec",
    "truenorth": "#2e7d32",
    "truenorth_marginal": "#81c784",
    "spinnaker2": "#c62828",
    "odin": "#f9a825",
    "reckon": "#ef6c00",
    "anp_i": "#6a1b9a",
    "seneca": "#ad1457",
    "tianjic": "#00838f",
    "generic_45nm": "#757575",
    "gpu_a100": "#212121",
}

ACTION_COLORS = {
    "sop": "#1f77b4",
    "dense_mac": "#aec7e8",
    "packet": "#ff9896",
    "neuron_update": "#ff7f0e",
    "spike_out": "#2ca02c",
    "routing": "#d62728",
    "memory": "#9467bd",
    "static": "#8c564b",
    "weight_update": "#e377c2",
    "trace_update": "#7f7f7f",
    "error_mac": "#bcbd22",
    "grad_op": "#17becf",
    "management": "#393b79",
}

VERDICT_COLORS = {"feasible": "#a6dba0", "unknown": "#d9d9d9", "infeasible": "#f4a6a6"}

MODE_COLORS = {"float": "#4c72b0", "fixed": "#dd8452"}

INPUT_COLOR = "#7f7f7f"  # input spikes in rasters

_FALLBACK = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
             "#a6cee3", "#b2df8a", "#fb9a99", "#fdbf6f", "#cab2d6", "#b15928")


def _stable(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    return _FALLBACK[int.from_bytes(digest[:4], "big") % len(_FALLBACK)]


def rule_color(name: str) -> str:
    """The colour of a learning rule (``bptt``, ``sltt``, ...): its registry entry's (``Rule.color``)."""
    from hwsim.learning import registry

    rule = registry.RULES.get(name)
    return rule.color if rule is not None else _stable("rule:" + name)


def __getattr__(name: str):
    if name == "RULE_COLORS":  # every registered rule's colour, as registered now
        from hwsim.learning import registry

        return {rule.name: rule.color for rule in registry.RULES.values()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def chip_color(name: str) -> str:
    """The colour of a chip profile, by its name (a path's stem for a user's own profile)."""
    return CHIP_COLORS.get(name, _stable("chip:" + name))


def action_color(name: str) -> str:
    """The colour of an energy action (``sop``, ``neuron_update``, ``static``, ...)."""
    return ACTION_COLORS.get(name, _stable("action:" + name))


def verdict_color(verdict: str) -> str:
    """The colour of a feasibility verdict: ``feasible``, ``unknown...`` or anything else (infeasible)."""
    if verdict == "feasible":
        return VERDICT_COLORS["feasible"]
    return VERDICT_COLORS["unknown"] if verdict.startswith("unknown") else VERDICT_COLORS["infeasible"]


def mode_color(mode: str) -> str:
    """The colour of a numeric form: ``float`` or ``fixed``."""
    return MODE_COLORS.get(mode, _stable("mode:" + mode))


__all__ = ["ACTION_COLORS", "CHIP_COLORS", "INPUT_COLOR", "MODE_COLORS", "VERDICT_COLORS",
           "action_color", "chip_color", "mode_color", "rule_color", "verdict_color"]
