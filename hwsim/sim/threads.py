"""One thread policy for the whole process: numba kernels and (when it is used) torch.

Call :func:`set_threads` once at start-up (the CLI does, from ``--threads``; default: every core this
process may run on, unless a launcher chose for it, see :func:`default_threads`). It sets numba's thread
count and, when torch is already imported, torch's intra-op threads; code that imports torch later
(training glue) calls :func:`apply_to_torch` so torch follows the same policy. This module never imports
torch itself. Results of the engine do not depend on the count.

Importing this module sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets it: idle OpenMP
threads (numba's ``omp`` threading layer, torch) then sleep instead of spinning. On a machine shared with
other jobs, spinning threads take the cores the working ones need (measured on 2 busy cores: a conv net at
batch 16 ran 2x slower on 2 threads than on 1 with spinning, as fast with sleeping); the cost on an idle
machine is a wake-up of microseconds per parallel region. It must be set before OpenMP starts, so the CLI
imports this module first.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_chosen: int | None = None


class ThreadsError(ValueError):
    """A thread count outside 1..available cores; the message names the limit."""


def available_threads() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """The default count: ``OMP_NUM_THREADS`` when a launcher set it (torchrun sets 1 per process), else the
    available cores shared among the ``LOCAL_WORLD_SIZE`` processes of one machine, else all cores."""
    limit = available_threads()
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) >= 1:
        return min(int(omp), limit)
    local = os.environ.get("LOCAL_WORLD_SIZE", "")
    if local.isdigit() and int(local) >= 1:
        return max(1, limit // int(local))
    return limit


def check_threads(threads: int | None) -> int:
    """``threads`` validated against this machine (None: :func:`default_threads`); raises
    :class:`ThreadsError`."""
    limit = available_threads()
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or int(threads) != threads or not 1 <= threads <= limit:
        raise ThreadsError(f"--threads must be an integer in 1..{limit} (the cores available here), got {threads!r}")
    return int(threads)


def set_threads(threads: int | None = None) -> int:
    """Use ``threads`` threads (None: all cores) for numba and torch, each now if it is imported, else when the
    kernels (:func:`apply_to_numba`) or training (:func:`apply_to_torch`) load it. Returns the count."""
    global _chosen
    count = check_threads(threads)
    if "numba" in sys.modules:
        count = min(count, sys.modules["numba"].config.NUMBA_NUM_THREADS)
    _chosen = count
    apply_to_numba()
    apply_to_torch()
    return count


def apply_to_numba() -> None:
    """Give numba the chosen thread count, if numba is imported and a count was chosen (no import here: a
    command that runs no kernel, such as ``hwsim chips``, never loads numba)."""
    if _chosen is None or "numba" not in sys.modules:
        return
    numba = sys.modules["numba"]
    numba.set_num_threads(min(_chosen, numba.config.NUMBA_NUM_THREADS))


def current_threads() -> int:
    """The count chosen by :func:`set_threads`, else all cores."""
    return _chosen if _chosen is not None else available_threads()


def apply_to_torch() -> None:
    """Give torch the chosen thread count, if torch is imported and a count was chosen (no import here)."""
    if _chosen is None or "torch" not in sys.modules:
        return
    torch = sys.modules["torch"]
    if torch.get_num_threads() != _chosen:
        torch.set_num_threads(_chosen)
