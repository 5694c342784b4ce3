"""What a user reads: a short README, docs and chip files that speak of the project only (no development issues,
machines or notes folder), CLI output likewise, and links that resolve."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
USER_TEXT = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "chips").glob("*.yaml"))]
FORBIDDEN = re.compile(r"\bissues? ?#?\d|\bVM\b|development machine|shared/|PAPERS\.md|DESIGN\.md")


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    head = "\n".join(lines[:15])
    assert "make demo" in head and "make test" in head


@pytest.mark.parametrize("path", USER_TEXT, ids=[p.name for p in USER_TEXT])
def test_user_text_speaks_of_the_project_only(path):
    found = [line for line in path.read_text().splitlines() if FORBIDDEN.search(line)]
    assert not found, f"{path.name}: {found[:3]}"


def test_readme_and_docs_links_resolve():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)\)", path.read_text()):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_cli_output_speaks_of_the_project_only():
    for argv in (["chips"], ["chips", "show", "loihi"], ["chips", "show", "truenorth"], ["--help"]):
        proc = subprocess.run([sys.executable, "-m", "hwsim", *argv], capture_output=True, text=True,
                              cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        assert not FORBIDDEN.search(proc.stdout + proc.stderr), argv
