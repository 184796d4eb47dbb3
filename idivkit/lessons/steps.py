"""Lessons 00-04: fair step-by-step grading and readable figures.

* :func:`reference_steps` -- the course's own version of a step a later exercise builds on.
  A later exercise takes its earlier steps as keyword arguments (defaulting to the learner's
  own); its test hands in these references instead, so that a mistake in an earlier step costs
  the points of that step only.
* :func:`call_step` -- call a learner's function in a visible test; when it raises (numpy's
  raw ``matmul`` error for a transposed matrix, say), say which shapes went in and what to
  check, instead of a bare traceback.
* :func:`check_shape` -- the first check of a result: its shape, with a message naming what
  each axis should be and the usual cause (a wrong ``axis=``, a transpose).
* :func:`course_style` -- matplotlib settings for the lessons: an opaque white figure
  background (readable in JupyterLab's dark theme), no font below 9 pt, LaTeX-style labels.

Only the package's core is imported (numerics, losses, backprop).
"""

from __future__ import annotations

import numpy as np

__all__ = ["reference_steps", "call_step", "check_shape", "course_style", "shortcuts"]


def _relu(u):
    return np.maximum(np.asarray(u, dtype=np.float64), 0.0)


def _relu_derivative(u):
    return (np.asarray(u) > 0).astype(np.float64)


def _sigmoid(u):
    from ..backprop.layers import sigmoid_forward

    return sigmoid_forward(np.asarray(u, dtype=np.float64))


def _sigmoid_derivative(u):
    s = _sigmoid(u)
    return s * (1.0 - s)


def _encode(x, W, b):
    from ..backprop.layers import dense_forward

    return dense_forward(np.asarray(x), np.asarray(W), np.asarray(b))


def _loss_derivative(x, x_hat, loss):
    """dE/dx_hat of the summed loss: "mse" is eq 30's half squared error (lesson 04)."""
    from ..backprop.objective import loss_grad

    with np.errstate(divide="ignore", invalid="ignore"):
        return loss_grad(np.asarray(x, dtype=np.float64), np.asarray(x_hat, dtype=np.float64), loss)


def _output_delta(x, u_tilde, loss, decoder, **_ignored):
    from ..backprop import output_delta
    from ..backprop.layers import get_activation

    u_tilde = np.asarray(u_tilde, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return output_delta(x, get_activation(decoder).forward(u_tilde), u_tilde, loss, decoder)


def _code_delta(delta3, W_tilde, u, **_ignored):
    return (np.asarray(delta3) @ np.asarray(W_tilde)) * _relu_derivative(u)


def _i_divergence(x, x_hat, clip=False):
    from .. import losses

    return losses.i_divergence(x, x_hat, reduction="none", clip=clip)


_STEPS = {
    "encode": _encode,
    "relu": _relu,
    "relu_derivative": _relu_derivative,
    "sigmoid": _sigmoid,
    "sigmoid_derivative": _sigmoid_derivative,
    "loss_derivative": _loss_derivative,
    "output_delta": _output_delta,
    "code_delta": _code_delta,
    "i_divergence": _i_divergence,
}


def reference_steps(*names: str) -> dict:
    """The course's reference for each named step, as keyword arguments for a later step:
    ``output_delta(x, u, "i1", "sigmoid", **reference_steps("loss_derivative", "decoders"))``.

    Names: ``encode``, ``relu``, ``relu_derivative``, ``sigmoid``, ``sigmoid_derivative``
    (lessons 01, 04), ``decoders`` (lesson 04: ``{"relu": (relu, relu_derivative), "sigmoid":
    (sigmoid, sigmoid_derivative)}``), ``loss_derivative``, ``output_delta``, ``code_delta``
    (lesson 04), ``i_divergence`` (lesson 03). Lessons 01, 03, 04."""
    out = {}
    for name in names:
        if name == "decoders":
            out[name] = {"relu": (_relu, _relu_derivative), "sigmoid": (_sigmoid, _sigmoid_derivative)}
        elif name in _STEPS:
            out[name] = _STEPS[name]
        else:
            raise ValueError(f"no reference step {name!r}; known: {sorted([*_STEPS, 'decoders'])}")
    return out


def _shapes(args) -> str:
    parts = []
    for value in args:
        shape = np.shape(value) if isinstance(value, (np.ndarray, list, tuple, float, int)) else None
        parts.append(str(shape) if shape is not None else type(value).__name__)
    return ", ".join(parts)


def call_step(fn, *args, what: str, hint: str = "", **kwargs):
    """``fn(*args, **kwargs)``; if the learner's ``fn`` raises, an AssertionError that names
    the error, the shapes of the arguments and ``hint`` (what to check), never a traceback of
    numpy internals. Lessons 00-04."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(f"{what}: not written yet (it raises NotImplementedError)") from None
    except Exception as error:  # noqa: BLE001  (the learner's code may raise anything)
        name = getattr(error, "ename", type(error).__name__)
        text = str(getattr(error, "evalue", error)).strip().splitlines()
        detail = f" ({text[-1][:200]})" if text else ""
        raise AssertionError(f"{what} raised {name} for arguments of shapes {_shapes(args)}"
                             + (f": {hint}" if hint else "") + (f". {name}{detail}" if detail else "")) from None


def check_shape(result, expected_shape, *, what: str, meaning: str = "", hint: str = ""):
    """``result`` as a numpy array of ``expected_shape``; else an AssertionError naming the
    shape found, the shape wanted and what its axes mean (``meaning``, e.g. "(N, J): one row of
    J code inputs per sample") and ``hint`` (the usual cause). A transposed result is named as
    such. Returns the array. Lessons 00-04."""
    if result is None:
        raise AssertionError(f"{what} is None: did you forget to `return` it?")
    try:
        array = np.asarray(result)
    except Exception:  # noqa: BLE001
        raise AssertionError(f"{what} could not be read as an array (got {type(result).__name__})") from None
    expected_shape = tuple(expected_shape)
    if array.shape == expected_shape:
        return array
    wanted = f"{expected_shape}" + (f" = {meaning}" if meaning else "")
    if array.ndim == 2 and array.shape[::-1] == expected_shape:
        cause = "it is transposed (rows and columns swapped): check the order of the matrix product and .T"
    elif array.ndim < len(expected_shape):
        cause = "an axis is missing: did you reduce over the wrong axis (axis=...)?"
    elif array.ndim > len(expected_shape):
        cause = "it has an extra axis: check reshapes and broadcasting"
    else:
        cause = "check which axis is which"
    raise AssertionError(f"{what} has shape {array.shape}, expected {wanted}; {cause}"
                         + (f" ({hint})" if hint else ""))


def course_style() -> None:
    """Figures for the lessons: opaque white background and dark text (readable in
    JupyterLab's dark theme, whose inline figures are otherwise transparent), fonts of 9 pt
    or more, mathtext for labels written as ``$...$``. Call once after importing pyplot."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.facecolor": "white", "savefig.facecolor": "white", "axes.facecolor": "white",
        "text.color": "black", "axes.labelcolor": "black", "xtick.color": "black",
        "ytick.color": "black", "axes.edgecolor": "black",
        "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9,
        "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 11,
        "mathtext.fontset": "cm",
    })


def shortcuts() -> tuple:
    """Library functions that compute a step the learner must write (scipy's ``kl_div``,
    ``rel_entr``, ``xlogy``, ``xlog1py``, ``entr``, ``scipy.stats.entropy``, scikit-learn's
    ``_beta_divergence``), as objects for ``check_independent(fn, references=shortcuts())``:
    numpy ufuncs carry no module name, so only the objects themselves can be recognised.
    The grader forbids the same names in its own static check. Lessons 02-03."""
    found = []
    try:
        import scipy.special as special
        import scipy.stats as stats

        found += [special.kl_div, special.rel_entr, special.xlogy, special.xlog1py, special.entr, stats.entropy]
    except ImportError:  # pragma: no cover - scipy is a dependency of the course
        pass
    # By name: scikit-learn's functions carry their module (importing sklearn here would cost
    # seconds in every learner's kernel).
    found.append("sklearn.decomposition._nmf._beta_divergence")
    return tuple(found)
