"""Lesson 2b, sections 3 and 4: ReLU, TopK and JumpReLU SAEs on lesson 2's planted features, and dead latents.

The SAEs were trained by ``scripts/train_synthetic_saes.py`` with SAELens's own classes and ``train_toy_sae``
(the notebook's budget cannot pay for training eight of them) and load with ``SAE.load_from_disk``.
:func:`evaluate_architecture` measures one against the planted features: reconstruction, L0, dead latents,
how many planted features it recovers (lesson 2's rule: a latent at cosine >= 0.9) and its **shrinkage**, the
least-squares scale of its activations against the true feature values on matched pairs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch
from jaxtyping import Float
from sae_lens import SAE
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from helpers.lesson2.reference_practice import shrinkage_factor
from helpers.models import MODELS_DIR

SYNTHETIC_SAE_DIR = MODELS_DIR / "synthetic_saes"
RECOVERED_COSINE = 0.9          # lesson 2's line: a planted feature is recovered by a latent this close to it

__all__ = ["SYNTHETIC_SAE_DIR", "RECOVERED_COSINE", "load_synthetic_sae", "synthetic_training_record",
           "ArchitectureEvaluation", "matched_latents", "evaluate_architecture"]


def load_synthetic_sae(name: str) -> SAE:
    """The SAE ``name`` (``"relu"``, ``"topk-3"``, ``"jumprelu"``, ...) trained on lesson 2's synthetic data."""
    return SAE.load_from_disk(SYNTHETIC_SAE_DIR / name).eval()


def synthetic_training_record() -> dict:
    """How ``scripts/train_synthetic_saes.py`` trained them (``models/synthetic_saes/training_record.json``)."""
    return json.loads((SYNTHETIC_SAE_DIR / "training_record.json").read_text())


@dataclass(frozen=True)
class ArchitectureEvaluation:
    """:func:`evaluate_architecture`'s measurements of one SAE on held-out synthetic examples."""

    l0: float
    mse: float
    """Squared error summed over ``d_in``, mean over examples."""
    explained_variance: float
    dead: int
    """Latents that never fire on the held-out examples."""
    recovered: int
    """Planted features with a latent at cosine >= ``RECOVERED_COSINE``."""
    shrinkage: float
    """Least-squares scale of the matched latents' values against the true feature values (1 = none)."""
    true_values: Float[Tensor, "example feature"]
    """The true values of the matched features (columns: matched features only)."""
    sae_values: Float[Tensor, "example feature"]
    """The matched latents' values, along their unit decoder direction, same columns."""


def matched_latents(true_directions: Float[Tensor, "feature d_model"], decoder: Float[Tensor, "d_sae d_model"]
                    ) -> tuple[list[int], list[int]]:
    """A one-to-one matching (Hungarian algorithm on cosines) kept where the cosine is >= ``RECOVERED_COSINE``:
    ``(features, latents)``, the pairs in feature order."""
    cos = torch.nn.functional.normalize(true_directions, dim=-1) @ torch.nn.functional.normalize(decoder, dim=-1).T
    rows, cols = linear_sum_assignment(-cos.numpy())
    pairs = sorted((int(f), int(j)) for f, j in zip(rows, cols) if cos[f, j] >= RECOVERED_COSINE)
    return [f for f, _ in pairs], [j for _, j in pairs]


@torch.no_grad()
def evaluate_architecture(sae: SAE, feature_acts: Float[Tensor, "example feature"], x: Float[Tensor, "example d_model"],
                          true_directions: Float[Tensor, "feature d_model"]) -> ArchitectureEvaluation:
    """Measure ``sae`` on examples ``x`` made of the true feature values ``feature_acts``.

    A latent's value is read along its *unit* decoder direction (``value × ‖W_dec row‖``): SAELens leaves the
    decoder rows free, so the same reconstruction can hide any split of size between the two.
    """
    latents = sae.encode(x)
    x_hat = sae.decode(latents)
    mse = ((x_hat - x) ** 2).sum(-1).mean()
    variance = ((x - x.mean(0)) ** 2).sum(-1).mean()
    decoder = sae.W_dec.detach()
    values = latents * decoder.norm(dim=-1)
    cos = torch.nn.functional.normalize(true_directions, dim=-1) @ torch.nn.functional.normalize(decoder, dim=-1).T
    features, matched = matched_latents(true_directions, decoder)
    true_values, sae_values = feature_acts[:, features], values[:, matched]
    return ArchitectureEvaluation(
        l0=(latents > 0).float().sum(-1).mean().item(), mse=mse.item(), explained_variance=(1 - mse / variance).item(),
        dead=int(((latents > 0).sum(0) == 0).sum()), recovered=int((cos.max(1).values >= RECOVERED_COSINE).sum()),
        shrinkage=shrinkage_factor(true_values, sae_values), true_values=true_values, sae_values=sae_values)
