"""The one Lava compatibility shim: lava-nc 0.10.0 on Python 3.11.

Python 3.11's ``dataclasses`` refuses a field default whose class is unhashable. Lava's
``lava/magma/compiler/var_model.py`` declares fields such as ``x: ByteEncoder = ByteEncoder()`` where
``ByteEncoder`` is a plain (eq=True, so unhashable) dataclass. On Python 3.10 those defaults were accepted
and shared. The shim makes ``ByteEncoder`` hashable (``unsafe_hash=True``) while that one module is first
imported, which restores exactly the 3.10 behaviour; nothing else in Lava is touched.

A second, Python-version-independent quirk is handled in the same place: Lava's message infrastructure
calls ``multiprocessing.set_start_method('fork')`` when it is imported, which raises if anything (tqdm's
lock, for one) has already fixed the start method. It is imported once here with that call forced, so
the start method is 'fork' as Lava requires (the Linux default anyway).

Every hwsim module that needs Lava calls :func:`import_lava` first.
"""

from __future__ import annotations

import dataclasses
import sys

_VAR_MODEL = "lava.magma.compiler.var_model"
_MESSAGING = "lava.magma.runtime.message_infrastructure.multiprocessing"


def _install() -> None:
    if _VAR_MODEL in sys.modules:
        return
    original = dataclasses.dataclass

    def dataclass(cls=None, /, **kwargs):
        def wrap(c):
            if c.__module__ == _VAR_MODEL and c.__name__ == "ByteEncoder":
                kwargs["unsafe_hash"] = True
            return original(c, **kwargs)

        return wrap if cls is None else wrap(cls)

    dataclasses.dataclass = dataclass
    try:
        __import__(_VAR_MODEL)
    finally:
        dataclasses.dataclass = original


def _import_messaging() -> None:
    if _MESSAGING in sys.modules:
        return
    import multiprocessing

    original = multiprocessing.set_start_method
    multiprocessing.set_start_method = lambda method, force=False: original(method, force=True)
    try:
        __import__(_MESSAGING)
    finally:
        multiprocessing.set_start_method = original


def import_lava() -> None:
    """Make Lava importable on this interpreter; raise a clear error when lava-nc is missing."""
    try:
        _install()
        _import_messaging()
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] == "lava":
            raise RuntimeError(
                "lava-nc 0.10.0 is not installed; run `make test` (or: pip install --no-deps "
                "--ignore-requires-python lava-nc==0.10.0)"
            ) from err
        raise


_OBJECT_DETECTION = "lava.lib.dl.slayer.object_detection"


def import_netx():
    """lava-dl 0.6.0's ``netx`` (installed with ``--no-deps``), returned as a module.

    ``lava.lib.dl.slayer`` imports its ``object_detection`` subpackage, which needs OpenCV and torchvision;
    netx uses none of it. An empty module stands in for that one subpackage (``sys.modules``), nothing else
    of lava-dl is touched; a real ``object_detection`` already imported is left alone.
    """
    import types

    import_lava()
    if _OBJECT_DETECTION not in sys.modules:
        stub = types.ModuleType(_OBJECT_DETECTION)
        stub.__doc__ = "hwsim stand-in: lava-dl's object detection (cv2, torchvision) is not needed by netx"
        sys.modules[_OBJECT_DETECTION] = stub
    try:
        from lava.lib.dl import netx
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("lava.lib"):
            raise RuntimeError("lava-dl 0.6.0 is not installed; run `make test` (or: pip install --no-deps "
                               "--ignore-requires-python lava-dl==0.6.0)") from err
        raise
    return netx
