"""Network description: spec strings, validation errors, and the file format round trip."""

import json

import numpy as np
import pytest

from hwsim.sim.engine import InputError, bernoulli, simulate
from hwsim.sim.network import (
    Conv2d,
    Dense,
    Flatten,
    FloatLIF,
    LoihiLIF,
    Network,
    NetworkError,
    SumPool2d,
    from_spec,
    load,
    save,
)


def test_spec_mlp_shapes():
    net = from_spec("784-512-10")
    assert net.input_shape == (784,) and net.output_shape == (10,)
    assert [layer.kind for layer in net.layers] == ["dense", "dense"]
    assert net.layers[0].weight.shape == (512, 784) and net.layers[0].weight.dtype == np.float32


def test_spec_conv_inserts_flatten():
    net = from_spec("2x16x16-c8k5s1p2-p2-c4k3s2-10")
    assert [layer.kind for layer in net.layers] == ["conv2d", "sumpool2d", "conv2d", "flatten", "dense"]
    assert net.shapes[1:] == [(8, 16, 16), (8, 8, 8), (4, 3, 3), (36,), (10,)]


def test_spec_fixed_is_integer_and_lava_exact():
    net = from_spec("30-20-5", mode="fixed")
    w = net.layers[0].weight
    assert w.dtype == np.int32 and np.all(w % 2 == 0) and np.abs(w).max() <= 254
    assert isinstance(net.layers[0].neuron, LoihiLIF) and net.layers[0].weight_exp == -1


@pytest.mark.parametrize("spec,fragment", [
    ("784-abc-10", "token 'abc' at position 1"),
    ("784", "expected INPUT-LAYER"),
    ("", "expected INPUT-LAYER"),
    ("x-10", "expected INPUT-LAYER"),
    ("784-c8k3-10", "needs a CxHxW input"),
    ("1x4x4-c2k9-10", "does not fit input"),
    ("784-0-10", "token '0'"),
    ("1x8x8-p9", "does not fit"),
])
def test_malformed_spec_errors(spec, fragment):
    with pytest.raises(NetworkError, match="malformed network spec") as err:
        from_spec(spec)
    assert fragment in str(err.value)


def test_unknown_mode():
    with pytest.raises(NetworkError, match="unknown mode 'half'"):
        from_spec("10-5", mode="half")


@pytest.mark.parametrize("kwargs,field", [
    ({"du": 4096}, "du"), ({"dv": -1}, "dv"), ({"vth": 2**17}, "vth"), ({"bias_exp": 8}, "bias_exp"),
    ({"du": 1.5}, "du"),
])
def test_fixed_params_out_of_range(kwargs, field):
    with pytest.raises(NetworkError, match=rf"LoihiLIF\.{field} must be an integer"):
        LoihiLIF(**kwargs)


@pytest.mark.parametrize("weights,message", [
    (np.full((2, 3), 256), "fit 8 bits"),
    (np.full((2, 3), -257), "fit 8 bits"),
    (np.full((2, 3), -256), "all are inhibitory"),
    (np.full((2, 3), 1.5), "must be integers"),
])
def test_fixed_weights_that_do_not_fit(weights, message):
    with pytest.raises(NetworkError, match=message):
        Network(3, [Dense(weights, neuron=LoihiLIF())])


def test_other_parameter_errors():
    with pytest.raises(NetworkError, match="weight_exp must be an integer in -8..7"):
        Network(3, [Dense(np.ones((2, 3), int), neuron=LoihiLIF(), weight_exp=9)])
    with pytest.raises(NetworkError, match="bias mantissa"):
        Network(3, [Dense(np.ones((2, 3), int), neuron=LoihiLIF(), bias=[5000, 0])])
    with pytest.raises(NetworkError, match="mixes float .FloatLIF.FloatALIF. and LoihiLIF"):
        Network(3, [Dense(np.ones((2, 3)), neuron=FloatLIF()), Dense(np.ones((1, 2), int), neuron=LoihiLIF())])
    with pytest.raises(NetworkError, match="reset must be 'soft' or 'zero'"):
        FloatLIF(reset="hard")
    with pytest.raises(NetworkError, match="Dense expects input shape"):
        Network(4, [Dense(np.ones((2, 3)))])
    with pytest.raises(NetworkError, match="weights must be finite"):
        Network(3, [Dense(np.full((2, 3), np.nan))])


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_round_trip_every_layer_kind(tmp_path, mode):
    neuron = FloatLIF(lam=0.5, v_th=0.75, reset="zero") if mode == "float" else LoihiLIF(100, 200, 30, bias_exp=2)
    rng = np.random.default_rng(0)
    cast = (lambda a: a.astype(np.float32)) if mode == "float" else (lambda a: np.round(a * 50).astype(np.int32))
    net = Network((2, 8, 8), [
        Conv2d(cast(rng.normal(size=(3, 2, 3, 3))), stride=2, padding=1, neuron=neuron, bias=cast(rng.normal(size=3)),
               weight_exp=1 if mode == "fixed" else 0),
        SumPool2d(2, 1, weight=1.0 if mode == "float" else 3, neuron=neuron),
        Flatten(),
        Dense(cast(rng.normal(size=(4, 27))), neuron=neuron, name="readout"),
    ])
    path = save(net, tmp_path / "net.npz")
    back = load(path)
    assert back.describe() == net.describe()
    for a, b in zip(net.layers, back.layers):
        if hasattr(a, "weight") and isinstance(a.weight, np.ndarray):
            np.testing.assert_array_equal(a.weight, b.weight)
            assert a.weight.dtype == b.weight.dtype
        if a.bias is not None:
            np.testing.assert_array_equal(a.bias, b.bias)
    x = bernoulli((5, 2, 2, 8, 8), 0.4, seed=1)
    for s1, s2 in zip(simulate(net, x).spikes, simulate(back, x).spikes):
        np.testing.assert_array_equal(s1, s2)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(NetworkError, match="no such network file"):
        load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(NetworkError, match="bad.npz: not a readable hwsim network file"):
        load(bad)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(3))
    with pytest.raises(NetworkError, match="foreign.npz: missing '__network__'"):
        load(foreign)
    net = from_spec("5-3")
    desc = net.describe()
    desc["layers"][0]["kind"] = "lstm"
    odd = tmp_path / "odd.npz"
    np.savez(odd, __network__=np.frombuffer(json.dumps(desc).encode(), np.uint8),
             **{"layers.0.weight": np.ones((3, 5))})
    with pytest.raises(NetworkError, match="odd.npz: layers\\[0\\].kind 'lstm' unknown"):
        load(odd)
    del desc["layers"][0]["name"]
    desc["layers"][0]["kind"] = "dense"
    np.savez(odd, __network__=np.frombuffer(json.dumps(desc).encode(), np.uint8),
             **{"layers.0.weight": np.ones((3, 5))})
    with pytest.raises(NetworkError, match="odd.npz: missing field 'name'"):
        load(odd)


@pytest.mark.parametrize("spikes,message", [
    (np.zeros((5, 784), np.uint8), r"shape \(T, B, 784\)"),
    (np.zeros((5, 1, 783), np.uint8), r"shape \(T, B, 784\)"),
    (np.full((5, 1, 784), 0.5), "0/1 values"),
    (np.zeros((5, 1, 784), np.complex64), "dtype complex64"),
    (np.array([["a"] * 784]).reshape(1, 1, 784), "dtype <U1"),
    (np.zeros((0, 1, 784), np.uint8), "T >= 1"),
])
def test_bad_input_arrays(spikes, message):
    with pytest.raises(InputError, match=message):
        simulate(from_spec("784-10"), spikes)


def test_bool_and_float_input_accepted():
    net = from_spec("20-4", seed=1)
    x = bernoulli((6, 2, 20), 0.5, seed=2)
    ref = simulate(net, x).spikes[0]
    np.testing.assert_array_equal(simulate(net, x.astype(bool)).spikes[0], ref)
    np.testing.assert_array_equal(simulate(net, x.astype(np.float32)).spikes[0], ref)


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_from_spec_draws_in_chunks_without_changing_the_weights(mode, monkeypatch):
    """Chunked draws (a small chunk forces many) equal one float64 draw of each whole tensor, as before."""
    import hwsim.sim.network as network_module

    monkeypatch.setattr(network_module, "DRAW_CHUNK", 50)
    net = from_spec("2x6x6-c3k3p1-p2-17-5", mode=mode, seed=4)
    rng = np.random.default_rng(4)
    for layer in [layer for layer in net.layers if isinstance(layer, (Conv2d, Dense))]:
        fan_in = int(np.prod(layer.weight.shape[1:]))
        w = rng.normal(0.0, 3.0 / np.sqrt(fan_in), size=layer.weight.shape)
        expected = w.astype(np.float32) if mode == "float" else (2 * np.clip(np.round(w * 64), -127, 127))
        np.testing.assert_array_equal(layer.weight, expected)
        assert layer.weight.dtype == (np.float32 if mode == "float" else np.int32)
    dense = net.layers[-1]
    assert dense.weight.flags.f_contiguous  # the engine's fan-out-major view of it needs no copy


def test_from_spec_has_no_full_size_float64_temporary():
    import tracemalloc

    tracemalloc.start()
    try:
        from_spec("2048-2048", seed=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    weights = 2048 * 2048 * 4
    assert peak < weights + 9 * 2**20  # the float32 weights plus one bounded chunk (4 MB), not 2x float64


def test_bernoulli_writes_uint8_directly(monkeypatch):
    import tracemalloc

    import hwsim.sim.engine as engine_module

    shape = (20, 3, 1001)
    reference = (np.random.default_rng(6).random(shape, dtype=np.float32) < 0.3).astype(np.uint8)
    monkeypatch.setattr(engine_module, "DRAW_CHUNK", 777)
    x = bernoulli(shape, 0.3, seed=6)
    assert x.dtype == np.uint8 and x.shape == shape
    np.testing.assert_array_equal(x, reference)
    monkeypatch.setattr(engine_module, "DRAW_CHUNK", 1 << 20)
    tracemalloc.start()
    try:
        bernoulli((50, 8, 4096 * 2), 0.1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 8 * 4096 * 2 + 4.5 * 2**20  # the uint8 result plus one float32 chunk (2 MB) and its mask


def test_engine_keeps_hidden_spikes_only_when_asked():
    from hwsim.sim.engine import Engine

    net = from_spec("30-20-10-4", seed=2)
    x = bernoulli((6, 2, 30), 0.4, seed=1)
    engine = Engine(net)
    plain = engine.run(x)
    assert plain.spikes[:2] == [None, None] and plain.output.shape == (6, 2, 4) and plain.membranes is None
    kept = engine.run(x, record="spikes")
    assert all(s is not None for s in kept.spikes) and kept.membranes is None
    np.testing.assert_array_equal(kept.output, plain.output)
    full = engine.run(x, record=True)
    assert len(full.membranes) == 3
    with pytest.raises(InputError, match="record must be"):
        engine.run(x, record="all")
