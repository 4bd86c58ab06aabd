"""Lesson 4 (probing: is the information there, and does the model use it?), and lesson 4b (steering with a
direction, and finding one without labels).

``notebooks/04_probing.ipynb``, ``notebooks/04b_steering_and_unsupervised_probes.ipynb`` and their workbooks
``solutions/04*.ipynb`` import this package (``from helpers import lesson4``;
``from helpers.lesson4 import check_probe_accuracy``). Its modules:

- :mod:`~helpers.lesson4.data`: the labelled prompt sets of three attributes (:func:`task_data`), the token a
  probe reads, the answer words, and :func:`gather_resid` (``run_with_cache`` with a ``names_filter``);
- :mod:`~helpers.lesson4.reference`: the reference answer of every exercise, with :func:`fit_probe` and
  :func:`control_labels`;
- :mod:`~helpers.lesson4.probes`: sections 3, 4 and 6, probes layer by layer, their controls (random model,
  bag of embeddings, MLP probe) and the model's own verdict on a statement;
- :mod:`~helpers.lesson4.interventions`: section 5's linear algebra (INLP), counterfactual reviews and named
  results; the notebook writes the hooks and the ``run_with_hooks`` calls of its interventions itself;
- :mod:`~helpers.lesson4.plots`: the figures;
- :mod:`~helpers.lesson4.checks`: one ``check_<name>`` per exercise, on the cases of :mod:`~helpers.lesson4.cases`
  and the wrong answers of :mod:`~helpers.lesson4.mistakes`;
- for workbook 4b, :mod:`~helpers.lesson4.reference_steering`, :mod:`~helpers.lesson4.checks_steering`,
  :mod:`~helpers.lesson4.cases_steering` and :mod:`~helpers.lesson4.mistakes_steering`, the same four roles
  (``reference`` and ``checks`` import them, so every exercise is one hop from ``reference.<name>``); lesson 4b's
  own experiments are in :mod:`~helpers.lesson4.steering`, :mod:`~helpers.lesson4.unsupervised` and
  :mod:`~helpers.lesson4.plots_steering`, which its notebook imports from those modules.

=====  ====================================  ===============================================================
 ex.   reference (``reference.<name>``)      tests of its check (``tests/test_lesson4.py``)
=====  ====================================  ===============================================================
  1    ``last_token_resid``                  ``WRONG_ANSWERS``, ``test_wrong_answer_is_rejected_with_its_message``
  2    ``probe_accuracy``                    the same
  3    ``selectivity``                       the same
  4a   ``project_out``                       the same, and ``test_project_out_is_an_idempotent_projection``
  4b   ``logits_without_direction``          the same, and ``test_checks_leave_the_model_without_hooks``
  5    ``false_statement_auroc``             the same
  6    ``mean_difference_direction``         ``tests/test_lesson4_steering_workbook.py`` (``WRONG_ANSWERS``)
  7    ``mean_difference_probe_predict``     the same
  8    ``steering_hook``                     the same, and ``test_steering_hook_edits_only_the_position_asked``
  9    ``effect_per_unit_norm``              the same
  10a  ``contrast_pair_differences``         the same
  10b  ``first_principal_direction``         the same
  11   ``sign_agnostic_accuracy``            the same
  12   ``ccs_loss``                          the same
=====  ====================================  ===============================================================

Every check is ``checks.check_<name>``; the reference and the solved workbook pass it and the generated stub
fails it (``test_reference_and_solved_workbook_pass``, ``test_generated_stub_is_rejected``). Shapes use the names
of :mod:`helpers.shapes`; ``[layer, batch, d_model]`` stacks the embeddings and every block's output, so its
first dimension is ``n_layers + 1``.
"""
from __future__ import annotations

from helpers.lesson4.cases import CHECK_MODEL
from helpers.lesson4.checks import (
    check_false_statement_auroc,
    check_last_token_resid,
    check_logits_without_direction,
    check_probe_accuracy,
    check_project_out,
    check_selectivity,
)
from helpers.lesson4.checks_steering import (
    check_ccs_loss,
    check_contrast_pair_differences,
    check_effect_per_unit_norm,
    check_first_principal_direction,
    check_mean_difference_direction,
    check_mean_difference_probe_predict,
    check_sign_agnostic_accuracy,
    check_steering_hook,
)
from helpers.lesson4.data import (
    SEED,
    TASKS,
    Task,
    TaskData,
    answer_ids,
    gather_resid,
    last_logits,
    padded_tokens,
    resid_hook_names,
    task_data,
    token_id,
)
from helpers.lesson4.interventions import (
    InterventionEffect,
    Pairs,
    Removal,
    SteeringCurve,
    amnesic_basis,
    flipped_review,
    intervention_effect,
    orthonormal,
    project_out_subspace,
    relation_donors,
)
from helpers.lesson4.plots import (
    LAYER_LABELS,
    plot_auroc_by_layer,
    plot_controls,
    plot_interventions,
    plot_layer_accuracies,
    plot_probe_and_patching,
)
from helpers.lesson4.probes import (
    embedding_baseline,
    layer_accuracies,
    mlp_probe_accuracy,
    probe_direction,
    random_model,
    self_report_scores,
    split_by_subject,
)
from helpers.lesson4.reference import (
    Selectivity,
    control_labels,
    false_statement_auroc,
    fit_probe,
    last_token_resid,
    logits_without_direction,
    probe_accuracy,
    project_out,
    selectivity,
)
from helpers.lesson4.reference_steering import (
    ccs_loss,
    contrast_pair_differences,
    effect_per_unit_norm,
    first_principal_direction,
    mean_difference_direction,
    mean_difference_probe_predict,
    sign_agnostic_accuracy,
    steering_hook,
    steering_hook_name,
)

__all__ = [
    # data and activations
    "SEED", "Task", "TASKS", "TaskData", "task_data", "token_id", "answer_ids", "resid_hook_names", "padded_tokens",
    "gather_resid", "last_logits",
    # references
    "fit_probe", "control_labels", "Selectivity", "last_token_resid", "probe_accuracy", "selectivity", "project_out",
    "logits_without_direction", "false_statement_auroc",
    # probes, controls, the truth detector
    "probe_direction", "layer_accuracies", "mlp_probe_accuracy", "random_model", "embedding_baseline",
    "split_by_subject", "self_report_scores",
    # present against used
    "orthonormal", "project_out_subspace", "amnesic_basis", "flipped_review", "relation_donors", "Pairs",
    "InterventionEffect",
    "intervention_effect", "Removal", "SteeringCurve",
    # plots
    "LAYER_LABELS", "plot_layer_accuracies", "plot_controls", "plot_interventions", "plot_probe_and_patching",
    "plot_auroc_by_layer",
    # checks
    "CHECK_MODEL", "check_last_token_resid", "check_probe_accuracy", "check_selectivity", "check_project_out",
    "check_logits_without_direction", "check_false_statement_auroc",
    # workbook 4b: references and checks
    "mean_difference_direction", "mean_difference_probe_predict", "steering_hook", "steering_hook_name",
    "effect_per_unit_norm", "contrast_pair_differences", "first_principal_direction", "sign_agnostic_accuracy",
    "ccs_loss", "check_mean_difference_direction", "check_mean_difference_probe_predict", "check_steering_hook",
    "check_effect_per_unit_norm", "check_contrast_pair_differences", "check_first_principal_direction",
    "check_sign_agnostic_accuracy", "check_ccs_loss",
]
