"""Linear kernels: matrix product and bias addition.

Contract for every kernel in this package: ``<op>_forward(xp, ...) -> (out,
cache)`` and ``<op>_backward(xp, dout, cache) ->`` one gradient per
differentiable input, in input order. ``xp`` is the array namespace (``numpy``
or ``jax.numpy``); :func:`backprop.kernels.get_backend` binds it, so users call
``K.matmul_forward(x, w)``. An array that is not floating point (or float64
under JAX with ``jax_enable_x64`` off) raises ``TypeError``; a ``dout``
without the forward output's shape raises ``ValueError``.
"""

from __future__ import annotations

from typing import Any

from ._checks import as_float_array, as_upstream
from .spec import KernelSpec


def matmul_forward(xp: Any, x: Any, w: Any) -> tuple[Any, Any]:
    """Matrix product ``out = x @ w``.

    Parameters
    ----------
    x : array, shape (N, D) or (..., N, D)
        Inputs.
    w : array, shape (D, M) or (..., D, M)
        Weights. Leading batch axes are allowed and broadcast, for stacks of
        independent networks: x (..., N, D) @ w (..., D, M) -> (..., N, M).

    Returns
    -------
    out : array, shape (N, M) or (..., N, M)
    cache : tuple
        The inputs ``(x, w)``: the backward needs both.

    Raises
    ------
    ValueError
        If ``x`` or ``w`` has fewer than 2 axes, or ``x``'s columns (D) differ from ``w``'s rows.
    """
    x = as_float_array(xp, "x", x)
    w = as_float_array(xp, "w", w)
    if x.ndim < 2:
        raise ValueError(f"x must be (N, D) inputs (2-D or more), got shape {tuple(x.shape)}")
    if w.ndim < 2:
        raise ValueError(f"w must be (D, M) weights (2-D or more), got shape {tuple(w.shape)}")
    if x.shape[-1] != w.shape[-2]:
        raise ValueError(
            f"x has shape {tuple(x.shape)} and w has shape {tuple(w.shape)}: "
            f"x's columns ({x.shape[-1]}) must equal w's rows ({w.shape[-2]})"
        )
    return x @ w, (x, w)


def matmul_backward(xp: Any, dout: Any, cache: Any) -> tuple[Any, Any]:
    """Gradients of ``out = x @ w``: ``dx = dout @ w.T``, ``dw = x.T @ dout``.

    Parameters
    ----------
    dout : array, shape (N, M) or (..., N, M)
        Upstream gradient dL/dout.
    cache : tuple
        The cached inputs ``(x, w)`` from :func:`matmul_forward`; both are used.

    Returns
    -------
    dx : array, shape (N, D)
        ``dout @ w.T``.
    dw : array, shape (D, M)
        ``x.T @ dout``.

    Notes
    -----
    When batched, ``.T`` transposes the last two axes, and a gradient is summed
    over the batch axes its input was broadcast along.
    """
    x, w = cache
    dout = _upstream(xp, dout, x, w)
    wT = w.mT  # the transpose of the last two axes
    if w.shape[-1] == 1:
        # A single output column makes dout @ w.T an outer product, a sum of
        # one term: the broadcast product is the same numbers, and BLAS is
        # slow at a k = 1 matrix product. The branch is on a shape, so it is
        # static under jax.jit.
        dx = dout * wT
    else:
        dx = dout @ wT
    return _unbroadcast(dx, x.shape), _dw(xp, x, dout, w.shape)


def matmul_backward_weights(xp: Any, dout: Any, cache: Any) -> Any:
    """Only the weight gradient of ``out = x @ w``: ``dw = x.T @ dout``, shape (D, M).

    For a first layer, whose input is data and needs no gradient: it skips the
    (N, M) @ (M, D) product dx that :func:`matmul_backward` would also compute.

    Parameters
    ----------
    dout : array, shape (N, M) or (..., N, M)
        Upstream gradient dL/dout.
    cache : tuple
        ``(x, w)`` from :func:`matmul_forward`; uses the cached input ``x``
        (``w`` only for its shape).

    Returns
    -------
    dw : array, shape (D, M)
        ``x.T @ dout``, batched as in :func:`matmul_backward`.
    """
    x, w = cache
    return _dw(xp, x, _upstream(xp, dout, x, w), w.shape)


def _upstream(xp: Any, dout: Any, x: Any, w: Any) -> Any:
    batch = () if x.ndim == w.ndim == 2 else _broadcast(x.shape[:-2], w.shape[:-2])
    out_shape = (*batch, x.shape[-2], w.shape[-1])
    return as_upstream(xp, "dout", dout, out_shape, x.dtype)


def _dw(xp: Any, x: Any, dout: Any, w_shape: tuple[int, ...]) -> Any:
    # dL/dw[d, m] = sum_n x[n, d] dout[n, m]: each weight meets every row once.
    if dout.shape[-1] == 1:
        # One output column: the same sums, written (dout.T @ x).T. For x.T @ dout
        # XLA's CPU backend first copies the whole activation x transposed;
        # NumPy is indifferent.
        return _unbroadcast((dout.mT @ x).mT, w_shape)
    return _unbroadcast(x.mT @ dout, w_shape)


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    return tuple(max(i, j) for i, j in zip(a, b, strict=True))


def _unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` back to ``shape``: over the leading axes broadcasting added, and over
    the batch axes where the input had size 1 and was stretched."""
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape, strict=True)) if b == 1 != a)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g


def add_bias_forward(xp: Any, x: Any, b: Any) -> tuple[Any, Any]:
    """Row-wise bias addition ``out[n, m] = x[n, m] + b[m]``.

    Parameters
    ----------
    x : array, shape (N, M) or (..., N, M)
    b : array, shape (M,) or (..., M)
        One bias per column of ``x``; batched, one bias row per stack entry.

    Returns
    -------
    out : array, shape (N, M) or (..., N, M)
    cache : tuple of int
        Only ``x``'s shape: the backward needs no values.

    Raises
    ------
    ValueError
        If ``x`` has fewer than 2 axes or ``b`` does not have shape (M,)
        (batched: ``x``'s batch axes followed by M).
    """
    x = as_float_array(xp, "x", x)
    b = as_float_array(xp, "b", b)
    if x.ndim < 2:
        raise ValueError(f"x must be (N, M) inputs (2-D or more), got shape {tuple(x.shape)}")
    if b.ndim != x.ndim - 1 or b.shape[-1] != x.shape[-1] or b.shape[:-1] != x.shape[:-2]:
        expected = (*x.shape[:-2], x.shape[-1])
        raise ValueError(
            f"b must have shape {expected} (one bias per column of x), got {tuple(b.shape)}"
        )
    return x + b[..., None, :], tuple(x.shape)


def add_bias_backward(xp: Any, dout: Any, cache: Any) -> tuple[Any, Any]:
    """Gradients of ``out = x + b`` with ``b`` broadcast over rows.

    Parameters
    ----------
    dout : array, shape (N, M) or (..., N, M)
        Upstream gradient dL/dout.
    cache : tuple of int
        ``x``'s shape; the backward uses only the cached shape.

    Returns
    -------
    dx : array, shape (N, M)
        ``dout`` itself.
    db : array, shape (M,)
        The sum of ``dout`` over the row axis (-2): every row used ``b`` once.
    """
    dout = as_upstream(xp, "dout", dout, cache, None)
    return dout, dout.sum(axis=-2)


DECLARATIONS = (
    KernelSpec(
        "matmul",
        "linear",
        matmul_forward,
        matmul_backward,
        ("x", "w"),
        2,
        lambda n, d, m: {"x": (n, d), "w": (d, m)},
        "x @ w | dx = dout @ w.T, dw = x.T @ dout",
        extras=(matmul_backward_weights,),
    ),
    KernelSpec(
        "add_bias",
        "linear",
        add_bias_forward,
        add_bias_backward,
        ("x", "b"),
        2,
        lambda n, d, m: {"x": (n, m), "b": (m,)},
        "x + b (b added to each row) | dx = dout, db = sum over rows of dout",
    ),
)
"""This module's kernels, declared once (see :mod:`backprop.kernels.spec`)."""
