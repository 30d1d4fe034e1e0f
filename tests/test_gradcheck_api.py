"""gradcheck / check_kernel as an API: errors that prevent false passes,
untouched inputs, float32 mode, the diagnosis of constant factors, and the
third verdict, inconclusive, where finite differences cannot decide."""

from __future__ import annotations

import numpy as np
import pytest

from backprop.gradcheck import check_kernel, gradcheck, numeric_gradient
from backprop.kernels import get_backend

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
    assert report.ok and report.failing == [] and report.inconclusive == []
    assert report.verdict == "pass" and report["w"].verdict == "pass" and report["w"].ok
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
    assert report.failing == ["w"] and report.verdict == "fail" and report["w"].verdict == "fail"
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


def test_numeric_gradient_is_accurate_and_its_bound_holds():
    x = np.array([0.3, 1.0, 2.5])
    grad, err = numeric_gradient(lambda: float(np.sum(np.exp(x))), x, 1e-1)
    actual = np.abs(grad - np.exp([0.3, 1.0, 2.5]))
    assert np.all(actual <= err) and np.all(err < 1e-8 * np.exp([0.3, 1.0, 2.5]))
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


# --- inconclusive: what finite differences cannot resolve is never a pass -------


def test_a_loss_offset_of_1e12_is_inconclusive_not_a_pass():
    """Rounding of a loss of 1e12 swamps every difference a step of 1e-6 makes:
    a grad_fn returning zeros used to pass. The larger steps the search tries now
    resolve the gradient to ~4 %: a zero gradient fails, the right one stays
    inconclusive at rtol = 1e-5."""
    loss_fn, grad_fn, params = quadratic()

    def offset(p):
        return loss_fn(p) + 1e12

    zero = gradcheck(offset, lambda p: {k: np.zeros_like(v) for k, v in p.items()}, params)
    assert zero.verdict == "fail" and "all zero" in zero["w"].diagnosis
    for candidate in (grad_fn,):
        report = gradcheck(offset, candidate, params)
        assert report.verdict == "inconclusive" and not report.ok
        assert report.inconclusive == ["w", "b"] and report.failing == []
        assert report["w"].verdict == "inconclusive" and not report["w"].ok
        assert report["w"].fd_error > 1e-3 and report["w"].bound_set_by == "rounding"
        assert "constant offset" in report["w"].diagnosis
        text = str(report)
        assert text.startswith("gradient check INCONCLUSIVE for w, b:")
        assert "\nw: inconclusive - at w[" in text and "passed" not in text.splitlines()[0]
        with pytest.raises(AssertionError, match="INCONCLUSIVE"):
            report.assert_ok()


def test_parameters_of_1e10_are_checked_with_relative_steps():
    """eps = 1e-6 was below the float spacing at 1e10 (~2e-6): x + eps rounded to x
    and the check was inconclusive. Steps are now relative where |x| > 1."""
    params = {"w": np.array([1.3e10, -2.2e10, 0.7e10])}

    def loss_fn(p):
        return 0.5 * np.sum(p["w"] ** 2)

    report = gradcheck(loss_fn, lambda p: {"w": 2 * p["w"]}, params)
    assert report.failing == ["w"] and "exactly 2x too large" in report["w"].diagnosis
    gradcheck(loss_fn, lambda p: {"w": p["w"].copy()}, params).assert_ok()
    # a step below the spacing is still named as such
    report = gradcheck(loss_fn, lambda p: {"w": p["w"].copy()}, params, eps=1e-20)
    assert report.verdict == "inconclusive" and "no usable step" in report["w"].diagnosis
    assert "rescale w" in report["w"].diagnosis


def test_a_resolvable_mismatch_fails_even_next_to_an_unresolved_parameter():
    """Per parameter: w's error is far beyond its finite-difference error, so it
    fails with its diagnosis; b is unresolved. Overall: fail, naming both."""
    params = {"w": np.array([0.5, -1.0, 2.0]), "b": np.array([1.0])}

    def loss_fn(p):  # b's small gradient is lost in the rounding of a loss of 1e12
        return np.sum(p["w"] ** 2) + 1e-4 * np.sum(p["b"]) + 1e12

    def grad_fn(p):
        return {"w": -2 * p["w"], "b": np.full(1, 1e-4)}

    report = gradcheck(loss_fn, grad_fn, params)
    assert report.verdict == "fail" and report.failing == ["w"] and report.inconclusive == ["b"]
    assert "sign flipped" in report["w"].diagnosis
    text = str(report)
    assert text.startswith("gradient check FAILED for w; INCONCLUSIVE for b")
    rows = [line.split()[0] for line in text.splitlines()[2:4]]
    assert rows == ["w", "b"]  # failing first, then inconclusive


def test_a_loss_kernel_offset_by_1e12_is_inconclusive():
    """check_kernel on a scalar output counts its rounding even when the
    perturbation leaves it unchanged."""
    K = get_backend("numpy")

    def forward(yhat, y):
        loss, cache = K.mse_forward(yhat, y)
        return loss + 1e12, cache

    rng = np.random.default_rng(0)
    inputs = {"yhat": rng.standard_normal((4, 3)), "y": rng.standard_normal((4, 3))}
    report = check_kernel(forward, K.mse_backward, inputs)
    assert report.verdict == "inconclusive"
    report = check_kernel(forward, lambda dout, cache: np.zeros((4, 3)), inputs)
    assert report.verdict != "pass"


def test_a_sharply_curved_zero_gradient_is_resolved():
    """BCE at its minimum p = y = 2^-9: D(eps) and D(2 eps) differ by 1e-8 from
    the curvature, but the extrapolation is good to 1e-13; a third step shows it."""
    K = get_backend("numpy")
    p = np.array([[2.0**-9]])
    report = check_kernel(K.bce_forward, K.bce_backward, {"p": p, "y": p.copy()})
    assert report.verdict == "pass" and report["p"].resolution < 0.25


def test_a_pass_below_atol_or_with_coarse_resolution_says_so():
    loss_fn, grad_fn, params = quadratic()
    tiny = gradcheck(
        lambda p: 1e-12 * loss_fn(p),
        lambda p: {k: 1e-12 * v for k, v in grad_fn(p).items()},
        params,
    )
    assert tiny.ok and "w passed on atol alone" in str(tiny)
    # ...and the same check with a suitable atol looks at the gradient
    assert "atol alone" not in str(
        gradcheck(
            lambda p: 1e-12 * loss_fn(p),
            lambda p: {k: 1e-12 * v for k, v in grad_fn(p).items()},
            params,
            atol=1e-20,
        )
    )

    def offset(p):
        return loss_fn(p) + 1e6

    coarse = gradcheck(offset, grad_fn, params)  # the loss rounds to ~2e-10 of 1e6
    assert coarse.ok  # a pass certifies every entry to atol + rtol |numeric|
    assert all(p.fd_error <= p.bound for p in coarse.params.values())


def test_a_zeroed_small_entry_under_a_large_loss_does_not_pass():
    """The audit case: an entry at 1e-4 of the largest, zeroed, under a loss of ~1e5
    passed with no note. Now it fails (or, were it unresolvable, is inconclusive)."""
    scale = np.array([1.0, 0.5, 1e-4, 0.3])

    def loss_fn(p):
        return 1e5 + np.sum(scale * p["w"]) + 0.5 * np.sum(p["w"] ** 2)

    def grad_fn(p):
        g = scale + p["w"]
        g[2] = 0.0
        return {"w": g}

    w = np.array([0.1, -0.2, 0.0, 0.05])
    report = gradcheck(loss_fn, grad_fn, {"w": w})
    assert report.failing == ["w"] and report["w"].worst_index == (2,)
    assert "analytic is 0 where numeric is not, at 1 of 4 entries" in report["w"].diagnosis


# --- the check is taken where it says ---------------------------------------------


def test_a_grad_fn_writing_into_its_input_raises_instead_of_moving_the_point():
    """The functions get read-only views: before, this grad_fn moved w by 1 and
    the differences were taken there, against a gradient from the old point."""
    loss_fn, grad_fn, params = quadratic()
    before = {k: v.copy() for k, v in params.items()}

    def moving_grad_fn(p):
        g = grad_fn(p)
        p["w"] += 1.0  # a stray in-place update
        return g

    with pytest.raises(ValueError, match=r"grad_fn raised .*read-only.*copy it first"):
        gradcheck(loss_fn, moving_grad_fn, params)

    def moving_loss_fn(p):
        p["b"][0] = 0.0
        return loss_fn(p)

    with pytest.raises(ValueError, match=r"loss_fn raised .*read-only"):
        gradcheck(moving_loss_fn, grad_fn, params)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_rebinding_a_name_in_the_params_dict_does_not_move_the_point():
    """Each call gets a fresh dict: a grad_fn that replaces p["w"] (no in-place
    write) leaves the point where loss_fn is differenced unchanged."""
    loss_fn, grad_fn, params = quadratic()

    def rebinding_grad_fn(p):
        g = grad_fn(p)
        p["w"] = p["w"] + 1.0
        return g

    gradcheck(loss_fn, rebinding_grad_fn, params).assert_ok()
    # a grad_fn may still work on a copy of its input
    gradcheck(loss_fn, lambda p: grad_fn({k: v.copy() for k, v in p.items()}), params).assert_ok()


def test_kernels_get_read_only_inputs_cache_and_upstream_gradient():
    K = get_backend("numpy")

    def backward_scaling_dout_in_place(dout, cache):
        dout *= 2.0  # would corrupt g, which weights the finite differences
        return K.sigmoid_backward(dout, cache)

    z = np.linspace(-3, 3, 8).reshape(2, 4)
    with pytest.raises(ValueError, match=r"backward raised .*read-only"):
        check_kernel(K.sigmoid_forward, backward_scaling_dout_in_place, {"z": z})

    def forward_in_place(x):
        np.maximum(x, 0, out=x)
        return x, x

    with pytest.raises(ValueError, match=r"forward raised .*read-only"):
        check_kernel(forward_in_place, lambda dout, cache: dout, {"x": z})


def test_the_step_actually_taken_divides_the_difference():
    """Near |x| = 1e7 the float spacing is 2e-9: x +- 1e-6 is off by up to 1e-3 of
    the step. Dividing by the nominal step failed a correct gradient (error 1e-4)."""
    c = 1e7
    params = {"w": np.array([c + 0.3, c - 0.7, c + 1.1])}
    report = gradcheck(
        lambda p: np.sum(np.sin(p["w"] - c)), lambda p: {"w": np.cos(p["w"] - c)}, params
    )
    report.assert_ok()
    assert report["w"].max_rel_error < 1e-6


# --- the report reads sensibly -----------------------------------------------------


def test_an_all_zero_row_reads_as_zero_not_as_a_poor_fit():
    """bce_with_logits at z = 50, y = 1: analytic exactly 0, numeric -4e-24."""
    K = get_backend("numpy")
    z, y = np.full((2, 3), 50.0), np.ones((2, 3))
    report = check_kernel(K.bce_with_logits_forward, K.bce_with_logits_backward, {"z": z, "y": y})
    assert report.ok and report["z"].ratio is None
    row = str(report).splitlines()[2]
    assert "poor fit" not in row and "-0 " not in row and row.split()[6] == "0"


def test_float32_reports_print_no_junk_digits():
    K = get_backend("numpy")
    z = np.random.default_rng(0).standard_normal((3, 2))

    def too_large(dout, cache):
        return 1.5 * K.sigmoid_backward(dout, cache)

    report = check_kernel(K.sigmoid_forward, too_large, {"z": z}, dtype="float32")
    assert report.failing == ["z"]
    assert report["z"].diagnosis == "off by a constant factor: analytic = 1.5 x numeric"
    row = str(report).splitlines()[2].split()
    assert all(len(cell.lstrip("-").replace(".", "")) <= 5 for cell in row[6:8])  # 4 digits
