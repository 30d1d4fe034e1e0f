"""The notes' manual XOR loop, corrected: a 2-H-1 sigmoid network trained by
hand-written backpropagation on either backend.

Forward, as the notes wrote it::

    l1 = X @ w1 + b1        a1 = sigmoid(l1)
    l2 = a1 @ w2 + b2       y_pred = sigmoid(l2)
    cost = mean BCE(y_pred, y)

The backward pass chains the kernels' backward halves in reverse order, and
the four updates are written out, one line per parameter: that is
:func:`xor_step`, the reference. JAX runs it as the whole loop inside one
``jax.jit``-compiled ``lax.scan``. NumPy runs the same derivation fused and
in place (:mod:`backprop.xor_fused`, 18 NumPy calls a step instead of ~45,
about 5x faster at this size), tested to follow :func:`xor_step` step by
step. No autodiff anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from backprop._jaxrun import compile_and_run
from backprop._validate import check_backend, check_lr, check_positive_int, first_nonfinite
from backprop.data import check_dtype, xor_data
from backprop.xor_fused import train_fused
from kernels import Backend, get_backend

DEFAULT_LR = 1.0


class XorParams(NamedTuple):
    """Parameters of the 2-H-1 network: w1 (2, H), b1 (H,), w2 (H, 1), b2 (1,).

    A NamedTuple, so JAX treats it as a pytree and ``lax.scan`` can carry it.
    """

    w1: Any
    b1: Any
    w2: Any
    b2: Any


def xor_forward(K: Backend, params: XorParams, X: Any) -> tuple[Any, tuple[Any, ...]]:
    """Forward pass: ``X`` (N, 2) -> probabilities ``y_pred`` (N, 1), plus the caches."""
    w1, b1, w2, b2 = params
    l1_lin, c_mm1 = K.matmul_forward(X, w1)
    l1, c_b1 = K.add_bias_forward(l1_lin, b1)
    a1, c_s1 = K.sigmoid_forward(l1)
    l2_lin, c_mm2 = K.matmul_forward(a1, w2)
    l2, c_b2 = K.add_bias_forward(l2_lin, b2)
    y_pred, c_s2 = K.sigmoid_forward(l2)
    return y_pred, (c_mm1, c_b1, c_s1, c_mm2, c_b2, c_s2)


def xor_gradients(K: Backend, params: XorParams, X: Any, y: Any) -> tuple[Any, XorParams]:
    """Cost (mean BCE) and its gradient with respect to each parameter.

    X: (N, 2); y: (N, 1). Returns ``(cost, XorParams(dw1, db1, dw2, db2))``,
    each gradient with its parameter's shape. Backward, in reverse order of
    the forward: dL/dy_pred from BCE, times sigma'(l2) (from the cached
    y_pred), split at the bias and matmul into db2, dw2 = a1.T @ d_l2 and
    d_a1 = d_l2 @ w2.T, times sigma'(l1) (from the cached a1 - the hidden
    layer's sigma' is the factor the notes' loop is easiest to lose), then
    db1 and dw1 = X.T @ d_l1.
    """
    y_pred, (c_mm1, c_b1, c_s1, c_mm2, c_b2, c_s2) = xor_forward(K, params, X)
    cost, c_loss = K.bce_forward(y_pred, y)

    d_y_pred = K.bce_backward(1.0, c_loss)
    d_l2 = K.sigmoid_backward(d_y_pred, c_s2)
    d_l2_lin, d_b2 = K.add_bias_backward(d_l2, c_b2)
    d_a1, d_w2 = K.matmul_backward(d_l2_lin, c_mm2)
    d_l1 = K.sigmoid_backward(d_a1, c_s1)
    d_l1_lin, d_b1 = K.add_bias_backward(d_l1, c_b1)
    d_w1 = K.matmul_backward_weights(d_l1_lin, c_mm1)  # X is data: no dX needed
    return cost, XorParams(d_w1, d_b1, d_w2, d_b2)


def xor_step(K: Backend, params: XorParams, X: Any, y: Any, lr: Any) -> tuple[XorParams, Any]:
    """One step of plain gradient descent; returns ``(new_params, cost before the step)``."""
    w1, b1, w2, b2 = params
    cost, (d_w1, d_b1, d_w2, d_b2) = xor_gradients(K, params, X, y)
    w1 = w1 - lr * d_w1
    b1 = b1 - lr * d_b1
    w2 = w2 - lr * d_w2
    b2 = b2 - lr * d_b2
    return XorParams(w1, b1, w2, b2), cost


def init_xor_params(hidden: int = 2, seed: int = 0, dtype: object = "float32") -> XorParams:
    """Starting parameters: weights drawn from N(0, 1), biases zero.

    Drawn with NumPy's ``default_rng(seed)`` whatever the backend, so NumPy
    and JAX runs with the same seed start from the same arrays. Shapes:
    w1 (2, hidden), b1 (hidden,), w2 (hidden, 1), b2 (1,).
    """
    check_positive_int("hidden", hidden)
    dt = check_dtype(dtype)
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((2, hidden)).astype(dt)
    w2 = rng.standard_normal((hidden, 1)).astype(dt)
    return XorParams(w1, np.zeros(hidden, dt), w2, np.zeros(1, dt))


@dataclass(frozen=True)
class XorResult:
    """What :func:`train_xor_manual` returns.

    Parameters ``w1`` (2, H), ``b1`` (H,), ``w2`` (H, 1), ``b2`` (1,) and
    ``costs`` (steps,) are NumPy arrays whatever the backend; ``costs[i]`` is
    the cost at the parameters *before* update ``i`` (0-based).
    ``predictions`` (4,) are the trained network's probabilities on the rows
    (0,0), (0,1), (1,0), (1,1); ``accuracy`` is the fraction of rows where
    ``predictions > 0.5`` matches XOR. ``train_time`` is the training loop's
    wall time in seconds, ``compile_time`` JAX's compilation (0 on NumPy),
    ``wall_time`` the whole call.
    """

    backend: str
    dtype: str
    steps: int
    lr: float
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    costs: np.ndarray
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
        """Cost at the last step's starting parameters, ``costs[-1]``."""
        return float(self.costs[-1])

    @property
    def time_per_step(self) -> float:
        """Seconds per training step, compilation excluded."""
        return self.train_time / self.steps

    def truth_table(self) -> str:
        """The four rows with target, probability and rounded prediction."""
        X, y = xor_data("float64")
        lines = ["x1 x2 | target | p(y=1)  | predicted"]
        for (a, b), t, p in zip(X.astype(int), y[:, 0].astype(int), self.predictions, strict=True):
            lines.append(f" {a}  {b} |   {t}    | {p:.5f} |     {int(p > 0.5)}")
        return "\n".join(lines)


def train_xor_manual(
    *,
    backend: str = "numpy",
    steps: int = 10_000,
    lr: float = DEFAULT_LR,
    hidden: int = 2,
    seed: int = 0,
    init: Mapping[str, Any] | XorParams | None = None,
    dtype: str = "float32",
    log_every: int = 100,
    verbose: bool = False,
) -> XorResult:
    """Train a 2-``hidden``-1 sigmoid network on XOR with hand-written backprop.

    Full-batch gradient descent on the four rows, mean BCE, ``steps`` updates
    ``w = w - lr * dw``. The default ``lr`` is 1.0, not the notes' 0.1: with
    0.1 the cost is still far above 0.01 after 10,000 steps. About 70 % of
    N(0, 1) starts solve XOR at all (the rest stall in a local minimum); the
    default ``seed=0`` is one that does, on both backends.

    ``init``: explicit starting arrays, a mapping (or :class:`XorParams`) with
    ``w1`` (2, hidden), ``b1`` (hidden,), ``w2`` (hidden, 1), ``b2`` (1,),
    to replay a run exactly; otherwise :func:`init_xor_params` with ``seed``.
    ``dtype``: "float32" or "float64" (JAX float64 runs inside
    ``jax.enable_x64(True)``, scoped to this call).

    With ``verbose=True`` prints the step and cost every ``log_every`` steps
    (on JAX, after the compiled loop has run, from its cost history).

    Raises ``ValueError`` for a bad ``backend``, ``steps``, ``lr``,
    ``hidden``, ``dtype``, ``log_every`` or ``init``, and ``FloatingPointError``
    naming the step if the cost becomes NaN or infinite.
    """
    t_start = time.perf_counter()
    check_backend(backend)
    steps = check_positive_int("steps", steps)
    log_every = check_positive_int("log_every", log_every)
    dt = check_dtype(dtype)
    lr = check_lr(lr, dt)
    check_positive_int("hidden", hidden)
    params = init_xor_params(hidden, seed, dt) if init is None else _check_init(init, hidden, dt)
    X, y = xor_data(dt)

    if backend == "numpy":
        params, costs, y_pred, train_time = _train_numpy(params, X, y, lr, steps)
        compile_time = 0.0
    else:
        get_backend("jax")  # the ImportError that says how to install JAX
        args = (params, X, y, np.asarray(lr, dt))
        out, train_time, compile_time = compile_and_run(
            _jax_train_fn, args, {"steps": steps}, x64=dt == np.float64
        )
        params, costs, y_pred = XorParams(*out[0]), out[1], out[2]

    k = first_nonfinite(costs)
    if k is not None:
        raise FloatingPointError(
            f"cost became {costs[k]} at step {k} (lr={lr}); training diverged - try a smaller lr"
        )
    if verbose:
        for i in range(0, steps, log_every):
            print(f"step {i:>6}  cost {costs[i]:.6f}")
        if (steps - 1) % log_every:
            print(f"step {steps - 1:>6}  cost {costs[-1]:.6f}")

    p = y_pred[:, 0]
    accuracy = float(np.mean((p > 0.5) == (y[:, 0] > 0.5)))
    return XorResult(
        backend=backend,
        dtype=dt.name,
        steps=steps,
        lr=float(lr),
        w1=params.w1,
        b1=params.b1,
        w2=params.w2,
        b2=params.b2,
        costs=costs,
        predictions=p,
        accuracy=accuracy,
        train_time=train_time,
        compile_time=compile_time,
        wall_time=time.perf_counter() - t_start,
    )


def _train_numpy(
    params: XorParams, X: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[XorParams, np.ndarray, np.ndarray, float]:
    # The fused, in-place form of xor_step (see backprop.xor_fused): the same
    # derivation in 18 NumPy calls a step instead of ~45.
    out, costs, train_time = train_fused(params, X, y, lr, steps)
    params = XorParams(*out)
    if len(costs) < steps:  # stopped on a NaN or infinite cost
        return params, costs, np.full((4, 1), np.nan), train_time
    with np.errstate(over="ignore", invalid="ignore"):
        y_pred, _ = xor_forward(get_backend("numpy"), params, X)
    return params, costs, y_pred, train_time


def _jax_train_fn(params: XorParams, X: Any, y: Any, lr: Any, steps: int) -> Any:
    from jax import lax

    K = get_backend("jax")

    def body(p: XorParams, _: None) -> tuple[XorParams, Any]:
        return xor_step(K, p, X, y, lr)

    params, costs = lax.scan(body, params, None, length=steps)
    y_pred, _ = xor_forward(K, params, X)
    return params, costs, y_pred


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
        a = np.asarray(init[name])
        if a.shape != shape:
            raise ValueError(
                f"init[{name!r}] must have shape {shape} (hidden={hidden}), got {a.shape}"
            )
        if a.dtype.kind not in "fiu" or not np.all(np.isfinite(a)):
            raise ValueError(f"init[{name!r}] must hold finite real numbers, got {a!r}")
        arrays[name] = a.astype(dt)  # astype copies: the caller's arrays stay untouched
    return XorParams(**arrays)
