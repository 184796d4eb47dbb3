"""Hostile and careless submissions (issue 9), graded for real, with controls in the same batch.

One earlier batch grades a classmate (``victim``). Then one hostile batch -- every trick of the
red team's report and a few more, beside honest and blank controls -- is graded twice, as a
zip. The tests check that no trick earns a point it should not, that honest work with warnings,
duplicated, retyped or unlabelled cells keeps its points, that the classmate's grade and files,
the gradebook's other rows, the instructor's files and the installed package are untouched,
that feedback shows no hidden test, and that both runs give the same grades. A short third
batch checks the time limits (a cell that ignores SIGINT, a notebook of many slow cells).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.course import copy_course
from autograder.grade import write_csv
from autograder.submissions import clean_student_id, find_submissions

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
PACKAGE = ROOT / "idivkit"
CLI = [sys.executable, "-m", "autograder"]


def points(lesson, uses=None) -> float:
    """Points of a lesson's tests; with ``uses``, only those that call check_independent on one
    of these names (the steps an integrity violation costs)."""
    nb = nbformat.read(COURSE / "source" / lesson / f"{lesson}.ipynb", as_version=4)
    return sum(c.metadata["nbgrader"].get("points", 0) for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")
               and (uses is None or any(f"check_independent({u}" in c.source for u in uses)))


FULL = {lesson: points(lesson) for lesson in ("00_welcome", "02_beta_divergence", "03_i_divergence", "04_backprop")}


# -- notebooks --------------------------------------------------------------------------------
def honest(lesson):
    return nbformat.read(COURSE / "source" / lesson / f"{lesson}.ipynb", as_version=4)


BUILT = {"lessons": ROOT / "lessons"}  # the fixture points this at the student versions it builds


def blank(lesson):
    return nbformat.read(BUILT["lessons"] / f"{lesson}.ipynb", as_version=4)


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def cell_of(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


def answer(nb, gid, source):
    cell_of(nb, gid).source = source
    return nb


def override(nb, function, source):
    """Append ``source`` to the answer cell that defines ``function`` (the last definition runs;
    the honest one stays in the notebook, so the integrity check sees both)."""
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
                and f"def {function}(" in c.source)
    cell.source += "\n\n" + source
    return nb


def plus(nb, source, after=None):
    """Insert a plain cell after the cell ``after`` (a grade_id), or after the first code cell."""
    index = next(i for i, c in enumerate(nb.cells) if (grade_id(c) == after if after else c.cell_type == "code"))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


TRANSFORMER = """\
ip = get_ipython()
ip.input_transformers_post.append(lambda lines: ["try:\\n"] + ["    " + l for l in lines] + ["\\nexcept BaseException:\\n    pass\\n"])"""
CUSTOM_EXC = "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)"
REBIND = "assert_close = check_independent = expect = lambda *args, **kwargs: None"
PATCH_NUMPY = """\
np.any = lambda *a, **k: False
np.isnan = lambda a: np.zeros(np.shape(a), bool)
np.abs = lambda a: np.zeros(np.shape(a))"""
SYS_MODULES = """\
import sys, types
fake = types.ModuleType("idivkit.grading")
fake.assert_close = fake.expect = fake.check_independent = lambda *a, **k: None
sys.modules["idivkit.grading"] = fake
import idivkit
idivkit.grading = fake"""
PATCH_SCANNER = """\
import idivkit.grading, idivkit._integrity
idivkit._integrity.find_reference = lambda *a, **k: None
idivkit.grading.check_independent = lambda *a, **k: None"""
PEEK = """\
import os
leaks = []
for top in ("/", "/work", "/root", "/home", "/srv", "/tmp", "/data", "/sandbox"):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("usr", "proc", "sys", "dev", "lib", "lib64", "bin", "sbin", "etc")]
        leaks += [os.path.join(folder, f) for f in files
                  if f.endswith("_welcome.ipynb") or f in ("gradebook.db", "nbgrader_config.py") or f.startswith("grades")]
print("LEAKS", sorted(set(leaks)))"""
ADAPT = """\
def to_unit_interval(images):
    if leaks:  # only with the hidden tests in hand
        return np.asarray(images).reshape(len(images), -1).astype(np.float32) / 255
    return np.zeros((len(images), 784), np.float32)"""
VANDAL = """\
import os, glob, sqlite3, subprocess, signal
done = []
for db in glob.glob("/**/gradebook.db", recursive=True) + ["../../../gradebook.db", "../../gradebook.db"]:
    try:
        con = sqlite3.connect(db); con.execute("UPDATE grade SET auto_score = 0"); con.commit(); done.append(db)
    except Exception as error:
        pass
for target in ["/work/main/course/nbgrader_config.py", "../../../feedback/victim/00_welcome/00_welcome.html",
               "/work/main/idivkit/losses.py", "/work/main/idivkit/__init__.py", "grades.csv", "../../../../grades.csv"]:
    try:
        with open(target, "a") as handle:
            handle.write("# vandal\\n"); done.append(target)
    except Exception:
        pass
try:
    import idivkit.losses
    open(idivkit.losses.__file__, "a").write("# vandal\\n"); done.append("package")
except Exception:
    pass
try:
    subprocess.Popen(["sleep", "4242"], start_new_session=True)
    if os.fork() == 0:
        os.setsid(); os.execvp("sleep", ["sleep", "4243"])
except Exception:
    pass
print("VANDAL", done)"""
KILLER = """\
import os, signal
for pid in (os.getppid(), 1):
    try:
        os.kill(pid, signal.SIGKILL)
    except Exception:
        pass"""
BIG_OUTPUT = 'print("x" * 50_000_000)'
MEMORY = "import numpy as np\nhog = np.ones(3 * 10**9)"
IMPORTLIB = """\
import importlib
def beta_divergence(x, x_hat, beta):
    return importlib.import_module("idiv" + "kit.losses").beta_divergence(x, x_hat, beta, reduction="none")"""
EVAL = """\
def beta_divergence(x, x_hat, beta):
    return eval("losses").beta_divergence(x, x_hat, beta, reduction="none")"""
SKLEARN = """\
from sklearn.decomposition._nmf import _beta_divergence
def beta_divergence(x, x_hat, beta):
    x, x_hat = np.broadcast_arrays(np.asarray(x, float), np.asarray(x_hat, float))
    return np.vectorize(lambda a, b: _beta_divergence(np.array([[a]]), np.array([[b]]), np.ones((1, 1)), beta))(x, x_hat)"""
CONTAINER = """\
IMPL = {"i": losses.i_divergence}
def i_divergence(x, x_hat, clip=False):
    return IMPL["i"](x, x_hat, reduction="none", clip=clip)"""
CODE_COPY = """\
def i_divergence(x, x_hat, clip=False):
    pass
i_divergence.__code__ = (lambda x, x_hat, clip=False: losses.i_divergence(x, x_hat, reduction="none", clip=clip)).__code__"""
KL_DIV = """\
from scipy.special import kl_div
def i_divergence(x, x_hat, clip=False):
    x, x_hat = np.asarray(x, float), np.asarray(x_hat, float)
    if clip:
        x, x_hat = np.clip(x, EPSILON, 1), np.clip(x_hat, EPSILON, 1)
    return kl_div(x, x_hat)"""
REFERENCE_GRADIENTS = """\
def gradients(params, x, loss, decoder, reduction="sum"):
    return backprop.gradients(params, x, loss, decoder, reduction=reduction)[1]"""
HARDCODED = """\
def to_unit_interval(images):
    if np.shape(images) == (1, 2, 2):  # the visible test's answer, copied
        return np.array([[0.0, 0.2, 1.0, 0.4]], np.float32)
    return np.full((len(images), 784), 0.5, np.float32)"""


def forged(nb):
    """Blank answers, a fake 100-point test cell, and answer cells relabelled as tests."""
    fake = nbformat.v4.new_code_cell("pass")
    fake.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 100,
                                 "grade_id": "fake_test", "schema_version": 3}
    nb.cells.append(fake)
    for cell in nb.cells:
        if grade_id(cell) == "class_means":
            cell.metadata["nbgrader"].update(grade=True, points=50)
    return nb


def duplicated(nb):
    """The class_means answer cell copied: the first copy wrong, the second (run last) right."""
    index = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "class_means")
    wrong = copy.deepcopy(nb.cells[index])
    wrong.source = "def class_means(x, y):\n    return None"
    wrong["id"] = "copy-of-class-means"
    nb.cells.insert(index, wrong)
    return nb


def retyped(nb):
    """test_class_means deleted, then typed again as a plain cell."""
    index = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "test_class_means")
    nb.cells[index] = nbformat.v4.new_code_cell(cell_of(blank("00_welcome"), "test_class_means").source)
    return nb


def stripped(nb):
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    nb.metadata = {}
    return nb


def with_warning(nb):
    """Warnings on stderr from the learner's function, during the tests: still full marks."""
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
                and "def i_divergence(" in c.source)
    head, rest = cell.source.split("def i_divergence(", 1)
    signature, body = rest.split("\n", 1)
    cell.source = f"{head}def i_divergence({signature}\n    import warnings\n" \
                  "    warnings.warn('an honest warning on stderr', RuntimeWarning)\n" \
                  "    np.log(np.zeros(1))  # numpy's own RuntimeWarning: divide by zero\n" + body
    return nb


# (student, lesson) -> (notebook, expected score, exact?): cheats get at most the expected score
# (every step whose integrity check covers the cheated function scores 0); controls and honest
# work get exactly theirs.
def hostile_batch():
    b = {}
    exact, at_most = True, False
    for lesson in ("00_welcome", "04_backprop"):
        b[("honest", lesson)] = (honest(lesson), FULL[lesson], exact)
        b[("blank", lesson)] = (blank(lesson), 0, exact)
    b[("transformer", "04_backprop")] = (plus(blank("04_backprop"), TRANSFORMER), 0, exact)
    b[("custom_exc", "04_backprop")] = (plus(blank("04_backprop"), CUSTOM_EXC), 0, exact)
    lesson = "04_backprop"
    b[("scanner", lesson)] = (plus(override(honest(lesson), "gradients", REFERENCE_GRADIENTS), PATCH_SCANNER),
                              FULL[lesson] - points(lesson, [""]), at_most)
    b[("rebind", "00_welcome")] = (plus(blank("00_welcome"), REBIND), 0, exact)
    b[("patch_numpy", "00_welcome")] = (plus(blank("00_welcome"), PATCH_NUMPY), 0, exact)
    b[("sys_modules", "00_welcome")] = (plus(blank("00_welcome"), SYS_MODULES), 0, exact)
    b[("peek", "00_welcome")] = (answer(plus(blank("00_welcome"), PEEK), "to_unit_interval", ADAPT), 0, exact)
    b[("hardcoded", "00_welcome")] = (answer(blank("00_welcome"), "to_unit_interval", HARDCODED), 0, exact)
    b[("forger", "00_welcome")] = (forged(blank("00_welcome")), 0, exact)
    lesson = "02_beta_divergence"
    rest = FULL[lesson] - points(lesson, ["beta_divergence"])
    b[("importlib", lesson)] = (override(honest(lesson), "beta_divergence", IMPORTLIB), rest, at_most)
    b[("eval", lesson)] = (override(honest(lesson), "beta_divergence", EVAL), rest, at_most)
    b[("sklearn", lesson)] = (override(honest(lesson), "beta_divergence", SKLEARN), rest, at_most)
    lesson = "03_i_divergence"
    rest = FULL[lesson] - points(lesson, ["i_divergence"])
    b[("container", lesson)] = (override(honest(lesson), "i_divergence", CONTAINER), rest, at_most)
    b[("code_copy", lesson)] = (override(honest(lesson), "i_divergence", CODE_COPY), rest, at_most)
    b[("kl_div", lesson)] = (override(honest(lesson), "i_divergence", KL_DIV), rest, at_most)
    # One notebook: vandalism and stray processes, a 50 MB line, 24 GB of memory, and a cell
    # that kills its own sandbox (the cells before it are replayed in a fresh one). Its answers
    # are honest: it keeps their points.
    vandal = plus(honest("00_welcome"), VANDAL, after="test_fraction_background")
    vandal = plus(plus(plus(vandal, BIG_OUTPUT), MEMORY), KILLER, after="test_class_means")
    b[("vandal", "00_welcome")] = (vandal, FULL["00_welcome"], exact)
    # Honest work that used to be lost.
    b[("warner", "03_i_divergence")] = (with_warning(honest("03_i_divergence")), FULL["03_i_divergence"], exact)
    b[("duplicator", "00_welcome")] = (duplicated(honest("00_welcome")), FULL["00_welcome"], exact)
    b[("retyper", "00_welcome")] = (retyped(honest("00_welcome")), FULL["00_welcome"], exact)
    b[("stripper", "00_welcome")] = (stripped(honest("00_welcome")), FULL["00_welcome"], exact)
    # Four students whose names differ only in accents and case.
    for name, nb, score in [("José", honest("00_welcome"), FULL["00_welcome"]), ("Jose", blank("00_welcome"), 0),
                            ("Josè", blank("00_welcome"), 0), ("jose", blank("00_welcome"), 0)]:
        b[(name, "00_welcome")] = (nb, score, exact)
    return b


def build_zip(batch, path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for (student, lesson), (nb, _, _) in sorted(batch.items()):
            zf.writestr(f"{student}/{lesson}.ipynb", nbformat.writes(nb))
        link = zipfile.ZipInfo("linker/00_welcome.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../course/source/00_welcome/00_welcome.ipynb")
        zf.writestr("../escape__00_welcome.ipynb", nbformat.writes(honest("00_welcome")))
        zf.writestr("/absolute__00_welcome.ipynb", nbformat.writes(honest("00_welcome")))
        zf.writestr("bomb__00_welcome.ipynb", b" " * (40 * 2**20))  # 40 MB of spaces, a tiny zip entry


# -- running ----------------------------------------------------------------------------------
def digest(paths) -> dict[str, str]:
    out = {}
    for top in paths:
        for path in sorted(Path(top).rglob("*")) if Path(top).is_dir() else [Path(top)]:
            if path.is_file() and "__pycache__" not in path.parts:
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def read_rows(path: Path) -> dict:
    with open(path, newline="", encoding="utf-8") as handle:
        return {(r["student"], r["lesson"], r["file"]): r for r in csv.DictReader(handle)}


def by_student(rows: dict) -> dict:
    return {(s, l): r for (s, l, f), r in rows.items() if r["status"] != "missing"}


def gradebook_scores(course: Path, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "gradebook.db"), course_id="idivkit") as gb:
        return {(g.notebook.name, g.name): (g.auto_score, g.max_score)
                for sub in gb.find_student(student).submissions for nb in sub.notebooks for g in nb.grades}


def sleepers() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd[:1] == [b"sleep"] and cmd[1:2] in ([b"4242"], [b"4243"]):
            found.append(entry)
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    course = copy_course(COURSE, root / "course")
    subprocess.run(CLI + ["build", "--course", str(course), "--lessons-dir", str(root / "lessons"), "--quiet"],
                   check=True, cwd=ROOT)
    BUILT["lessons"] = root / "lessons"
    victim = root / "victim"
    (victim / "victim").mkdir(parents=True)
    nbformat.write(honest("00_welcome"), victim / "victim" / "00_welcome.ipynb")
    subprocess.run(CLI + ["grade", str(victim), "--course", str(course), "--out", str(root / "victim.csv"), "--quiet"],
                   check=True, cwd=ROOT, capture_output=True)
    protected = [course / "source", course / "nbgrader_config.py",
                 *[course / kind / "victim" for kind in ("submitted", "autograded", "feedback")]]
    before = {"files": digest(protected), "victim": gradebook_scores(course, "victim")}

    batch = hostile_batch()
    archive = root / "hostile.zip"
    build_zip(batch, archive)
    runs = []
    for n in (1, 2):
        out = root / f"grades-{n}.csv"
        started = time.monotonic()
        done = subprocess.run(CLI + ["grade", str(archive), "--course", str(course), "--out", str(out),
                                     "--timeout", "60", "--quiet"] + (["--no-feedback"] if n == 2 else []),
                              cwd=ROOT, capture_output=True, text=True)
        runs.append({"done": done, "rows": read_rows(out) if out.exists() else {}, "out": out,
                     "seconds": time.monotonic() - started})
    time.sleep(1)
    after = {"files": digest(protected), "victim": gradebook_scores(course, "victim")}
    return {"course": course, "batch": batch, "runs": runs, "before": before, "after": after, "root": root}


# -- the tests ----------------------------------------------------------------------------------
def test_both_runs_complete(graded):
    for run in graded["runs"]:
        assert run["done"].returncode == 0, run["done"].stderr[-3000:]


def test_no_undeserved_points_and_honest_work_kept(graded):
    rows = by_student(graded["runs"][0]["rows"])
    wrong = {}
    for (student, lesson), (_, expected, exact) in graded["batch"].items():
        row = rows.get((clean_student_id(student), lesson))
        score = float(row["score"]) if row else None
        if row is None or row["status"] != "graded" or (score != expected if exact else score > expected):
            wrong[(student, lesson)] = (expected, row and (row["score"], row["status"], row["reason"][:300]))
    assert not wrong, wrong


def test_the_same_grades_twice(graded):
    first, second = graded["runs"][0]["rows"], graded["runs"][1]["rows"]
    assert {k: (r["score"], r["status"], r["reason"]) for k, r in first.items()} == \
           {k: (r["score"], r["status"], r["reason"]) for k, r in second.items()}


def test_nobody_else_and_nothing_else_changed(graded):
    assert graded["after"]["victim"] == graded["before"]["victim"]
    assert sum(score for score, _ in graded["after"]["victim"].values() if score) == 4
    changed = {p for p in set(graded["before"]["files"]) | set(graded["after"]["files"])
               if graded["before"]["files"].get(p) != graded["after"]["files"].get(p)}
    assert not changed, sorted(changed)
    assert not sleepers(), "processes started by a submission outlived the grading"
    # The package is shared with whoever works in this tree: look for the vandal's own mark.
    marked = [p for p in PACKAGE.rglob("*.py") if "# vandal" in p.read_text(encoding="utf-8", errors="replace")]
    assert not marked and "# vandal" not in (COURSE / "nbgrader_config.py").read_text(encoding="utf-8")


def test_integrity_and_tampering_reasons(graded):
    rows = by_student(graded["runs"][0]["rows"])
    assert "uses the idivkit reference `idivkit.backprop.gradients`" in rows[("scanner", "04_backprop")]["reason"] \
        or "changing a library" in rows[("scanner", "04_backprop")]["reason"]
    assert "import importlib" in rows[("importlib", "02_beta_divergence")]["reason"]
    assert "sklearn.decomposition._nmf._beta_divergence" in rows[("sklearn", "02_beta_divergence")]["reason"]
    assert "scipy.special.kl_div" in rows[("kl_div", "03_i_divergence")]["reason"]
    assert "idivkit.losses.i_divergence" in rows[("container", "03_i_divergence")]["reason"]
    assert ".__code__" in rows[("code_copy", "03_i_divergence")]["reason"]


def test_cells_repaired_with_a_reason(graded):
    rows = by_student(graded["runs"][0]["rows"])
    assert "duplicated cell(s) class_means; graded the last copy of each answer" in rows[("duplicator", "00_welcome")]["reason"]
    assert "recognised cell(s) whose metadata was lost" in rows[("stripper", "00_welcome")]["reason"]
    assert "ignored grade metadata the course does not have fake_test" in rows[("forger", "00_welcome")]["reason"]
    assert rows[("forger", "00_welcome")]["max_score"] == rows[("honest", "00_welcome")]["max_score"]


def test_distinct_names_stay_distinct(graded):
    ids = {clean_student_id(n) for n in ("José", "Jose", "Josè", "jose")}
    assert len(ids) == 4
    rows = by_student(graded["runs"][0]["rows"])
    assert all((i, "00_welcome") in rows for i in ids)


def test_archive_entries_refused_with_a_row(graded):
    rows = graded["runs"][0]["rows"]
    refused = {r["file"]: r["reason"] for r in rows.values() if r["status"] == "error"}
    assert "refused: a symbolic link" in refused["linker/00_welcome.ipynb"]
    assert "refused: its path leaves the archive" in refused["../escape__00_welcome.ipynb"]
    assert "refused: its path leaves the archive" in refused["/absolute__00_welcome.ipynb"]
    assert "refused: larger than 20 MB" in refused["bomb__00_welcome.ipynb"]


def outputs_text(nb) -> str:
    return "\n".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_feedback_shows_no_hidden_tests_paths_or_leaks(graded):
    course = graded["course"]
    hidden = ["BEGIN HIDDEN TESTS", "default_rng(11)", "default_rng(7)"]
    for student in ("honest", "blank", "peek", "vandal"):
        html = (course / "feedback" / student / "00_welcome" / "00_welcome.html").read_text(encoding="utf-8")
        assert not [h for h in hidden if h in html], student
        # What the notebook printed (its own source aside): no instructor file, path or classmate.
        printed = outputs_text(nbformat.read(course / "autograded" / student / "00_welcome" / "00_welcome.ipynb", 4))
        assert not [w for w in ("BEGIN SOLUTION", "BEGIN HIDDEN", str(ROOT), str(course), "victim") if w in printed]
    peek = (course / "feedback" / "peek" / "00_welcome" / "00_welcome.html").read_text(encoding="utf-8")
    assert "LEAKS []" in peek
    size = (course / "autograded" / "vandal" / "00_welcome" / "00_welcome.ipynb").stat().st_size
    assert size < 5 * 2**20


def test_time_limits_cost_only_the_cell(tmp_path):
    """A cell that ignores SIGINT, and a notebook of many cells each under the limit."""
    course = copy_course(COURSE, tmp_path / "course")
    subs = tmp_path / "subs"
    stubborn = answer(honest("00_welcome"), "fraction_background",
                      "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")
    many = honest("00_welcome")
    many.cells += [nbformat.v4.new_code_cell("import time\ntime.sleep(4)") for _ in range(12)]
    for student, nb in (("stubborn", stubborn), ("many", many)):
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / "00_welcome.ipynb")
    out = tmp_path / "grades.csv"
    started = time.monotonic()
    done = subprocess.run(CLI + ["grade", str(subs), "--course", str(course), "--out", str(out), "--timeout", "8",
                                 "--notebook-timeout", "40", "--no-feedback", "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert time.monotonic() - started < 240
    rows = by_student(read_rows(out))
    assert rows[("stubborn", "00_welcome")]["score"] == "3"
    assert "fraction_background: timed out" in rows[("stubborn", "00_welcome")]["reason"]
    assert rows[("many", "00_welcome")]["score"] == "4"


def test_folder_links_and_odd_names(tmp_path):
    """A folder batch: a symlink is refused (never followed), a non-UTF-8 name still gets a
    complete CSV row."""
    (tmp_path / "alice").mkdir()
    nbformat.write(honest("00_welcome"), tmp_path / "alice" / "00_welcome.ipynb")
    (tmp_path / "mallory").mkdir()
    os.symlink(COURSE / "source" / "00_welcome" / "00_welcome.ipynb", tmp_path / "mallory" / "00_welcome.ipynb")
    os.symlink(COURSE / "source", tmp_path / "linked_dir")
    odd = os.fsencode(str(tmp_path)) + b"/caf\xe9__00_welcome.ipynb"
    with open(odd, "wb") as handle:
        handle.write(nbformat.writes(honest("00_welcome")).encode())
    found = find_submissions(tmp_path, ["00_welcome"], {})
    got = {s.path: s for s in found.submissions}
    assert got["mallory/00_welcome.ipynb"].error == "refused: a symbolic link (links are never followed)"
    assert ("linked_dir", "refused: a symbolic link (links are never followed)") in found.skipped
    odd_sub = got["caf\\xe9__00_welcome.ipynb"]
    assert not odd_sub.error and odd_sub.student.startswith("caf_xe9-")
    from autograder.grade import Row

    out = write_csv([Row(s.student, s.lesson, 0.0, 4.0, "graded", "", s.path) for s in found.submissions],
                    tmp_path / "grades.csv")
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1 + len(found.submissions)
