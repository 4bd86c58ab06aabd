"""The reference answer of every exercise of workbook 1, named like the exercise.

:func:`rebuild_residual_stream` (exercise 1), :func:`head_logit_attribution` (2), :func:`previous_token_scores`
(3), :func:`induction_scores` (4), :func:`ablation_loss_increase` (5), :func:`k_composition_score` (6) and
:func:`induction_targets` (7, stretch), with the two helpers exercise 5 needs (:func:`second_half_loss`,
:func:`zero_heads_hooks`).

A head is written ``(layer, head)``; ``"1.4"`` in prose.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache, HookedTransformer
from transformer_lens.hook_points import HookPoint
from transformer_lens.utils import get_act_name

__all__ = ["second_half_loss", "zero_heads_hooks", "rebuild_residual_stream", "head_logit_attribution",
           "previous_token_scores", "induction_scores", "ablation_loss_increase", "k_composition_score",
           "induction_targets"]

Hook = tuple[str, Callable]     # a (hook name, hook function) pair of run_with_hooks's fwd_hooks


def second_half_loss(model: HookedTransformer, tokens: Int[Tensor, "batch pos"], half_len: int,
                     fwd_hooks: list[Hook] | None = None) -> float:
    """Mean loss on the predictable tokens of the second copy of ``tokens`` (``pos = 1 + 2 * half_len``).

    Same positions as ``helpers.metrics.repeated_sequence_losses``: the second copy's first token
    cannot be predicted and is left out.
    """
    with torch.no_grad():
        losses = model.run_with_hooks(tokens, return_type="loss", loss_per_token=True,
                                      fwd_hooks=fwd_hooks or [])          # [batch, pos - 1]
    return losses[:, half_len + 1:].mean().item()


def zero_heads_hooks(heads: Sequence[tuple[int, int]]) -> list[Hook]:
    """``fwd_hooks`` for ``run_with_hooks`` that zero the output (``hook_z``) of each listed head."""
    def zero(z: Float[Tensor, "batch pos head_index d_head"],
             hook: HookPoint) -> Float[Tensor, "batch pos head_index d_head"]:
        for layer, head in heads:
            if layer == hook.layer():
                z[:, :, head] = 0.0
        return z
    return [(get_act_name("z", layer), zero) for layer in sorted({layer for layer, _ in heads})]


# ----------------------------------------------------------------------------- exercise 1
def rebuild_residual_stream(cache: ActivationCache, model: HookedTransformer) -> Float[Tensor, "batch pos d_model"]:
    """The final residual stream rebuilt from its parts.

    Token embedding + positional embedding (models with learned positions only) + every layer's
    attention output + every layer's MLP output (models with MLPs only).
    """
    resid = cache["embed"].clone()
    if model.cfg.positional_embedding_type == "standard":
        resid += cache["pos_embed"]
    for layer in range(model.cfg.n_layers):
        resid += cache["attn_out", layer]
        if not model.cfg.attn_only:
            resid += cache["mlp_out", layer]
    return resid


# ----------------------------------------------------------------------------- exercise 2
def head_logit_attribution(cache: ActivationCache, model: HookedTransformer, token_id: int,
                           pos: int) -> Float[Tensor, "layer head_index"]:
    """Each head's direct contribution to the logit of ``token_id`` at position ``pos`` of prompt 0.

    The model must have its LayerNorms folded (:func:`~helpers.lesson1.analysis.load_lesson_model`), so the
    final LayerNorm only centres and divides by its scale.
    """
    scale = cache["ln_final.hook_scale"][0, pos]                         # [1]
    rows = []
    for layer in range(model.cfg.n_layers):
        z = cache["z", layer][0, pos]                                     # [head, d_head]
        out = torch.einsum("hd,hdm->hm", z, model.W_O[layer])             # [head, d_model]
        out = out - out.mean(-1, keepdim=True)
        rows.append(out / scale @ model.W_U[:, token_id])                 # [head]
    return torch.stack(rows)


# ----------------------------------------------------------------------------- exercise 3
def previous_token_scores(cache: ActivationCache, n_layers: int) -> Float[Tensor, "layer head_index"]:
    """Mean attention of every head from each position to the one just before it.

    Averaged over the batch and over query positions ``2..pos-1``: position 0 has no previous
    token, and position 1's previous token is BOS, where heads park attention they do not need.
    Same definition as ``helpers.metrics.induction_and_prev_token_scores``.
    """
    return torch.stack([cache["pattern", layer].diagonal(offset=-1, dim1=-2, dim2=-1)[..., 1:].mean((0, -1))
                        for layer in range(n_layers)])


# ----------------------------------------------------------------------------- exercise 4
def induction_scores(cache: ActivationCache, n_layers: int, half_len: int) -> Float[Tensor, "layer head_index"]:
    """Mean attention from each second-copy token to the token after its first copy.

    The cache is of tokens ``[batch, 1 + 2 * half_len]``: BOS, ``half_len`` random tokens, the same
    again. The token at ``q`` (``half_len + 1 <= q <= 2 * half_len``) first appeared at
    ``q - half_len``; the token after that is at ``q - half_len + 1``.
    """
    return torch.stack([cache["pattern", layer].diagonal(offset=1 - half_len, dim1=-2, dim2=-1)[..., 2:].mean((0, -1))
                        for layer in range(n_layers)])


# ----------------------------------------------------------------------------- exercise 5
def ablation_loss_increase(model: HookedTransformer, tokens: Int[Tensor, "batch pos"],
                           heads: Sequence[tuple[int, int]], half_len: int) -> float:
    """How much the second-copy loss rises when ``heads`` are zero-ablated (their ``hook_z`` set to 0).

    ``tokens``: repeated random tokens, ``pos = 1 + 2 * half_len``. Returns ablated minus clean mean loss
    over the predictable second-copy tokens (see :func:`second_half_loss`).
    """
    clean = second_half_loss(model, tokens, half_len)
    return second_half_loss(model, tokens, half_len, zero_heads_hooks(heads)) - clean


# ----------------------------------------------------------------------------- exercise 6
def k_composition_score(model: HookedTransformer, early: tuple[int, int], late: tuple[int, int]) -> float:
    """How strongly head ``early``'s output can steer the keys of the later head ``late``.

    ``||W_OV @ W_QK.T||_F / (||W_OV||_F * ||W_QK||_F)`` with ``W_OV = W_V @ W_O`` of ``early`` and
    ``W_QK = W_Q @ W_K.T`` of ``late`` (both ``[d_model, d_model]``). Equals
    ``model.all_composition_scores("K")[*early, *late]``.
    """
    w_ov = model.W_V[early] @ model.W_O[early]                         # [d_model, d_model]
    w_qk = model.W_Q[late] @ model.W_K[late].T                         # [d_model, d_model]
    return ((w_ov @ w_qk.T).norm() / (w_ov.norm() * w_qk.norm())).item()


# ----------------------------------------------------------------------------- exercise 7 (stretch)
def induction_targets(tokens: Int[Tensor, "pos"]) -> Int[Tensor, "pos"]:
    """Where an induction head at each position of one sequence would look (int64).

    For each position ``q``: the position right after the most recent earlier occurrence of
    ``tokens[q]``, or -1 if the token did not occur before ``q``.
    """
    last_seen: dict[int, int] = {}
    targets = []
    for q, token in enumerate(tokens.tolist()):
        targets.append(last_seen[token] + 1 if token in last_seen else -1)
        last_seen[token] = q
    return torch.tensor(targets, dtype=torch.long)
