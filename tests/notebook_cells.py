"""Run a notebook's code cells inside a test, the way the lesson tests read the lessons' own variables.

    from notebook_cells import code_cells, run_lesson, workbook_check_tests, workbook_functions

``run_lesson`` executes every code cell of a lesson in one namespace with plots closed and
``display`` silenced; ``workbook_functions`` executes a workbook's setup cell and the cells that
define its exercise functions; ``workbook_check_tests`` builds the two tests every workbook's checks
need. Both restore what the notebooks change for their own kernel: torch's
grad mode, torch's thread count and the BLAS thread limits.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from threadpoolctl import threadpool_limits

from tooling.colab import CELL_SOURCE as COLAB_CELL


def code_cells(path: Path) -> list[str]:
    """The source of every code cell of the notebook at ``path``, in order."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in notebook["cells"] if c["cell_type"] == "code"]


def workbook_functions(path: Path, names: Iterable[str]) -> dict:
    """Run a workbook's setup cell (the first after the Colab cell) and every cell that defines one of ``names``.

    Returns the namespace.
    """
    cells, names = [c for c in code_cells(path) if c != COLAB_CELL], list(names)
    namespace: dict = {}
    grad_enabled, threads = torch.is_grad_enabled(), torch.get_num_threads()
    try:
        with threadpool_limits(limits=None):       # restores the BLAS thread limits on the way out
            exec(cells[0], namespace)  # noqa: S102
        for source in cells:
            if any(f"def {name}(" in source for name in names):
                exec(source, namespace)  # noqa: S102
    finally:
        torch.set_grad_enabled(grad_enabled)
        torch.set_num_threads(threads)
    return namespace


def workbook_check_tests(notebook: str, reference, exercises: list[str],
                         check_args: dict[str, Callable[[], tuple]] | None = None) -> tuple[Callable, Callable]:
    """The two tests every workbook needs, for a lesson's test module to bind at module level::

        test_reference_and_solved_workbook_pass, test_generated_stub_is_rejected = workbook_check_tests(
            NAME, lesson1, EXERCISES)

    For each exercise ``name``: ``reference.check_<name>`` passes the reference ``reference.<name>``
    and the function of the solved workbook (``solutions/<notebook>``), and rejects the generated
    stub (``exercises/<notebook>``) with the "not implemented yet ... NotImplementedError" message.

    A check cell that hands its check more than the function (lesson 2's
    ``check_run_with_clamp(run_with_clamp, model, sae)``) is named in ``check_args``: ``name`` maps
    to a function of no arguments returning the extra positional arguments, called when the test runs.
    """
    root = Path(__file__).resolve().parent.parent
    check_args = check_args or {}

    @cache
    def workbook(folder: str) -> dict:
        return workbook_functions(root / folder / notebook, exercises)

    def check(name: str, fn: Callable):
        extra = check_args[name]() if name in check_args else ()
        return getattr(reference, f"check_{name}")(fn, *extra)

    @pytest.mark.parametrize("name", exercises)
    def test_reference_and_solved_workbook_pass(name: str) -> None:
        assert check(name, getattr(reference, name)).passed
        result = check(name, workbook("solutions")[name])
        assert result.passed, result.message

    @pytest.mark.parametrize("name", exercises)
    def test_generated_stub_is_rejected(name: str) -> None:
        result = check(name, workbook("exercises")[name])
        assert not result.passed
        assert "not implemented yet" in result.message and "NotImplementedError" in result.message

    return test_reference_and_solved_workbook_pass, test_generated_stub_is_rejected


def run_lesson(path: Path, tolerate: Callable[[AssertionError], bool] = lambda error: False) -> dict:
    """Run every code cell of a lesson; return the namespace it leaves (plots closed, nothing displayed).

    An ``AssertionError`` raised by a cell for which ``tolerate(error)`` is true is recorded in
    ``namespace["_tolerated"]`` instead of stopping the run, so that a test can report it by name.
    """
    import IPython.display

    shown, original_display = plt.show, IPython.display.display
    plt.show = lambda *args, **kwargs: plt.close("all")
    IPython.display.display = lambda *args, **kwargs: None
    namespace: dict = {"_tolerated": []}
    grad_enabled, threads = torch.is_grad_enabled(), torch.get_num_threads()
    try:
        with threadpool_limits(limits=None):       # restores the BLAS thread limits on the way out
            for source in code_cells(path):
                try:
                    exec(source, namespace)  # noqa: S102
                except AssertionError as error:
                    if not tolerate(error):
                        raise
                    namespace["_tolerated"].append(str(error))
    finally:
        plt.show, IPython.display.display = shown, original_display
        plt.close("all")
        torch.set_grad_enabled(grad_enabled)
        torch.set_num_threads(threads)
    return namespace


def wrong_answer_ids(rows: list[tuple]) -> list[str]:
    """Test ids for a ``WRONG_ANSWERS`` list: ``<exercise>-<k>``, the k-th wrong answer of that exercise."""
    return [f"{name}-{[row[0] for row in rows[:i]].count(name)}" for i, (name, *_) in enumerate(rows)]


def assert_rejected(result, name: str, parts: list[str], printed: str, *, only_line: bool = False) -> None:
    """The check of ``name`` rejected a wrong answer with a message holding every one of ``parts``.

    The message is one line (``❌ <name>: ...``), printed with no traceback; with ``only_line``, nothing else
    was printed either.
    """
    assert not result.passed, f"{name} accepted a wrong answer"
    assert result.message.startswith(f"❌ {name}"), result.message
    for part in parts:
        assert part in result.message, result.message
    assert "Traceback" not in printed
    if only_line:
        assert printed.strip() == result.message


def assert_random_state_untouched(run: Callable[[], object]) -> None:
    """``run()`` (a batch of checks) leaves torch's and numpy's global random streams where it found them."""
    import numpy as np

    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    run()
    assert torch.equal(torch.rand(3), expected_torch) and np.array_equal(np.random.rand(3), expected_np)
