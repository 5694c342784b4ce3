"""An independent reading of NIR's published node equations in numpy (forward Euler, step ``dt``).

Written from NIR's documentation only (https://neuroir.org, ``nir`` 1.0 node docstrings), reading no hwsim
metadata: ``Affine`` y = W x + b; ``Linear`` y = W x; ``Conv2d`` cross-correlation with stride, padding,
dilation and bias; ``SumPool2d``/``AvgPool2d``; ``Flatten``; ``IF`` dv/dt = R I; ``LIF``
tau dv/dt = (v_leak - v) + R I; ``CubaLIF`` tau_syn dI/dt = -I + w_in S, tau_mem dv/dt = (v_leak - v) + R I;
spike z = v > v_threshold (``>=`` selectable, as some readers use), then v = v_reset.
"""

from __future__ import annotations

import numpy as np

SYNAPSES = ("Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d")
NEURONS = ("IF", "LIF", "CubaLIF")


def chain(graph) -> list[str]:
    start = next(n for n, node in graph.nodes.items() if type(node).__name__ == "Input")
    following = dict(graph.edges)
    order, node = [], following[start]
    while type(graph.nodes[node]).__name__ != "Output":
        order.append(node)
        node = following[node]
    return order


def _conv(x, weight, bias, stride, padding, dilation):
    """x (N, C, H, W) -> (N, O, H', W'), cross-correlation."""
    s, p, d = (int(np.atleast_1d(v)[0]) for v in (stride, padding, dilation))
    o, c, kh, kw = weight.shape
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    h_out = (x.shape[2] - d * (kh - 1) - 1) // s + 1
    w_out = (x.shape[3] - d * (kw - 1) - 1) // s + 1
    out = np.zeros((x.shape[0], o, h_out, w_out))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * d: i * d + s * (h_out - 1) + 1: s, j * d: j * d + s * (w_out - 1) + 1: s]
            out += np.einsum("nchw,oc->nohw", patch, weight[:, :, i, j])
    return out + np.asarray(bias).reshape(1, -1, 1, 1)


def _pool(x, kernel, stride, padding, average):
    k, s, p = (int(np.atleast_1d(v)[0]) for v in (kernel, stride, padding))
    c = x.shape[1]
    w = np.zeros((c, c, k, k))
    w[np.arange(c), np.arange(c)] = 1.0 / (k * k) if average else 1.0
    return _conv(x, w, np.zeros(c), s, p, 1)


def synapse(node, x):
    """Apply a stateless node to x (N, *shape) float64."""
    kind = type(node).__name__
    if kind == "Affine":
        return x @ node.weight.T + node.bias
    if kind == "Linear":
        return x @ node.weight.T
    if kind == "Conv2d":
        return _conv(x, node.weight, node.bias, node.stride, node.padding, node.dilation)
    if kind in ("SumPool2d", "AvgPool2d"):
        return _pool(x, node.kernel_size, node.stride, node.padding, kind == "AvgPool2d")
    if kind == "Flatten":
        return x.reshape(x.shape[0], -1)
    raise ValueError(f"not a stateless node: {kind}")


def neuron(node, current, dt, inclusive=False):
    """Run a neuron node over time: current (T, B, *shape) -> (spikes, v before reset), both (T, B, *shape)."""
    kind = type(node).__name__
    steps = current.shape[0]
    v = np.zeros(current.shape[1:])
    syn = np.zeros(current.shape[1:])
    v_th, v_reset = np.asarray(node.v_threshold, float), np.asarray(node.v_reset, float)
    spikes, trace = np.zeros(current.shape), np.zeros(current.shape)
    for t in range(steps):
        if kind == "IF":
            v = v + dt * node.r * current[t]
        elif kind == "LIF":
            v = v + dt / node.tau * (node.v_leak - v + node.r * current[t])
        else:
            syn = syn + dt / node.tau_syn * (-syn + node.w_in * current[t])
            leak_gain = np.where(np.isinf(node.tau_mem), 0.0, dt / node.tau_mem)
            # tau_mem -> inf with r = tau_mem/dt: dv/dt = I/dt (the limit, no leak)
            in_gain = np.where(np.isinf(node.tau_mem) & np.isinf(node.r), 1.0,
                               np.nan_to_num(node.r * dt / node.tau_mem))
            v = v + leak_gain * (node.v_leak - v) + in_gain * syn
        z = (v >= v_th) if inclusive else (v > v_th)
        trace[t], spikes[t] = v, z
        v = np.where(z, v_reset, v)
    return spikes, trace


def run(graph, x, dt, delay=0, inclusive=False, forced=None):
    """Run the chain on x (T, B, *input_shape); returns per neuron node (spikes, v) lists.

    ``delay``: steps inserted before every synapse node (Lava's per-connection delay is 1).
    ``forced``: optional list of per-layer input spike trains (T, B, n) used instead of the previous
    layer's own output (to compare layers one by one)."""
    signal = np.asarray(x, np.float64)
    outputs, layer = [], 0
    for name in chain(graph):
        node = graph.nodes[name]
        kind = type(node).__name__
        if kind in SYNAPSES:
            if forced is not None:
                signal = np.asarray(forced[layer], np.float64).reshape(signal.shape)
            if delay:
                signal = np.concatenate([np.zeros((delay, *signal.shape[1:])), signal[:-delay]])
        if kind in NEURONS:
            spikes, trace = neuron(node, signal, dt, inclusive)
            outputs.append((spikes, trace))
            signal = spikes
            layer += 1
        else:
            steps, batch = signal.shape[:2]
            out = synapse(node, signal.reshape(steps * batch, *signal.shape[2:]))
            signal = out.reshape(steps, batch, *out.shape[1:])
    return outputs
