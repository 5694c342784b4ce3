"""The study's figures beyond those its stages draw, made in the report stage from the stages' outputs.

:func:`make_figures` draws them into the study folder and returns their data (it goes into ``results.json``,
so every number a figure shows can be found there); :func:`append_to_report` adds them to ``report.md``.
Training glue: it reads the training checkpoints (torch) for the per-epoch history.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

RATE_SWEEP = (0.02, 0.05, 0.1, 0.2, 0.4)  # input spike probabilities of the energy-vs-rate sweep
SWEEP_RATE = 0.1  # input rate of the energy-vs-T sweep (the command line's default --rate)
SWEEP_BATCH = 8  # Bernoulli samples per sweep point
CURVE_POINTS = 5  # evaluations along the on-chip fine-tuning curve (after the one before training)

CAPTIONS = {
    "quantization_accuracy.png": "Accuracy before (float) and after (fixed point) quantisation on the same test "
                                 "samples, zoomed, with the difference and the samples each form alone gets right.",
    "training_curves.png": "Training loss and accuracy per epoch, one colour per rule.",
    "accuracy_vs_memory.png": "Test accuracy against the activation memory each rule keeps for backward; the dashed "
                              "line is the Pareto front.",
    "layer_spike_rates.png": "Mean spike rate per layer on the test samples, float and (where the network has one) "
                             "fixed point.",
    "on_chip_curve.png": "On-chip fine-tuning (numba, counted): test accuracy as training samples accumulate.",
    "energy_vs_latency.png": "Inference energy against latency per sample, one point per chip.",
    "energy_sweeps.png": "Inference energy per sample against T and against the input spike rate (Bernoulli input), "
                         "one line per chip.",
}


def make_figures(study, results: dict) -> dict:
    """Draw every figure of :data:`CAPTIONS` that the study's results allow; return their data by file name."""
    from hwsim.study import figures

    c = study.config
    what = f"{c.network} on {c.dataset}, T={c.timesteps}"
    out: dict[str, dict] = {}
    data, x, y = study._data()
    network = study._trained()
    priced, float_why = study.priced_network()
    fixed = priced if float_why is None else None  # None: no fixed-point form (ALIF)
    x = x.reshape(*x.shape[:2], *network.input_shape)
    x_tb = np.moveaxis(x, 0, 1).astype(np.uint8)

    if fixed is not None:
        float_pred, fixed_pred = (_readout(net, x_tb, data).argmax(1) for net in (network, fixed))
        figures.quantization_accuracy(y, float_pred, fixed_pred, study.out / "quantization_accuracy.png",
                                      title=f"{what}: accuracy before and after quantisation")
        out["quantization_accuracy.png"] = {
            "samples": int(len(y)), "float_percent": round(100 * float((float_pred == y).mean()), 1),
            "fixed_percent": round(100 * float((fixed_pred == y).mean()), 1),
            "predictions_differ": int((float_pred != fixed_pred).sum())}

    histories = _histories(study)
    if histories:
        figures.training_curves(histories, study.out / "training_curves.png", title=f"{what}: training in torch")
        out["training_curves.png"] = {"epochs": {rule: len(h) for rule, h in histories.items()}}

    trained = results["train"]["rules"]
    points = {rule: (r["test_accuracy_percent"], r["activation_kib"]) for rule, r in trained.items()}
    figures.accuracy_vs_memory(points, study.out / "accuracy_vs_memory.png",
                               title=f"{what}: accuracy against training memory (batch {c.batch_size})")
    out["accuracy_vs_memory.png"] = {"pareto_front": figures.pareto_front(points)}

    rates = {"float": _layer_rates(network, x_tb), **({} if fixed is None else {"fixed": _layer_rates(fixed, x_tb)})}
    figures.layer_spike_rates(rates, study.out / "layer_spike_rates.png", input_rate=float(x_tb.mean()),
                              title=f"{what}: spike rate per layer, {len(y)} test samples")
    out["layer_spike_rates.png"] = {"rates": {m: {k: round(v, 4) for k, v in r.items()} for m, r in rates.items()},
                                    "input_rate": round(float(x_tb.mean()), 4)}

    curves = _on_chip_curves(study)
    if curves:
        figures.on_chip_curve(curves, study.out / "on_chip_curve.png",
                              title=f"{what}: on-chip fine-tuning from the torch-trained weights")
        out["on_chip_curve.png"] = {"curves": {rule: [list(p) for p in pts] for rule, pts in curves.items()}}

    per_chip, by_steps, by_rate, lower = _energies(study, priced, x_tb)
    mode = "fixed point" if fixed is not None else "float"
    figures.energy_vs_latency(per_chip, study.out / "energy_vs_latency.png",
                              title=f"{what}: inference per sample, {mode}, on every chip")
    out["energy_vs_latency.png"] = {"chips": per_chip}
    figures.energy_sweeps(by_steps, by_rate, study.out / "energy_sweeps.png", rate=SWEEP_RATE, steps=c.timesteps,
                          lower_bound=lower, title=f"{c.network}, {mode}: inference energy, Bernoulli input")
    out["energy_sweeps.png"] = {"by_timesteps": by_steps, "by_rate": by_rate, "lower_bound": sorted(lower),
                                "rate": SWEEP_RATE, "batch": SWEEP_BATCH}
    return out


def append_to_report(report: Path, made: dict) -> None:
    """Add a "More figures" section to ``report.md``: each figure with a one-sentence caption."""
    lines = ["", "## More figures", ""]
    for name in CAPTIONS:
        if name in made and name != "quantization_accuracy.png":  # that one is already in the report
            lines += [f"![{name[:-4].replace('_', ' ')}]({name})", "", CAPTIONS[name], ""]
    from hwsim.safeio import atomic_write

    text = Path(report).read_text(encoding="utf-8") if Path(report).is_file() else ""
    atomic_write(report, text + "\n".join(lines))  # the whole report replaced at once, never half appended


def _readout(network, x_tb: np.ndarray, data) -> np.ndarray:
    """The read-out ``(B, classes)`` summed over every step, or over the task's scored steps (``loss_steps``)."""
    from hwsim.sim.quantize import fixed_readout, float_readout
    from hwsim.study.pipeline import _loss_steps, scored_readout

    scored = _loss_steps(data)
    if scored is not None:
        return scored_readout(network, x_tb, scored)
    return float_readout(network, x_tb) if network.mode == "float" else fixed_readout(network, x_tb)


def _histories(study) -> dict[str, list[dict]]:
    from hwsim.methods.train import load_checkpoint

    histories = {}
    for rule in study.config.train_rules:
        path = study.out / "train" / f"{rule}.pt"
        if path.is_file():
            histories[rule] = load_checkpoint(path)["history"]
    return histories


def _layer_rates(network, x_tb: np.ndarray) -> dict[str, float]:
    from hwsim.sim.engine import Engine

    counts = Engine(network).run(x_tb, time_major=True).counts
    return {lc.name: lc.total("spikes_out") / (lc.n_out * counts.timesteps * counts.batch) for lc in counts.layers}


def _on_chip_curves(study) -> dict[str, list[tuple[int, float]]]:
    """Fine-tuning as the on_chip stage does it (one epoch, batch 1, the same sample order), evaluated at
    :data:`CURVE_POINTS` points along the way (dense and recurrent networks; e-prop by its own learner)."""
    from hwsim.learning.learner import OnChipLearner
    from hwsim.sim.network import Dense, is_recurrent
    from hwsim.study.pipeline import _loss_steps, learner_accuracy, on_chip_learner

    c = study.config
    base = study._trained()
    recurrent = is_recurrent(base)
    if not (recurrent or all(isinstance(layer, Dense) for layer in base.layers)):
        return {}
    data, x_test, y_test = study._data()
    scored = _loss_steps(data)
    x_train, y_train = (a.numpy() for a in data.split("train"))
    x_test = x_test.reshape(*x_test.shape[:2], *base.input_shape)
    n = min(c.on_chip.samples, len(y_train))
    order = np.random.default_rng(c.seed * 1000).permutation(n)  # hwsim.learning.learner.fit's order for epoch 0
    marks = sorted({int(round(n * k / CURVE_POINTS)) for k in range(1, CURVE_POINTS + 1)})
    curves = {}
    for rule in c.on_chip.rules:
        # recurrent: the on_chip stage's learner, options and scored steps
        learner = on_chip_learner(c, rule, base, scored) if recurrent else OnChipLearner(
            copy.deepcopy(base), rule, lr=c.on_chip.lr, seed=c.seed)
        steps = {} if scored is None else {"loss_steps": scored}
        points = [(0, round(100 * learner_accuracy(learner, x_test, y_test, scored), 1))]
        seen = 0
        for mark in marks:
            for index in order[seen:mark]:
                learner.train_batch(np.moveaxis(x_train[index: index + 1], 1, 0).astype(np.uint8),
                                    y_train[index: index + 1], sync=False, **steps)
            seen = mark
            points.append((mark, round(100 * learner_accuracy(learner, x_test, y_test, scored), 1)))
        curves[rule] = points
    return curves


def _energies(study, fixed, x_tb: np.ndarray):
    """Per chip: energy and latency of the test samples; energy against T and against the input rate."""
    from hwsim import chips
    from hwsim.hardware.cost import estimate
    from hwsim.sim.engine import Engine, bernoulli

    c = study.config
    targets = [chips.load(name) for name in study.chip_names]
    engine = Engine(fixed)
    counts = engine.run(x_tb[:, :32], time_major=True).counts
    per_chip, lower = {}, set()
    for chip in targets:
        r = estimate(fixed, counts, chip).to_dict()
        energy = r.get("energy_per_sample_j")
        per_chip[chip.name] = {"energy_uj": _sig(energy * 1e6) if energy else None,
                               "latency_ms": None if r.get("latency_s") is None else
                               _sig(r["latency_s"] / counts.batch * 1e3),
                               "fits": r.get("fits"), "lower_bound": bool(r.get("unpriced"))}
        if r.get("unpriced"):
            lower.add(chip.name)

    def sweep(steps: int, rate: float) -> dict[str, float | None]:
        spikes = bernoulli((steps, SWEEP_BATCH, *fixed.input_shape), rate, seed=c.seed + steps)
        run = engine.run(spikes, time_major=True).counts
        values = {}
        for chip in targets:
            energy = estimate(fixed, run, chip).to_dict().get("energy_per_sample_j")
            values[chip.name] = _sig(energy * 1e6) if energy else None
        return values

    step_list = sorted({max(1, c.timesteps // 2), c.timesteps, 2 * c.timesteps, 4 * c.timesteps})
    by_steps: dict[str, list] = {chip.name: [] for chip in targets}
    for steps in step_list:
        for name, value in sweep(steps, SWEEP_RATE).items():
            by_steps[name].append([steps, value])
    by_rate: dict[str, list] = {chip.name: [] for chip in targets}
    for rate in RATE_SWEEP:
        for name, value in sweep(c.timesteps, rate).items():
            by_rate[name].append([rate, value])
    return per_chip, by_steps, by_rate, lower


def _sig(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")
