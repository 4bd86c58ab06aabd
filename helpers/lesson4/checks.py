"""The checks of workbook 4's six exercises: ``check_<name>(fn)`` prints one line and returns a ``CheckResult``.

Each compares the learner's function with :mod:`helpers.lesson4.reference` on the cases of
:mod:`helpers.lesson4.cases`, and names the mistake (built with :mod:`helpers.lesson4.mistakes`) that the
learner's output matches. Every check runs on one thread and leaves the learner's random state alone.

Workbook 4b's checks (exercises 6 to 12) live in :mod:`helpers.lesson4.checks_steering`, imported here so that
every check of lesson 4 is ``helpers.lesson4.checks.check_<name>``.
"""
from __future__ import annotations

import functools

import numpy as np
from sklearn.metrics import roc_auc_score

from helpers.checks import CheckResult, check_function, single_threaded
from helpers.lesson4 import cases
from helpers.lesson4.mistakes import edited_logits, resid_variant, selectivity_variant
from helpers.lesson4.reference import (
    false_statement_auroc,
    fit_probe,
    last_token_resid,
    logits_without_direction,
    probe_accuracy,
    project_out,
    selectivity,
)

__all__ = ["check_last_token_resid", "check_probe_accuracy", "check_selectivity", "check_project_out",
           "check_logits_without_direction", "check_false_statement_auroc"]


@single_threaded
def check_last_token_resid(learner_fn: object) -> CheckResult:
    """Exercise 1: the residual stream at each prompt's last token, embeddings then every block's output."""
    leak = ("the vectors you read have already seen the answer word (' true', ' positive'...): the label "
            "leaked in through the position. Run e.prompt, or read position token_positions(e, ...)['end']")
    runs: dict = {}                                        # the mistakes' forward passes, shared between them
    variant = functools.partial(resid_variant, runs=runs)
    mistakes = {
        "last-padded": (lambda m, ex: variant(m, ex, read="last"),
                        "you read the last position of the padded batch: for every prompt shorter than the "
                        "longest, that is a padding token. Read each prompt's own last token, "
                        "token_positions(e, model.tokenizer)['end']"),
        "text-last": (lambda m, ex: variant(m, ex, text=True, read="last"), leak),
        "text-answer": (lambda m, ex: variant(m, ex, text=True, read="answer"), leak),
        "no-bos": (lambda m, ex: variant(m, ex, read="no-bos"),
                   "off by one position: you read the token before the last one. The positions from "
                   "token_positions already count the BOS token; do not subtract 1"),
        "post-only": (lambda m, ex: variant(m, ex, entries="post"),
                      "entry 0 is missing: start with the embeddings, blocks.0.hook_resid_pre, then every "
                      "block's output, blocks.{l}.hook_resid_post"),
        "pre-only": (lambda m, ex: variant(m, ex, entries="pre"),
                     "the last block's output is missing: after the embeddings (blocks.0.hook_resid_pre) take "
                     "blocks.{l}.hook_resid_post for every layer l, the last one included"),
    }
    return check_function(learner_fn, last_token_resid, cases.resid_cases(), name="last_token_resid",
                          known_mistakes=mistakes, atol=1e-4, rtol=1e-4,
                          hint="stack [cache['blocks.0.hook_resid_pre'], cache['blocks.0.hook_resid_post'], ...] "
                               "read at rows arange(n) and each prompt's 'end' position")


@single_threaded
def check_probe_accuracy(learner_fn: object) -> CheckResult:
    """Exercise 2: fit on the training split, score on the held-out split."""
    mistakes = {
        "same-split": (lambda Xa, ya, Xb, yb: float(fit_probe(Xa, ya).score(Xa, ya)),
                       "you scored the probe on the examples it was trained on: that measures how well it "
                       "memorised them, not whether the layer encodes the attribute. Score on X_test, y_test"),
        "fit-test": (lambda Xa, ya, Xb, yb: float(fit_probe(Xb, yb).score(Xb, yb)),
                     "you trained and scored on the held-out split: train on X_train, y_train"),
        "fit-all": (lambda Xa, ya, Xb, yb: float(fit_probe(np.concatenate([Xa, Xb]), np.concatenate([ya, yb]))
                                                 .score(Xb, yb)),
                    "the probe saw the held-out examples during training: fit on the training split only"),
        "percent": (lambda Xa, ya, Xb, yb: 100 * probe_accuracy(Xa, ya, Xb, yb),
                    "return a fraction between 0 and 1, not a percentage"),
        "error": (lambda Xa, ya, Xb, yb: 1 - probe_accuracy(Xa, ya, Xb, yb),
                  "that is the error rate: return the accuracy, probe.score(X_test, y_test)"),
    }
    return check_function(learner_fn, probe_accuracy, cases.probe_cases(), name="probe_accuracy",
                          known_mistakes=mistakes, atol=1e-9, rtol=0.0,
                          hint="LogisticRegression(max_iter=1000).fit(X_train, y_train).score(X_test, y_test)")


@single_threaded
def check_selectivity(learner_fn: object) -> CheckResult:
    """Exercise 3: task accuracy, control-task accuracy, and their difference."""
    mistakes = {
        "separate": (lambda *a, **k: selectivity_variant(*a, **k, control="separate"),
                     "a type must keep its random label in both splits: call control_labels once, on the "
                     "types of both splits together (types_train + types_test), then cut the result in two"),
        "per-example": (lambda *a, **k: selectivity_variant(*a, **k, control="per-example"),
                        "you gave every example its own random label: the control task gives every *type* "
                        "one random label (control_labels), so a probe can learn it by memorising types"),
        "control-on-train": (lambda *a, **k: selectivity_variant(*a, **k, score_on="train"),
                             "you scored the control probe on its training examples: score both probes on the "
                             "held-out split"),
        "flipped": (lambda *a, **k: selectivity_variant(*a, **k, flip=True),
                    "the sign of the selectivity is flipped: it is task accuracy minus control accuracy"),
        "types-as-classes": (lambda *a, **k: selectivity_variant(*a, **k, classes_of="types"),
                             "n_classes is the number of label classes, not of types: the control task gives "
                             "each type one of the task's classes, max(y_train.max(), y_test.max()) + 1 of them"),
        "min-classes": (lambda *a, **k: selectivity_variant(*a, **k, count=min),
                        "you counted the classes with min: a split can miss a class (here the held-out one has "
                        "no class 2), so the task has max(y_train.max(), y_test.max()) + 1 classes"),
    }
    return check_function(learner_fn, selectivity, cases.selectivity_cases(), name="selectivity",
                          known_mistakes=mistakes, atol=1e-9, rtol=0.0,
                          hint="return (task_accuracy, control_accuracy, task_accuracy - control_accuracy)")


@single_threaded
def check_project_out(learner_fn: object) -> CheckResult:
    """Exercise 4a: ``resid - (resid . u) u`` with ``u`` the unit direction."""
    not_idempotent = ("your projection is not idempotent (projecting twice changes the result again): the "
                      "formula resid - (resid . u) u needs a unit vector u = direction / direction.norm()")
    same_vector = ("you subtracted the same vector from every position: remove each vector's own "
                   "component along the direction, (resid . u) u")
    mistakes = {
        "unnormalised": (lambda r, d: r - (r @ d)[..., None] * d, not_idempotent),
        "half-normalised": (lambda r, d: r - (r @ d)[..., None] * d / d.norm(), not_idempotent),
        "component": (lambda r, d: (r @ (d / d.norm()))[..., None] * (d / d.norm()),
                      "you returned the component along the direction: return what is left, resid minus it"),
        "subtract-direction": (lambda r, d: r - d / d.norm(), same_vector),
        "subtract-raw": (lambda r, d: r - d, same_vector),
        "added": (lambda r, d: r + (r @ (d / d.norm()))[..., None] * (d / d.norm()),
                  "you added the component along the direction instead of subtracting it: resid - (resid . u) u"),
    }
    return check_function(learner_fn, project_out, cases.projection_cases(), name="project_out",
                          known_mistakes=mistakes, atol=1e-5, rtol=1e-4,
                          hint="u = direction / direction.norm(); resid - (resid @ u)[..., None] * u")


@single_threaded
def check_logits_without_direction(learner_fn: object) -> CheckResult:
    """Exercise 4b: a hook on ``blocks.{layer}.hook_resid_post`` that projects the direction out everywhere."""
    mistakes = {
        "resid-pre": (lambda m, t, layer, d: edited_logits(m, t, layer, d, hook_name="hook_resid_pre"),
                      "you edited the block's input (hook_resid_pre): edit its output, "
                      "f'blocks.{layer}.hook_resid_post'"),
        "resid-mid": (lambda m, t, layer, d: edited_logits(m, t, layer, d, hook_name="hook_resid_mid"),
                      "you edited the middle of the block (hook_resid_mid): edit its output, "
                      "f'blocks.{layer}.hook_resid_post'"),
        "last-only": (lambda m, t, layer, d: edited_logits(m, t, layer, d, last_only=True),
                      "you edited only the last position: remove the direction at every position"),
        "unnormalised": (lambda m, t, layer, d: edited_logits(m, t, layer, d, unit=False),
                         "your projection is not idempotent: normalise the direction to unit length first "
                         "(your project_out from exercise 4a does it)"),
        "no-edit": (lambda m, t, layer, d: m(t),
                    "these are the model's ordinary logits: your hook must *return* the edited tensor "
                    "(and be passed in fwd_hooks=[(name, hook)])"),
    }
    return check_function(learner_fn, logits_without_direction, cases.hook_cases(), name="logits_without_direction",
                          known_mistakes=mistakes, atol=1e-3, rtol=1e-4,
                          hint="model.run_with_hooks(tokens, fwd_hooks=[(f'blocks.{layer}.hook_resid_post', hook)]) "
                               "with a hook that returns project_out(resid, direction)")


@single_threaded
def check_false_statement_auroc(learner_fn: object) -> CheckResult:
    """Exercise 5: AUROC with the false statements as positives and P(false) as the score."""
    flipped = ("the sign is flipped (your AUROC is 1 minus the right one): the positives are the *false* "
               "statements (1 - is_true) and the score must rise with the chance of false, predict_proba(X)[:, 0]")
    mistakes = {
        "flipped-labels": (lambda p, X, t: float(roc_auc_score(t, p.predict_proba(X)[:, 0])), flipped),
        "flipped-score": (lambda p, X, t: float(roc_auc_score(1 - t, p.predict_proba(X)[:, 1])), flipped),
        "hard": (lambda p, X, t: float(roc_auc_score(1 - t, 1 - p.predict(X))),
                 "you scored hard 0/1 predictions: an ROC curve needs a graded score, the probability "
                 "predict_proba(X)[:, 0], to sweep the threshold"),
        "accuracy": (lambda p, X, t: float(p.score(X, t)),
                     "that is the probe's accuracy, not the area under the ROC curve (roc_auc_score)"),
    }
    return check_function(learner_fn, false_statement_auroc, cases.auroc_cases(), name="false_statement_auroc",
                          known_mistakes=mistakes, atol=1e-9, rtol=0.0,
                          hint="roc_auc_score(1 - is_true, probe.predict_proba(X)[:, 0])")
