"""Many independent XOR networks trained at once, to ask how often one gets stuck.

The same hand-derived step as :func:`backprop.train_xor_manual` (no
autodiff), applied to a stack of networks: on JAX with ``jax.vmap`` inside
one compiled ``lax.fori_loop``, split across every CPU device JAX has; on
NumPy with the kernels' leading batch axis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop._jaxrun import compile_and_run
from backprop._validate import check_backend, check_lr, check_positive_int
from backprop.data import check_dtype, xor_data
from backprop.xor import DEFAULT_LR, XorParams, xor_forward, xor_step
from kernels import get_backend


@dataclass(frozen=True)
class ManyResult:
    """What :func:`train_xor_many` returns, one entry per network.

    ``solved`` (n,) bool: all four rows classified right after training;
    ``final_costs`` (n,): mean BCE at the final parameters; ``params``: the
    final parameters stacked, w1 (n, 2, H), b1 (n, H), w2 (n, H, 1), b2 (n, 1).
    """

    solved: np.ndarray
    final_costs: np.ndarray
    params: XorParams
    backend: str
    steps: int
    lr: float
    train_time: float
    compile_time: float

    @property
    def n_nets(self) -> int:
        return int(self.solved.shape[0])

    @property
    def solved_fraction(self) -> float:
        return float(np.mean(self.solved))

    @property
    def time_per_network_step(self) -> float:
        """Seconds per network per step, compilation excluded."""
        return self.train_time / (self.n_nets * self.steps)


def init_xor_many(
    n_nets: int, hidden: int = 2, seed: int = 0, dtype: object = "float32"
) -> XorParams:
    """Stacked starting parameters: weights N(0, 1), biases zero, from ``default_rng(seed)``.

    Shapes: w1 (n, 2, H), b1 (n, H), w2 (n, H, 1), b2 (n, 1).
    """
    dt = check_dtype(dtype)
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((n_nets, 2, hidden)).astype(dt)
    w2 = rng.standard_normal((n_nets, hidden, 1)).astype(dt)
    return XorParams(w1, np.zeros((n_nets, hidden), dt), w2, np.zeros((n_nets, 1), dt))


def train_xor_many(
    n_nets: int,
    *,
    backend: str = "jax",
    steps: int = 10_000,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    hidden: int = 2,
    dtype: str = "float32",
) -> ManyResult:
    """Train ``n_nets`` independent 2-``hidden``-1 XOR networks from random starts.

    Each network follows exactly the update of :func:`train_xor_manual`
    (full batch, mean BCE, ``w = w - lr * dw``) from its own N(0, 1) start
    (:func:`init_xor_many`). Returns per network whether it solved XOR and
    its final cost. On JAX the networks are split across all of
    ``jax.devices()`` (set ``XLA_FLAGS=--xla_force_host_platform_device_count=2``
    before importing JAX to use two CPU cores).

    NumPy trains the stack as one problem whose loss is the mean over all
    networks' rows; each network's gradient in it is 1/n of its own, so the
    step uses ``lr * n`` - the same update up to float rounding.
    """
    check_backend(backend)
    n_nets = check_positive_int("n_nets", n_nets)
    steps = check_positive_int("steps", steps)
    hidden = check_positive_int("hidden", hidden)
    dt = check_dtype(dtype)
    lr = check_lr(lr, dt)
    if lr * n_nets > float(np.finfo(dt).max):
        raise ValueError(f"lr * n_nets = {lr * n_nets!r} overflows {dt.name}")
    params = init_xor_many(n_nets, hidden, seed, dt)
    X, y = xor_data(dt)
    if backend == "numpy":
        params, costs, y_pred, train_time = _many_numpy(params, X, y, lr, steps)
        compile_time = 0.0
    else:
        params, costs, y_pred, train_time, compile_time = _many_jax(params, X, y, lr, steps)
    solved = np.all((y_pred > 0.5) == (y > 0.5), axis=(1, 2))
    return ManyResult(solved, costs, params, backend, steps, lr, train_time, compile_time)


def _per_network_cost(K: Any, y_pred: Any, y: Any) -> Any:
    """Mean BCE of each network: bce_forward on one network's (4, 1) predictions."""
    return K.bce_forward(y_pred, y)[0]


def _many_numpy(
    params: XorParams, X: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[XorParams, np.ndarray, np.ndarray, float]:
    K = get_backend("numpy")
    n = params.w1.shape[0]
    Y = np.broadcast_to(y, (n, *y.shape))
    lr_all = lr * n  # undo the 1/n that the mean over all networks puts in each gradient
    t0 = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(steps):
            params, _ = xor_step(K, params, X, Y, lr_all)
    train_time = time.perf_counter() - t0
    y_pred, _ = xor_forward(K, params, X)
    costs = np.array([_per_network_cost(K, y_pred[i], y) for i in range(n)])
    return params, costs, y_pred, train_time


def _many_jax_fn(params: XorParams, X: Any, y: Any, lr: Any, steps: int) -> Any:
    import jax
    from jax import lax

    K = get_backend("jax")
    # No cost history is kept: the per-step BCE value is dead code that XLA
    # drops, and only the final cost is computed, after the loop.
    step = jax.vmap(lambda p: xor_step(K, p, X, y, lr)[0])
    params = lax.fori_loop(0, steps, lambda _, p: step(p), params)
    y_pred = jax.vmap(lambda p: xor_forward(K, p, X)[0])(params)
    costs = jax.vmap(lambda yp: _per_network_cost(K, yp, y))(y_pred)
    return params, costs, y_pred


def _many_jax(
    params: XorParams, X: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[XorParams, np.ndarray, np.ndarray, float, float]:
    get_backend("jax")
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    n = params.w1.shape[0]
    devices = jax.devices()
    pad = (-n) % len(devices)
    if pad:  # equal shares per device: pad with copies of network 0, dropped below
        params = XorParams(*(np.concatenate([a, np.repeat(a[:1], pad, 0)]) for a in params))
    x64 = X.dtype == np.float64
    with jax.enable_x64(x64):
        sharded = jax.device_put(
            params, NamedSharding(Mesh(np.array(devices), ("nets",)), PartitionSpec("nets"))
        )
        args = (sharded, X, y, np.asarray(lr, X.dtype))
        (out_params, costs, y_pred), train_time, compile_time = compile_and_run(
            _many_jax_fn, args, {"steps": steps}, x64=x64
        )
    out_params = XorParams(*(a[:n] for a in out_params))
    return out_params, costs[:n], y_pred[:n], train_time, compile_time
