"""Lesson 1b's reading of circuits from the weights: copying scores, baselines, and inputs for the head detector.

The lesson builds each circuit itself with TransformerLens (``model.W_E @ model.OV[layer, head] @ model.W_U``,
``model.QK``, ``model.all_composition_scores``, ``transformer_lens.head_detector.detect_head``); these helpers
score and compare what it builds:

- :func:`copying_scores`: how much a full OV circuit (``[d_vocab, d_vocab]``) looks like copying, two ways;
- :func:`random_ov_circuit`: the same circuit with a random head in place of a trained one (the baseline);
- :func:`self_attention_share` and :func:`effective_embedding`: what block 0 adds to a token's own position,
  which is part of what the layer-1 heads read and copy;
- :func:`position_only_pattern`: where a head would look if its input were the positions alone (the lesson's
  section 2; workbook exercise 11 asks the learner to write it, so the lesson imports it without showing it);
- :func:`random_composition_baseline`: composition scores of random heads of a model's shape (lesson 1's baseline);
- :func:`repeated_random_words`: repeated random words as text that tokenizes back to the same tokens, for
  ``detect_head`` (which takes strings).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import FactoredMatrix, HookedTransformer, utils

__all__ = ["CopyingScores", "copying_scores", "random_ov_circuit", "self_attention_share", "effective_embedding",
           "position_only_pattern", "random_composition_baseline", "RepeatedWords", "repeated_random_words"]


class CopyingScores(NamedTuple):
    """Two measures of "this circuit copies its input token": each 1 for a perfect copier, about 0 for noise."""

    top1_share: float     # share of rows (input tokens) whose largest entry is on the diagonal (the same token)
    positivity: float     # sum of the eigenvalues / sum of their absolute values (real part)


def copying_scores(circuit: FactoredMatrix) -> CopyingScores:
    """:class:`CopyingScores` of a square circuit ``[d_vocab, d_vocab]`` (rows: input token, columns: logit).

    The full matrix is made once (``circuit.AB``, 69 MB for 4150 tokens) for the top-1 share; the eigenvalues
    come from the small factors (``circuit.eigenvalues``).
    """
    full = circuit.AB
    top1 = (full.argmax(-1) == torch.arange(full.shape[0])).float().mean().item()
    eigenvalues = circuit.eigenvalues
    return CopyingScores(top1, (eigenvalues.sum().real / eigenvalues.abs().sum()).item())


def random_ov_circuit(model: HookedTransformer, seed: int = 0,
                      embedding: Float[Tensor, "d_vocab d_model"] | None = None) -> FactoredMatrix:
    """``embedding @ W_V @ W_O @ W_U`` with a random ``W_V`` and ``W_O`` of a head's shape (Gaussian entries).

    ``embedding`` defaults to ``model.W_E``. The scale of the random matrices does not matter for either
    copying score.
    """
    generator = torch.Generator().manual_seed(seed)
    d_model, d_head = model.cfg.d_model, model.cfg.d_head
    ov = FactoredMatrix(torch.randn(d_model, d_head, generator=generator),
                        torch.randn(d_head, d_model, generator=generator))
    return (model.W_E if embedding is None else embedding) @ ov @ model.W_U


def self_attention_share(pattern: Float[Tensor, "batch head_index query_pos key_pos"]) -> Float[Tensor, "head_index"]:
    """Each head's mean attention from a position to itself (BOS, position 0, left out)."""
    return pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean((0, -1))


def effective_embedding(model: HookedTransformer,
                        share: Float[Tensor, "head_index"]) -> Float[Tensor, "d_vocab d_model"]:
    """``W_E`` plus what each block-0 head writes at a token's own position, weighted by ``share``.

    A block-0 head that puts a share ``s`` of its attention on the token itself adds about
    ``s * W_E @ W_OV`` there (its LayerNorm's scale and the positional embedding left out): row ``t`` is
    what the stream after block 0 holds about token ``t``.
    """
    added = sum(float(share[h]) * (model.W_E @ model.OV[0, h]).AB for h in range(model.cfg.n_heads))
    return model.W_E + added


def position_only_pattern(model: HookedTransformer, layer: int, head: int,
                          ln_scale: float = 1.0) -> Float[Tensor, "query_pos key_pos"]:
    """Head ``layer.head``'s attention pattern from the positional embeddings alone (weights only, no biases).

    With ``P = W_pos / ln_scale``: ``P W_QK P^T / sqrt(d_head)``, later keys masked, softmax over the keys.
    Built from the factored ``model.QK``; the same numbers as workbook exercise 11's reference.
    """
    positions = model.W_pos / ln_scale                                            # [n_ctx, d_model]
    scores = (positions @ model.QK[layer, head] @ positions.T).AB / model.cfg.d_head ** 0.5   # [query_pos, key_pos]
    future = torch.triu(torch.ones_like(scores, dtype=torch.bool), diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


def random_composition_baseline(model: HookedTransformer, n: int = 200, seed: int = 0) -> Float[Tensor, "batch"]:
    """Composition scores of ``n`` pairs of random heads of ``model``'s shape (lesson 1's baseline, same seed)."""
    generator = torch.Generator().manual_seed(seed)
    d, dh = model.cfg.d_model, model.cfg.d_head

    def rand(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    return torch.stack([utils.composition_scores(FactoredMatrix(rand(d, dh), rand(dh, d)),
                                                 FactoredMatrix(rand(d, dh), rand(dh, d))) for _ in range(n)])


class RepeatedWords(NamedTuple):
    """Random words repeated once: the tokens (BOS first) and, for each sequence, its text."""

    tokens: Int[Tensor, "batch pos"]
    texts: list[str]


def repeated_random_words(model: HookedTransformer, n_seqs: int = 20, half_len: int = 25,
                          seed: int = 0) -> RepeatedWords:
    """Like ``helpers.metrics.repeated_random_tokens``, but drawn from whole words with a leading space.

    Such words decode to a text that ``model.to_tokens`` turns back into the very same tokens, so that a
    function taking strings (``detect_head``) sees exactly these sequences. Raises if one does not round-trip.
    """
    vocab = model.tokenizer.get_vocab()
    words = torch.tensor(sorted(i for token, i in vocab.items() if token.startswith("Ġ") and token[1:].isalpha()))
    generator = torch.Generator().manual_seed(seed)
    half = words[torch.randint(len(words), (n_seqs, half_len), generator=generator)]
    body = torch.cat([half, half], dim=1)
    texts = [model.to_string(row) for row in body]
    tokens = model.to_tokens(texts)
    expected = torch.cat([torch.full((n_seqs, 1), model.tokenizer.bos_token_id), body], dim=1)
    if tokens.shape != expected.shape or not torch.equal(tokens, expected):
        raise ValueError("Some repeated words did not tokenize back to themselves; use another seed.")
    return RepeatedWords(tokens, texts)
