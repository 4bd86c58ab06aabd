"""The inputs the checks of workbook 2b run the learner's functions on: seeded random tensors (2-D and 3-D), tiny
SAELens SAEs on a tiny random model, the bundled SAE on the course model, and ``HookedSAETransformer`` copies of
both models (:func:`hooked_sae_model`)."""
from __future__ import annotations

from functools import cache
from typing import Literal

import torch
from jaxtyping import Float, Int
from sae_lens import SAE, HookedSAETransformer
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers.checks import Case
from helpers.lesson2.cases import gen, tiny_sae
from helpers.lesson2.reference_practice import LatentEdit
from helpers.models import cached_model, tiny_random_model

ModelName = Literal["course-4l", "tiny"]
TINY_HOOK = "blocks.1.hook_resid_pre"
"""Where the checks' tiny SAEs sit on the tiny random model (the bundled SAE sits at ``blocks.2.hook_resid_pre``)."""
PLACE_LATENT, PLACE_PEAK = 1784, 2.4501
"""Lesson 2's latent for the word before a place, and its largest activation on the corpus."""

__all__ = ["ModelName", "TINY_HOOK", "PLACE_LATENT", "PLACE_PEAK", "plain_model", "hooked_sae_model",
           "bundled_sae", "tiny_model_sae", "tiny_tokens", "clamp_edit", "scale_edit", "topk_cases",
           "jumprelu_cases", "logit_lens_cases", "splice_cases", "shrinkage_cases", "clamp_hook_cases",
           "CORRELATED_CASES"]


def plain_model(name: ModelName) -> HookedTransformer:
    """The shared ``HookedTransformer``: the course's 4-layer model, or the tiny random one."""
    return cached_model("course-4l") if name == "course-4l" else tiny_random_model()


@cache
def hooked_sae_model(name: ModelName) -> HookedSAETransformer:
    """A ``HookedSAETransformer`` with the weights of :func:`plain_model` (same config, same state dict): one shared
    copy per process, built with torch's global random state left alone."""
    model = plain_model(name)
    with torch.random.fork_rng(devices=[]):
        hooked = HookedSAETransformer(model.cfg, tokenizer=model.tokenizer, move_to_device=False)
    hooked.load_state_dict(model.state_dict())
    return hooked.eval()


@cache
def bundled_sae() -> SAE:
    """The course's SAE on ``course-4l``'s residual stream before block 2, one shared copy."""
    from helpers.sae import load_sae

    return load_sae()


def tiny_model_sae(d_sae: int = 48, seed: int = 0, hook_name: str = TINY_HOOK) -> SAE:
    """A random SAELens SAE that reads the tiny random model's residual stream (``d_model`` 32) at ``hook_name``."""
    sae = tiny_sae(d_in=tiny_random_model().cfg.d_model, d_sae=d_sae, seed=seed)
    sae.cfg.metadata.hook_name = hook_name
    return sae


def tiny_tokens(batch: int, pos: int, seed: int) -> Int[Tensor, "batch pos"]:
    """Random tokens of the tiny random model, the first of each row its BOS (0)."""
    tokens = torch.randint(1, tiny_random_model().cfg.d_vocab, (batch, pos), generator=gen(seed))
    tokens[:, 0] = 0
    return tokens


def clamp_edit(latent: int, value: float) -> LatentEdit:
    """An edit for :func:`~helpers.lesson2.reference_practice.splice_with_error_term`: latent := value everywhere."""
    def edit(latents: Float[Tensor, "batch pos d_sae"]) -> Float[Tensor, "batch pos d_sae"]:
        new = latents.clone()
        new[..., latent] = value
        return new
    return edit


def scale_edit(factor: float) -> LatentEdit:
    """An edit that multiplies every latent by ``factor`` (0: switch the SAE's latents all off)."""
    return lambda latents: latents * factor


def topk_cases() -> list[Case]:
    """Exercise 1: pre-activations with rows that have fewer than k positive entries, a 3-D batch, k = 1."""
    cases = []
    for i, (shape, k, shift) in enumerate([((8, 10), 3, 0.0), ((2, 3, 12), 4, -1.0), ((6, 8), 1, 0.0),
                                           ((3, 6), 5, -0.8)]):
        x = torch.randn(*shape, generator=gen(800 + i)) + shift
        label = f"[{', '.join(map(str, shape))}] pre-activations, k = {k}" + (", mostly negative" if shift else "")
        cases.append(Case((x, k), label=label))
    return cases


def jumprelu_cases() -> list[Case]:
    """Exercise 2: one threshold per latent, no value within 0.05 of its threshold; a square batch, a 3-D one."""
    cases = []
    for i, shape in enumerate([(5, 7), (6, 6), (2, 4, 5)]):
        g = gen(900 + i)
        threshold = 0.2 + 0.8 * torch.rand(shape[-1], generator=g)
        x = 1.5 * torch.randn(*shape, generator=g)
        near = (x - threshold).abs() < 0.05
        x = torch.where(near, threshold + 0.3, x)            # well away from the threshold, above it
        cases.append(Case((x, threshold), label=f"[{', '.join(map(str, shape))}] pre-activations"))
    return cases


def logit_lens_cases() -> list[Case]:
    """Exercise 3: the bundled SAE's place latent on the course model; random SAEs on the tiny model, one square."""
    return [Case((bundled_sae(), plain_model("course-4l"), PLACE_LATENT, 10),
                 label=f"course-4l's SAE, latent {PLACE_LATENT}, k = 10"),
            Case((tiny_model_sae(48, seed=810), plain_model("tiny"), 5, 5),
                 label="tiny model, 48 latents, latent 5, k = 5"),
            Case((tiny_model_sae(32, seed=811), plain_model("tiny"), 3, 8),
                 label="tiny model, 32 latents (as many as d_model), latent 3, k = 8")]


def splice_cases() -> list[Case]:
    """Exercise 4: no edit, a clamp and a doubling on the course model; all latents off on the tiny model, whose
    SAE sits at another hook."""
    model, sae = plain_model("course-4l"), bundled_sae()
    prompts = ["The Golden Gate Bridge is", "When Mary and John went to the store, John gave a drink to"]
    tiny = plain_model("tiny")
    return [Case((model, sae, model.to_tokens(prompts[0]), None), label=f'"{prompts[0]}", no edit'),
            Case((model, sae, model.to_tokens(prompts[1]), clamp_edit(PLACE_LATENT, 10 * PLACE_PEAK)),
                 label=f'"{prompts[1]}", latent {PLACE_LATENT} clamped to {10 * PLACE_PEAK:.1f}'),
            Case((model, sae, model.to_tokens(prompts[0]), scale_edit(2.0)),
                 label=f'"{prompts[0]}", every latent doubled'),
            Case((tiny, tiny_model_sae(48, seed=820, hook_name="blocks.0.hook_resid_post"), tiny_tokens(2, 7, 821),
                  scale_edit(0.0)), label="tiny model, SAE after block 0, every latent switched off")]


def shrinkage_cases() -> list[Case]:
    """Exercise 5: matched true and SAE values with misses, false alarms, noise and a scale of 0.8, 0.6 or 1.1."""
    cases = []
    for i, (n, n_features, scale) in enumerate([(200, 4, 0.8), (150, 6, 0.6), (300, 3, 1.1)]):
        g = gen(1000 + i)
        fires = torch.rand(n, n_features, generator=g) < 0.2
        true = fires * (0.5 + torch.rand(n, n_features, generator=g))
        noise = 0.15 * torch.randn(n, n_features, generator=g)
        caught = fires & (torch.rand(n, n_features, generator=g) < 0.8)          # the SAE misses 20% of firings
        false_alarm = ~fires & (torch.rand(n, n_features, generator=g) < 0.05)   # and fires on 5% of the others
        sae = torch.where(caught, (scale * true + noise).clamp(min=0.05), torch.zeros(()))
        sae = torch.where(false_alarm, 0.3 * torch.rand(n, n_features, generator=g) + 0.05, sae)
        cases.append(Case((true, sae), label=f"{n} examples, {n_features} features, scale about {scale:g}"))
    return cases


def clamp_hook_cases() -> list[Case]:
    """Exercise 6: the bundled SAE on the course model (the place latent at 10 × its peak; another switched off),
    and a random SAE on the tiny model."""
    model, sae = hooked_sae_model("course-4l"), bundled_sae()
    prompts = ["The Golden Gate Bridge is", "When Mary and John went to the store, John gave a drink to"]
    return [Case((model, sae, model.to_tokens(prompts[0]), PLACE_LATENT, 10 * PLACE_PEAK),
                 label=f'"{prompts[0]}", latent {PLACE_LATENT} at {10 * PLACE_PEAK:.1f}'),
            Case((model, sae, model.to_tokens(prompts[1]), 100, 0.0), label=f'"{prompts[1]}", latent 100 at 0'),
            Case((hooked_sae_model("tiny"), tiny_model_sae(48, seed=830), tiny_tokens(2, 6, 831), 5, 3.0),
                 label="tiny model, latent 5 at 3")]


# Exercise 7: the learner's sampler is judged by what it draws (rates and co-firing), not draw for draw.
CORRELATED_CASES = [
    Case(kwargs=dict(n_features=4, probability=0.1, kind="correlated", seed=0), label="4 features, p 0.1, correlated"),
    Case(kwargs=dict(n_features=6, probability=0.05, kind="anticorrelated", seed=1),
         label="6 features, p 0.05, anticorrelated"),
    Case(kwargs=dict(n_features=4, probability=0.2, kind="independent", seed=2),
         label="4 features, p 0.2, independent"),
    Case(kwargs=dict(n_features=2, probability=0.3, kind="anticorrelated", seed=3),
         label="2 features, p 0.3, anticorrelated"),
]
