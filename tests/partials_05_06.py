"""Partial submissions of lessons 05 and 06: one typical mistake each, costing one step."""

from __future__ import annotations


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def partial_05(nb):
    """Lesson 05: Adagrad with Keras 2.2's rule (epsilon outside the square root) loses its 2
    points; minibatches that drop the last, partial batch lose theirs (2); nothing else."""
    _cell(nb, "ex6-adagrad").source = (
        "def adagrad_step(param, grad, state, learning_rate=0.01, initial_accumulator_value=0.0, epsilon=1e-7):\n"
        "    a = state.get('a', np.full_like(param, initial_accumulator_value)) + grad**2\n"
        "    return param - learning_rate * grad / (np.sqrt(a) + epsilon), {'a': a}\n")
    _cell(nb, "ex1-minibatches").source = (
        "def minibatches(n, batch_size, seed, epoch):\n"
        "    order = np.random.default_rng([seed, epoch]).permutation(n)\n"
        "    return [order[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]\n")
    return nb


def partial_06(nb):
    """Lesson 06: E_I1 with its arguments swapped (it computes E_I2) loses its 2 points."""
    _cell(nb, "ex2-e-i1").source = _cell(nb, "ex2-e-i1").source.replace(
        "ops.mean(x_hat * ops.log(x_hat / x) - x_hat + x, axis=-1)", "ops.mean(x * ops.log(x / x_hat) - x + x_hat, axis=-1)")
    return nb


def cheat_06(nb):
    """Lesson 06: E_I2 that calls the package's Keras loss scores zero for that step (2 points),
    although the grader's static check must accept keras.ops in the correct answers."""
    _cell(nb, "ex1-e-i2").source = (
        "import idivkit.keras\n\n\n"
        "def e_i2(y_true, y_pred):\n"
        "    return idivkit.keras.i_divergence(y_true, y_pred, clip=True)\n\n\n"
        "def e_i2_numpy(x, x_hat):\n"
        "    return ops.convert_to_numpy(e_i2(ops.convert_to_tensor(x, 'float32'), ops.convert_to_tensor(x_hat, 'float32')))\n")
    return nb
