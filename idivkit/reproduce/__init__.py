"""``idivkit reproduce``: train the thesis's grid and regenerate its SSIM tables and figures.

* :mod:`.plan`    options and their validation (:class:`~.plan.Plan`, exit code 2 on a bad one)
* :mod:`.store`   the run store: one stored result per (seed, configuration), the manifest
* :mod:`.tables`  mean +- std per cell beside the thesis's table, Markdown and CSV, README
* :mod:`.figures` loss histories (figs 10-15), reconstructions (figs 3-9), SSIM summary
* :mod:`.thesis`  the thesis's published numbers and the reference re-run, as data

The unit of work is one seed's grid (one :func:`idivkit.training.train_grid` call); rerunning
the same command skips what is stored. Importing this package is cheap: Keras is imported only
when training starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._system import usable_cores
from .plan import Plan, UsageError, add_arguments, load_data, validate
from .store import RunStore, load_records
from .tables import build_rows, main_table, write_readme, write_tables

__all__ = ["Plan", "UsageError", "add_arguments", "run", "validate"]


def run(args: argparse.Namespace) -> int:
    """Validate, train what is missing, then write tables, figures and README. Exit code."""
    try:
        plan = validate(args)
        x_train, x_test, y_test = load_data(plan)
        store = RunStore(plan.out)
        problem = store.check_manifest(plan.manifest(), plan.resume)
        if problem:
            raise UsageError(problem)
    except UsageError as error:
        print(f"idivkit reproduce: error: {error}", file=sys.stderr)
        return 2
    todo = {seed: [c for c in plan.configs if not store.done(seed, c)] for seed in plan.seeds}
    todo = {seed: configs for seed, configs in todo.items() if configs}
    n_done = len(plan.seeds) * len(plan.configs) - sum(map(len, todo.values()))
    print(f"idivkit reproduce: {len(plan.configs)} configurations x {len(plan.seeds)} seeds, "
          f"{plan.epochs} epochs, {len(x_train)} training images -> {plan.out}")
    if n_done:
        print(f"resuming: skipping {n_done} finished (seed, configuration) results")
    if todo:
        _train(plan, store, todo, x_train, x_test, y_test)
    records = load_records(plan.out, plan.seeds, plan.configs)
    rows = build_rows(records)
    md_path, csv_path = write_tables(rows, plan.out, plan.command(), plan.seeds, plan.epochs)
    from .figures import write_figures

    figures = write_figures(records, rows, plan.out, x_test)
    write_readme(plan.out, plan.command(), figures)
    print()
    print(main_table(md_path.read_text()))
    print(f"\nwrote {md_path}, {csv_path}, {len(figures)} figures in {plan.out / 'figures'}")
    return 0


def _train(plan: Plan, store: RunStore, todo: dict, x_train, x_test, y_test) -> None:
    from tqdm.auto import tqdm

    from ..training import GridConfig, train_grid

    versions = _versions()
    programs = _programs(todo, _seeds_per_program(len(x_train)))
    n_runs = sum(len(configs) * len(seeds) for configs, seeds in programs)
    # One bar over the whole run, in epochs; smoothing=0: the time left is the average rate
    # so far times what is left (compilation makes the first epoch of a program slow).
    bar = tqdm(total=len(programs) * plan.epochs, desc="reproduce", unit="epoch",
               dynamic_ncols=True, smoothing=0)

    def on_epoch(latest):
        bar.set_postfix_str(f"{n_runs} runs, mean loss {latest['mean loss'][-1]:.4g}", refresh=False)
        bar.update(1)

    def evaluate(result):
        decoded, indices = _evaluate(result, x_test, y_test)
        return decoded[indices], indices

    # The runs' SSIM evaluations are independent numpy work that releases the GIL: one thread
    # per core (150 runs took ~110 s one after another on a GPU machine's CPU).
    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        for configs, seeds in programs:
            results = train_grid([GridConfig(*c) for c in configs], x_train, x_test, seeds=seeds,
                                 epochs=plan.epochs, batch_size=plan.batch_size,
                                 optimizer_defaults=plan.optimizer_defaults, progress=on_epoch)
            for done, (result, (shown, indices)) in enumerate(zip(results, pool.map(evaluate, results)), 1):
                result.versions = versions
                store.save(result, shown, indices)
                bar.set_postfix_str(f"{n_runs} runs, SSIM of {done}/{len(results)} evaluated")
    bar.close()


def _programs(todo: dict, seeds_per_program: int) -> list[tuple[list, list[int]]]:
    """Seeds that need the same configurations train together, ``seeds_per_program`` at most."""
    by_configs: dict[tuple, list[int]] = {}
    for seed, configs in todo.items():
        by_configs.setdefault(tuple(configs), []).append(seed)
    return [(list(configs), seeds[i:i + seeds_per_program])
            for configs, seeds in by_configs.items()
            for i in range(0, len(seeds), seeds_per_program)]


def _seeds_per_program(n_train: int) -> int:
    """How many seeds fit one program: each needs its own copy of the epoch's images (the
    buffer, the backend's copy of it and a gather), so use at most half the free memory."""
    per_seed = 3 * n_train * 784 * 4
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on Linux: one seed at a time
        return 1
    return max(1, int(free // 2 // per_seed))


def _evaluate(result, x_test, y_test):
    """Reconstruct the test set (numpy forward pass of the trained weights) and measure SSIM
    under both protocols into ``result.evaluation``; return (reconstructions, protocol rows)."""
    from .. import ssim
    from ..backprop import forward

    w_enc, b_enc, w_dec, b_dec = result.weights
    params = {"W": w_enc.T, "b": b_enc, "W_tilde": w_dec.T, "b_tilde": b_dec}
    decoded = forward(params, x_test, result.config.decoder)["x_hat"].astype(np.float32)
    details = ssim.thesis_ssim(x_test, y_test, decoded, return_details=True)
    result.evaluation = {
        "thesis_ssim": float(details.value),
        "thesis_ssim_per_digit": [float(v) for v in details.per_digit],
        "thesis_indices": [int(i) for i in details.indices],
        "honest_ssim": float(ssim.mean_ssim(x_test, decoded)),
    }
    return decoded, list(details.indices)


def _versions() -> dict:
    import platform
    from importlib import metadata

    from .. import __version__
    from .._quiet import import_keras

    found = {"idivkit": __version__, "python": platform.python_version(),
             "backend": import_keras().backend.backend()}
    for name in ("keras", "tensorflow", "tensorflow-cpu", "jax", "numpy", "scikit-image"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found
