"""A Keras model's outputs for many images, a batch at a time, with no copy of the whole input.

``model.predict(x)`` first wraps ``x`` in a data pipeline (on TensorFlow, a ``tf.data`` copy of
all of it) and keeps every batch's output until it concatenates them: for MNIST's 10,000 test
images that is about 100 MB more in the kernel, which stays there. :func:`predict_in_batches`
runs the same compiled prediction step (``model.predict_on_batch``) on one slice at a time and
writes each slice's output into one preallocated array: the same numbers, about half the memory
(benchmarks/README.md). No Keras import: it receives the model.
"""

from __future__ import annotations

import numpy as np

from ._numerics import as_float_array, check_positive_int

__all__ = ["predict_in_batches"]


def predict_in_batches(model, x, batch_size: int = 1000) -> np.ndarray:
    """``model``'s outputs for the rows of ``x``, computed ``batch_size`` rows at a time.

    Parameters
    ----------
    model : keras.Model
        A built model with one input and one output.
    x : array_like, shape (N, ...)
        The inputs, as float32 (converted once if they are not).
    batch_size : int, default 1000
        Rows per call of ``model.predict_on_batch``.

    Returns
    -------
    ndarray, float32, shape (N, ...) of the model's output
        What ``model.predict(x, batch_size=batch_size)`` returns.
    """
    x = np.asarray(x)
    if x.dtype != np.float32 and (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        x = x.astype(np.float32)  # the one copy, before the checks (which keep float32 as it is)
    x = as_float_array(x, "x", nonnegative=False)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"x must hold at least one row, got shape {x.shape}")
    batch_size = check_positive_int(batch_size, "batch_size")
    out = None
    for start in range(0, len(x), batch_size):
        part = np.asarray(model.predict_on_batch(x[start:start + batch_size]), dtype=np.float32)
        if out is None:
            out = np.empty((len(x),) + part.shape[1:], dtype=np.float32)
        out[start:start + len(part)] = part
    return out
