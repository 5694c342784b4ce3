"""Every error hwsim raises for bad input, in one module that imports nothing (so the command line can catch
them without loading numba, torch or the simulator).

Each class is a ``ValueError`` whose message names the file, field or argument that was wrong and what was
expected; the modules that raise them re-export them under their old names (``hwsim.network.NetworkError``,
``hwsim.engine.InputError``, ...).
"""

from __future__ import annotations


class NetworkError(ValueError):
    """A network description, spec string, parameter or file is invalid; the message names what."""


class InputError(ValueError):
    """Spike input of the wrong shape, dtype, values or axis order; the message says what was expected."""


class LearningError(ValueError):
    """A rule or option the on-chip learner cannot run; the message says which and why."""


class FeasibilityError(ValueError):
    """An unknown rule or an option the feasibility analysis cannot take."""


class StudyError(ValueError):
    """An invalid study configuration or output folder; the message names the key or file."""


class SweepError(ValueError):
    """An invalid sweep configuration, output folder or scheduler; the message names the key, file or address."""


class UsageError(ValueError):
    """A command-line argument is invalid."""


__all__ = ["FeasibilityError", "InputError", "LearningError", "NetworkError", "StudyError", "SweepError",
           "UsageError"]
