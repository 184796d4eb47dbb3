"""The plan of ``idivkit reproduce``: its options, and their validation before any training.

Every argument is checked (and defaults resolved) into a :class:`Plan`; a bad one raises
:class:`UsageError`, which the command reports with exit code 2 before it trains anything.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..names import OPTIMIZERS
from . import thesis
from .store import MANIFEST_KEYS

DEFAULT_OUT = "runs/reproduce"
#: Named runs: the six thesis cells (each with its thesis optimizer) at the thesis's settings
#: and one seed (the main job), and a smoke run of the same cells for CI.
PRESETS = {
    "cells": {"epochs": 50, "seeds": 1, "n_train": 60000, "out": "runs/reproduce-cells"},
    "quick": {"epochs": 3, "seeds": 1, "n_train": 6000, "out": "runs/reproduce-quick"},
}
DEFAULTS = {"epochs": 50, "seeds": 5, "n_train": 60000, "out": DEFAULT_OUT}
BATCH_SIZE = 256
N_MNIST_TRAIN = 60000
MAX_BALANCED = 54210  # 10 x 5421, the count of the rarest training digit (5)


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
    preset: str | None
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
        if self.preset:
            parts.insert(1, f"--{self.preset}")
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
                       help="number of seeds, run as 0..n-1 (default 5; --cells, --quick: 1)")
    seeds.add_argument("--seed-list", default=None, help="explicit seeds instead of --seeds, comma separated (e.g. 0,3,7)")
    add("--decoders", default=None, help=f"comma separated, of {','.join(thesis.DECODERS)} (default all)")
    add("--losses", default=None, help=f"comma separated, of {','.join(thesis.LOSSES)} (default all)")
    add("--optimizers", default=None,
        help=f"comma separated (default the thesis's five: {','.join(thesis.OPTIMIZERS)}; "
             "the trainer also knows sgd,rmsprop; --cells, --quick: each cell's thesis optimizer only)")
    add("--optimizer-defaults", choices=("keras2", "keras3"), default="keras2",
        help="optimizer hyper-parameters: Keras 2.2's, as the thesis ran (default), or Keras 3's")
    add("--n-train", type=int, default=None,
        help="class-balanced training subset size (default all 60000; --quick: 6000)")
    add("--out", default=None, help=f"output folder (default {DEFAULT_OUT}; --cells: "
        f"{PRESETS['cells']['out']}; --quick: {PRESETS['quick']['out']})")
    add("--mnist", default=None, help="path of mnist.npz (default: the loader's, env IDIVKIT_MNIST)")
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--cells", dest="preset", action="store_const", const="cells",
                        help="the main job: the thesis's six cells, each with its thesis optimizer, "
                             "at the thesis's settings (all 60000 images, 50 epochs, batch 256), one seed")
    preset.add_argument("--quick", dest="preset", action="store_const", const="quick",
                        help="a smoke run of the six cells: 6000 images, 3 epochs, 1 seed (for CI; "
                             "its SSIM is far below the thesis's)")
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
    return tuple(dict.fromkeys([*thesis.OPTIMIZERS, *OPTIMIZERS]))


def validate(args: argparse.Namespace) -> Plan:
    """Check every argument and resolve defaults; raise :class:`UsageError` on the first problem."""
    preset = getattr(args, "preset", None)
    defaults = PRESETS[preset] if preset else DEFAULTS
    epochs = args.epochs if args.epochs is not None else defaults["epochs"]
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
        n_seeds = args.seeds if args.seeds is not None else defaults["seeds"]
        if n_seeds < 1:
            raise UsageError(f"--seeds must be at least 1, got {n_seeds}")
        seeds = list(range(n_seeds))
    decoders = _names(args.decoders, thesis.DECODERS, "decoders", thesis.DECODERS)
    losses = _names(args.losses, thesis.LOSSES, "losses", thesis.LOSSES)
    if preset and args.optimizers is None:
        configs = [c for c in thesis.thesis_cells() if c[0] in decoders and c[1] in losses]
    else:
        optimizers = _names(args.optimizers, known_optimizers(), "optimizers", thesis.OPTIMIZERS)
        configs = [(d, l, o) for d in decoders for l in losses for o in optimizers]
    n_train = args.n_train if args.n_train is not None else defaults["n_train"]
    if n_train != N_MNIST_TRAIN and not (10 <= n_train <= MAX_BALANCED and n_train % 10 == 0):
        raise UsageError(f"--n-train must be {N_MNIST_TRAIN} (all) or a multiple of 10 from 10 to "
                         f"{MAX_BALANCED} (class-balanced: the rarest digit has {MAX_BALANCED // 10} "
                         f"training images), got {n_train}")
    out = Path(args.out if args.out is not None else defaults["out"])
    _check_writable(out)
    return Plan(epochs=epochs, seeds=tuple(seeds), configs=tuple(configs),
                optimizer_defaults=args.optimizer_defaults, n_train=n_train, out=out,
                resume=bool(args.resume), preset=preset, mnist=args.mnist)


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


def load_data(plan: Plan):
    """Training images (the plan's class-balanced subset), test images and test labels."""
    from ..data import balanced_indices, load_mnist

    try:
        (x_train, y_train), (x_test, y_test) = load_mnist(plan.mnist)
    except (OSError, ValueError, RuntimeError) as error:  # FileNotFound, MnistNotFound, bad file
        raise UsageError(f"MNIST could not be loaded: {error}") from None
    if plan.n_train < len(x_train):
        # The same class-balanced subset for every seed: seeds vary initialisation and shuffling.
        x_train = x_train[np.sort(balanced_indices(y_train, plan.n_train // 10, seed=0))]
    return x_train, x_test, y_test
