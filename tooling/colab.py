"""The first cell of every notebook: on Google Colab, fetch the course and install its pins. Standard library only.

    python -m tooling.colab            # write CELL_SOURCE as the first cell of notebooks/ and solutions/
    python -m tooling.colab --check    # exit 1, listing notebooks whose first cell is not CELL_SOURCE

then ``python -m tooling.make_exercises`` copies the cell into ``exercises/``. On Colab the
notebook arrives alone, without ``helpers/`` or ``models/``, so the cell cannot import anything from
the course: it is self-contained, and this module is the one place its text lives (a test asserts
that every notebook starts with it). Anywhere but Colab the cell only checks ``sys.modules`` and an
environment variable, then does nothing.

``GITHUB_REPO`` is where the course is published: the cell clones it, and the README's "Open in
Colab" links point into it. Change it here if the course moves, rerun this command and
``tooling/make_exercises.py``, and update the README links (a test checks they agree).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tooling.make_exercises import NOTEBOOK_GLOB, cell_text, dumps

# owner/name on GitHub: ASSUMED, set it where the course is published
GITHUB_REPO = "mechinterp-course/mechinterp-course"
BRANCH = "main"
CLONE_DIR = "/content/mechinterp-course"               # where the cell clones the course on Colab
CELL_ID = "colab-setup"
NOTEBOOK_DIRS = ("notebooks", "solutions")              # exercises/ is generated from solutions/
ROOT = Path(__file__).resolve().parent.parent

CELL_SOURCE = f"""\
# Google Colab only: fetch the course and install its pinned packages (a few minutes, once a session).
# Anywhere else (your laptop, JupyterHub, Binder) this cell does nothing.
import os, sys
if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:
    import subprocess
    if not os.path.isdir("{CLONE_DIR}"):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{BRANCH}",
                        "https://github.com/{GITHUB_REPO}.git",
                        "{CLONE_DIR}"], check=True)
    os.chdir("{CLONE_DIR}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", "requirements.txt"], check=True)
    sys.path.insert(0, "{CLONE_DIR}")
    print("Course installed. If an import fails below: Runtime > Restart session, then run all again.")"""


def colab_url(path: str) -> str:
    """The "Open in Colab" address of a notebook, ``path`` relative to the repository root."""
    return f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/{BRANCH}/{path}"


def has_colab_cell(notebook: dict[str, Any]) -> bool:
    """True when the notebook's first cell is exactly the Colab cell."""
    cells = notebook.get("cells", [])
    return bool(cells) and cells[0].get("cell_type") == "code" and cell_text(cells[0]) == CELL_SOURCE


def with_colab_cell(notebook: dict[str, Any]) -> dict[str, Any]:
    """Return ``notebook`` with the Colab cell first: an older version of it is replaced, never duplicated."""
    cell = {"cell_type": "code", "execution_count": None, "id": CELL_ID, "metadata": {}, "outputs": [],
            "source": CELL_SOURCE.splitlines(keepends=True)}
    cells = [c for c in notebook.get("cells", []) if c.get("id") != CELL_ID]
    return {**notebook, "cells": [cell, *cells]}


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted(p for d in NOTEBOOK_DIRS for p in (root / d).glob(NOTEBOOK_GLOB))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="list notebooks without the cell and exit 1")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    missing = []
    for path in notebooks(args.root):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if has_colab_cell(notebook):
            continue
        missing.append(path)
        if not args.check:
            path.write_text(dumps(with_colab_cell(notebook)), encoding="utf-8", newline="\n")
            print(f"wrote {path}")
    if args.check:
        for path in missing:
            print(f"no Colab cell first: {path}")
        return 1 if missing else 0
    if missing:
        print("Now run `python -m tooling.make_exercises` to copy the cell into exercises/.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
