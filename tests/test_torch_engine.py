"""The torch engine equals the CPU engine: fixed point bit for bit (spikes, v, u) and every counter identical;
float mode within float32 rounding of the synaptic sums (spikes equal where no membrane lies within 1e-5 of the
threshold, exactly equal with power-of-two weights); results independent of the chunking.

Runs on CPU tensors (CI); ``HWSIM_TORCH_DEVICE=cuda`` runs the same tests on a GPU (``tests/test_cuda.py`` does
that too, next to the training rules); ``HWSIM_TORCH_LIF=torch|triton`` picks the neuron kernels (default auto:
Triton on CUDA where installed). The Triton kernels are also checked on CPU tensors through Triton's interpreter
where Triton is installed. Without pytest (a bare GPU machine) run ``python -m
tests.test_torch_engine``: it runs every test here and prints ``N passed, N failed``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

from hwsim.sim import torch_engine
from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.engine import simulate as cpu_simulate
from hwsim.sim.network import Conv2d, Dense, Flatten, FloatLIF, LoihiLIF, Network, SumPool2d, from_spec
from hwsim.sim.torch_engine import TorchEngineError, make_engine

DEVICE = os.environ.get("HWSIM_TORCH_DEVICE", "cpu")
LIF = os.environ.get("HWSIM_TORCH_LIF", "auto")  # how the neurons run: auto, torch or triton (see TorchEngine)


def simulate(*args, **kwargs):
    return torch_engine.simulate(*args, lif=kwargs.pop("lif", LIF), **kwargs)


def TorchEngine(*args, **kwargs):  # noqa: N802 - the engine, with this run's choice of neuron kernels
    return torch_engine.TorchEngine(*args, lif=kwargs.pop("lif", LIF), **kwargs)
RUNS = 20  # random networks per mode (half dense, half conv)

try:  # pytest is optional here (see the module docstring)
    import pytest

    pytestmark = pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                    reason="HWSIM_TORCH_DEVICE=cuda but no CUDA device")
except ImportError:  # pragma: no cover
    pytest = None


# ---------------------------------------------------------------------------------------------------------
# Random networks
# ---------------------------------------------------------------------------------------------------------
def _fixed_neuron(rng) -> LoihiLIF:
    return LoihiLIF(du=int(rng.choice([0, 300, 2048, 4000, 4095])), dv=int(rng.choice([0, 100, 1000, 3724, 4095])),
                    vth=int(rng.choice([2, 8, 20, 64, 150])), bias_exp=int(rng.integers(0, 4)))


def _float_neuron(rng) -> FloatLIF:
    return FloatLIF(lam=float(rng.choice([0.0, 1 - 1 / 1.1, 0.5, 0.9, 1.0])), v_th=float(rng.choice([0.5, 1.0, 1.5])),
                    reset=str(rng.choice(["soft", "zero"])))


def _weights(rng, shape, fan_in: int, mode: str, dyadic: bool) -> np.ndarray:
    if mode == "fixed":
        sign = rng.choice(["mixed", "mixed", "mixed", "excitatory", "excitatory", "inhibitory"])
        w = np.round(rng.normal(0.3 / np.sqrt(fan_in), 3.0 / np.sqrt(fan_in), shape) * 64).clip(-255, 255)
        if sign == "excitatory":
            w = np.abs(w)
        elif sign == "inhibitory":
            w = -np.abs(w)
        return w.astype(np.int32)
    w = rng.normal(0, 2.5 / np.sqrt(fan_in), shape)
    if dyadic:  # multiples of 1/64: every sum is exact in float32, in any order
        w = np.round(w * 64) / 64
    return w.astype(np.float32)


def _bias(rng, n: int, mode: str, dyadic: bool):
    if rng.random() < 0.4:
        return None
    if mode == "fixed":
        return rng.integers(-200, 400, n)
    b = rng.normal(0, 0.2, n)
    return (np.round(b * 64) / 64 if dyadic else b).astype(np.float32)


def _neuron_args(rng, mode: str) -> dict:
    if mode == "fixed":
        return {"neuron": _fixed_neuron(rng), "weight_exp": int(rng.integers(-2, 3))}
    return {"neuron": _float_neuron(rng)}


def random_dense(seed: int, mode: str, dyadic: bool = True) -> Network:
    """2 to 4 dense layers of 1..40 neurons, random neurons, biases, weight exponents and weight signs."""
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 41, int(rng.integers(3, 6)))]
    layers = [Dense(_weights(rng, (n_out, n_in), n_in, mode, dyadic), bias=_bias(rng, n_out, mode, dyadic),
                    **_neuron_args(rng, mode)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return Network(sizes[0], layers)


def random_conv(seed: int, mode: str, dyadic: bool = True) -> Network:
    """conv (kernel 1..4, stride 1..3, padding 0..2, bias), maybe a sum pool (kernel 1..3, stride 1..3), maybe a
    second conv, then flatten and a dense read-out."""
    rng = np.random.default_rng(seed)
    shape = in_shape = (int(rng.integers(1, 4)), int(rng.integers(4, 11)), int(rng.integers(4, 11)))
    layers = []
    for _ in range(int(rng.integers(1, 3))):
        c, h, w = shape
        k = int(rng.integers(1, min(h, w, 4) + 1))
        out_ch = int(rng.integers(1, 6))
        layer = Conv2d(_weights(rng, (out_ch, c, k, k), c * k * k, mode, dyadic), stride=int(rng.integers(1, 4)),
                       padding=int(rng.integers(0, 3)), bias=_bias(rng, out_ch, mode, dyadic),
                       **_neuron_args(rng, mode))
        shape = layer.out_shape(shape)
        layers.append(layer)
        if min(shape[1:]) >= 2 and rng.random() < 0.7:
            pk = int(rng.integers(1, min(shape[1:]) + 1))
            pk = min(pk, 3)
            tap = int(rng.choice([1, 3, 64, 200, -20])) if mode == "fixed" else float(rng.choice([0.5, 0.25, 1.0]))
            pool = SumPool2d(pk, stride=int(rng.integers(1, 4)), weight=tap, **_neuron_args(rng, mode))
            shape = pool.out_shape(shape)
            layers.append(pool)
        if min(shape[1:]) < 2:
            break
    n = int(np.prod(shape))
    n_out = int(rng.integers(2, 9))
    layers += [Flatten(), Dense(_weights(rng, (n_out, n), n, mode, dyadic), bias=_bias(rng, n_out, mode, dyadic),
                                **_neuron_args(rng, mode))]
    return Network(in_shape, layers)


def random_case(index: int, mode: str, dyadic: bool = True) -> tuple[Network, np.ndarray]:
    """Case ``index``: even indices dense, odd conv; input of 3..12 steps, batch 1..3, rate 0.1..0.8."""
    seed = 1000 + index
    network = random_dense(seed, mode, dyadic) if index % 2 == 0 else random_conv(seed, mode, dyadic)
    rng = np.random.default_rng(seed + 7)
    steps, batch = int(rng.integers(3, 13)), int(rng.integers(1, 4))
    x = bernoulli((steps, batch, *network.input_shape), float(rng.choice([0.1, 0.3, 0.5, 0.8])), seed=seed)
    return network, x


# ---------------------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------------------
def assert_same_counts(a, b, where: str = "") -> None:
    """Every counter of two :class:`Counts` identical: per step, per kind, per neuron."""
    assert (a.timesteps, a.batch, a.mode, a.phase) == (b.timesteps, b.batch, b.mode, b.phase), where
    assert len(a.layers) == len(b.layers), where
    for la, lb in zip(a.layers, b.layers):
        tag = f"{where} layer {la.name}"
        assert (la.name, la.kind, la.n_in, la.n_out, la.timesteps) == (lb.name, lb.kind, lb.n_in, lb.n_out,
                                                                       lb.timesteps), tag
        for group in ("events", "mem_read_bytes", "mem_write_bytes"):
            for key, value in getattr(la, group).items():
                np.testing.assert_array_equal(getattr(lb, group)[key], value, err_msg=f"{tag}: {group}[{key}]")
        for key in ("neuron_spikes", "neuron_active", "input_spikes"):
            np.testing.assert_array_equal(getattr(lb, key), getattr(la, key), err_msg=f"{tag}: {key}")
        assert lb.to_dict() == la.to_dict(), tag


def assert_fixed_identical(network: Network, x: np.ndarray, device: str = DEVICE, **options) -> object:
    """Fixed point: spikes, v and u of every layer and every counter bit-identical to the CPU engine."""
    ours = simulate(network, x, device=device, record=True, **options)
    assert (ours.currents is not None and ours.membranes is not None), "record=True keeps v and u"
    ref = cpu_simulate(network, x, record=True)
    for k in range(len(ref.spikes)):
        np.testing.assert_array_equal(ours.spikes[k], ref.spikes[k], err_msg=f"{network}: spikes, layer {k}")
        np.testing.assert_array_equal(ours.membranes[k], ref.membranes[k], err_msg=f"{network}: v, layer {k}")
        np.testing.assert_array_equal(ours.currents[k], ref.currents[k], err_msg=f"{network}: u, layer {k}")
    assert ours.layer_names == ref.layer_names
    assert_same_counts(ref.counts, ours.counts, str(network))
    return ref


def first_difference(ours, ref) -> tuple[int, int] | None:
    """``(step, layer)`` of the earliest spike that differs between two float runs (a float layer sees its input
    in the same step, so an earlier step, then a lower layer, comes first), or None."""
    found = None
    for k, (a, b) in enumerate(zip(ours.spikes, ref.spikes)):
        steps = np.flatnonzero((a != b).reshape(a.shape[0], -1).any(axis=1))
        if steps.size and (found is None or steps[0] < found[0]):
            found = (int(steps[0]), k)
    return found


def compare_float(network: Network, x: np.ndarray, exact: bool, device: str = DEVICE, lif: str = LIF) -> bool:
    """Float mode against the CPU engine: spikes and counts identical, membranes identical (``exact``: every
    synaptic sum is exact, so the same float32 operations give the same bits) or within 1e-5. Not exact, a spike
    may flip where a membrane lies within 1e-5 of the threshold (float32 rounding of a sum in another order):
    then the earliest difference must be such a neuron, and the run counts as not compared (returns False)."""
    ref = cpu_simulate(network, x, record=True)
    ours = simulate(network, x, device=device, record=True, lif=lif)
    flipped = None if exact else first_difference(ours, ref)
    if flipped is not None:
        t, k = flipped
        v_th = np.float32([layer.neuron for layer in network.layers if layer.neuron is not None][k].v_th)
        differs = ours.spikes[k][t] != ref.spikes[k][t]
        assert np.abs(ref.membranes[k][t][differs] - v_th).max() < 1e-5, f"{network}: layer {k} step {t}"
        np.testing.assert_allclose(ours.membranes[k][:t + 1], ref.membranes[k][:t + 1], rtol=1e-5, atol=1e-5)
        return False
    for k in range(len(ref.spikes)):
        np.testing.assert_array_equal(ours.spikes[k], ref.spikes[k], err_msg=f"{network}: spikes, layer {k}")
        if exact:
            np.testing.assert_array_equal(ours.membranes[k], ref.membranes[k], err_msg=f"{network}: u, layer {k}")
        else:
            np.testing.assert_allclose(ours.membranes[k], ref.membranes[k], rtol=1e-5, atol=1e-5,
                                       err_msg=f"{network}: u, layer {k}")
    assert_same_counts(ref.counts, ours.counts, str(network))
    return True


def _raises(error: type, call, match: str) -> None:
    try:
        call()
    except error as err:
        assert match in str(err), f"{err!r} does not say {match!r}"
        assert "\n" not in str(err), "error messages are one line"
        return
    raise AssertionError(f"{error.__name__} not raised")


# ---------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------
def test_fixed_point_is_bit_identical_to_the_cpu_engine_on_random_nets():
    """20 random nets (dense, and conv with pool, strides, padding, biases): spikes, v, u, counts identical."""
    hidden_spikes, firing, hidden, conv_pools = 0, 0, 0, 0
    for index in range(RUNS):
        network, x = random_case(index, "fixed")
        ref = assert_fixed_identical(network, x)
        hidden_spikes += sum(int(s.sum()) for s in ref.spikes[:-1])
        firing += sum(int(s.sum()) > 0 for s in ref.spikes[:-1])
        hidden += len(ref.spikes) - 1
        wide = TorchEngine(network, DEVICE)
        for plan in wide.plans:  # the general path (every int32 wrap applied) gives the same run
            plan.bound = 2**40
        forced = wide.run(x, record=True)
        for k in range(len(ref.spikes)):
            np.testing.assert_array_equal(forced.spikes[k], ref.spikes[k])
            np.testing.assert_array_equal(forced.membranes[k], ref.membranes[k])
            np.testing.assert_array_equal(forced.currents[k], ref.currents[k])
        conv_pools += sum(isinstance(layer, SumPool2d) for layer in network.layers)
    # the nets really fire (most hidden layers, thousands of spikes), and pools are among them
    assert hidden_spikes > 5000 and firing >= 0.7 * hidden and conv_pools >= 5


def test_fixed_point_edge_cases_take_the_wide_path_and_stay_identical():
    """Saturation of v, the 24-bit wrap of u, int32 wrap-around of ``a << 6``, conv's 24-bit output wrap, the
    bias exponent, both decay extremes: the cases of the Lava equality tests, against the CPU engine."""
    rng = np.random.default_rng(2024)
    lif = LoihiLIF

    def net(sizes, neurons, exps, low, high, bias=None):
        layers = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            b = None if bias is None else rng.integers(bias[0], bias[1] + 1, size=n_out)
            layers.append(Dense(rng.integers(low, high + 1, size=(n_out, n_in)), neuron=neurons[k],
                                weight_exp=exps[k], bias=b))
        return Network(sizes[0], layers)

    cases = [
        (net([20, 12, 8], [lif(0, 0, 200), lif(0, 0, 300)], [-3, 0], -60, 60), 0.3),
        (net([20, 12, 8], [lif(4095, 4095, 5), lif(4095, 4095, 10)], [1, 2], -40, 80), 0.4),
        (net([16, 12, 10, 8, 6], [lif(100, 300, 1000)] * 4, [3, 4, 5, 7], -20, 30), 0.4),
        (net([8, 4], [lif(4095, 0, 131071)], [7], 60, 64), 0.5),
        (net([8, 4], [lif(4095, 0, 10)], [7], -64, -60), 0.5),
        (net([30, 8], [lif(0, 2000, 131071)], [6], 50, 255), 0.5),
        (net([20, 10], [lif(300, 400, 20)], [0], -255, 0, bias=(1000, 4095)), 0.3),
        (net([20, 12, 8], [lif(500, 800, 60)] * 2, [0, -1], -255, 255, bias=(-500, 500)), 0.3),
        (net([10, 8], [lif(1000, 200, 300, bias_exp=5)], [0], -30, 30, bias=(-4096, 4095)), 0.2),
        (net([1100, 4], [lif(4095, 4095, 131071)], [7], 250, 255), 1.0),
        (Network((8, 9, 9), [Conv2d(rng.integers(200, 256, (3, 8, 7, 7)), padding=1, weight_exp=7,
                                    neuron=lif(2000, 100, 50000)), Flatten(),
                             Dense(rng.integers(-9, 10, (4, 75)), neuron=lif(0, 0, 100))]), 0.9),
    ]
    wide = 0
    for network, rate in cases:
        x = bernoulli((16, 2, *network.input_shape), rate, seed=network.input_shape[0])
        assert_fixed_identical(network, x)
        wide += sum(not plan.narrow for plan in TorchEngine(network, DEVICE).plans)
    assert wide == 3  # u-wrap, int32-wrap and conv's 24-bit wrap need the wraps; the rest run the narrow path
    u_wrap = simulate(cases[5][0], bernoulli((16, 2, 30), 0.5, seed=30), device=DEVICE, record=True).currents[0]
    assert (np.diff(u_wrap[:, 0], axis=0) < 0).any() and u_wrap.max() > 2**22  # u grew to the top and wrapped


def test_fixed_point_spec_networks_are_identical():
    for spec in ("24-16-12-6", "2x8x8-c4k3p1-p2-c4k3s2p1-10", "1x7x5-c2k3s2-p2-6", "3x12x12-c8p1-p2-c8s2p1-p2s1-10"):
        network = from_spec(spec, mode="fixed", seed=3)
        assert_fixed_identical(network, bernoulli((10, 2, *network.input_shape), 0.4, seed=5))


def test_float_equals_the_cpu_engine_within_float_rounding():
    """20 random nets with weights and biases in multiples of 1/64 (every synaptic sum exact, in any order, as long
    as the library sums plainly: CPU tensors, and cuBLAS for dense layers): spikes, membranes and counts
    bit-identical; on CUDA, conv layers (cuDNN may pick Winograd or FFT) within 1e-5. 10 nets with arbitrary
    weights: spikes and counts identical, membranes within 1e-5, or a first difference explained by a membrane
    within 1e-5 of the threshold (at most 3 of the 10)."""
    for index in range(RUNS):
        network, x = random_case(index, "float", dyadic=True)
        exact = DEVICE == "cpu" or all(isinstance(layer, (Dense, Flatten)) for layer in network.layers)
        compare_float(network, x, exact)
    compared = 0
    for index in range(RUNS, RUNS + 10):
        network, x = random_case(index, "float", dyadic=False)
        compared += compare_float(network, x, exact=False)
    assert compared >= 7


def test_float_spec_networks_fire_alike():
    for spec in ("30-20-5", "2x10x10-c6k3p1-p2-c8k3s2p1-12"):
        network = from_spec(spec, seed=3)
        assert compare_float(network, bernoulli((10, 2, *network.input_shape), 0.3, seed=4), exact=False)


def test_results_do_not_depend_on_the_chunking():
    """A budget so small that every sample and every step is a chunk of its own gives the same run."""
    for mode in ("fixed", "float"):
        for index in (1, 2, 3):
            network, x = random_case(index, mode)
            engine = TorchEngine(network, DEVICE, memory_bytes=1)
            small = engine.run(x, record=True)
            assert engine.chunks == (1, 1)
            whole = TorchEngine(network, DEVICE).run(x, record=True)
            assert TorchEngine(network, DEVICE).chunk_sizes(*x.shape[:2], True) == x.shape[1::-1]
            for a, b in zip(small.spikes + small.membranes, whole.spikes + whole.membranes):
                np.testing.assert_array_equal(a, b)
            assert_same_counts(whole.counts, small.counts, f"{mode} {index}")


def test_record_modes_and_engine_reuse():
    network = from_spec("12-10-6", mode="fixed", seed=1)
    x = bernoulli((7, 3, 12), 0.4, seed=2)
    engine = TorchEngine(network, DEVICE)
    quiet = engine.run(x)
    assert quiet.spikes[0] is None and quiet.membranes is None and quiet.currents is None
    ref = Engine(network).run(x)
    np.testing.assert_array_equal(quiet.output, ref.output)
    assert_same_counts(ref.counts, quiet.counts)
    spikes = engine.run(x, record="spikes")
    assert all(s is not None for s in spikes.spikes) and spikes.membranes is None
    float_net = from_spec("12-10-6", seed=1)
    full = simulate(float_net, x, device=DEVICE, record=True)
    assert full.currents is None and full.membranes[0].dtype == np.float32


def test_torch_tensor_input_equals_numpy_input():
    network = from_spec("2x6x6-c3k3p1-p2-5", mode="fixed", seed=2)
    x = bernoulli((6, 2, 2, 6, 6), 0.4, seed=1)
    on_device = torch.from_numpy(x).to(DEVICE).bool()
    a, b = simulate(network, x, device=DEVICE), simulate(network, on_device, device=DEVICE)
    for s, t in zip(a.spikes, b.spikes):
        np.testing.assert_array_equal(s, t)
    assert_same_counts(a.counts, b.counts)


def test_bad_input_and_options_name_what_is_wrong():
    network = from_spec("8-4", seed=0)
    good = bernoulli((3, 2, 8), 0.5)
    _raises(ValueError, lambda: simulate(network, np.zeros((3, 2, 7), np.uint8)), "input spikes must have shape")
    _raises(ValueError, lambda: simulate(network, torch.full((3, 2, 8), 2.0)), "0/1 values")
    _raises(ValueError, lambda: simulate(network, torch.zeros((3, 2, 9))), "input spikes must have shape")
    _raises(ValueError, lambda: simulate(network, good, record="all"), "record must be")
    _raises(TorchEngineError, lambda: simulate(network, good, device="tpu"), "device 'tpu'")
    _raises(TorchEngineError, lambda: TorchEngine(network, memory_bytes=0), "memory_bytes")
    if not torch.cuda.is_available():
        _raises(TorchEngineError, lambda: simulate(network, good, device="cuda"), "no CUDA device")
    _raises(TorchEngineError, lambda: make_engine(network, "jax"), "engine 'jax' unknown")
    _raises(TorchEngineError, lambda: make_engine(network, "numba", device="cuda"), "needs engine 'torch'")
    ours = make_engine(network, "torch", device=DEVICE).run(good)
    assert_same_counts(make_engine(network).run(good).counts, ours.counts)


def _precision_flags() -> tuple:
    """TF32 settings, read through the legacy flags, or the newer ``fp32_precision`` ones where the caller set those
    (torch then refuses to read the legacy ones)."""
    backends = torch.backends
    try:
        return backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32
    except RuntimeError:
        return backends.cuda.matmul.fp32_precision, backends.cudnn.conv.fp32_precision


def test_float32_precision_settings_are_restored():
    """The run switches TF32 off and restores the caller's settings, through the API the caller used."""
    backends = torch.backends
    net, x = from_spec("2x5x5-c2k3-4", seed=0), bernoulli((3, 1, 2, 5, 5), 0.5)
    before = _precision_flags()
    simulate(net, x, device=DEVICE)
    assert _precision_flags() == before
    if hasattr(backends.cuda.matmul, "fp32_precision"):
        script = ("import torch; from hwsim.sim.engine import bernoulli; from hwsim.sim.network import from_spec; "
                  "from hwsim.sim.torch_engine import simulate; b = torch.backends; "
                  "b.cuda.matmul.fp32_precision = b.cudnn.conv.fp32_precision = 'tf32'; "
                  f"simulate(from_spec('8-4'), bernoulli((3, 1, 8), 0.5), device={DEVICE!r}); "
                  "print(b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision)")
        import subprocess

        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.split() == ["tf32", "tf32"], done.stderr[-2000:]


def test_triton_kernels_equal_the_cpu_engine():
    """The fused Triton neurons (hwsim.sim.triton_lif) give the CPU engine's runs: on CUDA directly, on CPU
    tensors through Triton's interpreter (a fresh interpreter with TRITON_INTERPRET=1). Skipped without Triton."""
    from hwsim.sim import triton_lif

    if not triton_lif.available():
        if pytest is not None:
            pytest.skip("Triton is not installed")
        return
    if DEVICE.startswith("cuda"):
        _triton_cases(DEVICE)
        return
    import subprocess

    env = dict(os.environ, TRITON_INTERPRET="1")
    code = "import tests.test_torch_engine as t; t._triton_cases('cpu'); print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0 and done.stdout.split()[-1:] == ["ok"], done.stderr[-3000:]


def _triton_cases(device: str) -> None:
    for index in range(8):
        network, x = random_case(index, "fixed")
        assert_fixed_identical(network, x, device=device, lif="triton")
        wide = torch_engine.TorchEngine(network, device, lif="triton")
        for plan in wide.plans:
            plan.bound = 2**40
        ref = cpu_simulate(network, x, record=True)
        forced = wide.run(x, record=True)
        for a, b in zip(forced.spikes + forced.membranes + forced.currents, ref.spikes + ref.membranes + ref.currents):
            np.testing.assert_array_equal(a, b)
        network, x = random_case(index, "float", dyadic=True)
        exact = device == "cpu" or all(isinstance(layer, (Dense, Flatten)) for layer in network.layers)
        ours = torch_engine.simulate(network, x, device=device, record=True, lif="triton")
        ref = cpu_simulate(network, x, record=True)
        for k in range(len(ref.spikes)):
            np.testing.assert_array_equal(ours.spikes[k], ref.spikes[k])
            if exact:
                np.testing.assert_array_equal(ours.membranes[k], ref.membranes[k])
        assert_same_counts(ref.counts, ours.counts)


def _main() -> int:  # pragma: no cover - the runner for machines without pytest
    names = [name for name in sorted(globals()) if name.startswith("test_")]
    skip = pytest.skip.Exception if pytest is not None else ()
    failed = skipped = 0
    for name in names:
        try:
            globals()[name]()
            print(f"PASS {name}", flush=True)
        except skip as err:
            skipped += 1
            print(f"SKIP {name}: {err}", flush=True)
        except Exception as err:  # noqa: BLE001 - report every failure, then the summary
            failed += 1
            print(f"FAIL {name}: {type(err).__name__}: {str(err)[:2000]}", flush=True)
    print(f"{len(names) - failed - skipped} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
