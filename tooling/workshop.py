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

from tooling.book import NOTEBOOK_GLOB, ROOT, notebook_title, relative
from tooling.make_exercises import check_cells

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
    return re.sub(r"^Lesson\s+\d+\s*[·:.-]\s*", "", title)


def render_lessons(timings: dict | None, root: Path = ROOT) -> str:
    """The lesson table: title, how long each of the lesson's notebooks ran, the largest peak memory."""
    rows = {row["notebook"]: row for row in (timings or {}).get("notebooks", [])}

    def cell(path: str) -> str:
        row = rows.get(path)
        if row is None:
            return "not timed"
        minutes, seconds = divmod(round(row["seconds"]), 60)
        return (f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s") + ("" if row["ran"] else " (failed)")

    lines = ["| # | lesson | lesson notebook | solved workbook | fill-in workbook | peak memory |",
             "|---|---|--:|--:|--:|--:|"]
    for path in lessons(root):
        number, name = path.name[:2], path.name
        title = _short_title(notebook_title(nbformat.read(path, as_version=4), path.stem))
        peaks = [rows[p]["peak_mb"] for p in (f"notebooks/{name}", f"solutions/{name}", f"exercises/{name}")
                 if p in rows and rows[p]["peak_mb"] is not None]
        peak = f"{max(peaks) / 1024:.1f} GB" if peaks else "?"
        lines.append(f"| {int(number)} | {title} | {cell(f'notebooks/{name}')} | {cell(f'solutions/{name}')} | "
                     f"{cell(f'exercises/{name}')} | {peak} |")
    if timings:
        m = timings["machine"]
        lines += ["", f"Run times of the notebooks from top to bottom, measured by `python3 course.py timings` on "
                      f"{m['date']} ({m['logical_cores']} cores, {m['cpu']}); see [timings.md](timings.md)."]
    return "\n".join(lines) + "\n"


def render_exercises(root: Path = ROOT) -> str:
    """The exercises of every solved workbook, as numbered in its check cells, with nbgrader's assignment names."""
    lines = ["| # | workbook | nbgrader assignment | exercises (1 point each) |", "|---|---|---|---|"]
    for path in sorted((root / "solutions").glob(NOTEBOOK_GLOB)):
        checks = check_cells(json.loads(path.read_text(encoding="utf-8")))
        names = ", ".join(f"{check.number} `{check.exercise}`" for check in checks)
        lines.append(f"| {int(path.name[:2])} | `{relative(path)}` | `lesson{int(path.name[:2])}` | "
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
    text = replace_block(text, "exercises", render_exercises(root))
    return replace_block(text, "discussion", render_discussion([lesson_prompts(p) for p in lessons(root)]))


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
    counts = ", ".join(f"lesson {p.name[:2].lstrip('0')}: {len(lesson_prompts(p).items)}" for p in lessons())
    print(f"Wrote {relative(GUIDE)} (discussion prompts {counts}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
