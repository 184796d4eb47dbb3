"""A class on a real JupyterHub: one instructor, three students, one lesson, nbgrader's exchange.

The hub runs from hub/jupyterhub_config.py (loaded by a small overlay that only adds loopback
ports, a state folder and an API token for the test), with its own configurable-http-proxy from
the npm registry (hub/package.json, `npm ci --prefix hub`), PAM and the local spawner, and four
system users created for the test. Each user's server is started through the hub's REST API and
everything a user does goes through their own server, behind the hub's proxy, as in JupyterLab:

* the instructor generates and releases the lesson (Formgrader's API);
* each student fetches it (the Assignments tab's API), writes answers into the notebook
  (Jupyter's contents API) -- the course's solutions, half of them, or none -- and submits;
* the instructor collects; root autogrades with the course's sandboxed grader
  (`hub/autograde.sh`, as docs/classroom.md tells instructors); the instructor generates and
  releases feedback; each student fetches feedback.

It checks the gradebook's scores per student, the CSV export, and that each student receives
exactly one feedback file, their own. Everything it started (hub, proxy, servers, users) is
stopped and removed, also when a step fails. Needs root (useradd), node/npm and bubblewrap.
"""

from __future__ import annotations

import contextlib
import csv
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "hub"
HUB_CONFIG = HUB / "jupyterhub_config.py"
NBGRADER_CONFIG = HUB / "nbgrader_config.py"
VALUES = HUB / "z2jh-values.yaml"
CHP = HUB / "node_modules" / ".bin" / "configurable-http-proxy"
BIN = Path(sys.executable).parent
LESSON = "00_welcome"
COURSE_ID = "idivkit"
TEST_MARK = "idivkit hub test user"  # GECOS of the users this test creates (and may remove)
INSTRUCTOR = "idkhub-teacher"
STUDENTS = {"idkhub-ada": "complete", "idkhub-ben": "partial", "idkhub-cy": "blank"}
USERS = [INSTRUCTOR, *STUDENTS]


# -- the repository's hub files (fast) -------------------------------------------------------

def test_z2jh_values_embed_the_hub_files():
    """hub/z2jh-values.yaml parses and carries hub/jupyterhub_config.py and hub/nbgrader_config.py verbatim."""
    values = yaml.safe_load(VALUES.read_text())
    assert values["hub"]["extraConfig"]["idivkit"] == HUB_CONFIG.read_text(), (
        "hub/z2jh-values.yaml's hub.extraConfig.idivkit differs from hub/jupyterhub_config.py: "
        "paste the file there again (as a YAML block)")
    files = values["singleuser"]["extraFiles"]
    assert files["nbgrader-config"]["mountPath"] == "/etc/jupyter/nbgrader_config.py"
    assert files["nbgrader-config"]["stringData"] == NBGRADER_CONFIG.read_text(), (
        "hub/z2jh-values.yaml's singleuser.extraFiles.nbgrader-config differs from hub/nbgrader_config.py")
    env = values["hub"]["extraEnv"]
    assert env["IDIVKIT_EXCHANGE"] == "/srv/nbgrader/exchange"
    mounts = {m["name"]: m["mountPath"] for m in values["singleuser"]["storage"]["extraVolumeMounts"]}
    assert mounts["nbgrader-exchange"] == env["IDIVKIT_EXCHANGE"]


def test_hub_config_loads_outside_kubernetes(monkeypatch):
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("IDIVKIT_INSTRUCTORS", "prof")
    monkeypatch.setenv("IDIVKIT_STUDENTS", "s1,s2")
    config = PyFileConfigLoader(HUB_CONFIG.name, path=str(HUB)).load_config()
    assert config.Authenticator.admin_users == {"prof"}
    assert config.Authenticator.allowed_users == {"prof", "s1", "s2"}
    assert config.Spawner.cmd == [str(BIN / "jupyterhub-singleuser")]
    assert config.Spawner.ip == "127.0.0.1"



def test_hub_config_runs_inside_zero_to_jupyterhub(monkeypatch):
    """Zero to JupyterHub executes hub.extraConfig inside its own config file: there c exists and
    get_config is its own function (of a key); the one-machine part is skipped."""
    from traitlets.config import Config

    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("IDIVKIT_INSTRUCTORS", "prof")

    def z2jh_get_config(key, default=None):
        raise AssertionError("the hub configuration must not call Zero to JupyterHub's get_config")

    namespace = {"c": Config(), "get_config": z2jh_get_config,
                 "__file__": "/usr/local/etc/jupyterhub/jupyterhub_config.py"}
    exec(compile(HUB_CONFIG.read_text(), "hub.extraConfig.idivkit", "exec"), namespace)  # noqa: S102
    config = namespace["c"]
    assert config.Authenticator.admin_users == {"prof"}
    assert "cmd" not in config.Spawner and "JUPYTER_CONFIG_PATH" not in str(config.Spawner.environment)
    assert callable(config.Spawner.pre_spawn_hook)


# -- the class on a real hub (slow) ----------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _kill_user_processes(names) -> None:
    import psutil

    uids = set()
    for name in names:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(name).pw_uid)
    if not uids:
        return
    for _ in range(3):
        left = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real in uids]
        if not left:
            return
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(left, timeout=10)


def _remove_test_users() -> None:
    """Remove this test's users (only accounts it made: their GECOS is TEST_MARK)."""
    ours = []
    for name in USERS:
        with contextlib.suppress(KeyError):
            if pwd.getpwnam(name).pw_gecos == TEST_MARK:
                ours.append(name)
    _kill_user_processes(ours)
    for name in ours:
        subprocess.run(["userdel", "--force", "--remove", name], capture_output=True, timeout=60)


# POSIX ACL xattr (acl_ea.h): version 2, then (tag u16, perm u16, id u32) entries, sorted by tag.
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_ACL_XATTR = "system.posix_acl_access"


@contextlib.contextmanager
def _traversable_python(names):
    """Let the test users reach this Python (and the virtualenv) where a folder on the way
    denies it to others (e.g. an interpreter under /root): a POSIX ACL giving only them
    search permission on that folder, removed afterwards. Nothing else changes."""
    import stat
    import struct

    uids = sorted(pwd.getpwnam(name).pw_uid for name in names)
    folders = set()
    for target in (Path(sys.executable).resolve(), Path(sys.executable).parent, Path(sys.base_prefix).resolve(), ROOT):
        for folder in [target, *target.parents] if target.is_dir() else target.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                folders.add(folder)
    changed = []  # (folder, its mode, its ACL before or None)
    try:
        for folder in sorted(folders):
            mode = folder.stat().st_mode
            before = os.getxattr(folder, _ACL_XATTR) if _ACL_XATTR in os.listxattr(folder) else None
            entries = [(_ACL_USER_OBJ, (mode >> 6) & 7, 0xFFFFFFFF), *[(_ACL_USER, 1, uid) for uid in uids],
                       (_ACL_GROUP_OBJ, (mode >> 3) & 7, 0xFFFFFFFF), (_ACL_MASK, ((mode >> 3) & 7) | 1, 0xFFFFFFFF),
                       (_ACL_OTHER, mode & 7, 0xFFFFFFFF)]
            try:
                os.setxattr(folder, _ACL_XATTR,
                            struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries))
            except OSError as error:
                raise AssertionError(f"the test users cannot reach {sys.executable} ({folder} is closed to "
                                     f"other users and takes no ACL: {error}); use a Python all users can read") from None
            changed.append((folder, stat.S_IMODE(mode), before))
        yield
    finally:
        for folder, mode, before in changed:
            with contextlib.suppress(OSError):
                if before is None:
                    os.removexattr(folder, _ACL_XATTR)
                else:
                    os.setxattr(folder, _ACL_XATTR, before)
            os.chmod(folder, mode)


def _preflight() -> None:
    if os.geteuid() != 0:
        pytest.skip("the hub test creates system users: run it as root (CI does)")
    missing = [tool for tool in ("useradd", "userdel", "node", "npm", "bwrap") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"the hub test needs {', '.join(missing)} (.ci/run installs them)")
    if not (BIN / "jupyterhub").exists():
        pytest.fail(f"{BIN / 'jupyterhub'} missing: install requirements-dev.txt (bash scripts/setup.sh dev)")


def _install_proxy() -> None:
    if not CHP.exists():
        _run(["npm", "ci", "--prefix", str(HUB), "--no-audit", "--no-fund", "--loglevel=error"], timeout=300)
    assert CHP.exists(), f"npm ci did not install {CHP}"


OVERLAY = '''\
# Written by tests/test_hub.py: the course's hub configuration, on loopback ports, with test state.
import os
c = get_config()
load_subconfig({hub_config!r})
c.JupyterHub.bind_url = "http://127.0.0.1:{port}/"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}/"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {cookie!r}
c.JupyterHub.services = [{{"name": "class-driver", "api_token": os.environ["IDIVKIT_TEST_HUB_TOKEN"]}}]
c.JupyterHub.load_roles = [{{"name": "class-driver", "services": ["class-driver"],
                            "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"]}}]
'''


class Hub:
    """A running hub: its URL and the test's service token."""

    def __init__(self, url: str, token: str, process: subprocess.Popen, log: Path):
        self.url, self.process, self.log = url, process, log
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def log_tail(self, n: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def request(self, method: str, path: str, *, ok=(200,), timeout: float = 120, **kwargs):
        response = self.session.request(method, self.url + path, timeout=timeout, **kwargs)
        if response.status_code not in ok:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code}: {response.text[:2000]}\n"
                                 f"hub log:\n{self.log_tail()}")
        return response

    def user(self, name: str, method: str, path: str, **kwargs):
        return self.request(method, f"/user/{name}{path}", **kwargs)

    def nbgrader(self, name: str, path: str, **kwargs) -> dict:
        """POST to one of nbgrader's server extensions in a user's server; its JSON answer."""
        result = self.user(name, "POST", path, **kwargs).json()
        if isinstance(result, dict) and result.get("success") is False:
            raise AssertionError(f"{name} {path} failed:\n{result.get('log', '')}\n{result.get('error', '')}"
                                 f"{result.get('value', '')}")
        return result

    def start_servers(self, names, timeout: float = 180) -> None:
        for name in names:
            self.request("POST", f"/hub/api/users/{name}/server", ok=(201, 202))
        deadline = time.monotonic() + timeout
        waiting = set(names)
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                server = self.request("GET", f"/hub/api/users/{name}").json()["servers"].get("", {})
                if server.get("ready"):
                    waiting.discard(name)
            if self.process.poll() is not None:
                raise AssertionError(f"the hub exited ({self.process.returncode}):\n{self.log_tail()}")
            time.sleep(1)
        assert not waiting, f"servers not ready after {timeout} s: {sorted(waiting)}\n{self.log_tail()}"


@contextlib.contextmanager
def running_hub(state: Path, env: dict):
    port, hub_port, api_port = _free_port(), _free_port(), _free_port()
    overlay = state / "jupyterhub_test_config.py"
    overlay.write_text(OVERLAY.format(hub_config=str(HUB_CONFIG), port=port, hub_port=hub_port,
                                      api_port=api_port, proxy_pid=str(state / "proxy.pid"),
                                      state=state, cookie=str(state / "cookie_secret")))
    token = secrets.token_hex(32)
    log = state / "jupyterhub.log"
    with open(log, "w") as out:
        process = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(overlay)], cwd=state,
                                   env={**env, "IDIVKIT_TEST_HUB_TOKEN": token},
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    hub = Hub(f"http://127.0.0.1:{port}", token, process, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise AssertionError(f"jupyterhub exited ({process.returncode}):\n{hub.log_tail()}")
            with contextlib.suppress(requests.ConnectionError):
                if hub.session.get(hub.url + "/hub/api/users", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the hub did not answer within 90 s:\n{hub.log_tail()}")
            time.sleep(0.5)
        yield hub
    finally:
        _stop(process, state / "proxy.pid", api_port)


def _stop(process: subprocess.Popen, proxy_pid: Path, api_port: int) -> None:
    """SIGTERM the hub (it stops the servers and the proxy), then kill whatever is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    if proxy_pid.exists():
        import psutil

        with contextlib.suppress(ValueError, psutil.Error):
            proxy = psutil.Process(int(proxy_pid.read_text().strip()))
            if any("configurable-http-proxy" in part for part in proxy.cmdline()) and \
                    any(str(api_port) in part for part in proxy.cmdline()):
                proxy.kill()
                proxy.wait(10)


def _source_answers() -> dict[str, str]:
    """grade_id -> the course's solution, as a student would type it (markers removed)."""
    source = nbformat.read(ROOT / "course" / "source" / LESSON / f"{LESSON}.ipynb", as_version=4)
    answers = {}
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            lines = [line for line in cell.source.splitlines()
                     if not re.match(r"\s*### (BEGIN|END) SOLUTION", line)]
            answers[meta["grade_id"]] = "\n".join(lines).strip("\n")
    return answers


def _answer(notebook: dict, student: str, kind: str) -> dict:
    """The notebook with this student's answers: all code solutions, the first one, or none."""
    answers = _source_answers()
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"
            and cell["metadata"].get("nbgrader", {}).get("solution")]
    assert len(code) >= 2, "the lesson needs two code answers for a partial submission"
    answered = {"complete": code, "partial": code[:1], "blank": []}[kind]
    for cell in answered:
        cell["source"] = answers[cell["metadata"]["nbgrader"]["grade_id"]]
    # A line only this student wrote: the feedback each receives must show theirs alone.
    code[0]["source"] = f"# written by {student}\n" + "".join(code[0]["source"])
    return notebook


def _expected_scores() -> dict[str, float]:
    """Autograded points per kind of answer: every test, the first answer's tests, none."""
    source = nbformat.read(ROOT / "course" / "source" / LESSON / f"{LESSON}.ipynb", as_version=4)
    tests = [(c.metadata["nbgrader"]["grade_id"], float(c.metadata["nbgrader"]["points"]))
             for c in source.cells if c.metadata.get("nbgrader", {}).get("grade")
             and not c.metadata["nbgrader"].get("solution")]
    return {"complete": sum(p for _, p in tests), "partial": tests[0][1], "blank": 0.0}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_class_on_a_real_jupyterhub():
    _preflight()
    _install_proxy()
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="idivkit-hub-"))
    base.chmod(0o755)
    state, homes, exchange = base / "state", base / "home", base / "exchange"
    state.mkdir(mode=0o700)
    homes.mkdir(mode=0o755)
    exchange.mkdir()
    exchange.chmod(0o777)  # as nbgrader asks of /srv/nbgrader/exchange
    _remove_test_users()  # leftovers of an interrupted run
    try:
        for name in USERS:
            _run(["useradd", "--create-home", "--home-dir", str(homes / name), "--comment", TEST_MARK,
                  "--shell", "/bin/bash", "--user-group", name], timeout=60)
        # The instructor's course folder: a copy of the course (config and sources), theirs.
        from autograder.course import copy_course

        course = copy_course(ROOT / "course", homes / INSTRUCTOR / "idivkit" / "course")
        _run(["chown", "-R", f"{INSTRUCTOR}:{INSTRUCTOR}", str(homes / INSTRUCTOR)], timeout=60)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "PYTEST"))}
        env.update(IDIVKIT_INSTRUCTORS=INSTRUCTOR, IDIVKIT_STUDENTS=",".join(STUDENTS),
                   IDIVKIT_EXCHANGE=str(exchange), IDIVKIT_COURSE_DIR="idivkit/course",
                   JUPYTER_CONFIG_DIR=str(state / "jupyter"), PATH=f"{BIN}:{env.get('PATH', '')}")
        with _traversable_python(USERS), running_hub(state, env) as hub:
            hub.start_servers(USERS)
            _drive_the_class(hub, course, homes, env)
    finally:
        _remove_test_users()
        shutil.rmtree(base, ignore_errors=True)
    print(f"hub class cycle: {time.monotonic() - started:.0f} s")


def _drive_the_class(hub: Hub, course: Path, homes: Path, env: dict) -> None:
    # Only the instructor's server has the Formgrader (hub/jupyterhub_config.py's roles).
    hub.user(INSTRUCTOR, "GET", "/formgrader/api/status")
    for student in STUDENTS:
        hub.user(student, "GET", "/formgrader/api/status", ok=(404,))

    # The instructor generates the student version and releases it to the exchange.
    hub.nbgrader(INSTRUCTOR, f"/formgrader/api/assignment/{LESSON}/assign")
    hub.nbgrader(INSTRUCTOR, f"/formgrader/api/assignment/{LESSON}/release")

    # Each student fetches it, answers in the notebook and submits.
    form = {"course_id": COURSE_ID, "assignment_id": LESSON}
    notebook_path = f"/api/contents/{LESSON}/{LESSON}.ipynb"
    for student, kind in STUDENTS.items():
        listing = hub.nbgrader(student, "/assignments/fetch", data=form)
        assert any(a["assignment_id"] == LESSON and a["status"] == "fetched" for a in listing["value"]), listing
        notebook = hub.user(student, "GET", notebook_path, params={"content": 1}).json()["content"]
        hub.user(student, "PUT", notebook_path,
                 json={"type": "notebook", "format": "json", "content": _answer(notebook, student, kind)})
        hub.nbgrader(student, "/assignments/submit", data=form)

    # The instructor collects; root autogrades with the course's sandboxed grader.
    hub.nbgrader(INSTRUCTOR, f"/formgrader/api/assignment/{LESSON}/collect")
    for student in STUDENTS:
        assert (course / "submitted" / student / LESSON / f"{LESSON}.ipynb").is_file(), student
    _run(["bash", str(HUB / "autograde.sh"), LESSON, INSTRUCTOR], timeout=600, env=env)

    # The gradebook: each student's score, as their answers deserve.
    from nbgrader.api import Gradebook

    expected = _expected_scores()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        scores = {s: float(gb.find_submission(LESSON, s).score) for s in STUDENTS}
        max_score = float(gb.find_assignment(LESSON).max_score)
    assert scores == {s: expected[kind] for s, kind in STUDENTS.items()}, (scores, expected)
    assert 0 < expected["partial"] < expected["complete"] <= max_score
    with open(course / f"grades-{LESSON}.csv") as f:
        rows = {row["student"]: float(row["score"]) for row in csv.DictReader(f)}
    assert rows == scores, (rows, scores)
    assert all(path.owner() == INSTRUCTOR for path in [course, *course.rglob("*")]), \
        "hub/autograde.sh left files in the course folder that the instructor does not own"

    # The instructor generates and releases feedback; each student fetches their own.
    hub.nbgrader(INSTRUCTOR, f"/formgrader/api/assignment/{LESSON}/generate_feedback")
    hub.nbgrader(INSTRUCTOR, f"/formgrader/api/assignment/{LESSON}/release_feedback")
    for student, kind in STUDENTS.items():
        listing = hub.nbgrader(student, "/assignments/fetch_feedback", data=form)
        feedback = sorted((homes / student / LESSON / "feedback").rglob("*.html"))
        assert len(feedback) == 1, (student, feedback, listing)
        html = feedback[0].read_text()
        assert f"written by {student}" in html, f"{student} received feedback that is not theirs"
        others = [other for other in STUDENTS if other != student and f"written by {other}" in html]
        assert not others, f"{student}'s feedback shows the answers of {others}"
        assert f"{LESSON} (Score: {round(expected[kind], 2)} / {round(max_score, 2)})" in html, \
            f"{student}'s feedback does not show their score {expected[kind]:g} / {max_score:g}"
        assert feedback[0].owner() == student
