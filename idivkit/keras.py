"""Keras 3 losses of the beta-divergence family, written with ``keras.ops`` only (any backend).

Each loss returns per-sample values, the mean over the last axis (784 pixels), exactly as the
thesis's code did (``K.mean(..., axis=-1)``); Keras then averages them over the batch
(``reduction="sum_over_batch_size"``). Per sample they equal the numpy references of
:mod:`idivkit.losses` with ``reduction="none"`` averaged over the last axis.

Argument order is Keras's ``loss(y_true, y_pred)``: data first, model output second, as in
:mod:`idivkit.losses`. Small values follow the one rule of :mod:`idivkit._numerics`: exact by
default (``0 log 0 = 0``, ``+inf`` where the divergence is infinite, and gradients that are
never NaN), or ``clip=True`` to clip both arguments to ``[epsilon, 1]`` as the original code did.

Used by :mod:`idivkit.trainer` and `idivkit reproduce`.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from ._numerics import CLIP_MAX, EPSILON, check_beta

__all__ = [
    "BetaDivergence",
    "IDivergence",
    "ReverseIDivergence",
    "ItakuraSaito",
    "SquaredError",
    "LOSS_NAMES",
    "get_loss",
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BetaDivergence(keras.losses.Loss):
    r"""Beta-divergence ``D_beta(y_true | y_pred)``, mean over the last axis per sample.

    .. math::

        d_\beta(x | \hat x) = \frac{x^\beta}{\beta(\beta-1)} + \frac{\hat x^\beta}{\beta}
                              - \frac{x \hat x^{\beta-1}}{\beta-1}

    (eq 29, sign corrected), with its limits at ``beta = 1`` (I-divergence, eq 32) and
    ``beta = 0`` (Itakura-Saito).

    Parameters
    ----------
    beta : float
        Any real number.
    clip : bool
        If True, clip both arguments to ``[epsilon, 1]`` first, as the thesis's code did
        (its gradient is then 0 for outputs outside that range). If False (default), exact.
    epsilon : float
        Lower clipping bound (``idivkit._numerics.EPSILON`` = 1e-7, Keras's ``K.epsilon()``).
    name, reduction, dtype
        As :class:`keras.losses.Loss`. ``call`` returns per-sample values, shape
        ``y_true.shape[:-1]``.
    """

    def __init__(self, beta, clip=False, epsilon=EPSILON, name=None,
                 reduction="sum_over_batch_size", dtype=None):
        self.beta = check_beta(beta)
        self.clip = bool(clip)
        self.epsilon = float(epsilon)
        if not 0 < self.epsilon < CLIP_MAX:
            raise ValueError(f"epsilon must be in (0, {CLIP_MAX}), got {epsilon!r}")
        super().__init__(name=name or self._default_name(), reduction=reduction, dtype=dtype)

    def _default_name(self):
        return f"beta_divergence_{self.beta:g}"

    def _prepare(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
        if self.clip:
            y_true = ops.clip(y_true, self.epsilon, CLIP_MAX)
            y_pred = ops.clip(y_pred, self.epsilon, CLIP_MAX)
        return y_true, y_pred

    def _elementwise(self, x, x_hat, beta):
        # Clipped arguments are >= epsilon > 0: the zero cases (and their where's) cannot occur.
        return _beta_positive(x, x_hat, beta) if self.clip else _beta_elementwise(x, x_hat, beta)

    def call(self, y_true, y_pred):
        y_true, y_pred = self._prepare(y_true, y_pred)
        return ops.mean(self._elementwise(y_true, y_pred, self.beta), axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(beta=self.beta, clip=self.clip, epsilon=self.epsilon)
        return config


class _FixedBeta(BetaDivergence):
    """A named member of the family: ``beta`` is fixed, so it is not in the config."""

    BETA = None

    def __init__(self, clip=False, epsilon=EPSILON, name=None,
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(self.BETA, clip=clip, epsilon=epsilon, name=name,
                         reduction=reduction, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        config.pop("beta")
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IDivergence(_FixedBeta):
    """The I-divergence ``D(y_true | y_pred) = x log(x/x_hat) - x + x_hat`` (E_I2, eq 34).

    The thesis's ``i_divergence2``; with ``clip=True`` it is that code exactly.
    """

    BETA = 1.0

    def _default_name(self):
        return "i_divergence"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReverseIDivergence(_FixedBeta):
    """The reversed I-divergence ``D(y_pred | y_true)`` (E_I1, eq 33): the output in the data slot.

    The thesis's ``i_divergence1``. Exact (``clip=False``) it is ``+inf`` as soon as an output
    is positive where the data is 0 (every MNIST background pixel): train it with ``clip=True``.
    """

    BETA = 1.0

    def _default_name(self):
        return "reverse_i_divergence"

    def call(self, y_true, y_pred):
        y_true, y_pred = self._prepare(y_true, y_pred)
        return ops.mean(self._elementwise(y_pred, y_true, self.BETA), axis=-1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ItakuraSaito(_FixedBeta):
    """The Itakura-Saito divergence ``x/x_hat - log(x/x_hat) - 1`` (beta = 0)."""

    BETA = 0.0

    def _default_name(self):
        return "itakura_saito"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SquaredError(_FixedBeta):
    """Half the squared error ``(x - x_hat)^2 / 2`` (eq 30, beta = 2), mean over pixels.

    Note the factor 1/2: Keras's ``"mse"`` (``MeanSquaredError``) has none, and the thesis's
    runs used Keras's ``"mse"``, so their reported losses are twice this one's.
    """

    BETA = 2.0

    def _default_name(self):
        return "squared_error"


#: Loss names understood by :func:`get_loss` (besides ``"beta=<b>"``).
LOSS_NAMES = ("mse", "se", "i1", "i2", "is")


def get_loss(name: str, *, clip: bool = True):
    """Return the Keras loss object for a short name.

    Parameters
    ----------
    name : str
        ``"mse"`` -- Keras's ``MeanSquaredError`` (no 1/2), what the thesis ran;
        ``"se"`` -- :class:`SquaredError` (with the 1/2 of eq 30);
        ``"i1"`` -- :class:`ReverseIDivergence` (E_I1); ``"i2"`` -- :class:`IDivergence` (E_I2);
        ``"is"`` -- :class:`ItakuraSaito`; ``"beta=<b>"`` -- :class:`BetaDivergence` (b).
    clip : bool
        For the divergences (not ``"mse"``/``"se"``): clip both arguments to ``[1e-7, 1]``.
        Default True, the thesis's code (needed for ``"i1"`` on MNIST, which is infinite
        exactly); False gives the exact divergence.

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    if not isinstance(name, str):
        raise ValueError(f"loss name must be a string, got {name!r}")
    key = name.strip().lower()
    if key == "mse":
        return keras.losses.MeanSquaredError(name="mse")
    if key == "se":
        return SquaredError(name="se")
    if key == "i1":
        return ReverseIDivergence(clip=clip, name="i1")
    if key == "i2":
        return IDivergence(clip=clip, name="i2")
    if key == "is":
        return ItakuraSaito(clip=clip, name="is")
    if key.startswith("beta="):
        try:
            beta = float(key[len("beta="):])
        except ValueError:
            raise ValueError(f"loss {name!r}: the value after 'beta=' must be a number") from None
        return BetaDivergence(beta, clip=clip, name=f"beta_{beta:g}".replace(".", "_").replace("-", "m"))
    raise ValueError(f"unknown loss {name!r}; valid: {', '.join(LOSS_NAMES)}, or 'beta=<number>'")
