"""How long each lesson takes to run, how much memory it needs, and how long grading takes.

1. Every instructor notebook in course/source runs top to bottom in a fresh kernel (nbclient)
   of the course's environment alone (``.venv-course``, as Binder installs it); a thread
   samples the RSS of the kernel's process tree (psutil) every 20 ms.
2. One complete submission (the instructor versions of all lessons, one student) is
   autograded by ``idivkit-grade``'s pipeline in a temporary copy of course/.
3. The whole course as a learner goes through it on Binder: JupyterLab started by scripts/lab.sh
   (the learner settings) over a learner's copy of the course, driven by headless Chromium
   (tests/browser_support.py); every lesson in order, solutions pasted in, opened from the file
   browser, Run All, Validate, tab closed. A thread samples the PSS (shared pages counted once,
   as the kernel OOM accounting of a container sees it) of JupyterLab and all its kernels every
   0.5 s; the peak of each step and of the whole run are printed.

Targets (the course runs on Binder's small machines, 2 GB): each lesson < 120 s and < 1 GiB;
autograding one complete submission < 60 s; the whole course in JupyterLab < 1.5 GB.
Ratios below 1 meet them.

    python benchmarks/bench_lessons.py [--lessons 00_welcome ...] [--no-autograde] [--no-course-run]
    python benchmarks/bench_lessons.py --only-course-run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # browser_support: the learner's copy, JupyterLab, memory

from autograder.course import Course, copy_course  # noqa: E402
from autograder.grade import grade  # noqa: E402

LESSON_TIME_S, LESSON_MEMORY_MB, AUTOGRADE_S = 120.0, 1024.0, 60.0
COURSE_PSS_MB = 1500.0  # 1.5 GB (10^6 bytes), for JupyterLab and all its kernels
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


def course_kernel(where: Path) -> KernelManager:
    """A kernel manager whose kernels run in the course's environment alone (``.venv-course``,
    as Binder installs it: tests/browser_support.py), whatever environment runs this script."""
    from browser_support import course_venv

    spec = where / "kernels" / "course"
    spec.mkdir(parents=True)
    python = str(course_venv() / "bin" / "python")
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (the course's environment)", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(spec.parent)])
    return KernelManager(kernel_name="course", kernel_spec_manager=specs)


def run_lesson(path: Path) -> tuple[float, float, int]:
    """(wall seconds, peak MiB, cells that raised) for one notebook in a fresh kernel of the
    course's environment."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as work:
        # The kernel's "running over TCP without encryption" warning is not the lesson's output.
        # The history database in memory, as jupyter_client does for kernels named python3.
        client = NotebookClient(nb, km=course_kernel(Path(work)), timeout=600, allow_errors=True,
                                extra_arguments=["--IPKernelApp.log_level=ERROR",
                                                 "--HistoryManager.hist_file=:memory:"],
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


def course_run(lessons: list[str]) -> tuple[float, dict[str, float], list[str], float]:
    """(peak PSS MB, peak MB per step, lessons during which TensorFlow was imported, seconds)."""
    from playwright.sync_api import sync_playwright

    from browser_support import (JupyterLab, LessonRun, MemoryWatch, find_chromium, launch_chromium,
                                 learner_environment, learner_tree)

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium binary: apt-get install -y chromium (Debian's), or --no-course-run")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tree = learner_tree(tmp / "course", lessons)
        env = learner_environment(tmp / "home")
        with JupyterLab(tree, env, log_path=tmp / "jupyterlab.log") as lab, sync_playwright() as playwright:
            watch = MemoryWatch(lab.pid)
            watch.start()
            context = launch_chromium(playwright, chromium, tmp / "profile")
            try:
                page = context.new_page()
                page.set_default_timeout(120_000)
                run = LessonRun(page, lab, watch)
                watch.mark("JupyterLab started")
                page.goto(lab.url(""), wait_until="domcontentloaded")
                page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
                lab.wait_for_kernels(1, timeout=120)
                run.close("lessons", lessons[0])  # the landing page's untouched lesson 00
                for lesson in lessons:
                    run.open("solved", lesson)
                    run.run_all("solved", lesson)
                    text = run.validate("solved", lesson)
                    if "Success" not in text:
                        print(f"  warning: Validate on {lesson} did not pass: {text[:300]!r}")
                    left = run.close("solved", lesson)
                    if left:
                        print(f"  warning: closing {lesson} left kernels running: {left}")
                watch.mark("all closed")
                time.sleep(1.0)
            finally:
                context.close()
                peak = watch.stop()
    phases = {k.replace("solved/", ""): v for k, v in watch.phase_peaks.items() if k != "start"}
    tensorflow = sorted({p.split("/")[1].split(" ")[0] for p in watch.tensorflow_phases if "/" in p})
    return peak, phases, tensorflow, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", nargs="*", default=None)
    parser.add_argument("--no-autograde", action="store_true")
    parser.add_argument("--no-course-run", action="store_true", help="skip the JupyterLab course run")
    parser.add_argument("--only-course-run", action="store_true", help="only the JupyterLab course run")
    args = parser.parse_args(argv)
    if "IDIVKIT_MNIST" not in os.environ and SHARED_MNIST.exists():
        os.environ["IDIVKIT_MNIST"] = str(SHARED_MNIST)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    course = Course(ROOT / "course")
    lessons = course.check_lessons(args.lessons)
    print(f"{os.cpu_count()} CPU(s) visible; targets: lesson < {LESSON_TIME_S:.0f} s and "
          f"< {LESSON_MEMORY_MB:.0f} MiB, autograding one complete submission < {AUTOGRADE_S:.0f} s, "
          f"the course in JupyterLab < {COURSE_PSS_MB:.0f} MB PSS")
    worst = 0.0
    if not args.only_course_run:
        print(f"{'lesson':22s} {'wall s':>8s} {'/target':>8s} {'peak MiB':>9s} {'/target':>8s} {'errors':>7s}")
    for lesson in [] if args.only_course_run else lessons:
        wall, peak, errors = run_lesson(course.source_notebook(lesson))
        worst = max(worst, wall / LESSON_TIME_S, peak / LESSON_MEMORY_MB)
        print(f"{lesson:22s} {wall:8.1f} {wall / LESSON_TIME_S:8.2f} {peak:9.0f} "
              f"{peak / LESSON_MEMORY_MB:8.2f} {errors:7d}", flush=True)
    if not args.no_autograde and not args.only_course_run:
        elapsed, scores = autograde_complete_submission(lessons)
        worst = max(worst, elapsed / AUTOGRADE_S)
        print(f"autograding one complete submission ({len(lessons)} notebooks): {elapsed:.1f} s, "
              f"ratio {elapsed / AUTOGRADE_S:.2f}")
        for lesson, score in scores.items():
            print(f"  {lesson:22s} {score}")
    if not args.no_course_run:
        built = [lesson for lesson in lessons if (ROOT / "lessons" / f"{lesson}.ipynb").is_file()]
        if built != lessons:
            print(f"  note: no student version in lessons/ for {sorted(set(lessons) - set(built))} "
                  "(run idivkit-grade build): left out of the course run")
        landing = "00_welcome"  # JupyterLab opens it first (jupyter/learner/): the run starts there
        if built and built[0] != landing:
            built = [landing] + [lesson for lesson in built if lesson != landing]
            print(f"  note: {landing} is JupyterLab's landing page: the course run starts with it")
        peak, phases, tensorflow, seconds = course_run(built)
        lessons = built
        worst = max(worst, peak / COURSE_PSS_MB)
        print(f"the course in JupyterLab ({len(lessons)} lessons in order, solved, Validate on each, "
              f"tabs closed), {seconds:.0f} s; PSS of JupyterLab + kernels, peak MB per step:")
        for phase, value in phases.items():
            print(f"  {phase:40s} {value:7.0f}")
        print(f"peak {peak:.0f} MB, ratio {peak / COURSE_PSS_MB:.2f}; TensorFlow imported in: "
              f"{', '.join(tensorflow) or 'no lesson'}")
    print(f"worst ratio {worst:.2f} ({'meets' if worst <= 1 else 'MISSES'} the targets)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
