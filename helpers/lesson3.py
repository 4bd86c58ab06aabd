"""Lesson 3 (activation patching and circuits): prompt sets, reference code, plots and the workbook's checks.

The lesson notebook and its workbook import this module. It holds:

* matched clean / corrupted prompt sets built from the labelled corpus (:func:`ioi_patching_data`), and
  from IOI templates outside it (:func:`ioi_template_patching_data`);
* the reference version of every workbook exercise (the logit-difference metric, a residual-stream
  patching sweep, patching one head, mean ablation, circuit faithfulness, attribution patching);
* a drawing of a circuit as a graph, and one ``check_*`` per exercise.

Shapes: ``batch`` prompts, ``pos`` positions (BOS included), ``d_model`` residual width,
``head_index`` heads per layer, ``d_head`` width of one head, ``d_vocab`` vocabulary.
A head is written ``(layer, head)``; ``"1.4"`` in prose.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import torch
from transformer_lens import ActivationCache, HookedTransformer
from transformer_lens.utils import get_act_name

from helpers import corpus
from helpers import corpus_data as data
from helpers.checks import Case, CheckResult, check_function, single_threaded
from helpers.lesson1 import _model  # the checks' own cached copies of the course models (and a tiny random one)

Head = tuple[int, int]
Metric = Callable[[torch.Tensor], torch.Tensor]

FACT_CLEAN = "The Eiffel Tower is in the city of"
FACT_CORRUPT_SYLLABUS = "The Colosseum is in the city of"     # one token shorter than FACT_CLEAN
FACT_CORRUPT = "The Trevi Fountain is in the city of"         # also Rome, and as long as FACT_CLEAN

__all__ = [
    "FACT_CLEAN", "FACT_CORRUPT_SYLLABUS", "FACT_CORRUPT", "IOIPatchingData", "ioi_patching_data",
    "SUBJECT_ACTS_FIRST", "ioi_template_patching_data", "family_metrics",
    "logit_diff", "normalized_metric", "patch_residual_by_layer_pos", "patch_head_output",
    "head_means", "run_with_mean_ablation", "circuit_faithfulness", "attribution_patch_heads",
    "heads_by_effect", "plot_circuit", "check_logit_diff", "check_patch_residual_by_layer_pos",
    "check_patch_head_output", "check_run_with_mean_ablation", "check_circuit_faithfulness",
    "check_attribution_patch_heads",
]


# =====================================================================================
# Prompt sets
# =====================================================================================

@dataclass
class IOIPatchingData:
    """Matched IOI prompts: clean and corrupted differ only in the names, position by position.

    ``clean_tokens``, ``corrupted_tokens``: ``[batch, pos]`` (BOS first; every prompt of the set
    has the same length). ``answer_tokens``: ``[batch, 2]``, the IO name then the subject's name
    (the right and the wrong answer on the clean prompt). ``positions``: role -> ``[batch]``
    token index (``"io"``, ``"s1"``, ``"s2"``, ``"end"``). The corrupted prompt replaces the three
    name slots with three other names (the "ABC" distribution): no name is repeated, so nothing
    in it says which of the clean prompt's names is the answer.
    """

    clean_tokens: torch.Tensor
    corrupted_tokens: torch.Tensor
    answer_tokens: torch.Tensor
    positions: dict[str, torch.Tensor]
    examples: list[corpus.Example]

    def __len__(self) -> int:
        return len(self.examples)


def ioi_patching_data(model: HookedTransformer, n: int = 64, *, opening: int = 0, action: int = 0,
                      split: str = "train", seed: int = 0, order: str | None = None) -> IOIPatchingData:
    """``n`` IOI prompts from one template (``data.IOI_OPENINGS[opening]`` + ``data.IOI_ACTIONS[action]``).

    One template keeps every prompt the same length, so activations line up position by position
    across the batch (what patching by position needs). Names, places and objects vary; so does the
    name order unless ``order`` is ``"ABBA"`` (IO named first: every role at the same position in
    every prompt) or ``"BABA"``. ``split`` picks the name pairs (``"test"``: pairs never seen in training).
    """
    examples = corpus.ioi_examples(n if order is None else 3 * n, split, seed, templates=[(opening, action)])
    if order is not None:
        examples = [ex for ex in examples if ex.labels["order"] == order][:n]
    rng = random.Random(seed + 1)
    corrupted_texts = []
    for ex in examples:
        others = rng.sample([name for name in data.NAMES if name not in (ex.labels["io"], ex.labels["s"])], 3)
        text, shift = ex.prompt, 0
        spans = sorted((ex.spans[r], i) for i, r in enumerate(("s1", "io", "s2")))
        # The two first-mention slots get two new names and S2 a third one: "A and B ..., C gave".
        for (start, end), i in spans:
            new = others[i]
            text = text[:start + shift] + new + text[end + shift:]
            shift += len(new) - (end - start)
        corrupted_texts.append(text)
    clean_tokens = model.to_tokens([ex.prompt for ex in examples])
    corrupted_tokens = model.to_tokens(corrupted_texts)
    if clean_tokens.shape != corrupted_tokens.shape:
        raise ValueError("clean and corrupted prompts tokenized to different lengths")
    return _patching_data(model, examples, clean_tokens, corrupted_tokens, ("io", "s1", "s2", "end"))


def _patching_data(model: HookedTransformer, examples: list[corpus.Example], clean_tokens: torch.Tensor,
                   corrupted_tokens: torch.Tensor, roles: Sequence[str]) -> IOIPatchingData:
    """Bundle tokenized prompts ``[batch, pos]`` with their answers ``[batch, 2]`` (IO, S) and the
    token position ``[batch]`` of each role."""
    answer_tokens = torch.tensor([[model.to_single_token(" " + ex.labels["io"]),
                                   model.to_single_token(" " + ex.labels["s"])] for ex in examples])
    positions = {r: torch.tensor([corpus.token_positions(ex, model.tokenizer)[r] for ex in examples])
                 for r in roles}
    return IOIPatchingData(clean_tokens, corrupted_tokens, answer_tokens, positions, examples)


# Outside the corpus: the subject first does something to the IO, *then* gives. [A] and [B] are the
# opening's two names; [S] is the subject's second mention (S2) and [IO] the IO's second mention (IO2),
# which is now the last name before the end. Every corpus template ends "[S] <action> to" instead, so
# there the last name before the end is always S2. Every word is in course-4l's vocabulary, and every
# action has the same number of tokens, so one batch can mix them.
SUBJECT_ACTS_FIRST = [
    "[S] helped [IO] and gave a [OBJECT] to",
    "[S] called [IO] and handed the [OBJECT] to",
    "[S] saw [IO] and passed the [OBJECT] to",
    "[S] asked [IO] and showed the [OBJECT] to",
    "[S] found [IO] and sent a [OBJECT] to",
    "[S] paid [IO] and offered a [OBJECT] to",
]


def ioi_template_patching_data(model: HookedTransformer, actions: Sequence[str], n: int = 48, *, opening: int = 0,
                               order: str = "ABBA", split: str = "train", seed: int = 0) -> IOIPatchingData:
    """``n`` IOI prompts from action templates outside the corpus, after ``data.IOI_OPENINGS[opening]``.

    ``actions`` are templates like ``"[S] helped [IO] and gave a [OBJECT] to"`` (see
    :data:`SUBJECT_ACTS_FIRST`): ``[S]`` is the subject's second mention, ``[IO]`` a second mention of
    the indirect object. They must all tokenize to the same length; prompt ``k`` uses
    ``actions[k % len(actions)]``, so every action is used equally often. ``order`` fixes the opening's
    name order (``"ABBA"``: IO named first; ``"BABA"``: subject first). Name pairs come from
    ``corpus.ioi_name_pairs(split)``; places and objects from the corpus's lists.

    The answer is the IO, the name that is not the subject, as in the corpus. The corrupted prompt
    fills the same template with four other names, all different, so no name repeats in it.

    Returns:
        :class:`IOIPatchingData`: ``clean_tokens``, ``corrupted_tokens`` ``[batch, pos]``;
        ``answer_tokens`` ``[batch, 2]`` (IO, then subject); ``positions`` role -> ``[batch]`` for
        ``"io"``, ``"s1"`` (the opening's two names), ``"s2"``, ``"io2"`` and ``"end"``.
    """
    if order not in ("ABBA", "BABA"):
        raise ValueError(f"order must be 'ABBA' or 'BABA', not {order!r}")
    rng = random.Random(seed)
    pairs = corpus.ioi_name_pairs(split)
    opening_text, family = data.IOI_OPENINGS[opening]
    examples, corrupted_texts = [], []
    for k in range(n):
        io, s = rng.sample(rng.choice(pairs), 2)
        action = actions[k % len(actions)]
        first, second = (io, s) if order == "ABBA" else (s, io)
        values = {"A": first, "B": second, "S": s, "IO": io, "PLACE": rng.choice(data.PLACES),
                  "OBJECT": rng.choice(data.OBJECTS)}
        template = f"{opening_text} {action}"
        prompt, slots = corpus.fill(template, values)
        others = rng.sample([name for name in data.NAMES if name not in (io, s)], 4)
        corrupted_texts.append(corpus.fill(template, {**values, **dict(zip(("A", "B", "S", "IO"), others))})[0])
        io_key, s_key = ("A", "B") if order == "ABBA" else ("B", "A")
        spans = {"io": slots[io_key], "s1": slots[s_key], "s2": slots["S"], "io2": slots["IO"],
                 "end": (len(prompt) - len(prompt.split()[-1]), len(prompt))}
        spans["answer"] = (len(prompt) + 1, len(prompt) + 1 + len(io))
        labels = {"io": io, "s": s, "order": order, "opening": opening, "action": action, "family": family,
                  "place": values["PLACE"], "object": values["OBJECT"]}
        examples.append(corpus.Example(f"{prompt} {io}.", "ioi", prompt, " " + io, labels, spans, split))
    lengths = {len(model.tokenizer(text)["input_ids"]) for text in [ex.prompt for ex in examples] + corrupted_texts}
    if len(lengths) > 1:
        raise ValueError(f"the prompts tokenized to different lengths {sorted(lengths)}: every action must have "
                         "as many tokens")
    return _patching_data(model, examples, model.to_tokens([ex.prompt for ex in examples]),
                          model.to_tokens(corrupted_texts), ("io", "s1", "s2", "io2", "end"))


# =====================================================================================
# Exercise 1: the metric
# =====================================================================================

def logit_diff(logits: torch.Tensor, answer_tokens: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of logit(right answer) - logit(wrong answer) at the last position.

    Args:
        logits: ``[batch, pos, d_vocab]``, the model's output.
        answer_tokens: ``[batch, 2]``; column 0 the right answer's token id, column 1 the wrong one's.

    Returns:
        A scalar tensor (0-dimensional). Positive when the model prefers the right answer.
    """
    final = logits[:, -1, :]                                         # [batch, d_vocab]
    right = final.gather(-1, answer_tokens[:, :1]).squeeze(-1)       # [batch]
    wrong = final.gather(-1, answer_tokens[:, 1:]).squeeze(-1)       # [batch]
    return (right - wrong).mean()


def normalized_metric(logits: torch.Tensor, answer_tokens: torch.Tensor, clean_value: float,
                      corrupted_value: float) -> torch.Tensor:
    """The logit difference rescaled to 0 on the corrupted run and 1 on the clean run (a scalar)."""
    return (logit_diff(logits, answer_tokens) - corrupted_value) / (clean_value - corrupted_value)


# =====================================================================================
# Exercise 2: patching the residual stream by layer and position
# =====================================================================================

def patch_residual_by_layer_pos(model: HookedTransformer, corrupted_tokens: torch.Tensor,
                                clean_cache: ActivationCache, metric: Metric) -> torch.Tensor:
    """Patch the clean residual stream into the corrupted run, one (layer, position) at a time.

    For each layer ``L`` and position ``p``, run ``corrupted_tokens`` with ``blocks.L.hook_resid_pre``
    at position ``p`` replaced by the clean run's value (every prompt of the batch at once), and
    record ``metric(logits)``.

    Args:
        corrupted_tokens: ``[batch, pos]``.
        clean_cache: ``run_with_cache`` of the clean tokens (same shape).
        metric: maps logits ``[batch, pos, d_vocab]`` to a scalar tensor.

    Returns:
        ``[n_layers, pos]``: the metric after each patch.
    """
    n_pos = corrupted_tokens.shape[1]
    results = torch.zeros(model.cfg.n_layers, n_pos)
    for layer in range(model.cfg.n_layers):
        clean_resid = clean_cache["resid_pre", layer]                      # [batch, pos, d_model]
        for position in range(n_pos):
            def hook(resid: torch.Tensor, hook, position=position) -> torch.Tensor:
                resid[:, position] = clean_resid[:, position]
                return resid
            logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("resid_pre", layer), hook)])
            results[layer, position] = metric(logits).item()
    return results


# =====================================================================================
# Exercise 3: patching one head's output
# =====================================================================================

def patch_head_output(model: HookedTransformer, corrupted_tokens: torch.Tensor, clean_cache: ActivationCache,
                      layer: int, head: int, metric: Metric) -> float:
    """Run the corrupted tokens with one head's output (``hook_z``, every position) taken from the clean run.

    ``hook_z`` is ``[batch, pos, head_index, d_head]``: each head's weighted sum of values, just
    before the output matrix ``W_O`` mixes the heads back into the residual stream.

    Returns:
        ``metric(logits)`` of the patched run, as a float.
    """
    def hook(z: torch.Tensor, hook) -> torch.Tensor:
        z[:, :, head] = clean_cache["z", layer][:, :, head]
        return z
    logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])
    return metric(logits).item()


# =====================================================================================
# Exercise 4: mean ablation
# =====================================================================================

def head_means(model: HookedTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """Each head's output averaged over a batch of prompts: ``[n_layers, pos, head_index, d_head]``."""
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_z"))
    return torch.stack([cache["z", layer].mean(0) for layer in range(model.cfg.n_layers)])


def run_with_mean_ablation(model: HookedTransformer, tokens: torch.Tensor, heads: Sequence[Head],
                           means: torch.Tensor) -> torch.Tensor:
    """Run ``tokens`` with every head in ``heads`` replaced by its mean output.

    Args:
        tokens: ``[batch, pos]``.
        heads: ``(layer, head)`` pairs to ablate.
        means: ``[n_layers, pos, head_index, d_head]`` from :func:`head_means` (same ``pos``).

    Returns:
        logits ``[batch, pos, d_vocab]``.
    """
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def make_hook(layer: int, layer_heads: list[int]):
        def hook(z: torch.Tensor, hook) -> torch.Tensor:
            z[:, :, layer_heads] = means[layer][:, layer_heads]             # [pos, heads, d_head] broadcast
            return z
        return hook
    hooks = [(get_act_name("z", layer), make_hook(layer, hs)) for layer, hs in by_layer.items()]
    return model.run_with_hooks(tokens, fwd_hooks=hooks)


# =====================================================================================
# Exercise 5: faithfulness
# =====================================================================================

def all_heads(model: HookedTransformer) -> list[Head]:
    return [(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]


def circuit_faithfulness(model: HookedTransformer, tokens: torch.Tensor, answer_tokens: torch.Tensor,
                         circuit: Sequence[Head], means: torch.Tensor) -> float:
    """Share of the clean logit difference that the circuit alone keeps.

    Every head *not* in ``circuit`` is mean-ablated (:func:`run_with_mean_ablation`); the MLPs,
    embeddings and the circuit's heads run as usual. Returns
    ``logit_diff(ablated run) / logit_diff(clean run)``: 1 means the circuit alone does it all.
    """
    keep = set(map(tuple, circuit))
    outside = [h for h in all_heads(model) if h not in keep]
    clean = logit_diff(model(tokens), answer_tokens)
    ablated = logit_diff(run_with_mean_ablation(model, tokens, outside, means), answer_tokens)
    return (ablated / clean).item()


# =====================================================================================
# Exercise 6: attribution patching
# =====================================================================================

def attribution_patch_heads(model: HookedTransformer, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor,
                            metric: Metric) -> torch.Tensor:
    """Estimate, for every head at once, the effect of patching its clean output into the corrupted run.

    A first-order Taylor expansion around the corrupted run: the effect of head ``(L, H)`` is about
    ``sum over batch, pos, d_head of (clean_z - corrupted_z) * d metric / d z``, with the gradient
    taken on the corrupted run. One forward and one backward pass instead of one run per head.

    Returns:
        ``[n_layers, head_index]``: the estimated change of the metric.
    """
    terms = _attribution_terms(model, clean_tokens, corrupted_tokens, metric)
    return torch.stack([(delta * grad).sum(dim=(0, 1, 3)) for delta, grad in terms])


def _attribution_terms(model: HookedTransformer, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor,
                       metric: Metric) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: ``(clean_z - corrupted_z, d metric / d z on the corrupted run)``, each ``[batch, pos, head_index, d_head]``."""
    is_z = lambda name: name.endswith("hook_z")
    _, clean_cache = model.run_with_cache(clean_tokens, names_filter=is_z)
    corrupted_z, grads = {}, {}

    def save_act(z: torch.Tensor, hook) -> None:
        corrupted_z[hook.name] = z.detach()

    def save_grad(grad: torch.Tensor, hook) -> None:
        grads[hook.name] = grad.detach()
    with torch.enable_grad():
        with model.hooks(fwd_hooks=[(is_z, save_act)], bwd_hooks=[(is_z, save_grad)]):
            metric(model(corrupted_tokens)).backward()
    model.zero_grad(set_to_none=True)
    names = [get_act_name("z", layer) for layer in range(model.cfg.n_layers)]
    return [(clean_cache[name] - corrupted_z[name], grads[name]) for name in names]


# =====================================================================================
# Reading results
# =====================================================================================

def heads_by_effect(effects: torch.Tensor, k: int) -> list[Head]:
    """The ``k`` heads with the largest absolute effect, largest first. ``effects``: ``[n_layers, n_heads]``."""
    order = effects.abs().flatten().argsort(descending=True)[:k].tolist()
    return [divmod(i, effects.shape[1]) for i in order]


def family_metrics(model: HookedTransformer, prompts: IOIPatchingData, circuit: Sequence[Head],
                   head: Head = (0, 4)) -> dict:
    """How the model and a circuit do on one family of IOI prompts (lesson 3, section 6).

    Runs ``prompts.clean_tokens`` (``[batch, pos]``) three ways: the whole model, the circuit alone
    (every other head mean-ablated) and the model without the circuit (its heads mean-ablated), the
    means taken on the family's own corrupted prompts (:func:`head_means`, ``[n_layers, pos, head_index,
    d_head]``). ``prompts.answer_tokens`` is ``[batch, 2]``: the right answer (the IO), then the wrong one.

    Returns a dict of floats: ``prompts`` (the batch size); ``io_above_s``, the share of prompts whose
    IO logit is above the subject's; ``io_top1`` and ``s_top1``, the shares of prompts whose top
    prediction is the IO, or the subject; ``logit_diff``, ``circuit_logit_diff`` and ``removed_logit_diff``,
    the mean IO - S logit difference of the three runs; ``faithfulness``, ``circuit_logit_diff /
    logit_diff`` (:func:`circuit_faithfulness`); and for every role of ``prompts.positions``,
    ``head_<layer>_<head>_on_<role>``, the mean attention of ``head`` from the final position to that
    role's token (the head's pattern row ``[batch, key pos]`` at the last query position).
    """
    tokens, answers = prompts.clean_tokens, prompts.answer_tokens
    means = head_means(model, prompts.corrupted_tokens)                     # [n_layers, pos, head_index, d_head]
    keep = set(map(tuple, circuit))
    outside = [h for h in all_heads(model) if h not in keep]
    layer, index = head
    logits, cache = model.run_with_cache(tokens, names_filter=get_act_name("pattern", layer))
    final = logits[:, -1].gather(-1, answers)                                # [batch, 2]
    rows = torch.arange(len(tokens))
    pattern = cache["pattern", layer][rows, index, -1]                      # [batch, key pos]
    result = dict(
        prompts=len(tokens),
        io_above_s=(final[:, 0] > final[:, 1]).float().mean().item(),
        io_top1=(logits[:, -1].argmax(-1) == answers[:, 0]).float().mean().item(),
        s_top1=(logits[:, -1].argmax(-1) == answers[:, 1]).float().mean().item(),
        logit_diff=logit_diff(logits, answers).item(),
        circuit_logit_diff=logit_diff(run_with_mean_ablation(model, tokens, outside, means), answers).item(),
        removed_logit_diff=logit_diff(run_with_mean_ablation(model, tokens, list(keep), means), answers).item(),
    )
    result["faithfulness"] = result["circuit_logit_diff"] / result["logit_diff"]
    for role, positions in prompts.positions.items():
        result[f"head_{layer}_{index}_on_{role}"] = pattern[rows, positions].mean().item()
    return result


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
    colours = {"input": "lightgrey", "logits": "lightgrey"}
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
    ax.set_yticks(range(-1, n_layers + 1), ["embeddings", *[f"layer {l}" for l in range(n_layers)], "logits"])
    ax.tick_params(left=True, labelleft=True)
    ax.set_xlim(-1.5, 2.5)
    ax.set_title(title)
    ax.axis("on")
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return ax


# =====================================================================================
# Checks
# =====================================================================================

@lru_cache(maxsize=None)
def _ioi_case(n: int, opening: int, action: int, seed: int) -> IOIPatchingData:
    return ioi_patching_data(_model("course-4l"), n, opening=opening, action=action, seed=seed)


@lru_cache(maxsize=None)
def _tiny_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random clean and corrupted tokens ``[3, 7]`` and answers ``[3, 2]`` for the tiny model."""
    generator = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, 50, (3, 7), generator=generator)
    corrupted = clean.clone()
    corrupted[:, 2] = torch.randint(0, 50, (3,), generator=generator)
    answers = torch.randint(0, 50, (3, 2), generator=generator)
    return clean, corrupted, answers


class _NormalizedMetric:
    """``normalized_metric`` with its answers and end points bound (what the lesson's ``metric`` is)."""

    def __init__(self, model: HookedTransformer, clean: torch.Tensor, corrupted: torch.Tensor, answers: torch.Tensor):
        with torch.no_grad():
            self.clean_value = logit_diff(model(clean), answers).item()
            self.corrupted_value = logit_diff(model(corrupted), answers).item()
        self.answers = answers

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return normalized_metric(logits, self.answers, self.clean_value, self.corrupted_value)


@lru_cache(maxsize=None)
def _patching_setups() -> list[tuple[str, HookedTransformer, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(label, model, clean tokens, corrupted tokens, answers) for the patching exercises."""
    four, tiny = _model("course-4l"), _model("tiny-gpt2-like")
    a, b = _ioi_case(3, 0, 0, 3), _ioi_case(3, 4, 2, 5)
    clean, corrupted, answers = _tiny_case(0)
    return [
        ("4-layer model, 3 IOI prompts", four, a.clean_tokens, a.corrupted_tokens, a.answer_tokens),
        ("4-layer model, 3 IOI prompts of another template", four, b.clean_tokens, b.corrupted_tokens, b.answer_tokens),
        ("tiny random model, 3 random prompts", tiny, clean, corrupted, answers),
    ]


def _clean_cache(model: HookedTransformer, tokens: torch.Tensor) -> ActivationCache:
    with torch.no_grad():
        return model.run_with_cache(tokens)[1]


# ----------------------------------------------------------------------------- exercise 1
@lru_cache(maxsize=None)
def _logit_diff_cases() -> list[Case]:
    four = _model("course-4l")
    a = _ioi_case(6, 0, 0, 1)
    with torch.no_grad():
        ioi_logits = four(a.clean_tokens)
    generator = torch.Generator().manual_seed(0)
    random_logits = torch.randn(3, 5, 20, generator=generator) * 3
    random_answers = torch.randint(0, 20, (3, 2), generator=generator)
    one = torch.randn(1, 4, 10, generator=generator)
    return [Case((ioi_logits, a.answer_tokens), label="6 IOI prompts on the 4-layer model"),
            Case((random_logits, random_answers), label="random logits [3, 5, 20]"),
            Case((one, torch.tensor([[7, 2]])), label="one prompt [1, 4, 10]")]


def _per_prompt_diff(logits: torch.Tensor, answer_tokens: torch.Tensor, position: int | None = -1) -> torch.Tensor:
    chosen = logits[:, position] if position is not None else logits              # [batch, d_vocab] or [batch, pos, d_vocab]
    index = answer_tokens if position is not None else answer_tokens[:, None, :].expand(-1, logits.shape[1], -1)
    picked = chosen.gather(-1, index)
    return picked[..., 0] - picked[..., 1]


@single_threaded
def check_logit_diff(fn) -> CheckResult:
    """Check exercise 1 on real and random logits."""
    return check_function(fn, logit_diff, _logit_diff_cases(), name="logit_diff", known_mistakes={
        "sign": (lambda lg, ans: -logit_diff(lg, ans), "the sign is flipped: right answer (column 0) minus "
                                                       "wrong answer (column 1)"),
        "no_mean": (lambda lg, ans: _per_prompt_diff(lg, ans), "you returned one number per prompt: take the "
                                                               "mean over the batch"),
        "sum": (lambda lg, ans: _per_prompt_diff(lg, ans).sum(), "you summed over the batch: take the mean, so the "
                                                                 "number does not grow with the batch size"),
        "all_positions": (lambda lg, ans: _per_prompt_diff(lg, ans, None).mean(), "you averaged over every "
                          "position: the prediction of the next word is at the last position, logits[:, -1]"),
        "first_position": (lambda lg, ans: _per_prompt_diff(lg, ans, 0).mean(), "you read position 0 (the BOS "
                           "token): the answer is predicted at the last position, logits[:, -1]"),
        "probs": (lambda lg, ans: _per_prompt_diff(lg.softmax(-1), ans).mean(), "you compared probabilities: "
                  "subtract the logits themselves (or log-probabilities, which give the same difference)"),
    }, hint="logits[:, -1] is [batch, d_vocab]; pick column answer_tokens[:, 0] and answer_tokens[:, 1] "
            "with .gather(-1, ...) or fancy indexing, subtract, then .mean()")


# ----------------------------------------------------------------------------- exercise 2
@lru_cache(maxsize=None)
def _sweep_cases() -> list[Case]:
    four, tiny = _model("course-4l"), _model("tiny-gpt2-like")
    a = _ioi_case(2, 3, 8, 3)                # a short template: a sweep runs the model n_layers * pos times
    clean, corrupted, answers = _tiny_case(0)
    # The cheap case first: a wrong answer usually fails there already, and the known mistakes (a sweep each)
    # then run on the tiny model; those it rules out are not run on the 4-layer one (rule_out_on_first_case).
    setups = [("tiny random model, 3 random prompts", tiny, clean, corrupted, answers),
              ("4-layer model, 2 IOI prompts", four, a.clean_tokens, a.corrupted_tokens, a.answer_tokens)]
    cases = []
    for label, model, clean, corrupted, answers in setups:
        metric = _NormalizedMetric(model, clean, corrupted, answers)
        cases.append(Case((model, corrupted, _clean_cache(model, clean), metric), label=label))
    return cases


def _sweep_mistake(hook_name: str = "resid_pre", upto: bool = False, all_positions: bool = False):
    def wrong(model, corrupted_tokens, clean_cache, metric) -> torch.Tensor:
        n_pos = corrupted_tokens.shape[1]
        results = torch.zeros(model.cfg.n_layers, n_pos)
        for layer in range(model.cfg.n_layers):
            clean_resid = clean_cache[hook_name, layer]
            for position in range(n_pos):
                def hook(resid, hook, position=position):
                    if all_positions:
                        resid[:] = clean_resid
                    elif upto:
                        resid[:, :position + 1] = clean_resid[:, :position + 1]
                    else:
                        resid[:, position] = clean_resid[:, position]
                    return resid
                logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name(hook_name, layer), hook)])
                results[layer, position] = metric(logits).item()
        return results
    return wrong


LATER_HOOK = ("you patched a later point of the layer (hook_resid_mid or hook_resid_post; the two give almost the "
              "same numbers here): patch the layer's input, blocks.L.hook_resid_pre, with clean_cache['resid_pre', L]")


@single_threaded
def check_patch_residual_by_layer_pos(fn) -> CheckResult:
    """Check exercise 2 on a tiny random model, then on an IOI batch of the 4-layer model."""
    with torch.no_grad():
        return check_function(fn, patch_residual_by_layer_pos, _sweep_cases(), name="patch_residual_by_layer_pos",
                              atol=1e-3, rule_out_on_first_case=True, known_mistakes={
            "resid_post": (_sweep_mistake("resid_post"), LATER_HOOK),
            "resid_mid": (_sweep_mistake("resid_mid"), LATER_HOOK),
            "upto": (_sweep_mistake(upto=True), "you patched every position up to p: patch position p only, "
                     "resid[:, p] = clean[:, p]"),
            "all": (_sweep_mistake(all_positions=True), "you patched every position at once: patch position p "
                    "only, resid[:, p] = clean[:, p]"),
        }, hint="for each layer L and position p: a hook on get_act_name('resid_pre', L) that sets "
                "resid[:, p] = clean_cache['resid_pre', L][:, p]; then metric(model.run_with_hooks(...)).item()")


# ----------------------------------------------------------------------------- exercise 3
@lru_cache(maxsize=None)
def _head_cases() -> list[Case]:
    cases = []
    heads = [[(0, 4), (2, 1)], [(1, 6), (3, 0)], [(2, 3)]]
    for (label, model, clean, corrupted, answers), chosen in zip(_patching_setups(), heads):
        metric = _NormalizedMetric(model, clean, corrupted, answers)
        cache = _clean_cache(model, clean)
        for layer, head in chosen:
            cases.append(Case((model, corrupted, cache, layer, head, metric), label=f"{label}, head {layer}.{head}"))
    return cases


def _head_mistake(mode: str):
    def wrong(model, corrupted_tokens, clean_cache, layer, head, metric) -> float:
        def hook(z, hook):
            clean = clean_cache["z", layer]
            if mode == "all_heads":
                z[:] = clean
            elif mode == "last":
                z[:, -1, head] = clean[:, -1, head]
            elif mode == "position":
                z[:, head] = clean[:, head]
            return z
        name = get_act_name("z", layer + 1 if mode == "next_layer" else layer)
        if mode == "next_layer":
            def hook(z, hook):  # noqa: F811
                z[:, :, head] = clean_cache["z", layer + 1][:, :, head]
                return z
        logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(name, hook)])
        return metric(logits).item()
    return wrong


@single_threaded
def check_patch_head_output(fn) -> CheckResult:
    """Check exercise 3 on five heads of two models."""
    with torch.no_grad():
        return check_function(fn, patch_head_output, _head_cases(), name="patch_head_output", atol=1e-3,
                              known_mistakes={
            "all_heads": (_head_mistake("all_heads"), "you patched every head of the layer: patch only "
                          "z[:, :, head]"),
            "last": (_head_mistake("last"), "you patched the last position only: patch the head at every "
                     "position, z[:, :, head]"),
            "position": (_head_mistake("position"), "you indexed a position, not a head: hook_z is "
                         "[batch, pos, head_index, d_head], so the head goes third, z[:, :, head]"),
        }, hint="a hook on get_act_name('z', layer) that sets z[:, :, head] = clean_cache['z', layer][:, :, head]")


# ----------------------------------------------------------------------------- exercise 4
@lru_cache(maxsize=None)
def _ablation_cases() -> list[Case]:
    four, tiny = _model("course-4l"), _model("tiny-gpt2-like")
    a, b = _ioi_case(5, 0, 0, 7), _ioi_case(4, 2, 1, 8)
    clean, corrupted, _ = _tiny_case(1)
    with torch.no_grad():
        means_a, means_b = head_means(four, a.corrupted_tokens), head_means(four, b.corrupted_tokens)
        means_tiny = head_means(tiny, corrupted)
    return [
        Case((four, a.clean_tokens, [(0, 4), (0, 1), (2, 5)], means_a), label="4-layer model, heads 0.4, 0.1, 2.5"),
        Case((four, b.clean_tokens, [(3, 7)], means_b), label="4-layer model, head 3.7"),
        Case((tiny, clean, [(1, 0), (2, 3)], means_tiny), label="tiny random model, heads 1.0 and 2.3"),
        Case((tiny, clean, [], means_tiny), label="no heads (the model must run unchanged)"),
    ]


def _ablation_mistake(mode: str):
    def wrong(model, tokens, heads, means):
        def make(layer, head):
            def hook(z, hook):
                if mode == "zero":
                    z[:, :, head] = 0.0
                elif mode == "pos_mean":
                    z[:, :, head] = means[layer][:, head].mean(0)
                elif mode == "position":
                    z[:, head] = means[layer][head]
                return z
            return hook
        return model.run_with_hooks(tokens, fwd_hooks=[(get_act_name("z", l), make(l, h)) for l, h in heads])
    return wrong


@single_threaded
def check_run_with_mean_ablation(fn) -> CheckResult:
    """Check exercise 4 on both models, one to three heads, and no heads."""
    with torch.no_grad():
        return check_function(fn, run_with_mean_ablation, _ablation_cases(), name="run_with_mean_ablation",
                              atol=1e-3, known_mistakes={
            "zero": (_ablation_mistake("zero"), "you zero-ablated: replace each head with its mean output, "
                     "means[layer][:, head] (zero is far from anything the head ever outputs)"),
            "pos_mean": (_ablation_mistake("pos_mean"), "you also averaged over positions: the mean is per "
                         "position, so keep means[layer][:, head] as it is ([pos, d_head])"),
            "position": (_ablation_mistake("position"), "you indexed a position, not a head: hook_z is "
                         "[batch, pos, head_index, d_head], so the head goes third, z[:, :, head]"),
        }, hint="for each (layer, head): a hook on get_act_name('z', layer) that sets "
                "z[:, :, head] = means[layer][:, head]; return model.run_with_hooks(tokens, fwd_hooks=hooks)")


# ----------------------------------------------------------------------------- exercise 5
@lru_cache(maxsize=None)
def _faithfulness_cases() -> list[Case]:
    four = _model("course-4l")
    a, b = _ioi_case(8, 0, 0, 11), _ioi_case(6, 5, 3, 12)
    with torch.no_grad():
        means_a, means_b = head_means(four, a.corrupted_tokens), head_means(four, b.corrupted_tokens)
    return [
        Case((four, a.clean_tokens, a.answer_tokens, [(0, 4), (0, 3), (1, 1)], means_a), label="3-head circuit"),
        Case((four, b.clean_tokens, b.answer_tokens, [(0, 4)], means_b), label="1-head circuit, another template"),
        Case((four, a.clean_tokens, a.answer_tokens, all_heads(four), means_a), label="every head (must be 1)"),
    ]


def _faithfulness_mistake(mode: str):
    def wrong(model, tokens, answer_tokens, circuit, means):
        keep = set(map(tuple, circuit))
        outside = [h for h in all_heads(model) if h not in keep]
        ablate = list(keep) if mode == "ablate_circuit" else outside
        clean = logit_diff(model(tokens), answer_tokens)
        ablated = logit_diff(run_with_mean_ablation(model, tokens, ablate, means), answer_tokens)
        return {"ablate_circuit": ablated / clean, "raw": ablated, "inverted": clean / ablated,
                "lost": 1 - ablated / clean}[mode].item()
    return wrong


@single_threaded
def check_circuit_faithfulness(fn) -> CheckResult:
    """Check exercise 5 on two circuits, two templates, and the whole model."""
    with torch.no_grad():
        return check_function(fn, circuit_faithfulness, _faithfulness_cases(), name="circuit_faithfulness",
                              atol=2e-3, known_mistakes={
            "ablate_circuit": (_faithfulness_mistake("ablate_circuit"), "you ablated the circuit's heads: ablate "
                               "every head *outside* the circuit and keep the circuit running"),
            "raw": (_faithfulness_mistake("raw"), "you returned the ablated run's logit difference: divide it by "
                    "the clean run's, so 1 means the circuit keeps all of it"),
            "inverted": (_faithfulness_mistake("inverted"), "the ratio is upside down: ablated logit difference "
                         "divided by the clean one"),
            "lost": (_faithfulness_mistake("lost"), "you returned the share that was lost: return the share kept, "
                     "ablated / clean"),
        }, hint="outside = every (layer, head) not in circuit; faithfulness = logit_diff(run_with_mean_ablation("
                "model, tokens, outside, means), answers) / logit_diff(model(tokens), answers)")


# ----------------------------------------------------------------------------- exercise 6
@lru_cache(maxsize=None)
def _attribution_cases() -> list[Case]:
    cases = []
    for label, model, clean, corrupted, answers in _patching_setups():
        cases.append(Case((model, clean, corrupted, _NormalizedMetric(model, clean, corrupted, answers)), label=label))
    return cases


def _attribution_mistake(mode: str, terms_of: dict | None = None):
    """A known mistake of exercise 6. ``terms_of`` keeps the attribution terms of each case for the other
    mistakes, which all start from them: four mistakes cost one backward pass, not four."""
    terms_of = {} if terms_of is None else terms_of

    def wrong(model, clean_tokens, corrupted_tokens, metric):
        if mode == "clean_grad":   # gradient taken on the clean run
            return -attribution_patch_heads(model, corrupted_tokens, clean_tokens, metric)
        key = (id(model), id(metric), tuple(clean_tokens.flatten().tolist()), tuple(corrupted_tokens.flatten().tolist()))
        if key not in terms_of:
            terms_of[key] = _attribution_terms(model, clean_tokens, corrupted_tokens, metric)
        terms = terms_of[key]
        combine = {"flipped": lambda d, g: -d * g, "abs": lambda d, g: (d * g).abs(),
                   "no_delta": lambda d, g: g}[mode]
        out = torch.stack([combine(delta, grad).sum(dim=(0, 1, 3)) for delta, grad in terms])
        return out.abs() if mode == "abs_sum" else out
    return wrong


ABS_MESSAGE = "you took absolute values: keep the sign, a head can push the metric either way"


@single_threaded
def check_attribution_patch_heads(fn) -> CheckResult:
    """Check exercise 6 on two IOI batches of the 4-layer model and a tiny random model."""
    terms: dict = {}                                    # shared by the mistakes built from the same terms
    return check_function(fn, attribution_patch_heads, _attribution_cases(), name="attribution_patch_heads",
                          atol=1e-3, known_mistakes={
        "flipped": (_attribution_mistake("flipped", terms), "the sign is flipped: the change is (clean - corrupted) "
                    "times the gradient"),
        "clean_grad": (_attribution_mistake("clean_grad"), "you took the gradient on the clean run: take it on the "
                       "corrupted run, the run you are patching into"),
        "abs": (_attribution_mistake("abs", terms), ABS_MESSAGE),
        "abs_sum": (_attribution_mistake("abs_sum", terms), ABS_MESSAGE),
        "no_delta": (_attribution_mistake("no_delta", terms), "you summed the gradient alone: multiply it by the "
                     "change the patch makes, clean_z - corrupted_z, before summing"),
    }, hint="cache clean z; run the corrupted tokens with forward hooks saving z and backward hooks saving its "
            "gradient; call metric(logits).backward(); sum (clean_z - corrupted_z) * grad over batch, pos, d_head")
