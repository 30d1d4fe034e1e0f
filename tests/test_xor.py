"""train_xor_manual: convergence, backend parity, replay, the saturated output,
and its errors. (Its fast paths are held to xor_loss_and_grads in test_fast.py.)"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import backprop.xor as xor_module
import backprop.xor.inplace as xor_inplace
from backprop import XorParams, init_xor_params, train_xor_manual
from backprop.data import xor_data
from backprop.kernels import get_backend
from tests.conftest import HAVE_JAX

needs_jax = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_default_call_solves_xor(backend_name, dtype):
    r = train_xor_manual(backend=backend_name, dtype=dtype)
    assert r.accuracy == 1.0
    assert r.final_cost < 0.01
    np.testing.assert_array_equal(r.predictions > 0.5, [False, True, True, False])
    assert r.backend == backend_name and r.dtype == dtype and r.epochs == 10_000
    np.testing.assert_array_equal(r.cost_epochs, [*range(0, 10_000, 100), 10_000])
    assert r.costs.shape == (101,) and r.costs.dtype == dtype
    # The cost starts near the ln 2 plateau and ends two orders of magnitude lower.
    assert abs(r.costs[0] - math.log(2)) < 0.1 and r.costs[-1] < r.costs[0] / 50
    for name, shape in [("w1", (2, 2)), ("b1", (2,)), ("w2", (2, 1)), ("b2", (1,))]:
        a = getattr(r, name)
        assert isinstance(a, np.ndarray) and a.shape == shape and a.dtype == dtype
    assert r.train_time > 0 and r.wall_time >= r.train_time
    assert r.time_per_epoch == pytest.approx(r.train_time / 10_000)


@needs_jax
@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-10), ("float32", 2e-3)])
def test_numpy_and_jax_agree_from_the_same_init(dtype, rtol):
    init = {"w1": [[0.5, -1.2], [1.1, 0.3]], "b1": [0.1, -0.2], "w2": [[0.7], [-0.9]], "b2": [0.05]}
    a = train_xor_manual(backend="numpy", init=init, dtype=dtype, epochs=3000, log_every=10)
    b = train_xor_manual(backend="jax", init=init, dtype=dtype, epochs=3000, log_every=10)
    np.testing.assert_allclose(a.costs, b.costs, rtol=rtol)
    for name in ("w1", "b1", "w2", "b2"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.predictions, b.predictions, rtol=rtol, atol=1e-6)


def test_a_saturated_output_has_its_true_cost_and_learns_on_both_backends(backend_name):
    """The issue's example: b2 = 40, float32, lr 1, 100 epochs. The first cost is the
    exact 20.5 (not a clipped 7.97) and training brings it down on every backend."""
    init = {"w1": [[1, -1], [1, -1]], "b1": [0, 0], "w2": [[1], [1]], "b2": [40]}
    r = train_xor_manual(
        backend=backend_name, init=init, epochs=100, lr=1.0, dtype="float32", log_every=1
    )
    assert r.costs[0] == pytest.approx(20.5, rel=1e-6)
    assert r.costs[-1] < 1.0 and r.b2[0] < 30


@needs_jax
def test_the_saturated_example_is_the_same_run_on_both_backends():
    init = {"w1": [[1, -1], [1, -1]], "b1": [0, 0], "w2": [[1], [1]], "b2": [40]}
    kw = {"init": init, "epochs": 100, "lr": 1.0, "dtype": "float32", "log_every": 1}
    a, b = train_xor_manual(backend="numpy", **kw), train_xor_manual(backend="jax", **kw)
    np.testing.assert_allclose(a.costs, b.costs, rtol=1e-4)


def test_init_replays_a_run_exactly_and_is_not_modified(backend_name):
    init = init_xor_params(hidden=3, seed=7, dtype="float64")
    saved = {k: v.copy() for k, v in init._asdict().items()}
    a = train_xor_manual(backend=backend_name, init=init, hidden=3, epochs=200, dtype="float64")
    b = train_xor_manual(
        backend=backend_name, init=dict(saved), hidden=3, epochs=200, dtype="float64"
    )
    np.testing.assert_array_equal(a.costs, b.costs)
    for k, v in saved.items():
        np.testing.assert_array_equal(getattr(init, k), v)
    # seed= draws the same arrays as init_xor_params(seed=...)
    c = train_xor_manual(backend=backend_name, seed=7, hidden=3, epochs=200, dtype="float64")
    np.testing.assert_array_equal(a.costs, c.costs)


def test_one_epoch_is_the_written_out_update(backend_name):
    """After one epoch, w = w0 - lr * dw with dw from the reference derivation."""
    init = init_xor_params(seed=3, dtype="float64")
    X, y = xor_data("float64")
    cost, grads = xor_module.xor_loss_and_grads(get_backend("numpy"), init, X, y)
    r = train_xor_manual(backend=backend_name, init=init, epochs=1, lr=0.5, dtype="float64")
    assert r.costs[0] == pytest.approx(float(cost), rel=1e-13)
    for w0, g, w1 in zip(init, grads, r.params, strict=True):
        np.testing.assert_allclose(w1, w0 - 0.5 * g, rtol=1e-13)


def test_the_reference_step_is_four_written_out_updates():
    source = inspect.getsource(xor_module.xor_step)
    for line in ("w1 = w1 - lr * d_w1", "b1 = b1 - lr * d_b1", "w2 = w2 - lr * d_w2"):
        assert line in source


@pytest.mark.gradcheck
def test_the_reference_gradient_passes_gradcheck_at_a_saturated_point():
    from backprop import gradcheck

    K = get_backend("numpy")
    X, y = xor_data("float64")

    def loss(p):
        return xor_module.xor_loss_and_grads(K, XorParams(**p), X, y)[0]

    def grads(p):
        return xor_module.xor_loss_and_grads(K, XorParams(**p), X, y)[1]._asdict()

    for params in (
        init_xor_params(hidden=4, seed=2, dtype="float64")._asdict(),
        {"w1": np.eye(2), "b1": np.zeros(2), "w2": np.ones((2, 1)), "b2": np.array([12.0])},
    ):
        gradcheck(loss, grads, params).assert_ok()


def test_a_learning_rate_that_overflows_is_reported_as_divergence():
    with pytest.raises(
        FloatingPointError, match=r"cost became (nan|inf) at epoch \d+ \(lr=3e\+38\)"
    ):
        train_xor_manual(lr=3e38, dtype="float32", epochs=100, log_every=1)


def test_starting_parameters_that_overflow_are_named_as_the_cause(backend_name):
    init = {"w1": [[3e38, 3e38], [3e38, 3e38]], "b1": [3e38, 3e38], "w2": [[3e38], [3e38]]}
    init["b2"] = [3e38]
    with pytest.raises(FloatingPointError, match=r"at epoch 0, before any update.*starting"):
        train_xor_manual(backend=backend_name, init=init, dtype="float32", epochs=10)


def test_verbose_prints_the_cost_every_log_every_epochs(backend_name, capsys):
    r = train_xor_manual(backend=backend_name, epochs=250, log_every=100, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[1]) for line in lines] == [0, 100, 200, 250]
    assert float(lines[1].split()[3]) == pytest.approx(float(r.costs[1]), rel=1e-5)


def test_no_autodiff_in_the_manual_loop():
    import backprop.xor.manual as xor_train
    import backprop.xor.stacked as xor_nets

    for module in (xor_module, xor_train, xor_inplace, xor_nets):
        source = inspect.getsource(module)
        for word in ("jax.grad", "value_and_grad", "jax.vjp", "jacrev", "jacfwd", "backward()"):
            assert word not in source, (module.__name__, word)


def test_the_names_deprecated_in_0_2_are_gone_in_0_3():
    with pytest.raises(TypeError, match="unexpected keyword argument 'steps'"):
        train_xor_manual(steps=10)
    r = train_xor_manual(epochs=10)
    assert not hasattr(r, "steps") and not hasattr(r, "time_per_step")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "torch"}, "backend must be one of 'numpy', 'jax', got 'torch'"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"epochs": 10.5}, "epochs must be an integer >= 1, got 10.5"),
        ({"epochs": 10**12}, "epochs must be at most 2,147,483,647, got 1,000,000,000,000"),
        ({"lr": 0.0}, r"lr must be a finite number in \(0.0, inf\), got 0.0"),
        ({"lr": -1}, r"lr must be a finite number in \(0.0, inf\), got -1"),
        ({"lr": float("nan")}, r"lr must be a finite number in \(0.0, inf\), got nan"),
        ({"lr": float("inf")}, r"lr must be a finite number in \(0.0, inf\), got inf"),
        ({"lr": "0.1"}, r"lr must be a finite number in \(0.0, inf\), got '0.1'"),
        ({"lr": True}, r"lr must be a finite number in \(0.0, inf\), got True"),
        ({"lr": 1e39}, "lr must be representable in float32, got 1e\\+39"),
        ({"lr": 1e-60}, "lr=1e-60 is below the smallest normal float32"),
        ({"dtype": "float16"}, "dtype must be one of float32, float64, got 'float16'"),
        ({"dtype": None}, "dtype must be one of float32, float64, got None"),
        ({"dtype": np.longdouble}, "dtype must be one of float32, float64, got <class"),
        ({"hidden": 0}, "hidden must be an integer >= 1, got 0"),
        ({"hidden": 10**9}, "hidden must be at most 4,096, got 1,000,000,000"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"seed": 1.5}, "seed must be an integer >= 0, got 1.5"),
        ({"seed": "0"}, "seed must be an integer >= 0, got '0'"),
        ({"log_every": 0}, "log_every must be an integer >= 1, got 0"),
        ({"init": {"w1": np.zeros((2, 2))}}, "init must have exactly the keys w1, b1, w2, b2"),
        ({"init": [1, 2]}, "init must be a mapping"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_xor_manual(**kwargs)


def test_learning_rate_may_be_a_numpy_number():
    r = train_xor_manual(lr=np.float32(0.5), epochs=5)
    assert r.lr == 0.5


def test_bad_init_names_the_array():
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
    with pytest.raises(ValueError, match=r"init\['b1'\] holds NaN or infinite values"):
        train_xor_manual(init=init)
    init["b1"] = np.array([0.0, 1e39])
    with pytest.raises(ValueError, match=r"init\['b1'\] holds values too large for float32"):
        train_xor_manual(init=init)


def test_params_container_is_a_named_tuple():
    p = init_xor_params(hidden=4, seed=1)
    assert isinstance(p, XorParams) and p._fields == ("w1", "b1", "w2", "b2")
    assert [a.shape for a in p] == [(2, 4), (4,), (4, 1), (1,)]
    assert not np.any(p.b1) and not np.any(p.b2)


def test_result_prints_as_one_line():
    text = repr(train_xor_manual(epochs=20))
    assert "\n" not in text and text.startswith("XorResult(2-2-1 on numpy float32, 20 epochs")
    assert len(text) < 200
