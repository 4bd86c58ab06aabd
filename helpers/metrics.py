"""Measurements of model behaviour shared by the training script, the evaluation and the lessons."""
from __future__ import annotations

from typing import NamedTuple

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

__all__ = ["CopyLosses", "HeadScores", "induction_and_prev_token_scores", "repeated_random_tokens",
           "repeated_sequence_losses"]


class HeadScores(NamedTuple):
    """Two scores of every attention head (unpacks as ``induction, prev_token = ...``)."""

    induction: Float[Tensor, "layer head_index"]
    prev_token: Float[Tensor, "layer head_index"]


class CopyLosses(NamedTuple):
    """Mean next-token loss on the first and on the second copy of a repeated random sequence."""

    first: float
    second: float


def repeated_random_tokens(model: HookedTransformer, n_seqs: int = 50, half_len: int = 25,
                           seed: int = 0) -> Int[Tensor, "batch pos"]:
    """Random tokens repeated once, after a BOS token: ``[n_seqs, 1 + 2 * half_len]``.

    Tokens are drawn uniformly from the vocabulary, special tokens excluded.
    """
    generator = torch.Generator().manual_seed(seed)
    special = set(model.tokenizer.all_special_ids) if model.tokenizer is not None else {0}
    allowed = torch.tensor([i for i in range(model.cfg.d_vocab) if i not in special])
    half = allowed[torch.randint(len(allowed), (n_seqs, half_len), generator=generator)]
    bos = torch.full((n_seqs, 1), model.tokenizer.bos_token_id)
    return torch.cat([bos, half, half], dim=1)


def induction_and_prev_token_scores(model: HookedTransformer, n_seqs: int = 50, half_len: int = 25,
                                    seed: int = 0) -> HeadScores:
    """Induction and previous-token scores of every head, each ``[n_layers, n_heads]``.

    On random tokens repeated once, a head's induction score is its mean attention from each
    second-half token to the token just after that token's first occurrence (the diagonal offset
    by ``half_len - 1``). Its previous-token score is its mean attention to the previous token.
    """
    tokens = repeated_random_tokens(model, n_seqs, half_len, seed)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    induction = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    prev_token = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        pattern = cache["pattern", layer]                     # [batch, head_index, query_pos, key_pos]
        induction[layer] = pattern.diagonal(offset=-(half_len - 1), dim1=-2, dim2=-1)[..., 2:].mean((0, -1))
        prev_token[layer] = pattern.diagonal(offset=-1, dim1=-2, dim2=-1)[..., 1:].mean((0, -1))
    return HeadScores(induction, prev_token)


def repeated_sequence_losses(model: HookedTransformer, n_seqs: int = 50, half_len: int = 25,
                             seed: int = 0) -> CopyLosses:
    """Mean loss on the first and the second copy of random tokens repeated once.

    Each copy's first token is left out of its mean (nothing can predict it), so both means are
    over the tokens 2 to ``half_len`` of their copy.
    """
    tokens = repeated_random_tokens(model, n_seqs, half_len, seed)
    with torch.no_grad():
        losses = model(tokens, return_type="loss", loss_per_token=True)   # [batch, pos - 1]
    first = losses[:, 1:half_len].mean().item()             # predicting positions 2..half_len
    second = losses[:, half_len + 1:].mean().item()          # predicting positions half_len+2..2*half_len
    return CopyLosses(first, second)
