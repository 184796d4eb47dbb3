"""The one rule for small values, and input checks shared by every module.

The rule
--------
idivkit computes the divergences *exactly* unless asked to clip:

* ``0 log 0 = 0``, and ``D(x | x) = 0`` for every ``x >= 0`` (zero included);
* a divergence that is infinite (``D(x | 0)`` for ``x > 0`` and ``beta <= 1``, say) is
  ``+inf``: never NaN, never a silent large number.

``clip=True`` instead reproduces the thesis's Keras code, which clipped *both* arguments to
``[EPSILON, 1]`` (``K.epsilon()`` = 1e-7) before every I-divergence. The same constant is used
everywhere (numpy references, hand backprop, Keras losses): change it here, nowhere else.
"""

from __future__ import annotations

import numpy as np

#: Lower clipping bound of the original code (``keras.backend.epsilon()``).
EPSILON = 1e-7
#: Upper clipping bound of the original code (pixels live in [0, 1]).
CLIP_MAX = 1.0


def as_float_array(value, name: str, *, nonnegative: bool = True) -> np.ndarray:
    """Return ``value`` as a floating numpy array, or raise a ValueError naming ``name``.

    Rejects NaN and infinite entries and, unless ``nonnegative=False``, negative entries; the
    message says how many entries are wrong.
    """
    array = np.asarray(value)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == bool
    ):
        raise ValueError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    n_nan = int(np.count_nonzero(np.isnan(array)))
    if n_nan:
        raise ValueError(f"{name} has {n_nan} NaN entr{'y' if n_nan == 1 else 'ies'} of {array.size}")
    n_inf = int(np.count_nonzero(np.isinf(array)))
    if n_inf:
        raise ValueError(f"{name} has {n_inf} infinite entr{'y' if n_inf == 1 else 'ies'} of {array.size}")
    if nonnegative:
        n_neg = int(np.count_nonzero(array < 0))
        if n_neg:
            raise ValueError(
                f"{name} has {n_neg} negative entr{'y' if n_neg == 1 else 'ies'} of {array.size} "
                f"(smallest {array.min():.4g}); divergences need nonnegative data"
            )
    return array


def check_pair(x, x_hat, *, nonnegative: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validate data ``x`` and model output ``x_hat``: same shape, finite, nonnegative."""
    x = as_float_array(x, "x", nonnegative=nonnegative)
    x_hat = as_float_array(x_hat, "x_hat", nonnegative=nonnegative)
    if x.shape != x_hat.shape:
        raise ValueError(f"x has shape {x.shape} but x_hat has shape {x_hat.shape}; they must match")
    dtype = np.result_type(x.dtype, x_hat.dtype)
    return x.astype(dtype, copy=False), x_hat.astype(dtype, copy=False)


def check_beta(beta) -> float:
    """Return ``beta`` as a float, or raise a ValueError if it is not a finite real number."""
    try:
        value = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"beta must be a real number, got {beta!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"beta must be finite, got {beta!r}")
    return value


def clip_unit(array: np.ndarray) -> np.ndarray:
    """Clip to ``[EPSILON, CLIP_MAX]``, as the original Keras code did to both arguments."""
    return np.clip(array, EPSILON, CLIP_MAX)


REDUCTIONS = ("sum", "mean", "none")


def reduce(values: np.ndarray, reduction: str):
    """Apply an explicit reduction: ``"sum"`` of all entries, ``"mean"`` of all entries, or
    ``"none"`` (the elementwise array)."""
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        return values.mean()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_positive_int(value, name: str) -> int:
    """Return ``value`` as an int >= 1, or raise a ValueError naming ``name``.

    Refuses floats (``epochs=2.5``), booleans and strings rather than truncating them.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_choice(value, name: str, choices) -> str:
    """Return ``value`` (a string, stripped and lower-cased) if it is one of ``choices``,
    else raise a ValueError naming ``name`` and listing the valid choices."""
    choices = tuple(choices)
    key = value.strip().lower() if isinstance(value, str) else value
    if key not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return key
