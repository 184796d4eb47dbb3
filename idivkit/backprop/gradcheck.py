"""Gradient checking: compare gradients with float64 central finite differences.

Relative error, as used throughout (one number per parameter array)::

    relative_error(a, b) = max_i |a_i - b_i| / max(max_i |a_i| + max_i |b_i|, tiny)

the largest absolute difference relative to the largest entries (a max-norm relative error,
between 0 and 1; ``tiny`` is the smallest positive float64, so two zero arrays give 0). Unlike
an entrywise ratio, it is not fooled by entries that are zero up to rounding (dead ReLU
units), yet a single wrong entry as large as the gradient's largest shows up in full.

Used in lesson 04.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .layers import get_activation
from .network import PARAM_SHAPES, check_inputs, forward, gradients
from .objective import loss_value


def relative_error(a, b) -> float:
    """Max-norm relative error between two arrays of one shape (see the module docstring)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a has shape {a.shape} but b has shape {b.shape}; they must match")
    if a.size == 0:
        return 0.0
    diff = np.max(np.abs(a - b))
    scale = np.max(np.abs(a)) + np.max(np.abs(b))
    if not np.isfinite(diff):  # inf or NaN on either side: as wrong as can be
        return float("inf")
    return float(diff / max(scale, np.finfo(np.float64).tiny))


def numerical_gradient(fn, array, eps=1e-6) -> np.ndarray:
    """Central finite differences ``(fn(a + eps e_i) - fn(a - eps e_i)) / (2 eps)`` in float64.

    ``fn`` is any scalar function of ``array``; ``array`` is perturbed in place, one entry at
    a time, and restored (so ``fn`` may read it through a closure). Returns an array shaped
    like ``array``. Cost: two calls of ``fn`` per entry; truncation error O(eps^2), rounding
    error about 1e-16 |fn| / eps. Used in lesson 04.
    """
    if not (isinstance(array, np.ndarray) and array.dtype == np.float64):
        raise ValueError("array must be a float64 numpy array (it is perturbed in place)")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    grad = np.empty_like(array)
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)  # views: writes reach `array`
    for i in range(flat.size):
        grad_flat[i] = central_difference(fn, array, flat, i, eps)
    return grad


def central_difference(fn, argument, flat, i: int, eps: float) -> float:
    """``(fn(argument) at flat[i] + eps  -  fn(argument) at flat[i] - eps) / (2 eps)``, where
    ``flat`` is a flat view into ``argument`` (or into an array it holds); ``flat[i]`` is
    restored afterwards."""
    original = flat[i]
    flat[i] = original + eps
    f_plus = float(fn(argument))
    flat[i] = original - eps
    f_minus = float(fn(argument))
    flat[i] = original
    return (f_plus - f_minus) / (2.0 * eps)


@dataclass(frozen=True)
class GradientReport:
    """Per-parameter relative errors of an analytic gradient against finite differences."""

    errors: dict
    tolerance: float = 1e-6
    label: str = ""
    analytic: dict = field(default_factory=dict, repr=False)
    numerical: dict = field(default_factory=dict, repr=False)

    @property
    def max_relative_error(self) -> float:
        return max(self.errors.values())

    @property
    def ok(self) -> bool:
        return self.max_relative_error <= self.tolerance

    def __str__(self) -> str:
        lines = [f"gradient check {self.label}".rstrip() + f" (tolerance {self.tolerance:.0e})"]
        for name, err in self.errors.items():
            verdict = "ok" if err <= self.tolerance else "WRONG"
            lines.append(f"  {name:<8} relative error {err:.2e}  {verdict}")
        verdict = "ok" if self.ok else "FAILED"
        lines.append(f"  => {verdict}: max relative error {self.max_relative_error:.2e}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle):  # IPython/Jupyter display
        printer.text(str(self))


def gradient_check(params, x, loss="mse", decoder="relu", reduction="sum", clip=False,
                   eps=1e-6, tolerance=1e-6, gradient_fn=gradients) -> GradientReport:
    """Check ``gradient_fn`` (default :func:`gradients`) against central finite differences
    of :func:`loss_value` applied to :func:`forward`, in float64.

    ``gradient_fn(params, x, loss, decoder, reduction=..., clip=...)`` must return
    ``(loss_value, grads)`` like :func:`gradients`: pass your own to check it. ``decoder`` may
    be an :class:`Activation`, whose ``forward`` defines the function differentiated
    numerically and whose ``backward`` is used by :func:`gradients`. Keep networks small (two
    forward passes per parameter entry). Example (lesson 04)::

        report = gradient_check(params, x, loss="i2", decoder="sigmoid")
        print(report); assert report.ok
    """
    params, x = check_inputs(params, x)
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}  # private copies
    x = x.astype(np.float64)
    activation = get_activation(decoder)
    _, analytic = gradient_fn(params, x, loss, decoder, reduction=reduction, clip=clip)

    def objective(_):
        x_hat = forward(params, x, activation)["x_hat"]
        return loss_value(x, x_hat, loss, reduction=reduction, clip=clip)

    numerical = {k: numerical_gradient(objective, params[k], eps=eps) for k in PARAM_SHAPES}
    errors = {k: relative_error(analytic[k], numerical[k]) for k in PARAM_SHAPES}
    label = f"loss={loss!r}, decoder={activation.name!r}, reduction={reduction!r}"
    return GradientReport(errors, tolerance, label, analytic, numerical)
