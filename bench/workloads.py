"""Benchmark workloads: this library's paths and the peers a skilled user would write.

Each ``make_*`` function does all set-up (data, initial weights, JAX
compilation and one warm-up call) and returns a zero-argument callable that
runs the timed work once and waits for its result (``block_until_ready`` on
JAX). Peers get the same data, the same initial weights and the same dtype,
and run on the same number of devices.

Peers (see the README's benchmark section for why each is what its users
write):

- jax.grad: ``jax.value_and_grad`` (or ``jax.grad``) of mean BCE on
  ``jax.nn.sigmoid`` probabilities, or of the logits form
  ``softplus(z) - y z``; the whole loop in one jitted ``lax.scan`` (loss of
  every step) or, recording the loss every 100 steps as this library does,
  an outer ``lax.scan`` over inner ``lax.fori_loop`` blocks; data as
  arguments or as constants. The peer figure is the fastest variant.
- PyTorch eager, as the notes trained: ``nn.Sequential``, ``BCELoss``,
  ``SGD``, one thread.
- many networks: ``jax.jit(jax.vmap(fori_loop of an idiomatic fused step))``
  with the networks' axis sharded (``NamedSharding``) over the same devices
  as this library's run.
- scikit-learn's ``MLPClassifier`` at the same settings, timed per epoch over
  a whole ``fit``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from backprop.data import load_dataset, xor_data
from backprop.kernels import KERNELS, PAIRS, get_backend
from backprop.kernels.registry import sample_inputs
from backprop.nets import Layer, init_params, loss_and_grads, make_net
from backprop.xor import XorParams, init_xor_params

LR = 1.0
XOR_EPOCHS = 10_000
LOG_EVERY = 100
MANY_EPOCHS = 1_000
LARGE = (4096, 512, 1024)  # batch, inputs, hidden units (one sigmoid output)


def have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _ready(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap a JAX call so that it waits for its result; run it once (compile, warm up)."""
    import jax

    def run() -> Any:
        return jax.block_until_ready(fn())

    run()
    return run


# --- kernels, read from the registry ------------------------------------------------

KERNEL_SIZES = {"small": (4, 2, 2), "large": LARGE}


def make_kernel(name: str, size: str, backend: str) -> Callable[[], Any]:
    """Forward plus backward of one registered kernel (JAX: both in one jitted call)."""
    spec = KERNELS[name]
    K = get_backend(backend)
    forward, backward = getattr(K, spec.forward.__name__), getattr(K, spec.backward.__name__)
    inputs = list(sample_inputs(spec, np.random.default_rng(0), *KERNEL_SIZES[size]).values())
    inputs = [a.astype("float32") if isinstance(a, np.ndarray) else a for a in inputs]

    def fwd_bwd(*args: Any) -> Any:
        out, cache = forward(*args)
        return out, backward(1.0 if spec.is_loss else K.xp.ones_like(out), cache)

    if backend == "numpy":
        return lambda: fwd_bwd(*inputs)
    import jax

    jitted = jax.jit(fwd_bwd)
    args = [jax.device_put(a) for a in inputs]
    return _ready(lambda: jitted(*args))


KERNEL_NAMES = tuple(name for name in PAIRS if KERNELS[name].sample is None)
"""The kernels whose inputs follow the MLP shapes above; the layer kernels with
their own input builders (images, indices, seeds) are timed at their own
sizes in ``bench/test_bench_layers.py``."""


# --- XOR 2-2-1, 10,000 full-batch epochs --------------------------------------------


def xor_init() -> XorParams:
    return init_xor_params(hidden=2, seed=0, dtype="float32")


def make_xor_numpy() -> Callable[[], Any]:
    """train_xor_manual on NumPy: the in-place loop, costs every 100 epochs."""
    from backprop import train_xor_manual

    init = xor_init()
    return lambda: train_xor_manual(backend="numpy", epochs=XOR_EPOCHS, init=init, lr=LR)


def make_xor_numpy_reference() -> Callable[[], Any]:
    """The reference kernel chain, xor_step, in a Python loop: what the in-place loop saves."""
    from backprop.xor import xor_step

    K = get_backend("numpy")
    X, y = xor_data("float32")
    init = xor_init()

    def run() -> Any:
        p = init
        for _ in range(XOR_EPOCHS):
            p, _ = xor_step(K, p, X, y, LR)
        return p

    return run


def make_xor_jax() -> Callable[[], Any]:
    """train_xor_manual's compiled JAX loop (backprop.xor.single), called as it calls it."""
    import jax

    from backprop.xor.single import _single_loop
    from backprop.xor.stacked import nets_last

    X, y = xor_data("float32")
    fn = jax.jit(_single_loop, static_argnames=("steps", "log_every"))
    args = jax.device_put((nets_last(xor_init()), X, y, np.float32(LR)))
    return _ready(lambda: fn(*args, steps=XOR_EPOCHS, log_every=LOG_EVERY))


def _peer_losses() -> dict[str, Callable[..., Any]]:
    import jax
    import jax.numpy as jnp

    def probabilities(p: XorParams, X: Any, y: Any) -> Any:
        a1 = jax.nn.sigmoid(X @ p.w1 + p.b1)
        out = jax.nn.sigmoid(a1 @ p.w2 + p.b2)
        return -jnp.mean(y * jnp.log(out) + (1 - y) * jnp.log(1 - out))

    def logits(p: XorParams, X: Any, y: Any) -> Any:
        a1 = jax.nn.sigmoid(X @ p.w1 + p.b1)
        z = a1 @ p.w2 + p.b2
        return jnp.mean(jax.nn.softplus(z) - y * z)

    return {"probabilities": probabilities, "logits": logits}


def make_xor_jax_grad(loss: str, loop: str, data: str) -> Callable[[], Any]:
    """The jax.grad peer: ``loss`` "probabilities" or "logits"; ``loop`` "scan" (loss every
    step) or "blocks" (loss every 100 steps, as this library); ``data`` "args" or "constants".
    """
    import jax
    from jax import lax

    loss_fn = _peer_losses()[loss]
    value_and_grad, grad = jax.value_and_grad(loss_fn), jax.grad(loss_fn)
    X, y = xor_data("float32")

    def every_step(p: XorParams, X: Any, y: Any) -> Any:
        def body(q: XorParams, _: None) -> Any:
            value, g = value_and_grad(q, X, y)
            return jax.tree.map(lambda a, b: a - LR * b, q, g), value

        return lax.scan(body, p, None, length=XOR_EPOCHS)

    def in_blocks(p: XorParams, X: Any, y: Any) -> Any:
        def step(_: Any, q: XorParams) -> XorParams:
            return jax.tree.map(lambda a, b: a - LR * b, q, grad(q, X, y))

        def block(q: XorParams, _: None) -> Any:
            return lax.fori_loop(0, LOG_EVERY, step, q), loss_fn(q, X, y)

        p, values = lax.scan(block, p, None, length=XOR_EPOCHS // LOG_EVERY)
        return p, values, loss_fn(p, X, y)

    run = every_step if loop == "scan" else in_blocks
    p0 = jax.device_put(xor_init())
    if data == "constants":
        fn = jax.jit(lambda p: run(p, X, y))
        return _ready(lambda: fn(p0))
    fn = jax.jit(run)
    Xd, yd = jax.device_put(X), jax.device_put(y)
    return _ready(lambda: fn(p0, Xd, yd))


XOR_PEERS = [
    (loss, loop, data)
    for loss in ("probabilities", "logits")
    for loop in ("scan", "blocks")
    for data in ("args", "constants")
]


def make_xor_torch() -> Callable[[], Any]:
    """PyTorch eager autograd as the notes trained: nn.Sequential, BCELoss, SGD, one thread."""
    import torch

    torch.set_num_threads(1)
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
        for _ in range(XOR_EPOCHS):
            opt.zero_grad()
            loss = loss_fn(model(X), y)
            loss.backward()
            opt.step()
        return loss.item()

    return run


# --- many XOR networks at once ---------------------------------------------------------


def _many_params(n: int) -> XorParams:
    from backprop.xor.many import init_xor_many

    return init_xor_many(n, seed=0, dtype="float32")


def make_many(n: int, devices: int | None, backend: str = "jax") -> Callable[[], Any]:
    """train_xor_many's loop: the compiled fori_loop (JAX, sharded over ``devices``) or NumPy."""
    from backprop.xor.many import _many_numpy
    from backprop.xor.stacked import nets_last

    X, y = xor_data("float32")
    if backend == "numpy":
        p = nets_last(_many_params(n))
        epochs = MANY_EPOCHS // 10
        return lambda: _many_numpy(p, X, y, LR, epochs)
    import jax

    from backprop import distributed
    from backprop.xor.many import _many_loop

    mesh = distributed.make_mesh(devices, n, "n_nets")
    p = nets_last(_many_params(n))
    if mesh is not None:
        from jax.sharding import NamedSharding, PartitionSpec

        p = tuple(
            jax.device_put(
                a, NamedSharding(mesh, PartitionSpec(*[None] * (a.ndim - 1), distributed.AXIS))
            )
            for a in p
        )
    fn = jax.jit(_many_loop, static_argnames="steps")
    args = (p, jax.device_put(X), jax.device_put(y), np.float32(LR))
    return _ready(lambda: fn(*args, steps=MANY_EPOCHS))


def make_many_vmap_peer(n: int, devices: int, data: str) -> Callable[[], Any]:
    """jax.jit(jax.vmap(loop)) of an idiomatic fused step, networks' axis sharded."""
    import jax
    from jax import lax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    X, y = xor_data("float32")

    def fused_step(p: XorParams, X: Any, y: Any) -> XorParams:
        w1, b1, w2, b2 = p
        a1 = jax.nn.sigmoid(X @ w1 + b1)
        dz = (jax.nn.sigmoid(a1 @ w2 + b2) - y) / X.shape[0]
        dl1 = (dz @ w2.T) * a1 * (1 - a1)
        return XorParams(
            w1 - LR * (X.T @ dl1), b1 - LR * dl1.sum(0), w2 - LR * (a1.T @ dz), b2 - LR * dz.sum(0)
        )

    def loop(p: XorParams, X: Any, y: Any) -> XorParams:
        return lax.fori_loop(0, MANY_EPOCHS, lambda _, q: fused_step(q, X, y), p)

    mesh = Mesh(np.array(jax.devices()[:devices]), ("nets",))
    sharding = NamedSharding(mesh, PartitionSpec("nets"))
    p = jax.device_put(_many_params(n), sharding)
    if data == "constants":
        fn = jax.jit(jax.vmap(lambda q: loop(q, X, y)), out_shardings=sharding)
        return _ready(lambda: fn(p))
    fn = jax.jit(jax.vmap(loop, in_axes=(0, None, None)), out_shardings=sharding)
    Xd, yd = jax.device_put(X), jax.device_put(y)
    return _ready(lambda: fn(p, Xd, yd))


# --- train_mlp per epoch against scikit-learn's MLPClassifier --------------------------


MLP_SETTINGS = {
    # name: (data set, hidden, solver, batch size or None for full, epochs, lr)
    "breast cancer 30-64-1, full-batch sgd": ("breast_cancer", 64, "sgd", None, 200, 0.1),
    "digits 64-128-10, adam, batch 64": ("digits", 128, "adam", 64, 20, 1e-3),
}


def _mlp_data(name: str, dtype: str) -> Any:
    return load_dataset(MLP_SETTINGS[name][0], seed=0, dtype=dtype)


def make_train_mlp(name: str, backend: str, dtype: str) -> Callable[[], float]:
    """One train_mlp run; the callable returns its training seconds per epoch."""
    from backprop import train_mlp

    _, hidden, solver, batch, epochs, lr = MLP_SETTINGS[name]
    d = _mlp_data(name, dtype)
    binary = d.n_classes == 2
    sizes = [d.n_features, hidden, 1 if binary else d.n_classes]
    kwargs = dict(
        activation="relu",
        output="sigmoid" if binary else "softmax",
        optimizer="adam" if solver == "adam" else "sgd",
        lr=lr,
        epochs=epochs,
        batch_size=batch,
        init_scheme="glorot",
        backend=backend,
        dtype=dtype,
    )

    def run() -> float:
        return train_mlp(sizes, d.X_train, d.y_train, **kwargs).time_per_epoch

    run()  # JAX: compile once; the executable is kept
    return run


def make_sklearn_mlp(name: str, dtype: str) -> Callable[[], float]:
    """scikit-learn's MLPClassifier at the same settings; returns fit seconds per epoch."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    _, hidden, solver, batch, epochs, lr = MLP_SETTINGS[name]
    d = _mlp_data(name, dtype)
    full_batch = batch is None

    def run() -> float:
        clf = MLPClassifier(
            hidden_layer_sizes=(hidden,),
            solver=solver,
            momentum=0.0,
            alpha=0.0 if full_batch else 1e-4,
            batch_size=d.X_train.shape[0] if full_batch else batch,
            learning_rate_init=lr,
            max_iter=epochs,
            shuffle=not full_batch,  # one batch per epoch: nothing to shuffle
            n_iter_no_change=epochs + 1,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            clf.fit(d.X_train, d.y_train)
            return (time.perf_counter() - t0) / epochs

    return run


# --- one step of a large MLP, and its matrix products ----------------------------------


def large_problem() -> tuple[tuple[Layer, ...], np.ndarray, np.ndarray, Any]:
    n, d, h = LARGE
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype("float32")
    y = rng.integers(0, 2, (n, 1)).astype("float32")
    params = init_params([d, h, 1], seed=0, dtype="float32")
    return params, X, y, make_net([d, h, 1], "sigmoid", "sigmoid")


def make_large_step(backend: str) -> Callable[[], Any]:
    """One SGD step as train_mlp runs it: NumPy's in-place step; JAX in a compiled loop of 8."""
    params, X, y, net = large_problem()
    if backend == "numpy":
        from backprop.fast.mlp_inplace import InPlaceMLP
        from backprop.optim import Optimizer

        step = InPlaceMLP(net, params, Optimizer("sgd", LR), LARGE[0], "float32")

        def run() -> None:
            with np.errstate(over="ignore"):
                step.loss_and_grads(X, y)
                step.update()

        return run
    import jax
    from jax import lax

    from backprop import optim

    K = get_backend("jax")
    opt = optim.Optimizer("sgd", LR)

    def steps(p: Any, X: Any, y: Any) -> Any:
        def one(_: Any, q: Any) -> Any:
            grads = loss_and_grads(K, q, X, y, net)[2]
            return optim.update(opt, q, grads, (), jax.numpy)[0]

        return lax.fori_loop(0, LOOP_STEPS, one, p)

    fn, args = jax.jit(steps), jax.device_put((params, X, y))
    return _ready(lambda: fn(*args))


LOOP_STEPS = 8


def make_large_matmuls(backend: str) -> Callable[[], Any]:
    """The floor: the step's two large products, X @ W1 and X.T @ dZ1 (JAX: in a loop of 8)."""
    params, X, _, _ = large_problem()
    W1 = params[0].w
    dZ = np.random.default_rng(1).standard_normal((LARGE[0], LARGE[2])).astype("float32")
    if backend == "numpy":
        return lambda: (X @ W1, X.T @ dZ)
    import jax
    from jax import lax

    def loop(W: Any, X: Any) -> Any:
        # the same two products per iteration; the carry keeps them from being hoisted
        return lax.fori_loop(0, LOOP_STEPS, lambda _, W: W - 1e-12 * (X.T @ (X @ W)), W)

    fn, args = jax.jit(loop), jax.device_put((W1, X))
    return _ready(lambda: fn(*args))


def make_large_jax_grad() -> Callable[[], Any]:
    """jax.grad of the same network (jax.nn.sigmoid, logits-form BCE), loop of 8."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    params, X, y, _ = large_problem()

    def loss(p: Any, X: Any, y: Any) -> Any:
        h = jax.nn.sigmoid(X @ p[0].w + p[0].b)
        z = h @ p[1].w + p[1].b
        return jnp.mean(jax.nn.softplus(z) - y * z)

    def steps(p: Any, X: Any, y: Any) -> Any:
        def one(_: Any, q: Any) -> Any:
            return jax.tree.map(lambda a, b: a - LR * b, q, jax.grad(loss)(q, X, y))

        return lax.fori_loop(0, LOOP_STEPS, one, p)

    fn, args = jax.jit(steps), jax.device_put((params, X, y))
    return _ready(lambda: fn(*args))


def make_large_torch() -> Callable[[], Any]:
    """PyTorch eager: nn.Sequential, BCEWithLogitsLoss, SGD, every thread."""
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


# --- data-parallel scaling ----------------------------------------------------------------

SCALING_EPOCHS = 20
SCALING_BATCH = 1024


def make_scaling(devices: int) -> Callable[[], Any]:
    """The digits network (64-128-10, adam) with batches of 1024 rows over ``devices``."""
    from backprop import train_mlp

    d = load_dataset("digits", seed=0, dtype="float32")

    def run() -> Any:
        return train_mlp(
            [64, 128, 10],
            d.X_train,
            d.y_train,
            activation="relu",
            output="softmax",
            optimizer="adam",
            lr=1e-3,
            epochs=SCALING_EPOCHS,
            batch_size=SCALING_BATCH,
            backend="jax",
            devices=devices,
        )

    run()  # compile once
    return run


def scaling_steps_per_run() -> int:
    n = load_dataset("digits", seed=0).X_train.shape[0]
    return SCALING_EPOCHS * -(-n // SCALING_BATCH)
