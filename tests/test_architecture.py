"""The package's shape: every module imports alone, imports point one way, no cycles, one
name table, and the public API is what ``__all__`` says."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "idivkit"

# Layers, lowest first: a module may import its own layer or lower ones, never higher ones.
LAYERS = {
    "core": 0,        # numerics, names, losses, backprop, data, ssim, keras
    "training": 1,    # idivkit.training (and its aliases trainer, grid)
    "reproduce": 2,   # idivkit.reproduce
    "cli": 3,
}
COURSE = ("idivkit.lessons", "idivkit.grading", "idivkit._integrity")  # course helpers: core only


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> list[str]:
    return sorted(_module_name(p) for p in PACKAGE.rglob("*.py"))


def _imports(path: Path, module_level_only: bool) -> set[str]:
    """Modules of idivkit that ``path`` imports (resolving relative imports)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    known = set(_modules())
    return {m for m in found if m in known and m != name}


def _layer(module: str) -> int:
    if module.startswith(("idivkit.training", "idivkit.trainer", "idivkit.grid")):
        return LAYERS["training"]
    if module.startswith("idivkit.reproduce"):
        return LAYERS["reproduce"]
    if module in ("idivkit.cli", "idivkit.__main__"):
        return LAYERS["cli"]
    return LAYERS["core"]


def test_imports_point_one_way():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        if name == "idivkit":  # the package's lazy loader names every submodule by string only
            continue
        for target in _imports(path, module_level_only=False):
            if target == "idivkit":
                continue
            if name.startswith(COURSE) and not target.startswith(COURSE) and _layer(target) > 0:
                upward.append(f"{name} (a course helper) imports {target}")
            elif _layer(target) > _layer(name):
                upward.append(f"{name} imports {target} (a higher layer)")
    assert not upward, "\n".join(sorted(upward))


def test_autograder_never_imports_the_lessons_helpers():
    offenders = []
    for path in (ROOT / "autograder").rglob("*.py"):
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("idivkit.lessons")]
    assert not offenders, offenders


def test_no_import_cycles():
    graph = {_module_name(p): _imports(p, module_level_only=True) for p in PACKAGE.rglob("*.py")}
    # A package importing its own submodules at load time is not a cycle of the submodules.
    graph = {k: {d for d in v if not k.startswith(d + ".")} for k, v in graph.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "\n".join(cycles)


CHILD = r"""
import importlib, json, os, sys
names = json.loads(sys.argv[1])
failures = {}
for name in names:
    pid = os.fork()
    if pid == 0:  # a child: an interpreter that has imported nothing of idivkit yet
        code = 0
        try:
            importlib.import_module(name)
        except BaseException as error:
            sys.stderr.write(f"{name}: {type(error).__name__}: {error}\n")
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status:
        failures[name] = status
print(json.dumps(failures))
"""


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter():
    modules = [m for m in _modules() if m != "idivkit.__main__"]
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(modules)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}, done.stderr[-3000:]


def test_the_two_imports_that_once_failed_work_in_fresh_interpreters():
    for code in ("import idivkit.grid", "from idivkit import *; training; keras; backprop; data; ssim",
                 "import idivkit.reproduce.figures; import idivkit.training.result"):
        # As a learner runs: no TF_CPP_MIN_LOG_LEVEL; TensorFlow's start-up lines must not show.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300, cwd=ROOT, env=env)
        assert done.returncode == 0, f"{code}\n{done.stderr[-2000:]}"
        assert done.stderr == "", f"{code} printed on stderr:\n{done.stderr[-2000:]}"


def test_public_api_is_all_and_every_name_in_it_works():
    import idivkit

    assert set(idivkit.__all__) >= {"beta_divergence", "i_divergence", "reverse_i_divergence",
                                    "backprop", "data", "ssim", "keras", "training"}
    assert not set(idivkit.__all__) & {"cli", "grading", "lessons", "reproduce", "trainer", "grid"}
    import idivkit.training as training

    for name in training.__all__:
        assert getattr(training, name) is not None, name


def test_names_are_defined_once_and_used_by_every_part():
    from idivkit import names
    from idivkit.backprop.layers import DECODERS as activations
    from idivkit.reproduce import thesis
    from idivkit.training.optimizers import KERAS2_DEFAULTS

    assert tuple(activations) == names.DECODERS
    assert set(KERAS2_DEFAULTS) == set(names.OPTIMIZERS)
    assert thesis.LOSSES == names.THESIS_LOSSES and thesis.OPTIMIZERS == names.THESIS_OPTIMIZERS
    # The mse convention is explicit: Keras's (no 1/2) in training, eq 30's half in backprop.
    assert names.loss_spec("mse").scale == 2.0 and names.derivation_loss("mse").name == "half_se"
    # Nothing guards the table with an assert that `python -O` would strip.
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        assert not [n for n in tree.body if isinstance(n, ast.Assert)], f"module-level assert in {path}"


def test_package_works_under_python_O():
    done = subprocess.run([sys.executable, "-O", "-c",
                           "import idivkit.names as n, idivkit.reproduce as r, idivkit.backprop as b; "
                           "print(len(n.LOSSES), len(n.OPTIMIZERS))"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.split() == ["5", "7"], done.stderr


@pytest.mark.parametrize("bad", [2.5, "3", True, 0, -1])
def test_schedules_refuse_non_integers_with_the_argument_named(bad):
    from idivkit.training.loop import check_schedule

    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        check_schedule(bad, 256)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        check_schedule(3, bad)


def test_choices_are_checked_once_with_the_valid_ones_listed():
    from idivkit.training.result import GridConfig

    with pytest.raises(ValueError, match=r"GridConfig.decoder must be one of 'relu', 'sigmoid', got 'tanh'"):
        GridConfig("tanh", "mse", "adam")
    with pytest.raises(ValueError, match=r"GridConfig.optimizer must be one of .*'nadam'"):
        GridConfig("relu", "mse", "lbfgs")
    with pytest.raises(ValueError, match="unknown loss 'kl'"):
        GridConfig("relu", "kl", "adam")
