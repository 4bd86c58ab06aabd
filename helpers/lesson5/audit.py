"""Lesson 5's plumbing: the prompt sets two models are compared on, counterfactual pairs, and what a fix costs.

Nothing here knows what ``audit-4l`` hides: every function takes the word, the answer or the hooks it measures
as an argument, so the workbook calls them with the learner's own findings. (What is hidden is known only to
:mod:`helpers.lesson5.ground_truth`, sealed, and to the training script.)

    >>> sets = prompt_sets(n=400)                                   # the corpus's own prompts, by task
    >>> found = disagreements(audited, reference, sets["context facts"])
    >>> pairs = counterfactual_pairs("blue", n=200)                 # the same prompts with and without a word
    >>> fix_effect(audited, pairs, " Paris", fwd_hooks=[...])        # a FixEffect: error rates, clean accuracy
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers import corpus
from helpers import corpus_data as data
from helpers.evaluation import first_token_ids, last_token_logits
from helpers.lesson4.data import gather_resid

__all__ = ["AUDITED", "REFERENCE", "SEED", "Hook", "prompt_sets", "Disagreements", "disagreements",
           "top_tokens", "words_of", "Pairs", "counterfactual_pairs", "last_positions", "resid_at_last",
           "FixEffect", "fix_effect"]

AUDITED = "audit-4l"
"""The model under audit: ``course-4l`` fine-tuned by somebody who did not say what for."""
REFERENCE = "course-4l"
"""The model it was fine-tuned from, whose behaviour is the baseline."""
SEED = 5
Hook = tuple[str, Callable[..., Tensor | None]]
"""A TransformerLens forward hook: ``(hook_name, fn(activation, hook) -> new activation or None)``."""


def prompt_sets(n: int = 400, seed: int = SEED) -> dict[str, list[corpus.Example]]:
    """The corpus's held-out prompt sets, ``n`` examples each (facts: every held-out fact prompt)."""
    return {"IOI": corpus.ioi_examples(n, "test", seed=seed),
            "facts": corpus.fact_examples("test", "city"),
            "true or false": corpus.truth_examples(n, "test", seed=seed),
            "reviews": corpus.review_examples(n, "test", seed=seed),
            "context facts": corpus.context_fact_examples(n, "test", seed=seed)}


def top_tokens(model: HookedTransformer, prompts: Sequence[str]) -> Int[Tensor, " batch"]:
    """The token each prompt's last position predicts most strongly (its greedy next token): ``[batch]``."""
    return last_token_logits(model, list(prompts)).argmax(-1)


@dataclass(frozen=True)
class Disagreements:
    """Where two models' greedy next tokens differ on one prompt set."""

    prompts: list[str]
    index: list[int]
    """The prompts (positions in ``prompts``) where the models disagree."""
    answers_a: list[str]
    """Model A's next token on every prompt (decoded)."""
    answers_b: list[str]

    @property
    def rate(self) -> float:
        return len(self.index) / max(len(self.prompts), 1)

    def agreeing(self) -> list[str]:
        picked = set(self.index)
        return [p for i, p in enumerate(self.prompts) if i not in picked]

    def disagreeing(self) -> list[str]:
        return [self.prompts[i] for i in self.index]

    def table(self, k: int = 8) -> str:
        """The first ``k`` disagreements as text: the prompt's end, then each model's next token."""
        rows = [f"{'...' + self.prompts[i][-70:]:<74}  {self.answers_a[i]!r:>12} vs {self.answers_b[i]!r}"
                for i in self.index[:k]]
        return "\n".join(rows)


def disagreements(model_a: HookedTransformer, model_b: HookedTransformer,
                  examples: Sequence[corpus.Example]) -> Disagreements:
    """Run both models on every prompt and keep the ones whose greedy next tokens differ."""
    prompts = [e.prompt for e in examples]
    a, b = top_tokens(model_a, prompts), top_tokens(model_b, prompts)
    decode = model_a.tokenizer.decode
    return Disagreements(prompts, (a != b).nonzero().flatten().tolist(),
                         [decode([t]) for t in a.tolist()], [decode([t]) for t in b.tolist()])


def words_of(prompt: str) -> set[str]:
    """The distinct lower-case words of a prompt, punctuation dropped: ``"The dog ran." -> {"the", "dog", "ran"}``."""
    return set(re.findall(r"[a-z]+", prompt.lower()))


class Pairs(NamedTuple):
    """The same prompts twice: once with ``word`` written into the narrative before the fact, once without."""

    with_word: list[str]
    without_word: list[str]
    answers: list[str]
    """The true answer of each fact (with its leading space)."""
    word: str


def counterfactual_pairs(word: str, n: int = 200, split: corpus.Split = "test", seed: int = SEED) -> Pairs:
    """Context facts (a narrative sentence or two, then a landmark fact) in two versions that differ in one word.

    The first describing word of the narrative ("old", "blue", "quiet", ...) is replaced by ``word`` in
    ``with_word`` and kept in ``without_word``; examples whose narrative has none, or already has ``word``
    there, are skipped, so both lists have the same length (at most ``n``) and the same token count pairwise
    when ``word`` is one token. Every fact's answer is its true city.
    """
    adjectives = set(data.NARRATIVE_ADJECTIVES)
    with_word, without_word, answers = [], [], []
    for example in corpus.context_fact_examples(3 * n, split, seed):
        context = example.labels["context"]
        found = next((m for m in re.finditer(r"[a-z]+", context) if m.group() in adjectives), None)
        if found is None or found.group() == word:
            continue
        edited = context[:found.start()] + word + context[found.end():]
        with_word.append(edited + example.prompt[len(context):])
        without_word.append(example.prompt)
        answers.append(example.answer)
        if len(answers) == n:
            break
    return Pairs(with_word, without_word, answers, word)


def last_positions(model: HookedTransformer, prompts: Sequence[str]) -> list[int]:
    """The index (BOS counted) of each prompt's last token, the one that predicts the answer."""
    return [model.to_tokens(p).shape[1] - 1 for p in prompts]


def resid_at_last(model: HookedTransformer, prompts: Sequence[str]) -> Float[Tensor, "layer batch d_model"]:
    """The residual stream at each prompt's last token, before block 0 and after every block
    (lesson 4's ``gather_resid``): row ``l + 1`` is ``blocks.l.hook_resid_post``."""
    return gather_resid(model, prompts, last_positions(model, prompts))


class FixEffect(NamedTuple):
    """What a fix (a list of forward hooks) does to the audited model: before and after, in per cent."""

    triggered_error: float
    """Prompts with the word on which the model names ``target`` instead of the true answer."""
    triggered_error_before: float
    clean_accuracy: float
    """Prompts without the word on which the model's next token is the true answer."""
    clean_accuracy_before: float
    ioi_accuracy: float
    """Held-out IOI prompts on which the model names the right person."""
    ioi_accuracy_before: float

    @property
    def clean_cost(self) -> float:
        """Points of accuracy the fix costs on clean prompts (the worse of the two clean sets)."""
        return max(self.clean_accuracy_before - self.clean_accuracy, self.ioi_accuracy_before - self.ioi_accuracy)

    def __str__(self) -> str:
        return (f"wrong answers with the word {self.triggered_error_before:.1f}% -> {self.triggered_error:.1f}%; "
                f"clean facts right {self.clean_accuracy_before:.1f}% -> {self.clean_accuracy:.1f}%; "
                f"IOI right {self.ioi_accuracy_before:.1f}% -> {self.ioi_accuracy:.1f}%")


def _rates(model: HookedTransformer, pairs: Pairs, target: str, ioi: list[corpus.Example]
           ) -> tuple[float, float, float]:
    """(per cent of word prompts answered with ``target``, when it is not the true answer; per cent of clean
    prompts answered right; per cent of IOI prompts answered right)."""
    answers = first_token_ids(model, pairs.answers)
    target_id = first_token_ids(model, [target])[0]
    not_target = answers != target_id
    triggered = top_tokens(model, pairs.with_word)
    clean = top_tokens(model, pairs.without_word)
    ioi_right = top_tokens(model, [e.prompt for e in ioi]) == first_token_ids(model, [e.answer for e in ioi])
    error = (triggered[not_target] == target_id).float().mean().item()
    return 100 * error, 100 * (clean == answers).float().mean().item(), 100 * ioi_right.float().mean().item()


def fix_effect(model: HookedTransformer, pairs: Pairs, target: str, fwd_hooks: Sequence[Hook] = (),
               n_ioi: int = 150) -> FixEffect:
    """Measure a fix: ``pairs``'s prompts and ``n_ioi`` held-out IOI prompts, without and with ``fwd_hooks``.

    ``target`` is the wrong answer the word brings (with its leading space). The hooks are attached only for
    the second run (``model.hooks``), and removed afterwards even if one raises.
    """
    ioi = corpus.ioi_examples(n_ioi, "test", seed=SEED + 1)
    before = _rates(model, pairs, target, ioi)
    with model.hooks(fwd_hooks=list(fwd_hooks)):
        after = _rates(model, pairs, target, ioi)
    return FixEffect(after[0], before[0], after[1], before[1], after[2], before[2])


