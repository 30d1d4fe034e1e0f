"""The equal-result check of data-parallel training, for the benchmark report.

Run with several simulated CPU devices, e.g.
``XLA_FLAGS=--xla_force_host_platform_device_count=8 python bench/equality.py``:
prints, as JSON, the largest relative difference between a float64 run on one
device and the same run on 2, 4 and 8 devices (loss curve and parameters),
for sgd and adam, full batch and minibatches (tests/test_distributed.py
asserts the same at 1e-12).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backprop.data import load_dataset
from backprop.train import train_mlp


def main() -> None:
    d = load_dataset("digits", seed=0, dtype="float64")
    out = {}
    runs = {
        "sgd, full batch": {"optimizer": "sgd", "lr": 0.1},
        "adam, batch 1024": {"optimizer": "adam", "lr": 1e-3, "batch_size": 1024},
        "adam, batch 64": {"optimizer": "adam", "lr": 1e-3, "batch_size": 64},
    }
    for name, kw in runs.items():
        common = dict(
            activation="relu", output="softmax", epochs=5, dtype="float64", backend="jax", **kw
        )
        base = train_mlp([64, 128, 10], d.X_train, d.y_train, **common)
        for devices in (2, 4, 8):
            r = train_mlp([64, 128, 10], d.X_train, d.y_train, devices=devices, **common)
            rel = float(np.max(np.abs(r.losses - base.losses) / np.abs(base.losses)))
            for p, q in zip(r.params, base.params, strict=True):
                rel = max(rel, float(np.max(np.abs(p.w - q.w)) / np.max(np.abs(q.w))))
            out[f"{name}, {devices} devices"] = rel
    print(json.dumps(out))


if __name__ == "__main__":
    main()
