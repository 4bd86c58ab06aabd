#!/usr/bin/env python3
"""Time every workbook check on its reference and on the wrong answers its tests feed it.

    python scripts/experiments/time_checks.py                  # every lesson (several minutes on 2 cores)
    python scripts/experiments/time_checks.py 3 circuits       # lesson 3's checks and lesson 3 part two's
    python scripts/experiments/time_checks.py --threads 1 3    # with torch on one thread (less noise on a busy machine)
    python scripts/experiments/time_checks.py 3:patch_residual_by_layer_pos     # one check

The course promises that a check answers a wrong attempt within twice the time it takes to pass.
For each check this prints the time the reference takes to pass, then the time of each wrong answer
of the tests (``tests/test_lesson<N>.py``, ``tests/test_lesson3_feature_circuits.py``) and its ratio to it,
flagging those over twice the reference's time plus 0.5 s (timer noise: most checks take milliseconds).
Each check runs once on the reference first, unmeasured, so that the cases it builds once per process
(models, caches, seeded data) are not counted against either.
Gradients are off, as the workbooks run their checks, except in lesson 2 (its training check trains).
"""
from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

import torch  # noqa: E402


def lesson_wrong_answers(which: str) -> tuple[object, dict[str, list], dict[str, tuple]]:
    """(module of the checks, {exercise: [wrong answers]}, {exercise: extra arguments of its check})."""
    if which in ("1", "3", "4", "circuits"):
        tests = __import__("test_lesson3_feature_circuits" if which == "circuits" else f"test_lesson{which}")
        answers: dict[str, list] = {}
        for name, learner, _ in tests.WRONG_ANSWERS:
            answers.setdefault(name, []).append(learner)
        return getattr(tests, "lesson3" if which == "circuits" else f"lesson{which}"), answers, {}
    if which == "2":
        tests = __import__("test_lesson2")
        answers = {}
        for name, learner, _ in tests.WRONG_ANSWERS:
            if callable(learner):
                answers.setdefault(name, []).append(learner)
        return tests.lesson2, answers, {"run_with_clamp": tests._course_model_and_sae()}
    raise SystemExit(f"unknown lesson {which!r}: choose 1, 2, 3, 4 or circuits")


def timed(check, fn, extra) -> tuple[float, bool]:
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        result = check(fn, *extra)
        return time.perf_counter() - start, bool(result.passed)


def main(args: list[str]) -> int:
    if args[:1] == ["--threads"]:
        torch.set_num_threads(int(args[1]))
        args = args[2:]
    summary = []
    for which in args or ["1", "2", "3", "4", "circuits"]:
        which, _, only = which.partition(":")
        module, answers, extras = lesson_wrong_answers(which)
        answers = {name: wrong for name, wrong in answers.items() if not only or name == only}
        torch.set_grad_enabled(which == "2")      # as the workbooks run them (workbook 2's part B checks need none)
        for name, wrong in answers.items():
            check, extra = getattr(module, f"check_{name}"), extras.get(name, ())
            timed(check, getattr(module, name), extra)                  # builds the cached cases
            right, passed = timed(check, getattr(module, name), extra)
            print(f"lesson {which:8s} {name:28s} reference {right:8.3f} s{'' if passed else '  (FAILED)'}")
            slowest = 0.0
            for i, fn in enumerate(wrong):
                seconds, passed = timed(check, fn, extra)
                slowest = max(slowest, seconds)
                flag = "  SLOW: over 2 x reference + 0.5 s" if seconds > 2 * right + 0.5 else ""
                print(f"{'':38s}wrong #{i:<2d} {seconds:8.3f} s  {seconds / max(right, 1e-9):6.2f}x{flag}"
                      f"{'  (PASSED!)' if passed else ''}")
            if wrong:
                summary.append(f"{which}:{name}: right {right:.2f} s, slowest wrong {slowest:.2f} s")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
