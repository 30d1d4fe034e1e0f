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
    """Median seconds per step: JAX hand and JAX jax.grad interleaved, the pair swapping
    places every round (so neither always follows the other: JAX's runtime keeps a core
    busy for a moment after a call); then NumPy's hand step on its own (its BLAS threads
    would otherwise still be spinning when the next JAX call starts)."""
    import time

    runs = {how: _setup(name, "jax", how) for how in ("hand", "jax.grad")}
    times: dict[str, list[float]] = {how: [] for how in (*runs, "numpy")}
    pair = list(runs.items())
    for r in range(repeats):
        for how, run in pair if r % 2 == 0 else pair[::-1]:
            t0 = time.perf_counter()
            run()
            times[how].append(time.perf_counter() - t0)
    numpy_step = _setup(name, "numpy", "hand")
    for _ in range(repeats):
        t0 = time.perf_counter()
        numpy_step()
        times["numpy"].append(time.perf_counter() - t0)
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


GPT_SIZES = {"vocab": 162, "context": 64, "dim": 128, "heads": 4, "blocks": 2, "batch": 8}
"""The bench's GPT: ``models.gpt(162, 64, dim=128, heads=4, blocks=2)``, batch 8 x 64."""


def torch_gpt(attention: str = "plain") -> Any:
    """The bench's GPT as a PyTorch ``nn.Module`` (ids (N, T) -> logits (N, T, vocab)).

    The same network as :func:`backprop.models.gpt` with the same sizes: token
    and position embeddings (learned tables), pre-norm blocks ``x + attn(LN(x))``,
    ``x + MLP(LN(x))`` (causal multi-head attention with one fused qkv
    projection and an output projection; MLP ``Linear(4 dim) GELU(tanh)
    Linear(dim)``), a final layer norm and a linear head, written as nn.Modules.
    ``attention``: "plain" computes ``softmax(q k^T / sqrt(d) + causal mask) v``
    as an expression; "sdpa" calls ``F.scaled_dot_product_attention(is_causal=True)``
    (PyTorch's fused kernel). :func:`load_our_gpt` copies our parameters in;
    with them its logits equal ours (:func:`torch_gpt_matches`, run by
    ``python -m bench.test_bench_network``).
    """
    import math

    import torch

    if attention not in ("plain", "sdpa"):
        raise ValueError(f"attention must be 'plain' or 'sdpa', got {attention!r}")
    nn, F = torch.nn, torch.nn.functional
    V, T, D, H, B = (GPT_SIZES[k] for k in ("vocab", "context", "dim", "heads", "blocks"))

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
            self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).tril())

        def forward(self, x: Any) -> Any:
            n, t, d = x.shape
            q, k, v = self.qkv(x).view(n, t, 3, H, d // H).permute(2, 0, 3, 1, 4)
            if attention == "sdpa":
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) / math.sqrt(d // H)
                att = att.masked_fill(~self.mask[:t, :t], float("-inf"))
                y = att.softmax(dim=-1) @ v
            return self.proj(y.transpose(1, 2).reshape(n, t, d))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.attn, self.ln2 = nn.LayerNorm(D), Attention(), nn.LayerNorm(D)
            self.mlp = nn.Sequential(
                nn.Linear(D, 4 * D), nn.GELU(approximate="tanh"), nn.Linear(4 * D, D)
            )

        def forward(self, x: Any) -> Any:
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(V, D)
            self.pos = nn.Parameter(0.02 * torch.randn(T, D))
            self.blocks = nn.Sequential(*(Block() for _ in range(B)))
            self.ln, self.head = nn.LayerNorm(D), nn.Linear(D, V)

        def forward(self, ids: Any) -> Any:
            x = self.tok(ids) + self.pos[: ids.shape[1]]
            return self.head(self.ln(self.blocks(x)))

    return GPT()


def load_our_gpt(model: Any, params: Any) -> None:
    """Copy :func:`backprop.models.gpt`'s ``params`` (from ``net.init``) into :func:`torch_gpt`."""
    import torch

    emb, pos, *blocks, ln, head = params
    sd = {"tok.weight": emb["table"], "pos": pos["table"], "ln.weight": ln["gamma"]}
    sd.update({"ln.bias": ln["beta"], "head.weight": head["w"].T, "head.bias": head["b"]})
    for i in range(len(blocks) // 2):
        (ln1, attn), (ln2, fc, _, out) = blocks[2 * i], blocks[2 * i + 1]
        pre = f"blocks.{i}."
        for name, p in (("ln1", ln1), ("ln2", ln2)):
            sd.update({pre + name + ".weight": p["gamma"], pre + name + ".bias": p["beta"]})
        for name, p in (
            ("attn.qkv", attn["qkv"]), ("attn.proj", attn["proj"]), ("mlp.0", fc), ("mlp.2", out)
        ):  # fmt: skip
            sd.update({pre + name + ".weight": p["w"].T, pre + name + ".bias": p["b"]})
    own = model.state_dict()
    with torch.no_grad():
        for name, value in sd.items():
            own[name].copy_(torch.as_tensor(np.ascontiguousarray(value)))


def torch_gpt_matches() -> dict[str, float]:
    """Largest relative difference between our GPT's logits and :func:`torch_gpt`'s with our
    parameters loaded (float64, 3 random windows), for each attention form."""
    import torch

    V, T = GPT_SIZES["vocab"], GPT_SIZES["context"]
    net = models.gpt(V, T, dim=GPT_SIZES["dim"], heads=GPT_SIZES["heads"], blocks=2)
    params, state, _ = net.init(0, (T,), "float64")
    x = np.random.default_rng(0).integers(0, V, (3, T))
    ours = net.apply(params, state, x)
    out = {}
    for attention in ("plain", "sdpa"):
        model = torch_gpt(attention).double()
        load_our_gpt(model, params)
        with torch.no_grad():
            theirs = model(torch.tensor(x)).numpy()
        out[attention] = float(np.max(np.abs(theirs - ours)) / np.max(np.abs(ours)))
    return out


def torch_gpt_step(attention: str = "plain") -> Any:
    """PyTorch eager, one thread: the bench's GPT training step (AdamW, clipping), batch 8 x 64.

    :func:`torch_gpt`, AdamW (lr 1e-3, weight decay on the arrays of 2 or more
    axes, as :func:`backprop.train_net.make_step`), gradients clipped to norm
    1. One difference in the optimizer that costs nothing: PyTorch adds
    Adam's eps to the bias-corrected sqrt(v), ours to sqrt(v) with the
    corrections folded into the step size.
    """
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    nn, F = torch.nn, torch.nn.functional
    V, T = GPT_SIZES["vocab"], GPT_SIZES["context"]
    model = torch_gpt(attention)
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": WD},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=1e-3)
    rng = np.random.default_rng(0)
    n = GPT_SIZES["batch"]
    x = torch.tensor(rng.integers(0, V, (n, T)))
    y = torch.tensor(rng.integers(0, V, (n, T)))

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).view(-1, V), y.view(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()

    run()
    return run


@requires_torch
@pytest.mark.parametrize("attention", ["plain", "sdpa"])
def test_torch_gpt_step(benchmark, attention):
    benchmark.group = "train step: gpt 2x128, batch 8 x 64"
    benchmark.extra_info.update(
        table="network", setting="gpt", row=f"PyTorch eager, 1 thread ({attention} attention)"
    )
    benchmark.pedantic(torch_gpt_step(attention), rounds=10, iterations=1, warmup_rounds=1)


def numpy_vs_torch_gpt(repeats: int = 20) -> dict[str, float]:
    """Median seconds per GPT step, interleaved: NumPy hand-written (BLAS threads as
    they are, and limited to one with threadpoolctl), PyTorch eager on one thread with
    the plain attention expression and with ``F.scaled_dot_product_attention``."""
    import contextlib
    import time

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        threadpool_limits = None
    numpy_step = _setup("gpt 2x128, batch 8 x 64", "numpy", "hand")
    runs = {
        "numpy": (numpy_step, contextlib.nullcontext),
        "torch plain": (torch_gpt_step("plain"), contextlib.nullcontext),
        "torch sdpa": (torch_gpt_step("sdpa"), contextlib.nullcontext),
    }
    if threadpool_limits is not None:
        runs["numpy, 1 BLAS thread"] = (
            numpy_step,
            lambda: threadpool_limits(limits=1, user_api="blas"),
        )
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, (run, limit) in runs.items():
            with limit():
                t0 = time.perf_counter()
                run()
                times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(t)) for k, t in times.items()}


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
        same = torch_gpt_matches()
        print(
            "PyTorch GPT with our parameters: logits equal ours to "
            + ", ".join(f"{v:.1e} ({k} attention)" for k, v in same.items())
        )
        med = numpy_vs_torch_gpt()
        print(
            "gpt step (medians of 20, interleaved): "
            + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in med.items())
        )
        for k in [k for k in med if k.startswith("numpy")]:
            print(
                f"  {k}: {med['torch plain'] / med[k]:.2f}x PyTorch's speed (plain attention), "
                f"{med['torch sdpa'] / med[k]:.2f}x (scaled_dot_product_attention)"
            )
