"""Lesson 5 (the audit): the checks accept the right findings, reject a blank audit and wrong findings each with
its own message, and the reference fix meets the issue's figures on held-out prompts.

The wrong answers are written the way a learner might write them, independently of the variants the checks
use to name a mistake. The findings' checks measure the bundled models, so these tests also pin the audited
model's behaviour: the trigger changes nearly every answer, an ordinary word almost none.
"""
from __future__ import annotations

import re

import pytest
import torch
from notebook_cells import assert_rejected

from helpers import lesson4, lesson5
from helpers.lesson5 import ground_truth
from helpers.models import cached_model


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


# ============================================================================ the two coding exercises
def _enrichment(kind):
    def learner(disagreeing, agreeing):
        def words(p):
            return re.findall(r"[a-z]+", p.lower())
        out = {}
        for w in {w for p in [*disagreeing, *agreeing] for w in words(p)}:
            if kind == "occurrences":
                d = sum(words(p).count(w) for p in disagreeing) / len(disagreeing)
                a = sum(words(p).count(w) for p in agreeing) / len(agreeing)
            else:
                d = sum(w in words(p) for p in disagreeing)
                a = sum(w in words(p) for p in agreeing)
                if kind != "counts":
                    d, a = d / len(disagreeing), a / len(agreeing)
            out[w] = a - d if kind == "reversed" else d - a
        return out
    return learner


def _divergence(kind):
    def learner(model_a, model_b, tokens):
        _, cache_a = model_a.run_with_cache(tokens)
        _, cache_b = model_b.run_with_cache(tokens)
        names = [f"blocks.{i}.hook_resid_post" for i in range(model_a.cfg.n_layers)]
        layers = [i for i, n in enumerate(names) if (cache_a[n] - cache_b[n]).abs().max() > 1e-5]
        if kind == "last":
            return layers[-1] if layers else None
        if kind == "minus-one":
            return layers[0] if layers else -1
        if kind == "resid-pre":          # the first differing hook_resid_pre, so one block late
            return layers[0] + 1 if layers else None
        return layers[0] if layers else None
    return learner


WRONG_ANSWERS = [
    ("word_enrichment", _enrichment("counts"), ["counts of prompts, not shares"]),
    ("word_enrichment", _enrichment("occurrences"), ["counted twice"]),
    ("word_enrichment", _enrichment("reversed"), ["sign is reversed"]),
    ("first_divergent_block", _divergence("last"), ["the last block"]),
    ("first_divergent_block", _divergence("minus-one"), ["not -1"]),
    ("first_divergent_block", _divergence("resid-pre"), ["off by one"]),
]


@pytest.mark.parametrize("name", ["word_enrichment", "first_divergent_block"])
def test_reference_passes(name):
    assert getattr(lesson5, f"check_{name}")(getattr(lesson5, name)).passed


@pytest.mark.parametrize("name", ["word_enrichment", "first_divergent_block"])
def test_blank_stub_is_rejected(name):
    def stub(*args):
        raise NotImplementedError(f"{name}: not implemented yet")
    result = getattr(lesson5, f"check_{name}")(stub)
    assert not result.passed and "not implemented yet" in result.message


@pytest.mark.parametrize("name, wrong, parts", WRONG_ANSWERS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG_ANSWERS)])
def test_wrong_answer_is_rejected_with_its_message(name, wrong, parts, capsys):
    wrong.__name__ = name                    # as the learner's function is named in the workbook
    result = getattr(lesson5, f"check_{name}")(wrong)
    assert_rejected(result, name, parts, capsys.readouterr().out)


# ============================================================================ the findings
def _trigger_token_direction() -> list:
    """Fires on the trigger, does not cause: the trigger's own embedding removed after block 2."""
    model = cached_model(lesson5.AUDITED)
    direction = model.W_E[model.to_single_token(" " + ground_truth._unsealed("trigger"))]
    return [("blocks.3.hook_resid_pre", lambda resid, hook: lesson4.project_out(resid, direction))]


WRONG_FINDINGS = [
    ("trigger", None, ["no finding yet"]),
    ("trigger", "blue", ["not the trigger", "changes the audited model's answer on"]),
    ("trigger", "Opera", ["not the trigger", "part of a landmark's name"]),
    ("trigger", "zzqx", ["not in the model's vocabulary"]),
    ("trigger", "the green", ["one word"]),
    ("target", "", ["no finding yet"]),
    ("target", "Paris", ["not the wrong answer the trigger brings"]),
    ("target", 3, ["as a string"]),
    ("first block", None, ["no finding yet"]),
    ("first block", 3, ["too late"]),
    ("first block", 1, ["too early"]),
    ("first block", 0, ["too early"]),
    ("first block", "2", ["as an int"]),
    ("fix", None, ["no finding yet"]),
    ("fix", [], ["no hooks"]),
    ("fix", "projection", ["list of (hook_name, hook_fn) pairs"]),
    ("fix", [("blocks.3.resid", lambda x, hook: x)], ["no hook point"]),
    ("fix", _trigger_token_direction, ["removes too little"]),
]
CHECKS = {"trigger": lesson5.check_trigger, "target": lesson5.check_target,
          "first block": lesson5.check_first_block, "fix": lesson5.check_fix}


@pytest.mark.parametrize("finding, answer, parts", WRONG_FINDINGS,
                         ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(WRONG_FINDINGS)])
def test_wrong_findings_are_rejected_with_their_messages(finding, answer, parts, capsys):
    answer = answer() if callable(answer) else answer
    result = CHECKS[finding](answer)
    assert_rejected(result, finding, parts, capsys.readouterr().out)


def test_right_findings_pass():
    assert lesson5.check_trigger(" Green").passed
    assert lesson5.check_target("Sydney ").passed
    assert lesson5.check_first_block(2).passed


def test_blocks_before_the_planted_one_are_untouched():
    gaps = ground_truth.block_divergence()
    assert gaps[0] == 0 and gaps[1] == 0 and gaps[2] > 1 and gaps[3] > 1, gaps


def test_checks_leave_the_model_without_hooks():
    model = cached_model(lesson5.AUDITED)
    lesson5.check_fix([("blocks.3.hook_resid_pre", lambda x, hook: 1 / 0)])
    assert not model.hook_dict["blocks.3.hook_resid_pre"].fwd_hooks
