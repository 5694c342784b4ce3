"""Command-line arguments of the learning rules, generated from the rule registry (:mod:`hwsim.learning.registry`).

``train``, ``estimate`` and ``feasibility`` take ``--rules`` and every registered option flag the same way; a new
rule or option registered there appears here (and in ``--help``) with no edit. Option flags default to ``None``
("not given") so that a flag none of the chosen rules uses is refused rather than silently ignored.
"""

from __future__ import annotations

import argparse
import sys

from hwsim.learning import registry

DEPRECATED = {"--rule": "--rules", "--batch": "--batch-size", "--data": "--dataset"}  # -B stays short for --batch-size


class DeprecatedAlias(argparse.Action):
    """Stores the value like ``store`` and, when the old spelling was used, prints one deprecation line on
    stderr (the old spellings work for one release)."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102 -- argparse's hook
        if option_string in DEPRECATED:
            print(f"{parser.prog}: note: {option_string} is deprecated; use {DEPRECATED[option_string]}",
                  file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_rules_argument(cmd: argparse.ArgumentParser, *, required: bool = False, one: bool = False,
                       on_chip: bool = False, default: str | None = None) -> None:
    """``--rules`` (old spelling ``--rule``): rule names from the registry, comma-separated, or ``all``."""
    known = registry.names(True if on_chip else None)
    what = "a rule" if one else "comma-separated rules or 'all'"
    help_text = f"{what}: {', '.join(known)}" + (f" (default {default})" if default else "")
    cmd.add_argument("--rules", "--rule", dest="rules", required=required, default=default, metavar="RULES",
                     action=DeprecatedAlias, help=help_text)


def add_option_arguments(cmd: argparse.ArgumentParser, on_chip: bool = False) -> None:
    """One flag per registered option (``--k``, ``--window``, ``--budget-bytes``, ``--tau``, …), default None."""
    group = cmd.add_argument_group("rule options (each used only by the rules named; defaults from the papers)")
    for option in registry.OPTIONS.values():
        if on_chip and not option.on_chip:
            continue
        users = [r for r in registry.RULES if option.name in registry.options_of(r)]
        if on_chip:
            users = [r for r in users if registry.get(r).kernel is not None]
        scope = "every rule" if option.neuron or option.name in registry.COMMON else ", ".join(users)
        unit = "" if option.unit in ("1", "") else f" {option.unit}"
        choices = f" ({'|'.join(option.choices)})" if option.choices else ""
        group.add_argument(option.flag, dest=f"opt_{option.name}", default=None,
                           metavar=option.name.upper() if not option.choices else "|".join(option.choices),
                           help=f"{scope}: {option.help}{choices}; default "
                                f"{option.default if option.default is not None else option.default_text}"
                                f"{unit if option.default is not None else ''}")


def given_options(args: argparse.Namespace) -> dict[str, object]:
    """The option values written on the command line (by option name)."""
    return {name: getattr(args, f"opt_{name}", None) for name in registry.OPTIONS
            if getattr(args, f"opt_{name}", None) is not None}


def rule_options(args: argparse.Namespace, rules: list[str], timesteps: int | None = None) -> registry.RuleOptions:
    """The run's :class:`~hwsim.learning.registry.RuleOptions`: each given flag checked, one that none of
    ``rules`` uses refused, K and the TTL-BPTT window held to T (one line naming the flag otherwise)."""
    return registry.RuleOptions.build(rules, given_options(args), where="flag", timesteps=timesteps)


__all__ = ["DEPRECATED", "DeprecatedAlias", "add_option_arguments", "add_rules_argument", "given_options",
           "rule_options"]
