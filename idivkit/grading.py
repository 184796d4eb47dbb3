"""Checks that the course's tests call: integrity and tolerant comparisons.

Used in every lesson (00-04), by the visible and the hidden nbgrader tests.

* :func:`check_independent` -- the integrity rule: a graded function must not use the idivkit
  reference it reimplements (nor anything else from idivkit). It inspects the learner's code
  objects (names loaded, attribute chains, imports, nested code, closures, defaults) and follows
  every helper the learner wrote in the notebook, recursively (the scanner: :mod:`._integrity`).
* :func:`assert_close` -- compares a result with the expected one and says *what* is wrong
  (shape, dtype, NaN/inf placement, size of the error) without ever printing the expected values.
* :func:`expect` -- a one-line assertion with a message that tells the learner what to fix.

All three raise ``AssertionError``: nbgrader gives a test cell zero points when it raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ._integrity import find_reference, in_package, unwrap

__all__ = ["check_independent", "assert_close", "expect", "IntegrityError"]

# The checks themselves are no reference implementation: a learner may call them anywhere.
_ALWAYS_ALLOWED = ("idivkit.grading", "idivkit._integrity")


class IntegrityError(AssertionError):
    """Raised by :func:`check_independent`; an AssertionError, so the nbgrader step scores 0."""


# --------------------------------------------------------------------------------------------
# check_independent (the code scanner lives in idivkit/_integrity.py)
# --------------------------------------------------------------------------------------------
def check_independent(func: Callable, *, references: Iterable | None = None,
                      allow: Iterable = (), name: str | None = None) -> None:
    """Raise an AssertionError if ``func`` uses idivkit instead of being written by the learner.

    The integrity rule of the course: a graded function that calls the idivkit reference it
    reimplements (or anything else from the package) scores zero for that step.

    Parameters
    ----------
    func : callable
        The learner's function (or class, or lambda, or ``functools.partial``).
    references : iterable of objects or dotted names, optional
        Further things the step forbids, outside idivkit (e.g. ``"scipy.special.xlogy"`` or a
        function object). Everything from idivkit is always forbidden.
    allow : iterable of objects or dotted-name prefixes, optional
        idivkit parts a lesson hands to learners on purpose, e.g. ``allow=("idivkit.data",)``.
        Plain values (``idivkit.EPSILON``, arrays) and :mod:`idivkit.grading` (these checks)
        are always allowed.
    name : str, optional
        The name used in the message; defaults to ``func.__name__``.

    Raises
    ------
    IntegrityError (an AssertionError)
        With a message naming the reference, e.g. "Integrity: your `beta_divergence` uses the
        idivkit reference `idivkit.losses.beta_divergence`; this step scores zero. Write it
        yourself with numpy."

    Notes
    -----
    The check reads the code: names loaded (with attribute chains resolved), imports inside the
    function, strings naming idivkit modules, nested functions and lambdas, closures, default
    arguments, and -- recursively -- every function or class the learner defined in the same
    notebook. Plain values from idivkit are fine; code from idivkit is not.
    """
    if func is None:
        raise AssertionError("check_independent: got None instead of your function; did you run "
                             "the cell that defines it?")
    root_name = getattr(unwrap(func), "__name__", None)
    label = name or root_name or type(func).__name__
    found = find_reference(func, references or (), [*_ALWAYS_ALLOWED, *allow])
    if found is None:
        return
    bad, path = found
    helpers = path[1:] if path and path[0] == root_name else path
    through = f" (through your `{'` -> `'.join(helpers)}`)" if helpers else ""
    kind = "idivkit reference" if in_package(bad.split(" ")[0]) else "forbidden reference"
    raise IntegrityError(
        f"Integrity: your `{label}`{through} uses the {kind} `{bad}`; this step scores zero. "
        "Write it yourself with numpy."
    )


# --------------------------------------------------------------------------------------------
# assert_close
# --------------------------------------------------------------------------------------------
def _kind(dtype: np.dtype) -> str:
    if dtype == bool:
        return "boolean"
    if np.issubdtype(dtype, np.integer):
        return "integer"
    if np.issubdtype(dtype, np.floating):
        return "floating-point"
    if np.issubdtype(dtype, np.complexfloating):
        return "complex"
    return str(dtype)


def _where(mask: np.ndarray) -> str:
    count = int(np.count_nonzero(mask))
    first = np.argwhere(mask)[0] if count else None
    at = ""
    if first is not None and mask.ndim:
        at = f" (first at index {tuple(int(i) for i in first)})"
    return f"{count} of {mask.size} entr{'y' if mask.size == 1 else 'ies'}{at}"


def numeric_array(actual, what: str, expected: str = "") -> np.ndarray:
    """``actual`` as a numeric (or boolean) numpy array, else an AssertionError saying so.

    The first check of :func:`assert_close`, shared with :mod:`idivkit.lessons` (lesson 04).
    ``expected`` describes what is wanted ("a float array of shape (4, 20)") and is appended to
    the message; it must never hold expected values.
    """
    wanted = f"; {expected} is expected" if expected else ""
    try:
        a = np.asarray(actual)
    except Exception as error:  # ragged lists and other oddities
        raise AssertionError(f"{what} could not be read as a numpy array ({error}){wanted}") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise AssertionError(f"{what} is not numeric (type {type(actual).__name__}, dtype {a.dtype})"
                             + wanted)
    return a


def assert_close(actual, expected, *, rtol: float, atol: float = 0.0,
                 what: str = "your result", dtype=None) -> None:
    """Assert that ``actual`` matches ``expected``; explain what is wrong, never the answer.

    Checks, in order: that ``actual`` is a numeric array-like, its shape, its dtype kind
    (boolean / integer / floating-point; ``dtype=`` demands an exact dtype), where it holds NaN
    and +-inf, and finally its values: ``|actual - expected| <= atol + rtol * |expected|``
    elementwise on the finite entries. Integer and boolean results must match exactly.

    Parameters
    ----------
    actual : array-like
        The learner's result.
    expected : array-like
        The reference result. Its values never appear in a message.
    rtol, atol : float
        Relative and absolute tolerances (explicit: ``rtol`` has no default).
    what : str
        How to name ``actual`` in messages ("your u", "beta_divergence(x, x_hat, 2)").
    dtype : numpy dtype, optional
        Require exactly this dtype (e.g. ``np.float32``).

    Raises
    ------
    AssertionError
        e.g. "your result: max relative error 3.2e-02 at 5 of 12 entries (first at index
        (1, 3)); tolerance rtol=1e-06, atol=0".
    """
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    if actual is None:
        raise AssertionError(f"{what} is None: did you forget to `return` it (or to run the cell)?")
    a = numeric_array(actual, what)
    e = np.asarray(expected)
    if a.shape != e.shape:
        if a.ndim != e.ndim:
            raise AssertionError(
                f"{what} has shape {a.shape} ({a.ndim}-D) but a {e.ndim}-D result of shape "
                f"{e.shape} is expected; check reshapes, transposes and reductions (axis=...)")
        raise AssertionError(f"{what} has shape {a.shape} but shape {e.shape} is expected")
    if dtype is not None and a.dtype != np.dtype(dtype):
        raise AssertionError(f"{what} has dtype {a.dtype} but dtype {np.dtype(dtype)} is expected")
    ka, ke = _kind(a.dtype), _kind(e.dtype)
    if ka != ke:
        article = "an" if ke == "integer" else "a"
        why = (" (integer arithmetic or astype(int) somewhere?)"
               if ke == "floating-point" and ka in ("integer", "boolean") else "")
        raise AssertionError(f"{what} has {ka} dtype {a.dtype} but {article} {ke} result is expected{why}")

    if ke in ("integer", "boolean"):
        wrong = a != e
        if np.any(wrong):
            if a.size == 1:
                raise AssertionError(f"{what} is not the expected value")
            raise AssertionError(f"{what} differs from the expected result at {_where(wrong)}")
        return

    a_nan, e_nan = np.isnan(a), np.isnan(e)
    if np.any(a_nan & ~e_nan):
        raise AssertionError(f"{what} has NaN at {_where(a_nan & ~e_nan)} where a number is "
                             "expected (0/0, log of a negative, inf - inf?)")
    if np.any(e_nan & ~a_nan):
        raise AssertionError(f"{what} is a number at {_where(e_nan & ~a_nan)} where NaN is expected")
    a_inf, e_inf = np.isinf(a), np.isinf(e)
    if np.any(a_inf & ~e_inf):
        raise AssertionError(f"{what} is infinite at {_where(a_inf & ~e_inf)} where a finite "
                             "value is expected (division by zero, log(0), overflow in exp?)")
    if np.any(e_inf & ~a_inf):
        raise AssertionError(f"{what} is finite at {_where(e_inf & ~a_inf)} where an infinite "
                             "value is expected")
    both_inf = a_inf & e_inf
    if np.any(both_inf & (np.sign(a) != np.sign(e))):
        raise AssertionError(f"{what} has an infinity of the wrong sign at "
                             f"{_where(both_inf & (np.sign(a) != np.sign(e)))}")

    finite = np.isfinite(e)
    af = a[finite].astype(np.float64) if np.iscomplexobj(a) is False else a[finite]
    ef = e[finite].astype(np.float64) if np.iscomplexobj(e) is False else e[finite]
    error = np.abs(af - ef)
    tolerance = atol + rtol * np.abs(ef)
    bad_flat = error > tolerance
    if not np.any(bad_flat):
        return
    bad = np.zeros(e.shape, dtype=bool)
    bad[finite] = bad_flat
    # Entries where zero is expected have no relative error: say how many of the wrong ones they are.
    zero_expected = ef == 0
    bad_nonzero, bad_zero = bad_flat & ~zero_expected, bad_flat & zero_expected
    notes = []
    if np.any(bad_nonzero):
        max_rel = float(np.max(error[bad_nonzero] / np.abs(ef[bad_nonzero])))
        notes.append(f"max relative error {max_rel:.1e}, max absolute error "
                     f"{float(np.max(error[bad_nonzero])):.1e}")
    if np.any(bad_zero):
        count = int(np.count_nonzero(bad_zero))
        scope = f" ({count} of the wrong entries)" if np.any(bad_nonzero) else ""
        notes.append(f"max absolute error {float(np.max(error[bad_zero])):.1e} where zero is expected{scope}")
    raise AssertionError(f"{what}: {'; '.join(notes)} at {_where(bad)}; tolerance rtol={rtol:g}, "
                         f"atol={atol:g}")


def expect(condition, message: str) -> None:
    """``assert condition, message`` that survives ``python -O``; message says what to fix."""
    if not bool(condition):
        raise AssertionError(message)
