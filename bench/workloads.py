"""Benchmark workloads, shared by the pytest-benchmark suites and ``report.py``.

Each ``make_*`` function does all set-up (data, initial weights, JAX
compilation and one warm-up call) and returns a zero-argument callable that
runs the timed work once and waits for its result (``block_until_ready``
on JAX). Peers get the same data and the same initial weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backprop.data import xor_data
from backprop.many import init_xor_many, train_xor_many
from backprop.mlp import Layer, init_mlp, make_config, mlp_forward, mlp_step
from backprop.mlp_fused import FusedStep
from backprop.xor import XorParams, init_xor_params, train_xor_manual, xor_forward, xor_step
from kernels import get_backend

LR = 1.0
LARGE = (4096, 512, 1024)  # batch, inputs, hidden units (one sigmoid output)


def have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _ready(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap a JAX call so it waits for its result; run it once (compile + warm up)."""
    import jax

    def run() -> Any:
        return jax.block_until_ready(fn())

    run()
    return run


# --- kernels ---------------------------------------------------------------------

KERNEL_OPS = ("matmul", "add_bias", "sigmoid", "relu", "bce", "bce_with_logits", "mse")


def kernel_inputs(op: str, size: str, dtype: str = "float32") -> list[np.ndarray]:
    """Inputs of one kernel at the XOR size (4 x 2 -> 2) or the large size (4096 x 512 -> 1024)."""
    rng = np.random.default_rng(0)
    n, d, m = (4, 2, 2) if size == "xor" else LARGE
    x, w = rng.standard_normal((n, d)), rng.standard_normal((d, m)) / np.sqrt(d)
    z = rng.standard_normal((n, m))
    y = rng.integers(0, 2, (n, m))
    inputs = {
        "matmul": [x, w],
        "add_bias": [z, rng.standard_normal(m)],
        "sigmoid": [z],
        "relu": [z],
        "bce": [rng.uniform(0.01, 0.99, (n, m)), y],
        "bce_with_logits": [z, y],
        "mse": [z, rng.standard_normal((n, m))],
    }[op]
    return [a.astype(dtype) for a in inputs]


def make_kernel(op: str, size: str, backend: str) -> Callable[[], Any]:
    """Forward plus backward of one kernel (JAX: both in one jitted call)."""
    K = get_backend(backend)
    forward, backward = getattr(K, f"{op}_forward"), getattr(K, f"{op}_backward")
    inputs = kernel_inputs(op, size)
    scalar = op in ("bce", "bce_with_logits", "mse")

    def fwd_bwd(*args: Any) -> Any:
        out, cache = forward(*args)
        return out, backward(1.0 if scalar else K.xp.ones_like(out), cache)

    if backend == "numpy":
        return lambda: fwd_bwd(*inputs)
    import jax

    jitted = jax.jit(fwd_bwd)
    args = [jax.device_put(a) for a in inputs]
    return _ready(lambda: jitted(*args))


# --- the XOR loop, 10,000 steps ---------------------------------------------------


def xor_init() -> XorParams:
    return init_xor_params(hidden=2, seed=0, dtype="float32")


def make_xor_numpy(steps: int) -> Callable[[], Any]:
    """train_xor_manual on NumPy: the fused, in-place loop (backprop.xor_fused)."""
    init = xor_init()
    return lambda: train_xor_manual(backend="numpy", steps=steps, init=init, lr=LR)


def make_xor_numpy_chain(steps: int) -> Callable[[], Any]:
    """The reference kernel chain, xor_step, in a Python loop: what fusing saves."""
    K = get_backend("numpy")
    X, y = xor_data("float32")
    init = xor_init()

    def run() -> Any:
        p = init
        for _ in range(steps):
            p, _ = xor_step(K, p, X, y, LR)
        return p

    return run


def _xor_scan(step_fn: Callable[..., Any], steps: int) -> Callable[..., Any]:
    from jax import lax

    def run(params: XorParams, *data: Any) -> Any:
        return lax.scan(lambda p, _: step_fn(p, *data), params, None, length=steps)

    return run


def make_xor_jax_compiled(steps: int, data: str = "constants") -> Callable[[], Any]:
    """The manual loop as one compiled lax.scan, data closed over or passed in."""
    import jax

    K = get_backend("jax")
    X, y = xor_data("float32")
    params = jax.device_put(xor_init())
    if data == "constants":
        fn = jax.jit(_xor_scan(lambda p: xor_step(K, p, X, y, LR), steps))
        return _ready(lambda: fn(params))
    fn = jax.jit(_xor_scan(lambda p, X, y: xor_step(K, p, X, y, LR), steps))
    Xd, yd = jax.device_put(X), jax.device_put(y)
    return _ready(lambda: fn(params, Xd, yd))


def make_xor_jax_per_step(steps: int) -> Callable[[], Any]:
    """One jitted call per step, driven from Python."""
    import jax

    K = get_backend("jax")
    X, y = (jax.device_put(a) for a in xor_data("float32"))
    step = jax.jit(lambda p, X, y: xor_step(K, p, X, y, LR))
    init = jax.device_put(xor_init())

    def run() -> Any:
        p = init
        for _ in range(steps):
            p, _ = step(p, X, y)
        return p

    return _ready(run)


def _xor_loss(K: Any, params: XorParams, X: Any, y: Any) -> Any:
    y_pred, _ = xor_forward(K, params, X)
    return K.bce_forward(y_pred, y)[0]


def make_xor_jax_grad(steps: int, data: str = "constants") -> Callable[[], Any]:
    """The peer: jax.grad of the same forward and loss, same loop, same compilation."""
    import jax

    K = get_backend("jax")
    X, y = xor_data("float32")
    value_and_grad = jax.value_and_grad(lambda p, X, y: _xor_loss(K, p, X, y))

    def step(p: XorParams, X: Any, y: Any) -> Any:
        cost, g = value_and_grad(p, X, y)
        return XorParams(*(a - LR * b for a, b in zip(p, g, strict=True))), cost

    params = jax.device_put(xor_init())
    if data == "constants":
        fn = jax.jit(_xor_scan(lambda p: step(p, X, y), steps))
        return _ready(lambda: fn(params))
    fn = jax.jit(_xor_scan(step, steps))
    Xd, yd = jax.device_put(X), jax.device_put(y)
    return _ready(lambda: fn(params, Xd, yd))


def make_xor_torch(steps: int) -> Callable[[], Any]:
    """PyTorch eager autograd, the way the notes trained: nn.Sequential, BCELoss, SGD."""
    import torch

    X, y = (torch.tensor(a) for a in xor_data("float32"))
    init = xor_init()

    def run() -> Any:
        model = torch.nn.Sequential(
            torch.nn.Linear(2, 2), torch.nn.Sigmoid(), torch.nn.Linear(2, 1), torch.nn.Sigmoid()
        )
        with torch.no_grad():  # nn.Linear stores w.T
            model[0].weight.copy_(torch.tensor(init.w1.T))
            model[0].bias.copy_(torch.tensor(init.b1))
            model[2].weight.copy_(torch.tensor(init.w2.T))
            model[2].bias.copy_(torch.tensor(init.b2))
        loss_fn, opt = torch.nn.BCELoss(), torch.optim.SGD(model.parameters(), lr=LR)
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_fn(model(X), y)
            loss.backward()
            opt.step()
        return loss.item()

    return run


# --- one step of a large MLP ------------------------------------------------------


def large_problem() -> tuple[tuple[Layer, ...], np.ndarray, np.ndarray, Any]:
    n, d, h = LARGE
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype("float32")
    y = rng.integers(0, 2, (n, 1)).astype("float32")
    params = init_mlp([d, h, 1], seed=0, dtype="float32")
    return params, X, y, make_config([d, h, 1], "sigmoid", "sigmoid", "bce")


def make_large_step(backend: str) -> Callable[[], Any]:
    """The step train_mlp runs: NumPy's in-place FusedStep; JAX's jitted mlp_step."""
    params, X, y, config = large_problem()
    K = get_backend(backend)
    if backend == "numpy":
        step = FusedStep([LARGE[1], LARGE[2], 1], config, LARGE[0], "float32")
        return lambda: step(params, X, y, LR)
    import jax

    fn = jax.jit(lambda p, X, y: mlp_step(K, p, X, y, LR, config)[:2])
    args = jax.device_put((params, X, y))
    return _ready(lambda: fn(*args))


def make_large_step_chain() -> Callable[[], Any]:
    """NumPy's reference kernel chain, mlp_step: what the in-place step saves."""
    params, X, y, config = large_problem()
    K = get_backend("numpy")
    return lambda: mlp_step(K, params, X, y, LR, config)


def make_large_jax_grad() -> Callable[[], Any]:
    import jax

    params, X, y, config = large_problem()
    K = get_backend("jax")

    def loss(p: Any, X: Any, y: Any) -> Any:
        _, caches = mlp_forward(K, p, X, config)
        return K.bce_with_logits_forward(caches[-1][2], y)[0]

    def step(p: Any, X: Any, y: Any) -> Any:
        value, g = jax.value_and_grad(loss)(p, X, y)
        return tuple(
            Layer(a.w - LR * b.w, a.b - LR * b.b) for a, b in zip(p, g, strict=True)
        ), value

    fn = jax.jit(step)
    args = jax.device_put((params, X, y))
    return _ready(lambda: fn(*args))


def make_large_torch() -> Callable[[], Any]:
    import torch

    params, X, y, _ = large_problem()
    _, d, h = LARGE
    model = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.Sigmoid(), torch.nn.Linear(h, 1))
    with torch.no_grad():
        for layer, p in zip((model[0], model[2]), params, strict=True):
            layer.weight.copy_(torch.tensor(p.w.T))
            layer.bias.copy_(torch.tensor(p.b))
    Xt, yt = torch.tensor(X), torch.tensor(y)
    loss_fn, opt = torch.nn.BCEWithLogitsLoss(), torch.optim.SGD(model.parameters(), lr=LR)

    def run() -> Any:
        opt.zero_grad()
        loss = loss_fn(model(Xt), yt)
        loss.backward()
        opt.step()
        return loss

    return run


def make_large_matmuls(backend: str) -> Callable[[], Any]:
    """The hardware floor: the step's two large matrix products alone,
    X @ W1 (forward) and X.T @ dZ1 (weight gradient)."""
    params, X, _, _ = large_problem()
    W1 = params[0].w
    dZ = np.random.default_rng(1).standard_normal((LARGE[0], LARGE[2])).astype("float32")
    if backend == "numpy":
        return lambda: (X @ W1, X.T @ dZ)
    import jax

    fn = jax.jit(lambda X, W1, dZ: (X @ W1, X.T @ dZ))
    args = jax.device_put((X, W1, dZ))
    return _ready(lambda: fn(*args))


LOOP_STEPS = 8


def make_large_jax_loop(what: str) -> Callable[[], Any]:
    """LOOP_STEPS large steps (``what="step"``) or their two products alone
    (``"matmuls"``) inside one compiled fori_loop, as train_mlp runs JAX.

    A jitted call allocates XLA's temporaries afresh (~11,600 page faults a
    call for the step here); inside a loop they are allocated once.
    """
    import jax
    from jax import lax

    params, X, y, config = large_problem()
    K = get_backend("jax")

    def steps(p: Any, X: Any, y: Any) -> Any:
        return lax.fori_loop(0, LOOP_STEPS, lambda _, q: mlp_step(K, q, X, y, LR, config)[0], p)

    def matmuls(W: Any, X: Any) -> Any:
        # the same two products per iteration; the carry keeps them from being hoisted
        return lax.fori_loop(0, LOOP_STEPS, lambda _, W: W - 1e-12 * (X.T @ (X @ W)), W)

    if what == "step":
        fn, args = jax.jit(steps), jax.device_put((params, X, y))
    else:
        fn, args = jax.jit(matmuls), jax.device_put((params[0].w, X))
    return _ready(lambda: fn(*args))


# --- many networks at once --------------------------------------------------------


def make_many(n_nets: int, steps: int, backend: str) -> Callable[[], Any]:
    """train_xor_many; the first call compiles, so the timed calls reuse the executable."""
    run = lambda: train_xor_many(n_nets, backend=backend, steps=steps)  # noqa: E731
    run()
    return run


def make_many_plain_vmap(n_nets: int, steps: int) -> Callable[[], Any]:
    """The baseline: jax.vmap of the single-network loop (lax.scan with its cost history)."""
    import jax

    K = get_backend("jax")
    X, y = xor_data("float32")
    params = jax.device_put(init_xor_many(n_nets))
    fn = jax.jit(jax.vmap(_xor_scan(lambda p: xor_step(K, p, X, y, LR), steps)))
    return _ready(lambda: fn(params))
