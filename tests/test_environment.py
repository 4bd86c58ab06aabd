"""requirements.txt is the single list of pins: environment.yml installs it, and it is what is installed."""
from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
KEY_PACKAGES = ["torch", "transformer_lens", "transformers", "sae-lens", "circuit-tracer", "circuitsvis", "jupyterlab",
                "ipywidgets", "scikit-learn", "matplotlib", "nbmake", "pytest", "pyarrow", "numpy"]


def normalize(name: str) -> str:
    """PEP 503 normalised project name: 'Transformer_Lens' -> 'transformer-lens'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def pins() -> dict[str, str]:
    return {normalize(name): version for name, version in (line.split("==") for line in requirement_lines())}


def test_every_requirement_is_pinned_exactly() -> None:
    exact = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*==[^=<>~!,;\s]+")
    loose = [line for line in requirement_lines() if not exact.fullmatch(line)]
    assert not loose, f"requirements.txt lines not pinned with ==: {loose}"
    names = [normalize(line.split("==")[0]) for line in requirement_lines()]
    assert len(names) == len(set(names)), "a package is pinned twice"


def test_environment_yml_installs_exactly_requirements_txt() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda = [dep for dep in env["dependencies"] if isinstance(dep, str)]
    pip_lists = [dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict) and "pip" in dep]
    assert "python=3.11" in conda and "pip" in conda
    assert len(pip_lists) == 1 and "-r requirements.txt" in pip_lists[0]
    extra_pip = [entry for entry in pip_lists[0] if entry not in ("-r requirements.txt", "-e .")]
    assert not extra_pip, f"environment.yml pip entries besides requirements.txt: {extra_pip} (pin them there)"
    pinned = pins()
    for dep in conda:
        name = normalize(re.split(r"[=<>!~ ]", dep)[0])
        assert name not in pinned, f"environment.yml installs {dep} with conda; requirements.txt pins {name}"


@pytest.mark.parametrize("package", KEY_PACKAGES)
def test_installed_version_matches_the_pin(package: str) -> None:
    pinned = pins()[normalize(package)]
    installed = importlib.metadata.version(package).split("+")[0]  # a local build tag like +cpu is fine
    assert installed == pinned, f"{package} {installed} is installed, requirements.txt pins {pinned}"
