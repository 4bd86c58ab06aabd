"""The figures of lesson 4: probe accuracy by layer, the controls, the interventions, probe against patching,
and the ROC curves of the truth detector."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Float, Int
from sklearn.metrics import roc_auc_score, roc_curve

from helpers.lesson4.interventions import Removal, SteeringCurve

__all__ = ["LAYER_LABELS", "plot_layer_accuracies", "plot_controls", "plot_interventions", "plot_probe_and_patching",
           "plot_roc"]

LAYER_LABELS = ["embed", "block 0", "block 1", "block 2", "block 3"]

Series = Float[np.ndarray, "layer"] | Sequence[float]


def plot_layer_accuracies(accuracies: Mapping[str, Series], chance: Mapping[str, float], title: str = "",
                          ax: plt.Axes | None = None) -> plt.Axes:
    """Held-out probe accuracy per layer, one line per attribute, with each one's chance level dotted."""
    ax = ax or plt.subplots(figsize=(7, 3.6))[1]
    for i, (name, acc) in enumerate(accuracies.items()):
        ax.plot(range(len(acc)), acc, "o-", color=f"C{i}", label=name)
        ax.axhline(float(chance[name]), color=f"C{i}", ls=":", lw=1)
    ax.set_xticks(range(len(LAYER_LABELS)), [f"{label}\n(entry {i})" for i, label in enumerate(LAYER_LABELS)])
    ax.set(ylim=(-0.02, 1.05), ylabel="held-out probe accuracy", xlabel="residual stream after ...",
           title=title or "Where does each attribute become linearly readable? (dotted: chance)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    return ax


def plot_controls(results: Mapping[str, Mapping[str, Series]], baselines: Mapping[str, float],
                  chance: Mapping[str, float]) -> plt.Figure:
    """One panel per attribute: the probe by layer on the trained model, the same on a random model,
    the MLP probe, the control task; the bag-of-words baseline and chance as horizontal lines."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.3 * len(results), 3.6), sharey=True)
    styles = {"linear probe": ("C0", "o-"), "MLP probe": ("C1", "s--"), "random-init model": ("C3", "^-"),
              "control task (random labels)": ("C7", "x:")}
    for ax, (task, series) in zip(np.atleast_1d(axes), results.items()):
        for name, values in series.items():
            color, style = styles[name]
            ax.plot(range(len(values)), values, style, color=color, label=name)
        ax.axhline(float(baselines[task]), color="C2", lw=1.5, label="bag of embeddings")
        ax.axhline(float(chance[task]), color="black", ls=":", lw=1, label="chance")
        ax.set_xticks(range(len(LAYER_LABELS)), LAYER_LABELS, rotation=30, fontsize=8)
        ax.set(title=task, ylim=(-0.02, 1.05))
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("held-out accuracy")
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="center right")
    fig.tight_layout()
    return fig


def plot_interventions(effects: Mapping[str, Removal], multiples: Sequence[float | int],
                       steered: Mapping[str, SteeringCurve], layer: int) -> plt.Figure:
    """Left: share of answers that change when each attribute's probe direction (red) or a random direction
    (grey) is removed. Right: the steering curves, one per attribute."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1.2, 1]})
    bars = [(f"{name}: {kind}", effect) for name, removal in effects.items()
            for kind, effect in [("probe direction", removal.probe), ("random direction", removal.random)]]
    ax1.bar(range(len(bars)), [effect.answers_changed for _, effect in bars],
            color=["C3" if "random" not in label else "grey" for label, _ in bars])
    ax1.set_xticks(range(len(bars)), [label.replace(": ", ":\n") for label, _ in bars], fontsize=8)
    ax1.set(ylabel="share of answers that changed", ylim=(0, 1), title=f"Remove one direction after block {layer}")
    ax1.grid(alpha=0.3, axis="y")
    for i, (name, curve) in enumerate(steered.items()):
        ax2.plot(multiples, curve.shares, "o-", color=f"C{i}", label=f"{name} direction: {curve.label}")
    ax2.axhline(0.5, color="grey", ls=":", lw=1)
    ax2.set(xlabel="alpha, in gaps between the two classes' means along the direction",
            ylabel="share answered with class 1's word", title=f"Steer along it after block {layer}",
            ylim=(-0.02, 1.02))
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_probe_and_patching(probe_acc: Series, patched: Series) -> plt.Axes:
    """Probe accuracy (information present) beside patching at the same vector (information used)."""
    ax = plt.subplots(figsize=(7, 3.4))[1]
    ax.plot(range(len(probe_acc)), probe_acc, "o-", label="probe accuracy (is it there?)")
    ax.plot(range(len(patched)), patched, "s-", color="C3", label="share of the answer moved by patching\n"
                                                                   "that one vector (was it used here?)")
    ax.set_xticks(range(len(LAYER_LABELS)), LAYER_LABELS)
    ax.set(ylim=(-0.05, 1.05), xlabel="residual stream at the last token, after ...",
           title="Sentiment: present vs used")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_roc(is_true: Int[np.ndarray, "example"], scores: Mapping[str, Float[np.ndarray, "example"]]) -> plt.Axes:
    """ROC curves for flagging false statements, one per score (higher = "more likely false")."""
    ax = plt.subplots(figsize=(4.2, 4))[1]
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(1 - np.asarray(is_true), score)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {roc_auc_score(1 - np.asarray(is_true), score):.2f})")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.set(xlabel="true statements flagged (false-positive rate)", ylabel="false statements caught (recall)",
           title="Flagging false statements (held-out facts)")
    ax.legend(fontsize=8, loc="lower right")
    return ax
