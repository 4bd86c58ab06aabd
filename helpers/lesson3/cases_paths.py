"""The inputs of workbook 3c's checks, built once per process: IOI batches of the course model and of the
attention-only model, the tiny random model's prompts, their caches and metrics.

They reuse workbook 3a's prompt sets (:func:`helpers.lesson3.cases.ioi_case`, :func:`~helpers.lesson3.cases.tiny_case`)
and its metric (:class:`~helpers.lesson3.cases.NormalizedMetric`: 1 on the clean run, 0 on the corrupted one).
"""
from __future__ import annotations

from functools import lru_cache

import torch
from transformer_lens import ActivationCache, HookedTransformer

from helpers.checks import Case
from helpers.lesson3.cases import NormalizedMetric, clean_cache, ioi_case, tiny_case
from helpers.models import cached_model, tiny_random_model

__all__ = ["setups", "position_cases", "input_cases", "path_cases", "direction_cases", "direct_cases",
           "effect_cases", "carry_cases"]

Setup = tuple[str, HookedTransformer, torch.Tensor, torch.Tensor, torch.Tensor]


@lru_cache(maxsize=None)
def setups() -> dict[str, Setup]:
    """(label, model, clean tokens, corrupted tokens, answers) by a short key: two templates of the course model,
    the attention-only model, and the tiny random model."""
    four, two, tiny = cached_model("course-4l"), cached_model("attn-only-2l"), tiny_random_model()
    a, b, c = ioi_case(3, 0, 0, 3), ioi_case(3, 4, 2, 5), ioi_case(3, 2, 1, 9)
    clean, corrupted, answers = tiny_case(0)
    return {
        "four": ("4-layer model, 3 IOI prompts", four, a.clean_tokens, a.corrupted_tokens, a.answer_tokens),
        "four_b": ("4-layer model, 3 IOI prompts of another template", four, b.clean_tokens, b.corrupted_tokens,
                   b.answer_tokens),
        "two": ("attention-only 2-layer model, 3 IOI prompts", two, c.clean_tokens, c.corrupted_tokens,
                c.answer_tokens),
        "tiny": ("tiny random model, 3 random prompts", tiny, clean, corrupted, answers),
    }


@lru_cache(maxsize=None)
def _metric(key: str) -> NormalizedMetric:
    """The normalised logit difference of a setup (1 on its clean run, 0 on its corrupted run)."""
    _, model, clean, corrupted, answers = setups()[key]
    return NormalizedMetric(model, clean, corrupted, answers)


@lru_cache(maxsize=None)
def _cache(key: str) -> ActivationCache:
    """Every activation of a setup's clean run."""
    _, model, clean, _, _ = setups()[key]
    return clean_cache(model, clean)


@lru_cache(maxsize=None)
def position_cases() -> list[Case]:
    """Exercise 11: heads and positions of three models (the first with ``pos`` below the number of heads, so
    that ``z[:, head, pos]`` runs and can be named)."""
    chosen = [("four", 0, 4, 2), ("four", 0, 4, 14), ("four_b", 1, 1, 10), ("two", 1, 3, 5), ("tiny", 1, 2, 2)]
    cases = []
    for key, layer, head, pos in chosen:
        label, model, _, corrupted, _ = setups()[key]
        cases.append(Case((model, corrupted, _cache(key), layer, head, pos, _metric(key)),
                          label=f"{label}, head {layer}.{head} at position {pos}"))
    return cases


@lru_cache(maxsize=None)
def input_cases() -> list[Case]:
    """Exercise 12: the three inputs of heads of three models."""
    chosen = [("four", 0, 4, "v"), ("four", 1, 1, "k"), ("four_b", 1, 1, "q"), ("two", 1, 2, "k"),
              ("tiny", 2, 1, "q"), ("tiny", 1, 3, "v")]
    cases = []
    for key, layer, head, component in chosen:
        label, model, _, corrupted, _ = setups()[key]
        cases.append(Case((model, corrupted, _cache(key), layer, head, component, _metric(key)),
                          label=f"{label}, head {layer}.{head}'s {component}"))
    return cases


@lru_cache(maxsize=None)
def path_cases() -> list[Case]:
    """Exercise 13: edges two blocks or more apart (so that the blocks in between matter), one block apart, a
    receiver in the sender's block and one in an earlier block (no path: the clean run)."""
    chosen = [("tiny", (0, 1), (2, 3), "q"), ("tiny", (0, 2), (2, 0), "v"), ("four", (0, 4), (2, 1), "k"),
              ("four_b", (0, 1), (3, 0), "v"), ("two", (0, 5), (1, 2), "q"), ("tiny", (1, 0), (1, 2), "v"),
              ("four", (2, 1), (1, 1), "q")]
    cases = []
    for key, sender, receiver, component in chosen:
        label, model, clean, corrupted, _ = setups()[key]
        cases.append(Case((model, clean, corrupted, sender, receiver, component, _metric(key)),
                          label=f"{label}, {sender[0]}.{sender[1]} -> {receiver[0]}.{receiver[1]} ({component})"))
    return cases


@lru_cache(maxsize=None)
def direction_cases() -> list[Case]:
    """Exercise 14: IOI answers on both bundled models, random answers on the tiny model, and one prompt."""
    cases = [Case((setups()[key][1], setups()[key][4]), label=setups()[key][0]) for key in ("four", "two")]
    generator = torch.Generator().manual_seed(3)
    tiny = tiny_random_model()
    cases.append(Case((tiny, torch.randint(0, 50, (5, 2), generator=generator)), label="tiny model, 5 random pairs"))
    cases.append(Case((cached_model("course-4l"), setups()["four_b"][4][:1]), label="4-layer model, one prompt"))
    return cases


@lru_cache(maxsize=None)
def direct_cases() -> list[Case]:
    """Exercise 15: the residual stream after the last block, on three models."""
    cases = []
    for key in ("four", "two", "tiny"):
        label, model, clean, _, answers = setups()[key]
        final = _cache(key)["resid_post", model.cfg.n_layers - 1]
        cases.append(Case((model, final, answers), label=label))
    return cases


@lru_cache(maxsize=None)
def effect_cases() -> list[Case]:
    """Exercises 16 and 17: one head, three heads over two blocks, the tiny model, and no head at all."""
    chosen = [("four", [(0, 4)]), ("four_b", [(0, 1), (0, 3), (1, 1)]), ("tiny", [(1, 0), (2, 3)]),
              ("two", [(1, 2), (0, 5)]), ("four", [])]
    cases = []
    for key, heads in chosen:
        label, model, clean, corrupted, answers = setups()[key]
        named = ", ".join(f"{layer}.{head}" for layer, head in heads) or "no head"
        cases.append(Case((model, clean, corrupted, answers, heads), label=f"{label}, {named}"))
    return cases


def carry_cases() -> list[Case]:
    """Exercise 18: continuations that revert, carry to the end, wander to other places or to no place, never
    answer the target, are one word long, or empty."""
    sides: dict[str, list[str | None]] = {
        "reverts at word 3": ["target", None, "target", "source", "target"],
        "carries to the end": ["target", None, "target", None, None, "target"],
        "another place, then back": ["target", "other place", None, "source", None],
        "no place after the answer": ["target", None, None, None],
        "the answer stayed the source's": ["source", "target", "target", None],
        "the answer is another place": ["other place", "target", "source"],
        "back at once": ["target", "source", "target"],
        "one word": ["target"],
        "nothing generated": [],
    }
    return [Case((list(value),), label=label) for label, value in sides.items()]
