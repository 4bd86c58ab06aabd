"""Lesson 3's figures: a circuit of heads as a graph (:func:`plot_circuit`), and a pruned attribution graph
(:func:`plot_attribution_graph`), drawn with matplotlib since circuit-tracer's own front end loads its
scripts from the internet."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
from circuit_tracer.graph import Graph
from jaxtyping import Bool
from torch import Tensor

from helpers.lesson3.graphs import FeatureLabels, graph_features, node_kinds
from helpers.lesson3.reference import Head

__all__ = ["plot_circuit", "plot_attribution_graph"]


def plot_circuit(groups: dict[str, Sequence[Head]], edges: Sequence[tuple[str, str]], n_layers: int,
                 other_nodes: dict[str, float] | None = None, title: str = "", ax: plt.Axes | None = None) -> plt.Axes:
    """Draw a circuit as a graph: heads as boxes placed by layer (bottom to top), coloured by group.

    Args:
        groups: role name ("S2 movers", ...) -> its heads ``(layer, head)``.
        edges: ``(from, to)`` pairs of group names or node names; an arrow joins every member of one
            to every member of the other. ``"input"`` (the embeddings) and ``"logits"`` always exist.
        n_layers: the model's layer count (sets the vertical axis).
        other_nodes: extra nodes that are not heads, name -> height in layers (e.g. ``{"MLPs": 1.5}``).
    """
    import networkx as nx

    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    graph = nx.DiGraph()
    palette = plt.get_cmap("tab10")
    pos = {"input": (0.0, -1.0), "logits": (0.0, float(n_layers))}
    colours: dict[str, Any] = {"input": "lightgrey", "logits": "lightgrey"}
    members = {"input": ["input"], "logits": ["logits"]}
    for name, height in (other_nodes or {}).items():
        pos[name], colours[name], members[name] = (1.6, height), "wheat", [name]   # beside the heads
    by_layer: dict[int, list[str]] = {}
    for g, (group, heads) in enumerate(groups.items()):
        members[group] = [f"{layer}.{head}" for layer, head in heads]
        for layer, head in heads:
            by_layer.setdefault(layer, []).append(f"{layer}.{head}")
            colours[f"{layer}.{head}"] = palette(g)
    for layer, nodes in by_layer.items():
        for i, node in enumerate(nodes):
            pos[node] = (i - (len(nodes) - 1) / 2, float(layer))
    graph.add_nodes_from(pos)
    for a, b in edges:
        graph.add_edges_from((u, v) for u in members[a] for v in members[b])
    sizes = [3400 if n in (other_nodes or {}) else 1100 for n in graph.nodes]
    nx.draw_networkx(graph, pos, ax=ax, node_color=[colours[n] for n in graph.nodes], node_size=sizes,
                     node_shape="s", font_size=8, arrows=True, arrowsize=14, edge_color="grey")
    handles = [plt.Line2D([], [], marker="s", ls="", color=palette(g), label=group) for g, group in enumerate(groups)]
    ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)
    ax.set_yticks(range(-1, n_layers + 1), ["embeddings", *[f"layer {layer}" for layer in range(n_layers)], "logits"])
    ax.tick_params(left=True, labelleft=True)
    ax.set_xlim(-1.5, 2.5)
    ax.set_title(title)
    ax.axis("on")
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return ax


def plot_attribution_graph(graph: Graph, node_mask: Bool[Tensor, "node"], edge_mask: Bool[Tensor, "node node"],
                           tokenizer, labels: FeatureLabels | None = None, max_labels: int = 10, title: str = "",
                           ax: plt.Axes | None = None) -> plt.Axes:
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
    for node in range(kinds.errors.start, kinds.errors.stop):
        if node_mask[node]:
            layer, pos = divmod(node - kinds.errors.start, n_pos)
            coords[node] = (pos + 0.42, layer + 1.3)
            style[node] = "error"
    for pos in range(n_pos):
        coords[kinds.tokens.start + pos] = (pos, 0)
        style[kinds.tokens.start + pos] = "token"
    n_logits = len(graph.logit_targets)
    for i in range(n_logits):
        coords[kinds.logits.start + i] = (n_pos - 1 - 0.9 * (n_logits - 1) / 2 + 0.9 * i, n_layers + 1.25)
        style[kinds.logits.start + i] = "logit"
    if ax is None:
        _, ax = plt.subplots(figsize=(max(8, 1.1 * n_pos + 3.5), 6))
    adjacency = graph.adjacency_matrix
    edges = [(t, s, adjacency[t, s].item()) for t, s in edge_mask.nonzero().tolist() if t in coords and s in coords]
    scale = max((abs(w) for _, _, w in edges), default=1.0)
    for t, s, w in sorted(edges, key=lambda e: abs(e[2])):
        (x0, y0), (x1, y1) = coords[s], coords[t]
        ax.plot([x0, x1], [y0, y1], color="tab:blue" if w > 0 else "tab:red", zorder=1,
                alpha=min(0.9, 0.05 + 0.9 * abs(w) / scale), linewidth=0.3 + 2.7 * abs(w) / scale)
    markers: dict[str, dict[str, Any]] = {"feature": dict(s=45, color="tab:orange", edgecolor="black", linewidth=0.5),
               "error": dict(s=30, marker="s", color="lightgray", edgecolor="gray"),
               "logit": dict(s=80, marker="D", color="tab:green", edgecolor="black")}
    for node, (x, y) in coords.items():
        if style[node] in markers:
            ax.scatter(x, y, zorder=3, **markers[style[node]])
    for i, target in enumerate(graph.logit_targets):
        x, y = coords[kinds.logits.start + i]
        ax.annotate(target.token_str.strip(), (x, y), fontsize=8, ha="center", xytext=(0, 7),
                    textcoords="offset points")
    legend = []
    if labels is not None:
        top_row = adjacency[kinds.logits.start]
        ranked = sorted(features, key=lambda f: -abs(top_row[f[0]].item()))[:max_labels]
        for number, (node, layer, _, feature) in enumerate(ranked, 1):
            ax.annotate(str(number), coords[node], fontsize=7, fontweight="bold", ha="center", va="center",
                        xytext=(0, 8), textcoords="offset points", zorder=4)
            legend.append(f"{number:>2}  {layer}/{feature}: {labels(layer, feature)}")
        ax.text(1.02, 1.0, f"→ {graph.logit_targets[0].token_str.strip()} (direct effect)\n" + "\n".join(legend),
                transform=ax.transAxes, fontsize=7.5, va="top", family="monospace")
    ax.set_xticks(range(n_pos))
    ax.set_xticklabels([tokenizer.decode(t) or "<bos>" for t in graph.input_tokens.tolist()], rotation=30, fontsize=8)
    ax.set_yticks(range(n_layers + 2))
    ax.set_yticklabels(["embed"] + [f"layer {layer}" for layer in range(n_layers)] + ["logits"])
    ax.set_xlim(-0.6, n_pos - 0.4 + 0.45 * max(0, n_logits - 2))
    ax.set_ylim(-0.5, n_layers + 1.8)
    ax.set_title(title or f"Attribution graph: {len(features)} features, {len(edges)} edges "
                          f"(blue +, red −; grey squares are error nodes)", fontsize=10)
    ax.grid(axis="y", alpha=0.2)
    plt.tight_layout()
    return ax
