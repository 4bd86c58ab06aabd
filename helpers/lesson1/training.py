"""Lesson 1b's training curve: what a checkpoint scores, and the record of every 50-step snapshot.

``scripts/export_checkpoints.py`` measures every snapshot of a training run with :func:`measure_checkpoint`
and writes the results into ``models/attn-only-2l-checkpoints/checkpoints.json``; the lesson reads them back
with :func:`training_curve` and re-measures a few shipped checkpoints (``helpers.models.load_checkpoint``)
with the same function.

    >>> curve = training_curve()
    >>> phase_change_step(curve)        # first step whose best induction score passes half its final value
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from transformer_lens import HookedTransformer

from helpers.lesson1.analysis import Head, best_head
from helpers.metrics import induction_and_prev_token_scores, repeated_sequence_losses
from helpers.models import CHECKPOINTS_DIR, checkpoint_index

__all__ = ["MEASURE", "CheckpointScores", "TrainingCurve", "measure_checkpoint", "training_curve",
           "phase_change_step"]

MEASURE = dict(n_seqs=50, half_len=25, seed=0)   # the repeated random tokens every checkpoint is measured on


class CheckpointScores(NamedTuple):
    """What one checkpoint does on random tokens repeated once (``MEASURE``)."""

    repeated_loss: float        # mean loss on the second (repeated) copy, in nats
    first_loss: float           # mean loss on the first copy
    best_induction: float       # the largest induction score of any head
    best_prev_token: float      # the largest previous-token score of any head
    induction_head: Head        # the head with that induction score
    prev_token_head: Head       # the head with that previous-token score


class TrainingCurve(NamedTuple):
    """The scores of every 50-step snapshot of the run, as recorded in ``checkpoints.json``."""

    steps: list[int]
    repeated_loss: list[float]
    first_loss: list[float]
    best_induction: list[float]
    best_prev_token: list[float]


@torch.no_grad()
def measure_checkpoint(model: HookedTransformer) -> CheckpointScores:
    """Loss on each copy and the best induction and previous-token scores, on the repeated tokens of ``MEASURE``."""
    induction, prev_token = induction_and_prev_token_scores(model, **MEASURE)
    first, second = repeated_sequence_losses(model, **MEASURE)
    return CheckpointScores(second, first, induction.max().item(), prev_token.max().item(),
                            best_head(induction), best_head(prev_token))


def training_curve(folder: Path = CHECKPOINTS_DIR) -> TrainingCurve:
    """The recorded curve: one entry per 50-step snapshot of the run, step 0 (the initialisation) included."""
    rows = checkpoint_index(folder)["curve"]
    return TrainingCurve([r["step"] for r in rows], [r["repeated_loss"] for r in rows],
                         [r["first_loss"] for r in rows], [r["best_induction"] for r in rows],
                         [r["best_prev_token"] for r in rows])


def phase_change_step(curve: TrainingCurve, share: float = 0.5) -> int:
    """The first recorded step whose best induction score passes ``share`` of its final value."""
    final = curve.best_induction[-1]
    return next(step for step, score in zip(curve.steps, curve.best_induction) if score >= share * final)
