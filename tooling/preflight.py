"""Preflight: can this machine run the course? One line per check, in well under 30 seconds.

    python3 course.py preflight          # sets up .venv if needed, then runs this
    python -m tooling.preflight          # inside the course's environment
    python -m tooling.preflight --write-checksums   # after retraining: rewrite models/SHA256SUMS

Each check prints ✅ or ❌ with what to do; the exit status is 1 when any check fails. Instructors
ask every attendee to run it before a workshop.
"""
from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKSUMS = ROOT / "models" / "SHA256SUMS"
MIN_FREE_GB = 2.0
STARTED = time.perf_counter()          # the run's time includes importing torch and the rest

__all__ = ["Check", "check_python", "check_pins", "check_files", "check_forward", "check_circuitsvis",
           "check_widgets", "check_memory", "write_checksums", "run_checks", "main"]


@dataclass
class Check:
    """One preflight result: ``passed``, what was seen (``detail``) and, on failure, what to do (``fix``)."""

    name: str
    passed: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "✅" if self.passed else "❌"
        return f"{mark} {self.name}: {self.detail}" + ("" if self.passed or not self.fix else f" — {self.fix}")


def check_python(version: tuple[int, int] = sys.version_info[:2]) -> Check:
    ok = tuple(version) == (3, 11)
    return Check("Python", ok, f"{version[0]}.{version[1]}",
                 "install Python 3.11 (the pinned wheels, torch among them, are built for it)")


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_pins(requirements: Path = ROOT / "requirements.txt",
               installed: Callable[[str], str | None] = _installed) -> Check:
    """Every ``name==version`` line of ``requirements`` against what is installed."""
    wrong = []
    pins = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    pins = [p for p in pins if "==" in p]
    for pin in pins:
        name, version = (part.strip() for part in pin.split("==", 1))
        name = re.sub(r"\[.*\]", "", name)
        have = installed(name)
        if have is None or have.split("+")[0] != version.split("+")[0]:
            wrong.append(f"{name} {have or 'missing'} (pinned {version})")
    detail = f"{len(pins)} pins match" if not wrong else f"{len(wrong)} of {len(pins)} differ: " + ", ".join(wrong[:3])
    return Check("Packages", not wrong, detail,
                 "run `python3 course.py lab` (it reinstalls .venv from requirements.txt)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(models_dir: Path = ROOT / "models", out: Path = CHECKSUMS) -> None:
    """Write ``sha256sum``-style lines for every file under ``models_dir`` (the file itself excluded)."""
    files = sorted(p for p in models_dir.rglob("*")
                   if p.is_file() and p.relative_to(models_dir).as_posix() != "SHA256SUMS")
    out.write_text("".join(f"{_sha256(p)}  {p.relative_to(models_dir).as_posix()}\n" for p in files))


def check_files(checksums: Path = CHECKSUMS) -> Check:
    """Every bundled model, tokenizer and SAE file against the checksum recorded for it."""
    folder = checksums.parent
    if not checksums.exists():
        return Check("Model files", False, f"{checksums} is missing", "re-download or re-clone the course")
    missing, changed, lines = [], [], checksums.read_text().splitlines()
    for line in lines:
        expected, name = line.split(maxsplit=1)
        path = folder / name
        if not path.exists():
            missing.append(name)
        elif _sha256(path) != expected:
            changed.append(name)
    if missing or changed:
        detail = "; ".join(filter(None, [f"missing: {', '.join(missing[:3])}" if missing else "",
                                         f"changed or truncated: {', '.join(changed[:3])}" if changed else ""]))
        return Check("Model files", False, detail, "restore them with `git checkout -- models` or re-clone "
                     "(if a clone fetched pointer files instead of weights, clone again without Git LFS filters)")
    return Check("Model files", True, f"{len(lines)} files match their checksums")


def check_forward(name: str) -> Check:
    """Load a bundled model and run one prompt through it."""
    try:
        from helpers.models import load_model

        started = time.perf_counter()
        model = load_model(name)
        prediction = model.to_string(model("The Eiffel Tower is in the city of")[0, -1].argmax())
        seconds = time.perf_counter() - started
    except Exception as error:  # noqa: BLE001 - any failure becomes one line
        return Check(f"Model {name}", False, f"{type(error).__name__}: {str(error).splitlines()[0][:100]}",
                     "run the model-files check above, then reinstall with `python3 course.py lab`")
    return Check(f"Model {name}", True, f"loads and runs in {seconds:.1f} s (predicts {prediction!r})")


def check_circuitsvis() -> Check:
    """A circuitsvis view renders with no internet: what Jupyter shows inlines the bundled JavaScript.

    ``helpers`` (imported by this module, as by every lesson) makes every view inline circuitsvis's own
    bundle, with no online probe and no CDN (``helpers/offline.py``); this checks the HTML a notebook shows.
    """
    try:
        import circuitsvis as cv
        import torch

        view = cv.attention.attention_patterns(tokens=["a", "b"], attention=torch.ones(1, 2, 2) / 2)
        html = view._repr_html_()             # what a notebook displays
    except Exception as error:  # noqa: BLE001
        return Check("circuitsvis", False, f"{type(error).__name__}: {error}", "reinstall with `python3 course.py lab`")
    offline = "unpkg.com" not in html and len(html) > 100_000     # the JS bundle itself, not the CDN import
    detail = f"renders offline ({len(html) / 1e6:.1f} MB of bundled JavaScript inlined)" if offline else \
        "its offline view lacks the bundled JavaScript, so it needs internet"
    return Check("circuitsvis", offline, detail, "reinstall with `python3 course.py lab`; the lessons' "
                 "matplotlib views work either way")


def check_widgets() -> Check:
    """ipywidgets in the kernel and its JupyterLab front-end extension."""
    kernel, frontend = _installed("ipywidgets"), _installed("jupyterlab_widgets")
    ok = kernel is not None and frontend is not None
    return Check("Widgets", ok, f"ipywidgets {kernel or 'missing'}, jupyterlab_widgets {frontend or 'missing'}",
                 "reinstall with `python3 course.py lab`")


def check_memory(meminfo: Path = Path("/proc/meminfo"), minimum_gb: float = MIN_FREE_GB) -> Check:
    if not meminfo.exists():
        return Check("Memory", True, "cannot read free memory on this system; the lessons need about 2 GB")
    match = re.search(r"MemAvailable:\s+(\d+) kB", meminfo.read_text())
    if not match:
        return Check("Memory", True, "no MemAvailable line; the lessons need about 2 GB")
    free_gb = int(match.group(1)) / 1024 ** 2
    return Check("Memory", free_gb >= minimum_gb, f"{free_gb:.1f} GB free (the lessons need about {minimum_gb:.0f} GB)",
                 "close other programs before the workshop")


def run_checks() -> list[Check]:
    from helpers.models import BUNDLED

    checks = [check_python(), check_pins(), check_files()]
    checks += [check_forward(name) for name in BUNDLED]
    checks += [check_circuitsvis(), check_widgets(), check_memory()]
    return checks


def main() -> int:
    failed = 0
    for check in run_checks():
        print(check.line(), flush=True)
        failed += not check.passed
    verdict = "ready for the course" if not failed else f"{failed} check{'s' if failed > 1 else ''} failed"
    print(f"{verdict} (checks took {time.perf_counter() - STARTED:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-checksums"]:
        write_checksums()
        sys.exit(0)
    sys.exit(main())
