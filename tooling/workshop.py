"""Keep the generated parts of docs/WORKSHOP.md current: the lesson table, the exercises, the discussion prompts.

    python -m tooling.workshop            # rewrite the three blocks of docs/WORKSHOP.md
    python -m tooling.workshop --check    # exit 1 if any block is out of date

``python3 course.py guide`` runs the first line; ``python3 course.py timings`` runs it too. The rest of
the guide is written by hand. The three blocks come from:

* the lesson table: each lesson's title (the first ``#`` heading of ``notebooks/NN_*.ipynb``) and the
  measured run times and memory of ``docs/timings.json``;
* the exercises: the check cells of every solved workbook ``solutions/NN_*.ipynb`` (``passed_k =
  check_<name>(...)``), which are also what ``python3 course.py nbgrader`` and ``progress`` grade;
* the discussion prompts: in every lesson notebook, each numbered list that follows a heading
  containing "Discussion prompts", up to the next heading. Add a prompt to a lesson and run
  ``python3 course.py guide``; a test fails until you do.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tooling import reading
from tooling.book import NOTEBOOK_GLOB, ROOT, lesson_number, notebook_title, relative
from tooling.make_exercises import check_cells
from tooling.nbgrader_source import assignment_name

GUIDE = ROOT / "docs" / "WORKSHOP.md"
TIMINGS = ROOT / "docs" / "timings.json"
_HEADING = re.compile(r"^#{1,6}\s")
_DISCUSSION = re.compile(r"^#{1,6}\s.*discussion prompts", re.I)
_ITEM = re.compile(r"^(\d+)\.\s+(.*)")


def markers(name: str) -> tuple[str, str]:
    return (f"<!-- {name}:begin (written by `python3 course.py guide`; edit the notebooks, not this block) -->",
            f"<!-- {name}:end -->")


@dataclass
class Prompts:
    """The discussion prompts of one lesson notebook."""

    path: Path
    title: str
    sections: list[tuple[str, list[str]]]      # (heading text, items as Markdown without their number)

    @property
    def items(self) -> list[str]:
        return [item for _, items in self.sections for item in items]


def lessons(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob(NOTEBOOK_GLOB))


def discussion_sections(markdown: str) -> list[tuple[str, list[str]]]:
    """Every numbered list under a "Discussion prompts" heading of one markdown cell.

    Each item is returned as one string: its first line and its continuation lines (indented in the
    notebook) joined with newlines and re-indented by three spaces, without the item's number.
    Text that is not a numbered item (an introduction, a "Next:" line) is left out.
    """
    sections: list[tuple[str, list[str]]] = []
    items: list[list[str]] | None = None
    for line in markdown.splitlines():
        if _HEADING.match(line):
            items = None
            if _DISCUSSION.match(line):
                items = []
                sections.append((line.lstrip("#").strip(), items))   # filled below, in place
            continue
        if items is None:
            continue
        item = _ITEM.match(line)
        if item:
            items.append([item.group(2).rstrip()])
        elif items and line.startswith((" ", "\t")) and line.strip():
            items[-1].append(line.strip())
        elif line.strip() and items:
            items = None                                        # prose after the list ends it
    return [(heading, ["\n   ".join(lines) for lines in found]) for heading, found in sections if found]


def lesson_prompts(path: Path) -> Prompts:
    notebook = nbformat.read(path, as_version=4)
    sections = [s for cell in notebook.cells if cell.cell_type == "markdown"
                for s in discussion_sections(cell.source)]
    return Prompts(path, notebook_title(notebook, path.stem), sections)


def render_discussion(all_prompts: list[Prompts]) -> str:
    out = []
    for prompts in all_prompts:
        out.append(f"### {prompts.title}\n")
        out.append(f"From `{relative(prompts.path)}`.\n")
        number = 0
        for heading, items in prompts.sections:
            if len(prompts.sections) > 1:
                out.append(f"*{heading}*\n")
            for item in items:
                number += 1
                out.append(f"{number}. {item}")
            out.append("")
    return "\n".join(out)


def _short_title(title: str) -> str:
    return re.sub(r"^Lesson\s+\d+[a-z]?\s*[·:.-]\s*", "", title)


def display_number(path: Path) -> str:
    """``1`` for ``01_...``, ``3b`` for ``03b_...``, ``0`` for the primer's ``00_...``."""
    return lesson_number(path).lstrip("0") or "0"


def workbook_of(path: Path, root: Path = ROOT) -> Path | None:
    """The solved workbook of a lesson notebook, if it has one (the primer has none)."""
    solved = root / "solutions" / path.name
    return solved if solved.exists() else None


def render_lessons(timings: dict | None, root: Path = ROOT) -> str:
    """The lesson table: title, estimated first-read times, how long each notebook ran, the largest peak memory."""
    rows = {row["notebook"]: row for row in (timings or {}).get("notebooks", [])}

    def cell(path: str) -> str:
        row = rows.get(path)
        if row is None:
            return "not timed"
        minutes, seconds = divmod(round(row["seconds"]), 60)
        return (f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s") + ("" if row["ran"] else " (failed)")

    lines = ["| # | lesson | reading the lesson | the workbook | run time: lesson / solved / fill-in | peak memory |",
             "|---|---|--:|--:|--:|--:|"]
    for path in lessons(root):
        name, solved = path.name, workbook_of(path, root)
        title = _short_title(notebook_title(nbformat.read(path, as_version=4), path.stem))
        kinds = ("notebooks", "solutions", "exercises") if solved else ("notebooks",)
        peaks = [rows[f"{k}/{name}"]["peak_mb"] for k in kinds
                 if f"{k}/{name}" in rows and rows[f"{k}/{name}"]["peak_mb"] is not None]
        peak = f"{max(peaks) / 1024:.1f} GB" if peaks else "?"
        work = f"{reading.reading(solved).minutes} min" if solved else "none"
        runs = " / ".join(cell(f"{k}/{name}") for k in kinds)
        lines.append(f"| {display_number(path)} | {title} | {reading.reading(path).minutes} min | {work} | "
                     f"{runs} | {peak} |")
    lines += ["", f"Reading times are estimates from word and exercise counts ({reading.HOW}), rounded up to "
                  "5 minutes; `python -m tooling.reading` prints the counts."]
    if timings:
        m = timings["machine"]
        lines += ["", f"Run times of the notebooks from top to bottom, with nobody reading, measured by "
                      f"`python3 course.py timings` on {m['date']} ({m['logical_cores']} cores, {m['cpu']}); "
                      "see [timings.md](timings.md)."]
    return "\n".join(lines) + "\n"


DISCUSSION_MINUTES = 15
DAY_START, LUNCH_AT, BREAK_EVERY = 9 * 60, 12 * 60, 90       # minutes since midnight; a break after 90 minutes
ONE_DAY_WORKBOOK = 30                                         # minutes of each workbook done in the room
# The one day covers the primer and the core of each topic; the second notebooks of lessons 1, 2, 3 and 4
# (1b, 2b, 3c, 4b: the same techniques taken further) are for a second day or for home.
ONE_DAY_LESSONS = ("0", "1", "2", "3a", "3b", "4")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def first_exercises(solved: Path, budget: int) -> tuple[int, int]:
    """(how many exercises, their minutes): the workbook's first exercises that fit in ``budget`` minutes."""
    stars = reading.reading(solved).stars
    count = used = 0
    for s in stars:
        if count and used + reading.MINUTES_PER_STARS[s] > budget:
            break
        count, used = count + 1, used + reading.MINUTES_PER_STARS[s]
    return count, used


def render_plan(root: Path = ROOT) -> str:
    """A one-day schedule built from the reading estimates: each lesson read together, the first workbook
    exercises that fit in :data:`ONE_DAY_WORKBOOK` minutes, :data:`DISCUSSION_MINUTES` of discussion."""
    welcome = "welcome; everyone runs `python3 course.py preflight`, helpers fix the ❌ lines"
    items: list[tuple[str, int]] = [(welcome, 20)]
    later = [display_number(p) for p in lessons(root) if display_number(p) not in ONE_DAY_LESSONS]
    for path in [p for p in lessons(root) if display_number(p) in ONE_DAY_LESSONS]:
        title = _short_title(notebook_title(nbformat.read(path, as_version=4), path.stem))
        read = reading.reading(path).minutes
        solved = workbook_of(path, root)
        if solved is None:
            items.append((f"lesson {display_number(path)}, {title}: read together ({read} min)", read))
            continue
        count, minutes = first_exercises(solved, ONE_DAY_WORKBOOK)
        numbers = [check.number for check in check_cells(json.loads(solved.read_text(encoding="utf-8")))][:count]
        items += [(f"lesson {display_number(path)}, {title}: the notebook ({read} min)", read),
                  (f"lesson {display_number(path)}: workbook exercises {numbers[0]} to {numbers[-1]} ({minutes} min)"
                   if count > 1 else f"lesson {display_number(path)}: workbook exercise {numbers[0]} ({minutes} min)",
                   minutes),
                  (f"lesson {display_number(path)}: discussion ({DISCUSSION_MINUTES} min)", DISCUSSION_MINUTES)]
    lines = ["| time | what |", "|---|---|"]
    clock, since_break, lunched = DAY_START, 0, False
    for what, minutes in items:
        if not lunched and clock >= LUNCH_AT:
            lines.append(f"| {_clock(clock)} | lunch |")
            clock, since_break, lunched = clock + 60, 0, True
        elif since_break >= BREAK_EVERY:
            lines.append(f"| {_clock(clock)} | break |")
            clock, since_break = clock + 15, 0
        lines.append(f"| {_clock(clock)} | {what} |")
        clock, since_break = clock + minutes, since_break + minutes
    rest = f"; lessons {', '.join(later)} to go further" if later else ""
    lines.append(f"| {_clock(clock)} | close: the rest of the workbooks as homework{rest} |")
    return "\n".join(lines) + "\n"


def render_exercises(root: Path = ROOT) -> str:
    """The exercises of every solved workbook, as numbered in its check cells, with nbgrader's assignment names."""
    lines = ["| # | workbook | nbgrader assignment | exercises (1 point each) |", "|---|---|---|---|"]
    for path in sorted((root / "solutions").glob(NOTEBOOK_GLOB)):
        checks = check_cells(json.loads(path.read_text(encoding="utf-8")))
        names = ", ".join(f"{check.number} `{check.exercise}`" for check in checks)
        lines.append(f"| {display_number(path)} | `{relative(path)}` | `{assignment_name(path)}` | "
                     f"{len(checks)}: {names} |")
    return "\n".join(lines) + "\n"


def replace_block(text: str, name: str, body: str) -> str:
    begin, end = markers(name)
    if begin not in text or end not in text:
        raise ValueError(f"{relative(GUIDE)} lacks the markers of its {name!r} block: {begin} ... {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body.rstrip()}\n{end}{tail}"


def render_guide(text: str | None = None, timings: dict | None = None, root: Path = ROOT) -> str:
    """The guide with both generated blocks rewritten (``text``: the guide as it is; default the file)."""
    text = GUIDE.read_text(encoding="utf-8") if text is None else text
    if timings is None and TIMINGS.exists():
        timings = json.loads(TIMINGS.read_text(encoding="utf-8"))
    text = replace_block(text, "lessons", render_lessons(timings, root))
    text = replace_block(text, "plan", render_plan(root))
    text = replace_block(text, "exercises", render_exercises(root))
    prompts = [lesson_prompts(p) for p in lessons(root)]
    return replace_block(text, "discussion", render_discussion([p for p in prompts if p.items]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/WORKSHOP.md is out of date; write nothing")
    args = parser.parse_args(argv)
    current = GUIDE.read_text(encoding="utf-8")
    fresh = render_guide(current)
    if args.check:
        if fresh != current:
            print(f"stale: {relative(GUIDE)} (run `python3 course.py guide`)")
            return 1
        return 0
    GUIDE.write_text(fresh, encoding="utf-8")
    counts = ", ".join(f"lesson {display_number(p)}: {len(lesson_prompts(p).items)}" for p in lessons())
    print(f"Wrote {relative(GUIDE)} (discussion prompts {counts}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
