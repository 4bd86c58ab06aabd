"""The bundled model organisms: loading, refusals, and the behaviours the lessons rely on.

The thresholds are the model-organism issue's "done when" figures, measured on the committed
weights with the same code as ``scripts/evaluate_models.py``.
"""
from __future__ import annotations

import json
import shutil
import time
import warnings

import pytest
from transformers import AutoTokenizer

from helpers import corpus, corpus_data
from helpers.evaluation import evaluate
from helpers.models import MODELS_DIR, OfflineError, load_model


@pytest.fixture(scope="module")
def results_2l():
    return evaluate(load_model("attn-only-2l"))


@pytest.fixture(scope="module")
def results_4l():
    return evaluate(load_model("course-4l"))


def test_tokenizer_loads_with_auto_tokenizer_and_covers_the_tutorial_prompts():
    tokenizer = AutoTokenizer.from_pretrained(MODELS_DIR / "tokenizer")
    for prompt in corpus_data.TUTORIAL_PROMPTS:
        assert tokenizer.unk_token_id not in tokenizer(prompt)["input_ids"], prompt
    assert len(tokenizer.tokenize(" Paris")) == 1
    assert tokenizer.bos_token == "<|endoftext|>"


def test_every_generated_example_tokenizes_without_unknown_words():
    tokenizer = AutoTokenizer.from_pretrained(MODELS_DIR / "tokenizer")
    examples = (corpus.ioi_examples(300, "test") + corpus.ioi_examples(300, "train")
                + corpus.fact_examples("test") + corpus.truth_examples(100, "test")
                + corpus.review_examples(100, "test") + corpus.narrative_examples(100)
                + corpus.context_fact_examples(100, "test"))
    for ex in examples:
        assert tokenizer.unk_token_id not in tokenizer(ex.text)["input_ids"], ex.text


@pytest.mark.parametrize("name", ["attn-only-2l", "course-4l"])
def test_bundled_model_loads_in_eval_mode(name):
    model = load_model(name)
    assert not model.training
    assert model.to_single_token(" Paris") == model.tokenizer.convert_tokens_to_ids("ĠParis")
    tokens = model.to_tokens("The cat sat on the mat. The cat sat on the")
    assert tokens[0, 0].item() == model.tokenizer.bos_token_id


def test_unknown_model_name_lists_the_valid_names():
    with pytest.raises(ValueError, match="attn-only-2l.*course-4l.*gpt2-small"):
        load_model("gpt3")


def test_gpt2_small_fails_fast_and_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.time()
    with pytest.raises(OfflineError, match="course-4l"):
        load_model("gpt2-small")
    assert time.time() - started < 10


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    fake_models = tmp_path / "models"
    shutil.copytree(MODELS_DIR, fake_models)
    weights = fake_models / "attn-only-2l" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])           # truncated
    monkeypatch.setattr("helpers.models.MODELS_DIR", fake_models)
    with pytest.raises(ValueError, match="truncated or was modified"):
        load_model("attn-only-2l")
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="git checkout"):
        load_model("attn-only-2l")


def test_unknown_words_are_named_in_a_warning():
    model = load_model("attn-only-2l")
    with pytest.warns(UserWarning, match="xylophonist"):
        model.to_tokens("The xylophonist sat on the mat")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.to_tokens("The cat sat on the mat")


def test_loading_shows_no_deprecation_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model("course-4l")
    assert not [w for w in caught if "deprecat" in str(w.message).lower()]


# ---------------------------------------------------------------- 2-layer attention-only model
@pytest.mark.claim
def test_2l_repeated_sequences_are_predicted_in_context(results_2l):
    assert results_2l["repeat_loss_ratio"] <= 0.3


@pytest.mark.claim
def test_2l_has_a_layer1_induction_head(results_2l):
    assert results_2l["best_layer1_induction_score"] >= 0.6


@pytest.mark.claim
def test_2l_has_a_layer0_previous_token_head(results_2l):
    assert results_2l["best_layer0_prev_token_score"] >= 0.6


# ---------------------------------------------------------------- 4-layer model
def test_4l_training_record_lists_both_phases():
    record = json.loads((MODELS_DIR / "course-4l" / "training_record.json").read_text())
    assert record["seed"] == 0 and record["step"] == 6200 and record["wall_time_s"] > 0
    finetune = record["finetune"]
    assert finetune["step"] == 3400 and finetune["wall_time_s"] > 0
    assert finetune["tokens"] == 3400 * record["batch"] * record["seq_len"]
    assert finetune["losses"] and finetune["evaluations"][-1]["step"] == 3400
    assert finetune["evaluations"][-1]["truth_accuracy"] >= 0.9


@pytest.mark.claim
def test_4l_has_an_induction_head(results_4l):
    assert results_4l["best_induction_score"] >= 0.5


@pytest.mark.claim
def test_4l_ioi_mean_logit_difference_on_held_out_templates_and_names(results_4l):
    assert results_4l["ioi_mean_logit_diff"] >= 2.0


@pytest.mark.claim
def test_4l_ioi_positive_share_on_held_out_templates_and_names(results_4l):
    assert results_4l["ioi_positive_share"] >= 0.95


@pytest.mark.claim
def test_4l_facts(results_4l):
    """Top-1 recall, on every prompt with one right next token and on the held-out paraphrases.

    78 training prompts are also the start of a longer paraphrase ("The Louvre is in" -> " Paris",
    and -> " the city of Paris"): there the model must say one of the two.
    """
    assert results_4l["fact_top1_one_answer"] >= 0.95
    assert results_4l["fact_top1_held_out_paraphrases"] >= 0.95
    assert results_4l["fact_two_answer_prompts"] == 78
    assert results_4l["fact_top1_either_answer"] >= 0.95
    assert results_4l["fact_top1_all"] >= 0.9          # strict top-1 on every prompt, both kinds


def test_two_answer_fact_prompts_are_found():
    continuations = corpus.fact_continuations()
    assert continuations["The Louvre is in"] == {" Paris", " the"}
    assert continuations["The Louvre is in the city of"] == {" Paris"}
    assert continuations["Paris is a city in"] == {" France", " the"}
    assert continuations["To see the Louvre, you have to travel to"] == {" Paris"}


@pytest.mark.claim
def test_4l_sentiment(results_4l):
    assert results_4l["sentiment_accuracy"] >= 0.95


@pytest.mark.claim
def test_4l_true_false_statements(results_4l):
    assert results_4l["truth_accuracy"] >= 0.90


@pytest.mark.claim
def test_4l_tutorial_prompt_says_paris(results_4l):
    assert results_4l["eiffel_top1"] == " Paris"
