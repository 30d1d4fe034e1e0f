"""Save and load MLP parameters as a single ``.npz`` file.

The file holds ``w0, b0, w1, b1, ...`` (layer i's weights (D_in, D_out) and
biases (D_out,)). Writing is atomic: the arrays go to a temporary file in
the same directory, which is flushed to disk and then renamed over the
target, so a crash mid-write leaves either the old file or the new one,
never half of either. Loading validates every name, shape and dtype.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backprop.mlp import Layer


def save_params(path: str | os.PathLike[str], params: Sequence[Layer]) -> Path:
    """Write ``params`` (a sequence of (w, b) layers) to ``path`` atomically; return the path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {str(path)!r}")
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(params):
        w, b = (np.asarray(a) for a in layer)
        arrays[f"w{i}"], arrays[f"b{i}"] = w, b
    if not arrays:
        raise ValueError("params is empty: nothing to save")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_params(
    path: str | os.PathLike[str], sizes: Sequence[int], dtype: Any = None
) -> tuple[Layer, ...]:
    """Read parameters saved by :func:`save_params`, checked against ``sizes``.

    sizes: the model's layer widths, e.g. ``[2, 5, 1]``; ``dtype``: required
    dtype (None accepts float32 or float64). Raises ``FileNotFoundError`` for
    a missing file and ``ValueError`` naming the problem for a truncated or
    corrupt file, missing or extra arrays, or a wrong shape or dtype.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no parameter file at {str(path)!r}")
    expected = {}
    for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes)):
        expected[f"w{i}"], expected[f"b{i}"] = (d_in, d_out), (d_out,)
    try:
        # The file is opened here, not by np.load, which leaks its handle
        # when the zip directory of a truncated file fails to parse.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
            names = set(data.files)
            if names != set(expected):
                raise ValueError(
                    f"{str(path)!r} holds arrays {sorted(names)}, the model {list(sizes)} needs "
                    f"{sorted(expected)}"
                )
            arrays = {name: data[name] for name in expected}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:  # OSError: not a zip at all
        raise ValueError(
            f"{str(path)!r} is not a readable .npz file (truncated or corrupt): {exc}"
        ) from exc
    for name, shape in expected.items():
        a = arrays[name]
        if a.shape != shape:
            raise ValueError(f"{str(path)!r}: {name} has shape {a.shape}, the model needs {shape}")
        if dtype is not None and a.dtype != np.dtype(dtype):
            raise ValueError(
                f"{str(path)!r}: {name} has dtype {a.dtype}, the model needs {np.dtype(dtype)}"
            )
        if a.dtype.name not in ("float32", "float64"):
            raise ValueError(
                f"{str(path)!r}: {name} has dtype {a.dtype}, expected float32 or float64"
            )
    n = len(sizes) - 1
    return tuple(Layer(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(n))
