"""idivkit.losses against independent references: scikit-learn, hand-worked numbers, 50-digit
mpmath, float64 finite differences and JAX autodiff of an independent implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from idivkit import losses
from idivkit._numerics import EPSILON
from idivkit.losses import (
    beta_divergence,
    beta_divergence_grad,
    i_divergence,
    itakura_saito,
    reverse_i_divergence,
    reverse_i_divergence_grad,
    squared_error,
)

SKLEARN_BETAS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
# Many betas: negative, 0, (0, 1), 1, (1, 2), 2, above 2, and values right next to the limits.
MANY_BETAS = [-3.0, -1.0, -0.5, -1e-9, 0.0, 1e-9, 0.3, 0.5, 1 - 1e-9, 1.0, 1 + 1e-9, 1.5,
              2.0, 2.5, 3.0, 10.0]


@pytest.fixture
def positive_pair():
    rng = np.random.default_rng(20190123)
    x = rng.uniform(0.05, 2.0, size=(6, 7))
    x_hat = rng.uniform(0.05, 2.0, size=(6, 7))
    return x, x_hat


# --- scikit-learn's NMF beta-divergence ---------------------------------------------------


@pytest.mark.parametrize("beta", SKLEARN_BETAS)
def test_matches_sklearn_beta_divergence(positive_pair, beta):
    import inspect

    from sklearn.decomposition._nmf import _beta_divergence

    # The private function's signature in the pinned 1.9.1: (X, W, H, beta, square_root=False).
    assert list(inspect.signature(_beta_divergence).parameters) == ["X", "W", "H", "beta", "square_root"]
    x, x_hat = positive_pair
    # sklearn computes D(X | W @ H) summed; W = x_hat and H = identity give W @ H == x_hat.
    expected = _beta_divergence(x, x_hat, np.eye(x.shape[1]), beta, square_root=False)
    assert beta_divergence(x, x_hat, beta) == pytest.approx(expected, rel=1e-10)


def test_sklearn_beta_2_is_half_squared_frobenius(positive_pair):
    from sklearn.decomposition._nmf import _beta_divergence

    x, x_hat = positive_pair
    expected = _beta_divergence(x, x_hat, np.eye(x.shape[1]), 2.0)
    assert squared_error(x, x_hat) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.5 * np.linalg.norm(x - x_hat) ** 2, rel=1e-12)


# --- Hand-worked values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "beta, x, x_hat, expected",
    [
        # beta = 1: x log(x/x_hat) - x + x_hat = 2 log 2 - 2 + 1 = 2 log 2 - 1.
        (1.0, 2.0, 1.0, 2 * math.log(2) - 1),
        # beta = 0: x/x_hat - log(x/x_hat) - 1 = 2 - log 2 - 1 = 1 - log 2.
        (0.0, 2.0, 1.0, 1 - math.log(2)),
        # beta = 2: (3 - 1)^2 / 2 = 2.
        (2.0, 3.0, 1.0, 2.0),
        # beta = 3: x^3/6 + x_hat^3/3 - x x_hat^2/2 = 8/6 + 1/3 - 1 = 2/3.
        (3.0, 2.0, 1.0, 2.0 / 3.0),
        # beta = 1/2: x^b/(b(b-1)) + x_hat^b/b - x x_hat^(b-1)/(b-1)
        #           = 2/(-1/4) + 1/(1/2) - 4/(-1/2) = -8 + 2 + 8 = 2.
        (0.5, 4.0, 1.0, 2.0),
        # beta = -1: 1/(2x) - 1/x_hat + x/(2 x_hat^2) = 1/2 - 1/2 + 1/8 = 1/8 at (1 | 2).
        (-1.0, 1.0, 2.0, 0.125),
        # D(x | x) = 0.
        (1.5, 0.7, 0.7, 0.0),
    ],
)
def test_hand_worked_values(beta, x, x_hat, expected):
    assert beta_divergence(x, x_hat, beta) == pytest.approx(expected, rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("beta", MANY_BETAS)
def test_zero_cases(beta):
    h, x = 0.6, 0.3
    # D(0 | h): x^b/(b(b-1)) and x h^(b-1)/(b-1) vanish for b > 0 (0 log 0 = 0 at b = 1),
    # leaving h^b / b (= h at b = 1); for b <= 0, x^b (or -log x) diverges.
    expected = h**beta / beta if beta > 0 else math.inf
    assert beta_divergence(0.0, h, beta) == pytest.approx(expected, rel=1e-12)
    # D(x | 0): only x^b/(b(b-1)) survives for b > 1; for b <= 1, h^(b-1) (or log h) diverges.
    expected = x**beta / (beta * (beta - 1)) if beta > 1 else math.inf
    assert beta_divergence(x, 0.0, beta) == pytest.approx(expected, rel=1e-12)
    # D(0 | 0) = 0.
    assert beta_divergence(0.0, 0.0, beta) == 0.0


def test_i_divergence_zero_cases_by_hand():
    assert i_divergence(0.0, 0.25) == 0.25  # D_1(0 | h) = 0 log 0 - 0 + h = h
    assert i_divergence(0.25, 0.0) == math.inf
    assert reverse_i_divergence(0.0, 0.25) == math.inf  # E_I1 at a background pixel
    assert reverse_i_divergence(0.25, 0.0) == 0.25


@pytest.mark.parametrize("beta", MANY_BETAS)
def test_never_nan_on_grid(beta):
    values = np.array([0.0, 1e-300, 1e-30, 1e-8, 1e-7, 0.3, 1.0, 7.0, 1e8, 1e300])
    x, x_hat = np.meshgrid(values, values)
    with np.errstate(over="ignore"):  # 1e300 ** 3 overflows to +inf, as it should
        d = beta_divergence(x, x_hat, beta, reduction="none")
        g = beta_divergence_grad(x, x_hat, beta)
    assert not np.isnan(d).any()
    assert not np.isnan(g).any()
    assert (d >= 0).all()
    assert (np.diag(d) == 0).all()  # D(x | x) = 0, zero included


# --- Continuity in beta and accuracy against 50-digit arithmetic --------------------------


@pytest.mark.parametrize("beta0", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("offset", [-1e-6, 1e-6])
def test_continuous_in_beta(positive_pair, beta0, offset):
    x, x_hat = positive_pair
    at = beta_divergence(x, x_hat, beta0, reduction="none")
    near = beta_divergence(x, x_hat, beta0 + offset, reduction="none")
    np.testing.assert_allclose(near, at, rtol=1e-5)


def _mp_reference(x, x_hat, beta):
    """Closed forms (eq 29 corrected, eq 32, Itakura-Saito) in 50-digit arithmetic."""
    import mpmath  # installed with sympy, which depends on it

    with mpmath.workdps(50):
        x, h, b = mpmath.mpf(x), mpmath.mpf(x_hat), mpmath.mpf(beta)
        if b == 1:
            value = x * mpmath.log(x / h) - x + h
        elif b == 0:
            value = x / h - mpmath.log(x / h) - 1
        else:
            value = x**b / (b * (b - 1)) + h**b / b - x * h ** (b - 1) / (b - 1)
        return float(value)


@pytest.mark.parametrize("beta", [1 - 1e-6, 1.0, 1 + 1e-6, -1e-6, 0.0, 1e-6, 0.5, 2 - 1e-6, 3.0, -2.0])
@pytest.mark.parametrize(
    "x, x_hat",
    [(0.3, 0.7), (0.01, 3.0), (0.2, 0.19), (0.5, 0.501), (0.5, 0.500001),
     (0.9, 0.900000009), (1e-3, 0.9999999e-3)],
)
def test_accurate_against_mpmath(beta, x, x_hat):
    # Includes x_hat within 1e-8 relative of x, where the terms of eq 29 cancel to ~1e-17.
    expected = _mp_reference(x, x_hat, beta)
    assert beta_divergence(x, x_hat, beta) == pytest.approx(expected, rel=1e-13)


# --- Reductions -----------------------------------------------------------------------------


def test_reductions(positive_pair):
    x, x_hat = positive_pair
    elementwise = beta_divergence(x, x_hat, 1.5, reduction="none")
    assert elementwise.shape == x.shape
    assert elementwise[2, 3] == pytest.approx(beta_divergence(x[2, 3], x_hat[2, 3], 1.5), rel=1e-15)
    assert beta_divergence(x, x_hat, 1.5, reduction="sum") == pytest.approx(elementwise.sum(), rel=1e-14)
    mean = beta_divergence(x, x_hat, 1.5, reduction="mean")
    assert mean == pytest.approx(elementwise.sum() / x.size, rel=1e-14)


def test_mean_is_keras_mean_of_per_sample_means():
    rng = np.random.default_rng(3)
    x, x_hat = rng.uniform(0, 1, (4, 784)), rng.uniform(0.01, 1, (4, 784))
    per_sample = [np.mean([i_divergence(a, b) for a, b in zip(xs, hs)]) for xs, hs in zip(x, x_hat)]
    assert i_divergence(x, x_hat, reduction="mean") == pytest.approx(np.mean(per_sample), rel=1e-12)


@pytest.mark.parametrize("reduction", ["avg", "batch_mean", None, "SUM"])
def test_invalid_reduction(reduction):
    with pytest.raises(ValueError, match="reduction"):
        beta_divergence([1.0], [1.0], 1.0, reduction=reduction)


# --- Clipping as in the original code --------------------------------------------------------


def test_clip_matches_original_code():
    rng = np.random.default_rng(7)
    # Background zeros, values above 1 and ordinary pixels: the clip is active on both sides.
    x = np.concatenate([np.zeros(5), rng.uniform(0, 1, 20), [1.3, 1.0]])
    x_hat = np.concatenate([rng.uniform(0, 1, 5), [0.0, 2.0], rng.uniform(0, 1, 18), [0.0, 1e-9]])
    t, p = np.clip(x, 1e-7, 1.0), np.clip(x_hat, 1e-7, 1.0)
    # i_divergence2 of the original notebook: mean(t log(t/p) - t + p).
    expected_i2 = t * np.log(t / p) - t + p
    ours = i_divergence(x, x_hat, reduction="none", clip=True)
    np.testing.assert_allclose(ours, expected_i2, rtol=1e-10, atol=1e-16)
    # i_divergence1: mean(p log(p/t) - p + t).
    expected_i1 = p * np.log(p / t) - p + t
    ours = reverse_i_divergence(x, x_hat, reduction="none", clip=True)
    np.testing.assert_allclose(ours, expected_i1, rtol=1e-10, atol=1e-16)
    mean = i_divergence(x, x_hat, reduction="mean", clip=True)
    assert mean == pytest.approx(expected_i2.mean(), rel=1e-10)
    assert EPSILON == 1e-7


# --- Named members ----------------------------------------------------------------------------


def test_named_members(positive_pair):
    x, x_hat = positive_pair
    assert squared_error(x, x_hat) == pytest.approx(0.5 * np.sum((x - x_hat) ** 2), rel=1e-14)
    assert i_divergence(x, x_hat) == pytest.approx(np.sum(x * np.log(x / x_hat) - x + x_hat), rel=1e-12)
    assert i_divergence(x, x_hat) == beta_divergence(x, x_hat, 1.0)
    assert reverse_i_divergence(x, x_hat) == i_divergence(x_hat, x)
    assert itakura_saito(x, x_hat) == beta_divergence(x, x_hat, 0.0)
    ratio = x / x_hat
    assert itakura_saito(x, x_hat) == pytest.approx(np.sum(ratio - np.log(ratio) - 1), rel=1e-12)
    # Itakura-Saito is scale invariant; the I-divergence scales linearly.
    assert itakura_saito(37.0 * x, 37.0 * x_hat) == pytest.approx(itakura_saito(x, x_hat), rel=1e-12)
    scaled = i_divergence(37.0 * x, 37.0 * x_hat)
    assert scaled == pytest.approx(37.0 * i_divergence(x, x_hat), rel=1e-12)
    # The I-divergence is asymmetric.
    assert abs(i_divergence(x, x_hat) - reverse_i_divergence(x, x_hat)) > 1e-3


# --- Derivatives -------------------------------------------------------------------------------


def _central_difference(fn, x_hat, eps=1e-6):
    grad = np.empty_like(x_hat)
    for i in np.ndindex(x_hat.shape):
        up, down = x_hat.copy(), x_hat.copy()
        up[i] += eps
        down[i] -= eps
        grad[i] = (fn(up) - fn(down)) / (2 * eps)
    return grad


GRAD_BETAS = [-1.0, 0.0, 0.5, 1 - 1e-6, 1.0, 1.5, 2.0, 3.0]


@pytest.mark.parametrize("beta", GRAD_BETAS)
def test_beta_grad_finite_differences(positive_pair, beta):
    x, x_hat = positive_pair
    numeric = _central_difference(lambda h: beta_divergence(x, h, beta), x_hat)
    np.testing.assert_allclose(beta_divergence_grad(x, x_hat, beta), numeric, rtol=1e-6, atol=1e-8)


def _jax_beta_divergence(x, h, beta):
    """Independent closed forms in jax.numpy (no stabilisation)."""
    import jax.numpy as jnp

    if beta == 1:
        return jnp.sum(x * jnp.log(x / h) - x + h)
    if beta == 0:
        return jnp.sum(x / h - jnp.log(x / h) - 1)
    return jnp.sum(x**beta / (beta * (beta - 1)) + h**beta / beta - x * h ** (beta - 1) / (beta - 1))


@pytest.fixture
def jax_x64():
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):  # float64 only inside the test, not for the whole session
        yield jax


@pytest.mark.parametrize("beta", GRAD_BETAS)
def test_beta_grad_jax(positive_pair, beta, jax_x64):
    x, x_hat = positive_pair
    expected = jax_x64.grad(lambda h: _jax_beta_divergence(x, h, beta))(x_hat)
    assert expected.dtype == np.float64
    np.testing.assert_allclose(beta_divergence_grad(x, x_hat, beta), np.asarray(expected), rtol=1e-10)


def test_reverse_i_grad_jax_and_finite_differences(positive_pair, jax_x64):
    x, x_hat = positive_pair
    expected = jax_x64.grad(lambda h: _jax_beta_divergence(h, x, 1))(x_hat)  # E_I1 = D(x_hat | x)
    grad = reverse_i_divergence_grad(x, x_hat)
    np.testing.assert_allclose(grad, np.asarray(expected), rtol=1e-10)
    numeric = _central_difference(lambda h: reverse_i_divergence(x, h), x_hat)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad, np.log(x_hat / x), rtol=1e-12)


@pytest.mark.parametrize(
    "beta, at_zero_lit, at_zero_dark",
    [
        # d/dh at h = 0 of h^(b-2)(h - x): -inf for x > 0 and b < 2, -x at b = 2, 0 above;
        # with x = 0 it is h^(b-1): +inf for b < 1, 1 at b = 1, 0 for b > 1.
        (0.5, -math.inf, math.inf),
        (1.0, -math.inf, 1.0),
        (1.5, -math.inf, 0.0),
        (2.0, -0.3, 0.0),
        (3.0, 0.0, 0.0),
    ],
)
def test_beta_grad_zero_edges(beta, at_zero_lit, at_zero_dark):
    grad = beta_divergence_grad([0.3, 0.0, 0.0], [0.0, 0.0, 0.4], beta)
    assert grad[0] == at_zero_lit
    assert grad[1] == at_zero_dark
    assert grad[2] == pytest.approx(0.4 ** (beta - 1))  # x = 0 < h: h^(b-2) h


def test_reverse_i_grad_zero_edges():
    grad = reverse_i_divergence_grad([0.0, 0.3, 0.0], [0.2, 0.0, 0.0])
    assert grad[0] == math.inf  # background pixel: E_I1 is infinite as soon as x_hat > 0
    assert grad[1] == -math.inf  # log(0 / 0.3)
    assert grad[2] == math.inf


def test_clipped_gradients_vanish_outside_the_clip_range():
    x = np.array([0.0, 0.3, 0.3, 0.0, 0.6, 0.6])
    x_hat = np.array([0.5, 1.5, 1e-9, 0.0, 0.2, 0.9])
    for grad_fn, value_fn in [
        (lambda a, b: beta_divergence_grad(a, b, 1.0, clip=True),
         lambda a, b: i_divergence(a, b, clip=True)),
        (lambda a, b: reverse_i_divergence_grad(a, b, clip=True),
         lambda a, b: reverse_i_divergence(a, b, clip=True)),
    ]:
        grad = grad_fn(x, x_hat)
        assert np.all(np.isfinite(grad))
        assert (grad[[1, 2, 3]] == 0).all()  # x_hat outside [1e-7, 1]: the clip passes nothing
        # Away from the clip's corners the clipped loss is smooth: finite differences agree
        # (not at x_hat = 0 or 1e-9, where a step of 1e-6 would leave the domain).
        smooth = [0, 1, 4, 5]
        numeric = _central_difference(lambda h: value_fn(x[smooth], h), x_hat[smooth])
        np.testing.assert_allclose(grad[smooth], numeric, rtol=1e-6, atol=1e-9)
    # Inside, E_I2's clipped gradient is the plain one with x clipped: 1 - clip(x)/x_hat.
    np.testing.assert_allclose(beta_divergence_grad(x, x_hat, 1.0, clip=True)[[0, 4, 5]],
                               1 - np.array([1e-7, 0.6, 0.6]) / x_hat[[0, 4, 5]], rtol=1e-12)


# --- Bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [
    lambda x, h: beta_divergence(x, h, 1.5),
    lambda x, h: beta_divergence_grad(x, h, 1.5),
    lambda x, h: reverse_i_divergence(x, h),
    lambda x, h: reverse_i_divergence_grad(x, h),
    lambda x, h: squared_error(x, h),
])
def test_bad_input_names_argument_and_count(fn):
    good = np.full(5, 0.5)
    cases = [
        (np.array([-1.0, 0.5, -0.1, 0.2, 0.1]), good, r"^x has 2 negative"),
        (good, np.array([0.5, -3.0, 0.5, 0.5, 0.5]), r"^x_hat has 1 negative"),
        (np.array([np.nan] * 3 + [0.1, 0.2]), good, r"^x has 3 NaN"),
        (good, np.array([np.inf, 0.1, -np.inf, 0.1, 0.1]), r"^x_hat has 2 infinite"),
        (good, np.full(4, 0.5), r"shape"),
        (np.array(["a", "b"]), np.array([0.1, 0.2]), r"^x must be a numeric"),
        (good, [None] * 5, r"^x_hat must be a numeric"),
    ]
    for x, x_hat, message in cases:
        with pytest.raises(ValueError, match=message):
            fn(x, x_hat)


@pytest.mark.parametrize("beta", [float("nan"), "abc", None, float("inf")])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        beta_divergence([0.5], [0.5], beta)
    with pytest.raises(ValueError, match="beta"):
        beta_divergence_grad([0.5], [0.5], beta)


def test_module_exports():
    assert set(losses.__all__) == {
        "beta_divergence", "beta_divergence_grad", "squared_error", "i_divergence",
        "reverse_i_divergence", "reverse_i_divergence_grad", "itakura_saito",
    }
