"""Lesson 08 (the tables reproduced) and lesson 09 (which beta): the committed results, read
as plain data, the reference steps the tests compare with, and the figures.

The committed runs live under ``results/`` (``idivkit reproduce`` and ``idivkit sweep`` write
them): ``<folder>/runs/seed<S>/<decoder>-<loss>-<optimizer>.json`` in the format of
``idivkit.training.TrainResult.to_dict`` and a ``tables.csv``. This module reads those files
with :mod:`json` and :mod:`csv` only (no Keras, no :mod:`idivkit.training`), and hands the
notebooks lists of plain dicts, which the autograder passes to a learner's functions as they are.

``results_dir()`` is ``$IDIVKIT_RESULTS`` when set, else the repository's ``results/``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

from ..names import DECODER_LABELS, DECODERS, LOSSES, OPTIMIZERS, THESIS_LOSSES, THESIS_OPTIMIZERS, label

__all__ = [
    "TOLERANCE", "committed_runs", "results_dir", "live_mnist", "reconstruct", "load_runs", "thesis_table", "sweep_table", "seed_summary",
    "beside_thesis", "selection_inflation", "scores_by_optimizer", "synthetic_records",
    "check_seed_summary", "markdown_table", "plot_loss_histories", "plot_reconstructions",
    "plot_sweep",
]

#: The thesis's values count as reproduced when our mean lies within this distance.
TOLERANCE = 0.03


def results_dir(*parts) -> Path:
    """``$IDIVKIT_RESULTS`` (if set) or the repository's ``results/``, joined with ``parts``."""
    base = os.environ.get("IDIVKIT_RESULTS") or Path(__file__).resolve().parents[2] / "results"
    return Path(base).joinpath(*parts)


def _loss_order(name: str) -> tuple:
    if name in LOSSES:
        return (0, list(LOSSES).index(name), 0.0)
    if name.startswith("beta="):
        return (1, 0, float(name[len("beta="):]))
    return (2, 0, 0.0)


def _key(record: dict) -> tuple:
    return (list(DECODERS).index(record["decoder"]) if record["decoder"] in DECODERS else 99,
            _loss_order(record["loss"]),
            list(OPTIMIZERS).index(record["optimizer"]) if record["optimizer"] in OPTIMIZERS else 99,
            record["seed"])


def _number(value) -> float:
    return math.nan if value is None else float(value)


def load_runs(folder) -> list[dict]:
    """Every per-seed result under ``folder`` (``seed<S>/*.json``, reconstructions skipped) as a
    flat dict: ``decoder, loss, optimizer, seed, epochs, n_train, thesis_ssim, honest_ssim,
    thesis_ssim_per_digit, loss_history, val_loss_history`` (and ``beta`` for ``beta=<b>``
    losses). Sorted by decoder, loss, optimizer, seed. Lessons 08-09."""
    folder = Path(folder)
    files = sorted(p for p in folder.glob("seed*/*.json") if not p.name.endswith(".recon.json"))
    if not files:
        raise FileNotFoundError(f"no per-seed results (seed<S>/<decoder>-<loss>-<optimizer>.json) under {folder}")
    records = []
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        evaluation = data.get("evaluation", {})
        history = data.get("history", {})
        record = {
            "decoder": data["decoder"], "loss": data["loss"], "optimizer": data["optimizer"],
            "seed": int(data["seed"]), "epochs": int(data.get("epochs", 0)), "n_train": int(data.get("n_train", 0)),
            "thesis_ssim": _number(evaluation.get("thesis_ssim")),
            "honest_ssim": _number(evaluation.get("honest_ssim")),
            "thesis_ssim_per_digit": [_number(v) for v in evaluation.get("thesis_ssim_per_digit", [])],
            "loss_history": [_number(v) for v in history.get("loss", [])],
            "val_loss_history": [_number(v) for v in history.get("val_loss", [])],
        }
        if record["loss"].startswith("beta="):
            record["beta"] = float(record["loss"][len("beta="):])
        records.append(record)
    records.sort(key=_key)
    return records


def committed_runs(verbose: bool = True) -> list[dict]:
    """The committed per-seed records lesson 08 reads: the full grid
    (``results/thesis-grid/runs``: 30 configurations) if this copy has it, else the six thesis
    cells (``results/thesis-cells/runs``: each cell's thesis optimizer only). Says which with
    ``verbose``. Lesson 08."""
    for folder, what in (("thesis-grid", "the full grid"), ("thesis-cells", "the six thesis cells only")):
        runs = results_dir(folder, "runs")
        if any(runs.glob("seed*/*.json")):
            if verbose:
                print(f"results/{folder}/runs: {what}")
            return load_runs(runs)
    raise FileNotFoundError(f"no committed per-seed results under {results_dir()} (thesis-grid/runs or thesis-cells/runs)")


def _read_csv(path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def thesis_table(path=None) -> list[dict]:
    """The thesis's table (section 3.1): one dict per (decoder, loss) with ``decoder, loss,
    optimizer`` (the thesis's optimizer of that cell) and ``thesis_value``, read from
    ``results/thesis-grid/tables.csv``, in the thesis's order. Lesson 08."""
    rows = _read_csv(path or results_dir("thesis-grid", "tables.csv"))
    out = [{"decoder": r["decoder"], "loss": r["loss"], "optimizer": r["optimizer"],
            "thesis_value": float(r["thesis_value"])}
           for r in rows if r.get("thesis_value") not in (None, "") and r["optimizer"] == r["thesis_optimizer"]]
    out.sort(key=lambda r: (list(DECODERS).index(r["decoder"]), list(THESIS_LOSSES).index(r["loss"])))
    return out


def sweep_table(path=None) -> list[dict]:
    """``results/beta-sweep/tables.csv`` as dicts with numbers: ``decoder, beta, optimizer,
    n_seeds, thesis_ssim_mean, thesis_ssim_std, honest_ssim_mean, honest_ssim_std,
    final_val_loss_mean`` (and ``seeds`` as a list of ints). Sorted by decoder and beta. Lesson 09."""
    rows = _read_csv(path or results_dir("beta-sweep", "tables.csv"))
    out = []
    for r in rows:
        row = {"decoder": r["decoder"], "beta": float(r["beta"]), "optimizer": r["optimizer"],
               "n_seeds": int(r["n_seeds"]), "seeds": [int(s) for s in str(r.get("seeds", "")).split()]}
        for name in ("thesis_ssim_mean", "thesis_ssim_std", "honest_ssim_mean", "honest_ssim_std",
                     "final_val_loss_mean"):
            row[name] = _number(r.get(name) or None)
        out.append(row)
    out.sort(key=lambda r: (list(DECODERS).index(r["decoder"]) if r["decoder"] in DECODERS else 99,
                            r["optimizer"], r["beta"]))
    return out


def live_mnist(per_class: int = 200, val_per_class: int = 20, n_test: int = 2000, seed: int = 0):
    """The data of a lesson's live training run, read lean: ``((x_small, y_small), (x_val, y_val),
    (x_test, y_test))`` with ``per_class`` training images of each digit, ``val_per_class`` test
    images of each digit for validation (both as :func:`idivkit.data.load_mnist_subset` draws
    them with ``seed``) and the first ``n_test`` test images, float32 in [0, 1] exactly as
    :func:`idivkit.data.load_mnist` scales them.

    Unlike ``load_mnist`` it keeps no float copy of the whole data set in memory (about 220 MB):
    the lessons that train live also hold Keras, and must stay under 1 GB. Lessons 08-09.
    """
    from .. import data

    with np.load(data.locate_mnist(), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}

    def scaled(x):
        return x.reshape(len(x), -1).astype(np.float32) / np.float32(255)

    train = data.balanced_indices(arrays["y_train"], per_class, seed)
    val = data.balanced_indices(arrays["y_test"], val_per_class, seed + 1)
    y_train, y_test = arrays["y_train"].astype(np.int64), arrays["y_test"].astype(np.int64)
    return ((scaled(arrays["x_train"][train]), y_train[train]), (scaled(arrays["x_test"][val]), y_test[val]),
            (scaled(arrays["x_test"][:n_test]), y_test[:n_test].copy()))


def reconstruct(weights, x, decoder: str) -> np.ndarray:
    """The autoencoder's output for the rows of ``x``, in numpy from Keras-ordered weights
    ``[W_enc (784, J), b_enc (J,), W_dec (J, 784), b_dec (784,)]`` (``TrainResult.get_weights()``):
    ``decoder(relu(x W_enc + b_enc) W_dec + b_dec)`` with ``decoder`` ``"relu"`` or ``"sigmoid"``,
    in float32 like Keras. Building a Keras model per result only to predict would cost memory
    the live lessons do not have. Lessons 08-09."""
    w_enc, b_enc, w_dec, b_dec = (np.asarray(w, dtype=np.float32) for w in weights)
    code = np.maximum(np.asarray(x, dtype=np.float32) @ w_enc + b_enc, 0.0)
    u = code @ w_dec + b_dec
    if decoder == "relu":
        return np.maximum(u, 0.0).astype(np.float32)
    if decoder == "sigmoid":
        return (1.0 / (1.0 + np.exp(-u))).astype(np.float32)
    raise ValueError(f"decoder must be 'relu' or 'sigmoid', got {decoder!r}")


# --- reference steps (the tests compare with these and pass them in) -----------------------
def _protocol_key(protocol: str) -> str:
    if protocol not in ("thesis", "honest"):
        raise ValueError(f"protocol must be 'thesis' or 'honest', got {protocol!r}")
    return f"{protocol}_ssim"


def seed_summary(records, decoder, loss, optimizer, protocol="thesis") -> dict:
    """Reference: ``{"mean", "std", "n"}`` of the ``protocol`` SSIM over the seeds of one
    configuration; ``std`` is the sample standard deviation (``ddof=1``). Lesson 08."""
    key = _protocol_key(protocol)
    values = np.array([r[key] for r in records
                       if (r["decoder"], r["loss"], r["optimizer"]) == (decoder, loss, optimizer)], dtype=np.float64)
    if values.size == 0:
        raise ValueError(f"no records for {decoder}/{loss}/{optimizer}")
    std = float(values.std(ddof=1)) if values.size > 1 else math.nan
    return {"mean": float(values.mean()), "std": std, "n": int(values.size)}


def beside_thesis(records, thesis_rows, protocol="thesis", summary=seed_summary, tolerance=TOLERANCE) -> list[dict]:
    """Reference: one dict per row of ``thesis_rows``: ``decoder, loss, optimizer, thesis, mean,
    std, diff`` (ours minus the thesis's) and ``within`` (``|diff| <= tolerance``). Lesson 08."""
    out = []
    for row in thesis_rows:
        stats = summary(records, row["decoder"], row["loss"], row["optimizer"], protocol)
        diff = float(stats["mean"]) - float(row["thesis_value"])
        out.append({"decoder": row["decoder"], "loss": row["loss"], "optimizer": row["optimizer"],
                    "thesis": float(row["thesis_value"]), "mean": float(stats["mean"]),
                    "std": float(stats["std"]), "diff": diff, "within": bool(abs(diff) <= tolerance + 1e-12)})
    return out


def selection_inflation(scores) -> float:
    """Reference: how much reporting the best of several optimizers, each run once, overstates
    the best optimizer. ``scores`` has shape ``(n_optimizers, n_seeds)``; returns
    ``mean over seeds of (max over optimizers)`` minus ``max over optimizers of (mean over
    seeds)``, which is never negative. Lesson 08."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape (n_optimizers, n_seeds), got {scores.shape}")
    return float(scores.max(axis=0).mean() - scores.mean(axis=1).max())


def scores_by_optimizer(records, decoder, loss, protocol="thesis", optimizers=THESIS_OPTIMIZERS):
    """``(optimizers, scores)``: ``scores[i, s]`` is the ``protocol`` SSIM of ``optimizers[i]``
    on the ``s``-th seed common to all of them. Lesson 08."""
    key = _protocol_key(protocol)
    by = {o: {r["seed"]: r[key] for r in records
              if (r["decoder"], r["loss"], r["optimizer"]) == (decoder, loss, o)} for o in optimizers}
    seeds = sorted(set.intersection(*(set(v) for v in by.values())))
    if not seeds:
        raise ValueError(f"no seed has results for every optimizer of {decoder}/{loss}")
    return list(optimizers), np.array([[by[o][s] for s in seeds] for o in optimizers], dtype=np.float64)


def synthetic_records(seed: int = 0, n_seeds: int = 5, decoders=DECODERS, losses=THESIS_LOSSES,
                      optimizers=THESIS_OPTIMIZERS) -> list[dict]:
    """Made-up records in the format of :func:`load_runs` (random SSIM values, short
    histories), for tests that must not depend on the committed numbers. Lesson 08."""
    rng = np.random.default_rng(seed)
    records = []
    for d in decoders:
        for l in losses:
            for o in optimizers:
                centre, spread = rng.uniform(0.3, 0.9), rng.uniform(0.002, 0.04)
                for s in range(n_seeds):
                    value = float(np.clip(centre + spread * rng.standard_normal(), 0, 1))
                    records.append({"decoder": d, "loss": l, "optimizer": o, "seed": s, "epochs": 3, "n_train": 100,
                                    "thesis_ssim": value, "honest_ssim": float(np.clip(value + rng.normal(0, 0.03), 0, 1)),
                                    "thesis_ssim_per_digit": [value] * 10,
                                    "loss_history": [0.3, 0.2, 0.1], "val_loss_history": [0.3, 0.2, 0.1]})
    return records


def check_seed_summary(result, records, decoder, loss, optimizer, protocol, *, what: str, part: str) -> None:
    """Check ``part`` (``"mean"`` or ``"std"``) of a learner's summary; the message names the
    likely slip (population std, the other protocol, all configurations) without the expected
    value. Lesson 08."""
    if not isinstance(result, dict) or not {"mean", "std"} <= set(result):
        raise AssertionError(f"{what} must return a dict with the keys 'mean' and 'std' (and 'n'), "
                             f"got {type(result).__name__}" + (f" with keys {sorted(result)}" if isinstance(result, dict) else ""))
    try:
        got = float(result[part])
    except (TypeError, ValueError):
        raise AssertionError(f"{what}[{part!r}] must be a number, got {type(result[part]).__name__}") from None
    want = seed_summary(records, decoder, loss, optimizer, protocol)[part]
    if abs(got - want) <= 1e-9 * max(1.0, abs(want)):
        return
    values = np.array([r[_protocol_key(protocol)] for r in records
                       if (r["decoder"], r["loss"], r["optimizer"]) == (decoder, loss, optimizer)])
    other = "honest" if protocol == "thesis" else "thesis"
    slips = [(values.std(ddof=0), "this is the population standard deviation (ddof=0); over a handful of seeds use "
              "the sample standard deviation, ddof=1"),
             (seed_summary(records, decoder, loss, optimizer, other)[part], f"this is the {other} protocol's value; "
              f"use the key '{protocol}_ssim'")]
    everything = np.array([r[_protocol_key(protocol)] for r in records])
    slips.append((everything.mean() if part == "mean" else everything.std(ddof=1),
                  "this uses every record: keep only those of the one configuration asked for"))
    for alternative, hint in slips:
        if abs(got - float(alternative)) <= 1e-9 * max(1.0, abs(float(alternative))):
            raise AssertionError(f"{what}[{part!r}] is off: {hint}")
    raise AssertionError(f"{what}[{part!r}] is off by {abs(got - want):.2e}")


# --- display -------------------------------------------------------------------------------
def markdown_table(rows, columns) -> str:
    """A Markdown table of ``rows`` (dicts). ``columns`` is a list of ``(key, header, format)``;
    ``format`` a format spec (``".3f"``, ``"+.3f"``) or a callable; decoder, loss and optimizer
    names (any string value) are printed with the thesis's labels. Lessons 08-09."""
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key, "")
            if callable(fmt):
                cells.append(str(fmt(value)))
            elif isinstance(value, str):
                cells.append(label(value))
            elif isinstance(value, bool):
                cells.append("yes" if value else "no")
            elif isinstance(value, (int, float, np.floating)) and fmt:
                cells.append("n/a" if isinstance(value, float) and math.isnan(value) else format(value, fmt))
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_loss_histories(records, cells, key: str = "val_loss_history", ncols: int = 3):
    """Validation loss per epoch of each ``(decoder, loss, optimizer)`` in ``cells``: the mean
    over seeds with a min-max band (like the thesis's figs 10-15), ``ncols`` panels a row, each
    with its own scale. Returns the figure. Lesson 08."""
    import matplotlib.pyplot as plt

    cells = list(cells)
    nrows = -(-len(cells) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False)
    for ax in axes.flat[len(cells):]:
        ax.set_visible(False)
    for ax, (d, l, o) in zip(axes.flat, cells):
        curves = np.array([r[key] for r in records if (r["decoder"], r["loss"], r["optimizer"]) == (d, l, o)
                           and r[key]], dtype=np.float64)
        ax.set_title(f"{DECODER_LABELS.get(d, d)}, {label(l)}, {label(o)}", fontsize=9)
        if curves.size == 0:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
            continue
        epochs = np.arange(1, curves.shape[1] + 1)
        ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color="#9ecae1", label="min-max over seeds")
        ax.plot(epochs, curves.mean(axis=0), color="#08519c", lw=2, label="mean over seeds")
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("validation loss")
    axes[0][0].legend(fontsize=9)
    fig.tight_layout()
    return fig


def plot_reconstructions(originals, reconstructions: dict, indices):
    """The originals at ``indices`` (first row) and each named reconstruction below
    (``{name: array (N, 784)}``), gray on [0, 1], drawn as one mosaic (one image, light on
    memory) with the names on the left. Returns the figure. Lesson 08."""
    import matplotlib.pyplot as plt

    indices = list(indices)
    rows = [("original", originals)] + list(reconstructions.items())
    gap = 2
    mosaic = np.ones((len(rows) * (28 + gap) - gap, len(indices) * (28 + gap) - gap))
    for r, (_, images) in enumerate(rows):
        for c, index in enumerate(indices):
            mosaic[r * (28 + gap):r * (28 + gap) + 28, c * (28 + gap):c * (28 + gap) + 28] = \
                np.clip(np.asarray(images[index], dtype=np.float64).reshape(28, 28), 0, 1)
    fig, ax = plt.subplots(figsize=(1.0 * len(indices) + 1.8, 1.0 * len(rows)))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([r * (28 + gap) + 14 for r in range(len(rows))], [name for name, _ in rows], fontsize=9)
    ax.set_xticks([c * (28 + gap) + 14 for c in range(len(indices))], [str(i) for i in indices], fontsize=9)
    ax.set_xlabel("test image index")
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.tight_layout()
    return fig


def plot_sweep(rows, protocol: str = "thesis", ax=None, label_prefix: str = ""):
    """SSIM against beta, one line per (decoder, optimizer), error bars one standard deviation
    over seeds, from rows like :func:`sweep_table`'s. Returns the axes. Lesson 09."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    mean, std = f"{protocol}_ssim_mean", f"{protocol}_ssim_std"
    groups = sorted({(r["decoder"], r["optimizer"]) for r in rows})
    for (d, o), marker in zip(groups, "osD^v<>"):
        sel = sorted((r for r in rows if (r["decoder"], r["optimizer"]) == (d, o)), key=lambda r: r["beta"])
        betas = [r["beta"] for r in sel]
        errors = [0.0 if math.isnan(r[std]) else r[std] for r in sel]
        ax.errorbar(betas, [r[mean] for r in sel], yerr=errors, marker=marker, capsize=3,
                    label=f"{label_prefix}{DECODER_LABELS.get(d, d)}, {label(o)}")
    for beta, name in ((2.0, "squared error"), (1.0, "I-divergence"), (0.0, "Itakura-Saito")):
        ax.axvline(beta, color="grey", lw=0.6, ls=":")
        right = beta == 2.0
        ax.annotate(name, (beta, 1.0), xycoords=("data", "axes fraction"), xytext=(-3 if right else 3, -12),
                    textcoords="offset points", fontsize=9, color="dimgray", ha="right" if right else "left")
    ax.set(xlabel=r"$\beta$", ylabel=f"SSIM, {protocol} protocol")
    ax.legend(fontsize=9, loc="best")
    return ax
