"""Design-space sweeps: ``hwsim sweep --config sweep.yaml --out DIR``.

A sweep crosses (or zips) study keys into points; each point trains one rule, runs the network in hwsim and
prices it on one chip, as Dask tasks on a ``LocalCluster`` or any scheduler, sharing trainings between points.
Results land in ``DIR/points.parquet`` (one row per point, written as each finishes), ``DIR/points/<id>/results.json``,
``DIR/sweep.md`` and figures; a rerun completes only what is missing. See ``docs/sweep.md``.

Modules: :mod:`~hwsim.study.sweep.config` (the YAML and its points), :mod:`~hwsim.study.sweep.tasks` (what a
worker runs), :mod:`~hwsim.study.sweep.run` (scheduling, resuming, locking), :mod:`~hwsim.study.sweep.table`,
:mod:`~hwsim.study.sweep.figures`,
:mod:`~hwsim.study.sweep.report`. Importing this package loads neither Dask nor torch.
"""

from hwsim.study.sweep.config import Point, SweepConfig, SweepError, expand, load_sweep, parse_sweep


def run_sweep(*args, **kwargs):
    """See :func:`hwsim.study.sweep.run.run_sweep`."""
    from hwsim.study.sweep.run import run_sweep as run

    return run(*args, **kwargs)


__all__ = ["Point", "SweepConfig", "SweepError", "expand", "load_sweep", "parse_sweep", "run_sweep"]
