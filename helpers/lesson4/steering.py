"""Lesson 4b, sections 1 to 3: steering with a direction, and reading with one.

``notebooks/04b_steering_and_unsupervised_probes.ipynb`` writes its steering hook and its first
``run_with_hooks`` call in its own cells. What it sweeps many times (several directions, many strengths) runs
through :func:`steered_margins`, which resumes the forward pass from a cached residual stream instead of
recomputing the blocks before the hook, without padding, and with the last block's MLP at the one position read:
the same numbers as the hook, a fraction of the time (a test says so).

- :func:`resid_at`: the residual stream at one hook, every position, for a prompt set (:class:`CachedResid`);
- :func:`steered_margins`: ``logit(yes) - logit(no)`` at each prompt's last token, ``vector`` added at every
  position of the cached stream;
- :func:`slope_per_unit_norm`: the least-squares slope of the mean change in margin against the strength;
- :func:`projection_accuracy`: a direction as a reader, thresholded at the midpoint of the training classes;
- :func:`top_latents`: SAE latents ranked by how differently they fire on the two classes;
- :class:`DirectionRow`: one row of the three-direction table.

Shapes: ``[batch, pos, d_model]`` is the residual stream of padded prompts (padded on the right, so each
prompt's own last token is read at ``ends``); ``[example, d_model]`` one vector per prompt.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

__all__ = ["CachedResid", "resid_at", "steered_margins", "slope_per_unit_norm", "projection_accuracy",
           "top_latents", "DirectionRow", "unit"]


def unit(vector: Float[Tensor, "d_model"]) -> Float[Tensor, "d_model"]:
    """``vector`` scaled to length 1."""
    return vector / vector.norm()


class CachedResid(NamedTuple):
    """The residual stream of a prompt set at one hook, with what it takes to finish the forward pass."""

    resid: Float[Tensor, "batch pos d_model"]       # the stream entering block ``layer``
    tokens: Int[Tensor, "batch pos"]                # the padded prompts (right padding)
    ends: Int[Tensor, "batch"]                      # each prompt's last token (BOS counted)
    layer: int                                      # ``blocks.{layer}.hook_resid_pre``


@torch.no_grad()
def resid_at(model: HookedTransformer, prompts: Sequence[str], positions: Int[np.ndarray, "batch"],
             layer: int) -> CachedResid:
    """Run ``prompts`` up to ``blocks.{layer}.hook_resid_pre`` (the stream before block ``layer``) and keep it."""
    tokens = model.to_tokens(list(prompts), padding_side="right")
    resid = model(tokens, stop_at_layer=layer) if layer > 0 else model.hook_embed(model.embed(tokens)) + \
        model.hook_pos_embed(model.pos_embed(tokens))
    return CachedResid(resid, tokens, torch.as_tensor(np.asarray(positions)), layer)


@torch.no_grad()
def steered_margins(model: HookedTransformer, cached: CachedResid, answer_ids: tuple[int, int],
                    vector: Float[Tensor, "d_model"] | None = None) -> Float[Tensor, "batch"]:
    """``logit(yes) - logit(no)`` at each prompt's last token, with ``vector`` added at every position first.

    The same numbers as a hook on ``blocks.{layer}.hook_resid_pre`` returning ``resid + vector``, run with
    ``model.run_with_hooks`` (a test says so), with three savings: the forward pass resumes at block ``layer``
    from the cached stream, so the blocks before it are not run again; prompts of one length run together,
    without padding; and the last block's MLP runs at the last token only, the one position that is read.
    """
    if not 0 <= cached.layer < model.cfg.n_layers:
        raise ValueError(f"a stream before block {cached.layer}: there is no block {cached.layer} to resume at")
    resid = cached.resid if vector is None else cached.resid + vector
    yes, no = answer_ids
    margins = torch.empty(len(cached.ends))
    for end in cached.ends.unique().tolist():
        rows = torch.nonzero(cached.ends == end)[:, 0]            # the prompts whose last token is at ``end``
        x = resid[rows, :end + 1]                                 # [batch, pos, d_model], no padding
        for block in model.blocks[cached.layer:-1]:
            x = block(x)
        last = model.blocks[-1]                                   # the last block, written out:
        normed = last.ln1(x)
        x = (x + last.attn(normed, normed, normed))[:, -1:]       # attention reads every position; keep the last
        x = x + last.mlp(last.ln2(x))                             # and run the MLP there only
        logits = model.unembed(model.ln_final(x))[:, 0]           # [batch, d_vocab]
        margins[rows] = logits[:, yes] - logits[:, no]
    return margins


def slope_per_unit_norm(alphas: Sequence[float | int], mean_changes: Sequence[float | int]) -> float:
    """The least-squares slope through the origin of the mean change in margin against the strength ``alpha``.

    For a unit direction, this is how many logits of margin one unit of norm added moves, on average.
    """
    a, c = np.asarray(alphas, dtype=float), np.asarray(mean_changes, dtype=float)
    return float((a * c).sum() / (a * a).sum())


def projection_accuracy(direction: Float[Tensor, "d_model"], X_train: Float[Tensor, "example d_model"],
                        y_train: Int[np.ndarray, "example"], X_test: Float[Tensor, "_example d_model"],
                        y_test: Int[np.ndarray, "_example"]) -> float:
    """A direction as a reader: project, and call class 1 whatever lies past the midpoint of the class means.

    The midpoint and the side class 1 lies on come from the training split only; the accuracy is on the test
    split. A direction pointing the wrong way reads as well as the right one (the side is learned).
    """
    train = X_train @ direction
    mean1, mean0 = train[torch.as_tensor(y_train == 1)].mean(), train[torch.as_tensor(y_train == 0)].mean()
    side = 1.0 if mean1 > mean0 else -1.0
    predicted = ((X_test @ direction - (mean1 + mean0) / 2) * side > 0).numpy().astype(int)
    return float((predicted == np.asarray(y_test)).mean())


def top_latents(latents: Float[Tensor, "example d_sae"], labels: Int[np.ndarray, "example"], k: int = 5
                ) -> Int[Tensor, "direction"]:
    """The ``k`` SAE latents whose mean activation differs most between class 1 and class 0 (either way)."""
    mask = torch.as_tensor(np.asarray(labels) == 1)
    gap = latents[mask].mean(0) - latents[~mask].mean(0)
    return gap.abs().argsort(descending=True)[:k]


class DirectionRow(NamedTuple):
    """One direction of the three-direction table: how well it reads the concept, and how much it moves it."""

    name: str
    reads: float                   # held-out accuracy of projecting on it (:func:`projection_accuracy`)
    mean_changes: np.ndarray       # mean change in margin at each strength alpha, unit direction added
    per_unit_norm: float           # the slope of those changes against alpha (:func:`slope_per_unit_norm`)
