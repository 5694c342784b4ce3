"""Recurrent layers on cores: fan-in n_in + n_out, spikes routed to the next layer and back to the layer's own cores,
every per-core limit applied; ReckOn's (256)-r256-16 on its one core (Frenkel & Indiveri, ISSCC 2022), and what does
not fit refused naming the limit. Each number is held against a hand count from the layer sizes or a plain loop over
the placement."""

import numpy as np
import pytest
from hwsim.chips.schema import Chip

from hwsim import chips
from hwsim.hardware.cost import estimate, step_latency_s
from hwsim.hardware.mapping import map_network, recurrent_sops, tile_xy
from hwsim.sim.counts import Counts, LayerCounts
from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.network import from_spec


def _chip(**groups) -> Chip:
    """A small test profile: the given groups (capacity, layout, energy, timing ...) and nothing else."""
    return Chip.model_validate({"name": "toy", "full_name": "toy chip", **groups})


def _cap(**fields) -> dict:
    return {"source": "test profile", "basis": "specified", **fields}


def _counts(net, spikes_out: list[np.ndarray], input_spikes: list[np.ndarray], steps: int,
            sop_recurrent: dict[int, int] | None = None) -> Counts:
    """Hand-made counts of one sample: per layer the spikes each neuron emitted (spread over the steps) and each
    input received; SOPs as the engine defines them (feed-forward spikes x fan-out + recurrent SOPs)."""
    layers = []
    for k, ((layer, (i, o)), emitted, received) in enumerate(zip(zip(net.layers, net.layer_shapes()), spikes_out,
                                                                  input_spikes)):
        lc = LayerCounts(layer.name, layer.kind, int(np.prod(i)), int(np.prod(o)), steps)
        lc.neuron_spikes = np.asarray(emitted, np.int64)
        lc.input_spikes = np.asarray(received, np.int64)
        lc.neuron_active = np.zeros(lc.n_out, np.int64)
        lc.events["spikes_out"][0] = int(lc.neuron_spikes.sum())  # all in step 0 (per-step split unused here)
        lc.events["spikes_in"][0] = int(lc.input_spikes.sum())
        rec = (sop_recurrent or {}).get(k, 0)
        lc.events["sop_recurrent"][0] = rec
        lc.events["sop"][0] = int(lc.input_spikes.sum()) * lc.n_out + rec
        lc.events["neuron_updates"][:] = lc.n_out
        layers.append(lc)
    return Counts(steps, 1, net.mode, layers=layers)


def test_reckon_holds_its_own_network_on_its_one_core():
    """256 inputs, 256 recurrent LIF, 16 readout (ISSCC 2022): 272 neurons, 2 x 256 x 256 + 256 x 16 synapses and
    512 input axons (256 inputs + the 256 recurrent neurons, which the readout reads too) -- exactly the chip."""
    reckon = chips.load("reckon")
    mapping = map_network(from_spec("256-r256-16", seed=0), reckon)
    assert mapping.fits is True and mapping.cores_used == 1, mapping.limits_broken
    rec, out = mapping.layers
    assert (rec.first_core, rec.cores, out.first_core, out.cores) == (0, 1, 0, 1)
    assert rec.synapses == 256 * (256 + 256) and out.synapses == 256 * 16
    assert rec.synapses + out.synapses == reckon.capacity.synapses_per_core == 135168
    assert int(rec.neurons_per_core[0] + out.neurons_per_core[0]) == reckon.capacity.neurons_per_core == 272
    assert int(rec.axons_per_core[0]) == 256 + 256 == reckon.capacity.fan_in_axons_per_core
    assert any("recurrent0 + dense1" in a for a in mapping.assumptions)


def test_reckon_takes_a_feed_forward_net_of_its_size_too():
    """256-256-16 used to need 2 cores (every layer had cores of its own): with layers sharing the core it fits."""
    mapping = map_network(from_spec("256-256-16", seed=0), chips.load("reckon"))
    assert mapping.fits is True and mapping.cores_used == 1


@pytest.mark.parametrize("spec, fragments", [
    ("256-r512-16", ["fan_in_axons_per_core: layer recurrent0 needs 768 input axons", "512 neurons, at most 272",
                     "393216 synapses, 135168 a core", "the chip has 1"]),
    ("256-r256-32", ["cores: the network needs 2 cores, the chip has 1", "neurons_per_core 288 > 272",
                     "synapses_per_core 139264 > 135168"]),
])
def test_nets_over_reckons_limits_are_refused_naming_the_limit(spec, fragments):
    mapping = map_network(from_spec(spec, seed=0), chips.load("reckon"))
    text = "; ".join(mapping.limits_broken)
    assert mapping.fits is False
    for fragment in fragments:
        assert fragment in text, text


def test_layers_keep_their_own_cores_unless_the_profile_says_they_share():
    reckon = chips.load("reckon")
    apart = reckon.model_copy(update={"layout": reckon.layout.model_copy(update={"layers_share_cores": False})})
    mapping = map_network(from_spec("256-r256-16", seed=0), apart)
    assert mapping.cores_used == 2 and mapping.fits is False
    assert [p.first_core for p in mapping.layers] == [0, 1]


def test_recurrent_layer_limits_on_loihi_count_its_own_spikes():
    """40-r128-16 on Loihi: the recurrent layer's core reads 40 + 128 axons, holds 128 x 168 synapses, and each of
    its neurons sends to 2 cores (the readout's and its own): 128 x 2 routing edges."""
    mapping = map_network(from_spec("40-r128-16", seed=0), chips.load("loihi"))
    rec, out = mapping.layers
    assert mapping.fits is True and rec.cores == 1 and out.first_core == 1
    assert int(rec.axons_per_core[0]) == 168 and int(rec.synapses_per_core[0]) == 128 * 168
    assert int(rec.fan_out_edges_per_core[0]) == 128 * 2
    assert out.fan_out_edges_per_core is None  # a feed-forward last layer sends off chip


def test_per_neuron_and_per_core_limits_name_the_recurrent_part():
    chip = _chip(capacity=_cap(cores=64, neurons_per_core=4, synapses_per_core=10_000, fan_in_per_neuron=20,
                               fan_out_per_neuron=12, fan_in_axons_per_core=18, fan_out_edges_per_core=100))
    mapping = map_network(from_spec("10-r10-3", seed=0), chip)
    text = "; ".join(mapping.limits_broken)
    assert "fan_in_axons_per_core: layer recurrent0 needs 20 input axons on a core (10 inputs + 10 of its own" in text
    assert "fan_out_per_neuron: neurons of layer recurrent0 reach 13 neurons (10 recurrent + 3 in the next layer)" \
        in text
    assert "fan_in_per_neuron" not in text  # 20 input synapses: at the limit, not over it


def test_recurrent_work_packets_and_hops_split_over_a_mesh_by_hand():
    """A recurrent layer cut over 3 cores of a 2-wide mesh: each neuron receives every feed-forward input spike and
    every recurrent SOP / n_out; each spike it emits is a packet to each of its layer's 3 cores, hops by Manhattan
    distance -- compared with a loop over neurons and cores."""
    chip = _chip(capacity=_cap(cores=16, neurons_per_core=2, synapses_per_core=1000),
                 layout={"source": "test", "basis": "specified", "cores_per_tile": 1, "mesh_width_tiles": 2})
    net = from_spec("4-r6-2", seed=0)
    emitted = np.array([3, 0, 2, 5, 1, 4])
    received = np.array([1, 2, 0, 3])
    counts = _counts(net, [emitted, np.array([1, 2])], [received, emitted], steps=5, sop_recurrent={0: 60})
    mapping = map_network(net, chip, counts)
    rec = mapping.layers[0]
    assert rec.cores == 3 and rec.first_core == 0
    per_neuron = received.sum() + 60 // 6
    assert rec.sop_per_core.tolist() == [2 * per_neuron] * 3
    assert int(rec.sop_per_core.sum()) == counts.layers[0].total("sop")
    assert rec.packets_recurrent == emitted.sum() * 3
    ew = ns = longest = 0
    for j, spikes in enumerate(emitted):
        sx, sy = tile_xy(j // 2, chip, mapping.cores_used)
        for core in range(3):
            dx, dy = tile_xy(core, chip, mapping.cores_used)
            ew += spikes * abs(int(sx) - int(dx))
            ns += spikes * abs(int(sy) - int(dy))
            if spikes:
                longest = max(longest, abs(int(sx) - int(dx)) + abs(int(sy) - int(dy)))
    assert (rec.hops_ew_recurrent, rec.hops_ns_recurrent, rec.max_hops_recurrent) == (ew, ns, longest)
    assert rec.packets_in == received.sum() * 3  # the feed-forward inputs, as before


def test_recurrent_packets_and_hops_are_priced_with_the_feed_forward_ones():
    energy = {"source": "test", "basis": "specified", "all_in": False, "includes_memory": True, "sop_pj": 2.0,
              "packet_pj": 5.0, "hop_pj": 7.0}
    chip = _chip(capacity=_cap(cores=16, neurons_per_core=2, synapses_per_core=1000), energy=energy,
                 layout={"source": "test", "basis": "specified", "cores_per_tile": 1, "mesh_width_tiles": 2})
    net = from_spec("4-r6-2", mode="fixed", seed=0)
    emitted, received = np.array([3, 0, 2, 5, 1, 4]), np.array([1, 2, 0, 3])
    counts = _counts(net, [emitted, np.array([1, 2])], [received, emitted], steps=5, sop_recurrent={0: 60})
    report = estimate(net, counts, chip, static="none")
    mapping = map_network(net, chip, counts)
    packets = sum(p.packets_in + p.packets_recurrent for p in mapping.layers)
    hops = sum(p.hops_ew_in + p.hops_ns_in + p.hops_ew_recurrent + p.hops_ns_recurrent for p in mapping.layers)
    assert mapping.layers[0].packets_recurrent > 0 and packets > mapping.layers[0].packets_recurrent
    assert report.energy_by_action_j["packet"] == pytest.approx(packets * 5e-12)
    assert report.energy_by_action_j["routing"] == pytest.approx(hops * 7e-12)
    assert report.energy_by_action_j["sop"] == pytest.approx(counts.total("sop") * 2e-12)
    assert any("60 of the" in a and "recurrent" in a for a in report.assumptions)


def test_busiest_core_adds_the_layers_that_share_it():
    """Simple latency on a chip whose layers share a core: the core's work is both layers' SOPs."""
    timing = {"source": "test", "basis": "specified", "sop_ns": 1.0}
    chip = _chip(capacity=_cap(cores=1, neurons_per_core=20, synapses_per_core=1000), timing=timing,
                 layout={"source": "test", "basis": "specified", "noc": False, "layers_share_cores": True})
    net = from_spec("4-r6-2", seed=0)
    emitted, received = np.array([3, 0, 2, 5, 1, 4]), np.array([1, 2, 0, 3])
    counts = _counts(net, [emitted, np.array([1, 2])], [received, emitted], steps=5, sop_recurrent={0: 60})
    mapping = map_network(net, chip, counts)
    assert mapping.cores_used == 1
    seconds, _ = step_latency_s(mapping, counts, chip)
    assert seconds == pytest.approx(counts.total("sop") / 5 * 1e-9)


def test_engine_counts_split_exactly_over_cores():
    """A real run of a recurrent fixed-point net: the per-core SOPs add up to the layer's SOPs (recurrent included)
    and the recurrent packets are every emitted spike x the layer's cores."""
    net = from_spec("30-r40-5", mode="fixed", seed=3)
    counts = Engine(net).run(bernoulli((12, 2, 30), 0.3, seed=4)).counts
    chip = _chip(capacity=_cap(cores=32, neurons_per_core=16, synapses_per_core=100_000))
    mapping = map_network(net, chip, counts)
    rec, lc = mapping.layers[0], counts.layers[0]
    assert rec.cores == 3
    assert int(rec.sop_per_core.sum()) == lc.total("sop")
    assert recurrent_sops(lc) == lc.total("sop_recurrent") > 0
    assert rec.packets_recurrent == lc.total("spikes_out") * 3


def test_every_layer_counts_carries_the_recurrent_counter():
    """Counts always hold ``sop_recurrent`` (a counter cannot be dropped), so the mapper never guesses it."""
    lc = LayerCounts("r", "recurrent", 3, 4, 4)
    lc.events["sop_recurrent"][:] = [0, 8, 4, 0]
    assert recurrent_sops(lc) == 12
    with pytest.raises(TypeError, match="sop_recurrent"):
        del lc.events["sop_recurrent"]


def test_detailed_timing_schedules_the_recurrent_messages():
    """loihi_sanafe's message schedule: a recurrent layer's cores also send to their own layer's cores; without
    those messages the step would be shorter."""
    from hwsim.hardware.noc_timing import detailed_step_latency_ns

    chip = chips.load("loihi_sanafe")
    net = from_spec("64-r300-10", mode="fixed", seed=0)
    counts = Engine(net).run(bernoulli((8, 1, 64), 0.2, seed=1)).counts
    mapping = map_network(net, chip, counts)
    assert mapping.layers[0].packets_recurrent == counts.layers[0].total("spikes_out") * mapping.layers[0].cores
    with_rec = detailed_step_latency_ns(mapping, counts, chip)[0]
    mapping.layers[0].packets_recurrent = 0
    without = detailed_step_latency_ns(mapping, counts, chip)[0]
    assert with_rec.sum() > without.sum()


def test_a_tick_without_published_action_times_still_lasts_the_tick():
    reckon = chips.load("reckon")
    net = from_spec("16-r8-4", mode="fixed", seed=0)
    counts = Engine(net).run(bernoulli((20, 1, 16), 0.2, seed=1)).counts
    assert estimate(net, counts, reckon).latency_s is None  # compute time base: no time per action published
    report = estimate(net, counts, reckon, time_base="tick")
    assert report.latency_s == pytest.approx(20 * 1e-3)
    assert any("assumed to fit in the tick" in a for a in report.assumptions)


def test_alif_layers_need_a_chip_that_publishes_alif_neurons():
    """ReckOn publishes LIF neurons only: an ALIF net does not fit there; on Loihi (published ALIF) it does; on a
    neuromorphic chip publishing no neuron models the feasibility verdict is unknown and the estimate warns."""
    from hwsim import chips
    from hwsim.hardware.cost import estimate
    from hwsim.learning.feasibility import check
    from hwsim.sim.engine import Engine, bernoulli
    from hwsim.sim.network import from_spec

    alif, lif = from_spec("40-a16-2", "float", seed=0), from_spec("40-r16-2", "float", seed=0)
    reckon, loihi, odin = (chips.load(n) for n in ("reckon", "loihi", "odin"))
    assert reckon.neurons.models == ["lif"] and "alif" in loihi.neurons.models and odin.neurons is None
    assert map_network(lif, reckon).fits and not map_network(alif, reckon).fits
    assert any(t.startswith("neuron model: recurrent0 has adaptive-threshold (ALIF) neurons; reckon implements lif")
               for t in map_network(alif, reckon).limits_broken)
    assert not any(t.startswith("neuron model") for t in map_network(alif, loihi).limits_broken)
    tianjic = chips.load("tianjic")  # capacity fits, neuron models unpublished: the fit is unknown, not true
    assert map_network(lif, tianjic).fits is True and map_network(alif, tianjic).fits is None
    assert "publishes no neuron models" in map_network(alif, tianjic).fits_reason
    verdict = check(alif, reckon, "eprop", 20, eligibility="per_neuron")
    assert verdict.verdict.startswith("infeasible") and "neuron model" in verdict.verdict
    assert check(lif, reckon, "eprop", 20, eligibility="per_neuron").verdict == "feasible"
    unknown = check(alif, odin, "sltt", 20)
    assert any("publishes no neuron models" in u for u in unknown.unknown)  # listed; infeasible wins on odin
    counts = Engine(alif).run(bernoulli((20, 1, 40), 0.1, seed=1)).counts
    assert any("publishes no neuron models" in w for w in estimate(alif, counts, odin).warnings)
    assert not any("neuron models" in w for w in estimate(alif, counts, loihi).warnings)
