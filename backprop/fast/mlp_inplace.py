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
  ``out=``, then ``+= b``) and the activation's declared in-place form
  (:class:`backprop.kernels.spec.InPlace`) applied to it, so the buffer holds
  the layer's output, from which (or from what the forward saved in the
  layer's own second buffer) the derivative is read: sigma' = a (1 - a),
  tanh' = 1 - a^2, relu' = the mask [z > 0] its forward kept;
- the output head is its declared in-place form
  (:class:`backprop.kernels.spec.Head`), the reference's fused kernel
  written out: d loss / dz = w (sigma(z) - y), w (softmax(z) - y) or
  2 w (z - y), with w = 1 / N (divided by the outputs for the elementwise
  heads);
- backward per layer from the top: ``dw = h.T @ dz`` into the gradient
  vector, ``db = 1 @ dz``, then ``dh = dz @ w.T`` into the layer below's
  gradient buffer, times the derivative, in place;
- the optimizer is its declared in-place form
  (:class:`backprop.optim.OptimizerSpec`) on the flat vectors.

Nothing here knows an activation, head or optimizer by name: a kernel
registered with :func:`backprop.register_activation` runs here through the
in-place form built from its pure pair. The step runs under
``np.errstate(over="ignore")`` (the in-place sigmoid's exp overflows to
inf, giving the correctly rounded 0). ``tests/test_fast.py`` holds the loss
and every gradient to the reference for every activation and head, at
random and saturated points, and every in-place form to its declaration's
pure form.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop import optim
from backprop.kernels import registry
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
        self.bufs = [np.empty((max_rows, d), dt) for d in net.sizes[1:-1]]  # each layer's own
        self.ones = np.ones(max_rows, dt)
        # every name resolved once, here: an unknown one raises before any work
        self.acts = [registry.activation(a).inplace_form() for a in net.activations]
        self.saved: list[Any] = [None] * len(self.acts)
        self.head = registry.head_inplace(registry.head(net.output))
        self.optimizer = optim.get(opt.name)
        self.scratch_flat = [np.empty(total, dt), np.empty(total, dt)]
        self.tmp = self.scratch_flat[0]
        self.slots = self.optimizer.inplace_state(opt, self.theta)
        self.t = 0

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
                self.saved[i] = self.acts[i].forward(z, self.bufs[i][:n])
            h = z
        loss = self.head(h, Y, self.d_out[last][:n])
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
                scratch = self.scratch[:n, : dh.shape[1]]
                self.acts[i - 1].backward(dh, below, self.saved[i - 1], scratch)
        if l2:
            w, dw, tmp = self.theta[: self.n_weights], self.grad[: self.n_weights], self.tmp
            loss += 0.5 * l2 * float(np.dot(w, w))
            np.multiply(w, l2, out=tmp[: self.n_weights])
            dw += tmp[: self.n_weights]
        return loss, h

    def update(self) -> None:
        """One optimizer step on the flat parameter vector, from :attr:`grad`."""
        self.t += 1
        self.optimizer.inplace_step(
            self.opt, self.theta, self.grad, self.slots, self.scratch_flat, self.t
        )

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
