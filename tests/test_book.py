"""The rendered book: built from small notebooks here, and from the whole course when COURSE_BOOK=1.

``pytest tests`` builds a three-page book from notebooks written on the fly (a plot, a formula, a
circuitsvis view, a widget, a cell that raises) and checks what the builder and its checker do.

``python3 course.py test`` runs the ``full_book`` tests with ``COURSE_BOOK=1``: they execute every lesson and
solved workbook once, under the network guard, to build the book, and every fill-in workbook as handed
out. A notebook fails its test when a cell raises (named), when it tried the network, when a solved
workbook's check prints ❌, or when a fill-in workbook's check prints ✅ for its stub. Then they check the
book they leave in ``build/book/``.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tooling import book, progress

ROOT = Path(__file__).resolve().parent.parent
FULL_BOOK = os.environ.get("COURSE_BOOK") == "1"


def _write(path: Path, cells: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def small_book(tmp_path_factory) -> tuple[Path, list[Path], list[book.NotebookRun]]:
    """Lesson 1 (plot, formulas, circuitsvis, a widget, a progress bar), its workbook, and a lesson 2 that raises."""
    root = tmp_path_factory.mktemp("course")
    _write(root / "solutions" / "01_tiny.ipynb", [
        new_markdown_cell("# Workbook 1 · Tiny"),
        new_code_cell("def check_a(fn):\n    print('✅ a: passed')\n\n"
                      "def check_b(fn):\n    print('❌ b: wrong values')"),
        new_code_cell("passed_1 = check_a(None)"),
        new_code_cell("passed_2 = check_b(None)")])
    _write(root / "notebooks" / "01_tiny.ipynb", [
        new_markdown_cell("# Lesson 1 · Tiny\n\nInline $a^2 + \\frac{b}{c}\\Big|_x$, not `$code$`, "
                          "not costs $5 and $10.\n\n$$\\sum_i x_i$$"),
        new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"),
        new_code_cell("import circuitsvis as cv\nimport torch\n"
                      "import helpers   # as every lesson does: views inline their bundle\n"
                      "cv.attention.attention_heads(tokens=['a', 'b'], attention=torch.ones(1, 2, 2) / 2)"),
        new_code_cell("import ipywidgets\nipywidgets.IntSlider()"),
        new_code_cell("from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='progress'):\n    pass")])
    _write(root / "notebooks" / "02_broken.ipynb", [
        new_markdown_cell("# Lesson 2 · Broken"),
        new_code_cell("x = 1"),
        new_code_cell("raise ValueError('boom')"),
        new_code_cell("print('never reached')")])
    _write(root / "notebooks" / "03_online.ipynb", [
        new_markdown_cell("# Lesson 3 · Online"),
        new_code_cell("import circuitsvis as cv\nimport torch\n"      # no helpers: circuitsvis probes google.com
                      "cv.attention.attention_heads(tokens=['a', 'b'], attention=torch.ones(1, 2, 2) / 2)"),
        new_code_cell("import socket\ntry:\n    socket.create_connection(('10.11.12.13', 443), timeout=1)\n"
                      "except OSError as error:\n    print('offline:', error)"),
        new_code_cell("import socket\nsocket.socket().connect_ex(('127.0.0.1', 9))   # loopback is allowed")])
    sources = book.book_sources(root)
    out = root / "book"
    runs = book.build_book(sources, out, timeout=120, log=lambda *args: None)
    return out, sources, runs


def test_sources_in_lesson_order(small_book) -> None:
    _, sources, _ = small_book
    assert [f"{p.parent.name}/{p.name}" for p in sources] == [
        "notebooks/01_tiny.ipynb", "solutions/01_tiny.ipynb", "notebooks/02_broken.ipynb", "notebooks/03_online.ipynb"]


def test_the_course_reads_lesson_then_its_workbook() -> None:
    sources = book.book_sources()
    lessons = [p for p in sources if p.name not in {Path(page).name for page in book.REFERENCE_PAGES}]
    for before, workbook in zip(lessons, lessons[1:]):
        if workbook.parent.name == "solutions":
            assert (before.parent.name, before.name) == ("notebooks", workbook.name)
    numbers = [book.lesson_number(p) for p in lessons]
    assert numbers == sorted(numbers)
    assert {p.name for p in lessons if p.parent.name == "notebooks"} == \
        {p.name for p in (ROOT / "notebooks").glob(book.NOTEBOOK_GLOB)}
    assert sources[len(lessons):] == [ROOT / page for page in book.REFERENCE_PAGES]


def test_links_to_notebooks_point_at_their_pages() -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "A [logit](glossary.ipynb#Logit), [lesson 1](01_x.ipynb), [a workbook](../solutions/01_x.ipynb), "
        "and [the web](https://example.org/a.ipynb).")])
    assert book.static_copy(notebook).cells[0].source == (
        "A [logit](glossary.html#Logit), [lesson 1](01_x.html), [a workbook](../solutions/01_x.html), "
        "and [the web](https://example.org/a.ipynb).")


def test_small_book_is_sound(small_book) -> None:
    out, sources, runs = small_book
    assert book.check_book(out, sources, runs) == []
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.index("notebooks/01_tiny.html") < index.index("solutions/01_tiny.html") < \
        index.index("notebooks/02_broken.html")


def test_a_raising_cell_is_named(small_book) -> None:
    out, _, runs = small_book
    assert [run.ok for run in runs] == [True, True, False, True]
    error = runs[2].error
    assert (error.cell, error.ename, error.evalue) == (2, "ValueError", "boom")
    assert "cell 2" in str(error) and "ValueError: boom" in str(error)
    assert "stopped: cell 2" in (out / "index.html").read_text(encoding="utf-8")
    page = (out / "notebooks" / "02_broken.html").read_text(encoding="utf-8")
    assert "boom" in page and "never reached" in page        # the page shows the error and the source after it


def test_page_works_offline(small_book) -> None:
    out, _, runs = small_book
    page = (out / "notebooks" / "01_tiny.html").read_text(encoding="utf-8")
    scan = book.scan_page(page)
    assert scan.external == []
    assert scan.images >= 1                                   # the plot, inlined
    assert "CircuitsVis.render" in page and "unpkg.com" not in page   # circuitsvis brought its own bundle
    assert page.count("An interactive widget stands here") == 1 and "widget-view+json" not in page  # bar dropped
    assert page.count('class="book-math"') == 3               # two formulas drawn; the display one in a div
    assert "<code>$code$</code>" in page and "costs $5 and $10" in page
    assert runs[0].peak_rss_mb and runs[0].peak_rss_mb > 50   # a kernel with torch loaded
    assert runs[1].check_lines() == (1, 1)
    assert runs[0].network == []                              # helpers made circuitsvis skip its probe


def test_network_guard_blocks_and_reports_every_attempt_outside_loopback(small_book) -> None:
    _, _, runs = small_book
    online = runs[3]
    assert online.ok
    targets = [(a["call"], a["target"]) for a in online.network]
    assert ("socket.getaddrinfo", "'google.com'") in targets         # circuitsvis's own probe, without helpers
    assert ("socket.connect", "('10.11.12.13', 443)") in targets
    assert not any("127.0.0.1" in target for _, target in targets)  # loopback passes
    problems = online.problems()
    assert problems and all("network guard blocked" in p for p in problems)
    assert any("google.com" in p and "render.py" in p for p in problems), problems   # names where it came from


def test_problems_of_a_solved_workbook_name_the_failed_check(small_book) -> None:
    _, _, runs = small_book
    assert runs[1].check_cells() == 2
    assert [p.split(": ", 1)[1] for p in runs[1].problems()] == [
            "a check of the solved workbook failed: ❌ b: wrong values",
            "1 checks printed ✅, expected one per check cell (2)"]
    assert runs[0].problems() == []


def test_problems_of_a_fill_in_workbook_name_a_check_that_passes_its_stub(tmp_path: Path) -> None:
    path = _write(tmp_path / "exercises" / "01_tiny.ipynb", [
        new_code_cell("def check_a(fn):\n    print('✅ a: passed')\n\n"
                      "def check_b(fn):\n    print('❌ b: not implemented yet')"),
        new_code_cell("passed_1 = check_a(None)"),
        new_code_cell("passed_2 = check_b(None)")])
    run = book.execute_notebook(path, timeout=60)
    assert [p.split(": ", 1)[1] for p in run.problems()] == [
        "a check passed on a blank stub: ✅ a: passed", "1 checks printed ❌, expected one per check cell (2)"]


def test_checker_flags_what_nbconvert_fetches_by_default(small_book) -> None:
    """nbconvert's own lab template loads require.js, MathJax and mermaid from CDNs: the checker sees all three."""
    from nbconvert import HTMLExporter

    _, _, runs = small_book
    default_page, _ = HTMLExporter(template_name="lab").from_notebook_node(runs[0].notebook)
    found = " ".join(book.external_resources(default_page))
    assert "require" in found and "mathjax" in found and "mermaid" in found


@pytest.mark.parametrize("html", [
    '<script src="https://cdn.example.org/x.js"></script>',
    '<script src="//cdn.example.org/x.js"></script>',
    '<link rel="stylesheet" href="https://fonts.example.org/a.css">',
    '<img src="http://example.org/a.png">',
    '<script type="module">import { render } from "https://unpkg.com/circuitsvis/dist/cdn/esm.js";</script>',
    '<script>const m = await import("https://cdn.example.org/m.mjs");</script>',
    '<style>@import url("https://fonts.example.org/a.css");</style>',
    '<div style="background: url(https://example.org/a.png)"></div>',
])
def test_checker_flags_external_resources(html: str) -> None:
    assert book.external_resources(html), html


def test_checker_allows_links_and_inline_data() -> None:
    html = ('<a href="https://example.org">a link</a><img src="data:image/png;base64,AAAA">'
            '<script>var s = "see https://example.org/docs";</script><link rel="canonical" href="https://example.org">')
    assert book.external_resources(html) == []


def test_check_book_reports_missing_pages_and_order(small_book, tmp_path: Path) -> None:
    out, sources, _ = small_book
    assert book.check_book(tmp_path, sources) == [f"{book.relative(tmp_path / 'index.html')} is missing"]
    problems = book.check_book(out, list(reversed(sources)))
    assert any("in that order" in p for p in problems)
    (tmp_path / "index.html").write_text((out / "index.html").read_text(encoding="utf-8"), encoding="utf-8")
    assert any("has no page" in p for p in book.check_book(tmp_path, sources))


# ---------------------------------------------------------------------------------------------
# The whole course (python3 course.py test runs these with COURSE_BOOK=1)
# ---------------------------------------------------------------------------------------------

full = pytest.mark.skipif(not FULL_BOOK, reason="builds the whole book (minutes); `python3 course.py test` runs it "
                                                "with COURSE_BOOK=1")
SOURCES = book.book_sources()


@pytest.fixture(scope="module")
def full_book() -> dict[str, book.NotebookRun]:
    runs = book.build_book(SOURCES, book.DEFAULT_OUT, log=lambda line: print(line, flush=True))
    return {book.relative(run.path): run for run in runs}


@full
@pytest.mark.parametrize("source", SOURCES, ids=[book.relative(p) for p in SOURCES])
def test_full_book_notebook_runs_offline_and_its_checks_pass(full_book, source: Path) -> None:
    """It runs to the end; the network guard blocked nothing; a solved workbook's checks all print ✅."""
    run = full_book[book.relative(source)]
    trace = "" if run.ok else "\n" + "\n".join(run.error.traceback.splitlines()[-20:])
    assert run.problems() == [], "\n".join(run.problems()) + trace
    rows = progress.rows_of(run)                  # the progress report's table of this run
    assert len(rows) == run.check_cells() and all(row.passed for row in rows), rows


HANDED_OUT = sorted((ROOT / "exercises").glob(book.NOTEBOOK_GLOB))


@full
@pytest.mark.parametrize("workbook", HANDED_OUT, ids=[book.relative(p) for p in HANDED_OUT])
def test_full_book_run_of_each_fill_in_workbook_rejects_every_stub(workbook: Path) -> None:
    """Run as handed out: every check cell prints ❌ (never ✅) for its blank stub, and nothing stops the run."""
    run = book.execute_notebook(workbook)
    trace = "" if run.ok else "\n" + "\n".join(run.error.traceback.splitlines()[-20:])
    assert run.problems() == [], "\n".join(run.problems()) + trace
    rows = progress.rows_of(run)                  # the progress report's table: every exercise ❌, named
    assert rows and len(rows) == run.check_cells() and not any(row.passed for row in rows), rows
    assert all(row.message.startswith(row.exercise) for row in rows), [row.message for row in rows]


@full
def test_full_book_is_complete_in_order_and_offline(full_book) -> None:
    problems = book.check_book(book.DEFAULT_OUT, SOURCES, [full_book[book.relative(p)] for p in SOURCES])
    assert problems == [], "\n".join(problems)


@full
def test_full_book_shows_circuitsvis_and_pictures(full_book) -> None:
    lesson1 = next(p for p in SOURCES if p.parent.name == "notebooks" and p.name.startswith("01"))
    page = (book.DEFAULT_OUT / book.page_path(lesson1)).read_text(encoding="utf-8")
    assert "CircuitsVis.render" in page and "unpkg.com" not in page
    assert book.scan_page(page).images >= 5
