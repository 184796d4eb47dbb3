"""The optimizers by name, with the Keras 2.2 defaults the thesis ran with or Keras 3's own.

References
----------
.. [1] T. Haruguchi, "Autoencoder with New Loss Functions", section 1.5 (the optimizers).
.. [2] docs/keras-defaults.md in this repository: Keras 2.2 against Keras 3, and where the
   update rules themselves differ.
"""

from __future__ import annotations

from .._numerics import check_choice
from .._quiet import import_keras
from ..names import OPTIMIZERS

__all__ = ["KERAS2_DEFAULTS", "OPTIMIZER_DEFAULTS", "make_optimizer"]

#: Keras 2.2's defaults per optimizer, in Keras 3's keyword names (from :mod:`idivkit.names`).
KERAS2_DEFAULTS = {name: dict(spec.keras2) for name, spec in OPTIMIZERS.items()}
OPTIMIZER_DEFAULTS = ("keras2", "keras3")


def make_optimizer(name: str, defaults: str = "keras2", **overrides):
    """A Keras 3 optimizer by name with the thesis's Keras 2.2 defaults or Keras 3's own.

    Parameters
    ----------
    name : str
        A key of :data:`idivkit.names.OPTIMIZERS`: ``"adagrad"``, ``"adadelta"``, ``"adam"``,
        ``"adamax"``, ``"nadam"``, ``"sgd"``, ``"rmsprop"``.
    defaults : {"keras2", "keras3"}, default "keras2"
        ``"keras2"``: :data:`KERAS2_DEFAULTS` (Adagrad lr 0.01 and accumulator 0, Adadelta
        lr 1.0, Adamax and Nadam lr 0.002, epsilon 1e-7). ``"keras3"``: Keras 3's defaults.
        Keras 3 has no Nadam ``schedule_decay`` and puts Adagrad's epsilon inside the square
        root: the algorithms are close, not identical.
    **overrides
        Any keyword of the Keras class (``learning_rate=...``), applied last.

    Returns
    -------
    keras.optimizers.Optimizer
    """
    key = check_choice(name, "optimizer", OPTIMIZERS)
    defaults = check_choice(defaults, "defaults", OPTIMIZER_DEFAULTS)
    kwargs = dict(KERAS2_DEFAULTS[key]) if defaults == "keras2" else {}
    kwargs.update(overrides)
    return getattr(import_keras().optimizers, OPTIMIZERS[key].keras_class)(**kwargs)
