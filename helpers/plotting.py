"""Plots the lessons share: head heat maps, line and bar charts, and an attention viewer.

Every function draws with matplotlib, so figures appear in any notebook viewer (JupyterLab,
VS Code, a static HTML render, GitHub). :func:`attention_viewer` adds an ipywidgets layer/head
selector where widgets run, and a static picture of the default head where they do not.
"""
from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Sequence
from typing import Any, cast

import matplotlib.pyplot as plt
import numpy as np
import torch
from jaxtyping import Float
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from torch import Tensor
from transformer_lens import HookedTransformerConfig

Number = float | int | np.floating | np.integer    # beartype (the tests' checker) takes no int as a float

__all__ = ["heatmap", "line", "bar", "attention_plot", "attention_viewer", "show_code", "draw_architecture"]


def _numpy(x: torch.Tensor | np.ndarray | Sequence[Number]) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def _axes(ax: Axes | None, figsize: tuple[Number, Number]) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def heatmap(scores: torch.Tensor | np.ndarray, title: str = "", *, xlabel: str = "head", ylabel: str = "layer",
            xticklabels: Sequence[str] | None = None, yticklabels: Sequence[str] | None = None,
            cmap: str | None = None, vmin: Number | None = None, vmax: Number | None = None,
            annotate: bool = True, highlight: Sequence[tuple[int, int]] = (), cbar_label: str = "",
            ax: Axes | None = None) -> Axes:
    """Colour a 2-D table, e.g. one score per head: ``scores`` is ``[layer, head]`` (rows, columns).

    Values are written in the cells when ``annotate``; cells listed in ``highlight`` as
    ``(row, column)`` get a black frame. Tables with negative values get a red-blue map centred at 0.
    ``cbar_label`` names the unit of the colour bar (e.g. "logit", "nats").
    """
    values = _numpy(scores)
    n_rows, n_cols = values.shape
    ax = _axes(ax, (min(1.0 + 0.75 * n_cols, 13), 0.9 + 0.55 * n_rows))
    if cmap is None and values.min() < 0:
        cmap, limit = "RdBu", np.abs(values).max() or 1.0
        vmin, vmax = (-limit if vmin is None else vmin), (limit if vmax is None else vmax)
    image = ax.imshow(values, cmap=cmap or "Blues", vmin=None if vmin is None else float(vmin),
                      vmax=None if vmax is None else float(vmax), aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label=cbar_label or None)
    ax.set_xticks(range(n_cols), list(xticklabels) if xticklabels is not None else [str(i) for i in range(n_cols)])
    ax.set_yticks(range(n_rows), list(yticklabels) if yticklabels is not None else [str(i) for i in range(n_rows)])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if annotate and values.size <= 400:
        low, high = image.get_clim()
        diverging = image.get_cmap().name == "RdBu"
        for (row, col), value in np.ndenumerate(values):
            share = (value - low) / ((high - low) or 1.0)            # 0 at the light end, 1 at the dark end
            dark = abs(share - 0.5) > 0.3 if diverging else share > 0.6
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    for row, col in highlight:
        ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2.5))
    return ax


def line(series: dict[str, torch.Tensor | Sequence[Number]] | torch.Tensor | Sequence[Number], title: str = "", *,
         xlabel: str = "", ylabel: str = "", xticklabels: Sequence[str] | None = None,
         vlines: dict[str, Number] | None = None, ax: Axes | None = None) -> Axes:
    """One line per entry of ``series`` (a dict name -> values ``[n]``, or one sequence).

    ``vlines`` maps a label to an x position where a dashed vertical line is drawn.
    """
    series = series if isinstance(series, dict) else {"": series}
    ax = _axes(ax, (9, 3.5))
    for name, values in series.items():
        ax.plot(_numpy(values), marker="." if len(_numpy(values)) < 60 else None, label=name or None)
    for name, x in (vlines or {}).items():
        ax.axvline(float(x), color="grey", linestyle="--")
        ax.text(float(x), ax.get_ylim()[1], f" {name}", va="top", color="grey")
    if xticklabels is not None:
        ax.set_xticks(range(len(xticklabels)), xticklabels, rotation=90 if len(xticklabels) > 12 else 0)
    if any(series):
        ax.legend()
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    return ax


def bar(values: dict[str, Number] | torch.Tensor | Sequence[Number], title: str = "", *,
        labels: Sequence[str] | None = None, ylabel: str = "", hline: Number | None = None,
        ax: Axes | None = None) -> Axes:
    """A bar per value; ``values`` is a dict label -> number, or numbers with ``labels``.

    ``hline`` draws a dashed horizontal reference line (e.g. a baseline).
    """
    if isinstance(values, dict):
        labels, values = list(values), list(values.values())
    heights = _numpy(values)
    labels = list(labels) if labels is not None else [str(i) for i in range(len(heights))]
    labels = [textwrap.fill(str(label), 14) for label in labels]           # long labels wrap onto more lines
    longest = max((len(line) for label in labels for line in label.splitlines()), default=0)
    slot = 0.5 if len(heights) > 8 else max(0.5, 0.09 * longest)            # inches per bar
    ax = _axes(ax, (max(4.0, slot * len(heights) + 2), 3.5))
    ax.bar(range(len(heights)), heights, color=["tab:red" if h < 0 else "tab:blue" for h in heights])
    ax.set_xticks(range(len(heights)), labels, rotation=90 if len(heights) > 8 else 0)
    if hline is not None:
        ax.axhline(float(hline), color="grey", linestyle="--")
    ax.set(title=title, ylabel=ylabel)
    ax.grid(alpha=0.3, axis="y")
    return ax


def _short_token(token: str, width: int = 12) -> str:
    """``repr(token)``, shortened in the middle with an ellipsis so that both quotes stay visible."""
    text = repr(token)
    return text if len(text) <= width else text[: width - 2] + "…" + text[-1]


def attention_plot(pattern: Float[Tensor, "query_pos key_pos"] | np.ndarray, str_tokens: Sequence[str],
                   title: str = "", *, ax: Axes | None = None) -> Axes:
    """Static heat map of one head's attention: ``pattern`` is ``[query_pos, key_pos]`` for one prompt.

    Row ``q`` shows how the token at position ``q`` spreads its attention over positions ``0..q``.
    """
    values = _numpy(pattern)
    labels = [f"{i}:{_short_token(t)}" for i, t in enumerate(str_tokens)]
    size = 2.5 + 0.32 * len(labels)
    ax = _axes(ax, (size + 1, size))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1)
    ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set(xlabel="key: position attended to", ylabel="query: position attending", title=title)
    return ax


def attention_viewer(patterns: Float[Tensor, "layer head_index query_pos key_pos"], str_tokens: Sequence[str],
                     layer: int = 0, head: int = 0) -> None:
    """Pick a layer and a head from drop-downs and see that head's attention pattern.

    ``patterns`` is ``[layer, head_index, query_pos, key_pos]`` for one prompt, e.g.
    ``torch.stack([cache["pattern", layer][0] for layer in range(model.cfg.n_layers)])``.

    Shows an ipywidgets selector (interactive in JupyterLab, Notebook, VS Code). The selector and a
    PNG of ``(layer, head)`` go out as *one* output with two forms, so a front end that runs
    widgets shows only the selector, and any other viewer (GitHub, nbviewer, a static HTML render)
    shows only the picture. Without ipywidgets, the plain static plot is drawn.
    """
    from IPython.display import display

    n_layers, n_heads = patterns.shape[:2]
    try:
        import ipywidgets as widgets

        layer_box = widgets.Dropdown(options=list(range(n_layers)), value=layer, description="layer")
        head_box = widgets.Dropdown(options=list(range(n_heads)), value=head, description="head")
        output = widgets.Output()

        def redraw(_: object = None) -> None:
            with output:
                output.clear_output(wait=True)
                attention_plot(patterns[layer_box.value, head_box.value], str_tokens,
                               f"layer {layer_box.value}, head {head_box.value} (pick another above)")
                plt.show()

        layer_box.observe(redraw, names="value")
        head_box.observe(redraw, names="value")
        redraw()
        view = widgets.VBox([widgets.HBox([layer_box, head_box]), output])._repr_mimebundle_()
    except ImportError:  # no ipywidgets: a static plot is all there is
        attention_plot(patterns[layer, head], str_tokens, f"layer {layer}, head {head}")
        plt.show()
        return
    # One output with two forms: front ends that run widgets show the selector, others the picture.
    figure = cast(Figure, attention_plot(patterns[layer, head], str_tokens, f"layer {layer}, head {head}").figure)
    png = io.BytesIO()
    figure.savefig(png, format="png", bbox_inches="tight")
    plt.close(figure)
    display({**view, "image/png": base64.b64encode(png.getvalue()).decode("ascii")}, raw=True)


def show_code(obj: Any):
    """Display the source code of a function or class, syntax-highlighted, in a notebook.

    Lessons call it right before they use a helper for an idea they teach, so that the idea is on the page.
    """
    import inspect

    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


def draw_architecture(cfg: HookedTransformerConfig, ax: Axes | None = None) -> Axes:
    """A picture of a transformer, drawn from its config (a ``HookedTransformerConfig``, ``model.cfg``).

    From the bottom up: the tokens, the embeddings (``W_E``, ``W_pos``), the residual stream as a bus
    running up the left, each block's attention (``n_heads`` heads) and MLP (``d_mlp`` neurons) reading
    from it and adding back to it, then the unembedding ``W_U`` and the logits. Blocks are numbered from 0,
    and the stream is labelled where it enters each block (``resid_pre L``), as TransformerLens names it.
    """
    parts = [f"attention: {cfg.n_heads} heads\nmove information between positions"]
    if not cfg.attn_only:
        parts.append(f"MLP: {cfg.d_mlp:,} neurons\nworks on each position alone")
    step = 1.0 * len(parts) + 0.6
    top = 2.3 + step * cfg.n_layers
    ax = _axes(ax, (8, 0.62 * (top + 2.4)))
    ax.set(xlim=(0, 10), ylim=(0, top + 2.4))
    ax.axis("off")

    def box(y: float, text: str, color: str, x: float = 0.4, w: float = 3.6, h: float = 0.8) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="black", lw=0.8))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)

    def arrow(x0: float, y0: float, x1: float, y1: float, text: str = "") -> None:
        ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "->", "lw": 1.1})
        if text:
            ax.text((x0 + x1) / 2, y0 + 0.06, text, ha="center", va="bottom", fontsize=7, color="dimgrey")

    bus = 2.2
    box(0.1, f"tokens: one id (of {cfg.d_vocab:,}) per position", "white")
    box(1.3, f"embeddings: W_E [{cfg.d_vocab:,}, {cfg.d_model}]\n+ W_pos [{cfg.n_ctx}, {cfg.d_model}]", "#e3e3f3")
    arrow(bus, 0.9, bus, 1.3)
    ax.plot([bus, bus], [2.1, top + 0.45], color="tab:blue", lw=7, alpha=0.35, solid_capstyle="butt")
    ax.text(0.6, (2.1 + top) / 2, f"residual stream\n{cfg.d_model} numbers\nper position",
            rotation=90, ha="center", va="center", fontsize=8.5, color="tab:blue")
    for layer in range(cfg.n_layers):
        y0 = 2.5 + step * layer
        ax.text(bus + 0.12, y0 - 0.25, f"resid_pre {layer}", fontsize=7, color="tab:blue")
        ax.text(9.9, y0 + step / 2 - 0.3, f"block {layer}", rotation=90, ha="center", va="center", fontsize=9)
        ax.add_patch(FancyBboxPatch((4.6, y0 - 0.05), 5.0, step - 0.5, boxstyle="round,pad=0.05",
                                    fc="none", ec="grey", ls="--", lw=0.8))
        for k, text in enumerate(parts):
            y = y0 + 1.0 * k
            box(y, text, "#fbe0d6" if k == 0 else "#dcefd9", x=4.8, w=4.6)
            arrow(bus, y + 0.2, 4.8, y + 0.2, "read (LayerNorm)")
            arrow(4.8, y + 0.62, bus, y + 0.62, "add")
    box(top + 0.45, f"LayerNorm, then unembedding\nW_U [{cfg.d_model}, {cfg.d_vocab:,}]", "#e3e3f3")
    box(top + 1.5, f"logits: {cfg.d_vocab:,} scores per position\n(softmax: probabilities of the next token)",
        "white")
    arrow(bus, top + 1.25, bus, top + 1.5)
    ax.set_title(f"{cfg.n_layers} blocks of {cfg.n_heads} heads{'' if cfg.attn_only else ' and an MLP'}, "
                 f"d_model = {cfg.d_model}", fontsize=10)
    return ax
