"""Lesson 4b, section 4: a truth direction found without labels, from contrast pairs.

A **contrast pair** is one fact stated twice, once with the right place and once with a wrong one ("The Louvre
is in the city of Paris. This statement is" against "... of Tokyo. ..."). One of the two is true; an
unsupervised method is told which two statements belong together, never which of them is the true one
(:func:`contrast_pairs` shuffles the order inside every pair and keeps the answer aside, for scoring only).

- :func:`contrast_pairs`: the pairs, their activations' order and the hidden answer (:class:`ContrastPairs`);
- :func:`first_principal_direction`: scikit-learn's ``PCA`` on the pair differences, its first component;
- :func:`train_ccs`: contrast-consistent search (Burns et al., 2022), a tiny probe trained on consistency and
  confidence alone (:class:`CCSProbe`);
- :func:`sign_agnostic_accuracy`: an unsupervised direction has no sign, so it is scored as ``max(acc, 1 - acc)``.
"""
from __future__ import annotations

import random
from typing import NamedTuple

import numpy as np
import torch
from jaxtyping import Float, Int
from sklearn.decomposition import PCA
from torch import Tensor

from helpers import corpus, corpus_data
from helpers.corpus import Split
from helpers.lesson4.data import SEED

__all__ = ["ContrastPairs", "contrast_pairs", "first_principal_direction", "CCSProbe", "train_ccs",
           "sign_agnostic_accuracy", "normalise_set"]


class ContrastPairs(NamedTuple):
    """Pairs of statements, one true and one false each, in an order the method does not know."""

    first: list[str]                        # one statement of each pair
    second: list[str]                       # the other one
    first_is_true: Int[np.ndarray, "example"]   # the hidden answer: 1 where ``first`` is the true statement


def contrast_pairs(n: int, split: Split, seed: int = SEED) -> ContrastPairs:
    """``n`` facts from lesson 4's true/false statements, each stated with its right place and with a wrong one.

    The facts (and their templates, held out in the ``"test"`` split) are those of ``corpus.truth_examples``;
    a true statement gets a wrong place drawn from the other places of its kind (cities or countries), a false
    one its right place. Inside each pair the order is shuffled with ``seed``.
    """
    rng = random.Random(seed)
    cities = sorted({lm[1] for lm in corpus_data.LANDMARKS if " " not in lm[1]})
    countries = sorted({lm[2] for lm in corpus_data.LANDMARKS if lm[2]})
    first, second, first_is_true = [], [], []
    for example in corpus.truth_examples(n, split, seed):
        start, end = example.spans["attribute"]
        right = example.labels["correct"]
        pool = cities if example.labels["relation"] == "city" else countries
        wrong = example.labels["stated"] if not example.labels["true"] else rng.choice([p for p in pool if p != right])
        true, false = (example.prompt[:start] + place + example.prompt[end:] for place in (right, wrong))
        swap = rng.random() < 0.5
        first.append(false if swap else true)
        second.append(true if swap else false)
        first_is_true.append(int(not swap))
    return ContrastPairs(first, second, np.array(first_is_true))


def first_principal_direction(diffs: Float[Tensor, "example d_model"]) -> Float[Tensor, "d_model"]:
    """The first principal component of the pair differences (``sklearn.decomposition.PCA``, which centres them).

    A unit vector; its sign is arbitrary (PCA's choice), as any unsupervised direction's is.
    """
    component = PCA(n_components=1, svd_solver="full").fit(diffs.numpy()).components_[0]
    return torch.tensor(component, dtype=torch.float32)


class CCSProbe(NamedTuple):
    """A contrast-consistent-search probe: ``p(x) = sigmoid(x · direction + bias)`` on normalised activations."""

    direction: Float[Tensor, "d_model"]     # unit vector (sign arbitrary)
    weight_norm: float
    bias: float
    loss: float                             # the final CCS loss on the training pairs

    def probability(self, x: Float[Tensor, "example d_model"]) -> Float[Tensor, "example"]:
        """``p(x)`` for vectors already normalised by :func:`normalise_set`."""
        return torch.sigmoid(self.weight_norm * (x @ self.direction) + self.bias)

    def first_is_true(self, x_first: Float[Tensor, "example d_model"], x_second: Float[Tensor, "example d_model"]
                      ) -> Float[Tensor, "example"]:
        """Burns et al.'s score that ``first`` is the true one: ``(p(first) + 1 - p(second)) / 2``, each set
        normalised on its own (no labels used); above 1/2 means "first" (up to the probe's arbitrary sign)."""
        return (self.probability(normalise_set(x_first)) + 1 - self.probability(normalise_set(x_second))) / 2


def normalise_set(x: Float[Tensor, "example d_model"]) -> Float[Tensor, "example d_model"]:
    """Centre each set of statements on its own mean and scale it to unit spread, as Burns et al. do."""
    centred = x - x.mean(0)
    return centred / centred.norm(dim=1).mean()


def train_ccs(x_first: Float[Tensor, "example d_model"], x_second: Float[Tensor, "example d_model"],
              seed: int = SEED, steps: int = 300, lr: float = 0.01) -> CCSProbe:
    """Contrast-consistent search: a linear probe trained on the two statements of every pair, no labels.

    The loss asks for **consistency**, ``p(first) = 1 - p(second)`` (exactly one of the two is true), and
    **confidence**, ``min(p(first), p(second))`` near 0 (no answer of 1/2 for both): the mean of
    ``(p1 - (1 - p2))**2 + min(p1, p2)**2``. Each set is normalised on its own first (:func:`normalise_set`), so
    that what is left is what differs between the two statements of a pair. Adam, ``steps`` full-batch steps,
    from weights drawn with ``seed``.
    """
    a, b = normalise_set(x_first), normalise_set(x_second)
    generator = torch.Generator().manual_seed(seed)
    w = (torch.randn(a.shape[1], generator=generator) / a.shape[1] ** 0.5).requires_grad_(True)
    bias = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.Adam([w, bias], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            p1, p2 = torch.sigmoid(a @ w + bias), torch.sigmoid(b @ w + bias)
            loss = ((p1 - (1 - p2)) ** 2 + torch.minimum(p1, p2) ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    w_final = w.detach()
    return CCSProbe(w_final / w_final.norm(), w_final.norm().item(), bias.item(), loss.item())


def sign_agnostic_accuracy(scores: Float[np.ndarray, "example"], labels: Int[np.ndarray, "example"],
                           threshold: float = 0.0) -> float:
    """Accuracy of ``scores > threshold`` as a guess of ``labels``, or of its opposite, whichever is higher."""
    accuracy = float(((np.asarray(scores) > threshold).astype(int) == np.asarray(labels)).mean())
    return max(accuracy, 1 - accuracy)
