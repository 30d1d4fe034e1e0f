"""Embedding lookup: rows of a table picked by integer indices.

The forward is a gather, ``out[..., :] = table[idx[...], :]``; its backward
is the matching scatter-add: each row of ``dout`` is added to the table row
it came from, so an index used k times collects the sum of its k upstream
rows (the "repeated indices summed" rule every hand derivation must get
right; assigning instead of adding keeps only one of them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import as_float_array, as_upstream
from .spec import KernelSpec

_ONE_HOT_ROWS = 16
_ONE_HOT_LIMIT = 1 << 22
"""NumPy's backward is one product with the one-hot matrix (BLAS) for tables of at
most ``_ONE_HOT_ROWS`` rows and at most this many (rows x lookups); otherwise it
sorts the lookups by index and sums each index's run of upstream rows."""
_SEGMENT_LOOP = 256
"""Up to this many distinct indices, each run is summed by a BLAS product with ones
(one Python step per index); above it, by ``numpy.add.reduceat`` in one call."""


def embedding_forward(xp: Any, idx: Any, table: Any) -> tuple[Any, Any]:
    """Look up ``out = table[idx]``.

    Parameters
    ----------
    idx : integer array, any shape (...)
        Row numbers in [0, V). Negative indices are refused (no wrap-around).
    table : array, shape (V, D)
        float32 or float64.

    Returns
    -------
    out : array, shape (..., D), table's dtype
    cache : tuple
        ``(idx, table)``; the backward uses idx and the table's shape and dtype.

    Raises
    ------
    TypeError
        If ``idx`` is not an integer array or ``table`` not a float array.
    ValueError
        If ``table`` is not 2-D, or ``idx`` holds an index outside [0, V)
        (checked on concrete arrays: NumPy, and JAX outside ``jax.jit``;
        inside a trace JAX clamps an out-of-range index onto the first or
        last row, silently, so check the data before tracing).
    """
    table = as_float_array(xp, "table", table)
    if table.ndim != 2:
        raise ValueError(f"table must be (V, D), got shape {tuple(table.shape)}")
    dtype = getattr(idx, "dtype", None)
    if dtype is None:
        idx = np.asarray(idx)
        dtype = idx.dtype
    if dtype.kind not in "iu":
        raise TypeError(f"idx must be an integer array (row numbers), got dtype {dtype}")
    idx = xp.asarray(idx)
    concrete = xp.__name__ == "numpy"
    if not concrete:
        import jax

        concrete = not isinstance(idx, jax.core.Tracer)
    if concrete and idx.size:
        low, high = int(idx.min()), int(idx.max())
        if low < 0 or high >= table.shape[0]:
            raise ValueError(
                f"idx must hold row numbers in [0, {table.shape[0]}) (table has "
                f"{table.shape[0]} rows), got values in [{low}, {high}]"
            )
    if xp.__name__ == "numpy":
        return np.take(table, idx, axis=0), (idx, table)
    # Checked above when concrete: no negative-index wrapping; a traced index out
    # of range is clamped (JAX's rule for a gather), and the backward adds its
    # row's gradient to the same clamped row, the derivative of what was computed.
    return table.at[idx].get(mode="clip", wrap_negative_indices=False), (idx, table)


def embedding_backward(xp: Any, dout: Any, cache: Any) -> Any:
    """Gradient of the lookup: ``dtable[v] = sum of dout[...] over every position with idx == v``.

    Parameters
    ----------
    dout : array, shape (..., D)
        Upstream gradient, of the output's shape.
    cache : tuple
        ``(idx, table)`` from :func:`embedding_forward`.

    Returns
    -------
    dtable : array, shape (V, D), table's dtype
        Rows never looked up are 0; a repeated index gets the sum of its rows.
    """
    idx, table = cache
    shape = (*tuple(idx.shape), table.shape[1])
    dout = as_upstream(xp, "dout", dout, shape, table.dtype)
    flat = idx.reshape(-1)
    rows = dout.reshape(-1, table.shape[1])
    if xp.__name__ == "numpy":
        v = table.shape[0]
        if v <= _ONE_HOT_ROWS and v * flat.size <= _ONE_HOT_LIMIT:
            # The same sum as one matrix product: onehot(idx)^T (V, L) @ dout (L, D).
            onehot = np.equal(flat, np.arange(v).reshape(v, 1)).astype(table.dtype)
            return onehot @ rows
        return _sorted_sums(flat, rows, table)
    # mode="clip": onto the row the forward read (see embedding_forward).
    return (
        xp.zeros(table.shape, table.dtype)
        .at[flat]
        .add(rows, mode="clip", wrap_negative_indices=False)
    )


def _sorted_sums(flat: Any, rows: Any, table: Any) -> Any:
    """dtable by sorting: the upstream rows grouped by index, each group summed."""
    dtable = np.zeros(table.shape, table.dtype)
    if flat.size == 0:
        return dtable
    order = np.argsort(flat, kind="stable")
    keys = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    grouped = np.take(rows, order, axis=0)
    if len(starts) > _SEGMENT_LOOP:
        dtable[keys[starts]] = np.add.reduceat(grouped, starts, axis=0)
        return dtable
    ends = [*starts[1:].tolist(), flat.size]
    ones = np.ones(int(np.max(np.subtract(ends, starts))), table.dtype)
    for a, b in zip(starts.tolist(), ends, strict=True):
        dtable[keys[a]] = ones[: b - a] @ grouped[a:b]
    return dtable


def _sample(rng: np.random.Generator, n: int, d: int, m: int) -> dict[str, Any]:
    rows = max(2, min(m, 8))  # fewer rows than lookups: indices repeat
    return {
        "idx": rng.integers(0, rows, (n, 1 + d % 3)),
        "table": rng.uniform(-3.0, 3.0, (rows, d)),
    }


DECLARATIONS = (
    KernelSpec(
        "embedding",
        "embedding",
        embedding_forward,
        embedding_backward,
        ("idx", "table"),
        1,
        lambda n, d, m: {"idx": (n,), "table": (m, d)},
        "table[idx] | dtable[v] = sum of dout rows where idx == v (repeats summed)",
        wrt=("table",),
        sample=_sample,
    ),
)
"""This module's kernels, declared once (see :mod:`backprop.kernels.spec`)."""
