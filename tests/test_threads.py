"""Thread policy: results bit-identical for any thread count and work split; bad counts rejected in one line."""

import subprocess
import sys

import numba
import numpy as np
import pytest

from hwsim.sim.engine import Engine, bernoulli, work_split
from hwsim.sim.network import from_spec
from hwsim.sim.threads import ThreadsError, available_threads, check_threads, set_threads


def _snapshot(result):
    layers = [(lc.name, {k: v.copy() for k, v in lc.events.items()}, lc.neuron_spikes, lc.neuron_active,
               lc.input_spikes) for lc in result.counts.layers]
    return result.spikes, result.membranes, result.currents, layers


def _assert_same(a, b, what):
    for k, (x, y) in enumerate(zip(a[0], b[0])):
        np.testing.assert_array_equal(x, y, err_msg=f"{what}: spikes of layer {k}")
    for states_a, states_b in ((a[1], b[1]), (a[2], b[2])):
        for k, (x, y) in enumerate(zip(states_a or [], states_b or [])):
            np.testing.assert_array_equal(x, y, err_msg=f"{what}: state of layer {k}")
    for (name, ev_a, *per_a), (_, ev_b, *per_b) in zip(a[3], b[3]):
        for key in ev_a:
            np.testing.assert_array_equal(ev_a[key], ev_b[key], err_msg=f"{what}: {name} {key}")
        for x, y in zip(per_a, per_b):
            np.testing.assert_array_equal(x, y, err_msg=f"{what}: {name} per-neuron counts")


@pytest.mark.parametrize("mode", ["float", "fixed"])
@pytest.mark.parametrize("spec, shape", [("40-200-5", (40,)), ("2x9x9-c5k3p1-p2-c6k3s2p1-7", (2, 9, 9))])
def test_any_work_split_gives_identical_results(mode, spec, shape):
    """Virtual thread counts 1..7 split samples and output blocks differently (batch 1 and 3)."""
    network = from_spec(spec, mode=mode, seed=3)
    first = Engine(network).plans[0]
    group = int(first.geom[3]) or 200
    assert work_split(first.kind, 1, 200 if group == 200 else 5 * 81, group, 7)[1] > 1  # batch 1 splits blocks
    for batch in (1, 3):
        x = bernoulli((6, batch, *shape), 0.3, seed=batch)
        reference = _snapshot(Engine(network, threads=1).run(x, record=True))
        for threads in (2, 3, 5, 7):
            _assert_same(reference, _snapshot(Engine(network, threads=threads).run(x, record=True)),
                         f"{mode} {spec} batch {batch}, split for {threads} threads")


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_engine_reused_across_inputs_and_python_threads(mode):
    """An engine keeps its event buffers between runs: runs with other inputs and batch sizes, and runs from
    several Python threads at once, each equal a fresh engine's run of the same input."""
    import threading

    network = from_spec("2x8x8-c4k3p1-p2-30-5", mode=mode, seed=4)
    inputs = [bernoulli((5, batch, 2, 8, 8), rate, seed=k) for k, (batch, rate) in
              enumerate([(3, 0.3), (1, 0.6), (3, 0.05), (4, 0.3)])]
    fresh = [_snapshot(Engine(network).run(x, record="spikes")) for x in inputs]
    shared = Engine(network, threads=2)
    for k, x in enumerate(inputs + inputs[::-1]):
        index = k if k < len(inputs) else 2 * len(inputs) - 1 - k
        _assert_same(fresh[index], _snapshot(shared.run(x, record="spikes")), f"reused engine, input {index}")
    failures = []

    def worker(index):
        try:
            for _ in range(5):
                _assert_same(fresh[index], _snapshot(shared.run(inputs[index], record="spikes")), f"thread {index}")
        except AssertionError as error:
            failures.append(error)

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(len(inputs))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures, failures[0]


def test_real_thread_counts_give_identical_results():
    network = from_spec("2x8x8-c4k3p1-p2-12-5", seed=1)
    x = bernoulli((5, 4, 2, 8, 8), 0.3, seed=2)
    previous = numba.get_num_threads()
    try:
        set_threads(1)
        one = _snapshot(Engine(network).run(x, record=True))
        set_threads(available_threads())
        _assert_same(one, _snapshot(Engine(network).run(x, record=True)), f"{available_threads()} threads")
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize("bad", [0, -1, available_threads() + 1, 1.5])
def test_bad_thread_count_is_named(bad):
    with pytest.raises(ThreadsError, match=r"--threads must be an integer in 1\.\.\d+"):
        check_threads(bad)


@pytest.mark.parametrize("bad", ["0", str(available_threads() + 1)])
def test_cli_bad_threads_is_one_line(bad):
    proc = subprocess.run([sys.executable, "-m", "hwsim", "run", "--net", "4-3", "-T", "2", "--threads", bad],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "--threads must be an integer in 1.." in proc.stderr and "Traceback" not in proc.stderr


def test_thread_policy_does_not_import_torch():
    code = ("import sys; from hwsim.sim.threads import set_threads; set_threads(1); "
            "from hwsim.sim.engine import Engine; assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_torch_follows_the_policy():
    code = ("import torch; from hwsim.sim.threads import set_threads; set_threads(1); "
            "assert torch.get_num_threads() == 1, torch.get_num_threads()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_emitted_events_equal_scanned_events(mode, monkeypatch):
    """Layers emit the next layer's events while they fire; above the reserve limit they are scanned from
    the dense spikes instead: both give the same spikes and counts, with and without recorded spikes."""
    import hwsim.sim.engine as engine_module

    net = from_spec("2x8x8-c4p1-p2-24-10", mode=mode, seed=5)
    x = bernoulli((9, 4, 2, 8, 8), 0.3, seed=2)
    emitted = Engine(net, threads=2).run(x, record="spikes")
    monkeypatch.setattr(engine_module, "EMIT_RESERVE_BYTES", 0)
    for record in ("spikes", False):
        scanned = Engine(net, threads=2).run(x, record=record)
        assert np.array_equal(scanned.output, emitted.output)
        for a, b in zip(scanned.counts.layers, emitted.counts.layers):
            assert all(np.array_equal(a.events[k], b.events[k]) for k in a.events)
            assert np.array_equal(a.neuron_spikes, b.neuron_spikes)
