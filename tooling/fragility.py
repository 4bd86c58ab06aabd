"""The fragility check: every claim test re-run on weights nudged at the level of float32 rounding.

    python -m tooling.fragility                          # seeds 1 2 3, each on 1 and 2 threads
    python -m tooling.fragility --seeds 1 --threads 2 tests/test_lesson4.py
    python3 course.py fragility                          # the same, from the course's environment

How the weights are nudged, and why, is in :mod:`helpers.fragility` (the loaders call it).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from helpers.fragility import NOISE_ENV, RELATIVE_NOISE, THREADS_ENV

ROOT = Path(__file__).resolve().parents[1]

def main(argv: list[str] | None = None) -> int:
    """Run ``pytest -m claim`` once per (seed, thread count); exit 1 if any run failed."""
    parser = argparse.ArgumentParser(description="Re-run every claim test with the bundled weights perturbed by a "
                                                 f"relative {RELATIVE_NOISE:g} (one run per seed and thread count).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="noise seeds (default: 1 2 3)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default: 1 2)")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (e.g. tests/test_lesson4.py)")
    args = parser.parse_args(argv)
    results = []
    for seed in args.seeds:
        for threads in args.threads:
            env = {**os.environ, NOISE_ENV: str(seed), THREADS_ENV: str(threads)}
            command = [sys.executable, "-m", "pytest", "-m", "claim", "-q", "-p", "no:randomly",
                       *(args.pytest_args or ["tests"])]
            print(f"▶ weights perturbed with seed {seed}, torch on {threads} thread(s): {' '.join(command[1:])}",
                  flush=True)
            begin = time.perf_counter()
            code = subprocess.call(command, cwd=ROOT, env=env)
            if code == 5:
                print("❌ pytest collected no claim tests: the marker is missing (tests/conftest.py).")
            results.append((seed, threads, code, time.perf_counter() - begin))
    print("\nFragility check (claim tests on perturbed weights):")
    for seed, threads, code, seconds in results:
        print(f"  {'✅' if code == 0 else '❌'} seed {seed}, {threads} thread(s): "
              f"{'passed' if code == 0 else f'pytest exit code {code}'} in {seconds:.0f} s")
    return 0 if all(code == 0 for *_, code, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
