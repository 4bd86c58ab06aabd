"""The checks of workbook 4b's exercises (6 to 12): ``check_<name>(fn)`` prints one line, returns a ``CheckResult``.

Each compares the learner's function with :mod:`helpers.lesson4.reference_steering` on the cases of
:mod:`helpers.lesson4.cases_steering`, and names the mistake (built with :mod:`helpers.lesson4.mistakes_steering`)
that the learner's output matches. Every check runs on one thread and leaves the learner's random state alone.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
import torch

from helpers.checks import CheckResult, check_function, report, single_threaded
from helpers.lesson4 import cases_steering as cases
from helpers.lesson4.mistakes_steering import (
    centred_svd_rows,
    effect_variant,
    smallest_eigenvector,
    steer_variant,
    steered_logits,
    threshold_accuracy,
)
from helpers.lesson4.reference_steering import (
    ccs_loss,
    contrast_pair_differences,
    effect_per_unit_norm,
    first_principal_direction,
    mean_difference_direction,
    mean_difference_probe_predict,
    sign_agnostic_accuracy,
)

__all__ = ["check_mean_difference_direction", "check_mean_difference_probe_predict", "check_steering_hook",
           "check_effect_per_unit_norm", "check_contrast_pair_differences", "check_first_principal_direction",
           "check_sign_agnostic_accuracy", "check_ccs_loss"]


def _class_means(acts, labels):
    one = torch.as_tensor(np.asarray(labels) == 1)
    return acts[one], acts[~one]


def _unit(v, normalise):
    return v / v.norm() if normalise else v


@single_threaded
def check_mean_difference_direction(learner_fn: object) -> CheckResult:
    """Exercise 6: class 1's mean minus class 0's, unit length when ``normalise``."""
    def variant(kind):
        def wrong(acts, labels, normalise=True):
            one, zero = _class_means(acts, labels)
            if kind == "flipped":
                return _unit(zero.mean(0) - one.mean(0), normalise)
            if kind == "raw":
                return one.mean(0) - zero.mean(0)
            if kind == "always-unit":
                return _unit(one.mean(0) - zero.mean(0), True)
            if kind == "axis":
                return _unit(one.mean(1) - zero.mean(1), normalise)
            if kind == "overall":
                return _unit(one.mean(0) - acts.mean(0), normalise)
            index = torch.as_tensor(np.asarray(labels))                       # "index": integer indexing
            return _unit(acts[index].mean(0) - acts[1 - index].mean(0), normalise)
        return wrong

    mistakes = {
        "flipped": (variant("flipped"), "the sign is flipped: subtract class 0's mean from class 1's, "
                                        "mean(class 1) - mean(class 0), so that the direction points towards class 1"),
        "raw": (variant("raw"), "not unit length: with normalise=True, divide the difference by its norm"),
        "always-unit": (variant("always-unit"), "you normalised although normalise=False: then return the difference "
                                                "of the means at its own length"),
        "axis": (variant("axis"), "you averaged over the wrong axis: mean(1) averages the d_model numbers of each "
                                  "vector; average over the examples, mean(0) (dim 0 is the example)"),
        "overall": (variant("overall"), "you subtracted the mean of all examples, not the mean of class 0: that "
                                        "difference has the right direction but not the right length"),
        "index": (variant("index"), "you indexed acts with the labels themselves: acts[labels] picks rows 0 and 1 "
                                    "over and over. Select rows with a boolean mask, acts[labels == 1]"),
    }
    return check_function(learner_fn, mean_difference_direction, cases.direction_cases(),
                          name="mean_difference_direction", known_mistakes=mistakes, atol=1e-5, rtol=1e-4,
                          hint="select each class's rows with labels == 1 and labels == 0, average them over dim 0")


def _same_labels(got: Any, want: Any) -> bool:
    """Predictions compared as numbers: a bool or int array, or a tensor, of the right shape."""
    try:
        g = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got, dtype=float)
        w = np.asarray(want.detach().cpu() if isinstance(want, torch.Tensor) else want, dtype=float)
    except (TypeError, ValueError, AttributeError):
        return False
    return g.shape == w.shape and bool(np.allclose(g, w, atol=1e-5))


@single_threaded
def check_mean_difference_probe_predict(learner_fn: object) -> CheckResult:
    """Exercise 7: project, threshold halfway between the training classes' mean projections."""
    def variant(kind):
        def wrong(direction, train_acts, train_labels, test_acts):
            train, test = train_acts @ direction, test_acts @ direction
            one, zero = _class_means(train, train_labels)
            midpoint = (one.mean() + zero.mean()) / 2
            if kind == "scores":
                return test.numpy()
            threshold = {"zero": 0.0, "test-mean": test.mean(), "test-median": test.median(),
                         "train-mean": train.mean(), "flipped": midpoint}[kind]
            above = test < threshold if kind == "flipped" else test > threshold
            return above.long().numpy()
        return wrong

    from_test = ("you took the threshold from the held-out vectors: a probe must be fixed before it sees the data "
                 "it is scored on. Use the midpoint of the two classes' mean projections on the training vectors")
    mistakes = {
        "zero": (variant("zero"), "you thresholded at 0: the projections of both classes can sit on the same side "
                                  "of 0. Threshold halfway between the two classes' mean projections (training)"),
        "test-mean": (variant("test-mean"), from_test),
        "test-median": (variant("test-median"), from_test),
        "train-mean": (variant("train-mean"), "you thresholded at the mean projection of all training vectors: with "
                                              "classes of unequal size that is not halfway between the two classes. "
                                              "Average the two class means instead"),
        "flipped": (variant("flipped"), "the sign is flipped: predict 1 where the projection is *above* the "
                                        "threshold (the direction points towards class 1)"),
        "scores": (variant("scores"), "you returned the projections themselves: return 0 or 1 per vector, "
                                      "(scores > threshold)"),
    }
    return check_function(learner_fn, mean_difference_probe_predict, cases.predict_cases(),
                          name="mean_difference_probe_predict", known_mistakes=mistakes, compare=_same_labels,
                          hint="scores = acts @ direction; threshold = (mean score of class 1 + mean score of class 0) "
                               "/ 2 on the training vectors")


@single_threaded
def check_steering_hook(learner_fn: object) -> CheckResult:
    """Exercise 8: the hooks of a sweep over alphas, made first and then run one by one, give the reference's
    logits (every position, one position, the other model)."""
    def sweep(make_hook):
        return lambda model, tokens, layer, vector, alphas, pos: steered_logits(make_hook, model, tokens, layer,
                                                                                vector, alphas, pos)
    mistakes = {
        "none": (sweep(steer_variant("none")), "the model ran unchanged: your hook must *return* the edited tensor "
                                               "(resid + alpha * vector); a hook that returns None changes nothing"),
        "first": (sweep(steer_variant("first")), "you added the vector at position 0 only (the BOS token): add it "
                                                 "at every position, resid + alpha * vector, when pos is None"),
        "multiply": (sweep(steer_variant("multiply")), "you multiplied the residual stream by the vector: steering "
                                                       "*adds* alpha * vector to it"),
        "subtract": (sweep(steer_variant("subtract")), "the sign is flipped: add alpha * vector, do not subtract it"),
        "unit": (sweep(steer_variant("unit")), "you scaled the vector to length 1: add alpha * vector as given "
                                               "(its length is part of the steering strength)"),
        "all": (sweep(steer_variant("all")), "you added the vector at every position although pos was given: add "
                                             "it only at resid[:, pos]"),
        "shared": (sweep(steer_variant("shared")), "every hook you returned acts like the last one made (late "
                                                   "binding): each call must return a new function that keeps its "
                                                   "own vector and alpha, a closure defined inside steering_hook"),
    }
    learner = sweep(learner_fn) if callable(learner_fn) else learner_fn
    return check_function(learner, sweep(steer_variant("right")), cases.steering_cases(), name="steering_hook",
                          known_mistakes=mistakes, atol=1e-4, rtol=1e-4,
                          hint="inside steering_hook, define hook(resid, hook) that returns resid + alpha * vector "
                               "(or edits resid[:, pos] only), and return that function")


@single_threaded
def check_effect_per_unit_norm(learner_fn: object) -> CheckResult:
    """Exercise 9: the least-squares slope of the mean logit difference against alpha, for a unit direction."""
    variant = functools.partial(effect_variant, runs={})          # the mistakes share their forward passes
    mistakes = {
        "unnormalised": (variant("unnormalised"), "the direction kept its length: divide it by its norm "
                                                         "first, so that the slope is per unit of norm"),
        "cross-batch": (variant("cross-batch"), "you indexed the answers across the batch: "
                                                       "logits[:, -1][:, answers[:, 0]] is [batch, batch] and mixes "
                                                       "every prompt with every other prompt's answers. Pair rows "
                                                       "with their own answers: last[torch.arange(batch), "
                                                       "answers[:, 0]]"),
        "reversed": (variant("reversed"), "the sign is flipped: the logit difference is logit(answers[:, 0]) "
                                                 "- logit(answers[:, 1])"),
        "late-binding": (variant("late-binding"), "every run used the last alpha (late binding): a lambda or "
                                                         "def inside a loop looks its variable up when it runs, not "
                                                         "when it is made. Build each hook with your "
                                                         "steering_hook(unit, alpha), or run it inside the loop"),
        "endpoints": (variant("endpoints"), "you took the slope from the first and last alpha only: fit a line "
                                                   "through every point, np.polyfit(alphas, means, 1)[0]"),
        "last-only": (variant("last-only"), "you added the direction at the last position only: add it at "
                                                   "every position"),
    }
    return check_function(learner_fn, effect_per_unit_norm, cases.effect_cases(), name="effect_per_unit_norm",
                          known_mistakes=mistakes, atol=1e-4, rtol=1e-3,
                          hint="for each alpha, run with steering_hook(unit, alpha) before block layer, take the mean "
                               "of last[rows, answers[:, 0]] - last[rows, answers[:, 1]], then np.polyfit")


@single_threaded
def check_contrast_pair_differences(learner_fn: object) -> CheckResult:
    """Exercise 10a: each side centred on its own mean, then first minus second."""
    mistakes = {
        "uncentred": (lambda a, b: a - b, "not centred: subtract each side's own mean over the pairs first, "
                                          "acts_first - acts_first.mean(0) and acts_second - acts_second.mean(0)"),
        "flipped": (lambda a, b: (b - b.mean(0)) - (a - a.mean(0)),
                    "the sign is flipped: row i is the first member (acts_first) minus the second (acts_second)"),
        "one-side": (lambda a, b: (a - a.mean(0)) - b, "you centred only acts_first: centre acts_second on its own "
                                                       "mean too"),
        "axis": (lambda a, b: (a - a.mean(1, keepdim=True)) - (b - b.mean(1, keepdim=True)),
                 "you centred each vector on the mean of its own d_model numbers: centre over the pairs, mean(0)"),
    }
    return check_function(learner_fn, contrast_pair_differences, cases.pair_cases(),
                          name="contrast_pair_differences", known_mistakes=mistakes, atol=1e-5, rtol=1e-4,
                          hint="(acts_first - acts_first.mean(0)) - (acts_second - acts_second.mean(0))")


def _canonical_sign(x: Any) -> Any:
    """A 1-d tensor with the sign that makes its largest entry (in size) positive; anything else as it is."""
    if isinstance(x, torch.Tensor) and x.dim() == 1 and x.numel() and x.is_floating_point():
        return x * torch.sign(x[x.abs().argmax()])
    return x


def _up_to_sign(fn):
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        return _canonical_sign(fn(*args, **kwargs))
    return wrapped


@single_threaded
def check_first_principal_direction(learner_fn: object) -> CheckResult:
    """Exercise 10b: the first right singular vector of the centred rows, compared up to its sign."""
    least = ("you took the direction of *least* spread: torch.linalg.svd sorts the singular values largest first "
             "(take Vh[0]), while torch.linalg.eigh sorts eigenvalues smallest first (the eigenvector of the smallest "
             "eigenvalue is its column 0; take the last column)")
    mistakes = {
        "uncentred": (lambda d: centred_svd_rows(d, centre=False)[2][0],
                      "not centred: a principal component is a direction of spread around the mean. Subtract "
                      "diffs.mean(0) before the SVD"),
        "last": (lambda d: centred_svd_rows(d)[2][-1], least),
        "eigh": (smallest_eigenvector, least),
        "U": (lambda d: centred_svd_rows(d)[0][:, 0], "you returned a column of U, one number per row of diffs: the "
                                                      "directions in d_model space are the rows of Vh (the columns "
                                                      "of V)"),
        "Vh-column": (lambda d: centred_svd_rows(d)[2][:, 0], "you took a column of Vh: the directions are its rows, "
                                                              "Vh[0] (Vh is V transposed)"),
    }
    wrapped = {key: (_up_to_sign(fn), message) for key, (fn, message) in mistakes.items()}
    learner = _up_to_sign(learner_fn) if callable(learner_fn) else learner_fn
    return check_function(learner, _up_to_sign(first_principal_direction), cases.principal_cases(),
                          name="first_principal_direction", known_mistakes=wrapped, atol=1e-4, rtol=1e-3,
                          hint="centre the rows, then torch.linalg.svd(x, full_matrices=False) returns U, S, Vh; "
                               "the sign of the answer does not matter")


@single_threaded
def check_sign_agnostic_accuracy(learner_fn: object) -> CheckResult:
    """Exercise 11: the higher of the accuracies of ``score > 0`` and of its opposite."""
    threshold = ("you thresholded somewhere else than 0: the scores are projections on a direction, centred, so "
                 "predict 1 where score > 0")
    mistakes = {
        "plain": (lambda s, y: threshold_accuracy(s, y, 0.0, agnostic=False),
                  "that is the plain accuracy: a direction found without labels may point either way, so return "
                  "the higher of acc and 1 - acc"),
        "min": (lambda s, y: min(threshold_accuracy(s, y, 0.0, agnostic=False),
                                 1 - threshold_accuracy(s, y, 0.0, agnostic=False)),
                "you returned the lower of acc and 1 - acc: return the higher, max(acc, 1 - acc)"),
        "half": (lambda s, y: threshold_accuracy(s, y, 0.5), threshold + " (not 0.5: these are not probabilities)"),
        "median": (lambda s, y: threshold_accuracy(s, y, float(np.median(s))), threshold),
        "mean": (lambda s, y: threshold_accuracy(s, y, float(np.mean(s))), threshold),
        "percent": (lambda s, y: 100 * threshold_accuracy(s, y, 0.0), "return a fraction between 0 and 1, not a "
                                                                        "percentage"),
    }
    return check_function(learner_fn, sign_agnostic_accuracy, cases.sign_agnostic_cases(),
                          name="sign_agnostic_accuracy", known_mistakes=mistakes, atol=1e-9, rtol=0.0,
                          hint="acc = mean((scores > 0) == (labels == 1)); return max(acc, 1 - acc)")


@single_threaded
def check_ccs_loss(learner_fn: object) -> CheckResult:
    """Exercise 12: consistency plus confidence, averaged over the pairs, as a tensor that carries gradients."""
    if callable(learner_fn):
        p_pos = torch.tensor([0.3, 0.8], requires_grad=True)
        try:
            with torch.enable_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")                   # a loss turned into a float warns: said below
                loss = learner_fn(p_pos, torch.tensor([0.6, 0.1]))
        except Exception:  # noqa: BLE001 - the check below reports the learner's error on its own cases
            loss = None
        if isinstance(loss, torch.Tensor) and loss.grad_fn is None:
            return report(False, "ccs_loss: your loss carries no gradient, so a probe could not be trained on it: "
                                 "build it from torch operations on p_pos and p_neg (no .item(), .detach() or numpy)")
    mistakes = {
        "consistency-only": (lambda p, q: ((p - (1 - q)) ** 2).mean(),
                             "the confidence term is missing: add min(p_pos, p_neg) ** 2, or the probe can answer "
                             "0.5 for everything"),
        "difference": (lambda p, q: ((p - q) ** 2 + torch.minimum(p, q) ** 2).mean(),
                       "your consistency term is (p_pos - p_neg) ** 2: the two members of a pair should add up to 1, "
                       "so use (p_pos - (1 - p_neg)) ** 2"),
        "no-square": (lambda p, q: ((p - (1 - q)) + torch.minimum(p, q) ** 2).mean(),
                      "the consistency term is not squared: (p_pos - (1 - p_neg)) ** 2, so that errors either way "
                      "cost the same"),
        "max": (lambda p, q: ((p - (1 - q)) ** 2 + torch.maximum(p, q) ** 2).mean(),
                "the confidence term uses the larger probability: use min(p_pos, p_neg) ** 2 "
                "(torch.minimum), which is small when one of the two is near 0"),
        "sum": (lambda p, q: ((p - (1 - q)) ** 2 + torch.minimum(p, q) ** 2).sum(),
                "you summed over the pairs: take the mean, so the loss does not grow with the number of pairs"),
    }
    return check_function(learner_fn, ccs_loss, cases.ccs_cases(), name="ccs_loss", known_mistakes=mistakes,
                          atol=1e-6, rtol=1e-5,
                          hint="consistency (p_pos - (1 - p_neg)) ** 2 plus confidence "
                               "torch.minimum(p_pos, p_neg) ** 2, averaged")
