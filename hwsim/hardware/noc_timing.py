"""Message-level step latency with network blocking (``timing.model: detailed``).

The model is the detailed timing model of SANA-FE (Boyle et al., "SANA-FE: Simulating Advanced Neuromorphic
Architectures for Fast Exploration", IEEE TCAD 2025), restated here for hwsim's placements and counts. It
replaces "busiest core + longest route" by a schedule of every spike message of a step:

* **Senders.** Each core sweeps its neurons in order (``neuron_update_ns`` each, ``spike_out_ns`` more for a
  neuron that fires); a firing neuron then sends one message per destination core, ``packet_out_ns`` each.
  A message leaves when the work before it on its core is done: its core's previous message's departure
  plus the neuron work between them plus its own ``packet_out_ns``. The chip's input port sends every input
  spike's messages back to back (``packet_out_ns`` each, no neuron work).
* **Receivers.** A core handles the messages that reach it one at a time, in order of arrival: a message is
  taken up at ``max(arrival, the core done with the previous one)`` and costs ``packet_in_ns`` + its synaptic
  events x ``sop_ns``. Receiving and sending run side by side on a core.
* **Network.** A message in flight (sent, not yet taken up by its receiver) occupies its path of ``h + 2``
  links (injection, ``h`` mesh links of dimension-order routing, ejection) and counts ``1 / (h + 2)`` on each;
  the congestion a new message sees is the sum of those occupancies over the ``h + 1`` links where it can be
  held (injection and mesh links), whose buffers hold ``h + 1`` x ``timing.link_buffer_messages`` messages.
  A sender whose route holds more than that stalls for (congestion - capacity) x the mean receive time of
  the messages in flight (the blocking estimate of the paper), and the message then travels for
  ``max(hops x hop time, congestion x mean receive time / (h + 1))``.
* The step ends when the last message is handled and every core has finished its sweep; the barrier follows.

Messages are taken in global order of departure, as the paper's scheduler does. Every step is scheduled on
its own (the network is empty at a step's start).

What hwsim knows and what it assumes: per step and layer, exact spike totals (``Counts``); their split over a
layer's cores follows each core's share of the layer's spikes over the run (exact when a layer has one core);
within a core the firing neurons are spread evenly over the sweep. A spike goes to every core of the next
layer when the mapping's packet count says so (dense layers), else to the mean number of cores its packets
reach, taken in turn. With a batch, a step's counts are divided by the batch (the mean sample).

Implementation: the senders, their destinations and the receive times are set up in Python; each distinct
step is then scheduled by two numba kernels over flat arrays (:func:`_sender_queues` lays out every sender's
messages, :func:`_schedule` runs the event loop). Every link has an integer id (a sender's injection port,
then the directed mesh links), and routes are walked on the fly. The kernels repeat the reference algorithm
operation for operation (same heap order and tie-breaks, same floating-point operations in the same order),
so the latencies are bit-identical to a plain-Python schedule (kept as ``tests/noc_timing_reference.py``).
"""


from __future__ import annotations

import heapq
from typing import NamedTuple

import numba as nb
import numpy as np

import hwsim.sim.kernels  # noqa: F401  (sets numba's cache folder before the kernels below are compiled)
from hwsim.chips.schema import Chip
from hwsim.hardware.mapping import Mapping, tile_xy
from hwsim.sim.counts import Counts

_INPUT_PORT = -1  # sender id of the chip's input port
MAX_MESSAGES = 400_000  # a run with more messages is scheduled on evenly spaced steps (said in the assumptions)


def _split(total: int, shares: np.ndarray) -> np.ndarray:
    """``total`` split over cores in proportion to ``shares`` (largest remainders; the sum is kept)."""
    if len(shares) == 1:
        return np.array([total], np.int64)
    weights = shares / shares.sum() if shares.sum() > 0 else np.full(len(shares), 1.0 / len(shares))
    exact = total * weights
    out = np.floor(exact).astype(np.int64)
    rest = int(total - out.sum())
    if rest > 0:
        out[np.argsort(out - exact)[:rest]] += 1
    return out


class _Senders:
    """Every sender of a step as flat arrays, indexed by sender (the input port first, then the cores in order).

    ``x``, ``y``: mesh tile, int64 ``(S,)``; ``is_input``: bool ``(S,)``; ``neurons``: int64 ``(S,)``;
    ``neuron_ns``: mean sweep time per neuron (ns), float64 ``(S,)``; ``spikes``: spikes per step, int64 ``(S, T)``;
    sender ``s``'s destination cores are ``dests[dest_offsets[s]:dest_offsets[s + 1]]`` (int64).
    """

    def __init__(self, senders: list[tuple]) -> None:
        columns = list(zip(*senders))  # sender id, x, y, neurons, neuron ns, spikes per step, destinations
        sid, x, y, neurons, neuron_ns, spikes, dests = columns
        self.x, self.y = np.array(x, np.int64), np.array(y, np.int64)
        self.is_input = np.array([i == _INPUT_PORT for i in sid], np.bool_)
        self.neurons = np.array(neurons, np.int64)
        self.neuron_ns = np.array([float(ns) for ns in neuron_ns], np.float64)
        self.spikes = np.array([np.asarray(per_step, np.int64) for per_step in spikes], np.int64)
        self.dest_offsets = np.concatenate([[0], np.cumsum([len(d) for d in dests])]).astype(np.int64)
        self.dests = np.array([core for d in dests for core in d], np.int64)


def detailed_step_latency_ns(mapping: Mapping, counts: Counts, chip: Chip) -> tuple[np.ndarray, list[str]]:
    """Per-step latency (ns, without the barrier) of ``counts``'s run under the detailed model, shape ``(T,)``
    (or the scheduled steps' when the run has over ``MAX_MESSAGES`` messages), and the assumptions taken."""
    t = chip.timing
    hop_ew = t.hop_ew_ns or 0.0
    hop_ns = t.hop_ns_ns if t.hop_ns_ns is not None else hop_ew
    noc = chip.layout is None or chip.layout.noc
    cx, cy = tile_xy(np.arange(max(mapping.cores_used, 1)), chip, mapping.cores_used)

    receive = _receive_ns(mapping, t)
    senders = _Senders(_sender_list(mapping, counts, t, cx, cy))
    core_x, core_y = np.asarray(cx, np.int64), np.asarray(cy, np.int64)
    width = int(max(core_x.max(), senders.x.max(), 0)) + 1  # the mesh's extent (the input port sits at (0, 0))
    height = int(max(core_y.max(), senders.y.max(), 0)) + 1

    buffer = float(t.link_buffer_messages)
    spike_ns = t.spike_out_ns or 0.0
    lengths = np.diff(senders.dest_offsets)
    messages = sum(int(spikes.sum()) * int(n) for spikes, n in zip(senders.spikes, lengths))
    steps = np.arange(counts.timesteps)
    assumptions = [f"detailed timing (Boyle et al., SANA-FE, IEEE TCAD 2025): messages scheduled in order of "
                   f"departure, receivers one message at a time, senders stall when a route holds more than "
                   f"{t.link_buffer_messages} messages per link; spikes split over a layer's cores by their share "
                   f"of the run's spikes, spread evenly over each core's neuron sweep"]
    if messages > MAX_MESSAGES:
        steps = np.unique(np.linspace(0, counts.timesteps - 1, max(1, counts.timesteps * MAX_MESSAGES // messages))
                          .astype(np.int64))
        assumptions.append(f"detailed timing scheduled on {len(steps)} of {counts.timesteps} evenly spaced steps "
                           f"({messages} messages in all)")
    cache: dict[bytes, float] = {}
    out = np.zeros(len(steps))
    for n, step in enumerate(steps):
        spikes = np.ascontiguousarray(senders.spikes[:, step])
        key = spikes.tobytes()  # the step's spikes per sender: steps alike are scheduled once
        if key not in cache:
            queues = _sender_queues(senders.is_input, senders.neurons, senders.neuron_ns, spikes, senders.dest_offsets,
                                    senders.dests, float(spike_ns), float(t.packet_out_ns))
            cache[key] = _schedule(queues, (senders.x, senders.y, core_x, core_y), receive, buffer,
                                   _Mesh(float(hop_ew), float(hop_ns), bool(noc), width, height))
        out[n] = cache[key]
    return out, assumptions


def _receive_ns(mapping: Mapping, t) -> np.ndarray:
    """Receive time per message at every core (ns, ``(cores_used,)``): packet in + its synaptic events (the mean
    per packet, exact for dense layers; a recurrent layer's own packets count among its packets; on a core that
    layers share, the mean over all their packets)."""
    receive = np.zeros(mapping.cores_used)
    sops, packets = np.zeros(mapping.cores_used), np.zeros(mapping.cores_used)
    for p in mapping.layers:
        cores = slice(p.first_core, p.first_core + p.cores)
        arriving = p.packets_in + p.packets_recurrent
        shared = packets[cores].any()
        sops[cores] += p.sop_per_core
        packets[cores] += arriving / p.cores
        if shared:
            per_packet = sops[cores] / np.maximum(packets[cores], 1.0)
        else:
            per_packet = p.sop_per_core.astype(np.float64) * p.cores / max(arriving, 1)
        receive[cores] = t.packet_in_ns + per_packet * t.sop_ns
    return receive


def _sender_list(mapping: Mapping, counts: Counts, t, cx: np.ndarray, cy: np.ndarray) -> list[tuple]:
    """The senders: the input port, then every core of every layer (the last layer's messages leave the chip,
    so its cores send none but a recurrent layer's own), each as (sender id, x, y, neurons, neuron ns, spikes per
    step ``(T,)``, destination cores per spike)."""
    layers = mapping.layers
    batch = max(counts.batch, 1)
    steps_samples = counts.timesteps * batch
    senders = []
    lc0 = counts.layers[0]
    fan0 = _fan_out(layers[0], int(lc0.events["spikes_in"].sum()))
    senders.append((_INPUT_PORT, 0, 0, 0, 0.0, np.rint(lc0.events["spikes_in"] / batch).astype(np.int64),
                    _destinations(layers[0], fan0)))
    for k, p in enumerate(layers):
        lc = counts.layers[k]
        neuron_ns = _neuron_ns(p, t, steps_samples)
        nxt = layers[k + 1] if k + 1 < len(layers) else None
        dests = [] if nxt is None else _destinations(nxt, _fan_out(nxt, lc.total("spikes_out")))
        if p.packets_recurrent:  # a recurrent layer's spikes also go back to every core of their layer
            dests = dests + [p.first_core + j for j in range(p.cores)]
        per_step = np.rint(lc.events["spikes_out"] / batch).astype(np.int64)
        shares = p.spikes_per_core.astype(np.float64)
        split = np.array([_split(int(s), shares) for s in per_step]).reshape(len(per_step), p.cores)
        for j in range(p.cores):
            core = p.first_core + j
            senders.append((core, int(cx[core]), int(cy[core]), int(p.neurons_per_core[j]), neuron_ns[j],
                            split[:, j], dests))
    return senders


def _fan_out(placement, spikes: int) -> int:
    """Destination cores per spike into ``placement`` (all its cores for dense layers; else the mean)."""
    if spikes <= 0:
        return placement.cores
    return int(min(placement.cores, max(1, round(placement.packets_in / spikes))))


def _destinations(placement, fan: int) -> list[int]:
    """The cores a spike's messages go to: all of ``placement``'s, or ``fan`` of them (the first ones)."""
    return [placement.first_core + j for j in range(min(fan, placement.cores))]


def _neuron_ns(placement, t, steps_samples: int) -> np.ndarray:
    """Mean sweep time per neuron per step on each core of ``placement``."""
    if t.neuron_update_active_ns is not None and t.neuron_update_idle_ns is not None:
        active = placement.active_per_core.astype(np.float64)
        idle = placement.updates_per_core.astype(np.float64) - active
        total = active * t.neuron_update_active_ns + idle * t.neuron_update_idle_ns
        return total / np.maximum(placement.updates_per_core, 1)
    return np.full(placement.cores, t.neuron_update_ns or 0.0)


@nb.njit(cache=True)
def _sender_queues(is_input: np.ndarray, neurons: np.ndarray, neuron_ns: np.ndarray, spikes: np.ndarray,
                   dest_offsets: np.ndarray, dests: np.ndarray, spike_ns: float, packet_out_ns: float):
    """One step's messages of every sender, in sending order: ``(offsets (S + 1,), work (M,), dest (M,))``;
    sender ``s``'s messages are ``offsets[s]:offsets[s + 1]``, each with the work before it on its sender (ns)
    and its destination core (-1 for the tail of a core's sweep after its last message).

    A core sweeps its ``neurons`` (``neuron_ns`` each); its ``spikes`` firing neurons are each the last of an
    even share of the sweep, cost ``spike_ns`` more and send ``packet_out_ns`` per destination. The input port
    sends every spike's messages back to back.
    """
    n_senders = len(spikes)
    bound = 0
    for s in range(n_senders):
        fan = dest_offsets[s + 1] - dest_offsets[s]
        fired = spikes[s] if is_input[s] else min(spikes[s], neurons[s])
        bound += max(fired, 0) * fan + 1
    offsets = np.empty(n_senders + 1, np.int64)
    work = np.empty(bound, np.float64)
    dest = np.empty(bound, np.int64)
    m = 0
    for s in range(n_senders):
        offsets[s] = m
        d0, d1 = dest_offsets[s], dest_offsets[s + 1]
        if is_input[s]:
            for _ in range(spikes[s]):
                for j in range(d0, d1):
                    work[m] = packet_out_ns
                    dest[m] = dests[j]
                    m += 1
            continue
        n = neurons[s]
        fired_total = min(spikes[s], n)
        done = 0
        pending = 0.0
        for i in range(fired_total):
            fired = (i + 1) * n // fired_total  # the i-th firing neuron is the last of its even share of the sweep
            pending += (fired - done) * neuron_ns[s] + spike_ns
            done = fired
            for j in range(d0, d1):
                work[m] = pending + packet_out_ns
                dest[m] = dests[j]
                m += 1
                pending = 0.0
        pending += (n - done) * neuron_ns[s]
        if pending > 0:
            work[m] = pending
            dest[m] = -1
            m += 1
    offsets[n_senders] = m
    return offsets, work[:m], dest[:m]


@nb.njit(cache=True)
def _route(s: int, sx: int, sy: int, dx: int, dy: int, noc: bool, n_senders: int, width: int, height: int,
           links: np.ndarray) -> int:
    """Write into ``links`` the ids of the links a message from sender ``s`` at tile (sx, sy) to tile (dx, dy)
    can be held on, in route order: its injection port (id ``s``), then the mesh links of dimension-order
    routing (x first, then y; ids from ``n_senders`` on, by tile and direction). Returns how many."""
    links[0] = s
    if not noc:
        return 1
    n = 1
    x, y = sx, sy
    while x != dx:
        step = 1 if dx > x else -1
        links[n] = n_senders + (y * width + x) * 2 + (1 if step > 0 else 0)
        n += 1
        x += step
    while y != dy:
        step = 1 if dy > y else -1
        links[n] = n_senders + 2 * width * height + (y * width + x) * 2 + (1 if step > 0 else 0)
        n += 1
        y += step
    return n


@nb.njit(cache=True)
def _py_max(a: float, b: float) -> float:
    """Python's ``max(a, b)``: ``a`` unless ``b`` is strictly larger (the same pick on ties and signed zeros)."""
    return b if b > a else a


class _Mesh(NamedTuple):
    """The network of :func:`_schedule`: ``hop_ew``, ``hop_ns`` hop times east-west and north-south (ns, float);
    ``noc``: whether messages cross a mesh (else only an injection port); ``width``, ``height``: the mesh in tiles."""

    hop_ew: float
    hop_ns: float
    noc: bool
    width: int
    height: int


@nb.njit(cache=True)
def _schedule(queues: tuple, tiles: tuple, receive: np.ndarray, buffer: float, mesh: _Mesh) -> float:
    """Schedule one step's messages; returns when the last one is handled or the last sweep ends (ns).

    ``queues``: ``(offsets, work, dest)`` from :func:`_sender_queues`; ``tiles``: ``(sender_x, sender_y, core_x,
    core_y)`` int64, each sender's tile and each core's; ``receive``: receive time per message at each core (ns),
    float64 ``(cores,)``; ``buffer``: messages per link buffer; ``mesh``: a :class:`_Mesh`.
    Messages are taken in order of (departure, sender, message index); messages in flight leave the network in
    order of (taken up at, sequence number).
    """
    offsets, work, dest = queues
    sender_x, sender_y, core_x, core_y = tiles
    hop_ew, hop_ns, noc, width, height = mesh
    n_senders = len(offsets) - 1
    free = np.zeros(len(receive))  # when each core is done with the messages it received
    density = np.zeros(n_senders + 4 * width * height)  # messages in flight per link, each 1 / (h + 2)
    links = np.empty(1 + width + height, np.int64)
    in_flight = [(0.0, 0, 0, 0, 0.0, 0.0)]  # heap of (taken up at, seq, sender, destination, weight, receive)
    in_flight.pop()
    recv_sum = 0.0
    recv_n = 0
    heap = [(0.0, 0, 0)]  # (departure, sender index, message index)
    heap.pop()
    for s in range(n_senders):
        if offsets[s + 1] > offsets[s]:
            heap.append((work[offsets[s]], s, 0))
    heapq.heapify(heap)
    end = 0.0
    seq = 0
    while len(heap) > 0:
        sent, s, i = heapq.heappop(heap)
        while len(in_flight) > 0 and in_flight[0][0] <= sent:  # taken up by their receivers: out of the network
            _, _, gone_s, gone_d, w, r = heapq.heappop(in_flight)
            n = _route(gone_s, sender_x[gone_s], sender_y[gone_s], core_x[gone_d], core_y[gone_d], noc, n_senders,
                       width, height, links)
            for k in range(n):
                density[links[k]] -= w
            recv_sum -= r
            recv_n -= 1
            if recv_n == 0:
                recv_sum = 0.0  # no rounding drift carried into an empty network
        m = offsets[s] + i
        d = dest[m]
        if d >= 0:
            sx, sy, dx, dy = sender_x[s], sender_y[s], core_x[d], core_y[d]
            n = _route(s, sx, sy, dx, dy, noc, n_senders, width, height, links)
            hops = abs(dx - sx) + abs(dy - sy) if noc else 0
            min_delay = abs(dx - sx) * hop_ew + abs(dy - sy) * hop_ns if noc else 0.0
            congestion = 0.0
            for k in range(n):
                congestion += density[links[k]]
            capacity = (hops + 1) * buffer
            mean_r = recv_sum / recv_n if recv_n else 0.0
            if congestion > capacity:
                sent += (congestion - capacity) * mean_r
            travel = _py_max(min_delay, congestion * mean_r / (hops + 1))
            arrival = sent + travel
            start = _py_max(free[d], arrival)
            r = receive[d]
            free[d] = start + r
            end = _py_max(end, free[d])
            w = 1.0 / (hops + 2)
            for k in range(n):
                density[links[k]] += w
            seq += 1
            heapq.heappush(in_flight, (start, seq, s, d, w, r))
            recv_sum += r
            recv_n += 1
        end = _py_max(end, sent)
        if m + 1 < offsets[s + 1]:
            heapq.heappush(heap, (sent + work[m + 1], s, i + 1))
    return end
