"""Train one configuration of the thesis's autoencoder, seeded and repeatable.

Speed: Keras's default ``fit`` of this tiny model is dominated by per-step overhead (Python,
tf.data, callbacks). :func:`train` compiles the step with XLA (``jit_compile=True``) and runs
a whole epoch per call (``steps_per_execution`` = steps per epoch). Everything uses Keras APIs
and ``keras.ops`` only, so it runs on the TensorFlow and the JAX backends.
"""

from __future__ import annotations

import time

from .._quiet import import_keras
from .loop import EpochData, check_schedule, progress_bar, quiet_retracing, steps_per_epoch, validate_data
from .model import build_autoencoder
from .optimizers import make_optimizer
from .result import GridConfig, TrainResult

__all__ = ["train"]


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
        A name of :data:`idivkit.names.LOSSES` (``"mse"``, ``"i1"``, ``"i2"``, ...).
    decoder : {"relu", "sigmoid"}
    optimizer : str
        A name of :data:`idivkit.names.OPTIMIZERS`; ``optimizer_options`` are passed on to
        :func:`make_optimizer` as overrides.
    epochs, batch_size, seed, code_dim : int, default 50, 256, 0, 32
        As the thesis: 50 epochs, batches of 256, 32 code units.
    optimizer_defaults : {"keras2", "keras3"}, default "keras2"
    clip : bool, default True
        Clip the divergences' arguments to ``[1e-7, 1]`` (the thesis's code).
    progress : bool, default True
        Show a tqdm bar over epochs with the current losses.
    jit_compile : bool, default True

    Returns
    -------
    TrainResult
        ``history`` ({"loss": [...], "val_loss": [...]}, per epoch, as Keras reports them:
        the batch-size-weighted mean of the batch losses during the epoch; the validation
        loss after it), ``model``, ``seconds`` (wall time, compilation included) and
        ``seconds_per_epoch``.
    """
    from ..keras import get_loss

    keras = import_keras()
    config = GridConfig(decoder, loss, optimizer)
    x_train, x_val = validate_data(x_train, x_val)
    epochs, batch_size = check_schedule(epochs, batch_size)
    keras.utils.set_random_seed(int(seed))
    model = build_autoencoder(code_dim, config.decoder, x_train.shape[1], seed)
    steps = steps_per_epoch(len(x_train), batch_size)
    model.compile(optimizer=make_optimizer(config.optimizer, optimizer_defaults, **(optimizer_options or {})),
                  loss=get_loss(config.loss, clip=clip), jit_compile=jit_compile,
                  steps_per_execution=steps)
    history = {"loss": []} if x_val is None else {"loss": [], "val_loss": []}
    epoch_seconds = []
    bar = progress_bar(epochs, f"train {config.key}", progress)
    data = EpochData(x_train, seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        x_epoch = data.epoch(epoch)
        with quiet_retracing():  # each call of train builds a new model: expected retracing
            logs = model.fit(x_epoch, x_epoch, batch_size=batch_size, epochs=1, shuffle=False,
                             verbose=0).history
            if x_val is not None:
                val = model.evaluate(x_val, x_val, batch_size=batch_size, verbose=0, return_dict=True)
        history["loss"].append(float(logs["loss"][-1]))
        if x_val is not None:
            history["val_loss"].append(float(val["loss"]))
        epoch_seconds.append(time.perf_counter() - t0)
        bar.advance(history)
    bar.close()
    return TrainResult(config=config, seed=int(seed), history=history,
                       seconds=time.perf_counter() - start, seconds_per_epoch=epoch_seconds,
                       weights=model.get_weights(), code_dim=code_dim, epochs=epochs,
                       batch_size=batch_size, optimizer_defaults=optimizer_defaults,
                       clip=clip, backend=keras.backend.backend(), n_train=len(x_train), model=model)
