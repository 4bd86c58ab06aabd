"""What lesson 1's notebook loads and reads: its prompts, the folded model, and picking heads from a score grid.

The lesson's experiments themselves (decomposing the stream, the logit lens, ablations with hooks,
composition scores) run in its cells, calling TransformerLens directly; this module only holds the
few helpers those cells share with the workbook and the checks.
"""
from __future__ import annotations

from typing import NamedTuple

from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers.models import load_model

__all__ = ["CAT_PROMPT", "IOI_PROMPT", "Head", "load_lesson_model", "heads_above", "best_head"]

CAT_PROMPT = "The cat sat on the mat. The cat sat on the"
IOI_PROMPT = "When Mary and John went to the store, John gave a drink to"


class Head(NamedTuple):
    """One attention head, ``(layer, head)``: still a tuple, so ``scores[head]`` indexes a score grid."""

    layer: int
    head: int


def load_lesson_model(name: str = "attn-only-2l", head_results: bool = True) -> HookedTransformer:
    """``load_model(name)`` (LayerNorm folded, as ``from_pretrained`` does) for head-level analysis.

    With ``head_results``, also records each head's own output (``cache["result", layer]``:
    ``[batch, pos, head_index, d_model]``), which costs memory on large batches.
    """
    model = load_model(name)  # already processed like from_pretrained (fold_ln=True)
    model.set_use_attn_result(head_results)
    return model


def heads_above(scores: Float[Tensor, "layer head_index"], threshold: float) -> list[Head]:
    """Heads whose score is at least ``threshold``, best first; the single best head if none is."""
    flat = scores.flatten()
    order = flat.argsort(descending=True).tolist()
    n_heads = scores.shape[1]
    picked = [Head(*divmod(i, n_heads)) for i in order if flat[i] >= threshold]
    return picked or [Head(*divmod(order[0], n_heads))]


def best_head(scores: Float[Tensor, "layer head_index"]) -> Head:
    """The head with the largest entry of ``scores``."""
    return Head(*divmod(int(scores.argmax()), scores.shape[1]))
