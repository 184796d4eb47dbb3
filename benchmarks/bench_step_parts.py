"""Where a grid step's time goes on a CPU: the same step built up part by part.

Thirty independent 784-32-784 autoencoders laid out as the grid's branches layout (one fused
encoder product, one decoder product per model), one training step of a 256-image batch compiled
with XLA (TensorFlow, ``jit_compile=True``), timed as the best of ``--repeats`` calls and scaled
to an epoch (235 steps of 256 of the 60,000 training images). Each row adds one part to the
row above:

1. products, biases, ReLU codes, linear decoder, a trivial loss (half the output's mean square,
   whose gradient is the output itself: every gradient product stays a real product),
   gradients;
2. the sigmoid decoder and the squared error against the images;
3. the clipped I-divergence (``idivkit.keras.i_divergence(clip=True)``) instead of the squared
   error;
4. Adam's update of all 120 variables (``idivkit.training.make_optimizer("adam")``).

The grid's products floor (``bench_training.py``) is what row 1 cannot go below.

    python benchmarks/bench_step_parts.py
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from bench_training import _timed  # this folder is on the path when the script runs

BATCH, PIXELS, CODE, MODELS, TRAINING_IMAGES = 256, 784, 32, 30, 60000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per row (best is kept)")
    args = parser.parse_args(argv)

    from idivkit._quiet import import_keras

    keras = import_keras()
    import tensorflow as tf

    from idivkit.keras import i_divergence
    from idivkit.training import make_optimizer
    from idivkit.training.loop import steps_per_epoch

    steps = steps_per_epoch(TRAINING_IMAGES, BATCH)

    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((BATCH, PIXELS), dtype=np.float32))

    def new_parameters():
        """Each model's encoder kernel and bias, decoder kernel and bias, in that order."""
        return [tf.Variable(value) for _ in range(MODELS) for value in (
            rng.standard_normal((PIXELS, CODE), dtype=np.float32) * 0.05, np.zeros(CODE, np.float32),
            rng.standard_normal((CODE, PIXELS), dtype=np.float32) * 0.05, np.zeros(PIXELS, np.float32))]

    def loss_of(parameters, sigmoid, loss):
        w_enc, b_enc, w_dec, b_dec = (parameters[i::4] for i in range(4))
        codes = tf.nn.relu(x @ tf.concat(w_enc, 1) + tf.concat(b_enc, 0))
        total = 0.0
        for k in range(MODELS):
            out = codes[:, k * CODE:(k + 1) * CODE] @ w_dec[k] + b_dec[k]
            out = tf.sigmoid(out) if sigmoid else out
            if loss == "half mean square":
                total += 0.5 * tf.reduce_mean(tf.square(out))
            elif loss == "mse":
                total += tf.reduce_mean(tf.square(out - x))
            else:
                total += tf.reduce_mean(i_divergence(x, out, clip=True))
        return total

    rows = [("products, biases, ReLU codes, linear decoder, trivial loss", False, "half mean square", False),
            ("+ sigmoid decoder and squared error", True, "mse", False),
            ("+ clipped I-divergence instead", True, "i2", False),
            ("+ Adam's update of the 120 variables", True, "i2", True)]
    print(f"{MODELS} models, batch {BATCH}, TensorFlow {tf.__version__} with XLA, keras {keras.__version__}; "
          f"best of {args.repeats} steps, x {steps} steps per epoch")
    previous = None
    for name, sigmoid, loss, adam in rows:
        parameters = new_parameters()
        optimizer = make_optimizer("adam") if adam else None
        if optimizer is not None:
            optimizer.build(parameters)

        @tf.function(jit_compile=True)
        def step():
            with tf.GradientTape() as tape:
                value = loss_of(parameters, sigmoid, loss)
            grads = tape.gradient(value, parameters)
            if optimizer is not None:
                optimizer.apply(grads, parameters)
                return value
            return value, grads

        step()  # compile
        best = min(_timed(step) for _ in range(args.repeats))
        epoch = best * steps
        added = "" if previous is None else f"  (+{epoch - previous:.2f})"
        print(f"{name:62s} {best * 1e3:7.2f} ms/step {epoch:6.2f} s/epoch{added}")
        previous = epoch
    return 0


if __name__ == "__main__":
    sys.exit(main())
