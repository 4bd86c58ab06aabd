"""Shared test configuration: the ``claim`` and ``slow`` markers, and the knobs of a fragility run.

A *claim test* asserts a figure that a lesson's prose or the README quotes. Every test whose name
starts with ``test_claim_`` is one (the marker is added here); so is every test marked
``@pytest.mark.claim`` by hand. ``pytest -m claim`` runs them alone.

A *slow test* runs a notebook, trains something, starts a browser or a type checker. The marker is added
here to every test of the modules in ``SLOW_MODULES`` and every test that uses a fixture of
``SLOW_FIXTURES`` (each builds something that takes seconds to minutes), and by hand elsewhere. The fast
loop is ``pytest -m "not slow and not claim"``: the unit tests and the checks' wrong answers, about 100 s
on 2 cores (CONTRIBUTING.md).

A fragility run (``python3 course.py fragility``, see ``tooling/fragility.py``) re-runs the claim
tests with the bundled weights nudged at the level of float32 rounding (``COURSE_WEIGHT_NOISE=<seed>``)
and with torch on a given number of threads (``COURSE_TORCH_THREADS=<n>``), standing in for other CPUs.
"""
from __future__ import annotations

import os

import pytest
import torch

from helpers.fragility import THREADS_ENV, noise_seed

SLOW_MODULES = {"test_book", "test_browser", "test_train_models", "test_sae_training", "test_transcoder_training",
                "test_nbgrader"}
SLOW_FIXTURES = {
    "lesson",                # runs a whole lesson notebook (tests/test_lesson1.py, 3, 4)
    "model_and_sae", "part_b", "toy_models", "synthetic",          # lesson 2's model, SAE and trained toys
    "replacement", "labels",                                       # lesson 3's replacement model, its labels
    "results_2l", "results_4l",                                    # every behavioural figure of a model
    "graded", "trained", "full_book", "small_book", "lab", "ran",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "claim: asserts a figure that the course's prose quotes "
                                       "(re-run by the fragility check)")
    config.addinivalue_line("markers", "slow: runs a notebook, trains, or starts a browser or a type checker "
                                       "(left out of the fast loop: -m 'not slow and not claim')")
    threads = os.environ.get(THREADS_ENV, "").strip()
    if threads:
        torch.set_num_threads(int(threads))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.originalname.startswith("test_claim_") if hasattr(item, "originalname") else False:
            item.add_marker(pytest.mark.claim)
        module = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
        if module in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = noise_seed()
    weights = "as stored" if seed is None else f"perturbed (relative 3e-7, seed {seed})"
    return [f"course: bundled weights {weights}; torch on {torch.get_num_threads()} thread(s)"]
