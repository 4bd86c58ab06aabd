#!/usr/bin/env python3
"""Write an nbgrader source course from the solved workbooks in ``solutions/``.

    python -m tooling.nbgrader_source DIR               # DIR/source/lessonN/NN_*.ipynb, DIR/nbgrader_config.py
    python -m tooling.nbgrader_source DIR --generate    # then `nbgrader generate_assignment` for each: DIR/release/

``python3 course.py nbgrader DIR`` runs the second line (it installs ``requirements-nbgrader.txt`` first).
The solved workbooks stay the single source: each run rewrites ``DIR/source/`` from them, so never edit
it by hand. What it writes, for workbook ``solutions/NN_<name>.ipynb``, is ``DIR/source/lessonN/NN_<name>.ipynb``:
the solved workbook with its outputs cleared and

* every **exercise cell** (a code cell holding ``### BEGIN SOLUTION`` ... ``### END SOLUTION``) marked as
  nbgrader's *autograded answer*: ``{"solution": true, "grade": false, "locked": false}``;
* every **check cell** (``passed_k = check_<name>(...)``) marked as *autograder tests*, worth
  :data:`POINTS` points: ``{"grade": true, "solution": false, "locked": true, "points": 1}``, with one line
  appended, ``assert passed_k, ...``, so that the cell raises, and scores 0, exactly when the check
  printed ❌ (a check returns a ``CheckResult``, true only when it passed);
* ``grade_id`` = the cell's id (nbformat's, stable across edits of the workbook), ``schema_version`` 3.

Every exercise cell must be followed by its check cell before the next exercise cell, and every check cell
preceded by an exercise cell: an exercise nbgrader could not grade, or points for nothing, is an error
(:class:`~tooling.make_exercises.MarkerError`), as are the marker errors ``make_exercises`` refuses.

``DIR/nbgrader_config.py`` is written only when it is missing (it is yours to edit afterwards): it sets the
learner's stub to one line like the ones in ``exercises/`` and nbgrader's per-cell time limit to 600 s
(its default, 30 s, is too short for some checks on a slow laptop). ``nbgrader generate_assignment`` then
writes ``DIR/release/lessonN/``: the fill-in workbook, which differs from ``exercises/NN_<name>.ipynb`` only in
the stub lines, the nbgrader metadata and the ``assert`` lines of the check cells.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tooling.make_exercises import (
    BEGIN,
    CHECK_CELL,
    END,
    NOTEBOOK_GLOB,
    ROOT,
    MarkerError,
    cell_text,
    dumps,
    stub_source,
)

POINTS = 1
SCHEMA_VERSION = 3
ASSERT_LINE = 'assert {variable}, "the check above printed ❌"   # nbgrader: this exercise scores only when it passes'
_GRADE_ID = re.compile(r"[^A-Za-z0-9_-]")
CONFIG = '''\
# nbgrader's configuration for this course. Written once by `python3 course.py nbgrader` (or
# `python -m tooling.nbgrader_source`) when missing; edit it freely, it is not rewritten.
# source/ is rewritten from the course's solutions/ on every run of that command: never edit source/.
c = get_config()  # noqa: F821 - nbgrader defines it

c.CourseDirectory.course_id = "mechinterp-course"

# The learner's stub, one line as in the course's exercises/ (nbgrader's default adds "# YOUR CODE HERE").
c.ClearSolutions.code_stub = {"python": 'raise NotImplementedError("not implemented yet")'}

# nbgrader allows 30 s per cell by default; some checks take longer on a slow laptop.
c.Execute.timeout = 600
'''


def assignment_name(solution: Path) -> str:
    """``lesson1`` for ``01_residual_stream_induction_heads.ipynb``, ``lesson3b`` for ``03b_feature_circuits.ipynb``."""
    number = Path(solution).name.split("_")[0]
    return f"lesson{number.lstrip('0') or '0'}"


def grade_id(cell_id: str) -> str:
    """nbgrader's ``grade_id`` for a cell: its nbformat id, with anything but ``[A-Za-z0-9_-]`` made ``_``."""
    return _GRADE_ID.sub("_", cell_id)


def _nbgrader(cell_id: str, *, solution: bool, points: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"grade": points is not None, "grade_id": grade_id(cell_id), "locked": not solution,
                            "schema_version": SCHEMA_VERSION, "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def make_source_notebook(solution_path: Path | str, points: int = POINTS) -> dict[str, Any]:
    """The nbgrader source notebook of one solved workbook (see the module's docstring), as a notebook dict.

    Raises:
        MarkerError: bad solution markers, a cell without an id, an exercise cell without its check cell
            (or the other way round), or a cell that is both.
    """
    solution_path = Path(solution_path)
    notebook = json.loads(solution_path.read_text(encoding="utf-8"))
    open_exercise: str | None = None       # the id of the exercise cell still waiting for its check cell
    seen: set[str] = set()
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        text = cell_text(cell)
        is_exercise, check = (BEGIN in text or END in text), CHECK_CELL.search(text)
        if not (is_exercise or check):
            continue
        cell_id = cell.get("id")
        where = f"{solution_path.name}, cell {index}" + (f" (id {cell_id})" if cell_id else "")
        if not cell_id:
            raise MarkerError(f"{where}: an exercise or check cell needs a cell id (nbformat 4.5) for its grade_id")
        if grade_id(cell_id) in seen:
            raise MarkerError(f"{where}: its grade_id {grade_id(cell_id)!r} is another cell's too")
        seen.add(grade_id(cell_id))
        metadata = cell.setdefault("metadata", {})
        if is_exercise and check:
            raise MarkerError(f"{where}: a cell is either an exercise or its check, not both")
        if is_exercise:
            stub_source(text, where, cell_id)                      # the same marker rules as exercises/
            if open_exercise is not None:
                raise MarkerError(f"{where}: exercise cell {open_exercise} has no check cell "
                                  "(`passed_k = check_<name>(...)`) before this next exercise")
            open_exercise = cell_id
            metadata["nbgrader"] = _nbgrader(cell_id, solution=True)
        else:
            if open_exercise is None:
                raise MarkerError(f"{where}: a check cell with no exercise cell before it (its points "
                                  "would be free)")
            open_exercise = None
            variable = check["variable"]
            body = text.rstrip("\n") + "\n" + ASSERT_LINE.format(variable=variable)
            cell["source"] = body.splitlines(keepends=True) if isinstance(cell.get("source"), list) else body
            metadata["nbgrader"] = _nbgrader(cell_id, solution=False, points=points)
    if open_exercise is not None:
        raise MarkerError(f"{solution_path.name}: exercise cell {open_exercise} has no check cell after it")
    return notebook


def strip_nbgrader(notebook: dict[str, Any]) -> dict[str, Any]:
    """A copy of a source notebook without what :func:`make_source_notebook` added (metadata, assert lines)."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.get("cells", []):
        if cell.get("metadata", {}).pop("nbgrader", None) is None:
            continue
        match = CHECK_CELL.search(cell_text(cell))
        if match:
            text = cell_text(cell).removesuffix("\n" + ASSERT_LINE.format(variable=match["variable"]))
            cell["source"] = text.splitlines(keepends=True) if isinstance(cell["source"], list) else text
    return notebook


def write_course(course_dir: Path | str, solutions_dir: Path | str = ROOT / "solutions",
                 points: int = POINTS) -> list[Path]:
    """Write ``course_dir/source/lessonN/NN_*.ipynb`` for every solved workbook, and the config when missing.

    Every notebook is made before any is written, so a marker error writes nothing. Returns the notebooks.
    """
    course_dir, solutions_dir = Path(course_dir), Path(solutions_dir)
    solutions = sorted(solutions_dir.glob(NOTEBOOK_GLOB))
    if not solutions:
        raise MarkerError(f"no solved workbooks ({NOTEBOOK_GLOB}) in {solutions_dir}")
    made = {solution: make_source_notebook(solution, points) for solution in solutions}
    written = []
    for solution, notebook in made.items():
        target = course_dir / "source" / assignment_name(solution) / solution.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dumps(notebook), encoding="utf-8", newline="\n")
        written.append(target)
    config = course_dir / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG, encoding="utf-8")
    return written


def nbgrader_env(log: Path | None = None) -> dict[str, str]:
    """This environment with this Python's scripts first on ``PATH`` (nbgrader runs ``alembic`` from there).

    With ``log``, under the course's network guard (:func:`tooling.network_guard.kernel_env`): nbgrader and
    the kernels it starts to autograde may connect to loopback only, and every other attempt is logged.
    """
    from tooling import network_guard

    env = network_guard.kernel_env(log) if log is not None else dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_nbgrader(course_dir: Path | str, args: list[str]) -> int:
    """``nbgrader <args>`` in ``course_dir``, offline; its exit code, or 1 when it tried the network."""
    import tempfile

    from tooling import network_guard

    command = [sys.executable, "-m", "nbgrader", *args]
    print(f"+ (in {course_dir}) nbgrader", " ".join(args), flush=True)
    with tempfile.TemporaryDirectory(prefix="course-nbgrader-") as scratch:
        log = Path(scratch) / "blocked.jsonl"
        code = subprocess.call(command, cwd=course_dir, env=nbgrader_env(log))
        blocked = network_guard.read_log(log)
    for attempt in blocked:
        print(f"❌ the network guard blocked {attempt['call']}({attempt['target']})", file=sys.stderr)
    return code or (1 if blocked else 0)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        usage="%(prog)s [--source-only] [--points N] [--solutions DIR] COURSE_DIR [NBGRADER_COMMAND ...]")
    parser.add_argument("course_dir", type=Path, help="the nbgrader course directory (created when missing)")
    parser.add_argument("nbgrader_command", nargs=argparse.REMAINDER,
                        help="instead: run this nbgrader command in COURSE_DIR (e.g. `autograde lesson1`)")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--points", type=int, default=POINTS, help=f"points per exercise (default {POINTS})")
    parser.add_argument("--source-only", action="store_true",
                        help="write source/ only; do not run `nbgrader generate_assignment`")
    args = parser.parse_args(argv)
    if args.nbgrader_command:
        if not args.course_dir.is_dir():
            print(f"❌ {args.course_dir} is not a folder: first run this command with the folder alone")
            return 2
        return run_nbgrader(args.course_dir, args.nbgrader_command)
    config_existed = (args.course_dir / "nbgrader_config.py").exists()
    try:
        written = write_course(args.course_dir, args.solutions, args.points)
    except MarkerError as error:
        print(f"❌ {error}", file=sys.stderr)
        return 2
    for path in written:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        tests = sum(c.get("metadata", {}).get("nbgrader", {}).get("grade", False) for c in notebook["cells"])
        print(f"wrote {path} ({tests} exercises, {tests * args.points} points)")
    print(("kept " if config_existed else "wrote ") + str(args.course_dir / "nbgrader_config.py"))
    if args.source_only:
        return 0
    for path in written:
        code = run_nbgrader(args.course_dir, ["generate_assignment", path.parent.name, "--force"])
        if code != 0:
            return code
    print(f"✅ release/ written: hand it out with `nbgrader release_assignment lessonN` (or copy it), collect "
          f"the submissions into {args.course_dir / 'submitted'}/<student>/lessonN/, then `nbgrader autograde "
          "lessonN`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
