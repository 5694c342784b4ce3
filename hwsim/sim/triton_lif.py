"""Fused LIF kernels in Triton for the torch engine on CUDA (:mod:`hwsim.sim.torch_engine`).

The torch engine's neurons, run op by op, cost a handful of kernel launches per step and layer (float: 4; fixed
point: about 11): at batch 1024 and T = 100 the launches, not the arithmetic, set the time. These kernels run a
layer's neurons over a whole block of steps in one launch: each program owns ``BLOCK`` neurons (of all samples
of the chunk, flattened), keeps their state in registers and walks the steps, reading the synaptic input and
writing the spikes (and the records) of each step. The arithmetic is the CPU kernel's
(:mod:`hwsim.sim.kernels.lif`) operation by operation: float32 with no fused multiply-add (``enable_fp_fusion``
off, as numba compiles it), fixed point in int64 with the same wraps, shifts and clips, so the results are those
of the torch ops they replace (tested against the CPU engine, on CPU tensors through Triton's interpreter,
``TRITON_INTERPRET=1``, and on CUDA).

Importing this module imports Triton when it is installed (it ships with torch's CUDA wheels), never torch.
:func:`available` says whether the kernels exist.
"""

from __future__ import annotations

try:
    import triton
    import triton.language as tl
except Exception:  # noqa: BLE001 - not installed (CPU-only torch) or broken: the torch engine runs torch ops
    triton = None

BLOCK = 1024  # neurons per program


def available() -> bool:
    """True when Triton is importable (the kernels below exist)."""
    return triton is not None


if triton is not None:

    @triton.jit(do_not_specialize=["n", "steps"])  # one build per constexpr combination, whatever the sizes
    def _float_block(cur_ptr, spk_ptr, w_ptr, n, steps, lam, v_th, SOFT: tl.constexpr, BLOCK: tl.constexpr):
        """Float LIF over ``steps`` steps of ``n`` neurons: ``cur`` (steps, n) float32 synaptic input plus bias,
        overwritten with u (before reset); ``spk`` (steps, n) float32 0/1; ``w`` (n,) the reset membrane of the
        last step (``u - v_th*s`` or ``u*(1 - s)``), read and written back."""
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        w = tl.load(w_ptr + offs, mask=mask, other=0.0)
        cur = cur_ptr + offs
        spk = spk_ptr + offs
        for _ in range(steps):
            u = w * lam + tl.load(cur, mask=mask, other=0.0)  # two roundings: fp fusion is off at launch
            s = tl.where(u >= v_th, 1.0, 0.0)
            tl.store(cur, u, mask=mask)
            tl.store(spk, s, mask=mask)
            if SOFT:
                w = u - v_th * s  # the product is exact (s is 0 or 1)
            else:
                w = u * (1.0 - s)
            cur += n
            spk += n
        tl.store(w_ptr + offs, w, mask=mask)

    @triton.jit(do_not_specialize=["n", "steps"])
    def _fixed_block(act_ptr, spk_ptr, state_ptr, bias_ptr, rec_ptr, params_ptr, n, steps, HAS_BIAS: tl.constexpr,
                     RECORD: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):
        """Fixed-point LIF over ``steps`` steps of ``n`` neurons. ``act`` (steps, n) int64 = wrap32(a << 6);
        ``spk`` (steps, n) uint8; ``state`` (2, n) int64 u then v, read and written back; ``bias`` (n,) int64
        (bias_mant << bias_exp); ``rec`` (2, steps, n) int32 v after reset then u, when ``RECORD``; ``params``
        int64 ``(4095 - du, 4096 - dv, vth << 6)``. ``WIDE``: apply the int32 wraps (no-ops on narrow layers)."""
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        u_decay = tl.load(params_ptr)
        v_decay = tl.load(params_ptr + 1)
        vth = tl.load(params_ptr + 2)
        u = tl.load(state_ptr + offs, mask=mask, other=0)
        v = tl.load(state_ptr + n + offs, mask=mask, other=0)
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs, mask=mask, other=0)
        act = act_ptr + offs
        spk = spk_ptr + offs
        v_rec = rec_ptr + offs
        u_rec = rec_ptr + steps * n + offs  # the caller keeps steps * n below 2**31
        for _ in range(steps):
            p = u * u_decay
            cur = ((p + ((p >> 63) & 4095)) >> 12) + tl.load(act, mask=mask, other=0)
            if WIDE:
                cur = ((cur + 2147483648) & 4294967295) - 2147483648
            wrapped = tl.where(cur > 8388608, cur - 16777216, cur)  # the single 24-bit wrap of u
            u = tl.where(wrapped <= -8388608, cur + 16777216, wrapped)
            p = v * v_decay
            volt = ((p + ((p >> 63) & 4095)) >> 12) + u
            if HAS_BIAS:
                volt += bias
            if WIDE:
                volt = ((volt + 2147483648) & 4294967295) - 2147483648
            volt = tl.minimum(tl.maximum(volt, -8388607), 8388607)
            fired = volt > vth
            v = tl.where(fired, 0, volt)
            tl.store(spk, fired.to(tl.uint8), mask=mask)
            if RECORD:
                tl.store(v_rec, v.to(tl.int32), mask=mask)
                tl.store(u_rec, u.to(tl.int32), mask=mask)
                v_rec += n
                u_rec += n
            act += n
            spk += n
        tl.store(state_ptr + offs, u, mask=mask)
        tl.store(state_ptr + n + offs, v, mask=mask)


def _grid(n: int) -> tuple[int]:
    return ((n + BLOCK - 1) // BLOCK,)


def float_steps(lam: float, v_th: float, soft: bool, w, current, spikes) -> None:
    """The float LIF over the steps of ``current`` (n, ...) float32 (overwritten with u), spikes into ``spikes``
    (same shape, float32), state ``w`` (one step's shape, float32): as
    :func:`hwsim.sim.torch_engine.float_steps`, in one launch. Tensors contiguous, on one CUDA device (or on CPU
    under ``TRITON_INTERPRET=1``)."""
    n = w.numel()
    if current.numel() >= 2**31:
        raise ValueError(f"triton_lif.float_steps: {current.numel()} elements in one block; at most 2**31 - 1")
    _float_block[_grid(n)](current, spikes, w, n, current.shape[0], lam, v_th, SOFT=soft, BLOCK=BLOCK,
                           **_launch_options())


def fixed_steps(state, act, spikes, bias, record, params, wide: bool) -> None:
    """The fixed-point LIF over the steps of ``act`` (n, ...) int64; ``spikes`` uint8 (same shape); ``state``
    (2, ...) int64 u and v; ``bias`` per neuron int64 or None; ``record`` (2, n, ...) int32 or None; ``params``
    int64 ``(4095 - du, 4096 - dv, vth << 6)``: as :func:`hwsim.sim.torch_engine.fixed_steps`, in one launch.
    Element offsets are int32: ``act`` (and ``record``'s half) must hold fewer than 2**31 elements."""
    n = state.numel() // 2
    if act.numel() >= 2**31:
        raise ValueError(f"triton_lif.fixed_steps: {act.numel()} elements in one block; at most 2**31 - 1")
    _fixed_block[_grid(n)](act, spikes, state, bias if bias is not None else state, record if record is not None
                           else state, params, n, act.shape[0], HAS_BIAS=bias is not None, RECORD=record is not None,
                           WIDE=wide, BLOCK=BLOCK, **_launch_options())


def _launch_options() -> dict:
    """``enable_fp_fusion=False`` (no contraction of ``a * b + c`` into one rounding), where the compiler takes it
    (the interpreter takes no compile options)."""
    import os

    return {} if os.environ.get("TRITON_INTERPRET") == "1" else {"enable_fp_fusion": False}
