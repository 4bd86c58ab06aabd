"""The inputs workbook 1b's checks run every function on.

The models are the checks' own copies (:func:`helpers.lesson1.cases.check_model`): both course models, a
tiny GPT-2-like model and a tiny model with folded LayerNorms. Each case list is built once per process;
:func:`clear_caches` forgets them. :class:`OVRows` is how exercise 8's check compares two
``d_vocab x d_vocab`` matrices without building either: the shape, and a few rows of the product.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import FactoredMatrix
from transformer_lens import head_detector as detector

from helpers.checks import Case
from helpers.lesson1.analysis import CAT_PROMPT, IOI_PROMPT
from helpers.lesson1.cases import check_model, pattern_cache
from helpers.lesson1.reference_weights import full_ov_circuit
from helpers.metrics import repeated_random_tokens

__all__ = ["OVRows", "ov_rows", "same_ov_rows", "token_block", "ov_cases", "top1_cases", "positivity_cases",
           "positional_cases", "composition_cases", "detection_cases", "half_loss_cases", "clear_caches"]

N_ROWS = 40          # rows of a d_vocab x d_vocab matrix that exercise 8's check compares


# ----------------------------------------------------------------------------- exercise 8's comparison
@dataclass(frozen=True)
class OVRows:
    """What exercise 8's check compares of a returned matrix: its kind, its shape, and some of its rows."""

    kind: str                        # "factored" (a FactoredMatrix), "tensor" (materialised) or "other"
    shape: tuple[int, ...]
    rows: Tensor | None              # rows 0, step, 2 * step, ... of the product, all columns


def ov_rows(output: object) -> OVRows | None:
    """:class:`OVRows` of what an exercise-8 function returned (None stays None: the check says so)."""
    if output is None:
        return None
    if isinstance(output, FactoredMatrix) and output.ndim == 2:
        picked = torch.arange(0, output.ldim, max(1, output.ldim // N_ROWS))[:N_ROWS]
        return OVRows("factored", tuple(output.shape), output.A[picked] @ output.B)
    if isinstance(output, Tensor) and output.ndim == 2:
        picked = torch.arange(0, output.shape[0], max(1, output.shape[0] // N_ROWS))[:N_ROWS]
        return OVRows("tensor", tuple(output.shape), output[picked].detach())
    shape = tuple(getattr(output, "shape", ()))
    return OVRows("other", shape, None)


def same_ov_rows(got: OVRows, want: OVRows) -> bool:
    """Same kind, same shape and the same rows (to float32 rounding, relative to the rows' scale)."""
    if not isinstance(got, OVRows) or got.kind != want.kind or got.shape != want.shape:
        return False
    if got.rows is None or want.rows is None:
        return got.rows is None and want.rows is None
    scale = want.rows.abs().max().item()
    return torch.allclose(got.rows.double(), want.rows.double(), atol=1e-4 * max(scale, 1.0), rtol=1e-4)


def token_block(fm: FactoredMatrix, n_tokens: int, first: int = 4) -> Float[Tensor, "d_vocab d_vocab"]:
    """The ``n_tokens x n_tokens`` block of a factored ``d_vocab x d_vocab`` matrix from token ``first`` on."""
    chosen = slice(first, first + n_tokens)
    return fm.A[chosen] @ fm.B[:, chosen]


# ----------------------------------------------------------------------------- the cases of each exercise
@lru_cache(maxsize=None)
def ov_cases() -> list[Case]:
    """Exercise 8: induction and previous-token heads of both models, and a head of a tiny GPT-2-like model."""
    two, four, tiny = check_model("attn-only-2l"), check_model("course-4l"), check_model("tiny-gpt2-like")
    return [
        Case((two, 1, 0), label="2-layer model, head 1.0"),
        Case((two, 0, 5), label="2-layer model, head 0.5"),
        Case((four, 2, 1), label="4-layer model, head 2.1"),
        Case((tiny, 1, 2), label="tiny GPT-2-like model (50 tokens), head 1.2"),
    ]


def _tie_matrix() -> Float[Tensor, "d_vocab d_vocab"]:
    """Six rows: two clear copies, a tie with the diagonal first, a tie with it later, a three-way tie, a miss."""
    return torch.tensor([[5.0, 1.0, 0.0, 0.0, 2.0, 0.0],
                         [0.0, 4.0, 1.0, 1.0, 0.0, 3.0],
                         [0.0, 1.0, 3.0, 3.0, 0.0, 0.0],
                         [3.0, 0.0, 0.0, 3.0, 1.0, 0.0],
                         [1.0, 1.0, 0.0, 0.0, 1.0, 1.0],
                         [6.0, 0.0, 0.0, 0.0, 0.0, 2.0]])


@lru_cache(maxsize=None)
def top1_cases() -> list[Case]:
    """Exercise 9: blocks of real full OV circuits, a noisy identity, hand-made ties, a column-wise copier."""
    two, four = check_model("attn-only-2l"), check_model("course-4l")
    noisy = torch.randn(60, 60, generator=torch.Generator().manual_seed(0)) + 2.5 * torch.eye(60)
    columns = torch.eye(5) + torch.tensor([[0.0, 2.0, 2.0, 2.0, 2.0]] + [[0.0] * 5] * 4)  # rows: 4 of 5, columns: 1
    return [
        Case((token_block(full_ov_circuit(two, 1, 6), 400),), label="2-layer model, head 1.6, tokens 4-403"),
        Case((noisy,), label="random 60 x 60 matrix plus 2.5 on the diagonal"),
        Case((_tie_matrix(),), label="hand-made 6 x 6 matrix with ties"),
        Case((columns,), label="5 x 5 matrix whose rows and columns disagree"),
        Case((token_block(full_ov_circuit(four, 2, 1), 300),), label="4-layer model, head 2.1, tokens 4-303"),
    ]


@lru_cache(maxsize=None)
def positivity_cases() -> list[Case]:
    """Exercise 10: OV and QK circuits of both models, a token block of a full OV circuit, and hand-made ones."""
    two, four = check_model("attn-only-2l"), check_model("course-4l")
    generator = torch.Generator().manual_seed(1)
    mixed = FactoredMatrix(torch.randn(6, 4, generator=generator), torch.randn(4, 6, generator=generator))
    rotation = FactoredMatrix(torch.tensor([[0.0, -1.0], [1.0, 0.0]]), torch.eye(2))
    block = full_ov_circuit(two, 1, 2)
    return [
        Case((two.OV[1, 2],), label="2-layer model, OV circuit of head 1.2 (d_model x d_model)"),
        Case((two.OV[0, 4],), label="2-layer model, OV circuit of head 0.4"),
        Case((mixed,), label="random 6 x 4 times 4 x 6 matrix (complex eigenvalues of both signs)"),
        Case((rotation,), label="a 90-degree rotation (eigenvalues i and -i)"),
        Case((FactoredMatrix(block.A[4:304], block.B[:, 4:304]),), label="2-layer model, head 1.2, tokens 4-303"),
        Case((four.QK[0, 4],), label="4-layer model, QK circuit of head 0.4"),
    ]


@lru_cache(maxsize=None)
def positional_cases() -> list[Case]:
    """Exercise 11: a previous-token head and another head of each course model, and a tiny model, several scales."""
    two, four, tiny = check_model("attn-only-2l"), check_model("course-4l"), check_model("tiny-uncentred")
    return [
        Case((two, 0, 5, 0.14), label="2-layer model, head 0.5, ln_scale 0.14"),
        Case((two, 1, 3, 1.0), label="2-layer model, head 1.3, ln_scale 1 (W_pos as stored)"),
        Case((four, 0, 4, 0.2), label="4-layer model, head 0.4 (96 positions), ln_scale 0.2"),
        Case((tiny, 1, 1, 0.5), label="tiny model (16 positions), head 1.1, ln_scale 0.5"),
    ]


@lru_cache(maxsize=None)
def composition_cases() -> list[Case]:
    """Exercise 12: the three modes on the 2-layer model, and on the 4-layer and a tiny GPT-2-like model."""
    two, four, tiny = check_model("attn-only-2l"), check_model("course-4l"), check_model("tiny-gpt2-like")
    return [
        Case((two, "K"), label="2-layer model, K"),
        Case((two, "V"), label="2-layer model, V"),
        Case((two, "Q"), label="2-layer model, Q"),
        Case((four, "Q"), label="4-layer model, Q"),
        Case((tiny, "V"), label="tiny GPT-2-like model (4 heads a block), V"),
    ]


def _head_pattern(name: str, tokens: Int[Tensor, "batch pos"], layer: int,
                  head: int) -> Float[Tensor, "query_pos key_pos"]:
    return pattern_cache(name, tuple(map(tuple, tokens.tolist())))["pattern", layer][0, head]


@lru_cache(maxsize=None)
def detection_cases() -> list[Case]:
    """Exercise 13: real heads with detect_head's own detection patterns, with and without BOS, and a hand-made one."""
    two, four = check_model("attn-only-2l"), check_model("course-4l")
    repeated = repeated_random_tokens(two, n_seqs=1, half_len=10, seed=2)
    cat, ioi = two.to_tokens(CAT_PROMPT), four.to_tokens(IOI_PROMPT)
    induction = detector.get_induction_head_detection_pattern(repeated)
    previous = detector.get_previous_token_head_detection_pattern(cat)
    duplicate = detector.get_duplicate_token_head_detection_pattern(ioi)
    uniform = torch.ones(5, 5).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    return [
        Case((_head_pattern("attn-only-2l", cat, 0, 5), previous), label="2-layer model, head 0.5, cat prompt, "
                                                                         "previous-token pattern"),
        Case((_head_pattern("attn-only-2l", cat, 0, 5), previous), dict(exclude_bos=True),
             label="the same with exclude_bos=True (query 1's previous token is BOS)"),
        Case((_head_pattern("attn-only-2l", repeated, 1, 4), induction),
             label="2-layer model, head 1.4, repeated tokens, induction pattern"),
        Case((_head_pattern("attn-only-2l", repeated, 1, 4), induction), dict(exclude_bos=True),
             label="the same with exclude_bos=True"),
        Case((_head_pattern("course-4l", ioi, 1, 2), duplicate), dict(exclude_bos=True),
             label="4-layer model, head 1.2, IOI prompt, duplicate-token pattern, exclude_bos=True"),
        Case((uniform, torch.eye(5).roll(-1, dims=1).tril()), label="uniform 5-position pattern, previous-token"),
    ]


def _tiny_repeated(half_len: int, n_seqs: int) -> Int[Tensor, "batch pos"]:
    half = torch.randint(1, 50, (n_seqs, half_len), generator=torch.Generator().manual_seed(6))
    return torch.cat([torch.zeros(n_seqs, 1, dtype=torch.long), half, half], dim=1)


@lru_cache(maxsize=None)
def half_loss_cases() -> list[Case]:
    """Exercise 14: both course models with other lengths than the notebook's, and a tiny random model."""
    two, four, tiny = check_model("attn-only-2l"), check_model("course-4l"), check_model("tiny-gpt2-like")
    return [
        Case((two, repeated_random_tokens(two, n_seqs=4, half_len=25, seed=3)), label="2-layer model, half_len 25"),
        Case((two, repeated_random_tokens(two, n_seqs=3, half_len=10, seed=4)), label="2-layer model, half_len 10"),
        Case((four, repeated_random_tokens(four, n_seqs=2, half_len=8, seed=5)), label="4-layer model, half_len 8"),
        Case((tiny, _tiny_repeated(6, 3)), label="tiny random model (50 tokens), half_len 6"),
    ]


def clear_caches() -> None:
    """Forget the case lists (the next check builds them again)."""
    for cached in (ov_cases, top1_cases, positivity_cases, positional_cases, composition_cases, detection_cases,
                   half_loss_cases):
        cached.cache_clear()
