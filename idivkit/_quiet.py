"""Import Keras without TensorFlow's start-up noise.

TensorFlow writes its start-up lines (absl's "All log messages before absl::InitializeLog()",
oneDNN, cpu_feature_guard) from C++ straight to file descriptor 2 while it is imported, before
any Python logging setting applies; in Jupyter they show as a red block that looks like an
error. So the import runs with descriptor 2 pointed at /dev/null, and ``TF_CPP_MIN_LOG_LEVEL``
defaults to 2 (errors only) for the later lines (XLA's "Compiled cluster"), unless the user set
it. Python exceptions are unaffected: a failed import still raises, after stderr is restored.
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["import_keras"]


@contextlib.contextmanager
def _stderr_to_devnull():
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):  # a closed or replaced stream
        pass
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras():
    """Return the ``keras`` module, importing it (and its backend) quietly the first time."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_to_devnull():
        import keras

        # On other backends Keras's data adapters still import TensorFlow (tf.data) at the
        # first fit when it is installed: import it here, where its start-up lines are muted.
        if keras.backend.backend() != "tensorflow" and "tensorflow" not in sys.modules:
            from importlib.util import find_spec

            if find_spec("tensorflow") is not None:
                import tensorflow  # noqa: F401
    return keras
