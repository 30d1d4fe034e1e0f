"""One training step of the digits CNN and of a small GPT: the hand-composed
backward (backprop.train_net.make_step) against jax.grad of the same forward
with the same optimizer (Adam, the same decay and clipping), the whole step
jitted on JAX; NumPy's step reported beside them.

Run ``pytest bench/test_bench_network.py --benchmark-only`` for timings; a
plain ``pytest --benchmark-disable`` runs each body once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backprop import models, optim
from backprop.kernels import get_backend
from backprop.network import leaves, rebuild, tree_map
from backprop.train_net import _as_layers, make_step
from bench.conftest import requires_jax, requires_torch

CASES = {
    # name: (network, per-row input shape, batch of inputs, labels)
    "cnn digits, batch 32": lambda rng: (
        models.cnn(10),
        (1, 8, 8),
        rng.uniform(0, 1, (32, 1, 8, 8)).astype(np.float32),
        rng.integers(0, 10, 32),
    ),
    "gpt 2x128, batch 8 x 64": lambda rng: (
        models.gpt(162, 64, dim=128, heads=4, blocks=2),
        (64,),
        rng.integers(0, 162, (8, 64)).astype(np.int32),
        rng.integers(0, 162, (8, 64)),
    ),
}
WD, CLIP = 1e-2, 1.0


def _autodiff_step(net, opt):
    """The same step with jax.grad of the forward in place of the hand-written backward."""
    import jax
    import jax.numpy as jnp

    K = get_backend("jax")
    spec = optim.get(opt.name)

    def loss_fn(params, state, x, y, key):
        logits, _, state = net.forward(K, params, state, x, True, key)
        z = logits.reshape(-1, logits.shape[-1])
        onehot = jax.nn.one_hot(y.reshape(-1), z.shape[1], dtype=z.dtype)
        return K.softmax_cross_entropy_forward(z, onehot)[0], state

    def step(params, state, opt_state, lr, x, y, key):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y, key)
        g = leaves(grads)
        norm = jnp.sqrt(sum((a * a).sum() for a in g))
        g = [a * jnp.minimum(1.0, CLIP / (norm + 1e-6)).astype(a.dtype) for a in g]
        p = [a - (lr * WD) * a if a.ndim >= 2 else a for a in leaves(params)]
        new, opt_state = spec.update(opt, _as_layers(p, jnp), _as_layers(g, jnp), opt_state, jnp)
        return rebuild(params, [layer.w for layer in new]), state, opt_state, loss

    return step


def _setup(name, backend, how):
    rng = np.random.default_rng(0)
    net, in_shape, x, y = CASES[name](rng)
    K = get_backend(backend)
    opt = optim.make_optimizer("adam", 1e-3)
    params, state, _ = net.init(0, in_shape, "float32")
    params, state = tree_map(K.xp.asarray, params), tree_map(K.xp.asarray, state)
    opt_state = optim.get("adam").init(opt, _as_layers(leaves(params), K.xp), K.xp)
    if how == "hand":
        step = make_step(K, net, opt, WD, CLIP)
    else:
        step = _autodiff_step(net, opt)
    lr = np.float32(1e-3)
    if backend == "jax":
        import jax

        step = jax.jit(step)
        key = jax.random.key(0)
        x, y = K.xp.asarray(x), K.xp.asarray(y)

        def run():
            out = step(params, state, opt_state, lr, x, y, key)
            jax.block_until_ready(out)

    else:
        gen = np.random.default_rng(1)

        def run():
            step(params, state, opt_state, lr, x, y, gen)

    run()  # compile (JAX) outside the timing
    return run


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize(
    "backend, how",
    [
        pytest.param("jax", "hand", marks=requires_jax),
        pytest.param("jax", "jax.grad", marks=requires_jax),
        ("numpy", "hand"),
    ],
)
def test_train_step(benchmark, name, backend, how):
    run = _setup(name, backend, how)
    benchmark.group = f"train step: {name}"
    benchmark.extra_info.update(table="network", setting=name, row=f"{how} ({backend})")
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)


def interleaved(name: str, repeats: int = 20) -> dict[str, float]:
    """Median seconds per step: JAX hand, JAX jax.grad, NumPy hand, interleaved (one process)."""
    import time

    runs = {how: _setup(name, "jax", how) for how in ("hand", "jax.grad")}
    runs["numpy"] = _setup(name, "numpy", "hand")
    times: dict[str, list[float]] = {how: [] for how in runs}
    for _ in range(repeats):
        for how, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[how].append(time.perf_counter() - t0)
    return {how: float(np.median(t)) for how, t in times.items()}


def torch_cnn_step() -> Any:
    """PyTorch eager, one thread: the digits CNN's training step (AdamW, clipping), batch 32."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(512, 10),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=WD)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.uniform(0, 1, (32, 1, 8, 8)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 10, 32))

    def run() -> None:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()

    run()
    return run


@requires_torch
def test_torch_cnn_step(benchmark):
    benchmark.group = "train step: cnn digits, batch 32"
    benchmark.extra_info.update(table="network", setting="cnn", row="PyTorch eager, 1 thread")
    benchmark.pedantic(torch_cnn_step(), rounds=10, iterations=1, warmup_rounds=1)


def numpy_vs_torch(repeats: int = 40) -> tuple[float, float]:
    """Median seconds per CNN step: NumPy hand-written, PyTorch eager 1 thread, interleaved."""
    import time

    runs = {"numpy": _setup("cnn digits, batch 32", "numpy", "hand"), "torch": torch_cnn_step()}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[k].append(time.perf_counter() - t0)
    return float(np.median(times["numpy"])), float(np.median(times["torch"]))


def _have_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


if __name__ == "__main__":  # python -m bench.test_bench_network
    for case in CASES:
        med = interleaved(case)
        ratio = med["jax.grad"] / med["hand"]
        print(
            f"{case}: hand {med['hand'] * 1e3:.2f} ms, jax.grad {med['jax.grad'] * 1e3:.2f} ms "
            f"per step (medians of 20, interleaved): hand = {ratio:.2f}x jax.grad's speed; "
            f"NumPy {med['numpy'] * 1e3:.2f} ms"
        )
    if _have_torch():
        n, t = numpy_vs_torch()
        print(
            f"cnn step, NumPy {n * 1e3:.2f} ms, PyTorch eager 1 thread {t * 1e3:.2f} ms: "
            f"NumPy = {t / n:.2f}x PyTorch's speed"
        )
