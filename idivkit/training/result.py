"""What training produces: a configuration, a result, and the result's one storage format.

A result is stored as one JSON file per (seed, configuration), at :func:`run_path`:
``<directory>/seed<S>/<decoder>-<loss>-<optimizer>.json``, holding the settings, the loss
history per epoch, timings and whatever was measured afterwards (``evaluation``); with
``weights=True`` the trained model is saved beside it as ``.keras``. ``idivkit reproduce``
stores its runs the same way. No Keras import at module level: results can be saved, loaded
and inspected without it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._numerics import as_float_array, check_choice
from ..names import DECODERS, OPTIMIZERS, loss_spec
from ..predict import predict_in_batches

__all__ = ["GridConfig", "TrainResult", "run_path"]


@dataclass(frozen=True)
class GridConfig:
    """One training configuration: decoder activation, loss name, optimizer name.

    Names come from :mod:`idivkit.names` and are normalised to lower case.
    """

    decoder: str
    loss: str
    optimizer: str

    def __post_init__(self):
        object.__setattr__(self, "decoder", check_choice(self.decoder, "GridConfig.decoder", DECODERS))
        try:
            object.__setattr__(self, "loss", loss_spec(self.loss).name)
        except ValueError as error:
            raise ValueError(f"GridConfig.loss: {error}") from None
        object.__setattr__(self, "optimizer", check_choice(self.optimizer, "GridConfig.optimizer", OPTIMIZERS))

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

    @classmethod
    def coerce(cls, value) -> "GridConfig":
        """A GridConfig from itself, a key ``"relu/i2/adadelta"`` or a 3-tuple."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls.from_key(value)
        return cls(*value)


def run_path(directory, seed: int, config, suffix: str = ".json") -> Path:
    """Where the result of ``config`` (a GridConfig, key or tuple) for ``seed`` is stored."""
    c = GridConfig.coerce(config)
    return Path(directory) / f"seed{int(seed)}" / f"{c.decoder}-{c.loss}-{c.optimizer}{suffix}"


@dataclass
class TrainResult:
    """What :func:`idivkit.training.train` and each entry of ``train_grid`` return.

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
    n_train : int
        Number of training images.
    evaluation : dict
        Measurements made after training (``idivkit reproduce`` stores its SSIM values here).
    versions : dict
        Library versions and Keras backend of the run.
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
    n_train: int = 0
    evaluation: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    created: str = ""
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
            from .model import build_autoencoder

            input_dim = int(np.shape(self.weights[0])[0])
            self.model = build_autoencoder(self.code_dim, self.config.decoder, input_dim, self.seed)
            self.model.set_weights(self.weights)
        return self.model

    def predict(self, x, batch_size: int = 2048) -> np.ndarray:
        """Reconstructions of ``x`` (N, 784) by this configuration's trained model, float32."""
        from .loop import quiet_retracing

        x = as_float_array(x, "x")
        if x.ndim != 2:
            raise ValueError(f"x must have shape (N, 784), got {x.shape}")
        model = self.get_model()
        with quiet_retracing():
            return predict_in_batches(model, x, batch_size=batch_size)

    _STORED = ("seed", "epochs", "batch_size", "code_dim", "optimizer_defaults", "clip", "backend",
               "n_train", "seconds", "group_seconds", "seconds_per_epoch", "history", "evaluation",
               "versions", "created")

    def to_dict(self) -> dict:
        """Everything but the weights, as plain JSON-ready data (NaN and inf become None)."""
        data = {"key": self.key, "decoder": self.config.decoder, "loss": self.config.loss,
                "optimizer": self.config.optimizer}
        data.update({name: getattr(self, name) for name in self._STORED})
        return _finite(data)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainResult":
        """The inverse of :meth:`to_dict` (None read back as NaN in the history)."""
        known = {name: data[name] for name in cls._STORED if name in data}
        known["history"] = {k: [math.nan if v is None else float(v) for v in vals]
                            for k, vals in data.get("history", {}).items()}
        return cls(config=GridConfig(data["decoder"], data["loss"], data["optimizer"]), **known)

    def save(self, directory, weights: bool = False) -> Path:
        """Write this result to :func:`run_path` under ``directory`` (and, with
        ``weights=True``, the trained model beside it as ``.keras``); return the JSON's path.

        The JSON is written last and atomically: its presence marks the run as done.
        """
        path = run_path(directory, self.seed, self.config)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.created:
            self.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if weights:
            self.get_model().save(path.with_suffix(".keras"))
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path) -> "TrainResult":
        """Read a result written by :meth:`save` (weights from the ``.keras`` file if present)."""
        path = Path(path)
        result = cls.from_dict(json.loads(path.read_text()))
        model_path = path.with_suffix(".keras")
        if model_path.exists():
            from .._quiet import import_keras

            result.model = import_keras().saving.load_model(model_path)
            result.weights = result.model.get_weights()
        return result


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_finite(data), indent=1) + "\n")
    os.replace(tmp, path)


def _finite(value):
    """JSON has no NaN/inf: store them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value
