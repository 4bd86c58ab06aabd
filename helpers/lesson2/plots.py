"""The lesson's figures: the toy models' feature directions, the SAE sweeps, and the feature dashboards of part B."""
from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from jaxtyping import Float
from matplotlib.colors import ListedColormap
from torch import Tensor

from helpers.lesson2.ground_truth import FeatureMatch, FeatureMatches, LabelledTokens, top_contexts
from helpers.lesson2.synthetic import BatchedSAEs, SAEEvaluation, best_match_order, family_latents
from helpers.lesson2.toy_models import (
    dimensions_per_feature,
    feature_norms,
    features_represented,
    superposition_per_feature,
)

__all__ = ["plot_feature_directions", "plot_wtw", "plot_norm_bars", "plot_superposition_overview",
           "plot_dimensions_per_feature", "density_slider", "plot_cosine_matrix", "plot_l1_tradeoff",
           "plot_feature_splitting", "percent_down", "describe_match", "dashboard_text", "dashboard_html",
           "collapsed_code"]


# ============================================================================ part A: toy models
def plot_feature_directions(W: Float[Tensor, "d_hidden feature"], ax: plt.Axes, title: str = "") -> None:
    """Draw each feature's 2-D direction ``W[:, i]`` (``d_hidden`` = 2) as an arrow from the origin."""
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


def plot_wtw(W: Float[Tensor, "d_hidden feature"], ax: plt.Axes, title: str = "") -> None:
    """Heat map of ``W^T W``: feature-by-feature overlaps (blue +, red -)."""
    ax.imshow((W.T @ W).numpy(), cmap="RdBu", vmin=-1.3, vmax=1.3)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def plot_norm_bars(W: Float[Tensor, "d_hidden feature"], ax: plt.Axes) -> None:
    """Bars of ``||W_i||`` per feature, coloured from black (own dimension) to yellow (shares one)."""
    norms = feature_norms(W).numpy()
    share = superposition_per_feature(W[None])[0].clamp(0, 1).numpy()
    ax.barh(np.arange(len(norms)), norms, color=plt.cm.plasma(share * 0.9))
    ax.set_xlim(0, 1.3)
    ax.invert_yaxis()
    ax.set_yticks([])
    ax.tick_params(labelsize=7)


def plot_superposition_overview(W_small: Float[Tensor, "instance 2 _"],
                                W_large: Float[Tensor, "instance d_hidden feature"],
                                densities: Sequence[float]) -> plt.Figure:
    """One column per density: the 2-D model's feature directions, and the larger model's ``W^T W`` and norms."""
    n = len(densities)
    fig, axes = plt.subplots(3, n, figsize=(1.9 * n + 1.2, 6.2), gridspec_kw={"height_ratios": [1, 1, 1.1]},
                             layout="constrained")
    for i, density in enumerate(densities):
        plot_feature_directions(W_small[i], axes[0, i], f"density {density:g}")
        plot_wtw(W_large[i], axes[1, i])
        plot_norm_bars(W_large[i], axes[2, i])
    large = f"{W_large.shape[-1]} features\nin {W_large.shape[-2]} dims"
    axes[0, 0].set_ylabel(f"{W_small.shape[-1]} features\nin 2 dims", fontsize=9)
    axes[1, 0].set_ylabel(r"$W^TW$" + f"\n{large}", fontsize=9)
    axes[2, 0].set_ylabel(f"{large}:\nlength of\neach feature", fontsize=9)
    keys = [(axes[0], plt.cm.ScalarMappable(plt.Normalize(-0.5, W_small.shape[-1] - 0.5),
                                            ListedColormap(
                                                plt.cm.viridis(np.linspace(0, 0.9, W_small.shape[-1])))),
             "feature (0: most\nimportant)", range(W_small.shape[-1])),
            (axes[1], plt.cm.ScalarMappable(plt.Normalize(-1.3, 1.3), "RdBu"), "dot product", [-1, 0, 1]),
            (axes[2], plt.cm.ScalarMappable(plt.Normalize(0, 1 / 0.9), "plasma"), "shared with\nother features\n"
             "(0: a dimension\nof its own)", [0, 0.5, 1])]
    for row, mappable, label, ticks in keys:
        bar = fig.colorbar(mappable, ax=row.tolist(), fraction=0.02, pad=0.01, ticks=list(ticks))
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    fig.suptitle("From one feature per dimension (left) to superposition (right)", fontsize=11)
    return fig


def plot_dimensions_per_feature(W: Float[Tensor, "instance d_hidden feature"],
                                densities: Sequence[float]) -> plt.Figure:
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


def density_slider(W_small: Float[Tensor, "instance 2 _"], W_large: Float[Tensor, "instance d_hidden feature"],
                   densities: Sequence[float]) -> object:
    """An ipywidgets slider over the densities that redraws the three views for the chosen one."""
    import ipywidgets as widgets

    def show(density: float) -> None:
        i = list(densities).index(density)
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1, 0.8]})
        plot_feature_directions(W_small[i], axes[0], f"{W_small.shape[-1]} features in 2 dims")
        plot_wtw(W_large[i], axes[1], f"$W^TW$, {W_large.shape[-1]} features in {W_large.shape[-2]} dims")
        plot_norm_bars(W_large[i], axes[2])
        axes[2].set_title(f"{int(features_represented(W_large[i:i + 1])[0])} features represented", fontsize=9)
        fig.suptitle(f"feature density {density:g}", fontsize=11)
        plt.show()

    slider = widgets.SelectionSlider(options=list(densities), value=densities[0], description="density",
                                     continuous_update=False)
    return widgets.interactive(show, density=slider)


# ============================================================================ part A: SAEs on synthetic data
def plot_cosine_matrix(true_directions: Float[Tensor, "feature d_model"], decoder: Float[Tensor, "d_sae d_model"],
                       ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Cosine similarity of every true feature (rows) with every SAE latent (columns, best match first)."""
    order = best_match_order(true_directions, decoder)
    cos = torch.nn.functional.normalize(true_directions.detach(), dim=-1) @ \
        torch.nn.functional.normalize(decoder.detach()[order], dim=-1).T
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.6))
    image = ax.imshow(cos.numpy(), cmap="RdBu", vmin=-1, vmax=1)
    ax.set(xlabel="SAE latent (columns in the order of the features they match)", ylabel="true feature", title=title)
    ax.set_xticks(range(len(order)), [str(int(j)) for j in order], fontsize=6, rotation=90)
    plt.colorbar(image, ax=ax, fraction=0.046, label="cosine similarity")
    return ax


def plot_l1_tradeoff(l1_coefficients: Sequence[float], results: SAEEvaluation, true_l0: float) -> plt.Figure:
    """Left: L0 against reconstruction error, one point per L1 coefficient. Right: feature recovery against it."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.plot(results.l0, results.mse, "o-")
    for l1, l0, mse in zip(l1_coefficients, results.l0, results.mse):
        ax1.annotate(f"λ={l1:g}", (l0, mse), textcoords="offset points", xytext=(6, 2), fontsize=8)
    ax1.axvline(true_l0, color="grey", ls="--", lw=1)
    ax1.text(true_l0, min(results.mse), " true L0", color="grey", fontsize=8, va="bottom")
    ax1.set(xlabel="L0 (latents active per example)", ylabel="reconstruction error (MSE, log scale)",
            yscale="log", title="Sparser codes reconstruct worse")
    ax2.plot(l1_coefficients, results.mean_max_cosine, "o-", color="C2")
    ax2.axhline(0.9, color="grey", ls=":", lw=1)
    ax2.text(l1_coefficients[0], 0.905, "0.9: most features found", fontsize=8, color="grey", va="bottom")
    ax2.set(xscale="log", xlabel="L1 coefficient λ", ylabel="mean max cosine with true features",
            title="Feature recovery peaks in between", ylim=(0.5, 1.02))
    fig.tight_layout()
    return fig


def plot_feature_splitting(saes: BatchedSAEs, widths: Sequence[int], true_directions: Float[Tensor, "feature d_model"],
                           names: Sequence[str]) -> plt.Figure:
    """For each SAE width (one SAE of ``saes`` per width), the cosine of each latent of the parent's family with
    the parent and each child. ``true_directions`` holds the parent first, then its children, named by ``names``."""
    fig, axes = plt.subplots(1, len(widths), figsize=(3.3 * len(widths), 3.0), squeeze=False)
    unit_true = torch.nn.functional.normalize(true_directions, dim=-1)
    for ax, i, width in zip(axes[0], range(len(widths)), widths):
        decoder = saes.W_dec[i][:width]
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


# ============================================================================ part B: dashboards
def percent_down(share: float) -> str:
    """``share`` as a percentage with one decimal, rounded *down*: 0.79979 is '79.9%', never '80.0%', so a
    printed share is on the same side of the 80% line as the share the verdict was decided on."""
    return f"{math.floor(1000 * share + 1e-9) / 10:.1f}%"


def describe_match(m: FeatureMatch) -> str:
    """One line on a latent's verdict that names the label deciding it: the best label (by AUROC) for a clean
    latent, the label holding >= 80% of its activation for a split one, both for a vague one."""
    best = f"'{m.label}' (AUROC {m.auroc:.2f}, {percent_down(m.precision)} of its activation)"
    inside = f"'{m.narrow_label}' ({percent_down(m.narrow_precision)} of its activation)"
    if m.verdict == "clean":
        return f"clean for {best}"
    if m.verdict == "split":
        return f"split: inside {inside}, best label {best}"
    return f"vague: best label {best}; most inside one label: {inside}"


def dashboard_text(acts: Float[Tensor, "example d_sae"], data: LabelledTokens, feature: int,
                   matches: FeatureMatches | None = None, k: int = 5) -> str:
    """A plain-text feature dashboard: the verdict (given ``matches``), then the top contexts with the
    strongest token in [[brackets]] and its activation."""
    lines = [f"latent {feature}"]
    if matches is not None and (matches.features == feature).any():
        lines[0] += ": " + describe_match(matches.of(feature))
    for str_tokens, values in top_contexts(acts, data, feature, k):
        peak = int(np.argmax(values))
        text = "".join(f"[[{t}]]" if i == peak else t for i, t in enumerate(str_tokens))
        lines.append(f"  {values[peak]:6.2f}  {text.strip()}")
    return "\n".join(lines)


def dashboard_html(acts: Float[Tensor, "example d_sae"], data: LabelledTokens, features: Sequence[int],
                   matches: FeatureMatches | None = None, k: int = 5) -> object:
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


def collapsed_code(obj: object, summary: str) -> object:
    """The source of ``obj``, syntax-highlighted inside a collapsed ``<details>`` block headed ``summary``: for
    code a learner may skip on a first read (click the summary to open it)."""
    import html
    import inspect

    from IPython.display import HTML
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    code = highlight(inspect.getsource(obj), PythonLexer(), HtmlFormatter(noclasses=True))  # type: ignore[arg-type]
    return HTML(f"<details><summary><b>{html.escape(summary)}</b></summary>{code}</details>")
