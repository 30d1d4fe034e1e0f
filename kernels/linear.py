"""Linear kernels: matrix product and bias addition.

Contract for every kernel in this package: ``<op>_forward(xp, ...) -> (out,
cache)`` and ``<op>_backward(xp, dout, cache) ->`` one gradient per
differentiable input, in input order. ``xp`` is the array namespace (``numpy``
or ``jax.numpy``); :func:`kernels.get_backend` binds it, so users call
``K.matmul_forward(x, w)``.
"""

from __future__ import annotations

from typing import Any

from kernels._checks import as_float_array, as_upstream, require_ndim, require_shape


def matmul_forward(xp: Any, x: Any, w: Any) -> tuple[Any, Any]:
    """Matrix product ``out = x @ w``.

    x: (N, D) inputs; w: (D, M) weights; out: (N, M).
    The cache holds the inputs ``(x, w)``: the backward needs both.
    """
    x = as_float_array(xp, "x", x)
    w = as_float_array(xp, "w", w)
    require_ndim("x", x, 2, "(N, D) inputs")
    require_ndim("w", w, 2, "(D, M) weights")
    if x.shape[1] != w.shape[0]:
        raise ValueError(
            f"x has shape {tuple(x.shape)} and w has shape {tuple(w.shape)}: "
            f"x's columns ({x.shape[1]}) must equal w's rows ({w.shape[0]})"
        )
    return x @ w, (x, w)


def matmul_backward(xp: Any, dout: Any, cache: Any) -> tuple[Any, Any]:
    """Gradients of ``out = x @ w``.

    dout: (N, M) upstream gradient dL/dout. Returns ``(dx, dw)``:
    dx = dout @ w.T, shape (N, D); dw = x.T @ dout, shape (D, M).
    Uses the cached inputs ``x`` and ``w``.
    """
    x, w = cache
    dout = as_upstream(xp, "dout", dout, (x.shape[0], w.shape[1]), x.dtype)
    if w.shape[1] == 1:
        # A single output column makes dout @ w.T an outer product, a sum of
        # one term: the broadcast product is the same numbers, and NumPy's
        # BLAS is ~4x slower at a k = 1 matrix product (4.3 ms against 1.1 ms
        # for (4096, 1) x (1, 1024)). The branch is on a shape, so it is
        # static under jax.jit.
        return dout * w.T, _dw(x, dout)
    return dout @ w.T, _dw(x, dout)


def matmul_backward_weights(xp: Any, dout: Any, cache: Any) -> Any:
    """Only the weight gradient of ``out = x @ w``: dw = x.T @ dout, shape (D, M).

    For a first layer, whose input is data and needs no gradient: it skips
    the (N, M) @ (M, D) product dx that :func:`matmul_backward` would also
    compute. Uses the cached input ``x``.
    """
    x, w = cache
    dout = as_upstream(xp, "dout", dout, (x.shape[0], w.shape[1]), x.dtype)
    return _dw(x, dout)


def _dw(x: Any, dout: Any) -> Any:
    # dL/dw[d, m] = sum_n x[n, d] dout[n, m]: each weight meets every row once.
    return x.T @ dout


def add_bias_forward(xp: Any, x: Any, b: Any) -> tuple[Any, Any]:
    """Row-wise bias addition ``out[n, m] = x[n, m] + b[m]``.

    x: (N, M); b: (M,); out: (N, M). The cache holds only the shape of ``x``:
    the backward needs no values.
    """
    x = as_float_array(xp, "x", x)
    b = as_float_array(xp, "b", b)
    require_ndim("x", x, 2, "(N, M) inputs")
    require_shape("b", b, (x.shape[1],), "one bias per column of x")
    return x + b, tuple(x.shape)


def add_bias_backward(xp: Any, dout: Any, cache: Any) -> tuple[Any, Any]:
    """Gradients of ``out = x + b`` with ``b`` broadcast over rows.

    dout: (N, M). Returns ``(dx, db)``: dx = dout, shape (N, M);
    db = sum of dout over the batch axis 0, shape (M,) - every row used b once.
    Uses only the cached shape.
    """
    dout = as_upstream(xp, "dout", dout, cache, None)
    return dout, dout.sum(axis=0)
