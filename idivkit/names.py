"""The one table of names: decoders, losses and optimizers, defined once.

Every part of idivkit that accepts one of these names (``backprop``, ``keras``, ``training``,
``reproduce``, the lessons) reads it from here, so a name means the same everywhere.

Losses and the squared error
----------------------------
The thesis calls two different things "MSE". Its derivation (eq 30) uses the *half* squared
error ``(x - x_hat)^2 / 2``, the beta = 2 member of the family; its experiment used Keras's
``"mse"``, the mean of ``(x - x_hat)^2`` with no 1/2. The names keep them apart:

* ``"half_se"`` -- ``(x - x_hat)^2 / 2``, eq 30 (``scale`` 1 times ``d_2``);
* ``"mse"`` -- ``(x - x_hat)^2``, Keras's mean squared error (``scale`` 2 times ``d_2``).

:mod:`idivkit.backprop` follows the thesis's derivation, where "MSE" is eq 30: there
``"mse"`` resolves to ``"half_se"`` (:func:`derivation_loss`), which says so by its name.

Each loss is ``scale * d_beta(a | b)`` summed (or averaged) over pixels, with ``(a, b)`` the
data and the model output in that order, or swapped (``swapped=True``: E_I1, eq 33).

References
----------
.. [1] T. Haruguchi, "Autoencoder with New Loss Functions", eqs 29-34 and section 2.5.
.. [2] docs/errata.md and docs/keras-defaults.md in this repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DECODERS", "DECODER_LABELS", "LOSSES", "LossSpec", "OPTIMIZERS", "OptimizerSpec",
    "THESIS_DECODERS", "THESIS_LOSSES", "THESIS_OPTIMIZERS", "derivation_loss", "label",
    "loss_spec",
]

#: Decoder activations of the 784-32-784 autoencoder (the encoder is always ReLU).
DECODERS = ("relu", "sigmoid")
DECODER_LABELS = {"relu": "ReLU-ReLU", "sigmoid": "ReLU-Sigmoid"}


@dataclass(frozen=True)
class LossSpec:
    """One loss: ``scale * d_beta(data | output)``, or with the arguments swapped.

    Attributes
    ----------
    name : str
        The short name used everywhere (``"i2"``).
    beta : float
        The member of the beta-divergence family.
    swapped : bool
        True for E_I1: the model output takes the data's slot, ``D(x_hat | x)``.
    scale : float
        Factor in front of ``d_beta``: 1, or 2 for Keras's MSE (no 1/2).
    label : str
        How tables and figures print it.
    equation : str
        Where the thesis defines it.
    """

    name: str
    beta: float
    swapped: bool = False
    scale: float = 1.0
    label: str = ""
    equation: str = ""


#: The named losses, in table order (the thesis's three first).
LOSSES: dict[str, LossSpec] = {spec.name: spec for spec in (
    LossSpec("mse", 2.0, scale=2.0, label="MSE", equation="Keras 'mse' (section 2.5)"),
    LossSpec("i1", 1.0, swapped=True, label="E_I1", equation="eq 33"),
    LossSpec("i2", 1.0, label="E_I2", equation="eq 34"),
    LossSpec("half_se", 2.0, label="½ SE", equation="eq 30"),
    LossSpec("is", 0.0, label="Itakura-Saito", equation="eq 29, beta -> 0"),
)}


def loss_spec(name) -> LossSpec:
    """The :class:`LossSpec` of ``name``: a key of :data:`LOSSES` or ``"beta=<number>"``.

    Raises
    ------
    ValueError
        For anything else, listing the valid names.
    """
    if not isinstance(name, str):
        raise ValueError(f"loss must be a string, got {name!r}")
    key = name.strip().lower()
    if key in LOSSES:
        return LOSSES[key]
    if key.startswith("beta="):
        from ._numerics import check_beta

        try:
            beta = check_beta(key[len("beta="):])
        except ValueError:
            raise ValueError(f"loss {name!r}: the value after 'beta=' must be a finite number") from None
        return LossSpec(f"beta={beta:g}", beta, label=f"β = {beta:g}", equation="eq 29")
    raise ValueError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}, or 'beta=<number>'")


#: The thesis's derivation (eqs 30-78) names eq 30's half squared error "MSE".
DERIVATION_ALIASES = {"mse": "half_se"}


def derivation_loss(name) -> LossSpec:
    """:func:`loss_spec` as the thesis's derivation (and :mod:`idivkit.backprop`) reads names:
    ``"mse"`` is eq 30's half squared error, ``"half_se"``."""
    if isinstance(name, str) and name.strip().lower() in DERIVATION_ALIASES:
        name = DERIVATION_ALIASES[name.strip().lower()]
    return loss_spec(name)


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer: its Keras 3 class and the Keras 2.2 defaults the thesis ran with.

    ``keras2`` holds Keras 2.2's default hyper-parameters in Keras 3's keyword names
    (Keras 2.2's ``epsilon=None`` meant 1e-7; ``lr`` is ``learning_rate``). Where Keras 3's
    update rule itself differs (Adagrad's epsilon inside the square root, Nadam's momentum
    schedule) the defaults cannot close the gap: see docs/keras-defaults.md.
    """

    name: str
    keras_class: str
    label: str
    keras2: dict = field(default_factory=dict)


#: The optimizers of section 1.5 (and the two the thesis's code also offered), in order.
OPTIMIZERS: dict[str, OptimizerSpec] = {spec.name: spec for spec in (
    OptimizerSpec("adagrad", "Adagrad", "Adagrad",
                  {"learning_rate": 0.01, "initial_accumulator_value": 0.0, "epsilon": 1e-7}),
    OptimizerSpec("adadelta", "Adadelta", "AdaDelta",
                  {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7}),
    OptimizerSpec("adam", "Adam", "Adam",
                  {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    OptimizerSpec("adamax", "Adamax", "Adamax",
                  {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    OptimizerSpec("nadam", "Nadam", "Nadam",
                  {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    OptimizerSpec("sgd", "SGD", "SGD", {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}),
    OptimizerSpec("rmsprop", "RMSprop", "RMSprop", {"learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-7}),
)}

#: The thesis's grid: 2 decoders x 3 losses x 5 optimizers.
THESIS_DECODERS = DECODERS
THESIS_LOSSES = ("mse", "i1", "i2")
THESIS_OPTIMIZERS = ("adagrad", "adadelta", "adam", "adamax", "nadam")


def label(name: str) -> str:
    """How tables print a decoder, loss or optimizer name (the name itself if unknown)."""
    if name in DECODER_LABELS:
        return DECODER_LABELS[name]
    if name in LOSSES:
        return LOSSES[name].label
    if name in OPTIMIZERS:
        return OPTIMIZERS[name].label
    return name
