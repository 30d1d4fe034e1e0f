"""The NumPy XOR training loop, in place: a transcription of
:func:`backprop.xor.xor_loss_and_grads` and :func:`backprop.xor.xor_step`.

At the XOR size (4 x 2) a NumPy call's overhead dwarfs its arithmetic, so
the reference's ~45 kernel-level calls a step are what a step costs. This
loop makes the same derivation in 18 NumPy calls a step, every one writing
into a buffer allocated once:

- each bias is folded into its weight matrix as one more input that is
  always 1: ``X @ w1 + b1 == [X, 1] @ [[w1], [b1]]``, so one product does a
  layer's forward pass and one product its weight *and* bias gradients (the
  column of ones sums ``d_l`` over the rows, which is db);
- BCE on the logits gives ``d_l2 = (sigmoid(l2) - y) / N`` directly, as in
  the reference;
- ``lr / N`` is applied once, to ``d_l2``, so the update of all four
  parameters is one subtraction on the flat vector that holds them;
- the cost is evaluated only at the steps it is recorded at, from the
  logits ``l2`` that step computed anyway.

Forward sigmoid ``1 / (1 + exp(-l))``: exp overflows to ``inf`` for
``l < -88`` (float32) and the quotient is then exactly 0, the correctly
rounded sigmoid; the loop runs under ``np.errstate(over="ignore")`` so that
limit raises no warning. ``tests/test_fast.py`` holds the cost and every
gradient to the reference's, on random and saturated parameters, in float32
and float64.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from backprop.xor.derivation import XorParams


def logit_costs(logits: Any, y: Any, xp: Any = np) -> Any:
    """Mean BCE from output logits: (..., N, 1) and y (N, 1) -> (...,).

    The formula of :func:`backprop.kernels.losses.bce_with_logits_forward`,
    max(z, 0) - z y + log1p(exp(-|z|)), averaged over the N rows.
    """
    z = logits
    per_row = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
    return per_row.mean(axis=(-2, -1))


class InPlaceXor:
    """The 2-H-1 network's parameters and every buffer a step needs, allocated once.

    Parameters
    ----------
    params : XorParams
        Starting w1 (D, H), b1 (H,), w2 (H, 1), b2 (1,) (copied).
    X : array (N, D)
    y : array (N, 1)
    lr : float
        Folded into the gradient buffer: :attr:`grad` holds ``lr * gradient``.

    Call :meth:`gradient` for the cost and the gradient at the current
    parameters, :meth:`step` for one update, :meth:`params` for copies.
    """

    def __init__(self, params: XorParams, X: np.ndarray, y: np.ndarray, lr: float) -> None:
        n, d = X.shape
        h = params.w1.shape[1]
        dt = X.dtype
        self.lr, self.y, self.d, self.h = lr, y, d, h
        # All four parameters in one flat vector: W1 = [[w1], [b1]], W2 = [[w2], [b2]].
        self.theta = np.empty((d + 1) * h + (h + 1), dt)
        self.W1 = self.theta[: (d + 1) * h].reshape(d + 1, h)
        self.W2 = self.theta[(d + 1) * h :].reshape(h + 1, 1)
        self.W1[:d], self.W1[d], self.W2[:h], self.W2[h] = params
        self.grad = np.empty_like(self.theta)
        G1 = self.grad[: (d + 1) * h].reshape(d + 1, h)
        G2 = self.grad[(d + 1) * h :].reshape(h + 1, 1)
        # Inputs with a column of ones appended; A1's first H columns are a1.
        Xa = np.ones((n, d + 1), dt)
        Xa[:, :d] = X
        A1 = np.ones((n, h + 1), dt)
        a1 = A1[:, :h]
        XaT, A1T, w2T, W1, W2 = Xa.T, A1.T, self.W2[:h].T, self.W1, self.W2
        l1, e1, t1, d_a1 = (np.empty((n, h), dt) for _ in range(4))
        self.l2, e2, d_l2 = np.empty((n, 1), dt), np.empty((n, 1), dt), np.empty((n, 1), dt)
        l2 = self.l2
        one = np.ones((), dt)
        c = np.asarray(lr / n, dt)
        cy = c * y
        dot, neg, exp, add, div, sub, mul = (
            np.dot,
            np.negative,
            np.exp,
            np.add,
            np.divide,
            np.subtract,
            np.multiply,
        )

        def gradient_into_buffer() -> None:
            # forward: l1 = [X, 1] @ W1, a1 = 1 / (1 + e1) with e1 = exp(-l1)
            dot(Xa, W1, out=l1)
            neg(l1, out=e1)
            exp(e1, out=e1)
            add(e1, one, out=t1)
            div(one, t1, out=a1)
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
            # [dw1; db1] = [X, 1].T @ d_l1
            dot(XaT, d_a1, out=G1)

        self._gradient_into_buffer: Callable[[], None] = gradient_into_buffer

    def gradient(self) -> tuple[float, XorParams]:
        """The cost and the gradient (not scaled by lr) at the current parameters."""
        with np.errstate(over="ignore", invalid="ignore"):
            self._gradient_into_buffer()
            cost = float(logit_costs(self.l2, self.y))
        g = self.grad / self.lr
        d, h = self.d, self.h
        G1, G2 = g[: (d + 1) * h].reshape(d + 1, h), g[(d + 1) * h :].reshape(h + 1, 1)
        return cost, XorParams(G1[:d], G1[d], G2[:h], G2[h])

    def step(self) -> None:
        """One update of every parameter: theta = theta - lr * gradient."""
        with np.errstate(over="ignore", invalid="ignore"):
            self._gradient_into_buffer()
            np.subtract(self.theta, self.grad, out=self.theta)

    def params(self) -> XorParams:
        """Copies of the current w1, b1, w2, b2."""
        d, h = self.d, self.h
        return XorParams(
            self.W1[:d].copy(), self.W1[d].copy(), self.W2[:h].copy(), self.W2[h].copy()
        )

    def cost(self) -> float:
        """The cost at the current parameters (one forward pass)."""
        return self.gradient()[0]


def train_inplace(
    params: XorParams, X: np.ndarray, y: np.ndarray, lr: float, steps: int, log_every: int
) -> tuple[XorParams, np.ndarray, np.ndarray, float]:
    """Run ``steps`` updates; NumPy only.

    Returns ``(params, costs, cost_steps, seconds)``: the cost before the
    updates 0, log_every, 2 log_every, ... and after the last one. A NaN or
    infinite cost stops training at that recorded step (the caller reports it).
    """
    loop = InPlaceXor(params, X, y, lr)
    gradient_into_buffer, theta, grad, l2 = (
        loop._gradient_into_buffer,
        loop.theta,
        loop.grad,
        loop.l2,
    )
    sub = np.subtract
    costs, cost_steps = [], []
    t0 = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, steps, log_every):
            gradient_into_buffer()
            costs.append(logit_costs(l2, y))
            cost_steps.append(start)
            if not np.isfinite(costs[-1]):
                break
            sub(theta, grad, out=theta)
            for _ in range(min(log_every, steps - start) - 1):
                gradient_into_buffer()
                sub(theta, grad, out=theta)
        else:
            costs.append(loop.cost())
            cost_steps.append(steps)
    seconds = time.perf_counter() - t0
    return loop.params(), np.asarray(costs, X.dtype), np.asarray(cost_steps), seconds


def loss_and_grads(K: Any, params: XorParams, X: Any, y: Any) -> tuple[float, XorParams]:
    """The signature of :func:`backprop.xor.xor_loss_and_grads`, computed in place (NumPy only)."""
    if K.name != "numpy":
        raise ValueError(f"the in-place XOR loop runs on NumPy only, got backend {K.name!r}")
    X = np.asarray(X)
    return InPlaceXor(params, X, np.asarray(y, X.dtype), 1.0).gradient()
