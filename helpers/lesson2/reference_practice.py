"""The reference answer of every exercise of workbook 2b (SAEs in practice), named exactly like the exercise.

1. :func:`topk_activation`: the TopK SAE's activation (SAELens's ``TopK``);
2. :func:`jumprelu`: the JumpReLU SAE's activation (SAELens's ``JumpReLUSAE.encode`` after the encoder);
3. :func:`feature_logit_lens`: the tokens a latent's decoder direction pushes up, ``W_dec[latent] @ W_U``;
4. :func:`splice_with_error_term`: the SAE spliced into the model by hand, its error term added back (what
   ``HookedSAETransformer`` does with ``use_error_term=True``);
5. :func:`shrinkage_factor`: the least-squares scale of an SAE's activations against the true feature values;
6. :func:`clamp_with_sae_hook`: steering with a hook on ``HookedSAETransformer``'s ``hook_sae_acts_post``;
7. :func:`correlated_feature_batch`: sparse features that fire in correlated or anticorrelated pairs.

Shapes use the names of :mod:`helpers.shapes`. This module imports nothing from the rest of the lesson, so
that :mod:`helpers.lesson2.reference` can re-export it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from jaxtyping import Float, Int
from sae_lens import SAE, HookedSAETransformer
from torch import Tensor
from transformer_lens import HookedTransformer

LatentEdit = Callable[[Tensor], Tensor]
"""``edit_latents(latents) -> new latents``, both ``[batch, pos, d_sae]``; returns a new tensor."""
CorrelationKind = Literal["independent", "correlated", "anticorrelated"]

__all__ = ["LatentEdit", "CorrelationKind", "topk_activation", "jumprelu", "feature_logit_lens",
           "splice_with_error_term", "shrinkage_factor", "clamp_with_sae_hook", "correlated_feature_batch"]


def topk_activation(pre_acts: Float[Tensor, "*batch d_sae"], k: int) -> Float[Tensor, "*batch d_sae"]:
    """Exercise 1. Keep the ``k`` largest pre-activations of each row (the last dimension), zero the rest, then
    apply a ReLU to the kept ones, as SAELens's ``TopK`` does (a kept negative value becomes 0)."""
    values, indices = pre_acts.topk(k, dim=-1)
    return torch.zeros_like(pre_acts).scatter(-1, indices, values.relu())


def jumprelu(pre_acts: Float[Tensor, "*batch d_sae"], threshold: Float[Tensor, "d_sae"]
             ) -> Float[Tensor, "*batch d_sae"]:
    """Exercise 2. JumpReLU: a latent keeps its whole pre-activation when it is above that latent's threshold,
    else 0 (``ReLU(x) * (x > threshold)``, SAELens's ``JumpReLUSAE``). The threshold decides *whether* a latent
    fires; it takes nothing off *how much*."""
    return pre_acts.relu() * (pre_acts > threshold)


def feature_logit_lens(sae: SAE, model: HookedTransformer, latent: int, k: int) -> Int[Tensor, "_d_vocab"]:
    """Exercise 3. The ``k`` tokens whose logits the latent's decoder direction raises most, most raised first.

    The direction is row ``sae.W_dec[latent]`` (``[d_model]``); its direct effect on the logits is
    ``W_dec[latent] @ model.W_U`` (``[d_vocab]``), ignoring the final LayerNorm's rescaling and everything the
    later blocks do with it. The unembedding's bias ``b_U`` is the same whichever latent fires, so it is left out.
    """
    return (sae.W_dec[latent] @ model.W_U).topk(k).indices


def splice_with_error_term(model: HookedTransformer, sae: SAE, tokens: Int[Tensor, "batch pos"],
                           edit_latents: LatentEdit | None = None) -> Float[Tensor, "batch pos d_vocab"]:
    """Exercise 4. Logits with the SAE spliced in at its hook, its latents edited, and its error term kept.

    At ``sae.cfg.metadata.hook_name``: ``latents = sae.encode(resid)``; ``error = resid - sae.decode(latents)``
    (what the SAE misses, from the latents *before* the edit); the residual stream becomes
    ``sae.decode(edit_latents(latents)) + error``. With no edit the logits are the model's own (up to float
    rounding). This is what ``HookedSAETransformer`` computes with ``use_error_term=True`` and a hook on
    ``hook_sae_acts_post`` that does the edit.
    """
    def hook_fn(resid: Float[Tensor, "batch pos d_model"], hook: object) -> Float[Tensor, "batch pos d_model"]:
        latents = sae.encode(resid)
        error = resid - sae.decode(latents)
        edited = latents if edit_latents is None else edit_latents(latents)
        return sae.decode(edited) + error

    return model.run_with_hooks(tokens, fwd_hooks=[(sae.cfg.metadata.hook_name, hook_fn)])


def shrinkage_factor(true_values: Float[Tensor, "example feature"], sae_values: Float[Tensor, "example feature"]
                     ) -> float:
    """Exercise 5. The least-squares scale ``s`` of ``sae_value ≈ s * true_value``, on the entries where both fire.

    Column f of ``sae_values`` is the latent matched to planted feature f. ``s = Σ t·a / Σ t²`` over the entries
    where the true value ``t`` and the SAE's value ``a`` are both non-zero; 1 means no shrinkage.
    """
    both = (true_values != 0) & (sae_values != 0)
    t, a = true_values[both].detach(), sae_values[both].detach()
    return float((t * a).sum() / (t * t).sum())


def clamp_with_sae_hook(model: HookedSAETransformer, sae: SAE, tokens: Int[Tensor, "batch pos"], latent: int,
                        value: float) -> Float[Tensor, "batch pos d_vocab"]:
    """Exercise 6. Logits with latent ``latent`` set to ``value`` at every position, by a hook on the spliced SAE's
    ``<hook_name>.hook_sae_acts_post``, the SAE attached with ``use_error_term=True`` for this run only.

    The same numbers as lesson 2's hand-written ``run_with_clamp``: the error term is computed from the
    unclamped latents, so the clamp is the only change.
    """
    def clamp(acts: Float[Tensor, "batch pos d_sae"], hook: object) -> Float[Tensor, "batch pos d_sae"]:
        acts = acts.clone()
        acts[..., latent] = value
        return acts

    with model.saes(saes=[sae], use_error_term=True):
        return model.run_with_hooks(tokens, fwd_hooks=[(f"{sae.cfg.metadata.hook_name}.hook_sae_acts_post", clamp)])


def correlated_feature_batch(n: int, n_features: int, probability: float, kind: CorrelationKind,
                             generator: torch.Generator) -> Float[Tensor, "batch feature"]:
    """Exercise 7. ``n`` examples of sparse features that come in pairs ``(0, 1), (2, 3), ...``.

    Every feature fires with probability ``probability``, with a value uniform in [0, 1] (else 0); the pairs
    are independent of each other. Within a pair: ``"independent"``, each fires on its own; ``"correlated"``,
    the two always fire together (the pair is on with probability ``probability``); ``"anticorrelated"``,
    never together (the pair is on with probability ``2 * probability``, then one of its two, at random,
    fires). All randomness comes from ``generator``.
    """
    n_pairs = n_features // 2
    values = torch.rand(n, n_features, generator=generator)
    if kind == "independent":
        fires = torch.rand(n, n_features, generator=generator) < probability
    elif kind == "correlated":
        fires = (torch.rand(n, n_pairs, generator=generator) < probability).repeat_interleave(2, dim=1)
    else:
        on = torch.rand(n, n_pairs, generator=generator) < 2 * probability
        second = torch.rand(n, n_pairs, generator=generator) < 0.5
        fires = torch.stack([on & ~second, on & second], dim=-1).flatten(1)
    return values * fires
