"""Lesson 02 (the beta-divergence): eq 29 in sympy, an equivalence check for symbolic
answers, and the figure the beta slider redraws.

Notation of lesson 02 (the thesis's eq 29): ``D_beta(y | x)`` with ``y`` the data and ``x`` the
model output; :mod:`idivkit.losses` calls them ``x`` and ``x_hat``. sympy and matplotlib are
imported inside the functions that need them.
"""

from __future__ import annotations

import numpy as np

from .. import losses

NAMED_BETAS = {2.0: "squared error (eq 30)", 1.0: "I-divergence (eq 32)", 0.0: "Itakura-Saito"}


def beta_symbols():
    """``(y, x, beta)``: data ``y`` and model output ``x`` (positive), ``beta`` real. Lesson 02."""
    import sympy

    return sympy.symbols("y x", positive=True) + (sympy.Symbol("beta", real=True),)


def eq29(printed: bool = False):
    """Eq 29 as a sympy expression in :func:`beta_symbols`. ``printed=True`` keeps the
    thesis's ``+`` before the last term (the erratum); the default is the correct ``-``."""
    y, x, beta = beta_symbols()
    sign = 1 if printed else -1
    return y**beta / (beta * (beta - 1)) + x**beta / beta + sign * y * x ** (beta - 1) / (beta - 1)


def with_symbols(expr, symbols):
    """Replace ``expr``'s free symbols by the same-named ones in ``symbols`` (a learner's
    ``sympy.Symbol("x")`` has no assumptions and would otherwise be a different symbol)."""
    lookup = {str(s): s for s in symbols}
    unknown = sorted(str(s) for s in expr.free_symbols if str(s) not in lookup)
    if unknown:
        raise AssertionError(
            f"your expression uses the symbol(s) {unknown}; use only {sorted(lookup)}"
        )
    return expr.xreplace({s: lookup[str(s)] for s in expr.free_symbols})


def _parse(text: str, what: str):
    """A learner's answer given as a string, parsed by sympy into one expression; else an
    AssertionError saying that it could not be parsed (and quoting the learner's own text)."""
    import sympy

    shown = repr(text if len(text) <= 80 else text[:77] + "...")
    try:
        parsed = sympy.sympify(text)
    except Exception:  # SympifyError, TokenError, AttributeError...: arbitrary text can raise anything
        raise AssertionError(f"{what}: the string {shown} could not be parsed as a sympy expression; "
                             "check brackets and operators (* for products, ** for powers)") from None
    if not isinstance(parsed, sympy.Expr):
        raise AssertionError(f"{what}: the string {shown} could not be parsed as a sympy expression "
                             f"(sympy reads it as a {type(parsed).__name__}, not one expression)")
    return parsed


def check_expression(answer, reference, *, what: str, symbols=None) -> None:
    """Raise an AssertionError unless ``answer`` equals ``reference`` as a function (sympy:
    ``simplify(answer - reference) == 0``, else ``equals``), never comparing strings.

    The message says how the answer differs without showing the reference: a constant
    offset, a term free of the model output ``x``, or a different function. A string answer
    is parsed with ``sympy.sympify`` first. Lesson 02.
    """
    import sympy

    symbols = symbols or beta_symbols()
    given = type(answer).__name__
    if isinstance(answer, str):
        answer = _parse(answer, what)
    elif not isinstance(answer, sympy.Basic):
        try:
            answer = sympy.sympify(answer)
        except Exception:  # SympifyError, TypeError, or whatever str() of an odd object raises
            raise AssertionError(f"{what} must be a sympy expression, got {given}") from None
    # sympify passes None through and turns lists/arrays into containers: not one expression.
    if not isinstance(answer, sympy.Expr) or answer.is_Matrix:
        raise AssertionError(f"{what} must be a sympy expression, got {given}")
    answer = with_symbols(answer, symbols)
    if answer.has(sympy.Limit) or answer.has(sympy.Derivative):
        raise AssertionError(f"{what} still holds an unevaluated limit or derivative; call .doit()")
    difference = sympy.simplify(sympy.expand_log(answer - reference, force=True))
    if difference == 0 or answer.equals(reference):
        return
    x = symbols[1]
    if difference.is_number:
        hint = "it differs by a constant"
    elif x not in difference.free_symbols:
        hint = (f"it differs by a term that does not depend on the model output x "
                f"({', '.join(sorted(map(str, difference.free_symbols)))} only)")
    else:
        hint = "it is a different function of x"
    raise AssertionError(f"{what} is not equivalent to the correct expression: {hint}")


# --- Lesson 02: the beta slider's figure --------------------------------------------------


def plot_beta_divergence(beta: float, y: float = 0.5, x_max: float = 2.0, ax=None):
    """Plot ``D_beta(y | x)`` over the model output ``x`` for data ``y``: the chosen ``beta``
    bold, the named members (beta = 2, 1, 0) thin and labelled. The title reads
    ``"beta = 1.50, y = 0.50"`` (a browser test looks for it). Returns the Axes. Lesson 02."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    x = np.linspace(0.02, x_max, 300)
    data = np.full_like(x, y)
    for named, label in NAMED_BETAS.items():
        ax.plot(x, losses.beta_divergence(data, x, named, reduction="none"), lw=1, ls="--",
                label=f"beta = {named:g}: {label}")
    ax.plot(x, losses.beta_divergence(data, x, beta, reduction="none"), lw=3, color="k",
            label=f"beta = {beta:.2f}")
    ax.axvline(y, color="grey", lw=0.5)
    top = max(0.5, 1.3 * (x_max - y) ** 2 / 2)
    ax.set(xlim=(0, x_max), ylim=(0, top), xlabel="model output x",
           ylabel=f"D_beta(y | x), y = {y:g}", title=f"beta = {beta:.2f}, y = {y:.2f}")
    ax.legend(fontsize=8, loc="upper center")
    return ax
