"""docs/WORKSHOP.md: its generated blocks are current, and every lesson's discussion prompts are in it."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tooling import workshop

ROOT = Path(__file__).resolve().parent.parent
LESSONS = workshop.lessons()


def test_guide_is_current() -> None:
    current = workshop.GUIDE.read_text(encoding="utf-8")
    assert workshop.render_guide(current) == current, "docs/WORKSHOP.md is stale: run `python3 course.py guide`"


def test_readme_links_the_guide() -> None:
    assert "(docs/WORKSHOP.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


WITH_WORKBOOKS = [p for p in LESSONS if workshop.workbook_of(p)]


@pytest.mark.parametrize("path", WITH_WORKBOOKS, ids=[p.name for p in WITH_WORKBOOKS])
def test_every_prompt_of_every_lesson_is_in_the_guide(path: Path) -> None:
    prompts = workshop.lesson_prompts(path)
    assert len(prompts.items) >= 3, f"{path.name}: no 'Discussion prompts' heading with a numbered list found"
    guide = " ".join(workshop.GUIDE.read_text(encoding="utf-8").split())
    for item in prompts.items:
        assert " ".join(item.split()) in guide, f"{path.name}: prompt missing from the guide: {item[:80]}"
    assert f"### {prompts.title}" in workshop.GUIDE.read_text(encoding="utf-8")


def test_lesson_table_has_a_row_per_lesson_with_times() -> None:
    timings = json.loads(workshop.TIMINGS.read_text(encoding="utf-8"))
    table = workshop.render_lessons(timings)
    for path in LESSONS:
        row = next(line for line in table.splitlines() if line.startswith(f"| {workshop.display_number(path)} |"))
        assert "not timed" not in row, (f"{path.name} has no timing in docs/timings.json: "
                                        "run `python3 course.py timings`")


def test_discussion_sections_reads_numbered_items_only() -> None:
    markdown = """## What we saw

1. not a prompt: this list is under another heading

## Discussion prompts

For a workshop: pick two.

1. **First.** A question that
   runs over two lines?
2. Second?

**Next:** the workbook.

3. not a prompt either: prose ended the list

### Discussion prompts (part B)

1. Third?
"""
    assert workshop.discussion_sections(markdown) == [
        ("Discussion prompts", ["**First.** A question that\n   runs over two lines?", "Second?"]),
        ("Discussion prompts (part B)", ["Third?"]),
    ]


def test_render_numbers_prompts_across_sections(tmp_path: Path) -> None:
    path = tmp_path / "notebooks" / "09_x.ipynb"
    path.parent.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Lesson 9 · X\n\n## Discussion prompts\n\n1. One?\n2. Two?"),
        nbformat.v4.new_markdown_cell("## Part B\n\n### Discussion prompts, part B\n\n1. Three?")])
    nbformat.write(notebook, path)
    text = workshop.render_discussion([workshop.lesson_prompts(path)])
    assert "### Lesson 9 · X" in text and "1. One?\n2. Two?" in text and "3. Three?" in text
    assert "*Discussion prompts, part B*" in text


def test_missing_markers_are_reported() -> None:
    with pytest.raises(ValueError, match="markers"):
        workshop.replace_block("no markers here", "discussion", "x")


def test_plan_fits_the_reading_estimates_and_names_each_lesson() -> None:
    plan = workshop.render_plan()
    for path in WITH_WORKBOOKS:
        number, minutes = workshop.display_number(path), workshop.reading.reading(path).minutes
        if number in workshop.ONE_DAY_LESSONS:
            assert f"lesson {number}, " in plan and f"the notebook ({minutes} min)" in plan
        else:      # a second notebook of a lesson: named at the close, to go further
            assert f"lesson {number}, " not in plan and number in plan.splitlines()[-1]
    assert plan.count("| lunch |") == 1


def test_first_exercises_keep_at_least_one_and_stay_in_budget() -> None:
    for path in WITH_WORKBOOKS:
        count, minutes = workshop.first_exercises(ROOT / "solutions" / path.name, workshop.ONE_DAY_WORKBOOK)
        assert count >= 1 and (minutes <= workshop.ONE_DAY_WORKBOOK or count == 1)
