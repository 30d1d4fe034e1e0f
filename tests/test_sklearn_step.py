"""The estimators' in-place step (backprop.sklearn_step) held to the derivation.

Its gradient is :func:`backprop.nets.loss_and_grads` with rows weighted by
``sw / sum(sw)`` and the penalty scaled by ``alpha / sum(sw)`` (half of it
for the squared error, scikit-learn's ``delta = p - y``); the Poisson head,
which has no kernel, is checked by central differences. Sparse input gives
the dense answer, and saturated inputs give no warnings (the suite turns
warnings into errors).
"""

from __future__ import annotations

import numpy as np
import pytest

from backprop import nets
from backprop.kernels import get_backend
from backprop.sklearn_step import AdamOptimizer, SGDOptimizer, Step

K = get_backend("numpy")
RNG = np.random.default_rng(0)
N, SIZES = 9, [5, 7, 6, 3]
HIDDEN = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "identity"}
HEADS = {"softmax": "softmax", "logistic": "sigmoid", "identity": "identity"}


def _targets(out: str, n: int, m: int) -> np.ndarray:
    if out == "softmax":
        return np.eye(m)[RNG.integers(0, m, n)]
    if out == "logistic":
        return (RNG.random((n, m)) > 0.5).astype(float)
    return RNG.standard_normal((n, m))


# two hidden layers; one hidden layer and one output column (the first layer's gradient
# from rows scaled by the error, where the activation declares its factor); one hidden
# layer and three outputs
NETWORKS = {"two hidden": SIZES, "one output": [5, 7, 1], "one hidden": [5, 7, 3]}


CASES = [
    pytest.param(out, sizes, id=f"{out}-{name}")
    for out in HEADS
    for name, sizes in NETWORKS.items()
    if not (out == "softmax" and sizes[-1] == 1)  # (a softmax over one output is constant)
]


@pytest.mark.parametrize("ones", [False, True], ids=["X", "X with ones column"])
@pytest.mark.parametrize("weighted", [False, True], ids=["mean", "sample weights"])
@pytest.mark.parametrize(("out", "sizes"), CASES)
@pytest.mark.parametrize("activation", list(HIDDEN))
def test_step_gradient_is_the_derivations(activation, out, sizes, weighted, ones):
    params = nets.init_params(sizes, seed=1, dtype="float64", scheme="glorot")
    X = RNG.standard_normal((N, sizes[0]))
    Y = _targets(out, N, sizes[-1])
    sw = RNG.uniform(0.2, 3.0, N) if weighted else None
    alpha = 0.3
    step = Step(sizes, activation, out, np.float64, N)
    step.set_params([p.w for p in params], [p.b for p in params])
    loss = step.loss_and_grads(step.with_ones(X) if ones else X, Y, alpha, sw, ones=ones)
    w = np.full(N, 1.0 / N) if sw is None else sw / sw.sum()
    weights = w if out == "softmax" else w[:, None]
    net = nets.make_net(sizes, HIDDEN[activation], HEADS[out])
    sw_sum = N if sw is None else sw.sum()
    ref_loss, _, ref = nets.loss_and_grads(K, params, X, Y, net, weights=weights, l2=alpha / sw_sum)
    half = 0.5 if out == "identity" else 1.0  # scikit-learn's squared error: delta = p - y
    penalty = 0.5 * alpha / sw_sum * sum((p.w**2).sum() for p in params)
    for i, g in enumerate(ref):
        extra = (1 - half) * alpha / sw_sum * params[i].w  # the penalty's gradient is not halved
        np.testing.assert_allclose(step.dW[i], half * g.w + extra, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(step.db[i], half * g.b, rtol=1e-12, atol=1e-14)
    expected = (ref_loss - penalty) * (0.5 / sizes[-1] if out == "identity" else 1.0) + penalty
    np.testing.assert_allclose(loss, expected, rtol=1e-12)


def test_poisson_gradient_by_central_differences():
    X = RNG.standard_normal((N, 4)) * 0.5
    Y = RNG.poisson(2.0, (N, 1)).astype(float)
    sw = RNG.uniform(0.5, 2.0, N)
    step = Step([4, 5, 1], "tanh", "exp", np.float64, N)
    step.theta[...] = RNG.standard_normal(step.theta.shape) * 0.3
    step.loss_and_grads(X, Y, 0.1, sw)
    grad, theta, h = step.grad.copy(), step.theta.copy(), 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        for sign in (1, -1):
            step.theta[...] = theta
            step.theta[i] += sign * h
            numeric[i] = (numeric[i] if sign == -1 else 0) + sign * step.loss_and_grads(
                X, Y, 0.1, sw
            )
        numeric[i] /= 2 * h
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_sparse_input_gives_the_dense_answer_and_saturation_is_quiet():
    sp = pytest.importorskip("scipy.sparse")
    X = RNG.standard_normal((N, 5)) * (RNG.random((N, 5)) > 0.6)
    Y = _targets("softmax", N, 3)
    dense, sparse = (Step([5, 4, 3], "relu", "softmax", np.float32, N) for _ in range(2))
    for s in (dense, sparse):
        s.theta[...] = np.linspace(-1, 1, s.theta.size)
    a = dense.loss_and_grads(X.astype(np.float32), Y.astype(np.float32), 0.01)
    b = sparse.loss_and_grads(sp.csr_matrix(X.astype(np.float32)), Y.astype(np.float32), 0.01)
    assert a == pytest.approx(b, rel=1e-6) and dense.grad.dtype == np.float32
    np.testing.assert_allclose(sparse.grad, dense.grad, rtol=1e-5, atol=1e-7)
    with np.errstate(all="raise"):
        for out in ("softmax", "logistic"):
            s = Step([5, 3], "logistic", out, np.float32, N)
            s.theta[...] = 1e4
            loss = s.loss_and_grads(X.astype(np.float32) * 100, _targets(out, N, 3), 0.0)
            assert np.isfinite(loss) and np.all(np.isfinite(s.grad))


def test_optimizers_are_scikit_learns_updates():
    from sklearn.neural_network._stochastic_optimizers import (
        AdamOptimizer as SkAdam,
    )
    from sklearn.neural_network._stochastic_optimizers import (
        SGDOptimizer as SkSGD,
    )

    theta = RNG.standard_normal(6)
    grads = [RNG.standard_normal(6) for _ in range(4)]
    for ours, theirs in (
        (SGDOptimizer(6, np.float64, 0.1, "constant", 0.9, True, 0.5), SkSGD([theta.copy()], 0.1)),
        (AdamOptimizer(6, np.float64, 0.01, 0.9, 0.999, 1e-8), SkAdam([theta.copy()], 0.01)),
    ):
        a, b = theta.copy(), [theta.copy()]
        for g in grads:
            ours.update(a, g)
            theirs.update_params(b, [g])
        np.testing.assert_array_equal(a, b[0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scale", [1.0, 40.0, 1e3, 1e4], ids=["ordinary", "40", "1e3", "1e4"])
@pytest.mark.parametrize("name", ["softmax", "logistic", "identity"])
def test_each_output_s_in_place_form_is_its_head_s_prediction(name, scale, dtype):
    # the step's in-place output activations transcribe the declared heads' predict
    from backprop.kernels import registry
    from backprop.sklearn_step import OUTPUTS

    row = OUTPUTS[name]
    z = (RNG.standard_normal((6, 4)) * scale).astype(dtype)
    z[0] = scale  # ties and a saturated row
    want = np.asarray(registry.head(row.head).predict(np, z.copy()))
    got = z.copy()
    with np.errstate(over="ignore", under="ignore"):
        row.inplace(got)
    assert got.dtype == np.dtype(dtype) and np.all(np.isfinite(got))
    tol = 1e-15 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("ones", [False, True], ids=["X", "X with ones column"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_one_output_paths_match_the_derivation_when_saturated(activation, ones):
    # the first layer's gradient from rows scaled by the error, with hidden units and the
    # output pushed into saturation (|z| in the hundreds): finite, quiet, the derivation's
    sizes = [5, 7, 1]
    params = nets.init_params(sizes, seed=2, dtype="float64", scheme="glorot")
    X = RNG.standard_normal((N, 5)) * 300.0
    Y = _targets("logistic", N, 1)
    step = Step(sizes, activation, "logistic", np.float64, N)
    step.set_params([p.w for p in params], [p.b for p in params])
    with np.errstate(all="raise"):
        step.loss_and_grads(step.with_ones(X) if ones else X, Y, 0.0, ones=ones)
    assert np.all(np.isfinite(step.grad))
    net = nets.make_net(sizes, HIDDEN[activation], "sigmoid")
    _, _, ref = nets.loss_and_grads(K, params, X, Y, net, weights=np.full((N, 1), 1.0 / N))
    for i, g in enumerate(ref):
        np.testing.assert_allclose(step.dW[i], g.w, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(step.db[i], g.b, rtol=1e-10, atol=1e-12)
