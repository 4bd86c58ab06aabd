"""Lesson 3, part one: reading patching results, and how a circuit does on a family of IOI prompts (section 6)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer
from transformer_lens.utils import get_act_name

from helpers.lesson3.prompts import IOIPatchingData
from helpers.lesson3.reference import Head, all_heads, head_means, logit_diff, run_with_mean_ablation

__all__ = ["heads_by_effect", "FamilyMetrics", "family_metrics"]


def heads_by_effect(effects: Float[Tensor, "layer head_index"], k: int) -> list[Head]:
    """The ``k`` heads with the largest absolute effect, largest first."""
    order = effects.abs().flatten().argsort(descending=True)[:k].tolist()
    return [divmod(i, effects.shape[1]) for i in order]


@dataclass(frozen=True)
class FamilyMetrics:
    """How the model and a circuit do on one family of IOI prompts (:func:`family_metrics`).

    ``prompts``: the batch size. ``io_above_s``: the share of prompts whose IO logit is above the
    subject's; ``io_top1`` and ``s_top1``: the shares whose top prediction is the IO, or the subject.
    ``logit_diff``, ``circuit_logit_diff`` and ``removed_logit_diff``: the mean IO - S logit difference
    of the whole model, of the circuit alone (every other head mean-ablated) and of the model without
    the circuit (its heads mean-ablated). ``faithfulness``: ``circuit_logit_diff / logit_diff``.
    ``attention``: for every role of the prompts' ``positions`` (``"io"``, ``"s1"``, ``"s2"``, ``"end"``,
    and ``"io2"`` where the template has one), the mean attention of ``head`` from the final position
    to that role's token.
    """

    prompts: int
    io_above_s: float
    io_top1: float
    s_top1: float
    logit_diff: float
    circuit_logit_diff: float
    removed_logit_diff: float
    faithfulness: float
    head: Head
    attention: dict[str, float]


def family_metrics(model: HookedTransformer, prompts: IOIPatchingData, circuit: Sequence[Head],
                   head: Head = (0, 4)) -> FamilyMetrics:
    """How the model and a circuit do on one family of IOI prompts (lesson 3, section 6).

    Runs ``prompts.clean_tokens`` three ways: the whole model, the circuit alone (every other head
    mean-ablated) and the model without the circuit (its heads mean-ablated), the means taken on the
    family's own corrupted prompts (:func:`~helpers.lesson3.reference.head_means`); and reads ``head``'s
    attention pattern at the last query position.
    """
    tokens, answers = prompts.clean_tokens, prompts.answer_tokens
    means = head_means(model, prompts.corrupted_tokens)                     # [n_layers, pos, head_index, d_head]
    keep: set[Head] = {(layer, head) for layer, head in circuit}
    outside = [h for h in all_heads(model) if h not in keep]
    layer, index = head
    logits, cache = model.run_with_cache(tokens, names_filter=get_act_name("pattern", layer))
    final = logits[:, -1].gather(-1, answers)                                # [batch, 2]
    rows = torch.arange(len(tokens))
    pattern = cache["pattern", layer][rows, index, -1]                      # [batch, key pos]
    ld = logit_diff(logits, answers).item()
    circuit_ld = logit_diff(run_with_mean_ablation(model, tokens, outside, means), answers).item()
    return FamilyMetrics(
        prompts=len(tokens),
        io_above_s=(final[:, 0] > final[:, 1]).float().mean().item(),
        io_top1=(logits[:, -1].argmax(-1) == answers[:, 0]).float().mean().item(),
        s_top1=(logits[:, -1].argmax(-1) == answers[:, 1]).float().mean().item(),
        logit_diff=ld,
        circuit_logit_diff=circuit_ld,
        removed_logit_diff=logit_diff(run_with_mean_ablation(model, tokens, list(keep), means), answers).item(),
        faithfulness=circuit_ld / ld,
        head=(layer, index),
        attention={role: pattern[rows, positions].mean().item() for role, positions in prompts.positions.items()},
    )
