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
import sys

import numpy as np

from .plan import Plan, UsageError, add_arguments, load_data, validate
from .store import RunStore, load_records
from .tables import build_rows, write_readme, write_tables

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
    print(f"wrote {md_path}, {csv_path}, {len(figures)} figures in {plan.out / 'figures'}")
    return 0


def _train(plan: Plan, store: RunStore, todo: dict, x_train, x_test, y_test) -> None:
    from tqdm.auto import tqdm

    from .. import ssim
    from ..training import GridConfig, train_grid

    versions = _versions()
    # smoothing=0: the time left is the average rate over the whole run times what is left.
    # Results arrive a seed's grid at a time, so tqdm's default moving average of the latest
    # rate would swing between hours and seconds.
    bar = tqdm(total=sum(map(len, todo.values())), desc="reproduce (seed grids)", unit="run",
               position=0, dynamic_ncols=True, smoothing=0)
    for seed, configs in todo.items():
        bar.set_postfix_str(f"seed {seed}: {len(configs)} configurations")
        results = train_grid([GridConfig(*c) for c in configs], x_train, x_test, epochs=plan.epochs,
                             batch_size=plan.batch_size, seed=seed,
                             optimizer_defaults=plan.optimizer_defaults, progress=True)
        for result in results:
            decoded = np.asarray(result.predict(x_test), dtype=np.float32)
            details = ssim.thesis_ssim(x_test, y_test, decoded, return_details=True)
            result.evaluation = {
                "thesis_ssim": float(details.value),
                "thesis_ssim_per_digit": [float(v) for v in details.per_digit],
                "thesis_indices": [int(i) for i in details.indices],
                "honest_ssim": float(ssim.mean_ssim(x_test, decoded)),
            }
            result.versions = versions
            store.save(result, decoded[list(details.indices)], details.indices)
            bar.update(1)
    bar.close()


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
