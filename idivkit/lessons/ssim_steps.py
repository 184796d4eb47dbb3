"""Lesson 07 (SSIM): the pieces the tests hand to the learner's functions, and the figures.

* :func:`window_means` -- the mean of every ``w x w`` window that lies inside an image (an
  integral image, independent of scikit-image and scipy): what a test passes as ``local_mean``.
* :func:`png_round_trip` -- the thesis's save-as-viridis-PNG / read-as-gray round trip of one
  image, from :func:`idivkit.ssim.imsave_rgba` and :func:`idivkit.ssim.rgb_to_gray`.
* :func:`plot_round_trip`, :func:`plot_ssim_pairs` -- the lesson's figures (white background,
  readable in a dark theme; fonts of 9 pt or more).

matplotlib is imported inside the plotting functions.
"""

from __future__ import annotations

import numpy as np

from .. import ssim

__all__ = ["check_ssim_terms", "check_windowed_ssim", "figure_style", "plot_round_trip", "plot_ssim_pairs",
           "png_round_trip", "reference_windowed_ssim", "triangle_window_means", "window_means"]


def figure_style() -> None:
    """White, opaque figures with dark text, fonts of 9 pt or more, mathtext labels (lessons
    07-09). Readable in JupyterLab's dark theme, whose inline figures are otherwise transparent."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.facecolor": "white", "savefig.facecolor": "white", "axes.facecolor": "white",
        "text.color": "black", "axes.labelcolor": "black", "xtick.color": "black",
        "ytick.color": "black", "axes.edgecolor": "black", "font.size": 10, "axes.titlesize": 10,
        "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
        "figure.titlesize": 11, "mathtext.fontset": "cm",
    })


def window_means(image, win_size: int = 7) -> np.ndarray:
    """Mean of every ``win_size x win_size`` window inside ``image`` (2-D), in float64.

    Returns shape ``(H - win_size + 1, W - win_size + 1)``: entry ``(i, j)`` is the mean of
    ``image[i:i + win_size, j:j + win_size]``. Computed with an integral image (cumulative
    sums), so it shares no code with scikit-image or scipy. These are exactly the window
    centres scikit-image keeps (it filters the whole image and then crops
    ``(win_size - 1) // 2`` pixels from each border). Lesson 07.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    if isinstance(win_size, bool) or int(win_size) != win_size or win_size < 1:
        raise ValueError(f"win_size must be a positive integer, got {win_size!r}")
    w = int(win_size)
    if w > min(image.shape):
        raise ValueError(f"win_size {w} is larger than the image {image.shape}")
    integral = np.zeros((image.shape[0] + 1, image.shape[1] + 1))
    integral[1:, 1:] = image.cumsum(axis=0).cumsum(axis=1)
    sums = integral[w:, w:] - integral[:-w, w:] - integral[w:, :-w] + integral[:-w, :-w]
    return sums / (w * w)


def png_round_trip(image, gray: str = "libpng") -> np.ndarray:
    """One image as the thesis's notebook measured it: coloured and saved by
    ``plt.imsave`` (viridis, min-max normalised on its own), read back as 8-bit gray.

    ``image`` is ``(28, 28)`` or ``(784,)``; returns a ``(28, 28)`` uint8 array. Lesson 07.
    """
    image = np.asarray(image)
    if image.ndim == 1 and image.size == 784:
        image = image.reshape(28, 28)
    return ssim.rgb_to_gray(ssim.imsave_rgba(image), gray)


def plot_round_trip(originals, reconstructions, indices, n: int = 5):
    """Four rows for the first ``n`` of ``indices``: the [0, 1] original, its gray round trip,
    the reconstruction, its gray round trip. Each panel's title gives its value range. Returns
    the figure. Lesson 07."""
    import matplotlib.pyplot as plt

    indices = list(indices)[:n]
    fig, axes = plt.subplots(4, len(indices), figsize=(1.9 * len(indices), 8.2), squeeze=False)
    rows = [("original", originals, False), ("original, round trip", originals, True),
            ("reconstruction", reconstructions, False), ("reconstruction, round trip", reconstructions, True)]
    for r, (name, images, trip) in enumerate(rows):
        for c, index in enumerate(indices):
            ax = axes[r][c]
            image = np.asarray(images[index], dtype=np.float64).reshape(28, 28)
            shown = png_round_trip(np.asarray(images[index]).reshape(28, 28)) if trip else image
            vmax = 255 if trip else 1.0
            ax.imshow(shown, cmap="gray", vmin=0, vmax=vmax)
            ax.set(xticks=[], yticks=[])
            ax.set_title(f"[{shown.min():.3g}, {shown.max():.3g}]", fontsize=9)
            if c == 0:
                ax.set_ylabel(name.replace(", ", ",\n"), fontsize=9)
    fig.suptitle("gray levels before and after the PNG round trip (panel title: min and max)")
    fig.tight_layout()
    return fig


def plot_ssim_pairs(pairs, data_range: float = 1.0):
    """Each ``(title, a, b)`` of ``pairs`` as two images side by side with their global SSIM
    (:func:`idivkit.ssim.global_ssim`) in the title. Returns the figure. Lesson 07."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 * len(pairs), figsize=(2.1 * 2 * len(pairs), 2.6), squeeze=False)
    for k, (title, a, b) in enumerate(pairs):
        value = ssim.global_ssim(a, b, data_range)
        for j, image in enumerate((a, b)):
            ax = axes[0][2 * k + j]
            ax.imshow(np.asarray(image).reshape(28, 28), cmap="gray", vmin=0, vmax=data_range)
            ax.set(xticks=[], yticks=[])
        axes[0][2 * k].set_title(f"{title}:", fontsize=9, loc="left")
        axes[0][2 * k + 1].set_title(f"SSIM = {value:+.3f}", fontsize=9)
    fig.tight_layout()
    return fig


# --- checks with diagnoses (the tests call these; messages never show expected values) -----
def triangle_window_means(image, win_size: int = 7) -> np.ndarray:
    """Like :func:`window_means`, but each window weighted by a separable triangle
    (``1, 2, ..., m, ..., 2, 1``, normalised): another local mean of the same shape. A test passes
    it to check that a learner's windowed SSIM uses the ``local_mean`` it is given. Lesson 07."""
    image = np.asarray(image, dtype=np.float64)
    w = int(win_size)
    if image.ndim != 2 or w < 1 or w > min(image.shape):
        raise ValueError(f"need a 2-D image at least {w} x {w}, got shape {image.shape}")
    ramp = np.minimum(np.arange(1, w + 1), np.arange(w, 0, -1)).astype(np.float64)
    ramp /= ramp.sum()
    windows = np.lib.stride_tricks.sliding_window_view(image, (w, w))
    return np.einsum("ijkl,k,l->ij", windows, ramp, ramp)


def _ssim_map(a, b, data_range, win_size, sample=True, k1=0.01, k2=0.03, local_mean=None):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = win_size * win_size
    factor = n / (n - 1) if sample else 1.0
    means = local_mean or window_means
    ma, mb = means(a, win_size), means(b, win_size)
    va = factor * (means(a * a, win_size) - ma * ma)
    vb = factor * (means(b * b, win_size) - mb * mb)
    cov = factor * (means(a * b, win_size) - ma * mb)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    return (2 * ma * mb + c1) * (2 * cov + c2) / ((ma * ma + mb * mb + c1) * (va + vb + c2))


def reference_windowed_ssim(a, b, data_range, win_size: int = 7, local_mean=None) -> float:
    """Windowed SSIM as scikit-image computes it with its defaults (uniform ``win_size``
    window, sample covariances, window centres at least ``(win_size - 1) // 2`` from the border),
    written with :func:`window_means`: an independent check of scikit-image. With
    ``local_mean`` (e.g. :func:`triangle_window_means`) the same formula with other window
    weights. Lesson 07."""
    return float(_ssim_map(a, b, float(data_range), int(win_size), local_mean=local_mean).mean())


def _scalar(value, what):
    try:
        out = float(np.asarray(value, dtype=np.float64).reshape(()))
    except Exception:  # noqa: BLE001  (anything a learner returns)
        raise AssertionError(f"{what} must be one number (a float), got {type(value).__name__}"
                             + (f" of shape {np.shape(value)}" if hasattr(value, "shape") else "")) from None
    if not np.isfinite(out):
        raise AssertionError(f"{what} is {out}: it must be finite")
    return out


def check_windowed_ssim(value, a, b, data_range, win_size: int = 7, *, what: str, atol: float = 1e-6) -> None:
    """Raise an AssertionError unless ``value`` is the windowed SSIM of ``(a, b)`` within
    ``atol``; the message names the likely slip (population variance, no crop, wrong ``L``,
    a global formula) and never the expected value. Lesson 07."""
    got = _scalar(value, what)
    want = reference_windowed_ssim(a, b, data_range, win_size)
    if abs(got - want) <= atol:
        return
    slips = [
        ("you divide by N instead of N - 1: scikit-image uses the sample (co)variance, "
         f"a factor N/(N-1) = {win_size**2}/{win_size**2 - 1}",
         float(_ssim_map(a, b, float(data_range), win_size, sample=False).mean())),
        ("the constants use the wrong L: C1 = (0.01 L)^2 and C2 = (0.03 L)^2 with L = data_range",
         float(_ssim_map(a, b, 1.0 if data_range != 1 else 255.0, win_size).mean())),
        ("this is the global SSIM of the whole image; average the SSIM of every window instead",
         float(ssim.global_ssim(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                                data_range))),
    ]
    for hint, alternative in slips:
        if abs(got - alternative) <= max(atol, 1e-9):
            raise AssertionError(f"{what} is off: {hint}")
    raise AssertionError(f"{what} differs from scikit-image's SSIM by {abs(got - want):.2e} (tolerance "
                         f"{atol:g}): check the window means (only windows inside the image), the "
                         "sample covariance and the constants")


def check_ssim_terms(terms, a, b, data_range, *, what: str, which: str, atol: float = 1e-10) -> None:
    """Check one term of ``terms = (luminance, contrast_structure)`` of the global SSIM.
    ``which`` is ``"luminance"`` or ``"contrast_structure"``. Lesson 07."""
    if not isinstance(terms, (tuple, list)) or len(terms) != 2:
        raise AssertionError(f"{what} must return a tuple (luminance, contrast_structure) of two numbers, "
                             f"got {type(terms).__name__}")
    position = {"luminance": 0, "contrast_structure": 1}[which]
    got = _scalar(terms[position], f"{what}[{position}] ({which})")
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ma, mb = a.mean(), b.mean()
    if which == "luminance":
        want = (2 * ma * mb + c1) / (ma * ma + mb * mb + c1)
        slips = [("C1 uses the wrong L (C1 = (0.01 L)^2 with L = data_range)",
                  (2 * ma * mb + (0.01 * (255.0 if data_range == 1 else 1.0)) ** 2)
                  / (ma * ma + mb * mb + (0.01 * (255.0 if data_range == 1 else 1.0)) ** 2))]
    else:
        da, db = a - ma, b - mb
        va, vb, cov = (da * da).mean(), (db * db).mean(), (da * db).mean()
        want = (2 * cov + c2) / (va + vb + c2)
        n = a.size
        f = n / (n - 1)
        slips = [("the printed formula uses the population (co)variance over all pixels (divide by N, not N - 1)",
                  (2 * f * cov + c2) / (f * va + f * vb + c2)),
                 ("the numerator is 2 sigma_ab + C2, with the covariance, not the product of standard deviations",
                  (2 * np.sqrt(va * vb) + c2) / (va + vb + c2)),
                 ("C2 uses the wrong L (C2 = (0.03 L)^2 with L = data_range)",
                  (2 * cov + (0.03 * (255.0 if data_range == 1 else 1.0)) ** 2)
                  / (va + vb + (0.03 * (255.0 if data_range == 1 else 1.0)) ** 2))]
    if abs(got - want) <= atol + 1e-9 * abs(want):
        return
    for hint, alternative in slips:
        if abs(got - alternative) <= 1e-9 * max(1.0, abs(alternative)):
            raise AssertionError(f"{what}: the {which} term is off: {hint}")
    raise AssertionError(f"{what}: the {which} term is off by {abs(got - want):.2e}")
