"""The loss of the autoencoder: its value and ``dE/dx_hat``, both from :mod:`idivkit.losses`.

Names as in the thesis: "mse" (eq 30, with the factor 1/2), "i1" (E_I1, eq 33) and "i2"
(E_I2, eq 34), or any number beta for the beta-divergence ``D_beta(x | x_hat)``. Reductions:
"sum" (eqs 77-78), "mean" (sum / (N*D), what Keras reports) and "batch_mean" (sum / N, eq 22).

Used in lesson 04.
"""

from __future__ import annotations

import numpy as np

from .. import losses
from .._numerics import check_beta, reduce

LOSSES = ("mse", "i1", "i2")
REDUCTIONS = ("sum", "mean", "batch_mean")


def _check_loss(loss):
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES} or a number (beta), got {loss!r}")
        return loss
    if isinstance(loss, bool) or not isinstance(loss, (int, float, np.integer, np.floating)):
        raise ValueError(f"loss must be one of {LOSSES} or a number (beta), got {loss!r}")
    return check_beta(loss)


def reduction_scale(reduction, shape) -> float:
    """Factor turning the per-minibatch sum (eqs 77-78) into the requested reduction."""
    if reduction == "sum":
        return 1.0
    if reduction == "mean":  # Keras: mean over pixels, then over samples
        return 1.0 / int(np.prod(shape))
    if reduction == "batch_mean":  # eq 22: mean over the minibatch of per-sample sums
        return 1.0 / shape[0]
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def loss_value(x, x_hat, loss, reduction="sum", clip=False):
    """Loss of reconstructions ``x_hat`` (N, D) of data ``x`` (N, D), from idivkit.losses.

    ``loss``: "mse" = ``sum 1/2 (x_hat - x)^2`` (eq 30; never clipped, as in the original
    code; pass ``loss=2.0`` for a clipped one), "i1" = E_I1 = ``D_I(x_hat | x)`` (eq 33),
    "i2" = E_I2 = ``D_I(x | x_hat)`` (eq 34), or a number beta for ``D_beta(x | x_hat)``.
    ``reduction``: "sum" (eqs 77-78), "mean" (sum / (N*D), what Keras reports; note that
    Keras's MSE has no factor 1/2, so it is twice our "mse" with "mean") or "batch_mean"
    (sum / N, eq 22). ``clip=True`` clips both arguments to ``[1e-7, 1]`` first.
    Returns a float, ``+inf`` where the loss is infinite (e.g. "i1" with a pixel ``x = 0``).
    """
    loss = _check_loss(loss)
    scale = reduction_scale(reduction, np.shape(x))
    if loss == "mse":
        values = losses.squared_error(x, x_hat, reduction="none")
    elif loss == "i1":
        values = losses.reverse_i_divergence(x, x_hat, reduction="none", clip=clip)
    elif loss == "i2":
        values = losses.i_divergence(x, x_hat, reduction="none", clip=clip)
    else:
        values = losses.beta_divergence(x, x_hat, loss, reduction="none", clip=clip)
    return float(reduce(values, "sum")) * scale


def loss_grad(x, x_hat, loss, clip=False):
    """Elementwise ``dE/dx_hat`` of the summed loss (see :func:`loss_value` for ``loss``)."""
    loss = _check_loss(loss)
    if loss == "mse":
        return losses.beta_divergence_grad(x, x_hat, 2.0)  # x_hat - x
    if loss == "i1":
        return losses.reverse_i_divergence_grad(x, x_hat, clip=clip)  # log(x_hat / x)
    beta = 1.0 if loss == "i2" else loss
    return losses.beta_divergence_grad(x, x_hat, beta, clip=clip)  # x_hat^(b-2)(x_hat - x)
