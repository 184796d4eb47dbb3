"""README and every lesson carry Binder deep links to the configured repository (pyproject.toml).

The README's badge opens lesson 00 (not a file list), each lesson's row in README's lesson table
opens that lesson, and each lesson's own badge opens itself.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["idivkit"]
SLUG, REF, LANDING = SETTINGS["binder-repository"], SETTINGS["binder-ref"], SETTINGS["binder-landing"]
BADGE = "https://mybinder.org/badge_logo.svg"
LESSON_SOURCES = sorted((ROOT / "course" / "source").glob("*/*.ipynb"))
README = (ROOT / "README.md").read_text()


def deep_link(path: str) -> str:
    """The Binder address that opens ``path`` (relative to the repository) in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{SLUG}/{REF}?urlpath=lab/tree/{path}"


def _badge_links(text: str) -> list[str]:
    return re.findall(r"\[!\[Binder\]\(" + re.escape(BADGE) + r"\)\]\((\S+?)\)", text)


def test_the_landing_notebook_is_lesson_00_and_what_learners_open_locally():
    assert LANDING == "lessons/00_welcome.ipynb" and (ROOT / LANDING).is_file()
    learner = json.loads((ROOT / "jupyter" / "learner" / "jupyter_server_config.json").read_text())
    assert learner["LabApp"]["default_url"] == f"/lab/tree/{LANDING}"


def test_readme_badge_opens_lesson_00():
    links = _badge_links(README)
    assert links == [deep_link(LANDING)], f"README's Binder badge should open {LANDING}: {links}"


@pytest.mark.parametrize("source", LESSON_SOURCES, ids=lambda p: p.stem)
def test_readme_lesson_table_links_each_lesson(source):
    number = source.stem[:2]
    rows = [line for line in README.splitlines() if re.match(rf"^\| *\[?{number} ", line)]
    assert len(rows) == 1, f"README's lesson table should have one row for lesson {number}: {rows}"
    links = re.findall(r"^\| *\[[^\]]+\]\((\S+?)\) *\|", rows[0])
    assert links == [deep_link(f"lessons/{source.stem}.ipynb")], (
        f"lesson {number}'s row should link to its Binder deep link: {rows[0][:200]}"
    )


@pytest.mark.parametrize("source", LESSON_SOURCES, ids=lambda p: p.stem)
def test_each_lesson_opens_with_a_badge_pointing_at_itself(source):
    expected = deep_link(f"lessons/{source.stem}.ipynb")
    for notebook in (source, ROOT / "lessons" / source.name):
        first = json.loads(notebook.read_text())["cells"][0]
        assert first["cell_type"] == "markdown", notebook
        assert _badge_links("".join(first["source"])) == [expected], notebook


def test_there_are_lessons():
    assert len(LESSON_SOURCES) >= 5
