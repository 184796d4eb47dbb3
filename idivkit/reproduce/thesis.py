"""The thesis's published SSIM numbers, and a reference re-run, as data.

Two sources, kept apart:

* :data:`THESIS_TABLE` -- the thesis's own result tables (T. Haruguchi, "Autoencoder with New
  Loss Functions", section 3.1 "SSIM"): for each decoder and loss, the best SSIM over the
  optimizers the author tried, and that optimizer. Keras 2.2 on TensorFlow, MNIST, 784-32-784,
  batch 256, 50 epochs; SSIM by the author's image-file protocol (see :mod:`idivkit.ssim`).
* :data:`REFERENCE` -- the project's independent re-implementation of the original notebook
  (docs/protocol.md): Keras 2.2 optimizer defaults, Nadam without its schedule,
  50 epochs, 5 seeds; mean and standard deviation over seeds under the thesis protocol, and the
  mean SSIM over all 10,000 test images ("honest" protocol).

Used by ``idivkit reproduce`` to put its own numbers beside these.
"""

from __future__ import annotations

from dataclasses import dataclass

# The grid's names and their labels come from the one name table.
from ..names import THESIS_DECODERS as DECODERS
from ..names import THESIS_LOSSES as LOSSES
from ..names import THESIS_OPTIMIZERS as OPTIMIZERS
from ..names import label

__all__ = ["DECODERS", "LOSSES", "OPTIMIZERS", "MATCH_TOLERANCE", "REFERENCE", "THESIS_TABLE",
           "label", "thesis_cells"]

THESIS_SOURCE = (
    'T. Haruguchi, "Autoencoder with New Loss Functions" (thesis, supervised by S. Ding), '
    "section 3.1, SSIM tables; code: github.com/s1230038/autoencoder, AutoencoderForThesis.ipynb"
)
REFERENCE_SOURCE = (
    "an independent re-implementation of the original notebook (docs/protocol.md), "
    "Keras 2.2 optimizer defaults (Nadam without schedule), 50 epochs, 5 seeds"
)


#: A reproduced cell counts as matching the thesis when |ours - thesis| <= this.
MATCH_TOLERANCE = 0.03


@dataclass(frozen=True)
class ThesisCell:
    """One cell of the thesis's table: best SSIM over optimizers, and that optimizer."""

    ssim: float
    optimizer: str


@dataclass(frozen=True)
class ReferenceCell:
    """One reference measurement: thesis-protocol SSIM mean/std over 5 seeds, honest mean."""

    mean: float
    std: float
    honest_mean: float


#: (decoder, loss) -> ThesisCell, from the thesis's section 3.1.
THESIS_TABLE: dict[tuple[str, str], ThesisCell] = {
    ("relu", "mse"): ThesisCell(0.795, "adagrad"),
    ("relu", "i1"): ThesisCell(0.526, "adamax"),
    ("relu", "i2"): ThesisCell(0.751, "adadelta"),
    ("sigmoid", "mse"): ThesisCell(0.855, "adam"),
    ("sigmoid", "i1"): ThesisCell(0.632, "adamax"),
    ("sigmoid", "i2"): ThesisCell(0.880, "nadam"),
}


def _rows(decoder: str, rows: dict[str, list[tuple[float, float, float]]]):
    return {
        (decoder, loss, optimizer): ReferenceCell(*values)
        for loss, cells in rows.items()
        for optimizer, values in zip(OPTIMIZERS, cells)
    }


#: (decoder, loss, optimizer) -> ReferenceCell, from the reference re-run (docs/protocol.md).
REFERENCE: dict[tuple[str, str, str], ReferenceCell] = {
    **_rows(
        "relu",
        {
            "mse": [(0.783, 0.009, 0.838), (0.729, 0.011, 0.778), (0.791, 0.012, 0.847),
                    (0.793, 0.006, 0.849), (0.787, 0.005, 0.844)],
            "i1": [(0.559, 0.020, 0.607), (0.315, 0.039, 0.290), (0.549, 0.024, 0.605),
                   (0.588, 0.005, 0.675), (0.359, 0.034, 0.365)],
            "i2": [(0.591, 0.037, 0.681), (0.743, 0.008, 0.814), (0.475, 0.014, 0.581),
                   (0.659, 0.004, 0.726), (0.383, 0.029, 0.357)],
        },
    ),
    **_rows(
        "sigmoid",
        {
            "mse": [(0.843, 0.007, 0.809), (0.679, 0.006, 0.646), (0.862, 0.005, 0.848),
                    (0.866, 0.003, 0.848), (0.862, 0.006, 0.852)],
            "i1": [(0.294, 0.007, 0.273), (0.249, 0.001, 0.241), (0.427, 0.033, 0.390),
                   (0.533, 0.036, 0.509), (0.438, 0.026, 0.403)],
            "i2": [(0.867, 0.006, 0.863), (0.790, 0.011, 0.778), (0.883, 0.005, 0.882),
                   (0.882, 0.003, 0.882), (0.879, 0.004, 0.882)],
        },
    ),
}


def thesis_cells() -> list[tuple[str, str, str]]:
    """The six (decoder, loss, optimizer) triples the thesis reports, in table order."""
    return [(d, l, THESIS_TABLE[d, l].optimizer) for d in DECODERS for l in LOSSES]

