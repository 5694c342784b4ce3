"""Two meters of training memory: the saved tensors autograd keeps for backward, and the allocator's peak.

Inside ``with ActivationMeter(model) as meter:`` every tensor autograd saves is seen by a saved-tensor
hook. Parameters are skipped (they exist anyway); each distinct saved view -- (storage, offset, shape,
stride, dtype) -- is counted once with its own bytes (``numel * element_size``) for as long as some graph
node holds it; it is released when the graph lets go of it (after ``backward`` or when the graph is
dropped). ``peak_bytes`` is the largest total held at once. The count depends only on tensor shapes, so
it is the same on every machine.

The saved-tensor meter sees only what autograd saves: state a rule keeps in Python attributes, in an
autograd ``ctx`` or in module buffers escapes it. So every figure comes with the **allocator peak** beside
it (``ActivationMeter(..., allocator=True)``): the largest number of bytes held by tensors allocated inside
the ``with`` block above the level at entry -- on CPU from the allocation and free events torch's profiler
records (``profile_memory=True``: every tensor allocation, forward and backward, gradient temporaries
included), on CUDA ``torch.cuda.max_memory_allocated`` minus the bytes allocated at entry. It counts what
actually exists, so a rule cannot hide state from it; it also counts transient backward buffers (weight
gradient temporaries, error vectors), which is why it sits above the meter by an amount that must not grow
with T (``tests/test_methods_memory.py``). :func:`measure` runs one warm-up batch first so gradient buffers
exist before metering (they are the parameters' size, not activation memory).
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from dataclasses import dataclass

import torch
from torch.autograd import DeviceType

_CPU = DeviceType.CPU


class _Saved:
    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


@dataclass
class MemoryReport:
    """``peak_bytes``: saved-tensor meter; ``allocator_peak_bytes``: allocator peak above the level at entry
    (None when not asked for); ``cuda_peak_bytes``: ``max_memory_allocated`` when the metered modules live on
    CUDA (absolute: parameters, gradients and optimizer state included), else None."""

    peak_bytes: int
    saved_tensors: int
    cuda_peak_bytes: int | None = None
    allocator_peak_bytes: int | None = None

    @property
    def unmetered_bytes(self) -> int | None:
        """Allocator peak minus the meter's peak: transient buffers, and anything a rule hides from the meter."""
        return None if self.allocator_peak_bytes is None else self.allocator_peak_bytes - self.peak_bytes


class ActivationMeter:
    """Context manager metering saved activations (see module docstring)."""

    def __init__(self, *modules: torch.nn.Module, allocator: bool = False):
        self._allocator = allocator
        self._profiler = None
        self._cuda_base = 0
        self.allocator_peak_bytes: int | None = None
        params = [p for m in modules for p in m.parameters()]
        self._params = {p.untyped_storage().data_ptr() for p in params}
        # the allocator that matters is the one the modules live on (a CPU model on a CUDA machine: the CPU's)
        self._on_cuda = any(p.is_cuda for p in params)
        self._refs: dict[tuple, int] = {}
        self.live_bytes = 0
        self.peak_bytes = 0
        self.saved_tensors = 0
        self._hooks = None
        self._cuda = False

    def __enter__(self) -> ActivationMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        self._cuda = self._on_cuda and torch.cuda.is_available()
        if self._cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._cuda_base = torch.cuda.memory_allocated()
        elif self._allocator:
            from torch.profiler import ProfilerActivity, profile

            self._profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
            with _quiet_stderr():  # the profiler's C++ side prints start/stop lines to the process's stderr
                self._profiler.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        if self._cuda and self._allocator:
            torch.cuda.synchronize()
            self.allocator_peak_bytes = int(torch.cuda.max_memory_allocated() - self._cuda_base)
        elif self._profiler is not None:
            with _quiet_stderr():
                self._profiler.__exit__(*exc)
            self.allocator_peak_bytes = _peak_of(self._profiler)
            self._profiler = None

    def _pack(self, tensor: torch.Tensor):
        if tensor.untyped_storage().data_ptr() in self._params:
            return tensor  # a parameter (or a view of one): it exists whether or not backward runs
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
               tuple(tensor.stride()), tensor.dtype, tensor.device)
        nbytes = tensor.numel() * tensor.element_size()
        count = self._refs.get(key, 0)
        if count == 0:
            self.live_bytes += nbytes
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
            self.saved_tensors += 1
        self._refs[key] = count + 1
        handle = _Saved(tensor)
        weakref.finalize(handle, self._release, key, nbytes)
        return handle

    @staticmethod
    def _unpack(handle):
        return handle.tensor if isinstance(handle, _Saved) else handle

    def _release(self, key: tuple, nbytes: int) -> None:
        count = self._refs.get(key, 0) - 1
        if count <= 0:
            self._refs.pop(key, None)
            self.live_bytes -= nbytes
        else:
            self._refs[key] = count

    def report(self) -> MemoryReport:
        cuda = torch.cuda.max_memory_allocated() if self._cuda else None
        return MemoryReport(self.peak_bytes, self.saved_tensors, cuda, self.allocator_peak_bytes)


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for the block (C++ log lines bypass ``sys.stderr``)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _peak_of(profiler) -> int:
    """Largest running sum of the CPU allocation (+) and free (-) events, in time order."""
    events = sorted((e.start_ns(), e.nbytes()) for e in profiler.profiler.kineto_results.events()
                    if e.name() == "[memory]" and e.device_type() == _CPU)
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return int(peak)


def measure(rule, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> MemoryReport:
    """Both meters over one batch of ``rule`` (``accumulate``, or ``step`` with ``optimizer``), after one warm-up
    batch so the parameters' gradient buffers already exist. The gradients the two batches accumulate are
    left in ``.grad``. A rule that updates inside the batch (OTTT_O, TTL-BPTT per window) runs ``step`` with
    ``optimizer`` or, without one, plain SGD at learning rate 0 (weights unchanged); its optimizer frees and
    re-allocates the gradient buffers, so its allocator peak includes them."""
    if optimizer is None and getattr(rule, "updates_inside_batch", False):
        optimizer = torch.optim.SGD(list(rule.parameters()), lr=0.0)

    def run():
        if optimizer is not None:
            rule.step(x, y, optimizer)
        else:
            rule.accumulate(x, y)

    run()
    for module in rule.modules():
        for p in module.parameters():
            if p.grad is not None:
                p.grad.zero_()
    with ActivationMeter(*rule.modules(), allocator=True) as meter:
        run()
    return meter.report()
