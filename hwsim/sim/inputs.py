"""Spike input from files: ``--input spikes.npz`` for ``hwsim run``, ``estimate`` and ``feasibility``.

Two layouts, both ``.npz`` (numpy ``savez``; read with ``allow_pickle`` off) or, for the dense one, ``.npy``:

* **dense** -- one array (key ``spikes``, or the only array in the file) of 0/1 values, shape
  ``(T, B, *input_shape)``; ``(T, *input_shape)`` is one sample (B = 1). bool, integer or float dtype.
* **events** -- integer arrays ``t`` (time step of each event, or a time in ``dt`` units when ``dt`` is given),
  ``x`` and optionally ``y``, ``p`` (polarity) and ``b`` (sample index), plus ``sensor_size`` = ``(W,)``,
  ``(W, H)`` or ``(W, H, P)``. Events become a dense ``(T, B, *input_shape)`` array: for a ``(C, H, W)`` input
  an event lands at ``[p, y, x]``; for an ``(N,)`` input at ``x`` (1-D sensor) or ``(p*H + y)*W + x`` (the
  sensor flattened channels first). Several events of one neuron in one step count once (a spike is 0/1).
  ``T`` is ``timesteps`` when given (later events are dropped and counted), else the last event's step + 1.

Every error is one :class:`~hwsim.sim.engine.InputError` line naming the file and what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import short
from hwsim.sim.engine import InputError

EVENT_KEYS = ("t", "x", "y", "p", "b")


def check_input_options(**given: bool) -> None:
    """Refuse the options that ``--input FILE`` makes meaningless (T and B come from the file, and it replaces the
    random input): ``check_input_options(rate=..., batch=..., timesteps=...)`` with whether each was given on the
    command line; raises one :class:`InputError` line naming the first given one."""
    names = {"rate": "--rate", "batch": "--batch-size", "timesteps": "-T/--timesteps"}
    for key, was_given in given.items():
        if was_given:
            raise InputError(f"{names.get(key, '--' + key)} cannot be combined with --input: the file gives T and B "
                             f"and replaces the random input")


def load_spikes(path: str | Path, input_shape: tuple[int, ...], timesteps: int | None = None,
                trained_timesteps: int | None = None,
                check: Callable[[int, int], None] | None = None) -> np.ndarray:
    """0/1 uint8 spikes ``(T, B, *input_shape)`` from ``path`` (layouts in the module docstring).

    ``trained_timesteps``: the T the network was trained with (``network.timesteps``), for the engine's axis guard:
    dense spikes whose axis 1 has that many steps and axis 0 another count are data-set layout ``(N, T, ...)``,
    refused as swapped. ``check(T, B)``: called with the run's size before the spike array is allocated (the command
    line refuses runs over its limit there).

    Read lazily and bounded: only the members the layout uses are read, each after its ``.npy`` header (shape,
    dtype) has been checked -- the shapes against the network, the bytes against the memory limit
    (:func:`hwsim.safeio.check_memory`) -- so a small compressed file that would unpack to gigabytes is refused
    before any of it is unpacked."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such input file")
    from hwsim.safeio import NpzError, npy_header, npz_headers, npz_names

    input_shape = tuple(int(s) for s in input_shape)
    try:
        if path.suffix == ".npy":
            return _dense(path, None, npy_header(path, _ANY), input_shape, timesteps, trained_timesteps, check)
        names = npz_names(path)
        if "t" in names:
            wanted = {*EVENT_KEYS, "sensor_size", "dt"} & names
            return _from_events(path, npz_headers(path, wanted.__contains__, _ANY), input_shape, timesteps, check)
        if "spikes" in names:
            key = "spikes"
        elif len(names) == 1:
            key = next(iter(names))
        else:
            raise InputError(f"{path}: expected an array 'spikes' (T, B, {_shape_text(input_shape)}) or events "
                             f"t, x[, y, p] with sensor_size; found keys {short(sorted(names), 120)}")
        return _dense(path, key, npz_headers(path, key.__eq__, _ANY)[key], input_shape, timesteps,
                      trained_timesteps, check)
    except NpzError as err:
        raise InputError(f"{path}: not a readable numpy .npz/.npy file ({err})") from None


_ANY = "biufcUSmM"  # dtype kinds read from headers (objects never); the layouts check their own kinds


def _shape_text(shape: tuple[int, ...]) -> str:
    return ", ".join(map(str, shape))


def _read(path: Path, key: str | None, nbytes: int) -> np.ndarray:
    """Member ``key`` of the archive (``None``: the .npy file), whose header has been checked, at most ``nbytes``."""
    from hwsim.safeio import read_npy, read_npz

    if key is None:
        return read_npy(path, nbytes, _ANY)
    return read_npz(path, key.__eq__, nbytes, _ANY)[key]


def _dense(path: Path, key: str | None, header: tuple[tuple[int, ...], np.dtype], input_shape: tuple[int, ...],
           timesteps: int | None, trained_timesteps: int | None = None,
           check: Callable[[int, int], None] | None = None) -> np.ndarray:
    from hwsim.safeio import array_bytes, check_memory

    shape, dtype = header
    if len(shape) == len(input_shape) + 1:
        shape = (shape[0], 1, *shape[1:])
    if len(shape) != len(input_shape) + 2 or tuple(shape[2:]) != input_shape:
        raise InputError(f"{path}: spikes have shape {short(header[0], 80)}; the network needs (T, B, "
                         f"{_shape_text(input_shape)}) or (T, {_shape_text(input_shape)})")
    if trained_timesteps is not None and shape[1] == trained_timesteps != shape[0]:
        raise InputError(f"{path}: spikes {shape} look like (N, T, ...) data: axis 1 has {trained_timesteps} "
                         f"steps, the T this network was trained with; --input takes (T, B, ...): save "
                         f"np.moveaxis(x, 1, 0)")
    if dtype.kind not in "biuf":
        raise InputError(f"{path}: spikes have dtype {str(dtype)[:40]}; expected bool, integer or float 0/1")
    if shape[0] < 1 or shape[1] < 1:
        raise InputError(f"{path}: spikes need T >= 1 and B >= 1, got shape {shape}")
    steps = shape[0] if timesteps is None else min(shape[0], timesteps)
    if check is not None:
        check(steps, shape[1])
    elements = math.prod(shape)
    # the data as stored, three boolean masks of the 0/1 check and the uint8 result
    check_memory(array_bytes(shape, dtype) + 4 * elements, f"--input {path}",
                 f"spikes {_shape_text(shape)} of {dtype}")
    spikes = _read(path, key, array_bytes(shape, dtype)).reshape(shape)
    if spikes.size and not np.all((spikes == 0) | (spikes == 1)):
        bad = spikes[(spikes != 0) & (spikes != 1)].ravel()[0]
        raise InputError(f"{path}: spikes must be 0/1; found the value {short(bad.item(), 40)} (encode analogue "
                         f"data to spikes first)")
    if timesteps is not None:
        spikes = spikes[:timesteps]
    return np.ascontiguousarray(spikes.astype(np.uint8))


def _int_array(path: Path, arrays: dict, key: str) -> np.ndarray:
    value = np.asarray(arrays[key])
    if value.ndim != 1 or value.dtype.kind not in "iub" and not (
            value.dtype.kind == "f" and np.all(np.isfinite(value))):
        raise InputError(f"{path}: event field '{key}' must be a 1-D numeric array of finite values, got "
                         f"{str(value.dtype)[:20]} {short(value.shape, 40)}")
    return value


MAX_EVENT_META = 16  # values of sensor_size and dt


def _from_events(path: Path, headers: dict, input_shape: tuple[int, ...], timesteps: int | None,
                 check: Callable[[int, int], None] | None = None) -> np.ndarray:
    from hwsim.safeio import array_bytes, check_memory

    if "x" not in headers:
        raise InputError(f"{path}: events need at least 't' and 'x' (found {short(sorted(headers), 120)})")
    if "sensor_size" not in headers:
        raise InputError(f"{path}: events need 'sensor_size' = (W,), (W, H) or (W, H, P)")
    for key in ("sensor_size", "dt"):
        if key in headers and math.prod(headers[key][0]) > MAX_EVENT_META:
            raise InputError(f"{path}: '{key}' has {math.prod(headers[key][0])} values; expected at most 3")
    fields = [k for k in EVENT_KEYS if k in headers]
    n = math.prod(headers["t"][0])
    for key in fields:
        shape, dtype = headers[key]
        if len(shape) != 1 or dtype.kind not in "iubf":
            raise InputError(f"{path}: event field '{key}' must be a 1-D numeric array, got {str(dtype)[:20]} "
                             f"{short(shape, 40)}")
        if shape[0] != n:
            raise InputError(f"{path}: event fields differ in length ('t' has {n}, '{key}' has {shape[0]})")
    raw = sum(array_bytes(*headers[k]) for k in headers)
    # the fields as stored, their int64 copies (t, x, y, p, b and the input index) and the masks
    check_memory(raw + 8 * 8 * n, f"--input {path}", f"{n} events")
    arrays = {k: _read(path, k, array_bytes(*headers[k])) for k in headers}
    try:
        sensor = tuple(int(s) for s in np.atleast_1d(arrays["sensor_size"]))
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{path}: sensor_size must hold integers (W,), (W, H) or (W, H, P)") from None
    if not 1 <= len(sensor) <= 3 or min(sensor) < 1:
        raise InputError(f"{path}: sensor_size {short(sensor, 60)} must be (W,), (W, H) or (W, H, P) of sizes >= 1")
    width, height, polarities = (sensor + (1, 1))[:3]
    fields = {k: _int_array(path, arrays, k) for k in EVENT_KEYS if k in arrays}
    given_dt = np.asarray(arrays.get("dt", 1.0))
    if given_dt.dtype.kind not in "iuf" or given_dt.size != 1:
        raise InputError(f"{path}: dt must be one number > 0, got {str(given_dt.dtype)[:20]} {short(given_dt.shape)}")
    dt = float(given_dt.ravel()[0])
    if not (dt > 0 and math.isfinite(dt)):
        raise InputError(f"{path}: dt must be a finite number > 0, got {dt}")
    with np.errstate(all="ignore"):
        t = np.floor(fields["t"] / dt)
    if n and not (np.all(np.isfinite(t)) and t.min() >= 0 and t.max() < 2**62):
        raise InputError(f"{path}: event times must be finite and >= 0 (in steps of dt = {dt:g}, below 2**62)")
    t = t.astype(np.int64)
    x = fields["x"].astype(np.int64)
    y = fields.get("y", np.zeros(n)).astype(np.int64)
    p = fields.get("p", np.zeros(n)).astype(np.int64)
    b = fields.get("b", np.zeros(n)).astype(np.int64)
    for key, value, size in (("x", x, width), ("y", y, height), ("p", p, polarities)):
        if n and (value.min() < 0 or value.max() >= size):
            raise InputError(f"{path}: event field '{key}' spans {value.min()}..{value.max()}, outside the sensor "
                             f"({size} values from sensor_size {sensor})")
    if n and b.min() < 0:
        raise InputError(f"{path}: event times and sample indices must be >= 0")
    if len(input_shape) == 3:
        if input_shape != (polarities, height, width):
            raise InputError(f"{path}: sensor_size {sensor} gives (P, H, W) = {(polarities, height, width)}; the "
                             f"network input is {input_shape}")
    elif input_shape[0] != width * height * polarities:
        raise InputError(f"{path}: sensor_size {sensor} has {width * height * polarities} inputs; the network "
                         f"has {input_shape[0]}")
    index = (p * height + y) * width + x
    steps = int(timesteps) if timesteps is not None else (int(t.max()) + 1 if n else 1)
    keep = t < steps
    batch = int(b.max()) + 1 if n else 1
    if check is not None:
        check(steps, batch)
    check_memory(steps * batch * math.prod(input_shape), f"--input {path}",
                 f"{steps} steps x {batch} samples x {math.prod(input_shape)} inputs of 0/1 spikes")
    dense = np.zeros((steps, batch, math.prod(input_shape)), np.uint8)
    dense[t[keep], b[keep], index[keep]] = 1
    return dense.reshape(steps, batch, *input_shape)


def events_to_file(path: str | Path, t, x, sensor_size, y=None, p=None, b=None, dt: float = 1.0) -> Path:
    """Write events in the layout :func:`load_spikes` reads (a helper for users and tests)."""
    arrays = {"t": np.asarray(t), "x": np.asarray(x), "sensor_size": np.asarray(sensor_size), "dt": np.asarray(dt)}
    for key, value in (("y", y), ("p", p), ("b", b)):
        if value is not None:
            arrays[key] = np.asarray(value)
    path = Path(path)
    np.savez(path, **arrays)
    return path


# ---------------------------------------------------------------------------------------------------------
# tonic event data sets (optional package), without torch: hwsim.methods.data wraps this in a lazy data set
# ---------------------------------------------------------------------------------------------------------
@dataclass
class EventSource:
    """An event data set read per sample, for a lazy spike data set.

    ``labels`` (N,) int64, the training samples first; ``shape`` the per-sample input, ``(P, H, W)`` or ``(W,)``;
    ``fetch(i)`` -> ``(step, index)``: the time step and flattened input index of every kept event of sample i;
    ``split`` and ``binning`` say, in words for the report, how the samples were split and binned."""

    name: str
    labels: np.ndarray
    n_train: int
    shape: tuple[int, ...]
    n_classes: int
    fetch: Callable[[int], tuple[np.ndarray, np.ndarray]]
    split: str
    binning: str


def event_steps(t: np.ndarray, steps: int, bin_us: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(step, kept)`` of event times ``t`` (microseconds): with ``bin_us``, fixed bins ``t // bin_us`` and the
    events past ``steps * bin_us`` not kept (the same dt for every sample, as ``--input`` events have); without,
    the sample's own span cut into ``steps`` equal bins (a short sample is stretched, a long one squeezed)."""
    t = np.asarray(t, np.int64)
    if bin_us is not None:
        if not bin_us > 0:
            raise InputError(f"the bin width must be > 0 microseconds, got {bin_us}")
        step = np.floor_divide(t, bin_us).astype(np.int64) if t.size else t
        return step, step < steps
    span = max(int(t.max()) + 1, 1) if t.size else 1
    return np.minimum(t * steps // span, steps - 1), np.ones(t.shape, bool)


def tonic_source(name: str, path: str | Path | None, steps: int, bin_us: float | None = None,
                 test_fraction: float = 0.2, seed: int = 0) -> EventSource:
    """A tonic data set (``tonic.datasets.<name>``) as an :class:`EventSource`. The official train/test split is
    kept when the class takes ``train=``; a data set without one (``ASLDVS``, ...) holds out ``test_fraction``
    of a shuffle seeded by ``seed``. Events are binned into ``steps`` steps (:func:`event_steps`: fixed
    ``bin_us`` microseconds, or each sample's own span). Errors are one :class:`InputError` line."""
    import inspect

    try:
        import tonic
    except ImportError:
        raise InputError(f"dataset 'tonic:{name}' needs the optional package tonic (pip install tonic)") from None
    cls = getattr(tonic.datasets, name, None)
    if cls is None:
        raise InputError(f"tonic has no dataset {name!r}")
    if path is None:
        raise InputError(f"dataset 'tonic:{name}' needs a folder for its files (--data-path / data_path)")
    if not 0 < test_fraction < 1:
        raise InputError(f"the held-out test fraction must be in (0, 1), got {test_fraction}")
    try:
        official = "train" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        official = True
    parts = [cls(save_to=str(path), train=True), cls(save_to=str(path), train=False)] if official else [
        cls(save_to=str(path))]
    sensor = getattr(parts[0], "sensor_size", None)
    if sensor is None:
        raise InputError(f"tonic:{name} has no fixed sensor_size (its samples differ in size); hwsim needs one "
                         f"input shape")
    sensor = tuple(int(s) for s in sensor)
    width, height, polarities = (sensor + (1, 1))[:3]
    shape = (width,) if height == 1 and polarities == 1 else (polarities, height, width)
    where = [(part, i) for part in parts for i in range(len(part))]
    n_train = len(parts[0])
    split = "official train/test split"
    if not official:
        order = np.random.default_rng(seed).permutation(len(where))
        n_test = max(1, int(round(len(where) * test_fraction)))
        n_train = len(where) - n_test
        where = [where[i] for i in order]
        split = f"no official split: {n_test} of {len(where)} samples held out for test (seed {seed})"
    labels = np.array([int(part[i][1]) for part, i in where], np.int64)

    def fetch(k: int) -> tuple[np.ndarray, np.ndarray]:
        part, i = where[k]
        events = part[i][0]
        names = events.dtype.names
        x = events["x"].astype(np.int64)
        y = events["y"].astype(np.int64) if "y" in names else np.zeros_like(x)
        p = events["p"].astype(np.int64) if "p" in names and polarities > 1 else np.zeros_like(x)
        step, kept = event_steps(events["t"], steps, bin_us)
        return step[kept], ((p * height + y) * width + x)[kept]

    binning = (f"fixed bins of {bin_us:g} µs ({steps} steps = {steps * bin_us / 1000:g} ms; later events dropped)"
               if bin_us is not None else f"each sample's own duration cut into {steps} steps")
    n_classes = len(getattr(parts[0], "classes", []) or []) or (int(labels.max()) + 1 if labels.size else 1)
    return EventSource(f"tonic:{name}", labels, n_train, shape, n_classes, fetch, split, binning)
