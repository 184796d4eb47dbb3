"""MNIST: find it, load it once, and take seeded class-balanced subsets.

Where :func:`load_mnist` looks, in this order:

1. the ``path`` argument;
2. the environment variable ``IDIVKIT_MNIST`` (the tests and CI point it at a local copy);
3. the Keras cache, ``$KERAS_HOME/datasets/mnist.npz`` (default ``~/.keras/datasets``);
4. a download into that cache (standard library only: Keras and TensorFlow are never
   imported for it), checked against the published SHA-256 of the Keras file; a file whose
   hash differs is discarded, never kept.

``python -m idivkit.data`` fetches it ahead of time (Binder's image build runs it).

The file is the Keras ``mnist.npz`` layout: ``x_train`` (60000, 28, 28) uint8, ``y_train``
(60000,), ``x_test`` (10000, 28, 28) uint8, ``y_test`` (10000,). MNIST is by Y. LeCun,
C. Cortes and C. J. C. Burges (CC BY-SA 3.0).

Used by ``idivkit reproduce``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

__all__ = [
    "MNIST_ENV_VAR",
    "MNIST_ORIGIN",
    "MNIST_SHA256",
    "MnistNotFoundError",
    "locate_mnist",
    "load_mnist",
    "balanced_indices",
    "balanced_subset",
    "load_mnist_subset",
    "first_of_each_digit",
]

MNIST_ENV_VAR = "IDIVKIT_MNIST"
MNIST_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
#: Seconds a silent network may stall the download before it fails (no retry).
DOWNLOAD_TIMEOUT_S = 30.0
_SPLITS = ("train", "test")
_KEYS = ("x_train", "y_train", "x_test", "y_test")


class MnistNotFoundError(RuntimeError):
    """No local MNIST copy was found and downloading it failed."""


def _keras_cache_file() -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home).expanduser() / "datasets" / "mnist.npz"


def locate_mnist(path=None, *, download: bool = True) -> Path:
    """Return the ``mnist.npz`` that :func:`load_mnist` reads, downloading it if needed.

    Raises
    ------
    FileNotFoundError
        ``path`` (or ``$IDIVKIT_MNIST``) names a file that does not exist.
    MnistNotFoundError
        No copy in the Keras cache and the download failed (or ``download=False``).
    """
    if path is not None:
        chosen = Path(path).expanduser()
        if not chosen.is_file():
            raise FileNotFoundError(f"MNIST file not found: path={str(path)!r} does not exist "
                                    "or is not a file")
        return chosen.resolve()
    env_value = os.environ.get(MNIST_ENV_VAR)
    if env_value:
        chosen = Path(env_value).expanduser()
        if not chosen.is_file():
            raise FileNotFoundError(f"MNIST file not found: {MNIST_ENV_VAR}={env_value!r} does "
                                    "not exist or is not a file")
        return chosen.resolve()
    cached = _keras_cache_file()
    if cached.is_file():
        return cached.resolve()
    reason = "download=False"
    if download:
        try:
            return Path(_download(cached.parent.parent)).resolve()
        except Exception as exc:  # noqa: BLE001 - any failure gets the same advice
            reason = f"download failed: {type(exc).__name__}: {exc}"
    raise MnistNotFoundError(
        "MNIST not found. Looked at: the path argument (not given); "
        f"${MNIST_ENV_VAR} (not set); the Keras cache {cached} (no such file); "
        f"then tried to download {MNIST_ORIGIN} ({reason}). "
        "Point idivkit at a local copy with load_mnist(path='/path/to/mnist.npz') or "
        f"`export {MNIST_ENV_VAR}=/path/to/mnist.npz`."
    )


def _download(keras_home: Path, origin: str = MNIST_ORIGIN, sha256: str = MNIST_SHA256) -> str:
    """Fetch ``origin`` into ``keras_home/datasets/mnist.npz`` (one attempt, with a timeout).

    Streams into a temporary file beside the target, checks its SHA-256 and only then renames it
    into place: an interrupted or corrupted download never leaves a file that looks like MNIST.
    """
    target = Path(keras_home) / "datasets" / "mnist.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, partial = tempfile.mkstemp(prefix=".mnist-", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out, \
                urllib.request.urlopen(origin, timeout=DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ValueError(f"{origin}: SHA-256 {digest.hexdigest()} is not the published "
                             f"{sha256}; the file was discarded")
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return str(target)


def _check_arrays(arrays: dict, source: str) -> None:
    for split in _SPLITS:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"{source}: x_{split} must be uint8 of shape (N, 28, 28), got "
                             f"{x.dtype} {x.shape}")
        if not np.issubdtype(y.dtype, np.integer) or y.shape != (x.shape[0],):
            raise ValueError(f"{source}: y_{split} must be integer labels of shape "
                             f"({x.shape[0]},) to match x_{split}, got {y.dtype} {y.shape}")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise ValueError(f"{source}: y_{split} has labels outside 0..9 "
                             f"(min {y.min()}, max {y.max()})")


@functools.lru_cache(maxsize=2)
def _decoded(resolved: str, mtime_ns: int, size: int, dtype: str):
    """Read, check and scale one file; the (read-only) result is cached per file and dtype."""
    try:
        loaded = np.load(resolved, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{resolved}: not a readable .npz file ({exc})") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{resolved}: expected an .npz archive of arrays, got a single "
                         f"{type(loaded).__name__}")
    with loaded as npz:
        missing = [k for k in _KEYS if k not in npz.files]
        if missing:
            raise ValueError(f"{resolved}: missing array(s) {missing}; expected the Keras "
                             f"mnist.npz layout with {', '.join(_KEYS)} "
                             f"(found {sorted(npz.files)})")
        arrays = {k: npz[k] for k in _KEYS}
    _check_arrays(arrays, resolved)
    out = []
    for split in _SPLITS:
        x = arrays[f"x_{split}"].astype(dtype) / np.asarray(255, dtype=dtype)
        y = arrays[f"y_{split}"].astype(np.int64)
        x.flags.writeable = False
        y.flags.writeable = False
        out.append((x, y))
    return tuple(out)


def load_mnist(path=None, *, flatten: bool = True, dtype="float32"):
    """Load MNIST scaled to [0, 1], as the thesis did (``x / 255``).

    Parameters
    ----------
    path : str or Path, optional
        An ``mnist.npz`` in the Keras layout; see the module docstring for where it looks
        without one.
    flatten : bool
        ``True``: images as rows of 784 pixels, shape ``(N, 784)``; ``False``: ``(N, 28, 28)``.
    dtype : str or numpy dtype
        A floating dtype for the images (default float32, as Keras uses).

    Returns
    -------
    ((x_train, y_train), (x_test, y_test))
        ``x`` of ``dtype`` in [0, 1]; ``y`` int64 labels 0..9 of shape ``(N,)``.
        The arrays are **read-only** views of an in-process cache, so repeated calls are
        instant and no caller can change what the next one gets; ``x.copy()`` gives a
        writable array.

    Raises
    ------
    FileNotFoundError, MnistNotFoundError
        See :func:`locate_mnist`.
    ValueError
        The file lacks an array, or an array has the wrong dtype or shape (the message names
        it), or ``dtype`` is not a floating type.
    """
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating type, got {dtype}")
    resolved = locate_mnist(path)
    stat = resolved.stat()  # part of the cache key: a rewritten file is read again
    train, test = _decoded(str(resolved), stat.st_mtime_ns, stat.st_size, dtype.str)
    shape = (-1, 784) if flatten else (-1, 28, 28)
    return (train[0].reshape(shape), train[1]), (test[0].reshape(shape), test[1])


def balanced_indices(y, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of a seeded, class-balanced subset: ``per_class`` of every label present.

    Each class's members are drawn without replacement, then the whole set is shuffled, all
    from ``numpy.random.default_rng(seed)``: the same ``(y, per_class, seed)`` always gives
    the same indices.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of labels, got shape {y.shape}")
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    classes, counts = np.unique(y, return_counts=True)
    short = {int(c): int(n) for c, n in zip(classes, counts) if n < per_class}
    if short:
        raise ValueError(f"per_class={per_class} but these classes have fewer samples "
                         f"(label: count): {short}")
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(y == c), size=per_class, replace=False) for c in classes]
    return rng.permutation(np.concatenate(chosen))


def balanced_subset(x, y, per_class: int, seed: int = 0):
    """Return ``(x[idx], y[idx])`` for ``idx = balanced_indices(y, per_class, seed)`` (copies)."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.shape[:1] != y.shape[:1]:
        raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]} labels; they must match")
    idx = balanced_indices(y, per_class, seed)
    return x[idx], y[idx]


def load_mnist_subset(n_train_per_class: int, n_test_per_class: int, seed: int = 0, path=None,
                      *, flatten: bool = True, dtype="float32"):
    """A small balanced MNIST for fast lessons: ``n_*_per_class`` images of each digit.

    Returns ``((x_train, y_train), (x_test, y_test))`` like :func:`load_mnist`, as writable
    copies, drawn with :func:`balanced_subset` (train with ``seed``, test with ``seed + 1``).
    """
    (x_train, y_train), (x_test, y_test) = load_mnist(path, flatten=flatten, dtype=dtype)
    return (balanced_subset(x_train, y_train, n_train_per_class, seed),
            balanced_subset(x_test, y_test, n_test_per_class, seed + 1))


def first_of_each_digit(y, limit: int = 1000) -> np.ndarray:
    """Index of the FIRST image of each digit 0..9 among ``y[:limit]`` (in digit order).

    This is step 1 of the thesis's SSIM protocol (docs/protocol.md), which used the
    first 1000 test labels. Raises ValueError naming any digit that does not occur.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of labels, got shape {y.shape}")
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    head = y[:limit]
    found = {d: np.flatnonzero(head == d) for d in range(10)}
    missing = [d for d, where in found.items() if where.size == 0]
    if missing:
        raise ValueError(f"digit(s) {missing} do not occur among the first {limit} labels")
    return np.array([found[d][0] for d in range(10)], dtype=np.int64)


def main(argv=None) -> int:
    """``python -m idivkit.data``: make sure MNIST is on this machine; print where it is."""
    parser = argparse.ArgumentParser(
        prog="python -m idivkit.data",
        description="Find MNIST (path, $IDIVKIT_MNIST, the Keras cache) or download it into the "
                    "Keras cache, hash-checked, without importing Keras.")
    parser.add_argument("--origin", default=MNIST_ORIGIN,
                        help="where to download from (a mirror of the Keras mnist.npz; the "
                             "published SHA-256 is checked whatever the origin)")
    args = parser.parse_args(argv)
    try:
        if args.origin == MNIST_ORIGIN:
            path = locate_mnist()
        else:
            try:
                path = locate_mnist(download=False)
            except MnistNotFoundError:
                path = Path(_download(_keras_cache_file().parent.parent, args.origin)).resolve()
    except (MnistNotFoundError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
