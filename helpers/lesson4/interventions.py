"""Section 5 of lesson 4, present against used: what the interventions need besides the hooks themselves.

The notebook writes the hooks and the ``model.run_with_hooks`` calls in its cells (remove a direction, remove
a subspace, steer, patch the last token). This module holds the linear algebra (:func:`orthonormal`,
:func:`project_out_subspace`, :func:`amnesic_basis`: iterative nullspace projection), the counterfactual
prompts patching needs (:func:`flipped_review`, :func:`relation_donors`), and the named results the cells
summarise their runs in (:class:`InterventionEffect`, :class:`Removal`, :class:`SteeringCurve`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from helpers import corpus_data
from helpers.corpus import Example
from helpers.lesson4.data import SEED
from helpers.lesson4.probes import probe_direction
from helpers.lesson4.reference import fit_probe

__all__ = ["orthonormal", "project_out_subspace", "amnesic_basis", "flipped_review", "relation_donors", "Pairs",
           "InterventionEffect",
           "intervention_effect", "CONFIDENT", "Removal", "SteeringCurve"]


def orthonormal(directions: Float[Tensor, "direction d_model"]) -> Float[Tensor, "direction d_model"]:
    """An orthonormal basis of the span of the rows of ``directions`` (as many rows, if they are independent)."""
    q, _ = torch.linalg.qr(directions.T)
    return q.T


def project_out_subspace(resid: Float[Tensor, "*batch d_model"], basis: Float[Tensor, "direction d_model"]
                         ) -> Float[Tensor, "*batch d_model"]:
    """Remove the span of the orthonormal rows of ``basis`` from every vector of ``resid``."""
    return resid - (resid @ basis.T) @ basis


def amnesic_basis(X: Float[Tensor, "example d_model"], y: Int[np.ndarray, "example"], k: int
                  ) -> Float[Tensor, "direction d_model"]:
    """Iterative nullspace projection (Ravfogel et al., 2020): ``k`` orthonormal directions.

    Train a probe, project its direction out of ``X``, train a new probe on what is left, and so on: what
    remains after ``k`` rounds is what no linear probe found in ``k`` tries.
    """
    directions: list[Tensor] = []
    basis = torch.zeros(0, X.shape[1])                         # no direction found yet
    for _ in range(k):
        # project_out_subspace: X with the span of the directions found so far removed (X itself at first)
        left = project_out_subspace(X, basis) if len(directions) else X
        probe = fit_probe(left.numpy(), y)                     # fit_probe: a logistic-regression probe on what is left
        directions.append(probe_direction(probe))              # probe_direction: its weight vector, scaled to length 1
        basis = orthonormal(torch.stack(directions))           # orthonormal: the same span, as orthonormal rows (QR)
    return basis


def flipped_review(example: Example, seed: int = SEED) -> str:
    """The same review with every sentiment word swapped for one of the other polarity (same token count)."""
    rng = random.Random(seed)
    pool = corpus_data.NEGATIVE_WORDS if example.labels["positive"] else corpus_data.POSITIVE_WORDS
    prompt = example.prompt
    for role in sorted((r for r in example.spans if r.startswith("adj")), key=lambda r: -example.spans[r][0]):
        start, end = example.spans[role]
        prompt = prompt[:start] + rng.choice(pool) + prompt[end:]
    return prompt


class Pairs(NamedTuple):
    """Indices into one prompt set: ``clean[i]`` is patched with the run of ``donor[i]``."""

    clean: Int[np.ndarray, "batch"]
    donor: Int[np.ndarray, "batch"]


def relation_donors(examples: list[Example], positions: Int[np.ndarray, "example"], seed: int = SEED) -> Pairs:
    """Pair true/false statements with a donor of the other relation and the other truth value.

    For each statement (a city fact or a country fact), draw one statement of the other relation whose truth
    value is the opposite and whose last prompt token sits at the same position (so both runs read the same
    position embedding there). Statements with no such partner are left out.
    """
    rng = np.random.default_rng(seed)
    relation = np.array([e.labels["relation"] for e in examples])
    is_true = np.array([bool(e.labels["true"]) for e in examples])
    positions = np.asarray(positions)
    clean, donor = [], []
    for i in range(len(examples)):
        partners = np.flatnonzero((relation != relation[i]) & (is_true != is_true[i]) & (positions == positions[i]))
        if len(partners):
            clean.append(i)
            donor.append(int(rng.choice(partners)))
    return Pairs(np.array(clean, dtype=int), np.array(donor, dtype=int))


@dataclass(frozen=True)
class InterventionEffect:
    """How the model's margin for the right answer (``logit(right) - logit(wrong)``) moved under an edit."""

    before: float              # the mean margin, nothing edited
    after: float               # the mean margin, edited
    change: float              # the mean of after - before
    mean_abs_change: float     # the mean of |after - before|
    mean_abs_before: float     # the mean |margin|, nothing edited: how far from zero a typical answer is
    fraction_removed: float    # 1 - after / before, of the means
    answers_changed: float     # the share of prompts whose answer (which of the two words wins) changed
    accuracy_before: float     # the share answered right (margin > 0), nothing edited
    accuracy_after: float      # the same, edited
    confident_changed: float         # among prompts answered with |margin| > CONFIDENT logits unedited, the share
                                     # whose answer changed (answers that close to zero flip on rounding alone)


CONFIDENT = 1.0       # logits: a margin larger than this is far from any rounding of the last bits


def intervention_effect(before: Float[Tensor, "example"], after: Float[Tensor, "example"]) -> InterventionEffect:
    """Summarise the margins of the same prompts without (``before``) and with (``after``) an intervention."""
    return InterventionEffect(
        before=before.mean().item(), after=after.mean().item(), change=(after - before).mean().item(),
        mean_abs_change=(after - before).abs().mean().item(), mean_abs_before=before.abs().mean().item(),
        fraction_removed=1 - after.mean().item() / before.mean().item(),
        answers_changed=((after > 0) != (before > 0)).float().mean().item(),
        accuracy_before=(before > 0).float().mean().item(), accuracy_after=(after > 0).float().mean().item(),
        confident_changed=((after > 0) != (before > 0))[before.abs() > CONFIDENT].float().mean().item())


class Removal(NamedTuple):
    """One attribute's removal experiment: its probe's direction removed, and a random direction in its place."""

    probe: InterventionEffect
    random: InterventionEffect


class SteeringCurve(NamedTuple):
    """The share of prompts answered with class 1's ``word`` at each steering strength."""

    word: str                                  # class 1's answer word, with its leading space
    shares: np.ndarray                         # one share per strength, in the order the strengths were given

    @property
    def label(self) -> str:
        return f"share answered {self.word!r}"
