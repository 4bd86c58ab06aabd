"""Lesson 4 (probing): reference code, controls, interventions, plots and checks.

The lesson notebook and its workbook import this module. It holds:

* labelled prompt sets for three attributes (a review's sentiment, a statement's truth, the IOI
  indirect object's name), with the token position a probe reads (:func:`task_data`);
* activation gathering with ``run_with_cache(..., names_filter=...)`` (:func:`gather_resid`);
* scikit-learn probes, layer by layer, and the controls of careful probing work: a control task with
  random labels (selectivity), the same probe on a randomly initialised model of the same shape,
  an embedding-only baseline, and a nonlinear (MLP) probe;
* interventions along a probe direction (project it out, or add it as steering) and their effect
  on the model's own answer;
* the truth probe as a detector of false statements (AUROC), against the model's own answer;
* the plots, and one check per workbook exercise (``check_*``), each of which prints one line.

Shapes: ``[batch, d_model]`` is one activation vector per example; ``[n_layers + 1, batch, d_model]``
stacks the embeddings (entry 0, ``hook_resid_pre`` of block 0) and the output of every block
(entry ``l + 1``, ``blocks.l.hook_resid_post``).
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits
from transformer_lens import HookedTransformer, HookedTransformerConfig

from helpers import corpus
from helpers.checks import Case, CheckResult, check_function, one_thread, single_threaded
from helpers.corpus_data import NAMES

__all__ = [
    "TASKS", "TaskData", "task_data", "answer_ids", "resid_hook_names", "gather_resid", "model_logit_diff",
    "fit_probe", "probe_accuracy", "probe_direction", "layer_accuracies", "control_labels", "selectivity",
    "mlp_probe_accuracy", "random_model", "embedding_baseline",
    "project_out", "logits_without_direction", "logits_with_steering", "intervention_effect",
    "orthonormal", "project_out_subspace", "amnesic_basis", "subspace_hooks",
    "steering_curve", "flipped_review", "patching_by_layer",
    "split_by_subject", "false_statement_auroc", "self_report_scores",
    "LAYER_LABELS", "plot_layer_accuracies", "plot_controls", "plot_interventions", "plot_probe_and_patching",
    "plot_roc",
    "last_token_resid", "check_last_token_resid", "check_probe_accuracy", "check_selectivity", "check_project_out",
    "check_logits_without_direction", "check_false_statement_auroc", "one_thread",
]

SEED = 0


# =====================================================================================
# Data: labelled prompts, the token a probe reads, the answer the model gives
# =====================================================================================

@dataclass
class TaskData:
    """One attribute's prompts and labels for one split.

    ``labels`` is ``[n]`` ints (class ids); ``positions`` ``[n]`` the index (BOS counted) of each
    prompt's last token, the one that predicts the answer; ``types`` the surface type of each
    example (what the control task maps to a random label); ``answers`` ``[n, 2]`` the token ids of
    the right and the wrong answer, so ``logit[answers[:, 0]] - logit[answers[:, 1]]`` is the model's
    own margin for the right answer.
    """

    name: str
    examples: list
    labels: np.ndarray
    positions: np.ndarray
    types: list
    answers: torch.Tensor
    classes: list

    @property
    def prompts(self) -> list[str]:
        return [e.prompt for e in self.examples]


TASKS = {
    "sentiment": "Is the review positive? (read at the last token, 'is')",
    "truth": "Is the statement true? (read at the last token, 'is')",
    "io_name": "Which name is the indirect object? (read at the last token, 'to'; 48 names)",
}


def _token_id(tokenizer, word: str) -> int:
    return tokenizer(word, add_special_tokens=False)["input_ids"][0]


def task_data(task: str, split: str, n: int, tokenizer, seed: int = SEED,
              examples: list | None = None) -> TaskData:
    """Prompts, labels, read positions, control types and answer tokens for one attribute.

    Args:
        task: ``"sentiment"`` (label 1 = positive review), ``"truth"`` (1 = true statement) or
            ``"io_name"`` (label = index of the IO name in ``corpus_data.NAMES``).
        split: ``"train"`` or ``"test"`` (held-out templates, frames, name pairs).
        n: number of examples (ignored when ``examples`` is given).
    """
    if task == "sentiment":
        examples = examples or corpus.review_examples(n, split, seed)
        labels = [int(e.labels["positive"]) for e in examples]
        types = [e.labels["thing"] for e in examples]
        right = [e.answer for e in examples]
        wrong = [" negative" if e.labels["positive"] else " positive" for e in examples]
        classes = ["negative", "positive"]
    elif task == "truth":
        examples = examples or corpus.truth_examples(n, split, seed)
        labels = [int(e.labels["true"]) for e in examples]
        types = [e.labels["subject"] for e in examples]
        right = [e.answer for e in examples]
        wrong = [" false" if e.labels["true"] else " true" for e in examples]
        classes = ["false", "true"]
    elif task == "io_name":
        examples = examples or corpus.ioi_examples(n, split, seed)
        labels = [NAMES.index(e.labels["io"]) for e in examples]
        types = [e.labels["object"] for e in examples]
        right = [" " + e.labels["io"] for e in examples]
        wrong = [" " + e.labels["s"] for e in examples]
        classes = list(NAMES)
    else:
        raise ValueError(f"Unknown task {task!r}. Valid: {', '.join(TASKS)}.")
    positions = [corpus.token_positions(e, tokenizer)["end"] for e in examples]
    answers = torch.tensor([[_token_id(tokenizer, r), _token_id(tokenizer, w)] for r, w in zip(right, wrong)])
    return TaskData(task, list(examples), np.array(labels), np.array(positions), types, answers, classes)


def answer_ids(model: HookedTransformer, yes: str, no: str) -> tuple[int, int]:
    """Token ids of two answer words (with their leading space)."""
    return _token_id(model.tokenizer, yes), _token_id(model.tokenizer, no)


# =====================================================================================
# Activations
# =====================================================================================

def resid_hook_names(n_layers: int) -> list[str]:
    """The hooks a probe reads: the embeddings, then every block's output (``n_layers + 1`` names)."""
    return ["blocks.0.hook_resid_pre", *[f"blocks.{layer}.hook_resid_post" for layer in range(n_layers)]]


def _tokens(model: HookedTransformer, prompts: Sequence[str]) -> torch.Tensor:
    """Prompts padded on the right (so position i is the same token index in every prompt): ``[batch, pos]``."""
    return model.to_tokens(list(prompts), padding_side="right")


def gather_resid(model: HookedTransformer, prompts: Sequence[str], positions: Sequence[int] | np.ndarray,
                 batch_size: int = 128) -> torch.Tensor:
    """The residual stream at one token of each prompt, before block 0 and after every block.

    Args:
        prompts: ``n`` prompts; they are padded on the right, so shorter ones end in pad tokens.
        positions: ``[n]``, the token index to read in each prompt (BOS counted).

    Returns:
        ``[n_layers + 1, n, d_model]``: entry 0 is ``blocks.0.hook_resid_pre`` (token plus position
        embedding), entry ``l + 1`` is ``blocks.l.hook_resid_post``.
    """
    names = resid_hook_names(model.cfg.n_layers)
    positions = torch.as_tensor(np.asarray(positions))
    chunks = []
    for start in range(0, len(prompts), batch_size):
        tokens = _tokens(model, prompts[start:start + batch_size])
        rows = torch.arange(tokens.shape[0])
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names,
                                            stop_at_layer=model.cfg.n_layers)   # no unembedding needed
        pos = positions[start:start + batch_size]
        chunks.append(torch.stack([cache[name][rows, pos] for name in names]))     # [layer, batch, d_model]
    return torch.cat(chunks, dim=1)


def model_logit_diff(model: HookedTransformer, data: TaskData, fwd_hooks: list | None = None,
                     batch_size: int = 200) -> torch.Tensor:
    """The model's margin for the right answer at each prompt's last token: ``[n]``.

    ``logit(right) - logit(wrong)``: positive means the model answers correctly. ``fwd_hooks`` are
    applied during the run (e.g. an intervention). Only the last token is unembedded (the forward
    pass stops before the final LayerNorm), which saves most of the unembedding's work.
    """
    out = []
    for start in range(0, len(data.examples), batch_size):
        tokens = _tokens(model, data.prompts[start:start + batch_size])
        rows = torch.arange(tokens.shape[0])
        with torch.no_grad():
            resid = model.run_with_hooks(tokens, fwd_hooks=fwd_hooks or [], stop_at_layer=model.cfg.n_layers)
            last = resid[rows, torch.as_tensor(data.positions[start:start + batch_size])]     # [batch, d_model]
            logits = model.unembed(model.ln_final(last[:, None]))[:, 0]                        # [batch, d_vocab]
        answers = data.answers[start:start + batch_size]
        out.append(logits.gather(1, answers[:, :1])[:, 0] - logits.gather(1, answers[:, 1:])[:, 0])
    return torch.cat(out)


# =====================================================================================
# Probes and their controls
# =====================================================================================

def fit_probe(X: np.ndarray | torch.Tensor, y: np.ndarray) -> LogisticRegression:
    """A logistic-regression probe, ``LogisticRegression(max_iter=1000)`` as in the syllabus."""
    with warnings.catch_warnings(), threadpool_limits(limits=1):     # tiny problems: threads only add overhead
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(max_iter=1000).fit(np.asarray(X), y)


def probe_accuracy(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> float:
    """Train a probe on the training split and return its accuracy on the held-out split.

    Args:
        X_train: ``[n_train, d_model]``; y_train: ``[n_train]``; X_test, y_test likewise.
    """
    probe = fit_probe(X_train, y_train)
    return float(probe.score(np.asarray(X_test), y_test))


def probe_direction(probe: LogisticRegression) -> torch.Tensor:
    """A binary probe's unit direction ``[d_model]`` (pointing towards class 1)."""
    w = torch.tensor(probe.coef_[0], dtype=torch.float32)
    return w / w.norm()


def layer_accuracies(acts_train: torch.Tensor, y_train: np.ndarray, acts_test: torch.Tensor,
                     y_test: np.ndarray, score: Callable = probe_accuracy) -> np.ndarray:
    """Held-out probe accuracy at every layer: ``acts`` are ``[n_layers + 1, n, d_model]``; returns ``[n_layers + 1]``."""
    return np.array([score(acts_train[i].numpy(), y_train, acts_test[i].numpy(), y_test)
                     for i in range(acts_train.shape[0])])


def control_labels(types: Sequence, n_classes: int, seed: int = SEED) -> np.ndarray:
    """A control task (Hewitt and Liang, 2019): each distinct type gets a random label, the same everywhere.

    Pass the types of *both* splits in one call, so that a type keeps its label across splits.
    Returns ``[len(types)]`` ints in ``[0, n_classes)``.
    """
    kinds = sorted(set(types))
    table = dict(zip(kinds, np.random.default_rng(seed).integers(0, n_classes, len(kinds)).tolist()))
    return np.array([table[t] for t in types])


def selectivity(X_train: np.ndarray, y_train: np.ndarray, types_train: list, X_test: np.ndarray,
                y_test: np.ndarray, types_test: list, seed: int = SEED,
                score: Callable = probe_accuracy) -> tuple[float, float, float]:
    """Task accuracy, control-task accuracy and their difference (the selectivity), all held out.

    The control task gives each type a random label (:func:`control_labels` over both splits at
    once, with as many classes as ``y_train`` has). A probe that scores well on it memorises types,
    whatever they mean; selectivity is what the probe reads beyond that.
    """
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    control = control_labels(list(types_train) + list(types_test), n_classes, seed)
    c_train, c_test = control[:len(types_train)], control[len(types_train):]
    task = score(X_train, y_train, X_test, y_test)
    ctrl = score(X_train, c_train, X_test, c_test)
    return task, ctrl, task - ctrl


def mlp_probe_accuracy(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> float:
    """Held-out accuracy of a nonlinear probe: scikit-learn's ``MLPClassifier`` with one hidden layer of 128."""
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = MLPClassifier(hidden_layer_sizes=(128,), max_iter=500, random_state=SEED)
        return float(probe.fit(X_train, y_train).score(X_test, y_test))


def random_model(model: HookedTransformer, seed: int = SEED) -> HookedTransformer:
    """A randomly initialised ``HookedTransformer`` with ``model``'s shape and tokenizer (never trained)."""
    cfg = HookedTransformerConfig(**{**model.cfg.to_dict(), "seed": seed, "init_weights": True})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Dd]eprecat.*")
        fresh = HookedTransformer(cfg, tokenizer=model.tokenizer, move_to_device=False)
    return fresh.eval()


def embedding_baseline(model: HookedTransformer, prompts: Sequence[str]) -> torch.Tensor:
    """A bag-of-words baseline: the mean token embedding ``W_E`` over each prompt (BOS and padding left out).

    No attention and no MLP has run: whatever a probe reads from this, it reads from which words
    occur, not from how the model combined them. Returns ``[n, d_model]``.
    """
    tokens = _tokens(model, prompts)
    keep = (tokens != model.tokenizer.pad_token_id).float()
    keep[:, 0] = 0.0                                                            # drop BOS
    emb = model.W_E[tokens]                                                     # [n, pos, d_model]
    return ((emb * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)).detach()


# =====================================================================================
# Interventions: present against used
# =====================================================================================

def project_out(resid: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Remove the component of ``resid`` along ``direction``.

    Args:
        resid: ``[..., d_model]``; direction: ``[d_model]``, any length (it is normalised here).

    Returns:
        ``[..., d_model]``: ``resid - (resid . u) u`` with ``u`` the unit vector along ``direction``.
        Applying it twice gives the same result as once (a projection is idempotent).
    """
    u = direction / direction.norm()
    return resid - (resid @ u)[..., None] * u


def logits_without_direction(model: HookedTransformer, tokens: torch.Tensor, layer: int,
                             direction: torch.Tensor) -> torch.Tensor:
    """Run the model with ``direction`` projected out of ``blocks.{layer}.hook_resid_post`` at every position.

    Args:
        tokens: ``[batch, pos]``; layer: which block's output to edit; direction: ``[d_model]``.

    Returns:
        ``[batch, pos, d_vocab]`` logits. No hooks stay attached afterwards.
    """
    def hook(resid, hook):                                     # resid: [batch, pos, d_model]
        return project_out(resid, direction)

    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.hook_resid_post", hook)])


def logits_with_steering(model: HookedTransformer, tokens: torch.Tensor, layer: int, direction: torch.Tensor,
                         alpha: float) -> torch.Tensor:
    """Run the model with ``alpha`` times the unit ``direction`` added to ``blocks.{layer}.hook_resid_post``."""
    u = direction / direction.norm()

    def hook(resid, hook):
        return resid + alpha * u

    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.hook_resid_post", hook)])


def _hooks(layer: int, direction: torch.Tensor, mode: str, alpha: float = 0.0, positions=None):
    """Forward hooks that edit ``blocks.{layer}.hook_resid_post`` (every position, or one per row)."""
    u = direction / direction.norm()

    def hook(resid, hook):
        edited = project_out(resid, u) if mode == "remove" else resid + alpha * u
        if positions is None:
            return edited
        mask = torch.zeros(resid.shape[:2], dtype=torch.bool)
        mask[torch.arange(resid.shape[0]), positions] = True
        return torch.where(mask[..., None], edited, resid)

    return [(f"blocks.{layer}.hook_resid_post", hook)]


def intervention_effect(model: HookedTransformer, data: TaskData, layer: int, direction: torch.Tensor,
                        mode: str = "remove", alpha: float = 0.0,
                        before: torch.Tensor | None = None) -> dict[str, float]:
    """How the model's margin for the right answer changes when ``direction`` is edited at ``layer``.

    ``mode="remove"`` projects the direction out at every position; ``"steer"`` adds ``alpha`` times
    its unit vector. Returns the mean margin before and after, the mean change and mean absolute
    change, the fraction of the mean margin that is gone, the share of prompts whose answer (which of
    the two words wins) changed, and the model's accuracy (margin > 0) before and after. Pass ``before``
    (:func:`model_logit_diff` without hooks) to save a forward pass.
    """
    before = model_logit_diff(model, data) if before is None else before
    after = model_logit_diff(model, data, _hooks(layer, direction, mode, alpha))
    return {"before": before.mean().item(), "after": after.mean().item(),
            "change": (after - before).mean().item(),
            "mean_abs_change": (after - before).abs().mean().item(),
            "mean_abs_before": before.abs().mean().item(),
            "fraction_removed": 1 - after.mean().item() / before.mean().item(),
            "answers_changed": ((after > 0) != (before > 0)).float().mean().item(),
            "accuracy_before": (before > 0).float().mean().item(),
            "accuracy_after": (after > 0).float().mean().item()}


# =====================================================================================
# A truth probe as a detector
# =====================================================================================

def split_by_subject(examples: list, seed: int = SEED) -> tuple[set, set]:
    """Split the subjects (landmarks and cities) of ``examples`` into two halves, at random but seeded."""
    subjects = sorted({e.labels["subject"] for e in examples})
    order = np.random.default_rng(seed).permutation(len(subjects))
    half = len(subjects) // 2
    return {subjects[i] for i in order[:half]}, {subjects[i] for i in order[half:]}


def false_statement_auroc(probe: LogisticRegression, X: np.ndarray, is_true: np.ndarray) -> float:
    """AUROC of a truth probe used to flag *false* statements.

    Args:
        probe: a fitted binary probe whose class 1 means "true"; X: ``[n, d_model]``; is_true: ``[n]``.

    Returns:
        The area under the ROC curve when the score "this statement is false" is the probe's
        probability of class 0 and the positives are the false statements: 1.0 ranks every false
        statement above every true one, 0.5 is chance.
    """
    p_false = probe.predict_proba(np.asarray(X))[:, 0]
    return float(roc_auc_score(1 - np.asarray(is_true), p_false))


# =====================================================================================
# Present against used: a second attribute, amnesic removal, steering, patching
# =====================================================================================

def orthonormal(directions: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis ``[k, d_model]`` of the span of the rows of ``directions`` ``[k, d_model]``."""
    q, _ = torch.linalg.qr(directions.T)
    return q.T


def project_out_subspace(resid: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Remove the span of the orthonormal rows of ``basis`` ``[k, d_model]`` from ``resid`` ``[..., d_model]``."""
    return resid - (resid @ basis.T) @ basis


def amnesic_basis(X: torch.Tensor, y: np.ndarray, k: int) -> torch.Tensor:
    """Iterative nullspace projection (Ravfogel et al., 2020): ``k`` orthonormal directions ``[k, d_model]``.

    Train a probe, project its direction out of ``X`` ``[n, d_model]``, train a new probe on what is
    left, and so on: what remains after ``k`` rounds is what no linear probe found in ``k`` tries.
    """
    directions = []
    basis = torch.zeros(0, X.shape[1])
    for _ in range(k):
        left = project_out_subspace(X, basis) if len(directions) else X
        directions.append(probe_direction(fit_probe(left.numpy(), y)))
        basis = orthonormal(torch.stack(directions))
    return basis


def subspace_hooks(layer: int, basis: torch.Tensor) -> list:
    """Forward hooks that remove the span of ``basis`` from ``blocks.{layer}.hook_resid_post`` everywhere."""
    return [(f"blocks.{layer}.hook_resid_post", lambda resid, hook: project_out_subspace(resid, basis))]


def steering_curve(model: HookedTransformer, data: TaskData, layer: int, direction: torch.Tensor,
                   alphas: Sequence[float]) -> np.ndarray:
    """Share of prompts whose answer is class 1 (logit of class 1's word above class 0's) when
    ``alpha * unit(direction)`` is added to ``blocks.{layer}.hook_resid_post``, per alpha: ``[len(alphas)]``.

    For binary tasks only (``data.answers`` holds the right and the wrong word of each prompt).
    """
    sign = torch.as_tensor(2 * data.labels - 1)              # +1 when the right answer is class 1
    out = []
    for alpha in alphas:
        margin = model_logit_diff(model, data, _hooks(layer, direction, "steer", alpha))
        out.append(((sign * margin) > 0).float().mean().item())
    return np.array(out)


def flipped_review(example, seed: int = SEED):
    """The same review with every sentiment word swapped for one of the other polarity (same token count)."""
    from helpers import corpus_data as data
    import random

    rng = random.Random(seed)
    pool = data.NEGATIVE_WORDS if example.labels["positive"] else data.POSITIVE_WORDS
    prompt = example.prompt
    for role in sorted((r for r in example.spans if r.startswith("adj")), key=lambda r: -example.spans[r][0]):
        start, end = example.spans[role]
        prompt = prompt[:start] + rng.choice(pool) + prompt[end:]
    return prompt


def patching_by_layer(model: HookedTransformer, data: TaskData, corrupt_prompts: list[str]) -> np.ndarray:
    """Activation patching at the read position, as in lesson 3, for every entry a probe reads.

    For each hook in :func:`resid_hook_names`, run the clean prompts with the residual stream at the
    last token replaced by the one from the matching corrupted prompt, and return how much of the
    clean-to-corrupted change in the margin that one vector brings: ``[n_layers + 1]`` (0 = none,
    1 = all of it). Clean and corrupted prompts must have the same token positions.
    """
    clean = model_logit_diff(model, data)
    corrupt_tokens = _tokens(model, corrupt_prompts)
    names = resid_hook_names(model.cfg.n_layers)
    with torch.no_grad():
        corrupt_logits, cache = model.run_with_cache(corrupt_tokens, names_filter=lambda n: n in names)
    rows, pos = torch.arange(len(corrupt_prompts)), torch.as_tensor(data.positions)
    last = corrupt_logits[rows, pos]
    corrupt = last.gather(1, data.answers[:, :1])[:, 0] - last.gather(1, data.answers[:, 1:])[:, 0]
    out = []
    for name in names:
        def hook(resid, hook, name=name):
            resid = resid.clone()
            resid[rows, pos] = cache[name][rows, pos]
            return resid
        patched = model_logit_diff(model, data, [(name, hook)], batch_size=len(corrupt_prompts))
        out.append(((clean - patched).mean() / (clean - corrupt).mean()).item())
    return np.array(out)


def self_report_scores(model: HookedTransformer, data: TaskData) -> np.ndarray:
    """The model's own verdict as a score for "false": ``logit(" false") - logit(" true")``, ``[n]``."""
    true_id, false_id = answer_ids(model, " true", " false")
    logits = _last_logits(model, data.prompts, data.positions)
    return (logits[:, false_id] - logits[:, true_id]).numpy()


def _last_logits(model: HookedTransformer, prompts: list[str], positions: np.ndarray, batch_size: int = 128):
    rows_out = []
    for start in range(0, len(prompts), batch_size):
        tokens = _tokens(model, prompts[start:start + batch_size])
        with torch.no_grad():
            logits = model(tokens)
        rows_out.append(logits[torch.arange(tokens.shape[0]), torch.as_tensor(positions[start:start + batch_size])])
    return torch.cat(rows_out)


# =====================================================================================
# Plots
# =====================================================================================

LAYER_LABELS = ["embed", "block 0", "block 1", "block 2", "block 3"]


def plot_layer_accuracies(accuracies: dict[str, Sequence[float]], chance: dict[str, float], title: str = "",
                          ax: plt.Axes | None = None) -> plt.Axes:
    """Held-out probe accuracy per layer, one line per attribute, with each one's chance level dotted."""
    ax = ax or plt.subplots(figsize=(7, 3.6))[1]
    for i, (name, acc) in enumerate(accuracies.items()):
        ax.plot(range(len(acc)), acc, "o-", color=f"C{i}", label=name)
        ax.axhline(chance[name], color=f"C{i}", ls=":", lw=1)
    ax.set_xticks(range(len(LAYER_LABELS)), [f"{l}\n(entry {i})" for i, l in enumerate(LAYER_LABELS)])
    ax.set(ylim=(-0.02, 1.05), ylabel="held-out probe accuracy", xlabel="residual stream after ...",
           title=title or "Where does each attribute become linearly readable? (dotted: chance)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    return ax


def plot_controls(results: dict[str, dict[str, Sequence[float]]], baselines: dict[str, float],
                  chance: dict[str, float]) -> plt.Figure:
    """One panel per attribute: the probe by layer on the trained model, the same on a random model,
    the MLP probe, the control task; the bag-of-words baseline and chance as horizontal lines."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.3 * len(results), 3.6), sharey=True)
    styles = {"linear probe": ("C0", "o-"), "MLP probe": ("C1", "s--"), "random-init model": ("C3", "^-"),
              "control task (random labels)": ("C7", "x:")}
    for ax, (task, series) in zip(np.atleast_1d(axes), results.items()):
        for name, values in series.items():
            color, style = styles[name]
            ax.plot(range(len(values)), values, style, color=color, label=name)
        ax.axhline(baselines[task], color="C2", lw=1.5, label="bag of embeddings")
        ax.axhline(chance[task], color="black", ls=":", lw=1, label="chance")
        ax.set_xticks(range(len(LAYER_LABELS)), LAYER_LABELS, rotation=30, fontsize=8)
        ax.set(title=task, ylim=(-0.02, 1.05))
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("held-out accuracy")
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="center right")
    fig.tight_layout()
    return fig


def plot_interventions(effects: dict[str, dict[str, float]], multiples: Sequence[float],
                       steered: dict[str, np.ndarray], layer: int) -> plt.Figure:
    """Left: share of answers that change when a direction is removed. Right: steering curves."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1.2, 1]})
    names = list(effects)
    ax1.bar(range(len(names)), [effects[n]["answers_changed"] for n in names],
            color=["C3" if "random" not in n else "grey" for n in names])
    ax1.set_xticks(range(len(names)), [n.replace(": ", ":\n") for n in names], fontsize=8)
    ax1.set(ylabel="share of answers that changed", ylim=(0, 1), title=f"Remove one direction after block {layer}")
    ax1.grid(alpha=0.3, axis="y")
    for i, (name, curve) in enumerate(steered.items()):
        ax2.plot(multiples, curve, "o-", color=f"C{i}", label=name)
    ax2.axhline(0.5, color="grey", ls=":", lw=1)
    ax2.set(xlabel="alpha, in gaps between the two classes' means along the direction",
            ylabel="share answered with class 1's word", title=f"Steer along it after block {layer}",
            ylim=(-0.02, 1.02))
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_probe_and_patching(probe_acc: Sequence[float], patched: Sequence[float]) -> plt.Axes:
    """Probe accuracy (information present) beside patching at the same vector (information used)."""
    ax = plt.subplots(figsize=(7, 3.4))[1]
    ax.plot(range(len(probe_acc)), probe_acc, "o-", label="probe accuracy (is it there?)")
    ax.plot(range(len(patched)), patched, "s-", color="C3", label="share of the answer moved by patching\n"
                                                                   "that one vector (was it used here?)")
    ax.set_xticks(range(len(LAYER_LABELS)), LAYER_LABELS)
    ax.set(ylim=(-0.05, 1.05), xlabel="residual stream at the last token, after ...", title="Sentiment: present vs used")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_roc(is_true: np.ndarray, scores: dict[str, np.ndarray]) -> plt.Axes:
    """ROC curves for flagging false statements, one per score (higher = "more likely false")."""
    from sklearn.metrics import roc_curve

    ax = plt.subplots(figsize=(4.2, 4))[1]
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(1 - np.asarray(is_true), score)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {roc_auc_score(1 - np.asarray(is_true), score):.2f})")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.set(xlabel="true statements flagged (false-positive rate)", ylabel="false statements caught (recall)",
           title="Flagging false statements (held-out facts)")
    ax.legend(fontsize=8, loc="lower right")
    return ax


# =====================================================================================
# Checks, one per workbook exercise
# =====================================================================================

@lru_cache(maxsize=1)
def _check_model() -> HookedTransformer:
    """The course model for the checks, loaded once per process."""
    from helpers import load_model

    return load_model("course-4l")


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- Exercise 1: gather the residual stream at the last prompt token ---

def last_token_resid(model: HookedTransformer, examples: list) -> torch.Tensor:
    """Reference for exercise 1: ``[n_layers + 1, n_examples, d_model]`` at each prompt's last token."""
    positions = [corpus.token_positions(e, model.tokenizer)["end"] for e in examples]
    return gather_resid(model, [e.prompt for e in examples], positions)


def _stacked(cache, names: list[str], rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    return torch.stack([cache[name][rows, pos] for name in names])


def _resid_variant(model: HookedTransformer, examples: list, *, text: bool = False, read: str = "end",
                   names: str = "all", runs: dict | None = None) -> torch.Tensor:
    """What a learner gets with one slip: running the text (answer included), reading the wrong position...

    ``runs`` keeps each forward pass (per model and texts) for the other variants: the check's six
    mistakes then cost two forward passes, not six, and a wrong answer is judged about as fast as a right one.
    """
    texts = [e.text if text else e.prompt for e in examples]
    tokens = model.to_tokens(texts, padding_side="right")
    end = torch.tensor([corpus.token_positions(e, model.tokenizer)["end"] for e in examples])
    pos = {"end": end, "last": torch.full_like(end, tokens.shape[1] - 1), "no-bos": end - 1,
           "answer": end + 1}[read]
    pre = [f"blocks.{l}.hook_resid_pre" for l in range(model.cfg.n_layers)]
    post = [f"blocks.{l}.hook_resid_post" for l in range(model.cfg.n_layers)]
    hook_names = {"all": resid_hook_names(model.cfg.n_layers), "post": post, "pre": pre}[names]
    runs = {} if runs is None else runs
    key = (id(model), tuple(texts))
    if key not in runs:
        with torch.no_grad():
            runs[key] = model.run_with_cache(tokens, names_filter=lambda n: n in pre + post,
                                             stop_at_layer=model.cfg.n_layers)[1]      # no unembedding needed
    return _stacked(runs[key], hook_names, torch.arange(len(examples)), pos)


def _resid_cases() -> list[Case]:
    mixed = (corpus.truth_examples(2, "test", seed=5) + corpus.review_examples(2, "test", seed=5)
             + corpus.ioi_examples(2, "test", seed=5))
    same = corpus.truth_examples(3, "train", seed=6)
    model = _check_model()
    return [Case((model, mixed), label="6 prompts of different lengths (truth, reviews, IOI)"),
            Case((model, same), label="3 true/false statements")]


@single_threaded
def check_last_token_resid(learner_fn: Callable) -> CheckResult:
    """Exercise 1: the residual stream at each prompt's last token, embeddings then every block's output."""
    leak = ("the vectors you read have already seen the answer word (' true', ' positive'...): the label "
            "leaked in through the position. Run e.prompt, or read position token_positions(e, ...)['end']")
    runs: dict = {}                                        # the mistakes' forward passes, shared between them
    variant = functools.partial(_resid_variant, runs=runs)
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
        "post-only": (lambda m, ex: variant(m, ex, names="post"),
                      "entry 0 is missing: start with the embeddings, blocks.0.hook_resid_pre, then every "
                      "block's output, blocks.{l}.hook_resid_post"),
        "pre-only": (lambda m, ex: variant(m, ex, names="pre"),
                     "the last block's output is missing: after the embeddings (blocks.0.hook_resid_pre) take "
                     "blocks.{l}.hook_resid_post for every layer l, the last one included"),
    }
    return check_function(learner_fn, last_token_resid, _resid_cases(), name="last_token_resid",
                          known_mistakes=mistakes, atol=1e-4, rtol=1e-4,
                          hint="stack [cache['blocks.0.hook_resid_pre'], cache['blocks.0.hook_resid_post'], ...] "
                               "read at rows arange(n) and each prompt's 'end' position")


# --- Exercise 2: a probe trained on one split and scored on the other ---

def _probe_cases() -> list[Case]:
    cases = []
    for i, (n_train, n_test, d, signal) in enumerate([(40, 200, 30, 0.6), (60, 150, 50, 0.5), (30, 100, 20, 0.8)]):
        g = _rng(700 + i)
        w = g.normal(size=d)
        X = g.normal(size=(n_train + n_test, d))
        y = (X @ w * signal + g.normal(size=n_train + n_test) * 3 > 0).astype(int)
        cases.append(Case((X[:n_train], y[:n_train], X[n_train:], y[n_train:]),
                          label=f"{n_train} training and {n_test} held-out examples, {d} dimensions"))
    return cases


@single_threaded
def check_probe_accuracy(learner_fn: Callable) -> CheckResult:
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
    return check_function(learner_fn, probe_accuracy, _probe_cases(), name="probe_accuracy",
                          known_mistakes=mistakes, atol=1e-9, rtol=0,
                          hint="LogisticRegression(max_iter=1000).fit(X_train, y_train).score(X_test, y_test)")


# --- Exercise 3: selectivity against a control task ---

def _selectivity_cases() -> list[Case]:
    cases = []
    for i, (n_types, n_train, n_test, d) in enumerate([(12, 120, 90, 16), (20, 150, 60, 24)]):
        g = _rng(800 + i)
        centres = g.normal(size=(n_types, d)) * 1.5
        w = g.normal(size=d)
        def make(n, held):
            pool = np.arange(n_types) if not held else np.arange(2, n_types)   # types 0, 1 unseen in test
            t = g.choice(pool, size=n)
            X = centres[t] + g.normal(size=(n, d))
            y = (X @ w + g.normal(size=n) * 2 > 0).astype(int)
            return X, y, [f"type{k:02d}" for k in t]
        Xa, ya, ta = make(n_train, False)
        Xb, yb, tb = make(n_test, True)
        cases.append(Case((Xa, ya, ta, Xb, yb, tb), kwargs={"seed": i},
                          label=f"{n_types} types, {n_train} training and {n_test} held-out examples"))
    # three classes, the third one missing from the held-out split: the task still has 3 classes
    g = _rng(802)
    centres, w = g.normal(size=(15, 16)) * 1.5, g.normal(size=16)
    t = g.choice(15, size=400)
    X = centres[t] + g.normal(size=(400, 16))
    y = np.digitize(X @ w + g.normal(size=400) * 2, np.quantile(X @ w, [1 / 3, 2 / 3]))
    test = np.flatnonzero(y < 2)[:80]
    train = np.setdiff1d(np.arange(400), test)[:160]
    types = [f"type{k:02d}" for k in t]
    cases.append(Case((X[train], y[train], [types[k] for k in train], X[test], y[test], [types[k] for k in test]),
                      kwargs={"seed": 2}, label="3 classes, the held-out split has only classes 0 and 1"))
    return cases


def _selectivity_variant(Xa, ya, ta, Xb, yb, tb, seed=SEED, *, control: str = "joint", score_on: str = "test",
                         flip: bool = False, count: Callable = max):
    n_classes = int(count(ya.max(), yb.max())) + 1
    if control == "joint":
        c = control_labels(list(ta) + list(tb), n_classes, seed)
        ca, cb = c[:len(ta)], c[len(ta):]
    elif control == "separate":
        ca, cb = control_labels(ta, n_classes, seed), control_labels(tb, n_classes, seed)
    else:                                                  # a fresh random label for every example
        c = np.random.default_rng(seed).integers(0, n_classes, len(ta) + len(tb))
        ca, cb = c[:len(ta)], c[len(ta):]
    task = probe_accuracy(Xa, ya, Xb, yb)
    ctrl = probe_accuracy(Xa, ca, Xa, ca) if score_on == "train" else probe_accuracy(Xa, ca, Xb, cb)
    return task, ctrl, (ctrl - task) if flip else (task - ctrl)


@single_threaded
def check_selectivity(learner_fn: Callable) -> CheckResult:
    """Exercise 3: task accuracy, control-task accuracy, and their difference."""
    mistakes = {
        "separate": (lambda *a, **k: _selectivity_variant(*a, **k, control="separate"),
                     "a type must keep its random label in both splits: call control_labels once, on the "
                     "types of both splits together (types_train + types_test), then cut the result in two"),
        "per-example": (lambda *a, **k: _selectivity_variant(*a, **k, control="per-example"),
                        "you gave every example its own random label: the control task gives every *type* "
                        "one random label (control_labels), so a probe can learn it by memorising types"),
        "control-on-train": (lambda *a, **k: _selectivity_variant(*a, **k, score_on="train"),
                             "you scored the control probe on its training examples: score both probes on the "
                             "held-out split"),
        "flipped": (lambda *a, **k: _selectivity_variant(*a, **k, flip=True),
                    "the sign of the selectivity is flipped: it is task accuracy minus control accuracy"),
        "min-classes": (lambda *a, **k: _selectivity_variant(*a, **k, count=min),
                        "you counted the classes with min: a split can miss a class (here the held-out one has "
                        "no class 2), so the task has max(y_train.max(), y_test.max()) + 1 classes"),
    }
    return check_function(learner_fn, selectivity, _selectivity_cases(), name="selectivity",
                          known_mistakes=mistakes, atol=1e-9, rtol=0,
                          hint="return (task_accuracy, control_accuracy, task_accuracy - control_accuracy)")


# --- Exercise 4a: project a direction out ---

def _projection_cases() -> list[Case]:
    g = torch.Generator().manual_seed(900)
    resid = torch.randn(2, 5, 8, generator=g)
    along = torch.randn(8, generator=g)
    parallel = torch.stack([2.0 * along, -0.5 * along, torch.randn(8, generator=g)])
    return [Case((resid, 3.0 * torch.randn(8, generator=g)), label="[2, 5, 8] residual, direction of length ~8"),
            Case((torch.randn(6, 4, generator=g), torch.tensor([0.3, 0.0, -0.4, 0.0])),
                 label="[6, 4] residual, direction of length 0.5"),
            Case((parallel, along), label="rows parallel to the direction")]


@single_threaded
def check_project_out(learner_fn: Callable) -> CheckResult:
    """Exercise 4a: ``resid - (resid . u) u`` with ``u`` the unit direction."""
    not_idempotent = ("your projection is not idempotent (projecting twice changes the result again): the "
                      "formula resid - (resid . u) u needs a unit vector u = direction / direction.norm()")
    mistakes = {
        "unnormalised": (lambda r, d: r - (r @ d)[..., None] * d, not_idempotent),
        "half-normalised": (lambda r, d: r - (r @ d)[..., None] * d / d.norm(), not_idempotent),
        "component": (lambda r, d: (r @ (d / d.norm()))[..., None] * (d / d.norm()),
                      "you returned the component along the direction: return what is left, resid minus it"),
        "subtract-direction": (lambda r, d: r - d / d.norm(),
                               "you subtracted the same vector from every position: remove each vector's own "
                               "component along the direction, (resid . u) u"),
        "subtract-raw": (lambda r, d: r - d,
                         "you subtracted the same vector from every position: remove each vector's own "
                         "component along the direction, (resid . u) u"),
    }
    return check_function(learner_fn, project_out, _projection_cases(), name="project_out",
                          known_mistakes=mistakes, atol=1e-5, rtol=1e-4,
                          hint="u = direction / direction.norm(); resid - (resid @ u)[..., None] * u")


# --- Exercise 4b: the same, inside the model, with a hook ---

def _edited_logits(model, tokens, layer, direction, *, hook_name="hook_resid_post", last_only=False, unit=True):
    u = direction / direction.norm() if unit else direction

    def hook(resid, hook):
        edited = resid - (resid @ u)[..., None] * u
        if last_only:
            edited = torch.cat([resid[:, :-1], edited[:, -1:]], dim=1)
        return edited

    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.{hook_name}", hook)])


def _hook_cases() -> list[Case]:
    model = _check_model()
    data = task_data("sentiment", "test", 3, model.tokenizer, seed=11)
    acts = gather_resid(model, data.prompts, data.positions)
    g = torch.Generator().manual_seed(901)
    sentiment = acts[2].mean(0) - acts[2][0]                          # a direction with a visible effect
    tokens = model.to_tokens(data.prompts, padding_side="right")
    short = model.to_tokens(["The Eiffel Tower is in the city of Paris. This statement is"])
    return [Case((model, tokens, 1, 4.0 * sentiment / sentiment.norm()), label="3 reviews, layer 1"),
            Case((model, short, 0, 2.5 * torch.randn(model.cfg.d_model, generator=g)),
                 label="1 statement, layer 0, random direction"),
            Case((model, tokens, 3, 0.5 * sentiment / sentiment.norm()), label="3 reviews, layer 3")]


@single_threaded
def check_logits_without_direction(learner_fn: Callable) -> CheckResult:
    """Exercise 4b: a hook on ``blocks.{layer}.hook_resid_post`` that projects the direction out everywhere."""
    mistakes = {
        "resid-pre": (lambda m, t, l, d: _edited_logits(m, t, l, d, hook_name="hook_resid_pre"),
                      "you edited the block's input (hook_resid_pre): edit its output, "
                      "f'blocks.{layer}.hook_resid_post'"),
        "resid-mid": (lambda m, t, l, d: _edited_logits(m, t, l, d, hook_name="hook_resid_mid"),
                      "you edited the middle of the block (hook_resid_mid): edit its output, "
                      "f'blocks.{layer}.hook_resid_post'"),
        "last-only": (lambda m, t, l, d: _edited_logits(m, t, l, d, last_only=True),
                      "you edited only the last position: remove the direction at every position"),
        "unnormalised": (lambda m, t, l, d: _edited_logits(m, t, l, d, unit=False),
                         "your projection is not idempotent: normalise the direction to unit length first "
                         "(your project_out from exercise 4a does it)"),
        "no-edit": (lambda m, t, l, d: m(t),
                    "these are the model's ordinary logits: your hook must *return* the edited tensor "
                    "(and be passed in fwd_hooks=[(name, hook)])"),
    }
    return check_function(learner_fn, logits_without_direction, _hook_cases(), name="logits_without_direction",
                          known_mistakes=mistakes, atol=1e-3, rtol=1e-4,
                          hint="model.run_with_hooks(tokens, fwd_hooks=[(f'blocks.{layer}.hook_resid_post', hook)]) "
                               "with a hook that returns project_out(resid, direction)")


# --- Exercise 5: AUROC of the truth probe ---

def _auroc_cases() -> list[Case]:
    cases = []
    for i, (n_train, n_test, d, noise) in enumerate([(200, 120, 10, 2.0), (150, 90, 6, 3.0)]):
        g = _rng(950 + i)
        w = g.normal(size=d)
        X = g.normal(size=(n_train + n_test, d))
        y = (X @ w + g.normal(size=n_train + n_test) * noise > 1.0).astype(int)     # more false than true
        probe = fit_probe(X[:n_train], y[:n_train])
        cases.append(Case((probe, X[n_train:], y[n_train:]),
                          label=f"{n_test} held-out statements, {int((1 - y[n_train:]).sum())} false"))
    return cases


@single_threaded
def check_false_statement_auroc(learner_fn: Callable) -> CheckResult:
    """Exercise 5: AUROC with the false statements as positives and P(false) as the score."""
    def p_false(probe, X):
        return probe.predict_proba(X)[:, 0]
    flipped = ("the sign is flipped (your AUROC is 1 minus the right one): the positives are the *false* "
               "statements (1 - is_true) and the score must rise with the chance of false, predict_proba(X)[:, 0]")
    mistakes = {
        "flipped-labels": (lambda p, X, t: float(roc_auc_score(t, p_false(p, X))), flipped),
        "flipped-score": (lambda p, X, t: float(roc_auc_score(1 - t, p.predict_proba(X)[:, 1])), flipped),
        "hard": (lambda p, X, t: float(roc_auc_score(1 - t, 1 - p.predict(X))),
                 "you scored hard 0/1 predictions: an ROC curve needs a graded score, the probability "
                 "predict_proba(X)[:, 0], to sweep the threshold"),
        "accuracy": (lambda p, X, t: float(p.score(X, t)),
                     "that is the probe's accuracy, not the area under the ROC curve (roc_auc_score)"),
    }
    return check_function(learner_fn, false_statement_auroc, _auroc_cases(), name="false_statement_auroc",
                          known_mistakes=mistakes, atol=1e-9, rtol=0,
                          hint="roc_auc_score(1 - is_true, probe.predict_proba(X)[:, 0])")
