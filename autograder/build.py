"""Generate the student versions (``nbgrader generate_assignment``) and copy them to lessons/."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from .course import Course, student_version


def build(course: Course, lessons=None, *, lessons_out: Path | str | None = "default",
          progress: bool = True) -> list[Path]:
    """Release each lesson and copy its student version to ``lessons_out/<NN_name>.ipynb``.

    ``lessons`` None or empty means every lesson in ``course/source``. ``lessons_out``
    defaults to ``lessons/`` beside the course folder; with ``None`` the student versions stay
    in ``course/release`` only. Returns the
    written files (the release notebooks when nothing is copied).
    """
    written = []
    if lessons_out == "default":
        lessons_out = course.lessons_out
    for lesson in tqdm(course.check_lessons(lessons), desc="building", unit="lesson", disable=not progress):
        release = course.release(lesson)
        if lessons_out is None:
            written.append(release)
        else:
            written.append(student_version(release, Path(lessons_out) / f"{lesson}.ipynb"))
    return written
