"""The NumPy MLP training step, in place in buffers allocated once.

:func:`backprop.mlp.mlp_step` chains the kernels: every forward and backward
half returns fresh arrays, the reference and what the JAX loop compiles. On
NumPy a fresh (N, D) array per elementwise operation is what a large step
pays for beyond its matrix products (first-touch page faults, one memory
pass per operation). :class:`FusedStep` runs the same derivation with each
hidden layer's activations kept in one buffer, reused by every step:

- forward, per hidden layer: ``Z = H @ W`` written into the buffer, ``+= b``,
  then the activation in place. The sigmoid is evaluated as
  ``sigma(z) = 1/2 + tanh(z/2)/2`` with the halving folded into the layer's
  parameters (``z/2 = H @ (W/2) + b/2``, exact in binary floating point):
  three passes, and NumPy's tanh costs half its exp. It never overflows,
  and its absolute error is a few units in the last place, which is what
  a hidden activation needs (the kernel's exp form additionally keeps full
  *relative* precision in the far tail, which matters for a probability
  fed to a loss, not for an activation fed to a product);
- the output layer and the loss are the kernels themselves
  (:mod:`kernels.losses`, :mod:`kernels.activations`) on the (N, D_L)
  output: with a sigmoid output under BCE, ``d logits = (sigma(z) - y)/N``;
- backward, per layer from the top: ``dW = H.T @ dZ``, ``db = 1 @ dZ`` (a
  product with a vector of ones, ~2x faster than a column sum), then
  ``dH = dZ @ W.T`` written into a second buffer (an outer product by
  broadcasting when the layer has one unit) and multiplied in place by the
  activation's derivative, read from the activation buffer: ``a (1 - a)``
  for the sigmoid (after ``dW`` used ``a``, its buffer takes ``1 - a``),
  ``[a > 0]`` for ReLU.

The step returns what :func:`backprop.mlp.mlp_step` returns, in fresh
arrays. ``tests/test_mlp_fused.py`` checks it against ``mlp_step`` for every
configuration and runs :func:`backprop.gradcheck.gradcheck` on its
gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop.mlp import Layer, MLPConfig
from kernels import get_backend


class FusedStep:
    """One full-batch gradient-descent step on NumPy, with reused buffers.

    ``sizes``: layer widths [D0, ..., DL]; ``config``: from
    :func:`backprop.mlp.make_config`; ``n_rows``: the batch size N;
    ``dtype``: float32 or float64. Call it as ``step(params, X, y, lr)``
    with params a sequence of :class:`Layer` (w (D_in, D_out), b (D_out,)),
    X (N, D0), y (N, DL); it returns ``(new_params, loss, out, grads)`` like
    :func:`backprop.mlp.mlp_step`, all fresh arrays (the buffers never
    escape). Raises ``ValueError`` if X or y do not have the shapes and
    dtype it was built for.
    """

    def __init__(self, sizes: Sequence[int], config: MLPConfig, n_rows: int, dtype: Any) -> None:
        self.sizes = tuple(sizes)
        self.config = config
        self.n_rows = n_rows
        self.dtype = np.dtype(dtype)
        hidden = self.sizes[1:-1]
        # acts[i]: the activations of hidden layer i; grads_in[i]: d of them.
        self.acts = [np.empty((n_rows, d), self.dtype) for d in hidden]
        self.grads_in = [np.empty((n_rows, d), self.dtype) for d in hidden]
        self.ones = np.ones(n_rows, self.dtype)
        self.K = get_backend("numpy")

    def _check(self, X: np.ndarray, y: np.ndarray) -> None:
        for name, a, width in (("X", X, self.sizes[0]), ("y", y, self.sizes[-1])):
            shape = (self.n_rows, width)
            if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype != self.dtype:
                got = (getattr(a, "shape", None), getattr(a, "dtype", type(a).__name__))
                raise ValueError(
                    f"{name} must be a {self.dtype} array of shape {shape} "
                    f"(this step was built for them), got shape {got[0]}, dtype {got[1]}"
                )

    def __call__(
        self, params: Sequence[Layer], X: np.ndarray, y: np.ndarray, lr: Any
    ) -> tuple[tuple[Layer, ...], Any, np.ndarray, tuple[Layer, ...]]:
        self._check(X, y)
        K, cfg = self.K, self.config
        n_hidden = len(self.acts)

        # forward through the hidden layers, each into its buffer
        h = X
        for (w, b), a, act in zip(params[:n_hidden], self.acts, cfg.hidden, strict=True):
            if act == "sigmoid":  # 1/2 + tanh(z/2)/2, z/2 = h @ (w/2) + b/2
                np.matmul(h, w * 0.5, out=a)
                a += b * 0.5
                np.tanh(a, out=a)
                a *= 0.5
                a += 0.5
            else:
                np.matmul(h, w, out=a)
                a += b
                if act == "relu":
                    np.maximum(a, 0, out=a)
            h = a

        # output layer and loss: the kernels, on the (N, DL) output
        w_out, b_out = params[-1]
        z = np.matmul(h, w_out)
        z += b_out
        if cfg.fused:
            out = K.sigmoid_forward(z)[0]
            loss, c_loss = K.bce_with_logits_forward(z, y)
            dz = K.bce_with_logits_backward(1.0, c_loss)
        else:
            out, c_out = K.sigmoid_forward(z) if cfg.output == "sigmoid" else K.identity_forward(z)
            loss, c_loss = K.mse_forward(out, y)
            d_out = K.mse_backward(1.0, c_loss)
            bwd = K.sigmoid_backward if cfg.output == "sigmoid" else K.identity_backward
            dz = bwd(d_out, c_out)

        # backward, from the top; dz is d loss / d (this layer's pre-activation)
        grads: list[Layer] = []
        for i in reversed(range(n_hidden + 1)):
            w = params[i][0]
            h_below = self.acts[i - 1] if i > 0 else X
            grads.append(Layer(h_below.T @ dz, self.ones @ dz))
            if i == 0:
                break
            dh = self.grads_in[i - 1]
            if w.shape[1] == 1:  # dz @ w.T is an outer product: broadcast it
                np.multiply(dz, w.T, out=dh)
            else:
                np.matmul(dz, w.T, out=dh)
            act = cfg.hidden[i - 1]
            if act == "sigmoid":  # dh *= a (1 - a); h_below is a, now free
                dh *= h_below
                np.subtract(1, h_below, out=h_below)
                dh *= h_below
            elif act == "relu":  # [a > 0] = [z > 0]; at z = 0 the kernel's 0
                dh *= h_below > 0
            dz = dh
        grads.reverse()
        new = tuple(
            Layer(w - lr * g.w, b - lr * g.b) for (w, b), g in zip(params, grads, strict=True)
        )
        return new, loss, out, tuple(grads)
