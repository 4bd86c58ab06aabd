"""The habits of CONTRIBUTING.md, kept by CI: the linter, the type checker, and the pre-commit hooks.

``requirements-dev.txt`` pins ruff and mypy; ``python3 course.py test`` installs them. Run the same by hand:

    .venv/bin/ruff check .            # the linter, configured in pyproject.toml
    .venv/bin/mypy                    # the type checker, on the learner's library (helpers/)
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MISSING = "is not installed: `python3 course.py test` installs requirements-dev.txt (or pip install -r it)"


def _run_tool(module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    assert importlib.util.find_spec(module) is not None, f"{module} {MISSING}"
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_the_linter_passes_on_the_whole_repository() -> None:
    result = _run_tool("ruff", "check", "--output-format", "concise", ".")
    assert result.returncode == 0, f"ruff check . found problems:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"


def test_every_python_file_compiles() -> None:
    """What the linter does not check: errors Python raises only when it compiles a module (a name read
    before its ``global`` declaration, for one). A script no test imports would hide one until run."""
    failed = []
    folders = ("helpers", "scripts", "tooling", "tests")
    for path in sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py")):
        try:
            compile(path.read_text(), str(path), "exec")
        except SyntaxError as error:
            failed.append(f"{path.relative_to(ROOT)}:{error.lineno}: {error.msg}")
    assert not failed, "\n".join(failed)


@pytest.mark.slow
def test_the_type_checker_passes_on_the_learners_library() -> None:
    result = _run_tool("mypy", "--cache-dir", str(ROOT / "build" / "mypy-cache"))
    assert result.returncode == 0, f"mypy found problems in helpers/:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"


def test_dev_requirements_are_pinned() -> None:
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements-dev.txt").read_text().splitlines()]
    loose = [line for line in lines if line and "==" not in line]
    assert not loose, f"requirements-dev.txt lines not pinned with ==: {loose}"


def test_pre_commit_runs_the_linter_and_every_generators_check() -> None:
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    for command in ("ruff check", "tooling.make_exercises --check", "tooling.colab --check", "tooling.workshop --check",
                    "tooling.timings --check"):
        assert command in config, f".pre-commit-config.yaml does not run `{command}`"
    assert "repo: local" in config and "https://" not in config, "pre-commit hooks must run offline (repo: local)"
