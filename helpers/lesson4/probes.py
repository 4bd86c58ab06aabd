"""Sections 3, 4 and 6 of lesson 4: probes layer by layer, their controls, and the truth probe as a detector.

The controls of careful probing work: a control task with random labels (:func:`~helpers.lesson4.reference.
selectivity`), the same probe on a randomly initialised model of the same shape (:func:`random_model`), an
embedding-only baseline (:func:`embedding_baseline`) and a nonlinear probe (:func:`mlp_probe_accuracy`).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from jaxtyping import Float, Int
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits
from torch import Tensor
from transformer_lens import HookedTransformer, HookedTransformerConfig

from helpers.corpus import Example
from helpers.lesson4.data import SEED, TaskData, answer_ids, last_logits, padded_tokens
from helpers.lesson4.reference import probe_accuracy

__all__ = ["probe_direction", "layer_accuracies", "mlp_probe_accuracy", "random_model", "embedding_baseline",
           "split_by_subject", "self_report_scores"]


def probe_direction(probe: LogisticRegression) -> Float[Tensor, "d_model"]:
    """A binary probe's unit direction (pointing towards class 1)."""
    w = torch.tensor(probe.coef_[0], dtype=torch.float32)
    return w / w.norm()


def layer_accuracies(acts_train: Float[Tensor, "layer example d_model"], y_train: Int[np.ndarray, "example"],
                     acts_test: Float[Tensor, "layer _example d_model"], y_test: Int[np.ndarray, "_example"],
                     score: Callable[..., float] = probe_accuracy) -> Float[np.ndarray, "layer"]:
    """Held-out probe accuracy at every place read (the embeddings, then after every block): ``[n_layers + 1]``."""
    return np.array([score(acts_train[i].numpy(), y_train, acts_test[i].numpy(), y_test)
                     for i in range(acts_train.shape[0])])


def mlp_probe_accuracy(X_train: Float[np.ndarray, "example d_model"], y_train: Int[np.ndarray, "example"],
                       X_test: Float[np.ndarray, "_example d_model"], y_test: Int[np.ndarray, "_example"]) -> float:
    """Held-out accuracy of a nonlinear probe: scikit-learn's ``MLPClassifier`` with one hidden layer of 128."""
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = MLPClassifier(hidden_layer_sizes=(128,), max_iter=500, random_state=SEED)
        return float(probe.fit(X_train, y_train).score(X_test, y_test))


def random_model(model: HookedTransformer, seed: int = SEED) -> HookedTransformer:
    """A randomly initialised ``HookedTransformer`` with ``model``'s shape and tokenizer (never trained).

    TransformerLens initialises the weights itself (``init_weights=True``) from ``seed``; the random model runs
    the same attention and MLP code on the same tokens, so what a probe reads from it is what the
    architecture brings to the last token without any learning.
    """
    cfg = HookedTransformerConfig(**{**model.cfg.to_dict(), "seed": seed, "init_weights": True})
    with warnings.catch_warnings():
        # some TransformerLens versions print deprecation notices about config options while building a model;
        # they are about the library, not this lesson, so they are silenced here and only here
        warnings.filterwarnings("ignore", message=".*[Dd]eprecat.*")
        # move_to_device=False: keep the new weights where they were created (the CPU) instead of moving them
        # to cfg.device, so that the random model sits where the trained one does
        fresh = HookedTransformer(cfg, tokenizer=model.tokenizer, move_to_device=False)
    # a new PyTorch module starts in training mode; .eval() puts it in inference mode, as the trained model is
    return fresh.eval()


def embedding_baseline(model: HookedTransformer, prompts: Sequence[str]) -> Float[Tensor, "batch d_model"]:
    """A bag-of-words baseline: the mean token embedding ``W_E`` over each prompt (BOS and padding left out).

    No attention and no MLP has run: whatever a probe reads from this, it reads from which words occur, not
    from how the model combined them.
    """
    tokens = padded_tokens(model, prompts)
    keep = (tokens != model.tokenizer.pad_token_id).float()
    keep[:, 0] = 0.0                                                            # drop BOS
    emb = model.W_E[tokens]                                                     # [batch, pos, d_model]
    return ((emb * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)).detach()


def split_by_subject(examples: Sequence[Example], seed: int = SEED) -> tuple[set[str], set[str]]:
    """Split the subjects (landmarks and cities) of ``examples`` into two halves, at random but seeded."""
    subjects = sorted({e.labels["subject"] for e in examples})
    order = np.random.default_rng(seed).permutation(len(subjects))
    half = len(subjects) // 2
    return {subjects[i] for i in order[:half]}, {subjects[i] for i in order[half:]}


def self_report_scores(model: HookedTransformer, data: TaskData) -> Float[np.ndarray, "example"]:
    """The model's own verdict as a score for "false": ``logit(" false") - logit(" true")`` at the last token."""
    true_id, false_id = answer_ids(model, " true", " false")
    logits = last_logits(model, data.prompts, data.positions)
    return (logits[:, false_id] - logits[:, true_id]).numpy()
