"""Helpers for the real-browser test: Debian's Chromium, a throwaway JupyterLab, JupyterLab's DOM.

The JupyterLab server runs with the learner configuration Binder gets (binder/postBuild's
extension switches, applied at user level in a fresh config folder), from the project's virtualenv
(the nbgrader and widget lab extensions live in its share/jupyter, which stays on the path).
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
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSTBUILD = ROOT / "binder" / "postBuild"
ARTIFACTS = ROOT / "test-artifacts" / "browser"

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

# Fresh lab settings: no news pop-up, every cell kept in the DOM (no virtual scrolling).
LAB_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


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


def postbuild_jupyter_commands(level: str = "user") -> str:
    """binder/postBuild without its pip line, its extension switches moved to ``level``.

    Run it from the repository root, as repo2docker does.

    ``level`` is "user" (the JUPYTER_CONFIG_DIR of the caller's environment) or "sys_prefix"
    (as on Binder). Raises ValueError when postBuild no longer has the expected shape, so that a
    change there is noticed here.
    """
    text = POSTBUILD.read_text()
    pip_lines = re.findall(r"^python -m pip install [^\n]*$", text, flags=re.M)
    if len(pip_lines) != 1:
        raise ValueError(f"{POSTBUILD}: expected one 'python -m pip install' line, got {pip_lines}")
    text = text.replace(pip_lines[0], ": project install skipped here")
    if text.count("--level=sys_prefix") < 1 or text.count("--sys-prefix") < 1:
        raise ValueError(f"{POSTBUILD}: the extension switches no longer use sys_prefix level")
    if level == "user":
        text = text.replace("--level=sys_prefix", "--level=user").replace("--sys-prefix", "--user")
    elif level != "sys_prefix":
        raise ValueError(f"level must be 'user' or 'sys_prefix', got {level!r}")
    return text


def learner_environment(home: Path) -> dict[str, str]:
    """Environment for a JupyterLab configured as Binder configures it for learners.

    Fresh JUPYTER_CONFIG_DIR / JUPYTER_DATA_DIR / JUPYTER_RUNTIME_DIR under ``home``; the
    virtualenv's own share/ and etc/ (extensions) stay on Jupyter's paths. binder/postBuild runs
    there (user level, without its pip line): extension switches and nbgrader_config.py.
    """
    config_dir, data_dir, runtime_dir = (home / name for name in ("config", "data", "runtime"))
    for folder in (config_dir, data_dir, runtime_dir):
        folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_DATA_DIR=str(data_dir),
        JUPYTER_RUNTIME_DIR=str(runtime_dir),
        JUPYTER_PLATFORM_DIRS="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    # The fresh user level must rank above the virtualenv's (as Binder's sys-prefix level ranks
    # above everything a learner has) for postBuild's switches, applied there, to win.
    env["JUPYTER_PREFER_ENV_PATH"] = "0"
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTERLAB_SETTINGS_DIR", None)
    env.pop("JUPYTERLAB_WORKSPACES_DIR", None)
    # pip registers nbgrader's server extensions at the prefix level; register them at the user
    # level too, so `jupyter server extension disable --user` finds them there, as on Binder.
    registered = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d" / "nbgrader.json"
    (config_dir / "jupyter_server_config.d").mkdir(exist_ok=True)
    shutil.copy2(registered, config_dir / "jupyter_server_config.d" / "nbgrader.json")
    result = subprocess.run(
        ["bash", "-c", postbuild_jupyter_commands("user")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"binder/postBuild's extension switches failed (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    settings = config_dir / "lab" / "user-settings"
    for relative, values in LAB_USER_SETTINGS.items():
        path = settings / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return env


class JupyterLab:
    """A JupyterLab server on a free loopback port, in its own process group.

    ``with JupyterLab(root, env) as lab:`` starts it, waits until its API answers, and on exit
    (whatever happened) terminates the whole group, waits, and kills it if it lingers.
    """

    def __init__(self, root_dir: Path, env: dict[str, str], log_path: Path, start_timeout: float = 90):
        self.root_dir = Path(root_dir)
        self.env = env
        self.log_path = Path(log_path)
        self.start_timeout = start_timeout
        self.token = secrets.token_hex(16)
        self.port = free_loopback_port()
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def wait_for_one_connected_idle_kernel(self, timeout: float = 90) -> dict:
        """Wait until the server runs exactly one kernel, idle, with a browser connected to it.

        JupyterLab may start a kernel and replace it a moment later when it opens a notebook;
        code sent before the replacement is lost, so a test must wait for the survivor.
        """
        deadline = time.monotonic() + timeout
        kernels: list = []
        while time.monotonic() < deadline:
            try:
                kernels = self.api("kernels")
            except urllib.error.HTTPError as error:
                # The server can fail to list a kernel it is still starting (HTTP 500): retry.
                kernels = [f"HTTP {error.code}"]
                time.sleep(0.25)
                continue
            if (
                len(kernels) == 1
                and kernels[0]["execution_state"] == "idle"
                and kernels[0].get("connections", 0) >= 1
            ):
                return kernels[0]
            time.sleep(0.25)
        raise TimeoutError(f"no single connected idle kernel after {timeout:.0f} s: {kernels}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "JupyterLab":
        self._log = open(self.log_path, "w")
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser",
            f"--ServerApp.token={self.token}", f"--port={self.port}", "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # CI containers run as root
        self.process = subprocess.Popen(
            command, cwd=self.root_dir, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
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


# --- JupyterLab DOM -------------------------------------------------------------------------

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"


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
        """(sel) => {
            const prompts = Array.from(
                document.querySelectorAll(sel + ' .jp-CodeCell .jp-InputPrompt'))
                .map(p => p.textContent);
            const ind = document.querySelector(sel + ' .jp-Notebook-ExecutionIndicator');
            if (ind === null || ind.getAttribute('data-status') !== 'idle') return false;
            if (prompts.length === 0 || prompts.some(p => p.includes('*'))) return false;
            const errors = document.querySelectorAll(
                sel + ' .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
            const failed = Array.from(errors).some(e => /Error|Traceback/.test(e.innerText));
            return failed || prompts.every(p => /\\[\\d+\\]/.test(p));
        }""",
        arg=NOTEBOOK,
        timeout=timeout_ms,
    )


def error_outputs(page) -> list[str]:
    """Text of every error output (tracebacks) in the notebook."""
    return page.evaluate(
        """(sel) => Array.from(document.querySelectorAll(
                sel + ' .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
                .map(el => el.innerText).filter(t => /Error|Traceback/.test(t))""",
        NOTEBOOK,
    )


def click_menu(page, menu: str, item: str) -> None:
    """Open a main-menu ``menu`` (e.g. "Run") and click its ``item`` (e.g. "Run All Cells")."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).first.click()
