"""A torch engine for large batches: the same runs and the same counts as :mod:`hwsim.sim.engine`, on CUDA or CPU
tensors, with dense tensor ops instead of events.

``simulate(network, spikes, device="cuda")`` returns a :class:`~hwsim.sim.engine.SimResult` like the CPU engine:
spikes ``(T, B, *shape)`` uint8 per neuron layer, membranes/currents when recorded, and a
:class:`~hwsim.sim.counts.Counts` whose every counter (spikes in and out, SOPs, neuron updates, active updates,
bytes by kind; per step, per layer and per neuron) is *identical* to the CPU engine's. Fixed point is the CPU
engine's arithmetic (Lava 0.10.0 ``fixed_pt``, DESIGN.md section 2) bit for bit in integer tensors; float mode is
the same float32 LIF, equal to the CPU engine within float32 rounding of the synaptic sums (see below).

**How a run is laid out.** Samples are independent, so the batch is cut into chunks that fit the memory budget
(``memory_bytes``; on CUDA half the free device memory by default) and each chunk runs layer after layer, as the
CPU engine does: a layer's synaptic input for a block of time steps is one dense op over ``steps x samples``
(``linear`` for dense layers, ``conv2d`` for conv, a sum pool for pooling; channels first, as the network
stores them), then the LIF runs step by step over the whole block: a handful of elementwise torch ops per step,
or on CUDA one fused Triton kernel per block (:mod:`hwsim.sim.triton_lif`, where Triton is installed: it ships
with torch's CUDA wheels), with the same arithmetic. Results do not depend on the chunk sizes.

**Float mode** (:class:`~hwsim.sim.network.FloatLIF`): per step ``u = lam * (u - v_th * s) + (I + b)``,
``s = u >= v_th`` (soft reset; zero reset ``lam * (u * (1 - s))``), every operation a separate float32 rounding
in the CPU kernel's order (:mod:`hwsim.sim.kernels.lif`), so u is bit-identical wherever the synaptic sums are
(weights that are multiples of a power of two, as in the tests); otherwise the sums differ from the kernel's
event order by float32 rounding (relative ~1e-7 per sum), and a spike can differ only where u lies that close to
the threshold. TF32 is switched off for the run (torch's default cuDNN convolutions round inputs to TF32).

**Fixed mode** (:class:`~hwsim.sim.network.LoihiLIF`): integer sums of Lava's effective weights, exact: dense
sums in float32 when every output's ``sum |w|`` is below 2**24 (every partial sum is then an integer float32
holds exactly, in any order), else in float64; conv sums always in float64 and rounded (exact whatever
convolution algorithm the library picks, Winograd and FFT included: its error stays far below 0.5), pool sums as
window counts times the tap weight; then in int64 the shift by
``weight_exp``, conv's signed 24-bit wrap, the int32 channel, Lava's one-step delay, and per step
``u <- trunc0(u * (4095 - du)) + (a << 6)`` with the 24-bit wrap of u, ``v <- clip(trunc0(v * (4096 - dv)) + u +
bias, +-(2**23 - 1))``, spike iff ``v > vth << 6``, ``v <- 0`` after a spike; every int32 wrap-around of the CPU
kernel is applied where it can occur (a layer whose ``|a| << 6`` is provably at most 2**23 skips the wraps that
are then no-ops).

**Recurrent layers and adaptive neurons** (:class:`~hwsim.sim.network.Recurrent`, and dense layers of
:class:`~hwsim.sim.network.FloatALIF` neurons) run step by step: the feed-forward input of a block of steps is one
dense op as above, the recurrent input of step t one matrix product of the layer's spikes of step t - 1 (float;
fixed point: of step t, reaching the neurons one step later through Lava's delay, each Dense output shifted and
wrapped on its own, then summed as int32), then the neurons of that step (float:
``u = lam * w + ((I_ff + I_rec) + b)``, ``a = rho * a + s``, ``s = u >= v_th + beta * a``; fixed: as below), on
torch ops whatever ``lif`` says; counts as the CPU engine's (``sop_recurrent`` the recurrent part of ``sop``; an
update is active when its feed-forward or its recurrent input is non-zero).

**Counts** come from the spike tensors: SOPs are the input spikes per position times their fan-out (dense:
``n_out``; conv: valid taps x output channels, borders and strides exact; pool: windows covering the position),
active updates the neurons whose synaptic input that step was non-zero, all summed in int64 on the device.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.errors import Failure, InputError, NetworkError, UsageError, one_line
from hwsim.sim.counts import Counts, LayerCounts, add_inference_bytes
from hwsim.sim.engine import SimResult, check_input, check_shape, lava_effective_weights
from hwsim.sim.network import Conv2d, Dense, Flatten, FloatALIF, FloatLIF, LoihiLIF, Network, Recurrent, SumPool2d

if TYPE_CHECKING:
    import torch

U24 = 1 << 23  # half the 24-bit range of u and of Lava Conv's output
V_MAX = (1 << 23) - 1  # v saturates at +-V_MAX
I32 = 1 << 31
EXACT_FLOAT32 = 1 << 24  # integer sums below this are exact in float32 whatever the order
DEFAULT_CPU_MEMORY = 1 << 30  # bytes a run may hold at once on CPU tensors (default)
CUDA_MEMORY_SHARE = 0.5  # share of the free device memory a CUDA run may hold (default)


class TorchEngineError(UsageError):
    """The torch engine cannot run as asked (no torch, no CUDA device, a bad option); the message names the
    argument."""


def _torch():
    """torch, imported on first use (the simulator core never loads it unless this engine runs)."""
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a dependency
        raise TorchEngineError(f"engine 'torch' needs torch, which cannot be imported here: {err}") from None
    import hwsim.sim.threads

    hwsim.sim.threads.apply_to_torch()
    return torch


def resolve_device(device: str | Any) -> torch.device:
    """``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``) as a usable ``torch.device``;
    :class:`TorchEngineError` naming the argument when it is not one or CUDA is not at hand."""
    torch = _torch()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise TorchEngineError(f"device {device!r} is not a torch device; expected cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise TorchEngineError(f"device {device!r}: the torch engine runs on cpu or cuda, not {dev.type}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TorchEngineError(f"device {device!r}: torch sees no CUDA device here (use device 'cpu')")
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise TorchEngineError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
        dev = torch.device("cuda", index)
    return dev


LIF_KINDS = ("auto", "torch", "triton")


def _triton():
    """:mod:`hwsim.sim.triton_lif`, imported on first use."""
    from hwsim.sim import triton_lif

    return triton_lif


def resolve_lif(lif: str, device: torch.device) -> str:
    """``"torch"`` or ``"triton"``: how the neurons run (see :class:`TorchEngine`); :class:`TorchEngineError` when
    ``lif`` is unknown or Triton cannot serve the device."""
    if lif not in LIF_KINDS:
        raise TorchEngineError(f"lif {lif!r} unknown; expected one of {', '.join(LIF_KINDS)}")
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    usable = _triton().available() and (device.type == "cuda" or interpreted)
    if lif == "triton" and not usable:
        raise TorchEngineError(f"lif 'triton' on {device}: " + ("Triton is not installed" if not _triton().available()
                               else "Triton runs on CUDA (or on CPU tensors under TRITON_INTERPRET=1)"))
    if lif == "auto":
        return "triton" if usable and device.type == "cuda" else "torch"
    return lif


@contextlib.contextmanager
def ieee_float32():
    """Full float32 matrix products and convolutions for the duration (no TF32), restoring the settings after.

    Through torch's legacy flags (``allow_tf32``) unless the caller set the newer ``fp32_precision`` ones (torch
    then refuses to read the legacy flags, and would refuse a mix): the settings are read and written through the
    API they were set with. Process-wide torch settings: another thread using torch meanwhile sees them too."""
    torch = _torch()
    backends = torch.backends
    try:
        targets = [(owner, name, getattr(owner, name), False)
                   for owner, name in ((backends.cuda.matmul, "allow_tf32"), (backends.cudnn, "allow_tf32"))]
    except RuntimeError:  # set through the new API
        targets = [(owner, "fp32_precision", owner.fp32_precision, "ieee")
                   for owner in (backends.cuda.matmul, backends.cudnn.conv)]
    done = []
    try:
        for owner, name, old, value in targets:
            setattr(owner, name, value)
            done.append((owner, name, old))
        yield
    finally:
        for owner, name, old in reversed(done):
            setattr(owner, name, old)


@dataclass
class TorchLayer:
    """A neuron layer prepared for torch (internal). Shapes channels first; ``weight`` on the device in the dtype
    the sums are done in; ``fanout`` the SOPs per input spike, ``(H, W)`` int64 for conv/pool (same for every
    channel), None for dense (``n_out`` each); ``bound`` an upper bound of ``|a|`` (fixed mode, after the shift;
    a recurrent layer's two Dense outputs together); ``recurrent`` the recurrent weights ``(n_out, n_out)`` on the
    device (as ``weight``), or None."""

    layer: Dense | Recurrent | Conv2d | SumPool2d
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: Any
    bias: Any
    fanout: Any
    bound: int = 0
    recurrent: Any = None

    @property
    def stepwise(self) -> bool:
        """Recurrent synapses or adaptive neurons: the layer runs step by step (:func:`recurrent_layer`)."""
        return self.recurrent is not None or isinstance(self.layer.neuron, FloatALIF)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def narrow(self) -> bool:
        """Fixed mode: ``|a << 6| <= 2**23``, so u stays in 24 bits and no int32 wrap-around can occur."""
        return self.bound * 64 <= U24


def axis_fanout(size: int, out_size: int, kernel: int, stride: int, padding: int) -> np.ndarray:
    """Per input coordinate along one axis, how many (output coordinate, kernel tap) pairs read it, ``(size,)``
    int64 (a 2-D layer's fan-out per position is the product of its two axes')."""
    counts = np.zeros(size, np.int64)
    for o in range(out_size):
        for k in range(kernel):
            i = o * stride - padding + k
            if 0 <= i < size:
                counts[i] += 1
    return counts


def _dense_weights(weight: np.ndarray, fixed: bool, device: torch.device) -> tuple[Any, int]:
    """Dense weights ``(n_out, n_in)`` on ``device`` and, fixed mode, the largest ``sum |w|`` of an output (0 in
    float mode): Lava's effective weights in float32 when every sum is exact there, else float64."""
    torch = _torch()
    w = lava_effective_weights(weight).astype(np.int64) if fixed else weight
    total = int(np.abs(w).sum(axis=1).max(initial=0)) if fixed else 0
    dtype = torch.float32 if not fixed or total < EXACT_FLOAT32 else torch.float64
    return torch.as_tensor(np.ascontiguousarray(w), dtype=dtype, device=device), total


def _shifted_bound(total: int, weight_exp: int) -> int:
    """Upper bound of ``|x shifted by weight_exp|`` for ``|x| <= total`` (arithmetic right shift rounds down)."""
    if weight_exp >= 0:
        return total << weight_exp
    return -(-total >> -weight_exp)


def prepare_layers(network: Network, device: torch.device) -> list[TorchLayer]:
    """Every neuron layer of ``network`` with its weights, bias and fan-out on ``device`` (Flatten folds away:
    tensors stay channels first, so a dense layer after a spatial one reads them flattened as torch does)."""
    torch = _torch()
    fixed = network.mode == "fixed"
    plans = []
    for layer, (in_shape, out_shape) in zip(network.layers, network.layer_shapes()):
        if isinstance(layer, Flatten):
            continue
        n_in = int(np.prod(in_shape))
        if n_in >= 2**23:
            raise NetworkError(f"layer {layer.name}: {n_in} inputs; the int32 accumulators are exact up to 2**23")
        bias = None
        if layer.bias is not None:
            per_channel = layer.bias.astype(np.int64) << layer.neuron.bias_exp if fixed else layer.bias
            shape = (-1,) + (1,) * (len(out_shape) - 1)
            bias = torch.as_tensor(np.ascontiguousarray(per_channel).reshape(shape),
                                   dtype=torch.int64 if fixed else torch.float32, device=device)
        if isinstance(layer, (Dense, Recurrent)):
            weight, total = _dense_weights(layer.weight, fixed, device)
            plan = TorchLayer(layer, "dense", in_shape, out_shape, weight, bias, None,
                              _shifted_bound(total, int(layer.weight_exp)))
            if isinstance(layer, Recurrent):
                plan.recurrent, rec_total = _dense_weights(layer.recurrent, fixed, device)
                plan.bound += _shifted_bound(rec_total, int(layer.weight_exp))
        else:
            c, h, w_in = in_shape
            if isinstance(layer, Conv2d):
                o, _, kh, kw = layer.weight.shape
                stride, pad, per_tap = layer.stride, layer.padding, o
                weight = torch.as_tensor(np.ascontiguousarray(layer.weight),
                                         dtype=torch.float64 if fixed else torch.float32, device=device)
                total = int(np.abs(layer.weight.astype(np.int64)).reshape(o, -1).sum(axis=1).max()) if fixed else 0
                kind = "conv"
            else:
                kh = kw = layer.kernel
                stride, pad, per_tap = layer.stride, 0, 1
                weight = int(layer.weight) if fixed else float(np.float32(layer.weight))
                total = abs(int(layer.weight)) * kh * kw if fixed else 0
                kind = "pool"
            fan = np.outer(axis_fanout(h, out_shape[1], kh, stride, pad),
                           axis_fanout(w_in, out_shape[2], kw, stride, pad)) * per_tap
            plan = TorchLayer(layer, kind, in_shape, out_shape, weight, bias,
                              torch.as_tensor(fan, dtype=torch.int64, device=device),
                              min(_shifted_bound(total, int(layer.weight_exp)), U24))
        plans.append(plan)
    return plans


# ---------------------------------------------------------------------------------------------------------
# Synaptic input of a block of steps: one dense op over (steps x samples)
# ---------------------------------------------------------------------------------------------------------
def _dense_op(plan: TorchLayer, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The layer's weighted sums for spikes ``x`` ``(n, bc, *in_shape)`` in ``dtype``: ``(n, bc, *out_shape)``."""
    torch = _torch()
    functional = torch.nn.functional
    n, bc = x.shape[:2]
    flat = x.reshape(n * bc, *plan.in_shape).to(dtype)
    layer = plan.layer
    if plan.kind == "dense":
        out = functional.linear(flat, plan.weight)
    elif plan.kind == "conv":
        out = functional.conv2d(flat, plan.weight, stride=layer.stride, padding=layer.padding)
    else:  # a plain sum over each window (divisor 1): exact integer counts
        out = functional.avg_pool2d(flat, layer.kernel, layer.stride, divisor_override=1)
    return out.reshape(n, bc, *plan.out_shape)


def float_current(plan: TorchLayer, x: torch.Tensor) -> torch.Tensor:
    """Float mode: synaptic input ``I`` (n, bc, *out_shape) float32 of the spikes ``x`` (n, bc, *in_shape)."""
    out = _dense_op(plan, x, _torch().float32)
    if plan.kind == "pool":
        out.mul_(plan.weight)
    return out.contiguous()


def fixed_current(plan: TorchLayer, x: torch.Tensor) -> torch.Tensor:
    """Fixed mode: what the synapses send the neurons, ``a`` (n, bc, *out_shape) int64 holding int32 values, for
    the spikes ``x`` (n, bc, *in_shape): exact integer sums of Lava's effective weights, shifted by
    ``weight_exp`` (arithmetic), conv/pool output wrapped to signed 24 bit, then wrapped to int32."""
    torch = _torch()
    layer = plan.layer
    if plan.kind == "pool":
        acc = _dense_op(plan, x, torch.float32).to(torch.int64).mul_(plan.weight)
    else:
        acc = _dense_op(plan, x, plan.weight.dtype)
        if acc.dtype == torch.float64:
            acc.round_()  # exact sums; a convolution algorithm's rounding error is far below 0.5
        acc = acc.to(torch.int64)
    _shift_(acc, int(layer.weight_exp))
    if plan.kind != "dense":
        acc.add_(U24).bitwise_and_((1 << 24) - 1).sub_(U24)
    return wrap32_(acc)


def _shift_(acc: torch.Tensor, exp: int) -> torch.Tensor:
    """``acc`` (int64) shifted by a weight exponent in place: left if > 0, arithmetic right if < 0."""
    if exp > 0:
        acc.bitwise_left_shift_(exp)
    elif exp < 0:
        acc.bitwise_right_shift_(-exp)
    return acc


def delayed_fixed_current(plan: TorchLayer, s_in: torch.Tensor, t0: int, t1: int) -> torch.Tensor:
    """What the neurons of steps ``t0:t1`` receive, ``(t1 - t0, bc, *out_shape)`` int64: Lava's one-step delay,
    so step t sees the synapses' output for the input spikes of step t - 1 (nothing at step 0)."""
    torch = _torch()
    a = torch.zeros((t1 - t0, s_in.shape[1], *plan.out_shape), dtype=torch.int64, device=s_in.device)
    first = max(t0, 1)  # the first step of the block that receives anything
    if first < t1:
        a[first - t0:] = fixed_current(plan, s_in[first - 1:t1 - 1])
    return a


def wrap32_(x: torch.Tensor) -> torch.Tensor:
    """Two's complement wrap of int64 ``x`` to the int32 range, in place (as numpy's int32 store)."""
    return x.add_(I32).bitwise_and_((1 << 32) - 1).sub_(I32)


# ---------------------------------------------------------------------------------------------------------
# The neurons, step by step over a block of steps
# ---------------------------------------------------------------------------------------------------------
class FloatState:
    """Float LIF state of one batch chunk: ``w`` = ``u - v_th*s`` (soft) or ``u*(1 - s)`` (zero reset) of the
    last step, ``tmp`` and ``keep`` scratch; all ``(bc, *out_shape)`` float32."""

    def __init__(self, shape: tuple[int, ...], device: torch.device):
        torch = _torch()
        self.w = torch.zeros(shape, dtype=torch.float32, device=device)
        self.tmp = torch.empty_like(self.w)
        self.keep = torch.empty_like(self.w)


def float_steps(neuron: FloatLIF, state: FloatState, current: torch.Tensor, spikes: torch.Tensor) -> None:
    """Run the float LIF over the steps of ``current`` (n, bc, *shape) float32, synaptic input plus bias, which
    is overwritten with u (before reset) step by step; spikes to ``spikes`` (n, bc, *shape) float32 0/1.
    Operation by operation as :func:`hwsim.sim.kernels.lif.lif_float_step` (each a float32 rounding)."""
    torch = _torch()
    lam, v_th = float(np.float32(neuron.lam)), float(np.float32(neuron.v_th))
    soft = neuron.reset == "soft"
    w, tmp, keep = state.w, state.tmp, state.keep
    for t in range(current.shape[0]):
        u, s = current[t], spikes[t]
        torch.mul(w, lam, out=tmp)
        torch.add(tmp, u, out=u)  # u = lam * w + (I + b)
        torch.ge(u, v_th, out=s)
        if soft:
            torch.sub(u, s, alpha=v_th, out=w)  # u - v_th * s (the product is exact: s is 0 or 1)
        else:
            torch.lt(u, v_th, out=keep)
            torch.mul(u, keep, out=w)


class FixedState:
    """Fixed-point LIF state of one batch chunk: ``uv`` (2, bc, *out_shape) int64 holding int32 values, ``u`` and
    ``v`` its two halves; scratch ``cur``, ``q``, ``volt`` (bc, *out_shape)."""

    def __init__(self, shape: tuple[int, ...], device: torch.device):
        torch = _torch()
        self.uv = torch.zeros((2, *shape), dtype=torch.int64, device=device)
        self.u, self.v = self.uv[0], self.uv[1]
        self.cur = torch.empty_like(self.u)
        self.q = torch.empty_like(self.u)
        self.volt = torch.empty_like(self.u)
        self.zero = torch.zeros((), dtype=torch.int64, device=device)


def _trunc_decay(x: torch.Tensor, factor: int, out: torch.Tensor) -> torch.Tensor:
    """``sign(x * factor) * (|x * factor| >> 12)`` into ``out`` (Lava's decay, rounding toward zero)."""
    torch = _torch()
    torch.mul(x, factor, out=out)
    return torch.div(out, 4096, rounding_mode="trunc", out=out)


def fixed_steps(plan: TorchLayer, state: FixedState, act: torch.Tensor, spikes: torch.Tensor,
                record: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    """Run the fixed-point LIF over the steps of ``act`` = wrap32(a << 6) (n, bc, *shape) int64; spikes to
    ``spikes`` (n, bc, *shape) bool; with ``record`` = ``(v_rec, u_rec)`` (n, bc, *shape) int32 also v after
    reset and u. Operation by operation as :func:`hwsim.sim.kernels.lif.lif_fixed_step`."""
    torch = _torch()
    neuron: LoihiLIF = plan.layer.neuron
    u_decay, v_decay = 4095 - neuron.du, 4096 - neuron.dv
    vth_eff = neuron.vth << 6
    wide = not plan.narrow
    u, v, q, volt = state.u, state.v, state.q, state.volt
    for t in range(act.shape[0]):
        if u_decay:
            cur = torch.add(_trunc_decay(u, u_decay, state.cur), act[t], out=state.cur)
        else:
            cur = act[t]  # already wrapped to int32
        if wide and u_decay:
            wrap32_(cur)
        # the single 24-bit wrap: cur > 2**23 -> cur - 2**24; cur <= -2**23 -> cur + 2**24 (q = -1, 0 or 1)
        torch.add(cur, U24 - 1, out=q).bitwise_right_shift_(24).clamp_(-1, 1)
        torch.sub(cur, q, alpha=1 << 24, out=u)
        if v_decay != 4096:
            torch.add(_trunc_decay(v, v_decay, volt), u, out=volt)
        else:
            torch.add(v, u, out=volt)
        if plan.bias is not None:
            volt.add_(plan.bias)
        if wide:
            wrap32_(volt)
        volt.clamp_(-V_MAX, V_MAX)
        torch.gt(volt, vth_eff, out=spikes[t])
        torch.where(spikes[t], state.zero, volt, out=v)
        if record is not None:
            record[0][t].copy_(v)
            record[1][t].copy_(u)


# ---------------------------------------------------------------------------------------------------------
# Recurrent layers and adaptive neurons, step by step
# ---------------------------------------------------------------------------------------------------------
def alif_step(neuron: FloatLIF | FloatALIF, state: FloatState, x: torch.Tensor, s_prev: torch.Tensor,
              spikes: torch.Tensor) -> None:
    """One float step of recurrent or adaptive neurons: ``x`` (bc, n) float32, the synaptic input plus bias,
    overwritten with u (before reset); ``s_prev`` (bc, n) the spikes of the step before; spikes to ``spikes``.
    Operation by operation as :func:`hwsim.sim.kernels.lif.alif_float_step`; ``state.a`` the adaptation (ALIF)."""
    torch = _torch()
    lam, v_th = float(np.float32(neuron.lam)), float(np.float32(neuron.v_th))
    torch.mul(state.w, lam, out=state.tmp)
    torch.add(state.tmp, x, out=x)  # u = lam * w + x
    if isinstance(neuron, FloatALIF):
        state.a.mul_(float(np.float32(neuron.rho))).add_(s_prev)  # a = rho * a + s[t-1]
        torch.mul(state.a, float(np.float32(neuron.beta)), out=state.keep).add_(v_th)  # A = v_th + beta * a
        torch.ge(x, state.keep, out=spikes)
    else:
        torch.ge(x, v_th, out=spikes)
    if neuron.reset == "soft":
        torch.sub(x, spikes, alpha=v_th, out=state.w)  # u - v_th * s (the base threshold)
    else:
        torch.mul(x, torch.sub(1.0, spikes, out=state.keep), out=state.w)  # u * (1 - s)


def fixed_recurrent_current(plan: TorchLayer, s: torch.Tensor) -> torch.Tensor:
    """Fixed mode: what the recurrent Dense sends for the layer's spikes ``s`` (bc, n) bool: the exact sums of
    Lava's effective recurrent weights shifted by ``weight_exp``, wrapped to int32, ``(bc, n)`` int64."""
    torch = _torch()
    acc = torch.nn.functional.linear(s.to(plan.recurrent.dtype), plan.recurrent)
    if acc.dtype == torch.float64:
        acc.round_()
    return wrap32_(_shift_(acc.to(torch.int64), int(plan.layer.weight_exp)))


def recurrent_layer(plan: TorchLayer, s_in: torch.Tensor, tally: LayerTally, block: int,
                    recs: tuple[np.ndarray, np.ndarray | None] | None, samples: tuple[int, int],
                    fixed: bool) -> torch.Tensor:
    """A layer with recurrent synapses or adaptive neurons over all steps of a batch chunk, step by step (as
    ``TorchEngine._layer``, same arguments and result): the feed-forward input one op per block of steps, the
    recurrent input and the neurons one step at a time (module docstring)."""
    torch = _torch()
    steps, bc = s_in.shape[:2]
    shape = (bc, plan.n_out)
    device = s_in.device
    tally.add_inputs(plan, s_in)
    s_out = torch.zeros((steps, *shape), dtype=torch.bool if fixed else torch.float32, device=device)
    b0, b1 = samples
    if fixed:
        state = FixedState(shape, device)
        pending = torch.zeros(shape, dtype=torch.int64, device=device)  # Lava's a_in of the next step
        busy = torch.zeros(shape, dtype=torch.bool, device=device)
    else:
        state = FloatState(shape, device)
        state.a = torch.zeros(shape, dtype=torch.float32, device=device)
        none = torch.zeros(shape, dtype=torch.float32, device=device)
    for t0 in range(0, steps, block):
        t1 = min(steps, t0 + block)
        if fixed:
            ff = fixed_current(plan, s_in[t0:t1])
            rec = None if recs is None else torch.empty((2, t1 - t0, *shape), dtype=torch.int32, device=device)
            for t in range(t0, t1):
                tally.add_active_step(t, busy)
                act = pending.bitwise_left_shift_(6) if plan.narrow else wrap32_(pending.bitwise_left_shift_(6))
                k = t - t0
                fixed_steps(plan, state, act[None], s_out[t:t + 1], None if rec is None else
                            (rec[0, k:k + 1], rec[1, k:k + 1]))
                a_rec = fixed_recurrent_current(plan, s_out[t]) if plan.recurrent is not None else None
                busy = ff[k] != 0 if a_rec is None else (ff[k] != 0) | (a_rec != 0)
                pending = ff[k].clone() if a_rec is None else wrap32_(ff[k] + a_rec)
            if recs is not None:
                recs[0][t0:t1, b0:b1] = rec[0].cpu().numpy()
                recs[1][t0:t1, b0:b1] = rec[1].cpu().numpy()
        else:
            current = float_current(plan, s_in[t0:t1])  # feed-forward, no bias yet: (I_ff + I_rec) + b
            for t in range(t0, t1):
                x, prev = current[t - t0], s_out[t - 1] if t > 0 else none
                busy = x != 0
                if plan.recurrent is not None:
                    r = torch.nn.functional.linear(prev, plan.recurrent)
                    busy |= r != 0
                    x.add_(r)
                tally.add_active_step(t, busy)
                if plan.bias is not None:
                    x.add_(plan.bias.reshape(-1))
                alif_step(plan.layer.neuron, state, x, prev, s_out[t])
            if recs is not None:
                recs[0][t0:t1, b0:b1] = current.cpu().numpy()
    tally.add_recurrent(plan, s_out, delayed=not fixed)
    return s_out


# ---------------------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------------------
class LayerTally:
    """Device-side int64 counters of one layer, summed over batch chunks: per step ``sop``, ``spikes_in``,
    ``spikes_out``, ``active`` (T,); per neuron ``neuron_spikes``, ``neuron_active`` (n_out,), and
    ``input_spikes`` (n_in,) for the first layer."""

    def __init__(self, plan: TorchLayer, steps: int, device: torch.device, first: bool):
        torch = _torch()
        zeros = lambda n: torch.zeros(n, dtype=torch.int64, device=device)  # noqa: E731
        self.sop, self.spikes_in, self.spikes_out, self.active = (zeros(steps) for _ in range(4))
        self.sop_recurrent = zeros(steps)
        self.neuron_spikes, self.neuron_active = zeros(plan.n_out), zeros(plan.n_out)
        self.input_spikes = zeros(plan.n_in) if first else None

    def add_inputs(self, plan: TorchLayer, s_in: torch.Tensor) -> None:
        """SOPs (and, first layer, input spikes) of the input spikes ``s_in`` (T, bc, *in_shape)."""
        torch = _torch()
        if plan.kind == "dense":
            per_step = torch.count_nonzero(s_in.reshape(s_in.shape[0], -1), dim=1)
            self.sop += per_step * plan.n_out
        else:  # spikes per step and position, times that position's fan-out
            per_position = torch.count_nonzero(s_in, dim=(1, 2))
            self.sop += (per_position * plan.fanout).sum(dim=(1, 2))
            per_step = per_position.sum(dim=(1, 2))
        if self.input_spikes is not None:
            self.spikes_in += per_step
            self.input_spikes += torch.count_nonzero(s_in, dim=1).sum(dim=0).reshape(-1)

    def add_active(self, t0: int, current: torch.Tensor) -> None:
        """Active updates (non-zero synaptic input) of the steps ``t0:t0+n`` of ``current`` (n, bc, *shape)."""
        torch = _torch()
        busy = current != 0
        self.active[t0:t0 + current.shape[0]] += torch.count_nonzero(busy.reshape(busy.shape[0], -1), dim=1)
        self.neuron_active += torch.count_nonzero(busy, dim=1).sum(dim=0).reshape(-1)

    def add_active_step(self, t: int, busy: torch.Tensor) -> None:
        """Active updates of step ``t``: ``busy`` (bc, n) bool, the neurons whose input was non-zero."""
        torch = _torch()
        self.active[t] += torch.count_nonzero(busy)
        self.neuron_active += torch.count_nonzero(busy, dim=0)

    def add_recurrent(self, plan: TorchLayer, s_out: torch.Tensor, delayed: bool) -> None:
        """SOPs of the recurrent synapses, from the layer's spikes ``s_out`` (T, bc, n): each spike reads ``n_out``
        weights at the step after it (float) or at its own step (fixed, where Lava's Dense reads it)."""
        if plan.recurrent is None:
            return
        torch = _torch()
        per_step = torch.count_nonzero(s_out.reshape(s_out.shape[0], -1), dim=1) * plan.n_out
        if delayed:  # step t reads the spikes of step t - 1 (none at step 0)
            per_step = torch.cat([torch.zeros_like(per_step[:1]), per_step[:-1]])
        self.sop_recurrent += per_step
        self.sop += per_step

    def add_outputs(self, s_out: torch.Tensor) -> None:
        torch = _torch()
        self.spikes_out += torch.count_nonzero(s_out.reshape(s_out.shape[0], -1), dim=1)
        self.neuron_spikes += torch.count_nonzero(s_out, dim=1).sum(dim=0).reshape(-1)


def _layer_counts(plan: TorchLayer, tally: LayerTally, previous: LayerCounts | None, steps: int, batch: int,
                  mode: str) -> LayerCounts:
    """The :class:`LayerCounts` of one layer from its device tally (conventions of the CPU engine)."""
    layer = plan.layer
    lc = LayerCounts(layer.name, layer.kind, plan.n_in, plan.n_out, steps)
    ev = lc.events
    host = lambda x: x.cpu().numpy().astype(np.int64)  # noqa: E731
    if previous is None:
        ev["spikes_in"][:] = host(tally.spikes_in)
        lc.input_spikes = host(tally.input_spikes)
    else:  # this layer's input spikes are the previous layer's output spikes
        ev["spikes_in"][:] = previous.events["spikes_out"]
        lc.input_spikes = previous.neuron_spikes.copy()
    ev["sop"][:] = host(tally.sop)
    ev["sop_recurrent"][:] = host(tally.sop_recurrent)
    ev["spikes_out"][:] = host(tally.spikes_out)
    ev["neuron_updates_active"][:] = host(tally.active)
    ev["neuron_updates"][:] = batch * plan.n_out
    lc.neuron_spikes = host(tally.neuron_spikes)
    lc.neuron_active = host(tally.neuron_active)
    add_inference_bytes(lc, mode, has_bias=layer.bias is not None, adaptive=isinstance(layer.neuron, FloatALIF))
    return lc


# ---------------------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------------------
class TorchEngine:
    """A network prepared for torch on ``device``. Build once, then :meth:`run` many inputs (as
    :class:`hwsim.sim.engine.Engine`; after changing the network's weights call :meth:`refresh`).

    ``memory_bytes`` bounds what one run holds on the device at once (spike trains of a layer, a block of
    synaptic input and scratch; default: half the free memory on CUDA, 1 GiB on CPU); the batch and the steps are
    cut into chunks to fit, and the results do not depend on the cut. ``lif`` chooses how the neurons run:
    ``"torch"`` op by op, ``"triton"`` one fused kernel per layer and block of steps (:mod:`hwsim.sim.triton_lif`;
    CUDA, or CPU tensors under ``TRITON_INTERPRET=1``), ``"auto"`` Triton on CUDA where it is installed, else torch
    ops (and torch ops from then on if the Triton kernels fail to build, the reason in ``lif_note``); the results are
    the same. After each run ``layer_seconds`` holds the wall time per neuron layer (device synchronised at each
    layer's end), ``chunks`` the ``(batch, steps)`` chunk sizes used.
    """

    def __init__(self, network: Network, device: str | Any = "cpu", memory_bytes: int | None = None,
                 lif: str = "auto"):
        if memory_bytes is not None and (isinstance(memory_bytes, bool) or int(memory_bytes) != memory_bytes
                                         or memory_bytes < 1):
            raise TorchEngineError(f"memory_bytes must be a positive integer, got {memory_bytes!r}")
        self.network = network
        self.device = resolve_device(device)
        self.memory_bytes = memory_bytes
        self.lif = resolve_lif(lif, self.device)
        self.lif_requested = lif
        self.lif_note: str | None = None  # why the Triton kernels were given up, if they were
        self.layer_seconds: list[float] = []
        self.chunks: tuple[int, int] = (0, 0)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the network's weights onto the device."""
        self.plans = prepare_layers(self.network, self.device)

    def _budget(self) -> int:
        if self.memory_bytes is not None:
            return int(self.memory_bytes)
        if self.device.type == "cuda":
            free, _ = _torch().cuda.mem_get_info(self.device)
            return int(free * CUDA_MEMORY_SHARE)
        return DEFAULT_CPU_MEMORY

    def chunk_sizes(self, steps: int, batch: int, record: bool | str) -> tuple[int, int]:
        """``(samples, steps)`` per chunk: half the budget for one layer's input and output spike trains over
        all steps of a batch chunk, half for a block of steps' synaptic input and scratch (and a block's tensors
        under 2**31 elements, the Triton kernels' offsets)."""
        fixed = self.network.mode == "fixed"
        train = max((1 if fixed else 4) * (p.n_in + p.n_out) + (8 if record is True else 0) * p.n_out
                    for p in self.plans)
        block = max((8 * p.n_in + 26 * p.n_out) if fixed else (4 * p.n_in + 6 * p.n_out) for p in self.plans)
        budget = self._budget() // 2
        samples = int(max(1, min(batch, budget // (steps * train))))
        widest = max(p.n_out for p in self.plans)
        block_steps = int(max(1, min(steps, budget // (samples * block), (2**31 - 1) // (samples * widest))))
        return samples, block_steps

    def run(self, spikes: np.ndarray | torch.Tensor, record: bool | str = False,
            time_major: bool | None = None) -> SimResult:
        """Run on 0/1 ``spikes`` ``(T, B, *input_shape)`` (a numpy array, or a torch tensor, on any device);
        returns spikes and exact counts as :meth:`hwsim.sim.engine.Engine.run` (same ``record`` and
        ``time_major``)."""
        if record not in (False, True, "spikes"):
            raise InputError(f"record must be False, True or 'spikes', got {record!r}")
        x = _check_spikes(self.network, spikes, time_major)
        steps, batch = int(x.shape[0]), int(x.shape[1])
        if steps * batch >= 2**31:
            raise InputError(f"T x B = {steps * batch} steps in one run; split the batch (limit 2**31)")
        torch = _torch()
        try:
            with ieee_float32(), torch.no_grad():
                return self._run(x, steps, batch, record)
        except getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError) as err:
            raise Failure(f"the torch engine ran out of memory on {self.device} (budget {self._budget()} bytes): "
                          f"pass a smaller memory_bytes or split the batch ({str(err).splitlines()[0][:200]})"
                          ) from None

    def _run(self, x, steps: int, batch: int, record: bool | str) -> SimResult:
        mode = self.network.mode
        samples, block = self.chunk_sizes(steps, batch, record)
        self.chunks = (samples, block)
        last = len(self.plans) - 1
        keep = [record is not False or k == last for k in range(len(self.plans))]
        out_spikes = [np.zeros((steps, batch, *p.out_shape), np.uint8) if keep[k] else None
                      for k, p in enumerate(self.plans)]
        rec_dtype = np.float32 if mode == "float" else np.int32
        membranes = [np.zeros((steps, batch, *p.out_shape), rec_dtype) for p in self.plans] if record is True else None
        currents = ([np.zeros((steps, batch, *p.out_shape), np.int32) for p in self.plans]
                    if record is True and mode == "fixed" else None)
        tallies = [LayerTally(p, steps, self.device, k == 0) for k, p in enumerate(self.plans)]
        self.layer_seconds = [0.0] * len(self.plans)
        for b0 in range(0, batch, samples):
            b1 = min(batch, b0 + samples)
            s = self._input_chunk(x, b0, b1)
            for k, plan in enumerate(self.plans):
                started = time.perf_counter()
                recs = None if membranes is None else (membranes[k], None if currents is None else currents[k])
                s_out = self._layer(plan, s, tallies[k], block, recs, (b0, b1))
                tallies[k].add_outputs(s_out)
                if keep[k]:
                    out_spikes[k][:, b0:b1] = s_out.to(_torch().uint8).cpu().numpy()
                elif self.device.type == "cuda":
                    _torch().cuda.synchronize(self.device)
                s = s_out
                self.layer_seconds[k] += time.perf_counter() - started
        counts = Counts(timesteps=steps, batch=batch, mode=mode)
        for plan, tally in zip(self.plans, tallies):
            counts.layers.append(_layer_counts(plan, tally, counts.layers[-1] if counts.layers else None, steps,
                                               batch, mode))
        return SimResult(out_spikes, counts, [p.layer.name for p in self.plans], membranes, currents)

    def _input_chunk(self, x, b0: int, b1: int) -> torch.Tensor:
        """Samples ``b0:b1`` of the input on the device: float32 0/1 (float mode) or bool (fixed mode)."""
        torch = _torch()
        dtype = torch.float32 if self.network.mode == "float" else torch.bool
        if isinstance(x, np.ndarray):
            part = torch.from_numpy(np.ascontiguousarray(x[:, b0:b1]))
        else:
            part = x[:, b0:b1]
        part = part.to(self.device, non_blocking=True)
        return part.reshape(part.shape[0], b1 - b0, *self.network.input_shape).to(dtype)

    def _layer(self, plan: TorchLayer, s_in: torch.Tensor, tally: LayerTally, block: int,
               recs: tuple[np.ndarray, np.ndarray | None] | None, samples: tuple[int, int]) -> torch.Tensor:
        """One layer over all steps of a batch chunk: output spikes (T, bc, *out_shape) (float32 0/1 in float mode,
        bool in fixed mode); membranes (and currents) into the host arrays ``recs`` at ``samples``."""
        if plan.stepwise:
            return recurrent_layer(plan, s_in, tally, block, recs, samples, self.network.mode == "fixed")
        torch = _torch()
        steps, bc = s_in.shape[:2]
        shape = (bc, *plan.out_shape)
        tally.add_inputs(plan, s_in)
        fixed = self.network.mode == "fixed"
        s_out = torch.empty((steps, *shape), dtype=torch.bool if fixed else torch.float32, device=self.device)
        state = FixedState(shape, self.device) if fixed else FloatState(shape, self.device)
        b0, b1 = samples
        for t0 in range(0, steps, block):
            t1 = min(steps, t0 + block)
            if fixed:
                a = delayed_fixed_current(plan, s_in, t0, t1)
                tally.add_active(t0, a)
                act = a.bitwise_left_shift_(6) if plan.narrow else wrap32_(a.bitwise_left_shift_(6))
                rec = None if recs is None else torch.empty((2, *act.shape), dtype=torch.int32, device=self.device)
                self._fixed_neurons(plan, state, act, s_out[t0:t1], rec)
                if rec is not None:
                    recs[0][t0:t1, b0:b1] = rec[0].cpu().numpy()
                    recs[1][t0:t1, b0:b1] = rec[1].cpu().numpy()
            else:
                current = float_current(plan, s_in[t0:t1])
                tally.add_active(t0, current)
                if plan.bias is not None:
                    current.add_(plan.bias)
                self._float_neurons(plan.layer.neuron, state, current, s_out[t0:t1])
                if recs is not None:
                    recs[0][t0:t1, b0:b1] = current.cpu().numpy()
        return s_out

    def _float_neurons(self, neuron: FloatLIF, state: FloatState, current: torch.Tensor,
                       spikes: torch.Tensor) -> None:
        if self.lif == "triton" and current.numel() < 2**31 and self._try_triton(lambda: _triton().float_steps(
                float(np.float32(neuron.lam)), float(np.float32(neuron.v_th)), neuron.reset == "soft", state.w,
                current, spikes)):
            return
        float_steps(neuron, state, current, spikes)

    def _fixed_neurons(self, plan: TorchLayer, state: FixedState, act: torch.Tensor, spikes: torch.Tensor,
                       rec: torch.Tensor | None) -> None:
        if self.lif == "triton" and act.numel() < 2**31:  # the kernels' element offsets are int32
            torch = _torch()
            neuron: LoihiLIF = plan.layer.neuron
            params = torch.tensor([4095 - neuron.du, 4096 - neuron.dv, neuron.vth << 6], dtype=torch.int64,
                                  device=self.device)
            bias = None if plan.bias is None else plan.bias.expand(state.u.shape).contiguous()
            if self._try_triton(lambda: _triton().fixed_steps(state.uv, act, spikes.view(torch.uint8), bias, rec,
                                                              params, not plan.narrow)):
                return
        fixed_steps(plan, state, act, spikes, None if rec is None else (rec[0], rec[1]))

    def _try_triton(self, launch) -> bool:
        """Run a Triton launch; True when it ran. With ``lif="auto"`` a kernel that fails to build sends this and
        every later run to the torch ops (nothing was written yet: a build fails before the launch)."""
        try:
            launch()
            return True
        except Exception as err:  # noqa: BLE001 - any build failure: compiler, driver, missing C compiler
            if self.lif_requested == "triton":
                raise TorchEngineError(f"lif 'triton': the Triton kernels failed on {self.device}: "
                                       f"{one_line(str(err), 300)}") from None
            self.lif = "torch"
            self.lif_note = f"Triton kernels failed ({type(err).__name__}: {one_line(str(err), 300)}); torch ops used"
            warnings.warn(f"hwsim torch engine: {self.lif_note}", RuntimeWarning, stacklevel=3)
            return False


def _check_spikes(network: Network, spikes, time_major: bool | None):
    """Validated input: a numpy array through :func:`hwsim.sim.engine.check_input` (uint8 ``(T, B, n_in)``), or a
    torch tensor checked alike on its own device (shape, 0/1 values, the axis guard) and returned as is."""
    torch = _torch()
    if not isinstance(spikes, torch.Tensor):
        return check_input(network, spikes, time_major)
    check_shape(network, tuple(spikes.shape), time_major, "x.movedim(1, 0)")
    if spikes.is_complex():
        raise InputError(f"input spikes must be bool, integer or float 0/1, got dtype {spikes.dtype}")
    if spikes.dtype != torch.bool and bool(((spikes != 0) & (spikes != 1)).any()):
        raise InputError(f"input spikes must be 0/1 values; got dtype {spikes.dtype} with other values")
    return spikes


def simulate(network: Network, spikes: np.ndarray | torch.Tensor, device: str | Any = "cpu",
             record: bool | str = "spikes", time_major: bool | None = None, memory_bytes: int | None = None,
             lif: str = "auto") -> SimResult:
    """One-shot :class:`TorchEngine` run on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``); keeps every layer's
    spikes unless ``record=False`` (as :func:`hwsim.sim.engine.simulate`)."""
    return TorchEngine(network, device, memory_bytes, lif).run(spikes, record=record, time_major=time_major)


ENGINES = ("numba", "torch")


def make_engine(network: Network, engine: str = "numba", device: str = "cpu", memory_bytes: int | None = None):
    """The engine a command asked for: ``"numba"`` (the CPU engine, :class:`hwsim.sim.engine.Engine`; ``device``
    must be cpu) or ``"torch"`` (:class:`TorchEngine` on ``device``). Both have ``run(spikes, record,
    time_major)`` returning a :class:`~hwsim.sim.engine.SimResult` with identical counts."""
    if engine == "numba":
        if str(device) != "cpu":
            raise TorchEngineError(f"device {device!r} needs engine 'torch'; engine 'numba' runs on cpu only")
        from hwsim.sim.engine import Engine

        return Engine(network)
    if engine == "torch":
        return TorchEngine(network, device, memory_bytes)
    raise TorchEngineError(f"engine {engine!r} unknown; expected one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "LIF_KINDS", "TorchEngine", "TorchEngineError", "ieee_float32", "make_engine", "resolve_device",
           "resolve_lif", "simulate"]
