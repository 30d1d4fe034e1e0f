"""gradcheck / check_kernel as an API: errors that prevent false passes,
untouched inputs, float32 mode, and the diagnosis of constant factors."""

from __future__ import annotations

import numpy as np
import pytest

from backprop.gradcheck import check_kernel, gradcheck, numeric_gradient
from kernels import get_backend

pytestmark = pytest.mark.gradcheck


def quadratic():
    """L = sum(a * w^2) + sum(b) with dL/dw = 2 a w, dL/db = 1."""
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    params = {"w": np.array([[0.5, -1.0], [2.0, 0.1]]), "b": np.array([0.3, 0.7, -0.2])}

    def loss_fn(p):
        return np.sum(a * p["w"] ** 2) + np.sum(p["b"])

    def grad_fn(p):
        return {"w": 2 * a * p["w"], "b": np.ones_like(p["b"])}

    return loss_fn, grad_fn, params


def test_correct_gradient_passes_and_reports_every_parameter():
    report = gradcheck(*quadratic())
    assert report.ok and report.failing == []
    assert report["w"].shape == (2, 2) and report["w"].ratio == pytest.approx(1.0)
    assert report["w"].max_abs_error < 1e-8
    assert "gradient check passed" in str(report)
    report.assert_ok()


def test_callers_arrays_are_never_modified():
    loss_fn, grad_fn, params = quadratic()
    before = {k: v.copy() for k, v in params.items()}
    gradcheck(loss_fn, grad_fn, params)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


@pytest.mark.parametrize(
    ("factor", "words"),
    [
        (-1.0, "sign flipped"),
        (3.0, "exactly 3x too large"),
        (0.5, "exactly 1/2 of numeric"),
        (-2.0, "sign flipped and 2x too large"),
        (1.7, "off by a constant factor: analytic = 1.7 x numeric"),
        (0.0, "analytic gradient is all zero"),
    ],
)
def test_constant_factor_errors_are_named(factor, words):
    loss_fn, grad_fn, params = quadratic()

    def scaled(p):
        g = grad_fn(p)
        return {"w": factor * g["w"], "b": g["b"]}

    report = gradcheck(loss_fn, scaled, params)
    assert report.failing == ["w"]
    assert words in report["w"].diagnosis


def test_nan_gradient_fails():
    loss_fn, grad_fn, params = quadratic()
    report = gradcheck(loss_fn, lambda p: {**grad_fn(p), "b": np.full(3, np.nan)}, params)
    assert report.failing == ["b"] and "NaN" in report["b"].diagnosis


def test_errors_instead_of_false_passes():
    loss_fn, grad_fn, params = quadratic()
    with pytest.raises(
        ValueError, match=r"grad_fn returned gradients for \['w'\], params are \['b', 'w'\]"
    ):
        gradcheck(loss_fn, lambda p: {"w": grad_fn(p)["w"]}, params)
    with pytest.raises(ValueError, match=r"grad_fn returned shape \(2,\) for 'b', expected \(3,\)"):
        gradcheck(loss_fn, lambda p: {**grad_fn(p), "b": np.ones(2)}, params)
    with pytest.raises(
        ValueError, match=r"loss_fn must return a scalar, got an array of shape \(2, 2\)"
    ):
        gradcheck(lambda p: p["w"] ** 2, grad_fn, params)
    with pytest.raises(ValueError, match="loss_fn returned nan at the given params"):
        gradcheck(lambda p: np.nan, grad_fn, params)
    with pytest.raises(ValueError, match="loss_fn returned inf when perturbing 'w'"):
        gradcheck(lambda p: np.inf if p["w"][0, 0] > 0.5 else 0.0, grad_fn, params)
    with pytest.raises(ValueError, match="grad_fn must return a mapping"):
        gradcheck(loss_fn, lambda p: [1, 2], params)
    with pytest.raises(ValueError, match="params must be a non-empty mapping"):
        gradcheck(loss_fn, grad_fn, {})
    with pytest.raises(ValueError, match="dtype must be 'float64' or 'float32', got 'float16'"):
        gradcheck(loss_fn, grad_fn, params, dtype="float16")
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        gradcheck(loss_fn, grad_fn, params, eps=0.0)


def test_float32_check_is_possible_and_says_it_is_weaker():
    loss_fn, grad_fn, params = quadratic()
    report = gradcheck(loss_fn, grad_fn, params, dtype="float32")
    assert report.ok and report.dtype == "float32" and report.eps == 1e-2
    assert "float32 check is weaker" in str(report)


def test_numeric_gradient_is_accurate_and_estimates_its_error():
    x = np.array([0.3, 1.0, 2.5])
    grad, err = numeric_gradient(lambda: float(np.sum(np.exp(x))), x, 1e-3)
    np.testing.assert_allclose(grad, np.exp([0.3, 1.0, 2.5]), rtol=1e-10)  # O(eps^4)
    # plain central differences are off by eps^2 f''' / 6; the estimate says so
    np.testing.assert_allclose(err, 1e-6 * np.exp([0.3, 1.0, 2.5]) / 6, rtol=0.01)
    np.testing.assert_array_equal(x, [0.3, 1.0, 2.5])  # restored


def test_check_kernel_reports_per_input_and_skips_the_target():
    K = get_backend("numpy")
    rng = np.random.default_rng(0)
    report = check_kernel(
        K.matmul_forward, K.matmul_backward, [rng.random((3, 2)), rng.random((2, 4))]
    )
    assert list(report.params) == ["x0", "x1"] and report.ok
    report = check_kernel(
        K.mse_forward, K.mse_backward, {"yhat": rng.random((4, 1)), "y": rng.random((4, 1))}
    )
    assert list(report.params) == ["yhat"] and report.ok


def test_check_kernel_catches_a_wrong_kernel():
    K = get_backend("numpy")

    def sigmoid_backward_on_input(dout, cache):  # the classic bug: sigma' applied to s
        s = cache
        return dout * K.sigmoid_prime(s)

    report = check_kernel(
        K.sigmoid_forward, sigmoid_backward_on_input, {"z": np.linspace(-3, 3, 8).reshape(2, 4)}
    )
    assert report.failing == ["z"]

    def matmul_backward_swapped(dout, cache):
        x, w = cache
        return x.T @ dout, dout @ w.T  # gradients in the wrong order

    with pytest.raises(
        ValueError, match=r"backward returned shape \(2, 4\) for 'x', expected \(3, 2\)"
    ):
        check_kernel(
            K.matmul_forward, matmul_backward_swapped, {"x": np.ones((3, 2)), "w": np.ones((2, 4))}
        )


def test_rounding_of_large_outputs_is_allowed_for_but_small_errors_still_fail():
    """Found by hypothesis: outputs ~100 perturbed through inputs of 1e-5 change by
    1e-11, near their last bit; a correct matmul must pass, a 0.1 % error must not."""
    K = get_backend("numpy")
    x = np.full((17, 16), 1e-5)
    x[:, 5] = 10.0
    w = np.random.default_rng(0).uniform(-10, 10, (16, 12))
    check_kernel(K.matmul_forward, K.matmul_backward, {"x": x, "w": w}).assert_ok()

    def slightly_wrong(dout, cache):
        dx, dw = K.matmul_backward(dout, cache)
        return dx, dw * 1.001

    rng = np.random.default_rng(1)
    report = check_kernel(
        K.matmul_forward,
        slightly_wrong,
        {"x": rng.standard_normal((5, 3)), "w": rng.standard_normal((3, 4))},
    )
    assert report.failing == ["w"] and "1.001 x numeric" in report["w"].diagnosis
