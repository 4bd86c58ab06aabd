"""The inputs workbook 1's checks run every function on, and the models they run them on.

The checks read their own copies of the course models (:func:`check_model`, head results recorded as
:func:`~helpers.lesson1.analysis.load_lesson_model` does) and of two tiny random models built for them:
``"tiny-gpt2-like"`` (learned positions and MLPs, like GPT-2) and ``"tiny-uncentred"`` (LayerNorms folded
but nothing centred, where skipping exercise 2's centring changes the answer). Each case list is built once
per process; :func:`clear_caches` forgets them all.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from types import SimpleNamespace

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache, HookedTransformer, HookedTransformerConfig
from transformer_lens.utils import get_act_name

from helpers.checks import Case
from helpers.lesson1.analysis import CAT_PROMPT, IOI_PROMPT, load_lesson_model
from helpers.metrics import repeated_random_tokens
from helpers.models import tiny_random_model

__all__ = ["TINY_MODELS", "check_model", "tiny_uncentred", "component_cache",
           "synthetic_pattern_cache", "handmade_patterns", "pattern_cache", "repeat_cache", "positions",
           "rebuild_cases", "dla_cases", "previous_token_cases", "induction_cases", "ablation_cases",
           "composition_cases", "target_cases", "clear_caches"]


# ----------------------------------------------------------------------------- models
def tiny_uncentred() -> HookedTransformer:
    """A small random attention-only model with its LayerNorms folded (``LNPre``) but nothing centred.

    ``from_pretrained`` (and so ``load_lesson_model``) also centres the weights that write to the
    residual stream and the unembedding, which makes subtracting the mean a no-op on the course models;
    here the heads' outputs have a mean over ``d_model`` and ``W_U``'s columns do not sum to 0.
    """
    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_ctx=16, d_head=4, n_heads=3, d_vocab=40, attn_only=True,
                                  normalization_type="LNPre", positional_embedding_type="standard", seed=2,
                                  device="cpu")
    model = HookedTransformer(cfg).eval()
    with torch.no_grad():
        for block in model.blocks:
            block.attn.W_O += 0.3           # an offset shared by every direction: a mean that centring removes
        model.unembed.W_U += 0.3
    model.set_use_attn_result(True)
    return model


TINY_MODELS: dict[str, Callable[[], HookedTransformer]] = {"tiny-gpt2-like": tiny_random_model,
                                                           "tiny-uncentred": tiny_uncentred}


@lru_cache(maxsize=None)
def check_model(name: str) -> HookedTransformer:
    """The checks' own copy of a model: a bundled one as ``load_lesson_model(name)`` loads it, or a tiny one.

    One copy per process; loading it leaves the learner's random state untouched (building a model
    re-seeds torch's global generator). Callers must leave it as they found it (no hooks left attached).
    """
    with torch.random.fork_rng(devices=[]):
        return TINY_MODELS[name]() if name in TINY_MODELS else load_lesson_model(name)


# ----------------------------------------------------------------------------- caches
def component_cache(name: str, tokens: Int[Tensor, "batch pos"]) -> ActivationCache:
    """A cache of ``check_model(name)`` holding only the parts that write to the residual stream (no resid_*)."""
    parts = ("hook_embed", "hook_pos_embed", "hook_attn_out", "hook_mlp_out")
    with torch.no_grad():
        _, cache = check_model(name).run_with_cache(tokens, names_filter=lambda hook: hook.endswith(parts))
    return cache


def synthetic_pattern_cache(patterns: list[Float[Tensor, "batch head_index query_pos key_pos"]]) -> ActivationCache:
    """An ActivationCache holding only the given attention patterns, one per layer."""
    stand_in = SimpleNamespace(cfg=SimpleNamespace(n_layers=len(patterns)))  # lets cache["pattern", -1] work
    return ActivationCache({get_act_name("pattern", layer): p for layer, p in enumerate(patterns)}, model=stand_in)


def handmade_patterns(n_pos: int, half_len: int | None = None) -> Float[Tensor, "batch head_index query_pos key_pos"]:
    """Three heads of one prompt: head 0 looks back one token, head 1 attends uniformly, head 2 at itself.

    With ``half_len``, head 0 is instead a perfect induction head on a repeated sequence.
    """
    causal = torch.ones(n_pos, n_pos).tril()
    previous = torch.zeros(n_pos, n_pos)
    previous[torch.arange(1, n_pos), torch.arange(n_pos - 1)] = 1.0
    if half_len is not None:
        queries = torch.arange(half_len + 1, n_pos)
        previous[queries] = 0.0
        previous[queries, queries - half_len + 1] = 1.0
    previous[0, 0] = 1.0
    return torch.stack([previous, causal / causal.sum(-1, keepdim=True), torch.eye(n_pos)])[None]


@lru_cache(maxsize=None)
def pattern_cache(name: str, tokens: tuple[tuple[int, ...], ...]) -> ActivationCache:
    """The attention patterns of ``check_model(name)`` on ``tokens`` (a tuple of rows, so that it can be cached)."""
    with torch.no_grad():
        _, cache = check_model(name).run_with_cache(torch.tensor(tokens),
                                                    names_filter=lambda hook: hook.endswith("hook_pattern"))
    return cache


def repeat_cache(name: str, n_seqs: int, half_len: int, seed: int) -> ActivationCache:
    """:func:`pattern_cache` of ``n_seqs`` repeated random sequences (``helpers.metrics.repeated_random_tokens``)."""
    tokens = repeated_random_tokens(check_model(name), n_seqs=n_seqs, half_len=half_len, seed=seed)
    return pattern_cache(name, tuple(map(tuple, tokens.tolist())))


def positions(model: HookedTransformer) -> str:
    """How a model encodes positions, for case labels: says when there is no pos_embed in the cache."""
    kind = model.cfg.positional_embedding_type
    return "learned positions, pos_embed" if kind == "standard" else f"{kind} positions, no pos_embed"


# ----------------------------------------------------------------------------- the cases of each exercise
@lru_cache(maxsize=None)
def rebuild_cases() -> list[Case]:
    """Exercise 1: the 2-layer model, the 4-layer model with MLPs, a tiny GPT-2-like model."""
    two, four, tiny = check_model("attn-only-2l"), check_model("course-4l"), check_model("tiny-gpt2-like")
    random_tokens = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(0))
    return [
        Case((component_cache("attn-only-2l", two.to_tokens(CAT_PROMPT)), two),
             label=f"2-layer model ({positions(two)}), cat prompt"),
        Case((component_cache("course-4l", four.to_tokens([CAT_PROMPT, IOI_PROMPT])), four),
             label=f"4-layer model with MLPs ({positions(four)}), 2 prompts"),
        Case((component_cache("tiny-gpt2-like", random_tokens), tiny),
             label=f"tiny GPT-2-like model with MLPs ({positions(tiny)})"),
    ]


@lru_cache(maxsize=None)
def dla_cases() -> list[Case]:
    """Exercise 2: both models at the last and middle positions, and the tiny uncentred model."""
    two, four, tiny = check_model("attn-only-2l"), check_model("course-4l"), check_model("tiny-uncentred")
    with torch.no_grad():
        _, cat = two.run_with_cache(two.to_tokens(CAT_PROMPT))
        repeated = repeated_random_tokens(two, n_seqs=1, half_len=12, seed=5)
        _, rep = two.run_with_cache(repeated)
        _, ioi = four.run_with_cache(four.to_tokens(IOI_PROMPT))
        _, rand = tiny.run_with_cache(torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(3)))
    return [
        Case((cat, two, two.to_single_token(" mat"), -1),
             label="2-layer model, cat prompt, ' mat' at the last position"),
        Case((rep, two, int(repeated[0, 20]), 19), label="2-layer model, repeated tokens, position 19"),
        Case((ioi, four, four.to_single_token(" Mary"), -1), label="4-layer model, IOI prompt, ' Mary'"),
        Case((cat, two, two.to_single_token(" sat"), 2), label="2-layer model, cat prompt, ' sat' at position 2"),
        Case((rand, tiny, 7, -1), label="tiny random model with folded but uncentred weights, token 7"),
    ]


@lru_cache(maxsize=None)
def previous_token_cases() -> list[Case]:
    """Exercise 3: both models and a hand-made perfect previous-token head."""
    two = check_model("attn-only-2l")
    cat = pattern_cache("attn-only-2l", tuple(map(tuple, two.to_tokens(CAT_PROMPT).tolist())))
    return [
        Case((repeat_cache("attn-only-2l", 4, 10, 1), 2), label="2-layer model, 4 random sequences"),
        Case((cat, 2), label="2-layer model, cat prompt"),
        Case((repeat_cache("course-4l", 2, 8, 2), 4), label="4-layer model, 2 random sequences"),
        Case((synthetic_pattern_cache([handmade_patterns(6)]), 1),
             label="hand-made layer: head 0 a perfect previous-token head, head 2 attends to itself"),
    ]


@lru_cache(maxsize=None)
def induction_cases() -> list[Case]:
    """Exercise 4: both models, a single sequence, and a hand-made perfect induction head."""
    return [
        Case((repeat_cache("attn-only-2l", 4, 10, 1), 2, 10), label="2-layer model, 4 sequences, half_len 10"),
        Case((repeat_cache("course-4l", 2, 7, 2), 4, 7), label="4-layer model, 2 sequences, half_len 7"),
        Case((repeat_cache("attn-only-2l", 1, 5, 3), 2, 5), label="2-layer model, 1 sequence, half_len 5"),
        Case((synthetic_pattern_cache([handmade_patterns(11, half_len=5)]), 1, 5),
             label="hand-made layer: head 0 a perfect induction head, half_len 5"),
    ]


@lru_cache(maxsize=None)
def ablation_cases() -> list[Case]:
    """Exercise 5: both models, one or two heads, and no heads at all."""
    two, four = check_model("attn-only-2l"), check_model("course-4l")
    tokens_2l = repeated_random_tokens(two, n_seqs=4, half_len=10, seed=3)
    tokens_4l = repeated_random_tokens(four, n_seqs=3, half_len=8, seed=4)
    return [
        Case((two, tokens_2l, [(1, 0), (1, 5)], 10), label="2-layer model, heads 1.0 and 1.5"),
        Case((two, tokens_2l, [(0, 3)], 10), label="2-layer model, head 0.3"),
        Case((four, tokens_4l, [(1, 2), (3, 6)], 8), label="4-layer model, heads 1.2 and 3.6"),
        Case((two, tokens_2l, [], 10), label="no heads ablated (the change must be 0)"),
    ]


@lru_cache(maxsize=None)
def composition_cases() -> list[Case]:
    """Exercise 6: head pairs of both models."""
    two, four = check_model("attn-only-2l"), check_model("course-4l")
    return [
        Case((two, (0, 0), (1, 0)), label="2-layer model, 0.0 -> 1.0"),
        Case((two, (0, 5), (1, 3)), label="2-layer model, 0.5 -> 1.3"),
        Case((four, (0, 2), (3, 1)), label="4-layer model, 0.2 -> 3.1"),
        Case((four, (1, 7), (2, 0)), label="4-layer model, 1.7 -> 2.0"),
    ]


@lru_cache(maxsize=None)
def target_cases() -> list[Case]:
    """Exercise 7: the cat prompt, a token seen three times, back-to-back repeats, no repeats, random repeats."""
    two = check_model("attn-only-2l")
    return [
        Case((two.to_tokens(CAT_PROMPT)[0],), label="cat prompt"),
        Case((torch.tensor([0, 7, 3, 7, 5, 7, 3]),), label="token 7 three times: use its latest occurrence"),
        Case((torch.tensor([0, 4, 4, 4]),), label="a token repeated back to back"),
        Case((torch.tensor([0, 1, 2, 3]),), label="no repeats"),
        Case((repeated_random_tokens(two, n_seqs=1, half_len=6, seed=7)[0],), label="repeated random tokens"),
    ]


def clear_caches() -> None:
    """Forget the checks' models, caches and cases (the next check builds them again)."""
    for cached in (check_model, pattern_cache, rebuild_cases, dla_cases, previous_token_cases, induction_cases,
                   ablation_cases, composition_cases, target_cases):
        cached.cache_clear()
