"""The thesis's autoencoder 784-J-784, forward and backward by hand (sections 1.3 and 2.4).

Data first, model output second, as in :mod:`idivkit.losses`. A minibatch ``x`` has shape
``(N, D)``; parameters are a dict ``{"W": (J, D), "b": (J,), "W_tilde": (D, J),
"b_tilde": (D,)}``. :func:`forward` returns every intermediate value in a dict (no hidden
state); :func:`gradients` walks the same steps backwards (see :mod:`.layers`).

Loss VALUES and the derivatives ``dE/dx_hat`` come from :mod:`idivkit.losses`; this module
only chains them through the network (eqs 42-78); see :mod:`.objective`.

Infinite losses: E_I1 ("i1") is ``+inf`` as soon as a pixel has ``x = 0 < x_hat``, and E_I2
("i2") when ``x > 0 = x_hat``. Then the loss is ``+inf``, gradient entries are infinite (or
NaN where infinities of both signs meet in a sum), and a RuntimeWarning says so.
``clip=True`` reproduces the original code, which clipped both arguments to ``[1e-7, 1]``
(the clipped loss passes no gradient where ``x_hat`` is outside that range).

Used in lesson 04.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from .._numerics import as_float_array
from .layers import Activation, get_activation, dense_backward, dense_forward, relu_backward, relu_forward
from .objective import reduction_scale, loss_grad, loss_value

PARAM_SHAPES = {"W": ("J", "D"), "b": ("J",), "W_tilde": ("D", "J"), "b_tilde": ("D",)}


# --- Parameters and input checks ---------------------------------------------------------


def init_params(D=784, J=32, seed=0, dtype=np.float64):
    """Parameters as Keras initialises ``Dense`` layers: Glorot-uniform kernels (uniform on
    ``[-a, a]`` with ``a = sqrt(6 / (fan_in + fan_out))``) and zero biases. Seeded."""
    rng = np.random.default_rng(seed)
    limit = np.sqrt(6.0 / (D + J))  # the same for both layers: fan_in + fan_out = D + J
    return {
        "W": rng.uniform(-limit, limit, size=(J, D)).astype(dtype),
        "b": np.zeros(J, dtype=dtype),
        "W_tilde": rng.uniform(-limit, limit, size=(D, J)).astype(dtype),
        "b_tilde": np.zeros(D, dtype=dtype),
    }


def check_inputs(params, x):
    """Validate ``params`` and ``x``; return float copies ``(params, x)`` in a common dtype."""
    if not hasattr(params, "keys") or set(params.keys()) != set(PARAM_SHAPES):
        got = sorted(params.keys()) if hasattr(params, "keys") else type(params).__name__
        raise ValueError(f"params must be a dict with keys {sorted(PARAM_SHAPES)}, got {got}")
    x = as_float_array(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, D), got shape {x.shape} (one sample: x[None, :])")
    arrays = {k: as_float_array(params[k], f"params[{k!r}]", nonnegative=False) for k in PARAM_SHAPES}
    sizes = {"D": x.shape[1], "J": arrays["W"].shape[0] if arrays["W"].ndim == 2 else -1}
    for key, dims in PARAM_SHAPES.items():
        expected = tuple(sizes[d] for d in dims)
        if arrays[key].shape != expected:
            raise ValueError(
                f"params[{key!r}] must have shape {dims} = {expected} for x of shape {x.shape}, "
                f"got {arrays[key].shape}"
            )
    dtype = np.result_type(x.dtype, *(a.dtype for a in arrays.values()))
    return {k: a.astype(dtype, copy=False) for k, a in arrays.items()}, x.astype(dtype, copy=False)


# --- The network: forward pass, output delta, backward pass -----------------------------


def forward(params, x, decoder="relu"):
    """Forward propagation (Step 1, eqs 38-40). Returns a dict with ``x`` (N, D), ``u``
    (N, J), ``y`` (N, J), ``u_tilde`` (N, D) and ``x_hat`` (N, D)."""
    decoder = get_activation(decoder)
    params, x = check_inputs(params, x)
    return _forward(params, x, decoder)


def _forward(params, x, decoder: Activation):
    u = dense_forward(x, params["W"], params["b"])  # eq 11
    y = relu_forward(u)  # eqs 12, 27
    u_tilde = dense_forward(y, params["W_tilde"], params["b_tilde"])  # eq 13
    x_hat = decoder.forward(u_tilde)  # eq 14 with eq 27 (ReLU) or eq 28 (sigmoid)
    return {"x": x, "u": u, "y": y, "u_tilde": u_tilde, "x_hat": x_hat}


def output_delta(x, x_hat, u_tilde, loss, decoder="relu", clip=False):
    """Output deltas ``delta3_d = dE/du~_d`` (eq 42) of the summed loss (Step 2).

    ``dE/dx_hat`` (from :func:`loss_grad`) times the decoder's derivative: eqs 44-45 (E_I1,
    ReLU), 57-58 (E_I2, ReLU), 65 (E_I1, sigmoid), 71 (E_I2, sigmoid). E.g. E_I2 with the
    sigmoid gives ``(1 - x_hat)(x_hat - x)``; ReLU units with ``u~ <= 0`` get 0.
    """
    decoder = get_activation(decoder)
    return decoder.backward(u_tilde, x_hat, loss_grad(x, x_hat, loss, clip=clip))


def gradients(params, x, loss, decoder="relu", reduction="sum", clip=False):
    """Loss and its gradients by backpropagation by hand (thesis section 2.4, Steps 1-5).

    Parameters
    ----------
    params : dict
        ``W`` (J, D), ``b`` (J,), ``W_tilde`` (D, J), ``b_tilde`` (D,).
    x : array_like, shape (N, D)
        A minibatch of data, nonnegative (pixels in [0, 1]).
    loss : {"mse", "i1", "i2"} or float
        See :func:`loss_value`; a number is beta of ``D_beta(x | x_hat)``.
    decoder : {"relu", "sigmoid"} or Activation
    reduction : {"sum", "mean", "batch_mean"}
        "sum" (eqs 77-78), "mean" = sum / (N*D) (Keras), "batch_mean" = sum / N (eq 22).
    clip : bool
        Clip both loss arguments to ``[1e-7, 1]`` as the original code did (not for "mse").

    Returns
    -------
    (float, dict)
        The loss (same reduction) and a dict of gradients shaped like ``params``.
    """
    params, x = check_inputs(params, x)
    cache = _forward(params, x, get_activation(decoder))
    scale = reduction_scale(reduction, x.shape)
    value = loss_value(x, cache["x_hat"], loss, reduction=reduction, clip=clip)
    finite = bool(np.isfinite(value))
    if not finite:
        warnings.warn(
            f"loss {loss!r} is infinite for this minibatch (e.g. E_I1 where x = 0, E_I2 where "
            "x_hat = 0 < x); its gradients are infinite or NaN. Pass clip=True to clip both "
            "arguments to [1e-7, 1] as the original code did.",
            RuntimeWarning,
            stacklevel=2,
        )
    # inf - inf makes NaN in the sums of eqs 46 and 77-78: already warned about above.
    with np.errstate(invalid="ignore") if not finite else contextlib.nullcontext():
        return value, _backward(params, x, cache, loss, decoder, scale, clip)


def _backward(params, x, cache, loss, decoder, scale, clip):
    """Steps 2-5 of section 2.4, each the backward step of one forward step of :func:`_forward`."""
    # Step 2, back through eq 14 (x_hat = f~(u~)): output deltas delta3 = dE/du~ (eq 42);
    # eqs 43-45 and 56-58 (ReLU decoder), 65 and 71 (sigmoid), scaled for the reduction.
    delta3 = scale * output_delta(x, cache["x_hat"], cache["u_tilde"], loss, decoder, clip=clip)
    # Step 4, back through eq 13 (u~ = W~ y + b~): eq 51, i.e. eqs 54-55, 63-64, 70, 76,
    # summed over the minibatch (eq 78); grad_y_j = sum_k delta3_k W~_kj (the sum in eq 46).
    grad_y, grad_W_tilde, grad_b_tilde = dense_backward(cache["y"], params["W_tilde"], delta3)
    # Step 3, back through eq 12 (y = f(u)): code deltas, eqs 46-49, 59-60, 66-67, 72-73.
    delta2 = relu_backward(cache["u"], cache["y"], grad_y)
    # Step 4, back through eq 11 (u = W x + b): eq 50, i.e. eqs 52-53, 61-62, 68-69, 74-75,
    # summed over the minibatch (eq 77).
    _, grad_W, grad_b = dense_backward(x, params["W"], delta2)
    return {"W": grad_W, "b": grad_b, "W_tilde": grad_W_tilde, "b_tilde": grad_b_tilde}
