"""A whole grid, end to end: the thesis's 30 configurations x ``--seeds`` seeds x ``--epochs``
epochs in one :func:`idivkit.training.train_grid` call (model building and compilation
included), against its peer, plain ``model.fit``, measured in the same run.

Run from the repository root, e.g.::

    python benchmarks/bench_grid.py --seeds 1 --epochs 50            # the CPU goal: < 4 min
    KERAS_BACKEND=jax python benchmarks/bench_grid.py --seeds 5      # the GPU goal: < 30 s

The peer is the thesis's code in plain Keras 3 (sigmoid/mse/adam, batch 256, validation on the
test images) timed over one warm-up and ``--peer-epochs`` epochs; the time of 30 x seeds
sequential fits of ``--epochs`` epochs is extrapolated from it (one warm-up per fit, as each
fit compiles its own program) and divided by the grid's measured wall time. Achieved GFLOP/s
count matrix products only (16.1 GFLOP per model-epoch, see bench_training.py), beside the
device's float32 matrix-product peak measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench_training import _EpochClock, _backend_version, _devices, device_peak_gflops, model_epoch_flops


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--layout", choices=("branches", "stacked"), default=None,
                        help="default: train_grid's default for the device")
    parser.add_argument("--peer-epochs", type=int, default=2, help="0: no peer")
    parser.add_argument("--mnist", default=None)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from idivkit._quiet import import_keras

    keras = import_keras()
    backend = keras.backend.backend()
    from idivkit.data import load_mnist
    from idivkit.training import THESIS_GRID, train_grid
    from idivkit.training.grid import default_layout

    (x_train, _), (x_test, _) = load_mnist(args.mnist)
    layout = args.layout or default_layout()
    models = len(THESIS_GRID) * args.seeds
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; keras {keras.__version__}, "
          f"backend {backend} {_backend_version(backend)}, devices {_devices(backend)}")
    print(f"grid: {len(THESIS_GRID)} configurations x {args.seeds} seeds = {models} models, "
          f"{args.epochs} epochs, {layout} layout")

    t0 = time.perf_counter()
    results = train_grid(THESIS_GRID, x_train, x_test, epochs=args.epochs, seeds=list(range(args.seeds)),
                         layout=layout, progress=True)
    wall = time.perf_counter() - t0
    per_epoch = [sum(r.seconds_per_epoch[e] for r in results) for e in range(args.epochs)]
    rest = per_epoch[1:] or per_epoch
    mean = sum(rest) / len(rest)
    flops = model_epoch_flops(len(x_train), len(x_test))
    print(f"grid: {wall:.1f} s in all; first epoch (compilation) {per_epoch[0]:.1f} s, then "
          f"{mean:.3f} s per epoch = {mean / models * 1e3:.2f} ms per model-epoch, "
          f"{models * flops / mean / 1e9:.0f} GFLOP/s")
    peak, how = device_peak_gflops(backend)
    print(f"device matrix-product peak ({how}, same run): {peak:.0f} GFLOP/s; the grid's epochs "
          f"reach {models * flops / mean / 1e9 / peak:.1%} of it")

    if args.peer_epochs > 0:
        keras.utils.set_random_seed(0)
        inputs = keras.Input(shape=(784,))
        code = keras.layers.Dense(32, activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(784, activation="sigmoid")(code))
        model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
        clock = _EpochClock()
        model.fit(x_train, x_train, epochs=1 + args.peer_epochs, batch_size=256, shuffle=True,
                  validation_data=(x_test, x_test), verbose=0, callbacks=[clock])
        warm, timed = clock.seconds[0], clock.seconds[1:]
        fit = warm + (args.epochs - 1) * sum(timed) / len(timed)
        print(f"peer (plain model.fit): first epoch {warm:.2f} s, then {sum(timed) / len(timed):.3f} s "
              f"per epoch; {models} sequential fits of {args.epochs} epochs ~ {models * fit:.0f} s")
        print(f"ratio {models} plain fits / grid = {models * fit / wall:.1f}x (target >= 5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
