"""``idivkit reproduce``: train the thesis's grid and regenerate its SSIM tables and figures.

The unit of work is one seed's grid (one :func:`idivkit.trainer.train_grid` call). Each
(seed, configuration) result is a small JSON file under ``OUT/runs/seed<S>/``; rerunning the
same command skips what is done. ``OUT/manifest.json`` records the settings that change the
numbers (epochs, training-set size, batch size, optimizer defaults) and a rerun with other
settings is refused. After training, ``tables.md``, ``tables.csv``, ``figures/`` and a README
are (re)written from every stored result the command selects.

Importing this module is cheap: TensorFlow is imported only when training starts.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import thesis
from .reproduce_tables import build_rows, load_records, write_readme, write_tables

DEFAULT_OUT = "runs/reproduce"
QUICK_OUT = "runs/reproduce-quick"
QUICK = {"epochs": 3, "seeds": 1, "n_train": 6000}
BATCH_SIZE = 256
N_MNIST_TRAIN = 60000
MAX_BALANCED = 54210  # 10 x 5421, the count of the rarest training digit (5)
# Settings that change the numbers: a rerun into the same OUT must use the same ones.
MANIFEST_KEYS = ("epochs", "n_train", "batch_size", "optimizer_defaults")


class UsageError(ValueError):
    """A bad command-line argument: reported with exit code 2 before any training."""


@dataclass(frozen=True)
class Plan:
    """The validated settings of one ``idivkit reproduce`` invocation."""

    epochs: int
    seeds: tuple[int, ...]
    configs: tuple[tuple[str, str, str], ...]  # (decoder, loss, optimizer)
    optimizer_defaults: str
    n_train: int
    out: Path
    resume: bool
    quick: bool
    mnist: str | None
    batch_size: int = BATCH_SIZE

    def manifest(self) -> dict:
        return {key: getattr(self, key) for key in MANIFEST_KEYS}

    def command(self) -> str:
        """The canonical command line that reproduces this plan."""
        pick = lambda i: ",".join(sorted({c[i] for c in self.configs}, key=_order(i)))  # noqa: E731
        parts = ["idivkit reproduce", f"--epochs {self.epochs}",
                 f"--seed-list {','.join(map(str, self.seeds))}",
                 f"--decoders {pick(0)}", f"--losses {pick(1)}", f"--optimizers {pick(2)}",
                 f"--optimizer-defaults {self.optimizer_defaults}", f"--n-train {self.n_train}",
                 f"--out {self.out}"]
        if self.quick:
            parts.insert(1, "--quick")
        return " ".join(parts)


def _order(index: int):
    known = (thesis.DECODERS, thesis.LOSSES, thesis.OPTIMIZERS)[index]
    return lambda name: (known.index(name) if name in known else len(known), name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``idivkit reproduce``."""
    add = parser.add_argument
    add("--epochs", type=int, default=None, help="epochs per run (default 50; --quick: 3)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=None,
                       help="number of seeds, run as 0..n-1 (default 5; --quick: 1)")
    seeds.add_argument("--seed-list", default=None, help="explicit seeds instead of --seeds, comma separated (e.g. 0,3,7)")
    add("--decoders", default=None, help=f"comma separated, of {','.join(thesis.DECODERS)} (default all)")
    add("--losses", default=None, help=f"comma separated, of {','.join(thesis.LOSSES)} (default all)")
    add("--optimizers", default=None,
        help=f"comma separated (default the thesis's five: {','.join(thesis.OPTIMIZERS)}; "
             "the trainer also knows sgd,rmsprop; --quick: each cell's thesis optimizer only)")
    add("--optimizer-defaults", choices=("keras2", "keras3"), default="keras2",
        help="optimizer hyper-parameters: Keras 2.2's, as the thesis ran (default), or Keras 3's")
    add("--n-train", type=int, default=None,
        help="class-balanced training subset size (default all 60000; --quick: 6000)")
    add("--out", default=None, help=f"output folder (default {DEFAULT_OUT}; --quick: {QUICK_OUT})")
    add("--mnist", default=None, help="path of mnist.npz (default: the loader's, env IDIVKIT_MNIST)")
    add("--quick", action="store_true",
        help="a smoke run: 6000 images, 3 epochs, 1 seed, the six thesis cells with their "
             "thesis optimizer (a few minutes at most on two CPU cores)")
    add("--resume", action=argparse.BooleanOptionalAction, default=True,
        help="skip (seed, configuration) results already in OUT (default); --no-resume "
             "deletes OUT's stored results and retrains")


def _names(text: str | None, valid, what: str, default) -> list[str]:
    if text is None:
        return list(default)
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--{what} is empty; valid: {', '.join(valid)}")
    unknown = [n for n in names if n not in valid]
    if unknown:
        singular = what[:-2] if what.endswith("ses") else what[:-1]
        raise UsageError(f"unknown {singular} {', '.join(map(repr, unknown))} "
                         f"(valid {what}: {', '.join(valid)})")
    return list(dict.fromkeys(names))


def known_optimizers() -> tuple[str, ...]:
    """Optimizer names the trainer accepts, the thesis's five first (no Keras import)."""
    from ._results import OPTIMIZER_NAMES

    return tuple(dict.fromkeys([*thesis.OPTIMIZERS, *OPTIMIZER_NAMES]))


def validate(args: argparse.Namespace) -> Plan:
    """Check every argument and resolve defaults; raise :class:`UsageError` on the first problem."""
    quick = bool(args.quick)
    epochs = args.epochs if args.epochs is not None else (QUICK["epochs"] if quick else 50)
    if epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {epochs}")
    if args.seed_list is not None:
        try:
            seeds = [int(s) for s in args.seed_list.split(",") if s.strip()]
        except ValueError:
            raise UsageError(f"--seed-list must be comma-separated integers, got {args.seed_list!r}") from None
        if not seeds:
            raise UsageError("--seed-list is empty: give at least one seed")
        if min(seeds) < 0:
            raise UsageError(f"--seed-list seeds must be >= 0, got {min(seeds)}")
        seeds = list(dict.fromkeys(seeds))
    else:
        n_seeds = args.seeds if args.seeds is not None else (QUICK["seeds"] if quick else 5)
        if n_seeds < 1:
            raise UsageError(f"--seeds must be at least 1, got {n_seeds}")
        seeds = list(range(n_seeds))
    decoders = _names(args.decoders, thesis.DECODERS, "decoders", thesis.DECODERS)
    losses = _names(args.losses, thesis.LOSSES, "losses", thesis.LOSSES)
    if quick and args.optimizers is None:
        configs = [c for c in thesis.thesis_cells() if c[0] in decoders and c[1] in losses]
    else:
        optimizers = _names(args.optimizers, known_optimizers(), "optimizers", thesis.OPTIMIZERS)
        configs = [(d, l, o) for d in decoders for l in losses for o in optimizers]
    n_train = args.n_train if args.n_train is not None else (QUICK["n_train"] if quick else N_MNIST_TRAIN)
    if n_train != N_MNIST_TRAIN and not (10 <= n_train <= MAX_BALANCED and n_train % 10 == 0):
        raise UsageError(f"--n-train must be {N_MNIST_TRAIN} (all) or a multiple of 10 from 10 to "
                         f"{MAX_BALANCED} (class-balanced: the rarest digit has {MAX_BALANCED // 10} "
                         f"training images), got {n_train}")
    out = Path(args.out if args.out is not None else (QUICK_OUT if quick else DEFAULT_OUT))
    _check_writable(out)
    return Plan(epochs=epochs, seeds=tuple(seeds), configs=tuple(configs),
                optimizer_defaults=args.optimizer_defaults, n_train=n_train, out=out,
                resume=bool(args.resume), quick=quick, mnist=args.mnist)


def _check_writable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_text("probe")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"--out {out} is not writable: {error.strerror or error}") from None


def _load_data(plan: Plan):
    from .data import balanced_indices, load_mnist

    try:
        (x_train, y_train), (x_test, y_test) = load_mnist(plan.mnist)
    except (OSError, ValueError, RuntimeError) as error:  # FileNotFound, MnistNotFound, bad file
        raise UsageError(f"MNIST could not be loaded: {error}") from None
    if plan.n_train < len(x_train):
        # The same class-balanced subset for every seed: seeds vary initialisation and shuffling.
        x_train = x_train[np.sort(balanced_indices(y_train, plan.n_train // 10, seed=0))]
    return x_train, x_test, y_test


def _check_manifest(plan: Plan) -> None:
    path = plan.out / "manifest.json"
    runs = plan.out / "runs"
    if not plan.resume and runs.is_dir():
        for stale in sorted(runs.glob("seed*/*.json")):
            stale.unlink()
    if path.exists() and plan.resume:
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise UsageError(f"{path} is unreadable ({error}); remove it or use --no-resume") from None
        diffs = [f"{k}: stored {stored.get(k)!r}, asked {v!r}" for k, v in plan.manifest().items()
                 if stored.get(k) != v]
        if diffs:
            raise UsageError(f"{plan.out} holds results made with other settings ({'; '.join(diffs)}); "
                             "use another --out, the same settings, or --no-resume to discard them")
    path.write_text(json.dumps(plan.manifest(), indent=1) + "\n")


def result_path(out: Path, seed: int, config: tuple[str, str, str], suffix: str = ".json") -> Path:
    return out / "runs" / f"seed{seed}" / ("-".join(config) + suffix)


def run(args: argparse.Namespace) -> int:
    """Validate, train what is missing, then write tables, figures and README. Exit code."""
    try:
        plan = validate(args)
        x_train, x_test, y_test = _load_data(plan)
        _check_manifest(plan)
    except UsageError as error:
        print(f"idivkit reproduce: error: {error}", file=sys.stderr)
        return 2
    todo = {seed: [c for c in plan.configs if not result_path(plan.out, seed, c).exists()]
            for seed in plan.seeds}
    todo = {seed: configs for seed, configs in todo.items() if configs}
    n_done = len(plan.seeds) * len(plan.configs) - sum(map(len, todo.values()))
    print(f"idivkit reproduce: {len(plan.configs)} configurations x {len(plan.seeds)} seeds, "
          f"{plan.epochs} epochs, {len(x_train)} training images -> {plan.out}")
    if n_done:
        print(f"resuming: skipping {n_done} finished (seed, configuration) results")
    if todo:
        _train(plan, todo, x_train, x_test, y_test)
    records = load_records(plan.out, plan.seeds, plan.configs)
    rows = build_rows(records)
    md_path, csv_path = write_tables(rows, plan.out, plan.command(), plan.seeds, plan.epochs)
    from . import plots

    figures = plots.write_figures(records, rows, plan.out, x_test)
    write_readme(plan.out, plan.command(), figures)
    print(f"wrote {md_path}, {csv_path}, {len(figures)} figures in {plan.out / 'figures'}")
    return 0


def _train(plan: Plan, todo: dict[int, list], x_train, x_test, y_test) -> None:
    from tqdm.auto import tqdm

    from . import ssim, trainer

    versions = _versions()
    # smoothing=0: the time left is the average rate over the whole run times what is left.
    # Results arrive 30 at a time (a seed's grid), so tqdm's default moving average of the
    # latest rate would swing between hours and seconds.
    bar = tqdm(total=sum(map(len, todo.values())), desc="reproduce (seed grids)", unit="run",
               position=0, dynamic_ncols=True, smoothing=0)
    for seed, configs in todo.items():
        bar.set_postfix_str(f"seed {seed}: {len(configs)} configurations")
        grid = [trainer.GridConfig(*c) for c in configs]
        results = trainer.train_grid(grid, x_train, x_test, epochs=plan.epochs,
                                     batch_size=plan.batch_size, seed=seed,
                                     optimizer_defaults=plan.optimizer_defaults, progress=True)
        for config, result in zip(configs, results):
            _save_result(plan, seed, config, result, x_test, y_test, versions, ssim)
            bar.update(1)
    bar.close()


def _save_result(plan, seed, config, result, x_test, y_test, versions, ssim) -> None:
    decoded = np.asarray(result.predict(x_test), dtype=np.float32)
    details = ssim.thesis_ssim(x_test, y_test, decoded, return_details=True)
    record = {
        "config": dict(zip(("decoder", "loss", "optimizer"), config)), "key": "/".join(config),
        "seed": seed, **plan.manifest(),
        "history": {k: [float(v) for v in vs] for k, vs in result.history.items()},
        "thesis_ssim": float(details.value),
        "thesis_ssim_per_digit": [float(v) for v in details.per_digit],
        "thesis_indices": [int(i) for i in details.indices],
        "honest_ssim": float(ssim.mean_ssim(x_test, decoded)),
        "seconds": float(result.seconds),
        "seconds_per_epoch": [float(v) for v in getattr(result, "seconds_per_epoch", [])],
        "backend": getattr(result, "backend", "") or versions.get("backend", ""), "versions": versions,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = result_path(plan.out, seed, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The 10 protocol reconstructions (8-bit) for the figures, apart from the committable JSON.
    pixels = np.clip(np.rint(decoded[record["thesis_indices"]] * 255), 0, 255).astype(np.uint8)
    _write_json(result_path(plan.out, seed, config, ".recon.json"),
                {"indices": record["thesis_indices"], "uint8_base64": base64.b64encode(pixels.tobytes()).decode()})
    _write_json(path, record)  # last: its presence marks the unit as done


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_finite(data), indent=1) + "\n")
    os.replace(tmp, path)


def _finite(value):
    """JSON has no NaN/inf: store them as null (read back as NaN)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _versions() -> dict:
    import platform
    from importlib import metadata

    import keras

    from . import __version__

    found = {"idivkit": __version__, "python": platform.python_version(), "backend": keras.backend.backend()}
    for name in ("keras", "tensorflow", "tensorflow-cpu", "jax", "numpy", "scikit-image"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found
