"""Lesson 2b's figures: shrinkage of three SAE architectures, and toy models with correlated feature pairs."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from jaxtyping import Float
from torch import Tensor

from helpers.lesson2.architectures import ArchitectureEvaluation
from helpers.lesson2.plots import plot_feature_directions

__all__ = ["plot_shrinkage", "plot_correlated_pairs"]


def plot_shrinkage(evaluations: dict[str, ArchitectureEvaluation], max_points: int = 3000) -> plt.Figure:
    """One panel per SAE: each matched latent's value against the true value of its feature, where both fire,
    with the line of no shrinkage (y = x) and the least-squares line through the origin."""
    fig, axes = plt.subplots(1, len(evaluations), figsize=(3.3 * len(evaluations), 3.2), sharex=True, sharey=True)
    for ax, (name, ev) in zip(axes, evaluations.items()):
        both = (ev.true_values != 0) & (ev.sae_values != 0)
        t, a = ev.true_values[both][:max_points], ev.sae_values[both][:max_points]
        ax.scatter(t.numpy(), a.numpy(), s=3, alpha=0.25, color="tab:blue")
        ax.plot([0, 1.8], [0, 1.8], color="grey", ls="--", lw=1, label="no shrinkage")
        ax.plot([0, 1.8], [0, 1.8 * ev.shrinkage], color="tab:red", lw=1.5, label=f"fit: {ev.shrinkage:.2f} × true")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("true feature value")
        ax.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel("SAE latent value")
    fig.tight_layout()
    return fig


def plot_correlated_pairs(W: Float[Tensor, "instance 2 feature"], titles: Sequence[str]) -> plt.Figure:
    """Each model's feature directions as arrows (2 hidden dimensions); features 0 and 1 (a pair) solid,
    2 and 3 (the other pair) dashed."""
    fig, axes = plt.subplots(1, len(W), figsize=(3.0 * len(W), 3.1))
    for ax, w, title in zip(axes, W, titles):
        plot_feature_directions(w, ax, title)
        for line in ax.lines[2:]:
            line.set_linestyle("--")
        for i in range(w.shape[1]):
            ax.annotate(str(i), (1.18 * w[0, i].item(), 1.18 * w[1, i].item()), ha="center", va="center", fontsize=9)
    fig.tight_layout()
    return fig
