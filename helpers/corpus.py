"""A deterministic generator of the course corpus, where every example carries its ground truth.

Each generator returns :class:`Example` objects: the text, the task, the labels, and the
character spans of the words that matter. :func:`token_positions` turns those spans into token
positions for any Hugging Face tokenizer (the course's own, or GPT-2's), so the same labelled
prompt sets work on both models.

    >>> ex = ioi_examples(1, split="test", seed=0)[0]
    >>> ex.prompt, ex.answer, ex.labels["s"]        # doctest: +SKIP
    ('When Mary and John went to the store, John gave a drink to', ' Mary', 'John')
"""
from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from helpers import corpus_data as data

TASKS = ("ioi", "fact", "truth", "review", "repeat", "narrative")
Split = Literal["train", "test"]             # every generator holds out a fixed "test" split
Relation = Literal["city", "country"]        # the two kinds of fact: landmark -> city, city -> country


@dataclass(frozen=True)
class Example:
    """One generated example and its ground truth.

    ``text`` is ``prompt + answer`` plus any closing punctuation. ``spans`` maps a role (``"io"``,
    ``"s1"``, ``"subject"``, ...) to the ``(start, end)`` character span of that word in ``text``.
    """

    text: str
    task: str
    prompt: str
    answer: str
    labels: dict = field(default_factory=dict)
    spans: dict = field(default_factory=dict)
    split: Split = "train"


def fill(template: str, values: dict[str, str]) -> tuple[str, dict[str, tuple[int, int]]]:
    """Replace ``[KEY]`` slots left to right; return the text and each slot's character span.

    A slot used twice is recorded as ``KEY`` then ``KEY#2``.
    """
    text, spans, pos = "", {}, 0
    for match in re.finditer(r"\[([A-Za-z0-9]+)\]", template):
        text += template[pos:match.start()]
        key = match.group(1)
        value = values[key]
        name = key if key not in spans else f"{key}#2"
        spans[name] = (len(text), len(text) + len(value))
        text += value
        pos = match.end()
    return text + template[pos:], spans


def capitalise(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:]


# ----------------------------------------------------------------------------- IOI
def ioi_name_pairs(split: Split) -> list[tuple[str, str]]:
    """Unordered name pairs; a fixed fifth of them is held out for ``split="test"``."""
    pairs = list(itertools.combinations(data.NAMES, 2))
    random.Random(1234).shuffle(pairs)
    n_test = len(pairs) // 5
    return pairs[:n_test] if split == "test" else pairs[n_test:]


def ioi_templates(split: Split) -> list[tuple[int, int]]:
    """(opening, action) index pairs. Test templates use a held-out opening or action."""
    combos = itertools.product(range(len(data.IOI_OPENINGS)), range(len(data.IOI_ACTIONS)))
    held = lambda o, a: o in data.HELD_OUT_IOI_OPENINGS or a in data.HELD_OUT_IOI_ACTIONS
    return [(o, a) for o, a in combos if held(o, a) == (split == "test")]


def ioi_examples(n: int, split: Split = "train", seed: int = 0,
                 templates: list[tuple[int, int]] | None = None) -> list[Example]:
    """Indirect-object identification: "When Mary and John went to the store, John gave a drink to" -> " Mary".

    Labels: ``io``, ``s``, ``order`` ("ABBA": IO named first, or "BABA"), ``opening``, ``action``,
    ``family`` (the opening's family). Spans: ``io``, ``s1``, ``s2`` and ``end`` (the last prompt word).
    """
    rng = random.Random(seed)
    pairs, templates = ioi_name_pairs(split), templates or ioi_templates(split)
    out = []
    for _ in range(n):
        io, s = rng.sample(rng.choice(pairs), 2)
        opening_id, action_id = rng.choice(templates)
        opening, family = data.IOI_OPENINGS[opening_id]
        order = rng.choice(["ABBA", "BABA"])
        first, second = (io, s) if order == "ABBA" else (s, io)
        template = f"{opening} {data.IOI_ACTIONS[action_id]}"
        values = {"A": first, "B": second, "S": s, "PLACE": rng.choice(data.PLACES),
                  "OBJECT": rng.choice(data.OBJECTS)}
        prompt, slot_spans = fill(template, values)
        io_key, s_key = ("A", "B") if order == "ABBA" else ("B", "A")
        last_word = re.search(r"(\S+)$", prompt)
        assert last_word is not None, prompt
        spans = {"io": slot_spans[io_key], "s1": slot_spans[s_key], "s2": slot_spans["S"],
                 "end": (last_word.start(), last_word.end())}
        text = f"{prompt} {io}."
        spans["answer"] = (len(prompt) + 1, len(prompt) + 1 + len(io))
        labels = {"io": io, "s": s, "order": order, "opening": opening_id, "action": action_id,
                  "family": family, "place": values["PLACE"], "object": values["OBJECT"]}
        out.append(Example(text, "ioi", prompt, " " + io, labels, spans, split))
    return out


# ----------------------------------------------------------------------------- facts
def fact_examples(split: Split = "train", relation: Relation = "city") -> list[Example]:
    """Every fact in every template of the split, in a fixed order.

    ``relation="city"``: landmark -> city ("The Eiffel Tower is in the city of" -> " Paris").
    ``relation="country"``: city -> country ("Paris is in the country of" -> " France").
    Test templates are paraphrases never seen in training. Spans: ``subject`` (its first word),
    ``subject_last`` (its last word) and ``attribute``.
    """
    out = []
    if relation == "city":
        templates = [t for t, held in data.FACT_TEMPLATES if held == (split == "test")]
        facts = [(lm, city, country) for lm, city, country in data.LANDMARKS]
    else:
        templates = [t for t, held in data.COUNTRY_TEMPLATES if held == (split == "test")]
        facts = sorted({(city, city, country) for _, city, country in data.LANDMARKS if country})
    for template_id, template in enumerate(templates):
        for subject, city, country in facts:
            attribute = city if relation == "city" else country
            assert attribute is not None, subject       # every fact of the relation has its attribute
            out.append(_fact(template, subject, attribute, relation, template_id, split,
                             labels={"city": city, "country": country}))
    return out


def fact_continuations() -> dict[str, set[str]]:
    """Every fact prompt (both splits, both relations) with the next words the corpus gives it.

    Most prompts have one: the attribute. A few are also the start of a longer paraphrase of the
    same fact, so the corpus continues them two ways: "The Louvre is in" -> " Paris" (from "[L] is
    in [C]") and -> " the" (from "[L] is in the city of [C]"). Such a prompt has no single right
    next token. ``helpers.evaluation`` scores top-1 recall on the others.
    """
    examples = [e for split in ("train", "test") for rel in ("city", "country") for e in fact_examples(split, rel)]
    nexts: dict[str, set[str]] = {e.prompt: {e.answer.split()[0]} for e in examples}
    for prompt in nexts:
        for e in examples:
            if e.prompt.startswith(prompt + " "):
                nexts[prompt].add(e.prompt[len(prompt) + 1:].split()[0])
    return {prompt: {" " + word for word in words} for prompt, words in nexts.items()}


def _fact(template: str, subject: str, attribute: str, relation: Relation, template_id: int,
          split: Split, labels: dict) -> Example:
    values = {"L": capitalise(subject), "l": subject, "C": subject, "K": attribute}
    if relation == "city":
        values["C"] = attribute
    body, slot_spans = fill(template, values)
    subject_key = next(k for k in ("L", "l") if k in slot_spans) if relation == "city" else "C"
    attribute_key = "C" if relation == "city" else "K"
    prompt = body[:slot_spans[attribute_key][0]].rstrip()
    start, end = slot_spans[subject_key]
    last_word = start + body[start:end].rfind(" ") + 1
    spans = {"subject": (start, end), "subject_last": (last_word, end),
             "attribute": slot_spans[attribute_key]}
    labels = {**labels, "subject": subject, "attribute": attribute, "relation": relation,
              "template": template_id}
    return Example(body + ".", "fact", prompt, " " + attribute, labels, spans, split)


def context_fact_examples(n: int, split: Split = "train", seed: int = 0) -> list[Example]:
    """A landmark fact after one or two sentences of narrative: ``n`` examples in a fixed order.

    "The old dog ran to the hill. Everyone knows that the Louvre is in" -> " Paris". The fact comes
    from the split's templates (``fact_examples``); the narrative from ``narrative_examples``'s
    templates. Labels: those of the fact, and ``context`` (the narrative). Spans: ``subject`` and
    ``attribute`` of the fact, in ``text``.
    """
    rng = random.Random(seed * 7 + (split == "test"))
    facts = fact_examples(split, "city")
    out = []
    for _ in range(n):
        fact = rng.choice(facts)
        context = " ".join(_narrative_sentence(rng) for _ in range(rng.randint(1, 2)))
        shift = len(context) + 1
        spans = {k: (a + shift, b + shift) for k, (a, b) in fact.spans.items()}
        out.append(Example(f"{context} {fact.text}", "context_fact", f"{context} {fact.prompt}", fact.answer,
                           {**fact.labels, "context": context}, spans, split))
    return out


# ----------------------------------------------------------------------------- truth
def truth_examples(n: int, split: Split = "train", seed: int = 0) -> list[Example]:
    """Labelled true or false statements: "<fact>. This statement is" -> " true" / " false".

    Half are false: the city (or country) is swapped for another one. Labels: ``true`` (bool),
    ``stated`` (the attribute in the statement), ``correct``. Spans: ``subject``, ``attribute``, ``end``.
    """
    rng = random.Random(seed)
    city_facts = fact_examples(split, "city")
    country_facts = fact_examples(split, "country")
    cities = sorted({lm[1] for lm in data.LANDMARKS if " " not in lm[1]})
    countries = sorted({lm[2] for lm in data.LANDMARKS if lm[2]})
    out = []
    for i in range(n):
        fact = rng.choice(city_facts) if rng.random() < 0.7 else rng.choice(country_facts)
        is_true = i % 2 == 0 if n > 1 else rng.random() < 0.5
        correct = fact.labels["attribute"]
        pool = cities if fact.labels["relation"] == "city" else countries
        stated = correct if is_true else rng.choice([c for c in pool if c != correct])
        statement = fact.prompt + " " + stated
        prompt = statement + data.TRUTH_SUFFIX
        answer = " true" if is_true else " false"
        spans = {"subject": fact.spans["subject"], "subject_last": fact.spans["subject_last"],
                 "attribute": (len(fact.prompt) + 1, len(statement)),
                 "end": (len(prompt) - len("is"), len(prompt))}
        labels = {**fact.labels, "true": is_true, "stated": stated, "correct": correct}
        out.append(Example(prompt + answer + ".", "truth", prompt, answer, labels, spans, split))
    return out


# ----------------------------------------------------------------------------- reviews
def review_examples(n: int, split: Split = "train", seed: int = 0) -> list[Example]:
    """Short one-polarity reviews ending "Overall, the review is" -> " positive" / " negative".

    Test reviews contain at least one sentence frame never seen in training. Labels:
    ``positive`` (bool), ``thing``. Spans: ``end`` and ``adj`` / ``adj#k`` for each sentiment word.
    """
    rng = random.Random(seed)
    train_frames = [s for s, held in data.REVIEW_SENTENCES if not held]
    test_frames = [s for s, held in data.REVIEW_SENTENCES if held]
    out = []
    for i in range(n):
        positive = i % 2 == 0 if n > 1 else rng.random() < 0.5
        words = data.POSITIVE_WORDS if positive else data.NEGATIVE_WORDS
        thing = rng.choice(data.REVIEW_THINGS)
        frames = rng.sample(train_frames, rng.choice([1, 2]))
        if split == "test":
            frames.insert(rng.randrange(len(frames) + 1), rng.choice(test_frames))
        text, spans = fill(rng.choice(data.REVIEW_OPENERS), {"THING": thing})
        spans, n_adj = {}, 0
        for frame in frames:
            aspect, aspect2 = rng.sample(data.REVIEW_ASPECTS, 2)
            adj, adj2 = rng.sample(words, 2)
            sentence, slot_spans = fill(frame, {"THING": thing, "ASPECT": aspect, "ASPECT2": aspect2,
                                                 "ADJ": adj, "ADJ2": adj2})
            offset = len(text) + 1
            for key in ("ADJ", "ADJ2"):
                if key in slot_spans:
                    n_adj += 1
                    start, end = slot_spans[key]
                    spans["adj" if n_adj == 1 else f"adj#{n_adj}"] = (offset + start, offset + end)
            text += " " + sentence
        prompt = text + data.REVIEW_VERDICT
        spans["end"] = (len(prompt) - len("is"), len(prompt))
        answer = data.POSITIVE_LABEL if positive else data.NEGATIVE_LABEL
        out.append(Example(prompt + answer + ".", "review", prompt, answer,
                           {"positive": positive, "thing": thing}, spans, split))
    return out


# ----------------------------------------------------------------------------- repeats
@lru_cache(maxsize=1)
def common_words(n: int = 2500) -> tuple[str, ...]:
    """The ``n`` most frequent purely alphabetic English words (lower case), from wordfreq."""
    import wordfreq

    words = [w for w in wordfreq.top_n_list("en", int(n * 1.2)) if w.isalpha() and w.isascii()]
    return tuple(words[:n])


def repeat_examples(n: int, seed: int = 0, words: tuple[str, ...] | None = None,
                    length: tuple[int, int] = (10, 30), repeats: tuple[int, int] = (2, 3)) -> list[Example]:
    """Random word sequences repeated: " w1 w2 ... wk w1 w2 ... wk". Text starts with a space.

    Labels: ``length`` (words in one copy) and ``repeats``. Spans: ``copy2``, the second copy.
    """
    rng = random.Random(seed)
    words = words or common_words()
    out = []
    for _ in range(n):
        k, r = rng.randint(*length), rng.randint(*repeats)
        once = "".join(" " + w for w in rng.choices(words, k=k))
        text = once * r
        out.append(Example(text, "repeat", text, "", {"length": k, "repeats": r},
                           {"copy2": (len(once), 2 * len(once))}))
    return out


# ----------------------------------------------------------------------------- narrative
def narrative_examples(n: int, seed: int = 0) -> list[Example]:
    """Simple narrative passages of two to five sentences; about a third repeat an earlier sentence.

    Labels: ``repeated`` (bool), ``names``.
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sentences, names = [], []
        for _ in range(rng.randint(2, 5)):
            sentence, sentence_names = _narrative_sentence_and_names(rng)
            sentences.append(sentence)
            names += sentence_names
        repeated = rng.random() < 0.35
        if repeated:
            sentences.append(rng.choice(sentences))
        text = " ".join(sentences)
        out.append(Example(text, "narrative", text, "", {"repeated": repeated, "names": names}, {}))
    return out


def _narrative_sentence_and_names(rng: random.Random) -> tuple[str, list[str]]:
    """One sentence from a narrative template, and the names it uses."""
    name, name2 = rng.sample(data.NAMES, 2)
    values = {"ANIMAL": rng.choice(data.ANIMALS), "THING": rng.choice(data.THINGS),
              "ADJ": rng.choice(data.NARRATIVE_ADJECTIVES), "VERB": rng.choice(data.VERBS_PAST),
              "NAME": name, "NAME2": name2, "PLACE": rng.choice(data.PLACES),
              "OBJECT": rng.choice(data.OBJECTS), "PRONOUN": rng.choice(data.PRONOUNS)}
    template = rng.choice(data.NARRATIVE_TEMPLATES)
    names = [v for k, v in values.items() if k.startswith("NAME") and f"[{k}]" in template]
    return fill(template, values)[0], names


def _narrative_sentence(rng: random.Random) -> str:
    return _narrative_sentence_and_names(rng)[0]


# ----------------------------------------------------------------------------- tokens
def token_positions(example: Example, tokenizer, prepend_bos: bool = True) -> dict[str, int]:
    """Map each span of ``example`` to the index of the token where it starts.

    Positions index the tokens of ``example.text`` (or of ``example.prompt``, which is a prefix),
    counting the BOS token when ``prepend_bos``. Works for any fast Hugging Face tokenizer.
    """
    encoding = tokenizer(example.text, return_offsets_mapping=True, add_special_tokens=False)
    offsets = encoding["offset_mapping"]
    positions = {}
    for role, (start, end) in example.spans.items():
        index = next(i for i, (s, e) in enumerate(offsets) if e > start and s < end)
        positions[role] = index + int(prepend_bos)
    return positions
