"""``idivkit reproduce``: argument validation (fast, no TensorFlow), the table builder on
hand-worked inputs, and one real ``--quick`` run (trains on real MNIST) checked end to end,
then resumed."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from idivkit.cli import main
from idivkit.reproduce import thesis
from idivkit.reproduce.tables import build_rows, mean_std, write_tables

ROOT = Path(__file__).resolve().parents[1]


def _fail(capsys, *argv):
    code = main(["reproduce", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    return err


# --- validation: every bad argument -> exit 2 and a message, before any training -------------

@pytest.mark.parametrize(
    "argv, words",
    [
        (["--optimizers", "adam,foo"], ["unknown optimizer 'foo'", "adagrad", "nadam"]),
        (["--losses", "mse,kl"], ["unknown loss 'kl'", "mse, i1, i2"]),
        (["--decoders", "tanh"], ["unknown decoder 'tanh'", "relu, sigmoid"]),
        (["--epochs", "0"], ["--epochs must be at least 1, got 0"]),
        (["--seeds", "0"], ["--seeds must be at least 1, got 0"]),
        (["--seed-list", "1,x"], ["--seed-list", "integers"]),
        (["--seed-list", "-1"], ["--seed-list seeds must be >= 0"]),
        (["--n-train", "1234"], ["--n-train", "multiple of 10"]),
        (["--losses", ","], ["--losses is empty"]),
    ],
)
def test_bad_argument_exits_2_with_message(capsys, tmp_path, argv, words):
    out = tmp_path / "out"
    err = _fail(capsys, *argv, "--out", str(out))
    for word in words:
        assert word in err
    assert not (out / "runs").exists()


def test_out_that_is_a_file_is_refused(capsys, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert "exists and is not a directory" in _fail(capsys, "--out", str(target))
    # below a file: the folder cannot be created (works for root too)
    assert "is not writable" in _fail(capsys, "--out", str(target / "sub"))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_out_is_refused(capsys, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert "is not writable" in _fail(capsys, "--out", str(folder))
    finally:
        folder.chmod(0o700)


def test_missing_mnist_gives_the_loaders_message(capsys, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "mnist.npz"
    err = _fail(capsys, "--out", str(tmp_path / "o1"), "--mnist", str(missing))
    assert "MNIST" in err and "nowhere" in err and "not found" in err
    monkeypatch.setenv("IDIVKIT_MNIST", str(missing))
    err = _fail(capsys, "--out", str(tmp_path / "o2"))
    assert "IDIVKIT_MNIST" in err and "not found" in err


def test_mismatched_settings_for_existing_out_are_refused(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps(
        {"epochs": 50, "n_train": 60000, "batch_size": 256, "optimizer_defaults": "keras2"}))
    err = _fail(capsys, "--out", str(out), "--epochs", "3")
    assert "epochs: stored 50, asked 3" in err and "--no-resume" in err


def test_validation_never_imports_tensorflow(tmp_path):
    code = (
        "import sys; from idivkit.cli import main\n"
        f"codes = [main(['reproduce', *a, '--out', {str(tmp_path / 'o')!r}]) for a in "
        "(['--optimizers', 'nope'], ['--epochs', '0'], ['--seeds', '0'], ['--mnist', '/no/such.npz'])]\n"
        "assert codes == [2, 2, 2, 2], codes\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'jax', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_cells_is_the_main_job_at_the_thesis_settings(tmp_path):
    import argparse

    from idivkit.reproduce.plan import add_arguments, validate

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    plan = validate(parser.parse_args(["--cells", "--out", str(tmp_path / "o")]))
    assert plan.configs == tuple(thesis.thesis_cells()) and len(plan.configs) == 6
    assert (plan.epochs, plan.seeds, plan.n_train, plan.batch_size) == (50, (0,), 60000, 256)
    assert plan.command().startswith("idivkit reproduce --cells --epochs 50 --seed-list 0")
    default = validate(parser.parse_args(["--out", str(tmp_path / "d")]))
    assert len(default.configs) == 30 and default.seeds == (0, 1, 2, 3, 4)
    with pytest.raises(SystemExit):
        parser.parse_args(["--cells", "--quick"])


# --- the table builder on hand-worked inputs ----------------------------------------------

def _record(decoder, loss, optimizer, seed, protocol, honest):
    return {"decoder": decoder, "loss": loss, "optimizer": optimizer, "seed": seed,
            "evaluation": {"thesis_ssim": protocol, "honest_ssim": honest}, "seconds": 2.0 * (seed + 1),
            "history": {"loss": [0.5, 0.25 * (seed + 1)], "val_loss": [0.6, 0.3]}}


def test_mean_std_by_hand():
    assert mean_std([0.5, 0.7, 0.9]) == pytest.approx((0.7, 0.2))  # var = (0.04 + 0 + 0.04) / 2
    mean, std = mean_std([0.25])
    assert mean == 0.25 and math.isnan(std)
    assert math.isnan(mean_std([0.1, None])[0])  # a failed SSIM is never silently dropped


def test_build_rows_and_tables_by_hand(tmp_path):
    records = [_record("relu", "mse", "adagrad", s, p, h)
               for s, p, h in [(0, 0.5, 0.4), (1, 0.7, 0.6), (2, 0.9, 0.5)]]
    records += [_record("sigmoid", "i2", "nadam", s, p, 0.8) for s, p in [(0, 0.86), (1, 0.88)]]
    records += [_record("relu", "mse", "adam", 0, 0.1, 0.2)]
    rows = build_rows(records)
    assert [(r["decoder"], r["loss"], r["optimizer"]) for r in rows] == [
        ("relu", "mse", "adagrad"), ("relu", "mse", "adam"), ("sigmoid", "i2", "nadam")]
    relu = rows[0]
    assert relu["n_seeds"] == 3 and relu["seeds"] == "0 1 2"
    assert relu["thesis_ssim_mean"] == pytest.approx(0.7)
    assert relu["thesis_ssim_std"] == pytest.approx(0.2)
    assert relu["honest_ssim_mean"] == pytest.approx(0.5)
    assert relu["honest_ssim_std"] == pytest.approx(0.1)  # (0.01 + 0.01 + 0) / 2 = 0.01
    assert relu["final_loss_mean"] == pytest.approx((0.25 + 0.5 + 0.75) / 3)
    assert relu["thesis_value"] == 0.795 and relu["diff_vs_thesis"] == pytest.approx(-0.095)
    assert relu["within_tolerance"] == "no"
    assert (relu["reference_mean"], relu["reference_std"]) == (0.783, 0.009)
    sigmoid = rows[2]
    assert sigmoid["thesis_ssim_mean"] == pytest.approx(0.87)
    assert sigmoid["thesis_ssim_std"] == pytest.approx(math.sqrt(2 * 0.01**2))
    assert sigmoid["diff_vs_thesis"] == pytest.approx(-0.01) and sigmoid["within_tolerance"] == "yes"
    adam = rows[1]  # not the thesis's optimizer of the cell: no thesis value to compare
    assert math.isnan(adam["thesis_value"]) and adam["within_tolerance"] == ""

    md_path, csv_path = write_tables(rows, tmp_path, "idivkit reproduce --test", [0, 1, 2], 2)
    table = list(csv.DictReader(csv_path.open()))
    assert float(table[0]["thesis_ssim_std"]) == pytest.approx(0.2)
    assert table[1]["thesis_ssim_std"] == ""  # one seed: no std
    text = md_path.read_text()
    assert "| ReLU-ReLU | MSE | Adagrad | 0.795 | 0.700 ± 0.200 | -0.095 | no |" in text
    assert "| ReLU-Sigmoid | E_I2 | Nadam | 0.880 | 0.870 ± 0.014 | -0.010 | yes |" in text


def test_thesis_data_matches_the_notes():
    notes = (ROOT.parent / "shared" / "thesis-notes.md")
    if not notes.exists():
        pytest.skip("thesis-notes.md is not beside the project")
    text = notes.read_text()
    for (decoder, loss), cell in thesis.THESIS_TABLE.items():
        assert f"{cell.ssim:.3f} ({thesis.label(cell.optimizer)})" in text
    assert len(thesis.REFERENCE) == 30
    for cell in thesis.REFERENCE.values():
        assert f"{cell.mean:.3f}+-{cell.std:.3f} ({cell.honest_mean:.3f})" in text


def test_no_resume_discards_stored_results_and_rewrites_the_manifest(tmp_path):
    from idivkit.reproduce import Plan
    from idivkit.reproduce.store import RunStore

    out = tmp_path / "out"
    stored = out / "runs" / "seed0" / "relu-mse-adagrad.json"
    stored.parent.mkdir(parents=True)
    stored.write_text("{}")
    (out / "runs" / "seed0" / "relu-mse-adagrad.recon.json").write_text("{}")
    (out / "manifest.json").write_text(json.dumps({"epochs": 50}))
    plan = Plan(epochs=3, seeds=(0,), configs=(("relu", "mse", "adagrad"),), optimizer_defaults="keras2",
                n_train=6000, out=out, resume=False, preset="quick", mnist=None)
    assert RunStore(out).check_manifest(plan.manifest(), plan.resume) is None
    assert not list((out / "runs").rglob("*.json"))
    assert json.loads((out / "manifest.json").read_text())["epochs"] == 3


# --- one real run: `idivkit reproduce --quick` on real MNIST, then resumed -------------------

def _cli(argv, mnist_path, timeout=600):
    """Run ``idivkit reproduce ARGV`` in a fresh interpreter; report whether it imported TF."""
    code = ("import sys; from idivkit.cli import main; rc = main(sys.argv[1:]); "
            "print('TENSORFLOW_IMPORTED', 'tensorflow' in sys.modules); sys.exit(rc)")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TF_")}, "IDIVKIT_MNIST": str(mnist_path)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, "reproduce", *argv], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)
    return done, time.perf_counter() - start


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mnist_path):
    out = tmp_path_factory.mktemp("reproduce") / "quick"
    done, seconds = _cli(["--quick", "--out", str(out)], mnist_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"idivkit reproduce --quick: {seconds:.1f} s wall (TensorFlow import included)")
    return out, done, seconds


@pytest.mark.slow
def test_quick_run_writes_every_output(quick_run):
    out, done, _ = quick_run
    assert "TENSORFLOW_IMPORTED True" in done.stdout  # it really trained
    # The table beside the thesis's is printed, not only written.
    assert "## The thesis's table beside this run" in done.stdout
    assert "| ReLU-Sigmoid | E_I2 | Nadam | 0.880 |" in done.stdout
    # Quiet as a user runs it (no TF_CPP_MIN_LOG_LEVEL): none of TensorFlow's start-up lines.
    for noise in ("absl::InitializeLog", "oneDNN", "cpu_feature_guard", "XLA service", "I0000"):
        assert noise not in done.stderr, noise
    for name in ("tables.md", "tables.csv", "README.md", "manifest.json"):
        assert (out / name).is_file(), name
    figures = {p.name for p in (out / "figures").glob("*.png")}
    expected = {f"loss_{d}_{l}.png" for d in thesis.DECODERS for l in thesis.LOSSES}
    expected |= {"loss_grid.png", "ssim_summary.png", "reconstructions_relu.png", "reconstructions_sigmoid.png"}
    assert expected <= figures
    from PIL import Image

    for png in (out / "figures").glob("*.png"):
        assert png.stat().st_size < 200_000, png
        with Image.open(png) as image:
            assert max(image.size) < 1600, (png, image.size)
    readme = (out / "README.md").read_text()
    assert "idivkit reproduce --quick --epochs 3 --seed-list 0" in readme
    assert "--optimizers adagrad,adadelta,adam,adamax,nadam" in readme


@pytest.mark.slow
def test_quick_run_tables_and_records_hold_real_values(quick_run, mnist):
    from idivkit.data import first_of_each_digit

    out, _, _ = quick_run
    table = list(csv.DictReader((out / "tables.csv").open()))
    assert [(r["decoder"], r["loss"], r["optimizer"]) for r in table] == thesis.thesis_cells()
    (_, _), (_, y_test) = mnist
    indices = [int(i) for i in first_of_each_digit(y_test, 1000)]
    for row in table:
        cell = (row["decoder"], row["loss"])
        protocol, honest = float(row["thesis_ssim_mean"]), float(row["honest_ssim_mean"])
        assert -1 <= protocol <= 1 and -1 <= honest <= 1
        assert row["n_seeds"] == "1" and row["thesis_ssim_std"] == ""
        assert float(row["thesis_value"]) == thesis.THESIS_TABLE[cell].ssim
        assert float(row["diff_vs_thesis"]) == pytest.approx(protocol - thesis.THESIS_TABLE[cell].ssim, abs=2e-6)
        assert row["within_tolerance"] in ("yes", "no")
        record = json.loads((out / "runs" / "seed0" / f"{row['decoder']}-{row['loss']}-{row['optimizer']}.json").read_text())
        assert record["epochs"] == 3 and record["n_train"] == 6000 and record["seed"] == 0
        assert len(record["history"]["loss"]) == 3 and len(record["history"]["val_loss"]) == 3
        assert all(math.isfinite(v) and v >= 0 for v in record["history"]["val_loss"])
        evaluation = record["evaluation"]
        assert evaluation["thesis_indices"] == indices
        per_digit = evaluation["thesis_ssim_per_digit"]
        assert len(per_digit) == 10 and all(-1 <= v <= 1 for v in per_digit)
        assert evaluation["thesis_ssim"] == pytest.approx(sum(per_digit) / 10)
        assert protocol == pytest.approx(evaluation["thesis_ssim"], abs=2e-6)
        from idivkit.training import TrainResult

        loaded = TrainResult.load(out / "runs" / "seed0" / f"{row['decoder']}-{row['loss']}-{row['optimizer']}.json")
        assert loaded.history == record["history"] and loaded.evaluation == evaluation
        assert record["seconds"] > 0 and record["backend"] and "keras" in record["versions"]
    # Three epochs of MSE already reconstruct digits far better than a blank image would.
    mse_relu = next(r for r in table if (r["decoder"], r["loss"]) == ("relu", "mse"))
    assert float(mse_relu["honest_ssim_mean"]) > 0.2
    text = (out / "tables.md").read_text()
    assert "| ReLU-Sigmoid | E_I2 | Nadam | 0.880 |" in text


@pytest.mark.slow
def test_quick_run_resumes_without_training(quick_run, mnist_path):
    out, _, first_seconds = quick_run
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.json")}
    assert len(stamps) == 12  # 6 results + 6 reconstructions
    done, seconds = _cli(["--quick", "--out", str(out)], mnist_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skipping 6 finished" in done.stdout
    assert "TENSORFLOW_IMPORTED False" in done.stdout  # nothing was trained
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.json")} == stamps
    print(f"resume: {seconds:.1f} s vs {first_seconds:.1f} s for the first run")
    # The same OUT with other settings is refused, before any training.
    done, _ = _cli(["--quick", "--epochs", "1", "--out", str(out)], mnist_path)
    assert done.returncode == 2 and "epochs: stored 3, asked 1" in done.stderr
