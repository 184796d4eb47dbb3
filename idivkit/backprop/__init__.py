"""Backpropagation by hand for the thesis's autoencoder, and a gradient checker (lesson 04).

* :mod:`.layers`    dense, ReLU and sigmoid layers, forward next to backward
* :mod:`.objective` :func:`loss_value` and :func:`loss_grad` (dE/dx_hat), from idivkit.losses
* :mod:`.network`   :func:`forward`, :func:`output_delta`, :func:`gradients`, :func:`init_params`
* :mod:`.gradcheck` :func:`gradient_check`, :func:`numerical_gradient`, :func:`relative_error`
"""

from .gradcheck import GradientReport, gradient_check, numerical_gradient, relative_error
from .layers import RELU, SIGMOID, Activation, sigmoid_forward
from .network import check_inputs, forward, gradients, init_params, output_delta
from .objective import LOSSES, REDUCTIONS, loss_grad, loss_value

__all__ = [
    "Activation", "GradientReport", "LOSSES", "RELU", "REDUCTIONS", "SIGMOID", "check_inputs",
    "forward", "gradient_check", "gradients", "init_params", "loss_grad", "loss_value",
    "numerical_gradient", "output_delta", "relative_error", "sigmoid_forward",
]
