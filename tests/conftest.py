"""Shared test fixtures. Tests read the exact MNIST copy in ../shared/data (never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"

# Point the loader at the shared copy unless the caller chose another file.
if "IDIVKIT_MNIST" not in os.environ and SHARED_MNIST.exists():
    os.environ["IDIVKIT_MNIST"] = str(SHARED_MNIST)


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """Path of the local MNIST copy; fails (does not skip) when it is missing."""
    path = Path(os.environ.get("IDIVKIT_MNIST", SHARED_MNIST))
    if not path.exists():
        pytest.fail(
            f"MNIST not found at {path}: set IDIVKIT_MNIST to a local mnist.npz "
            "(tests never download it)"
        )
    return path


@pytest.fixture(scope="session")
def mnist(mnist_path):
    """``((x_train, y_train), (x_test, y_test))`` as idivkit.data.load_mnist returns them."""
    from idivkit.data import load_mnist

    return load_mnist(mnist_path)
