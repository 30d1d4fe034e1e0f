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
        ("--devices", args.devices),
        ("--coordinator", args.coordinator),
        ("--early-stopping", args.early_stopping or None),
        ("--load", args.load),
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
    print(
        f"== fit digits: cnn conv16-bn-relu conv32-bn-relu pool2 dropout0.25 dense{d.n_classes}, "
        f"adamw lr {lr:g} (cosine) wd {weight_decay:g}, batch {batch}, {epochs} epochs, "
        f"{args.backend} {args.dtype} =="
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
            optimizer="adam" if args.solver == "adam" else "momentum",
            lr=lr,
            weight_decay=weight_decay,
            schedule="cosine",
            epochs=epochs,
            batch_size=min(batch, X_train.shape[0]),
            seed=args.seed,
            dtype=args.dtype,
            backend=args.backend,
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
        from backprop.network import leaves

        arrays: dict[str, Any] = {f"a{i}": a for i, a in enumerate(leaves((r.params, r.state)))}
        np.savez(args.save, **arrays)
        print(f"parameters and state written to {args.save} (in backprop.network.leaves order)")
    return 0
