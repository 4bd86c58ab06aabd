"""Lesson 4 (probing): the workbook's checks catch wrong answers, and the lesson's text agrees with the model.

Part 1 feeds every check of ``helpers.lesson4.checks`` the reference, the solved workbook's function, the
generated stub, and the plausible wrong answers of ``WRONG_ANSWERS``, written the way a learner might write
them (at least three per exercise, each rejected with its own message).

Part 2 tests the helpers the lesson builds on (projection, control labels, counterfactual reviews...).

Part 3 runs the code cells of ``notebooks/04_probing.ipynb`` once and asserts every figure its text
quotes, on the very variables the lesson prints and plots; and that the interventions of section 5 are
written in the lesson's cells (hooks and ``run_with_hooks``), not hidden in the helpers.
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
    code_cells,
    run_lesson,
    workbook_check_tests,
    wrong_answer_ids,
)
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from helpers import corpus, lesson4  # noqa: E402
from helpers.lesson4 import control_labels, project_out  # noqa: E402
from helpers.models import cached_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAME = "04_probing.ipynb"
EXERCISES = ["last_token_resid", "probe_accuracy", "selectivity", "project_out", "logits_without_direction",
             "false_statement_auroc"]
CHECKS = {name: getattr(lesson4.checks, f"check_{name}") for name in EXERCISES}
MIN_WRONG_ANSWERS = 3


@pytest.fixture(autouse=True)
def _no_grad():
    """No gradients in this module's tests (without leaking that global switch to other modules)."""
    with torch.no_grad():
        yield


# ============================================================================ part 1: the checks
test_reference_and_solved_workbook_pass, test_generated_stub_is_rejected = workbook_check_tests(
    NAME, lesson4, EXERCISES)


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
        names = {"all": ["blocks.0.hook_resid_pre"] + [f"blocks.{layer}.hook_resid_post" for layer in range(4)],
                 "post": [f"blocks.{layer}.hook_resid_post" for layer in range(4)],
                 "pre": [f"blocks.{layer}.hook_resid_pre" for layer in range(4)]}[entries]
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
        if kind == "percent":
            return 100 * LogisticRegression(max_iter=1000).fit(X_train, y_train).score(X_test, y_test)
        raise ValueError(kind)
    return learner


def _selectivity_learner(kind):
    def learner(X_train, y_train, types_train, X_test, y_test, types_test, seed=0):
        n = int((min if kind == "min" else max)(y_train.max(), y_test.max())) + 1
        if kind == "types":                             # as many classes as there are types
            n = len(set(types_train) | set(types_test))
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

        where = {"resid-pre": "pre", "resid-mid": "mid"}.get(kind, "post")
        name = f"blocks.{layer}.hook_resid_{where}"
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
    ("last_token_resid", _resid_learner(entries="pre"), ["the last block's output is missing"]),
    ("probe_accuracy", _probe_learner("same-split"), ["scored the probe on the examples it was trained on"]),
    ("probe_accuracy", _probe_learner("fit-all"), ["saw the held-out examples during training"]),
    ("probe_accuracy", _probe_learner("fit-test"), ["trained and scored on the held-out split"]),
    ("probe_accuracy", _probe_learner("error"), ["error rate"]),
    ("probe_accuracy", _probe_learner("percent"), ["not a percentage"]),
    ("selectivity", _selectivity_learner("separate"), ["keep its random label in both splits"]),
    ("selectivity", _selectivity_learner("per-example"), ["every example its own random label"]),
    ("selectivity", _selectivity_learner("control-on-train"), ["control probe on its training examples"]),
    ("selectivity", _selectivity_learner("flipped"), ["sign of the selectivity is flipped"]),
    ("selectivity", _selectivity_learner("types"), ["n_classes is the number of label classes, not of types"]),
    ("selectivity", _selectivity_learner("min"), ["you counted the classes with min", "held-out split has only"]),
    ("project_out", lambda resid, d: resid - (resid @ d)[..., None] * d, [NOT_IDEMPOTENT, "unit vector"]),
    ("project_out", lambda resid, d: resid - (resid @ d)[..., None] * d / d.norm(), [NOT_IDEMPOTENT]),
    ("project_out", lambda resid, d: (resid @ (d / d.norm()))[..., None] * (d / d.norm()),
     ["returned the component along the direction"]),
    ("project_out", lambda resid, d: resid - d / d.norm(), ["subtracted the same vector from every position"]),
    ("project_out", lambda resid, d: resid - d, ["subtracted the same vector from every position"]),
    ("project_out", lambda resid, d: resid + (resid @ (d / d.norm()))[..., None] * (d / d.norm()),
     ["added the component along the direction"]),
    ("logits_without_direction", _hook_learner("resid-pre"), ["block's input (hook_resid_pre)"]),
    ("logits_without_direction", _hook_learner("resid-mid"), ["middle of the block (hook_resid_mid)"]),
    ("logits_without_direction", _hook_learner("last-only"), ["only the last position"]),
    ("logits_without_direction", _hook_learner("unnormalised"), [NOT_IDEMPOTENT]),
    ("logits_without_direction", _hook_learner("no-return"), ["ordinary logits", "*return* the edited tensor"]),
    ("logits_without_direction", _hook_learner("left-attached"), ["left hooks attached"]),
    ("false_statement_auroc", lambda p, X, t: roc_auc_score(t, p.predict_proba(X)[:, 0]), ["sign is flipped"]),
    ("false_statement_auroc", lambda p, X, t: roc_auc_score(1 - t, p.predict_proba(X)[:, 1]), ["sign is flipped"]),
    ("false_statement_auroc", lambda p, X, t: roc_auc_score(1 - t, p.predict(X) == 0), ["hard 0/1 predictions"]),
    ("false_statement_auroc", lambda p, X, t: p.score(X, t), ["accuracy, not the area under the ROC curve"]),
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
    lesson4.checks.check_project_out(lambda resid, d: seen.append(torch.get_num_threads()) or project_out(resid, d))
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == threads


def test_checks_leave_the_model_without_hooks() -> None:
    model = cached_model(lesson4.CHECK_MODEL)
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
    model = cached_model(lesson4.CHECK_MODEL)
    for task in lesson4.TASKS:
        data = lesson4.task_data(task, "test", 6, model.tokenizer, seed=3)
        tokens = model.to_tokens(data.prompts, padding_side="right")
        lengths = 1 + (tokens[:, 1:] != model.tokenizer.pad_token_id).sum(-1)
        assert np.array_equal(data.positions, lengths.numpy() - 1), task
        right = [model.tokenizer.decode([i]) for i in data.answers[:, 0].tolist()]
        assert right == [e.answer for e in data.examples], task


def test_flipped_review_swaps_every_sentiment_word_and_keeps_the_positions() -> None:
    model = cached_model(lesson4.CHECK_MODEL)
    from helpers import corpus_data

    for i, example in enumerate(corpus.review_examples(20, "test", seed=9)):
        flipped = lesson4.flipped_review(example, seed=i)
        assert model.to_tokens(flipped).shape == model.to_tokens(example.prompt).shape
        words = set(flipped.replace(".", " ").replace(",", " ").split())
        own = corpus_data.POSITIVE_WORDS if example.labels["positive"] else corpus_data.NEGATIVE_WORDS
        other = corpus_data.NEGATIVE_WORDS if example.labels["positive"] else corpus_data.POSITIVE_WORDS
        assert not words & set(own) and words & set(other)


def test_relation_donors_have_the_other_relation_the_other_truth_value_and_the_same_position() -> None:
    model = cached_model(lesson4.CHECK_MODEL)
    statements = lesson4.task_data("truth", "test", 80, model.tokenizer, seed=5)
    pairs = lesson4.relation_donors(statements.examples, statements.positions, seed=1)
    assert len(pairs.clean) == len(pairs.donor) > 0 and len(set(pairs.clean.tolist())) == len(pairs.clean)
    for i, j in zip(pairs.clean, pairs.donor):
        a, b = statements.examples[i], statements.examples[j]
        assert a.labels["relation"] != b.labels["relation"] and a.labels["true"] != b.labels["true"]
        assert statements.positions[i] == statements.positions[j]
    unpaired = set(range(80)) - set(pairs.clean.tolist())           # left out only when no partner exists
    for i in unpaired:
        e = statements.examples[i]
        assert not any(o.labels["relation"] != e.labels["relation"] and o.labels["true"] != e.labels["true"]
                       and statements.positions[k] == statements.positions[i]
                       for k, o in enumerate(statements.examples))


def test_random_model_has_the_shape_but_not_the_weights() -> None:
    model = cached_model(lesson4.CHECK_MODEL)
    fresh = lesson4.random_model(model, seed=0)
    assert fresh.cfg.n_layers == model.cfg.n_layers and fresh.cfg.d_model == model.cfg.d_model
    assert not torch.allclose(fresh.W_E, model.W_E)
    assert torch.equal(lesson4.random_model(model, seed=0).W_E, fresh.W_E)     # seeded


def test_embedding_baseline_is_the_mean_embedding_of_the_words() -> None:
    model = cached_model(lesson4.CHECK_MODEL)
    prompts = ["The film was great", "The hotel was cold and dirty"]
    means = lesson4.embedding_baseline(model, prompts)
    ids = model.to_tokens(prompts[1], prepend_bos=False)[0]
    assert torch.allclose(means[1], model.W_E[ids].mean(0), atol=1e-5)
    assert means.shape == (2, model.cfg.d_model)




# ============================================================================ part 3: the lesson's claims
@pytest.fixture(scope="module")
def lesson() -> dict:
    """The namespace left by running every code cell of the lesson."""
    return run_lesson(ROOT / "notebooks" / NAME)


def test_the_lessons_margin_matches_full_logits(lesson: dict) -> None:
    """The lesson's own ``margin`` (stops before the final LayerNorm, unembeds the last token) is the full run's."""
    model = lesson["model"]
    data = lesson4.task_data("io_name", "test", 5, model.tokenizer, seed=4)
    logits = model(model.to_tokens(data.prompts, padding_side="right"))
    last = logits[torch.arange(5), torch.as_tensor(data.positions)]
    expected = last.gather(1, data.answers[:, :1])[:, 0] - last.gather(1, data.answers[:, 1:])[:, 0]
    assert torch.allclose(lesson["margin"](data), expected, atol=1e-4)
    assert torch.allclose(lesson["margin"](data, batch_size=2), expected, atol=1e-4)


def test_the_interventions_are_written_in_the_lessons_cells() -> None:
    """Section 5's hooks and runs are in the lesson's cells; the helpers it leans on are shown with show_code."""
    source = "\n".join(code_cells(ROOT / "notebooks" / NAME))
    assert "lesson4.model_logit_diff" not in source and "from helpers.lesson2" not in source
    for call in ["model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks)",          # the one forward pass with hooks
                 "def remove(direction):", "return project_out(resid, u)",         # removal of a probe direction
                 "def remove_subspace(basis):", "show_code(lesson4.amnesic_basis)",  # INLP
                 "def steer(direction, alpha):", "return resid + alpha * u",        # steering
                 "def patch_last_token(donor_cache, rows, ends):",                    # patching, one hook builder
                 "model.run_with_cache(model.to_tokens(donor_prompts",                  # for both attributes
                 "share_moved(reviews, flipped)", "share_moved(statements_patched, donors.prompts)",
                 "show_code(lesson4.random_model)"]:                                 # the untrained model
        assert call in source, call
    cells = code_cells(ROOT / "notebooks" / NAME)
    for name in ("random_model", "amnesic_basis"):                # shown in the cell right before its first use
        first_use = next(i for i, c in enumerate(cells) if f"lesson4.{name}(" in c)
        assert f"show_code(lesson4.{name})" in cells[first_use - 1], name


def test_claim_tutorial_example_runs_with_the_same_calls() -> None:
    source = "\n".join(code_cells(ROOT / "notebooks" / NAME))
    for call in ['_, cache = model.run_with_cache(model.to_tokens(text))',
                 'X.append(cache["resid_post", 3][0, -1].numpy())',
                 'probe = LogisticRegression(max_iter=1000).fit(np.array(X), y)',
                 'print("linear separability (probe accuracy):", probe.score(np.array(X), y))']:
        assert call in source, call


def test_claim_activations_come_from_run_with_cache_with_a_names_filter() -> None:
    import inspect

    assert "names_filter" in inspect.getsource(lesson4.gather_resid)


def test_claim_a_probe_fits_shuffled_labels_on_its_training_data(lesson: dict) -> None:
    assert lesson["probe"].score(np.array(lesson["X"]), lesson["y"]) == 1.0
    assert lesson["memoriser"].score(np.array(lesson["X"]), lesson["shuffled"]) == 1.0          # "100%"
    assert lesson["probe"].score(lesson["X_held_out"], lesson["y_held_out"]) == 1.0
    assert lesson["memoriser"].score(lesson["X_held_out"], lesson["y_held_out"]) == pytest.approx(0.447, abs=0.02)


def test_claim_the_models_own_answers(lesson: dict) -> None:
    own = lesson["model_accuracy"]
    assert own["sentiment"] == 1.0
    assert own["truth"] == pytest.approx(0.950, abs=0.005)
    assert own["io_name"] == pytest.approx(0.993, abs=0.005)


def test_claim_where_each_attribute_becomes_readable(lesson: dict) -> None:
    acc, chance = lesson["accuracy"], lesson["chance"]
    assert acc["sentiment"][0] == pytest.approx(0.515, abs=0.005) and (acc["sentiment"][1:4] == 1.0).all()
    assert acc["sentiment"][4] == pytest.approx(0.995, abs=0.005)                # "99.5% after block 3"
    assert lesson["best_layer"]["sentiment"] == 1                                 # readable after block 0
    np.testing.assert_allclose(acc["io_name"][1:], [0.033, 0.867, 0.947, 0.937], atol=0.005)
    assert acc["io_name"][1] < chance["io_name"]                                  # "below chance" after block 0
    assert lesson["best_layer"]["io_name"] == 3 and chance["io_name"] == pytest.approx(0.05, abs=0.005)
    # truth: barely above chance after blocks 0 and 1, readable after blocks 2 and 3
    # "under 60%" after blocks 0 and 1 (the fragility check sees 56.3-56.7% and 58.0-59.3%)
    assert 0.55 < acc["truth"][1] < 0.6 and 0.55 < acc["truth"][2] < 0.6
    np.testing.assert_allclose(acc["truth"][3:], [0.923, 0.943], atol=0.005)
    assert acc["truth"][:3].max() < 0.6 and chance["truth"] == 0.5 and lesson["best_layer"]["truth"] == 4
    assert acc["truth"][3:].min() > 0.9
    # "in line with the model's own true/false answers (95%)"
    assert acc["truth"].max() == pytest.approx(lesson["model_accuracy"]["truth"], abs=0.01)


def test_claim_controls(lesson: dict) -> None:
    c, base, sel = lesson["controls"], lesson["baseline"], lesson["selectivity"]
    # sentiment: in the words; an untrained model gets most of it; selectivity 0.225 to 0.43
    assert base["sentiment"] == 1.0
    assert c["sentiment"]["random-init model"][1] == pytest.approx(0.80, abs=0.005)
    assert c["sentiment"]["random-init model"].max() == pytest.approx(0.80, abs=0.005)
    np.testing.assert_allclose(c["sentiment"]["control task (random labels)"][1:].min(), 0.57, atol=0.005)
    # "0.570 after block 0", "up to 0.775" after blocks 1 to 3 (the fragility check sees 0.770-0.780);
    # "falls from 0.430 to between 0.22 and 0.31" (after blocks 1 to 3: 0.305, 0.22-0.23, 0.280)
    assert 0.765 <= c["sentiment"]["control task (random labels)"][1:].max() <= 0.785
    assert 0.215 <= sel["sentiment"][2:].min() <= 0.235 and sel["sentiment"][2:].max() <= 0.31
    assert sel["sentiment"][1] == pytest.approx(0.43, abs=0.005) and sel["sentiment"][1] == sel["sentiment"][1:].max()
    # each control task against its own chance: the majority share of its held-out random labels (seeded, exact)
    cc = lesson["control_chance"]
    assert (round(cc["sentiment"], 3), round(cc["truth"], 3), round(cc["io_name"], 3)) == (0.66, 0.577, 0.113)
    sentiment_control = c["sentiment"]["control task (random labels)"]
    assert sentiment_control[1] < cc["sentiment"] - 0.05                   # "0.570 after block 0, below its chance"
    assert (sentiment_control[2:] > cc["sentiment"] + 0.02).all()          # "after blocks 1 to 3 ... above it"
    assert (c["io_name"]["control task (random labels)"][2:] < cc["io_name"]).all()   # "below its own chance"
    truth_control = c["truth"]["control task (random labels)"]
    # "in the embeddings the control task scores exactly its chance (0.577)"; the gap of the two chances and a
    # probe at its own make the -0.090
    assert truth_control[0] == pytest.approx(cc["truth"], abs=0.0005)
    assert lesson["accuracy"]["truth"][0] == pytest.approx(0.5, abs=0.03)
    # "after blocks 0 and 1 the control task reaches 0.73 and 0.71, well above its chance"
    np.testing.assert_allclose(truth_control[1:3], [0.73, 0.71], atol=0.006)
    assert (truth_control[1:3] > cc["truth"] + 0.1).all()
    assert (c["sentiment"]["MLP probe"][1:] == 1.0).all()
    # IO name: computed by the layers
    assert base["io_name"] == pytest.approx(0.013, abs=0.005) and base["io_name"] < lesson["chance"]["io_name"]
    assert 0.115 <= c["io_name"]["random-init model"].max() <= 0.135                        # "0.13 at most"
    assert c["io_name"]["control task (random labels)"][2:].min() == pytest.approx(0.063, abs=0.005)
    assert c["io_name"]["control task (random labels)"][2:].max() == pytest.approx(0.09, abs=0.005)
    np.testing.assert_allclose(sel["io_name"][2:], [0.79, 0.857, 0.873], atol=0.005)
    np.testing.assert_allclose(c["io_name"]["MLP probe"][2:].min(), 0.62, atol=0.005)
    np.testing.assert_allclose(c["io_name"]["MLP probe"][2:].max(), 0.717, atol=0.005)
    assert (c["io_name"]["MLP probe"][2:] < c["io_name"]["linear probe"][2:]).all()
    # truth: the control task beats the task up to block 1; the task wins after blocks 2 and 3
    assert (sel["truth"][:3] < 0).all() and (sel["truth"][3:] > 0).all()
    assert sel["truth"][:3].max() == pytest.approx(-0.09, abs=0.005)
    # "negative there" after blocks 0 and 1, by more than 0.1 (not quoted to the digit: the probe there moves
    # by a few examples from one CPU to another)
    assert (sel["truth"][1:3] < -0.1).all()
    np.testing.assert_allclose(sel["truth"][3:], [0.12, 0.22], atol=0.005)
    np.testing.assert_allclose(c["truth"]["control task (random labels)"][3:], [0.803, 0.723], atol=0.005)
    # "below 0.6" (the CPU's arithmetic shifts it a little from machine to machine: 0.56 to 0.58 seen)
    assert c["truth"]["random-init model"].max() < 0.6
    assert base["truth"] == pytest.approx(0.513, abs=0.005)
    assert c["truth"]["MLP probe"][4] == pytest.approx(0.94, abs=0.005)


def test_claim_present_against_used(lesson: dict) -> None:
    assert lesson["LAYER"] == 1
    assert lesson["present"] == {"sentiment": 1.0, "relation": 1.0}
    e = lesson["effects"]                   # attribute -> lesson4.Removal(probe=..., random=...)
    sentiment, relation = e["sentiment"].probe, e["relation"].probe
    assert sentiment.answers_changed == pytest.approx(0.51, abs=0.01)
    assert sentiment.accuracy_after == pytest.approx(0.49, abs=0.01)
    assert sentiment.mean_abs_before == pytest.approx(12.95, abs=0.05)          # "13 logits"
    assert sentiment.mean_abs_change == pytest.approx(12.7, abs=0.05)
    assert e["sentiment"].random.answers_changed == 0.0
    assert e["sentiment"].random.mean_abs_change == pytest.approx(0.07, abs=0.01)
    # "changes none of the confident answers (0.000)": margins above 1 logit are far from rounding noise
    assert relation.confident_changed == 0.0 and e["relation"].random.confident_changed == 0.0
    assert sentiment.confident_changed == pytest.approx(0.51, abs=0.01)                  # printed beside 0.510
    assert e["sentiment"].random.confident_changed == 0.0
    # "The few answers it flips, 0.01 to 0.02 of all, were close calls" (10 noise seeds:
    # 4 to 6 of the 300; the count depends on the CPU, which is why the prose leans on the confident share)
    assert 0.005 <= relation.answers_changed <= 0.025
    flipped = lesson["margin"](lesson["setups"]["relation"][0]["test"], fwd_hooks=[
        (lesson["HOOK"], lesson["remove"](lesson["directions"]["relation"]))])
    before = lesson["margin"](lesson["setups"]["relation"][0]["test"])
    changed = (flipped > 0) != (before > 0)
    assert changed.any() and before[changed].abs().max() < 1
    # the lesson prints the largest margin among the flipped answers: "close calls", "a fraction of a logit"
    # (0.29 measured; which answers flip depends on the CPU, so the prose quotes no figure for it)
    assert lesson["flipped_margin"]["relation"] < 1 and lesson["flipped_margin"]["sentiment"] > 1
    assert e["relation"].random.answers_changed == pytest.approx(0.0, abs=0.005)     # "none"
    assert relation.accuracy_before == pytest.approx(0.95, abs=0.005)
    assert relation.accuracy_after == pytest.approx(0.95, abs=0.01)                # "stays at about 95%"
    assert relation.mean_abs_change == pytest.approx(0.11, abs=0.006)
    assert e["relation"].random.mean_abs_change == pytest.approx(0.08, abs=0.006)
    assert relation.mean_abs_before == pytest.approx(9.1, abs=0.05)
    # the pitfall, in one line: equally readable, very differently used
    assert sentiment.answers_changed > 10 * relation.answers_changed


def test_claim_amnesic_removal_of_the_relation(lesson: dict) -> None:
    a, fresh = lesson["amnesic"], lesson["fresh_probe"]     # k directions removed -> effect, a fresh probe's accuracy
    assert fresh[1] == pytest.approx(0.93, abs=0.005)                                # "0.93"
    majority = lesson["setups"]["relation"][2].mean()
    assert majority == pytest.approx(0.683, abs=0.005)
    # eight removals do not erase the relation: a fresh probe still reads it at "72% to 76%", above the
    # majority share (over 10 noise seeds the fragility run saw 72.3% to 76.0%: each direction is fitted
    # on what the ones before it left, so the last bits of the arithmetic add up)
    assert 0.715 <= fresh[8] <= 0.765 and fresh[8] > majority + 0.03
    # "a linear probe's lead over the majority share down from 32 points to 4 to 8"
    assert lesson["present"]["relation"] - majority == pytest.approx(0.32, abs=0.005)
    assert 0.035 <= fresh[8] - majority <= 0.085
    # "only 0.01 to 0.03 of the statements. Eight random directions change 0.01 of them" (seen: 0.010 to 0.027)
    assert 0.005 <= a[8].answers_changed <= 0.034
    # "the confident answers still barely change (at most 0.01 of them)", "above 0.72"
    assert a[8].confident_changed <= 0.01 and a[1].confident_changed == 0.0
    assert lesson["random_removal"].confident_changed == 0.0
    assert lesson["random_removal"].answers_changed == pytest.approx(0.01, abs=0.004)
    # "the margins move by more than 1 logit on average (eight random directions: 0.28)" (1.24 measured)
    assert 1.05 <= a[8].mean_abs_change <= 1.6
    assert lesson["random_removal"].mean_abs_change == pytest.approx(0.28, abs=0.006)


def test_claim_steering(lesson: dict) -> None:
    s = lesson["steered"]                   # attribute -> lesson4.SteeringCurve(word, shares)
    assert (s["sentiment"].word, s["relation"].word) == (" positive", " true")
    sentiment = dict(zip(lesson["multiples"], s["sentiment"].shares))
    relation = s["relation"].shares
    assert sentiment[1] == 1.0 and sentiment[1.5] == 1.0 and sentiment[-1] == 0.0 and sentiment[0] == 0.5
    assert relation.min() == pytest.approx(0.46, abs=0.005) and relation.max() == pytest.approx(0.47, abs=0.005)
    assert lesson["data"]["truth"]["test"].labels[:100].mean() == 0.5          # half of these 100 statements are true
    assert relation[lesson["multiples"].index(0)] == pytest.approx(0.46, abs=0.005)   # "its unsteered 0.46"


def test_claim_patching_agrees_for_sentiment(lesson: dict) -> None:
    patched = lesson["patched"]["sentiment: the flipped review"]
    assert abs(patched[0]) < 0.0005                                                    # "(0.000)"
    np.testing.assert_allclose(patched[1:], [1.013, 1.018, 1.012, 1.0], atol=0.0015)  # "1.013 ... 1.000"


def test_claim_patching_disagrees_with_the_probe_for_the_relation(lesson: dict) -> None:
    """The relation probe reads 1.000 after blocks 0 and 1; patching in a vector of the other relation there moves
    nothing; after blocks 2 and 3, where the donor's vector carries its verdict, it moves 0.427 and 1.000."""
    patched = lesson["patched"]["relation: other relation and truth value"]
    assert len(lesson["pairs"].clean) == 174                                          # "174 statements"
    assert abs(patched[0]) < 0.0005
    np.testing.assert_allclose(patched[1:], [0.004, 0.002, 0.427, 1.0], atol=0.0015)  # "0.004 and 0.002", ...
    relation_probe = lesson["probes"]["relation probe"]
    assert (relation_probe[1:] == 1.0).all()                                          # "reads 1.000"
    assert relation_probe[0] == pytest.approx(lesson["probe_chance"]["relation probe"], abs=0.005)   # at chance
    np.testing.assert_allclose(lesson["probes"]["truth probe"][3:], [0.923, 0.943], atol=0.005)
    # the pitfall, in one line: the relation is read perfectly where patching shows the answer does not use it
    assert relation_probe[1:3].min() - max(abs(patched[1]), abs(patched[2])) > 0.99


def test_claim_truth_probe_carries_over_to_held_out_facts_only_where_the_verdict_is_readable(lesson: dict) -> None:
    same, held = lesson["truth_auroc"]["same facts, new wording"], lesson["truth_auroc"]["held-out facts"]
    # before block 2: useful-looking on the facts it was trained on, chance or worse on held-out facts
    np.testing.assert_allclose([same[1], same[2]], [0.774, 0.679], atol=0.006)
    assert min(held[:3]) == pytest.approx(0.40, abs=0.005) and max(held[:3]) == pytest.approx(0.50, abs=0.006)
    assert max(held[:3]) < 0.51 and held[1] == min(held[:3])
    # after blocks 2 and 3 it carries over
    np.testing.assert_allclose(held[3:], [0.994, 0.996], atol=0.005)
    np.testing.assert_allclose(same[3:], [0.98, 0.98], atol=0.006)
    # the model's own answer does as well
    assert lesson["self_auroc"]["held-out facts"] == pytest.approx(0.998, abs=0.005)
    assert lesson["self_auroc"]["held-out facts"] == pytest.approx(held[4], abs=0.005)
    assert lesson["self_accuracy"] == pytest.approx(0.950, abs=0.005)
    # its 16 mistakes all go one way (true called false), the worst by 10.5 logits ...
    held_out, wrong = lesson["held_out"], lesson["self_wrong"]
    assert wrong.sum() == 16 and (held_out.labels[wrong] == 1).all()
    worst = lesson["worst"]
    assert wrong[worst] and abs(lesson["self_report"][worst]) == pytest.approx(10.5, abs=0.05)
    assert held_out.prompts[worst].startswith("Buckingham Palace is a famous landmark in London.")
    # ... and the probe after block 3 makes 18 mistakes, 16 of them the model's own
    probe_wrong = lesson["probe_wrong"]
    assert probe_wrong.sum() == pytest.approx(18, abs=1)
    assert (probe_wrong & wrong).sum() == pytest.approx(16, abs=1)
