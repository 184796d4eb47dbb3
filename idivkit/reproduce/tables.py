"""Tables and README of ``idivkit reproduce``: stored results -> mean +- std per cell, beside
the thesis's table and the reference re-run (:mod:`idivkit.reproduce.thesis`)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from . import thesis
from .store import cell_of

CSV_FIELDS = (
    "decoder", "loss", "optimizer", "n_seeds", "seeds",
    "thesis_ssim_mean", "thesis_ssim_std", "honest_ssim_mean", "honest_ssim_std",
    "final_loss_mean", "final_val_loss_mean", "seconds_mean",
    "thesis_optimizer", "thesis_value", "diff_vs_thesis", "within_tolerance",
    "reference_mean", "reference_std", "reference_honest_mean",
)


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; NaN for a single value). None counts as NaN."""
    array = np.array([math.nan if v is None else v for v in values], dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else math.nan


def _key(row):
    orders = (thesis.DECODERS, thesis.LOSSES, thesis.OPTIMIZERS)
    return tuple((o.index(v) if v in o else len(o), v) for o, v in zip(orders, row))


def build_rows(records: list[dict]) -> list[dict]:
    """One row per (decoder, loss, optimizer): our mean/std over seeds under both protocols,
    and, where they exist, the thesis's value for that cell and the reference measurement."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault(cell_of(record), []).append(record)
    rows = []
    for cell in sorted(groups, key=_key):
        group = sorted(groups[cell], key=lambda r: r["seed"])
        decoder, loss, optimizer = cell
        protocol_mean, protocol_std = mean_std([r["evaluation"]["thesis_ssim"] for r in group])
        honest_mean, honest_std = mean_std([r["evaluation"]["honest_ssim"] for r in group])
        published = thesis.THESIS_TABLE.get((decoder, loss))
        same = published is not None and published.optimizer == optimizer
        diff = protocol_mean - published.ssim if same else math.nan
        reference = thesis.REFERENCE.get(cell)
        rows.append({
            "decoder": decoder, "loss": loss, "optimizer": optimizer, "n_seeds": len(group),
            "seeds": " ".join(str(r["seed"]) for r in group),
            "thesis_ssim_mean": protocol_mean, "thesis_ssim_std": protocol_std,
            "honest_ssim_mean": honest_mean, "honest_ssim_std": honest_std,
            "final_loss_mean": mean_std([_last(r, "loss") for r in group])[0],
            "final_val_loss_mean": mean_std([_last(r, "val_loss") for r in group])[0],
            "seconds_mean": mean_std([r["seconds"] for r in group])[0],
            "thesis_optimizer": published.optimizer if published else "",
            "thesis_value": published.ssim if same else math.nan,
            "diff_vs_thesis": diff,
            "within_tolerance": ("yes" if abs(diff) <= thesis.MATCH_TOLERANCE else "no") if same and not math.isnan(diff) else "",
            "reference_mean": reference.mean if reference else math.nan,
            "reference_std": reference.std if reference else math.nan,
            "reference_honest_mean": reference.honest_mean if reference else math.nan,
        })
    return rows


def _last(record, name):
    values = record.get("history", {}).get(name) or [None]
    return values[-1]


def _num(value, digits=3) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _pm(mean, std) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.3f}" if math.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def write_tables(rows: list[dict], out: Path, command: str, seeds, epochs: int) -> tuple[Path, Path]:
    """Write ``out/tables.csv`` (one row per cell) and ``out/tables.md``; return their paths."""
    out = Path(out)
    csv_path, md_path = out / "tables.csv", out / "tables.md"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _num(v, 6) if isinstance(v, float) else v for k, v in row.items()})
    md_path.write_text(_markdown(rows, command, seeds, epochs))
    return md_path, csv_path


def _markdown(rows, command, seeds, epochs) -> str:
    by_cell = {(r["decoder"], r["loss"], r["optimizer"]): r for r in rows}
    lines = [
        "# SSIM of the thesis's autoencoders, regenerated", "",
        f"Command: `{command}`", "",
        f"{epochs} epochs, seeds {', '.join(map(str, seeds))}; mean ± sample standard deviation over "
        "seeds. *Thesis protocol*: the mean SSIM of 10 test digits (the first of each label among "
        "the first 1000 test images) after the author's save-as-viridis-PNG / read-as-gray round "
        "trip (see `idivkit.ssim.thesis_ssim`). *Honest*: mean SSIM over all 10,000 test images on "
        "[0, 1] data (`idivkit.ssim.mean_ssim`).", "",
        f"Thesis: {thesis.THESIS_SOURCE}.  ",
        f"Reference: {thesis.REFERENCE_SOURCE}.", "",
        "## The thesis's table beside this run", "",
        f"Our value is for the thesis's optimizer of the cell; \"within\" means |diff| <= "
        f"{thesis.MATCH_TOLERANCE}.", "",
        "| decoder | loss | thesis optimizer | thesis SSIM | this run | diff | within | reference | "
        "this run, honest | reference, honest | best optimizer here |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (decoder, loss), published in thesis.THESIS_TABLE.items():
        row = by_cell.get((decoder, loss, published.optimizer))
        candidates = [r for r in rows if (r["decoder"], r["loss"]) == (decoder, loss)
                      and not math.isnan(r["thesis_ssim_mean"])]
        if row is None and not candidates:
            continue
        best = max(candidates, key=lambda r: r["thesis_ssim_mean"], default=None)
        ref = thesis.REFERENCE[decoder, loss, published.optimizer]
        ours = row or {"thesis_ssim_mean": math.nan, "thesis_ssim_std": math.nan, "honest_ssim_mean": math.nan,
                       "diff_vs_thesis": math.nan, "within_tolerance": "not run"}
        lines.append(" | ".join([
            f"| {thesis.label(decoder)}", thesis.label(loss), thesis.label(published.optimizer),
            f"{published.ssim:.3f}", _pm(ours["thesis_ssim_mean"], ours["thesis_ssim_std"]),
            f"{ours['diff_vs_thesis']:+.3f}" if not math.isnan(ours["diff_vs_thesis"]) else "n/a",
            ours["within_tolerance"] or "n/a", _pm(ref.mean, ref.std), _num(ours["honest_ssim_mean"]),
            f"{ref.honest_mean:.3f}",
            f"{thesis.label(best['optimizer'])} {best['thesis_ssim_mean']:.3f}" if best else "n/a",
        ]) + " |")
    optimizers = list(dict.fromkeys(r["optimizer"] for r in rows))
    for decoder in dict.fromkeys(r["decoder"] for r in rows):
        losses = list(dict.fromkeys(r["loss"] for r in rows if r["decoder"] == decoder))
        header = "| loss | " + " | ".join(thesis.label(o) for o in optimizers) + " |"
        rule = "|---|" + "---|" * len(optimizers)
        for title, cell in (
            ("thesis protocol, this run", lambda r, ref: _pm(r["thesis_ssim_mean"], r["thesis_ssim_std"]) if r else ""),
            ("honest protocol, this run", lambda r, ref: _pm(r["honest_ssim_mean"], r["honest_ssim_std"]) if r else ""),
            ("reference re-run: thesis protocol [honest]",
             lambda r, ref: f"{ref.mean:.3f} ± {ref.std:.3f} [{ref.honest_mean:.3f}]" if ref else ""),
        ):
            lines += ["", f"## {thesis.label(decoder)}: {title}", "", header, rule]
            for loss in losses:
                cells = [cell(by_cell.get((decoder, loss, o)), thesis.REFERENCE.get((decoder, loss, o)))
                         for o in optimizers]
                lines.append(f"| {thesis.label(loss)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main_table(markdown: str) -> str:
    """The section of ``tables.md`` that sets this run beside the thesis's table (for the
    terminal): from its heading to the next one."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## The thesis's table"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).rstrip()


def write_readme(out: Path, command: str, figures: list[Path]) -> Path:
    """Write ``out/README.md``: what each file is and the command that produced them."""
    out = Path(out)
    figure_lines = [f"- `{Path(f).relative_to(out)}`" for f in figures]
    text = "\n".join([
        "# Reproduction of the thesis's SSIM tables", "",
        "Produced by:", "", "```", command, "```", "",
        "Rerunning the same command skips finished results (`--no-resume` retrains).", "",
        "- `tables.md`: the thesis's table beside this run (same optimizer per cell, difference, "
        f"within {thesis.MATCH_TOLERANCE}), then per decoder the loss x optimizer grid under the "
        "thesis protocol and the honest protocol, and the reference re-run's values (docs/protocol.md).",
        "- `tables.csv`: the same numbers, one row per (decoder, loss, optimizer).",
        "- `manifest.json`: the settings a resumed run must share (epochs, training-set size, "
        "batch size, optimizer defaults).",
        "- `runs/seed<S>/<decoder>-<loss>-<optimizer>.json`: one run: loss history per epoch, "
        "thesis-protocol SSIM with per-digit values and test indices, honest SSIM, seconds, "
        "library versions and Keras backend. `*.recon.json` hold the 10 protocol reconstructions "
        "(8-bit, for the figures; derived from MNIST, do not commit them).",
        "- `figures/`:",
        "  - `loss_<decoder>_<loss>.png`: training and validation loss per epoch for the cell's "
        "thesis optimizer, mean over seeds with a min-max band (like the thesis's figs 10-15);",
        "  - `loss_grid.png`: every optimizer, validation loss per epoch, all cells;",
        "  - `reconstructions_<decoder>.png`: the 10 thesis-protocol test digits and each "
        "configuration's reconstruction, first seed (like figs 3-9);",
        "  - `ssim_summary.png`: SSIM per cell with error bars (std over seeds), the thesis's "
        "values and the reference values marked.",
        "", "Figures in this folder:", *figure_lines, "",
        "MNIST: Y. LeCun, C. Cortes, C. J. C. Burges (CC BY-SA 3.0).", "",
    ])
    path = out / "README.md"
    path.write_text(text)
    return path
