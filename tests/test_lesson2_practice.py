"""Lesson 2b (SAEs in practice): unit tests of its helpers, and every figure its text quotes, read from the
notebook's own variables (``run_lesson``)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from notebook_cells import run_lesson

from helpers.lesson2 import architectures, correlated
from helpers.lesson2.reference_practice import correlated_feature_batch

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "02b_saes_in_practice.ipynb"
LOSS_CLEAN, LOSS_SAE = 1.61, 1.72
N_TOKENS = 7584                          # "the loss on these 7,584 tokens"
STEERING_COUNTS = [0, 15, 24]            # of 24 prompts: 0%, 62%, 100%
CITIES_1784, VERBS_456 = 10, 6
ARCHITECTURES = {"ReLU (L1 0.2)": (3.7, 0.92, 31, 0.73), "TopK (k = 4)": (3.6, 0.91, 30, 0.86),
                 "JumpReLU": (1.6, 0.90, 30, 0.90)}


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------

def test_pair_cosines_and_arrangements() -> None:
    W = torch.tensor([[[1.0, -1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 2.0]],        # pair 0 opposite, pair 1 at right angles
                      [[1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]])        # both pairs merged
    assert torch.allclose(correlated.pair_cosines(W), torch.tensor([[-1.0, 0.0], [1.0, 1.0]]))
    assert correlated.count_pair_arrangements(W) == correlated.PairCounts(1, 1, 2, 4)


def test_correlated_toy_models_train_one_model_per_kind() -> None:
    W, b = correlated.train_correlated_toy_models(["correlated", "anticorrelated"], n_steps=5)
    assert W.shape == (2, 2, 4) and b.shape == (2, 4) and not W.requires_grad
    with torch.no_grad():                  # the notebook turns gradients off; training still works
        W2, _ = correlated.train_correlated_toy_models(["independent"], n_steps=5)
    assert W2.shape == (1, 2, 4)


def test_matched_latents_and_a_perfect_sae_has_no_shrinkage() -> None:
    directions = torch.eye(4)
    decoder = torch.eye(4)[[2, 0, 3, 1]] * 3.0                   # the right directions, in another order and length
    assert architectures.matched_latents(directions, decoder) == ([0, 1, 2, 3], [1, 3, 0, 2])
    true = torch.rand(200, 4) * (torch.rand(200, 4) < 0.5)

    from sae_lens import StandardSAE, StandardSAEConfig

    perfect = StandardSAE(StandardSAEConfig(d_in=4, d_sae=4))     # encoder and decoder the identity: no shrinkage
    with torch.no_grad():
        for name, value in [("W_enc", torch.eye(4)), ("W_dec", torch.eye(4)), ("b_enc", torch.zeros(4)),
                            ("b_dec", torch.zeros(4))]:
            getattr(perfect, name).copy_(value)
    result = architectures.evaluate_architecture(perfect, true, true, directions)
    assert result.shrinkage == pytest.approx(1.0) and result.recovered == 4 and result.mse == pytest.approx(0.0)


def test_synthetic_saes_load_and_keep_the_data_shape() -> None:
    record = architectures.synthetic_training_record()
    for name in record["saes"]:
        sae = architectures.load_synthetic_sae(name)
        assert sae.cfg.d_in == 16 and sae.cfg.d_sae == record["saes"][name]["d_sae"]


def test_correlated_batches_keep_their_promise() -> None:
    g = torch.Generator().manual_seed(0)
    x = correlated_feature_batch(20_000, 4, 0.3, "anticorrelated", g)
    assert not ((x[:, 0] > 0) & (x[:, 1] > 0)).any()
    x = correlated_feature_batch(20_000, 4, 0.3, "correlated", g)
    assert torch.equal(x[:, 0] > 0, x[:, 1] > 0)


def test_hooked_sae_model_gives_the_course_models_logits() -> None:
    from helpers.lesson2.hooked_sae import load_hooked_sae_model
    from helpers.models import cached_model

    tokens = cached_model("course-4l").to_tokens("When Mary and John went to the store, John gave a drink to")
    with torch.no_grad():
        assert torch.equal(load_hooked_sae_model("course-4l")(tokens), cached_model("course-4l")(tokens))


# ------------------------------------------------------------------------------------------------
# Figures quoted by the lesson's text
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lesson() -> dict:
    return run_lesson(LESSON)


@pytest.mark.claim
def test_claim_error_term_leaves_the_output_unchanged(lesson) -> None:
    """'with the error term the logits move by less than 1e-4; without it by over 20; the loss on these 7,584
    tokens L -> L'."""
    ns = lesson
    assert ns["gap_with_error"] < 1e-4
    assert ns["gap_without_error"] > 20
    assert ns["packed"].numel() == N_TOKENS
    assert round(ns["loss_clean"], 2) == LOSS_CLEAN and round(ns["loss_sae"], 2) == LOSS_SAE


@pytest.mark.claim
def test_claim_hook_point_clamp_is_lesson_2s_clamp(lesson) -> None:
    """'the two clamps give the same logits (to 1e-4); 0%, 62% and 100% of completions name a place'."""
    assert (lesson["by_hook_point"] - lesson["by_hand"]).abs().max() < 1e-4
    assert [round(o.share * len(o.completions)) for o in lesson["sweep"]] == STEERING_COUNTS
    assert torch.equal(lesson["acts"], lesson["acts"].clamp(min=0))
    assert lesson["place_latent"] == 1784
    # the clamp takes its latent as an argument: section 2's loop over latents cannot change which one it sets
    clamped = lesson["clamp_latent"](torch.zeros(1, 2, 8), None, latent=5, value=1.0)
    assert clamped[..., 5].eq(1).all() and clamped.sum() == 2


@pytest.mark.claim
def test_claim_topk_shrinkage_falls_with_fewer_spare_slots(lesson) -> None:
    """'topk-2, topk-3 and topk-4 give 0.94, 0.88 and 0.86, but k = 2 recovers only 27 features' (the notebook's
    optional cell prints them)."""
    got = [lesson["topk_by_k"][k] for k in (2, 3, 4)]
    assert [round(r.shrinkage, 2) for r in got] == [0.94, 0.88, 0.86] and got[0].recovered == 27


@pytest.mark.claim
def test_claim_wide_relu_sae_duplicates(lesson) -> None:
    """'relu-wide has no dead latent, but its L0, 11.6, is far above the true 1.6, and it shrinks to 0.30'."""
    wide = lesson["wide"]
    assert wide.dead == 0 and round(wide.l0, 1) == 11.6 and round(wide.shrinkage, 2) == 0.30
    assert round((lesson["feature_acts"] > 0).float().sum(-1).mean().item(), 1) == 1.6


@pytest.mark.claim
def test_claim_logit_lens(lesson) -> None:
    """'latent 1784 promotes cities (N of its top 10); latent 456 fires on names and promotes verbs, no names'."""
    ns = lesson
    words = ns["promoted"](1784)
    assert sum(w in ns["city_or_country"] for w in words) == CITIES_1784
    words = ns["promoted"](456)
    assert sum(w in ns["names"] for w in words) == 0
    assert sum(w in ns["verbs"] for w in words) == VERBS_456
    assert ns["matches"].of(1784).verdict == "clean" and ns["matches"].of(456).verdict == "split"
    assert ns["promoted"](3974)[:2] == ["San", "Francisco"]     # 'San and Francisco come first'


@pytest.mark.claim
def test_claim_architecture_table(lesson) -> None:
    """The table of section 3: L0, explained variance, recovered features and shrinkage of the three SAEs."""
    r = lesson["results"]
    got = {label: (round(v.l0, 1), round(v.explained_variance, 2), v.recovered, round(v.shrinkage, 2))
           for label, v in r.items()}
    assert got == ARCHITECTURES


@pytest.mark.claim
def test_claim_dead_latents(lesson) -> None:
    """'25 of 32 latents dead without warm-up, none with it; TopK 62 of 128, 61 with the aux-k loss'."""
    ns = lesson
    fa, x, t = ns["feature_acts"], ns["x"], ns["true_directions"]
    dead = {name: architectures.evaluate_architecture(architectures.load_synthetic_sae(name), fa, x, t).dead
            for name in ["relu-l1-2", "relu-l1-2-warm-up", "topk-wide", "topk-wide-aux"]}
    assert dead == {"relu-l1-2": 25, "relu-l1-2-warm-up": 0, "topk-wide": 62, "topk-wide-aux": 61}
    rec = {name: architectures.evaluate_architecture(architectures.load_synthetic_sae(name), fa, x, t).recovered
           for name in ["relu-l1-2", "relu-l1-2-warm-up"]}
    assert rec == {"relu-l1-2": 7, "relu-l1-2-warm-up": 31}


@pytest.mark.claim
def test_claim_correlated_pairs(lesson) -> None:
    """'correlated pairs merge (14 of 16), anticorrelated ones sit opposite (12 of 16), independent ones never do'."""
    ns = lesson
    W, n = ns["W"], ns["n_models"]
    counts = [correlated.count_pair_arrangements(W[i * n:(i + 1) * n]) for i in range(3)]
    assert counts[0].antipodal == 0 and counts[0].merged == 0 and counts[0].orthogonal >= 14
    assert counts[1].merged == 14 and counts[1].antipodal == 0
    assert counts[2].antipodal == 12 and counts[2].merged == 0
