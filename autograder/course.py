"""The course folder (course/), its lessons, and nbgrader's API configured for it.

A ``Course`` wraps one course folder: the repository's ``course/`` by default, or a copy (the
tests grade in a temporary copy and never touch the real gradebook). Configuration comes from
``<course>/nbgrader_config.py``; ``timeout`` overrides the per-cell execution limit.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]


def _put_scripts_on_path() -> None:
    """nbgrader runs helper programs by name (``alembic`` when it opens a gradebook): make
    this interpreter's scripts folder findable when its virtual environment is not activated
    (``.venv/bin/idivkit-grade ...``, or CI calling ``.venv/bin/python -m pytest``)."""
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if scripts not in path.split(os.pathsep):
        os.environ["PATH"] = scripts + (os.pathsep + path if path else "")


_put_scripts_on_path()


def default_course() -> Path:
    """``./course`` when the working directory has one, else the repository's course/."""
    here = Path.cwd() / "course"
    return here if (here / "nbgrader_config.py").is_file() else REPO_ROOT / "course"


#: Lesson folders are named NN_name (two digits, underscore, lowercase name).
LESSON_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")


class CourseError(RuntimeError):
    """A problem with the course folder or an nbgrader step, explained for the instructor."""


class Course:
    """One nbgrader course folder.

    Parameters
    ----------
    root : path, optional
        The course folder (holds ``nbgrader_config.py`` and ``source/``); default ``course/``.
    timeout : int, optional
        Seconds each cell may run when autograding (default: the config's 120).
    notebook_timeout : int, optional
        Seconds a whole notebook may run when autograding (default: the config's 1800).
    sandbox : bool
        Run learners' code in bubblewrap (default). ``False`` runs it without isolation, for
        an instructor who says so explicitly (``idivkit-grade grade --no-sandbox``).
    """

    def __init__(self, root: Path | str | None = None, *, timeout: int | None = None,
                 notebook_timeout: int | None = None, sandbox: bool = True):
        self.root = Path(root or default_course()).resolve()
        self.timeout = timeout
        self.notebook_timeout = notebook_timeout
        if notebook_timeout is not None and int(notebook_timeout) < 1:
            raise CourseError(f"notebook_timeout must be a positive number of seconds, got {notebook_timeout!r}")
        self.sandbox = bool(sandbox)
        if not (self.root / "nbgrader_config.py").is_file():
            raise CourseError(f"{self.root} is not a course folder: nbgrader_config.py is missing")
        if timeout is not None and int(timeout) < 1:
            raise CourseError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._api = None

    # -- layout --------------------------------------------------------------------------
    @property
    def lessons_out(self) -> Path:
        """Where ``build`` copies the student versions: ``lessons/`` beside the course folder."""
        return self.root.parent / "lessons"

    @property
    def source_dir(self) -> Path:
        return self.root / "source"

    def source_notebook(self, lesson: str) -> Path:
        return self.source_dir / lesson / f"{lesson}.ipynb"

    def release_notebook(self, lesson: str) -> Path:
        return self.root / "release" / lesson / f"{lesson}.ipynb"

    def submitted_notebook(self, student: str, lesson: str) -> Path:
        return self.root / "submitted" / student / lesson / f"{lesson}.ipynb"

    def autograded_notebook(self, student: str, lesson: str) -> Path:
        return self.root / "autograded" / student / lesson / f"{lesson}.ipynb"

    def feedback_html(self, student: str, lesson: str) -> Path:
        return self.root / "feedback" / student / lesson / f"{lesson}.html"

    def lessons(self) -> list[str]:
        """Every lesson in ``source/``: folders ``NN_name`` holding ``NN_name.ipynb``, sorted."""
        if not self.source_dir.is_dir():
            return []
        return sorted(p.name for p in self.source_dir.iterdir()
                      if LESSON_NAME.match(p.name) and self.source_notebook(p.name).is_file())

    def check_lessons(self, lessons) -> list[str]:
        """Validate lesson names given on the command line; None or empty means all."""
        known = self.lessons()
        if not lessons:
            return known
        unknown = [name for name in lessons if name not in known]
        if unknown:
            raise CourseError(f"unknown lesson(s) {', '.join(unknown)}; the course has: {', '.join(known)}")
        return list(dict.fromkeys(lessons))

    # -- nbgrader ------------------------------------------------------------------------
    def config(self):
        """The traitlets Config of ``nbgrader_config.py``, rooted at this folder."""
        from traitlets.config.loader import PyFileConfigLoader

        config = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
        config.CourseDirectory.root = str(self.root)
        config.CourseDirectory.db_url = "sqlite:///" + str(self.root / "gradebook.db")
        config.Exchange.root = str(self.root / "exchange")
        config.SandboxedExecute.source_root = str(self.root / "source")
        config.SandboxedExecute.sandbox = self.sandbox
        if self.timeout is not None:
            config.Execute.timeout = int(self.timeout)
            config.SandboxedExecute.timeout = int(self.timeout)
        if self.notebook_timeout is not None:
            config.SandboxedExecute.notebook_timeout = int(self.notebook_timeout)
        return config

    def api(self):
        """An ``nbgrader.apps.NbGraderAPI`` for this course (created once)."""
        if self._api is None:
            from nbgrader.apps import NbGraderAPI

            quiet_nbgrader()
            self._api = NbGraderAPI(config=self.config())
        return self._api

    def gradebook(self):
        """A new ``nbgrader.api.Gradebook``; use it as a context manager (it closes)."""
        from nbgrader.api import Gradebook

        return Gradebook("sqlite:///" + str(self.root / "gradebook.db"), course_id="idivkit")

    def grade_ids(self, lesson: str) -> list[str]:
        """The nbgrader grade_ids of a lesson's cells (solution and test cells), in order."""
        nb = nbformat.read(self.source_notebook(lesson), as_version=4)
        return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade_id")]

    def release(self, lesson: str) -> Path:
        """``nbgrader db assignment add`` + ``generate_assignment``; returns the student version."""
        with self.gradebook() as gb:
            gb.update_or_create_assignment(lesson)
        result = self.api().generate_assignment(lesson, force=True, create=True)
        if not result.get("success"):
            raise CourseError(f"nbgrader generate_assignment failed for {lesson}:\n"
                              f"{result.get('log', '')}{result.get('error', '')}")
        return self.release_notebook(lesson)

    def ensure_released(self, lesson: str) -> None:
        """Release ``lesson`` unless the gradebook and release/ are already newer than source."""
        release = self.release_notebook(lesson)
        source = self.source_notebook(lesson)
        up_to_date = release.is_file() and release.stat().st_mtime >= source.stat().st_mtime
        if up_to_date:
            with self.gradebook() as gb:
                try:
                    gb.find_notebook(lesson, lesson)
                except Exception:  # MissingEntry: not in this gradebook yet
                    up_to_date = False
        if not up_to_date:
            self.release(lesson)


def quiet_nbgrader() -> None:
    """nbgrader logs every step at INFO; the CLI reports results itself, so keep warnings."""
    logging.getLogger("traitlets").setLevel(logging.WARNING)


def student_version(release_notebook: Path, destination: Path) -> Path:
    """Copy a generated student version to ``destination`` without outputs or run state."""
    nb = nbformat.read(release_notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, destination)
    return destination


def copy_course(root: Path, destination: Path) -> Path:
    """Copy a course's config and sources (nothing generated) to ``destination``; for tests."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(root) / "nbgrader_config.py", destination / "nbgrader_config.py")
    shutil.copytree(Path(root) / "source", destination / "source", dirs_exist_ok=True)
    return destination
