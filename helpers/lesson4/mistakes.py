"""Natural wrong answers to workbook 4's exercises, for the checks to name.

Each builder computes what a learner who made one slip would return, so that a check can tell the learner which
mistake their output matches. The tests (``tests/test_lesson4.py``) write their wrong answers as a learner would,
independently of these.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer
from transformer_lens.ActivationCache import ActivationCache

from helpers import corpus
from helpers.corpus import Example
from helpers.lesson4.data import SEED, resid_hook_names
from helpers.lesson4.reference import Selectivity, control_labels, probe_accuracy

__all__ = ["ReadAt", "Entries", "resid_variant", "ControlKind", "selectivity_variant", "edited_logits"]

ReadAt = Literal["end", "last", "no-bos", "answer"]
"""Which token a wrong answer reads: each prompt's last token (right), the padded batch's last position, the token
before the right one, or the answer word's position (with the answer in the text)."""
Entries = Literal["all", "post", "pre"]
"""Which hooks a wrong answer stacks: the embeddings and every block's output (right), the outputs only, the inputs
only."""
ControlKind = Literal["joint", "separate", "per-example"]
"""How a wrong answer draws the control task: once over both splits (right), per split, or per example."""


# ============================================================================ exercise 1
def resid_variant(model: HookedTransformer, examples: Sequence[Example], *, text: bool = False, read: ReadAt = "end",
                  entries: Entries = "all", runs: dict[tuple, ActivationCache] | None = None
                  ) -> Float[Tensor, "layer batch d_model"]:
    """What a learner gets with one slip: running the text (answer included), reading the wrong position, or
    stacking the wrong hooks.

    ``runs`` keeps each forward pass (per model and texts) for the other variants: the check's six mistakes then
    cost two forward passes, not six, and a wrong answer is judged about as fast as a right one.
    """
    texts = [e.text if text else e.prompt for e in examples]
    tokens = model.to_tokens(texts, padding_side="right")
    end = torch.tensor([corpus.token_positions(e, model.tokenizer)["end"] for e in examples])
    pos = {"end": end, "last": torch.full_like(end, tokens.shape[1] - 1), "no-bos": end - 1, "answer": end + 1}[read]
    pre = [f"blocks.{layer}.hook_resid_pre" for layer in range(model.cfg.n_layers)]
    post = [f"blocks.{layer}.hook_resid_post" for layer in range(model.cfg.n_layers)]
    hook_names = {"all": resid_hook_names(model.cfg.n_layers), "post": post, "pre": pre}[entries]
    runs = {} if runs is None else runs
    key = (id(model), tuple(texts))
    if key not in runs:
        with torch.no_grad():
            runs[key] = model.run_with_cache(tokens, names_filter=lambda n: n in pre + post,
                                             stop_at_layer=model.cfg.n_layers)[1]      # no unembedding needed
    rows = torch.arange(len(examples))
    return torch.stack([runs[key][name][rows, pos] for name in hook_names])


# ============================================================================ exercise 3
def selectivity_variant(X_train: Float[np.ndarray, "example d_model"], y_train: Int[np.ndarray, "example"],
                        types_train: Sequence[str], X_test: Float[np.ndarray, "_example d_model"],
                        y_test: Int[np.ndarray, "_example"], types_test: Sequence[str], seed: int = SEED, *,
                        control: ControlKind = "joint", score_on: Literal["test", "train"] = "test",
                        flip: bool = False, count: Callable[..., Any] = max,
                        classes_of: Literal["labels", "types"] = "labels") -> Selectivity:
    """``selectivity`` with one slip: the control task drawn the wrong way, the control probe scored on its
    training split, the difference flipped, the classes counted with ``min``, or as many classes as types."""
    n_classes = int(count(y_train.max(), y_test.max())) + 1
    if classes_of == "types":
        n_classes = len(set(types_train) | set(types_test))
    n = len(types_train)
    if control == "joint":
        c = control_labels(list(types_train) + list(types_test), n_classes, seed)
        c_train, c_test = c[:n], c[n:]
    elif control == "separate":
        c_train, c_test = control_labels(types_train, n_classes, seed), control_labels(types_test, n_classes, seed)
    else:                                                  # a fresh random label for every example
        c = np.random.default_rng(seed).integers(0, n_classes, n + len(types_test))
        c_train, c_test = c[:n], c[n:]
    task = probe_accuracy(X_train, y_train, X_test, y_test)
    if score_on == "train":
        ctrl = probe_accuracy(X_train, c_train, X_train, c_train)
    else:
        ctrl = probe_accuracy(X_train, c_train, X_test, c_test)
    return Selectivity(task, ctrl, (ctrl - task) if flip else (task - ctrl))


# ============================================================================ exercise 4b
def edited_logits(model: HookedTransformer, tokens: Int[Tensor, "batch pos"], layer: int,
                  direction: Float[Tensor, "d_model"], *,
                  hook_name: Literal["hook_resid_pre", "hook_resid_mid", "hook_resid_post"] = "hook_resid_post",
                  last_only: bool = False, unit: bool = True) -> Float[Tensor, "batch pos d_vocab"]:
    """``logits_without_direction`` with one slip: the wrong hook of the block, only the last position edited,
    or the direction left at its length."""
    u = direction / direction.norm() if unit else direction

    def hook(resid, hook):
        edited = resid - (resid @ u)[..., None] * u
        if last_only:
            edited = torch.cat([resid[:, :-1], edited[:, -1:]], dim=1)
        return edited

    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.{hook_name}", hook)])
