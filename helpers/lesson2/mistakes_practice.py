"""Natural wrong answers to workbook 2b's exercises, for the checks to name, and the grading of a feature sampler.

Each builder computes what a learner who made one mistake would return, so that a check can tell the learner
which mistake their output matches; ``tests/test_lesson2_practice_workbook.py`` builds its wrong answers from the
same functions. :func:`sampler_verdict` grades exercise 7's random sampler by what it draws.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from sae_lens import SAE, HookedSAETransformer
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers.lesson2.reference_practice import CorrelationKind, LatentEdit

SamplerVerdict = Literal["ok", "bad-output", "bad-values", "ignores-generator", "magnitude-one", "magnitude",
                         "rate-half", "rate", "correlated-independent", "anticorrelated-both", "independent-linked",
                         "pairs-linked"]

__all__ = ["topk_variant", "jumprelu_variant", "logit_lens_variant", "splice_variant", "shrinkage_variant",
           "clamp_hook_variant", "SamplerVerdict", "SAMPLER_MESSAGES", "SAMPLES", "sampler_verdict"]


# ============================================================================ exercises 1 and 2
def topk_variant(pre_acts: Float[Tensor, "*batch d_sae"], k: int, dim: int = -1, largest: bool = True,
                 relu: bool = True, extra: int = 0, by_size: bool = False) -> Float[Tensor, "*batch d_sae"]:
    """``topk_activation`` over another ``dim``, keeping the smallest, without the ReLU, keeping ``k + extra``
    values, or choosing the largest by absolute value (``by_size``)."""
    score = pre_acts.abs() if by_size else pre_acts
    indices = score.topk(k + extra, dim=dim, largest=largest).indices
    values = pre_acts.gather(dim, indices)
    return torch.zeros_like(pre_acts).scatter(dim, indices, values.relu() if relu else values)


def jumprelu_variant(pre_acts: Float[Tensor, "*batch d_sae"], threshold: Float[Tensor, "d_sae"],
                     mode: Literal["shifted", "mask", "per-example", "relu"]) -> Float[Tensor, "*batch d_sae"]:
    """JumpReLU as a shifted ReLU (``ReLU(x - θ)``), as the 0/1 mask alone, with the thresholds lined up with the
    examples instead of the latents (square inputs only), or as a plain ReLU (the threshold ignored)."""
    if mode == "shifted":
        return (pre_acts - threshold).relu()
    if mode == "mask":
        return (pre_acts > threshold).float()
    if mode == "per-example":
        if pre_acts.ndim != 2 or pre_acts.shape[0] != pre_acts.shape[1]:
            raise ValueError("only square inputs let this mistake through")
        return pre_acts.relu() * (pre_acts > threshold[:, None])
    return pre_acts.relu()


# ============================================================================ exercise 3
def logit_lens_variant(sae: SAE, model: HookedTransformer, latent: int, k: int,
                       mode: Literal["W_enc", "bottom", "column", "W_E", "b_U"]) -> Int[Tensor, "_d_vocab"]:
    """The feature logit lens read from the encoder's column, as the bottom k, from a column of ``W_dec``
    (square SAEs only), through the embedding instead of the unembedding, or with ``b_U`` added."""
    if mode == "W_enc":
        return (sae.W_enc[:, latent] @ model.W_U).topk(k).indices
    if mode == "bottom":
        return (sae.W_dec[latent] @ model.W_U).topk(k, largest=False).indices
    if mode == "column":
        return (sae.W_dec[:, latent] @ model.W_U).topk(k).indices
    if mode == "W_E":
        return (sae.W_dec[latent] @ model.W_E.T).topk(k).indices
    return (sae.W_dec[latent] @ model.W_U + model.b_U).topk(k).indices


# ============================================================================ exercise 4
def splice_variant(model: HookedTransformer, sae: SAE, tokens: Int[Tensor, "batch pos"],
                   edit_latents: LatentEdit | None,
                   error: Literal["kept", "none", "flipped", "from-edited"] = "kept", edit: bool = True,
                   hook_name: str | None = None) -> Float[Tensor, "batch pos d_vocab"]:
    """``splice_with_error_term`` without the error term, with it subtracted, computed from the edited latents,
    without applying the edit, or at another hook."""
    def hook_fn(resid: Float[Tensor, "batch pos d_model"], hook: object) -> Float[Tensor, "batch pos d_model"]:
        latents = sae.encode(resid)
        edited = latents if edit_latents is None or not edit else edit_latents(latents)
        reconstruction = sae.decode(edited)
        if error == "none":
            return reconstruction
        if error == "flipped":
            return reconstruction - (resid - sae.decode(latents))
        if error == "from-edited":
            return reconstruction + (resid - reconstruction)
        return reconstruction + (resid - sae.decode(latents))

    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name or sae.cfg.metadata.hook_name, hook_fn)])


# ============================================================================ exercise 5
def shrinkage_variant(true_values: Float[Tensor, "example feature"], sae_values: Float[Tensor, "example feature"],
                      mode: Literal["ratio-of-means", "with-zeros", "inverse", "mean-of-ratios", "norms"]) -> float:
    """The shrinkage as a ratio of means, over every entry (the SAE's misses counted as zeros), with true and SAE
    values swapped, as the mean of the ratios, or as a ratio of norms."""
    both = (true_values != 0) & (sae_values != 0)
    t, a = true_values[both], sae_values[both]
    if mode == "ratio-of-means":
        return float(a.mean() / t.mean())
    if mode == "with-zeros":
        return float((true_values * sae_values).sum() / (true_values ** 2).sum())
    if mode == "inverse":
        return float((t * a).sum() / (a * a).sum())
    if mode == "mean-of-ratios":
        return float((a / t).mean())
    return float(a.norm() / t.norm())


# ============================================================================ exercise 6
def clamp_hook_variant(model: HookedSAETransformer, sae: SAE, tokens: Int[Tensor, "batch pos"], latent: int,
                       value: float, mode: Literal["all", "add", "no-return", "no-error", "last"]
                       ) -> Float[Tensor, "batch pos d_vocab"]:
    """The clamp on ``hook_sae_acts_post`` setting every latent, adding ``value``, returning nothing (edits a copy),
    with the SAE attached without its error term, or at the last position only."""
    def clamp(acts: Float[Tensor, "batch pos d_sae"], hook: object) -> Any:
        new = acts.clone()
        if mode == "all":
            new[:] = value
        elif mode == "add":
            new[..., latent] += value
        elif mode == "last":
            new[:, -1, latent] = value
        else:
            new[..., latent] = value
        return None if mode == "no-return" else new

    with model.saes(saes=[sae], use_error_term=mode != "no-error"):
        return model.run_with_hooks(tokens, fwd_hooks=[(f"{sae.cfg.metadata.hook_name}.hook_sae_acts_post", clamp)])


# ============================================================================ exercise 7: grading a sampler
SAMPLES = 40_000           # examples drawn per case: a feature's firing rate is then known to ±5% of p at p = 0.05
SAMPLER_MESSAGES: dict[SamplerVerdict, str] = {
    "bad-output": "return one tensor of shape [n, n_features], one row per example",
    "bad-values": "every value must be 0 (the feature is off) or in [0, 1] (its size when it fires)",
    "ignores-generator": "two calls with generators seeded alike gave different batches: draw every random number "
                         "with generator=generator (torch.rand(..., generator=generator)), not from torch's global one",
    "magnitude-one": "every feature that fires has the value 1: give it a size drawn uniformly in [0, 1]",
    "magnitude": "the values of the features that fire are not uniform in [0, 1] (their mean should be about 0.5)",
    "rate-half": "each feature fires half as often as it should: in an anticorrelated pair the pair is on with "
                 "probability 2 * probability, and then one of its two features fires",
    "rate": "a feature does not fire with the probability asked for (count how often each column is non-zero)",
    "correlated-independent": "the two features of a correlated pair fire independently: draw one 'on' per pair and "
                              "use it for both features",
    "anticorrelated-both": "the two features of an anticorrelated pair sometimes fire together: they never should",
    "independent-linked": "with kind 'independent' the two features of a pair fire together more often than chance: "
                          "draw a separate 'on' for every feature",
    "pairs-linked": "different pairs fire together more often than chance: each pair needs its own random draw",
}


def _rate_ok(observed: float, expected: float, tolerance: float) -> bool:
    return abs(observed - expected) <= tolerance


def sampler_verdict(sample_fn: Callable[..., Any], n_features: int, probability: float, kind: CorrelationKind,
                    seed: int) -> SamplerVerdict | None:
    """Draw :data:`SAMPLES` examples from ``sample_fn(n, n_features, probability, kind, generator)`` and grade them.

    ``None`` when it returned None, ``"ok"`` when the firing rates, the co-firing within and across pairs and the
    sizes are what the exercise asks (to several standard errors), else the key of :data:`SAMPLER_MESSAGES`.
    """
    out = sample_fn(SAMPLES, n_features, probability, kind, torch.Generator().manual_seed(seed))
    if out is None:
        return None
    if not isinstance(out, Tensor) or tuple(out.shape) != (SAMPLES, n_features) or not out.is_floating_point():
        return "bad-output"
    x = out.detach().double()
    if not torch.isfinite(x).all() or (x < 0).any() or (x > 1).any():
        return "bad-values"
    again = sample_fn(SAMPLES, n_features, probability, kind, torch.Generator().manual_seed(seed))
    if not isinstance(again, Tensor) or not torch.equal(again.detach().double(), x):
        return "ignores-generator"
    fires = x != 0
    active = x[fires]
    if active.numel() and (active == 1).float().mean() > 0.5:
        return "magnitude-one"
    if not _rate_ok(active.mean().item(), 0.5, 0.03):
        return "magnitude"
    rates = fires.double().mean(0)
    if kind == "anticorrelated" and ((rates - probability / 2).abs() < 0.1 * probability).all():
        return "rate-half"
    if ((rates - probability).abs() > 0.1 * probability).any():
        return "rate"
    both = (fires[:, 0::2] & fires[:, 1::2]).double().mean(0)          # [pairs]: how often a pair's two fire together
    independent = probability ** 2
    if kind == "correlated" and not ((both - probability).abs() < 0.1 * probability).all():
        return "correlated-independent"
    if kind == "anticorrelated" and (both > 0).any():
        return "anticorrelated-both"
    if kind == "independent" and ((both - independent).abs() > 0.5 * independent).any():
        return "independent-linked"
    if n_features >= 4:
        across = (fires[:, 0] & fires[:, 2]).double().mean().item()    # features of two different pairs
        if abs(across - independent) > 0.5 * independent:
            return "pairs-linked"
    return "ok"
