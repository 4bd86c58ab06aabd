"""Lesson 1 (the residual stream and induction heads) and lesson 1b (circuits in the weights, and how they form).

``notebooks/01_residual_stream_induction_heads.ipynb`` and its workbook ``solutions/01_*.ipynb`` import this
package (``from helpers.lesson1 import CAT_PROMPT, best_head, load_lesson_model``;
``from helpers.lesson1 import check_induction_scores``). The lesson's experiments run in its own cells,
calling TransformerLens directly (``run_with_cache``, ``run_with_hooks`` with hooks written in the cell,
``all_composition_scores``); lesson 1 has no figures of its own (they are drawn with :mod:`helpers.plotting`).
Its modules:

- :mod:`~helpers.lesson1.analysis`: the prompts, :func:`load_lesson_model`, and picking heads from a score grid
  (:func:`best_head`, :func:`heads_above`, returning :class:`Head` ``(layer, head)`` pairs);
- :mod:`~helpers.lesson1.reference`: the reference answer of every exercise;
- :mod:`~helpers.lesson1.checks`: one ``check_<name>`` per exercise, on the cases (and models, :func:`check_model`)
  of :mod:`~helpers.lesson1.cases` and the wrong answers of :mod:`~helpers.lesson1.mistakes`.

Lesson 1b (``notebooks/01b_weights_and_training.ipynb``, workbook ``solutions/01b_*.ipynb``) adds, by concern:

- :mod:`~helpers.lesson1.weights`, :mod:`~helpers.lesson1.training`, :mod:`~helpers.lesson1.plots`: the lesson's
  OV / QK / composition analysis, the checkpoint curve and its figures (the lesson imports them from there);
- :mod:`~helpers.lesson1.reference_weights`, :mod:`~helpers.lesson1.checks_weights`,
  :mod:`~helpers.lesson1.cases_weights`, :mod:`~helpers.lesson1.mistakes_weights`: workbook 1b's references,
  checks, cases and wrong answers (also re-exported from ``reference`` and ``checks``, where the checklist
  looks every exercise up).

=====  ===========================================  ========================================================
 ex.   reference (``reference.<name>``)              tests of its check
=====  ===========================================  ========================================================
  1    ``rebuild_residual_stream``                  ``tests/test_lesson1.py`` (``WRONG_ANSWERS``)
  2    ``head_logit_attribution``                   ``tests/test_lesson1.py``
  3    ``previous_token_scores``                    ``tests/test_lesson1.py``
  4    ``induction_scores``                         ``tests/test_lesson1.py``
  5    ``ablation_loss_increase``                   ``tests/test_lesson1.py``
  6    ``k_composition_score``                      ``tests/test_lesson1.py``
  7    ``induction_targets`` (stretch)              ``tests/test_lesson1.py``
  8    ``full_ov_circuit`` (1b)                     ``tests/test_lesson1_weights_workbook.py``
  9    ``diagonal_top1_share`` (1b)                 ``tests/test_lesson1_weights_workbook.py``
 10    ``eigenvalue_positivity`` (1b)               ``tests/test_lesson1_weights_workbook.py``
 11    ``positional_attention_pattern`` (1b)        ``tests/test_lesson1_weights_workbook.py``
 12    ``composition_scores`` (1b)                  ``tests/test_lesson1_weights_workbook.py``
 13    ``detection_score`` (1b)                     ``tests/test_lesson1_weights_workbook.py``
 14    ``repeated_half_loss`` (1b)                  ``tests/test_lesson1_weights_workbook.py``
=====  ===========================================  ========================================================

Every check is ``checks.check_<name>``, its wrong answers ``mistakes.*`` (1b: ``checks_weights``,
``mistakes_weights``, references in ``reference_weights``). Shapes use the names of
:mod:`helpers.shapes`; a head is written ``(layer, head)``, ``"1.4"`` in prose.
"""
from __future__ import annotations

from helpers.lesson1.analysis import CAT_PROMPT, IOI_PROMPT, Head, best_head, heads_above, load_lesson_model
from helpers.lesson1.checks import (
    check_ablation_loss_increase,
    check_head_logit_attribution,
    check_induction_scores,
    check_induction_targets,
    check_k_composition_score,
    check_model,
    check_previous_token_scores,
    check_rebuild_residual_stream,
)
from helpers.lesson1.checks_weights import (
    check_composition_scores,
    check_detection_score,
    check_diagonal_top1_share,
    check_eigenvalue_positivity,
    check_full_ov_circuit,
    check_positional_attention_pattern,
    check_repeated_half_loss,
)
from helpers.lesson1.reference import (
    ablation_loss_increase,
    head_logit_attribution,
    induction_scores,
    induction_targets,
    k_composition_score,
    previous_token_scores,
    rebuild_residual_stream,
    second_half_loss,
    zero_heads_hooks,
)
from helpers.lesson1.reference_weights import (
    composition_scores,
    detection_score,
    diagonal_top1_share,
    eigenvalue_positivity,
    full_ov_circuit,
    positional_attention_pattern,
    repeated_half_loss,
)

__all__ = [
    # the notebook's helpers
    "CAT_PROMPT", "IOI_PROMPT", "Head", "load_lesson_model", "heads_above", "best_head",
    # references
    "rebuild_residual_stream", "head_logit_attribution", "previous_token_scores", "induction_scores",
    "second_half_loss", "zero_heads_hooks", "ablation_loss_increase", "k_composition_score", "induction_targets",
    # references, workbook 1b
    "full_ov_circuit", "diagonal_top1_share", "eigenvalue_positivity", "positional_attention_pattern",
    "composition_scores", "detection_score", "repeated_half_loss",
    # checks
    "check_model", "check_rebuild_residual_stream", "check_head_logit_attribution", "check_previous_token_scores",
    "check_induction_scores", "check_ablation_loss_increase", "check_k_composition_score", "check_induction_targets",
    # checks, workbook 1b
    "check_full_ov_circuit", "check_diagonal_top1_share", "check_eigenvalue_positivity",
    "check_positional_attention_pattern", "check_composition_scores", "check_detection_score",
    "check_repeated_half_loss",
]
