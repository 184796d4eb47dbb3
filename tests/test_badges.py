"""README and every lesson carry the same Binder badge, pointing at the configured repository."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLUG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["idivkit"]["binder-repository"]
BADGE = "https://mybinder.org/badge_logo.svg"
LESSON_SOURCES = sorted((ROOT / "course" / "source").glob("*/*.ipynb"))


def _badge_links(text: str) -> list[str]:
    return re.findall(r"\[!\[Binder\]\(" + re.escape(BADGE) + r"\)\]\((\S+?)\)", text)


def test_readme_badge_opens_jupyterlab_at_the_lessons():
    links = _badge_links((ROOT / "README.md").read_text())
    assert f"https://mybinder.org/v2/gh/{SLUG}/HEAD?urlpath=lab/tree/lessons" in links, links


@pytest.mark.parametrize("source", LESSON_SOURCES, ids=lambda p: p.stem)
def test_each_lesson_opens_with_a_badge_pointing_at_itself(source):
    expected = f"https://mybinder.org/v2/gh/{SLUG}/HEAD?urlpath=lab/tree/lessons/{source.stem}.ipynb"
    for notebook in (source, ROOT / "lessons" / source.name):
        first = json.loads(notebook.read_text())["cells"][0]
        assert first["cell_type"] == "markdown", notebook
        assert _badge_links("".join(first["source"])) == [expected], notebook


def test_there_are_lessons():
    assert len(LESSON_SOURCES) >= 5
