"""tooling/reading.py: prose counted outside collapsed blocks; every lesson fits a sitting; none names the syllabus."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tooling import reading

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob(reading.NOTEBOOK_GLOB))


def test_words_inside_details_are_counted_apart() -> None:
    text = ("Three words here.\n\n<details><summary><b>Going deeper:</b> a title</summary>\n\n"
            "five words inside the block\n\n</details>\n\nand two")
    assert reading.prose_words(text) == (5, 9)


def test_reading_time_counts_prose_code_and_stars(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("word " * 1200),
        nbformat.v4.new_markdown_cell("## Exercise 1 · A thing ★★☆\n\nDo it."),
        nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("y = 2")])
    path = tmp_path / "01_x.ipynb"
    nbformat.write(notebook, path)
    row = reading.reading(path)
    assert (row.words, row.code_cells, row.stars) == (1200 + 6, 2, (2,))
    assert row.minutes == 25                       # 10.05 + 1 + 10 = 21.05, rounded up to 5 minutes


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_fits_one_sitting(path: Path) -> None:
    words = reading.reading(path).words
    assert words <= reading.WORD_BUDGET, (f"{path.name}: {words:,} words of prose outside collapsed blocks "
                                          f"(budget {reading.WORD_BUDGET:,}): cut, or move side results into "
                                          "<details> blocks")


def test_no_notebook_names_the_syllabus() -> None:
    assert reading.syllabus_mentions() == []
