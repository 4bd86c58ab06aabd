"""The cases workbook 5's checks run the learner's functions and the references on (seeded, small)."""
from __future__ import annotations

import copy
from functools import cache

import torch
from transformer_lens import HookedTransformer

from helpers.checks import Case
from helpers.lesson5.audit import AUDITED, REFERENCE
from helpers.models import cached_model

__all__ = ["enrichment_cases", "divergence_cases", "edited_copy"]


def enrichment_cases() -> list[Case]:
    """Exercise 1: lists of unequal length, a word twice in one prompt, capitals and punctuation, a word only
    in the agreeing prompts."""
    disagreeing = ["The red fox ran. The red fox slept.", "A RED hat, on the table.", "Tom saw the moon."]
    agreeing = ["The cat sat.", "Tom ate a red apple.", "The table was long", "a cat; a dog", "Moon and sun."]
    return [Case((disagreeing, agreeing), label="3 disagreeing prompts, 5 agreeing"),
            Case((agreeing[:2], disagreeing + ["the the the"]), label="2 disagreeing, 4 agreeing, one word thrice"),
            Case((["Only here."], ["Elsewhere, only."]), label="one prompt each")]


@cache
def edited_copy(block: int) -> HookedTransformer:
    """``course-4l`` with block ``block``'s MLP output bias moved (every later block's output then differs)."""
    model = copy.deepcopy(cached_model(REFERENCE))
    with torch.no_grad():
        model.blocks[block].mlp.b_out += 0.5
    return model


def divergence_cases() -> list[Case]:
    """Exercise 2: the audited model against its base, a model against itself, and copies edited in block 0
    and in block 3 (so neither "always 2" nor an index off by one passes)."""
    reference = cached_model(REFERENCE)
    tokens = reference.to_tokens(["The old dog ran to the hill. The Louvre is in",
                                  "When Mary and John went to the store, John gave a drink to"])
    return [Case((reference, edited_copy(0), tokens), label="course-4l against a copy edited in block 0"),
            Case((cached_model(AUDITED), reference, tokens), label="audit-4l against course-4l"),
            Case((edited_copy(3), reference, tokens[:1]), label="a copy edited in block 3 against course-4l"),
            Case((reference, reference, tokens), label="course-4l against itself")]
