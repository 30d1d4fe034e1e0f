"""PNG plots of training (optional: ``pip install 'backprop-by-hand[plot]'``).

Loss curves (training, and validation when there is one), the decision
boundary over the input plane with the data points, per-layer gradient norms
over training (to *see* vanishing gradients) and a confusion matrix.
Everything else in the library works without matplotlib;
:func:`require_matplotlib` says how to install it before any work starts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop.nets import Layer, Net, predict


def require_matplotlib() -> None:
    """Raise ``ImportError`` with the ``pip install`` extra unless matplotlib imports."""
    _pyplot()


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


def plot_loss(
    losses: Sequence[float],
    path: str | os.PathLike[str],
    title: str = "loss",
    val_losses: Sequence[float] | None = None,
    val_label: str = "validation",
    ln2: bool = True,
    xlabel: str = "epoch",
    x: Sequence[float] | None = None,
) -> None:
    """Training loss per epoch (and validation loss, if given) written to ``path`` (PNG).

    ``ln2`` marks the ln 2 plateau of a network that outputs 1/2 everywhere;
    ``x`` gives the epochs the losses were recorded at (default 0, 1, ...).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = np.arange(len(losses)) if x is None else np.asarray(x)
    ax.plot(xs, np.asarray(losses), label="training loss")
    if val_losses is not None:
        ax.plot(xs, np.asarray(val_losses), label=f"{val_label} loss")
    if ln2:
        ax.axhline(np.log(2), color="grey", linestyle=":", label="ln 2")
    ax.set(xlabel=xlabel, ylabel="loss", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_decision_boundary(
    params: Sequence[Layer], net: Net, X: Any, y: Any, path: str | os.PathLike[str]
) -> None:
    """The network's output over the plane around X (N, 2), with the points coloured by y."""
    plt = _pyplot()
    X, y = np.asarray(X), np.asarray(y).reshape(-1)
    lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([g0.ravel(), g1.ravel()], axis=1).astype(params[0].w.dtype)
    p = predict(params, grid, net)[:, 0].reshape(g0.shape)
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


def plot_confusion(
    y_true: Any, y_pred: Any, classes: Sequence[str], path: str | os.PathLike[str]
) -> np.ndarray:
    """The confusion matrix (rows: true class, columns: predicted) as a PNG; returns the counts."""
    plt = _pyplot()
    k = len(classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.5 * k, 1.0 + 0.5 * k))
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            color = "white" if counts[i, j] > counts.max() / 2 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=color, fontsize=8)
    ax.set(
        xticks=range(k),
        yticks=range(k),
        xticklabels=classes,
        yticklabels=classes,
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix (test set)",
    )
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return counts
