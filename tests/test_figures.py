"""Figures: each helper returns a Figure with data, units, a title and a legend; one colour per category
in every figure (hwsim.study.palette); PNGs written (parent folders created) when a path is given."""

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from hwsim.sim.engine import bernoulli, simulate
from hwsim.sim.network import from_spec
from hwsim.study import figures, plots
from hwsim.study.palette import CHIP_COLORS, RULE_COLORS, chip_color, mode_color, rule_color

HISTORY = {rule: [{"epoch": e, "loss": 1.5 - 0.3 * e - shift, "train_accuracy": 0.5 + 0.1 * e + shift,
                    "test_accuracy": 0.55 + 0.1 * e + shift} for e in range(3)]
           for rule, shift in (("sltt", 0.0), ("bptt", 0.05))}


def _titled(fig: Figure) -> str:
    return " ".join(filter(None, [fig._suptitle.get_text() if fig._suptitle else ""] +
                           [ax.get_title() for ax in fig.axes]))


def _line_colors(fig: Figure) -> dict[str, str]:
    return {line.get_label(): to_hex(line.get_color()) for ax in fig.axes for line in ax.get_lines()}


def _legend_labels(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_palette_gives_every_shipped_chip_and_rule_its_own_colour():
    from hwsim.methods import RULES

    from hwsim import chips

    assert set(chips.names()) <= set(CHIP_COLORS) and set(RULES) <= set(RULE_COLORS)
    assert len(set(CHIP_COLORS.values())) == len(CHIP_COLORS) and len(set(RULE_COLORS.values())) == len(RULE_COLORS)
    assert chip_color("my_own_chip") == chip_color("my_own_chip")  # stable for unknown names


def test_spike_raster_shows_the_input_and_integer_neuron_ticks(tmp_path):
    net = from_spec("12-6-3", seed=1)
    x = bernoulli((10, 1, 12), 0.4, seed=2)
    fig = figures.spike_raster(simulate(net, x), tmp_path / "deep" / "raster.png", inputs=x, title="one sample")
    assert (tmp_path / "deep" / "raster.png").stat().st_size > 5000
    assert [ax.get_ylabel().split("\n")[0] for ax in fig.axes] == ["input", "dense0", "dense1"]
    assert int(fig.axes[0].images[0].get_array().sum()) == int(x.sum())  # every input spike drawn
    for ax in fig.axes:
        ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
    assert isinstance(plots.spike_raster(simulate(net, x), None, inputs=x), Figure)  # the old name, same figure


def test_quantization_figure_shows_the_difference():
    y = np.arange(100) % 10
    float_pred = y.copy()
    fixed_pred = y.copy()
    fixed_pred[:3] = (fixed_pred[:3] + 1) % 10  # fixed point loses 3 samples
    float_pred[50] = 0 if y[50] else 1  # and gets one float misses
    fig = figures.quantization_accuracy(y, float_pred, fixed_pred, title="tiny")
    left, right = fig.axes
    assert "-2.0 points" in left.get_title()  # 99 % -> 97 %: the difference is labelled
    low, high = left.get_ylim()
    assert high - low < 20  # a zoomed axis: two points 2 % apart are visibly apart
    widths = [bar.get_width() for bar in right.patches]
    assert widths == [96, 3, 1, 0]  # both right, float only, fixed only, both wrong
    comparison = plots.accuracy_bars({"float": 90.0, "fixed point": 88.5}, None, samples=200)
    assert any("-1.5 points" in t.get_text() for t in comparison.axes[0].texts)


def test_accuracy_vs_memory_marks_the_pareto_front():
    points = {"bptt": (92.0, 400.0), "sltt": (91.0, 60.0), "ottt_a": (89.0, 70.0), "stdl": (85.0, 30.0)}
    assert figures.pareto_front(points) == ["stdl", "sltt", "bptt"]  # ottt_a is dominated by sltt
    fig = figures.accuracy_vs_memory(points, title="net on data")
    ax = fig.axes[0]
    assert len(ax.collections) == 4 and "Pareto front" in _legend_labels(fig)
    assert {to_hex(c.get_facecolor()[0]) for c in ax.collections} == {rule_color(r).lower() for r in points}
    assert "KiB" in ax.get_xlabel() and "%" in ax.get_ylabel()


def test_training_curves_one_colour_per_rule_in_every_figure():
    fig = figures.training_curves(HISTORY, title="net on data")
    colors = _line_colors(fig)
    assert colors["sltt"] == rule_color("sltt").lower() and colors["bptt test"] == rule_color("bptt").lower()
    assert all(len(line.get_xdata()) == 3 for ax in fig.axes for line in ax.get_lines())


def test_memory_figure_uses_the_rule_colours(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    made = []
    monkeypatch.setattr(plt.Figure, "savefig", lambda self, *a, **k: made.append(self))
    plots.memory_vs_timesteps({"sltt": {"2": 1.0, "4": 1.0}, "bptt": {"2": 2.0, "4": 4.0}}, tmp_path / "m.png",
                              batch=4)
    colors = _line_colors(made[0])
    assert colors == {"sltt": rule_color("sltt").lower(), "bptt": rule_color("bptt").lower()}


def test_energy_figures_use_the_chip_colours_and_mark_lower_bounds():
    chips = {"loihi": {"energy_uj": 2.0, "latency_ms": 0.5, "fits": True, "lower_bound": False},
             "odin": {"energy_uj": 0.3, "latency_ms": 3.0, "fits": False, "lower_bound": True},
             "gpu_a100": {"energy_uj": None, "latency_ms": 0.1, "fits": True, "lower_bound": False}}
    fig = figures.energy_vs_latency(chips, title="net: inference")
    ax = fig.axes[0]
    assert len(ax.collections) == 2 and set(_legend_labels(fig)) == {"loihi", "odin"}
    assert to_hex(ax.collections[0].get_edgecolor()[0]) == chip_color("loihi").lower()
    assert "gpu_a100" in " ".join(t.get_text() for t in fig.texts)  # what is not drawn is named
    assert ax.get_xscale() == ax.get_yscale() == "log" and "µJ" in ax.get_ylabel() and "ms" in ax.get_xlabel()
    by_steps = {"loihi": [(4, 1.0), (8, 2.0), (16, 4.0)], "odin": [(4, 0.2), (8, 0.4), (16, 0.8)]}
    by_rate = {"loihi": [(0.05, 1.0), (0.1, 2.0)], "odin": [(0.05, 0.1), (0.1, 0.2)]}
    sweep = figures.energy_sweeps(by_steps, by_rate, rate=0.1, steps=8, lower_bound={"odin"}, title="net")
    left, right = sweep.axes
    assert len(left.get_lines()) == len(right.get_lines()) == 2
    styles = {line.get_label(): line.get_linestyle() for line in left.get_lines()}
    assert styles == {"loihi": "-", "odin": "--"}
    assert _line_colors(sweep)["loihi"] == chip_color("loihi").lower()


def test_layer_rates_and_on_chip_curve(tmp_path):
    fig = figures.layer_spike_rates({"float": {"dense0": 0.1, "dense1": 0.05}, "fixed": {"dense0": 0.09,
                                    "dense1": 0.06}}, tmp_path / "rates.png", input_rate=0.2, title="net")
    ax = fig.axes[0]
    assert len(ax.patches) == 5 and _legend_labels(fig) == ["input", "float point", "fixed point"]
    assert to_hex(ax.patches[1].get_facecolor()) == mode_color("float").lower()
    assert "per neuron per step" in ax.get_ylabel() and (tmp_path / "rates.png").is_file()
    curve = figures.on_chip_curve({"sltt": [(0, 80.0), (5, 82.0), (10, 84.0)], "ottt_a": [(0, 80.0), (10, 81.0)]})
    assert _line_colors(curve)["sltt"] == rule_color("sltt").lower() and len(curve.axes[0].get_lines()) == 2


@pytest.mark.parametrize("maker", [
    lambda: figures.training_curves(HISTORY),
    lambda: figures.accuracy_vs_memory({"sltt": (90.0, 50.0), "bptt": (91.0, 200.0)}),
    lambda: figures.on_chip_curve({"sltt": [(0, 80.0), (10, 84.0)]}),
    lambda: figures.layer_spike_rates({"fixed": {"dense0": 0.1}}),
])
def test_every_figure_has_a_title_and_axis_labels(maker):
    fig = maker()
    assert isinstance(fig, Figure) and _titled(fig)
    assert all(ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes)
