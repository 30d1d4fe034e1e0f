"""``train_xor_manual``: the notes' XOR loop, trained on NumPy or JAX.

The derivation is :func:`backprop.xor.xor_loss_and_grads` with the update
:func:`backprop.xor.xor_step`; this module runs it through its fast
transcriptions (:mod:`backprop.fast`) and reports the result.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop._validate import (
    check_array,
    check_backend,
    check_count,
    check_dtype,
    check_lr,
    check_positive_int,
    first_nonfinite,
)
from backprop.data import xor_data
from backprop.kernels import get_backend
from backprop.xor.derivation import DEFAULT_LR, MAX_HIDDEN, XorParams, init_xor_params, xor_predict
from backprop.xor.inplace import train_inplace
from backprop.xor.single import train_single_jax


@dataclass(frozen=True, repr=False)
class XorResult:
    """What :func:`train_xor_manual` returns.

    Attributes
    ----------
    w1, b1, w2, b2 : NumPy arrays
        The trained parameters: (2, H), (H,), (H, 1), (1,).
    costs : (K,)
        The cost at the epochs ``cost_epochs``: every ``log_every`` epochs
        from epoch 0 (the cost before that epoch's update), and last the cost
        of the trained parameters (after ``epochs`` updates).
    cost_epochs : (K,)
        0, log_every, 2 log_every, ..., then ``epochs``.
    predictions : (4,)
        The trained network's probabilities on (0,0), (0,1), (1,0), (1,1).
    accuracy : float
        Fraction of the four rows where ``predictions > 0.5`` matches XOR.
    train_time, compile_time, wall_time : float
        The training loop's seconds; JAX's compilation (0 on NumPy); the
        whole call.
    """

    backend: str
    dtype: str
    epochs: int
    lr: float
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    costs: np.ndarray
    cost_epochs: np.ndarray
    predictions: np.ndarray
    accuracy: float
    train_time: float
    compile_time: float
    wall_time: float

    @property
    def params(self) -> XorParams:
        return XorParams(self.w1, self.b1, self.w2, self.b2)

    @property
    def final_cost(self) -> float:
        """Cost of the trained parameters, ``costs[-1]``."""
        return float(self.costs[-1])

    @property
    def time_per_epoch(self) -> float:
        """Seconds per epoch (one full-batch update), compilation excluded."""
        return self.train_time / self.epochs

    def truth_table(self) -> str:
        """The four rows with target, probability and rounded prediction."""
        X, y = xor_data("float64")
        lines = ["x1 x2 | target | p(y=1)  | predicted"]
        for (a, b), t, p in zip(X.astype(int), y[:, 0].astype(int), self.predictions, strict=True):
            lines.append(f" {a}  {b} |   {t}    | {p:.5f} |     {int(p > 0.5)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        hidden = self.w1.shape[1]
        return (
            f"XorResult(2-{hidden}-1 on {self.backend} {self.dtype}, {self.epochs} epochs, "
            f"lr {self.lr:g}: cost {self.costs[0]:.4g} -> {self.final_cost:.4g}, accuracy "
            f"{self.accuracy:.0%}, {self.time_per_epoch * 1e6:.3g} us/epoch)"
        )


def train_xor_manual(
    *,
    backend: str = "numpy",
    epochs: int = 10_000,
    lr: float = DEFAULT_LR,
    hidden: int = 2,
    seed: int = 0,
    init: Mapping[str, Any] | XorParams | None = None,
    dtype: str = "float32",
    log_every: int = 100,
    verbose: bool = False,
) -> XorResult:
    """Train a 2-``hidden``-1 sigmoid network on XOR with hand-written backprop.

    Full-batch gradient descent on the four rows, mean BCE: each of the
    ``epochs`` is one update ``w = w - lr * dw`` with the gradient of
    :func:`backprop.xor.xor_loss_and_grads`.

    Parameters
    ----------
    backend : "numpy" or "jax"
        NumPy runs the in-place transcription; JAX compiles the whole loop.
    epochs : int
        Updates to make (each a pass over the four rows).
    lr : float
        Learning rate. The default 1.0 is not the notes' 0.1: with 0.1 the
        cost is still far above 0.01 after 10,000 epochs.
    hidden : int
        Hidden units H.
    seed : int
        Seed of :func:`init_xor_params`. About 70 % of N(0, 1) starts solve
        XOR at all (the rest stall in a local minimum); ``seed=0`` is one
        that does, on both backends.
    init : mapping or XorParams, optional
        Explicit starting arrays ``w1`` (2, H), ``b1`` (H,), ``w2`` (H, 1),
        ``b2`` (1,), to replay a run exactly (they are copied, never modified).
    dtype : "float32" or "float64"
        JAX float64 runs inside ``jax.enable_x64(True)``, scoped to this call.
    log_every : int
        The cost is recorded (and, with ``verbose``, printed) every
        ``log_every`` epochs and after the last one.

    Returns
    -------
    XorResult

    Raises
    ------
    ValueError
        Naming the argument, for a bad backend, epochs, lr, hidden, seed,
        dtype, log_every or init.
    FloatingPointError
        When the cost becomes NaN or infinite, naming the epoch and whether
        the starting parameters or the learning rate are to blame.
    """
    t_start = time.perf_counter()
    backend = check_backend(backend)
    epochs = check_count("epochs", epochs)
    log_every = check_positive_int("log_every", log_every)
    dt = check_dtype(dtype)
    lr = check_lr(lr, dt)
    hidden = check_positive_int("hidden", hidden, MAX_HIDDEN)
    params = init_xor_params(hidden, seed, dt) if init is None else _check_init(init, hidden, dt)
    X, y = xor_data(dt)

    if backend == "numpy":
        params, costs, cost_epochs, train_time = train_inplace(params, X, y, lr, epochs, log_every)
        compile_time = 0.0
    else:
        params, costs, cost_epochs, train_time, compile_time = train_single_jax(
            params, X, y, lr, epochs, log_every
        )

    k = first_nonfinite(costs)
    if k is not None:
        raise FloatingPointError(_divergence(int(cost_epochs[k]), costs[k], costs[0], lr, dt))
    if verbose:
        for i, c in zip(cost_epochs, costs, strict=True):
            print(f"epoch {i:>6}  cost {c:.6g}")

    with np.errstate(over="ignore"):
        p = np.asarray(xor_predict(get_backend("numpy"), params, X))[:, 0]
    accuracy = float(np.mean((p > 0.5) == (y[:, 0] > 0.5)))
    return XorResult(
        backend=backend,
        dtype=dt.name,
        epochs=epochs,
        lr=float(lr),
        w1=params.w1,
        b1=params.b1,
        w2=params.w2,
        b2=params.b2,
        costs=costs,
        cost_epochs=cost_epochs,
        predictions=p,
        accuracy=accuracy,
        train_time=train_time,
        compile_time=compile_time,
        wall_time=time.perf_counter() - t_start,
    )


def _divergence(epoch: int, value: float, first: float, lr: float, dt: np.dtype) -> str:
    if epoch == 0 or not np.isfinite(first):
        return (
            f"cost was {value} at epoch {epoch}, before any update could cause it: the starting "
            f"parameters overflow {dt.name} (use smaller initial weights, or float64)"
        )
    return f"cost became {value} at epoch {epoch} (lr={lr}); training diverged - try a smaller lr"


def _check_init(init: Any, hidden: int, dt: np.dtype) -> XorParams:
    if isinstance(init, XorParams):
        init = init._asdict()
    if not isinstance(init, Mapping):
        raise ValueError(
            f"init must be a mapping with keys w1, b1, w2, b2, got {type(init).__name__}"
        )
    expected = {"w1": (2, hidden), "b1": (hidden,), "w2": (hidden, 1), "b2": (1,)}
    if set(init) != set(expected):
        raise ValueError(f"init must have exactly the keys w1, b1, w2, b2, got {sorted(init)}")
    arrays = {}
    for name, shape in expected.items():
        a = check_array(f"init[{name!r}]", init[name], dt)  # a copy in dt: never the caller's
        if a.shape != shape:
            raise ValueError(
                f"init[{name!r}] must have shape {shape} (hidden={hidden}), got {a.shape}"
            )
        arrays[name] = a
    return XorParams(**arrays)
