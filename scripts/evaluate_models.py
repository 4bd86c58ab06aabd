"""Measure the committed model organisms and print the table of their behaviours.

    python scripts/evaluate_models.py                      # both bundled models
    python scripts/evaluate_models.py --model gpt2-small   # the same prompt sets on GPT-2 (online)

Writes nothing; ``tests/test_models.py`` asserts the same figures against the issue's thresholds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers.evaluation import evaluate  # noqa: E402
from helpers.models import BUNDLED, load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a model name (repeatable); default: both bundled")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    torch.manual_seed(0)
    results = {}
    for name in args.model or list(BUNDLED):
        started = time.time()
        model = load_model(name)
        results[name] = evaluate(model)
        results[name]["eval_seconds"] = round(time.time() - started, 1)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    metrics = list(dict.fromkeys(k for r in results.values() for k in r))
    print(f"{'metric':34s}" + "".join(f"{name:>16s}" for name in results))
    for metric in metrics:
        cells = []
        for r in results.values():
            value = r.get(metric, "")
            cells.append(f"{value:16.3f}" if isinstance(value, float) else f"{str(value):>16s}")
        print(f"{metric:34s}" + "".join(cells))


if __name__ == "__main__":
    main()
