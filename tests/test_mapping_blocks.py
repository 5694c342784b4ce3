"""Contiguous blocks of neurons on cores: every core count the mapper reaches is one it can fill; a placement
made once and given counts later equals the placement made with them."""

from hypothesis import given
from hypothesis import strategies as st

from hwsim import chips
from hwsim.hardware.mapping import _blocks, _next_usable, _usable, map_network, with_counts
from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.network import from_spec


@given(st.integers(1, 5000), st.data())
def test_block_helpers(n, data):
    cores = data.draw(st.integers(1, n))
    sizes = _blocks(n, cores)
    assert sizes.min() >= 0 and sizes.sum() == n and sizes.max() == -(-n // cores)
    usable = _usable(n, cores)
    assert usable <= cores and _usable(n, usable) == usable and _blocks(n, usable).min() > 0
    assert _blocks(n, usable).max() == sizes.max()  # the same largest block: the same per-core load
    if usable < n:
        nxt = _next_usable(n, usable)
        assert nxt > usable and _usable(n, nxt) == nxt and _blocks(n, nxt).max() < sizes.max()


def test_conv_net_maps_on_chips_whose_limits_need_more_cores():
    """3x32x32 conv net on Loihi: the synapse and routing limits push core counts past fillable ones
    (it once failed with negative block sizes); every placed core holds neurons."""
    mapping = map_network(from_spec("3x32x32-c64p1-p2-c128p1-p2-10"), chips.load("loihi"))
    for layer in mapping.layers:
        assert layer.neurons_per_core.min() > 0 and layer.neurons_per_core.sum() == layer.n_out
        assert len(layer.neurons_per_core) == layer.cores


def test_counts_added_to_a_placement_equal_mapping_with_counts():
    import dataclasses

    import numpy as np

    net = from_spec("2x12x12-c6p1-p2-c8p1-p2-10", seed=1)
    counts = Engine(net).run(bernoulli((6, 3, 2, 12, 12), 0.2, seed=2)).counts
    for name in ("loihi", "loihi2", "odin", "generic_45nm"):
        chip = chips.load(name)
        later, direct = with_counts(map_network(net, chip), net, chip, counts), map_network(net, chip, counts)
        assert later.to_dict(chip) == direct.to_dict(chip), name
        for a, b in zip(later.layers, direct.layers):
            for f in dataclasses.fields(a):
                va, vb = getattr(a, f.name), getattr(b, f.name)
                assert (np.array_equal(va, vb) if isinstance(va, np.ndarray) else va == vb), (name, f.name)
            assert a.sop_per_core is not None  # the counts did arrive


def test_placement_options_parse_and_bad_ones_name_the_option():
    import pytest

    from hwsim.hardware.mapping import PlacementError, parse_placement

    net, chip = from_spec("784-512-512-10"), chips.load("loihi")
    assert parse_placement(None, net, chip) == (None, 0, "packed")
    assert parse_placement("packed", net, chip)[:2] == (None, 0)
    assert parse_placement("128", net, chip)[:2] == (128, 0)
    assert parse_placement(64, net, chip)[:2] == (64, 0)
    assert parse_placement("128+input", net, chip)[:2] == (128, 1)
    per_core, _, label = parse_placement("spread", net, chip)
    assert per_core == -(-(512 + 512 + 10) // 128) and "spread" in label
    for bad in ("lots", "0", "-3", "12+output", "1e3"):
        with pytest.raises(PlacementError, match="--placement"):
            parse_placement(bad, net, chip)
    with pytest.raises(PlacementError, match="no core count"):
        parse_placement("spread", net, chips.load("anp_i"))
    spread = map_network(net, chip, neurons_per_core=per_core)
    assert spread.cores_used > map_network(net, chip).cores_used
