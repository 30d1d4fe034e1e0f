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

Two rearrangements of the same sums save passes over (rows, D1), each held
to the derivation by ``tests/test_sklearn_step.py`` (with and without
them): given X with a column of ones (:meth:`Step.with_ones`, for batches
of at least 4 (D0 + 1) rows) the first layer's bias joins its product,
``[X, 1] [W0; b0]``, and its gradient comes out of the backward's product;
with one hidden layer and one output column, the first layer's gradient is
``((X * delta)^T F) * w`` (F the activation's declared derivative,
:attr:`backprop.kernels.spec.InPlace.factor`), without the outer product
``delta w^T``.

Parameters live in one flat vector ``theta`` (every weight matrix, then every
bias: scikit-learn's ``_pack`` order), each layer a view into it, and so do
the gradients, so L-BFGS reads ``theta`` and ``grad`` directly.

Activations and outputs are read from declarations, never chosen by name
here: a hidden activation is its kernel's declared in-place form
(:class:`backprop.kernels.spec.InPlace`, looked up in the kernel registry;
scikit-learn's "logistic" is the library's "sigmoid", and any activation
registered with :func:`backprop.register_activation` works under its own
name); an output is a row of :data:`OUTPUTS`: the library's head (its
declared output activation) with scikit-learn's loss on probabilities, or,
for Poisson's "exp", an in-place exponential declared in that row.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop.kernels import registry
from backprop.kernels.spec import InPlace

SKLEARN_HIDDEN = ("identity", "logistic", "tanh", "relu")
"""scikit-learn's hidden activation names."""
ALIASES = {"logistic": "sigmoid"}
"""scikit-learn's activation names that differ from the library's kernel names."""
GLOROT_FACTOR = {"logistic": 2.0}
"""scikit-learn's initial bound sqrt(factor / (fan_in + fan_out)): 2 for logistic, else 6."""


def kernel_name(activation: Any) -> Any:
    """The library's kernel name for a scikit-learn activation name (others pass unchanged)."""
    return ALIASES.get(activation, activation) if isinstance(activation, str) else activation


def activation_names() -> tuple[str, ...]:
    """Hidden activations the estimators accept: scikit-learn's, then every other registered one."""
    taken = set(SKLEARN_HIDDEN) | set(ALIASES.values())
    return SKLEARN_HIDDEN + tuple(n for n in registry.activations() if n not in taken)


def hidden_form(activation: Any) -> InPlace:
    """The declared in-place form of a hidden activation; ``ValueError`` listing the names."""
    if not isinstance(activation, str) or activation not in activation_names():
        raise ValueError(
            f"activation must be one of {', '.join(activation_names())}, got {activation!r}"
        )
    return registry.activation(kernel_name(activation)).inplace_form()


def glorot_factor(activation: str) -> float:
    """scikit-learn's factor in the initial bound of a layer feeding ``activation``."""
    return GLOROT_FACTOR.get(activation, 6.0)


def _issparse(X: Any) -> bool:
    return hasattr(X, "tocsr") and not isinstance(X, np.ndarray)


class Step:
    """A network's flat parameters, gradients and per-layer buffers, allocated once.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths [D0, ..., DL].
    activation : str
        Hidden activation, one of :func:`activation_names` (its in-place form
        is read from its declaration).
    out_activation : str
        One of :data:`OUTPUTS` ("softmax", "logistic", "identity", "exp").
    dtype : float32 or float64
    max_rows : int
        Largest batch :meth:`loss_and_grads` will see.
    """

    def __init__(
        self, sizes: Sequence[int], activation: str, out_activation: str, dtype: Any, max_rows: int
    ) -> None:
        self.hidden = hidden_form(activation)
        self.output = output(out_activation)
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
        self.wtmp = np.empty(self.n_weights, dt)  # alpha * W
        # a weight matrix with one column, as a vector: dh = delta w.T is an outer product
        self._wvec = [w.reshape(-1) if w.shape[1] == 1 else None for w in self.W]
        self._apply_output = self.output.inplace or self.output.apply
        # the first layer's weights over its bias, [W0; b0] (D0 + 1, D1): given X with a
        # column of ones after it (with_ones), the bias joins the product, and its
        # gradient comes out of the backward's product, each a pass less over (n, D1)
        self._wb0 = np.empty((self.sizes[0] + 1, self.sizes[1]), dt)
        self._dwb0 = np.empty_like(self._wb0)
        # one hidden layer, one output column: the first layer's gradient without the
        # (n, D1) outer product dh = delta w1^T (_first_layer_by_rows)
        self._rows_first = (
            len(self.W) == 2 and self.sizes[-1] == 1 and self.hidden.factor is not None
        )
        self.max_rows = 0
        self._allocate(max_rows)

    def _allocate(self, rows: int) -> None:
        if rows <= self.max_rows:
            return
        dt, widths = self.dtype, self.sizes[1:]
        self.max_rows = rows
        self.out = [np.empty((rows, d), dt) for d in widths]
        self.delta = [np.empty((rows, d), dt) for d in widths]
        self.bufs = [np.empty((rows, d), dt) for d in widths[:-1]]  # each hidden layer's own
        self.scratch = np.empty((rows, max(widths)), dt)
        self.ones = np.ones(rows, dt)  # column sums as BLAS products: db = 1 @ delta
        self.scaled = np.empty(rows * (self.sizes[0] + 1), dt) if self._rows_first else None
        self.saved: list[Any] = [None] * len(widths)
        self._rows: dict[int, tuple[Any, ...]] = {}

    def _views_of(self, n: int) -> tuple[Any, ...]:
        """The buffers' first n rows, made once per batch size (an epoch has at most two)."""
        got = self._rows.get(n)
        if got is None:
            self._allocate(n)
            if len(self._rows) > 8:
                self._rows.clear()
            widths = self.sizes[1:]
            got = (
                [o[:n] for o in self.out],
                [d[:n] for d in self.delta],
                [b[:n] for b in self.bufs],
                [self.scratch[:n, :d] for d in widths],
                self.ones[:n],
            )
            self._rows[n] = got
        return got

    def set_params(self, coefs: Sequence[Any], intercepts: Sequence[Any]) -> None:
        """Copy scikit-learn style ``coefs_`` / ``intercepts_`` into ``theta``."""
        for W, B, w, b in zip(self.W, self.b, coefs, intercepts, strict=True):
            W[...] = w
            B[...] = np.reshape(b, B.shape)

    def coefs(self) -> list[np.ndarray]:
        return [w.copy() for w in self.W]

    def intercepts(self) -> list[np.ndarray]:
        return [b.copy() for b in self.b]

    def bias_in_product(self, rows: int) -> bool:
        """Whether batches of ``rows`` rows are faster with X's ones column (:meth:`with_ones`):
        it saves a pass over (rows, D1) and costs copying [W0; b0] in and out (two passes
        over (D0 + 1, D1)) per batch. At least 4 (D0 + 1) rows: breast cancer full batch
        (426 rows, D0 = 30) gains 10 %; digits in batches of 64 (D0 = 64) would lose 5 %."""
        return rows >= 4 * (self.sizes[0] + 1)

    def with_ones(self, X: np.ndarray) -> np.ndarray:
        """X (n, D0) followed by a column of ones, (n, D0 + 1), a new array: what
        :meth:`loss_and_grads` takes with ``ones=True`` (dense X only)."""
        Xa = np.empty((X.shape[0], X.shape[1] + 1), self.dtype)
        Xa[:, :-1] = X
        Xa[:, -1] = 1.0
        return Xa

    def forward(self, X: Any) -> np.ndarray:
        """Output activations (n, DL) for X (n, D0), a view valid until the next call."""
        with np.errstate(over="ignore", under="ignore"):
            return self._forward(X)

    def _forward(self, X: Any, ones: bool = False) -> np.ndarray:
        n, last = X.shape[0], len(self.W) - 1
        out, _, bufs, _, _ = self._views_of(n)
        W, b, hidden, saved = self.W, self.b, self.hidden, self.saved
        h = X
        for i in range(last + 1):
            z = out[i]
            if i == 0 and ones:  # [X, 1] [W0; b0]: the bias added in the product, last,
                wb = self._wb0  # as X W0 + b0 rounds (the sum over D0 first, then + b0)
                wb[:-1] = W[0]
                wb[-1] = b[0]
                np.matmul(X, wb, out=z)
            else:
                if i == 0 and _issparse(X):
                    z[...] = X @ W[0]
                else:
                    np.matmul(h, W[i], out=z)
                z += b[i]
            if i < last:
                saved[i] = hidden.forward(z, bufs[i])
            else:
                self._apply_output(z)
            h = z
        return h

    def loss_and_grads(
        self, X: Any, Y: np.ndarray, alpha: float, sw: Any = None, ones: bool = False
    ) -> float:
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
        ones : bool
            X is dense and ends in a column of ones, (n, D0 + 1)
            (:meth:`with_ones`): the first layer's bias joins its products.

        Returns
        -------
        float
            The loss (data term plus penalty), as scikit-learn's ``_backprop``.
        """
        with np.errstate(over="ignore", under="ignore"):
            return self.loss_and_grads_quiet(X, Y, alpha, sw, ones)

    def loss_and_grads_quiet(
        self, X: Any, Y: np.ndarray, alpha: float, sw: Any = None, ones: bool = False
    ) -> float:
        """:meth:`loss_and_grads` for a caller already under ``np.errstate(over="ignore",
        under="ignore")`` (an epoch runs every batch under one)."""
        n, last = X.shape[0], len(self.W) - 1
        p = self._forward(X, ones)
        loss = self.output.loss(Y, p, sw)
        sw_sum = n if sw is None else float(np.sum(sw))
        nw, W, dW, db = self.n_weights, self.W, self.dW, self.db
        if alpha:  # scikit-learn adds 0.5 * alpha * sum(W^2) / sw_sum (0 when alpha is 0)
            w = self.theta[:nw]
            loss += (0.5 * alpha) * float(np.dot(w, w)) / sw_sum
        out, deltas, _, scratch, col_ones = self._views_of(n)
        delta = deltas[last]
        np.subtract(p, Y, out=delta)
        if sw is not None:
            delta *= np.reshape(sw, (-1, 1))
        for i in range(last, -1, -1):
            delta = deltas[i]
            if i == 0 and ones:
                self._split_first(np.matmul(X.T, delta, out=self._dwb0))
                break
            if i == 0:
                below = X
                if _issparse(X):
                    dW[0][...] = X.T @ delta
                else:
                    np.matmul(X.T, delta, out=dW[0])
            else:
                below = out[i - 1]
                np.matmul(below.T, delta, out=dW[i])
            np.matmul(col_ones, delta, out=db[i])
            if i == 1 and self._rows_first and not _issparse(X):
                self._first_layer_by_rows(X, delta, out[0], scratch[0], ones)
                break
            if i > 0:
                dh, wvec = deltas[i - 1], self._wvec[i]
                if wvec is not None:  # an outer product: BLAS is slow at k = 1, einsum
                    # a fifth faster than the broadcast product (n, 1) * (1, H)
                    np.einsum("i,j->ij", delta.reshape(-1), wvec, out=dh)
                else:
                    np.matmul(delta, W[i].T, out=dh)
                self.hidden.backward(dh, below, self.saved[i - 1], scratch[i - 1])
        # scikit-learn's dW = (h.T @ delta + alpha W) / sw_sum and db = sum(delta) / sw_sum,
        # each element the same two roundings, in two passes over the flat vector
        if alpha:
            np.multiply(self.theta[:nw], alpha, out=self.wtmp)
            self.grad[:nw] += self.wtmp
        if math.frexp(sw_sum)[0] == 0.5:  # a power of two: its reciprocal is exact, and
            self.grad *= 1.0 / sw_sum  # the product rounds as the quotient, at half the time
        else:
            self.grad /= sw_sum
        return loss

    def _split_first(self, dwb: np.ndarray) -> None:
        """The first layer's [dW0; db0] (D0 + 1, D1) into the flat gradient."""
        self.dW[0][...] = dwb[:-1]
        self.db[0][...] = dwb[-1]

    def _first_layer_by_rows(
        self, X: np.ndarray, delta: np.ndarray, h: np.ndarray, scratch: np.ndarray, ones: bool
    ) -> None:
        """dW0 and db0 of a network with one hidden layer and one output column.

        With delta (n, 1) the output's error, w (H,) the output weights and F
        (n, H) the hidden derivative (the form's declared ``factor``), the
        hidden error is dh = (delta w^T) * F, and
        ``dW0[k, j] = sum_i X[i, k] delta[i] F[i, j] w[j]``: dW0 = ((X * delta)^T F) * w,
        db0 = (delta^T F) * w. Scaling X's rows (n, D0) by delta replaces the
        outer product and the product by F over (n, H); the sum is the same,
        associated otherwise (``tests/test_sklearn_step.py`` holds it to the
        derivation).
        """
        n, d = X.shape
        F = self.hidden.factor(h, self.saved[0], scratch)
        scaled = self.scaled[: n * d].reshape(n, d)  # type: ignore[index]
        np.multiply(X, delta, out=scaled)
        w = self._wvec[1]
        if ones:  # the ones column scaled is delta itself: db0 / w is its row of the product
            np.matmul(scaled.T, F, out=self._dwb0)
            self._dwb0 *= w
            self._split_first(self._dwb0)
        else:
            dW0, db0 = self.dW[0], self.db[0]
            np.matmul(scaled.T, F, out=dW0)
            dW0 *= w
            np.matmul(delta.reshape(-1), F, out=db0)
            db0 *= w


def _squared_error(Y: np.ndarray, p: np.ndarray, sw: Any) -> float:
    """scikit-learn's squared error: half the mean over rows and outputs."""
    r = Y - p
    r *= r
    return float(0.5 * _mean_rows(r, sw).mean())


def _poisson(Y: np.ndarray, p: np.ndarray, sw: Any) -> float:
    """scikit-learn's half Poisson deviance, summed over outputs."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(Y > 0, Y / p, 1.0)
    term = np.where(Y > 0, Y * np.log(ratio), 0.0) - Y + p
    return float(_mean_rows(term, sw).sum())


_EPS = {np.dtype(t): np.finfo(t).eps for t in (np.float16, np.float32, np.float64)}


def _clipped(p: np.ndarray) -> np.ndarray:
    eps = _EPS.get(p.dtype) or np.finfo(p.dtype).eps
    q = np.maximum(p, eps)  # np.clip(p, eps, 1 - eps), without its wrapper
    np.minimum(q, 1 - eps, out=q)
    return q


def _binary_log_loss(Y: np.ndarray, p: np.ndarray, sw: Any) -> float:
    """Binary and multilabel: every output its own BCE, from clipped probabilities."""
    q = _clipped(p)
    np.log(np.where(Y, q, 1 - q), out=q)  # log q where y = 1, log(1 - q) where y = 0
    if sw is None:  # the sum over rows and outputs, over the rows
        return -float(np.add.reduce(q, axis=None)) / q.shape[0]
    return float(-_mean_rows(q, sw).sum())


def _log_loss(Y: np.ndarray, p: np.ndarray, sw: Any) -> float:
    """Multiclass cross-entropy from clipped probabilities: scikit-learn's xlogy(y, q)
    is y log q (q >= eps, so y = 0 gives 0); unweighted, the sum is one dot product."""
    q = _clipped(p)
    np.log(q, out=q)
    if sw is None:
        return -float(np.vdot(Y, q)) / q.shape[0]
    q *= Y
    return float(-_mean_rows(q, sw).sum())


def _mean_rows(a: np.ndarray, sw: Any) -> np.ndarray:
    """Without weights ``sum(axis=0) / n``, what ``np.average`` computes, without its overhead."""
    if sw is None:
        return np.add.reduce(a, axis=0) / a.shape[0]
    return np.average(a, weights=sw, axis=0)


def _exp_inplace(z: np.ndarray) -> None:
    np.exp(z, out=z)


def _logistic_inplace(z: np.ndarray) -> None:
    # scikit-learn's expit, 1 / (1 + exp(-z)), in four passes without a temporary;
    # exp overflows to inf below z = -709 (-88 in float32) and the reciprocal is
    # then 0 (run under errstate(over="ignore"), as the step runs)
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)


def _softmax_inplace(z: np.ndarray) -> None:
    # scikit-learn's softmax, operation for operation: exp(z - max) / sum, per row
    z -= np.maximum.reduce(z, axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= np.add.reduce(z, axis=1, keepdims=True)


def _unchanged(z: np.ndarray) -> None:
    return None


@dataclass(frozen=True)
class Output:
    """One of scikit-learn's output activations with the loss it pairs it with.

    ``head``: the library's output head whose declared activation
    (:attr:`backprop.kernels.spec.Head.predict`) this output is, or None for
    an output declared here alone (Poisson's exp), which the JAX backend and
    model files do not run. ``inplace``: the activation in place on the
    logits (n, DL), the NumPy step's form (a transcription of the head's
    ``predict``, or the only form when there is no head); None: the head's
    ``predict``, copied back. ``loss(Y, p, sw)``:
    scikit-learn's loss on the output's values p (n, DL), targets Y and row
    weights sw (or None). The output gradient is ``p - y`` for every row
    (canonical links). ``loss_factor``, ``per_output`` and ``grad_factor``
    turn the head's kernel loss and gradient into scikit-learn's (the JAX
    backend): loss times ``loss_factor`` (divided by the outputs when
    ``per_output``), gradient times ``grad_factor``.
    """

    head: str | None
    loss: Callable[[np.ndarray, np.ndarray, Any], float]
    inplace: Callable[[np.ndarray], None] | None = None
    loss_factor: float = 1.0
    per_output: bool = False
    grad_factor: float = 1.0

    def apply(self, z: np.ndarray) -> None:
        """The output activation, in place on z (n, DL)."""
        if self.inplace is not None:
            self.inplace(z)
        else:
            z[...] = registry.head(self.head).predict(np, z)


OUTPUTS = {
    "softmax": Output("softmax", _log_loss, inplace=_softmax_inplace),
    "logistic": Output("sigmoid", _binary_log_loss, inplace=_logistic_inplace),
    "identity": Output(
        "identity",
        _squared_error,
        inplace=_unchanged,
        loss_factor=0.5,
        per_output=True,
        grad_factor=0.5,
    ),
    "exp": Output(None, _poisson, inplace=_exp_inplace),
}
"""scikit-learn's output activations: the head each is, and scikit-learn's loss for it."""


def output(name: Any) -> Output:
    """The row of :data:`OUTPUTS` called ``name``; ``ValueError`` listing them otherwise."""
    if not isinstance(name, str) or name not in OUTPUTS:
        raise ValueError(f"out_activation must be one of {', '.join(OUTPUTS)}, got {name!r}")
    return OUTPUTS[name]


def activate_hidden(activation: str, z: np.ndarray) -> None:
    """A hidden activation's declared in-place form on z (n, D)."""
    with np.errstate(over="ignore", under="ignore"):
        hidden_form(activation).forward(z, np.empty_like(z))


def activate_output(out_activation: str, z: np.ndarray) -> None:
    """An output activation (a row of :data:`OUTPUTS`) in place on z (n, DL)."""
    with np.errstate(over="ignore", under="ignore"):
        output(out_activation).apply(z)


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

    @classmethod
    def for_estimator(cls, est: Any, size: int, dtype: Any) -> SGDOptimizer:
        """The optimizer an estimator's parameters ask for, over ``size`` parameters."""
        return cls(
            size, dtype, est.learning_rate_init, est.learning_rate, est.momentum,
            est.nesterovs_momentum, est.power_t,
        )  # fmt: skip

    def state(self) -> tuple[np.ndarray, ...]:
        """The arrays the update carries (the JAX backend copies them to and from the device)."""
        return (self.velocity,)

    def epoch_rate(self) -> float:
        """The learning rate a compiled epoch is given."""
        return self.learning_rate

    def after_epoch(self, n_steps: int) -> None:
        """Bookkeeping after a compiled epoch of ``n_steps`` updates (none for SGD)."""

    def set_epoch_rate(self, rate: float) -> None:
        """Take the rate a compiled chunk of epochs ended with."""
        self.learning_rate = rate

    @staticmethod
    def pure(est: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """The update on ``xp`` arrays, ``(xp, theta, state, g, lr, t) -> (theta, state, t)``,
        and the hyperparameters it closes over (a cache key)."""
        mu, nesterov = float(est.momentum), bool(est.nesterovs_momentum)

        def update(xp: Any, theta: Any, state: Any, g: Any, lr: Any, t: Any) -> Any:
            (v,) = state
            upd = mu * v - lr * g
            v = upd
            if nesterov:
                upd = mu * v - lr * g
            return theta + upd, (v,), t

        return update, ("sgd", mu, nesterov)

    def rate_after(self, time_step: int) -> float | None:
        """The rate an epoch's end sets once ``time_step`` samples are seen ("invscaling"),
        or None where only the stopping rule changes it."""
        if self.lr_schedule == "invscaling":
            return float(self.learning_rate_init) / (time_step + 1) ** self.power_t
        return None

    def iteration_ends(self, time_step: int) -> None:
        rate = self.rate_after(time_step)
        if rate is not None:
            self.learning_rate = rate

    @staticmethod
    def pure_trigger(est: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """:meth:`trigger_stopping` on ``xp`` arrays, ``(xp, lr, fire) -> (lr, stop)``
        (``fire``: the no-improvement rule fired), and what it closes over (a cache key)."""
        adaptive = est.learning_rate == "adaptive"

        def trigger(xp: Any, lr: Any, fire: Any) -> Any:
            if not adaptive:
                return lr, fire
            stop = fire & (lr <= 1e-6)
            return xp.where(fire & ~stop, lr / 5.0, lr), stop

        return trigger, ("sgd", adaptive)

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
        self.t = t = self.t + 1
        m, v, tmp, step, b1, b2 = self.m, self.v, self._tmp, self._tmp2, self.beta_1, self.beta_2
        m *= b1
        np.multiply(grad, 1 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1 - b2
        v += tmp
        # a NumPy float64, as scikit-learn's np.sqrt makes it (the product below is
        # then rounded once from float64 for float32 parameters)
        self.learning_rate = lr = np.float64(
            self.learning_rate_init * math.sqrt(1 - b2**t) / (1 - b1**t)
        )
        np.multiply(m, -lr, out=step)
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        step /= tmp
        theta += step

    @classmethod
    def for_estimator(cls, est: Any, size: int, dtype: Any) -> AdamOptimizer:
        """The optimizer an estimator's parameters ask for, over ``size`` parameters."""
        return cls(size, dtype, est.learning_rate_init, est.beta_1, est.beta_2, est.epsilon)

    def state(self) -> tuple[np.ndarray, ...]:
        """The arrays the update carries (the JAX backend copies them to and from the device)."""
        return (self.m, self.v)

    def epoch_rate(self) -> float:
        """The learning rate a compiled epoch is given (it applies the bias correction itself)."""
        return self.learning_rate_init

    def set_epoch_rate(self, rate: float) -> None:
        """A compiled chunk of epochs leaves Adam's rate as it was (:meth:`after_epoch` sets it)."""

    def after_epoch(self, n_steps: int) -> None:
        """Count a compiled epoch's ``n_steps`` updates and set the rate as :meth:`update` does."""
        self.t += n_steps
        self.learning_rate = (
            self.learning_rate_init * np.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
        )

    @staticmethod
    def pure(est: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """The update on ``xp`` arrays, ``(xp, theta, state, g, lr, t) -> (theta, state, t)``,
        and the hyperparameters it closes over (a cache key)."""
        b1, b2, eps = float(est.beta_1), float(est.beta_2), float(est.epsilon)

        def update(xp: Any, theta: Any, state: Any, g: Any, lr: Any, t: Any) -> Any:
            m, v = state
            t = t + 1
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * (g * g)
            lr_t = lr * xp.sqrt(1 - b2**t) / (1 - b1**t)
            return theta + (-lr_t * m) / (xp.sqrt(v) + eps), (m, v), t

        return update, ("adam", b1, b2, eps)

    def rate_after(self, time_step: int) -> float | None:
        """Adam's rate is set by its updates, not by the epoch's end."""
        return None

    def iteration_ends(self, time_step: int) -> None:
        pass

    @staticmethod
    def pure_trigger(est: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """:meth:`trigger_stopping` on ``xp`` arrays: the rule firing stops."""

        def trigger(xp: Any, lr: Any, fire: Any) -> Any:
            return lr, fire

        return trigger, ("adam",)

    def trigger_stopping(self, msg: str, verbose: Any) -> bool:
        if verbose:
            print(msg + " Stopping.")
        return True


SOLVERS = {"sgd": SGDOptimizer, "adam": AdamOptimizer}
"""scikit-learn's stochastic solvers: each one class, its in-place update and its pure one."""
