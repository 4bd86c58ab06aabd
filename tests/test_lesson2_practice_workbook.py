"""Workbook 2b (SAEs in practice): every check passes its reference and the solved workbook's function, rejects the
stub and the natural wrong answers of ``WRONG_ANSWERS`` with a message that names the mistake; the figures the
workbook's "Try it" cells quote are what its code prints."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from notebook_cells import assert_rejected, run_lesson, workbook_check_tests, wrong_answer_ids

from helpers import lesson2
from helpers.lesson2 import feature_logit_lens, shrinkage_factor, splice_with_error_term, topk_activation
from helpers.lesson2.mistakes_practice import (
    clamp_hook_variant,
    jumprelu_variant,
    logit_lens_variant,
    shrinkage_variant,
    splice_variant,
    topk_variant,
)

ROOT = Path(__file__).resolve().parent.parent
NAME = "02b_saes_in_practice.ipynb"
WORKBOOK = ROOT / "solutions" / NAME
EXERCISES = ["topk_activation", "jumprelu", "feature_logit_lens", "splice_with_error_term", "shrinkage_factor",
             "clamp_with_sae_hook", "correlated_feature_batch"]

test_reference_and_solved_workbook_pass, test_generated_stub_is_rejected = workbook_check_tests(
    NAME, lesson2, EXERCISES)


def _stub(*args, **kwargs):
    raise NotImplementedError("exercise: not implemented yet")


# --- exercise 1: topk_activation, written as a learner would
def _topk_over_batch(x, k):
    values, indices = x.topk(k, dim=0)
    return torch.zeros_like(x).scatter(0, indices, values.relu())


def _topk_without_relu(x, k):
    values, indices = x.topk(k, dim=-1)
    return torch.zeros_like(x).scatter(-1, indices, values)


def _topk_smallest(x, k):
    values, indices = x.topk(k, dim=-1, largest=False)
    return torch.zeros_like(x).scatter(-1, indices, values.relu())


def _topk_threshold_at_kth(x, k):        # keeps k + 1 values: '>=' against the value one past the k-th
    kth = x.topk(k + 1, dim=-1).values[..., -1:]
    return torch.where(x >= kth, x, torch.zeros(())).relu()


# --- exercise 4: splice_with_error_term
def _splice_without_error(model, sae, tokens, edit_latents=None):
    def hook_fn(resid, hook):
        latents = sae.encode(resid)
        return sae.decode(latents if edit_latents is None else edit_latents(latents))
    return model.run_with_hooks(tokens, fwd_hooks=[(sae.cfg.metadata.hook_name, hook_fn)])


def _splice_error_after_edit(model, sae, tokens, edit_latents=None):
    def hook_fn(resid, hook):
        latents = sae.encode(resid)
        if edit_latents is not None:
            latents = edit_latents(latents)
        return sae.decode(latents) + (resid - sae.decode(latents))
    return model.run_with_hooks(tokens, fwd_hooks=[(sae.cfg.metadata.hook_name, hook_fn)])


def _splice_error_flipped(model, sae, tokens, edit_latents=None):
    return splice_variant(model, sae, tokens, edit_latents, error="flipped")


# --- exercise 6: clamp_with_sae_hook
def _clamp_hook_no_error_term(model, sae, tokens, latent, value):
    def clamp(acts, hook):
        acts[..., latent] = value
        return acts
    return model.run_with_hooks_with_saes(tokens, saes=[sae], fwd_hooks=[
        (f"{sae.cfg.metadata.hook_name}.hook_sae_acts_post", clamp)])


def _clamp_hook_returns_nothing(model, sae, tokens, latent, value):
    def clamp(acts, hook):
        acts = acts.clone()
        acts[..., latent] = value
    with model.saes(saes=[sae], use_error_term=True):
        return model.run_with_hooks(tokens, fwd_hooks=[(f"{sae.cfg.metadata.hook_name}.hook_sae_acts_post", clamp)])


def _clamp_hook_leaves_sae(model, sae, tokens, latent, value):
    def clamp(acts, hook):
        acts[..., latent] = value
        return acts
    model.add_sae(sae, use_error_term=True)
    return model.run_with_hooks(tokens, fwd_hooks=[(f"{sae.cfg.metadata.hook_name}.hook_sae_acts_post", clamp)])


# --- exercise 7: correlated_feature_batch
def _sampler(kind_map=None, magnitude_one=False, global_rng=False, anti_half=False):
    def sample(n, n_features, probability, kind, generator):
        gen = None if global_rng else generator
        values = torch.ones(n, n_features) if magnitude_one else torch.rand(n, n_features, generator=gen)
        kind = (kind_map or {}).get(kind, kind)
        pairs = n_features // 2
        if kind == "independent":
            fires = torch.rand(n, n_features, generator=gen) < probability
        elif kind == "correlated":
            fires = (torch.rand(n, pairs, generator=gen) < probability).repeat_interleave(2, dim=1)
        else:
            on = torch.rand(n, pairs, generator=gen) < (probability if anti_half else 2 * probability)
            second = torch.rand(n, pairs, generator=gen) < 0.5
            fires = torch.stack([on & ~second, on & second], dim=-1).flatten(1)
        return values * fires
    return sample


def _anti_drop_one(n, n_features, probability, kind, generator):
    x = lesson2.correlated_feature_batch(n, n_features, probability, "independent", generator)
    if kind == "anticorrelated":
        both = (x[:, 0::2] != 0) & (x[:, 1::2] != 0)
        x[:, 1::2] = x[:, 1::2] * ~both
    elif kind == "correlated":
        x = lesson2.correlated_feature_batch(n, n_features, probability, "correlated", generator)
    return x


# (exercise, wrong answer, parts of the message it must get)
WRONG_ANSWERS = [
    # 1
    ("topk_activation", _stub, ["not implemented yet"]),
    ("topk_activation", _topk_over_batch, ["over the batch", "dim=-1"]),
    ("topk_activation", _topk_without_relu, ["a kept value is negative", "ReLU"]),
    ("topk_activation", _topk_smallest, ["you kept the k smallest"]),
    ("topk_activation", _topk_threshold_at_kth, ["you kept k + 1 values per row"]),
    ("topk_activation", lambda x, k: topk_variant(x, k, by_size=True), ["absolute value"]),
    ("topk_activation", lambda x, k: torch.relu(x), ["every positive value was kept"]),
    # 2
    ("jumprelu", _stub, ["not implemented yet"]),
    ("jumprelu", lambda x, t: torch.relu(x - t), ["you subtracted the threshold", "shrinkage"]),
    ("jumprelu", lambda x, t: (x > t).float(), ["you returned the 0/1 mask"]),
    ("jumprelu", lambda x, t: x.relu() * (x > t[:, None]) if x.shape[0] == x.shape[-1] else x.relu() * (x > t),
     ["line up with the examples"]),
    ("jumprelu", lambda x, t: torch.relu(x), ["you ignored the threshold"]),
    ("jumprelu", lambda x, t: jumprelu_variant(x, t, "mask").bool(), ["dtype"]),
    # 3
    ("feature_logit_lens", _stub, ["not implemented yet"]),
    ("feature_logit_lens", lambda s, m, f, k: (s.W_enc[:, f] @ m.W_U).topk(k).indices, ["you read the encoder"]),
    ("feature_logit_lens", lambda s, m, f, k: (s.W_dec[f] @ m.W_U).topk(k, largest=False).indices, ["*down*"]),
    ("feature_logit_lens", lambda s, m, f, k: logit_lens_variant(s, m, f, k, "column"), ["raised IndexError"]),
    ("feature_logit_lens", lambda s, m, f, k: (s.W_dec[f] @ m.W_E.T).topk(k).indices, ["embeddings (W_E)"]),
    ("feature_logit_lens", lambda s, m, f, k: (s.W_dec[f] @ m.W_U + m.b_U).topk(k).indices, ["bias b_U"]),
    ("feature_logit_lens", lambda s, m, f, k: (s.W_dec[f] @ m.W_U).topk(k).values, ["dtype"]),
    # 4
    ("splice_with_error_term", _stub, ["not implemented yet"]),
    ("splice_with_error_term", _splice_without_error, ["reconstruction alone", "error term"]),
    ("splice_with_error_term", _splice_error_after_edit, ["the edit had no effect", "before you edit"]),
    ("splice_with_error_term", _splice_error_flipped, ["wrong sign"]),
    ("splice_with_error_term", lambda m, s, t, e=None: m(t), ["on case '", "the edit had no effect"]),
    # 5
    ("shrinkage_factor", _stub, ["not implemented yet"]),
    ("shrinkage_factor", lambda t, a: shrinkage_variant(t, a, "ratio-of-means"), ["ratio of the mean values"]),
    ("shrinkage_factor", lambda t, a: float((t * a).sum() / (t * t).sum()), ["the SAE missed"]),
    ("shrinkage_factor", lambda t, a: shrinkage_variant(t, a, "inverse"), ["true ≈ s × SAE"]),
    ("shrinkage_factor", lambda t, a: shrinkage_variant(t, a, "mean-of-ratios"), ["mean of the ratios"]),
    ("shrinkage_factor", lambda t, a: shrinkage_variant(t, a, "norms"), ["ratio of norms"]),
    ("shrinkage_factor", lambda t, a: torch.tensor(shrinkage_factor(t, a)), ["expected a number", "(use .item())"]),
    # 6
    ("clamp_with_sae_hook", _stub, ["not implemented yet"]),
    ("clamp_with_sae_hook", lambda m, s, t, f, v: clamp_hook_variant(m, s, t, f, v, "all"), ["every latent"]),
    ("clamp_with_sae_hook", lambda m, s, t, f, v: clamp_hook_variant(m, s, t, f, v, "add"), ["you added value"]),
    ("clamp_with_sae_hook", _clamp_hook_returns_nothing, ["must return the edited activations"]),
    ("clamp_with_sae_hook", _clamp_hook_no_error_term, ["without its error term", "use_error_term=True"]),
    ("clamp_with_sae_hook", lambda m, s, t, f, v: clamp_hook_variant(m, s, t, f, v, "last"), ["last position"]),
    ("clamp_with_sae_hook", _clamp_hook_leaves_sae, ["you left the SAE attached"]),
    # 7
    ("correlated_feature_batch", _stub, ["not implemented yet"]),
    ("correlated_feature_batch", _sampler({"correlated": "independent"}), ["fire independently"]),
    ("correlated_feature_batch", _sampler(anti_half=True), ["half as often"]),
    ("correlated_feature_batch", _anti_drop_one, ["does not fire with the probability"]),
    ("correlated_feature_batch", _sampler(magnitude_one=True), ["the value 1"]),
    ("correlated_feature_batch", _sampler(global_rng=True), ["generator=generator"]),
    ("correlated_feature_batch", _sampler({"anticorrelated": "independent"}), ["sometimes fire together"]),
    ("correlated_feature_batch", _sampler({"independent": "correlated"}), ["more often than chance"]),
]


@pytest.mark.parametrize(("name", "learner", "parts"), WRONG_ANSWERS, ids=wrong_answer_ids(WRONG_ANSWERS))
def test_wrong_answer_is_rejected_with_its_message(name, learner, parts, capsys) -> None:
    result = getattr(lesson2, f"check_{name}")(learner)
    assert_rejected(result, name, parts, capsys.readouterr().out, only_line=True)
    from helpers.lesson2.cases_practice import hooked_sae_model
    for model_name in ("course-4l", "tiny"):
        model = hooked_sae_model(model_name)
        assert not model.acts_to_saes and not any(hp.fwd_hooks for hp in model.hook_dict.values())


def test_references_agree_with_saelens() -> None:
    """topk_activation is SAELens's TopK; splice_with_error_term with no edit is the model's own logits."""
    from sae_lens.saes.topk_sae import TopK

    from helpers.lesson2.cases_practice import bundled_sae, hooked_sae_model, plain_model

    x = torch.randn(4, 3, 20, generator=torch.Generator().manual_seed(5)) - 0.5
    assert torch.equal(topk_activation(x, 6), TopK(k=6)(x))
    model, sae = plain_model("course-4l"), bundled_sae()
    tokens = model.to_tokens("The Golden Gate Bridge is")
    with torch.no_grad():
        ours = splice_with_error_term(model, sae, tokens)
        theirs = hooked_sae_model("course-4l").run_with_saes(tokens, saes=[sae], use_error_term=True)
        assert (ours - model(tokens)).abs().max() < 1e-3 and (ours - theirs).abs().max() < 1e-3
        assert feature_logit_lens(sae, model, 1784, 3).dtype == torch.int64


@pytest.fixture(scope="module")
def workbook():
    torch.set_num_threads(1)
    return run_lesson(WORKBOOK)


@pytest.mark.claim
def test_claim_try_it_figures(workbook) -> None:
    """The figures the Try it cells quote: 0.0 from SAELens's TopK and JumpReLUSAE, 8 latents per row, the same
    logits from HookedSAETransformer, latent 1784 promoting places, the splice and the clamp agreeing to < 0.001
    and the reconstruction alone moving the logits by several units, and co-firing at 1%, 10% and 0."""
    ns = workbook
    assert ns["topk_difference"] == 0.0 and ns["topk_firing"] == [8]
    assert ns["jump_difference"] == 0.0 and ns["same_model"] == 0.0
    assert ns["n_places"] >= 8
    ours_vs_model, theirs_vs_ours, without_error = ns["splice_gaps"]
    assert ours_vs_model < 1e-3 and theirs_vs_ours < 1e-3 and without_error > 3
    assert ns["steer_gap"] < 1e-3
    co = ns["co_firing"]
    assert abs(co["independent"] - 0.01) < 0.002 and abs(co["correlated"] - 0.1) < 0.005 and co["anticorrelated"] == 0
    assert all(ns[f"passed_{k}"] for k in range(1, 8))
