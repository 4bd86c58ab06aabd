"""Behavioural evaluation of a model on the course's labelled prompt sets.

The same functions run on the bundled models and on GPT-2 small: prompts are plain English
and answers are scored by their first token. ``scripts/evaluate_models.py`` prints the table,
and ``tests/test_models.py`` asserts the same figures.
"""
from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers import corpus
from helpers.metrics import induction_and_prev_token_scores, repeated_sequence_losses


def last_token_logits(model: HookedTransformer, prompts: list[str],
                      batch_size: int = 64) -> Float[Tensor, "batch d_vocab"]:
    """Logits at the last token of each prompt: ``[n_prompts, d_vocab]`` (prompts padded on the right)."""
    rows = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i:i + batch_size]
        tokens = model.to_tokens(chunk, padding_side="right")                # [batch, pos]
        # Right padding uses the pad token after each prompt; position 0 is BOS, never padding.
        lengths = 1 + (tokens[:, 1:] != model.tokenizer.pad_token_id).sum(-1)
        with torch.no_grad():
            logits = model(tokens)                                           # [batch, pos, d_vocab]
        rows.append(logits[torch.arange(len(chunk)), lengths - 1])
    return torch.cat(rows)


def first_token_ids(model: HookedTransformer, words: list[str]) -> Int[Tensor, " batch"]:
    """The id of the first token of each word (words carry their leading space): ``[n_words]``."""
    return torch.tensor([model.to_tokens(w, prepend_bos=False)[0, 0].item() for w in words])


def ioi_logit_diffs(model: HookedTransformer, examples: list[corpus.Example]) -> Float[Tensor, " batch"]:
    """Logit of the IO name minus logit of the subject at the final position: ``[n_prompts]``."""
    logits = last_token_logits(model, [e.prompt for e in examples])
    io = first_token_ids(model, [" " + e.labels["io"] for e in examples])
    s = first_token_ids(model, [" " + e.labels["s"] for e in examples])
    rows = torch.arange(len(examples))
    return logits[rows, io] - logits[rows, s]


def top1_accuracy(model: HookedTransformer, examples: list[corpus.Example]) -> float:
    """Share of prompts whose top prediction is the first token of the answer."""
    logits = last_token_logits(model, [e.prompt for e in examples])
    answers = first_token_ids(model, [e.answer for e in examples])
    return (logits.argmax(-1) == answers).float().mean().item()


def binary_accuracy(model: HookedTransformer, examples: list[corpus.Example], yes: str, no: str,
                    label: str) -> float:
    """Share of prompts where the logit of ``yes`` beats ``no`` exactly when ``labels[label]`` is true."""
    logits = last_token_logits(model, [e.prompt for e in examples])
    yes_id, no_id = first_token_ids(model, [yes, no]).tolist()
    predicted = logits[:, yes_id] > logits[:, no_id]
    truth = torch.tensor([bool(e.labels[label]) for e in examples])
    return (predicted == truth).float().mean().item()


def evaluate(model: HookedTransformer, n: int = 200, seed: int = 123) -> dict[str, float | int | str]:
    """Every behavioural figure of the model-organism issue, on held-out prompt sets."""
    induction, prev_token = induction_and_prev_token_scores(model, n_seqs=50, half_len=25, seed=seed)
    first, second = repeated_sequence_losses(model, n_seqs=50, half_len=25, seed=seed)
    results = {
        "repeat_loss_first_half": first,
        "repeat_loss_second_half": second,
        "repeat_loss_ratio": second / first,
        "best_induction_score": induction.max().item(),
        "best_induction_head": _head_name(induction),
        "best_prev_token_score": prev_token.max().item(),
        "best_prev_token_head": _head_name(prev_token),
    }
    if model.cfg.n_layers > 1:
        results["best_layer1_induction_score"] = induction[1].max().item()
        results["best_layer0_prev_token_score"] = prev_token[0].max().item()
    ioi = ioi_logit_diffs(model, corpus.ioi_examples(n, "test", seed))
    facts = [e for split in ("train", "test") for rel in ("city", "country") for e in corpus.fact_examples(split, rel)]
    held_out_facts = corpus.fact_examples("test", "city") + corpus.fact_examples("test", "country")
    continuations = corpus.fact_continuations()
    one_answer = [e for e in facts if len(continuations[e.prompt]) == 1]
    two_answers = [e for e in facts if len(continuations[e.prompt]) > 1]
    results.update({
        "ioi_positive_share": (ioi > 0).float().mean().item(),
        "ioi_mean_logit_diff": ioi.mean().item(),
        "fact_top1_all": top1_accuracy(model, facts),
        "fact_top1_held_out_paraphrases": top1_accuracy(model, held_out_facts),
        # Prompts the corpus continues one way only, and those it continues two ways ("is in" ->
        # " Paris" or " the city of"): on the latter, the share whose top-1 is one of the two.
        "fact_top1_one_answer": top1_accuracy(model, one_answer),
        "fact_two_answer_prompts": len(two_answers),
        "fact_top1_either_answer": _top1_in(model, two_answers, continuations),
        "sentiment_accuracy": binary_accuracy(model, corpus.review_examples(n, "test", seed),
                                              " positive", " negative", "positive"),
        "truth_accuracy": binary_accuracy(model, corpus.truth_examples(n, "test", seed), " true", " false", "true"),
    })
    eiffel = model.to_string(last_token_logits(model, ["The Eiffel Tower is in the city of"])[0].argmax())
    results["eiffel_top1"] = eiffel
    return results


def _top1_in(model: HookedTransformer, examples: list[corpus.Example], allowed: dict[str, set[str]]) -> float:
    """Share of prompts whose top prediction is the first token of one of ``allowed[prompt]``."""
    if not examples:
        return float("nan")
    top = last_token_logits(model, [e.prompt for e in examples]).argmax(-1).tolist()
    return sum(model.to_string(t) in allowed[e.prompt] for t, e in zip(top, examples)) / len(examples)


def _head_name(scores: Float[Tensor, "layer head_index"]) -> str:
    layer, head = divmod(scores.argmax().item(), scores.shape[1])
    return f"{layer}.{head}"
