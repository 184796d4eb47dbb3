"""Backprop by hand (idivkit.backprop) against float64 central finite differences and against
TensorFlow autodiff of an independent TensorFlow implementation of the model and the losses.

The largest relative error measured across the gradient tests is printed at the end of the
module (visible in pytest's output; also with ``-s``).
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from idivkit import backprop as bp

D, J, N = 12, 4, 5
DECODERS = ("relu", "sigmoid")
PAIRS = [(loss, decoder) for loss in ("mse", "i1", "i2", 0.5, 1.5, 3.0) for decoder in DECODERS]
TOLERANCE = 1e-6
MEASURED: dict[str, float] = {}  # test case -> max relative error, for the summary


def _record(name, error):
    MEASURED[name] = max(error, MEASURED.get(name, 0.0))
    return error


@pytest.fixture(scope="module", autouse=True)
def report_largest_error(request):
    yield
    if MEASURED:
        worst = max(MEASURED, key=MEASURED.get)
        line = (f"\n[test_backprop] largest relative error over {len(MEASURED)} gradient "
                f"comparisons: {MEASURED[worst]:.3e} ({worst})")
        for kind in ("finite differences", "TensorFlow", "JAX", "gradient_check"):
            errors = [e for name, e in MEASURED.items() if name.startswith(kind)]
            if errors:
                line += f"\n[test_backprop]   largest vs {kind}: {max(errors):.3e}"
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if capture is None:
            print(line)
        else:
            with capture.global_and_fixture_disabled():  # shown even without -s
                print(line)


def make_case(seed, all_outputs_positive):
    """A small random network and minibatch, data strictly inside (0.05, 0.95).

    Finite differences and autodiff only agree with the subgradient of eq 35 away from ReLU
    kinks, so seeds are drawn until every encoder input ``u`` and decoder input ``u~`` is at
    least 1e-3 from 0 (a step of 1e-6 in a weight moves them by at most ~1e-5). With
    ``all_outputs_positive`` every ReLU decoder output is > 0 (a positive decoder bias), as
    E_I2 and beta <= 1 are infinite where x_hat = 0 < x, and TensorFlow's closed forms need
    x_hat > 0; otherwise some decoder units must be inactive, to exercise eqs 45/55. At least
    one encoder unit is inactive for some sample, to exercise eqs 49/53.
    """
    rng = np.random.default_rng(seed)
    while True:
        params = bp.init_params(D, J, seed=int(rng.integers(2**31)))
        params["b"] = rng.uniform(-0.2, 0.4, J)
        low, high = (0.6, 1.0) if all_outputs_positive else (-0.3, 0.3)
        params["b_tilde"] = rng.uniform(low, high, D)
        x = rng.uniform(0.05, 0.95, (N, D))
        cache = bp.forward(params, x, "relu")
        u, u_tilde = cache["u"], cache["u_tilde"]
        if np.abs(u).min() < 1e-3 or np.abs(u_tilde).min() < 1e-3 or not (u < 0).any():
            continue
        if all_outputs_positive == (u_tilde > 0).all():
            return params, x


@pytest.fixture(scope="module")
def positive_case():
    return make_case(1, all_outputs_positive=True)


@pytest.fixture(scope="module")
def mixed_case():
    return make_case(2, all_outputs_positive=False)


def case_for(loss, decoder, positive_case, mixed_case, closed_forms=False):
    """Inactive ReLU outputs (x_hat = 0) are exercised where the loss stays finite and smooth:
    MSE and E_I1 (E_I1 = D_I(0 | x) = x there). The autodiff references' closed forms
    (``closed_forms=True``) give NaN at x_hat = 0 except for MSE."""
    if decoder == "relu" and loss in (("mse",) if closed_forms else ("mse", "i1")):
        return mixed_case
    return positive_case


def central_differences(params, x, loss, decoder, reduction="sum", eps=1e-6):
    """Float64 central differences of the loss, one parameter entry at a time (the test's
    own loop, not bp.numerical_gradient)."""
    grads = {}
    for key, value in params.items():
        grads[key] = np.empty_like(value)
        for index in np.ndindex(value.shape):
            values = []
            for step in (eps, -eps):
                shifted = {k: v.copy() for k, v in params.items()}
                shifted[key][index] += step
                x_hat = bp.forward(shifted, x, decoder)["x_hat"]
                values.append(bp.loss_value(x, x_hat, loss, reduction=reduction))
            grads[key][index] = (values[0] - values[1]) / (2 * eps)
    return grads


@pytest.mark.parametrize("loss, decoder", PAIRS)
def test_gradients_match_finite_differences(loss, decoder, positive_case, mixed_case):
    params, x = case_for(loss, decoder, positive_case, mixed_case)
    value, grads = bp.gradients(params, x, loss, decoder)
    assert np.isfinite(value) and value > 0
    numeric = central_differences(params, x, loss, decoder)
    for key in params:
        error = bp.relative_error(grads[key], numeric[key])
        _record(f"finite differences, {loss}/{decoder}, {key}", error)
        assert error < TOLERANCE, (key, error)
        np.testing.assert_allclose(grads[key], numeric[key], rtol=1e-5, atol=1e-8)


# --- TensorFlow autodiff of an independent implementation -------------------------------


@pytest.fixture(scope="module")
def tf():
    import tensorflow  # only here: the rest of the suite must not pay for it

    return tensorflow


def tf_loss(tf, params, x, loss, decoder, reduction="sum"):
    """The model (eqs 11-14, standard sigmoid) and the losses (eqs 30, 33, 34, corrected
    eq 29) written directly in TensorFlow, float64; needs x_hat > 0 except for MSE."""
    u = tf.matmul(x, params["W"], transpose_b=True) + params["b"]
    y = tf.nn.relu(u)
    u_tilde = tf.matmul(y, params["W_tilde"], transpose_b=True) + params["b_tilde"]
    x_hat = tf.nn.relu(u_tilde) if decoder == "relu" else tf.math.sigmoid(u_tilde)
    if loss == "mse":
        e = 0.5 * tf.square(x_hat - x)
    elif loss == "i1":
        e = x_hat * tf.math.log(x_hat / x) - x_hat + x
    elif loss == "i2":
        e = x * tf.math.log(x / x_hat) - x + x_hat
    else:
        b = loss
        e = x**b / (b * (b - 1)) + x_hat**b / b - x * x_hat ** (b - 1) / (b - 1)
    total = tf.reduce_sum(e)
    size = tf.cast(tf.size(x), tf.float64)
    return {"sum": total, "mean": total / size, "batch_mean": total / x.shape[0]}[reduction]


def tf_gradients(tf, params, x, loss, decoder, reduction="sum"):
    variables = {k: tf.Variable(v, dtype=tf.float64) for k, v in params.items()}
    with tf.GradientTape() as tape:
        value = tf_loss(tf, variables, tf.constant(x, tf.float64), loss, decoder, reduction)
    grads = tape.gradient(value, variables)
    return float(value.numpy()), {k: g.numpy() for k, g in grads.items()}


@pytest.mark.parametrize("reduction", ["sum", "mean", "batch_mean"])
@pytest.mark.parametrize("loss, decoder", PAIRS)
def test_gradients_match_tensorflow(tf, loss, decoder, reduction, positive_case, mixed_case):
    params, x = case_for(loss, decoder, positive_case, mixed_case, closed_forms=True)
    value, grads = bp.gradients(params, x, loss, decoder, reduction=reduction)
    expected_value, expected = tf_gradients(tf, params, x, loss, decoder, reduction)
    assert value == pytest.approx(expected_value, rel=1e-12)
    for key in params:
        assert expected[key].dtype == np.float64
        error = bp.relative_error(grads[key], expected[key])
        _record(f"TensorFlow, {loss}/{decoder}/{reduction}, {key}", error)
        assert error < TOLERANCE, (key, error)
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-9, atol=1e-14)


# --- JAX autodiff of a second independent implementation (cheap: no TensorFlow needed) ----


def jax_loss(jnp, params, x, loss, decoder):
    """Eqs 11-14 and the losses' closed forms in jax.numpy (x_hat > 0 except for MSE)."""
    y = jnp.maximum(x @ params["W"].T + params["b"], 0.0)
    u_tilde = y @ params["W_tilde"].T + params["b_tilde"]
    x_hat = jnp.maximum(u_tilde, 0.0) if decoder == "relu" else 1.0 / (1.0 + jnp.exp(-u_tilde))
    if loss == "mse":
        return jnp.sum((x_hat - x) ** 2) / 2
    if loss in ("i1", "i2"):
        p, q = (x_hat, x) if loss == "i1" else (x, x_hat)  # D_I(p | q)
        return jnp.sum(p * jnp.log(p / q) - p + q)
    b = loss
    return jnp.sum(x**b / (b * (b - 1)) + x_hat**b / b - x * x_hat ** (b - 1) / (b - 1))


@pytest.mark.parametrize("loss, decoder", PAIRS)
def test_gradients_match_jax(loss, decoder, positive_case, mixed_case):
    jax = pytest.importorskip("jax")
    params, x = case_for(loss, decoder, positive_case, mixed_case, closed_forms=True)
    with jax.enable_x64(True):  # float64 inside this test only
        expected = jax.grad(lambda p: jax_loss(jax.numpy, p, x, loss, decoder))(params)
        expected = {k: np.asarray(v) for k, v in expected.items()}
    _, grads = bp.gradients(params, x, loss, decoder)
    for key in params:
        assert expected[key].dtype == np.float64
        error = bp.relative_error(grads[key], expected[key])
        _record(f"JAX, {loss}/{decoder}, {key}", error)
        assert error < TOLERANCE, (key, error)


def test_mse_mean_reduction_vs_keras_convention(tf, positive_case):
    """Keras reports mean((x_hat - x)^2) (no factor 1/2): twice our "mse" with "mean", and its
    gradient is twice ours. The thesis's (and idivkit's) MSE is sum 1/2 (x_hat - x)^2."""
    params, x = positive_case
    keras_mse = lambda p: tf.reduce_mean(tf.reduce_mean(tf.square(_tf_x_hat(tf, p, x) - x), axis=-1))
    variables = {k: tf.Variable(v) for k, v in params.items()}
    with tf.GradientTape() as tape:
        keras_value = keras_mse(variables)
    keras_grads = tape.gradient(keras_value, variables)
    value, grads = bp.gradients(params, x, "mse", "sigmoid", reduction="mean")
    assert 2 * value == pytest.approx(float(keras_value), rel=1e-12)
    for key in params:
        np.testing.assert_allclose(2 * grads[key], keras_grads[key].numpy(), rtol=1e-10, atol=1e-15)


def _tf_x_hat(tf, params, x):
    y = tf.nn.relu(tf.matmul(x, params["W"], transpose_b=True) + params["b"])
    return tf.math.sigmoid(tf.matmul(y, params["W_tilde"], transpose_b=True) + params["b_tilde"])


# --- Output deltas: thesis-notes' table ------------------------------------------------------


@pytest.mark.parametrize("loss, decoder", [(lo, de) for lo in ("mse", "i1", "i2") for de in DECODERS])
def test_output_deltas_match_table(loss, decoder, positive_case, mixed_case):
    params, x = case_for(loss, decoder, positive_case, mixed_case)
    cache = bp.forward(params, x, decoder)
    u_t, x_hat = cache["u_tilde"], cache["x_hat"]
    delta3 = bp.output_delta(x, x_hat, u_t, loss, decoder)
    if decoder == "relu":
        with np.errstate(divide="ignore", invalid="ignore"):
            active = {"mse": u_t - x, "i1": np.log(u_t / x), "i2": 1 - x / u_t}[loss]  # eqs 44, 57
        expected = np.where(u_t > 0, active, 0.0)  # eqs 45, 58
    else:
        s = x_hat
        expected = {"mse": (s - x) * s * (1 - s), "i1": s * (1 - s) * np.log(s / x),  # eq 65
                    "i2": (1 - s) * (s - x)}[loss]  # eq 71
    np.testing.assert_allclose(delta3, expected, rtol=1e-12, atol=1e-15)
    if decoder == "relu" and loss != "i2":
        assert (delta3 == 0).any()  # the mixed case really has inactive outputs


def test_sigmoid_is_standard_and_stable():
    from scipy.special import expit

    u = np.array([-1000.0, -40.0, -1.0, 0.0, 0.5, 40.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning at |u| = 1000
        s = bp.sigmoid_forward(u)
    np.testing.assert_allclose(s, expit(u), rtol=1e-15, atol=0)
    assert s[3] == 0.5 and s[-1] == 1.0 and s[0] == 0.0


# --- Reductions ------------------------------------------------------------------------------


@pytest.mark.parametrize("loss, decoder", [("i2", "sigmoid"), ("mse", "relu"), (1.5, "relu")])
def test_reductions_scale(loss, decoder, positive_case):
    params, x = positive_case
    total, g_sum = bp.gradients(params, x, loss, decoder, reduction="sum")
    mean, g_mean = bp.gradients(params, x, loss, decoder, reduction="mean")
    batch, g_batch = bp.gradients(params, x, loss, decoder, reduction="batch_mean")
    assert mean == pytest.approx(total / (N * D), rel=1e-14)
    assert batch == pytest.approx(total / N, rel=1e-14)
    # eqs 77-78: the "sum" gradient is the sum of per-sample gradients.
    per_sample = [bp.gradients(params, x[n : n + 1], loss, decoder)[1] for n in range(N)]
    for key in params:
        np.testing.assert_allclose(g_mean[key], g_sum[key] / (N * D), rtol=1e-13, atol=1e-17)
        np.testing.assert_allclose(g_batch[key], g_sum[key] / N, rtol=1e-13, atol=1e-17)
        np.testing.assert_allclose(sum(g[key] for g in per_sample), g_sum[key], rtol=1e-12, atol=1e-15)


# --- The gradient checker --------------------------------------------------------------------


def test_gradient_check_passes_correct_gradients(positive_case):
    params, x = positive_case
    report = bp.gradient_check(params, x, loss="i2", decoder="sigmoid")
    _record("gradient_check, i2/sigmoid", report.max_relative_error)
    assert report.ok and report.max_relative_error < TOLERANCE
    assert set(report.errors) == {"W", "b", "W_tilde", "b_tilde"}
    text = str(report)
    assert "i2" in text and "sigmoid" in text and "ok" in text and "W_tilde" in text


def test_gradient_check_catches_a_corrupted_gradient(positive_case):
    params, x = positive_case

    def off_by_one_percent(*args, **kwargs):
        value, grads = bp.gradients(*args, **kwargs)
        return value, {**grads, "W": 1.01 * grads["W"]}

    report = bp.gradient_check(params, x, loss="mse", decoder="relu", gradient_fn=off_by_one_percent)
    assert not report.ok
    assert report.errors["W"] == pytest.approx(0.01 / 2.01, rel=1e-4)  # |1.01a - a| / (2.01|a|)
    assert report.errors["W_tilde"] < TOLERANCE
    assert "WRONG" in str(report) and "FAILED" in str(report)


def test_thesis_printed_sigmoid_fails_the_check(positive_case):
    """Eq 28 prints 1/(1+exp(u)), whose derivative is -f(1-f), while eqs 65-76 use +f(1-f):
    the printed pair fails the check (every output delta has the wrong sign); the printed
    sigmoid with its true derivative passes."""
    params, x = positive_case
    printed = lambda u: 1.0 / (1.0 + np.exp(u))
    thesis = bp.Activation("printed sigmoid", printed, lambda u, out, g: g * out * (1 - out))
    true_derivative = lambda u, out, g: -g * out * (1 - out)  # noqa: E731
    fixed = bp.Activation("printed sigmoid, true derivative", printed, true_derivative)
    for loss in ("i1", "i2"):
        wrong = bp.gradient_check(params, x, loss=loss, decoder=thesis)
        assert not wrong.ok
        assert wrong.errors["W_tilde"] == pytest.approx(1.0)  # exactly the opposite sign
        right = bp.gradient_check(params, x, loss=loss, decoder=fixed)
        assert right.ok, str(right)


def test_numerical_gradient_generic():
    a = np.array([[0.5, -1.0], [2.0, 3.0]])
    grad = bp.numerical_gradient(lambda v: np.sum(v**3) + v[0, 1] * v[1, 0], a)
    expected = 3 * a**2 + np.array([[0, a[1, 0]], [a[0, 1], 0]])
    np.testing.assert_allclose(grad, expected, rtol=1e-8)
    np.testing.assert_array_equal(a, [[0.5, -1.0], [2.0, 3.0]])  # restored
    with pytest.raises(ValueError, match="float64"):
        bp.numerical_gradient(np.sum, a.astype(np.float32))


def test_relative_error_definition():
    assert bp.relative_error([1.0, 0.0], [1.0, 0.0]) == 0.0
    assert bp.relative_error([0.0], [0.0]) == 0.0
    # max|a-b| / (max|a| + max|b|) = 0.1 / (2 + 2.1)
    assert bp.relative_error([2.0, 1.0], [2.0, 1.1]) == pytest.approx(0.1 / 4.0)
    assert bp.relative_error([1.0, -1.0], [-1.0, 1.0]) == 1.0
    assert bp.relative_error([1.0], [np.inf]) == np.inf


# --- Infinite losses and clipping ------------------------------------------------------------


def test_infinite_loss_warns_and_clip_mirrors_original(positive_case):
    params, x = positive_case
    x = x.copy()
    x[:, :3] = 0.0  # background pixels: E_I1 = D(x_hat | 0) is +inf for x_hat > 0
    with pytest.warns(RuntimeWarning, match="clip=True"):
        value, grads = bp.gradients(params, x, "i1", "sigmoid")
    assert value == np.inf
    assert np.isinf(grads["b_tilde"][:3]).all()
    value, grads = bp.gradients(params, x, "i1", "sigmoid", clip=True)
    assert np.isfinite(value) and all(np.isfinite(g).all() for g in grads.values())
    # The clipped loss is what the original code computed (clip both to [1e-7, 1]).
    x_hat = bp.forward(params, x, "sigmoid")["x_hat"]
    t, p = np.clip(x, 1e-7, 1), np.clip(x_hat, 1e-7, 1)
    assert value == pytest.approx(np.sum(p * np.log(p / t) - p + t), rel=1e-12)
    report = bp.gradient_check(params, x, loss="i1", decoder="sigmoid", clip=True)
    _record("gradient_check, i1/sigmoid clipped", report.max_relative_error)
    assert report.ok, str(report)


# --- Building blocks and validation ----------------------------------------------------------


def test_init_params_like_keras():
    params = bp.init_params(D=784, J=32, seed=0)
    shapes = {k: v.shape for k, v in params.items()}
    assert shapes == {"W": (32, 784), "b": (32,), "W_tilde": (784, 32), "b_tilde": (784,)}
    limit = np.sqrt(6 / (784 + 32))  # Glorot uniform
    for key in ("W", "W_tilde"):
        assert params[key].dtype == np.float64
        assert np.abs(params[key]).max() <= limit and np.abs(params[key]).max() > 0.99 * limit
        assert params[key].var() == pytest.approx(limit**2 / 3, rel=0.02)
    assert not params["b"].any() and not params["b_tilde"].any()
    again = bp.init_params(D=784, J=32, seed=0)
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert bp.init_params(D=10, J=3, dtype=np.float32)["W"].dtype == np.float32


def test_forward_cache(positive_case):
    params, x = positive_case
    cache = bp.forward(params, x, "sigmoid")
    shapes = {k: v.shape for k, v in cache.items()}
    assert shapes == {"x": (N, D), "u": (N, J), "y": (N, J), "u_tilde": (N, D), "x_hat": (N, D)}
    np.testing.assert_allclose(cache["u"], x @ params["W"].T + params["b"], rtol=1e-15)
    assert ((cache["x_hat"] > 0) & (cache["x_hat"] < 1)).all()


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(loss="i3"), "loss"),
        (dict(loss=True), "loss"),
        (dict(loss=float("nan")), "beta"),
        (dict(decoder="tanh"), "decoder"),
        (dict(reduction="avg"), "reduction"),
        (dict(reduction="none"), "reduction"),
        (dict(x=np.full((N, D + 1), 0.5)), r"params\['W'\]"),
        (dict(x=np.full(D, 0.5)), "x must have shape"),
        (dict(x=-np.ones((N, D))), "^x has 60 negative"),
        (dict(drop="b"), "params must be a dict with keys"),
        (dict(reshape=("W_tilde", (J, D))), r"params\['W_tilde'\]"),
        (dict(reshape=("b_tilde", (D - 1,))), r"params\['b_tilde'\]"),
        (dict(nan="b"), r"params\['b'\] has 1 NaN"),
    ],
)
def test_validation(change, message, positive_case):
    params, x = positive_case
    params = {k: v.copy() for k, v in params.items()}
    kwargs = dict(loss="mse", decoder="relu", reduction="sum", x=x)
    if "drop" in change:
        del params[change.pop("drop")]
    if "reshape" in change:
        key, shape = change.pop("reshape")
        params[key] = np.zeros(shape)
    if "nan" in change:
        params[change.pop("nan")][0] = np.nan
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        bp.gradients(params, kwargs.pop("x"), **kwargs)


def test_import_does_not_load_tensorflow():
    code = ("import sys, idivkit.backprop; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
