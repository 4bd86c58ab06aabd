"""Run the course's notebooks and render them as a static HTML book that reads offline.

    python -m tooling.book                          # run notebooks/ and solutions/, write build/book/
    python -m tooling.book notebooks/03a_*.ipynb    # only these (the index lists only them)
    python -m tooling.book --out /tmp/book          # somewhere else

``python3 course.py book`` runs the first line. Every notebook is executed top to bottom in a fresh
kernel started in its own folder (as Jupyter and nbmake do). The pages are nbconvert's JupyterLab
template without the parts that fetch JavaScript from a CDN (require.js, MathJax, the widget
manager, mermaid): formulas are drawn to inline SVG with matplotlib's mathtext, images are inlined,
circuitsvis views carry their own JavaScript (``helpers`` makes circuitsvis inline its bundle instead of
importing it from unpkg), a widget output keeps only the static picture that the course's widgets ship
beside themselves, and finished progress bars are left out. ``build/book/index.html`` lists the pages in
lesson order: lesson 1, its solved workbook, lesson 2, ...

The command exits 1, naming the notebook and the cell, when a notebook raises, and also when a page
it wrote would need anything from the internet (:func:`check_book`).

:func:`execute_notebook` is also what ``python -m tooling.timings`` times.
"""
from __future__ import annotations

import argparse
import base64
import copy
import html
import io
import os
import re
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import nbformat

from tooling.make_exercises import CHECK_CELL, NOTEBOOK_GLOB

ROOT = Path(__file__).resolve().parents[1]
BOOK_DIRS = ("notebooks", "solutions")
REFERENCE_PAGES = ("notebooks/glossary.ipynb",)
_NOTEBOOK_LINK = re.compile(r"(\]\((?!\w+://)[^)\s]*?)\.ipynb(#[^)\s]*)?\)")
DEFAULT_OUT = ROOT / "build" / "book"
KINDS = {"notebooks": "Lesson", "solutions": "Solved workbook", "exercises": "Workbook"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# =====================================================================================
# Running one notebook
# =====================================================================================

@dataclass
class CellError:
    """Where and how a notebook stopped."""

    cell: int | None                 # index in the notebook's cells (markdown cells counted)
    cell_id: str | None
    ename: str
    evalue: str
    traceback: str = ""

    def __str__(self) -> str:
        where = "before any cell" if self.cell is None else \
            f"cell {self.cell}" + (f" (id {self.cell_id})" if self.cell_id else "")
        return f"{where} raised {self.ename}: {self.evalue}"


@dataclass
class NotebookRun:
    """One executed notebook: its outputs, wall time, the kernel's peak memory, and the error if any."""

    path: Path
    notebook: nbformat.NotebookNode
    seconds: float
    peak_rss_mb: float | None
    error: CellError | None = None
    warnings: list[str] = field(default_factory=list)
    network: list[dict] = field(default_factory=list)   # connections and lookups the network guard blocked

    @property
    def ok(self) -> bool:
        return self.error is None

    def check_messages(self) -> list[str]:
        """Every printed line that starts with ✅ or ❌ (the workbooks' check cells print one each), in order."""
        lines = []
        for cell in self.notebook.cells:
            for output in cell.get("outputs", []):
                text = output.get("text", "") if output.get("output_type") == "stream" else \
                    output.get("data", {}).get("text/plain", "") if "data" in output else ""
                text = "".join(text) if isinstance(text, list) else text
                lines += [line for line in (raw.strip().strip("'\"") for raw in text.splitlines())
                          if line.startswith(("✅", "❌"))]
        return lines

    def check_lines(self) -> tuple[int, int]:
        """How many printed lines start with ✅ and with ❌."""
        lines = self.check_messages()
        passed = sum(line.startswith("✅") for line in lines)
        return passed, len(lines) - passed

    def check_cells(self) -> int:
        """How many code cells are a workbook's check cells (``passed_N = check_<name>(...)``)."""
        return sum(bool(CHECK_CELL.search("".join(c.source))) for c in self.notebook.cells if c.cell_type == "code")

    def problems(self) -> list[str]:
        """What is wrong with this run, one line each; [] when it is sound.

        Every notebook: it ran to the end, and the network guard blocked nothing. A solved workbook
        (``solutions/``): every check cell printed ✅ and none ❌. A fill-in workbook (``exercises/``):
        every check cell printed ❌ for its blank stub, and none ✅.
        """
        where, problems = relative(self.path), []
        if self.error is not None:
            problems.append(f"{where}: {self.error}")
        for attempt in self.network:
            problems.append(f"{where}: the network guard blocked {attempt['call']}({attempt['target']}), called from "
                            + " -> ".join(attempt.get("stack", [])[:5]))
        kind, lines = self.path.parent.name, self.check_messages()
        passed = [line for line in lines if line.startswith("✅")]
        failed = [line for line in lines if line.startswith("❌")]
        if self.error is None and kind == "solutions":
            problems += [f"{where}: a check of the solved workbook failed: {line}" for line in failed]
            if len(passed) != self.check_cells():
                problems.append(f"{where}: {len(passed)} checks printed ✅, expected one per check cell "
                                f"({self.check_cells()})")
        if self.error is None and kind == "exercises":
            problems += [f"{where}: a check passed on a blank stub: {line}" for line in passed]
            if len(failed) != self.check_cells():
                problems.append(f"{where}: {len(failed)} checks printed ❌, expected one per check cell "
                                f"({self.check_cells()})")
        return problems


def relative(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, for messages."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _peak_rss_mb(pid: int | None, previous: float | None) -> float | None:
    """The kernel's peak resident memory so far: VmHWM on Linux, else the largest RSS sampled."""
    if pid is None:
        return previous
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import psutil

        info = psutil.Process(pid).memory_info()
        now = getattr(info, "peak_wset", info.rss) / 2**20          # Windows keeps its own peak
        return max(now, previous or 0.0)
    except Exception:  # noqa: BLE001 - memory is a nice-to-have; the run itself matters
        return previous


def execute_notebook(path: Path | str, timeout: int = 600, offline: bool = True) -> NotebookRun:
    """Run every cell of the notebook at ``path`` in a fresh ``python3`` kernel started in its folder.

    Never raises for an error inside the notebook: the run stops at the failing cell, as nbmake
    does, and ``NotebookRun.error`` says which cell and what it raised. ``timeout`` is per cell.
    With ``offline`` (the default) the kernel runs under :mod:`tooling.network_guard`: any connection
    outside loopback, or host name lookup, fails inside the notebook and is listed in
    ``NotebookRun.network``.
    """
    import tempfile

    from nbclient import NotebookClient

    from tooling import network_guard

    path = Path(path).resolve()
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    state: dict = {"cell": None, "peak": None}

    def pid() -> int | None:
        provisioner = getattr(client.km, "provisioner", None)
        return getattr(provisioner, "pid", None)

    def started(cell, cell_index, **_) -> None:
        state["cell"] = cell_index

    def finished(cell, cell_index, **_) -> None:
        state["peak"] = _peak_rss_mb(pid(), state["peak"])

    client.on_cell_execute, client.on_cell_executed = started, finished
    with tempfile.TemporaryDirectory(prefix="course-network-") as scratch:
        log = Path(scratch) / "blocked.jsonl"
        env = network_guard.kernel_env(log) if offline else dict(os.environ)
        error = None
        begin = time.perf_counter()
        try:
            client.execute(env=env)
        except Exception as exc:  # noqa: BLE001 - CellExecutionError, timeouts, a dead kernel: all reported
            error = _cell_error(notebook, state["cell"], exc)
        seconds = time.perf_counter() - begin
        blocked = network_guard.read_log(log)
    return NotebookRun(path, notebook, seconds, state["peak"], error, network=blocked)


def _cell_error(notebook: nbformat.NotebookNode, current: int | None, exc: Exception) -> CellError:
    """The first cell with an error output; else the cell that was running when ``exc`` came."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = _ANSI.sub("", "\n".join(output.get("traceback", [])))
                return CellError(index, cell.get("id"), output.get("ename", "Error"),
                                 output.get("evalue", ""), trace)
    cell_id = notebook.cells[current].get("id") if current is not None and current < len(notebook.cells) else None
    lines = _ANSI.sub("", str(exc)).strip().splitlines()
    return CellError(current, cell_id, type(exc).__name__, lines[-1] if lines else "")


# =====================================================================================
# Rendering one page
# =====================================================================================

_PAGE_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{#- nbconvert's JupyterLab page, minus everything that would fetch from a CDN. -#}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
nav.book-nav { display: flex; gap: 1.5em; padding: 0.6em 1em; margin-bottom: 1em; font-family: sans-serif;
               border-bottom: 1px solid #ddd; font-size: 14px; }
nav.book-nav.bottom { border-top: 1px solid #ddd; border-bottom: none; margin-top: 2em; }
nav.book-nav a { text-decoration: none; }
img.book-math { vertical-align: middle; }
div.book-math { text-align: center; margin: 0.8em 0; }
p.book-widget { font-style: italic; color: #666; }
</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.book_nav | default('') }}
{%- endblock body_header -%}
{%- block body_footer -%}
{{ (resources.book_nav | default('')).replace('class="book-nav"', 'class="book-nav bottom"') }}
{{ super() }}
{%- endblock body_footer -%}
"""

_FENCE_OR_CODE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.S)
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=\S)\$(?![\w$])")
_SIZED_DELIMITER = re.compile(r"\\(?:big|Big|bigg|Bigg)[lrm]?\s*")   # mathtext has no \Big


def tex_to_svg(tex: str) -> str:
    """A formula (TeX, no dollars) drawn by matplotlib's mathtext, as SVG text. Raises ValueError if it cannot."""
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    buffer = io.BytesIO()
    mathtext.math_to_image(f"${_SIZED_DELIMITER.sub('', tex.strip())}$", buffer, format="svg",
                           prop=FontProperties(size=12))
    return buffer.getvalue().decode("utf-8")


def _math_html(tex: str, display: bool, warnings: list[str]) -> str:
    try:
        svg = tex_to_svg(tex)
    except Exception as error:  # noqa: BLE001 - mathtext covers a subset of TeX: show the source instead
        warnings.append(f"formula left as TeX ({type(error).__name__}): {tex[:80]}")
        return f"<code>{html.escape(tex)}</code>"
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    img = f'<img class="book-math" alt="{html.escape(tex, quote=True)}" src="data:image/svg+xml;base64,{data}">'
    return f'<div class="book-math">{img}</div>' if display else img


def render_math(markdown: str, warnings: list[str] | None = None) -> str:
    """Replace ``$...$`` and ``$$...$$`` outside code spans and fences with inline SVG images."""
    warnings = [] if warnings is None else warnings
    pieces = _FENCE_OR_CODE.split(markdown)
    for i in range(0, len(pieces), 2):                     # even pieces are outside code
        text = _DISPLAY_MATH.sub(lambda m: _math_html(m.group(1), True, warnings), pieces[i])
        pieces[i] = _INLINE_MATH.sub(lambda m: _math_html(m.group(1), False, warnings), text)
    return "".join(pieces)


def static_copy(notebook: nbformat.NotebookNode, warnings: list[str] | None = None) -> nbformat.NotebookNode:
    """A copy of an executed notebook that renders without JavaScript from anywhere.

    Widget views are dropped (a static page cannot run them): an output that also carries a picture
    or HTML keeps that, one that carries nothing else becomes a short note. Formulas become SVG, and a
    Markdown link to a notebook (``[logit](glossary.ipynb#Logit)``) points at its page.
    """
    notebook = copy.deepcopy(notebook)
    state = notebook.metadata.pop("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = _NOTEBOOK_LINK.sub(r"\1.html\2)", render_math(cell.source, warnings))
            continue
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and WIDGET_VIEW in data:
                view = data.pop(WIDGET_VIEW)
                if not set(data) - {"text/plain"}:
                    if _is_progress_bar(view.get("model_id"), state):
                        continue                                # a finished tqdm bar says nothing on a page
                    output["data"] = {"text/html": '<p class="book-widget">An interactive widget stands here when '
                                                   "the notebook runs in Jupyter.</p>"}
            kept.append(output)
        if "outputs" in cell:
            cell.outputs = kept
    return notebook


def _is_progress_bar(model_id: str | None, state: dict, depth: int = 0) -> bool:
    """Whether the widget ``model_id`` is, or holds, a progress bar (as tqdm's notebook bars do)."""
    model = state.get(model_id or "", {})
    if "Progress" in model.get("model_name", ""):
        return True
    children = model.get("state", {}).get("children", []) if depth < 5 else []
    return any(_is_progress_bar(child.removeprefix("IPY_MODEL_"), state, depth + 1)
               for child in children if isinstance(child, str))


def render_page(notebook: nbformat.NotebookNode, title: str, nav_html: str = "",
                warnings: list[str] | None = None) -> str:
    """The HTML page of an executed notebook (see :func:`static_copy`), with ``nav_html`` above and below."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"book.html.j2": _PAGE_TEMPLATE})],
                            template_file="book.html.j2", embed_images=True)
    body, _ = exporter.from_notebook_node(static_copy(notebook, warnings),
                                          resources={"book_nav": nav_html, "metadata": {"name": title}})
    return body


# =====================================================================================
# The book
# =====================================================================================

def lesson_number(path: Path) -> str:
    """``01`` for ``01_residual_stream_induction_heads.ipynb``, ``03b`` for ``03b_feature_circuits.ipynb``."""
    return Path(path).name.split("_")[0]


def book_sources(root: Path = ROOT, dirs: tuple[str, ...] = BOOK_DIRS) -> list[Path]:
    """Every lesson and solved workbook, in reading order: the primer, lesson 1, its workbook, lesson 2, ...,
    then the pages every lesson links to (:data:`REFERENCE_PAGES`: the glossary)."""
    found = [p for d in dirs for p in (root / d).glob(NOTEBOOK_GLOB)]
    pages = [root / page for page in REFERENCE_PAGES if (root / page).exists()]
    return sorted(found, key=lambda p: (lesson_number(p), dirs.index(p.parent.name), p.name)) + pages


def notebook_title(notebook: nbformat.NotebookNode, fallback: str) -> str:
    """The text of the notebook's first ``#`` heading."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def page_path(source: Path) -> Path:
    """Where a notebook's page goes, relative to the book's folder: ``notebooks/01_x.html``."""
    return Path(source.parent.name) / (source.stem + ".html")


def _href(from_page: Path, to_page: Path) -> str:
    return os.path.relpath(to_page, from_page.parent).replace(os.sep, "/")


def _nav(pages: list[Path], i: int, titles: list[str]) -> str:
    here = pages[i]
    links = [f'<a href="{_href(here, Path("index.html"))}">Contents</a>']
    if i > 0:
        links.append(f'<a href="{_href(here, pages[i - 1])}">← {html.escape(titles[i - 1])}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{_href(here, pages[i + 1])}">{html.escape(titles[i + 1])} →</a>')
    return '<nav class="book-nav">' + "".join(links) + "</nav>"


def render_index(entries: list[tuple[Path, str, NotebookRun | None]]) -> str:
    """The contents page: one row per notebook, in order, with its kind, title and how its run went."""
    rows = []
    for source, title, run in entries:
        kind = KINDS.get(source.parent.name, source.parent.name)
        status = "" if run is None else \
            f"ran in {run.seconds:.0f} s" if run.ok else f"<strong>stopped: {html.escape(str(run.error))}</strong>"
        rows.append(f'<li class="{source.parent.name}"><span class="kind">{kind}</span> '
                    f'<a href="{page_path(source).as_posix()}">{html.escape(title)}</a> '
                    f'<span class="status">{status}</span></li>')
    built = time.strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Taking a transformer apart: the book</title>
<style type="text/css">
body {{ font-family: sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em; line-height: 1.5; color: #222; }}
ol {{ list-style: none; padding: 0; }}
li {{ padding: 0.35em 0; }}
li.notebooks {{ margin-top: 0.9em; font-size: 1.1em; }}
li.solutions {{ padding-left: 2em; }}
.kind {{ display: inline-block; min-width: 9.5em; color: #666; font-size: 0.9em; }}
.status {{ color: #888; font-size: 0.85em; margin-left: 0.6em; }}
</style>
</head>
<body>
<h1>Taking a transformer apart</h1>
<p>A hands-on course in mechanistic interpretability: every lesson and solved workbook, run from top to
bottom with their outputs, readable with no server and no internet. The fill-in workbooks are in
<code>exercises/</code> of the repository; open them in Jupyter to work through them.</p>
<ol>
{chr(10).join(rows)}
</ol>
<p class="status">Built {built} by <code>python3 course.py book</code>.</p>
</body>
</html>
"""


def build_book(sources: list[Path], out: Path = DEFAULT_OUT, timeout: int = 600, log=print) -> list[NotebookRun]:
    """Execute ``sources`` in order and write their pages and ``index.html`` under ``out``.

    A notebook that stops still gets a page (its outputs up to the failing cell) and an index entry
    saying where it stopped. Returns the runs in order.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sources = [Path(s).resolve() for s in sources]
    pages = [page_path(s) for s in sources]
    titles = [notebook_title(nbformat.read(s, as_version=4), s.stem) for s in sources]
    runs = []
    for i, source in enumerate(sources):
        log(f"▶ {relative(source)} ...")
        run = execute_notebook(source, timeout=timeout)
        target = out / pages[i]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_page(run.notebook, titles[i], _nav(pages, i, titles), run.warnings), encoding="utf-8")
        mark = "✅" if run.ok else "❌"
        peak = f", peak {run.peak_rss_mb:.0f} MB" if run.peak_rss_mb else ""
        log(f"{mark} {relative(source)}: {run.seconds:.0f} s{peak} → {relative(target)}"
            + ("" if run.ok else f"\n   {run.error}"))
        for warning in run.warnings:
            log(f"   ⚠️  {warning}")
        runs.append(run)
    (out / "index.html").write_text(render_index(list(zip(sources, titles, runs))), encoding="utf-8")
    return runs


# =====================================================================================
# Checking the book: pages present, in order, with outputs, and nothing fetched from the internet
# =====================================================================================

_EXTERNAL = re.compile(r"^\s*(?:https?:)?//", re.I)
_SCRIPT_IMPORT = re.compile(r"""(?:\bimport\s*\(\s*|\bimport\b[^;'"]*?\bfrom\s*|\bimport\s+|\brequire\s*\(\s*\[?\s*)"""
                            r"""["']((?:https?:)?//[^"']+)["']""")
_CSS_URL = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*["']?((?:https?:)?//[^"')\s]+)""", re.I)


class _PageScan(HTMLParser):
    """Collects what a page would load from elsewhere, its links, and a few counts."""

    LOADS = {"script": "src", "img": "src", "iframe": "src", "embed": "src", "source": "src", "video": "src",
             "audio": "src", "object": "data", "input": "src"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.external: list[str] = []
        self.links: list[str] = []
        self.images = 0
        self.outputs = 0
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        url = a.get(self.LOADS.get(tag, ""), "")
        if url and _EXTERNAL.match(url):
            self.external.append(f"<{tag} {self.LOADS[tag]}={url!r}>")
        if tag == "link" and _EXTERNAL.match(a.get("href", "")) and \
                set(a.get("rel", "").lower().split()) & {"stylesheet", "preload", "modulepreload", "import"}:
            self.external.append(f"<link href={a['href']!r}>")
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img" and a.get("src", "").startswith("data:image/") and "book-math" not in a.get("class", ""):
            self.images += 1
        if "jp-OutputArea-output" in a.get("class", "").split():
            self.outputs += 1
        if "style" in a:
            self.external += [f"style url {u!r}" for u in _CSS_URL.findall(a["style"])]
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.external += [f"script import {u!r}" for u in _SCRIPT_IMPORT.findall(data)]
        elif self._in == "style":
            self.external += [f"css {u!r}" for u in _CSS_URL.findall(data)]


def scan_page(text: str) -> _PageScan:
    scan = _PageScan()
    scan.feed(text)
    scan.close()
    return scan


def external_resources(text: str) -> list[str]:
    """What an HTML page would fetch from another host to render (scripts, styles, images, frames, imports).

    Plain links (``<a href>``) are not resources: a page reads fine without following them.
    """
    return scan_page(text).external


def check_book(out: Path, sources: list[Path], runs: list[NotebookRun] | None = None) -> list[str]:
    """Problems with the book under ``out`` for ``sources`` (in order); an empty list when it is sound.

    Checks: an index and one page per source; the index links the pages in the order of ``sources``;
    every page has outputs, and an inline picture wherever its notebook's outputs have one; no page
    needs anything from the internet.
    """
    out, problems = Path(out), []
    index = out / "index.html"
    if not index.exists():
        return [f"{relative(index)} is missing"]
    scan = scan_page(index.read_text(encoding="utf-8"))
    expected = [page_path(Path(s)).as_posix() for s in sources]
    linked = [link for link in scan.links if link in expected]
    if linked != expected:
        problems.append(f"index.html links {linked}, expected {expected} in that order")
    problems += [f"index.html needs {what}" for what in scan.external]
    for i, source in enumerate(sources):
        page = out / expected[i]
        if not page.exists():
            problems.append(f"{relative(source)} has no page ({expected[i]})")
            continue
        scan = scan_page(page.read_text(encoding="utf-8"))
        problems += [f"{expected[i]} needs {what} from the internet" for what in scan.external]
        notebook = runs[i].notebook if runs else None
        has_code = any(c.cell_type == "code" for c in nbformat.read(source, as_version=4).cells)
        if scan.outputs == 0 and has_code:
            problems.append(f"{expected[i]} shows no outputs")
        has_picture = notebook is not None and any(
            "image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {})
            for c in notebook.cells for o in c.get("outputs", []))
        if has_picture and scan.images == 0:
            problems.append(f"{expected[i]} lost its pictures")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to include (default: notebooks/ and solutions/)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {relative(DEFAULT_OUT)}")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    args = parser.parse_args(argv)
    sources = [p.resolve() for p in args.notebooks] or book_sources()
    if not sources:
        print("❌ no notebooks found in notebooks/ or solutions/")
        return 1
    started = time.perf_counter()
    runs = build_book(sources, args.out)
    problems = [problem for run in runs for problem in run.problems()] + check_book(args.out, sources, runs)
    minutes, seconds = divmod(round(time.perf_counter() - started), 60)
    if problems:
        print(f"\n❌ The book has {len(problems)} problem(s):")
        for problem in problems:
            print(f"   {problem}")
        for run in runs:
            if not run.ok and run.error.traceback:
                tail = "\n".join(run.error.traceback.splitlines()[-15:])
                print(f"\n--- {relative(run.path)}, {run.error} ---\n" + tail)
        return 1
    print(f"\n✅ {len(runs)} pages in {minutes} min {seconds} s; "
          f"open {relative(args.out / 'index.html')} in a browser.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
