"""Independent references for the engine: dense torch/numpy computations and output-centric counts.

Nothing here shares code with ``hwsim.sim.kernels``: currents come from dense torch ops in float64 over
whole spike tensors, the LIF from numpy float32 array ops, and fan-outs from a loop over *outputs*
(the engine scatters from inputs).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hwsim.sim.network import Conv2d, Dense, Flatten, Network, SumPool2d


def layer_current(layer, s: np.ndarray) -> np.ndarray:
    """Synaptic current of ``layer`` for spikes ``s`` (N, *in_shape) -> (N, *out_shape), float64, dense ops."""
    x = torch.from_numpy(s.astype(np.float64))
    if isinstance(layer, Dense):
        out = x @ torch.from_numpy(layer.weight.astype(np.float64)).T
    elif isinstance(layer, Conv2d):
        out = F.conv2d(x, torch.from_numpy(layer.weight.astype(np.float64)), stride=layer.stride,
                       padding=layer.padding)
    elif isinstance(layer, SumPool2d):
        k = layer.kernel
        out = F.avg_pool2d(x, k, stride=layer.stride) * (k * k) * float(layer.weight)
    else:
        raise TypeError(layer)
    return out.numpy()


def reference_float(network: Network, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Float-mode reference: per neuron layer, spikes (T, B, *shape) and u before reset (float32)."""
    steps, batch = x.shape[:2]
    s = x.astype(np.float64)
    spikes, membranes = [], []
    for layer in network.layers:
        if isinstance(layer, Flatten):
            s = s.reshape(steps, batch, -1)
            continue
        current = layer_current(layer, s.reshape(steps * batch, *s.shape[2:]))
        current = current.reshape(steps, batch, *current.shape[1:]).astype(np.float32)
        if layer.bias is not None:
            shape = (-1,) + (1,) * (current.ndim - 3)
            current = current + layer.bias.astype(np.float32).reshape(shape)
        lam, vth = np.float32(layer.neuron.lam), np.float32(layer.neuron.v_th)
        u = np.zeros(current.shape[1:], np.float32)
        prev = np.zeros_like(u)
        out_s = np.zeros(current.shape, np.float32)
        out_u = np.zeros(current.shape, np.float32)
        for t in range(steps):
            if layer.neuron.reset == "soft":
                u = lam * (u - vth * prev) + current[t]
            else:
                u = lam * (u * (np.float32(1) - prev)) + current[t]
            prev = (u >= vth).astype(np.float32)
            out_s[t], out_u[t] = prev, u
        spikes.append(out_s.astype(np.uint8))
        membranes.append(out_u)
        s = out_s.astype(np.float64)
    return spikes, membranes


def fanout(layer, in_shape: tuple[int, ...]) -> np.ndarray:
    """Structural fan-out of every input neuron, flattened (n_in,), by looping over outputs."""
    if isinstance(layer, Dense):
        return np.full(layer.n_in, layer.n_out, np.int64)
    c, h, w = in_shape
    if isinstance(layer, Conv2d):
        o, _, kh, kw = layer.weight.shape
        stride, pad, per_tap = layer.stride, layer.padding, o
    else:
        kh = kw = layer.kernel
        stride, pad, per_tap = layer.stride, 0, 1
    _, ho, wo = layer.out_shape(in_shape)
    counts = np.zeros((h, w), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            for ky in range(kh):
                for kx in range(kw):
                    y, x = oy * stride - pad + ky, ox * stride - pad + kx
                    if 0 <= y < h and 0 <= x < w:
                        counts[y, x] += per_tap
    return np.broadcast_to(counts, (c, h, w)).reshape(-1).copy()
