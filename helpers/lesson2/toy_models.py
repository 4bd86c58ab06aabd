"""Section 1's experiments: toy models of superposition (Elhage et al. 2022) and measurements of their weights.

One toy model is trained per feature density, all at once in one batched tensor (:func:`train_toy_models`);
``instance`` indexes the models, ``d_hidden`` their hidden width, ``feature`` their input features.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

__all__ = ["ToyModels", "sample_toy_features", "train_toy_models", "feature_norms", "features_represented",
           "dimensions_per_feature", "superposition_per_feature"]


class ToyModels(NamedTuple):
    """Toy models trained side by side, one per density: ``W, b = train_toy_models(...)`` unpacks them."""

    W: Float[Tensor, "instance d_hidden feature"]
    """The weights; ``W[i][:, f]`` is feature f's direction in model i."""
    b: Float[Tensor, "instance feature"]
    """The output biases."""


def sample_toy_features(batch_size: int, densities: Float[Tensor, "instance"], n_features: int,
                        generator: torch.Generator | None = None) -> Float[Tensor, "instance batch feature"]:
    """Sparse feature values for the toy model, one block of examples per instance (density).

    Each feature is, independently, uniform in [0, 1] with probability ``density`` and 0 otherwise.
    (One uniform draw ``u`` does both jobs: the feature is present when ``u < density``, and then
    ``u / density`` is uniform in [0, 1].)
    """
    u = torch.rand(len(densities), batch_size, n_features, generator=generator)
    density = densities[:, None, None]
    return torch.where(u < density, u / density, torch.zeros(()))


def train_toy_models(n_features: int, n_hidden: int, densities: Sequence[float], importance: Float[Tensor, "feature"],
                     n_steps: int = 1500, batch_size: int = 256, lr: float = 1e-2, seed: int = 0) -> ToyModels:
    """Train one toy model per feature density (1.0 = every feature always present), all at once.

    ``importance`` weighs each feature's squared error in the loss.
    """
    generator = torch.Generator().manual_seed(seed)
    n_inst = len(densities)
    W = torch.empty(n_inst, n_hidden, n_features)
    for i in range(n_inst):
        torch.nn.init.xavier_normal_(W[i], generator=generator)
    W.requires_grad_(True)
    b = torch.zeros(n_inst, n_features, requires_grad=True)
    density = torch.tensor(list(densities), dtype=torch.float32)
    optimizer = torch.optim.Adam([W, b], lr=lr)
    for _ in tqdm(range(n_steps), desc=f"{n_inst} toy models ({n_features} features, {n_hidden} dims)"):
        x = sample_toy_features(batch_size, density, n_features, generator)      # [instance, batch, feature]
        hidden = x @ W.transpose(1, 2)                                            # h = W x: [instance, batch, d_hidden]
        x_hat = torch.relu(hidden @ W + b[:, None, :])                            # ReLU(W^T h + b)
        loss = (importance * (x - x_hat) ** 2).sum(-1).mean(-1)                   # [instance]
        optimizer.zero_grad()
        loss.sum().backward()   # the instances share no weights, so summing trains each one separately
        optimizer.step()
    return ToyModels(W.detach(), b.detach())


def feature_norms(W: Float[Tensor, "*instance d_hidden feature"]) -> Float[Tensor, "*instance feature"]:
    """Length of each feature's direction ``||W[:, i]||``."""
    return W.norm(dim=-2)


def features_represented(W: Float[Tensor, "*instance d_hidden feature"],
                         threshold: float = 0.5) -> Int[Tensor, "*instance"]:
    """How many features get a direction of length above ``threshold``."""
    return (feature_norms(W) > threshold).sum(-1)


def dimensions_per_feature(W: Float[Tensor, "*instance d_hidden feature"]) -> Float[Tensor, "*instance"]:
    """Hidden dimensions per represented feature, ``n_hidden / ||W||_F^2`` (Elhage et al.).

    1.0 means one dimension per feature; 0.5 two features per dimension; 0.4 is the pentagon (5 in 2).
    """
    return W.shape[-2] / (W ** 2).sum((-2, -1))


def superposition_per_feature(W: Float[Tensor, "instance d_hidden feature"]) -> Float[Tensor, "instance feature"]:
    """How much each feature shares its direction with the others: ``sum_{j != i} (W_i_hat . W_j)^2``; 0 = a
    dimension of its own."""
    unit = W / W.norm(dim=-2, keepdim=True).clamp(min=1e-6)
    overlap = torch.einsum("ihf,ihg->ifg", unit, W) ** 2            # [instance, feature, feature]
    return overlap.sum(-1) - overlap.diagonal(dim1=-2, dim2=-1)
