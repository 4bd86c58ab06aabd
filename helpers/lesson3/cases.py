"""The inputs of workbook 3's checks, built once per process: models, prompts, caches, graphs and random tensors.

The checks read the course model through :func:`helpers.models.cached_model` and a tiny random model of
their own (:func:`tiny_random_model`); part two's checks read the bundled replacement model
(:func:`replacement_model`), its feature labels and circuit-tracer's graphs of three prompts.
"""
from __future__ import annotations

import random
from functools import lru_cache
from typing import cast

import torch
from circuit_tracer.graph import Graph
from circuit_tracer.replacement_model.replacement_model_transformerlens import TransformerLensReplacementModel
from circuit_tracer.transcoder import TranscoderSet
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache, HookedTransformer

from helpers import corpus
from helpers.checks import Case
from helpers.lesson3.graphs import FeatureLabels, SwapTarget, graph_features, label_features, node_kinds
from helpers.lesson3.prompts import IOIPatchingData, ioi_patching_data
from helpers.lesson3.reference import all_heads, head_means, logit_diff, normalized_metric
from helpers.models import cached_model, tiny_random_model

CHECK_PROMPTS = ("The Colosseum is in the city of", "Everyone knows that the Kremlin is in",
                 "Then, Mary and John went to the park. John gave a ball to")

__all__ = ["ioi_case", "tiny_case", "NormalizedMetric", "patching_setups", "clean_cache",
           "logit_diff_cases", "sweep_cases", "head_cases", "ablation_cases", "faithfulness_cases",
           "attribution_cases", "replacement_model", "transcoders", "feature_labels", "CHECK_PROMPTS", "check_graph",
           "logit_cases",
           "edge_cases", "influence_cases", "swap_pairs"]


# ============================================================================ part one


@lru_cache(maxsize=None)
def ioi_case(n: int, opening: int, action: int, seed: int) -> IOIPatchingData:
    """``n`` IOI prompt pairs of one template on the course model."""
    return ioi_patching_data(cached_model("course-4l"), n, opening=opening, action=action, seed=seed)


@lru_cache(maxsize=None)
def tiny_case(seed: int) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"], Int[Tensor, "batch 2"]]:
    """Random clean and corrupted tokens ``[3, 7]`` (they differ at position 2) and answers ``[3, 2]``, for the
    tiny model."""
    generator = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, 50, (3, 7), generator=generator)
    corrupted = clean.clone()
    corrupted[:, 2] = torch.randint(0, 50, (3,), generator=generator)
    answers = torch.randint(0, 50, (3, 2), generator=generator)
    return clean, corrupted, answers


class NormalizedMetric:
    """``normalized_metric`` with its answers and end points bound (what the lesson's ``metric`` is)."""

    def __init__(self, model: HookedTransformer, clean: Int[Tensor, "batch pos"], corrupted: Int[Tensor, "batch pos"],
                 answers: Int[Tensor, "batch 2"]):
        with torch.no_grad():
            self.clean_value = logit_diff(model(clean), answers).item()
            self.corrupted_value = logit_diff(model(corrupted), answers).item()
        self.answers = answers

    def __call__(self, logits: Float[Tensor, "batch pos d_vocab"]) -> Float[Tensor, ""]:
        return normalized_metric(logits, self.answers, self.clean_value, self.corrupted_value)


@lru_cache(maxsize=None)
def patching_setups() -> list[tuple[str, HookedTransformer, Tensor, Tensor, Tensor]]:
    """(label, model, clean tokens, corrupted tokens, answers) for the patching exercises."""
    four, tiny = cached_model("course-4l"), tiny_random_model()
    a, b = ioi_case(3, 0, 0, 3), ioi_case(3, 4, 2, 5)
    clean, corrupted, answers = tiny_case(0)
    return [
        ("4-layer model, 3 IOI prompts", four, a.clean_tokens, a.corrupted_tokens, a.answer_tokens),
        ("4-layer model, 3 IOI prompts of another template", four, b.clean_tokens, b.corrupted_tokens, b.answer_tokens),
        ("tiny random model, 3 random prompts", tiny, clean, corrupted, answers),
    ]


def clean_cache(model: HookedTransformer, tokens: Int[Tensor, "batch pos"]) -> ActivationCache:
    """Every activation of ``model`` on ``tokens``, without gradients."""
    with torch.no_grad():
        return model.run_with_cache(tokens)[1]


@lru_cache(maxsize=None)
def logit_diff_cases() -> list[Case]:
    """Exercise 1: IOI logits of the course model, random logits, and one prompt."""
    four = cached_model("course-4l")
    a = ioi_case(6, 0, 0, 1)
    with torch.no_grad():
        ioi_logits = four(a.clean_tokens)
    generator = torch.Generator().manual_seed(0)
    random_logits = torch.randn(3, 5, 20, generator=generator) * 3
    random_answers = torch.randint(0, 20, (3, 2), generator=generator)
    one = torch.randn(1, 4, 10, generator=generator)
    return [Case((ioi_logits, a.answer_tokens), label="6 IOI prompts on the 4-layer model"),
            Case((random_logits, random_answers), label="random logits [3, 5, 20]"),
            Case((one, torch.tensor([[7, 2]])), label="one prompt [1, 4, 10]")]


@lru_cache(maxsize=None)
def sweep_cases() -> list[Case]:
    """Exercise 2: the cheap case first (a wrong answer usually fails there already, and the known mistakes,
    a sweep each, then run on the tiny model; those it rules out are not run on the 4-layer one)."""
    a = ioi_case(2, 3, 8, 3)                # a short template: a sweep runs the model n_layers * pos times
    clean, corrupted, answers = tiny_case(0)
    setups = [("tiny random model, 3 random prompts", tiny_random_model(), clean, corrupted, answers),
              ("4-layer model, 2 IOI prompts", cached_model("course-4l"), a.clean_tokens, a.corrupted_tokens,
               a.answer_tokens)]
    return [Case((model, corrupted, clean_cache(model, clean), NormalizedMetric(model, clean, corrupted, answers)),
                 label=label) for label, model, clean, corrupted, answers in setups]


@lru_cache(maxsize=None)
def head_cases() -> list[Case]:
    """Exercise 3: five heads of the two models."""
    cases = []
    heads = [[(0, 4), (2, 1)], [(1, 6), (3, 0)], [(2, 3)]]
    for (label, model, clean, corrupted, answers), chosen in zip(patching_setups(), heads):
        metric = NormalizedMetric(model, clean, corrupted, answers)
        cache = clean_cache(model, clean)
        for layer, head in chosen:
            cases.append(Case((model, corrupted, cache, layer, head, metric), label=f"{label}, head {layer}.{head}"))
    return cases


@lru_cache(maxsize=None)
def ablation_cases() -> list[Case]:
    """Exercise 4: both models, one to three heads, and no heads."""
    four, tiny = cached_model("course-4l"), tiny_random_model()
    a, b = ioi_case(5, 0, 0, 7), ioi_case(4, 2, 1, 8)
    clean, corrupted, _ = tiny_case(1)
    with torch.no_grad():
        means_a, means_b = head_means(four, a.corrupted_tokens), head_means(four, b.corrupted_tokens)
        means_tiny = head_means(tiny, corrupted)
    return [
        Case((four, a.clean_tokens, [(0, 4), (0, 1), (2, 5)], means_a), label="4-layer model, heads 0.4, 0.1, 2.5"),
        Case((four, b.clean_tokens, [(3, 7)], means_b), label="4-layer model, head 3.7"),
        Case((tiny, clean, [(1, 0), (2, 3)], means_tiny), label="tiny random model, heads 1.0 and 2.3"),
        Case((tiny, clean, [], means_tiny), label="no heads (the model must run unchanged)"),
    ]


@lru_cache(maxsize=None)
def faithfulness_cases() -> list[Case]:
    """Exercise 5: two circuits, two templates, and the whole model."""
    four = cached_model("course-4l")
    a, b = ioi_case(8, 0, 0, 11), ioi_case(6, 5, 3, 12)
    with torch.no_grad():
        means_a, means_b = head_means(four, a.corrupted_tokens), head_means(four, b.corrupted_tokens)
    return [
        Case((four, a.clean_tokens, a.answer_tokens, [(0, 4), (0, 3), (1, 1)], means_a), label="3-head circuit"),
        Case((four, b.clean_tokens, b.answer_tokens, [(0, 4)], means_b), label="1-head circuit, another template"),
        Case((four, a.clean_tokens, a.answer_tokens, all_heads(four), means_a), label="every head (must be 1)"),
    ]


@lru_cache(maxsize=None)
def attribution_cases() -> list[Case]:
    """Exercise 6: two IOI batches of the course model and the tiny random model."""
    return [Case((model, clean, corrupted, NormalizedMetric(model, clean, corrupted, answers)), label=label)
            for label, model, clean, corrupted, answers in patching_setups()]


# ============================================================================ part two
@lru_cache(maxsize=None)
def replacement_model() -> TransformerLensReplacementModel:
    """The checks' copy of the bundled replacement model (course-4l with its transcoders)."""
    from helpers.transcoders import load_replacement_model
    return load_replacement_model()


def transcoders() -> TranscoderSet:
    """The per-layer transcoders of :func:`replacement_model`."""
    return cast(TranscoderSet, replacement_model().transcoders)


@lru_cache(maxsize=None)
def feature_labels() -> FeatureLabels:
    """:func:`~helpers.lesson3.graphs.label_features` of :func:`replacement_model`."""
    return label_features(replacement_model())


@lru_cache(maxsize=None)
def check_graph(prompt: str) -> tuple[Graph, ActivationCache]:
    """circuit-tracer's graph of ``prompt`` on the bundled replacement model, and its frozen cache."""
    from circuit_tracer import attribute
    replacement = replacement_model()
    tokens = replacement.to_tokens(prompt)[0]
    with torch.enable_grad():
        graph = attribute(tokens, replacement, max_n_logits=3, batch_size=256)
    _, cache = replacement.run_with_cache(tokens[None])
    return graph, cache


def _random_logit_case(seed: int) -> Case:
    g = torch.Generator().manual_seed(seed)
    W_U = torch.randn(16, 40, generator=g) + 0.5            # not centred: the mean over the vocabulary matters
    vector = torch.randn(16, generator=g) + 0.3             # not centred: the LayerNorm's centring matters
    return Case((2.5, vector, 1.7, W_U, 7), label=f"random tensors (seed {seed})")


@lru_cache(maxsize=None)
def logit_cases() -> list[Case]:
    """Exercise 7: random tensors, and the two most active last-layer features of two graphs."""
    cases = [_random_logit_case(0), _random_logit_case(1)]
    for prompt in CHECK_PROMPTS[:2]:
        graph, cache = check_graph(prompt)
        W_U, scale = replacement_model().unembed.W_U, cache["ln_final.hook_scale"][0, -1].item()
        last = [f for f in graph_features(graph) if f.layer == graph.cfg.n_layers - 1 and f.pos == graph.n_pos - 1]
        top = sorted(last, key=lambda f: -graph.activation_values[graph.selected_features[f.node]].item())[:2]
        for node, layer, _, feature in top:
            value = graph.activation_values[graph.selected_features[node]].item()
            cases.append(Case((value, transcoders()[layer].W_dec[feature].detach(), scale, W_U,
                               graph.logit_targets[0].vocab_idx),
                              label=f"{prompt!r}, feature {layer}/{feature} -> {graph.logit_targets[0].token_str!r}"))
    return cases


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
def edge_cases() -> list[Case]:
    """Exercise 8: random tensors, and feature pairs of two graphs (same and different positions)."""
    cases = [_random_edge_case(0, True), _random_edge_case(1, False)]
    replacement = replacement_model()
    for prompt in CHECK_PROMPTS[1:]:
        graph, cache = check_graph(prompt)
        features = graph_features(graph)
        values = graph.activation_values[graph.selected_features]
        rng = random.Random(len(prompt))
        for same in (True, False):
            pairs = [(s, t) for s in features for t in features if t.layer == s.layer + 1 and (t.pos == s.pos) == same
                     and t.pos >= s.pos and abs(graph.adjacency_matrix[t.node, s.node]) > 1e-4]
            source, target = rng.choice(pairs)
            block = replacement.blocks[target.layer]
            written = values[source.node].item() * transcoders()[source.layer].W_dec[source.feature].detach()
            encoder = transcoders()[target.layer].W_enc[target.feature].detach()
            cases.append(Case((written, source.pos, encoder, target.pos,
                               cache[f"blocks.{target.layer}.attn.hook_pattern"][0],
                               cache[f"blocks.{target.layer}.ln1.hook_scale"][0],
                               block.attn.W_V.detach(), block.attn.W_O.detach()),
                              label=f"{prompt[:30]!r}…, feature {source.layer}/{source.feature} at {source.pos} -> "
                                    f"{target.layer}/{target.feature} at {target.pos}"))
    return cases


def _random_dag_case(seed: int, n: int = 9) -> Case:
    g = torch.Generator().manual_seed(seed)
    adjacency = torch.randn(n, n, generator=g).tril(-1) * (torch.rand(n, n, generator=g) > 0.3)
    weights = torch.zeros(n)
    weights[-2:] = torch.tensor([0.7, 0.3])
    adjacency[-2:] = torch.randn(2, n, generator=g) * (torch.arange(n) < n - 2)   # logits read every other node
    return Case((adjacency, weights), label=f"random 9-node graph (seed {seed})")


@lru_cache(maxsize=None)
def influence_cases() -> list[Case]:
    """Exercise 9: two random graphs and the graph of the first check prompt."""
    cases = [_random_dag_case(0), _random_dag_case(1)]
    graph, _ = check_graph(CHECK_PROMPTS[0])
    weights = torch.zeros(graph.adjacency_matrix.shape[0])
    weights[node_kinds(graph).logits] = graph.logit_probabilities
    cases.append(Case((graph.adjacency_matrix, weights), label=f"graph of {CHECK_PROMPTS[0]!r}"))
    return cases


@lru_cache(maxsize=None)
def swap_pairs() -> list[SwapTarget]:
    """Exercise 10: 12 landmarks, each with a random other city whose name is one token (the lesson pairs every
    landmark with a fixed other city instead, :func:`~helpers.lesson3.graphs.swap_targets`)."""
    rng = random.Random(5)
    facts = [(lm, city) for lm, city, _ in corpus.data.LANDMARKS]
    cities = sorted({city for _, city in facts if " " not in city})
    return [SwapTarget(lm, city, rng.choice([c for c in cities if c != city])) for lm, city in rng.sample(facts, 12)]
