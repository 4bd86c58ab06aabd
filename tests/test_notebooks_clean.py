"""Committed notebooks carry no outputs and no execution counts: a rendered copy is a build product."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for d in ("notebooks", "solutions", "exercises") for p in (ROOT / d).glob("**/*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)


def dirty_cells(notebook: dict) -> list[str]:
    """Describe every code cell of ``notebook`` that has outputs or an execution count."""
    problems = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {index} has outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {index} has execution_count {cell['execution_count']}")
    return problems


def test_dirty_cells_finds_outputs_and_counts() -> None:
    notebook = {"cells": [
        {"cell_type": "markdown", "source": "hi"},
        {"cell_type": "code", "source": "1", "outputs": [], "execution_count": None},
        {"cell_type": "code", "source": "2", "outputs": [{"output_type": "stream"}], "execution_count": 4},
    ]}
    assert dirty_cells(notebook) == ["cell 2 has outputs", "cell 2 has execution_count 4"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_has_no_outputs(path: Path) -> None:
    problems = dirty_cells(json.loads(path.read_text(encoding="utf-8")))
    assert not problems, f"{path.relative_to(ROOT)}: {problems}; clear outputs before committing"
