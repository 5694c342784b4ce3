"""The cost model against hand arithmetic on the JSON counts and the raw YAML figures, per chip."""

import json

import numpy as np
import pytest
import yaml

from hwsim import chips
from hwsim.cli.main import main
from hwsim.hardware.cost import estimate
from hwsim.hardware.mapping import connectivity, map_network, neuron_layers
from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.network import from_spec

NET = "2x10x10-c6k3p1-p2-24-10"


@pytest.fixture(scope="module")
def estimate_json():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["estimate", "--net", NET, "-T", "30", "--rate", "0.2", "--batch-size", "2", "--json"]) == 0
    return json.loads(out.getvalue())


def _dense_synapses(layer: dict) -> int:
    """Structural synapses of a layer of NET, written out from its shapes (not from hwsim)."""
    if layer["kind"] == "dense":
        return layer["n_in"] * layer["n_out"]
    if layer["kind"] == "conv2d":  # 2x10x10 -> 6x10x10, 3x3, padding 1: border pixels see fewer inputs
        per_axis = sum(min(x + 1, 9) - max(x - 1, 0) + 1 for x in range(10))
        return 6 * 2 * per_axis * per_axis
    return layer["n_out"] * 4  # 2x2 sum pool, stride 2: four inputs per output


def _by_hand(report: dict, counts: list[dict], fig: dict, timesteps: int, batch: int) -> tuple[float, float | None]:
    """(dynamic, static) energy from the JSON counts and the raw YAML, written out without the cost model; static
    is None where it is unknown (unpublished, or no step time)."""
    energy = fig.get("energy", {})
    memory = fig.get("memory", {})
    joules = 0.0
    if fig.get("kind") == "gpu":
        macs = sum(_dense_synapses(layer) for layer in counts) * timesteps * batch
        joules = macs * energy["dense_mac_pj"] * 1e-12
        joules += sum(layer["neuron_updates"] for layer in counts) * energy["neuron_update_pj"] * 1e-12
        step = len(counts) * 2 * fig["timing"]["kernel_launch_us"] * 1e-6 + macs / timesteps * (
            fig["timing"]["dense_mac_ns"] * 1e-9)
        assert report["latency_s"] == pytest.approx(step * timesteps, rel=1e-12)
        return joules, fig["static"]["static_power_mw"] * 1e-3 * report["latency_s"]
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
        joules += placed["packets_in"] * energy.get("packet_pj", 0.0) * 1e-12
        if "hop_ew_pj" in energy:
            joules += (placed["hops_ew_in"] * energy["hop_ew_pj"] + placed["hops_ns_in"] * energy["hop_ns_pj"]) * 1e-12
        elif "hop_pj" in energy:
            joules += (placed["hops_ew_in"] + placed["hops_ns_in"]) * energy["hop_pj"] * 1e-12
        if not energy.get("includes_memory", False):
            joules += layer["mem_read_bytes"] * memory.get("read_pj_per_byte", 0.0) * 1e-12
            joules += layer["mem_write_bytes"] * memory.get("write_pj_per_byte", 0.0) * 1e-12
    if "management_power_mw" in fig.get("system", {}):  # the x86 management cores while the run is active
        joules += fig["system"]["management_power_mw"] * 1e-3 * report["latency_s"]
    static = None
    if "static" in fig and report["latency_s"] is not None:
        static = fig["static"]["static_power_mw"] * 1e-3 * report["latency_s"]
        if energy.get("all_in", False):  # all-in: static is inside the figures, but never below static x time
            static = max(0.0, static - joules)
    return joules, static


@pytest.mark.parametrize("name", chips.names())
def test_energy_recomputed_by_hand_matches(estimate_json, name):
    report = next(r for r in estimate_json["chips"] if r["chip"] == name)
    fig = yaml.safe_load((chips.CHIP_DIR / f"{name}.yaml").read_text())
    dynamic, static = _by_hand(report, estimate_json["counts"], fig, estimate_json["timesteps"],
                               estimate_json["batch"])
    all_in = fig.get("energy", {}).get("all_in", False)
    if all_in:  # an all-in figure cannot separate dynamic from static: both unknown, the all-in total apart
        assert report["energy_dynamic_j"] is None and report["energy_static_j"] is None
        assert report["energy_all_in_j"] == pytest.approx(dynamic, rel=1e-12, abs=0)
        assert report["energy_j"] == pytest.approx(dynamic + (static or 0.0), rel=1e-12)
    else:
        assert report["energy_dynamic_j"] == pytest.approx(dynamic, rel=1e-12, abs=0)
        if static is None:
            assert report["energy_static_j"] is None, "unknown static energy is null, never 0"
        else:
            assert report["energy_static_j"] == pytest.approx(static, rel=1e-12, abs=0)
        assert report["energy_j"] == pytest.approx(dynamic + (static or 0.0), rel=1e-12)
    assert report["energy_j"] == pytest.approx(sum(report["energy_by_action_j"].values()), rel=1e-12)
    assert report["lower_bound"] == bool(report["unpriced"])
    if "static" not in fig and not all_in:
        assert "static" in report["unpriced_counts"], "an unpublished static power is unpriced, not zero"
    if dynamic == 0:
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
    # + the x86 injecting every input spike (time per spike from the profile's system group)
    inject_ns = lc.total("spikes_in") * chips.load("loihi").system.input_spike_ns
    assert report.latency_s == pytest.approx((step_ns * 40 * 3 + inject_ns) * 1e-9, rel=1e-12)
    assert report.latency_per_sample_s == pytest.approx(report.latency_s / 3, rel=1e-12)
    assert report.energy_by_action_j["static"] == pytest.approx(0.029 * report.latency_s, rel=1e-12)
    assert report.energy_management_j == pytest.approx(chips.load("loihi").system.management_power_mw * 1e-3
                                                       * report.latency_s, rel=1e-12)


SMALL_CORES = """
name: small
full_name: small cores
capacity:
  source: "test profile with tiny cores"
  basis: estimate
  cores: 64
  neurons_per_core: 50
  synapses_per_core: 5000
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
    # one core of 4096: far from the all-in operating point, so it warns and floors at 42 mW x time
    assert r["all_in_warnings"] and r["all_in_one_core_pj"] > 100 * 26.0


def test_energy_by_core_adds_up_to_compute_plus_static():
    net = from_spec("40-30-10", mode="fixed", seed=1)
    counts = Engine(net).run(bernoulli((20, 2, 40), 0.3, seed=2)).counts
    report = estimate(net, counts, chips.load("loihi")).to_dict()
    per_action = report["energy_by_action_j"]
    compute = per_action["sop"] + per_action["neuron_update"] + per_action["spike_out"] + per_action["static"]
    assert len(report["energy_by_core_j"]) == 2 and sum(report["energy_by_core_j"]) == pytest.approx(compute)


def test_learning_latency_includes_the_weight_write_back_where_timed():
    from hwsim.learning.feasibility import learning_counts

    net = from_spec("40-30-10", seed=1)
    counts = learning_counts(net, "sltt", 6, 0.3, batch=2)
    chip = chips.load("loihi")
    mapping = map_network(net, chip, counts)
    with_writes = estimate(net, counts, chip, mapping).step_latency_s
    for placement in mapping.layers:
        placement.weight_updates_per_core = None
    without = estimate(net, counts, chip, mapping).step_latency_s
    assert with_writes > without


def _cli_json(argv: list[str]) -> dict:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv + ["--json"]) == 0
    return json.loads(out.getvalue())


def test_estimate_json_carries_energy_parts_unpriced_and_fits():
    data = _cli_json(["estimate", "--net", "20-10", "-T", "10", "--chip", "all"])
    for r in data["chips"]:
        for key in ("energy_dynamic_j", "energy_static_j", "energy_j", "unpriced", "unpriced_counts", "fits",
                    "static_mode", "static_assumption", "lower_bound"):
            assert key in r, (r["chip"], key)
        assert r["fits"] in (True, False, None)
    by_chip = {r["chip"]: r for r in data["chips"]}
    assert by_chip["anp_i"]["fits"] is None and "no capacity" in by_chip["anp_i"]["fits_reason"]
    assert by_chip["loihi"]["energy_static_j"] > 0 and by_chip["loihi"]["static_mode"] == "whole-chip"


def test_unpriced_learning_is_a_lower_bound_never_a_bare_number(capsys):
    data = _cli_json(["estimate", "--net", "30-20-10", "-T", "6", "--rules", "sltt", "--chip", "spinnaker2"])
    r = data["chips"][0]
    assert r["unpriced_counts"]["error_mac"] > 0 and r["lower_bound"]
    assert r["energy_text"].startswith("≥ ") and "actions unpriced" in r["energy_text"]
    capsys.readouterr()
    assert main(["estimate", "--net", "30-20-10", "-T", "6", "--rules", "sltt", "--chip", "spinnaker2"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("spinnaker2"))
    assert "≥" in row and "unpriced" in row


def test_stored_history_is_priced_as_memory_even_where_actions_include_their_own_accesses():
    """Loihi's action energies include their memory accesses, but BPTT's stored history belongs to no action:
    its bytes are unpriced (no memory figure), so BPTT is a lower bound above SLTT, never equal to it."""
    from hwsim.learning.feasibility import learning_counts

    net = from_spec("30-20-10", seed=1)
    loihi, generic = chips.load("loihi"), chips.load("generic_45nm")
    bptt = learning_counts(net, "bptt", 12, 0.2, seed=0)
    sltt = learning_counts(net, "sltt", 12, 0.2, seed=0)
    history = (sum(int(lc.mem_read_bytes["history"].sum()) for lc in bptt.layers),
               sum(int(lc.mem_write_bytes["history"].sum()) for lc in bptt.layers))
    assert min(history) > 0
    on_loihi = estimate(net, bptt, loihi)
    assert on_loihi.unpriced_counts["history bytes read"] == history[0]
    assert on_loihi.unpriced_counts["history bytes written"] == history[1]
    assert on_loihi.lower_bound and any("history bytes read: " in u and " bytes, " in u for u in on_loihi.unpriced)
    assert not any("history" in u for u in estimate(net, sltt, loihi).unpriced)  # SLTT keeps no history
    # where the actions exclude their memory accesses every byte is priced, the history included
    m = generic.memory
    report = estimate(net, bptt, generic)
    read = sum(lc.total("mem_read_bytes") for lc in bptt.layers)
    written = sum(lc.total("mem_write_bytes") for lc in bptt.layers)
    assert report.energy_by_action_j["memory"] == pytest.approx((read * m.read_pj_per_byte
                                                                 + written * m.write_pj_per_byte) * 1e-12)


def test_truenorth_on_two_cores_warns_and_floors_at_static_times_time():
    net = from_spec("300-200", mode="fixed", seed=1)
    counts = Engine(net).run(bernoulli((50, 1, 300), 0.05, seed=2)).counts
    report = estimate(net, counts, chips.load("truenorth"))
    assert report.cores_used <= 2
    assert any("far from that point" in w for w in report.warnings)
    floor = 42e-3 * report.latency_s
    assert report.energy_all_in_j < floor and report.energy_j == pytest.approx(floor, rel=1e-12)
    assert report.energy_dynamic_j is None and report.energy_static_j is None  # all-in: not separable
    assert report.static_mode.startswith("all-in, floored")
    # its dynamic energy above static is unknown: the floor is a lower bound, never printed as exact
    assert report.lower_bound and report.unpriced_counts["dynamic above static"] == counts.total("sop")
    assert report.energy_text().startswith("≥ ")


def test_gpu_prices_the_dense_network_at_least_the_event_count_per_sop():
    net = from_spec("784-512-512-10", mode="fixed", seed=0)
    counts = Engine(net).run(bernoulli((20, 2, 784), 0.05, seed=1)).counts
    chip = chips.load("gpu_a100")
    report = estimate(net, counts, chip)
    macs = (784 * 512 + 512 * 512 + 512 * 10) * 20 * 2
    assert report.energy_by_action_j["dense_mac"] == pytest.approx(macs * chip.energy.dense_mac_pj * 1e-12)
    event_priced = counts.total("sop") * chip.energy.fp32_flop_pj * 1e-12  # the old event-driven best case
    assert report.energy_dynamic_j >= event_priced and report.energy_j > report.energy_dynamic_j
    assert report.latency_s == pytest.approx(20 * (3 * 2 * 5e-6 + macs / 20 * chip.timing.dense_mac_ns * 1e-9))
    assert report.estimate_kind.startswith("estimate") and report.static_mode == "whole-chip"


def test_static_modes_and_a_mode_the_profile_cannot_support(tmp_path, capsys):
    net = from_spec("40-30-10", mode="fixed", seed=1)
    counts = Engine(net).run(bernoulli((20, 1, 40), 0.3, seed=2)).counts
    loihi = chips.load("loihi")
    whole = estimate(net, counts, loihi)
    none = estimate(net, counts, loihi, static="none")
    assert none.energy_static_j is None and none.energy_j == pytest.approx(whole.energy_dynamic_j)
    assert none.to_dict()["energy_static_j"] is None and none.static_mode == "none"
    assert whole.energy_static_j == pytest.approx(0.029 * whole.latency_s)
    assert main(["estimate", "--net", "40-30-10", "-T", "5", "--chip", "loihi", "--static", "cores-used"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loihi.yaml" in err[0] and "static.scales_with_cores" in err[0]
    text = (chips.CHIP_DIR / "loihi.yaml").read_text().replace("static_power_mw: 29.0",
                                                              "static_power_mw: 29.0\n  scales_with_cores: true")
    path = tmp_path / "loihi_gated.yaml"
    path.write_text(text.replace("name: loihi\n", "name: loihi_gated\n"))
    gated = chips.load(path)
    used = estimate(net, counts, gated, static="cores-used")
    assert used.energy_static_j == pytest.approx(0.029 * used.latency_s * used.cores_used / 128)


def test_loihi2_capacity_is_checked_per_core():
    net = from_spec("784-512", mode="fixed")
    mapping = map_network(net, chips.load("loihi2"))
    assert mapping.fits is True  # 401 k synapses spread until each core's 128 KB holds its 8-bit weights
    assert all(int(p.synapses_per_core.max()) <= 131072 for p in mapping.layers) and mapping.layers[0].cores >= 4


def test_chips_whose_synapses_cannot_hold_the_weights_say_so():
    net = from_spec("30-20-10", mode="fixed", seed=1)
    counts = Engine(net).run(bernoulli((10, 1, 30), 0.2, seed=2)).counts
    warned = {name: any("cannot hold 8-bit weights" in w for w in estimate(net, counts, chips.load(name)).warnings)
              for name in ("truenorth", "odin", "loihi", "spinnaker2")}
    assert warned == {"truenorth": True, "odin": True, "loihi": False, "spinnaker2": False}
