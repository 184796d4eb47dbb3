"""Reference losses in numpy: the beta-divergence family and its named members.

Every function takes the data first and the model output second, ``D(x | x_hat)``, as in
scikit-learn's ``_beta_divergence(X, W, H, beta)`` and the thesis's eq 34. Arrays of any
(matching) shape are accepted; ``reduction`` says what comes back:

* ``"sum"``  (default): the sum over all entries, as in eqs 33-34 and eq 77;
* ``"mean"``: the mean over all entries. For an ``(N, 784)`` batch this is what Keras reports
  (per-sample mean over pixels, then mean over the batch);
* ``"none"``: the elementwise values, same shape as the inputs.

Small values follow the one rule of :mod:`idivkit._numerics`: exact by default (``0 log 0 = 0``,
``+inf`` where the divergence is infinite, never NaN); ``clip=True`` reproduces the original
code's clipping of both arguments to ``[1e-7, 1]``.

Used in lessons 02 (the beta-divergence) and 03 (the I-divergence as a loss).
"""

from __future__ import annotations

import math

import numpy as np

from ._numerics import CLIP_MAX, EPSILON, check_beta, check_pair, clip_unit, reduce

__all__ = [
    "beta_divergence",
    "beta_divergence_grad",
    "squared_error",
    "i_divergence",
    "reverse_i_divergence",
    "reverse_i_divergence_grad",
    "itakura_saito",
]


def _exprel(t: float, z: np.ndarray) -> np.ndarray:
    """``(exp(t z) - 1) / t``, continuous at ``t = 0`` where it equals ``z``."""
    if t == 0.0:
        return z
    return np.expm1(t * z) / t


def _scaled_divergence(beta: float, s: np.ndarray) -> np.ndarray:
    """``g(s) = d_beta(x | x_hat) / x^beta`` as a function of ``s = log(x_hat / x)``.

    ``g(s) = (exp(b s) - 1)/b - (exp((b-1) s) - 1)/(b-1)``, continuous in ``b`` (at b = 1 it
    is ``e^s - 1 - s``, at b = 0 ``s + e^(-s) - 1``). Near ``s = 0`` (``x_hat`` close to ``x``)
    the two terms cancel to ``s^2 / 2``, so there the Taylor series is summed instead:
    ``g(s) = sum_{k>=2} c_k s^k / k!`` with ``c_k = b^(k-1) - (b-1)^(k-1)
    = sum_{i=0}^{k-2} b^i (b-1)^(k-2-i)`` (no cancellation for b > 1 or b < 0).
    """
    out = np.empty_like(s)
    small = np.abs(s) * max(1.0, abs(beta), abs(beta - 1.0)) < 0.05
    far = ~small
    out[far] = _exprel(beta, s[far]) - _exprel(beta - 1.0, s[far])
    # Horner: g = s^2 (a_2 + s (a_3 + ... + s a_13)), a_k = c_k / k!; with |b s| < 0.05 the
    # terms shrink by a factor of at least ~0.05 (k-1)/(k(k-2)) each, so 12 terms suffice.
    coefficients = [
        sum(beta**i * (beta - 1.0) ** (k - 2 - i) for i in range(k - 1)) / math.factorial(k)
        for k in range(2, 14)
    ]
    s_small = s[small]
    total = np.full_like(s_small, coefficients[-1])
    for coefficient in coefficients[-2::-1]:
        total *= s_small
        total += coefficient
    out[small] = total * s_small * s_small
    return out


def _plain_formula(x: np.ndarray, x_hat: np.ndarray, beta: float) -> np.ndarray:
    """Eq 29 (sign corrected) and its limits, term by term: for positive arguments whose
    ratio is too extreme for :func:`_scaled_divergence`."""
    if beta == 1.0:
        return x * (np.log(x) - np.log(x_hat)) - x + x_hat
    if beta == 0.0:
        return x / x_hat - (np.log(x) - np.log(x_hat)) - 1.0
    return x**beta / (beta * (beta - 1.0)) + x_hat**beta / beta - x * x_hat ** (beta - 1.0) / (beta - 1.0)


def _beta_elementwise(x: np.ndarray, x_hat: np.ndarray, beta: float) -> np.ndarray:
    """Elementwise ``d_beta(x | x_hat)`` for validated, nonnegative arrays of one shape."""
    if beta == 2.0:
        # eq 30; exact for every real pair, zeros included.
        return 0.5 * (x - x_hat) ** 2

    out = np.zeros(x.shape, dtype=x.dtype)
    both = (x > 0) & (x_hat > 0)
    xp, hp = x[both], x_hat[both]
    # eq 29 with its sign corrected, x^b/(b(b-1)) + x_hat^b/b - x x_hat^(b-1)/(b-1),
    # = x^b g(log(x_hat / x)): continuous in beta (eq 32, the I-divergence, at beta = 1;
    # Itakura-Saito x/x_hat - log(x/x_hat) - 1 at beta = 0) and accurate when x_hat ~ x.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s = np.log(hp) - np.log(xp)
        near = np.abs(s) < 0.5  # there log1p keeps s accurate when x_hat ~ x
        s[near] = np.log1p((hp[near] - xp[near]) / xp[near])
        g = _scaled_divergence(beta, s)
        x_power = xp if beta == 1.0 else (1.0 if beta == 0.0 else xp**beta)
        values = np.where(g == 0, 0.0, x_power * g)
        # Extreme ratios (x^beta underflows while g overflows): the plain formula, dominated
        # by one term there; what still overflows is +inf.
        bad = ~np.isfinite(values)
        values[bad] = _plain_formula(xp[bad], hp[bad], beta)
        values[np.isnan(values)] = np.inf
    # Rounding can leave -1e-17 where the divergence is 0; a divergence is never negative.
    out[both] = np.maximum(values, 0.0)

    # x = 0 < x_hat: the x^b and x x_hat^(b-1) terms vanish for b > 0 (0 log 0 = 0 at b = 1);
    # for b <= 0 the x^b/(b(b-1)) term (or -log x at b = 0) diverges.
    zero_data = (x == 0) & (x_hat > 0)
    out[zero_data] = x_hat[zero_data] ** beta / beta if beta > 0 else np.inf
    # x > 0 = x_hat: only x^b/(b(b-1)) survives for b > 1; for b <= 1 the x_hat^(b-1) term
    # (or log x_hat) diverges.
    zero_model = (x > 0) & (x_hat == 0)
    out[zero_model] = x[zero_model] ** beta / (beta * (beta - 1.0)) if beta > 1 else np.inf
    # x = x_hat = 0: D(x | x) = 0, left as initialised.
    return out


def beta_divergence(x, x_hat, beta, reduction: str = "sum", clip: bool = False):
    r"""Beta-divergence ``D_beta(x | x_hat)`` of model output ``x_hat`` from data ``x``.

    .. math::

        d_\beta(x | \hat x) = \frac{x^\beta}{\beta(\beta-1)} + \frac{\hat x^\beta}{\beta}
                              - \frac{x \hat x^{\beta-1}}{\beta-1}

    (the thesis's eq 29 with the sign of its last term corrected). Its limits are
    ``x log(x / x_hat) - x + x_hat`` at ``beta = 1`` (the I-divergence, eq 32) and
    ``x / x_hat - log(x / x_hat) - 1`` at ``beta = 0`` (Itakura-Saito); ``beta = 2`` gives
    ``(x - x_hat)^2 / 2`` (eq 30). It is evaluated in a form that is continuous in ``beta``,
    so ``beta = 1 +- 1e-6`` agrees with ``beta = 1`` to about 1e-6 relative, and that
    stays accurate (about 1e-14 relative) when ``x_hat`` is close to ``x``.

    Parameters
    ----------
    x : array_like, shape (...)
        Data, nonnegative and finite.
    x_hat : array_like, same shape as ``x``
        Model output (reconstruction), nonnegative and finite.
    beta : float
        Any real number.
    reduction : {"sum", "mean", "none"}
        Sum over all entries, mean over all entries, or the elementwise array.
    clip : bool
        If True, clip both arguments to ``[1e-7, 1]`` first, as the thesis's code did.

    Returns
    -------
    float or ndarray
        A scalar for "sum"/"mean"; an array shaped like ``x`` for "none". ``+inf`` where the
        divergence is infinite (e.g. ``x > 0 = x_hat`` with ``beta <= 1``); never NaN.

    Raises
    ------
    ValueError
        If an argument has NaN, infinite or negative entries (the message counts them), if
        the shapes differ, or if ``beta`` or ``reduction`` is not valid.
    """
    x, x_hat = check_pair(x, x_hat)
    beta = check_beta(beta)
    if clip:
        x, x_hat = clip_unit(x), clip_unit(x_hat)
    return reduce(_beta_elementwise(x, x_hat, beta), reduction)


def beta_divergence_grad(x, x_hat, beta, clip: bool = False) -> np.ndarray:
    r"""Elementwise derivative of ``d_beta(x | x_hat)`` with respect to ``x_hat``.

    .. math:: \partial d_\beta / \partial \hat x = \hat x^{\beta-2} (\hat x - x)

    Where ``x_hat = 0`` the one-sided limit is returned: ``-inf`` if ``x > 0`` and
    ``beta < 2``, ``-x`` at ``beta = 2``, 0 for ``beta > 2``; if also ``x = 0``: 0 for
    ``beta > 1``, 1 at ``beta = 1``, ``+inf`` for ``beta < 1``.

    Parameters
    ----------
    x, x_hat : array_like, same shape
        Data and model output, nonnegative and finite.
    beta : float
    clip : bool
        Derivative of ``d(clip(x) | clip(x_hat))``: the clipped formula times the indicator
        ``1e-7 <= x_hat <= 1`` (the clip passes no gradient outside its range).

    Returns
    -------
    ndarray, same shape as ``x``
    """
    x, x_hat = check_pair(x, x_hat)
    beta = check_beta(beta)
    if clip:
        inside = (x_hat >= EPSILON) & (x_hat <= CLIP_MAX)
        return beta_divergence_grad(clip_unit(x), clip_unit(x_hat), beta) * inside

    grad = np.empty(x.shape, dtype=x.dtype)
    pos = x_hat > 0
    diff = x_hat[pos] - x[pos]
    with np.errstate(over="ignore", invalid="ignore"):
        # 0 where x_hat = x even if x_hat^(b-2) overflows (tiny x_hat, beta < 2): never NaN.
        grad[pos] = np.where(diff == 0, 0.0, x_hat[pos] ** (beta - 2.0) * diff)
    zero = ~pos
    lit = zero & (x > 0)
    dark = zero & (x == 0)
    if beta > 2:
        grad[lit] = 0.0
    elif beta == 2:
        grad[lit] = -x[lit]
    else:
        grad[lit] = -np.inf
    grad[dark] = 0.0 if beta > 1 else (1.0 if beta == 1 else np.inf)
    return grad


def squared_error(x, x_hat, reduction: str = "sum"):
    r"""Half the squared error, ``sum (x - x_hat)^2 / 2`` (eq 30; beta = 2).

    Note the factor 1/2: Keras's ``mean_squared_error`` is twice ``squared_error(...,
    reduction="mean")``. Parameters and returns as :func:`beta_divergence`.
    """
    return beta_divergence(x, x_hat, 2.0, reduction=reduction)


def i_divergence(x, x_hat, reduction: str = "sum", clip: bool = False):
    r"""The I-divergence ``D_I(x | x_hat) = x log(x / x_hat) - x + x_hat`` (E_I2, eq 34).

    The standard argument order (data first): finite at ``x = 0`` (``0 log 0 = 0``), infinite
    where ``x > 0 = x_hat``. Parameters and returns as :func:`beta_divergence` with beta = 1.
    Used in lesson 03.
    """
    return beta_divergence(x, x_hat, 1.0, reduction=reduction, clip=clip)


def reverse_i_divergence(x, x_hat, reduction: str = "sum", clip: bool = False):
    r"""The reversed I-divergence ``D_I(x_hat | x) = x_hat log(x_hat / x) - x_hat + x`` (E_I1, eq 33).

    The model output sits in the data slot, so every background pixel ``x = 0`` with
    ``x_hat > 0`` costs ``+inf`` unless ``clip=True`` (then about ``x_hat log(x_hat / 1e-7)``).
    Parameters and returns as :func:`beta_divergence` with beta = 1. Used in lesson 03.
    """
    x, x_hat = check_pair(x, x_hat)  # first, so that error messages name the right argument
    return beta_divergence(x_hat, x, 1.0, reduction=reduction, clip=clip)


def reverse_i_divergence_grad(x, x_hat, clip: bool = False) -> np.ndarray:
    r"""Elementwise derivative of E_I1 with respect to ``x_hat``: ``log(x_hat / x)``.

    ``+inf`` where ``x = 0`` (the divergence jumps to infinity as soon as ``x_hat > 0``),
    ``-inf`` where ``x_hat = 0 < x``. With ``clip=True``: ``log(clip(x_hat) / clip(x))`` times
    the indicator ``1e-7 <= x_hat <= 1``.
    """
    x, x_hat = check_pair(x, x_hat)
    if clip:
        inside = (x_hat >= EPSILON) & (x_hat <= CLIP_MAX)
        return reverse_i_divergence_grad(clip_unit(x), clip_unit(x_hat)) * inside
    grad = np.full(x.shape, np.inf, dtype=x.dtype)
    lit = x > 0
    with np.errstate(divide="ignore"):
        grad[lit] = np.log(x_hat[lit]) - np.log(x[lit])
    return grad


def itakura_saito(x, x_hat, reduction: str = "sum", clip: bool = False):
    r"""The Itakura-Saito divergence ``x / x_hat - log(x / x_hat) - 1`` (beta = 0).

    Not in the thesis's tables; its code defined it in both argument orders. Scale-invariant:
    ``D(a x | a x_hat) = D(x | x_hat)``. Parameters and returns as :func:`beta_divergence`.
    """
    return beta_divergence(x, x_hat, 0.0, reduction=reduction, clip=clip)
