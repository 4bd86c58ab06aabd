"""Lesson 3 (activation patching and circuits; part two: feature circuits with attribution graphs; part three:
paths, positions, and a graph that explains a choice).

``notebooks/03a_activation_patching_circuits.ipynb``, ``notebooks/03b_feature_circuits.ipynb``,
``notebooks/03c_paths_and_interventions.ipynb`` and their workbooks ``solutions/03[abc]_*.ipynb`` import this
package (``from helpers import lesson3``;
``from helpers.lesson3 import check_logit_diff``). Its modules:

- :mod:`~helpers.lesson3.prompts`: the fact prompts and matched clean / corrupted IOI prompt sets;
- :mod:`~helpers.lesson3.reference`: the reference answer of every exercise;
- :mod:`~helpers.lesson3.analysis`: part one's experiments (ranking heads, a circuit on a template family);
- :mod:`~helpers.lesson3.graphs`: part two's plumbing around circuit-tracer (reading graphs, feature labels, swaps);
- :mod:`~helpers.lesson3.plots`: the figures (a circuit of heads, a pruned attribution graph);
- :mod:`~helpers.lesson3.checks`: one ``check_<name>`` per exercise, on the cases of :mod:`~helpers.lesson3.cases`
  and the wrong answers of :mod:`~helpers.lesson3.mistakes`;
- part three's experiments (lesson 3c; the notebook imports the modules themselves):
  :mod:`~helpers.lesson3.paths` (the two ends of an edge, for path patching),
  :mod:`~helpers.lesson3.choice_graph` (attributing a logit difference), :mod:`~helpers.lesson3.swap_generation`
  (writing on after a feature swap) and :mod:`~helpers.lesson3.plots_paths` (their figures);
- workbook 3c's exercises (11 to 18) have their own modules beside them: :mod:`~helpers.lesson3.reference_paths`,
  :mod:`~helpers.lesson3.checks_paths`, :mod:`~helpers.lesson3.cases_paths`, :mod:`~helpers.lesson3.mistakes_paths`
  (``reference`` and ``checks`` name them too).

=====  ==============================  ==========================================================
 ex.   reference (``reference.<name>``)  tests of its check
=====  ==============================  ==========================================================
  1    ``logit_diff``                   ``tests/test_lesson3.py`` (``WRONG_ANSWERS``)
  2    ``patch_residual_by_layer_pos``  ``tests/test_lesson3.py``
  3    ``patch_head_output``            ``tests/test_lesson3.py``
  4    ``run_with_mean_ablation``       ``tests/test_lesson3.py``
  5    ``circuit_faithfulness``         ``tests/test_lesson3.py``
  6    ``attribution_patch_heads``      ``tests/test_lesson3.py``
  7    ``feature_logit_attribution``    ``tests/test_lesson3_feature_circuits.py`` (``WRONG_ANSWERS``)
  8    ``feature_edge``                 ``tests/test_lesson3_feature_circuits.py``
  9    ``node_influence``               ``tests/test_lesson3_feature_circuits.py``
 10    ``swap_interventions``           ``tests/test_lesson3_feature_circuits.py``
 11    ``patch_head_at_position``       ``tests/test_lesson3_paths_workbook.py`` (``WRONG_ANSWERS``)
 12    ``patch_head_input``             ``tests/test_lesson3_paths_workbook.py``
 13    ``path_patch``                   ``tests/test_lesson3_paths_workbook.py``
 14    ``logit_diff_direction``         ``tests/test_lesson3_paths_workbook.py``
 15    ``direct_logit_diff``            ``tests/test_lesson3_paths_workbook.py``
 16    ``denoising_effect``             ``tests/test_lesson3_paths_workbook.py``
 17    ``noising_effect``               ``tests/test_lesson3_paths_workbook.py``
 18    ``swap_carry_length``            ``tests/test_lesson3_paths_workbook.py``
=====  ==============================  ==========================================================

Every check is ``checks.check_<name>``. Shapes use the names of :mod:`helpers.shapes`; a head is written
``(layer, head)``, ``"1.4"`` in prose.
"""
from __future__ import annotations

from helpers.lesson3.analysis import FamilyMetrics, family_metrics, heads_by_effect
from helpers.lesson3.cases import swap_pairs
from helpers.lesson3.checks import (
                                    check_attribution_patch_heads,
                                    check_circuit_faithfulness,
                                    check_feature_edge,
                                    check_feature_logit_attribution,
                                    check_logit_diff,
                                    check_node_influence,
                                    check_patch_head_output,
                                    check_patch_residual_by_layer_pos,
                                    check_run_with_mean_ablation,
                                    check_swap_interventions,
)
from helpers.lesson3.checks_paths import (
                                    check_denoising_effect,
                                    check_direct_logit_diff,
                                    check_logit_diff_direction,
                                    check_noising_effect,
                                    check_patch_head_at_position,
                                    check_patch_head_input,
                                    check_path_patch,
                                    check_swap_carry_length,
)
from helpers.lesson3.graphs import (
                                    FeatureLabels,
                                    GraphFeature,
                                    NodeKinds,
                                    SwapOutcome,
                                    SwapTarget,
                                    city_features,
                                    error_share,
                                    graph_features,
                                    label_features,
                                    landmark_prompt,
                                    node_kinds,
                                    predicted_logit_change,
                                    swap_success,
                                    swap_targets,
                                    top_token,
)
from helpers.lesson3.plots import plot_attribution_graph, plot_circuit
from helpers.lesson3.prompts import (
                                    FACT_CLEAN,
                                    FACT_CORRUPT,
                                    FACT_CORRUPT_SHORT,
                                    SUBJECT_ACTS_FIRST,
                                    IOIPatchingData,
                                    Order,
                                    ioi_patching_data,
                                    ioi_template_patching_data,
)
from helpers.lesson3.reference import (
                                    Head,
                                    Metric,
                                    all_heads,
                                    attribution_patch_heads,
                                    circuit_faithfulness,
                                    feature_edge,
                                    feature_logit_attribution,
                                    head_means,
                                    logit_diff,
                                    node_influence,
                                    normalized_metric,
                                    patch_head_output,
                                    patch_residual_by_layer_pos,
                                    run_with_mean_ablation,
                                    swap_interventions,
)
from helpers.lesson3.reference_paths import (
                                    Component,
                                    denoising_effect,
                                    direct_logit_diff,
                                    logit_diff_direction,
                                    noising_effect,
                                    patch_head_at_position,
                                    patch_head_input,
                                    path_patch,
                                    sender_output_change,
                                    swap_carry_length,
)

__all__ = [
    # prompts
    "FACT_CLEAN", "FACT_CORRUPT_SHORT", "FACT_CORRUPT", "Order", "IOIPatchingData", "ioi_patching_data",
    "SUBJECT_ACTS_FIRST", "ioi_template_patching_data",
    # references
    "Head", "Metric", "logit_diff", "normalized_metric", "patch_residual_by_layer_pos", "patch_head_output",
    "head_means", "run_with_mean_ablation", "all_heads", "circuit_faithfulness", "attribution_patch_heads",
    "feature_logit_attribution", "feature_edge", "node_influence", "swap_interventions",
    # part one's experiments and figures
    "heads_by_effect", "FamilyMetrics", "family_metrics", "plot_circuit",
    # part two
    "NodeKinds", "node_kinds", "GraphFeature", "graph_features", "error_share", "predicted_logit_change",
    "landmark_prompt", "top_token", "FeatureLabels", "label_features", "city_features", "SwapTarget", "SwapOutcome",
    "swap_targets", "swap_success", "swap_pairs", "plot_attribution_graph",
    # checks
    "check_logit_diff", "check_patch_residual_by_layer_pos", "check_patch_head_output", "check_run_with_mean_ablation",
    "check_circuit_faithfulness", "check_attribution_patch_heads", "check_feature_logit_attribution",
    "check_feature_edge", "check_node_influence", "check_swap_interventions",
    # part three (workbook 3c): references and checks
    "Component", "patch_head_at_position", "patch_head_input", "sender_output_change", "path_patch",
    "logit_diff_direction", "direct_logit_diff", "denoising_effect", "noising_effect", "swap_carry_length",
    "check_patch_head_at_position", "check_patch_head_input", "check_path_patch", "check_logit_diff_direction",
    "check_direct_logit_diff", "check_denoising_effect", "check_noising_effect", "check_swap_carry_length",
]
