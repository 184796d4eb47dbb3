"""The grading pipeline, end to end with real nbgrader runs in a temporary copy of course/.

One session-wide batch (``graded_batch``) autogrades every kind of submission at once: the
instructor versions (full marks), the untouched student versions (zero), partly correct,
cheating, broken, edited and renamed notebooks. The tests below read its CSV. The real
course/gradebook.db is never touched.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.course import Course, copy_course
from autograder.submissions import clean_student_id, find_submissions, lesson_from_name

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
LESSONS = Course(COURSE).lessons()
TIMEOUT_S = 20  # the per-cell limit of the timeout batch


# -- building submissions ------------------------------------------------------------------
def instructor(lesson: str):
    return nbformat.read(COURSE / "source" / lesson / f"{lesson}.ipynb", as_version=4)


def cell_of(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def answer(nb, grade_id: str, source: str):
    """Replace the learner's answer in a solution cell."""
    cell_of(nb, grade_id).source = source
    return nb


def partial_00():
    """Lesson 00: to_unit_interval right (1), class_means wrong (0 of 2), fraction right (1)."""
    nb = instructor("00_welcome")
    return answer(nb, "class_means", "def class_means(x, y):\n    return np.zeros((10, np.shape(x)[1]))")


def partial_01():
    """Lesson 01: encode 1, relu 1, sigmoid with eq 28's misprint 0, forward calls the idivkit
    reference 0 of 2 (integrity), n_parameters 1: 3 of 6."""
    nb = instructor("01_autoencoder")
    answer(nb, "sigmoid", "def sigmoid(u):\n    return 1 / (1 + np.exp(u))  # as printed in eq 28")
    return answer(nb, "forward_pass", "def forward(params, x, decoder='relu'):\n"
                                      "    return idivkit.backprop.forward(params, x, decoder)")


def raises_00():
    """An exception in the learner's code: to_unit_interval never gets defined (3 of 4)."""
    nb = instructor("00_welcome")
    cell = cell_of(nb, "to_unit_interval")
    cell.source = "1 / 0\n" + cell.source
    return nb


def edited_00():
    """Test cells tampered with: test_class_means edited to pass a wrong answer, and
    test_fraction_background deleted (the answer is right). Restored, this scores 1 + 0 + 1."""
    nb = answer(instructor("00_welcome"), "class_means", "def class_means(x, y):\n    return None")
    cell_of(nb, "test_class_means").source = "pass  # nothing to see here"
    nb.cells = [c for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade_id") != "test_fraction_background"]
    return nb


def crash_00():
    nb = instructor("00_welcome")
    cell = cell_of(nb, "to_unit_interval")
    cell.source = "import os\nos._exit(1)  # the kernel dies\n" + cell.source
    return nb


def endless_00():
    """A solution cell that never finishes: interrupted at the timeout, the rest still runs."""
    nb = instructor("00_welcome")
    return answer(nb, "fraction_background", "while True:\n    pass")


def student_version(lesson: str, lessons_dir: Path):
    return nbformat.read(lessons_dir / f"{lesson}.ipynb", as_version=4)


def write(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def read_csv(path: Path) -> dict[tuple[str, str], dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {(r["student"], r["lesson"]): r for r in csv.DictReader(handle)}


# -- the shared batch -----------------------------------------------------------------------
_BATCH: dict = {}


def graded_batch(tmp_root: Path) -> dict:
    """Build the course in a temp copy, grade one batch (as a zip) and one timeout batch.

    Cached for the whole session: test_course.py reads the same results.
    """
    if _BATCH:
        return _BATCH
    env = dict(os.environ)
    course_dir = copy_course(COURSE, tmp_root / "course")
    lessons_dir = tmp_root / "lessons"
    cli = [sys.executable, "-m", "autograder"]
    subprocess.run(cli + ["build", "--course", str(course_dir), "--lessons-dir", str(lessons_dir),
                          "--quiet"], check=True, env=env, cwd=ROOT)

    subs = tmp_root / "submissions" / "batch"  # a wrapping folder, as zips often have
    for lesson in LESSONS:
        write(instructor(lesson), subs / "teacher" / f"{lesson}.ipynb")
        write(student_version(lesson, lessons_dir), subs / f"untouched__{lesson}.ipynb")
    write(partial_00(), subs / "partial" / "00_welcome.ipynb")
    # The same notebook again, under a name that says nothing.
    write(partial_00(), subs / "partial_copy" / "my homework.ipynb")
    write(partial_01(), subs / "partial" / "01_autoencoder (1).ipynb")  # a browser's download name
    write(raises_00(), subs / "raiser" / "00_welcome.ipynb")
    write(edited_00(), subs / "editor" / "00_welcome.ipynb")
    write(crash_00(), subs / "crasher" / "00_welcome.ipynb")
    write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), subs / "erin" / "notes.ipynb")
    write(instructor("00_welcome"), subs / "00_welcome.ipynb")  # no student id
    (subs / "jsonbroken__00_welcome.ipynb").write_text('{"cells": [', encoding="utf-8")
    (subs / "teacher" / "README.txt").write_text("not a notebook", encoding="utf-8")
    archive = tmp_root / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(subs.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(subs.parent).as_posix())

    out = tmp_root / "grades.csv"
    # Two jobs: every kind of submission below goes through the parallel grader
    # (test_jobs_do_not_change_grades compares it with one job).
    run = subprocess.run(cli + ["grade", str(archive), "--course", str(course_dir), "--out", str(out),
                                "--jobs", "2", "--quiet"], env=env, cwd=ROOT, capture_output=True, text=True)
    slow = tmp_root / "slow"
    write(endless_00(), slow / "slowpoke" / "00_welcome.ipynb")
    write(instructor("00_welcome"), slow / "after" / "00_welcome.ipynb")  # the batch goes on
    slow_out = tmp_root / "grades-timeout.csv"
    slow_run = subprocess.run(cli + ["grade", str(slow), "--course", str(course_dir), "--out", str(slow_out),
                                     "--timeout", str(TIMEOUT_S), "--quiet", "--no-feedback"],
                              env=env, cwd=ROOT, capture_output=True, text=True)
    _BATCH.update(course=course_dir, lessons_dir=lessons_dir, run=run, slow_run=slow_run, archive=archive,
                  rows=read_csv(out) if out.exists() else {},
                  slow_rows=read_csv(slow_out) if slow_out.exists() else {})
    return _BATCH


@pytest.fixture(scope="session")
def batch(tmp_path_factory) -> dict:
    return graded_batch(tmp_path_factory.mktemp("grading"))


def max_score(lesson: str) -> float:
    return float(sum(c.metadata["nbgrader"].get("points", 0) for c in instructor(lesson).cells
                     if c.metadata.get("nbgrader", {}).get("grade")))


# -- mapping submissions (fast, no nbgrader) -----------------------------------------------
def test_lesson_names_from_file_names():
    lessons = ["00_welcome", "01_autoencoder"]
    assert lesson_from_name("00_welcome", lessons) == ("00_welcome", True)
    assert lesson_from_name("01_autoencoder (1)", lessons) == ("01_autoencoder", False)
    assert lesson_from_name("01_Autoencoder-Copy1", lessons) == ("01_autoencoder", False)
    assert lesson_from_name("lesson1", lessons) == ("01_autoencoder", False)
    assert lesson_from_name("homework", lessons) == ("", False)


def test_layouts_and_skips(tmp_path):
    nb = nbformat.v4.new_notebook()
    write(nb, tmp_path / "alice" / "00_welcome.ipynb")
    write(nb, tmp_path / "bob__01_autoencoder.ipynb")
    write(nb, tmp_path / "c d" / "01_autoencoder" / "01_autoencoder.ipynb")
    write(nb, tmp_path / "00_welcome" / "dora.ipynb")
    write(nb, tmp_path / "alice" / ".ipynb_checkpoints" / "00_welcome-checkpoint.ipynb")
    write(nb, tmp_path / "alice" / "00_welcome-Copy1.ipynb")  # a duplicate: the exact name wins
    (tmp_path / "notes.txt").write_text("x")
    found = find_submissions(tmp_path, ["00_welcome", "01_autoencoder"], {})
    got = {(s.student, s.lesson): s for s in found.submissions}
    # "c d" is no valid id: it becomes c_d plus a hash of the name, so "c d" and "c_d" stay apart
    assert set(got) == {("alice", "00_welcome"), ("bob", "01_autoencoder"), (clean_student_id("c d"), "01_autoencoder"),
                        ("dora", "00_welcome")}
    assert clean_student_id("c d").startswith("c_d-") and clean_student_id("c_d") == "c_d"
    assert got[("alice", "00_welcome")].path == "alice/00_welcome.ipynb"
    assert "00_welcome-Copy1.ipynb (ignored" in " ".join(got[("alice", "00_welcome")].notes)
    assert found.skipped == [("notes.txt", "not a notebook (.ipynb)")]


# -- the batch ------------------------------------------------------------------------------
@pytest.mark.slow
def test_batch_never_crashes(batch):
    assert batch["run"].returncode == 0, batch["run"].stderr[-3000:]
    assert "skipped batch/teacher/README.txt: not a notebook" in batch["run"].stdout


@pytest.mark.slow
def test_partial_submissions_get_the_exact_partial_score(batch):
    rows = batch["rows"]
    row = rows[("partial", "00_welcome")]
    assert (row["score"], row["max_score"], row["status"]) == ("2", f"{max_score('00_welcome'):g}", "graded")
    assert row["reason"].startswith("test_class_means (0/2): AssertionError: class_means(")
    row = rows[("partial", "01_autoencoder")]
    assert (row["score"], row["max_score"], row["status"]) == ("3", f"{max_score('01_autoencoder'):g}", "graded")
    assert "file name '01_autoencoder (1).ipynb' taken as 01_autoencoder" in row["reason"]
    assert "test_sigmoid (0/1): AssertionError: sigmoid(0) is" not in row["reason"]  # sigmoid(0) = 1/2 either way
    assert "test_sigmoid (0/1): AssertionError: sigmoid(2) should be above 1/2" in row["reason"]
    assert "test_forward_pass (0/2): " in row["reason"]  # calls the reference: never points
    # (the integrity messages themselves are checked in test_hostile.py and test_sandbox.py)


@pytest.mark.slow
def test_grading_is_deterministic(batch):
    rows = batch["rows"]
    first, second = rows[("partial", "00_welcome")], rows[("partial_copy", "00_welcome")]
    assert first["score"] == second["score"] == "2"
    assert second["reason"].endswith(first["reason"])


@pytest.mark.slow
def test_exception_in_learner_code_scores_the_rest(batch):
    row = batch["rows"][("raiser", "00_welcome")]
    assert (row["score"], row["status"]) == ("3", "graded")
    assert row["reason"] == ("test_to_unit_interval (0/1): NameError: name 'to_unit_interval' is not defined; "
                             "awaiting manual grading: q1-answer (2 point(s) to grade by hand)")


@pytest.mark.slow
def test_edited_and_deleted_test_cells_are_restored(batch):
    row = batch["rows"][("editor", "00_welcome")]
    # Without restoring: 1 + 2 (edited test passes) + 0 (deleted test) = 3; restored: 1 + 0 + 1.
    assert (row["score"], row["status"]) == ("2", "graded")
    assert "restored deleted cell(s) test_fraction_background" in row["reason"]
    assert "edited test cell(s) test_class_means replaced by the original" in row["reason"]
    autograded = nbformat.read(batch["course"] / "autograded" / "editor" / "00_welcome" / "00_welcome.ipynb",
                               as_version=4)
    assert "x_test" in cell_of(autograded, "test_class_means").source  # the hidden tests ran


@pytest.mark.slow
def test_kernel_crash_costs_only_its_cell(batch):
    """The process dies in the to_unit_interval cell: a fresh sandbox replays the cells before
    it and runs the rest, so only that step is lost."""
    row = batch["rows"][("crasher", "00_welcome")]
    assert (row["score"], row["max_score"], row["status"]) == ("3", f"{max_score('00_welcome'):g}", "graded")
    assert "to_unit_interval: the notebook's process died here" in row["reason"]


@pytest.mark.slow
def test_broken_and_unnamed_files(batch):
    rows = batch["rows"]
    row = rows[("jsonbroken", "00_welcome")]
    assert (row["score"], row["status"]) == ("0", "error")
    assert row["reason"].startswith("not a valid notebook (invalid JSON")
    row = rows[("partial_copy", "00_welcome")]
    assert row["reason"].startswith("file name 'my homework.ipynb' names no lesson; recognised as 00_welcome")
    row = rows[("erin", "")]
    assert (row["score"], row["status"]) == ("0", "error")
    assert row["reason"].startswith("cannot tell which lesson this is")
    row = rows[("", "00_welcome")]
    assert row["status"] == "error" and row["reason"].startswith("no student id")


@pytest.mark.slow
def test_cell_timeout_scores_the_rest_and_the_batch_goes_on(batch):
    assert batch["slow_run"].returncode == 0, batch["slow_run"].stderr[-3000:]
    row = batch["slow_rows"][("slowpoke", "00_welcome")]
    assert (row["score"], row["status"]) == ("3", "graded")
    assert f"fraction_background: timed out (each cell has {TIMEOUT_S} s)" in row["reason"]
    assert batch["slow_rows"][("after", "00_welcome")]["score"] == "4"


@pytest.mark.slow
def test_jobs_do_not_change_grades(batch, tmp_path):
    """Lesson 00's part of the batch (graded with 2 jobs: full marks, zero, partial, an
    exception, edited tests, a crash) graded again with 1 job, in a copy of the course: the
    same rows, reasons included, and the same scores in the gradebook."""
    import shutil

    course = shutil.copytree(batch["course"], tmp_path / "course", symlinks=True)
    out = tmp_path / "grades-1job.csv"
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(batch["archive"]), "--course",
                          str(course), "--lesson", "00_welcome", "--jobs", "1", "--quiet", "--no-feedback",
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    one_job = read_csv(out)
    two_jobs = {key: row for key, row in batch["rows"].items() if key[1] == "00_welcome"}
    graded = {key for key, row in two_jobs.items() if row["status"] == "graded"}
    assert len(graded) >= 7 and graded <= set(one_job)
    for key in set(one_job) & set(two_jobs):
        assert one_job[key] == two_jobs[key], key
    scores = {}
    for root in (batch["course"], course):
        with Course(root).gradebook() as gb:
            scores[root] = {(s.student.id, n.name, g.name): (g.score, g.auto_score)
                            for s in gb.assignment_submissions("00_welcome")
                            for n in s.notebooks for g in n.grades}
    assert scores[batch["course"]] == scores[course]


def test_jobs_must_be_positive(tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path), "--jobs", "0"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and "jobs must be a whole number of at least 1, got 0" in done.stderr


@pytest.mark.slow
def test_feedback_and_export(batch):
    course = batch["course"]
    assert (course / "feedback" / "partial" / "00_welcome" / "00_welcome.html").is_file()
    out = course.parent / "export.csv"
    subprocess.run([sys.executable, "-m", "autograder", "export", "--course", str(course), "--out", str(out)],
                   check=True, cwd=ROOT, capture_output=True)
    rows = read_csv(out)
    assert rows[("partial", "00_welcome")]["score"] == "2"
    assert rows[("crasher", "00_welcome")]["score"] == "3"
    assert rows[("partial", LESSONS[-1])]["status"] == "missing"  # partial handed in 00 and 01 only


def test_cli_entry_points():
    # The console script sits beside the interpreter (the venv's bin/), on PATH or not.
    script = str(Path(sys.executable).with_name("idivkit-grade"))
    for command in ([script], [sys.executable, "-m", "autograder"]):
        done = subprocess.run([*command, "lessons"], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == LESSONS
    done = subprocess.run([sys.executable, "-m", "autograder", "build", "99_nope", "--lessons-dir", "/nonexistent"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and "unknown lesson(s) 99_nope" in done.stderr


def test_restore_uses_no_solutions():
    """Restored solution cells come from the student version: they never leak an answer."""
    from autograder.grade import restore_cells

    release = nbformat.read(ROOT / "lessons" / "00_welcome.ipynb", as_version=4)
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("hi")])
    notes = restore_cells(empty, release, instructor("00_welcome"))
    graded = [c.metadata["nbgrader"]["grade_id"] for c in release.cells
              if c.metadata.get("nbgrader", {}).get("solution") or c.metadata.get("nbgrader", {}).get("grade")]
    assert "to_unit_interval" in graded and "test_fraction_background" in graded
    assert notes == ["restored deleted cell(s) " + ", ".join(graded)]
    assert "BEGIN SOLUTION" not in json.dumps(empty) and "np.count_nonzero" not in json.dumps(empty)


def test_csv_into_a_device_or_pipe_is_written_not_replaced(tmp_path):
    """``--out /dev/null`` once replaced /dev/null with a regular file (the CSV is written to a
    temporary file and renamed): a target that is not a regular file is written into."""
    import stat
    import threading

    from autograder.course import CourseError
    from autograder.grade import Row, write_csv

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text(encoding="utf-8")))
    reader.start()
    write_csv([Row("ann", "00_welcome", 4.0, 6.0, "graded", "all tests passed")], pipe)
    reader.join(timeout=10)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert received and received[0].splitlines()[1] == "ann,00_welcome,4,6,graded,all tests passed,"
    with pytest.raises(CourseError, match="is a folder"):
        write_csv([], tmp_path)
