"""Build the course's word-level tokenizer and save it in the Hugging Face format.

    python scripts/build_tokenizer.py            # writes models/tokenizer/

It keeps GPT-2's conventions: byte-level pre-tokenization, so a word carries its leading space
(" Paris" is one token, "ĠParis"), and ``<|endoftext|>`` as the BOS/EOS token. The vocabulary is
every word the corpus generator can produce, plus the most frequent English words (from wordfreq,
offline) so that learners' own prompts mostly tokenize without unknown words.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from helpers import corpus, corpus_data

ROOT = Path(__file__).resolve().parents[1]
BOS, UNK = "<|endoftext|>", "[UNK]"
N_COMMON_WORDS = 2500        # lower-case words, with a leading space
N_CAPITALISED = 400          # of those, also capitalised (sentence starts) with and without space
PUNCTUATION = list(".,!?:;'\"-()") + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "...", "--"]


def corpus_pretokens(pre_tokenizer) -> set[str]:
    """Every pre-token of a large sample of every generator, both splits."""
    texts = [ex.text for split in ("train", "test") for ex in (
        corpus.ioi_examples(3000, split, seed=1)
        + corpus.fact_examples(split, "city") + corpus.fact_examples(split, "country")
        + corpus.truth_examples(2000, split, seed=1) + corpus.review_examples(3000, split, seed=1))]
    texts += [ex.text for ex in corpus.narrative_examples(5000, seed=1)]
    texts += corpus_data.TUTORIAL_PROMPTS
    return {piece for text in texts for piece, _ in pre_tokenizer.pre_tokenize_str(text)}


def build_vocab() -> list[str]:
    pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    space = lambda w: "Ġ" + w
    tokens = [BOS, UNK]
    tokens += PUNCTUATION + [space(p) for p in PUNCTUATION if p not in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")]
    tokens += [str(d) for d in range(10)] + [space(str(d)) for d in range(100)]
    common = corpus.common_words(N_COMMON_WORDS)
    tokens += [space(w) for w in common] + ["ĠI", "I"]
    for w in common[:N_CAPITALISED]:
        tokens += [w, w.capitalize(), space(w.capitalize())]
    tokens += sorted(corpus_pretokens(pre_tokenizer))
    return list(dict.fromkeys(tokens))          # de-duplicated, first occurrence order


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(build_vocab())}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=BOS,
                                   pad_token=BOS, unk_token=UNK, model_max_length=128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "tokenizer")
    args = parser.parse_args()
    tokenizer = build_tokenizer()
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(args.out)
    for prompt in corpus_data.TUTORIAL_PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        assert tokenizer.unk_token_id not in ids, f"unknown token in tutorial prompt {prompt!r}"
    print(f"Saved a {len(tokenizer)}-token tokenizer to {args.out}")


if __name__ == "__main__":
    main()
