"""The checks of workbook 3c's exercises (11 to 18): ``check_<name>(learner_fn)`` prints one line and returns a
``CheckResult``.

Each compares the learner's function with :mod:`helpers.lesson3.reference_paths` on the cases of
:mod:`helpers.lesson3.cases_paths`, and names the mistake of :mod:`helpers.lesson3.mistakes_paths` that the
learner's output matches. Hooks built in a loop that read the loop's variable when they run (late binding) are
named from the learner's source. The checks run on one thread, without gradients.
"""
from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable
from typing import Any, Literal

import torch

from helpers.checks import CheckResult, check_function, report, single_threaded
from helpers.lesson3 import cases_paths as cases
from helpers.lesson3.mistakes_paths import (
    carry_mistake,
    direct_mistake,
    direction_mistake,
    effect_mistake,
    input_mistake,
    late_bound_names,
    path_mistake,
    position_mistake,
)
from helpers.lesson3.reference_paths import (
    denoising_effect,
    direct_logit_diff,
    logit_diff_direction,
    noising_effect,
    patch_head_at_position,
    patch_head_input,
    path_patch,
    swap_carry_length,
)

__all__ = ["check_patch_head_at_position", "check_patch_head_input", "check_path_patch",
           "check_logit_diff_direction", "check_direct_logit_diff", "check_denoising_effect", "check_noising_effect",
           "check_swap_carry_length", "LATE_BINDING"]

LATE_BINDING = ("a function defined in a loop reads the loop's variables when it runs, after the loop has ended "
                "(late binding), so every hook saw their last values; freeze them as default arguments, "
                "def hook(z, hook, layer=layer, head=head), or build each hook in a helper function")
CROSS_BATCH = "cross-batch fancy indexing"
PATH_HINT = ("resid = clean_cache['resid_pre', receiver layer] + (corrupted z - clean z of the sender's head) @ "
             "model.W_O[sender layer, sender head]; put it in the receiver's hook_<component>_input at "
             "[:, :, receiver head], with model.set_use_split_qkv_input(True) during that run only")


def _quiet(check: Callable[[], CheckResult]) -> tuple[CheckResult, str]:
    """Run a check without printing its line; return the result and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = check()
    return result, out.getvalue()


def _late_binding_named(learner_fn: object, name: str, check: Callable[[object], CheckResult],
                        named: dict[str, tuple[Any, str]]) -> CheckResult:
    """``check(learner_fn)``; when it fails with no known mistake's message and ``learner_fn``'s source defines a hook
    in a loop that reads the loop's variable, the message names the late binding (whatever numbers it produced)."""
    result, printed = _quiet(lambda: check(learner_fn))
    known = any(message in result.message for _, message in named.values())
    late = [] if result.passed or known else late_bound_names(learner_fn)
    if not late:
        print(printed, end="")
        return result
    problem = result.message.removeprefix(f"❌ {name}: ")
    return report(False, f"{name}: your hooks read {', '.join(late)} when they run: {LATE_BINDING}. (The check "
                         f"said: {problem})")


# ============================================================================ exercise 11
@single_threaded
def check_patch_head_at_position(learner_fn: object) -> CheckResult:
    """Check exercise 11 on five heads and positions of the three models."""
    with torch.no_grad():
        return check_function(learner_fn, patch_head_at_position, cases.position_cases(),
                              name="patch_head_at_position", atol=1e-4, rtol=1e-3, known_mistakes={
            "all_positions": (position_mistake("all_positions"), "you patched every position: patch position pos "
                              "only, z[:, pos, head] (every position is exercise 3's patch_head_output)"),
            "all_heads": (position_mistake("all_heads"), "you patched every head at that position: keep only the "
                          "one head, z[:, pos, head]"),
            "swapped": (position_mistake("swapped"), "you swapped the two indices: hook_z is [batch, pos, "
                        "head_index, d_head], so it is z[:, pos, head], not z[:, head, pos]"),
            "last": (position_mistake("last"), "you patched the last position whatever pos is: use the pos you are "
                     "given, z[:, pos, head]"),
        }, hint="one hook on get_act_name('z', layer) that sets z[:, pos, head] = "
                "clean_cache['z', layer][:, pos, head]")


# ============================================================================ exercise 12
@single_threaded
def check_patch_head_input(learner_fn: object) -> CheckResult:
    """Check exercise 12 on queries, keys and values of heads of the three models."""
    with torch.no_grad():
        return check_function(learner_fn, patch_head_input, cases.input_cases(), name="patch_head_input",
                              atol=1e-4, rtol=1e-3, known_mistakes={
            "z": (input_mistake("z"), "you patched the head's output (hook_z): patch what it reads, its queries, "
                  "keys or values, at get_act_name(component, layer) (hook_q, hook_k or hook_v)"),
            "swap_qk": (input_mistake("swap_qk"), "you patched the keys when asked for the queries (or the other way "
                        "round): component 'q' is hook_q, the vector a position asks with; 'k' is hook_k"),
            "all_heads": (input_mistake("all_heads"), "you patched every head of the layer: only the one head, "
                          "act[:, :, head]"),
            "position": (input_mistake("position"), "you indexed a position, not a head: hook_q, hook_k and hook_v "
                         "are [batch, pos, head_index, d_head], so the head goes third, act[:, :, head]"),
            "pattern": (input_mistake("pattern"), "you patched the head's attention pattern: patch the component you "
                        "are given, get_act_name(component, layer)"),
        }, hint="a hook on get_act_name(component, layer) that sets act[:, :, head] = "
                "clean_cache[component, layer][:, :, head]")


# ============================================================================ exercise 13
def _path_mistakes() -> dict[str, tuple[Any, str]]:
    """Exercise 13's known mistakes and their messages."""
    return {
        "total": (path_mistake("total"), "you patched the sender's whole output: that is its total effect, "
                  "through every path. Change only what the receiver's q, k or v input reads: the clean "
                  "residual stream plus the sender's change, (z_corrupted - z_clean) @ W_O of the sender"),
        "no_freeze": (path_mistake("no_freeze"), "you recorded the receiver's input on a run where only the "
                      "sender was patched, so the change also reached it through the heads and MLPs in "
                      "between: freeze every other head (hook_z) and every MLP (hook_mlp_out) at its clean "
                      "value on that run, or add the sender's change to the clean residual stream directly"),
        "mlps_free": (path_mistake("mlps_free"), "you froze the other heads but let the MLPs recompute: the "
                      "path here is the direct one, sender to receiver along the residual stream, so freeze "
                      "hook_mlp_out at clean too (or add the sender's change to the clean stream directly)"),
        "backward": (path_mistake("backward"), "on this case the receiver sits in the sender's block or an "
                     "earlier one: it reads the residual stream before the sender writes, so there is no "
                     "path and the run is the clean run; return metric(model(clean_tokens)) when the "
                     "receiver's layer is not after the sender's"),
        "receiver_block": (path_mistake("receiver_block"), "you patched the residual stream before the "
                           "receiver's block, which every head of that block and its MLP read: give the "
                           "changed stream to the receiver's one input only "
                           "(model.set_use_split_qkv_input(True), then hook_q_input, hook_k_input or "
                           "hook_v_input, [batch, pos, head_index, d_model], at [:, :, head])"),
        "late_binding": (path_mistake("late_binding"), "every freezing hook froze its layer to the last "
                         f"layer's clean output: {LATE_BINDING}"),
    }


@single_threaded
def check_path_patch(learner_fn: object) -> CheckResult:
    """Check exercise 13 on edges of the three models: two blocks apart (the blocks in between matter), one block
    apart, and receivers with no path from the sender (its own block, an earlier one)."""
    name = "path_patch"
    if not callable(learner_fn):
        return check_function(learner_fn, path_patch, [], name=name)
    left_on: list[str] = []
    mistakes = _path_mistakes()

    @functools.wraps(learner_fn)
    def guarded(model: Any, *args: Any) -> Any:
        try:
            return learner_fn(model, *args)
        finally:
            if model.cfg.use_split_qkv_input:             # restore the model for the next case and the next check
                left_on.append(model.cfg.model_name)
                model.set_use_split_qkv_input(False)

    def check(fn: object) -> CheckResult:
        with torch.no_grad():
            return check_function(fn, path_patch, cases.path_cases(), name=name, atol=1e-4, rtol=1e-3,
                                  known_mistakes=mistakes, hint=PATH_HINT)

    result, printed = _quiet(lambda: _late_binding_named(learner_fn, name, lambda fn: check(guarded), mistakes))
    if result.passed and left_on:
        return report(False, f"{name}: right values, but you left model.set_use_split_qkv_input(True) on "
                             f"({left_on[0]}): turn it off when your run is done (try: ... finally: "
                             "model.set_use_split_qkv_input(False)), or every later run of the model keeps one copy "
                             "of the residual stream per head")
    print(printed, end="")
    return result


# ============================================================================ exercise 14
def check_logit_diff_direction(learner_fn: object) -> CheckResult:
    """Check exercise 14 on IOI answers of both bundled models, random answers on the tiny model and one prompt."""
    cross = (f"{CROSS_BATCH}: model.W_U[:, answer_tokens] is [d_model, batch, 2], so [:, 0] is prompt 0's two "
             "answers (and [:, 1] prompt 1's), not every prompt's right answer; take the columns of each prompt's "
             "own answers, model.W_U[:, answer_tokens[:, 0]] ([d_model, batch])")
    with torch.no_grad():
        return check_function(learner_fn, logit_diff_direction, cases.direction_cases(), name="logit_diff_direction",
                              atol=1e-5, known_mistakes={
            "flipped": (direction_mistake("flipped"), "the sign is flipped: the right answer's column minus the "
                        "wrong one's, W_U[:, IO] - W_U[:, S]"),
            "embedding": (direction_mistake("embedding"), "you used the embedding W_E: the logits read the final "
                          "residual stream through the unembedding, model.W_U ([d_model, d_vocab])"),
            "transposed": (direction_mistake("transposed"), "you returned [d_model, batch]: one row per prompt, "
                           "[batch, d_model], so transpose it (.T)"),
            "cross_batch": (direction_mistake("cross_batch"), cross),
            "cross_batch_T": (direction_mistake("cross_batch_T"), cross),
            "mean": (direction_mistake("mean"), "you averaged the directions over the batch: each prompt has its own "
                     "answers, so its own direction, [batch, d_model]"),
        }, hint="model.W_U[:, answer_tokens[:, 0]] is [d_model, batch]: the right answers' columns")


# ============================================================================ exercise 15
def check_direct_logit_diff(learner_fn: object) -> CheckResult:
    """Check exercise 15 on the residual stream after the last block of the three models."""
    with torch.no_grad():
        return check_function(learner_fn, direct_logit_diff, cases.direct_cases(), name="direct_logit_diff",
                              atol=1e-3, rtol=1e-4, known_mistakes={
            "cross_batch": (direct_mistake("cross_batch"), f"your result is [batch, batch] ({CROSS_BATCH}, x @ "
                            "directions.T): each prompt's residual stream read along every prompt's direction. Read "
                            "each row along its own direction, (x * direction).sum(-1)"),
            "no_ln": (direct_mistake("no_ln"), "apply the final LayerNorm first: the unembedding reads "
                      "model.ln_final(x), not the raw residual stream"),
            "no_bias": (direct_mistake("no_bias"), "add the unembedding's bias: logits = ln_final(x) @ W_U + b_U, so "
                        "the difference gains b_U[right] - b_U[wrong]"),
            "first_position": (direct_mistake("first_position"), "you read position 0: the next token is predicted "
                               "at the last position, final_resid[:, -1]"),
            "flipped": (direct_mistake("flipped"), "the sign is flipped: right minus wrong"),
        }, hint="x = model.ln_final(final_resid[:, -1]); (x * logit_diff_direction(model, answer_tokens)).sum(-1) "
                "+ model.b_U[right] - model.b_U[wrong]")


# ============================================================================ exercises 16 and 17
def _effect_mistakes(direction: Literal["denoise", "noise"]) -> dict[str, tuple[Any, str]]:
    other, run = ("noising", "the clean tokens with the heads' corrupted outputs") if direction == "denoise" else (
        "denoising", "the corrupted tokens with the heads' clean outputs")
    mine = "denoising runs the corrupted tokens with the heads' clean outputs" if direction == "denoise" else (
        "noising runs the clean tokens with the heads' corrupted outputs")
    formula = ("(patched - corrupted) / (clean - corrupted)" if direction == "denoise"
               else "(clean - patched) / (clean - corrupted)")
    mistakes = {
        "swapped": (effect_mistake(direction, "swapped"), f"you ran it the {other} way round ({run}): {mine}"),
        "unnormalized": (effect_mistake(direction, "unnormalized"), "divide by clean - corrupted: the effect is a "
                         f"share of the logit difference, {formula}"),
        "sign": (effect_mistake(direction, "sign"), f"the sign is flipped: {formula}"),
        "raw": (effect_mistake(direction, "raw"), "you returned the patched run's logit difference: return the share, "
                f"{formula}"),
        "late_binding": (effect_mistake(direction, "late_binding"), "every hook patched the last head of the "
                         f"list: {LATE_BINDING}"),
    }
    if direction == "noise":
        mistakes["kept"] = (effect_mistake("noise", "kept"), "you returned the share the clean run keeps, (patched - "
                            "corrupted) / (clean - corrupted): noising measures the share destroyed, "
                            "(clean - patched) / (clean - corrupted)")
    return mistakes


@single_threaded
def check_denoising_effect(learner_fn: object) -> CheckResult:
    """Check exercise 16 on one to three heads of the three models, and on no head at all."""
    def check(fn: object) -> CheckResult:
        with torch.no_grad():
            return check_function(fn, denoising_effect, cases.effect_cases(), name="denoising_effect", atol=1e-4,
                                  rtol=1e-3, known_mistakes=_effect_mistakes("denoise"),
                                  hint="cache the clean run; run the corrupted tokens with the heads' hook_z from it; "
                                       "(patched - corrupted) / (clean - corrupted) of lesson3.logit_diff")
    return _late_binding_named(learner_fn, "denoising_effect", check, _effect_mistakes("denoise"))


@single_threaded
def check_noising_effect(learner_fn: object) -> CheckResult:
    """Check exercise 17 on one to three heads of the three models, and on no head at all."""
    def check(fn: object) -> CheckResult:
        with torch.no_grad():
            return check_function(fn, noising_effect, cases.effect_cases(), name="noising_effect", atol=1e-4,
                                  rtol=1e-3, known_mistakes=_effect_mistakes("noise"),
                                  hint="cache the corrupted run; run the clean tokens with the heads' hook_z from it; "
                                       "(clean - patched) / (clean - corrupted) of lesson3.logit_diff")
    return _late_binding_named(learner_fn, "noising_effect", check, _effect_mistakes("noise"))


# ============================================================================ exercise 18
CARRY_ALL = ("when no word goes back to the source, the swap carries all the words: return len(sides), not None "
             "(None is the index of a word that never comes)")


def check_swap_carry_length(learner_fn: object) -> CheckResult:
    """Check exercise 18 on nine continuations: reverting, carrying to the end, wandering, never switched, empty."""
    name = "swap_carry_length"
    result, printed = _quiet(lambda: check_function(learner_fn, swap_carry_length, cases.carry_cases(), name=name,
                                                    known_mistakes={
        "no_answer_check": (carry_mistake("no_answer_check"), "the swap carries nothing when the answer itself is "
                            "not the target's (sides[0] != 'target'): return 0 there"),
        "other_place_ends": (carry_mistake("other_place_ends"), "another place does not end the carry: only a word on "
                             "the source's side ('source') does"),
        "target_run": (carry_mistake("target_run"), "you counted only the unbroken run of target words: words that "
                       "are not places (None) or other places neither end nor break the carry; only a 'source' word "
                       "ends it"),
        "inclusive": (carry_mistake("inclusive"), "one too many: the word that goes back to the source is not "
                      "carried, so stop before it (its index is the count)"),
    }, hint="0 unless sides[0] == 'target'; else the index of the first 'source' after position 0, or len(sides)"))
    if "returned None" in result.message and callable(learner_fn):
        try:                                      # None only where the swap never reverts: not a missing return
            never_reverts, reverts = learner_fn(["target", None, "target"]), learner_fn(["target", "source"])
        except Exception:  # noqa: BLE001 - the first message stands
            never_reverts, reverts = 0, None
        if never_reverts is None and reverts is not None:
            return report(False, f"{name}: {CARRY_ALL}")
    print(printed, end="")
    return result
