"""Lesson 1 in a real browser: JupyterLab driven by Debian's Chromium through Playwright.

What a learner sees, checked end to end: JupyterLab starts on a free local port; headless Chromium
opens lesson 1, runs every cell from the Run menu and waits for the kernel to finish; then

* no cell shows an error (checked in the page, and in the notebook saved from the page);
* the circuitsvis attention view has rendered (its React tree drew elements inside its div);
* choosing another head in the ipywidgets viewer (``helpers.plotting.attention_viewer``) redraws
  the plot.

Screenshots land in ``build/browser/``. The test drives the Chromium named by ``$COURSE_CHROMIUM``
(default ``/usr/bin/chromium``). ``python3 course.py test`` sets it: the system's Chromium when there is
one (``.ci/run`` installs Debian's with apt), else the browser of Playwright's own download
(``python -m playwright install chromium``) where the network allows it. Without either, the test is
skipped with a warning that says so.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "01_residual_stream_induction_heads.ipynb"
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "build" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 120        # JupyterLab up and answering
PAGE_LOAD_S = 120           # the notebook open and its kernel idle
RUN_ALL_S = 600             # every cell run (about 30 s on an idle 2-core machine)
TOKEN = "course-browser-test-" + os.urandom(8).hex()


def _skip_loudly(reason: str) -> None:
    message = f"BROWSER TEST SKIPPED: {reason}"
    warnings.warn(message, stacklevel=2)
    print(f"\n⚠️  {message}", file=sys.stderr)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_settings(settings: Path) -> None:
    """JupyterLab user settings for a quiet, deterministic page: every cell in the DOM, no news toast."""
    for name, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    }.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def _stop(server: subprocess.Popen, log_file) -> None:
    """Stop JupyterLab and its kernels: the server's own process group, which this test created."""
    if server.poll() is None:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(server.pid, sig)     # the group of the server we started (start_new_session)
            except ProcessLookupError:
                break
            try:
                server.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    with contextlib.suppress(ProcessLookupError, PermissionError):   # kernels share the group: reap stragglers
        os.killpg(server.pid, signal.SIGKILL)
    log_file.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A JupyterLab server on a free port, serving a scratch copy of lesson 1; stopped on the way out."""
    if not CHROMIUM.exists():
        _skip_loudly(f"{CHROMIUM} is missing. Install Chromium (`apt-get install -y chromium`, as .ci/run does, "
                     "or `python -m playwright install chromium` where the network allows), or point "
                     "COURSE_CHROMIUM at one; the real-browser check of lesson 1 did NOT run.")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        pytest.fail(f"playwright is pinned in requirements.txt but cannot be imported: {error}")
    home = tmp_path_factory.mktemp("browser")
    work, settings = home / "work", home / "lab-settings"
    work.mkdir()
    shutil.copy(LESSON, work / LESSON.name)    # the committed notebook is never opened, so never saved
    _write_settings(settings)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*"):
        old.unlink()
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws"),
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_DATA_DIR": str(home / "data"), "PYTHONDONTWRITEBYTECODE": "1"}
    port = _free_port()
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    log_path = ARTIFACTS / "jupyterlab.log"
    log_file = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by _stop
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--notebook-dir={work}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", *as_root],
        cwd=work, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode} before answering; see {log_path}:\n"
                            + log_path.read_text(encoding="utf-8")[-3000:])
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on port {port} within {SERVER_START_S} s; see {log_path}")
            time.sleep(0.5)
        yield {"url": f"{base}/lab/tree/{LESSON.name}?token={TOKEN}", "work": work, "log": log_path}
    finally:
        _stop(server, log_file)


# Runs in the page: every code cell's prompt text, "[ ]:" (never run), "[*]:" (queued or running) or "[12]:".
_PROMPTS = "els => els.map(e => e.textContent.trim())"
# Runs in the page: the outputs that show a Python traceback. JupyterLab draws an error exactly like
# stderr (same mime type), so the traceback header is what tells them apart.
_ERRORS = """els => els.filter(e => e.textContent.includes('Traceback (most recent call last)'))
                      .map(e => e.textContent.slice(0, 1500))"""
# Runs in the page: what the first circuitsvis view drew (React children, canvases and their colours).
_CIRCUITSVIS = """() => {
  const views = [...document.querySelectorAll('div[id^="circuits-vis-"]')];
  if (!views.length) return null;
  const view = views[0];
  const canvases = [...view.querySelectorAll('canvas')].map(c => {
    const ctx = c.getContext('2d');
    if (!ctx || !c.width || !c.height) return 0;
    const data = ctx.getImageData(0, 0, c.width, c.height).data, colours = new Set();
    for (let i = 0; i < data.length; i += 4) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return colours.size;
  });
  return {count: views.length, id: view.id, elements: view.querySelectorAll('*').length,
          height: view.getBoundingClientRect().height, text: view.innerText.slice(0, 200), canvases};
}"""


def _accept_kernel_dialog(page) -> None:
    """On a busy machine JupyterLab sometimes asks which kernel to start ("Select Kernel") although the
    notebook names one; the dialog then blocks the Run menu. Accept the default (Python 3) if it shows."""
    try:
        page.wait_for_selector(".jp-Dialog", timeout=3000)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: no dialog, nothing to do
        return
    page.click(".jp-Dialog .jp-mod-accept")
    page.wait_for_selector(".jp-Dialog", state="detached", timeout=10_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=PAGE_LOAD_S * 1000)


def _wait(page, what: str, seconds: float, check) -> None:
    """Poll ``check()`` until it is truthy; fail with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f} s waiting for {what} (page: {ARTIFACTS}/failure.png, "
                        f"server log: {ARTIFACTS}/jupyterlab.log)")
        page.wait_for_timeout(500)


@pytest.fixture(scope="module")
def ran(lab: dict) -> Iterator[dict]:
    """Open lesson 1 in Chromium, run all cells from the Run menu, save; yield the page and what was seen."""
    from playwright.sync_api import sync_playwright

    timings: dict[str, float] = {}
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                                             timeout=60_000)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        try:
            started = time.monotonic()
            page.goto(lab["url"], timeout=PAGE_LOAD_S * 1000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=PAGE_LOAD_S * 1000)
            _accept_kernel_dialog(page)
            prompts = page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt", _PROMPTS)
            assert prompts and all(p == "[ ]:" for p in prompts), f"lesson 1 opened in an unexpected state: {prompts}"
            timings["open"] = time.monotonic() - started

            started = time.monotonic()
            page.click(".lm-MenuBar-itemLabel:text-is('Run')")
            page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
            cells = ".jp-CodeCell .jp-InputPrompt"
            _wait(page, "the first cell to start", 60,
                  lambda: any(p != "[ ]:" for p in page.eval_on_selector_all(cells, _PROMPTS)))

            def finished() -> bool:     # Run All stops at the first error, leaving later cells at "[ ]:"
                if page.get_attribute(".jp-Notebook-ExecutionIndicator", "data-status") != "idle":
                    return False
                return "[*]:" not in page.eval_on_selector_all(cells, _PROMPTS)

            _wait(page, "Run All Cells to finish (kernel idle, no cell queued)", RUN_ALL_S, finished)
            page.wait_for_timeout(1000)                  # let the last outputs and widget views render
            _wait(page, "Run All Cells to finish (kernel idle, no cell queued)", 60, finished)
            timings["run_all"] = time.monotonic() - started
            page.screenshot(path=ARTIFACTS / "01_after_run_all.png")

            saved = lab["work"] / LESSON.name
            unsaved = saved.stat().st_mtime_ns
            page.keyboard.press("Control+s")             # save from the page, to read every output back
            _wait(page, "the notebook to be saved (Ctrl+S)", 60, lambda: saved.stat().st_mtime_ns != unsaved)
            page.wait_for_timeout(500)
            yield {"page": page, "timings": timings, "saved": json.loads(saved.read_text(encoding="utf-8"))}
        except BaseException:
            page.screenshot(path=ARTIFACTS / "failure.png")
            raise
        finally:
            (ARTIFACTS / "console.log").write_text("\n".join(console) + "\n", encoding="utf-8")
            print(f"\nbrowser test timings: {', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}")
            browser.close()


def test_every_cell_runs_without_an_error(ran: dict) -> None:
    page = ran["page"]
    tracebacks = page.eval_on_selector_all(".jp-OutputArea-output", _ERRORS)
    assert not tracebacks, f"{len(tracebacks)} cell(s) show an error in the page; first:\n{tracebacks[0]}"
    saved_errors = [(index, output.get("ename"), output.get("evalue"))
                    for index, cell in enumerate(ran["saved"]["cells"]) if cell["cell_type"] == "code"
                    for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not saved_errors, f"the notebook saved from the page holds errors (cell, name, message): {saved_errors}"
    prompts = page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt", _PROMPTS)
    not_run = [index for index, prompt in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", prompt)]
    assert not not_run, f"code cells {not_run} have no execution count after Run All Cells: {prompts}"
    counts = [cell.get("execution_count") for cell in ran["saved"]["cells"] if cell["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"execution counts in the saved notebook: {counts}"


def test_circuitsvis_attention_view_is_drawn(ran: dict) -> None:
    page = ran["page"]
    view = page.evaluate(_CIRCUITSVIS)
    assert view is not None, "no circuitsvis element (div id circuits-vis-*) in the page"
    assert view["count"] == 2, f"lesson 1 draws one circuitsvis view per layer (2), found {view['count']}"
    assert view["elements"] > 20 and view["height"] > 200, f"the circuitsvis view is (nearly) empty: {view}"
    assert "Head Selector" in view["text"], f"the circuitsvis view did not render its head selector: {view['text']!r}"
    drawn = [colours for colours in view["canvases"] if colours > 10]
    assert len(drawn) >= 8, f"circuitsvis drew {len(drawn)} canvases with content (want one per head and a zoom): " \
                            f"colours per canvas {view['canvases']}"
    page.locator(f"#{view['id']}").screenshot(path=ARTIFACTS / "02_circuitsvis_attention_heads.png")


def test_changing_the_head_widget_redraws_the_plot(ran: dict) -> None:
    page = ran["page"]
    viewer = page.locator(".widget-vbox", has=page.locator(".widget-dropdown")).first
    assert viewer.count() == 1, "no attention_viewer widget (a VBox with layer/head drop-downs) in the page"
    head = viewer.locator(".widget-dropdown", has_text="head").locator("select")
    image = viewer.locator(".widget-output img")
    _wait(page, "the attention viewer's plot", 30, lambda: image.count() == 1)
    before = image.get_attribute("src")
    assert before and len(before) > 5000, "the attention viewer shows no plot"
    viewer.screenshot(path=ARTIFACTS / "03_attention_viewer_before.png")
    current = head.input_value()
    labels = head.locator("option").all_inner_texts()
    other = next(label for label in labels if label.strip() != head.locator("option:checked").inner_text().strip())
    head.select_option(label=other)
    _wait(page, f"the plot to change after choosing head {other} (was option {current})", 30,
          lambda: image.count() == 1 and image.get_attribute("src") not in (None, before))
    after = image.get_attribute("src")
    assert len(after) > 5000, "the attention viewer's new plot is empty"
    page.wait_for_timeout(300)
    viewer.screenshot(path=ARTIFACTS / "04_attention_viewer_after.png")
