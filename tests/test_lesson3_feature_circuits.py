"""Lesson 3, part two: transcoders, circuit-tracer's graphs, the checks of exercises 7 to 10, and the issue's targets.

- The committed transcoders load into circuit-tracer offline, and the replacement model with its
  error terms computes exactly what the model computes.
- The exercise references reproduce circuit-tracer's own adjacency entries and influence.
- Every check passes the reference and the solved workbook, and rejects the generated stub and
  the plausible wrong answers of ``WRONG_ANSWERS`` with their own message.
- On the committed files: the Eiffel Tower graph is built in at most 30 s; on at least 80% of the
  landmarks the pruned graph holds a feature labelled with the landmark's city or the landmark; the
  swap moves the answer to the injected city on at least 80% of landmarks (44 of 46).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import measure_feature_circuits
import pytest
import torch
from circuit_tracer import attribute
from circuit_tracer.graph import compute_node_influence
from notebook_cells import assert_rejected, run_lesson, workbook_check_tests, wrong_answer_ids

from helpers import corpus_data, lesson3
from helpers.lesson3 import cases
from helpers.models import load_model
from helpers.transcoders import TRANSCODER_DIR, load_replacement_model, load_transcoders, training_record
from tooling import network_guard

ROOT = Path(__file__).resolve().parent.parent
NAME = "03b_feature_circuits.ipynb"
EXERCISES = ["feature_logit_attribution", "feature_edge", "node_influence", "swap_interventions"]


@pytest.fixture(scope="module")
def replacement():
    return cases.replacement_model()


@pytest.fixture(scope="module")
def labels():
    return cases.feature_labels()


# ============================================================================ the files and the loader
def test_transcoders_are_in_circuit_tracers_format() -> None:
    config = json.loads((TRANSCODER_DIR / "course-4l" / "config.json").read_text())
    assert config["feature_input_hook"] == "hook_resid_mid" and config["feature_output_hook"] == "hook_mlp_out"
    transcoders = load_transcoders()
    assert len(transcoders) == 4 and transcoders.d_transcoder == config["d_transcoder"]
    assert transcoders[0].W_enc.shape == (config["d_transcoder"], 256)


def test_training_record_reports_each_layer() -> None:
    record = training_record()
    assert record["model_sha256"] == json.loads((ROOT / "models/course-4l/config.json").read_text())["sha256"]
    assert len(record["layers"]) == 4
    for row in record["layers"]:
        assert 0.7 < row["variance_explained"] < 1.0, row
        assert 5 < row["l0"] < 200, row
        assert row["dead_features"] < 0.5 * record["d_transcoder"], row
    assert record["loss_clean"] < record["loss_all_mlps_replaced"] < record["loss_all_mlps_zeroed"]


def test_replacement_model_with_errors_is_the_model(replacement) -> None:
    tokens = replacement.to_tokens("The Eiffel Tower is in the city of")
    assert torch.allclose(replacement(tokens), load_model("course-4l")(tokens), atol=1e-4)


def test_loader_never_touches_the_network(tmp_path) -> None:
    """Enforced at the socket: any connection outside loopback, or host name lookup, is logged and refused."""
    with network_guard.blocking(tmp_path / "blocked.jsonl") as log:
        load_replacement_model()
    assert network_guard.read_log(log) == []


@pytest.mark.slow
def test_the_network_guard_sees_a_hub_call(tmp_path) -> None:
    """The test above can fail: a real hub download under the same guard is caught."""
    import huggingface_hub

    with network_guard.blocking(tmp_path / "blocked.jsonl") as log, pytest.raises(Exception):  # noqa: B017 - whatever the hub client raises once refused
        huggingface_hub.hf_hub_download("course-network-guard/probe", "config.json",
                                        cache_dir=tmp_path / "hub")
    assert any("huggingface.co" in attempt["target"] for attempt in network_guard.read_log(log))


# ============================================================================ references = circuit-tracer
@pytest.mark.slow
def test_exercise_references_match_circuit_tracers_adjacency() -> None:
    # exercise 1: the five most active last-layer features at the last position of two graphs
    for prompt in cases.CHECK_PROMPTS[:2]:
        graph, cache = cases.check_graph(prompt)
        kinds = lesson3.node_kinds(graph)
        values = graph.activation_values[graph.selected_features]
        last = sorted([f for f in lesson3.graph_features(graph) if f[1] == 3 and f[2] == graph.n_pos - 1],
                      key=lambda f: -values[f[0]])[:5]
        assert last, "no last-layer feature at the last position"
        replacement = cases.replacement_model()
        for node, layer, _, feature in last:
            mine = lesson3.feature_logit_attribution(
                values[node].item(), replacement.transcoders[layer].W_dec[feature],
                cache["ln_final.hook_scale"][0, -1].item(), replacement.unembed.W_U, graph.logit_targets[0].vocab_idx)
            assert mine == pytest.approx(graph.adjacency_matrix[kinds.logits.start, node].item(), rel=1e-3, abs=1e-5)
    # exercise 2: every adjacent-layer pair of one graph
    graph, cache = cases.check_graph(cases.CHECK_PROMPTS[2])
    values = graph.activation_values[graph.selected_features]
    features = lesson3.graph_features(graph)
    pairs = [(s, t) for s in features for t in features if t[1] == s[1] + 1 and t[2] >= s[2]][::97][:40]
    assert len(pairs) >= 20
    for (sn, sl, sp, sf), (tn, tl, tp, tf) in pairs:
        block = replacement.blocks[tl]
        mine = lesson3.feature_edge(values[sn] * replacement.transcoders[sl].W_dec[sf], sp,
                                    replacement.transcoders[tl].W_enc[tf], tp, cache["pattern", tl][0],
                                    cache[f"blocks.{tl}.ln1.hook_scale"][0], block.attn.W_V, block.attn.W_O)
        assert mine == pytest.approx(graph.adjacency_matrix[tn, sn].item(), rel=1e-3, abs=1e-5)


def test_node_influence_is_circuit_tracers() -> None:
    for case in cases.influence_cases():
        assert torch.allclose(lesson3.node_influence(*case.args), compute_node_influence(*case.args), atol=1e-6)


# ============================================================================ the attribution graph's figure
def _overlapping(texts, renderer) -> list[tuple[str, str]]:
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text()]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:] if box_a.overlaps(box_b)]


@pytest.mark.parametrize("prompt", [cases.CHECK_PROMPTS[0], cases.CHECK_PROMPTS[2]], ids=["colosseum", "ioi"])
def test_attribution_graph_figure_is_readable(prompt, labels) -> None:
    """Every node over its own token, logits in their own row over the last token, every kept feature
    numbered or counted in a "+n", no two labels overlapping, the key inside a figure of notebook width."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from circuit_tracer.graph import prune_graph

    from helpers.lesson3 import plots

    graph, _ = cases.check_graph(prompt)
    pruned = prune_graph(graph, node_threshold=0.8, edge_threshold=0.98)
    kinds, n_layers, n_pos = lesson3.node_kinds(graph), graph.cfg.n_layers, graph.n_pos
    layout = plots.attribution_graph_layout(graph, pruned.node_mask, plots.columns_per_cell(n_pos))
    kept = lesson3.graph_features(graph, pruned.node_mask)
    for node, layer, pos, _ in kept:
        if node in layout.coords:
            x, y = layout.coords[node]
            assert abs(x - pos) < 0.5 and abs(y - (layer + 1)) < 0.5, (node, layer, pos, x, y)
    for node, kind in layout.kinds.items():
        x, y = layout.coords[node]
        if kind == "error":
            layer, pos = divmod(node - kinds.errors.start, n_pos)
            assert abs(x - pos) < 0.5 and abs(y - (layer + 1)) < 0.5
        elif kind == "logit":
            assert x == n_pos - 1 and abs(y - (n_layers + 1)) < 0.5
        elif kind == "token":
            assert (x, y) == (node - kinds.tokens.start, 0)
    assert sorted(layout.numbers.values()) == list(range(1, len(layout.numbers) + 1))
    assert len(layout.numbers) + sum(n for *_, n in layout.hidden.values()) == len(kept)

    ax = lesson3.plot_attribution_graph(graph, pruned.node_mask, pruned.edge_mask,
                                        cases.replacement_model().tokenizer, labels)
    fig = ax.figure
    try:
        assert 10 <= fig.get_size_inches()[0] <= 12
        renderer = fig.canvas.get_renderer()
        key = [a for a in fig.axes if a is not ax][0]
        assert _overlapping(ax.texts, renderer) == []
        assert _overlapping(key.texts, renderer) == []
        assert all(fig.bbox.contains(*t.get_window_extent(renderer).p1) for t in key.texts)
        assert min(t.get_fontsize() for t in key.texts) >= 9
        numbered = {t.get_text() for t in ax.texts}
        assert {str(n) for n in layout.numbers.values()} <= numbered
        assert min(t.get_fontsize() for t in ax.texts) >= 8          # node numbers and "+n" at 8 pt or more
        assert ("+n" in " ".join(t.get_text() for t in key.texts)) == bool(layout.hidden)   # "+n" keyed only if used
        # the numbers follow (position, block, feature index): the order of lesson 3b's table
        order = sorted(layout.numbers, key=layout.numbers.__getitem__)
        by_node = {node: (pos, layer, feature) for node, layer, pos, feature in kept}
        assert [by_node[n] for n in order] == sorted(by_node[n] for n in order)
    finally:
        plt.close(fig)


# ============================================================================ the checks
test_reference_and_solved_workbook_pass, test_generated_stub_is_rejected = workbook_check_tests(
    NAME, lesson3, EXERCISES)


def _logit(center=True, scale=True, demean=True, activation=True):
    def learner(a, v, s, W_U, token):
        x = (a if activation else 1.0) * v
        x = x - x.mean() if center else x
        x = x / s if scale else x
        return float(x @ (W_U[:, token] - W_U.mean(1) if demean else W_U[:, token]))
    return learner


def _edge(residual=True, heads=True, transpose=False, scale=True, center=True, always_residual=False):
    def learner(v, sp, e, tp, pattern, ln1_scale, W_V, W_O):
        total = float(v @ e) if residual and (sp == tp or always_residual) else 0.0
        x = v - v.mean() if center else v
        x = x / ln1_scale[sp] if scale else x
        w = pattern[:, sp, tp] if transpose else pattern[:, tp, sp]
        if heads:
            for h in range(W_V.shape[0]):
                total += float(w[h] * (x @ W_V[h] @ W_O[h] @ e))
        return total
    return learner


def _influence(absolute=True, normalize=True, depth=None, include=False):
    def learner(adjacency, logit_weights):
        a = adjacency.abs() if absolute else adjacency.clone()
        if normalize:
            a = a / a.abs().sum(1, keepdim=True).clamp(min=1e-10)
        total = logit_weights.clone() if include else torch.zeros_like(logit_weights)
        current = logit_weights @ a
        for _ in range(depth or 50):
            total = total + current
            current = current @ a
        return total
    return learner


def _influence_no_abs(adjacency, logit_weights):
    """Exercise 9 without any .abs(): rows whose signed sum is near 0 (or clamped from below 0) blow up."""
    a = adjacency / adjacency.sum(1, keepdim=True).clamp(min=1e-10)
    total, current = torch.zeros_like(logit_weights), logit_weights @ a
    while current.any():
        total, current = total + current, current @ a
    return total


def _swap(off=True, on=True, strength=20.0, position=-1, hard_coded=False):
    def learner(labels, activations, source_city, target_city):
        if hard_coded:
            source_city, target_city = "Paris", "Rome"
        pos = activations.shape[1] - 1 if position == -1 else position
        out = []
        if off:
            out += [(layer, pos, f, 0.0) for layer, f in lesson3.city_features(labels, source_city)]
        if on:
            out += [(layer, pos, f, strength * labels.score[layer, f].item())
                    for layer, f in lesson3.city_features(labels, target_city)]
        return out
    return learner


WRONG_ANSWERS = [
    ("feature_logit_attribution", _logit(center=False), ["centre it first"]),
    ("feature_logit_attribution", _logit(scale=False), ["final_scale"]),
    ("feature_logit_attribution", _logit(demean=False), ["demeaned logit"]),
    ("feature_logit_attribution", _logit(activation=False), ["multiply the decoder row by the feature's activation"]),
    ("feature_logit_attribution", lambda a, v, s, W_U, token: float(a * v @ W_U[:, token]), ["Hint"]),  # every step
    ("feature_edge", _edge(heads=False), ["only the residual path"]),
    ("feature_edge", _edge(residual=False), ["straight along the residual stream"]),
    ("feature_edge", _edge(transpose=True), ["pattern[:, target_pos, source_pos]"]),
    ("feature_edge", _edge(scale=False), ["ln1_scale"]),
    ("feature_edge", _edge(center=False), ["centres"]),
    ("feature_edge", _edge(always_residual=True), ["feature_edge"]),
    ("node_influence", _influence(absolute=False), ["absolute"]),
    ("node_influence", _influence(normalize=False), ["normalise each row"]),
    ("node_influence", _influence(depth=1), ["every length"]),
    ("node_influence", _influence(include=True), ["start the sum"]),
    ("node_influence", lambda adjacency, w: w @ adjacency.abs(), ["node_influence"]),
    ("node_influence", _influence_no_abs, ["take adjacency.abs() before you normalise"]),
    ("swap_interventions", _swap(on=False), ["only 0/12", "only switched the source city's features off"]),
    ("swap_interventions", _swap(strength=1.0), ["the push is too weak (1 times"]),      # the features' usual size
    ("swap_interventions", _swap(strength=5.0), ["the push is too weak (5 times"]),      # section 9's 36/46
    ("swap_interventions", _swap(off=False, on=False), ["you returned no interventions"]),
    ("swap_interventions", _swap(position=1), ["away from the last position"]),
    ("swap_interventions", _swap(hard_coded=True), ["not labelled with the target city"]),   # always Paris -> Rome
    ("swap_interventions", lambda labels, acts, s, t: _swap()(labels, acts, t, s),           # source and target swapped
     ["you pushed the source city's features up"]),
    ("swap_interventions", _swap(off=False), ["switch the source city's features off as well"]),  # the push alone
]
CHECKS = {name: getattr(lesson3, f"check_{name}") for name in EXERCISES}


@pytest.mark.parametrize(("name", "learner", "parts"), WRONG_ANSWERS, ids=wrong_answer_ids(WRONG_ANSWERS))
def test_wrong_answer_is_rejected_with_its_message(name, learner, parts, capsys) -> None:
    assert_rejected(CHECKS[name](learner), name, parts, capsys.readouterr().out)


# ============================================================================ the issue's targets
def test_eiffel_graph_is_built_within_30_seconds(replacement) -> None:
    tokens = replacement.to_tokens("The Eiffel Tower is in the city of")[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)                     # the issue's budget: 2 CPU cores
    try:
        started = time.perf_counter()
        with torch.enable_grad():
            graph = attribute(tokens, replacement, max_n_logits=5, batch_size=256)
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    assert seconds <= 30, f"attribution took {seconds:.1f} s"
    assert graph.logit_targets[0].token_str == " Paris"


@pytest.mark.claim
def test_landmark_graphs_hold_their_city_or_landmark(replacement, labels) -> None:
    rows = [measure_feature_circuits.landmark_graph(replacement, labels, lm, city)
            for lm, city, _ in corpus_data.LANDMARKS]
    labelled = sum(r["labelled"] for r in rows) / len(rows)
    assert labelled >= 0.8, [r["landmark"] for r in rows if not r["labelled"]]
    assert labelled == 1.0                      # what lesson 3 section 8 says: "on all 46 landmarks"


def swap_hits(replacement, labels, strength: float = 20.0) -> tuple[int, list]:
    """How many of the 46 landmark swaps end on the injected city, and every (landmark, city, target, answer)."""
    def swap(labels, acts, source, target):
        return lesson3.swap_interventions(labels, acts, source, target, strength=strength)
    swaps = lesson3.swap_success(swap, replacement, labels, lesson3.swap_targets())
    return sum(answer == target for _, _, target, answer in swaps), swaps


@pytest.mark.claim
def test_swap_target_of_the_issue(replacement, labels) -> None:
    hits, swaps = swap_hits(replacement, labels)
    assert hits / len(swaps) >= 0.8, [s for s in swaps if s[2] != s[3]]
    assert (hits, len(swaps)) == (44, 46)       # lesson 3 section 9
    assert sorted((lm, answer) for lm, _, target, answer in swaps if answer != target) == [
        ("the Sydney Opera House", "Bangkok"), ("the Taj Mahal", "Agra")]


def test_swap_targets_are_one_token_cities() -> None:
    """The swap is read from the single top token, so every injected city is one token."""
    tokenizer = load_model("course-4l").tokenizer
    targets = lesson3.swap_targets()
    assert len(targets) == 46 and all(city != target for _, city, target in targets)
    assert all(len(tokenizer(" " + target)["input_ids"]) == 1 for _, _, target in targets)


@pytest.mark.claim
def test_swap_needs_a_large_push(replacement, labels) -> None:
    """Lesson 3 section 9: 21, 36, 43 and 46 of 46 at 2, 5, 10 and 40 times a feature's usual activation."""
    assert [swap_hits(replacement, labels, strength)[0] for strength in (2.0, 5.0, 10.0, 40.0)] == [21, 36, 43, 46]


@pytest.mark.claim
def test_features_per_target_city(labels) -> None:
    """Lesson 3 section 9: the two misses are not explained by how many features a target city has."""
    import statistics
    counts = {city: len(lesson3.city_features(labels, city)) for city in {c for _, c, _ in corpus_data.LANDMARKS}}
    assert (counts["Tokyo"], counts["Mumbai"], statistics.median(counts.values())) == (31, 19, 19)


# ============================================================================ the lesson's claims
@pytest.fixture(scope="module")
def lesson() -> dict:
    """The namespace left by running every code cell of lesson 3b."""
    return run_lesson(ROOT / "notebooks" / NAME)


def test_claim_part_two_replacement_model_and_transcoders(lesson) -> None:
    record = lesson["record"]
    assert [round(r["variance_explained"], 2) for r in record["layers"]] == [0.85, 0.84, 0.92, 0.97]
    assert [round(r["l0"]) for r in record["layers"]] == [33, 20, 37, 190]
    assert record["layers"][3]["dead_features"] == 23
    assert (round(record["loss_clean"], 2), round(record["loss_all_mlps_replaced"], 2),
            round(record["loss_all_mlps_zeroed"], 2)) == (1.9, 3.09, 7.31)
    assert (lesson["replacement"](lesson["eiffel"]) - lesson["model"](lesson["eiffel"])).abs().max() < 1e-4


def test_claim_part_two_eiffel_graph(lesson) -> None:
    kept, labels, graph = lesson["kept"], lesson["labels"], lesson["graph"]
    paris_row = lesson["paris_row"]                                       # "0/646 the largest, 1.15"
    direct = {(layer, feature): paris_row[node].item() for node, layer, _, feature in kept}
    assert max(direct, key=direct.get) == (0, 646) and round(direct[(0, 646)], 2) == 1.15
    assert len(kept) == 13 and {pos for _, _, pos, _ in kept} == {graph.n_pos - 1}
    names = [labels(layer, feature) for _, layer, _, feature in kept]
    paris = [layer for (_, layer, _, feature), name in zip(kept, names) if name == "city: Paris"]
    assert sorted(paris) == [0, 0, 1, 1, 2]
    assert names.count("landmark: the Eiffel Tower") == 1 and names.count("city: (any)") == 4
    assert [name for (_, layer, _, _), name in zip(kept, names) if layer == 3] == ["city: (any)"]
    assert labels(0, 646) == "city: Paris" and round(labels.purity[0, 646].item(), 2) == 0.82
    assert labels(1, 10) == "city: Paris" and round(labels.purity[1, 10].item(), 2) == 0.9
    weak = sorted((name, round(labels.purity[layer, feature].item(), 2))
                  for (_, layer, _, feature), name in zip(kept, names)
                  if "(any)" not in name and "Paris" not in name and "Eiffel" not in name)
    assert weak == [("IO name: Jack", 0.35), ("city: Lisbon", 0.19), ("city: San Francisco", 0.17)]
    assert graph.logit_targets[0].token_str == " Paris"


def test_claim_part_two_interventions(lesson) -> None:
    assert len(lesson["main_path"]) == 6
    assert round(lesson["predicted"], 2) == -5.9 and round(lesson["measured"], 2) == -3.11
    assert round(lesson["demeaned_logit"](lesson["clean_logits"], lesson["paris"]), 2) == 16.08   # "16.08 before"
    assert lesson["model"].to_string(lesson["ablated_logits"][0, -1].argmax()) == " Paris"
    probs = lesson["swapped_logits"][0, -1].softmax(-1)
    assert lesson["model"].to_string(probs.argmax()) == " Rome" and round(probs.max().item(), 2) == 1.0
    assert lesson["hits"] == 44 and len(lesson["swaps"]) == 46
    per_city = lesson["features_per_city"]
    assert (per_city["Tokyo"], per_city["Mumbai"], lesson["median"](per_city.values())) == (31, 19, 19)
    assert lesson["hits_at"] == {2.0: 21, 5.0: 36, 10.0: 43, 20.0: 44, 40.0: 46}   # "fewer than half at twice"


def test_claim_part_two_error_nodes_and_ioi(lesson) -> None:
    assert round(lesson3.error_share(lesson["graph"]), 2) == 0.31
    assert round(lesson["replacement_score"], 2) == 0.64 and lesson["biggest"] == (3, lesson["graph"].n_pos - 1)
    assert round(lesson["biggest_share"], 2) == 0.52                     # "half of it (52%)"
    ioi_graph, labels = lesson["ioi_graph"], lesson["labels"]
    assert [t.token_str for t in ioi_graph.logit_targets] == [" Mary"]
    assert len(lesson["ioi_kept"]) == 34 and round(lesson3.error_share(ioi_graph), 2) == 0.52
    at_end = [labels(layer, feature) for _, layer, pos, feature in lesson["ioi_kept"] if pos == ioi_graph.n_pos - 1]
    assert len(at_end) == 22 and at_end.count("IO name: (any)") == 19
    assert not any("Mary" in name for name in at_end)
    earlier = {lesson["ioi_text"][pos] for _, _, pos, _ in lesson["ioi_kept"] if pos != ioi_graph.n_pos - 1}
    assert earlier == {" and", " went", "."}
    mary = ioi_graph.adjacency_matrix[lesson["ioi_kinds"].logits.start]       # "the thickest edge, into Mary from
    errors = lesson["ioi_kinds"].errors                                        # block 3's error node at `to`"
    assert mary.abs().argmax().item() - errors.start == 3 * ioi_graph.n_pos + ioi_graph.n_pos - 1
    kept_names = {(layer, feature): labels(layer, feature) for _, layer, _, feature in lesson["ioi_kept"]}
    assert kept_names[(0, 936)] == kept_names[(0, 952)] == "IO name: Jane"


def test_claim_part_two_graphs_share_the_generic_city_features(lesson) -> None:
    assert round(sum(lesson["same_city"]).item() / len(lesson["same_city"]), 2) == 0.72
    assert round(sum(lesson["other_city"]).item() / len(lesson["other_city"]), 2) == 0.18
    assert sorted((layer, from_end) for layer, _, from_end in lesson["shared"]) == [(0, -1), (3, -1)]
    assert all(lesson["labels"](layer, feature) == "city: (any)" for layer, feature, _ in lesson["shared"])
    assert all(lesson["has_city"].values()) and len(lesson["has_city"]) == 6
    shares = [round(share, 2) for share in lesson["error_shares"].values()]
    assert (min(shares), max(shares)) == (0.26, 0.41)                    # "0.26 to 0.41"
    assert round(lesson["error_shares"]["the Eiffel Tower"], 2) == 0.31


def test_claim_part_two_graph_figures(lesson) -> None:
    """Section 8: all 13 Eiffel Tower features drawn and numbered; section 11: 21 of the IOI graph's 34."""
    from helpers.lesson3 import plots
    for graph, pruned, drawn in [(lesson["graph"], lesson["pruned"], 13),
                                 (lesson["ioi_graph"], lesson["ioi_pruned"], 21)]:
        layout = plots.attribution_graph_layout(graph, pruned.node_mask, plots.columns_per_cell(graph.n_pos))
        assert len(layout.numbers) == drawn

