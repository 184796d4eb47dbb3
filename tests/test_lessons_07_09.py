"""Lessons 07-09 (SSIM, the tables reproduced, which beta): their helpers against independent
references, and one real grading batch of the three lessons.

The helpers (idivkit/lessons/ssim_steps.py, tables.py, which_beta.py) are checked against
scipy, scikit-image, scipy.stats and plain loops. The batch grades, with ``idivkit-grade`` in a
temporary copy of the course: the instructor versions (every autograded point; the written
answers left to the instructor), the untouched student versions (zero) and one partly wrong
submission per lesson (a typical mistake costs exactly its step's points).

The committed per-seed results (``results/thesis-grid/runs``, ``results/beta-sweep``) are
used when they exist; otherwise the grader reads records in their format written from
:func:`idivkit.lessons.synthetic_records` into a temporary folder (``$IDIVKIT_RESULTS``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from idivkit import lessons, losses, ssim

ROOT = Path(__file__).resolve().parents[1]
LESSONS_0709 = ["07_ssim", "08_tables", "09_which_beta"]


# -- lesson 07: SSIM ------------------------------------------------------------------------
def test_window_means_against_scipy():
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(0)
    for shape, w in [((28, 28), 7), ((13, 20), 5), ((9, 9), 3), ((6, 4), 1)]:
        image = rng.uniform(size=shape)
        pad = (w - 1) // 2
        expected = uniform_filter(image, size=w)[pad:shape[0] - pad, pad:shape[1] - pad]
        np.testing.assert_allclose(lessons.window_means(image, w), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="larger than the image"):
        lessons.window_means(np.zeros((4, 4)), 5)


def test_triangle_window_means_against_a_loop():
    rng = np.random.default_rng(9)
    image = rng.uniform(size=(10, 12))
    w = 5
    weights = np.outer([1, 2, 3, 2, 1], [1, 2, 3, 2, 1]) / 81.0
    expected = np.array([[np.sum(image[i:i + w, j:j + w] * weights) for j in range(12 - w + 1)] for i in range(10 - w + 1)])
    np.testing.assert_allclose(lessons.triangle_window_means(image, w), expected, rtol=1e-12, atol=1e-14)


def test_reference_windowed_ssim_is_skimage():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    for w in (7, 5, 3):
        a = rng.uniform(size=(28, 28))
        b = np.clip(a + rng.normal(0, 0.2, size=a.shape), 0, 1)
        assert abs(lessons.reference_windowed_ssim(a, b, 1.0, w) - structural_similarity(a, b, data_range=1.0, win_size=w)) < 1e-12
    a8 = rng.integers(0, 256, size=(28, 28)).astype(np.uint8)
    b8 = rng.integers(0, 256, size=(28, 28)).astype(np.uint8)
    assert abs(lessons.reference_windowed_ssim(a8, b8, 255) - structural_similarity(a8, b8)) < 1e-12


def test_check_windowed_ssim_names_the_slip():
    rng = np.random.default_rng(2)
    a = rng.uniform(size=(28, 28))
    b = np.clip(0.7 * a + rng.normal(0, 0.1, size=a.shape), 0, 1)
    right = lessons.reference_windowed_ssim(a, b, 1.0)
    lessons.check_windowed_ssim(right, a, b, 1.0, what="w")
    population = float(lessons.ssim_steps._ssim_map(a, b, 1.0, 7, sample=False).mean())
    with pytest.raises(AssertionError, match="N - 1") as info:
        lessons.check_windowed_ssim(population, a, b, 1.0, what="w")
    assert f"{right:.4f}" not in str(info.value)
    with pytest.raises(AssertionError, match="global SSIM"):
        lessons.check_windowed_ssim(ssim.global_ssim(a, b, 1.0), a, b, 1.0, what="w")
    with pytest.raises(AssertionError, match="one number"):
        lessons.check_windowed_ssim(np.ones(3), a, b, 1.0, what="w")


def test_check_ssim_terms():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(size=(2, 28, 28))
    c1, c2 = 0.01**2, 0.03**2
    lum = (2 * a.mean() * b.mean() + c1) / (a.mean() ** 2 + b.mean() ** 2 + c1)
    cov = np.cov(a.ravel(), b.ravel(), ddof=0)
    cs = (2 * cov[0, 1] + c2) / (cov[0, 0] + cov[1, 1] + c2)
    assert abs(lum * cs - ssim.global_ssim(a, b, 1.0)) < 1e-12
    lessons.check_ssim_terms((lum, cs), a, b, 1.0, what="t", which="luminance")
    lessons.check_ssim_terms((lum, cs), a, b, 1.0, what="t", which="contrast_structure")
    sample = np.cov(a.ravel(), b.ravel(), ddof=1)
    with pytest.raises(AssertionError, match="population"):
        lessons.check_ssim_terms((lum, (2 * sample[0, 1] + c2) / (sample[0, 0] + sample[1, 1] + c2)), a, b, 1.0,
                                 what="t", which="contrast_structure")
    with pytest.raises(AssertionError, match="tuple"):
        lessons.check_ssim_terms(lum * cs, a, b, 1.0, what="t", which="luminance")


def test_png_round_trip_is_the_thesis_protocol(mnist):
    (_, _), (x_test, y_test) = mnist
    rng = np.random.default_rng(4)
    x_hat = np.clip(x_test[:1000] + rng.normal(0, 0.1, size=(1000, 784)), 0, 1).astype(np.float32)
    details = ssim.thesis_ssim(x_test[:1000], y_test[:1000], x_hat, return_details=True)
    for k, i in enumerate(details.indices):
        np.testing.assert_array_equal(lessons.png_round_trip(x_test[i]), details.original_gray[k])
        np.testing.assert_array_equal(lessons.png_round_trip(x_hat[i].reshape(28, 28)), details.decoded_gray[k])


# -- lesson 08: the tables ------------------------------------------------------------------
def _result_json(decoder, loss, optimizer, seed, thesis, honest, epochs=3):
    """One file in the format of idivkit.training.TrainResult.to_dict (written by hand)."""
    return {"key": f"{decoder}/{loss}/{optimizer}", "decoder": decoder, "loss": loss, "optimizer": optimizer,
            "seed": seed, "epochs": epochs, "batch_size": 256, "code_dim": 32, "optimizer_defaults": "keras2",
            "clip": True, "backend": "tensorflow", "n_train": 100, "seconds": 1.0, "group_seconds": 1.0,
            "seconds_per_epoch": [0.3] * epochs,
            "history": {"loss": [0.3 / (e + 1) for e in range(epochs)], "val_loss": [0.31 / (e + 1) for e in range(epochs)]},
            "evaluation": {"thesis_ssim": thesis, "thesis_ssim_per_digit": [thesis] * 10,
                           "thesis_indices": list(range(10)), "honest_ssim": honest},
            "versions": {}, "created": "2026-01-01T00:00:00Z"}


def write_runs(folder: Path, records) -> None:
    for r in records:
        path = folder / f"seed{r['seed']}" / f"{r['decoder']}-{r['loss']}-{r['optimizer']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_result_json(r["decoder"], r["loss"], r["optimizer"], r["seed"],
                                                r["thesis_ssim"], r["honest_ssim"])))


def test_load_runs_reads_the_train_result_format(tmp_path):
    write_runs(tmp_path, [{"decoder": d, "loss": l, "optimizer": o, "seed": s, "thesis_ssim": 0.5 + s / 10,
                           "honest_ssim": 0.4}
                          for s in (1, 0) for d, l, o in [("sigmoid", "i2", "nadam"), ("relu", "mse", "adam"),
                                                          ("relu", "beta=0.25", "adam")]])
    (tmp_path / "seed0" / "relu-mse-adam.recon.json").write_text("{}")
    records = lessons.load_runs(tmp_path)
    assert [(r["decoder"], r["loss"], r["seed"]) for r in records] == [
        ("relu", "mse", 0), ("relu", "mse", 1), ("relu", "beta=0.25", 0), ("relu", "beta=0.25", 1),
        ("sigmoid", "i2", 0), ("sigmoid", "i2", 1)]
    assert records[1]["thesis_ssim"] == 0.6 and records[1]["honest_ssim"] == 0.4
    assert records[2]["beta"] == 0.25 and records[0]["val_loss_history"] == [0.31, 0.155, 0.31 / 3]
    with pytest.raises(FileNotFoundError, match="no per-seed results"):
        lessons.load_runs(tmp_path / "nothing")


def test_committed_runs_prefers_the_full_grid(tmp_path, monkeypatch):
    monkeypatch.setenv("IDIVKIT_RESULTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no committed per-seed results"):
        lessons.committed_runs()
    cells = [{"decoder": "relu", "loss": "mse", "optimizer": "adagrad", "seed": s, "thesis_ssim": 0.7, "honest_ssim": 0.8}
             for s in range(3)]
    write_runs(tmp_path / "thesis-cells" / "runs", cells)
    assert len(lessons.committed_runs(verbose=False)) == 3
    write_runs(tmp_path / "thesis-grid" / "runs", lessons.synthetic_records(seed=0, n_seeds=2))
    assert len(lessons.committed_runs(verbose=False)) == 60


def test_thesis_table_matches_the_thesis():
    rows = lessons.thesis_table()
    got = [(r["decoder"], r["loss"], r["optimizer"], r["thesis_value"]) for r in rows]
    assert got == [("relu", "mse", "adagrad", 0.795), ("relu", "i1", "adamax", 0.526), ("relu", "i2", "adadelta", 0.751),
                   ("sigmoid", "mse", "adam", 0.855), ("sigmoid", "i1", "adamax", 0.632), ("sigmoid", "i2", "nadam", 0.880)]


def test_sweep_table_reads_the_sweep_format(tmp_path):
    path = tmp_path / "tables.csv"
    columns = ["decoder", "beta", "optimizer", "n_seeds", "seeds", "thesis_ssim_mean", "thesis_ssim_std",
               "honest_ssim_mean", "honest_ssim_std", "final_val_loss_mean"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerow(["sigmoid", "0.5", "adam", "5", "0 1 2 3 4", "0.8", "0.01", "0.81", "0.02", "0.1"])
        writer.writerow(["relu", "2", "adam", "5", "0 1 2 3 4", "0.7", "0.01", "0.71", "0.02", "0.1"])
        writer.writerow(["relu", "0.25", "adam", "5", "0 1 2 3 4", "0.6", "", "0.61", "0.02", "0.1"])
    rows = lessons.sweep_table(path)
    assert [(r["decoder"], r["beta"]) for r in rows] == [("relu", 0.25), ("relu", 2.0), ("sigmoid", 0.5)]
    assert rows[0]["seeds"] == [0, 1, 2, 3, 4] and math.isnan(rows[0]["thesis_ssim_std"])
    assert rows[2]["honest_ssim_mean"] == 0.81 and rows[2]["n_seeds"] == 5


def test_seed_summary_and_beside_thesis():
    records = lessons.synthetic_records(seed=5)
    values = [r["thesis_ssim"] for r in records if (r["decoder"], r["loss"], r["optimizer"]) == ("relu", "i2", "adam")]
    summary = lessons.seed_summary(records, "relu", "i2", "adam", "thesis")
    assert summary["n"] == 5
    assert summary["mean"] == pytest.approx(statistics.mean(values), abs=1e-15)
    assert summary["std"] == pytest.approx(statistics.stdev(values), abs=1e-15)
    rows = [{"decoder": "relu", "loss": "i2", "optimizer": "adam", "thesis_value": summary["mean"] + d} for d in (0.03, -0.0301)]
    out = lessons.beside_thesis(records, rows, "thesis")
    assert [r["within"] for r in out] == [True, False]
    assert out[0]["diff"] == pytest.approx(-0.03) and out[1]["diff"] == pytest.approx(0.0301)
    with pytest.raises(AssertionError, match="ddof=1"):
        lessons.check_seed_summary({"mean": summary["mean"], "std": float(np.std(values))}, records, "relu", "i2", "adam",
                                   "thesis", what="s", part="std")
    with pytest.raises(AssertionError, match="honest"):
        other = lessons.seed_summary(records, "relu", "i2", "adam", "honest")
        lessons.check_seed_summary(other, records, "relu", "i2", "adam", "thesis", what="s", part="mean")


def test_selection_inflation_against_loops():
    rng = np.random.default_rng(6)
    for shape in [(5, 5), (3, 8)]:
        scores = rng.uniform(size=shape)
        per_seed_best = [max(scores[i][s] for i in range(shape[0])) for s in range(shape[1])]
        best_mean = max(sum(row) / shape[1] for row in scores)
        assert lessons.selection_inflation(scores) == pytest.approx(sum(per_seed_best) / shape[1] - best_mean, abs=1e-14)
        assert lessons.selection_inflation(scores) >= 0
    records = lessons.synthetic_records(seed=7, n_seeds=4)
    names, scores = lessons.scores_by_optimizer(records, "sigmoid", "mse", "honest")
    assert scores.shape == (5, 4) and names[0] == "adagrad"
    assert scores[2, 3] == next(r["honest_ssim"] for r in records if (r["decoder"], r["loss"], r["optimizer"], r["seed"])
                                == ("sigmoid", "mse", "adam", 3))


def test_live_mnist_is_load_mnist_subset(mnist):
    from idivkit import data

    (x_small, y_small), (x_val, y_val), (x_test, y_test) = lessons.live_mnist(30, 4, n_test=500, seed=3)
    (a, b), (c, d) = data.load_mnist_subset(30, 4, seed=3)
    (_, _), (full_x, full_y) = mnist
    for mine, reference in [(x_small, a), (y_small, b), (x_val, c), (y_val, d), (x_test, full_x[:500]), (y_test, full_y[:500])]:
        assert mine.dtype == reference.dtype and np.array_equal(mine, reference)


def test_reconstruct_is_the_keras_model():
    from idivkit.training import build_autoencoder

    x = np.random.default_rng(10).uniform(size=(7, 784)).astype(np.float32)
    for decoder in ("relu", "sigmoid"):
        model = build_autoencoder(32, decoder, 784, seed=1)
        np.testing.assert_allclose(lessons.reconstruct(model.get_weights(), x, decoder),
                                   np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="decoder"):
        lessons.reconstruct(model.get_weights(), x, "tanh")


def test_markdown_table():
    text = lessons.markdown_table([{"decoder": "relu", "loss": "i1", "mean": 0.5, "within": False}],
                                  [("decoder", "d", ""), ("loss", "l", ""), ("mean", "m", ".2f"), ("within", "w", "")])
    assert text.splitlines()[2] == "| ReLU-ReLU | E_I1 | 0.50 | no |"


# -- lesson 09: which beta ------------------------------------------------------------------
def test_reference_nll_against_scipy_stats():
    import sympy as sp
    from scipy import stats

    y, x, sigma, k = lessons.tweedie_symbols()
    for yv, xv, sv, kv in [(0.7, 1.3, 0.4, 2.5), (3.0, 2.2, 1.7, 0.8)]:
        point = {y: yv, x: xv, sigma: sv, k: kv}
        assert float(lessons.reference_nll("gaussian").subs(point)) == pytest.approx(-stats.norm.logpdf(yv, xv, sv), rel=1e-12)
        assert float(lessons.reference_nll("gamma").subs(point)) == pytest.approx(
            -stats.gamma.logpdf(yv, a=kv, scale=xv / kv), rel=1e-12)
    assert float(lessons.reference_nll("poisson").subs({y: 3, x: 2.2})) == pytest.approx(-stats.poisson.logpmf(3, 2.2), rel=1e-12)
    # The point of the lesson: nll(y, x) - nll(y, y) = D_beta(y | x) / phi.
    for model, phi in [("gaussian", sigma**2), ("poisson", 1), ("gamma", 1 / k)]:
        nll = lessons.reference_nll(model)
        assert sp.simplify(sp.expand_log(nll - nll.subs(x, y) - lessons.named_divergence(lessons.NOISE_MODELS[model]) / phi,
                                         force=True)) == 0


def test_named_divergence_against_losses():
    y, x, _, _ = lessons.tweedie_symbols()
    for beta in (0, 0.5, 1, 1.75, 2):
        value = float(lessons.named_divergence(beta).subs({y: 0.6, x: 0.25}))
        assert value == pytest.approx(float(losses.beta_divergence(np.array([0.6]), np.array([0.25]), beta)), rel=1e-10)


def test_check_equivalent_by_names_and_strings():
    import sympy as sp

    y, x = sp.symbols("x y")[::-1]  # no assumptions: other symbols than the lesson's, the same names
    sigma = sp.Symbol("sigma")
    lessons.check_equivalent((y - x) ** 2 / (2 * sigma**2) + sp.log(sigma * sp.sqrt(2 * sp.pi)),
                             lessons.reference_nll("gaussian"), what="g")
    lessons.check_equivalent("x - y*log(x) + log(factorial(y))", lessons.reference_nll("poisson"), what="p")
    lessons.check_equivalent("x - y*log(x) + loggamma(y + 1)", lessons.reference_nll("poisson"), what="p")
    with pytest.raises(AssertionError, match="does not depend on the model output"):
        lessons.check_equivalent(x - y * sp.log(x), lessons.reference_nll("poisson"), what="p")
    with pytest.raises(AssertionError, match="different function"):
        lessons.check_equivalent(x + y * sp.log(x), lessons.reference_nll("poisson"), what="p")
    with pytest.raises(AssertionError, match="by a constant"):
        lessons.check_equivalent((y - x) ** 2 / (2 * sigma**2), (y - x) ** 2 / (2 * sigma**2) + 1, what="c")
    for unsafe in ['__import__("os").system("true")', "x.func", "open('f')", "lambda: 1"]:
        with pytest.raises(AssertionError, match="cannot be read|could not be parsed"):
            lessons.check_equivalent(unsafe, x, what="u")
    with pytest.raises(AssertionError, match=r"symbol\(s\) \['z'\]"):
        lessons.check_equivalent(sp.Symbol("z") * x, x, what="z")
    with pytest.raises(AssertionError, match="must be a sympy expression"):
        lessons.check_equivalent(None, x, what="n")


def test_best_beta_and_indistinguishable_against_loops():
    rows = lessons.synthetic_sweep_rows(seed=8)
    for decoder in ("relu", "sigmoid"):
        for protocol in ("thesis", "honest"):
            mine = [r for r in rows if r["decoder"] == decoder]
            top = max(mine, key=lambda r: r[f"{protocol}_ssim_mean"])
            assert lessons.best_beta(rows, decoder, protocol)["beta"] == top["beta"]
            expected = sorted(r["beta"] for r in mine
                              if abs(top[f"{protocol}_ssim_mean"] - r[f"{protocol}_ssim_mean"])
                              <= 2 * math.sqrt(top[f"{protocol}_ssim_std"] ** 2 / 5 + r[f"{protocol}_ssim_std"] ** 2 / 5))
            assert lessons.indistinguishable(rows, decoder, protocol) == expected
            assert top["beta"] in expected


# -- one grading batch of the three lessons -------------------------------------------------
def _instructor(lesson):
    return nbformat.read(ROOT / "course" / "source" / lesson / f"{lesson}.ipynb", as_version=4)


def _answer(nb, grade_id, source):
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id).source = source
    return nb


PARTIAL = {
    # Exercise 4 with the population variance (no 49/48): both windowed-SSIM tests, 4 points.
    "07_ssim": ("windowed-ssim", '''
def windowed_ssim(a, b, data_range, local_mean, win_size=7):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = local_mean(a, win_size), local_mean(b, win_size)
    var_a = local_mean(a * a, win_size) - mu_a**2
    var_b = local_mean(b * b, win_size) - mu_b**2
    cov = local_mean(a * b, win_size) - mu_a * mu_b
    return float(np.mean((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))))
''', 4, "test_windowed_ssim (0/2): AssertionError: windowed_ssim(a, b, 1.0, local_mean) is off: you divide by N"),
    # Exercise 1 with the population standard deviation: test_seed_summary_std, 2 points.
    "08_tables": ("seed-summary", '''
def seed_summary(records, decoder, loss, optimizer, protocol):
    values = np.array([r[f"{protocol}_ssim"] for r in records
                       if (r["decoder"], r["loss"], r["optimizer"]) == (decoder, loss, optimizer)])
    return {"mean": float(values.mean()), "std": float(values.std()), "n": len(values)}
''', 2, "test_seed_summary_std (0/2): AssertionError: seed_summary(records, \"sigmoid\", \"mse\", \"nadam\", \"thesis\")['std'] is off: "
        "this is the population standard deviation"),
    # Exercise 1's Poisson likelihood without log y!: test_nll_poisson, 1 point.
    "09_which_beta": ("nlls", '''
nll_gaussian = (y - x) ** 2 / (2 * sigma**2) + sp.log(sigma)
nll_poisson = x - y * sp.log(x)
nll_gamma = k * y / x + k * sp.log(x) - k * sp.log(k) - (k - 1) * sp.log(y) + sp.loggamma(k)
''', 1, "test_nll_poisson (0/1): AssertionError: nll_poisson is not equivalent to the correct expression: it differs by a "
        "term that does not depend on the model output x"),
}


def _points(lesson, manual: bool):
    return sum(c.metadata["nbgrader"].get("points", 0) for c in _instructor(lesson).cells
               if c.metadata.get("nbgrader", {}).get("grade") and (c.cell_type == "markdown") == manual)


def _results_for_grading(tmp: Path) -> dict:
    """Environment for the grader: the committed results if complete, else synthetic ones."""
    env = dict(os.environ)
    committed = ROOT / "results"
    if any((committed / "thesis-grid" / "runs").glob("seed*/*.json")):
        return env
    fake = tmp / "results"
    (fake / "thesis-grid").mkdir(parents=True)
    shutil.copy(committed / "thesis-grid" / "tables.csv", fake / "thesis-grid" / "tables.csv")
    write_runs(fake / "thesis-grid" / "runs", lessons.synthetic_records(seed=0))
    env["IDIVKIT_RESULTS"] = str(fake)
    return env


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from autograder.course import copy_course

    tmp = tmp_path_factory.mktemp("grading_0709")
    env = _results_for_grading(tmp)
    course = copy_course(ROOT / "course", tmp / "course")
    cli = [sys.executable, "-m", "autograder"]
    subprocess.run(cli + ["build", *LESSONS_0709, "--course", str(course), "--lessons-dir", str(tmp / "lessons"),
                          "--quiet"], check=True, env=env, cwd=ROOT)
    subs = tmp / "submissions"
    for lesson in LESSONS_0709:
        for student in ("teacher", "untouched", "partial"):
            (subs / student).mkdir(parents=True, exist_ok=True)
        nbformat.write(_instructor(lesson), subs / "teacher" / f"{lesson}.ipynb")
        shutil.copy(tmp / "lessons" / f"{lesson}.ipynb", subs / "untouched" / f"{lesson}.ipynb")
        grade_id, source, _, _ = PARTIAL[lesson]
        nbformat.write(_answer(_instructor(lesson), grade_id, source.strip()), subs / "partial" / f"{lesson}.ipynb")
    out = tmp / "grades.csv"
    run = subprocess.run(cli + ["grade", str(subs), "--course", str(course), "--out", str(out), "--quiet",
                                "--no-feedback"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(out, newline="", encoding="utf-8") as handle:
        rows = {(r["student"], r["lesson"]): r for r in csv.DictReader(handle)}
    return {"rows": rows, "course": course, "env": env}


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS_0709)
def test_instructor_version_gets_every_autograded_point(graded, lesson):
    row = graded["rows"][("teacher", lesson)]
    auto, manual = _points(lesson, manual=False), _points(lesson, manual=True)
    assert manual >= 3, "each lesson asks at least one written question"
    assert (row["status"], float(row["score"]), float(row["max_score"])) == ("graded", auto, auto + manual), row["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS_0709)
def test_written_answers_wait_for_the_instructor(graded, lesson):
    """nbgrader's gradebook flags the written answers for manual grading."""
    from autograder.course import Course

    course = Course(graded["course"])
    manual_ids = {c.metadata["nbgrader"]["grade_id"] for c in _instructor(lesson).cells
                  if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")}
    with course.gradebook() as gb:
        notebook = gb.find_submission_notebook(lesson, lesson, "teacher")
        flagged = {g.name for g in notebook.grades if g.needs_manual_grade}
    assert flagged == manual_ids


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS_0709)
def test_csv_reports_the_points_left_to_grade_by_hand(graded, lesson):
    row = graded["rows"][("teacher", lesson)]
    assert f"{_points(lesson, manual=True):g} point(s) to grade by hand" in row["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS_0709)
def test_untouched_student_version_scores_zero(graded, lesson):
    row = graded["rows"][("untouched", lesson)]
    assert (row["status"], row["score"]) == ("graded", "0"), row["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS_0709)
def test_a_typical_mistake_costs_its_own_step(graded, lesson):
    row = graded["rows"][("partial", lesson)]
    _, _, lost, reason = PARTIAL[lesson]
    assert (row["status"], float(row["score"])) == ("graded", _points(lesson, manual=False) - lost), row["reason"]
    assert reason in row["reason"]


# -- the figures and the committed results the lessons read ---------------------------------
def test_figures_draw(mnist):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (_, _), (x_test, y_test) = mnist
    x_hat = np.clip(x_test[:1000] * 0.8 + 0.05, 0, 1).astype(np.float32)
    indices = list(range(10))
    figures = [lessons.plot_round_trip(x_test, x_hat, indices, n=3),
               lessons.plot_ssim_pairs([("a", x_test[0], x_hat[0])]),
               lessons.plot_loss_histories(lessons.synthetic_records(seed=1), [("relu", "mse", "adam"), ("sigmoid", "i1", "adamax")]),
               lessons.plot_reconstructions(x_test, {"model": x_hat}, indices),
               lessons.plot_sweep(lessons.synthetic_sweep_rows(seed=2), "honest").figure]
    for fig in figures:
        texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
        assert texts and min(t.get_fontsize() for t in texts) >= 9
        assert matplotlib.colors.to_rgba(fig.get_facecolor())[3] == 1.0  # opaque: readable in a dark theme
        plt.close(fig)


def test_committed_results_have_what_lessons_08_and_09_read():
    """The full run and the beta sweep, once committed, in the format lessons 08-09 read."""
    runs = ROOT / "results" / "thesis-grid" / "runs"
    sweep = ROOT / "results" / "beta-sweep" / "tables.csv"
    cells = ROOT / "results" / "thesis-cells" / "runs"
    if any(cells.glob("seed*/*.json")):
        records = lessons.load_runs(cells)
        assert {(r["decoder"], r["loss"], r["optimizer"]) for r in records} == {
            (row["decoder"], row["loss"], row["optimizer"]) for row in lessons.thesis_table()}
        assert {r["epochs"] for r in records} == {50} and len({r["seed"] for r in records}) >= 2
    if not any(runs.glob("seed*/*.json")) and not sweep.is_file():
        pytest.skip("results/thesis-grid/runs and results/beta-sweep are not committed yet")
    if any(runs.glob("seed*/*.json")):
        records = lessons.load_runs(runs)
        configs = {(r["decoder"], r["loss"], r["optimizer"]) for r in records}
        assert len(configs) == 30 and {r["seed"] for r in records} == set(range(5)) and len(records) == 150
        assert {r["epochs"] for r in records} == {50}
        assert all(len(r["val_loss_history"]) == 50 and 0 < r["thesis_ssim"] <= 1 for r in records)
        for row in lessons.thesis_table():
            assert lessons.seed_summary(records, row["decoder"], row["loss"], row["optimizer"])["n"] == 5
    if sweep.is_file():
        rows = lessons.sweep_table(sweep)
        assert {r["beta"] for r in rows} == {b / 4 for b in range(9)}
        manifest = __import__("json").loads((ROOT / "results" / "beta-sweep" / "manifest.json").read_text())
        n_seeds = len(list((ROOT / "results" / "beta-sweep" / "runs").glob("seed*")))
        assert {r["decoder"] for r in rows} == {"relu", "sigmoid"} and n_seeds >= 3
        assert all(r["n_seeds"] == n_seeds for r in rows) and manifest["n_train"] == 60000
        assert (ROOT / "results" / "beta-sweep" / "figures" / "ssim_vs_beta.png").is_file()
