"""The checks of workbook 1's seven exercises: ``check_<name>(fn)`` prints one line and returns a ``CheckResult``.

Each runs the learner's ``fn`` against :mod:`helpers.lesson1.reference` on the cases of
:mod:`helpers.lesson1.cases` (both course models, tiny random models, hand-made patterns, edge cases) and
names the mistake of :mod:`helpers.lesson1.mistakes` that the learner's output matches.

:func:`check_model` (from :mod:`~helpers.lesson1.cases`) is the checks' cached copy of a model, bundled or
tiny, for other lessons' checks that want the same copies.
"""
from __future__ import annotations

from helpers.checks import CheckResult, check_function
from helpers.lesson1 import cases
from helpers.lesson1.cases import check_model
from helpers.lesson1.mistakes import (
    N_LAYERS_MSG,
    ablation_mistake,
    composition_mistake,
    dla_no_layernorm,
    dla_not_centred,
    dla_previous_position,
    induction_offset,
    induction_transposed,
    previous_token_offset,
    rebuild_mistake,
    targets_mistake,
)
from helpers.lesson1.reference import (
    ablation_loss_increase,
    head_logit_attribution,
    induction_scores,
    induction_targets,
    k_composition_score,
    previous_token_scores,
    rebuild_residual_stream,
)

__all__ = ["check_model", "check_rebuild_residual_stream", "check_head_logit_attribution",
           "check_previous_token_scores", "check_induction_scores", "check_ablation_loss_increase",
           "check_k_composition_score", "check_induction_targets"]


# ----------------------------------------------------------------------------- exercise 1
def check_rebuild_residual_stream(learner_fn: object) -> CheckResult:
    """Check exercise 1 on the 2-layer model, the 4-layer model and a tiny GPT-2-like model."""
    return check_function(learner_fn, rebuild_residual_stream, cases.rebuild_cases(), name="rebuild_residual_stream",
                          known_mistakes={
        "embed": (rebuild_mistake(embed=False), "you left out the token embedding, cache['embed']: "
                                                "it is the first thing on the residual stream"),
        "short": (rebuild_mistake(layers_short=1), "you stopped one layer early: "
                                                   "loop over range(model.cfg.n_layers)"),
        "mlp": (rebuild_mistake(mlp=False), "you left out the MLP outputs, cache['mlp_out', layer]: "
                                            "models with MLPs (model.cfg.attn_only is False) add them too"),
        "pos": (rebuild_mistake(pos=False), "you left out the positional embedding, cache['pos_embed']: models "
                                            "with learned positions (positional_embedding_type 'standard') add it"),
    }, hint="add cache['embed'], cache['pos_embed'] (learned positions only), and every layer's "
            "cache['attn_out', layer] and cache['mlp_out', layer] (models with MLPs only)")


# ----------------------------------------------------------------------------- exercise 2
def check_head_logit_attribution(learner_fn: object) -> CheckResult:
    """Check exercise 2 on both models, at the last and at middle positions, and on a tiny model whose folded
    weights are not centred (where skipping the centring changes the answer)."""
    return check_function(learner_fn, head_logit_attribution, cases.dla_cases(), name="head_logit_attribution",
                          known_mistakes={
        "ln": (dla_no_layernorm, "you skipped the final LayerNorm: divide each head's output by "
                                 "cache['ln_final.hook_scale'][0, pos] before multiplying by the unembedding"),
        "pos": (dla_previous_position, "you used the activations one position too early: the logits at "
                                       "position `pos` are read from the residual stream at `pos` itself"),
        "centre": (dla_not_centred, "you skipped the centring: subtract each head's mean over d_model before "
                                    "dividing by the scale, as the final LayerNorm does. The course models' "
                                    "weights are already centred, so it only shows on a model whose weights are not"),
    }, hint="head output = z @ W_O per head (cache['result', layer] holds it), divided by the final LayerNorm "
            "scale, dotted with model.W_U[:, token_id]")


# ----------------------------------------------------------------------------- exercise 3
def check_previous_token_scores(learner_fn: object) -> CheckResult:
    """Check exercise 3 on both models and on a hand-made perfect previous-token head."""
    return check_function(learner_fn, previous_token_scores, cases.previous_token_cases(),
                          name="previous_token_scores", known_mistakes={
        "self": (previous_token_offset(0), "you measured attention to the token itself (the main diagonal): "
                                           "the previous token is one step below it, diagonal(offset=-1)"),
        "transposed": (previous_token_offset(1), "you read pattern[..., i - 1, i], which is attention to the *next* "
                                                 "token (always 0 in a causal model): the last two dims are "
                                                 "[query, key], use diagonal(offset=-1)"),
        "bos": (previous_token_offset(-1, start=0), "you counted position 1's attention to the BOS token: heads "
                                                     "park unneeded attention on BOS, so leave query position 1 out "
                                                     "(drop the first entry of the diagonal)"),
        "last_missing": (previous_token_offset(-1, stop=-1), "you left out the last query position: average over "
                                                              "every q from 2 to pos - 1, the last one included "
                                                              "(range(2, pos) or diagonal[..., 1:])"),
        "dropped_last": (previous_token_offset(-1, start=0, stop=-1), "you dropped the last entry of the diagonal "
                                                                       "instead of the first: the first entry is "
                                                                       "query 1 (previous token BOS), so use "
                                                                       "[..., 1:]"),
        "fixed_layers": (lambda cache, n_layers: previous_token_scores(cache, 2), N_LAYERS_MSG),
    }, hint="cache['pattern', layer] is [batch, head, query, key]; take diagonal(offset=-1, dim1=-2, dim2=-1), "
            "drop its first entry (query 1, whose previous token is BOS) and average over batch and positions; "
            "with a loop, average pattern[:, :, q, q - 1] over q = 2 .. pos - 1, for layer in range(n_layers)")


# ----------------------------------------------------------------------------- exercise 4
def check_induction_scores(learner_fn: object) -> CheckResult:
    """Check exercise 4 on both models, a single sequence, and a hand-made perfect induction head."""
    return check_function(learner_fn, induction_scores, cases.induction_cases(), name="induction_scores",
                          known_mistakes={
        "duplicate": (induction_offset(0, start=1), "you measured attention to the earlier copy of the *same* token "
                                                    "(offset -half_len): an induction head looks one step further, "
                                                    "at the token that came *after* it (offset 1 - half_len)"),
        "bos": (induction_offset(1, start=1, stop=-1), "your query positions are shifted by one: the BOS token at "
                                                       "position 0 puts the second copy at positions half_len + 1 "
                                                       "to 2 * half_len"),
        "whole_diagonal": (induction_offset(1, start=0), "you also averaged over queries in the first copy: only "
                                                         "the half_len tokens of the second copy can look back"),
        "transposed": (induction_transposed, "you swapped query and key (all zeros: a causal model never attends "
                                             "forward): the pattern is [batch, head, query, key], so use a "
                                             "negative diagonal offset"),
        "fixed_layers": (lambda cache, n_layers, half_len: induction_scores(cache, 2, half_len), N_LAYERS_MSG),
    }, hint="for query q in the second copy the key is q - half_len + 1: "
            "pattern.diagonal(offset=1 - half_len, dim1=-2, dim2=-1), keeping only second-copy queries; "
            "with a loop, average pattern[:, :, q, q - half_len + 1] over q = half_len + 1 .. 2 * half_len")


# ----------------------------------------------------------------------------- exercise 5
def check_ablation_loss_increase(learner_fn: object) -> CheckResult:
    """Check exercise 5 on both models, one or two heads, and no heads at all."""
    return check_function(learner_fn, ablation_loss_increase, cases.ablation_cases(), name="ablation_loss_increase",
                          atol=1e-3, known_mistakes={
        "position": (ablation_mistake(index_pos=True), "you zeroed a position, not a head: hook_z is "
                                                       "[batch, pos, head, d_head], so the head index goes third, "
                                                       "z[:, :, head]"),
        "every_layer": (ablation_mistake(every_layer=True), "you zeroed that head number in every layer: only "
                                                            "zero it in its own layer (hook.layer())"),
        "whole_layer": (ablation_mistake(whole_layer=True), "you zeroed the whole layer's attention output: zero "
                                                            "only the listed heads, at hook_z"),
        "all_tokens": (ablation_mistake(all_tokens=True), "you averaged the loss over the whole sequence: measure "
                                                          "the second copy only, loss_per_token[:, half_len + 1:]"),
        "flipped": (ablation_mistake(flipped=True), "the sign is flipped: return ablated loss minus clean loss"),
        "with_first": (ablation_mistake(with_first=True), "you included the second copy's first token, which "
                                                          "nothing in the context can predict: start at half_len + 1, "
                                                          "loss_per_token[:, half_len + 1:]"),
    }, hint="zero z[:, :, head] in a hook on get_act_name('z', layer), run model.run_with_hooks(tokens, "
            "return_type='loss', loss_per_token=True, fwd_hooks=...) and compare with the clean run")


# ----------------------------------------------------------------------------- exercise 6
def check_k_composition_score(learner_fn: object) -> CheckResult:
    """Check exercise 6 on head pairs of both models."""
    return check_function(learner_fn, k_composition_score, cases.composition_cases(), name="k_composition_score",
                          known_mistakes={
        "q": (composition_mistake("Q"), "that is the Q-composition score (W_OV @ W_QK): for K-composition the "
                                        "earlier head writes into the later head's keys, so use W_QK transposed"),
        "v": (composition_mistake("V"), "that is the V-composition score (W_OV @ W_OV of the later head): use the "
                                        "later head's QK matrix, transposed"),
        "norm": (composition_mistake(normalise=False), "you forgot to divide by the two matrices' norms: the "
                                                       "score is a ratio between 0 and 1"),
        "swap": (composition_mistake(swap=True), "you swapped the heads: the *early* head writes (its W_OV), the "
                                                 "*late* head reads into its keys (its W_QK)"),
    }, hint="W_OV = model.W_V[l, h] @ model.W_O[l, h]; W_QK = model.W_Q[l, h] @ model.W_K[l, h].T; "
            "score = ||W_OV @ W_QK.T|| / (||W_OV|| ||W_QK||), Frobenius norms; return a float (.item())")


# ----------------------------------------------------------------------------- exercise 7 (stretch)
def check_induction_targets(learner_fn: object) -> CheckResult:
    """Check the stretch exercise on the cat prompt, repeats, back-to-back tokens and a prompt without repeats."""
    return check_function(learner_fn, induction_targets, cases.target_cases(), name="induction_targets",
                          known_mistakes={
        "no_plus_one": (targets_mistake(plus_one=False), "you returned where the token appeared before: the "
                                                         "induction head looks at the token right *after* it (+1)"),
        "first": (targets_mistake(first=True), "you used the first earlier occurrence: use the most recent one"),
        "self": (targets_mistake(include_self=True), "you counted the token itself as an earlier occurrence: "
                                                     "only search positions before q"),
        "look_ahead": (targets_mistake(look_ahead=True), "you also searched positions after q: an induction head "
                                                         "can only look back, so search tokens[:q] only"),
        "missing_zero": (targets_mistake(missing=0), "where the token did not occur before q you wrote 0, which "
                                                     "is a real position (BOS): write -1 there"),
    }, hint="walk left to right, remembering the last position where each token was seen")
