"""The notebooks users start from run end to end (a failing cell fails the suite)."""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_four_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_energy_per_chip.ipynb", "02_on_chip_learning_feasibility.ipynb",
                                           "03_export_to_lava.ipynb", "04_design_space_sweep.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    shutil.copy(path, tmp_path / path.name)  # run in a scratch folder: figures and exports land there
    notebook = nbformat.read(tmp_path / path.name, as_version=4)
    client = NotebookClient(notebook, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert len(outputs) >= 3
