"""The plain-Python detailed schedule of ``hwsim.hardware.noc_timing`` as it was before its numba port, frozen as the
reference ``tests/test_noc_timing.py`` compares against (the set-up helpers it shares unchanged are imported)."""

from __future__ import annotations

import heapq

import numpy as np
from hwsim.chips.schema import Chip

from hwsim.hardware.mapping import Mapping, tile_xy
from hwsim.hardware.noc_timing import _destinations, _fan_out, _neuron_ns, _split  # unchanged by the port
from hwsim.sim.counts import Counts

_INPUT_PORT = -1  # sender id of the chip's input port
MAX_MESSAGES = 400_000  # a run with more messages is scheduled on evenly spaced steps (said in the assumptions)




class _Route:
    """Links a message can be held on (injection + mesh links) and its hop delay."""

    __slots__ = ("links", "hops", "min_delay")

    def __init__(self, links: tuple, hops: int, min_delay: float) -> None:
        self.links, self.hops, self.min_delay = links, hops, min_delay


def _route(src: int, sx: int, sy: int, dx: int, dy: int, hop_ew: float, hop_ns: float) -> _Route:
    links = [("port", src)]
    x, y = sx, sy
    while x != dx:  # dimension order: x first, then y
        step = 1 if dx > x else -1
        links.append(("x", x, y, step))
        x += step
    while y != dy:
        step = 1 if dy > y else -1
        links.append(("y", x, y, step))
        y += step
    hops = abs(dx - sx) + abs(dy - sy)
    return _Route(tuple(links), hops, abs(dx - sx) * hop_ew + abs(dy - sy) * hop_ns)


def detailed_step_latency_ns(mapping: Mapping, counts: Counts, chip: Chip) -> tuple[np.ndarray, list[str]]:
    """Per-step latency (ns, without the barrier) of ``counts``'s run under the detailed model, shape ``(T,)``
    (or the scheduled steps' when the run has over ``MAX_MESSAGES`` messages), and the assumptions taken."""
    t = chip.timing
    layers = mapping.layers
    batch = max(counts.batch, 1)
    hop_ew = t.hop_ew_ns or 0.0
    hop_ns = t.hop_ns_ns if t.hop_ns_ns is not None else hop_ew
    noc = chip.layout is None or chip.layout.noc
    cx, cy = tile_xy(np.arange(max(mapping.cores_used, 1)), chip, mapping.cores_used)
    steps_samples = counts.timesteps * batch

    # receive time per message at every core: packet in + its synaptic events (mean per packet, exact for dense)
    receive = np.zeros(mapping.cores_used)
    for p in layers:
        per_packet = p.sop_per_core.astype(np.float64) * p.cores / max(p.packets_in, 1)
        receive[p.first_core:p.first_core + p.cores] = t.packet_in_ns + per_packet * t.sop_ns

    # senders: the input port, then every core of every layer but the last one's messages (they leave the chip)
    senders = []  # (sender id, x, y, neurons, neuron ns, spikes per step (T, ), destinations per spike)
    lc0 = counts.layers[0]
    fan0 = _fan_out(layers[0], int(lc0.events["spikes_in"].sum()))
    senders.append((_INPUT_PORT, 0, 0, 0, 0.0, np.rint(lc0.events["spikes_in"] / batch).astype(np.int64),
                    _destinations(layers[0], fan0)))
    for k, p in enumerate(layers):
        lc = counts.layers[k]
        neuron_ns = _neuron_ns(p, t, steps_samples)
        nxt = layers[k + 1] if k + 1 < len(layers) else None
        dests = [] if nxt is None else _destinations(nxt, _fan_out(nxt, lc.total("spikes_out")))
        per_step = np.rint(lc.events["spikes_out"] / batch).astype(np.int64)
        shares = p.spikes_per_core.astype(np.float64)
        split = np.array([_split(int(s), shares) for s in per_step]).reshape(len(per_step), p.cores)
        for j in range(p.cores):
            core = p.first_core + j
            senders.append((core, int(cx[core]), int(cy[core]), int(p.neurons_per_core[j]), neuron_ns[j],
                            split[:, j], dests))

    routes = []  # per sender: destination -> route
    for sid, sx, sy, *_rest, dests in senders:
        routes.append({d: _route(sid, sx, sy, int(cx[d]), int(cy[d]), hop_ew, hop_ns) if noc
                       else _Route((("port", sid),), 0, 0.0) for d in dests})

    buffer = float(t.link_buffer_messages)
    spike_ns = t.spike_out_ns or 0.0
    messages = sum(int(spikes.sum()) * len(dests) for *_rest, spikes, dests in senders)
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
    cache: dict[tuple, float] = {}
    out = np.zeros(len(steps))
    for n, step in enumerate(steps):
        key = tuple(int(spikes[step]) for *_rest, spikes, _d in senders)
        if key not in cache:
            queues = [_sender_messages(sid, neurons, nns, spk, dests, spike_ns, t.packet_out_ns)
                      for (sid, _x, _y, neurons, nns, _s, dests), spk in zip(senders, key)]
            cache[key] = _schedule(queues, routes, receive, buffer, mapping.cores_used)
        out[n] = cache[key]
    return out, assumptions








def _sender_messages(sid: int, neurons: int, neuron_ns: float, spikes: int, dests: list[int], spike_ns: float,
                     packet_out_ns: float) -> list[tuple[float, int]]:
    """One step of a sender: (work before the message in ns, destination or -1 for the sweep's tail)."""
    msgs: list[tuple[float, int]] = []
    if sid == _INPUT_PORT:
        for _ in range(spikes):
            msgs.extend((packet_out_ns, d) for d in dests)
        return msgs
    spikes = min(spikes, neurons)
    done = 0
    pending = 0.0
    for i in range(spikes):
        fired = (i + 1) * neurons // spikes  # the i-th firing neuron is the last of its even share of the sweep
        pending += (fired - done) * neuron_ns + spike_ns
        done = fired
        if dests:
            for d in dests:
                msgs.append((pending + packet_out_ns, d))
                pending = 0.0
    pending += (neurons - done) * neuron_ns
    if pending > 0:
        msgs.append((pending, -1))
    return msgs


def _schedule(queues: list[list[tuple[float, int]]], routes: list[dict], receive: np.ndarray, buffer: float,
              cores: int) -> float:
    """Schedule one step's messages; returns when the last one is handled or the last sweep ends (ns)."""
    free = [0.0] * cores  # when each core is done with the messages it received
    density: dict = {}
    in_flight: list = []  # heap of (taken up at, seq, links, weight, receive time)
    recv_sum = 0.0
    recv_n = 0
    heap = []  # (departure, sender index, message index)
    for s, q in enumerate(queues):
        if q:
            heap.append((q[0][0], s, 0))
    heapq.heapify(heap)
    end = 0.0
    seq = 0
    while heap:
        sent, s, i = heapq.heappop(heap)
        while in_flight and in_flight[0][0] <= sent:  # messages taken up by their receivers leave the network
            _, _, links, w, r = heapq.heappop(in_flight)
            for link in links:
                density[link] -= w
            recv_sum -= r
            recv_n -= 1
            if recv_n == 0:
                recv_sum = 0.0  # no rounding drift carried into an empty network
        dest = queues[s][i][1]
        if dest >= 0:
            route = routes[s][dest]
            congestion = sum(density.get(link, 0.0) for link in route.links)
            capacity = (route.hops + 1) * buffer
            mean_r = recv_sum / recv_n if recv_n else 0.0
            if congestion > capacity:
                sent += (congestion - capacity) * mean_r
            travel = max(route.min_delay, congestion * mean_r / (route.hops + 1))
            arrival = sent + travel
            start = max(free[dest], arrival)
            r = float(receive[dest])
            free[dest] = start + r
            end = max(end, free[dest])
            w = 1.0 / (route.hops + 2)
            for link in route.links:
                density[link] = density.get(link, 0.0) + w
            seq += 1
            heapq.heappush(in_flight, (start, seq, route.links, w, r))
            recv_sum += r
            recv_n += 1
        end = max(end, sent)
        if i + 1 < len(queues[s]):
            heapq.heappush(heap, (sent + queues[s][i + 1][0], s, i + 1))
    return end
