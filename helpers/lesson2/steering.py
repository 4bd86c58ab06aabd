"""Section 8's experiment: steer the model by clamping one SAE latent, and count the completions that name a place.

The lesson's notebook writes the hook itself (``clamp_hook(resid, hook, value)``, in the cell that runs the
sweep) and hands it to :func:`steering_sweep`, which attaches it at the SAE's hook for each value and
generates greedily with :func:`helpers.sae.generate_greedy`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers.lesson2.ground_truth import WORD_CLASSES
from helpers.sae import generate_greedy

ClampHook = Callable[..., Float[Tensor, "batch pos d_model"]]
"""``hook_fn(resid, hook, value) -> resid``: a TransformerLens hook with the clamp's value as a third argument."""

__all__ = ["STEERING_PROMPTS", "PLACE_WORDS", "ClampHook", "SteeringOutcome", "mentions", "place_share",
           "steering_sweep"]

# Prompts with nothing to do with landmarks or cities: openings of stories, IOI sentences and reviews.
STEERING_PROMPTS = [
    "Later that day, Mary went to the", "I went to see the", "Yesterday John and Anna met at the",
    "The old dog sat on the", "We tried the new", "It was a warm day, and Tom", "Here is my review of the",
    "After lunch, Kate and Sam went to the", "The little bird ran to the", "She found a blue",
    "In the evening, the cat slept by the", "Max and Lily talked about the", "Then, Lucy and Jack went to the",
    "There was a small fox under the", "I finally tried the new", "He painted the old",
    "When Emma and Ben got home from the", "The movie was", "Peter said that the book was on the",
    "We all agreed that the", "The young horse ran to the", "David walked to the park in the",
    "I thought the food was", "They kept a red",
]
# Words that name a place of the fact corpus: its cities and countries, and the kinds of landmark
# (capitalised, as in landmark names; stories and reviews never capitalise them mid-sentence).
PLACE_WORDS = WORD_CLASSES["a city"] | WORD_CLASSES["a country"] | {
    "Tower", "Bridge", "Palace", "Cathedral", "Museum", "Castle", "Mosque", "Fountain", "Gate", "Square", "Gallery"}


class SteeringOutcome(NamedTuple):
    """The completions at one setting of the clamp."""

    value: float | None
    """The value the latent was clamped to (None: no hook, the model as it is)."""
    share: float
    """The share of completions that mention one of the words (a place)."""
    completions: list[str]


def mentions(text: str, words: set[str]) -> bool:
    """Whether ``text`` contains one of ``words`` as a whole word (punctuation ignored)."""
    return any(w.strip(".,!?;:'\"") in words for w in text.split())


def place_share(completions: Sequence[str], words: set[str] = PLACE_WORDS) -> float:
    """The share of ``completions`` that mention one of ``words``."""
    return sum(mentions(c, words) for c in completions) / len(completions)


def steering_sweep(model: HookedTransformer, hook_name: str, hook_fn: ClampHook, values: Sequence[float | None],
                   prompts: Sequence[str] = STEERING_PROMPTS, words: set[str] = PLACE_WORDS,
                   n_new: int = 10) -> list[SteeringOutcome]:
    """Greedy completions (``n_new`` tokens) of ``prompts`` with ``hook_fn(resid, hook, value=value)`` attached at
    ``hook_name``, for each of ``values`` (``None``: no hook), one :class:`SteeringOutcome` each."""
    out = []
    for value in values:
        hooks = [] if value is None else [(hook_name, partial(hook_fn, value=value))]
        completions = generate_greedy(model, list(prompts), n_new, hooks)
        out.append(SteeringOutcome(value, place_share(completions, words), completions))
    return out
