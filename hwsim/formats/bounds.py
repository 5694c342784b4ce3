"""Bounds for the HDF5 formats (NIR ``.nir``, netx ``.net``): sizes checked before anything is read, names made safe
for HDF5, and files built in memory so that a full disk can never reach HDF5.

**Sizes before allocation.** A NIR or netx file is a few kilobytes that may *declare* gigabytes: a dataset of shape
(32768, 32768) whose chunks were never written (or are compressed zeros) costs nothing on disk and 4 GiB once read,
and more in the float64/int64 copies the readers make. :func:`checked_hdf5` walks the file's links -- as the
readers do, so a dataset reachable by many hard links counts once per link, and a cycle of links is stopped by the
object limit -- from the datasets' headers alone (shape, dtype, chunk shape: nothing is read or decompressed) and
refuses the file in one line naming it, the bytes it would take and the limit (:func:`hwsim.safeio.check_memory`,
:class:`~hwsim.errors.TooLarge`, exit 2) before the reader sees it. Soft and external links are refused (an
external link would make HDF5 open another file). :func:`check_network_memory` does the same for the sizes a graph
*declares* without data (an input of 100000 x 100000 pixels pooled by a kernel of 100000 holds no weight at all):
the state of every input and neuron of one step.

**Names.** A layer name becomes part of a NIR node name, which NIR writes as an HDF5 group name: a ``/`` makes
nested groups (``a/../../b`` wrote a file no reader can read back) and a NUL ends the name early (two layers then
share a group). :func:`node_key` rewrites such characters; the exact name travels in the node's hwsim metadata.
Names read from files are texts of at most :data:`~hwsim.sim.network.MAX_NAME_CHARS` characters
(:func:`check_names`), what hwsim's network files hold.

**Writes.** HDF5 2.0 (as bundled with h5py 3.16) crashes the process (SIGSEGV) when a write fails while it closes a
file on a full disk: its close path tears down the file's shared state after the failed flush and later walks the
datasets still registered against it. So hwsim's HDF5 files are built in memory (:func:`hdf5_image`) and written by
Python (:func:`hwsim.safeio.atomic_write`), whose errors are one line naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path

from hwsim.errors import TooLarge, WriteError, printable
from hwsim.sim.network import MAX_NAME_CHARS, Network, NetworkError

NIR_BYTES_PER_VALUE = 32  # besides the stored bytes: the float64 copy, the scaled copy, the float32 layer, checks
NETX_BYTES_PER_VALUE = 48  # besides the stored bytes: netx's astype(int64), clipping, exponent search, int32 layer
OBJECT_BYTES_PER_VALUE = 64  # a variable-length string or object element becomes a Python object
NEURON_STATE_BYTES = 16  # one step's state of one input or neuron: membrane, current, spike (the least a run holds)
JSON_BYTES_PER_CHAR = 24  # Python objects per character of JSON text (``[],`` is an empty list: 56 bytes + a pointer)
MAX_NODE_KEY_CHARS = 100  # of a layer name inside a NIR node name
MAX_MERGE_WINDOWS = 4096  # pooling windows (kernel squared) merged into the next synapse (a kernel of up to 64)


class _Walk:
    """What a reader that follows every link would read: values, stored bytes, the largest chunk."""

    def __init__(self, what: str):
        self.what, self.objects, self.values, self.raw, self.objects_values = what, 0, 0, 0, 0


def _visit_dataset(walk: _Walk, dataset) -> None:
    shape = dataset.shape
    values = 0 if shape is None else math.prod(int(n) for n in shape)
    itemsize = max(int(dataset.dtype.itemsize), 1)
    chunk = math.prod(int(n) for n in dataset.chunks) * itemsize if dataset.chunks else 0
    walk.values += values
    walk.raw += max(values * itemsize, chunk)  # a chunk is decompressed whole, even one larger than the data
    if dataset.dtype.kind in "OV":  # variable-length strings and objects
        walk.objects_values += values


def _walk(handle, what: str) -> _Walk:
    """Every link from the root, as a recursive reader follows them (hard links counted per path); refuses soft and
    external links and more than :data:`hwsim.safeio.MAX_HDF5_OBJECTS` links."""
    import h5py

    from hwsim.safeio import MAX_HDF5_OBJECTS

    walk = _Walk(what)
    groups = [handle]
    while groups:
        group = groups.pop()
        for name in group:
            walk.objects += 1
            if walk.objects > MAX_HDF5_OBJECTS:
                raise TooLarge(f"{printable(what, 200)}: more than {MAX_HDF5_OBJECTS} groups and datasets (or a cycle "
                               f"of links); refused")
            link = group.get(name, getlink=True)
            if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
                kind = "an external" if isinstance(link, h5py.ExternalLink) else "a soft"
                raise NetworkError(f"'{printable(name, 80)}' in group '{printable(group.name, 80)}' is {kind} link; "
                                   f"hwsim reads only groups and datasets stored in the file itself")
            item = group.get(name)
            if isinstance(item, h5py.Group):
                groups.append(item)
            elif isinstance(item, h5py.Dataset):
                _visit_dataset(walk, item)
    return walk


def check_hdf5_memory(handle, what: str, per_value: int) -> int:
    """Refuse (:class:`~hwsim.errors.TooLarge`, one line naming ``what``) an open ``h5py.File`` whose datasets would
    take more than the memory limit once read: their stored bytes plus ``per_value`` bytes per value (the readers'
    copies), from the headers alone. Returns the bytes."""
    from hwsim.safeio import check_memory

    walk = _walk(handle, what)
    total = walk.raw + per_value * walk.values + OBJECT_BYTES_PER_VALUE * walk.objects_values
    check_memory(total, what, f"{walk.values} values in the datasets of {walk.objects} groups and datasets, as "
                              f"declared by their headers")
    return total


@contextlib.contextmanager
def checked_hdf5(path: str | Path, kind: str, per_value: int) -> Iterator[io.BufferedReader]:
    """Open ``path`` (a ``kind`` such as ``NIR file``) and check it as :func:`check_hdf5_memory` does; yields the open
    binary file at offset 0 for the reader (``h5py.File(handle)``, ``nir.read(handle)``): the file checked is the
    file read. A file HDF5 cannot open is a :class:`NetworkError` ``not a readable <kind>``; too large, a
    :class:`~hwsim.errors.TooLarge` naming ``<kind> <path>``."""
    import h5py

    with open(path, "rb") as handle:
        try:
            hdf5 = h5py.File(handle, "r")
        except Exception as err:  # h5py raises OSError and others for a file that is not HDF5
            raise NetworkError(f"not a readable {kind} ({type(err).__name__}: {printable(str(err), 200)})") from None
        with hdf5:
            check_hdf5_memory(hdf5, f"{kind} {path}", per_value)
        handle.seek(0)
        yield handle


def check_network_memory(network: Network, what: str) -> None:
    """Refuse a network whose declared shapes alone (no weights needed: pooling, flatten) hold more inputs and
    neurons than one step of one sample can keep in memory."""
    from hwsim.safeio import check_memory

    units = math.prod(network.input_shape) + sum(math.prod(out) for _, out in network.layer_shapes())
    check_memory(units * NEURON_STATE_BYTES, what, f"{units} inputs and neurons declared by its shapes, "
                                                   f"{NEURON_STATE_BYTES} bytes each for one step of one sample")


def check_names(network: Network) -> None:
    """Every layer name a text of at most :data:`~hwsim.sim.network.MAX_NAME_CHARS` characters of valid Unicode (what
    hwsim's network files hold and a terminal can print, so that an export of this network reads back);
    :class:`NetworkError` naming the layer."""
    for i, layer in enumerate(network.layers):
        if not isinstance(layer.name, str):
            raise NetworkError(f"layer {i}: its name must be a text, got {type(layer.name).__name__}")
        if len(layer.name) > MAX_NAME_CHARS:
            raise NetworkError(f"layer {i} ('{printable(layer.name, 60)}'): a name of {len(layer.name)} characters, "
                               f"over the limit of {MAX_NAME_CHARS}")
        try:
            layer.name.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (from JSON's \ud800 or a name that was not UTF-8)
            raise NetworkError(f"layer {i}: its name is not valid Unicode text (a lone surrogate)") from None


_UNSAFE = {c: "_" for c in (*range(0x20), 0x2F, 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, 0x200E, 0x200F,
                            *range(0x202A, 0x202F), *range(0x2066, 0x206A), *range(0xD800, 0xE000))}


def node_key(name: str) -> str:
    """``name`` as part of an HDF5 group name: ``/`` (HDF5's path separator), NUL and every other control or
    bidirectional character, and lone surrogates (not UTF-8), become ``_``, cut to :data:`MAX_NODE_KEY_CHARS`. The
    writer prefixes the layer's index, so keys stay unique and are never ``.`` or ``..``."""
    return str(name)[:MAX_NODE_KEY_CHARS].translate(_UNSAFE)


def hdf5_image(write: Callable[[io.BytesIO], None]) -> bytes:
    """The bytes of an HDF5 file that ``write`` builds into an in-memory file object (``h5py.File(buffer, "w")`` or
    ``nir.write(buffer, graph)``): HDF5 never touches the disk (see the module docstring)."""
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def check_merge(kernel: int, what: str) -> None:
    """Refuse a pooling kernel whose windows merged into the next synapse would take longer than any real network
    needs (:data:`MAX_MERGE_WINDOWS`: the merge adds one copy of the weights per window)."""
    if kernel * kernel > MAX_MERGE_WINDOWS:
        raise NetworkError(f"{what}: a pooling kernel of {kernel} ({kernel * kernel} windows) merged into the next "
                           f"synapse, over the limit of {MAX_MERGE_WINDOWS} windows")


def check_array(shape: tuple[int, ...], what: str, itemsize: int = 8) -> None:
    """Refuse an array of ``shape`` (``itemsize`` bytes a value) that a graph's declared sizes would make the reader
    allocate, before it is allocated."""
    from hwsim.safeio import check_memory

    values = math.prod(int(n) for n in shape)
    check_memory(values * itemsize * 2, what, f"an array of {values} values ({'x'.join(map(str, shape))}) and its copy")


def write_failure(path: str | Path, err: BaseException, outcome: str) -> WriteError:
    """One :class:`~hwsim.errors.WriteError` line for an ``OSError`` (or a :class:`~hwsim.errors.WriteError` raised
    from one) while writing ``path``: the file, the OS's reason, and ``outcome`` (what was left on disk)."""
    cause = err.__context__ if isinstance(err, WriteError) and isinstance(err.__context__, OSError) else err
    if isinstance(cause, OSError):
        reason = cause.strerror or type(cause).__name__
        if cause.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            reason += " (free some space, or write elsewhere)"
    else:
        reason = printable(str(err), 200)
    return WriteError(f"{printable(str(path), 300)}: cannot write: {reason}; {outcome}")
