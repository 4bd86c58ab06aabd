"""The reference answers of workbook 5's two coding exercises (the audit's findings are checked against
:mod:`helpers.lesson5.ground_truth` instead)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers.lesson5.audit import words_of

__all__ = ["word_enrichment", "first_divergent_block"]


# ============================================================================ exercise 1
def word_enrichment(disagreeing: Sequence[str], agreeing: Sequence[str]) -> dict[str, float]:
    """Exercise 1: for every word of either list (``words_of`` each prompt), the share of ``disagreeing``
    prompts that contain it minus the share of ``agreeing`` prompts that contain it (each between -1 and 1).

    A prompt counts once for a word however often the word occurs in it.
    """
    sets_d = [words_of(p) for p in disagreeing]
    sets_a = [words_of(p) for p in agreeing]
    vocabulary = set().union(*sets_d, *sets_a)
    return {w: sum(w in s for s in sets_d) / max(len(sets_d), 1) - sum(w in s for s in sets_a) / max(len(sets_a), 1)
            for w in vocabulary}


# ============================================================================ exercise 2
def first_divergent_block(model_a: HookedTransformer, model_b: HookedTransformer,
                          tokens: Int[Tensor, "batch pos"]) -> int | None:
    """Exercise 2: the first block ``l`` whose output (``blocks.l.hook_resid_post``) differs between the two
    models on ``tokens`` (any element by more than 1e-5), or ``None`` when no block's does."""
    names = [f"blocks.{layer}.hook_resid_post" for layer in range(model_a.cfg.n_layers)]
    with torch.no_grad():
        _, cache_a = model_a.run_with_cache(tokens, names_filter=lambda name: name in names)
        _, cache_b = model_b.run_with_cache(tokens, names_filter=lambda name: name in names)
    for layer, name in enumerate(names):
        if not torch.allclose(cache_a[name], cache_b[name], atol=1e-5, rtol=0):
            return layer
    return None
