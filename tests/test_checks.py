"""helpers.checks must pass the reference and reject each plausible wrong answer with its own message."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.checks import Case, CheckResult, check_function, check_value


# --- a fixture exercise: how much each head attends from each position to the previous one ---
def previous_token_attention(pattern: torch.Tensor) -> torch.Tensor:
    """pattern: [head, query, key] attention probabilities -> [head, query - 1], entry i = pattern[:, i+1, i]."""
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1)


def attention_to_next(pattern: torch.Tensor) -> torch.Tensor:
    """A known mistake: the diagonal above, i.e. attention to the *next* token (zero in a causal pattern)."""
    return pattern.diagonal(offset=1, dim1=-2, dim2=-1)


def _pattern(n_heads: int, n_pos: int, seed: int) -> torch.Tensor:
    scores = torch.randn(n_heads, n_pos, n_pos, generator=torch.Generator().manual_seed(seed))
    causal = torch.ones(n_pos, n_pos, dtype=torch.bool).triu(1)
    return scores.masked_fill(causal, float("-inf")).softmax(-1)


CASES = [Case((_pattern(3, 5, 0),), label="3 heads, 5 positions"), Case((_pattern(2, 2, 1),), label="2 positions")]
MISTAKES = {"next": (attention_to_next, "you read the attention to the *next* token: use the diagonal below")}


def check(learner_fn) -> CheckResult:
    return check_function(learner_fn, previous_token_attention, CASES, name="previous_token_attention",
                          known_mistakes=MISTAKES, hint="torch.diagonal with offset=-1 picks pattern[:, i+1, i]")


def stub(pattern: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("previous_token_attention: not implemented yet")


def test_reference_passes(capsys: pytest.CaptureFixture) -> None:
    result = check(previous_token_attention)
    assert result.passed and bool(result)
    assert result.message == "✅ previous_token_attention: passed all 2 cases."
    assert capsys.readouterr().out.strip() == result.message  # printed: exactly one line


@pytest.mark.parametrize(
    ("learner_fn", "expected_parts"),
    [
        (stub, ["not implemented yet", "replace the `raise NotImplementedError` line"]),
        (lambda p: p.diagonal(dim1=-2, dim2=-1), ["returned shape (3, 5), expected (3, 4)", "one position too many"]),
        (lambda p: p.diagonal(dim1=-2, dim2=-1)[:, 2:],
         ["returned shape (3, 3), expected (3, 4)", "one position too few"]),
        (lambda p: previous_token_attention(p).T, ["returned shape (4, 3), expected (3, 4)", "looks transposed"]),
        (lambda p: previous_token_attention(p).sum(-1), ["one dimension too few"]),
        (lambda p: 2 * previous_token_attention(p),
         ["wrong values on case '3 heads, 5 positions' (max abs error", "Hint: torch.diagonal with offset=-1"]),
        (lambda p: -previous_token_attention(p), ["wrong values", "the sign looks flipped"]),
        (lambda p: previous_token_attention(p) / 0.0, ["returned inf values", "division by zero"]),
        (lambda p: previous_token_attention(p) * float("nan"), ["returned NaN values"]),
        (lambda p: None, ["returned None — did you forget `return`?"]),
        (lambda p: p[7], ["raised IndexError: index 7 is out of bounds", "on case '3 heads, 5 positions'"]),
        (attention_to_next, ["you read the attention to the *next* token", "on case '3 heads, 5 positions'"]),
        (lambda p: previous_token_attention(p).tolist(), ["returned a list, expected a tensor of shape (3, 4)"]),
        (lambda p: previous_token_attention(p).numpy(), ["returned a numpy array", "expected a tensor"]),
        (lambda p: previous_token_attention(p) > 0.5, ["returned dtype torch.bool, expected a floating-point dtype"]),
    ],
    ids=["stub", "kept-bos", "dropped-two", "transposed", "reduced", "wrong-value", "sign", "inf", "nan", "none",
         "exception", "known-mistake", "list", "numpy", "bool-dtype"],
)
def test_wrong_answers_are_rejected_with_their_message(learner_fn, expected_parts: list[str],
                                                       capsys: pytest.CaptureFixture) -> None:
    result = check(learner_fn)
    assert not result.passed and not result
    assert result.message.startswith("❌ previous_token_attention")
    for part in expected_parts:
        assert part in result.message
    printed = capsys.readouterr().out
    assert printed.strip() == result.message and "Traceback" not in printed


def test_a_later_case_can_fail_alone() -> None:
    def wrong_on_short(p: torch.Tensor) -> torch.Tensor:
        return previous_token_attention(p) if p.shape[-1] > 2 else torch.zeros(p.shape[0], 1)

    assert "on case '2 positions'" in check(wrong_on_short).message


def test_known_mistake_is_not_blamed_when_it_agrees_with_the_reference() -> None:
    """On a case where the mistake gives the right answer, a wrong output gets the generic message."""
    same_as_reference = {"same": (previous_token_attention, "should never be shown")}
    result = check_function(lambda p: p.diagonal(offset=-1, dim1=-2, dim2=-1) + 1, previous_token_attention, CASES,
                            name="prev", known_mistakes=same_as_reference)
    assert "should never be shown" not in result.message and "wrong values" in result.message


def test_in_place_learner_cannot_corrupt_the_reference_or_the_inputs() -> None:
    pattern = _pattern(2, 4, 3)
    original = pattern.clone()

    def in_place(p: torch.Tensor) -> torch.Tensor:
        p.zero_()
        return p.diagonal(offset=-1, dim1=-2, dim2=-1)

    result = check_function(in_place, previous_token_attention, [Case((pattern,))], name="prev")
    assert not result.passed and "wrong values on case '#1'" in result.message
    assert torch.equal(pattern, original)


def test_cases_may_be_plain_tuples_and_kwargs() -> None:
    def scale(x: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
        return x * factor

    assert check_function(scale, scale, [(torch.ones(2),), Case((torch.ones(2),), {"factor": 3.0})], name="scale")
    bad = check_function(lambda x, factor=1.0: x, scale, [Case((torch.ones(2),), {"factor": 3.0}, "k")], name="s")
    assert "wrong values on case 'k'" in bad.message


def test_logit_difference_sign_flip_known_mistake() -> None:
    def logit_diff(logits: torch.Tensor, io: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """logits: [batch, vocab]; io, s: [batch] token ids -> [batch] logit(IO) - logit(S)."""
        rows = torch.arange(len(logits))
        return logits[rows, io] - logits[rows, s]

    flipped = lambda logits, io, s: -logit_diff(logits, io, s)  # noqa: E731
    case = Case((torch.randn(4, 10, generator=torch.Generator().manual_seed(0)), torch.tensor([1, 2, 3, 4]),
                 torch.tensor([5, 6, 7, 8])), label="4 prompts")
    result = check_function(flipped, logit_diff, [case], name="logit_diff",
                            known_mistakes={"sign": (flipped, "the sign is flipped: you computed S minus IO")})
    assert result.message == "❌ logit_diff: the sign is flipped: you computed S minus IO (failed on case '4 prompts')"


def test_not_a_function() -> None:
    assert "expected a function" in check_function(3.0, previous_token_attention, CASES, name="prev").message


@pytest.mark.parametrize(
    ("got", "want", "expected_part"),
    [
        (0.5, 0.5, "✅ v: correct."),
        (0.50001, 0.5, "✅ v: correct."),
        (np.float32(0.5), 0.5, "✅ v: correct."),
        (0.6, 0.5, "wrong values (max abs error 0.1)"),
        (torch.tensor(0.5), 0.5, "expected a number (use .item())"),
        (float("nan"), 0.5, "returned NaN values"),
        (2.0, 2, "returned a float, expected an int"),
        (3, 4, "wrong value (got 3)"),
        (True, False, "wrong value (got True)"),
        (1, True, "expected a bool"),
        ((1, torch.ones(2)), (1, torch.zeros(2)), "wrong values in output[1]"),
        ([1.0], (1.0, 2.0), "returned 1 items, expected 2"),
        ({"a": 1}, {"a": 1, "b": 2}, "returned keys ['a'], expected a dict with keys ['a', 'b']"),
        ({"a": np.ones(2)}, {"a": np.ones(2)}, "✅ v: correct."),
        ({"a": torch.ones(2)}, {"a": np.ones(2)}, "expected a numpy array of shape (2,) (use .numpy())"),
        (torch.tensor([1, 2]), torch.tensor([1, 3]), "wrong values (1 of 2 entries differ)"),
        ("L1H3", "L1H3", "✅ v: correct."),
        ("L0H3", "L1H3", "wrong value"),
        (None, 1.0, "returned None — did you forget `return`?"),
        (..., 1.0, "not filled in yet"),
    ],
)
def test_check_value(got, want, expected_part: str) -> None:
    result = check_value(got, want, name="v")
    assert expected_part in result.message
    assert result.passed == expected_part.startswith("✅")


def test_check_value_known_mistake_and_custom_compare() -> None:
    mistakes = {"pct": (50.0, "you returned a percentage: give a fraction between 0 and 1")}
    assert "you returned a percentage" in check_value(50.0, 0.5, name="acc", known_mistakes=mistakes).message
    assert "Hint: divide by the count" in check_value(3.0, 0.5, name="acc", known_mistakes=mistakes,
                                                      hint="divide by the count").message
    unordered = lambda a, b: sorted(a) == sorted(b)  # noqa: E731
    assert check_value([3, 1, 2], [1, 2, 3], name="heads", compare=unordered).passed
    assert "wrong values" in check_value([3, 1], [1, 2], name="heads", compare=unordered).message


def test_hint_follows_a_question_without_a_stray_full_stop() -> None:
    from helpers.checks import check_function

    result = check_function(lambda x: x[None], lambda x: x, [(torch.zeros(2, 3),)], name="f", hint="do it")
    assert "?. Hint" not in result.message and "? Hint: do it" in result.message


def test_in_place_edit_of_an_input_is_reported_and_does_not_leak() -> None:
    from helpers.checks import check_function

    original = torch.ones(3)

    def learner(x):
        x += 1
        return x - 1

    result = check_function(learner, lambda x: x.clone(), [(original,)], name="f")
    assert not result.passed and "modified your input in place" in result.message
    assert torch.equal(original, torch.ones(3))


def test_mistakes_ruled_out_on_the_first_case_are_not_run_on_a_later_one() -> None:
    """With rule_out_on_first_case, a learner who passed the first case is not compared with a known mistake
    that already differs from the reference there: it is not run on the (dear) failing case."""
    runs = []

    def next_token(pattern):
        runs.append(pattern.shape[-1])
        return attention_to_next(pattern)

    def wrong_on_two_positions(pattern):
        out = previous_token_attention(pattern)
        return out + 1 if pattern.shape[-1] == 2 else out

    def judged(**options):
        runs.clear()
        result = check_function(wrong_on_two_positions, previous_token_attention, CASES,
                                name="previous_token_attention",
                                known_mistakes={"next": (next_token, "attention to the next token")}, **options)
        return result, list(runs)

    result, ran = judged()
    assert not result.passed and ran == [2]                          # by default: run on the failing case
    result, ran = judged(rule_out_on_first_case=True)
    assert not result.passed and "wrong values on case '2 positions'" in result.message
    assert ran == [5]                                                # ruled out on the first case, not run again
    caught = check_function(attention_to_next, previous_token_attention, CASES, known_mistakes=MISTAKES,
                            rule_out_on_first_case=True)
    assert "diagonal below" in caught.message                        # a mistake made on the first case is named
