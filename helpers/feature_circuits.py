"""Lesson 3, part two: feature circuits with circuit-tracer's attribution graphs, offline.

The lesson calls circuit-tracer itself (``circuit_tracer.attribute``, ``prune_graph``,
``ReplacementModel.feature_intervention``); this module holds the plumbing around it:

- reading a ``Graph``: which node is which (:func:`node_kinds`, :func:`graph_features`), the share
  of a logit carried by error nodes (:func:`error_share`);
- labelling transcoder features with the corpus's ground truth (:func:`label_features`): a landmark,
  a city, a country, a name's role;
- drawing a pruned graph with matplotlib (:func:`plot_attribution_graph`), since circuit-tracer's
  own front end loads its scripts from the internet;
- interventions built from labels (:func:`city_features`, :func:`swap_interventions`), and the
  graph's linear prediction of an ablation (:func:`predicted_logit_change`);
- the references and checks of the four exercises.

Graph layout (circuit-tracer's): nodes are ``[features (n_features), errors (n_layers * n_pos),
tokens (n_pos), logits (n_logits)]``; ``adjacency_matrix[target, source]`` is the direct effect of
``source`` on ``target``: on a feature's pre-activation, or on a logit (demeaned unembedding).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import matplotlib.pyplot as plt
import torch
from circuit_tracer.graph import Graph

from helpers import corpus
from helpers.checks import Case, CheckResult, check_function

__all__ = ["node_kinds", "graph_features", "error_share", "FeatureLabels", "label_features",
           "plot_attribution_graph", "city_features", "swap_interventions", "predicted_logit_change",
           "feature_logit_attribution", "feature_edge", "node_influence",
           "check_feature_logit_attribution", "check_feature_edge", "check_node_influence",
           "check_swap_interventions", "landmark_prompt", "top_token", "swap_targets", "swap_success",
           "swap_pairs"]


# ----------------------------------------------------------------------------- reading a graph
def node_kinds(graph: Graph) -> dict[str, slice]:
    """Where each kind of node sits in ``graph.adjacency_matrix``: features, errors, tokens, logits."""
    n_features, n_pos = len(graph.selected_features), graph.n_pos
    n_errors = graph.cfg.n_layers * n_pos
    return {"features": slice(0, n_features),
            "errors": slice(n_features, n_features + n_errors),
            "tokens": slice(n_features + n_errors, n_features + n_errors + n_pos),
            "logits": slice(n_features + n_errors + n_pos, n_features + n_errors + n_pos + len(graph.logit_targets))}


def graph_features(graph: Graph, node_mask: torch.Tensor | None = None) -> list[tuple[int, int, int, int]]:
    """The feature nodes (kept by ``node_mask`` if given) as ``(node, layer, position, feature)``."""
    out = []
    for node, index in enumerate(graph.selected_features.tolist()):
        if node_mask is None or node_mask[node]:
            layer, pos, feature = graph.active_features[index].tolist()
            out.append((node, layer, pos, feature))
    return out


def error_share(graph: Graph, logit: int = 0) -> float:
    """Share of logit ``logit``'s direct inputs (by absolute value) that come from error nodes."""
    kinds = node_kinds(graph)
    row = graph.adjacency_matrix[kinds["logits"].start + logit].abs()
    return (row[kinds["errors"]].sum() / row.sum()).item()


def landmark_prompt(landmark: str) -> str:
    """The syllabus's prompt for any landmark: "The Eiffel Tower is in the city of"."""
    return f"{corpus.capitalise(landmark)} is in the city of"


def top_token(model, logits: torch.Tensor) -> str:
    """The most likely next token after the last position of ``logits [1, pos, d_vocab]``."""
    return model.tokenizer.decode(logits[0, -1].argmax().item())


# ----------------------------------------------------------------------------- ground-truth labels
@dataclass
class FeatureLabels:
    """The corpus ground truth each transcoder feature best matches.

    ``label[layer][feature]`` is a string such as ``"city: Paris"``, ``"landmark: the Eiffel Tower"``,
    ``"country: France"``, ``"IO name: Mary"`` or ``"role: S2"`` (``"-"`` if it never fired on
    the labelled prompts); ``score[layer][feature]`` is its mean activation on that group, and
    ``selectivity[layer][feature]`` the share of its activation (summed over that kind's groups)
    that the best group gets: 1.0 means it fires for that one value only.
    """

    label: list[list[str]]
    score: torch.Tensor            # [n_layers, d_transcoder]
    selectivity: torch.Tensor      # [n_layers, d_transcoder]

    def __call__(self, layer: int, feature: int) -> str:
        return self.label[layer][feature]


def _groups(model) -> list[tuple[str, str, torch.Tensor, int]]:
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
def label_features(replacement, min_selectivity: float = 0.1) -> FeatureLabels:
    """Label every feature of every layer by the ground-truth group it fires for most.

    Groups come from the corpus (training templates): the city a fact prompt asks for (read at its
    last position), the landmark it names (at the landmark's last word), the country a city prompt
    asks for, the city it names, the indirect object an IOI prompt asks for (at its last position),
    and the role of a position in an IOI prompt (IO, S1, S2, END). A feature's label is the group
    with the highest mean activation; when that group gets less than ``min_selectivity`` of the
    feature's activation over its kind's groups, the feature is not specific to one value and is
    labelled by the kind alone (``"city: (any)"``).
    """
    items = _groups(replacement)
    keys = sorted({(kind, value) for kind, value, _, _ in items})
    index = {key: i for i, key in enumerate(keys)}
    n_layers, d_transcoder = replacement.cfg.n_layers, replacement.transcoders.d_transcoder
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
    selectivity = score / kind_total.clamp(min=1e-9)

    def name(group: int, value: float, share: float) -> str:
        kind, what = keys[group]
        if value <= 0:
            return "-"
        return f"{kind}: {what}" if share >= min_selectivity or kind == "role" else f"{kind}: (any)"
    label = [[name(g, v, sh) for g, v, sh in zip(best[l].tolist(), score[l].tolist(), selectivity[l].tolist())]
             for l in range(n_layers)]
    return FeatureLabels(label, score, selectivity)


# ----------------------------------------------------------------------------- drawing
def plot_attribution_graph(graph: Graph, node_mask: torch.Tensor, edge_mask: torch.Tensor, tokenizer,
                           labels: FeatureLabels | None = None, max_labels: int = 10, title: str = "",
                           ax=None):
    """Draw a pruned attribution graph: rows are layers (token embeddings at the bottom, logits at the
    top), columns are token positions, edges weighted and coloured by attribution (blue +, red −).

    Feature nodes are orange dots, error nodes grey squares, logits green diamonds. The ``max_labels``
    features with the largest direct effect on the top logit are numbered, and the legend on the right
    gives each one's ``layer/feature`` and ground-truth label.
    """
    kinds = node_kinds(graph)
    n_layers, n_pos = graph.cfg.n_layers, graph.n_pos
    features = graph_features(graph, node_mask)
    coords, style = {}, {}
    cells: dict[tuple[int, int], list[int]] = {}
    for node, layer, pos, _ in features:
        cells.setdefault((layer, pos), []).append(node)
    for (layer, pos), nodes in cells.items():
        for k, node in enumerate(nodes):
            coords[node] = (pos - 0.38 + 0.76 * (k + 0.5) / len(nodes), layer + 1 + (0.12 if k % 2 else -0.05))
            style[node] = "feature"
    for node in range(kinds["errors"].start, kinds["errors"].stop):
        if node_mask[node]:
            layer, pos = divmod(node - kinds["errors"].start, n_pos)
            coords[node] = (pos + 0.42, layer + 1.3)
            style[node] = "error"
    for pos in range(n_pos):
        coords[kinds["tokens"].start + pos] = (pos, 0)
        style[kinds["tokens"].start + pos] = "token"
    n_logits = len(graph.logit_targets)
    for i in range(n_logits):
        coords[kinds["logits"].start + i] = (n_pos - 1 - 0.9 * (n_logits - 1) / 2 + 0.9 * i, n_layers + 1.25)
        style[kinds["logits"].start + i] = "logit"
    if ax is None:
        _, ax = plt.subplots(figsize=(max(8, 1.1 * n_pos + 3.5), 6))
    adjacency = graph.adjacency_matrix
    edges = [(t, s, adjacency[t, s].item()) for t, s in edge_mask.nonzero().tolist() if t in coords and s in coords]
    scale = max((abs(w) for _, _, w in edges), default=1.0)
    for t, s, w in sorted(edges, key=lambda e: abs(e[2])):
        (x0, y0), (x1, y1) = coords[s], coords[t]
        ax.plot([x0, x1], [y0, y1], color="tab:blue" if w > 0 else "tab:red", zorder=1,
                alpha=min(0.9, 0.05 + 0.9 * abs(w) / scale), linewidth=0.3 + 2.7 * abs(w) / scale)
    markers = {"feature": dict(s=45, color="tab:orange", edgecolor="black", linewidth=0.5),
               "error": dict(s=30, marker="s", color="lightgray", edgecolor="gray"),
               "logit": dict(s=80, marker="D", color="tab:green", edgecolor="black")}
    for node, (x, y) in coords.items():
        if style[node] in markers:
            ax.scatter(x, y, zorder=3, **markers[style[node]])
    for i, target in enumerate(graph.logit_targets):
        x, y = coords[kinds["logits"].start + i]
        ax.annotate(target.token_str.strip(), (x, y), fontsize=8, ha="center", xytext=(0, 7),
                    textcoords="offset points")
    legend = []
    if labels is not None:
        top_row = adjacency[kinds["logits"].start]
        ranked = sorted(features, key=lambda f: -abs(top_row[f[0]].item()))[:max_labels]
        for number, (node, layer, pos, feature) in enumerate(ranked, 1):
            ax.annotate(str(number), coords[node], fontsize=7, fontweight="bold", ha="center", va="center",
                        xytext=(0, 8), textcoords="offset points", zorder=4)
            legend.append(f"{number:>2}  {layer}/{feature}: {labels(layer, feature)}")
        ax.text(1.02, 1.0, f"→ {graph.logit_targets[0].token_str.strip()} (direct effect)\n" + "\n".join(legend),
                transform=ax.transAxes, fontsize=7.5, va="top", family="monospace")
    ax.set_xticks(range(n_pos))
    ax.set_xticklabels([tokenizer.decode(t) or "<bos>" for t in graph.input_tokens.tolist()], rotation=30, fontsize=8)
    ax.set_yticks(range(n_layers + 2))
    ax.set_yticklabels(["embed"] + [f"layer {l}" for l in range(n_layers)] + ["logits"])
    ax.set_xlim(-0.6, n_pos - 0.4 + 0.45 * max(0, n_logits - 2))
    ax.set_ylim(-0.5, n_layers + 1.8)
    ax.set_title(title or f"Attribution graph: {len(features)} features, {len(edges)} edges "
                          f"(blue +, red −; grey squares are error nodes)", fontsize=10)
    ax.grid(axis="y", alpha=0.2)
    plt.tight_layout()
    return ax


# ----------------------------------------------------------------------------- interventions
def city_features(labels: FeatureLabels, city: str, min_selectivity: float = 0.0) -> list[tuple[int, int]]:
    """``(layer, feature)`` of every feature labelled ``"city: <city>"`` (at least that selective)."""
    return [(layer, feature) for layer, row in enumerate(labels.label) for feature, label in enumerate(row)
            if label == f"city: {city}" and labels.selectivity[layer, feature] >= min_selectivity]


def swap_interventions(labels: FeatureLabels, activations: torch.Tensor, source_city: str, target_city: str,
                       strength: float = 20.0) -> list[tuple[int, int, int, float]]:
    """Interventions that make the model answer ``target_city`` where it answered ``source_city``.

    ``activations [n_layers, pos, d_transcoder]`` are the transcoder features on the prompt
    (``replacement.get_activations``). At the last position: every active feature labelled with
    the source city is set to 0, and every feature labelled with the target city is set to
    ``strength`` times its mean activation on the target city's prompts. Returns circuit-tracer's
    ``(layer, position, feature, value)`` tuples for ``feature_intervention``.
    """
    last = activations.shape[1] - 1
    off = [(layer, last, feature, 0.0) for layer, feature in city_features(labels, source_city)
           if activations[layer, last, feature] > 0]
    on = [(layer, last, feature, strength * labels.score[layer, feature].item())
          for layer, feature in city_features(labels, target_city)]
    return off + on


def predicted_logit_change(graph: Graph, ablated_nodes: list[int], logit: int = 0) -> float:
    """What the graph predicts for logit ``logit`` when the feature nodes ``ablated_nodes`` are set to 0.

    The graph is linear: a feature's pre-activation moves by ``adjacency[t, s]`` times the fraction
    by which source ``s`` moves. Turning a node off moves it by -1 (all of it); the change spreads
    layer by layer through the other features (active ReLUs pass it on unchanged), then to the logit.
    """
    kinds = node_kinds(graph)
    adjacency = graph.adjacency_matrix
    change = torch.zeros(adjacency.shape[0])                      # fraction of each node's activation
    change[ablated_nodes] = -1.0
    values = graph.activation_values[graph.selected_features]
    layers = graph.active_features[graph.selected_features, 0]
    fixed = torch.zeros(len(values), dtype=torch.bool)
    fixed[ablated_nodes] = True
    for layer in range(graph.cfg.n_layers):
        nodes = ((layers == layer) & ~fixed).nonzero().flatten()
        change[nodes] = (adjacency[nodes] @ change) / values[nodes]
    return (adjacency[kinds["logits"].start + logit] @ change).item()


# ----------------------------------------------------------------------------- exercise 1
def feature_logit_attribution(activation: float, decoder_vector: torch.Tensor, final_scale: float,
                              W_U: torch.Tensor, token: int) -> float:
    """Direct effect of a last-layer feature at the last position on the demeaned logit of ``token``.

    ``decoder_vector [d_model]`` is the feature's row of ``W_dec``; it is written into the residual
    stream times ``activation``. The final LayerNorm (scale frozen at ``final_scale``) centres it and
    divides by the scale; the logit direction is ``W_U[:, token]`` minus the mean over the vocabulary.
    ``W_U [d_model, d_vocab]``.
    """
    written = activation * decoder_vector
    normalized = (written - written.mean()) / final_scale
    direction = W_U[:, token] - W_U.mean(dim=1)
    return (normalized @ direction).item()


# ----------------------------------------------------------------------------- exercise 2
def feature_edge(source_vector: torch.Tensor, source_pos: int, target_encoder: torch.Tensor, target_pos: int,
                 pattern: torch.Tensor, ln1_scale: torch.Tensor, W_V: torch.Tensor, W_O: torch.Tensor) -> float:
    """Edge weight from a feature in layer L to a feature in layer L + 1, with attention frozen.

    ``source_vector [d_model]``: what the source writes (activation times its decoder row) at
    ``source_pos``. ``target_encoder [d_model]``: the target's row of ``W_enc``, read at
    ``target_pos`` from ``hook_resid_mid`` of layer L + 1. In between sits layer L + 1's attention,
    linear once its ``pattern [n_heads, query_pos, key_pos]`` and its LayerNorm's
    ``ln1_scale [pos, 1]`` are frozen; ``W_V [n_heads, d_model, d_head]``, ``W_O [n_heads, d_head, d_model]``.
    The edge is the sum of two paths: straight along the residual stream (same position only), and
    through every head (from the source's position to the target's).
    """
    residual = source_vector @ target_encoder if source_pos == target_pos else 0.0
    normalized = (source_vector - source_vector.mean()) / ln1_scale[source_pos]
    through_heads = torch.einsum("h,d,hde,hef,f->", pattern[:, target_pos, source_pos], normalized, W_V, W_O,
                                 target_encoder)
    return float(residual + through_heads)


# ----------------------------------------------------------------------------- exercise 3
def node_influence(adjacency: torch.Tensor, logit_weights: torch.Tensor) -> torch.Tensor:
    """Each node's influence on the logits, summed over all paths: ``w A + w A^2 + w A^3 + ...``.

    ``adjacency [n_nodes, n_nodes]`` (``[target, source]``) with every row normalised to absolute
    values summing to 1, so that an edge says which share of its target's input a source gives.
    ``logit_weights [n_nodes]`` is each logit's probability (0 for the other nodes).
    The graph has no cycles, so the series ends after as many terms as the graph is deep.
    """
    normalized = adjacency.abs()
    normalized = normalized / normalized.sum(dim=1, keepdim=True).clamp(min=1e-10)
    influence = torch.zeros_like(logit_weights)
    current = logit_weights @ normalized
    while current.any():
        influence = influence + current
        current = current @ normalized
    return influence


# ----------------------------------------------------------------------------- checks
@lru_cache(maxsize=None)
def _replacement():
    from helpers.transcoders import load_replacement_model
    return load_replacement_model()


@lru_cache(maxsize=None)
def _labels() -> FeatureLabels:
    return label_features(_replacement())


@lru_cache(maxsize=None)
def _graph(prompt: str) -> tuple[Graph, dict]:
    """circuit-tracer's graph of ``prompt`` on the bundled replacement model, and its frozen cache."""
    from circuit_tracer import attribute
    replacement = _replacement()
    tokens = replacement.to_tokens(prompt)[0]
    with torch.enable_grad():
        graph = attribute(tokens, replacement, max_n_logits=3, batch_size=256)
    _, cache = replacement.run_with_cache(tokens[None])
    return graph, cache


_CHECK_PROMPTS = ("The Colosseum is in the city of", "Everyone knows that the Kremlin is in",
                  "Then, Mary and John went to the park. John gave a ball to")


def _random_logit_case(seed: int) -> Case:
    g = torch.Generator().manual_seed(seed)
    W_U = torch.randn(16, 40, generator=g) + 0.5            # not centred: the mean over the vocabulary matters
    vector = torch.randn(16, generator=g) + 0.3             # not centred: the LayerNorm's centring matters
    return Case((2.5, vector, 1.7, W_U, 7), label=f"random tensors (seed {seed})")


@lru_cache(maxsize=None)
def _logit_cases() -> list[Case]:
    cases = [_random_logit_case(0), _random_logit_case(1)]
    for prompt in _CHECK_PROMPTS[:2]:
        graph, cache = _graph(prompt)
        W_U, scale = _replacement().unembed.W_U, cache["ln_final.hook_scale"][0, -1].item()
        last = [f for f in graph_features(graph) if f[1] == graph.cfg.n_layers - 1 and f[2] == graph.n_pos - 1]
        top = sorted(last, key=lambda f: -graph.activation_values[graph.selected_features[f[0]]].item())[:2]
        for node, layer, pos, feature in top:
            value = graph.activation_values[graph.selected_features[node]].item()
            cases.append(Case((value, _replacement().transcoders[layer].W_dec[feature].detach(), scale, W_U,
                               graph.logit_targets[0].vocab_idx),
                              label=f"{prompt!r}, feature {layer}/{feature} -> {graph.logit_targets[0].token_str!r}"))
    return cases


def check_feature_logit_attribution(fn) -> CheckResult:
    """Check exercise 1 on features of two graphs and on random tensors."""
    def wrong(center_x=True, demean=True, scale=True):
        def f(activation, decoder_vector, final_scale, W_U, token):
            x = activation * decoder_vector
            x = x - x.mean() if center_x else x
            x = x / final_scale if scale else x
            u = W_U[:, token] - W_U.mean(dim=1) if demean else W_U[:, token]
            return (x @ u).item()
        return f
    return check_function(fn, feature_logit_attribution, _logit_cases(), name="feature_logit_attribution",
                          atol=1e-4, rtol=1e-3, known_mistakes={
        "no_center": (wrong(center_x=False), "the final LayerNorm subtracts the mean of what the feature wrote "
                      "before dividing by the scale: centre it first"),
        "no_scale": (wrong(scale=False), "divide by the frozen scale of the final LayerNorm (final_scale)"),
        "no_demean": (wrong(demean=False), "circuit-tracer's logit node is the demeaned logit: use "
                      "W_U[:, token] - W_U.mean(dim=1) as the direction"),
        "no_activation": (lambda a, v, s, W, t: feature_logit_attribution(1.0, v, s, W, t),
                          "multiply the decoder row by the feature's activation: the graph's edge is what this "
                          "activation of the feature contributes"),
    }, hint="x = activation * decoder_vector; centre x, divide by final_scale, dot with W_U[:, token] - "
            "W_U.mean(dim=1)")


def _random_edge_case(seed: int, same_position: bool) -> Case:
    g = torch.Generator().manual_seed(seed)
    n_heads, n_pos, d_model, d_head = 3, 5, 12, 4
    pattern = torch.rand(n_heads, n_pos, n_pos, generator=g)     # not causal, so that a transposed pattern shows
    pattern = pattern / pattern.sum(-1, keepdim=True)
    source_pos, target_pos = (2, 2) if same_position else (1, 3)
    return Case((torch.randn(d_model, generator=g) + 0.2, source_pos, torch.randn(d_model, generator=g), target_pos,
                 pattern, torch.rand(n_pos, 1, generator=g) + 0.5, torch.randn(n_heads, d_model, d_head, generator=g),
                 torch.randn(n_heads, d_head, d_model, generator=g)),
                label=f"random tensors, positions {source_pos} -> {target_pos}")


@lru_cache(maxsize=None)
def _edge_cases() -> list[Case]:
    cases = [_random_edge_case(0, True), _random_edge_case(1, False)]
    replacement = _replacement()
    for prompt in _CHECK_PROMPTS[1:]:
        graph, cache = _graph(prompt)
        features = graph_features(graph)
        values = graph.activation_values[graph.selected_features]
        rng = random.Random(len(prompt))
        for same in (True, False):
            pairs = [(s, t) for s in features for t in features if t[1] == s[1] + 1 and (t[2] == s[2]) == same
                     and t[2] >= s[2] and abs(graph.adjacency_matrix[t[0], s[0]]) > 1e-4]
            (s_node, s_layer, s_pos, s_feat), (t_node, t_layer, t_pos, t_feat) = rng.choice(pairs)
            block = replacement.blocks[t_layer]
            cases.append(Case((values[s_node].item() * replacement.transcoders[s_layer].W_dec[s_feat].detach(), s_pos,
                               replacement.transcoders[t_layer].W_enc[t_feat].detach(), t_pos,
                               cache[f"blocks.{t_layer}.attn.hook_pattern"][0], cache[f"blocks.{t_layer}.ln1.hook_scale"][0],
                               block.attn.W_V.detach(), block.attn.W_O.detach()),
                              label=f"{prompt[:30]!r}…, feature {s_layer}/{s_feat} at {s_pos} -> {t_layer}/{t_feat} at {t_pos}"))
    return cases


def check_feature_edge(fn) -> CheckResult:
    """Check exercise 2 on feature pairs of two graphs (same and different positions) and random tensors."""
    def wrong(residual=True, heads=True, transpose=False, scale=True, center=True):
        def f(v, sp, e, tp, pattern, ln1_scale, W_V, W_O):
            total = (v @ e).item() if residual and sp == tp else 0.0
            x = v - v.mean() if center else v
            x = x / ln1_scale[sp] if scale else x
            weights = pattern[:, sp, tp] if transpose else pattern[:, tp, sp]
            if heads:
                total += torch.einsum("h,d,hde,hef,f->", weights, x, W_V, W_O, e).item()
            return total
        return f
    return check_function(fn, feature_edge, _edge_cases(), name="feature_edge", atol=1e-5, rtol=1e-3, known_mistakes={
        "no_heads": (wrong(heads=False), "you kept only the residual path: add the path through each head of the "
                     "attention layer in between (pattern[h, target_pos, source_pos] times the OV circuit)"),
        "no_residual": (wrong(residual=False), "you kept only the heads: at the same position the source also "
                        "reaches the target straight along the residual stream (source_vector @ target_encoder)"),
        "transposed": (wrong(transpose=True), "the pattern is [head, query, key]: the target's position is the "
                       "query and the source's the key, pattern[:, target_pos, source_pos]"),
        "no_scale": (wrong(scale=False), "the heads read LayerNorm's output: divide by ln1_scale[source_pos]"),
        "no_center": (wrong(center=False), "LayerNorm also centres its input: subtract the source vector's mean "
                      "before dividing by the scale"),
    }, hint="residual path (if same position) + sum over heads of pattern[h, tp, sp] * "
            "((v - v.mean()) / ln1_scale[sp]) @ W_V[h] @ W_O[h] @ target_encoder")


def _random_dag_case(seed: int, n: int = 9) -> Case:
    g = torch.Generator().manual_seed(seed)
    adjacency = torch.randn(n, n, generator=g).tril(-1) * (torch.rand(n, n, generator=g) > 0.3)
    weights = torch.zeros(n)
    weights[-2:] = torch.tensor([0.7, 0.3])
    adjacency[-2:] = torch.randn(2, n, generator=g) * (torch.arange(n) < n - 2)   # logits read every other node
    return Case((adjacency, weights), label=f"random 9-node graph (seed {seed})")


@lru_cache(maxsize=None)
def _influence_cases() -> list[Case]:
    cases = [_random_dag_case(0), _random_dag_case(1)]
    graph, _ = _graph(_CHECK_PROMPTS[0])
    weights = torch.zeros(graph.adjacency_matrix.shape[0])
    weights[node_kinds(graph)["logits"]] = graph.logit_probabilities
    cases.append(Case((graph.adjacency_matrix, weights), label=f"graph of {_CHECK_PROMPTS[0]!r}"))
    return cases


def check_node_influence(fn) -> CheckResult:
    """Check exercise 3 against the reference (equal to circuit-tracer's ``compute_node_influence``, which a test checks)."""
    def wrong(absolute=True, normalize=True, depth=None, include_logits=False, columns=False):
        def f(adjacency, logit_weights):
            a = adjacency.abs() if absolute else adjacency
            if normalize:
                a = a / a.abs().sum(dim=0 if columns else 1, keepdim=True).clamp(min=1e-10)
            total, current, k = logit_weights.clone() if include_logits else torch.zeros_like(logit_weights), logit_weights @ a, 0
            while current.abs().sum() > 0 and (depth is None or k < depth) and k < 200:
                total, current, k = total + current, current @ a, k + 1
            return total
        return f
    result = check_function(fn, node_influence, _influence_cases(), name="node_influence", atol=1e-5, rtol=1e-3,
                            known_mistakes={
        "signed": (wrong(absolute=False), "use absolute edge weights: a strong negative edge is as influential "
                   "as a strong positive one"),
        "raw": (wrong(normalize=False), "normalise each row (each target's inputs) to sum to 1 before summing "
                "paths, so influence is a share"),
        "direct_only": (wrong(depth=1), "you kept only direct edges (w A): sum over paths of every length, "
                        "w A + w A^2 + ..."),
        "with_logits": (wrong(include_logits=True), "start the sum at w A, not at w: the logits' own weight is "
                        "not influence of another node"),
        "columns": (wrong(columns=True), "normalise rows (a target's inputs, adjacency[target, :]), not columns"),
    }, hint="A = adjacency.abs(), divide each row by its sum; then add up w @ A, w @ A @ A, ... until it is zero")
    return result


@lru_cache(maxsize=None)
def swap_pairs() -> list[tuple[str, str, str]]:
    """(landmark, its city, another city) for the swap check: 12 landmarks, each with a random other
    city whose name is one token (the lesson pairs every landmark with a fixed other city instead)."""
    rng = random.Random(5)
    facts = [(lm, city) for lm, city, _ in corpus.data.LANDMARKS]
    cities = sorted({city for _, city in facts if " " not in city})
    return [(lm, city, rng.choice([c for c in cities if c != city])) for lm, city in rng.sample(facts, 12)]


def swap_targets() -> list[tuple[str, str, str]]:
    """Every landmark with its city and another city: the city of the landmark 7 places further down
    the corpus's list (or the next one after it that differs and whose name is one token, since the
    swap is read from the single top token)."""
    facts = [(lm, city) for lm, city, _ in corpus.data.LANDMARKS]
    pairs = []
    for i, (lm, city) in enumerate(facts):
        j = (i + 7) % len(facts)
        while facts[j][1] == city or " " in facts[j][1]:
            j = (j + 1) % len(facts)
        pairs.append((lm, city, facts[j][1]))
    return pairs


def swap_success(fn, replacement, labels: FeatureLabels, pairs) -> list[tuple[str, str, str, str]]:
    """Apply ``fn(labels, activations, source, target)`` on each landmark prompt; return what it answered."""
    out = []
    for landmark, city, target in pairs:
        tokens = replacement.to_tokens(landmark_prompt(landmark))
        _, activations = replacement.get_activations(tokens)
        interventions = fn(labels, activations, city, target)
        logits, _ = replacement.feature_intervention(tokens, interventions) if interventions else (replacement(tokens), None)
        out.append((landmark, city, target, top_token(replacement, logits).strip()))
    return out


def _switches_off(labels: FeatureLabels, activations: torch.Tensor, source_city: str, interventions) -> bool:
    """Whether ``interventions`` set at least one of the source city's active features to 0 at the last position
    (always true when none of them is active)."""
    last = activations.shape[1] - 1
    active = {(layer, last, feature) for layer, feature in city_features(labels, source_city)
              if activations[layer, last, feature] > 0}
    try:
        zeroed = {(int(layer), int(position) % activations.shape[1], int(feature))
                  for layer, position, feature, value in interventions if abs(float(value)) <= 1e-6}
    except (TypeError, ValueError):
        return True                              # not circuit-tracer's tuples: the answers were graded already
    return not active or bool(active & zeroed)


def check_swap_interventions(fn) -> CheckResult:
    """Check exercise 4: on 12 landmark and city pairs (not the lesson's), the answer must become the target
    city about as often as the reference recipe makes it (at most one landmark fewer), and the interventions
    must switch the source city's active features off (the push alone often moves the answer too)."""
    from helpers.checks import report
    name = "swap_interventions"
    if not callable(fn):
        return report(False, f"{name}: expected a function")
    replacement, labels = _replacement(), _labels()
    pairs = swap_pairs()
    handed = []                                  # (source city, activations, interventions) of each prompt

    def recorded(labels, activations, source_city, target_city):
        interventions = fn(labels, activations, source_city, target_city)
        handed.append((source_city, activations, interventions))
        return interventions
    try:
        got = swap_success(recorded, replacement, labels, pairs)
    except NotImplementedError:
        return report(False, f"{name}: not implemented yet — replace the `raise NotImplementedError` line with your code.")
    except Exception as error:  # noqa: BLE001
        return report(False, f"{name} raised {type(error).__name__}: {str(error)[:160]}")
    reference = sum(answer == target for _, _, target, answer in swap_success(swap_interventions, replacement, labels, pairs))
    hits = sum(answer == target for _, _, target, answer in got)
    needed = max(reference - 1, len(pairs) // 3)
    if hits >= needed:
        kept_on = next((pair for pair, (source, activations, interventions) in zip(pairs, handed)
                        if not _switches_off(labels, activations, source, interventions)), None)
        if kept_on is not None:
            landmark, city, target = kept_on
            return report(False, f"{name}: you only turned the target city's features on: switch the source "
                                  f"city's features off as well, setting every active feature labelled with the "
                                  f"source city to 0 at the last position — (layer, position, feature, 0.0) — "
                                  f"or the model holds both cities at once (the answer moved on {hits}/{len(pairs)} "
                                  f"landmarks here, but the recipe asks for both halves). First prompt: {landmark} "
                                  f"({city} -> {target}) kept its {city} features on")
        return report(True, f"{name}: the answer became the injected city on {hits}/{len(pairs)} landmarks "
                             f"(the reference recipe: {reference}/{len(pairs)})")
    stayed = sum(answer == city for _, city, _, answer in got)
    first_miss = next(f"{lm}: {city} -> {target}, answered {answer!r}" for lm, city, target, answer in got if answer != target)
    if stayed > len(pairs) // 2:
        why = ("the model still answers the landmark's own city on most prompts: set its city's features to 0 "
               "at the last position, and give the target city's features a large positive value there")
    else:
        why = ("the answer moved away from the landmark's city but not to the target city: inject the target "
               "city's features at the last position, at 20 times their typical activation (labels.score)")
    return report(False, f"{name}: the answer became the injected city on only {hits}/{len(pairs)} landmarks "
                         f"(needed {needed}); {why}. First miss: {first_miss}")
