"""The kernel registry: every kernel declared once.

A :class:`KernelSpec` names a kernel's forward and backward halves, its
inputs (in the forward's order), how many of them get a gradient, the
shapes its inputs take and the range each input's values are valid (and
well conditioned for finite differences) in. Everything that iterates over
kernels reads :data:`KERNELS`: :func:`backprop.kernels.get_backend` binds every
function listed here, the gradient-check suite and the property tests draw
their inputs from the declared shapes and ranges, the kernel benchmarks
time each pair at a small and a large size, and ``python -m backprop
gradcheck`` prints one row per kernel input. Adding a kernel means writing
its pair in its family's module and its :class:`KernelSpec` in that
module's ``DECLARATIONS``; a new family module is added to
:data:`FAMILIES`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import activations, attention, conv, dropout, embedding, linear, losses, norms, smooth
from .spec import KernelSpec

FAMILIES = (
    linear,
    activations,
    losses,
    smooth,
    norms,
    dropout,
    embedding,
    conv,
    attention,
)
"""The family modules, each ending with its ``DECLARATIONS``, in table order."""

KERNELS: dict[str, KernelSpec] = {
    spec.name: spec for module in FAMILIES for spec in module.DECLARATIONS
}
"""Every kernel, by name, in the order tables list them."""

PAIRS = tuple(name for name, spec in KERNELS.items() if spec.backward is not None)
"""Kernels with a backward half: the ones gradient checks and benchmarks cover."""


def get_spec(name: str) -> KernelSpec:
    """The :class:`KernelSpec` called ``name``; ``ValueError`` listing the names otherwise."""
    try:
        return KERNELS[name]
    except KeyError:
        raise ValueError(f"unknown kernel {name!r}; kernels: {', '.join(KERNELS)}") from None


def sample_inputs(
    spec: KernelSpec,
    rng: np.random.Generator,
    n: int = 5,
    d: int = 3,
    m: int = 4,
    dtype: Any = "float64",
) -> dict[str, Any]:
    """Random inputs for ``spec`` at batch n, d inputs, m outputs, drawn from its domains.

    Returns a mapping input name -> array (a Python float for a scale),
    in the forward's argument order. A spec with its own ``sample`` builder
    draws from it (integer indices and seeds stay integers).
    """
    if spec.sample is not None:
        drawn = spec.sample(rng, n, d, m)
        return {
            k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
            for k, v in drawn.items()
        }
    shapes = spec.shapes(n, d, m)
    out: dict[str, Any] = {}
    for name in spec.inputs:
        shape, dom = shapes[name], spec.domain(name)
        if dom.kind == "targets":
            value = rng.integers(0, 2, shape).astype(np.float64)
        elif dom.kind == "onehot":
            value = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
        elif dom.kind == "scale":
            out[name] = float(rng.uniform(dom.lo, dom.hi))
            continue
        else:
            value = rng.uniform(dom.lo, dom.hi, shape)
            for point in dom.avoid:
                near = np.abs(value - point) < dom.margin
                value = np.where(near, point + 0.5, value)
        out[name] = value.astype(dtype)
    return out
