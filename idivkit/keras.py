"""Keras 3 losses of the beta-divergence family, written with ``keras.ops`` only (any backend).

Each loss returns per-sample values, the mean over the last axis (784 pixels), exactly as the
thesis's code did (``K.mean(..., axis=-1)``); Keras then averages them over the batch
(``reduction="sum_over_batch_size"``). Per sample they equal the numpy references of
:mod:`idivkit.losses` with ``reduction="none"`` averaged over the last axis.

Argument order is Keras's ``loss(y_true, y_pred)``: data first, model output second, as in
:mod:`idivkit.losses`. Small values follow the one rule of :mod:`idivkit._numerics`: exact by
default (``0 log 0 = 0``, ``+inf`` where the divergence is infinite, and gradients that are
never NaN), or ``clip=True`` to clip both arguments to ``[epsilon, 1]`` as the original code did.

Keras's own layout: each loss is a plain function (usable as a metric) and a thin registered
:class:`keras.losses.Loss` class around it; :func:`get_loss` builds one from a name of
:data:`idivkit.names.LOSSES`. Used by :mod:`idivkit.training` and ``idivkit reproduce``.

References
----------
.. [1] T. Haruguchi, "Autoencoder with New Loss Functions", eqs 29-34; the original notebook's
   ``i_divergence1``/``i_divergence2`` clipped both arguments to ``[K.epsilon(), 1]``.
.. [2] Keras 3, ``keras/src/losses/losses.py``: functions wrapped by ``LossFunctionWrapper``.
"""

from __future__ import annotations

import math

from ._numerics import CLIP_MAX, EPSILON, check_beta
from ._quiet import import_keras
from .names import LOSSES, loss_spec

keras = import_keras()
ops = keras.ops

__all__ = [
    "BetaDivergence", "IDivergence", "ReverseIDivergence", "ItakuraSaito", "SquaredError",
    "beta_divergence", "i_divergence", "reverse_i_divergence", "itakura_saito",
    "half_squared_error", "LOSS_NAMES", "get_loss",
]

_PACKAGE = "idivkit"


def _beta_positive(x, x_hat, beta: float):
    """Elementwise ``d_beta(x | x_hat)`` for strictly positive tensors (e.g. after clipping)."""
    if beta == 2.0:
        return 0.5 * ops.square(x - x_hat)  # eq 30
    log_ratio = ops.log(x) - ops.log(x_hat)  # L = log(x / x_hat)
    if beta == 1.0:
        values = x * log_ratio - x + x_hat  # eq 32
    elif beta == 0.0:
        values = x / x_hat - log_ratio - 1.0  # Itakura-Saito
    else:
        # eq 29 (sign corrected) in the form that is continuous in beta, as idivkit.losses.
        values = x * ops.power(x_hat, beta - 1.0) * ops.expm1((beta - 1.0) * log_ratio) / (
            beta - 1.0
        ) + ops.power(x, beta) * ops.expm1(-beta * log_ratio) / beta
    return ops.maximum(values, ops.zeros_like(values))


def _beta_elementwise(x, x_hat, beta: float):
    """Elementwise ``d_beta(x | x_hat)`` for nonnegative tensors, as ``idivkit.losses``.

    Entries where an argument is 0 are computed from safe stand-ins (1.0) and then replaced
    through ``ops.where``, so neither the value nor the gradient ever sees ``log 0`` or
    ``0 ** negative`` (the "double where" rule: a NaN in the unused branch would still poison
    the gradient).
    """
    if beta == 2.0:
        return 0.5 * ops.square(x - x_hat)  # eq 30
    zero = ops.zeros_like(x)
    one = ops.ones_like(x)
    data_pos, model_pos = x > 0, x_hat > 0
    both = ops.logical_and(data_pos, model_pos)
    values = _beta_positive(ops.where(both, x, one), ops.where(both, x_hat, one), beta)

    inf = ops.full_like(x, math.inf)
    # x = 0 < x_hat: x_hat^b / b for b > 0, +inf for b <= 0.
    if beta > 0:
        zero_data_value = ops.power(ops.where(model_pos, x_hat, one), beta) / beta
    else:
        zero_data_value = inf
    # x > 0 = x_hat: x^b / (b (b-1)) for b > 1, +inf for b <= 1.
    if beta > 1:
        zero_model_value = ops.power(ops.where(data_pos, x, one), beta) / (beta * (beta - 1.0))
    else:
        zero_model_value = inf
    out = ops.where(both, values, zero)
    out = ops.where(ops.logical_and(ops.logical_not(data_pos), model_pos), zero_data_value, out)
    out = ops.where(ops.logical_and(data_pos, ops.logical_not(model_pos)), zero_model_value, out)
    return out  # x = x_hat = 0 stays 0


def _prepare(y_true, y_pred, clip, epsilon):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    if clip:
        y_true = ops.clip(y_true, epsilon, CLIP_MAX)
        y_pred = ops.clip(y_pred, epsilon, CLIP_MAX)
    return y_true, y_pred


def _divergence(x, x_hat, beta, clip):
    # Clipped arguments are >= epsilon > 0: the zero cases (and their where's) cannot occur.
    values = _beta_positive(x, x_hat, beta) if clip else _beta_elementwise(x, x_hat, beta)
    return ops.mean(values, axis=-1)


def beta_divergence(y_true, y_pred, beta, clip=False, epsilon=EPSILON):
    r"""Beta-divergence ``D_beta(y_true | y_pred)``, mean over the last axis, per sample.

    .. math::

        d_\beta(x | \hat x) = \frac{x^\beta}{\beta(\beta-1)} + \frac{\hat x^\beta}{\beta}
                              - \frac{x \hat x^{\beta-1}}{\beta-1}

    (eq 29, sign corrected), with its limits at ``beta = 1`` (I-divergence, eq 32) and
    ``beta = 0`` (Itakura-Saito).

    Parameters
    ----------
    y_true, y_pred : tensor, shape (..., D)
        Data and model output, nonnegative.
    beta : float
        Any real number (a Python float: it selects the formula).
    clip : bool, default False
        Clip both arguments to ``[epsilon, 1]`` first, as the thesis's code did (the gradient
        is then 0 for outputs outside that range); False is exact.
    epsilon : float, default 1e-7
        Lower clipping bound (Keras's ``K.epsilon()``).

    Returns
    -------
    tensor, shape (...)
        Per-sample values (mean over the last axis).
    """
    y_true, y_pred = _prepare(y_true, y_pred, clip, epsilon)
    return _divergence(y_true, y_pred, float(beta), clip)


def i_divergence(y_true, y_pred, clip=False, epsilon=EPSILON):
    """The I-divergence ``x log(x / x_hat) - x + x_hat`` (E_I2, eq 34), per sample.

    :func:`beta_divergence` at ``beta = 1``; parameters and return as there.
    """
    y_true, y_pred = _prepare(y_true, y_pred, clip, epsilon)
    return _divergence(y_true, y_pred, 1.0, clip)


def reverse_i_divergence(y_true, y_pred, clip=False, epsilon=EPSILON):
    """The reversed I-divergence ``D(y_pred | y_true)`` (E_I1, eq 33), per sample.

    The model output takes the data's slot. Exact (``clip=False``) it is ``+inf`` as soon as
    an output is positive where the data is 0 (every MNIST background pixel): train it with
    ``clip=True``. Parameters and return as :func:`beta_divergence`.
    """
    y_true, y_pred = _prepare(y_true, y_pred, clip, epsilon)
    return _divergence(y_pred, y_true, 1.0, clip)


def itakura_saito(y_true, y_pred, clip=False, epsilon=EPSILON):
    """The Itakura-Saito divergence ``x / x_hat - log(x / x_hat) - 1`` (beta = 0), per sample.

    Parameters and return as :func:`beta_divergence`.
    """
    y_true, y_pred = _prepare(y_true, y_pred, clip, epsilon)
    return _divergence(y_true, y_pred, 0.0, clip)


def half_squared_error(y_true, y_pred, clip=False, epsilon=EPSILON):
    """Half the squared error ``(x - x_hat)^2 / 2`` (eq 30, beta = 2), mean over pixels.

    Keras's ``"mse"`` has no 1/2 (and the thesis's runs used it): its values are twice these.
    Parameters and return as :func:`beta_divergence`.
    """
    y_true, y_pred = _prepare(y_true, y_pred, clip, epsilon)
    return _divergence(y_true, y_pred, 2.0, clip)


class _DivergenceLoss(keras.losses.Loss):
    """A thin :class:`keras.losses.Loss` around one of the functions above (``FN``)."""

    FN = None

    def __init__(self, clip=False, epsilon=EPSILON, name=None,
                 reduction="sum_over_batch_size", dtype=None):
        self.clip = bool(clip)
        self.epsilon = float(epsilon)
        if not 0 < self.epsilon < CLIP_MAX:
            raise ValueError(f"epsilon must be in (0, {CLIP_MAX}), got {epsilon!r}")
        super().__init__(name=name or self.FN.__name__, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return type(self).FN(y_true, y_pred, clip=self.clip, epsilon=self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(clip=self.clip, epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BetaDivergence(_DivergenceLoss):
    """:func:`beta_divergence` as a Keras loss; ``beta`` any real number.

    Parameters
    ----------
    beta : float
    clip : bool, default False
    epsilon : float, default 1e-7
    name, reduction, dtype
        As :class:`keras.losses.Loss`.
    """

    def __init__(self, beta, clip=False, epsilon=EPSILON, name=None,
                 reduction="sum_over_batch_size", dtype=None):
        self.beta = check_beta(beta)
        super().__init__(clip=clip, epsilon=epsilon, name=name or f"beta_divergence_{self.beta:g}",
                         reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return beta_divergence(y_true, y_pred, self.beta, clip=self.clip, epsilon=self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IDivergence(_DivergenceLoss):
    """:func:`i_divergence` (E_I2) as a Keras loss; with ``clip=True`` the thesis's code."""

    FN = staticmethod(i_divergence)
    beta = 1.0


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReverseIDivergence(_DivergenceLoss):
    """:func:`reverse_i_divergence` (E_I1) as a Keras loss; with ``clip=True`` the thesis's code."""

    FN = staticmethod(reverse_i_divergence)
    beta = 1.0


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ItakuraSaito(_DivergenceLoss):
    """:func:`itakura_saito` as a Keras loss."""

    FN = staticmethod(itakura_saito)
    beta = 0.0


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SquaredError(_DivergenceLoss):
    """:func:`half_squared_error` (eq 30, with the 1/2) as a Keras loss."""

    FN = staticmethod(half_squared_error)
    beta = 2.0


#: Loss names understood by :func:`get_loss` (besides ``"beta=<b>"``): those of the name table.
LOSS_NAMES = tuple(LOSSES)

_CLASSES = {"i1": ReverseIDivergence, "i2": IDivergence, "is": ItakuraSaito, "half_se": SquaredError}


def get_loss(name: str, *, clip: bool = True):
    """Return the Keras loss object for a name of :data:`idivkit.names.LOSSES`.

    Parameters
    ----------
    name : str
        ``"mse"`` -- Keras's ``MeanSquaredError`` (no 1/2), what the thesis ran;
        ``"half_se"`` -- :class:`SquaredError` (eq 30, with the 1/2);
        ``"i1"`` -- :class:`ReverseIDivergence` (E_I1); ``"i2"`` -- :class:`IDivergence` (E_I2);
        ``"is"`` -- :class:`ItakuraSaito`; ``"beta=<b>"`` -- :class:`BetaDivergence` (b).
    clip : bool, default True
        For the divergences (not ``"mse"``/``"half_se"``): clip both arguments to
        ``[1e-7, 1]``, the thesis's code (needed for ``"i1"`` on MNIST, which is infinite
        exactly); False gives the exact divergence.

    Returns
    -------
    keras.losses.Loss
        Named after ``name`` (so Keras's logs use it).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    spec = loss_spec(name)
    if spec.name == "mse":
        return keras.losses.MeanSquaredError(name="mse")
    if spec.name == "half_se":
        return SquaredError(name="half_se")
    if spec.name in _CLASSES:
        return _CLASSES[spec.name](clip=clip, name=spec.name)
    safe = f"beta_{spec.beta:g}".replace(".", "_").replace("-", "m")
    return BetaDivergence(spec.beta, clip=clip, name=safe)
