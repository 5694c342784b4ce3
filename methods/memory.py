"""A deterministic meter of the activation memory autograd keeps for the backward pass.

Inside ``with ActivationMeter(model) as meter:`` every tensor autograd saves is seen by a saved-tensor
hook. Parameters are skipped (they exist anyway); each distinct saved view -- (storage, offset, shape,
stride, dtype) -- is counted once with its own bytes (``numel * element_size``) for as long as some graph
node holds it; it is released when the graph lets go of it (after ``backward`` or when the graph is
dropped). ``peak_bytes`` is the largest total held at once. The count depends only on tensor shapes, so
it is the same on every machine; on CUDA ``torch.cuda.max_memory_allocated`` is reported beside it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch


class _Saved:
    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


@dataclass
class MemoryReport:
    peak_bytes: int
    saved_tensors: int
    cuda_peak_bytes: int | None = None


class ActivationMeter:
    """Context manager metering saved activations (see module docstring)."""

    def __init__(self, *modules: torch.nn.Module):
        self._params = {p.untyped_storage().data_ptr() for m in modules for p in m.parameters()}
        self._refs: dict[tuple, int] = {}
        self.live_bytes = 0
        self.peak_bytes = 0
        self.saved_tensors = 0
        self._hooks = None
        self._cuda = False

    def __enter__(self) -> ActivationMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        self._cuda = torch.cuda.is_available()
        if self._cuda:
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

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
        return MemoryReport(self.peak_bytes, self.saved_tensors, cuda)
