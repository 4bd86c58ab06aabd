"""Lesson 2 (superposition and sparse autoencoders; part A: toy models and SAEs on synthetic data, part B: the
bundled SAE on the course model, its dashboards, ground-truth labels and steering) and lesson 2b (SAEs in
practice: ``HookedSAETransformer``, the feature logit lens, TopK and JumpReLU SAEs, dead latents, correlated
features).

``notebooks/02_superposition_sparse_autoencoders.ipynb``, ``notebooks/02b_saes_in_practice.ipynb`` and their
workbooks ``solutions/02*_*.ipynb`` import this package (``from helpers import lesson2``;
``from helpers.lesson2 import check_sae_forward``). Its modules:

- :mod:`~helpers.lesson2.reference`: the reference answer of every exercise (and :func:`feature_label_auroc`);
- :mod:`~helpers.lesson2.toy_models`: section 1, toy models of superposition trained side by side;
- :mod:`~helpers.lesson2.synthetic`: sections 2 and 3, batched SAEs on synthetic data with planted features;
- :mod:`~helpers.lesson2.ground_truth`: sections 5 to 7, token labels from the corpus and each latent's verdict;
- :mod:`~helpers.lesson2.steering`: section 8, the steering sweep (the notebook writes the clamp hook itself);
- :mod:`~helpers.lesson2.plots`: the figures and the feature dashboards;
- :mod:`~helpers.lesson2.checks`: one ``check_<name>`` per exercise, on the cases of :mod:`~helpers.lesson2.cases`
  and the wrong answers of :mod:`~helpers.lesson2.mistakes` (which also grades the training loop);
- workbook 2b's exercises: :mod:`~helpers.lesson2.reference_practice` (references),
  :mod:`~helpers.lesson2.checks_practice` (checks), on the cases of :mod:`~helpers.lesson2.cases_practice` and
  the wrong answers of :mod:`~helpers.lesson2.mistakes_practice`; ``reference`` and ``checks`` re-export them.

=====  ==================================  ========================================================================
 ex.   reference (``reference.<name>``)    tests of its check (``tests/test_lesson2.py``)
=====  ==================================  ========================================================================
  1a   ``toy_model_forward``               ``WRONG_ANSWERS`` (``test_wrong_answer_is_rejected_with_its_message``)
  1b   ``toy_model_loss``                  the same
  2    ``sae_forward``                     the same
  3    ``sae_loss``                        the same
  4a   ``l0_norm``                         the same
  4b   ``count_dead_latents``              the same
  5    ``train_sae``                       the same, and ``test_train_check_*``
  6a   ``clamp_feature``                   the same, and ``test_clamp_feature_*``
  6b   ``run_with_clamp``                  the same (on the bundled model and SAE)
  7    ``best_matching_label``             the same, and ``test_feature_label_auroc_*``
=====  ==================================  ========================================================================

Workbook 2b (``solutions/02b_saes_in_practice.ipynb``; wrong answers in ``tests/test_lesson2_practice_workbook.py``):

=====  ==================================  ========================================================================
 ex.   reference (``reference.<name>``)    what the learner writes by hand
=====  ==================================  ========================================================================
  1    ``topk_activation``                 SAELens's ``TopK`` activation
  2    ``jumprelu``                        the JumpReLU activation (``JumpReLUSAE.encode``)
  3    ``feature_logit_lens``              ``W_dec[latent] @ W_U``, top tokens
  4    ``splice_with_error_term``          ``HookedSAETransformer``'s ``use_error_term=True``, as a hook
  5    ``shrinkage_factor``                least-squares scale of SAE values against true feature values
  6    ``clamp_with_sae_hook``             steering with a hook on ``hook_sae_acts_post``
  7    ``correlated_feature_batch``        toy features in correlated / anticorrelated pairs
=====  ==================================  ========================================================================

Every check is ``checks.check_<name>``; the reference and the solved workbook pass it and the generated stub
fails it (``test_reference_and_solved_workbook_pass``, ``test_generated_stub_is_rejected``). Shapes use the
names of :mod:`helpers.shapes`.
"""
from __future__ import annotations

from helpers.lesson2.checks import (
    check_best_matching_label,
    check_clamp_feature,
    check_count_dead_latents,
    check_l0_norm,
    check_run_with_clamp,
    check_sae_forward,
    check_sae_loss,
    check_toy_model_forward,
    check_toy_model_loss,
    check_train_sae,
)
from helpers.lesson2.checks_practice import (
    check_clamp_with_sae_hook,
    check_correlated_feature_batch,
    check_feature_logit_lens,
    check_jumprelu,
    check_shrinkage_factor,
    check_splice_with_error_term,
    check_topk_activation,
)
from helpers.lesson2.ground_truth import (
    CLEAN_AUROC,
    CLEAN_PRECISION,
    GROUND_TRUTH_SEED,
    MIN_FIRINGS,
    TASK_LABELS,
    WORD_CLASSES,
    Context,
    FeatureMatch,
    FeatureMatches,
    LabelKind,
    LabelledTokens,
    Verdict,
    activation_precision,
    ground_truth_examples,
    labelled_tokens,
    match_features,
    packed_tokens,
    top_contexts,
)
from helpers.lesson2.plots import (
    collapsed_code,
    dashboard_html,
    dashboard_text,
    density_slider,
    describe_match,
    percent_down,
    plot_cosine_matrix,
    plot_dimensions_per_feature,
    plot_feature_directions,
    plot_feature_splitting,
    plot_l1_tradeoff,
    plot_superposition_overview,
)
from helpers.lesson2.reference import (
    Params,
    SampleFn,
    best_matching_label,
    clamp_feature,
    count_dead_latents,
    feature_label_auroc,
    init_sae_params,
    l0_norm,
    run_with_clamp,
    sae_forward,
    sae_loss,
    toy_model_forward,
    toy_model_loss,
    train_sae,
)
from helpers.lesson2.reference_practice import (
    CorrelationKind,
    LatentEdit,
    clamp_with_sae_hook,
    correlated_feature_batch,
    feature_logit_lens,
    jumprelu,
    shrinkage_factor,
    splice_with_error_term,
    topk_activation,
)
from helpers.lesson2.steering import (
    PLACE_WORDS,
    STEERING_PROMPTS,
    SteeringOutcome,
    mentions,
    place_share,
    steering_sweep,
)
from helpers.lesson2.synthetic import (
    BatchedSAEs,
    SAEEvaluation,
    best_match_order,
    evaluate_saes,
    family_latents,
    mean_max_cosine,
    synthetic_sampler,
    train_saes_batched,
)
from helpers.lesson2.toy_models import (
    ToyModels,
    dimensions_per_feature,
    feature_norms,
    features_represented,
    sample_toy_features,
    superposition_per_feature,
    train_toy_models,
)

__all__ = [
    # references
    "SampleFn", "Params", "toy_model_forward", "toy_model_loss", "init_sae_params", "sae_forward", "sae_loss",
    "l0_norm", "count_dead_latents", "train_sae", "clamp_feature", "run_with_clamp", "feature_label_auroc",
    "best_matching_label",
    # part A: toy models of superposition
    "ToyModels", "sample_toy_features", "train_toy_models", "feature_norms", "features_represented",
    "dimensions_per_feature", "superposition_per_feature", "plot_feature_directions", "plot_superposition_overview",
    "plot_dimensions_per_feature", "density_slider",
    # part A: SAEs on synthetic data
    "BatchedSAEs", "SAEEvaluation", "train_saes_batched", "evaluate_saes", "synthetic_sampler", "mean_max_cosine",
    "best_match_order", "family_latents", "plot_cosine_matrix", "plot_l1_tradeoff", "plot_feature_splitting",
    # part B: ground truth, dashboards, steering
    "GROUND_TRUTH_SEED", "CLEAN_AUROC", "CLEAN_PRECISION", "MIN_FIRINGS", "WORD_CLASSES", "TASK_LABELS", "Verdict",
    "LabelKind", "LabelledTokens", "ground_truth_examples", "labelled_tokens", "packed_tokens",
    "activation_precision", "FeatureMatch", "FeatureMatches", "match_features", "Context", "top_contexts",
    "dashboard_text", "dashboard_html", "percent_down", "describe_match", "collapsed_code", "STEERING_PROMPTS",
    "PLACE_WORDS", "SteeringOutcome", "mentions",
    "place_share", "steering_sweep",
    # checks, and what their tests use
    "check_toy_model_forward", "check_toy_model_loss", "check_sae_forward", "check_sae_loss", "check_l0_norm",
    "check_count_dead_latents", "check_train_sae", "check_clamp_feature", "check_run_with_clamp",
    "check_best_matching_label",
    # workbook 2b: references and checks
    "LatentEdit", "CorrelationKind", "topk_activation", "jumprelu", "feature_logit_lens", "splice_with_error_term",
    "shrinkage_factor", "clamp_with_sae_hook", "correlated_feature_batch", "check_topk_activation", "check_jumprelu",
    "check_feature_logit_lens", "check_splice_with_error_term", "check_shrinkage_factor", "check_clamp_with_sae_hook",
    "check_correlated_feature_batch",
]
