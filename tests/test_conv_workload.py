"""The seed-like conv workload: the procedural DVS-like data set and a conv study end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
from hwsim.methods.dvs_synthetic import bar_events, dvs_bars

from hwsim.cli.main import main
from hwsim.study.pipeline import load_config


def test_moving_bars_are_on_off_events_whose_leading_edge_is_on():
    """A bright bar's leading edge brightens pixels (ON, channel 0) and its trailing edge darkens them (OFF,
    channel 1): along the direction of motion the ON events lie ahead of the OFF events, for each class."""
    x, y = bar_events(12, 8, 16, seed=3, noise=0.0)
    assert x.shape == (48, 8, 2, 16, 16) and x.dtype == np.uint8 and set(np.unique(x)) <= {0, 1}
    assert np.bincount(y).tolist() == [12, 12, 12, 12]
    grid = np.arange(16)
    compared = 0
    for sample, label in zip(x, y):
        across = 1 if label < 2 else 2  # right/left move along columns: sum over rows (and vice versa)
        for frame in sample:  # (2, 16, 16) at one step
            on, off = frame[0].sum(axis=across - 1), frame[1].sum(axis=across - 1)
            if on.sum() == 0 or off.sum() == 0:
                continue
            ahead = (on @ grid) / on.sum() - (off @ grid) / off.sum()
            assert ahead > 0 if label in (0, 2) else ahead < 0, (label, ahead)
            compared += 1
    assert compared > 100


def test_the_data_set_is_deterministic_and_split():
    a, b = dvs_bars(6, seed=1, samples_per_class=10), dvs_bars(6, seed=1, samples_per_class=10)
    assert a.shape == (2, 16, 16) and a.timesteps == 6 and a.n_classes == 4 and a.n_train == 32
    assert bool((a.x == b.x).all()) and bool((a.y == b.y).all())
    assert not bool((dvs_bars(6, seed=2, samples_per_class=10).x == a.x).all())
    with pytest.raises(ValueError, match="dvs_bars needs steps >= 1"):
        bar_events(5, 0)


def test_the_example_config_is_a_valid_study():
    config = load_config(Path(__file__).resolve().parent.parent / "examples" / "dvs_bars_vgg.yaml")
    assert config.dataset == "dvs_bars" and config.network.startswith("2x16x16-c")


TINY_CONV = """
dataset: dvs_bars
network: 2x16x16-c4k3p1-p2-4
timesteps: 4
epochs: 1
train_rules: [sltt]
rules: [sltt, stdl]
chips: [loihi, spinnaker2]
memory_timesteps: [2]
stdl_budget_bytes: 1048576   # a conv net's auxiliary classifier alone needs about 180 kB at batch 32
on_chip: {rules: [sltt, ottt_a], samples: 20}
eval_samples: 40
"""


@pytest.mark.lava
def test_a_conv_study_runs_every_stage(tmp_path):
    config = tmp_path / "conv.yaml"
    config.write_text(TINY_CONV)
    assert main(["study", "--config", str(config), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["simulate"]["float_accuracy_percent"] is not None
    for rule in ("sltt", "ottt_a"):
        record = results["on_chip"]["rules"][rule]
        assert record["samples"] == 20 and record["error_macs_last_sample"] > 0 and record["grad_ops_last_sample"] > 0
    table = results["feasibility"]["table"]
    assert table["spinnaker2"]["sltt"]["verdict"] == "feasible" and table["spinnaker2"]["stdl"]["energy_per_sample_j"]
    assert results["export"]["verified_equal"] is True
