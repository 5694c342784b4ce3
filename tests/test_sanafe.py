"""``loihi_sanafe`` against SANA-FE 2.2.9 on SANA-FE's own Loihi workload (tests/data/sanafe_loihi_mlp).

SANA-FE's result (stored from its run): 37.83 pJ per synaptic event; synapse / soma / network 93.8 / 3.7 / 2.5 %
of the energy; 70.1 us per step with its detailed timing model, 40.7 us with its simple one. hwsim prices the
workload on SANA-FE's own spikes (the cost model alone) and on its own float run of the same weights.
"""

import importlib.util
from pathlib import Path

import pytest

import chips

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
    """hwsim's latency is SANA-FE's simple model (busiest core + route + sync): within 15 % of its 40.7 us.
    SANA-FE's detailed model adds its NoC blocking heuristic (70.1 us), which hwsim does not model."""
    r = priced[source]
    assert r["us_per_step"] == pytest.approx(40.7, rel=0.15)
    assert r["us_per_step"] < priced["sanafe"]["us_per_step"]


def test_profile_is_sanafes_derived_calibration_with_loihis_learning():
    chip, loihi = chips.load("loihi_sanafe"), chips.load("loihi")
    assert chip.energy.basis == "derived" and chip.timing.basis == "derived"
    assert chip.energy.packet_pj == 111.0 and chip.energy.spike_out_pj == 69.3
    assert (chip.timing.sop_ns, chip.timing.packet_in_ns, chip.timing.neuron_update_ns, chip.timing.spike_out_ns,
            chip.timing.packet_out_ns) == (3.8, 16.0, 9.7, 30.0, 5.1)
    assert chip.learning.model_dump(exclude={"source", "note"}) == loihi.learning.model_dump(exclude={"source", "note"})
