"""Lessons 05 (training by hand) and 06 (the Keras experiment): their helpers against independent
references (Keras 3 itself, the docs' tables, idivkit.training), and one grading batch of both
lessons (instructor, untouched and one-mistake submissions) with real nbgrader runs.

The course-wide tests (tests/test_course.py) also cover both lessons: well-formed, up to date.
"""

from __future__ import annotations

import csv
import inspect
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from idivkit import backprop, lessons
from idivkit.lessons import by_hand, experiment
from partials_05_06 import cheat_06, partial_05, partial_06

ROOT = Path(__file__).resolve().parents[1]
LESSONS_0506 = ("05_training_by_hand", "06_keras_experiment")
FIVE = ("adagrad", "adadelta", "adam", "adamax", "nadam")


@pytest.fixture(scope="module")
def train_images(mnist):
    return mnist[0][0][:600]


def _instructor(lesson):
    return nbformat.read(ROOT / "course" / "source" / lesson / f"{lesson}.ipynb", as_version=4)


def _points(lesson, manual: bool) -> float:
    return float(sum(c.metadata["nbgrader"].get("points", 0) for c in _instructor(lesson).cells
                     if c.metadata.get("nbgrader", {}).get("grade") and (c.cell_type == "markdown") == manual))


def _run_steps(step, case_id):
    case = by_hand.OPTIMIZER_CASES[case_id]
    param, grads = by_hand.gradient_sequence(case["shape"], case["steps"], case["seed"])
    state, path = {}, []
    for grad in grads:
        param, state = step(param, grad, state, **case["hyper"])
        path.append(param)
    return np.stack(path)


# -- Keras 3: the recorded trajectories and the defaults -------------------------------------------
@pytest.fixture(scope="module")
def keras_live():
    return by_hand.keras_trajectories()


def test_recorded_keras_trajectories_are_what_keras_does_now(keras_live):
    assert set(keras_live) == set(by_hand.OPTIMIZER_CASES)
    for case_id, path in keras_live.items():
        np.testing.assert_allclose(by_hand.keras_reference(case_id), path, rtol=1e-12, atol=0, err_msg=case_id)


@pytest.mark.parametrize("case_id", sorted(by_hand.OPTIMIZER_CASES))
def test_reference_steps_follow_keras3(keras_live, case_id):
    case = by_hand.OPTIMIZER_CASES[case_id]
    start, _ = by_hand.gradient_sequence(case["shape"], case["steps"], case["seed"])
    mine = _run_steps(by_hand.reference_step(case["optimizer"]), case_id) - start
    keras = keras_live[case_id] - start
    # Keras keeps some constants in float32 (1 - beta_2): exact to about 1e-5 of the change
    np.testing.assert_allclose(mine, keras, rtol=2e-5, atol=1e-7 * np.abs(keras).max(), err_msg=case_id)
    assert np.abs(keras[-1]).max() > 1e-6, "the case must move the parameter"


def test_keras3_defaults_are_keras_signatures():
    from idivkit._quiet import import_keras

    keras = import_keras()
    for name, defaults in by_hand.KERAS3_DEFAULTS.items():
        params = inspect.signature(getattr(keras.optimizers, by_hand.OPTIMIZERS[name].keras_class)).parameters
        for key, value in defaults.items():
            assert params[key].default == value, (name, key)


def test_keras2_defaults_come_from_the_name_table():
    from idivkit.training import KERAS2_DEFAULTS

    for name in FIVE:
        hyper = lessons.keras2_hyper(name)
        assert hyper and all(KERAS2_DEFAULTS[name][k] == v for k, v in hyper.items())
    table = lessons.defaults_table()
    assert table.count("<- differs") == 5  # Adagrad 2, AdaDelta 1, Adamax 1, Nadam 1


def test_gradient_sequences_span_the_sizes_that_matter():
    _, grads = by_hand.gradient_sequence((3, 4), 10, 0)
    small = np.abs(grads[grads != 0])
    assert grads.reshape(10, -1)[0, 0] == 0.0
    assert small.min() < 1e-5 and small.max() > 1e-2


# -- Keras 2.2's rules, against docs/keras-defaults.md ----------------------------------------------
@pytest.mark.parametrize("g, keras2, keras3", [(1e-5, 0.0099, 0.00032), (1e-3, 0.0100, 0.0095)])
def test_adagrad_first_step_matches_the_docs_table(g, keras2, keras3):
    hyper = {"learning_rate": 0.01, "initial_accumulator_value": 0.0, "epsilon": 1e-7}
    old, _ = lessons.keras2_adagrad_step(np.zeros(1), np.array([g]), {}, **hyper)
    new, _ = lessons.reference_step("adagrad")(np.zeros(1), np.array([g]), {}, **hyper)
    assert -old[0] == pytest.approx(keras2, abs=5e-5)
    assert -new[0] == pytest.approx(keras3, rel=0.03)


def test_nadam_momentum_matches_the_docs_table():
    t = np.array([1, 235, 2350, 11750])
    np.testing.assert_allclose(lessons.nadam_momentum(t, schedule_decay=0.004), [0.450, 0.467, 0.593, 0.834],
                               atol=6e-4)
    np.testing.assert_allclose(lessons.nadam_momentum(t), [0.468, 0.900, 0.900, 0.900], atol=6e-4)


# -- minibatches and the training loop ------------------------------------------------------------
def test_reference_minibatches_are_the_reproductions_order():
    from idivkit.training import epoch_permutation, steps_per_epoch

    for n, b, seed, epoch in [(1000, 256, 0, 0), (60_000, 256, 3, 7), (5, 8, 1, 2)]:
        batches = lessons.reference_minibatches(n, b, seed, epoch)
        assert len(batches) == steps_per_epoch(n, b)
        np.testing.assert_array_equal(np.concatenate(batches), epoch_permutation(n, seed, epoch))


def test_check_minibatches_accepts_the_reference_and_diagnoses_mistakes():
    lessons.check_minibatches(lessons.reference_minibatches, 10, 4, 0)
    drop_last = lambda n, b, s, e: lessons.reference_minibatches(n, b, s, e)[: n // b]  # noqa: E731
    unshuffled = lambda n, b, s, e: [np.arange(n)[i:i + b] for i in range(0, n, b)]  # noqa: E731
    same_each_epoch = lambda n, b, s, e: lessons.reference_minibatches(n, b, s, 0)  # noqa: E731
    rng = np.random.default_rng()
    clock = lambda n, b, s, e: [p[i:i + b] for p in [rng.permutation(n)] for i in range(0, n, b)]  # noqa: E731
    for fn, words in [(drop_last, "partial batch"), (unshuffled, "not shuffled"),
                      (same_each_epoch, "shuffle again each epoch"), (clock, r"same \(seed, epoch\)")]:
        with pytest.raises(AssertionError, match=words):
            lessons.check_minibatches(fn, 10, 4, 0)


def _small_problem():
    params, x = lessons.make_network(D=10, J=3, N=21, seed=2, decoder="sigmoid")
    objective = lambda p, xb: backprop.gradients(p, xb, "i2", "sigmoid", reduction="mean")  # noqa: E731
    return params, x, objective


def test_reference_train_is_plain_minibatch_sgd():
    params, x, objective = _small_problem()
    trained, history = lessons.reference_train(params, x, x[:4], objective, lessons.reference_step("sgd"),
                                               {"learning_rate": 0.3}, 2, 8, 5, lessons.reference_minibatches)
    manual = {k: v.copy() for k, v in params.items()}
    losses_seen = []
    for epoch in range(2):
        total = 0.0
        for idx in lessons.reference_minibatches(len(x), 8, 5, epoch):
            loss, grads = objective(manual, x[idx])
            total += loss * len(idx)
            manual = {k: manual[k] - 0.3 * grads[k] for k in manual}
        losses_seen.append(total / len(x))
    for k in params:
        np.testing.assert_allclose(trained[k], manual[k], rtol=1e-12)
    np.testing.assert_allclose(history["loss"], losses_seen, rtol=1e-12)
    assert history["val_loss"][-1] == pytest.approx(objective(manual, x[:4])[0])


def test_check_train_diagnoses_the_typical_mistakes():
    params, x, objective = _small_problem()
    args = (params, x, x[:4], objective, lessons.reference_step("adam"),
            {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7})
    kwargs = {"epochs": 2, "batch_size": 8, "seed": 1}

    def loop(unweighted=False, in_place=False):
        def train(params, x_train, x_val, objective, step, hyper, epochs, batch_size, seed, batches):
            params = params if in_place else {k: v.copy() for k, v in params.items()}
            states = {k: {} for k in params}
            history = {"loss": [], "val_loss": []}
            for epoch in range(epochs):
                values, sizes = [], []
                for idx in batches(len(x_train), batch_size, seed, epoch):
                    loss, grads = objective(params, x_train[idx])
                    values.append(loss)
                    sizes.append(len(idx))
                    for k in params:
                        new, states[k] = step(params[k], grads[k], states[k], **hyper)
                        params[k][...] = new
                history["loss"].append(np.mean(values) if unweighted else np.dot(values, sizes) / sum(sizes))
                history["val_loss"].append(objective(params, x_val)[0])
            return params, history
        return train

    lessons.check_train(loop(), *args, **kwargs)
    with pytest.raises(AssertionError, match="in place"):
        lessons.check_train(loop(in_place=True), *args, **kwargs)
    with pytest.raises(AssertionError, match="weight each batch"):
        lessons.check_train(loop(unweighted=True), *args, **kwargs)


# -- the optimizer checks -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ("sgd",) + FIVE)
def test_check_optimizer_accepts_the_references(name):
    for kind in ("keras2", "keras3", "other"):
        lessons.check_optimizer(lessons.reference_step(name), name, f"{name}-{kind}")


def test_check_optimizer_rejects_keras2_adagrad_with_a_hint():
    with pytest.raises(AssertionError, match="inside the square root"):
        lessons.check_optimizer(lessons.keras2_adagrad_step, "adagrad")


def test_check_optimizer_rejects_adam_without_bias_correction_and_in_place_updates():
    def no_correction(param, grad, state, learning_rate, beta_1, beta_2, epsilon):
        m = state.get("m", 0) * beta_1 + (1 - beta_1) * grad
        v = state.get("v", 0) * beta_2 + (1 - beta_2) * grad**2
        return param - learning_rate * m / (np.sqrt(v) + epsilon), {"m": m, "v": v}

    with pytest.raises(AssertionError, match="first step"):
        lessons.check_optimizer(no_correction, "adam")

    def in_place(param, grad, state, learning_rate):
        param -= learning_rate * grad
        return param, state

    with pytest.raises(AssertionError, match="in place"):
        lessons.check_optimizer(in_place, "sgd")


def test_check_optimizer_catches_a_late_mistake_in_nadams_schedule():
    def nadam_current_mu(param, grad, state, learning_rate, beta_1, beta_2, epsilon):
        t = state.get("t", 0) + 1
        mu = beta_1 * (1 - 0.5 * 0.96**t)
        prod = state.get("p", 1.0) * mu
        m = state.get("m", 0) * beta_1 + (1 - beta_1) * grad
        v = state.get("v", 0) * beta_2 + (1 - beta_2) * grad**2
        m_hat = mu * m / (1 - prod * mu) + (1 - mu) * grad / (1 - prod)  # mu_t where mu_{t+1} belongs
        return param - learning_rate * m_hat / (np.sqrt(v / (1 - beta_2**t)) + epsilon), \
            {"t": t, "p": prod, "m": m, "v": v}

    with pytest.raises(AssertionError, match="nadam"):
        lessons.check_optimizer(nadam_current_mu, "nadam")


# -- lesson 06: Keras losses, model, training on bytes, the committed results -------------------
def _numpy(fn):
    from idivkit._quiet import import_keras

    ops = import_keras().ops
    return lambda x, x_hat: ops.convert_to_numpy(fn(ops.convert_to_tensor(x), ops.convert_to_tensor(x_hat)))


def test_check_keras_loss_accepts_the_package_losses_and_diagnoses_mistakes():
    import idivkit.keras as ik
    from idivkit._quiet import import_keras

    ops = import_keras().ops
    lessons.check_keras_loss(_numpy(lambda a, b: ik.i_divergence(a, b, clip=True)), "i2")
    lessons.check_keras_loss(_numpy(lambda a, b: ik.reverse_i_divergence(a, b, clip=True)), "i1")
    with pytest.raises(AssertionError, match="other I-divergence"):
        lessons.check_keras_loss(_numpy(lambda a, b: ik.i_divergence(a, b, clip=True)), "i1")
    with pytest.raises(AssertionError, match="not finite"):
        lessons.check_keras_loss(_numpy(lambda a, b: ik.i_divergence(a, b, clip=False)), "i2")
    with pytest.raises(AssertionError, match="mean over the pixels"):
        lessons.check_keras_loss(_numpy(lambda a, b: 784 * ik.i_divergence(a, b, clip=True)), "i2")
    with pytest.raises(AssertionError, match="one value per image"):
        lessons.check_keras_loss(_numpy(lambda a, b: ops.mean(ik.i_divergence(a, b, clip=True))), "i2")


def test_check_keras_independent_accepts_keras_only_reports():
    def keras_report(fn):
        raise AssertionError("Integrity: your `e_i2` uses the forbidden shortcut `keras.ops.clip`; this step "
                             "scores zero. Write it yourself with numpy.")

    def idivkit_report(fn):
        raise AssertionError("Integrity: your `e_i2` uses the idivkit reference `idivkit.keras.i_divergence`")

    def tamper_report(fn):
        raise AssertionError("Integrity: your notebook uses getattr, which graded notebooks may not use")

    lessons.check_keras_independent(keras_report, print)
    lessons.check_keras_independent(lambda fn: None, print)
    for report in (idivkit_report, tamper_report):
        with pytest.raises(AssertionError):
            lessons.check_keras_independent(report, print)


def test_describe_and_check_model_on_the_packages_model():
    import idivkit.keras as ik
    from idivkit.training import build_autoencoder, initial_weights, make_optimizer

    model = build_autoencoder(32, "sigmoid", seed=2)
    model.compile(optimizer=make_optimizer("nadam"), loss=ik.i_divergence)
    description = lessons.describe_model(model)
    spec = {"class": "Nadam", "learning_rate": 0.002, "epsilon": 1e-7}
    lessons.check_model(description, decoder="sigmoid", loss_name="i_divergence", optimizer=spec,
                        weights=initial_weights(2))
    with pytest.raises(AssertionError, match="decoder must be"):
        lessons.check_model(description, decoder="relu", loss_name="i_divergence", optimizer=spec,
                            weights=initial_weights(2))
    with pytest.raises(AssertionError, match="initial_weights"):
        lessons.check_model(description, decoder="sigmoid", loss_name="i_divergence", optimizer=spec,
                            weights=initial_weights(3))
    with pytest.raises(AssertionError, match="learning_rate"):
        lessons.check_model(description, decoder="sigmoid", loss_name="i_divergence",
                            optimizer={"class": "Nadam", "learning_rate": 0.001}, weights=initial_weights(2))


def test_train_epochs_on_bytes_is_the_reproductions_training(train_images):
    """Same start, same minibatches, same optimizer: the loop over uint8 batches gives the
    history of idivkit.training.train (a compiled fit) to float32 rounding."""
    import idivkit.keras as ik
    from idivkit.training import build_autoencoder, epoch_permutation, make_optimizer, train

    x = np.asarray(train_images)
    x_bytes = np.round(x * 255).astype(np.uint8)
    x = x_bytes.astype(np.float32) / np.float32(255)
    x_val = x[:100]
    model = build_autoencoder(32, "sigmoid", seed=0)
    model.compile(optimizer=make_optimizer("adam"), loss=ik.get_loss("i2"))
    mine = lessons.train_epochs(model, x_bytes, x_val, epochs=2, batch_size=256, progress=False,
                                order=lambda epoch: epoch_permutation(len(x_bytes), 0, epoch))
    ref = train(x, x_val, loss="i2", decoder="sigmoid", optimizer="adam", epochs=2, seed=0, progress=False)
    np.testing.assert_allclose(mine["val_loss"], ref.history["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(mine["loss"], ref.history["loss"], rtol=1e-4)


def test_committed_results_are_read(monkeypatch, tmp_path):
    row = lessons.committed_row("sigmoid", "i2", "nadam")
    assert row["n_seeds"] >= 1 and 0 < row["honest_ssim_mean"] < 1 and row["final_val_loss_mean"] > 0
    run = lessons.committed_run("sigmoid", "i2", "nadam", seed=0)
    assert run is None or len(run["history"]["val_loss"]) == 50
    monkeypatch.setenv("IDIVKIT_RESULTS", str(tmp_path))
    assert lessons.committed_results_dir() == tmp_path / "thesis-grid"
    assert lessons.committed_run("sigmoid", "i2", "nadam") is None


def test_history_figure_uses_a_committed_per_seed_record(monkeypatch, tmp_path):
    import json
    import shutil

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = tmp_path / "thesis-grid"
    (grid / "runs" / "seed0").mkdir(parents=True)
    shutil.copy(ROOT / "results" / "thesis-grid" / "tables.csv", grid / "tables.csv")
    record = {"history": {"loss": list(np.linspace(0.1, 0.02, 50)), "val_loss": list(np.linspace(0.06, 0.018, 50))}}
    (grid / "runs" / "seed0" / "sigmoid-i2-nadam.json").write_text(json.dumps(record), encoding="utf-8")
    monkeypatch.setenv("IDIVKIT_RESULTS", str(tmp_path))
    assert lessons.committed_run("sigmoid", "i2", "nadam")["history"]["val_loss"][0] == 0.06
    ax = lessons.plot_history_against_committed({"loss": [0.1, 0.05, 0.03], "val_loss": [0.06, 0.04, 0.03]},
                                                decoder="sigmoid", loss="i2", optimizer="nadam")
    lengths = sorted(len(line.get_xdata()) for line in ax.get_lines())
    assert lengths == [3, 3, 50, 50]
    plt.close("all")


def test_figures_draw(train_images):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = lessons.plot_loss_curves({"a": {"val_loss": [0.3, 0.2]}, "b": {"val_loss": [0.4, 0.1]}})
    assert len(ax.get_lines()) == 2 and ax.get_yscale() == "log"
    ax = lessons.plot_history_against_committed({"loss": [0.1, 0.05], "val_loss": [0.06, 0.04]},
                                                decoder="sigmoid", loss="i2", optimizer="nadam")
    assert len(ax.get_lines()) >= 3
    images = np.asarray(train_images)[:10]
    fig = lessons.plot_reconstruction_rows(images, {"copy": images})
    assert len(fig.axes) == 20
    plt.close("all")


# -- grading: one batch of both lessons ---------------------------------------------------------
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from autograder.course import copy_course

    tmp = tmp_path_factory.mktemp("grading_0506")
    course = copy_course(ROOT / "course", tmp / "course")
    cli = [sys.executable, "-m", "autograder"]
    subprocess.run(cli + ["build", *LESSONS_0506, "--course", str(course), "--lessons-dir", str(tmp / "lessons"),
                          "--quiet"], check=True, cwd=ROOT)
    subs = tmp / "submissions"
    for lesson, partial in zip(LESSONS_0506, (partial_05, partial_06)):
        for student, nb in (("teacher", _instructor(lesson)),
                            ("untouched", nbformat.read(tmp / "lessons" / f"{lesson}.ipynb", as_version=4)),
                            ("partial", partial(_instructor(lesson)))):
            (subs / student).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, subs / student / f"{lesson}.ipynb")
    (subs / "cheater").mkdir()
    nbformat.write(cheat_06(_instructor("06_keras_experiment")), subs / "cheater" / "06_keras_experiment.ipynb")
    out = tmp / "grades.csv"
    run = subprocess.run(cli + ["grade", str(subs), "--course", str(course), "--out", str(out), "--quiet",
                                "--no-feedback"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(out, newline="", encoding="utf-8") as handle:
        return {(r["student"], r["lesson"]): r for r in csv.DictReader(handle)}


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS_0506)
def test_solution_gets_every_autograded_point(graded, lesson):
    row = graded[("teacher", lesson)]
    assert row["status"] == "graded", row["reason"]
    assert float(row["score"]) == _points(lesson, manual=False), row["reason"]
    assert float(row["max_score"]) == _points(lesson, manual=False) + _points(lesson, manual=True)


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS_0506)
def test_blank_student_version_scores_zero(graded, lesson):
    row = graded[("untouched", lesson)]
    assert (row["status"], float(row["score"])) == ("graded", 0.0), row["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("lesson, lost, failed", [
    ("05_training_by_hand", 4, ("test_minibatches (0/2)", "test_adagrad (0/2)")),
    ("06_keras_experiment", 2, ("test_e_i1 (0/2)",)),
])
def test_one_mistake_costs_its_own_step_only(graded, lesson, lost, failed):
    row = graded[("partial", lesson)]
    assert float(row["score"]) == _points(lesson, manual=False) - lost, row["reason"]
    for test_id in failed:
        assert test_id in row["reason"]
    assert "test_train" not in row["reason"]  # the loop's test uses the course's minibatches


@pytest.mark.slow
def test_the_packages_keras_loss_scores_zero_for_its_step(graded):
    row = graded[("cheater", "06_keras_experiment")]
    assert float(row["score"]) == _points("06_keras_experiment", manual=False) - 2, row["reason"]
    assert "test_e_i2 (0/2)" in row["reason"] and "idivkit" in row["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("lesson, grade_id", [("05_training_by_hand", "question-optimizers"),
                                              ("06_keras_experiment", "question-keras")])
def test_written_answers_are_reported_as_awaiting_manual_grading(graded, lesson, grade_id):
    row = graded[("teacher", lesson)]
    assert "awaiting manual grading" in row["reason"] and grade_id in row["reason"]
