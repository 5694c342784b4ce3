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
* :func:`memory_limit` / :func:`check_memory` -- the bytes one input may make hwsim allocate: a share of the
  memory this process can still get (the machine's available memory, a cgroup's limit, ``RLIMIT_AS``), or what
  ``--max-memory`` / ``HWSIM_MAX_MEMORY`` says; checked from headers and configurations before anything large is
  allocated (:class:`~hwsim.errors.TooLarge`: one line naming the input, the size and the limit).

Every output goes through :func:`atomic_path`: written under a fresh name made with ``O_EXCL`` (never through a
link or over another file) and renamed over the target, so a symbolic link planted at the target is replaced,
never followed; the file gets the user's umask; a full disk or an I/O error is one
:class:`~hwsim.errors.WriteError` line naming the file, with the temporary file removed.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from hwsim.errors import OutputBusy, TooLarge, UsageError, WriteError, one_line, printable, short, size_text

MAX_TEXT_BYTES = 4 << 20  # a chip profile or study configuration
MAX_YAML_NODES = 100_000  # values after alias expansion
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


# ---------------------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------------------
def _read_umask() -> int:
    """The process's umask: from ``/proc/self/status`` (Linux; no change of the process-wide value, so safe
    beside other threads), else read by setting and restoring it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()  # the mode at import (kept for callers); files get the umask of their write time


def file_mode() -> int:
    """What ``open()`` gives a new file under the user's current umask (0644 by default)."""
    return 0o666 & ~_read_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path`` (same suffix); on success it replaces ``path``
    atomically, on an exception it is removed. The writer may open the temporary path itself.

    The temporary name is created with ``O_EXCL`` (a link or file planted there makes a new name, never a
    write through it) and renamed over ``path``: a symbolic link at ``path`` is replaced, its target never
    written. An ``OSError`` while writing (disk full, quota, I/O error) becomes :class:`WriteError` naming
    ``path``; the temporary file is removed and ``path`` keeps its old content."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:80]}.", suffix=f".tmp{path.suffix[:16]}")
    except OSError as err:
        raise _write_error(path, err) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        with contextlib.suppress(OSError):  # mkstemp makes 0600; the result gets the user's umask like any file
            os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise _write_error(path, err) from None
        raise


def _write_error(path: Path, err: OSError) -> WriteError:
    """One line naming the file that could not be written and why (the OS's words)."""
    reason = err.strerror or type(err).__name__
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason += " (free some space, or write elsewhere)"
    other = f"; at {printable(str(err.filename), 200)}" if err.filename and str(err.filename) != str(path) and \
        not Path(str(err.filename)).name.startswith(f".{path.stem[:80]}.") else ""
    return WriteError(f"{printable(str(path), 300)}: cannot write: {reason}{other}; the file was left as it was "
                      f"(no partial file, no temporary file)")


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _fsync(path: Path) -> None:
    """Flush ``path`` to disk; a delayed write error (``EIO``, ``ENOSPC`` on network and thin-provisioned file
    systems) is raised here, before the rename, rather than lost. File systems without fsync are fine."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EROFS, errno.EBADF):
            raise
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------------
# Memory limit (sizes checked before allocation)
# ---------------------------------------------------------------------------------------------------------
MEMORY_SHARE = 0.8  # of the memory this process can still get: what one input may make hwsim allocate
MEMORY_ENV = "HWSIM_MAX_MEMORY"  # the limit for this process and its workers (what --max-memory sets)
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([kmgtp]?)(i?b?)\s*$", re.IGNORECASE | re.ASCII)
_limit_override: int | None = None


def parse_size(text: str) -> int:
    """Bytes from ``512``, ``300M``, ``4G``, ``1.5GiB``, ``2T`` (K, M, G, T, P are powers of 1024); ValueError naming
    the text otherwise."""
    match = _SIZE.match(str(text)) if len(str(text)) <= 40 else None
    if match is None:
        raise ValueError(f"expected a size such as 512M, 4G or 1.5GiB, got {short(text, 40)}")
    value = float(match.group(1)) * 1024 ** ("kmgtp".find(match.group(2).lower()) + 1) if match.group(2) else \
        float(match.group(1))
    if not 1 <= value < 2**63:
        raise ValueError(f"expected a size of at least 1 byte, got {short(text, 40)}")
    return int(value)


def set_memory_limit(nbytes: int | None) -> None:
    """Set (``None``: clear) the limit of :func:`memory_limit` for this process; ``--max-memory`` does this."""
    global _limit_override
    _limit_override = None if nbytes is None else int(nbytes)


def available_memory() -> int | None:
    """Bytes this process can still allocate, as far as the OS says: the least of the machine's available memory
    (``MemAvailable``), the room left under a cgroup's memory limit (containers, batch schedulers) and the room
    left under ``RLIMIT_AS``; None when none of them can be read."""
    found: list[int] = []
    meminfo = _read_keys("/proc/meminfo")
    if "MemAvailable" in meminfo:
        found.append(meminfo["MemAvailable"] * 1024)
    elif hasattr(os, "sysconf"):
        with contextlib.suppress(ValueError, OSError, AttributeError):
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:
            found.append(max(limit - usage, 0))
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            used = _read_keys("/proc/self/status").get("VmSize")
            found.append(max(soft - (used or 0) * 1024, 0))
    return min(found) if found else None


def memory_limit() -> tuple[int | None, str]:
    """``(bytes, where the figure comes from)``: what one input may make hwsim allocate -- ``--max-memory`` (or
    ``HWSIM_MAX_MEMORY``) when given, else :data:`MEMORY_SHARE` of :func:`available_memory`; ``(None, ...)``
    when nothing is known (no check then beyond the fixed per-file limits)."""
    if _limit_override is not None:
        return _limit_override, "--max-memory"
    text = os.environ.get(MEMORY_ENV)
    if text:
        try:
            return parse_size(text), MEMORY_ENV
        except ValueError as err:
            raise UsageError(f"{MEMORY_ENV}: {err}") from None
    free = available_memory()
    if free is None:
        return None, "unknown"
    return int(free * MEMORY_SHARE), f"{MEMORY_SHARE:.0%} of the {size_text(free)} this process can still get"


def check_memory(nbytes: int, what: str, detail: str = "") -> None:
    """Refuse (:class:`~hwsim.errors.TooLarge`, one line) an input that would make hwsim allocate ``nbytes``
    when that is over :func:`memory_limit`. ``what`` names the input (``--net big.npz``), ``detail`` says what
    the bytes are (``12 weight arrays``). Call it before allocating."""
    limit, source = memory_limit()
    if limit is None or nbytes <= limit:
        return
    detail = f" ({detail})" if detail else ""
    raise TooLarge(f"{printable(what, 200)}: would take {size_text(nbytes)} of memory{detail}, over the limit of "
                   f"{size_text(limit)} ({source}); use a smaller input, or give --max-memory SIZE if the machine "
                   f"has the memory")


MAX_HDF5_OBJECTS = 100_000  # groups and datasets walked in one HDF5 file (a NIR or netx graph)


def _read_keys(path: str) -> dict[str, int]:
    """``Key: value kB`` lines of a /proc file as integers (empty when unreadable)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        with open(path) as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                fields = rest.split()
                if fields and fields[0].isdigit():
                    out[key] = int(fields[0])
    return out


def _read_int(path: str) -> int | None:
    try:
        with open(path) as handle:
            text = handle.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


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
        while True:
            try:  # never through a link planted at the lock's name (it would truncate the link's target)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise UsageError(f"{self.what}: its lock {self.path} is a symbolic link; refusing to write "
                                     f"through it (remove the link)") from None
                if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
                    raise _write_error(self.path, err) from None
                raise
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
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as err:  # a full disk: one line naming the lock, and no lock held
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(fd)
            raise _write_error(self.path, err) from None
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
    if path.is_symlink():
        raise UsageError(f"{what} {printable(str(path), 300)}: is a symbolic link; hwsim never writes through a link "
                         f"it did not make (remove it, or give the link's target)")
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


def npz_headers(path: str | Path, expected: Callable[[str], bool], kinds: str = "biuf",
                what: str = ".npz archive") -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{member: (shape, dtype)}`` of the members of archive ``path`` whose names pass ``expected``, read from
    their ``.npy`` headers alone (a few hundred bytes each; no array data is read or decompressed), each checked
    to be a plain array of a dtype kind in ``kinds``. Sizes can so be checked before anything is allocated.
    Raises :class:`NpzError` naming the member."""
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(Path(path)) as archive:
            for info in archive.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if not expected(name):
                    continue
                if name in headers:
                    raise NpzError(f"member {short(name)} appears twice")
                with archive.open(info) as handle:
                    shape, _, dtype = _member_header(handle, name, kinds)
                headers[name] = (shape, dtype)
    except NpzError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError) as err:
        raise NpzError(f"not a readable {what} ({one_line(type(err).__name__ + ': ' + str(err), 160)})") \
            from None
    return headers


def npz_names(path: str | Path, what: str = ".npz archive") -> set[str]:
    """The member names of archive ``path`` (``.npy`` dropped), from its central directory alone; :class:`NpzError`
    when it is not a readable zip archive."""
    try:
        with zipfile.ZipFile(Path(path)) as archive:
            return {n[:-4] if n.endswith(".npy") else n for n in archive.namelist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError) as err:
        raise NpzError(f"not a readable {what} ({one_line(type(err).__name__ + ': ' + str(err), 160)})") \
            from None


def array_bytes(shape: tuple[int, ...], dtype: np.dtype | str | type = np.float32) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (exact Python integers: no overflow, whatever the shape)."""
    return math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize


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
        raise NpzError(f"missing member {short(missing[0])}")
    return arrays


def read_npy(path: str | Path, max_bytes: int, kinds: str = "biuf", what: str = ".npy file") -> np.ndarray:
    """The array of a ``.npy`` file, its header checked (plain array of a kind in ``kinds``, at most ``max_bytes``
    of data) before the data are read; :class:`NpzError` otherwise."""
    try:
        with open(path, "rb") as handle:
            return _read_member(handle, Path(path).name, max_bytes, kinds)
    except NpzError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise NpzError(f"not a readable {what} ({one_line(type(err).__name__ + ': ' + str(err), 160)})") from None


def npy_header(path: str | Path, kinds: str = "biuf", what: str = ".npy file") -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` of a ``.npy`` file from its header alone; :class:`NpzError` otherwise."""
    try:
        with open(path, "rb") as handle:
            shape, _, dtype = _member_header(handle, Path(path).name, kinds)
    except NpzError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise NpzError(f"not a readable {what} ({one_line(type(err).__name__ + ': ' + str(err), 160)})") from None
    return shape, dtype


def _member_header(handle, name: str, kinds: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` from the ``.npy`` header at ``handle``, checked (plain array, allowed
    kind, non-negative sizes)."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(handle)
        if version not in ((1, 0), (2, 0)):  # 3.0 exists only for non-Latin-1 field names (refused below anyway)
            raise ValueError(f".npy format version {version[0]}.{version[1]} (expected 1.0 or 2.0)")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(handle)  # numpy's public header readers (1.x and 2.x alike)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        raise NpzError(f"member {short(name)}: not a .npy array ({one_line(str(err), 120)})") from None
    if dtype.hasobject or dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        raise NpzError(f"member {short(name)}: dtype {str(dtype)[:40]} not allowed "
                       f"(expected {', '.join(_KIND_NAMES[k] for k in kinds)})")
    if any(int(n) < 0 for n in shape):
        raise NpzError(f"member {short(name)}: negative size in shape {short(shape, 60)}")
    return tuple(int(n) for n in shape), bool(fortran), dtype


def _read_member(handle, name: str, budget: int, kinds: str) -> np.ndarray:
    shape, fortran, dtype = _member_header(handle, name, kinds)
    nbytes = array_bytes(shape, dtype)
    if nbytes > budget:
        raise NpzError(f"member {short(name)}: {nbytes} bytes of data ({short(shape, 60)} x {dtype}) exceed the "
                       f"limit of {max(budget, 0)} bytes left")
    # np.empty, not bytearray: its pages are only touched (resident) as data arrive, so a member that declares
    # gigabytes but holds a few bytes costs a few bytes before it is found truncated
    buffer = np.empty(nbytes, np.uint8)
    view = memoryview(buffer)
    filled = 0
    while filled < nbytes:
        got = handle.readinto(view[filled:filled + READ_CHUNK])
        if not got:
            raise NpzError(f"member {short(name)}: truncated ({filled} of {nbytes} bytes)")
        filled += got
    handle.read(1)  # reach the end of the member, where zipfile checks its CRC
    array = buffer.view(dtype) if nbytes else np.empty(0, dtype)
    return array.reshape(shape, order="F" if fortran else "C")


READ_CHUNK = 16 << 20  # bytes read (and decompressed) at a time


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
    """A SafeLoader that refuses duplicate keys and reads YAML 1.2 floats (``5e1``, ``1E-3``); libyaml's C scanner
    and parser where PyYAML has them (the pure-Python scanner takes seconds per megabyte: a 4 MiB file would take
    half a minute before any check), the same safe Python constructor either way."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
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
