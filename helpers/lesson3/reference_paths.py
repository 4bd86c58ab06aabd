"""The reference answers of workbook 3c (paths, positions, and a graph that explains a choice), named like the
exercises.

Exercise 11 :func:`patch_head_at_position`, 12 :func:`patch_head_input`, 13 :func:`path_patch`,
14 :func:`logit_diff_direction`, 15 :func:`direct_logit_diff`, 16 :func:`denoising_effect`,
17 :func:`noising_effect`, 18 :func:`swap_carry_length`.

Patching follows TransformerLens's convention (``transformer_lens.patching``): a *denoising* patch copies an
activation of the clean run into the corrupted run, and ``metric`` reads the patched logits. A head is written
``(layer, head)``; ``"0.4"`` in prose. This module imports nothing from :mod:`helpers.lesson3.reference` (that
module re-exports this one, for the exercise checklist).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache, HookedTransformer
from transformer_lens.utils import get_act_name

Component = Literal["q", "k", "v"]       # a head's query, key or value input
PathHead = tuple[int, int]                # (layer, head), as lesson3.Head
PathMetric = Callable[[Tensor], Tensor]   # logits [batch, pos, d_vocab] -> a scalar tensor
PlaceSide = Literal["source", "target", "other place"]   # lesson 3c's sides of a generated word (None: no place)

__all__ = ["Component", "patch_head_at_position", "patch_head_input", "sender_output_change", "path_patch",
           "logit_diff_direction", "direct_logit_diff", "answer_logit_diff", "denoising_effect", "noising_effect",
           "PlaceSide", "swap_carry_length"]


# ----------------------------------------------------------------------------- exercise 11: one head, one position
def patch_head_at_position(model: HookedTransformer, corrupted_tokens: Int[Tensor, "batch pos"],
                           clean_cache: ActivationCache, layer: int, head: int, pos: int, metric: PathMetric) -> float:
    """``metric`` of the corrupted run with head ``layer.head``'s output (``hook_z``) at position ``pos`` alone
    taken from the clean run (every prompt of the batch at once).

    One entry of ``transformer_lens.patching.get_act_patch_attn_head_out_by_pos``: its ``[layer, pos, head]``.
    """
    def hook(z: Tensor, hook) -> Tensor:                   # z: [batch, pos, head_index, d_head]
        z[:, pos, head] = clean_cache["z", layer][:, pos, head]
        return z
    logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])
    return metric(logits).item()


# ----------------------------------------------------------------------------- exercise 12: a head's q, k or v
def patch_head_input(model: HookedTransformer, corrupted_tokens: Int[Tensor, "batch pos"],
                     clean_cache: ActivationCache, layer: int, head: int, component: Component,
                     metric: PathMetric) -> float:
    """``metric`` of the corrupted run with one head's queries, keys or values (``hook_q``, ``hook_k`` or
    ``hook_v``, ``[batch, pos, head_index, d_head]``, every position) taken from the clean run.

    What the head *reads* is then clean on one of its three inputs and corrupted on the other two. One entry of
    ``transformer_lens.patching.get_act_patch_attn_head_q_all_pos`` (``k_all_pos``, ``v_all_pos``).
    """
    def hook(act: Tensor, hook) -> Tensor:
        act[:, :, head] = clean_cache[component, layer][:, :, head]
        return act
    logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name(component, layer), hook)])
    return metric(logits).item()


# ----------------------------------------------------------------------------- exercise 13: path patching
def sender_output_change(model: HookedTransformer, clean_cache: ActivationCache, corrupted_cache: ActivationCache,
                         sender: PathHead) -> Float[Tensor, "batch pos d_model"]:
    """What head ``sender`` writes into the residual stream on the corrupted run minus what it writes on the clean
    run: ``(z_corrupted - z_clean) @ W_O`` of that head (its bias ``b_O`` is the same in both runs)."""
    layer, head = sender
    delta_z = corrupted_cache["z", layer][:, :, head] - clean_cache["z", layer][:, :, head]   # [batch, pos, d_head]
    return delta_z @ model.W_O[layer, head]


def path_patch(model: HookedTransformer, clean_tokens: Int[Tensor, "batch pos"],
               corrupted_tokens: Int[Tensor, "batch pos"], sender: PathHead, receiver: PathHead,
               component: Component, metric: PathMetric) -> float:
    """``metric`` of the clean run where head ``sender``'s output is corrupted on the path into head ``receiver``'s
    ``component`` input only.

    The receiver's query (``"q"``), key (``"k"``) or value (``"v"``) input is computed from the residual stream
    before its block as it would be if the sender's output alone had come from the corrupted run, and every other
    head and MLP had stayed as on the clean run: the clean residual stream plus the change of the sender's output
    (:func:`sender_output_change`). Nothing else reads the change; what the receiver then writes flows on through
    the later blocks as usual. A receiver in the sender's block or an earlier one reads nothing the sender writes:
    the run is the clean run.

    Equivalently (the "three runs" of Wang et al. 2022, with the MLPs frozen too): run the clean tokens with the
    sender's ``hook_z`` from the corrupted run and every other head's ``hook_z`` and every ``hook_mlp_out`` frozen
    at clean, record the residual stream before the receiver's block, and patch it into the receiver's input only
    (``model.set_use_split_qkv_input(True)`` and ``hook_q_input`` / ``hook_k_input`` / ``hook_v_input``).
    """
    (sender_layer, _), (receiver_layer, receiver_head) = sender, receiver
    if receiver_layer <= sender_layer:
        return metric(model(clean_tokens)).item()
    _, clean_cache = model.run_with_cache(clean_tokens)
    _, corrupted_cache = model.run_with_cache(corrupted_tokens, names_filter=lambda name: name.endswith("hook_z"))
    resid = clean_cache["resid_pre", receiver_layer] + sender_output_change(model, clean_cache, corrupted_cache, sender)
    block = model.blocks[receiver_layer]
    weight = {"q": block.attn.W_Q, "k": block.attn.W_K, "v": block.attn.W_V}[component][receiver_head]
    bias = {"q": block.attn.b_Q, "k": block.attn.b_K, "v": block.attn.b_V}[component][receiver_head]
    patched = block.ln1(resid) @ weight + bias                           # [batch, pos, d_head]

    def hook(act: Tensor, hook) -> Tensor:                              # act: [batch, pos, head_index, d_head]
        act[:, :, receiver_head] = patched
        return act
    logits = model.run_with_hooks(clean_tokens, fwd_hooks=[(get_act_name(component, receiver_layer), hook)])
    return metric(logits).item()


# ----------------------------------------------------------------------------- exercise 14: the target's direction
def logit_diff_direction(model: HookedTransformer, answer_tokens: Int[Tensor, "batch 2"]
                         ) -> Float[Tensor, "batch d_model"]:
    """For each prompt, the direction in the final residual stream (after the final LayerNorm) that the logit
    difference reads: ``W_U[:, right] - W_U[:, wrong]``, with ``answer_tokens[i] = (right, wrong)``.

    It is the ``vec`` of circuit-tracer's ``CustomTarget`` for the logit difference of one prompt.
    """
    return (model.W_U[:, answer_tokens[:, 0]] - model.W_U[:, answer_tokens[:, 1]]).T


# ----------------------------------------------------------------------------- exercise 15: read it off the stream
def direct_logit_diff(model: HookedTransformer, final_resid: Float[Tensor, "batch pos d_model"],
                      answer_tokens: Int[Tensor, "batch 2"]) -> Float[Tensor, "batch"]:
    """Each prompt's logit difference (right minus wrong) at the last position, read off the residual stream
    after the last block (``final_resid``): the final LayerNorm, then the dot product with the prompt's own
    :func:`logit_diff_direction`, plus the difference of the two unembedding biases."""
    normalized = model.ln_final(final_resid[:, -1])                              # [batch, d_model]
    along = (normalized * logit_diff_direction(model, answer_tokens)).sum(-1)     # [batch]
    return along + model.b_U[answer_tokens[:, 0]] - model.b_U[answer_tokens[:, 1]]


# ----------------------------------------------------------------------------- exercises 16 and 17: both directions
def answer_logit_diff(logits: Float[Tensor, "batch pos d_vocab"], answer_tokens: Int[Tensor, "batch 2"]) -> float:
    """Mean over the batch of logit(right) - logit(wrong) at the last position (exercise 1's, as a float)."""
    picked = logits[:, -1].gather(-1, answer_tokens)
    return (picked[:, 0] - picked[:, 1]).mean().item()


def _run_with_heads_from(model: HookedTransformer, tokens: Int[Tensor, "batch pos"], source: ActivationCache,
                         heads: Sequence[PathHead]) -> Float[Tensor, "batch pos d_vocab"]:
    """Run ``tokens`` with every head of ``heads`` (``hook_z``, every position) taken from ``source``."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def make_hook(layer: int, layer_heads: list[int]):
        def hook(z: Tensor, hook) -> Tensor:
            z[:, :, layer_heads] = source["z", layer][:, :, layer_heads]
            return z
        return hook
    return model.run_with_hooks(tokens, fwd_hooks=[(get_act_name("z", layer), make_hook(layer, hs))
                                                   for layer, hs in by_layer.items()])


def denoising_effect(model: HookedTransformer, clean_tokens: Int[Tensor, "batch pos"],
                     corrupted_tokens: Int[Tensor, "batch pos"], answer_tokens: Int[Tensor, "batch 2"],
                     heads: Sequence[PathHead]) -> float:
    """Share of the logit difference that ``heads`` restore: run the *corrupted* tokens with those heads' outputs
    (``hook_z``, every position) from the clean run. ``(patched - corrupted) / (clean - corrupted)`` of the mean
    logit difference: 1 when the heads alone bring the clean answer back, 0 when they do nothing."""
    names = lambda name: name.endswith("hook_z")
    clean_logits, clean_cache = model.run_with_cache(clean_tokens, names_filter=names)
    clean, corrupted = answer_logit_diff(clean_logits, answer_tokens), answer_logit_diff(model(corrupted_tokens),
                                                                                         answer_tokens)
    patched = answer_logit_diff(_run_with_heads_from(model, corrupted_tokens, clean_cache, heads), answer_tokens)
    return (patched - corrupted) / (clean - corrupted)


def noising_effect(model: HookedTransformer, clean_tokens: Int[Tensor, "batch pos"],
                   corrupted_tokens: Int[Tensor, "batch pos"], answer_tokens: Int[Tensor, "batch 2"],
                   heads: Sequence[PathHead]) -> float:
    """Share of the logit difference that ``heads`` destroy: run the *clean* tokens with those heads' outputs
    (``hook_z``, every position) from the corrupted run. ``(clean - patched) / (clean - corrupted)``: 1 when
    corrupting the heads alone loses all of it, 0 when the model does not need them."""
    names = lambda name: name.endswith("hook_z")
    corrupted_logits, corrupted_cache = model.run_with_cache(corrupted_tokens, names_filter=names)
    clean, corrupted = answer_logit_diff(model(clean_tokens), answer_tokens), answer_logit_diff(corrupted_logits,
                                                                                                answer_tokens)
    patched = answer_logit_diff(_run_with_heads_from(model, clean_tokens, corrupted_cache, heads), answer_tokens)
    return (clean - patched) / (clean - corrupted)


# ----------------------------------------------------------------------------- exercise 18: how far a swap carries
def swap_carry_length(sides: Sequence[PlaceSide | None]) -> int:
    """How many generated words a city swap carries, from the side of each word the model wrote after it.

    ``sides[0]`` is the answer, the first generated word; each entry is ``"source"`` (the prompt's own city or its
    country), ``"target"`` (the injected city or its country), ``"other place"`` or ``None`` (not a place). The
    swap carries 0 words when the answer is not the target's; otherwise it carries every word up to the first one
    after the answer that goes back to the source's side (that word excluded), or all of them if none does.
    Words that are not places, or other places, neither end nor break the carry.
    """
    if not sides or sides[0] != "target":
        return 0
    return next((i for i, side in enumerate(sides) if i > 0 and side == "source"), len(sides))
