"""Layers: the kernels of :mod:`backprop.kernels` with parameters, state and a mode.

A layer is an object with three methods, in the spirit of CS231n's layer
functions and stax's ``(init_fun, apply_fun)`` pairs:

- ``init(rng, in_shape, dtype) -> (params, state, out_shape)``: the starting
  parameters (a dict of NumPy arrays, ``{}`` for none), the state that is not
  trained (batch norm's running averages; ``{}`` for none) and the output's
  shape for an input of ``in_shape``. Shapes leave the batch axis out:
  ``(C, H, W)`` for images, ``(T,)`` for a sequence of token ids, ``(D,)``
  for rows.
- ``forward(K, params, state, x, train, key) -> (out, cache, state)``: ``K``
  is a backend (:func:`backprop.kernels.get_backend`), ``train`` the mode
  (dropout on and batch norm on batch statistics when True; dropout off and
  batch norm on its running averages when False), ``key`` this layer's
  randomness (a JAX key, or a ``numpy.random.Generator``; only dropout reads
  it). Returns the output, what the backward needs, and the new state.
- ``backward(K, params, cache, dout) -> (dx, grads)``: the gradient of the
  input and a dict of gradients, one per parameter, of the parameters'
  shapes. Built only from the kernels' declared backwards.

Layers hold hyper-parameters only (sizes, strides, the dropout rate); the
arrays live in the params and state containers, so the same layer runs on
NumPy and inside ``jax.jit``. Compose them with :func:`backprop.network.serial`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

Shape = tuple[int, ...]


def _int(name: str, value: Any, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _uniform(rng: np.random.Generator, shape: Shape, fan_in: int, dtype: Any, gain: float) -> Any:
    # He/Glorot-style uniform: variance gain / fan_in.
    bound = math.sqrt(3.0 * gain / max(fan_in, 1))
    return rng.uniform(-bound, bound, shape).astype(dtype)


def _numpy(K: Any) -> bool:
    return K.xp.__name__ == "numpy"


class Layer:
    """Base class: a layer without parameters or state whose ``init`` keeps the shape."""

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        return {}, {}, tuple(in_shape)

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        raise NotImplementedError

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Dense(Layer):
    """Affine map on the last axis: ``out = x @ w + b``.

    x (N, ..., D) -> out (N, ..., units); params ``w`` (D, units), ``b``
    (units,). Initialised uniformly with variance ``gain / D`` (``gain`` 2
    suits ReLU, 1 tanh or a linear head).
    """

    def __init__(self, units: int, gain: float = 2.0) -> None:
        self.units = _int("units", units)
        self.gain = float(gain)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        if len(in_shape) < 1:
            raise ValueError(f"Dense needs inputs (N, ..., D), got per-row shape {in_shape}")
        d = in_shape[-1]
        w = _uniform(rng, (d, self.units), d, dtype, self.gain)
        return {"w": w, "b": np.zeros(self.units, dtype)}, {}, (*in_shape[:-1], self.units)

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        lead = tuple(x.shape[:-1])
        z, c1 = K.matmul_forward(x.reshape(-1, x.shape[-1]), params["w"])
        out, c2 = K.add_bias_forward(z, params["b"])
        return out.reshape(*lead, self.units), (lead, c1, c2), state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        lead, c1, c2 = cache
        dz, db = K.add_bias_backward(dout.reshape(-1, self.units), c2)
        dx, dw = K.matmul_backward(dz, c1)
        return dx.reshape(*lead, dx.shape[-1]), {"w": dw, "b": db}


class Activation(Layer):
    """A kernel pair of the activation or smooth family: "relu", "tanh", "gelu", ...

    Any shape in, the same shape out (softmax: over the last axis); no
    parameters. The name is checked against the registry
    (:data:`backprop.kernels.registry.KERNELS`) when
    the layer is made.
    """

    def __init__(self, name: str) -> None:
        from backprop.kernels.registry import KERNELS

        spec = KERNELS.get(name) if isinstance(name, str) else None
        if spec is None or spec.backward is None or spec.family not in ("activation", "smooth"):
            valid = [
                n
                for n, s in KERNELS.items()
                if s.family in ("activation", "smooth") and s.backward is not None
            ]
            raise ValueError(f"activation must be one of {', '.join(valid)}, got {name!r}")
        self.name = name

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        fwd, _ = K.pair(self.name)
        out, cache = fwd(x)
        return out, cache, state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        _, bwd = K.pair(self.name)
        return bwd(dout, cache), {}


def Relu() -> Activation:
    """``Activation("relu")``."""
    return Activation("relu")


def Tanh() -> Activation:
    """``Activation("tanh")``."""
    return Activation("tanh")


def Gelu() -> Activation:
    """``Activation("gelu")`` (the tanh approximation, as GPT-2)."""
    return Activation("gelu")


class Conv2d(Layer):
    """2-D convolution: x (N, C, H, W) -> (N, filters, Ho, Wo).

    ``Ho = (H + 2 padding - size) // stride + 1``, Wo likewise.

    Params ``w`` (filters, C, size, size), He-initialised, ``b`` (filters,).
    """

    def __init__(self, filters: int, size: int = 3, stride: int = 1, padding: int = 0) -> None:
        self.filters = _int("filters", filters)
        self.size = _int("size", size)
        self.stride = _int("stride", stride)
        self.padding = _int("padding", padding, 0)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        if len(in_shape) != 3:
            raise ValueError(f"Conv2d needs images (N, C, H, W), got per-row shape {in_shape}")
        c, h, w = in_shape
        k, s, p = self.size, self.stride, self.padding
        if h + 2 * p < k or w + 2 * p < k:
            raise ValueError(f"Conv2d: a {k}x{k} window does not fit images {in_shape}")
        weights = _uniform(rng, (self.filters, c, k, k), c * k * k, dtype, 2.0)
        out = (self.filters, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        return {"w": weights, "b": np.zeros(self.filters, dtype)}, {}, out

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        out, cache = K.conv2d_forward(x, params["w"], params["b"], self.stride, self.padding)
        return out, cache, state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        dx, dw, db = K.conv2d_backward(dout, cache)
        return dx, {"w": dw, "b": db}


class MaxPool2d(Layer):
    """Max pooling: x (N, C, H, W) -> (N, C, (H - size) // stride + 1, ...).

    ``stride`` defaults to ``size`` (windows that do not overlap).
    """

    def __init__(self, size: int = 2, stride: int | None = None) -> None:
        self.size = _int("size", size)
        self.stride = self.size if stride is None else _int("stride", stride)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        if len(in_shape) != 3 or min(in_shape[1:]) < self.size:
            raise ValueError(
                f"MaxPool2d({self.size}) needs images at least that big, got {in_shape}"
            )
        c, h, w = in_shape
        k, s = self.size, self.stride
        return {}, {}, (c, (h - k) // s + 1, (w - k) // s + 1)

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        out, cache = K.maxpool2d_forward(x, self.size, self.stride)
        return out, cache, state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        return K.maxpool2d_backward(dout, cache), {}


class Flatten(Layer):
    """x (N, d1, d2, ...) -> (N, d1 d2 ...), row-major."""

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        return {}, {}, (math.prod(in_shape),)

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        return x.reshape(x.shape[0], -1), tuple(x.shape), state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        return dout.reshape(cache), {}


class BatchNorm(Layer):
    """Batch normalisation per channel (axis 1): x (N, C) or (N, C, H, W), the same shape out.

    Params ``gamma`` (C,) = 1, ``beta`` (C,) = 0; state ``mean``, ``var``
    (C,), the running averages ``r = (1 - momentum) r + momentum batch``
    (PyTorch's convention; the variance is the biased batch variance).
    Training mode normalises with the batch's statistics
    (:func:`~backprop.kernels.norms.batchnorm_forward`); evaluation mode with
    the running ones, an affine map ``out = gamma (x - mean) / sqrt(var +
    eps) + beta`` whose backward is ``dx = dout gamma / sqrt(var + eps)``.
    """

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5) -> None:
        if not 0.0 < float(momentum) <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum!r}")
        if not float(eps) > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.momentum, self.eps = float(momentum), float(eps)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        if len(in_shape) < 1:
            raise ValueError(f"BatchNorm needs (N, C, ...) inputs, got per-row shape {in_shape}")
        c = in_shape[0]
        params = {"gamma": np.ones(c, dtype), "beta": np.zeros(c, dtype)}
        return params, {"mean": np.zeros(c, dtype), "var": np.ones(c, dtype)}, tuple(in_shape)

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        if train:
            out, cache = K.batchnorm_forward(x, params["gamma"], params["beta"], self.eps)
            m = self.momentum
            new = {
                "mean": (1 - m) * state["mean"] + m * cache.mean.astype(x.dtype),
                "var": (1 - m) * state["var"] + m * cache.var.astype(x.dtype),
            }
            return out, (True, cache), new
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        scale = (params["gamma"] / K.xp.sqrt(state["var"] + self.eps)).reshape(shape)
        xhat_shift = x - state["mean"].reshape(shape)
        out = xhat_shift * scale + params["beta"].reshape(shape)
        return out, (False, (xhat_shift, scale, state["var"])), state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        train, c = cache
        if train:
            dx, dgamma, dbeta = K.batchnorm_backward(dout, c)
            return dx, {"gamma": dgamma, "beta": dbeta}
        xhat_shift, scale, var = c
        axes = (0, *range(2, dout.ndim))
        rstd = 1.0 / K.xp.sqrt(var + self.eps)
        dgamma = (dout * xhat_shift).sum(axis=axes) * rstd
        return dout * scale, {"gamma": dgamma, "beta": dout.sum(axis=axes)}


class LayerNorm(Layer):
    """Layer normalisation over the last axis: x (..., D) -> (..., D).

    Params ``gamma`` (D,) = 1, ``beta`` (D,) = 0.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        if not float(eps) > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.eps = float(eps)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        d = in_shape[-1]
        return {"gamma": np.ones(d, dtype), "beta": np.zeros(d, dtype)}, {}, tuple(in_shape)

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        out, cache = K.layernorm_forward(x, params["gamma"], params["beta"], self.eps)
        return out, cache, state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        dx, dgamma, dbeta = K.layernorm_backward(dout, cache)
        return dx, {"gamma": dgamma, "beta": dbeta}


class Dropout(Layer):
    """Inverted dropout with rate ``p`` in training mode; the identity in evaluation mode.

    Any shape. The mask comes from the layer's ``key`` (a JAX key, or a
    ``numpy.random.Generator`` that advances at each call).
    """

    def __init__(self, p: float) -> None:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
            raise ValueError(f"p must be a number in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        if not train or self.p == 0.0:
            return x, None, state
        if key is None:
            raise ValueError("Dropout in training mode needs a key (rng) for its mask")
        out, mask = K.dropout_forward(x, self.p, key)
        return out, mask, state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        if cache is None:
            return dout, {}
        return K.dropout_backward(dout, cache), {}


class Embedding(Layer):
    """Table lookup: integer ids (N, ...) -> (N, ..., dim).

    Param ``table`` (vocab, dim), drawn from N(0, scale^2).
    """

    def __init__(self, vocab: int, dim: int, scale: float = 1.0) -> None:
        self.vocab, self.dim, self.scale = _int("vocab", vocab), _int("dim", dim), float(scale)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        table = (self.scale * rng.standard_normal((self.vocab, self.dim))).astype(dtype)
        return {"table": table}, {}, (*in_shape, self.dim)

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        out, cache = K.embedding_forward(x, params["table"])
        return out, cache, state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        return None, {"table": K.embedding_backward(dout, cache)}


class PositionEmbedding(Layer):
    """Adds a learned vector per position: x (N, T, D) -> (N, T, D); param ``table`` (max_len, D).

    ``out[n, t] = x[n, t] + table[t]``, so ``dtable[t] = sum_n dout[n, t]``
    (rows past T get 0) and ``dx = dout``.
    """

    def __init__(self, max_len: int, scale: float = 0.02) -> None:
        self.max_len, self.scale = _int("max_len", max_len), float(scale)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        if len(in_shape) != 2 or in_shape[0] > self.max_len:
            raise ValueError(
                f"PositionEmbedding({self.max_len}) needs (N, T, D) with T <= {self.max_len}, "
                f"got per-row shape {in_shape}"
            )
        table = (self.scale * rng.standard_normal((self.max_len, in_shape[1]))).astype(dtype)
        return {"table": table}, {}, tuple(in_shape)

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        t = x.shape[1]
        return x + params["table"][:t], t, state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        t = cache
        dtab = dout.sum(axis=0)
        if t < self.max_len:
            pad = K.xp.zeros((self.max_len - t, dtab.shape[1]), dtab.dtype)
            dtab = K.xp.concatenate([dtab, pad], axis=0)
        return dout, {"table": dtab}


class CausalSelfAttention(Layer):
    """Multi-head causal self-attention: x (N, T, D) -> (N, T, D).

    ``qkv = x Wqkv + bqkv`` split into ``heads`` heads of D / heads
    features, each head ``softmax(q k^T / sqrt(d)) v`` over earlier
    positions only (:func:`~backprop.kernels.attention.attention_forward`
    with ``causal=True``), the heads concatenated and projected by ``Wo, bo``.
    Params ``qkv`` and ``proj``: two :class:`Dense` parameter dicts
    (``w`` (D, 3D), (D, D)). The output projection is initialised with
    variance ``proj_gain / D`` (GPT-2 scales it down with depth).
    """

    def __init__(self, heads: int, proj_gain: float = 1.0) -> None:
        self.heads = _int("heads", heads)
        self.proj_gain = float(proj_gain)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        if len(in_shape) != 2 or in_shape[1] % self.heads:
            raise ValueError(
                f"CausalSelfAttention({self.heads} heads) needs (N, T, D) with D divisible by "
                f"the heads, got per-row shape {in_shape}"
            )
        d = in_shape[1]
        qkv, _, _ = Dense(3 * d, gain=1.0).init(rng, in_shape, dtype)
        proj, _, _ = Dense(d, gain=self.proj_gain).init(rng, in_shape, dtype)
        return {"qkv": qkv, "proj": proj}, {}, tuple(in_shape)

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        n, t, d = x.shape
        h = self.heads
        qkv, c_in, _ = Dense(3 * d).forward(K, params["qkv"], {}, x, train, None)
        # (N, T, 3, H, dh) -> (3, N, H, T, dh)
        qkv = qkv.reshape(n, t, 3, h, d // h).transpose(2, 0, 3, 1, 4)
        att, c_att = K.attention_forward(qkv[0], qkv[1], qkv[2], True)
        y = att.transpose(0, 2, 1, 3).reshape(n, t, d)
        out, c_out, _ = Dense(d).forward(K, params["proj"], {}, y, train, None)
        return out, (c_in, c_att, c_out), state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        c_in, c_att, c_out = cache
        n, t, d = dout.shape
        h = self.heads
        dy, g_proj = Dense(d).backward(K, params["proj"], c_out, dout)
        datt = dy.reshape(n, t, h, d // h).transpose(0, 2, 1, 3)
        dq, dk, dv = K.attention_backward(datt, c_att)
        dqkv = K.xp.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(n, t, 3 * d)
        dx, g_qkv = Dense(3 * d).backward(K, params["qkv"], c_in, dqkv)
        return dx, {"qkv": g_qkv, "proj": g_proj}
