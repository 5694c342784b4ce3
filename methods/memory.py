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

Two bases. The **activation** basis is the allocator peak above the level at entry (what one batch adds:
activations, the rule's state, backward temporaries). The **whole training** basis -- what the papers report as
GPU memory -- adds what lives across batches: parameters, their gradients and the optimizer's state
(:attr:`MemoryReport.whole_bytes`; counted tensor by tensor, each storage once).

Neither meter knows what a rule *needs*; :func:`online_need` computes it for the online rules (SLTT, SLTT-K,
OTTT) from the layer sizes alone: the state carried from step to step plus the largest working set of one layer's
step. ``tests/test_methods_memory.py`` holds the allocator to it (within 15 %), which a rule that keeps even a few
steps of state aside cannot pass, whatever the saved-tensor meter sees.
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
    CUDA (absolute: parameters, gradients and optimizer state included), else None. ``parameter_bytes``,
    ``gradient_bytes``, ``optimizer_bytes``: what lives across batches (None where not counted)."""

    peak_bytes: int
    saved_tensors: int
    cuda_peak_bytes: int | None = None
    allocator_peak_bytes: int | None = None
    parameter_bytes: int | None = None
    gradient_bytes: int | None = None
    optimizer_bytes: int | None = None

    @property
    def persistent_bytes(self) -> int | None:
        """Parameters + gradients + optimizer state (None when any is unknown)."""
        parts = (self.parameter_bytes, self.gradient_bytes, self.optimizer_bytes)
        return None if any(p is None for p in parts) else sum(parts)

    whole_bytes: int | None = None  # whole training memory, the papers' basis (see whole_training_bytes)

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
        self._cuda_peak_before = 0  # the peak before an allocator_window reset the CUDA peak counter
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
        cuda = max(torch.cuda.max_memory_allocated(), self._cuda_peak_before) if self._cuda else None
        return MemoryReport(self.peak_bytes, self.saved_tensors, cuda, self.allocator_peak_bytes)

    @contextlib.contextmanager
    def allocator_window(self):
        """Meter the allocator over the block only (inside a meter opened without ``allocator``): sets
        :attr:`allocator_peak_bytes` to the block's peak above the level at its start. For a training loop that
        wants the allocator for one batch of each epoch without profiling the whole epoch."""
        if self._on_cuda and torch.cuda.is_available():
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            self._cuda_peak_before = max(self._cuda_peak_before, torch.cuda.max_memory_allocated())
            torch.cuda.reset_peak_memory_stats()
            yield
            torch.cuda.synchronize()
            self.allocator_peak_bytes = int(torch.cuda.max_memory_allocated() - base)
            return
        from torch.profiler import ProfilerActivity, profile

        profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
        with _quiet_stderr():
            profiler.__enter__()
        try:
            yield
        finally:
            with _quiet_stderr():
                profiler.__exit__(None, None, None)
        self.allocator_peak_bytes = _peak_of(profiler)


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


def persistent(modules, optimizer: torch.optim.Optimizer | None = None) -> tuple[int, int, int]:
    """(parameter, gradient, optimizer-state) bytes of ``modules`` and ``optimizer`` as they are now, each storage
    counted once."""
    seen: set[int] = set()

    def size(tensors) -> int:
        total = 0
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in seen and t.numel():
                seen.add(t.untyped_storage().data_ptr())
                total += t.untyped_storage().nbytes()
        return total

    params = [p for m in modules for p in m.parameters()]
    state = [] if optimizer is None else [v for st in optimizer.state.values() for v in st.values()]
    return size(params), size(p.grad for p in params), size(state)


def whole_training_bytes(counts: tuple[int, int, int], allocator_peak: int, grads_recreated: bool,
                         cuda: bool) -> int:
    """Everything training holds at the batch's peak: ``counts`` (parameter, gradient, optimizer-state bytes at
    the batch's start, :func:`persistent`) plus the allocator peak above that start. When the batch frees the
    gradients first (``optimizer.zero_grad(set_to_none=True)``, as ``TrainingRule.step`` does) and re-creates
    them, torch's CPU profiler sees them allocated again but never sees them freed (it records frees only of
    memory allocated while it runs), so on CPU they are in the peak already and not added twice; the CUDA
    counters see both."""
    params, grads, state = counts
    return params + state + allocator_peak + (0 if grads_recreated and not cuda else grads)


def measure(rule, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> MemoryReport:
    """Both meters over one batch of ``rule``, after one warm-up batch, and the bytes that live across batches.

    The warm-up runs ``step`` with ``optimizer`` or, without one, SGD with momentum 0.9 at learning rate 0 (as
    ``hwsim train`` trains; the weights do not change), so gradient buffers and the momentum exist before
    metering. The metered batch runs ``accumulate`` (gradients zeroed in place first, so the allocator peak is
    what the batch adds) -- or ``step`` for a rule that updates inside the batch (OTTT_O, TTL-BPTT per window),
    whose optimizer frees and re-allocates the gradient buffers. The report's ``parameter_bytes``,
    ``gradient_bytes`` and ``optimizer_bytes`` give the whole-training basis (:attr:`MemoryReport.whole_bytes`).
    The gradients the batches accumulate are left in ``.grad``."""
    params = list(rule.parameters())
    warm = optimizer if optimizer is not None else torch.optim.SGD(params, lr=0.0, momentum=0.9)
    inside = getattr(rule, "updates_inside_batch", False)
    rule.step(x, y, warm)
    for module in rule.modules():
        for p in module.parameters():
            if p.grad is not None:
                p.grad.zero_()
    counts = persistent(rule.modules(), warm)
    with ActivationMeter(*rule.modules(), allocator=True) as meter:
        if inside:
            rule.step(x, y, warm)
        else:
            rule.accumulate(x, y)
    report = meter.report()
    report.parameter_bytes, report.gradient_bytes, report.optimizer_bytes = counts
    report.whole_bytes = whole_training_bytes(counts, report.allocator_peak_bytes, inside,
                                              report.cuda_peak_bytes is not None)
    return report


def online_need(model, batch: int, traces: bool = False) -> dict:
    """What an online rule needs at its allocator peak, from the layer sizes of ``model`` (a
    :class:`hwsim.methods.models.SpikingNet`) at batch size ``batch``: SLTT and SLTT-K (``traces=False``), OTTT
    (``traces=True``). Bytes (the parameters' element size), as a dict:

    * ``state_bytes`` -- carried from step to step and saved for the step's backward: every layer's membrane
      ``u`` and spikes ``s`` (the spike function saves ``u``; a synapse saves its input spikes), and with traces
      the presynaptic trace of every layer but the first (the raw input has none): ``B (2 sum_l n_l +
      sum_{l>0} n_{l-1})``; an ALIF layer adds its adaptation ``a`` and the ``u - A`` its spike function saves
      (``2 B n_l``), a recurrent layer the previous spikes ``s[t-1]`` its recurrent synapses saved (``B n_l``; with
      traces also ``r_hat``, ``B n_l``);
    * ``working_bytes`` -- the largest one-layer working set on top of the state: forward, a layer's current
      and its new membrane while its old state still exists (``2 B n_l``); backward, the error at a hidden layer's
      spikes and its surrogate product (``2 B n_l``), or at a synapse the error at its output, the error for the
      layer below (none for the first layer) and the weight- and bias-gradient temporaries before they are added
      to ``.grad`` (``B n_l + B n_{l-1} + |W_l| + |b_l|``); a recurrent layer's forward holds its input and
      recurrent currents and their sum (``3 B n_l``), its recurrent synapses' backward ``B n_l + |W_rec|``;
    * ``need_bytes`` -- their sum.

    Exact for dense layers on torch's CPU allocator (``tests/test_methods_memory.py``: within 15 %; 0.1-6 %
    measured). Backends add their own workspaces (oneDNN's reorder buffers for convolutions on CPU, cuDNN's on
    CUDA), which this does not model."""
    import numpy as np

    from hwsim.sim.network import FloatALIF

    stages = model.stages
    size = next(model.parameters()).element_size()
    n_in = [int(np.prod(model.input_shape))] + [int(np.prod(st.out_shape)) for st in stages[:-1]]
    n_out = [int(np.prod(st.out_shape)) for st in stages]
    state = 2 * sum(n_out) + (sum(n_in[1:]) if traces else 0)
    work = 0
    for k, stage in enumerate(stages):
        weight = getattr(stage.synapse, "weight", None)
        bias = getattr(stage.synapse, "bias", None)
        synapse = n_out[k] + (n_in[k] if k > 0 else 0)
        params = (0 if not isinstance(weight, torch.Tensor) else weight.numel()) + \
            (0 if not isinstance(bias, torch.Tensor) else bias.numel())
        forward = 2 * batch * n_out[k]
        if isinstance(stage.neuron, FloatALIF):  # a[t], and u[t] - A[t] that the spike function saves
            state += 2 * n_out[k]
        if stage.recurrent is not None:  # s[t-1], saved by W_rec, outlives the step; OTTT's r_hat
            state += n_out[k] * (2 if traces else 1)
            forward = 3 * batch * n_out[k]  # the input and the recurrent current and their sum
            work = max(work, batch * n_out[k] + stage.recurrent.weight.numel())
        work = max(work, forward, batch * synapse + params)
    return {"state_bytes": size * batch * state, "working_bytes": size * work,
            "need_bytes": size * (batch * state + work)}
