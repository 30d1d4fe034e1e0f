"""Many independent XOR networks trained at once, to ask how often one gets stuck.

Every network follows the update of :func:`backprop.train_xor_manual`, all
of them at once through the networks-last transcription
:func:`backprop.xor.stacked.step`: on NumPy as a Python loop of
whole-stack operations, on JAX as one compiled ``lax.fori_loop``, optionally
split across devices along the network axis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop._jaxrun import compile_and_run
from backprop._validate import (
    check_backend,
    check_count,
    check_dtype,
    check_fits,
    check_lr,
    check_positive_int,
    check_seed,
)
from backprop.data import xor_data
from backprop.kernels import get_backend
from backprop.xor.derivation import DEFAULT_LR, MAX_HIDDEN, XorParams
from backprop.xor.stacked import Nets, costs, forward, nets_first, nets_last, step


@dataclass(frozen=True, repr=False)
class ManyResult:
    """What :func:`train_xor_many` returns, one entry per network.

    Attributes
    ----------
    solved : (n,) bool
        All four rows classified right after training.
    final_costs : (n,)
        Mean BCE at the final parameters.
    params : XorParams
        The final parameters stacked: w1 (n, 2, H), b1 (n, H), w2 (n, H, 1),
        b2 (n, 1).
    devices : int
        JAX devices the networks were split over (1 on NumPy).
    """

    solved: np.ndarray
    final_costs: np.ndarray
    params: XorParams
    backend: str
    epochs: int
    lr: float
    devices: int
    train_time: float
    compile_time: float

    @property
    def n_nets(self) -> int:
        return int(self.solved.shape[0])

    @property
    def solved_fraction(self) -> float:
        return float(np.mean(self.solved))

    @property
    def time_per_network_epoch(self) -> float:
        """Seconds per network per epoch (one full-batch step), compilation excluded."""
        return self.train_time / (self.n_nets * self.epochs)

    def __repr__(self) -> str:
        return (
            f"ManyResult({self.n_nets} XOR nets on {self.backend} ({self.devices} device(s)), "
            f"{self.epochs} epochs: {self.solved_fraction:.1%} solved, "
            f"{self.time_per_network_epoch * 1e9:.3g} ns per network-epoch)"
        )


def init_xor_many(n_nets: int, hidden: int = 2, seed: int = 0, dtype: Any = "float32") -> XorParams:
    """Stacked starting parameters: weights N(0, 1), biases zero, from ``default_rng(seed)``.

    Returns XorParams with w1 (n, 2, H), b1 (n, H), w2 (n, H, 1), b2 (n, 1).
    """
    dt = check_dtype(dtype)
    rng = np.random.default_rng(check_seed(seed))
    w1 = rng.standard_normal((n_nets, 2, hidden)).astype(dt)
    w2 = rng.standard_normal((n_nets, hidden, 1)).astype(dt)
    return XorParams(w1, np.zeros((n_nets, hidden), dt), w2, np.zeros((n_nets, 1), dt))


def train_xor_many(
    n_nets: int,
    *,
    backend: str = "numpy",
    epochs: int = 10_000,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    hidden: int = 2,
    dtype: str = "float32",
    devices: Any = None,
) -> ManyResult:
    """Train ``n_nets`` independent 2-``hidden``-1 XOR networks from random starts.

    Each network follows exactly the update of :func:`backprop.train_xor_manual`
    (full batch, mean BCE, ``w = w - lr * dw``) from its own N(0, 1) start
    (:func:`init_xor_many`), all at once through :func:`step`.

    Parameters
    ----------
    n_nets : int
        Networks to train.
    backend : "numpy" or "jax"
    epochs, lr, seed, hidden, dtype
        As for :func:`backprop.train_xor_manual`.
    devices : None, int, "all" or sequence of jax.Device
        JAX only: None trains on one device; otherwise the networks are split
        across that many (or those) devices (on a CPU, set
        ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` before JAX is
        imported to get N devices).

    Returns
    -------
    ManyResult

    Raises
    ------
    ValueError
        Naming the argument, for a bad count, backend, epochs, lr, seed,
        hidden, dtype or devices.
    """
    backend = check_backend(backend)
    n_nets = check_positive_int("n_nets", n_nets)
    epochs = check_count("epochs", epochs)
    hidden = check_positive_int("hidden", hidden, MAX_HIDDEN)
    dt = check_dtype(dtype)
    lr = check_lr(lr, dt)
    seed = check_seed(seed)
    if devices is not None and backend != "jax":
        raise ValueError(f"devices={devices!r} needs backend='jax'")
    # per network: parameters, gradients, updated parameters and the four rows'
    # activations, about 24 H + 4 numbers, plus the float64 draw of the start
    check_fits(
        f"n_nets={n_nets:,} networks of {hidden} hidden units",
        n_nets * ((24 * hidden + 4) * dt.itemsize + 3 * hidden * 8),
    )
    params = init_xor_many(n_nets, hidden, seed, dt)
    X, y = xor_data(dt)
    if backend == "numpy":
        p, final, train_time = _many_numpy(nets_last(params), X, y, lr, epochs)
        compile_time, n_devices = 0.0, 1
    else:
        p, final, train_time, compile_time, n_devices = _many_jax(params, X, y, lr, epochs, devices)
    bad = np.flatnonzero(~np.isfinite(final))
    if bad.size:
        raise FloatingPointError(
            f"the cost became {final[bad[0]]} in {bad.size} of {n_nets} networks (lr={lr}); "
            "training diverged - try a smaller lr"
        )
    with np.errstate(over="ignore"):
        _, logits = forward(np, p, X)
    # a network solves XOR when each row's logit is on its target's side of 0
    solved = np.all([(z > 0) == (y[i, 0] > 0.5) for i, z in enumerate(logits)], axis=0)
    params = nets_first(p)
    return ManyResult(
        solved, final, params, backend, epochs, lr, n_devices, train_time, compile_time
    )


def _many_numpy(
    p: Nets, X: np.ndarray, y: np.ndarray, lr: float, steps: int
) -> tuple[Nets, np.ndarray, float]:
    c = np.asarray(lr, X.dtype)
    t0 = time.perf_counter()
    with np.errstate(over="ignore"):
        for _ in range(steps):
            p = step(np, p, X, y, c)
        train_time = time.perf_counter() - t0
        final = costs(np, p, X, y)
    return p, np.asarray(final), train_time


def _many_loop(params: Nets, X: Any, y: Any, lr: Any, steps: int) -> Any:
    import jax.numpy as jnp
    from jax import lax

    params = lax.fori_loop(0, steps, lambda _, p: step(jnp, p, X, y, lr), params)
    return params, costs(jnp, params, X, y)


def _many_jax(
    params: XorParams, X: np.ndarray, y: np.ndarray, lr: float, steps: int, devices: Any
) -> tuple[Nets, np.ndarray, float, float, int]:
    get_backend("jax")
    import jax

    from backprop import distributed

    n = params.w1.shape[0]
    mesh = distributed.make_mesh(devices, n, "n_nets")
    n_devices = 1 if mesh is None else mesh.size
    pad = (-n) % n_devices
    if pad:  # equal shares per device: pad with copies of network 0, dropped below
        params = XorParams(*(np.concatenate([a, np.repeat(a[:1], pad, 0)]) for a in params))
    x64 = X.dtype == np.float64
    with jax.enable_x64(x64):
        p = nets_last(params)
        if mesh is not None:
            from jax.sharding import NamedSharding, PartitionSpec

            p = tuple(
                jax.device_put(
                    a, NamedSharding(mesh, PartitionSpec(*[None] * (a.ndim - 1), distributed.AXIS))
                )
                for a in p
            )
        args = (p, X, y, np.asarray(lr, X.dtype))
        (p, final), train_time, compile_time = compile_and_run(
            _many_loop, args, {"steps": steps}, x64=x64
        )
    p = tuple(np.asarray(a)[..., :n] for a in p)
    return p, np.asarray(final)[:n], train_time, compile_time, n_devices
