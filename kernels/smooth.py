"""Softmax over the last axis and GELU (tanh form as in GPT-2, or the exact erf form).

Same contract as :mod:`backprop.kernels.activations`: forward ``-> (out,
cache)``, backward ``(dout, cache) -> dz``, ``dout`` of the output's shape.
On NumPy the kernels write their temporaries in place (one array per pass,
no intermediate copies); the JAX code is the same formula written
functionally, which XLA fuses. Both are held to each other to 1e-12 in
float64 by the tests.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._checks import as_float_array, as_upstream
from .spec import Domain, KernelSpec, elementwise


def _numpy(xp: Any) -> bool:
    return xp.__name__ == "numpy"


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
    m = z.max(axis=-1, keepdims=True)
    if _numpy(xp):
        e = np.subtract(z, m)
        np.exp(e, out=e)
        e /= e.sum(axis=-1, keepdims=True)
        return e, e
    e = xp.exp(z - m)
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
        s = np.einsum("...c,...c->...", dout, p)[..., None]
        dz = np.subtract(dout, s)
        dz *= p
        return dz
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
        zc = np.clip(z, -_CLIP, _CLIP)
        t = zc * zc
        t *= _C * _K
        t += _C
        t *= zc
        np.tanh(t, out=t)
        out = t * 0.5
        out += 0.5
        out *= z
        return out, (t, zc, True)
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
        s = zc * zc
        s *= 1.5 * _C * _K
        s += 0.5 * _C
        s *= zc
        q = t * t
        np.subtract(1.0, q, out=q)
        s *= q
        q = t * 0.5
        s += q
        s += 0.5
        s *= dout
        return s
    du = zc * ((0.5 * _C) + (1.5 * _C * _K) * (zc * zc))
    return dout * (0.5 * (1.0 + t) + (1.0 - t * t) * du)


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
    ),
)
"""This module's kernels, declared once (see :mod:`backprop.kernels.spec`)."""
