"""Every error hwsim raises for bad input, the exit codes of the command line, and bounded one-line messages,
in one module that imports nothing heavy (so the command line can catch them without loading numba, torch or
the simulator).

Each bad-input class is a ``ValueError`` whose message names the file, field or argument that was wrong and
what was expected; the modules that raise them re-export them under their old names
(``hwsim.sim.network.NetworkError``, ``hwsim.sim.engine.InputError``, ...).

Exit codes of ``hwsim``: 0 success; 1 a failure while working (an output folder in use, a file system
error, out of memory, a verification that failed, an internal error); 2 bad input (an argument, a file or
a configuration that is invalid; nothing has been written); 130 interrupted by Ctrl-C.

Messages are one line and never echo unbounded input: values from files go through :func:`short`, which
costs O(limit) whatever the size of the value (a billion-laughs YAML expands to gigabytes under ``repr``).
"""

from __future__ import annotations

import reprlib

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_interrupt_requested = False


def on_sigint(signum=None, frame=None) -> None:
    """The command line's SIGINT handler: remember the request and raise ``KeyboardInterrupt`` where Python is
    -- unless that is inside a finalizer (a ``weakref.finalize`` callback or a ``__del__``), where Python would
    print the exception and drop it (a Ctrl-C lost, training going on); there the request waits for the next
    :func:`check_interrupt` of a long loop."""
    global _interrupt_requested
    _interrupt_requested = True
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or (code.co_name == "__call__" and code.co_filename.endswith("weakref.py")):
            return
        frame = frame.f_back
    raise KeyboardInterrupt


def check_interrupt() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed and not yet acted on (called once per batch by long
    loops)."""
    if _interrupt_requested:
        raise KeyboardInterrupt


def clear_interrupt() -> None:
    global _interrupt_requested
    _interrupt_requested = False


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
    """A command-line argument or an input file is invalid (exit code 2)."""


class Failure(RuntimeError):
    """The work could not be done or finished (exit code 1): an output in use, a child process that died."""


class OutputBusy(Failure):
    """Another process holds the lock of an output folder or checkpoint."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 40


def short(value: object, limit: int = 80) -> str:
    """A bounded ``repr`` of ``value``: at most ``limit`` characters, nested containers elided (``...``),
    in time independent of the value's size."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a value whose __repr__ fails: name its type only
        text = f"<{type(value).__name__}>"
    return one_line(text, limit)


def one_line(text: str, limit: int = 400) -> str:
    """``text`` on one line (newlines and tabs as spaces), cut to ``limit`` characters with ``...``."""
    text = " ".join(str(text)[: limit * 2 + 16].split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "Failure", "FeasibilityError", "InputError",
           "LearningError", "NetworkError", "OutputBusy", "StudyError", "SweepError", "UsageError", "one_line",
           "short"]
