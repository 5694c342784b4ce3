"""The package's layering, read from the import graph: no module imports from a layer above its own.

Layers, bottom to top (docs/development.md draws them): the base (``hwsim``, errors, safe I/O, records) → chip
profiles (``hwsim.chips``) → simulation (``hwsim.sim``) → hardware (``hwsim.hardware``) → on-chip learning
(``hwsim.learning``) → torch reference training (``hwsim.methods``) → formats (``hwsim.formats``) → studies and
sweeps (``hwsim.study``) → the command line (``hwsim.cli``). Imports inside functions count as imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"hwsim": ROOT / "hwsim", "hwsim.chips": ROOT / "chips", "hwsim.methods": ROOT / "methods"}
LAYERS = ["hwsim", "hwsim.chips", "hwsim.sim", "hwsim.hardware", "hwsim.learning", "hwsim.methods",
          "hwsim.formats", "hwsim.study", "hwsim.cli"]
TOP = {"hwsim.__main__": "hwsim.cli"}  # ``python -m hwsim`` is the command line


def _modules() -> dict[str, Path]:
    found = {}
    for prefix, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((prefix, *parts)) if parts else prefix] = path
    return found


MODULES = _modules()


def layer_of(module: str) -> int:
    """The index in LAYERS of the deepest layer prefix of ``module``."""
    module = TOP.get(module, module)
    best = 0
    for index, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            best = index
    return best


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported hwsim module) for every import in the file, at any depth."""
    found = []
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "hwsim"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base
                                                                                                   else []))
            if base.split(".")[0] != "hwsim":
                continue
            for alias in node.names:  # ``from hwsim.study import plots`` imports the module hwsim.study.plots
                name = f"{base}.{alias.name}"
                found.append((node.lineno, name if name in MODULES else base))
    return found


def test_layers_cover_the_package():
    assert {"hwsim.sim.engine", "hwsim.hardware.cost", "hwsim.learning.registry", "hwsim.formats.nir_io",
            "hwsim.study.pipeline", "hwsim.cli.main", "hwsim.methods.train", "hwsim.chips.schema"} <= set(MODULES)
    assert layer_of("hwsim.errors") == 0 and layer_of("hwsim.cli.main") == len(LAYERS) - 1


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_a_layer(module):
    mine = layer_of(module)
    upward = [f"line {line}: {name} ({LAYERS[layer_of(name)]})" for line, name in imports_of(MODULES[module], module)
              if layer_of(name) > mine]
    assert upward == [], f"{module} ({LAYERS[mine]}) imports from a higher layer: {'; '.join(upward)}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The test above can fail: a simulation module importing the cost model is caught."""
    path = tmp_path / "engine.py"
    path.write_text("def f():\n    from hwsim.hardware.cost import estimate\n    return estimate\n")
    assert [layer_of(n) for _, n in imports_of(path, "hwsim.sim.engine")] == [LAYERS.index("hwsim.hardware")]


@pytest.mark.parametrize("package", sorted(m for m, p in MODULES.items() if p.name == "__init__.py"))
def test_every_package_says_what_lives_there(package):
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text()))
    assert doc and len(doc.split()) >= 12, f"{package} needs a one-paragraph docstring"


def _functions():
    for module, path in sorted(MODULES.items()):
        if not module.startswith("hwsim.") or module.startswith(("hwsim.methods", "hwsim.chips")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield module, node


def _size(node) -> tuple[int, int]:
    """(parameters, self and cls not counted; lines of body, docstring included)."""
    a = node.args
    params = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
    if a.args and a.args[0].arg in ("self", "cls"):
        params -= 1
    return params, node.end_lineno - node.body[0].lineno + 1


def test_no_function_takes_more_than_12_parameters_or_runs_over_120_lines():
    """Records, not argument lists (numba kernels included): a kernel takes a graph record and a state record."""
    found = [f"{module}.{node.name}: {params} parameters, {lines} lines" for module, node in _functions()
             for params, lines in [_size(node)] if params > 12 or lines > 120]
    assert found == []


def test_the_size_check_sees_a_long_signature():
    node = ast.parse("def f(" + ", ".join(f"a{i}" for i in range(13)) + "):\n    return 0\n").body[0]
    assert _size(node) == (13, 1)
