"""Lesson 04 (backprop by hand): finite-difference checks of a learner's output deltas, code
deltas and gradients, with messages that say which pair, which layer and what is wrong (sign,
constant factor, inactive ReLU units) without showing the expected values.
"""

from __future__ import annotations

import numpy as np

from ..grading import numeric_array
from .steps import call_step


def activation(decoder):
    """The reference :class:`idivkit.backprop.Activation` named ``decoder`` ("relu" or
    "sigmoid"), or ``decoder`` itself if it already is one."""
    from ..backprop.layers import get_activation

    return get_activation(decoder)  # a ValueError naming ``decoder`` if it is neither


def finite_difference_delta3(x, u_tilde, loss, decoder, eps=1e-6):
    """``dE/du~`` by central differences of the per-pixel loss (each pixel's loss depends on
    its own ``u~_d`` only, so all entries are perturbed at once). NaN where the loss is
    infinite on either side (a dead ReLU output under E_I2). Lesson 04."""
    from ..backprop.objective import pixel_losses

    act = activation(decoder)
    x = np.asarray(x, dtype=np.float64)
    u_tilde = np.asarray(u_tilde, dtype=np.float64)

    def per_pixel(u):
        return pixel_losses(x, act.forward(u), loss)

    with np.errstate(invalid="ignore"):
        return (per_pixel(u_tilde + eps) - per_pixel(u_tilde - eps)) / (2 * eps)


def check_gradient(actual, expected, *, what: str, versus: str = "the finite-difference gradient",
                   tolerance: float = 1e-6, sign_hint: str = "", hint: str = "", inactive=None) -> None:
    """Raise an AssertionError saying what is wrong with a learner's gradient ``actual``.

    ``expected`` (finite differences or the reference) is never shown; the message gives
    the max-norm relative error (:func:`idivkit.backprop.relative_error`) and a hint: sign
    flipped (``sign_hint`` appended), off by a constant factor, or wrong only where the ReLU
    units in the boolean mask ``inactive`` pass no gradient; else the general ``hint``. Lesson 04.
    """
    from ..backprop import relative_error

    e = np.asarray(expected, dtype=np.float64)
    a = _as_gradient(actual, what, e.shape)
    if not np.all(np.isfinite(a)):
        bad = ~np.isfinite(a)
        kind = "NaN" if np.all(np.isnan(a[bad])) else "infinite" if not np.any(np.isnan(a[bad])) else "NaN or infinite"
        where = ""
        if inactive is not None and np.shape(inactive) == a.shape and np.all(np.asarray(inactive)[bad]):
            where = (", all where the ReLU unit is inactive (u <= 0): there the loss's derivative is "
                     "infinite and the slope 0, and 0 x inf is NaN; an inactive unit passes no gradient, "
                     "so return 0 there without multiplying")
        raise AssertionError(f"{what} is {kind} at {int(np.sum(bad))} of {a.size} entries{where}")
    error = relative_error(a, e)
    if error <= tolerance:
        return
    message = f"{what}: max relative error {error:.1e} vs {versus} (tolerance {tolerance:.0e})"
    diagnosis = _diagnose(a, e, tolerance, sign_hint, inactive)
    raise AssertionError(message + (diagnosis or (f"; {hint}" if hint else "")))


def _as_gradient(actual, what: str, shape: tuple) -> np.ndarray:
    """``actual`` as a float64 array of ``shape``, else an AssertionError saying what is
    wrong (None, not numeric, shape) and what is expected -- never expected values."""
    if actual is None:
        raise AssertionError(f"{what} is None: did you forget to `return` it?")
    a = numeric_array(actual, what, f"a float array of shape {shape}").astype(np.float64)
    if a.shape != shape:
        raise AssertionError(f"{what} has shape {a.shape} but shape {shape} is expected")
    return a


def _diagnose(a, e, tolerance, sign_hint, inactive) -> str:
    """A specific reason for a mismatch, or "" when none of the usual ones fits."""
    from ..backprop import relative_error

    message = ""
    if relative_error(-a, e) <= tolerance:
        message += "; the sign is flipped" + (f": {sign_hint}" if sign_hint else "")
    elif np.any(a) and np.any(e):
        factor = float(np.sum(a * e) / np.sum(e * e))
        if relative_error(a, factor * e) <= tolerance:
            message += f"; it is off by a constant factor of about {factor:.3g} (a reduction? a 1/2?)"
        elif inactive is not None and np.any(inactive):
            bad = ~np.isclose(a, e, rtol=1e-4, atol=1e-6 * np.max(np.abs(e)))
            if not np.any(bad):  # only small deviations: no entry stands out, so no diagnosis
                pass
            elif np.all(inactive[bad]):
                message += "; wrong only where ReLU units are inactive (u <= 0): there the derivative is 0 (eq 35)"
            elif not np.any(inactive[bad]):
                message += "; wrong where ReLU units are active (u > 0)"
    return message


def make_network(D: int = 20, J: int = 5, N: int = 4, seed: int = 0, decoder: str = "relu"):
    """A small test problem ``(params, x)``: Keras-like initial parameters and data in
    ``[0.05, 0.95]`` (no zero pixels, so every loss is finite). For the ReLU decoder the output
    bias is 1, so every output unit is active and E_I2 stays finite. Lesson 04."""
    from ..backprop import init_params

    params = init_params(D, J, seed=seed)
    if decoder == "relu":
        params["b_tilde"] += 1.0
    x = np.random.default_rng(seed + 1000).uniform(0.05, 0.95, size=(N, D))
    return params, x


def sampled_finite_differences(fn, params: dict, n_per_array: int = 40, seed: int = 0, eps=1e-6):
    """Central differences of the scalar ``fn(params)`` at ``n_per_array`` random entries of
    each parameter array (a full check of a 784-32-784 network would take minutes).
    Returns ``{name: (flat_indices, values)}``. ``params`` is restored. Lesson 04."""
    from ..backprop.gradcheck import central_difference

    rng = np.random.default_rng(seed)
    out = {}
    for name, array in params.items():
        if not (isinstance(array, np.ndarray) and array.dtype == np.float64 and array.flags.c_contiguous):
            raise ValueError(f"params[{name!r}] must be a C-contiguous float64 array (it is perturbed in place)")
        flat = array.reshape(-1)  # a view: writes reach params
        idx = rng.choice(flat.size, size=min(n_per_array, flat.size), replace=False)
        values = np.empty(idx.size)
        for k, i in enumerate(idx):
            values[k] = central_difference(fn, params, flat, i, eps)
        out[name] = (idx, values)
    return out


def _hint(loss, decoder) -> str:
    """What to look at when a delta or gradient of the pair (loss, decoder) is wrong."""
    if decoder == "sigmoid":
        return "check your sigmoid (increasing, 1/(1+exp(-u))) and its derivative sigma (1 - sigma)"
    return f"check dE/dx_hat for {loss!r} and that delta3 is 0 where u~ <= 0"


def _layer_hint(name, loss, decoder) -> str:
    """Hint for a wrong gradient of one layer; the decoder's layer is checked first."""
    if name in ("W", "b"):
        return ("the decoder's gradients are right, so check delta2 (eqs 46-49) and "
                "dE/dW = delta2^T x, dE/db = sum of delta2 over the batch (eqs 50, 77)")
    return _hint(loss, decoder) + "; dE/dW_tilde = delta3^T y (eqs 51, 78)"


SIGMOID_SIGN_HINT = ("check the sign of the sigmoid derivative: eq 28 prints 1/(1+exp(u)), the standard sigmoid "
                     "is 1/(1+exp(-u)) with derivative sigma (1 - sigma) > 0")
_LAYER_NAMES = {"W": "W (encoder weights, eq 50)", "b": "b (encoder bias)",
                "W_tilde": "W_tilde (decoder weights, eq 51)", "b_tilde": "b_tilde (decoder bias)"}


def _gradient_dict(mine) -> dict:
    """``mine`` if it is a dict with exactly the four layer keys, else an AssertionError
    listing the keys expected and the keys (or the type) given."""
    if not isinstance(mine, dict) or set(mine) != set(_LAYER_NAMES):
        got = sorted(mine, key=str) if isinstance(mine, dict) else type(mine).__name__
        raise AssertionError(f"gradients must return a dict with keys {sorted(_LAYER_NAMES)}, got {got}")
    return mine


def _objective(loss, decoder, reduction="sum"):
    """``E(params, x)`` of the reference network, for finite differences."""
    from ..backprop import forward, loss_value

    return lambda params, x: loss_value(x, forward(params, x, decoder)["x_hat"], loss, reduction=reduction)


def check_output_delta(output_delta_fn, loss, decoder, *, N=4, D=20, seed=0, tolerance=1e-5, steps=None):
    """Check a learner's ``output_delta_fn(x, u_tilde, loss, decoder, **steps)`` against
    central differences of the per-pixel loss (eq 42); where a dead ReLU output makes the loss
    infinite, against 0 (eq 35). ``steps`` (e.g. :func:`reference_steps`) replaces the earlier
    steps the function builds on. Raises an AssertionError naming the pair. Lesson 04."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.95, size=(N, D))
    u_tilde = rng.normal(0.0, 1.5, size=(N, D))
    u_tilde[np.abs(u_tilde) < 0.01] = 0.5  # finite differences need distance from the kink
    numerical = finite_difference_delta3(x, u_tilde, loss, decoder)
    numerical[~np.isfinite(numerical)] = 0.0  # E_I2 with x_hat = 0 on both sides: ReLU passes 0
    mine = call_step(output_delta_fn, x.copy(), u_tilde.copy(), loss, decoder, **(steps or {}),
                     what=f"output_delta(x, u_tilde, {loss!r}, {decoder!r})")
    check_gradient(mine, numerical, what=f"delta3 for ({loss}, {decoder})", tolerance=tolerance,
                   sign_hint=SIGMOID_SIGN_HINT if decoder == "sigmoid" else "delta3 = dE/du~ (eq 42)",
                   hint=_hint(loss, decoder),
                   inactive=(u_tilde <= 0) if decoder == "relu" else None)


def check_code_delta(code_delta_fn, loss, decoder, *, N=3, D=20, J=5, seed=0, tolerance=1e-5, steps=None):
    """Check a learner's ``code_delta_fn(delta3, W_tilde, u)`` (eqs 46-49) against central
    differences of the loss with respect to the code layer's total input ``u``. Lesson 04."""
    from ..backprop import forward, loss_value, numerical_gradient, output_delta

    params, x = make_network(D, J, N, seed, decoder)
    cache = forward(params, x, decoder)
    delta3 = output_delta(x, cache["x_hat"], cache["u_tilde"], loss, decoder)
    act = activation(decoder)
    u = cache["u"].copy()

    def loss_of_u(u_):
        x_hat = act.forward(np.maximum(u_, 0.0) @ params["W_tilde"].T + params["b_tilde"])
        return loss_value(x, x_hat, loss)

    numerical = numerical_gradient(loss_of_u, u)
    mine = call_step(code_delta_fn, delta3.copy(), params["W_tilde"].copy(), cache["u"].copy(), **(steps or {}),
                     what="code_delta(delta3, W_tilde, u)",
                     hint="delta3 is (N, D), W_tilde is (D, J), u is (N, J); the result is (N, J)")
    check_gradient(mine, numerical, what=f"delta2 for ({loss}, {decoder})", tolerance=tolerance,
                   sign_hint="delta2 = sum_k delta3_k W~_kj f'(u_j) (eq 46)", inactive=cache["u"] <= 0,
                   hint="delta2 sums delta3_k W~_kj over the outputs k, times f'(u_j) (eqs 46-49)")


def check_gradients(gradients_fn, loss, decoder, reduction="sum", *, N=4, D=20, J=5, seed=0,
                    tolerance=1e-5, steps=None):
    """Check a learner's ``gradients_fn(params, x, loss, decoder, reduction)`` -> dict against
    central differences of the reference loss, layer by layer (eqs 50-51, 77-78; eq 22 for
    ``reduction="batch_mean"``). Lesson 04."""
    from ..backprop import numerical_gradient

    params, x = make_network(D, J, N, seed, decoder)
    objective = _objective(loss, decoder, reduction)
    mine = _gradient_dict(call_step(gradients_fn, {k: v.copy() for k, v in params.items()}, x.copy(), loss,
                                    decoder, reduction, **(steps or {}),
                                    what=f"gradients(params, x, {loss!r}, {decoder!r}, {reduction!r})"))
    for name in ("W_tilde", "b_tilde", "W", "b"):
        numerical = numerical_gradient(lambda _: objective(params, x), params[name])
        check_gradient(mine[name], numerical, tolerance=tolerance,
                       what=f"dE/d{_LAYER_NAMES[name]} for ({loss}, {decoder}), reduction={reduction!r}",
                       sign_hint=SIGMOID_SIGN_HINT if decoder == "sigmoid" else "",
                       hint=_layer_hint(name, loss, decoder))


def check_gradients_sampled(gradients_fn, params, x, loss, decoder, *, n_per_array=30, seed=0,
                            tolerance=1e-5, steps=None):
    """Like :func:`check_gradients` on given (e.g. MNIST-sized) ``params`` and ``x``, at
    ``n_per_array`` random entries of each parameter array. Returns the largest relative
    error. Lesson 04."""
    from ..backprop import relative_error

    objective = _objective(loss, decoder)
    mine = _gradient_dict(call_step(gradients_fn, {k: v.copy() for k, v in params.items()}, x.copy(), loss,
                                    decoder, "sum", **(steps or {}),
                                    what=f"gradients(params, x, {loss!r}, {decoder!r}, 'sum')"))
    worst = 0.0
    sampled = sampled_finite_differences(lambda p: objective(p, x), params, n_per_array, seed)
    for name in ("W_tilde", "b_tilde", "W", "b"):  # decoder first: its error explains the encoder's
        idx, numerical = sampled[name]
        what = f"dE/d{_LAYER_NAMES[name]} for ({loss}, {decoder}) on MNIST"
        at_samples = _as_gradient(mine[name], what, params[name].shape).reshape(-1)[idx]
        check_gradient(at_samples, numerical, tolerance=tolerance, what=f"{what} ({idx.size} sampled entries)",
                       sign_hint=SIGMOID_SIGN_HINT if decoder == "sigmoid" else "",
                       hint=_layer_hint(name, loss, decoder))
        worst = max(worst, relative_error(at_samples, numerical))
    return worst


_LOSS_HINTS = {
    "mse": "E = sum (x_hat - x)^2 / 2 (eq 30): the 1/2 cancels the 2 of the square",
    "half_se": "E = sum (x_hat - x)^2 / 2 (eq 30): the 1/2 cancels the 2 of the square",
    "i1": ("E_I1 = D_I(x_hat | x) has the model output in the DATA slot (eq 33): differentiate "
           "D_beta(y | x) with respect to its first argument y, then let beta -> 1"),
    "i2": "E_I2 = D_I(x | x_hat) (eq 34): lesson 02's dD/dx at beta = 1, with x the model output",
}


def check_loss_derivative(loss_derivative_fn, loss, *, N=4, D=20, seed=0, tolerance=1e-6) -> None:
    """Check a learner's ``loss_derivative_fn(x, x_hat, loss)`` (dE/dx_hat of the summed loss,
    elementwise) against central differences of the reference per-pixel loss, on data and
    outputs in ``(0, 1)``. The message names the loss, diagnoses a flipped sign or a constant
    factor (the 1/2 of eq 30), recognises the other I-divergence's derivative (the argument
    order), and never shows expected values. Lesson 04."""
    from ..backprop.objective import loss_grad, pixel_losses

    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.95, size=(N, D))
    x_hat = rng.uniform(0.05, 0.95, size=(N, D))
    eps = 1e-6
    numerical = (pixel_losses(x, x_hat + eps, loss) - pixel_losses(x, x_hat - eps, loss)) / (2 * eps)
    what = f"loss_derivative(x, x_hat, {loss!r})"
    mine = call_step(loss_derivative_fn, x.copy(), x_hat.copy(), loss, what=what)
    a = _as_gradient(mine, what, x.shape)
    other = {"i1": "i2", "i2": "i1"}.get(loss)
    if other is not None and np.all(np.isfinite(a)):
        from ..backprop import relative_error

        if relative_error(a, loss_grad(x, x_hat, other)) <= tolerance:
            raise AssertionError(f"{what} is the derivative of the other argument order ({other!r}); "
                                 + _LOSS_HINTS[loss])
    check_gradient(a, numerical, what=what, versus="finite differences of the loss", tolerance=tolerance,
                   sign_hint="dE/dx_hat is positive where the output is too large", hint=_LOSS_HINTS[loss])
