"""The reference answer of every exercise of workbook 3, named like the exercise.

Part one (activation patching): :func:`logit_diff` (exercise 1), :func:`patch_residual_by_layer_pos` (2),
:func:`patch_head_output` (3), :func:`run_with_mean_ablation` (4), :func:`circuit_faithfulness` (5),
:func:`attribution_patch_heads` (6), with the small helpers they need (:func:`normalized_metric`,
:func:`head_means`, :func:`all_heads`).

Part two (attribution graphs): :func:`feature_logit_attribution` (7), :func:`feature_edge` (8),
:func:`node_influence` (9), :func:`swap_interventions` (10).

A head is written ``(layer, head)``; ``"1.4"`` in prose.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache, HookedTransformer
from transformer_lens.utils import get_act_name

from helpers.lesson3.graphs import FeatureLabels, city_features

Head = tuple[int, int]
Metric = Callable[[Tensor], Tensor]      # logits [batch, pos, d_vocab] -> a scalar tensor

__all__ = ["Head", "Metric", "logit_diff", "normalized_metric", "patch_residual_by_layer_pos", "patch_head_output",
           "head_means", "run_with_mean_ablation", "all_heads", "circuit_faithfulness", "attribution_patch_heads",
           "feature_logit_attribution", "feature_edge", "node_influence", "swap_interventions"]


# ----------------------------------------------------------------------------- exercise 1: the metric
def logit_diff(logits: Float[Tensor, "batch pos d_vocab"], answer_tokens: Int[Tensor, "batch 2"]) -> Float[Tensor, ""]:
    """Mean over the batch of logit(right answer) - logit(wrong answer) at the last position.

    ``answer_tokens``: column 0 the right answer's token id, column 1 the wrong one's. Positive when the
    model prefers the right answer.
    """
    final = logits[:, -1, :]                                         # [batch, d_vocab]
    right = final.gather(-1, answer_tokens[:, :1]).squeeze(-1)       # [batch]
    wrong = final.gather(-1, answer_tokens[:, 1:]).squeeze(-1)       # [batch]
    return (right - wrong).mean()


def normalized_metric(logits: Float[Tensor, "batch pos d_vocab"], answer_tokens: Int[Tensor, "batch 2"],
                      clean_value: float, corrupted_value: float) -> Float[Tensor, ""]:
    """The logit difference rescaled to 0 on the corrupted run and 1 on the clean run (a scalar)."""
    return (logit_diff(logits, answer_tokens) - corrupted_value) / (clean_value - corrupted_value)


# ----------------------------------------------------------------------------- exercise 2: a residual sweep
def patch_residual_by_layer_pos(model: HookedTransformer, corrupted_tokens: Int[Tensor, "batch pos"],
                                clean_cache: ActivationCache, metric: Metric) -> Float[Tensor, "layer pos"]:
    """Patch the clean residual stream into the corrupted run, one (layer, position) at a time.

    For each layer ``L`` and position ``p``, run ``corrupted_tokens`` with ``blocks.L.hook_resid_pre``
    at position ``p`` replaced by the clean run's value (every prompt of the batch at once), and
    record ``metric(logits)``. ``clean_cache`` is ``run_with_cache`` of the clean tokens (same shape).
    """
    n_pos = corrupted_tokens.shape[1]
    results = torch.zeros(model.cfg.n_layers, n_pos)
    for layer in range(model.cfg.n_layers):
        clean_resid = clean_cache["resid_pre", layer]                      # [batch, pos, d_model]
        for position in range(n_pos):
            def hook(resid: Tensor, hook, position=position, clean_resid=clean_resid) -> Tensor:
                resid[:, position] = clean_resid[:, position]
                return resid
            logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("resid_pre", layer), hook)])
            results[layer, position] = metric(logits).item()
    return results


# ----------------------------------------------------------------------------- exercise 3: one head
def patch_head_output(model: HookedTransformer, corrupted_tokens: Int[Tensor, "batch pos"],
                      clean_cache: ActivationCache, layer: int, head: int, metric: Metric) -> float:
    """``metric`` of the corrupted run with one head's output (``hook_z``, every position) taken from the clean run.

    ``hook_z`` is ``[batch, pos, head_index, d_head]``: each head's weighted sum of values, just
    before the output matrix ``W_O`` mixes the heads back into the residual stream.
    """
    def hook(z: Tensor, hook) -> Tensor:
        z[:, :, head] = clean_cache["z", layer][:, :, head]
        return z
    logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])
    return metric(logits).item()


# ----------------------------------------------------------------------------- exercise 4: mean ablation
def head_means(model: HookedTransformer, tokens: Int[Tensor, "batch pos"]
               ) -> Float[Tensor, "layer pos head_index d_head"]:
    """Each head's output (``hook_z``) averaged over a batch of prompts, position by position."""
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_z"))
    return torch.stack([cache["z", layer].mean(0) for layer in range(model.cfg.n_layers)])


def run_with_mean_ablation(model: HookedTransformer, tokens: Int[Tensor, "batch pos"], heads: Sequence[Head],
                           means: Float[Tensor, "layer pos head_index d_head"]) -> Float[Tensor, "batch pos d_vocab"]:
    """Run ``tokens`` with every head in ``heads`` replaced by its mean output, and return the logits.

    ``heads`` is a list of ``(layer, head)`` pairs (``Head`` is short for ``tuple[int, int]``).
    ``means[layer, pos, head]`` is that head's output (``hook_z``) averaged over a batch of prompts of
    the same length as ``tokens``; ``lesson3.head_means(model, prompts)`` computes it with one cached run.
    """
    by_layer: dict[int, list[int]] = {}                 # layer -> the heads to ablate in it: one hook per layer
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def make_hook(layer: int, layer_heads: list[int]):
        def hook(z: Tensor, hook) -> Tensor:                                 # z: [batch, pos, head_index, d_head]
            # overwrite the ablated heads' slots with their means ([pos, heads, d_head], the same for every prompt)
            z[:, :, layer_heads] = means[layer][:, layer_heads]
            return z
        return hook
    hooks = [(get_act_name("z", layer), make_hook(layer, hs)) for layer, hs in by_layer.items()]
    return model.run_with_hooks(tokens, fwd_hooks=hooks)


# ----------------------------------------------------------------------------- exercise 5: faithfulness
def all_heads(model: HookedTransformer) -> list[Head]:
    """Every ``(layer, head)`` pair of ``model``, layer by layer: ``[(0, 0), (0, 1), ..., (3, 7)]`` for 4 x 8 heads."""
    return [(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]


def circuit_faithfulness(model: HookedTransformer, tokens: Int[Tensor, "batch pos"],
                         answer_tokens: Int[Tensor, "batch 2"], circuit: Sequence[Head],
                         means: Float[Tensor, "layer pos head_index d_head"]) -> float:
    """Share of the clean logit difference that the circuit alone keeps.

    ``circuit`` lists ``(layer, head)`` pairs. Every head *not* in it is mean-ablated with
    ``run_with_mean_ablation`` (exercise 4); the MLPs, embeddings and the circuit's heads run as usual.
    Returns ``logit_diff(ablated run) / logit_diff(clean run)``: 1 means the circuit alone does it all.
    """
    keep = set(map(tuple, circuit))       # each head as a tuple, so that [1, 4] and (1, 4) match; a set for fast "in"
    outside = [h for h in all_heads(model) if h not in keep]    # all_heads: every (layer, head) of the model
    clean = logit_diff(model(tokens), answer_tokens)
    ablated = logit_diff(run_with_mean_ablation(model, tokens, outside, means), answer_tokens)
    return (ablated / clean).item()


# ----------------------------------------------------------------------------- exercise 6: attribution patching
def attribution_patch_heads(model: HookedTransformer, clean_tokens: Int[Tensor, "batch pos"],
                            corrupted_tokens: Int[Tensor, "batch pos"], metric: Metric
                            ) -> Float[Tensor, "layer head_index"]:
    """Estimate, for every head at once, the change of ``metric`` when its clean output is patched in.

    A first-order Taylor expansion around the corrupted run: the effect of head ``(L, H)`` is about
    ``sum over batch, pos, d_head of (clean_z - corrupted_z) * d metric / d z``, with the gradient
    taken on the corrupted run. One forward and one backward pass instead of one run per head.
    """
    is_z = lambda name: name.endswith("hook_z")
    _, clean_cache = model.run_with_cache(clean_tokens, names_filter=is_z)
    corrupted_z, grads = {}, {}

    def save_act(z: Tensor, hook) -> None:      # forward hook: records z; returning None leaves the run unchanged
        corrupted_z[hook.name] = z.detach()     # detach: a plain copy of the numbers, outside the gradient bookkeeping

    def save_grad(grad: Tensor, hook) -> None:  # backward hook: receives d metric / d z for this hook point
        grads[hook.name] = grad.detach()
    with torch.enable_grad(), model.hooks(fwd_hooks=[(is_z, save_act)], bwd_hooks=[(is_z, save_grad)]):
        metric(model(corrupted_tokens)).backward()       # the backward pass fills grads, one entry per layer
    model.zero_grad(set_to_none=True)
    names = [get_act_name("z", layer) for layer in range(model.cfg.n_layers)]
    # each term is [batch, pos, head_index, d_head]; summing dims 0, 1, 3 leaves one number per head
    return torch.stack([((clean_cache[name] - corrupted_z[name]) * grads[name]).sum(dim=(0, 1, 3)) for name in names])


# ----------------------------------------------------------------------------- exercise 7: a feature's logit effect
def feature_logit_attribution(activation: float, decoder_vector: Float[Tensor, "d_model"], final_scale: float,
                              W_U: Float[Tensor, "d_model d_vocab"], token: int) -> float:
    """Direct effect of a feature of the last block at the last position on the demeaned logit of ``token``.

    ``decoder_vector`` is the feature's row of ``W_dec``; it is written into the residual stream times
    ``activation``. The final LayerNorm (scale frozen at ``final_scale``) centres it and divides by the
    scale; the logit direction is ``W_U[:, token]`` minus the mean over the vocabulary.
    """
    written = activation * decoder_vector
    normalized = (written - written.mean()) / final_scale
    direction = W_U[:, token] - W_U.mean(dim=1)
    return (normalized @ direction).item()


# ----------------------------------------------------------------------------- exercise 8: an edge
def feature_edge(source_vector: Float[Tensor, "d_model"], source_pos: int, target_encoder: Float[Tensor, "d_model"],
                 target_pos: int, pattern: Float[Tensor, "head_index query_pos key_pos"],
                 ln1_scale: Float[Tensor, "pos 1"], W_V: Float[Tensor, "head_index d_model d_head"],
                 W_O: Float[Tensor, "head_index d_head d_model"]) -> float:
    """Edge weight from a feature of block L to a feature of block L + 1, with attention frozen.

    ``source_vector``: what the source writes (activation times its decoder row) at ``source_pos``.
    ``target_encoder``: the target's row of ``W_enc``, read at ``target_pos`` from ``hook_resid_mid``
    of block L + 1. In between sits block L + 1's attention, linear once its ``pattern`` and its
    LayerNorm's ``ln1_scale`` are frozen. The edge is the sum of two paths: straight along the
    residual stream (same position only), and through every head (from the source's position to the target's).
    """
    residual = source_vector @ target_encoder if source_pos == target_pos else 0.0
    normalized = (source_vector - source_vector.mean()) / ln1_scale[source_pos]
    through_heads = torch.einsum("h,d,hde,hef,f->", pattern[:, target_pos, source_pos], normalized, W_V, W_O,
                                 target_encoder)
    return float(residual + through_heads)


# ----------------------------------------------------------------------------- exercise 9: influence
def node_influence(adjacency: Float[Tensor, "node node"], logit_weights: Float[Tensor, "node"]
                   ) -> Float[Tensor, "node"]:
    """Each node's influence on the logits, summed over all paths: ``w A + w A^2 + w A^3 + ...``.

    ``adjacency`` (``[target, source]``) with every row normalised to absolute values summing to 1, so
    that an edge says which share of its target's input a source gives. ``logit_weights`` is each
    logit's probability (0 for the other nodes). The graph has no cycles, so the series ends after as
    many terms as the graph is deep.
    """
    normalized = adjacency.abs()
    normalized = normalized / normalized.sum(dim=1, keepdim=True).clamp(min=1e-10)
    influence = torch.zeros_like(logit_weights)
    current = logit_weights @ normalized
    while current.any():
        influence = influence + current
        current = current @ normalized
    return influence


# ----------------------------------------------------------------------------- exercise 10: change the answer
def swap_interventions(labels: FeatureLabels, activations: Float[Tensor, "layer pos d_sae"], source_city: str,
                       target_city: str, strength: float = 20.0) -> list[tuple[int, int, int, float]]:
    """Interventions that make the model answer ``target_city`` where it answered ``source_city``.

    ``activations`` are the transcoder features on the prompt (``replacement.get_activations``). At the
    last position: every active feature labelled with the source city is set to 0, and every feature
    labelled with the target city is set to ``strength`` times its mean activation on the target city's
    prompts. Returns circuit-tracer's ``(layer, position, feature, value)`` tuples for ``feature_intervention``.

    ``labels`` comes from ``lesson3.label_features``. ``city_features(labels, city)`` lists the
    ``(layer, feature)`` of every feature labelled ``"city: <city>"``, and ``labels.score[layer, feature]``
    is that feature's mean activation on the corpus prompts of its label: for a city, the prompts that
    ask for it (at their last token) and those that name it (at its last word).
    """
    last = activations.shape[1] - 1
    off = [(layer, last, feature, 0.0) for layer, feature in city_features(labels, source_city)
           if activations[layer, last, feature] > 0]
    on = [(layer, last, feature, strength * labels.score[layer, feature].item())
          for layer, feature in city_features(labels, target_city)]
    return off + on
