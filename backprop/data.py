"""Datasets, all generated locally and seeded: the two-input truth tables
the notes train on, and the four Gaussian blobs labelled like XOR.

Every function returns ``(X, y)`` with ``X`` of shape (N, 2) and ``y`` of
shape (N, 1), in the requested float dtype. Truth tables have the rows
(0, 0), (0, 1), (1, 0), (1, 1).
"""

from __future__ import annotations

import numpy as np

TRUTH_TABLE_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
_TARGETS = {
    "and": np.array([0, 0, 0, 1]),
    "or": np.array([0, 1, 1, 1]),
    "xor": np.array([0, 1, 1, 0]),
}
DTYPES = ("float32", "float64")


def check_dtype(dtype: object) -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise ``ValueError``."""
    try:
        dt = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dt


def truth_table(gate: str, dtype: object = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Inputs X (4, 2) and targets y (4, 1) of ``gate`` in "and", "or", "xor"."""
    if gate not in _TARGETS:
        raise ValueError(f"gate must be one of {', '.join(map(repr, _TARGETS))}, got {gate!r}")
    dt = check_dtype(dtype)
    return TRUTH_TABLE_INPUTS.astype(dt), _TARGETS[gate].reshape(4, 1).astype(dt)


def xor_data(dtype: object = "float32") -> tuple[np.ndarray, np.ndarray]:
    """The XOR truth table: X (4, 2), y (4, 1) = [[0], [1], [1], [0]]."""
    return truth_table("xor", dtype)


BLOB_CENTRES = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
BLOB_LABELS = np.array([0, 0, 1, 1])  # same-sign corners 0, opposite-sign corners 1


def xor_blobs(
    n_train: int = 80,
    n_test: int = 20,
    *,
    std: float = 0.3,
    seed: int = 0,
    dtype: object = "float32",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Four Gaussian blobs centred at (+-1, +-1) with standard deviation ``std``.

    Points from the centres (1, 1) and (-1, -1) are labelled 0, from (1, -1)
    and (-1, 1) labelled 1 (XOR of the signs). Points are spread evenly over
    the four blobs (the remainder going to the first blobs), shuffled, and
    split into ``(X_train (n_train, 2), y_train (n_train, 1), X_test
    (n_test, 2), y_test (n_test, 1))``. Same ``seed``, same data.
    """
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    if not (isinstance(std, (int, float)) and np.isfinite(std) and std > 0):
        raise ValueError(f"std must be a positive finite number, got {std!r}")
    dt = check_dtype(dtype)
    rng = np.random.default_rng(seed)
    total = n_train + n_test
    blob = np.arange(total) % 4
    X = BLOB_CENTRES[blob] + std * rng.standard_normal((total, 2))
    y = BLOB_LABELS[blob].reshape(-1, 1)
    order = rng.permutation(total)
    X, y = X[order].astype(dt), y[order].astype(dt)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]
