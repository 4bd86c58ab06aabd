"""Lesson 3c, section 4: let the model write on after a feature swap, and read which city the continuation follows.

The notebook calls circuit-tracer's ``ReplacementModel.feature_intervention_generate`` itself; this module holds
the bookkeeping around it:

- :func:`place_side` sorts a generated word into the source city's side (the city or its country), the
  target's side, another place, or no place at all;
- :func:`swap_continuation` runs one swap (lesson 3b's :func:`~helpers.lesson3.reference.swap_interventions`,
  written at the prompt's last position only, or at every position from there on) and reads the result
  into a :class:`Continuation`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, cast

import torch
from circuit_tracer.replacement_model.replacement_model_transformerlens import TransformerLensReplacementModel

from helpers import corpus_data
from helpers.lesson3.graphs import FeatureLabels, landmark_prompt
from helpers.lesson3.reference import swap_interventions

__all__ = ["Side", "Continuation", "place_side", "swap_continuation", "COUNTRY_OF"]

Side = Literal["source", "target", "other place"]

COUNTRY_OF: dict[str, str] = {city: country for _, city, country in corpus_data.LANDMARKS if country}
_PLACES = set(COUNTRY_OF) | set(COUNTRY_OF.values()) | {city for _, city, _ in corpus_data.LANDMARKS}


def place_side(word: str, city: str, target: str) -> Side | None:
    """Which side a generated word is on: ``"source"`` (``city`` or its country), ``"target"`` (``target`` or
    its country), ``"other place"`` (another city or country of the corpus), or ``None`` (not a place)."""
    word = word.strip(" .,")
    if word in (city, COUNTRY_OF.get(city)):
        return "source"
    if word in (target, COUNTRY_OF.get(target)):
        return "target"
    return "other place" if word in _PLACES else None


class Continuation(NamedTuple):
    """What the model wrote after a swap from ``city`` to ``target`` on ``landmark``'s prompt.

    ``words``: the generated tokens as text (the first is the answer); ``sides``: :func:`place_side` of each
    (``None`` where it is not a place).
    """

    landmark: str
    city: str
    target: str
    words: list[str]
    sides: list[Side | None]

    @property
    def answered_target(self) -> bool:
        """The first generated word is the target city."""
        return self.sides[0] == "target" and self.words[0].strip() == self.target

    def later(self, side: Side) -> bool:
        """Some word after the answer is on ``side``."""
        return side in self.sides[1:]

    @property
    def reverts_at(self) -> int | None:
        """Index of the first word after the answer on the source's side (``None`` if it never comes back)."""
        return next((i for i, s in enumerate(self.sides) if i > 0 and s == "source"), None)


def swap_continuation(replacement: TransformerLensReplacementModel, labels: FeatureLabels, landmark: str, city: str,
                      target: str, n_words: int = 12, every_position: bool = False,
                      strength: float = 20.0) -> Continuation:
    """Swap ``city`` for ``target`` on ``landmark``'s fact prompt and generate ``n_words`` tokens greedily.

    The interventions are lesson 3b's (:func:`~helpers.lesson3.reference.swap_interventions`): the source city's
    features off and the target's on at ``strength`` times their usual activation, at the prompt's last
    position; with ``every_position``, at every position from there on, generated tokens included
    (circuit-tracer's open-ended ``slice(last, None)``).
    """
    prompt = landmark_prompt(landmark)
    tokens = replacement.to_tokens(prompt)
    _, activations = replacement.get_activations(tokens)
    interventions: list = swap_interventions(labels, activations, city, target, strength=strength)
    if every_position:
        last = tokens.shape[1] - 1
        interventions = [(layer, slice(last, None), feature, value) for layer, _, feature, value in interventions]
    generate = cast(Any, replacement).feature_intervention_generate     # circuit-tracer's decorator hides its signature
    _, logits, _ = generate(
        prompt, interventions, max_new_tokens=n_words, do_sample=False, verbose=False, return_activations=False)
    generated = logits.reshape(-1, logits.shape[-1]).argmax(-1)[:n_words]   # the greedy token of each step
    words = [replacement.tokenizer.decode([t]) for t in generated.tolist()]
    return Continuation(landmark, city, target, words, [place_side(w, city, target) for w in words])


def continuations(replacement: TransformerLensReplacementModel, labels: FeatureLabels,
                  pairs: Sequence[tuple[str, str, str]], n_words: int = 12, every_position: bool = False
                  ) -> list[Continuation]:
    """:func:`swap_continuation` for every ``(landmark, city, target)`` of ``pairs``."""
    return [swap_continuation(replacement, labels, lm, city, target, n_words, every_position)
            for lm, city, target in pairs]


__all__ += ["continuations"]


@torch.no_grad()
def own_continuation(replacement: TransformerLensReplacementModel, landmark: str, city: str, target: str,
                     n_words: int = 12) -> Continuation:
    """What the model writes on ``landmark``'s prompt with no swap at all, sorted by the same sides."""
    tokens = replacement.to_tokens(landmark_prompt(landmark))
    generated = replacement.generate(tokens, max_new_tokens=n_words, do_sample=False, verbose=False)
    words = [replacement.tokenizer.decode([t]) for t in generated[0, tokens.shape[1]:].tolist()]
    return Continuation(landmark, city, target, words, [place_side(w, city, target) for w in words])


__all__ += ["own_continuation"]
