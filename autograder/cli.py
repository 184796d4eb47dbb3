"""``idivkit-grade``: build the student versions and grade submissions with nbgrader.

Typical use, from the repository root::

    idivkit-grade build                                # all lessons -> course/release, lessons/
    idivkit-grade grade submissions.zip --out grades.csv          # one job per CPU core
    idivkit-grade grade submissions.zip --jobs 8 --out grades.csv
    idivkit-grade grade submissions/ --lesson 01_autoencoder --out grades-01.csv
    idivkit-grade autograde 00_welcome                 # on a hub: what nbgrader collect gathered
    idivkit-grade feedback                             # (again) HTML feedback for everyone
    idivkit-grade export --out grades.csv              # the gradebook as CSV, no grading

Accepted submission layouts (folder or .zip): ``<student>/<NN_name>.ipynb``,
``<student>/<NN_name>/<NN_name>.ipynb``, ``<NN_name>/<student>.ipynb`` or flat
``<student>__<NN_name>.ipynb``; names such as
``01_autoencoder (1).ipynb`` (browser / Binder downloads) are accepted. The CSV has one row per
(student, lesson): score, max_score, status (graded / error / missing) and a reason.

Learners' code runs in a bubblewrap sandbox (no network, no course folder, limits on time,
memory and processes); the tests run in the grader on plain data. Without bubblewrap, `grade`
refuses to run unless --no-sandbox is given.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .course import Course, CourseError


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course", type=Path, default=None,
                        help="course folder with nbgrader_config.py (default: ./course if there is "
                             "one, else the repository's course/)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")

    parser = argparse.ArgumentParser(prog="idivkit-grade", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", parents=[common], help="generate the student versions into lessons/")
    p.add_argument("lessons", nargs="*", metavar="LESSON", help="lessons to build (default: all)")
    p.add_argument("--lessons-dir", type=Path, default=None,
                   help="where the student versions go (default: lessons/ beside the course folder)")

    p = sub.add_parser("grade", parents=[common], help="autograde a folder or .zip of submissions")
    p.add_argument("submissions", type=Path, help="a folder or a .zip of notebooks")
    p.add_argument("--lesson", action="append", default=[], metavar="LESSON",
                   help="grade only this lesson (repeatable; default: every lesson found)")
    p.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV of grades (default grades.csv)")
    p.add_argument("--timeout", type=int, default=None,
                   help="seconds each cell may run (default: nbgrader_config.py, 120)")
    p.add_argument("--notebook-timeout", type=int, default=None,
                   help="seconds a whole notebook may run (default: nbgrader_config.py, 1800)")
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="submissions graded at once, each in its own sandbox (default: one per "
                        "CPU core; the grades are the same for any N)")
    p.add_argument("--no-feedback", action="store_true", help="skip the HTML feedback")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run learners' code WITHOUT isolation when bubblewrap is missing (only for "
                        "submissions you trust: a notebook could then change grades and files)")

    p = sub.add_parser("autograde", parents=[common],
                       help="autograde what nbgrader collect put in submitted/ (a JupyterHub class)")
    p.add_argument("lesson", metavar="LESSON", help="the collected lesson, e.g. 00_welcome")
    p.add_argument("--out", type=Path, default=None,
                   help="CSV of grades (default: grades-LESSON.csv in the course folder)")
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="submissions graded at once (default: one per CPU core)")
    p.add_argument("--timeout", type=int, default=None, help="seconds each cell may run")
    p.add_argument("--notebook-timeout", type=int, default=None, help="seconds a whole notebook may run")

    p = sub.add_parser("feedback", parents=[common], help="HTML feedback for the autograded submissions")
    p.add_argument("--lesson", action="append", default=[], metavar="LESSON")

    p = sub.add_parser("export", parents=[common], help="write the gradebook's grades as CSV")
    p.add_argument("--lesson", action="append", default=[], metavar="LESSON")
    p.add_argument("--out", type=Path, default=Path("grades.csv"))

    sub.add_parser("lessons", parents=[common], help="list the lessons of the course")
    return parser


def _run(args) -> int:
    from .build import build
    from .grade import default_jobs, export, generate_feedback, grade, write_csv

    course = Course(args.course, timeout=getattr(args, "timeout", None),
                    notebook_timeout=getattr(args, "notebook_timeout", None),
                    sandbox=not getattr(args, "no_sandbox", False))
    progress = not args.quiet
    if args.command == "lessons":
        for lesson in course.lessons():
            print(lesson)
        return 0
    if args.command == "build":
        for path in build(course, args.lessons, lessons_out=args.lessons_dir or course.lessons_out,
                          progress=progress):
            print(f"wrote {path}")
        return 0
    if args.command == "grade":
        if not args.submissions.exists():
            raise CourseError(f"{args.submissions} does not exist (give a folder or a .zip)")
        jobs = default_jobs() if args.jobs is None else args.jobs
        rows, skipped = grade(course, args.submissions, args.lesson, feedback=not args.no_feedback,
                              progress=progress, jobs=jobs)
        out = write_csv(rows, args.out)
        for path, why in skipped:
            print(f"skipped {path}: {why}")
        for row in rows:
            if row.status != "graded":
                print(f"{row.status}: {row.student or '?'} {row.lesson or '?'} ({row.file or '-'}): {row.reason}")
        graded = sum(r.status == "graded" for r in rows)
        print(f"graded {graded} notebook(s), {sum(r.status == 'error' for r in rows)} error(s), "
              f"{sum(r.status == 'missing' for r in rows)} missing, {len(skipped)} skipped file(s)")
        waiting = sum("awaiting manual grading" in r.reason for r in rows)
        if waiting:
            print(f"{waiting} notebook(s) have written answers awaiting manual grading "
                  "(the Formgrader's Manual Grading view; scores rise when you grade them)")
        print(f"grades: {out.resolve()}")
        if graded and not args.no_feedback:
            print(f"feedback: {course.root / 'feedback'}/<student>/<lesson>/<lesson>.html")
        return 0
    if args.command == "autograde":
        from .collected import grade_collected

        jobs = default_jobs() if args.jobs is None else args.jobs
        rows = grade_collected(course, args.lesson, jobs=jobs, progress=progress)
        out = write_csv(rows, args.out or course.root / f"grades-{args.lesson}.csv")
        for row in rows:
            if row.status != "graded":
                print(f"{row.status}: {row.student} ({row.file}): {row.reason}")
        print(f"autograded {sum(r.status == 'graded' for r in rows)} of {len(rows)} collected notebook(s)")
        print(f"grades: {out.resolve()}")
        return 0
    if args.command == "feedback":
        files = generate_feedback(course, args.lesson, progress=progress)
        for path in files:
            print(path)
        print(f"{len(files)} feedback file(s) under {course.root / 'feedback'}")
        return 0
    if args.command == "export":
        out = write_csv(export(course, args.lesson), args.out)
        print(f"grades: {out.resolve()}")
        return 0
    raise AssertionError(args.command)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the kernels inherit it: quieter logs
    try:
        return _run(args)
    except CourseError as error:
        print(f"idivkit-grade: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("idivkit-grade: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
