"""Parameters as pytrees: flattened to named leaves, checked, rebuilt for the caller.

A pytree here is an array-like leaf, or a dict / list / tuple (named tuples
included) of pytrees. Leaves are named by their path: ``w``, ``layers[0].b``,
``enc['k'][1]`` (dict keys that are identifiers print bare after a dot, any
other key as its repr in brackets).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def _key(path: str, key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def flatten(tree: Any, path: str = "") -> tuple[list[tuple[str, Any]], Callable[[list[Any]], Any]]:
    """``(leaves, rebuild)``: named leaves in order, and a function making a tree of new leaves.

    Parameters
    ----------
    tree : pytree
        A leaf, or a dict / list / tuple of pytrees.
    path : str
        Prefix of the leaf names.

    Returns
    -------
    leaves : list of (name, leaf)
    rebuild : callable
        ``rebuild(values)`` -> a tree of the same structure holding ``values``
        (one per leaf, in order).
    """
    if isinstance(tree, Mapping):
        parts = [flatten(v, _key(path, k)) for k, v in tree.items()]
        keys = list(tree)

        def rebuild_map(values: list[Any]) -> Any:
            out, at = {}, 0
            for k, (leaves, sub) in zip(keys, parts, strict=True):
                out[k] = sub(values[at : at + len(leaves)])
                at += len(leaves)
            return out

        return [leaf for leaves, _ in parts for leaf in leaves], rebuild_map
    if isinstance(tree, (list, tuple)):
        name = path or "params"
        parts = [flatten(v, f"{name}[{j}]") for j, v in enumerate(tree)]
        kind = type(tree)

        def rebuild_seq(values: list[Any]) -> Any:
            items, at = [], 0
            for leaves, sub in parts:
                items.append(sub(values[at : at + len(leaves)]))
                at += len(leaves)
            if hasattr(kind, "_fields"):  # a named tuple
                return kind(*items)
            return kind(items)

        return [leaf for leaves, _ in parts for leaf in leaves], rebuild_seq
    return [(path or "params", tree)], lambda values: values[0]


def as_float(
    name: str, value: Any, dtype: str, what: str = "params"
) -> tuple[np.ndarray, str | None]:
    """A working float copy of one leaf, and a note when it was cast from integers.

    Raises
    ------
    ValueError
        For complex values (a real-valued loss has no complex gradient to
        check against finite differences) and for non-numeric leaves.
    """
    try:
        arr = np.asarray(value)
    except Exception as e:  # any conversion failure is refused by name
        raise ValueError(f"{what} {name!r} is not an array: {type(value).__name__} ({e})") from e
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueError(
            f"{what} {name!r} is complex ({arr.dtype}); complex gradients are not supported: "
            f"check the real and imaginary parts as two real parameters"
        )
    if kind not in "fiub":
        raise ValueError(
            f"{what} {name!r} must be a real float or integer array, got dtype {arr.dtype}"
            f" ({type(value).__name__})"
        )
    note = None
    if kind in "iub":
        note = (
            f"note: {what} {name!r} is {arr.dtype}: checked as {dtype} (the loss is evaluated "
            f"at non-integer points near it)"
        )
    return np.array(arr, dtype=dtype), note


def key_sets(expected: list[str], got: list[str]) -> str:
    """Both key sets and their differences, for a mismatch message."""
    e, g = set(expected), set(got)
    missing = sorted(e - g, key=str)
    extra = sorted(g - e, key=str)
    parts = [f"got {sorted(g, key=str)}", f"expected {sorted(e, key=str)}"]
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"unexpected {extra}")
    return "; ".join(parts)
