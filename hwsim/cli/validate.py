"""Checks of command-line values, run before any work: argparse types, a one-line parser, size limits.

Limits (each error names the argument and the limit):

* ``MAX_RUN_ELEMENTS`` -- T x B x (inputs + neurons of every layer) of one ``run``/``estimate``: the engine
  holds every layer's spikes (one byte each) and the input draw (four bytes each) for the whole run, so
  2**28 elements is about 1.5 GiB at most;
* ``MAX_SEED`` -- seeds are 0..2**32-1 (numpy's and torch's generators both take them);
* the memory limit (:func:`hwsim.safeio.memory_limit`: a share of the memory this process can still get, or
  ``--max-memory``) -- for the bytes of a run's arrays as for every file and configuration read.

The network spec's own limit (weights per layer) is ``hwsim.sim.network.MAX_LAYER_WEIGHTS``.
"""

from __future__ import annotations

import argparse
import math
import re
import sys

from hwsim.errors import EXIT_USAGE, UsageError, one_line

MAX_RUN_ELEMENTS = 1 << 28
MAX_SEED = 2**32 - 1


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (exit status 2), without the usage block."""

    def error(self, message: str):  # noqa: D102 -- argparse's hook
        print(f"{self.prog}: error: {one_line(message, 400)}; see {self.prog} --help", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def seed(text: str) -> int:
    """A seed: an integer in 0..2**32-1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed in 0..{MAX_SEED}, got {text[:40]!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer seed in 0..{MAX_SEED}, got {one_line(text, 40)}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {one_line(repr(text), 60)}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def probability(text: str) -> float:
    """A probability in [0, 1] (``nan`` refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {one_line(repr(text), 60)}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {value}")
    return value


def finite_positive_float(text: str) -> float:
    """A finite number > 0 (``nan``, ``inf``, 0 and negatives refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text[:40]!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text[:40]}")
    return value


MAX_LEARNING_RATE = 1e3  # beyond it SGD overflows float32 in one step: a typo, not a setting


def learning_rate(text: str) -> float:
    """A learning rate: a finite number in (0, 1000] (``1e308`` overflows the weights at the first step)."""
    value = finite_positive_float(text)
    if value > MAX_LEARNING_RATE:
        raise argparse.ArgumentTypeError(f"expected a learning rate in (0, {MAX_LEARNING_RATE:g}], got {text[:40]}")
    return value


_DEVICE = re.compile(r"^(cpu|cuda(:\d{1,3})?)$")


def device(text: str) -> str:
    """A torch device hwsim trains on: ``cpu``, ``cuda`` or ``cuda:N``."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text[:40]!r}")
    return text


RUN_BYTES_PER_ELEMENT = 6  # one byte per recorded spike, four of the input draw, one of working state


def check_run_size(network, steps: int, batch: int, source: str | None = None) -> None:
    """Refuse a run whose spike arrays would exceed ``MAX_RUN_ELEMENTS`` or the memory limit before anything is
    allocated. ``source``: the input file that sets T and B (``--input FILE``), named in the message instead of
    -T and -B."""
    from hwsim.safeio import check_memory

    per_step = math.prod(network.input_shape) + sum(math.prod(out) for _, out in network.layer_shapes())
    elements = steps * batch * per_step
    given = (f"{source}: T = {steps} steps x B = {batch} samples" if source else
             f"--timesteps/-T {steps} x --batch/-B {batch}")
    if elements > MAX_RUN_ELEMENTS:
        raise UsageError(f"{given} x {per_step} inputs and neurons = {elements} spike entries, over the limit of "
                         f"{MAX_RUN_ELEMENTS} for one run; use fewer steps, a smaller batch or several runs")
    check_memory(elements * RUN_BYTES_PER_ELEMENT, given, f"{elements} spike entries of {per_step} inputs and "
                                                          f"neurons per step")


def memory_size(text: str) -> int:
    """``--max-memory``: a size such as ``512M``, ``4G``, ``1.5GiB`` (powers of 1024)."""
    from hwsim.safeio import parse_size

    try:
        return parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
