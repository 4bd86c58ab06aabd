"""Sections 2 and 3's experiments: SAEs on synthetic activations with planted features.

The activations come from ``sae_lens.synthetic`` (a ``FeatureDictionary`` and an ``ActivationGenerator``,
wrapped by :func:`synthetic_sampler`). :func:`train_saes_batched` trains many SAEs side by side in one
tensor (the maths of :func:`~helpers.lesson2.reference.sae_forward` and ``sae_loss`` with an ``instance``
dimension in front), for the sweeps over the L1 coefficient and over the width; :func:`evaluate_saes`
measures them against the planted directions.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from tqdm.auto import tqdm

from helpers.lesson2.reference import SampleFn, count_dead_latents, init_sae_params, l0_norm

__all__ = ["BatchedSAEs", "SAEEvaluation", "train_saes_batched", "batched_forward", "evaluate_saes",
           "synthetic_sampler", "mean_max_cosine", "best_match_order", "family_latents"]


@dataclass(frozen=True)
class BatchedSAEs:
    """SAEs trained side by side, one per ``instance``: ``W_dec[i]`` is SAE i's decoder (unit rows)."""

    W_enc: Float[Tensor, "instance d_model d_sae"]
    b_enc: Float[Tensor, "instance d_sae"]
    W_dec: Float[Tensor, "instance d_sae d_model"]
    b_dec: Float[Tensor, "instance d_model"]
    mask: Float[Tensor, "instance d_sae"]
    """1 for a latent in use, 0 past the SAE's width."""


@dataclass(frozen=True)
class SAEEvaluation:
    """:func:`evaluate_saes`'s measurements, one list entry per SAE."""

    mse: list[float]
    """Squared error summed over ``d_model``, mean over the batch."""
    explained_variance: list[float]
    l0: list[float]
    dead: list[int]
    """Latents in use that never fired."""
    mean_max_cosine: list[float]
    """See :func:`mean_max_cosine`."""


def train_saes_batched(sample_batch: SampleFn, d_in: int, d_sae: int, l1_coefficients: Sequence[float],
                       widths: Sequence[int] | None = None, n_steps: int = 1500, batch_size: int = 512,
                       lr: float = 3e-3, seed: int = 0, desc: str = "SAEs") -> BatchedSAEs:
    """Train one SAE per entry of ``l1_coefficients``, side by side in one tensor, on the same batches.

    ``widths`` (optional, one per SAE) switches off all latents past that SAE's width, so SAEs of
    different sizes train together.
    """
    n_inst = len(l1_coefficients)
    widths = list(widths) if widths is not None else [d_sae] * n_inst
    mask = torch.stack([(torch.arange(d_sae) < w).float() for w in widths])          # [instance, d_sae]
    init = [init_sae_params(d_in, d_sae, seed) for _ in range(n_inst)]
    params = {name: torch.stack([p[name].detach() for p in init]).requires_grad_(True) for name in init[0]}
    l1 = torch.tensor(list(l1_coefficients), dtype=torch.float32)
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    for _ in tqdm(range(n_steps), desc=desc):
        x = sample_batch(batch_size)
        feature_acts, x_hat = _forward(x, params["W_enc"], params["b_enc"], params["W_dec"], params["b_dec"], mask)
        reconstruction = ((x_hat - x) ** 2).sum(-1).mean(-1)                            # [instance]
        sparsity = feature_acts.sum(-1).mean(-1)                                        # [instance]
        optimizer.zero_grad()
        (reconstruction + l1 * sparsity).sum().backward()
        optimizer.step()
    out = {name: value.detach() for name, value in params.items()}
    return BatchedSAEs(out["W_enc"], out["b_enc"], out["W_dec"] / out["W_dec"].norm(dim=-1, keepdim=True),
                       out["b_dec"], mask)


def _forward(x: Float[Tensor, "batch d_model"], W_enc: Float[Tensor, "instance d_model d_sae"],
             b_enc: Float[Tensor, "instance d_sae"], W_dec: Float[Tensor, "instance d_sae d_model"],
             b_dec: Float[Tensor, "instance d_model"], mask: Float[Tensor, "instance d_sae"]
             ) -> tuple[Float[Tensor, "instance batch d_sae"], Float[Tensor, "instance batch d_model"]]:
    hidden_pre = torch.einsum("nbd,nds->nbs", x[None] - b_dec[:, None], W_enc)
    feature_acts = torch.relu(hidden_pre + b_enc[:, None]) * mask[:, None]
    W_dec_unit = W_dec / W_dec.norm(dim=-1, keepdim=True)
    return feature_acts, torch.einsum("nbs,nsd->nbd", feature_acts, W_dec_unit) + b_dec[:, None]


def batched_forward(saes: BatchedSAEs, x: Float[Tensor, "batch d_model"]
                    ) -> tuple[Float[Tensor, "instance batch d_sae"], Float[Tensor, "instance batch d_model"]]:
    """``sae_forward`` for every SAE of ``saes``: ``(feature_acts, x_hat)``."""
    return _forward(x, saes.W_enc, saes.b_enc, saes.W_dec, saes.b_dec, saes.mask)


@torch.no_grad()
def evaluate_saes(saes: BatchedSAEs, x: Float[Tensor, "batch d_model"],
                  true_directions: Float[Tensor, "feature d_model"]) -> SAEEvaluation:
    """Measure batched SAEs on held-out activations ``x`` against the ground-truth feature directions."""
    feature_acts, x_hat = batched_forward(saes, x)
    mse = ((x_hat - x) ** 2).sum(-1).mean(-1)
    variance = ((x - x.mean(0)) ** 2).sum(-1).mean()
    in_use = saes.mask.bool()
    return SAEEvaluation(
        mse=mse.tolist(), explained_variance=(1 - mse / variance).tolist(),
        l0=[l0_norm(feature_acts[i][:, keep]) for i, keep in enumerate(in_use)],
        dead=[count_dead_latents(feature_acts[i][:, keep]) for i, keep in enumerate(in_use)],
        mean_max_cosine=[mean_max_cosine(true_directions, saes.W_dec[i][keep]) for i, keep in enumerate(in_use)])


def synthetic_sampler(feature_dict: torch.nn.Module, activation_generator: torch.nn.Module) -> SampleFn:
    """Wrap a SAELens ``FeatureDictionary`` and ``ActivationGenerator`` as ``sample_batch(n) -> [n, d_model]``.

    The generator draws from torch's global random state: seed it with ``torch.manual_seed``.
    """
    @torch.no_grad()
    def sample_batch(batch_size: int) -> Float[Tensor, "batch d_model"]:
        return feature_dict(activation_generator.sample(batch_size))  # type: ignore[operator]  # an nn.Module

    return sample_batch


def mean_max_cosine(true_directions: Float[Tensor, "feature d_model"],
                    decoder: Float[Tensor, "d_sae d_model"]) -> float:
    """For each true feature, the best cosine similarity with any SAE decoder row; averaged.

    A float in [-1, 1]; 1.0 means every true feature has a latent pointing exactly along it.
    """
    true_unit = torch.nn.functional.normalize(true_directions.detach().float(), dim=-1)
    dec_unit = torch.nn.functional.normalize(decoder.detach().float(), dim=-1)
    return (true_unit @ dec_unit.T).max(dim=1).values.mean().item()


def best_match_order(true_directions: Float[Tensor, "feature d_model"],
                     decoder: Float[Tensor, "d_sae d_model"]) -> list[int]:
    """A one-to-one matching of latents to true features (Hungarian algorithm), for plotting.

    Returns latent indices: first the latent matched to feature 0, 1, ...; then the unmatched ones.
    """
    cos = torch.nn.functional.normalize(true_directions.detach(), dim=-1) @ \
        torch.nn.functional.normalize(decoder.detach(), dim=-1).T
    rows, cols = linear_sum_assignment(-cos.numpy())
    matched = [int(c) for _, c in sorted(zip(rows, cols))]
    return matched + [j for j in range(decoder.shape[0]) if j not in matched]


def family_latents(decoder: Float[Tensor, "d_sae d_model"], parent_direction: Float[Tensor, "d_model"],
                   threshold: float = 0.6) -> list[int]:
    """Latents whose decoder row points mostly along the parent feature (cosine above ``threshold``)."""
    cos = torch.nn.functional.normalize(decoder, dim=-1) @ torch.nn.functional.normalize(parent_direction, dim=0)
    return [int(i) for i in torch.nonzero(cos > threshold).flatten()]
