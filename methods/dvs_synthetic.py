"""A procedural DVS-like event-camera task: bars moving in one of four directions, as ON/OFF events.

Nothing is downloaded; every sample is a pure function of the seed. A sample is a bright bar on a dark
background, ``width`` pixels thick and ``length`` long (orthogonal to its motion), moving at ``speed``
pixels per step across a ``size`` x ``size`` sensor. The sensor is rendered as an anti-aliased intensity
frame per step (pixel value = the fraction of the pixel the bar covers); an event camera reports changes,
so a pixel emits an ON event (channel 0) where the intensity rose by more than ``threshold`` since the last
step and an OFF event (channel 1) where it fell by more than ``threshold`` -- the leading edge of the bar
gives ON events, the trailing edge OFF events. Background activity adds independent events at
``noise`` probability per pixel, polarity and step.

Class = direction: 0 right, 1 left, 2 down, 3 up. The direction is visible only in how the edges move and
which polarity leads, so a frame-by-frame read-out needs the ON/OFF layout, not a single frame's position.
Output: ``x`` (N, T, 2, size, size) float32 0/1, ``y`` (N,) int64, as :class:`methods.data.SpikeDataset`.
"""

from __future__ import annotations

import numpy as np

DIRECTIONS = ("right", "left", "down", "up")


def _coverage(position: float, width: float, size: int) -> np.ndarray:
    """Fraction of each pixel ``[c, c + 1)`` covered by the interval ``[position, position + width)``."""
    cells = np.arange(size, dtype=np.float64)
    return np.clip(np.minimum(cells + 1, position + width) - np.maximum(cells, position), 0.0, 1.0)


def bar_events(samples_per_class: int, steps: int, size: int = 16, seed: int = 0, threshold: float = 0.25,
               noise: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    """Events of ``4 * samples_per_class`` moving bars: ``x`` (N, T, 2, size, size) uint8, ``y`` (N,)."""
    if steps < 1 or size < 4 or samples_per_class < 1:
        raise ValueError(f"dvs_bars needs steps >= 1, size >= 4 and samples_per_class >= 1, got {steps}, {size}, "
                         f"{samples_per_class}")
    rng = np.random.default_rng(seed)
    n = 4 * samples_per_class
    y = np.repeat(np.arange(4), samples_per_class)
    x = np.zeros((n, steps, 2, size, size), np.uint8)
    for i, label in enumerate(y):
        width = rng.uniform(1.5, 3.0)
        speed = rng.uniform(0.6, 1.4)
        length = int(rng.integers(size // 2, size + 1))
        offset = int(rng.integers(0, size - length + 1))
        travel = speed * steps
        start = rng.uniform(-width, max(size - travel, 0.0))  # the bar crosses the sensor during the sample
        across = np.zeros(size)
        across[offset: offset + length] = 1.0
        frames = np.zeros((steps + 1, size, size))
        for t in range(steps + 1):
            along = _coverage(start + speed * (t - 1), width, size)
            if label == 1 or label == 3:  # moving towards smaller indices: mirror the motion axis
                along = along[::-1]
            frame = np.outer(across, along)  # rows x columns: motion along columns (right/left)
            frames[t] = frame if label < 2 else frame.T  # down/up: motion along rows
        change = np.diff(frames, axis=0)  # (T, size, size): the brightness change seen at each step
        x[i, :, 0] = change > threshold
        x[i, :, 1] = change < -threshold
    x |= (rng.random(x.shape) < noise).astype(np.uint8)
    return x, y


def dvs_bars(steps: int, seed: int = 0, size: int = 16, samples_per_class: int = 150, test_fraction: float = 0.2,
             noise: float = 0.005):
    """The task as a :class:`methods.data.SpikeDataset` named ``dvs_bars`` (4 classes, shape (2, size, size))."""
    import torch
    from hwsim.methods.data import SpikeDataset

    x, y = bar_events(samples_per_class, steps, size, seed, noise=noise)
    order = np.random.default_rng(seed + 7).permutation(len(y))
    x, y = x[order], y[order]
    n_train = int(round(len(y) * (1.0 - test_fraction)))
    return SpikeDataset("dvs_bars", torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64)),
                        n_train, 4)
