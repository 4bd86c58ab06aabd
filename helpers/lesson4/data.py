"""Lesson 4's data: labelled prompt sets, the token a probe reads, the answers the model gives, and activations.

Three attributes (:data:`TASKS`): a review's sentiment, a statement's truth, the IOI indirect object's name.
:func:`task_data` builds one split of one of them; :func:`gather_resid` reads the residual stream at each
prompt's last token with ``run_with_cache(..., names_filter=...)``.

Shapes: ``[batch, d_model]`` is one activation vector per prompt; ``[layer, batch, d_model]`` stacks the
embeddings (row 0, ``blocks.0.hook_resid_pre``) and the residual stream after every block (row ``l + 1``,
``blocks.l.hook_resid_post``), so its first dimension is ``n_layers + 1``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers import corpus
from helpers.corpus import Example, Split
from helpers.corpus_data import NAMES

__all__ = ["SEED", "Task", "TASKS", "TaskData", "token_id", "task_data", "answer_ids", "resid_hook_names",
           "padded_tokens", "gather_resid", "last_logits"]

SEED = 0

Task = Literal["sentiment", "truth", "io_name"]
TASKS: dict[Task, str] = {
    "sentiment": "Is the review positive? (read at the last token, 'is')",
    "truth": "Is the statement true? (read at the last token, 'is')",
    "io_name": "Which name is the indirect object? (read at the last token, 'to'; 48 names)",
}


@dataclass(frozen=True)
class TaskData:
    """One attribute's prompts and labels for one split.

    ``labels`` holds class ids; ``positions`` the index (BOS counted) of each prompt's last token, the one that
    predicts the answer; ``types`` the surface type of each example (what the control task maps to a random
    label); ``answers`` the token ids of the right and the wrong answer, so ``logit[answers[:, 0]] -
    logit[answers[:, 1]]`` is the model's own margin for the right answer.
    """

    name: Task
    examples: list[Example]
    labels: Int[np.ndarray, "example"]
    positions: Int[np.ndarray, "example"]
    types: list[str]
    answers: Int[Tensor, "example 2"]
    classes: list[str]

    @property
    def prompts(self) -> list[str]:
        return [e.prompt for e in self.examples]


def token_id(tokenizer, word: str) -> int:
    """The id of the first token of ``word`` (with its leading space, if any)."""
    return tokenizer(word, add_special_tokens=False)["input_ids"][0]


def task_data(task: Task, split: Split, n: int, tokenizer, seed: int = SEED,
              examples: list[Example] | None = None) -> TaskData:
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
    answers = torch.tensor([[token_id(tokenizer, r), token_id(tokenizer, w)] for r, w in zip(right, wrong)])
    return TaskData(task, list(examples), np.array(labels), np.array(positions), types, answers, classes)


def answer_ids(model: HookedTransformer, yes: str, no: str) -> tuple[int, int]:
    """Token ids of two answer words (with their leading space)."""
    return token_id(model.tokenizer, yes), token_id(model.tokenizer, no)


def resid_hook_names(n_layers: int) -> list[str]:
    """The hooks a probe reads: the embeddings, then every block's output (``n_layers + 1`` names)."""
    return ["blocks.0.hook_resid_pre", *[f"blocks.{layer}.hook_resid_post" for layer in range(n_layers)]]


def padded_tokens(model: HookedTransformer, prompts: Sequence[str]) -> Int[Tensor, "batch pos"]:
    """Prompts padded on the right, so position i is the same token index in every prompt."""
    return model.to_tokens(list(prompts), padding_side="right")


def gather_resid(model: HookedTransformer, prompts: Sequence[str],
                 positions: Int[np.ndarray, "batch"] | Sequence[int],
                 batch_size: int = 128) -> Float[Tensor, "layer batch d_model"]:
    """The residual stream at one token of each prompt, before block 0 and after every block.

    Args:
        prompts: ``n`` prompts; they are padded on the right, so shorter ones end in pad tokens.
        positions: ``[n]``, the token index to read in each prompt (BOS counted).

    Returns:
        ``[n_layers + 1, n, d_model]``: row 0 is ``blocks.0.hook_resid_pre`` (the embeddings: token plus
        position), row ``l + 1`` is ``blocks.l.hook_resid_post`` (the residual stream after block ``l``).
    """
    names = resid_hook_names(model.cfg.n_layers)
    read_at = torch.as_tensor(np.asarray(positions))
    chunks = []
    for start in range(0, len(prompts), batch_size):
        tokens = padded_tokens(model, prompts[start:start + batch_size])
        rows = torch.arange(tokens.shape[0])
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names,
                                            stop_at_layer=model.cfg.n_layers)   # no unembedding needed
        pos = read_at[start:start + batch_size]
        chunks.append(torch.stack([cache[name][rows, pos] for name in names]))     # [layer, batch, d_model]
    return torch.cat(chunks, dim=1)


def last_logits(model: HookedTransformer, prompts: Sequence[str], positions: Int[np.ndarray, "batch"],
                batch_size: int = 128) -> Float[Tensor, "batch d_vocab"]:
    """The model's logits at one token of each prompt (``positions``, BOS counted)."""
    rows_out = []
    for start in range(0, len(prompts), batch_size):
        tokens = padded_tokens(model, prompts[start:start + batch_size])
        with torch.no_grad():
            logits = model(tokens)
        rows_out.append(logits[torch.arange(tokens.shape[0]), torch.as_tensor(positions[start:start + batch_size])])
    return torch.cat(rows_out)
