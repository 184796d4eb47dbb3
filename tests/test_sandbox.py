"""The grader's building blocks, fast: the static integrity check, the sympy whitelist, the
plain-data protocol, and what the sandbox lets a notebook see and do (a real bubblewrap)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from autograder import wire
from autograder.integrity import Notebook
from autograder.remote import LearnerError, Opaque, Proxy, Remote
from autograder.safe_sympy import UnsafeExpression, parse
from autograder.sandbox import bwrap
from autograder.session import Session

COURSE_IMPORTS = ["%matplotlib inline\nimport numpy as np\nimport sympy as sp\nimport idivkit\n"
                  "from idivkit import EPSILON, lessons, losses, backprop"]


def violation(source: str, name: str = "f"):
    return Notebook([source], COURSE_IMPORTS).violation(name)


# -- integrity -----------------------------------------------------------------------------
@pytest.mark.parametrize("source", [
    "def f(x, y):\n    return np.sum(x * np.log(x / y)) + EPSILON + idivkit.EPSILON",
    "def f(x, y):\n    losses = []\n    losses.append(x)\n    return losses",  # a local that shadows
    "def f(x, y):\n    return x\n%timeit f(1, 2)",
    "def f(x):\n    return sp.sympify('x**2 + 1')",
    "import os\nimport signal\ndef f(x):\n    return x",
])
def test_honest_code_passes(source):
    assert violation(source) is None


@pytest.mark.parametrize("source, named", [
    ("def f(x, y):\n    return losses.i_divergence(x, y)", "idivkit.losses.i_divergence"),
    ("def h(x):\n    return backprop.forward(x)\ndef f(x):\n    return h(x)", "through your `h`"),
    ("REFS = [losses.beta_divergence]\ndef f(x):\n    return REFS[0](x)", "idivkit.losses.beta_divergence"),
    ("def f(x):\n    return [losses][0].beta_divergence(x)", "idivkit.losses"),
    ("def f(x, g=losses.i_divergence):\n    return g(x)", "idivkit.losses.i_divergence"),
    ("def deco(g):\n    return losses.i_divergence\n@deco\ndef f(x):\n    return x", "through your `deco`"),
    ("def f(x):\n    g = lambda losses: 0\n    return losses.i_divergence(x)", "idivkit.losses.i_divergence"),
    ("class A:\n    losses = 1\n    def __call__(self, x):\n        return losses.i_divergence(x)\nf = A()",
     "idivkit.losses.i_divergence"),
    ("from sklearn.decomposition._nmf import _beta_divergence as b\ndef f(x):\n    return b(x)", "_beta_divergence"),
    ("import scipy.special as ss\ndef f(x):\n    return ss.xlogy(x, x)", "scipy.special.xlogy"),
    ("def f(x):\n    from scipy.special import rel_entr\n    return rel_entr(x, x)", "scipy.special.rel_entr"),
    ("import importlib\ndef f(x):\n    return importlib.import_module('idiv' + 'kit').losses", "import importlib"),
    ("def f(x):\n    return eval('losses')", "eval"),
    ("def f(x):\n    pass\nf.__code__ = losses.i_divergence.__code__", ".__code__"),
    ("np.any = lambda *a: False\ndef f(x):\n    return x", "changing a library"),
    ("import sys\nsys.modules['idivkit.grading'] = None\ndef f(x):\n    return x", "import sys"),
    ("get_ipython().set_custom_exc((Exception,), None)\ndef f(x):\n    return x", "get_ipython"),
    ("r = np.load('r.npy', allow_pickle=True)\ndef f(x):\n    return r(x)", "allow_pickle"),
    ("import pydoc\nr = pydoc.locate('idivkit.losses.i_divergence')\ndef f(x):\n    return r(x)", "pydoc"),
    ("e = sp.sympify('__imp' + 'ort__(\"idivkit\")')\ndef f(x):\n    return x", "sympify() of a built string"),
])
def test_every_route_to_a_reference_is_caught(source, named):
    why = violation(source)
    assert why is not None and named in why


# -- sympy and the wire ---------------------------------------------------------------------------
def test_sympy_round_trip_and_refusals():
    y, x = sp.symbols("y x", positive=True)
    expr = y * sp.log(y / x) - y + x
    assert parse(sp.srepr(expr)) == expr
    # Named constants (srepr writes them as bare names): a Gaussian likelihood has a pi in it.
    for constant in (sp.pi, sp.E, sp.oo, sp.I, sp.exp(-x**2 / 2) / sp.sqrt(2 * sp.pi)):
        assert parse(sp.srepr(constant)) == constant
    for text in ['__import__("os")', 'sympify("1")', "Pow(Integer(10), Integer(100000))", "pi()",
                 "pi.__class__",
                 "Symbol('x').__class__", "Pow(Pow(Integer(10), Integer(100)), Integer(1000))"]:
        with pytest.raises(UnsafeExpression):
            parse(text)


def test_wire_values_round_trip_without_pickle():
    value = {"a": np.arange(6.0).reshape(2, 3), "s": np.float32(1.5), "t": (1, "two", None, 2j), "l": [True]}
    encoder = wire.Encoder(lambda f: {"f": 1}, lambda o: {"o": 2})
    tree = encoder.encode(value)
    back = wire.decode(tree, encoder.blobs, on_callable=lambda n: "callable", on_other=lambda n: "other")
    assert np.array_equal(back["a"], value["a"]) and back["s"] == value["s"] and back["s"].dtype == np.float32
    assert back["t"] == value["t"] and back["l"] == [True]
    with pytest.raises(wire.WireError):
        wire.decode({"a": 0}, [b"\x80\x04not an npy file"], on_callable=None, on_other=None)
    with pytest.raises(wire.WireError):
        wire.decode({"x": 1}, [], on_callable=None, on_other=None)


# -- the sandbox ------------------------------------------------------------------------------------
needs_bwrap = pytest.mark.skipif(bwrap() is None, reason="bubblewrap is not installed")


REPO = Path(__file__).resolve().parents[1]


def test_private_tmp_is_mounted_before_the_binds_under_it(tmp_path):
    """A course checked out under /tmp (as CI may) must stay visible: bwrap's private /tmp has
    to come before the read-only binds, or it hides them."""
    from autograder.sandbox import Limits, bwrap_command

    cmd = bwrap_command(tmp_path, (3, 4), None, Limits())
    tmpfs = cmd.index("--tmpfs")
    assert cmd[tmpfs + 1] == "/tmp"
    binds = [i for i, arg in enumerate(cmd) if arg == "--ro-bind"]
    assert all(i > tmpfs for i in binds if cmd[i + 2].startswith("/tmp/")), cmd
    assert cmd.index("--ro-bind", tmpfs) > tmpfs and "/sandbox" in cmd


@needs_bwrap
def test_sandbox_isolation_and_calls():
    with Session() as session:
        remote = Remote(session)
        remote.deadline = time.monotonic() + 60
        probe = remote.execute(
            "import os, socket\n"
            f"print(os.getuid(), sorted(os.listdir({str(REPO)!r})) if os.path.isdir({str(REPO)!r}) else [])\n"
            "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=1); print('NET')\n"
            "except OSError:\n    print('no network')\n"
            "import idivkit\n"
            "try:\n    open(idivkit.__file__, 'a'); print('WRITABLE')\n"
            "except OSError:\n    print('read-only')\n")
        text = probe["outputs"][0]["text"]
        assert text.splitlines()[0] == "65534 ['.venv', 'idivkit', 'results']"  # no course/, no gradebook
        assert "no network" in text and "read-only" in text
        remote.execute("def double(a, cb=None):\n    a *= 2\n    return {'x': a.sum(), 'cb': cb(a) if cb else None}\n"
                       "def boom():\n    raise ValueError('nope')\nclass Thing: pass\nthing = Thing()")
        got = remote.get(["double", "boom", "thing", "missing"])
        assert set(got) == {"double", "boom", "thing"}
        assert isinstance(got["double"], Proxy) and isinstance(got["thing"], Opaque)
        array = np.ones(3)
        seen = []
        result = got["double"](array, cb=lambda a: seen.append(a.copy()) or float(a[0]))
        assert result == {"x": 6.0, "cb": 2.0} and np.array_equal(array, [2, 2, 2])  # in place, as in one process
        assert np.array_equal(seen[0], [2, 2, 2])
        with pytest.raises(LearnerError, match="ValueError: nope"):
            got["boom"]()
        remote.deadline = time.monotonic() + 3
        remote.session.send({"op": "exec", "source": "while True: pass"})
        with pytest.raises(Exception):
            session.receive(remote.deadline)
    assert session.process is None


def test_lesson_plan_slices_course_data_and_exports_visible_names():
    """What a test cell needs from the instructor's cells (and nothing more), what it fetches
    from the learner, and which of its visible names later cells read."""
    from nbformat.v4 import new_code_cell, new_notebook

    from autograder.trusted import LessonPlan

    def cell(source, **nbgrader):
        c = new_code_cell(source)
        if nbgrader:
            c.metadata["nbgrader"] = {"grade_id": nbgrader.pop("gid"), **nbgrader}
        return c

    nb = new_notebook(cells=[
        cell("import numpy as np\ndata = np.arange(4.0)\nprint('noise')"),
        cell("for k in range(3):\n    junk = k"),
        cell("def double(a):\n    return 2 * a", gid="ans", solution=True, grade=False),
        cell("mine = double(data)\nfor k in range(2):\n    pass\n### BEGIN HIDDEN TESTS\nsecret = mine.sum()\n"
             "### END HIDDEN TESTS", gid="test", grade=True, solution=False, points=1),
        cell("print(mine, secret)"),
    ])
    plan = LessonPlan(nb)
    test = plan.tests["test"]
    needed = {n for i in test.statements for n in plan.statements[i].binds}
    assert needed == {"np", "data"}  # not the loop of cell 1: the test binds k itself
    assert test.learner_names == {"double"}
    assert test.exports == {"mine"}  # never `secret`, which only the hidden part binds


def test_grading_refuses_without_bubblewrap(tmp_path):
    """No bwrap on PATH: `grade` stops with a message naming the way out; nothing is graded."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    (tmp_path / "subs" / "alice" / "00_welcome.ipynb").write_text("{}", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "subs"), "--out",
                           str(tmp_path / "grades.csv"), "--quiet"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PATH": str(tmp_path)})
    assert done.returncode == 1 and "bubblewrap (bwrap) is not installed" in done.stderr
    assert "--no-sandbox" in done.stderr and not (tmp_path / "grades.csv").exists()


def test_unsandboxed_runner_only_when_asked():
    """``sandboxed=False`` (``--no-sandbox``) runs the same runner as a plain subprocess."""
    with Session(sandboxed=False) as session:
        remote = Remote(session)
        remote.deadline = time.monotonic() + 60
        reply = remote.execute("import numpy as np\nint(np.arange(3).sum())")
        assert reply["outputs"][0]["data"]["text/plain"] == "3"
