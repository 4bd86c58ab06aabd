#!/usr/bin/env python3
"""Which exercises of a workbook pass: run it in a fresh kernel and print one row per check.

    python -m tooling.progress                              # every workbook in exercises/
    python -m tooling.progress my-copy.ipynb                # a learner's own copy, before the workshop
    python -m tooling.progress collected/ --csv grades.csv  # every .ipynb under a folder, one table, and a CSV

``python3 course.py progress [WORKBOOK ...]`` runs it. Each workbook runs from top to bottom in a fresh
``python3`` kernel started in its folder, under the course's network guard (``tooling.book.execute_notebook``),
one after the other. Its check cells (``passed_k = check_<name>(...)``) each printed one line starting with ✅
or ❌; the table has a row per check cell: the workbook, the exercise's number and name, ✅ or ❌, the check's
line, and a row per workbook with how many passed and how long it ran. A check cell the run never reached
(a cell above it raised: the workbook stops there, as in Jupyter's "Run All") is ❌ with where it stopped.

Workbooks released by nbgrader (``python3 course.py nbgrader``) carry ``assert passed_k, ...`` in their check
cells; that line is left out of the run, so that a failed check does not stop the workbook before the next
exercise (the run is then of a copy in a scratch folder). No nbgrader is needed.

Exit status: 0 when every workbook was run (whatever its checks said), 2 when an argument is not a notebook.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tooling.book import ROOT, NotebookRun, execute_notebook
from tooling.make_exercises import NOTEBOOK_GLOB, cell_text, check_cells, dumps
from tooling.nbgrader_source import ASSERT_LINE

PASS, FAIL = "✅", "❌"
CSV_COLUMNS = ("workbook", "number", "exercise", "passed", "message", "workbook_seconds")
_NBGRADER_ASSERT = re.compile(r"\n?" + re.escape(ASSERT_LINE).replace(re.escape("{variable}"), r"passed_\w+") + r"\n?$")


@dataclass(frozen=True)
class ExerciseRow:
    """One check of one workbook."""

    number: str          # ``1a``, from ``passed_1a``
    exercise: str        # ``toy_model_forward``, from ``check_toy_model_forward(...)``
    passed: bool
    message: str         # the check's line without its ✅/❌, or why there is none


@dataclass(frozen=True)
class WorkbookReport:
    """One workbook's run: a row per check cell, its wall time, and where it stopped if it did."""

    path: Path
    seconds: float
    rows: tuple[ExerciseRow, ...]
    stopped: str | None = None

    @property
    def passed(self) -> int:
        return sum(row.passed for row in self.rows)


def _check_line(cell: dict) -> str | None:
    """The last line starting with ✅ or ❌ among a cell's printed outputs, or None."""
    found = None
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            text = output.get("text", "")
        elif "data" in output:
            text = output["data"].get("text/plain", "")
        else:
            continue
        text = "".join(text) if isinstance(text, list) else text
        for raw in text.splitlines():
            line = raw.strip().strip("'\"")
            if line.startswith((PASS, FAIL)):
                found = line
    return found


def rows_of(run: NotebookRun) -> list[ExerciseRow]:
    """A row per check cell of an executed workbook."""
    rows = []
    error = run.error
    for check in check_cells(run.notebook):
        line = _check_line(run.notebook.cells[check.index])
        if line is not None:
            rows.append(ExerciseRow(check.number, check.exercise, line.startswith(PASS), line[1:].strip()))
        elif error is not None and error.cell == check.index:
            rows.append(ExerciseRow(check.number, check.exercise, False,
                                    f"the check cell raised {error.ename}: {error.evalue}"))
        elif error is not None and (error.cell is None or error.cell < check.index):
            where = "before any cell" if error.cell is None else f"at cell {error.cell}"
            rows.append(ExerciseRow(check.number, check.exercise, False,
                                    f"not run: the workbook stopped {where} ({error.ename}: {error.evalue})"))
        else:
            rows.append(ExerciseRow(check.number, check.exercise, False, "the check cell printed no ✅ or ❌ line"))
    return rows


def without_nbgrader_asserts(path: Path) -> dict | None:
    """The notebook with the ``assert`` lines nbgrader's check cells end with removed; None if it has none."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for cell in notebook.get("cells", []):
        text = cell_text(cell)
        if cell.get("cell_type") == "code" and _NBGRADER_ASSERT.search(text):
            text = _NBGRADER_ASSERT.sub("", text)
            cell["source"] = text.splitlines(keepends=True) if isinstance(cell["source"], list) else text
            changed = True
    return notebook if changed else None


def report_workbook(path: Path | str, timeout: int = 600) -> WorkbookReport:
    """Run one workbook (offline, in a fresh kernel) and read its checks."""
    path = Path(path)
    stripped = without_nbgrader_asserts(path)
    if stripped is None:
        run = execute_notebook(path, timeout=timeout)
    else:
        with tempfile.TemporaryDirectory(prefix="course-progress-") as scratch:
            copy = Path(scratch) / path.name
            copy.write_text(dumps(stripped), encoding="utf-8")
            run = execute_notebook(copy, timeout=timeout)
    stopped = None if run.error is None else str(run.error)
    blocked = [f"{attempt['call']}({attempt['target']})" for attempt in run.network]
    if blocked:
        stopped = (stopped + "; " if stopped else "") + "the network guard blocked " + ", ".join(blocked)
    return WorkbookReport(path, run.seconds, tuple(rows_of(run)), stopped)


def workbooks(arguments: list[Path]) -> list[Path]:
    """The notebooks named, folders expanded to every ``.ipynb`` under them (checkpoints left out), in order."""
    if not arguments:
        return sorted((ROOT / "exercises").glob(NOTEBOOK_GLOB))
    found: list[Path] = []
    for argument in arguments:
        if argument.is_dir():
            found += sorted(p for p in argument.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        else:
            found.append(argument)
    return found


def display_name(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _seconds(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def render_table(reports: list[WorkbookReport]) -> str:
    """The one table: per workbook a line with its score and time, then a row per exercise."""
    rows: list[tuple[str, str, str, str, str]] = []
    for report in reports:
        total = f"{report.passed}/{len(report.rows)} passed in {_seconds(report.seconds)}"
        rows.append((display_name(report.path), "", "", total, ""))
        for row in report.rows:
            rows.append(("", row.number, row.exercise, PASS if row.passed else FAIL, row.message))
        if report.stopped:
            rows.append(("", "", "", "⚠️", f"stopped {report.stopped}"))
    header = ("workbook", "#", "exercise", "", "check")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

    def line(r: tuple[str, str, str, str, str]) -> str:
        return f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]} {r[4]}".rstrip()

    out = [line(header), "-" * (sum(widths) + 8)]
    out += [line(r) for r in rows]
    passed, total = sum(r.passed for r in reports), sum(len(r.rows) for r in reports)
    out.append(f"{len(reports)} workbook(s), {passed} of {total} checks passed, "
               f"{_seconds(sum(r.seconds for r in reports))} in all")
    return "\n".join(out)


def write_csv(reports: list[WorkbookReport], target: Path) -> None:
    """One row per exercise (``CSV_COLUMNS``); ``passed`` is ``yes`` or ``no``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for report in reports:
            for row in report.rows:
                writer.writerow([display_name(report.path), row.number, row.exercise, "yes" if row.passed else "no",
                                 row.message, f"{report.seconds:.1f}"])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workbooks", nargs="*", type=Path,
                        help="notebooks, or folders of them (default: every workbook in exercises/)")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV, one row per exercise")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    args = parser.parse_args(argv)
    paths = workbooks(args.workbooks)
    bad = [p for p in paths if p.suffix != ".ipynb" or not p.is_file()]
    if bad or not paths:
        print(f"❌ not a notebook: {', '.join(map(str, bad))}" if bad else "❌ no notebooks to run", file=sys.stderr)
        return 2
    started, reports = time.perf_counter(), []
    for path in paths:
        print(f"▶ {display_name(path)} ...", file=sys.stderr, flush=True)
        reports.append(report_workbook(path, args.timeout))
    print(render_table(reports))
    if args.csv:
        write_csv(reports, args.csv)
        print(f"wrote {args.csv}")
    print(f"(ran in {_seconds(time.perf_counter() - started)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
