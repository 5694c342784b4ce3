"""``loihi_sanafe`` against SANA-FE 2.2.9 on SANA-FE's own Loihi workload (tests/data/sanafe_loihi_mlp).

SANA-FE's result (stored from its run): 37.83 pJ per synaptic event; synapse / soma / network 93.8 / 3.7 / 2.5 %
of the energy; 70.1 us per step with its detailed timing model, 40.5 us with its simple one. hwsim prices the
workload on SANA-FE's own spikes (the cost model alone) and on its own float run of the same weights.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hwsim.chips import ChipError

from hwsim import chips
from hwsim.hardware.cost import estimate
from hwsim.hardware.mapping import map_network
from hwsim.sim.engine import Engine
from hwsim.sim.network import Dense, FloatLIF, Network

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cs():
    spec = importlib.util.spec_from_file_location("compare_sanafe", ROOT / "benchmarks" / "compare_sanafe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def priced(cs):
    workload = cs.load_workload()
    net = cs.network(workload)
    return {"spikes": cs.price(net, cs.counts_from_spikes(net, workload)),
            "own": cs.price(net, cs.hwsim_counts(net, workload)),
            "sanafe": cs.sanafe_figures(cs.sanafe_result())}


def test_counts_on_sanafe_spikes_are_sanafes_events_and_packets(priced):
    r, s = priced["spikes"], priced["sanafe"]
    assert r["synaptic_events"] == s["synaptic_events"] == 57_585_224
    assert r["packets"] == s["packets"] == 480_288  # one packet per destination core, input layer included


@pytest.mark.parametrize("source", ["spikes", "own"])
def test_energy_per_event_and_shares_match_sanafe(priced, source):
    r, s = priced[source], priced["sanafe"]
    assert r["pj_per_event"] == pytest.approx(37.83, rel=0.05)
    assert r["pj_per_event"] == pytest.approx(s["pj_per_event"], rel=0.05)
    for part, published in (("synapse", 93.8), ("soma", 3.7), ("network", 2.5)):
        assert abs(r["shares_percent"][part] - published) <= 2.0, part
        assert abs(r["shares_percent"][part] - s["shares_percent"][part]) <= 2.0, part


@pytest.mark.parametrize("source", ["spikes", "own"])
def test_latency_per_step_against_sanafe(priced, source):
    """The profile's detailed model against SANA-FE's detailed one (70.1 us), the simple model against
    SANA-FE's simple one (40.5 us): each within 15 %."""
    r, s = priced[source], priced["sanafe"]
    assert r["latency_model"] == "detailed"
    assert s["us_per_step"] == pytest.approx(70.1, abs=0.05)
    assert s["us_per_step_simple"] == pytest.approx(40.5, abs=0.05)
    assert r["us_per_step"] == pytest.approx(s["us_per_step"], rel=0.15)
    assert r["us_per_step_simple"] == pytest.approx(s["us_per_step_simple"], rel=0.15)
    assert r["us_per_step"] > 1.5 * r["us_per_step_simple"]  # the stalls the simple model cannot see


@pytest.mark.parametrize("variant", ["rate5", "core64"])
def test_latency_models_on_two_more_workloads(cs, variant):
    """Not one number: half the input spikes, or 64 neurons per core (T = 200, hwsim's own run); SANA-FE 2.2.9's
    figures stored from its live run (tests/data/sanafe_loihi_mlp/sanafe_variants_T200.json)."""
    r, s = cs.price_variant(cs.load_workload(), variant), cs.sanafe_variants()[variant]
    assert r["us_per_step"] == pytest.approx(s["us_per_step"], rel=0.15)
    assert r["us_per_step_simple"] == pytest.approx(s["us_per_step_simple"], rel=0.15)


def _one_layer(n_in: int, n_out: int, spikes_per_step: int, steps: int = 4):
    """A dense n_in -> n_out layer on one core, fed ``spikes_per_step`` input spikes every step (no output spikes)."""
    net = Network(n_in, [Dense(np.zeros((n_out, n_in), np.float32), FloatLIF(lam=0.9, v_th=1.0), name="d")])
    spikes = np.zeros((steps, 1, n_in), np.float32)
    spikes[:, 0, :spikes_per_step] = 1.0
    return net, Engine(net).run(spikes).counts


def _with_buffer(chip, messages: int):
    return chip.model_copy(update={"timing": chip.timing.model_copy(update={"link_buffer_messages": messages})})


def test_detailed_model_by_hand_without_blocking():
    """3 input messages 5.1 ns apart to one core that takes 16 + 2 x 3.8 ns each: the last one is done at
    5.1 + 3 x 23.6 ns (each waits for the one before); the core's own sweep (2 x 9.7 ns) ends earlier; one
    tile: barrier 600 ns."""
    chip = chips.load("loihi_sanafe")
    net, counts = _one_layer(4, 2, 3)
    report = estimate(net, counts, chip, map_network(net, chip, counts), static="none")
    assert report.latency_model == "detailed"
    assert report.step_latency_s == pytest.approx((5.1 + 3 * (16 + 2 * 3.8) + 600) * 1e-9, rel=1e-9)
    simple = (2 * 3.8 * 3 + 2 * 9.7 + 3 * 16 + 600) * 1e-9  # the core's SOPs + updates + packets in, + barrier
    assert report.step_latency_simple_s == pytest.approx(simple, rel=1e-9)
    assert report.to_dict()["latency_model"] == "detailed" and report.to_dict()["step_latency_simple_s"] == simple


def test_detailed_model_stalls_a_sender_when_the_link_buffers_are_full():
    """40 input spikes, each a message to 4 cores (16 neurons each: 16 + 16 x 3.8 ns per message). No schedule
    beats the last core busy from the 4th message's departure on: 4 x 5.1 + 40 x 76.8 ns (messages also arrive
    later when the link holds others: they queue behind them). With one-message link buffers the port stalls for
    the excess x the mean receive time, as if one core drained them all, and the cores wait: the step is longer."""
    chip = chips.load("loihi_sanafe")
    net, counts = _one_layer(64, 64, 40)
    mapping = map_network(net, chip, counts, neurons_per_core=16)
    times = {m: estimate(net, counts, _with_buffer(chip, m), mapping, static="none").step_latency_s * 1e9 - 600
             for m in (1, 16, 1000)}
    assert times[1000] >= 4 * 5.1 + 40 * (16 + 16 * 3.8) - 1e-9
    assert times[1] > 1.1 * times[1000] and times[16] >= times[1000]


def test_detailed_model_needs_its_figures(tmp_path):
    text = (ROOT / "chips" / "loihi_sanafe.yaml").read_text().replace("  link_buffer_messages: 16\n", "")
    path = tmp_path / "loihi_sanafe.yaml"
    path.write_text(text)
    with pytest.raises(ChipError, match="timing.link_buffer_messages"):
        chips.load(str(path))


def test_profile_is_sanafes_derived_calibration_with_loihis_learning():
    chip, loihi = chips.load("loihi_sanafe"), chips.load("loihi")
    assert chip.energy.basis == "derived" and chip.timing.basis == "derived"
    assert chip.energy.packet_pj == 111.0 and chip.energy.spike_out_pj == 69.3
    assert (chip.timing.sop_ns, chip.timing.packet_in_ns, chip.timing.neuron_update_ns, chip.timing.spike_out_ns,
            chip.timing.packet_out_ns) == (3.8, 16.0, 9.7, 30.0, 5.1)
    assert chip.learning.model_dump(exclude={"source", "note"}) == loihi.learning.model_dump(exclude={"source", "note"})


def test_sanafe_placement_through_the_api_reproduces_its_step(cs):
    """SANA-FE's own placement (128 neurons per core, inputs on core 0) as an estimate option: its ~70 us step,
    where the default packed placement gives ~90 us (the placement is an assumption, printed in the record)."""
    workload = cs.load_workload()
    net = cs.network(workload)
    counts = cs.counts_from_spikes(net, workload)
    chip = chips.load("loihi_sanafe")
    spread = estimate(net, counts, chip, static="none", placement="128+input")
    packed = estimate(net, counts, chip, static="none")
    assert spread.step_latency_s * 1e6 == pytest.approx(70.1, rel=0.05)
    assert spread.cores_used == 10 and "128 neurons per core" in spread.placement
    assert packed.placement == "packed" and packed.step_latency_s > 1.2 * spread.step_latency_s
    assert spread.to_dict()["placement"] == spread.placement
