"""``idivkit sweep``: beta parsing, the table on hand-worked records, and one real smoke run
on MNIST (trained, resumed, refused with other settings)."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from idivkit.cli import main
from idivkit.reproduce.plan import UsageError
from idivkit.reproduce.sweep import CSV_FIELDS, build_rows, parse_betas, write_tables

ROOT = Path(__file__).resolve().parents[1]


def test_parse_betas():
    assert parse_betas("0:2:0.25") == [0.25 * k for k in range(9)]
    assert parse_betas("1, 0.5,1") == [0.5, 1.0]
    assert parse_betas("-1:1:1") == [-1.0, 0.0, 1.0]
    for bad, words in (("a", "comma-separated"), ("0:2:0", "step must be positive"),
                       ("2:0:0.5", "below start"), ("nan", "no finite beta"), ("", "no finite beta")):
        with pytest.raises(UsageError, match=words):
            parse_betas(bad)


@pytest.mark.parametrize("argv, words", [
    (["--betas", "x"], "--betas must be"), (["--optimizers", "lbfgs"], "unknown optimizer 'lbfgs'"),
    (["--decoders", "tanh"], "unknown decoder 'tanh'"), (["--epochs", "0"], "--epochs must be at least 1"),
    (["--n-train", "15"], "--n-train must be"),
])
def test_bad_arguments_exit_2_before_training(capsys, tmp_path, argv, words):
    assert main(["sweep", *argv, "--out", str(tmp_path / "o")]) == 2
    assert words in capsys.readouterr().err


def _record(decoder, beta, seed, protocol, honest, val):
    return {"decoder": decoder, "loss": f"beta={beta:g}", "optimizer": "adam", "seed": seed,
            "evaluation": {"thesis_ssim": protocol, "honest_ssim": honest},
            "history": {"loss": [1.0, val], "val_loss": [1.0, val]}}


def test_rows_and_tables_by_hand(tmp_path):
    records = [_record("sigmoid", 0.5, s, p, h, v) for s, p, h, v in [(0, 0.6, 0.5, 0.2), (1, 0.8, 0.7, 0.4)]]
    records += [_record("relu", 1.0, 0, 0.3, 0.2, 0.1), _record("sigmoid", 0.0, 0, 0.1, 0.05, 3.0)]
    rows = build_rows(records)
    assert [(r["decoder"], r["beta"]) for r in rows] == [("relu", 1.0), ("sigmoid", 0.0), ("sigmoid", 0.5)]
    half = rows[2]
    assert half["thesis_ssim_mean"] == pytest.approx(0.7)
    assert half["thesis_ssim_std"] == pytest.approx(math.sqrt(0.02))  # (0.01 + 0.01) / (2 - 1)
    assert half["honest_ssim_mean"] == pytest.approx(0.6) and half["final_val_loss_mean"] == pytest.approx(0.3)
    assert math.isnan(rows[0]["thesis_ssim_std"])  # one seed: no spread
    csv_path, md_path = write_tables(rows, tmp_path, "idivkit sweep --test")
    table = list(csv.DictReader(csv_path.open()))
    assert tuple(table[0]) == CSV_FIELDS
    assert [row["beta"] for row in table] == ["1", "0", "0.5"]
    assert "| ReLU-Sigmoid | Adam | 0.5 | 0.700 ± 0.141 | 0.600 ± 0.141 | 0.3000 |" in md_path.read_text()


@pytest.mark.slow
def test_quick_sweep_trains_writes_and_resumes(tmp_path, mnist_path):
    out = tmp_path / "sweep"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TF_")}, "IDIVKIT_MNIST": str(mnist_path)}
    cmd = [sys.executable, "-m", "idivkit", "sweep", "--quick", "--betas", "0.5,1", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "I0000" not in done.stderr and "oneDNN" not in done.stderr
    runs = sorted(p.name for p in (out / "runs" / "seed0").glob("*-adam.json"))
    assert runs == ["relu-beta=0.5-adam.json", "relu-beta=1-adam.json",
                    "sigmoid-beta=0.5-adam.json", "sigmoid-beta=1-adam.json"]
    table = list(csv.DictReader((out / "tables.csv").open()))
    assert len(table) == 4 and all(-1 <= float(r["honest_ssim_mean"]) <= 1 for r in table)
    assert (out / "figures" / "ssim_vs_beta.png").stat().st_size > 10_000
    assert "| ReLU-Sigmoid | Adam | 1 |" in done.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert again.returncode == 0 and "reproduce:" not in again.stderr  # nothing left to train
    other = subprocess.run(cmd + ["--epochs", "3"], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert other.returncode == 2 and "epochs: stored 2, asked 3" in other.stderr
