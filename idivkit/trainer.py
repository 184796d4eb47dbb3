"""Deprecated alias of :mod:`idivkit.training`, kept for lessons already handed out.

``from idivkit.trainer import build_autoencoder, train, train_grid`` keeps working; new code
imports :mod:`idivkit.training`.
"""

from .names import DECODERS, OPTIMIZERS
from .training.grid import THESIS_GRID, thesis_grid, train_grid
from .training.loop import epoch_permutation
from .training.model import build_autoencoder, initial_weights
from .training.optimizers import KERAS2_DEFAULTS, make_optimizer
from .training.result import GridConfig, TrainResult
from .training.single import train

__all__ = [
    "DECODERS", "OPTIMIZERS", "KERAS2_DEFAULTS", "GridConfig", "TrainResult", "THESIS_GRID",
    "build_autoencoder", "initial_weights", "epoch_permutation", "make_optimizer", "thesis_grid",
    "train", "train_grid",
]
