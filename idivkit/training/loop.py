"""The epoch loop shared by :func:`~idivkit.training.train` and
:func:`~idivkit.training.train_grid`: input checks, the seeded order of the images in each
epoch, a reusable epoch buffer, and the progress bar.

Repeatability: the batches come from a numpy permutation seeded by ``(seed, epoch)``,
independent of the backend, so a configuration sees the same batches alone and in a grid.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from .._numerics import as_float_array, check_positive_int

__all__ = [
    "EpochData", "check_schedule", "epoch_permutation", "progress_bar", "quiet_retracing",
    "steps_per_epoch", "validate_data",
]


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` training images in ``epoch`` (0-based) for ``seed``.

    Returns
    -------
    ndarray of int, shape (n,)
    """
    return np.random.default_rng([int(seed), 2, int(epoch)]).permutation(n)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Updates per epoch: ``ceil(n / batch_size)`` (the last, partial batch is kept)."""
    return -(-n // batch_size)


def check_schedule(epochs, batch_size) -> tuple[int, int]:
    """``epochs`` and ``batch_size`` as positive ints, or a ValueError naming the bad one."""
    return check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")


def validate_data(x_train, x_val=None):
    """Check training/validation images: 2-D, finite, in [0, 1], same width. Returns float32."""
    out = []
    for name, x in (("x_train", x_train), ("x_val", x_val)):
        if x is None:
            out.append(None)
            continue
        x = as_float_array(x, name)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"{name} must have shape (N, 784) with N > 0, got {x.shape}")
        n_big = int(np.count_nonzero(x > 1))
        if n_big:
            raise ValueError(f"{name} has {n_big} entries above 1; scale images to [0, 1] (x / 255)")
        out.append(np.ascontiguousarray(x, dtype=np.float32))
    if out[1] is not None and out[1].shape[1] != out[0].shape[1]:
        raise ValueError(f"x_val has {out[1].shape[1]} columns but x_train has {out[0].shape[1]}")
    return out[0], out[1]


class EpochData:
    """The training images in the order of :func:`epoch_permutation`, one epoch at a time.

    Reuses one buffer (``np.take(..., out=)``): a fresh 188 MB copy per epoch costs more in
    page faults than the gather itself. Keras's ``fit`` has returned before the next epoch
    overwrites it.
    """

    def __init__(self, x, seed):
        self.x, self.seed = x, int(seed)
        self.buffer = np.empty_like(x)

    def epoch(self, epoch: int) -> np.ndarray:
        np.take(self.x, epoch_permutation(len(self.x), self.seed, epoch), axis=0, out=self.buffer)
        return self.buffer


class progress_bar:
    """A tqdm bar over epochs showing the latest losses; nothing when ``enabled`` is False; or,
    when ``enabled`` is a callable, that callable called once per epoch with the latest losses
    (so a caller can drive one bar over several trainings)."""

    def __init__(self, total: int, desc: str, enabled):
        self.bar, self.callback = None, enabled if callable(enabled) else None
        if enabled is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="epoch")

    def advance(self, latest: dict) -> None:
        """One epoch done; ``latest`` maps a name to a list whose last value is shown."""
        if self.callback is not None:
            self.callback(latest)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in latest.items()}, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def quiet_retracing():
    """The grid builds a model per optimizer group and each result predicts with its own model,
    so TensorFlow traces one function per model and then warns about "excessive retracing":
    expected here, noise to the user. Only the ``tensorflow`` logger is touched (nothing
    happens on other backends), and only inside the block."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
