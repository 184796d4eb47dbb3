"""On JAX, one compiled call per execution of ``fit`` or ``evaluate`` instead of one per step.

Why: Keras's JAX trainer runs ``steps_per_execution`` steps as a Python loop that calls the
compiled step once per batch. The thesis's models are so small that this host-side work (about
a millisecond per step for the grid on an H100: the same for 30 models as for 150) costs more
than the arithmetic. :class:`EpochScan` makes each execution ONE compiled ``jax.lax.scan`` over
its batches, stacked on the device. A last, smaller batch (``N`` not a multiple of the batch
size) is a single compiled step, as in Keras; its program is compiled in a background thread
while the scan's program compiles, so the two compilations overlap. On the TensorFlow backend
Keras already runs the steps in one graph, so nothing changes there.

It uses Keras's own ``train_step(state, data)`` and ``test_step(state, data)`` (the pure steps
that Keras compiles), so the arithmetic of each step is unchanged; only the loop around it moves
into the program.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .._quiet import import_keras

keras = import_keras()

__all__ = ["EpochScan"]

_COMPILER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="idivkit-compile")


class EpochScan:
    """A ``keras.Model`` mixin: on the JAX backend with ``jit_compile`` and
    ``steps_per_execution > 1``, each execution of ``fit`` and ``evaluate`` is one ``lax.scan``."""

    def _scans(self) -> bool:
        return (keras.backend.backend() == "jax" and self.jit_compile and not self.run_eagerly
                and self.steps_per_execution > 1)

    def make_train_function(self, force=False):
        if not self._scans():
            return super().make_train_function(force)
        return self._scan("train_function", self.train_step, force)

    def make_test_function(self, force=False):
        if not self._scans():
            return super().make_test_function(force)
        return self._scan("test_function", self.test_step, force)

    def _scan(self, attribute: str, step, force: bool) -> None:
        if getattr(self, attribute) is None or force:
            setattr(self, attribute, _scanned(step, self.steps_per_execution))


def _scanned(step, steps_per_execution: int):
    """``function(state, iterator) -> (logs, state)`` running up to ``steps_per_execution``
    batches of ``iterator`` through ``step``: the full-size ones as one scan, then the rest."""
    import jax
    import jax.numpy as jnp

    def scan(state, batches):
        def body(state, data):
            logs, state = step(state, data)
            return state, logs

        state, logs = jax.lax.scan(body, state, batches)
        return jax.tree.map(lambda values: values[-1], logs), state  # the last step's logs

    scan = jax.jit(scan, donate_argnums=0)
    single = jax.jit(step, donate_argnums=0)
    compiled = {}

    def rows(data):
        return jax.tree.leaves(data)[0].shape[0]

    def single_program(state, data):
        """The compiled single step for ``data``'s shapes (a Future), compiling it if new."""
        key = tuple((leaf.shape, str(leaf.dtype)) for leaf in jax.tree.leaves(data))
        if key not in compiled:
            compiled[key] = _COMPILER.submit(single.lower(state, data).compile)
        return compiled[key]

    def function(state, iterator):
        batches = [next(iterator)]  # StopIteration here ends the epoch, as in Keras
        for _ in range(steps_per_execution - 1):
            try:
                batches.append(next(iterator))
            except StopIteration:
                break
        full = [b for b in batches if rows(b) == rows(batches[0])]
        if len(full) < 2:
            full = []
        rest = batches[len(full):]
        programs = [single_program(state, data) for data in rest]  # compile while the scan runs
        logs = None
        if full:
            logs, state = scan(state, jax.tree.map(lambda *parts: jnp.stack(parts), *full))
        for program, data in zip(programs, rest):
            try:
                logs, state = program.result()(state, data)
            except (TypeError, ValueError):  # arguments unlike the lowered ones: Keras's way
                logs, state = single(state, data)
        return logs, state

    return function
