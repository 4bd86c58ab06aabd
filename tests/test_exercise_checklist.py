"""The checklist for an exercise (CONTRIBUTING.md), enforced for every solution block of every workbook.

An exercise called ``<name>`` in workbook ``NN`` has, one hop from the lesson's number:

- its reference answer, ``helpers.lessonN.reference.<name>``;
- its check, ``helpers.lessonN.checks.check_<name>``, called by the check cell that follows its solution
  block in ``solutions/NN_*.ipynb`` (``passed_<k> = check_<name>(...)``);
- at least three natural wrong answers in the ``WRONG_ANSWERS`` list of ``tests/test_lessonN*.py``
  (``(name, wrong_function, message_parts)``), each rejected there with its own message;
- a stub in ``exercises/NN_*.ipynb``, the generated fill-in workbook, in place of the solution block.

The layout rules ride along: no module of ``helpers`` is longer than about 500 lines, and no module imports
another module's private name.
"""
from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

from helpers.shapes import DIMENSIONS
from tooling.make_exercises import CHECK_CELL, NOTEBOOK_GLOB

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob(NOTEBOOK_GLOB))
CHECK_CALL = CHECK_CELL      # the generator's own pattern: what the tooling reads is what is checked here
MIN_WRONG_ANSWERS = 3
MAX_MODULE_LINES = 500


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def exercises_of(path: Path) -> list[tuple[str, str]]:
    """``(exercise name, id of its solution cell)`` for every solution block, from the check that follows it."""
    found, pending = [], []
    for cell in _cells(path):
        if cell["cell_type"] != "code":
            continue
        source = _source(cell)
        if "### BEGIN SOLUTION" in source:
            pending.append(cell["id"])
        for name in (m["exercise"] for m in CHECK_CALL.finditer(source)):
            assert pending, f"{path.name}: the check of {name!r} follows no solution block"
            found += [(name, cell_id) for cell_id in pending]
            pending = []
    assert not pending, f"{path.name}: solution cell(s) {pending} are followed by no check cell"
    return found


def _lesson(path: Path) -> int:
    return int(path.name[:2])


def _found_in(package: str, kind: str, name: str):
    """``name`` as defined in one of ``package``'s ``<kind>.py`` or ``<kind>_<topic>.py`` modules (a lesson's
    second workbook keeps its references and checks in ``reference_<topic>.py`` / ``checks_<topic>.py``)."""
    folder = ROOT / Path(*package.split("."))
    for module_path in sorted(folder.glob(f"{kind}*.py")):
        if module_path.stem == kind or module_path.stem.startswith(f"{kind}_"):
            found = getattr(importlib.import_module(f"{package}.{module_path.stem}"), name, None)
            if found is not None:
                return found
    return None


def _wrong_answers(lesson: int) -> list[tuple]:
    rows = []
    for test_file in sorted((ROOT / "tests").glob(f"test_lesson{lesson}*.py")):
        module = importlib.import_module(test_file.stem)
        rows += list(getattr(module, "WRONG_ANSWERS", []))
    return rows


CASES = [(path, name, cell_id) for path in SOLUTIONS for name, cell_id in exercises_of(path)]


def test_every_workbook_has_exercises() -> None:
    assert SOLUTIONS and all(exercises_of(path) for path in SOLUTIONS)


@pytest.mark.parametrize(("path", "name", "cell_id"), CASES, ids=[f"{p.name[:2]}-{n}" for p, n, _ in CASES])
def test_exercise_has_its_reference_check_wrong_answers_and_stub(path: Path, name: str, cell_id: str) -> None:
    lesson = _lesson(path)
    package = f"helpers.lesson{lesson}"
    reference = _found_in(package, "reference", name)
    assert callable(reference), f"{package}.reference*.py has no reference answer {name!r}"
    check = _found_in(package, "checks", f"check_{name}")
    assert callable(check), f"{package}.checks*.py has no check_{name}"
    assert check.__module__.startswith(package), f"check_{name} lives in {check.__module__}, not in {package}"
    assert getattr(importlib.import_module(package), f"check_{name}", None) is check, \
        f"{package}/__init__.py does not re-export check_{name}"

    wrong = [row for row in _wrong_answers(lesson) if row[0] == name]
    assert len(wrong) >= MIN_WRONG_ANSWERS, (
        f"{name}: {len(wrong)} wrong answer(s) in tests/test_lesson{lesson}*.py's WRONG_ANSWERS, "
        f"at least {MIN_WRONG_ANSWERS} wanted")
    assert all(row[2] for row in wrong), f"{name}: every wrong answer names the message it must get"

    exercise = ROOT / "exercises" / path.name
    stub = next(_source(c) for c in _cells(exercise) if c.get("id") == cell_id)
    assert "raise NotImplementedError(" in stub and "### BEGIN SOLUTION" not in stub, (
        f"{exercise.name}: cell {cell_id} has no stub (run `python3 course.py exercises`)")


LIBRARY = sorted(p for p in (ROOT / "helpers").rglob("*.py") if p.name != "corpus_data.py")


@pytest.mark.parametrize("path", LIBRARY, ids=[str(p.relative_to(ROOT)) for p in LIBRARY])
def test_no_module_is_longer_than_about_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by concern"


CODE = sorted([*LIBRARY, *(ROOT / "tooling").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")])


@pytest.mark.parametrize("path", CODE, ids=[str(p.relative_to(ROOT)) for p in CODE])
def test_no_module_imports_another_modules_private_name(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    private = [f"from {node.module} import {alias.name}" for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module
               for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    private += [ast.unparse(node) for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in {"corpus", "checks", "models", "lesson1",
                                                                           "lesson2", "lesson3", "lesson4", "sae",
                                                                           "transcoders", "plotting", "metrics"}]
    assert not private, f"{path.relative_to(ROOT)} uses private names of other modules: {private}"


SHAPE_TYPES = {"Float", "Int", "Bool", "Shaped", "Num"}


def _shape_names(path: Path) -> set[str]:
    """Every dimension name inside a jaxtyping shape string (``Float[Tensor, "batch pos"]``) of ``path``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in SHAPE_TYPES
                and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2
                and isinstance(node.slice.elts[1], ast.Constant) and isinstance(node.slice.elts[1].value, str)):
            names |= {word.lstrip("*_#").split("=")[0] for word in node.slice.elts[1].value.split()}
    return {name for name in names if name and name != "..." and not name.isdigit()}


@pytest.mark.parametrize("path", LIBRARY, ids=[str(p.relative_to(ROOT)) for p in LIBRARY])
def test_shapes_use_only_the_listed_dimension_names(path: Path) -> None:
    unknown = _shape_names(path) - set(DIMENSIONS)
    assert not unknown, (f"{path.relative_to(ROOT)} names dimensions {sorted(unknown)} that helpers/shapes.py does "
                         "not list: use a listed name, or add it to DIMENSIONS and its table")


def test_the_shape_reader_sees_the_shapes() -> None:
    assert {"batch", "pos", "head_index", "d_model", "d_sae"} <= set().union(*map(_shape_names, LIBRARY))
