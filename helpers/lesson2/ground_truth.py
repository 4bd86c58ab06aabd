"""Sections 5 to 7's experiments: label every token of the lesson's corpus examples from how the corpus was
generated, and judge each latent of the bundled SAE against those labels (clean, split or vague).

Rows of :class:`LabelledTokens` ``labels`` and of the latent activations ``acts`` scored against them are the
``example`` dimension (one token each); their columns are ``label`` and ``d_sae`` (or ``feature``, any set of
latents being scored).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from helpers import corpus_data
from helpers.corpus import (
    Example,
    fact_examples,
    ioi_examples,
    narrative_examples,
    repeat_examples,
    review_examples,
    truth_examples,
)
from helpers.lesson2.reference import feature_label_auroc

Verdict = Literal["clean", "split", "vague"]
LabelKind = Literal["concept", "word"]

__all__ = ["GROUND_TRUTH_SEED", "CLEAN_AUROC", "CLEAN_PRECISION", "MIN_FIRINGS", "WORD_CLASSES", "TASK_LABELS",
           "Verdict", "LabelKind", "LabelledTokens", "ground_truth_examples", "labelled_tokens", "packed_tokens",
           "activation_precision", "FeatureMatch", "FeatureMatches", "match_features", "Context", "top_contexts"]

GROUND_TRUTH_SEED = 7          # the labelled token set of the lesson (and of its tests)
CLEAN_AUROC = 0.9              # a "clean" feature separates its label's tokens from all others this well...
CLEAN_PRECISION = 0.8          # ...and puts at least this share of its activation on them
MIN_FIRINGS = 5                # a feature must fire on at least this many tokens to be judged


def _words(phrases: list[str]) -> set[str]:
    return {w for phrase in phrases for w in phrase.split()}


# Word classes: a token gets the label when its word is in the list, wherever it appears.
WORD_CLASSES: dict[str, set[str]] = {
    "a first name": set(corpus_data.NAMES),
    "a city": _words(sorted({city for _, city, _ in corpus_data.LANDMARKS})),
    "a country": {country for _, _, country in corpus_data.LANDMARKS if country},
    "a place (store, park...)": set(corpus_data.PLACES),
    "an object (drink, book...)": set(corpus_data.OBJECTS),
    "an animal": set(corpus_data.ANIMALS),
    "a household thing (mat, chair...)": set(corpus_data.THINGS),
    "a positive word": set(corpus_data.POSITIVE_WORDS),
    "a negative word": set(corpus_data.NEGATIVE_WORDS),
    "a reviewed thing (movie, hotel...)": set(corpus_data.REVIEW_THINGS),
    "a reviewed aspect (story, food...)": set(corpus_data.REVIEW_ASPECTS),
    "a past-tense verb": set(corpus_data.VERBS_PAST),
    "a narrative adjective": set(corpus_data.NARRATIVE_ADJECTIVES),
}
TASK_LABELS = {"ioi": "in an IOI sentence", "fact": "in a fact", "truth": "in a true/false statement",
               "review": "in a review", "repeat": "in a repeated word list", "narrative": "in a story"}


@dataclass(frozen=True)
class LabelledTokens:
    """Tokens of labelled corpus examples, one example per sequence after BOS, with token-level labels.

    ``mask`` marks the real tokens other than BOS, in the order of the rows of ``labels``.
    ``kinds[j]`` is ``"concept"`` (a word class, a role in a task, or the task itself) or ``"word"``
    (the token itself, for every token seen at least ``min_word_count`` times). ``str_tokens[i]`` and
    ``where[i]`` (``(sequence, position)``) describe masked token ``i``.
    """

    tokens: Int[Tensor, "batch pos"]
    """Right-padded token ids."""
    mask: Bool[Tensor, "batch pos"]
    labels: Bool[Tensor, "example label"]
    names: list[str]
    kinds: list[LabelKind]
    str_tokens: list[str]
    where: list[tuple[int, int]]
    examples: list[Example]

    def label(self, name: str) -> Bool[Tensor, "example"]:
        """The boolean column of label ``name``."""
        return self.labels[:, self.names.index(name)]


def ground_truth_examples(seed: int = GROUND_TRUTH_SEED) -> list[Example]:
    """The lesson's labelled examples: IOI, facts (both relations), true/false statements, reviews,
    repeated word lists and stories, about 7,500 tokens in all."""
    rng = random.Random(seed)
    facts = fact_examples("train", "city") + fact_examples("test", "city") + fact_examples("train", "country")
    return (ioi_examples(80, "train", seed) + rng.sample(facts, 140) + truth_examples(80, "train", seed)
            + review_examples(50, "train", seed) + repeat_examples(20, seed, length=(8, 16), repeats=(2, 2))
            + narrative_examples(50, seed))


def _role_labels(example: Example, spans: dict[str, range], words: list[str]) -> dict[str, list[int]]:
    """Token positions (BOS counted) of the roles of ``example``. ``spans`` maps span names to token
    ranges; ``words[p]`` is the word at position ``p`` (``words[0]`` stands for BOS)."""
    n = len(words)
    roles: dict[str, list[int]] = {}
    labels = example.labels
    if example.task == "ioi":
        roles["IOI: indirect object, first mention"] = list(spans["io"])
        roles["IOI: subject, first mention"] = list(spans["s1"])
        roles["IOI: subject, second mention"] = list(spans["s2"])
        roles["IOI: last word of the prompt"] = [spans["answer"].start - 1]
        roles["IOI: the answer (indirect object again)"] = list(spans["answer"])
    elif example.task in ("fact", "truth"):
        if labels["relation"] == "city":
            roles["fact or claim: landmark name"] = [p for p in spans["subject"] if words[p].lower() != "the"]
        roles["fact or claim: first word after the subject"] = [spans["subject"].stop]
        roles["fact or claim: word before the city or country"] = [spans["attribute"].start - 1]
        roles["fact or claim: the city or country"] = list(spans["attribute"])
    if example.task == "truth":
        after = list(range(spans["attribute"].stop, spans["end"].stop))
        roles["truth: after a true claim" if labels["true"] else "truth: after a false claim"] = after
    elif example.task == "review":
        first_adj = min(r.start for k, r in spans.items() if k.startswith("adj"))
        roles["review: positive, after the first opinion word" if labels["positive"]
              else "review: negative, after the first opinion word"] = list(range(first_adj, spans["end"].stop))
    elif example.task == "repeat":
        roles["repeat: second copy (predictable by copying)"] = list(range(spans["copy2"].start, n))
    return roles


def labelled_tokens(tokenizer: PreTrainedTokenizerBase, examples: list[Example] | None = None,
                    min_word_count: int = 8) -> LabelledTokens:
    """Tokenize ``examples`` (default :func:`ground_truth_examples`) and label every token.

    Labels, all derived from how the corpus was generated: the word classes of :data:`WORD_CLASSES`,
    the roles of each task (IO and subject names, the answer of a fact, tokens after a true or a
    false claim, the rest of a positive or negative review, the second copy of a repeat), the task
    itself, and the token's own word.
    """
    examples = ground_truth_examples() if examples is None else examples
    bos = tokenizer.bos_token_id
    encoded = [tokenizer(e.text, return_offsets_mapping=True, add_special_tokens=False) for e in examples]
    length = 1 + max(len(enc["input_ids"]) for enc in encoded)
    tokens = torch.full((len(examples), length), tokenizer.pad_token_id or bos, dtype=torch.long)
    mask = torch.zeros(len(examples), length, dtype=torch.bool)
    rows: list[dict[str, bool]] = []
    str_tokens, where = [], []
    for s, (example, enc) in enumerate(zip(examples, encoded)):
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        n = len(ids) + 1
        tokens[s, 0], tokens[s, 1:n], mask[s, 1:n] = bos, torch.tensor(ids), True
        spans = {}
        for role, (start, end) in example.spans.items():
            inside = [i + 1 for i, (a, b) in enumerate(offsets) if b > start and a < end]
            spans[role] = range(inside[0], inside[-1] + 1)
        words = [""] + [example.text[a:b].strip() for a, b in offsets]
        roles = _role_labels(example, spans, words)
        for p in range(1, n):
            word = words[p]
            row = {name: word in members for name, members in WORD_CLASSES.items()}
            row[TASK_LABELS[example.task]] = True
            row.update({role: True for role, positions in roles.items() if p in positions})
            row["word: " + word] = True
            rows.append(row)
            str_tokens.append(tokenizer.decode([ids[p - 1]]))
            where.append((s, p))
    counts: dict[str, int] = {}
    for row in rows:
        for name, on in row.items():
            counts[name] = counts.get(name, 0) + int(on)
    concept = [*WORD_CLASSES, *TASK_LABELS.values()]
    concept += sorted({name for row in rows for name in row if ":" in name and not name.startswith("word: ")})
    words = sorted(name for name in counts if name.startswith("word: ") and counts[name] >= min_word_count)
    names = [name for name in concept if counts.get(name, 0) > 0] + words
    labels = torch.tensor([[row.get(name, False) for name in names] for row in rows], dtype=torch.bool)
    kinds: list[LabelKind] = ["word" if name.startswith("word: ") else "concept" for name in names]
    return LabelledTokens(tokens, mask, labels, names, kinds, str_tokens, where, examples)


def packed_tokens(tokenizer: PreTrainedTokenizerBase, examples: list[Example],
                  seq_len: int = 96) -> Int[Tensor, "batch pos"]:
    """``examples``' texts joined by spaces and cut into rows of ``seq_len`` tokens, each starting with
    BOS, as the model and the SAE were trained (the last partial row dropped)."""
    texts = [e.text if i == 0 else " " + e.text for i, e in enumerate(examples)]
    ids = [t for row in tokenizer(texts, add_special_tokens=False)["input_ids"] for t in row]
    n = len(ids) // (seq_len - 1)
    rows = torch.tensor(ids[:n * (seq_len - 1)]).view(n, seq_len - 1)
    return torch.cat([torch.full((n, 1), tokenizer.bos_token_id), rows], dim=1)


def activation_precision(acts: Float[Tensor, "example feature"],
                         labels: Bool[Tensor, "example label"]) -> Float[Tensor, "feature label"]:
    """Share of each feature's total activation that falls on each label's tokens."""
    acts, y = acts.float(), labels.float()
    return torch.sparse.mm(acts.T.to_sparse(), y) / acts.sum(0).clamp(min=1e-9)[:, None]


@dataclass(frozen=True)
class FeatureMatch:
    """The ground-truth verdict on one latent (:meth:`FeatureMatches.of`)."""

    feature: int
    label: str
    """The best label by AUROC."""
    auroc: float
    precision: float
    """The share of the latent's activation on that label's tokens."""
    verdict: Verdict
    narrow_label: str
    """The label with the highest precision: the one a split latent covers a part of."""
    narrow_precision: float


@dataclass(frozen=True)
class FeatureMatches:
    """The ground-truth verdict for each judged latent (those firing on >= ``MIN_FIRINGS`` tokens).

    ``features`` are latent indices; ``label`` the index of each one's best label by AUROC, ``auroc`` and
    ``precision`` for that label; ``narrow_label`` the label with the highest precision.
    """

    features: Int[Tensor, "feature"]
    label: Int[Tensor, "feature"]
    auroc: Float[Tensor, "feature"]
    precision: Float[Tensor, "feature"]
    narrow_label: Int[Tensor, "feature"]
    narrow_precision: Float[Tensor, "feature"]
    verdict: list[Verdict]
    names: list[str]
    kinds: list[LabelKind]

    def share(self, verdict: Verdict, kind: LabelKind | None = None) -> float:
        """Fraction of judged latents with ``verdict`` (and, if given, a best label of ``kind``)."""
        hits = [v == verdict and (kind is None or self.kinds[int(j)] == kind)
                for v, j in zip(self.verdict, self.label)]
        return sum(hits) / len(hits)

    def of(self, feature: int) -> FeatureMatch:
        """The verdict on latent ``feature``."""
        i = int((self.features == feature).nonzero()[0, 0])
        return FeatureMatch(feature=feature, label=self.names[int(self.label[i])], auroc=float(self.auroc[i]),
                            precision=float(self.precision[i]), verdict=self.verdict[i],
                            narrow_label=self.names[int(self.narrow_label[i])],
                            narrow_precision=float(self.narrow_precision[i]))

    def table(self, verdict: Verdict, n: int = 5, kind: LabelKind | None = None) -> list[FeatureMatch]:
        """Up to ``n`` latents with ``verdict``: the best matches first for clean ones, else by precision."""
        rows = [self.of(int(f)) for f, v, j in zip(self.features, self.verdict, self.label)
                if v == verdict and (kind is None or self.kinds[int(j)] == kind)]
        key = (lambda r: -r.auroc) if verdict == "clean" else (lambda r: -r.narrow_precision)
        return sorted(rows, key=key)[:n]


def match_features(acts: Float[Tensor, "example d_sae"], data: LabelledTokens) -> FeatureMatches:
    """Match every latent that fires on at least ``MIN_FIRINGS`` of ``data``'s tokens to its best label.

    Verdicts: **clean** when the best label (by AUROC) has AUROC >= ``CLEAN_AUROC`` and gets
    >= ``CLEAN_PRECISION`` of the latent's activation; **split** when it is not clean but some label gets
    >= ``CLEAN_PRECISION`` of its activation (the latent stays inside one concept but covers only a part of
    it); **vague** otherwise.
    """
    features = ((acts > 0).sum(0) >= MIN_FIRINGS).nonzero()[:, 0]
    live = acts[:, features]
    auroc = feature_label_auroc(live, data.labels)                   # [feature, label]
    precision = activation_precision(live, data.labels)
    best_auroc, label = auroc.max(-1)
    best_precision = precision.gather(1, label[:, None])[:, 0]
    narrow_precision, narrow_label = precision.max(-1)
    verdict: list[Verdict] = ["clean" if a >= CLEAN_AUROC and p >= CLEAN_PRECISION else
                              "split" if q >= CLEAN_PRECISION else "vague"
                              for a, p, q in zip(best_auroc.tolist(), best_precision.tolist(),
                                                 narrow_precision.tolist())]
    return FeatureMatches(features, label, best_auroc, best_precision, narrow_label, narrow_precision, verdict,
                          data.names, data.kinds)


class Context(NamedTuple):
    """A window of tokens around one of a latent's strongest activations (``tokens, values = context``)."""

    str_tokens: list[str]
    activations: list[float]
    """The latent's activation on each token of the window."""


def top_contexts(acts: Float[Tensor, "example d_sae"], data: LabelledTokens, feature: int, k: int = 5,
                 before: int = 10, after: int = 2) -> list[Context]:
    """The ``k`` tokens where ``feature`` fires most (at most one per sequence), each as a window of
    ``before`` tokens before and ``after`` after."""
    column = acts[:, feature]
    order = column.argsort(descending=True)
    seen: set[str] = set()
    out: list = []
    index = {w: i for i, w in enumerate(data.where)}
    for i in order.tolist():
        if column[i] <= 0 or len(out) == k:
            break
        s, p = data.where[i]
        if s in seen:
            continue
        seen.add(s)
        window = [q for q in range(max(1, p - before), p + after + 1) if (s, q) in index]
        out.append(Context([data.str_tokens[index[(s, q)]] for q in window],
                           [float(column[index[(s, q)]]) for q in window]))
    return out
