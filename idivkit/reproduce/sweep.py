"""``idivkit sweep``: the beta-divergence family across beta, trained as one grid.

The thesis trains with two members of the family (beta = 2, the squared error, and beta = 1,
the I-divergence) and asks which member suits images without answering. The sweep trains
``decoder x beta x optimizer`` (default: both decoders, beta from 0 to 2 in steps of 0.25,
Adam) for several seeds, every loss ``D_beta(x | x_hat)`` clipped to ``[1e-7, 1]`` as the
thesis's code clipped its divergences, and writes SSIM under both protocols against beta:
``OUT/tables.csv``, ``OUT/tables.md``, ``OUT/figures/ssim_vs_beta.png`` and a README. It
resumes like ``idivkit reproduce`` (same run store and manifest).

References
----------
.. [1] C. Fevotte and J. Idier, "Algorithms for nonnegative matrix factorization with the
   beta-divergence", Neural Computation 23(9), 2011 (the family and its noise models).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

from ..names import DECODERS, OPTIMIZERS, label
from .plan import MAX_BALANCED, N_MNIST_TRAIN, UsageError, _check_writable, _names
from .store import RunStore, cell_of, load_records
from .tables import _num, _pm, mean_std

DEFAULT_BETAS = "0:2:0.25"
DEFAULTS = {"epochs": 50, "seeds": 5, "n_train": N_MNIST_TRAIN, "betas": DEFAULT_BETAS,
            "optimizers": "adam", "out": "runs/sweep"}
QUICK = {"epochs": 2, "seeds": 1, "n_train": 2000, "betas": "0,1,2", "optimizers": "adam",
         "out": "runs/sweep-quick"}
CSV_FIELDS = ("decoder", "beta", "optimizer", "n_seeds", "seeds", "thesis_ssim_mean",
              "thesis_ssim_std", "honest_ssim_mean", "honest_ssim_std", "final_val_loss_mean")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``idivkit sweep``."""
    add = parser.add_argument
    add("--betas", default=None,
        help=f"start:stop:step (stop included) or a comma list (default {DEFAULT_BETAS})")
    add("--decoders", default=None, help="comma separated, of relu,sigmoid (default both)")
    add("--optimizers", default=None, help="comma separated (default adam)")
    add("--seeds", type=int, default=None, help="number of seeds, run as 0..n-1 (default 5)")
    add("--epochs", type=int, default=None, help="epochs per run (default 50)")
    add("--n-train", type=int, default=None, help="class-balanced training subset (default all 60000)")
    add("--optimizer-defaults", choices=("keras2", "keras3"), default="keras2")
    add("--out", default=None, help=f"output folder (default {DEFAULTS['out']})")
    add("--mnist", default=None, help="path of mnist.npz (default: the loader's, env IDIVKIT_MNIST)")
    add("--quick", action="store_true", help="a smoke run: beta 0, 1, 2; 2 epochs; 2000 images; 1 seed")
    add("--resume", action=argparse.BooleanOptionalAction, default=True)


def parse_betas(text: str) -> list[float]:
    """``"0:2:0.25"`` (stop included) or ``"0,0.5,1"`` -> sorted distinct betas."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
        else:
            betas = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--betas must be start:stop:step or comma-separated numbers, got {text!r}") from None
    if ":" in text:
        if not step > 0:
            raise UsageError(f"--betas step must be positive, got {step:g}")
        if stop < start:
            raise UsageError(f"--betas {text!r}: stop {stop:g} is below start {start:g}")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        betas = [round(start + k * step, 10) for k in range(count)]
    if not betas or not all(math.isfinite(b) for b in betas):
        raise UsageError(f"--betas gives no finite beta: {text!r}")
    return sorted(set(betas))


def plan(args: argparse.Namespace) -> dict:
    """Validated settings of one sweep; UsageError on the first bad argument."""
    d = QUICK if args.quick else DEFAULTS
    epochs = args.epochs if args.epochs is not None else d["epochs"]
    n_seeds = args.seeds if args.seeds is not None else d["seeds"]
    n_train = args.n_train if args.n_train is not None else d["n_train"]
    for name, value in (("--epochs", epochs), ("--seeds", n_seeds)):
        if value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    if n_train != N_MNIST_TRAIN and not (10 <= n_train <= MAX_BALANCED and n_train % 10 == 0):
        raise UsageError(f"--n-train must be {N_MNIST_TRAIN} or a multiple of 10 from 10 to {MAX_BALANCED}")
    betas = parse_betas(args.betas if args.betas is not None else d["betas"])
    decoders = _names(args.decoders, DECODERS, "decoders", DECODERS)
    optimizers = _names(args.optimizers if args.optimizers is not None else d["optimizers"],
                        tuple(OPTIMIZERS), "optimizers", ())
    out = Path(args.out if args.out is not None else d["out"])
    _check_writable(out)
    configs = [(dec, f"beta={b:g}", opt) for dec in decoders for b in betas for opt in optimizers]
    return {"epochs": epochs, "seeds": list(range(n_seeds)), "n_train": n_train, "betas": betas,
            "configs": configs, "out": out, "mnist": args.mnist, "resume": bool(args.resume),
            "optimizer_defaults": args.optimizer_defaults, "batch_size": 256,
            "command": " ".join(["idivkit sweep", f"--betas {','.join(f'{b:g}' for b in betas)}",
                                 f"--decoders {','.join(decoders)}", f"--optimizers {','.join(optimizers)}",
                                 f"--seeds {n_seeds}", f"--epochs {epochs}", f"--n-train {n_train}",
                                 f"--optimizer-defaults {args.optimizer_defaults}", f"--out {out}"])}


def run(args: argparse.Namespace) -> int:
    """Validate, train what is missing, write the table and the figure. Exit code."""
    from types import SimpleNamespace

    from . import _train, load_data

    try:
        p = plan(args)
        x_train, x_test, y_test = load_data(SimpleNamespace(mnist=p["mnist"], n_train=p["n_train"]))
        store = RunStore(p["out"])
        manifest = {k: p[k] for k in ("epochs", "n_train", "batch_size", "optimizer_defaults")}
        problem = store.check_manifest(manifest, p["resume"])
        if problem:
            raise UsageError(problem)
    except UsageError as error:
        print(f"idivkit sweep: error: {error}", file=sys.stderr)
        return 2
    todo = {s: [c for c in p["configs"] if not store.done(s, c)] for s in p["seeds"]}
    todo = {s: c for s, c in todo.items() if c}
    print(f"idivkit sweep: {len(p['configs'])} configurations x {len(p['seeds'])} seeds, "
          f"{p['epochs']} epochs, {len(x_train)} training images -> {p['out']}")
    if todo:
        _train(SimpleNamespace(epochs=p["epochs"], batch_size=p["batch_size"],
                               optimizer_defaults=p["optimizer_defaults"]), store, todo,
               x_train, x_test, y_test)
    rows = build_rows(load_records(p["out"], p["seeds"], p["configs"]))
    csv_path, md_path = write_tables(rows, p["out"], p["command"])
    figure = plot_ssim_vs_beta(rows, p["out"] / "figures" / "ssim_vs_beta.png")
    _write_readme(p["out"], p["command"])
    print()
    print("\n".join(line for line in md_path.read_text().splitlines() if line.startswith("|")))
    print(f"\nwrote {md_path}, {csv_path}, {figure}")
    return 0


def build_rows(records: list[dict]) -> list[dict]:
    """One row per (decoder, beta, optimizer): mean and sample std over seeds, both protocols."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        decoder, loss, optimizer = cell_of(record)
        groups.setdefault((decoder, float(loss.split("=", 1)[1]), optimizer), []).append(record)
    rows = []
    for (decoder, beta, optimizer) in sorted(groups, key=lambda k: (DECODERS.index(k[0]), k[2], k[1])):
        group = sorted(groups[decoder, beta, optimizer], key=lambda r: r["seed"])
        protocol = mean_std([r["evaluation"]["thesis_ssim"] for r in group])
        honest = mean_std([r["evaluation"]["honest_ssim"] for r in group])
        final = mean_std([(r["history"].get("val_loss") or [None])[-1] for r in group])[0]
        rows.append({"decoder": decoder, "beta": beta, "optimizer": optimizer, "n_seeds": len(group),
                     "seeds": " ".join(str(r["seed"]) for r in group),
                     "thesis_ssim_mean": protocol[0], "thesis_ssim_std": protocol[1],
                     "honest_ssim_mean": honest[0], "honest_ssim_std": honest[1],
                     "final_val_loss_mean": final})
    return rows


def write_tables(rows: list[dict], out: Path, command: str) -> tuple[Path, Path]:
    """``out/tables.csv`` (one row per decoder, beta, optimizer) and ``out/tables.md``."""
    csv_path, md_path = Path(out) / "tables.csv", Path(out) / "tables.md"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:g}" if k == "beta" else _num(v, 6)) if isinstance(v, float) else v
                             for k, v in row.items()})
    lines = ["# SSIM across the beta-divergence family", "", f"Command: `{command}`", "",
             "Mean ± sample standard deviation over seeds. Thesis protocol and honest protocol as in "
             "`idivkit reproduce` (docs/protocol.md).", "",
             "| decoder | optimizer | beta | thesis protocol | honest | final val loss |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {label(r['decoder'])} | {label(r['optimizer'])} | {r['beta']:g} | "
                     f"{_pm(r['thesis_ssim_mean'], r['thesis_ssim_std'])} | "
                     f"{_pm(r['honest_ssim_mean'], r['honest_ssim_std'])} | {_num(r['final_val_loss_mean'], 4)} |")
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def plot_ssim_vs_beta(rows: list[dict], path: Path) -> Path:
    """SSIM against beta, one panel per protocol, a line per (decoder, optimizer), error bars
    the standard deviation over seeds; beta = 0, 1, 2 (Itakura-Saito, I-divergence, squared
    error) marked."""
    from .figures import _pyplot, _save

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), sharey=True)
    for ax, (key, title) in zip(axes, (("thesis_ssim", "thesis protocol (10 images, PNG round trip)"),
                                       ("honest_ssim", "honest (all 10,000 test images)"))):
        lines = dict.fromkeys((r["decoder"], r["optimizer"]) for r in rows)
        for k, (decoder, optimizer) in enumerate(lines):
            rs = [r for r in rows if (r["decoder"], r["optimizer"]) == (decoder, optimizer)]
            std = [0.0 if math.isnan(r[f"{key}_std"]) else r[f"{key}_std"] for r in rs]
            ax.errorbar([r["beta"] for r in rs], [r[f"{key}_mean"] for r in rs], yerr=std, capsize=3,
                        marker="os^v"[k % 4], linestyle="-" if decoder == "sigmoid" else "--",
                        label=f"{label(decoder)}, {label(optimizer)}")
        for beta, name in ((0, "IS"), (1, "I-div"), (2, "SE")):
            ax.axvline(beta, color="0.6", linewidth=0.8, linestyle=":")
            ax.text(beta, 1.0, name, fontsize=9, ha="center", va="bottom", transform=ax.get_xaxis_transform())
        ax.set_xlabel(r"$\beta$", fontsize=11)
        ax.set_title(title, fontsize=10, pad=14)
        ax.tick_params(labelsize=9)
    axes[0].set_ylabel("SSIM", fontsize=10)
    axes[0].legend(fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _write_readme(out: Path, command: str) -> None:
    (Path(out) / "README.md").write_text("\n".join([
        "# SSIM across the beta-divergence family", "", "Produced by:", "", "```", command, "```", "",
        "- `tables.md`, `tables.csv`: mean ± sample standard deviation over seeds of the SSIM "
        "under the thesis's protocol and the honest one, and the final validation loss, per "
        "(decoder, beta, optimizer).",
        "- `figures/ssim_vs_beta.png`: SSIM against beta, both protocols, error bars over seeds.",
        "- `runs/seed<S>/<decoder>-beta=<b>-<optimizer>.json`: one run each (loss history, SSIM); "
        "`*.recon.json` hold 8-bit reconstructions of MNIST digits: do not commit them.",
        "- `manifest.json`: the settings a resumed run must share.", "",
        "Rerunning the same command skips finished runs. MNIST: Y. LeCun, C. Cortes, "
        "C. J. C. Burges (CC BY-SA 3.0).", ""]))
