"""Binder configuration: what repo2docker builds from binder/, and that it is the tested environment.

repo2docker renders its Dockerfile without a container engine (``--no-build``); the tests read
that Dockerfile. The pins in binder/ are compared with requirements-dev.txt and with the versions
installed in the virtualenv the tests run in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from binder_support import (
    BINDER,
    INSTALLER_TOOLS,
    PROJECT,
    ROOT,
    exact_pins,
    read_requirement_lines,
    render_lock,
)
from browser_support import course_venv, learner_environment

REQUIREMENTS = BINDER / "requirements.txt"
CONSTRAINTS = BINDER / "constraints.txt"
POSTBUILD = BINDER / "postBuild"
START = BINDER / "start"
BUILD_REQUIREMENTS = BINDER / "build-requirements.txt"
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
    # postBuild runs only where REPO_DIR names its working folder (it deletes course/source).
    workdir = [i for i, line in enumerate(lines) if line.strip() == "WORKDIR ${REPO_DIR}"]
    assert "ENV REPO_DIR=${REPO_DIR}" in lines and workdir and workdir[-1] < postbuild[0]


def test_repo2docker_starts_learners_through_binder_start(repo2docker_render):
    """binder/start (the learner settings, jupyter/learner/) wraps every container start."""
    dockerfile, _ = repo2docker_render
    assert re.search(r'^ENV R2D_ENTRYPOINT="?\$\{REPO_DIR\}/binder/start"?$', dockerfile, re.M), (
        "repo2docker does not run binder/start when the container starts"
    )
    assert START.stat().st_mode & stat.S_IXUSR, "binder/start is not executable"
    assert START.read_text().rstrip().endswith('exec "$@"')


def test_postbuild_stops_on_errors_and_installs_only_pinned_packages():
    text = POSTBUILD.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("#!") and "bash" in lines[0], f"postBuild needs a bash shebang: {lines[0]!r}"
    commands = [line.strip() for line in lines[1:] if not line.lstrip().startswith("#")]
    assert commands[0] in ("set -e", "set -euo pipefail"), f"postBuild's first command must stop on errors: {commands[0]!r}"
    assert POSTBUILD.stat().st_mode & stat.S_IXUSR, "binder/postBuild is not executable"
    result = subprocess.run(["bash", "-n", str(POSTBUILD)], capture_output=True, text=True)
    assert result.returncode == 0, f"postBuild has a bash syntax error: {result.stderr}"
    # Every pip line installs exact pins from a file in binder/, or the project with no
    # dependencies and no build isolation (which would fetch an unpinned build backend).
    pip_lines = [c for c in commands if re.match(r"python -m pip install\b", c)]
    assert pip_lines, "postBuild does not install the project"
    for line in pip_lines:
        requirement_file = re.fullmatch(r"python -m pip install (?:--\S+ )*-r (binder/\S+\.txt)", line)
        if requirement_file:
            exact_pins(ROOT / requirement_file.group(1))  # raises on anything but name==version
            continue
        assert re.fullmatch(r"python -m pip install (--\S+ )*-e \.", line), line
        assert "--no-deps" in line and "--no-build-isolation" in line, (
            f"{line!r}: with build isolation pip downloads an unpinned build backend"
        )
    build_pins = exact_pins(BUILD_REQUIREMENTS)
    backend = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for text_requirement in backend:
        requirement = Requirement(text_requirement)
        pinned = build_pins.get(canonicalize_name(requirement.name))
        assert pinned and requirement.specifier.contains(pinned), (
            f"pyproject.toml's build requirement {requirement} is not pinned in {BUILD_REQUIREMENTS.name} "
            f"({build_pins})"
        )
    # The learner settings live in jupyter/learner/ (binder/start): postBuild writes no config.
    for forbidden in ("jupyter --config-dir", "labextension disable", "server extension disable", "<<"):
        assert forbidden not in text, f"postBuild still writes Jupyter configuration ({forbidden!r})"


def postbuild_without_pip() -> str:
    """binder/postBuild with its pip lines left out (they would install into the tests' venv)."""
    text = POSTBUILD.read_text()
    return re.sub(r"^python -m pip install .*$", ": pip line skipped here", text, flags=re.M)


@pytest.fixture(scope="module")
def built_image(tmp_path_factory) -> tuple[Path, dict[str, str], subprocess.CompletedProcess]:
    """A copy of the repository where binder/postBuild ran (less its pip lines), as in the image.

    HOME is fresh, with MNIST in its Keras cache as the download leaves it (tests/test_data.py
    tests the download itself); the virtualenv's python is the image's python.
    """
    base = tmp_path_factory.mktemp("image")
    tree = base / "repo"
    tree.mkdir()
    ignore = shutil.ignore_patterns("gradebook.db", "release", "submitted", "autograded", "feedback",
                                    ".nbgrader.log", ".ipynb_checkpoints", "__pycache__")
    for folder in ("binder", "jupyter", "course", "lessons", "scripts", "tests"):
        shutil.copytree(ROOT / folder, tree / folder, ignore=ignore)
    env = learner_environment(base / "home")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["REPO_DIR"] = str(tree)  # repo2docker's
    result = subprocess.run(["bash", "-c", postbuild_without_pip()], cwd=tree, env=env,
                            capture_output=True, text=True, timeout=300)
    return tree, env, result


def test_postbuild_refuses_to_run_in_a_checkout(tmp_path):
    """Outside repo2docker's build (no REPO_DIR naming the folder) it deletes nothing."""
    tree = tmp_path / "checkout"
    for folder in ("binder", "course"):
        shutil.copytree(ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("gradebook.db*"))
    result = subprocess.run(["bash", str(tree / "binder" / "postBuild")], cwd=tree,
                            env=learner_environment(tmp_path / "home"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "repo2docker's image build only" in result.stderr, result
    assert (tree / "course" / "source").is_dir()


@pytest.mark.slow
def test_postbuild_leaves_no_solutions_and_checks_the_learner_settings(built_image):
    tree, env, result = built_image
    assert result.returncode == 0, f"postBuild failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert not (tree / "course" / "source").exists(), "the image carries the instructor notebooks"
    assert not (tree / "tests").exists(), "the image carries the tests (worked submissions)"
    assert (tree / "course" / "nbgrader_config.py").is_file(), "Validate needs course/nbgrader_config.py"
    lessons = sorted(p.name for p in (tree / "lessons").glob("*.ipynb"))
    assert lessons == sorted(p.name for p in (ROOT / "lessons").glob("*.ipynb")) and lessons
    # binder/check_learner_config.py ran and said what learners get.
    assert "learner settings: nbgrader's Validate button with the course's settings" in result.stdout, result.stdout
    # python -m idivkit.data found MNIST where lesson 00 will read it.
    assert str((Path(env["HOME"]) / ".keras" / "datasets" / "mnist.npz").resolve()) in result.stdout
    assert result.stderr == "", result.stderr
    # Nothing was written into the user's Jupyter configuration.
    assert not (Path(env["HOME"]) / ".jupyter").exists()


@pytest.mark.slow
def test_the_settings_check_fails_without_binder_start(tmp_path):
    """binder/check_learner_config.py is a real check: outside binder/start it fails."""
    env = learner_environment(tmp_path)
    result = subprocess.run([sys.executable, str(BINDER / "check_learner_config.py")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "not on Jupyter's config path" in result.stderr, result


@pytest.fixture(scope="module")
def learner_env(tmp_path_factory) -> dict[str, str]:
    """A learner's environment, as binder/start leaves it (jupyter/learner/ on the config path)."""
    env = learner_environment(tmp_path_factory.mktemp("learner"))
    result = subprocess.run([str(START), "bash", "-c", "echo $JUPYTER_CONFIG_PATH"], env=env,
                            capture_output=True, text=True, timeout=30)
    env["JUPYTER_CONFIG_PATH"] = result.stdout.strip()
    assert env["JUPYTER_CONFIG_PATH"] == str(ROOT / "jupyter" / "learner"), result
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


@pytest.mark.slow
def test_learners_get_validate_and_no_instructor_tools(learner_env):
    """Read, with Jupyter's own listing commands, what jupyter/learner/ leaves enabled."""
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

    # The server extensions jupyter-server enables, from every config folder it reads.
    # (`jupyter server extension list` does not show $JUPYTER_CONFIG_PATH's folders.)
    server = subprocess.run([sys.executable, "-c", SERVER_EXTENSIONS], env=env, capture_output=True,
                            text=True, timeout=120)
    assert server.returncode == 0, server.stderr
    enabled = json.loads(server.stdout.strip().splitlines()[-1])
    for extension in ("formgrader", "assignment_list", "course_list"):
        assert enabled.get(f"nbgrader.server_extensions.{extension}") is False, enabled
    assert enabled.get("nbgrader.server_extensions.validate_assignment") is True, enabled


SERVER_EXTENSIONS = """
import json
from jupyter_server.extension.config import ExtensionConfigManager
from jupyter_server.serverapp import ServerApp
paths = ServerApp().config_file_paths
print(json.dumps(ExtensionConfigManager(read_config_path=paths).get_jpserver_extensions()))
"""


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


def test_local_learners_start_jupyterlab_through_binder_start():
    """scripts/lab.sh and Binder share one settings source: binder/start and jupyter/learner/."""
    lab = (ROOT / "scripts" / "lab.sh").read_text()
    assert re.search(r"^exec binder/start \.venv/bin/jupyter lab \"\$@\"$", lab, re.M), lab
    settings = json.loads((ROOT / "jupyter" / "learner" / "jupyter_server_config.json").read_text())
    assert settings["LabApp"]["default_url"] == "/lab/tree/lessons/00_welcome.ipynb"
    assert (ROOT / settings["LabApp"]["default_url"].removeprefix("/lab/tree/")).is_file()


def test_lesson_00_tells_learners_how_kernels_work():
    """Lesson 00 (student version) explains the kernel settings learners get, with their numbers."""
    import nbformat

    settings = json.loads((ROOT / "jupyter" / "learner" / "jupyter_server_config.json").read_text())
    overrides = json.loads((ROOT / "jupyter" / "learner" / "lab-settings" / "overrides.json").read_text())
    assert overrides["@jupyterlab/notebook-extension:tracker"]["kernelShutdown"] is True
    minutes = settings["MappingKernelManager"]["cull_idle_timeout"] / 60
    lesson = nbformat.read(ROOT / "lessons" / "00_welcome.ipynb", as_version=4)
    text = "\n".join(c.source for c in lesson.cells if c.cell_type == "markdown")
    for sentence in ("Closing a notebook's tab shuts its kernel down",
                     f"Idle kernels of closed tabs are shut down after {minutes:g} minutes",
                     "Validate starts a second, fresh kernel"):
        assert sentence in text, f"lesson 00 does not say: {sentence!r}"


def test_course_environment_is_binders_alone():
    """.venv-course, where the browser tests run JupyterLab and the lessons' kernels, holds what
    Binder installs and nothing else: exactly the lock's versions, none of the test tools (Keras and
    TensorFlow import JAX, scikit-learn and OpenCV when they are present: 70-180 MB more per kernel)."""
    listing = subprocess.run([str(course_venv() / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                             capture_output=True, text=True, check=True, timeout=120).stdout
    installed = {canonicalize_name(p["name"]): p["version"] for p in json.loads(listing)}
    installed = {name: version for name, version in installed.items()
                 if name not in INSTALLER_TOOLS and name != PROJECT}
    lock = exact_pins(CONSTRAINTS)
    extra = sorted(set(installed) - set(lock))
    wrong = {name: (lock[name], installed.get(name)) for name in lock if installed.get(name) != lock[name]}
    assert not extra, (f".venv-course holds packages Binder does not install: {extra} (left from an "
                       f"older lock? delete .venv-course and run scripts/test.sh, which makes it again)")
    assert not wrong, f".venv-course differs from binder/constraints.txt (lock, installed): {wrong}"
