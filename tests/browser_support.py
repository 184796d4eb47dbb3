"""Helpers for the real-browser tests and benchmarks/bench_lessons.py: a learner's copy of the course,
JupyterLab started the way learners start it, Debian's Chromium, memory (PSS), JupyterLab's DOM.

A learner's copy (``learner_tree``) holds what Binder's image holds for learners: ``lessons/``
(student versions), ``course/nbgrader_config.py`` (no ``course/source``), ``jupyter/learner/``,
``binder/start`` and ``scripts/``, with the course's environment linked in as ``.venv``:
``.venv-course``, which ``scripts/test.sh`` installs from ``binder/requirements.txt`` alone as
Binder does (none of the test tools, whose imports would change what a kernel holds). JupyterLab
starts through ``scripts/lab.sh`` (learners) or ``scripts/instructor.sh`` (instructors), in a
fresh home folder where MNIST sits in the Keras cache as ``binder/postBuild`` leaves it, and with
none of the variables the tests set for themselves (``IDIVKIT_MNIST``, ``TF_CPP_MIN_LOG_LEVEL``,
...).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"
COURSE_VENV = ROOT / ".venv-course"  # scripts/setup.sh --venv .venv-course (scripts/test.sh runs it)

# Without the background-networking switches Chromium's own traffic is refused on a closed network
# and it stalls; the rest keep a headless run quiet and reproducible.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# The nbgrader lab plugins of the instructor tools (learners keep validate-assignment).
INSTRUCTOR_PLUGINS = {
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:assignment-list",
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:menu",
}
# Variables a learner's shell does not have (the test suite and CI set some of them).
NOT_A_LEARNERS = re.compile(r"^(JUPYTER|JUPYTERLAB|IDIVKIT|TF_|KERAS|MPLBACKEND|PYTHON|VIRTUAL_ENV|PYTEST)")


def find_chromium() -> str | None:
    """Path of a Chromium binary: $IDIVKIT_CHROMIUM, /usr/bin/chromium, or one on PATH."""
    candidates = [os.environ.get("IDIVKIT_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(name) for name in ("chromium", "chromium-browser")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the course as learners get it ----------------------------------------------------------

def lesson_names() -> list[str]:
    """Every lesson that exists, in order ("00_welcome", ...): new lessons are picked up here.

    ``$IDIVKIT_BROWSER_LESSONS`` (comma-separated names) narrows it, only to develop the harness.
    """
    names = sorted(path.stem for path in (ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
    chosen = os.environ.get("IDIVKIT_BROWSER_LESSONS")
    return [n for n in names if n in chosen.split(",")] if chosen else names


def solved_notebook(lesson: str) -> nbformat.NotebookNode:
    """The student version with each solution cell's source taken from the instructor version."""
    student = nbformat.read(ROOT / "lessons" / f"{lesson}.ipynb", as_version=4)
    instructor = nbformat.read(ROOT / "course" / "source" / lesson / f"{lesson}.ipynb", as_version=4)
    solutions = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in instructor.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    filled = 0
    for cell in student.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = solutions[meta["grade_id"]]
            filled += 1
    if filled == 0 or filled != len(solutions):
        raise ValueError(f"{lesson}: {filled} solution cells filled, the instructor version has "
                         f"{len(solutions)}: lessons/ is out of date (idivkit-grade build)")
    return student


# Never in a learner's copy: nbgrader's instructor versions, and what only this checkout has.
NOT_IN_THE_IMAGE = {".git", ".venv", ".venv-course", "course", "tests", "test-artifacts", ".pytest_cache", "build",
                    "dist", "runs", "out"}


def course_venv() -> Path:
    """The course's environment alone (``.venv-course``), or an error that says how to make it."""
    if not (COURSE_VENV / "bin" / "jupyter").is_file():
        raise RuntimeError(f"{COURSE_VENV} is missing or incomplete: the browser tests run JupyterLab in the "
                           "course's environment alone; make it with `bash scripts/setup.sh --venv .venv-course` "
                           "(scripts/test.sh does)")
    return COURSE_VENV


def learner_tree(dest: Path, lessons: list[str], solved: bool = True) -> Path:
    """A learner's copy of the repository at ``dest`` (see the module docstring); returns it.

    What learners can change (lessons/) and what sets JupyterLab up (jupyter/, binder/, scripts/)
    is copied; the rest of the repository (docs/, results/, the package, ...) is linked in, as
    Binder's image holds it; course/ holds only nbgrader_config.py, and tests/ is left out
    (binder/postBuild removes both). With ``solved``,
    ``solved/<lesson>.ipynb`` holds each lesson with its solutions pasted in.
    """
    dest.mkdir(parents=True)
    (dest / "lessons").mkdir()
    for lesson in lessons:
        shutil.copy2(ROOT / "lessons" / f"{lesson}.ipynb", dest / "lessons")
    copied = {"lessons", "jupyter", "binder", "scripts"}
    for folder in copied - {"lessons"}:
        shutil.copytree(ROOT / folder, dest / folder)
    (dest / "course").mkdir()
    shutil.copy2(ROOT / "course" / "nbgrader_config.py", dest / "course")
    (dest / ".venv").symlink_to(course_venv())
    for entry in ROOT.iterdir():
        if entry.name not in copied | NOT_IN_THE_IMAGE and not entry.name.endswith(".egg-info"):
            (dest / entry.name).symlink_to(entry)
    if solved:
        (dest / "solved").mkdir()
        for lesson in lessons:
            nbformat.write(solved_notebook(lesson), dest / "solved" / f"{lesson}.ipynb")
    return dest


def instructor_tree(dest: Path) -> Path:
    """An instructor's copy of the repository at ``dest``: course/ (with course/source), lessons/,
    scripts/, the course's environment linked in as ``.venv``; nbgrader's generated files left out."""
    dest.mkdir(parents=True)
    generated = shutil.ignore_patterns("gradebook.db", "release", "submitted", "autograded", "feedback",
                                       ".nbgrader.log", ".ipynb_checkpoints")
    shutil.copytree(ROOT / "course", dest / "course", ignore=generated)
    for folder in ("lessons", "scripts"):
        shutil.copytree(ROOT / folder, dest / folder)
    (dest / ".venv").symlink_to(course_venv())
    return dest


def learner_environment(home: Path, mnist: Path | None = None) -> dict[str, str]:
    """A learner's environment: this shell's, less the test suite's variables, with a fresh HOME.

    MNIST is placed in HOME's Keras cache (``~/.keras/datasets/mnist.npz``), where
    ``binder/postBuild`` (``python -m idivkit.data``) leaves it on Binder.
    """
    mnist = Path(mnist or os.environ.get("IDIVKIT_MNIST") or SHARED_MNIST)
    cache = home / ".keras" / "datasets"
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "mnist.npz").exists():
        (cache / "mnist.npz").symlink_to(mnist.resolve())
    env = {key: value for key, value in os.environ.items() if not NOT_A_LEARNERS.match(key)}
    venv_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["HOME"] = str(home)
    return env


# --- memory ----------------------------------------------------------------------------------

def _pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            todo += _children(current)
        except OSError:
            pass
    return tree


def tree_pss_mib(pid: int) -> float:
    """Proportional set size (MiB) of ``pid`` and its descendants: shared pages counted once."""
    total = 0
    for member in process_tree(pid):
        try:
            total += _pss_kib(member)
        except OSError:
            pass
    return total / 1024


def uses_tensorflow(pid: int) -> bool:
    """Whether the process has TensorFlow's shared library mapped (it imported TensorFlow)."""
    try:
        return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


class MemoryWatch(threading.Thread):
    """Samples the PSS of a process tree (every ``interval`` s) until stopped; keeps the peak
    overall and per named phase, and which kernels imported TensorFlow."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak, self.phase = 0.0, "start"
        self.phase_peaks: dict[str, float] = {}
        self.tensorflow_pids: set[int] = set()
        self.tensorflow_phases: set[str] = set()
        self._stop_event = threading.Event()

    def mark(self, phase: str) -> float:
        """Start a new phase; returns the PSS now."""
        now = tree_pss_mib(self.pid)
        self.phase = phase
        self._record(now)
        return now

    def _record(self, value: float) -> None:
        self.peak = max(self.peak, value)
        self.phase_peaks[self.phase] = max(self.phase_peaks.get(self.phase, 0.0), value)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self._record(tree_pss_mib(self.pid))
            for member in process_tree(self.pid)[1:]:
                if member not in self.tensorflow_pids and uses_tensorflow(member):
                    self.tensorflow_pids.add(member)
                    self.tensorflow_phases.add(self.phase)
            self._stop_event.wait(self.interval)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak


# --- JupyterLab, started as learners and instructors start it ----------------------------------

class JupyterLab:
    """JupyterLab started by ``script`` (scripts/lab.sh or scripts/instructor.sh) in ``tree``.

    ``with JupyterLab(tree, env, log_path) as lab:`` starts it on a free loopback port with a
    token (and --allow-root where tests run as root: CI containers), waits until its API
    answers, and on exit terminates the whole process group, kernels included.
    """

    def __init__(self, tree: Path, env: dict[str, str], log_path: Path, script: str = "scripts/lab.sh",
                 start_timeout: float = 120):
        self.tree = Path(tree)
        self.env = env
        self.log_path = Path(log_path)
        self.script = script
        self.start_timeout = start_timeout
        self.token = secrets.token_hex(16)
        self.port = free_loopback_port()
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        """Address of ``path`` (e.g. "lab/tree/x.ipynb") with the login token."""
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def api(self, path: str):
        """GET ``/api/<path>`` as JSON."""
        with urllib.request.urlopen(self.url(f"api/{path}"), timeout=10) as response:
            return json.load(response)

    def http_status(self, path: str) -> int:
        """HTTP status of GET ``path`` (logged in with the token)."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def kernels(self) -> list[dict]:
        """The server's kernels (retrying while the server cannot list one it is starting)."""
        for _ in range(40):
            try:
                return self.api("kernels")
            except urllib.error.HTTPError:
                time.sleep(0.25)
        return self.api("kernels")

    def wait_for_kernels(self, count: int, timeout: float = 90) -> list[dict]:
        """Wait until exactly ``count`` kernels have a page connected, all of them idle; returns them.

        JupyterLab may start a kernel and replace it a moment later when it opens a notebook;
        code sent before the replacement is lost, so a test must wait for the survivor.
        Kernels no page is connected to (left running by a closed tab) are not counted here.
        """
        deadline = time.monotonic() + timeout
        kernels: list = []
        while time.monotonic() < deadline:
            kernels = self.kernels()
            connected = [k for k in kernels if k.get("connections", 0) >= 1]
            if len(connected) == count and all(k["execution_state"] == "idle" for k in connected):
                return connected
            time.sleep(0.25)
        raise TimeoutError(f"not {count} connected idle kernel(s) after {timeout:.0f} s: {kernels}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "JupyterLab":
        self._log = open(self.log_path, "w")
        command = ["bash", self.script, "--no-browser", f"--ServerApp.token={self.token}",
                   f"--port={self.port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # CI containers run as root
        self.process = subprocess.Popen(
            command, cwd=self.tree, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        status_url = f"{self.base_url}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with code {self.process.returncode} before answering; "
                    f"log {self.log_path}:\n{self.log_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(status_url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise TimeoutError(
            f"JupyterLab did not answer on {self.base_url} within {self.start_timeout:.0f} s; "
            f"log {self.log_path}:\n{self.log_text()[-3000:]}"
        )

    def stop(self) -> None:
        """Terminate the server's process group (kernels included); kill what is left after 15 s."""
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        if process is not None:
            # Kernels started by the server share its group: make sure none outlives it.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __exit__(self, *exc_info) -> None:
        self.stop()


def launch_chromium(playwright, chromium: str, profile: Path):
    """A headless Chromium (Debian's) with a fresh profile, 1400 x 1000."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=chromium, args=CHROMIUM_ARGS, headless=True,
        viewport={"width": 1400, "height": 1000},
    )


# --- JupyterLab DOM -------------------------------------------------------------------------

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


def wait_for_notebook(page, timeout_ms: float = 90_000) -> None:
    """Wait until a notebook panel shows its cells and its kernel is idle."""
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell", timeout=timeout_ms)
    wait_for_kernel_idle(page, timeout_ms)


def kernel_status(page) -> str | None:
    """The notebook's kernel status from the toolbar's execution indicator ("idle", "busy", ...)."""
    return page.evaluate(
        """(sel) => {
            const el = document.querySelector(sel + ' .jp-Notebook-ExecutionIndicator');
            return el ? el.getAttribute('data-status') : null;
        }""",
        NOTEBOOK,
    )


def wait_for_kernel_idle(page, timeout_ms: float) -> None:
    """Wait until the kernel reports idle in the notebook toolbar."""
    page.wait_for_function(
        """(sel) => {
            const el = document.querySelector(sel + ' .jp-Notebook-ExecutionIndicator');
            return el !== null && el.getAttribute('data-status') === 'idle';
        }""",
        arg=NOTEBOOK,
        timeout=timeout_ms,
    )


def code_cell_prompts(page) -> list[str]:
    """The input prompts ("[3]:", "[*]:", "[ ]:") of every code cell, in order."""
    return page.evaluate(
        """(sel) => Array.from(document.querySelectorAll(sel + ' .jp-CodeCell .jp-InputPrompt'))
                      .map(el => el.textContent.trim())""",
        NOTEBOOK,
    )


def wait_for_all_cells_run(page, timeout_ms: float) -> None:
    """Wait until Run All has finished: the kernel is idle, no cell is queued or running, and
    every code cell has an execution count or some cell shows an error (Run All stops there)."""
    page.wait_for_function(
        """([sel, stderr]) => {
            const prompts = Array.from(
                document.querySelectorAll(sel + ' .jp-CodeCell .jp-InputPrompt'))
                .map(p => p.textContent);
            const ind = document.querySelector(sel + ' .jp-Notebook-ExecutionIndicator');
            if (ind === null || ind.getAttribute('data-status') !== 'idle') return false;
            if (prompts.length === 0 || prompts.some(p => p.includes('*'))) return false;
            const errors = document.querySelectorAll(sel + ' ' + stderr);
            const failed = Array.from(errors).some(e => /Error|Traceback/.test(e.textContent));
            return failed || prompts.every(p => /\\[\\d+\\]/.test(p));
        }""",
        arg=[NOTEBOOK, STDERR],
        timeout=timeout_ms,
    )


def code_cells(page) -> list[dict]:
    """Each code cell of the open notebook, in order: prompt, error and stderr texts, and its
    rendered images and widgets."""
    return page.evaluate(
        """([sel, stderr]) => Array.from(document.querySelectorAll(sel + ' .jp-CodeCell')).map(cell => {
            const outputs = Array.from(cell.querySelectorAll(stderr));
            return {
                prompt: (cell.querySelector('.jp-InputPrompt') || {textContent: ''}).textContent.trim(),
                stderr: outputs.map(o => o.textContent),
                images: Array.from(cell.querySelectorAll('.jp-OutputArea img'))
                    .filter(i => i.complete && i.naturalWidth > 0).length,
                widgets: cell.querySelectorAll('.jp-OutputArea .jupyter-widgets.widget-container, '
                    + '.jp-OutputArea .jupyter-widgets.widget-inline-hbox').length,
                widget_errors: Array.from(cell.querySelectorAll('.jp-OutputArea .jupyter-widgets'))
                    .filter(w => /Error|Loading widget/.test(w.textContent)).length,
            };
        })""",
        [NOTEBOOK, STDERR],
    )


def error_outputs(page) -> list[str]:
    """Text of every error output (tracebacks) in the notebook."""
    return page.evaluate(
        """([sel, stderr]) => Array.from(document.querySelectorAll(sel + ' ' + stderr))
                .map(el => el.textContent).filter(t => /Error|Traceback/.test(t))""",
        [NOTEBOOK, STDERR],
    )


def click_menu(page, menu: str, item: str) -> None:
    """Open a main-menu ``menu`` (e.g. "Run") and click its ``item`` (e.g. "Run All Cells")."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).first.click()


def menu_titles(page) -> list[str]:
    return [t.strip() for t in page.locator(".lm-MenuBar-itemLabel").all_inner_texts()]


def sidebar_titles(page) -> list[str]:
    """Titles of the tabs of the left and right side bars."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('.jp-SideBar .lm-TabBar-tab'))
                .map(t => (t.getAttribute('title') || '') + ' ' + t.textContent)"""
    )


def open_from_file_browser(page, folder: str, name: str) -> None:
    """Open ``folder/name`` by double-clicking it in the file browser, as learners do."""
    if not page.locator("#filebrowser").is_visible():
        page.locator('.jp-SideBar .lm-TabBar-tab[data-id="filebrowser"]').click()
    page.locator("#filebrowser .jp-BreadCrumbs-home").click()
    for entry in (folder, name):
        item = page.locator("#filebrowser .jp-DirListing-item").filter(
            has=page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(entry)}$"))
        )
        item.first.dblclick()


def close_notebook_tab(page) -> None:
    """Close the current notebook's tab as learners do (File > Close Tab), discarding changes."""
    panels = page.locator(".jp-NotebookPanel").count()
    click_menu(page, "File", "Close Tab")
    # Either the tab goes at once (nothing unsaved) or JupyterLab asks about unsaved changes.
    page.wait_for_function(
        "(n) => document.querySelector('.jp-Dialog') !== null"
        " || document.querySelectorAll('.jp-NotebookPanel').length < n",
        arg=panels, timeout=30_000,
    )
    if page.locator(".jp-Dialog").count():
        page.locator(".jp-Dialog button", has_text=re.compile("^(Discard|Don't Save)$")).first.click()
        page.locator(".jp-Dialog").wait_for(state="detached", timeout=10_000)


def press_validate(page, timeout_ms: float = 300_000) -> str:
    """Press nbgrader's Validate button and return the text of the dialog it opens (then close it)."""
    page.locator(f"{NOTEBOOK} .validate-button").first.click()
    dialog = page.locator(
        ".jp-Dialog .validation-success, .jp-Dialog .validation-failed, "
        ".jp-Dialog :text('There was an error'), .jp-Dialog .validation-changed"
    ).first
    dialog.wait_for(state="visible", timeout=timeout_ms)
    text = page.locator(".jp-Dialog").first.inner_text()
    return text


def dismiss_dialog(page) -> None:
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept, .jp-Dialog .jp-Dialog-button").last.click()
    page.locator(".jp-Dialog").wait_for(state="detached", timeout=10_000)


# --- one lesson, as a learner goes through it ---------------------------------------------------

def code_cell_sources(notebook_path: Path) -> list[tuple[str, dict]]:
    """(source, nbgrader metadata) of each code cell, in order."""
    nb = nbformat.read(notebook_path, as_version=4)
    return [(c.source, c.metadata.get("nbgrader", {})) for c in nb.cells if c.cell_type == "code"]


def uses_keras(notebook_path: Path) -> bool:
    """Whether a lesson's code uses Keras (only such lessons may import TensorFlow)."""
    return any(re.search(r"\bkeras\b|idivkit\.train", source) for source, _ in code_cell_sources(notebook_path))


class LessonRun:
    """Drives one notebook in the page: open, Run All, Validate, close; times each step and
    marks the memory watch with the step's name."""

    def __init__(self, page, lab: JupyterLab, watch: MemoryWatch | None = None):
        self.page, self.lab, self.watch = page, lab, watch
        self.times: dict[str, float] = {}

    def _mark(self, name: str) -> None:
        if self.watch is not None:
            self.watch.mark(name)

    def open(self, folder: str, lesson: str, *, from_url: bool = False) -> list[dict]:
        self._mark(f"{folder}/{lesson} open")
        start = time.monotonic()
        if from_url:
            self.page.goto(self.lab.url(f"lab/tree/{folder}/{lesson}.ipynb"), wait_until="domcontentloaded")
        else:
            open_from_file_browser(self.page, folder, f"{lesson}.ipynb")
        wait_for_notebook(self.page, timeout_ms=120_000)
        kernels = self.lab.wait_for_kernels(1, timeout=120)
        self.times[f"{folder}/{lesson} open"] = time.monotonic() - start
        return kernels

    def run_all(self, folder: str, lesson: str) -> list[dict]:
        self._mark(f"{folder}/{lesson} run all")
        start = time.monotonic()
        wait_for_kernel_idle(self.page, timeout_ms=60_000)
        click_menu(self.page, "Run", "Run All Cells")
        wait_for_all_cells_run(self.page, timeout_ms=300_000)
        self.times[f"{folder}/{lesson} run all"] = time.monotonic() - start
        return code_cells(self.page)

    def validate(self, folder: str, lesson: str) -> str:
        self._mark(f"{folder}/{lesson} validate")
        start = time.monotonic()
        text = press_validate(self.page)
        self.times[f"{folder}/{lesson} validate"] = time.monotonic() - start
        return text

    def close(self, folder: str, lesson: str) -> list[dict]:
        """Close the tab; returns the kernels left a moment later (learner settings: none)."""
        dismiss_dialog(self.page) if self.page.locator(".jp-Dialog").count() else None
        self._mark(f"{folder}/{lesson} closed")
        close_notebook_tab(self.page)
        deadline = time.monotonic() + 15
        kernels = self.lab.kernels()
        while kernels and time.monotonic() < deadline:
            time.sleep(0.25)
            kernels = self.lab.kernels()
        return kernels
