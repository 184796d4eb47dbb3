"""How long each lesson takes to run, how much memory it needs, and how long grading takes.

1. Every instructor notebook in course/source runs top to bottom in a fresh kernel (nbclient);
   a thread samples the RSS of the kernel's process tree (psutil) every 20 ms.
2. One complete submission (the instructor versions of all lessons, one student) is
   autograded by ``idivkit-grade``'s pipeline in a temporary copy of course/.

Targets (the course runs on Binder's small machines): each lesson < 120 s and < 1 GiB;
autograding one complete submission < 60 s. Ratios below 1 meet them.

    python benchmarks/bench_lessons.py [--lessons 00_welcome ...] [--no-autograde]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.course import Course, copy_course  # noqa: E402
from autograder.grade import grade  # noqa: E402

LESSON_TIME_S, LESSON_MEMORY_MB, AUTOGRADE_S = 120.0, 1024.0, 60.0
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"


class TreeSampler(threading.Thread):
    """Peak RSS (MiB) of a process and all its descendants, sampled until stopped."""

    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.root, self.interval, self.peak_mb = psutil.Process(pid), interval, 0.0
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                rss = 0
                for proc in procs:
                    try:
                        rss += proc.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak_mb = max(self.peak_mb, rss / 2**20)
            except psutil.Error:
                return
            time.sleep(self.interval)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak_mb


def run_lesson(path: Path) -> tuple[float, float, int]:
    """(wall seconds, peak MiB, cells that raised) for one notebook in a fresh kernel."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as work:
        client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": work}})
        start = time.perf_counter()
        with client.setup_kernel():
            sampler = TreeSampler(client.km.provisioner.pid)
            sampler.start()
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            peak = sampler.stop()
        wall = time.perf_counter() - start
    errors = sum(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    return wall, peak, errors


def autograde_complete_submission(lessons: list[str]) -> tuple[float, dict[str, str]]:
    """Seconds to autograde one student's notebooks of ``lessons`` (release done beforehand)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        course = Course(copy_course(ROOT / "course", tmp / "course"))
        for lesson in lessons:
            course.ensure_released(lesson)
            nb = nbformat.read(course.source_notebook(lesson), as_version=4)
            target = tmp / "submissions" / "bench_student" / f"{lesson}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)
        start = time.perf_counter()
        rows, _ = grade(course, tmp / "submissions", lessons, feedback=False, progress=False)
        elapsed = time.perf_counter() - start
    return elapsed, {r.lesson: f"{r.score:g}/{r.max_score:g} {r.status}" for r in rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", nargs="*", default=None)
    parser.add_argument("--no-autograde", action="store_true")
    args = parser.parse_args(argv)
    if "IDIVKIT_MNIST" not in os.environ and SHARED_MNIST.exists():
        os.environ["IDIVKIT_MNIST"] = str(SHARED_MNIST)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    course = Course(ROOT / "course")
    lessons = course.check_lessons(args.lessons)
    print(f"{os.cpu_count()} CPU(s) visible; targets: lesson < {LESSON_TIME_S:.0f} s and "
          f"< {LESSON_MEMORY_MB:.0f} MiB, autograding one complete submission < {AUTOGRADE_S:.0f} s")
    print(f"{'lesson':22s} {'wall s':>8s} {'/target':>8s} {'peak MiB':>9s} {'/target':>8s} {'errors':>7s}")
    worst = 0.0
    for lesson in lessons:
        wall, peak, errors = run_lesson(course.source_notebook(lesson))
        worst = max(worst, wall / LESSON_TIME_S, peak / LESSON_MEMORY_MB)
        print(f"{lesson:22s} {wall:8.1f} {wall / LESSON_TIME_S:8.2f} {peak:9.0f} "
              f"{peak / LESSON_MEMORY_MB:8.2f} {errors:7d}", flush=True)
    if not args.no_autograde:
        elapsed, scores = autograde_complete_submission(lessons)
        worst = max(worst, elapsed / AUTOGRADE_S)
        print(f"autograding one complete submission ({len(lessons)} notebooks): {elapsed:.1f} s, "
              f"ratio {elapsed / AUTOGRADE_S:.2f}")
        for lesson, score in scores.items():
            print(f"  {lesson:22s} {score}")
    print(f"worst ratio {worst:.2f} ({'meets' if worst <= 1 else 'MISSES'} the targets)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
