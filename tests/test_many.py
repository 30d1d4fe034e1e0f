"""train_xor_many: each network follows train_xor_manual's update exactly."""

from __future__ import annotations

import numpy as np
import pytest

from backprop import XorParams, train_xor_manual, xor_data
from backprop.kernels import get_backend
from backprop.xor import xor_loss_and_grads
from backprop.xor.many import init_xor_many, train_xor_many


@pytest.mark.parametrize("hidden", [2, 3])
def test_each_network_matches_the_single_network_loop(backend_name, hidden):
    n, epochs = 5, 400
    K, (X, y) = get_backend("numpy"), xor_data("float64")
    many = train_xor_many(
        n, backend=backend_name, epochs=epochs, seed=3, hidden=hidden, dtype="float64"
    )
    init = init_xor_many(n, hidden=hidden, seed=3, dtype="float64")
    for k in range(n):
        single = train_xor_manual(
            backend=backend_name,
            epochs=epochs,
            hidden=hidden,
            dtype="float64",
            init={name: getattr(init, name)[k] for name in XorParams._fields},
        )
        for name in XorParams._fields:
            np.testing.assert_allclose(
                getattr(many.params, name)[k], getattr(single, name), rtol=1e-9, atol=1e-12
            )
        assert many.solved[k] == (single.accuracy == 1.0)
        np.testing.assert_allclose(many.final_costs[k], single.final_cost, rtol=1e-10)
        cost, _ = xor_loss_and_grads(K, XorParams(*(a[k] for a in many.params)), X, y)
        np.testing.assert_allclose(many.final_costs[k], cost, rtol=1e-12)


def test_result_per_network(backend_name):
    r = train_xor_many(7, backend=backend_name, epochs=2000, seed=0)
    assert r.solved.shape == (7,) and r.solved.dtype == bool
    assert r.final_costs.shape == (7,) and np.all(np.isfinite(r.final_costs))
    assert r.params.w1.shape == (7, 2, 2) and r.params.b2.shape == (7, 1)
    assert r.n_nets == 7 and 0 <= r.solved_fraction <= 1
    assert np.all(r.final_costs[r.solved] < 0.35)
    assert r.time_per_network_epoch > 0 and r.devices == 1
    assert "\n" not in repr(r) and "7 XOR nets" in repr(r)


def test_most_but_not_all_starts_solve_xor():
    r = train_xor_many(300, backend="numpy", epochs=3000, seed=0)
    assert 0.5 < r.solved_fraction < 0.95  # about 70 %: 2-2-1 sigmoid nets do get stuck


def test_numpy_is_the_default_backend():
    assert train_xor_many(3, epochs=5).backend == "numpy"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_nets": 0}, "n_nets must be an integer >= 1, got 0"),
        ({"n_nets": 2, "epochs": 0}, "epochs must be an integer >= 1"),
        ({"n_nets": 2, "lr": -1.0}, r"lr must be a finite number in \(0.0, inf\)"),
        ({"n_nets": 2, "backend": "torch"}, "backend must be one of"),
        ({"n_nets": 2, "hidden": 0}, "hidden must be an integer >= 1"),
        ({"n_nets": 2, "seed": -3}, "seed must be an integer >= 0"),
        ({"n_nets": 2, "devices": 2}, "devices=2 needs backend='jax'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_xor_many(**kwargs)
