"""The NumPy XOR training loop, fused and in place.

:func:`backprop.xor.xor_step` chains the kernels: readable, one derivation
per operation, and what the JAX loop compiles. At the XOR size (4 x 2) every
NumPy call costs ~0.2-0.8 us of overhead whatever it computes, so a step of
~45 kernel-level calls spends almost all its time on overhead. This module
runs the *same* derivation in 18 NumPy calls per step, all writing into
buffers allocated once:

- each bias is folded into its weight matrix as one more input that is
  always 1: ``X @ w1 + b1 == [X, 1] @ [[w1], [b1]]``, so one product does
  the forward pass of a layer and one product its weight *and* bias
  gradients (the column of ones sums ``d_l`` over rows, which is db);
- BCE's backward half times the output sigmoid's is multiplied out:
  ``(p - y) / (p (1 - p)) / N * p (1 - p) = (p - y) / N`` (exact wherever
  the kernel chain is, and right where it is not: at a saturated output
  ``p == 1.0`` with ``y = 0`` the chain's ``p (1 - p)`` is 0 and its gradient
  vanishes, this one is ``1 / N``);
- ``lr / N`` is applied once, to ``d_l2``, so the update of all four
  parameters is one subtraction on the flat vector that holds them;
- the cost is not evaluated inside the loop: the output logits ``l2`` of
  every step are kept (in chunks of :data:`CHUNK` steps) and the costs of a
  chunk computed together, as BCE on logits, after the chunk.

Forward sigmoid ``1 / (1 + exp(-l))``: exp overflows to ``inf`` for
``l < -88`` (float32) and the quotient is then exactly 0, the correctly
rounded sigmoid; the loop runs under ``np.errstate(over="ignore")`` so this
limit raises no warning. Everything here is covered by the tests in
``tests/test_xor.py``: the first step equals ``w - lr * xor_gradients``,
the gradient it applies passes :func:`backprop.gradcheck.gradcheck`, and
whole runs match the kernel-chain loop in float64.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from backprop.xor import XorParams

CHUNK = 1024
"""Steps whose output logits are kept before their costs are computed."""


def step_costs(logits: Any, y: Any, xp: Any = np) -> Any:
    """Mean BCE per step from output logits: (steps, N, 1), y (N, 1) -> (steps,).

    The formula of :func:`kernels.losses.bce_with_logits_forward`,
    max(z, 0) - z y + log1p(exp(-|z|)), averaged over each step's N rows.
    ``xp``: NumPy, or jax.numpy inside a compiled function.
    """
    z = logits
    per_row = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
    return per_row.mean(axis=(1, 2), dtype=z.dtype)


def train_fused(
    params: XorParams, X: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[tuple[np.ndarray, ...], np.ndarray, float]:
    """Run ``steps`` updates of the 2-H-1 network; NumPy only.

    params: w1 (D, H), b1 (H,), w2 (H, 1), b2 (1,); X (N, D); y (N, 1); all
    of X's dtype. Returns ``((w1, b1, w2, b2), costs, seconds)`` where
    ``costs[i]`` is the cost before update ``i``. If a cost becomes NaN or
    infinite, training stops at the end of that chunk and ``costs`` holds
    the steps run so far (the caller reports the first bad one).
    """
    n, d = X.shape
    h = params.w1.shape[1]
    dt = X.dtype
    # All four parameters in one flat vector: W1 = [[w1], [b1]], W2 = [[w2], [b2]].
    theta = np.empty((d + 1) * h + (h + 1), dt)
    W1 = theta[: (d + 1) * h].reshape(d + 1, h)
    W2 = theta[(d + 1) * h :].reshape(h + 1, 1)
    W1[:d], W1[d], W2[:h], W2[h] = params.w1, params.b1, params.w2, params.b2
    grad = np.empty_like(theta)
    G1 = grad[: (d + 1) * h].reshape(d + 1, h)
    G2 = grad[(d + 1) * h :].reshape(h + 1, 1)
    # Inputs with a column of ones appended; A1's first H columns are a1.
    Xa = np.ones((n, d + 1), dt)
    Xa[:, :d] = X
    A1 = np.ones((n, h + 1), dt)
    a1 = A1[:, :h]
    XaT, A1T, w2T = Xa.T, A1.T, W2[:h].T
    l1, e1, t1, d_a1 = (np.empty((n, h), dt) for _ in range(4))
    e2, d_l2 = np.empty((n, 1), dt), np.empty((n, 1), dt)
    logits = np.empty((min(steps, CHUNK), n, 1), dt)
    one = np.ones((), dt)
    c = np.asarray(lr / n, dt)
    cy = c * y
    costs = np.empty(steps, dt)
    dot, neg, exp, add, div = np.dot, np.negative, np.exp, np.add, np.divide
    sub, mul = np.subtract, np.multiply

    t0 = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, steps, CHUNK):
            stop = min(start + CHUNK, steps)
            for i in range(stop - start):
                # forward: l1 = [X, 1] @ W1, a1 = 1 / (1 + e1) with e1 = exp(-l1)
                dot(Xa, W1, out=l1)
                neg(l1, out=e1)
                exp(e1, out=e1)
                add(e1, one, out=t1)
                div(one, t1, out=a1)
                l2 = logits[i]
                dot(A1, W2, out=l2)
                # output: d_l2 = lr/N (p - y) = lr/N / (1 + exp(-l2)) - lr/N y
                neg(l2, out=e2)
                exp(e2, out=e2)
                add(e2, one, out=e2)
                div(c, e2, out=d_l2)
                sub(d_l2, cy, out=d_l2)
                # [dw2; db2] = [a1, 1].T @ d_l2; d_a1 = d_l2 @ w2.T
                dot(A1T, d_l2, out=G2)
                dot(d_l2, w2T, out=d_a1)
                # d_l1 = d_a1 * sigma'(l1), sigma'(l1) = a1 (1 - a1)
                sub(one, a1, out=t1)
                mul(d_a1, a1, out=d_a1)
                mul(d_a1, t1, out=d_a1)
                # [dw1; db1] = [X, 1].T @ d_l1; then all four updates at once
                dot(XaT, d_a1, out=G1)
                sub(theta, grad, out=theta)
            costs[start:stop] = step_costs(logits[: stop - start], y)
            if not np.isfinite(costs[start:stop]).all():
                costs = costs[:stop]
                break
    seconds = time.perf_counter() - t0
    out = (W1[:d].copy(), W1[d].copy(), W2[:h].copy(), W2[h].copy())
    return out, costs, seconds
