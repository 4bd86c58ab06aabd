"""The natural wrong answers that workbook 1b's checks recognise, each written as a learner might write it.

:mod:`helpers.lesson1.checks_weights` runs them beside the learner's function and names the mistake whose
output the learner's matches. Each builder takes the mistake's switches and returns a function with the
exercise's signature.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import FactoredMatrix, HookedTransformer

from helpers.lesson1.reference_weights import composition_scores, detection_score, full_ov_circuit

__all__ = ["ov_mistake", "top1_mistake", "positivity_mistake", "positional_mistake", "composition_scores_mistake",
           "detection_mistake", "half_loss_mistake"]

Matrix = Float[Tensor, "d_vocab d_vocab"]
Pattern = Float[Tensor, "query_pos key_pos"]


# ----------------------------------------------------------------------------- exercise 8
def ov_mistake(kind: Literal["no_embed", "no_unembed", "transposed", "dense", "swapped_index"]
               ) -> Callable[[HookedTransformer, int, int], FactoredMatrix | Tensor]:
    """Exercise 8 without ``W_E`` or ``W_U``, read from output to input, materialised, or indexed ``[head, layer]``."""
    def wrong(model: HookedTransformer, layer: int, head: int) -> FactoredMatrix | Tensor:
        ov = model.OV[layer, head]
        if kind == "no_embed":
            return ov @ model.W_U
        if kind == "no_unembed":
            return model.W_E @ ov
        if kind == "transposed":
            return model.W_U.T @ ov.T @ model.W_E.T
        if kind == "dense":
            return full_ov_circuit(model, layer, head).AB
        return full_ov_circuit(model, head, layer)
    return wrong


# ----------------------------------------------------------------------------- exercise 9
def top1_mistake(kind: Literal["columns", "ties", "first_tie", "all_entries", "count"]) -> Callable[[Matrix], float]:
    """Exercise 9 down the columns, counting ties (``>=``, ``argmax``'s first index), over all entries, or a count."""
    def wrong(matrix: Matrix) -> float:
        n = matrix.shape[0]
        if kind == "columns":
            hits = (matrix < matrix.diagonal()[None, :]).sum(dim=0) == n - 1
        elif kind == "ties":
            hits = matrix.diagonal() >= matrix.max(dim=1).values
        elif kind == "first_tie":
            hits = matrix.argmax(dim=1) == torch.arange(n)
        else:
            hits = (matrix < matrix.diagonal()[:, None]).sum(dim=1) == n - 1
        if kind == "all_entries":
            return (hits.sum() / matrix.numel()).item()
        if kind == "count":
            return float(hits.sum().item())
        return hits.float().mean().item()
    return wrong


# ----------------------------------------------------------------------------- exercise 10
def positivity_mistake(kind: Literal["no_abs", "real_abs", "singular", "modulus"]) -> Callable[[FactoredMatrix], float]:
    """Exercise 10 without ``abs`` (always 1), with ``|Re λ|``, singular values below, or ``|sum λ|`` above."""
    def wrong(fm: FactoredMatrix) -> float:
        eigenvalues = fm.eigenvalues
        if kind == "no_abs":
            return (eigenvalues.real.sum() / eigenvalues.real.sum()).item()
        if kind == "real_abs":
            return (eigenvalues.real.sum() / eigenvalues.real.abs().sum()).item()
        if kind == "singular":
            return (eigenvalues.real.sum() / fm.S.sum()).item()
        return (eigenvalues.sum().abs() / eigenvalues.abs().sum()).item()
    return wrong


# ----------------------------------------------------------------------------- exercise 11
def positional_mistake(divide: Literal["both", "none", "once"] = "both", scale: bool = True,
                       mask: Literal["before", "none", "after", "diagonal"] = "before", softmax_dim: int = -1,
                       transposed: bool = False, biases: bool = False, fill: float = float("-inf")
                       ) -> Callable[[HookedTransformer, int, int, float], Pattern]:
    """Exercise 11 without ``ln_scale`` or dividing the scores by it once, unscaled, masked wrongly or not at
    all, normalised over queries, with queries and keys swapped, or with the biases ``b_Q``, ``b_K`` added.
    ``fill`` is what the masked scores get (-inf, or a large negative number such as -1e9, which differ
    only where a whole row is masked)."""
    def wrong(model: HookedTransformer, layer: int, head: int, ln_scale: float = 1.0) -> Pattern:
        positions = model.W_pos / ln_scale if divide == "both" else model.W_pos
        w_q, w_k = model.W_Q[layer, head], model.W_K[layer, head]
        if transposed:
            w_q, w_k = w_k, w_q
        queries, keys = positions @ w_q, positions @ w_k
        if biases:
            queries, keys = queries + model.b_Q[layer, head], keys + model.b_K[layer, head]
        scores = queries @ keys.T / (model.cfg.d_head ** 0.5 if scale else 1.0)
        if divide == "once":
            scores = scores / ln_scale
        future = torch.ones_like(scores, dtype=torch.bool).triu(diagonal=0 if mask == "diagonal" else 1)
        if mask in ("before", "diagonal"):
            scores = scores.masked_fill(future, fill)
        pattern = scores.softmax(dim=softmax_dim)
        return pattern.masked_fill(future, 0.0) if mask == "after" else pattern
    return wrong


# ----------------------------------------------------------------------------- exercise 12
def composition_scores_mistake(kind: Literal["qk_swapped", "order", "no_norm", "transposed", "spectral", "always_k"]
                               ) -> Callable[[HookedTransformer, Literal["Q", "K", "V"]],
                                             Float[Tensor, "head_index head_index"]]:
    """Exercise 12 with Q and K swapped, the product in the wrong order, without the norms, transposed,
    with spectral norms, or always K-composition."""
    def wrong(model: HookedTransformer, mode: Literal["Q", "K", "V"]) -> Float[Tensor, "head_index head_index"]:
        if kind == "qk_swapped":
            return composition_scores(model, {"Q": "K", "K": "Q", "V": "V"}[mode])  # type: ignore[arg-type]
        if kind == "transposed":
            return composition_scores(model, mode).T
        if kind == "always_k":
            return composition_scores(model, "K")
        w_ov = model.W_V[0] @ model.W_O[0]
        w_qk = model.W_Q[1] @ model.W_K[1].transpose(-2, -1)
        right = {"Q": w_qk, "K": w_qk.transpose(-2, -1), "V": model.W_V[1] @ model.W_O[1]}[mode]
        products = right[None] @ w_ov[:, None] if kind == "order" else w_ov[:, None] @ right[None]
        ord_ = 2 if kind == "spectral" else "fro"
        norm = torch.linalg.matrix_norm(products, ord=ord_)
        if kind == "no_norm":
            return norm
        left_norms = torch.linalg.matrix_norm(w_ov, ord=ord_)[:, None]
        return norm / (left_norms * torch.linalg.matrix_norm(right, ord=ord_)[None])
    return wrong


# ----------------------------------------------------------------------------- exercise 13
def detection_mistake(kind: Literal["stripe_mean", "no_divide", "all_entries", "bos_denominator", "bos_ignored"]
                      ) -> Callable[..., float]:
    """Exercise 13 as lesson 1's stripe mean, undivided, averaged over every entry, dividing by the attention
    before BOS was dropped, or ignoring ``exclude_bos``."""
    def wrong(pattern: Pattern, detection_pattern: Pattern, exclude_bos: bool = False) -> float:
        if kind == "bos_ignored":
            return detection_score(pattern, detection_pattern)
        kept = pattern.clone()
        if exclude_bos:
            kept[:, 0] = 0.0
        on_pattern = (kept * detection_pattern).sum()
        if kind == "stripe_mean":
            return (on_pattern / detection_pattern.sum()).item()
        if kind == "no_divide":
            return on_pattern.item()
        if kind == "all_entries":
            return (on_pattern / pattern.numel()).item()
        return (on_pattern / pattern.sum()).item()
    return wrong


# ----------------------------------------------------------------------------- exercise 14
def half_loss_mistake(kind: Literal["whole", "same_position", "no_log_softmax", "with_first", "fixed_half",
                                    "log_prob"]) -> Callable[[HookedTransformer, Tensor], float]:
    """Exercise 14 over every prediction, predicting the token at the same position, on raw logits, with the
    second copy's first token, with the notebook's ``half_len`` 25 fixed, or without the minus sign."""
    def wrong(model: HookedTransformer, tokens: Int[Tensor, "batch pos"]) -> float:
        half_len = 25 if kind == "fixed_half" else (tokens.shape[1] - 1) // 2
        with torch.no_grad():
            logits = model(tokens)
        scores = logits if kind == "no_log_softmax" else logits.log_softmax(dim=-1)
        if kind == "whole":
            predicted, targets = scores[:, :-1], tokens[:, 1:]
        elif kind == "same_position":
            predicted, targets = scores[:, half_len + 1:], tokens[:, half_len + 1:]
        elif kind == "with_first":
            predicted, targets = scores[:, half_len:-1], tokens[:, half_len + 1:]
        else:
            predicted, targets = scores[:, half_len + 1:-1], tokens[:, half_len + 2:]
        picked = predicted.gather(-1, targets[..., None]).mean().item()
        return picked if kind == "log_prob" else -picked
    return wrong
