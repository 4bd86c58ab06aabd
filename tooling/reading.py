"""How long each notebook takes to read: prose words outside collapsed blocks, code cells, exercises.

    python -m tooling.reading            # print the table
    python -m tooling.reading --check    # exit 1 if a lesson is over the budget or mentions the syllabus

The workshop guide plans its day from these estimates (``python3 course.py guide``), not from the
machine's run times: a learner spends their time reading and thinking, not waiting for the CPU.

* **prose words**: the words (runs of non-space holding a letter or digit) of every Markdown cell,
  except what stands between ``<details>`` and ``</details>`` (a collapsed "going deeper" block,
  skipped on a first read) and HTML tags;
* **reading time** of a lesson: :data:`WORDS_PER_MINUTE` for the prose, plus :data:`MINUTES_PER_CODE_CELL`
  for each code cell (run it, look at what it prints or draws);
* **reading time** of a workbook: the same, plus each exercise's minutes by its stars
  (:data:`MINUTES_PER_STARS`: ★☆☆, ★★☆, ★★★ in the exercise's heading).

The budget (``../shared``'s course design): a lesson fits one sitting, about 45 minutes, which is about
:data:`WORD_BUDGET` words of prose.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tooling.book import NOTEBOOK_GLOB, ROOT, lesson_number, relative

WORDS_PER_MINUTE = 120            # careful reading of new technical material
MINUTES_PER_CODE_CELL = 0.5
MINUTES_PER_STARS = {1: 5, 2: 10, 3: 20}
WORD_BUDGET = 3500
HOW = (f"{WORDS_PER_MINUTE} words of prose a minute outside collapsed blocks, {MINUTES_PER_CODE_CELL} min a code cell, "
       + ", ".join(f"{m} min an exercise of {'★' * s}{'☆' * (3 - s)}" for s, m in MINUTES_PER_STARS.items()))
DIRS = ("notebooks", "solutions")
_DETAILS = re.compile(r"<details\b.*?</details>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"\w")
_STARS = re.compile(r"^#{1,6}\s.*?(★+)☆*", re.M)
FORBIDDEN = re.compile(r"\bsyllabus", re.I)


@dataclass(frozen=True)
class Reading:
    """What one notebook asks of a first-time reader."""

    path: Path
    words: int                  # prose outside collapsed blocks
    collapsed_words: int        # prose inside <details> blocks
    code_cells: int
    stars: tuple[int, ...]      # one entry per exercise heading: 1, 2 or 3

    @property
    def minutes(self) -> int:
        raw = (self.words / WORDS_PER_MINUTE + MINUTES_PER_CODE_CELL * self.code_cells
               + sum(MINUTES_PER_STARS[s] for s in self.stars))
        return 5 * math.ceil(raw / 5)                     # planning precision: 5 minutes


def prose_words(markdown: str) -> tuple[int, int]:
    """(words outside ``<details>`` blocks, words inside them) of one Markdown text."""
    inside = sum(_count(block) for block in _DETAILS.findall(markdown))
    return _count(_DETAILS.sub(" ", markdown)), inside


def _count(markdown: str) -> int:
    """Words: runs of non-space that hold a letter or digit (not ``##``, ``·``, ``|---|``)."""
    return sum(bool(_WORD.search(token)) for token in _TAG.sub(" ", markdown).split())


def reading(path: Path) -> Reading:
    notebook = nbformat.read(path, as_version=4)
    words = collapsed = 0
    stars: list[int] = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            outside, inside = prose_words(cell.source)
            words, collapsed = words + outside, collapsed + inside
            stars += [len(match) for match in _STARS.findall(cell.source)]
    code = sum(cell.cell_type == "code" and cell.get("id") != "colab-setup" for cell in notebook.cells)
    return Reading(path, words, collapsed, code, tuple(stars))


def course_notebooks(root: Path = ROOT) -> list[Path]:
    """The lessons (and the glossary) and the solved workbooks: what a learner reads."""
    found = [p for d in DIRS for p in (root / d).glob(NOTEBOOK_GLOB)]
    return sorted(found, key=lambda p: (lesson_number(p), DIRS.index(p.parent.name)))


def syllabus_mentions(root: Path = ROOT) -> list[str]:
    """``path: line`` for every line of a learner-facing notebook that names the syllabus."""
    hits = []
    for folder in ("notebooks", "solutions", "exercises"):
        for path in sorted((root / folder).glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            for cell in notebook.cells:
                hits += [f"{relative(path)}: {line.strip()}" for line in cell.source.splitlines()
                         if FORBIDDEN.search(line)]
    return hits


def table(rows: list[Reading]) -> str:
    lines = ["| notebook | prose words | in collapsed blocks | code cells | exercises | first read |",
             "|---|--:|--:|--:|--:|--:|"]
    for row in rows:
        lines.append(f"| `{relative(row.path)}` | {row.words:,} | {row.collapsed_words:,} | {row.code_cells} | "
                     f"{len(row.stars) or ''} | {row.minutes} min |")
    return "\n".join(lines)


def problems(rows: list[Reading], root: Path = ROOT) -> list[str]:
    over = [f"{relative(r.path)}: {r.words:,} words of prose outside collapsed blocks (budget {WORD_BUDGET:,})"
            for r in rows if r.path.parent.name == "notebooks" and r.words > WORD_BUDGET]
    return over + [f"mentions the syllabus: {hit}" for hit in syllabus_mentions(root)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on a lesson over budget or a syllabus mention")
    args = parser.parse_args(argv)
    rows = [reading(p) for p in course_notebooks()]
    print(table(rows))
    found = problems(rows)
    for line in found:
        print("❌", line)
    return 1 if args.check and found else 0


if __name__ == "__main__":
    sys.exit(main())
