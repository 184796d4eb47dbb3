"""The thesis's model: ``Input(784) -> Dense(32, relu) -> Dense(784, relu|sigmoid)``, and its
initial weights, drawn with numpy so that every backend starts from the same numbers.

References
----------
.. [1] T. Haruguchi, "Autoencoder with New Loss Functions", section 2.5 (the Keras model).
.. [2] X. Glorot and Y. Bengio, "Understanding the difficulty of training deep feedforward
   neural networks", AISTATS 2010 (glorot-uniform, Keras's default initialiser).
"""

from __future__ import annotations

import math

import numpy as np

from .._numerics import check_choice, check_positive_int
from .._quiet import import_keras
from ..names import DECODERS

__all__ = ["INPUT_DIM", "build_autoencoder", "initial_weights"]

INPUT_DIM = 784


def initial_weights(seed: int = 0, code_dim: int = 32, input_dim: int = INPUT_DIM) -> list:
    """Glorot-uniform kernels and zero biases, drawn with numpy from ``seed``.

    Parameters
    ----------
    seed : int, default 0
    code_dim : int, default 32
    input_dim : int, default 784

    Returns
    -------
    list of ndarray
        ``[W_enc (input_dim, code_dim), b_enc, W_dec (code_dim, input_dim), b_dec]``, float32,
        Keras's ``get_weights()`` order. Independent of the decoder and the loss, so all
        configurations of one seed start from the same point.
    """
    code_dim = check_positive_int(code_dim, "code_dim")
    input_dim = check_positive_int(input_dim, "input_dim")
    rng = np.random.default_rng([int(seed), 1])
    limit = math.sqrt(6.0 / (input_dim + code_dim))  # glorot-uniform, fan_in + fan_out
    w_enc = rng.uniform(-limit, limit, (input_dim, code_dim)).astype(np.float32)
    w_dec = rng.uniform(-limit, limit, (code_dim, input_dim)).astype(np.float32)
    return [w_enc, np.zeros(code_dim, np.float32), w_dec, np.zeros(input_dim, np.float32)]


def build_autoencoder(code_dim: int = 32, decoder: str = "relu", input_dim: int = INPUT_DIM,
                      seed: int = 0):
    """The thesis's autoencoder ``Input(784) -> Dense(code_dim, relu) -> Dense(784, decoder)``.

    Parameters
    ----------
    code_dim : int, default 32
    decoder : {"relu", "sigmoid"}, default "relu"
        The decoder's activation (the standard sigmoid ``1/(1+exp(-u))``).
    input_dim : int, default 784
    seed : int, default 0
        Initial weights: :func:`initial_weights` of this seed.

    Returns
    -------
    keras.Model
    """
    decoder = check_choice(decoder, "decoder", DECODERS)
    code_dim = check_positive_int(code_dim, "code_dim")
    keras = import_keras()
    inputs = keras.Input(shape=(input_dim,), name="image")
    code = keras.layers.Dense(code_dim, activation="relu", name="encoder")(inputs)
    outputs = keras.layers.Dense(input_dim, activation=decoder, name="decoder")(code)
    model = keras.Model(inputs, outputs, name=f"autoencoder_{decoder}")
    model.set_weights(initial_weights(seed, code_dim, input_dim))
    return model
