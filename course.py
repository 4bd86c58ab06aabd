#!/usr/bin/env python3
"""Set up and run the mechanistic interpretability course. Standard library only.

    python3 course.py lab        # create .venv if missing, install the pins, open JupyterLab
    python3 course.py test       # create .venv if missing, install the pins, run every test
    python3 course.py preflight  # create .venv if missing, then check this machine in seconds
    python3 course.py book       # run every lesson and solved workbook, write build/book/ (HTML, offline)
    python3 course.py timings    # time every notebook, write docs/timings.md and the README's table
    python3 course.py guide      # refresh docs/WORKSHOP.md's lesson table and discussion prompts

All are idempotent: the environment lives in ``.venv`` at the repository root and is
reinstalled only when ``requirements.txt`` or ``pyproject.toml`` change.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".course-installed"
PINNED_FILES = ("requirements.txt", "pyproject.toml")


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
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def ensure_environment() -> Path:
    """Create ``.venv`` and install the pins unless it is already up to date."""
    if sys.version_info[:2] != (3, 11):
        print(f"⚠️  The course is pinned and tested on Python 3.11; this is {sys.version.split()[0]}.")
    python = venv_python()
    if not python.exists():
        print(f"Creating the virtual environment in {VENV} ...", flush=True)
        if run([sys.executable, "-m", "venv", VENV]) != 0:
            sys.exit("Could not create .venv: is the 'venv' module installed (apt install python3-venv)?")
    if STAMP.exists() and STAMP.read_text().strip() == requirements_digest():
        print("Environment .venv is up to date.", flush=True)
        return python
    started = time.time()
    print("Installing the pinned packages (a few minutes the first time) ...", flush=True)
    if run([python, "-m", "pip", "install", "--disable-pip-version-check", "-r", "requirements.txt"]) != 0:
        sys.exit("pip could not install requirements.txt; see the error above.")
    if run([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", "-e", "."]) != 0:
        sys.exit("pip could not install the course helpers (pip install -e .).")
    STAMP.write_text(requirements_digest() + "\n")
    print(f"Environment ready in {time.time() - started:.0f} s.", flush=True)
    return python


def lab(python: Path, extra: list[str]) -> int:
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers
    return run([python, "-m", "jupyter", "lab", "--notebook-dir", ROOT, *as_root, *extra])


def test(python: Path, extra: list[str]) -> int:
    """Unit tests, then every lesson and solved workbook with nbmake, then the rendered book."""
    started = time.time()
    code = run([python, "-m", "pytest", "tests", *extra])
    if code == 5:
        print("❌ pytest collected no unit tests in tests/: the suite is misconfigured.")
        return 1
    if code != 0:
        return code
    notebook_dirs = [d for d in ("notebooks", "solutions") if any((ROOT / d).glob("*.ipynb"))]
    if not notebook_dirs:
        print("No notebooks in notebooks/ or solutions/ yet: nothing for nbmake to run, no book to build.")
    else:
        code = run([python, "-m", "pytest", "--nbmake", "--nbmake-kernel=python3",
                    "--nbmake-timeout=600", *notebook_dirs, *extra])
        if code == 5:  # no notebook collected although some exist: treat as an error
            print("❌ nbmake collected no notebooks although some exist.")
            return 1
        if code != 0:
            return code
        # The rendered book: every lesson and solved workbook run again, written as offline HTML to
        # build/book/, and checked by the same tests that check the builder.
        code = run([python, "-m", "pytest", "tests/test_book.py", "-k", "full_book", *extra],
                   env={**os.environ, "COURSE_BOOK": "1"})
        if code == 5:
            print("❌ tests/test_book.py collected no full-book tests.")
            return 1
        if code != 0:
            return code
    print(f"All tests passed in {time.time() - started:.0f} s.")
    return 0


def preflight(python: Path, extra: list[str]) -> int:
    """One line per check (Python, pins, model files, models, circuitsvis, widgets, memory)."""
    return run([python, "-m", "helpers.preflight", *extra])


def book(python: Path, extra: list[str]) -> int:
    """Run every lesson and solved workbook; write them as HTML with outputs to build/book/."""
    return run([python, "-m", "helpers.book", *extra])


def timings(python: Path, extra: list[str]) -> int:
    """Time every notebook; write docs/timings.json and .md, the README table and the workshop guide's."""
    return run([python, "-m", "helpers.timings", *extra])


def guide(python: Path, extra: list[str]) -> int:
    """Rewrite the generated parts of docs/WORKSHOP.md (lesson table, discussion prompts)."""
    return run([python, "-m", "helpers.workshop", *extra])


def main(argv: list[str]) -> int:
    commands = {"lab": lab, "test": test, "preflight": preflight, "book": book, "timings": timings, "guide": guide}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    python = ensure_environment()
    return commands[argv[0]](python, argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
