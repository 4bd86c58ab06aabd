"""Workbook 4b (steering, and a direction found without labels): the checks catch wrong answers, and the
workbook's text agrees with what its cells print.

Part 1 feeds every check of ``helpers.lesson4.checks_steering`` the reference, the solved workbook's function, the
generated stub, and the plausible wrong answers of ``WRONG_ANSWERS``, written the way a learner might write them
(at least three per exercise, each rejected with its own message).

Part 2 runs the solved workbook's code cells once and asserts the figures its text quotes, on its own variables.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from notebook_cells import (  # noqa: E402
    assert_random_state_untouched,
    assert_rejected,
    run_lesson,
    workbook_check_tests,
    wrong_answer_ids,
)

from helpers import lesson4  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAME = "04b_steering_and_unsupervised_probes.ipynb"
EXERCISES = ["mean_difference_direction", "mean_difference_probe_predict", "steering_hook", "effect_per_unit_norm",
             "contrast_pair_differences", "first_principal_direction", "sign_agnostic_accuracy", "ccs_loss"]
CHECKS = {name: getattr(lesson4, f"check_{name}") for name in EXERCISES}


@pytest.fixture(autouse=True)
def _no_grad():
    """No gradients in this module's tests (without leaking that global switch to other modules)."""
    with torch.no_grad():
        yield


# ============================================================================ part 1: the checks
test_reference_and_solved_workbook_pass, test_generated_stub_is_rejected = workbook_check_tests(
    NAME, lesson4, EXERCISES)


# --- learner-style wrong answers -------------------------------------------------------------------

def _direction_learner(kind):
    def learner(acts, labels, normalise=True):
        if kind == "integer-index":
            d = acts[labels].mean(0) - acts[1 - labels].mean(0)
        elif kind == "flipped":
            d = acts[labels == 0].mean(0) - acts[labels == 1].mean(0)
        elif kind == "axis":
            d = acts[labels == 1].mean(1) - acts[labels == 0].mean(1)
        elif kind == "overall":
            d = acts[labels == 1].mean(0) - acts.mean(0)
        else:
            d = acts[labels == 1].mean(0) - acts[labels == 0].mean(0)
        if kind == "never-normalise":
            return d
        if kind == "always-normalise":
            return d / d.norm()
        return d / d.norm() if normalise else d
    return learner


def _predict_learner(kind):
    def learner(direction, train_acts, train_labels, test_acts):
        train, test = train_acts @ direction, test_acts @ direction
        if kind == "zero":
            return (test > 0).long().numpy()
        if kind == "test-mean":
            return (test > test.mean()).long().numpy()
        if kind == "all-train":
            return (test > train.mean()).int().numpy()
        midpoint = (train[train_labels == 1].mean() + train[train_labels == 0].mean()) / 2
        if kind == "flipped":
            return (test < midpoint).long().numpy()
        return test.numpy()                                      # "scores": the projections, not 0/1
    return learner


def _steering_learner(kind):
    shared = {}

    def hook_all(resid, hook):                                   # "shared": one hook for every call
        return resid + shared["alpha"] * shared["vector"]

    def learner(vector, alpha, pos=None):
        if kind == "shared":
            shared["vector"], shared["alpha"] = vector, alpha
            return hook_all

        def hook(resid, hook):
            if kind == "no-return":
                resid = resid + alpha * vector                   # rebinds the name: the model never sees it
                return None
            if kind == "position-0":
                resid[:, 0] += alpha * vector
                return resid
            if kind == "multiply":
                return resid * alpha * vector
            if kind == "ignore-pos":
                return resid + alpha * vector
            if kind == "unit":
                return resid + alpha * vector / vector.norm()
            raise ValueError(kind)
        return hook
    return learner


def _effect_learner(kind):
    def learner(model, tokens, answers, layer, direction, alphas):
        unit = direction if kind == "unnormalised" else direction / direction.norm()
        name = f"blocks.{layer}.hook_resid_pre"
        if kind == "late-binding":
            hooks = [lambda resid, hook: resid + alpha * unit for alpha in alphas]  # noqa: B023
        else:
            hooks = [lesson4.steering_hook(unit, alpha) for alpha in alphas]
        means = []
        for hook in hooks:
            logits = model.run_with_hooks(tokens, fwd_hooks=[(name, hook)])
            if kind == "fancy":
                diff = logits[:, -1][:, answers[:, 0]] - logits[:, -1][:, answers[:, 1]]
            else:
                rows = torch.arange(len(tokens))
                diff = logits[rows, -1, answers[:, 0]] - logits[rows, -1, answers[:, 1]]
            means.append(diff.mean().item())
        means = np.array(means)
        if kind == "reversed":
            means = -means
        if kind == "endpoints":
            return (means[-1] - means[0]) / (alphas[-1] - alphas[0])
        return float(np.polyfit(alphas, means, 1)[0])
    return learner


def _principal_learner(kind):
    def learner(diffs):
        x = diffs if kind == "uncentred" else diffs - diffs.mean(0)
        if kind == "eigh":
            return torch.linalg.eigh(x.T @ x).eigenvectors[:, 0]
        U, S, Vh = torch.linalg.svd(x, full_matrices=False)
        return {"uncentred": Vh[0], "last": Vh[-1], "U": U[:, 0], "column": Vh[:, 0]}[kind]
    return learner


def _accuracy(scores, labels, threshold=0.0):
    return float(((scores > threshold) == (labels == 1)).mean())


WRONG_ANSWERS = [
    ("mean_difference_direction", _direction_learner("flipped"), ["sign is flipped"]),
    ("mean_difference_direction", _direction_learner("never-normalise"), ["not unit length"]),
    ("mean_difference_direction", _direction_learner("always-normalise"), ["normalise=False"]),
    ("mean_difference_direction", _direction_learner("axis"), ["wrong axis", "mean(0)"]),
    ("mean_difference_direction", _direction_learner("overall"), ["mean of all examples"]),
    ("mean_difference_direction", _direction_learner("integer-index"), ["indexed acts with the labels themselves"]),
    ("mean_difference_probe_predict", _predict_learner("zero"), ["thresholded at 0"]),
    ("mean_difference_probe_predict", _predict_learner("test-mean"), ["threshold from the held-out vectors"]),
    ("mean_difference_probe_predict", _predict_learner("all-train"), ["mean projection of all training vectors"]),
    ("mean_difference_probe_predict", _predict_learner("flipped"), ["sign is flipped"]),
    ("mean_difference_probe_predict", _predict_learner("scores"), ["returned the projections themselves"]),
    ("steering_hook", _steering_learner("no-return"), ["the model ran unchanged", "*return*"]),
    ("steering_hook", _steering_learner("position-0"), ["position 0 only"]),
    ("steering_hook", _steering_learner("multiply"), ["multiplied"]),
    ("steering_hook", _steering_learner("shared"), ["late binding", "acts like the last one made"]),
    ("steering_hook", _steering_learner("ignore-pos"), ["although pos was given"]),
    ("steering_hook", _steering_learner("unit"), ["scaled the vector to length 1"]),
    ("effect_per_unit_norm", _effect_learner("unnormalised"), ["kept its length"]),
    ("effect_per_unit_norm", _effect_learner("fancy"), ["across the batch", "[batch, batch]"]),
    ("effect_per_unit_norm", _effect_learner("reversed"), ["sign is flipped"]),
    ("effect_per_unit_norm", _effect_learner("late-binding"), ["late binding", "every run used the last alpha"]),
    ("effect_per_unit_norm", _effect_learner("endpoints"), ["first and last alpha only"]),
    ("contrast_pair_differences", lambda a, b: a - b, ["not centred"]),
    ("contrast_pair_differences", lambda a, b: (b - b.mean(0)) - (a - a.mean(0)), ["sign is flipped"]),
    ("contrast_pair_differences", lambda a, b: (a - a.mean(0)) - b, ["centred only acts_first"]),
    ("contrast_pair_differences", lambda a, b: (a - a.mean(-1, keepdim=True)) - (b - b.mean(-1, keepdim=True)),
     ["its own d_model numbers"]),
    ("first_principal_direction", _principal_learner("uncentred"), ["not centred"]),
    ("first_principal_direction", _principal_learner("last"), ["*least* spread", "Vh[0]"]),
    ("first_principal_direction", _principal_learner("eigh"), ["*least* spread", "eigh"]),
    ("first_principal_direction", _principal_learner("U"), ["column of U"]),
    ("first_principal_direction", _principal_learner("column"), ["column of Vh"]),
    ("sign_agnostic_accuracy", lambda s, y: _accuracy(s, y), ["plain accuracy"]),
    ("sign_agnostic_accuracy", lambda s, y: min(_accuracy(s, y), 1 - _accuracy(s, y)), ["the lower of"]),
    ("sign_agnostic_accuracy", lambda s, y: max(_accuracy(s, y, 0.5), 1 - _accuracy(s, y, 0.5)), ["not 0.5"]),
    ("sign_agnostic_accuracy", lambda s, y: max(_accuracy(s, y, np.median(s)), 1 - _accuracy(s, y, np.median(s))),
     ["somewhere else than 0"]),
    ("sign_agnostic_accuracy", lambda s, y: 100 * max(_accuracy(s, y), 1 - _accuracy(s, y)), ["not a percentage"]),
    ("ccs_loss", lambda p, q: ((p - (1 - q)) ** 2).mean(), ["confidence term is missing"]),
    ("ccs_loss", lambda p, q: ((p - q) ** 2 + torch.min(p, q) ** 2).mean(), ["(p_pos - p_neg) ** 2"]),
    ("ccs_loss", lambda p, q: ((p - (1 - q)) + torch.min(p, q) ** 2).mean(), ["not squared"]),
    ("ccs_loss", lambda p, q: ((p - (1 - q)) ** 2 + torch.max(p, q) ** 2).mean(), ["larger probability"]),
    ("ccs_loss", lambda p, q: ((p - (1 - q)) ** 2 + torch.min(p, q) ** 2).sum(), ["summed over the pairs"]),
    ("ccs_loss", lambda p, q: float(((p - (1 - q)) ** 2 + torch.min(p, q) ** 2).mean()), ["expected a tensor"]),
    ("ccs_loss", lambda p, q: ((p - (1 - q)) ** 2 + torch.min(p, q) ** 2).mean().detach(), ["carries no gradient"]),
]


@pytest.mark.parametrize(("name", "learner", "expected"), WRONG_ANSWERS, ids=wrong_answer_ids(WRONG_ANSWERS))
def test_wrong_answer_is_rejected_with_its_message(name: str, learner, expected: list[str],
                                                   capsys: pytest.CaptureFixture) -> None:
    assert_rejected(CHECKS[name](learner), name, expected, capsys.readouterr().out, only_line=True)


def test_checks_leave_the_learners_random_state_alone() -> None:
    assert_random_state_untouched(lambda: [CHECKS[name](getattr(lesson4, name)) for name in EXERCISES])


def test_checks_run_on_one_thread_and_restore_the_thread_settings() -> None:
    threads = torch.get_num_threads()
    seen = []
    CHECKS["ccs_loss"](lambda p, q: seen.append(torch.get_num_threads()) or lesson4.ccs_loss(p, q))
    assert seen and set(seen) == {1} and torch.get_num_threads() == threads


def test_steering_hook_edits_only_the_position_asked() -> None:
    resid = torch.zeros(2, 5, 3)
    vector = torch.tensor([1.0, 2.0, 3.0])
    steered = lesson4.steering_hook(vector, 2.0, pos=-1)(resid, None)
    assert torch.equal(steered[:, -1], torch.stack([2 * vector] * 2)) and not steered[:, :-1].any()
    assert not resid.any()                                          # the hook's input is left alone
    assert torch.equal(lesson4.steering_hook(vector, -1.0)(resid, None), -vector.expand(2, 5, 3))


# ============================================================================ part 2: the workbook's figures
@pytest.fixture(scope="module")
def workbook() -> dict:
    """The solved workbook's variables, every code cell run once."""
    return run_lesson(ROOT / "solutions" / NAME)


def test_claim_the_mean_difference_and_the_probe_point_the_same_way(workbook: dict) -> None:
    """'At every row the two are nearly the same direction (cosine 0.95 or more).'"""
    assert len(workbook["cosines"]) == 5 and min(workbook["cosines"].values()) >= 0.95, workbook["cosines"]


def test_claim_both_readers_read_sentiment_after_block_0_and_not_from_the_embeddings(workbook: dict) -> None:
    """'Both read sentiment perfectly or nearly (0.95 or more) from the residual stream after block 0 on, and
    neither reads it from the embeddings (0.65 or less).'"""
    readers = workbook["readers"]
    assert max(readers["embed"]) <= 0.65, readers
    assert all(min(readers[name]) >= 0.95 for name in ["block 0", "block 1", "block 2", "block 3"]), readers


def test_claim_steering_turns_every_negative_review_by_alpha_40(workbook: dict) -> None:
    """'At alpha 0 no negative review is answered " positive"; by alpha 40, about the distance between the two
    centres (41), every one is.'"""
    turned = workbook["turned"]
    assert turned[0] == 0.0 and turned[40] == 1.0 and turned[60] == 1.0, turned
    assert abs(workbook["distance"] - 41) < 1.0, workbook["distance"]


def test_claim_effect_per_unit_norm_of_the_three_directions(workbook: dict) -> None:
    """'the same direction here (cosine 1.00) ... 0.37 per unit of alpha. The SAE latent's decoder direction
    (cosine 0.50 with them) moves it about a third as much, and the random direction less than a fifth as much.'"""
    slopes = workbook["slopes"]
    probe, mean_diff = slopes["logistic probe"], slopes["mean difference"]
    sae = next(value for name, value in slopes.items() if name.startswith("SAE latent"))
    assert round(probe, 2) == round(mean_diff, 2) == 0.37, slopes
    assert 0.25 < sae / mean_diff < 0.42, slopes
    assert abs(slopes["random"]) / mean_diff < 0.2, slopes
    directions = workbook["directions"]
    mean_direction = directions["mean difference"]
    probe_cos = float(directions["logistic probe"] @ mean_direction)
    sae_direction = next(d for name, d in directions.items() if name.startswith("SAE latent"))
    assert round(probe_cos, 2) == 1.00
    assert round(float(sae_direction @ mean_direction / sae_direction.norm()), 2) == 0.50


def test_claim_the_first_principal_component_of_contrast_pairs_is_truth_after_block_2(workbook: dict) -> None:
    """'Before block 2 ... (held-out accuracy 0.70 or less). After blocks 2 and 3 ... 0.95 or more of the held-out
    pairs, and it is the direction the labels would have given (|cosine| 0.95 or more).'"""
    found = workbook["unsupervised"]
    assert all(found[name][0] <= 0.70 for name in ["embed", "block 0", "block 1"]), found
    assert all(found[name][0] >= 0.95 and found[name][1] >= 0.95 for name in ["block 2", "block 3"]), found


def test_claim_ccs_sorts_the_pairs_but_points_only_partly_along_the_principal_component(workbook: dict) -> None:
    """'CCS sorts the held-out pairs nearly as well as the principal component (above 0.9), yet its weight vector
    points only partly the same way (|cosine| about 0.5).'"""
    assert workbook["ccs_accuracy"] > 0.9, workbook["ccs_accuracy"]
    assert 0.35 < workbook["ccs_cosine"] < 0.65, workbook["ccs_cosine"]
