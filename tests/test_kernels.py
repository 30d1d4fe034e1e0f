"""Each kernel's forward against its closed form, its numerics, dtype and
input checks, and each backward against central finite differences in
float64 - on both backends (the ``K`` fixture)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop.gradcheck import check_kernel
from backprop.kernel_checks import kernel_cases
from backprop.kernels import KERNELS, PAIRS

RNG = np.random.default_rng(1234)
DTYPES = ["float32", "float64"]


def arr(shape, dtype="float64", scale=1.0):
    return (scale * RNG.standard_normal(shape)).astype(dtype)


def probs(shape, dtype="float64"):
    return RNG.uniform(0.05, 0.95, shape).astype(dtype)


def labels(shape, dtype="float64"):
    return RNG.integers(0, 2, shape).astype(dtype)


def ref_sigmoid(z):
    return np.array([1 / (1 + math.exp(-v)) for v in np.ravel(z)]).reshape(np.shape(z))


# --- forward against closed forms -------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_and_bias_forward(K, dtype):
    x, w, b = arr((5, 3), dtype), arr((3, 4), dtype), arr((4,), dtype)
    out, _ = K.matmul_forward(x, w)
    expected = [[sum(x[n, d] * w[d, m] for d in range(3)) for m in range(4)] for n in range(5)]
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == "float32" else 1e-12)
    assert out.dtype == dtype
    out, _ = K.add_bias_forward(x @ w, b)
    np.testing.assert_allclose(out, (x @ w) + b[None, :], rtol=1e-6)
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_forward(K, dtype):
    z = np.array([[-30.0, -2.5, -0.1, 0.0], [0.1, 1.0, 7.0, 30.0]], dtype)
    tol = dict(rtol=2e-6 if dtype == "float32" else 1e-14, atol=0)
    s, cache = K.sigmoid_forward(z)
    np.testing.assert_allclose(s, ref_sigmoid(z.astype("float64")), **tol)
    np.testing.assert_allclose(cache, s)  # the cache is the output
    # sigma'(z) = sigma(z)(1 - sigma(z)) = e / (1 + e)^2 with e = exp(-|z|): the
    # second form has no cancellation, so it is the reference at z = 30 too.
    e = np.exp(-np.abs(z.astype("float64")))
    np.testing.assert_allclose(K.sigmoid_prime(z), e / (1 + e) ** 2, rtol=tol["rtol"] * 4, atol=0)
    np.testing.assert_array_equal(K.relu_forward(z)[0], np.maximum(z, 0))
    np.testing.assert_array_equal(K.identity_forward(z)[0], z)
    step, cache = K.step_forward(z)
    np.testing.assert_array_equal(step, (z > 0).astype(dtype))  # step(0) = 0
    assert cache is None
    for out in (K.sigmoid_forward(z)[0], K.sigmoid_prime(z), K.relu_forward(z)[0], step):
        assert out.dtype == dtype and out.shape == z.shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_forward(K, dtype):
    p, y = probs((6, 1), dtype), labels((6, 1), dtype)
    p64, y64 = p.astype("float64"), y.astype("float64")
    expected = -np.mean(
        [
            yi * math.log(pi) + (1 - yi) * math.log(1 - pi)
            for pi, yi in zip(p64.ravel(), y64.ravel(), strict=True)
        ]
    )
    rtol = 1e-6 if dtype == "float32" else 1e-13
    loss, _ = K.bce_forward(p, y)
    assert loss.shape == () and loss.dtype == dtype
    np.testing.assert_allclose(loss, expected, rtol=rtol)
    # BCE(p = 1/2) = ln 2 whatever the labels: the XOR plateau of the notes.
    np.testing.assert_allclose(
        K.bce_forward(np.full((4, 1), 0.5, dtype), y[:4])[0], math.log(2), rtol=rtol
    )

    z = arr((6, 1), dtype, scale=3)
    loss, _ = K.bce_with_logits_forward(z, y)
    np.testing.assert_allclose(
        loss, K.bce_forward(ref_sigmoid(z.astype("float64")), y64)[0], rtol=rtol * 10
    )
    assert loss.dtype == dtype

    yhat = arr((6, 1), dtype)
    loss, _ = K.mse_forward(yhat, y)
    np.testing.assert_allclose(loss, np.mean((yhat.astype("float64") - y64) ** 2), rtol=rtol)
    assert loss.dtype == dtype


# --- numerics at the extremes (pytest turns every warning into an error) ------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_is_finite_and_silent_at_extremes(K, dtype):
    z = np.array([-1e4, -1000.0, -88.0, -20.0, 0.0, 20.0, 88.0, 1000.0, 1e4], dtype)
    s, _ = K.sigmoid_forward(z)
    s = np.asarray(s)
    assert np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 1))
    assert s[0] == 0 and s[-1] == 1 and s[4] == 0.5
    # The small tail keeps its relative precision: sigma(-20) = 2.06e-9, not 0.
    np.testing.assert_allclose(s[3], 2.0611536181902037e-09, rtol=1e-6)
    d = np.asarray(K.sigmoid_prime(z))
    assert np.all(np.isfinite(d)) and np.all(d >= 0)
    np.testing.assert_allclose(d[5], 2.0611536181902037e-09, rtol=1e-5)  # not 0 from 1 - 1
    dz = K.sigmoid_backward(np.ones_like(z), K.sigmoid_forward(z)[1])
    assert np.all(np.isfinite(dz))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_is_finite_at_zero_and_one(K, dtype):
    p = np.array([[0.0], [1.0], [0.0], [1.0]], dtype)
    y = np.array([[0.0], [1.0], [1.0], [0.0]], dtype)
    loss, cache = K.bce_forward(p, y)
    dp = np.asarray(K.bce_backward(1.0, cache))
    info = np.finfo(dtype)
    assert loss.dtype == dtype and dp.dtype == dtype
    # Two rows right (loss ~ 0), two maximally wrong: p clipped to tiny and to 1 - eps/2.
    np.testing.assert_allclose(loss, (-math.log(info.tiny) - math.log(info.epsneg)) / 4, rtol=1e-5)
    assert np.all(np.isfinite(dp))
    # Confidently wrong rows are pushed the right way: p=0 with y=1 up, p=1 with y=0 down.
    assert dp[2, 0] < 0 < dp[3, 0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_is_finite_for_huge_logits(K, dtype):
    z = np.array([[-1e4], [-100.0], [0.0], [100.0], [1e4]], dtype)
    y = np.array([[1.0], [1.0], [1.0], [0.0], [0.0]], dtype)
    loss, cache = K.bce_with_logits_forward(z, y)
    dz = np.asarray(K.bce_with_logits_backward(1.0, cache))
    # Exact: softplus(1e4) = 1e4, softplus(100) = 100 (+3.7e-44), softplus(0) = ln 2.
    np.testing.assert_allclose(loss, (1e4 + 100 + math.log(2) + 100 + 1e4) / 5, rtol=1e-6)
    np.testing.assert_allclose(dz[:, 0], np.array([-1, -1, -0.5, 1, 1]) / 5, rtol=1e-6)
    assert dz.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_preserves_dtype(K, dtype):
    x, w, b = arr((4, 3), dtype), arr((3, 2), dtype), arr((2,), dtype)
    out, c = K.matmul_forward(x, w)
    assert all(g.dtype == dtype for g in K.matmul_backward(np.ones_like(out), c))
    out, c = K.add_bias_forward(out, b)
    assert all(g.dtype == dtype for g in K.add_bias_backward(np.ones_like(out), c))
    for fwd, bwd in [
        (K.sigmoid_forward, K.sigmoid_backward),
        (K.relu_forward, K.relu_backward),
        (K.tanh_forward, K.tanh_backward),
        (K.identity_forward, K.identity_backward),
    ]:
        out, c = fwd(x)
        assert bwd(np.ones_like(out), c).dtype == dtype
    y = labels((4, 3), dtype)
    onehot = np.eye(3, dtype=dtype)[[0, 2, 1, 1]]
    for fwd, bwd, pred, target in [
        (K.bce_forward, K.bce_backward, probs((4, 3), dtype), y),
        (K.bce_with_logits_forward, K.bce_with_logits_backward, x, y),
        (K.softmax_cross_entropy_forward, K.softmax_cross_entropy_backward, x, onehot),
        (K.mse_forward, K.mse_backward, x, y),
        (K.l2_penalty_forward, K.l2_penalty_backward, x, 0.3),
    ]:
        loss, c = fwd(pred, target)
        assert loss.dtype == dtype and bwd(1.0, c).dtype == dtype


# --- backward against central finite differences, float64 -------------------------


@pytest.mark.gradcheck
@pytest.mark.parametrize("op", PAIRS)
def test_backward_matches_finite_differences(K, op):
    forward, backward, inputs = kernel_cases(K)[op]
    report = check_kernel(forward, backward, inputs)
    report.assert_ok()
    assert list(report.params) == list(KERNELS[op].grad_inputs)


@pytest.mark.gradcheck
def test_sigmoid_prime_matches_finite_differences(K):
    z = arr((3, 4), scale=3)
    h = 1e-6
    numeric = (
        np.asarray(K.sigmoid_forward(z + h)[0]) - np.asarray(K.sigmoid_forward(z - h)[0])
    ) / (2 * h)
    np.testing.assert_allclose(K.sigmoid_prime(z), numeric, rtol=1e-6, atol=1e-10)


def test_backward_called_twice_gives_the_same_answer(K):
    x, w = arr((5, 3)), arr((3, 4))
    out, cache = K.matmul_forward(x, w)
    g = arr(out.shape)
    first, second = K.matmul_backward(g, cache), K.matmul_backward(g, cache)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cache[0], x)  # inputs are not written in place


# --- bad input --------------------------------------------------------------------


def test_bad_shapes_and_dtypes_name_the_argument(K):
    with pytest.raises(ValueError, match=r"x's columns \(3\) must equal w's rows \(2\)"):
        K.matmul_forward(arr((4, 3)), arr((2, 5)))
    with pytest.raises(
        ValueError, match=r"w must be \(D, M\) weights \(2-D or more\), got shape \(3,\)"
    ):
        K.matmul_forward(arr((4, 3)), arr((3,)))
    with pytest.raises(
        ValueError, match=r"b must have shape \(5,\) \(one bias per column of x\), got \(4,\)"
    ):
        K.add_bias_forward(arr((4, 5)), arr((4,)))
    with pytest.raises(TypeError, match=r"z must be a floating-point array.*got dtype int"):
        K.sigmoid_forward(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"y must have the shape of p, \(4, 1\), got \(4,\)"):
        K.bce_forward(probs((4, 1)), labels((4,)))
    with pytest.raises(ValueError, match=r"p is empty"):
        K.bce_forward(probs((0, 1)), labels((0, 1)))
    _, cache = K.sigmoid_forward(arr((4, 2)))
    with pytest.raises(
        ValueError,
        match=r"dout must have shape \(4, 2\) \(the forward output's shape\), got \(2, 4\)",
    ):
        K.sigmoid_backward(arr((2, 4)), cache)
    _, cache = K.mse_forward(arr((4, 1)), arr((4, 1)))
    with pytest.raises(ValueError, match=r"dloss must have shape \(\)"):
        K.mse_backward(arr((4, 1)), cache)


def test_jax_refuses_float64_it_would_truncate():
    jax = pytest.importorskip("jax")
    from backprop.kernels import get_backend

    K = get_backend("jax")
    with (
        jax.enable_x64(False),
        pytest.raises(TypeError, match="z has dtype float64 but jax_enable_x64 is off"),
    ):
        K.sigmoid_forward(arr((2, 2)))


def test_jax_kernels_run_under_jit_and_match_numpy():
    jax = pytest.importorskip("jax")
    from backprop.kernels import get_backend

    Kn, Kj = get_backend("numpy"), get_backend("jax")
    x, w, b, y = arr((6, 3)), arr((3, 1)), arr((1,)), labels((6, 1))

    def loss_and_grad(K, x, w, b, y):
        h, c1 = K.matmul_forward(x, w)
        z, c2 = K.add_bias_forward(h, b)
        p, c3 = K.sigmoid_forward(z)
        loss, c4 = K.bce_forward(p, y)
        dz = K.sigmoid_backward(K.bce_backward(1.0, c4), c3)
        dh, db = K.add_bias_backward(dz, c2)
        return loss, K.matmul_backward(dh, c1)[1], db

    jitted = jax.jit(lambda *a: loss_and_grad(Kj, *a))
    for a, b_ in zip(jitted(x, w, b, y), loss_and_grad(Kn, x, w, b, y), strict=True):
        np.testing.assert_allclose(a, b_, rtol=1e-12)


@pytest.mark.gradcheck
def test_batched_matmul_and_bias_match_finite_differences(K):
    """Stacks of independent problems: leading batch axes, shared x broadcast."""
    shared_x, w = arr((4, 2)), arr((3, 2, 5))
    check_kernel(K.matmul_forward, K.matmul_backward, {"x": shared_x, "w": w}).assert_ok()
    check_kernel(K.matmul_forward, K.matmul_backward, {"x": arr((3, 4, 2)), "w": w}).assert_ok()
    check_kernel(
        K.matmul_forward, K.matmul_backward, {"x": arr((3, 4, 2)), "w": arr((2, 1))}
    ).assert_ok()
    # a batch axis of size 1 stretched against 3: its gradient is summed back to size 1
    check_kernel(
        K.matmul_forward, K.matmul_backward, {"x": arr((1, 4, 2)), "w": arr((3, 2, 5))}
    ).assert_ok()
    check_kernel(
        K.add_bias_forward, K.add_bias_backward, {"x": arr((3, 4, 5)), "b": arr((3, 5))}
    ).assert_ok()
    out, cache = K.matmul_forward(shared_x, w)
    assert out.shape == (3, 4, 5)
    dx, dw = K.matmul_backward(np.ones((3, 4, 5)), cache)
    assert dx.shape == (4, 2) and dw.shape == (3, 2, 5)
    np.testing.assert_allclose(K.matmul_backward_weights(np.ones((3, 4, 5)), cache), dw)
    with pytest.raises(ValueError, match=r"b must have shape \(3, 5\)"):
        K.add_bias_forward(arr((3, 4, 5)), arr((5,)))


# --- the kernels added for real data: tanh, softmax cross-entropy, L2, weights --------


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_forward_and_its_derivative_from_the_output(K, dtype):
    z = np.array([[-1e4, -3.0, 0.0, 0.5, 20.0, 1e4]], dtype)
    t, cache = K.tanh_forward(z)
    np.testing.assert_allclose(t, np.tanh(z.astype("float64")), rtol=1e-6)
    np.testing.assert_array_equal(cache, t)  # the cache is the output
    dz = K.tanh_backward(np.ones_like(z), cache)
    np.testing.assert_allclose(dz, 1 - np.tanh(z.astype("float64")) ** 2, atol=1e-6)
    assert t.dtype == dtype and dz.dtype == dtype


def _log_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_forward_and_gradient(K, dtype):
    z = arr((5, 4), dtype, scale=3)
    labels_ = np.array([0, 3, 1, 1, 2])
    y = np.eye(4, dtype=dtype)[labels_]
    loss, cache = K.softmax_cross_entropy_forward(z, y)
    expected = -np.mean(_log_softmax(z)[np.arange(5), labels_])
    np.testing.assert_allclose(loss, expected, rtol=1e-6 if dtype == "float32" else 1e-13)
    dz = K.softmax_cross_entropy_backward(1.0, cache)
    np.testing.assert_allclose(dz, (np.exp(_log_softmax(z)) - y) / 5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(dz).sum(axis=1), 0, atol=1e-7)  # rows of p - y


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_is_finite_and_silent_for_logits_up_to_1e4(K, dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4], [0, 0, 1e4]], dtype)
    y = np.eye(3, dtype=dtype)[[0, 1, 2, 0]]
    loss, cache = K.softmax_cross_entropy_forward(z, y)
    # rows: right and certain (0), a three-way tie (ln 3), wrong by 2e4 against a two-way
    # tie (2e4 + ln 2), wrong by 1e4
    expected = (0 + math.log(3) + 2e4 + math.log(2) + 1e4) / 4
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    dz = np.asarray(K.softmax_cross_entropy_backward(1.0, cache))
    assert np.all(np.isfinite(dz)) and np.isfinite(loss)
    np.testing.assert_allclose(np.asarray(K.softmax(z)).sum(axis=1), 1, rtol=1e-6)


def test_weights_make_a_weighted_sum_and_padding_rows_change_nothing(K):
    z, y = arr((6, 1), scale=2), labels((6, 1))
    mean, _ = K.bce_with_logits_forward(z[:4], y[:4])
    w = np.array([[0.25], [0.25], [0.25], [0.25], [0.0], [0.0]])
    padded, cache = K.bce_with_logits_forward(z, y, w)
    np.testing.assert_allclose(padded, mean, rtol=1e-14)
    dz = np.asarray(K.bce_with_logits_backward(1.0, cache))
    np.testing.assert_array_equal(dz[4:], 0)
    np.testing.assert_allclose(
        dz[:4], K.bce_with_logits_backward(1.0, K.bce_with_logits_forward(z[:4], y[:4])[1])
    )
    onehot = np.eye(3)[[0, 1, 2, 1, 0, 2]]
    zz = arr((6, 3))
    full, _ = K.softmax_cross_entropy_forward(zz[:4], onehot[:4])
    part, _ = K.softmax_cross_entropy_forward(zz, onehot, np.array([0.25] * 4 + [0, 0]))
    np.testing.assert_allclose(part, full, rtol=1e-14)
    with pytest.raises(ValueError, match=r"weights must broadcast to .* \(6,\), got shape \(4,\)"):
        K.softmax_cross_entropy_forward(zz, onehot, np.ones(4))


def test_a_weighted_float32_sum_does_not_overflow_where_the_mean_fits(K):
    z = np.full((4, 1), 2e38, np.float32)
    loss, _ = K.bce_with_logits_forward(z, np.zeros((4, 1), np.float32))
    assert np.isfinite(loss) and float(loss) == pytest.approx(2e38, rel=1e-6)


def test_bce_keeps_a_tiny_probability_s_true_loss_in_float32(K):
    loss, _ = K.bce_forward(np.array([[1e-12]], np.float32), np.array([[1.0]], np.float32))
    assert float(loss) == pytest.approx(-math.log(1e-12), rel=1e-6)  # 27.63, not a clipped 15.9


def test_l2_penalty_forward_and_backward(K):
    w = arr((3, 4))
    loss, cache = K.l2_penalty_forward(w, 0.5)
    np.testing.assert_allclose(loss, 0.25 * np.sum(w**2), rtol=1e-14)
    np.testing.assert_allclose(K.l2_penalty_backward(2.0, cache), 2.0 * 0.5 * w, rtol=1e-14)
    with pytest.raises(ValueError, match=r"scale must hold values >= 0.0, got values in \[-1.0"):
        K.l2_penalty_forward(w, -1.0)


@pytest.mark.parametrize(
    ("kernel", "pred", "target", "message"),
    [
        (
            "bce_forward",
            [[0.5]],
            [[2.0]],
            r"y must hold values in \[0.0, 1.0\], got values in \[2.0",
        ),
        ("bce_forward", [[1.5]], [[1.0]], r"p must hold values in \[0.0, 1.0\]"),
        ("bce_with_logits_forward", [[0.5]], [[-1.0]], r"y must hold values in \[0.0, 1.0\]"),
        ("softmax_cross_entropy_forward", [[0.5, 1]], [[-1.0, 2.0]], r"y must hold values >= 0"),
    ],
)
def test_targets_outside_the_loss_s_domain_are_refused(K, kernel, pred, target, message):
    with pytest.raises(ValueError, match=message):
        getattr(K, kernel)(np.array(pred), np.array(target))


def test_the_registry_declares_every_bound_function_once():
    from backprop.kernels import FUNCTIONS, KERNEL_NAMES, get_spec

    assert len(set(KERNEL_NAMES)) == len(KERNEL_NAMES) == len(FUNCTIONS)
    for name, spec in KERNELS.items():
        assert spec.forward.__name__ == f"{name}_forward"
        assert spec.backward is None or spec.backward.__name__ == f"{name}_backward"
        assert set(spec.shapes(2, 3, 4)) == set(spec.inputs)
    with pytest.raises(ValueError, match=r"unknown kernel 'softmaxx'; kernels: matmul, add_bias"):
        get_spec("softmaxx")
