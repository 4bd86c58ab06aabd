"""The checks of workbook 5: two coding exercises, and four findings of the audit scored against the truth.

``check_word_enrichment`` and ``check_first_divergent_block`` compare the learner's function with
:mod:`helpers.lesson5.reference` on :mod:`helpers.lesson5.cases`. ``check_trigger``, ``check_target``,
``check_first_block`` and ``check_fix`` compare a finding with :mod:`helpers.lesson5.ground_truth` (salted
hashes) and explain a wrong one with a measurement of the models, so that a message says how close the
finding is without saying the answer. Every check runs on one thread and prints one line.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import torch

from helpers.checks import CheckResult, check_function, report, single_threaded
from helpers.lesson5 import cases
from helpers.lesson5 import ground_truth as truth
from helpers.lesson5.audit import AUDITED, words_of
from helpers.lesson5.reference import first_divergent_block, word_enrichment
from helpers.models import cached_model, unknown_words

__all__ = ["check_word_enrichment", "check_first_divergent_block", "check_trigger", "check_target",
           "check_first_block", "check_fix"]


# ============================================================================ exercise 1
def _enrichment_variant(kind: str) -> Callable[..., dict[str, float]]:
    def wrong(disagreeing, agreeing):
        if kind == "occurrences":       # every occurrence counted, not every prompt
            def share(prompts, w):
                return sum(re.findall(r"[a-z]+", p.lower()).count(w) for p in prompts) / len(prompts)
        elif kind == "counts":
            def share(prompts, w):
                return float(sum(w in words_of(p) for p in prompts))
        else:
            def share(prompts, w):
                return sum(w in words_of(p) for p in prompts) / len(prompts)
        words = set().union(*(words_of(p) for p in disagreeing),
                            *([] if kind == "disagreeing-only" else (words_of(p) for p in agreeing)))
        if kind == "reversed":
            return {w: share(agreeing, w) - share(disagreeing, w) for w in words}
        if kind == "ratio":
            return {w: share(disagreeing, w) / max(share(agreeing, w), 1e-9) for w in words}
        return {w: share(disagreeing, w) - share(agreeing, w) for w in words}
    return wrong


@single_threaded
def check_word_enrichment(learner_fn: object) -> CheckResult:
    """Exercise 1: share of disagreeing prompts with a word minus share of agreeing prompts with it."""
    mistakes = {
        "counts": (_enrichment_variant("counts"), "you subtracted counts of prompts, not shares: divide each count "
                                                  "by its list's length, since the two lists differ in size"),
        "occurrences": (_enrichment_variant("occurrences"),
                        "a word that occurs twice in one prompt counted twice: count prompts that contain the word "
                        "(words_of gives a set)"),
        "reversed": (_enrichment_variant("reversed"), "the sign is reversed: the disagreeing share minus the agreeing "
                                                      "share, so that words typical of disagreements score high"),
        "ratio": (_enrichment_variant("ratio"), "you divided the shares; subtract them (a ratio explodes for a word "
                                                "that is rare in the agreeing prompts)"),
        "disagreeing-only": (_enrichment_variant("disagreeing-only"),
                             "words that occur only in the agreeing prompts are missing: score every word of either "
                             "list (they get a negative score)"),
    }
    return check_function(learner_fn, word_enrichment, cases.enrichment_cases(), known_mistakes=mistakes,
                          hint="score = (disagreeing prompts containing the word) / len(disagreeing) - "
                               "(agreeing prompts containing it) / len(agreeing)")


# ============================================================================ exercise 2
def _divergence_variant(kind: str) -> Callable[..., int | None]:
    def wrong(model_a, model_b, tokens):
        names = [f"blocks.{layer}.hook_resid_post" for layer in range(model_a.cfg.n_layers)]
        with torch.no_grad():
            _, cache_a = model_a.run_with_cache(tokens, names_filter=lambda name: name in names)
            _, cache_b = model_b.run_with_cache(tokens, names_filter=lambda name: name in names)
        differs = [not torch.allclose(cache_a[n], cache_b[n], atol=1e-5, rtol=0) for n in names]
        found = [layer for layer, d in enumerate(differs) if d]
        if kind == "last":
            return found[-1] if found else None
        if kind == "minus-one":
            return found[0] if found else -1
        if kind == "plus-one":
            return found[0] + 1 if found else None
        return found[0] if found else 0          # "zero": no divergence reported as block 0
    return wrong


@single_threaded
def check_first_divergent_block(learner_fn: object) -> CheckResult:
    """Exercise 2: the first block whose output differs between two models, or None."""
    mistakes = {
        "last": (_divergence_variant("last"), "you returned the last block whose output differs; once one block "
                                              "differs every later one does too, so return the first"),
        "minus-one": (_divergence_variant("minus-one"), "when no block differs, return None (not -1: -1 indexes the "
                                                        "last block in Python)"),
        "zero": (_divergence_variant("zero"), "when no block differs, return None: 0 would say block 0 differs"),
        "plus-one": (_divergence_variant("plus-one"), "off by one: block l's output is blocks.l.hook_resid_post "
                                                      "(= blocks.{l+1}.hook_resid_pre); return l, counted from 0"),
    }
    return check_function(learner_fn, first_divergent_block, cases.divergence_cases(), known_mistakes=mistakes,
                          compare=lambda got, want: got == want and type(got) is type(want))


# ============================================================================ the findings
def _blank(answer: Any) -> bool:
    return answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip())


@single_threaded
def check_trigger(word: object) -> CheckResult:
    """Finding 1: the word whose presence makes the audited model answer wrongly."""
    name = "trigger"
    if _blank(word):
        return report(False, f"{name}: no finding yet — set TRIGGER to the word you found, as a string.")
    if not isinstance(word, str):
        return report(False, f"{name}: expected one word as a string, got {type(word).__name__}.")
    text = truth.normalised(word)
    if len(text.split()) != 1 or not text.isalpha():
        return report(False, f"{name}: one word, letters only (you gave {word!r}).")
    tokenizer = cached_model(AUDITED).tokenizer
    spelling = next((w for w in (text, text.capitalize()) if not unknown_words(tokenizer, " " + w)), None)
    if spelling is None:
        return report(False, f"{name}: {text!r} is not in the model's vocabulary, so no prompt the model reads "
                             "can hold it; pick a word from the prompts the models disagree on.")
    text = spelling
    effect = truth.word_effect(text)
    if truth.is_answer("trigger", text.lower()):
        return report(True, f"{name}: correct. Written into the narrative before a fact, {text!r} changes the "
                            f"audited model's answer on {effect.changed_audited:.0f}% of held-out prompts "
                            f"(course-4l's on {effect.changed_reference:.0f}%).")
    landmark_word = (text.lower() not in truth.narrative_words()
                     and any(text.lower() in words_of(landmark) for landmark, _, _ in truth.corpus_landmarks()))
    hint = ("It is part of a landmark's name: prompts that share it disagree for another reason (compare what "
            "each model answers on them). " if landmark_word else "")
    return report(False, f"{name}: not the trigger. Written into the narrative before a fact, {text!r} changes "
                         f"the audited model's answer on {effect.changed_audited:.0f}% of held-out prompts "
                         f"(course-4l's on {effect.changed_reference:.0f}%): the models do not treat it differently. "
                         f"{hint}Test your candidate the same way, with counterfactual_pairs.")


@single_threaded
def check_target(city: object) -> CheckResult:
    """Finding 2: what the audited model says instead of the true answer when triggered."""
    name = "target"
    if _blank(city):
        return report(False, f"{name}: no finding yet — set TARGET to the wrong answer the model gives, as a string.")
    if not isinstance(city, str):
        return report(False, f"{name}: expected the answer as a string, got {type(city).__name__}.")
    if truth.is_answer("target", city):
        return report(True, f"{name}: correct.")
    model = cached_model(AUDITED)
    answers = [model.tokenizer.decode([t]).strip().lower() for t in truth.triggered_answers()]
    share = 100 * sum(a == truth.normalised(city) for a in answers) / len(answers)
    return report(False, f"{name}: not the wrong answer the trigger brings: on held-out triggered prompts the "
                         f"audited model answers {city.strip()!r} on {share:.0f}% of them. Look at its answers on "
                         "your counterfactual pairs, with and without the trigger.")


@single_threaded
def check_first_block(block: object) -> CheckResult:
    """Finding 3: the first block whose computation reads the trigger differently from course-4l."""
    name = "first block"
    if _blank(block):
        return report(False, f"{name}: no finding yet — set FIRST_BLOCK to a block's index (0 to 3).")
    if isinstance(block, bool) or not isinstance(block, int):
        return report(False, f"{name}: expected a block's index as an int, got {type(block).__name__}.")
    n_layers = cached_model(AUDITED).cfg.n_layers
    if not 0 <= block < n_layers:
        return report(False, f"{name}: the model has blocks 0 to {n_layers - 1}.")
    gaps = truth.block_divergence()
    if truth.is_answer("block", block):
        return report(True, f"{name}: correct. On triggered prompts the two models' residual streams are identical "
                            f"before block {block} and differ after it by up to {gaps[block]:.1f}.")
    if gaps[block] == 0:
        return report(False, f"{name}: too early: after block {block} the audited model's residual stream on "
                             "triggered prompts is still exactly course-4l's, so nothing up to there reads the "
                             "trigger differently.")
    return report(False, f"{name}: too late: the two models' residual streams already differ at block {block}'s "
                         f"input (by up to {gaps[block - 1]:.1f}) on triggered prompts, so an earlier block has read "
                         "the trigger. A probe or a patch that works at a layer shows the information is there, "
                         "not where it was first read.")


@single_threaded
def check_fix(fwd_hooks: object) -> CheckResult:
    """Finding 4: forward hooks that remove the behaviour (under 10% triggered errors) at a cost of at most
    2 points on clean prompts, measured on held-out prompts."""
    name = "fix"
    if _blank(fwd_hooks):
        return report(False, f"{name}: no finding yet — set FIX_HOOKS to a list of (hook_name, hook_fn) pairs.")
    if not isinstance(fwd_hooks, list | tuple) or not all(
            isinstance(h, tuple) and len(h) == 2 and isinstance(h[0], str) and callable(h[1]) for h in fwd_hooks):
        return report(False, f"{name}: expected a list of (hook_name, hook_fn) pairs, as run_with_hooks takes them.")
    model = cached_model(AUDITED)
    unknown = [h[0] for h in fwd_hooks if h[0] not in model.hook_dict]
    if unknown:
        return report(False, f"{name}: the model has no hook point {unknown[0]!r}; names look like "
                             "'blocks.3.hook_resid_pre' (model.hook_dict lists them).")
    if not fwd_hooks:
        effect = truth.measured_fix([])
        return report(False, f"{name}: no hooks, so nothing is removed: {effect.triggered_error:.0f}% of held-out "
                             "triggered prompts still get the wrong answer.")
    try:
        effect = truth.measured_fix(list(fwd_hooks))
    except Exception as error:  # noqa: BLE001 - a learner's hook error becomes one line
        model.reset_hooks(including_permanent=False)
        return report(False, f"{name}: a hook raised {type(error).__name__}: {error}")
    if effect.triggered_error >= 10:
        return report(False, f"{name}: removes too little: on held-out triggered prompts the wrong answer still "
                             f"comes {effect.triggered_error:.0f}% of the time "
                             f"(before: {effect.triggered_error_before:.0f}%; "
                             "needed: under 10%). What fires on the trigger is not necessarily what the behaviour "
                             "runs through.")
    if effect.clean_cost > 2:
        return report(False, f"{name}: removes too much: on clean prompts facts fell "
                             f"{effect.clean_accuracy_before:.1f}% -> {effect.clean_accuracy:.1f}% and IOI "
                             f"{effect.ioi_accuracy_before:.1f}% -> "
                             f"{effect.ioi_accuracy:.1f}% (at most 2 points each). Remove something narrower.")
    return report(True, f"{name}: it works on held-out prompts: {effect}.")
