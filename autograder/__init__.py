"""The course's grading pipeline: build the student versions, autograde batches of
submissions with nbgrader, write feedback and a CSV of grades.

Command line: ``idivkit-grade`` or ``python -m autograder`` (see :mod:`autograder.cli`).
Python: :class:`autograder.course.Course`, :func:`autograder.grade.grade`,
:func:`autograder.build.build`.
"""

from .build import build
from .course import Course, CourseError
from .grade import Row, export, grade, write_csv

__all__ = ["Course", "CourseError", "Row", "build", "export", "grade", "write_csv"]
