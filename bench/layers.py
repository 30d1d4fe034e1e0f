"""The layer kernels against what a skilled user writes, at the issue's sizes.

Four implementations of each kernel's forward + backward, on the same
float32 data and the same upstream gradient:

- ``numpy``: this library's NumPy kernels, the BLAS limited to one thread;
- ``torch``: PyTorch eager (``torch.nn.functional``) and
  ``torch.autograd.grad``, one thread: the NumPy kernels' peer;
- ``jax``: this library's JAX kernels, forward and backward in one jitted call;
- ``jax_vjp``: ``jax.vjp`` of the idiomatic forward (``jax.nn.gelu``,
  ``jax.nn.softmax``, ``lax.conv_general_dilated``, ``lax.reduce_window``,
  the usual layer-norm and attention expressions), jitted: the JAX kernels' peer.

``python -m bench.layers`` times them interleaved (each with its peer, one
call of each in turn, ``--rounds`` times, medians; the ratio is the median of
the per-round ratios, so a slow spell on a shared machine hits both sides of
a ratio) and prints the README's table. ``bench/test_bench_layers.py`` times the same
callables under pytest-benchmark.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from backprop.kernels import get_backend

SIZES = {
    "softmax": "z (4096, 1024)",
    "gelu": "z (4096, 1024), tanh form",
    "layernorm": "x (4096, 1024)",
    "batchnorm": "x (4096, 1024)",
    "dropout": "x (4096, 1024), p = 0.1",
    "embedding": "4096 indices into (65, 256)",
    "conv2d": "x (64, 16, 32, 32), 32 filters 3x3, padding 1",
    "maxpool2d": "2x2 on (64, 32, 32, 32)",
    "attention": "q, k, v (8, 4, 128, 32), causal",
}
"""Each kernel's benchmark size, in words (the issue's sizes)."""
LAYERS = tuple(SIZES)
IMPLS = ("numpy", "torch", "jax", "jax_vjp")
TARGETS = {"numpy": 0.5, "jax": 1.0}
"""Speed targets: NumPy >= 0.5x PyTorch eager, JAX >= 1.0x jax.vjp (higher is faster)."""
PEER = {"numpy": "torch", "jax": "jax_vjp"}


def inputs(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs in the forward's order, keyword arguments), float32, seed 0."""
    r = np.random.default_rng(0)

    def f(*shape: int) -> np.ndarray:
        return r.standard_normal(shape).astype(np.float32)

    if name in ("softmax", "gelu"):
        return {"z": f(4096, 1024)}, {}
    if name in ("layernorm", "batchnorm"):
        return {"x": f(4096, 1024), "gamma": f(1024), "beta": f(1024)}, {}
    if name == "dropout":
        return {"x": f(4096, 1024), "p": 0.1, "seed": 0}, {}
    if name == "embedding":
        return {"idx": r.integers(0, 65, 4096), "table": f(65, 256)}, {}
    if name == "conv2d":
        return {"x": f(64, 16, 32, 32), "w": f(32, 16, 3, 3), "b": f(32)}, {"padding": 1}
    if name == "maxpool2d":
        return {"x": f(64, 32, 32, 32)}, {}
    if name == "attention":
        return {"q": f(8, 4, 128, 32), "k": f(8, 4, 128, 32), "v": f(8, 4, 128, 32)}, {
            "causal": True
        }
    raise ValueError(f"unknown layer {name!r}; layers: {', '.join(LAYERS)}")


def _upstream(name: str) -> np.ndarray:
    out_shape = {
        "embedding": (4096, 256),
        "conv2d": (64, 32, 32, 32),
        "maxpool2d": (64, 32, 16, 16),
        "attention": (8, 4, 128, 32),
    }.get(name, (4096, 1024))
    return np.random.default_rng(1).standard_normal(out_shape).astype(np.float32)


def one_thread() -> None:
    """One thread for PyTorch and for the BLAS under NumPy (threadpoolctl), for this process."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    else:
        global _LIMIT
        _LIMIT = threadpool_limits(limits=1, user_api="blas")
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


_LIMIT: Any = None


def make(name: str, impl: str) -> Callable[[], Any]:
    """A zero-argument callable running one forward + backward of ``name`` with ``impl``."""
    values, kwargs = inputs(name)
    g = _upstream(name)
    if impl == "numpy":
        K = get_backend("numpy")
        forward, backward = getattr(K, f"{name}_forward"), getattr(K, f"{name}_backward")
        args = list(values.values())
        return lambda: backward(g, forward(*args, **kwargs)[1])
    if impl == "jax":
        import jax

        K = get_backend("jax")
        forward, backward = getattr(K, f"{name}_forward"), getattr(K, f"{name}_backward")
        if name == "dropout":
            values = {**values, "seed": jax.random.key(0)}
        fixed = {k: v for k, v in values.items() if not _differentiable(k)}
        diff = [jax.device_put(v) for k, v in values.items() if _differentiable(k)]

        @jax.jit
        def run(g: Any, *diff: Any) -> Any:
            full = dict(zip([k for k in values if _differentiable(k)], diff, strict=True))
            out, cache = forward(*({**fixed, **full}[k] for k in values), **kwargs)
            return out, backward(g, cache)

        gj = jax.device_put(g)
        return _ready(lambda: run(gj, *diff))
    if impl == "jax_vjp":
        return _jax_vjp(name, values, g)
    if impl == "torch":
        return _torch(name, values, g)
    raise ValueError(f"unknown implementation {impl!r}; choose one of {', '.join(IMPLS)}")


def _differentiable(input_name: str) -> bool:
    return input_name not in ("p", "seed", "idx")


def _ready(fn: Callable[[], Any]) -> Callable[[], Any]:
    import jax

    def run() -> Any:
        return jax.block_until_ready(fn())

    run()
    return run


def _jax_vjp(name: str, values: dict[str, Any], g: np.ndarray) -> Callable[[], Any]:
    """jax.vjp of the idiomatic forward, jitted."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    if name == "softmax":
        fn = lambda z: jax.nn.softmax(z, axis=-1)  # noqa: E731
    elif name == "gelu":
        fn = lambda z: jax.nn.gelu(z, approximate=True)  # noqa: E731
    elif name == "layernorm":

        def fn(x: Any, gamma: Any, beta: Any) -> Any:
            mean = x.mean(-1, keepdims=True)
            var = x.var(-1, keepdims=True)
            return (x - mean) * lax.rsqrt(var + 1e-5) * gamma + beta
    elif name == "batchnorm":

        def fn(x: Any, gamma: Any, beta: Any) -> Any:
            mean = x.mean(0)
            var = x.var(0)
            return (x - mean) * lax.rsqrt(var + 1e-5) * gamma + beta
    elif name == "dropout":
        key = jax.random.key(0)

        def fn(x: Any) -> Any:
            keep = jax.random.bernoulli(key, 0.9, x.shape)
            return jnp.where(keep, x / 0.9, 0.0)

        values = {"x": values["x"]}
    elif name == "embedding":
        idx = jnp.asarray(values["idx"])
        fn = lambda table: table[idx]  # noqa: E731
        values = {"table": values["table"]}
    elif name == "conv2d":

        def fn(x: Any, w: Any, b: Any) -> Any:
            out = lax.conv_general_dilated(
                x, w, (1, 1), [(1, 1), (1, 1)], dimension_numbers=("NCHW", "OIHW", "NCHW")
            )
            return out + b[None, :, None, None]
    elif name == "maxpool2d":
        fn = lambda x: lax.reduce_window(  # noqa: E731
            x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID"
        )
    elif name == "attention":

        def fn(q: Any, k: Any, v: Any) -> Any:
            t = q.shape[-2]
            s = q @ jnp.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
            s = jnp.where(jnp.tril(jnp.ones((t, t), bool)), s, -jnp.inf)
            return jax.nn.softmax(s, axis=-1) @ v
    else:
        raise ValueError(f"unknown layer {name!r}")

    @jax.jit
    def run(g: Any, *args: Any) -> Any:
        out, vjp = jax.vjp(fn, *args)
        return out, vjp(g)

    args = [jax.device_put(v) for v in values.values()]
    gj = jax.device_put(g)
    return _ready(lambda: run(gj, *args))


def _torch(name: str, values: dict[str, Any], g: np.ndarray) -> Callable[[], Any]:
    """PyTorch eager: the functional forward and torch.autograd.grad."""
    import torch
    import torch.nn.functional as F

    gt = torch.from_numpy(g)

    def leaf(a: np.ndarray) -> Any:
        return torch.from_numpy(a).requires_grad_(True)

    if name == "embedding":
        idx, table = torch.from_numpy(values["idx"]), leaf(values["table"])
        leaves, fn = [table], lambda: F.embedding(idx, table)
    elif name == "dropout":
        x = leaf(values["x"])
        leaves, fn = [x], lambda: F.dropout(x, 0.1, training=True)
    else:
        leaves = [leaf(v) for v in values.values()]
        a = leaves
        fns = {
            "softmax": lambda: torch.softmax(a[0], -1),
            "gelu": lambda: F.gelu(a[0], approximate="tanh"),
            "layernorm": lambda: F.layer_norm(a[0], (a[0].shape[-1],), a[1], a[2], 1e-5),
            "batchnorm": lambda: F.batch_norm(a[0], None, None, a[1], a[2], True, 0.1, 1e-5),
            "conv2d": lambda: F.conv2d(a[0], a[1], a[2], padding=1),
            "maxpool2d": lambda: F.max_pool2d(a[0], 2),
            "attention": lambda: _torch_attention(torch, a[0], a[1], a[2]),
        }
        fn = fns[name]

    def run() -> Any:
        out = fn()
        return out, torch.autograd.grad(out, leaves, gt)

    return run


def _torch_attention(torch: Any, q: Any, k: Any, v: Any) -> Any:
    t = q.shape[-2]
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
    return torch.softmax(s, -1) @ v


def measure(names: tuple[str, ...], rounds: int, impls: tuple[str, ...] = IMPLS) -> dict:
    """Interleaved timings: ``{name: {impl: [seconds per round]}}``.

    Each implementation is timed in turn with its peer only (NumPy with
    PyTorch, JAX with jax.vjp), one call of each per round, the two swapping
    places every round. JAX's CPU runtime keeps a core busy for a few
    milliseconds after a call returns; when all four ran in one rotation,
    the call after jax.vjp's (always NumPy's) shared the 2-core machine with
    it, up to 2x slower than after PyTorch's.
    """
    one_thread()
    groups = [[a, b] for a, b in PEER.items() if a in impls and b in impls]
    groups += [[impl] for impl in impls if not any(impl in g for g in groups)]
    result: dict[str, dict[str, list[float]]] = {}
    for name in names:
        fns = {impl: make(name, impl) for impl in impls}
        for fn in fns.values():
            fn()  # warm up
        times: dict[str, list[float]] = {impl: [] for impl in impls}
        for group in groups:
            for r in range(rounds):
                for impl in group[r % 2 :] + group[: r % 2]:
                    t0 = time.perf_counter()
                    fns[impl]()
                    times[impl].append(time.perf_counter() - t0)
        result[name] = times
    return result


def table(result: dict) -> str:
    """The README's table: medians, speed ratios (peer time / ours), met or missed."""
    lines = [
        "| kernel | size | NumPy | PyTorch eager | NumPy speed vs PyTorch (target 0.5x) "
        "| JAX | jax.vjp | JAX speed vs jax.vjp (target 1.0x) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, times in result.items():
        cells = [f"`{name}`", SIZES[name]]
        for ours in ("numpy", "jax"):
            peer = PEER[ours]
            ratios = [p / o for p, o in zip(times[peer], times[ours], strict=True)]
            r = statistics.median(ratios)
            verdict = "met" if r >= TARGETS[ours] else "missed"
            cells += [
                f"{statistics.median(times[ours]) * 1e3:.3g} ms",
                f"{statistics.median(times[peer]) * 1e3:.3g} ms",
                f"{r:.2f}x ({verdict})",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("names", nargs="*", metavar="KERNEL", help=", ".join(LAYERS))
    args = parser.parse_args(argv)
    for name in args.names:
        if name not in LAYERS:
            parser.error(f"unknown kernel {name!r}; kernels: {', '.join(LAYERS)}")
    print(table(measure(tuple(args.names or LAYERS), args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
