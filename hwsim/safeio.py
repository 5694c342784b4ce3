"""Safe file handling: atomic writes, output locks, output checks before work, bounded readers.

* :func:`atomic_path` / :func:`atomic_write` -- write to a unique temporary file in the target's folder,
  flush it to disk, then ``os.replace`` it over the target: a reader (or a rerun after a kill) sees the old
  file or the new one, never a half-written one; two writers never share a temporary name.
* :class:`OutputLock` -- an exclusive OS lock (``fcntl.flock``) on ``<target>.lock`` holding the owner's PID;
  a second writer gets :class:`~hwsim.errors.OutputBusy` "in use by PID N". The OS drops the lock when the
  process dies, however it dies, so a stale lock file never blocks a rerun.
* :func:`check_output_dir` / :func:`check_output_file` -- called before any work: the folder is created
  and a probe file written in it, so an unwritable place fails in a second, not after the first epoch.
* :func:`read_npz` -- reads only the expected members of a ``.npz`` archive, each after checking its
  header (dtype kind, shape) against a byte limit, without ever reading the others.
* :func:`load_yaml` -- UTF-8 text only, size-limited, duplicate keys refused, YAML 1.2 numbers (``5e1`` is
  50.0, not a string), and a limit on the size after alias expansion (a "billion laughs" file).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from hwsim.errors import OutputBusy, UsageError, one_line, short

MAX_TEXT_BYTES = 4 << 20  # a chip profile or study configuration
MAX_YAML_NODES = 100_000  # values after alias expansion
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


# ---------------------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------------------
def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()  # what open() would give a new file under the user's umask (0644 by default)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path`` (same suffix); on success it replaces ``path``
    atomically, on an exception it is removed. The writer may open the temporary path itself."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        with contextlib.suppress(OSError):  # mkstemp makes 0600; the result gets the user's umask like any file
            os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------------------
# Locks
# ---------------------------------------------------------------------------------------------------------
class OutputLock:
    """Exclusive lock of an output (a folder or a checkpoint file) for the life of this object.

    The lock file is ``<dir>/.hwsim.lock`` for a folder and ``<file>.lock`` beside a file; it holds the
    owner's PID. ``what`` names the output in the error (e.g. ``"--out study"``).
    """

    def __init__(self, target: str | Path, what: str | None = None, folder: bool | None = None):
        target = Path(target)
        folder = target.is_dir() if folder is None else folder
        self.path = target / ".hwsim.lock" if folder else target.with_name(target.name + ".lock")
        self.what = what or str(target)
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        import fcntl

        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise OutputBusy(f"{self.what}: in use by PID {owner} (lock {self.path}); wait for that run to end "
                                 f"or use another output") from None
            except BaseException:
                os.close(fd)
                raise
            try:  # the file we locked must still be the one at the path (an owner unlinks it on release)
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file (while still holding it, so no other process can be holding a lock on the
        removed file and believe it owns the path), then drop the lock."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # at interpreter exit: the OS drops the lock anyway
            pass


def is_file(text: str | Path) -> bool:
    """Whether ``text`` names an existing file; False (not an exception) for names the OS refuses."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long, or with a NUL byte
        return False


# ---------------------------------------------------------------------------------------------------------
# Output checks (before any work)
# ---------------------------------------------------------------------------------------------------------
def check_output_dir(path: str | Path, what: str) -> Path:
    """Create folder ``path`` if needed and prove it writable; :class:`UsageError` naming ``what`` if not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path}: exists and is not a folder")
    _check_parents(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
        _probe(path)
    except OSError as err:
        raise UsageError(f"{what} {path}: cannot write there ({err.strerror or err})") from None
    return path


def check_output_file(path: str | Path, what: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """Check that file ``path`` can be written (its folder is created and probed) and, when given, that its
    suffix is one of ``suffixes``; :class:`UsageError` naming ``what`` if not."""
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise UsageError(f"{what} {path}: expected a file name ending in {', '.join(suffixes)}")
    if path.is_dir():
        raise UsageError(f"{what} {path}: is a folder; expected a file name")
    _check_parents(path.parent, what, shown=path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _probe(path.parent)
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as err:
        raise UsageError(f"{what} {path}: cannot write there ({err.strerror or err})") from None
    return path


def _check_parents(path: Path, what: str, shown: Path | None = None) -> None:
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{what} {shown or path}: {parent} is a file, not a folder")
            return


def _probe(folder: Path) -> None:
    fd, name = tempfile.mkstemp(dir=folder, prefix=".hwsim-probe-")
    os.close(fd)
    os.unlink(name)


# ---------------------------------------------------------------------------------------------------------
# Bounded .npz reading
# ---------------------------------------------------------------------------------------------------------
class NpzError(ValueError):
    """An .npz archive is unreadable, truncated, or has a member of the wrong kind or size."""


def read_npz(path: str | Path, expected: Callable[[str], bool], max_bytes: int, kinds: str = "biuf",
             required: tuple[str, ...] = (), what: str = ".npz archive") -> dict[str, np.ndarray]:
    """The members of archive ``path`` whose names pass ``expected`` (other members are never read),
    each checked before it is read: a plain array (no pickled objects) of a dtype kind in ``kinds``
    (b bool, i/u integers, f floats: complex refused), whose data fit what is left of ``max_bytes``
    over all members read. ``what`` names the file kind in errors. Raises :class:`NpzError` with the member named."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    budget = max_bytes
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if not expected(name):
                    continue
                if name in arrays:
                    raise NpzError(f"member {short(name)} appears twice")
                with archive.open(info) as handle:
                    arrays[name] = _read_member(handle, name, budget, kinds)
                budget -= arrays[name].nbytes
    except NpzError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError) as err:
        raise NpzError(f"not a readable {what} ({one_line(type(err).__name__ + ': ' + str(err), 160)})") \
            from None
    missing = [name for name in required if name not in arrays]
    if missing:
        raise NpzError(f"missing member {missing[0]!r}")
    return arrays


def _read_member(handle, name: str, budget: int, kinds: str) -> np.ndarray:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(handle)
        if version not in ((1, 0), (2, 0)):  # 3.0 exists only for non-Latin-1 field names (refused below anyway)
            raise ValueError(f".npy format version {version[0]}.{version[1]} (expected 1.0 or 2.0)")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(handle)  # numpy's public header readers (1.x and 2.x alike)
    except (ValueError, OSError, EOFError) as err:
        raise NpzError(f"member {short(name)}: not a .npy array ({one_line(str(err), 120)})") from None
    if dtype.hasobject or dtype.kind not in kinds or dtype.fields is not None:
        raise NpzError(f"member {short(name)}: dtype {str(dtype)[:40]} not allowed "
                       f"(expected {', '.join(_KIND_NAMES[k] for k in kinds)})")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > budget:
        raise NpzError(f"member {short(name)}: {nbytes} bytes of data ({short(shape, 60)} x {dtype}) exceed the "
                       f"limit of {max(budget, 0)} bytes left")
    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    filled = 0
    while filled < nbytes:
        got = handle.readinto(view[filled:])
        if not got:
            raise NpzError(f"member {short(name)}: truncated ({filled} of {nbytes} bytes)")
        filled += got
    handle.read(1)  # reach the end of the member, where zipfile checks its CRC
    array = np.frombuffer(buffer, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


_KIND_NAMES = {"b": "bool", "i": "signed integers", "u": "unsigned integers", "f": "floats"}


# ---------------------------------------------------------------------------------------------------------
# Strict YAML
# ---------------------------------------------------------------------------------------------------------
def read_text(path: str | Path, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path``; raises :class:`UsageError` for a missing, large or binary file."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise UsageError(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    if len(data) > max_bytes:
        raise UsageError(f"{path}: the {what} is larger than {max_bytes} bytes; expected a short text file")
    if b"\0" in data:
        raise UsageError(f"{path}: the {what} is a binary file; expected UTF-8 text (YAML)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{path}: the {what} is not UTF-8 text (byte {err.start}); expected YAML") from None


def load_yaml(path: str | Path, what: str) -> object:
    """Read ``path`` as strict YAML (see module docstring); :class:`UsageError` naming file and line."""
    import yaml

    text = read_text(path, what)
    try:
        data = yaml.load(text, Loader=_strict_loader())  # noqa: S506 -- a SafeLoader subclass
    except _DuplicateKey as err:
        raise UsageError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = one_line(str(getattr(err, "problem", None) or err), 160)
        raise UsageError(f"{path}: malformed YAML{line}: {problem}") from None
    except RecursionError:
        raise UsageError(f"{path}: the {what} is nested too deeply") from None
    if _expanded_size(data, {}) > MAX_YAML_NODES:
        raise UsageError(f"{path}: the {what} expands to more than {MAX_YAML_NODES} values (through aliases); "
                         f"refused")
    return data


class _DuplicateKey(ValueError):
    pass


_LOADER = None
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$"
                    r"|^\.(?:nan|NaN|NAN)$")


def _strict_loader():
    """A SafeLoader that refuses duplicate keys and reads YAML 1.2 floats (``5e1``, ``1E-3``)."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        loader.flatten_mapping(node)
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise _DuplicateKey(f"key {short(key, 60)} appears twice (lines {seen[key] + 1} and "
                                        f"{key_node.start_mark.line + 1})")
                seen[key] = key_node.start_mark.line
            except TypeError:  # an unhashable key: the safe constructor reports it
                break
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    # YAML 1.2 floats: the YAML 1.1 resolver reads 5e1 (no dot) as a string
    StrictLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    for first in list("-+.0123456789"):
        StrictLoader.yaml_implicit_resolvers.setdefault(first, [])
        StrictLoader.yaml_implicit_resolvers[first] = [
            (tag, regexp) for tag, regexp in StrictLoader.yaml_implicit_resolvers[first]
            if tag != "tag:yaml.org,2002:float"]
    StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+.0123456789"))
    _LOADER = StrictLoader
    return StrictLoader


def _expanded_size(value: object, memo: dict[int, int]) -> int:
    """Number of values in ``value`` with every alias expanded, computed once per shared object."""
    key = id(value)
    if key in memo:
        return memo[key]
    memo[key] = MAX_YAML_NODES + 1  # a cycle counts as too large
    if isinstance(value, dict):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in value.items())
    elif isinstance(value, list):
        size = 1 + sum(_expanded_size(v, memo) for v in value)
    else:
        size = 1
    memo[key] = min(size, MAX_YAML_NODES + 1)
    return memo[key]
