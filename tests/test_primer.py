"""The primer (``notebooks/00_primer.ipynb``): its architecture picture, and every figure its prose quotes.

The claim tests run the primer's code cells with ``run_lesson`` and assert, on the primer's own variables,
each number and each "True" its text relies on.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from notebook_cells import run_lesson  # noqa: E402

from helpers.models import cached_model  # noqa: E402
from helpers.plotting import draw_architecture  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRIMER = ROOT / "notebooks" / "00_primer.ipynb"


@pytest.mark.parametrize("name", ["course-4l", "attn-only-2l"])
def test_draw_architecture_draws_one_box_per_block_part(name: str) -> None:
    cfg = cached_model(name).cfg
    ax = draw_architecture(cfg)
    texts = [t.get_text() for t in ax.texts]
    assert [t for t in texts if t.startswith("block ")] == [f"block {layer}" for layer in range(cfg.n_layers)]
    assert sum(t.startswith("attention:") for t in texts) == cfg.n_layers
    assert sum(t.startswith("MLP:") for t in texts) == (0 if cfg.attn_only else cfg.n_layers)
    assert any(f"{cfg.d_vocab:,}" in t for t in texts) and any(str(cfg.d_model) in t for t in texts)
    plt.close("all")


# A link whose target starts with "{" or a lone "{G}"-style placeholder: a template left unfilled.
_UNFILLED = re.compile(r"\]\(\{|(?<![\\\w])\{[A-Z]\}")


def test_no_notebook_holds_an_unfilled_template() -> None:
    found = []
    for folder in ("notebooks", "solutions", "exercises"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            for i, cell in enumerate(json.loads(path.read_text())["cells"]):
                if cell["cell_type"] == "markdown" and _UNFILLED.search("".join(cell["source"])):
                    found.append(f"{folder}/{path.name} cell {i}")
    assert not found, f"unfilled template in: {found}"


@pytest.fixture(scope="module")
def lesson() -> dict:
    """The namespace left by running every code cell of the primer."""
    return run_lesson(PRIMER)


@pytest.mark.claim
def test_claim_config_the_prose_quotes(lesson: dict) -> None:
    cfg = lesson["cfg"]
    # "4,150 tokens", "d_model = 256", "blocks.0 to blocks.3", "8 heads", "256 → 1,024 → 256", "1,024 middle numbers"
    assert (cfg.d_vocab, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_mlp) == (4150, 256, 4, 8, 1024)
    assert tuple(lesson["model"].W_U.shape) == (256, 4150)


@pytest.mark.claim
def test_claim_one_score_per_token_at_each_of_nine_positions(lesson: dict) -> None:
    str_tokens = lesson["str_tokens"]
    assert len(str_tokens) == 9 and str_tokens[0] == "<|endoftext|>"     # BOS at position 0
    assert lesson["model"].to_string(lesson["top"].indices[0]) == " Paris"        # the top score after "city of"
    assert all(t.strip() and " " not in t.strip() for t in str_tokens)    # one token per word


@pytest.mark.claim
def test_claim_the_corpus_lines_are_six_kinds(lesson: dict) -> None:
    tasks = [example.task for example in lesson["samples"]]
    assert tasks == ["ioi", "fact", "truth", "review", "narrative", "repeat"]


@pytest.mark.claim
def test_claim_embeddings_stream_mlp_and_layernorm(lesson: dict) -> None:
    cache, model = lesson["cache"], lesson["model"]                  # the cache of the Eiffel Tower prompt
    assert torch.allclose(lesson["start"], cache["resid_pre", 0][0], atol=1e-5)       # embeddings by hand
    assert torch.allclose(lesson["after"], lesson["before"] + lesson["written"], atol=1e-4)
    assert torch.equal(lesson["after"], cache["resid_pre", 2])
    assert torch.allclose(lesson["alone"], cache["mlp_out", 0][:, [4]], atol=1e-5)   # the MLP on one position
    # "head 3.0 ... puts 89% of its attention on ' Tower'"
    row = lesson["row"]
    assert lesson["str_tokens"][row.argmax()] == " Tower" and f"{row.max():.0%}" == "89%"
    # "grown to a spread of 4.26 before block 2 ... rescaled to a spread of 1.00"
    assert f"{lesson['x'].std(correction=0):.2f}" == "4.26"
    assert f"{lesson['read'].std(correction=0):.2f}" == "1.00"
    # "logits = final @ W_U + b_U"
    eiffel = model("The Eiffel Tower is in the city of")
    assert torch.allclose(lesson["final"] @ model.W_U + model.b_U, eiffel, atol=1e-3)


@pytest.mark.claim
def test_claim_softmax_numbers(lesson: dict) -> None:
    model, top, last = lesson["model"], lesson["top"], lesson["last"]
    words = [model.to_string(i) for i in top.indices]
    assert words[:2] == [" Paris", " Berlin"]
    paris, berlin = last[top.indices[0]].item(), last[top.indices[1]].item()
    assert f"{paris:.1f}" == "16.1" and f"{berlin:.1f}" == "12.8" and f"{paris - berlin:.1f}" == "3.3"
    assert f"{top.values[0]:.3f}" == "0.606" and f"{top.values[1]:.3f}" == "0.023"
    assert round((top.values[0] / top.values[1]).item()) == 26
    assert math.isclose(math.exp(paris - berlin), (top.values[0] / top.values[1]).item(), rel_tol=1e-3)
    assert f"{1 - top.values.sum():.2f}" == "0.32" and len(lesson["probs"]) - 5 == 4145
    # the self-test: "a logit 2 higher ... about e² ≈ 7.4 times as probable"
    pair = torch.tensor([2.0, 0.0]).softmax(-1)
    assert f"{(pair[0] / pair[1]).item():.1f}" == f"{math.exp(2):.1f}" == "7.4"


@pytest.mark.claim
def test_claim_a_prediction_at_every_position(lesson: dict) -> None:
    model, guesses = lesson["model"], lesson["guesses"].tolist()
    words = [model.to_string(g) for g in guesses]
    assert words[1] == " Lisa" and words[2] == " and"          # "after When: ' Lisa'; after When Mary: ' and'"
    assert words[-1] == " Mary" and f"{lesson['p_last']:.3f}" == "0.999"
