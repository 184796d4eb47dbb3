"""The grid's branches layout: one set of four variables per branch (the default on CPUs).

Each branch (seed, configuration) has its own encoder and decoder variables. The input holds
one block of 784 columns per seed, each in that seed's batch order; within a block the encoder
kernels of all branches are concatenated into one matrix product, and each decoder is its own
product (on XLA:CPU separate products beat one batched product: benchmarks/README.md).
Per-branch losses are tracked with one ``keras.metrics.Mean`` per branch weighted by batch size,
the way Keras tracks a model's loss.
"""

from __future__ import annotations

import numpy as np

from .._quiet import import_keras
from .epoch_scan import EpochScan
from .loop import epoch_permutation

keras = import_keras()
ops = keras.ops

__all__ = ["BranchesModel"]


class _Autoencoders(keras.layers.Layer):
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


class BranchesModel(EpochScan, keras.Model):
    """All branches of a grid; the loss is the sum of the branch losses.

    Parameters
    ----------
    decoders, losses, blocks : lists, one entry per branch
        Decoder name, Keras loss object and input block (seed index) of each branch.
    initial : list of list of ndarray
        Each branch's four initial weights (``initial_weights`` order).
    x_train : ndarray, shape (N, 784)
    code_dim : int
    """

    def __init__(self, decoders, losses, blocks, initial, x_train, code_dim):
        super().__init__(name="grid")
        self.x_train, self.n_blocks = x_train, max(blocks) + 1
        input_dim = x_train.shape[1]
        self.stack = _Autoencoders(decoders, blocks, code_dim, input_dim)
        self.stack.build((None, self.n_blocks * input_dim))
        self.branch_losses = list(losses)
        self.branch_trackers = [keras.metrics.Mean(name=f"branch_{i}") for i in range(len(losses))]
        self(np.zeros((1, self.n_blocks * input_dim), np.float32))  # builds the model
        self.stack.set_weights([w for weights in initial for w in weights])
        self._buffer = None

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

    def epoch_input(self, seeds, epoch):
        """One epoch's input: block ``b`` is ``x_train`` in seed ``seeds[b]``'s batch order."""
        x = self.x_train
        n, d = x.shape
        if self._buffer is None:
            self._buffer = np.empty((n, len(seeds) * d), np.float32)
        for b, seed in enumerate(seeds):
            self._buffer[:, b * d:(b + 1) * d] = np.take(x, epoch_permutation(n, seed, epoch), axis=0)
        return self._buffer

    def validation_input(self, x_val):
        return np.tile(x_val, (1, self.n_blocks))

    def branch_values(self, logs) -> list[float]:
        """Each branch's loss from the logs of ``fit`` or ``evaluate``."""
        return [float(logs[f"branch_{k}"]) for k in range(len(self.branch_losses))]

    def branch_weights(self, k) -> list:
        return [np.asarray(ops.convert_to_numpy(v)) for v in self.stack.branch_vars[k]]

    def variable_group(self, group_of_branch):
        """``{id(variable): group}`` from ``group_of_branch[k]`` = branch k's group."""
        return {id(v): group_of_branch[k] for k, vs in enumerate(self.stack.branch_vars) for v in vs}
