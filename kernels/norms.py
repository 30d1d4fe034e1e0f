"""Normalisation layers: layer norm (over the last axis) and batch norm (over the batch).

Both normalise ``xhat = (x - mean) / sqrt(var + eps)`` (the biased variance,
computed as the mean of squared deviations from the mean of shifted data:
no cancellation, and exactly 0 for a constant group) and
scale and shift ``out = gamma * xhat + beta``. They differ only in the axes
the statistics run over, so the backward is one formula: with ``g = dout *
gamma`` and means over those axes,

    dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)
    dgamma = sum(dout * xhat),  dbeta = sum(dout)   (over every axis but gamma's)

A constant row (layer norm) or channel (batch norm) has var = 0: ``xhat``
is exactly 0, the output is ``beta`` and ``dx = (g - mean(g)) / sqrt(eps)``,
finite (and 0 for a batch norm over a batch of one).
"""

import math
from typing import Any, NamedTuple

import numpy as np

from ._checks import as_float_array, as_upstream
from .smooth import _row_blocks, _short_buffers
from .spec import KernelSpec


class NormCache(NamedTuple):
    """What the norms' backward needs, and the batch statistics.

    ``xhat``: the normalised input; ``rstd``: 1 / sqrt(var + eps), of the
    statistics' shape (keepdims); ``gamma``: the scale, shaped to broadcast
    against ``x``; ``mean``, ``var``: the statistics (batch norm: of shape
    (C,), the biased batch variance; for PyTorch-style running averages use
    ``var * m / (m - 1)`` with m = the number of entries per channel).

    Layer norm on NumPy keeps ``x`` itself (not a copy) and ``shift`` (the
    mean of ``x - x[..., :1]``, of rstd's shape) instead, with ``xhat`` None:
    its backward recomputes ``xhat = (x - x[..., :1] - shift) * rstd`` a
    block of rows at a time, with the forward's own arithmetic, which costs
    less than writing xhat out to memory and reading it back.
    """

    xhat: Any
    rstd: Any
    gamma: Any
    mean: Any
    var: Any
    x: Any = None
    shift: Any = None


def _params(xp: Any, x: Any, gamma: Any, beta: Any, eps: Any, channels: int, where: str) -> Any:
    gamma = as_float_array(xp, "gamma", gamma)
    beta = as_float_array(xp, "beta", beta)
    for name, a in (("gamma", gamma), ("beta", beta)):
        if tuple(a.shape) != (channels,):
            raise ValueError(
                f"{name} must have shape ({channels},) ({where}), got {tuple(a.shape)}"
            )
    if isinstance(eps, (str, bytes)) or not np.ndim(eps) == 0:
        raise TypeError(f"eps must be a positive number, got {eps!r}")
    if isinstance(eps, (int, float)) and not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    return gamma.astype(x.dtype), beta.astype(x.dtype)


def _normalise(xp: Any, x: Any, axes: tuple[int, ...], gamma: Any, beta: Any, eps: Any) -> Any:
    """out, NormCache with the statistics over ``axes`` (gamma/beta already broadcastable)."""
    # Shifted data: subtract one entry of each group first (exact for a constant
    # group, whose deviations are then exactly 0 instead of the rounding error of
    # its mean), then the mean of what is left.
    first = x[tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))]
    if xp.__name__ == "numpy":
        if axes == (x.ndim - 1,):
            return _layernorm_rows(x, gamma, beta, eps)
        return _batchnorm_blocks(x, gamma, beta, eps)
    if axes == (x.ndim - 1,):
        return _layernorm_rows_xla(xp, x, gamma, beta, eps)
    xs = x - first
    shift = xs.mean(axis=axes, keepdims=True)
    xc, mean = xs - shift, first + shift
    var = (xc * xc).mean(axis=axes, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + eps)
    xhat = xc * rstd
    return xhat * gamma + beta, NormCache(xhat, rstd, gamma, mean, var)


def _layernorm_rows_xla(xp: Any, x: Any, gamma: Any, beta: Any, eps: Any) -> Any:
    """JAX layer norm: NumPy's formulas, its row sums as products with a vector of ones.

    XLA on CPU runs a matrix-vector product much faster than a reduction
    along rows (forward and backward together: 18 ms against 30 ms at
    (4096, 1024) in float32).
    """
    d = x.shape[-1]
    x2 = x.reshape(-1, d)
    ones = xp.ones((d, 1), x.dtype)
    first = x2[:, :1]
    xs = x2 - first
    shift = (xs @ ones) / d  # mean(xs)
    xc = xs - shift
    var = ((xc * xc) @ ones) / d
    rstd = 1.0 / xp.sqrt(var + eps)
    xhat = xc * rstd
    lead = (*x.shape[:-1], 1)
    cache = NormCache(
        xhat.reshape(x.shape),
        rstd.reshape(lead),
        gamma,
        (first + shift).reshape(lead),
        var.reshape(lead),
    )
    return (xhat * gamma + beta).reshape(x.shape), cache


def _layernorm_rows_xla_backward(xp: Any, dout: Any, cache: NormCache) -> Any:
    """JAX layer norm backward: NumPy's formulas, every sum a matrix-vector product."""
    d = cache.xhat.shape[-1]
    xhat, rstd, gamma = cache.xhat.reshape(-1, d), cache.rstd.reshape(-1, 1), cache.gamma
    g2 = dout.reshape(-1, d)
    ones = xp.ones((1, g2.shape[0]), g2.dtype)
    t = g2 * xhat
    dgamma, dbeta = (ones @ t)[0], (ones @ g2)[0]
    m2 = (t @ gamma)[:, None] / d  # mean(g xhat), g = dout gamma
    m1 = (g2 @ gamma)[:, None] / d  # mean(g)
    dx = (g2 * gamma - xhat * m2 - m1) * rstd
    return dx.reshape(cache.xhat.shape), dgamma, dbeta


def _layernorm_rows(x: Any, gamma: Any, beta: Any, eps: Any) -> Any:
    """NumPy layer norm, the formulas of the JAX path, a block of rows at a time.

    Rows are independent, so every pass over a block runs in cache instead of
    streaming the whole array from memory once per operation. The block is
    worked in place in the output: ``x - first`` (the only pass that touches
    memory: it reads x and writes the output), the shift, ``xhat``, then
    ``gamma xhat + beta``. The row sums are BLAS matrix-vector products with a
    vector of ones (a third of the time of ``sum(axis=1)``), and the ufuncs
    that broadcast one value per row or one row run without NumPy's
    buffering (:func:`.smooth._short_buffers`). The cache keeps ``x`` and
    the shifts, not xhat (see :class:`NormCache`).
    """
    d = x.shape[-1]
    x2 = x.reshape(-1, d)
    rows = x2.shape[0]
    out = np.empty_like(x2)
    mean, var, rstd, shift = (np.empty((rows, 1), x.dtype) for _ in range(4))
    ones = np.ones(d, x.dtype)
    with _short_buffers(d):
        for i, j in _row_blocks(rows, d, x.dtype):
            xb, ob, sb, rb = x2[i:j], out[i:j], shift[i:j], rstd[i:j]
            first = xb[:, :1]
            np.subtract(xb, first, out=ob)  # xs = x - first
            np.divide((ob @ ones)[:, None], d, out=sb)  # shift = mean(xs)
            ob -= sb  # x - mean
            np.add(first, sb, out=mean[i:j])
            np.divide(np.vecdot(ob, ob)[:, None], d, out=var[i:j])
            np.divide(1.0, np.sqrt(var[i:j] + eps), out=rb)
            ob *= rb  # xhat
            ob *= gamma
            ob += beta
    lead = (*x.shape[:-1], 1)
    cache = NormCache(
        None,
        rstd.reshape(lead),
        gamma,
        mean.reshape(lead),
        var.reshape(lead),
        x2.reshape(x.shape),
        shift.reshape(lead),
    )
    return out.reshape(x.shape), cache


def _layernorm_rows_backward(dout: Any, cache: NormCache) -> Any:
    """NumPy layer norm backward, the formulas of the JAX path, a block of rows at a time.

    xhat is recomputed from the cached ``x`` as ``(xs - shift) rstd``, xs =
    x - first, and never formed: with ``t = dout xs``, g = dout gamma,

        dgamma = sum over rows of rstd t - rstd shift dout
        mean(g xhat) = rstd (mean(t gamma) - shift mean(g))
        dx = rstd (g - (xs a + mean(g) - shift a)),  a = rstd mean(g xhat)

    The sums over rows (dgamma, dbeta) and along rows (the two means) are
    BLAS products with vectors of ones, rstd, rstd shift or gamma; the block
    is assembled in place in dx.
    """
    x = cache.x
    d = x.shape[-1]
    x2 = x.reshape(-1, d)
    rstd, shift = cache.rstd.reshape(-1, 1), cache.shift.reshape(-1, 1)
    gamma = cache.gamma
    g2 = dout.reshape(-1, d)
    rows, dtype = g2.shape[0], x2.dtype
    dx = np.empty_like(x2)
    dgamma, dbeta = np.zeros(d, dtype), np.zeros(d, dtype)
    blocks = _row_blocks(rows, d, dtype)
    step = min(rows, blocks[0][1]) if blocks else 0
    xs = np.empty((step, d), dtype)
    # Weights of the sums over rows of dout: ones (dbeta) and -rstd shift (dgamma).
    w = np.empty((2, rows), dtype)
    w[0] = 1.0
    np.multiply(rstd[:, 0], shift[:, 0], out=w[1])
    np.negative(w[1], out=w[1])
    rstd2, gamma_d = rstd * rstd, gamma / d
    with _short_buffers(d):
        for i, j in blocks:
            gb, db, tb, sb, rb = g2[i:j], dx[i:j], xs[: j - i], shift[i:j], rstd[i:j]
            xb = x2[i:j]
            np.subtract(xb, xb[:, :1], out=tb)  # xs
            np.multiply(gb, tb, out=db)  # t = dout xs
            dgamma += rb[:, 0] @ db
            sums = w[:, i:j] @ gb
            dbeta += sums[0]
            dgamma += sums[1]
            m1 = (gb @ gamma_d)[:, None]  # mean(g)
            a = (db @ gamma_d)[:, None]  # mean(t gamma)
            a -= sb * m1
            a *= rstd2[i:j]  # rstd mean(g xhat)
            tb *= a
            tb += m1 - sb * a  # xhat mean(g xhat) + mean(g)
            np.multiply(gb, gamma, out=db)
            db -= tb
            db *= rb
    return dx.reshape(x.shape), dgamma, dbeta


def _channel_sums(a: Any, ones: Any) -> Any:
    """Per-channel sums of a block (m, C, S): BLAS products with vectors of ones."""
    m, _, size = a.shape
    if size > 1:
        return ones[:m] @ (a @ ones[:size])
    return ones[:m] @ a[:, :, 0]


def _batchnorm_blocks(x: Any, gamma: Any, beta: Any, eps: Any) -> Any:
    """NumPy batch norm, the formulas of the JAX path, in sweeps over blocks of the batch.

    x is seen as (N, C, S), S = H W (1 for (N, C) input). Sweep 1 writes
    ``xs = x - first`` and sums it per channel; sweep 2 subtracts the mean
    shift and sums squares; sweep 3 scales to xhat and writes ``gamma xhat +
    beta``. Each sweep works a block of about ``_ROW_BLOCK_BYTES`` at a time,
    so a block's passes run in cache; the per-channel sums are BLAS products
    with vectors of ones.
    """
    n, c = x.shape[0], x.shape[1]
    size = math.prod(x.shape[2:])
    count, dtype = n * size, x.dtype
    x3 = x.reshape(n, c, size)
    xhat, out = np.empty_like(x3), np.empty_like(x3)
    first = x3[:1, :, :1]
    g3, b3 = gamma.reshape(1, c, 1), beta.reshape(1, c, 1)
    blocks = _row_blocks(n, c * size, dtype)
    ones = np.ones(max(blocks[0][1], size), dtype)
    t = np.empty((blocks[0][1], c, size), dtype)
    total = np.zeros(c, dtype)
    with _short_buffers(c if size == 1 else size):
        for i, j in blocks:
            np.subtract(x3[i:j], first, out=xhat[i:j])
            total += _channel_sums(xhat[i:j], ones)
        shift = (total / count).reshape(1, c, 1)
        total[:] = 0.0
        for i, j in blocks:
            xc, tb = xhat[i:j], t[: j - i]
            xc -= shift
            np.multiply(xc, xc, out=tb)
            total += _channel_sums(tb, ones)
        var = (total / count).reshape(1, c, 1)
        rstd = 1.0 / np.sqrt(var + eps)
        for i, j in blocks:
            xc, ob = xhat[i:j], out[i:j]
            xc *= rstd  # xc is now xhat
            np.multiply(xc, g3, out=ob)
            ob += b3
    bshape = (1, c) + (1,) * (x.ndim - 2)
    cache = NormCache(
        xhat.reshape(x.shape),
        rstd.reshape(bshape),
        gamma,
        (first + shift).reshape(bshape),
        var.reshape(bshape),
    )
    return out.reshape(x.shape), cache


def _batchnorm_blocks_backward(dout: Any, cache: NormCache) -> Any:
    """NumPy batch norm backward, two sweeps over blocks of the batch.

    Sweep 1 sums ``dout xhat`` and ``dout`` per channel (dgamma, dbeta);
    sweep 2 writes ``dx = gamma rstd (dout - xhat dgamma / M - dbeta / M)``.
    """
    xhat = cache.xhat
    n, c = xhat.shape[0], xhat.shape[1]
    size = math.prod(xhat.shape[2:])
    count, dtype = n * size, xhat.dtype
    x3, g3 = xhat.reshape(n, c, size), dout.reshape(n, c, size)
    blocks = _row_blocks(n, c * size, dtype)
    ones = np.ones(max(blocks[0][1], size), dtype)
    t = np.empty((blocks[0][1], c, size), dtype)
    dgamma, dbeta = np.zeros(c, dtype), np.zeros(c, dtype)
    dx = np.empty_like(x3)
    with _short_buffers(c if size == 1 else size):
        for i, j in blocks:
            tb = t[: j - i]
            np.multiply(g3[i:j], x3[i:j], out=tb)
            dgamma += _channel_sums(tb, ones)
            dbeta += _channel_sums(g3[i:j], ones)
        a, b = (dgamma / count).reshape(1, c, 1), (dbeta / count).reshape(1, c, 1)
        scale = (cache.gamma * cache.rstd).reshape(1, c, 1)
        for i, j in blocks:
            db = dx[i:j]
            np.multiply(x3[i:j], a, out=db)
            np.subtract(g3[i:j], db, out=db)
            db -= b
            db *= scale
    return dx.reshape(xhat.shape), dgamma, dbeta


def _backward(xp: Any, dout: Any, cache: NormCache, axes: tuple[int, ...], param: int) -> Any:
    """dx with means over ``axes``; dgamma, dbeta summed over every axis but ``param``."""
    xhat, rstd, gamma = cache.xhat, cache.rstd, cache.gamma
    like = cache.x if xhat is None else xhat
    dout = as_upstream(xp, "dout", dout, tuple(like.shape), like.dtype)
    other = tuple(a for a in range(like.ndim) if a != param)
    if param not in axes:
        # Batch norm: gamma is constant over the statistics' axes, so mean(g) =
        # gamma dbeta / M and mean(g xhat) = gamma dgamma / M (M entries per
        # channel): dx = gamma rstd (dout - (dbeta + xhat dgamma) / M).
        count = math.prod(xhat.shape[a] for a in axes)
        bshape = rstd.shape
        if xp.__name__ == "numpy":
            return _batchnorm_blocks_backward(dout, cache)
        dgamma = (dout * xhat).sum(axis=other)
        dbeta = dout.sum(axis=other)
        dx = gamma * rstd * (dout - (dbeta.reshape(bshape) + xhat * dgamma.reshape(bshape)) / count)
        return dx, dgamma, dbeta
    if xp.__name__ == "numpy":
        return _layernorm_rows_backward(dout, cache)
    return _layernorm_rows_xla_backward(xp, dout, cache)


def layernorm_forward(
    xp: Any, x: Any, gamma: Any, beta: Any, eps: float = 1e-5
) -> tuple[Any, NormCache]:
    """Layer normalisation over the last axis: ``gamma * (x - mean) / sqrt(var + eps) + beta``.

    Parameters
    ----------
    x : array, shape (..., D)
        float32 or float64; each row (last axis) is normalised on its own.
    gamma, beta : array, shape (D,)
        Scale and shift, cast to ``x``'s dtype.
    eps : float > 0
        Added to the variance.

    Returns
    -------
    out : array, shape (..., D), x's dtype
    cache : NormCache
        ``xhat``, ``rstd`` (..., 1), ``gamma``, and the row statistics
        ``mean``, ``var`` (..., 1); on NumPy ``x`` and ``shift`` (..., 1)
        in place of ``xhat`` (None), see :class:`NormCache`.

    Raises
    ------
    ValueError
        If ``x`` is 0-d or its last axis is empty, ``gamma``/``beta`` are not
        (D,), or ``eps <= 0``.
    """
    x = as_float_array(xp, "x", x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must be (..., D) with D >= 1, got shape {tuple(x.shape)}")
    gamma, beta = _params(xp, x, gamma, beta, eps, x.shape[-1], "one per column of x")
    return _normalise(xp, x, (x.ndim - 1,), gamma, beta, eps)


def layernorm_backward(xp: Any, dout: Any, cache: NormCache) -> tuple[Any, Any, Any]:
    """Gradients of layer norm (means over the last axis, D entries):

    ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``, ``g = dout * gamma``;
    ``dgamma = sum over rows of dout * xhat``; ``dbeta = sum over rows of dout``.

    Derivation: xhat = (x - mu) rstd; dxhat_j/dx_i = rstd (delta_ij - 1/D -
    xhat_i xhat_j / D), contracted with g.

    Parameters
    ----------
    dout : array, shape (..., D)
    cache : NormCache
        From :func:`layernorm_forward`.

    Returns
    -------
    dx : array, shape (..., D)
    dgamma, dbeta : arrays, shape (D,)
    """
    n = (cache.x if cache.xhat is None else cache.xhat).ndim
    return _backward(xp, dout, cache, (n - 1,), n - 1)


def _bn_axes(ndim: int) -> tuple[int, ...]:
    return (0, *tuple(range(2, ndim)))


def batchnorm_forward(
    xp: Any, x: Any, gamma: Any, beta: Any, eps: float = 1e-5
) -> tuple[Any, NormCache]:
    """Batch normalisation with batch statistics (training mode), per channel.

    The channel axis is axis 1; the statistics run over every other axis:
    (N, D) over N, (N, C, H, W) over N, H and W.

    Parameters
    ----------
    x : array, shape (N, C) or (N, C, ...)
        float32 or float64, N >= 1.
    gamma, beta : array, shape (C,)
        Scale and shift per channel.
    eps : float > 0

    Returns
    -------
    out : array, x's shape and dtype
    cache : NormCache
        ``cache.mean`` and ``cache.var`` (shape (C,)) are the batch mean and
        biased variance, for the layer's running averages.

    Raises
    ------
    ValueError
        If ``x`` has fewer than 2 axes or an empty axis, ``gamma``/``beta``
        are not (C,), or ``eps <= 0``.
    """
    x = as_float_array(xp, "x", x)
    if x.ndim < 2 or 0 in tuple(x.shape):
        raise ValueError(
            f"x must be (N, C) or (N, C, H, W) with no empty axis, got shape {tuple(x.shape)}"
        )
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    gamma, beta = _params(xp, x, gamma, beta, eps, x.shape[1], "one per channel, x's axis 1")
    out, c = _normalise(xp, x, _bn_axes(x.ndim), gamma.reshape(bshape), beta.reshape(bshape), eps)
    return out, c._replace(mean=c.mean.reshape(-1), var=c.var.reshape(-1))


def batchnorm_backward(xp: Any, dout: Any, cache: NormCache) -> tuple[Any, Any, Any]:
    """Gradients of batch norm: the layer-norm formulas with means over the batch axes.

    ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``, ``g = dout * gamma``,
    means over N (and H, W) per channel; ``dgamma = sum(dout * xhat)``,
    ``dbeta = sum(dout)`` over the same axes.

    Parameters
    ----------
    dout : array, x's shape
    cache : NormCache
        From :func:`batchnorm_forward`.

    Returns
    -------
    dx : array, x's shape
    dgamma, dbeta : arrays, shape (C,)
    """
    return _backward(xp, dout, cache, _bn_axes(cache.xhat.ndim), 1)


def _norm_shapes(n: int, d: int, m: int) -> dict[str, tuple[int, ...]]:
    return {"x": (n, m), "gamma": (m,), "beta": (m,)}


def _norm_sample(rng: np.random.Generator, n: int, d: int, m: int) -> dict[str, Any]:
    # 1-8 rows keep the checks quick; a batch of 1 is among them.
    rows = 1 + (n - 1) % 8
    return {
        "x": rng.uniform(-3.0, 3.0, (rows, m)),
        "gamma": rng.uniform(-3.0, 3.0, (m,)),
        "beta": rng.uniform(-3.0, 3.0, (m,)),
    }


DECLARATIONS = (
    KernelSpec(
        "layernorm",
        "norm",
        layernorm_forward,
        layernorm_backward,
        ("x", "gamma", "beta"),
        3,
        _norm_shapes,
        "gamma (x - mean) / sqrt(var + eps) + beta, per row | dx = rstd (g - mean g - "
        "xhat mean(g xhat)), g = dout gamma; dgamma = sum dout xhat; dbeta = sum dout",
        sample=_norm_sample,
    ),
    KernelSpec(
        "batchnorm",
        "norm",
        batchnorm_forward,
        batchnorm_backward,
        ("x", "gamma", "beta"),
        3,
        _norm_shapes,
        "the same per channel, statistics over the batch (N, H, W) | the same formulas, "
        "means over the batch",
        sample=_norm_sample,
    ),
)
"""This module's kernels, declared once (see :mod:`backprop.kernels.spec`)."""
