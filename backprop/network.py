"""Composing layers: :func:`serial` (a stack, like stax's ``serial`` or PyTorch's
``nn.Sequential``) and :class:`Residual` (``x + f(x)``).

The forward runs the layers in order and keeps each one's cache; the backward
runs the layers' own backwards in reverse, each receiving the gradient of its
output and returning the gradient of its input and of its parameters. That
loop, in :meth:`Serial.backward`, is the only place a network's gradient is
assembled: there is no autodiff anywhere::

    from backprop.kernels import get_backend
    from backprop.layers import Conv2d, Dense, Flatten, MaxPool2d, Relu
    from backprop.network import serial

    net = serial(Conv2d(8, 3, padding=1), Relu(), MaxPool2d(2), Flatten(), Dense(10))
    params, state, out_shape = net.init(0, (1, 8, 8), "float64")   # out_shape (10,)
    K = get_backend("numpy")
    logits, cache, state = net.forward(K, params, state, x, train=True, key=None)
    dx, grads = net.backward(K, params, cache, dlogits)    # grads: params' structure

``params`` (and ``grads``) is a tuple with one dict of plain arrays per layer
(a nested tuple for a :class:`Serial` or :class:`Residual` inside), so it is a
JAX pytree and passes through ``jax.jit`` and ``lax.scan`` as is; ``state``
holds what is not trained (batch norm's running averages) in the same shape.
``train=True`` is training mode (dropout on, batch norm on batch statistics,
running averages updated); ``train=False`` evaluation mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from backprop.layers import Layer, Shape


def split_key(key: Any, n: int) -> list[Any]:
    """``n`` keys for ``n`` layers: JAX keys are split; a NumPy Generator (or None) is shared.

    An ``int`` becomes ``numpy.random.default_rng(key)`` (NumPy).
    """
    if key is None or isinstance(key, np.random.Generator):
        return [key] * n
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        rng = np.random.default_rng(int(key))
        return [rng] * n
    import jax

    return list(jax.random.split(key, n))


class Serial(Layer):
    """Layers applied in order; itself a layer (so stacks nest). Made by :func:`serial`.

    Shapes: whatever the first layer takes, whatever the last gives
    (:meth:`init` reports it).
    """

    def __init__(self, layers: Sequence[Layer]) -> None:
        layers = tuple(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"layer {i} must be a backprop.layers.Layer (e.g. Dense(10)), got {layer!r}"
                )
        if not layers:
            raise ValueError("serial needs at least one layer, got none")
        self.layers = layers

    def init(self, rng: Any, in_shape: Shape, dtype: Any = "float64") -> tuple[Any, Any, Shape]:
        """Parameters and state for inputs of per-row shape ``in_shape`` (no batch axis).

        Parameters
        ----------
        rng : int or numpy.random.Generator
            Seed of the initial parameters.
        in_shape : tuple of int
            One row's shape: (C, H, W) images, (T,) token ids, (D,) features.
        dtype : "float32" or "float64"

        Returns
        -------
        params : tuple of dicts of arrays, one per layer
        state : tuple of dicts of arrays, one per layer
        out_shape : tuple of int, one output row's shape
        """
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        shape = tuple(int(s) for s in in_shape)
        params, state = [], []
        for layer in self.layers:
            p, s, shape = layer.init(rng, shape, dtype)
            params.append(p)
            state.append(s)
        return tuple(params), tuple(state), shape

    def forward(
        self, K: Any, params: Any, state: Any, x: Any, train: bool = False, key: Any = None
    ) -> tuple[Any, Any, Any]:
        """Run every layer in order: returns ``(out, caches, new state)``."""
        keys = split_key(key, len(self.layers)) if train else [None] * len(self.layers)
        caches, new_state = [], []
        for layer, p, s, k in zip(self.layers, params, state, keys, strict=True):
            x, cache, s = layer.forward(K, p, s, x, train, k)
            caches.append(cache)
            new_state.append(s)
        return x, tuple(caches), tuple(new_state)

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        """The layers' backwards in reverse: returns ``(dx, grads)``, grads shaped like params."""
        grads: list[Any] = [None] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            dout, grads[i] = self.layers[i].backward(K, params[i], cache[i], dout)
        return dout, tuple(grads)

    def apply(self, params: Any, state: Any, x: Any, backend: Any = "numpy") -> Any:
        """The output in evaluation mode (no caches kept for a backward)."""
        from backprop.kernels import Backend, get_backend

        K = backend if isinstance(backend, Backend) else get_backend(backend)
        return self.forward(K, params, state, x, False, None)[0]

    def __repr__(self) -> str:
        return "serial(" + ", ".join(map(repr, self.layers)) + ")"


def serial(*layers: Layer) -> Serial:
    """A network of ``layers`` applied in order (see the module docstring)."""
    return Serial(layers)


class Residual(Layer):
    """``out = x + f(x)`` with ``f = serial(*layers)``, whose output has x's shape.

    Backward: ``dx = dout + (f's backward of dout)``; the parameters are f's.
    """

    def __init__(self, *layers: Layer) -> None:
        self.inner = Serial(layers)

    def init(self, rng: Any, in_shape: Shape, dtype: Any) -> tuple[Any, Any, Shape]:
        params, state, out = self.inner.init(rng, in_shape, dtype)
        if tuple(out) != tuple(in_shape):
            raise ValueError(
                f"Residual needs layers that keep the shape {tuple(in_shape)}, they give {out}"
            )
        return params, state, out

    def forward(self, K: Any, params: Any, state: Any, x: Any, train: bool, key: Any) -> Any:
        y, cache, state = self.inner.forward(K, params, state, x, train, key)
        return x + y, cache, state

    def backward(self, K: Any, params: Any, cache: Any, dout: Any) -> tuple[Any, Any]:
        dy, grads = self.inner.backward(K, params, cache, dout)
        return dout + dy, grads

    def __repr__(self) -> str:
        return "Residual(" + ", ".join(map(repr, self.inner.layers)) + ")"


# --- parameter containers ------------------------------------------------------------


def leaves(tree: Any) -> list[Any]:
    """The arrays of a params/state/grads container, depth first, dict keys sorted (JAX's order)."""
    if isinstance(tree, dict):
        return [a for k in sorted(tree) for a in leaves(tree[k])]
    if isinstance(tree, (tuple, list)):
        return [a for t in tree for a in leaves(t)]
    return [tree]


def rebuild(tree: Any, arrays: Sequence[Any]) -> Any:
    """``tree``'s structure with its arrays replaced, in :func:`leaves` order."""
    it = iter(arrays)

    def go(t: Any) -> Any:
        if isinstance(t, dict):
            return {k: go(t[k]) for k in sorted(t)}
        if isinstance(t, (tuple, list)):
            return tuple(go(v) for v in t)
        return next(it)

    out = go(tree)
    if next(it, None) is not None:
        raise ValueError("rebuild: more arrays than the container holds")
    return out


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``fn`` applied to matching arrays of containers of the same structure."""
    return rebuild(tree, [fn(*a) for a in zip(leaves(tree), *map(leaves, rest), strict=True)])


def count_params(params: Any) -> int:
    """How many numbers the parameters hold."""
    return int(sum(np.size(a) for a in leaves(params)))


def save(path: Any, params: Any, state: Any) -> None:
    """Write ``params`` and ``state`` to an ``.npz`` file (plain arrays, no pickles).

    The arrays are stored as ``params_0, params_1, ...`` and ``state_0, ...`` in
    :func:`leaves` order; :func:`load` puts them back into the same network.
    """
    arrays = {f"params_{i}": np.asarray(a) for i, a in enumerate(leaves(params))}
    arrays.update({f"state_{i}": np.asarray(a) for i, a in enumerate(leaves(state))})
    np.savez(path, **arrays)


def load(path: Any, net: Serial, in_shape: Shape, dtype: Any = "float32") -> tuple[Any, Any]:
    """Read what :func:`save` wrote for ``net`` on rows of ``in_shape``: ``(params, state)``.

    Raises
    ------
    ValueError
        If the file does not hold exactly the arrays of ``net`` (count and
        shapes, checked against ``net.init(0, in_shape, dtype)``).
    """
    params, state, _ = net.init(0, in_shape, dtype)
    with np.load(path, allow_pickle=False) as f:
        stored = dict(f)
    out = []
    for name, tree in (("params", params), ("state", state)):
        want = leaves(tree)
        got = [stored.pop(f"{name}_{i}", None) for i in range(len(want))]
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if g is None or g.shape != w.shape:
                raise ValueError(
                    f"{path}: {name}_{i} must have shape {w.shape} for this network, got "
                    f"{None if g is None else g.shape}"
                )
        out.append(rebuild(tree, [g.astype(w.dtype) for g, w in zip(got, want, strict=True)]))
    if stored:
        raise ValueError(f"{path}: arrays this network does not have: {sorted(stored)[:5]}")
    return out[0], out[1]
