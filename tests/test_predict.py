"""idivkit.predict: a model's outputs a slice at a time equal Keras's own ``model.predict``."""

from __future__ import annotations

import numpy as np
import pytest

from idivkit.predict import predict_in_batches


@pytest.fixture(scope="module")
def model():
    from idivkit.training import build_autoencoder

    return build_autoencoder(decoder="sigmoid", seed=3)


@pytest.mark.parametrize("n, batch_size", [(2500, 1000), (7, 1000), (1000, 1000), (300, 128)])
def test_equals_keras_predict(model, mnist, n, batch_size):
    """Every row, the tail slice included, as ``model.predict`` (Keras's pipeline) computes it."""
    x = mnist[1][0][:n]
    ours = predict_in_batches(model, x, batch_size=batch_size)
    keras_predict = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    assert ours.dtype == np.float32 and ours.shape == (n, 784)
    np.testing.assert_allclose(ours, keras_predict, rtol=1e-6, atol=1e-7)
    # A sigmoid decoder from Glorot weights: outputs strictly inside (0, 1), not all alike.
    assert 0 < ours.min() and ours.max() < 1 and ours.std() > 1e-3


def test_result_predict_uses_it(mnist):
    """TrainResult.predict (lessons 08 and 09) gives what the trained model's predict gives."""
    from idivkit.training import train

    x = mnist[0][0][:512]
    result = train(x, loss="i2", decoder="sigmoid", optimizer="adam", epochs=1, batch_size=256, progress=False)
    expected = np.asarray(result.get_model().predict(x[:300], verbose=0))
    np.testing.assert_allclose(result.predict(x[:300], batch_size=128), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("x, batch_size, message", [
    (np.zeros((0, 784), np.float32), 1000, "x must hold at least one row"),
    (np.float32(1.0), 1000, "x must hold at least one row"),
    (np.full((2, 784), np.nan, np.float32), 1000, "x has 1568 NaN entries"),
    (np.zeros((2, 784), np.float32), 0, "batch_size"),
    (np.zeros((2, 784), np.float32), 2.5, "batch_size"),
])
def test_bad_input_is_named(model, x, batch_size, message):
    with pytest.raises((ValueError, TypeError), match=message):
        predict_in_batches(model, x, batch_size=batch_size)
