"""Scaled dot-product attention over (..., T, d), leading axes for batch and heads.

Forward, with ``scale = 1 / sqrt(d)``::

    S = scale q k^T                    (..., T, Tk)
    P = softmax(S) over the keys       (masked: key j > query i gets P = 0 when causal)
    out = P v                          (..., T, dv)

Backward, from the chain rule through each line::

    dv = P^T dout
    dP = dout v^T
    dS = P * (dP - sum_j dP P)         (the softmax's backward, row by row)
    dq = scale dS k,  dk = scale dS^T q

The softmax subtracts each row's maximum, so scores of +-1e4 stay finite;
masked scores are set to -inf, whose exp is exactly 0 (the diagonal is never
masked, so every row keeps a finite maximum).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._checks import as_float_array, as_upstream
from .spec import KernelSpec


def attention_forward(xp: Any, q: Any, k: Any, v: Any, causal: bool = False) -> tuple[Any, Any]:
    """Scaled dot-product attention ``softmax(q k^T / sqrt(d)) v``.

    Parameters
    ----------
    q : array, shape (..., T, d)
        Queries; the leading axes (batch, heads) are shared by k and v.
    k : array, shape (..., Tk, d)
        Keys.
    v : array, shape (..., Tk, dv)
        Values.
    causal : bool
        Query i attends only to keys j <= i (needs Tk == T).

    Returns
    -------
    out : array, shape (..., T, dv), q's dtype
    cache : tuple
        ``(q, k, v, P)`` with P the attention weights (..., T, Tk).

    Raises
    ------
    ValueError
        If an input has fewer than 2 axes, the leading axes differ, k's d is
        not q's, v's Tk is not k's, or ``causal`` with Tk != T.
    TypeError
        If ``causal`` is not a bool.
    """
    q = as_float_array(xp, "q", q)
    k = as_float_array(xp, "k", k)
    v = as_float_array(xp, "v", v)
    if not isinstance(causal, (bool, np.bool_)):
        raise TypeError(f"causal must be True or False, got {causal!r}")
    for name, a in (("q", q), ("k", k), ("v", v)):
        if a.ndim < 2:
            raise ValueError(f"{name} must be (..., T, d), got shape {tuple(a.shape)}")
    lead = tuple(q.shape[:-2])
    for name, a in (("k", k), ("v", v)):
        if tuple(a.shape[:-2]) != lead:
            raise ValueError(
                f"{name} must have q's leading (batch, head) axes {lead}, got shape "
                f"{tuple(a.shape)}"
            )
    t, d = q.shape[-2:]
    if k.shape[-1] != d:
        raise ValueError(f"k must have q's d = {d} on its last axis, got shape {tuple(k.shape)}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"v must have one row per key (Tk = {k.shape[-2]}), got shape {tuple(v.shape)}"
        )
    if causal and k.shape[-2] != t:
        raise ValueError(
            f"causal attention needs as many keys as queries, got T={t}, Tk={k.shape[-2]}"
        )
    k, v = k.astype(q.dtype), v.astype(q.dtype)
    scale = 1.0 / math.sqrt(d) if d else 1.0
    future = np.triu(np.ones((t, t), bool), 1) if causal else None
    if xp.__name__ == "numpy":
        s = np.matmul(q, k.mT)
        s *= scale
        if causal:
            s[..., future] = -np.inf
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        p = s
    else:
        s = xp.einsum("...td,...sd->...ts", q, k) * scale
        if causal:
            s = xp.where(future, -np.inf, s)
        e = xp.exp(s - s.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
    return p @ v, (q, k, v, p)


def attention_backward(xp: Any, dout: Any, cache: Any) -> tuple[Any, Any, Any]:
    """Gradients of attention (derivation in the module docstring).

    Parameters
    ----------
    dout : array, shape (..., T, dv)
    cache : tuple
        ``(q, k, v, P)`` from :func:`attention_forward`.

    Returns
    -------
    dq : array (..., T, d)
    dk : array (..., Tk, d)
    dv : array (..., Tk, dv)
    """
    q, k, v, p = cache
    dout = as_upstream(xp, "dout", dout, (*tuple(q.shape[:-1]), v.shape[-1]), q.dtype)
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d) if d else 1.0
    if xp.__name__ == "numpy":
        dv = p.mT @ dout
        dp = dout @ v.mT
        dp -= np.einsum("...ij,...ij->...i", dp, p)[..., None]
        dp *= p  # dS / scale: the scale goes on the (T, d) products, not the (T, Tk) dS
        dq, dk = dp @ k, dp.mT @ q
        dq *= scale
        dk *= scale
        return dq, dk, dv
    # The same products as einsums: XLA contracts over the named axes directly
    # instead of materialising the transposes.
    dv = xp.einsum("...ts,...te->...se", p, dout)
    dp = xp.einsum("...te,...se->...ts", dout, v)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))  # dS / scale
    dq = xp.einsum("...ts,...sd->...td", ds, k) * scale
    return dq, xp.einsum("...ts,...td->...sd", ds, q) * scale, dv


def _sample(rng: np.random.Generator, n: int, d: int, m: int) -> dict[str, Any]:
    lead = (1 + n % 2, 1 + m % 2)
    t, dk = 1 + n % 4, 1 + d % 3
    return {
        "q": rng.uniform(-2.0, 2.0, (*lead, t, dk)),
        "k": rng.uniform(-2.0, 2.0, (*lead, t + m % 2, dk)),
        "v": rng.uniform(-2.0, 2.0, (*lead, t + m % 2, 1 + m % 3)),
    }


DECLARATIONS = (
    KernelSpec(
        "attention",
        "attention",
        attention_forward,
        attention_backward,
        ("q", "k", "v"),
        3,
        lambda n, d, m: {"q": (n, m, d), "k": (n, m, d), "v": (n, m, d)},
        "softmax(q k^T / sqrt(d)) v (causal: keys j <= i) | dv = P^T dout; dS = P (dP - "
        "sum dP P), dP = dout v^T; dq = dS k / sqrt(d); dk = dS^T q / sqrt(d)",
        sample=_sample,
    ),
)
"""This module's kernels, declared once (see :mod:`backprop.kernels.spec`)."""
