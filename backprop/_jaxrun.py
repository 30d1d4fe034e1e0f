"""Compile a JAX training function ahead of time, then time its run alone."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from backprop import _interrupt

_COMPILED: dict[Hashable, Any] = {}


def compiled(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    static: dict[str, Any],
    x64: bool,
    cache: bool = True,
) -> tuple[Any, float]:
    """``jax.jit(fn, static_argnames=static)`` compiled for ``args``: ``(executable, seconds)``.

    The executable takes the positional ``args`` (already placed, or host
    arrays) and is kept per function, static arguments, argument shapes,
    dtypes and shardings (unless ``cache=False``). Call it inside
    ``jax.enable_x64(x64)`` when the arguments are float64.
    """
    import jax

    with jax.enable_x64(x64):
        shapes = tuple(
            (np.shape(a), a.dtype.name, getattr(a, "sharding", None)) for a in jax.tree.leaves(args)
        )
        key = (fn, tuple(sorted(static.items())), jax.tree.structure(args), shapes)
        t0 = time.perf_counter()
        executable = _COMPILED.get(key)
        if executable is None:
            with _interrupt.deferred():  # Ctrl-C recorded, raised once compiled
                jitted = jax.jit(fn, static_argnames=tuple(static))
                executable = jitted.lower(*args, **static).compile()
            if cache:
                _COMPILED[key] = executable
    return executable, time.perf_counter() - t0


def compile_and_run(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    static: dict[str, Any],
    x64: bool,
    cache: bool = True,
) -> tuple[Any, float, float]:
    """Run ``jax.jit(fn, static_argnames=static)(*args, **static)``.

    Returns ``(outputs as NumPy arrays, run seconds, compile seconds)``. The
    executable is compiled once per function, static arguments, argument
    shapes, dtypes and shardings, and kept (unless ``cache=False``: a
    progress callback compiled into a run is the caller's object, not worth
    keeping alive); the run time excludes compilation and waits for the
    result. ``x64`` scopes ``jax.enable_x64`` to this call (float64).
    """
    import jax

    with jax.enable_x64(x64):
        # already-placed arrays keep their sharding (a multi-process global array
        # cannot be moved); host arrays go to the default device
        args = jax.tree.map(lambda a: a if isinstance(a, jax.Array) else jax.device_put(a), args)
        executable, compile_seconds = compiled(fn, args, static, x64, cache)
        t0 = time.perf_counter()
        out = jax.block_until_ready(executable(*args))
        jax.effects_barrier()  # host callbacks (progress) have all run
        seconds = time.perf_counter() - t0
    return jax.tree.map(np.asarray, out), seconds, compile_seconds
