"""Many independent XOR networks trained at once, to ask how often one gets stuck.

The same hand-derived step as :func:`backprop.train_xor_manual` (no
autodiff), applied to a stack of networks held with the network axis last
(:func:`many_step`, one function for both backends): on JAX inside one
compiled ``lax.fori_loop``, split across every CPU device JAX has; on NumPy
as a Python loop of whole-stack operations. Tests check every network
against the single-network loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop._jaxrun import compile_and_run
from backprop._validate import check_backend, check_lr, check_positive_int
from backprop.data import check_dtype, xor_data
from backprop.xor import DEFAULT_LR, XorParams
from backprop.xor_fused import step_costs
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

    Both backends run :func:`many_step`: the networks' parameters stacked on
    a last axis, so that each operation is one vectorised pass over all of
    them.
    """
    check_backend(backend)
    n_nets = check_positive_int("n_nets", n_nets)
    steps = check_positive_int("steps", steps)
    hidden = check_positive_int("hidden", hidden)
    dt = check_dtype(dtype)
    lr = check_lr(lr, dt)
    params = init_xor_many(n_nets, hidden, seed, dt)
    X, y = xor_data(dt)
    if backend == "numpy":
        params, costs, y_pred, train_time = _many_numpy(params, X, y, lr, steps)
        compile_time = 0.0
    else:
        params, costs, y_pred, train_time, compile_time = _many_jax(params, X, y, lr, steps)
    solved = np.all((y_pred > 0.5) == (y > 0.5), axis=(1, 2))
    return ManyResult(solved, costs, params, backend, steps, lr, train_time, compile_time)


def _nets_last(p: XorParams) -> tuple[Any, ...]:
    """(n, ...) stacks -> network axis last: w1 (2, H, n), b1 (H, n), w2 (H, n), b2 (n,)."""
    return (np.moveaxis(p.w1, 0, -1), p.b1.T, p.w2[..., 0].T, p.b2[:, 0])


def _nets_first(w1: Any, b1: Any, w2: Any, b2: Any) -> XorParams:
    """The inverse of :func:`_nets_last`, as NumPy arrays."""
    w1, b1, w2, b2 = (np.asarray(a) for a in (w1, b1, w2, b2))
    return XorParams(np.moveaxis(w1, -1, 0), b1.T, w2.T[..., None], b2[:, None])


def _logistic(xp: Any, z: Any) -> Any:
    """1 / (1 + exp(-z)): exp overflows to inf for z < -88 (float32) and the
    quotient is then 0, the correctly rounded value (NumPy runs it under
    errstate(over="ignore"))."""
    return 1.0 / (1.0 + xp.exp(-z))


def _forward(xp: Any, params: tuple[Any, ...], X: Any) -> tuple[Any, Any]:
    """Hidden activations a1 (N, H, n) and output logits l2 (N, n), networks last."""
    w1, b1, w2, b2 = params
    a1 = _logistic(xp, xp.tensordot(X, w1, axes=(1, 0)) + b1)
    return a1, (a1 * w2).sum(axis=1) + b2


def _final(xp: Any, params: tuple[Any, ...], X: Any, y: Any) -> tuple[Any, Any]:
    """Each network's mean BCE (n,) and predictions (n, N, 1) at ``params``."""
    logits = _forward(xp, params, X)[1].T[..., None]  # (n, N, 1)
    return step_costs(logits, y, xp), _logistic(xp, logits)


def many_step(xp: Any, params: tuple[Any, ...], X: Any, y: Any, c: Any) -> tuple[Any, ...]:
    """One update of every network, the network axis last; NumPy or jax.numpy as ``xp``.

    params: w1 (D, H, n), b1 (H, n), w2 (H, n), b2 (n,); X (N, D); y (N, 1);
    c = lr / N. The derivation of :func:`backprop.xor.xor_step`, fused as in
    :mod:`backprop.xor_fused`: d_l2 = (sigma(l2) - y) / N (BCE's backward
    times the output sigmoid's), d_l1 = (d_l2 w2) a1 (1 - a1), then
    dw = input.T @ d and db = sum of d over the rows, for each network.
    With the networks on the last (contiguous) axis every operation runs
    along n in SIMD lanes; a leading network axis would leave lanes of 2.
    """
    w1, b1, w2, b2 = params
    a1, l2 = _forward(xp, params, X)
    d_l2 = c * (_logistic(xp, l2) - y)  # (N, n): lr/N (p - y)
    d_l1 = d_l2[:, None, :] * w2 * a1 * (1.0 - a1)  # (N, H, n)
    return (
        w1 - xp.tensordot(X, d_l1, axes=(0, 0)),
        b1 - d_l1.sum(axis=0),
        w2 - (a1 * d_l2[:, None, :]).sum(axis=0),
        b2 - d_l2.sum(axis=0),
    )


def _many_numpy(
    params: XorParams, X: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[XorParams, np.ndarray, np.ndarray, float]:
    p = tuple(np.ascontiguousarray(a) for a in _nets_last(params))
    c = np.asarray(lr / X.shape[0], X.dtype)
    t0 = time.perf_counter()
    # exp(-l) overflows to inf for l < -88 (float32); 1 / (1 + inf) = 0 is
    # then the correctly rounded sigmoid, so the warning would be noise.
    with np.errstate(over="ignore"):
        for _ in range(steps):
            p = many_step(np, p, X, y, c)
        train_time = time.perf_counter() - t0
        costs, y_pred = _final(np, p, X, y)
    return _nets_first(*p), costs, y_pred, train_time


def _many_jax_fn(params: tuple[Any, ...], X: Any, y: Any, lr: Any, steps: int) -> Any:
    import jax.numpy as jnp
    from jax import lax

    c = lr / X.shape[0]
    params = lax.fori_loop(0, steps, lambda _, p: many_step(jnp, p, X, y, c), params)
    return params, *_final(jnp, params, X, y)


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
    mesh = Mesh(np.array(devices), ("nets",))
    with jax.enable_x64(x64):
        sharded = tuple(
            jax.device_put(a, NamedSharding(mesh, PartitionSpec(*[None] * (a.ndim - 1), "nets")))
            for a in _nets_last(params)
        )
        args = (sharded, X, y, np.asarray(lr, X.dtype))
        (out, costs, y_pred), train_time, compile_time = compile_and_run(
            _many_jax_fn, args, {"steps": steps}, x64=x64
        )
    params = XorParams(*(a[:n] for a in _nets_first(*out)))
    return params, costs[:n], y_pred[:n], train_time, compile_time
