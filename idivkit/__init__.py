"""idivkit: autoencoders trained with asymmetric losses (the beta-divergence family).

The reference losses are imported here; the other parts load on first use, so that
``import idivkit`` stays fast and never imports TensorFlow:

* :mod:`idivkit.losses`   numpy losses and their derivatives (lessons 02-03)
* :mod:`idivkit.backprop` the thesis's backprop by hand, and a gradient checker (lesson 04)
* :mod:`idivkit.ssim`     SSIM: the thesis's protocol and an honest one
* :mod:`idivkit.data`     MNIST loading and class-balanced subsets
* :mod:`idivkit.keras`    Keras 3 losses (imports Keras)
* :mod:`idivkit.training` the thesis's Keras 3 model, optimizers, seeded training, grids
* :mod:`idivkit.names`    the one table of decoder, loss and optimizer names

Also here, outside the public API: :mod:`idivkit.reproduce` (the ``idivkit reproduce``
command), :mod:`idivkit.lessons` and :mod:`idivkit.grading` (the course's helpers), and
:mod:`idivkit.trainer` (an alias of :mod:`idivkit.training` for lessons already handed out).
"""

from importlib import import_module as _import_module

from ._numerics import EPSILON
from .losses import (
    beta_divergence,
    beta_divergence_grad,
    i_divergence,
    itakura_saito,
    reverse_i_divergence,
    reverse_i_divergence_grad,
    squared_error,
)

__version__ = "0.1.0"

#: The public submodules (in ``__all__``), then the others that load on first use.
_PUBLIC_SUBMODULES = ("backprop", "data", "keras", "names", "ssim", "training")
_LAZY_SUBMODULES = {*_PUBLIC_SUBMODULES, "cli", "grading", "grid", "lessons", "reproduce", "trainer"}

__all__ = [
    "EPSILON",
    "beta_divergence",
    "beta_divergence_grad",
    "squared_error",
    "i_divergence",
    "reverse_i_divergence",
    "reverse_i_divergence_grad",
    "itakura_saito",
    *_PUBLIC_SUBMODULES,
]


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return _import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
