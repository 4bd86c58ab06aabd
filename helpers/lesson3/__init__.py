"""Lesson 3 (activation patching and circuits; part two: feature circuits with attribution graphs).

``notebooks/03a_activation_patching_circuits.ipynb``, ``notebooks/03b_feature_circuits.ipynb`` and their workbooks
``solutions/03[ab]_*.ipynb`` import this package (``from helpers import lesson3``;
``from helpers.lesson3 import check_logit_diff``). Its modules:

- :mod:`~helpers.lesson3.prompts`: the fact prompts and matched clean / corrupted IOI prompt sets;
- :mod:`~helpers.lesson3.reference`: the reference answer of every exercise;
- :mod:`~helpers.lesson3.analysis`: part one's experiments (ranking heads, a circuit on a template family);
- :mod:`~helpers.lesson3.graphs`: part two's plumbing around circuit-tracer (reading graphs, feature labels, swaps);
- :mod:`~helpers.lesson3.plots`: the figures (a circuit of heads, a pruned attribution graph);
- :mod:`~helpers.lesson3.checks`: one ``check_<name>`` per exercise, on the cases of :mod:`~helpers.lesson3.cases`
  and the wrong answers of :mod:`~helpers.lesson3.mistakes`.

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
]
