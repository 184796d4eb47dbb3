"""Autograde what ``nbgrader collect`` put in a course folder (a JupyterHub class).

On a hub, nbgrader's exchange already placed every submission as
``submitted/<student>/<lesson>/<lesson>.ipynb`` (with its ``timestamp.txt``). This grades them
where they are -- nothing is moved or repaired, nbgrader's own steps restore locked and test
cells -- with the same sandboxed Execute step as ``nbgrader autograde`` and, with ``jobs`` > 1,
several submissions at once (:mod:`autograder.parallel`). One CSV row per submission.
"""

from __future__ import annotations

import nbformat
from tqdm.auto import tqdm

from .course import Course, CourseError
from .grade import Row, check_jobs, grading_failed, require_sandbox, score
from .submissions import Submission


def collected(course: Course, lesson: str) -> list[Submission]:
    """The collected submissions of ``lesson``, by student."""
    subs = []
    for path in sorted((course.root / "submitted").glob(f"*/{lesson}/{lesson}.ipynb")):
        student = path.parent.parent.name
        try:
            notebook = nbformat.read(path, as_version=4)
        except Exception as error:  # noqa: BLE001  (reported in its row)
            notebook, why = None, f"not a valid notebook ({type(error).__name__})"
        else:
            why = ""
        subs.append(Submission(path=str(path.relative_to(course.root)), student=student, lesson=lesson,
                               notebook=notebook, error=why))
    return subs


def grade_collected(course: Course, lesson: str, *, jobs: int = 1, feedback: bool = False,
                    progress: bool = True) -> list[Row]:
    """Autograde every collected submission of ``lesson``; rows sorted by student."""
    jobs = check_jobs(jobs)
    require_sandbox(course)
    lesson = course.check_lessons([lesson])[0]
    subs = collected(course, lesson)
    if not subs:
        raise CourseError(f"nothing collected for {lesson} in {course.root / 'submitted'}: collect it first")
    course.ensure_released(lesson)
    with course.gradebook() as gb:
        max_score = float(gb.find_assignment(lesson).max_score)
    rows = [Row(s.student, lesson, 0.0, max_score, "error", s.error, s.path) for s in subs if s.error]
    todo = [(s, [], max_score) for s in subs if not s.error]
    if jobs > 1 and len(todo) > 1:
        from .parallel import grade_placed

        rows += grade_placed(course, todo, feedback=feedback, jobs=jobs, progress=progress)
    else:
        for sub, notes, top in tqdm(todo, desc="autograding", unit="notebook", disable=not progress):
            try:
                rows.append(score(course, sub, notes, top, feedback))
            except Exception as error:  # never let one submission stop the batch
                rows.append(grading_failed(sub, error))
    return sorted(rows, key=lambda r: r.student)
