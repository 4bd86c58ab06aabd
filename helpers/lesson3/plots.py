"""Lesson 3's figures: a circuit of heads as a graph (:func:`plot_circuit`), and a pruned attribution graph
(:func:`plot_attribution_graph`, placed by :func:`attribution_graph_layout`), drawn with matplotlib since
circuit-tracer's own front end loads its scripts from the internet."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import matplotlib.pyplot as plt
import torch
from circuit_tracer.graph import Graph, compute_node_influence
from jaxtyping import Bool
from torch import Tensor

from helpers.lesson3.graphs import FeatureLabels, graph_features, node_kinds
from helpers.lesson3.reference import Head

__all__ = ["plot_circuit", "GraphLayout", "attribution_graph_layout", "columns_per_cell", "plot_attribution_graph"]


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
    ax.set_yticks(range(-1, n_layers + 1), ["embeddings", *[f"block {layer}" for layer in range(n_layers)], "logits"])
    ax.tick_params(left=True, labelleft=True)
    ax.set_xlim(-1.5, 2.5)
    ax.set_title(title)
    ax.axis("on")
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return ax


FIGURE_WIDTH = 11.0               # inches: the width of a notebook's page
_GRAPH_LEFT, _GRAPH_WIDTH = 0.09, 0.89   # the graph's axes, as shares of the figure's width (the key is below)
_GRAPH_HEIGHT = 6.0              # inches: the graph's axes (the key below adds its own lines)
NodeKind = Literal["feature", "error", "token", "logit"]
SLOT_ROWS = 3                  # a cell holds up to SLOT_ROWS rows of nodes, ``columns`` to a row
_DY = 0.27                     # spacing of those rows, in layers (a row of the figure is 1)
NODE_SPACING_PT = 18.0         # nodes of one cell stand at least this far apart, centre to centre
NODE_SIZE = 230                # a feature's circle (points squared: about 15 points across)
NUMBER_FONTSIZE = 8.0          # the feature's number inside its circle
KEY_FONTSIZE, KEY_LINE_PT, KEY_COLUMNS = 9.0, 13.0, 3


def _dx(columns: int) -> float:
    """Horizontal spacing, in token columns, of ``columns`` nodes side by side in one cell."""
    return min(0.45, 0.9 / columns)


def _slots(count: int, columns: int) -> list[tuple[float, float]]:
    """Offsets of ``count`` nodes within one cell, as a centred grid ``columns`` wide (one row if they fit)."""
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    dx = _dx(columns)
    offsets = []
    for k in range(count):
        r, c = divmod(k, columns)
        in_row = min(columns, count - r * columns)               # the last row is centred on its own
        offsets.append((dx * (c - (in_row - 1) / 2), _DY * ((rows - 1) / 2 - r)))
    return offsets


@dataclass(frozen=True)
class GraphLayout:
    """Where :func:`plot_attribution_graph` draws each node of a pruned graph.

    Rows (``y``): 0 is the token embeddings, ``L + 1`` the features and error node of block ``L``'s
    transcoder, ``n_layers + 1`` the logits. Columns (``x``): token positions; a node sits within
    ±0.5 of its own position (features and an error node spread over a small grid in their cell,
    logit nodes stacked in the last position's column).

    ``coords`` maps every drawn node (a row of ``graph.adjacency_matrix``) to ``(x, y)``; ``kinds``
    says what each is; ``numbers`` gives every drawn feature its number in the key, in the order of
    (position, block, feature index), which is also reading order (left to right, bottom to top, and
    within a cell left to right, top to bottom); ``hidden`` maps a cell ``(row, position)`` with more
    features than it has room for to ``(x, y, n)``: where its "+n" stands and how many features it
    leaves out (the least influential ones of that cell).
    """

    coords: dict[int, tuple[float, float]]
    kinds: dict[int, NodeKind]
    numbers: dict[int, int]
    hidden: dict[tuple[int, int], tuple[float, float, int]]


def attribution_graph_layout(graph: Graph, node_mask: Bool[Tensor, "node"], columns: int = 2) -> GraphLayout:
    """Place the kept nodes of ``graph`` (``node_mask``, from ``prune_graph``) on a grid of layers by positions.

    A cell (one block's transcoder at one token) holds at most ``columns * SLOT_ROWS`` nodes: its
    kept error node and its most influential features on the logits (circuit-tracer's
    ``compute_node_influence``), drawn in the order of their feature index; when they do not fit, the
    last free slot shows "+n" instead.
    """
    if not 1 <= columns <= 4:
        raise ValueError(f"columns must be 1 to 4, not {columns}")
    per_cell = columns * SLOT_ROWS
    kinds_ = node_kinds(graph)
    n_layers, n_pos = graph.cfg.n_layers, graph.n_pos
    weights = torch.zeros(graph.adjacency_matrix.shape[0])
    weights[kinds_.logits] = graph.logit_probabilities
    influence = compute_node_influence(graph.adjacency_matrix, weights)
    cells: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for node, layer, pos, feature in graph_features(graph, node_mask):
        cells.setdefault((layer + 1, pos), []).append((node, feature))
    errors = {}
    for node in range(kinds_.errors.start, kinds_.errors.stop):
        if node_mask[node]:
            layer, pos = divmod(node - kinds_.errors.start, n_pos)
            errors[(layer + 1, pos)] = node
    coords: dict[int, tuple[float, float]] = {}
    kinds: dict[int, NodeKind] = {}
    hidden: dict[tuple[int, int], tuple[float, float, int]] = {}
    drawn: list[tuple[int, int, int, int]] = []              # (pos, row, slot, node) of the drawn features
    for cell in sorted(set(cells) | set(errors)):
        row, pos = cell
        features = sorted(cells.get(cell, []), key=lambda nf: -influence[nf[0]].item())
        has_error = cell in errors
        room = per_cell - has_error
        shown = features if len(features) <= room else features[:max(room - 1, 0)]
        n_hidden = len(features) - len(shown)
        shown = sorted(shown, key=lambda nf: nf[1])               # by feature index, as the key lists them
        slots = _slots(len(shown) + (n_hidden > 0) + has_error, columns)
        for slot, (node, _) in enumerate(shown):
            coords[node] = (pos + slots[slot][0], row + slots[slot][1])
            kinds[node] = "feature"
            drawn.append((pos, row, slot, node))
        if n_hidden:
            dx, dy = slots[len(shown)]
            hidden[cell] = (pos + dx, row + dy, n_hidden)
        if has_error:
            coords[errors[cell]] = (pos + slots[-1][0], row + slots[-1][1])
            kinds[errors[cell]] = "error"
    for pos in range(n_pos):
        coords[kinds_.tokens.start + pos] = (float(pos), 0.0)
        kinds[kinds_.tokens.start + pos] = "token"
    n_logits = len(graph.logit_targets)
    for i in range(n_logits):
        coords[kinds_.logits.start + i] = (float(n_pos - 1), n_layers + 1 + 0.22 * ((n_logits - 1) / 2 - i))
        kinds[kinds_.logits.start + i] = "logit"
    numbers = {node: k for k, (*_, node) in enumerate(sorted(drawn), 1)}
    return GraphLayout(coords, kinds, numbers, hidden)


def _column_pt(n_pos: int) -> float:
    """The width of one token's column of the graph, in points."""
    return FIGURE_WIDTH * 72 * _GRAPH_WIDTH / n_pos


def columns_per_cell(n_pos: int) -> int:
    """How many nodes :func:`plot_attribution_graph` puts side by side in a cell of a graph of ``n_pos``
    tokens: as many as stand ``NODE_SPACING_PT`` points apart in one token's column (1 to 4)."""
    fits = [c for c in range(1, 5) if _dx(c) * _column_pt(n_pos) >= NODE_SPACING_PT]
    return max(fits, default=1)


def _token_names(graph: Graph, tokenizer) -> list[str]:
    names = []
    for pos, token in enumerate(graph.input_tokens.tolist()):
        text = tokenizer.decode(token)
        names.append("<bos>" if pos == 0 and token == tokenizer.bos_token_id else (text.strip() or repr(text)))
    return names


def plot_attribution_graph(graph: Graph, node_mask: Bool[Tensor, "node"], edge_mask: Bool[Tensor, "node node"],
                           tokenizer, labels: FeatureLabels | None = None, title: str = "") -> plt.Axes:
    """Draw a pruned attribution graph, 11 inches wide, with its key below it.

    Rows are the token embeddings (bottom), the features of each block's transcoder, and the logits
    (top); columns are token positions, and every node stands in its own token's column (see
    :func:`attribution_graph_layout`). Features are numbered orange circles, error nodes grey
    squares, logits green diamonds with their token and probability. Edges are kept edges between
    drawn nodes, blue when the source pushes its target up, red when it pushes it down, thicker when
    stronger; edges into the logits other than the top one are drawn faint grey, so that what feeds
    the top logit stands out. The key lists every numbered feature by token, in the order of its
    number (block, then feature index): ``layer/feature`` and, with ``labels``, its ground-truth label.
    Returns the graph's axes (the key is a second axes of the same figure).
    """
    kinds_ = node_kinds(graph)
    n_layers, n_pos = graph.cfg.n_layers, graph.n_pos
    layout = attribution_graph_layout(graph, node_mask, columns_per_cell(n_pos))
    tokens = _token_names(graph, tokenizer)
    features = {f.node: f for f in graph_features(graph, node_mask)}
    by_token: dict[int, list[int]] = {}
    for node in sorted(layout.numbers, key=layout.numbers.__getitem__):
        by_token.setdefault(features[node].pos, []).append(node)

    n_logits = len(graph.logit_targets)
    legend = [("o", "tab:orange", "feature (its number is listed below)"),
              ("s", "lightgray", "error node: what the transcoder misses"),
              ("D", "tab:green", "logit, with its probability"),
              ("_", "tab:blue", "edge that pushes its target up"),
              ("_", "tab:red", "edge that pushes its target down")]
    if n_logits > 1:
        legend.append(("_", "silver", "edge into a logit other than the top one"))
    if layout.hidden:
        legend.append(("$+$", "dimgray", "+n: n weaker features, not drawn"))
    lines: list[tuple[str, Any]] = [("legend", item) for item in legend]
    for pos, nodes in by_token.items():
        lines.append(("token", pos))
        lines += [("feature", node) for node in nodes]
    per_column = math.ceil(len(lines) / KEY_COLUMNS)
    for _ in range(KEY_COLUMNS):                  # a token's heading never ends a column: move it to the next
        ends = [k for k in range(per_column - 1, len(lines) - 1, per_column) if lines[k][0] == "token"]
        if not ends:
            break
        lines.insert(ends[0], ("blank", None))
        per_column = max(per_column, math.ceil(len(lines) / KEY_COLUMNS))
    flat = max(len(t) for t in tokens) * 0.62 * 10 <= 0.95 * _column_pt(n_pos)   # every token fits level
    key_height = (per_column + 0.5) * KEY_LINE_PT / 72
    top, ticks = 0.4, 0.45 if flat else 0.8                          # inches: title; token labels
    height = top + _GRAPH_HEIGHT + ticks + key_height + 0.1
    fig = plt.figure(figsize=(FIGURE_WIDTH, height))
    ax = fig.add_axes((_GRAPH_LEFT, (ticks + key_height + 0.1) / height, _GRAPH_WIDTH, _GRAPH_HEIGHT / height))
    key = fig.add_axes((0.01, 0.05 / height, 0.98, key_height / height))

    adjacency = graph.adjacency_matrix
    edges = [(t, s, adjacency[t, s].item()) for t, s in edge_mask.nonzero().tolist()
             if t in layout.coords and s in layout.coords]
    top_logit = kinds_.logits.start
    faded = {t for t in range(kinds_.logits.start, kinds_.logits.stop) if t != top_logit}
    scale = max((abs(w) for t, _, w in edges if t not in faded), default=1.0)
    for t, s, w in sorted(edges, key=lambda e: (e[0] not in faded, abs(e[2]))):
        (x0, y0), (x1, y1) = layout.coords[s], layout.coords[t]
        if t in faded:
            ax.plot([x0, x1], [y0, y1], color="silver", zorder=1, alpha=0.35, linewidth=0.5)
        else:
            ax.plot([x0, x1], [y0, y1], color="tab:blue" if w > 0 else "tab:red", zorder=1,
                    alpha=min(0.85, 0.08 + 0.8 * abs(w) / scale), linewidth=0.4 + 3.0 * abs(w) / scale)
    markers: dict[str, dict[str, Any]] = {
        "feature": dict(s=NODE_SIZE, color="tab:orange", edgecolor="black", linewidth=0.6),
        "error": dict(s=110, marker="s", color="lightgray", edgecolor="dimgray"),
        "token": dict(s=25, color="dimgray"),
        "logit": dict(s=70, marker="D", color="tab:green", edgecolor="black")}
    for kind, style in markers.items():
        points = [xy for node, xy in layout.coords.items() if layout.kinds[node] == kind]
        if points:
            ax.scatter(*zip(*points), zorder=3, **style)
    for node, number in layout.numbers.items():
        ax.annotate(str(number), layout.coords[node], fontsize=NUMBER_FONTSIZE, fontweight="bold",
                    ha="center", va="center", zorder=4)
    for x, y, n in layout.hidden.values():
        ax.annotate(f"+{n}", (x, y), fontsize=9, color="dimgray", ha="center", va="center", zorder=4)
    for i, (target, p) in enumerate(zip(graph.logit_targets, graph.logit_probabilities.tolist())):
        ax.annotate(f"{target.token_str.strip()} {p:.2f}", layout.coords[kinds_.logits.start + i], fontsize=9,
                    ha="right", va="center", xytext=(-8, 0), textcoords="offset points", zorder=4)
    for pos in range(n_pos - 1):
        ax.axvline(pos + 0.5, color="lightgray", linewidth=0.6, zorder=0)
    for row in range(n_layers + 1):
        ax.axhline(row + 0.5, color="lightgray", linewidth=0.6, zorder=0)
    ax.set_xticks(range(n_pos), tokens, rotation=0 if flat else 90, ha="center", fontsize=10)
    ax.set_yticks(range(n_layers + 2), ["embeddings", *[f"block {layer}\ntranscoder" for layer in range(n_layers)],
                                        "logits"], fontsize=9)
    ax.tick_params(length=0)
    ax.set_xlim(-0.5, n_pos - 0.5)
    ax.set_ylim(-0.5, n_layers + 1.65)
    drawn = len(layout.numbers)
    ax.set_title(title or f"Attribution graph: {len(features)} kept features"
                          + (f" ({drawn} drawn)" if drawn < len(features) else "") + f", {len(edges)} edges drawn",
                 fontsize=11)

    key.set_xlim(0, KEY_COLUMNS)
    key.set_ylim(per_column - 0.5, -0.5)                  # one line every KEY_LINE_PT points
    key.axis("off")
    names = []
    for k, (kind, item) in enumerate(lines):
        column, line = divmod(k, per_column)
        x = column + 0.02
        if kind == "legend":
            marker, colour, meaning = item
            key.scatter(x + 0.03, line, marker=marker, s=60, color=colour,
                        edgecolor="black" if marker in "osD" else None, linewidths=2 if marker == "_" else 0.6)
            key.text(x + 0.09, line, meaning, fontsize=KEY_FONTSIZE, va="center")
        elif kind == "token":
            key.text(x, line, f"features at “{tokens[item]}” (layer/index: label)", fontsize=KEY_FONTSIZE,
                     fontweight="bold", va="center")
        elif kind == "feature":
            f = features[item]
            name = f"{f.layer}/{f.feature}" + (f": {labels(f.layer, f.feature)}" if labels is not None else "")
            key.text(x + 0.01, line, f"{layout.numbers[item]:>2}", fontsize=KEY_FONTSIZE, fontweight="bold",
                     va="center")
            names.append((column, key.text(x + 0.09, line, name, fontsize=KEY_FONTSIZE, va="center")))
    fig.canvas.draw()
    for column, text in names:                               # shorten a label that would run into the next column
        right = key.transData.transform((column + 0.98, 0))[0]
        while text.get_window_extent().x1 > right and len(text.get_text()) > 12:
            text.set_text(text.get_text()[:-2] + "…")
    return ax
