"""idivkit.keras: the Keras losses against the numpy references of idivkit.losses.

Runs in-process on the current Keras backend (TensorFlow by default) and, once more, the whole
file on the JAX backend in a subprocess (the backend is fixed when Keras is imported).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from idivkit import losses as ref  # noqa: E402
from idivkit import keras as ik  # noqa: E402
from idivkit._numerics import EPSILON  # noqa: E402

# The sweep's grid (0 to 2 in steps of 0.25: Itakura-Saito, beta < 1, I-divergence, ...) and two beyond.
BETAS = [-1.0, *(0.25 * k for k in range(9)), 3.0]
# float64 comparisons. XLA's float64 transcendental functions (JAX backend) differ from numpy by
# up to ~2e-7 relative on the largest values here (1e12 at beta = -1), hence not 1e-12.
RTOL = 1e-6


def _pair(seed=0, shape=(6, 40), zeros=True):
    """Data and outputs in [0, 1] (float64); with zeros, some of each are exactly 0."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, shape)
    x_hat = rng.uniform(0.01, 1.2, shape)
    if zeros:
        x[x < 0.3] = 0.0  # background pixels
        x_hat[:, :3] = 0.0  # dead outputs: x > 0 = x_hat and x = x_hat = 0
        x[:, 2] = 0.0
    return x, x_hat


def _numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def _assert_close_with_inf(actual, expected, rtol):
    assert np.array_equal(np.isinf(actual), np.isinf(expected)), (actual, expected)
    assert not np.any(np.isnan(actual))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("beta", BETAS)
def test_beta_divergence_per_sample_equals_numpy_reference(beta, clip):
    x, x_hat = _pair()
    got = _numpy(ik.BetaDivergence(beta, clip=clip).call(x, x_hat))
    want = ref.beta_divergence(x, x_hat, beta, reduction="none", clip=clip).mean(-1)
    assert got.shape == (x.shape[0],)
    _assert_close_with_inf(got, want, rtol=RTOL)


@pytest.mark.parametrize("clip", [False, True])
def test_named_losses_equal_their_numpy_references(clip):
    x, x_hat = _pair(seed=1)
    cases = [
        (ik.IDivergence(clip=clip), ref.i_divergence(x, x_hat, "none", clip=clip)),
        (ik.ReverseIDivergence(clip=clip), ref.reverse_i_divergence(x, x_hat, "none", clip=clip)),
        (ik.ItakuraSaito(clip=clip), ref.itakura_saito(x, x_hat, "none", clip=clip)),
        (ik.SquaredError(), ref.squared_error(x, x_hat, "none")),
    ]
    for loss, elementwise in cases:
        _assert_close_with_inf(_numpy(loss.call(x, x_hat)), elementwise.mean(-1), rtol=RTOL)


def test_reduction_is_the_batch_mean_and_mse_has_no_half():
    x, x_hat = _pair(seed=2, zeros=False)
    got = float(_numpy(ik.IDivergence()(x, x_hat)))
    assert got == pytest.approx(ref.i_divergence(x, x_hat, "mean"), rel=1e-6)  # float32 reduction
    mse = float(_numpy(ik.get_loss("mse")(x, x_hat)))
    assert mse == pytest.approx(2 * ref.squared_error(x, x_hat, "mean"), rel=1e-6)
    se = float(_numpy(ik.get_loss("half_se")(x, x_hat)))
    assert se == pytest.approx(ref.squared_error(x, x_hat, "mean"), rel=1e-6)


def test_beta_one_plus_tiny_is_continuous():
    x, x_hat = _pair(seed=3, zeros=False)
    at_one = _numpy(ik.BetaDivergence(1.0).call(x, x_hat))
    near = _numpy(ik.BetaDivergence(1.0 + 1e-6).call(x, x_hat))
    np.testing.assert_allclose(near, at_one, rtol=1e-5)


def test_clip_reproduces_the_original_code_by_hand():
    # The thesis's i_divergence2: mean(t log(t/p) - t + p), t, p clipped to [1e-7, 1].
    x = np.array([[0.0, 0.5, 1.0, 0.2]])
    x_hat = np.array([[0.3, 0.0, 1.5, 0.2]])
    t, p = np.clip(x, 1e-7, 1), np.clip(x_hat, 1e-7, 1)
    want = np.mean(t * np.log(t / p) - t + p, axis=-1)
    np.testing.assert_allclose(_numpy(ik.IDivergence(clip=True).call(x, x_hat)), want, rtol=RTOL)
    want1 = np.mean(p * np.log(p / t) - p + t, axis=-1)
    np.testing.assert_allclose(_numpy(ik.ReverseIDivergence(clip=True).call(x, x_hat)), want1, rtol=RTOL)


def _autodiff(loss, x, x_hat):
    """Gradient of sum(loss.call(x, x_hat)) with respect to x_hat, by the backend's autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x_hat_t = tf.constant(x_hat)
        with tf.GradientTape() as tape:
            tape.watch(x_hat_t)
            value = tf.reduce_sum(loss.call(tf.constant(x), x_hat_t))
        return tape.gradient(value, x_hat_t).numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        return np.asarray(jax.grad(lambda h: jnp.sum(loss.call(jnp.asarray(x), h)))(jnp.asarray(x_hat)))
    pytest.skip(f"no autodiff helper for backend {backend}")


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("beta", BETAS)
def test_gradient_autodiff_equals_reference(beta, clip):
    x, _ = _pair(seed=4, zeros=False)
    rng = np.random.default_rng(5)
    x_hat = rng.uniform(0.05, 0.95, x.shape)  # inside the clip range, away from its edges
    grad = _autodiff(ik.BetaDivergence(beta, clip=clip), x, x_hat)
    want = ref.beta_divergence_grad(x, x_hat, beta, clip=clip) / x.shape[-1]  # mean over pixels
    np.testing.assert_allclose(grad, want, rtol=RTOL, atol=1e-12)


def test_reverse_i_divergence_gradient_equals_reference():
    x, _ = _pair(seed=6, zeros=False)
    x_hat = np.random.default_rng(7).uniform(0.05, 0.95, x.shape)
    for clip in (False, True):
        grad = _autodiff(ik.ReverseIDivergence(clip=clip), x, x_hat)
        want = ref.reverse_i_divergence_grad(x, x_hat, clip=clip) / x.shape[-1]
        np.testing.assert_allclose(grad, want, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("beta", [0.5, 1.0, 1.5, 2.0, 3.0])
def test_exact_gradients_are_never_nan_at_zeros(beta):
    # Zeros in the data and in the output: the value may be inf, the gradient must not be NaN,
    # and where both arguments are positive it must equal the reference.
    x, x_hat = _pair(seed=8)
    grad = _autodiff(ik.BetaDivergence(beta), x, x_hat)
    assert not np.any(np.isnan(grad))
    interior = (x > 0) & (x_hat > 0)
    want = ref.beta_divergence_grad(x, x_hat, beta) / x.shape[-1]
    np.testing.assert_allclose(grad[interior], want[interior], rtol=RTOL, atol=1e-12)


def test_clipped_gradient_is_zero_outside_the_clip_range():
    x = np.full((1, 4), 0.5)
    x_hat = np.array([[1.5, 2.0, 0.4, 0.7]])
    grad = _autodiff(ik.IDivergence(clip=True), x, x_hat)
    np.testing.assert_array_equal(grad[0, :2], 0.0)
    assert np.all(grad[0, 2:] != 0.0)


def test_get_loss_names_and_errors():
    assert isinstance(ik.get_loss("mse"), keras.losses.MeanSquaredError)
    assert isinstance(ik.get_loss("i1"), ik.ReverseIDivergence)
    assert isinstance(ik.get_loss("i2"), ik.IDivergence)
    assert isinstance(ik.get_loss("IS"), ik.ItakuraSaito)
    assert ik.get_loss("i2").clip is True  # the thesis's clipping by default
    assert ik.get_loss("i2", clip=False).clip is False
    loss = ik.get_loss("beta=1.5", clip=False)
    assert isinstance(loss, ik.BetaDivergence) and loss.beta == 1.5 and loss.clip is False
    with pytest.raises(ValueError, match="valid: mse, i1, i2, half_se, is"):
        ik.get_loss("kl")
    with pytest.raises(ValueError, match="after 'beta='"):
        ik.get_loss("beta=abc")
    with pytest.raises(ValueError, match="beta must be finite"):
        ik.BetaDivergence(float("nan"))
    with pytest.raises(ValueError, match="epsilon"):
        ik.BetaDivergence(1.0, epsilon=0.0)


def test_config_round_trip_keeps_parameters():
    for loss in (ik.BetaDivergence(1.5, clip=True, epsilon=1e-6), ik.IDivergence(clip=True),
                 ik.ReverseIDivergence(), ik.ItakuraSaito(clip=True), ik.SquaredError()):
        config = keras.saving.serialize_keras_object(loss)
        assert config["registered_name"].startswith("idivkit>")
        back = keras.saving.deserialize_keras_object(config)
        assert type(back) is type(loss)
        assert (back.beta, back.clip, back.epsilon, back.name) == (loss.beta, loss.clip, loss.epsilon, loss.name)
    assert ik.BetaDivergence(0.5).get_config()["beta"] == 0.5
    assert ik.IDivergence(clip=True).get_config()["epsilon"] == EPSILON


@pytest.mark.parametrize("loss_name", ["i2", "i1", "beta=1.5"])
def test_model_with_loss_saves_and_loads(tmp_path, loss_name):
    rng = np.random.default_rng(9)
    x = rng.uniform(0, 1, (64, 16)).astype("float32")
    inputs = keras.Input(shape=(16,))
    outputs = keras.layers.Dense(16, activation="sigmoid")(keras.layers.Dense(4, activation="relu")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=ik.get_loss(loss_name))
    model.fit(x, x, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.loss) is type(model.loss) and loaded.loss.get_config() == model.loss.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert loaded.evaluate(x, x, verbose=0) == pytest.approx(model.evaluate(x, x, verbose=0), rel=1e-6)


@pytest.mark.skipif(os.environ.get("IDIVKIT_BACKEND_SUBPROCESS") == "1", reason="already in the subprocess")
@pytest.mark.slow
def test_whole_file_on_jax_backend_in_subprocess():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: the JAX-backend run of these tests is skipped")
    if keras.backend.backend() == "jax":
        pytest.skip("this process already runs the JAX backend")
    # float64 references need x64 (JAX computes in float32 otherwise).
    env = dict(os.environ, KERAS_BACKEND="jax", IDIVKIT_BACKEND_SUBPROCESS="1", JAX_PLATFORMS="cpu",
               JAX_ENABLE_X64="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(Path(__file__))],
        env=env, capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
