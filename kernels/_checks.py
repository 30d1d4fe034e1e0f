"""Input checks shared by the kernels.

The checks look at shapes and dtypes, which are static under ``jax.jit``.
The one check of *values*, :func:`require_in_range`, runs only on concrete
arrays and lets a JAX tracer through, so the kernels stay traceable.
"""

from __future__ import annotations

from typing import Any


def as_float_array(xp: Any, name: str, x: Any) -> Any:
    """Return ``x`` as an array of namespace ``xp``, requiring a float dtype.

    Raises ``TypeError`` naming ``name`` when the dtype is not floating point,
    and when JAX would silently truncate float64 to float32 because
    ``jax_enable_x64`` is off.
    """
    dtype = getattr(x, "dtype", None)
    if xp.__name__ == "jax.numpy" and dtype is not None and dtype.itemsize == 8:
        import jax

        if dtype.kind == "f" and not jax.config.jax_enable_x64:
            raise TypeError(
                f"{name} has dtype float64 but jax_enable_x64 is off, so JAX would "
                "silently compute in float32; enable it with "
                "jax.config.update('jax_enable_x64', True) or "
                "`with jax.enable_x64(True):`, or pass float32"
            )
    if x is None or isinstance(x, (str, bytes)):  # jnp.asarray(",") is a SyntaxError
        raise TypeError(f"{name} must be a floating-point array (float32 or float64), got {x!r}")
    try:
        x = xp.asarray(x)
    except (TypeError, ValueError, OverflowError) as exc:  # JAX: object arrays, 2**70
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), got "
            f"{type(x).__name__}: {exc}"
        ) from None
    if x.dtype.kind != "f":
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), got dtype {x.dtype}"
        )
    return x


def require_shape(name: str, x: Any, shape: tuple[int, ...], why: str) -> None:
    """Raise ``ValueError`` unless ``x.shape == shape``; ``why`` says whose shape it is."""
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} ({why}), got {tuple(x.shape)}")


def as_upstream(xp: Any, name: str, dout: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Check an upstream gradient: it must have the forward output's shape.

    A Python float or 0-d array is accepted for a scalar output and is cast to
    the output's dtype, so ``backward(1.0, cache)`` preserves float32.
    """
    if isinstance(dout, (int, float)):
        dout = xp.asarray(dout, dtype=dtype)
    else:
        dout = as_float_array(xp, name, dout)
    require_shape(name, dout, shape, "the forward output's shape")
    return dout


def require_in_range(xp: Any, name: str, x: Any, lo: float | None, hi: float | None) -> None:
    """Raise ``ValueError`` if a concrete ``x`` has entries outside [lo, hi] (or NaN).

    A JAX tracer (inside ``jax.jit``) has no values to look at, and branching
    on values would break tracing, so it passes unchecked: the training
    functions check their data once, at the entry, before anything is traced.
    """
    if xp.__name__ != "numpy":
        import jax

        if isinstance(x, jax.core.Tracer):
            return
    if x.size == 0:
        return
    low, high = float(x.min()), float(x.max())
    bad = (lo is not None and not low >= lo) or (hi is not None and not high <= hi)
    if bad or low != low or high != high:
        want = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must hold values {want}, got values in [{low}, {high}]")
