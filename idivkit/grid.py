"""Deprecated alias of :mod:`idivkit.training.grid` (``train_grid``, ``thesis_grid``)."""

from .training.grid import THESIS_GRID, thesis_grid, train_grid
from .training.result import GridConfig

__all__ = ["GridConfig", "THESIS_GRID", "thesis_grid", "train_grid"]
