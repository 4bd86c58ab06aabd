"""Workbook 1b (circuits in the weights): its checks catch wrong answers, and its text agrees with the models.

Part 1 feeds every check of ``helpers.lesson1.checks_weights`` (exercises 8 to 14) the reference, the solved
workbook's function, the generated stub, and plausible wrong answers written the way a learner might write
them. Each wrong answer is written here on its own, not taken from ``helpers.lesson1.mistakes_weights``.

Part 2 runs the solved workbook ``solutions/01b_*.ipynb`` and asserts every figure its text quotes, on the
very variables its cells print.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from notebook_cells import assert_rejected, run_lesson, workbook_check_tests, wrong_answer_ids  # noqa: E402
from transformer_lens import FactoredMatrix, head_detector  # noqa: E402
from transformer_lens.head_detector import detect_head  # noqa: E402

from helpers import lesson1  # noqa: E402
from helpers.lesson1 import cases_weights  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAME = "01b_weights_and_training.ipynb"
EXERCISES = ["full_ov_circuit", "diagonal_top1_share", "eigenvalue_positivity", "positional_attention_pattern",
             "composition_scores", "detection_score", "repeated_half_loss"]
CHECKS = {name: getattr(lesson1, f"check_{name}") for name in EXERCISES}


@pytest.fixture(autouse=True)
def _no_grad():
    """No gradients in this module's tests (without leaking that global switch to other modules)."""
    with torch.no_grad():
        yield


# ============================================================================ part 1: the checks
test_reference_and_solved_workbook_pass, test_generated_stub_is_rejected = workbook_check_tests(
    NAME, lesson1, EXERCISES)


# ----------------------------------------------------------------------------- exercise 8
def _ov(order="EVOU"):
    def learner(model, layer, head):
        w_v, w_o = model.W_V[layer, head], model.W_O[layer, head]
        if order == "no_E":
            return FactoredMatrix(w_v, w_o) @ model.W_U
        if order == "no_U":
            return model.W_E @ FactoredMatrix(w_v, w_o)
        if order == "OV":
            return model.W_E @ FactoredMatrix(w_o, w_v) @ model.W_U
        if order == "transposed":
            return (model.W_E @ FactoredMatrix(w_v, w_o) @ model.W_U).T
        if order == "dense":
            return model.W_E @ w_v @ w_o @ model.W_U
        if order == "head_layer":
            return model.W_E @ model.OV[head, layer] @ model.W_U
        return model.W_E @ FactoredMatrix(w_v, w_o) @ model.W_U
    return learner


# ----------------------------------------------------------------------------- exercise 9
def _top1(way="strict"):
    def learner(matrix):
        n = matrix.shape[0]
        if way == "argmax":
            return (matrix.argmax(dim=-1) == torch.arange(n)).float().mean().item()
        if way == "argmax_dim0":
            return (matrix.argmax(dim=0) == torch.arange(n)).float().mean().item()
        if way == "max_values":
            return (matrix.max(dim=1).values == matrix.diagonal()).float().mean().item()
        off = matrix.clone()
        off.fill_diagonal_(float("-inf"))
        hits = matrix.diagonal() > off.max(dim=1).values
        if way == "entries":
            return hits.sum().item() / matrix.numel()
        if way == "count":
            return hits.sum().item()
        if way == "tensor":
            return hits.float().mean()
        return hits.float().mean().item()
    return learner


# ----------------------------------------------------------------------------- exercise 10
def _positivity(way="right"):
    def learner(fm):
        eigenvalues = fm.eigenvalues
        if way == "no_abs":
            return (eigenvalues.sum() / eigenvalues.sum()).real.item()
        if way == "singular":
            return (fm.S.sum() / fm.S.abs().sum()).item()
        if way == "real_abs":
            return (eigenvalues.real.sum() / eigenvalues.real.abs().sum()).item()
        if way == "nuclear":
            return (eigenvalues.real.sum() / fm.S.sum()).item()
        if way == "modulus":
            return (eigenvalues.sum().abs() / eigenvalues.abs().sum()).item()
        if way == "complex":
            return (eigenvalues.sum() / eigenvalues.abs().sum()).item()
        return (eigenvalues.sum().real / eigenvalues.abs().sum()).item()
    return learner


# ----------------------------------------------------------------------------- exercise 11
def _positional(divide="both", sqrt=True, mask="before", dim=-1, swap=False, bias=False):
    def learner(model, layer, head, ln_scale=1.0):
        positions = model.W_pos / ln_scale if divide == "both" else model.W_pos
        w_q, w_k = model.W_Q[layer, head], model.W_K[layer, head]
        if swap:
            w_q, w_k = w_k, w_q
        q, k = positions @ w_q, positions @ w_k
        if bias:
            q, k = q + model.b_Q[layer, head], k + model.b_K[layer, head]
        scores = q @ k.T
        if divide == "once":
            scores = scores / ln_scale
        if sqrt:
            scores = scores / model.cfg.d_head ** 0.5
        n = scores.shape[0]
        later = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=0 if mask == "diagonal" else 1)
        if mask in ("before", "diagonal"):
            scores = torch.where(later, torch.tensor(-1e9), scores)
        pattern = torch.softmax(scores, dim=dim)
        if mask == "after":
            pattern = pattern * ~later
        return pattern
    return learner


# ----------------------------------------------------------------------------- exercise 12
def _composition(way="right", fixed_mode=None):
    def learner(model, mode):
        mode = fixed_mode or mode
        n = model.cfg.n_heads
        out = torch.zeros(n, n)
        for i in range(n):
            w_ov = model.W_V[0, i] @ model.W_O[0, i]
            for j in range(n):
                w_qk = model.W_Q[1, j] @ model.W_K[1, j].T
                if way == "qk_swapped":
                    right = {"Q": w_qk.T, "K": w_qk, "V": model.W_V[1, j] @ model.W_O[1, j]}[mode]
                else:
                    right = {"Q": w_qk, "K": w_qk.T, "V": model.W_V[1, j] @ model.W_O[1, j]}[mode]
                product = right @ w_ov if way == "order" else w_ov @ right
                if way == "spectral":
                    score = torch.linalg.matrix_norm(product, ord=2) / (
                        torch.linalg.matrix_norm(w_ov, ord=2) * torch.linalg.matrix_norm(right, ord=2))
                elif way == "no_norm":
                    score = product.norm()
                else:
                    score = product.norm() / (w_ov.norm() * right.norm())
                out[i, j] = score
        return out.T if way == "transposed" else out
    return learner


# ----------------------------------------------------------------------------- exercise 13
def _detection(way="right"):
    def learner(pattern, detection_pattern, exclude_bos=False):
        if way == "in_place":                       # as transformer_lens's own code does
            if exclude_bos:
                pattern[:, 0] = 0
            return ((pattern * detection_pattern).sum() / pattern.sum()).item()
        kept = pattern.clone()
        if exclude_bos and way != "bos_ignored":
            kept[:, 0] = 0
        on = (kept * detection_pattern).sum()
        if way == "stripe_mean":
            return (on / detection_pattern.sum()).item()
        if way == "no_divide":
            return on.item()
        if way == "mean":
            return (kept * detection_pattern).mean().item()
        if way == "bos_denominator":
            return (on / pattern.sum()).item()
        if way == "tensor":
            return on / kept.sum()
        return (on / kept.sum()).item()
    return learner


# ----------------------------------------------------------------------------- exercise 14
def _half_loss(way="right", half=None):
    def learner(model, tokens):
        half_len = half or (tokens.shape[1] - 1) // 2
        logits = model(tokens)
        scores = logits if way == "raw" else torch.log_softmax(logits, dim=-1)
        if way == "probs":
            scores = torch.softmax(logits, dim=-1)
        if way == "whole":
            pred, target = scores[:, :-1], tokens[:, 1:]
        elif way == "same":
            pred, target = scores[:, half_len + 1:], tokens[:, half_len + 1:]
        elif way == "with_first":
            pred, target = scores[:, half_len:-1], tokens[:, half_len + 1:]
        else:
            pred, target = scores[:, half_len + 1:-1], tokens[:, half_len + 2:]
        picked = pred.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return picked.mean().item() if way == "no_minus" else -picked.mean().item()
    return learner


WRONG_ANSWERS = [
    ("full_ov_circuit", _ov("no_E"), ["[d_model, d_vocab]", "model.W_E"]),
    ("full_ov_circuit", _ov("no_U"), ["[d_vocab, d_model]", "model.W_U"]),
    ("full_ov_circuit", _ov("transposed"), ["built it transposed", "W_E first"]),
    ("full_ov_circuit", _ov("dense"), ["plain tensor", "keep it factored"]),
    ("full_ov_circuit", _ov("head_layer"), ["wrong way round", "[layer, head]"]),
    ("full_ov_circuit", _ov("OV"), ["raised AssertionError", "must match on inner dimension"]),
    ("diagonal_top1_share", _top1("argmax"), ["argmax returns the first of tied entries", "strictly larger"]),
    ("diagonal_top1_share", _top1("max_values"), ["only ties the largest entry", "strictly larger"]),
    ("diagonal_top1_share", _top1("argmax_dim0"), ["looked down the columns"]),
    ("diagonal_top1_share", _top1("entries"), ["number of entries (n * n)"]),
    ("diagonal_top1_share", _top1("count"), ["how many rows copy, not what share"]),
    ("diagonal_top1_share", _top1("tensor"), ["expected a number", "(use .item())"]),
    ("eigenvalue_positivity", _positivity("no_abs"), ["1.0 whatever the matrix", "abs()"]),
    ("eigenvalue_positivity", _positivity("singular"), ["1.0 whatever the matrix", "singular values"]),
    ("eigenvalue_positivity", _positivity("real_abs"), ["|Re λ|", "complex modulus"]),
    ("eigenvalue_positivity", _positivity("nuclear"), ["sum of the singular values (fm.S)"]),
    ("eigenvalue_positivity", _positivity("modulus"), ["size of the sum", "real part"]),
    ("eigenvalue_positivity", _positivity("complex"), ["returned a complex, expected a number"]),
    ("positional_attention_pattern", _positional(divide="none"), ["left out ln_scale", "W_pos / ln_scale"]),
    ("positional_attention_pattern", _positional(divide="once"), ["divided the scores by ln_scale once", "twice"]),
    ("positional_attention_pattern", _positional(sqrt=False), ["sqrt(d_head)"]),
    ("positional_attention_pattern", _positional(mask="none"), ["forgot the causal mask"]),
    ("positional_attention_pattern", _positional(mask="after"), ["after the softmax", "no longer sum to 1"]),
    ("positional_attention_pattern", _positional(mask="diagonal"), ["masked the diagonal too"]),
    ("positional_attention_pattern", _positional(dim=0), ["softmax over the queries (dim=0)"]),
    ("positional_attention_pattern", _positional(swap=True), ["swapped W_Q and W_K"]),
    ("positional_attention_pattern", _positional(bias=True), ["added the biases b_Q and b_K"]),
    ("composition_scores", _composition("qk_swapped"), ["swapped Q- and K-composition"]),
    ("composition_scores", _composition("order"), ["wrong order", "W_OV comes first"]),
    ("composition_scores", _composition("no_norm"), ["divide by the two matrices' norms"]),
    ("composition_scores", _composition("transposed"), ["rows are the block-1 heads"]),
    ("composition_scores", _composition("spectral"), ["spectral norm (ord=2)", "Frobenius"]),
    ("composition_scores", _composition(fixed_mode="K"), ["ignored mode"]),
    ("detection_score", _detection("stripe_mean"), ["number of 1s in the detection pattern", "pattern.sum()"]),
    ("detection_score", _detection("no_divide"), ["forgot to divide"]),
    ("detection_score", _detection("mean"), ["averaged over every entry"]),
    ("detection_score", _detection("bos_denominator"), ["not from the bottom"]),
    ("detection_score", _detection("bos_ignored"), ["ignored exclude_bos"]),
    ("detection_score", _detection("in_place"), ["modified your input in place"]),
    ("detection_score", _detection("tensor"), ["expected a number", "(use .item())"]),
    ("repeated_half_loss", _half_loss("whole"), ["whole sequence", "second copy"]),
    ("repeated_half_loss", _half_loss("same"), ["NEXT token, at p + 1"]),
    ("repeated_half_loss", _half_loss("raw"), ["raw logits", "log_softmax"]),
    ("repeated_half_loss", _half_loss("with_first"), ["second copy's first token"]),
    ("repeated_half_loss", _half_loss(half=25), ["fixed half length", "tokens.shape[1]"]),
    ("repeated_half_loss", _half_loss("no_minus"), ["minus it, a positive number"]),
    ("repeated_half_loss", _half_loss("probs"), ["wrong values", "Hint: half_len"]),
]


@pytest.mark.parametrize(("name", "learner", "expected"), WRONG_ANSWERS, ids=wrong_answer_ids(WRONG_ANSWERS))
def test_wrong_answer_is_rejected_with_its_message(name: str, learner, expected: list[str],
                                                   capsys: pytest.CaptureFixture) -> None:
    assert_rejected(CHECKS[name](learner), name, expected, capsys.readouterr().out)


def test_checks_leave_the_cases_unchanged_after_an_in_place_learner() -> None:
    """The learner who zeroes BOS in place writes into a copy: the next check of a right answer passes."""
    assert not CHECKS["detection_score"](_detection("in_place")).passed
    assert CHECKS["detection_score"](lesson1.detection_score).passed


# ---------------------------------------------------------------- references agree with the libraries
def test_references_agree_with_transformer_lens() -> None:
    model = lesson1.check_model("attn-only-2l")
    for mode in ("Q", "K", "V"):
        assert torch.allclose(lesson1.composition_scores(model, mode), model.all_composition_scores(mode)[0, :, 1, :],
                              atol=1e-5)
    k_scores = lesson1.composition_scores(model, "K")
    assert abs(k_scores[6, 2].item() - lesson1.k_composition_score(model, (0, 6), (1, 2))) < 1e-5
    text = "The cat sat on the mat. The cat sat on the mat and the dog sat on the rug."
    tokens = model.to_tokens(text)
    _, cache = model.run_with_cache(tokens)
    for kind in ("previous_token_head", "induction_head", "duplicate_token_head"):
        detection = getattr(head_detector, f"get_{kind}_detection_pattern")(tokens)
        for exclude_bos in (False, True):
            ours = torch.tensor([[lesson1.detection_score(cache["pattern", layer][0, head], detection, exclude_bos)
                                  for head in range(8)] for layer in range(2)])
            assert torch.allclose(ours, detect_head(model, text, kind, exclude_bos=exclude_bos), atol=1e-6)


def test_repeated_half_loss_is_lesson_ones_second_half_loss() -> None:
    model = lesson1.check_model("attn-only-2l")
    tokens = cases_weights.half_loss_cases()[1].args[1]
    assert abs(lesson1.repeated_half_loss(model, tokens) - lesson1.second_half_loss(model, tokens, 10)) < 1e-6


def test_full_ov_circuit_stays_factored_and_matches_the_dense_product() -> None:
    model = lesson1.check_model("attn-only-2l")
    circuit = lesson1.full_ov_circuit(model, 1, 3)
    assert isinstance(circuit, FactoredMatrix) and circuit.A.shape == (4150, 32)
    rows = slice(10, 20)
    dense = model.W_E[rows] @ model.W_V[1, 3] @ model.W_O[1, 3] @ model.W_U
    assert torch.allclose(circuit.A[rows] @ circuit.B, dense, atol=1e-5)
    assert lesson1.diagonal_top1_share(torch.eye(4) * 2 - 1) == 1.0
    assert lesson1.diagonal_top1_share(torch.ones(3, 3)) == 0.0          # ties everywhere: no copies
    assert abs(lesson1.eigenvalue_positivity(FactoredMatrix(-torch.eye(3), torch.eye(3))) + 1) < 1e-6


# ============================================================================ part 2: the workbook's claims
@pytest.fixture(scope="module")
def workbook() -> dict:
    """The namespace left by running every code cell of the solved workbook."""
    return run_lesson(ROOT / "solutions" / NAME)


def test_claim_every_check_passes_on_the_solved_workbook(workbook: dict) -> None:
    assert all(workbook[f"passed_{k}"] for k in range(8, 15))


def test_claim_the_induction_head_copies_under_2_percent_about_70_times_chance(workbook: dict) -> None:
    ind, prev = workbook["IND"], workbook["PREV"]
    assert (ind, prev) == ((1, 1), (0, 5))
    top1 = workbook["top1"]
    share = top1["induction head 1.1"]
    assert share < 0.02 and 60 <= share * 4150 <= 80
    assert top1["previous-token head 0.5"] == 0.0 and top1["random head"] == 0.0


def test_claim_positivity_block_1_positive_previous_token_head_negative(workbook: dict) -> None:
    positivity = workbook["positivity"]
    assert f"{positivity[1].min():.2f}" == "0.53" and f"{positivity[1].max():.2f}" == "0.73"
    assert f"{positivity[0, 5]:.2f}" == "-0.89"
    assert f"{workbook['random_positivity']:.2f}" == "-0.04"


def test_claim_positional_stripe_066_scaled_007_as_stored(workbook: dict) -> None:
    assert f"{workbook['ln_scale']:.2f}" == "0.14"
    assert f"{workbook['scaled'].diagonal(-1).mean():.2f}" == "0.66"
    assert f"{workbook['as_stored'].diagonal(-1).mean():.2f}" == "0.07"
    assert 40 < 1 / workbook["ln_scale"] ** 2 < 60                       # "about 50 times smaller"


def test_claim_composition_rows_k_05_q_07_v_below_010(workbook: dict) -> None:
    rows = {mode: scores.mean(1) for mode, scores in workbook["mine"].items()}
    assert rows["K"].argmax().item() == 5 and f"{rows['K'][5]:.3f}" == "0.160"
    assert rows["Q"].argmax().item() == 7 and f"{rows['Q'][7]:.3f}" == "0.111"
    assert rows["V"].max() < 0.10


def test_claim_detection_score_is_detect_heads_and_half_of_lesson_ones(workbook: dict) -> None:
    assert workbook["gap"] < 1e-6
    theirs, ours = workbook["theirs"], workbook["induction"][1, 1].item()
    assert f"{theirs:.2f}" == "0.48" and f"{ours:.2f}" == "0.98" and f"{theirs / ours:.2f}" == "0.49"


def test_claim_checkpoints_loss_falls_from_above_6_to_under_01(workbook: dict) -> None:
    from helpers.models import checkpoint_index, checkpoint_steps, load_checkpoint

    steps = checkpoint_steps()
    assert steps[0] < checkpoint_index()["phase_change_step"] <= steps[-1] - 1000     # before it, and long after
    first, last = load_checkpoint(steps[0]), load_checkpoint(steps[-1])
    tokens = workbook["rep_tokens"]
    assert lesson1.repeated_half_loss(first, tokens) > 6 and lesson1.repeated_half_loss(last, tokens) < 0.1
    scores = [lesson1.induction_scores(model.run_with_cache(tokens)[1], 2, 25).max().item() for model in (first, last)]
    assert 0.05 < scores[0] < 0.15 and scores[1] > 0.95
    assert f"{lesson1.repeated_half_loss(workbook['model'], tokens):.2f}" == "0.06"
