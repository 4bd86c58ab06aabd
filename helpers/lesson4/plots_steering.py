"""The figures of lesson 4b: steering by coefficient, three directions compared, two readers by layer, and the
unsupervised truth readers by layer."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Float

from helpers.lesson4.plots import READ_AT
from helpers.lesson4.steering import DirectionRow

__all__ = ["plot_steering_by_coefficient", "plot_direction_effects", "plot_readers_by_layer",
           "plot_unsupervised_by_layer"]

Series = Float[np.ndarray, "layer"] | Sequence[float]    # beartype (the tests' checker) takes no int as a float


def plot_steering_by_coefficient(coefficients: Sequence[float | int], shares: Mapping[str, Series],
                                 margins: Mapping[str, Series]) -> plt.Figure:
    """Left: the share of held-out reviews answered " positive" against the coefficient of the mean difference
    added, one line per place; right: the mean margin ``logit(" positive") - logit(" negative")``."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, name in enumerate(shares):
        left.plot(coefficients, shares[name], "o-", color=f"C{i}", label=name, alpha=0.85, lw=2.5 - 0.6 * i)
        right.plot(coefficients, margins[name], "o-", color=f"C{i}", label=name, alpha=0.85, lw=2.5 - 0.6 * i)
    left.set(xlabel="coefficient c (vector added: c × mean difference)", ylabel='share answered " positive"',
             ylim=(-0.03, 1.03), title="Answers of 200 held-out reviews, steered")
    right.axhline(0, color="black", lw=0.8)
    right.set(xlabel="coefficient c", ylabel="mean logit(positive) − logit(negative)", title="Mean margin")
    for ax in (left, right):
        ax.axvline(0, color="grey", ls=":", lw=1)
        ax.grid(alpha=0.3)
    right.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_direction_effects(alphas: Sequence[float | int], rows: Sequence[DirectionRow],
                           cosines: Float[np.ndarray, "direction direction"], names: Sequence[str]) -> plt.Figure:
    """Left: the mean change in margin against alpha (alpha times a unit direction added), one line per
    direction; right: the cosine similarity of every two directions."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.8), gridspec_kw={"width_ratios": [1.4, 1]})
    for i, row in enumerate(rows):
        left.plot(alphas, row.mean_changes, "o-", color=f"C{i}", lw=2.6 - 0.5 * i, alpha=0.85,
                  label=f"{row.name} ({row.per_unit_norm:.2f} per unit)")
    left.axhline(0, color="black", lw=0.8)
    left.set(xlabel="alpha (norm of the vector added)", ylabel="mean change in margin (logits)",
             title="How far each unit direction moves the answer")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="upper left")
    image = right.imshow(cosines, cmap="RdBu", vmin=-1, vmax=1)
    for r in range(len(names)):
        for c in range(len(names)):
            right.text(c, r, f"{cosines[r, c]:.2f}", ha="center", va="center", fontsize=9)
    right.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    right.set_yticks(range(len(names)), names, fontsize=8)
    right.set_title("cosine similarity")
    fig.colorbar(image, ax=right, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_readers_by_layer(logistic: Mapping[str, Series], mean_difference: Mapping[str, Series],
                          chance: Mapping[str, float]) -> plt.Figure:
    """One panel per attribute: held-out accuracy of the logistic-regression probe and of the mean-difference
    probe at every place read, with the attribute's chance dotted."""
    fig, axes = plt.subplots(1, len(logistic), figsize=(4.2 * len(logistic), 3.4), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), logistic):
        ax.plot(range(len(logistic[name])), logistic[name], "o-", color="C0", lw=2.5, label="logistic regression")
        ax.plot(range(len(mean_difference[name])), mean_difference[name], "s--", color="C1",
                label="mean difference")
        ax.axhline(float(chance[name]), color="black", ls=":", lw=1, label="chance")
        ax.set_xticks(range(len(READ_AT)), READ_AT, rotation=30, fontsize=8)
        ax.set(title=name, ylim=(0.3, 1.03))
        ax.grid(alpha=0.3)
    first = np.atleast_1d(axes)[0]
    first.set_ylabel("held-out accuracy")
    first.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_unsupervised_by_layer(series: Mapping[str, Series], places: Sequence[str]) -> plt.Axes:
    """Held-out (sign-agnostic) accuracy of each truth reader at the places read, 0.5 dotted."""
    ax = plt.subplots(figsize=(7, 3.6))[1]
    styles = ["o-", "s--", "^-", "x:"]
    for i, (name, values) in enumerate(series.items()):
        ax.plot(range(len(values)), values, styles[i % 4], color=f"C{i}", label=name, lw=2.6 - 0.5 * i, alpha=0.85)
    ax.axhline(0.5, color="black", ls=":", lw=1)
    ax.set_xticks(range(len(places)), places)
    ax.set(ylim=(0.4, 1.03), ylabel="held-out accuracy (sign-agnostic)", xlabel="the last token's vector",
           title="Truth read with and without labels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return ax
