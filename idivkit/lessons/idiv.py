"""Lesson 03 (the I-divergence as a loss): figures of E_I1 and E_I2 on single pixels and on
MNIST, and a rough reconstruction that needs no training. matplotlib is imported inside the
plotting functions.
"""

from __future__ import annotations

import numpy as np

from .. import losses
from .._numerics import EPSILON


def plot_i_divergence_asymmetry(lit: float = 0.8, axes=None):
    """E_I1 and E_I2 of one pixel against ``x_hat``, for a lit pixel ``x = lit`` and a dark
    pixel ``x = 0`` (E_I1 of a dark pixel is +inf without clipping: shown clipped to
    ``[1e-7, 1]``). Half the squared error for comparison. Returns the axes. Lesson 03."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    x_hat = np.linspace(0.001, 1.0, 400)
    for ax, value in zip(axes, (lit, 0.0)):
        x = np.full_like(x_hat, value)
        clip = value == 0
        ax.plot(x_hat, losses.reverse_i_divergence(x, x_hat, reduction="none", clip=clip),
                color="tab:red", label=r"$E_{I1} = D_I(\hat x \mid x)$" + (", clipped" if clip else ""))
        ax.plot(x_hat, losses.i_divergence(x, x_hat, reduction="none"), color="tab:blue", ls="--",
                label=r"$E_{I2} = D_I(x \mid \hat x)$")
        ax.plot(x_hat, losses.squared_error(x, x_hat, reduction="none"), color="0.3", ls=":",
                label=r"$(x - \hat x)^2 / 2$")
        ax.axvline(value, color="grey", lw=0.5)
        ax.set(xlabel=r"model output $\hat x$", ylabel="loss of one pixel",
               title=f"{'lit' if value else 'dark'} pixel, x = {value:g}")
        ax.set_ylim(0, 2.0 if value else 16.0)
        ax.legend(fontsize=9)
    return axes


def pca_reconstruction(train_images, images, n_components: int = 32):
    """A rough stand-in for a trained autoencoder's output: ``images`` projected on the first
    ``n_components`` principal components of ``train_images`` (32, the thesis's code size),
    clipped to [0, 1]. No training, so it is instant. Lesson 03."""
    train_images = np.asarray(train_images, dtype=np.float64)
    mean = train_images.mean(axis=0)
    centred = train_images - mean
    # Eigenvectors of the 784 x 784 covariance: cheaper than an SVD of the data matrix.
    _, vectors = np.linalg.eigh(centred.T @ centred)
    basis = vectors[:, ::-1][:, :n_components].T
    return np.clip((np.asarray(images, dtype=np.float64) - mean) @ basis.T @ basis + mean, 0.0, 1.0)


def i_divergence_gradients(x, x_hat):
    """Per-pixel ``dE/dx_hat`` of the clipped E_I1 and E_I2 (as the original code), split into
    background (``x = 0``) and lit pixels. Returns a dict of 1-D arrays. Lesson 03."""
    g1 = losses.reverse_i_divergence_grad(x, x_hat, clip=True)
    g2 = losses.beta_divergence_grad(x, x_hat, 1.0, clip=True)
    dark = x == 0
    return {"E_I1 background": g1[dark], "E_I1 lit": g1[~dark],
            "E_I2 background": g2[dark], "E_I2 lit": g2[~dark]}


def plot_gradient_maps(x, x_hat, n: int = 6, axes=None):
    """Rows: images ``x`` (N, 784), reconstructions ``x_hat``, and ``|dE/dx_hat|`` of the
    clipped E_I1 and E_I2 on one shared log colour scale. Returns the axes. Lesson 03."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if axes is None:
        _, axes = plt.subplots(4, n, figsize=(1.6 * n, 6.8))
    g1 = np.abs(losses.reverse_i_divergence_grad(x[:n], x_hat[:n], clip=True))
    g2 = np.abs(losses.beta_divergence_grad(x[:n], x_hat[:n], 1.0, clip=True))
    norm = LogNorm(1e-3, 20)
    rows = [(r"image $x$", x[:n], {"cmap": "gray", "vmin": 0, "vmax": 1}),
            (r"rough $\hat x$", x_hat[:n], {"cmap": "gray", "vmin": 0, "vmax": 1}),
            (r"$|\partial E_{I1}/\partial \hat x|$", np.maximum(g1, 1e-3), {"norm": norm, "cmap": "magma"}),
            (r"$|\partial E_{I2}/\partial \hat x|$", np.maximum(g2, 1e-3), {"norm": norm, "cmap": "magma"})]
    for r, (label, images, style) in enumerate(rows):
        for c in range(n):
            image = axes[r, c].imshow(images[c].reshape(28, 28), **style)
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=9)
    axes[0, 0].figure.colorbar(image, ax=axes[2:, :].ravel().tolist(), shrink=0.8, label=r"$|\partial E / \partial \hat x_d|$")
    return axes


def plot_gradient_histograms(grads: dict, axes=None):
    """Histograms of ``|dE/dx_hat|`` (log scale) for background and lit pixels, one panel per
    loss, from :func:`i_divergence_gradients` (zero gradients are counted, not drawn). Lesson 03."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    bins = np.logspace(-6, 2, 65)
    for ax, loss in zip(axes, ("E_I1", "E_I2")):
        for part in ("background", "lit"):
            g = np.abs(grads[f"{loss} {part}"])
            nonzero = g[g > 0]
            ax.hist(nonzero, bins=bins, alpha=0.6,
                    label=f"{part}: {g.size} pixels, {g.size - nonzero.size} with gradient 0, "
                          f"sum |g| = {g.sum():.3g}")
        tex = {"E_I1": "E_{I1}", "E_I2": "E_{I2}"}[loss]
        ax.set(xscale="log", yscale="log", ylim=(0.5, 1e7),
               xlabel=rf"$|\partial {tex} / \partial \hat x_d|$ per pixel",
               ylabel="pixels", title=rf"${tex}$ (clipped to [{EPSILON:g}, 1])")
        ax.legend(fontsize=9, loc="upper left")
    return axes
