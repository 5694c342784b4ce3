"""The simulator core imports no torch; the start-up commands load only what they need.

``hwsim/`` minus the training glue must run without torch (DESIGN.md, section 1). Two checks:

* statically, no module outside ``TRAINING_GLUE`` names torch or a torch-side ``methods`` module anywhere
  (at the top or inside a function): ``hwsim.methods.errors`` is the one ``hwsim.methods`` module the core may
  use;
* at run time, importing every ``hwsim`` module, and running ``hwsim chips``, ``hwsim run`` and ``hwsim
  estimate``, leaves ``torch`` out of ``sys.modules`` (each in a fresh interpreter).

Start-up *time* is measured by ``benchmarks/bench_startup.py``, not here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hwsim"
# modules that glue the simulator to torch training: they may import torch or methods inside functions
TRAINING_GLUE = {"hwsim.study.pipeline", "hwsim.study.study_figures", "hwsim.cli.commands", "hwsim.formats.bundle",
                 "hwsim.study.sweep.tasks", "hwsim.sim.torch_engine"}
TORCH_FREE_METHODS = {"hwsim.methods", "hwsim.methods.errors"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(_module_name(p) for p in PACKAGE.rglob("*.py"))


def _torch_imports(path: Path) -> list[str]:
    """Every import of torch (or of a torch-side methods module) in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "hwsim.methods" else [f"hwsim.methods.{a.name}" for a in node.names]
            if node.module == "hwsim":  # from hwsim import methods / chips
                names = [f"hwsim.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in ("torch", "torchvision", "snntorch", "spikingjelly", "norse") or (
                    name.startswith("hwsim.methods.") and name not in TORCH_FREE_METHODS):
                found.append(f"line {node.lineno}: {name}")
    return found


def test_module_list_is_complete():
    assert "hwsim.sim.engine" in MODULES and "hwsim.formats.nir_io" in MODULES and "hwsim.sim.kernels.lif" in MODULES
    assert TRAINING_GLUE <= set(MODULES)


@pytest.mark.parametrize("module", sorted(set(MODULES) - TRAINING_GLUE))
def test_core_module_names_no_torch(module):
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.is_file():
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    assert _torch_imports(path) == [], f"{module} imports torch-side code; move it to methods/ or the training glue"


def test_training_glue_list_is_not_stale():
    """Every module allowed to import torch really does (else the exemption should go)."""
    for module in TRAINING_GLUE:
        assert _torch_imports(PACKAGE.parent / (module.replace(".", "/") + ".py")), module


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_importing_every_hwsim_module_loads_no_torch():
    code = ("import importlib, json, sys\n"
            f"for m in {MODULES!r}:\n"
            "    importlib.import_module(m)\n"
            "print(json.dumps('torch' in sys.modules))")
    proc = _fresh(code)
    assert proc.returncode == 0, proc.stderr
    if json.loads(proc.stdout.strip().splitlines()[-1]):
        culprits = [m for m in MODULES if json.loads(_fresh(
            f"import importlib, json, sys; importlib.import_module({m!r}); print(json.dumps('torch' in sys.modules))"
        ).stdout.strip().splitlines()[-1])]
        pytest.fail(f"importing these modules loads torch: {culprits}")


@pytest.mark.parametrize("argv", [
    ["chips", "--json"],
    ["chips", "show", "loihi", "--json"],
    ["run", "--net", "16-8-4", "-T", "3", "--json"],
    ["estimate", "--net", "16-8-4", "-T", "3", "--chip", "loihi", "--json"],
    ["chips", "show", "no_such_chip"],  # the error path too: catching errors must not load torch
    ["run", "--net", "16-abc"],
])
def test_start_up_commands_load_no_torch(argv):
    code = ("import contextlib, io, json, sys\n"
            "from hwsim.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = main({argv!r})\n"
            "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules, 'heavy': sorted(\n"
            "    m for m in ('torch', 'matplotlib', 'lava', 'nir', 'h5py', 'tqdm') if m in sys.modules)}))")
    proc = _fresh(code)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rc"] in (0, 2)
    assert result["heavy"] == [], f"hwsim {' '.join(argv)} loaded {result['heavy']}"


def test_every_importable_name_is_under_hwsim(tmp_path):
    """The installed package puts chips/ and methods/ under hwsim (hwsim.chips, hwsim.methods): a wheel built
    from the tree holds nothing but hwsim/ and its metadata, and outside the repository no top-level ``chips``
    or ``methods`` can be imported."""
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("hwsim-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"hwsim", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}"
                                                ".dist-info"}
    assert "hwsim/chips/loihi.yaml" in names and "hwsim/methods/sltt.py" in names
    code = ("import importlib.util as u; import hwsim.chips, hwsim.methods; "
            "print(u.find_spec('chips') is None and u.find_spec('methods') is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "True", out.stderr
