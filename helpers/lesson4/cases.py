"""The cases each check of workbook 4 runs the learner's function and the reference on (seeded, small)."""
from __future__ import annotations

import numpy as np
import torch

from helpers import corpus
from helpers.checks import Case
from helpers.lesson4.data import gather_resid, task_data
from helpers.lesson4.reference import fit_probe
from helpers.models import cached_model

__all__ = ["CHECK_MODEL", "resid_cases", "probe_cases", "selectivity_cases", "projection_cases", "hook_cases",
           "auroc_cases"]

CHECK_MODEL = "course-4l"
"""The bundled model the checks run (``helpers.models.cached_model(CHECK_MODEL)``, one copy per process)."""


def resid_cases() -> list[Case]:
    """Exercise 1: prompts of different lengths (so padding matters), then prompts of one kind."""
    mixed = (corpus.truth_examples(2, "test", seed=5) + corpus.review_examples(2, "test", seed=5)
             + corpus.ioi_examples(2, "test", seed=5))
    same = corpus.truth_examples(3, "train", seed=6)
    model = cached_model(CHECK_MODEL)
    return [Case((model, mixed), label="6 prompts of different lengths (truth, reviews, IOI)"),
            Case((model, same), label="3 true/false statements")]


def probe_cases() -> list[Case]:
    """Exercise 2: few training examples in many dimensions, so a probe can memorise its training split."""
    cases = []
    for i, (n_train, n_test, d, signal) in enumerate([(40, 200, 30, 0.6), (60, 150, 50, 0.5), (30, 100, 20, 0.8)]):
        g = np.random.default_rng(700 + i)
        w = g.normal(size=d)
        X = g.normal(size=(n_train + n_test, d))
        y = (X @ w * signal + g.normal(size=n_train + n_test) * 3 > 0).astype(int)
        cases.append(Case((X[:n_train], y[:n_train], X[n_train:], y[n_train:]),
                          label=f"{n_train} training and {n_test} held-out examples, {d} dimensions"))
    return cases


def selectivity_cases() -> list[Case]:
    """Exercise 3: clustered types (two of them unseen in the held-out split), and a class missing there."""
    cases = []
    for i, (n_types, n_train, n_test, d) in enumerate([(12, 120, 90, 16), (20, 150, 60, 24)]):
        g = np.random.default_rng(800 + i)
        centres = g.normal(size=(n_types, d)) * 1.5
        w = g.normal(size=d)

        def make(n, held, g=g, centres=centres, w=w, n_types=n_types, d=d):
            pool = np.arange(n_types) if not held else np.arange(2, n_types)   # types 0, 1 unseen in test
            t = g.choice(pool, size=n)
            X = centres[t] + g.normal(size=(n, d))
            y = (X @ w + g.normal(size=n) * 2 > 0).astype(int)
            return X, y, [f"type{k:02d}" for k in t]

        Xa, ya, ta = make(n_train, False)
        Xb, yb, tb = make(n_test, True)
        cases.append(Case((Xa, ya, ta, Xb, yb, tb), kwargs={"seed": i},
                          label=f"{n_types} types, {n_train} training and {n_test} held-out examples"))
    # three classes, the third one missing from the held-out split: the task still has 3 classes
    g = np.random.default_rng(802)
    centres, w = g.normal(size=(15, 16)) * 1.5, g.normal(size=16)
    t = g.choice(15, size=400)
    X = centres[t] + g.normal(size=(400, 16))
    y = np.digitize(X @ w + g.normal(size=400) * 2, np.quantile(X @ w, [1 / 3, 2 / 3]))
    test = np.flatnonzero(y < 2)[:80]
    train = np.setdiff1d(np.arange(400), test)[:160]
    types = [f"type{k:02d}" for k in t]
    cases.append(Case((X[train], y[train], [types[k] for k in train], X[test], y[test], [types[k] for k in test]),
                      kwargs={"seed": 2}, label="3 classes, the held-out split has only classes 0 and 1"))
    return cases


def projection_cases() -> list[Case]:
    """Exercise 4a: a batch of positions, a direction of length 0.5, and rows parallel to the direction."""
    g = torch.Generator().manual_seed(900)
    resid = torch.randn(2, 5, 8, generator=g)
    along = torch.randn(8, generator=g)
    parallel = torch.stack([2.0 * along, -0.5 * along, torch.randn(8, generator=g)])
    return [Case((resid, 3.0 * torch.randn(8, generator=g)), label="[2, 5, 8] residual, direction of length ~8"),
            Case((torch.randn(6, 4, generator=g), torch.tensor([0.3, 0.0, -0.4, 0.0])),
                 label="[6, 4] residual, direction of length 0.5"),
            Case((parallel, along), label="rows parallel to the direction")]


def hook_cases() -> list[Case]:
    """Exercise 4b: reviews with a direction that visibly moves the answer, and one statement."""
    model = cached_model(CHECK_MODEL)
    data = task_data("sentiment", "test", 3, model.tokenizer, seed=11)
    acts = gather_resid(model, data.prompts, data.positions)
    g = torch.Generator().manual_seed(901)
    sentiment = acts[2].mean(0) - acts[2][0]                          # a direction with a visible effect
    tokens = model.to_tokens(data.prompts, padding_side="right")
    short = model.to_tokens(["The Eiffel Tower is in the city of Paris. This statement is"])
    return [Case((model, tokens, 1, 4.0 * sentiment / sentiment.norm()), label="3 reviews, layer 1"),
            Case((model, short, 0, 2.5 * torch.randn(model.cfg.d_model, generator=g)),
                 label="1 statement, layer 0, random direction"),
            Case((model, tokens, 3, 0.5 * sentiment / sentiment.norm()), label="3 reviews, layer 3")]


def auroc_cases() -> list[Case]:
    """Exercise 5: more false statements than true ones, so that flipped labels and scores show."""
    cases = []
    for i, (n_train, n_test, d, noise) in enumerate([(200, 120, 10, 2.0), (150, 90, 6, 3.0)]):
        g = np.random.default_rng(950 + i)
        w = g.normal(size=d)
        X = g.normal(size=(n_train + n_test, d))
        y = (X @ w + g.normal(size=n_train + n_test) * noise > 1.0).astype(int)     # more false than true
        probe = fit_probe(X[:n_train], y[:n_train])
        cases.append(Case((probe, X[n_train:], y[n_train:]),
                          label=f"{n_test} held-out statements, {int((1 - y[n_train:]).sum())} false"))
    return cases
