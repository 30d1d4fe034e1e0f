"""2-D convolution and max pooling on (N, C, H, W) images.

Convolution (cross-correlation, as in every deep-learning library):
``out[n, f, i, j] = b[f] + sum_{c, u, v} w[f, c, u, v] xpad[n, c, S i + u, S j + v]``
with ``xpad`` the input zero-padded by P on each side; ``Ho = (H + 2P - KH) // S + 1``.

Its gradients, derived from that sum:

- ``db[f] = sum_{n, i, j} dout[n, f, i, j]``
- ``dw[f, c, u, v] = sum_{n, i, j} dout[n, f, i, j] xpad[n, c, S i + u, S j + v]``: a
  convolution of x with dout (dout dilated by the stride);
- ``dxpad[n, c, S i + u, S j + v] += sum_f dout[n, f, i, j] w[f, c, u, v]``: a transposed
  convolution of dout with w (dout dilated by S, padded by K - 1 - P, w flipped and
  its two channel axes swapped); dx is dxpad without the padding.

NumPy writes those sums as matrix products over window views. With stride 1, tap
(u, v) of the window at (i, j) is entry ``q + u Wp + v`` of the padded image
flattened (Wp its padded width, ``q = i Wp + j``), so for each (c, u, v) the
values over all windows are one contiguous run of Ho Wp entries of the flattened
image: the windows at every ``q``, including Wp - Wo per row that straddle the
row's end, whose outputs are computed and dropped and whose upstream gradient is
0 (one extra zero row below the padding keeps the last of them inside the
array). A block of images at a time (about 2 MiB of columns), those runs are
copied into columns ``cols`` (C KH KW, images Ho Wp): the forward is one product
``w (F, C KH KW) @ cols``, dw accumulates ``dout @ cols^T`` (as its transpose,
the faster product) and dx is ``w^T @ dout`` added back onto the flattened
images, one vectorised add per kernel tap (KH KW adds of whole runs: no loop
over pixels or windows); the backward copies the columns again from the cached
padded input rather than keeping them. With a stride above 1 the windows of
``xpad`` (``numpy.lib.stride_tricks.sliding_window_view``) are laid out once as
columns (N, C KH KW, Ho Wo): one batched product forward, ``dout @ cols^T`` for
dw, and ``w^T @ dout`` scattered back one tap at a time for dx.

JAX uses its convolution primitive (``lax.conv_general_dilated``) for all three:
the dw and dx formulas above are exactly a dilated convolution and a transposed
one, which the primitive expresses directly (JAX's own transpose rules for the
convolution build the same two).
"""

from __future__ import annotations

import itertools
import numbers
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._checks import as_float_array, as_upstream
from .smooth import _short_buffers
from .spec import KernelSpec


def _int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _out_size(name: str, size: int, k: int, s: int, p: int) -> int:
    if size + 2 * p < k:
        raise ValueError(
            f"{name} of {size} (padded by {p} on each side) is smaller than the "
            f"window of {k}: no output"
        )
    return (size + 2 * p - k) // s + 1


def conv2d_forward(
    xp: Any, x: Any, w: Any, b: Any, stride: int = 1, padding: int = 0
) -> tuple[Any, Any]:
    """2-D convolution ``out = conv(x, w) + b`` (cross-correlation, zero padding).

    Parameters
    ----------
    x : array, shape (N, C, H, W)
        Images, float32 or float64.
    w : array, shape (F, C, KH, KW)
        F filters.
    b : array, shape (F,)
        One bias per filter.
    stride : int >= 1
        The step between windows, both directions.
    padding : int >= 0
        Zeros added on each side of H and W.

    Returns
    -------
    out : array, shape (N, F, Ho, Wo), x's dtype
        ``Ho = (H + 2 padding - KH) // stride + 1``, Wo likewise.
    cache : tuple
        NumPy: ``(xpad, w, x shape, 1, padding)`` with stride 1 (the padded
        input, with one extra zero row), ``(cols, w, x shape, stride,
        padding)`` (the window columns) otherwise; JAX: ``(x, w, stride, padding)``.

    Raises
    ------
    ValueError
        If x is not 4-D, w not 4-D with x's C channels, b not (F,),
        stride < 1, padding < 0, or the padded image is smaller than a window.
    """
    x = as_float_array(xp, "x", x)
    w = as_float_array(xp, "w", w)
    b = as_float_array(xp, "b", b)
    s, p = _int("stride", stride, 1), _int("padding", padding, 0)
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W) images, got shape {tuple(x.shape)}")
    if w.ndim != 4 or w.shape[1] != x.shape[1]:
        raise ValueError(
            f"w must be (F, C, KH, KW) filters with x's C = {x.shape[1]} channels, "
            f"got shape {tuple(w.shape)}"
        )
    if tuple(b.shape) != (w.shape[0],):
        raise ValueError(
            f"b must have shape ({w.shape[0]},) (one per filter), got {tuple(b.shape)}"
        )
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho, wo = _out_size("H", h, kh, s, p), _out_size("W", wd, kw, s, p)
    w, b = w.astype(x.dtype), b.astype(x.dtype)
    if xp.__name__ != "numpy":
        from jax import lax

        out = lax.conv_general_dilated(
            x,
            w,
            (s, s),
            [(p, p), (p, p)],
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
            precision=lax.Precision.HIGHEST,
        )
        return out + b.reshape(1, f, 1, 1), (x, w, s, p)
    if s == 1:
        return _conv2d_rows_forward(x, w, b, p)
    if p:
        xpad = np.zeros((n, c, h + 2 * p, wd + 2 * p), x.dtype)
        xpad[:, :, p : p + h, p : p + wd] = x
    else:
        xpad = x
    win = np.lib.stride_tricks.sliding_window_view(xpad, (kh, kw), axis=(2, 3))
    win = win[:, :, ::s, ::s]  # (N, C, Ho, Wo, KH, KW), a view
    cols = win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, ho * wo)  # the one copy
    out = np.matmul(w.reshape(f, -1), cols)
    out += b[:, None]
    return out.reshape(n, f, ho, wo), (cols, w, (n, c, h, wd), s, p)


def conv2d_backward(xp: Any, dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    """Gradients of the convolution (derivation in the module docstring).

    ``dx``: the transposed convolution of dout with w; ``dw``: the convolution
    of (padded) x with dout, dilated by the stride; ``db = dout.sum((0, 2, 3))``.

    Parameters
    ----------
    dout : array, shape (N, F, Ho, Wo)
    cache : tuple
        From :func:`conv2d_forward`.

    Returns
    -------
    dx : array (N, C, H, W)
    dw : array (F, C, KH, KW)
    db : array (F,)
    """
    if xp.__name__ != "numpy":
        return _conv2d_backward_jax(xp, dout, cache)
    cols, w, (n, c, h, wd), s, p = cache
    f, _, kh, kw = w.shape
    ho = (h + 2 * p - kh) // s + 1
    wo = (wd + 2 * p - kw) // s + 1
    dout = as_upstream(xp, "dout", dout, (n, f, ho, wo), w.dtype)
    if s == 1:
        return _conv2d_rows_backward(dout, cache)
    d3 = dout.reshape(n, f, ho * wo)
    db = dout.sum(axis=(0, 2, 3))
    dw = np.matmul(d3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dcols = np.matmul(w.reshape(f, -1).T, d3).reshape(n, c, kh, kw, ho, wo)
    dxpad = np.zeros((n, c, h + 2 * p, wd + 2 * p), w.dtype)
    with _short_buffers(wo):
        for u, v in itertools.product(range(kh), range(kw)):  # one add per tap, all windows
            dxpad[:, :, u : u + s * (ho - 1) + 1 : s, v : v + s * (wo - 1) + 1 : s] += dcols[
                :, :, u, v
            ]
    dx = dxpad[:, :, p : p + h, p : p + wd] if p else dxpad
    return dx, dw, db


_CONV_BLOCK_BYTES = 1 << 21
"""About this many bytes of window columns per block of images (stride 1, NumPy)."""


def _window_runs(xpad: Any, kh: int, kw: int) -> Any:
    """The stride-1 windows of padded images (m, C, Hp + 1, Wp), as a read-only view.

    Shape (C, KH, KW, m, Ho Wp): entry [c, u, v, n, q] is tap (u, v) of the
    window at flat position q = i Wp + j of image n, channel c, i.e. entry
    ``q + u Wp + v`` of that channel's flattened image (see the module docstring).
    """
    m, c, hp1, wp = xpad.shape
    q = (hp1 - kh) * wp  # Ho Wp: Ho = Hp - KH + 1, and hp1 = Hp + 1
    step = xpad.itemsize
    strides = (xpad.strides[1], wp * step, step, xpad.strides[0], step)
    return as_strided(xpad, (c, kh, kw, m, q), strides, writeable=False)


def _image_blocks(n: int, rows: int, q: int, dtype: Any) -> tuple[int, list[tuple[int, int]]]:
    """(images per block, (start, stop) of each block) for columns of ``rows`` x ``q`` an image."""
    per = max(1, min(n, _CONV_BLOCK_BYTES // (rows * q * np.dtype(dtype).itemsize)))
    return per, [(i, min(i + per, n)) for i in range(0, n, per)]


def _conv2d_rows_forward(x: Any, w: Any, b: Any, p: int) -> tuple[Any, Any]:
    """NumPy convolution with stride 1 over runs of the flattened padded images."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    hp, wp = h + 2 * p, wd + 2 * p
    ho, wo = hp - kh + 1, wp - kw + 1
    q, rows = ho * wp, c * kh * kw
    xpad = np.zeros((n, c, hp + 1, wp), x.dtype)  # + 1 row: room for the straddling windows
    xpad[:, :, p : p + h, p : p + wd] = x
    w2 = w.reshape(f, rows)
    out = np.empty((n, f, ho, wo), x.dtype)
    per, blocks = _image_blocks(n, rows, q, x.dtype)
    cols_all, prod_all = np.empty(rows * per * q, x.dtype), np.empty(f * per * q, x.dtype)
    with _short_buffers(q):
        for i, j in blocks:
            m = j - i
            cols = cols_all[: rows * m * q].reshape(rows, m * q)
            cols.reshape(c, kh, kw, m, q)[...] = _window_runs(xpad[i:j], kh, kw)
            prod = prod_all[: f * m * q].reshape(f, m * q)
            np.matmul(w2, cols, out=prod)
            # Drop the straddling windows; out[n, f] = prod[f, n] + b[f].
            valid = prod.reshape(f, m, ho, wp)[..., :wo].transpose(1, 0, 2, 3)
            np.add(valid, b[:, None, None], out=out[i:j])
    return out, (xpad, w, (n, c, h, wd), 1, p)


def _conv2d_rows_backward(dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    """The gradients of :func:`_conv2d_rows_forward`, over the same runs."""
    xpad, w, (n, c, h, wd), _, p = cache
    f, _, kh, kw = w.shape
    wp = wd + 2 * p
    ho, wo = h + 2 * p - kh + 1, wp - kw + 1
    q, rows = ho * wp, c * kh * kw
    dtype = xpad.dtype
    w2t = np.ascontiguousarray(w.reshape(f, rows).T)
    dwt, db = np.zeros((rows, f), dtype), np.zeros(f, dtype)
    dxpad = np.zeros_like(xpad)
    per, blocks = _image_blocks(n, rows, q, dtype)
    cols_all, dcols_all = np.empty(rows * per * q, dtype), np.empty(rows * per * q, dtype)
    g_all, ones = np.empty(f * per * q, dtype), np.ones(per * q, dtype)
    with _short_buffers(q):
        for i, j in blocks:
            m = j - i
            cols = cols_all[: rows * m * q].reshape(rows, m * q)
            cols.reshape(c, kh, kw, m, q)[...] = _window_runs(xpad[i:j], kh, kw)
            g = g_all[: f * m * q].reshape(f, m, ho, wp)
            g[..., :wo] = dout[i:j].transpose(1, 0, 2, 3)
            g[..., wo:] = 0.0  # the straddling windows: no upstream gradient
            g = g.reshape(f, m * q)
            db += g @ ones[: m * q]
            dwt += cols @ g.T
            dcols = dcols_all[: rows * m * q].reshape(rows, m * q)
            np.matmul(w2t, g, out=dcols)
            runs = dcols.reshape(c, kh, kw, m, q)
            flat = dxpad[i:j].reshape(m, c, -1)
            for u, v in itertools.product(range(kh), range(kw)):  # one add per tap
                flat[:, :, u * wp + v : u * wp + v + q] += runs[:, u, v].transpose(1, 0, 2)
    dx = dxpad[:, :, p : p + h, p : p + wd]
    return dx, dwt.T.reshape(w.shape), db


def _conv2d_backward_jax(xp: Any, dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    from jax import lax

    x, w, s, p = cache
    n, _c, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho = (h + 2 * p - kh) // s + 1
    wo = (wd + 2 * p - kw) // s + 1
    dout = as_upstream(xp, "dout", dout, (n, f, ho, wo), x.dtype)
    rh, rw = (h + 2 * p - kh) % s, (wd + 2 * p - kw) % s  # rows/columns no window reaches
    hi = lax.Precision.HIGHEST
    # dx: dout dilated by S, padded by K - 1 - P (+ the unreached rows), against w
    # flipped with its channel axes swapped.
    dx = lax.conv_general_dilated(
        dout,
        xp.flip(w, (2, 3)).transpose(1, 0, 2, 3),
        (1, 1),
        [(kh - 1 - p, kh - 1 - p + rh), (kw - 1 - p, kw - 1 - p + rw)],
        lhs_dilation=(s, s),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=hi,
    )
    # dw: x (channels as the batch) against dout (images as the input channels),
    # dout dilated by S.
    dw = lax.conv_general_dilated(
        x.transpose(1, 0, 2, 3),
        dout.transpose(1, 0, 2, 3),
        (1, 1),
        [(p, p - rh), (p, p - rw)],
        rhs_dilation=(s, s),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=hi,
    ).transpose(1, 0, 2, 3)
    return dx, dw, dout.sum(axis=(0, 2, 3))


def maxpool2d_forward(xp: Any, x: Any, size: int = 2, stride: int | None = None) -> tuple[Any, Any]:
    """Max pooling: ``out[n, c, i, j] = max over the size x size window at (S i, S j)``.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
        float32 or float64.
    size : int >= 1
        The window's side.
    stride : int >= 1, optional
        The step between windows; default ``size`` (non-overlapping windows).

    Returns
    -------
    out : array, shape (N, C, Ho, Wo), ``Ho = (H - size) // stride + 1``
    cache : tuple
        ``(arg, x shape, size, stride)``: ``arg`` the position of each window's
        maximum in row-major order within the window (0 .. size^2 - 1).

    Raises
    ------
    ValueError
        If x is not 4-D, size or stride < 1, or a window is larger than the image.

    Notes
    -----
    Ties: the *first* maximum in row-major order within the window takes
    the whole gradient (numpy.argmax's rule), on both backends. Evaluated
    tap by tap (one comparison per window position, each over every window
    at once), which also finds ``arg`` without a copy of the windows.
    """
    x = as_float_array(xp, "x", x)
    k = _int("size", size, 1)
    s = k if stride is None else _int("stride", stride, 1)
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W) images, got shape {tuple(x.shape)}")
    n, c, h, wd = x.shape
    ho, wo = _out_size("H", h, k, s, 0), _out_size("W", wd, k, s, 0)
    itype = np.int8 if k * k <= 127 else np.int32
    if xp.__name__ == "numpy":
        # The windows, tap-major and contiguous (one copy): each tap's comparison
        # then runs over contiguous memory.
        win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]
        taps = np.ascontiguousarray(win.transpose(4, 5, 0, 1, 2, 3)).reshape(k * k, n, c, ho, wo)
        best = taps[0].copy()
        arg = np.zeros(best.shape, itype)
        for t in range(1, k * k):
            better = taps[t] > best  # strict: the first maximum keeps the window
            np.maximum(best, taps[t], out=best)
            arg[better] = t
        return best, (arg, (n, c, h, wd), k, s)
    taps = [
        x[:, :, u : u + s * (ho - 1) + 1 : s, v : v + s * (wo - 1) + 1 : s]
        for u, v in itertools.product(range(k), range(k))
    ]
    best, arg = taps[0], xp.zeros(taps[0].shape, itype)
    for t, tap in enumerate(taps[1:], 1):
        better = tap > best
        best = xp.where(better, tap, best)
        arg = xp.where(better, itype(t), arg)
    return best, (arg, (n, c, h, wd), k, s)


def maxpool2d_backward(xp: Any, dout: Any, cache: Any) -> Any:
    """Gradient of max pooling: each window's ``dout`` goes to its maximum, the rest get 0.

    ``dx[n, c, S i + u, S j + v] += dout[n, c, i, j] * [arg[n, c, i, j] == u size + v]``;
    overlapping windows (stride < size) add their shares.

    Parameters
    ----------
    dout : array, shape (N, C, Ho, Wo)
    cache : tuple
        From :func:`maxpool2d_forward`.

    Returns
    -------
    dx : array, shape (N, C, H, W)
    """
    arg, x_shape, k, s = cache
    n, c, h, wd = x_shape
    ho, wo = arg.shape[2], arg.shape[3]
    dtype = getattr(dout, "dtype", None)
    dout = as_upstream(xp, "dout", dout, (n, c, ho, wo), dtype)
    if xp.__name__ == "numpy":
        tap = np.arange(k * k, dtype=arg.dtype).reshape(k * k, 1, 1, 1, 1)
        routed = np.equal(arg, tap) * dout  # (k k, N, C, Ho, Wo): each tap's share
        if s == k and h == k * ho and wd == k * wo:  # windows tile x: one transposed copy
            return routed.reshape(k, k, n, c, ho, wo).transpose(2, 3, 4, 0, 5, 1).reshape(x_shape)
        dx = np.zeros(x_shape, dout.dtype)
        for t, (u, v) in enumerate(itertools.product(range(k), range(k))):
            dx[:, :, u : u + s * (ho - 1) + 1 : s, v : v + s * (wo - 1) + 1 : s] += routed[t]
        return dx
    from jax import lax

    zero = xp.zeros((), dout.dtype)
    dx = None
    for t, (u, v) in enumerate(itertools.product(range(k), range(k))):
        routed = xp.where(arg == t, dout, zero)
        # Interior padding S - 1 puts each window's share at (S i + u, S j + v).
        pad = [
            (0, 0, 0),
            (0, 0, 0),
            (u, h - u - s * (ho - 1) - 1, s - 1),
            (v, wd - v - s * (wo - 1) - 1, s - 1),
        ]
        part = lax.pad(routed, zero, pad)
        dx = part if dx is None else dx + part
    return dx


def _conv_sample(rng: np.random.Generator, n: int, d: int, m: int) -> dict[str, Any]:
    nb, c, f = 1 + n % 2, 1 + d % 2, 1 + m % 3
    k = 1 + (n + d) % 3
    size = k + (m % 3)
    return {
        "x": rng.uniform(-2.0, 2.0, (nb, c, size, size + 1)),
        "w": rng.uniform(-2.0, 2.0, (f, c, k, k)),
        "b": rng.uniform(-2.0, 2.0, (f,)),
    }


def _pool_sample(rng: np.random.Generator, n: int, d: int, m: int) -> dict[str, Any]:
    nb, c = 1 + n % 2, 1 + d % 2
    side = 2 + m % 4
    count = nb * c * side * (side + 1)
    # Distinct values, at least 0.05 apart: no ties, and a central difference of
    # 1e-6 cannot reorder a window.
    values = rng.permutation(count) * 0.05 - 0.025 * count
    return {"x": values.reshape(nb, c, side, side + 1)}


DECLARATIONS = (
    KernelSpec(
        "conv2d",
        "conv",
        conv2d_forward,
        conv2d_backward,
        ("x", "w", "b"),
        3,
        lambda n, d, m: {"x": (n, d, 5, 5), "w": (m, d, 3, 3), "b": (m,)},
        "sum_{c,u,v} w[f,c,u,v] xpad[n,c,Si+u,Sj+v] + b[f] | dx = transposed conv of dout "
        "with w; dw = conv of x with dout; db = sum dout",
        sample=_conv_sample,
    ),
    KernelSpec(
        "maxpool2d",
        "conv",
        maxpool2d_forward,
        maxpool2d_backward,
        ("x",),
        1,
        lambda n, d, m: {"x": (n, d, 4, 4)},
        "max over each size x size window | dx: dout routed to each window's maximum",
        sample=_pool_sample,
        ties="the first maximum in row-major order within the window gets the gradient",
    ),
)
"""This module's kernels, declared once (see :mod:`backprop.kernels.spec`)."""
