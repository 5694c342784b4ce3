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


class WriteError(Failure):
    """An output file could not be written (disk full, quota, I/O error); the message names the file. The
    temporary file is removed and the file at that name, if any, is left as it was (exit code 1)."""


class TooLarge(UsageError):
    """An input (file, configuration, argument) would need more memory than the limit allows; the message names the
    input, the bytes it would take and the limit (exit code 2, raised before anything large is allocated)."""


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
    """``text`` on one line (newlines and tabs as spaces, other control characters and terminal escape codes shown
    as ``\\xNN``), cut to ``limit`` characters with ``...``."""
    text = printable(" ".join(str(text)[: limit * 2 + 16].split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x2028, 0x2029, 0x200E, 0x200F, *range(0x202A, 0x202F),
                                            *range(0x2066, 0x206A), *range(0xD800, 0xE000))})
# ^ line separators, bidirectional overrides, lone surrogates (print would raise on them)


def printable(text: str, limit: int | None = None) -> str:
    """``text`` safe to print on a terminal: control characters (C0, DEL, C1 -- so terminal escape sequences
    lose their ESC and CSI), Unicode line separators and bidirectional overrides shown as ``\\xNN``/``\\uNNNN``;
    with ``limit``, cut to that many characters with ``...``. For names read from files (layer names, chip
    names) before they reach the screen."""
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[: limit * 2]
    text = text.translate(_CONTROL)
    return text if limit is None or len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def size_text(nbytes: int | float) -> str:
    """Bytes in words for messages: ``512 bytes``, ``3.2 MiB``, ``40.0 GiB``."""
    nbytes = float(nbytes)
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(nbytes) >= scale:
            return f"{nbytes / scale:.1f} {unit}" if nbytes / scale < 1e6 else f"{nbytes:.3g} bytes"
    return f"{int(nbytes)} bytes"


__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "Failure", "FeasibilityError", "InputError",
           "LearningError", "NetworkError", "OutputBusy", "StudyError", "SweepError", "TooLarge", "UsageError",
           "WriteError", "one_line", "printable", "short", "size_text"]
