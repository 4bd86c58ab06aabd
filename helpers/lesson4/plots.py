"""The figures of lesson 4: probe accuracy by layer, the controls, the interventions, probe against patching,
and the truth detector's AUROC by layer."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Float

from helpers.lesson4.interventions import Removal, SteeringCurve

__all__ = ["LAYER_LABELS", "READ_AT", "plot_layer_accuracies", "plot_controls", "plot_interventions",
           "plot_probe_and_patching", "plot_auroc_by_layer"]

LAYER_LABELS = ["embed", "block 0", "block 1", "block 2", "block 3"]
READ_AT = ["embeddings", *[f"after {label}" for label in LAYER_LABELS[1:]]]    # tick labels: where a probe reads

Series = Float[np.ndarray, "layer"] | Sequence[float]


def plot_layer_accuracies(accuracies: Mapping[str, Series], chance: Mapping[str, float], title: str = "",
                          ax: plt.Axes | None = None) -> plt.Axes:
    """Held-out probe accuracy per layer, one line per attribute, with each one's chance level dotted."""
    ax = ax or plt.subplots(figsize=(7, 3.6))[1]
    for i, (name, acc) in enumerate(accuracies.items()):
        ax.plot(range(len(acc)), acc, "o-", color=f"C{i}", label=name)
        ax.axhline(float(chance[name]), color=f"C{i}", ls=":", lw=1)
    ax.set_xticks(range(len(LAYER_LABELS)), READ_AT)
    ax.set(ylim=(-0.02, 1.05), ylabel="held-out probe accuracy", xlabel="the last token's vector, residual stream",
           title=title or "Where does each attribute become linearly readable? (dotted: chance)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    return ax


def plot_controls(results: Mapping[str, Mapping[str, Series]], baselines: Mapping[str, float],
                  chance: Mapping[str, float], control_chance: Mapping[str, float] | None = None) -> plt.Figure:
    """One panel per attribute: the probe by layer on the trained model, the same on a random model,
    the MLP probe, the control task; the bag-of-words baseline, the task's chance and the control task's own
    chance (the majority share of its held-out random labels) as horizontal lines; one legend, below."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.3 * len(results), 3.6), sharey=True)
    styles = {"linear probe": ("C0", "o-"), "MLP probe": ("C1", "s--"), "random-init model": ("C3", "^-"),
              "control task (random labels)": ("C7", "x:")}
    for ax, (task, series) in zip(np.atleast_1d(axes), results.items()):
        for name, values in series.items():
            color, style = styles[name]
            ax.plot(range(len(values)), values, style, color=color, label=name)
        ax.axhline(float(baselines[task]), color="C2", lw=1.5, label="bag of embeddings")
        ax.axhline(float(chance[task]), color="black", ls=":", lw=1, label="chance of the task")
        if control_chance is not None:
            ax.axhline(float(control_chance[task]), color="C7", ls="-.", lw=1.2, label="chance of the control task")
        ax.set_xticks(range(len(LAYER_LABELS)), READ_AT, rotation=30, fontsize=8)
        ax.set(title=task, ylim=(-0.02, 1.05))
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("held-out accuracy")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.1, 1, 1))            # room below the panels for the legend, off every curve
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
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
            ylabel="share answered with the word in the legend", title=f"Steer along it after block {layer}",
            ylim=(-0.02, 1.02))
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_probe_and_patching(probe_acc: Mapping[str, Series], chance: Mapping[str, float],
                            patched: Mapping[str, Series]) -> plt.Figure:
    """Two panels over the same x axis: probe accuracy (is it there?), each probe with its chance level dotted;
    and the share of the answer moved by patching the last token's vector (was the answer resting on it?),
    with 0 (nothing moved) and 1 (all of the change) drawn."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6))
    for i, (name, acc) in enumerate(probe_acc.items()):
        # the first line widest and the later ones narrower, so that lines lying on one another all stay visible
        ax1.plot(range(len(acc)), acc, "o-", color=f"C{i}", label=name, lw=5 - 1.5 * i, ms=11 - 3 * i, alpha=0.8)
        ax1.axhline(float(chance[name]), color=f"C{i}", ls=":", lw=1)
    ax1.set(ylim=(0.4, 1.03), ylabel="held-out probe accuracy", title="Is it there? (dotted: each probe's chance)")
    ax1.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)
    colour = {name.split()[0]: f"C{i}" for i, name in enumerate(probe_acc)}     # "sentiment ..." -> its probe's
    for i, (name, share) in enumerate(patched.items()):
        same_colour = colour.get(name.split()[0].rstrip(":"), f"C{i + len(probe_acc)}")
        ax2.plot(range(len(share)), share, "s-", color=same_colour, label=name, lw=4 - 2 * i, ms=9 - 3 * i,
                 alpha=0.8)
    ax2.axhline(0, color="black", lw=1)
    ax2.axhline(1, color="grey", ls=":", lw=1)
    ax2.set(ylim=(-0.08, 1.12), ylabel="share of the answer moved",
            title="Does the answer rest on that vector? (patching)")
    ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, frameon=False)
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(LAYER_LABELS)), READ_AT,
                      fontsize=8)
        ax.set_xlabel("the last token's vector in the residual stream")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_auroc_by_layer(auroc: Mapping[str, Series], own_answer: float) -> plt.Axes:
    """The truth probe's AUROC at each place it reads, one line per test set, with chance (0.5) dotted and the
    model's own answer on the held-out facts as a dashed line."""
    ax = plt.subplots(figsize=(10, 3.4))[1]
    for i, (name, values) in enumerate(auroc.items()):
        ax.plot(range(len(values)), values, "o-", color=f"C{i}", label=f"probe, {name}")
        ax.annotate(f"{values[1]:.2f}", (1, values[1]), textcoords="offset points", xytext=(6, -4), color=f"C{i}",
                    fontsize=8)
    ax.axhline(0.5, color="black", ls=":", lw=1, label="chance (0.5)")
    ax.axhline(own_answer, color="grey", ls="--", lw=1,
               label=f"the model's own answer, held-out facts ({own_answer:.3f})")
    ax.set_xticks(range(len(LAYER_LABELS)), READ_AT)
    ax.set(ylim=(0.3, 1.03), ylabel="AUROC (flagging false statements)", xlabel="where the probe reads",
           title="A truth probe as a detector: facts it saw, against facts it never saw")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure = ax.get_figure(root=True)
    if figure is not None:
        figure.tight_layout()
    return ax
