"""The natural wrong answers that workbook 3's checks recognise, each written as a learner might write it.

:mod:`helpers.lesson3.checks` runs them beside the learner's function and names the mistake whose output
the learner's matches. Each builder takes the mistake's mode and returns a function with the exercise's
signature.
"""
from __future__ import annotations

from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer
from transformer_lens.utils import get_act_name

from helpers.lesson3.graphs import FeatureLabels, city_features
from helpers.lesson3.reference import Metric, all_heads, attribution_patch_heads, logit_diff, run_with_mean_ablation

__all__ = ["per_prompt_diff", "cross_batch_diff", "last_prompt_diff", "sweep_mistake", "head_mistake",
           "corrupted_run_metric", "ablation_mistake",
           "faithfulness_mistake", "attribution_terms", "attribution_mistake", "logit_attribution_mistake",
           "edge_mistake", "influence_mistake", "switches_off", "swap_mistake"]


# ============================================================================ part one
def per_prompt_diff(logits: Float[Tensor, "batch pos d_vocab"], answer_tokens: Int[Tensor, "batch 2"],
                    position: int | None = -1) -> Float[Tensor, "batch ..."]:
    """Exercise 1 without the mean: right - wrong logit per prompt, at ``position`` (``None``: at every position)."""
    chosen = logits[:, position] if position is not None else logits     # [batch, d_vocab] or [batch, pos, d_vocab]
    index = answer_tokens if position is not None else answer_tokens[:, None, :].expand(-1, logits.shape[1], -1)
    picked = chosen.gather(-1, index)
    return picked[..., 0] - picked[..., 1]


def cross_batch_diff(logits: Float[Tensor, "batch pos d_vocab"], answer_tokens: Int[Tensor, "batch 2"]
                     ) -> Float[Tensor, ""]:
    """Exercise 1 with ``final[:, answer_tokens[:, 0]]``: every prompt's answer column read on every prompt
    (``[batch, batch]``), so the mean runs over all pairs of prompts, not over each prompt's own answers."""
    final = logits[:, -1]                                                  # [batch, d_vocab]
    return (final[:, answer_tokens[:, 0]] - final[:, answer_tokens[:, 1]]).mean()


def last_prompt_diff(logits: Float[Tensor, "batch pos d_vocab"], answer_tokens: Int[Tensor, "batch 2"]
                     ) -> Float[Tensor, ""]:
    """Exercise 1 with ``logits[-1]``: the last *prompt* ([pos, d_vocab]), its row i read as if it were prompt i
    (it fails where the batch is longer than the prompt)."""
    final = logits[-1]                                                     # [pos, d_vocab]
    rows = torch.arange(len(answer_tokens))
    return (final[rows, answer_tokens[:, 0]] - final[rows, answer_tokens[:, 1]]).mean()


def sweep_mistake(hook_name: Literal["resid_pre", "resid_mid", "resid_post"] = "resid_pre", upto: bool = False,
                  all_positions: bool = False):
    """Exercise 2 at another hook point, or patching positions ``:p + 1``, or every position at once."""
    def wrong(model, corrupted_tokens, clean_cache, metric) -> Tensor:
        n_pos = corrupted_tokens.shape[1]
        results = torch.zeros(model.cfg.n_layers, n_pos)
        for layer in range(model.cfg.n_layers):
            clean_resid = clean_cache[hook_name, layer]
            for position in range(n_pos):
                def hook(resid, hook, position=position, clean_resid=clean_resid):
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


def head_mistake(mode: Literal["all_heads", "last", "position"]):
    """Exercise 3 patching the whole layer, the last position only, or indexing a position for the head."""
    def wrong(model, corrupted_tokens, clean_cache, layer, head, metric) -> float:
        def hook(z, hook):
            clean = clean_cache["z", layer]
            if mode == "all_heads":
                z[:] = clean
            elif mode == "last":
                z[:, -1, head] = clean[:, -1, head]
            else:
                z[:, head] = clean[:, head]
            return z
        logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])
        return metric(logits).item()
    return wrong


def corrupted_run_metric(model, corrupted_tokens, clean_cache, layer, head, metric) -> float:
    """Exercise 3 with a hook that changes nothing (it rebinds ``z`` to a copy and returns ``None``): the metric
    of the unpatched corrupted run."""
    return metric(model(corrupted_tokens)).item()


def ablation_mistake(mode: Literal["zero", "pos_mean", "position", "late_binding", "means_head_first"]):
    """Exercise 4 with zero ablation, with the mean also taken over positions, indexing a position for the head,
    or (``"late_binding"``) hooks defined in the loop that read ``layer`` and ``head`` when they run, after the
    loop: every hook then ablates the last head of the list. ``"means_head_first"`` reads ``means[layer][head]``
    (a position's means of every head), which raises where it does not broadcast into ``z[:, :, head]``."""
    def wrong(model, tokens, heads, means):
        if mode == "late_binding":
            hooks = []
            for layer, head in heads:
                def hook(z, hook):
                    z[:, :, head] = means[layer][:, head]  # noqa: B023 - the late-binding mistake itself
                    return z
                hooks.append((get_act_name("z", layer), hook))
            return model.run_with_hooks(tokens, fwd_hooks=hooks)
        def make(layer, head):
            def hook(z, hook):
                if mode == "zero":
                    z[:, :, head] = 0.0
                elif mode == "pos_mean":
                    z[:, :, head] = means[layer][:, head].mean(0)
                elif mode == "means_head_first":
                    z[:, :, head] = means[layer][head]
                else:
                    z[:, head] = means[layer][head]
                return z
            return hook
        return model.run_with_hooks(tokens, fwd_hooks=[(get_act_name("z", layer), make(layer, head))
                                                       for layer, head in heads])
    return wrong


def faithfulness_mistake(mode: Literal["ablate_circuit", "raw", "inverted", "lost"]):
    """Exercise 5 ablating the circuit itself, or returning the raw, the inverted or the lost share."""
    def wrong(model, tokens, answer_tokens, circuit, means):
        keep = set(map(tuple, circuit))
        outside = [h for h in all_heads(model) if h not in keep]
        ablate = list(keep) if mode == "ablate_circuit" else outside
        clean = logit_diff(model(tokens), answer_tokens)
        ablated = logit_diff(run_with_mean_ablation(model, tokens, ablate, means), answer_tokens)
        return {"ablate_circuit": ablated / clean, "raw": ablated, "inverted": clean / ablated,
                "lost": 1 - ablated / clean}[mode].item()
    return wrong


def attribution_terms(model: HookedTransformer, clean_tokens: Int[Tensor, "batch pos"],
                      corrupted_tokens: Int[Tensor, "batch pos"], metric: Metric
                      ) -> list[tuple[Float[Tensor, "batch pos head_index d_head"],
                                      Float[Tensor, "batch pos head_index d_head"]]]:
    """Per layer: ``(clean_z - corrupted_z, d metric / d z on the corrupted run)``, the two factors of exercise 6."""
    is_z = lambda name: name.endswith("hook_z")
    _, clean_cache = model.run_with_cache(clean_tokens, names_filter=is_z)
    corrupted_z, grads = {}, {}

    def save_act(z: Tensor, hook) -> None:
        corrupted_z[hook.name] = z.detach()

    def save_grad(grad: Tensor, hook) -> None:
        grads[hook.name] = grad.detach()
    with torch.enable_grad(), model.hooks(fwd_hooks=[(is_z, save_act)], bwd_hooks=[(is_z, save_grad)]):
        metric(model(corrupted_tokens)).backward()
    model.zero_grad(set_to_none=True)
    names = [get_act_name("z", layer) for layer in range(model.cfg.n_layers)]
    return [(clean_cache[name] - corrupted_z[name], grads[name]) for name in names]


def attribution_mistake(mode: Literal["flipped", "clean_grad", "abs", "abs_sum", "no_delta"],
                        terms_of: dict | None = None):
    """Exercise 6 with the sign flipped, the gradient of the clean run, absolute values, or no delta.

    ``terms_of`` keeps the attribution terms of each case for the other mistakes, which all start from
    them: four mistakes cost one backward pass, not four."""
    terms_of = {} if terms_of is None else terms_of

    def wrong(model, clean_tokens, corrupted_tokens, metric):
        if mode == "clean_grad":   # gradient taken on the clean run
            return -attribution_patch_heads(model, corrupted_tokens, clean_tokens, metric)
        key = (id(model), id(metric), tuple(clean_tokens.flatten().tolist()),
               tuple(corrupted_tokens.flatten().tolist()))
        if key not in terms_of:
            terms_of[key] = attribution_terms(model, clean_tokens, corrupted_tokens, metric)
        combine = {"flipped": lambda d, g: -d * g, "abs": lambda d, g: (d * g).abs(),
                   "abs_sum": lambda d, g: d * g, "no_delta": lambda d, g: g}[mode]
        out = torch.stack([combine(delta, grad).sum(dim=(0, 1, 3)) for delta, grad in terms_of[key]])
        return out.abs() if mode == "abs_sum" else out
    return wrong


# ============================================================================ part two
def logit_attribution_mistake(center: bool = True, demean: bool = True, scale: bool = True):
    """Exercise 7 without the LayerNorm's centring, without its scale, or with the raw (not demeaned) logit."""
    def wrong(activation, decoder_vector, final_scale, W_U, token):
        x = activation * decoder_vector
        x = x - x.mean() if center else x
        x = x / final_scale if scale else x
        u = W_U[:, token] - W_U.mean(dim=1) if demean else W_U[:, token]
        return (x @ u).item()
    return wrong


def edge_mistake(residual: bool = True, heads: bool = True, transpose: bool = False, scale: bool = True,
                 center: bool = True):
    """Exercise 8 without one of its two paths, with the pattern transposed, or without the LayerNorm's steps."""
    def wrong(v, sp, e, tp, pattern, ln1_scale, W_V, W_O):
        total = (v @ e).item() if residual and sp == tp else 0.0
        x = v - v.mean() if center else v
        x = x / ln1_scale[sp] if scale else x
        weights = pattern[:, sp, tp] if transpose else pattern[:, tp, sp]
        if heads:
            total += torch.einsum("h,d,hde,hef,f->", weights, x, W_V, W_O, e).item()
        return total
    return wrong


def influence_mistake(absolute: bool = True, normalize: bool = True, depth: int | None = None,
                      include_logits: bool = False, columns: bool = False, no_abs: bool = False):
    """Exercise 9 with signed or unnormalised edges, paths of one length, the logits' own weight, or columns;
    ``no_abs``: no ``.abs()`` at all, so a row whose signed sum is near zero or negative (clamped to 1e-10)
    blows up."""
    def wrong(adjacency, logit_weights):
        a = adjacency.abs() if absolute and not no_abs else adjacency
        if normalize:
            a = a / (a if no_abs else a.abs()).sum(dim=0 if columns else 1, keepdim=True).clamp(min=1e-10)
        total = logit_weights.clone() if include_logits else torch.zeros_like(logit_weights)
        current, k = logit_weights @ a, 0
        while current.abs().sum() > 0 and (depth is None or k < depth) and k < 200:
            total, current, k = total + current, current @ a, k + 1
        return total
    return wrong


def switches_off(labels: FeatureLabels, activations: Float[Tensor, "layer pos d_sae"], source_city: str,
                 interventions: Any) -> bool:
    """Whether ``interventions`` (a learner's answer to exercise 10) set at least one of the source city's active
    features to 0 at the last position (always true when none of them is active)."""
    last = activations.shape[1] - 1
    active = {(layer, last, feature) for layer, feature in city_features(labels, source_city)
              if activations[layer, last, feature] > 0}
    try:
        zeroed = {(int(layer), int(position) % activations.shape[1], int(feature))
                  for layer, position, feature, value in interventions if abs(float(value)) <= 1e-6}
    except (TypeError, ValueError):
        return True                              # not circuit-tracer's tuples: the answers were graded already
    return not active or bool(active & zeroed)


def swap_mistake(labels: FeatureLabels, activations: Float[Tensor, "layer pos d_sae"], source_city: str,
                 target_city: str, interventions: Any) -> str | None:
    """What is wrong with a learner's exercise 10 ``interventions`` on one prompt where the answer did not move
    to ``target_city``, or ``None`` when nothing in them explains it."""
    n_pos = activations.shape[1]
    try:
        items = [(int(layer), int(position) % n_pos, int(feature), float(value))
                 for layer, position, feature, value in interventions]
    except (TypeError, ValueError):
        return None
    if not items:
        return ("you returned no interventions: switch the source city's features off and push the target "
                "city's features up, as (layer, position, feature, value) tuples")
    if any(position != n_pos - 1 for _, position, _, _ in items):
        return ("you intervened away from the last position: the city is predicted at the last token, so use "
                "position activations.shape[1] - 1 for every intervention")
    source, target = set(city_features(labels, source_city)), set(city_features(labels, target_city))
    pushed = {(layer, feature): value for layer, _, feature, value in items if value > 0}
    if set(pushed) & source and not set(pushed) & target:
        return ("you pushed the source city's features up: it is the other way round, switch source_city's features "
                "off (value 0) and push target_city's up")
    if not pushed:
        return ("you only switched the source city's features off: also push the target city's features up, to "
                "20 times their typical activation (labels.score)")
    if not set(pushed) & target:
        return ("the features you pushed are not labelled with the target city: take them from "
                "city_features(labels, target_city), for the cities you are given")
    push = max(value / labels.score[layer, feature].item() for (layer, feature), value in pushed.items()
               if (layer, feature) in target)
    if push < 15:
        return (f"the push is too weak ({push:.0f} times the features' typical activation): set the target city's "
                f"features to about 20 times labels.score[layer, feature]")
    return None
