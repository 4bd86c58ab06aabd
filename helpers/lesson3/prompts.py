"""Lesson 3's prompt sets: the fact prompts, and matched clean / corrupted IOI prompts.

:func:`ioi_patching_data` draws them from the labelled corpus; :func:`ioi_template_patching_data` fills
IOI templates outside it (:data:`SUBJECT_ACTS_FIRST`). Both return an :class:`IOIPatchingData`.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers import corpus
from helpers import corpus_data as data

Order = Literal["ABBA", "BABA"]          # "ABBA": the IO is named first in the opening; "BABA": the subject

FACT_CLEAN = "The Eiffel Tower is in the city of"
FACT_CORRUPT_SHORT = "The Colosseum is in the city of"        # also Rome, but one token shorter than FACT_CLEAN
FACT_CORRUPT = "The Trevi Fountain is in the city of"         # also Rome, and as long as FACT_CLEAN

__all__ = ["FACT_CLEAN", "FACT_CORRUPT_SHORT", "FACT_CORRUPT", "Order", "IOIPatchingData", "ioi_patching_data",
           "SUBJECT_ACTS_FIRST", "ioi_template_patching_data"]


@dataclass(frozen=True)
class IOIPatchingData:
    """Matched IOI prompts: clean and corrupted differ only in the names, position by position.

    ``clean_tokens``, ``corrupted_tokens``: ``[batch, pos]`` (BOS first; every prompt of the set
    has the same length). ``answer_tokens``: ``[batch, 2]``, the IO name then the subject's name
    (the right and the wrong answer on the clean prompt). ``positions``: role -> ``[batch]``
    token index (``"io"``, ``"s1"``, ``"s2"``, ``"end"``). The corrupted prompt replaces the three
    name slots with three other names (the "ABC" distribution): no name is repeated, so nothing
    in it says which of the clean prompt's names is the answer.
    """

    clean_tokens: Int[Tensor, "batch pos"]
    corrupted_tokens: Int[Tensor, "batch pos"]
    answer_tokens: Int[Tensor, "batch 2"]
    positions: dict[str, Int[Tensor, "batch"]]
    examples: list[corpus.Example]

    def __len__(self) -> int:
        return len(self.examples)


def ioi_patching_data(model: HookedTransformer, n: int = 64, *, opening: int = 0, action: int = 0,
                      split: corpus.Split = "train", seed: int = 0, order: Order | None = None) -> IOIPatchingData:
    """``n`` IOI prompts from one template (``data.IOI_OPENINGS[opening]`` + ``data.IOI_ACTIONS[action]``).

    One template keeps every prompt the same length, so activations line up position by position
    across the batch (what patching by position needs). Names, places and objects vary; so does the
    name order unless ``order`` is ``"ABBA"`` (IO named first: every role at the same position in
    every prompt) or ``"BABA"``. ``split`` picks the name pairs (``"test"``: pairs never seen in training).
    """
    examples = corpus.ioi_examples(n if order is None else 3 * n, split, seed, templates=[(opening, action)])
    if order is not None:
        examples = [ex for ex in examples if ex.labels["order"] == order][:n]
    rng = random.Random(seed + 1)
    corrupted_texts = []
    for ex in examples:
        others = rng.sample([name for name in data.NAMES if name not in (ex.labels["io"], ex.labels["s"])], 3)
        text, shift = ex.prompt, 0
        spans = sorted((ex.spans[r], i) for i, r in enumerate(("s1", "io", "s2")))
        # The two first-mention slots get two new names and S2 a third one: "A and B ..., C gave".
        for (start, end), i in spans:
            new = others[i]
            text = text[:start + shift] + new + text[end + shift:]
            shift += len(new) - (end - start)
        corrupted_texts.append(text)
    clean_tokens = model.to_tokens([ex.prompt for ex in examples])
    corrupted_tokens = model.to_tokens(corrupted_texts)
    if clean_tokens.shape != corrupted_tokens.shape:
        raise ValueError("clean and corrupted prompts tokenized to different lengths")
    return _patching_data(model, examples, clean_tokens, corrupted_tokens, ("io", "s1", "s2", "end"))


def _patching_data(model: HookedTransformer, examples: list[corpus.Example], clean_tokens: Tensor,
                   corrupted_tokens: Tensor, roles: Sequence[str]) -> IOIPatchingData:
    """Bundle tokenized prompts ``[batch, pos]`` with their answers ``[batch, 2]`` (IO, S) and the
    token position ``[batch]`` of each role."""
    answer_tokens = torch.tensor([[model.to_single_token(" " + ex.labels["io"]),
                                   model.to_single_token(" " + ex.labels["s"])] for ex in examples])
    positions = {r: torch.tensor([corpus.token_positions(ex, model.tokenizer)[r] for ex in examples])
                 for r in roles}
    return IOIPatchingData(clean_tokens, corrupted_tokens, answer_tokens, positions, examples)


# Outside the corpus: the subject first does something to the IO, *then* gives. [A] and [B] are the
# opening's two names; [S] is the subject's second mention (S2) and [IO] the IO's second mention (IO2),
# which is now the last name before the end. Every corpus template ends "[S] <action> to" instead, so
# there the last name before the end is always S2. Every word is in course-4l's vocabulary, and every
# action has the same number of tokens, so one batch can mix them.
SUBJECT_ACTS_FIRST = [
    "[S] helped [IO] and gave a [OBJECT] to",
    "[S] called [IO] and handed the [OBJECT] to",
    "[S] saw [IO] and passed the [OBJECT] to",
    "[S] asked [IO] and showed the [OBJECT] to",
    "[S] found [IO] and sent a [OBJECT] to",
    "[S] paid [IO] and offered a [OBJECT] to",
]


def ioi_template_patching_data(model: HookedTransformer, actions: Sequence[str], n: int = 48, *, opening: int = 0,
                               order: Order = "ABBA", split: corpus.Split = "train", seed: int = 0
                               ) -> IOIPatchingData:
    """``n`` IOI prompts from action templates outside the corpus, after ``data.IOI_OPENINGS[opening]``.

    ``actions`` are templates like ``"[S] helped [IO] and gave a [OBJECT] to"`` (see
    :data:`SUBJECT_ACTS_FIRST`): ``[S]`` is the subject's second mention, ``[IO]`` a second mention of
    the indirect object. They must all tokenize to the same length; prompt ``k`` uses
    ``actions[k % len(actions)]``, so every action is used equally often. ``order`` fixes the opening's
    name order (``"ABBA"``: IO named first; ``"BABA"``: subject first). Name pairs come from
    ``corpus.ioi_name_pairs(split)``; places and objects from the corpus's lists.

    The answer is the IO, the name that is not the subject, as in the corpus. The corrupted prompt
    fills the same template with four other names, all different, so no name repeats in it.

    Returns:
        :class:`IOIPatchingData`: ``clean_tokens``, ``corrupted_tokens`` ``[batch, pos]``;
        ``answer_tokens`` ``[batch, 2]`` (IO, then subject); ``positions`` role -> ``[batch]`` for
        ``"io"``, ``"s1"`` (the opening's two names), ``"s2"``, ``"io2"`` and ``"end"``.
    """
    if order not in ("ABBA", "BABA"):
        raise ValueError(f"order must be 'ABBA' or 'BABA', not {order!r}")
    rng = random.Random(seed)
    pairs = corpus.ioi_name_pairs(split)
    opening_text, family = data.IOI_OPENINGS[opening]
    examples, corrupted_texts = [], []
    for k in range(n):
        io, s = rng.sample(rng.choice(pairs), 2)
        action = actions[k % len(actions)]
        first, second = (io, s) if order == "ABBA" else (s, io)
        values = {"A": first, "B": second, "S": s, "IO": io, "PLACE": rng.choice(data.PLACES),
                  "OBJECT": rng.choice(data.OBJECTS)}
        template = f"{opening_text} {action}"
        prompt, slots = corpus.fill(template, values)
        others = rng.sample([name for name in data.NAMES if name not in (io, s)], 4)
        corrupted_texts.append(corpus.fill(template, {**values, **dict(zip(("A", "B", "S", "IO"), others))})[0])
        io_key, s_key = ("A", "B") if order == "ABBA" else ("B", "A")
        spans = {"io": slots[io_key], "s1": slots[s_key], "s2": slots["S"], "io2": slots["IO"],
                 "end": (len(prompt) - len(prompt.split()[-1]), len(prompt))}
        spans["answer"] = (len(prompt) + 1, len(prompt) + 1 + len(io))
        labels = {"io": io, "s": s, "order": order, "opening": opening, "action": action, "family": family,
                  "place": values["PLACE"], "object": values["OBJECT"]}
        examples.append(corpus.Example(f"{prompt} {io}.", "ioi", prompt, " " + io, labels, spans, split))
    lengths = {len(model.tokenizer(text)["input_ids"]) for text in [ex.prompt for ex in examples] + corrupted_texts}
    if len(lengths) > 1:
        raise ValueError(f"the prompts tokenized to different lengths {sorted(lengths)}: every action must have "
                         "as many tokens")
    return _patching_data(model, examples, model.to_tokens([ex.prompt for ex in examples]),
                          model.to_tokens(corrupted_texts), ("io", "s1", "s2", "io2", "end"))
