"""Every notebook starts with the Colab cell: it installs the pins on Colab and does nothing anywhere else."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from tooling import colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for d in ("notebooks", "solutions", "exercises") for p in (ROOT / d).glob(colab.NOTEBOOK_GLOB))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_every_notebook_starts_with_the_colab_cell(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert colab.has_colab_cell(notebook), (
        f"{path.relative_to(ROOT)}: the first cell is not tooling.colab.CELL_SOURCE; "
        "run `python -m tooling.colab` then `python -m tooling.make_exercises`")
    assert sum(cell.get("id") == colab.CELL_ID for cell in notebook["cells"]) == 1


def test_every_notebook_is_covered() -> None:
    # the primer, and lessons 1, 1b, 2, 2b, 3a, 3b, 3c, 4 and 4b in three forms each (no workbook for the primer)
    assert len(NOTEBOOKS) == 1 + 9 * 3 and colab.main(["--check"]) == 0


class _Recorder:
    """Stands in for subprocess.run / os.chdir and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return subprocess.CompletedProcess(args[0] if args else None, 0)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> dict[str, _Recorder]:
    """No real process, pip, chdir or path change can escape a test that runs the cell."""
    recorders = {name: _Recorder() for name in ("run", "call", "check_call", "Popen", "system", "chdir")}
    for name in ("run", "call", "check_call", "Popen"):
        monkeypatch.setattr(subprocess, name, recorders[name])
    monkeypatch.setattr(os, "system", recorders["system"])
    monkeypatch.setattr(os, "chdir", recorders["chdir"])
    monkeypatch.setattr(sys, "path", list(sys.path))
    return recorders


def test_outside_colab_the_cell_does_nothing_and_is_fast(monkeypatch: pytest.MonkeyPatch,
                                                          sandbox: dict[str, _Recorder]) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    path_before, cwd_before, modules_before = list(sys.path), os.getcwd(), set(sys.modules)
    namespace: dict = {}
    started = time.perf_counter()
    exec(colab.CELL_SOURCE, namespace)  # noqa: S102
    elapsed = time.perf_counter() - started
    assert not any(recorder.calls for recorder in sandbox.values()), "the cell ran a process outside Colab"
    assert sys.path == path_before and os.getcwd() == cwd_before
    assert set(sys.modules) - modules_before == set(), "the cell imported a module outside Colab"
    assert set(namespace) - {"__builtins__"} == {"os", "sys"}, "the cell defines names besides os and sys"
    assert elapsed < 0.05, f"the cell took {elapsed:.3f} s outside Colab"


@pytest.mark.parametrize("how", ["module", "environment"])
@pytest.mark.parametrize("cloned", [False, True], ids=["fresh", "already-cloned"])
def test_on_colab_the_cell_clones_and_installs_the_pins(monkeypatch: pytest.MonkeyPatch, sandbox: dict[str, _Recorder],
                                                        how: str, cloned: bool) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    if how == "module":
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261120-060000_RC00")
    real_isdir = os.path.isdir
    monkeypatch.setattr(os.path, "isdir", lambda p: cloned if p == colab.CLONE_DIR else real_isdir(p))
    exec(colab.CELL_SOURCE, {})  # noqa: S102
    commands = [args[0] for args, _ in sandbox["run"].calls]
    clone = ["git", "clone", "--depth", "1", "--branch", colab.BRANCH,
             f"https://github.com/{colab.GITHUB_REPO}.git", colab.CLONE_DIR]
    install = [sys.executable, "-m", "pip", "install", "-q", "-r", "requirements.txt"]
    assert commands == ([install] if cloned else [clone, install])
    assert all(kwargs.get("check") is True for _, kwargs in sandbox["run"].calls), "a failed install must stop the cell"
    assert sandbox["chdir"].calls == [((colab.CLONE_DIR,), {})]
    assert sys.path[0] == colab.CLONE_DIR


def test_the_cell_installs_the_same_requirements_file_as_course_py() -> None:
    assert "requirements.txt" in (ROOT / "course.py").read_text(encoding="utf-8")
    cell = colab.CELL_SOURCE
    assert '"-r", "requirements.txt"' in cell and cell.index(f'os.chdir("{colab.CLONE_DIR}")') < cell.index("pip")


def test_with_colab_cell_replaces_an_old_version_instead_of_adding_a_second(tmp_path: Path) -> None:
    old = {"cell_type": "code", "id": colab.CELL_ID, "metadata": {}, "outputs": [], "execution_count": None,
           "source": ["# an older Colab cell\n"]}
    intro = {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": ["# Title"]}
    notebook = {"cells": [intro, old], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "notebooks").mkdir()
    path = tmp_path / "notebooks" / "01_x.ipynb"
    path.write_text(colab.dumps(notebook), encoding="utf-8")
    assert colab.main(["--check", "--root", str(tmp_path)]) == 1
    assert colab.main(["--root", str(tmp_path)]) == 0
    written = json.loads(path.read_text(encoding="utf-8"))
    assert [c["id"] for c in written["cells"]] == [colab.CELL_ID, "intro"] and colab.has_colab_cell(written)
    assert colab.main(["--check", "--root", str(tmp_path)]) == 0


def test_readme_has_an_open_in_colab_link_for_every_lesson_and_workbook() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        if path.parent.name in ("notebooks", "exercises"):
            url = colab.colab_url(path.relative_to(ROOT).as_posix())
            assert url in readme, f"README has no Open in Colab link {url}"
