"""The weight write-back of the learning kernel: ``W -= lr * grad`` where a gradient accumulated, onto each node's
weight grid by stochastic rounding in fixed point, counting the weights written (per node, per output neuron of a
dense node -- a recurrent node's recurrent synapses included --, per output channel of a conv node's shared kernel)."""

from __future__ import annotations

import numba as nb
import numpy as np

from hwsim.learning.kernels.conv import fold_conv_gradients
from hwsim.learning.kernels.ops import stochastic_round
from hwsim.learning.kernels.records import C_WEIGHT_UPDATES, DENSE, POOL


@nb.njit(cache=True)
def write_back(graph, rule, state, tally, t):
    """``W -= lr * grad`` for every weight with a non-zero gradient (onto the node's weight grid by stochastic
    rounding in fixed point), biases likewise; zero the accumulators; count the writes at step ``t`` (weights
    per node in the counters, per output neuron or channel in ``tally.writes``)."""
    fold_conv_gradients(graph, state.grad_cl, state.grad_w)
    rate, levels = np.float32(rule.lr), rule.w_levels
    kind, w_off, c_off, in_off = graph.kind, graph.w_off, graph.c_off, graph.in_off
    w, grad_w, bias, grad_b, writes = state.w, state.grad_w, state.bias, state.grad_b, tally.writes
    for g in range(kind.shape[0]):
        if kind[g] == POOL:
            continue
        step = (state.w_step[g], levels, rate)
        if kind[g] == DENSE:
            rows = graph.n_in[g] + graph.n_rec[g]  # a recurrent node's recurrent rows follow its input rows
            written = write_dense(w[w_off[g]: w_off[g + 1]].reshape((rows, -1)),
                                  grad_w[w_off[g]: w_off[g + 1]].reshape((rows, -1)),
                                  state.touched[in_off[g]: in_off[g + 1]], writes[c_off[g]: c_off[g + 1]], step)
        else:
            per = graph.geom[g, 0] * graph.geom[g, 6] * graph.geom[g, 7]  # weights per output channel
            written = write_conv(w[w_off[g]: w_off[g + 1]], grad_w[w_off[g]: w_off[g + 1]], per,
                                 writes[c_off[g]: c_off[g + 1]], step)
        for k in range(c_off[g], c_off[g + 1]):
            if graph.has_bias[g]:  # a node without bias has none to learn
                bias[k] -= rate * grad_b[k]
            grad_b[k] = 0.0
        tally.counters[g, C_WEIGHT_UPDATES, t] += written


@nb.njit(cache=True, inline="always")
def write_weight(w, k, grad, step):
    """``w[k] -= lr * grad``, onto the grid by stochastic rounding in fixed point; ``step`` = (grid step,
    levels, lr)."""
    grid, levels, rate = step
    if levels == 0:
        w[k] -= rate * grad
    else:
        w[k] = stochastic_round(w[k] - rate * grad, grid, levels)


@nb.njit(cache=True)
def write_dense(w2d, g2d, touched, counts, step):
    """The write-back of a dense node (``w2d``, ``g2d`` (n_in, n_out)), row by flagged row (only rows whose input
    was active hold any gradient); writes counted per postsynaptic neuron in ``counts``. Returns the weights
    written."""
    written = 0
    for j in range(touched.shape[0]):
        if touched[j] == 0:
            continue
        touched[j] = 0
        w_row, g_row = w2d[j], g2d[j]
        if step[1] == 0:  # float: a plain, vectorised write-back (a zero gradient leaves the weight as it is)
            for i in range(g_row.shape[0]):
                written += g_row[i] != 0.0
                counts[i] += g_row[i] != 0.0
                w_row[i] -= step[2] * g_row[i]
                g_row[i] = 0.0
            continue
        for i in range(g_row.shape[0]):
            if g_row[i] != 0.0:
                written += 1
                counts[i] += 1
                write_weight(w_row, i, g_row[i], step)
            g_row[i] = 0.0
    return written


@nb.njit(cache=True)
def write_conv(w, grad_w, per, counts, step):
    """The write-back of a conv node's shared kernel ``w`` (O, C, kh, kw) flat; writes counted per output channel
    (``per`` weights each) in ``counts``. Returns the weights written."""
    written = 0
    for q in range(w.shape[0]):
        if grad_w[q] == 0.0:
            continue
        written += 1
        counts[q // per] += 1
        write_weight(w, q, grad_w[q], step)
        grad_w[q] = 0.0
    return written
