#!/usr/bin/env python3
"""Set up and run the mechanistic interpretability course. Standard library only.

    python3 course.py lab        # create .venv if missing, install the pins, open JupyterLab
    python3 course.py test       # create .venv if missing, install the pins, run every test
    python3 course.py fragility  # the claim tests on perturbed weights, 3 seeds x 1 and 2 threads
    python3 course.py preflight  # create .venv if missing, then check this machine in seconds
    python3 course.py book       # run every lesson and solved workbook, write build/book/ (HTML, offline)
    python3 course.py timings    # time every notebook, write docs/timings.md and the README's table
    python3 course.py guide      # refresh docs/WORKSHOP.md's lesson table, one-day plan and discussion prompts
    python3 course.py reading    # words, code cells, exercises and estimated first-read time of each notebook
    python3 course.py exercises  # regenerate exercises/ from solutions/ (--check: report stale ones only)
    python3 course.py nbgrader DIR   # write an nbgrader course in DIR from solutions/, and its release/
    python3 course.py nbgrader DIR autograde lesson1   # any nbgrader command, run in DIR, offline
    python3 course.py progress [WORKBOOK ...]   # run workbooks, print which exercises pass (--csv FILE)

All are idempotent: the environment lives in ``.venv`` at the repository root and is
reinstalled only when ``requirements.txt`` or ``pyproject.toml`` change.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".course-installed"
PINNED_FILES = ("requirements.txt", "pyproject.toml")
DEV_REQUIREMENTS = "requirements-dev.txt"
DEV_STAMP = VENV / ".course-dev-installed"
NBGRADER_REQUIREMENTS = "requirements-nbgrader.txt"
NBGRADER_STAMP = VENV / ".course-nbgrader-installed"


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def requirements_digest() -> str:
    digest = hashlib.sha256()
    for name in PINNED_FILES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def run(cmd: list[str | Path], **kwargs) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], **{"cwd": ROOT, **kwargs})


def ensure_environment(dev: bool = False) -> Path:
    """Create ``.venv`` and install the pins unless it is already up to date.

    With ``dev`` (the test command), ``requirements-dev.txt`` too: the linter and the type checker.
    """
    if sys.version_info[:2] != (3, 11):
        print(f"⚠️  The course is pinned and tested on Python 3.11; this is {sys.version.split()[0]}.")
    python = venv_python()
    if not python.exists():
        print(f"Creating the virtual environment in {VENV} ...", flush=True)
        if run([sys.executable, "-m", "venv", VENV]) != 0:
            sys.exit("Could not create .venv: is the 'venv' module installed (apt install python3-venv)?")
    if STAMP.exists() and STAMP.read_text().strip() == requirements_digest():
        print("Environment .venv is up to date.", flush=True)
        return ensure_dev_tools(python) if dev else python
    started = time.time()
    print("Installing the pinned packages (a few minutes the first time) ...", flush=True)
    if run([python, "-m", "pip", "install", "--disable-pip-version-check", "-r", "requirements.txt"]) != 0:
        sys.exit("pip could not install requirements.txt; see the error above.")
    if run([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", "-e", "."]) != 0:
        sys.exit("pip could not install the course helpers (pip install -e .).")
    STAMP.write_text(requirements_digest() + "\n")
    print(f"Environment ready in {time.time() - started:.0f} s.", flush=True)
    return ensure_dev_tools(python) if dev else python


def ensure_dev_tools(python: Path) -> Path:
    """Install ``requirements-dev.txt`` (ruff, mypy) into ``.venv`` unless that is already done."""
    return ensure_extra(python, DEV_REQUIREMENTS, DEV_STAMP, "the test tools")


def ensure_nbgrader(python: Path) -> Path:
    """Install the optional nbgrader extra, ``requirements-nbgrader.txt``, unless that is already done.

    ``-c requirements.txt``: pip may add packages beside the pins, never change one of them.
    """
    return ensure_extra(python, NBGRADER_REQUIREMENTS, NBGRADER_STAMP, "nbgrader", "-c", "requirements.txt")


def ensure_extra(python: Path, requirements: str, stamp: Path, what: str, *pip_args: str) -> Path:
    """``pip install -r requirements`` into ``.venv`` unless ``stamp`` records that file as installed."""
    digest = hashlib.sha256((ROOT / requirements).read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == digest:
        return python
    print(f"Installing {what} ({requirements}) ...", flush=True)
    if run([python, "-m", "pip", "install", "--disable-pip-version-check", "-r", requirements, *pip_args]) != 0:
        sys.exit(f"pip could not install {requirements}; see the error above.")
    stamp.write_text(digest + "\n")
    return python


def lab(python: Path, extra: list[str]) -> int:
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers
    return run([python, "-m", "jupyter", "lab", "--notebook-dir", ROOT, *as_root, *extra])


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser(python: Path) -> str | None:
    """A Chromium for the browser test: $COURSE_CHROMIUM, the system's, or Playwright's own download.

    Playwright's download (``python -m playwright install chromium``, about 170 MB) is tried only when
    the system has none; where the network refuses it, the browser test skips with its loud reason.
    """
    import shutil

    if os.environ.get("COURSE_CHROMIUM"):
        return os.environ["COURSE_CHROMIUM"]
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    print("No Chromium on this machine: trying Playwright's own download for the browser test ...", flush=True)
    try:
        installed = subprocess.call([str(python), "-m", "playwright", "install", "chromium"], cwd=ROOT,
                                    timeout=600) == 0
    except subprocess.TimeoutExpired:
        installed = False
    if installed:
        where = subprocess.run([str(python), "-c", "from playwright.sync_api import sync_playwright\n"
                                "with sync_playwright() as p: print(p.chromium.executable_path)"],
                               capture_output=True, text=True, cwd=ROOT)
        path = where.stdout.strip().splitlines()[-1] if where.returncode == 0 and where.stdout.strip() else ""
        if path and Path(path).exists():
            return path
    print("⚠️  No Chromium found and Playwright could not download one: the browser test will be SKIPPED.",
          flush=True)
    return None


def pytest_command(python: Path, args: list[str]) -> list[str | Path]:
    return [python, "-m", "pytest", "-p", "no:randomly", *args]


def report_exit(code: int, what: str) -> int:
    """pytest's exit code, except that 5 (nothing collected) is a failure here too."""
    if code == 5:
        print(f"❌ pytest collected no tests for {what}: the suite is misconfigured.")
        return 1
    return code


def test(python: Path, extra: list[str]) -> int:
    """Every test, in two lanes that share the machine's cores (each notebook is executed once).

    Lane 1, shown live: ``pytest tests`` (unit tests, and the claims of the prose on the weights as
    stored, on 1 thread), then the claim tests again with the weights perturbed (seed 1) on 2 threads.
    Lane 2, logged to ``build/test-logs/notebooks.log``: every lesson, solved workbook and fill-in
    workbook executed once under the network guard (the solved workbooks' checks all ✅, the fill-in
    workbooks' all ❌ for their stubs), the book built from those runs, then the perturbed claim tests
    on 1 thread. ``python3 course.py fragility`` runs the fragility check with every seed.
    """
    started = time.time()
    ensure_nbgrader(python)                               # tests/test_nbgrader.py grades with the real nbgrader
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}    # two lanes on few cores: idle threads must not spin
    browser = find_browser(python)
    if browser:
        env["COURSE_CHROMIUM"] = browser

    def threads(n: int, **more: str) -> dict[str, str]:
        """The lanes share the cores: a step runs on one thread unless its thread count is the point."""
        return {**env, "OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n), "COURSE_TORCH_THREADS": str(n), **more}

    claims = ["-m", "claim", "-q", "tests"]
    lanes = [
        [(pytest_command(python, ["tests", *extra]), "the unit tests and claims in tests/", threads(1)),
         (pytest_command(python, claims), "the claims on perturbed weights, 2 threads",
          threads(2, COURSE_WEIGHT_NOISE="1"))],
        [(pytest_command(python, ["tests/test_book.py", "-k", "full_book", "-v", *extra]),
          "every notebook once, offline, and the book", threads(1, COURSE_BOOK="1")),
         (pytest_command(python, claims), "the claims on perturbed weights, 1 thread",
          threads(1, COURSE_WEIGHT_NOISE="1"))],
    ]
    logs = ROOT / "build" / "test-logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path, plan, outcome = logs / "notebooks.log", logs / "lane2.json", logs / "lane2.results.json"
    outcome.unlink(missing_ok=True)
    plan.write_text(json.dumps([[[str(c) for c in command], what, step_env] for command, what, step_env in lanes[1]]))
    print(f"Lane 2 (notebooks, book, claims on 1 thread) runs beside this one; its log: {log_path.relative_to(ROOT)}",
          flush=True)
    background = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_lane", str(plan), str(log_path),
                                   str(outcome)], cwd=ROOT)
    results = run_lane(lanes[0], started)
    background.wait()
    results += [tuple(r) for r in json.loads(outcome.read_text())] if outcome.exists() else \
        [("1", "lane 2 (it stopped without reporting)", "")]
    failed = [(code, what) for code, what, _ in results if code != "0"]
    print("\nSummary:")
    for code, what, seconds in results:
        print(f"  {'✅' if code == '0' else '❌'} {what}" + (f" ({seconds} s)" if seconds else ""))
    if failed:
        print(f"❌ {len(failed)} step(s) failed after {time.time() - started:.0f} s. Lane 2's full output: "
              f"{log_path.relative_to(ROOT)}")
        if any("notebook" in what or "1 thread" in what for _, what in failed):
            print(log_path.read_text(encoding="utf-8", errors="replace")[-6000:])
        return 1
    print(f"All tests passed in {time.time() - started:.0f} s.")
    return 0


def run_lane(steps: list, started: float, log=None) -> list[tuple[str, str, str]]:
    """Run ``steps`` (command, description, env) one after the other; (exit code, description, seconds) each."""
    results = []
    for command, what, env in steps:
        begin = time.time()
        print(f"▶ {what} ({begin - started:.0f} s in)", file=log or sys.stdout, flush=True)
        code = subprocess.call([str(c) for c in command], cwd=ROOT, env=env, stdout=log, stderr=log)
        code = report_exit(code, what)
        results.append((str(code), what, f"{time.time() - begin:.0f}"))
        print(f"{'✅' if code == 0 else '❌'} {what}: exit code {code} after {time.time() - begin:.0f} s",
              file=log or sys.stdout, flush=True)
    return results


def _lane(plan: str, log_path: str, outcome: str) -> int:
    """The background lane of ``test``: a process of its own, so that its output goes to its log."""
    steps = json.loads(Path(plan).read_text())
    with open(log_path, "w", encoding="utf-8") as log:
        results = run_lane(steps, time.time(), log)
    Path(outcome).write_text(json.dumps(results))
    return 0


def fragility(python: Path, extra: list[str]) -> int:
    """Every claim test with the weights perturbed (3 seeds) on 1 and 2 threads (tooling/fragility.py)."""
    return run([python, "-m", "tooling.fragility", *extra])


def exercises(python: Path, extra: list[str]) -> int:
    """Regenerate the fill-in workbooks in exercises/ from solutions/ (``--check``: only report stale ones)."""
    return run([python, "-m", "tooling.make_exercises", *extra])


def preflight(python: Path, extra: list[str]) -> int:
    """One line per check (Python, pins, model files, models, circuitsvis, widgets, memory)."""
    return run([python, "-m", "tooling.preflight", *extra])


def book(python: Path, extra: list[str]) -> int:
    """Run every lesson and solved workbook; write them as HTML with outputs to build/book/."""
    return run([python, "-m", "tooling.book", *extra])


def timings(python: Path, extra: list[str]) -> int:
    """Time every notebook; write docs/timings.json and .md, the README table and the workshop guide's."""
    return run([python, "-m", "tooling.timings", *extra])


def nbgrader(python: Path, extra: list[str]) -> int:
    """Write an nbgrader course in DIR from solutions/ and generate its release/; or run ``nbgrader ...`` in DIR.

    ``nbgrader DIR``: DIR/source/lessonN/ (every exercise an autograded answer, every check cell its
    autograder tests, 1 point each), DIR/nbgrader_config.py when missing, then ``nbgrader
    generate_assignment`` for each lesson. ``nbgrader DIR <command ...>``: that nbgrader command, run in DIR
    with .venv's tools on PATH and under the network guard (see tooling/nbgrader_source.py).
    """
    ensure_nbgrader(python)
    return run([python, "-m", "tooling.nbgrader_source", *extra], cwd=Path.cwd())   # DIR as the caller wrote it


def progress(python: Path, extra: list[str]) -> int:
    """Run workbooks (default: exercises/) and print which exercises pass, with the checks' lines and times."""
    return run([python, "-m", "tooling.progress", *extra], cwd=Path.cwd())   # paths as the caller wrote them


def guide(python: Path, extra: list[str]) -> int:
    """Rewrite the generated parts of docs/WORKSHOP.md (lesson table, discussion prompts)."""
    return run([python, "-m", "tooling.workshop", *extra])


def reading(python: Path, extra: list[str]) -> int:
    """Print how long each notebook takes to read (``--check``: exit 1 on a lesson over its budget)."""
    return run([python, "-m", "tooling.reading", *extra])


def main(argv: list[str]) -> int:
    if argv[:1] == ["_lane"]:
        return _lane(*argv[1:4])
    commands = {"lab": lab, "test": test, "fragility": fragility, "preflight": preflight, "book": book,
                "timings": timings, "guide": guide, "exercises": exercises, "nbgrader": nbgrader,
                "progress": progress, "reading": reading}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    python = ensure_environment(dev=argv[0] in ("test", "fragility"))
    return commands[argv[0]](python, argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
