"""The checks of workbook 2's ten exercises: ``check_<name>(fn)`` prints one line and returns a ``CheckResult``.

Each compares the learner's function with :mod:`helpers.lesson2.reference` on the cases of
:mod:`helpers.lesson2.cases`, and names the mistake (built with :mod:`helpers.lesson2.mistakes`) that the
learner's output matches. ``check_run_with_clamp`` also takes the model and the SAE:
``check_run_with_clamp(run_with_clamp, model, sae)``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from sae_lens import SAE
from transformer_lens import HookedTransformer
from transformer_lens.hook_points import HookPoint

from helpers.checks import Case, CheckResult, check_function, report, single_threaded
from helpers.lesson2 import cases
from helpers.lesson2.mistakes import (
    NOT_APPLICABLE,
    TRAIN_MESSAGES,
    best_of,
    clamp_variant,
    logits_with_clamp_at,
    loss_from,
    mean_difference,
    pairwise_auroc,
    sae_forward_variant,
    train_verdict,
)
from helpers.lesson2.reference import (
    best_matching_label,
    clamp_feature,
    count_dead_latents,
    feature_label_auroc,
    l0_norm,
    run_with_clamp,
    sae_forward,
    sae_loss,
    toy_model_forward,
    toy_model_loss,
    train_sae,
)

__all__ = ["check_toy_model_forward", "check_toy_model_loss", "check_sae_forward", "check_sae_loss", "check_l0_norm",
           "check_count_dead_latents", "check_train_sae", "check_clamp_feature", "check_run_with_clamp",
           "check_best_matching_label"]


# ============================================================================ part A
def check_toy_model_forward(learner_fn: object) -> CheckResult:
    """Exercise 1a: the toy model's forward pass ``ReLU(W^T W x + b)``."""
    mistakes = {
        "no-relu": (lambda x, W, b: x @ W.T @ W + b,
                    "you forgot the ReLU on the output: x_hat = ReLU(h @ W + b)"),
        "relu-hidden": (lambda x, W, b: torch.relu(torch.relu(x @ W.T) @ W + b),
                        "you put a ReLU on the hidden layer too: h = W x is linear here; "
                        "only the output goes through a ReLU"),
        "no-bias": (lambda x, W, b: torch.relu(x @ W.T @ W),
                    "you left out the bias b: x_hat = ReLU(h @ W + b)"),
        "transposed": (lambda x, W, b: torch.relu(x @ W @ W.T + b) if W.shape[0] == W.shape[1] else NOT_APPLICABLE,
                       "you multiplied by W where W^T goes: with W of shape [n_hidden, n_features], "
                       "h = x @ W.T, then x_hat = ReLU(h @ W + b)"),
    }
    return check_function(learner_fn, toy_model_forward, cases.toy_forward_cases(), name="toy_model_forward",
                          known_mistakes=mistakes, case_first=True,
                          hint="h = x @ W.T is [batch, n_hidden]; x_hat = ReLU(h @ W + b)")


def check_toy_model_loss(learner_fn: object) -> CheckResult:
    """Exercise 1b: importance-weighted squared error, summed over features and averaged over the batch."""
    mistakes = {
        "importance-squared": (lambda x, x_hat, imp: ((imp * (x - x_hat)) ** 2).sum(-1).mean(),
                               "you multiplied by the importance inside the square, so it counts twice (I²): "
                               "square the error first, then multiply by I"),
        "no-importance": (lambda x, x_hat, imp: ((x - x_hat) ** 2).sum(-1).mean(),
                          "you left out the importance weights: multiply each feature's squared error by I"),
        "mean-over-features": (lambda x, x_hat, imp: (imp * (x - x_hat) ** 2).mean(),
                               "you averaged over the features too: sum over features (dim -1), "
                               "then average over the batch"),
        "sum-over-batch": (lambda x, x_hat, imp: (imp * (x - x_hat) ** 2).sum(),
                           "you summed over the batch: average over examples (the loss should not grow "
                           "with the batch size)"),
    }
    return check_function(learner_fn, toy_model_loss, cases.toy_loss_cases(), name="toy_model_loss",
                          known_mistakes=mistakes, case_first=True,
                          hint="square the error, weight it by importance, sum over features, average over the batch")


def check_sae_forward(learner_fn: object) -> CheckResult:
    """Exercise 2: the SAE forward pass (encode with ReLU, decode with unit-norm decoder rows)."""
    mistakes = {
        "no-relu": (lambda x, p: sae_forward_variant(x, p, relu=False),
                    "feature_acts has negative values: you forgot the ReLU (feature_acts = ReLU(hidden_pre))"),
        "no-norm": (lambda x, p: sae_forward_variant(x, p, norm_dim=None),
                    "x_hat used W_dec as it is: scale each decoder row to length 1 first "
                    "(W_dec / W_dec.norm(dim=-1, keepdim=True))"),
        "norm-dim0": (lambda x, p: sae_forward_variant(x, p, norm_dim=0),
                      "you normalised W_dec along the wrong dimension: each latent's direction is a row "
                      "W_dec[i] of length d_in, so use .norm(dim=-1, keepdim=True)"),
        "no-b_dec-in": (lambda x, p: sae_forward_variant(x, p, b_dec_in=False),
                        "hidden_pre is off: subtract b_dec from x before encoding, "
                        "hidden_pre = (x - b_dec) @ W_enc + b_enc"),
        "no-b_dec-out": (lambda x, p: sae_forward_variant(x, p, b_dec_out=False),
                         "x_hat is off by b_dec: add b_dec back after decoding"),
        "decode-pre": (lambda x, p: sae_forward_variant(x, p, decode="hidden_pre"),
                       "x_hat decodes hidden_pre, the values before the ReLU: decode the latents themselves, "
                       "x_hat = feature_acts @ W_dec_unit + b_dec"),
    }
    return check_function(learner_fn, sae_forward, cases.sae_forward_cases(), name="sae_forward",
                          known_mistakes=mistakes, case_first=True,
                          hint="return (feature_acts, hidden_pre, x_hat) in that order")


def check_sae_loss(learner_fn: object) -> CheckResult:
    """Exercise 3: reconstruction (sum over d_in, mean over batch) plus λ times the L1 of feature_acts."""
    mse = lambda x, x_hat: ((x_hat - x) ** 2).sum(-1).mean()
    l1_of = lambda t: t.abs().sum(-1).mean()
    on_pre = ("you penalised hidden_pre, the values before the ReLU: the ReLU switches negative ones off and "
              "they cost nothing. Put the L1 penalty on feature_acts")
    mistakes = {
        "l1-on-x_hat": (lambda x, f, h, xh, l1: loss_from(mse(x, xh), l1_of(xh), l1),
                        "you put the L1 penalty on x_hat, the reconstruction: it belongs on feature_acts, "
                        "the latent code you want to be sparse"),
        "l1-on-pre-abs": (lambda x, f, h, xh, l1: loss_from(mse(x, xh), l1_of(h), l1), on_pre),
        "l1-on-pre": (lambda x, f, h, xh, l1: loss_from(mse(x, xh), h.sum(-1).mean(), l1), on_pre),
        "l1-mean-over-latents": (lambda x, f, h, xh, l1: loss_from(mse(x, xh), f.abs().mean(), l1),
                                 "you averaged the L1 over the latents: sum over d_sae, then average "
                                 "over the batch"),
        "mse-mean-over-d_in": (lambda x, f, h, xh, l1: loss_from(((xh - x) ** 2).mean(), l1_of(f), l1),
                               "you averaged the squared error over d_in too (F.mse_loss does that by "
                               "default): sum over d_in, then average over the batch, as SAELens does"),
        "sum-over-batch": (lambda x, f, h, xh, l1: loss_from(((xh - x) ** 2).sum(), f.abs().sum(), l1),
                           "you summed over the batch: average over examples instead"),
        "l2": (lambda x, f, h, xh, l1: loss_from(mse(x, xh), (f ** 2).sum(-1).mean(), l1),
               "you squared the activations (an L2 penalty): the L1 norm is the sum of absolute values"),
        "lambda-on-mse": (lambda x, f, h, xh, l1: (l1 * mse(x, xh) + l1_of(f), mse(x, xh), l1_of(f)),
                          "l1_coefficient multiplies the wrong term: loss = reconstruction + "
                          "l1_coefficient * sparsity"),
        "no-lambda": (lambda x, f, h, xh, l1: (mse(x, xh) + l1_of(f), mse(x, xh), l1_of(f)),
                      "the loss ignores l1_coefficient: loss = reconstruction + l1_coefficient * sparsity"),
    }
    return check_function(learner_fn, sae_loss, cases.sae_loss_cases(), name="sae_loss", known_mistakes=mistakes,
                          case_first=True,
                          hint="return (loss, reconstruction, sparsity), each averaged over the batch")


def check_l0_norm(learner_fn: object) -> CheckResult:
    """Exercise 4a: L0 = average count of non-zero latents per example."""
    size = "that is the average size of the activations, not a count: L0 counts latents that are non-zero"
    mistakes = {
        "mean-abs": (lambda f: f.abs().mean().item(), size),
        "l1": (lambda f: f.abs().sum(-1).mean().item(), size),
        "fraction": (lambda f: (f != 0).float().mean().item(),
                     "that is the fraction of latents that fire; L0 is a count per example: sum over "
                     "latents (dim -1), then average over examples"),
        "total": (lambda f: float((f != 0).sum()),
                  "you counted non-zeros over the whole batch: average the per-example counts instead"),
        "wrong-axis": (lambda f: (f != 0).float().sum(0).mean().item(),
                       "your axes are swapped: count over latents (dim -1) for each example, then average "
                       "over examples (dim 0)"),
    }
    return check_function(learner_fn, l0_norm, cases.acts_cases(), name="l0_norm", known_mistakes=mistakes,
                          case_first=True,
                          hint="count the non-zero entries of each row (one row per example), then average the counts")


def check_count_dead_latents(learner_fn: object) -> CheckResult:
    """Exercise 4b: dead latents = latents that are zero on every example."""
    mistakes = {
        "wrong-axis": (lambda f: int((f != 0).any(-1).logical_not().sum()),
                       "you counted examples on which nothing fires: a dead latent is a column (dim -1 "
                       "indexes latents) that is zero down the whole batch — reduce over dim 0"),
        "alive": (lambda f: int((f != 0).any(0).sum()),
                  "you counted the latents that fire at least once (the live ones): count those that never do"),
        "any-zero": (lambda f: int((f == 0).any(0).sum()),
                     "you counted latents that are zero on *some* example: a latent is dead only if it is "
                     "zero on every example"),
        "zero-entries": (lambda f: int((f == 0).sum()),
                         "you counted zero entries: count latents (columns) whose entries are all zero"),
    }
    return check_function(learner_fn, count_dead_latents, cases.acts_cases(), name="count_dead_latents",
                          known_mistakes=mistakes, case_first=True,
                          hint="(feature_acts != 0).any(dim=0) marks the live latents")


@single_threaded
def check_train_sae(learner_fn: object) -> CheckResult:
    """Exercise 5: train the learner's loop on fresh seeded data; it must reach the stated EV and L0."""
    if not callable(learner_fn):
        return check_function(learner_fn, train_sae, [], name="train_sae")
    mistakes: dict[str, tuple[Callable[..., Any], str]] = {
        key: (lambda *a, key=key, **k: key, message) for key, message in TRAIN_MESSAGES.items()}
    return check_function(lambda **kw: train_verdict(learner_fn, **kw), lambda **kw: "ok", cases.TRAIN_CASES,
                          name="train_sae", known_mistakes=mistakes, case_first=True)


# ============================================================================ part B
def check_clamp_feature(learner_fn: object) -> CheckResult:
    """Exercise 6a: set one latent to a value, keep the SAE's error term, at every position."""
    unit = lambda sae, f: sae.W_dec[f] / sae.W_dec[f].norm()
    mistakes = {
        "no-error": (lambda r, s, f, v: clamp_variant(r, s, f, v, error=False),
                     "you returned the SAE's reconstruction alone: it misses part of the residual stream (the "
                     "error term), so the model would see more than one change. Add back resid - sae.decode(latents)"),
        "additive": (lambda r, s, f, v: r + v * s.W_dec[f],
                     "you added value × the latent's direction on top of the residual stream: that steers by "
                     "value, it does not clamp. Clamping sets the latent to value, whatever it was"),
        "additive-unit": (lambda r, s, f, v: r + (v - s.encode(r)[..., f:f + 1]) * unit(s, f),
                          "you moved along the unit-length direction: sae.decode uses W_dec as it is, with "
                          "rows of any length. Edit the latents and decode them"),
        "scale": (lambda r, s, f, v: clamp_variant(r, s, f, v, mode="scale"),
                  "you multiplied the latent by value: set it to value instead (latents[..., feature] = value)"),
        "last": (lambda r, s, f, v: clamp_variant(r, s, f, v, where="last"),
                 "you clamped the last position only: clamp the latent at every position (latents[..., feature])"),
        "unchanged": (lambda r, s, f, v: r.clone(),
                      "the output equals the input: compute the error term from the latents *before* you edit "
                      "them, then decode the edited latents and add the error"),
    }
    with torch.no_grad():
        return check_function(learner_fn, clamp_feature, cases.clamp_cases(), name="clamp_feature",
                              known_mistakes=mistakes, case_first=True,
                              hint="latents = sae.encode(resid); error = resid - sae.decode(latents); set the latent; "
                                   "return sae.decode(latents) + error")


def check_run_with_clamp(learner_fn: object, model: HookedTransformer, sae: SAE) -> CheckResult:
    """Exercise 6b: the clamp must run at the SAE's own hook, on every position, for the whole forward pass."""
    hook = sae.cfg.metadata.hook_name
    layer = int(hook.split(".")[1])
    wrong_hook = ("you clamped at the wrong hook ({}): the SAE reads and writes the residual stream at "
                  f"sae.cfg.metadata.hook_name, '{hook}'")
    at = lambda name: (lambda m, s, t, f, v: logits_with_clamp_at(m, s, t, f, v, name))
    mistakes = {
        "none": (lambda m, s, t, f, v: m(t), "the logits are the unmodified model's: pass the hook to "
                                            "model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook_fn)])"),
        "post": (at(f"blocks.{layer}.hook_resid_post"), wrong_hook.format(f"blocks.{layer}.hook_resid_post, "
                                                                          "after the block")),
        "mid": (at(f"blocks.{layer}.hook_resid_mid"), wrong_hook.format(f"blocks.{layer}.hook_resid_mid, "
                                                                        "inside the block")),
        "earlier": (at(f"blocks.{max(layer - 1, 0)}.hook_resid_pre"),
                    wrong_hook.format(f"blocks.{max(layer - 1, 0)}.hook_resid_pre, a layer too early")),
        "no-error": (lambda m, s, t, f, v: m.run_with_hooks(t, fwd_hooks=[(hook, lambda r, hook: clamp_variant(
                        r, s, f, v, error=False))]),
                     "your hook returns the SAE's reconstruction alone, without its error term: the model then "
                     "loses everything the SAE misses. Call clamp_feature(resid, sae, feature, value) in the hook"),
        "last": (lambda m, s, t, f, v: m.run_with_hooks(t, fwd_hooks=[(hook, lambda r, hook: torch.cat(
                    [r[:, :-1], clamp_feature(r, s, f, v)[:, -1:]], dim=1))]),
                 "you clamped the last position only: the clamp applies at every position"),
    }
    all_cases = cases.run_with_clamp_cases(model, sae)
    with torch.no_grad():
        problem = _hook_problem(learner_fn, model, all_cases[0]) if callable(learner_fn) else None
        if problem:
            return report(False, f"run_with_clamp: on case '{all_cases[0].label}': {problem}")
        return check_function(learner_fn, run_with_clamp, all_cases, name="run_with_clamp",
                              known_mistakes=mistakes, case_first=True, atol=1e-3, rtol=1e-3)


def _hook_problem(learner_fn: Callable[..., Any], model: HookedTransformer, case: Case) -> str | None:
    """A mistake in how the learner's hook is written, seen by watching ``model.add_hook`` during one run (None:
    none seen; the comparison with the reference then judges the logits).

    Three mistakes the logits cannot name: a hook that returns nothing (TransformerLens then keeps the
    activation, so the logits are the clean model's, as if no hook were attached), a ``fwd_hooks`` pair in the
    wrong order (TransformerLens then calls the hook as a filter on hook names and the hook raises), and a hook
    that takes one argument (TransformerLens passes ``hook=`` too)."""
    seen = {"swapped": False, "returned_none": False}
    add_to_point = HookPoint.add_hook

    def watched_add_to_point(point: HookPoint, hook: Any, *args: Any, **kwargs: Any) -> Any:
        def watched(activation: Any, *a: Any, **k: Any) -> Any:
            result = hook(activation, *a, **k)
            seen["returned_none"] |= result is None
            return result
        return add_to_point(point, watched if callable(hook) else hook, *args, **kwargs)

    def watching(method: Callable[..., Any]) -> Callable[..., Any]:
        def watched(name: Any, hook: Any, *args: Any, **kwargs: Any) -> Any:
            seen["swapped"] |= callable(name) and isinstance(hook, str)
            return method(name, hook, *args, **kwargs)
        return watched

    hooked_before = any(hp.fwd_hooks for hp in model.hook_dict.values())
    HookPoint.add_hook = watched_add_to_point  # type: ignore[method-assign]
    model.add_hook = watching(model.add_hook)  # type: ignore[method-assign]
    model._enable_hook = watching(model._enable_hook)  # type: ignore[method-assign]
    try:
        learner_fn(*case.args, **case.kwargs)
        error: Exception | None = None
    except Exception as raised:  # noqa: BLE001 - the check proper reports any other error in one line
        error = raised
    finally:
        HookPoint.add_hook = add_to_point  # type: ignore[method-assign]
        del model.add_hook, model._enable_hook
        if not hooked_before:
            model.reset_hooks(including_permanent=False)   # the check proper reports hooks left attached
    if isinstance(error, TypeError) and seen["swapped"]:
        return ("the pair in fwd_hooks is in the wrong order: the tuple is (hook_name, hook_fn), "
                "fwd_hooks=[(sae.cfg.metadata.hook_name, hook_fn)]")
    if isinstance(error, TypeError) and "unexpected keyword argument 'hook'" in str(error):
        return ("a hook receives (activation, hook): TransformerLens calls hook_fn(activation, hook=...), so "
                "your hook needs a second parameter named hook, even if it does not use it")
    if error is None and seen["returned_none"]:
        return ("your hook must return the new activation: a hook that returns nothing leaves the residual "
                "stream as it was. Return clamp_feature(resid, sae, feature, value)")
    return None


def check_best_matching_label(learner_fn: object) -> CheckResult:
    """Exercise 7: AUROC of every feature for every label (ties count one half), best label per feature."""
    mistakes = {
        "flipped": (lambda a, y: best_of(pairwise_auroc(a, y, flip=True)),
                    "the sign is flipped: you computed the chance that a token *without* the label scores higher. "
                    "AUROC compares the label's tokens (positives) against the others"),
        "argmin": (lambda a, y: best_of(feature_label_auroc(a, y), lowest=True),
                   "you picked the label with the *lowest* AUROC: the best match has the highest"),
        "ties-zero": (lambda a, y: best_of(pairwise_auroc(a, y, tie=0.0)),
                      "ties count as losses in your AUROC: most activations are exactly 0, so ties are everywhere; "
                      "a tie counts one half"),
        "ties-one": (lambda a, y: best_of(pairwise_auroc(a, y, tie=1.0)),
                     "ties count as wins in your AUROC (>=): a tie counts one half"),
        "transposed": (lambda a, y: best_of(feature_label_auroc(a, y).T),
                       "you found the best feature for each label: the task is the best label for each feature"),
        "swapped": (lambda a, y: feature_label_auroc(a, y).max(-1),
                    "you returned (best_auroc, best_label): return (best_label, best_auroc), in that order"),
        "mean-difference": (mean_difference,
                            "that is the difference of mean activations, not the AUROC (a probability between 0 "
                            "and 1)"),
    }
    return check_function(learner_fn, best_matching_label, cases.match_cases(), name="best_matching_label",
                          known_mistakes=mistakes, case_first=True, atol=1e-5,
                          hint="for one feature and one label: pos = acts[labels[:, j], f], "
                               "neg = acts[~labels[:, j], f]; "
                               "AUROC = mean of (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])")
