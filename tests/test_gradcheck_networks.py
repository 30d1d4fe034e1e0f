"""Whole networks checked end to end, and the checker tested with planted bugs.

The planted bugs are the mistakes hand-written backprop actually makes (the
notes' own loop had one); each must fail the check *on the parameter it
breaks*, with a diagnosis that says what kind of mistake it is, and the
correct backward must pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from backprop.data import xor_data
from backprop.gradcheck import gradcheck
from backprop.kernels import get_backend
from backprop.nets import Layer, init_params, loss_and_grads, make_net
from backprop.xor import XorParams, init_xor_params, xor_forward, xor_loss_and_grads
from tests.conftest import HAVE_JAX

pytestmark = pytest.mark.gradcheck


def xor_problem(K, hidden=2, seed=0):
    X, y = xor_data("float64")
    params = init_xor_params(hidden, seed, "float64")._asdict()

    def loss_fn(p):  # BCE on the probabilities: independent of the logits form it checks
        y_pred = K.sigmoid_forward(xor_forward(K, XorParams(**p), X)[0])[0]
        return K.bce_forward(y_pred, y)[0]

    def grad_fn(p):
        return xor_loss_and_grads(K, XorParams(**p), X, y)[1]._asdict()

    return loss_fn, grad_fn, params, X, y


def test_xor_network_gradients_are_right(K):
    loss_fn, grad_fn, params, _, _ = xor_problem(K)
    report = gradcheck(loss_fn, grad_fn, params)
    report.assert_ok()
    assert list(report.params) == ["w1", "b1", "w2", "b2"]


def _mlp_problem(K, sizes, activation, output, alpha=0.0, seed=0, n=16):
    rng = np.random.default_rng(seed)
    net = make_net(sizes, activation, output)
    X = rng.standard_normal((n, sizes[0]))
    if output == "sigmoid":
        y = rng.integers(0, 2, (n, sizes[-1])).astype(float)
    elif output == "softmax":
        y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    else:
        y = rng.standard_normal((n, sizes[-1]))
    params = init_params(sizes, seed=seed, dtype="float64")
    flat = {f"{k}{i}": getattr(layer, k) for i, layer in enumerate(params) for k in ("w", "b")}

    def unflat(p):
        return tuple(Layer(p[f"w{i}"], p[f"b{i}"]) for i in range(len(params)))

    def loss_fn(p):
        return loss_and_grads(K, unflat(p), X, y, net, l2=alpha / n)[0]

    def grad_fn(p):
        grads = loss_and_grads(K, unflat(p), X, y, net, l2=alpha / n)[2]
        return {f"{k}{i}": getattr(g, k) for i, g in enumerate(grads) for k in ("w", "b")}

    if K.name == "jax":  # one compiled call per evaluation instead of op-by-op dispatch
        import jax

        loss_fn, grad_fn = jax.jit(loss_fn), jax.jit(grad_fn)
    return loss_fn, grad_fn, flat


MLPS = {
    "2-64-32-16-1 sigmoid, bce": ([2, 64, 32, 16, 1], "sigmoid", "sigmoid"),
    "2-5-1 relu, bce": ([2, 5, 1], "relu", "sigmoid"),
    "3-8-6-2 mixed, mse": ([3, 8, 6, 2], ["relu", "sigmoid"], "identity"),
    "4-32-1 wide identity, mse": ([4, 32, 1], "identity", "identity"),
    "2-1 single unit, mse": ([2, 1], [], "identity"),
    "5-12-7-4 tanh/relu, softmax": ([5, 12, 7, 4], ["tanh", "relu"], "softmax"),
    "6-9-3 tanh, softmax, L2": ([6, 9, 3], "tanh", "softmax", 0.3),
    "3-4-2 sigmoid, two sigmoid outputs, L2": ([3, 4, 2], "sigmoid", "sigmoid", 1e-2),
}


@pytest.mark.parametrize("name", list(MLPS))
def test_mlp_gradients_are_right(K, name):
    loss_fn, grad_fn, params = _mlp_problem(K, *MLPS[name])
    gradcheck(loss_fn, grad_fn, params).assert_ok()


@pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
@pytest.mark.parametrize("name", list(MLPS))
def test_mlp_gradients_match_jax_grad_and_numpy(name):
    """Three ways to the same numbers: NumPy kernels, JAX kernels, jax.grad."""
    import jax

    Kn, Kj = get_backend("numpy"), get_backend("jax")
    _, grad_n, params = _mlp_problem(Kn, *MLPS[name])
    loss_j, grad_j, _ = _mlp_problem(Kj, *MLPS[name])
    by_numpy, by_jax, by_autodiff = grad_n(params), grad_j(params), jax.grad(loss_j)(params)
    for k in params:
        np.testing.assert_allclose(by_jax[k], by_numpy[k], rtol=1e-10, atol=1e-14, err_msg=k)
        np.testing.assert_allclose(by_autodiff[k], by_numpy[k], rtol=1e-9, atol=1e-13, err_msg=k)


# --- planted bugs ---------------------------------------------------------------


def buggy_xor_gradients(K, params, X, y, bug):
    """xor_loss_and_grads with one classic mistake planted (``bug`` names it)."""
    l2, (c_mm1, c_b1, c_s1, c_mm2, c_b2) = xor_forward(K, params, X)
    _, c_loss = K.bce_with_logits_forward(l2, y)
    d_l2 = K.bce_with_logits_backward(1.0, c_loss)
    if bug == "sum_not_mean":  # the loss summed over rows, its gradient not divided by N
        d_l2 = d_l2 * X.shape[0]
    d_l2_lin, d_b2 = K.add_bias_backward(d_l2, c_b2)
    d_a1, d_w2 = K.matmul_backward(d_l2_lin, c_mm2)
    if bug == "flipped_sign_w2":
        d_w2 = -d_w2
    d_l1 = d_a1 if bug == "forgot_hidden_sigma_prime" else K.sigmoid_backward(d_a1, c_s1)
    d_l1_lin, d_b1 = K.add_bias_backward(d_l1, c_b1)
    if bug == "bias_summed_over_wrong_axis":
        d_b1 = d_l1_lin.sum(axis=1)
    d_w1 = K.matmul_backward_weights(d_l1_lin, c_mm1)
    if bug == "transposed_w1":
        d_w1 = d_w1.T
    return {"w1": d_w1, "b1": d_b1, "w2": d_w2, "b2": d_b2}


@pytest.mark.parametrize(
    ("bug", "hidden", "failing", "diagnosis"),
    [
        ("forgot_hidden_sigma_prime", 2, {"w1", "b1"}, "missing or misplaced derivative factor"),
        ("transposed_w1", 2, {"w1"}, "transpose of numeric"),
        ("sum_not_mean", 2, {"w1", "b1", "w2", "b2"}, "exactly 4x too large (a sum where a mean"),
        ("flipped_sign_w2", 2, {"w2"}, "sign flipped"),
        # With 4 hidden units and 4 rows the wrongly summed b1 has the right shape (4,).
        ("bias_summed_over_wrong_axis", 4, {"b1"}, "mismatch"),
    ],
)
def test_planted_bug_fails_on_the_right_parameter(K, bug, hidden, failing, diagnosis):
    loss_fn, grad_fn, params, X, y = xor_problem(K, hidden=hidden, seed=1)

    def buggy(p):
        return buggy_xor_gradients(K, XorParams(**p), X, y, bug)

    report = gradcheck(loss_fn, buggy, params)
    assert not report.ok
    assert set(report.failing) == failing
    for name in failing:
        assert diagnosis in report[name].diagnosis, str(report)
    text = str(report)
    assert text.startswith("gradient check FAILED for")
    # failing parameters are listed first in the table
    rows = [line.split()[0] for line in text.splitlines()[2:6]]
    assert set(rows[: len(failing)]) == failing
    with pytest.raises(AssertionError, match="gradient check FAILED"):
        report.assert_ok()
    # ...and the correct backward passes on the very same problem
    gradcheck(loss_fn, grad_fn, params).assert_ok()


def test_bias_summed_over_wrong_axis_with_wrong_shape_is_named(K):
    loss_fn, _, params, X, y = xor_problem(K, hidden=2)

    def buggy(p):
        return buggy_xor_gradients(K, XorParams(**p), X, y, "bias_summed_over_wrong_axis")

    with pytest.raises(
        ValueError, match=r"grad_fn returned shape \(4,\) for 'b1', expected \(2,\)"
    ):
        gradcheck(loss_fn, buggy, params)


def test_the_notes_stalled_loop_is_caught():
    """The notes' loop stalled at ln 2; with sigma' applied to the output instead of
    the pre-activation (a classic slip), the checker says which parameters are wrong."""
    K = get_backend("numpy")
    loss_fn, _, params, X, y = xor_problem(K)

    def notes_style(p):
        w1, b1, w2, b2 = (p[k] for k in ("w1", "b1", "w2", "b2"))
        a1 = 1 / (1 + np.exp(-(X @ w1 + b1)))
        y_pred = 1 / (1 + np.exp(-(a1 @ w2 + b2)))
        d_l2 = (y_pred - y) / len(X)
        d_l1 = (d_l2 @ w2.T) * K.sigmoid_prime(a1)  # sigma' of the activation, not of l1
        return {"w1": X.T @ d_l1, "b1": d_l1.sum(0), "w2": a1.T @ d_l2, "b2": d_l2.sum(0)}

    report = gradcheck(loss_fn, notes_style, params)
    assert set(report.failing) == {"w1", "b1"}
