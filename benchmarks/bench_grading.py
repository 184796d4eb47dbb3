"""Grading throughput: ``idivkit-grade grade`` with 1 job and with N jobs on the same batch.

The batch is a class: ``--students`` complete submissions of every lesson (the instructor
versions: every test runs to the end, the slowest case), graded in two fresh copies of the
built course, once with ``--jobs 1`` and once with ``--jobs N`` (default: one per CPU core). It
prints each run's time, the time per complete submission (all lessons of one student), the
notebooks per minute, how many cores the machine kept busy on average (all processes, the
sandboxes included: a figure above 1 with one job means a single grading already runs in
parallel), the ratio of the two, and whether both runs gave exactly the same CSV.

Target: N = 2 at least 1.7x one job on a 2-core machine.

    python benchmarks/bench_grading.py [--students 2] [--jobs 2] [--lessons 00_welcome ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.build import build  # noqa: E402
from autograder.course import Course, copy_course  # noqa: E402
from autograder.grade import default_jobs, grade, write_csv  # noqa: E402

SPEEDUP_TARGET = 1.7
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"


def _class_batch(course: Course, lessons: list[str], students: int, folder: Path) -> Path:
    for k in range(students):
        for lesson in lessons:
            nb = nbformat.read(course.source_notebook(lesson), as_version=4)
            target = folder / f"student{k:03d}" / f"{lesson}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)
    return folder


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (all processes: the sandboxes too)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _timed_grade(built: Path, copy: Path, batch: Path, jobs: int) -> tuple[float, float, Path]:
    """(wall seconds, cores busy on average, CSV) of grading ``batch`` in a copy of ``built``."""
    shutil.copytree(built, copy, symlinks=True)
    course = Course(copy)
    start, busy = time.perf_counter(), _busy_seconds()
    rows, _ = grade(course, batch, feedback=True, progress=True, jobs=jobs)
    seconds = time.perf_counter() - start
    return seconds, (_busy_seconds() - busy) / seconds, write_csv(rows, copy / "grades.csv")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=2, help="complete submissions in the batch (default 2)")
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="jobs of the parallel run (default: cores)")
    parser.add_argument("--lessons", nargs="*", default=None, help="lessons (default: all)")
    parser.add_argument("--mnist", type=Path, default=None, help="mnist.npz (default $IDIVKIT_MNIST)")
    args = parser.parse_args(argv)
    if args.students < 1 or args.jobs < 2:
        parser.error("--students must be >= 1 and --jobs >= 2")
    mnist = args.mnist or os.environ.get("IDIVKIT_MNIST") or (SHARED_MNIST if SHARED_MNIST.is_file() else None)
    if mnist:
        os.environ["IDIVKIT_MNIST"] = str(Path(mnist).resolve())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        built = copy_course(ROOT / "course", tmp / "built")
        course = Course(built)
        lessons = course.check_lessons(args.lessons)
        list(build(course, lessons, lessons_out=tmp / "lessons", progress=False))
        batch = _class_batch(course, lessons, args.students, tmp / "batch")
        n = args.students * len(lessons)
        print(f"batch: {args.students} student(s) x {len(lessons)} lesson(s) = {n} notebooks; "
              f"{os.cpu_count()} CPU core(s)")
        one, busy_one, csv_one = _timed_grade(built, tmp / "one", batch, 1)
        many, busy_many, csv_many = _timed_grade(built, tmp / "many", batch, args.jobs)
        same = csv_one.read_text(encoding="utf-8") == csv_many.read_text(encoding="utf-8")

    print()
    print("| jobs | seconds | s per complete submission | notebooks per minute | cores busy (machine) |")
    print("|---|---|---|---|---|")
    for jobs, seconds, busy in ((1, one, busy_one), (args.jobs, many, busy_many)):
        print(f"| {jobs} | {seconds:.1f} | {seconds / args.students:.1f} | {60 * n / seconds:.1f} | {busy:.2f} |")
    ratio = one / many
    print()
    print(f"speed-up with {args.jobs} jobs: {ratio:.2f}x (target >= {SPEEDUP_TARGET}x on 2 cores: "
          f"{'met' if ratio >= SPEEDUP_TARGET else 'NOT met'})")
    print(f"identical grades (CSV, reasons included): {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
