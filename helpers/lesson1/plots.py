"""Lesson 1b's figures: a position-by-position attention pattern, score comparisons, and the training curve."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from jaxtyping import Float
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from helpers.lesson1.training import TrainingCurve

__all__ = ["position_pattern_plot", "score_comparison_plot", "training_curve_plot"]


def position_pattern_plot(pattern: Float[Tensor, "query_pos key_pos"], title: str, ax: Axes | None = None) -> Axes:
    """A ``[query_pos, key_pos]`` attention pattern as an image (white 0, dark blue 1), positions on the axes."""
    ax = ax if ax is not None else plt.subplots(figsize=(5, 4.5))[1]
    image = ax.imshow(pattern.detach().cpu().numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.figure.colorbar(image, ax=ax, fraction=0.045, pad=0.03, label="attention")
    ax.set(title=title, xlabel="key position (attended to)", ylabel="query position (looking)")
    return ax


def score_comparison_plot(ours: dict[str, Float[Tensor, "layer head_index"]],
                          theirs: dict[str, Float[Tensor, "layer head_index"]], ceiling: dict[str, float]) -> Figure:
    """One panel per score name: each head's score ``ours`` (x) against ``theirs`` (y), a dot per head.

    The dashed line is ``theirs = ours * ceiling[name]``: where the dots fall when the two definitions differ
    only by the share of positions that count.
    """
    fig, axes = plt.subplots(1, len(ours), figsize=(5.2 * len(ours), 4.2), squeeze=False)
    for ax, name in zip(axes[0], ours):
        x, y = ours[name].flatten(), theirs[name].flatten()
        n_heads = ours[name].shape[1]
        ax.plot([0, 1], [0, ceiling[name]], color="grey", linestyle="--", label=f"ours x {ceiling[name]:.2f}")
        ax.scatter(x, y, color=["tab:blue" if i < n_heads else "tab:orange" for i in range(len(x))])
        ax.scatter([], [], color="tab:blue", label="block-0 heads")
        ax.scatter([], [], color="tab:orange", label="block-1 heads")
        ax.set(title=name, xlabel="our score (lesson 1)", ylabel="detect_head score", xlim=(-0.03, 1.03),
               ylim=(-0.03, 1.03))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def training_curve_plot(curve: TrainingCurve, phase_step: int, shipped: Sequence[int] = ()) -> Figure:
    """The loss on the repeated half (left) and the best head scores (right) over training steps.

    A dashed line marks ``phase_step``; dots mark the steps in ``shipped`` (the checkpoints one can load).
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 3.8))
    steps = torch.tensor(curve.steps)
    left.plot(steps, curve.repeated_loss, label="second (repeated) copy")
    left.plot(steps, curve.first_loss, label="first copy", color="grey", alpha=0.7)
    left.set(title="Loss on random words repeated once", xlabel="training step", ylabel="loss (nats)")
    right.plot(steps, curve.best_induction, label="best induction score", color="tab:red")
    right.plot(steps, curve.best_prev_token, label="best previous-token score", color="tab:green")
    right.set(title="Best head scores", xlabel="training step", ylabel="score", ylim=(0, 1.02))
    for ax in (left, right):
        ax.axvline(phase_step, color="grey", linestyle="--")
        ax.text(phase_step, ax.get_ylim()[1], f" phase change (step {phase_step})", va="top", color="grey")
        for step in shipped:
            i = curve.steps.index(step)
            values = [curve.repeated_loss[i]] if ax is left else [curve.best_induction[i], curve.best_prev_token[i]]
            ax.scatter([step] * len(values), values, color="black", zorder=3, s=18)
        ax.grid(alpha=0.3)
        ax.legend(loc="center right")
    fig.tight_layout()
    return fig
