"""Command-line runners for the layer networks: ``fit --model cnn`` (and ``gpt``).

Kept apart from :mod:`backprop.cli`, which only parses the arguments and calls
:func:`run_fit_cnn`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

CNN_DEFAULTS = {"epochs": 20, "lr": 3e-3, "batch_size": 32}
"""``fit --model cnn``'s defaults where the command line gives none."""


def run_fit_cnn(args: argparse.Namespace, usage_error: type[Exception]) -> int:
    """Train :func:`backprop.models.cnn` on the digits as (N, 1, 8, 8) images; print accuracies."""
    from backprop import models
    from backprop.data import load_dataset, require_sklearn
    from backprop.progress import progress_bar
    from backprop.train_net import predict, train_net

    if args.data != "digits":
        raise usage_error(f"--model cnn needs images: --data digits, got --data {args.data}")
    for flag, value in (
        ("--coordinator", args.coordinator),
        ("--early-stopping", args.early_stopping or None),
    ):
        if value is not None:
            raise usage_error(f"{flag} is not supported with --model cnn yet")
    try:
        require_sklearn("fit --data")
    except ImportError as exc:
        raise usage_error(str(exc)) from None
    epochs = args.epochs or CNN_DEFAULTS["epochs"]
    lr = args.lr or CNN_DEFAULTS["lr"]
    batch = args.batch_size or CNN_DEFAULTS["batch_size"]
    weight_decay = 1e-2 if args.weight_decay is None else args.weight_decay
    d = load_dataset(
        "digits", test_size=args.test_size, seed=args.seed, standardize=False, dtype=args.dtype
    )
    # Pixels 0..16 scaled to [0, 1], as images (N, C=1, H=8, W=8).
    X_train = (d.X_train / 16).reshape(-1, 1, 8, 8)
    X_test = (d.X_test / 16).reshape(-1, 1, 8, 8)
    net = models.cnn(d.n_classes)
    init = None
    if args.load:
        from backprop.network import load

        init = load(args.load, net, (1, 8, 8), args.dtype)
        print(f"starting from the parameters in {args.load}")
    print(
        f"== fit digits: cnn conv16-bn-relu conv32-bn-relu pool2 dropout0.25 dense{d.n_classes}, "
        f"adamw lr {lr:g} (cosine) wd {weight_decay:g}, batch {batch}, {epochs} epochs, "
        f"{args.backend} {args.dtype}{_on_devices(args)} =="
    )
    every = max(1, epochs // 10)

    def report(epoch: int, loss: float) -> None:
        if args.verbose or (not args.quiet and (epoch % every == 0 or epoch == epochs)):
            print(f"epoch {epoch:>5}  loss {loss:.4f}")

    t0 = time.perf_counter()
    with progress_bar(epochs, "digits") as bar:
        r = train_net(
            net,
            X_train,
            d.y_train,
            optimizer=args.optimizer,
            lr=lr,
            weight_decay=weight_decay,
            schedule="cosine",
            epochs=epochs,
            batch_size=min(batch, X_train.shape[0]),
            seed=args.seed,
            dtype=args.dtype,
            init=init,
            backend=args.backend,
            devices=args.devices,
            progress=bar or report,
        )
    seconds = time.perf_counter() - t0
    test_pred = predict(net, r.params, r.state, X_test, args.backend).argmax(1)
    train_pred = predict(net, r.params, r.state, X_train, args.backend).argmax(1)
    print(
        f"train accuracy {np.mean(train_pred == d.y_train):.1%}, test accuracy "
        f"{np.mean(test_pred == d.y_test):.1%} ({r.epochs} epochs; "
        f"{r.time_per_epoch * 1e3:.3g} ms/epoch, {seconds:.2f} s in all"
        f"{f', compile {r.compile_time:.2f} s' if args.backend == 'jax' else ''})"
    )
    if args.save:
        from backprop.network import save

        save(args.save, r.params, r.state)
        print(f"parameters and batch-norm state written to {args.save}")
    return 0


def _on_devices(args: argparse.Namespace) -> str:
    """The header's ", devices N" when ``--devices`` was given, else an empty string."""
    return "" if args.devices is None else f", devices {args.devices}"


# --- gpt -------------------------------------------------------------------------------


def stdlib_text() -> bytes:
    """The standard library's top-level ``*.py`` files, sorted by name, concatenated as bytes."""
    import sysconfig
    from pathlib import Path

    root = Path(sysconfig.get_paths()["stdlib"])
    return b"".join(p.read_bytes() for p in sorted(root.glob("*.py")))


def bigram_bits(train: np.ndarray, held: np.ndarray, vocab: int, alpha: float = 0.01) -> float:
    """Held-out bits per character of the bigram model counted on ``train`` (add-``alpha``)."""
    counts = np.full((vocab, vocab), alpha)
    np.add.at(counts, (train[:-1], train[1:]), 1.0)
    logp = np.log2(counts / counts.sum(axis=1, keepdims=True))
    return float(-logp[held[:-1], held[1:]].mean())


def run_gpt(args: argparse.Namespace, usage_error: type[Exception]) -> int:
    """Train :func:`backprop.models.gpt` on the standard library's source; print bits/char."""
    import math

    from backprop import models
    from backprop.kernels import get_backend
    from backprop.network import count_params
    from backprop.train_net import evaluate, train_net

    data = np.frombuffer(stdlib_text(), np.uint8)
    symbols = np.unique(data)
    ids = np.searchsorted(symbols, data).astype(np.int32)
    vocab, t = len(symbols), args.context
    cut = int(0.9 * len(ids))
    train, held = ids[:cut], ids[cut:]
    if len(held) <= t + 1:
        raise usage_error(f"--context {t} is longer than the held-out text")
    # Every window of t + 1 characters that starts at a multiple of t // 2 (training)
    # or t (held out): inputs its first t, targets its last t.
    starts = np.arange(0, len(train) - t - 1, max(1, t // 2))
    X = train[starts[:, None] + np.arange(t)]
    Y = train[starts[:, None] + np.arange(1, t + 1)]
    rng = np.random.default_rng(args.seed)
    hstarts = np.arange(0, len(held) - t - 1, t)
    Xh = held[hstarts[:, None] + np.arange(t)]
    Yh = held[hstarts[:, None] + np.arange(1, t + 1)]
    pick = rng.choice(len(Xh), min(len(Xh), args.eval_windows), replace=False)
    net = models.gpt(vocab, t, dim=args.dim, heads=args.heads, blocks=args.blocks)
    params, state, _ = net.init(args.seed, (t,), args.dtype)
    ln2 = math.log(2)
    print(
        f"== gpt on the standard library's top-level *.py: {len(data):,} bytes, {vocab} distinct; "
        f"held out the last 10% ({len(held):,}); bigram baseline "
        f"{bigram_bits(train, held, vocab):.2f} bits/char =="
    )
    print(f"held-out loss as it goes: on {len(pick)} windows of {t}; at the end: on all of them")
    print(
        f"model: {args.blocks} blocks, dim {args.dim}, {args.heads} heads, context {t}: "
        f"{count_params(params):,} parameters; adamw lr {args.lr:g} (cosine), batch "
        f"{args.batch_size}, clip 1.0, {args.backend} {args.dtype}{_on_devices(args)}, "
        f"at most {args.minutes:g} min"
    )
    K = get_backend(args.backend)
    t0 = time.perf_counter()

    def report(epoch: int, loss: float, val_loss: Any, val_accuracy: Any) -> None:
        print(
            f"step {epoch * args.steps:>6}  train {loss / ln2:.3f}  held-out {val_loss / ln2:.3f} "
            f"bits/char ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )

    r = train_net(
        net,
        X,
        Y,
        optimizer="adam",
        lr=args.lr,
        weight_decay=0.1,
        clip_norm=1.0,
        schedule="cosine",
        epochs=args.epochs,
        batch_size=args.batch_size,
        steps_per_epoch=args.steps,
        time_limit=args.minutes * 60,
        validation=(Xh[pick], Yh[pick]),
        seed=args.seed,
        dtype=args.dtype,
        init=(params, state),
        backend=args.backend,
        devices=args.devices,
        on_epoch=report,
    )
    xp = K.xp
    full, _ = evaluate(K, net, tree_to(xp, r.params), tree_to(xp, r.state), xp.asarray(Xh), Yh)
    print(
        f"held-out loss {full / ln2:.3f} bits/char on all {len(Xh) * t:,} held-out positions "
        f"({r.epochs * args.steps} steps, {time.perf_counter() - t0:.0f} s)"
    )
    print("sample:")
    print(sample(net, r.params, r.state, held[:t], symbols, args.sample, args.backend, rng))
    return 0


def tree_to(xp: Any, tree: Any) -> Any:
    """The container with its arrays converted by ``xp.asarray``."""
    from backprop.network import tree_map

    return tree_map(xp.asarray, tree)


def sample(
    net: Any,
    params: Any,
    state: Any,
    prompt: np.ndarray,
    symbols: np.ndarray,
    length: int,
    backend: str,
    rng: np.random.Generator,
) -> str:
    """``length`` characters drawn one at a time after ``prompt`` (the last T ids are the input)."""
    from backprop.kernels import get_backend

    K = get_backend(backend)
    p, s = tree_to(K.xp, params), tree_to(K.xp, state)

    def last_logits(window: Any) -> Any:
        return net.forward(K, p, s, window, False, None)[0][0, -1]

    if backend == "jax":
        import jax

        last_logits = jax.jit(last_logits)
    window = np.asarray(prompt, np.int32).copy()
    out = []
    for _ in range(length):
        z = np.asarray(last_logits(K.xp.asarray(window[None])), np.float64)
        q = np.exp(z - z.max())
        nxt = int(rng.choice(len(q), p=q / q.sum()))
        out.append(nxt)
        window = np.concatenate([window[1:], [nxt]])
    return bytes(symbols[out].tolist()).decode("utf-8", "replace")
