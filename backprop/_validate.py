"""The one validation layer: every public training entry point checks its
arguments here, before any work starts, and the hot loops check nothing.

Every error names the argument, the value (or shape) received and what was
expected.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop.kernels import BACKENDS

DTYPES = ("float32", "float64")
MAX_STEPS = 2**31 - 1
"""Most steps or epochs a run may take: JAX counts loop iterations in int32."""


def check_backend(backend: Any) -> str:
    """``backend`` if it is "numpy" or "jax"; ``ValueError`` listing both otherwise."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}"
        )
    return backend


def check_dtype(dtype: Any) -> np.dtype:
    """``np.dtype(dtype)`` if it is float32 or float64; ``ValueError`` otherwise (None too)."""
    dt = None
    if dtype is not None:
        try:
            with warnings.catch_warnings():  # np.dtype("a") warns that "a" is deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                dt = np.dtype(dtype)
        except (TypeError, ValueError, SyntaxError):  # np.dtype(",") raises SyntaxError
            dt = None
    if dt is None or dt.name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dt


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(name: str, value: Any, maximum: int | None = None) -> int:
    """``value`` as an int if it is an integer in [1, maximum]; ``ValueError`` naming ``name``."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {value:,}")
    return int(value)


def check_count(name: str, value: Any) -> int:
    """A number of steps or epochs: an integer in [1, :data:`MAX_STEPS`]."""
    return check_positive_int(name, value, MAX_STEPS)


def check_seed(seed: Any) -> int:
    """``seed`` if it is an integer >= 0 (what ``np.random.default_rng`` accepts)."""
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def check_number(
    name: str, value: Any, *, low: float, high: float = math.inf, low_open: bool = False
) -> float:
    """A real, finite Python or NumPy number in [low, high] (or (low, high])."""
    ok_type = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    v = float(value) if ok_type else math.nan
    inside = v > low if low_open else v >= low
    if not (ok_type and math.isfinite(v) and inside and v <= high):
        bracket = "(" if low_open else "["
        top = "inf)" if high == math.inf else f"{high:.4g}]"
        raise ValueError(f"{name} must be a finite number in {bracket}{low}, {top}, got {value!r}")
    return v


def check_lr(lr: Any, dt: np.dtype, name: str = "lr") -> float:
    """A positive finite learning rate (or ``name``) that is neither infinite nor 0 in ``dt``."""
    v = check_number(name, lr, low=0.0, low_open=True)
    cast = float(np.asarray(v, dtype=dt)) if v <= float(np.finfo(dt).max) else math.inf
    if not math.isfinite(cast):
        raise ValueError(f"{name} must be representable in {dt.name}, got {lr!r}")
    if cast < float(np.finfo(dt).tiny):
        why = "every update would round to nothing" if name == "lr" else "it would round to 0"
        raise ValueError(
            f"{name}={lr!r} is below the smallest normal {dt.name} "
            f"({np.finfo(dt).tiny:.3g}): {why}; use a larger {name}"
            + (" or float64" if dt.itemsize < 8 else "")
        )
    return v


def first_nonfinite(values: np.ndarray) -> int | None:
    """Index of the first NaN or infinite entry of a 1-D history, or None."""
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else None


def check_array(name: str, a: Any, dt: np.dtype, *, ndim: int | None = None) -> np.ndarray:
    """A finite real array (bool and integers allowed), as ``dt``; ``ValueError`` otherwise."""
    if isinstance(a, (str, bytes)) or a is None:
        raise ValueError(f"{name} must be a numeric array, got {type(a).__name__}")
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} holds NaN or infinite values (first at index {tuple(int(i) for i in bad)})"
        )
    if arr.dtype.kind == "f" and arr.size and np.abs(arr).max() > np.finfo(dt).max:
        raise ValueError(f"{name} holds values too large for {dt.name}")
    return arr.astype(dt)


def check_features(name: str, X: Any, width: int | None, dt: np.dtype) -> np.ndarray:
    """Inputs (N, width) with N >= 1, finite, as ``dt``."""
    X = check_array(name, X, dt)
    if X.ndim != 2 or X.shape[0] == 0 or (width is not None and X.shape[1] != width):
        want = f"(N, {width})" if width is not None else "(N, D)"
        raise ValueError(f"{name} must have shape {want} with N >= 1, got {X.shape}")
    return X


def check_sizes(sizes: Any) -> tuple[int, ...]:
    """Layer widths [D0, ..., DL]: at least two integers >= 1 (a list, tuple or 1-D array)."""
    if isinstance(sizes, np.ndarray) and sizes.ndim == 1:
        sizes = sizes.tolist()
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output width, got {sizes!r}")
    return tuple(check_positive_int("each entry of sizes", s) for s in sizes)


def physical_memory() -> int | None:
    """This machine's memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def check_fits(what: str, nbytes: int) -> None:
    """Refuse work whose arrays cannot fit in this machine's memory, before allocating.

    ``what`` names the arguments responsible, e.g. ``"n_nets=10**12 networks"``.
    """
    physical = physical_memory()
    if physical is not None and nbytes > physical:
        raise ValueError(
            f"{what} need about {nbytes / 2**30:,.1f} GiB, more than this machine's "
            f"{physical / 2**30:,.1f} GiB"
        )


def check_memory(sizes: Sequence[int], rows: int, itemsize: int, epochs: int = 0) -> None:
    """Refuse a network whose arrays cannot fit in this machine's memory, before allocating.

    Counts the parameters four times (parameters, gradients, two optimizer
    moments) and the activations of ``rows`` rows twice (forward and backward);
    with ``epochs``, also the per-epoch history (loss, accuracy, validation
    loss and accuracy, one gradient norm per layer).
    """
    params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    needed = itemsize * (4 * params + 2 * rows * sum(sizes))
    check_fits(f"sizes {list(sizes)} with {rows:,} rows per batch", needed)
    per_epoch = 4 + len(sizes) - 1
    check_fits(
        f"epochs={epochs:,} (each records {per_epoch} history values: loss, accuracy, "
        "validation loss and accuracy, a gradient norm per layer)",
        needed + itemsize * epochs * per_epoch,
    )
