"""Softmax over the last axis and GELU (tanh form as in GPT-2, or the exact erf form).

Same contract as :mod:`backprop.kernels.activations`: forward ``-> (out,
cache)``, backward ``(dout, cache) -> dz``, ``dout`` of the output's shape.
On NumPy the kernels write their temporaries in place (one array per pass,
no intermediate copies); the JAX code is the same formula written
functionally, which XLA fuses. Both are held to each other to 1e-12 in
float64 by the tests.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._checks import as_float_array, as_upstream
from .spec import Domain, KernelSpec, elementwise


def _numpy(xp: Any) -> bool:
    return xp.__name__ == "numpy"


_BLOCK = 1 << 15
"""Entries per block on NumPy: the passes over a block stay in cache instead of
streaming the whole array from memory once per operation."""


_ROW_BLOCK_BYTES = 1 << 20
"""Bytes per block of rows for the row-wise kernels on NumPy (softmax here, layer
norm in :mod:`.norms`): large enough that the Python work per block and the
per-row overheads of the broadcasting ufuncs stay small, small enough that a
block's few arrays stay in cache between passes."""


def _blocks(rows: int, width: int, block: int = _BLOCK) -> list[tuple[int, int]]:
    """(start, stop) of consecutive blocks of about ``block`` entries, whole rows each."""
    step = max(1, block // max(width, 1))
    return [(i, min(i + step, rows)) for i in range(0, rows, step)]


def _row_blocks(rows: int, width: int, dtype: Any) -> list[tuple[int, int]]:
    """:func:`_blocks` of about ``_ROW_BLOCK_BYTES`` each."""
    return _blocks(rows, width, _ROW_BLOCK_BYTES // np.dtype(dtype).itemsize)


_SHORT_BUFFER = 1024


@contextlib.contextmanager
def _short_buffers(run: int) -> Iterator[None]:
    """NumPy's ufunc buffer at most ``run`` (and 1024) entries long, inside the block.

    ``run``: the length of the contiguous inner runs the block's ufuncs work
    on (a row's width). A ufunc whose operands do not flatten into one
    contiguous run (one value per row broadcast along its row, one row
    broadcast over rows, strided windows of an image) goes through NumPy's
    buffered iterator; when its buffer (8192 entries by default) holds two
    runs or more, the iterator copies the operands through the buffer to
    make longer inner loops, which makes these operations 1.5-3x slower
    than running on the arrays directly (NumPy 2.4; rows of 1024 broadcast
    against a column, or runs of 1088 added onto strided image windows).
    Runs shorter than 256 keep the default, which suits them better.
    ``numpy.errstate`` scopes the setting: the caller's buffer size is back on exit.
    """
    with np.errstate():
        size = min(_SHORT_BUFFER, run - run % 16)
        if run >= 256 and np.getbufsize() > size:
            np.setbufsize(size)
        yield


def softmax_forward(xp: Any, z: Any) -> tuple[Any, Any]:
    """Softmax over the last axis: ``p_c = exp(z_c - m) / sum_c' exp(z_c' - m)``, m = max_c z_c.

    Parameters
    ----------
    z : array, shape (..., C)
        float32 or float64 logits, C >= 1.

    Returns
    -------
    p : array, shape (..., C)
        Of ``z``'s dtype; each row sums to 1. Finite for every finite ``z``
        (exp only sees arguments <= 0).
    cache : array
        The *output* ``p``: all the backward needs.

    Raises
    ------
    ValueError
        If ``z`` is 0-d or its last axis is empty.
    """
    z = as_float_array(xp, "z", z)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(
            f"z must have at least one entry on its last axis, got shape {tuple(z.shape)}"
        )
    if _numpy(xp):
        z2 = z.reshape(-1, z.shape[-1])
        p = np.empty_like(z2)
        ones = np.ones(z2.shape[1], z2.dtype)
        blocks = _row_blocks(z2.shape[0], z2.shape[1], z2.dtype)
        t = np.empty((min(z2.shape[0], blocks[0][1]) if blocks else 0, z2.shape[1]), z2.dtype)
        with _short_buffers(z2.shape[1]):
            for i, j in blocks:
                zb, pb, tb = z2[i:j], p[i:j], t[: j - i]
                np.subtract(zb, zb.max(axis=1, keepdims=True), out=tb)
                np.exp(tb, out=pb)  # exp's arithmetic hides the first writes to p
                pb /= (pb @ ones)[:, None]  # the row sums, as one BLAS matrix-vector product
        p = p.reshape(z.shape)
        return p, p
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return p, p


def softmax_backward(xp: Any, dout: Any, cache: Any) -> Any:
    """Gradient of the softmax: ``dz = p * (dout - sum_c dout_c p_c)``, row by row.

    Derivation: dp_c/dz_k = p_c (delta_ck - p_k), so dz_k = sum_c dout_c p_c
    (delta_ck - p_k) = p_k (dout_k - sum_c dout_c p_c).

    Parameters
    ----------
    dout : array, shape (..., C)
        Upstream gradient dL/dp.
    cache : array
        The forward *output* ``p``.

    Returns
    -------
    dz : array, shape (..., C)
    """
    p = cache
    dout = as_upstream(xp, "dout", dout, tuple(p.shape), p.dtype)
    if _numpy(xp):
        p2, g2 = p.reshape(-1, p.shape[-1]), dout.reshape(-1, p.shape[-1])
        dz = np.empty_like(p2)
        with _short_buffers(p2.shape[1]):
            for i, j in _row_blocks(p2.shape[0], p2.shape[1], p2.dtype):
                pb, gb, db = p2[i:j], g2[i:j], dz[i:j]
                np.subtract(gb, np.vecdot(gb, pb)[:, None], out=db)
                db *= pb
        return dz.reshape(p.shape)
    return p * (dout - (dout * p).sum(axis=-1, keepdims=True))


_C = math.sqrt(2.0 / math.pi)  # the tanh form: u = _C (z + _K z^3)
_K = 0.044715
_CLIP = 10.0
# For |z| >= 10, u >= 43 and tanh(u) rounds to +-1 in float32 and float64, so
# the tanh form is evaluated on z clipped to [-10, 10] without changing a bit,
# and z^3 never overflows (it would at |z| > 7e12 in float32).
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _erfc(xp: Any, x: Any) -> Any:
    if not _numpy(xp):
        import jax.scipy.special

        return jax.scipy.special.erfc(x)
    try:
        from scipy.special import erfc
    except ImportError:  # NumPy has no erf; math.erfc entry by entry is exact but slow
        return np.frompyfunc(math.erfc, 1, 1)(x).astype(x.dtype)
    return erfc(x).astype(x.dtype, copy=False)


def gelu_forward(xp: Any, z: Any, approximate: bool = True) -> tuple[Any, Any]:
    """Gaussian error linear unit, elementwise: ``gelu(z) = z Phi(z)``.

    ``approximate=True`` (GPT-2's form): ``0.5 z (1 + tanh(u))``,
    ``u = sqrt(2/pi) (z + 0.044715 z^3)``. ``approximate=False``: the exact
    ``z Phi(z) = 0.5 z erfc(-z / sqrt(2))`` (erfc rather than 1 + erf keeps
    the negative tail's relative precision).

    Parameters
    ----------
    z : array, any shape
        float32 or float64.
    approximate : bool
        The tanh form (default) or the exact erf form.

    Returns
    -------
    out : array
        Of ``z``'s shape and dtype; finite and warning-free for every finite ``z``.
    cache : tuple
        Tanh form: ``(t, zc, True)`` with ``t = tanh(u)`` and ``zc`` = z clipped
        to [-10, 10] (exact there: see the module source); erf form:
        ``(Phi(z), z, False)``.

    Raises
    ------
    TypeError
        If ``approximate`` is not a bool.
    """
    z = as_float_array(xp, "z", z)
    if not isinstance(approximate, (bool, np.bool_)):
        raise TypeError(f"approximate must be True or False, got {approximate!r}")
    if not approximate:
        phi = 0.5 * _erfc(xp, z * -_SQRT_HALF)
        return z * phi, (phi, z, False)
    if _numpy(xp):
        flat = z.reshape(-1)
        zc_all, t_all, out_all = (np.empty_like(flat) for _ in range(3))
        for i, j in _blocks(flat.size, 1):
            zb, zc, t, out = flat[i:j], zc_all[i:j], t_all[i:j], out_all[i:j]
            np.clip(zb, -_CLIP, _CLIP, out=zc)
            np.multiply(zc, zc, out=t)
            t *= _C * _K
            t += _C
            t *= zc
            np.tanh(t, out=t)
            np.multiply(t, 0.5, out=out)
            out += 0.5
            out *= zb
        shape = z.shape
        return out_all.reshape(shape), (t_all.reshape(shape), zc_all.reshape(shape), True)
    zc = xp.clip(z, -_CLIP, _CLIP)
    t = xp.tanh(zc * (_C + (_C * _K) * (zc * zc)))
    return 0.5 * z * (1.0 + t), (t, zc, True)


def gelu_backward(xp: Any, dout: Any, cache: Any) -> Any:
    """Gradient of GELU.

    Tanh form: ``dz = dout * (0.5 (1 + t) + 0.5 z (1 - t^2) u'(z))`` with
    ``t = tanh(u)``, ``u'(z) = sqrt(2/pi) (1 + 3 * 0.044715 z^2)``. Exact form:
    ``dz = dout * (Phi(z) + z phi(z))``, ``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)``.

    Parameters
    ----------
    dout : array
        Upstream gradient, of ``z``'s shape.
    cache : tuple
        From :func:`gelu_forward` (it records which form was used).

    Returns
    -------
    dz : array
        Of ``z``'s shape and dtype.
    """
    a, z, approximate = cache
    dout = as_upstream(xp, "dout", dout, tuple(a.shape), a.dtype)
    if not approximate:
        zc = xp.clip(z, -40.0, 40.0)  # phi underflows to 0 well before; z^2 cannot overflow
        return dout * (a + z * (_INV_SQRT_2PI * xp.exp(-0.5 * (zc * zc))))
    t, zc = a, z  # zc: z clipped where (1 - t^2) is exactly 0
    if _numpy(xp):
        tf, zf, gf = t.reshape(-1), zc.reshape(-1), dout.reshape(-1)
        dz = np.empty_like(tf)
        q_all = np.empty(min(_BLOCK, tf.size), tf.dtype)
        for i, j in _blocks(tf.size, 1):
            tb, zb, s, q = tf[i:j], zf[i:j], dz[i:j], q_all[: j - i]
            np.multiply(zb, zb, out=s)
            s *= 1.5 * _C * _K
            s += 0.5 * _C
            s *= zb
            np.multiply(tb, tb, out=q)
            np.subtract(1.0, q, out=q)
            s *= q
            np.multiply(tb, 0.5, out=q)
            s += q
            s += 0.5
            s *= gf[i:j]
        return dz.reshape(t.shape)
    du = zc * ((0.5 * _C) + (1.5 * _C * _K) * (zc * zc))
    return dout * (0.5 * (1.0 + t) + (1.0 - t * t) * du)


def _rows(lo: float, hi: float) -> Any:
    """An input builder: (1-8 rows, m columns) uniform in [lo, hi]; few rows keep checks quick."""

    def sample(rng: np.random.Generator, n: int, d: int, m: int) -> dict[str, Any]:
        return {"z": rng.uniform(lo, hi, (1 + (n - 1) % 8, m))}

    return sample


DECLARATIONS = (
    KernelSpec(
        "softmax",
        "smooth",
        softmax_forward,
        softmax_backward,
        ("z",),
        1,
        elementwise,
        "e^(z - max) / sum e^(z - max) over the last axis | dz = p (dout - sum(dout p)), "
        "from the cached output p",
        {"z": Domain("real", -30.0, 30.0)},
        sample=_rows(-30.0, 30.0),
    ),
    KernelSpec(
        "gelu",
        "smooth",
        gelu_forward,
        gelu_backward,
        ("z",),
        1,
        elementwise,
        "0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) (exact: z Phi(z)) "
        "| dz = dout (0.5 (1 + t) + 0.5 z (1 - t^2) u'), from the cached t = tanh(u)",
        {"z": Domain("real", -6.0, 6.0)},
        sample=_rows(-6.0, 6.0),
    ),
)
"""This module's kernels, declared once (see :mod:`backprop.kernels.spec`)."""
