"""nbgrader's Execute step, replaced: learner cells in the sandbox, test cells in the grader.

:class:`SandboxedExecute` takes the place of ``Execute`` in nbgrader's Autograde converter
(``Autograde.autograde_preprocessors``), so the rest of nbgrader -- SaveAutoGrades, the
gradebook, feedback -- works as usual on the outputs it writes:

* each learner cell runs in the sandbox (:mod:`autograder.sandbox`) with a per-cell and a
  per-notebook time limit. A cell that times out, ignores interrupts or kills its process gets
  an error output; the sandbox is then restarted and the cells that ran before are replayed,
  so only that cell is lost;
* each test cell runs in the grader (:mod:`autograder.trusted`): its output is an error (ename
  and the visible message, no traceback) or what it printed; never a stderr stream, so a
  warning is not a failure.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Integer, Unicode

from . import integrity
from .remote import LearnerError, Remote
from .sandbox import Limits, SandboxError
from .session import Session
from .trusted import LessonPlan, PreludeCache, TestTimeout, TrustedTests, is_test

_PLANS: dict[tuple[str, float], tuple[LessonPlan, PreludeCache]] = {}
NOTEBOOK_OUTPUT_CAP = 20 * 2**20


class IntegrityError(AssertionError):
    """Raised by the grader's ``check_independent``."""


def lesson_plan(source: Path) -> tuple[LessonPlan, PreludeCache]:
    """The plan and the course-data cache of an instructor notebook (cached per file version)."""
    key = (str(source), source.stat().st_mtime)
    if key not in _PLANS:
        for old in [k for k in _PLANS if k[0] == key[0]]:
            del _PLANS[old]
        plan = LessonPlan(nbformat.read(source, as_version=4))
        _PLANS[key] = (plan, PreludeCache(plan))
    return _PLANS[key]


def error_output(ename: str, evalue: str):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class SandboxedExecute(NbGraderPreprocessor):
    """Execute a submission: learner cells sandboxed, test cells in the grader."""

    source_root = Unicode("", help="the course's source/ folder (instructor notebooks)").tag(config=True)
    timeout = Integer(120, help="seconds each cell may run").tag(config=True)
    notebook_timeout = Integer(1800, help="seconds the whole notebook may run").tag(config=True)
    sandbox = Bool(True, help="run learner code in bubblewrap (False: no isolation)").tag(config=True)
    max_restarts = Integer(3, help="sandbox restarts per notebook after a crash or a timeout").tag(config=True)
    threads = Integer(2, help="threads of the learner's numerical libraries (BLAS, TensorFlow)").tag(config=True)

    def preprocess(self, nb, resources):
        lesson = resources["nbgrader"]["assignment"]
        plan, cache = lesson_plan(Path(self.source_root) / lesson / f"{lesson}.ipynb")
        student_cells = [c.source for c in nb.cells if c.cell_type == "code" and not is_test(c)
                         and c.source not in plan.instructor_sources]
        checker = integrity.Notebook(student_cells, sorted(plan.instructor_sources))
        self.tests = TrustedTests(plan, cache, self._check_independent(checker))
        self.deadline = time.monotonic() + self.notebook_timeout
        self.history, self.restarts, self.session, self.remote = [], 0, None, None
        self.output_bytes = 0
        try:
            self._start()
            for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
                cell.outputs = self._run_cell(cell)
                cell.execution_count = count
        finally:
            if self.session is not None:
                self.session.close()
        return nb, resources

    # -- sandbox life ------------------------------------------------------------------------
    def _start(self):
        self.session = Session(sandboxed=self.sandbox, limits=Limits(threads=self.threads)).start()
        self.remote = Remote(self.session)

    def _restart(self) -> str | None:
        """A fresh sandbox with the earlier cells replayed; returns why not, or None."""
        if self.session is not None:
            self.session.close()
            self.session = None
        self.restarts += 1
        if self.restarts > self.max_restarts:
            return f"the sandbox was restarted {self.max_restarts} times already"
        try:
            self._start()
            for source in self.history:
                self.remote.deadline = min(time.monotonic() + self.timeout, self.deadline)
                self.remote.execute(source)
        except SandboxError as error:
            self.session and self.session.close()
            self.session = None
            return f"the earlier cells could not be replayed ({error})"
        return None

    # -- cells -------------------------------------------------------------------------------
    def _run_cell(self, cell):
        left = self.deadline - time.monotonic()
        if left <= 0:
            return [error_output("CellTimeoutError", f"not run: the notebook used up its {self.notebook_timeout} s")]
        if self.session is None:
            return [error_output("DeadKernelError", "not run: the notebook's sandbox could not be restarted")]
        seconds = min(self.timeout, left)
        self.remote.deadline = time.monotonic() + seconds
        if is_test(cell):
            return self._run_test(cell, seconds)
        try:
            reply = self.remote.execute(cell.source)
        except SandboxError as error:
            timed_out = "deadline" in str(error) or "stopped reading" in str(error)
            why = self._restart()
            note = f"; {why}" if why else "; the cells after it still ran"
            if timed_out:
                return [error_output("CellTimeoutError", f"this cell ran over {seconds:.0f} s and was stopped{note}")]
            return [error_output("DeadKernelError", "the notebook's process died in this cell (a crash, os._exit "
                                 f"or out of memory){note}")]
        self.history.append(cell.source)
        outputs = [self._output(o) for o in reply["outputs"] if isinstance(o, dict)]
        outputs = [o for o in outputs if o is not None]
        if isinstance(reply.get("error"), dict):
            error = reply["error"]
            outputs.append(error_output(_identifier(error.get("ename")), _scrub(str(error.get("evalue", "")))))
        return outputs

    def _run_test(self, cell, seconds):
        grade_id = _grade_id(cell)
        if grade_id not in self.tests.plan.tests:
            return [error_output("UnknownTest", f"{grade_id} is not a test of this lesson")]
        try:
            printed = self.tests.run(grade_id, self.remote, seconds)
        except LearnerError as error:
            return [error_output(error.ename, _scrub(error.evalue))]
        except (TestTimeout, SandboxError) as error:
            restart = self._restart()
            reason = f"the test ran over {seconds:.0f} s" if isinstance(error, TestTimeout) or "deadline" in str(error) \
                else f"the notebook's process died during the test ({_scrub(str(error))})"
            return [error_output("CellTimeoutError" if "ran over" in reason else "DeadKernelError",
                                 reason + (f"; {restart}" if restart else ""))]
        except Exception as error:  # noqa: BLE001  (the test's verdict)
            return [error_output(type(error).__name__, _scrub(str(error)))]
        return [new_output("stream", name="stdout", text=printed[:20000])] if printed else []

    def _output(self, output: dict):
        """An nbformat output from the runner's plain data, within the size limits."""
        kind = output.get("output_type")
        size = len(str(output))
        self.output_bytes += size
        if self.output_bytes > NOTEBOOK_OUTPUT_CAP:
            return new_output("stream", name="stdout", text="(output not kept: the notebook's outputs are over 20 MB)\n")
        if kind == "stream":
            name = "stderr" if output.get("name") == "stderr" else "stdout"
            return new_output("stream", name=name, text=str(output.get("text", ""))[:100_000])
        if kind in ("display_data", "execute_result"):
            data = output.get("data") if isinstance(output.get("data"), dict) else {}
            data = {k: str(v)[:2_000_000] for k, v in data.items()
                    if k in ("text/plain", "text/latex", "text/markdown", "image/png")}
            if kind == "execute_result":
                return new_output("execute_result", data=data, execution_count=None)
            return new_output("display_data", data=data)
        return None

    def _check_independent(self, checker):
        def check_independent(func, *, references=None, allow=(), name=None):
            target = getattr(func, "name", None) if type(func).__name__ == "Proxy" else None
            if target is None:
                raise IntegrityError(f"Integrity: {name or 'this'} is not a function of your notebook")
            why = checker.violation(target)
            if why:
                raise IntegrityError("Integrity: " + why)
        return check_independent


def _grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def _identifier(name) -> str:
    name = str(name or "Exception")
    return name if name.isidentifier() and len(name) <= 80 else "Exception"


_PATHS = [str(Path(__file__).resolve().parents[1]), os.path.expanduser("~")]


def _scrub(text: str) -> str:
    """No grader paths in learner-facing messages."""
    for path in _PATHS:
        if path and path != "/":
            text = text.replace(path, "...")
    return re.sub(r"/tmp/idivkit-sandbox-\w+", "...", text)[:2000]
