"""Grade a batch of submissions with nbgrader; one CSV row per (student, lesson).

Steps: find the notebooks (:mod:`autograder.submissions`), repair their graded cells against
the student version, which holds no solutions (:mod:`autograder.repair`: deleted, duplicated,
retyped or unlabelled cells; nbgrader then puts the instructor's test code, hidden tests
included, back into every test cell), place each notebook where ``nbgrader collect`` would
(``submitted/<student>/<lesson>/<lesson>.ipynb``), run ``nbgrader autograde`` -- whose Execute
step is :class:`autograder.execute.SandboxedExecute`: learner cells in a bubblewrap sandbox,
test cells in this process -- and ``generate_feedback`` (hidden tests cleared) per submission
through :class:`nbgrader.apps.NbGraderAPI`, and read the scores back from the gradebook, which
only this process writes. A broken submission gets a row with a score and a reason; the batch
always goes on.

Why the placement is done here rather than by nbgrader: ``nbgrader collect`` reads a
JupyterHub exchange, which this course (Binder, no hub) does not have; ``nbgrader zip_collect``
takes one assignment at a time from ``downloaded/<assignment>/archive`` and maps file names with
one regular expression, so it can neither sort a mixed batch of lessons, nor recognise a
renamed download by its cells, nor report a broken file and carry on.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from .course import Course, CourseError
from .repair import restore_cells
from .sandbox import bwrap
from .submissions import Submission, find_submissions

COLUMNS = ("student", "lesson", "score", "max_score", "status", "reason", "file")


@dataclass
class Row:
    student: str
    lesson: str
    score: float
    max_score: float | None
    status: str  # "graded", "error" or "missing"
    reason: str
    file: str = ""

    def as_dict(self) -> dict:
        return {"student": self.student, "lesson": self.lesson, "score": f"{self.score:g}",
                "max_score": "" if self.max_score is None else f"{self.max_score:g}",
                "status": self.status, "reason": self.reason, "file": self.file}


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


_TIMEOUT_NAMES = {"CellTimeoutError", "KeyboardInterrupt", "TimeoutError", "TestTimeout"}


def _first_line(text: str, limit: int = 160) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text or "").strip()
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def failure_reasons(course: Course, student: str, lesson: str) -> list[str]:
    """Why points were lost: each failing test cell with its error, and cells that timed out."""
    path = course.autograded_notebook(student, lesson)
    if not path.is_file():
        return []
    nb = nbformat.read(path, as_version=4)
    with course.gradebook() as gb:
        grades = {g.name: (float(g.score or 0), float(g.max_score or 0))
                  for g in gb.find_submission_notebook(lesson, lesson, student).grades}
    timeout = course.config().SandboxedExecute.timeout
    reasons = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        grade_id = _grade_id(cell) or f"cell {index}"
        timed_out = any(o.get("ename") in _TIMEOUT_NAMES for o in errors)
        if timed_out and any(str(o.get("evalue", "")).startswith("not run") for o in errors):
            if max(grades.get(_grade_id(cell) or "", (0.0, 0.0))):
                reasons.append(f"{grade_id}: not run (the notebook used up its time)")
            continue
        if timed_out:
            reasons.append(f"{grade_id}: timed out (each cell has {timeout} s)")
            continue
        if any(o.get("ename") == "DeadKernelError" for o in errors):
            reasons.append(f"{grade_id}: the notebook's process died here (a crash, os._exit or out of memory)")
            continue
        score, max_score = grades.get(_grade_id(cell) or "", (0.0, 0.0))
        if max_score and score < max_score:
            error = errors[-1] if errors else None
            why = (f"{error['ename']}: {_first_line(error.get('evalue', ''))}".rstrip(": ")
                   if error else "no points")
            reasons.append(f"{grade_id} ({score:g}/{max_score:g}): {why}")
    return reasons


def _crash_reason(result: dict) -> str:
    text = (result.get("log") or "") + (result.get("error") or "")
    if "DeadKernelError" in text or "Kernel died" in text:
        return "the kernel died while running the notebook (a crash, os._exit, or out of memory)"
    if "UnresponsiveKernelError" in text or "became unresponsive" in text:
        return "the kernel stopped responding (an endless loop that ignores interrupts?)"
    lines = [l for l in text.splitlines() if l.strip() and not l.startswith("[INFO]")]
    return "nbgrader could not autograde it: " + (_first_line(lines[-1]) if lines else "unknown error")


def require_sandbox(course: Course) -> None:
    """Refuse to grade when the course isolates learners' code and bubblewrap is missing."""
    if course.sandbox and not bwrap():
        raise CourseError("bubblewrap (bwrap) is not installed, so submissions cannot be isolated: "
                          "install it (apt-get install bubblewrap), or pass --no-sandbox to grade "
                          "without isolation (only for submissions you trust)")


def default_jobs() -> int:
    """As many grading jobs as this process may use cores."""
    from idivkit._system import usable_cores

    return usable_cores()


def check_jobs(jobs) -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise CourseError(f"jobs must be a whole number of at least 1, got {jobs!r}")
    return jobs


def _sa_warning():
    from sqlalchemy.exc import SAWarning

    return SAWarning


def place(course: Course, sub: Submission) -> tuple[list[str], float | None]:
    """Repair ``sub`` and put it where ``nbgrader collect`` would; clear its earlier grade.

    Returns the notes on what was repaired and the lesson's maximum score.
    """
    lesson, student = sub.lesson, sub.student
    release_nb = nbformat.read(course.release_notebook(lesson), as_version=4)
    source_nb = nbformat.read(course.source_notebook(lesson), as_version=4)
    notes = list(sub.notes) + restore_cells(sub.notebook, release_nb, source_nb)
    target = course.submitted_notebook(student, lesson)
    if target.parent.exists():
        shutil.rmtree(target.parent)
    target.parent.mkdir(parents=True)
    nbformat.write(sub.notebook, target)
    with course.gradebook() as gb:
        gb.update_or_create_student(student)
        max_score = gb.find_assignment(lesson).max_score
        try:  # a fresh start: no grade of an earlier run may survive a failure now
            gb.remove_submission(lesson, student)
        except Exception:
            pass
    return notes, max_score


def score(course: Course, sub: Submission, notes: list[str], max_score, feedback: bool, api=None) -> Row:
    """Autograde a placed submission with nbgrader (``api``: the course's, or one that replays
    outputs executed elsewhere), generate its feedback, and read its row back."""
    api = api or course.api()
    lesson, student = sub.lesson, sub.student
    notes = list(notes)
    with warnings.catch_warnings():  # nbgrader's own SQLAlchemy session warnings: not ours
        warnings.simplefilter("ignore", category=_sa_warning())
        result = api.autograde(lesson, student, force=True, create=True)
    if not result.get("success"):
        return Row(student, lesson, 0.0, max_score, "error", "; ".join(notes + [_crash_reason(result)]),
                   sub.path)
    with course.gradebook() as gb:
        submission = gb.find_submission(lesson, student)
        score, max_score = float(submission.score), float(submission.max_score)
        # Written answers (nbgrader manual cells) wait for the instructor: not lost points.
        pending = [(g.name, float(g.max_score)) for nb in submission.notebooks for g in nb.grades
                   if g.needs_manual_grade]
    reasons = failure_reasons(course, student, lesson)
    if feedback:
        fb = api.generate_feedback(lesson, student, force=True)
        if not fb.get("success"):
            notes.append("feedback could not be generated")
    if not reasons:
        reasons = ["all tests passed"]
    if pending:
        reasons.append(f"awaiting manual grading: {', '.join(name for name, _ in pending)} "
                       f"({sum(points for _, points in pending):g} point(s) to grade by hand)")
    return Row(student, lesson, score, max_score, "graded", "; ".join(notes + reasons), sub.path)


def autograde_one(course: Course, sub: Submission, feedback: bool) -> Row:
    """Place, autograde and (optionally) generate feedback for one submission, in this process."""
    notes, max_score = place(course, sub)
    return score(course, sub, notes, max_score, feedback)


def grading_failed(sub: Submission, error: BaseException) -> Row:
    """The row of a submission whose grading raised: a score of zero and the reason."""
    return Row(sub.student, sub.lesson, 0.0, None, "error",
               "; ".join(sub.notes + [f"grading failed: {type(error).__name__}: "
                                      f"{_first_line(str(error))}"]), sub.path)


def grade(course: Course, source: Path | str, lessons=None, *, feedback: bool = True,
          progress: bool = True, jobs: int = 1) -> tuple[list[Row], list[tuple[str, str]]]:
    """Grade every submission under ``source`` (a folder or a .zip).

    ``jobs`` submissions are executed at once (:mod:`autograder.parallel`); the grades are the
    same for any number. Returns the CSV rows (sorted by student, lesson) and the skipped files
    ``(path, why)``. Refuses to run without bubblewrap unless the course was opened with
    ``sandbox=False``.
    """
    jobs = check_jobs(jobs)
    require_sandbox(course)
    all_lessons = course.lessons()
    wanted = course.check_lessons(lessons)
    grade_ids = {lesson: set(course.grade_ids(lesson)) for lesson in all_lessons}
    found = find_submissions(source, all_lessons, grade_ids)
    skipped = list(found.skipped)
    todo, rows = [], []
    for sub in found.submissions:
        if sub.error:
            with course.gradebook() as gb:
                max_score = _max_score(gb, sub.lesson) if sub.lesson else None
            rows.append(Row(sub.student, sub.lesson, 0.0, max_score, "error",
                            "; ".join(sub.notes + [sub.error]), sub.path))
        elif sub.lesson not in wanted:
            skipped.append((sub.path, f"lesson {sub.lesson} not requested (--lesson)"))
        else:
            todo.append(sub)
    for lesson in sorted({s.lesson for s in todo}):
        course.ensure_released(lesson)
    if jobs > 1 and len(todo) > 1:
        from .parallel import grade_parallel

        rows += grade_parallel(course, todo, feedback=feedback, jobs=jobs, progress=progress)
    else:
        for sub in tqdm(todo, desc="autograding", unit="notebook", disable=not progress):
            try:
                rows.append(autograde_one(course, sub, feedback))
            except Exception as error:  # never let one submission stop the batch
                rows.append(grading_failed(sub, error))
    # A student who handed in some lessons of this batch but not others gets "missing" rows.
    batch_lessons = wanted if lessons else sorted({s.lesson for s in todo})
    students = sorted({r.student for r in rows if r.student})
    have = {(r.student, r.lesson) for r in rows}
    with course.gradebook() as gb:
        for student in students:
            for lesson in batch_lessons:
                if (student, lesson) not in have:
                    max_score = _max_score(gb, lesson)
                    rows.append(Row(student, lesson, 0.0, max_score, "missing", "no submission for this lesson"))
    rows.sort(key=lambda r: (r.student, r.lesson, r.file))
    return rows, skipped


def _max_score(gb, lesson):
    try:
        return float(gb.find_assignment(lesson).max_score)
    except Exception:
        return None


def export(course: Course, lessons=None) -> list[Row]:
    """The grades now in the gradebook, one row per (student, lesson); no grading."""
    wanted = course.check_lessons(lessons)
    rows = []
    with course.gradebook() as gb:
        students = sorted(s.id for s in gb.students)
        for lesson in wanted:
            max_score = _max_score(gb, lesson)
            if max_score is None:
                continue
            for student in students:
                try:
                    submission = gb.find_submission(lesson, student)
                except Exception:
                    rows.append(Row(student, lesson, 0.0, max_score, "missing", "no submission for this lesson"))
                    continue
                graded = course.autograded_notebook(student, lesson).is_file()
                rows.append(Row(student, lesson, float(submission.score or 0), max_score,
                                "graded" if graded else "error",
                                "" if graded else "autograding failed (see the grade run's CSV)"))
    return rows


def write_csv(rows: list[Row], out: Path | str) -> Path:
    """Write the rows to ``out`` all at once (a temporary file renamed): never a partial CSV.

    A target that exists and is not a regular file (``/dev/null``, a pipe) is written into,
    never replaced.
    """
    out = Path(out)
    if out.exists() and not out.is_file():
        if out.is_dir():
            raise CourseError(f"--out {out} is a folder: give the CSV file's name")
        with open(out, "w", newline="", encoding="utf-8", errors="backslashreplace") as handle:
            _write_rows(handle, rows)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace") as handle:
        _write_rows(handle, rows)
    os.replace(tmp, out)
    return out


def _write_rows(handle, rows) -> None:
    writer = csv.DictWriter(handle, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_dict())


def generate_feedback(course: Course, lessons=None, *, progress: bool = True) -> list[Path]:
    """HTML feedback for every autograded submission of ``lessons``; returns the files."""
    api = course.api()
    files = []
    pairs = [(p.parent.parent.name, p.parent.name) for p in sorted((course.root / "autograded").glob("*/*/*.ipynb"))
             if p.parent.name in course.check_lessons(lessons)]
    for student, lesson in tqdm(pairs, desc="feedback", unit="notebook", disable=not progress):
        if api.generate_feedback(lesson, student, force=True).get("success"):
            files.append(course.feedback_html(student, lesson))
    return files
