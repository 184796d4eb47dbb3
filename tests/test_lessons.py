"""idivkit.lessons (support for lessons 02-04) against independent references.

References: sympy algebra and hand-worked numbers (lesson 02), closed-form divergences written
here, scikit-learn's PCA on real MNIST (lesson 03), central differences written here and the
output-delta table of lesson 04's Summary (docs/errata.md E4-E6), and a hand backprop written here (lesson 04).
The checkers are also fed deliberately wrong answers (flipped sign, doubled, wrong only on
inactive ReLU units): they must fail, say which pair/layer is wrong, and never print the
expected values.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sympy as sp  # noqa: E402

from idivkit import lessons, losses  # noqa: E402
from idivkit._numerics import EPSILON  # noqa: E402

LOSS_NAMES = ("mse", "i1", "i2")
DECODER_NAMES = ("relu", "sigmoid")
PAIRS = [(loss, decoder) for loss in LOSS_NAMES for decoder in DECODER_NAMES]


@pytest.fixture(scope="module", autouse=True)
def single_blas_thread():
    # The 784 x 784 eigen/SVD problems run ~10x slower when BLAS threads fight over shared cores.
    import sklearn.decomposition  # noqa: F401  (loads scipy's BLAS, so the limit reaches it too)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- Independent references written for these tests ------------------------------------


def sigmoid(u):
    return 1.0 / (1.0 + np.exp(-u))


def pixel_loss(x, x_hat, loss):
    """Per-pixel loss by hand (x_hat > 0): 1/2 (x_hat - x)^2, E_I1 = D(x_hat | x), E_I2 = D(x | x_hat)."""
    if loss == "mse":
        return 0.5 * (x_hat - x) ** 2
    if loss == "i1":
        return x_hat * np.log(x_hat / x) - x_hat + x
    return x * np.log(x / x_hat) - x + x_hat


def table_delta3(x, u_tilde, loss, decoder):
    """dE/du~ from the output-delta table (lesson 04's Summary; docs/errata.md E4-E6)."""
    if decoder == "relu":
        active = u_tilde > 0
        u = np.where(active, u_tilde, 1.0)  # placeholder where inactive; masked below
        delta = {"mse": u - x, "i1": np.log(u / x), "i2": 1.0 - x / u}[loss]
        return np.where(active, delta, 0.0)
    s = sigmoid(u_tilde)
    return {"mse": (s - x) * s * (1 - s),
            "i1": s * (1 - s) * np.log(s / x),
            "i2": (1 - s) * (s - x)}[loss]


def forward_by_hand(params, x, decoder):
    u = x @ params["W"].T + params["b"]
    y = np.maximum(u, 0.0)
    u_tilde = y @ params["W_tilde"].T + params["b_tilde"]
    x_hat = np.maximum(u_tilde, 0.0) if decoder == "relu" else sigmoid(u_tilde)
    return u, y, u_tilde, x_hat


def gradients_by_hand(params, x, loss, decoder, reduction="sum"):
    """A learner's correct answer to exercise 4 of lesson 04, from the table above."""
    scale = {"sum": 1.0, "batch_mean": 1.0 / x.shape[0]}[reduction]
    u, y, u_tilde, _ = forward_by_hand(params, x, decoder)
    delta3 = scale * table_delta3(x, u_tilde, loss, decoder)
    delta2 = (delta3 @ params["W_tilde"]) * (u > 0)
    return {"W": delta2.T @ x, "b": delta2.sum(axis=0),
            "W_tilde": delta3.T @ y, "b_tilde": delta3.sum(axis=0)}


def assert_hides(message, expected):
    """No entry of ``expected`` appears in ``message`` in any usual print format."""
    values = [float(v) for v in np.ravel(expected) if np.isfinite(v) and v != 0]
    assert values, "nothing to hide: the test would be vacuous"
    for v in values:
        for text in (f"{v:.3g}", f"{v:.4g}", f"{v:.6f}", f"{v:.3e}", f"{v:.2e}", repr(v), str(np.float64(v))):
            if len(text.lstrip("-")) >= 5:  # shorter strings ("0.5") could match by chance
                assert text not in message, f"message shows the expected value {text}: {message}"


def failure(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# --- Lesson 02: eq 29 and check_expression ----------------------------------------------


def test_beta_symbols_carry_the_lesson_assumptions():
    y, x, beta = lessons.beta_symbols()
    assert (str(y), str(x), str(beta)) == ("y", "x", "beta")
    assert y.is_positive and x.is_positive and beta.is_real and beta.is_positive is None


def test_eq29_as_printed_gives_half_square_of_sum_at_beta_2_and_corrected_gives_eq30():
    y, x, beta = lessons.beta_symbols()
    printed = sp.simplify(lessons.eq29(printed=True).subs(beta, 2))
    corrected = sp.simplify(lessons.eq29().subs(beta, 2))
    assert sp.expand(printed - (x + y) ** 2 / 2) == 0
    assert sp.expand(corrected - (x - y) ** 2 / 2) == 0
    assert sp.expand(printed - corrected) != 0


def test_eq29_hand_worked_value_and_limits():
    y, x, beta = lessons.beta_symbols()
    # beta = 3, y = 1/2, x = 2: 1/48 + 8/3 - 1 = 81/48, worked by hand.
    assert lessons.eq29().subs({beta: 3, y: sp.Rational(1, 2), x: 2}) == sp.Rational(81, 48)
    assert sp.simplify(sp.limit(lessons.eq29(), beta, 1) - (y * sp.log(y / x) - y + x)) == 0
    # a divergence: zero at x = y for a generic beta
    assert sp.simplify(lessons.eq29().subs(x, y)) == 0


@pytest.mark.parametrize("answer", [
    "y*log(y) - y*log(x) + x - y",
    "x - y - y*log(x/y)",
    "y*(log(y) - log(x) - 1) + x",
])
def test_check_expression_accepts_equivalent_forms(answer):
    y, x, _ = lessons.beta_symbols()
    reference = y * sp.log(y / x) - y + x
    lessons.check_expression(answer, reference, what="i_divergence_limit")  # a string
    learner_y, learner_x = sp.symbols("y x")  # a learner's symbols, without assumptions
    lessons.check_expression(sp.sympify(answer, locals={"y": learner_y, "x": learner_x}), reference,
                             what="i_divergence_limit")


def test_check_expression_accepts_itakura_saito_and_derivative_forms():
    y, x, beta = lessons.beta_symbols()
    lessons.check_expression(y / x + sp.log(x) - sp.log(y) - 1, y / x - sp.log(y / x) - 1, what="is")
    lessons.check_expression(sp.diff(lessons.eq29(), x), x ** (beta - 2) * (x - y), what="d_beta_dx")


def test_check_expression_rejects_eq31_without_showing_the_reference():
    y, x, _ = lessons.beta_symbols()
    reference = y * sp.log(y / x) - y + x
    message = failure(lessons.check_expression, y * sp.log(y / x) + x, reference, what="i_divergence_limit")
    assert message.startswith("i_divergence_limit is not equivalent")
    assert "does not depend on the model output x" in message and "(y only)" in message
    for shown in (str(reference), str(sp.expand_log(reference, force=True)), "log", "- y"):
        assert shown not in message


def test_check_expression_diagnoses_constant_offset_and_wrong_function():
    y, x, _ = lessons.beta_symbols()
    reference = y * sp.log(y / x) - y + x
    assert "differs by a constant" in failure(lessons.check_expression, reference + 3, reference, what="a")
    message = failure(lessons.check_expression, y * sp.log(y / x), reference, what="a")
    assert "different function of x" in message


def test_check_expression_rejects_foreign_symbols_and_unevaluated_limits():
    y, x, beta = lessons.beta_symbols()
    message = failure(lessons.check_expression, "z*log(y/x)", y * sp.log(y / x), what="a")
    assert "['z']" in message and "use only ['beta', 'x', 'y']" in message
    unevaluated = sp.Limit(lessons.eq29(), beta, 1)
    assert ".doit()" in failure(lessons.check_expression, unevaluated, y * sp.log(y / x) - y + x, what="a")


@pytest.mark.parametrize("answer, type_name", [
    (None, "NoneType"), ([1, 2], "list"), (np.array([0.5]), "ndarray"), (object(), "object"),
    (lambda t: t, "function"), (True, "bool"),
])
def test_check_expression_rejects_non_sympy_input_clearly(answer, type_name):
    y, x, _ = lessons.beta_symbols()
    message = failure(lessons.check_expression, answer, y * sp.log(y / x) - y + x, what="i_divergence_limit")
    assert message == f"i_divergence_limit must be a sympy expression, got {type_name}"


@pytest.mark.parametrize("text", ["y*log(y/x", "x +* 2", "x = y", "x.y", "", "log(y/x) " * 20])
def test_check_expression_says_a_string_could_not_be_parsed(text):
    y, x, _ = lessons.beta_symbols()
    reference = y * sp.log(y / x) - y + x
    message = failure(lessons.check_expression, text, reference, what="i_divergence_limit")
    assert message.startswith("i_divergence_limit: the string '")
    assert "could not be parsed as a sympy expression" in message and "got str" not in message
    if len(text) > 80:  # a long answer is shortened, not repeated in full
        assert text not in message and "...'" in message
    assert str(reference) not in message and "- y" not in message


@pytest.mark.parametrize("text, parsed_as", [("x > y", "StrictGreaterThan"), ("x, y", "tuple"), ("[x]", "list")])
def test_check_expression_says_what_a_string_parsed_to_when_it_is_no_expression(text, parsed_as):
    y, x, _ = lessons.beta_symbols()
    message = failure(lessons.check_expression, text, y * sp.log(y / x) - y + x, what="a")
    assert message == (f"a: the string {text!r} could not be parsed as a sympy expression "
                       f"(sympy reads it as a {parsed_as}, not one expression)")


def test_with_symbols_replaces_by_name():
    y, x, beta = lessons.beta_symbols()
    plain = sp.Symbol("x") + sp.Symbol("y")
    assert lessons.with_symbols(plain, (y, x, beta)) == x + y
    assert "['q']" in failure(lessons.with_symbols, sp.Symbol("q"), (y, x, beta))


# --- Lesson 02: the slider's figure -------------------------------------------------------


def beta_divergence_by_hand(y, x, beta):
    if beta == 1:
        return y * np.log(y / x) - y + x
    if beta == 0:
        return y / x - np.log(y / x) - 1
    return y**beta / (beta * (beta - 1)) + x**beta / beta - y * x ** (beta - 1) / (beta - 1)


@pytest.mark.parametrize("beta, y", [(1.5, 0.5), (-1.0, 0.25), (0.0, 1.0), (2.0, 0.5), (3.0, 0.5)])
def test_plot_beta_divergence_draws_the_divergence(beta, y):
    ax = lessons.plot_beta_divergence(beta, y)
    assert ax.get_title() == f"beta = {beta:.2f}, y = {y:.2f}"
    curves = {line.get_label(): line for line in ax.get_lines() if len(line.get_xdata()) > 2}
    assert len(curves) == 4
    bold = curves[rf"$\beta = {beta:.2f}$"]
    assert bold.get_linewidth() == 3
    x = np.asarray(bold.get_xdata(), dtype=np.float64)
    assert x.shape == (300,) and x[0] == pytest.approx(0.02) and x[-1] == pytest.approx(2.0)
    drawn = np.asarray(bold.get_ydata(), dtype=np.float64)
    np.testing.assert_allclose(drawn, losses.beta_divergence(np.full_like(x, y), x, beta, reduction="none"),
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(drawn, beta_divergence_by_hand(y, x, beta), rtol=1e-9, atol=1e-12)
    for named in (2.0, 1.0, 0.0):
        (label,) = [k for k in curves if k.startswith(rf"$\beta = {named:g}$:")]
        np.testing.assert_allclose(curves[label].get_ydata(), beta_divergence_by_hand(y, x, named),
                                   rtol=1e-9, atol=1e-12)


def test_plot_beta_divergence_uses_the_given_axes():
    fig, ax = plt.subplots()
    assert lessons.plot_beta_divergence(1.25, 0.5, x_max=3.0, ax=ax) is ax
    assert fig.axes == [ax] and ax.get_xlim() == (0.0, 3.0)
    assert "model output $x$" in ax.get_xlabel()


# --- Lesson 03: PCA reconstruction and I-divergence gradients -----------------------------


@pytest.fixture(scope="module")
def mnist_small(mnist):
    (x_train, _), (x_test, _) = mnist
    return x_train[:600].astype(np.float64), x_test[:40].astype(np.float64)


def test_pca_reconstruction_matches_sklearn_on_mnist(mnist_small):
    from sklearn.decomposition import PCA

    train, images = mnist_small
    rough = lessons.pca_reconstruction(train, images, n_components=32)
    pca = PCA(n_components=32, svd_solver="full").fit(train)
    expected = np.clip(pca.inverse_transform(pca.transform(images)), 0.0, 1.0)
    assert rough.shape == images.shape and rough.dtype == np.float64
    assert rough.min() >= 0.0 and rough.max() <= 1.0
    np.testing.assert_allclose(rough, expected, rtol=0, atol=1e-10)
    # a rough reconstruction, not the images themselves nor their mean
    error = np.mean((rough - images) ** 2)
    assert 0.005 < error < np.mean((train.mean(axis=0) - images) ** 2)


def test_pca_reconstruction_with_every_component_is_the_identity():
    rng = np.random.default_rng(3)
    train, images = rng.uniform(0.1, 0.9, size=(60, 12)), rng.uniform(0.1, 0.9, size=(5, 12))
    np.testing.assert_allclose(lessons.pca_reconstruction(train, images, n_components=12), images, atol=1e-10)


def clipped_gradients_by_hand(x, x_hat):
    xc, hc = np.clip(x, EPSILON, 1.0), np.clip(x_hat, EPSILON, 1.0)
    inside = (x_hat >= EPSILON) & (x_hat <= 1.0)
    return np.log(hc / xc) * inside, (1.0 - xc / hc) * inside


def test_i_divergence_gradients_hand_worked():
    x = np.array([0.0, 0.5, 0.0, 0.3])
    x_hat = np.array([0.2, 0.25, 1.2, 0.6])
    g = lessons.i_divergence_gradients(x, x_hat)
    assert set(g) == {"E_I1 background", "E_I1 lit", "E_I2 background", "E_I2 lit"}
    np.testing.assert_allclose(g["E_I1 background"], [np.log(2e6), 0.0], rtol=1e-12)  # log(0.2 / 1e-7)
    np.testing.assert_allclose(g["E_I1 lit"], [np.log(0.5), np.log(2.0)], rtol=1e-12)
    np.testing.assert_allclose(g["E_I2 background"], [1 - 5e-7, 0.0], rtol=1e-12)  # x_hat > 1: clipped, 0
    np.testing.assert_allclose(g["E_I2 lit"], [-1.0, 0.5], rtol=1e-12)


def test_i_divergence_gradients_on_mnist(mnist_small):
    train, images = mnist_small
    rough = lessons.pca_reconstruction(train, images)
    g = lessons.i_divergence_gradients(images, rough)
    dark = images == 0
    g1, g2 = clipped_gradients_by_hand(images, rough)
    for loss, expected in (("E_I1", g1), ("E_I2", g2)):
        assert g[f"{loss} background"].shape == (int(dark.sum()),)
        assert g[f"{loss} lit"].shape == (int((~dark).sum()),)
        np.testing.assert_allclose(g[f"{loss} background"], expected[dark], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(g[f"{loss} lit"], expected[~dark], rtol=1e-12, atol=1e-15)
    # lesson 03, section 4: clipped E_I1 pushes background pixels much harder than lit ones
    background, lit = np.abs(g["E_I1 background"]), np.abs(g["E_I1 lit"])
    assert np.median(background[background > 0]) > 5.0
    assert background.sum() > 10 * lit.sum()


def test_plot_i_divergence_asymmetry_draws_the_losses():
    axes = lessons.plot_i_divergence_asymmetry(lit=0.8)
    lit_ax, dark_ax = axes
    assert lit_ax.get_title() == "lit pixel, x = 0.8" and dark_ax.get_title() == "dark pixel, x = 0"
    lines = {line.get_label(): line for line in lit_ax.get_lines() if len(line.get_xdata()) > 2}
    i1, i2 = r"$E_{I1} = D_I(\hat x \mid x)$", r"$E_{I2} = D_I(x \mid \hat x)$"
    x_hat = np.asarray(lines[i2].get_xdata(), dtype=np.float64)
    np.testing.assert_allclose(lines[i2].get_ydata(), pixel_loss(0.8, x_hat, "i2"), rtol=1e-9)
    np.testing.assert_allclose(lines[i1].get_ydata(), pixel_loss(0.8, x_hat, "i1"), rtol=1e-9)
    dark = {line.get_label(): line for line in dark_ax.get_lines() if len(line.get_xdata()) > 2}
    clipped = np.clip(x_hat, EPSILON, 1.0)
    np.testing.assert_allclose(dark[i1 + ", clipped"].get_ydata(),
                               pixel_loss(EPSILON, clipped, "i1"), rtol=1e-9)


def test_gradient_figures_show_the_data(mnist_small):
    train, images = mnist_small
    rough = lessons.pca_reconstruction(train, images[:6])
    axes = lessons.plot_gradient_maps(images[:6], rough, n=3)
    assert axes.shape == (4, 3)
    np.testing.assert_array_equal(axes[0, 2].get_images()[0].get_array(), images[2].reshape(28, 28))
    g1, _ = clipped_gradients_by_hand(images[:3], rough[:3])
    np.testing.assert_allclose(axes[2, 1].get_images()[0].get_array(),
                               np.maximum(np.abs(g1[1]), 1e-3).reshape(28, 28), rtol=1e-12)
    grads = lessons.i_divergence_gradients(images[:6], rough)
    hist_axes = lessons.plot_gradient_histograms(grads)
    labels = [text.get_text() for text in hist_axes[0].get_legend().get_texts()]
    background = grads["E_I1 background"]
    assert labels[0].startswith(f"background: {background.size} pixels, "
                                f"{int(np.sum(background == 0))} with gradient 0")


# --- Lesson 04: finite differences of the output delta ------------------------------------


def delta_case(seed=0, shape=(5, 9)):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.95, size=shape)
    u_tilde = rng.normal(0.0, 1.5, size=shape)
    u_tilde[np.abs(u_tilde) < 0.01] = 0.5  # away from the ReLU kink
    return x, u_tilde


@pytest.mark.parametrize("loss, decoder", PAIRS)
def test_finite_difference_delta3_matches_own_central_difference_and_the_table(loss, decoder):
    x, u_tilde = delta_case(seed=len(loss) + len(decoder))
    numerical = lessons.finite_difference_delta3(x, u_tilde, loss, decoder)
    assert numerical.shape == x.shape
    eps = 1e-6
    act = (lambda u: np.maximum(u, 0.0)) if decoder == "relu" else sigmoid
    active = u_tilde > 0 if decoder == "relu" else np.ones(x.shape, bool)
    with np.errstate(divide="ignore", invalid="ignore"):  # dead ReLU outputs: compared below
        own = (pixel_loss(x, act(u_tilde + eps), loss) - pixel_loss(x, act(u_tilde - eps), loss)) / (2 * eps)
    np.testing.assert_allclose(numerical[active], own[active], rtol=0, atol=1e-9)  # rounding: 1e-16 / eps
    reference = table_delta3(x, u_tilde, loss, decoder)
    np.testing.assert_allclose(numerical[active], reference[active], rtol=1e-6, atol=1e-8)
    if decoder == "relu":
        assert np.any(~active)
        if loss == "i2":  # infinite loss on both sides of a dead output: NaN, as documented
            assert np.all(np.isnan(numerical[~active]))
        else:
            np.testing.assert_array_equal(numerical[~active], 0.0)


def test_finite_difference_delta3_rejects_unknown_names():
    x, u_tilde = delta_case()
    with pytest.raises(ValueError, match="loss must be one of"):
        lessons.finite_difference_delta3(x, u_tilde, "mae", "relu")
    with pytest.raises(ValueError, match="decoder must be one of"):
        lessons.finite_difference_delta3(x, u_tilde, "mse", "tanh")


def test_activation_names_and_passthrough():
    assert lessons.activation("relu").name == "relu"
    sig = lessons.activation("sigmoid")
    np.testing.assert_allclose(sig.forward(np.array([-2.0, 0.0, 3.0])), sigmoid(np.array([-2.0, 0.0, 3.0])))
    assert lessons.activation(sig) is sig


# --- Lesson 04: check_gradient ------------------------------------------------------------


def test_check_gradient_passes_within_tolerance_and_diagnoses():
    rng = np.random.default_rng(5)
    expected = rng.normal(size=(4, 6))
    lessons.check_gradient(expected * (1 + 1e-9), expected, what="g", tolerance=1e-6)
    message = failure(lessons.check_gradient, -expected, expected, what="dE/dW", sign_hint="look at eq 42")
    assert message.startswith("dE/dW: max relative error") and "the sign is flipped: look at eq 42" in message
    assert_hides(message, expected)
    message = failure(lessons.check_gradient, 2 * expected, expected, what="g")
    assert "constant factor of about 2" in message
    assert_hides(message, expected)
    message = failure(lessons.check_gradient, expected + rng.normal(size=(4, 6)), expected, what="g",
                      versus="the exact gradient", hint="check eq 50")
    assert "vs the exact gradient" in message and message.endswith("; check eq 50")
    assert_hides(message, expected)


def test_check_gradient_rejects_none_shape_and_nan():
    expected = np.ones((2, 3))
    assert "did you forget to `return`" in failure(lessons.check_gradient, None, expected, what="g")
    assert "shape (3, 2) but shape (2, 3)" in failure(lessons.check_gradient, np.ones((3, 2)), expected, what="g")
    bad = expected.copy()
    bad[0, 1] = np.nan
    assert failure(lessons.check_gradient, bad, expected, what="g") == "g is NaN at 1 of 6 entries"
    bad[1, 2] = np.inf
    assert failure(lessons.check_gradient, bad, expected, what="g") == "g is NaN or infinite at 2 of 6 entries"


def test_check_gradient_says_nan_at_dead_relu_units_is_zero_times_infinity():
    """Issue 10, item 6: NaN from 0 x inf at dead ReLU units is named as such."""
    expected = np.array([[0.5, 0.0, -0.2], [0.0, 0.1, 0.3]])
    inactive = expected == 0
    bad = np.where(inactive, np.nan, expected)
    message = failure(lessons.check_gradient, bad, expected, what="delta3", inactive=inactive)
    assert message.startswith("delta3 is NaN at 2 of 6 entries, all where the ReLU unit is inactive (u <= 0)")
    assert "0 x inf is NaN" in message
    bad[0, 0] = np.nan  # NaN on an active unit too: no claim about dead units
    assert "inactive" not in failure(lessons.check_gradient, bad, expected, what="delta3", inactive=inactive)


@pytest.mark.parametrize("answer, problem", [
    ({"W": 1.0}, "g is not numeric (type dict, dtype object)"),
    ("abc", "g is not numeric (type str, dtype <U3)"),
    ([[1.0, 2.0], [3.0]], "g could not be read as a numpy array"),
    (object(), "g is not numeric (type object, dtype object)"),
])
def test_check_gradient_rejects_non_numeric_answers_saying_what_is_expected(answer, problem):
    expected = np.random.default_rng(6).normal(size=(2, 3))
    message = failure(lessons.check_gradient, answer, expected, what="g")
    assert message.startswith(problem)
    assert message.endswith("; a float array of shape (2, 3) is expected")
    assert_hides(message, expected)


def test_check_gradient_inactive_diagnosis_only_when_the_wrong_entries_are_inactive():
    expected = np.array([1.0, 0.5, 0.0, 0.0, -0.8])
    inactive = np.array([False, False, True, True, False])
    wrong_inactive = expected + np.array([0.0, 0.0, 0.3, -0.2, 0.0])
    message = failure(lessons.check_gradient, wrong_inactive, expected, what="g", inactive=inactive)
    assert "wrong only where ReLU units are inactive" in message
    wrong_active = expected + np.array([0.3, 0.0, 0.0, 0.0, 0.1])
    assert "wrong where ReLU units are active" in failure(lessons.check_gradient, wrong_active, expected,
                                                          what="g", inactive=inactive)
    # Small deviations on ACTIVE units only: no entry stands out, so no claim about inactive ones.
    slightly_off = expected * (1 + np.array([3e-6, -3e-6, 0.0, 0.0, 3e-6]))
    message = failure(lessons.check_gradient, slightly_off, expected, what="g", tolerance=1e-6,
                      inactive=inactive, hint="rounding?")
    assert "inactive" not in message and message.endswith("; rounding?")


# --- Lesson 04: check_output_delta, check_code_delta, check_gradients ---------------------


def recording(fn, wrong):
    """A learner's function: ``wrong(correct_output, *args)``; remembers the correct output."""
    seen = {}

    def learner(*args):
        seen["expected"] = fn(*args)
        return wrong(seen["expected"], *args)

    return learner, seen


@pytest.mark.parametrize("loss, decoder", PAIRS)
def test_check_output_delta_passes_for_the_table(loss, decoder):
    lessons.check_output_delta(table_delta3, loss, decoder, N=4, D=20, seed=1)
    lessons.check_output_delta(table_delta3, loss, decoder, N=7, D=13, seed=77)


@pytest.mark.parametrize("loss, decoder", PAIRS)
def test_check_output_delta_fails_for_a_flipped_sign(loss, decoder):
    learner, seen = recording(table_delta3, lambda d, *_: -d)
    message = failure(lessons.check_output_delta, learner, loss, decoder)
    assert message.startswith(f"delta3 for ({loss}, {decoder}):") and "the sign is flipped" in message
    if decoder == "sigmoid":
        assert lessons.SIGMOID_SIGN_HINT in message
    assert_hides(message, seen["expected"])


@pytest.mark.parametrize("loss, decoder", [("mse", "sigmoid"), ("i1", "relu"), ("i2", "relu")])
def test_check_output_delta_fails_when_doubled(loss, decoder):
    learner, seen = recording(table_delta3, lambda d, *_: 2 * d)
    message = failure(lessons.check_output_delta, learner, loss, decoder)
    assert f"delta3 for ({loss}, {decoder})" in message and "constant factor of about 2" in message
    assert_hides(message, seen["expected"])


@pytest.mark.parametrize("loss", ["mse", "i2"])
def test_check_output_delta_fails_when_inactive_relu_outputs_pass_gradient(loss):
    def forgets_relu_derivative(d, x, u_tilde, loss_, decoder):
        return {"mse": u_tilde - x, "i2": 1.0 - x / u_tilde}[loss_]  # finite everywhere, wrong where u~ <= 0

    learner, seen = recording(table_delta3, forgets_relu_derivative)
    message = failure(lessons.check_output_delta, learner, loss, "relu")
    assert f"delta3 for ({loss}, relu)" in message and "wrong only where ReLU units are inactive" in message
    assert_hides(message, seen["expected"])


def test_check_output_delta_names_the_pair_for_none_and_nan():
    message = failure(lessons.check_output_delta, lambda *args: None, "i1", "sigmoid")
    assert message == "delta3 for (i1, sigmoid) is None: did you forget to `return` it?"
    # log of a negative u~ (forgot the ReLU): NaN entries
    with np.errstate(invalid="ignore"):
        message = failure(lessons.check_output_delta, lambda x, u, *_: np.log(u / x), "i1", "relu")
    assert message.startswith("delta3 for (i1, relu) is NaN at ") and "where the ReLU unit is inactive" in message
    # the product 0 x inf at dead units (computed d_loss * slope without care): named as such
    with np.errstate(divide="ignore", invalid="ignore"):
        message = failure(lessons.check_output_delta,
                          lambda x, u, *_: (np.log(np.maximum(u, 0)) - np.log(x)) * (u > 0), "i1", "relu")
    assert "0 x inf is NaN" in message and "return 0 there" in message


def code_delta_by_hand(delta3, W_tilde, u):
    return (delta3 @ W_tilde) * (u > 0)


@pytest.mark.parametrize("loss, decoder", PAIRS)
def test_check_code_delta_passes_and_fails(loss, decoder):
    lessons.check_code_delta(code_delta_by_hand, loss, decoder, N=3, D=20, J=5, seed=2)
    learner, seen = recording(code_delta_by_hand, lambda d, *_: -d)
    message = failure(lessons.check_code_delta, learner, loss, decoder, N=3, D=20, J=5, seed=2)
    assert message.startswith(f"delta2 for ({loss}, {decoder}):") and "the sign is flipped" in message
    assert_hides(message, seen["expected"])
    learner, seen = recording(code_delta_by_hand, lambda d, *_: 2 * d)
    message = failure(lessons.check_code_delta, learner, loss, decoder, N=3, D=20, J=5, seed=2)
    assert "constant factor of about 2" in message
    assert_hides(message, seen["expected"])


def test_check_code_delta_fails_without_the_relu_derivative():
    def forgets_relu_derivative(d, delta3, W_tilde, u):
        assert np.any(u <= 0) and np.any(u > 0)  # the case must have both kinds of units
        return delta3 @ W_tilde

    learner, seen = recording(code_delta_by_hand, forgets_relu_derivative)
    message = failure(lessons.check_code_delta, learner, "i2", "sigmoid", N=3, D=20, J=5, seed=2)
    assert "delta2 for (i2, sigmoid)" in message and "wrong only where ReLU units are inactive" in message
    assert_hides(message, seen["expected"])


@pytest.mark.parametrize("loss, decoder", PAIRS)
def test_check_gradients_passes_for_hand_backprop(loss, decoder):
    lessons.check_gradients(gradients_by_hand, loss, decoder, "sum", seed=3)


def test_check_gradients_passes_batch_mean_and_catches_a_missing_mean():
    lessons.check_gradients(gradients_by_hand, "i1", "sigmoid", "batch_mean", N=5, seed=4)
    learner, seen = recording(lambda p, x, loss, dec, red: gradients_by_hand(p, x, loss, dec, "sum"),
                              lambda g, *_: g)
    message = failure(lessons.check_gradients, learner, "i1", "sigmoid", "batch_mean", N=5, seed=4)
    assert message.startswith("dE/dW_tilde (decoder weights, eq 51) for (i1, sigmoid), reduction='batch_mean'")
    assert "constant factor of about 5" in message


@pytest.mark.parametrize("loss, decoder", [("mse", "relu"), ("i2", "sigmoid")])
def test_check_gradients_names_the_wrong_layer(loss, decoder):
    def flip_decoder_weights(g, *_):
        return {**g, "W_tilde": -g["W_tilde"]}

    learner, seen = recording(gradients_by_hand, flip_decoder_weights)
    message = failure(lessons.check_gradients, learner, loss, decoder, "sum", seed=3)
    assert message.startswith(f"dE/dW_tilde (decoder weights, eq 51) for ({loss}, {decoder})")
    assert "the sign is flipped" in message
    assert_hides(message, seen["expected"]["W_tilde"])

    def double_encoder_weights(g, *_):
        return {**g, "W": 2 * g["W"]}

    learner, seen = recording(gradients_by_hand, double_encoder_weights)
    message = failure(lessons.check_gradients, learner, loss, decoder, "sum", seed=3)
    assert message.startswith(f"dE/dW (encoder weights, eq 50) for ({loss}, {decoder})")
    assert "constant factor of about 2" in message
    assert_hides(message, seen["expected"]["W"])


def test_check_gradients_fails_when_encoder_passes_gradient_through_inactive_units():
    def no_relu_derivative(params, x, loss, decoder, reduction):
        u, y, u_tilde, _ = forward_by_hand(params, x, decoder)
        assert np.any(u <= 0)
        delta3 = table_delta3(x, u_tilde, loss, decoder)
        delta2 = delta3 @ params["W_tilde"]  # forgot f'(u) (eq 49)
        return {"W": delta2.T @ x, "b": delta2.sum(axis=0), "W_tilde": delta3.T @ y, "b_tilde": delta3.sum(axis=0)}

    message = failure(lessons.check_gradients, no_relu_derivative, "mse", "sigmoid", "sum", seed=3)
    assert message.startswith("dE/dW (encoder weights, eq 50) for (mse, sigmoid)")
    assert "the decoder's gradients are right" in message


def test_check_gradients_requires_the_four_keys():
    message = failure(lessons.check_gradients, lambda *a: {"W": 0, "b": 0}, "mse", "relu")
    assert message == "gradients must return a dict with keys ['W', 'W_tilde', 'b', 'b_tilde'], got ['W', 'b']"
    assert "got tuple" in failure(lessons.check_gradients, lambda *a: (1, 2), "mse", "relu")


def test_make_network_is_a_finite_problem():
    params, x = lessons.make_network(D=20, J=5, N=4, seed=0, decoder="relu")
    assert {k: v.shape for k, v in params.items()} == {"W": (5, 20), "b": (5,), "W_tilde": (20, 5),
                                                        "b_tilde": (20,)}
    assert x.shape == (4, 20) and x.min() >= 0.05 and x.max() <= 0.95
    assert np.all(forward_by_hand(params, x, "relu")[2] > 0)  # every ReLU output active
    again, x_again = lessons.make_network(D=20, J=5, N=4, seed=0, decoder="relu")
    np.testing.assert_array_equal(x, x_again)


# --- Lesson 04: sampled finite differences, on real MNIST ---------------------------------


def test_sampled_finite_differences_match_the_exact_gradient_and_restore_params():
    rng = np.random.default_rng(8)
    params = {"a": rng.normal(size=(6, 7)), "c": rng.normal(size=5)}
    before = {k: v.copy() for k, v in params.items()}
    coefficients = np.arange(1.0, 43.0).reshape(6, 7)
    fn = lambda p: np.sum(coefficients * p["a"] ** 3) + np.sum(np.sin(p["c"]))  # noqa: E731
    sampled = lessons.sampled_finite_differences(fn, params, n_per_array=10, seed=1)
    for name in params:
        np.testing.assert_array_equal(params[name], before[name])
    idx, values = sampled["a"]
    assert len(set(idx.tolist())) == 10 and idx.max() < 42
    np.testing.assert_allclose(values, (3 * coefficients * before["a"] ** 2).reshape(-1)[idx], rtol=1e-7)
    idx, values = sampled["c"]
    assert idx.size == 5  # capped at the array's size
    # rounding error of a central difference: about 1e-16 |fn| / eps, with |fn| in the hundreds
    np.testing.assert_allclose(values, np.cos(before["c"])[idx], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"params\['a'\] must be a C-contiguous float64"):
        lessons.sampled_finite_differences(fn, {"a": before["a"].astype(np.float32)})
    with pytest.raises(ValueError, match="C-contiguous"):
        lessons.sampled_finite_differences(fn, {"a": np.asfortranarray(before["a"])})


@pytest.mark.parametrize("loss, decoder", [("mse", "relu"), ("i1", "sigmoid")])
def test_check_gradients_sampled_on_mnist(mnist, loss, decoder):
    from idivkit.backprop import init_params

    _, (x_test, _) = mnist
    batch = np.clip(x_test[:4].astype(np.float64), EPSILON, 1.0)
    params = init_params(784, 8, seed=0)
    worst = lessons.check_gradients_sampled(gradients_by_hand, params, batch, loss, decoder, n_per_array=10)
    assert 0.0 <= worst <= 1e-5
    learner, seen = recording(gradients_by_hand, lambda g, *_: {**g, "b_tilde": -g["b_tilde"]})
    message = failure(lessons.check_gradients_sampled, learner, params, batch, loss, decoder, n_per_array=10)
    assert message.startswith(f"dE/db_tilde (decoder bias) for ({loss}, {decoder}) on MNIST (10 sampled entries)")
    assert "the sign is flipped" in message
    assert_hides(message, seen["expected"]["b_tilde"])


def test_check_gradients_sampled_requires_the_four_keys_like_check_gradients():
    params, x = lessons.make_network(D=20, J=5, N=4, seed=0, decoder="relu")
    message = failure(lessons.check_gradients_sampled, lambda *a: {"W": 0, "b": 0}, params, x, "mse", "relu")
    assert message == "gradients must return a dict with keys ['W', 'W_tilde', 'b', 'b_tilde'], got ['W', 'b']"
    assert message == failure(lessons.check_gradients, lambda *a: {"W": 0, "b": 0}, "mse", "relu")
    assert "got tuple" in failure(lessons.check_gradients_sampled, lambda *a: (1, 2), params, x, "mse", "relu")
    # keys of mixed types are listed, not compared (sorted() alone would raise a TypeError)
    mixed = failure(lessons.check_gradients_sampled, lambda *a: {0: 1, "W": 2}, params, x, "mse", "relu")
    assert mixed.endswith("got [0, 'W']")


def test_check_gradients_sampled_rejects_a_wrong_shape_or_a_non_array_per_layer():
    params, x = lessons.make_network(D=20, J=5, N=4, seed=0, decoder="sigmoid")
    assert lessons.check_gradients_sampled(gradients_by_hand, params, x, "i2", "sigmoid", n_per_array=10) <= 1e-5

    def transposed_decoder_weights(*args):
        return {**gradients_by_hand(*args), "W_tilde": gradients_by_hand(*args)["W_tilde"].T}

    message = failure(lessons.check_gradients_sampled, transposed_decoder_weights, params, x, "i2", "sigmoid")
    assert message == ("dE/dW_tilde (decoder weights, eq 51) for (i2, sigmoid) on MNIST has shape (5, 20) "
                       "but shape (20, 5) is expected")
    message = failure(lessons.check_gradients_sampled, lambda *args: {**gradients_by_hand(*args), "b": None},
                      params, x, "i2", "sigmoid")
    assert message == "dE/db (encoder bias) for (i2, sigmoid) on MNIST is None: did you forget to `return` it?"
    message = failure(lessons.check_gradients_sampled, lambda *args: {**gradients_by_hand(*args), "b": {}},
                      params, x, "i2", "sigmoid")
    assert message.endswith("is not numeric (type dict, dtype object); a float array of shape (5,) is expected")


# --- Issue 10: grading that does not depend on how symbols were declared (lesson 02) ------


def test_check_expression_reads_the_reference_by_names_too():
    """A reference built from a learner's own symbols (Validate runs the test in their kernel)."""
    x, y, beta = sp.symbols("x y beta")  # the usual declaration: no assumptions, another order
    lessons.check_expression(y * sp.log(y / x) - y + x, y * sp.log(y / x) - y + x, what="a")
    lessons.check_expression(y * sp.log(y) - y * sp.log(x) - y + x, y * sp.log(y / x) - y + x, what="a")
    lessons.check_expression(x ** (beta - 2) * (x - y), sp.diff(lessons.eq29(), lessons.beta_symbols()[1]),
                             what="d_beta_dx")


def test_a_string_with_beta_in_it_is_the_symbol_not_the_beta_function():
    y, x, beta = lessons.beta_symbols()
    lessons.check_expression("x**(beta - 2)*(x - y)", x ** (beta - 2) * (x - y), what="d_beta_dx")
    message = failure(lessons.check_expression, sp.beta(x, y), x ** (beta - 2) * (x - y), what="d")
    assert "beta *function*" in message


@pytest.mark.parametrize("name, wrong, says", [
    ("eq29_corrected", "y**beta/(beta*(beta-1)) + x**beta/beta + y*x**(beta-1)/(beta-1)", "is not 0 at x = y"),
    ("combined_numerator", "y**beta - beta*y*x**(beta - 1)", "times a factor of beta alone"),
    ("numerator_derivative", "y*log(y) - y - y*log(x)", "does not depend on beta"),
    ("i_divergence_limit", "y*log(y/x) + x", "is not 0 at x = y"),
    ("i_divergence_limit", "beta*(y*log(y/x) - y + x)", "still depends on beta"),
    ("d_beta_dx", "x**(beta - 2)*(y - x)", "wrong sign"),
    ("printed_at_2", "(x + y)**2", "times a constant"),
])
def test_check_step_says_what_is_different_and_hides_the_answer(name, wrong, says):
    message = failure(lessons.check_step, name, wrong)
    assert message.startswith(name) and says in message
    for hidden in ("log(y/x) - y", "x**(beta - 2)*(x - y)", "y**beta/beta"):
        assert hidden not in message


def test_check_step_accepts_any_correct_form():
    x, y, beta = sp.symbols("x y beta")
    eq29 = y**beta / (beta * (beta - 1)) + x**beta / beta - y * x ** (beta - 1) / (beta - 1)
    lessons.check_step("eq29_corrected", eq29)
    lessons.check_step("printed_at_2", "(x + y)**2/2")
    lessons.check_step("combined_numerator", (y**beta - beta * y * x ** (beta - 1)) / beta)
    lessons.check_step("numerator_derivative", sp.diff(y**beta / beta - y * x ** (beta - 1), beta))
    lessons.check_step("i_divergence_limit", "x - y + y*log(y) - y*log(x)")
    lessons.check_step("itakura_saito_limit", y / x + sp.log(x) - sp.log(y) - 1)
    lessons.check_step("d_beta_dx", sp.diff(eq29, x))
    assert "set it to a sympy expression" in failure(lessons.check_step, "d_beta_dx", None)


# --- Issue 10: reference steps, call_step, check_shape, course_style ----------------------


def test_reference_steps_match_independent_formulas():
    rng = np.random.default_rng(0)
    u = rng.normal(0, 3, size=(4, 5))
    x, x_hat = rng.uniform(0.05, 0.95, size=(2, 4, 5))
    s = lessons.reference_steps("relu", "relu_derivative", "sigmoid", "sigmoid_derivative", "loss_derivative",
                                "encode", "i_divergence", "decoders", "code_delta", "output_delta")
    np.testing.assert_array_equal(s["relu"](u), np.where(u > 0, u, 0.0))
    np.testing.assert_array_equal(s["relu_derivative"](np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(s["sigmoid"](u), sigmoid(u), rtol=1e-12)
    np.testing.assert_allclose(s["sigmoid_derivative"](u), sigmoid(u) * (1 - sigmoid(u)), rtol=1e-12)
    np.testing.assert_allclose(s["loss_derivative"](x, x_hat, "half_se"), x_hat - x, rtol=1e-12)
    np.testing.assert_allclose(s["loss_derivative"](x, x_hat, "i1"), np.log(x_hat / x), rtol=1e-12)
    np.testing.assert_allclose(s["loss_derivative"](x, x_hat, "i2"), 1 - x / x_hat, rtol=1e-12)
    W, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    np.testing.assert_allclose(s["encode"](x, W, b), np.einsum("jd,nd->nj", W, x) + b, rtol=1e-12)
    np.testing.assert_allclose(s["i_divergence"](x, x_hat), x * np.log(x / x_hat) - x + x_hat, rtol=1e-12)
    assert s["decoders"]["relu"][0] is s["relu"] and s["decoders"]["sigmoid"][1] is s["sigmoid_derivative"]
    for loss in ("half_se", "i1", "i2"):
        for decoder in ("relu", "sigmoid"):
            table = table_delta3(x, u, {"half_se": "mse"}.get(loss, loss), decoder)
            np.testing.assert_allclose(s["output_delta"](x, u, loss, decoder), table,
                                       rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="no reference step 'softmax'"):
        lessons.reference_steps("softmax")


def test_call_step_names_the_error_and_the_shapes():
    def encode(x, W, b):
        return x @ W + b

    message = failure(lessons.call_step, encode, np.ones((1, 2)), np.ones((3, 2)), np.ones(3), what="encode(x, W, b)",
                      hint="check the transpose")
    assert message.startswith("encode(x, W, b) raised ValueError for arguments of shapes (1, 2), (3, 2), (3,): "
                              "check the transpose. ValueError (matmul")

    def unwritten(*args):
        raise NotImplementedError()

    assert "not written yet" in failure(lessons.call_step, unwritten, 1, what="f")
    assert lessons.call_step(lambda a, k=0: a + k, 1, k=2, what="f") == 3


@pytest.mark.parametrize("shape, cause", [((3, 1), "transposed"), ((10,), "wrong axis"), ((1, 3, 1), "extra axis"),
                                          ((2, 3), "which axis")])
def test_check_shape_says_which_shape_and_why(shape, cause):
    message = failure(lessons.check_shape, np.zeros(shape), (1, 3), what="u", meaning="(N, J)")
    assert message.startswith(f"u has shape {shape}, expected (1, 3) = (N, J)") and cause in message
    assert lessons.check_shape([[1, 2, 3]], (1, 3), what="u").shape == (1, 3)
    assert "forget to `return`" in failure(lessons.check_shape, None, (1, 3), what="u")


def test_course_style_makes_figures_opaque_and_legible():
    import matplotlib as mpl

    with mpl.rc_context():
        mpl.rcParams["figure.facecolor"] = (1, 1, 1, 0)  # what JupyterLab's inline backend sets
        lessons.course_style()
        assert mpl.colors.to_rgba(mpl.rcParams["figure.facecolor"]) == (1.0, 1.0, 1.0, 1.0)
        sizes = [mpl.rcParams[k] for k in ("font.size", "legend.fontsize", "xtick.labelsize", "axes.titlesize")]
        assert all(float(size) >= 9 for size in sizes)


# --- Issue 10: lesson 04's loss_derivative check -------------------------------------------


@pytest.mark.parametrize("loss", ["half_se", "i1", "i2"])
def test_check_loss_derivative_passes_the_derivative(loss):
    lessons.check_loss_derivative(lambda x, h, l: lessons.reference_steps("loss_derivative")["loss_derivative"](
        x, h, l), loss)
    by_hand = {"half_se": lambda x, h: h - x, "i1": lambda x, h: np.log(h) - np.log(x), "i2": lambda x, h: 1 - x / h}
    lessons.check_loss_derivative(lambda x, h, l: by_hand[l](x, h), loss, N=3, D=7, seed=5)


def test_check_loss_derivative_diagnoses_the_usual_mistakes():
    message = failure(lessons.check_loss_derivative, lambda x, h, l: 2 * (h - x), "half_se")
    assert "constant factor of about 2" in message and "1/2" in message
    message = failure(lessons.check_loss_derivative, lambda x, h, l: x - h, "half_se")
    assert "sign is flipped" in message
    message = failure(lessons.check_loss_derivative, lambda x, h, l: 1 - x / h, "i1")
    assert "the other argument order ('i2')" in message and "first argument" in message
    message = failure(lessons.check_loss_derivative, lambda x, h, l: np.log(h / x), "i2")
    assert "the other argument order ('i1')" in message
    message = failure(lessons.check_loss_derivative, lambda x, h, l: (h - x)[:, :3], "half_se")
    assert "shape (4, 3) but shape (4, 20)" in message


def test_checks_hand_the_earlier_steps_in():
    """check_output_delta / check_code_delta / check_gradients pass ``steps`` to the learner."""
    seen = []

    def output_delta(x, u, loss, decoder, loss_derivative=None, decoders=None):
        seen.append((loss_derivative, decoders))
        f, f_prime = decoders[decoder]
        slope = f_prime(u)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(slope == 0, 0.0, loss_derivative(x, f(u), loss) * slope)

    steps = lessons.reference_steps("loss_derivative", "decoders")
    lessons.check_output_delta(output_delta, "i2", "relu", steps=steps)
    assert seen == [(steps["loss_derivative"], steps["decoders"])]
    lessons.check_code_delta(lambda d3, Wt, u, relu_derivative=None: (d3 @ Wt) * relu_derivative(u), "i1", "sigmoid",
                             steps=lessons.reference_steps("relu_derivative"))


def test_check_step_follows_through_from_a_wrong_earlier_step():
    """A derivative done right of a wrong earlier answer costs nothing more (issue 10, item 4)."""
    x, y, beta = sp.symbols("x y beta")
    printed = y**beta / (beta * (beta - 1)) + x**beta / beta + y * x ** (beta - 1) / (beta - 1)
    lessons.check_step("d_beta_dx", sp.diff(printed, x), follows=printed)
    assert "not equivalent" in failure(lessons.check_step, "d_beta_dx", sp.diff(printed, x))  # without follows
    wrong_numerator = y**beta - y * x ** (beta - 1)
    lessons.check_step("numerator_derivative", sp.diff(wrong_numerator, beta), follows=wrong_numerator)
    lessons.check_step("numerator_derivative", sp.diff(y**beta / beta - y * x ** (beta - 1), beta),
                       follows=wrong_numerator)  # right anyway
    failure(lessons.check_step, "numerator_derivative", wrong_numerator, follows=wrong_numerator)
    lessons.check_step("d_beta_dx", "x**(beta-2)*(x-y)", follows=None)
    lessons.check_step("d_beta_dx", "x**(beta-2)*(x-y)", follows="not an expression (")
