"""Lesson 09 (which beta?): the beta-divergence as a Tweedie negative log-likelihood in sympy,
an equivalence check that compares symbols by their names, and the reference steps for reading
a beta sweep.

Notation as in lesson 02: ``y`` the data, ``x`` the model output (the distribution's mean);
``sigma`` the Gaussian's standard deviation, ``k`` the Gamma's shape. sympy is imported inside
the functions.
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = [
    "NOISE_MODELS", "as_tweedie", "tweedie_symbols", "reference_nll", "named_divergence", "check_equivalent",
    "best_beta", "indistinguishable", "synthetic_sweep_rows",
]

#: The three noise models of the lesson and the beta each one gives.
NOISE_MODELS = {"gaussian": 2, "poisson": 1, "gamma": 0}

# Names a string answer may use: the lesson's symbols and a few sympy functions. Anything else
# (attributes, dunders, other names) is refused before sympy sees the text.
_ALLOWED_NAMES = {"y", "x", "sigma", "k", "beta", "log", "exp", "sqrt", "pi", "E", "gamma", "loggamma",
                  "factorial", "Rational"}
_SAFE_TEXT = re.compile(r"^[\w\s+\-*/().,^]*$")


def tweedie_symbols():
    """``(y, x, sigma, k)``, all positive: data, model output (mean), Gaussian standard
    deviation, Gamma shape. Lesson 09."""
    import sympy

    return sympy.symbols("y x sigma k", positive=True)


def reference_nll(model: str):
    """The negative log-likelihood of one observation ``y`` with mean ``x``, as a sympy
    expression: ``"gaussian"`` (standard deviation ``sigma``), ``"poisson"`` (``y`` a count),
    ``"gamma"`` (shape ``k``, mean ``x``). Lesson 09."""
    import sympy

    y, x, sigma, k = tweedie_symbols()
    if model == "gaussian":
        return (y - x) ** 2 / (2 * sigma**2) + sympy.log(sigma) + sympy.log(2 * sympy.pi) / 2
    if model == "poisson":
        return x - y * sympy.log(x) + sympy.loggamma(y + 1)
    if model == "gamma":
        return k * y / x + k * sympy.log(x) - k * sympy.log(k) - (k - 1) * sympy.log(y) + sympy.loggamma(k)
    raise ValueError(f"model must be one of {sorted(NOISE_MODELS)}, got {model!r}")


def named_divergence(beta):
    """``D_beta(y | x)`` in closed form: eq 29 (sign corrected) for a general ``beta``, its
    limits at ``beta = 1`` (I-divergence) and ``beta = 0`` (Itakura-Saito). Lesson 09."""
    import sympy

    y, x, _, _ = tweedie_symbols()
    beta = sympy.nsimplify(beta)
    if beta == 1:
        return y * sympy.log(y / x) - y + x
    if beta == 0:
        return y / x - sympy.log(y / x) - 1
    return y**beta / (beta * (beta - 1)) + x**beta / beta - y * x ** (beta - 1) / (beta - 1)


def _as_sympy(answer, what: str):
    """A learner's answer (sympy object, number or string) as a sympy expression over the
    lesson's symbols, matched by NAME (a plain ``sympy.symbols("x y")`` is accepted)."""
    import sympy

    lookup = {str(s): s for s in tweedie_symbols()}
    lookup["beta"] = sympy.Symbol("beta", real=True)
    given = type(answer).__name__
    if isinstance(answer, str):
        text = answer.strip()
        shown = repr(text if len(text) <= 80 else text[:77] + "...")
        names = set(re.findall(r"[A-Za-z_]\w*", text))
        if not text or not _SAFE_TEXT.match(text) or "__" in text or re.search(r"\.\s*[A-Za-z_]", text) \
                or names - _ALLOWED_NAMES:
            unknown = sorted(names - _ALLOWED_NAMES)
            raise AssertionError(f"{what}: the string {shown} cannot be read"
                                 + (f" (unknown name(s) {unknown}; use {sorted(_ALLOWED_NAMES)})" if unknown else ""))
        namespace = {name: getattr(sympy, name) for name in _ALLOWED_NAMES - set(lookup) if hasattr(sympy, name)}
        namespace.update(lookup)
        try:
            answer = sympy.sympify(text.replace("^", "**"), locals=namespace)
        except Exception:  # noqa: BLE001  (any parse error of learner text)
            raise AssertionError(f"{what}: the string {shown} could not be parsed as a sympy expression; "
                                 "check brackets and operators (* for products, ** for powers)") from None
    elif not isinstance(answer, sympy.Basic):
        if answer is None or isinstance(answer, bool):
            raise AssertionError(f"{what} must be a sympy expression, got {given}")
        try:
            answer = sympy.sympify(answer, strict=True)
        except Exception:  # noqa: BLE001
            raise AssertionError(f"{what} must be a sympy expression, got {given}") from None
    if not isinstance(answer, sympy.Expr):
        raise AssertionError(f"{what} must be one sympy expression, got {given}")
    unknown = sorted(str(s) for s in answer.free_symbols if str(s) not in lookup)
    if unknown:
        raise AssertionError(f"{what} uses the symbol(s) {unknown}; use only y, x, sigma, k")
    answer = answer.xreplace({s: lookup[str(s)] for s in answer.free_symbols})
    if answer.has(sympy.Limit, sympy.Derivative, sympy.Integral):
        raise AssertionError(f"{what} still holds an unevaluated limit, derivative or integral; call .doit()")
    return answer


def as_tweedie(answer, what: str = "your answer"):
    """A learner's answer (sympy expression, number or string) as a sympy expression in the
    symbols of :func:`tweedie_symbols`, matched by name; strings are parsed with only the
    lesson's names bound. Raises an AssertionError saying what is wrong. Lesson 09."""
    return _as_sympy(answer, what)


def check_equivalent(answer, reference, *, what: str, points: int = 6, seed: int = 0) -> None:
    """Raise an AssertionError unless ``answer`` and ``reference`` are the same function of the
    lesson's symbols (compared by name): sympy simplifies their difference to 0, or they agree to
    1e-9 (relative) at ``points`` random positive points (``log(factorial(y))`` and
    ``loggamma(y + 1)`` are equal, whichever sympy can prove). The message says whether they differ by a
    constant, by a term free of ``x``, or as functions of ``x``; it never shows the reference.
    Lesson 09."""
    import sympy

    answer = _as_sympy(answer, what)
    reference = _as_sympy(reference, "the reference")
    difference = answer - reference
    try:
        if sympy.simplify(sympy.expand_log(difference, force=True)) == 0:
            return
    except Exception:  # noqa: BLE001  (simplify can fail on odd input; the numbers decide)
        pass
    symbols = sorted(answer.free_symbols | reference.free_symbols, key=str)
    rng = np.random.default_rng(seed)

    def values_of(expr, samples):
        out = []
        for sample in samples:
            try:
                value = complex(sympy.N(expr.subs(sample), 30))
            except Exception:  # noqa: BLE001
                return None
            out.append(value)
        return np.array(out)

    samples = [{s: sympy.Float(rng.uniform(0.3, 3.0), 30) for s in symbols} for _ in range(points)]
    got, want = values_of(answer, samples), values_of(reference, samples)
    if got is not None and want is not None and np.all(np.isfinite(got)) and \
            np.allclose(got, want, rtol=1e-9, atol=1e-12):
        return
    diff = values_of(difference, samples)
    x = sympy.Symbol("x", positive=True)
    # Does the difference change with x (the others held)? Then it is a different function of x.
    moved = [{**s, x: s.get(x, sympy.Float(1.0)) * 1.7} for s in samples]
    diff_moved = values_of(difference, moved)
    if diff is not None and diff_moved is not None and np.allclose(diff, diff_moved, rtol=1e-9, atol=1e-12):
        if np.allclose(diff, diff[0], rtol=1e-9, atol=1e-12):
            hint = "it differs by a constant"
        else:
            hint = "it differs by a term that does not depend on the model output x"
    else:
        hint = "it is a different function of the model output x"
    raise AssertionError(f"{what} is not equivalent to the correct expression: {hint}")


# --- reading a sweep -----------------------------------------------------------------------
def best_beta(rows, decoder, protocol="thesis") -> dict:
    """Reference: ``{"beta", "mean", "std", "n"}`` of the row of ``decoder`` with the highest
    ``<protocol>_ssim_mean`` (the first such row on ties). Lesson 09."""
    mean, std = f"{protocol}_ssim_mean", f"{protocol}_ssim_std"
    mine = [r for r in rows if r["decoder"] == decoder and not math.isnan(float(r[mean]))]
    if not mine:
        raise ValueError(f"no rows for decoder {decoder!r}")
    top = max(mine, key=lambda r: float(r[mean]))
    return {"beta": float(top["beta"]), "mean": float(top[mean]), "std": float(top[std]), "n": int(top["n_seeds"])}


def indistinguishable(rows, decoder, protocol="thesis", best=best_beta, z: float = 2.0) -> list:
    """Reference: the sorted betas of ``decoder`` whose mean lies within ``z`` standard errors
    of the best one's: ``|m_best - m_b| <= z * sqrt(s_best^2 / n_best + s_b^2 / n_b)``
    (the best itself included). Lesson 09."""
    top = best(rows, decoder, protocol)
    mean, std = f"{protocol}_ssim_mean", f"{protocol}_ssim_std"
    se_best = float(top["std"]) ** 2 / int(top["n"])
    out = []
    for r in rows:
        if r["decoder"] != decoder:
            continue
        se = math.sqrt(se_best + float(r[std]) ** 2 / int(r["n_seeds"]))
        if abs(float(top["mean"]) - float(r[mean])) <= z * se + 1e-12:
            out.append(float(r["beta"]))
    return sorted(out)


def synthetic_sweep_rows(seed: int = 0, betas=None, decoders=("relu", "sigmoid"), n_seeds: int = 5) -> list[dict]:
    """Made-up rows in the format of :func:`idivkit.lessons.sweep_table` (random means and
    spreads), for tests that must not depend on the committed sweep. Lesson 09."""
    rng = np.random.default_rng(seed)
    betas = np.arange(0.0, 2.01, 0.25) if betas is None else betas
    rows = []
    for d in decoders:
        for b in betas:
            row = {"decoder": d, "beta": float(b), "optimizer": "adam", "n_seeds": n_seeds,
                   "seeds": list(range(n_seeds)), "final_val_loss_mean": float(rng.uniform(0.01, 1))}
            for protocol in ("thesis", "honest"):
                row[f"{protocol}_ssim_mean"] = float(rng.uniform(0.5, 0.9))
                row[f"{protocol}_ssim_std"] = float(rng.uniform(0.002, 0.03))
            rows.append(row)
    return rows
