"""Timing two set-ups of the same work side by side: run them alternately, keep each one's best.

On a machine shared with other work (a cloud VM's second core comes and goes), one fixed handful of runs
can land entirely in a busy minute. Alternating the two set-ups makes noise hit both alike, and running
for a minimum wall time gives both the chance to meet a quiet moment, so the ratio of the two best times
measures the code, not the minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def alternate_best(runs: tuple[Callable[[], object], Callable[[], object]], min_pairs: int, min_seconds: float,
                   setups: tuple[Callable[[], object] | None, Callable[[], object] | None] = (None, None),
                   max_pairs: int = 200) -> tuple[tuple[float, float], tuple[float, float]]:
    """Best ``(wall, process CPU)`` seconds of each of ``runs``, run alternately (``setups[k]`` untimed before
    each run of ``runs[k]``) for at least ``min_pairs`` pairs and ``min_seconds`` of wall time (at most
    ``max_pairs`` pairs)."""
    one, two = alternate_best_many(runs, min_pairs, min_seconds, setups, max_pairs)
    return one, two


def alternate_best_many(runs: tuple[Callable[[], object], ...], min_rounds: int, min_seconds: float,
                        setups: tuple[Callable[[], object] | None, ...] | None = None,
                        max_rounds: int = 200) -> tuple[tuple[float, float], ...]:
    """:func:`alternate_best` for any number of set-ups: each round runs every one of ``runs`` in turn."""
    setups = setups if setups is not None else (None,) * len(runs)
    best = [[float("inf"), float("inf")] for _ in runs]
    started = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - started < min_seconds):
        for k, run in enumerate(runs):
            if setups[k] is not None:
                setups[k]()
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            best[k][0] = min(best[k][0], time.perf_counter() - wall)
            best[k][1] = min(best[k][1], time.process_time() - cpu)
        rounds += 1
    return tuple((wall, cpu) for wall, cpu in best)


def best_within(run: Callable[[], object], min_runs: int, min_seconds: float,
                max_runs: int = 200) -> tuple[float, float]:
    """Best ``(wall, process CPU)`` seconds of ``run`` over at least ``min_runs`` runs and ``min_seconds``
    of wall time (at most ``max_runs``): the same chance of a quiet moment as :func:`alternate_best` gives."""
    wall_best = cpu_best = float("inf")
    started = time.perf_counter()
    runs = 0
    while runs < max_runs and (runs < min_runs or time.perf_counter() - started < min_seconds):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        wall_best = min(wall_best, time.perf_counter() - wall)
        cpu_best = min(cpu_best, time.process_time() - cpu)
        runs += 1
    return wall_best, cpu_best


class StealMeter:
    """Share of this machine's CPU time the hypervisor gave to other guests ("steal" in ``/proc/stat``) while
    the meter ran: a run measured while it was high measured the neighbours, not the code. ``None`` where the
    kernel does not report it."""

    def __init__(self) -> None:
        self.fraction: float | None = None
        self._start: list[int] | None = None

    @staticmethod
    def _read() -> list[int] | None:
        try:
            with open("/proc/stat") as stat:
                fields = stat.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu" or len(fields) < 9:
            return None
        return [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal

    def __enter__(self) -> StealMeter:
        self._start = self._read()
        return self

    def __exit__(self, *exc) -> None:
        end = self._read()
        if self._start is not None and end is not None:
            delta = [b - a for a, b in zip(self._start, end)]
            self.fraction = delta[7] / sum(delta) if sum(delta) > 0 else 0.0
