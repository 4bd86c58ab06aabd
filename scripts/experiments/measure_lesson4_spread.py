"""The spread of every figure lesson 4 quotes, over weight perturbations that stand in for other CPUs.

    python scripts/experiments/measure_lesson4_spread.py                 # as stored, then seeds 1 to 5
    python scripts/experiments/measure_lesson4_spread.py --seeds 1 2 3 --json build/lesson4_spread.json

Runs the lesson's code cells (``tests/notebook_cells.run_lesson``) once with the weights as stored and
once per seed with ``COURSE_WEIGHT_NOISE=<seed>`` (``helpers/fragility.py``: every weight times
``1 + 3e-7 * noise``). The lesson pins torch and BLAS to one thread itself, so the thread count does
not enter. Prints, for each quoted figure, its value as stored and the smallest and largest value over
the seeds: a figure the prose quotes must hold over that whole range.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from notebook_cells import run_lesson  # noqa: E402

from helpers.fragility import NOISE_ENV  # noqa: E402

LESSON = ROOT / "notebooks" / "04_probing.ipynb"


def figures(ns: dict) -> dict[str, float]:
    """The figures of lesson 4 that its prose quotes, by name, from the namespace the lesson leaves."""
    out: dict[str, float] = {}
    acc, c, sel, base = ns["accuracy"], ns["controls"], ns["selectivity"], ns["baseline"]
    for task in acc:
        for i, value in enumerate(acc[task]):
            out[f"accuracy.{task}[{i}]"] = float(value)
        out[f"baseline.{task}"] = float(base[task])
        for name, values in c[task].items():
            if name != "linear probe":
                for i, value in enumerate(values):
                    out[f"controls.{task}.{name}[{i}]"] = float(value)
        for i, value in enumerate(sel[task]):
            out[f"selectivity.{task}[{i}]"] = float(value)
    for task, value in ns["model_accuracy"].items():
        out[f"model_accuracy.{task}"] = float(value)
    for name, removal in ns["effects"].items():                   # lesson4.Removal of two InterventionEffects
        for kind, effect in [("probe direction", removal.probe), ("random direction", removal.random)]:
            for key, value in dataclasses.asdict(effect).items():
                out[f"effects.{name}: {kind}.{key}"] = float(value)
    random_removal = ns["random_removal"]
    out["amnesic[random 8].answers_changed"] = float(random_removal.answers_changed)
    out["amnesic[random 8].mean_abs_change"] = float(random_removal.mean_abs_change)
    for k, effect in ns["amnesic"].items():
        out[f"amnesic[{k}].relation_probe"] = float(ns["fresh_probe"][k])
        out[f"amnesic[{k}].answers_changed"] = float(effect.answers_changed)
        out[f"amnesic[{k}].mean_abs_change"] = float(effect.mean_abs_change)
    for name, curve in ns["steered"].items():                    # lesson4.SteeringCurve
        for m, value in zip(ns["multiples"], curve.shares):
            out[f"steered.{name} direction: {curve.label}[{m}]"] = float(value)
    for name, values in ns["patched"].items():                   # attribute and donor -> share moved per place
        for i, value in enumerate(values):
            out[f"patched.{name}[{i}]"] = float(value)
        out[f"effects.{name}.pairs"] = float(len(ns["pairs"].clean)) if name.startswith("relation") else 100.0
    for name, values in ns["truth_auroc"].items():
        for i, value in enumerate(values):
            out[f"truth_auroc.{name}[{i}]"] = float(value)
    for name, value in ns["self_auroc"].items():
        out[f"self_auroc.{name}"] = float(value)
    out["self_accuracy"] = float(ns["self_accuracy"])
    out["self_wrong"] = float(ns["self_wrong"].sum())
    out["self_wrong_true_called_false"] = float((ns["self_wrong"] & (ns["held_out"].labels == 1)).sum())
    out["worst_margin"] = float(abs(ns["self_report"][ns["worst"]]))
    out["probe_wrong"] = float(ns["probe_wrong"].sum())
    out["probe_wrong_and_self_wrong"] = float((ns["probe_wrong"] & ns["self_wrong"]).sum())
    out["memoriser_held_out"] = float(ns["memoriser"].score(ns["X_held_out"], ns["y_held_out"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args(argv)
    runs: dict[str, dict[str, float]] = {}
    for seed in [None, *args.seeds]:
        if seed is None:
            os.environ.pop(NOISE_ENV, None)
        else:
            os.environ[NOISE_ENV] = str(seed)
        begin = time.perf_counter()
        runs["stored" if seed is None else f"seed {seed}"] = figures(run_lesson(LESSON))
        print(f"{'stored' if seed is None else f'seed {seed}'}: {time.perf_counter() - begin:.0f} s", flush=True)
    names = list(runs["stored"])
    print(f"\n{'figure':75s} {'stored':>8s} {'min':>8s} {'max':>8s}")
    for name in names:
        values = np.array([run[name] for run in runs.values()])
        flag = "  <- varies" if values.max() - values.min() > 1e-9 else ""
        print(f"{name:75s} {runs['stored'][name]:8.4f} {values.min():8.4f} {values.max():8.4f}{flag}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
