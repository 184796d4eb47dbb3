"""The thesis's Keras autoencoder, its optimizers, and a seeded, repeatable trainer.

* :func:`build_autoencoder` -- ``Input(784) -> Dense(32, relu) -> Dense(784, relu|sigmoid)``.
* :func:`make_optimizer` -- the seven optimizers with Keras 2.2 (the thesis's) or Keras 3 defaults.
* :func:`train` -- one configuration, plain Keras ``fit`` on the JIT-compiled model.
* :func:`idivkit.grid.train_grid` (re-exported here) -- many configurations at once.

Repeatability: the initial weights are drawn with numpy from the seed (glorot-uniform, zero
biases), so every backend starts from the same numbers, and the batches come from a seeded
numpy permutation per epoch (:func:`epoch_permutation`), shared by :func:`train` and the grid.

Speed: Keras's default ``fit`` of this tiny model is dominated by per-step overhead (Python,
tf.data, callbacks). :func:`train` compiles the step with XLA (``jit_compile=True``) and runs
a whole epoch per call (``steps_per_execution`` = steps per epoch). Everything uses Keras APIs
and ``keras.ops`` only, so it runs on the TensorFlow and the JAX backends.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np

from .keras import get_loss
from ._results import OPTIMIZER_NAMES, GridConfig, TrainResult, validate_data

__all__ = [
    "DECODERS",
    "OPTIMIZERS",
    "KERAS2_DEFAULTS",
    "GridConfig",
    "TrainResult",
    "build_autoencoder",
    "initial_weights",
    "epoch_permutation",
    "make_optimizer",
    "train",
    "train_grid",
]

DECODERS = ("relu", "sigmoid")
INPUT_DIM = 784

#: Keras 2.2 defaults (the thesis's runs; thesis-notes section 2). ``epsilon=None`` was 1e-7.
KERAS2_DEFAULTS = {
    "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "rmsprop": {"learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-7},
    "adagrad": {"learning_rate": 0.01, "initial_accumulator_value": 0.0, "epsilon": 1e-7},
    "adadelta": {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7},
    "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adamax": {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "nadam": {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
}
OPTIMIZERS = OPTIMIZER_NAMES
assert set(OPTIMIZERS) == set(KERAS2_DEFAULTS)
_OPTIMIZER_CLASSES = {
    "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adadelta": "Adadelta",
    "adam": "Adam", "adamax": "Adamax", "nadam": "Nadam",
}


def initial_weights(seed: int = 0, code_dim: int = 32, input_dim: int = INPUT_DIM) -> list:
    """Glorot-uniform kernels and zero biases, drawn with numpy from ``seed``.

    Returns ``[W_enc (input_dim, code_dim), b_enc, W_dec (code_dim, input_dim), b_dec]`` in
    float32, Keras's ``get_weights()`` order. The same on every backend; independent of the
    decoder and the loss, so all configurations of one seed start from the same point.
    """
    rng = np.random.default_rng([int(seed), 1])
    limit = math.sqrt(6.0 / (input_dim + code_dim))  # glorot-uniform, fan_in + fan_out
    w_enc = rng.uniform(-limit, limit, (input_dim, code_dim)).astype(np.float32)
    w_dec = rng.uniform(-limit, limit, (code_dim, input_dim)).astype(np.float32)
    return [w_enc, np.zeros(code_dim, np.float32), w_dec, np.zeros(input_dim, np.float32)]


def build_autoencoder(code_dim: int = 32, decoder: str = "relu", input_dim: int = INPUT_DIM,
                      seed: int = 0) -> keras.Model:
    """The thesis's autoencoder ``Input(784) -> Dense(code_dim, relu) -> Dense(784, decoder)``.

    Kernels glorot-uniform from ``seed`` (:func:`initial_weights`), biases zero. ``decoder``
    is ``"relu"`` or ``"sigmoid"`` (the standard ``1/(1+exp(-u))``). Used in lesson 01.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    if int(code_dim) < 1:
        raise ValueError(f"code_dim must be a positive integer, got {code_dim!r}")
    inputs = keras.Input(shape=(input_dim,), name="image")
    code = keras.layers.Dense(code_dim, activation="relu", name="encoder")(inputs)
    outputs = keras.layers.Dense(input_dim, activation=decoder, name="decoder")(code)
    model = keras.Model(inputs, outputs, name=f"autoencoder_{decoder}")
    model.set_weights(initial_weights(seed, code_dim, input_dim))
    return model


def make_optimizer(name: str, defaults: str = "keras2", **overrides):
    """A Keras 3 optimizer by name with the thesis's Keras 2.2 defaults or Keras 3's own.

    Parameters
    ----------
    name : {"sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam"}
    defaults : {"keras2", "keras3"}
        ``"keras2"``: :data:`KERAS2_DEFAULTS` (Adagrad lr 0.01 and accumulator 0, Adadelta
        lr 1.0, Adamax and Nadam lr 0.002, epsilon 1e-7). ``"keras3"``: Keras 3's defaults.
        Keras 3 has no Nadam ``schedule_decay`` (its momentum schedule is built in) and puts
        Adagrad's epsilon inside the square root: the algorithms are close, not identical.
    **overrides
        Any keyword of the Keras class (``learning_rate=...``), applied last.
    """
    key = str(name).strip().lower()
    if key not in KERAS2_DEFAULTS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    if defaults not in ("keras2", "keras3"):
        raise ValueError(f"defaults must be 'keras2' or 'keras3', got {defaults!r}")
    kwargs = dict(KERAS2_DEFAULTS[key]) if defaults == "keras2" else {}
    kwargs.update(overrides)
    return getattr(keras.optimizers, _OPTIMIZER_CLASSES[key])(**kwargs)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` training images in ``epoch`` (0-based) for ``seed``.

    Drawn with numpy, independent of the backend; :func:`train` and the grid use it, so a
    configuration sees the same batches alone and in a grid.
    """
    return np.random.default_rng([int(seed), 2, int(epoch)]).permutation(n)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


class _EpochData:
    """The training images in the order of :func:`epoch_permutation`, one epoch at a time.

    Reuses one buffer (``np.take(..., out=)``): a fresh 188 MB copy per epoch costs more in
    page faults than the gather itself. Keras's ``fit`` has returned before the next epoch
    overwrites it.
    """

    def __init__(self, x, seed):
        self.x, self.seed = x, int(seed)
        self.buffer = np.empty_like(x)

    def epoch(self, epoch: int) -> np.ndarray:
        np.take(self.x, epoch_permutation(len(self.x), self.seed, epoch), axis=0, out=self.buffer)
        return self.buffer


def train(x_train, x_val=None, *, loss, decoder, optimizer, epochs: int = 50,
          batch_size: int = 256, seed: int = 0, code_dim: int = 32,
          optimizer_defaults: str = "keras2", optimizer_options: dict | None = None,
          clip: bool = True, progress: bool = True, jit_compile: bool = True) -> TrainResult:
    """Train one configuration of the thesis's autoencoder, seeded and repeatable.

    Parameters
    ----------
    x_train : ndarray, shape (N, 784)
        Training images in [0, 1] (targets = inputs).
    x_val : ndarray, shape (M, 784), optional
        Validation images; their loss is reported per epoch as ``"val_loss"``.
    loss : str
        A name of :func:`idivkit.keras.get_loss` (``"mse"``, ``"i1"``, ``"i2"``, ...).
    decoder : {"relu", "sigmoid"}
    optimizer : str
        A name of :func:`make_optimizer`; ``optimizer_options`` are passed on as overrides.
    epochs, batch_size, seed, code_dim
        As the thesis: 50 epochs, batches of 256, 32 code units.
    optimizer_defaults : {"keras2", "keras3"}
    clip : bool
        Clip the divergences' arguments to ``[1e-7, 1]`` (the thesis's code; default).
    progress : bool
        Show a tqdm bar over epochs with the current losses.

    Returns
    -------
    TrainResult
        ``history`` ({"loss": [...], "val_loss": [...]}, per epoch, as Keras reports them:
        the batch-size-weighted mean of the batch losses during the epoch; the validation
        loss after it), ``model``, ``seconds`` (wall time, compilation included) and
        ``seconds_per_epoch``.
    """
    config = GridConfig(decoder, loss, optimizer)
    x_train, x_val = validate_data(x_train, x_val)
    _check_schedule(epochs, batch_size)
    keras.utils.set_random_seed(int(seed))
    model = build_autoencoder(code_dim, decoder, x_train.shape[1], seed)
    steps = steps_per_epoch(len(x_train), batch_size)
    model.compile(optimizer=make_optimizer(optimizer, optimizer_defaults, **(optimizer_options or {})),
                  loss=get_loss(loss, clip=clip), jit_compile=jit_compile, steps_per_execution=steps)
    history = {"loss": []} if x_val is None else {"loss": [], "val_loss": []}
    epoch_seconds = []
    bar = _progress(epochs, f"train {config.key}", progress)
    data = _EpochData(x_train, seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        x_epoch = data.epoch(epoch)
        logs = model.fit(x_epoch, x_epoch, batch_size=batch_size, epochs=1, shuffle=False,
                         verbose=0).history
        history["loss"].append(float(logs["loss"][-1]))
        if x_val is not None:
            val = model.evaluate(x_val, x_val, batch_size=batch_size, verbose=0, return_dict=True)
            history["val_loss"].append(float(val["loss"]))
        epoch_seconds.append(time.perf_counter() - t0)
        _advance(bar, history)
    if bar is not None:
        bar.close()
    return TrainResult(config=config, seed=int(seed), history=history,
                       seconds=time.perf_counter() - start, seconds_per_epoch=epoch_seconds,
                       weights=model.get_weights(), code_dim=code_dim, epochs=epochs,
                       batch_size=batch_size, optimizer_defaults=optimizer_defaults,
                       clip=clip, backend=keras.backend.backend(), model=model)


def _check_schedule(epochs, batch_size):
    if int(epochs) < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _progress(total, desc, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="epoch")


def _advance(bar, history):
    if bar is not None:
        bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.items()}, refresh=False)
        bar.update(1)


from .grid import THESIS_GRID, thesis_grid, train_grid  # noqa: E402  (grid builds on the helpers above)
