"""idivkit.grading: the integrity check and the comparisons the course's tests rely on.

Learner code is simulated the way a notebook holds it: source executed into one globals dict
(the kernel's ``__main__``), so helpers, closures and imports behave as in a lesson.
"""

from __future__ import annotations

import numpy as np
import pytest

import idivkit
import idivkit.losses
from idivkit.grading import IntegrityError, assert_close, check_independent, expect, numeric_array


def notebook(source: str, **extra) -> dict:
    """Execute ``source`` as a notebook would, in a fresh ``__main__``-like namespace."""
    namespace = {"__name__": "__main__", "np": np, "idivkit": idivkit, **extra}
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


HONEST = """
def beta_divergence(x, x_hat, beta):
    eps = idivkit.EPSILON            # a plain value handed to learners: allowed
    x_hat = np.maximum(x_hat, eps)
    return np.sum(x**beta / (beta * (beta - 1)) + x_hat**beta / beta
                  - x * x_hat**(beta - 1) / (beta - 1))
"""


def test_honest_function_passes_and_is_actually_right():
    ns = notebook(HONEST)
    check_independent(ns["beta_divergence"])
    x, y = np.array([0.2, 0.5]), np.array([0.3, 0.4])
    # beta = 2 is half the squared error, worked by hand: (0.01 + 0.01) / 2
    assert ns["beta_divergence"](x, y, 2.0) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "source, reference",
    [
        ("def f(x, y): return idivkit.losses.beta_divergence(x, y, 2)", "idivkit.losses.beta_divergence"),
        ("def f(x, y): return idivkit.beta_divergence(x, y, 2)", "idivkit.losses.beta_divergence"),
        ("from idivkit.losses import squared_error as se\ndef f(x, y): return se(x, y)",
         "idivkit.losses.squared_error"),
        ("def f(x, y):\n    from idivkit.losses import i_divergence\n    return i_divergence(x, y)",
         "idivkit.losses.i_divergence"),
        ("def f(x, y):\n    import idivkit.losses as L\n    return L.i_divergence(x, y)", "idivkit.losses"),
        ("def f(x, y):\n    import importlib\n    return importlib.import_module('idivkit.losses').i_divergence(x, y)",
         "idivkit.losses"),
        ("def f(x, y):\n    g = lambda a: idivkit.itakura_saito(a, y)\n    return g(x)", "idivkit.losses.itakura_saito"),
        ("def f(x, y, impl=idivkit.losses.i_divergence): return impl(x, y)", "idivkit.losses.i_divergence"),
        ("table = {'I': idivkit.losses.i_divergence}\ndef f(x, y): return table['I'](x, y)",
         "idivkit.losses.i_divergence"),
        ("def f(x, y): return getattr(idivkit, 'i_divergence')(x, y)", "idivkit"),
        ("f = idivkit.losses.i_divergence", "idivkit.losses.i_divergence"),
    ],
    ids=["attribute-chain", "top-level-alias", "from-import-alias", "import-inside", "import-as",
         "import-by-string", "lambda", "default-argument", "container", "module-as-value", "plain-alias"],
)
def test_every_route_to_the_reference_is_caught(source, reference):
    f = notebook(source)["f"]
    with pytest.raises(IntegrityError) as info:
        check_independent(f, name="beta_divergence")
    message = str(info.value)
    assert message == (f"Integrity: your `beta_divergence` uses the idivkit reference `{reference}`; "
                       "this step scores zero. Write it yourself with numpy.")


def test_helpers_closures_classes_and_partials_are_followed():
    ns = notebook(
        """
def inner(x): return idivkit.losses.squared_error(x, x)
def middle(x): return inner(x) + 1
def outer(x): return middle(x)

def make():
    ref = idivkit.losses.i_divergence
    def closure(x): return ref(x, x)
    return closure
closed = make()

class Loss:
    def __call__(self, x): return inner(x)
loss_object = Loss()
def uses_object(x): return loss_object(x)

import functools
part = functools.partial(middle)
"""
    )
    with pytest.raises(IntegrityError, match=r"your `outer` \(through your `middle` -> `inner`\) uses"):
        check_independent(ns["outer"])
    with pytest.raises(IntegrityError, match="idivkit.losses.i_divergence"):
        check_independent(ns["closed"])
    with pytest.raises(IntegrityError, match="idivkit.losses.squared_error"):
        check_independent(ns["uses_object"])
    with pytest.raises(IntegrityError, match="idivkit.losses.squared_error"):
        check_independent(ns["part"])


def test_an_AssertionError_so_nbgrader_scores_zero():
    assert issubclass(IntegrityError, AssertionError)


def test_allow_and_references():
    ns = notebook("def f(x): return idivkit.losses.squared_error(x, x)\n"
                  "import math\ndef g(x): return math.log1p(x)")
    check_independent(ns["f"], allow=("idivkit.losses.squared_error",))
    check_independent(ns["f"], allow=("idivkit.losses",))
    with pytest.raises(IntegrityError, match="idivkit.losses.squared_error"):
        check_independent(ns["f"], allow=("idivkit.data",))
    check_independent(ns["g"])
    import math

    with pytest.raises(IntegrityError, match="forbidden reference `math.log1p`"):
        check_independent(ns["g"], references=[math.log1p])
    with pytest.raises(IntegrityError, match="forbidden reference `math.log1p`"):
        check_independent(ns["g"], references=["math.log1p"])


def test_the_checks_themselves_are_allowed():
    ns = notebook("from idivkit.grading import expect\n"
                  "def f(x):\n    expect(x.ndim == 2, 'rows please')\n    return x.sum(axis=1)")
    check_independent(ns["f"])


def test_numpy_scipy_and_recursion_are_fine():
    ns = notebook(
        """
from scipy.special import xlogy
def even(n): return True if n == 0 else odd(n - 1)
def odd(n): return False if n == 0 else even(n - 1)
def f(x, y): return np.sum(xlogy(x, x / y) - x + y) if even(2) else None
"""
    )
    check_independent(ns["f"])
    check_independent(np.sum)  # a library function is not the learner's; nothing to follow


def test_none_is_reported_clearly():
    with pytest.raises(AssertionError, match="got None"):
        check_independent(None)


# -- assert_close ------------------------------------------------------------------------------
def message(actual, expected, **kw) -> str:
    kw.setdefault("rtol", 1e-6)
    with pytest.raises(AssertionError) as info:
        assert_close(actual, expected, **kw)
    return str(info.value)


SECRET = np.array([0.123456, 7.654321, 3.141593])


def never_shows(text: str, expected: np.ndarray = SECRET) -> None:
    for value in np.ravel(expected):
        for form in (f"{value}", f"{value:.3g}", f"{value:.2e}", f"{value:.1e}"):
            assert form not in text, (form, text)


def test_passes_within_tolerance():
    assert_close(SECRET * (1 + 5e-7), SECRET, rtol=1e-6)
    assert_close(SECRET.astype(np.float32), SECRET, rtol=1e-6)
    assert_close(np.array([0.0, np.inf, np.nan]), np.array([1e-9, np.inf, np.nan]), rtol=0, atol=1e-8)
    assert_close(3, 3, rtol=0)


def test_shape_messages():
    text = message(np.ones(3), np.ones((4, 3)), what="your u")
    assert text.startswith("your u has shape (3,) (1-D) but a 2-D result of shape (4, 3) is expected")
    assert message(np.ones((3, 4)), np.ones((4, 3))) == "your result has shape (3, 4) but shape (4, 3) is expected"


def test_dtype_messages():
    assert "integer dtype int64 but a floating-point result" in message(np.arange(3), SECRET)
    assert "dtype float64 but dtype float32 is expected" in message(SECRET, SECRET.astype(np.float32),
                                                                    dtype=np.float32)
    assert "not numeric" in message("abc", SECRET)
    assert "is None" in message(None, SECRET)
    assert message(np.array([True]), np.array([1])) == ("your result has boolean dtype bool but an integer "
                                                        "result is expected")


def test_numeric_array_says_what_is_expected_without_values():
    np.testing.assert_array_equal(numeric_array([1.5, 2.0], "g"), np.array([1.5, 2.0]))
    assert numeric_array([True], "g").dtype == bool
    with pytest.raises(AssertionError) as info:
        numeric_array({"W": 1}, "g", "a float array of shape (2,)")
    assert str(info.value) == "g is not numeric (type dict, dtype object); a float array of shape (2,) is expected"
    with pytest.raises(AssertionError, match=r"^g could not be read as a numpy array \(.*\)$"):
        numeric_array([[1.0], [1.0, 2.0]], "g")


def test_the_public_api_the_notebooks_import():
    import idivkit.grading as grading

    assert sorted(grading.__all__) == ["IntegrityError", "assert_close", "check_independent", "expect"]
    # The scanner lives in a private module; it is one of "the checks", so a learner may use it.
    ns = notebook("from idivkit._integrity import unwrap\ndef f(x): return unwrap(x)")
    check_independent(ns["f"])


def test_nan_inf_placement():
    actual = SECRET.copy()
    actual[1] = np.nan
    assert "NaN at 1 of 3 entries (first at index (1,))" in message(actual, SECRET)
    actual = SECRET.copy()
    actual[2] = np.inf
    assert "infinite at 1 of 3 entries (first at index (2,))" in message(actual, SECRET)
    assert "finite at 1 of 1 entry" in message(np.array([1.0]), np.array([np.inf]))
    assert "wrong sign" in message(np.array([-np.inf]), np.array([np.inf]))


def test_value_message_reports_error_size_and_count_but_never_the_expected_values():
    actual = SECRET.copy()
    actual[[0, 2]] *= 1.032
    text = message(actual, SECRET, what="beta_divergence(x, x_hat, 2)")
    assert text == ("beta_divergence(x, x_hat, 2): max relative error 3.2e-02, max absolute error "
                    f"{0.032 * SECRET[2]:.1e} at 2 of 3 entries (first at index (0,)); "
                    "tolerance rtol=1e-06, atol=0")
    never_shows(text.replace(f"{0.032 * SECRET[2]:.1e}", ""))
    assert "where zero is expected" in message(np.array([0.5]), np.array([0.0]))


def test_integers_must_match_exactly_and_the_answer_stays_hidden():
    text = message(50000, 50992)
    assert text == "your result is not the expected value"
    assert "differs from the expected result at 1 of 3 entries" in message([1, 2, 4], [1, 2, 3])


def test_bad_tolerance_is_a_clear_error():
    with pytest.raises(ValueError, match="rtol and atol must be >= 0"):
        assert_close(1.0, 1.0, rtol=-1)


def test_expect():
    expect(True, "never raised")
    with pytest.raises(AssertionError, match="^flatten the images first$"):
        expect(np.zeros(2).ndim == 2, "flatten the images first")


def test_decorated_functions_are_unwrapped():
    ns = notebook("import functools\n@functools.lru_cache\ndef f(x): return idivkit.losses.i_divergence(x, x)")
    with pytest.raises(IntegrityError, match="idivkit.losses.i_divergence"):
        check_independent(ns["f"])
