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
    ``sympy.Symbol("x")`` has no assumptions and would otherwise be a different symbol).
    Symbols are matched by name only: how they were declared never matters."""
    lookup = {str(s): s for s in symbols}
    unknown = sorted(str(s) for s in expr.free_symbols if str(s) not in lookup)
    if unknown:
        raise AssertionError(
            f"your expression uses the symbol(s) {unknown}; use only {sorted(lookup)}"
        )
    return expr.xreplace({s: lookup[str(s)] for s in expr.free_symbols})


def _parse(text: str, what: str, symbols=None):
    """A learner's answer given as a string, parsed by sympy into one expression; else an
    AssertionError saying that it could not be parsed (and quoting the learner's own text).

    The lesson's names (``y``, ``x``, ``beta``) are bound to the lesson's symbols while parsing,
    so ``beta`` is the symbol, never sympy's beta function."""
    import sympy

    symbols = symbols or beta_symbols()
    shown = repr(text if len(text) <= 80 else text[:77] + "...")
    try:
        parsed = sympy.sympify(text, locals={str(s): s for s in symbols})
    except Exception:  # SympifyError, TokenError, AttributeError...: arbitrary text can raise anything
        raise AssertionError(f"{what}: the string {shown} could not be parsed as a sympy expression; "
                             "check brackets and operators (* for products, ** for powers)") from None
    if not isinstance(parsed, sympy.Expr):
        raise AssertionError(f"{what}: the string {shown} could not be parsed as a sympy expression "
                             f"(sympy reads it as a {type(parsed).__name__}, not one expression)")
    return parsed


def as_expression(answer, *, what: str, symbols=None):
    """A learner's answer (a sympy expression in any symbols named ``y``, ``x``, ``beta``, or a
    string) as one expression in the lesson's own :func:`beta_symbols`; else an AssertionError
    saying what is wrong with it (not an expression, a foreign symbol, an unevaluated limit or
    derivative). Lesson 02."""
    import sympy

    symbols = symbols or beta_symbols()
    given = type(answer).__name__
    if isinstance(answer, str):
        answer = _parse(answer, what, symbols)
    elif not isinstance(answer, sympy.Basic):
        try:
            answer = sympy.sympify(answer, strict=True)
        except Exception:  # SympifyError, TypeError, or whatever str() of an odd object raises
            raise AssertionError(f"{what} must be a sympy expression, got {given}") from None
    # sympify passes None through and turns lists/arrays into containers: not one expression.
    if not isinstance(answer, sympy.Expr) or answer.is_Matrix or isinstance(answer, sympy.logic.boolalg.Boolean):
        raise AssertionError(f"{what} must be a sympy expression, got {given}")
    if answer.has(sympy.Limit) or answer.has(sympy.Derivative):
        raise AssertionError(f"{what} still holds an unevaluated limit or derivative; call .doit()")
    if any(isinstance(f, sympy.beta) for f in answer.atoms(sympy.Function)):
        raise AssertionError(f"{what} uses sympy's beta *function* beta(...): write the symbol beta, "
                             "e.g. x**(beta - 1), not beta(x)")
    try:
        return with_symbols(answer, symbols)
    except AssertionError as error:
        raise AssertionError(f"{what}: {error}") from None


def _is_zero(expr) -> bool:
    import sympy

    difference = sympy.simplify(sympy.expand_log(expr, force=True))
    return difference == 0 or difference.equals(0) is True


def check_expression(answer, reference, *, what: str, symbols=None) -> None:
    """Raise an AssertionError unless ``answer`` equals ``reference`` as a function (sympy:
    ``simplify(answer - reference) == 0``, else ``equals``), never comparing strings.

    Both are read by symbol *names* (``y``, ``x``, ``beta``): a learner's
    ``sp.symbols("x y beta")`` without assumptions counts as the lesson's symbols. A string
    answer is parsed with the lesson's names bound. The message says how the answer differs
    without showing the reference: it still depends on a symbol it should not (``beta`` left
    in a limit), it misses one, a constant offset, a term free of the model output ``x``, or a
    different function. Lesson 02.
    """
    symbols = symbols or beta_symbols()
    answer = as_expression(answer, what=what, symbols=symbols)
    reference = with_symbols(reference, symbols)
    import sympy

    difference = sympy.simplify(sympy.expand_log(answer - reference, force=True))
    if difference == 0 or answer.equals(reference) is True:
        return
    extra = sorted(map(str, answer.free_symbols - reference.free_symbols))
    missing = sorted(map(str, reference.free_symbols - answer.free_symbols))
    x = symbols[1]
    if extra:
        hint = (f"it still depends on {', '.join(extra)}, which the correct expression does not "
                "(substitute the limit's value, or simplify)")
    elif missing:
        hint = f"it does not depend on {', '.join(missing)}, but the correct expression does"
    elif difference.is_number:
        hint = "it differs by a constant"
    elif x not in difference.free_symbols or _is_zero(difference.diff(x)):
        others = sorted(map(str, difference.free_symbols - {x}))
        hint = ("it differs by a term that does not depend on the model output x"
                + (f" ({', '.join(others)} only)" if others else ""))
    elif _is_zero(answer + reference):
        hint = "it has the wrong sign"
    elif _factor_of(answer, reference, symbols):
        hint = _factor_of(answer, reference, symbols)
    else:
        hint = "it is a different function of x"
    raise AssertionError(f"{what} is not equivalent to the correct expression: {hint}")


def _factor_of(answer, reference, symbols) -> str:
    """A hint when ``answer`` is ``reference`` times a constant or a function of beta only."""
    import sympy

    if reference == 0:
        return ""
    try:
        ratio = sympy.simplify(sympy.expand_log(answer / reference, force=True))
    except Exception:  # noqa: BLE001
        return ""
    y, x = symbols[0], symbols[1]
    if ratio.has(y) or ratio.has(x) or ratio == 0:
        return ""
    if ratio.is_number:
        return "it is the correct expression times a constant: check a factor such as 1/2 or the denominator"
    return "it is the correct expression times a factor of beta alone: check the denominator you divided by"


def check_vanishes_at_data(answer, *, what: str, symbols=None) -> None:
    """Visible check of a divergence in ``y`` (data) and ``x`` (model output): it must be 0
    at ``x = y`` (a divergence vanishes when the model is exact). Says so, shows nothing
    else. Lesson 02."""
    symbols = symbols or beta_symbols()
    y, x = symbols[0], symbols[1]
    answer = as_expression(answer, what=what, symbols=symbols)
    if not _is_zero(answer.subs(x, y)):
        raise AssertionError(f"{what} is not 0 at x = y: a divergence must vanish where the model "
                             "output equals the data; look for a missing or extra term")


def _step_references():
    """The reference of each graded step of lesson 02, by the name of the learner's variable."""
    import sympy

    y, x, beta = beta_symbols()
    numerator = y**beta / beta - y * x ** (beta - 1)
    return {
        "printed_at_2": eq29(printed=True).subs(beta, 2),
        "eq29_corrected": eq29(),
        "combined_numerator": numerator,
        "numerator_derivative": sympy.diff(numerator, beta),
        "i_divergence_limit": y * sympy.log(y / x) - y + x,
        "itakura_saito_limit": y / x - sympy.log(y / x) - 1,
        "d_beta_dx": sympy.diff(eq29(), x),
    }


STEP_HINTS = {
    "printed_at_2": "substitute beta = 2 into the printed eq 29 (.subs) and simplify",
    "eq29_corrected": "change the sign of one term of eq 29, so that D(y | y) = 0 for every beta",
    "combined_numerator": "the two diverging terms together must equal combined_numerator / (beta - 1)",
    "numerator_derivative": "differentiate combined_numerator with respect to beta (sp.diff(..., beta))",
    "i_divergence_limit": "L'Hopital: the derivative of the numerator at beta = 1, plus the limit of x^beta / beta",
    "itakura_saito_limit": "combine the two terms with beta in the denominator, L'Hopital at beta = 0, "
                           "then add the limit of the last term",
    "d_beta_dx": "differentiate your corrected eq 29 with respect to the model output x",
}


# A step that is an operation on the learner's previous step: (variable to differentiate by).
_FOLLOWS = {"numerator_derivative": "beta", "d_beta_dx": "x"}


def check_step(name: str, answer, follows=None) -> None:
    """Check the learner's answer to the lesson 02 step ``name`` (the variable's name, e.g.
    ``"combined_numerator"``): an expression in ``y``, ``x``, ``beta`` however they were
    declared (or a string), equivalent to the step's reference. Divergences must first vanish
    at ``x = y``. The message says what differs (a symbol too many or too few, a constant, a
    term free of ``x``, the sign), never the expected expression.

    ``follows``: for a step that differentiates an earlier one (``numerator_derivative`` of
    ``combined_numerator``, ``d_beta_dx`` of ``eq29_corrected``), the learner's earlier answer.
    A derivative done right of a wrong earlier answer passes too: the earlier mistake costs the
    earlier step's points only. Lesson 02."""
    references = _step_references()
    if name not in references:
        raise ValueError(f"no lesson 02 step {name!r}; known: {sorted(references)}")
    if answer is None:
        raise AssertionError(f"{name} is None: set it to a sympy expression ({STEP_HINTS[name]})")
    if follows is not None and name in _FOLLOWS:
        import sympy

        symbols = {str(s): s for s in beta_symbols()}
        try:
            earlier = as_expression(follows, what="your earlier step")
            carried = sympy.diff(earlier, symbols[_FOLLOWS[name]])
            check_expression(answer, carried, what=name)
            return  # right from the learner's own earlier answer
        except AssertionError:
            pass  # judged against the reference below
    if name in ("eq29_corrected", "i_divergence_limit", "itakura_saito_limit"):
        check_vanishes_at_data(answer, what=name)
    try:
        check_expression(answer, references[name], what=name)
    except AssertionError as error:
        raise AssertionError(f"{error}. Hint: {STEP_HINTS[name]}") from None


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
    styles = ["--", "-.", ":"]
    for (named, label), style in zip(NAMED_BETAS.items(), styles):
        ax.plot(x, losses.beta_divergence(data, x, named, reduction="none"), lw=1.5, ls=style,
                label=rf"$\beta = {named:g}$: {label}")
    ax.plot(x, losses.beta_divergence(data, x, beta, reduction="none"), lw=3, color="k",
            label=rf"$\beta = {beta:.2f}$")
    ax.axvline(y, color="grey", lw=0.5)
    top = max(0.5, 1.3 * (x_max - y) ** 2 / 2)
    ax.set(xlim=(0, x_max), ylim=(0, top), xlabel=r"model output $x$",
           ylabel=rf"$D_\beta(y \mid x)$, $y = {y:g}$", title=f"beta = {beta:.2f}, y = {y:.2f}")
    ax.legend(fontsize=9, loc="upper center")
    return ax
