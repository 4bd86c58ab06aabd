#!/usr/bin/env python3
"""Run lesson 4 and its solved workbook the way nbmake does, and print wall time and peak memory.

    OMP_NUM_THREADS=1 python scripts/time_lesson4.py            # both notebooks
    python scripts/time_lesson4.py notebooks/04_probing.ipynb   # one

Peak memory is the largest resident set of the kernel process (``ru_maxrss`` of the finished
children), so run one notebook per call for a per-notebook figure.
"""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["notebooks/04_probing.ipynb", "solutions/04_probing.ipynb"]


def run(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return time.perf_counter() - start


if __name__ == "__main__":
    for name in sys.argv[1:] or DEFAULT:
        seconds = run(ROOT / name)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"{name}: {seconds:.1f} s, peak kernel memory so far {peak_mb:.0f} MB")
