"""PNG plots of training (optional: ``pip install 'backprop-by-hand[plot]'``).

Loss curve, decision boundary over the input plane with the data points,
and per-layer gradient norms over training (to *see* vanishing gradients).
Everything else in the library works without matplotlib.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop.mlp import Layer, MLPConfig, predict


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no screen needed
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plots need matplotlib: pip install 'backprop-by-hand[plot]' "
            "(or pip install matplotlib)"
        ) from exc
    return plt


def plot_loss(losses: Sequence[float], path: str | os.PathLike[str], title: str = "loss") -> None:
    """Loss per epoch, (epochs,), with the ln 2 plateau marked, written to ``path`` (PNG)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.asarray(losses), label="loss")
    ax.axhline(np.log(2), color="grey", linestyle=":", label="ln 2")
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_decision_boundary(
    params: Sequence[Layer], config: MLPConfig, X: Any, y: Any, path: str | os.PathLike[str]
) -> None:
    """The network's output over the plane around X (N, 2), with the points coloured by y."""
    plt = _pyplot()
    X, y = np.asarray(X), np.asarray(y).reshape(-1)
    lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([g0.ravel(), g1.ravel()], axis=1).astype(params[0].w.dtype)
    p = predict(params, grid, config)[:, 0].reshape(g0.shape)
    fig, ax = plt.subplots(figsize=(5, 5))
    filled = ax.contourf(g0, g1, p, levels=20, cmap="RdBu_r", alpha=0.7)
    ax.contour(g0, g1, p, levels=[0.5], colors="k")
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", edgecolors="k")
    fig.colorbar(filled, ax=ax, label="output")
    ax.set(xlabel="x1", ylabel="x2", title="decision boundary (output = 0.5)")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_grad_norms(grad_norms: Any, path: str | os.PathLike[str]) -> None:
    """||dW|| per layer over training, (epochs, layers), on a log scale."""
    plt = _pyplot()
    norms = np.asarray(grad_norms)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i in range(norms.shape[1]):
        ax.semilogy(norms[:, i], label=f"layer {i + 1}")
    ax.set(xlabel="epoch", ylabel="||dW||", title="gradient norm per layer (input layer = 1)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
