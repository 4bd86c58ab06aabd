"""Lesson 1 (residual stream and induction heads): reference solutions and the workbook's checks.

Each exercise of ``solutions/01_residual_stream_induction_heads.ipynb`` has a reference function
here and a ``check_<exercise>(fn)`` that runs the learner's ``fn`` against it on several inputs
(both course models, hand-made patterns, edge cases) and names the likely mistake when it fails.

Shapes: ``batch`` prompts, ``pos`` positions (BOS included), ``d_model`` residual width.
"""
from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

import torch
from transformer_lens import ActivationCache, HookedTransformer, HookedTransformerConfig
from transformer_lens.utils import get_act_name

from helpers.checks import Case, CheckResult, check_function
from helpers.metrics import repeated_random_tokens
from helpers.models import load_model

Head = tuple[int, int]

CAT_PROMPT = "The cat sat on the mat. The cat sat on the"
IOI_PROMPT = "When Mary and John went to the store, John gave a drink to"


# ----------------------------------------------------------------------------- models
def load_lesson_model(name: str = "attn-only-2l", head_results: bool = True) -> HookedTransformer:
    """``load_model(name)`` (LayerNorm folded, as ``from_pretrained`` does) for head-level analysis.

    With ``head_results``, also records each head's own output (``cache["result", layer]``:
    ``[batch, pos, head, d_model]``), which costs memory on large batches.
    """
    model = load_model(name)  # already processed like from_pretrained (fold_ln=True)
    model.set_use_attn_result(head_results)
    return model


def heads_above(scores: torch.Tensor, threshold: float) -> list[Head]:
    """Heads whose score is at least ``threshold``, best first; the single best head if none is.

    ``scores``: ``[n_layers, n_heads]``. Returns ``[(layer, head), ...]``.
    """
    order = scores.flatten().argsort(descending=True).tolist()
    n_heads = scores.shape[1]
    picked = [divmod(i, n_heads) for i in order if scores.flatten()[i] >= threshold]
    return picked or [divmod(order[0], n_heads)]


def best_head(scores: torch.Tensor) -> Head:
    """``(layer, head)`` of the largest entry of ``scores`` ``[n_layers, n_heads]``."""
    return divmod(int(scores.argmax()), scores.shape[1])


def second_half_loss(model: HookedTransformer, tokens: torch.Tensor, half_len: int,
                     fwd_hooks: list | None = None) -> float:
    """Mean loss on the predictable tokens of the second copy of ``tokens`` ``[batch, 1 + 2 * half_len]``.

    Same positions as ``helpers.metrics.repeated_sequence_losses``: the second copy's first token
    cannot be predicted and is left out.
    """
    with torch.no_grad():
        losses = model.run_with_hooks(tokens, return_type="loss", loss_per_token=True,
                                      fwd_hooks=fwd_hooks or [])          # [batch, pos - 1]
    return losses[:, half_len + 1:].mean().item()


def zero_heads_hooks(heads: list[Head]) -> list:
    """``fwd_hooks`` for ``run_with_hooks`` that zero the output (``hook_z``) of each listed head."""
    def zero(z: torch.Tensor, hook) -> torch.Tensor:                    # z: [batch, pos, head, d_head]
        for layer, head in heads:
            if layer == hook.layer():
                z[:, :, head] = 0.0
        return z
    return [(get_act_name("z", layer), zero) for layer in sorted({layer for layer, _ in heads})]


# ----------------------------------------------------------------------------- exercise 1
def rebuild_residual_stream(cache: ActivationCache, model: HookedTransformer) -> torch.Tensor:
    """The final residual stream rebuilt from its parts: ``[batch, pos, d_model]``.

    Token embedding + positional embedding (models with learned positions only) + every layer's
    attention output + every layer's MLP output (models with MLPs only).
    """
    resid = cache["embed"].clone()
    if model.cfg.positional_embedding_type == "standard":
        resid += cache["pos_embed"]
    for layer in range(model.cfg.n_layers):
        resid += cache["attn_out", layer]
        if not model.cfg.attn_only:
            resid += cache["mlp_out", layer]
    return resid


def _tiny_gpt2_like() -> HookedTransformer:
    """A small random model with learned positional embeddings and MLPs, like GPT-2."""
    cfg = HookedTransformerConfig(n_layers=3, d_model=32, n_ctx=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=50,
                                  act_fn="gelu", normalization_type="LN", positional_embedding_type="standard",
                                  seed=1, device="cpu")
    return HookedTransformer(cfg).eval()


def _tiny_uncentred() -> HookedTransformer:
    """A small random attention-only model with its LayerNorms folded (``LNPre``) but nothing centred.

    ``from_pretrained`` (and so :func:`load_lesson_model`) also centres the weights that write to the
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


@lru_cache(maxsize=None)
def _model(name: str) -> HookedTransformer:
    """The checks' own copy of a model; loading it leaves the learner's random state untouched."""
    state = torch.get_rng_state()  # building a model re-seeds torch's global generator
    builders = {"tiny-gpt2-like": _tiny_gpt2_like, "tiny-uncentred": _tiny_uncentred}
    try:
        return builders[name]() if name in builders else load_lesson_model(name)
    finally:
        torch.set_rng_state(state)


def _component_cache(name: str, tokens: torch.Tensor) -> ActivationCache:
    """A cache holding only the parts that write to the residual stream (no resid_* entries)."""
    parts = ("hook_embed", "hook_pos_embed", "hook_attn_out", "hook_mlp_out")
    with torch.no_grad():
        _, cache = _model(name).run_with_cache(tokens, names_filter=lambda hook: hook.endswith(parts))
    return cache


@lru_cache(maxsize=None)
def _rebuild_cases() -> list[Case]:
    two, four, tiny = _model("attn-only-2l"), _model("course-4l"), _model("tiny-gpt2-like")
    random_tokens = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(0))
    return [
        Case((_component_cache("attn-only-2l", two.to_tokens(CAT_PROMPT)), two),
             label=f"2-layer model ({_positions(two)}), cat prompt"),
        Case((_component_cache("course-4l", four.to_tokens([CAT_PROMPT, IOI_PROMPT])), four),
             label=f"4-layer model with MLPs ({_positions(four)}), 2 prompts"),
        Case((_component_cache("tiny-gpt2-like", random_tokens), tiny),
             label=f"tiny GPT-2-like model with MLPs ({_positions(tiny)})"),
    ]


def _positions(model: HookedTransformer) -> str:
    """How a model encodes positions, for case labels: says when there is no pos_embed in the cache."""
    kind = model.cfg.positional_embedding_type
    return "learned positions, pos_embed" if kind == "standard" else f"{kind} positions, no pos_embed"


def _rebuild_mistake(embed: bool = True, pos: bool = True, mlp: bool = True, layers_short: int = 0):
    def wrong(cache: ActivationCache, model: HookedTransformer) -> torch.Tensor:
        resid = cache["embed"].clone() if embed else torch.zeros_like(cache["embed"])
        if pos and model.cfg.positional_embedding_type == "standard":
            resid += cache["pos_embed"]
        for layer in range(model.cfg.n_layers - layers_short):
            resid += cache["attn_out", layer]
            if mlp and not model.cfg.attn_only:
                resid += cache["mlp_out", layer]
        return resid
    return wrong


def check_rebuild_residual_stream(fn) -> CheckResult:
    """Check exercise 1 on the 2-layer model, the 4-layer model and a tiny GPT-2-like model."""
    return check_function(fn, rebuild_residual_stream, _rebuild_cases(), name="rebuild_residual_stream", known_mistakes={
        "embed": (_rebuild_mistake(embed=False), "you left out the token embedding, cache['embed']: "
                                                 "it is the first thing on the residual stream"),
        "short": (_rebuild_mistake(layers_short=1), "you stopped one layer early: "
                                                    "loop over range(model.cfg.n_layers)"),
        "mlp": (_rebuild_mistake(mlp=False), "you left out the MLP outputs, cache['mlp_out', layer]: "
                                             "models with MLPs (model.cfg.attn_only is False) add them too"),
        "pos": (_rebuild_mistake(pos=False), "you left out the positional embedding, cache['pos_embed']: models "
                                             "with learned positions (positional_embedding_type 'standard') add it"),
    }, hint="add cache['embed'], cache['pos_embed'] (learned positions only), and every layer's "
            "cache['attn_out', layer] and cache['mlp_out', layer] (models with MLPs only)")


# ----------------------------------------------------------------------------- exercise 2
def head_logit_attribution(cache: ActivationCache, model: HookedTransformer, token_id: int,
                           pos: int) -> torch.Tensor:
    """Each head's direct contribution to the logit of ``token_id`` at position ``pos`` of prompt 0.

    Returns ``[n_layers, n_heads]``. The model must have its LayerNorms folded
    (:func:`load_lesson_model`), so the final LayerNorm only centres and divides by its scale.
    """
    scale = cache["ln_final.hook_scale"][0, pos]                         # [1]
    rows = []
    for layer in range(model.cfg.n_layers):
        z = cache["z", layer][0, pos]                                     # [head, d_head]
        out = torch.einsum("hd,hdm->hm", z, model.W_O[layer])             # [head, d_model]
        out = out - out.mean(-1, keepdim=True)
        rows.append(out / scale @ model.W_U[:, token_id])                 # [head]
    return torch.stack(rows)


@lru_cache(maxsize=None)
def _dla_cases() -> list[Case]:
    two, four, tiny = _model("attn-only-2l"), _model("course-4l"), _model("tiny-uncentred")
    with torch.no_grad():
        _, cat = two.run_with_cache(two.to_tokens(CAT_PROMPT))
        repeated = repeated_random_tokens(two, n_seqs=1, half_len=12, seed=5)
        _, rep = two.run_with_cache(repeated)
        _, ioi = four.run_with_cache(four.to_tokens(IOI_PROMPT))
        _, rand = tiny.run_with_cache(torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(3)))
    return [
        Case((cat, two, two.to_single_token(" mat"), -1), label="2-layer model, cat prompt, ' mat' at the last position"),
        Case((rep, two, int(repeated[0, 20]), 19), label="2-layer model, repeated tokens, position 19"),
        Case((ioi, four, four.to_single_token(" Mary"), -1), label="4-layer model, IOI prompt, ' Mary'"),
        Case((cat, two, two.to_single_token(" sat"), 2), label="2-layer model, cat prompt, ' sat' at position 2"),
        Case((rand, tiny, 7, -1), label="tiny random model with folded but uncentred weights, token 7"),
    ]


def _dla_not_centred(cache: ActivationCache, model: HookedTransformer, token_id: int, pos: int) -> torch.Tensor:
    scale = cache["ln_final.hook_scale"][0, pos]
    return torch.stack([cache["result", layer][0, pos] / scale @ model.W_U[:, token_id]
                        for layer in range(model.cfg.n_layers)])


def _dla_no_layernorm(cache: ActivationCache, model: HookedTransformer, token_id: int, pos: int) -> torch.Tensor:
    scale = cache["ln_final.hook_scale"][0, pos]
    return head_logit_attribution(cache, model, token_id, pos) * scale


def _dla_previous_position(cache: ActivationCache, model: HookedTransformer, token_id: int, pos: int) -> torch.Tensor:
    return head_logit_attribution(cache, model, token_id, pos - 1)


def check_head_logit_attribution(fn) -> CheckResult:
    """Check exercise 2 on both models, at the last and at middle positions, and on a tiny model whose folded
    weights are not centred (where skipping the centring changes the answer)."""
    return check_function(fn, head_logit_attribution, _dla_cases(), name="head_logit_attribution", known_mistakes={
        "ln": (_dla_no_layernorm, "you skipped the final LayerNorm: divide each head's output by "
                                  "cache['ln_final.hook_scale'][0, pos] before multiplying by the unembedding"),
        "pos": (_dla_previous_position, "you used the activations one position too early: the logits at "
                                        "position `pos` are read from the residual stream at `pos` itself"),
        "centre": (_dla_not_centred, "you skipped the centring: subtract each head's mean over d_model before "
                                     "dividing by the scale, as the final LayerNorm does. The course models' "
                                     "weights are already centred, so it only shows on a model whose are not"),
    }, hint="head output = z @ W_O per head (cache['result', layer] holds it), divided by the final LayerNorm "
            "scale, dotted with model.W_U[:, token_id]")


# ----------------------------------------------------------------------------- exercise 3
N_LAYERS_MSG = ("you used a fixed number of layers (the workbook model's model.cfg.n_layers is 2): use the "
                "n_layers argument, the check also hands you caches of other models")

def previous_token_scores(cache: ActivationCache, n_layers: int) -> torch.Tensor:
    """Mean attention of every head from each position to the one just before it: ``[n_layers, n_heads]``.

    Averaged over the batch and over query positions ``2..pos-1``: position 0 has no previous
    token, and position 1's previous token is BOS, where heads park attention they do not need.
    Same definition as ``helpers.metrics.induction_and_prev_token_scores``.
    """
    return torch.stack([cache["pattern", layer].diagonal(offset=-1, dim1=-2, dim2=-1)[..., 1:].mean((0, -1))
                        for layer in range(n_layers)])


def _synthetic_pattern_cache(patterns: list[torch.Tensor]) -> ActivationCache:
    """An ActivationCache holding only the given ``[batch, head, query, key]`` patterns, one per layer."""
    stand_in = SimpleNamespace(cfg=SimpleNamespace(n_layers=len(patterns)))  # lets cache["pattern", -1] work
    return ActivationCache({get_act_name("pattern", layer): p for layer, p in enumerate(patterns)}, model=stand_in)


def _handmade_patterns(n_pos: int, half_len: int | None = None) -> torch.Tensor:
    """``[1, 3, n_pos, n_pos]``: head 0 looks back one token, head 1 attends uniformly, head 2 at itself.

    With ``half_len``, head 0 is instead a perfect induction head on a repeated sequence.
    """
    causal = torch.ones(n_pos, n_pos).tril()
    previous = torch.zeros(n_pos, n_pos)
    if half_len is None:
        previous[torch.arange(1, n_pos), torch.arange(n_pos - 1)] = 1.0
    else:
        previous[torch.arange(1, n_pos), torch.arange(n_pos - 1)] = 1.0
        queries = torch.arange(half_len + 1, n_pos)
        previous[queries] = 0.0
        previous[queries, queries - half_len + 1] = 1.0
    previous[0, 0] = 1.0
    return torch.stack([previous, causal / causal.sum(-1, keepdim=True), torch.eye(n_pos)])[None]


@lru_cache(maxsize=None)
def _pattern_cache(name: str, tokens: tuple[tuple[int, ...], ...]) -> ActivationCache:
    with torch.no_grad():
        _, cache = _model(name).run_with_cache(torch.tensor(tokens),
                                               names_filter=lambda hook: hook.endswith("hook_pattern"))
    return cache


def _repeat_cache(name: str, n_seqs: int, half_len: int, seed: int) -> ActivationCache:
    tokens = repeated_random_tokens(_model(name), n_seqs=n_seqs, half_len=half_len, seed=seed)
    return _pattern_cache(name, tuple(map(tuple, tokens.tolist())))


@lru_cache(maxsize=None)
def _previous_token_cases() -> list[Case]:
    two = _model("attn-only-2l")
    cat = _pattern_cache("attn-only-2l", tuple(map(tuple, two.to_tokens(CAT_PROMPT).tolist())))
    return [
        Case((_repeat_cache("attn-only-2l", 4, 10, 1), 2), label="2-layer model, 4 random sequences"),
        Case((cat, 2), label="2-layer model, cat prompt"),
        Case((_repeat_cache("course-4l", 2, 8, 2), 4), label="4-layer model, 2 random sequences"),
        Case((_synthetic_pattern_cache([_handmade_patterns(6)]), 1),
             label="hand-made layer: head 0 a perfect previous-token head, head 2 attends to itself"),
    ]


def _previous_token_offset(offset: int, start: int = 1, stop: int | None = None):
    def wrong(cache: ActivationCache, n_layers: int) -> torch.Tensor:
        return torch.stack([cache["pattern", layer].diagonal(offset=offset, dim1=-2, dim2=-1)[..., start:stop]
                            .mean((0, -1)) for layer in range(n_layers)])
    return wrong


def check_previous_token_scores(fn) -> CheckResult:
    """Check exercise 3 on both models and on a hand-made perfect previous-token head."""
    return check_function(fn, previous_token_scores, _previous_token_cases(), name="previous_token_scores",
                          known_mistakes={
        "self": (_previous_token_offset(0), "you measured attention to the token itself (the main diagonal): "
                                            "the previous token is one step below it, diagonal(offset=-1)"),
        "transposed": (_previous_token_offset(1), "you read pattern[..., i - 1, i], which is attention to the *next* "
                                                  "token (always 0 in a causal model): the last two dims are "
                                                  "[query, key], use diagonal(offset=-1)"),
        "bos": (_previous_token_offset(-1, start=0), "you counted position 1's attention to the BOS token: heads "
                                                      "park unneeded attention on BOS, so leave query position 1 out "
                                                      "(drop the first entry of the diagonal)"),
        "last_missing": (_previous_token_offset(-1, stop=-1), "you left out the last query position: average over "
                                                               "every q from 2 to pos - 1, the last one included "
                                                               "(range(2, pos) or diagonal[..., 1:])"),
        "dropped_last": (_previous_token_offset(-1, start=0, stop=-1), "you dropped the last entry of the diagonal "
                                                                        "instead of the first: the first entry is query "
                                                                        "1 (previous token BOS), so use [..., 1:]"),
        "fixed_layers": (lambda cache, n_layers: previous_token_scores(cache, 2), N_LAYERS_MSG),
    }, hint="cache['pattern', layer] is [batch, head, query, key]; take diagonal(offset=-1, dim1=-2, dim2=-1), "
            "drop its first entry (query 1, whose previous token is BOS) and average over batch and positions; "
            "with a loop, average pattern[:, :, q, q - 1] over q = 2 .. pos - 1, for layer in range(n_layers)")


# ----------------------------------------------------------------------------- exercise 4
def induction_scores(cache: ActivationCache, n_layers: int, half_len: int) -> torch.Tensor:
    """Mean attention from each second-copy token to the token after its first copy: ``[n_layers, n_heads]``.

    The cache is of tokens ``[batch, 1 + 2 * half_len]``: BOS, ``half_len`` random tokens, the same
    again. The token at ``q`` (``half_len + 1 <= q <= 2 * half_len``) first appeared at
    ``q - half_len``; the token after that is at ``q - half_len + 1``.
    """
    return torch.stack([cache["pattern", layer].diagonal(offset=1 - half_len, dim1=-2, dim2=-1)[..., 2:].mean((0, -1))
                        for layer in range(n_layers)])


@lru_cache(maxsize=None)
def _induction_cases() -> list[Case]:
    return [
        Case((_repeat_cache("attn-only-2l", 4, 10, 1), 2, 10), label="2-layer model, 4 sequences, half_len 10"),
        Case((_repeat_cache("course-4l", 2, 7, 2), 4, 7), label="4-layer model, 2 sequences, half_len 7"),
        Case((_repeat_cache("attn-only-2l", 1, 5, 3), 2, 5), label="2-layer model, 1 sequence, half_len 5"),
        Case((_synthetic_pattern_cache([_handmade_patterns(11, half_len=5)]), 1, 5),
             label="hand-made layer: head 0 a perfect induction head, half_len 5"),
    ]


def _induction_offset(offset_from_half: int, start: int = 2, stop: int | None = None):
    def wrong(cache: ActivationCache, n_layers: int, half_len: int) -> torch.Tensor:
        return torch.stack([cache["pattern", layer].diagonal(offset=offset_from_half - half_len, dim1=-2, dim2=-1)
                            [..., start:stop].mean((0, -1)) for layer in range(n_layers)])
    return wrong


def check_induction_scores(fn) -> CheckResult:
    """Check exercise 4 on both models, a single sequence, and a hand-made perfect induction head."""
    return check_function(fn, induction_scores, _induction_cases(), name="induction_scores", known_mistakes={
        "duplicate": (_induction_offset(0, start=1), "you measured attention to the earlier copy of the *same* token "
                                                     "(offset -half_len): an induction head looks one step further, "
                                                     "at the token that came *after* it (offset 1 - half_len)"),
        "bos": (_induction_offset(1, start=1, stop=-1), "your query positions are shifted by one: the BOS token at "
                                                        "position 0 puts the second copy at positions half_len + 1 "
                                                        "to 2 * half_len"),
        "whole_diagonal": (_induction_offset(1, start=0), "you also averaged over queries in the first copy: only "
                                                          "the half_len tokens of the second copy can look back"),
        "transposed": (lambda cache, n_layers, half_len: torch.stack(
            [cache["pattern", layer].diagonal(offset=half_len - 1, dim1=-2, dim2=-1)[..., :half_len].mean((0, -1))
             for layer in range(n_layers)]),
            "you swapped query and key (all zeros: a causal model never attends forward): the pattern is "
            "[batch, head, query, key], so use a negative diagonal offset"),
        "fixed_layers": (lambda cache, n_layers, half_len: induction_scores(cache, 2, half_len), N_LAYERS_MSG),
    }, hint="for query q in the second copy the key is q - half_len + 1: "
            "pattern.diagonal(offset=1 - half_len, dim1=-2, dim2=-1), keeping only second-copy queries; "
            "with a loop, average pattern[:, :, q, q - half_len + 1] over q = half_len + 1 .. 2 * half_len")


# ----------------------------------------------------------------------------- exercise 5
def ablation_loss_increase(model: HookedTransformer, tokens: torch.Tensor, heads: list[Head], half_len: int) -> float:
    """How much the second-copy loss rises when ``heads`` are zero-ablated (their ``hook_z`` set to 0).

    ``tokens``: ``[batch, 1 + 2 * half_len]`` repeated random tokens. Returns
    ablated minus clean mean loss over the predictable second-copy tokens (see :func:`second_half_loss`).
    """
    clean = second_half_loss(model, tokens, half_len)
    return second_half_loss(model, tokens, half_len, zero_heads_hooks(heads)) - clean


@lru_cache(maxsize=None)
def _ablation_cases() -> list[Case]:
    two, four = _model("attn-only-2l"), _model("course-4l")
    tokens_2l = repeated_random_tokens(two, n_seqs=4, half_len=10, seed=3)
    tokens_4l = repeated_random_tokens(four, n_seqs=3, half_len=8, seed=4)
    return [
        Case((two, tokens_2l, [(1, 0), (1, 5)], 10), label="2-layer model, heads 1.0 and 1.5"),
        Case((two, tokens_2l, [(0, 3)], 10), label="2-layer model, head 0.3"),
        Case((four, tokens_4l, [(1, 2), (3, 6)], 8), label="4-layer model, heads 1.2 and 3.6"),
        Case((two, tokens_2l, [], 10), label="no heads ablated (the change must be 0)"),
    ]


def _ablation_mistake(index_pos: bool = False, every_layer: bool = False, whole_layer: bool = False,
                      all_tokens: bool = False, flipped: bool = False, with_first: bool = False):
    def wrong(model: HookedTransformer, tokens: torch.Tensor, heads: list[Head], half_len: int) -> float:
        def hook(act: torch.Tensor, hook) -> torch.Tensor:
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


def check_ablation_loss_increase(fn) -> CheckResult:
    """Check exercise 5 on both models, one or two heads, and no heads at all."""
    return check_function(fn, ablation_loss_increase, _ablation_cases(), name="ablation_loss_increase",
                          atol=1e-3, known_mistakes={
        "position": (_ablation_mistake(index_pos=True), "you zeroed a position, not a head: hook_z is "
                                                        "[batch, pos, head, d_head], so the head index goes third, "
                                                        "z[:, :, head]"),
        "every_layer": (_ablation_mistake(every_layer=True), "you zeroed that head number in every layer: only "
                                                             "zero it in its own layer (hook.layer())"),
        "whole_layer": (_ablation_mistake(whole_layer=True), "you zeroed the whole layer's attention output: zero "
                                                             "only the listed heads, at hook_z"),
        "all_tokens": (_ablation_mistake(all_tokens=True), "you averaged the loss over the whole sequence: measure "
                                                           "the second copy only, loss_per_token[:, half_len + 1:]"),
        "flipped": (_ablation_mistake(flipped=True), "the sign is flipped: return ablated loss minus clean loss"),
        "with_first": (_ablation_mistake(with_first=True), "you included the second copy's first token, which "
                                                           "nothing in the context can predict: start at half_len + 1, "
                                                           "loss_per_token[:, half_len + 1:]"),
    }, hint="zero z[:, :, head] in a hook on get_act_name('z', layer), run model.run_with_hooks(tokens, "
            "return_type='loss', loss_per_token=True, fwd_hooks=...) and compare with the clean run")


# ----------------------------------------------------------------------------- exercise 6
def k_composition_score(model: HookedTransformer, early: Head, late: Head) -> float:
    """How strongly head ``early``'s output can steer the keys of the later head ``late``.

    ``||W_OV @ W_QK.T||_F / (||W_OV||_F * ||W_QK||_F)`` with ``W_OV = W_V @ W_O`` of ``early`` and
    ``W_QK = W_Q @ W_K.T`` of ``late`` (both ``[d_model, d_model]``). Equals
    ``model.all_composition_scores("K")[*early, *late]``.
    """
    w_ov = model.W_V[early] @ model.W_O[early]                         # [d_model, d_model]
    w_qk = model.W_Q[late] @ model.W_K[late].T                         # [d_model, d_model]
    return ((w_ov @ w_qk.T).norm() / (w_ov.norm() * w_qk.norm())).item()


@lru_cache(maxsize=None)
def _composition_cases() -> list[Case]:
    two, four = _model("attn-only-2l"), _model("course-4l")
    return [
        Case((two, (0, 0), (1, 0)), label="2-layer model, 0.0 -> 1.0"),
        Case((two, (0, 5), (1, 3)), label="2-layer model, 0.5 -> 1.3"),
        Case((four, (0, 2), (3, 1)), label="4-layer model, 0.2 -> 3.1"),
        Case((four, (1, 7), (2, 0)), label="4-layer model, 1.7 -> 2.0"),
    ]


def _composition_mistake(mode: str = "K", normalise: bool = True, swap: bool = False):
    def wrong(model: HookedTransformer, early: Head, late: Head) -> float:
        if swap:
            early, late = late, early
        w_ov = model.W_V[early] @ model.W_O[early]
        right = {"K": (model.W_Q[late] @ model.W_K[late].T).T, "Q": model.W_Q[late] @ model.W_K[late].T,
                 "V": model.W_V[late] @ model.W_O[late]}[mode]
        product = (w_ov @ right).norm()
        return (product / (w_ov.norm() * right.norm()) if normalise else product).item()
    return wrong


def check_k_composition_score(fn) -> CheckResult:
    """Check exercise 6 on head pairs of both models."""
    return check_function(fn, k_composition_score, _composition_cases(), name="k_composition_score",
                          known_mistakes={
        "q": (_composition_mistake("Q"), "that is the Q-composition score (W_OV @ W_QK): for K-composition the "
                                         "earlier head writes into the later head's keys, so use W_QK transposed"),
        "v": (_composition_mistake("V"), "that is the V-composition score (W_OV @ W_OV of the later head): use the "
                                         "later head's QK matrix, transposed"),
        "norm": (_composition_mistake(normalise=False), "you forgot to divide by the two matrices' norms: the "
                                                        "score is a ratio between 0 and 1"),
        "swap": (_composition_mistake(swap=True), "you swapped the heads: the *early* head writes (its W_OV), the "
                                                  "*late* head reads into its keys (its W_QK)"),
    }, hint="W_OV = model.W_V[l, h] @ model.W_O[l, h]; W_QK = model.W_Q[l, h] @ model.W_K[l, h].T; "
            "score = ||W_OV @ W_QK.T|| / (||W_OV|| ||W_QK||), Frobenius norms; return a float (.item())")


# ----------------------------------------------------------------------------- exercise 7 (stretch)
def induction_targets(tokens: torch.Tensor) -> torch.Tensor:
    """Where an induction head at each position would look: ``[pos]`` of int64.

    For each position ``q`` of ``tokens`` ``[pos]``: the position right after the most recent
    earlier occurrence of ``tokens[q]``, or -1 if the token did not occur before ``q``.
    """
    last_seen: dict[int, int] = {}
    targets = []
    for q, token in enumerate(tokens.tolist()):
        targets.append(last_seen[token] + 1 if token in last_seen else -1)
        last_seen[token] = q
    return torch.tensor(targets, dtype=torch.long)


@lru_cache(maxsize=None)
def _target_cases() -> list[Case]:
    two = _model("attn-only-2l")
    return [
        Case((two.to_tokens(CAT_PROMPT)[0],), label="cat prompt"),
        Case((torch.tensor([0, 7, 3, 7, 5, 7, 3]),), label="token 7 three times: use its latest occurrence"),
        Case((torch.tensor([0, 4, 4, 4]),), label="a token repeated back to back"),
        Case((torch.tensor([0, 1, 2, 3]),), label="no repeats"),
        Case((repeated_random_tokens(two, n_seqs=1, half_len=6, seed=7)[0],), label="repeated random tokens"),
    ]


def _targets_mistake(plus_one: bool = True, first: bool = False, include_self: bool = False):
    def wrong(tokens: torch.Tensor) -> torch.Tensor:
        values, targets = tokens.tolist(), []
        for q, token in enumerate(values):
            earlier = [k for k in range(q + include_self) if values[k] == token]
            if not earlier:
                targets.append(-1)
            else:
                k = earlier[0] if first else earlier[-1]
                targets.append(k + plus_one)
        return torch.tensor(targets, dtype=torch.long)
    return wrong


def check_induction_targets(fn) -> CheckResult:
    """Check the stretch exercise on the cat prompt, repeats, back-to-back tokens and a prompt without repeats."""
    return check_function(fn, induction_targets, _target_cases(), name="induction_targets", known_mistakes={
        "no_plus_one": (_targets_mistake(plus_one=False), "you returned where the token appeared before: the "
                                                          "induction head looks at the token right *after* it (+1)"),
        "first": (_targets_mistake(first=True), "you used the first earlier occurrence: use the most recent one"),
        "self": (_targets_mistake(include_self=True), "you counted the token itself as an earlier occurrence: "
                                                      "only search positions before q"),
    }, hint="walk left to right, remembering the last position where each token was seen")
