"""Binder configuration: what repo2docker builds from binder/, and that it is the tested environment.

repo2docker renders its Dockerfile without a container engine (``--no-build``); the tests read
that Dockerfile. The pins in binder/ are compared with requirements-dev.txt and with the versions
installed in the virtualenv the tests run in.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from binder_support import (
    BINDER,
    INSTALLER_TOOLS,
    PROJECT,
    ROOT,
    exact_pins,
    read_requirement_lines,
    render_lock,
)
from browser_support import learner_environment

REQUIREMENTS = BINDER / "requirements.txt"
CONSTRAINTS = BINDER / "constraints.txt"
POSTBUILD = BINDER / "postBuild"
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def decode_build_file_name(name: str) -> str:
    """repo2docker names copied build files by escaping characters as -XX (hex): undo that."""
    return re.sub(r"-([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), name)


@pytest.fixture(scope="module")
def repo2docker_render() -> tuple[str, str]:
    """(Dockerfile, log) that repo2docker renders for this repository, without building."""
    executable = Path(sys.executable).parent / "jupyter-repo2docker"
    assert executable.exists(), f"{executable} missing: install requirements-dev.txt"
    result = subprocess.run(
        [str(executable), "--no-build", "--debug", "--user-id", "1000", "--user-name", "jovyan",
         str(ROOT)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, f"repo2docker --no-build failed:\n{result.stderr[-4000:]}"
    # --debug prints the Dockerfile on stdout; the log (build pack choices) goes to stderr.
    dockerfile = result.stdout
    assert "FROM " in dockerfile, f"no Dockerfile in repo2docker's output:\n{result.stdout[-2000:]}"
    return dockerfile, result.stderr


def test_repo2docker_builds_python_3_11_from_runtime_txt(repo2docker_render):
    assert BINDER.joinpath("runtime.txt").read_text().strip() == "python-3.11"
    dockerfile, log = repo2docker_render
    output = dockerfile + log
    assert "Building conda environment for python=3.11" in output, log[-2000:]
    assert "Python version unspecified" not in output
    locks = [decode_build_file_name(m) for m in re.findall(r"COPY \S+ build_script_files/(\S+)", dockerfile)]
    environment_locks = [name for name in locks if "environment" in name]
    assert environment_locks and all("py-3.11" in name for name in environment_locks), environment_locks
    # The virtualenv the tests run in is the same Python minor version.
    assert sys.version_info[:2] == (3, 11)


def test_repo2docker_installs_requirements_after_copying_the_repository(repo2docker_render):
    dockerfile, _ = repo2docker_render
    lines = dockerfile.splitlines()
    install = [i for i, line in enumerate(lines)
               if re.search(r'pip install --no-cache-dir -r "binder/requirements\.txt"', line)]
    assert len(install) == 1, "repo2docker does not install binder/requirements.txt exactly once"
    copy_all = [i for i, line in enumerate(lines) if re.match(r"COPY --chown=\S+ src/ \$\{REPO_DIR\}/", line)]
    assert copy_all, "repo2docker does not copy the repository"
    # requirements.txt includes constraints.txt (-c): pip must run once the whole repository,
    # constraints.txt included, is in the image (repo2docker moves it there for -r/-c lines).
    assert copy_all[0] < install[0], "binder/requirements.txt is installed before constraints.txt is copied"


def test_repo2docker_runs_postbuild_after_the_requirements(repo2docker_render):
    dockerfile, _ = repo2docker_render
    lines = dockerfile.splitlines()
    install = next(i for i, line in enumerate(lines) if 'binder/requirements.txt"' in line and "pip install" in line)
    postbuild = [i for i, line in enumerate(lines) if line.strip() == "RUN ./binder/postBuild"]
    assert len(postbuild) == 1, "repo2docker does not run binder/postBuild"
    assert install < postbuild[0]


def test_postbuild_stops_on_errors_and_installs_the_project_without_dependencies():
    text = POSTBUILD.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("#!") and "bash" in lines[0], f"postBuild needs a bash shebang: {lines[0]!r}"
    commands = [line for line in lines[1:] if not line.lstrip().startswith("#")]
    assert commands[0].strip() == "set -e", f"postBuild's first command must be 'set -e', not {commands[0]!r}"
    assert POSTBUILD.stat().st_mode & stat.S_IXUSR, "binder/postBuild is not executable"
    # Dependencies come only from binder/requirements.txt (the lock): the project adds none.
    assert re.search(r"^python -m pip install (--\S+ )*--no-deps( --\S+)* -e \.$", text, re.M), text
    result = subprocess.run(["bash", "-n", str(POSTBUILD)], capture_output=True, text=True)
    assert result.returncode == 0, f"postBuild has a bash syntax error: {result.stderr}"


@pytest.fixture(scope="module")
def learner_env(tmp_path_factory) -> dict[str, str]:
    """Environment of a fresh Jupyter config where binder/postBuild ran (user level, no pip).

    Building it fails when postBuild's own check of its outcome fails.
    """
    return learner_environment(tmp_path_factory.mktemp("learner") / "jupyter")


@pytest.mark.slow
def test_postbuild_leaves_learners_validate_and_switches_off_instructor_tools(learner_env):
    """Read, with Jupyter's own listing commands, what postBuild's switches left enabled."""
    env = learner_env
    jupyter = [sys.executable, "-m", "jupyter"]
    labextensions = subprocess.run(
        jupyter + ["labextension", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    lab_text = ANSI.sub("", labextensions.stdout + labextensions.stderr)
    assert re.search(r"@jupyter/nbgrader v0\.9\.6 enabled OK", lab_text), lab_text
    disabled_section = lab_text.split("Disabled extensions:", 1)
    assert len(disabled_section) == 2, f"no disabled lab extensions listed:\n{lab_text}"
    for plugin in ("formgrader", "create-assignment", "assignment-list", "course-list", "menu"):
        assert f"@jupyter/nbgrader:{plugin}" in disabled_section[1], lab_text
    assert "@jupyter/nbgrader:validate-assignment" not in disabled_section[1]

    server = subprocess.run(
        jupyter + ["server", "extension", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    server_text = ANSI.sub("", server.stdout + server.stderr)
    user_section = server_text.split(f"Config dir: {env['JUPYTER_CONFIG_DIR']}", 1)[1].split("Config dir:", 1)[0]
    for extension in ("formgrader", "assignment_list", "course_list"):
        assert re.search(rf"nbgrader\.server_extensions\.{extension} disabled", user_section), server_text
    assert re.search(r"nbgrader\.server_extensions\.validate_assignment enabled", user_section), server_text


VALIDATE_CONFIG = """
import json, os
from jupyter_core.paths import jupyter_config_path
from nbgrader.apps import NbGrader
paths = jupyter_config_path()
paths.insert(0, os.getcwd())
app = NbGrader()
app.config_file_paths.append(paths)
app.load_config_file()
print(json.dumps(dict(app.config.Execute)))
"""


@pytest.mark.slow
def test_postbuild_gives_validate_the_course_settings(learner_env, tmp_path):
    """Validate, run from a folder without nbgrader_config.py (lessons/), gets course/'s settings."""
    from traitlets.config import PyFileConfigLoader

    env = learner_env
    folder = tmp_path / "lessons"
    folder.mkdir()
    # The loading steps of nbgrader's validate_assignment server handler.
    result = subprocess.run(
        [sys.executable, "-c", VALIDATE_CONFIG], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    course = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "course")).load_config()
    assert dict(course.Execute), "course/nbgrader_config.py sets no Execute options: nothing to compare"
    assert json.loads(result.stdout.strip().splitlines()[-1]) == dict(course.Execute)


def test_requirements_txt_pins_exactly_and_includes_the_lock():
    requirements, includes = read_requirement_lines(REQUIREMENTS)
    assert includes == [("-c", CONSTRAINTS.resolve())], includes
    pins = exact_pins(REQUIREMENTS)  # raises on anything but name==version
    assert {"jupyterlab", "nbgrader", "ipywidgets", "numpy", "keras"} <= set(pins)


def test_lock_agrees_with_the_direct_pins():
    _, includes = read_requirement_lines(CONSTRAINTS)
    assert includes == [], "constraints.txt must not include other files"
    lock = exact_pins(CONSTRAINTS)
    pins = exact_pins(REQUIREMENTS)
    different = {name: (version, lock.get(name)) for name, version in pins.items() if lock.get(name) != version}
    assert not different, f"binder/requirements.txt and constraints.txt disagree (pin, lock): {different}"
    assert PROJECT not in lock, "the lock must not pin the project itself"
    assert not set(INSTALLER_TOOLS) & set(lock), "the lock must not pin pip/setuptools/wheel"


def test_lock_is_exactly_the_installed_runtime_environment():
    """constraints.txt == every installed package binder/requirements.txt pulls in, at its version."""
    expected = render_lock()
    actual = CONSTRAINTS.read_text()
    if actual != expected:
        expected_pins = dict(line.split("==") for line in expected.splitlines() if "==" in line)
        actual_pins = dict(line.split("==") for line in actual.splitlines() if "==" in line)
        changes = {
            name: (actual_pins.get(name), expected_pins.get(name))
            for name in sorted(set(expected_pins) | set(actual_pins))
            if actual_pins.get(name) != expected_pins.get(name)
        }
        pytest.fail(
            f"binder/constraints.txt is not the installed runtime environment; (lock, installed): "
            f"{changes or 'header differs'}. Regenerate it: "
            f".venv/bin/python tests/binder_support.py > binder/constraints.txt"
        )


def test_requirements_dev_includes_binder_and_repins_nothing_differently():
    requirements, includes = read_requirement_lines(DEV_REQUIREMENTS)
    assert ("-r", REQUIREMENTS.resolve()) in includes, "requirements-dev.txt must include -r binder/requirements.txt"
    runtime = exact_pins(CONSTRAINTS)
    dev = exact_pins(DEV_REQUIREMENTS)
    clashes = {name: (version, runtime[name]) for name, version in dev.items() if name in runtime and runtime[name] != version}
    assert not clashes, f"requirements-dev.txt re-pins runtime packages differently (dev, binder): {clashes}"


def test_installed_versions_equal_every_pin():
    """The virtualenv the tests run in holds exactly the pinned versions (binder and dev)."""
    pins = {**exact_pins(CONSTRAINTS), **exact_pins(REQUIREMENTS), **exact_pins(DEV_REQUIREMENTS)}
    wrong = {}
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed versions differ from the pins (pin, installed): {wrong}"
    assert metadata.version(PROJECT), "the project is not installed"


def test_setup_script_installs_through_binder_requirements():
    """scripts/setup.sh installs binder/requirements.txt (or requirements-dev.txt, which includes it)."""
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "requirements=binder/requirements.txt" in setup
    assert "requirements=requirements-dev.txt" in setup
    assert re.search(r'pip install [^\n]*-r "\$requirements"', setup), setup
