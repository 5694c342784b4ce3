"""One thread policy for the whole process: numba kernels and (when it is used) torch.

Call :func:`set_threads` once at start-up (the CLI does, from ``--threads``; default: the cores this process
may run on that are actually free, unless a launcher chose for it, see :func:`default_threads`). It sets
numba's thread count and, when torch is already imported, torch's intra-op threads; code that imports torch
later (training glue) calls :func:`apply_to_torch` so torch follows the same policy. This module never imports
torch itself. Results of the engine do not depend on the count.

**Free cores.** The default takes the cores that are free: the idle time of every core in this process's
affinity over a short window (``/proc/stat``), plus the CPU time this process used in that window (its own
start-up is no competitor). The window is the process's start-up since this module was imported (the CLI
imports it first; about 0.1 s there), at least ``PROBE_MIN_S`` (the rest is waited) and at most
``PROBE_MAX_AGE_S`` (an older start is replaced by a fresh window). A core counts when at least ``FREE_SHARE``
of it is free. Where ``/proc/stat`` is unreadable the one-minute load average stands in; where that is unknown
too, all cores. The count is chosen once: a machine that gets busy later is not followed (the kernels hand out
their work items one at a time, which absorbs a slow core in part).

What it costs and saves, measured on 2 cores (``benchmarks/bench_busy.py``): with a CPU hog on one core the
default is 1 thread, so never slower than one thread; every core would have been 10 % faster on batched runs
(the thread on the free core takes more of the work items) and 3.5 % slower at batch 1 (one block of output
neurons per thread, the slowed one last); with a hog on each core, every core would have been twice as fast
(the scheduler shares a core per thread, not per process). The default leaves other jobs their cores; pass
``--threads`` to take them.

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
import time
from typing import NamedTuple

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_chosen: int | None = None
PROBE_MIN_S = 0.05  # shortest window over which the free cores are measured (s)
PROBE_MAX_AGE_S = 2.0  # a start-up window longer than this is replaced by a fresh one (s)
FREE_SHARE = 0.5  # a core counts as free when at least this share of it is (rounding the free cores)
CPU_STAT = "/proc/stat"


class CpuSample(NamedTuple):
    """CPU time counters at one moment: ``wall`` (``time.monotonic``, s), ``own`` (this process's CPU time, all its
    threads, s), and per logical CPU ``idle`` (idle + I/O wait) and ``total`` time (s); ``None`` per-CPU maps
    where ``/proc/stat`` cannot be read."""

    wall: float
    own: float
    idle: dict[int, float] | None
    total: dict[int, float] | None


def sample_cpus(path: str = CPU_STAT) -> CpuSample:
    """The counters now (see :class:`CpuSample`); per-CPU fields of ``/proc/stat`` are clock ticks: user, nice,
    system, idle, iowait, irq, softirq, steal (guest time is inside user)."""
    wall, own = time.monotonic(), time.process_time()
    try:
        with open(path) as stat:
            lines = [line.split() for line in stat if line.startswith("cpu") and line[3:4].isdigit()]
        tick = float(os.sysconf("SC_CLK_TCK"))
        idle, total = {}, {}
        for fields in lines:
            ticks = [int(v) for v in fields[1:9]]
            cpu = int(fields[0][3:])
            idle[cpu] = (ticks[3] + (ticks[4] if len(ticks) > 4 else 0)) / tick
            total[cpu] = sum(ticks) / tick
    except (OSError, ValueError, IndexError):
        return CpuSample(wall, own, None, None)
    return CpuSample(wall, own, idle or None, total or None)


def free_cores(before: CpuSample, after: CpuSample, cpus: set[int]) -> float | None:
    """Cores of ``cpus`` free for this process between two samples: each CPU's idle share of its time, summed,
    plus the cores this process itself kept busy (its CPU time / wall time); at most ``len(cpus)``. None where
    the per-CPU counters are unknown or no time passed."""
    wall = after.wall - before.wall
    if before.idle is None or after.idle is None or wall <= 0:
        return None
    idle, seen = 0.0, 0
    for cpu in cpus:
        if cpu not in before.idle or cpu not in after.idle:
            continue
        spent = after.total[cpu] - before.total[cpu]
        if spent > 0:
            idle += min(1.0, max(0.0, (after.idle[cpu] - before.idle[cpu]) / spent))
            seen += 1
        else:  # no tick elapsed on this CPU yet: unknown, count it as it was at the start (free)
            idle += 1.0
            seen += 1
    if seen == 0:
        return None
    own = max(0.0, after.own - before.own) / wall
    return min(float(len(cpus)), idle + own)


def threads_for(free: float | None, limit: int, load: float | None = None) -> int:
    """The thread count for ``free`` free cores out of ``limit`` (a core counts when ``FREE_SHARE`` of it is free);
    with ``free`` unknown, ``limit`` less the one-minute ``load`` of other processes (this one counted as one),
    else ``limit``."""
    if free is None and load is not None:
        free = limit - max(0.0, load - 1.0)
    if free is None:
        return limit
    return max(1, min(limit, int(free + 1.0 - FREE_SHARE)))


_START = sample_cpus()  # the probe window starts with the process (the CLI imports this module first)


def probe_free_cores(cpus: set[int]) -> float | None:
    """Free cores of ``cpus`` over the window since start-up (or a fresh one), see the module docstring."""
    start = _START
    if time.monotonic() - start.wall > PROBE_MAX_AGE_S:
        start = sample_cpus()
    wait = PROBE_MIN_S - (time.monotonic() - start.wall)
    if wait > 0:
        time.sleep(wait)
    return free_cores(start, sample_cpus(), cpus)


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


class ThreadsError(ValueError):
    """A thread count outside 1..available cores; the message names the limit."""


def available_threads() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where that is unknown)."""
    cpus = _affinity()
    return max(1, len(cpus)) if cpus is not None else max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """The default count: ``OMP_NUM_THREADS`` when a launcher set it (torchrun sets 1 per process), else the
    available cores shared among the ``LOCAL_WORLD_SIZE`` processes of one machine, else the available cores
    that are free (:func:`probe_free_cores`, :func:`threads_for`; all of them where nothing says how busy they
    are)."""
    limit = available_threads()
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) >= 1:
        return min(int(omp), limit)
    local = os.environ.get("LOCAL_WORLD_SIZE", "")
    if local.isdigit() and int(local) >= 1:
        return max(1, limit // int(local))
    if limit == 1:
        return 1
    cpus = _affinity()
    free = probe_free_cores(cpus) if cpus is not None else None
    return threads_for(free, limit, _load_average() if free is None else None)


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
    """Use ``threads`` threads (None: :func:`default_threads`, the free cores) for numba and torch, each now if
    it is imported, else when the kernels (:func:`apply_to_numba`) or training (:func:`apply_to_torch`) load it.
    Returns the count."""
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
    """The count chosen by :func:`set_threads`, else all available cores."""
    return _chosen if _chosen is not None else available_threads()


def apply_to_torch() -> None:
    """Give torch the chosen thread count, if torch is imported and a count was chosen (no import here)."""
    if _chosen is None or "torch" not in sys.modules:
        return
    torch = sys.modules["torch"]
    if torch.get_num_threads() != _chosen:
        torch.set_num_threads(_chosen)
