"""Argument checks shared by the training functions: one message style."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kernels import BACKENDS


def check_backend(backend: Any) -> str:
    if backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}"
        )
    return backend


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_lr(lr: Any, dt: np.dtype) -> float:
    """A positive finite Python number that stays finite in ``dt``."""
    if (
        isinstance(lr, bool)
        or not isinstance(lr, (int, float))
        or not (math.isfinite(lr) and lr > 0)
    ):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if lr > float(np.finfo(dt).max):
        raise ValueError(f"lr must be representable in {dt.name}, got {lr!r}")
    return float(lr)


def first_nonfinite(values: np.ndarray) -> int | None:
    """Index of the first NaN or infinite entry of a 1-D history, or None."""
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else None
