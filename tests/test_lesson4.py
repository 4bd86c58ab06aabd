"""Lesson 4 (probing): the workbook's checks catch wrong answers, and the lesson's text agrees with the model.

Part 1 feeds every check of ``helpers.lesson4`` the reference, the solved workbook's function, the
generated stub, and plausible wrong answers written the way a learner might write them.

Part 2 tests the helpers the lesson builds on (projection, control labels, counterfactual reviews...).

Part 3 runs the code cells of ``notebooks/04_probing.ipynb`` once and asserts every figure its text
quotes, on the very variables the lesson prints and plots.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from helpers import corpus, lesson4  # noqa: E402
from helpers.lesson4 import control_labels, project_out  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAME = "04_probing.ipynb"
EXERCISES = ["last_token_resid", "probe_accuracy", "selectivity", "project_out", "logits_without_direction",
             "false_statement_auroc"]
CHECKS = {name: getattr(lesson4, f"check_{name}") for name in EXERCISES}


@pytest.fixture(autouse=True)
def _no_grad():
    """No gradients in this module's tests (without leaking that global switch to other modules)."""
    with torch.no_grad():
        yield


def _code_cells(path: Path) -> list[str]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in notebook["cells"] if c["cell_type"] == "code"]


def _workbook_functions(path: Path) -> dict:
    """Run the setup cell and the exercise cells of a workbook; return its namespace."""
    cells = _code_cells(path)
    namespace: dict = {}
    grad_enabled = torch.is_grad_enabled()
    exec(cells[0], namespace)  # setup: imports, model  # noqa: S102
    torch.set_grad_enabled(grad_enabled)  # the setup cell switches gradients off for its own kernel
    for source in cells:
        if any(f"def {name}(" in source for name in EXERCISES):
            exec(source, namespace)  # noqa: S102
    return namespace


# ============================================================================ part 1: the checks
@pytest.fixture(scope="module")
def solved() -> dict:
    return _workbook_functions(ROOT / "solutions" / NAME)


@pytest.fixture(scope="module")
def stubs() -> dict:
    return _workbook_functions(ROOT / "exercises" / NAME)


@pytest.mark.parametrize("name", EXERCISES)
def test_reference_and_solved_workbook_pass(name: str, solved: dict) -> None:
    assert CHECKS[name](getattr(lesson4, name)).passed
    result = CHECKS[name](solved[name])
    assert result.passed, result.message


@pytest.mark.parametrize("name", EXERCISES)
def test_generated_stub_is_rejected(name: str, stubs: dict) -> None:
    result = CHECKS[name](stubs[name])
    assert not result.passed
    assert "not implemented yet" in result.message and "NotImplementedError" in result.message


# --- learner-style wrong answers -------------------------------------------------------------------

def _resid_learner(*, text=False, read="end", entries="all"):
    def learner(model, examples):
        tokens = model.to_tokens([e.text if text else e.prompt for e in examples], padding_side="right")
        ends = torch.tensor([corpus.token_positions(e, model.tokenizer)["end"] for e in examples])
        if read == "last":
            positions = torch.full_like(ends, -1)
        elif read == "answer":
            positions = ends + 1
        elif read == "count":     # lengths from the pad mask; here BOS has the pad id, so this is one short
            positions = (tokens != model.tokenizer.pad_token_id).sum(-1) - 1
        else:
            positions = ends
        names = {"all": ["blocks.0.hook_resid_pre"] + [f"blocks.{l}.hook_resid_post" for l in range(4)],
                 "post": [f"blocks.{l}.hook_resid_post" for l in range(4)]}[entries]
        _, cache = model.run_with_cache(tokens)
        rows = torch.arange(len(examples))
        return torch.stack([cache[n][rows, positions] for n in names])
    return learner


def _probe_learner(kind):
    def learner(X_train, y_train, X_test, y_test):
        if kind == "same-split":
            return LogisticRegression(max_iter=1000).fit(X_train, y_train).score(X_train, y_train)
        if kind == "fit-all":
            probe = LogisticRegression(max_iter=1000).fit(np.vstack([X_train, X_test]), np.hstack([y_train, y_test]))
            return probe.score(X_test, y_test)
        if kind == "fit-test":
            return LogisticRegression(max_iter=1000).fit(X_test, y_test).score(X_test, y_test)
        if kind == "error":
            return 1 - LogisticRegression(max_iter=1000).fit(X_train, y_train).score(X_test, y_test)
        raise ValueError(kind)
    return learner


def _selectivity_learner(kind):
    def learner(X_train, y_train, types_train, X_test, y_test, types_test, seed=0):
        n = int(max(y_train.max(), y_test.max())) + 1
        if kind == "separate":
            c_train, c_test = control_labels(types_train, n, seed), control_labels(types_test, n, seed)
        elif kind == "per-example":
            rng = np.random.default_rng(seed)
            c = rng.integers(0, n, len(types_train) + len(types_test))
            c_train, c_test = c[:len(types_train)], c[len(types_train):]
        else:
            c = control_labels(list(types_train) + list(types_test), n, seed)
            c_train, c_test = c[:len(types_train)], c[len(types_train):]
        task = lesson4.probe_accuracy(X_train, y_train, X_test, y_test)
        if kind == "control-on-train":
            ctrl = lesson4.probe_accuracy(X_train, c_train, X_train, c_train)
        else:
            ctrl = lesson4.probe_accuracy(X_train, c_train, X_test, c_test)
        return (task, ctrl, ctrl - task) if kind == "flipped" else (task, ctrl, task - ctrl)
    return learner


def _hook_learner(kind):
    def learner(model, tokens, layer, direction):
        u = direction if kind == "unnormalised" else direction / direction.norm()

        def hook(resid, hook):
            edited = resid - (resid @ u)[..., None] * u
            if kind == "last-only":
                resid[:, -1] = edited[:, -1]
                return resid
            if kind == "no-return":
                resid = edited          # rebinds the name: the model never sees the edit
                return None
            return edited

        name = f"blocks.{layer}.hook_resid_{'pre' if kind == 'resid-pre' else 'post'}"
        if kind == "left-attached":
            model.add_hook(name, hook)
            return model(tokens)
        return model.run_with_hooks(tokens, fwd_hooks=[(name, hook)])
    return learner


NOT_IDEMPOTENT = "not idempotent"
LEAK = "the label leaked in through the position"
WRONG_ANSWERS = [
    ("last_token_resid", _resid_learner(read="last"), ["last position of the padded batch", "padding token"]),
    ("last_token_resid", _resid_learner(text=True, read="answer"), [LEAK]),
    ("last_token_resid", _resid_learner(text=True, read="last"), [LEAK]),
    ("last_token_resid", _resid_learner(read="count"), ["off by one position", "BOS"]),
    ("last_token_resid", _resid_learner(entries="post"), ["entry 0 is missing", "hook_resid_pre"]),
    ("probe_accuracy", _probe_learner("same-split"), ["scored the probe on the examples it was trained on"]),
    ("probe_accuracy", _probe_learner("fit-all"), ["saw the held-out examples during training"]),
    ("probe_accuracy", _probe_learner("fit-test"), ["trained and scored on the held-out split"]),
    ("probe_accuracy", _probe_learner("error"), ["error rate"]),
    ("selectivity", _selectivity_learner("separate"), ["keep its random label in both splits"]),
    ("selectivity", _selectivity_learner("per-example"), ["every example its own random label"]),
    ("selectivity", _selectivity_learner("control-on-train"), ["control probe on its training examples"]),
    ("selectivity", _selectivity_learner("flipped"), ["sign of the selectivity is flipped"]),
    ("project_out", lambda resid, d: resid - (resid @ d)[..., None] * d, [NOT_IDEMPOTENT, "unit vector"]),
    ("project_out", lambda resid, d: resid - (resid @ d)[..., None] * d / d.norm(), [NOT_IDEMPOTENT]),
    ("project_out", lambda resid, d: (resid @ (d / d.norm()))[..., None] * (d / d.norm()),
     ["returned the component along the direction"]),
    ("project_out", lambda resid, d: resid - d / d.norm(), ["subtracted the same vector from every position"]),
    ("logits_without_direction", _hook_learner("resid-pre"), ["block's input (hook_resid_pre)"]),
    ("logits_without_direction", _hook_learner("last-only"), ["only the last position"]),
    ("logits_without_direction", _hook_learner("unnormalised"), [NOT_IDEMPOTENT]),
    ("logits_without_direction", _hook_learner("no-return"), ["ordinary logits", "*return* the edited tensor"]),
    ("logits_without_direction", _hook_learner("left-attached"), ["left hooks attached"]),
    ("false_statement_auroc", lambda p, X, t: roc_auc_score(t, p.predict_proba(X)[:, 0]), ["sign is flipped"]),
    ("false_statement_auroc", lambda p, X, t: roc_auc_score(1 - t, p.predict_proba(X)[:, 1]), ["sign is flipped"]),
    ("false_statement_auroc", lambda p, X, t: roc_auc_score(1 - t, p.predict(X) == 0), ["hard 0/1 predictions"]),
    ("false_statement_auroc", lambda p, X, t: p.score(X, t), ["accuracy, not the area under the ROC curve"]),
]


@pytest.mark.parametrize(("name", "learner", "expected"), WRONG_ANSWERS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG_ANSWERS)])
def test_wrong_answer_is_rejected_with_its_message(name: str, learner, expected: list[str],
                                                   capsys: pytest.CaptureFixture) -> None:
    result = CHECKS[name](learner)
    assert not result.passed
    assert result.message.startswith(f"❌ {name}")
    for part in expected:
        assert part in result.message, result.message
    printed = capsys.readouterr().out
    assert printed.strip() == result.message and "Traceback" not in printed


def test_every_check_has_at_least_two_wrong_answers_tested() -> None:
    counts = {name: sum(n == name for n, _, _ in WRONG_ANSWERS) for name in EXERCISES}
    assert min(counts.values()) >= 2, counts


def test_checks_leave_the_learners_random_state_alone() -> None:
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    for name in EXERCISES:
        CHECKS[name](getattr(lesson4, name))
    assert torch.equal(torch.rand(3), expected_torch) and np.array_equal(np.random.rand(3), expected_np)


def test_checks_leave_the_model_without_hooks() -> None:
    model = lesson4._check_model()
    CHECKS["logits_without_direction"](_hook_learner("left-attached"))
    assert not any(hp.fwd_hooks for hp in model.hook_dict.values())


# ============================================================================ part 2: the helpers
def test_project_out_is_an_idempotent_projection() -> None:
    g = torch.Generator().manual_seed(0)
    resid, direction = torch.randn(3, 7, 16, generator=g), 5 * torch.randn(16, generator=g)
    once = project_out(resid, direction)
    assert torch.allclose(project_out(once, direction), once, atol=1e-5)
    assert (once @ direction).abs().max() < 1e-4
    basis = lesson4.orthonormal(torch.randn(3, 16, generator=g))
    assert torch.allclose(basis @ basis.T, torch.eye(3), atol=1e-5)
    removed = lesson4.project_out_subspace(resid, basis)
    assert (removed @ basis.T).abs().max() < 1e-4
    assert torch.allclose(lesson4.project_out_subspace(removed, basis), removed, atol=1e-5)


def test_control_labels_give_each_type_one_label_across_splits() -> None:
    types = ["b", "a", "c", "a", "b", "d"]
    labels = control_labels(types, 2, seed=0)
    assert labels[0] == labels[4] and labels[1] == labels[3]
    assert np.array_equal(control_labels(types, 2, seed=0), labels)      # seeded
    many = control_labels([f"t{i}" for i in range(200)], 5, seed=1)
    assert set(many.tolist()) == set(range(5))


def test_task_data_reads_the_last_prompt_token_and_the_right_answers() -> None:
    model = lesson4._check_model()
    for task in lesson4.TASKS:
        data = lesson4.task_data(task, "test", 6, model.tokenizer, seed=3)
        tokens = model.to_tokens(data.prompts, padding_side="right")
        lengths = 1 + (tokens[:, 1:] != model.tokenizer.pad_token_id).sum(-1)
        assert np.array_equal(data.positions, lengths.numpy() - 1), task
        right = [model.tokenizer.decode([i]) for i in data.answers[:, 0].tolist()]
        assert right == [e.answer for e in data.examples], task


def test_flipped_review_swaps_every_sentiment_word_and_keeps_the_positions() -> None:
    model = lesson4._check_model()
    from helpers import corpus_data

    for i, example in enumerate(corpus.review_examples(20, "test", seed=9)):
        flipped = lesson4.flipped_review(example, seed=i)
        assert model.to_tokens(flipped).shape == model.to_tokens(example.prompt).shape
        words = set(flipped.replace(".", " ").replace(",", " ").split())
        own = corpus_data.POSITIVE_WORDS if example.labels["positive"] else corpus_data.NEGATIVE_WORDS
        other = corpus_data.NEGATIVE_WORDS if example.labels["positive"] else corpus_data.POSITIVE_WORDS
        assert not words & set(own) and words & set(other)


def test_random_model_has_the_shape_but_not_the_weights() -> None:
    model = lesson4._check_model()
    fresh = lesson4.random_model(model, seed=0)
    assert fresh.cfg.n_layers == model.cfg.n_layers and fresh.cfg.d_model == model.cfg.d_model
    assert not torch.allclose(fresh.W_E, model.W_E)
    assert torch.equal(lesson4.random_model(model, seed=0).W_E, fresh.W_E)     # seeded


def test_embedding_baseline_is_the_mean_embedding_of_the_words() -> None:
    model = lesson4._check_model()
    prompts = ["The film was great", "The hotel was cold and dirty"]
    means = lesson4.embedding_baseline(model, prompts)
    ids = model.to_tokens(prompts[1], prepend_bos=False)[0]
    assert torch.allclose(means[1], model.W_E[ids].mean(0), atol=1e-5)
    assert means.shape == (2, model.cfg.d_model)


def test_model_logit_diff_matches_full_logits() -> None:
    model = lesson4._check_model()
    data = lesson4.task_data("io_name", "test", 5, model.tokenizer, seed=4)
    logits = model(model.to_tokens(data.prompts, padding_side="right"))
    last = logits[torch.arange(5), torch.as_tensor(data.positions)]
    expected = last.gather(1, data.answers[:, :1])[:, 0] - last.gather(1, data.answers[:, 1:])[:, 0]
    assert torch.allclose(lesson4.model_logit_diff(model, data), expected, atol=1e-4)
