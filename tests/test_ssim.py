"""idivkit.ssim against hand-worked numbers, scikit-image, matplotlib's PNG files and Pillow."""

from __future__ import annotations

from fractions import Fraction

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

from idivkit import ssim  # noqa: E402


@pytest.fixture(scope="module")
def test_set(mnist):
    _, (x_test, y_test) = mnist
    return x_test, y_test


@pytest.fixture(scope="module")
def noisy_pairs(test_set):
    """200 real test images and seeded noisy versions of them, clipped to [0, 1]."""
    x = test_set[0][:200]
    rng = np.random.default_rng(0)
    return x, np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1).astype(np.float32)


def viridis_palette() -> np.ndarray:
    """imsave's 256 colours: a 16x16 ramp from 0 to 1, as RGBA bytes."""
    return ssim.imsave_rgba(np.linspace(0, 1, 256).reshape(16, 16))


# --- the global formula ----------------------------------------------------------------------

def test_global_ssim_identical_images_is_exactly_one(test_set):
    image = test_set[0][0]
    assert ssim.global_ssim(image, image, 1.0) == 1.0
    bytes_image = (image * 255).astype(np.uint8)
    assert ssim.global_ssim(bytes_image, bytes_image, 255) == 1.0


def test_global_ssim_of_an_image_and_its_inverse_is_negative(test_set):
    image = test_set[0][0].astype(np.float64)
    value = ssim.global_ssim(image, 1 - image, 1.0)
    # sigma_ab = -sigma^2, so the structure term is (C2 - 2 var) / (C2 + 2 var) < 0 and
    # the luminance term 2 m (1 - m) / (m^2 + (1 - m)^2) (+ C1) is positive but small
    m, var = image.mean(), image.var()
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * m * (1 - m) + c1) / (m**2 + (1 - m) ** 2 + c1) * (c2 - 2 * var) / (c2 + 2 * var)
    assert value < 0
    assert value == pytest.approx(expected, rel=1e-12)


def test_global_ssim_hand_worked_2x2():
    a = [[0, 1], [2, 3]]
    b = [[1, 1], [2, 4]]
    # L = 4: C1 = (0.04)^2 = 0.0016, C2 = (0.12)^2 = 0.0144.
    # mu_a = 1.5, mu_b = 2; deviations a: -1.5 -0.5 0.5 1.5, b: -1 -1 0 2
    # var_a = (2.25 + 0.25 + 0.25 + 2.25)/4 = 1.25; var_b = (1 + 1 + 0 + 4)/4 = 1.5
    # cov = (1.5 + 0.5 + 0 + 3)/4 = 1.25
    by_hand = (2 * 1.5 * 2 + 0.0016) * (2 * 1.25 + 0.0144) / (
        (1.5**2 + 2**2 + 0.0016) * (1.25 + 1.5 + 0.0144))
    assert by_hand == pytest.approx(0.873191, abs=1e-6)
    assert ssim.global_ssim(a, b, 4) == pytest.approx(by_hand, rel=1e-14)


@pytest.mark.parametrize(
    ("a", "b", "data_range", "pattern"),
    [
        (np.zeros((2, 2)), np.zeros((2, 3)), 1, r"a has shape \(2, 2\) but b has shape \(2, 3\)"),
        (np.zeros(4), np.zeros(4), 0, "data_range must be a positive"),
        (np.zeros(4), np.zeros(4), -1, "data_range must be a positive"),
        (np.zeros(4), np.zeros(4), "wide", "data_range must be a positive"),
        (np.array([0, np.nan]), np.zeros(2), 1, "a has 1 NaN or infinite"),
    ],
)
def test_global_ssim_rejects_bad_arguments(a, b, data_range, pattern):
    with pytest.raises(ValueError, match=pattern):
        ssim.global_ssim(a, b, data_range)


# --- windowed SSIM and the honest mean -------------------------------------------------------

def test_windowed_ssim_is_skimage(noisy_pairs):
    x, noisy = noisy_pairs
    a, b = x[5].reshape(28, 28), noisy[5].reshape(28, 28)
    assert ssim.windowed_ssim(a, b, data_range=1.0) == structural_similarity(a, b, data_range=1.0)
    assert ssim.windowed_ssim(a, b, data_range=1.0, gaussian_weights=True) == (
        structural_similarity(a, b, data_range=1.0, gaussian_weights=True))
    a8, b8 = (a * 255).astype(np.uint8), (b * 255).astype(np.uint8)
    assert ssim.windowed_ssim(a8, b8) == structural_similarity(a8, b8)


def test_mean_ssim_equals_the_explicit_loop(noisy_pairs):
    x, noisy = noisy_pairs
    loop = [structural_similarity(x[i].reshape(28, 28).astype(np.float64),
                                  noisy[i].reshape(28, 28).astype(np.float64), data_range=1.0)
            for i in range(len(x))]
    per_image = ssim.per_image_ssim(x, noisy)
    np.testing.assert_allclose(per_image, loop, rtol=0, atol=1e-12)
    assert ssim.mean_ssim(x, noisy) == pytest.approx(np.mean(loop), abs=1e-12)
    # batching and the (N, 28, 28) layout change nothing
    assert ssim.mean_ssim(x.reshape(-1, 28, 28), noisy, batch=7) == pytest.approx(
        np.mean(loop), abs=1e-12)
    assert 0.3 < np.mean(loop) < 0.9  # noise of std 0.2 hurts, but not completely


def test_mean_ssim_rejects_bad_arguments(noisy_pairs):
    x, noisy = noisy_pairs
    with pytest.raises(ValueError, match="x has 200 images but x_decoded has 199"):
        ssim.mean_ssim(x, noisy[:199])
    with pytest.raises(ValueError, match=r"x_decoded must have shape \(N, 784\)"):
        ssim.mean_ssim(x, noisy[:, :700])
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        ssim.mean_ssim(x, noisy, batch=0)


# --- the thesis's protocol -------------------------------------------------------------------

def test_colouring_equals_imsave_png_decoded_by_pillow(tmp_path, noisy_pairs):
    x, noisy = noisy_pairs
    images = [x[0].reshape(28, 28), noisy[1].reshape(28, 28),
              x[2].reshape(28, 28).astype(np.float64), np.zeros((28, 28), np.float32),
              np.full((28, 28), 0.5)]
    for k, image in enumerate(images):
        path = tmp_path / f"image{k}.png"
        plt.imsave(path, image)
        with Image.open(path) as png:
            assert png.mode == "RGBA"
            decoded = np.asarray(png)
        np.testing.assert_array_equal(ssim.imsave_rgba(image), decoded)


def test_gray_rules_on_hand_worked_pixels():
    # viridis's first colour, a colour whose exact luma is a half, and its last colour
    pixels = np.array([[68, 1, 84], [243, 229, 30], [253, 231, 36]], dtype=np.uint8)
    # libpng: 9797 R + 19234 G + 3737 B, then >> 15 (divide by 32768, truncate)
    assert 9797 * 68 + 19234 * 1 + 3737 * 84 == 999338  # / 32768 = 30.497
    assert 9797 * 243 + 19234 * 229 + 3737 * 30 == 6897367  # / 32768 = 210.49
    assert 9797 * 253 + 19234 * 231 + 3737 * 36 == 7056227  # / 32768 = 215.34
    assert ssim.rgb_to_gray(pixels, "libpng").tolist() == [30, 210, 215]
    # cvtColor: (4899 R + 9617 G + 1868 B + 8192) >> 14
    assert 4899 * 243 + 9617 * 229 + 1868 * 30 + 8192 == 3456982  # / 16384 = 210.997
    assert ssim.rgb_to_gray(pixels, "cvtcolor").tolist() == [30, 210, 215]
    # exact luma 20.332 + 0.587 + 9.576 = 30.495; 72.657 + 134.423 + 3.42 = 210.5 (half up)
    assert ssim.rgb_to_gray(pixels, "float").tolist() == [30, 211, 215]
    # gray pixels stay themselves; alpha is ignored
    gray_rgba = np.array([[0, 0, 0, 9], [128, 128, 128, 0], [255, 255, 255, 255]], np.uint8)
    for method in ssim.GRAY_METHODS:
        assert ssim.rgb_to_gray(gray_rgba, method).tolist() == [0, 128, 255]


def test_gray_rules_on_every_viridis_colour():
    palette = viridis_palette()
    libpng = ssim.rgb_to_gray(palette, "libpng").astype(int)
    exact = [[int(Fraction(9797 * int(r) + 19234 * int(g) + 3737 * int(b), 32768))
              for r, g, b, _ in row] for row in palette]
    np.testing.assert_array_equal(libpng, exact)
    # Pillow's convert("L") rounds 0.299 R + 0.587 G + 0.114 B like gray="float" does
    with Image.fromarray(palette[..., :3], "RGB") as rgb:
        pillow = np.asarray(rgb.convert("L")).astype(int)
    np.testing.assert_array_equal(ssim.rgb_to_gray(palette, "float"), pillow)
    # truncating is never above rounding and at most one level below it
    assert set(np.unique(pillow - libpng).tolist()) == {0, 1}
    with pytest.raises(ValueError, match="gray must be one of"):
        ssim.rgb_to_gray(palette, "opencv")
    with pytest.raises(ValueError, match="rgb must be uint8"):
        ssim.rgb_to_gray(palette.astype(float))


def test_libpng_rule_matches_real_opencv(tmp_path, noisy_pairs):
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    x, noisy = noisy_pairs
    for k in range(20):
        image = (x if k % 2 else noisy)[k].reshape(28, 28)
        path = tmp_path / f"{k}.png"
        plt.imsave(path, image)
        np.testing.assert_array_equal(
            ssim.rgb_to_gray(ssim.imsave_rgba(image)),
            cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))


def test_thesis_ssim_of_a_perfect_reconstruction_is_one(test_set):
    x_test, y_test = test_set
    details = ssim.thesis_ssim(x_test, y_test, x_test, return_details=True)
    assert details.value == 1.0 and ssim.thesis_ssim(x_test, y_test, x_test) == 1.0
    expected = [next(i for i in range(1000) if y_test[i] == d) for d in range(10)]
    assert details.indices.tolist() == expected
    assert details.per_digit.shape == (10,) and details.gray == "libpng"
    assert details.original_gray.shape == (10, 28, 28)
    assert details.original_gray.dtype == np.uint8


def test_thesis_ssim_of_an_all_zero_reconstruction(tmp_path, test_set):
    x_test, y_test = test_set
    zeros = np.zeros_like(x_test)
    values = []
    for digit in range(10):
        index = next(i for i in range(1000) if y_test[i] == digit)
        grays = []
        for name, image in (("orig", x_test[index]), ("zero", zeros[index])):
            path = tmp_path / f"{digit}_{name}.png"
            plt.imsave(path, image.reshape(28, 28))
            with Image.open(path) as png:
                rgb = np.asarray(png)[..., :3].astype(np.int64)
            r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
            grays.append(((9797 * r + 19234 * g + 3737 * b) >> 15).astype(np.uint8))
        assert np.all(grays[1] == 30)  # a constant image is viridis's first colour
        values.append(structural_similarity(grays[0], grays[1]))
    result = ssim.thesis_ssim(x_test, y_test, zeros, return_details=True)
    np.testing.assert_allclose(result.per_digit, values, rtol=0, atol=1e-12)
    assert result.value == pytest.approx(np.mean(values), abs=1e-12)
    assert 0.0 < result.value < 0.5
    # the gray rule matters only a little
    other = ssim.thesis_ssim(x_test, y_test, zeros, gray="float")
    assert 0 < abs(other - result.value) < 0.01


def test_thesis_ssim_rejects_bad_inputs(test_set):
    x_test, y_test = test_set
    with pytest.raises(ValueError, match=r"y_test must have shape \(10000,\)"):
        ssim.thesis_ssim(x_test, y_test[:-1], x_test)
    with pytest.raises(ValueError, match="x_test has 10000 images but x_decoded has 9999"):
        ssim.thesis_ssim(x_test, y_test, x_test[:-1])
    with pytest.raises(ValueError, match=r"x_decoded must have shape \(N, 784\) or \(N, 28, 28\)"):
        ssim.thesis_ssim(x_test, y_test, x_test.reshape(-1, 28, 7, 4))
    with pytest.raises(ValueError, match="gray must be one of"):
        ssim.thesis_ssim(x_test, y_test, x_test, gray="opencv")
    no_nines = np.where(y_test == 9, 8, y_test)
    with pytest.raises(ValueError, match=r"digit\(s\) \[9\] do not occur among the first 1000"):
        ssim.thesis_ssim(x_test, no_nines, x_test)
