"""Grid training: many configurations (and seeds) of the thesis's autoencoder at once.

Why: one configuration is a 784-32-784 network, far too small to keep a CPU (or a GPU) busy;
plain ``model.fit`` spends its time on per-step overhead, not arithmetic. So the grid trains
ONE Keras model with an independent branch (its own four variables) per (seed, configuration),
one :class:`~idivkit.training.grouped.GroupedOptimizer` that applies each configuration's
optimizer to its branch, and one XLA program run a whole epoch per call (``jit_compile=True``,
``steps_per_execution`` = steps per epoch). The input holds one block of 784 columns per seed,
each in that seed's batch order; within a block the encoder kernels of all branches are
concatenated into one matrix product.

Why it is exact: the model's loss is the SUM over branches of each branch's own batch-mean
loss. Branches share no weights, so the gradient of that sum with respect to branch ``k``'s
weights is the gradient of branch ``k``'s own loss, and all the Keras optimizers used here
update each weight entry from its own gradient history only (no global norm, no cross-entry
coupling), so branch ``k`` follows the same trajectory as :func:`idivkit.training.train` of
that configuration and seed, up to float rounding: it starts from
:func:`idivkit.training.initial_weights` of its seed and sees the batches of
:func:`idivkit.training.epoch_permutation` of its seed.

Per-branch losses are tracked with one ``keras.metrics.Mean`` per branch weighted by batch size,
the way Keras tracks a model's loss, so each configuration's history is what Keras would report
for it alone. Speed and the variants measured: benchmarks/README.md.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from .._numerics import check_positive_int
from .._quiet import import_keras
from ..keras import get_loss
from ..names import THESIS_DECODERS, THESIS_LOSSES, THESIS_OPTIMIZERS
from .grouped import GroupedOptimizer
from .loop import check_schedule, epoch_permutation, progress_bar, quiet_retracing, steps_per_epoch, validate_data
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


class _StackedAutoencoders(keras.layers.Layer):
    """Independent 784-32-784 autoencoders, ``blocks[k]`` the input block of branch ``k``.

    Input ``(batch, n_blocks * 784)``; output a list of one ``(batch, 784)`` tensor per branch.
    """

    def __init__(self, decoders, blocks, code_dim, input_dim, **kwargs):
        super().__init__(**kwargs)
        self.decoders, self.blocks = list(decoders), list(blocks)
        self.code_dim, self.input_dim = code_dim, input_dim

    def build(self, input_shape):
        c, d = self.code_dim, self.input_dim
        self.branch_vars = [[
            self.add_weight(shape=(d, c), initializer="zeros", name=f"w_enc_{k}"),
            self.add_weight(shape=(c,), initializer="zeros", name=f"b_enc_{k}"),
            self.add_weight(shape=(c, d), initializer="zeros", name=f"w_dec_{k}"),
            self.add_weight(shape=(d,), initializer="zeros", name=f"b_dec_{k}"),
        ] for k in range(len(self.decoders))]

    def block(self, x, b):
        return x[:, b * self.input_dim:(b + 1) * self.input_dim]

    def call(self, x):
        c = self.code_dim
        codes = [None] * len(self.decoders)
        for b in sorted(set(self.blocks)):
            members = [k for k, block in enumerate(self.blocks) if block == b]
            x_b = self.block(x, b)
            # One (784, m*32) product for the m branches of this block, split afterwards.
            w = ops.concatenate([self.branch_vars[k][0] for k in members], axis=1)
            bias = ops.concatenate([self.branch_vars[k][1] for k in members], axis=0)
            fused = ops.relu(ops.matmul(x_b, w) + bias)
            for j, k in enumerate(members):
                codes[k] = fused[:, j * c:(j + 1) * c]
        outputs = []
        for k, (code, v) in enumerate(zip(codes, self.branch_vars)):
            pre = ops.matmul(code, v[2]) + v[3]
            outputs.append(ops.relu(pre) if self.decoders[k] == "relu" else ops.sigmoid(pre))
        return outputs


class _GridModel(keras.Model):
    """All branches of the grid; the loss is the sum of the branch losses."""

    def __init__(self, decoders, blocks, losses, code_dim, input_dim):
        super().__init__(name="grid")
        self.stack = _StackedAutoencoders(decoders, blocks, code_dim, input_dim)
        self.stack.build((None, (max(blocks) + 1) * input_dim))
        self.branch_losses = list(losses)
        self.branch_trackers = [keras.metrics.Mean(name=f"branch_{i}") for i in range(len(losses))]

    def call(self, x):
        return self.stack(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Targets are the inputs (an autoencoder); y is not passed, to avoid copying the data.
        batch = ops.shape(x)[0]
        total = 0.0
        for k, (loss, tracker) in enumerate(zip(self.branch_losses, self.branch_trackers)):
            target = self.stack.block(x, self.stack.blocks[k])
            value = ops.mean(loss.call(target, y_pred[k]))  # per-sample mean over pixels
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


def _seed_list(seed, seeds) -> list[int]:
    if seeds is None:
        return [int(seed)]
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers, got {seeds!r}")
    return seeds


def _epoch_input(x, seeds, epoch, out):
    """One epoch's input: block ``b`` is ``x`` in seed ``seeds[b]``'s batch order (in place)."""
    d = x.shape[1]
    for b, seed in enumerate(seeds):
        out[:, b * d:(b + 1) * d] = np.take(x, epoch_permutation(len(x), seed, epoch), axis=0)
    return out


def train_grid(configs, x_train, x_val=None, *, epochs: int = 50, batch_size: int = 256,
               seed: int = 0, seeds=None, code_dim: int = 32, optimizer_defaults: str = "keras2",
               optimizer_options: dict | None = None, clip: bool = True, progress: bool = True,
               jit_compile: bool = True) -> list[TrainResult]:
    """Train every configuration of ``configs`` (for every seed) in one compiled model.

    Parameters
    ----------
    configs : iterable of GridConfig (or ``(decoder, loss, optimizer)`` tuples, or keys
        ``"relu/i2/adadelta"``); no duplicates.
    x_train, x_val : ndarray, shape (N, 784) and (M, 784)
        Images in [0, 1]; ``x_val`` optional (then no ``"val_loss"``).
    epochs, batch_size, code_dim, optimizer_defaults, clip, jit_compile
        As :func:`idivkit.training.train`.
    progress : bool or callable, default True
        A bar over epochs, nothing, or a callable called after each epoch with
        ``{"mean loss": [...]}`` (to drive a caller's own bar).
    seed : int, default 0
        Every configuration uses the initial weights and batches that
        ``train(..., seed=seed)`` would.
    seeds : sequence of int, optional
        Several seeds trained together (each in its own input block); overrides ``seed``.
    optimizer_options : dict, optional
        ``{optimizer_name: {keyword: value}}`` overrides passed to ``make_optimizer``.

    Returns
    -------
    list of TrainResult
        One per (seed, configuration), seeds outer, in the order of ``seeds`` and ``configs``:
        ``config``, ``seed``, ``history`` (each configuration's own ``"loss"`` and
        ``"val_loss"`` per epoch), ``seconds`` (its share of the grid's time), ``predict(x)``
        and ``get_weights()``.
    """
    configs = _normalise(configs)
    seeds = _seed_list(seed, seeds)
    x_train, x_val = validate_data(x_train, x_val)
    epochs, batch_size = check_schedule(epochs, batch_size)
    code_dim = check_positive_int(code_dim, "code_dim")
    options = dict(optimizer_options or {})
    keras.utils.set_random_seed(seeds[0])
    n, input_dim = x_train.shape
    steps = steps_per_epoch(n, batch_size)

    branches = [(b, c) for b in range(len(seeds)) for c in configs]
    model = _GridModel([c.decoder for _, c in branches], [b for b, _ in branches],
                       [get_loss(c.loss, clip=clip) for _, c in branches], code_dim, input_dim)
    model(np.zeros((1, len(seeds) * input_dim), np.float32))  # builds the model
    model.stack.set_weights([w for b, _ in branches for w in initial_weights(seeds[b], code_dim, input_dim)])
    optimizers = list(dict.fromkeys(c.optimizer for c in configs))
    owner = {}
    for k, (_, c) in enumerate(branches):
        owner.update({id(v): optimizers.index(c.optimizer) for v in model.stack.branch_vars[k]})
    grouped = GroupedOptimizer([make_optimizer(o, optimizer_defaults, **options.get(o, {})) for o in optimizers],
                               group_of=lambda v: owner[id(v)])
    model.compile(optimizer=grouped, jit_compile=jit_compile, steps_per_execution=steps)

    histories = [{"loss": []} if x_val is None else {"loss": [], "val_loss": []} for _ in branches]
    val_input = None if x_val is None else np.tile(x_val, (1, len(seeds)))
    buffer = np.empty((n, len(seeds) * input_dim), np.float32)
    epoch_seconds = []
    bar = progress_bar(epochs, f"grid of {len(configs)} x {len(seeds)} seed{'s' * (len(seeds) > 1)}",
                       progress)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        x_epoch = _epoch_input(x_train, seeds, epoch, buffer)
        with quiet_retracing():
            logs = model.fit(x_epoch, batch_size=batch_size, epochs=1, shuffle=False, verbose=0).history
            val = None if val_input is None else model.evaluate(
                val_input, batch_size=batch_size, verbose=0, return_dict=True)
        for k, history in enumerate(histories):
            history["loss"].append(float(logs[f"branch_{k}"][-1]))
            if val is not None:
                history["val_loss"].append(float(val[f"branch_{k}"]))
        epoch_seconds.append(time.perf_counter() - t0)
        bar.advance({"mean loss": [float(np.mean([h["loss"][-1] for h in histories]))]})
    bar.close()

    share = [s / len(branches) for s in epoch_seconds]
    return [TrainResult(config=c, seed=seeds[b], history=histories[k], seconds=float(sum(share)),
                        seconds_per_epoch=share, weights=model.branch_weights(k), code_dim=code_dim,
                        epochs=epochs, batch_size=batch_size, optimizer_defaults=optimizer_defaults,
                        clip=clip, backend=keras.backend.backend(), n_train=n,
                        group_seconds=float(sum(epoch_seconds)))
            for k, (b, c) in enumerate(branches)]
