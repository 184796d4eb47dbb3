"""Plain data types of the trainer: a configuration, a training result, input checks.

No Keras import at module level: results can be saved, loaded and inspected without it
(``model``/``predict`` import it on first use).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._numerics import as_float_array

__all__ = ["GridConfig", "TrainResult", "validate_data"]

#: Optimizer names of :func:`idivkit.trainer.make_optimizer`.
OPTIMIZER_NAMES = ("sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam")


@contextlib.contextmanager
def expected_retracing_is_quiet():
    """The grid builds a model per optimizer group and each result predicts with its own model,
    so TensorFlow traces one function per model and then warns about "excessive retracing":
    expected here, noise to the user. Only the ``tensorflow`` logger is touched (nothing
    happens on other backends), and only inside the block."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass(frozen=True)
class GridConfig:
    """One training configuration: decoder activation, loss name, optimizer name.

    ``decoder`` is ``"relu"`` or ``"sigmoid"``; ``loss`` a name of
    :func:`idivkit.keras.get_loss`; ``optimizer`` a name of
    :func:`idivkit.trainer.make_optimizer`. Names are normalised to lower case.
    """

    decoder: str
    loss: str
    optimizer: str

    def __post_init__(self):
        for name in ("decoder", "loss", "optimizer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"GridConfig.{name} must be a non-empty string, got {value!r}")
            object.__setattr__(self, name, value.strip().lower())
        if self.decoder not in ("relu", "sigmoid"):
            raise ValueError(f"GridConfig.decoder must be 'relu' or 'sigmoid', got {self.decoder!r}")
        if self.optimizer not in OPTIMIZER_NAMES:
            raise ValueError(
                f"GridConfig.optimizer: unknown optimizer {self.optimizer!r}; "
                f"valid: {', '.join(OPTIMIZER_NAMES)}"
            )

    @property
    def key(self) -> str:
        """``"decoder/loss/optimizer"``, e.g. ``"relu/i2/adadelta"``."""
        return f"{self.decoder}/{self.loss}/{self.optimizer}"

    @classmethod
    def from_key(cls, key: str) -> "GridConfig":
        parts = str(key).split("/")
        if len(parts) != 3:
            raise ValueError(f"a GridConfig key looks like 'relu/i2/adadelta', got {key!r}")
        return cls(*parts)


@dataclass
class TrainResult:
    """What :func:`idivkit.trainer.train` and each entry of ``train_grid`` return.

    Attributes
    ----------
    config : GridConfig
    seed : int
    history : dict
        ``{"loss": [...], "val_loss": [...]}``, one float per epoch: the configuration's own
        loss (per-sample mean over pixels, averaged over samples), as Keras reports it.
    seconds : float
        Wall time of the training, compilation included. For a grid entry: the grid group's
        time divided by the number of configurations in it (its share); ``group_seconds``
        holds the whole group's time.
    seconds_per_epoch : list of float
    weights : list of ndarray
        ``[W_enc, b_enc, W_dec, b_dec]`` after training (also :meth:`get_weights`).
    """

    config: GridConfig
    seed: int
    history: dict
    seconds: float
    seconds_per_epoch: list = field(default_factory=list)
    weights: list = field(default_factory=list, repr=False)
    code_dim: int = 32
    epochs: int = 0
    batch_size: int = 256
    optimizer_defaults: str = "keras2"
    clip: bool = True
    backend: str = ""
    group_seconds: float | None = None
    model: object = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        return self.config.key

    def get_weights(self) -> list:
        """The trained weights, Keras order ``[W_enc, b_enc, W_dec, b_dec]`` (copies)."""
        return [np.array(w, copy=True) for w in self.weights]

    def get_model(self):
        """The trained Keras autoencoder (built from :attr:`weights` on first use)."""
        if self.model is None:
            if not self.weights:
                raise ValueError(f"result {self.key} has no weights (saved with weights=False)")
            from .trainer import build_autoencoder

            input_dim = int(np.shape(self.weights[0])[0])
            self.model = build_autoencoder(self.code_dim, self.config.decoder, input_dim, self.seed)
            self.model.set_weights(self.weights)
        return self.model

    def predict(self, x, batch_size: int = 2048) -> np.ndarray:
        """Reconstructions of ``x`` (N, 784) by this configuration's trained model, float32."""
        x = as_float_array(x, "x")
        if x.ndim != 2:
            raise ValueError(f"x must have shape (N, 784), got {x.shape}")
        model = self.get_model()
        with expected_retracing_is_quiet():
            out = model.predict(x.astype(np.float32), batch_size=batch_size, verbose=0)
        return np.asarray(out, dtype=np.float32)

    def to_dict(self) -> dict:
        return {
            "key": self.key, "decoder": self.config.decoder, "loss": self.config.loss,
            "optimizer": self.config.optimizer, "seed": self.seed, "epochs": self.epochs,
            "batch_size": self.batch_size, "code_dim": self.code_dim,
            "optimizer_defaults": self.optimizer_defaults, "clip": self.clip,
            "backend": self.backend, "seconds": self.seconds, "group_seconds": self.group_seconds,
            "seconds_per_epoch": list(self.seconds_per_epoch),
            "history": {k: [float(v) for v in vals] for k, vals in self.history.items()},
        }

    def save(self, directory, weights: bool = False) -> list[Path]:
        """Write ``<stem>.json`` (everything but weights) and ``<stem>.csv`` (history per epoch)
        into ``directory``, where stem is ``decoder_loss_optimizer_seed<seed>``; with
        ``weights=True`` also ``<stem>.keras`` (the trained model). Returns the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{self.config.decoder}_{self.config.loss}_{self.config.optimizer}_seed{self.seed}"
        stem = stem.replace("=", "").replace("/", "_")
        paths = [directory / f"{stem}.json", directory / f"{stem}.csv"]
        paths[0].write_text(json.dumps(self.to_dict(), indent=1))
        columns = list(self.history)
        with paths[1].open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["epoch", *columns])
            for epoch in range(len(self.history.get("loss", []))):
                writer.writerow([epoch + 1, *(repr(float(self.history[c][epoch])) for c in columns)])
        if weights:
            paths.append(directory / f"{stem}.keras")
            self.get_model().save(paths[-1])
        return paths

    @classmethod
    def load(cls, json_path) -> "TrainResult":
        """Read a result written by :meth:`save` (weights from the ``.keras`` file if present)."""
        json_path = Path(json_path)
        data = json.loads(json_path.read_text())
        result = cls(
            config=GridConfig(data["decoder"], data["loss"], data["optimizer"]), seed=data["seed"],
            history=data["history"], seconds=data["seconds"],
            seconds_per_epoch=data.get("seconds_per_epoch", []), code_dim=data["code_dim"],
            epochs=data["epochs"], batch_size=data["batch_size"],
            optimizer_defaults=data["optimizer_defaults"], clip=data["clip"],
            backend=data.get("backend", ""), group_seconds=data.get("group_seconds"),
        )
        model_path = json_path.with_suffix(".keras")
        if model_path.exists():
            import keras

            result.model = keras.saving.load_model(model_path)
            result.weights = result.model.get_weights()
        return result


def validate_data(x_train, x_val=None):
    """Check training/validation images: 2-D, finite, in [0, 1], same width. Returns float32."""
    out = []
    for name, x in (("x_train", x_train), ("x_val", x_val)):
        if x is None:
            out.append(None)
            continue
        x = as_float_array(x, name)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"{name} must have shape (N, 784) with N > 0, got {x.shape}")
        n_big = int(np.count_nonzero(x > 1))
        if n_big:
            raise ValueError(f"{name} has {n_big} entries above 1; scale images to [0, 1] (x / 255)")
        out.append(np.ascontiguousarray(x, dtype=np.float32))
    if out[1] is not None and out[1].shape[1] != out[0].shape[1]:
        raise ValueError(f"x_val has {out[1].shape[1]} columns but x_train has {out[0].shape[1]}")
    return out[0], out[1]
