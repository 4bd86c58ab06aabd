"""Time every notebook of the course and publish the table: docs/timings.md, the README, the workshop guide.

    python -m tooling.timings            # run everything (several minutes), then write and print the table
    python -m tooling.timings --only notebooks/01b_x.ipynb ...   # re-time these, keep the other rows
    python -m tooling.timings --render   # rewrite the Markdown from docs/timings.json, run nothing
    python -m tooling.timings --check    # exit 1 if docs/timings.md or the README block is out of date

``python3 course.py timings`` runs the first line. Each notebook of ``notebooks/``, ``solutions/`` and
``exercises/`` runs alone, top to bottom, in a fresh kernel (:func:`tooling.book.execute_notebook`):

* **wall time**: from starting the kernel to the end of the last cell;
* **peak memory**: the kernel process's peak resident set (``VmHWM`` on Linux);
* **ran**: the notebook ran top to bottom without an error. A fill-in workbook runs through too: its
  blank exercises make each check print ❌ instead of raising, so its ✅/❌ count is the useful column
  there (all ❌ is what a fresh workbook should show; the solved ones should show all ✅).

Then ``scripts/patching_cost.py`` times lesson 3's patching sweep on the course model and on a random
model with GPT-2 small's shape, in one process. The measurements go to ``docs/timings.json`` (the one
source); ``docs/timings.md``, the README block between the ``timings`` markers and the lesson table of
``docs/WORKSHOP.md`` are rendered from it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from tooling.book import NOTEBOOK_GLOB, ROOT, execute_notebook, lesson_number, relative

DIRS = ("notebooks", "solutions", "exercises")
DATA = ROOT / "docs" / "timings.json"
PAGE = ROOT / "docs" / "timings.md"
README = ROOT / "README.md"
BEGIN = "<!-- timings:begin (written by `python3 course.py timings` from docs/timings.json; do not edit) -->"
END = "<!-- timings:end -->"


def timed_notebooks(root: Path = ROOT) -> list[Path]:
    """notebooks/, solutions/ and exercises/, lesson by lesson."""
    found = [p for d in DIRS for p in (root / d).glob(NOTEBOOK_GLOB)]
    return sorted(found, key=lambda p: (lesson_number(p), DIRS.index(p.parent.name), p.name))


def machine() -> dict:
    """What the numbers were measured on."""
    import psutil
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_at_start": None if load is None else round(load, 2),
        "date": datetime.date.today().isoformat(),
    }


def measure_notebooks(paths: list[Path], log=print) -> list[dict]:
    """Run each notebook alone in a fresh kernel; one row of ``docs/timings.json`` each."""
    rows = []
    for path in paths:
        run = execute_notebook(path)
        passed, failed = run.check_lines()
        row = {"notebook": relative(path), "seconds": round(run.seconds, 1),
               "peak_mb": None if run.peak_rss_mb is None else round(run.peak_rss_mb),
               "ran": run.ok, "error": None if run.ok else str(run.error),
               "checks_passed": passed, "checks_failed": failed}
        log(f"{'✅' if run.ok else '❌'} {row['notebook']}: {row['seconds']:.0f} s, peak {row['peak_mb']} MB, "
            f"checks {passed} ✅ {failed} ❌" + ("" if run.ok else f"\n   {run.error}"))
        rows.append(row)
    return rows


def measure_only(data: dict, paths: list[Path], log=print) -> dict:
    """``data`` with the rows of ``paths`` re-measured (added if new) and rows of deleted notebooks dropped.

    The machine and the patching cost stay those of the last full run; the re-measure is listed under
    ``"remeasured"`` with its own machine record, so the page can say which rows are newer.
    """
    fresh = {row["notebook"]: row for row in measure_notebooks(paths, log)}
    old = {row["notebook"]: row for row in data["notebooks"]}
    rows = [fresh.get(relative(p)) or old.get(relative(p)) for p in timed_notebooks()]
    missing = [relative(p) for p, row in zip(timed_notebooks(), rows) if row is None]
    if missing:
        raise SystemExit(f"❌ never timed: {', '.join(missing)} (add them to --only, or run a full measure)")
    remeasured = [*data.get("remeasured", []), {"notebooks": sorted(fresh), "machine": machine()}]
    return {**data, "notebooks": rows, "remeasured": remeasured}


def measure(log=print) -> dict:
    """Run every notebook and the patching-cost script; return what ``docs/timings.json`` holds."""
    info = machine()
    rows = measure_notebooks(timed_notebooks(), log)
    log("▶ scripts/patching_cost.py (the same patching sweep on course-4l and on a GPT-2-small-shaped model) ...")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "patching_cost.py"), "--json"], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        log(result.stderr[-2000:])
        raise SystemExit("❌ scripts/patching_cost.py failed (its error is above)")
    cost = json.loads(result.stdout.strip().splitlines()[-1])
    return {"machine": info, "notebooks": rows, "patching_cost": cost}


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def render_body(data: dict) -> str:
    """The Markdown that docs/timings.md and the README block share."""
    m, cost = data["machine"], data["patching_cost"]
    threads = f", OMP_NUM_THREADS={m['omp_num_threads']}" if m.get("omp_num_threads") else ""
    load = m.get("load_average_at_start")
    lines = [
        f"Measured by `python3 course.py timings` on {m['date']}: {m['cpu']}, {m['logical_cores']} logical cores "
        f"({m['physical_cores']} physical), {m['ram_gb']:g} GB RAM, {m['os']}, Python {m['python']}, "
        f"torch {m['torch']} ({m['torch_threads']} thread{'s' if m['torch_threads'] != 1 else ''}{threads})"
        + (f"; load average {load:g} when it started." if load is not None else "."),
        "Each notebook ran alone in a fresh kernel, top to bottom. Peak memory is the kernel's peak resident set.",
        *[f"Re-timed on {r['machine']['date']} with `--only` (same kind of machine, load average "
          f"{r['machine']['load_average_at_start']:g} when it started): "
          + ", ".join(f"`{n}`" for n in r["notebooks"]) + "." for r in data.get("remeasured", [])],
        "",
        "| notebook | wall time | peak memory | ran | checks ✅ / ❌ |",
        "|---|--:|--:|:-:|--:|",
    ]
    for row in data["notebooks"]:
        peak = "?" if row["peak_mb"] is None else f"{row['peak_mb'] / 1024:.2f} GB"
        checks = "" if row["checks_passed"] + row["checks_failed"] == 0 else \
            f"{row['checks_passed']} / {row['checks_failed']}"
        ran = "yes" if row["ran"] else f"**no**: {row['error']}"
        lines.append(f"| `{row['notebook']}` | {_duration(row['seconds'])} | {peak} | {ran} | {checks} |")
    total = sum(r["seconds"] for r in data["notebooks"])
    lessons = sum(r["seconds"] for r in data["notebooks"] if not r["notebook"].startswith("exercises/"))
    lines += [
        "",
        f"All {len(data['notebooks'])} notebooks: {_duration(total)}; the lessons and solved workbooks "
        f"alone (what `python3 course.py test` and `python3 course.py book` run): {_duration(lessons)}. "
        "A fill-in workbook runs through with its exercises blank: each check prints ❌ instead of stopping it.",
        "",
        f"**What the small model saves.** Lesson 3's residual-stream patching sweep, `{cost['sweep']}`: "
        f"\"{cost['clean']}\" patched into \"{cost['corrupted']}\" ({cost['prompts']} prompt of {cost['positions']} "
        "tokens), one forward pass per layer and position plus the clean run. Both models in one process, "
        f"torch on {cost['torch_threads']} thread{'s' if cost['torch_threads'] != 1 else ''}; the fastest of "
        f"{cost['runs']['course_4l']} runs on `course-4l` and of {cost['runs']['gpt2_small_shape']} on the "
        "GPT-2-sized model:",
        "",
        "| model | parameters | patched runs | time |",
        "|---|--:|--:|--:|",
        f"| `course-4l` (bundled) | {cost['course_4l']['params_m']:g} M | {cost['course_4l']['forward_passes']} | "
        f"{cost['course_4l']['seconds']:.2f} s |",
        f"| GPT-2 small's shape (random weights, `scripts/patching_cost.py`) | "
        f"{cost['gpt2_small_shape']['params_m']:g} M | "
        f"{cost['gpt2_small_shape']['forward_passes']} | {cost['gpt2_small_shape']['seconds']:.2f} s |",
        "",
        f"The same sweep takes **{cost['ratio']:g} times** as long on a model of GPT-2 small's size (random "
        "weights cost what trained ones do; TransformerLens holds GPT-2 small's 124 M parameters plus a separate "
        "copy of the embedding as its unembedding). That is what the bundled model saves a learner on a CPU.",
    ]
    return "\n".join(lines) + "\n"


def render_page(data: dict) -> str:
    return "# Timings\n\n" + render_body(data)


def readme_with_block(readme: str, body: str) -> str:
    """``readme`` with the text between the markers replaced by ``body``; ValueError without markers."""
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"README.md lacks the markers {BEGIN!r} and {END!r}")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{body}{END}{tail}"


def readme_block(readme: str) -> str:
    """The text between the README's markers."""
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].lstrip("\n")


def outputs(data: dict) -> dict[Path, str]:
    """Every file the timings are rendered into, with its expected content."""
    from tooling import workshop

    body = render_body(data)
    return {PAGE: render_page(data), README: readme_with_block(README.read_text(encoding="utf-8"), body),
            workshop.GUIDE: workshop.render_guide(timings=data)}


def stale(data: dict) -> list[Path]:
    return [path for path, text in outputs(data).items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def write(data: dict) -> None:
    for path, text in outputs(data).items():
        path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--render", action="store_true", help="rewrite the Markdown from docs/timings.json; run nothing")
    group.add_argument("--check", action="store_true", help="exit 1 if a rendered file differs from docs/timings.json")
    group.add_argument("--only", nargs="+", type=Path, metavar="NOTEBOOK",
                       help="re-time these notebooks only; keep the other rows of docs/timings.json")
    args = parser.parse_args(argv)
    if args.check:
        paths = stale(json.loads(DATA.read_text(encoding="utf-8")))
        for path in paths:
            print(f"stale: {relative(path)} (run `python -m tooling.timings --render`)")
        return 1 if paths else 0
    if args.render:
        data = json.loads(DATA.read_text(encoding="utf-8"))
    elif args.only:
        data = measure_only(json.loads(DATA.read_text(encoding="utf-8")), [p.resolve() for p in args.only])
        DATA.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        data = measure()
        DATA.parent.mkdir(exist_ok=True)
        DATA.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    write(data)
    print("\n" + render_body(data))
    print(f"Wrote {relative(DATA)}, {relative(PAGE)}, the README block and the lesson table of docs/WORKSHOP.md.")
    return 0 if all(row["ran"] for row in data["notebooks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
