"""The NumPy MLP training step, in place in buffers allocated once.

:func:`backprop.mlp.mlp_step` chains the kernels: every forward and backward
half returns fresh arrays; it is the reference and what the JAX loop
compiles. On NumPy each elementwise operation on a large (N, D) activation is
a full memory pass (plus page faults for a fresh array), and those passes are
what a step spends beyond its matrix products. :class:`FusedStep` runs the
same derivation in as few passes as it can, each hidden layer in one buffer
reused by every step:

- forward, per hidden layer: ``Z = H @ W`` written into the buffer, ``+= b``,
  then the activation in place. A sigmoid layer keeps ``t = tanh(z/2)``, from
  ``sigma(z) = (1 + tanh(z/2)) / 2``: the halving of z is folded into the
  layer's parameters (``z/2 = H @ (W/2) + b/2``, exact in binary floating
  point) and the affine map ``a = (1 + t)/2`` into whatever reads ``a``
  (:func:`_read_through`: ``a @ W + b = t @ (W/2) + (b + sum_rows(W)/2)``;
  ``dW = a.T @ dZ = (t.T @ dZ)/2 + db/2``). So a sigmoid costs two passes
  (bias, tanh - NumPy's tanh costs half its exp), never overflows, and is
  accurate to a few units in the last place in absolute terms, which is what
  a hidden activation needs (the kernel's exp form also keeps full *relative*
  precision in the far tail, which matters for a probability fed to a loss,
  not for an activation fed to a product);
- the output layer and the loss are the kernels themselves
  (:mod:`kernels.losses`, :mod:`kernels.activations`) on the (N, D_L)
  output: with a sigmoid output under BCE, ``d logits = (sigma(z) - y)/N``;
- backward, per layer from the top: ``dW = H.T @ dZ``, ``db = 1 @ dZ`` (a
  product with a vector of ones, ~2x faster than a column sum), then
  ``dH = dZ @ W.T`` into a second buffer, times the activation's derivative
  read from the first: ``sigma'(z) = (1 - t^2)/4`` (the 1/4 goes on W),
  ``[a > 0]`` for ReLU. When the layer above has one unit, ``dZ @ W.T`` is
  an outer product; rather than materialise it, ``dZ * derivative`` is formed
  (one pass) and ``W.T`` kept as a scale on its columns, applied to the small
  ``dW``, ``db`` and the next ``W`` instead of the (N, D) array. If the layer
  below reads X and X is the narrower, even that pass moves onto X:
  ``dW = (X * dZ).T @ derivative``, ``db = dZ.T @ derivative``.

The step returns what :func:`backprop.mlp.mlp_step` returns, in fresh
arrays. ``tests/test_mlp_fused.py`` checks it against ``mlp_step`` for every
activation and output, layers of one unit included, and runs
:func:`backprop.gradcheck.gradcheck` on its gradients.
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
        # acts[i]: hidden layer i (t = tanh(z/2) for a sigmoid layer, else the
        # activations); grads_in[i]: the gradient with respect to them.
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

        # Forward through the hidden layers, each into its buffer. A sigmoid
        # layer's buffer holds t = tanh(z/2), and its output is a = (1 + t)/2:
        # the layer above reads a as (scale, shift) = (1/2, 1/2) applied to t.
        h, scale, shift = X, 1.0, 0.0
        affine = []  # (scale, shift) of each hidden buffer
        for (w, b), buf, act in zip(params[:n_hidden], self.acts, cfg.hidden, strict=True):
            w, b = _read_through(w, b, scale, shift)
            if act == "sigmoid":  # z/2 = h @ (w/2) + b/2, then t = tanh(z/2)
                np.matmul(h, w * 0.5, out=buf)
                buf += b * 0.5
                np.tanh(buf, out=buf)
                scale, shift = 0.5, 0.5
            else:
                np.matmul(h, w, out=buf)
                buf += b
                if act == "relu":
                    np.maximum(buf, 0, out=buf)
                scale, shift = 1.0, 0.0
            affine.append((scale, shift))
            h = buf

        # output layer and loss: the kernels, on the (N, DL) output
        w_out, b_out = _read_through(*params[-1], scale, shift)
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

        # Backward, from the top. dz is d loss / d (this layer's pre-activation),
        # times ``col`` column by column and ``row`` row by row where these are
        # not None (see below).
        grads: list[Layer] = []
        col = row = None
        for i in reversed(range(n_hidden + 1)):
            w = params[i][0]
            below, (scale, shift) = (self.acts[i - 1], affine[i - 1]) if i > 0 else (X, (1.0, 0.0))
            # dw = h.T @ dz with h = scale * below + shift; db = 1 @ dz
            if row is None:
                db = self.ones @ dz
                dw = below.T @ dz
            else:  # only for the input layer, when X is narrower than dz
                db = row @ dz
                dw = (below * row[:, None]).T @ dz
            if col is not None:
                db *= col
                dw *= col
            if scale != 1.0:
                dw *= scale
            if shift:
                dw += shift * db
            grads.append(Layer(dw, db))
            if i == 0:
                break
            if col is not None:
                w = w * col  # column j of dz carries col[j]: move it into w's column j
            act = cfg.hidden[i - 1]
            if act == "sigmoid":  # sigma'(z) = a (1 - a) = (1 - t^2) / 4; the 1/4 goes on w
                w = w * 0.25
                np.multiply(below, below, out=below)  # below held t; it is free now
                deriv = np.subtract(1, below, out=below)
            else:
                deriv = below > 0 if act == "relu" else None  # at z = 0 the kernel's 0
            dh = self.grads_in[i - 1]
            if w.shape[1] == 1:
                # d below = (dz @ w.T) * deriv = dz * deriv * w.T, and w.T stays a
                # column scale applied to the small products above. dz (N, 1)
                # scales the rows: in one pass over dh - or, when the layer below
                # reads X and X is the narrower, over X instead (deriv is then dz).
                col = w[:, 0]
                if i == 1 and act == "sigmoid" and X.shape[1] < deriv.shape[1]:
                    row, dz = dz[:, 0], deriv
                    continue
                np.multiply(dz, 1 if deriv is None else deriv, out=dh)
            else:
                np.matmul(dz, w.T, out=dh)
                if deriv is not None:
                    dh *= deriv
                col = None
            dz = dh
        grads.reverse()
        new = tuple(
            Layer(w - lr * g.w, b - lr * g.b) for (w, b), g in zip(params, grads, strict=True)
        )
        return new, loss, out, tuple(grads)


def _read_through(w: np.ndarray, b: np.ndarray, scale: float, shift: float) -> tuple[Any, Any]:
    """Weights that read ``scale * t + shift`` from a buffer holding ``t``.

    (scale t + shift) @ w + b = t @ (scale w) + (b + shift * sum of w's rows).
    """
    if scale == 1.0 and not shift:
        return w, b
    return w * scale, b + shift * w.sum(axis=0)
