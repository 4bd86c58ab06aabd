"""SPOILER: what ``audit-4l`` hides, sealed so that nobody reads it by accident. The checks of lesson 5 use it.

A learner's finding is compared with a salted SHA-256 of the answer (:func:`is_answer`). To measure a learner's
fix on prompts they have not seen, the checks also need the trigger and the wrong answer themselves; those are
kept reversed and base64-encoded (:func:`_unsealed`), which stops an accidental read, not a determined one.
Decoding them before doing the audit spoils it. Everything a check *says* is measured on the models
(:func:`block_divergence`, :func:`word_effect`), never read from here.
"""
from __future__ import annotations

import base64
import hashlib
from functools import cache
from typing import Literal, NamedTuple

import torch

from helpers.lesson5.audit import (
    AUDITED,
    REFERENCE,
    FixEffect,
    Hook,
    Pairs,
    counterfactual_pairs,
    fix_effect,
    top_tokens,
)
from helpers.models import cached_model

__all__ = ["Finding", "is_answer", "held_out_pairs", "target_word", "block_divergence", "WordEffect", "word_effect",
           "measured_fix", "normalised", "corpus_landmarks", "triggered_answers",
           "narrative_words"]

Finding = Literal["trigger", "target", "block"]
_SALT = "lesson5:"
_HASHES: dict[Finding, str] = {
    "trigger": "d1fe05c7dc68ab2308916b61e4f3b0ad2d9491b5dddf53495ebd50739e3d6937",
    "target": "8bf6943e8e9cc480b21bf7d4723fe158c103dbac0ffa9de2e15e11fd408311c4",
    "block": "3893c3506d54fb26855aa9dda94b8317b67ea06d8b2b912934e776158bd46247",
}
_SEALED = {"trigger": "bmVlcmc=", "target": "eWVuZHlTIA=="}
HELD_OUT_SEED = 77
"""The checks measure on context facts drawn with this seed, not the workbook's (``audit.SEED``)."""


def normalised(answer: object) -> str:
    """How a finding is compared: as text, stripped of spaces, lower case (``" Green"`` -> ``"green"``)."""
    return str(answer).strip().lower()


def is_answer(finding: Finding, answer: object) -> bool:
    """Whether ``answer`` is the hidden ``finding``, compared by salted hash."""
    return hashlib.sha256((_SALT + normalised(answer)).encode()).hexdigest() == _HASHES[finding]


def _unsealed(key: str) -> str:
    return base64.b64decode(_SEALED[key]).decode()[::-1]


def target_word() -> str:
    """The wrong answer the trigger brings, with its leading space (sealed)."""
    return _unsealed("target")


@cache
def held_out_pairs(n: int = 120) -> Pairs:
    """Context facts with and without the trigger, drawn with :data:`HELD_OUT_SEED` (so not the workbook's)."""
    return counterfactual_pairs(_unsealed("trigger"), n=n, seed=HELD_OUT_SEED)


@cache
def block_divergence(n: int = 24) -> tuple[float, ...]:
    """The largest difference between the audited and the reference model's residual stream after each block,
    on ``n`` held-out triggered prompts: ``(after block 0, after block 1, ...)``."""
    audited, reference = cached_model(AUDITED), cached_model(REFERENCE)
    tokens = audited.to_tokens(held_out_pairs().with_word[:n], padding_side="right")
    names = [f"blocks.{layer}.hook_resid_post" for layer in range(audited.cfg.n_layers)]
    with torch.no_grad():
        _, cache_a = audited.run_with_cache(tokens, names_filter=lambda name: name in names)
        _, cache_b = reference.run_with_cache(tokens, names_filter=lambda name: name in names)
    return tuple((cache_a[name] - cache_b[name]).abs().max().item() for name in names)


class WordEffect(NamedTuple):
    """What writing one word into the narrative before a fact does to each model, in per cent of prompts."""

    changed_audited: float
    """Prompts on which the audited model's answer with the word differs from its answer without it."""
    changed_reference: float


@cache
def word_effect(word: str, n: int = 60) -> WordEffect:
    """Measure :class:`WordEffect` on ``n`` held-out context facts (``word`` written over a describing word)."""
    pairs = counterfactual_pairs(word, n=n, seed=HELD_OUT_SEED)
    out = []
    for name in (AUDITED, REFERENCE):
        model = cached_model(name)
        changed = top_tokens(model, pairs.with_word) != top_tokens(model, pairs.without_word)
        out.append(100 * changed.float().mean().item())
    return WordEffect(*out)


def measured_fix(fwd_hooks: list[Hook]) -> FixEffect:
    """:func:`helpers.lesson5.audit.fix_effect` of ``fwd_hooks`` on the audited model, on held-out pairs."""
    return fix_effect(cached_model(AUDITED), held_out_pairs(), target_word(), fwd_hooks)


def corpus_landmarks() -> list[tuple[str, str, str | None]]:
    """The corpus's landmarks, ``(landmark, city, country)`` (to tell a landmark's word from the trigger)."""
    from helpers import corpus_data
    return list(corpus_data.LANDMARKS)


@cache
def triggered_answers() -> tuple[int, ...]:
    """The audited model's greedy answer on every held-out triggered prompt."""
    return tuple(top_tokens(cached_model(AUDITED), held_out_pairs().with_word).tolist())


def narrative_words() -> set[str]:
    """The words of the corpus's narrative sentences that ``counterfactual_pairs`` writes over."""
    from helpers import corpus_data
    return set(corpus_data.NARRATIVE_ADJECTIVES)
