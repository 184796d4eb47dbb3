"""Check, the way JupyterLab, jupyter-server and nbgrader read them, that learners get their settings.

Run under binder/start (which puts jupyter/learner/ on Jupyter's config path), from the repository
root: binder/postBuild does, so that an image that would show learners the instructor tools, or run
Validate without the course's settings, fails to build. Exits 1 naming every problem.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from jupyter_core.paths import jupyter_config_path, jupyter_path
from jupyter_server.extension.config import ExtensionConfigManager
from jupyter_server.serverapp import ServerApp
from jupyterlab_server.config import get_page_config
from traitlets.config import PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[1]
LEARNER = ROOT / "jupyter" / "learner"
VALIDATE_PLUGIN = "@jupyter/nbgrader:validate-assignment"
VALIDATE_EXTENSION = "nbgrader.server_extensions.validate_assignment"


def problems() -> list[str]:
    found: list[str] = []
    if str(LEARNER) not in jupyter_config_path():
        return [f"{LEARNER} is not on Jupyter's config path (run this under binder/start)"]

    # JupyterLab's frontend: the nbgrader plugins jupyter/learner/ switches off, and locks.
    wanted = json.loads((LEARNER / "labconfig" / "page_config.json").read_text())
    server = ServerApp()
    server.load_config_file()
    settings_dir = server.config.LabApp.get("app_settings_dir")
    page_config = get_page_config(jupyter_path("labextensions"), settings_dir)
    for key in ("disabledExtensions", "lockedExtensions"):
        missing = sorted(set(wanted[key]) - set(page_config.get(key, [])))
        found += [f"lab plugin {name} is not in {key}" for name in missing]
    if VALIDATE_PLUGIN in page_config.get("disabledExtensions", []):
        found.append(f"lab plugin {VALIDATE_PLUGIN} is disabled")

    # jupyter-server: the instructor extensions off, Validate's on.
    wanted_server = json.loads((LEARNER / "jupyter_server_config.json").read_text())
    enabled = ExtensionConfigManager(read_config_path=server.config_file_paths).get_jpserver_extensions()
    for name, on in wanted_server["ServerApp"]["jpserver_extensions"].items():
        if bool(enabled.get(name, False)) != on:
            found.append(f"server extension {name} is {'off' if on else 'on'}")
    if not enabled.get(VALIDATE_EXTENSION, False):
        found.append(f"server extension {VALIDATE_EXTENSION} is not enabled")
    culling = server.config.MappingKernelManager
    if culling.get("cull_idle_timeout", 0) <= 0:
        found.append("idle kernels are never shut down (MappingKernelManager.cull_idle_timeout)")

    # JupyterLab's settings overrides (news prompt off, kernels shut down with their notebook).
    if settings_dir is None or Path(settings_dir).resolve() != (LEARNER / "lab-settings").resolve():
        found.append(f"LabApp.app_settings_dir is {settings_dir!r}, not {LEARNER / 'lab-settings'}")
    else:
        overrides = json.loads((Path(settings_dir) / "overrides.json").read_text())
        if overrides.get("@jupyterlab/notebook-extension:tracker", {}).get("kernelShutdown") is not True:
            found.append("kernels are not shut down when their notebook closes")
        if overrides.get("@jupyterlab/apputils-extension:notification", {}).get("fetchNews") != "false":
            found.append("learners are asked about Jupyter news")

    # nbgrader's Validate handler: its config from a folder without nbgrader_config.py.
    from nbgrader.apps import NbGrader

    course = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "course")).load_config()
    here = os.getcwd()
    os.chdir(tempfile.mkdtemp())
    try:
        paths = jupyter_config_path()
        paths.insert(0, os.getcwd())
        validate = NbGrader()
        validate.config_file_paths.append(paths)
        validate.load_config_file()
    finally:
        os.chdir(here)
    if not course.Execute or validate.config.Execute != course.Execute:
        found.append(f"Validate runs with Execute settings {dict(validate.config.Execute)}, "
                     f"not the course's {dict(course.Execute)}")
    return found


def main() -> int:
    found = problems()
    if found:
        print("learner settings: " + "; ".join(found), file=sys.stderr)
        return 1
    print("learner settings: nbgrader's Validate button with the course's settings; the instructor "
          "tools off; kernels shut down with their notebook or after idling; no news prompt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
