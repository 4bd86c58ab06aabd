"""The natural wrong answers that workbook 1's checks recognise, each written as a learner might write it.

:mod:`helpers.lesson1.checks` runs them beside the learner's function and names the mistake whose output
the learner's matches. Each builder takes the mistake's switches and returns a function with the
exercise's signature; the rest have the exercise's signature themselves.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache, HookedTransformer
from transformer_lens.hook_points import HookPoint
from transformer_lens.utils import get_act_name

from helpers.lesson1.reference import head_logit_attribution

__all__ = ["N_LAYERS_MSG", "rebuild_mistake", "dla_not_centred", "dla_no_layernorm", "dla_previous_position",
           "previous_token_offset", "induction_offset", "induction_transposed", "ablation_mistake",
           "composition_mistake", "targets_mistake"]

N_LAYERS_MSG = ("you used a fixed number of layers (the workbook model's model.cfg.n_layers is 2): use the "
                "n_layers argument, the check also hands you caches of other models")

Scores = Float[Tensor, "layer head_index"]


# ----------------------------------------------------------------------------- exercise 1
def rebuild_mistake(embed: bool = True, pos: bool = True, mlp: bool = True,
                    layers_short: int = 0) -> Callable[[ActivationCache, HookedTransformer], Tensor]:
    """Exercise 1 without the token embedding, the positional embedding or the MLPs, or stopping layers early."""
    def wrong(cache: ActivationCache, model: HookedTransformer) -> Float[Tensor, "batch pos d_model"]:
        resid = cache["embed"].clone() if embed else torch.zeros_like(cache["embed"])
        if pos and model.cfg.positional_embedding_type == "standard":
            resid += cache["pos_embed"]
        for layer in range(model.cfg.n_layers - layers_short):
            resid += cache["attn_out", layer]
            if mlp and not model.cfg.attn_only:
                resid += cache["mlp_out", layer]
        return resid
    return wrong


# ----------------------------------------------------------------------------- exercise 2
def dla_not_centred(cache: ActivationCache, model: HookedTransformer, token_id: int, pos: int) -> Scores:
    """Exercise 2 without subtracting each head's mean over ``d_model``."""
    scale = cache["ln_final.hook_scale"][0, pos]
    return torch.stack([cache["result", layer][0, pos] / scale @ model.W_U[:, token_id]
                        for layer in range(model.cfg.n_layers)])


def dla_no_layernorm(cache: ActivationCache, model: HookedTransformer, token_id: int, pos: int) -> Scores:
    """Exercise 2 without dividing by the final LayerNorm's scale."""
    scale = cache["ln_final.hook_scale"][0, pos]
    return head_logit_attribution(cache, model, token_id, pos) * scale


def dla_previous_position(cache: ActivationCache, model: HookedTransformer, token_id: int, pos: int) -> Scores:
    """Exercise 2 read one position too early."""
    return head_logit_attribution(cache, model, token_id, pos - 1)


# ----------------------------------------------------------------------------- exercises 3 and 4
def previous_token_offset(offset: int, start: int = 1,
                          stop: int | None = None) -> Callable[[ActivationCache, int], Tensor]:
    """Exercise 3 on another diagonal (``offset``) or another slice ``[start:stop]`` of it."""
    def wrong(cache: ActivationCache, n_layers: int) -> Scores:
        return torch.stack([cache["pattern", layer].diagonal(offset=offset, dim1=-2, dim2=-1)[..., start:stop]
                            .mean((0, -1)) for layer in range(n_layers)])
    return wrong


def induction_offset(offset_from_half: int, start: int = 2,
                     stop: int | None = None) -> Callable[[ActivationCache, int, int], Tensor]:
    """Exercise 4 on the diagonal ``offset_from_half - half_len``, sliced ``[start:stop]``."""
    def wrong(cache: ActivationCache, n_layers: int, half_len: int) -> Scores:
        return torch.stack([cache["pattern", layer].diagonal(offset=offset_from_half - half_len, dim1=-2, dim2=-1)
                            [..., start:stop].mean((0, -1)) for layer in range(n_layers)])
    return wrong


def induction_transposed(cache: ActivationCache, n_layers: int, half_len: int) -> Scores:
    """Exercise 4 with query and key swapped: the diagonal above the main one (all zeros in a causal model)."""
    return torch.stack([cache["pattern", layer].diagonal(offset=half_len - 1, dim1=-2, dim2=-1)[..., :half_len]
                        .mean((0, -1)) for layer in range(n_layers)])


# ----------------------------------------------------------------------------- exercise 5
def ablation_mistake(index_pos: bool = False, every_layer: bool = False, whole_layer: bool = False,
                     all_tokens: bool = False, flipped: bool = False, with_first: bool = False
                     ) -> Callable[[HookedTransformer, Tensor, Sequence[tuple[int, int]], int], float]:
    """Exercise 5 zeroing a position, a head in every layer or a whole layer; or measuring the wrong tokens or sign."""
    def wrong(model: HookedTransformer, tokens: Int[Tensor, "batch pos"], heads: Sequence[tuple[int, int]],
              half_len: int) -> float:
        def hook(act: Tensor, hook: HookPoint) -> Tensor:
            for layer, head in heads:
                if whole_layer and layer == hook.layer():
                    act[:] = 0.0
                elif every_layer or layer == hook.layer():
                    if index_pos:
                        act[:, head] = 0.0
                    else:
                        act[:, :, head] = 0.0
            return act
        layers = range(model.cfg.n_layers) if every_layer else sorted({layer for layer, _ in heads})
        name = "attn_out" if whole_layer else "z"
        hooks = [(get_act_name(name, layer), hook) for layer in layers] if heads else []
        start = 0 if all_tokens else half_len if with_first else half_len + 1
        with torch.no_grad():
            clean = model(tokens, return_type="loss", loss_per_token=True)[:, start:].mean().item()
            ablated = model.run_with_hooks(tokens, return_type="loss", loss_per_token=True,
                                           fwd_hooks=hooks)[:, start:].mean().item()
        return clean - ablated if flipped else ablated - clean
    return wrong


# ----------------------------------------------------------------------------- exercise 6
def composition_mistake(mode: Literal["Q", "K", "V"] = "K", normalise: bool = True, swap: bool = False
                        ) -> Callable[[HookedTransformer, tuple[int, int], tuple[int, int]], float]:
    """Exercise 6 as another composition (``mode``), without the norms, or with the two heads swapped."""
    def wrong(model: HookedTransformer, early: tuple[int, int], late: tuple[int, int]) -> float:
        if swap:
            early, late = late, early
        w_ov = model.W_V[early] @ model.W_O[early]
        right = {"K": (model.W_Q[late] @ model.W_K[late].T).T, "Q": model.W_Q[late] @ model.W_K[late].T,
                 "V": model.W_V[late] @ model.W_O[late]}[mode]
        product = (w_ov @ right).norm()
        return (product / (w_ov.norm() * right.norm()) if normalise else product).item()
    return wrong


# ----------------------------------------------------------------------------- exercise 7
def targets_mistake(plus_one: bool = True, first: bool = False, include_self: bool = False,
                    missing: int = -1, look_ahead: bool = False) -> Callable[[Tensor], Tensor]:
    """Exercise 7 without the +1, with the first occurrence, counting ``q`` itself or later positions, or
    with ``missing`` instead of -1 where the token did not occur before."""
    def wrong(tokens: Int[Tensor, "pos"]) -> Int[Tensor, "pos"]:
        values, targets = tokens.tolist(), []
        for q, token in enumerate(values):
            searched = [k for k in range(len(values)) if k != q] if look_ahead else range(q + include_self)
            earlier = [k for k in searched if values[k] == token]
            if not earlier:
                targets.append(missing)
            else:
                k = earlier[0] if first else earlier[-1]
                targets.append(k + plus_one)
        return torch.tensor(targets, dtype=torch.long)
    return wrong
