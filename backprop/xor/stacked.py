"""The XOR network's derivation unrolled over its rows, for any number of
networks at once: a transcription of :func:`backprop.xor.xor_loss_and_grads`.

Parameters are held "networks last": ``w1`` (D, H, ...), ``b1`` (H, ...),
``w2`` (H, ...), ``b2`` (...), where ``...`` is no axis for one network and
(n,) for n networks. The four data rows and two inputs are unrolled in
Python, so every operation is an elementwise one over (H, ...) arrays: no
matrix product, no reduction over a short axis. XLA compiles such a step
into a few fused loops (reductions over 4 rows and a matrix product of a
2-column X each cost a kernel launch of their own), and for many networks
each fused loop runs along the contiguous network axis in SIMD lanes. Row i
of the reference's backward pass is::

    a1_i  = sigmoid(sum_d X[i, d] w1[d] + b1)          (H, ...)
    l2_i  = sum_h a1_i w2 + b2                         (...)
    d_l2_i = (sigmoid(l2_i) - y_i) / N                 BCE on the logits
    d_l1_i = d_l2_i w2 a1_i (1 - a1_i)                 sigma'(l1) from a1

and the gradients are sums over the rows: dw1[d] = sum_i X[i, d] d_l1_i,
db1 = sum_i d_l1_i, dw2 = sum_i a1_i d_l2_i, db2 = sum_i d_l2_i.

Used by :func:`backprop.train_xor_many` on both backends. (For one network
on JAX, :mod:`backprop.xor.single` is faster: with no network axis, XLA
fuses its whole-array form into fewer kernels.)
``tests/test_fast.py`` holds it to the reference network by network, on
random and saturated parameters, in float32 and float64, on both backends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.xor.derivation import XorParams

Nets = tuple[Any, Any, Any, Any]
"""(w1 (D, H, ...), b1 (H, ...), w2 (H, ...), b2 (...)): parameters, networks last."""


def _sigmoid(xp: Any, z: Any) -> Any:
    """1 / (1 + exp(-z)): exp overflows to inf for z < -88 (float32) and the
    quotient is then 0, the correctly rounded value (NumPy runs it under
    errstate(over="ignore"))."""
    return 1.0 / (1.0 + xp.exp(-z))


def forward(xp: Any, params: Nets, X: Any) -> tuple[list[Any], list[Any]]:
    """Per row i: the hidden activations a1_i (H, ...) and output logits l2_i (...)."""
    w1, b1, w2, b2 = params
    n, d = X.shape
    a1 = [_sigmoid(xp, sum(X[i, k] * w1[k] for k in range(d)) + b1) for i in range(n)]
    l2 = [(a * w2).sum(axis=0) + b2 for a in a1]
    return a1, l2


def costs(xp: Any, params: Nets, X: Any, y: Any) -> Any:
    """Each network's mean BCE on the logits, shape (...)."""
    _, l2 = forward(xp, params, X)
    rows = [xp.maximum(z, 0) - z * y[i, 0] + xp.log1p(xp.exp(-xp.abs(z))) for i, z in enumerate(l2)]
    return sum(rows) / len(rows)


def gradients(xp: Any, params: Nets, X: Any, y: Any) -> Nets:
    """Each network's gradient (dw1, db1, dw2, db2), networks last."""
    _, _, w2, _ = params
    n, d = X.shape
    a1, l2 = forward(xp, params, X)
    d_l2 = [(_sigmoid(xp, l2[i]) - y[i, 0]) / n for i in range(n)]
    d_l1 = [d_l2[i] * w2 * a1[i] * (1.0 - a1[i]) for i in range(n)]
    d_w1 = xp.stack([sum(X[i, k] * d_l1[i] for i in range(n)) for k in range(d)])
    d_b1 = sum(d_l1)
    d_w2 = sum(a1[i] * d_l2[i] for i in range(n))
    d_b2 = sum(d_l2)
    return d_w1, d_b1, d_w2, d_b2


def step(xp: Any, params: Nets, X: Any, y: Any, lr: Any) -> Nets:
    """One update of every network (see :func:`update`)."""
    return update(params, gradients(xp, params, X, y), lr)


def update(params: Nets, grads: Nets, lr: Any) -> Nets:
    """w = w - lr * dw, written out per parameter, for one network or many."""
    w1, b1, w2, b2 = params
    d_w1, d_b1, d_w2, d_b2 = grads
    w1 = w1 - lr * d_w1
    b1 = b1 - lr * d_b1
    w2 = w2 - lr * d_w2
    b2 = b2 - lr * d_b2
    return w1, b1, w2, b2


def nets_last(p: XorParams) -> Nets:
    """XorParams (one network, or n stacked on a leading axis) -> networks last."""
    if p.w1.ndim == 2:
        return (p.w1, p.b1, p.w2[:, 0], p.b2[0])
    w1, b1, w2, b2 = (np.asarray(a) for a in p)
    return tuple(  # type: ignore[return-value]
        np.ascontiguousarray(a) for a in (np.moveaxis(w1, 0, -1), b1.T, w2[..., 0].T, b2[:, 0])
    )


def nets_first(params: Nets) -> XorParams:
    """The inverse of :func:`nets_last`, as NumPy arrays."""
    w1, b1, w2, b2 = (np.asarray(a) for a in params)
    if w1.ndim == 2:
        return XorParams(w1, b1, w2[:, None], b2.reshape(1))
    return XorParams(np.moveaxis(w1, -1, 0), b1.T, w2.T[..., None], b2[:, None])


def loss_and_grads(K: Any, params: XorParams, X: Any, y: Any) -> tuple[Any, XorParams]:
    """The signature of :func:`backprop.xor.xor_loss_and_grads`, for one network or a stack.

    ``params`` may hold n networks stacked on a leading axis (as
    :func:`backprop.xor.many.init_xor_many` draws them); the cost then has shape
    (n,) and every gradient the stacked shape.
    """
    xp = K.xp
    p = tuple(xp.asarray(a) for a in nets_last(params))
    X, y = xp.asarray(X), xp.asarray(y)
    return np.asarray(costs(xp, p, X, y)), nets_first(gradients(xp, p, X, y))
