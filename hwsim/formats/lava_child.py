"""Run Lava in a child process that never outlives hwsim.

Lava 0.10.0 forks one worker process per process model (about 400 MB each) and they do not notice when
the process that started them dies: a SIGKILL of ``hwsim export`` used to leave them running for good.
So hwsim runs Lava in a child (``python -m hwsim.formats.lava_child``) that

* leads its own process group (``start_new_session``): every Lava worker it forks is in that group;
* holds the read end of a pipe whose only write end stays in hwsim. When hwsim ends, however it ends
  (SIGKILL included), the kernel closes the write end; a watchdog thread in the child reads end-of-file,
  removes the exchange folder and kills the whole group (``killpg(SIGKILL)``), itself and every Lava worker
  with it;
* is killed with its group by hwsim on any exception or Ctrl-C, and its group is swept after it exits.

Data go through files in a private temporary folder: the network (``net.npz``), the input (``input.npy``)
and the result (``out.npz`` or ``out.json``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from hwsim.errors import Failure, WriteError, one_line
from hwsim.formats.bounds import write_failure
from hwsim.sim.network import Network, NetworkError, load, save

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def run_isolated(task: str, network: Network, spikes: np.ndarray, label: int = 0) -> dict:
    """Run ``task`` (``"verify"``: :func:`hwsim.formats.lava.run_lava` without state probes, returns
    ``{"spikes": [(T, n_i) uint8 per layer]}``; ``"learning"``: :func:`compare_learning`, returns its dict)
    in a child process that dies with this one."""
    try:
        folder = Path(tempfile.mkdtemp(prefix="hwsim-lava-"))
    except OSError as err:
        raise write_failure(Path(tempfile.gettempdir()), err, "Lava's exchange folder was not made") from None
    read_end, write_end = os.pipe()
    proc = None
    try:
        try:
            save(network, folder / "net.npz")
            np.save(folder / "input.npy", np.asarray(spikes))
        except (OSError, WriteError) as err:  # the system's temporary folder is full
            raise write_failure(folder, err, "Lava's exchange folder was removed") from None
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
        with open(folder / "stderr.txt", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "hwsim.formats.lava_child", task, str(folder),
                                     str(read_end), str(int(label))], start_new_session=True, pass_fds=(read_end,),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
        os.close(read_end)
        read_end = -1
        code = proc.wait()
        if code == 2:
            raise NetworkError(_last_line(folder / "stderr.txt"))
        if code != 0:
            raise Failure(f"the Lava run ({task}) failed with exit status {code}: {_last_line(folder / 'stderr.txt')}")
        if task == "learning":
            return json.loads((folder / "out.json").read_text())
        with np.load(folder / "out.npz", allow_pickle=False) as out:
            return {"spikes": [out[f"layer{i}"] for i in range(len(out.files))]}
    finally:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the child (if still running) and any Lava worker left
            proc.wait()
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return one_line(lines[-1], 300) if lines else "no message"


def _watch(fd: int, folder: Path) -> None:
    """Block until the parent's end of the pipe closes, then remove the exchange folder (the parent cannot)
    and kill this process group."""
    while True:
        try:
            if not os.read(fd, 1):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    shutil.rmtree(folder, ignore_errors=True)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _main(argv: list[str]) -> int:
    task, folder, fd, label = argv[0], Path(argv[1]), int(argv[2]), int(argv[3])
    threading.Thread(target=_watch, args=(fd, folder), daemon=True).start()
    try:
        network = load(folder / "net.npz")
        spikes = np.load(folder / "input.npy", allow_pickle=False)
        if task == "verify":
            from hwsim.formats.lava import run_lava

            run = run_lava(network, spikes, probe_state=False)
            with open(folder / "out.npz", "wb") as handle:
                np.savez(handle, **{f"layer{i}": s for i, s in enumerate(run.spikes)})
        elif task == "learning":
            from hwsim.formats.lava_learning import compare_learning

            result = compare_learning(network, spikes, label).to_dict()
            (folder / "out.json").write_text(json.dumps(result))
        else:
            raise ValueError(f"unknown task {task!r}")
    except NetworkError as err:
        print(one_line(str(err), 500), file=sys.stderr)
        return 2
    except Exception as err:
        print(one_line(f"{type(err).__name__}: {err}", 500), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    code = _main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait on Lava's non-daemon threads
