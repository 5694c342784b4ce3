"""Chip profiles: every shipped profile validates and sources every figure; bad profiles get clear errors."""

from pathlib import Path

import pytest
import yaml
from hwsim.chips import ChipError
from hwsim.chips.schema import Chip

from hwsim import chips

BASES = {"measured", "simulated", "derived", "estimate", "specified", "fitted"}
REQUIRED = {"loihi", "loihi_sanafe", "loihi2", "truenorth", "spinnaker2", "tianjic", "odin", "reckon", "anp_i",
            "seneca", "generic_45nm", "gpu_a100"}


def test_required_profiles_ship_and_validate():
    assert REQUIRED <= set(chips.names())
    for name in chips.names():
        chip = chips.load(name)
        assert isinstance(chip, Chip) and chip.name == name


@pytest.mark.parametrize("name", chips.names())
def test_every_figure_has_a_source(name):
    """Read the raw YAML (not the schema): every group holding a number names its source and basis."""
    raw = yaml.safe_load((chips.CHIP_DIR / f"{name}.yaml").read_text())
    groups = {k: v for k, v in raw.items() if isinstance(v, dict)}
    assert groups, f"{name}: no figures"
    for group, values in groups.items():
        figures = {k: v for k, v in values.items() if k not in ("source", "basis", "note")}
        assert figures, f"{name}.{group}: empty group"
        assert isinstance(values.get("source"), str) and len(values["source"]) > 10, f"{name}.{group}: source"
        bases = BASES | {"assumed"} if group == "conv" else BASES  # weight sharing may be our stated assumption
        assert values.get("basis") in bases, f"{name}.{group}: basis"
        for key, value in figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "all_in":
                assert any(key.endswith(u) for u in ("_pj", "_ns", "_us", "_mw", "_bytes", "_bits", "_mhz",
                                                     "_pj_per_byte", "cores", "_per_core", "_per_tile",
                                                     "_tiles", "_per_neuron", "max_neurons", "max_synapses",
                                                     "_steps", "_per_step", "_per_layer", "_messages",
                                                     "_factor")), \
                    f"{name}.{group}.{key}: unit in name"
        assert "PAPERS.md" not in values["source"] and "quoted via" not in values["source"], \
            f"{name}.{group}: cite the paper itself, not a project file"
        assert "third party" not in values["source"].lower(), f"{name}.{group}: name the source or mark it estimate"


def _write(tmp_path: Path, text: str, name: str = "mychip.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """
name: mychip
full_name: My chip
energy:
  source: "Me et al., Journal 2025, Table 1"
  basis: measured
  all_in: false
  includes_memory: true
  sop_pj: 3.0
"""


def test_user_yaml_path_works_where_a_name_does(tmp_path):
    chip = chips.load(_write(tmp_path, GOOD))
    assert chip.energy.sop_pj == 3.0


@pytest.mark.parametrize("edit,fragments", [
    (lambda t: t.replace("  sop_pj: 3.0\n", "  sop_pj: -3.0\n"), ["energy.sop_pj", ">= 0", "-3.0"]),
    (lambda t: t.replace("  sop_pj: 3.0\n", "  sop_nj: 3.0\n"), ["energy.sop_nj", "not a known field",
                                                                   "did you mean 'sop_pj' (picojoules)"]),
    (lambda t: t.replace("  sop_pj: 3.0\n", "  sop_pj: '3.0 pJ'\n"), ["energy.sop_pj", "plain number",
                                                                       "'3.0 pJ'"]),
    (lambda t: t.replace("  sop_pj: 3.0\n", "  sop_pj: 3.0\n  colour: red\n"), ["energy.colour",
                                                                                 "not a known field"]),
    (lambda t: t.replace('  source: "Me et al., Journal 2025, Table 1"\n', ""), ["energy.source", "missing"]),
    (lambda t: t.replace("  all_in: false\n", ""), ["energy.all_in", "missing"]),
    (lambda t: t.replace("basis: measured", "basis: guessed"), ["energy.basis", "measured"]),
    (lambda t: t + "static:\n  source: \"Me et al. 2025\"\n  basis: measured\n", ["static.static_power_mw",
                                                                                 "missing"]),
    (lambda t: t + "foo: 1\n", ["'foo' is not a known field"]),
    (lambda t: t.replace("all_in: false", "all_in: true"), ["energy.operating_point", "missing", "rate_hz"]),
    (lambda t: t + "capacity:\n  source: \"Me et al. 2025\"\n  basis: specified\n  synaptic_memory_kb_per_core: 128\n",
     ["capacity.synaptic_memory_kb_per_core", "did you mean 'synaptic_memory_bytes_per_core' (bytes)"]),
    (lambda t: t + "capacity:\n  source: \"Me et al. 2025\"\n  basis: specified\n"
     "  synaptic_memory_bytes_per_core: '128 KB'\n",
     ["capacity.synaptic_memory_bytes_per_core", "plain number"]),
])
def test_bad_profiles_name_file_field_and_expectation(tmp_path, edit, fragments):
    path = _write(tmp_path, edit(GOOD))
    with pytest.raises(ChipError) as err:
        chips.load(path)
    message = str(err.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_malformed_yaml(tmp_path):
    path = _write(tmp_path, "name: [unclosed\nfull_name: x\n")
    with pytest.raises(ChipError, match=r"mychip.yaml: malformed YAML at line \d+"):
        chips.load(path)
    with pytest.raises(ChipError, match="expected a mapping"):
        chips.load(_write(tmp_path, "- a\n- b\n"))


def test_unknown_chip_lists_the_known_ones():
    with pytest.raises(ChipError) as err:
        chips.load("loihi3")
    assert "unknown chip 'loihi3'" in str(err.value)
    for name in chips.names():
        assert name in str(err.value)
    with pytest.raises(ChipError, match="no such chip profile"):
        chips.load("/nonexistent/chip.yaml")


def test_profile_fixes_hold():
    from hwsim.hardware.cost import step_latency_s
    from hwsim.hardware.mapping import map_network
    from hwsim.sim.network import from_spec

    tianjic = chips.load("tianjic")
    assert tianjic.capacity.fan_in_axons_per_core == 256 and tianjic.capacity.synaptic_memory_bytes_per_core == 22528
    net = from_spec("200-100")
    assert step_latency_s(map_network(net, tianjic), None, tianjic)[0] == 5050 / 300e6  # 16.8 us per step
    odin = chips.load("odin")
    assert odin.learning.local_traces is False and odin.learning.post_traces is True and odin.layout.noc is False
    assert chips.load("loihi2").capacity.synaptic_memory_bytes_per_core == 128 * 1024
    spinnaker, seneca = chips.load("spinnaker2").learning, chips.load("seneca").learning
    keys = ("programmable", "local_traces", "third_factor", "graded_error_messages", "transposed_weight_reads")
    assert [getattr(spinnaker, k) for k in keys] == [getattr(seneca, k) for k in keys] == [True] * 5
    assert chips.load("loihi").learning.spike_coded_errors is True
    assert chips.load("truenorth").energy.operating_point.cores == 4096


@pytest.mark.parametrize("edit,fragments", [
    (lambda t: t.replace("  sop_pj: 3.0\n", "  sop_pj: 1e308\n"), ["energy.sop_pj", "1e+308", "plausible range",
                                                                    "0.001..1e+06", "picojoules"]),
    (lambda t: t.replace("  sop_pj: 3.0\n", "  sop_pj: 0.0\n"), ["energy.sop_pj", "plausible range",
                                                                  "leave an unknown figure out"]),
    (lambda t: t + "static:\n  source: \"Me et al. 2025\"\n  basis: measured\n  static_power_mw: 5e9\n",
     ["static.static_power_mw", "plausible range", "milliwatts"]),
    (lambda t: t + "timing:\n  source: \"Me et al. 2025\"\n  basis: measured\n  sop_ns: 1e12\n",
     ["timing.sop_ns", "plausible range", "nanoseconds"]),
    (lambda t: t + "timing:\n  source: \"Me et al. 2025\"\n  basis: measured\n  time_base: tick\n",
     ["timing.time_base 'tick' needs timing.tick_us"]),
    (lambda t: t + "uncertainty:\n  source: \"Me et al. 2025\"\n  basis: derived\n  status: guessed\n"
     "  energy_factor: 2.0\n", ["uncertainty.status"]),
    (lambda t: t + "uncertainty:\n  source: \"Me et al. 2025\"\n  basis: derived\n  status: calibrated\n"
     "  energy_factor: 0.5\n", ["uncertainty.energy_factor", "plausible range"]),
])
def test_implausible_figures_are_one_clear_line(tmp_path, edit, fragments):
    path = _write(tmp_path, edit(GOOD))
    with pytest.raises(ChipError) as err:
        chips.load(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_plausible_bounds_hold_for_every_shipped_figure():
    from hwsim.chips.schema import PLAUSIBLE, _plausible_suffix

    for name in chips.names():
        for group in chips.load(name).groups().values():
            for key, value in group.figures().items():
                suffix = _plausible_suffix(key)
                if suffix and isinstance(value, (int, float)) and not isinstance(value, bool):
                    low, high = PLAUSIBLE[suffix]
                    assert low <= value <= high, (name, key, value)


def test_every_profile_carries_its_band_and_status():
    for name in chips.names():
        u = chips.load(name).uncertainty
        assert u is not None, f"{name}: no uncertainty group"
        assert u.status in ("calibrated", "fitted", "unvalidated") and u.energy_factor >= 1.0
        if u.status == "calibrated":
            assert u.energy_factor <= 2.0 and (u.latency_factor or 1.0) <= 2.0, name
    assert chips.load("loihi").static.static_power_mw == 29.0  # one chip, measured; not 1/32 of a board
    assert chips.load("loihi2").energy.basis == "fitted" and chips.load("loihi2").uncertainty.status == "fitted"
    for name in ("truenorth", "truenorth_marginal"):
        assert chips.load(name).static.basis == "estimate"  # untraceable split: an estimate, not "derived"
