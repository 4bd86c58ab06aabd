"""The checks of workbook 3's ten exercises: ``check_<name>(learner_fn)`` prints one line and returns a ``CheckResult``.

Each compares the learner's function with :mod:`helpers.lesson3.reference` on the cases of
:mod:`helpers.lesson3.cases`, and names the mistake of :mod:`helpers.lesson3.mistakes` that the
learner's output matches. Part one's checks run on one thread (:func:`helpers.checks.single_threaded`).
"""
from __future__ import annotations

import contextlib
import functools
import io
import re
from typing import Any

import torch

from helpers.checks import CheckResult, check_function, copy_inputs, report, single_threaded
from helpers.lesson3 import cases
from helpers.lesson3.graphs import swap_success
from helpers.lesson3.mistakes import (
    ablation_mistake,
    attribution_mistake,
    corrupted_run_metric,
    cross_batch_diff,
    edge_mistake,
    faithfulness_mistake,
    head_mistake,
    influence_mistake,
    last_prompt_diff,
    logit_attribution_mistake,
    per_prompt_diff,
    swap_mistake,
    sweep_mistake,
    switches_off,
)
from helpers.lesson3.reference import (
    attribution_patch_heads,
    circuit_faithfulness,
    feature_edge,
    feature_logit_attribution,
    logit_diff,
    node_influence,
    patch_head_output,
    patch_residual_by_layer_pos,
    run_with_mean_ablation,
    swap_interventions,
)

__all__ = ["check_logit_diff", "check_patch_residual_by_layer_pos", "check_patch_head_output",
           "check_run_with_mean_ablation", "check_circuit_faithfulness", "check_attribution_patch_heads",
           "check_feature_logit_attribution", "check_feature_edge", "check_node_influence", "check_swap_interventions"]

POSITION_NOT_HEAD = ("you indexed a position, not a head: hook_z is [batch, pos, head_index, d_head], so the head "
                     "goes third, z[:, :, head]")
LATER_HOOK = ("you patched a later point of the layer (hook_resid_mid or hook_resid_post; the two give almost the "
              "same numbers here): patch the layer's input, blocks.L.hook_resid_pre, with clean_cache['resid_pre', L]")
ABS_MESSAGE = "you took absolute values: keep the sign, a head can push the metric either way"


# ============================================================================ part one
@single_threaded
def check_logit_diff(learner_fn: object) -> CheckResult:
    """Check exercise 1 on real and random logits."""
    return check_function(learner_fn, logit_diff, cases.logit_diff_cases(), name="logit_diff", known_mistakes={
        "sign": (lambda lg, ans: -logit_diff(lg, ans), "the sign is flipped: right answer (column 0) minus "
                                                       "wrong answer (column 1)"),
        "no_mean": (lambda lg, ans: per_prompt_diff(lg, ans), "you returned one number per prompt: take the "
                                                              "mean over the batch"),
        "sum": (lambda lg, ans: per_prompt_diff(lg, ans).sum(), "you summed over the batch: take the mean, so the "
                                                                "number does not grow with the batch size"),
        "all_positions": (lambda lg, ans: per_prompt_diff(lg, ans, None).mean(), "you averaged over every "
                          "position: the prediction of the next word is at the last position, logits[:, -1]"),
        "first_position": (lambda lg, ans: per_prompt_diff(lg, ans, 0).mean(), "you read position 0 (the BOS "
                           "token): the answer is predicted at the last position, logits[:, -1]"),
        "probs": (lambda lg, ans: per_prompt_diff(lg.softmax(-1), ans).mean(), "you compared probabilities: "
                  "subtract the logits themselves (or log-probabilities, which give the same difference)"),
        "last_prompt": (last_prompt_diff, "logits[-1] is the last *prompt* ([pos, d_vocab]), not the last "
                        "position: the next word is predicted at logits[:, -1], which is [batch, d_vocab]"),
        "cross_batch": (cross_batch_diff, "final[:, answer_tokens[:, 0]] reads every prompt's answer on every "
                        "prompt (a [batch, batch] table), so your mean mixes prompts: pick one entry per row, "
                        "final[torch.arange(batch), answer_tokens[:, 0]], or final.gather(-1, answer_tokens)"),
    }, hint="logits[:, -1] is [batch, d_vocab]; in row i pick columns answer_tokens[i, 0] and answer_tokens[i, 1] "
            "with final.gather(-1, answer_tokens) or final[torch.arange(batch), answer_tokens[:, 0]], subtract, "
            "then .mean()")


@single_threaded
def check_patch_residual_by_layer_pos(learner_fn: object) -> CheckResult:
    """Check exercise 2 on a tiny random model, then on an IOI batch of the 4-layer model."""
    with torch.no_grad():
        return check_function(learner_fn, patch_residual_by_layer_pos, cases.sweep_cases(),
                              name="patch_residual_by_layer_pos", atol=1e-3, rule_out_on_first_case=True,
                              known_mistakes={
            "resid_post": (sweep_mistake("resid_post"), LATER_HOOK),
            "resid_mid": (sweep_mistake("resid_mid"), LATER_HOOK),
            "upto": (sweep_mistake(upto=True), "you patched every position up to p: patch position p only, "
                     "resid[:, p] = clean[:, p]"),
            "all": (sweep_mistake(all_positions=True), "you patched every position at once: patch position p "
                    "only, resid[:, p] = clean[:, p]"),
        }, hint="for each layer L and position p: a hook on get_act_name('resid_pre', L) that sets "
                "resid[:, p] = clean_cache['resid_pre', L][:, p]; then metric(model.run_with_hooks(...)).item()")


@single_threaded
def check_patch_head_output(learner_fn: object) -> CheckResult:
    """Check exercise 3 on five heads of two models."""
    with torch.no_grad():
        return check_function(learner_fn, patch_head_output, cases.head_cases(), name="patch_head_output", atol=1e-3,
                              known_mistakes={
            "all_heads": (head_mistake("all_heads"), "you patched every head of the layer: patch only "
                          "z[:, :, head]"),
            "last": (head_mistake("last"), "you patched the last position only: patch the head at every "
                     "position, z[:, :, head]"),
            "position": (head_mistake("position"), POSITION_NOT_HEAD),
            "unchanged": (corrupted_run_metric, "your hook changed nothing: the metric is the unpatched corrupted "
                          "run's. A hook that rebinds z (z = z.clone(); z[...] = ...) and returns nothing edits a "
                          "copy: modify z in place, or return the new tensor"),
        }, hint="a hook on get_act_name('z', layer) that sets z[:, :, head] = clean_cache['z', layer][:, :, head]")


HEAD_AS_POSITION_IN_MEANS = ("means[layer] is [pos, head_index, d_head]: the head is its second index, so the "
                            "head's mean is means[layer][:, head] ([pos, d_head]), not means[layer][head]")


def _shape_errors_explained(learner_fn: Any, check: Any) -> CheckResult:
    """Run ``check(fn)`` on a wrapper of ``learner_fn`` that records a shape mismatch the learner raises; if
    one ends the check, report it in full with what it means (``check_function`` shortens errors to a line).

    Exercise 4's ``means[layer][head]`` (a position, not a head) fails to broadcast into ``z[:, :, head]``;
    the error is recognised by running that mistake on the same inputs and comparing the messages."""
    if not callable(learner_fn):
        return check(learner_fn)
    seen: dict[str, Any] = {}

    @functools.wraps(learner_fn)
    def watched(*args: Any, **kwargs: Any) -> Any:
        copies = (copy_inputs(args), copy_inputs(kwargs))
        try:
            return learner_fn(*args, **kwargs)
        except RuntimeError as error:
            if "size" in str(error) and ("match" in str(error) or "shape" in str(error)):
                seen.update(error=error, inputs=copies)
            raise
    with contextlib.redirect_stdout(io.StringIO()):
        result = check(watched)
    if result.passed or "error" not in seen or "raised RuntimeError" not in result.message:
        print(result.message)
        return result
    error, (args, kwargs) = seen["error"], seen["inputs"]
    try:
        ablation_mistake("means_head_first")(*args, **kwargs)
        same = False
    except RuntimeError as mistake_error:
        same = str(mistake_error) == str(error)
    named = re.search(r"case '[^']*'", result.message)
    case = f" on {named.group(0)}" if named else ""
    full = " ".join(str(error).split())
    why = (HEAD_AS_POSITION_IN_MEANS if same else "hook_z is [batch, pos, head_index, d_head] and means[layer] "
           "is [pos, head_index, d_head]: check what your indexing leaves of each")
    return report(False, f"run_with_mean_ablation: the shapes do not match{case}: {why}. "
                         f"(RuntimeError: {full})")


@single_threaded
def check_run_with_mean_ablation(learner_fn: object) -> CheckResult:
    """Check exercise 4 on both models, one to three heads, and no heads."""
    return _shape_errors_explained(learner_fn, _check_run_with_mean_ablation)


def _check_run_with_mean_ablation(learner_fn: object) -> CheckResult:
    with torch.no_grad():
        return check_function(learner_fn, run_with_mean_ablation, cases.ablation_cases(), name="run_with_mean_ablation",
                              atol=1e-3, known_mistakes={
            "zero": (ablation_mistake("zero"), "you zero-ablated: replace each head with its mean output, "
                     "means[layer][:, head] (zero is far from anything the head ever outputs)"),
            "pos_mean": (ablation_mistake("pos_mean"), "you also averaged over positions: the mean is per "
                         "position, so keep means[layer][:, head] as it is ([pos, d_head])"),
            "position": (ablation_mistake("position"), POSITION_NOT_HEAD),
            "late_binding": (ablation_mistake("late_binding"), "every hook ablated the last head of the list: a "
                             "function defined in a loop reads layer and head when it runs, after the loop has "
                             "ended (late binding); freeze them with default arguments, def hook(z, hook, "
                             "layer=layer, head=head), or build each hook in a helper function"),
        }, hint="for each (layer, head): a hook on get_act_name('z', layer) that sets "
                "z[:, :, head] = means[layer][:, head]; return model.run_with_hooks(tokens, fwd_hooks=hooks)")


@single_threaded
def check_circuit_faithfulness(learner_fn: object) -> CheckResult:
    """Check exercise 5 on two circuits, two templates, and the whole model."""
    with torch.no_grad():
        return check_function(learner_fn, circuit_faithfulness, cases.faithfulness_cases(), name="circuit_faithfulness",
                              atol=2e-3, known_mistakes={
            "ablate_circuit": (faithfulness_mistake("ablate_circuit"), "you ablated the circuit's heads: ablate "
                               "every head *outside* the circuit and keep the circuit running"),
            "raw": (faithfulness_mistake("raw"), "you returned the ablated run's logit difference: divide it by "
                    "the clean run's, so 1 means the circuit keeps all of it"),
            "inverted": (faithfulness_mistake("inverted"), "the ratio is upside down: ablated logit difference "
                         "divided by the clean one"),
            "lost": (faithfulness_mistake("lost"), "you returned the share that was lost: return the share kept, "
                     "ablated / clean"),
        }, hint="outside = every (layer, head) not in circuit; faithfulness = logit_diff(run_with_mean_ablation("
                "model, tokens, outside, means), answers) / logit_diff(model(tokens), answers)")


@single_threaded
def check_attribution_patch_heads(learner_fn: object) -> CheckResult:
    """Check exercise 6 on two IOI batches of the 4-layer model and a tiny random model."""
    terms: dict = {}                                    # shared by the mistakes built from the same terms
    return check_function(learner_fn, attribution_patch_heads, cases.attribution_cases(),
                          name="attribution_patch_heads", atol=1e-3, known_mistakes={
        "flipped": (attribution_mistake("flipped", terms), "the sign is flipped: the change is (clean - corrupted) "
                    "times the gradient"),
        "clean_grad": (attribution_mistake("clean_grad"), "you took the gradient on the clean run: take it on the "
                       "corrupted run, the run you are patching into"),
        "abs": (attribution_mistake("abs", terms), ABS_MESSAGE),
        "abs_sum": (attribution_mistake("abs_sum", terms), ABS_MESSAGE),
        "no_delta": (attribution_mistake("no_delta", terms), "you summed the gradient alone: multiply it by the "
                     "change the patch makes, clean_z - corrupted_z, before summing"),
    }, hint="cache clean z; run the corrupted tokens with forward hooks saving z and backward hooks saving its "
            "gradient; call metric(logits).backward(); sum (clean_z - corrupted_z) * grad over batch, pos, d_head")


# ============================================================================ part two
def check_feature_logit_attribution(learner_fn: object) -> CheckResult:
    """Check exercise 7 on features of two graphs and on random tensors."""
    return check_function(learner_fn, feature_logit_attribution, cases.logit_cases(), name="feature_logit_attribution",
                          atol=1e-4, rtol=1e-3, known_mistakes={
        "no_center": (logit_attribution_mistake(center=False), "the final LayerNorm subtracts the mean of what the "
                      "feature wrote before dividing by the scale: centre it first"),
        "no_scale": (logit_attribution_mistake(scale=False), "divide by the frozen scale of the final LayerNorm "
                     "(final_scale)"),
        "no_demean": (logit_attribution_mistake(demean=False), "circuit-tracer's logit node is the demeaned logit: "
                      "use W_U[:, token] - W_U.mean(dim=1) as the direction"),
        "no_activation": (lambda a, v, s, W, t: feature_logit_attribution(1.0, v, s, W, t),
                          "multiply the decoder row by the feature's activation: the graph's edge is what this "
                          "activation of the feature contributes"),
    }, hint="x = activation * decoder_vector; centre x, divide by final_scale, dot with W_U[:, token] - "
            "W_U.mean(dim=1)")


def check_feature_edge(learner_fn: object) -> CheckResult:
    """Check exercise 8 on feature pairs of two graphs (same and different positions) and random tensors."""
    return check_function(learner_fn, feature_edge, cases.edge_cases(), name="feature_edge", atol=1e-5, rtol=1e-3,
                          known_mistakes={
        "no_heads": (edge_mistake(heads=False), "you kept only the residual path: add the path through each head "
                     "of the attention layer in between (pattern[h, target_pos, source_pos] times the OV circuit)"),
        "no_residual": (edge_mistake(residual=False), "you kept only the heads: at the same position the source "
                        "also reaches the target straight along the residual stream (source_vector @ target_encoder)"),
        "transposed": (edge_mistake(transpose=True), "the pattern is [head, query, key]: the target's position is "
                       "the query and the source's the key, pattern[:, target_pos, source_pos]"),
        "no_scale": (edge_mistake(scale=False), "the heads read LayerNorm's output: divide by ln1_scale[source_pos]"),
        "no_center": (edge_mistake(center=False), "LayerNorm also centres its input: subtract the source vector's "
                      "mean before dividing by the scale"),
    }, hint="residual path (if same position) + sum over heads of pattern[h, tp, sp] * "
            "((v - v.mean()) / ln1_scale[sp]) @ W_V[h] @ W_O[h] @ target_encoder")


def check_node_influence(learner_fn: object) -> CheckResult:
    """Check exercise 9 against the reference (equal to circuit-tracer's ``compute_node_influence``, which a test
    checks)."""
    return check_function(learner_fn, node_influence, cases.influence_cases(), name="node_influence", atol=1e-5,
                          rtol=1e-3, known_mistakes={
        "signed": (influence_mistake(absolute=False), "use absolute edge weights: a strong negative edge is as "
                   "influential as a strong positive one"),
        "raw": (influence_mistake(normalize=False), "normalise each row (each target's inputs) to sum to 1 before "
                "summing paths, so influence is a share"),
        "direct_only": (influence_mistake(depth=1), "you kept only direct edges (w A): sum over paths of every "
                        "length, w A + w A^2 + ..."),
        "with_logits": (influence_mistake(include_logits=True), "start the sum at w A, not at w: the logits' own "
                        "weight is not influence of another node"),
        "columns": (influence_mistake(columns=True), "normalise rows (a target's inputs, adjacency[target, :]), not "
                    "columns"),
        "no_abs": (influence_mistake(no_abs=True), "take adjacency.abs() before you normalise: a row's signed weights "
                   "can sum to almost 0 (or below 0, clamped to 1e-10), and dividing by that blows the shares up"),
    }, hint="A = adjacency.abs(), divide each row by its sum; then add up w @ A, w @ A @ A, ... until it is zero")


def check_swap_interventions(learner_fn: object) -> CheckResult:
    """Check exercise 10: on 12 landmark and city pairs (not the lesson's), the answer must become the target
    city about as often as the reference recipe makes it (at most one landmark fewer), and the interventions
    must switch the source city's active features off (the push alone often moves the answer too)."""
    name = "swap_interventions"
    if not callable(learner_fn):
        return report(False, f"{name}: expected a function")
    replacement, labels = cases.replacement_model(), cases.feature_labels()
    pairs = cases.swap_pairs()
    handed = []                                  # (source city, activations, interventions) of each prompt

    def recorded(labels, activations, source_city, target_city):
        interventions = learner_fn(labels, activations, source_city, target_city)
        handed.append((source_city, activations, interventions))
        return interventions
    try:
        got = swap_success(recorded, replacement, labels, pairs)
    except NotImplementedError:
        return report(False, f"{name}: not implemented yet — replace the `raise NotImplementedError` line with your "
                             "code.")
    except Exception as error:  # noqa: BLE001
        return report(False, f"{name} raised {type(error).__name__}: {str(error)[:160]}")
    reference = sum(o.answer == o.target for o in swap_success(swap_interventions, replacement, labels, pairs))
    hits = sum(o.answer == o.target for o in got)
    needed = max(reference - 1, len(pairs) // 3)
    if hits >= needed:
        kept_on = next((pair for pair, (source, activations, interventions) in zip(pairs, handed)
                        if not switches_off(labels, activations, source, interventions)), None)
        if kept_on is not None:
            landmark, city, target = kept_on
            return report(False, f"{name}: you only turned the target city's features on: switch the source "
                                  f"city's features off as well, setting every active feature labelled with the "
                                  f"source city to 0 at the last position — (layer, position, feature, 0.0) — "
                                  f"or the model holds both cities at once (the answer moved on {hits}/{len(pairs)} "
                                  f"landmarks here, but the recipe asks for both halves). First prompt: {landmark} "
                                  f"({city} -> {target}) kept its {city} features on")
        return report(True, f"{name}: the answer became the injected city on {hits}/{len(pairs)} landmarks "
                             f"(the reference recipe: {reference}/{len(pairs)})")
    stayed = sum(o.answer == o.city for o in got)
    miss = next(i for i, o in enumerate(got) if o.answer != o.target)
    first_miss = f"{got[miss].landmark}: {got[miss].city} -> {got[miss].target}, answered {got[miss].answer!r}"
    source, activations, interventions = handed[miss]
    why = swap_mistake(labels, activations, source, got[miss].target, interventions)
    if why is None and (stayed > len(pairs) // 2 or got[miss].answer == got[miss].city):
        why = ("the model still answers the landmark's own city" + (" on most prompts" if stayed > len(pairs) // 2
               else " on the first miss") + ": set its city's features to 0 at the last position, and give the "
               "target city's features a large positive value there (20 times labels.score)")
    elif why is None:
        why = ("the answer moved away from the landmark's city but not to the target city: inject the target "
               "city's features at the last position, at 20 times their typical activation (labels.score)")
    return report(False, f"{name}: the answer became the injected city on only {hits}/{len(pairs)} landmarks "
                         f"(needed {needed}); {why}. First miss: {first_miss}")
