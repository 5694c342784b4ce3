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


@pytest.mark.parametrize("spec", ["40-30-20-5", "40-r30-5", "2x8x8-c4k3p1-p2-30-5"])
@pytest.mark.parametrize("threads", [None, 3])
@pytest.mark.parametrize("keep", [True, False])
def test_kept_run_shapes_leave_earlier_results_alone(spec, threads, keep, monkeypatch):
    """An engine keeps what each input shape needs (:class:`hwsim.sim.engine._RunShape`: counter buffers, the
    output record of layers whose spikes are not returned). Results of a run stay as they were while the engine
    runs other shapes (more than it keeps), other record settings and the same shape again, and every run equals
    a fresh engine's; also when no shape is kept (``SHAPE_KEEP_BYTES`` 0: every run builds its own)."""
    import hwsim.sim.engine
    from hwsim.sim.engine import SHAPES_KEPT

    if not keep:
        monkeypatch.setattr(hwsim.sim.engine, "SHAPE_KEEP_BYTES", 0)
    network = from_spec(spec, seed=5)
    shape = network.input_shape
    inputs = [bernoulli((steps, batch, *shape), rate, seed=k) for k, (steps, batch, rate) in
              enumerate([(6, 1, 0.3), (4, 3, 0.5), (6, 1, 0.1), (3, 2, 0.4), (5, 1, 0.2), (7, 2, 0.3)])]
    assert len({x.shape for x in inputs}) > SHAPES_KEPT
    engine = Engine(network, threads=threads)
    kept = []
    # each shape again at once (kept), after one other (kept), and after more than SHAPES_KEPT others (rebuilt)
    order = [0, 0, 1, 0, 1, 1, 2, 3, 4, 5, 0, 0, 2, 2]
    for round_, k in enumerate(order):
        x = inputs[k]
        for record in (False, "spikes", True)[round_ % 3:] + (False,):
            result = engine.run(x, record=record)
            copy = _snapshot(result)
            copy = ([None if s is None else s.copy() for s in copy[0]], copy[1], copy[2],
                    [(name, events, *(a.copy() for a in arrays)) for name, events, *arrays in copy[3]])
            kept.append((result, copy))
            _assert_same(_snapshot(Engine(network, threads=threads).run(x, record=record)), copy,
                         f"{spec}, input {k}, record {record!r}, run {len(kept)}")
    for k, (result, copy) in enumerate(kept):
        _assert_same(_snapshot(result), copy, f"{spec}: result {k} after the later runs")
    assert bool(engine._shapes) == keep


def test_kept_shapes_share_the_engine_event_buffers(monkeypatch):
    """Runs alternating shapes of different T x B keep both shapes (the event buffers only grow, so the second
    shape reuses them); every kept shape's layers write into the engine's current buffers, never into one a wider
    layer replaced (layers 0 and 2 share a buffer, the later one wider); SHAPES_KEPT = 0 keeps none."""
    import hwsim.sim.engine

    network = from_spec("40-100-10-200-5", seed=6)
    engine = Engine(network)
    inputs = [bernoulli((10, 1, 40), 0.3, seed=1), bernoulli((10, 2, 40), 0.3, seed=2)]
    for x in inputs + inputs:  # the first run of the larger shape grows the buffers (and drops the kept shape)
        engine.run(x)
    kept = {key: id(shape) for key, shape in engine._shapes.items()}
    assert len(kept) == 2
    for _ in range(3):
        for x in inputs:
            reference = _snapshot(Engine(network).run(x))
            _assert_same(reference, _snapshot(engine.run(x)), "alternating shapes")
    assert {key: id(shape) for key, shape in engine._shapes.items()} == kept  # nothing rebuilt
    buffers = [kept_buffer[2] for kept_buffer in engine._event_buffers if kept_buffer is not None]
    for shape in engine._shapes.values():
        for layer in shape.layers:
            if layer.emit:
                assert any(layer.sink[2] is buffer for buffer in buffers)
    monkeypatch.setattr(hwsim.sim.engine, "SHAPES_KEPT", 0)
    engine = Engine(network)
    _assert_same(_snapshot(Engine(network).run(inputs[0])), _snapshot(engine.run(inputs[0])), "SHAPES_KEPT 0")
    assert not engine._shapes


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


# -- the default count on a busy machine (hwsim.sim.threads.default_threads), with the machine mocked ----------

def _sample(wall, own, idle, total=None):
    """A CpuSample at ``wall`` s: this process used ``own`` s of CPU; per CPU ``idle`` s of ``total`` s."""
    from hwsim.sim.threads import CpuSample

    total = total if total is not None else {cpu: wall for cpu in idle}
    return CpuSample(wall, own, dict(idle), dict(total))


def _mock_machine(monkeypatch, cpus, end, start=None, load=None, env=None):
    """Affinity ``cpus``; the probe window from ``start`` (default: all idle at 0 s) to ``end``; no sleeping."""
    import hwsim.sim.threads as threads

    for name in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(cpus))
    start = start or _sample(0.0, 0.0, {cpu: 0.0 for cpu in range(8)})
    monkeypatch.setattr(threads, "_START", start)
    monkeypatch.setattr(threads.time, "monotonic", lambda: start.wall)  # the window is open: no fresh start
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(threads, "sample_cpus", lambda path=threads.CPU_STAT: end)
    def getloadavg():
        if load is None:
            raise OSError("load average unknown")
        return load, load, load

    monkeypatch.setattr(threads.os, "getloadavg", getloadavg)
    return threads


@pytest.mark.parametrize("idle, own, expected", [
    ({0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}, 0.0, 4),  # an idle machine: every core
    ({0: 0.0, 1: 1.0, 2: 1.0, 3: 1.0}, 1.0, 4),  # this process's own start-up is no competitor
    ({0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0}, 0.0, 2),  # two cores taken by another job
    ({0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0}, 0.0, 1),  # all taken: one thread, never none
    ({0: 0.6, 1: 0.6, 2: 0.0, 3: 0.0}, 0.0, 1),  # 1.2 cores free: one
    ({0: 0.8, 1: 0.7, 2: 0.0, 3: 0.0}, 0.0, 2),  # 1.5 cores free: a core counts when half of it is free
])
def test_default_takes_the_free_cores(monkeypatch, idle, own, expected):
    threads = _mock_machine(monkeypatch, {0, 1, 2, 3}, _sample(1.0, own, idle))
    assert threads.default_threads() == expected
    assert threads.check_threads(None) == expected


def test_default_counts_only_the_cores_of_its_affinity(monkeypatch):
    """CPUs 0 and 1 are busy, but this process may run on 2 and 3 only, which are free."""
    threads = _mock_machine(monkeypatch, {2, 3}, _sample(1.0, 0.0, {0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0}))
    assert threads.default_threads() == 2
    threads = _mock_machine(monkeypatch, {0, 1, 2}, _sample(1.0, 0.0, {0: 0.0, 1: 1.0, 2: 1.0, 3: 1.0}))
    assert threads.default_threads() == 2


def test_one_hogged_core_of_two_gives_one_thread(monkeypatch):
    """The measured case (benchmarks/bench_busy.py): 2 cores, a CPU hog on one, this process starting up on the
    other (its own CPU time is free for it)."""
    threads = _mock_machine(monkeypatch, {0, 1}, _sample(0.3, 0.28, {0: 0.0, 1: 0.01}))
    assert threads.default_threads() == 1


def test_launcher_and_load_average_fallbacks(monkeypatch):
    busy = _sample(1.0, 0.0, {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0})
    assert _mock_machine(monkeypatch, range(4), busy, env={"OMP_NUM_THREADS": "3"}).default_threads() == 3
    assert _mock_machine(monkeypatch, range(4), busy, env={"LOCAL_WORLD_SIZE": "2"}).default_threads() == 2
    from hwsim.sim.threads import CpuSample

    unknown = CpuSample(1.0, 0.0, None, None)  # no /proc/stat: the load average of the others stands in
    assert _mock_machine(monkeypatch, range(4), unknown, load=3.0).default_threads() == 2
    assert _mock_machine(monkeypatch, range(4), unknown, load=0.2).default_threads() == 4
    assert _mock_machine(monkeypatch, range(4), unknown, load=None).default_threads() == 4  # nothing known: all
    assert _mock_machine(monkeypatch, {0}, unknown, load=9.0).default_threads() == 1


def test_probe_window_and_stat_parsing(monkeypatch, tmp_path):
    """A real sample parses /proc/stat's per-CPU lines; an old start is replaced by a fresh window of at least
    PROBE_MIN_S; free cores are capped by the affinity."""
    import hwsim.sim.threads as threads

    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 100 5 0 0 0 0 0\ncpu0 5 0 5 50 2 0 0 1 0 0\ncpu1 5 0 5 50 3 0 0 0 0 0\n"
                    "intr 1 2 3\nctxt 9\n")
    sample = threads.sample_cpus(str(stat))
    tick = float(__import__("os").sysconf("SC_CLK_TCK"))
    assert sample.idle == {0: 52 / tick, 1: 53 / tick} and sample.total == {0: 63 / tick, 1: 63 / tick}
    assert threads.sample_cpus(str(tmp_path / "missing")).idle is None
    real = threads.sample_cpus()
    assert real.idle is None or set(real.idle) >= set(__import__("os").sched_getaffinity(0))

    slept = []
    monkeypatch.setattr(threads, "_START", _sample(0.0, 0.0, {0: 0.0}))
    monkeypatch.setattr(threads.time, "monotonic", lambda: 100.0)
    monkeypatch.setattr(threads.time, "sleep", slept.append)
    fresh = [_sample(99.99, 5.0, {0: 10.0, 1: 10.0}, {0: 50.0, 1: 50.0}),
             _sample(100.05, 5.0, {0: 10.06, 1: 10.06}, {0: 50.06, 1: 50.06})]
    monkeypatch.setattr(threads, "sample_cpus", lambda path=threads.CPU_STAT: fresh.pop(0))
    assert threads.probe_free_cores({0, 1}) == pytest.approx(2.0)
    assert slept and slept[0] == pytest.approx(threads.PROBE_MIN_S - 0.01)
    assert threads.free_cores(_sample(0.0, 0.0, {0: 0.0}), _sample(1.0, 3.0, {0: 1.0}), {0}) == 1.0  # capped
