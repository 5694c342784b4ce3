"""Place a network's neuron layers onto a chip's cores and check the per-core limits.

Placement: every neuron layer gets its own cores (on a chip whose profile says ``layout.layers_share_cores``,
consecutive one-core dense/recurrent layers share a core while together they fit it: ReckOn); a layer's neurons are cut
into equal contiguous blocks (flattened channel-major order), as few as the chip's per-core limits allow:
neurons, synapses, synaptic memory at the chip's weight precision, input axons (a conv or pool layer is cut
into smaller output tiles until each core's inputs fit), and the fan-out edges of the core that feeds it.
A conv layer's blocks are tiles of its output channels (channel-major), and the weights a core holds follow
the chip's ``conv.weight_sharing``: every connection (``expanded``, the default), the kernels of the
channels it hosts (``per_core_copy``) or the layer's kernel once, on its first core (``shared_kernel``).
Cores are numbered in layer order and laid out ``cores_per_tile`` per tile, tiles row by row on a mesh
``mesh_width_tiles`` wide (both from the profile; absent: one core per tile, a square mesh).

Verdict: ``fits`` is False when a published limit is broken, None (unknown) when the chip publishes no
capacity to check (no capacity group, or neither a per-core synapse/memory limit nor a chip-wide synapse
limit), else True; ``fits_reason`` says which. Every capacity field of the schema is checked here except
``learning_memory_bytes_per_core`` (``hwsim.learning.feasibility``).

Placement policy (an assumption that moves latency and static energy 2-3.5x, so it is an option and printed):
``packed`` (default: as few cores as the limits allow), ``spread`` (every layer's neurons cut so that the network
fills the chip's cores: at most ceil(neurons / cores) per core), ``N`` (at most N neurons per core, e.g. SANA-FE's
128) and ``N+input`` (the same, with the inputs on a core of their own, as SANA-FE maps them):
:func:`parse_placement`.

Routing: a spike travels as one packet to every core that hosts at least one of its targets (multicast
per core, as on Loihi); its hops are the Manhattan distance between the tiles (east-west and north-south
counted apart). Input spikes enter at tile (0, 0); output spikes leave the chip unrouted. A chip without an
on-chip network (``layout.noc: false``) counts packets but no hops.

Recurrent layers (:class:`~hwsim.sim.network.Recurrent`): each neuron has ``n_in + n_out`` input synapses and each
core of the layer ``n_in + n_out`` input axons; a spike goes to the next layer's cores and back to every core of its
own layer (``packets_recurrent``, ``hops_*_recurrent``), and each neuron receives every recurrent SOP of the run
divided by ``n_out`` (the engine's ``sop_recurrent``).

Work per core comes from exact per-neuron counts: the SOPs a core performs are the sum, over its
neurons, of the spikes that arrived on their input synapses (``input_spikes`` times the structural
connectivity), so no count is estimated from averages.
"""

from __future__ import annotations

import copy
import functools
import math
import weakref
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from hwsim.chips.schema import Chip
from hwsim.sim.counts import Counts, LayerCounts
from hwsim.sim.network import Conv2d, Dense, Flatten, FloatALIF, Network, Recurrent, SumPool2d, has_adaptation


@dataclass
class LayerPlacement:
    """One neuron layer on the chip. Per-core arrays have shape ``(cores,)``. ``packets_in`` and ``hops_*_in``:
    the feed-forward spikes into the layer (from the layer before or the chip's inputs); ``*_recurrent``: a
    recurrent layer's own spikes sent back to its cores. Layers sharing a core (``layout.layers_share_cores``) have
    the same ``first_core``."""

    name: str
    kind: str
    n_in: int
    n_out: int
    first_core: int
    cores: int
    block: int
    synapses: int
    neurons_per_core: np.ndarray
    synapses_per_core: np.ndarray
    axons_per_core: np.ndarray
    fan_out_edges_per_core: np.ndarray | None = None
    sop_per_core: np.ndarray | None = None
    updates_per_core: np.ndarray | None = None
    active_per_core: np.ndarray | None = None
    spikes_per_core: np.ndarray | None = None
    weight_updates_per_core: np.ndarray | None = None
    packets_in: int = 0
    hops_ew_in: int = 0
    hops_ns_in: int = 0
    max_hops_in: int = 0
    packets_recurrent: int = 0  # a recurrent layer's own spikes back to its cores (one packet per core)
    hops_ew_recurrent: int = 0
    hops_ns_recurrent: int = 0
    max_hops_recurrent: int = 0


@dataclass
class Mapping:
    """The placement of a network on a chip and its verdict."""

    chip: str
    layers: list[LayerPlacement]
    cores_used: int
    cores_available: int | None
    tiles_used: int
    fits: bool | None
    limits_broken: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    fits_reason: str = ""
    placement: str = "packed"

    def utilisation(self, chip: Chip) -> dict[str, float]:
        """Fraction of the used cores' neuron slots and synaptic memory that is occupied."""
        cap = chip.capacity
        out: dict[str, float] = {}
        if cap and cap.neurons_per_core:
            out["neurons"] = sum(int(p.neurons_per_core.sum()) for p in self.layers) / (
                self.cores_used * cap.neurons_per_core)
        syn_cap = _synapse_capacity(chip)
        if syn_cap:
            out["synapses"] = sum(int(p.synapses_per_core.sum()) for p in self.layers) / (self.cores_used * syn_cap)
        return out

    def to_dict(self, chip: Chip) -> dict:
        return {"chip": self.chip, "placement": self.placement, "fits": self.fits, "fits_reason": self.fits_reason,
                "cores_used": self.cores_used,
                "cores_available": self.cores_available, "tiles_used": self.tiles_used,
                "limits_broken": self.limits_broken, "assumptions": self.assumptions,
                "utilisation": self.utilisation(chip),
                "layers": [{"name": p.name, "kind": p.kind, "first_core": p.first_core, "cores": p.cores,
                            "neurons_per_core_max": int(p.neurons_per_core.max()),
                            "synapses": p.synapses, "packets_in": p.packets_in,
                            "hops_ew_in": p.hops_ew_in, "hops_ns_in": p.hops_ns_in,
                            "packets_recurrent": p.packets_recurrent} for p in self.layers]}


PLACEMENTS = ("packed", "spread")


class PlacementError(ValueError):
    """A placement option that is not ``packed``, ``spread``, ``N`` or ``N+input`` (names the option)."""


def parse_placement(placement: str | int | None, network: Network, chip: Chip) -> tuple[int | None, int, str]:
    """``(neurons_per_core, input_cores, label)`` for a placement option (see the module docstring): ``packed``
    (or None) -> no cap; ``spread`` -> ceil(network neurons / chip cores); ``N`` -> N; ``N+input`` -> N and the
    inputs on a core of their own. The label is what reports print."""
    if placement is None or placement == "packed":
        return None, 0, "packed"
    text = str(placement).strip()
    if text == "spread":
        cores = chip.capacity.cores if chip.capacity and chip.capacity.cores else None
        if cores is None:
            raise PlacementError(f"--placement spread: {chip.name} publishes no core count to spread over")
        neurons = sum(int(np.prod(o)) for _, _, o in neuron_layers(network))
        per_core = max(1, math.ceil(neurons / cores))
        return per_core, 0, f"spread (at most {per_core} neurons per core over {cores} cores)"
    body, _, extra = text.partition("+")
    if not body.isdigit() or int(body) < 1 or extra not in ("", "input"):
        raise PlacementError(f"--placement: expected packed, spread, a number of neurons per core (e.g. 128) or "
                             f"N+input (inputs on a core of their own), got {text[:40]!r}")
    input_cores = 1 if extra == "input" else 0
    label = f"at most {int(body)} neurons per core" + (", inputs on core 0" if input_cores else "")
    return int(body), input_cores, label


def neuron_layers(network: Network) -> list[tuple[Dense | Recurrent | Conv2d | SumPool2d, tuple, tuple]]:
    """(layer, input shape, output shape) of every neuron layer (Flatten folded away)."""
    return [(layer, i, o) for layer, (i, o) in zip(network.layers, network.layer_shapes())
            if not isinstance(layer, Flatten)]


def connectivity(layer, in_shape: tuple, out_shape: tuple) -> sp.csr_matrix | None:
    """Structural connections ``(n_in, n_out)`` of a conv or pool layer as a 0/1 sparse matrix;
    ``None`` for a dense or recurrent layer (all-to-all). Depends on the shapes alone, so it is computed once per
    geometry."""
    if isinstance(layer, (Dense, Recurrent)):
        return None
    if isinstance(layer, Conv2d):
        kh, kw = layer.weight.shape[2:]
        return _connectivity(True, tuple(in_shape), tuple(out_shape), int(kh), int(kw), int(layer.stride),
                             int(layer.padding))
    return _connectivity(False, tuple(in_shape), tuple(out_shape), int(layer.kernel), int(layer.kernel),
                         int(layer.stride), 0)


@functools.lru_cache(maxsize=4)  # a few layers' matrices (tens of MB each for large convs) stay, not more
def _connectivity(conv: bool, in_shape: tuple, out_shape: tuple, kh: int, kw: int, stride: int,
                  pad: int) -> sp.csr_matrix:
    c, h, w = in_shape
    o, ho, wo = out_shape
    if conv:  # every input channel to every output channel
        ci, oi = np.repeat(np.arange(c), o), np.tile(np.arange(o), c)
    else:  # pooling: channel to the same channel
        ci = oi = np.arange(c)
    oy, ox = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    rows, cols = [], []
    for ky in range(kh):
        for kx in range(kw):
            y, x = oy * stride - pad + ky, ox * stride - pad + kx
            ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            pos_in, pos_out = (y * w + x)[ok], (oy * wo + ox)[ok]
            rows.append((ci[:, None] * (h * w) + pos_in[None, :]).ravel())
            cols.append((oi[:, None] * (ho * wo) + pos_out[None, :]).ravel())
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    matrix = sp.csr_matrix((np.ones(rows_a.size, np.int64), (rows_a, cols_a)), shape=(c * h * w, o * ho * wo))
    matrix.sum_duplicates()  # canonical: sorted column indices in every row (``_reach_counts`` relies on it)
    matrix.data.setflags(write=False)  # shared between callers through the cache
    return matrix


_REACH: dict = {}  # (id of a connectivity matrix, cores) -> (weak reference to it, (axons, dest_cores))


def _reach_counts(conn: sp.csr_matrix, n_out: int, cores: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct inputs per core ``(cores,)`` and distinct destination cores per input ``(n_in,)`` when the
    outputs of ``conn`` (a canonical CSR matrix from :func:`_connectivity`) are cut into ``cores`` contiguous
    blocks. One pass over the connections: along a row the sorted outputs give non-decreasing owner cores,
    so each (input, core) pair starts where the owner or the row changes. Remembered per matrix and count."""
    key = (id(conn), cores)
    if key in _REACH and _REACH[key][0]() is conn:
        return _REACH[key][1]
    block = math.ceil(n_out / cores)
    owner = conn.indices // block
    row = np.repeat(np.arange(conn.shape[0]), np.diff(conn.indptr))
    first = np.ones(owner.shape[0], bool)
    first[1:] = (owner[1:] != owner[:-1]) | (row[1:] != row[:-1])
    axons = np.bincount(owner[first], minlength=cores).astype(np.int64)
    dest = np.bincount(row[first], minlength=conn.shape[0]).astype(np.int64)
    axons.setflags(write=False)
    dest.setflags(write=False)
    if len(_REACH) > 128:  # never holds a matrix alive; the counts are small (one int per input and per core)
        _REACH.clear()
    _REACH[key] = (weakref.ref(conn), (axons, dest))
    return axons, dest


def _synapse_capacity(chip: Chip) -> int | None:
    cap = chip.capacity
    if cap is None:
        return None
    limits = []
    if cap.synapses_per_core:
        limits.append(cap.synapses_per_core)
    if cap.synaptic_memory_bytes_per_core:
        limits.append(cap.synaptic_memory_bytes_per_core * 8 // weight_bits(chip))
    return min(limits) if limits else None


def weight_bits(chip: Chip) -> int:
    """Bits per stored weight: the profile's ``precision.weight_bits``, else 8 (stated in the assumptions)."""
    return chip.precision.weight_bits if chip.precision and chip.precision.weight_bits else 8


def _blocks(n: int, cores: int) -> np.ndarray:
    """Neurons per core when ``n`` neurons are cut into ``cores`` contiguous blocks of ceil(n / cores)."""
    block = math.ceil(n / cores)
    return np.clip(n - block * np.arange(cores, dtype=np.int64), 0, block)  # a count past _usable: empty cores


def _block_matrix(n: int, cores: int) -> sp.csr_matrix:
    block = math.ceil(n / cores)
    owner = np.arange(n) // block
    return sp.csr_matrix((np.ones(n, np.int64), (np.arange(n), owner)), shape=(n, cores))


def weight_sharing(chip: Chip) -> tuple[str, str]:
    """How ``chip`` stores conv/pool weights (``shared_kernel``, ``per_core_copy``, ``expanded``) and the
    sentence saying on what basis (the profile's ``conv`` group; absent: expanded, assumed)."""
    if chip.conv is None:
        return "expanded", f"{chip.name} states no conv weight sharing: every connection stored as a synapse (assumed)"
    conv = chip.conv
    return conv.weight_sharing, f"conv weights on {chip.name}: {conv.weight_sharing} ({conv.basis}: {conv.source})"


def channels_per_core(n_out: int, cores: int, plane: int) -> np.ndarray:
    """``(cores, channels)`` 0/1: which output channels (planes of ``plane`` neurons, channel-major) each
    contiguous block of neurons touches."""
    sizes = _blocks(n_out, cores)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    last = first + sizes - 1
    channels = n_out // plane
    index = np.arange(channels)
    return ((index[None, :] >= (first // plane)[:, None]) & (index[None, :] <= (last // plane)[:, None])).astype(
        np.int64)


class _LayerGeometry:
    """Structural facts of one layer that placement and routing need. ``sharing`` says how a conv/pool
    layer's weights are stored (see :func:`weight_sharing`); it sets the weights a core holds. A recurrent layer's
    neurons have ``n_in + n_out`` input synapses (the input's and their own layer's spikes, all-to-all), and every
    core of the layer receives both (``n_in + n_out`` input axons)."""

    def __init__(self, layer, in_shape, out_shape, sharing: str = "expanded"):
        self.layer = layer
        self.n_in, self.n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
        self.recurrent = isinstance(layer, Recurrent)
        self.n_rec = self.n_out if self.recurrent else 0  # recurrent synapses per neuron (and axons per core)
        self.sharing = "expanded" if isinstance(layer, (Dense, Recurrent)) else sharing
        self.plane = int(np.prod(out_shape[1:])) if len(out_shape) == 3 else 1
        # weights of one output channel's kernel (a pool has one tap for the whole layer)
        self.kernel = int(np.prod(layer.weight.shape[1:])) if isinstance(layer, Conv2d) else 1
        self.conn = connectivity(layer, in_shape, out_shape)
        if self.conn is None:
            self.fan_in = np.full(self.n_out, self.n_in + self.n_rec, np.int64)
            self.fan_out = np.full(self.n_in, self.n_out, np.int64)
        else:
            self.fan_in = np.asarray(self.conn.sum(axis=0)).ravel()
            self.fan_out = np.asarray(self.conn.sum(axis=1)).ravel()

    def stored(self, cores: int) -> np.ndarray:
        """Weights each core stores: every connection (expanded, dense), the kernels of the channels it hosts
        (per-core copy), or the whole kernel on the layer's first core (shared kernel)."""
        if self.sharing == "expanded":
            owner = np.repeat(np.arange(cores), _blocks(self.n_out, cores))
            return np.bincount(owner, weights=self.fan_in, minlength=cores).astype(np.int64)
        hosted = channels_per_core(self.n_out, cores, self.plane)
        if isinstance(self.layer, SumPool2d):
            return np.ones(cores, np.int64) if self.sharing == "per_core_copy" else (np.arange(cores) == 0) * 1
        if self.sharing == "per_core_copy":
            return hosted.sum(axis=1) * self.kernel
        out = np.zeros(cores, np.int64)
        out[0] = hosted.shape[1] * self.kernel
        return out

    def min_stored(self) -> int:
        """The fewest weights the busiest core can hold however many cores the layer gets."""
        if self.sharing == "expanded":
            return int(self.fan_in.max())
        if self.sharing == "per_core_copy" or isinstance(self.layer, SumPool2d):
            return self.kernel
        return (self.n_out // self.plane) * self.kernel

    def per_core(self, cores: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stored weights, axons (distinct inputs) per core and, per input neuron, the cores it reaches."""
        synapses = self.stored(cores)
        if self.conn is None:
            return synapses, np.full(cores, self.n_in + self.n_rec, np.int64), np.full(self.n_in, cores, np.int64)
        axons, dest_cores = _reach_counts(self.conn, self.n_out, cores)
        return synapses, axons, dest_cores

    def reach(self, cores: int) -> sp.csr_matrix | None:
        return None if self.conn is None else ((self.conn @ _block_matrix(self.n_out, cores)) > 0).tocsr()


def map_network(network: Network, chip: Chip, counts: Counts | None = None,
                neurons_per_core: int | None = None, input_cores: int = 0) -> Mapping:
    """Place ``network`` on ``chip``; with ``counts`` (from :class:`hwsim.sim.engine.Engine`) also split the
    work, spikes and routing over the cores. ``neurons_per_core`` places at most that many neurons on a
    core (a "spread" mapping, e.g. SANA-FE's 128 per core), below the chip's own limit. ``input_cores``
    reserves the first cores for the inputs (SANA-FE maps its input neurons on core 0): the layers start
    after them, inputs still enter at tile (0, 0). A chip whose layers may share cores
    (``layout.layers_share_cores``, ReckOn) puts consecutive one-core dense/recurrent layers on one core when
    together they fit it (:func:`_share_cores`)."""
    cap = chip.capacity
    broken: list[str] = []
    assumptions: list[str] = []
    sharing, basis = weight_sharing(chip)
    geos = [_LayerGeometry(layer, i, o, sharing) for layer, i, o in neuron_layers(network)]
    if any(not isinstance(geo.layer, (Dense, Recurrent)) for geo in geos):
        assumptions.append(basis)
    syn_cap = _synapse_capacity(chip)
    neuron_cap = cap.neurons_per_core if cap else None
    spread = neuron_cap if neurons_per_core is None else min(neurons_per_core, neuron_cap or neurons_per_core)
    if neurons_per_core is not None:
        assumptions.append(f"spread mapping: at most {neurons_per_core} neurons per core (asked for)")
    if cap is None:
        assumptions.append(f"{chip.name} publishes no per-core capacity: one core per layer, limits unchecked")
    if cap is not None and cap.synaptic_memory_bytes_per_core and not (chip.precision and chip.precision.weight_bits):
        assumptions.append("weight precision not published: 8-bit weights assumed for the synaptic memory")
    if any(geo.recurrent for geo in geos):
        assumptions.append("recurrent layers: each neuron has n_in + n_out input synapses (its input's and its own "
                           "layer's spikes, one-step delay); a spike of a recurrent layer goes to the next layer's "
                           "cores and back to every core of its own layer (one packet per core)")
    core_counts, why = _core_counts(geos, cap, syn_cap, spread)
    host, share_notes = _share_cores(geos, core_counts, chip, neuron_cap, syn_cap)
    if any(h != k for k, h in enumerate(host)):
        groups = sorted({h for h in host})
        assumptions.append("layers sharing a core (layout.layers_share_cores): " + "; ".join(
            " + ".join(geos[k].layer.name for k in range(len(geos)) if host[k] == g) for g in groups
            if host.count(g) > 1))

    placements = []
    first = input_cores
    for k, (geo, cores) in enumerate(zip(geos, core_counts)):
        layer = geo.layer
        synapses, axons, _ = geo.per_core(cores)
        sizes = _blocks(geo.n_out, cores)
        start = first if host[k] == k else placements[host[k]].first_core
        placement = LayerPlacement(layer.name, layer.kind, geo.n_in, geo.n_out, start, cores, int(sizes[0]),
                                   int(geo.fan_in.sum()), sizes, synapses, axons)
        placements.append(placement)
        if host[k] == k:
            first += cores
        nxt = geos[k + 1] if k + 1 < len(geos) else None
        broken.extend(_layer_limits(geo, nxt, sizes, synapses, axons, cap, neuron_cap, syn_cap))
    _fan_out_edges(placements, geos, core_counts, cap, broken)

    cores_used = first
    available = cap.cores if cap else None
    if available and cores_used > available:
        detail = "; ".join(share_notes + [w for w in why if w])
        broken.append(f"cores: the network needs {cores_used} cores, the chip has {available}"
                      + (f" ({detail})" if detail else ""))
    neurons = sum(geo.n_out for geo in geos)
    synapses = sum(int(geo.fan_in.sum()) for geo in geos)
    if cap and cap.max_neurons and neurons > cap.max_neurons:
        broken.append(f"max_neurons: the network has {neurons} neurons, the chip holds {cap.max_neurons}")
    if cap and cap.max_synapses and synapses > cap.max_synapses:
        broken.append(f"max_synapses: the network has {synapses} synapses, the chip holds {cap.max_synapses}")
    broken.extend(neuron_model_limits(network, chip))
    per_tile = chip.layout.cores_per_tile if chip.layout and chip.layout.cores_per_tile else 1
    tiles_used = math.ceil(cores_used / per_tile)
    fits, reason = _verdict(chip, broken)
    if fits and (unknown := neuron_model_unknown(network, chip)) is not None:  # capacity fits, the neurons unknown
        fits, reason = None, f"{reason}; {unknown}: fit unknown"
    mapping = Mapping(chip.name, placements, cores_used, available, tiles_used, fits, broken, assumptions, reason)
    if (chip.layout is None or chip.layout.mesh_width_tiles is None) and not (chip.layout and not chip.layout.noc):
        assumptions.append("mesh layout not published: one core per tile on a square mesh (assumed)")
    if counts is not None:
        _split_work(mapping, geos, counts, chip)
    return mapping


def _core_counts(geos: list[_LayerGeometry], cap, syn_cap: int | None,
                 spread: int | None) -> tuple[list[int], list[str]]:
    """Cores per layer (as few as its per-core limits allow) and, per layer, why it needs more than one core
    (empty when one suffices)."""
    core_counts, why = [], []
    for geo in geos:
        cores, reasons = 1, []
        if spread:
            cores = max(cores, math.ceil(geo.n_out / spread))
            if cores > 1:
                reasons.append(f"{geo.n_out} neurons, at most {spread} a core")
        if syn_cap:
            if geo.sharing == "expanded":
                need = math.ceil(int(geo.fan_in.sum()) / syn_cap)
                if need > 1:
                    reasons.append(f"{int(geo.fan_in.sum())} synapses, {syn_cap} a core")
                cores = max(cores, need)
            elif geo.sharing == "per_core_copy" and geo.min_stored() > syn_cap:
                cores = max(cores, geo.n_out // geo.plane)  # one channel per core is the best there is
            cores = _usable(geo.n_out, cores)
            while cores < geo.n_out and geo.min_stored() <= syn_cap and int(geo.stored(cores).max()) > syn_cap:
                cores = _next_usable(geo.n_out, cores)
        axon_cap = cap.fan_in_axons_per_core if cap else None
        if axon_cap and geo.conn is not None:  # conv / pool: smaller tiles of outputs read fewer inputs
            def fits(c, geo=geo, limit=axon_cap):
                return int(geo.per_core(_usable(geo.n_out, c))[1].max()) <= limit

            cores = _usable(geo.n_out, _fewest_cores(fits, cores, geo.n_out))
        cores = _usable(geo.n_out, cores)  # the same largest block, no empty core
        if cores > 1:
            detail = ", ".join(reasons) or "its input axons per core"
            reasons = [f"layer {geo.layer.name} alone needs {cores} cores: {detail}"]
        core_counts.append(cores)
        why.append(reasons[0] if cores > 1 else "")
    edge_cap = cap.fan_out_edges_per_core if cap else None
    if edge_cap:  # a feeding core's neurons x destination cores must fit its routing table
        for k in range(len(geos) - 1, -1, -1):
            if k + 1 == len(geos) and not geos[k].recurrent:
                continue
            while core_counts[k] < geos[k].n_out:
                owner = np.repeat(np.arange(core_counts[k]), _blocks(geos[k].n_out, core_counts[k]))
                dest = _destination_cores(geos, core_counts, k)
                if np.bincount(owner, weights=dest, minlength=core_counts[k]).max() <= edge_cap:
                    break
                core_counts[k] = _next_usable(geos[k].n_out, core_counts[k])
    return core_counts, why


def _destination_cores(geos: list[_LayerGeometry], core_counts: list[int], k: int) -> np.ndarray:
    """Destination cores of each neuron of layer ``k`` ``(n_out,)``: the next layer's cores it reaches, plus every
    core of its own layer when it is recurrent."""
    dest = np.zeros(geos[k].n_out, np.int64)
    if k + 1 < len(geos):
        dest = dest + geos[k + 1].per_core(core_counts[k + 1])[2]
    if geos[k].recurrent:
        dest = dest + core_counts[k]
    return dest


def _share_cores(geos: list[_LayerGeometry], core_counts: list[int], chip: Chip, neuron_cap: int | None,
                 syn_cap: int | None) -> tuple[list[int], list[str]]:
    """Which layer's core each layer sits on (``host[k] == k``: cores of its own) and, where two neighbours could
    not share, why. Only on a chip with ``layout.layers_share_cores``: a run of consecutive dense/recurrent
    layers of one core each shares one core while together they fit its neurons, synapses and input axons (the
    distinct spike sources the core's neurons listen to: the chip's inputs or a layer's neurons, each counted
    once, so a readout reading the recurrent neurons beside them adds no axons)."""
    host = list(range(len(geos)))
    notes: list[str] = []
    if not (chip.layout is not None and chip.layout.layers_share_cores):
        return host, notes
    cap = chip.capacity
    axon_cap = cap.fan_in_axons_per_core if cap else None
    k = 0
    while k < len(geos):
        j = k
        if core_counts[k] == 1 and geos[k].conn is None:
            while j + 1 < len(geos) and core_counts[j + 1] == 1 and geos[j + 1].conn is None:
                group = range(k, j + 2)
                sources = {}
                for m in group:
                    sources[m - 1] = geos[m].n_in
                    if geos[m].recurrent:
                        sources[m] = geos[m].n_out
                load = {"neurons_per_core": (sum(geos[m].n_out for m in group), neuron_cap, "neurons"),
                        "synapses_per_core": (sum(int(geos[m].fan_in.sum()) for m in group), syn_cap, "synapses"),
                        "fan_in_axons_per_core": (sum(sources.values()), axon_cap, "input axons")}
                over = [f"{name} {value} > {limit} ({what})" for name, (value, limit, what) in load.items()
                        if limit and value > limit]
                if over:
                    names = " + ".join(geos[m].layer.name for m in group)
                    notes.append(f"layers {names} do not fit one core together: {', '.join(over)}")
                    break
                j += 1
        for m in range(k, j + 1):
            host[m] = k
        k = j + 1
    return host, notes


def _layer_limits(geo: _LayerGeometry, nxt: _LayerGeometry | None, sizes: np.ndarray, synapses: np.ndarray,
                  axons: np.ndarray, cap, neuron_cap: int | None, syn_cap: int | None) -> list[str]:
    """Every per-core and per-neuron limit one layer's placement breaks, in words."""
    broken = []
    where = f"layer {geo.layer.name}"
    if neuron_cap and sizes.max() > neuron_cap:
        broken.append(f"neurons_per_core: {where} needs {sizes.max()} neurons on a core, chip allows {neuron_cap}")
    if syn_cap and synapses.max() > syn_cap:
        if geo.sharing == "expanded":
            rec = f" = {geo.n_in} inputs + {geo.n_rec} recurrent" if geo.recurrent else ""
            what = f"synapses on a core (a neuron's fan-in is {int(geo.fan_in.max())}{rec})"
        else:
            what = f"kernel weights ({geo.sharing}) on a core (one output channel's kernel is {geo.kernel})"
        broken.append(f"synapses_per_core: {where} needs {synapses.max()} {what}, chip holds {syn_cap}")
    if cap and cap.fan_in_axons_per_core and axons.max() > cap.fan_in_axons_per_core:
        rec = f" ({geo.n_in} inputs + {geo.n_rec} of its own recurrent neurons)" if geo.recurrent else ""
        broken.append(f"fan_in_axons_per_core: {where} needs {axons.max()} input axons on a core{rec}, "
                      f"chip allows {cap.fan_in_axons_per_core}")
    if cap and cap.fan_in_per_neuron and geo.fan_in.max() > cap.fan_in_per_neuron:
        rec = f" ({geo.n_in} inputs + {geo.n_rec} recurrent)" if geo.recurrent else ""
        broken.append(f"fan_in_per_neuron: neurons of {where} have {int(geo.fan_in.max())} input synapses{rec}, "
                      f"chip allows {cap.fan_in_per_neuron} per neuron")
    if cap and cap.fan_out_per_neuron and geo.fan_out.max() > cap.fan_out_per_neuron:
        broken.append(f"fan_out_per_neuron: inputs of {where} reach {int(geo.fan_out.max())} neurons, "
                      f"chip allows {cap.fan_out_per_neuron} per neuron")
    if cap and cap.fan_out_per_neuron and geo.recurrent:
        onward = int(nxt.fan_out.max()) if nxt is not None else 0
        if geo.n_out + onward > cap.fan_out_per_neuron:
            broken.append(f"fan_out_per_neuron: neurons of {where} reach {geo.n_out + onward} neurons ({geo.n_out} "
                          f"recurrent + {onward} in the next layer), chip allows {cap.fan_out_per_neuron} per neuron")
    return broken


def _fan_out_edges(placements: list[LayerPlacement], geos: list[_LayerGeometry], core_counts: list[int], cap,
                   broken: list[str]) -> None:
    """Routing edges per core (neurons x destination cores, the next layer's and, for a recurrent layer, its
    own) into each placement, and the limit they break."""
    edge_cap = cap.fan_out_edges_per_core if cap else None
    for k, placement in enumerate(placements):
        if k + 1 == len(placements) and not geos[k].recurrent:
            continue
        dest = _destination_cores(geos, core_counts, k)
        owner = np.repeat(np.arange(placement.cores), placement.neurons_per_core)
        placement.fan_out_edges_per_core = np.bincount(owner, weights=dest, minlength=placement.cores).astype(np.int64)
        if edge_cap and placement.fan_out_edges_per_core.max() > edge_cap:
            edges = int(placement.fan_out_edges_per_core.max())
            broken.append(f"fan_out_edges_per_core: layer {placement.name} needs {edges} routing edges on a core, "
                          f"chip allows {edge_cap}")


def with_counts(structure: Mapping, network: Network, chip: Chip, counts: Counts) -> Mapping:
    """``map_network(network, chip, counts)`` from the mapping without counts that ``map_network(network, chip)``
    already made (a copy of its placement, with the work, spikes and routing of ``counts`` split over the
    cores): the placement does not depend on the counts, so callers pricing several runs on one chip place once."""
    if structure.chip != chip.name:
        raise ValueError(f"with_counts: the mapping is for {structure.chip}, not {chip.name}")
    mapping = copy.deepcopy(structure)
    sharing, _ = weight_sharing(chip)
    geos = [_LayerGeometry(layer, i, o, sharing) for layer, i, o in neuron_layers(network)]
    _split_work(mapping, geos, counts, chip)
    return mapping


def adaptive_layers(network: Network) -> list[str]:
    """Names of the layers of ``network`` whose neurons adapt their threshold (ALIF)."""
    return [layer.name or f"layer {i}" for i, layer in enumerate(network.layers)
            if isinstance(getattr(layer, "neuron", None), FloatALIF)]


def neuron_model_limits(network: Network, chip: Chip) -> list[str]:
    """The broken-limit text when ``network`` has ALIF layers and ``chip`` publishes neuron models without
    ``alif`` (ReckOn: LIF only); empty otherwise (an unpublished model is the callers' "unknown")."""
    adaptive = adaptive_layers(network)
    if not adaptive or chip.neurons is None or "alif" in chip.neurons.models:
        return []
    return [f"neuron model: {', '.join(adaptive[:3])} {'has' if len(adaptive) == 1 else 'have'} adaptive-threshold "
            f"(ALIF) neurons; {chip.name} implements {', '.join(chip.neurons.models)} neurons only"]


def neuron_model_unknown(network: Network, chip: Chip) -> str | None:
    """Why it is unknown whether ``chip`` runs ``network``'s ALIF layers (a neuromorphic chip publishing no neuron
    models), else None. General-purpose processors run any neuron model."""
    if not has_adaptation(network) or chip.neurons is not None or chip.kind != "neuromorphic":
        return None
    return f"adaptive-threshold (ALIF) neurons: {chip.name} publishes no neuron models (neurons.models)"


def _verdict(chip: Chip, broken: list[str]) -> tuple[bool | None, str]:
    """``fits`` (True, False or None for unknown) and the reason in words."""
    if broken:
        return False, "breaks " + "; ".join(broken)
    cap = chip.capacity
    if cap is None:
        return None, f"{chip.name} publishes no capacity: fit unknown"
    if not (cap.synapses_per_core or cap.synaptic_memory_bytes_per_core or cap.max_synapses):
        return None, f"{chip.name} publishes no synapse capacity (per core or per chip): fit unknown"
    checked = [name for name, value in cap.figures().items() if name != "learning_memory_bytes_per_core" and value]
    return True, "within every published limit (" + ", ".join(checked) + ")"


def _usable(n: int, cores: int) -> int:
    """The cores that contiguous blocks of ceil(n / cores) neurons really fill (never an empty core)."""
    return math.ceil(n / math.ceil(n / cores))


def _next_usable(n: int, cores: int) -> int:
    """The fewest usable cores (see :func:`_usable`) above ``cores``: the next smaller block size."""
    block = math.ceil(n / cores)
    return n if block <= 1 else _usable(n, math.ceil(n / (block - 1)))


def _fewest_cores(fits, cores: int, most: int) -> int:
    """The fewest cores from ``cores`` up to ``most`` for which ``fits(cores)`` holds (doubling, then
    bisection: the load per core falls as tiles shrink); ``cores`` itself when nothing fits."""
    if fits(cores):
        return cores
    low, high = cores, cores
    while not fits(high):
        if high >= most:
            return cores
        low, high = high, min(2 * high, most)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


def tile_xy(core: np.ndarray | int, chip: Chip, cores_used: int) -> tuple[np.ndarray, np.ndarray]:
    """Mesh coordinates (x, y) of the tile holding ``core``."""
    per_tile = chip.layout.cores_per_tile if chip.layout and chip.layout.cores_per_tile else 1
    width = chip.layout.mesh_width_tiles if chip.layout and chip.layout.mesh_width_tiles else None
    if width is None:
        total = chip.capacity.cores if chip.capacity and chip.capacity.cores else cores_used
        width = max(1, math.ceil(math.sqrt(math.ceil(max(total, cores_used) / per_tile))))
    tile = np.asarray(core) // per_tile
    return tile % width, tile // width


def recurrent_sops(lc: LayerCounts) -> int:
    """SOPs of a recurrent layer's recurrent synapses over the run: its ``sop_recurrent`` counter (every
    :class:`LayerCounts` carries every counter)."""
    return lc.total("sop_recurrent")


def _split_work(mapping: Mapping, geos: list[_LayerGeometry], counts: Counts, chip: Chip) -> None:
    """Exact per-core SOPs, neuron updates, spikes and routed packets/hops from per-neuron counts. A recurrent
    layer's neurons each receive every recurrent spike delivered (:func:`recurrent_sops` / n_out), and each spike
    it emits is one packet to every core of the layer (sent when emitted, the last step's included)."""
    steps_samples = counts.timesteps * counts.batch
    for k, (placement, geo, lc) in enumerate(zip(mapping.layers, geos, counts.layers)):
        _check_counts(placement, lc)
        owner = np.repeat(np.arange(placement.cores), placement.neurons_per_core)
        if geo.conn is None:
            received = np.full(geo.n_out, int(lc.input_spikes.sum()), np.int64)
        else:
            received = np.asarray(geo.conn.T @ lc.input_spikes).ravel().astype(np.int64)
        if geo.recurrent:  # all-to-all: every neuron receives every delivered recurrent spike
            received = received + recurrent_sops(lc) // geo.n_out
            _recurrent_routing(mapping, placement, lc, chip)
        placement.sop_per_core = np.bincount(owner, weights=received, minlength=placement.cores).astype(np.int64)
        placement.updates_per_core = placement.neurons_per_core * steps_samples
        placement.active_per_core = np.bincount(owner, weights=lc.neuron_active,
                                                minlength=placement.cores).astype(np.int64)
        placement.spikes_per_core = np.bincount(owner, weights=lc.neuron_spikes,
                                                minlength=placement.cores).astype(np.int64)
        if lc.neuron_weight_updates is not None:
            placement.weight_updates_per_core = np.bincount(owner, weights=lc.neuron_weight_updates,
                                                            minlength=placement.cores).astype(np.int64)
        elif lc.channel_weight_updates is not None:
            placement.weight_updates_per_core = conv_weight_writes(geo, placement.cores, lc.channel_weight_updates)
        # packets and hops into this layer: from the feeding layer's cores, or from the I/O tile for inputs
        dest_cores = placement.first_core + np.arange(placement.cores)
        dx, dy = tile_xy(dest_cores, chip, mapping.cores_used)
        reach = geo.reach(placement.cores)
        if k == 0:
            sx = sy = np.zeros(geo.n_in, np.int64)
        else:
            prev = mapping.layers[k - 1]
            src_core = prev.first_core + np.repeat(np.arange(prev.cores), prev.neurons_per_core)
            sx, sy = tile_xy(src_core, chip, mapping.cores_used)
        spikes = lc.input_spikes
        if chip.layout is not None and not chip.layout.noc:
            per_input = placement.cores if reach is None else _reach_counts(geo.conn, geo.n_out, placement.cores)[1]
            placement.packets_in = int((spikes * per_input).sum())
            continue
        if reach is None:
            hop_x = np.abs(sx[:, None] - dx[None, :]).sum(axis=1)
            hop_y = np.abs(sy[:, None] - dy[None, :]).sum(axis=1)
            packets = spikes.sum() * placement.cores
            longest = int((np.abs(sx[:, None] - dx[None, :]) + np.abs(sy[:, None] - dy[None, :])).max())
        else:
            coo = reach.tocoo()
            ex = np.abs(sx[coo.row] - dx[coo.col])
            ey = np.abs(sy[coo.row] - dy[coo.col])
            hop_x = np.bincount(coo.row, weights=ex, minlength=geo.n_in)
            hop_y = np.bincount(coo.row, weights=ey, minlength=geo.n_in)
            packets = int((spikes * _reach_counts(geo.conn, geo.n_out, placement.cores)[1]).sum())
            used = spikes[coo.row] > 0
            longest = int((ex + ey)[used].max()) if used.any() else 0
        placement.packets_in = int(packets)
        placement.hops_ew_in = int((spikes * hop_x).sum())
        placement.hops_ns_in = int((spikes * hop_y).sum())
        placement.max_hops_in = longest if spikes.sum() > 0 else 0


def _recurrent_routing(mapping: Mapping, placement: LayerPlacement, lc: LayerCounts, chip: Chip) -> None:
    """Packets and hops of a recurrent layer's own spikes back to every core of the layer (exact per source
    neuron: its spikes x the Manhattan distances from its core to each of the layer's cores)."""
    emitted = np.asarray(lc.neuron_spikes, np.int64)
    placement.packets_recurrent = int(emitted.sum()) * placement.cores
    if chip.layout is not None and not chip.layout.noc:
        return
    cores = placement.first_core + np.arange(placement.cores)
    src = placement.first_core + np.repeat(np.arange(placement.cores), placement.neurons_per_core)
    sx, sy = tile_xy(src, chip, mapping.cores_used)
    dx, dy = tile_xy(cores, chip, mapping.cores_used)
    ex, ey = np.abs(sx[:, None] - dx[None, :]), np.abs(sy[:, None] - dy[None, :])
    placement.hops_ew_recurrent = int((emitted * ex.sum(axis=1)).sum())
    placement.hops_ns_recurrent = int((emitted * ey.sum(axis=1)).sum())
    fired = emitted > 0
    placement.max_hops_recurrent = int((ex + ey)[fired].max()) if fired.any() else 0


def core_load(layer, in_shape: tuple, out_shape: tuple, cores: int, sharing: str) -> tuple[int, int, int]:
    """The busiest core's neurons, stored weights and input axons when a conv, pool or dense layer is cut
    into ``cores`` contiguous blocks of output neurons, weights stored as ``sharing`` says. Remembered per
    geometry (the answer depends on the layer's shape alone, and feasibility asks it for every chip, rule and
    candidate core count: unremembered, a conv net's ``--rules all`` spent 40 s here)."""
    key = (_geometry_key(layer, in_shape, out_shape), int(cores), sharing)
    if key not in _CORE_LOAD:
        geo = _LayerGeometry(layer, in_shape, out_shape, sharing)
        stored, axons, _ = geo.per_core(cores)
        if len(_CORE_LOAD) >= 65536:  # three ints an entry: bounded all the same
            _CORE_LOAD.clear()
        _CORE_LOAD[key] = (int(_blocks(geo.n_out, cores).max()), int(stored.max()), int(axons.max()))
    return _CORE_LOAD[key]


_CORE_LOAD: dict = {}  # (geometry, cores, sharing) -> core_load's answer


def _geometry_key(layer, in_shape: tuple, out_shape: tuple) -> tuple:
    """What a layer's connectivity depends on: its kind, shapes, kernel, stride and padding (not weights)."""
    if isinstance(layer, Conv2d):
        extra = (tuple(layer.weight.shape), int(layer.stride), int(layer.padding))
    elif isinstance(layer, SumPool2d):
        extra = (int(layer.kernel), int(layer.stride))
    else:
        extra = ()
    return type(layer).__name__, tuple(in_shape), tuple(out_shape), extra


def stored_weights(layer, in_shape: tuple, out_shape: tuple, sharing: str) -> int:
    """Weights a layer stores in all (one core's view of a shared kernel; every connection when expanded)."""
    geo = _LayerGeometry(layer, in_shape, out_shape, sharing)
    if geo.sharing == "expanded":
        return int(geo.fan_in.sum())
    return geo.kernel * (geo.n_out // geo.plane) if isinstance(layer, Conv2d) else 1


def conv_weight_writes(geo: _LayerGeometry, cores: int, channel_writes: np.ndarray) -> np.ndarray:
    """Weights written per core when each output channel's shared kernel had ``channel_writes[o]`` weights
    updated: once per copy (per-core copy: every core hosting the channel), once in all (shared kernel: on
    the channel's first core), or at every connection using the weight (expanded: the channel's neurons on
    the core x its writes -- an upper bound, border neurons lack some taps)."""
    hosted = channels_per_core(geo.n_out, cores, geo.plane)
    if geo.sharing == "per_core_copy":
        return hosted @ channel_writes
    if geo.sharing == "shared_kernel":
        first = np.argmax(hosted, axis=0)
        return np.bincount(first, weights=channel_writes, minlength=cores).astype(np.int64)
    owner = np.repeat(np.arange(cores), _blocks(geo.n_out, cores))
    per_neuron = np.repeat(channel_writes, geo.plane)
    return np.bincount(owner, weights=per_neuron, minlength=cores).astype(np.int64)


def _check_counts(placement: LayerPlacement, lc: LayerCounts) -> None:
    if lc.n_out != placement.n_out or lc.n_in != placement.n_in:
        raise ValueError(f"counts of layer {lc.name} ({lc.n_in} -> {lc.n_out}) do not belong to this network "
                         f"({placement.n_in} -> {placement.n_out})")
