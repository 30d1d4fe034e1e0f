"""backprop's MLPClassifier against scikit-learn's, per epoch, side by side.

Run: ``PYTHONPATH=. python bench/estimator_speed.py [--repeats 7]``

Both estimators get the same arguments (``MLPClassifier(**sk.get_params())``)
and so train the same model; each contender's whole ``fit`` is timed and
divided by ``n_iter_``, every repeat runs every contender in turn
(interleaved, one process, same BLAS), and the table shows medians and the
ratio scikit-learn / ours (above 1: ours is faster). JAX is timed after a
first fit has compiled its epoch (kept for later fits). The workloads are
``bench/workloads.py``'s: breast cancer 30-64-1 full-batch SGD (200 epochs,
lr 0.1) and digits 64-128-10 Adam with batches of 64 (20 epochs), plus
L-BFGS fit time on digits (64-128-10, 50 iterations).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from backprop.data import load_dataset

WORKLOADS = {
    # name: (data set, sklearn arguments)
    "breast cancer full-batch sgd": (
        "breast_cancer",
        dict(hidden_layer_sizes=(64,), solver="sgd", momentum=0.0, alpha=0.0, batch_size=10**6,
             learning_rate_init=0.1, max_iter=200, shuffle=False, n_iter_no_change=10**6),
    ),
    "digits adam batch 64": (
        "digits",
        dict(hidden_layer_sizes=(128,), solver="adam", batch_size=64, learning_rate_init=1e-3,
             max_iter=20, n_iter_no_change=10**6),
    ),
    "digits lbfgs (fit time)": (
        "digits",
        dict(hidden_layer_sizes=(128,), solver="lbfgs", max_iter=50, tol=0.0),
    ),
}  # fmt: skip


def _timer(est: Any, X: np.ndarray, y: np.ndarray, per_epoch: bool) -> Callable[[], float]:
    def run() -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            est.fit(X, y)
            elapsed = time.perf_counter() - t0
        return elapsed / est.n_iter_ if per_epoch else elapsed

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backends", default="numpy,jax")
    parser.add_argument(
        "--cpu", type=int, default=None,
        help="run on this CPU only: the main thread is pinned before JAX starts, and the "
        "threads JAX's CPU runtime starts inherit it (see the README's estimator table)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
        print(f"pinned to CPU {args.cpu}")
    from sklearn.neural_network import MLPClassifier as SkClassifier
    from threadpoolctl import threadpool_info

    from backprop import MLPClassifier

    print("BLAS:", [(i["internal_api"], i["num_threads"]) for i in threadpool_info()])
    backends = args.backends.split(",")
    for name, (data, params) in WORKLOADS.items():
        per_epoch = params["solver"] != "lbfgs"
        for dtype in ("float64", "float32"):
            d = load_dataset(data, seed=0, dtype=dtype)
            X, y = d.X_train, d.y_train
            sk = SkClassifier(random_state=0, **params)
            contenders = {"scikit-learn": _timer(sk, X, y, per_epoch)}
            for b in backends:
                ours = MLPClassifier(**sk.get_params(), backend=b)
                contenders[b] = _timer(ours, X, y, per_epoch)
                if b == "jax":
                    contenders[b]()  # compile once
            times: dict[str, list[float]] = {k: [] for k in contenders}
            for _ in range(args.repeats):
                for k, run in contenders.items():
                    times[k].append(run())
            med = {k: statistics.median(v) for k, v in times.items()}
            unit = "ms/epoch" if per_epoch else "ms/fit"
            cells = ", ".join(
                f"{k} {v * 1e3:.3g} {unit}"
                + ("" if k == "scikit-learn" else f" ({med['scikit-learn'] / v:.2f}x)")
                for k, v in med.items()
            )
            print(f"{name}, {dtype}: {cells}")


if __name__ == "__main__":
    main()
