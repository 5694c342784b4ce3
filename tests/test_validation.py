"""The chip profiles against published silicon measurements (hwsim.hardware.validation), the records' bands, the
assumptions that reorder chips, and no 0 standing for unknown anywhere in a record."""

import json
import math

import pytest

from hwsim import chips
from hwsim.hardware import validation
from hwsim.hardware.cost import (
    Activity,
    CostError,
    assumption_flips,
    compare_assumptions,
    distinguishable,
    estimate,
    price_activity,
)
from hwsim.hardware.mapping import map_network
from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.network import from_spec


@pytest.fixture(scope="module")
def cases():
    return validation.run()


def test_every_published_case_is_priced_beside_its_measurement(cases):
    chips_covered = {c.chip for c in cases}
    assert {"loihi", "loihi2", "odin", "reckon", "truenorth"} <= chips_covered
    names = " ".join(c.case for c in cases)
    for needle in ("keyword spotting", "sMNIST", "PilotNet", "backprop", "ODIN", "ReckOn", "TrueNorth"):
        assert needle in names
    for c in cases:
        assert c.measured > 0 and c.estimate is not None and c.ratio == pytest.approx(c.estimate / c.measured)
        assert c.source and c.workload and c.basis and c.role in ("calibration", "check", "fit")
        json.dumps(c.to_dict(), allow_nan=False)


def test_each_measured_value_is_inside_its_band_and_no_case_is_off_by_3x(cases):
    for c in cases:
        assert c.inside, (c.case, c.chip, c.ratio, c.low, c.high)
        assert 1 / 3 <= c.ratio <= 3, (c.case, c.chip, c.ratio)


def test_calibrated_bands_no_wider_than_2_and_cover_the_residuals(cases):
    residuals = validation.profile_residuals(cases)
    for name, kinds in residuals.items():
        u = chips.load(name).uncertainty
        for kind, factor in kinds.items():
            band = validation.band_factor(name, kind)
            assert band is not None and band >= factor, (name, kind, factor, band)
        if u.status == "calibrated":
            assert u.energy_factor <= 2 and (u.latency_factor or 1) <= 2, name


def test_calibration_cases_are_also_predicted_leaving_themselves_out(cases):
    calibration = [c for c in cases if c.role == "calibration" and c.chip == "loihi"]
    assert len(calibration) == 4
    for c in calibration:
        assert c.loo_estimate is not None and c.loo_ratio == pytest.approx(c.loo_estimate / c.measured)
        # a calibration that sees the case fits it better than one that does not
        assert abs(math.log(c.ratio)) <= abs(math.log(c.loo_ratio)) + 1e-9


def test_profiles_carry_the_fits_the_validation_computes():
    for name in ("loihi",):
        chip = chips.load(name)
        fit = validation.fit_loihi_system(chip)
        assert chip.system.management_power_mw == fit["management_power_mw"]
        assert chip.system.input_spike_ns == fit["input_spike_ns"]
        assert chip.system.basis == "fitted"
    fit = validation.fit_loihi2()
    loihi2 = chips.load("loihi2")
    for key in ("sop_pj", "neuron_update_pj", "spike_out_pj"):
        assert getattr(loihi2.energy, key) == fit[key], key
    for key in ("sop_ns", "neuron_update_ns"):
        assert getattr(loihi2.timing, key) == fit[key], key


def test_loihi_keyword_spotting_within_3x_as_estimate_prices_it():
    """`hwsim estimate --net 390-256-256-29 -T 10 --rate 0.1 --chip loihi` (compute-bound step, x86 injection and
    management cores included) against Blouw et al.'s 270 uJ dynamic per inference."""
    report = validation.kws_estimate(chips.load("loihi"))
    assert 270e-6 / 3 <= report.energy_dynamic_j <= 270e-6 * 3
    assert report.energy_management_j > 0 and any("management cores" in a for a in report.assumptions)
    assert any("input spikes injected" in a for a in report.assumptions)
    ticked = validation.kws_estimate(chips.load("loihi"), tick_us=1e6 / 296 / 10)
    assert ticked.time_base == "tick" and 270e-6 / 2 <= ticked.energy_dynamic_j <= 270e-6 * 2


def test_loihi2_pilotnet_total_within_30_percent():
    r = price_activity(chips.load("loihi2"), validation.pilotnet_activity())
    assert r.energy_j == pytest.approx(1.661e-3, rel=0.3)
    assert r.energy_static_j == pytest.approx(0.232 * 16 / 408.91 / 16, rel=0.05)
    assert r.validation == "fitted" and not r.lower_bound


def test_price_activity_prices_as_estimate_does():
    """The activity path and the network path share the figures: the same run's totals cost the same."""
    net = from_spec("60-40-10", mode="fixed", seed=3)
    counts = Engine(net).run(bernoulli((12, 1, 60), 0.2, seed=4)).counts
    chip = chips.load("loihi2")
    by_net = estimate(net, counts, chip, static="none")
    activity = Activity(steps=12, samples=1, sop=counts.total("sop"), neuron_updates=counts.total("neuron_updates"),
                        spikes_out=counts.total("spikes_out"))
    by_activity = price_activity(chip, activity, static="none")
    assert by_activity.energy_dynamic_j == pytest.approx(by_net.energy_dynamic_j, rel=1e-12)


def _leaves(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def test_no_record_holds_0_for_unknown():
    net = from_spec("40-30-10", mode="fixed", seed=1)
    counts = Engine(net).run(bernoulli((10, 2, 40), 0.2, seed=2)).counts
    for name in chips.names():
        chip = chips.load(name)
        record = estimate(net, counts, chip).to_dict()
        json.dumps(record, allow_nan=False)  # no NaN, no infinity
        if chip.static is None or (chip.energy and chip.energy.all_in):
            assert record["energy_static_j"] is None, name  # unpublished or inside an all-in figure
        if chip.energy and chip.energy.all_in:
            assert record["energy_dynamic_j"] is None and record["energy_all_in_j"] > 0, name
        if chip.energy is None:
            assert record["energy_j"] is None and record["energy_dynamic_j"] is None, name
        if record["latency_s"] is None:
            assert record["latency_low_s"] is None and record["latency_per_sample_s"] is None, name
        for key in ("energy_j", "energy_dynamic_j", "energy_static_j", "energy_management_j", "latency_s",
                    "energy_low_j", "energy_high_j", "latency_low_s", "latency_high_s"):
            assert record[key] is None or record[key] > 0, (name, key, record[key])
        for path, value in _leaves(record):
            if isinstance(value, float):
                assert math.isfinite(value), (name, path)
        assert record["validation"] in ("calibrated", "fitted", "unvalidated")
        none = estimate(net, counts, chip, static="none").to_dict()
        assert none["energy_static_j"] is None and none["energy_static_per_sample_j"] is None


def test_bands_bracket_the_value_and_a_lower_bound_has_no_upper_end():
    net = from_spec("40-30-10", mode="fixed", seed=1)
    counts = Engine(net).run(bernoulli((10, 1, 40), 0.2, seed=2)).counts
    loihi = estimate(net, counts, chips.load("loihi"))
    assert loihi.energy_low_j < loihi.energy_j < loihi.energy_high_j
    assert loihi.energy_dynamic_low_j == pytest.approx(loihi.energy_dynamic_j / 1.85)
    assert loihi.latency_low_s == pytest.approx(loihi.latency_s / 1.4)
    spinnaker = estimate(net, counts, chips.load("spinnaker2"))
    assert spinnaker.lower_bound and spinnaker.energy_high_j is None and spinnaker.energy_low_j > 0
    assert spinnaker.validation == "unvalidated"


def test_gpu_latency_per_sample_is_the_batch_a_sample_waits_for():
    net = from_spec("40-30-10", mode="fixed", seed=1)
    counts = Engine(net).run(bernoulli((10, 32, 40), 0.2, seed=2)).counts
    gpu = estimate(net, counts, chips.load("gpu_a100"))
    assert gpu.latency_per_sample_s == gpu.latency_s  # not latency / 32
    loihi = estimate(net, counts, chips.load("loihi"))
    assert loihi.latency_per_sample_s == pytest.approx(loihi.latency_s / 32)  # samples run one after another


def test_time_base_decides_loihi_against_truenorth_and_the_flip_is_reported(tmp_path):
    net = from_spec("100-50-10", mode="fixed", seed=1)
    counts = Engine(net).run(bernoulli((20, 1, 100), 0.1, seed=2)).counts
    # TrueNorth's marginal split with its unpriced actions priced (test figures), so both chips are exact
    text = (chips.CHIP_DIR / "truenorth_marginal.yaml").read_text().replace(
        "  sop_pj: 2.3\n", "  sop_pj: 2.3\n  neuron_update_pj: 1.0\n  spike_out_pj: 1.0\n  hop_pj: 1.0\n")
    path = tmp_path / "truenorth_marginal.yaml"
    path.write_text(text)
    loihi, truenorth = chips.load("loihi"), chips.load(path)
    compute = {"loihi": estimate(net, counts, loihi), "truenorth_marginal": estimate(net, counts, truenorth)}
    tick = {"loihi": estimate(net, counts, loihi, time_base="tick"),
            "truenorth_marginal": estimate(net, counts, truenorth)}
    assert compute["loihi"].time_base == "compute" and tick["loihi"].time_base == "tick"
    assert tick["loihi"].step_latency_s == pytest.approx(1e-3)  # the profile's real-time tick
    assert truenorth.timing.time_base == "tick" and compute["truenorth_marginal"].time_base == "tick"
    flips = assumption_flips({"time base: compute": compute, "time base: tick": tick})
    assert len(flips) == 1 and "loihi ranks before truenorth_marginal" in flips[0]
    assert "time base: tick" in flips[0]
    assert distinguishable(compute["loihi"], compute["truenorth_marginal"]) in (True, False)
    found = compare_assumptions(net, counts, [loihi, truenorth])
    assert set(found) == {"time base: real-time tick", "placement: spread", "static: none"}
    assert found["time base: real-time tick"]


def test_time_base_options_refuse_what_a_chip_cannot_do():
    net = from_spec("20-10", mode="fixed", seed=1)
    counts = Engine(net).run(bernoulli((5, 1, 20), 0.2, seed=2)).counts
    with pytest.raises(CostError, match="timing.tick_us"):
        estimate(net, counts, chips.load("tianjic"), time_base="tick")
    with pytest.raises(CostError, match="GPU"):
        estimate(net, counts, chips.load("gpu_a100"), time_base="tick")
    with pytest.raises(CostError, match="--tick"):
        estimate(net, counts, chips.load("loihi"), time_base="sometimes")
    with pytest.raises(CostError, match="--tick"):
        estimate(net, counts, chips.load("loihi"), tick_us=-1.0)
    given = estimate(net, counts, chips.load("tianjic"), tick_us=500.0)
    assert given.step_latency_s == pytest.approx(500e-6) and given.step_time_basis == "given"
    with pytest.raises(CostError, match="--placement"):
        estimate(net, counts, chips.load("loihi"), map_network(net, chips.load("loihi"), counts), placement="64")


def test_validation_table_prints_from_one_command():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "validate_silicon.py")], capture_output=True,
                         text=True, timeout=300, cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "| keyword spotting: dynamic energy | loihi | 270 µJ |" in out.stdout
    assert "MISS" not in out.stdout and "met   Loihi 2 PilotNet" in out.stdout
