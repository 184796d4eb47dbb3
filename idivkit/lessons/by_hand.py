"""Lesson 05 (training by hand): reference minibatches, training loop and optimizer steps, the
checks of the learner's versions, Keras 3's optimizers on recorded gradient sequences, and the
loss-curve figure.

Optimizer steps share one interface, a function over plain data (it runs in the grader's
sandbox): ``step(param, grad, state, **hyper) -> (new_param, new_state)``. ``state`` is a dict
that starts empty (``{}``) and holds whatever the rule accumulates; ``hyper`` uses Keras 3's
keyword names (``learning_rate``, ``epsilon``, ``rho``, ``beta_1``, ``beta_2``,
``initial_accumulator_value``).

The reference steps follow **Keras 3's** update rules (``keras/src/optimizers/``, Keras 3.15):
the tests compare a learner's step with what Keras 3 does to the same gradient sequence.
Those Keras trajectories are recorded in ``optimizer_reference.json`` next to this module, so
that lesson 05 never imports TensorFlow; :func:`keras_trajectories` recomputes them with Keras
(tests/test_lessons_05_06.py checks the file against it; ``python -m idivkit.lessons.by_hand``
rewrites it). Keras 2.2's different rules, which the thesis ran, are here too
(:func:`keras2_adagrad_step`, :func:`nadam_momentum`): see docs/keras-defaults.md.

Only the package's core is imported (names, grading).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..grading import assert_close, expect, numeric_array
from ..names import OPTIMIZERS

__all__ = [
    "KERAS3_DEFAULTS", "LESSON_OPTIMIZERS", "OPTIMIZER_CASES", "check_minibatches", "check_optimizer",
    "check_train", "defaults_table", "gradient_sequence", "keras2_adagrad_step", "keras2_hyper",
    "keras3_hyper", "keras_reference",
    "keras_trajectories", "nadam_momentum", "plot_loss_curves", "reference_minibatches",
    "reference_step", "reference_train",
]

#: The optimizers of the lesson: SGD (eq 24) and the five of the thesis's section 1.5.
LESSON_OPTIMIZERS = ("sgd", "adagrad", "adadelta", "adam", "adamax", "nadam")

#: Keras 3.15's defaults (the signatures of ``keras.optimizers.*``), beside
#: :data:`idivkit.names.OPTIMIZERS`' Keras 2.2 ones. tests/test_lessons_05_06.py checks them.
KERAS3_DEFAULTS = {
    "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "adagrad": {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "adadelta": {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
    "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adamax": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "nadam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
}

#: The hyper-parameters each step takes (SGD without momentum, as eq 24).
_HYPER = {
    "sgd": ("learning_rate",),
    "adagrad": ("learning_rate", "initial_accumulator_value", "epsilon"),
    "adadelta": ("learning_rate", "rho", "epsilon"),
    "adam": ("learning_rate", "beta_1", "beta_2", "epsilon"),
    "adamax": ("learning_rate", "beta_1", "beta_2", "epsilon"),
    "nadam": ("learning_rate", "beta_1", "beta_2", "epsilon"),
}


def keras2_hyper(name: str) -> dict:
    """Keras 2.2's defaults of optimizer ``name`` (the thesis's), the step's keywords only."""
    return {k: v for k, v in OPTIMIZERS[name].keras2.items() if k in _HYPER[name]}


def keras3_hyper(name: str) -> dict:
    """Keras 3's defaults of optimizer ``name``, the step's keywords only."""
    return {k: v for k, v in KERAS3_DEFAULTS[name].items() if k in _HYPER[name]}


def defaults_table() -> str:
    """Keras 2.2's defaults (the thesis) beside Keras 3's, one line per optimizer and setting."""
    lines = [f"{'optimizer':10s} {'setting':26s} {'Keras 2.2':>10s} {'Keras 3':>10s}"]
    for name in LESSON_OPTIMIZERS[1:]:
        old, new = keras2_hyper(name), keras3_hyper(name)
        for key in _HYPER[name]:
            mark = "" if old[key] == new[key] else "   <- differs"
            lines.append(f"{OPTIMIZERS[name].label:10s} {key:26s} {old[key]:>10g} {new[key]:>10g}{mark}")
    return "\n".join(lines)


# --- reference minibatches and training loop ------------------------------------------------
def reference_minibatches(n, batch_size, seed, epoch):
    """The indices of each minibatch of one epoch: a permutation of ``range(n)`` seeded by
    ``(seed, epoch)``, cut into batches of ``batch_size`` with the last, partial one kept."""
    order = np.random.default_rng([int(seed), 2, int(epoch)]).permutation(int(n))
    return [order[i:i + batch_size] for i in range(0, int(n), int(batch_size))]


def reference_train(params, x_train, x_val, objective, step, hyper, epochs, batch_size, seed, batches):
    """The lesson's training loop: returns ``(params, history)``; ``params`` is not changed.

    ``objective(params, x) -> (loss, grads)``; ``step`` as the module docstring; ``batches``
    as :func:`reference_minibatches`. ``history["loss"]``: per epoch, the mean of the batch
    losses weighted by batch size (what Keras reports); ``history["val_loss"]``: the loss on
    ``x_val`` after the epoch.
    """
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    states = {k: {} for k in params}
    history = {"loss": [], "val_loss": []}
    n = len(x_train)
    for epoch in range(epochs):
        total = 0.0
        for idx in batches(n, batch_size, seed, epoch):
            loss, grads = objective(params, x_train[idx])
            total += float(loss) * len(idx)
            for k in params:
                params[k], states[k] = step(params[k], grads[k], states[k], **hyper)
        history["loss"].append(total / n)
        history["val_loss"].append(float(objective(params, x_val)[0]))
    return params, history


# --- reference optimizer steps (Keras 3's rules, float64) -----------------------------------
def _sgd(param, grad, state, learning_rate=0.01):
    return param - learning_rate * grad, dict(state)


def _adagrad(param, grad, state, learning_rate=0.01, initial_accumulator_value=0.0, epsilon=1e-7):
    a = state.get("a", np.full_like(param, initial_accumulator_value)) + grad**2
    return param - learning_rate * grad / np.sqrt(a + epsilon), {"a": a}


def keras2_adagrad_step(param, grad, state, learning_rate=0.01, initial_accumulator_value=0.0,
                        epsilon=1e-7):
    """Keras 2.2's Adagrad (the thesis's): epsilon added *after* the square root."""
    param, grad = np.asarray(param, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    a = state.get("a", np.full_like(param, initial_accumulator_value)) + grad**2
    return param - learning_rate * grad / (np.sqrt(a) + epsilon), {"a": a}


def _adadelta(param, grad, state, learning_rate=1.0, rho=0.95, epsilon=1e-7):
    a = rho * state.get("a", np.zeros_like(param)) + (1 - rho) * grad**2
    d_acc = state.get("d", np.zeros_like(param))
    delta = -np.sqrt(d_acc + epsilon) / np.sqrt(a + epsilon) * grad
    d_acc = rho * d_acc + (1 - rho) * delta**2
    return param + learning_rate * delta, {"a": a, "d": d_acc}


def _adam(param, grad, state, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    t = state.get("t", 0) + 1
    m = state.get("m", np.zeros_like(param))
    v = state.get("v", np.zeros_like(param))
    m = m + (grad - m) * (1 - beta_1)
    v = v + (grad**2 - v) * (1 - beta_2)
    alpha = learning_rate * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    return param - m * alpha / (np.sqrt(v) + epsilon), {"t": t, "m": m, "v": v}


def _adamax(param, grad, state, learning_rate=0.002, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    t = state.get("t", 0) + 1
    m = state.get("m", np.zeros_like(param))
    m = m + (grad - m) * (1 - beta_1)
    u = np.maximum(beta_2 * state.get("u", np.zeros_like(param)), np.abs(grad))
    return param - learning_rate * m / ((1 - beta_1**t) * (u + epsilon)), {"t": t, "m": m, "u": u}


def nadam_momentum(t, beta_1=0.9, schedule_decay=1.0):
    """Dozat's warming momentum ``mu_t = beta_1 (1 - 0.96^(s t) / 2)`` at update ``t`` (1-based):
    Keras 3 fixes ``s = 1``; Keras 2.2's ``schedule_decay`` default is ``s = 0.004``."""
    return beta_1 * (1.0 - 0.5 * 0.96 ** (schedule_decay * np.asarray(t, dtype=np.float64)))


def _nadam(param, grad, state, learning_rate=0.002, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    t = state.get("t", 0) + 1
    mu_t, mu_next = nadam_momentum(t, beta_1), nadam_momentum(t + 1, beta_1)
    product = state.get("mu_product", 1.0) * mu_t
    m = state.get("m", np.zeros_like(param))
    v = state.get("v", np.zeros_like(param))
    m = m + (grad - m) * (1 - beta_1)
    v = v + (grad**2 - v) * (1 - beta_2)
    m_hat = mu_next * m / (1 - product * mu_next) + (1 - mu_t) * grad / (1 - product)
    v_hat = v / (1 - beta_2**t)
    return param - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon), \
        {"t": t, "mu_product": float(product), "m": m, "v": v}


_STEPS = {"sgd": _sgd, "adagrad": _adagrad, "adadelta": _adadelta, "adam": _adam,
          "adamax": _adamax, "nadam": _nadam}


def reference_step(name: str):
    """The course's step function of optimizer ``name`` (Keras 3's rule, in float64)."""
    if name not in _STEPS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(_STEPS)}")
    base = _STEPS[name]

    def step(param, grad, state, **hyper):
        return base(np.asarray(param, dtype=np.float64), np.asarray(grad, dtype=np.float64),
                    dict(state), **hyper)

    step.__name__ = f"reference_{name}_step"
    return step


# --- gradient sequences and Keras 3's trajectories ------------------------------------------
def gradient_sequence(shape, steps: int, seed: int):
    """``(param0, grads)``: a start ``(shape)`` and ``steps`` gradients of mixed sizes, from
    about 1e-6 (where epsilon matters, as for the thesis's per-pixel means) to 0.1, with a sign
    that flips now and then and one entry that is 0 at the first step. Deterministic."""
    rng = np.random.default_rng([int(seed), 5])
    shape = tuple(shape)
    param0 = rng.normal(size=shape)
    scales = 10.0 ** rng.uniform(-6, -1, size=shape)
    bias = rng.normal(size=shape)
    grads = np.stack([(bias + 0.7 * rng.normal(size=shape)) * scales for _ in range(steps)])
    grads.reshape(steps, -1)[0, 0] = 0.0
    return param0, grads


def _case(name, kind, shape, seed, hyper, steps=10):
    return {"id": f"{name}-{kind}", "optimizer": name, "shape": list(shape), "seed": seed,
            "steps": steps, "hyper": hyper}


def _cases():
    cases = []
    for i, name in enumerate(LESSON_OPTIMIZERS):
        keras2 = keras2_hyper(name)
        cases.append(_case(name, "keras2", (3, 4), i, keras2))
        cases.append(_case(name, "keras3", (7,), 10 + i, keras3_hyper(name)))
        other = {k: v for k, v in keras2.items()}
        other["learning_rate"] = 0.05
        if "epsilon" in other:
            other["epsilon"] = 1e-4
        if "rho" in other:
            other["rho"] = 0.8
        if "beta_1" in other:
            other.update(beta_1=0.8, beta_2=0.99)
        if "initial_accumulator_value" in other:
            other["initial_accumulator_value"] = 0.01
        cases.append(_case(name, "other", (2, 3, 2), 20 + i, other))
    return cases


#: The recorded cases: per optimizer ``<name>-keras2`` (the thesis's defaults, shape (3, 4)),
#: ``<name>-keras3`` (Keras 3's defaults, shape (7,)) and ``<name>-other`` (other settings,
#: shape (2, 3, 2)), ten steps each.
OPTIMIZER_CASES = {case["id"]: case for case in _cases()}
_FIXTURE = Path(__file__).with_name("optimizer_reference.json")
_RECORDED: dict = {}


def keras_trajectories(cases=None) -> dict:
    """Run Keras 3's optimizers (float64 variables) on each case's gradient sequence.

    Returns ``{case id: array (steps, *shape)}``: the parameter after each step. Imports Keras
    (TensorFlow by default): used to record and check the fixture, never in the lesson.
    """
    from .._quiet import import_keras

    keras = import_keras()
    out = {}
    for case in (cases or OPTIMIZER_CASES.values()):
        param0, grads = gradient_sequence(case["shape"], case["steps"], case["seed"])
        cls = getattr(keras.optimizers, OPTIMIZERS[case["optimizer"]].keras_class)
        optimizer = cls(**case["hyper"])
        variable = keras.Variable(param0, dtype="float64")
        path = []
        for grad in grads:
            optimizer.apply([keras.ops.convert_to_tensor(grad, dtype="float64")], [variable])
            path.append(np.array(variable.numpy(), dtype=np.float64))
        out[case["id"]] = np.stack(path)
    return out


def write_fixture(path=_FIXTURE) -> None:
    """Record :func:`keras_trajectories` of every case (``python -m idivkit.lessons.by_hand``)."""
    from .._quiet import import_keras

    keras = import_keras()
    data = {"keras": keras.__version__, "backend": keras.backend.backend(),
            "trajectories": {k: v.tolist() for k, v in keras_trajectories().items()}}
    Path(path).write_text(json.dumps(data, indent=0) + "\n", encoding="utf-8")


def keras_reference(case_id: str) -> np.ndarray:
    """Keras 3's recorded trajectory of one case, shape ``(steps, *shape)``."""
    if not _RECORDED:
        _RECORDED.update(json.loads(_FIXTURE.read_text(encoding="utf-8"))["trajectories"])
    case = OPTIMIZER_CASES[case_id]
    return np.asarray(_RECORDED[case_id], dtype=np.float64).reshape(case["steps"], *case["shape"])


# --- checks of the learner's functions --------------------------------------------------------
_HINTS = {
    "sgd": "eq 24: param - learning_rate * grad",
    "adagrad": "Keras 3 adds g^2 to the accumulator first (which starts at initial_accumulator_value), "
               "then divides by sqrt(accumulator + epsilon): epsilon inside the square root",
    "adadelta": "update the running mean of g^2 first, then the step -sqrt(d + eps) / sqrt(a + eps) * g "
                "with d the running mean of past squared steps *before* this step, then d, then "
                "param + learning_rate * step",
    "adam": "t counts steps from 1; m and v are running means (m += (g - m)(1 - beta_1)); the bias "
            "correction learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t) multiplies m / (sqrt(v) + eps)",
    "adamax": "u = max(beta_2 u, |g|) (no square); the step is learning_rate * m / ((1 - beta_1^t)(u + eps))",
    "nadam": "mu_t = beta_1 (1 - 0.96^t / 2) and mu_{t+1}; keep the product of mu_1..mu_t in the state; "
             "m_hat = mu_{t+1} m / (1 - prod_t mu_{t+1}) + (1 - mu_t) g / (1 - prod_t); v_hat = v / (1 - beta_2^t)",
}


def _call_step(step_fn, param, grad, state, hyper, *, what):
    try:
        result = step_fn(param, grad, state, **hyper)
    except NotImplementedError:
        raise AssertionError(f"{what}: not written yet (it raises NotImplementedError)") from None
    expect(isinstance(result, (tuple, list)) and len(result) == 2,
           f"{what} must return a pair (new_param, new_state), got {type(result).__name__}")
    new_param, new_state = result
    expect(isinstance(new_state, dict), f"{what} must return the new state as a dict, "
                                        f"got {type(new_state).__name__}")
    new_param = numeric_array(new_param, what)
    expect(new_param.shape == np.shape(param),
           f"{what} returned a parameter of shape {new_param.shape}; it must keep the shape of "
           f"param, {np.shape(param)} (elementwise operations only)")
    return new_param, new_state


def check_optimizer(step_fn, name: str, case_id: str | None = None, *, rtol: float = 1e-4) -> None:
    """Run the learner's ``step_fn`` over a recorded case (default ``<name>-keras2``), from an
    empty state, and compare the parameter after the first step and after each of the ten
    with Keras 3's. Raises an AssertionError that says which step and what to look at.

    Tolerance: the change from the start, ``param_k - param_0``, must agree with Keras's to
    ``rtol`` (default 1e-4) per entry, plus ``1e-6`` of the largest change (Keras keeps some
    hyper-parameters in float32, e.g. ``1 - beta_2``, so it is exact to about 1e-5 only)."""
    case = OPTIMIZER_CASES[case_id or f"{name}-keras2"]
    expect(case["optimizer"] == name, f"case {case['id']} is not for {name}")
    param0, grads = gradient_sequence(case["shape"], case["steps"], case["seed"])
    expected = keras_reference(case["id"]) - param0
    hyper = dict(case["hyper"])
    where = f"with {', '.join(f'{k}={v:g}' for k, v in hyper.items())}"
    param, state = param0.copy(), {}
    for k, grad in enumerate(grads):
        before = param.copy()
        new_param, state = _call_step(step_fn, param, grad.copy(), state, hyper,
                                      what=f"{name} step {k + 1}")
        expect(np.array_equal(param, before),
               f"{name} step {k + 1} changed `param` in place; return a new array instead")
        label = "the first step" if k == 0 else f"step {k + 1} (the first {k} agree)"
        assert_close(new_param - param0, expected[k], rtol=rtol, atol=1e-6 * np.max(np.abs(expected[k])),
                     what=f"the change of the parameter after {label} of your {name} step, {where}, "
                          f"against Keras 3's {OPTIMIZERS[name].keras_class}. Check: {_HINTS[name]}")
        param = new_param


def check_minibatches(fn, n: int, batch_size: int, seed: int) -> None:
    """Property checks of a learner's ``minibatches(n, batch_size, seed, epoch)``."""
    def call(s, e):
        try:
            out = fn(n, batch_size, s, e)
        except NotImplementedError:
            raise AssertionError("minibatches: not written yet (it raises NotImplementedError)") from None
        expect(isinstance(out, (list, tuple)), f"minibatches must return a list of index arrays, "
                                               f"got {type(out).__name__}")
        return [numeric_array(b, "a minibatch of indices") for b in out]

    first = call(seed, 0)
    sizes = [len(b) for b in first]
    want = -(-n // batch_size)
    expect(len(first) == want or len(first) != n // batch_size or n % batch_size == 0,
           f"minibatches({n}, {batch_size}, ...) drops the last, partial batch: keep it "
           f"(the thesis's Keras run did), so every image is used once per epoch")
    expect(len(first) == want, f"minibatches({n}, {batch_size}, ...) returned {len(first)} batches; "
                               f"{n} images in batches of at most {batch_size} make ceil(n / batch_size)")
    expect(all(s == batch_size for s in sizes[:-1]) and 0 < sizes[-1] <= batch_size,
           f"batch sizes {sizes[:3]}...{sizes[-2:]}: every batch but the last must hold batch_size indices")
    flat = np.concatenate(first)
    expect(np.issubdtype(flat.dtype, np.integer), "the batches must hold integer indices")
    expect(np.array_equal(np.sort(flat), np.arange(n)),
           "the batches of one epoch must use every index 0..n-1 exactly once")
    if n > 2:
        expect(not np.array_equal(flat, np.arange(n)), "the order is not shuffled")
    again = np.concatenate(call(seed, 0))
    expect(np.array_equal(flat, again), "the same (seed, epoch) must give the same batches (seed the "
                                        "generator from seed and epoch, not from the clock)")
    if n > 3:
        expect(not np.array_equal(flat, np.concatenate(call(seed, 1))),
               "epoch 0 and epoch 1 give the same order: shuffle again each epoch (use the epoch in the seed)")
        expect(not np.array_equal(flat, np.concatenate(call(seed + 1, 0))),
               "seed and seed + 1 give the same order: the order must depend on the seed")


def check_train(train_fn, params, x_train, x_val, objective, step, hyper, *, epochs, batch_size,
                seed, batches=reference_minibatches, rtol=1e-9) -> None:
    """Compare a learner's ``train`` with :func:`reference_train` on the same references
    (``objective``, ``step``, ``batches``), saying what differs: the caller's params changed,
    the history's layout, the epoch loss's weighting, the parameters."""
    originals = {k: np.array(v, copy=True) for k, v in params.items()}
    try:
        result = train_fn(params, x_train, x_val, objective, step, hyper, epochs, batch_size, seed,
                          batches)
    except NotImplementedError:
        raise AssertionError("train: not written yet (it raises NotImplementedError)") from None
    expect(all(np.array_equal(params[k], originals[k]) for k in params),
           "train changed the caller's params in place: copy them first ({k: v.copy() ...})")
    expect(isinstance(result, (tuple, list)) and len(result) == 2,
           f"train must return (params, history), got {type(result).__name__}")
    mine, history = result
    ref_params, ref_history = reference_train(originals, x_train, x_val, objective, step, hyper,
                                              epochs, batch_size, seed, batches)
    expect(isinstance(mine, dict) and set(mine) == set(params),
           f"train must return the parameters as a dict with keys {sorted(params)}")
    expect(isinstance(history, dict) and set(history) >= {"loss", "val_loss"},
           'the history must be a dict with lists "loss" and "val_loss"')
    for key in ("loss", "val_loss"):
        expect(len(history[key]) == epochs,
               f'history["{key}"] has {len(history[key])} entries for {epochs} epochs: one per epoch')
    assert_close(history["val_loss"], ref_history["val_loss"], rtol=rtol, atol=1e-12,
                 what='history["val_loss"] (the loss on x_val after each epoch)')
    assert_close(history["loss"], ref_history["loss"], rtol=rtol, atol=1e-12,
                 what='history["loss"] (per epoch, the mean loss over all training images, measured '
                      'during the epoch: weight each batch\'s loss by its size, since the last batch is smaller)')
    for k in sorted(params):
        assert_close(mine[k], ref_params[k], rtol=rtol, atol=1e-12,
                     what=f'the trained params["{k}"] (each update: one step per parameter array, '
                          "with that array's own state)")


# --- figures -----------------------------------------------------------------------------------
def plot_loss_curves(histories: dict, *, title: str = "", ax=None, key: str = "val_loss"):
    """One line per run: ``histories`` maps a label to a history dict; plots ``key`` per epoch
    on a log scale, white background (readable in a dark theme). Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.8), facecolor="white")
    ax.set_facecolor("white")
    styles = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("P", "--")]
    for k, (label, history) in enumerate(histories.items()):
        values = history[key]
        marker, line = styles[k % len(styles)]
        ax.plot(np.arange(1, len(values) + 1), values, marker=marker, ls=line, ms=4, label=label)
    ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch", fontsize=10)
    ax.set_ylabel(r"validation loss $E_{I2}$ (mean per pixel)" if key == "val_loss" else key, fontsize=10)
    ax.tick_params(labelsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)
    return ax


if __name__ == "__main__":  # pragma: no cover
    write_fixture()
    print(f"wrote {_FIXTURE}")
