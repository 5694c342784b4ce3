"""Contiguous blocks of neurons on cores: every core count the mapper reaches is one it can fill."""

from hypothesis import given
from hypothesis import strategies as st

from hwsim import chips
from hwsim.mapping import _blocks, _next_usable, _usable, map_network
from hwsim.network import from_spec


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
