"""Grid training: many configurations (and seeds) of the thesis's autoencoder at once.

Why: one configuration is a 784-32-784 network, far too small to keep a CPU (or a GPU) busy;
plain ``model.fit`` spends its time on per-step overhead, not arithmetic. So the grid trains
ONE Keras model with an independent branch per (seed, configuration), one
:class:`~idivkit.training.grouped.GroupedOptimizer` that applies each configuration's
optimizer to its branch, and one XLA program run a whole epoch per call (``jit_compile=True``,
``steps_per_execution`` = steps per epoch). Two layouts of the branches in that program:
:mod:`.branches` (separate variables and products per branch: the fastest on CPUs) and
:mod:`.stacked` (one stack of variables per optimizer, batched products, images kept on the
device: the fastest on GPUs).

Why it is exact: the model's loss is the SUM over branches of each branch's own batch-mean
loss. Branches share no weights, so the gradient of that sum with respect to branch ``k``'s
weights is the gradient of branch ``k``'s own loss, and all the Keras optimizers used here
update each weight entry from its own gradient history only (no global norm, no cross-entry
coupling), so branch ``k`` follows the same trajectory as :func:`idivkit.training.train` of
that configuration and seed, up to float rounding: it starts from
:func:`idivkit.training.initial_weights` of its seed and sees the batches of
:func:`idivkit.training.epoch_permutation` of its seed.

Per-branch losses are tracked as Keras tracks a model's loss (a mean weighted by batch size),
so each configuration's history is what Keras would report for it alone. Speed and the
variants measured: benchmarks/README.md.
"""

from __future__ import annotations

import gc
import time
from collections import Counter

import numpy as np

from .._numerics import check_choice, check_positive_int
from .._quiet import import_keras
from .._system import release_freed_memory
from ..keras import get_loss
from ..names import THESIS_DECODERS, THESIS_LOSSES, THESIS_OPTIMIZERS
from .branches import BranchesModel
from .grouped import GroupedOptimizer
from .loop import check_schedule, progress_bar, quiet_retracing, steps_per_epoch, validate_data
from .model import initial_weights
from .optimizers import make_optimizer
from .result import GridConfig, TrainResult
from .stacked import StackedModel

keras = import_keras()

__all__ = ["LAYOUTS", "THESIS_GRID", "default_layout", "thesis_grid", "train_grid"]

LAYOUTS = ("branches", "stacked")


def thesis_grid(decoders=THESIS_DECODERS, losses=THESIS_LOSSES,
                optimizers=THESIS_OPTIMIZERS) -> list[GridConfig]:
    """The thesis's grid, decoder x loss x optimizer (2 x 3 x 5 = 30 configurations)."""
    return [GridConfig(d, l, o) for d in decoders for l in losses for o in optimizers]


THESIS_GRID = tuple(thesis_grid())


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


def default_layout() -> str:
    """``"stacked"`` when Keras computes on a GPU, else ``"branches"`` (see the two modules)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return "stacked" if jax.default_backend() == "gpu" else "branches"
    if backend == "tensorflow":
        import tensorflow as tf

        return "stacked" if tf.config.list_logical_devices("GPU") else "branches"
    return "branches"


def train_grid(configs, x_train, x_val=None, *, epochs: int = 50, batch_size: int = 256,
               seed: int = 0, seeds=None, code_dim: int = 32, optimizer_defaults: str = "keras2",
               optimizer_options: dict | None = None, clip: bool = True, progress: bool = True,
               jit_compile: bool = True, layout: str | None = None) -> list[TrainResult]:
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
    layout : {"branches", "stacked"}, optional
        How the branches are laid out in the program: :mod:`~idivkit.training.branches`
        (separate variables and products per branch) or :mod:`~idivkit.training.stacked`
        (one stack per optimizer, batched products, images on the device). Default:
        :func:`default_layout`, ``"stacked"`` on a GPU and ``"branches"`` on a CPU. Both train
        the same trajectories up to float rounding.

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
    if layout is None:
        layout = default_layout()
    layout = check_choice(layout, "layout", LAYOUTS)
    keras.utils.set_random_seed(seeds[0])
    n, input_dim = x_train.shape
    steps = steps_per_epoch(n, batch_size)

    branches = [(b, c) for b in range(len(seeds)) for c in configs]
    optimizers = list(dict.fromkeys(c.optimizer for c in configs))
    group_of_branch = [optimizers.index(c.optimizer) for _, c in branches]
    initial = [initial_weights(seeds[b], code_dim, input_dim) for b, _ in branches]
    decoders, blocks = [c.decoder for _, c in branches], [b for b, _ in branches]
    losses = [get_loss(c.loss, clip=clip) for _, c in branches]
    if layout == "stacked":
        model = StackedModel(decoders, [c.loss for _, c in branches], losses, blocks, group_of_branch,
                             initial, x_train, x_val, code_dim)
    else:
        model = BranchesModel(decoders, losses, blocks, initial, x_train, code_dim)
    owner = model.variable_group(group_of_branch)
    grouped = GroupedOptimizer([make_optimizer(o, optimizer_defaults, **options.get(o, {})) for o in optimizers],
                               group_of=lambda v: owner[id(v)])
    model.compile(optimizer=grouped, jit_compile=jit_compile, steps_per_execution=steps)

    histories = [{"loss": []} if x_val is None else {"loss": [], "val_loss": []} for _ in branches]
    val_input = None if x_val is None else model.validation_input(x_val)
    epoch_seconds = []
    bar = progress_bar(epochs, f"grid of {len(configs)} x {len(seeds)} seed{'s' * (len(seeds) > 1)}",
                       progress)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        x_epoch = model.epoch_input(seeds, epoch)
        with quiet_retracing():
            logs = model.fit(x_epoch, batch_size=batch_size, epochs=1, shuffle=False, verbose=0).history
            losses = model.branch_values({k: v[-1] for k, v in logs.items()})
            val = None if val_input is None else model.branch_values(model.evaluate(
                val_input, batch_size=batch_size, verbose=0, return_dict=True))
        for k, history in enumerate(histories):
            history["loss"].append(losses[k])
            if val is not None:
                history["val_loss"].append(val[k])
        epoch_seconds.append(time.perf_counter() - t0)
        bar.advance({"mean loss": [float(np.mean(losses))]})
    bar.close()

    share = [s / len(branches) for s in epoch_seconds]
    results = [TrainResult(config=c, seed=seeds[b], history=histories[k], seconds=float(sum(share)),
                        seconds_per_epoch=share, weights=model.branch_weights(k), code_dim=code_dim,
                        epochs=epochs, batch_size=batch_size, optimizer_defaults=optimizer_defaults,
                        clip=clip, backend=keras.backend.backend(), n_train=n,
                        group_seconds=float(sum(epoch_seconds)))
               for k, (b, c) in enumerate(branches)]
    # The model, its program and its data are no longer needed: free them now, and give the
    # freed pages back, so that an idle kernel does not hold them (Binder has 2 GB for all).
    del model, grouped, owner
    gc.collect()
    release_freed_memory()
    return results
