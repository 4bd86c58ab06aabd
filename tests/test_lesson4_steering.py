"""Lesson 4b (steering with a direction, and finding one without labels): its helpers, and its text against the model.

Part 1 tests the helpers of ``helpers.lesson4.steering`` and ``helpers.lesson4.unsupervised``: the fast steered
run agrees with a hook passed to ``run_with_hooks``, the readers and the unsupervised methods recover planted
directions, the contrast pairs hold one true statement each.

Part 2 runs the code cells of ``notebooks/04b_steering_and_unsupervised_probes.ipynb`` once and asserts every
figure its text quotes, on the very variables the lesson prints and plots; and that the steering hook is written
in the lesson's own cells. (The workbook's checks and wrong answers are in ``test_lesson4_steering_workbook.py``.)
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from notebook_cells import code_cells, run_lesson  # noqa: E402

from helpers import corpus, corpus_data, lesson4  # noqa: E402
from helpers.lesson4 import steering, unsupervised  # noqa: E402
from helpers.models import cached_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAME = "04b_steering_and_unsupervised_probes.ipynb"


@pytest.fixture(autouse=True)
def _no_grad():
    """No gradients in this module's tests (without leaking that global switch to other modules)."""
    with torch.no_grad():
        yield


def two(x: float) -> str:
    """A figure as the lesson quotes it, to two decimals."""
    return f"{x:.2f}"


def three(x: float) -> str:
    return f"{x:.3f}"


# ============================================================================ part 1: the helpers
@pytest.mark.parametrize("layer", [0, 1, 2, 3])
def test_steered_margins_match_a_hook_passed_to_run_with_hooks(layer: int) -> None:
    model = cached_model("course-4l")
    data = lesson4.task_data("sentiment", "test", 6, model.tokenizer, seed=5)
    ids = lesson4.answer_ids(model, " positive", " negative")
    vector = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(layer)) * 5
    tokens = model.to_tokens(data.prompts, padding_side="right")
    rows, ends = torch.arange(len(tokens)), torch.as_tensor(data.positions)
    for added in (None, vector):
        hooks = [] if added is None else [(f"blocks.{layer}.hook_resid_pre", lambda resid, hook, v=added: resid + v)]
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)[rows, ends]
        expected = logits[:, ids[0]] - logits[:, ids[1]]
        cached = steering.resid_at(model, data.prompts, data.positions, layer)
        assert torch.allclose(steering.steered_margins(model, cached, ids, added), expected, atol=1e-4)


def test_steered_margins_refuse_a_stream_after_the_last_block() -> None:
    model = cached_model("course-4l")
    data = lesson4.task_data("sentiment", "test", 2, model.tokenizer, seed=5)
    cached = steering.resid_at(model, data.prompts, data.positions, model.cfg.n_layers)
    with pytest.raises(ValueError, match="no block"):
        steering.steered_margins(model, cached, lesson4.answer_ids(model, " positive", " negative"))


def test_slope_per_unit_norm_is_the_slope_of_a_line_through_the_origin() -> None:
    alphas = [-20, -10, 10, 20]
    assert steering.slope_per_unit_norm(alphas, [0.3 * a for a in alphas]) == pytest.approx(0.3)
    assert steering.slope_per_unit_norm(alphas, [-0.5 * a for a in alphas]) == pytest.approx(-0.5)


def test_projection_accuracy_reads_a_planted_direction_whichever_way_it_points() -> None:
    g = torch.Generator().manual_seed(0)
    u = steering.unit(torch.randn(16, generator=g))
    y = np.arange(200) % 2
    X = torch.randn(200, 16, generator=g) + 4 * torch.as_tensor(2.0 * y - 1).float()[:, None] * u + 3.0
    X_train, X_test, y_train, y_test = X[:100], X[100:], y[:100], y[100:]
    assert steering.projection_accuracy(u, X_train, y_train, X_test, y_test) == 1.0
    assert steering.projection_accuracy(-u, X_train, y_train, X_test, y_test) == 1.0   # the side is learned
    other = steering.unit(torch.randn(16, generator=g))
    other = steering.unit(other - (other @ u) * u)                                     # perpendicular: no signal
    assert steering.projection_accuracy(other, X_train, y_train, X_test, y_test) < 0.7


def test_top_latents_finds_the_latent_that_fires_on_one_class() -> None:
    latents = torch.rand(100, 32, generator=torch.Generator().manual_seed(0))
    labels = np.arange(100) % 2
    latents[labels == 0, 7] += 5.0                      # fires on class 0: ranked by the gap either way
    latents[labels == 1, 3] += 2.0
    assert steering.top_latents(latents, labels, k=2).tolist() == [7, 3]


def test_contrast_pairs_hold_one_true_statement_each_differing_only_in_the_place() -> None:
    pairs = unsupervised.contrast_pairs(40, "test", seed=4)
    facts = {(e.prompt, e.answer) for e in
             corpus.fact_examples("test", "city") + corpus.fact_examples("test", "country")}
    places = {lm[1] for lm in corpus_data.LANDMARKS} | {lm[2] for lm in corpus_data.LANDMARKS}
    assert 0.2 < pairs.first_is_true.mean() < 0.8                 # the order is shuffled
    for first, second, first_true in zip(pairs.first, pairs.second, pairs.first_is_true):
        statement_a, statement_b = (s.removesuffix(corpus_data.TRUTH_SUFFIX) for s in (first, second))
        head_a, place_a = statement_a.rsplit(" ", 1)
        head_b, place_b = statement_b.rsplit(" ", 1)
        assert head_a == head_b and place_a != place_b and {place_a, place_b} <= places
        true_one = (head_a, " " + (place_a if first_true else place_b))
        assert true_one in facts
        assert (head_a, " " + (place_b if first_true else place_a)) not in facts


def test_first_principal_direction_recovers_a_planted_direction() -> None:
    g = torch.Generator().manual_seed(1)
    u = steering.unit(torch.randn(32, generator=g))
    signs = torch.where(torch.rand(300, generator=g) < 0.5, -1.0, 1.0)
    diffs = signs[:, None] * 6 * u + torch.randn(300, 32, generator=g)
    pc = unsupervised.first_principal_direction(diffs)
    assert pc.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert abs(float(pc @ u)) > 0.98


def test_ccs_finds_a_planted_truth_direction_without_labels_and_is_seeded() -> None:
    g = torch.Generator().manual_seed(2)
    u = steering.unit(torch.randn(32, generator=g))
    first_true = (torch.rand(300, generator=g) < 0.5).float()
    truth = lambda is_true: (2 * is_true - 1)[:, None] * 3 * u            # noqa: E731
    x_first = truth(first_true) + torch.randn(300, 32, generator=g)
    x_second = truth(1 - first_true) + torch.randn(300, 32, generator=g)
    probe = unsupervised.train_ccs(x_first, x_second, seed=0)
    assert abs(float(probe.direction @ u)) > 0.9
    scores = probe.first_is_true(x_first, x_second).numpy()
    assert unsupervised.sign_agnostic_accuracy(scores, first_true.numpy().astype(int), 0.5) > 0.95
    again = unsupervised.train_ccs(x_first, x_second, seed=0)
    assert torch.equal(again.direction, probe.direction)
    assert not torch.is_grad_enabled()                        # training left the global switch alone


def test_sign_agnostic_accuracy_ignores_the_sign() -> None:
    labels = np.array([1, 1, 0, 0, 1])
    scores = np.array([2.0, 1.0, -1.0, -3.0, -0.5])           # 4 of 5 right
    assert unsupervised.sign_agnostic_accuracy(scores, labels) == pytest.approx(0.8)
    assert unsupervised.sign_agnostic_accuracy(-scores, labels) == pytest.approx(0.8)


# ============================================================================ part 2: the lesson's claims
@pytest.fixture(scope="module")
def lesson() -> dict:
    """The namespace left by running every code cell of the lesson."""
    return run_lesson(ROOT / "notebooks" / NAME)


def test_the_steering_hook_is_written_in_the_lessons_cells() -> None:
    cells = code_cells(ROOT / "notebooks" / NAME)
    source = "\n".join(cells)
    for call in ["def add_vector(vector, c):", "return resid + c * vector",
                 "model.run_with_hooks(tokens, fwd_hooks=[(HOOK, add_vector(mean_difference[LAYER], c))])",
                 "sae.encode(X_train)", "sae.W_dec[best]", "PCA(n_components=1).fit(diffs.numpy())"]:
        assert call in source, call
    first_use = next(i for i, c in enumerate(cells) if "steering.steered_margins(" in c)
    assert "show_code(steering.steered_margins)" in cells[first_use - 1]


def test_claim_the_mean_difference_by_place(lesson: dict) -> None:
    md, acts = lesson["mean_difference"], lesson["acts"]
    assert two(md[0].norm().item()) == "0.09"
    assert two(md[2].norm().item()) == "41.27"
    assert two(acts["train"][2].norm(dim=-1).mean().item()) == "61.47"
    assert lesson["LAYER"] == 2 and lesson["sae"].cfg.metadata.hook_name == lesson["HOOK"]


def test_claim_one_mean_difference_turns_three_negative_reviews(lesson: dict) -> None:
    model, md, hook = lesson["model"], lesson["mean_difference"][2], lesson["HOOK"]
    tokens, rows, ends = lesson["tokens"], lesson["rows"], lesson["ends"]
    for c, word in [(0.0, " negative"), (1.0, " positive")]:
        logits = model.run_with_hooks(tokens, fwd_hooks=[(hook, lesson["add_vector"](md, c))])
        assert model.to_str_tokens(logits[rows, ends].argmax(-1)) == [word] * 3


def test_claim_steering_by_coefficient(lesson: dict) -> None:
    coefficients, shares, margins = lesson["COEFFICIENTS"], lesson["shares"], lesson["margins"]
    at = {c: i for i, c in enumerate(coefficients)}
    assert list(shares) == ["before block 1", "before block 2", "before block 3"]
    for place, values in shares.items():
        assert values[at[1]] == 1.0 and values[at[-1]] == 0.0, place            # every review turned
        assert values[at[0.25]] == values[at[-0.25]] == values[at[0]] == 0.5, place   # none changed
        # "most answers flip between 0.5 and 0.75" (which review flips first varies in the last bits: no exact count)
        assert values[at[0.75]] > 0.9 and values[at[0.5]] < 0.8, place
        assert values[at[-0.75]] < 0.2 and values[at[-0.5]] > 0.4, place
        assert np.corrcoef(coefficients, margins[place])[0, 1] > 0.995, place    # "a straight line"


def test_claim_steered_free_text_starts_with_a_word_of_the_pushed_polarity(lesson: dict) -> None:
    generated = lesson["generated"]
    first = {c: [text.split()[0].strip(".,") for text in texts] for c, texts in generated.items()}
    assert all(word in corpus_data.POSITIVE_WORDS for word in first[1.0]), first
    assert all(word in corpus_data.NEGATIVE_WORDS for word in first[-1.0]), first
    assert {"excellent", "charming"} <= set(first[1.0]) and {"bad", "terrible"} <= set(first[-1.0])
    assert "charming charming charming" in " ".join(generated[1.0])
    assert "Kate" in " ".join(generated[-1.0])


def test_claim_three_directions_read_alike_and_move_differently(lesson: dict) -> None:
    rows = {row.name: row for row in lesson["table"]}
    best = lesson["best"]
    assert best == 625 and list(rows) == ["logistic regression", "mean difference", "SAE latent 625", "random"]
    for name in ("logistic regression", "mean difference", "SAE latent 625"):
        assert rows[name].reads == 1.0, name
    assert three(rows["random"].reads) == "0.950"
    assert [two(rows[n].per_unit_norm) for n in rows] == ["0.34", "0.34", "0.14", "0.06"]
    latents, y_train = lesson["latents"], lesson["y_train"]
    assert two(latents[y_train == 0, best].mean().item()) == "4.00"
    assert two(latents[y_train == 1, best].mean().item()) == "0.10"
    cosines = lesson["cosines"]
    assert two(cosines[0, 1]) == "1.00" and two(cosines[1, 2]) == "0.47" and two(cosines[0, 2]) == "0.47"
    assert rows["SAE latent 625"].per_unit_norm < rows["mean difference"].per_unit_norm / 2      # "less than half"
    assert rows["mean difference"].per_unit_norm / rows["random"].per_unit_norm > 5                # "more than five"


def _other_latents(lesson: dict) -> dict[int, tuple[float, float, float]]:
    """The next five latents of the ranking: (reads, per unit of norm, cosine with the mean difference)."""
    model, sae, cached, unsteered = lesson["model"], lesson["sae"], lesson["cached"], lesson["unsteered"]
    latents, y_train = lesson["latents"], lesson["y_train"]
    out = {}
    for latent in lesson["ranked"][1:].tolist():
        sign = 1 if latents[y_train == 1, latent].mean() > latents[y_train == 0, latent].mean() else -1
        u = steering.unit(sae.W_dec[latent]) * sign
        changes = [(steering.steered_margins(model, cached, lesson["POSITIVE"], a * u) - unsteered).mean().item()
                   for a in (-10, 10)]
        out[latent] = (steering.projection_accuracy(u, lesson["X_train"], y_train, lesson["X_test"],
                                                    lesson["y_test"]),
                       steering.slope_per_unit_norm([-10, 10], changes),
                       float(u @ lesson["directions"]["mean difference"]))
    return out


def test_claim_the_next_five_latents(lesson: dict) -> None:
    others = _other_latents(lesson)
    assert all(reads >= 0.99 for reads, _, _ in others.values())
    slopes = [slope for _, slope, _ in others.values()]
    assert two(min(slopes)) == "0.16" and two(max(slopes)) == "0.24"
    moves_most = max(others, key=lambda k: others[k][1])
    closest = max(others, key=lambda k: others[k][2])
    assert moves_most == closest == 3484 and two(others[3484][2]) == "0.65"


def test_claim_truth_directions_differ_yet_move_alike(lesson: dict) -> None:
    rows = {row.name: row for row in lesson["truth_table"]}
    assert three(rows["logistic regression"].reads) == "0.940" and three(rows["mean difference"].reads) == "0.970"
    assert two(rows["logistic regression"].per_unit_norm) == "0.17"
    assert two(rows["mean difference"].per_unit_norm) == "0.16"
    assert two(lesson["truth_cosine"]) == "0.55"


def test_claim_two_readers_by_layer(lesson: dict) -> None:
    logistic, mean_difference = lesson["by_logistic"], lesson["by_mean_difference"]
    for i in (1, 2, 3):
        assert logistic["sentiment"][i] == mean_difference["sentiment"][i] == 1.0
    assert [three(v) for v in mean_difference["truth"][3:]] == ["0.970", "0.970"]
    assert [three(v) for v in logistic["truth"][3:]] == ["0.923", "0.943"]
    assert all(v == 1.0 for v in logistic["relation"][1:])
    assert three(min(mean_difference["relation"][1:])) == "0.833"
    assert three(max(mean_difference["relation"][1:])) == "0.960"
    assert three(mean_difference["relation"][0]) == "0.767" and three(lesson["reader_chance"]["relation"]) == "0.683"


def test_claim_truth_found_without_labels(lesson: dict) -> None:
    acc = {name: np.array(values) for name, values in lesson["unsupervised_acc"].items()}
    pc, ccs, supervised = acc["first principal component"], acc["CCS"], acc["supervised (logistic regression)"]
    for values in (pc, ccs, supervised):
        assert values[:2].max() < 0.7                                   # after blocks 0 and 1: near chance
    assert pc[2:].min() > 0.98 and supervised[2:].min() > 0.98       # "more than 0.98", 200 pairs: up to 3 missed
    assert ccs[2:].min() > 0.95
    assert [two(v) for v in lesson["explained"][2:]] == ["0.78", "0.88"]
    assert 0.97 < lesson["single"] < 0.99 and three(lesson["supervised"]) == "0.923"     # "about 0.98"
    assert two(lesson["agree"]) == "1.00"
    assert two(abs(float(lesson["pc"] @ lesson["truth_directions"]["logistic regression"]))) == "0.54"
