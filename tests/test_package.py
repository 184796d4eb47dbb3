"""The package as a whole: light import, public names, the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import idivkit

PUBLIC = [
    "beta_divergence",
    "beta_divergence_grad",
    "squared_error",
    "i_divergence",
    "reverse_i_divergence",
    "itakura_saito",
]


def _fresh_python(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    ).stdout


def test_import_is_fast_and_leaves_heavy_libraries_unimported():
    out = _fresh_python(
        "import sys, time, json; t = time.perf_counter(); import idivkit; "
        "dt = time.perf_counter() - t; "
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'jax', 'matplotlib', 'skimage', 'sklearn') "
        "if m in sys.modules); print(json.dumps({'seconds': dt, 'heavy': heavy}))"
    )
    report = json.loads(out)
    assert report["heavy"] == [], f"import idivkit pulled in {report['heavy']}"
    assert report["seconds"] < 1.0, f"import idivkit took {report['seconds']:.2f} s"


def test_lazy_submodules_do_not_import_tensorflow():
    out = _fresh_python(
        "import sys, idivkit; idivkit.backprop; idivkit.ssim; idivkit.data; idivkit.losses; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    assert out.split() == ["False", "False"]


def test_public_names():
    for name in PUBLIC:
        assert callable(getattr(idivkit, name)), name
    from idivkit.backprop import gradients  # noqa: F401
    from idivkit.data import load_mnist  # noqa: F401
    from idivkit.ssim import global_ssim, mean_ssim, thesis_ssim  # noqa: F401


def test_unknown_attribute_is_an_attribute_error():
    try:
        idivkit.no_such_thing
    except AttributeError as error:
        assert "no_such_thing" in str(error)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_command_line_help_is_quick_and_lists_reproduce():
    for command in ([sys.executable, "-m", "idivkit", "--help"], [str(Path(sys.executable).with_name("idivkit")), "--help"]):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "reproduce" in result.stdout
        assert time.perf_counter() - start < 10


def test_command_line_without_subcommand_prints_help_and_fails():
    result = subprocess.run([sys.executable, "-m", "idivkit"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "usage" in result.stdout.lower()
