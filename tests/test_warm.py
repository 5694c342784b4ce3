"""``python -m hwsim.cli.warm``: after it, the first commands load every kernel from numba's cache."""

import os
import subprocess
import sys

import pytest

# the engine's and the cost model's kernels: every compiled function in these modules, with its cache statistics
CHECK = """
import json, sys
import hwsim.sim.threads
hwsim.sim.threads.set_threads(2)
import numba
from hwsim.cli.main import main
from hwsim.sim.engine import Engine, bernoulli
from hwsim.sim.network import from_spec
assert numba.get_num_threads() == 2
for mode in ("float", "fixed"):
    for spec, shape in (("30-20-5", (30,)), ("2x8x8-c4k3p1-p2-c3k3p1-6", (2, 8, 8)), ("16-r12-4", (16,))):
        for threads in (None, 1, 2, 4):  # None: the default, serial kernels on inputs this small
            Engine(from_spec(spec, mode, seed=4), threads=threads).run(bernoulli((4, 2, *shape), 0.3), record=True)
Engine(from_spec("16-a12-4", "float", seed=4)).run(bernoulli((4, 2, 16), 0.3), record=True)
for args in (["run", "--net", "16-8-4", "-T", "2"], ["estimate", "--net", "16-8-4", "-T", "2", "--chip", "all"]):
    sys.stdout = open("/dev/null", "w")
    main(args)
    sys.stdout = sys.__stdout__
import hwsim.hardware.noc_timing as noc
import hwsim.sim.kernels.layer as layer
import hwsim.sim.kernels.synapses as synapses
misses = {}
for module in (layer, synapses, noc):
    for name, value in vars(module).items():
        if isinstance(value, numba.core.registry.CPUDispatcher) and value.signatures:
            misses[f"{module.__name__}.{name}"] = sum(value.stats.cache_misses.values())
print(json.dumps(misses))
"""


@pytest.mark.slow
def test_warm_up_leaves_nothing_to_compile(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    warm = subprocess.run([sys.executable, "-m", "hwsim.cli.warm", "--part", "engine kernels", "--part",
                           "cost model kernels"], capture_output=True, text=True, env=env)
    assert warm.returncode == 0, warm.stderr
    assert "numba kernels cached" in warm.stdout
    check = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stderr
    misses = __import__("json").loads(check.stdout.strip().splitlines()[-1])
    for kernel in ("run_float_layer", "run_fixed_layer", "run_float_rec_layer", "run_fixed_rec_layer"):
        for variant in (kernel, kernel + "_serial"):  # the check did run each kernel (a test of the test)
            assert f"hwsim.sim.kernels.layer.{variant}" in misses, (variant, misses)
    assert not any(misses.values()), {name: n for name, n in misses.items() if n}


def test_warm_names_a_failing_part(monkeypatch):
    """A part that fails is one line naming it; the others still run; the exit status is 1."""
    import hwsim.cli.warm as warm

    ran, lines = [], []
    monkeypatch.setattr(warm, "PARTS", {"good": lambda: ran.append("good"), "bad": lambda: 1 / 0,
                                        "later": lambda: ran.append("later")})
    seconds = warm.warm(("good", "bad", "later"), log=lines.append)
    assert ran == ["good", "later"] and seconds["bad"] is None and seconds["good"] is not None
    assert lines == ["hwsim.cli.warm: bad failed: ZeroDivisionError: division by zero"]
    monkeypatch.setattr(warm, "warm", lambda parts, log: {"bad": None})
    assert warm.main(["--quiet"]) == 1
