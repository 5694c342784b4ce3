"""The cost model against hand arithmetic on the JSON counts and the raw YAML figures, per chip."""

import json

import numpy as np
import pytest
import yaml

import chips
from hwsim.cli import main
from hwsim.cost import estimate
from hwsim.engine import Engine, bernoulli
from hwsim.mapping import connectivity, map_network, neuron_layers
from hwsim.network import from_spec

NET = "2x10x10-c6k3p1-p2-24-10"


@pytest.fixture(scope="module")
def estimate_json():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["estimate", "--net", NET, "-T", "30", "--rate", "0.2", "--batch", "2", "--json"]) == 0
    return json.loads(out.getvalue())


def _by_hand(report: dict, counts: list[dict], fig: dict) -> float:
    """Energy from the JSON counts and the raw YAML, written out without the cost model."""
    energy = fig.get("energy", {})
    memory = fig.get("memory", {})
    joules = 0.0
    for layer, placed in zip(counts, report["mapping"]["layers"]):
        sop_pj = energy.get("sop_conv_pj") if layer["kind"] in ("conv2d", "sumpool2d") else None
        sop_pj = sop_pj if sop_pj is not None else energy.get("sop_pj")
        if sop_pj is not None:
            joules += layer["sop"] * sop_pj * 1e-12
        active, idle = layer["neuron_updates_active"], layer["neuron_updates"] - layer["neuron_updates_active"]
        if "neuron_update_active_pj" in energy and "neuron_update_idle_pj" in energy:
            joules += (active * energy["neuron_update_active_pj"] + idle * energy["neuron_update_idle_pj"]) * 1e-12
        elif "neuron_update_pj" in energy:
            joules += layer["neuron_updates"] * energy["neuron_update_pj"] * 1e-12
        joules += layer["spikes_out"] * energy.get("spike_out_pj", 0.0) * 1e-12
        if "hop_ew_pj" in energy:
            joules += (placed["hops_ew_in"] * energy["hop_ew_pj"] + placed["hops_ns_in"] * energy["hop_ns_pj"]) * 1e-12
        elif "hop_pj" in energy:
            joules += (placed["hops_ew_in"] + placed["hops_ns_in"]) * energy["hop_pj"] * 1e-12
        if not energy.get("includes_memory", False):
            joules += layer["mem_read_bytes"] * memory.get("read_pj_per_byte", 0.0) * 1e-12
            joules += layer["mem_write_bytes"] * memory.get("write_pj_per_byte", 0.0) * 1e-12
    if "static" in fig and not energy.get("all_in", False) and report["latency_s"] is not None:
        joules += fig["static"]["static_power_mw"] * 1e-3 * report["latency_s"]
    return joules


@pytest.mark.parametrize("name", chips.names())
def test_energy_recomputed_by_hand_matches(estimate_json, name):
    report = next(r for r in estimate_json["chips"] if r["chip"] == name)
    fig = yaml.safe_load((chips.CHIP_DIR / f"{name}.yaml").read_text())
    expected = _by_hand(report, estimate_json["counts"], fig)
    assert report["energy_j"] == pytest.approx(expected, rel=1e-12, abs=0)
    assert report["energy_j"] == pytest.approx(sum(report["energy_by_action_j"].values()), rel=1e-12)
    if expected == 0:
        assert report["unpriced"], "a chip that prices nothing must say what it could not price"


def test_counts_in_json_are_the_engine_counts(estimate_json):
    net = from_spec(NET, mode="fixed", seed=0)
    counts = Engine(net).run(bernoulli((30, 2, 2, 10, 10), 0.2, seed=1)).counts
    assert [layer["sop"] for layer in estimate_json["counts"]] == [lc.total("sop") for lc in counts.layers]


def test_network_too_big_for_odin_names_the_limit():
    net = from_spec("784-300-10", mode="fixed")
    counts = Engine(net).run(bernoulli((5, 1, 784), 0.1)).counts
    report = estimate(net, counts, chips.load("odin"))
    assert report.fits is False
    assert any(limit.startswith("fan_in_axons_per_core: layer dense0 needs 784 input axons") for limit in
               report.limits_broken)
    assert any(limit.startswith("neurons_per_core") or limit.startswith("cores:") for limit in report.limits_broken)
    small = from_spec("200-100", mode="fixed")
    counts = Engine(small).run(bernoulli((5, 1, 200), 0.1)).counts
    assert estimate(small, counts, chips.load("odin")).fits is True


def test_loihi_latency_by_hand():
    net = from_spec("20-10", mode="fixed", seed=2)
    counts = Engine(net).run(bernoulli((40, 3, 20), 0.3, seed=3)).counts
    report = estimate(net, counts, chips.load("loihi"))
    lc = counts.layers[0]
    active = lc.total("neuron_updates_active")
    work_ns = (lc.total("sop") * 3.5 + active * 8.4 + (lc.total("neuron_updates") - active) * 5.3
               + lc.total("spikes_out") * 2.1)
    step_ns = work_ns / (40 * 3) + 0 * 6.5 + 113.0  # one core on tile 0 (the I/O tile): no hops; barrier 1 tile
    assert report.step_latency_s == pytest.approx(step_ns * 1e-9, rel=1e-12)
    assert report.latency_s == pytest.approx(step_ns * 1e-9 * 40 * 3, rel=1e-12)
    assert report.energy_by_action_j["static"] == pytest.approx(0.104 * report.latency_s, rel=1e-12)


SMALL_CORES = """
name: small
full_name: small cores
capacity:
  source: "test profile with tiny cores"
  basis: estimate
  cores: 64
  neurons_per_core: 50
layout:
  source: "test profile"
  basis: estimate
  cores_per_tile: 2
  mesh_width_tiles: 3
"""


def test_per_core_split_and_routing_against_brute_force(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_CORES)
    chip = chips.load(path)
    net = from_spec("2x8x8-c3k3s1p1-p2-c4k3s2-12", mode="float", seed=4)
    counts = Engine(net).run(bernoulli((6, 2, 2, 8, 8), 0.3, seed=5)).counts
    mapping = map_network(net, chip, counts)
    assert mapping.fits
    for placement, lc in zip(mapping.layers, counts.layers):
        assert placement.neurons_per_core.max() <= 50
        assert placement.sop_per_core.sum() == lc.total("sop")
        assert placement.spikes_per_core.sum() == lc.total("spikes_out")
        assert placement.active_per_core.sum() == lc.total("neuron_updates_active")
    # packets: each spike goes once to every core that holds one of its targets (brute force over pairs)
    for k, ((layer, i, o), placement, lc) in enumerate(zip(neuron_layers(net), mapping.layers, counts.layers)):
        conn = connectivity(layer, i, o)
        dense = np.ones((lc.n_in, lc.n_out), bool) if conn is None else conn.toarray() > 0
        owner = np.arange(lc.n_out) // placement.block
        expected = sum(int(lc.input_spikes[j]) * len(set(owner[dense[j]])) for j in range(lc.n_in))
        assert placement.packets_in == expected, f"layer {k}"


def test_truenorth_reproduction_example():
    """The README example: TrueNorth's all-in 26 pJ/event from 2.3 pJ marginal + 42 mW static at 20 Hz."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce_truenorth.py"
    spec = importlib.util.spec_from_file_location("reproduce_truenorth", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    r = module.truenorth_check(ticks=400)
    assert r["events_per_s"] == pytest.approx(2**20 * 20 * 128, rel=0.05)
    assert r["pj_per_event"] == pytest.approx(2.3 + 42e-3 / r["events_per_s"] * 1e12, rel=1e-9)
    assert r["all_in_profile_pj"] == pytest.approx(26.0, rel=1e-12)


def test_energy_by_core_adds_up_to_compute_plus_static():
    net = from_spec("40-30-10", mode="fixed", seed=1)
    counts = Engine(net).run(bernoulli((20, 2, 40), 0.3, seed=2)).counts
    report = estimate(net, counts, chips.load("loihi")).to_dict()
    per_action = report["energy_by_action_j"]
    compute = per_action["sop"] + per_action["neuron_update"] + per_action["spike_out"] + per_action["static"]
    assert len(report["energy_by_core_j"]) == 2 and sum(report["energy_by_core_j"]) == pytest.approx(compute)


def test_learning_latency_includes_the_weight_write_back_where_timed():
    from hwsim.feasibility import learning_counts

    net = from_spec("40-30-10", seed=1)
    counts = learning_counts(net, "sltt", 6, 0.3, batch=2)
    chip = chips.load("loihi")
    mapping = map_network(net, chip, counts)
    with_writes = estimate(net, counts, chip, mapping).step_latency_s
    for placement in mapping.layers:
        placement.weight_updates_per_core = None
    without = estimate(net, counts, chip, mapping).step_latency_s
    assert with_writes > without
