"""Layers of the thesis's autoencoder, each forward step next to its backward step.

Row convention: a minibatch has shape ``(N, features)``, one sample per row, so the thesis's
``u = W x`` (eq 11) reads ``u = x W^T + b`` here. No layer keeps state: a backward step
takes the forward step's inputs and outputs as arguments.

Errata applied (docs/errata.md): the sigmoid is the standard ``1/(1+exp(-u))`` (eq 28
prints ``exp(u)``); ReLU is ``max(u, 0)`` with derivative 1 for ``u > 0``, else 0 (eq 35).

Used in lesson 04.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..names import DECODERS as DECODER_NAMES

# --- Layers: forward and backward side by side -------------------------------------------


def dense_forward(z, weight, bias):
    """Total input of a layer: eq 11 ``u = W x`` (encoder) or eq 13 ``u~ = W~ y`` (decoder);
    the bias is the thesis's column 0 (eqs 8 and 10)."""
    return z @ weight.T + bias


def dense_backward(z, weight, delta):
    """Backward step of :func:`dense_forward` for deltas ``delta = dE/du`` of shape (N, out).

    Returns ``(dE/dz, dE/dW, dE/db)``: ``dE/dz = delta W`` (the sum over k of eqs 46-47),
    ``dE/dW_jd = sum_n delta_j z_d`` (eqs 50-51 summed over the minibatch as in eqs 77-78).
    """
    return delta @ weight, delta.T @ z, delta.sum(axis=0)


class Activation(NamedTuple):
    """An elementwise activation: ``forward(u) -> out`` and ``backward(u, out, grad_out) ->
    dE/du``. Pass one as ``decoder`` to try another activation (e.g. the thesis's misprinted
    sigmoid) through the same code and the same gradient check."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _pass_where(local_derivative, grad_out):
    """``grad_out * local_derivative``, but 0 where the local derivative is 0: a unit that
    passes no gradient passes none even from an infinite loss (eqs 45 and 58), never NaN."""
    with np.errstate(invalid="ignore"):
        return np.where(local_derivative == 0, 0.0, grad_out * local_derivative)


def relu_forward(u):
    """ReLU ``max(u, 0)`` (eqs 12 and 27; the derivative at the kink u = 0 is taken as 0)."""
    return np.maximum(u, 0.0)


def relu_backward(u, out, grad_out):
    """Eq 35: the derivative is 1 for ``u > 0`` and 0 otherwise (the sets I and H of eqs
    36-37); so deltas vanish for inactive units (eqs 45, 49, 53, 55, 58, 60, 62, 64)."""
    return _pass_where((u > 0).astype(grad_out.dtype), grad_out)


def sigmoid_forward(u):
    """Standard sigmoid ``1/(1+exp(-u))`` (eq 28 corrected), evaluated without overflow:
    ``exp(-|u|)`` never exceeds 1."""
    e = np.exp(-np.abs(u))
    return np.where(u >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_backward(u, out, grad_out):
    """``d sigma/du = sigma (1 - sigma)`` (the factor in eqs 65 and 71)."""
    return _pass_where(out * (1.0 - out), grad_out)


RELU = Activation("relu", relu_forward, relu_backward)
SIGMOID = Activation("sigmoid", sigmoid_forward, sigmoid_backward)
#: The decoders of :data:`idivkit.names.DECODERS` (a name without an activation fails here).
DECODERS = {name: {"relu": RELU, "sigmoid": SIGMOID}[name] for name in DECODER_NAMES}


def get_activation(decoder) -> Activation:
    """The :class:`Activation` named by ``decoder`` ("relu" or "sigmoid"), or ``decoder``
    itself if it is one; ValueError otherwise."""
    if isinstance(decoder, Activation):
        return decoder
    if not isinstance(decoder, str) or decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {tuple(DECODERS)} or an Activation, got {decoder!r}")
    return DECODERS[decoder]
