"""Numba kernels: event-driven synapses, LIF updates (float32 and Loihi fixed point), layer loops.

Every kernel is a plain function over explicit arrays (no Python objects inside the loops), compiled on
first use into numba's on-disk cache. Numba keys a cached function on its own file only, so a kernel that
inlines a function from another file would keep running stale code after that file changed. To rule that
out, the cache lives in a directory named after a hash of every kernel source file of hwsim
(``hwsim/kernels`` and ``hwsim/rules``): any edit gives a fresh cache. ``NUMBA_CACHE_DIR``, when set,
is respected instead.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numba


def _kernel_cache_dir() -> Path:
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for folder in ("kernels", "rules"):
        for source in sorted((package / folder).glob("**/*.py")):
            digest.update(source.read_bytes())
    name = digest.hexdigest()[:16]
    for base in (Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hwsim" / "numba",
                 Path(tempfile.gettempdir()) / "hwsim-numba"):
        try:
            (base / name).mkdir(parents=True, exist_ok=True)
            return base / name
        except OSError:  # a read-only home: fall back to the temporary folder
            continue
    return Path(tempfile.mkdtemp(prefix="hwsim-numba-"))


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = str(_kernel_cache_dir())
