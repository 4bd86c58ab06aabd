"""The reference answers of workbook 1b (circuits in the weights, and how they form), named like the exercises.

:func:`full_ov_circuit` (exercise 8), :func:`diagonal_top1_share` (9), :func:`eigenvalue_positivity` (10),
:func:`positional_attention_pattern` (11), :func:`composition_scores` (12), :func:`detection_score` (13) and
:func:`repeated_half_loss` (14). Workbook 1b's numbering continues workbook 1's (exercises 1 to 7).

A head is written ``(layer, head)``, ``"1.4"`` in prose; blocks count from 0.
"""
from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import FactoredMatrix, HookedTransformer

__all__ = ["full_ov_circuit", "diagonal_top1_share", "eigenvalue_positivity", "positional_attention_pattern",
           "composition_scores", "detection_score", "repeated_half_loss"]


# ----------------------------------------------------------------------------- exercise 8
def full_ov_circuit(model: HookedTransformer, layer: int, head: int) -> FactoredMatrix:
    """The full OV circuit of head ``layer.head``: ``W_E @ W_V @ W_O @ W_U``, ``[d_vocab, d_vocab]``, factored.

    Row ``s``, column ``t``: how much the head raises the logit of token ``t`` when it attends to token ``s``
    (its embedding only). Built from ``model.OV[layer, head]`` (the factored ``W_V @ W_O``), so that nothing
    ``d_vocab x d_vocab`` is ever materialised: the result's factors are ``[d_vocab, d_head]`` and
    ``[d_head, d_vocab]``.
    """
    return model.W_E @ model.OV[layer, head] @ model.W_U


# ----------------------------------------------------------------------------- exercise 9
def diagonal_top1_share(matrix: Float[Tensor, "d_vocab d_vocab"]) -> float:
    """The share of rows whose largest entry is the diagonal one, strictly (a tie is not a copy).

    Row ``s`` counts when ``matrix[s, s]`` is larger than every other entry of row ``s``: for a full OV
    circuit, attending to token ``s`` raises the logit of ``s`` itself more than of any other token.
    """
    beaten = (matrix < matrix.diagonal()[:, None]).sum(dim=1)           # entries below the diagonal one, per row
    return (beaten == matrix.shape[1] - 1).float().mean().item()


# ----------------------------------------------------------------------------- exercise 10
def eigenvalue_positivity(fm: FactoredMatrix) -> float:
    """``sum(λ) / sum(|λ|)``, real part, over the eigenvalues ``λ`` of a square factored matrix.

    1 when every eigenvalue is positive (the matrix copies: it maps a direction onto itself, enlarged),
    -1 when every one is negative, near 0 for a matrix that rotates. ``fm.eigenvalues`` gives the
    (complex) eigenvalues from the small ``B @ A`` product; ``|λ|`` is the complex modulus.
    """
    eigenvalues = fm.eigenvalues                                        # complex, [mdim]
    return (eigenvalues.real.sum() / eigenvalues.abs().sum()).item()


# ----------------------------------------------------------------------------- exercise 11
def positional_attention_pattern(model: HookedTransformer, layer: int, head: int,
                                 ln_scale: float = 1.0) -> Float[Tensor, "query_pos key_pos"]:
    """The attention pattern head ``layer.head`` would have if only the positions mattered (its positional QK circuit).

    The head reads the stream after its block's LayerNorm, which divides it by its scale; ``ln_scale`` is
    that divisor (lesson 1b measures about 0.14 before block 0 of ``attn-only-2l``; 1.0 reads ``W_pos`` as
    stored). With ``P = W_pos / ln_scale`` (``[n_ctx, d_model]``): ``P W_Q W_K^T P^T / sqrt(d_head)``
    (weights only, no biases; query by key), every later key masked out (a query sees itself and the
    positions before it), then a softmax over the keys.
    """
    positions = model.W_pos / ln_scale                                   # [n_ctx, d_model]
    queries = positions @ model.W_Q[layer, head]                         # [n_ctx, d_head]
    keys = positions @ model.W_K[layer, head]
    scores = queries @ keys.T / model.cfg.d_head ** 0.5                  # [query_pos, key_pos]
    future = torch.ones_like(scores, dtype=torch.bool).triu(diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


# ----------------------------------------------------------------------------- exercise 12
def composition_scores(model: HookedTransformer,
                       mode: Literal["Q", "K", "V"]) -> Float[Tensor, "head_index head_index"]:
    """Q-, K- or V-composition of every block-0 head (row) into every block-1 head (column).

    ``||W_OV @ M||_F / (||W_OV||_F * ||M||_F)`` with ``W_OV = W_V @ W_O`` of the block-0 head and ``M`` of the
    block-1 head: its ``W_QK = W_Q @ W_K^T`` (Q), that transposed (K), or its ``W_OV`` (V); all
    ``[d_model, d_model]``. Equals ``model.all_composition_scores(mode)[0, :, 1, :]``, and for K
    lesson 1's :func:`~helpers.lesson1.reference.k_composition_score` of each pair.
    """
    w_ov = model.W_V[0] @ model.W_O[0]                                   # [head, d_model, d_model]
    if mode == "V":
        right = model.W_V[1] @ model.W_O[1]
    else:
        w_qk = model.W_Q[1] @ model.W_K[1].transpose(-2, -1)
        right = w_qk if mode == "Q" else w_qk.transpose(-2, -1)
    products = w_ov[:, None] @ right[None]                               # [head (block 0), head (block 1), ...]
    norms = torch.linalg.matrix_norm(w_ov)[:, None] * torch.linalg.matrix_norm(right)[None]
    return torch.linalg.matrix_norm(products) / norms


# ----------------------------------------------------------------------------- exercise 13
def detection_score(pattern: Float[Tensor, "query_pos key_pos"], detection_pattern: Float[Tensor, "query_pos key_pos"],
                    exclude_bos: bool = False) -> float:
    """``transformer_lens.head_detector.detect_head``'s ``"mul"`` score of one head's attention pattern.

    The attention that falls on the 1s of the 0/1 ``detection_pattern``, as a share of all the
    pattern's attention: ``sum(pattern * detection_pattern) / sum(pattern)``. With ``exclude_bos`` the
    attention on key 0 (BOS) is dropped first, from both sums. The input is left unchanged.
    """
    if exclude_bos:
        pattern = pattern.clone()
        pattern[:, 0] = 0.0
    return ((pattern * detection_pattern).sum() / pattern.sum()).item()


# ----------------------------------------------------------------------------- exercise 14
def repeated_half_loss(model: HookedTransformer, tokens: Int[Tensor, "batch pos"]) -> float:
    """Mean cross-entropy of the predictions of the second copy of repeated sequences.

    ``tokens`` is ``[batch, 1 + 2 * half_len]``: BOS, ``half_len`` tokens, the same again. The logits at
    position ``p`` predict the token at ``p + 1``; the second copy's tokens at ``half_len + 2 ..
    2 * half_len`` are predicted (its first token, at ``half_len + 1``, is not: nothing before it says
    what it is). Same positions as lesson 1's ``second_half_loss`` and
    ``helpers.metrics.repeated_sequence_losses``.
    """
    half_len = (tokens.shape[1] - 1) // 2
    with torch.no_grad():
        log_probs = model(tokens).log_softmax(dim=-1)                     # [batch, pos, d_vocab]
    predicted = log_probs[:, half_len + 1:-1]                            # positions half_len + 1 .. 2 * half_len - 1
    targets = tokens[:, half_len + 2:]                                   # the tokens they predict
    return -predicted.gather(-1, targets[..., None]).mean().item()
