"""The loss of the autoencoder: its value and ``dE/dx_hat``, both from :mod:`idivkit.losses`.

Names from :mod:`idivkit.names`, read as the thesis's derivation reads them
(:func:`idivkit.names.derivation_loss`): "mse" is eq 30's half squared error (also
"half_se"), "i1" is E_I1 (eq 33), "i2" is E_I2 (eq 34); or any number beta for the
beta-divergence ``D_beta(x | x_hat)``. Reductions: "sum" (eqs 77-78), "mean" (sum / (N*D),
what Keras reports) and "batch_mean" (sum / N, eq 22).

Used in lesson 04.
"""

from __future__ import annotations

import numpy as np

from .. import losses
from .._numerics import check_beta, reduce
from ..names import THESIS_LOSSES, LossSpec, derivation_loss

#: The thesis's three losses; any name of :data:`idivkit.names.LOSSES` works too.
LOSSES = THESIS_LOSSES
REDUCTIONS = ("sum", "mean", "batch_mean")


def _check_loss(loss) -> LossSpec:
    if isinstance(loss, str):
        try:
            return derivation_loss(loss)
        except ValueError:
            raise ValueError(f"loss must be one of {LOSSES} or a number (beta), got {loss!r}") from None
    if isinstance(loss, bool) or not isinstance(loss, (int, float, np.integer, np.floating)):
        raise ValueError(f"loss must be one of {LOSSES} or a number (beta), got {loss!r}")
    beta = check_beta(loss)
    return LossSpec(f"beta={beta:g}", beta)


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
    scale = reduction_scale(reduction, np.shape(x))
    return float(reduce(pixel_losses(x, x_hat, loss, clip=clip), "sum")) * scale


def pixel_losses(x, x_hat, loss, clip=False) -> np.ndarray:
    """The loss of each pixel, shape of ``x`` (see :func:`loss_value` for ``loss``)."""
    spec = _check_loss(loss)
    if spec.name == "half_se":  # never clipped, as in the original code
        values = losses.squared_error(x, x_hat, reduction="none")
    elif spec.swapped:
        values = losses.reverse_i_divergence(x, x_hat, reduction="none", clip=clip)
    else:
        values = losses.beta_divergence(x, x_hat, spec.beta, reduction="none", clip=clip)
    return values * spec.scale if spec.scale != 1.0 else values


def loss_grad(x, x_hat, loss, clip=False):
    """Elementwise ``dE/dx_hat`` of the summed loss (see :func:`loss_value` for ``loss``)."""
    spec = _check_loss(loss)
    if spec.name == "half_se":
        grad = losses.beta_divergence_grad(x, x_hat, 2.0)  # x_hat - x
    elif spec.swapped:
        grad = losses.reverse_i_divergence_grad(x, x_hat, clip=clip)  # log(x_hat / x)
    else:
        grad = losses.beta_divergence_grad(x, x_hat, spec.beta, clip=clip)  # x_hat^(b-2)(x_hat - x)
    return grad * spec.scale if spec.scale != 1.0 else grad
