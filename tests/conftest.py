"""Shared test configuration: the ``claim`` marker, and the knobs of a fragility run.

A *claim test* asserts a figure that a lesson's prose or the README quotes. Every test whose name
starts with ``test_claim_`` is one (the marker is added here); so is every test marked
``@pytest.mark.claim`` by hand. ``pytest -m claim`` runs them alone.

A fragility run (``python3 course.py fragility``, see ``helpers/fragility.py``) re-runs the claim
tests with the bundled weights nudged at the level of float32 rounding (``COURSE_WEIGHT_NOISE=<seed>``)
and with torch on a given number of threads (``COURSE_TORCH_THREADS=<n>``), standing in for other CPUs.
"""
from __future__ import annotations

import os

import pytest
import torch

from helpers.fragility import THREADS_ENV, noise_seed


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "claim: asserts a figure that the course's prose quotes "
                                       "(re-run by the fragility check)")
    threads = os.environ.get(THREADS_ENV, "").strip()
    if threads:
        torch.set_num_threads(int(threads))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.originalname.startswith("test_claim_") if hasattr(item, "originalname") else False:
            item.add_marker(pytest.mark.claim)


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = noise_seed()
    weights = "as stored" if seed is None else f"perturbed (relative 3e-7, seed {seed})"
    return [f"course: bundled weights {weights}; torch on {torch.get_num_threads()} thread(s)"]
