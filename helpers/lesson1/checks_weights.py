"""The checks of workbook 1b's exercises 8 to 14: ``check_<name>(fn)`` prints one line, returns a ``CheckResult``.

Each runs the learner's ``fn`` against :mod:`helpers.lesson1.reference_weights` on the cases of
:mod:`helpers.lesson1.cases_weights` (both course models, tiny random models, hand-made matrices and
patterns, edge cases) and names the mistake of :mod:`helpers.lesson1.mistakes_weights` that the learner's
output matches. Every check runs on one thread and takes well under a second, right answer or wrong.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpers.checks import CheckResult, check_function, single_threaded
from helpers.lesson1 import cases_weights as cases
from helpers.lesson1.mistakes_weights import (
    composition_scores_mistake,
    detection_mistake,
    half_loss_mistake,
    ov_mistake,
    positional_mistake,
    positivity_mistake,
    top1_mistake,
)
from helpers.lesson1.reference_weights import (
    composition_scores,
    detection_score,
    diagonal_top1_share,
    eigenvalue_positivity,
    full_ov_circuit,
    positional_attention_pattern,
    repeated_half_loss,
)

__all__ = ["check_full_ov_circuit", "check_diagonal_top1_share", "check_eigenvalue_positivity",
           "check_positional_attention_pattern", "check_composition_scores", "check_detection_score",
           "check_repeated_half_loss"]


def _compared_by_rows(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` returning :func:`~helpers.lesson1.cases_weights.ov_rows` of its output (exercise 8's comparison)."""
    def rows(*args: Any) -> Any:
        return cases.ov_rows(fn(*args))
    rows.__name__ = getattr(fn, "__name__", "full_ov_circuit")
    return rows


# ----------------------------------------------------------------------------- exercise 8
@single_threaded
def check_full_ov_circuit(learner_fn: object) -> CheckResult:
    """Check exercise 8 on heads of both models and a tiny one, comparing shape and 40 rows of the product."""
    mistakes = {
        "no_embed": (ov_mistake("no_embed"), "your matrix is [d_model, d_vocab]: its rows are residual-stream "
                                             "directions, not tokens. Start from the token embedding, model.W_E"),
        "no_unembed": (ov_mistake("no_unembed"), "your matrix is [d_vocab, d_model]: its columns are residual-"
                                                 "stream directions, not logits. End with the unembedding, model.W_U"),
        "transposed": (ov_mistake("transposed"), "you built it transposed (W_U.T ... W_E.T): rows are the token "
                                                 "attended to (model.W_E first), columns the logit it raises "
                                                 "(model.W_U last)"),
        "dense": (ov_mistake("dense"), "you returned a plain tensor, d_vocab x d_vocab (69 MB for 4,150 tokens): "
                                       "keep it factored. model.OV[layer, head] is a FactoredMatrix, and @ with a "
                                       "tensor on either side keeps it one"),
        "swapped_index": (ov_mistake("swapped_index"), "you took head layer.head the wrong way round: model.OV is "
                                                       "[n_layers, n_heads, ...], index it [layer, head]"),
    }
    return check_function(
        learner_fn if not callable(learner_fn) else _compared_by_rows(learner_fn),
        _compared_by_rows(full_ov_circuit), cases.ov_cases(), name="full_ov_circuit", compare=cases.same_ov_rows,
        known_mistakes={key: (_compared_by_rows(fn), message) for key, (fn, message) in mistakes.items()},
        hint="return a FactoredMatrix of shape [d_vocab, d_vocab]: the token embedding first, then the head's "
             "OV circuit model.OV[layer, head], then the unembedding")


# ----------------------------------------------------------------------------- exercise 9
@single_threaded
def check_diagonal_top1_share(learner_fn: object) -> CheckResult:
    """Check exercise 9 on blocks of two full OV circuits, a noisy identity, hand-made ties and a lopsided matrix."""
    strict = "count a row only when its diagonal entry is strictly larger than every other entry of the row"
    return check_function(learner_fn, diagonal_top1_share, cases.top1_cases(), name="diagonal_top1_share",
                          atol=1e-6, known_mistakes={
        "columns": (top1_mistake("columns"), "you looked down the columns: row s is the token attended to, so "
                                             "compare the entries of each row (along dim=1)"),
        "ties": (top1_mistake("ties"), "a row whose diagonal only ties the largest entry counted as a copy "
                                       f"(>= or == against the row's max): {strict}"),
        "first_tie": (top1_mistake("first_tie"), "argmax returns the first of tied entries, so some ties counted "
                                                 f"as copies: {strict}"),
        "all_entries": (top1_mistake("all_entries"), "you divided by the number of entries (n * n): the share is "
                                                     "of rows, divide by n"),
        "count": (top1_mistake("count"), "you returned how many rows copy, not what share: divide by the number "
                                         "of rows"),
    }, hint="for each row s: is matrix[s, s] larger than every other entry of row s? Then the mean of that over "
            "the rows, as a float")


# ----------------------------------------------------------------------------- exercise 10
@single_threaded
def check_eigenvalue_positivity(learner_fn: object) -> CheckResult:
    """Check exercise 10 on OV and QK circuits of both models, a token block, and hand-made matrices."""
    return check_function(learner_fn, eigenvalue_positivity, cases.positivity_cases(), name="eigenvalue_positivity",
                          atol=1e-4, known_mistakes={
        "no_abs": (positivity_mistake("no_abs"), "your score is 1.0 whatever the matrix: divide by the sum of the "
                                                 "eigenvalues' sizes |λ|, eigenvalues.abs().sum() (and use "
                                                 "eigenvalues, not singular values, which are never negative)"),
        "real_abs": (positivity_mistake("real_abs"), "you divided by the sum of |Re λ|: |λ| is the complex "
                                                     "modulus, eigenvalues.abs() (a rotation's eigenvalues i and -i "
                                                     "have real part 0 but size 1)"),
        "singular": (positivity_mistake("singular"), "you divided by the sum of the singular values (fm.S): "
                                                     "divide by the eigenvalues' own sizes, eigenvalues.abs().sum()"),
        "modulus": (positivity_mistake("modulus"), "you took the size of the sum, |sum λ|, which is never negative: "
                                                   "a head that suppresses its token must score below 0, so take "
                                                   "the real part of the sum (.real)"),
    }, hint="fm.eigenvalues is a complex tensor: the real part of its sum, divided by the sum of its moduli "
            "(.abs()), as a float")


# ----------------------------------------------------------------------------- exercise 11
MASKED_DIAGONAL = ("you masked the diagonal too: a position may attend to itself, so mask only keys after the "
                   "query (triu with diagonal=1)")


@single_threaded
def check_positional_attention_pattern(learner_fn: object) -> CheckResult:
    """Check exercise 11 on heads of both models and a tiny model, with several LayerNorm scales."""
    return check_function(learner_fn, positional_attention_pattern, cases.positional_cases(),
                          name="positional_attention_pattern", atol=1e-4, known_mistakes={
        "no_ln_scale": (positional_mistake(divide="none"), "you left out ln_scale: the head reads the stream after "
                                                             "its LayerNorm, which divides it by that scale, so use "
                                                             "W_pos / ln_scale for both queries and keys"),
        "ln_scale_once": (positional_mistake(divide="once"), "you divided the scores by ln_scale once: queries and "
                                                               "keys are both made from W_pos / ln_scale, so the "
                                                               "scores carry it twice"),
        "no_scale": (positional_mistake(scale=False), "you forgot to divide the scores by sqrt(d_head) "
                                                      "(model.cfg.d_head ** 0.5) before the softmax"),
        "no_mask": (positional_mistake(mask="none"), "you forgot the causal mask: a query cannot see later keys, so "
                                                     "set the scores above the diagonal to -inf before the softmax"),
        "mask_after": (positional_mistake(mask="after"), "you zeroed the later keys after the softmax, so the rows no "
                                                         "longer sum to 1: set the scores to -inf before it"),
        "mask_diagonal": (positional_mistake(mask="diagonal"), MASKED_DIAGONAL),
        "mask_diagonal_finite": (positional_mistake(mask="diagonal", fill=-1e9), MASKED_DIAGONAL),
        "softmax_dim": (positional_mistake(softmax_dim=0), "you took the softmax over the queries (dim=0): each "
                                                           "query's attention over the keys sums to 1, "
                                                           "softmax(dim=-1)"),
        "transposed": (positional_mistake(transposed=True), "you swapped W_Q and W_K: the queries (rows) come from "
                                                            "W_Q, the keys (columns) from W_K"),
        "biases": (positional_mistake(biases=True), "you added the biases b_Q and b_K: this circuit is the weights "
                                                    "alone"),
    }, hint="positions W_pos / ln_scale; queries through W_Q[layer, head], keys through W_K[layer, head]; "
            "scores / sqrt(d_head), -inf above the diagonal, softmax over the keys")


# ----------------------------------------------------------------------------- exercise 12
@single_threaded
def check_composition_scores(learner_fn: object) -> CheckResult:
    """Check exercise 12 in the three modes on both models and a tiny GPT-2-like model."""
    return check_function(learner_fn, composition_scores, cases.composition_cases(), name="composition_scores",
                          atol=1e-4, known_mistakes={
        "qk_swapped": (composition_scores_mistake("qk_swapped"), "you swapped Q- and K-composition: in Q the "
                                                                 "block-0 head writes into the block-1 head's "
                                                                 "queries, W_OV @ W_QK; in K into its keys, "
                                                                 "W_OV @ W_QK.T"),
        "order": (composition_scores_mistake("order"), "you multiplied in the wrong order: the block-0 head's W_OV "
                                                       "comes first (it writes), the block-1 head's matrix second"),
        "no_norm": (composition_scores_mistake("no_norm"), "you forgot to divide by the two matrices' norms: every "
                                                           "score is a ratio between 0 and 1"),
        "transposed": (composition_scores_mistake("transposed"), "your rows are the block-1 heads: rows are block-0 "
                                                                 "heads (the writers), columns block-1 heads"),
        "spectral": (composition_scores_mistake("spectral"), "you used the spectral norm (ord=2): the scores use "
                                                             "Frobenius norms, torch.linalg.matrix_norm's default"),
        "always_k": (composition_scores_mistake("always_k"), "you ignored mode: 'Q' uses the block-1 head's W_QK, "
                                                             "'K' its transpose, 'V' its W_OV"),
    }, hint="W_OV of block 0's heads is model.W_V[0] @ model.W_O[0] ([head, d_model, d_model]); score "
            "[i, j] = ||W_OV[i] @ M[j]|| / (||W_OV[i]|| ||M[j]||), Frobenius norms, M from block 1")


# ----------------------------------------------------------------------------- exercise 13
@single_threaded
def check_detection_score(learner_fn: object) -> CheckResult:
    """Check exercise 13 on real heads with detect_head's detection patterns (with and without BOS), and by hand."""
    return check_function(learner_fn, detection_score, cases.detection_cases(), name="detection_score", atol=1e-5,
                          known_mistakes={
        "stripe_mean": (detection_mistake("stripe_mean"), "you divided by the number of 1s in the detection pattern "
                                                          "(lesson 1's mean over the stripe): detect_head divides by "
                                                          "the pattern's whole attention, pattern.sum(), so a query "
                                                          "with no 1 in its row counts as 0"),
        "no_divide": (detection_mistake("no_divide"), "you forgot to divide: the score is a share, "
                                                      "sum(pattern * detection_pattern) / sum(pattern)"),
        "all_entries": (detection_mistake("all_entries"), "you averaged over every entry (pos x pos, the empty upper "
                                                          "triangle too): divide by the total attention, "
                                                          "pattern.sum()"),
        "bos_denominator": (detection_mistake("bos_denominator"), "with exclude_bos you dropped BOS from the top "
                                                                  "but not from the bottom: divide by the attention "
                                                                  "left once key 0 is zeroed"),
        "bos_ignored": (detection_mistake("bos_ignored"), "you ignored exclude_bos: when it is True, zero the "
                                                          "attention on key 0 (column 0) before both sums"),
    }, hint="the attention on the 1s of the detection pattern divided by all the attention; with exclude_bos, "
            "column 0 zeroed first (on a copy)")


# ----------------------------------------------------------------------------- exercise 14
@single_threaded
def check_repeated_half_loss(learner_fn: object) -> CheckResult:
    """Check exercise 14 on both models with several lengths and a tiny random model."""
    return check_function(learner_fn, repeated_half_loss, cases.half_loss_cases(), name="repeated_half_loss",
                          atol=1e-4, known_mistakes={
        "whole": (half_loss_mistake("whole"), "you averaged over the whole sequence: only the second copy's "
                                              "predictions count, the targets at half_len + 2 .. 2 * half_len"),
        "same_position": (half_loss_mistake("same_position"), "you scored the logits at position p against the "
                                                              "token at p: they predict the NEXT token, at p + 1"),
        "no_log_softmax": (half_loss_mistake("no_log_softmax"), "you used the raw logits: take log_softmax over the "
                                                                "vocabulary first, then minus the log-probability "
                                                                "of the right token"),
        "with_first": (half_loss_mistake("with_first"), "you included the second copy's first token, which nothing "
                                                        "before it can predict: the first target is at half_len + 2"),
        "fixed_half": (half_loss_mistake("fixed_half"), "you used a fixed half length (the notebook's 25): compute "
                                                        "it from tokens.shape[1] = 1 + 2 * half_len; the check hands "
                                                        "you other lengths"),
        "log_prob": (half_loss_mistake("log_prob"), "you returned the mean log-probability: the loss is minus it, a "
                                                    "positive number"),
    }, hint="half_len = (tokens.shape[1] - 1) // 2; log_softmax of model(tokens), the log-probability each position "
            "gives the next token (gather), minus the mean over the second copy's predictable targets")
