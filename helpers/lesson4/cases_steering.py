"""The cases each check of workbook 4b runs the learner's function and the reference on (seeded, small).

Random tensors with the structure that tells the natural mistakes apart (classes of unequal size, a mean offset
that a threshold at 0 or an uncentred SVD would follow), and short runs of both bundled models.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from helpers import corpus
from helpers.checks import Case
from helpers.lesson4.cases import CHECK_MODEL
from helpers.lesson4.data import answer_ids, gather_resid, task_data, token_id
from helpers.models import cached_model

__all__ = ["OTHER_MODEL", "direction_cases", "predict_cases", "steering_cases", "effect_cases", "pair_cases",
           "principal_cases", "sign_agnostic_cases", "ccs_cases", "same_length"]

OTHER_MODEL = "attn-only-2l"
"""The second bundled model (2 blocks, d_model 128): a check runs on it too, so no answer hard-codes course-4l."""


def _classes(n_one: int, n_zero: int, d: int, shift: float, seed: int) -> tuple[Tensor, np.ndarray]:
    """``n_one + n_zero`` random vectors, class 1 shifted by ``shift`` along a random direction, rows shuffled."""
    g = torch.Generator().manual_seed(seed)
    along = torch.randn(d, generator=g)
    acts = torch.randn(n_one + n_zero, d, generator=g) + 0.7 * torch.randn(d, generator=g)   # a common offset
    labels = np.array([1] * n_one + [0] * n_zero)
    acts[:n_one] += shift * along / along.norm()
    order = np.random.default_rng(seed).permutation(n_one + n_zero)
    return acts[torch.as_tensor(order)], labels[order]


@functools.cache
def _truth_acts() -> tuple[Tensor, np.ndarray]:
    """12 true or false statements read after block 2 of the check model (one forward pass, once a process)."""
    model = cached_model(CHECK_MODEL)
    data = task_data("truth", "train", 12, model.tokenizer, seed=21)
    return gather_resid(model, data.prompts, data.positions)[3], data.labels


def direction_cases() -> list[Case]:
    """Exercise 6: two classes of equal size first (so a mean over the wrong axis still runs), then unequal ones,
    the distance between the means kept (``normalise=False``), and statements read from the model."""
    even, even_labels = _classes(20, 20, 16, 3.0, 1000)
    uneven, uneven_labels = _classes(30, 10, 12, 2.0, 1001)
    truth, truth_labels = _truth_acts()
    return [Case((even, even_labels), label="20 + 20 random vectors"),
            Case((uneven, uneven_labels), kwargs={"normalise": False},
                 label="30 of class 1 and 10 of class 0, normalise=False"),
            Case((truth.clone(), truth_labels.copy()), label="12 statements after block 2 of course-4l"),
            Case((uneven, uneven_labels), kwargs={"normalise": True}, label="30 + 10 random vectors, normalise=True")]


def predict_cases() -> list[Case]:
    """Exercise 7: unequal classes far from the origin, a held-out split shifted off the training one, and a
    direction of length 3 (the threshold is in the direction's own units)."""
    cases = []
    for i, (n_one, n_zero, n_test, d, shift) in enumerate([(30, 10, 40, 12, 2.5), (8, 24, 30, 20, 3.0)]):
        acts, labels = _classes(n_one, n_zero, d, 4.0, 1100 + i)
        g = torch.Generator().manual_seed(1110 + i)
        test = torch.randn(n_test, d, generator=g) + acts.mean(0) + shift * torch.randn(d, generator=g) / d ** 0.5
        direction = acts[torch.as_tensor(labels == 1)].mean(0) - acts[torch.as_tensor(labels == 0)].mean(0)
        direction = 3.0 * direction / direction.norm()
        cases.append(Case((direction, acts, labels, test),
                          label=f"{n_one} + {n_zero} training vectors, {n_test} held-out ones"))
    return cases


def same_length(model, examples: list, n: int) -> list:
    """The first ``n`` of ``examples`` whose prompts have the most common token length (so position -1 is every
    prompt's last token in one batch)."""
    lengths = [len(model.to_tokens(e.prompt)[0]) for e in examples]
    common = max(set(lengths), key=lengths.count)
    return [e for e, length in zip(examples, lengths) if length == common][:n]


def steering_cases() -> list[Case]:
    """Exercise 8: three reviews steered before block 2 at every position, then at the last position and at
    position 3, and the other model. Each case builds the hooks of all its alphas before running any."""
    model, other = cached_model(CHECK_MODEL), cached_model(OTHER_MODEL)
    g = torch.Generator().manual_seed(1200)
    reviews = model.to_tokens([e.prompt for e in corpus.review_examples(3, "test", seed=12)], padding_side="right")
    short = other.to_tokens(["The Eiffel Tower is in the city of Paris. This statement is"])
    vector = torch.randn(model.cfg.d_model, generator=g)
    return [Case((model, reviews, 2, 0.5 * vector, (-4.0, 2.0, 6.0), None), label="3 reviews, every position"),
            Case((model, reviews, 2, 0.5 * vector, (3.0, -3.0), -1), label="3 reviews, the last position (pos=-1)"),
            Case((model, reviews[:2], 1, torch.randn(model.cfg.d_model, generator=g), (2.0, 5.0), 3),
                 label="2 reviews before block 1, position 3"),
            Case((other, short, 1, torch.randn(other.cfg.d_model, generator=g), (1.5, -2.5), None),
                 label="attn-only-2l, 1 statement, every position")]


def effect_cases() -> list[Case]:
    """Exercise 9: IOI prompts of one length (each with its own pair of names, so indexing across the batch
    shows), reviews, and the other model; directions of lengths other than 1, unevenly spaced alphas."""
    model, other = cached_model(CHECK_MODEL), cached_model(OTHER_MODEL)
    g = torch.Generator().manual_seed(1300)
    ioi = same_length(model, corpus.ioi_examples(40, "test", seed=5), 6)
    ioi_tokens = model.to_tokens([e.prompt for e in ioi])
    ioi_answers = torch.tensor([[token_id(model.tokenizer, " " + e.labels["io"]),
                                 token_id(model.tokenizer, " " + e.labels["s"])] for e in ioi])
    io_direction = model.W_U[:, ioi_answers[0, 0]] - model.W_U[:, ioi_answers[0, 1]]
    reviews = same_length(model, corpus.review_examples(60, "test", seed=13), 4)
    review_tokens = model.to_tokens([e.prompt for e in reviews])
    sentiment = torch.tensor([answer_ids(model, " positive", " negative")] * len(reviews))
    other_tokens = other.to_tokens([e.prompt for e in ioi[:4]])
    other_answers = ioi_answers[:4]
    return [Case((model, ioi_tokens, ioi_answers, 2, 5.0 * io_direction.detach() / io_direction.norm().item(),
                  (-2.0, 0.0, 4.0)), label="6 IOI prompts, before block 2, a direction of length 5"),
            Case((model, review_tokens, sentiment, 1, 0.3 * torch.randn(model.cfg.d_model, generator=g),
                  (0.0, 3.0, 9.0)), label="4 reviews, before block 1, a random direction"),
            Case((other, other_tokens, other_answers, 1, 2.0 * torch.randn(other.cfg.d_model, generator=g),
                  (-3.0, 3.0)), label="attn-only-2l, 4 IOI prompts, before block 1")]


def pair_cases() -> list[Case]:
    """Exercise 10a: pairs whose two sides have different means (and a different number of rows per case)."""
    cases = []
    for i, (n, d) in enumerate([(20, 8), (7, 12)]):
        g = torch.Generator().manual_seed(1400 + i)
        a = torch.randn(n, d, generator=g) + 2.0 * torch.randn(d, generator=g)
        b = torch.randn(n, d, generator=g) - 1.5 * torch.randn(d, generator=g)
        cases.append(Case((a, b), label=f"{n} pairs of {d}-dimensional vectors"))
    truth, _ = _truth_acts()
    cases.append(Case((truth[:6].clone(), truth[6:].clone()), label="6 pairs of statements from course-4l"))
    return cases


def principal_cases() -> list[Case]:
    """Exercise 10b: rows spread along one axis around a mean far along another (so an SVD of the uncentred rows
    follows the mean), then fewer rows than dimensions, and rows already centred."""
    g = torch.Generator().manual_seed(1500)
    spread, offset = torch.randn(10, generator=g), torch.randn(10, generator=g)
    far = (torch.randn(60, 1, generator=g) * 3.0 * spread / spread.norm() + torch.randn(60, 10, generator=g) * 0.5
           + 6.0 * offset / offset.norm())
    wide = torch.randn(8, 20, generator=g) * torch.linspace(3.0, 0.2, 20) + 1.0
    centred = torch.randn(40, 6, generator=g) * torch.tensor([0.5, 2.0, 1.0, 0.3, 0.8, 1.2])
    return [Case((far,), label="60 rows spread along one axis, their mean far along another"),
            Case((wide,), label="8 rows of 20 dimensions"),
            Case((centred - centred.mean(0),), label="40 centred rows of 6 dimensions")]


def sign_agnostic_cases() -> list[Case]:
    """Exercise 11: scores that point the right way, scores that point the wrong way (accuracy below a half), and
    scores far above 0 (so that a threshold at their median or at 0.5 shows)."""
    rng = np.random.default_rng(1600)
    labels = rng.integers(0, 2, 50)
    sign = np.where(labels == 1, 1.0, -1.0)
    forwards = sign * rng.uniform(0.1, 2.0, 50) + rng.normal(0, 1.0, 50)
    backwards = -sign * rng.uniform(0.1, 2.0, 50) + rng.normal(0, 0.8, 50)
    far = 0.5 * sign + rng.normal(0, 0.6, 50) + 1.2
    for x in (forwards, backwards, far):
        x[x == 0] = 1e-3                                             # no score exactly at the threshold
    return [Case((forwards, labels.copy()), label="50 scores pointing the right way"),
            Case((backwards, labels.copy()), label="50 scores pointing the wrong way"),
            Case((far, labels.copy()), label="50 scores, most of them above 0")]


def ccs_cases() -> list[Case]:
    """Exercise 12: probabilities that are consistent but unsure, confident but inconsistent, and random ones."""
    g = torch.Generator().manual_seed(1700)
    p = torch.rand(30, generator=g) * 0.98 + 0.01
    return [Case((p, torch.rand(30, generator=g) * 0.98 + 0.01), label="30 random pairs"),
            Case((torch.full((4,), 0.5), torch.full((4,), 0.5)), label="4 pairs at 0.5 (consistent, not confident)"),
            Case((torch.tensor([0.9, 0.95, 0.1, 0.8]), torch.tensor([0.85, 0.9, 0.2, 0.7])),
                 label="4 pairs, both members likely (confident, not consistent)"),
            Case((p[:8], 1 - p[:8]), label="8 consistent pairs")]
