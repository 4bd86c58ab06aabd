"""notebooks/glossary.ipynb: one heading per term, and every link to it (from any notebook) lands on one."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "notebooks" / "glossary.ipynb"
LINK = re.compile(r"\]\(((?:\.\./notebooks/)?glossary\.ipynb)?#([^)\s]+)\)")
NOTEBOOKS = sorted(p for d in ("notebooks", "solutions", "exercises") for p in (ROOT / d).glob("*.ipynb"))


def anchors() -> set[str]:
    """The ids JupyterLab and nbconvert both give headings: the heading's text, spaces made ``-``."""
    cells = nbformat.read(GLOSSARY, as_version=4).cells
    return {line.lstrip("#").strip().replace(" ", "-") for cell in cells for line in cell.source.splitlines()
            if re.match(r"#{1,6}\s", line)}


def glossary_links(path: Path) -> list[str]:
    """The anchors of ``path``'s links into the glossary (inside the glossary: every ``#anchor`` link)."""
    text = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown")
    if path == GLOSSARY:
        return [anchor for _, anchor in LINK.findall(text)]
    return [anchor for target, anchor in LINK.findall(text) if target]


def test_terms_are_in_alphabetical_order_and_unique() -> None:
    cells = nbformat.read(GLOSSARY, as_version=4).cells
    terms = [line[4:] for cell in cells for line in cell.source.splitlines() if line.startswith("### ")]
    assert len(terms) >= 60 and len(set(terms)) == len(terms)
    assert terms == sorted(terms, key=str.lower)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.name}" for p in NOTEBOOKS])
def test_every_glossary_link_lands_on_a_term(path: Path) -> None:
    missing = sorted(set(glossary_links(path)) - anchors())
    assert not missing, f"{path.name} links to glossary terms that have no heading: {missing}"


def test_every_lesson_links_to_the_glossary() -> None:
    lessons = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    assert lessons and all(glossary_links(p) for p in lessons), \
        [p.name for p in lessons if not glossary_links(p)]
