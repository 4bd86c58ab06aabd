"""The reference answer of every exercise of workbook 2, named exactly like the exercise.

Part A (plain torch): the toy model's forward pass and loss (exercise 1), the SAE's forward pass (2), its
loss (3), L0 and dead latents (4), the training loop (5). Part B (the bundled SAE on the course model):
clamping a latent (6a) and running the model with the clamp hooked in (6b), and the best ground-truth
label of each latent by AUROC (7), with the AUROC itself (:func:`feature_label_auroc`).

Shapes use the names of :mod:`helpers.shapes`: ``feature`` for the toy model's features (and, in part
B, for whichever latents are being scored), ``d_hidden`` for its hidden width; an SAE reads a vector
``d_model`` wide and has ``d_sae`` latents. The SAE parameters are a plain dict (``Params``), the one
:func:`init_sae_params` returns, so that the learner's loop can hand ``params.values()`` to Adam.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from jaxtyping import Bool, Float, Int
from sae_lens import SAE
from torch import Tensor
from transformer_lens import HookedTransformer

SampleFn = Callable[[int], Tensor]
"""``sample_batch(n) -> [n, d_model]``: fresh activations on every call."""
Params = dict[str, Tensor]
"""An SAE's parameters: ``W_enc [d_model, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_model]``,
``b_dec [d_model]``."""

__all__ = ["SampleFn", "Params", "toy_model_forward", "toy_model_loss", "init_sae_params", "sae_forward",
           "sae_loss", "l0_norm", "count_dead_latents", "train_sae", "clamp_feature", "run_with_clamp",
           "feature_label_auroc", "best_matching_label"]


# ============================================================================ part A
def toy_model_forward(x: Float[Tensor, "batch feature"], W: Float[Tensor, "d_hidden feature"],
                      b: Float[Tensor, "feature"]) -> Float[Tensor, "batch feature"]:
    """Exercise 1a. The toy model: squeeze ``x`` into a few hidden dimensions and read it back out.

    ``W``'s column ``W[:, i]`` is feature i's direction. Returns ``ReLU(W^T W x + b)``: the hidden layer
    ``h = W x`` is linear (no ReLU there); the ReLU is applied on the way out only.
    """
    hidden = x @ W.T                    # [batch, d_hidden]
    return torch.relu(hidden @ W + b)   # [batch, feature]


def toy_model_loss(x: Float[Tensor, "batch feature"], x_hat: Float[Tensor, "batch feature"],
                   importance: Float[Tensor, "feature"]) -> Float[Tensor, ""]:
    """Exercise 1b. Importance-weighted squared error: sum over features of ``I_i (x_i - x_hat_i)^2``, mean over
    the batch."""
    return (importance * (x - x_hat) ** 2).sum(-1).mean()


def init_sae_params(d_in: int, d_sae: int, seed: int = 0) -> Params:
    """Fresh SAE parameters, ready for an optimizer (each ``requires_grad``).

    Decoder rows are random unit vectors; the encoder starts as the decoder's transpose; biases at 0.
    """
    generator = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(d_sae, d_in, generator=generator)
    W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True)
    params = {"W_enc": W_dec.T.clone(), "b_enc": torch.zeros(d_sae), "W_dec": W_dec, "b_dec": torch.zeros(d_in)}
    return {name: value.requires_grad_(True) for name, value in params.items()}


def sae_forward(x: Float[Tensor, "batch d_model"], params: Params) -> tuple[
        Float[Tensor, "batch d_sae"], Float[Tensor, "batch d_sae"], Float[Tensor, "batch d_model"]]:
    """Exercise 2. Encode ``x`` into sparse latents and decode it back: ``(feature_acts, hidden_pre, x_hat)``.

    ``hidden_pre = (x - b_dec) @ W_enc + b_enc``; ``feature_acts = ReLU(hidden_pre)``;
    ``x_hat = feature_acts @ W_dec_unit + b_dec``, where each row of ``W_dec_unit`` is the matching row
    of ``W_dec`` scaled to length 1 (the maths of SAELens's ``StandardTrainingSAE``).
    """
    hidden_pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
    feature_acts = torch.relu(hidden_pre)
    W_dec_unit = params["W_dec"] / params["W_dec"].norm(dim=-1, keepdim=True)
    x_hat = feature_acts @ W_dec_unit + params["b_dec"]
    return feature_acts, hidden_pre, x_hat


def sae_loss(x: Float[Tensor, "batch d_model"], feature_acts: Float[Tensor, "batch d_sae"],
             hidden_pre: Float[Tensor, "batch d_sae"], x_hat: Float[Tensor, "batch d_model"],
             l1_coefficient: float) -> tuple[Float[Tensor, ""], Float[Tensor, ""], Float[Tensor, ""]]:
    """Exercise 3. ``(loss, reconstruction, sparsity)``, three scalars, each averaged over the batch.

    ``reconstruction`` = squared error summed over ``d_model``; ``sparsity`` = L1 norm of ``feature_acts``
    summed over ``d_sae``; ``loss = reconstruction + l1_coefficient * sparsity``.
    """
    reconstruction = ((x_hat - x) ** 2).sum(-1).mean()
    sparsity = feature_acts.abs().sum(-1).mean()
    return reconstruction + l1_coefficient * sparsity, reconstruction, sparsity


def l0_norm(feature_acts: Float[Tensor, "batch d_sae"]) -> float:
    """Exercise 4a. Average number of latents that are non-zero per example."""
    return (feature_acts != 0).float().sum(-1).mean().item()


def count_dead_latents(feature_acts: Float[Tensor, "batch d_sae"]) -> int:
    """Exercise 4b. How many latents are zero on every example of the batch."""
    return int((feature_acts != 0).any(dim=0).logical_not().sum())


def train_sae(sample_batch: SampleFn, d_in: int, d_sae: int, l1_coefficient: float, n_steps: int = 1000,
              batch_size: int = 256, lr: float = 3e-3, seed: int = 0) -> Params:
    """Exercise 5. Train a sparse autoencoder with Adam on batches from ``sample_batch(batch_size)``.

    Returns the trained parameters (the dict of :func:`init_sae_params`).
    """
    params = init_sae_params(d_in, d_sae, seed)
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    for _ in range(n_steps):
        x = sample_batch(batch_size)
        loss, _, _ = sae_loss(x, *sae_forward(x, params), l1_coefficient)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return params


# ============================================================================ part B
def clamp_feature(resid: Float[Tensor, "batch pos d_model"], sae: SAE, feature: int,
                  value: float) -> Float[Tensor, "batch pos d_model"]:
    """Exercise 6a. ``resid`` with latent ``feature`` set to ``value`` at every position.

    The SAE's error term (what its reconstruction misses) is kept, so nothing changes except the
    one latent: ``decode(latents with feature := value) + (resid - decode(latents))``, which equals
    ``resid + (value - latents[..., feature]) * W_dec[feature]``.
    """
    latents = sae.encode(resid)
    error = resid - sae.decode(latents)
    latents[..., feature] = value
    return sae.decode(latents) + error


def run_with_clamp(model: HookedTransformer, sae: SAE, tokens: Int[Tensor, "batch pos"], feature: int,
                   value: float) -> Float[Tensor, "batch pos d_vocab"]:
    """Exercise 6b. Logits of ``model`` on ``tokens`` with ``feature`` clamped to ``value`` at the SAE's hook
    (``sae.cfg.metadata.hook_name``, every position), via ``model.run_with_hooks``."""
    def hook_fn(resid: Float[Tensor, "batch pos d_model"], hook: object) -> Float[Tensor, "batch pos d_model"]:
        return clamp_feature(resid, sae, feature, value)

    return model.run_with_hooks(tokens, fwd_hooks=[(sae.cfg.metadata.hook_name, hook_fn)])


def feature_label_auroc(acts: Float[Tensor, "example feature"],
                        labels: Bool[Tensor, "example label"]) -> Float[Tensor, "feature label"]:
    """AUROC of every feature (latent) for every label.

    AUROC = the probability that a random token with the label has a higher activation than a random
    token without it, ties counting one half (the Mann-Whitney U statistic, from ranks). 0.5: the
    feature ignores the label; 1.0: it separates the label's tokens perfectly.
    """
    acts, y = acts.float(), labels.float()
    n, n_features = acts.shape
    # Rank the tokens 1..n within each feature's column. Inactive tokens (activation 0, the large
    # majority) tie, and share the average rank r0 = (n_zero + 1) / 2; an active token ranks above
    # all of them, by its place among the active ones. Only the active entries need sorting.
    n_zero = (acts == 0).sum(0).float()                               # [feature]
    token, feature = (acts != 0).nonzero(as_tuple=True)
    value = acts[token, feature]
    order = torch.sort(value, stable=True).indices
    order = order[torch.sort(feature[order], stable=True).indices]    # by feature, then by value
    token, feature, value = token[order], feature[order], value[order]
    counts = torch.bincount(feature, minlength=n_features)
    position = torch.arange(len(feature)) - (torch.cumsum(counts, 0) - counts)[feature] + 1.0
    # equal activations of one feature share the average of their positions
    new_run = torch.ones(len(feature), dtype=torch.bool)
    new_run[1:] = (feature[1:] != feature[:-1]) | (value[1:] != value[:-1])
    run = torch.cumsum(new_run, 0) - 1
    n_runs = int(run[-1]) + 1 if len(run) else 0
    first = torch.zeros(n_runs).scatter_reduce(0, run, position, "amin", include_self=False)
    last = torch.zeros(n_runs).scatter_reduce(0, run, position, "amax", include_self=False)
    rank_among_active = (first[run] + last[run]) / 2
    excess = n_zero[feature] + rank_among_active - (n_zero[feature] + 1) / 2   # rank above r0
    sparse = torch.sparse_coo_tensor(torch.stack([feature, token]), excess, (n_features, n), check_invariants=False)
    n_pos = y.sum(0)                                                  # [label]
    rank_sums = (n_zero[:, None] + 1) / 2 * n_pos + torch.sparse.mm(sparse, y)   # [feature, label]
    n_neg = n - n_pos
    return (rank_sums - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg).clamp(min=1)


def best_matching_label(feature_acts: Float[Tensor, "example feature"], labels: Bool[Tensor, "example label"]
                        ) -> tuple[Int[Tensor, "feature"], Float[Tensor, "feature"]]:
    """Exercise 7. For each feature, the label with the highest AUROC and that AUROC: ``(best_label, best_auroc)``."""
    best, index = feature_label_auroc(feature_acts, labels).max(-1)
    return index, best
