"""train_xor_manual: convergence, backend parity, replay, and its errors."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import backprop.xor as xor_module
import backprop.xor_fused as xor_fused
from backprop import XorParams, init_xor_params, train_xor_manual
from tests.conftest import HAVE_JAX

needs_jax = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")


def _forget_compiled(monkeypatch):
    """Make the next JAX run retrace, so a monkeypatched step is really used."""
    if HAVE_JAX:
        from backprop._jaxrun import forget_compiled

        forget_compiled()
        monkeypatch.setattr("backprop._jaxrun._COMPILED", {})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_default_call_solves_xor(backend_name, dtype):
    r = train_xor_manual(backend=backend_name, dtype=dtype)
    assert r.accuracy == 1.0
    assert r.final_cost < 0.01
    np.testing.assert_array_equal(r.predictions > 0.5, [False, True, True, False])
    assert r.backend == backend_name and r.dtype == dtype and r.steps == 10_000
    assert r.costs.shape == (10_000,) and r.costs.dtype == dtype
    # The cost starts near the ln 2 plateau and ends two orders of magnitude lower.
    assert abs(r.costs[0] - math.log(2)) < 0.1 and r.costs[-1] < r.costs[0] / 50
    for name, shape in [("w1", (2, 2)), ("b1", (2,)), ("w2", (2, 1)), ("b2", (1,))]:
        a = getattr(r, name)
        assert isinstance(a, np.ndarray) and a.shape == shape and a.dtype == dtype
    assert r.train_time > 0 and r.wall_time >= r.train_time
    assert r.time_per_step == pytest.approx(r.train_time / 10_000)


@needs_jax
@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-10), ("float32", 2e-3)])
def test_numpy_and_jax_agree_from_the_same_init(dtype, rtol):
    init = {"w1": [[0.5, -1.2], [1.1, 0.3]], "b1": [0.1, -0.2], "w2": [[0.7], [-0.9]], "b2": [0.05]}
    a = train_xor_manual(backend="numpy", init=init, dtype=dtype, steps=3000)
    b = train_xor_manual(backend="jax", init=init, dtype=dtype, steps=3000)
    np.testing.assert_allclose(a.costs, b.costs, rtol=rtol)
    for name in ("w1", "b1", "w2", "b2"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.predictions, b.predictions, rtol=rtol, atol=1e-6)


def test_init_replays_a_run_exactly_and_is_not_modified(backend_name):
    init = init_xor_params(hidden=3, seed=7, dtype="float64")
    saved = {k: v.copy() for k, v in init._asdict().items()}
    a = train_xor_manual(backend=backend_name, init=init, hidden=3, steps=200, dtype="float64")
    b = train_xor_manual(
        backend=backend_name, init=dict(saved), hidden=3, steps=200, dtype="float64"
    )
    np.testing.assert_array_equal(a.costs, b.costs)
    for k, v in saved.items():
        np.testing.assert_array_equal(getattr(init, k), v)
    # seed= draws the same arrays as init_xor_params(seed=...)
    c = train_xor_manual(backend=backend_name, seed=7, hidden=3, steps=200, dtype="float64")
    np.testing.assert_array_equal(a.costs, c.costs)


def test_one_step_is_the_written_out_update():
    """After one step, w = w0 - lr * dw with dw from the hand-derived gradients."""
    from backprop.data import xor_data
    from kernels import get_backend

    init = init_xor_params(seed=3, dtype="float64")
    X, y = xor_data("float64")
    _, grads = xor_module.xor_gradients(get_backend("numpy"), init, X, y)
    r = train_xor_manual(init=init, steps=1, lr=0.5, dtype="float64")
    for w0, g, w1 in zip(init, grads, r.params, strict=True):
        np.testing.assert_allclose(w1, w0 - 0.5 * g, rtol=1e-13)


def _kernel_chain_run(init, X, y, lr, steps):
    """The reference: xor_step, the readable kernel chain, in a Python loop."""
    from kernels import get_backend

    K, params, costs = get_backend("numpy"), init, []
    for _ in range(steps):
        params, cost = xor_module.xor_step(K, params, X, y, lr)
        costs.append(cost)
    return params, np.array(costs)


@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-10), ("float32", 1e-3)])
def test_fused_numpy_loop_follows_the_kernel_chain(dtype, rtol):
    """NumPy's train_xor_manual runs backprop.xor_fused; it must track xor_step."""
    from backprop.data import xor_data

    init = init_xor_params(hidden=3, seed=5, dtype=dtype)
    X, y = xor_data(dtype)
    params, costs = _kernel_chain_run(init, X, y, 0.7, 2500)
    r = train_xor_manual(init=init, hidden=3, steps=2500, lr=0.7, dtype=dtype)
    assert costs[-1] < costs[0] / 10  # it learned something worth comparing
    np.testing.assert_allclose(r.costs, costs, rtol=rtol)
    for a, b in zip(r.params, params, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.gradcheck
def test_fused_loop_applies_a_gradient_that_passes_gradcheck():
    """The update of one fused step, read back as (w0 - w1) / lr, is the true gradient."""
    from backprop import gradcheck
    from backprop.data import xor_data
    from kernels import get_backend

    X, y = xor_data("float64")
    K = get_backend("numpy")

    def loss(p):
        return K.bce_forward(xor_module.xor_forward(K, XorParams(**p), X)[0], y)[0]

    def applied_gradient(p):
        lr = 1.0
        new, _, _ = xor_fused.train_fused(XorParams(**p), X, y, lr, steps=1)
        return {k: (p[k] - w) / lr for k, w in zip(XorParams._fields, new, strict=True)}

    init = init_xor_params(hidden=4, seed=2, dtype="float64")._asdict()
    report = gradcheck(loss, applied_gradient, init)
    assert report.ok, report


def test_fused_loop_keeps_learning_at_a_saturated_output():
    """At p == 1.0 exactly (float32, l2 = 40) with targets 0, the cost's gradient
    is still (p - y) / N; the fused loop applies it rather than p (1 - p) = 0."""
    init = {"w1": np.eye(2), "b1": [0.0, 0.0], "w2": [[0.0], [0.0]], "b2": [40.0]}
    r = train_xor_manual(init=init, steps=1, lr=1.0, dtype="float32")
    # db2 = mean(p - y) = (4 * 1.0 - 2) / 4 = 0.5; each dw2 = mean((p - y) * a1) > 0
    assert r.b2[0] == pytest.approx(39.5)
    assert np.all(r.w2 < 0)


def test_overflowing_parameters_are_reported_as_divergence():
    with pytest.raises(FloatingPointError, match=r"cost became nan at step \d+ \(lr=3e\+38\)"):
        train_xor_manual(lr=3e38, dtype="float32", steps=100)


def test_verbose_prints_cost_every_log_every_steps(backend_name, capsys):
    r = train_xor_manual(backend=backend_name, steps=250, log_every=100, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[1]) for line in lines] == [0, 100, 200, 249]
    assert float(lines[1].split()[3]) == pytest.approx(r.costs[100], abs=1e-6)


@needs_jax
def test_jax_runs_the_whole_loop_as_one_compiled_computation(monkeypatch):
    calls = []
    real_step = xor_module.xor_step

    def counting_step(*args):
        calls.append(1)
        return real_step(*args)

    monkeypatch.setattr(xor_module, "xor_step", counting_step)
    _forget_compiled(monkeypatch)
    train_xor_manual(backend="jax", steps=500)
    assert len(calls) == 1  # traced once into lax.scan, not called per step


def test_no_autodiff_in_the_manual_loop():
    source = inspect.getsource(xor_module)
    for word in ("jax.grad", "value_and_grad", "jax.vjp", "jacrev", "jacfwd", "backward()"):
        assert word not in source


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "torch"}, "backend must be one of 'numpy', 'jax', got 'torch'"),
        ({"steps": 0}, "steps must be an integer >= 1, got 0"),
        ({"steps": 10.5}, "steps must be an integer >= 1, got 10.5"),
        ({"lr": 0.0}, "lr must be a positive finite number, got 0.0"),
        ({"lr": -1}, "lr must be a positive finite number, got -1"),
        ({"lr": float("nan")}, "lr must be a positive finite number, got nan"),
        ({"lr": float("inf")}, "lr must be a positive finite number, got inf"),
        ({"lr": "0.1"}, "lr must be a positive finite number, got '0.1'"),
        ({"lr": 1e39}, "lr must be representable in float32, got 1e\\+39"),
        ({"dtype": "float16"}, "dtype must be one of float32, float64, got 'float16'"),
        ({"dtype": "int32"}, "dtype must be one of float32, float64, got 'int32'"),
        ({"hidden": 0}, "hidden must be an integer >= 1, got 0"),
        ({"log_every": 0}, "log_every must be an integer >= 1, got 0"),
        ({"init": {"w1": np.zeros((2, 2))}}, "init must have exactly the keys w1, b1, w2, b2"),
        ({"init": [1, 2]}, "init must be a mapping"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_xor_manual(**kwargs)


def test_bad_init_shape_names_the_array():
    init = init_xor_params()._asdict()
    init["w2"] = np.zeros((1, 2))
    with pytest.raises(
        ValueError, match=r"init\['w2'\] must have shape \(2, 1\) \(hidden=2\), got \(1, 2\)"
    ):
        train_xor_manual(init=init)
    init = init_xor_params(hidden=3)
    with pytest.raises(
        ValueError, match=r"init\['w1'\] must have shape \(2, 2\) \(hidden=2\), got \(2, 3\)"
    ):
        train_xor_manual(init=init)
    init = init_xor_params()._asdict()
    init["b1"] = np.array([0.0, np.nan])
    with pytest.raises(ValueError, match=r"init\['b1'\] must hold finite real numbers"):
        train_xor_manual(init=init)


def test_a_nonfinite_cost_stops_training_naming_the_step(backend_name, monkeypatch):
    """Plant a cost that turns infinite once it falls below 0.6."""
    reference = train_xor_manual(backend=backend_name, steps=2000, dtype="float64")
    first_below = int(np.argmax(reference.costs < 0.6))
    assert 0 < first_below < 2000
    if backend_name == "numpy":  # the fused loop computes its costs in step_costs
        real_costs = xor_fused.step_costs

        def exploding_costs(logits, y):
            costs = real_costs(logits, y)
            return np.where(costs < 0.6, np.inf, costs)

        monkeypatch.setattr(xor_fused, "step_costs", exploding_costs)
    else:
        real_step = xor_module.xor_step

        def exploding_step(K, params, X, y, lr):
            new, cost = real_step(K, params, X, y, lr)
            return new, cost / (cost >= 0.6)  # x / False = inf, without a Python branch

        monkeypatch.setattr(xor_module, "xor_step", exploding_step)
        _forget_compiled(monkeypatch)
    with pytest.raises(FloatingPointError, match=f"cost became inf at step {first_below} "):
        train_xor_manual(backend=backend_name, steps=2000, dtype="float64")


def test_params_container_is_a_named_tuple():
    p = init_xor_params(hidden=4, seed=1)
    assert isinstance(p, XorParams) and p._fields == ("w1", "b1", "w2", "b2")
    assert [a.shape for a in p] == [(2, 4), (4,), (4, 1), (1,)]
    assert not np.any(p.b1) and not np.any(p.b2)
