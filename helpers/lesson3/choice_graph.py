"""Lesson 3c, section 3: an attribution graph of a logit *difference* (IO minus S), read by sign.

The notebook builds the target and calls ``circuit_tracer.attribute`` itself; this module reads the graph:

- :func:`logit_diff_vector` is the direction the logit difference reads after the final LayerNorm,
  ``W_U[:, right] - W_U[:, wrong]`` (circuit-tracer injects a custom target's vector at ``unembed.hook_pre``,
  the final LayerNorm's output, with the LayerNorm's scale frozen; the mean over the vocabulary that it
  subtracts from an ordinary logit's column cancels in a difference);
- :func:`direct_inputs` splits the target's direct input into features, error nodes and token embeddings;
- :func:`total_effects` gives every feature's *signed* effect on the target through every path of the
  graph (circuit-tracer's own influence ranks by absolute value, which cannot tell "for Mary" from
  "for John");
- :func:`logit_diff_after` measures the real change when features are turned off.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import torch
from circuit_tracer.graph import Graph
from circuit_tracer.replacement_model.replacement_model_transformerlens import TransformerLensReplacementModel
from jaxtyping import Float, Int
from torch import Tensor

from helpers.lesson3.graphs import GraphFeature, graph_features, node_kinds

__all__ = ["logit_diff_vector", "DirectInputs", "direct_inputs", "total_effects", "ranked_features",
           "logit_diff_after"]


def logit_diff_vector(replacement: TransformerLensReplacementModel, right: int, wrong: int) -> Float[Tensor, "d_model"]:
    """``W_U[:, right] - W_U[:, wrong]``: dotted with the final LayerNorm's output, the logit difference (less the
    difference of the two unembedding biases)."""
    W_U = replacement.unembed.W_U
    return (W_U[:, right] - W_U[:, wrong]).detach()


class DirectInputs(NamedTuple):
    """What each kind of node adds directly to a target logit: the sums of its row of the adjacency matrix."""

    features: float
    errors: float
    tokens: float
    errors_by_block_at_end: list[float]     # block 0, 1, ...: that block's error node at the last position


def direct_inputs(graph: Graph, logit: int = 0) -> DirectInputs:
    """Split target ``logit``'s direct input by the kind of node it comes from."""
    kinds = node_kinds(graph)
    row = graph.adjacency_matrix[kinds.logits.start + logit]
    errors = row[kinds.errors].reshape(graph.cfg.n_layers, graph.n_pos)
    return DirectInputs(row[kinds.features].sum().item(), errors.sum().item(), row[kinds.tokens].sum().item(),
                        errors[:, -1].tolist())


def total_effects(graph: Graph, logit: int = 0) -> Float[Tensor, "node"]:
    """Each feature node's signed effect on target ``logit`` through every path of the graph.

    The graph is linear: if feature ``s`` moved by its whole activation, a later feature ``t`` would move by
    ``adjacency[t, s]``, which is the fraction ``adjacency[t, s] / value[t]`` of ``t``'s own activation, and so
    on up to the logit. Going down from the last block, ``effect[s] = adjacency[logit, s] + sum over t of
    effect[t] * adjacency[t, s] / value[t]``. ``-effect[s]`` is what the graph predicts for turning ``s`` off
    alone (lesson 3b's ``predicted_logit_change``).
    """
    kinds = node_kinds(graph)
    n = kinds.features.stop
    adjacency = graph.adjacency_matrix[:n, :n]                    # [target feature, source feature]
    values = graph.activation_values[graph.selected_features]
    layers = graph.active_features[graph.selected_features, 0]
    effect = graph.adjacency_matrix[kinds.logits.start + logit, :n].clone()
    for layer in reversed(range(graph.cfg.n_layers)):
        later = (layers > layer).nonzero().flatten()
        here = (layers == layer).nonzero().flatten()
        if len(later) and len(here):
            effect[here] += (effect[later] / values[later]) @ adjacency[later][:, here]
    return effect


def ranked_features(graph: Graph, logit: int = 0) -> list[tuple[GraphFeature, float]]:
    """Every feature node with its :func:`total_effects` value, the most positive first."""
    effects = total_effects(graph, logit)
    features = graph_features(graph)
    order = effects.argsort(descending=True).tolist()
    return [(features[i], effects[i].item()) for i in order]


@torch.no_grad()
def logit_diff_after(replacement: TransformerLensReplacementModel, tokens: Int[Tensor, "1 pos"],
                     features: Sequence[GraphFeature], right: int, wrong: int) -> float:
    """The logit difference right minus wrong at the last position with ``features`` turned off (set to 0 at
    their own position; the rest of the model runs on, with attention frozen, as in lesson 3b)."""
    interventions = [(f.layer, f.pos, f.feature, 0.0) for f in features]
    intervene = cast(Any, replacement).feature_intervention            # circuit-tracer's decorator hides its signature
    logits = intervene(tokens, interventions)[0] if interventions else replacement(tokens)
    return (logits[0, -1, right] - logits[0, -1, wrong]).item()
