"""Grade many submissions at once: worker processes execute, this process keeps the gradebook.

Executing a submission (learner cells in the sandbox, tests in the grader) is almost all of the
time it takes to grade it, and it needs nothing shared. So ``grade --jobs N`` works in two parts:

* this process places each submission, applies nbgrader's sanitizing steps (the Autograde
  converter's ``sanitize_preprocessors``: clear outputs, restore locked and test cells from the
  gradebook, ...) to get exactly the notebook nbgrader would execute, and hands it to one of N
  worker processes, which runs :class:`~autograder.execute.SandboxedExecute` on it and sends
  the executed notebook back;
* this process then runs nbgrader's autograde as usual, with :class:`ReplayExecute` in place of
  the Execute step: it puts the worker's outputs back into the cells instead of running them,
  so nbgrader scores, writes the gradebook and the feedback exactly as for a submission
  executed here, and one process alone writes the gradebook.

A worker that fails or dies costs nothing: its submission is executed again in this process
(and the batch says so).
Workers are started with ``spawn`` (no copy of this process's open gradebook): a script that
calls ``grade(..., jobs=N)`` needs the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

import nbformat
from tqdm.auto import tqdm

from .course import Course, CourseError, quiet_nbgrader
from .execute import SandboxedExecute
from .grade import Row, default_jobs, grading_failed, place, score
from .sandbox import thread_variables
from .submissions import Submission

_EXECUTE = "autograder.execute.SandboxedExecute"
_REPLAY = "autograder.parallel.ReplayExecute"


class ReplayExecute(SandboxedExecute):
    """The Execute step of a submission a worker has executed: its outputs, put back.

    ``executed`` maps (student, lesson) to the worker's executed notebook. When the cells no
    longer match it (they always should: both sides ran the same nbgrader steps before), the
    submission is executed here instead, so a grade never depends on the replay.
    """

    executed: dict[tuple[str, str], nbformat.NotebookNode] = {}

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        done = self.executed.pop((info["student"], info["assignment"]), None)
        cells = [c for c in nb.cells if c.cell_type == "code"]
        ran = [c for c in done.cells if c.cell_type == "code"] if done is not None else []
        if done is None or [c.source for c in cells] != [c.source for c in ran]:
            if done is not None:
                tqdm.write(f"idivkit-grade: {info['student']}/{info['assignment']}: the executed cells do "
                           "not match the submission's; executed again here", file=sys.stderr)
            return super().preprocess(nb, resources)
        for cell, executed in zip(cells, ran):
            cell.outputs = executed.outputs
            cell.execution_count = executed.execution_count
        return nb, resources


def replay_api(course: Course):
    """An ``NbGraderAPI`` for ``course`` whose autograde replays outputs (see ReplayExecute)."""
    from nbgrader.apps import NbGraderAPI

    config = course.config()
    steps = list(config.Autograde.autograde_preprocessors)
    if _EXECUTE not in steps:
        raise CourseError(f"{course.root / 'nbgrader_config.py'} does not autograde with {_EXECUTE}: "
                          "grade with --jobs 1, or restore Autograde.autograde_preprocessors")
    config.Autograde.autograde_preprocessors = [_REPLAY if s == _EXECUTE else s for s in steps]
    quiet_nbgrader()
    return NbGraderAPI(config=config)


def sanitized(course: Course, config, student: str, lesson: str):
    """The placed submission as nbgrader's Autograde will execute it (its sanitizing steps)."""
    from nbgrader.converters import Autograde
    from traitlets.utils.importstring import import_item

    steps = config.Autograde.get("sanitize_preprocessors") or Autograde.class_traits()["sanitize_preprocessors"].default()
    nb = nbformat.read(course.submitted_notebook(student, lesson), as_version=4)
    resources = {"nbgrader": {"student": student, "assignment": lesson, "notebook": lesson,
                              "db_url": config.CourseDirectory.db_url}}
    for step in steps:
        step = import_item(step) if isinstance(step, str) else step
        nb, resources = step(config=config)(nb, resources)
    return nb


# -- the worker side -------------------------------------------------------------------------
_WORKER: dict = {}


def _start_worker(root: str, settings: dict, threads: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["NBGRADER_EXECUTION"] = "autograde"  # as nbgrader's Autograde sets it
    config = Course(root, **settings).config()
    config.SandboxedExecute.threads = threads
    _WORKER["execute"] = SandboxedExecute(config=config)


@contextlib.contextmanager
def _threads_of_children(threads: int):
    """Workers (and their numpy, which reads these at import) inherit this environment."""
    saved = dict(os.environ)
    os.environ.update(thread_variables(threads))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _execute(student: str, lesson: str, notebook) -> nbformat.NotebookNode:
    """Run one sanitized submission (learner cells sandboxed, tests here); the executed notebook."""
    resources = {"nbgrader": {"student": student, "assignment": lesson, "notebook": lesson}}
    nb, _ = _WORKER["execute"](nbformat.from_dict(notebook), resources)
    return nb


# -- this process ----------------------------------------------------------------------------
def grade_parallel(course: Course, todo: list[Submission], *, feedback: bool, jobs: int,
                   progress: bool) -> list[Row]:
    """Grade ``todo`` with ``jobs`` worker processes; one row per submission, as
    :func:`autograder.grade.autograde_one` would give it."""
    rows, placed = [], []
    for sub in todo:
        try:
            placed.append((sub, *place(course, sub)))
        except Exception as error:  # never let one submission stop the batch
            rows.append(grading_failed(sub, error))
    return rows + grade_placed(course, placed, feedback=feedback, jobs=jobs, progress=progress)


def grade_placed(course: Course, placed: list, *, feedback: bool, jobs: int, progress: bool) -> list[Row]:
    """Grade submissions already in ``submitted/``: ``placed`` holds ``(submission, notes,
    max_score)``; one row each."""
    rows = []
    if not placed:
        return rows
    jobs = min(jobs, len(placed))
    settings = dict(timeout=course.timeout, notebook_timeout=course.notebook_timeout, sandbox=course.sandbox)
    api, config = replay_api(course), course.config()
    # Each job gets its share of the cores: more threads than cores only makes them wait on
    # each other (OpenBLAS spins while it waits).
    threads = max(1, default_jobs() // jobs)
    context = multiprocessing.get_context("spawn")  # no copy of this process's open gradebook
    bar = tqdm(total=len(placed), desc=f"autograding ({jobs} jobs)", unit="notebook", disable=not progress)
    with _threads_of_children(threads), ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_start_worker,
            initargs=(str(course.root), settings, threads)) as pool:
        futures = {}
        for sub, notes, top in placed:
            try:
                future = pool.submit(_execute, sub.student, sub.lesson, sanitized(course, config, sub.student, sub.lesson))
            except Exception as error:  # noqa: BLE001  (graded here instead)
                future = _failed(error)
            futures[future] = (sub, notes, top)
        try:
            for future in as_completed(futures):
                sub, notes, top = futures[future]
                rows.append(_finish(course, api, future, sub, notes, top, feedback))
                bar.update()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
    return rows


def _failed(error):
    from concurrent.futures import Future

    future = Future()
    future.set_exception(error)
    return future


def _finish(course, api, future, sub, notes, max_score, feedback) -> Row:
    try:
        ReplayExecute.executed[(sub.student, sub.lesson)] = future.result()
    except Exception as error:  # the worker died or raised: executed here instead
        tqdm.write(f"idivkit-grade: {sub.path}: the grading job failed ({type(error).__name__}: "
                   f"{str(error)[:200]}); graded in the main process instead", file=sys.stderr)
        api = None
    try:
        return score(course, sub, notes, max_score, feedback, api=api)
    except Exception as error:  # never let one submission stop the batch
        return grading_failed(sub, error)
    finally:
        ReplayExecute.executed.pop((sub.student, sub.lesson), None)
