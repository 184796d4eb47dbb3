"""SSIM: the formula the thesis prints, the protocol its table used, and an honest mean.

* :func:`global_ssim` -- the thesis's formula over the whole image (no window).
* :func:`windowed_ssim`, :func:`per_image_ssim`, :func:`mean_ssim` -- scikit-image's SSIM
  (7x7 uniform window), averaged over every image: the honest measure.
* :func:`thesis_ssim` -- what the thesis's numbers actually are (docs/protocol.md):
  10 images, each coloured by ``matplotlib.pyplot.imsave``, read back by OpenCV as gray.

How OpenCV read the PNGs back. ``cv2.imread(path, cv2.IMREAD_GRAYSCALE)`` on a colour PNG
does not call ``cvtColor``: its PNG decoder (``modules/imgcodecs/src/grfmt_png.cpp``, the same
in 3.4.x and 4.0.x of early 2019 as today) strips the alpha channel and asks libpng for
``png_set_rgb_to_gray(png_ptr, 1, 0.299, 0.587)``. libpng 1.6 stores the weights in 15-bit
fixed point, truncating, ``red = 29900*32768//100000 = 9797``, ``green = 19234``,
``blue = 32768 - red - green = 3737``; the PNG that imsave writes has no gAMA/sRGB chunk, so
libpng takes its no-gamma 8-bit path, which also truncates::

    gray = R                                   if R == G == B
    gray = (9797 R + 19234 G + 3737 B) >> 15   otherwise        (gray="libpng", the default)

OpenCV 4.14's ``cv2.imread`` gives exactly this on imsave's PNGs (tests/test_ssim.py checks
it when ``cv2`` is installed). ``gray="cvtcolor"`` is ``cv2.cvtColor(..., COLOR_RGB2GRAY)``,
``(4899 R + 9617 G + 1868 B + 8192) >> 14``, and ``gray="float"`` is ``0.299 R + 0.587 G +
0.114 B`` rounded half up; both round, so they are one level above the libpng value on 113
and 114 of the 256 viridis colours (their thesis SSIM differs by 0.002 or less).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import first_of_each_digit

__all__ = [
    "global_ssim",
    "windowed_ssim",
    "per_image_ssim",
    "mean_ssim",
    "imsave_rgba",
    "rgb_to_gray",
    "thesis_ssim",
    "ThesisSSIM",
    "first_of_each_digit",
    "GRAY_METHODS",
]

GRAY_METHODS = ("libpng", "cvtcolor", "float")
# libpng's png_set_rgb_to_gray_fixed: weights * 32768 / 100000, truncated.
LIBPNG_RED = 29900 * 32768 // 100000  # 9797
LIBPNG_GREEN = 58700 * 32768 // 100000  # 19234
LIBPNG_BLUE = 32768 - LIBPNG_RED - LIBPNG_GREEN  # 3737


def _finite(value, name: str) -> np.ndarray:
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {array.dtype}")
    n_bad = int(np.count_nonzero(~np.isfinite(array)))
    if n_bad:
        raise ValueError(f"{name} has {n_bad} NaN or infinite entries of {array.size}")
    return array


def global_ssim(a, b, data_range) -> float:
    """SSIM over the whole image, the formula printed in the thesis (Wang et al. 2004):

    .. math:: \\mathrm{SSIM}(a, b) = \\frac{(2\\mu_a\\mu_b + C_1)(2\\sigma_{ab} + C_2)}
              {(\\mu_a^2 + \\mu_b^2 + C_1)(\\sigma_a^2 + \\sigma_b^2 + C_2)},
       \\quad C_1 = (0.01 L)^2,\\ C_2 = (0.03 L)^2

    with means, population variances and covariance over all pixels and ``L = data_range``.

    Parameters
    ----------
    a, b : array_like, same shape
        The two images (any shape; every entry counts as a pixel).
    data_range : float
        ``L``, the span of possible pixel values: 1 for [0, 1] data, 255 for uint8.

    Returns
    -------
    float
        In [-1, 1]; exactly 1 for identical images.
    """
    a = _finite(a, "a").astype(np.float64)
    b = _finite(b, "b").astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a has shape {a.shape} but b has shape {b.shape}; they must match")
    if a.size == 0:
        raise ValueError("a and b are empty")
    try:
        big_l = float(data_range)
    except (TypeError, ValueError):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}") from None
    if not (np.isfinite(big_l) and big_l > 0):
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    c1, c2 = (0.01 * big_l) ** 2, (0.03 * big_l) ** 2
    mu_a, mu_b = a.mean(), b.mean()
    da, db = a - mu_a, b - mu_b
    var_a, var_b, cov = (da * da).mean(), (db * db).mean(), (da * db).mean()
    return float((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                 / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)))


def windowed_ssim(a, b, data_range=None, **kwargs) -> float:
    """``skimage.metrics.structural_similarity(a, b, data_range=data_range, **kwargs)``.

    With its defaults: a 7x7 uniform window, sample covariances, the mean over the window
    centres at least 3 pixels from the border. ``data_range`` may be omitted for integer
    images (255 for uint8); it is required for floating ones.
    """
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(a), np.asarray(b), data_range=data_range,
                                       **kwargs))


def _as_images(x, name: str, image_shape) -> np.ndarray:
    x = _finite(x, name)
    h, w = image_shape
    if x.ndim == 2 and x.shape[1] == h * w:
        return x.reshape(-1, h, w)
    if x.ndim == 3 and x.shape[1:] == (h, w):
        return x
    raise ValueError(f"{name} must have shape (N, {h * w}) or (N, {h}, {w}), got {x.shape}")


def _image_pair(x, x_decoded, names, image_shape):
    x = _as_images(x, names[0], image_shape)
    x_decoded = _as_images(x_decoded, names[1], image_shape)
    if len(x) != len(x_decoded):
        raise ValueError(f"{names[0]} has {len(x)} images but {names[1]} has {len(x_decoded)}")
    if len(x) == 0:
        raise ValueError(f"{names[0]} holds no images")
    return x, x_decoded


def per_image_ssim(x, x_decoded, *, data_range=1.0, image_shape=(28, 28)) -> np.ndarray:
    """scikit-image's SSIM (its defaults: 7x7 uniform window, sample covariance, K1 = 0.01,
    K2 = 0.03) of every image pair, in float64, computed for all images at once.

    Parameters
    ----------
    x, x_decoded : array, shape (N, H*W) or (N, H, W)
    data_range : float, default 1.0
        ``L``, the span of pixel values (1 for [0, 1] data).
    image_shape : tuple, default (28, 28)

    Returns
    -------
    ndarray, shape (N,)
        Equal to ``skimage.metrics.structural_similarity(x[n], x_decoded[n],
        data_range=data_range)`` for each ``n`` (tests/test_ssim.py checks it to 1e-12).

    Notes
    -----
    scikit-image averages the SSIM map over window centres at least 3 pixels from the border,
    where the 7x7 window never leaves the image; so the local means are plain 7x7 box sums,
    taken here from two cumulative sums (a summed-area table) for every image in one pass.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE Trans. Image
       Process. 13(4), 2004.
    .. [2] scikit-image, ``skimage/metrics/_structural_similarity.py``.
    """
    x, x_decoded = _image_pair(x, x_decoded, ("x", "x_decoded"), image_shape)
    win = 7
    if min(image_shape) < win:
        raise ValueError(f"image_shape must be at least {win} x {win} for a 7x7 window, got {image_shape}")
    a = x.astype(np.float64)
    b = x_decoded.astype(np.float64)
    n_pixels = win * win
    mean = lambda img: _box_sums(img, win) / n_pixels  # noqa: E731
    ux, uy = mean(a), mean(b)
    cov_norm = n_pixels / (n_pixels - 1)  # sample covariance, as scikit-image's default
    vx = cov_norm * (mean(a * a) - ux * ux)
    vy = cov_norm * (mean(b * b) - uy * uy)
    vxy = cov_norm * (mean(a * b) - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(axis=(1, 2))


def _box_sums(images: np.ndarray, win: int) -> np.ndarray:
    """Sums over every ``win x win`` window inside each image: shape (N, H-win+1, W-win+1)."""
    table = np.zeros((images.shape[0], images.shape[1] + 1, images.shape[2] + 1))
    np.cumsum(np.cumsum(images, axis=1), axis=2, out=table[:, 1:, 1:])
    return (table[:, win:, win:] - table[:, :-win, win:] - table[:, win:, :-win]
            + table[:, :-win, :-win])


def mean_ssim(x, x_decoded, *, data_range=1.0, image_shape=(28, 28), batch=250) -> float:
    """The honest measure: mean skimage SSIM over ALL images, on [0, 1] data, ``L = 1``.

    .. math:: \\overline{\\mathrm{SSIM}} = \\frac{1}{N} \\sum_{n=1}^{N}
              \\mathrm{SSIM}_{7\\times 7}(x_n, \\hat x_n)

    ``batch`` images are converted to float64 at a time: bounds the extra memory (about 11 MB
    for 250 images; the lessons that hold Keras have little to spare).
    Used by ``idivkit reproduce``.
    """
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    x, x_decoded = _image_pair(x, x_decoded, ("x", "x_decoded"), image_shape)
    total = 0.0
    for start in range(0, len(x), batch):
        chunk = slice(start, start + batch)
        total += per_image_ssim(x[chunk], x_decoded[chunk], data_range=data_range,
                                image_shape=image_shape).sum()
    return total / len(x)


def imsave_rgba(image) -> np.ndarray:
    """The RGBA bytes ``matplotlib.pyplot.imsave(fname, image)`` writes, shape ``(H, W, 4)``.

    Its defaults: the image is min-max normalised on its own (a constant image maps to 0),
    coloured with viridis, and converted to uint8 (``bytes=True``), through matplotlib's own
    ``ScalarMappable.to_rgba``. The dtype is kept (Keras outputs are float32).
    """
    import matplotlib
    from matplotlib.cm import ScalarMappable

    image = _finite(image, "image")
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    return ScalarMappable(cmap=matplotlib.colormaps["viridis"]).to_rgba(image, bytes=True)


def rgb_to_gray(rgb, method: str = "libpng") -> np.ndarray:
    """8-bit gray from 8-bit RGB(A) pixels (alpha ignored, as OpenCV strips it).

    ``"libpng"`` (default, what ``cv2.imread(png, IMREAD_GRAYSCALE)`` does):
    ``R`` if ``R == G == B`` else ``(9797 R + 19234 G + 3737 B) >> 15``;
    ``"cvtcolor"``: ``(4899 R + 9617 G + 1868 B + 8192) >> 14``;
    ``"float"``: ``0.299 R + 0.587 G + 0.114 B`` rounded half up, in exact integer
    arithmetic, ``(299 R + 587 G + 114 B + 500) // 1000``. See the module docstring.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim < 1 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"rgb must be uint8 with 3 or 4 channels last, got {rgb.dtype} "
                         f"{rgb.shape}")
    r, g, b = (rgb[..., k].astype(np.int64) for k in range(3))
    if method == "libpng":
        gray = np.where((r == g) & (r == b), r, (LIBPNG_RED * r + LIBPNG_GREEN * g
                                                 + LIBPNG_BLUE * b) >> 15)
    elif method == "cvtcolor":
        gray = (4899 * r + 9617 * g + 1868 * b + 8192) >> 14
    elif method == "float":
        gray = (299 * r + 587 * g + 114 * b + 500) // 1000  # exact: float sums miss halves
    else:
        raise ValueError(f"gray must be one of {GRAY_METHODS}, got {method!r}")
    return gray.astype(np.uint8)


@dataclass(frozen=True)
class ThesisSSIM:
    """Details of :func:`thesis_ssim`: ``value`` is the mean of ``per_digit``."""

    value: float
    indices: np.ndarray  # (10,) test-set index of the first image of each digit 0..9
    per_digit: np.ndarray  # (10,) skimage SSIM of each uint8 gray pair
    original_gray: np.ndarray  # (10, 28, 28) uint8, as OpenCV read the saved originals
    decoded_gray: np.ndarray  # (10, 28, 28) uint8, the same for the reconstructions
    gray: str  # the gray conversion used


def thesis_ssim(x_test, y_test, x_decoded, *, gray: str = "libpng", limit: int = 1000,
                return_details: bool = False):
    """The SSIM the thesis's table reports, computed as its notebook did (no OpenCV needed).

    1. ``i_d`` = the first test image of digit ``d`` among the first ``limit`` (1000);
    2. original and reconstruction: 28x28, coloured as ``plt.imsave`` does (:func:`imsave_rgba`);
    3. read back as 8-bit gray as ``cv2.imread(..., IMREAD_GRAYSCALE)`` did (:func:`rgb_to_gray`);
    4. ``s_d`` = skimage SSIM with its defaults on the uint8 pair (``L = 255``);
    5. result :math:`\\frac{1}{10}\\sum_d s_d`.

    Parameters
    ----------
    x_test, x_decoded : array_like, ``(N, 784)`` or ``(N, 28, 28)``
        Test images and the model's reconstructions (keep the model's dtype, float32 for
        Keras: the colour normalisation happens in it, as in the original).
    y_test : array_like, ``(N,)``
        Test labels; every digit must occur among the first ``limit``.
    gray : {"libpng", "cvtcolor", "float"}
    return_details : bool
        Return a :class:`ThesisSSIM` instead of the float.

    Used by ``idivkit reproduce``.
    """
    if gray not in GRAY_METHODS:
        raise ValueError(f"gray must be one of {GRAY_METHODS}, got {gray!r}")
    x_test, x_decoded = _image_pair(x_test, x_decoded, ("x_test", "x_decoded"), (28, 28))
    y_test = np.asarray(y_test)
    if y_test.shape != (len(x_test),):
        raise ValueError(f"y_test must have shape ({len(x_test)},) to match x_test, "
                         f"got {y_test.shape}")
    from skimage.metrics import structural_similarity

    indices = first_of_each_digit(y_test, limit)
    originals = np.stack([rgb_to_gray(imsave_rgba(x_test[i]), gray) for i in indices])
    decoded = np.stack([rgb_to_gray(imsave_rgba(x_decoded[i]), gray) for i in indices])
    per_digit = np.array([structural_similarity(o, d) for o, d in zip(originals, decoded)])
    value = float(per_digit.mean())
    if not return_details:
        return value
    return ThesisSSIM(value, indices, per_digit, originals, decoded, gray)
