"""Real nbgrader on the course that tooling/nbgrader_source.py writes: generate, autograde, read the gradebook.

nbgrader 0.9.6 itself (``requirements-nbgrader.txt``, which ``python3 course.py test`` installs; without it
these tests skip, saying so): a course from the graded fixture workbook and lesson 1, ``nbgrader
generate_assignment``, then ``nbgrader autograde`` offline (under the network guard) on the fixture solved
(full marks), as released (zero) and half done (the points of the exercises done right), and on lesson 1
solved (full marks); the scores are read from nbgrader's gradebook. ``tests/conftest.py`` marks the whole
module slow (about 1 min 40 s on 2 cores). The metadata itself is tested in ``tests/test_nbgrader_source.py``.
"""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from tooling import make_exercises, nbgrader_source
from tooling.make_exercises import cell_text

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "graded" / "00_graded.ipynb"
LESSON1 = ROOT / "solutions" / "01_residual_stream_induction_heads.ipynb"
EXERCISES = ["ex1", "ex2", "ex3a", "ex3b"]
CHECKS = [f"{exercise}-check" for exercise in EXERCISES]
NBGRADER_STUB = 'raise NotImplementedError("not implemented yet")'     # nbgrader_config.py's code_stub


def _cells(notebook: dict) -> dict[str, dict]:
    return {cell["id"]: cell for cell in notebook["cells"]}


# =====================================================================================
# The real nbgrader, end to end
# =====================================================================================

def _answered(release: Path, source: Path, answers: dict[str, str | None]) -> dict:
    """The released notebook with exercise cells filled in: ``None`` = the source's solution, a string = that code."""
    notebook = json.loads(release.read_text(encoding="utf-8"))
    solved = _cells(json.loads(source.read_text(encoding="utf-8")))
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta["grade_id"] in answers:
            code = answers[meta["grade_id"]]
            cell["source"] = cell_text(solved[cell["id"]]) if code is None else code
    return notebook


def _submit(course: Path, student: str, assignment: str, notebook: dict, name: str) -> None:
    target = course / "submitted" / student / assignment / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(make_exercises.dumps(notebook), encoding="utf-8")


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    """A course from the fixture and lesson 1, generated, submitted by three students, autograded, offline."""
    pytest.importorskip("nbgrader", reason="nbgrader is not installed: `python3 course.py test` installs "
                                           "requirements-nbgrader.txt (or pip install -r it)")
    root = tmp_path_factory.mktemp("nbgrader")
    solutions, course = root / "solutions", root / "course"
    solutions.mkdir()
    for path in (FIXTURE, LESSON1):
        shutil.copy(path, solutions / path.name)
    assert nbgrader_source.main(["--solutions", str(solutions), str(course)]) == 0   # source/, then release/
    release, source = course / "release" / "lesson0" / FIXTURE.name, course / "source" / "lesson0" / FIXTURE.name
    everything = dict.fromkeys(EXERCISES)
    _submit(course, "alice", "lesson0", _answered(release, source, everything), FIXTURE.name)
    _submit(course, "bob", "lesson0", json.loads(release.read_text(encoding="utf-8")), FIXTURE.name)
    half = {"ex1": None, "ex2": "def double(x):\n    return 3 * x", "ex3b": None}   # ex3a left as released
    _submit(course, "carol", "lesson0", _answered(release, source, half), FIXTURE.name)
    lesson1_release, lesson1_source = (course / d / "lesson1" / LESSON1.name for d in ("release", "source"))
    lesson1_answers = {c.metadata["nbgrader"]["grade_id"]: None
                       for c in nbformat.read(lesson1_source, as_version=4).cells
                       if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    _submit(course, "alice", "lesson1", _answered(lesson1_release, lesson1_source, lesson1_answers), LESSON1.name)
    assert nbgrader_source.run_nbgrader(course, ["autograde", "lesson0"]) == 0      # 0: nothing hit the network
    assert nbgrader_source.run_nbgrader(course, ["autograde", "lesson1", "--student", "alice"]) == 0
    return course


@pytest.mark.slow
def test_nbgrader_grades_solved_released_and_half_done_workbooks(graded: Path) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded / 'gradebook.db'}") as gradebook:
        scores = {(s.student_id, s.assignment.name): (s.score, s.max_score)
                  for assignment in ("lesson0", "lesson1") for s in gradebook.assignment_submissions(assignment)}
        per_exercise = {check: gradebook.find_grade(check, "00_graded", "lesson0", "carol").score for check in CHECKS}
    assert scores[("alice", "lesson0")] == (4, 4), "the solved workbook: full marks"
    assert scores[("bob", "lesson0")] == (0, 4), "the workbook as released: zero"
    assert scores[("carol", "lesson0")] == (2, 4), "half done: one point per exercise done right"
    assert per_exercise == {"ex1-check": 1, "ex2-check": 0, "ex3a-check": 0, "ex3b-check": 1}
    assert scores[("alice", "lesson1")] == (7, 7), "lesson 1 solved: full marks"


@pytest.mark.slow
def test_the_release_is_the_fill_in_workbook_but_for_stubs_and_asserts(graded: Path) -> None:
    """What nbgrader hands out is exercises/'s workbook, with its stub line and the check cells' assert."""
    for name, assignment in ((FIXTURE, "lesson0"), (LESSON1, "lesson1")):
        release = json.loads((graded / "release" / assignment / name.name).read_text(encoding="utf-8"))
        plain = nbgrader_source.strip_nbgrader(release)
        for cell in plain["cells"]:
            for key in ("deletable", "editable"):        # nbgrader locks the graded cells
                cell["metadata"].pop(key, None)
        exercise = copy.deepcopy(make_exercises.make_exercise_notebook(name))
        for cell in exercise["cells"]:
            text = cell_text(cell)
            for line in text.splitlines():
                if "not implemented yet" in line:
                    text = text.replace(line, line.split("raise")[0] + NBGRADER_STUB)
            cell["source"] = text
        for cell in plain["cells"]:
            cell["source"] = cell_text(cell)
        assert plain["cells"] == exercise["cells"]


@pytest.mark.slow
def test_the_graded_notebooks_show_the_checks_lines(graded: Path) -> None:
    """nbgrader ran the course's checks: carol's graded notebook shows their ✅ and ❌ lines, and 2 failed asserts."""
    autograded = nbformat.read(graded / "autograded" / "carol" / "lesson0" / FIXTURE.name, as_version=4)
    text = json.dumps([c.get("outputs", []) for c in autograded.cells], ensure_ascii=False)
    assert "✅ add_one: passed" in text and "❌ double:" in text and "❌ squared_norm: not implemented yet" in text
    errors = [o for c in autograded.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert [e["ename"] for e in errors] == ["AssertionError", "AssertionError"]

