"""Natural wrong answers to workbook 4b's exercises, for the checks to name.

Each builder computes what a learner who made one slip would return, so that a check can tell the learner which
mistake their output matches. The tests (``tests/test_lesson4_steering_workbook.py``) write their wrong answers as
a learner would, independently of these.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers.lesson4.reference_steering import steering_hook, steering_hook_name

__all__ = ["SteerSlip", "steer_variant", "steered_logits", "EffectSlip", "effect_variant", "centred_svd_rows",
           "smallest_eigenvector", "threshold_accuracy"]

Hook = Callable[..., Tensor]
SteerSlip = Literal["right", "none", "first", "multiply", "subtract", "unit", "all", "shared"]
"""How a wrong steering hook edits: as it should, not at all, at position 0 only, by multiplying, by subtracting,
with the vector scaled to length 1, at every position whatever ``pos`` says, or one hook object shared by all."""
EffectSlip = Literal["unnormalised", "cross-batch", "reversed", "late-binding", "endpoints", "last-only"]
"""How a wrong ``effect_per_unit_norm`` measures: the direction at its own length, the answers indexed across the
batch, the difference the other way round, every run with the last alpha, the slope from the two ends only, or the
vector added at the last position only."""


# ============================================================================ exercise 8
def steer_variant(slip: SteerSlip) -> Callable[[Tensor, float, int | None], Hook]:
    """A ``steering_hook`` with one slip (``"shared"``: every call returns the same hook, set to its last call)."""
    if slip == "right":
        return steering_hook
    if slip == "shared":
        state: dict = {}

        def shared(resid, hook=None):
            return resid + state["alpha"] * state["vector"]

        def make_shared(vector, alpha, pos=None):
            state.update(vector=vector, alpha=alpha)
            return shared
        return make_shared

    def make(vector, alpha, pos=None):
        def hook(resid, hook=None):
            if slip == "none":
                return None
            if slip == "first":
                out = resid.clone()
                out[:, 0] = out[:, 0] + alpha * vector
                return out
            if slip == "multiply":
                return resid * (alpha * vector)
            if slip == "subtract":
                return steering_hook(vector, -alpha, pos)(resid)
            if slip == "unit":
                return steering_hook(vector / vector.norm(), alpha, pos)(resid)
            return resid + alpha * vector                                        # "all": pos ignored
        return hook
    return make


def steered_logits(make_hook: Callable[..., Hook], model: HookedTransformer, tokens: Int[Tensor, "batch pos"],
                   layer: int, vector: Float[Tensor, "d_model"], alphas: Sequence[float], pos: int | None
                   ) -> list[Tensor]:
    """What the check of exercise 8 compares: the logits of ``tokens`` steered before block ``layer`` with the hook
    ``make_hook(vector, alpha, pos)`` of each alpha, the hooks all made first and then run one by one (as a sweep
    over alphas does), ``[batch, pos, d_vocab]`` each."""
    hooks = [make_hook(vector, alpha, pos) for alpha in alphas]
    return [model.run_with_hooks(tokens, fwd_hooks=[(steering_hook_name(layer), hook)]) for hook in hooks]



# ============================================================================ exercise 9
def effect_variant(slip: EffectSlip, runs: dict | None = None) -> Callable[..., float]:
    """An ``effect_per_unit_norm`` with one slip.

    ``runs`` keeps each steered run's last-position logits (per model, tokens, layer, vector, alpha and position)
    for the other variants: most slips read the same runs differently, so the check's six mistakes cost about
    three sweeps, not six, and a wrong answer is judged about as fast as a right one.
    """
    runs = {} if runs is None else runs

    def last_logits(model, tokens, layer, unit, alpha, pos):
        key = (id(model), tuple(tokens.flatten().tolist()), layer, tuple(unit.tolist()), alpha, pos)
        if key not in runs:
            hook = steering_hook(unit, alpha, pos)
            runs[key] = model.run_with_hooks(tokens, fwd_hooks=[(steering_hook_name(layer), hook)])[:, -1]
        return runs[key]

    def effect(model: HookedTransformer, tokens: Int[Tensor, "batch pos"], answers: Int[Tensor, "batch 2"],
               layer: int, direction: Float[Tensor, "d_model"], alphas: Sequence[float]) -> float:
        unit = direction if slip == "unnormalised" else direction / direction.norm()
        runs = [alphas[-1]] * len(alphas) if slip == "late-binding" else list(alphas)
        rows = torch.arange(tokens.shape[0])
        means = []
        for alpha in runs:
            last = last_logits(model, tokens, layer, unit, alpha, -1 if slip == "last-only" else None)
            if slip == "cross-batch":
                diff = last[:, answers[:, 0]] - last[:, answers[:, 1]]                   # [batch, batch]
            else:
                diff = last[rows, answers[:, 0]] - last[rows, answers[:, 1]]
            means.append(diff.mean().item() * (-1 if slip == "reversed" else 1))
        x = np.asarray(alphas, dtype=float)
        if slip == "endpoints":
            return float((means[-1] - means[0]) / (x[-1] - x[0]))
        return float(np.polyfit(x, np.asarray(means), 1)[0])
    return effect


def centred_svd_rows(diffs: Float[Tensor, "example d_model"], centre: bool = True
                     ) -> tuple[Tensor, Tensor, Tensor]:
    """``torch.linalg.svd`` of ``diffs`` (centred on their mean, or not), reduced."""
    x = diffs - diffs.mean(0) if centre else diffs
    return torch.linalg.svd(x, full_matrices=False)


def smallest_eigenvector(diffs: Float[Tensor, "example d_model"]) -> Float[Tensor, "d_model"]:
    """The eigenvector of the covariance taken from the wrong end: ``torch.linalg.eigh`` sorts eigenvalues up."""
    x = diffs - diffs.mean(0)
    return torch.linalg.eigh(x.T @ x)[1][:, 0]


def threshold_accuracy(scores: Float[np.ndarray, "example"], labels: Int[np.ndarray, "example"],
                       threshold: float, *, agnostic: bool = True) -> float:
    """The accuracy of ``score > threshold`` (and, if ``agnostic``, of the opposite rule when that is higher)."""
    accuracy = float(np.mean((np.asarray(scores) > threshold) == (np.asarray(labels) == 1)))
    return max(accuracy, 1 - accuracy) if agnostic else accuracy

