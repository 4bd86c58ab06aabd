"""Tests of tooling/make_exercises.py, and that the committed exercises/ is up to date."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tooling import make_exercises

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "solutions" / "00_fixture.ipynb"



def _cells_by_id(notebook: dict) -> dict[str, dict]:
    return {cell["id"]: cell for cell in notebook["cells"]}


def test_dumps_matches_nbformat_byte_for_byte() -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    assert make_exercises.dumps(json.loads(text)) == text
    assert nbformat.writes(nbformat.read(FIXTURE, as_version=4)) + "\n" == text


def test_stubs_replace_solution_blocks_keeping_indentation() -> None:
    cells = _cells_by_id(make_exercises.make_exercise_notebook(FIXTURE))
    add_one = "".join(cells["add-one"]["source"])
    assert add_one == (
        "def add_one(x: torch.Tensor) -> torch.Tensor:\n"
        '    """Return ``x + 1``, same shape as ``x``."""\n'
        '    raise NotImplementedError("add_one: not implemented yet")'
    )
    counter = "".join(cells["counter"]["source"])
    assert '        raise NotImplementedError("count: not implemented yet")\n' in counter
    # a block outside any function is named after the cell's id
    assert '\nraise NotImplementedError("counter: not implemented yet")\nprint(answer)' in counter
    assert "SOLUTION" not in add_one + counter and "len(xs)" not in counter


def test_everything_but_the_stubbed_cells_is_byte_identical() -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    solution, exercise = json.loads(text), make_exercises.make_exercise_notebook(FIXTURE)
    changed = [i for i, (a, b) in enumerate(zip(solution["cells"], exercise["cells"])) if a != b]
    assert [solution["cells"][i]["id"] for i in changed] == ["add-one", "counter"]
    for i in changed:  # put the solved cells back: the file must then be the solution, byte for byte
        exercise["cells"][i] = solution["cells"][i]
    assert make_exercises.dumps(exercise) == text


def test_outputs_of_a_run_solution_are_cleared(tmp_path: Path) -> None:
    solution = json.loads(FIXTURE.read_text(encoding="utf-8"))
    for cell in solution["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["hi\n"]}]
            cell["execution_count"] = 3
    path = tmp_path / "00_fixture.ipynb"
    path.write_text(make_exercises.dumps(solution), encoding="utf-8")
    exercise = make_exercises.make_exercise_notebook(path)
    code_cells = [cell for cell in exercise["cells"] if cell["cell_type"] == "code"]
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code_cells)


def test_notebook_without_markers_is_written_unchanged(tmp_path: Path) -> None:
    notebook = new_notebook(cells=[new_markdown_cell("# Ünïcode title"), new_code_cell("x = 1\nprint(x)")])
    path = tmp_path / "01_plain.ipynb"
    nbformat.write(notebook, path)
    assert make_exercises.dumps(make_exercises.make_exercise_notebook(path)) == path.read_text(encoding="utf-8")


def test_main_writes_then_check_passes_then_detects_stale(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    solutions, exercises = FIXTURE.parent, tmp_path / "exercises"
    argv = ["--solutions", str(solutions), "--exercises", str(exercises)]
    assert make_exercises.main(argv + ["--check"]) == 1  # missing exercise is stale
    assert not exercises.exists(), "--check must not write anything"
    assert make_exercises.main(argv) == 0
    written = (exercises / FIXTURE.name).read_text(encoding="utf-8")
    assert written == make_exercises.dumps(make_exercises.make_exercise_notebook(FIXTURE))
    assert make_exercises.main(argv + ["--check"]) == 0
    (exercises / FIXTURE.name).write_text(written.replace("not implemented yet", "TODO"), encoding="utf-8")
    (exercises / "99_orphan.ipynb").write_text(written, encoding="utf-8")
    capsys.readouterr()
    assert make_exercises.main(argv + ["--check"]) == 1
    out = capsys.readouterr().out
    assert FIXTURE.name in out and "99_orphan.ipynb" in out


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "has no '### END SOLUTION'"),
        ("def f():\n    return 1\n    ### END SOLUTION\n", "without a '### BEGIN SOLUTION'"),
        ("### BEGIN SOLUTION\nx = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n", "nested"),
        ("def f():\n    ### BEGIN SOLUTION\n\n    ### END SOLUTION\n", "nothing to fill in"),
        ("def f():\n    ### BEGIN SOLUTION\n    # TODO\n    ### END SOLUTION\n", "nothing to fill in"),
        ('def f():\n    ### BEGIN SOLUTION\n    raise NotImplementedError("f: not implemented yet")\n'
         "    ### END SOLUTION\n", "nothing to fill in"),
    ],
    ids=["begin-without-end", "end-without-begin", "nested", "empty", "comment-only", "already-a-stub"],
)
def test_refuses_bad_markers_naming_notebook_and_cell(tmp_path: Path, source: str, message: str) -> None:
    cell = new_code_cell(source)
    cell.id = "bad-cell"
    notebook = new_notebook(cells=[new_markdown_cell("intro"), cell])
    path = tmp_path / "07_broken.ipynb"
    nbformat.write(notebook, path)
    with pytest.raises(make_exercises.MarkerError) as caught:
        make_exercises.make_exercise_notebook(path)
    assert "07_broken.ipynb, cell 1 (id bad-cell)" in str(caught.value)
    assert message in str(caught.value)
    assert make_exercises.main(["--solutions", str(tmp_path), "--exercises", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_exercises_are_generated_from_solutions() -> None:
    """exercises/ holds exactly what `python -m tooling.make_exercises` makes from solutions/."""
    solutions, exercises = ROOT / "solutions", ROOT / "exercises"
    solved = sorted(p.name for p in solutions.glob(make_exercises.NOTEBOOK_GLOB))
    assert sorted(p.name for p in solutions.glob("*.ipynb")) == solved, "solutions/ notebooks must be named NN_*.ipynb"
    assert sorted(p.name for p in exercises.glob("*.ipynb")) == solved, "exercises/ and solutions/ hold different files"
    stale = make_exercises.stale_files(solutions, exercises)
    assert not stale, f"stale exercises {[p.name for p in stale]}: run `python -m tooling.make_exercises`"
