"""Recurrent layers and adaptive (ALIF) neurons in the engines, against an independent per-step reference.

``tests/recurrent_reference.py`` advances the whole network one step at a time from the equations (dense numpy
products of whole spike vectors; the engine runs layer after layer, adding fan-out rows of events) and counts
every counter from the dense arrays; Lava equality of the fixed-point reference and engine is in
``tests/test_recurrent_lava.py``. Here: float (weights multiples of 1/64, so every synaptic sum is exact in
float32 and u must match bit for bit) and fixed point, every counter per step and per neuron, bytes, hand-counted
small cases, thread counts (bit-identical), the torch engine (bit-identical incl. counts), quantisation, and the
``hwsim run`` command.
"""

from __future__ import annotations

import json

import numba
import numpy as np
import pytest

from hwsim.errors import NetworkError
from hwsim.sim.counts import ADAPTATION_BYTES, BIAS_BYTES, EVENT_COUNTERS, STATE_BYTES, WEIGHT_BYTES
from hwsim.sim.engine import Engine, bernoulli, simulate
from hwsim.sim.network import Dense, FloatALIF, FloatLIF, LoihiLIF, Network, Recurrent, from_spec
from hwsim.sim.threads import available_threads, set_threads
from tests.recurrent_reference import COUNTERS, reference_run


def _dyadic(rng, shape, scale):
    return (np.round(rng.normal(0.0, scale, size=shape) * 64) / 64).astype(np.float32)


def _float_rec(rng, n_in, n, neuron, bias=False, recurrent=True):
    w = _dyadic(rng, (n, n_in), 2.5 / np.sqrt(n_in))
    b = _dyadic(rng, (n,), 0.2) if bias else None
    if not recurrent:
        return Dense(w, neuron=neuron, bias=b)
    return Recurrent(w, _dyadic(rng, (n, n), 1.2 / np.sqrt(n)), neuron=neuron, bias=b)


def _float_cases():
    rng = np.random.default_rng(7)
    lif, alif = FloatLIF(), FloatALIF(lam=0.8, rho=0.9, beta=0.5)
    yield "20-r16-8", Network(20, [_float_rec(rng, 20, 16, lif), _float_rec(rng, 16, 8, lif, recurrent=False)])
    zero = FloatLIF(lam=0.9, v_th=0.75, reset="zero")
    yield "30-r24-r12-5 zero reset, bias", Network(30, [_float_rec(rng, 30, 24, zero, bias=True),
                                                         _float_rec(rng, 24, 12, zero, bias=True),
                                                         _float_rec(rng, 12, 5, zero, recurrent=False)])
    yield "dense then recurrent ALIF", Network(16, [_float_rec(rng, 16, 14, lif, recurrent=False),
                                                    _float_rec(rng, 14, 20, alif, bias=True),
                                                    _float_rec(rng, 20, 4, lif, recurrent=False)])
    zero_alif = FloatALIF(lam=0.95, v_th=0.5, reset="zero", rho=0.8, beta=1.0)
    yield "dense ALIF, recurrent ALIF zero reset", Network(12, [_float_rec(rng, 12, 150, alif, recurrent=False),
                                                                _float_rec(rng, 150, 10, zero_alif)])


FLOAT_CASES = list(_float_cases())


def _fixed_cases():
    rng = np.random.default_rng(11)
    yield "spec 20-r16-8", from_spec("20-r16-8", mode="fixed", seed=1)
    yield "spec 30-r24-r12-5", from_spec("30-r24-r12-5", mode="fixed", seed=2)
    w, r = rng.integers(-90, 91, size=(70, 18)), rng.integers(-255, 256, size=(70, 70))
    neuron = LoihiLIF(800, 300, 20, bias_exp=3)
    yield "wexp -3, bias-exp, mixed odd", Network(18, [Recurrent(w, r, neuron, weight_exp=-3,
                                                                 bias=rng.integers(-300, 300, 70))])
    w, r = rng.integers(0, 200, size=(6, 9)), rng.integers(0, 255, size=(6, 6))
    yield "u-wrap, one sign", Network(9, [Recurrent(w, r, LoihiLIF(0, 2000, 131071), weight_exp=6)])


FIXED_CASES = list(_fixed_cases())


def _check_against_reference(network, x, result, what):
    ref = reference_run(network, x)
    assert len(ref) == len(result.counts.layers)
    for k, (layer_ref, lc) in enumerate(zip(ref, result.counts.layers)):
        np.testing.assert_array_equal(result.spikes[k], layer_ref["spikes"], err_msg=f"{what}: spikes {k}")
        np.testing.assert_array_equal(result.membranes[k], layer_ref["membrane"], err_msg=f"{what}: membrane {k}")
        if network.mode == "fixed":
            np.testing.assert_array_equal(result.currents[k], layer_ref["current"], err_msg=f"{what}: u {k}")
        for name in COUNTERS:
            np.testing.assert_array_equal(lc.events[name], layer_ref["counts"][name], err_msg=f"{what}: {k} {name}")
        np.testing.assert_array_equal(lc.neuron_active, layer_ref["neuron_active"], err_msg=f"{what}: active {k}")
        np.testing.assert_array_equal(lc.neuron_spikes, layer_ref["spikes"].sum(axis=(0, 1)), err_msg=what)
    return ref


def _snapshot(result):
    layers = [({k: v.copy() for k, v in lc.events.items()}, {k: v.copy() for k, v in lc.mem_read_bytes.items()},
               lc.neuron_spikes, lc.neuron_active, lc.input_spikes) for lc in result.counts.layers]
    return [s for s in result.spikes if s is not None], result.membranes or [], result.currents or [], layers


def _counts(result):
    """A snapshot of the counts only (spikes and states left out)."""
    return [], [], [], _snapshot(result)[3]


def _assert_same(a, b, what):
    for x, y in zip(a[0] + a[1] + a[2], b[0] + b[1] + b[2]):
        np.testing.assert_array_equal(x, y, err_msg=what)
    for (ev_a, by_a, *per_a), (ev_b, by_b, *per_b) in zip(a[3], b[3]):
        for key in ev_a:
            np.testing.assert_array_equal(ev_a[key], ev_b[key], err_msg=f"{what}: {key}")
        for key in by_a:
            np.testing.assert_array_equal(by_a[key], by_b[key], err_msg=f"{what}: bytes {key}")
        for x, y in zip(per_a, per_b):
            np.testing.assert_array_equal(x, y, err_msg=f"{what}: per-neuron counts")


@pytest.mark.parametrize("name,network", FLOAT_CASES + FIXED_CASES, ids=[c[0] for c in FLOAT_CASES + FIXED_CASES])
def test_engine_equals_per_step_reference_for_any_split(name, network):
    """Spikes, membranes (float u bit for bit; fixed v and u), every counter per step and per neuron equal the
    reference; virtual thread counts 1, 2, 3, 5 (batch 1 and 3) give bit-identical results."""
    for batch in (3, 1):
        x = bernoulli((20, batch, network.input_shape[0]), 0.3, seed=batch)
        one = Engine(network, threads=1).run(x, record=True)
        ref = _check_against_reference(network, x, one, f"{name}, batch {batch}")
        recurrent = [k for k, layer in enumerate(network.layers) if isinstance(layer, Recurrent)]
        assert all(one.counts.layers[k].total("sop_recurrent") > 0 for k in recurrent)  # the recurrence was used
        assert ref[-1]["spikes"].sum() > 0, name  # spikes reach the output
        for threads in (2, 3, 5):
            _assert_same(_snapshot(one), _snapshot(Engine(network, threads=threads).run(x, record=True)),
                         f"{name} batch {batch} split for {threads} threads")
            kept = Engine(network, threads=threads).run(x, record=False)  # spikes not kept: emitted events
            np.testing.assert_array_equal(kept.output, one.output)
            _assert_same(_counts(one), _counts(kept), f"{name}: record=False")


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_real_thread_counts_give_identical_results(mode):
    """1 and 2 numba threads (the parallel kernels): bit-identical spikes, states and counts."""
    network = FLOAT_CASES[2][1] if mode == "float" else FIXED_CASES[1][1]
    x = bernoulli((15, 4, network.input_shape[0]), 0.3, seed=4)
    previous = numba.get_num_threads()
    try:
        set_threads(1)
        one = _snapshot(Engine(network).run(x, record=True))
        set_threads(min(2, available_threads()))
        _assert_same(one, _snapshot(Engine(network, threads=2).run(x, record=True)), "2 threads")
        _assert_same(([], [], [], one[3]), _counts(Engine(network, threads=2).run(x, record=False)),
                     "2 threads, no record")
    finally:
        numba.set_num_threads(previous)


def test_hand_counted_float_recurrence():
    """Two inputs, two neurons (lam = 0, v_th = 1): neuron 0 fires on input 0 at step 0; its recurrent synapse
    (-1) and input 1 (+1) reach neuron 1 at step 1 and cancel: no spike, yet an active update (either input is
    non-zero); neuron 0's own recurrent weight is 0."""
    net = Network(2, [Recurrent(np.eye(2), [[0, 0], [-1, 0]], neuron=FloatLIF(lam=0.0))])
    x = np.zeros((4, 1, 2), np.uint8)
    x[0, 0, 0] = x[1, 0, 1] = 1
    result = simulate(net, x, record=True)
    lc = result.counts.layers[0]
    assert result.spikes[0][:, 0].tolist() == [[1, 0], [0, 0], [0, 0], [0, 0]]
    assert result.membranes[0][1, 0].tolist() == [0.0, 0.0]
    assert lc.events["spikes_in"].tolist() == [1, 1, 0, 0]
    assert lc.events["sop"].tolist() == [2, 4, 0, 0] and lc.events["sop_recurrent"].tolist() == [0, 2, 0, 0]
    assert lc.events["neuron_updates_active"].tolist() == [1, 1, 0, 0]
    assert lc.neuron_active.tolist() == [1, 1]
    # a chain: neuron 0's spike at step t drives neuron 1 at step t + 1, which drives nothing
    chain = simulate(Network(1, [Recurrent([[1], [0]], [[0, 0], [1, 0]], neuron=FloatLIF(lam=0.0))]), x[:, :, :1])
    assert chain.spikes[0][:, 0].tolist() == [[1, 0], [0, 1], [0, 0], [0, 0]]
    assert chain.counts.layers[0].events["sop_recurrent"].tolist() == [0, 2, 2, 0]


def test_hand_counted_fixed_recurrence():
    """Fixed point (Lava's delays): the input spike of step 0 fires neuron 0 at step 1, its recurrent synapse
    fires neuron 1 at step 2; the recurrent SOPs are counted when the recurrent Dense reads the spikes."""
    neuron = LoihiLIF(du=4095, dv=4095, vth=0)
    net = Network(1, [Recurrent([[2], [0]], [[0, 0], [2, 0]], neuron=neuron, weight_exp=-1)])
    x = np.zeros((5, 1, 1), np.uint8)
    x[0] = 1
    result = simulate(net, x, record=True)
    lc = result.counts.layers[0]
    assert result.spikes[0][:, 0].tolist() == [[0, 0], [1, 0], [0, 1], [0, 0], [0, 0]]
    assert result.currents[0][:, 0].tolist() == [[0, 0], [64, 0], [0, 64], [0, 0], [0, 0]]
    assert lc.events["sop"].tolist() == [2, 2, 2, 0, 0] and lc.events["sop_recurrent"].tolist() == [0, 2, 2, 0, 0]
    assert lc.events["neuron_updates_active"].tolist() == [0, 1, 1, 0, 0]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_zero_recurrence_is_a_dense_layer_and_beta_zero_is_lif(mode):
    """A recurrent layer with all-zero recurrent weights runs as the dense layer (spikes, states, counts; its
    recurrent SOPs are counted: every stored synapse is read); an ALIF with beta = 0 is the LIF."""
    dense = from_spec("24-40-6", mode=mode, seed=3)
    first = dense.layers[0]
    zeros = np.zeros((40, 40), first.weight.dtype)
    recurrent = Network(24, [Recurrent(first.weight, zeros, neuron=first.neuron, weight_exp=first.weight_exp),
                             dense.layers[1]])
    x = bernoulli((12, 2, 24), 0.3, seed=1)
    a, b = simulate(dense, x, record=True), simulate(recurrent, x, record=True)
    for k in range(2):
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k])
        np.testing.assert_array_equal(a.membranes[k], b.membranes[k])
    la, lb = a.counts.layers[0], b.counts.layers[0]
    np.testing.assert_array_equal(lb.events["sop"] - lb.events["sop_recurrent"], la.events["sop"])
    np.testing.assert_array_equal(lb.events["sop_recurrent"][1:] if mode == "float" else lb.events["sop_recurrent"],
                                  40 * (la.events["spikes_out"][:-1] if mode == "float" else la.events["spikes_out"]))
    if mode == "float":
        lif = FloatLIF(lam=0.7, reset="zero")
        plain = Network(24, [Dense(first.weight, neuron=lif)])
        adaptive = Network(24, [Dense(first.weight, neuron=FloatALIF(lam=0.7, reset="zero", rho=0.5, beta=0.0))])
        p, q = simulate(plain, x, record=True), simulate(adaptive, x, record=True)
        np.testing.assert_array_equal(p.spikes[0], q.spikes[0])
        np.testing.assert_array_equal(p.membranes[0], q.membranes[0])


def test_bytes_and_the_counter_record():
    """Recurrent SOPs read weights like any SOP; ALIF state is 4 B more (float); ``sop_recurrent`` is an event
    counter of every layer (0 for feed-forward ones) and in the JSON record."""
    assert "sop_recurrent" in EVENT_COUNTERS
    net = FLOAT_CASES[2][1]  # dense LIF, recurrent ALIF with bias, dense LIF
    result = simulate(net, bernoulli((10, 2, 16), 0.3, seed=3))
    for layer, lc in zip(net.layers, result.counts.layers):
        state = STATE_BYTES["float"] + (ADAPTATION_BYTES["float"] if isinstance(layer.neuron, FloatALIF) else 0)
        bias = BIAS_BYTES["float"] if layer.bias is not None else 0
        np.testing.assert_array_equal(lc.mem_read_bytes["weights"], lc.events["sop"] * WEIGHT_BYTES["float"])
        np.testing.assert_array_equal(lc.mem_read_bytes["neuron_state"], lc.events["neuron_updates"] * (state + bias))
        np.testing.assert_array_equal(lc.mem_write_bytes["neuron_state"], lc.events["neuron_updates"] * state)
        record = json.loads(json.dumps(lc.to_dict()))
        assert record["sop_recurrent"] == lc.total("sop_recurrent") <= record["sop"]
    assert result.counts.layers[1].total("sop_recurrent") > 0 == result.counts.layers[0].total("sop_recurrent")
    fixed = simulate(FIXED_CASES[0][1], bernoulli((10, 1, 20), 0.3, seed=3)).counts.layers[0]
    np.testing.assert_array_equal(fixed.mem_read_bytes["weights"], fixed.events["sop"] * WEIGHT_BYTES["fixed"])
    np.testing.assert_array_equal(fixed.mem_write_bytes["neuron_state"],
                                  fixed.events["neuron_updates"] * STATE_BYTES["fixed"])


@pytest.mark.parametrize("name,network", [FLOAT_CASES[2], FLOAT_CASES[3], FIXED_CASES[0], FIXED_CASES[2]],
                         ids=["float ALIF", "float dense ALIF", "fixed spec", "fixed wexp -3"])
def test_torch_engine_equals_numba_engine(name, network):
    """The torch engine (CPU tensors): spikes, membranes, currents and every counter identical to the numba
    engine's (float weights are multiples of 1/64: every sum exact), whatever the chunking."""
    from hwsim.sim.torch_engine import TorchEngine

    x = bernoulli((14, 5, network.input_shape[0]), 0.3, seed=6)
    ours = _snapshot(Engine(network).run(x, record=True))
    for memory in (None, 2000):
        engine = TorchEngine(network, "cpu", memory_bytes=memory, lif="torch")
        _assert_same(ours, _snapshot(engine.run(x, record=True)), f"{name}, torch, memory {memory}")
        if memory is not None:
            assert engine.chunks[0] < 5 and engine.chunks[1] < 14  # several batch chunks and blocks of steps


def test_quantised_recurrent_net_equals_its_float_net():
    """quantize: recurrent weights share the layer's scale and weight_exp; with no leak, zero reset and weights on
    the quantisation grid the fixed-point net spikes as the float net, each layer k one step later per layer
    (Lava's delays; the recurrent delay is one step in both). ALIF is refused in one line."""
    from hwsim.sim.quantize import quantize

    rng = np.random.default_rng(5)
    lif = FloatLIF(lam=1.0, v_th=1.0, reset="zero")
    grid = lambda shape: rng.integers(-127, 128, size=shape) / 64  # noqa: E731 - multiples of 1/64, |w| <= 127/64
    w0, r0, w1 = grid((16, 12)), grid((16, 16)), grid((5, 16))
    r0[0, 0] = w1[0, 0] = 127 / 64  # layer 0's peak |w| is in its recurrent weights; scale = 64 in both layers
    w0 = np.clip(w0, -126 / 64, 126 / 64)
    net = Network(12, [Recurrent(w0, r0, neuron=lif), Dense(w1, neuron=lif)])
    fixed, report = quantize(net)
    layer = fixed.layers[0]
    assert isinstance(layer, Recurrent) and layer.weight_exp == -1
    assert [q.scale for q in report.layers] == [64.0, 64.0] and report.layers[0].weights_clipped == 0
    np.testing.assert_array_equal(layer.recurrent, 2 * np.rint(r0 * 64))
    np.testing.assert_array_equal(layer.weight, 2 * np.rint(w0 * 64))
    x = bernoulli((20, 3, 12), 0.3, seed=2)
    ours = simulate(net, x)
    theirs = simulate(fixed, np.concatenate([x, np.zeros((2, 3, 12), np.uint8)]), time_major=True)
    for k in range(2):
        np.testing.assert_array_equal(theirs.spikes[k][k + 1:k + 21], ours.spikes[k], err_msg=f"layer {k}")
    assert ours.counts.layers[0].total("sop_recurrent") > 0 and ours.spikes[1].sum() > 0
    with pytest.raises(NetworkError, match=r"^layer 0 \(recurrent0\): adaptive \(ALIF\) neurons cannot be "
                                           r"quantised to Loihi's LIF"):
        quantize(from_spec("8-a6-3", seed=1))


def test_float_readout_of_a_recurrent_output_layer():
    """The read-out of a recurrent last layer sums its whole current, the recurrent part included."""
    from hwsim.sim.quantize import float_readout

    net = FLOAT_CASES[0][1]
    net = Network(20, [net.layers[0], Recurrent(net.layers[1].weight, _dyadic(np.random.default_rng(1), (8, 8), 0.4),
                                                neuron=FloatLIF(), bias=np.full(8, 0.25, np.float32))])
    x = bernoulli((9, 2, 20), 0.3, seed=1)
    ref = reference_run(net, x)
    hidden, out = ref[0]["spikes"].astype(np.float64), ref[1]["spikes"].astype(np.float64)
    last = net.layers[1]
    expected = (hidden.sum(0) @ last.weight.T.astype(np.float64) + out[:-1].sum(0) @ last.recurrent.T
                + 9 * last.bias.astype(np.float64))
    np.testing.assert_allclose(float_readout(net, x), expected, rtol=1e-6)


@pytest.mark.parametrize("args", [["--net", "40-r256-16", "--timesteps", "50"],
                                  ["--net", "40-a128-16", "--mode", "float", "-T", "30"]])
def test_hwsim_run_takes_recurrent_nets(args, capsys):
    from hwsim.cli.main import main

    assert main(["run", *args]) == 0
    text = capsys.readouterr().out
    assert "recurrent0" in text and "total" in text
    assert main(["run", *args, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["layers"][0]["kind"] == "recurrent" and record["layers"][0]["sop"] > 0
