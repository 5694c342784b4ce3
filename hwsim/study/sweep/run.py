"""Running a sweep: the points as Dask tasks (a ``LocalCluster`` by default, or any scheduler address), or serially
in this process; every finished point written at once; the report and figures at the end.

Task graph: one ``train`` task per training key, one ``model`` task per trained network (depending on its
training), one ``point`` task per point (depending on its network). Tasks return small dicts; trained networks
stay in files under ``--out`` (see :mod:`hwsim.study.sweep.tasks`). The client alone writes ``points.parquet`` and
each ``points/<id>/results.json``, as each point finishes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hwsim.study.sweep.config import Point, SweepConfig, SweepError, expand
from hwsim.study.sweep.table import Table, make_row, write_json
from hwsim.study.sweep.tasks import PointFailed, model_task, point_dir, point_task, train_task

LOCK = ".hwsim.lock"  # hwsim.safeio.OutputLock's file in a folder
SAVED = "sweep.yaml"


@dataclass
class SweepSummary:
    """What a run did: ``points`` in the sweep, ``done_before`` (kept from an earlier run), ``ran`` now, of
    which ``failed``; ``figures`` written; ``out`` the folder."""

    points: int
    done_before: int
    ran: int
    failed: int
    figures: list[str]
    out: Path


def run_sweep(config: SweepConfig, out: str | Path, *, scheduler: str | None = None, workers: int | None = None,
              serial: bool = False, connect_timeout_s: float = 10.0, progress: bool = True,
              log: Callable[[str], None] = print) -> SweepSummary:
    """Run the points of ``config`` that ``out`` does not hold yet (see module docstring).

    ``scheduler``: address of a running Dask scheduler (``tcp://host:8786``); else a ``LocalCluster`` of
    ``workers`` processes (default: one per core), one thread each; ``serial``: no Dask, this process."""
    from hwsim.safeio import OutputLock

    out = Path(out).resolve()
    points = expand(config)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SweepError(f"{out}: cannot create the output folder ({err.strerror or err})") from None
    lock = OutputLock(out, what=f"--out {out}: another hwsim sweep", folder=True)
    lock.acquire()  # OutputBusy (exit 1) while another sweep runs on this folder; the OS drops it if that one dies
    try:
        _claim(out, config)
        table = Table(out)
        index = {p.id: p.index for p in points}
        moved = [row for pid, row in table.rows.items() if index.get(pid, row["point"]) != row["point"]]
        for row in moved:  # the same sweep with its axes written in another order numbers its points anew
            row["point"] = index[row["point_id"]]
        if moved:
            table.write()
        done = table.done()
        todo = [p for p in points if p.id not in done]
        if todo and scheduler and not serial:
            _probe(scheduler, connect_timeout_s)  # an absent scheduler is the one line said, before anything else
        log(f"sweep: {len(points)} points, {len(points) - len(todo)} done before, {len(todo)} to run "
            f"({len({p.train_key for p in todo})} trainings)")
        failed = 0
        if todo:
            from tqdm import tqdm

            bars = []

            def start() -> None:  # once the workers are up, so that the bar stays below what they print first
                bars.append(tqdm(total=len(points), initial=len(points) - len(todo), desc="sweep", unit="point",
                                 disable=not progress))

            def finish(point: Point, outcome: dict | None = None, error: str | None = None) -> None:
                nonlocal failed
                if outcome is not None:
                    write_json(point_dir(out, point.id) / "results.json",
                               {"point_id": point.id, "point": point.index, "axes": point.axes,
                                "config": point.config, **outcome["results"],
                                "run": {"seconds": outcome["seconds"], "worker": outcome["worker"]}})
                else:
                    failed += 1
                table.add(make_row(point, outcome, error))
                bars[0].update(1)

            try:
                if serial:
                    start()
                    _run_serial(todo, config, out, finish)
                else:
                    _run_dask(todo, config, out, start, finish, scheduler, workers, connect_timeout_s, log)
            finally:
                for bar in bars:
                    bar.close()
        rows = sorted(table.rows.values(), key=lambda r: r["point"])
        from hwsim.study.sweep.figures import draw_all
        from hwsim.study.sweep.report import write_report

        figures = draw_all(rows, out)
        write_report(config, rows, figures, out)
        return SweepSummary(len(points), len(points) - len(todo), len(todo), failed, figures, out)
    finally:
        lock.release()


def _claim(out: Path, config: SweepConfig) -> None:
    """Refuse a folder that holds something other than this sweep; write ``sweep.yaml`` in a new one."""
    saved = out / SAVED
    text = config.canonical()
    if saved.is_file():
        if saved.read_text() != text:
            raise SweepError(f"{out}: holds a sweep of another configuration ({saved}); use another --out, or "
                             "delete the folder to start over")
        return
    if any(p.name not in (LOCK, ".sweep.lock") for p in out.iterdir()):
        raise SweepError(f"{out}: not empty and holds no sweep ({SAVED}); use a new or empty folder for --out")
    from hwsim.safeio import atomic_write

    atomic_write(saved, text)


def _run_serial(points: list[Point], config: SweepConfig, out: Path, finish) -> None:
    cache: dict[tuple[str, str], dict | Exception] = {}

    def once(key: tuple[str, str], call):
        if key not in cache:
            try:
                cache[key] = call()
            except Exception as err:  # recorded against every point that needs it, as Dask does
                cache[key] = err
        if isinstance(cache[key], Exception):
            raise cache[key]
        return cache[key]

    where = str(out)
    for p in points:
        try:
            trained = once(("train", p.train_key), lambda p=p: train_task(p.train_config(), where, p.train_key))
            model = once(("model", p.model_key), lambda p=p, trained=trained: model_task(
                p.model_config(), where, p.train_key, p.model_key, list(config.extra_stages), trained))
            outcome = point_task(p.config, where, p.model_key, p.id, model)
        except Exception as err:
            finish(p, error=_message(err))
            continue
        finish(p, outcome)


def _run_dask(points: list[Point], config: SweepConfig, out: Path, start, finish, scheduler: str | None,
              workers: int | None, connect_timeout_s: float, log) -> None:
    from distributed import Client, LocalCluster

    cluster = None
    with _quiet_dask():
        if scheduler:
            client = Client(scheduler, timeout=f"{connect_timeout_s}s", set_as_default=False)
        else:
            import dask

            n = workers or os.cpu_count() or 1
            # Lava (the export stage) starts processes of its own, which a daemonic worker may not
            with dask.config.set({"distributed.worker.daemon": "export" not in config.extra_stages}), \
                    _workers_ignore_ctrl_c():
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                       silence_logs=logging.CRITICAL,
                                       env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
            try:
                client = Client(cluster, set_as_default=False)
            except BaseException:
                cluster.close()
                raise
        _drive(client, cluster, points, config, out, start, finish, log)


def _drive(client, cluster, points: list[Point], config: SweepConfig, out: Path, start, finish, log) -> None:
    """Submit the task graph to ``client`` and hand each point to ``finish`` as it completes; the client (and the
    ``cluster`` this sweep started, if any) are closed however this ends -- Ctrl-C included."""
    from distributed import as_completed

    try:
        workers_now = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        log(f"sweep: Dask scheduler {client.scheduler.address} with {workers_now} workers; dashboard: "
            f"{client.dashboard_link}")
        start()
        # keys name the output folder too: two sweeps on one cluster never share a task
        token = hashlib.sha1(f"{out}\n{config.canonical()}".encode()).hexdigest()[:8]
        where, retries = str(out), config.retries
        trains, models, futures = {}, {}, {}
        for p in points:
            if p.train_key not in trains:
                trains[p.train_key] = client.submit(train_task, p.train_config(), where, p.train_key,
                                                    key=f"hwsim-train-{p.train_key}-{token}", retries=retries)
            if p.model_key not in models:
                models[p.model_key] = client.submit(model_task, p.model_config(), where, p.train_key, p.model_key,
                                                    list(config.extra_stages), trains[p.train_key],
                                                    key=f"hwsim-model-{p.model_key}-{token}", retries=retries)
            futures[client.submit(point_task, p.config, where, p.model_key, p.id, models[p.model_key],
                                  key=f"hwsim-point-{p.id}-{token}", retries=retries)] = p
        for future in as_completed(list(futures), loop=client.loop):
            point = futures.pop(future)
            if future.status == "finished":
                finish(point, future.result())
            else:
                try:
                    error = future.exception()
                except Exception as err:  # a cancelled future raises instead of returning its error
                    error = err
                finish(point, error=_message(error))
            future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


TRACKER_WARNING = "ignore::UserWarning:multiprocessing.resource_tracker"


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start the LocalCluster's worker processes with SIGINT ignored (they inherit it): a Ctrl-C in the terminal
    reaches every process of the group, and only this one should act on it -- by closing the cluster, whose
    nannies then stop the workers quietly -- instead of each worker printing its own traceback. The processes
    started meanwhile (workers, multiprocessing's resource tracker) also inherit a warning filter: the tracker
    otherwise prints a warning when it cleans up after workers stopped mid-task. Both restored afterwards."""
    before = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [before, TRACKER_WARNING]))
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        yield
    finally:  # (a Ctrl-C during the few seconds the workers start is ignored: the price of quiet workers)
        if main:
            signal.signal(signal.SIGINT, previous)
        if before is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = before


@contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's own loggers (scheduler, nannies, comms of this process) at CRITICAL while the sweep runs: a closed
    connection or a worker stopped by Ctrl-C is normal here, and the command's output is its own lines; each
    point's error is kept in the table. Restored afterwards."""
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _probe(address: str, timeout_s: float) -> None:
    """Ask ``address`` who it is, within ``timeout_s``; a clear error unless a Dask scheduler answers. (Before the
    Client: a Client that fails to connect lingers and times out again when collected.)"""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    async def identity() -> dict:
        from distributed.comm import connect

        comm = await connect(address, timeout=timeout_s)
        try:
            await asyncio.wait_for(comm.write({"op": "identity"}), timeout_s)
            return await asyncio.wait_for(comm.read(), timeout_s)
        finally:
            comm.abort()

    with ThreadPoolExecutor(1) as pool:  # its own event loop: works under a running one (Jupyter) too
        try:
            reply = pool.submit(asyncio.run, identity()).result(timeout=3 * timeout_s + 5)
        except (OSError, TimeoutError, ValueError) as err:  # refused, unreachable, timed out, malformed address
            text = " ".join(str(err).split()) or type(err).__name__
            raise SweepError(f"--scheduler {address}: no Dask scheduler answered within {timeout_s:g} s ({text})"
                             ) from None
        except Exception:  # something answered, in another protocol
            raise SweepError(f"--scheduler {address}: something answered, but not a Dask scheduler") from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise SweepError(f"--scheduler {address}: answered, but not as a Dask scheduler ({str(reply)[:80]})")


def _message(err: BaseException | None) -> str:
    if err is None:
        return "cancelled"
    if isinstance(err, PointFailed):
        return str(err)
    return f"{type(err).__name__}: {' '.join(str(err).split())}"
