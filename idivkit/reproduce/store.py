"""The run store of ``idivkit reproduce``: one stored :class:`~idivkit.training.TrainResult`
per (seed, configuration) under ``OUT/runs``, in the training package's one format, plus the
manifest of settings a resumed run must share and the 10 protocol reconstructions per run.

Layout::

    OUT/manifest.json
    OUT/runs/seed<S>/<decoder>-<loss>-<optimizer>.json        the result (history, SSIM, ...)
    OUT/runs/seed<S>/<decoder>-<loss>-<optimizer>.recon.json  10 reconstructions, 8-bit
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from ..training.result import TrainResult, run_path, write_json

__all__ = ["RunStore", "cell_of", "load_reconstruction", "load_records"]

#: Settings that change the numbers: a rerun into the same OUT must use the same ones.
MANIFEST_KEYS = ("epochs", "n_train", "batch_size", "optimizer_defaults")


def cell_of(record: dict) -> tuple[str, str, str]:
    """``(decoder, loss, optimizer)`` of a stored result (a ``TrainResult.to_dict()``)."""
    return record["decoder"], record["loss"], record["optimizer"]


class RunStore:
    """The folder ``OUT``: its manifest and its stored runs."""

    def __init__(self, out):
        self.out = Path(out)
        self.runs = self.out / "runs"

    def path(self, seed: int, config, suffix: str = ".json") -> Path:
        return run_path(self.runs, seed, config, suffix)

    def done(self, seed: int, config) -> bool:
        return self.path(seed, config).exists()

    def check_manifest(self, manifest: dict, resume: bool) -> str | None:
        """Write ``manifest``; return a problem (settings differ from the stored ones) or None.

        Without ``resume`` the stored results are deleted first.
        """
        path = self.out / "manifest.json"
        if not resume and self.runs.is_dir():
            for stale in sorted(self.runs.glob("seed*/*.json")):
                stale.unlink()
        if path.exists() and resume:
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                return f"{path} is unreadable ({error}); remove it or use --no-resume"
            diffs = [f"{k}: stored {stored.get(k)!r}, asked {v!r}" for k, v in manifest.items()
                     if stored.get(k) != v]
            if diffs:
                return (f"{self.out} holds results made with other settings ({'; '.join(diffs)}); "
                        "use another --out, the same settings, or --no-resume to discard them")
        path.write_text(json.dumps(manifest, indent=1) + "\n")
        return None

    def save(self, result: TrainResult, reconstructions: np.ndarray, indices) -> Path:
        """Store ``result`` and the reconstructions (rows ``indices`` of the test set).

        The reconstructions go first: the result's JSON, written last, marks the run as done.
        """
        pixels = np.clip(np.rint(reconstructions * 255), 0, 255).astype(np.uint8)
        recon = self.path(result.seed, result.config, ".recon.json")
        recon.parent.mkdir(parents=True, exist_ok=True)
        write_json(recon, {"indices": [int(i) for i in indices],
                           "uint8_base64": base64.b64encode(pixels.tobytes()).decode()})
        return result.save(self.runs)


def load_records(out, seeds, configs) -> list[dict]:
    """The stored results under ``out/runs`` that the plan selects, as dicts."""
    store = RunStore(out)
    return [json.loads(store.path(s, c).read_text()) for s in seeds for c in configs if store.done(s, c)]


def load_reconstruction(out, seed: int, config) -> tuple[list[int], np.ndarray] | None:
    """(test indices, (10, 784) float reconstructions in [0, 1]) of one run, or None."""
    path = RunStore(out).path(seed, config, ".recon.json")
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    pixels = np.frombuffer(base64.b64decode(data["uint8_base64"]), dtype=np.uint8)
    return data["indices"], pixels.reshape(len(data["indices"]), -1).astype(np.float32) / 255
