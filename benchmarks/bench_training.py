"""Training speed: the original experiment's plain ``model.fit`` vs idivkit's trainer and grid.

Run from the repository root, e.g.::

    python benchmarks/bench_training.py --backend tensorflow --epochs 3
    python benchmarks/bench_training.py --backend jax --epochs 3

Three contenders, the same machine, the same run, MNIST (60,000 training images, the 10,000
test images as validation data, batch 256):

* peer  -- the thesis's code in plain Keras 3: ``Input(784) -> Dense(32, relu) -> Dense(784,
  sigmoid)``, ``compile(Adam(), "mse")``, ``fit(batch_size=256, shuffle=True,
  validation_data=(x_test, x_test))``;
* train -- :func:`idivkit.training.train` of the same configuration (sigmoid/mse/adam);
* grid  -- :func:`idivkit.training.train_grid` of the thesis's 30 configurations.

Each runs one warm-up epoch (compilation) plus ``--epochs`` timed epochs; it prints seconds per
epoch (every timed epoch and their mean; the summary uses each contender's best timed epoch, as
``timeit`` does, since a shared machine's load only ever adds time), the ratios peer/train
(target >= 2 on 2 CPU cores) and 30 x peer / grid (target >= 5), and each contender's achieved
GFLOP/s beside the machine's float32 matrix-product peak measured in the same run (numpy, the
same process), so the distance to the limit is visible. A
model-epoch is 16.1 GFLOP: five products of 2 x 784 x 32 flops per training image (encoder and
decoder forward, the two weight gradients and the code's gradient) over 60,000 images, plus the
two forward products over 10,000 validation images; elementwise work is not counted.

With the grid, it also times the grid's **products floor** in each layout: the matrix products
of a grid epoch alone, compiled as one program on the same backend, best of 20 steps, with no
activation, loss or optimizer work. ``branches``: one fused encoder product and its weight
gradient for all models, and per model the decoder product, its weight gradient and the code's
gradient; ``stacked``: the same five products per model as batched products (``einsum``, as
:mod:`idivkit.training.stacked` writes them) over the models of each optimizer. Then the
validation forward products. No grid that does these products can be faster than the lower of
the two, so it bounds the ratio 30 x peer / grid from above on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    parser.add_argument("--n-train", type=int, default=60000, help="training images (first N)")
    parser.add_argument("--only", choices=("peer", "train", "grid"), action="append",
                        help="run only these contenders (repeatable); default all three")
    parser.add_argument("--peer-backend", choices=("tensorflow", "jax"), default=None,
                        help="run the peer on this backend instead (in a subprocess, same machine, "
                             "same run): e.g. the original's TensorFlow vs idivkit on JAX")
    parser.add_argument("--seeds", type=int, default=1,
                        help="grid: train this many seeds together (one program), default 1")
    parser.add_argument("--layout", choices=("branches", "stacked"), action="append",
                        help="grid: the layout(s) to time (repeatable); default the device's "
                             "default (stacked on a GPU, branches on a CPU)")
    parser.add_argument("--per-loss", action="store_true",
                        help="grid: also time the 10 configurations of each thesis loss as a grid of "
                             "their own (how much of the grid's time the loss decides; the device's "
                             "default layout, one seed)")
    parser.add_argument("--mnist", default=None,
                        help="path of mnist.npz (default: idivkit's usual lookup, $IDIVKIT_MNIST first)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # must precede the first keras import
    from idivkit._quiet import import_keras

    keras = import_keras()
    import numpy as np

    from idivkit.data import load_mnist
    from idivkit.training import THESIS_GRID, train, train_grid
    from idivkit.training.grid import default_layout

    (x_train, _), (x_test, _) = load_mnist(args.mnist)
    x_train = x_train[: args.n_train]
    only = set(args.only or ("peer", "train", "grid"))
    backend_version = _backend_version(args.backend)
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs "
          f"(affinity {len(os.sched_getaffinity(0))}), load average {os.getloadavg()[0]:.2f}")
    print(f"python {sys.version.split()[0]}, keras {keras.__version__}, backend {args.backend} "
          f"{backend_version}, numpy {np.__version__}, devices {_devices(args.backend)}")
    print(f"data: {len(x_train)} training images, {len(x_test)} validation images, batch 256, "
          f"1 warm-up + {args.epochs} timed epochs")
    total = 1 + args.epochs
    timings = {}

    if "peer" in only and args.peer_backend and args.peer_backend != args.backend:
        timings["peer"] = _peer_in_subprocess(args)
    elif "peer" in only:
        keras.utils.set_random_seed(0)
        inputs = keras.Input(shape=(784,))
        code = keras.layers.Dense(32, activation="relu")(inputs)
        outputs = keras.layers.Dense(784, activation="sigmoid")(code)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
        clock = _EpochClock()
        model.fit(x_train, x_train, epochs=total, batch_size=256, shuffle=True,
                  validation_data=(x_test, x_test), verbose=0, callbacks=[clock])
        timings["peer"] = clock.seconds[1:]
        _report(f"peer (plain model.fit, sigmoid/mse/adam, {args.backend})", clock.seconds)
        print("PEER_SECONDS", " ".join(repr(s) for s in clock.seconds))

    if "train" in only:
        result = train(x_train, x_test, loss="mse", decoder="sigmoid", optimizer="adam",
                       epochs=total, seed=0, progress=False)
        timings["train"] = result.seconds_per_epoch[1:]
        _report("idivkit train (sigmoid/mse/adam)", result.seconds_per_epoch)

    for layout in (args.layout or [default_layout()]) if "grid" in only else ():
        t0 = time.perf_counter()
        results = train_grid(THESIS_GRID, x_train, x_test, epochs=total, seeds=list(range(args.seeds)),
                             progress=False, layout=layout)
        wall = time.perf_counter() - t0
        per_epoch = [sum(r.seconds_per_epoch[e] for r in results) for e in range(total)]
        name = "grid" if not args.layout or len(args.layout) == 1 else f"grid ({layout})"
        timings[name] = per_epoch[1:]
        _report(f"idivkit train_grid ({len(THESIS_GRID)} configurations x {args.seeds} seeds, one program, "
                f"{layout} layout; {wall:.1f} s in all, model building and compilation included)", per_epoch)

    if "grid" in only and args.per_loss:
        for loss in dict.fromkeys(c.loss for c in THESIS_GRID):
            configs = [c for c in THESIS_GRID if c.loss == loss]
            results = train_grid(configs, x_train, x_test, epochs=total, progress=False)
            _report(f"idivkit train_grid of the {len(configs)} {loss} configurations",
                    [sum(r.seconds_per_epoch[e] for r in results) for e in range(total)])

    floors = {}
    if "grid" in only:
        n_models = len(THESIS_GRID) * args.seeds
        groups = len({c.optimizer for c in THESIS_GRID})
        for layout in ("branches", "stacked"):
            floors[layout] = products_floor_seconds(args.backend, layout, n_models, groups, len(x_train),
                                                    len(x_test))
            print(f"products floor, {layout} layout ({n_models} models' matrix products alone, compiled): "
                  f"{floors[layout]:.3f} s/epoch")

    best = {k: min(v) for k, v in timings.items()}  # the best timed epoch (see the docstring)
    models = {name: len(THESIS_GRID) * args.seeds if name.startswith("grid") else 1 for name in best}
    flops = model_epoch_flops(len(x_train), len(x_test))
    peak, how = device_peak_gflops(args.backend)
    print(f"device matrix-product peak ({how}, same run): {peak:.0f} GFLOP/s")
    for name, seconds in best.items():
        achieved = models[name] * flops / seconds / 1e9
        print(f"{name:15s}: {achieved:6.1f} GFLOP/s = {achieved / peak:5.1%} of peak "
              f"({models[name]} model{'s' * (models[name] > 1)}, best epoch {seconds:.3f} s)")
    if "peer" in best and "train" in best:
        print(f"ratio peer / train           = {best['peer'] / best['train']:.2f}x (target >= 2)")
    for name in (k for k in best if k.startswith("grid")):
        n = models[name]
        if "peer" in best:
            print(f"ratio {n} x peer / {name} = {n * best['peer'] / best[name]:.2f}x (target >= 5)")
        print(f"{name} seconds per model-epoch = {best[name] / n:.3f}")
    for layout, floor in floors.items():
        n = len(THESIS_GRID) * args.seeds
        achieved = n * flops / floor / 1e9
        print(f"products floor, {layout:8s}: {achieved:6.1f} GFLOP/s = {achieved / peak:5.1%} of peak")
    if floors and "peer" in best:
        n, floor = len(THESIS_GRID) * args.seeds, min(floors.values())
        print(f"best possible ratio {n} x peer / grid (the lower products floor) = {n * best['peer'] / floor:.2f}x")
    return 0


def model_epoch_flops(n_train: int, n_val: int, d: int = 784, j: int = 32) -> float:
    """Matrix-product flops of one model-epoch: 5 products per training image, 2 per validation image."""
    return 2.0 * d * j * (5 * n_train + 2 * n_val)


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n x n numpy product (the machine's BLAS, all cores)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * n ** 3 / best / 1e9


def device_peak_gflops(backend: str) -> tuple[float, str]:
    """The matrix-product peak of the device Keras computes on, and how it was measured: on a
    GPU (JAX) a jitted 8192^3 float32 product, which runs on the TF32 matrix units as the grid's
    products do; on a CPU numpy's :func:`matmul_peak_gflops`."""
    if backend == "jax":
        import jax

        if jax.default_backend() == "gpu":
            import jax.numpy as jnp

            n, repeats = 8192, 10
            a = jax.random.uniform(jax.random.key(0), (n, n), jnp.float32)
            product = jax.jit(lambda a: a @ a)
            product(a).block_until_ready()  # compile and warm up
            t0 = time.perf_counter()
            for _ in range(repeats):
                out = product(a)
            out.block_until_ready()
            return repeats * 2.0 * n ** 3 / (time.perf_counter() - t0) / 1e9, "jax, GPU, float32 as TF32, 8192^3"
    return matmul_peak_gflops(), "numpy, float32, 2048^3"


def products_floor_seconds(backend: str, layout: str, models: int, groups: int, n_train: int, n_val: int,
                           batch: int = 256, d: int = 784, j: int = 32, steps: int = 20) -> float:
    """Seconds per epoch of the grid's matrix products alone in ``layout`` (see the module
    docstring), from the best of ``steps`` timed training and validation steps after one
    compiling call of each; ``groups`` stacks of ``models // groups`` in the stacked layout."""
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(0)

    def tensor(*shape):  # on the device once, so that no call copies its arguments there
        return ops.convert_to_tensor(rng.standard_normal(shape, dtype=np.float32) * 0.05)

    x = ops.convert_to_tensor(rng.random((batch, d), dtype=np.float32))
    if layout == "branches":
        w_enc = tensor(d, models * j)
        w_dec = [tensor(j, d) for _ in range(models)]

        def train_step(x, w_enc, w_dec):
            h = ops.matmul(x, w_enc)  # every model's encoder, one product
            d_w_dec, d_h = [], []
            for k, w in enumerate(w_dec):
                h_k = h[:, k * j:(k + 1) * j]
                out = ops.matmul(h_k, w)  # decoder; its output stands in for the output's gradient
                d_w_dec.append(ops.matmul(ops.transpose(h_k), out))
                d_h.append(ops.matmul(out, ops.transpose(w)))
            return ops.matmul(ops.transpose(x), ops.concatenate(d_h, axis=1)), d_w_dec

        def val_step(x, w_enc, w_dec):
            h = ops.matmul(x, w_enc)
            return [ops.matmul(h[:, k * j:(k + 1) * j], w) for k, w in enumerate(w_dec)]
    else:
        size = models // groups
        w_enc = [tensor(size, d, j) for _ in range(groups)]
        w_dec = [tensor(size, j, d) for _ in range(groups)]

        def train_step(x, w_enc, w_dec):
            grads = []
            for a, b in zip(w_enc, w_dec):
                h = ops.einsum("bd,kdc->bkc", x, a)
                out = ops.einsum("bkc,kcd->bkd", h, b)  # stands in for the output's gradient too
                grads += [ops.einsum("bkc,bkd->kcd", h, out),
                          ops.einsum("bd,bkc->kdc", x, ops.einsum("bkd,kcd->bkc", out, b))]
            return grads

        def val_step(x, w_enc, w_dec):
            return [ops.einsum("bkc,kcd->bkd", ops.einsum("bd,kdc->bkc", x, a), b) for a, b in zip(w_enc, w_dec)]

    if backend == "jax":
        import jax

        compiled = [jax.jit(train_step), jax.jit(val_step)]
        wait = jax.block_until_ready
    else:
        import tensorflow as tf

        compiled = [tf.function(train_step, jit_compile=True), tf.function(val_step, jit_compile=True)]
        if tf.config.list_physical_devices("GPU"):
            wait = lambda out: tf.nest.flatten(out)[0].numpy()  # a GPU runs on after the call returns
        else:
            wait = lambda out: out  # TensorFlow on a CPU returns once the program has run
    per_step = []
    for fn in compiled:
        wait(fn(x, w_enc, w_dec))  # compile
        per_step.append(min(_timed(lambda: wait(fn(x, w_enc, w_dec))) for _ in range(steps)))
    return per_step[0] * -(-n_train // batch) + per_step[1] * -(-n_val // batch)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class _EpochClock:
    """A Keras callback that records the wall time of each epoch (validation included)."""

    def __new__(cls):
        import keras

        class Clock(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._t0)

        return Clock()


def _peer_in_subprocess(args):
    import subprocess

    command = [sys.executable, __file__, "--backend", args.peer_backend, "--only", "peer",
               "--epochs", str(args.epochs), "--n-train", str(args.n_train)]
    if args.mnist:
        command += ["--mnist", args.mnist]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or not any(l.startswith("PEER_SECONDS") for l in lines):
        raise SystemExit(f"peer subprocess failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    print("\n".join("  [peer subprocess] " + l for l in lines if not l.startswith("PEER_SECONDS")))
    seconds = [float(v) for v in next(l for l in lines if l.startswith("PEER_SECONDS")).split()[1:]]
    return seconds[1:]


def _report(name, seconds):
    timed = seconds[1:]
    print(f"{name}: warm-up epoch {seconds[0]:.2f} s; timed epochs "
          f"{', '.join(f'{s:.2f}' for s in timed)} s; mean {sum(timed) / len(timed):.3f} s/epoch")


def _backend_version(backend):
    if backend == "jax":
        import jax

        return jax.__version__
    import tensorflow as tf

    return tf.__version__


def _devices(backend):
    if backend == "jax":
        import jax

        return ",".join(sorted({d.platform for d in jax.devices()}))
    import tensorflow as tf

    return ",".join(sorted({d.device_type for d in tf.config.list_physical_devices()}))


if __name__ == "__main__":
    sys.exit(main())
