"""Grid training: many configurations of the thesis's autoencoder on the same batches at once.

Why: one configuration is a 784-32-784 network, far too small to keep a CPU (or a GPU) busy;
plain ``model.fit`` spends its time on per-step overhead, not arithmetic. So the grid trains,
for each optimizer, ONE Keras model with an independent branch (its own four variables) for
each of the grid's configurations with that optimizer: the encoder kernels of all branches are
concatenated into one matrix product, and the step is one XLA program run a whole epoch per call (``jit_compile=True``, ``steps_per_execution`` = steps
per epoch). The thesis's grid (2 decoders x 3 losses x 5 optimizers = 30) is 5 such models.

Why it is exact: the model's loss is the SUM over branches of each branch's own batch-mean
loss. Branches share no weights, so the gradient of that sum with respect to branch ``k``'s
weights is the gradient of branch ``k``'s own loss, and all the Keras optimizers used here
(SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax, Nadam) update each weight entry from its own
gradient history only (no global norm, no cross-entry coupling), so branch ``k`` follows the
same trajectory as :func:`idivkit.training.train` of that configuration, up to float rounding.
Each branch starts from :func:`idivkit.training.initial_weights` of the seed and sees the batches
of :func:`idivkit.training.epoch_permutation`, like ``train``. (One model per optimizer rather
than one model for everything: Keras optimizers then work unchanged on both backends.)

Variants measured and rejected (numbers in benchmarks/README.md): weights stacked in 3-D
tensors with ``einsum`` (batched dots, far slower on JAX's CPU backend), separate per-branch
encoder products, and ``jit_compile=False`` on TensorFlow.

Per-branch losses are tracked with one ``keras.metrics.Mean`` per branch weighted by batch size,
the way Keras tracks a model's loss, so each configuration's history is what Keras would report
for it alone.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from .._quiet import import_keras
from ..keras import get_loss
from ..names import THESIS_DECODERS, THESIS_LOSSES, THESIS_OPTIMIZERS
from .loop import EpochData, check_schedule, progress_bar, quiet_retracing, steps_per_epoch, validate_data
from .model import initial_weights
from .optimizers import make_optimizer
from .result import GridConfig, TrainResult

keras = import_keras()
ops = keras.ops

__all__ = ["THESIS_GRID", "thesis_grid", "train_grid"]


def thesis_grid(decoders=THESIS_DECODERS, losses=THESIS_LOSSES,
                optimizers=THESIS_OPTIMIZERS) -> list[GridConfig]:
    """The thesis's grid, decoder x loss x optimizer (2 x 3 x 5 = 30 configurations)."""
    return [GridConfig(d, l, o) for d in decoders for l in losses for o in optimizers]


THESIS_GRID = tuple(thesis_grid())


class _StackedAutoencoder(keras.layers.Layer):
    """``k`` independent 784-32-784 autoencoders; the first ``n_relu`` have ReLU decoders,
    the others sigmoid. Input ``(batch, 784)``, output a list of ``k`` tensors ``(batch, 784)``.

    Each branch has its own four variables (as a Dense pair). The k encoder kernels are
    concatenated into one ``(784, k*32)`` product per step (one larger matrix product instead
    of k small ones; the gradient still reaches each kernel alone).
    """

    def __init__(self, n_branches, n_relu, code_dim, input_dim, **kwargs):
        super().__init__(**kwargs)
        self.n_branches, self.n_relu = n_branches, n_relu
        self.code_dim, self.input_dim = code_dim, input_dim

    def build(self, input_shape):
        c, d = self.code_dim, self.input_dim
        self.branch_vars = []
        for k in range(self.n_branches):
            self.branch_vars.append([
                self.add_weight(shape=(d, c), initializer="zeros", name=f"w_enc_{k}"),
                self.add_weight(shape=(c,), initializer="zeros", name=f"b_enc_{k}"),
                self.add_weight(shape=(c, d), initializer="zeros", name=f"w_dec_{k}"),
                self.add_weight(shape=(d,), initializer="zeros", name=f"b_dec_{k}"),
            ])

    def call(self, x):
        c = self.code_dim
        if self.n_branches > 1:
            w = ops.concatenate([v[0] for v in self.branch_vars], axis=1)
            b = ops.concatenate([v[1] for v in self.branch_vars], axis=0)
            codes_all = ops.relu(ops.matmul(x, w) + b)
            codes = [codes_all[:, k * c:(k + 1) * c] for k in range(self.n_branches)]
        else:
            codes = [ops.relu(ops.matmul(x, v[0]) + v[1]) for v in self.branch_vars]
        outputs = []
        for k, (code, v) in enumerate(zip(codes, self.branch_vars)):
            pre = ops.matmul(code, v[2]) + v[3]
            outputs.append(ops.relu(pre) if k < self.n_relu else ops.sigmoid(pre))
        return outputs


class _GridModel(keras.Model):
    """The stacked autoencoders of one optimizer; the loss is the sum of the branch losses."""

    def __init__(self, decoders, losses, code_dim, input_dim):
        super().__init__(name="grid")
        n_relu = sum(d == "relu" for d in decoders)
        if list(decoders) != ["relu"] * n_relu + ["sigmoid"] * (len(decoders) - n_relu):
            raise ValueError("branches must be ordered ReLU decoders first")
        self.stack = _StackedAutoencoder(len(decoders), n_relu, code_dim, input_dim)
        self.stack.build((None, input_dim))
        self.branch_losses = list(losses)
        self.branch_trackers = [keras.metrics.Mean(name=f"branch_{i}") for i in range(len(losses))]

    def call(self, x):
        return self.stack(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Targets are the inputs (an autoencoder); y is not passed, to avoid copying the data.
        batch = ops.shape(x)[0]
        total = 0.0
        for k, (loss, tracker) in enumerate(zip(self.branch_losses, self.branch_trackers)):
            value = ops.mean(loss.call(x, y_pred[k]))  # per-sample mean over pixels
            tracker.update_state(value, sample_weight=batch)
            total = total + value
        return total

    def branch_weights(self, k) -> list:
        return [np.asarray(ops.convert_to_numpy(v)) for v in self.stack.branch_vars[k]]


def _normalise(configs) -> list[GridConfig]:
    out = [GridConfig.coerce(c) for c in configs]
    if not out:
        raise ValueError("configs is empty: give at least one GridConfig")
    dupes = [k for k, n in Counter(c.key for c in out).items() if n > 1]
    if dupes:
        raise ValueError(f"configs has duplicates: {', '.join(dupes)}")
    return out


def train_grid(configs, x_train, x_val=None, *, epochs: int = 50, batch_size: int = 256,
               seed: int = 0, code_dim: int = 32, optimizer_defaults: str = "keras2",
               optimizer_options: dict | None = None, clip: bool = True, progress: bool = True,
               jit_compile: bool = True) -> list[TrainResult]:
    """Train every configuration of ``configs`` on the same batches, one compiled model per optimizer.

    Parameters
    ----------
    configs : iterable of GridConfig (or ``(decoder, loss, optimizer)`` tuples, or keys
        ``"relu/i2/adadelta"``); no duplicates.
    x_train, x_val : ndarray, shape (N, 784) and (M, 784)
        Images in [0, 1]; ``x_val`` optional (then no ``"val_loss"``).
    epochs, batch_size, seed, code_dim, optimizer_defaults, clip, progress
        As :func:`idivkit.training.train`; every configuration uses the same seed, i.e. the same
        initial weights and the same batches as ``train(..., seed=seed)`` would.
    optimizer_options : dict, optional
        ``{optimizer_name: {keyword: value}}`` overrides passed to ``make_optimizer``.

    Returns
    -------
    list of TrainResult
        In the order of ``configs``: ``config``, ``seed``, ``history`` (each configuration's
        own ``"loss"`` and ``"val_loss"`` per epoch), ``seconds`` (its share of its group's
        time), ``predict(x)`` and ``get_weights()``.
    """
    configs = _normalise(configs)
    x_train, x_val = validate_data(x_train, x_val)
    epochs, batch_size = check_schedule(epochs, batch_size)
    options = dict(optimizer_options or {})
    keras.utils.set_random_seed(int(seed))
    n, input_dim = x_train.shape
    steps = steps_per_epoch(n, batch_size)
    init = initial_weights(seed, code_dim, input_dim)

    groups = {}  # optimizer -> config indices, ReLU decoders first (the stacked layer's order)
    for i, c in enumerate(configs):
        groups.setdefault(c.optimizer, []).append(i)
    models = {}
    for opt, members in groups.items():
        members.sort(key=lambda i: configs[i].decoder != "relu")
        model = _GridModel([configs[i].decoder for i in members],
                           [get_loss(configs[i].loss, clip=clip) for i in members], code_dim, input_dim)
        model(np.zeros((1, input_dim), np.float32))  # builds the model
        model.stack.set_weights(init * len(members))
        model.compile(optimizer=make_optimizer(opt, optimizer_defaults, **options.get(opt, {})),
                      jit_compile=jit_compile, steps_per_execution=steps)
        models[opt] = model

    histories = [{"loss": []} if x_val is None else {"loss": [], "val_loss": []} for _ in configs]
    group_epoch_seconds = {opt: [] for opt in groups}
    bar = progress_bar(epochs, f"grid of {len(configs)} ({len(groups)} optimizer groups)", progress)
    data = EpochData(x_train, seed)
    for epoch in range(epochs):
        x_epoch = data.epoch(epoch)
        for opt, members in groups.items():
            t0 = time.perf_counter()
            model = models[opt]
            with quiet_retracing():
                logs = model.fit(x_epoch, batch_size=batch_size, epochs=1, shuffle=False,
                                 verbose=0).history
                val = None
                if x_val is not None:
                    val = model.evaluate(x_val, batch_size=batch_size, verbose=0, return_dict=True)
            for k, i in enumerate(members):
                histories[i]["loss"].append(float(logs[f"branch_{k}"][-1]))
                if val is not None:
                    histories[i]["val_loss"].append(float(val[f"branch_{k}"]))
            group_epoch_seconds[opt].append(time.perf_counter() - t0)
        bar.advance({"mean loss": [float(np.mean([h["loss"][-1] for h in histories]))]})
    bar.close()

    results = [None] * len(configs)
    for opt, members in groups.items():
        share = [s / len(members) for s in group_epoch_seconds[opt]]
        for k, i in enumerate(members):
            results[i] = TrainResult(
                config=configs[i], seed=int(seed), history=histories[i], seconds=float(sum(share)),
                seconds_per_epoch=share, weights=models[opt].branch_weights(k), code_dim=code_dim,
                epochs=epochs, batch_size=batch_size, optimizer_defaults=optimizer_defaults,
                clip=clip, backend=keras.backend.backend(), n_train=n,
                group_seconds=float(sum(group_epoch_seconds[opt])),
            )
    return results
