"""The nbgrader source course that tooling/nbgrader_source.py writes from the solved workbooks, without nbgrader.

The metadata it writes, on the graded fixture workbook and on every solved workbook of the course; that
taking it away gives back the solved workbook; what it refuses; the course folder it writes; and the
guide's list of exercises. ``tests/test_nbgrader.py`` runs the real nbgrader on what it writes (slow).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tooling import make_exercises, nbgrader_source
from tooling.make_exercises import cell_text

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "graded" / "00_graded.ipynb"
LESSON1 = ROOT / "solutions" / "01_residual_stream_induction_heads.ipynb"
SOLUTIONS = sorted((ROOT / "solutions").glob(make_exercises.NOTEBOOK_GLOB))
EXERCISES = ["ex1", "ex2", "ex3a", "ex3b"]
CHECKS = [f"{exercise}-check" for exercise in EXERCISES]


def _cells(notebook: dict) -> dict[str, dict]:
    return {cell["id"]: cell for cell in notebook["cells"]}


def _cleared(path: Path) -> dict:
    """The notebook at ``path`` with its code cells' outputs and execution counts cleared."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return notebook


def test_exercise_cells_are_autograded_answers_and_check_cells_tests() -> None:
    cells = _cells(nbgrader_source.make_source_notebook(FIXTURE))
    for cell_id in EXERCISES:
        assert cells[cell_id]["metadata"]["nbgrader"] == {
            "grade": False, "grade_id": cell_id, "locked": False, "schema_version": 3, "solution": True, "task": False}
    for cell_id in CHECKS:
        assert cells[cell_id]["metadata"]["nbgrader"] == {
            "grade": True, "grade_id": cell_id, "locked": True, "points": 1, "schema_version": 3, "solution": False,
            "task": False}
    assert cell_text(cells["ex1-check"]) == (
        "passed_1 = check_add_one(add_one)\n"
        'assert passed_1, "the check above printed ❌"   # nbgrader: this exercise scores only when it passes')
    assert cell_text(cells["ex3b-check"]).splitlines()[-1].startswith("assert passed_3b, ")
    others = [c for c in cells.values() if c["id"] not in EXERCISES + CHECKS]
    assert others and all("nbgrader" not in c["metadata"] for c in others), "only exercises and checks are marked"
    assert "### BEGIN SOLUTION" in cell_text(cells["ex1"]), "the source keeps the solution: nbgrader clears it"
    assert _cells(nbgrader_source.make_source_notebook(FIXTURE, points=3))["ex2-check"]["metadata"]["nbgrader"][
        "points"] == 3


@pytest.mark.parametrize("solution", [FIXTURE, *SOLUTIONS], ids=lambda p: p.name)
def test_source_notebook_is_the_solved_workbook_plus_nbgrader(solution: Path) -> None:
    """Take away the metadata and the assert lines, and the solved workbook comes back (outputs cleared)."""
    source = nbgrader_source.make_source_notebook(solution)
    assert nbgrader_source.strip_nbgrader(source) == _cleared(solution)
    marked = [c["metadata"]["nbgrader"] for c in source["cells"] if "nbgrader" in c.get("metadata", {})]
    answers, tests = [m for m in marked if m["solution"]], [m for m in marked if m["grade"]]
    checks = make_exercises.check_cells(source)
    assert len(answers) == len(tests) == len(checks) > 0
    assert [m["grade_id"] for m in tests] == [c.cell_id for c in checks]
    assert len({m["grade_id"] for m in marked}) == len(marked)
    stubs = make_exercises.dumps(make_exercises.make_exercise_notebook(solution)).count("not implemented yet")
    assert stubs >= len(answers), "every exercise cell holds at least one solution block"


@pytest.mark.parametrize("solution", [FIXTURE, *SOLUTIONS], ids=lambda p: p.name)
def test_nbgrader_accepts_the_metadata(solution: Path) -> None:
    validator = pytest.importorskip("nbgrader.nbgraderformat", reason="nbgrader is not installed: "
                                    "pip install -r requirements-nbgrader.txt").MetadataValidator()
    validator.validate_nb(nbformat.from_dict(nbgrader_source.make_source_notebook(solution)))


def _notebook(tmp_path: Path, *sources: str) -> Path:
    cells = [new_markdown_cell("# broken")]
    for i, source in enumerate(sources):
        cell = new_code_cell(source)
        cell.id = f"cell-{i}"
        cells.append(cell)
    path = tmp_path / "07_broken.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


EXERCISE = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"


@pytest.mark.parametrize(("sources", "message"), [
    ((EXERCISE,), "exercise cell cell-0 has no check cell after it"),
    ((EXERCISE, EXERCISE, "passed_1 = check_f(f)"), "exercise cell cell-0 has no check cell"),
    (("passed_1 = check_f(f)",), "a check cell with no exercise cell before it"),
    ((EXERCISE + "\npassed_1 = check_f(f)",), "either an exercise or its check"),
    (("def f():\n    ### BEGIN SOLUTION\n    ### END SOLUTION", "passed_1 = check_f(f)"), "nothing to fill in"),
], ids=["no-check", "two-exercises-one-check", "check-without-exercise", "both", "empty-block"])
def test_refuses_what_nbgrader_could_not_grade(tmp_path: Path, sources: tuple[str, ...], message: str) -> None:
    path = _notebook(tmp_path, *sources)
    with pytest.raises(make_exercises.MarkerError, match=message):
        nbgrader_source.make_source_notebook(path)
    assert nbgrader_source.main(["--solutions", str(tmp_path), "--source-only", str(tmp_path / "course")]) == 2
    assert not (tmp_path / "course").exists(), "a refused workbook writes nothing"


def test_write_course_layout_and_the_config_is_written_once(tmp_path: Path) -> None:
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    shutil.copy(FIXTURE, solutions / FIXTURE.name)
    course = tmp_path / "course"
    assert nbgrader_source.main(["--solutions", str(solutions), "--source-only", str(course)]) == 0
    written = course / "source" / "lesson0" / FIXTURE.name
    assert json.loads(written.read_text(encoding="utf-8")) == nbgrader_source.make_source_notebook(FIXTURE)
    config = course / "nbgrader_config.py"
    assert "c.Execute.timeout = 600" in config.read_text() and "ClearSolutions.code_stub" in config.read_text()
    config.write_text("c = get_config()\n# mine\n")
    written.write_text("{}")
    assert nbgrader_source.main(["--solutions", str(solutions), "--source-only", str(course)]) == 0
    assert config.read_text() == "c = get_config()\n# mine\n", "an instructor's config is kept"
    assert json.loads(written.read_text(encoding="utf-8")) == nbgrader_source.make_source_notebook(FIXTURE)
    assert nbgrader_source.assignment_name(LESSON1) == "lesson1"


def test_the_guide_lists_every_exercise_with_its_assignment(tmp_path: Path) -> None:
    from tooling import workshop

    (tmp_path / "solutions").mkdir()
    shutil.copy(FIXTURE, tmp_path / "solutions" / FIXTURE.name)
    rows = workshop.render_exercises(tmp_path).splitlines()
    assert rows[2].endswith("| `lesson0` | 4: 1 `add_one`, 2 `double`, 3a `squared_norm`, 3b `count_positive` |")


def test_the_nbgrader_extra_is_pinned_beside_the_pins() -> None:
    """requirements-nbgrader.txt pins with ==, and only packages that requirements.txt does not pin."""
    def pins(name: str) -> dict[str, str]:
        lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text(encoding="utf-8").splitlines()]
        assert all("==" in line for line in lines if line), f"{name}: every line pinned with =="
        return {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in lines if line}

    extra, course = pins("requirements-nbgrader.txt"), pins("requirements.txt")
    assert extra["nbgrader"] == "0.9.6"
    assert not set(extra) & set(course), "the extra must not re-pin what requirements.txt pins"
