"""Datasets: the two-input truth tables the notes train on.

Every function returns ``(X, y)`` with ``X`` of shape (4, 2), rows
(0, 0), (0, 1), (1, 0), (1, 1), and ``y`` of shape (4, 1), in the
requested float dtype.
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
