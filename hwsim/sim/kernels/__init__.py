"""Numba kernels: event-driven synapses, LIF updates (float32 and Loihi fixed point), layer loops.

Every kernel is a plain function over explicit arrays (no Python objects inside the loops), compiled on
first use into numba's on-disk cache. Numba keys a cached function on its own file only, so a kernel that
inlines a function from another file would keep running stale code after that file changed. To rule that
out, each kernel package compiles into a directory named after a hash of every source its kernels can inline
(:func:`use_cache_for`): ``hwsim/sim/kernels`` for the simulation kernels, ``hwsim/sim/kernels`` and
``hwsim/learning/kernels`` for the learning kernels, so an edit of a learning kernel leaves the simulation
kernels' cache valid and any edit gives the affected kernels a fresh one. ``NUMBA_CACHE_DIR``, when set, is
respected instead. The cache is under ``$XDG_CACHE_HOME`` (``~/.cache``); when that is not writable, under
a folder of the temporary directory that belongs to this user with mode 0700 (checked, never followed through
a symlink), else a fresh ``mkdtemp`` folder.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

import numba

import hwsim.sim.threads


def use_cache_for(*folders: str) -> None:
    """Compile the numba kernels defined from now on into the cache directory keyed by the sources of
    ``folders`` (paths under ``hwsim/``): call it at the top of a kernel package, before its kernels are defined
    (numba fixes a function's cache directory when it is decorated). No-op when ``NUMBA_CACHE_DIR`` is set."""
    if not os.environ.get("NUMBA_CACHE_DIR"):
        numba.config.CACHE_DIR = str(_kernel_cache_dir(folders))


def _kernel_cache_dir(folders: tuple[str, ...]) -> Path:
    package = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for folder in folders:
        for source in sorted((package / folder).glob("**/*.py")):
            digest.update(source.read_bytes())
    name = digest.hexdigest()[:16]
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hwsim" / "numba"
    try:
        (home / name).mkdir(parents=True, exist_ok=True)
        if os.access(home / name, os.W_OK | os.X_OK):
            return home / name
    except OSError:  # a read-only home: fall back to a private temporary folder
        pass
    private = _private_dir(Path(tempfile.gettempdir()) / f"hwsim-numba-{os.getuid()}")
    if private is None:
        return Path(tempfile.mkdtemp(prefix="hwsim-numba-"))  # mode 0700, fresh: nothing to trust or reuse
    (private / name).mkdir(mode=0o700, exist_ok=True)
    return private / name


def _private_dir(path: Path) -> Path | None:
    """``path`` as a folder only this user can write (created 0700), or None if that cannot be ensured.

    numba loads its cache index with pickle, so a folder another local user could write into (pre-created
    under the shared temporary folder, or a symlink to one) would let them run code in this process.
    """
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None  # a symlink, a file, someone else's folder, or writable by others: not ours to trust
    if info.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError:
            return None
    return path


use_cache_for("sim/kernels")
hwsim.sim.threads.apply_to_numba()  # the count chosen at start-up (--threads), now that numba is loaded
