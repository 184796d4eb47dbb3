"""The grid's stacked layout: the branches of each optimizer as one stack (the GPU layout).

Why: with one set of variables per branch (:mod:`.branches`), every training step launches a
few small kernels per branch and hands every branch's variables and loss trackers to the
compiled step. For the thesis's 30 configurations x 5 seeds that is thousands of launches and
arguments per step: a GPU waits on them instead of computing. Here the branches that share an
optimizer are one stack: each of the four weight tensors gains a leading branch axis, the
products are batched products (``einsum``), the per-branch losses are one vector metric, and
the images stay on the device: a step's input is only the images' indices, one column per
seed, so the host copies no images per epoch. On XLA:CPU this layout is slower: its products
alone take what the branches layout's take, but its elementwise work streams whole stacks
(30 x 256 x 784 values) through memory instead of one branch at a time (benchmarks/README.md),
which is why :func:`~idivkit.training.train_grid` picks it on GPUs only.

Exactness as in :mod:`.grid`: the Keras optimizers used here update each weight entry from its
own history, so a stack is updated as each of its slices would be alone.
"""

from __future__ import annotations

from itertools import groupby

import numpy as np

from .._quiet import import_keras
from .epoch_scan import EpochScan
from .loop import epoch_permutation

keras = import_keras()
ops = keras.ops

__all__ = ["StackedModel", "VectorMean"]


class VectorMean(keras.metrics.Metric):
    """Running means of a vector of values, each sample weighted (as ``keras.metrics.Mean``)."""

    def __init__(self, size: int, name: str = "branch_losses"):
        super().__init__(name=name)
        self.total = self.add_variable(shape=(size,), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, values, sample_weight=1.0):
        weight = ops.cast(sample_weight, "float32")
        self.total.assign_add(ops.cast(values, "float32") * weight)
        self.count.assign_add(weight)

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(ops.zeros(self.total.shape))
        self.count.assign(0.0)


class _Stack:
    """One optimizer's branches: their indices, input blocks and runs of equal (decoder, loss)."""

    def __init__(self, members, blocks, runs):
        self.members, self.blocks, self.runs = members, np.asarray(blocks, np.int32), runs
        self.variables = None


class StackedModel(EpochScan, keras.Model):
    """All branches of a grid, stacked per optimizer group; the loss is the sum of branch losses.

    Parameters
    ----------
    decoders, loss_names, losses, blocks, groups : lists, one entry per branch
        Decoder name, loss name, Keras loss object, input block (seed index) and optimizer
        group of each branch.
    initial : list of list of ndarray
        Each branch's four initial weights (``initial_weights`` order).
    x_train, x_val : ndarray, shape (N, 784) and (M, 784) or None
        Stored once, on the model's device, as a non-trainable variable.
    code_dim : int
    """

    def __init__(self, decoders, loss_names, losses, blocks, groups, initial, x_train, x_val, code_dim):
        super().__init__(name="stacked_grid")
        self.n_train, self.n_blocks = len(x_train), max(blocks) + 1
        images = x_train if x_val is None else np.concatenate([x_train, x_val])
        self.images = self.add_weight(shape=images.shape, initializer="zeros", trainable=False,
                                      name="images")
        self.images.assign(images)
        self.stacks, self.position = [], {}
        for g in sorted(set(groups)):
            key = lambda k: (decoders[k], loss_names[k])  # noqa: E731
            members = sorted((k for k in range(len(groups)) if groups[k] == g), key=key)
            runs, start = [], 0
            for (decoder, _), run in groupby(members, key=key):
                size = len(list(run))
                runs.append((start, start + size, decoder, losses[members[start]]))
                start += size
            self.stacks.append(_Stack(members, [blocks[k] for k in members], runs))
        order = [k for stack in self.stacks for k in stack.members]
        self.order = np.argsort(order)  # branch k's entry in the loss vector is order[k]
        c, d = code_dim, images.shape[1]
        for s, stack in enumerate(self.stacks):
            m = len(stack.members)
            stack.variables = [
                self.add_weight(shape=(m, d, c), initializer="zeros", name=f"w_enc_{s}"),
                self.add_weight(shape=(m, c), initializer="zeros", name=f"b_enc_{s}"),
                self.add_weight(shape=(m, c, d), initializer="zeros", name=f"w_dec_{s}"),
                self.add_weight(shape=(m, d), initializer="zeros", name=f"b_dec_{s}"),
            ]
            for j, variable in enumerate(stack.variables):
                variable.assign(np.stack([initial[k][j] for k in stack.members]))
            self.position.update({k: (s, i) for i, k in enumerate(stack.members)})
        self.tracker = VectorMean(len(groups))
        self(np.zeros((1, self.n_blocks), np.int32))  # builds the model

    def _inputs(self, stack, x):
        """The images of the stack's branches from ``x`` (batch, blocks, 784): (batch, m, 784),
        or (batch, 1, 784) when there is one block (broadcast, not copied m times)."""
        return x if self.n_blocks == 1 else ops.take(x, stack.blocks, axis=1)

    def call(self, indices):
        x = ops.take(self.images, indices, axis=0)  # (batch, blocks, 784)
        outputs = []
        for stack in self.stacks:
            w_enc, b_enc, w_dec, b_dec = stack.variables
            x_s = self._inputs(stack, x)
            # one block: a single (784, m*32) product; several: one product per branch, batched
            code = (ops.einsum("bd,kdc->bkc", x_s[:, 0], w_enc) if self.n_blocks == 1
                    else ops.einsum("bkd,kdc->bkc", x_s, w_enc))
            code = ops.relu(code + b_enc)
            pre = ops.einsum("bkc,kcd->bkd", code, w_dec) + b_dec
            for start, stop, decoder, _ in stack.runs:
                part = pre[:, start:stop]
                outputs.append(ops.relu(part) if decoder == "relu" else ops.sigmoid(part))
        return outputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        images = ops.take(self.images, x, axis=0)
        values, outputs = [], iter(y_pred)
        for stack in self.stacks:
            targets = self._inputs(stack, images)
            for start, stop, _, loss in stack.runs:
                target = targets if self.n_blocks == 1 else targets[:, start:stop]
                # per-sample means over pixels, (batch, run); then each branch's batch mean
                values.append(ops.mean(loss.call(target, next(outputs)), axis=0))
        values = ops.concatenate(values)
        self.tracker.update_state(values, sample_weight=ops.shape(x)[0])
        return ops.sum(values)

    def epoch_input(self, seeds, epoch):
        """The indices of one epoch's images: column ``b`` in seed ``seeds[b]``'s batch order."""
        return np.stack([epoch_permutation(self.n_train, s, epoch) for s in seeds], axis=1).astype(np.int32)

    def validation_input(self, x_val):
        rows = np.arange(self.n_train, self.n_train + len(x_val), dtype=np.int32)
        return np.repeat(rows[:, None], self.n_blocks, axis=1)

    def branch_values(self, logs) -> list[float]:
        """Each branch's loss from the logs of ``fit`` or ``evaluate``."""
        values = np.asarray(logs["branch_losses"], np.float64)
        return [float(v) for v in values[self.order]]

    def branch_weights(self, k) -> list:
        s, i = self.position[k]
        return [np.asarray(ops.convert_to_numpy(v))[i] for v in self.stacks[s].variables]

    def variable_group(self, group_of_branch):
        """``{id(variable): group}`` from ``group_of_branch[k]`` = branch k's group."""
        return {id(v): group_of_branch[stack.members[0]] for stack in self.stacks for v in stack.variables}
