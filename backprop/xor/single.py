"""One XOR network on JAX, the whole training loop compiled: a transcription of
:func:`backprop.xor.xor_loss_and_grads` in whole-array form.

Parameters are ``w1`` (D, H), ``b1`` (H,), ``w2`` (H,), ``b2`` () (the
layout of :mod:`backprop.xor.stacked` with no network axis). Every product
of the reference is written as a broadcast and a sum over one short axis::

    a1   = sigmoid(sum_d X[:, d] w1[d] + b1)        (N, H)
    l2   = sum_h a1 w2 + b2                          (N,)
    d_l2 = (sigmoid(l2) - y) / N                     BCE on the logits
    d_l1 = d_l2 w2 a1 (1 - a1)                       sigma'(l1) from a1
    dw1  = sum_n X[n, :, None] d_l1[n],  db1 = sum_n d_l1,
    dw2  = sum_n a1 d_l2,                db2 = sum_n d_l2

At this size a compiled step's time is the number of kernels XLA launches
for it, not its arithmetic; in this form XLA fuses the whole step into
seven kernels where matrix products give it ten to sixteen. The loop is a
``lax.scan`` over blocks of ``log_every`` steps that records the cost at the
start of each block and runs the block's steps in a ``lax.fori_loop``;
``tests/test_fast.py`` holds the step to the reference on random and
saturated parameters, in float32 and float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop._jaxrun import compile_and_run
from backprop.kernels import get_backend
from backprop.xor.derivation import XorParams
from backprop.xor.stacked import Nets, nets_first, nets_last, update


def _sigmoid(xp: Any, z: Any) -> Any:
    """1 / (1 + exp(-z)): exp overflows to inf for z < -88 (float32) and the
    quotient is then 0, the correctly rounded value."""
    return 1.0 / (1.0 + xp.exp(-z))


def _forward(xp: Any, params: Nets, X: Any) -> tuple[Any, Any]:
    w1, b1, w2, b2 = params
    a1 = _sigmoid(xp, (X[:, :, None] * w1).sum(axis=1) + b1)
    return a1, (a1 * w2).sum(axis=1) + b2


def cost(xp: Any, params: Nets, X: Any, y: Any) -> Any:
    """Mean BCE on the logits, a scalar."""
    _, z = _forward(xp, params, X)
    return (xp.maximum(z, 0) - z * y[:, 0] + xp.log1p(xp.exp(-xp.abs(z)))).mean()


def gradients(xp: Any, params: Nets, X: Any, y: Any) -> Nets:
    """(dw1, db1, dw2, db2) in this module's layout."""
    _, _, w2, _ = params
    a1, z = _forward(xp, params, X)
    d_l2 = (_sigmoid(xp, z) - y[:, 0]) * (1.0 / X.shape[0])
    d_l1 = d_l2[:, None] * w2 * a1 * (1.0 - a1)
    return (
        (X[:, :, None] * d_l1[:, None, :]).sum(axis=0),
        d_l1.sum(axis=0),
        (a1 * d_l2[:, None]).sum(axis=0),
        d_l2.sum(),
    )


def step(xp: Any, params: Nets, X: Any, y: Any, lr: Any) -> Nets:
    """One update, :func:`backprop.xor.stacked.update` of this module's gradients."""
    return update(params, gradients(xp, params, X, y), lr)


def loss_and_grads(K: Any, params: XorParams, X: Any, y: Any) -> tuple[Any, XorParams]:
    """The signature of :func:`backprop.xor.xor_loss_and_grads`."""
    xp = K.xp
    p = tuple(xp.asarray(a) for a in nets_last(params))
    X, y = xp.asarray(X), xp.asarray(y)
    return np.asarray(cost(xp, p, X, y)), nets_first(gradients(xp, p, X, y))


def train_single_jax(
    params: XorParams, X: np.ndarray, y: np.ndarray, lr: float, steps: int, log_every: int
) -> tuple[XorParams, np.ndarray, np.ndarray, float, float]:
    """JAX's loop for one network: ``(params, costs, cost_steps, seconds, compile seconds)``.

    One compiled computation: a scan over blocks of ``log_every`` steps, each
    recording the cost at its start and running its steps in a
    ``lax.fori_loop`` of :func:`step`; then the cost after the last step.
    """
    get_backend("jax")  # the ImportError that says how to install JAX
    args = (nets_last(params), X, y, np.asarray(lr, X.dtype))
    static = {"steps": steps, "log_every": log_every}
    out, seconds, compile_seconds = compile_and_run(
        _single_loop, args, static, x64=X.dtype == np.float64
    )
    p, cost_values = out
    cost_steps = np.array([*range(0, steps, log_every), steps])
    return nets_first(p), np.asarray(cost_values), cost_steps, seconds, compile_seconds


def _single_loop(params: Nets, X: Any, y: Any, lr: Any, steps: int, log_every: int) -> Any:
    import jax.numpy as jnp
    from jax import lax

    def run(p: Nets, n: int) -> Nets:
        return lax.fori_loop(0, n, lambda _, q: step(jnp, q, X, y, lr), p)

    def block(p: Nets, _: None) -> tuple[Nets, Any]:
        return run(p, log_every), cost(jnp, p, X, y)

    blocks, rest = divmod(steps, log_every)
    params, recorded = lax.scan(block, params, None, length=blocks)
    if rest:
        recorded = jnp.append(recorded, cost(jnp, params, X, y))
        params = run(params, rest)
    return params, jnp.append(recorded, cost(jnp, params, X, y))
