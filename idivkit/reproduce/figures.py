"""Figures of ``idivkit reproduce``: loss histories (thesis figs 10-15), reconstructions
(figs 3-9) and an SSIM summary. matplotlib is imported inside the functions (Agg backend),
so importing :mod:`idivkit` stays fast."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import thesis
from .store import cell_of

DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _histories(records, cell, name) -> np.ndarray | None:
    runs = [r["history"].get(name) for r in records
            if cell_of(r) == cell]
    runs = [[math.nan if v is None else v for v in h] for h in runs if h]
    if not runs:
        return None
    length = min(map(len, runs))
    return np.array([h[:length] for h in runs], dtype=float)


def plot_loss_history(records: list[dict], cell: tuple[str, str, str], path: Path) -> Path | None:
    """Train and validation loss per epoch of one (decoder, loss, optimizer): the mean over
    seeds as a line, the min-max over seeds as a band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    plotted = False
    for name, label, color in (("loss", "training", "C0"), ("val_loss", "validation", "C1")):
        values = _histories(records, cell, name)
        if values is None:
            continue
        epochs = np.arange(1, values.shape[1] + 1)
        n = len(values)
        ax.plot(epochs, np.nanmean(values, axis=0), color=color,
                label=f"{label}, mean of {n} seed{'s' if n > 1 else ''}" + (", band min-max" if n > 1 else ""))
        if len(values) > 1:
            ax.fill_between(epochs, np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=color, alpha=0.25)
        plotted = True
    if not plotted:
        plt.close(fig)
        return None
    decoder, loss, optimizer = cell
    ax.set(title=f"{thesis.label(loss)} in {thesis.label(decoder)}, {thesis.label(optimizer)}",
           xlabel="epoch", ylabel="loss")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_loss_grid(records: list[dict], path: Path) -> Path | None:
    """Validation loss per epoch (mean over seeds) of every optimizer, one panel per cell."""
    cells = sorted({cell_of(r)[:2] for r in records},
                   key=lambda c: (_index(thesis.DECODERS, c[0]), _index(thesis.LOSSES, c[1])))
    if not cells:
        return None
    decoders = list(dict.fromkeys(c[0] for c in cells))
    losses = sorted({c[1] for c in cells}, key=lambda l: _index(thesis.LOSSES, l))
    optimizers = sorted({r["optimizer"] for r in records}, key=lambda o: _index(thesis.OPTIMIZERS, o))
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(decoders), len(losses), figsize=(3.0 * len(losses), 2.3 * len(decoders)),
                             squeeze=False)
    for i, decoder in enumerate(decoders):
        for j, loss in enumerate(losses):
            ax, tail = axes[i][j], []
            for k, optimizer in enumerate(optimizers):
                values = _histories(records, (decoder, loss, optimizer), "val_loss")
                if values is not None:
                    mean = np.nanmean(values, axis=0)
                    ax.plot(np.arange(1, len(mean) + 1), mean, color=f"C{k}", label=thesis.label(optimizer))
                    tail.extend(mean[max(1, len(mean) // 10):] if len(mean) > 5 else mean)
            tail = np.asarray(tail, dtype=float)
            tail = tail[np.isfinite(tail)]
            if tail.size:  # the first epochs can be far above the rest: zoom on the others
                low, high = tail.min(), tail.max()
                pad = 0.08 * (high - low) or 0.05 * abs(high) or 0.01
                ax.set_ylim(low - pad, high + pad)
            ax.set_title(f"{thesis.label(loss)}, {thesis.label(decoder)}", fontsize=9)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=7)
            ax.yaxis.get_offset_text().set_fontsize(7)
    handles = {}
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(l, h)
    fig.supxlabel("epoch", fontsize=9)
    fig.supylabel("validation loss (mean over seeds)", fontsize=9)
    order = [thesis.label(o) for o in optimizers]
    labels = sorted(handles, key=order.index)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.legend([handles[l] for l in labels], labels, fontsize=7, loc="upper center", ncol=len(labels))
    return _save(fig, path)


def plot_reconstructions(inputs: np.ndarray, rows: list[tuple[str, np.ndarray]], path: Path,
                         title: str = "") -> Path:
    """The 10 protocol test digits (first row) and each configuration's reconstructions, as
    one gray mosaic (pixel values 0..1, white gaps), a row label on the left of each row."""
    plt = _pyplot()
    gap, side = 2, 28
    all_rows = [("input", np.asarray(inputs))] + [(label, np.asarray(images)) for label, images in rows]
    n_cols = len(all_rows[0][1])
    mosaic = np.full((len(all_rows) * (side + gap) - gap, n_cols * (side + gap) - gap), np.nan)
    for i, (_, images) in enumerate(all_rows):
        for j in range(n_cols):
            top, left = i * (side + gap), j * (side + gap)
            mosaic[top:top + side, left:left + side] = images[j].reshape(side, side)
    cmap = plt.get_cmap("gray").with_extremes(bad="white")
    height, width = mosaic.shape
    fig, ax = plt.subplots(figsize=(width / 50 + 1.2, height / 50 + 0.4))
    ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([i * (side + gap) + side / 2 for i in range(len(all_rows))],
                  [label for label, _ in all_rows], fontsize=7)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_ssim_summary(rows: list[dict], path: Path) -> Path | None:
    """Thesis-protocol SSIM per (loss, optimizer) with std error bars, one panel per decoder;
    the thesis's published values (stars) and the reference means (crosses) marked."""
    decoders = list(dict.fromkeys(r["decoder"] for r in rows))
    if not decoders:
        return None
    optimizers = sorted({r["optimizer"] for r in rows}, key=lambda o: _index(thesis.OPTIMIZERS, o))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(decoders), figsize=(5.0 * len(decoders), 3.4), squeeze=False, sharey=True)
    width = 0.8 / max(len(optimizers), 1)
    for ax, decoder in zip(axes[0], decoders):
        losses = list(dict.fromkeys(r["loss"] for r in rows if r["decoder"] == decoder))
        for k, optimizer in enumerate(optimizers):
            for i, loss in enumerate(losses):
                row = next((r for r in rows if (r["decoder"], r["loss"], r["optimizer"]) == (decoder, loss, optimizer)), None)
                if row is None:
                    continue
                x = i - 0.4 + width * (k + 0.5)
                std = 0.0 if math.isnan(row["thesis_ssim_std"]) else row["thesis_ssim_std"]
                ax.bar(x, row["thesis_ssim_mean"], width, yerr=std, color=f"C{k}", capsize=2,
                       label=thesis.label(optimizer))
                if not math.isnan(row["reference_mean"]):
                    ax.plot(x, row["reference_mean"], "kx", ms=4, label="reference re-run")
                if not math.isnan(row["thesis_value"]):
                    ax.plot(x, row["thesis_value"], "r*", ms=9, label="thesis")
        ax.set_xticks(range(len(losses)), [thesis.label(l) for l in losses])
        ax.set_title(thesis.label(decoder))
        ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.0)
    axes[0][0].set_ylabel("SSIM, thesis protocol")
    handles = {}
    for ax in axes[0]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(l, h)
    fig.legend(handles.values(), handles.keys(), fontsize=7, loc="lower center", ncol=len(handles),
               bbox_to_anchor=(0.5, -0.06))
    fig.tight_layout()
    return _save(fig, path)


def _index(known, name):
    return (known.index(name) if name in known else len(known), name)


def write_figures(records: list[dict], rows: list[dict], out: Path, x_test: np.ndarray) -> list[Path]:
    """All figures of a reproduction into ``out/figures``; returns the paths written."""
    from .store import load_reconstruction

    folder = Path(out) / "figures"
    written = []
    cells = {cell_of(r) for r in records}
    for decoder in thesis.DECODERS:
        for loss in thesis.LOSSES:
            choices = sorted((c for c in cells if c[:2] == (decoder, loss)), key=lambda c: _index(thesis.OPTIMIZERS, c[2]))
            published = thesis.THESIS_TABLE[decoder, loss].optimizer
            cell = (decoder, loss, published) if (decoder, loss, published) in cells else (choices or [None])[0]
            if cell is not None:
                written.append(plot_loss_history(records, cell, folder / f"loss_{decoder}_{loss}.png"))
    written.append(plot_loss_grid(records, folder / "loss_grid.png"))
    if records:
        first_seed = min(r["seed"] for r in records)
        for decoder in dict.fromkeys(c[0] for c in sorted(cells, key=lambda c: _index(thesis.DECODERS, c[0]))):
            recon_rows, indices = [], None
            for cell in sorted((c for c in cells if c[0] == decoder),
                               key=lambda c: (_index(thesis.LOSSES, c[1]), _index(thesis.OPTIMIZERS, c[2]))):
                found = load_reconstruction(out, first_seed, cell)
                if found is not None:
                    indices, images = found
                    recon_rows.append((f"{thesis.label(cell[1])}, {thesis.label(cell[2])}", images))
            if recon_rows:
                written.append(plot_reconstructions(
                    x_test[indices], recon_rows, folder / f"reconstructions_{decoder}.png",
                    title=f"{thesis.label(decoder)}, seed {first_seed}"))
    written.append(plot_ssim_summary(rows, folder / "ssim_summary.png"))
    return [p for p in written if p is not None]
