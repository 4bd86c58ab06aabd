"""Lesson 2 (superposition and sparse autoencoders): reference code, small experiments, plots, checks.

The lesson notebook and its workbook import this module. It holds:

* the toy model of superposition (Elhage et al. 2022), trained for many feature densities at
  once in one batched tensor (:func:`train_toy_models`), and measurements of its weights;
* a plain-torch sparse autoencoder with the same maths as SAELens's ``StandardTrainingSAE``
  (:func:`sae_forward`, :func:`sae_loss`, :func:`train_sae`), and a batched version that trains
  many SAEs side by side for the sweeps (:func:`train_saes_batched`);
* synthetic activations with known features, built on ``sae_lens.synthetic``;
* the plots, and one check per workbook exercise (``check_*``), each of which prints one line.

Shapes are written as ``[batch, n_features]`` and so on. ``n_inst`` is the number of model
instances trained side by side in one tensor.
"""
from __future__ import annotations

import inspect
import math
import random
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from tqdm.auto import tqdm

from helpers.checks import Case, CheckResult, check_function, single_threaded

SampleFn = Callable[[int], torch.Tensor]
Params = dict[str, torch.Tensor]

__all__ = [
    "show_code",
    # toy models of superposition
    "toy_model_forward", "toy_model_loss", "sample_toy_features", "train_toy_models",
    "feature_norms", "features_represented", "dimensions_per_feature", "superposition_per_feature",
    "plot_feature_directions", "plot_superposition_overview", "plot_dimensions_per_feature",
    "density_slider",
    # sparse autoencoders
    "init_sae_params", "sae_forward", "sae_loss", "l0_norm", "count_dead_latents", "train_sae",
    "train_saes_batched", "evaluate_saes", "synthetic_sampler", "mean_max_cosine", "best_match_order",
    "plot_cosine_matrix", "plot_l1_tradeoff", "plot_feature_splitting", "family_latents",
    # checks
    "check_toy_model_forward", "check_toy_model_loss", "check_sae_forward", "check_sae_loss",
    "check_l0_norm", "check_count_dead_latents", "check_train_sae",
]


def show_code(obj: Any):
    """Display the source code of a function or class, syntax-highlighted, in a notebook."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


# =====================================================================================
# Part A.1: toy models of superposition
# =====================================================================================

def toy_model_forward(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The toy model: squeeze ``x`` into a few hidden dimensions and read it back out.

    Args:
        x: feature values, ``[batch, n_features]``.
        W: the weights, ``[n_hidden, n_features]``; column ``W[:, i]`` is feature i's direction.
        b: output bias, ``[n_features]``.

    Returns:
        The reconstruction ``ReLU(W^T W x + b)``, ``[batch, n_features]``. The hidden layer
        ``h = W x`` is linear (no ReLU there); the ReLU is applied on the way out only.
    """
    hidden = x @ W.T                    # [batch, n_hidden]
    return torch.relu(hidden @ W + b)   # [batch, n_features]


def toy_model_loss(x: torch.Tensor, x_hat: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """Importance-weighted squared error: sum over features of ``I_i (x_i - x_hat_i)^2``, mean over the batch.

    Args:
        x, x_hat: ``[batch, n_features]``.
        importance: ``[n_features]``, how much an error on each feature costs.

    Returns:
        A scalar tensor.
    """
    return (importance * (x - x_hat) ** 2).sum(-1).mean()


def sample_toy_features(batch_size: int, densities: torch.Tensor, n_features: int,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Sparse feature values for the toy model, one block of examples per instance (density).

    Each feature is, independently, uniform in [0, 1] with probability ``density`` and 0 otherwise.
    (One uniform draw ``u`` does both jobs: the feature is present when ``u < density``, and then
    ``u / density`` is uniform in [0, 1].)

    Args:
        densities: ``[n_inst]``, the probability that a feature is non-zero, per instance.

    Returns:
        ``[n_inst, batch, n_features]``.
    """
    u = torch.rand(len(densities), batch_size, n_features, generator=generator)
    density = densities[:, None, None]
    return torch.where(u < density, u / density, torch.zeros(()))


def train_toy_models(n_features: int, n_hidden: int, densities: Sequence[float], importance: torch.Tensor,
                     n_steps: int = 1500, batch_size: int = 256, lr: float = 1e-2,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Train one toy model per feature density, all at once in one batched tensor.

    Args:
        densities: one feature density per instance (1.0 = every feature always present).
        importance: ``[n_features]``, weight of each feature in the loss.

    Returns:
        ``W`` ``[n_inst, n_hidden, n_features]`` and ``b`` ``[n_inst, n_features]``.
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
        x = sample_toy_features(batch_size, density, n_features, generator)      # [n_inst, batch, n_features]
        hidden = x @ W.transpose(1, 2)                                            # h = W x: [n_inst, batch, n_hidden]
        x_hat = torch.relu(hidden @ W + b[:, None, :])                            # ReLU(W^T h + b)
        loss = (importance * (x - x_hat) ** 2).sum(-1).mean(-1)                   # [n_inst]
        optimizer.zero_grad()
        loss.sum().backward()   # the instances share no weights, so summing trains each one separately
        optimizer.step()
    return W.detach(), b.detach()


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """Length of each feature's direction ``||W[:, i]||``: ``[..., n_hidden, n_features] -> [..., n_features]``."""
    return W.norm(dim=-2)


def features_represented(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """How many features get a direction of length above ``threshold``: ``[n_inst, n_hidden, n_features] -> [n_inst]``."""
    return (feature_norms(W) > threshold).sum(-1)


def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """Hidden dimensions per represented feature, ``n_hidden / ||W||_F^2`` (Elhage et al.): ``-> [n_inst]``.

    1.0 means one dimension per feature; 0.5 two features per dimension; 0.4 is the pentagon (5 in 2).
    """
    return W.shape[-2] / (W ** 2).sum((-2, -1))


def superposition_per_feature(W: torch.Tensor) -> torch.Tensor:
    """How much each feature shares its direction with the others: ``sum_{j != i} (W_i_hat . W_j)^2``.

    ``[n_inst, n_hidden, n_features] -> [n_inst, n_features]``; 0 = a dimension of its own.
    """
    unit = W / W.norm(dim=-2, keepdim=True).clamp(min=1e-6)
    overlap = torch.einsum("ihf,ihg->ifg", unit, W) ** 2            # [n_inst, n_features, n_features]
    return overlap.sum(-1) - overlap.diagonal(dim1=-2, dim2=-1)


def plot_feature_directions(W: torch.Tensor, ax: plt.Axes, title: str = "") -> None:
    """Draw each feature's 2-D direction ``W[:, i]`` (``W``: ``[2, n_features]``) as an arrow from the origin."""
    colors = plt.cm.viridis(np.linspace(0, 0.9, W.shape[1]))
    ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="lightgrey", lw=1, ls="--"))   # length 1
    for i in range(W.shape[1]):
        x, y = W[0, i].item(), W[1, i].item()
        ax.plot([0, x], [0, y], color=colors[i], lw=2)
        ax.scatter([x], [y], color=colors[i], s=18, zorder=3)
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _plot_wtw(W: torch.Tensor, ax: plt.Axes, title: str = "") -> None:
    """Heat map of ``W^T W`` (``W``: ``[n_hidden, n_features]``): feature-by-feature overlaps (blue +, red -)."""
    ax.imshow((W.T @ W).numpy(), cmap="RdBu", vmin=-1.3, vmax=1.3)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _plot_norm_bars(W: torch.Tensor, ax: plt.Axes) -> None:
    """Bars of ``||W_i||`` per feature, coloured from black (own dimension) to yellow (shares one)."""
    norms = feature_norms(W).numpy()
    share = superposition_per_feature(W[None])[0].clamp(0, 1).numpy()
    ax.barh(np.arange(len(norms)), norms, color=plt.cm.plasma(share * 0.9))
    ax.set_xlim(0, 1.3)
    ax.invert_yaxis()
    ax.set_yticks([])
    ax.tick_params(labelsize=7)


def plot_superposition_overview(W_small: torch.Tensor, W_large: torch.Tensor,
                                densities: Sequence[float]) -> plt.Figure:
    """One column per density: the 2-D model's feature directions, and the larger model's ``W^T W`` and norms.

    Args:
        W_small: ``[n_inst, 2, n_features_small]``; W_large: ``[n_inst, n_hidden, n_features]``.
    """
    n = len(densities)
    fig, axes = plt.subplots(3, n, figsize=(1.9 * n, 6.2), gridspec_kw={"height_ratios": [1, 1, 1.1]})
    for i, density in enumerate(densities):
        plot_feature_directions(W_small[i], axes[0, i], f"density {density:g}")
        _plot_wtw(W_large[i], axes[1, i])
        _plot_norm_bars(W_large[i], axes[2, i])
    axes[0, 0].set_ylabel(f"{W_small.shape[-1]} features\nin 2 dims", fontsize=9)
    axes[1, 0].set_ylabel(r"$W^TW$" + f"\n{W_large.shape[-1]} features\nin {W_large.shape[-2]} dims", fontsize=9)
    axes[2, 0].set_ylabel("length of\neach feature", fontsize=9)
    fig.suptitle("From one feature per dimension (left) to superposition (right)", fontsize=11)
    fig.tight_layout()
    return fig


def plot_dimensions_per_feature(W: torch.Tensor, densities: Sequence[float]) -> plt.Figure:
    """Features represented and dimensions per feature against 1/density (log scale)."""
    inv = 1 / np.asarray(densities)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    ax1.plot(inv, features_represented(W).numpy(), "o-")
    ax1.axhline(W.shape[-2], color="grey", ls="--", lw=1)
    ax1.text(inv[0], W.shape[-2] + 0.3, f"n_hidden = {W.shape[-2]}", fontsize=8, color="grey")
    ax1.set(xscale="log", xlabel="1 / feature density", ylabel="features represented (length > 0.5)")
    ax2.plot(inv, dimensions_per_feature(W).numpy(), "o-", color="C1")
    for value, label in [(1, "1"), (1 / 2, "1/2"), (2 / 5, "2/5")]:
        ax2.axhline(value, color="grey", ls=":", lw=1)
        ax2.text(inv[-1], value + 0.01, label, fontsize=8, color="grey", ha="right")
    ax2.set(xscale="log", xlabel="1 / feature density", ylabel="dimensions per feature", ylim=(0, 1.1))
    fig.tight_layout()
    return fig


def density_slider(W_small: torch.Tensor, W_large: torch.Tensor, densities: Sequence[float]):
    """An ipywidgets slider over the densities that redraws the three views for the chosen one."""
    import ipywidgets as widgets

    def show(density: float) -> None:
        i = list(densities).index(density)
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1, 0.8]})
        plot_feature_directions(W_small[i], axes[0], f"{W_small.shape[-1]} features in 2 dims")
        _plot_wtw(W_large[i], axes[1], f"$W^TW$, {W_large.shape[-1]} features in {W_large.shape[-2]} dims")
        _plot_norm_bars(W_large[i], axes[2])
        axes[2].set_title(f"{int(features_represented(W_large[i:i + 1])[0])} features represented", fontsize=9)
        fig.suptitle(f"feature density {density:g}", fontsize=11)
        plt.show()

    slider = widgets.SelectionSlider(options=list(densities), value=densities[0], description="density",
                                     continuous_update=False)
    return widgets.interactive(show, density=slider)


# =====================================================================================
# Part A.2: sparse autoencoders (plain torch, the maths of SAELens's StandardTrainingSAE)
# =====================================================================================

def init_sae_params(d_in: int, d_sae: int, seed: int = 0) -> Params:
    """Fresh SAE parameters, ready for an optimizer (each ``requires_grad``).

    Decoder rows are random unit vectors; the encoder starts as the decoder's transpose; biases at 0.

    Returns:
        ``{"W_enc": [d_in, d_sae], "b_enc": [d_sae], "W_dec": [d_sae, d_in], "b_dec": [d_in]}``.
    """
    generator = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(d_sae, d_in, generator=generator)
    W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True)
    params = {"W_enc": W_dec.T.clone(), "b_enc": torch.zeros(d_sae), "W_dec": W_dec, "b_dec": torch.zeros(d_in)}
    return {name: value.requires_grad_(True) for name, value in params.items()}


def sae_forward(x: torch.Tensor, params: Params) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode ``x`` into sparse latents and decode it back.

    Args:
        x: activations, ``[batch, d_in]``.
        params: ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``, ``b_dec [d_in]``.

    Returns:
        ``(feature_acts, hidden_pre, x_hat)``: ``[batch, d_sae]``, ``[batch, d_sae]``, ``[batch, d_in]``.
        ``hidden_pre = (x - b_dec) @ W_enc + b_enc``; ``feature_acts = ReLU(hidden_pre)``;
        ``x_hat = feature_acts @ W_dec_unit + b_dec``, where each row of ``W_dec_unit`` is the
        matching row of ``W_dec`` scaled to length 1.
    """
    hidden_pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
    feature_acts = torch.relu(hidden_pre)
    W_dec_unit = params["W_dec"] / params["W_dec"].norm(dim=-1, keepdim=True)
    x_hat = feature_acts @ W_dec_unit + params["b_dec"]
    return feature_acts, hidden_pre, x_hat


def sae_loss(x: torch.Tensor, feature_acts: torch.Tensor, hidden_pre: torch.Tensor, x_hat: torch.Tensor,
             l1_coefficient: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The SAE loss: reconstruction error plus ``l1_coefficient`` times the L1 norm of the latents.

    Args:
        x, x_hat: ``[batch, d_in]``; feature_acts, hidden_pre: ``[batch, d_sae]``.

    Returns:
        ``(loss, reconstruction, sparsity)``, three scalar tensors, each averaged over the batch:
        ``reconstruction`` = squared error summed over ``d_in``; ``sparsity`` = L1 norm of
        ``feature_acts`` summed over ``d_sae``; ``loss = reconstruction + l1_coefficient * sparsity``.
    """
    reconstruction = ((x_hat - x) ** 2).sum(-1).mean()
    sparsity = feature_acts.abs().sum(-1).mean()
    return reconstruction + l1_coefficient * sparsity, reconstruction, sparsity


def l0_norm(feature_acts: torch.Tensor) -> float:
    """Average number of latents that are non-zero per example: ``[batch, d_sae] -> float``."""
    return (feature_acts != 0).float().sum(-1).mean().item()


def count_dead_latents(feature_acts: torch.Tensor) -> int:
    """How many latents are zero on every example of the batch: ``[batch, d_sae] -> int``."""
    return int((feature_acts != 0).any(dim=0).logical_not().sum())


def train_sae(sample_batch: SampleFn, d_in: int, d_sae: int, l1_coefficient: float, n_steps: int = 1000,
              batch_size: int = 256, lr: float = 3e-3, seed: int = 0) -> Params:
    """Train a sparse autoencoder with Adam on batches from ``sample_batch(batch_size) -> [batch, d_in]``.

    Returns:
        The trained parameters (the dict of :func:`init_sae_params`).
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


def train_saes_batched(sample_batch: SampleFn, d_in: int, d_sae: int, l1_coefficients: Sequence[float],
                       widths: Sequence[int] | None = None, n_steps: int = 1500, batch_size: int = 512,
                       lr: float = 3e-3, seed: int = 0, desc: str = "SAEs") -> Params:
    """Train one SAE per entry of ``l1_coefficients``, side by side in one tensor, on the same batches.

    The maths is :func:`sae_forward` and :func:`sae_loss` with an instance dimension in front.
    ``widths`` (optional, one per SAE) switches off all latents past that SAE's width, so SAEs of
    different sizes train together.

    Returns:
        ``W_enc [n_inst, d_in, d_sae]``, ``b_enc [n_inst, d_sae]``, ``W_dec [n_inst, d_sae, d_in]``
        (unit rows), ``b_dec [n_inst, d_in]`` and ``mask [n_inst, d_sae]`` (1 = latent in use).
    """
    n_inst = len(l1_coefficients)
    widths = list(widths) if widths is not None else [d_sae] * n_inst
    mask = torch.stack([(torch.arange(d_sae) < w).float() for w in widths])          # [n_inst, d_sae]
    init = [init_sae_params(d_in, d_sae, seed) for _ in range(n_inst)]
    params = {name: torch.stack([p[name].detach() for p in init]).requires_grad_(True) for name in init[0]}
    l1 = torch.tensor(list(l1_coefficients), dtype=torch.float32)
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    for _ in tqdm(range(n_steps), desc=desc):
        x = sample_batch(batch_size)
        feature_acts, x_hat = _batched_forward(x, params, mask)
        reconstruction = ((x_hat - x) ** 2).sum(-1).mean(-1)                            # [n_inst]
        sparsity = feature_acts.sum(-1).mean(-1)                                        # [n_inst]
        optimizer.zero_grad()
        (reconstruction + l1 * sparsity).sum().backward()
        optimizer.step()
    out = {name: value.detach() for name, value in params.items()}
    out["W_dec"] = out["W_dec"] / out["W_dec"].norm(dim=-1, keepdim=True)
    out["mask"] = mask
    return out


def _batched_forward(x: torch.Tensor, params: Params, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sae_forward` for ``n_inst`` SAEs: ``x [batch, d_in]`` -> acts ``[n_inst, batch, d_sae]``, x_hat ``[n_inst, batch, d_in]``."""
    hidden_pre = torch.einsum("nbd,nds->nbs", x[None] - params["b_dec"][:, None], params["W_enc"])
    feature_acts = torch.relu(hidden_pre + params["b_enc"][:, None]) * mask[:, None]
    W_dec_unit = params["W_dec"] / params["W_dec"].norm(dim=-1, keepdim=True)
    x_hat = torch.einsum("nbs,nsd->nbd", feature_acts, W_dec_unit) + params["b_dec"][:, None]
    return feature_acts, x_hat


@torch.no_grad()
def evaluate_saes(params: Params, x: torch.Tensor, true_directions: torch.Tensor) -> dict[str, list[float]]:
    """Measure batched SAEs (from :func:`train_saes_batched`) on held-out activations.

    Args:
        x: ``[batch, d_in]``; true_directions: ``[n_features, d_in]``, the ground-truth features.

    Returns:
        One list entry per SAE: ``mse`` (squared error summed over d_in, mean over the batch),
        ``explained_variance``, ``l0``, ``dead`` (latents in use that never fired) and
        ``mean_max_cosine`` (see :func:`mean_max_cosine`).
    """
    feature_acts, x_hat = _batched_forward(x, params, params["mask"])
    mse = ((x_hat - x) ** 2).sum(-1).mean(-1)
    variance = ((x - x.mean(0)) ** 2).sum(-1).mean()
    result: dict[str, list[float]] = {"mse": mse.tolist(), "explained_variance": (1 - mse / variance).tolist(),
                                      "l0": [], "dead": [], "mean_max_cosine": []}
    for i, in_use in enumerate(params["mask"].bool()):
        result["l0"].append(l0_norm(feature_acts[i][:, in_use]))
        result["dead"].append(count_dead_latents(feature_acts[i][:, in_use]))
        result["mean_max_cosine"].append(mean_max_cosine(true_directions, params["W_dec"][i][in_use]))
    return result


def synthetic_sampler(feature_dict: torch.nn.Module, activation_generator: torch.nn.Module) -> SampleFn:
    """Wrap a SAELens ``FeatureDictionary`` and ``ActivationGenerator`` as ``sample_batch(n) -> [n, d_in]``.

    The generator draws from torch's global random state: seed it with ``torch.manual_seed``.
    """
    @torch.no_grad()
    def sample_batch(batch_size: int) -> torch.Tensor:
        return feature_dict(activation_generator.sample(batch_size))

    return sample_batch


def mean_max_cosine(true_directions: torch.Tensor, decoder: torch.Tensor) -> float:
    """For each true feature, the best cosine similarity with any SAE decoder row; averaged.

    Args:
        true_directions: ``[n_features, d_in]``; decoder: ``[d_sae, d_in]``.

    Returns:
        A float in [-1, 1]; 1.0 means every true feature has a latent pointing exactly along it.
    """
    true_unit = torch.nn.functional.normalize(true_directions.detach().float(), dim=-1)
    dec_unit = torch.nn.functional.normalize(decoder.detach().float(), dim=-1)
    return (true_unit @ dec_unit.T).max(dim=1).values.mean().item()


def best_match_order(true_directions: torch.Tensor, decoder: torch.Tensor) -> list[int]:
    """A one-to-one matching of latents to true features (Hungarian algorithm), for plotting.

    Returns latent indices: first the latent matched to feature 0, 1, ...; then the unmatched ones.
    """
    cos = torch.nn.functional.normalize(true_directions.detach(), dim=-1) @ \
        torch.nn.functional.normalize(decoder.detach(), dim=-1).T
    rows, cols = linear_sum_assignment(-cos.numpy())
    matched = [int(c) for _, c in sorted(zip(rows, cols))]
    return matched + [j for j in range(decoder.shape[0]) if j not in matched]


def plot_cosine_matrix(true_directions: torch.Tensor, decoder: torch.Tensor, ax: plt.Axes | None = None,
                       title: str = "") -> plt.Axes:
    """Cosine similarity of every true feature (rows) with every SAE latent (columns, best match first)."""
    order = best_match_order(true_directions, decoder)
    cos = torch.nn.functional.normalize(true_directions.detach(), dim=-1) @ \
        torch.nn.functional.normalize(decoder.detach()[order], dim=-1).T
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.6))
    image = ax.imshow(cos.numpy(), cmap="RdBu", vmin=-1, vmax=1)
    ax.set(xlabel="SAE latent (reordered to match)", ylabel="true feature", title=title)
    plt.colorbar(image, ax=ax, fraction=0.046, label="cosine similarity")
    return ax


def plot_l1_tradeoff(l1_coefficients: Sequence[float], results: dict[str, list[float]],
                     true_l0: float) -> plt.Figure:
    """Left: L0 against reconstruction error, one point per L1 coefficient. Right: feature recovery against it."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.plot(results["l0"], results["mse"], "o-")
    for l1, l0, mse in zip(l1_coefficients, results["l0"], results["mse"]):
        ax1.annotate(f"λ={l1:g}", (l0, mse), textcoords="offset points", xytext=(6, 2), fontsize=8)
    ax1.axvline(true_l0, color="grey", ls="--", lw=1)
    ax1.text(true_l0, min(results["mse"]), " true L0", color="grey", fontsize=8, va="bottom")
    ax1.set(xlabel="L0 (latents active per example)", ylabel="reconstruction error (MSE, log scale)",
            yscale="log", title="Sparser codes reconstruct worse")
    ax2.plot(l1_coefficients, results["mean_max_cosine"], "o-", color="C2")
    ax2.axhline(0.9, color="grey", ls=":", lw=1)
    ax2.set(xscale="log", xlabel="L1 coefficient λ", ylabel="mean max cosine with true features",
            title="Feature recovery peaks in between", ylim=(0.5, 1.02))
    fig.tight_layout()
    return fig


def family_latents(decoder: torch.Tensor, parent_direction: torch.Tensor, threshold: float = 0.6) -> list[int]:
    """Latents whose decoder row points mostly along the parent feature (cosine above ``threshold``).

    Args:
        decoder: ``[d_sae, d_in]``; parent_direction: ``[d_in]``.
    """
    cos = torch.nn.functional.normalize(decoder, dim=-1) @ torch.nn.functional.normalize(parent_direction, dim=0)
    return [int(i) for i in torch.nonzero(cos > threshold).flatten()]


def plot_feature_splitting(params: Params, widths: Sequence[int], true_directions: torch.Tensor,
                           names: Sequence[str]) -> plt.Figure:
    """For each SAE width, the cosine of each latent of the parent's family with the parent and each child.

    Args:
        params: batched SAEs from :func:`train_saes_batched` (one per width).
        true_directions: ``[1 + n_children, d_in]``, the parent first, then its children.
        names: labels of those features.
    """
    fig, axes = plt.subplots(1, len(widths), figsize=(3.3 * len(widths), 3.0), squeeze=False)
    unit_true = torch.nn.functional.normalize(true_directions, dim=-1)
    for ax, i, width in zip(axes[0], range(len(widths)), widths):
        decoder = params["W_dec"][i][:width]
        latents = family_latents(decoder, true_directions[0])
        cos = (decoder[latents] @ unit_true.T).numpy()
        ax.imshow(cos, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        for (r, c), value in np.ndenumerate(cos):
            ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(value) > 0.6 else "black")
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=8)
        ax.set_yticks(range(len(latents)), [f"latent {j}" for j in latents], fontsize=8)
        ax.set_title(f"width {width}: {len(latents)} latent{'s' if len(latents) != 1 else ''}", fontsize=10)
    fig.suptitle(f"Latents pointing mostly along '{names[0]}', by SAE width", fontsize=11)
    fig.tight_layout()
    return fig


# =====================================================================================
# Checks: one per workbook exercise. Each prints one line and returns a CheckResult.
# =====================================================================================

_NOT_APPLICABLE = object()   # what a known mistake "returns" on a case where it cannot happen: matches nothing


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _toy_forward_cases() -> list[Case]:
    cases = []
    for seed, (batch, n_features, n_hidden) in enumerate([(4, 5, 2), (3, 6, 3), (2, 3, 3)]):
        g = _gen(100 + seed)
        x = torch.rand(batch, n_features, generator=g) * (torch.rand(batch, n_features, generator=g) < 0.6)
        W = torch.randn(n_hidden, n_features, generator=g)
        b = 0.5 * torch.randn(n_features, generator=g) - 0.2
        cases.append(Case((x, W, b), label=f"batch {batch}, {n_features} features, {n_hidden} hidden"))
    return cases


def check_toy_model_forward(learner_fn: Callable) -> CheckResult:
    """Exercise 1a: the toy model's forward pass ``ReLU(W^T W x + b)``."""
    mistakes = {
        "no-relu": (lambda x, W, b: x @ W.T @ W + b,
                    "you forgot the ReLU on the output: x_hat = ReLU(h @ W + b)"),
        "relu-hidden": (lambda x, W, b: torch.relu(torch.relu(x @ W.T) @ W + b),
                        "you put a ReLU on the hidden layer too: h = W x is linear here; "
                        "only the output goes through a ReLU"),
        "no-bias": (lambda x, W, b: torch.relu(x @ W.T @ W),
                    "you left out the bias b: x_hat = ReLU(h @ W + b)"),
        "transposed": (lambda x, W, b: torch.relu(x @ W @ W.T + b) if W.shape[0] == W.shape[1] else _NOT_APPLICABLE,
                       "you multiplied by W where W^T goes: with W of shape [n_hidden, n_features], "
                       "h = x @ W.T, then x_hat = ReLU(h @ W + b)"),
    }
    return check_function(learner_fn, toy_model_forward, _toy_forward_cases(), name="toy_model_forward",
                          known_mistakes=mistakes, hint="h = x @ W.T is [batch, n_hidden]; x_hat = ReLU(h @ W + b)")


def _toy_loss_cases() -> list[Case]:
    cases = []
    for seed, (batch, n_features) in enumerate([(8, 5), (3, 20), (1, 4)]):
        g = _gen(200 + seed)
        x = torch.rand(batch, n_features, generator=g)
        x_hat = (x + 0.3 * torch.randn(batch, n_features, generator=g)).relu()
        importance = 0.2 + 1.3 * torch.rand(n_features, generator=g)
        cases.append(Case((x, x_hat, importance), label=f"batch {batch}, {n_features} features"))
    return cases


def check_toy_model_loss(learner_fn: Callable) -> CheckResult:
    """Exercise 1b: importance-weighted squared error, summed over features and averaged over the batch."""
    mistakes = {
        "importance-squared": (lambda x, x_hat, I: ((I * (x - x_hat)) ** 2).sum(-1).mean(),
                               "you multiplied by the importance inside the square, so it counts twice (I²): "
                               "square the error first, then multiply by I"),
        "no-importance": (lambda x, x_hat, I: ((x - x_hat) ** 2).sum(-1).mean(),
                          "you left out the importance weights: multiply each feature's squared error by I"),
        "mean-over-features": (lambda x, x_hat, I: (I * (x - x_hat) ** 2).mean(),
                               "you averaged over the features too: sum over features (dim -1), "
                               "then average over the batch"),
        "sum-over-batch": (lambda x, x_hat, I: (I * (x - x_hat) ** 2).sum(),
                           "you summed over the batch: average over examples (the loss should not grow "
                           "with the batch size)"),
    }
    return check_function(learner_fn, toy_model_loss, _toy_loss_cases(), name="toy_model_loss",
                          known_mistakes=mistakes, hint="square the error, weight it by importance, sum over features, average over the batch")


def _sae_params_case(batch: int, d_in: int, d_sae: int, seed: int) -> tuple[torch.Tensor, Params]:
    g = _gen(seed)
    W_dec = torch.randn(d_sae, d_in, generator=g)
    W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True) * (0.3 + 2.7 * torch.rand(d_sae, 1, generator=g))
    params = {"W_enc": torch.randn(d_in, d_sae, generator=g), "b_enc": torch.randn(d_sae, generator=g) - 0.3,
              "W_dec": W_dec, "b_dec": 0.5 * torch.randn(d_in, generator=g)}
    return torch.randn(batch, d_in, generator=g), params


def _sae_forward_variant(x: torch.Tensor, p: Params, relu: bool = True, norm_dim: int | None = -1,
                         b_dec_in: bool = True, b_dec_out: bool = True):
    hidden_pre = (x - p["b_dec"] * b_dec_in) @ p["W_enc"] + p["b_enc"]
    acts = torch.relu(hidden_pre) if relu else hidden_pre
    W_dec = p["W_dec"] if norm_dim is None else p["W_dec"] / p["W_dec"].norm(dim=norm_dim, keepdim=True)
    return acts, hidden_pre, acts @ W_dec + p["b_dec"] * b_dec_out


def check_sae_forward(learner_fn: Callable) -> CheckResult:
    """Exercise 2: the SAE forward pass (encode with ReLU, decode with unit-norm decoder rows)."""
    cases = [Case(_sae_params_case(b, d, s, 300 + i), label=f"batch {b}, d_in {d}, d_sae {s}")
             for i, (b, d, s) in enumerate([(5, 4, 6), (3, 3, 3), (1, 8, 16)])]
    mistakes = {
        "no-relu": (lambda x, p: _sae_forward_variant(x, p, relu=False),
                    "feature_acts has negative values: you forgot the ReLU (feature_acts = ReLU(hidden_pre))"),
        "no-norm": (lambda x, p: _sae_forward_variant(x, p, norm_dim=None),
                    "x_hat used W_dec as it is: scale each decoder row to length 1 first "
                    "(W_dec / W_dec.norm(dim=-1, keepdim=True))"),
        "norm-dim0": (lambda x, p: _sae_forward_variant(x, p, norm_dim=0),
                      "you normalised W_dec along the wrong dimension: each latent's direction is a row "
                      "W_dec[i] of length d_in, so use .norm(dim=-1, keepdim=True)"),
        "no-b_dec-in": (lambda x, p: _sae_forward_variant(x, p, b_dec_in=False),
                        "hidden_pre is off: subtract b_dec from x before encoding, "
                        "hidden_pre = (x - b_dec) @ W_enc + b_enc"),
        "no-b_dec-out": (lambda x, p: _sae_forward_variant(x, p, b_dec_out=False),
                         "x_hat is off by b_dec: add b_dec back after decoding"),
    }
    return check_function(learner_fn, sae_forward, cases, name="sae_forward", known_mistakes=mistakes,
                          hint="return (feature_acts, hidden_pre, x_hat) in that order")


def _sae_loss_cases() -> list[Case]:
    cases = []
    for i, (batch, d_in, d_sae, l1) in enumerate([(6, 4, 8, 0.3), (2, 5, 3, 2.0), (1, 3, 6, 0.05)]):
        g = _gen(400 + i)
        x = torch.randn(batch, d_in, generator=g)
        hidden_pre = torch.randn(batch, d_sae, generator=g) - 0.2
        x_hat = x + 0.4 * torch.randn(batch, d_in, generator=g)
        cases.append(Case((x, torch.relu(hidden_pre), hidden_pre, x_hat, l1),
                          label=f"batch {batch}, d_in {d_in}, d_sae {d_sae}, l1_coefficient {l1}"))
    return cases


def _loss_from(reconstruction: torch.Tensor, sparsity: torch.Tensor, l1: float):
    return reconstruction + l1 * sparsity, reconstruction, sparsity


def check_sae_loss(learner_fn: Callable) -> CheckResult:
    """Exercise 3: reconstruction (sum over d_in, mean over batch) plus λ times the L1 of feature_acts."""
    mse = lambda x, x_hat: ((x_hat - x) ** 2).sum(-1).mean()  # noqa: E731
    l1_of = lambda t: t.abs().sum(-1).mean()  # noqa: E731
    on_pre = ("you penalised hidden_pre, the values before the ReLU: the ReLU switches negative ones off and "
              "they cost nothing. Put the L1 penalty on feature_acts")
    mistakes = {
        "l1-on-x_hat": (lambda x, f, h, xh, l1: _loss_from(mse(x, xh), l1_of(xh), l1),
                        "you put the L1 penalty on x_hat, the reconstruction: it belongs on feature_acts, "
                        "the latent code you want to be sparse"),
        "l1-on-pre-abs": (lambda x, f, h, xh, l1: _loss_from(mse(x, xh), l1_of(h), l1), on_pre),
        "l1-on-pre": (lambda x, f, h, xh, l1: _loss_from(mse(x, xh), h.sum(-1).mean(), l1), on_pre),
        "l1-mean-over-latents": (lambda x, f, h, xh, l1: _loss_from(mse(x, xh), f.abs().mean(), l1),
                                 "you averaged the L1 over the latents: sum over d_sae, then average "
                                 "over the batch"),
        "mse-mean-over-d_in": (lambda x, f, h, xh, l1: _loss_from(((xh - x) ** 2).mean(), l1_of(f), l1),
                               "you averaged the squared error over d_in too (F.mse_loss does that by "
                               "default): sum over d_in, then average over the batch, as SAELens does"),
        "sum-over-batch": (lambda x, f, h, xh, l1: _loss_from(((xh - x) ** 2).sum(), f.abs().sum(), l1),
                           "you summed over the batch: average over examples instead"),
        "l2": (lambda x, f, h, xh, l1: _loss_from(mse(x, xh), (f ** 2).sum(-1).mean(), l1),
               "you squared the activations (an L2 penalty): the L1 norm is the sum of absolute values"),
        "lambda-on-mse": (lambda x, f, h, xh, l1: (l1 * mse(x, xh) + l1_of(f), mse(x, xh), l1_of(f)),
                          "l1_coefficient multiplies the wrong term: loss = reconstruction + "
                          "l1_coefficient * sparsity"),
        "no-lambda": (lambda x, f, h, xh, l1: (mse(x, xh) + l1_of(f), mse(x, xh), l1_of(f)),
                      "the loss ignores l1_coefficient: loss = reconstruction + l1_coefficient * sparsity"),
    }
    return check_function(learner_fn, sae_loss, _sae_loss_cases(), name="sae_loss", known_mistakes=mistakes,
                          hint="return (loss, reconstruction, sparsity), each averaged over the batch")


def _acts_cases() -> list[Case]:
    g = _gen(500)
    acts = torch.rand(6, 7, generator=g) * (torch.rand(6, 7, generator=g) < 0.6)
    acts[:, 0] = torch.tensor([0.5, 0.0, 1.2, 0.3, 0.0, 0.7])   # latent 0 always has some activity...
    acts[:, [2, 5]] = 0.0                                          # ...latents 2 and 5 never fire...
    acts[3] = 0.0                                                  # ...and example 3 has no active latent
    single = torch.tensor([[0.0, 2.0, 0.0, 0.5, 0.0, 1.0, 0.1]])
    return [Case((acts,), label="6 examples, 7 latents"), Case((torch.zeros(3, 4),), label="all zero, 3 x 4"),
            Case((single,), label="1 example, 7 latents")]


def check_l0_norm(learner_fn: Callable) -> CheckResult:
    """Exercise 4a: L0 = average count of non-zero latents per example."""
    size = "that is the average size of the activations, not a count: L0 counts latents that are non-zero"
    mistakes = {
        "mean-abs": (lambda f: f.abs().mean().item(), size),
        "l1": (lambda f: f.abs().sum(-1).mean().item(), size),
        "fraction": (lambda f: (f != 0).float().mean().item(),
                     "that is the fraction of latents that fire; L0 is a count per example: sum over "
                     "latents (dim -1), then average over examples"),
        "total": (lambda f: float((f != 0).sum()),
                  "you counted non-zeros over the whole batch: average the per-example counts instead"),
        "wrong-axis": (lambda f: (f != 0).float().sum(0).mean().item(),
                       "your axes are swapped: count over latents (dim -1) for each example, then average "
                       "over examples (dim 0)"),
    }
    return check_function(learner_fn, l0_norm, _acts_cases(), name="l0_norm", known_mistakes=mistakes,
                          hint="count the non-zero entries of each row (one row per example), then average the counts")


def check_count_dead_latents(learner_fn: Callable) -> CheckResult:
    """Exercise 4b: dead latents = latents that are zero on every example."""
    mistakes = {
        "wrong-axis": (lambda f: int((f != 0).any(-1).logical_not().sum()),
                       "you counted examples on which nothing fires: a dead latent is a column (dim -1 "
                       "indexes latents) that is zero down the whole batch — reduce over dim 0"),
        "alive": (lambda f: int((f != 0).any(0).sum()),
                  "you counted the latents that fire at least once (the live ones): count those that never do"),
        "any-zero": (lambda f: int((f == 0).any(0).sum()),
                     "you counted latents that are zero on *some* example: a latent is dead only if it is "
                     "zero on every example"),
        "zero-entries": (lambda f: int((f == 0).sum()),
                         "you counted zero entries: count latents (columns) whose entries are all zero"),
    }
    return check_function(learner_fn, count_dead_latents, _acts_cases(), name="count_dead_latents",
                          known_mistakes=mistakes, hint="(feature_acts != 0).any(dim=0) marks the live latents")


# --- Exercise 5: the training loop, checked by training it on fresh, seeded synthetic data ---

TRAIN_CHECK_EV = 0.85      # the trained SAE must explain at least this fraction of the variance...
TRAIN_CHECK_L0 = 3.0       # ...with at most this many times the true number of active features per example
_TRAIN_CASES = [
    Case(kwargs=dict(n_features=12, d_in=8, firing_probability=0.08, d_sae=12, l1_coefficient=0.3, seed=0),
         label="12 features in 8 dims, 12 latents"),
    Case(kwargs=dict(n_features=16, d_in=10, firing_probability=0.06, d_sae=20, l1_coefficient=0.3, seed=1),
         label="16 features in 10 dims, 20 latents"),
]
_TRAIN_MESSAGES = {
    "bad-params": "return the dict of parameters you trained, with the keys and shapes that init_sae_params "
                  "gives (W_enc, b_enc, W_dec, b_dec) — seen",
    "nan": "training produced NaN or inf parameters: check the learning rate and your loss — seen",
    "unchanged": "the parameters never changed: in every step call loss.backward() and optimizer.step(), "
                 "with an optimizer built over these very tensors, torch.optim.Adam(params.values(), lr=lr) — seen",
    "poor-reconstruction": f"the trained SAE reconstructs poorly (explained variance below {TRAIN_CHECK_EV}): "
                           "minimise the total loss from sae_loss, call optimizer.zero_grad() every step "
                           "(otherwise gradients pile up across steps), and run all n_steps steps on fresh "
                           "batches from sample_batch — seen",
    "not-sparse": f"the codes are not sparse: more than {TRAIN_CHECK_L0:g} times as many latents fire per example "
                  "as there are true active features. The loss you call .backward() on must include "
                  "l1_coefficient * sparsity — seen",
    "optimizer-in-loop": "you create the optimizer inside the loop: a new torch.optim.Adam every step forgets the "
                         "running averages of the gradients that Adam keeps, so each step starts from scratch. "
                         "Build it once, before the loop — seen",
}
TRAIN_TRAJECTORY_STEPS = 10   # the first steps of training, compared with Adam built once and Adam built every step


def train_check_setup(n_features: int, d_in: int, firing_probability: float, seed: int) -> tuple[SampleFn, float]:
    """Synthetic activations for the training check: ``sample_batch`` and the true L0 (mean active features).

    Call inside ``torch.random.fork_rng()`` after ``torch.manual_seed(seed)``.
    """
    from sae_lens.synthetic import ActivationGenerator, FeatureDictionary

    feature_dict = FeatureDictionary(num_features=n_features, hidden_dim=d_in, seed=1000 + seed)
    generator = ActivationGenerator(num_features=n_features, firing_probabilities=firing_probability,
                                    std_firing_magnitudes=0.2, mean_firing_magnitudes=1.0)
    return synthetic_sampler(feature_dict, generator), n_features * firing_probability


def _train_optimizer_in_loop(sample_batch: SampleFn, d_in: int, d_sae: int, l1_coefficient: float,
                             n_steps: int = 1000, batch_size: int = 256, lr: float = 3e-3, seed: int = 0) -> Params:
    """:func:`train_sae` with the mistake of building a new Adam every step (it never remembers past gradients)."""
    params = init_sae_params(d_in, d_sae, seed)
    for _ in range(n_steps):
        optimizer = torch.optim.Adam(params.values(), lr=lr)
        x = sample_batch(batch_size)
        loss, _, _ = sae_loss(x, *sae_forward(x, params), l1_coefficient)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return params


def _first_steps(train_fn: Callable, n_features: int, d_in: int, firing_probability: float, d_sae: int,
                 l1_coefficient: float, seed: int) -> torch.Tensor | None:
    """Every parameter, flattened into one vector, after ``TRAIN_TRAJECTORY_STEPS`` steps of ``train_fn`` (None if
    it fails or returns something else than the parameters)."""
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            sample_batch, _ = train_check_setup(n_features, d_in, firing_probability, seed)
            params = train_fn(sample_batch, d_in, d_sae, l1_coefficient, n_steps=TRAIN_TRAJECTORY_STEPS,
                              batch_size=256, lr=3e-3, seed=seed)
        return torch.cat([params[k].detach().float().flatten() for k in ("W_enc", "b_enc", "W_dec", "b_dec")])
    except Exception:  # noqa: BLE001 - a loop that cannot run short is graded on its full run alone
        return None


def _rebuilds_optimizer(train_fn: Callable, **case) -> bool:
    """Whether the first steps of ``train_fn`` follow Adam rebuilt every step rather than Adam built once.

    A single step cannot tell them apart; from the second step on, Adam's running averages make the two
    trajectories part. The learner's must be much closer to the mistake's than to the reference's.
    """
    learner = _first_steps(train_fn, **case)
    if learner is None:
        return False
    right, wrong = _first_steps(train_sae, **case), _first_steps(_train_optimizer_in_loop, **case)
    if learner.shape != right.shape:
        return False
    gap = (right - wrong).norm()
    return bool((learner - wrong).norm() < 0.1 * gap and (learner - right).norm() > 0.5 * gap)


def train_verdict(train_fn: Callable, n_features: int, d_in: int, firing_probability: float, d_sae: int,
                  l1_coefficient: float, seed: int, n_steps: int = 600) -> str | None:
    """Train ``train_fn`` on fresh seeded synthetic data and grade the result.

    Returns ``None`` when ``train_fn`` returned None, ``"ok"`` when the trained SAE meets the targets
    (explained variance and L0 on held-out data) and its first steps follow Adam built once, else the
    key of what went wrong in ``_TRAIN_MESSAGES``.
    """
    case = dict(n_features=n_features, d_in=d_in, firing_probability=firing_probability, d_sae=d_sae,
                l1_coefficient=l1_coefficient, seed=seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        sample_batch, true_l0 = train_check_setup(n_features, d_in, firing_probability, seed)
        params = train_fn(sample_batch, d_in, d_sae, l1_coefficient, n_steps=n_steps, batch_size=256,
                          lr=3e-3, seed=seed)
        x = sample_batch(4096)
    if params is None:
        return None
    init = init_sae_params(d_in, d_sae, seed)
    if not isinstance(params, dict) or set(params) != set(init) or any(
            not isinstance(params[k], torch.Tensor) or params[k].shape != init[k].shape for k in init):
        return "bad-params"
    params = {k: v.detach().float() for k, v in params.items()}
    if not all(torch.isfinite(v).all() for v in params.values()):
        return "nan"
    if all(torch.allclose(params[k], init[k].detach()) for k in init):
        return "unchanged"
    if _rebuilds_optimizer(train_fn, **case):
        return "optimizer-in-loop"
    with torch.no_grad():
        feature_acts, _, x_hat = sae_forward(x, params)
        explained = 1 - ((x_hat - x) ** 2).sum(-1).mean() / ((x - x.mean(0)) ** 2).sum(-1).mean()
    if not explained >= TRAIN_CHECK_EV:
        return "poor-reconstruction"
    if l0_norm(feature_acts) > TRAIN_CHECK_L0 * true_l0:
        return "not-sparse"
    return "ok"


@single_threaded
def check_train_sae(learner_fn: Callable) -> CheckResult:
    """Exercise 5: train the learner's loop on fresh seeded data; it must reach the stated EV and L0."""
    if not callable(learner_fn):
        return check_function(learner_fn, train_sae, [], name="train_sae")
    mistakes = {key: (lambda *a, key=key, **k: key, message) for key, message in _TRAIN_MESSAGES.items()}
    return check_function(lambda **kw: train_verdict(learner_fn, **kw), lambda **kw: "ok", _TRAIN_CASES,
                          name="train_sae", known_mistakes=mistakes)


# =====================================================================================
# Part B: the SAE on the course model, checked against the corpus's ground truth
# =====================================================================================

from dataclasses import dataclass  # noqa: E402

from helpers import corpus_data as _data  # noqa: E402
from helpers.sae import clamp_feature, run_with_clamp  # noqa: E402
from helpers.corpus import (Example, fact_examples, ioi_examples, narrative_examples, repeat_examples,  # noqa: E402
                            review_examples, truth_examples)

GROUND_TRUTH_SEED = 7          # the labelled token set of the lesson (and of its tests)
CLEAN_AUROC = 0.9              # a "clean" feature separates its label's tokens from all others this well...
CLEAN_PRECISION = 0.8          # ...and puts at least this share of its activation on them
MIN_FIRINGS = 5                # a feature must fire on at least this many tokens to be judged


def _words(phrases) -> set[str]:
    return {w for phrase in phrases for w in phrase.split()}


_CITIES = sorted({city for _, city, _ in _data.LANDMARKS})
_COUNTRIES = sorted({country for _, _, country in _data.LANDMARKS if country})
# Word classes: a token gets the label when its word is in the list, wherever it appears.
WORD_CLASSES: dict[str, set[str]] = {
    "a first name": set(_data.NAMES),
    "a city": _words(_CITIES),
    "a country": set(_COUNTRIES),
    "a place (store, park...)": set(_data.PLACES),
    "an object (drink, book...)": set(_data.OBJECTS),
    "an animal": set(_data.ANIMALS),
    "a household thing (mat, chair...)": set(_data.THINGS),
    "a positive word": set(_data.POSITIVE_WORDS),
    "a negative word": set(_data.NEGATIVE_WORDS),
    "a reviewed thing (movie, hotel...)": set(_data.REVIEW_THINGS),
    "a reviewed aspect (story, food...)": set(_data.REVIEW_ASPECTS),
    "a past-tense verb": set(_data.VERBS_PAST),
    "a narrative adjective": set(_data.NARRATIVE_ADJECTIVES),
}
TASK_LABELS = {"ioi": "in an IOI sentence", "fact": "in a fact", "truth": "in a true/false statement",
               "review": "in a review", "repeat": "in a repeated word list", "narrative": "in a story"}


@dataclass
class LabelledTokens:
    """Tokens of labelled corpus examples, one example per sequence after BOS, with token-level labels.

    ``tokens`` ``[n_seq, pos]`` (right-padded), ``mask`` ``[n_seq, pos]`` marks the real tokens
    other than BOS, in the order of the rows of ``labels`` ``[n_tokens, n_labels]`` (bool).
    ``kinds[j]`` is ``"concept"`` (a word class, a role in a task, or the task itself) or ``"word"``
    (the token itself, for every token seen at least ``min_word_count`` times). ``str_tokens[i]`` and
    ``where[i]`` (``(sequence, position)``) describe masked token ``i``.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    names: list[str]
    kinds: list[str]
    str_tokens: list[str]
    where: list[tuple[int, int]]
    examples: list[Example]

    def label(self, name: str) -> torch.Tensor:
        """The boolean column ``[n_tokens]`` of label ``name``."""
        return self.labels[:, self.names.index(name)]


def ground_truth_examples(seed: int = GROUND_TRUTH_SEED) -> list[Example]:
    """The lesson's labelled examples: IOI, facts (both relations), true/false statements, reviews,
    repeated word lists and stories, about 7,500 tokens in all."""
    rng = random.Random(seed)
    facts = fact_examples("train", "city") + fact_examples("test", "city") + fact_examples("train", "country")
    return (ioi_examples(80, "train", seed) + rng.sample(facts, 140) + truth_examples(80, "train", seed)
            + review_examples(50, "train", seed) + repeat_examples(20, seed, length=(8, 16), repeats=(2, 2))
            + narrative_examples(50, seed))


def _role_labels(example: Example, spans: dict[str, range], words: list[str]) -> dict[str, list[int]]:
    """Token positions (BOS counted) of the roles of ``example``. ``spans`` maps span names to token
    ranges; ``words[p]`` is the word at position ``p`` (``words[0]`` stands for BOS)."""
    n = len(words)
    roles: dict[str, list[int]] = {}
    labels = example.labels
    if example.task == "ioi":
        roles["IOI: indirect object, first mention"] = list(spans["io"])
        roles["IOI: subject, first mention"] = list(spans["s1"])
        roles["IOI: subject, second mention"] = list(spans["s2"])
        roles["IOI: last word of the prompt"] = [spans["answer"].start - 1]
        roles["IOI: the answer (indirect object again)"] = list(spans["answer"])
    elif example.task in ("fact", "truth"):
        if labels["relation"] == "city":
            roles["fact or claim: landmark name"] = [p for p in spans["subject"] if words[p].lower() != "the"]
        roles["fact or claim: first word after the subject"] = [spans["subject"].stop]
        roles["fact or claim: word before the city or country"] = [spans["attribute"].start - 1]
        roles["fact or claim: the city or country"] = list(spans["attribute"])
    if example.task == "truth":
        after = list(range(spans["attribute"].stop, spans["end"].stop))
        roles["truth: after a true claim" if labels["true"] else "truth: after a false claim"] = after
    elif example.task == "review":
        first_adj = min(r.start for k, r in spans.items() if k.startswith("adj"))
        roles["review: positive, after the first opinion word" if labels["positive"]
              else "review: negative, after the first opinion word"] = list(range(first_adj, spans["end"].stop))
    elif example.task == "repeat":
        roles["repeat: second copy (predictable by copying)"] = list(range(spans["copy2"].start, n))
    return roles


def labelled_tokens(tokenizer, examples: list[Example] | None = None, min_word_count: int = 8) -> LabelledTokens:
    """Tokenize ``examples`` (default :func:`ground_truth_examples`) and label every token.

    Labels, all derived from how the corpus was generated: the word classes of :data:`WORD_CLASSES`,
    the roles of each task (IO and subject names, the answer of a fact, tokens after a true or a
    false claim, the rest of a positive or negative review, the second copy of a repeat), the task
    itself, and the token's own word.
    """
    examples = ground_truth_examples() if examples is None else examples
    bos = tokenizer.bos_token_id
    encoded = [tokenizer(e.text, return_offsets_mapping=True, add_special_tokens=False) for e in examples]
    length = 1 + max(len(enc["input_ids"]) for enc in encoded)
    tokens = torch.full((len(examples), length), tokenizer.pad_token_id or bos, dtype=torch.long)
    mask = torch.zeros(len(examples), length, dtype=torch.bool)
    rows: list[dict[str, bool]] = []
    str_tokens, where = [], []
    for s, (example, enc) in enumerate(zip(examples, encoded)):
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        n = len(ids) + 1
        tokens[s, 0], tokens[s, 1:n], mask[s, 1:n] = bos, torch.tensor(ids), True
        spans = {}
        for role, (start, end) in example.spans.items():
            inside = [i + 1 for i, (a, b) in enumerate(offsets) if b > start and a < end]
            spans[role] = range(inside[0], inside[-1] + 1)
        words = [""] + [example.text[a:b].strip() for a, b in offsets]
        roles = _role_labels(example, spans, words)
        for p in range(1, n):
            word = words[p]
            row = {name: word in members for name, members in WORD_CLASSES.items()}
            row[TASK_LABELS[example.task]] = True
            row.update({role: True for role, positions in roles.items() if p in positions})
            row["word: " + word] = True
            rows.append(row)
            str_tokens.append(tokenizer.decode([ids[p - 1]]))
            where.append((s, p))
    counts: dict[str, int] = {}
    for row in rows:
        for name, on in row.items():
            counts[name] = counts.get(name, 0) + int(on)
    concept = [*WORD_CLASSES, *TASK_LABELS.values()]
    concept += sorted({name for row in rows for name in row if ":" in name and not name.startswith("word: ")})
    words = sorted(name for name in counts if name.startswith("word: ") and counts[name] >= min_word_count)
    names = [name for name in concept if counts.get(name, 0) > 0] + words
    labels = torch.tensor([[row.get(name, False) for name in names] for row in rows], dtype=torch.bool)
    kinds = ["word" if name.startswith("word: ") else "concept" for name in names]
    return LabelledTokens(tokens, mask, labels, names, kinds, str_tokens, where, examples)


def feature_label_auroc(acts: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """AUROC of every feature for every label: ``[n_features, n_labels]``.

    ``acts`` ``[n_tokens, n_features]`` (latent activations), ``labels`` ``[n_tokens, n_labels]``
    (bool). AUROC = the probability that a random token with the label has a higher activation than
    a random token without it, ties counting one half (the Mann-Whitney U statistic, from ranks).
    0.5: the feature ignores the label; 1.0: it separates the label's tokens perfectly.
    """
    acts, y = acts.float(), labels.float()
    n, n_features = acts.shape
    # Rank the tokens 1..n within each feature's column. Inactive tokens (activation 0, the large
    # majority) tie, and share the average rank r0 = (n_zero + 1) / 2; an active token ranks above
    # all of them, by its place among the active ones. Only the active entries need sorting.
    n_zero = (acts == 0).sum(0).float()                               # [n_features]
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
    n_pos = y.sum(0)                                                  # [n_labels]
    rank_sums = (n_zero[:, None] + 1) / 2 * n_pos + torch.sparse.mm(sparse, y)   # [n_features, n_labels]
    n_neg = n - n_pos
    return (rank_sums - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg).clamp(min=1)


def activation_precision(acts: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of each feature's total activation that falls on each label's tokens: ``[n_features, n_labels]``."""
    acts, y = acts.float(), labels.float()
    return torch.sparse.mm(acts.T.to_sparse(), y) / acts.sum(0).clamp(min=1e-9)[:, None]


@dataclass
class FeatureMatches:
    """The ground-truth verdict for each judged feature (features firing on >= MIN_FIRINGS tokens).

    ``features`` ``[n]`` (latent indices), ``label`` ``[n]`` (index of the best label by AUROC),
    ``auroc`` and ``precision`` ``[n]`` (for that label), ``verdict`` (``"clean"``, ``"split"`` or
    ``"vague"``), ``narrow_label`` ``[n]`` (the label with the highest precision, the one a split
    feature covers a part of).
    """

    features: torch.Tensor
    label: torch.Tensor
    auroc: torch.Tensor
    precision: torch.Tensor
    narrow_label: torch.Tensor
    narrow_precision: torch.Tensor
    verdict: list[str]
    names: list[str]
    kinds: list[str]

    def share(self, verdict: str, kind: str | None = None) -> float:
        """Fraction of judged features with ``verdict`` (and, if given, a best label of ``kind``)."""
        hits = [v == verdict and (kind is None or self.kinds[int(j)] == kind)
                for v, j in zip(self.verdict, self.label)]
        return sum(hits) / len(hits)

    def of(self, feature: int) -> dict:
        """The verdict on latent ``feature``, as a dict."""
        i = int((self.features == feature).nonzero()[0, 0])
        return dict(feature=feature, label=self.names[int(self.label[i])], auroc=float(self.auroc[i]),
                    precision=float(self.precision[i]), verdict=self.verdict[i],
                    narrow_label=self.names[int(self.narrow_label[i])],
                    narrow_precision=float(self.narrow_precision[i]))

    def table(self, verdict: str, n: int = 5, kind: str | None = None) -> list[dict]:
        """Up to ``n`` features with ``verdict``: the best matches first for clean ones, else by precision."""
        rows = [self.of(int(f)) for f, v, j in zip(self.features, self.verdict, self.label)
                if v == verdict and (kind is None or self.kinds[int(j)] == kind)]
        key = "auroc" if verdict == "clean" else "narrow_precision"
        return sorted(rows, key=lambda r: -r[key])[:n]


def match_features(acts: torch.Tensor, data: LabelledTokens) -> FeatureMatches:
    """Match every feature that fires on at least ``MIN_FIRINGS`` of ``data``'s tokens to its best label.

    ``acts`` ``[n_tokens, d_sae]``. Verdicts: **clean** when the best label (by AUROC) has AUROC
    >= ``CLEAN_AUROC`` and gets >= ``CLEAN_PRECISION`` of the feature's activation; **split** when
    it is not clean but some label gets >= ``CLEAN_PRECISION`` of its activation (the feature stays
    inside one concept but covers only a part of it); **vague** otherwise.
    """
    features = ((acts > 0).sum(0) >= MIN_FIRINGS).nonzero()[:, 0]
    live = acts[:, features]
    auroc = feature_label_auroc(live, data.labels)                   # [n, n_labels]
    precision = activation_precision(live, data.labels)
    best_auroc, label = auroc.max(-1)
    best_precision = precision.gather(1, label[:, None])[:, 0]
    narrow_precision, narrow_label = precision.max(-1)
    verdict = ["clean" if a >= CLEAN_AUROC and p >= CLEAN_PRECISION else
               "split" if q >= CLEAN_PRECISION else "vague"
               for a, p, q in zip(best_auroc.tolist(), best_precision.tolist(), narrow_precision.tolist())]
    return FeatureMatches(features, label, best_auroc, best_precision, narrow_label, narrow_precision, verdict,
                          data.names, data.kinds)


def top_contexts(acts: torch.Tensor, data: LabelledTokens, feature: int, k: int = 5,
                 before: int = 10, after: int = 2) -> list[tuple[list[str], list[float]]]:
    """The ``k`` tokens where ``feature`` fires most (at most one per sequence), each as a window of
    ``before`` tokens before and ``after`` after: ``(str_tokens, activations)`` pairs."""
    column = acts[:, feature]
    order = column.argsort(descending=True)
    seen, out = set(), []
    index = {w: i for i, w in enumerate(data.where)}
    for i in order.tolist():
        if column[i] <= 0 or len(out) == k:
            break
        s, p = data.where[i]
        if s in seen:
            continue
        seen.add(s)
        window = [q for q in range(max(1, p - before), p + after + 1) if (s, q) in index]
        out.append(([data.str_tokens[index[(s, q)]] for q in window], [float(column[index[(s, q)]]) for q in window]))
    return out


def dashboard_text(acts: torch.Tensor, data: LabelledTokens, feature: int, matches: FeatureMatches | None = None,
                   k: int = 5) -> str:
    """A plain-text feature dashboard: the verdict, then the top contexts with the strongest token
    in [[brackets]] and its activation."""
    lines = [f"feature {feature}"]
    if matches is not None and (matches.features == feature).any():
        m = matches.of(feature)
        lines[0] += (f": {m['verdict']}; best label '{m['label']}' (AUROC {m['auroc']:.2f}, "
                     f"{m['precision']:.0%} of its activation)")
    for str_tokens, values in top_contexts(acts, data, feature, k):
        peak = int(np.argmax(values))
        text = "".join(f"[[{t}]]" if i == peak else t for i, t in enumerate(str_tokens))
        lines.append(f"  {values[peak]:6.2f}  {text.strip()}")
    return "\n".join(lines)


def dashboard_html(acts: torch.Tensor, data: LabelledTokens, features: Sequence[int],
                   matches: FeatureMatches | None = None, k: int = 5):
    """One circuitsvis ``colored_tokens`` view with the top contexts of several features, each token
    coloured by its activation divided by that feature's maximum (so one colour scale fits all)."""
    import circuitsvis as cv

    tokens, values = [], []
    for feature in features:
        header = dashboard_text(acts, data, feature, matches, k=0)
        tokens += ["\n", f"{header}:", "\n"]
        values += [0.0, 0.0, 0.0]
        top = float(acts[:, feature].max()) or 1.0
        for str_tokens, acts_in_window in top_contexts(acts, data, feature, k):
            tokens += [*str_tokens, "\n"]
            values += [v / top for v in acts_in_window] + [0.0]
    return cv.tokens.colored_tokens(tokens, values, min_value=0.0, max_value=1.0)


# --- Exercise 6: feature clamping with a hook ---

def tiny_sae(d_in: int = 8, d_sae: int = 16, seed: int = 0):
    """A small SAELens ``StandardSAE`` with random weights (decoder rows of assorted lengths), for checks."""
    from sae_lens import StandardSAE, StandardSAEConfig

    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae)).eval()
    g = _gen(seed)
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=g) / math.sqrt(d_in))
        sae.b_enc.copy_(0.1 * torch.randn(d_sae, generator=g))
        W_dec = torch.randn(d_sae, d_in, generator=g)
        sae.W_dec.copy_(W_dec / W_dec.norm(dim=-1, keepdim=True) * (0.5 + 1.5 * torch.rand(d_sae, 1, generator=g)))
        sae.b_dec.copy_(0.2 * torch.randn(d_in, generator=g))
    return sae


def _clamp_cases() -> list[Case]:
    cases = []
    for i, (batch, pos, feature, value) in enumerate([(2, 5, 3, 4.0), (1, 4, 0, 0.0), (3, 3, 11, 1.5)]):
        sae = tiny_sae(seed=600 + i)
        resid = 2 * torch.randn(batch, pos, sae.cfg.d_in, generator=_gen(610 + i))
        what = "switched off (value 0)" if value == 0 else f"clamped to {value:g}"
        cases.append(Case((resid, sae, feature, value), label=f"[{batch}, {pos}, 8] residual, latent {feature} {what}"))
    return cases


def _clamp_variant(resid, sae, feature, value, error=True, mode="set", where="all"):
    latents = sae.encode(resid)
    new = latents.clone()
    if mode == "set":
        new[..., feature] = value
    elif mode == "scale":
        new[..., feature] = latents[..., feature] * value
    out = sae.decode(new) + (resid - sae.decode(latents) if error else 0)
    if where == "last":
        out = torch.cat([resid[:, :-1], out[:, -1:]], dim=1)
    return out


def check_clamp_feature(learner_fn: Callable) -> CheckResult:
    """Exercise 6a: set one latent to a value, keep the SAE's error term, at every position."""
    with torch.no_grad():
        unit = lambda sae, f: sae.W_dec[f] / sae.W_dec[f].norm()  # noqa: E731
        mistakes = {
            "no-error": (lambda r, s, f, v: _clamp_variant(r, s, f, v, error=False),
                         "you returned the SAE's reconstruction alone: it misses part of the residual stream (the "
                         "error term), so the model would see more than one change. Add back resid - sae.decode(latents)"),
            "additive": (lambda r, s, f, v: r + v * s.W_dec[f],
                         "you added value × the latent's direction on top of the residual stream: that steers by "
                         "value, it does not clamp. Clamping sets the latent to value, whatever it was"),
            "additive-unit": (lambda r, s, f, v: r + (v - s.encode(r)[..., f:f + 1]) * unit(s, f),
                              "you moved along the unit-length direction: sae.decode uses W_dec as it is, with "
                              "rows of any length. Edit the latents and decode them"),
            "scale": (lambda r, s, f, v: _clamp_variant(r, s, f, v, mode="scale"),
                      "you multiplied the latent by value: set it to value instead (latents[..., feature] = value)"),
            "last": (lambda r, s, f, v: _clamp_variant(r, s, f, v, where="last"),
                     "you clamped the last position only: clamp the latent at every position (latents[..., feature])"),
            "unchanged": (lambda r, s, f, v: r.clone(),
                          "the output equals the input: compute the error term from the latents *before* you edit "
                          "them, then decode the edited latents and add the error"),
        }
        return check_function(learner_fn, clamp_feature, _clamp_cases(), name="clamp_feature", known_mistakes=mistakes,
                              hint="latents = sae.encode(resid); error = resid - sae.decode(latents); set the latent; "
                                   "return sae.decode(latents) + error")


def _logits_at(model, sae, tokens, feature, value, hook_name: str):
    hook = (hook_name, lambda resid, hook: clamp_feature(resid, sae, feature, value))
    return model.run_with_hooks(tokens, fwd_hooks=[hook])


def check_run_with_clamp(learner_fn: Callable, model, sae) -> CheckResult:
    """Exercise 6b: the clamp must run at the SAE's own hook, on every position, for the whole forward pass."""
    hook = sae.cfg.metadata.hook_name
    layer = int(hook.split(".")[1])
    prompts = ["The Golden Gate Bridge is", "When Mary and John went to the store, John gave a drink to"]
    cases = [Case((model, sae, model.to_tokens(p), f, v), label=f'"{p}", latent {f} at {v:g}')
             for p, f, v in [(prompts[0], 7, 20.0), (prompts[1], 100, 0.0), (prompts[1], 2049, 15.0)]]
    wrong_hook = ("you clamped at the wrong hook ({}): the SAE reads and writes the residual stream at "
                  f"sae.cfg.metadata.hook_name, '{hook}'")
    mistakes = {
        "none": (lambda m, s, t, f, v: m(t), "the logits are the unmodified model's: pass the hook to "
                                            "model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook_fn)])"),
        "post": (lambda m, s, t, f, v: _logits_at(m, s, t, f, v, f"blocks.{layer}.hook_resid_post"),
                 wrong_hook.format(f"blocks.{layer}.hook_resid_post, after the block")),
        "mid": (lambda m, s, t, f, v: _logits_at(m, s, t, f, v, f"blocks.{layer}.hook_resid_mid"),
                wrong_hook.format(f"blocks.{layer}.hook_resid_mid, inside the block")),
        "earlier": (lambda m, s, t, f, v: _logits_at(m, s, t, f, v, f"blocks.{max(layer - 1, 0)}.hook_resid_pre"),
                    wrong_hook.format(f"blocks.{max(layer - 1, 0)}.hook_resid_pre, a layer too early")),
        "last": (lambda m, s, t, f, v: m.run_with_hooks(t, fwd_hooks=[(hook, lambda r, hook: torch.cat(
                    [r[:, :-1], clamp_feature(r, s, f, v)[:, -1:]], dim=1))]),
                 "you clamped the last position only: the clamp applies at every position"),
    }
    with torch.no_grad():
        return check_function(learner_fn, run_with_clamp, cases, name="run_with_clamp", known_mistakes=mistakes,
                              atol=1e-3, rtol=1e-3)


# --- Exercise 7: ground-truth matching of features ---

def best_matching_label(feature_acts: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each feature, the label with the highest AUROC and that AUROC: ``([n_features] long, [n_features])``.

    ``feature_acts`` ``[n_tokens, n_features]``, ``labels`` ``[n_tokens, n_labels]`` (bool).
    """
    auroc = feature_label_auroc(feature_acts, labels)
    best, index = auroc.max(-1)
    return index, best


def _match_cases() -> list[Case]:
    cases = []
    for i, (n_tokens, n_features, n_labels) in enumerate([(40, 5, 4), (60, 6, 6), (25, 3, 5)]):
        g = _gen(700 + i)
        labels = torch.rand(n_tokens, n_labels, generator=g) < torch.linspace(0.15, 0.5, n_labels)
        acts = torch.zeros(n_tokens, n_features)
        for f in range(n_features):
            target = f % n_labels
            hits = labels[:, target] & (torch.rand(n_tokens, generator=g) < 0.7)
            noise = torch.rand(n_tokens, generator=g) < 0.1
            acts[:, f] = (hits | noise) * (0.5 + torch.rand(n_tokens, generator=g))
        acts[:, -1] = ~labels[:, 0] * torch.rand(n_tokens, generator=g)     # a feature that avoids label 0
        cases.append(Case((acts, labels), label=f"{n_tokens} tokens, {n_features} features, {n_labels} labels"))
    return cases


def _pairwise_auroc(acts: torch.Tensor, labels: torch.Tensor, tie: float = 0.5, flip: bool = False) -> torch.Tensor:
    out = torch.zeros(acts.shape[1], labels.shape[1])
    for f in range(acts.shape[1]):
        for j in range(labels.shape[1]):
            pos, neg = acts[labels[:, j], f], acts[~labels[:, j], f]
            if flip:
                pos, neg = neg, pos
            out[f, j] = ((pos[:, None] > neg[None, :]).float() + tie * (pos[:, None] == neg[None, :]).float()).mean()
    return out


def _best(scores: torch.Tensor, lowest: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    value, index = (scores.min(-1) if lowest else scores.max(-1))
    return index, value


def check_best_matching_label(learner_fn: Callable) -> CheckResult:
    """Exercise 7: AUROC of every feature for every label (ties count one half), best label per feature."""
    def mean_difference(a, y):
        y = y.float()
        return _best((a.T @ y) / y.sum(0).clamp(min=1) - (a.T @ (1 - y)) / (1 - y).sum(0).clamp(min=1))

    mistakes = {
        "flipped": (lambda a, y: _best(_pairwise_auroc(a, y, flip=True)),
                    "the sign is flipped: you computed the chance that a token *without* the label scores higher. "
                    "AUROC compares the label's tokens (positives) against the others"),
        "argmin": (lambda a, y: _best(feature_label_auroc(a, y), lowest=True),
                   "you picked the label with the *lowest* AUROC: the best match has the highest"),
        "ties-zero": (lambda a, y: _best(_pairwise_auroc(a, y, tie=0.0)),
                      "ties count as losses in your AUROC: most activations are exactly 0, so ties are everywhere; "
                      "a tie counts one half"),
        "ties-one": (lambda a, y: _best(_pairwise_auroc(a, y, tie=1.0)),
                     "ties count as wins in your AUROC (>=): a tie counts one half"),
        "transposed": (lambda a, y: _best(feature_label_auroc(a, y).T),
                       "you found the best feature for each label: the task is the best label for each feature"),
        "swapped": (lambda a, y: feature_label_auroc(a, y).max(-1),
                    "you returned (best_auroc, best_label): return (best_label, best_auroc), in that order"),
        "mean-difference": (mean_difference,
                            "that is the difference of mean activations, not the AUROC (a probability between 0 "
                            "and 1)"),
    }
    return check_function(learner_fn, best_matching_label, _match_cases(), name="best_matching_label",
                          known_mistakes=mistakes, atol=1e-5,
                          hint="for one feature and one label: pos = acts[labels[:, j], f], neg = acts[~labels[:, j], f]; "
                               "AUROC = mean of (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])")


def packed_tokens(tokenizer, examples: list[Example], seq_len: int = 96) -> torch.Tensor:
    """``examples``' texts joined by spaces and cut into rows of ``seq_len`` tokens, each starting with
    BOS, as the model and the SAE were trained: ``[n_rows, seq_len]`` (the last partial row dropped)."""
    texts = [e.text if i == 0 else " " + e.text for i, e in enumerate(examples)]
    ids = [t for row in tokenizer(texts, add_special_tokens=False)["input_ids"] for t in row]
    n = len(ids) // (seq_len - 1)
    rows = torch.tensor(ids[:n * (seq_len - 1)]).view(n, seq_len - 1)
    return torch.cat([torch.full((n, 1), tokenizer.bos_token_id), rows], dim=1)


# --- Steering ---

# Prompts with nothing to do with landmarks or cities: openings of stories, IOI sentences and reviews.
STEERING_PROMPTS = [
    "Later that day, Mary went to the", "I went to see the", "Yesterday John and Anna met at the",
    "The old dog sat on the", "We tried the new", "It was a warm day, and Tom", "Here is my review of the",
    "After lunch, Kate and Sam went to the", "The little bird ran to the", "She found a blue",
    "In the evening, the cat slept by the", "Max and Lily talked about the", "Then, Lucy and Jack went to the",
    "There was a small fox under the", "I finally tried the new", "He painted the old",
    "When Emma and Ben got home from the", "The movie was", "Peter said that the book was on the",
    "We all agreed that the", "The young horse ran to the", "David walked to the park in the",
    "I thought the food was", "They kept a red",
]
# Words that name a place of the fact corpus: its cities and countries, and the kinds of landmark
# (capitalised, as in landmark names; stories and reviews never capitalise them mid-sentence).
PLACE_WORDS = WORD_CLASSES["a city"] | WORD_CLASSES["a country"] | {
    "Tower", "Bridge", "Palace", "Cathedral", "Museum", "Castle", "Mosque", "Fountain", "Gate", "Square", "Gallery"}


def mentions(text: str, words: set[str]) -> bool:
    """Whether ``text`` contains one of ``words`` as a whole word (punctuation ignored)."""
    return any(w.strip(".,!?;:'\"") in words for w in text.split())


def steering_sweep(model, sae, feature: int, values: Sequence[float | None], prompts: Sequence[str] = STEERING_PROMPTS,
                   words: set[str] = PLACE_WORDS, n_new: int = 10) -> dict:
    """Greedy completions of ``prompts`` with latent ``feature`` clamped to each of ``values``
    (``None``: no hook, the model as it is). Returns ``{value: (share of completions that mention
    one of words, completions)}``."""
    from helpers.sae import generate_greedy

    out = {}
    for value in values:
        hooks = [] if value is None else [
            (sae.cfg.metadata.hook_name, lambda resid, hook, v=value: clamp_feature(resid, sae, feature, v))]
        completions = generate_greedy(model, list(prompts), n_new, hooks)
        out[value] = (sum(mentions(c, words) for c in completions) / len(completions), completions)
    return out
