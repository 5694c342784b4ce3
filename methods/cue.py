"""Cue accumulation: the evidence-accumulation task of the e-prop paper, procedural and seeded.

Bellec et al., "A solution to the learning dilemma for recurrent networks of spiking neurons", Nat. Commun. 11:3625
(2020), Fig. 3 and Methods: 40 input channels in four groups of 10 -- left cue, right cue, recall cue, background
noise. Seven cues are shown one after another, each a burst on the 10 channels of its side; after a delay the recall
cue asks for a decision, and the label is the side that showed more cues. Only the recall window is scored
(``loss_steps``), so a network has to hold the count over the delay: a feed-forward LIF net cannot.

Scaled to a step count a CPU trains in seconds, reading one step as 10 ms (the paper's code,
``generate_click_task_data``
of the e-prop repository, runs 1 ms steps: cues of ``t_cue = 100`` ms every ``t_interval = 150`` ms, each after
50 ms of silence, input rate ``f0`` = 40 Hz, noise ``f0 / 4``, a recall window at the end, and a per-trial side
probability ``p_group = 0.3``): per cue ``gap_steps`` = 5 silent steps then ``cue_steps`` = 10 steps of the cue (its
side's channels fire with probability ``cue_rate`` = 0.4 per step, 40 Hz at 10 ms), then ``delay_steps`` = 50 silent
steps, then ``recall_steps`` = 15 steps of the recall cue (channels 20..29, ``recall_rate`` = 0.4). Noise channels
30..39 fire with ``noise_rate`` = 0.1 per step (10 Hz) throughout; nothing else fires. T = 7 * (5 + 10) + 50 + 15 =
170 steps. Each trial draws a favoured side at random and puts each cue on that side with probability
``1 - minority`` = 0.7; the label is the side with more cues (7 cues: never a tie).
"""

from __future__ import annotations

import numpy as np
from hwsim.methods.errors import DataError

CHANNELS = 40  # 10 left, 10 right, 10 recall, 10 noise
GROUP = 10
DEFAULTS = {"n_cues": 7, "cue_steps": 10, "gap_steps": 5, "delay_steps": 50, "recall_steps": 15,
            "cue_rate": 0.4, "recall_rate": 0.4, "noise_rate": 0.1, "minority": 0.3}


def task_steps(**task) -> int:
    """T of the task with ``task``'s settings (defaults :data:`DEFAULTS`): ``n_cues * (gap + cue) + delay + recall``."""
    p = {**DEFAULTS, **task}
    return int(p["n_cues"] * (p["gap_steps"] + p["cue_steps"]) + p["delay_steps"] + p["recall_steps"])


def _check(task: dict) -> dict:
    unknown = sorted(set(task) - set(DEFAULTS))
    if unknown:
        raise DataError(f"cue accumulation: unknown setting {unknown[0]!r}; known: {', '.join(DEFAULTS)}")
    p = {**DEFAULTS, **task}
    for name in ("n_cues", "cue_steps", "recall_steps"):
        if isinstance(p[name], bool) or not isinstance(p[name], (int, np.integer)) or p[name] < 1:
            raise DataError(f"cue accumulation: {name} must be an integer >= 1, got {p[name]!r}")
    for name in ("gap_steps", "delay_steps"):
        if isinstance(p[name], bool) or not isinstance(p[name], (int, np.integer)) or p[name] < 0:
            raise DataError(f"cue accumulation: {name} must be an integer >= 0, got {p[name]!r}")
    if p["n_cues"] % 2 == 0:
        raise DataError(f"cue accumulation: n_cues must be odd (the label is the side with more cues), got "
                        f"{p['n_cues']}")
    for name in ("cue_rate", "recall_rate", "noise_rate", "minority"):
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise DataError(f"cue accumulation: {name} must be a probability in [0, 1], got {value!r}")
    return p


def cue_accumulation(n_trials: int, seed: int = 0, **task) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_trials`` trials of the task (module docstring; ``task``: any of :data:`DEFAULTS`).

    Returns ``x`` float32 (n, T, 40) 0/1 spikes (channels 0-9 left cue, 10-19 right cue, 20-29 recall,
    30-39 noise), ``y`` int64 (n,) 0 = left, 1 = right (the side with more cues), and ``loss_steps`` bool (T,),
    True on the recall window (the decision steps the loss and the accuracy are taken on). Deterministic in
    ``seed``."""
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise DataError(f"cue accumulation: n_trials must be an integer >= 1, got {n_trials!r}")
    p = _check(task)
    n, n_cues, steps = int(n_trials), int(p["n_cues"]), task_steps(**p)
    rng = np.random.default_rng(seed)
    favoured = rng.integers(0, 2, n)  # 0: left, 1: right
    on_favoured = rng.random((n, n_cues)) >= p["minority"]
    sides = np.where(on_favoured, favoured[:, None], 1 - favoured[:, None])  # (n, cues)
    rate = np.zeros((n, steps, CHANNELS), np.float32)
    period = p["gap_steps"] + p["cue_steps"]
    for k in range(n_cues):
        lo = k * period + p["gap_steps"]
        for side in (0, 1):
            rows = sides[:, k] == side
            rate[rows, lo: lo + p["cue_steps"], side * GROUP: (side + 1) * GROUP] = p["cue_rate"]
    recall = steps - p["recall_steps"]
    rate[:, recall:, 2 * GROUP: 3 * GROUP] = p["recall_rate"]
    rate[:, :, 3 * GROUP:] = p["noise_rate"]
    x = (rng.random(rate.shape, dtype=np.float32) < rate).astype(np.float32)
    y = (sides.sum(axis=1) * 2 > n_cues).astype(np.int64)
    loss_steps = np.zeros(steps, bool)
    loss_steps[recall:] = True
    return x, y, loss_steps


__all__ = ["CHANNELS", "DEFAULTS", "cue_accumulation", "task_steps"]
