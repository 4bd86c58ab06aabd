"""Lesson 3c's figures: the effect of each edge, what one head reads from where, and both directions of patching."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from jaxtyping import Float
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from torch import Tensor

__all__ = ["plot_edge_effects", "plot_head_reads", "plot_both_directions"]


def plot_edge_effects(effects: Mapping[str, float], drawn: Sequence[str], title: str = "", ax: Axes | None = None
                      ) -> Axes:
    """Horizontal bars, one per edge (``label -> share of the clean logit difference lost``); the edges of the
    circuit diagram (``drawn``) in blue, the others in grey."""
    ax = ax or plt.subplots(figsize=(7, 0.32 * len(effects) + 1.2))[1]
    labels = list(effects)
    colours = ["tab:blue" if label in drawn else "tab:grey" for label in labels]
    ax.barh(range(len(labels)), [effects[label] for label in labels], color=colours)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(xlabel="share of the clean logit difference lost", title=title)
    ax.legend(handles=[Patch(color="tab:blue", label="drawn in lesson 3a's diagram"),
                       Patch(color="tab:grey", label="not drawn")], loc="center right")
    return ax


def plot_head_reads(rows: Mapping[str, Float[Tensor, "pos"]], tokens: Sequence[str], title: str = "",
                    ax: Axes | None = None) -> Axes:
    """One row per patched input of a head (its output, queries, keys, values), one column per position."""
    ax = ax or plt.subplots(figsize=(11, 0.5 * len(rows) + 1.6))[1]
    grid = torch.stack([row.detach().float() for row in rows.values()])       # [row, pos]
    image = ax.imshow(grid, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_xticks(range(len(tokens)), tokens, rotation=60)
    for (r, p), value in zip([(r, p) for r in range(grid.shape[0]) for p in range(grid.shape[1])], grid.flatten()):
        if abs(value) >= 0.05:
            ax.text(p, r, f"{value:.2f}", ha="center", va="center", fontsize=8)
    plt.colorbar(image, ax=ax, label="share of clean restored")
    ax.set(xlabel="position patched", title=title)
    return ax


def plot_both_directions(denoising: Mapping[str, float], noising: Mapping[str, float], title: str = "",
                         ax: Axes | None = None) -> Axes:
    """Side-by-side bars per set of components: the share restored by denoising and the share lost by noising."""
    ax = ax or plt.subplots(figsize=(8, 3.4))[1]
    names = list(denoising)
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [denoising[n] for n in names], 0.4, label="denoising: restored (sufficient?)")
    ax.bar([x + 0.2 for x in xs], [noising[n] for n in names], 0.4, label="noising: lost (necessary?)")
    ax.set_xticks(list(xs), names, rotation=20, ha="right")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(ylabel="share of the clean logit difference", title=title)
    ax.legend()
    return ax
