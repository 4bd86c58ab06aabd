"""Lesson 3, part two: reading circuit-tracer's attribution graphs, labelling features, and the swap experiment.

The lesson calls circuit-tracer itself (``circuit_tracer.attribute``, ``prune_graph``,
``ReplacementModel.feature_intervention``); this module holds the plumbing around it:

- reading a ``Graph``: which node is which (:func:`node_kinds`, :func:`graph_features`), the share
  of a logit carried by error nodes (:func:`error_share`), the graph's linear prediction of an
  ablation (:func:`predicted_logit_change`);
- labelling transcoder features with the corpus's ground truth (:func:`label_features`): a landmark,
  a city, a country, a name's role;
- the landmark swaps of section 9 (:func:`city_features`, :func:`swap_targets`, :func:`swap_success`).

Graph layout (circuit-tracer's): nodes are ``[features (n_features), errors (n_layers * n_pos),
tokens (n_pos), logits (n_logits)]``; ``adjacency_matrix[target, source]`` is the direct effect of
``source`` on ``target``: on a feature's pre-activation, or on a logit (demeaned unembedding).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

import torch
from circuit_tracer.graph import Graph
from circuit_tracer.replacement_model.replacement_model_transformerlens import TransformerLensReplacementModel
from jaxtyping import Bool, Float
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers import corpus

__all__ = ["NodeKinds", "node_kinds", "GraphFeature", "graph_features", "error_share", "predicted_logit_change",
           "landmark_prompt", "top_token", "FeatureLabels", "label_features", "city_features", "SwapTarget",
           "SwapOutcome", "swap_targets", "swap_success"]


# ----------------------------------------------------------------------------- reading a graph
class NodeKinds(NamedTuple):
    """Where each kind of node sits in ``graph.adjacency_matrix`` (rows and columns)."""

    features: slice
    errors: slice
    tokens: slice
    logits: slice


def node_kinds(graph: Graph) -> NodeKinds:
    """Where each kind of node sits in ``graph.adjacency_matrix``: features, errors, tokens, logits."""
    n_features, n_pos = len(graph.selected_features), graph.n_pos
    n_errors = graph.cfg.n_layers * n_pos
    return NodeKinds(features=slice(0, n_features),
                     errors=slice(n_features, n_features + n_errors),
                     tokens=slice(n_features + n_errors, n_features + n_errors + n_pos),
                     logits=slice(n_features + n_errors + n_pos,
                                  n_features + n_errors + n_pos + len(graph.logit_targets)))


class GraphFeature(NamedTuple):
    """A feature node of a graph: its row in the adjacency matrix, its layer, its token position, its index."""

    node: int
    layer: int
    pos: int
    feature: int


def graph_features(graph: Graph, node_mask: Bool[Tensor, "node"] | None = None) -> list[GraphFeature]:
    """The feature nodes (kept by ``node_mask`` if given), in the graph's order."""
    out = []
    for node, index in enumerate(graph.selected_features.tolist()):
        if node_mask is None or node_mask[node]:
            layer, pos, feature = graph.active_features[index].tolist()
            out.append(GraphFeature(node, layer, pos, feature))
    return out


def error_share(graph: Graph, logit: int = 0) -> float:
    """Share of logit ``logit``'s direct inputs (by absolute value) that come from error nodes."""
    kinds = node_kinds(graph)
    row = graph.adjacency_matrix[kinds.logits.start + logit].abs()
    return (row[kinds.errors].sum() / row.sum()).item()


def predicted_logit_change(graph: Graph, ablated_nodes: Sequence[int], logit: int = 0) -> float:
    """What the graph predicts for logit ``logit`` when the feature nodes ``ablated_nodes`` are set to 0.

    The graph is linear: a feature's pre-activation moves by ``adjacency[t, s]`` times the fraction
    by which source ``s`` moves. Turning a node off moves it by -1 (all of it); the change spreads
    layer by layer through the other features (active ReLUs pass it on unchanged), then to the logit.
    """
    kinds = node_kinds(graph)
    adjacency = graph.adjacency_matrix
    ablated = list(ablated_nodes)
    change = torch.zeros(adjacency.shape[0])                      # fraction of each node's activation
    change[ablated] = -1.0
    values = graph.activation_values[graph.selected_features]
    layers = graph.active_features[graph.selected_features, 0]
    fixed = torch.zeros(len(values), dtype=torch.bool)
    fixed[ablated] = True
    for layer in range(graph.cfg.n_layers):
        nodes = ((layers == layer) & ~fixed).nonzero().flatten()
        change[nodes] = (adjacency[nodes] @ change) / values[nodes]
    return (adjacency[kinds.logits.start + logit] @ change).item()


def landmark_prompt(landmark: str) -> str:
    """The fact prompt for any landmark, as in "The Eiffel Tower is in the city of"."""
    return f"{corpus.capitalise(landmark)} is in the city of"


def top_token(model: HookedTransformer, logits: Float[Tensor, "batch pos d_vocab"]) -> str:
    """The most likely next token after the last position of the first prompt of ``logits``."""
    return model.tokenizer.decode(logits[0, -1].argmax().item())


# ----------------------------------------------------------------------------- ground-truth labels
@dataclass(frozen=True)
class FeatureLabels:
    """The corpus ground truth each transcoder feature best matches.

    ``label[layer][feature]`` is a string such as ``"city: Paris"``, ``"landmark: the Eiffel Tower"``,
    ``"country: France"``, ``"IO name: Mary"`` or ``"role: S2"`` (``"-"`` if it never fired on
    the labelled prompts); ``score[layer, feature]`` is its mean activation on that group, and
    ``purity[layer, feature]`` the share of its activation (summed over that kind's groups)
    that the best group gets: 1.0 means it fires for that one value only.
    """

    label: list[list[str]]
    score: Float[Tensor, "layer d_sae"]
    purity: Float[Tensor, "layer d_sae"]

    def __call__(self, layer: int, feature: int) -> str:
        return self.label[layer][feature]


def _groups(model: HookedTransformer) -> list[tuple[str, str, Tensor, int]]:
    """Labelled (kind, value, tokens [1, pos], position) items from the corpus's ground truth."""
    items = []
    for ex in corpus.fact_examples("train", "city"):
        tokens = model.to_tokens(ex.prompt)
        positions = corpus.token_positions(ex, model.tokenizer)
        items.append(("city", ex.labels["city"], tokens, tokens.shape[1] - 1))
        items.append(("landmark", ex.labels["subject"], tokens, positions["subject_last"]))
    for ex in corpus.fact_examples("train", "country"):
        tokens = model.to_tokens(ex.prompt)
        positions = corpus.token_positions(ex, model.tokenizer)
        items.append(("country", ex.labels["country"], tokens, tokens.shape[1] - 1))
        items.append(("city", ex.labels["city"], tokens, positions["subject_last"]))
    for ex in corpus.ioi_examples(160, "train", seed=11):
        tokens = model.to_tokens(ex.prompt)
        positions = corpus.token_positions(ex, model.tokenizer)
        items.append(("IO name", ex.labels["io"], tokens, tokens.shape[1] - 1))
        for role in ("io", "s1", "s2"):
            if role in positions:
                items.append(("role", role.upper(), tokens, positions[role]))
        items.append(("role", "END", tokens, tokens.shape[1] - 1))
    return items


@torch.no_grad()
def label_features(replacement: TransformerLensReplacementModel, min_purity: float = 0.1) -> FeatureLabels:
    """Label every feature of every layer by the ground-truth group it fires for most.

    Groups come from the corpus (training templates): the city a fact prompt asks for (read at its
    last position), the landmark it names (at the landmark's last word), the country a city prompt
    asks for, the city it names, the indirect object an IOI prompt asks for (at its last position),
    and the role of a position in an IOI prompt (IO, S1, S2, END). A feature's label is the group
    with the highest mean activation; when that group gets less than ``min_purity`` of the
    feature's activation over its kind's groups, the feature is not specific to one value and is
    labelled by the kind alone (``"city: (any)"``).
    """
    items = _groups(replacement)
    keys = sorted({(kind, value) for kind, value, _, _ in items})
    index = {key: i for i, key in enumerate(keys)}
    n_layers, d_transcoder = replacement.cfg.n_layers, cast(int, replacement.transcoders.d_transcoder)
    sums = torch.zeros(n_layers, len(keys), d_transcoder)
    counts = torch.zeros(len(keys))
    by_length: dict[int, dict[tuple, list]] = {}
    for kind, value, tokens, pos in items:
        prompts = by_length.setdefault(tokens.shape[1], {})
        prompts.setdefault(tuple(tokens[0].tolist()), []).append((index[(kind, value)], pos))
    hooks = [f"blocks.{layer}.{replacement.feature_input_hook}" for layer in range(n_layers)]
    for prompts in by_length.values():
        tokens = torch.tensor(list(prompts))                                     # [batch, pos]
        _, cache = replacement.run_with_cache(tokens, names_filter=hooks)
        for layer in range(n_layers):
            acts = replacement.transcoders.encode_layer(cache[hooks[layer]], layer)   # [batch, pos, d_tc]
            for row, wanted in enumerate(prompts.values()):
                for group, pos in wanted:
                    sums[layer, group] += acts[row, pos]
        for wanted in prompts.values():
            for group, _ in wanted:
                counts[group] += 1
    means = sums / counts[None, :, None]                                    # [n_layers, groups, d_tc]
    best = means.argmax(1)                                                  # [n_layers, d_tc]
    score = means.gather(1, best[:, None]).squeeze(1)
    kinds = [kind for kind, _ in keys]
    same_kind = torch.tensor([[k1 == k2 for k2 in kinds] for k1 in kinds], dtype=torch.float)  # [groups, groups]
    kind_total = torch.einsum("lgf,hg->lhf", means, same_kind).gather(1, best[:, None]).squeeze(1)
    purity = score / kind_total.clamp(min=1e-9)

    def name(group: int, value: float, share: float) -> str:
        kind, what = keys[group]
        if value <= 0:
            return "-"
        return f"{kind}: {what}" if share >= min_purity or kind == "role" else f"{kind}: (any)"
    label = [[name(g, v, sh) for g, v, sh in zip(best[layer].tolist(), score[layer].tolist(),
                                                 purity[layer].tolist())]
             for layer in range(n_layers)]
    return FeatureLabels(label, score, purity)


# ----------------------------------------------------------------------------- swaps
def city_features(labels: FeatureLabels, city: str, min_purity: float = 0.0) -> list[tuple[int, int]]:
    """``(layer, feature)`` of every feature labelled ``"city: <city>"`` (with at least that purity)."""
    return [(layer, feature) for layer, row in enumerate(labels.label) for feature, label in enumerate(row)
            if label == f"city: {city}" and labels.purity[layer, feature] >= min_purity]


class SwapTarget(NamedTuple):
    """A landmark, its own city, and the city a swap should make the model answer instead."""

    landmark: str
    city: str
    target: str


class SwapOutcome(NamedTuple):
    """What the model answered (its top token, stripped) after a swap from ``city`` to ``target``."""

    landmark: str
    city: str
    target: str
    answer: str


def swap_targets() -> list[SwapTarget]:
    """Every landmark with its city and another city: the city of the landmark 7 places further down
    the corpus's list (or the next one after it that differs and whose name is one token, since the
    swap is read from the single top token)."""
    facts = [(lm, city) for lm, city, _ in corpus.data.LANDMARKS]
    pairs = []
    for i, (lm, city) in enumerate(facts):
        j = (i + 7) % len(facts)
        while facts[j][1] == city or " " in facts[j][1]:
            j = (j + 1) % len(facts)
        pairs.append(SwapTarget(lm, city, facts[j][1]))
    return pairs


def swap_success(fn: Callable, replacement: TransformerLensReplacementModel, labels: FeatureLabels,
                 pairs: Sequence[tuple[str, str, str]]) -> list[SwapOutcome]:
    """Apply ``fn(labels, activations, source, target)`` on each landmark prompt; return what it answered."""
    out = []
    for landmark, city, target in pairs:
        tokens = replacement.to_tokens(landmark_prompt(landmark))
        _, activations = replacement.get_activations(tokens)
        interventions = fn(labels, activations, city, target)
        if interventions:
            logits = replacement.feature_intervention(tokens, interventions)[0]  # type: ignore[call-arg]
        else:
            logits = replacement(tokens)
        out.append(SwapOutcome(landmark, city, target, top_token(replacement, logits).strip()))
    return out
