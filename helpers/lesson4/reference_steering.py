"""The reference answer of every exercise of workbook 4b (steering, and a direction found without labels).

Workbook 4b (``solutions/04b_steering_and_unsupervised_probes.ipynb``) continues workbook 4's numbering:

======  ===================================  ==================================================================
 ex.    reference                            what it does
======  ===================================  ==================================================================
  6     :func:`mean_difference_direction`    mean of class 1 minus mean of class 0 (unit length if asked)
  7     :func:`mean_difference_probe_predict`  project on a direction, threshold halfway between the class means
  8     :func:`steering_hook`                a hook that adds ``alpha * vector`` at every position, or at one
  9     :func:`effect_per_unit_norm`         the slope of the mean logit difference against ``alpha``
  10a   :func:`contrast_pair_differences`    each side of the pairs centred, then one minus the other
  10b   :func:`first_principal_direction`    the first principal component (``torch.linalg.svd``)
  11    :func:`sign_agnostic_accuracy`       accuracy of ``score > 0`` or of its opposite, whichever is higher
  12    :func:`ccs_loss`                     CCS's consistency plus confidence loss (Burns et al., 2022)
======  ===================================  ==================================================================
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

__all__ = ["mean_difference_direction", "mean_difference_probe_predict", "steering_hook", "effect_per_unit_norm",
           "steering_hook_name", "contrast_pair_differences", "first_principal_direction", "sign_agnostic_accuracy",
           "ccs_loss"]

Hook = Callable[..., Tensor]
"""A TransformerLens forward hook: ``hook(resid, hook) -> resid`` (the tensor the model uses instead)."""


# ============================================================================ exercise 6
def mean_difference_direction(acts: Float[Tensor, "example d_model"], labels: Int[np.ndarray, "example"],
                              normalise: bool = True) -> Float[Tensor, "d_model"]:
    """Exercise 6: the mean activation of class 1 minus the mean activation of class 0.

    ``acts`` holds one vector per example (rows), ``labels`` is 0 or 1 per row. With ``normalise`` the result is
    divided by its length (a unit vector); without, it keeps its length, the distance between the class means.
    """
    is_one = torch.as_tensor(np.asarray(labels) == 1)
    direction = acts[is_one].mean(0) - acts[~is_one].mean(0)
    return direction / direction.norm() if normalise else direction


# ============================================================================ exercise 7
def mean_difference_probe_predict(direction: Float[Tensor, "d_model"], train_acts: Float[Tensor, "example d_model"],
                                  train_labels: Int[np.ndarray, "example"],
                                  test_acts: Float[Tensor, "_example d_model"]) -> Int[np.ndarray, "_example"]:
    """Exercise 7: a mean-difference probe's predictions: 1 where a test vector's projection on ``direction`` is
    above the threshold halfway between the two classes' mean projections on the *training* examples."""
    train_scores = train_acts @ direction
    is_one = torch.as_tensor(np.asarray(train_labels) == 1)
    threshold = (train_scores[is_one].mean() + train_scores[~is_one].mean()) / 2
    return (test_acts @ direction > threshold).long().numpy()


# ============================================================================ exercise 8
def steering_hook(vector: Float[Tensor, "d_model"], alpha: float, pos: int | None = None) -> Hook:
    """Exercise 8: a hook that adds ``alpha * vector`` to the residual stream at every position (``pos=None``) or
    only at position ``pos`` (negative counts from the end, as in Python), in every prompt of the batch.

    The hook returns a new tensor and leaves the one it was given alone.
    """
    def hook(resid: Float[Tensor, "batch pos d_model"], hook=None) -> Float[Tensor, "batch pos d_model"]:
        if pos is None:
            return resid + alpha * vector
        steered = resid.clone()
        steered[:, pos] = steered[:, pos] + alpha * vector
        return steered
    return hook


def steering_hook_name(layer: int) -> str:
    """Where the workbook steers: the residual stream before block ``layer`` (``blocks.{layer}.hook_resid_pre``)."""
    return f"blocks.{layer}.hook_resid_pre"


# ============================================================================ exercise 9
def effect_per_unit_norm(model: HookedTransformer, tokens: Int[Tensor, "batch pos"], answers: Int[Tensor, "batch 2"],
                         layer: int, direction: Float[Tensor, "d_model"], alphas: Sequence[float]) -> float:
    """Exercise 9: how much adding ``alpha`` units of ``direction`` moves the logit difference, per unit of alpha.

    ``direction`` is scaled to length 1; for each ``alpha`` the model runs with ``alpha * unit`` added before block
    ``layer`` at every position. The logit difference of prompt ``i`` is ``logit(answers[i, 0]) -
    logit(answers[i, 1])`` at the last position (every prompt has the same length); its mean over the batch,
    one per alpha, is fitted by a line (least squares): the slope is returned.
    """
    unit = direction / direction.norm()
    rows = torch.arange(tokens.shape[0])
    means = []
    for alpha in alphas:
        logits = model.run_with_hooks(tokens, fwd_hooks=[(steering_hook_name(layer), steering_hook(unit, alpha))])
        last = logits[:, -1]                                              # [batch, d_vocab]
        means.append((last[rows, answers[:, 0]] - last[rows, answers[:, 1]]).mean().item())
    slope, _ = np.polyfit(np.asarray(alphas, dtype=float), np.asarray(means), 1)
    return float(slope)


# ============================================================================ exercise 10
def contrast_pair_differences(acts_first: Float[Tensor, "example d_model"],
                              acts_second: Float[Tensor, "example d_model"]) -> Float[Tensor, "example d_model"]:
    """Exercise 10a: row ``i`` is pair ``i``'s first member minus its second, each side first centred on its own mean.

    Centring each side (subtract ``acts_first.mean(0)`` from ``acts_first``, ``acts_second.mean(0)`` from
    ``acts_second``) removes what every first member shares with every other first member (Burns et al. 2022
    normalise the two sides this way); the result has mean zero over the pairs.
    """
    return (acts_first - acts_first.mean(0)) - (acts_second - acts_second.mean(0))


def first_principal_direction(diffs: Float[Tensor, "example d_model"]) -> Float[Tensor, "d_model"]:
    """Exercise 10b: the first principal component of the rows of ``diffs``: a unit vector, its sign arbitrary.

    The rows are centred first (a principal component is a direction of largest variance around the mean), then
    ``torch.linalg.svd``: the first row of ``Vh`` is the direction along which the rows spread most.
    """
    centred = diffs - diffs.mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return vh[0]


# ============================================================================ exercise 11
def sign_agnostic_accuracy(scores: Float[np.ndarray, "example"], labels: Int[np.ndarray, "example"]) -> float:
    """Exercise 11: the accuracy of predicting class 1 where ``score > 0``, or of the opposite rule, whichever is
    higher: a direction found without labels has no sign, so either end of it may be "true"."""
    accuracy = float(np.mean((np.asarray(scores) > 0) == (np.asarray(labels) == 1)))
    return max(accuracy, 1.0 - accuracy)


# ============================================================================ exercise 12
def ccs_loss(p_pos: Float[Tensor, "example"], p_neg: Float[Tensor, "example"]) -> Float[Tensor, ""]:
    """Exercise 12: CCS's loss (Burns et al., 2022), a 0-dimensional tensor gradients flow through.

    ``p_pos[i]`` is a probe's probability that pair ``i``'s first member is true, ``p_neg[i]`` that its second is.
    Exactly one of them is true, so the two should add up to 1 (consistency, ``(p_pos - (1 - p_neg))**2``) and
    not both sit at 0.5 (confidence, ``min(p_pos, p_neg)**2``). Returns the mean over the pairs of their sum.
    """
    consistency = (p_pos - (1 - p_neg)) ** 2
    confidence = torch.minimum(p_pos, p_neg) ** 2
    return (consistency + confidence).mean()
