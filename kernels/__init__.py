"""Hand-derived forward/backward kernels on NumPy and JAX.

Each operation is written once, against an array namespace ``xp``
(``numpy`` or ``jax.numpy``), in :mod:`backprop.kernels.linear`,
:mod:`backprop.kernels.activations` and :mod:`backprop.kernels.losses`, and declared once in
:mod:`backprop.kernels.registry`. :func:`get_backend` binds ``xp`` and returns an
object offering every registered kernel under the same names on both
backends::

    K = get_backend("numpy")          # or "jax"
    out, cache = K.sigmoid_forward(z)
    dz = K.sigmoid_backward(dout, cache)

The JAX backend's kernels are pure and branch only on shapes and dtypes, so
they can be called inside ``jax.jit``, ``lax.scan`` and ``jax.vmap``.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

from .registry import KERNELS, PAIRS, KernelSpec, get_spec

BACKENDS = ("numpy", "jax")

FUNCTIONS: tuple[Callable[..., Any], ...] = tuple(
    fn for spec in KERNELS.values() for fn in spec.functions()
)
"""Every function a backend binds, read from the registry."""
KERNEL_NAMES = tuple(fn.__name__ for fn in FUNCTIONS)


def _bind(fn: Callable[..., Any], xp: types.ModuleType) -> Callable[..., Any]:
    # functools.partial is implemented in C: it adds less to each call than a
    # Python wrapper would, which matters for NumPy at the XOR size, where a
    # kernel call is mostly overhead.
    bound = functools.partial(fn, xp)
    bound.__name__ = getattr(fn, "__name__", "kernel")
    bound.__qualname__ = getattr(fn, "__qualname__", bound.__name__)
    bound.__doc__ = fn.__doc__
    bound.__module__ = getattr(fn, "__module__", None)
    return bound


class Backend:
    """The kernels with one array namespace bound.

    Attributes: ``name`` ("numpy" or "jax"), ``xp`` (the namespace), and one
    callable per entry of :data:`KERNEL_NAMES`, e.g. ``matmul_forward(x, w)``.
    """

    def __init__(self, name: str, xp: types.ModuleType) -> None:
        self.name = name
        self.xp = xp
        self._pairs: dict[str, tuple[KernelSpec, Any, Any]] = {}
        for fn in FUNCTIONS:
            setattr(self, fn.__name__, _bind(fn, xp))

    def pair(
        self, name: str, spec: KernelSpec | None = None
    ) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """The registered kernel ``name``'s forward and backward, bound to this backend.

        Reads the registry at each call, so a kernel registered after the
        backend was made (:func:`backprop.register_activation`) is found too.
        ``spec``: bind this declaration instead (one not registered yet).
        """
        spec = get_spec(name) if spec is None else spec
        if spec.backward is None:
            raise ValueError(f"kernel {name!r} has no backward half")
        cached = self._pairs.get(name)
        if cached is None or cached[0] is not spec:
            cached = (spec, _bind(spec.forward, self.xp), _bind(spec.backward, self.xp))
            self._pairs[name] = cached
        return cached[1], cached[2]

    def __repr__(self) -> str:
        return f"<kernels backend {self.name!r}>"

    def __getattr__(self, name: str) -> Any:  # reached only for missing names
        raise AttributeError(
            f"backend {self.name!r} has no kernel {name!r}; kernels: {', '.join(KERNEL_NAMES)}"
        )


@functools.cache
def get_backend(name: str) -> Backend:
    """Return the kernels bound to ``"numpy"`` or ``"jax"`` (``jax.numpy``).

    Raises ``ValueError`` for any other name, listing the choices, and
    ``ImportError`` with the install command when ``"jax"`` is asked for and
    JAX is not installed.
    """
    if name == "numpy":
        import numpy

        return Backend("numpy", numpy)
    if name == "jax":
        try:
            import jax.numpy
        except ImportError as exc:
            raise ImportError(
                "the 'jax' backend needs JAX: pip install 'backprop-by-hand[jax]' "
                "(or pip install jax jaxlib)"
            ) from exc
        return Backend("jax", jax.numpy)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(map(repr, BACKENDS))}")


__all__ = [
    "BACKENDS",
    "FUNCTIONS",
    "KERNELS",
    "KERNEL_NAMES",
    "PAIRS",
    "Backend",
    "KernelSpec",
    "get_backend",
    "get_spec",
]
