#!/usr/bin/env python3
"""Generate the fill-in workbooks in ``exercises/`` from the solved ones in ``solutions/``.

    python -m tooling.make_exercises            # (re)write exercises/NN_*.ipynb
    python -m tooling.make_exercises --check    # exit 1, listing stale files, without writing

In every code cell, each block from a line containing ``### BEGIN SOLUTION`` to the line
containing ``### END SOLUTION`` (both included) becomes one stub line, indented like the BEGIN
line::

    raise NotImplementedError("<exercise>: not implemented yet")

where ``<exercise>`` is the innermost function enclosing the block, else the cell's id. The
markers are nbgrader's. Outputs and execution counts are cleared; everything else is written byte
for byte as nbformat writes it.

Each exercise cell is followed by its *check cell*, ``passed_<k> = check_<name>(...)`` (:data:`CHECK_CELL`,
:func:`check_cells`), which prints one line starting with ✅ or ❌. ``tooling/nbgrader_source.py`` turns the
same solved workbooks into an nbgrader source course (``python3 course.py nbgrader DIR``), and
``tooling/progress.py`` reports a learner's checks (``python3 course.py progress``).
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("{name}: not implemented yet")'
NOTEBOOK_GLOB = "[0-9][0-9]*_*.ipynb"
_DEF_LINE = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)")
CHECK_CELL = re.compile(r"^(?P<variable>passed_(?P<number>\w+))\s*=\s*check_(?P<exercise>\w+)\(", re.M)
"""A workbook's check cell: ``passed_1 = check_logit_diff(logit_diff)`` (number ``1``, exercise ``logit_diff``)."""


@dataclass(frozen=True)
class CheckCell:
    """One check cell of a workbook: where it is and what it checks."""

    index: int              # in the notebook's cells, markdown cells counted
    cell_id: str | None
    variable: str           # ``passed_1a``: the CheckResult it binds
    number: str             # ``1a``: the exercise's number in the workbook
    exercise: str           # ``toy_model_forward``: from ``check_toy_model_forward(...)``


def cell_text(cell: dict[str, Any]) -> str:
    """A cell's source as one string, whether stored as a string or a list of lines."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def check_cells(notebook: dict[str, Any]) -> list[CheckCell]:
    """Every check cell of a workbook (a code cell with a line ``passed_<k> = check_<name>(``), in order."""
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        match = CHECK_CELL.search(cell_text(cell)) if cell.get("cell_type") == "code" else None
        if match:
            found.append(CheckCell(index, cell.get("id"), match["variable"], match["number"], match["exercise"]))
    return found


class MarkerError(ValueError):
    """A solution cell whose ``### BEGIN/END SOLUTION`` markers cannot be turned into a stub."""


def dumps(notebook: dict[str, Any]) -> str:
    """Serialise a notebook exactly as ``nbformat.write`` does."""
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _enclosing_function(lines: list[str], line_no: int) -> str | None:
    """Name of the innermost ``def`` that encloses ``lines[line_no]``, or None."""
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:  # IPython magics and the like: fall back to reading indentation
        indent = len(lines[line_no]) - len(lines[line_no].lstrip())
        for line in reversed(lines[:line_no]):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", ")", "]", "}")):
                continue
            line_indent = len(line) - len(line.lstrip())
            if line_indent < indent:
                match = _DEF_LINE.match(line)
                if match:
                    return match.group(2)
                indent = line_indent
        return None
    functions = [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.lineno <= line_no + 1 <= (node.end_lineno or node.lineno)
    ]
    return max(functions, key=lambda node: node.lineno).name if functions else None


def stub_source(source: str, where: str, cell_id: str | None = None) -> str:
    """Replace every solution block in one code cell's source by a stub line.

    Args:
        source: the cell's source as one string.
        where: "<notebook file>, cell <index> (id <id>)", used in error messages.
        cell_id: the cell's id, the exercise name when no function encloses a block.

    Raises:
        MarkerError: unbalanced or nested markers, or a block with nothing to fill in.
    """
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    begin: int | None = None
    for i, line in enumerate(lines):
        if BEGIN in line:
            if begin is not None:
                raise MarkerError(f"{where}: nested '{BEGIN}' on line {i + 1} "
                                  f"(the block opened on line {begin + 1} is not closed)")
            begin = i
        elif END in line:
            if begin is None:
                raise MarkerError(f"{where}: '{END}' on line {i + 1} without a '{BEGIN}' before it")
            body = [text.strip() for text in lines[begin + 1 : i]]
            body = [text for text in body if text and not text.startswith("#")]  # code, not blanks or comments
            indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
            name = _enclosing_function(lines, begin) or cell_id or "exercise"
            stub = STUB.format(name=name)
            if not body or body == [stub]:
                raise MarkerError(f"{where}: the solution block on lines {begin + 1}-{i + 1} leaves nothing to fill in")
            out.append(indent + stub + ("\n" if line.endswith("\n") else ""))
            begin = None
        elif begin is None:
            out.append(line)
    if begin is not None:
        raise MarkerError(f"{where}: '{BEGIN}' on line {begin + 1} has no '{END}'")
    return "".join(out)


def make_exercise_notebook(solution_path: Path | str) -> dict[str, Any]:
    """Read a solved workbook and return its exercise version as a notebook dict.

    Cells without markers keep their source; code cells lose their outputs and execution count.
    """
    solution_path = Path(solution_path)
    notebook = json.loads(solution_path.read_text(encoding="utf-8"))
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        if BEGIN in text or END in text:
            cell_id = cell.get("id")
            where = f"{solution_path.name}, cell {index}" + (f" (id {cell_id})" if cell_id else "")
            text = stub_source(text, where, cell_id)
            cell["source"] = text.splitlines(keepends=True) if isinstance(source, list) else text
        cell["outputs"] = []
        cell["execution_count"] = None
    return notebook


def stale_files(solutions_dir: Path, exercises_dir: Path) -> list[Path]:
    """Exercise files that are missing, differ from what the generator makes, or have no solution."""
    stale = []
    for solution in sorted(solutions_dir.glob(NOTEBOOK_GLOB)):
        target = exercises_dir / solution.name
        expected = dumps(make_exercise_notebook(solution))
        if not target.exists() or target.read_text(encoding="utf-8") != expected:
            stale.append(target)
    solved = {path.name for path in solutions_dir.glob(NOTEBOOK_GLOB)}
    stale += [path for path in sorted(exercises_dir.glob("*.ipynb")) if path.name not in solved]
    return stale


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="list stale exercises and exit 1; write nothing")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--exercises", type=Path, default=ROOT / "exercises")
    args = parser.parse_args(argv)
    try:
        stale = stale_files(args.solutions, args.exercises)
    except MarkerError as error:
        print(f"❌ {error}", file=sys.stderr)
        return 2
    if args.check:
        for path in stale:
            print(f"stale: {path}")
        if stale:
            print("Run `python -m tooling.make_exercises` to regenerate exercises/.")
        return 1 if stale else 0
    for path in stale:
        solution = args.solutions / path.name
        if solution.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(make_exercise_notebook(solution)), encoding="utf-8", newline="\n")
            print(f"wrote {path}")
        else:
            print(f"⚠️  {path} has no solutions/{path.name}: remove it (git rm) if it is obsolete.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
