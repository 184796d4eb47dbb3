"""idivkit.data against the published MNIST facts (../shared/data/README.md) and small files."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from idivkit.data import (
    MNIST_ENV_VAR,
    MNIST_ORIGIN,
    MNIST_SHA256,
    MnistNotFoundError,
    balanced_indices,
    balanced_subset,
    first_of_each_digit,
    load_mnist,
    load_mnist_subset,
    locate_mnist,
)

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_npz(path, *, label=1, n_train=20, n_test=10, seed=0, **override):
    """A small file in the Keras mnist.npz layout; ``override`` replaces or (None) drops arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": np.full(n_train, label, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": np.full(n_test, label, dtype=np.uint8),
    }
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


# --- the real file ---------------------------------------------------------------------------

def test_shapes_dtypes_and_range(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert np.issubdtype(y_train.dtype, np.integer)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert x_test.min() == 0.0 and x_test.max() == 1.0


def test_published_labels_and_counts(mnist):
    (_, y_train), (_, y_test) = mnist
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS


def test_published_mean_and_std(mnist):
    (x_train, _), (x_test, _) = mnist
    assert x_train.mean(dtype=np.float64) == pytest.approx(0.13066, abs=1e-4)
    assert x_train.std(dtype=np.float64) == pytest.approx(0.30811, abs=1e-4)
    assert x_test.mean(dtype=np.float64) == pytest.approx(0.13251, abs=1e-4)
    assert x_test.std(dtype=np.float64) == pytest.approx(0.31048, abs=1e-4)


def test_pixels_are_raw_bytes_over_255(mnist, mnist_path):
    with np.load(mnist_path) as raw:
        x_test_raw = raw["x_test"]
    (_, _), (x_test, _) = mnist
    np.testing.assert_array_equal(x_test, (x_test_raw.reshape(-1, 784) / np.float32(255)))


def test_unflattened_float64_and_read_only(mnist_path, mnist):
    (x_flat, _), _ = mnist
    (x_img, y), _ = load_mnist(mnist_path, flatten=False, dtype="float64")
    assert x_img.shape == (60000, 28, 28) and x_img.dtype == np.float64
    np.testing.assert_allclose(x_img.reshape(-1, 784), x_flat, rtol=0, atol=1e-7)
    for array in (x_img, y, x_flat):
        assert not array.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
    # the cache hands out views of one decoded copy
    (again, _), _ = load_mnist(mnist_path, flatten=True, dtype="float64")
    assert np.shares_memory(again, x_img)


def test_bad_dtype_argument(mnist_path):
    with pytest.raises(ValueError, match="dtype must be a floating type"):
        load_mnist(mnist_path, dtype="int32")


# --- where it looks --------------------------------------------------------------------------

def test_explicit_path_beats_env_var_and_env_var_is_used_without_path(tmp_path, monkeypatch):
    first = write_npz(tmp_path / "first.npz", label=1)
    second = write_npz(tmp_path / "second.npz", label=2)
    monkeypatch.setenv(MNIST_ENV_VAR, str(second))
    (_, y), _ = load_mnist(first)
    assert set(y.tolist()) == {1}
    (_, y), _ = load_mnist()
    assert set(y.tolist()) == {2}
    assert locate_mnist() == second.resolve()


def test_keras_cache_is_used_when_no_path_and_no_env_var(tmp_path, monkeypatch):
    monkeypatch.delenv(MNIST_ENV_VAR, raising=False)
    keras_home = tmp_path / "kh"
    (keras_home / "datasets").mkdir(parents=True)
    write_npz(keras_home / "datasets" / "mnist.npz", label=3)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    (_, y), _ = load_mnist()
    assert set(y.tolist()) == {3}
    # without KERAS_HOME: ~/.keras/datasets
    monkeypatch.delenv("KERAS_HOME")
    home = tmp_path / "home"
    (home / ".keras" / "datasets").mkdir(parents=True)
    write_npz(home / ".keras" / "datasets" / "mnist.npz", label=4)
    monkeypatch.setenv("HOME", str(home))
    (_, y), _ = load_mnist()
    assert set(y.tolist()) == {4}


def test_missing_explicit_path_and_missing_env_file(tmp_path, monkeypatch):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_mnist(missing)
    monkeypatch.setenv(MNIST_ENV_VAR, str(missing))
    with pytest.raises(FileNotFoundError, match=f"{MNIST_ENV_VAR}=.*nope.npz"):
        load_mnist()


def _network_reachable() -> bool:
    try:
        socket.getaddrinfo("storage.googleapis.com", 443)
    except OSError:
        return False
    return True


@pytest.mark.timeout(300)
def test_offline_without_a_copy_says_where_it_looked(tmp_path, monkeypatch):
    if _network_reachable():
        pytest.skip("this machine can reach the network: the offline error cannot happen here")
    monkeypatch.delenv(MNIST_ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(MnistNotFoundError) as info:
        load_mnist()
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert str(tmp_path / "keras" / "datasets" / "mnist.npz") in message
    assert MNIST_ORIGIN in message and "download failed" in message
    assert "load_mnist(path=" in message and f"export {MNIST_ENV_VAR}=" in message
    assert not (tmp_path / "keras" / "datasets" / "mnist.npz").exists()  # no partial file


# --- the download (served from this machine: no network needed) ------------------------------

@contextlib.contextmanager
def serving(folder):
    """An HTTP server on 127.0.0.1 for the files of ``folder``; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _clean_env(home):
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in (MNIST_ENV_VAR, "KERAS_HOME", "TF_CPP_MIN_LOG_LEVEL")}
    env["HOME"] = str(home)
    return env


DOWNLOAD_SCRIPT = """
import json, sys
from pathlib import Path
from idivkit import data
path = data._download(Path(sys.argv[1]), origin=sys.argv[2], sha256=sys.argv[3])
(x_train, _), (x_test, _) = data.load_mnist(path)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tensorflow", "jax"))
print(json.dumps({"path": path, "shapes": [x_train.shape, x_test.shape], "heavy": heavy}))
"""


def test_download_is_hash_checked_and_never_imports_keras(tmp_path, mnist_path):
    """The real file over HTTP: it lands in the Keras cache, loads, and Keras stays unimported."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "mnist.npz").write_bytes(mnist_path.read_bytes())
    sha256 = hashlib.sha256(mnist_path.read_bytes()).hexdigest()
    with serving(served) as url:
        result = subprocess.run(
            [sys.executable, "-c", DOWNLOAD_SCRIPT, str(tmp_path / "kh"), f"{url}/mnist.npz", sha256],
            env=_clean_env(tmp_path), capture_output=True, text=True, timeout=120,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["path"] == str(tmp_path / "kh" / "datasets" / "mnist.npz")
    assert report["shapes"] == [[60000, 784], [10000, 784]]
    assert report["heavy"] == [], f"downloading MNIST imported {report['heavy']}"
    assert result.stderr == "", result.stderr
    assert hashlib.sha256((tmp_path / "kh" / "datasets" / "mnist.npz").read_bytes()).hexdigest() == sha256
    assert sorted(p.name for p in (tmp_path / "kh" / "datasets").iterdir()) == ["mnist.npz"]


def test_python_m_idivkit_data_rejects_a_file_with_another_hash(tmp_path, mnist_path):
    """A mirror serving other bytes (here a re-packed MNIST) is refused and nothing is kept."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "mnist.npz").write_bytes(mnist_path.read_bytes())
    assert hashlib.sha256(mnist_path.read_bytes()).hexdigest() != MNIST_SHA256
    with serving(served) as url:
        result = subprocess.run(
            [sys.executable, "-m", "idivkit.data", "--origin", f"{url}/mnist.npz"],
            env=_clean_env(tmp_path), capture_output=True, text=True, timeout=120,
        )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"is not the published {MNIST_SHA256}" in result.stderr, result.stderr
    assert "discarded" in result.stderr and result.stdout == ""
    datasets = tmp_path / ".keras" / "datasets"
    assert not datasets.exists() or list(datasets.iterdir()) == [], list(datasets.iterdir())


def test_python_m_idivkit_data_prints_the_copy_it_finds(tmp_path, mnist_path):
    """Binder's postBuild runs it: with a copy in the Keras cache it downloads nothing."""
    cache = tmp_path / ".keras" / "datasets"
    cache.mkdir(parents=True)
    (cache / "mnist.npz").symlink_to(mnist_path)
    result = subprocess.run(
        [sys.executable, "-m", "idivkit.data"], env=_clean_env(tmp_path),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(mnist_path.resolve()) and result.stderr == ""


# --- bad files -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ({"y_test": None}, r"missing array\(s\) \['y_test'\]"),
        ({"x_train": np.zeros((20, 28, 28), np.float32)}, r"x_train must be uint8.*float32"),
        ({"x_test": np.zeros((10, 28, 27), np.uint8)}, r"x_test must be uint8 of shape.*27"),
        ({"y_train": np.ones((20, 1), np.uint8)},
         r"y_train must be integer labels of shape \(20,\)"),
        ({"y_test": np.ones(9, np.uint8)}, r"y_test .*shape \(10,\).*\(9,\)"),
        ({"y_train": np.full(20, 1.0)}, r"y_train must be integer labels.*float64"),
        ({"y_test": np.full(10, 12, np.uint8)}, r"y_test has labels outside 0..9"),
    ],
)
def test_bad_file_contents_name_the_array(tmp_path, override, pattern):
    path = write_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(ValueError, match=pattern):
        load_mnist(path)


def test_not_an_npz(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_mnist(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="expected an .npz archive"):
        load_mnist(single)


# --- subsets ---------------------------------------------------------------------------------

def test_balanced_subset_is_balanced_and_consistent(mnist):
    (x_train, y_train), _ = mnist
    x_sub, y_sub = balanced_subset(x_train, y_train, 25, seed=3)
    assert x_sub.shape == (250, 784)
    assert np.bincount(y_sub, minlength=10).tolist() == [25] * 10
    idx = balanced_indices(y_train, 25, seed=3)
    assert len(set(idx.tolist())) == 250  # no repeats
    np.testing.assert_array_equal(x_sub, x_train[idx])
    np.testing.assert_array_equal(y_sub, y_train[idx])
    assert x_sub.flags.writeable  # a copy, not the cache


def test_balanced_subset_is_seeded(mnist):
    (_, y_train), _ = mnist
    same = balanced_indices(y_train, 10, seed=0), balanced_indices(y_train, 10, seed=0)
    np.testing.assert_array_equal(*same)
    other = balanced_indices(y_train, 10, seed=1)
    assert not np.array_equal(same[0], other)
    # the order is shuffled, not grouped by class
    assert not np.all(np.diff(y_train[same[0]]) >= 0)


def test_balanced_subset_errors():
    y = np.array([0, 0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"fewer samples.*\{1: 2, 2: 1\}"):
        balanced_indices(y, 3)
    with pytest.raises(ValueError, match="per_class must be a positive integer"):
        balanced_indices(y, 0)
    with pytest.raises(ValueError, match="x has 5 rows but y has 6"):
        balanced_subset(np.zeros((5, 2)), y, 1)


def test_load_mnist_subset(mnist_path):
    (x_train, y_train), (x_test, y_test) = load_mnist_subset(6, 4, seed=2, path=mnist_path)
    assert x_train.shape == (60, 784) and x_test.shape == (40, 784)
    assert np.bincount(y_train).tolist() == [6] * 10
    assert np.bincount(y_test).tolist() == [4] * 10
    (full_x, full_y), _ = load_mnist(mnist_path)
    idx = balanced_indices(full_y, 6, seed=2)
    np.testing.assert_array_equal(x_train, full_x[idx])


def test_first_of_each_digit_on_real_labels(mnist):
    _, (_, y_test) = mnist
    idx = first_of_each_digit(y_test)
    expected = [next(i for i in range(1000) if y_test[i] == d) for d in range(10)]
    assert idx.tolist() == expected
    assert y_test[idx].tolist() == list(range(10))


def test_first_of_each_digit_errors():
    y = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9])
    assert first_of_each_digit(y).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
    with pytest.raises(ValueError, match=r"digit\(s\) \[9\] do not occur among the first 10"):
        first_of_each_digit(y, limit=10)
    with pytest.raises(ValueError, match="1-D"):
        first_of_each_digit(y.reshape(1, -1))
