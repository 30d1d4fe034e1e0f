"""Elementwise activations: sigmoid (and sigma'), ReLU, tanh, identity, step.

Same contract and errors as :mod:`backprop.kernels.linear`: forward ``-> (out, cache)``,
backward ``(dout, cache) -> dz``. All are elementwise, so ``z`` may have any
shape and ``dout`` must have the same shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import as_float_array, as_upstream
from .spec import Domain, InPlace, KernelSpec, elementwise


def _sigmoid(xp: Any, z: Any) -> Any:
    # sigma(z) = 1 / (1 + e^-z) = e^z / (1 + e^z). Both forms are evaluated with
    # e = exp(-|z|) <= 1, so nothing overflows or warns even at z = +-1e4, and
    # the small tail (z << 0) keeps full relative precision instead of
    # rounding 1 + tiny to 1 as 0.5 * (1 + tanh(z / 2)) would.
    # The numerator is 1 for z >= 0 and e for z < 0; since e <= 1 that is
    # maximum(e, z >= 0): one plain ufunc, where where(z >= 0, 1.0, e) would
    # send NumPy down a slow casting path for its Python-float operand.
    e = xp.exp(-xp.abs(z))
    return xp.maximum(e, z >= 0) / (1.0 + e)


def sigmoid_forward(xp: Any, z: Any) -> tuple[Any, Any]:
    """Logistic sigmoid ``sigma(z) = 1 / (1 + exp(-z))``, elementwise.

    Parameters
    ----------
    z : array, any shape
        float32 or float64.

    Returns
    -------
    out : array
        ``sigma(z)`` in [0, 1], of ``z``'s shape and dtype. Finite and
        warning-free for every finite ``z``.
    cache : array
        The *output* ``sigma(z)``, which is all the backward needs.
    """
    z = as_float_array(xp, "z", z)
    out = _sigmoid(xp, z)
    return out, out


def sigmoid_backward(xp: Any, dout: Any, cache: Any) -> Any:
    """Gradient of the sigmoid: ``dz = dout * s * (1 - s)``.

    Parameters
    ----------
    dout : array
        Upstream gradient dL/dout, of the output's shape.
    cache : array
        The forward *output* ``s = sigma(z)`` (not the input ``z``: applying
        the formula to ``z`` is the classic hand-derivation bug).

    Returns
    -------
    dz : array
        d sigma/dz = sigma(z) (1 - sigma(z)) times ``dout``; of ``s``'s shape.
    """
    s = cache
    dout = as_upstream(xp, "dout", dout, tuple(s.shape), s.dtype)
    return dout * s * (1.0 - s)


def sigmoid_prime(xp: Any, z: Any) -> Any:
    """Derivative of the sigmoid at the *input* ``z``: sigma'(z) = sigma(z)(1 - sigma(z)).

    Parameters
    ----------
    z : array, any shape
        The sigmoid's input (not its output ``sigma(z)``).

    Returns
    -------
    out : array
        sigma'(z), of ``z``'s shape and dtype.

    Notes
    -----
    Evaluated as ``sigma(z) * sigma(-z)``, which equals sigma(z)(1 - sigma(z))
    but avoids the cancellation in 1 - sigma(z) when sigma(z) rounds to 1
    (z > 17 in float32), so large ``|z|`` gives the tiny true value rather than 0.
    """
    z = as_float_array(xp, "z", z)
    return _sigmoid(xp, z) * _sigmoid(xp, -z)


def _sigmoid_inplace(z: np.ndarray, buf: Any = None) -> None:
    # 1 / (1 + exp(-z)): exp overflows to inf below z = -88 (float32) and the
    # reciprocal is then 0, the correctly rounded value (run under
    # errstate(over="ignore")); four ufuncs, no temporary.
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)


def _sigmoid_inplace_factor(s: np.ndarray, saved: None, scratch: Any) -> np.ndarray:
    np.subtract(1.0, s, out=scratch)  # d sigma/dz = s (1 - s), from the output s
    scratch *= s
    return scratch


def relu_forward(xp: Any, z: Any) -> tuple[Any, Any]:
    """Rectified linear unit ``relu(z) = max(z, 0)``, elementwise.

    Parameters
    ----------
    z : array, any shape

    Returns
    -------
    out : array
        Of ``z``'s shape and dtype.
    cache : array
        The *input* ``z``.
    """
    z = as_float_array(xp, "z", z)
    return xp.maximum(z, 0.0), z


def relu_backward(xp: Any, dout: Any, cache: Any) -> Any:
    """Gradient of ReLU: ``dz = dout * [z > 0]``.

    Parameters
    ----------
    dout : array
        Upstream gradient dL/dout, of ``z``'s shape.
    cache : array
        The forward *input* ``z``.

    Returns
    -------
    dz : array
        d relu/dz = 1 for z > 0, 0 for z < 0, times ``dout``; of ``z``'s shape.

    Notes
    -----
    At the kink z = 0 we use 0 (a subgradient; finite differences are
    meaningless there).
    """
    z = cache
    dout = as_upstream(xp, "dout", dout, tuple(z.shape), z.dtype)
    # A product with the boolean mask, not where(z > 0, dout, 0.0): NumPy
    # sends a where with a Python-float operand down a slow casting path.
    return dout * (z > 0)


_ZEROS: dict[np.dtype, np.ndarray] = {}


def _zeros_like(z: np.ndarray) -> np.ndarray:
    """A read-only array of zeros of z's shape and dtype, a view of one buffer per dtype."""
    flat = _ZEROS.get(z.dtype)
    if flat is None or flat.size < z.size:
        flat = np.zeros(max(z.size, 2 * (0 if flat is None else flat.size)), z.dtype)
        flat.flags.writeable = False
        _ZEROS[z.dtype] = flat
    return flat[: z.size].reshape(z.shape)


def _relu_inplace(z: np.ndarray, buf: np.ndarray) -> np.ndarray:
    # The float mask [z > 0] into the layer's buffer (the backward's factor: 0
    # at the kink, as the pair, so the backward is a single product), then
    # max(z, 0) against an array of zeros: NumPy's loop for a scalar operand
    # takes three times as long, and z * mask would turn z = -inf into NaN.
    np.greater(z, 0.0, out=buf)
    np.maximum(z, _zeros_like(z), out=z)
    return buf


def _relu_inplace_factor(out: np.ndarray, mask: np.ndarray, scratch: Any) -> np.ndarray:
    return mask


def tanh_forward(xp: Any, z: Any) -> tuple[Any, Any]:
    """Hyperbolic tangent ``tanh(z)``, elementwise, in (-1, 1).

    Parameters
    ----------
    z : array, any shape

    Returns
    -------
    out : array
        ``t = tanh(z)``, of ``z``'s shape and dtype. ``tanh`` saturates to +-1
        without overflow for any finite ``z``.
    cache : array
        The *output* ``t``.
    """
    z = as_float_array(xp, "z", z)
    t = xp.tanh(z)
    return t, t


def tanh_backward(xp: Any, dout: Any, cache: Any) -> Any:
    """Gradient of tanh: ``dz = dout * (1 - t^2)``.

    Parameters
    ----------
    dout : array
        Upstream gradient dL/dout, of ``t``'s shape.
    cache : array
        The forward *output* ``t = tanh(z)``, not the input ``z``.

    Returns
    -------
    dz : array
        d tanh/dz = 1 - tanh(z)^2, times ``dout``; of ``t``'s shape.
    """
    t = cache
    dout = as_upstream(xp, "dout", dout, tuple(t.shape), t.dtype)
    return dout * (1.0 - t * t)


def _tanh_inplace(z: np.ndarray, buf: Any = None) -> None:
    np.tanh(z, out=z)


def _tanh_inplace_factor(t: np.ndarray, saved: None, scratch: Any) -> np.ndarray:
    np.multiply(t, t, out=scratch)  # d tanh/dz = 1 - t^2, from the output t
    np.subtract(1.0, scratch, out=scratch)
    return scratch


def identity_forward(xp: Any, z: Any) -> tuple[Any, Any]:
    """Identity ``out = z`` (a linear output layer).

    Parameters
    ----------
    z : array, any shape

    Returns
    -------
    out : array
        ``z``, unchanged.
    cache : tuple of int
        ``z``'s shape.
    """
    z = as_float_array(xp, "z", z)
    return z, tuple(z.shape)


def identity_backward(xp: Any, dout: Any, cache: Any) -> Any:
    """Gradient of the identity: ``dz = dout`` (dz/dz = 1).

    Parameters
    ----------
    dout : array
        Upstream gradient dL/dout, of ``z``'s shape.
    cache : tuple of int
        ``z``'s shape, the only thing used.

    Returns
    -------
    dz : array
        ``dout``, unchanged.
    """
    return as_upstream(xp, "dout", dout, cache, None)


def _identity_inplace(z: np.ndarray, buf: Any = None) -> None:
    return None


def _identity_inplace_backward(dh: np.ndarray, out: Any, saved: None, scratch: Any) -> None:
    return None  # the derivative is 1


def step_forward(xp: Any, z: Any) -> tuple[Any, None]:
    """Heaviside step ``out = 1 if z > 0 else 0``, elementwise, in z's dtype.

    Forward only: its derivative is 0 wherever it exists and undefined at 0, so
    no gradient flows through it. Rosenblatt's perceptron rule, which uses it,
    updates on the error instead.

    Parameters
    ----------
    z : array, any shape

    Returns
    -------
    out : array
        0 or 1, of ``z``'s shape and dtype.
    cache : None
        Kept to preserve the ``(out, cache)`` shape of every forward.
    """
    z = as_float_array(xp, "z", z)
    return (z > 0).astype(z.dtype), None


DECLARATIONS = (
    KernelSpec(
        "sigmoid",
        "activation",
        sigmoid_forward,
        sigmoid_backward,
        ("z",),
        1,
        elementwise,
        "1 / (1 + e^-z) | dz = dout s (1 - s), from the cached output s",
        {"z": Domain("real", -30.0, 30.0)},
        extras=(sigmoid_prime,),
        inplace=InPlace.elementwise(_sigmoid_inplace, _sigmoid_inplace_factor),
    ),
    KernelSpec(
        "relu",
        "activation",
        relu_forward,
        relu_backward,
        ("z",),
        1,
        elementwise,
        "max(z, 0) | dz = dout [z > 0], from the cached input z (0 at the kink)",
        {"z": Domain("real", -30.0, 30.0, avoid=(0.0,), margin=1e-3)},
        inplace=InPlace.elementwise(_relu_inplace, _relu_inplace_factor),
    ),
    KernelSpec(
        "tanh",
        "activation",
        tanh_forward,
        tanh_backward,
        ("z",),
        1,
        elementwise,
        "tanh(z) | dz = dout (1 - t^2), from the cached output t",
        {"z": Domain("real", -10.0, 10.0)},
        inplace=InPlace.elementwise(_tanh_inplace, _tanh_inplace_factor),
    ),
    KernelSpec(
        "identity",
        "activation",
        identity_forward,
        identity_backward,
        ("z",),
        1,
        elementwise,
        "z | dz = dout",
        inplace=InPlace(_identity_inplace, _identity_inplace_backward),
    ),
    KernelSpec(
        "step",
        "activation",
        step_forward,
        None,
        ("z",),
        0,
        elementwise,
        "1 if z > 0 else 0 | none (forward only: the perceptron rule)",
    ),
)
"""This module's kernels, declared once (see :mod:`backprop.kernels.spec`)."""
