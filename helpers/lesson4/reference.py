"""The reference answer of every exercise of workbook 4, each named as the exercise, and the helpers they need.

======  ============================  =================================================================
 ex.    reference                     what it does
======  ============================  =================================================================
  1     :func:`last_token_resid`      the residual stream at each prompt's last token, embeddings and after each block
  2     :func:`probe_accuracy`        a logistic-regression probe trained on one split, scored on the other
  3     :func:`selectivity`           task accuracy against a control task (:func:`control_labels`)
  4a    :func:`project_out`           remove one direction from every vector
  4b    :func:`logits_without_direction`  the same inside the model, with a hook on ``hook_resid_post``
  5     :func:`false_statement_auroc`  a truth probe as a detector of false statements
======  ============================  =================================================================

Workbook 4b's references (exercises 6 to 12) live in :mod:`helpers.lesson4.reference_steering`, imported here so
that every exercise of lesson 4 has its reference in ``helpers.lesson4.reference``.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from jaxtyping import Float, Int
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers import corpus
from helpers.corpus import Example
from helpers.lesson4.data import SEED, gather_resid

__all__ = ["fit_probe", "control_labels", "Selectivity", "last_token_resid", "probe_accuracy", "selectivity",
           "project_out", "logits_without_direction", "false_statement_auroc"]

Activations = Float[np.ndarray, "example d_model"] | Float[Tensor, "example d_model"]


def fit_probe(X: Activations, y: Int[np.ndarray, "example"]) -> LogisticRegression:
    """A logistic-regression probe, ``LogisticRegression(max_iter=1000)``, as most probing tutorials write it."""
    with warnings.catch_warnings(), threadpool_limits(limits=1):     # tiny problems: threads only add overhead
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(max_iter=1000).fit(np.asarray(X), y)


def control_labels(types: Sequence[str], n_classes: int, seed: int = SEED) -> Int[np.ndarray, "example"]:
    """A control task (Hewitt and Liang, 2019): each distinct type gets a random label, the same everywhere.

    Pass the types of *both* splits in one call, so that a type keeps its label across splits.
    Returns ``[len(types)]`` ints in ``[0, n_classes)``.
    """
    kinds = sorted(set(types))
    table = dict(zip(kinds, np.random.default_rng(seed).integers(0, n_classes, len(kinds)).tolist()))
    return np.array([table[t] for t in types], dtype=np.int64)


class Selectivity(NamedTuple):
    """What :func:`selectivity` returns, all on the held-out split (it unpacks like the tuple of exercise 3)."""

    task: float          # the probe's accuracy on the real labels
    control: float       # the same probe's accuracy on the control task's random labels
    selectivity: float   # task - control


# ============================================================================ exercise 1
def last_token_resid(model: HookedTransformer, examples: Sequence[Example]) -> Float[Tensor, "layer batch d_model"]:
    """Exercise 1: ``[n_layers + 1, n_examples, d_model]`` at each prompt's last token (``token_positions``'s
    ``"end"``): row 0 from ``blocks.0.hook_resid_pre``, row ``l + 1`` from ``blocks.{l}.hook_resid_post``."""
    positions = [corpus.token_positions(e, model.tokenizer)["end"] for e in examples]
    return gather_resid(model, [e.prompt for e in examples], positions)


# ============================================================================ exercise 2
def probe_accuracy(X_train: Float[np.ndarray, "example d_model"], y_train: Int[np.ndarray, "example"],
                   X_test: Float[np.ndarray, "_example d_model"], y_test: Int[np.ndarray, "_example"]) -> float:
    """Exercise 2: train a probe on the training split and return its accuracy on the held-out split."""
    probe = fit_probe(X_train, y_train)
    return float(probe.score(np.asarray(X_test), y_test))


# ============================================================================ exercise 3
def selectivity(X_train: Float[np.ndarray, "example d_model"], y_train: Int[np.ndarray, "example"],
                types_train: Sequence[str], X_test: Float[np.ndarray, "_example d_model"],
                y_test: Int[np.ndarray, "_example"], types_test: Sequence[str], seed: int = SEED,
                score: Callable[..., float] = probe_accuracy) -> Selectivity:
    """Exercise 3: task accuracy, control-task accuracy and their difference (the selectivity), all held out.

    The control task gives each type a random label (:func:`control_labels` over both splits at once, with as
    many classes as the two splits have together). A probe that scores well on it memorises types, whatever
    they mean; selectivity is what the probe reads beyond that.
    """
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    control = control_labels(list(types_train) + list(types_test), n_classes, seed)
    c_train, c_test = control[:len(types_train)], control[len(types_train):]
    task = score(X_train, y_train, X_test, y_test)
    ctrl = score(X_train, c_train, X_test, c_test)
    return Selectivity(task, ctrl, task - ctrl)


# ============================================================================ exercise 4
def project_out(resid: Float[Tensor, "*batch d_model"], direction: Float[Tensor, "d_model"]
                ) -> Float[Tensor, "*batch d_model"]:
    """Exercise 4a: remove the component of ``resid`` along ``direction`` (any length; it is normalised here).

    Returns ``resid - (resid . u) u`` with ``u`` the unit vector along ``direction``. Applying it twice gives
    the same result as once (a projection is idempotent).
    """
    u = direction / direction.norm()
    return resid - (resid @ u)[..., None] * u


def logits_without_direction(model: HookedTransformer, tokens: Int[Tensor, "batch pos"], layer: int,
                             direction: Float[Tensor, "d_model"]) -> Float[Tensor, "batch pos d_vocab"]:
    """Exercise 4b: run the model with ``direction`` projected out of ``blocks.{layer}.hook_resid_post`` at every
    position. No hooks stay attached afterwards."""
    def hook(resid, hook):                                     # resid: [batch, pos, d_model]
        return project_out(resid, direction)

    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.hook_resid_post", hook)])


# ============================================================================ exercise 5
def false_statement_auroc(probe: LogisticRegression, X: Float[np.ndarray, "example d_model"],
                          is_true: Int[np.ndarray, "example"]) -> float:
    """Exercise 5: AUROC of a truth probe (class 1 = "true") used to flag *false* statements.

    The score "this statement is false" is the probe's probability of class 0 and the positives are the false
    statements: 1.0 ranks every false statement above every true one, 0.5 is chance.
    """
    p_false = probe.predict_proba(np.asarray(X))[:, 0]
    return float(roc_auc_score(1 - np.asarray(is_true), p_false))
