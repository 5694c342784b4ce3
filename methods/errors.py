"""The errors of the torch training side, in a module that imports nothing (so the command line and the
simulator can catch them without loading torch). ``methods.rule`` and ``methods.data`` re-export them."""

from __future__ import annotations


class RuleError(ValueError):
    """A rule option that cannot work (K > T, a block size that does not divide the network, ...)."""


class DataError(ValueError):
    """A dataset name, file or option is wrong; the message names it and what was expected."""


__all__ = ["DataError", "RuleError"]
