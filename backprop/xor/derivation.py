"""The notes' manual XOR loop, corrected: a 2-H-1 sigmoid network trained by
hand-written backpropagation, one line per parameter.

Forward, as the notes wrote it::

    l1 = X @ w1 + b1        a1 = sigmoid(l1)
    l2 = a1 @ w2 + b2       y_pred = sigmoid(l2)
    cost = mean BCE(y_pred, y)

:func:`xor_loss_and_grads` is the reference derivation of this network: the
kernels' forward halves, then their backward halves in reverse order. The
cost is taken on the logits ``l2`` (``bce_with_logits``: the same value as
BCE on ``sigmoid(l2)``, without a clip), so its gradient is ``(sigmoid(l2) -
y) / N`` exactly, also where ``sigmoid(l2)`` rounds to 0 or 1 and a
probability-space BCE would stop learning. :func:`xor_step` applies the four
updates, written out. No autodiff anywhere.

:func:`backprop.train_xor_manual` (in :mod:`backprop.xor.manual`) runs this
derivation fast: NumPy through :mod:`backprop.xor.inplace` (in place, in
buffers allocated once), JAX through :mod:`backprop.xor.single` (whole
arrays, the whole loop one compiled computation). Both are
transcriptions of :func:`xor_loss_and_grads`, held to it by
``tests/test_fast.py`` on random and saturated inputs.
"""

from typing import Any, NamedTuple

import numpy as np

from backprop._validate import check_dtype, check_positive_int, check_seed
from backprop.kernels import Backend

DEFAULT_LR = 1.0
MAX_HIDDEN = 4096
"""Widest hidden layer train_xor_manual accepts (its loops are written for small nets)."""


class XorParams(NamedTuple):
    """Parameters of the 2-H-1 network: w1 (2, H), b1 (H,), w2 (H, 1), b2 (1,).

    A NamedTuple, so JAX treats it as a pytree.
    """

    w1: Any
    b1: Any
    w2: Any
    b2: Any


def xor_forward(K: Backend, params: XorParams, X: Any) -> tuple[Any, tuple[Any, ...]]:
    """Forward pass: X (N, 2) -> output logits l2 (N, 1), plus the caches.

    ``y_pred = sigmoid(l2)`` are the probabilities (see :func:`xor_predict`).
    """
    w1, b1, w2, b2 = params
    l1_lin, c_mm1 = K.matmul_forward(X, w1)
    l1, c_b1 = K.add_bias_forward(l1_lin, b1)
    a1, c_s1 = K.sigmoid_forward(l1)
    l2_lin, c_mm2 = K.matmul_forward(a1, w2)
    l2, c_b2 = K.add_bias_forward(l2_lin, b2)
    return l2, (c_mm1, c_b1, c_s1, c_mm2, c_b2)


def xor_predict(K: Backend, params: XorParams, X: Any) -> Any:
    """Probabilities y_pred = sigmoid(l2), (N, 1)."""
    return K.sigmoid_forward(xor_forward(K, params, X)[0])[0]


def xor_loss_and_grads(K: Backend, params: XorParams, X: Any, y: Any) -> tuple[Any, XorParams]:
    """Cost (mean BCE) and its gradient with respect to each parameter.

    Parameters
    ----------
    K : Backend
        Kernels of "numpy" or "jax".
    params : XorParams
        w1 (D, H), b1 (H,), w2 (H, 1), b2 (1,).
    X : array (N, D)
    y : array (N, 1), targets in [0, 1]

    Returns
    -------
    cost : 0-d array
    grads : XorParams(dw1, db1, dw2, db2), each with its parameter's shape

    Notes
    -----
    Backward, in reverse order of the forward: BCE on the logits gives
    d_l2 = (sigmoid(l2) - y) / N (BCE's 1 / (p (1 - p)) times the output
    sigmoid's p (1 - p), cancelled); the bias and matmul split it into db2,
    dw2 = a1.T @ d_l2 and d_a1 = d_l2 @ w2.T; times sigma'(l1) from the
    cached a1 (the hidden layer's sigma' is the factor the notes' loop is
    easiest to lose) that is d_l1, which gives db1 and dw1 = X.T @ d_l1.
    """
    l2, (c_mm1, c_b1, c_s1, c_mm2, c_b2) = xor_forward(K, params, X)
    cost, c_cost = K.bce_with_logits_forward(l2, y)

    d_l2 = K.bce_with_logits_backward(1.0, c_cost)
    d_l2_lin, d_b2 = K.add_bias_backward(d_l2, c_b2)
    d_a1, d_w2 = K.matmul_backward(d_l2_lin, c_mm2)
    d_l1 = K.sigmoid_backward(d_a1, c_s1)
    d_l1_lin, d_b1 = K.add_bias_backward(d_l1, c_b1)
    d_w1 = K.matmul_backward_weights(d_l1_lin, c_mm1)  # X is data: no dX needed
    return cost, XorParams(d_w1, d_b1, d_w2, d_b2)


def xor_step(K: Backend, params: XorParams, X: Any, y: Any, lr: Any) -> tuple[XorParams, Any]:
    """One step of plain gradient descent; returns ``(new_params, cost before the step)``."""
    w1, b1, w2, b2 = params
    cost, (d_w1, d_b1, d_w2, d_b2) = xor_loss_and_grads(K, params, X, y)
    w1 = w1 - lr * d_w1
    b1 = b1 - lr * d_b1
    w2 = w2 - lr * d_w2
    b2 = b2 - lr * d_b2
    return XorParams(w1, b1, w2, b2), cost


def init_xor_params(hidden: int = 2, seed: int = 0, dtype: Any = "float32") -> XorParams:
    """Starting parameters: weights drawn from N(0, 1), biases zero.

    Parameters
    ----------
    hidden : int
        Hidden units H.
    seed : int
        Drawn with NumPy's ``default_rng(seed)`` whatever the backend, so
        NumPy and JAX runs with the same seed start from the same arrays.
    dtype : "float32" or "float64"

    Returns
    -------
    XorParams
        w1 (2, H), b1 (H,), w2 (H, 1), b2 (1,).
    """
    hidden = check_positive_int("hidden", hidden, MAX_HIDDEN)
    dt = check_dtype(dtype)
    rng = np.random.default_rng(check_seed(seed))
    w1 = rng.standard_normal((2, hidden)).astype(dt)
    w2 = rng.standard_normal((hidden, 1)).astype(dt)
    return XorParams(w1, np.zeros(hidden, dt), w2, np.zeros(1, dt))
