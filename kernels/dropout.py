"""Inverted dropout.

Each entry is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``,
so the expected output is the input and nothing changes at test time (just
don't call it). The randomness comes from ``seed``: on NumPy an ``int`` or a
``numpy.random.Generator`` (which advances: call the forward once per step),
on JAX an ``int`` or a key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``).
The same seed gives the same mask, which is what makes the kernel checkable:
for a fixed mask dropout is linear in ``x``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._checks import as_float_array, as_upstream, require_in_range
from .spec import KernelSpec


def _uniform(xp: Any, seed: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    if xp.__name__ == "numpy":
        if isinstance(seed, np.random.Generator):
            rng = seed
        elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
            rng = np.random.default_rng(int(seed))
        else:
            raise TypeError(
                f"seed must be an int or a numpy.random.Generator on the NumPy backend, "
                f"got {type(seed).__name__}"
            )
        return rng.random(shape, dtype=np.dtype(dtype))
    import jax

    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        key = jax.random.key(int(seed))
    elif hasattr(seed, "dtype") and jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
        key = seed
    elif hasattr(seed, "dtype") and seed.dtype == np.uint32 and tuple(seed.shape) == (2,):
        key = seed  # a raw jax.random.PRNGKey
    elif hasattr(seed, "dtype") and seed.dtype.kind in "iu" and seed.ndim == 0:
        key = jax.random.key(seed)  # a traced integer seed
    else:
        raise TypeError(
            f"seed must be an int or a JAX key (jax.random.key) on the JAX backend, got {seed!r}"
        )
    return jax.random.uniform(key, shape, dtype)


def dropout_forward(xp: Any, x: Any, p: Any, seed: Any) -> tuple[Any, Any]:
    """Inverted dropout: ``out = x * mask``, ``mask = [u >= p] / (1 - p)``, u ~ U[0, 1).

    Parameters
    ----------
    x : array, any shape
        float32 or float64.
    p : float in [0, 1)
        The probability of dropping an entry; ``p = 0`` is the identity
        (every u >= 0, scale 1: the output equals ``x`` exactly).
    seed : int, numpy.random.Generator (NumPy) or JAX key (JAX)
        Where the mask comes from; the same int or key gives the same mask.

    Returns
    -------
    out : array, x's shape and dtype
    cache : array
        The mask, 0 or ``1 / (1 - p)`` per entry, in x's dtype.

    Raises
    ------
    ValueError
        If ``p`` is outside [0, 1) (checked when concrete).
    TypeError
        If ``p`` is not a real scalar or ``seed`` is not a seed of this backend.
    """
    x = as_float_array(xp, "x", x)
    if isinstance(p, (str, bytes, bool)) or p is None or np.ndim(p) != 0:
        raise TypeError(f"p must be a real number in [0, 1), got {p!r}")
    p_arr = xp.asarray(p, dtype=x.dtype)
    require_in_range(xp, "p", p_arr, 0.0, None)
    if isinstance(p, numbers.Real) and not p < 1:
        raise ValueError(f"p must be in [0, 1) (1 would drop everything), got {p!r}")
    u = _uniform(xp, seed, tuple(x.shape), x.dtype)
    scale = 1.0 / (1.0 - p_arr)
    if xp.__name__ == "numpy":
        mask = np.multiply(u >= p_arr, scale, dtype=x.dtype)
        return x * mask, mask
    mask = (u >= p_arr) * scale
    return x * mask, mask


def dropout_backward(xp: Any, dout: Any, cache: Any) -> Any:
    """Gradient of dropout: ``dx = dout * mask``, the forward's own mask.

    Routing rule: a dropped entry gets exactly 0, a kept one ``dout / (1 - p)``.

    Parameters
    ----------
    dout : array, x's shape
    cache : array
        The mask from :func:`dropout_forward`.

    Returns
    -------
    dx : array, x's shape and dtype
    """
    mask = cache
    dout = as_upstream(xp, "dout", dout, tuple(mask.shape), mask.dtype)
    return dout * mask


def _sample(rng: np.random.Generator, n: int, d: int, m: int) -> dict[str, Any]:
    return {
        "x": rng.uniform(-3.0, 3.0, (1 + (n - 1) % 8, m)),  # rows kept few: checks stay quick
        "p": float(rng.uniform(0.0, 0.8)),
        "seed": int(rng.integers(0, 2**31)),
    }


DECLARATIONS = (
    KernelSpec(
        "dropout",
        "dropout",
        dropout_forward,
        dropout_backward,
        ("x", "p", "seed"),
        1,
        lambda n, d, m: {"x": (n, m), "p": (), "seed": ()},
        "x [u >= p] / (1 - p), u ~ U[0, 1) from the seed | dx = dout mask, from the cached mask",
        sample=_sample,
        ties="dropped entries get 0, kept ones dout / (1 - p)",
    ),
)
"""This module's kernels, declared once (see :mod:`backprop.kernels.spec`)."""
