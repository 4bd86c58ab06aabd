"""Lesson 3c: the plumbing of path patching and of the logit-difference graph, and the claims of the lesson's text.

Part 1 unit-tests :mod:`helpers.lesson3.paths`, :mod:`helpers.lesson3.choice_graph` and
:mod:`helpers.lesson3.swap_generation` (fast). Part 2 runs every code cell of
``notebooks/03c_paths_and_interventions.ipynb`` and asserts each figure its prose quotes, on the notebook's own
variables. The workbook's checks are tested in ``tests/test_lesson3_paths_workbook.py``.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from notebook_cells import run_lesson  # noqa: E402

from helpers import lesson3  # noqa: E402
from helpers.lesson3 import choice_graph, paths, swap_generation  # noqa: E402
from helpers.lesson3.paths import Receiver, Sender  # noqa: E402
from helpers.models import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAME = "03c_paths_and_interventions.ipynb"


# ============================================================================ part 1: the helpers
def test_receiver_hooks_exist_once_enabled() -> None:
    model = load_model("course-4l")
    paths.enable_path_hooks(model)
    try:
        names = set(model.hook_dict)
        for receiver in [Receiver("q", 1, 3), Receiver("k", 2, 0), Receiver("v", 3, 7), Receiver("mlp", 0),
                         Receiver("logits")]:
            assert paths.receiver_hook(model, receiver) in names, receiver
    finally:
        model.set_use_split_qkv_input(False)
        model.set_use_hook_mlp_in(False)


def test_downstream_lists_every_reader() -> None:
    model = load_model("course-4l")
    readers = paths.downstream(model, Sender("head", 0, 4))
    assert Receiver("mlp", 0) in readers and Receiver("logits") in readers
    assert len(readers) == 4 + 3 * 3 * 8 + 1
    assert Receiver("mlp", 0) not in paths.downstream(model, Sender("mlp", 0))
    assert paths.downstream(model, Sender("mlp", 3)) == [Receiver("logits")]


@torch.no_grad()
def test_patching_a_sender_into_every_reader_is_patching_its_whole_output() -> None:
    """The additive path patch, into all readers at once, equals patching hook_z (and hook_mlp_out) outright."""
    model = load_model("course-4l")
    data = lesson3.ioi_patching_data(model, n=6, seed=3)
    _, clean_cache = model.run_with_cache(data.clean_tokens)
    _, corrupted_cache = model.run_with_cache(data.corrupted_tokens)
    paths.enable_path_hooks(model)
    try:
        for sender, hook_name in [(Sender("head", 0, 4), "blocks.0.attn.hook_z"),
                                  (Sender("head", 1, 2), "blocks.1.attn.hook_z"),
                                  (Sender("mlp", 1), "blocks.1.hook_mlp_out")]:
            change = (paths.sender_output(corrupted_cache, model, sender)
                      - paths.sender_output(clean_cache, model, sender))
            hooks = []
            for receiver in paths.downstream(model, sender):
                def add(resid, hook, head=receiver.head, change=change):
                    if head is None:
                        resid += change
                    else:
                        resid[:, :, head] += change
                    return resid
                hooks.append((paths.receiver_hook(model, receiver), add))
            by_paths = model.run_with_hooks(data.clean_tokens, fwd_hooks=hooks)

            def whole(act, hook, head=sender.head):
                if head is None:
                    act[:] = corrupted_cache[hook.name]
                else:
                    act[:, :, head] = corrupted_cache[hook.name][:, :, head]
                return act
            outright = model.run_with_hooks(data.clean_tokens, fwd_hooks=[(hook_name, whole)])
            assert torch.allclose(by_paths[:, -1], outright[:, -1], atol=1e-3), sender
    finally:
        model.set_use_split_qkv_input(False)
        model.set_use_hook_mlp_in(False)


def test_place_side_sorts_cities_and_countries() -> None:
    assert swap_generation.place_side(" Rome", "Rome", "Berlin") == "source"
    assert swap_generation.place_side(" Italy.", "Rome", "Berlin") == "source"
    assert swap_generation.place_side(" Germany", "Rome", "Berlin") == "target"
    assert swap_generation.place_side(" Tokyo", "Rome", "Berlin") == "other place"
    assert swap_generation.place_side(" city", "Rome", "Berlin") is None


@pytest.mark.slow
def test_total_effects_are_the_graphs_single_ablation_predictions() -> None:
    from circuit_tracer import attribute
    from circuit_tracer.attribution.targets import CustomTarget

    from helpers.lesson3 import cases
    replacement = cases.replacement_model()
    tokens = replacement.to_tokens("When Anna and Tom went to the shop, Tom gave a book to")
    anna, tom = replacement.to_single_token(" Anna"), replacement.to_single_token(" Tom")
    vector = choice_graph.logit_diff_vector(replacement, anna, tom)
    with torch.enable_grad():
        graph = attribute(tokens[0], replacement, attribution_targets=[CustomTarget("Anna - Tom", 1.0, vector)],
                          max_feature_nodes=60, batch_size=256)
    effects = choice_graph.total_effects(graph)
    for node in range(0, 60, 7):
        assert effects[node].item() == pytest.approx(-lesson3.predicted_logit_change(graph, [node]), abs=1e-4)
    ranked = choice_graph.ranked_features(graph)
    assert ranked[0][1] >= ranked[-1][1] and len(ranked) == 60
    # the custom target's direct inputs are the logit difference's, less biases the graph has no node for
    direct = choice_graph.direct_inputs(graph)
    logits = replacement(tokens)
    assert direct.features + direct.errors + direct.tokens == pytest.approx(
        (logits[0, -1, anna] - logits[0, -1, tom]).item(), abs=2.0)


# ============================================================================ part 2: the lesson's claims
@pytest.fixture(scope="module")
def lesson() -> dict:
    """The namespace left by running every code cell of lesson 3c."""
    return run_lesson(ROOT / "notebooks" / NAME)


def test_claim_setup_is_lesson_3as(lesson) -> None:
    assert len(lesson["ioi"]) == 24
    assert round(lesson["clean_ld"], 2) == 9.25 and round(lesson["corrupted_ld"], 2) == 0.22


def test_claim_edges_of_the_diagram(lesson) -> None:
    edges, totals = lesson["edge_effects"], lesson["totals"]
    assert round(totals["0.4"], 2) == 0.71 and round(edges["0.4 → MLP 0"], 2) == 0.46
    assert [round(edges[f"0.4 → MLP {layer}"], 2) for layer in (1, 2, 3)] == [0.05, 0.07, 0.08]
    assert round(edges["0.4 → logits"], 2) == 0.06
    from_0_4 = [v for k, v in edges.items() if k.startswith("0.4 → MLP") or k == "0.4 → logits"]
    assert round(sum(from_0_4), 2) == round(totals["0.4"], 2) == 0.71          # "0.71 either way"
    later_heads = [v for k, v in edges.items() if "later heads" in k]
    assert max(abs(v) for v in later_heads) < 0.025                          # "at most 0.02"
    assert round(totals["0.3"], 2) == 0.15 and round(edges["0.3 → MLP 0"], 2) == 0.07
    assert round(edges["MLP 0 → logits"], 2) == 0.08 and round(edges["MLP 0 → later MLPs"], 2) == 0.70
    assert round(edges["MLP 3 → logits"], 2) == 0.51


def test_claim_path_patch_into_every_reader_is_the_whole_patch(lesson) -> None:
    """The notebook's own path_patch, into every reader of 0.4, equals 0.4's noising at hook_z."""
    model, ioi = lesson["model"], lesson["ioi"]
    corrupted_cache = lesson["corrupted_cache"]

    def corrupt_0_4(z, hook):
        z[:, :, 4] = corrupted_cache[hook.name][:, :, 4]
        return z
    outright = 1 - lesson["ioi_metric"](model.run_with_hooks(ioi.clean_tokens,
                                                             fwd_hooks=[("blocks.0.attn.hook_z", corrupt_0_4)])).item()
    assert lesson["totals"]["0.4"] == pytest.approx(outright, abs=1e-4)


def test_claim_what_0_4_reads_and_from_where(lesson) -> None:
    reads, ioi = lesson["reads"], lesson["ioi"]
    end, s2 = ioi.clean_tokens.shape[1] - 1, ioi.positions["s2"][0].item()
    assert (ioi.positions["s2"] == s2).all()
    out, values = reads["output"], reads["values"]
    assert out.argmax().item() == end and round(out[end].item(), 2) == 0.41
    assert values.argmax().item() == s2 and round(values[s2].item(), 2) == 0.41
    others = torch.cat([out[:end], values[:s2], values[s2 + 1:]])
    assert round(others.abs().max().item(), 2) <= 0.01                       # "0.01 at most"
    assert reads["queries"].abs().max() < 0.005 and reads["keys"].abs().max() < 0.005     # "0.00 everywhere"


def test_claim_the_choice_graph(lesson) -> None:
    direct = lesson["direct"]
    assert round(lesson["choice_ld"], 2) == 10.62
    assert round(direct.features, 2) == 1.08 and round(direct.errors, 2) == 10.65
    assert [round(x, 2) for x in direct.errors_by_block_at_end[2:]] == [2.86, 7.05]
    choice, text = lesson["choice"], lesson["choice_text"]
    for_mary = lesson["for_mary"]
    assert sum(f.layer == 0 and f.pos == choice.n_pos - 1 for f in for_mary) == 6
    assert sum(text[f.pos] == " and" for f in for_mary) == 2
    assert {text[f.pos] for f, _ in lesson["ranked"][-4:]} <= {".", " went"}
    labels = lesson["labels"]
    names = [labels(f.layer, f.feature) for f in for_mary]
    assert not any("Mary" in name or "John" in name for name in names)
    assert sum(name == "IO name: (any)" for name in names) == 6               # "Six of the ten ... IO name: (any)"
    others = [name for name in names if name != "IO name: (any)"]
    assert sorted(others) == ["IO name: Jane", "IO name: Rachel", "IO name: Rachel", "city: Granada"]
    checks = {name: (round(p, 2), round(m, 2)) for name, (p, m) in lesson["off_checks"].items()}
    assert checks == {"10 for Mary": (-1.41, -3.88), "10 for John": (0.91, 0.64)}
    assert lesson["off_top"] == {"10 for Mary": " Mary", "10 for John": " Mary"}     # "Mary stays the answer"
    assert len(choice.active_features) == 3151 and len(choice.selected_features) == 200
    assert round(lesson3.error_share(choice), 2) == 0.55                  # "55%"


def test_claim_swaps_on_generation(lesson) -> None:
    carry, swapped, pushed = lesson["carry"], lesson["swapped"], lesson["pushed"]
    assert len(swapped) == len(pushed) == 12
    assert carry == {
        "no swap": {"answer is the target": 0, "source named later": 8, "target named later": 0,
                    "every word the target": 0},
        "swap at the end": {"answer is the target": 12, "source named later": 6, "target named later": 1,
                            "every word the target": 0},
        "swap at every step": {"answer is the target": 12, "source named later": 0, "target named later": 12,
                               "every word the target": 12}}
    assert {c.reverts_at for c in swapped} == {None, 5}                     # "each time five words after the answer"
    assert [c.target for c in swapped if c.later("target")] == ["Athens"]
    quoted = {c.landmark: "".join(c.words).strip() for c in swapped}         # the two continuations the text quotes
    assert [c.landmark for c in swapped[:4]] == ["the Eiffel Tower", "the Pantheon", "Tower Bridge", "Red Square"]
    assert quoted["the Pantheon"] == "Moscow. This city of Rome is"          # among the four the cell prints
    assert quoted["Tower Bridge"] == "Athens. This statement is Greece."


def test_claim_noising_and_denoising(lesson) -> None:
    den = {k: round(v, 2) for k, v in lesson["denoised"].items()}
    noi = {k: round(v, 2) for k, v in lesson["noised"].items()}
    assert (den["0.4"], noi["0.4"]) == (0.45, 0.71)
    assert (den["0.3"], noi["0.3"]) == (0.12, 0.15)
    assert (den["0.4 + 0.3"], noi["0.4 + 0.3"]) == (0.63, 0.89)
    assert (den["rest of block 0"], noi["rest of block 0"]) == (0.11, 0.37)
    assert (den["block 1"], noi["block 1"]) == (-0.05, 0.22)
    assert abs(den["blocks 2-3"]) <= 0.01 and noi["blocks 2-3"] == -0.06
    alone = lesson["block_1_alone"]
    assert all(x < 0.01 for x in alone) and round(sum(alone), 2) == -0.47
