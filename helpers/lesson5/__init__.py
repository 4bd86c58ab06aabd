"""Lesson 5, the capstone: audit a model that hides something, with the four lessons' tools.

``notebooks/05_auditing_a_model.ipynb`` and its workbook ``solutions/05_auditing_a_model.ipynb`` import this
package (``from helpers import lesson5``). Its modules:

- :mod:`~helpers.lesson5.audit`: the prompt sets two models are compared on (:func:`prompt_sets`,
  :func:`disagreements`), counterfactual pairs (:func:`counterfactual_pairs`), the residual stream at the last
  token (:func:`resid_at_last`) and what a fix does (:func:`fix_effect`, a :class:`FixEffect`). It takes every
  finding as an argument and knows none of them;
- :mod:`~helpers.lesson5.reference`: the reference answers of the two coding exercises;
- :mod:`~helpers.lesson5.checks`: ``check_word_enrichment`` and ``check_first_divergent_block`` (on the cases of
  :mod:`~helpers.lesson5.cases`), and the four findings' checks, ``check_trigger``, ``check_target``,
  ``check_first_block`` and ``check_fix``;
- :mod:`~helpers.lesson5.ground_truth`: SPOILER, the answers as salted hashes (and sealed, for measuring a fix
  on held-out prompts). The checks' messages are measured on the models, never read from it.

=====  ==============================  ===================================================================
 ex.   what                            tests of its check (``tests/test_lesson5.py``)
=====  ==============================  ===================================================================
  1    ``word_enrichment``             ``WRONG_ANSWERS``, ``test_wrong_answer_is_rejected_with_its_message``
  2    ``first_divergent_block``       the same
  3    the trigger, the wrong answer   ``test_wrong_findings_are_rejected_with_their_messages``
  4    the first block that reads it   the same
  5    a fix                           the same, and ``test_solved_workbook_finds_and_fixes_the_behaviour``
=====  ==============================  ===================================================================
"""
from __future__ import annotations

from helpers.lesson5.audit import (
    AUDITED,
    REFERENCE,
    SEED,
    Disagreements,
    FixEffect,
    Hook,
    Pairs,
    counterfactual_pairs,
    disagreements,
    fix_effect,
    last_positions,
    prompt_sets,
    resid_at_last,
    top_tokens,
    words_of,
)
from helpers.lesson5.checks import (
    check_first_block,
    check_first_divergent_block,
    check_fix,
    check_target,
    check_trigger,
    check_word_enrichment,
)
from helpers.lesson5.reference import first_divergent_block, word_enrichment

__all__ = [
    "AUDITED", "REFERENCE", "SEED", "Hook", "prompt_sets", "Disagreements", "disagreements", "top_tokens",
    "words_of", "Pairs", "counterfactual_pairs", "last_positions", "resid_at_last", "FixEffect", "fix_effect",
    "word_enrichment", "first_divergent_block",
    "check_word_enrichment", "check_first_divergent_block", "check_trigger", "check_target", "check_first_block",
    "check_fix",
]
