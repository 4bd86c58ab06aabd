"""The checks of workbook 2b's seven exercises: ``check_<name>(fn)`` prints one line and returns a ``CheckResult``.

Each compares the learner's function with :mod:`helpers.lesson2.reference_practice` on the cases of
:mod:`helpers.lesson2.cases_practice` (random tensors, the course model and its SAE, a tiny random model with
random SAEs), and names the mistake (built with :mod:`helpers.lesson2.mistakes_practice`) that the learner's
output matches. The checks load the models they need themselves.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from sae_lens import SAE, HookedSAETransformer

from helpers.checks import CheckResult, check_function, report, single_threaded
from helpers.lesson2 import cases_practice as cases
from helpers.lesson2.mistakes_practice import (
    SAMPLER_MESSAGES,
    clamp_hook_variant,
    jumprelu_variant,
    logit_lens_variant,
    sampler_verdict,
    shrinkage_variant,
    splice_variant,
    topk_variant,
)
from helpers.lesson2.reference_practice import (
    clamp_with_sae_hook,
    feature_logit_lens,
    jumprelu,
    shrinkage_factor,
    splice_with_error_term,
    topk_activation,
)

__all__ = ["check_topk_activation", "check_jumprelu", "check_feature_logit_lens", "check_splice_with_error_term",
           "check_shrinkage_factor", "check_clamp_with_sae_hook", "check_correlated_feature_batch"]


@single_threaded
def check_topk_activation(learner_fn: object) -> CheckResult:
    """Exercise 1: the k largest of each row kept (then a ReLU), the rest zero."""
    mistakes = {
        "relu-first": (lambda x, k: torch.relu(x),
                       "every positive value was kept: keep only the k largest per row and zero the others"),
        "batch-dim": (lambda x, k: topk_variant(x, k, dim=0),
                      "you took the top k down each column (over the batch): a TopK SAE keeps the k largest latents "
                      "of each example, so take them along the last dimension (dim=-1)"),
        "smallest": (lambda x, k: topk_variant(x, k, largest=False),
                     "you kept the k smallest pre-activations: keep the k largest"),
        "no-relu": (lambda x, k: topk_variant(x, k, relu=False),
                    "a kept value is negative: when fewer than k pre-activations are positive, the ReLU on the kept "
                    "values sets the negative ones to 0 (SAELens's TopK does topk, then relu)"),
        "k-plus-one": (lambda x, k: topk_variant(x, k, extra=1), "you kept k + 1 values per row: keep exactly k"),
        "k-minus-one": (lambda x, k: topk_variant(x, k, extra=-1) if k > 1 else x * 0,
                        "you kept k - 1 values per row: keep exactly k"),
        "by-size": (lambda x, k: topk_variant(x, k, by_size=True),
                    "you kept the k largest in absolute value: keep the k largest values (a large negative one is "
                    "not a strongly firing latent)"),
    }
    return check_function(learner_fn, topk_activation, cases.topk_cases(), name="topk_activation",
                          known_mistakes=mistakes, case_first=True,
                          hint="keep the k largest entries of each row (the last dimension), ReLU them, zero the rest")


@single_threaded
def check_jumprelu(learner_fn: object) -> CheckResult:
    """Exercise 2: the whole pre-activation where it exceeds its latent's threshold, else 0."""
    mistakes = {
        "shifted": (lambda x, t: jumprelu_variant(x, t, "shifted"),
                    "you subtracted the threshold (ReLU(x - threshold)): that takes the threshold off every value "
                    "that fires, the shrinkage JumpReLU is there to avoid. Keep x itself where x > threshold"),
        "mask": (lambda x, t: jumprelu_variant(x, t, "mask"),
                 "you returned the 0/1 mask (x > threshold): multiply it by the pre-activations"),
        "per-example": (lambda x, t: jumprelu_variant(x, t, "per-example"),
                        "your thresholds line up with the examples (the rows): there is one threshold per latent, "
                        "the last dimension, so threshold broadcasts as it is"),
        "relu": (lambda x, t: jumprelu_variant(x, t, "relu"),
                 "you ignored the threshold: a plain ReLU lets every positive value through"),
    }
    return check_function(learner_fn, jumprelu, cases.jumprelu_cases(), name="jumprelu", known_mistakes=mistakes,
                          case_first=True, hint="keep a value where it is above its latent's threshold, else 0")


@single_threaded
def check_feature_logit_lens(learner_fn: object) -> CheckResult:
    """Exercise 3: the top k tokens of ``W_dec[latent] @ W_U``, in order."""
    mistakes = {
        "W_enc": (lambda s, m, f, k: logit_lens_variant(s, m, f, k, "W_enc"),
                  "you read the encoder (W_enc[:, latent]): what a latent writes into the residual stream is its "
                  "decoder row, sae.W_dec[latent]"),
        "bottom": (lambda s, m, f, k: logit_lens_variant(s, m, f, k, "bottom"),
                   "you returned the k tokens the latent pushes *down* most: take the k largest"),
        "column": (lambda s, m, f, k: logit_lens_variant(s, m, f, k, "column"),
                   "you read a column of W_dec: W_dec is [d_sae, d_model], and latent i's direction is the row "
                   "W_dec[i]"),
        "W_E": (lambda s, m, f, k: logit_lens_variant(s, m, f, k, "W_E"),
                "you compared the direction with the embeddings (W_E): the logits come from the unembedding, "
                "model.W_U [d_model, d_vocab]"),
        "b_U": (lambda s, m, f, k: logit_lens_variant(s, m, f, k, "b_U"),
                "you added the unembedding's bias b_U: it is the same whatever the latent, so it says nothing about "
                "the latent; use W_dec[latent] @ W_U alone"),
    }
    with torch.no_grad():
        return check_function(learner_fn, feature_logit_lens, cases.logit_lens_cases(), name="feature_logit_lens",
                              known_mistakes=mistakes, case_first=True,
                              hint="the latent's direction times the unembedding gives one number per token")


@single_threaded
def check_splice_with_error_term(learner_fn: object) -> CheckResult:
    """Exercise 4: the SAE spliced in at its hook, the latents edited, the error term (from the clean latents) kept."""
    mistakes = {
        "no-error": (lambda m, s, t, e: splice_variant(m, s, t, e, error="none"),
                     "you spliced in the SAE's reconstruction alone: the model then loses everything the SAE misses. "
                     "Add the error term, resid - sae.decode(latents)"),
        "flipped": (lambda m, s, t, e: splice_variant(m, s, t, e, error="flipped"),
                    "your error term has the wrong sign: error = resid - sae.decode(latents), and it is added to the "
                    "reconstruction"),
        "from-edited": (lambda m, s, t, e: splice_variant(m, s, t, e, error="from-edited"),
                        "the edit had no effect: you computed the error term from the edited latents, so it cancels "
                        "the edit. Compute it from sae.encode(resid) before you edit"),
        "no-edit": (lambda m, s, t, e: splice_variant(m, s, t, e, edit=False),
                    "the logits are the model's own: apply edit_latents to the latents (when it is not None) before "
                    "decoding them"),
        "resid-post": (lambda m, s, t, e: splice_variant(m, s, t, e, hook_name=s.cfg.metadata.hook_name.replace(
                           "hook_resid_pre", "hook_resid_post")),
                       "you spliced the SAE in at the wrong hook: it reads the residual stream at "
                       "sae.cfg.metadata.hook_name"),
    }
    with torch.no_grad():
        return check_function(learner_fn, splice_with_error_term, cases.splice_cases(), name="splice_with_error_term",
                              known_mistakes=mistakes, case_first=True, atol=1e-3, rtol=1e-3,
                              hint="in the hook: latents, error from those latents, then decode(edited) + error")


@single_threaded
def check_shrinkage_factor(learner_fn: object) -> CheckResult:
    """Exercise 5: ``Σ t·a / Σ t²`` on the entries where both fire."""
    mistakes = {
        "ratio-of-means": (lambda t, a: shrinkage_variant(t, a, "ratio-of-means"),
                           "that is the ratio of the mean values: the least-squares scale weighs each pair by the "
                           "true value, s = Σ t·a / Σ t²"),
        "with-zeros": (lambda t, a: shrinkage_variant(t, a, "with-zeros"),
                       "you counted the firings the SAE missed (its zeros) as shrunk to 0: fit the scale on the "
                       "entries where both the true feature and the latent fire"),
        "inverse": (lambda t, a: shrinkage_variant(t, a, "inverse"),
                    "you fitted true ≈ s × SAE (dividing by Σ a²): the question is how big the SAE's value is for a "
                    "given true value, sae ≈ s × true, so divide by Σ t²"),
        "mean-of-ratios": (lambda t, a: shrinkage_variant(t, a, "mean-of-ratios"),
                           "that is the mean of the ratios a / t: small true values make it noisy; the least-squares "
                           "scale is Σ t·a / Σ t²"),
        "norms": (lambda t, a: shrinkage_variant(t, a, "norms"),
                  "that is a ratio of norms (|a| / |t|, SAELens's own shrinkage statistic): the least-squares scale "
                  "is Σ t·a / Σ t²"),
    }
    return check_function(learner_fn, shrinkage_factor, cases.shrinkage_cases(), name="shrinkage_factor",
                          known_mistakes=mistakes, case_first=True, atol=1e-5, rtol=1e-5,
                          hint="select the entries where both are non-zero, then s = Σ t·a / Σ t²")


def _leaves_models_clean(learner_fn: Callable[..., Any], left: list[str]) -> Callable[..., Any]:
    """``learner_fn`` that detaches any SAE it left attached and restores the SAE's ``use_error_term``, noting what
    it left in ``left``."""
    def run(model: HookedSAETransformer, sae: SAE, *args: Any) -> Any:
        use_error_term = sae.use_error_term
        try:
            return learner_fn(model, sae, *args)
        finally:
            if model.acts_to_saes:
                model.reset_saes()
                left.append("sae")
            if any(hp.fwd_hooks for hp in model.hook_dict.values()):
                model.reset_hooks(including_permanent=False)
                left.append("hook")
            sae.use_error_term = use_error_term
    return run


@single_threaded
def check_clamp_with_sae_hook(learner_fn: object) -> CheckResult:
    """Exercise 6: a hook on ``hook_sae_acts_post`` sets one latent, the SAE attached with its error term."""
    mistakes = {
        "all": (lambda m, s, t, f, v: clamp_hook_variant(m, s, t, f, v, "all"),
                "you set every latent to value: set only acts[..., latent]"),
        "add": (lambda m, s, t, f, v: clamp_hook_variant(m, s, t, f, v, "add"),
                "you added value to the latent: clamping sets it to value, whatever it was"),
        "no-return": (lambda m, s, t, f, v: clamp_hook_variant(m, s, t, f, v, "no-return"),
                      "the logits are the model's without the clamp: your hook must return the edited activations "
                      "(a hook that returns nothing leaves them as they were), and be attached at "
                      "f'{sae.cfg.metadata.hook_name}.hook_sae_acts_post'"),
        "no-error": (lambda m, s, t, f, v: clamp_hook_variant(m, s, t, f, v, "no-error"),
                     "the SAE was spliced in without its error term, so the model lost everything the SAE misses: "
                     "attach it with use_error_term=True (with model.saes(saes=[sae], use_error_term=True): ...)"),
        "last": (lambda m, s, t, f, v: clamp_hook_variant(m, s, t, f, v, "last"),
                 "you clamped the last position only: set the latent at every position, acts[..., latent]"),
    }
    if not callable(learner_fn):
        return check_function(learner_fn, clamp_with_sae_hook, [], name="clamp_with_sae_hook")
    all_cases = cases.clamp_hook_cases()
    left: list[str] = []
    with torch.no_grad():
        # one run first, to see what the learner leaves attached; the check proper reports any error in one line
        with contextlib.suppress(Exception):
            _leaves_models_clean(learner_fn, left)(*all_cases[0].args)
        if left:
            what = "the SAE attached to the model" if "sae" in left else "a hook attached to the model"
            return report(False, f"clamp_with_sae_hook: on case '{all_cases[0].label}': you left {what}: attach the "
                                 "SAE for this run only (with model.saes(saes=[sae], use_error_term=True): ...) and "
                                 "pass the hook to model.run_with_hooks(..., fwd_hooks=...)")
        return check_function(_leaves_models_clean(learner_fn, left), clamp_with_sae_hook, all_cases,
                              name="clamp_with_sae_hook", known_mistakes=mistakes, case_first=True,
                              atol=1e-3, rtol=1e-3, hint="a hook on hook_sae_acts_post that sets acts[..., latent]")


def check_correlated_feature_batch(learner_fn: object) -> CheckResult:
    """Exercise 7: the sampler's firing rates, co-firing within and across pairs, sizes, and use of the generator."""
    if not callable(learner_fn):
        return check_function(learner_fn, lambda: "ok", [], name="correlated_feature_batch")
    mistakes: dict[str, tuple[Callable[..., Any], str]] = {
        key: (lambda *a, key=key, **k: key, message) for key, message in SAMPLER_MESSAGES.items()}
    return check_function(lambda **kw: sampler_verdict(learner_fn, **kw), lambda **kw: "ok", cases.CORRELATED_CASES,
                          name="correlated_feature_batch", known_mistakes=mistakes, case_first=True)
