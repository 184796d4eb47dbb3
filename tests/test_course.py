"""The course notebooks: well-formed nbgrader sources, runnable, gradable, up to date.

Parametrized over every lesson found in course/source. Running the notebooks reuses the
session's grading batch (tests/test_autograder.py): nbgrader executes each instructor version
top to bottom with nbclient in a fresh kernel, as it will for learners.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from autograder.course import Course
from test_autograder import COURSE, LESSONS, ROOT, graded_batch, instructor, max_score

BADGE = re.compile(r"^\[!\[Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]"
                   r"\(https://mybinder\.org/v2/gh/[^/]+/[^/]+/HEAD\?urlpath=lab/tree/lessons/(\w+)\.ipynb\)$")


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> dict:
    return graded_batch(tmp_path_factory.mktemp("grading"))


def nbgrader_cells(nb):
    return [c for c in nb.cells if "nbgrader" in c.metadata]


def test_the_course_has_its_lessons():
    assert LESSONS[:2] == ["00_welcome", "01_autoencoder"]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+", name) for name in LESSONS)


def test_nbgrader_config():
    config = Course(COURSE).config()
    assert config.CourseDirectory.course_id == "idivkit"
    assert config.CourseDirectory.root == str(COURSE)
    assert config.CourseDirectory.db_url == f"sqlite:///{COURSE / 'gradebook.db'}"
    assert config.Execute.timeout == 120 and config.Execute.interrupt_on_timeout is True
    assert config.OverwriteCells.add_missing_cells is True
    assert Course(COURSE, timeout=7).config().Execute.timeout == 7
    # Autograding: learner cells in the sandbox, tests in the grader; feedback without hidden tests.
    assert config.Autograde.autograde_preprocessors[0] == "autograder.execute.SandboxedExecute"
    assert "nbgrader.preprocessors.Execute" not in config.Autograde.autograde_preprocessors
    assert config.GenerateFeedback.preprocessors[0] == "nbgrader.preprocessors.ClearHiddenTests"
    assert config.SandboxedExecute.timeout == 120 and config.SandboxedExecute.sandbox is True
    assert config.SandboxedExecute.source_root == str(COURSE / "source")
    unsafe = Course(COURSE, timeout=7, notebook_timeout=60, sandbox=False).config().SandboxedExecute
    assert (unsafe.timeout, unsafe.notebook_timeout, unsafe.sandbox) == (7, 60, False)


@pytest.mark.parametrize("lesson", LESSONS)
def test_instructor_notebook_is_well_formed(lesson):
    nb = instructor(lesson)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    match = BADGE.match(first.source.strip())
    assert match and match.group(1) == lesson, "the first cell must be the Binder badge of this lesson"
    assert nb.cells[1].source.lstrip().startswith("#"), "a title and the lesson's goals come first"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit instructor notebooks without outputs"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nbgrader_cells(nb)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    graded = [c for c in nbgrader_cells(nb) if c.metadata["nbgrader"].get("grade")]
    assert graded, "a lesson has graded steps"
    for cell in nbgrader_cells(nb):
        meta = cell.metadata["nbgrader"]
        assert meta["schema_version"] == 3
        assert re.fullmatch(r"[a-z0-9_\-]+", meta["grade_id"]), meta["grade_id"]
        if meta.get("solution") and cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, meta["grade_id"]
        if meta.get("grade") and not meta.get("solution"):
            assert meta["points"] > 0 and meta["locked"], meta["grade_id"]
    assert any("### BEGIN HIDDEN TESTS" in c.source for c in graded), "hidden tests are expected"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_instructor_version_runs_top_to_bottom_and_gets_full_marks(batch, lesson):
    row = batch["rows"][("teacher", lesson)]
    # Every test passes; answers graded by hand (written answers) are left to the instructor.
    tests = sum(c.metadata["nbgrader"]["points"] for c in nbgrader_cells(instructor(lesson))
                if c.metadata["nbgrader"].get("grade") and not c.metadata["nbgrader"].get("solution"))
    assert (row["status"], float(row["score"]), float(row["max_score"])) == ("graded", tests,
                                                                           max_score(lesson)), row["reason"]
    assert row["reason"].startswith("all tests passed")
    ran = nbformat.read(batch["course"] / "autograded" / "teacher" / lesson / f"{lesson}.ipynb", as_version=4)
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(ran.cells) if c.cell_type == "code"
              for o in c.outputs if o.get("output_type") == "error"]
    assert errors == [], f"cells raised: {errors}"
    assert all(c.execution_count for c in ran.cells if c.cell_type == "code" and c.source.strip())


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_untouched_student_version_scores_zero(batch, lesson):
    row = batch["rows"][("untouched", lesson)]
    assert (row["status"], row["score"]) == ("graded", "0"), row["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_student_versions_are_up_to_date(batch, lesson):
    """lessons/ must be what `idivkit-grade build` makes of course/source now."""
    committed = ROOT / "lessons" / f"{lesson}.ipynb"
    assert committed.is_file(), f"lessons/{lesson}.ipynb is missing: run `idivkit-grade build`"
    fresh = nbformat.read(Path(batch["lessons_dir"]) / f"{lesson}.ipynb", as_version=4)
    mine = nbformat.read(committed, as_version=4)

    def essence(nb):  # what a learner sees and nbgrader checks; ids and run state are volatile
        return [(c.cell_type, c.source, c.metadata.get("nbgrader"), c.get("outputs", []))
                for c in nb.cells]

    assert essence(mine) == essence(fresh), (
        f"lessons/{lesson}.ipynb is out of date: run `idivkit-grade build {lesson}`")
    assert mine.metadata.get("kernelspec") == fresh.metadata.get("kernelspec")
    text = committed.read_text(encoding="utf-8")
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text
