"""Lessons 00-04 tried as learners would (issue 10): fair grading, real derivations, a course
that stands alone.

* The slow tests grade ONE batch of learner submissions with the real ``idivkit-grade`` (each
  an instructor solution with one typical mistake, or an honest solution written differently)
  and check that each mistake costs exactly the points of its own step.
* The fast tests run the visible part of test cells on typical mistakes and check the message,
  and check the lessons' text: no answer above the exercise that asks for it, one format,
  links to the course's own reference pages and nothing outside the repository.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import sympy as sp

from autograder.course import copy_course

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
OURS = ["00_welcome", "01_autoencoder", "02_beta_divergence", "03_i_divergence", "04_backprop"]


def instructor(lesson: str):
    return nbformat.read(COURSE / "source" / lesson / f"{lesson}.ipynb", as_version=4)


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) or {}


def cell_of(nb, grade_id: str):
    return next(c for c in nb.cells if meta(c).get("grade_id") == grade_id)


def answer(nb, grade_id: str, source: str):
    cell_of(nb, grade_id).source = source
    return nb


def auto_points(lesson: str) -> float:
    """Points of the autograded test cells (written answers are graded by hand)."""
    return float(sum(meta(c).get("points", 0) for c in instructor(lesson).cells
                     if meta(c).get("grade") and not meta(c).get("solution")))


def points_of_tests(lesson: str) -> dict[str, float]:
    return {meta(c)["grade_id"]: float(meta(c)["points"]) for c in instructor(lesson).cells
            if meta(c).get("grade") and not meta(c).get("solution")}


# -- learners' submissions: an instructor solution with one change --------------------------
def symbols_02():
    """Lesson 02 answered correctly, but with the learner's own symbols (no assumptions, other
    order), string answers with `beta` in them, and eq 29 rebuilt from scratch."""
    nb = instructor("02_beta_divergence")
    answer(nb, "ex1-sign", 'x, y, beta = sp.symbols("x y beta")\n'
                           "printed = y**beta/(beta*(beta - 1)) + x**beta/beta + y*x**(beta - 1)/(beta - 1)\n"
                           "printed_at_2 = sp.factor(printed.subs(beta, 2))\n"
                           "eq29_corrected = y**beta/(beta*(beta - 1)) + x**beta/beta - y*x**(beta - 1)/(beta - 1)")
    answer(nb, "ex2-combine", "combined_numerator = (y**beta - beta*y*x**(beta - 1)) / beta")
    answer(nb, "ex3-lhopital", "numerator_derivative = sp.diff(combined_numerator, beta)")
    answer(nb, "ex4-i-divergence-limit", "i_divergence_limit = 'y*log(y) - y*log(x) - y + x'")
    answer(nb, "ex5-itakura-saito-limit", "itakura_saito_limit = y/x - sp.log(y/x) - 1")
    answer(nb, "ex6-derivative", "d_beta_dx = 'x**(beta - 2)*(x - y)'")
    return nb


def copycat_02():
    """Lesson 02 with the final limit copied from the package and the intermediate steps
    skipped: the steps it skipped score zero."""
    nb = instructor("02_beta_divergence")
    answer(nb, "ex2-combine", "combined_numerator = None")
    answer(nb, "ex3-lhopital", "numerator_derivative = None")
    return answer(nb, "ex4-i-divergence-limit", "i_divergence_limit = sp.limit(lessons.eq29(), beta, 1)")


def kept_sign_02():
    """Eq 29's sign error not found, then differentiated correctly: only exercise 1's second
    point is lost (the derivative is judged from the learner's own eq 29 too)."""
    nb = instructor("02_beta_divergence")
    source = cell_of(nb, "ex1-sign").source
    wrong = source.replace("+ x**beta / beta - y * x**(beta - 1) / (beta - 1)\nassert sp.simplify(eq29_corrected.subs(x, y)) == 0",
                           "+ x**beta / beta + y * x**(beta - 1) / (beta - 1)")
    assert wrong != source
    return answer(nb, "ex1-sign", wrong)


def no_half_04():
    """The squared error's derivative without the 1/2 of eq 30: only its own step is lost."""
    nb = instructor("04_backprop")
    source = cell_of(nb, "ex2-loss-derivative").source
    wrong = source.replace("return x_hat - x ", "return 2 * (x_hat - x) ")
    assert wrong != source
    return answer(nb, "ex2-loss-derivative", wrong)


def sigmoid_sign_04():
    """A sign slip in the sigmoid's derivative: only its own test is lost."""
    nb = instructor("04_backprop")
    source = cell_of(nb, "ex1-activations").source
    wrong = source.replace("return s * (1.0 - s)", "return -s * (1.0 - s)")
    assert wrong != source
    return answer(nb, "ex1-activations", wrong)


def no_zeros_03():
    """The right formula on positive data, no care for zeros: only the zero test is lost."""
    nb = instructor("03_i_divergence")
    return answer(nb, "ex1-losses", "def i_divergence(x, x_hat, clip=False):\n"
                                    "    x, x_hat = np.asarray(x, dtype=float), np.asarray(x_hat, dtype=float)\n"
                                    "    if clip:\n"
                                    "        x, x_hat = np.clip(x, EPSILON, 1.0), np.clip(x_hat, EPSILON, 1.0)\n"
                                    "    return x * np.log(x / x_hat) - x + x_hat")


def kl_div_03():
    """`scipy.special.kl_div` computes E_I2 elementwise, zeros included: a shortcut (item 5)."""
    nb = instructor("03_i_divergence")
    return answer(nb, "ex1-losses", "from scipy.special import kl_div\n\n"
                                    "def i_divergence(x, x_hat, clip=False):\n"
                                    "    if clip:\n"
                                    "        x, x_hat = np.clip(x, EPSILON, 1.0), np.clip(x_hat, EPSILON, 1.0)\n"
                                    "    return kl_div(np.asarray(x, dtype=float), np.asarray(x_hat, dtype=float))")


def wrong_axis_00():
    nb = instructor("00_welcome")
    return answer(nb, "class_means", "def class_means(x, y):\n"
                                     "    return np.stack([x[y == k].mean(axis=1).mean() for k in range(10)])")


def transposed_01():
    nb = instructor("01_autoencoder")
    return answer(nb, "encoder_total_input", "def encode(x, W, b):\n    return x @ W + b")


SUBMISSIONS = {
    ("symbols", "02_beta_divergence"): (symbols_02, []),
    ("copycat", "02_beta_divergence"): (copycat_02, ["test_combined_numerator", "test_numerator_derivative"]),
    ("keptsign", "02_beta_divergence"): (kept_sign_02, ["test_eq29_corrected"]),
    ("nohalf", "04_backprop"): (no_half_04, ["test_loss_derivative_half_se"]),
    ("sigmoidsign", "04_backprop"): (sigmoid_sign_04, ["test_sigmoid_derivative"]),
    ("nozeros", "03_i_divergence"): (no_zeros_03, ["test_i_divergence_zeros"]),
    ("wrongaxis", "00_welcome"): (wrong_axis_00, ["test_class_means"]),
    ("transposed", "01_autoencoder"): (transposed_01, ["test_encoder_total_input"]),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """One idivkit-grade batch over every submission above (and scipy's shortcut)."""
    tmp = tmp_path_factory.mktemp("fairness")
    course_dir = copy_course(COURSE, tmp / "course")
    cli = [sys.executable, "-m", "autograder"]
    env = dict(os.environ)
    subprocess.run(cli + ["build", *OURS, "--course", str(course_dir), "--lessons-dir", str(tmp / "lessons"),
                          "--quiet"], check=True, env=env, cwd=ROOT)
    subs = tmp / "submissions"
    for (student, lesson), (make, _) in SUBMISSIONS.items():
        path = subs / student / f"{lesson}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(make(), path)
    (subs / "kldiv").mkdir()
    nbformat.write(kl_div_03(), subs / "kldiv" / "03_i_divergence.ipynb")
    (subs / "teacher").mkdir()
    nbformat.write(instructor("00_welcome"), subs / "teacher" / "00_welcome.ipynb")
    out = tmp / "grades.csv"
    run = subprocess.run(cli + ["grade", str(subs), "--course", str(course_dir), "--out", str(out), "--quiet",
                                "--no-feedback"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.exists(), run.stdout + run.stderr
    with open(out, newline="", encoding="utf-8") as handle:
        rows = {(r["student"], r["lesson"]): r for r in csv.DictReader(handle)}
    return {"rows": rows, "run": run, "course": course_dir}


@pytest.mark.slow
@pytest.mark.parametrize("student, lesson", list(SUBMISSIONS))
def test_a_mistake_costs_the_points_of_its_own_step_only(graded, student, lesson):
    row = graded["rows"][(student, lesson)]
    lost = sum(points_of_tests(lesson)[grade_id] for grade_id in SUBMISSIONS[(student, lesson)][1])
    assert row["status"] == "graded", row["reason"]
    assert float(row["score"]) == auto_points(lesson) - lost, row["reason"]
    for grade_id in SUBMISSIONS[(student, lesson)][1]:
        assert f"{grade_id} (0/" in row["reason"]


@pytest.mark.slow
def test_symbols_declared_any_way_score_full_marks(graded):
    """Item 1: sp.symbols("x y beta"), strings with beta in them: full marks."""
    row = graded["rows"][("symbols", "02_beta_divergence")]
    assert float(row["score"]) == auto_points("02_beta_divergence"), row["reason"]


@pytest.mark.slow
def test_messages_name_the_problem(graded):
    """Item 6: the wrong axis and the transposed matrix get a message naming them."""
    axis = graded["rows"][("wrongaxis", "00_welcome")]["reason"]
    assert "has shape (10,), expected (10, 3)" in axis and "axis" in axis
    transposed = graded["rows"][("transposed", "01_autoencoder")]["reason"]
    assert "raised ValueError for arguments of shapes (1, 2), (3, 2), (3,)" in transposed
    half = error_of(graded, "nohalf", "04_backprop", "test_loss_derivative_half_se")
    assert "constant factor of about 2" in half and "1/2" in half
    dead = error_of(graded, "wrongaxis", "00_welcome", "test_class_means")
    assert "average the images of each class over the images, axis=0" in dead


def error_of(graded, student: str, lesson: str, grade_id: str) -> str:
    """The message a test cell raised, as the learner's feedback shows it."""
    path = graded["course"] / "autograded" / student / lesson / f"{lesson}.ipynb"
    cell = cell_of(nbformat.read(path, as_version=4), grade_id)
    return "\n".join(o.get("evalue", "") for o in cell.outputs if o.get("output_type") == "error")


@pytest.mark.slow
def test_scipy_kl_div_is_a_shortcut(graded):
    """Item 5 (the grader's integrity check): kl_div scores no i_divergence point."""
    row = graded["rows"][("kldiv", "03_i_divergence")]
    assert "test_i_divergence_positive (0/2)" in row["reason"] and "scipy.special.kl_div" in row["reason"]
    assert "test_i_divergence_zeros (0/2)" in row["reason"]


@pytest.mark.slow
def test_written_answers_are_reported_as_awaiting_manual_grading(graded):
    row = graded["rows"][("teacher", "00_welcome")]
    assert float(row["score"]) == auto_points("00_welcome")
    assert "awaiting manual grading" in row["reason"] and "q1-answer" in row["reason"]


# -- the learner's own kernel (Validate): test cells run there too -------------------------
@pytest.mark.slow
def test_symbols_declared_any_way_pass_in_the_learners_kernel(tmp_path):
    """Item 1 in JupyterLab: the visible tests run in the kernel where x, y, beta are the learner's."""
    from nbclient import NotebookClient

    nb = symbols_02()
    for cell in nb.cells:  # the learner's view: no hidden tests
        if cell.cell_type == "code":
            cell.source = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", "", cell.source, flags=re.S)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [(meta(c).get("grade_id"), o.get("evalue")) for c in nb.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []


# -- visible tests on typical mistakes, run here (fast) -----------------------------------
def visible(lesson: str, grade_id: str) -> str:
    source = cell_of(instructor(lesson), grade_id).source
    return source.split("### BEGIN HIDDEN TESTS")[0]


def run_visible(lesson: str, grade_id: str, namespace: dict) -> str:
    from idivkit import lessons
    from idivkit.grading import assert_close, expect

    names = {"np": np, "sp": sp, "lessons": lessons, "assert_close": assert_close, "expect": expect,
             "check_independent": lambda fn: None, **namespace}
    with pytest.raises(AssertionError) as info:
        exec(visible(lesson, grade_id), names)  # noqa: S102  (the course's own test code)
    return str(info.value)


def test_lesson00_visible_test_catches_a_wrong_axis():
    """Item 6: constant images let a wrong-axis mean pass; the visible test now catches it."""
    message = run_visible("00_welcome", "test_class_means",
                          {"class_means": lambda x, y: np.stack([x[y == k].mean() for k in range(10)])})
    assert "has shape (10,), expected (10, 3)" in message and "axis=0" in message
    message = run_visible("00_welcome", "test_class_means",  # right shape, averaged over the wrong images
                          {"class_means": lambda x, y: np.stack([x[y == (9 - k)].mean(axis=0) for k in range(10)])})
    assert "row k should be the mean of the images labelled k" in message


def test_lesson01_visible_test_explains_a_transposed_weight_matrix():
    x_batch = np.zeros((256, 784), dtype=np.float32)
    from idivkit.backprop import init_params

    params = init_params(D=784, J=32, seed=0)
    message = run_visible("01_autoencoder", "test_encoder_total_input",
                          {"encode": lambda x, W, b: x @ W + b, "x_batch": x_batch, "params": params})
    assert message.startswith("encode(x, W, b) raised ValueError for arguments of shapes (1, 2), (3, 2), (3,): ")
    assert message.index("transpose") < message.index("gufunc")  # what to check comes before numpy's words
    message = run_visible("01_autoencoder", "test_encoder_total_input",
                          {"encode": lambda x, W, b: W @ x.T + b[:, None], "x_batch": x_batch, "params": params})
    assert "has shape (3, 1), expected (1, 3)" in message and "transposed" in message


def test_lesson04_visible_tests_isolate_the_steps():
    """Item 4, fast: with the course's earlier steps handed in, a later step's visible test
    passes whatever the learner's earlier steps do."""
    from idivkit import backprop, lessons

    def broken(*args, **kwargs):
        raise AssertionError("an earlier step was called instead of the one handed in")

    def output_delta(x, u_tilde, loss, decoder, loss_derivative=broken, decoders=None):
        f, f_prime = decoders[decoder]
        slope = f_prime(u_tilde)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(slope == 0, 0.0, loss_derivative(x, f(u_tilde), loss) * slope)

    for grade_id in ("test_output_delta_sigmoid", "test_output_delta_relu"):
        exec(visible("04_backprop", grade_id), {"np": np, "lessons": lessons, "check_independent": lambda f: None,
                                                "output_delta": output_delta, "LOSS_NAMES": ("half_se", "i1", "i2")})

    def gradients(params, x, loss, decoder, reduction="sum", relu=broken, output_delta=broken, code_delta=broken):
        u = x @ params["W"].T + params["b"]
        y = relu(u)
        delta3 = output_delta(x, y @ params["W_tilde"].T + params["b_tilde"], loss, decoder)
        delta3 = delta3 / (x.shape[0] if reduction == "batch_mean" else 1)
        delta2 = code_delta(delta3, params["W_tilde"], u)
        return {"W": delta2.T @ x, "b": delta2.sum(0), "W_tilde": delta3.T @ y, "b_tilde": delta3.sum(0)}

    exec(visible("04_backprop", "test_gradients_batch_mean"),
         {"np": np, "lessons": lessons, "backprop": backprop, "check_independent": lambda f: None,
          "gradients": gradients, "LOSS_NAMES": ("half_se", "i1", "i2")})


# -- the text: answers after the exercise, one format, a course that stands alone ---------
def markdown_before(nb, grade_id: str) -> str:
    text = []
    for cell in nb.cells:
        if meta(cell).get("grade_id") == grade_id:
            break
        if not meta(cell).get("solution"):  # what a learner sees: text, context and visible tests
            text.append(cell.source.split("### BEGIN HIDDEN TESTS")[0])
    return "\n".join(text)


@pytest.mark.parametrize("grade_id, answers", [
    ("ex1-sign", [r"\dfrac{y^\beta}{\beta(\beta-1)} + \dfrac{x^\beta}{\beta} \;-", "lessons.eq29()",
                  "(x + y)^2/2", r"\tfrac12 (y - x)^2"]),
    ("ex2-combine", [r"y^\beta/\beta - y x^{\beta-1}", "y - y = 0"]),
    ("ex3-lhopital", ["produces the $-y$", r"y x^{\beta-1}\log x"]),
    ("ex4-i-divergence-limit", [r"y \log\frac{y}{x} - y + x"]),
    ("ex5-itakura-saito-limit", [r"\frac{y}{x} - \log\frac{y}{x} - 1"]),
    ("ex6-derivative", [r"x^{\beta-2}(x - y)", "x**(beta - 2)"]),
])
def test_lesson02_text_keeps_each_answer_below_its_exercise(grade_id, answers):
    """Item 2: nothing above an exercise (text or visible code) prints its answer."""
    above = markdown_before(instructor("02_beta_divergence"), grade_id)
    for shown in answers:
        assert shown not in above, (grade_id, shown)


def test_lesson02_grades_the_intermediate_steps_of_the_limit():
    ids = set(points_of_tests("02_beta_divergence"))
    assert {"test_eq29_corrected", "test_combined_numerator", "test_numerator_derivative",
            "test_i_divergence_limit"} <= ids


def test_lesson04_table_of_deltas_is_in_the_summary_only():
    """Item 3: the learner derives dE/dx_hat and the deltas; the table comes after."""
    nb = instructor("04_backprop")
    summary = cell_of(nb, "summary").source
    assert "(eq 44)" in summary and "(eq 71)" in summary
    before = markdown_before(nb, "summary")
    for row in ("(eq 44)", "(eq 57)", "(eq 65)", "(eq 71)", r"$\log(\hat x_d / x_d)$", r"$1 - x_d / \hat x_d$",
                "delta2 = (delta3 @ W_tilde)", "delta3.T @ y"):
        assert row not in before, row
    assert {"test_loss_derivative_half_se", "test_loss_derivative_i1", "test_loss_derivative_i2"} <= set(
        points_of_tests("04_backprop"))


@pytest.mark.parametrize("lesson", OURS)
def test_one_format_for_every_lesson(lesson):
    """Item 9: title, numbered sections, exercise headings, a Summary, locked text cells."""
    nb = instructor(lesson)
    number = lesson[:2]
    assert re.fullmatch(rf"# Lesson {number}: \S.*", nb.cells[1].source.splitlines()[0])
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("#")]
    sections = [h for h in headings if h.startswith("## ")]
    assert sections[-1] == "## Summary" and nb.cells[-1].source.startswith("## Summary")
    numbers = [int(re.match(r"## (\d+)\. ", h).group(1)) for h in sections[:-1]]
    assert numbers == list(range(1, len(numbers) + 1)), sections
    exercises = [h for h in headings if "Exercise" in h]
    assert exercises and all(re.fullmatch(r"### Exercise \d+ \(\d+ points?\): .+", h) for h in exercises), exercises
    assert [int(re.match(r"### Exercise (\d+)", h).group(1)) for h in exercises] == list(range(1, len(exercises) + 1))
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = meta(cell)
            assert m.get("locked") or (m.get("grade") and m.get("solution")), cell.source[:60]


@pytest.mark.parametrize("lesson", OURS)
def test_every_lesson_asks_a_written_question_with_a_rubric(lesson):
    """Item 8: a manually graded answer cell, its rubric in the solution region."""
    nb = instructor(lesson)
    manual = [c for c in nb.cells if c.cell_type == "markdown" and meta(c).get("grade") and meta(c).get("solution")]
    assert manual and all(meta(c)["points"] > 0 for c in manual)
    for cell in manual:
        assert cell.source.startswith("### BEGIN SOLUTION") and "Rubric" in cell.source
    released = nbformat.read(ROOT / "lessons" / f"{lesson}.ipynb", as_version=4)
    for cell in released.cells:
        if meta(cell).get("grade_id") in {meta(c)["grade_id"] for c in manual}:
            assert "Rubric" not in cell.source and "Model answer" not in cell.source


@pytest.mark.parametrize("lesson", OURS)
def test_lessons_stand_alone(lesson):
    """Item 7: every lesson links the course's reference pages; nothing points outside."""
    text = "\n".join(c.source for c in instructor(lesson).cells)
    assert "../docs/equation-map.md" in text
    for outside in ("thesis-notes", "course notes", "../shared", "/work/", "seeds/"):
        assert outside not in text, outside
    for link in re.findall(r"\]\((\.\./docs/[^)#]+)", text):
        assert (ROOT / "lessons" / link).resolve().is_file(), link


@pytest.mark.parametrize("lesson", OURS)
def test_figures_are_readable_and_captioned(lesson):
    """Item 9: no font below 9 pt, the course's figure style, a caption after each figure."""
    nb = instructor(lesson)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.search(r"fontsize=[1-8]\b", code)
    figures = [k for k, c in enumerate(nb.cells) if c.cell_type == "code"
               and re.search(r"plt\.show\(\)|plot_|plt\.subplots", c.source) and "widgets" not in c.source]
    if figures:
        assert "lessons.course_style()" in code
    for k in figures:
        after = nb.cells[k + 1].source if k + 1 < len(nb.cells) else ""
        assert after.startswith("*Figure:") or "printout" in after or nb.cells[k + 2].source.startswith("*Figure:"), \
            nb.cells[k].source[:60]


def test_helper_figures_use_fonts_of_9_pt_or_more():
    for path in (ROOT / "idivkit" / "lessons").glob("*.py"):
        assert not re.search(r"fontsize=[1-8]\b", path.read_text(encoding="utf-8")), path.name


def test_lesson02_widget_code_has_no_note_for_the_browser_test():
    assert "browser test" not in cell_of(instructor("02_beta_divergence"), "slider").source


def test_lesson01_imports_idivkit_training():
    text = "\n".join(c.source for c in instructor("01_autoencoder").cells)
    assert "idivkit.trainer" not in text and "from idivkit.training import build_autoencoder" in text


# -- item 10: the text agrees with what the cells print -----------------------------------
def test_lesson03_text_agrees_with_the_background_share(mnist):
    from idivkit import data, lessons

    (x_train, _), (x_test, _) = data.load_mnist_subset(100, 20, seed=0)
    rough = lessons.pca_reconstruction(x_train, x_test, n_components=32)
    gradients = lessons.i_divergence_gradients(x_test.astype(np.float64), rough)
    share = {}
    for loss in ("E_I1", "E_I2"):
        background, lit = np.abs(gradients[f"{loss} background"]), np.abs(gradients[f"{loss} lit"])
        share[loss] = background.sum() / (background.sum() + lit.sum())
    text = "\n".join(c.source for c in instructor("03_i_divergence").cells if c.cell_type == "markdown")
    assert "no such imbalance" not in text
    assert share["E_I1"] > 0.95 and 0.55 < share["E_I2"] < 0.7
    assert f"{share['E_I1']:.0%} of the total against {share['E_I2']:.0%}" in text


def test_lesson04_text_agrees_with_the_gradient_checks(mnist):
    from idivkit import EPSILON, backprop, lessons

    (_, _), (x_test, _) = mnist
    x_mnist = x_test[:16].astype(np.float64)
    params = backprop.init_params(784, 32, seed=0)
    steps = lessons.reference_steps("output_delta", "code_delta", "relu")

    def gradients(params, x, loss, decoder, reduction="sum"):
        return backprop.gradients(params, x, loss, decoder, reduction=reduction)[1]

    worst = max(lessons.check_gradients_sampled(gradients, params, batch, loss, decoder, n_per_array=40)
                for loss, decoder, batch in [("half_se", "relu", x_mnist), ("i2", "sigmoid", x_mnist),
                                             ("i1", "sigmoid", np.clip(x_mnist, EPSILON, 1.0))])
    assert 1e-7 < worst < 1e-6  # "a few times 1e-7" on MNIST
    text = "\n".join(c.source for c in instructor("04_backprop").cells if c.cell_type == "markdown")
    assert "below about $10^{-7}$" not in text and "a few times $10^{-7}$" in text
    assert steps  # the reference steps exist for every later exercise


def test_scipy_shortcuts_fail_validate_too():
    """Item 5 in the learner's kernel: Validate says what grading will say (the grader's own
    static check forbids the same functions)."""
    from scipy.special import kl_div

    from idivkit import lessons, losses
    from idivkit.grading import assert_close, check_independent, expect

    def i_divergence(x, x_hat, clip=False):
        return kl_div(x, x_hat)

    names = {"np": np, "lessons": lessons, "losses": losses, "assert_close": assert_close, "expect": expect,
             "check_independent": check_independent, "i_divergence": i_divergence}
    with pytest.raises(AssertionError, match="Integrity: your `i_divergence` uses the forbidden reference"):
        exec(visible("03_i_divergence", "test_i_divergence_positive"), names)  # noqa: S102
    for lesson, grade_id in [("02_beta_divergence", "test_beta_divergence_named"),
                             ("03_i_divergence", "test_reverse_i_divergence_exact")]:
        assert "references=lessons.shortcuts()" in visible(lesson, grade_id)
