"""Lesson 2b, section 5: toy models of superposition whose features come in correlated or anticorrelated pairs.

Lesson 2's toy model (``h = W x``, ``x' = ReLU(Wᵀ h + b)``, :mod:`helpers.lesson2.toy_models`) trained on features
drawn by :func:`~helpers.lesson2.reference_practice.correlated_feature_batch`: pairs ``(0, 1), (2, 3)`` whose two
features fire independently, always together, or never together. One model per entry of ``kinds``, all trained
side by side in one tensor as in lesson 2; ``instance`` indexes them.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from helpers.lesson2.reference_practice import CorrelationKind, correlated_feature_batch
from helpers.lesson2.toy_models import ToyModels

__all__ = ["train_correlated_toy_models", "pair_cosines", "PairCounts", "count_pair_arrangements"]


@torch.enable_grad()
def train_correlated_toy_models(kinds: Sequence[CorrelationKind], n_features: int = 4, n_hidden: int = 2,
                                probability: float = 0.3, n_steps: int = 1000, batch_size: int = 256,
                                lr: float = 1e-2, seed: int = 0) -> ToyModels:
    """Train one toy model per entry of ``kinds`` (all features equally important), side by side.

    Model i sees batches of ``correlated_feature_batch(batch_size, n_features, probability, kinds[i])``.
    """
    generator = torch.Generator().manual_seed(seed)
    n_inst = len(kinds)
    W = torch.empty(n_inst, n_hidden, n_features)
    for i in range(n_inst):
        torch.nn.init.xavier_normal_(W[i], generator=generator)
    W.requires_grad_(True)
    b = torch.zeros(n_inst, n_features, requires_grad=True)
    optimizer = torch.optim.Adam([W, b], lr=lr)
    groups: dict[CorrelationKind, list[int]] = {}
    for i, kind in enumerate(kinds):
        groups.setdefault(kind, []).append(i)
    for _ in tqdm(range(n_steps), desc=f"{n_inst} toy models ({n_features} features, {n_hidden} dims)"):
        x = torch.empty(n_inst, batch_size, n_features)                         # [instance, batch, feature]
        for kind, where in groups.items():       # one draw per kind, cut into a batch for each of its models
            x[where] = correlated_feature_batch(len(where) * batch_size, n_features, probability, kind,
                                                generator).view(len(where), batch_size, n_features)
        x_hat = torch.relu((x @ W.transpose(1, 2)) @ W + b[:, None, :])           # ReLU(Wᵀ W x + b)
        loss = ((x - x_hat) ** 2).sum(-1).mean(-1)                                # [instance]
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
    return ToyModels(W.detach(), b.detach())


def pair_cosines(W: Float[Tensor, "instance d_hidden feature"]) -> Float[Tensor, "instance pair"]:
    """The cosine between the directions of the two features of each pair ``(0, 1), (2, 3), ...``."""
    unit = torch.nn.functional.normalize(W, dim=1)
    return (unit[:, :, 0::2] * unit[:, :, 1::2]).sum(1)


class PairCounts(NamedTuple):
    """How the pairs of a set of models are arranged (:func:`count_pair_arrangements`)."""

    antipodal: int
    """Cosine below -0.9: opposite directions."""
    orthogonal: int
    """|cosine| below 0.1: a dimension each."""
    merged: int
    """Cosine above 0.9: one shared direction."""
    total: int


def count_pair_arrangements(W: Float[Tensor, "instance d_hidden feature"]) -> PairCounts:
    """Count the pairs of all models of ``W`` stored antipodally, orthogonally and merged."""
    cos = pair_cosines(W)
    return PairCounts(int((cos < -0.9).sum()), int((cos.abs() < 0.1).sum()), int((cos > 0.9).sum()), cos.numel())
