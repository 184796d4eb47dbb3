"""The thesis's experiment in Keras 3: model, optimizers, seeded training, grid training.

* :mod:`.model`      :func:`build_autoencoder`, :func:`initial_weights`
* :mod:`.optimizers` :func:`make_optimizer`, :data:`KERAS2_DEFAULTS`
* :mod:`.loop`       the epoch loop: :func:`epoch_permutation`, input checks, progress
* :mod:`.single`     :func:`train`, one configuration
* :mod:`.grid`       :func:`train_grid`, many configurations (and seeds) in one compiled model,
  laid out as :mod:`.branches` (CPUs) or :mod:`.stacked` (GPUs); :mod:`.grouped` applies each
  configuration's optimizer to its branch; :mod:`.epoch_scan` runs a JAX epoch as one ``lax.scan``
* :mod:`.result`     :class:`GridConfig`, :class:`TrainResult` and its one storage format

Names load on first use, so ``TrainResult`` and ``GridConfig`` (and saved results) are usable
without importing Keras; the others import it (quietly, see :mod:`idivkit._quiet`).
"""

from importlib import import_module as _import_module

_WHERE = {
    "GridConfig": "result", "TrainResult": "result", "run_path": "result",
    "build_autoencoder": "model", "initial_weights": "model", "INPUT_DIM": "model",
    "KERAS2_DEFAULTS": "optimizers", "make_optimizer": "optimizers",
    "epoch_permutation": "loop", "steps_per_epoch": "loop", "validate_data": "loop",
    "train": "single",
    "train_grid": "grid", "thesis_grid": "grid", "THESIS_GRID": "grid",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(_import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
