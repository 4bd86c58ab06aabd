"""Measure lesson 3 part two on every landmark: graph sizes, run times, error shares, labels, swaps.

    python scripts/experiments/measure_feature_circuits.py            # all 46 landmarks, prints a summary
    python scripts/experiments/measure_feature_circuits.py --json out.json

For each landmark's prompt ("<Landmark> is in the city of") it builds circuit-tracer's attribution
graph on the bundled replacement model, prunes it (node threshold 0.8, edge threshold 0.98), and
records: whether a kept feature's ground-truth label is the landmark's city or the landmark itself;
the graph's size before and after pruning; the share of the top logit's direct input carried by
error nodes; and whether the swap intervention (``swap_interventions``: the landmark's city off, another
city on) moves the top prediction to the injected city. ``tests/test_lesson3_feature_circuits.py`` asserts
the same figures on the committed transcoders.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from circuit_tracer import attribute  # noqa: E402
from circuit_tracer.graph import compute_graph_scores, prune_graph  # noqa: E402

from helpers import corpus  # noqa: E402
from helpers.lesson3 import (  # noqa: E402
    error_share,
    graph_features,
    label_features,
    landmark_prompt,
    swap_interventions,
    swap_success,
    swap_targets,
    top_token,
)
from helpers.transcoders import load_replacement_model, load_transcoders  # noqa: E402


def landmark_graph(replacement, labels, landmark: str, city: str) -> dict:
    """Attribute, prune and label one landmark's graph; return its figures."""
    tokens = replacement.to_tokens(landmark_prompt(landmark))[0]
    started = time.perf_counter()
    with torch.enable_grad():                 # circuit-tracer's backward passes need gradients
        graph = attribute(tokens, replacement, max_n_logits=5, batch_size=256)
    seconds = time.perf_counter() - started
    pruned = prune_graph(graph, node_threshold=0.8, edge_threshold=0.98)
    kept = graph_features(graph, pruned.node_mask)
    kept_labels = sorted({labels(layer, feature) for _, layer, _, feature in kept})
    replacement_score, completeness = compute_graph_scores(graph)
    return dict(landmark=landmark, city=city, answer=top_token(replacement, replacement(tokens[None])).strip(),
                seconds=round(seconds, 2), active_features=len(graph.selected_features), kept_features=len(kept),
                kept_edges=int(pruned.edge_mask.sum()), error_share=round(error_share(graph), 3),
                replacement_score=round(replacement_score, 3), completeness=round(completeness, 3),
                labelled=any(lab in (f"city: {city}", f"landmark: {landmark}") for lab in kept_labels),
                kept_labels=kept_labels)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--limit", type=int, help="only the first N landmarks")
    parser.add_argument("--transcoders", type=Path, help="a transcoder folder (default: the bundled ones)")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    replacement = load_replacement_model(
        transcoders=load_transcoders(folder=args.transcoders) if args.transcoders else None)
    started = time.perf_counter()
    labels = label_features(replacement)
    label_seconds = time.perf_counter() - started
    facts = [(lm, city) for lm, city, _ in corpus.data.LANDMARKS][: args.limit]
    rows = [landmark_graph(replacement, labels, lm, city) for lm, city in facts]
    swaps = swap_success(swap_interventions, replacement, labels, swap_targets()[: args.limit])
    summary = dict(
        landmarks=len(rows), label_seconds=round(label_seconds, 1),
        labelled_share=round(sum(r["labelled"] for r in rows) / len(rows), 3),
        correct_answer_share=round(sum(r["answer"] == r["city"] for r in rows) / len(rows), 3),
        swap_share=round(sum(answer == target for _, _, target, answer in swaps) / len(swaps), 3),
        median_seconds=statistics.median(r["seconds"] for r in rows), max_seconds=max(r["seconds"] for r in rows),
        median_active_features=statistics.median(r["active_features"] for r in rows),
        median_kept_features=statistics.median(r["kept_features"] for r in rows),
        median_error_share=statistics.median(r["error_share"] for r in rows))
    for r in rows:
        print(f"{'✅' if r['labelled'] else '❌'} {r['landmark']:28s} {r['city']:13s} answer {r['answer']:13s} "
              f"{r['active_features']:5d} -> {r['kept_features']:3d} features, error share {r['error_share']:.2f}, "
              f"{r['seconds']:.1f} s")
    for landmark, city, target, answer in swaps:
        print(f"{'✅' if answer == target else '❌'} swap {landmark}: {city} -> {target}: answered {answer}")
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(dict(summary=summary, landmarks=rows, swaps=swaps), indent=2) + "\n")


if __name__ == "__main__":
    main()
