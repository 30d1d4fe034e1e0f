"""scikit-learn's MLP step on NumPy, in place: the arithmetic of
``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``, written into
buffers allocated once, for :mod:`backprop.estimator`.

The gradient is :func:`backprop.nets.loss_and_grads`'s (``tests/test_sklearn_step.py``
holds the two together, with and without row weights); what this module adds
is scikit-learn's exact conventions, which the estimators must reproduce to
rounding:

- the loss is computed from the output *probabilities*, clipped to
  [eps, 1 - eps] (eps the dtype's machine epsilon) for the log losses, as
  scikit-learn's ``LOSS_FUNCTIONS`` do; the binary/multilabel log loss sums
  over the outputs, the squared error is ``0.5 *`` the mean over rows and
  outputs, the Poisson loss is the half deviance summed over outputs;
- the output gradient is ``p - y`` for every head (canonical link), times the
  row's sample weight, and every gradient is divided by ``sw_sum`` (the rows,
  or the sum of the sample weights); the L2 term adds ``alpha * W`` before
  that division, ``0.5 * alpha * sum(W**2) / sw_sum`` to the loss;
- the optimizers update the flat parameter vector with scikit-learn's
  ``SGDOptimizer`` / ``AdamOptimizer`` formulas, operation for operation
  (``mu * v - lr * g``; Adam's ``-lr_t * m / (sqrt(v) + eps)``), and keep
  its learning-rate schedules (constant, invscaling, adaptive).

Parameters live in one flat vector ``theta`` (every weight matrix, then every
bias: scikit-learn's ``_pack`` order), each layer a view into it, and so do
the gradients, so L-BFGS reads ``theta`` and ``grad`` directly.

Hidden activations are applied in place and their derivatives read from the
outputs: logistic ``a (1 - a)``, tanh ``1 - a^2``, relu ``[a != 0]``. The
logistic is ``scipy.special.expit`` when SciPy is there (scikit-learn's
choice), else ``exp(-logaddexp(0, -z))``; neither overflows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

try:  # scikit-learn's logistic, bit for bit
    from scipy.special import expit as _expit
except ImportError:  # pragma: no cover

    def _expit(z: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.logaddexp(0, -z, out=out)
        np.negative(out, out=out)
        return np.exp(out, out=out)


HIDDEN = ("identity", "logistic", "tanh", "relu")
"""scikit-learn's hidden activation names."""
OUTPUTS = {
    "softmax": "log_loss",
    "logistic": "binary_log_loss",
    "identity": "squared_error",
    "exp": "poisson",
}
"""Output activation -> the loss scikit-learn pairs with it."""


def _issparse(X: Any) -> bool:
    return hasattr(X, "tocsr") and not isinstance(X, np.ndarray)


class Step:
    """A network's flat parameters, gradients and per-layer buffers, allocated once.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths [D0, ..., DL].
    activation : str
        Hidden activation, one of :data:`HIDDEN`.
    out_activation : str
        One of :data:`OUTPUTS` ("softmax", "logistic", "identity", "exp").
    dtype : float32 or float64
    max_rows : int
        Largest batch :meth:`loss_and_grads` will see.
    """

    def __init__(
        self, sizes: Sequence[int], activation: str, out_activation: str, dtype: Any, max_rows: int
    ) -> None:
        if activation not in HIDDEN:
            raise ValueError(f"activation must be one of {', '.join(HIDDEN)}, got {activation!r}")
        if out_activation not in OUTPUTS:
            raise ValueError(
                f"out_activation must be one of {', '.join(OUTPUTS)}, got {out_activation!r}"
            )
        dt = np.dtype(dtype)
        self.sizes, self.activation, self.out_activation = list(sizes), activation, out_activation
        self.dtype = dt
        self.shapes = list(itertools.pairwise(self.sizes))
        self.n_weights = sum(a * b for a, b in self.shapes)
        total = self.n_weights + sum(self.sizes[1:])
        self.theta = np.zeros(total, dt)
        self.grad = np.zeros(total, dt)
        self.W, self.b = _views(self.theta, self.shapes)
        self.dW, self.db = _views(self.grad, self.shapes)
        self.max_rows = 0
        self._allocate(max_rows)

    def _allocate(self, rows: int) -> None:
        if rows <= self.max_rows:
            return
        dt, widths = self.dtype, self.sizes[1:]
        self.max_rows = rows
        self.out = [np.empty((rows, d), dt) for d in widths]
        self.delta = [np.empty((rows, d), dt) for d in widths]
        self.scratch = np.empty((rows, max(widths)), dt)
        self.mask = np.empty((rows, max(widths)), bool)

    def set_params(self, coefs: Sequence[Any], intercepts: Sequence[Any]) -> None:
        """Copy scikit-learn style ``coefs_`` / ``intercepts_`` into ``theta``."""
        for W, B, w, b in zip(self.W, self.b, coefs, intercepts, strict=True):
            W[...] = w
            B[...] = np.reshape(b, B.shape)

    def coefs(self) -> list[np.ndarray]:
        return [w.copy() for w in self.W]

    def intercepts(self) -> list[np.ndarray]:
        return [b.copy() for b in self.b]

    def forward(self, X: Any) -> np.ndarray:
        """Output activations (n, DL) for X (n, D0), a view valid until the next call."""
        n, last = X.shape[0], len(self.W) - 1
        self._allocate(n)
        h = X
        for i in range(last + 1):
            z = self.out[i][:n]
            if _issparse(h):
                z[...] = h @ self.W[i]
            else:
                np.matmul(h, self.W[i], out=z)
            z += self.b[i]
            _activate(self.activation if i < last else self.out_activation, z, self.scratch)
            h = z
        return h

    def loss_and_grads(self, X: Any, Y: np.ndarray, alpha: float, sw: Any = None) -> float:
        """scikit-learn's loss at ``theta``; its gradient into ``grad``.

        Parameters
        ----------
        X : array or SciPy sparse matrix (n, D0)
        Y : array (n, DL)
            Targets: 0/1 indicator columns for the log losses, real values for
            the squared error, values >= 0 for Poisson.
        alpha : float
            L2 strength; the penalty is ``0.5 * alpha * sum(W^2) / sw_sum``.
        sw : array (n,) or None
            Sample weights; ``sw_sum`` is their sum (n without them).

        Returns
        -------
        float
            The loss (data term plus penalty), as scikit-learn's ``_backprop``.
        """
        n, last = X.shape[0], len(self.W) - 1
        p = self.forward(X)
        loss = _loss(self.out_activation, Y, p, sw)
        sw_sum = n if sw is None else float(np.sum(sw))
        if alpha:  # scikit-learn adds 0.5 * alpha * sum(W^2) / sw_sum (0 when alpha is 0)
            w = self.theta[: self.n_weights]
            loss += (0.5 * alpha) * float(np.dot(w, w)) / sw_sum
        delta = self.delta[last][:n]
        np.subtract(p, Y, out=delta)
        if sw is not None:
            delta *= np.reshape(sw, (-1, 1))
        for i in range(last, -1, -1):
            delta = self.delta[i][:n]
            below = X if i == 0 else self.out[i - 1][:n]
            if _issparse(below):
                self.dW[i][...] = below.T @ delta
            else:
                np.matmul(below.T, delta, out=self.dW[i])
            if alpha:
                self.dW[i] += alpha * self.W[i]
            self.dW[i] /= sw_sum
            np.add.reduce(delta, axis=0, out=self.db[i])
            self.db[i] /= sw_sum
            if i > 0:
                dh = self.delta[i - 1][:n]
                if self.W[i].shape[1] == 1:  # an outer product: BLAS is slow at k = 1
                    np.multiply(delta, self.W[i].T, out=dh)
                else:
                    np.matmul(delta, self.W[i].T, out=dh)
                _derivative(self.activation, below, dh, self.scratch, self.mask)
        return loss


def _loss(out_activation: str, Y: np.ndarray, p: np.ndarray, sw: Any) -> float:
    """scikit-learn's ``LOSS_FUNCTIONS`` on probabilities (or predictions) p (n, DL).

    Without weights the mean over rows is ``sum(axis=0) / n``, which is what
    ``np.average`` computes, without its overhead.
    """
    if out_activation == "identity":
        r = Y - p
        r *= r
        return float(0.5 * _mean_rows(r, sw).mean())
    if out_activation == "exp":
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(Y > 0, Y / p, 1.0)
        term = np.where(Y > 0, Y * np.log(ratio), 0.0) - Y + p
        return float(_mean_rows(term, sw).sum())
    eps = np.finfo(p.dtype).eps
    q = np.maximum(p, eps)  # np.clip(p, eps, 1 - eps), without its wrapper
    np.minimum(q, 1 - eps, out=q)
    if out_activation == "logistic":  # binary and multilabel: every output its own BCE
        np.log(np.where(Y, q, 1 - q), out=q)  # log q where y = 1, log(1 - q) where y = 0
    else:
        np.log(q, out=q)
        q[~Y.astype(bool)] = 0.0
    return float(-_mean_rows(q, sw).sum())


def _mean_rows(a: np.ndarray, sw: Any) -> np.ndarray:
    if sw is None:
        return np.add.reduce(a, axis=0) / a.shape[0]
    return np.average(a, weights=sw, axis=0)


def _activate(name: str, z: np.ndarray, scratch: np.ndarray) -> None:
    """An activation, in place on z (n, D)."""
    if name == "relu":
        np.maximum(z, 0, out=z)
    elif name == "tanh":
        np.tanh(z, out=z)
    elif name == "logistic":
        _expit(z, out=z)
    elif name == "exp":
        np.exp(z, out=z)
    elif name == "softmax":  # scikit-learn's inplace_softmax: shift by the row max
        z -= z.max(axis=1)[:, None]
        np.exp(z, out=z)
        z /= z.sum(axis=1)[:, None]
    # identity: nothing


def _derivative(name: str, a: np.ndarray, dh: np.ndarray, scratch: Any, mask: Any) -> None:
    """dh *= the hidden activation's derivative, read from its output a (in place)."""
    n, d = a.shape
    if name == "relu":  # dh * [a > 0]: scikit-learn's dh[a == 0] = 0 (up to the sign of 0)
        m = mask[:n, :d]
        np.greater(a, 0, out=m)
        np.multiply(dh, m, out=dh)
    elif name == "tanh":
        s = scratch[:n, :d]
        np.multiply(a, a, out=s)
        np.subtract(1, s, out=s)
        dh *= s
    elif name == "logistic":
        s = scratch[:n, :d]
        dh *= a
        np.subtract(1, a, out=s)
        dh *= s


def _views(flat: np.ndarray, shapes: list[tuple[int, int]]) -> tuple[list[Any], list[Any]]:
    """Weight matrices first, then biases (scikit-learn's ``_pack`` order), as views."""
    ws, bs, offset = [], [], 0
    for a, b in shapes:
        ws.append(flat[offset : offset + a * b].reshape(a, b))
        offset += a * b
    for _, b in shapes:
        bs.append(flat[offset : offset + b])
        offset += b
    return ws, bs


# --- optimizers: scikit-learn's, on the flat vector ---------------------------------


class SGDOptimizer:
    """scikit-learn's ``SGDOptimizer``: momentum (Nesterov's or not) and its schedules.

    ``v = momentum * v - lr * g``; ``theta += v``, or with Nesterov
    ``theta += momentum * v - lr * g`` (the new v). ``learning_rate`` is the
    current rate: "invscaling" sets it to ``lr_init / (t + 1) ** power_t`` at
    every epoch's end (t: samples seen), "adaptive" divides it by 5 each
    time the no-improvement rule fires, until it is at most 1e-6.
    """

    def __init__(
        self,
        size: int,
        dtype: Any,
        learning_rate_init: float,
        lr_schedule: str,
        momentum: float,
        nesterov: bool,
        power_t: float,
    ) -> None:
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule, self.momentum, self.nesterov, self.power_t = (
            lr_schedule,
            momentum,
            nesterov,
            power_t,
        )
        self.velocity = np.zeros(size, dtype)
        self._tmp = np.empty(size, dtype)
        self._tmp2 = np.empty(size, dtype)

    def update(self, theta: np.ndarray, grad: np.ndarray) -> None:
        v, tmp = self.velocity, self._tmp
        v *= self.momentum
        np.multiply(grad, self.learning_rate, out=tmp)
        v -= tmp
        if self.nesterov:
            step = self._tmp2
            np.multiply(v, self.momentum, out=step)
            step -= tmp
            theta += step
        else:
            theta += v

    def iteration_ends(self, time_step: int) -> None:
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose: Any) -> bool:
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + f" Setting learning rate to {self.learning_rate:f}")
        return False


class AdamOptimizer:
    """scikit-learn's ``AdamOptimizer``: ``theta += -lr_t * m / (sqrt(v) + eps)``,
    ``lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)``."""

    def __init__(
        self,
        size: int,
        dtype: Any,
        learning_rate_init: float,
        beta_1: float,
        beta_2: float,
        epsilon: float,
    ) -> None:
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.m = np.zeros(size, dtype)
        self.v = np.zeros(size, dtype)
        self._tmp = np.empty(size, dtype)
        self._tmp2 = np.empty(size, dtype)

    def update(self, theta: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        m, v, tmp, step = self.m, self.v, self._tmp, self._tmp2
        m *= self.beta_1
        np.multiply(grad, 1 - self.beta_1, out=tmp)
        m += tmp
        v *= self.beta_2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1 - self.beta_2
        v += tmp
        self.learning_rate = (
            self.learning_rate_init * np.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
        )
        np.multiply(m, -self.learning_rate, out=step)
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        step /= tmp
        theta += step

    def iteration_ends(self, time_step: int) -> None:
        pass

    def trigger_stopping(self, msg: str, verbose: Any) -> bool:
        if verbose:
            print(msg + " Stopping.")
        return True
