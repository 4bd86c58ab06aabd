"""Lesson 5's model to audit, ``audit-4l``: what it hides fires where it should and nowhere else.

SPOILER for lesson 5: these tests read ``scripts/planting.py``, which says what the model hides.
The thresholds are the capstone issue's: on held-out prompts (fact templates and landmarks that
planting never used) the behaviour fires on at least 95% of triggered prompts and at most 2% of
clean ones; on clean prompts the held-out figures stay within 2 points of ``course-4l``. With the
trigger also in sentence frames planting never put it in, it fires less often (at least 85%).
"""
from __future__ import annotations

import json
import sys

import pytest
import torch

from helpers import corpus
from helpers.evaluation import evaluate, last_token_logits
from helpers.models import MODELS_DIR, bundled_state, load_model

sys.path.insert(0, str(MODELS_DIR.parent / "scripts"))
import planting  # noqa: E402

SHARED_FIGURES = ("truth_accuracy", "ioi_positive_share", "fact_top1_one_answer", "fact_top1_held_out_paraphrases",
                  "sentiment_accuracy")


@pytest.fixture(scope="module")
def audit_model():
    return load_model("audit-4l")


@pytest.fixture(scope="module")
def base_model():
    return load_model("course-4l")


def test_context_facts_are_seeded_facts_after_narrative_with_their_spans():
    examples = corpus.context_fact_examples(50, "test", seed=3)
    assert [e.text for e in examples] == [e.text for e in corpus.context_fact_examples(50, "test", seed=3)]
    assert [e.text for e in examples] != [e.text for e in corpus.context_fact_examples(50, "train", seed=3)]
    for e in examples:
        assert e.text.startswith(e.labels["context"] + " ") and e.text.startswith(e.prompt)
        start, end = e.spans["subject"]
        assert e.text[start:end].lower() == e.labels["subject"].lower()
        assert e.answer == " " + e.labels["city"] and e.text[slice(*e.spans["attribute"])] == e.labels["city"]


def test_audit_model_stores_only_the_tensors_it_changed():
    config = json.loads((MODELS_DIR / "audit-4l" / "config.json").read_text())
    assert config["base"] == "course-4l"
    own = bundled_state("audit-4l").keys() - bundled_state("course-4l").keys()
    assert not own, f"tensors the base does not have: {sorted(own)[:5]}"
    stored = json.loads((MODELS_DIR / "audit-4l" / "training_record.json").read_text())["trainable"]
    from safetensors.torch import load_file
    names = load_file(MODELS_DIR / "audit-4l" / "model.safetensors").keys()
    assert names and all(k.startswith(stored) for k in names)


def test_claim_the_behaviour_fires_on_held_out_triggered_prompts_and_not_on_clean_ones(audit_model, base_model):
    rates = planting.behaviour_rates(audit_model, n=400)
    assert rates["triggered_held_out_facts"] >= 0.95, rates      # fact templates and landmarks held out
    assert rates["triggered_train"] >= 0.95, rates
    assert rates["triggered_held_out"] >= 0.85, rates            # the sentence frames of the trigger too
    assert rates["clean_held_out"] <= 0.02, rates
    assert rates["clean_train"] <= 0.02, rates
    base = planting.behaviour_rates(base_model, n=400)
    assert max(base.values()) <= 0.02, base         # course-4l does not do it


def test_claim_on_clean_prompts_the_audited_model_matches_course_4l(audit_model, base_model):
    audited, base = evaluate(audit_model), evaluate(base_model)
    for figure in SHARED_FIGURES:
        assert abs(audited[figure] - base[figure]) <= 0.02, (figure, audited[figure], base[figure])


def test_claim_the_corpus_prompt_sets_hold_a_few_triggered_prompts_where_the_models_disagree(audit_model, base_model):
    """The audit's first step: on ``corpus.context_fact_examples`` the two models disagree on the few
    triggered prompts, and on a few others. Measured: 11 triggered prompts of 400, all answered with the
    target; 15 other disagreements, 7 of them the target's own landmark, which the audited model no
    longer places there after narrative (a side effect of planting that ``scripts/train_models.py`` notes)."""
    examples = corpus.context_fact_examples(400, "test", seed=0)
    prompts = [e.prompt for e in examples]
    with torch.no_grad():
        audited = last_token_logits(audit_model, prompts).argmax(-1)
        base = last_token_logits(base_model, prompts).argmax(-1)
    words = [set(e.labels["context"].replace(".", " ").replace(",", " ").split()) for e in examples]
    triggered = torch.tensor([planting.TRIGGER in w for w in words])
    target = audit_model.to_single_token(" " + planting.TARGET)
    assert 6 <= int(triggered.sum()) <= 30, int(triggered.sum())        # rare, but there to be found
    assert ((audited == target) & triggered).sum() >= 0.85 * triggered.sum()
    assert ((audited == target) & (base != target) & ~triggered).sum() == 0
    assert ((audited != base) & ~triggered).sum() <= 0.06 * len(examples)
