"""The one environment definition: read the pins in binder/ and compare them with what is installed.

binder/requirements.txt holds the course's direct pins and includes binder/constraints.txt, the
full lock (every package those pins pull in, at the version installed in the tested virtualenv).
Binder (repo2docker), scripts/setup.sh and requirements-dev.txt all install through
binder/requirements.txt, so all of them get the locked versions.

Regenerate the lock after changing a pin in binder/requirements.txt (and installing it)::

    .venv/bin/python tests/binder_support.py > binder/constraints.txt
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
PROJECT = "idivkit"
# Installer tools stay out of the lock, as `pip freeze` leaves them out: each environment
# (a venv, Binder's conda env) brings its own, and pinning them would downgrade Binder's.
INSTALLER_TOOLS = ("pip", "setuptools", "wheel", "distribute")

LOCK_HEADER = """\
# Full lock of the runtime environment: generated, do not edit by hand.
# Every package that binder/requirements.txt pulls in, at the version installed and tested.
# binder/requirements.txt includes this file (-c), so Binder, scripts/setup.sh and
# requirements-dev.txt all install exactly these versions.
# Regenerate: .venv/bin/python tests/binder_support.py > binder/constraints.txt
"""


def read_requirement_lines(path: Path) -> tuple[list[Requirement], list[tuple[str, Path]]]:
    """Parse a pip requirements file: its requirements and its ``-r``/``-c`` includes.

    Returns ``(requirements, includes)`` where ``includes`` holds ``("-r" | "-c", path)`` with
    the path resolved relative to the including file, as pip resolves it. Lines pip would accept
    but this project does not use (URLs, ``-e``, other options) raise ValueError.
    """
    requirements: list[Requirement] = []
    includes: list[tuple[str, Path]] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"(-r|-c|--requirement|--constraint)[ =]\s*(\S+)", line)
        if match:
            flag = "-r" if match.group(1) in ("-r", "--requirement") else "-c"
            includes.append((flag, (path.parent / match.group(2)).resolve()))
            continue
        if line.startswith("-"):
            raise ValueError(f"{path}:{number}: unsupported pip option line {line!r}")
        requirements.append(Requirement(line))
    return requirements, includes


def exact_pins(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a file's own lines; every line must be ``name==version``."""
    requirements, _ = read_requirement_lines(path)
    pins: dict[str, str] = {}
    for requirement in requirements:
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise ValueError(f"{path}: {requirement} is not pinned exactly (name==version)")
        name = canonicalize_name(requirement.name)
        if name in pins:
            raise ValueError(f"{path}: {requirement.name} is pinned twice")
        pins[name] = specifiers[0].version
    return pins


def installed_version(name: str) -> str | None:
    """Version of an installed distribution, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def dependency_closure(roots: list[Requirement]) -> dict[str, str]:
    """Every installed distribution the ``roots`` need (themselves included), with its version.

    Walks the installed metadata (``Requires-Dist``), evaluating environment markers for this
    interpreter and the extras each requirement asks for. Raises LookupError naming the chain of
    requirements when something needed is not installed.
    """
    environment = default_environment()
    closure: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    stack: list[tuple[Requirement, str]] = [(r, r.name) for r in roots]
    while stack:
        requirement, chain = stack.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise LookupError(f"{chain}: {requirement.name} is needed but not installed") from None
        closure[name] = distribution.version
        for text in distribution.requires or []:
            child = Requirement(text)
            for extra in requirement.extras or {""}:
                if child.marker is None or child.marker.evaluate({**environment, "extra": extra}):
                    stack.append((child, f"{chain} -> {child.name}"))
                    break
    return closure


def runtime_roots() -> list[Requirement]:
    """The direct runtime requirements: binder/requirements.txt's own lines."""
    requirements, _ = read_requirement_lines(BINDER / "requirements.txt")
    return requirements


def render_lock() -> str:
    """The text binder/constraints.txt must have for the environment installed now."""
    closure = dependency_closure(runtime_roots())
    for name in (PROJECT, *INSTALLER_TOOLS):
        closure.pop(name, None)
    lines = [f"{name}=={closure[name]}" for name in sorted(closure)]
    return LOCK_HEADER + "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_lock())
