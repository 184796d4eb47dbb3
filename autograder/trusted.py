"""Run a lesson's test cells in the grader (trusted), never in the learner's process.

A test cell uses three kinds of names:

* the course's own (``np``, ``assert_close``, ``lessons``, the MNIST arrays the lesson loads):
  the grader computes them itself from the instructor's notebook, executing only the
  statements the test needs (a backward slice over the instructor's context cells), once per
  lesson, and hands each submission fresh copies;
* the learner's (``beta_divergence``, ``fraction_zero``): fetched from the sandbox as plain data,
  their functions as :class:`~autograder.remote.Proxy` objects that run in the sandbox;
* ``check_independent``: replaced by the static check of :mod:`autograder.integrity`.

So a test's verdict depends only on plain data from the learner: nothing they run can patch
the checks, the comparisons, or the reference values (which never enter the sandbox).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import signal
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np

from .integrity import python_source
from .names import bound_names, loaded_names

def _grade_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_test(cell) -> bool:
    meta = _grade_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


@dataclass
class Statement:
    position: tuple[int, int]  # (cell index, statement index)
    code: object
    binds: set[str]
    reads: set[str]


@dataclass
class TestPlan:
    code: object
    statements: list[int]          # indices into LessonPlan.statements, in order
    learner_names: set[str]        # fetched from the sandbox
    tainted: set[int] = field(default_factory=set)  # statements that read learner names
    exports: set[str] = field(default_factory=set)  # bound by its visible part, read by later cells


class LessonPlan:
    """What each test cell of an instructor notebook needs; built once per lesson."""

    def __init__(self, source_nb):
        self.statements: list[Statement] = []
        self.solution_binds: dict[str, list[int]] = {}
        self.instructor_sources: set[str] = set()
        self.tests: dict[str, TestPlan] = {}
        tests, later_reads = [], []
        for index, cell in enumerate(source_nb.cells):
            if cell.cell_type != "code":
                continue
            meta = _grade_meta(cell)
            tree = ast.parse(python_source(cell.source))
            if is_test(cell):
                visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
                try:
                    shown = {n for stmt in ast.parse(python_source(visible)).body for n in bound_names(stmt)}
                except SyntaxError:
                    shown = set()
                tests.append((meta["grade_id"], index, tree, shown))
                continue
            later_reads.append((index, loaded_names(tree)))
            if meta.get("solution"):
                for stmt in tree.body:
                    for name in bound_names(stmt):
                        self.solution_binds.setdefault(name, []).append(index)
            else:
                self.instructor_sources.add(cell.source)
                for k, stmt in enumerate(tree.body):
                    reads = loaded_names(stmt)
                    if {"get_ipython", "display"} & reads:
                        continue  # magics and widgets: nothing a test needs
                    code = compile(ast.Module([stmt], []), f"<instructor cell {index}>", "exec")
                    self.statements.append(Statement((index, k), code, bound_names(stmt), reads))
        for grade_id, index, tree, shown in tests:
            self.tests[grade_id] = self._slice(tree, index)
            read_later = set().union(*[reads for i, reads in later_reads if i > index])
            self.tests[grade_id].exports = shown & read_later

    def _slice(self, tree, index) -> TestPlan:
        needed, learner, tainted = set(), set(), set()

        def resolve(name, before) -> bool:
            """Find the binding of ``name`` before ``before``; True if it is the learner's."""
            candidates = [i for i, s in enumerate(self.statements) if s.position < before and name in s.binds]
            solution = [c for c in self.solution_binds.get(name, []) if (c, 0) < before]
            if not candidates or (solution and max(solution) > self.statements[candidates[-1]].position[0]):
                learner.add(name)
                return True
            chosen = candidates[-1]
            if chosen not in needed:
                needed.add(chosen)
                if any([resolve(n, self.statements[chosen].position) for n in self.statements[chosen].reads]):
                    tainted.add(chosen)
            return chosen in tainted

        for name in loaded_names(tree):
            resolve(name, (index, 0))
        code = compile(tree, f"<test cell {index}>", "exec")
        return TestPlan(code, sorted(needed), learner, tainted)


def _fresh(value):
    """A copy of the course's data for one submission (arrays copied, code shared)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return value


class PreludeCache:
    """The instructor statements' values, computed once per lesson in the grader."""

    def __init__(self, plan: LessonPlan):
        self.plan, self.namespace, self.values = plan, {"__name__": "__course__"}, {}

    def values_of(self, index: int) -> dict:
        if index not in self.values:
            statement = self.plan.statements[index]
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(statement.code, self.namespace)  # noqa: S102  (the instructor's own code)
            self.values[index] = {n: self.namespace[n] for n in statement.binds if n in self.namespace}
        return self.values[index]


class TestTimeout(Exception):
    """The test cell ran past its time (in the grader's own computations)."""


@contextlib.contextmanager
def alarm(seconds: float):
    """Interrupt the grader's own work after ``seconds`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def ring(signum, frame):
        raise TestTimeout(f"the test ran over {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class TrustedTests:
    """The test cells of one submission, run against its sandbox."""

    def __init__(self, plan: LessonPlan, cache: PreludeCache, check_independent):
        self.plan, self.cache, self.check_independent = plan, cache, check_independent
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}
        self.bound: set[int] = set()

    def run(self, grade_id: str, remote, seconds: float) -> str:
        """Run one test cell; returns what it printed. Raises what the test raises."""
        test = self.plan.tests[grade_id]
        out = io.StringIO()
        with alarm(seconds), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")  # warnings are never failures
            for index in test.statements:
                statement = self.plan.statements[index]
                if index in test.tainted:
                    self.namespace.update(remote.get(statement.reads - set(self.namespace)))
                    exec(statement.code, self.namespace)  # noqa: S102
                elif index not in self.bound:
                    self.namespace.update({k: _fresh(v) for k, v in self.cache.values_of(index).items()})
                    self.bound.add(index)
            for name in test.learner_names:
                self.namespace.pop(name, None)  # the learner's state now, not an earlier cell's
            self.namespace.update(remote.get(test.learner_names))
            self.namespace["check_independent"] = self.check_independent
            try:
                exec(test.code, self.namespace)  # noqa: S102  (the instructor's test)
            finally:
                if test.exports:  # later cells of the notebook read these, as in one kernel
                    remote.set({n: self.namespace[n] for n in test.exports if n in self.namespace})
        return out.getvalue()
