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
:data:`FAMILIES`. Output heads (an output activation fused with its loss)
are declared beside their loss kernels, in a family module's ``HEADS``, and
collected in :data:`HEADS`.

The training code reads only these tables: :func:`activation` and
:func:`head` look a name up (and list the valid names when it is unknown);
:func:`add` and :func:`add_head` are how :func:`backprop.register_activation`
and :func:`backprop.register_head` put a user's own kernel beside ours.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import activations, attention, conv, dropout, embedding, linear, losses, norms, smooth
from .spec import Head, KernelSpec

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

HEADS: dict[str, Head] = {head.name: head for m in FAMILIES for head in getattr(m, "HEADS", ())}
"""Every output head, by its output activation's name."""

BUILT_IN = frozenset(KERNELS) | frozenset(HEADS)
"""The library's own names, which registration cannot replace."""


def activations() -> tuple[str, ...]:
    """The names a hidden layer can use now: every activation with a backward half."""
    return tuple(
        name
        for name, spec in KERNELS.items()
        if spec.family == "activation" and spec.backward is not None
    )


def activation(name: Any) -> KernelSpec:
    """The activation ``name``; ``ValueError`` listing the trainable ones otherwise."""
    valid = activations()
    if not isinstance(name, str) or name not in valid:
        raise ValueError(f"activation must be one of {', '.join(valid)}, got {name!r}")
    return KERNELS[name]


def head(name: Any) -> Head:
    """The output head ``name``; ``ValueError`` listing the heads otherwise.

    Also raises when the head's loss kernel is not registered, or has no backward.
    """
    if not isinstance(name, str) or name not in HEADS:
        raise ValueError(f"output must be one of {', '.join(HEADS)}, got {name!r}")
    found = HEADS[name]
    spec = KERNELS.get(found.kernel)
    if spec is None or spec.backward is None or spec.family != "loss":
        raise ValueError(
            f"output {name!r} names the loss kernel {found.kernel!r}, which is not a registered "
            f"loss with a backward; losses: "
            f"{', '.join(n for n, s in KERNELS.items() if s.family == 'loss')}"
        )
    return found


def head_inplace(found: Head) -> Any:
    """The head's in-place form ``(z, Y, dz) -> loss``: declared, or its kernel's pair on NumPy."""
    if found.inplace is not None:
        return found.inplace
    spec = KERNELS[found.kernel]

    def inplace(z: Any, Y: Any, dz: Any) -> float:
        loss, cache = spec.forward(np, z, Y)
        dz[...] = spec.backward(np, 1.0, cache)  # type: ignore[misc]
        return float(loss)

    return inplace


def add(spec: KernelSpec) -> None:
    """Register ``spec`` (a user's kernel); a built-in name cannot be replaced."""
    if spec.name in BUILT_IN:
        raise ValueError(f"{spec.name!r} is one of the library's own kernels; choose another name")
    KERNELS[spec.name] = spec


def add_head(found: Head) -> None:
    """Register an output head (a user's); a built-in name cannot be replaced."""
    if found.name in BUILT_IN:
        raise ValueError(f"{found.name!r} is one of the library's own heads; choose another name")
    HEADS[found.name] = found


def remove(name: str) -> None:
    """Forget a user's kernel or head called ``name`` (built-ins stay)."""
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is one of the library's own names and cannot be removed")
    KERNELS.pop(name, None)
    HEADS.pop(name, None)


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
