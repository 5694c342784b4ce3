"""What runs on a Dask worker (or in this process with ``--serial``): the study stages of one training, of one
trained network, and of one point.

Files under ``--out`` (which must be one filesystem, at one path, for the client and every worker):

    work/train/<train key>/   Study folder of one training (``train/<rule>.pt`` and ``.network.npz``)
    work/models/<model key>/  Study folder of one trained network in hwsim (``fixed.network.npz``, extra stages);
                              its ``train`` is a link to the training's
    points/<point id>/        Study folder of one point (costs and feasibility on its chip, their figures) and its
                              ``results.json`` (written by the client from the returned results)

Every folder is a :class:`hwsim.study.pipeline.Study`, so a task that dies half way resumes from the stage files and
checkpoints its predecessor left; results travel back to the client as returned values (small dicts).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PointFailed(RuntimeError):
    """A study stage of a sweep point raised; the message names the stage and the error (one line)."""


def train_dir(out: str | Path, train_key: str) -> Path:
    return Path(out) / "work" / "train" / train_key


def model_dir(out: str | Path, model_key: str) -> Path:
    return Path(out) / "work" / "models" / model_key


def point_dir(out: str | Path, point_id: str) -> Path:
    return Path(out) / "points" / point_id


def train_task(config: dict, out: str, train_key: str) -> dict:
    """Train one rule (the study's ``train`` stage) into ``work/train/<train_key>``; its results."""
    return _stages(config, train_dir(out, train_key), ("train",))["train"]


def model_task(config: dict, out: str, train_key: str, model_key: str, extra: list[str], trained: dict) -> dict:
    """The trained network in hwsim (``simulate`` and the ``extra`` stages) in ``work/models/<model_key>``."""
    folder = model_dir(out, model_key)
    folder.mkdir(parents=True, exist_ok=True)
    _link(train_dir(out, train_key) / "train", folder / "train")
    return {"train": trained, **_stages(config, folder, ("simulate", *extra))}


def point_task(config: dict, out: str, model_key: str, point_id: str, model: dict) -> dict:
    """Costs and feasibility of one trained network on one chip (``points/<point_id>``); all results of the point
    (its network's stages included) and where and how long it ran."""
    start = time.perf_counter()
    folder = point_dir(out, point_id)
    folder.mkdir(parents=True, exist_ok=True)
    source = model_dir(out, model_key)
    _link(source / "train", folder / "train")
    _link(source / "fixed.network.npz", folder / "fixed.network.npz")
    results = {**model, **_stages(config, folder, ("costs", "feasibility"))}
    return {"results": results, "seconds": round(time.perf_counter() - start, 2), "worker": _worker()}


def _stages(config: dict, folder: Path, stages: tuple[str, ...]) -> dict:
    from hwsim.study.pipeline import Study, StudyConfig

    with one_thread():
        try:
            study = Study(StudyConfig.model_validate(config), folder, progress=False, log=lambda *_: None)
        except Exception as err:
            raise PointFailed(f"study set-up: {type(err).__name__}: {' '.join(str(err).split())}") from None
        done: dict = {}
        for stage in stages:  # one at a time, so that a failure names its stage
            try:
                done.update(study.run((stage,)))
            except Exception as err:
                text = " ".join(str(err).split()) or type(err).__name__
                raise PointFailed(f"stage {stage}: {type(err).__name__}: {text}") from None
        return done


@contextmanager
def one_thread() -> Iterator[None]:
    """torch and numba on one thread while a stage runs (a worker runs one task per thread, so more would
    oversubscribe the cores; one thread also makes the numbers independent of the machine's core count)."""
    import numba
    import torch

    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])


def _link(target: Path, link: Path) -> None:
    """``link`` -> ``target`` as a relative symbolic link (a copy where the filesystem has none)."""
    if link.exists() or link.is_symlink():
        return
    try:
        os.symlink(os.path.relpath(target, link.parent), link)
    except FileExistsError:
        pass
    except OSError:
        if target.is_dir():
            shutil.copytree(target, link, dirs_exist_ok=True)
        else:
            shutil.copyfile(target, link)


def _worker() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"
