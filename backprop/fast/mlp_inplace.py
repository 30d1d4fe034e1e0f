"""The NumPy training step of any dense network, in place: a transcription of
:func:`backprop.nets.loss_and_grads` followed by :func:`backprop.optim.update`.

The reference chains the kernels, and every forward and backward half
returns fresh arrays. At the sizes real data brings (a batch of 64 rows,
128 hidden units) NumPy's per-call overhead and fresh allocations cost as
much as the matrix products, so this step does the same arithmetic into
buffers allocated once:

- all parameters live in one flat vector (every weight matrix first, then
  every bias), each ``w`` and ``b`` a view into it, and so do their
  gradients: the optimizer updates all of them in a handful of whole-vector
  operations, and the L2 penalty is one product over the weights' part;
- each layer's pre-activation is computed into its buffer (``h @ w`` with
  ``out=``, then ``+= b``) and the activation applied in place, so the
  buffer holds the layer's output, from which every activation's derivative
  is read: sigma' = a (1 - a), tanh' = 1 - a^2, relu' = [a > 0];
- the output head is the reference's fused kernel written out: d loss / dz
  = w (sigma(z) - y), w (softmax(z) - y) or 2 w (z - y), with w = 1 / N
  (divided by the outputs for the elementwise heads);
- backward per layer from the top: ``dw = h.T @ dz`` into the gradient
  vector, ``db = 1 @ dz``, then ``dh = dz @ w.T`` into the layer below's
  gradient buffer, times the derivative, in place.

Forward sigmoid ``1 / (1 + exp(-z))``: exp overflows to ``inf`` below
z = -88 (float32) and the quotient is then 0, the correctly rounded value;
the step runs under ``np.errstate(over="ignore")``. ``tests/test_fast.py``
holds the loss and every gradient to the reference for every activation and
head, at random and saturated points, and each optimizer's update to
:func:`backprop.optim.update`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop.nets import Layer, Net
from backprop.optim import Optimizer


class InPlaceMLP:
    """A network's parameters, gradients, optimizer state and activations, allocated once.

    Parameters
    ----------
    net : Net
    params : sequence of Layer
        Starting parameters (copied).
    opt : Optimizer
    max_rows : int
        The largest batch the step will see.
    dtype : float32 or float64
    """

    def __init__(
        self, net: Net, params: Sequence[Layer], opt: Optimizer, max_rows: int, dtype: Any
    ) -> None:
        dt = np.dtype(dtype)
        self.net, self.opt = net, opt
        shapes = list(itertools.pairwise(net.sizes))
        self.n_weights = sum(a * b for a, b in shapes)
        total = self.n_weights + sum(net.sizes[1:])
        self.theta = np.empty(total, dt)
        self.grad = np.empty(total, dt)
        self.W, self.b = _views(self.theta, shapes)
        self.dW, self.db = _views(self.grad, shapes)
        for (w, b), W, B in zip(params, self.W, self.b, strict=True):
            W[...], B[...] = w, b
        self.out = [np.empty((max_rows, d), dt) for d in net.sizes[1:]]
        self.d_out = [np.empty((max_rows, d), dt) for d in net.sizes[1:]]
        self.scratch = np.empty((max_rows, max(net.sizes[1:])), dt)
        self.mask = np.empty((max_rows, max(net.sizes[1:])), bool)
        self.ones = np.ones(max_rows, dt)
        self.tmp = np.empty(total, dt)
        self.tmp2 = np.empty(total, dt) if opt.name == "momentum" and opt.nesterov else None
        self.t = 0
        self.first = np.zeros(total, dt) if opt.name in ("momentum", "adam") else None
        self.second = np.zeros(total, dt) if opt.name == "adam" else None

    def params(self) -> tuple[Layer, ...]:
        """Copies of the current parameters."""
        return tuple(Layer(w.copy(), b.copy()) for w, b in zip(self.W, self.b, strict=True))

    def W_and_b(self) -> tuple[Layer, ...]:
        """The current parameters as views (valid until the next :meth:`update`)."""
        return tuple(Layer(w, b) for w, b in zip(self.W, self.b, strict=True))

    def grads(self) -> tuple[Layer, ...]:
        """Copies of the gradients of the last :meth:`loss_and_grads`."""
        return tuple(Layer(w.copy(), b.copy()) for w, b in zip(self.dW, self.db, strict=True))

    def loss_and_grads(self, X: np.ndarray, Y: np.ndarray, l2: float = 0.0) -> tuple[float, Any]:
        """Loss (plus the L2 penalty l2 / 2 sum w^2) at the current parameters.

        X (n, D0), Y (n, DL) with n <= max_rows. Writes the gradient into
        :attr:`grad`; returns ``(loss, logits)``, the logits a view (n, DL)
        valid until the next call.
        """
        n, last = X.shape[0], self.net.n_layers - 1
        h = X
        for i in range(last + 1):
            z = self.out[i][:n]
            np.matmul(h, self.W[i], out=z)
            z += self.b[i]
            if i < last:
                _activate(self.net.activations[i], z)
            h = z
        loss = self._head(h, Y, self.d_out[last][:n])
        for i in range(last, -1, -1):
            dz = self.d_out[i][:n]
            below = X if i == 0 else self.out[i - 1][:n]
            np.matmul(below.T, dz, out=self.dW[i])
            np.matmul(self.ones[:n], dz, out=self.db[i])
            if i > 0:
                dh = self.d_out[i - 1][:n]
                if self.W[i].shape[1] == 1:  # an outer product: BLAS is slow at k = 1
                    np.multiply(dz, self.W[i].T, out=dh)
                else:
                    np.matmul(dz, self.W[i].T, out=dh)
                self._derivative(self.net.activations[i - 1], below, dh)
        if l2:
            w, dw, tmp = self.theta[: self.n_weights], self.grad[: self.n_weights], self.tmp
            loss += 0.5 * l2 * float(np.dot(w, w))
            np.multiply(w, l2, out=tmp[: self.n_weights])
            dw += tmp[: self.n_weights]
        return loss, h

    def _head(self, z: np.ndarray, Y: np.ndarray, dz: np.ndarray) -> float:
        """The output head's loss on logits z; d loss / dz into ``dz``."""
        n, m = z.shape
        if self.net.output == "softmax":
            top = z.max(axis=1, keepdims=True)
            np.subtract(z, top, out=dz)
            np.exp(dz, out=dz)
            total = dz.sum(axis=1, keepdims=True)
            loss = float(np.sum(Y * ((top - z) + np.log(total)))) / n
            dz /= total
            dz -= Y
            dz *= 1.0 / n
            return loss
        if self.net.output == "sigmoid":
            e = np.exp(-np.abs(z))
            loss = float(np.sum(np.maximum(z, 0) - z * Y + np.log1p(e))) / (n * m)
            np.divide(np.maximum(e, z >= 0), 1.0 + e, out=dz)
            dz -= Y
            dz *= 1.0 / (n * m)
            return loss
        np.subtract(z, Y, out=dz)
        loss = float(np.dot(dz.ravel(), dz.ravel())) / (n * m)
        dz *= 2.0 / (n * m)
        return loss

    def _derivative(self, name: str, a: np.ndarray, dh: np.ndarray) -> None:
        """dh *= the activation's derivative, read from its output a (in place)."""
        n, d = a.shape
        if name == "relu":
            mask = self.mask[:n, :d]
            np.greater(a, 0, out=mask)
            np.multiply(dh, mask, out=dh)
        elif name == "tanh":
            s = self.scratch[:n, :d]
            np.multiply(a, a, out=s)
            np.subtract(1.0, s, out=s)
            dh *= s
        elif name == "sigmoid":
            s = self.scratch[:n, :d]
            np.subtract(1.0, a, out=s)
            s *= a
            dh *= s
        # identity: the derivative is 1

    def update(self) -> None:
        """One optimizer step on the flat parameter vector, from :attr:`grad`."""
        opt, theta, g, tmp = self.opt, self.theta, self.grad, self.tmp
        if opt.name == "sgd":
            np.multiply(g, opt.lr, out=tmp)
            theta -= tmp
        elif opt.name == "momentum":
            v = self.first
            v *= opt.momentum
            np.multiply(g, opt.lr, out=tmp)
            v -= tmp
            if opt.nesterov:  # w + (mu v - lr g)
                step = self.tmp2
                np.multiply(v, opt.momentum, out=step)
                step -= tmp
                theta += step
            else:
                theta += v
        else:
            self.t += 1
            m, v = self.first, self.second
            m *= opt.beta1
            np.multiply(g, 1 - opt.beta1, out=tmp)
            m += tmp
            v *= opt.beta2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - opt.beta2
            v += tmp
            lr_t = opt.lr * np.sqrt(1 - opt.beta2**self.t) / (1 - opt.beta1**self.t)
            np.sqrt(v, out=tmp)
            tmp += opt.eps
            np.divide(m, tmp, out=tmp)
            tmp *= lr_t
            theta -= tmp

    def grad_norms(self) -> list[float]:
        """||dW|| of each layer's weight gradient."""
        return [float(np.sqrt(np.dot(dw.ravel(), dw.ravel()))) for dw in self.dW]


def _views(flat: np.ndarray, shapes: list[tuple[int, int]]) -> tuple[list[Any], list[Any]]:
    """Weight matrices first, then biases, as views into ``flat``."""
    ws, bs, offset = [], [], 0
    for a, b in shapes:
        ws.append(flat[offset : offset + a * b].reshape(a, b))
        offset += a * b
    for _, b in shapes:
        bs.append(flat[offset : offset + b])
        offset += b
    return ws, bs


def _activate(name: str, z: np.ndarray) -> None:
    """The hidden activation, in place."""
    if name == "relu":
        np.maximum(z, 0, out=z)
    elif name == "tanh":
        np.tanh(z, out=z)
    elif name == "sigmoid":
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1.0
        np.reciprocal(z, out=z)


def loss_and_grads(
    K: Any,
    params: Sequence[Layer],
    X: Any,
    Y: Any,
    net: Net,
    *,
    weights: Any = None,
    l2: Any = 0.0,
) -> tuple[float, Any, tuple[Layer, ...]]:
    """The signature of :func:`backprop.nets.loss_and_grads`, computed in place (NumPy only).

    ``weights`` must be None (the mean): the in-place step serves NumPy
    training, which never pads a batch.
    """
    if K.name != "numpy" or weights is not None:
        raise ValueError("the in-place step runs on NumPy, with the mean over rows")
    X = np.asarray(X)
    from backprop.optim import Optimizer

    step = InPlaceMLP(net, params, Optimizer(), X.shape[0], X.dtype)
    with np.errstate(over="ignore"):
        loss, z = step.loss_and_grads(X, np.asarray(Y, X.dtype), float(l2))
    return loss, z.copy(), step.grads()
