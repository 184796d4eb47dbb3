"""One Keras optimizer that applies several optimizers, each to its own group of variables.

Why: the grid trains configurations with different optimizers. With one optimizer per Keras
model it needs one model, one compiled program and one ``fit`` call per optimizer and epoch;
with this wrapper the whole grid is one model and one program. It works on every backend
because it only splits the gradient list and calls each optimizer's own ``apply`` (on JAX
inside the trainer's stateless scope, which covers the wrapped optimizers' variables too).

Exactness: the optimizers used here update each weight entry from its own gradient history
only, so applying them group by group is what each would do alone.
"""

from __future__ import annotations

from .._quiet import import_keras

keras = import_keras()

__all__ = ["GroupedOptimizer"]


class GroupedOptimizer(keras.optimizers.Optimizer):
    """Apply ``optimizers[k]`` to the variables for which ``group_of(variable) == k``.

    Parameters
    ----------
    optimizers : list of keras.optimizers.Optimizer
        Unbuilt optimizers, one per group.
    group_of : callable
        Maps a model variable to its group index (e.g. by ``variable.path``).
    """

    def __init__(self, optimizers, group_of, name="grouped_optimizer"):
        super().__init__(learning_rate=0.0, name=name)
        self._optimizers = list(optimizers)
        self._group_of = group_of
        self._positions = None

    def build(self, variables):
        super().build(variables)
        self._positions = [[] for _ in self._optimizers]
        for i, variable in enumerate(variables):
            self._positions[self._group_of(variable)].append(i)
        for optimizer, positions in zip(self._optimizers, self._positions):
            optimizer.build([variables[i] for i in positions])

    @property
    def variables(self):
        return self._variables[:] + [v for o in self._optimizers for v in o.variables]

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        elif not self.built:
            self.build(list(trainable_variables))
        trainable_variables = list(trainable_variables)
        for optimizer, positions in zip(self._optimizers, self._positions):
            if positions:
                optimizer.apply([grads[i] for i in positions], [trainable_variables[i] for i in positions])
        self._iterations.assign_add(1)
