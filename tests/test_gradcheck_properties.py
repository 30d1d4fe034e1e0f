"""Property tests: every kernel's backward against finite differences on
random shapes (batch 1-64, features 1-16) and random float64 values, on
both backends; and three-way agreement of NumPy kernels, JAX kernels and
``jax.grad`` of the same forward.

Excluded points, on purpose: ReLU inputs within 1e-3 of its kink at 0
(central differences straddle the kink there and measure nothing), and the
step function (no derivative). BCE on probabilities draws p in
[1e-3, 1 - 1e-3]: closer to 0 or 1 the curvature 1/p^2 makes central
differences themselves inaccurate, and p at the clip bounds is tested for
finiteness separately (below, and in test_kernels.py). bce_with_logits
draws logits up to +-100.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backprop.gradcheck import check_kernel
from kernels import get_backend
from tests.conftest import HAVE_JAX

pytestmark = pytest.mark.gradcheck

BATCH = st.integers(1, 64)
FEATURES = st.integers(1, 16)


def floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def array(shape, lo=-10.0, hi=10.0):
    return hnp.arrays(np.float64, shape, elements=floats(lo, hi))


@st.composite
def matmul_inputs(draw):
    n, d, m = draw(BATCH), draw(FEATURES), draw(FEATURES)
    return {"x": draw(array((n, d))), "w": draw(array((d, m)))}


@st.composite
def bias_inputs(draw):
    n, m = draw(BATCH), draw(FEATURES)
    return {"x": draw(array((n, m))), "b": draw(array((m,)))}


@st.composite
def elementwise(draw, lo=-30.0, hi=30.0, off_kink=False):
    shape = (draw(BATCH), draw(FEATURES))
    # off the kink: |z| in [1e-3, hi], either sign
    elements = off_zero(1e-3, hi) if off_kink else floats(lo, hi)
    return {"z": draw(hnp.arrays(np.float64, shape, elements=elements))}


def off_zero(lo, hi):
    """Floats with lo <= |v| <= hi, either sign."""
    return st.tuples(floats(lo, hi), st.booleans()).map(lambda t: t[0] if t[1] else -t[0])


@st.composite
def loss_inputs(draw, pred_name, lo, hi, labels="binary", avoid_zero=False):
    shape = (draw(BATCH), draw(FEATURES))
    elements = off_zero(1e-3, hi) if avoid_zero else floats(lo, hi)
    pred = draw(hnp.arrays(np.float64, shape, elements=elements))
    if labels == "binary":
        y = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))
    elif labels == "soft":
        y = draw(array(shape, 0.0, 1.0))
    else:
        y = draw(array(shape))
    return {pred_name: pred, "y": y}


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


CASES = {
    "matmul": matmul_inputs(),
    "add_bias": bias_inputs(),
    "sigmoid": elementwise(),
    "relu": elementwise(off_kink=True),
    "identity": elementwise(),
    "bce": st.one_of(
        loss_inputs("p", 1e-3, 1 - 1e-3), loss_inputs("p", 1e-3, 1 - 1e-3, labels="soft")
    ),
    "bce_with_logits": st.one_of(
        loss_inputs("z", -100.0, 100.0), loss_inputs("z", -100.0, 100.0, labels="soft")
    ),
    "mse": loss_inputs("yhat", -10.0, 10.0, labels="real"),
}


def pair(backend, op):
    """The kernel pair; on JAX, both halves jitted (forward returns its inputs as cache)."""
    K = get_backend(backend)
    forward, backward = getattr(K, f"{op}_forward"), getattr(K, f"{op}_backward")
    if backend == "numpy":
        return forward, backward
    import jax

    out_j = jax.jit(lambda *a: forward(*a)[0])
    grad_j = jax.jit(lambda g, *a: backward(g, forward(*a)[1]))
    return (lambda *a: (out_j(*a), a)), (lambda g, a: grad_j(g, *a))


# For the comparison with jax.grad, inputs of sigmoid and bce_with_logits
# avoid exactly z = 0. There autodiff differentiates the stable *formulas*
# at their kinks: maximum(e, z >= 0) in the sigmoid and max(z, 0), |z| in
# max(z, 0) - z y + log1p(exp(-|z|)) split or drop the derivative at the tie,
# so jax.grad returns 0 for sigma'(0) and -y / N for the logit loss instead of
# 1/4 and (1/2 - y) / N. The hand-derived backward, which differentiates the
# function rather than the formula, is right there
# (test_hand_derived_gradients_at_zero).
AUTODIFF_CASES = {
    **CASES,
    "sigmoid": elementwise(off_kink=True),
    "bce_with_logits": st.one_of(
        loss_inputs("z", -100.0, 100.0, avoid_zero=True),
        loss_inputs("z", -100.0, 100.0, labels="soft", avoid_zero=True),
    ),
}

BACKENDS = ["numpy", pytest.param("jax", marks=pytest.mark.skipif(not HAVE_JAX, reason="no JAX"))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", list(CASES))
def test_backward_matches_finite_differences(backend, op):
    forward, backward = pair(backend, op)

    @given(inputs=CASES[op], seed=st.integers(0, 2**16))
    def check(inputs, seed):
        report = check_kernel(forward, backward, inputs, seed=seed)
        report.assert_ok()

    check()


@pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
@pytest.mark.parametrize("op", list(CASES))
def test_numpy_jax_and_jax_grad_agree(op):
    """Hand-derived NumPy and JAX backwards equal jax.grad of the JAX forward."""
    import jax

    Kn, Kj = get_backend("numpy"), get_backend("jax")
    forward_n, backward_n = getattr(Kn, f"{op}_forward"), getattr(Kn, f"{op}_backward")
    forward_j, backward_j = getattr(Kj, f"{op}_forward"), getattr(Kj, f"{op}_backward")
    n_inputs = len(inspect.signature(forward_n).parameters)
    k = 1 if op in ("bce", "bce_with_logits", "mse") else n_inputs

    @jax.jit
    def by_jax(g, *args):
        upstream = g if g.ndim else g.sum()
        return _as_tuple(backward_j(upstream, forward_j(*args)[1]))

    @jax.jit
    def by_autodiff(g, *args):
        def scalar(*diff):
            return (forward_j(*diff, *args[k:])[0] * g).sum()

        return jax.grad(scalar, argnums=tuple(range(k)))(*args[:k])

    @given(inputs=AUTODIFF_CASES[op], seed=st.integers(0, 2**16))
    def check(inputs, seed):
        args = list(inputs.values())
        out, cache = forward_n(*args)
        g = np.random.default_rng(seed).standard_normal(np.shape(out))
        by_numpy = _as_tuple(backward_n(g if g.ndim else float(g), cache))
        assert len(by_numpy) == k
        three = zip(inputs, by_numpy, by_jax(g, *args), by_autodiff(g, *args), strict=False)
        for name, a, b, c in three:
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13, err_msg=f"jax, {name}")
            np.testing.assert_allclose(c, a, rtol=1e-9, atol=1e-12, err_msg=f"jax.grad, {name}")

    check()


@pytest.mark.parametrize("backend", BACKENDS)
@given(
    p=hnp.arrays(
        np.float64, (8, 3), elements=st.one_of(floats(0.0, 1.0), st.sampled_from([0.0, 1.0]))
    ),
    y=hnp.arrays(np.float64, (8, 3), elements=st.sampled_from([0.0, 1.0])),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_bce_is_finite_and_points_the_right_way_anywhere_in_0_1(backend, p, y, dtype):
    K = get_backend(backend)
    loss, cache = K.bce_forward(p.astype(dtype), y.astype(dtype))
    dp = np.asarray(K.bce_backward(1.0, cache))
    assert np.isfinite(loss) and np.all(np.isfinite(dp))
    # The gradient pushes p towards y: negative where y = 1, positive where y = 0.
    assert np.all(dp[y == 1] < 0) and np.all(dp[y == 0] > 0)


@pytest.mark.parametrize("backend", BACKENDS)
@given(
    z=hnp.arrays(np.float64, (5, 4), elements=floats(-1e4, 1e4)),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_sigmoid_and_logit_loss_are_finite_for_any_logit(backend, z, dtype):
    K = get_backend(backend)
    z = z.astype(dtype)
    s, cache = K.sigmoid_forward(z)
    assert np.all((np.asarray(s) >= 0) & (np.asarray(s) <= 1))
    assert np.all(np.isfinite(K.sigmoid_backward(np.ones_like(z), cache)))
    loss, cache = K.bce_with_logits_forward(z, np.ones_like(z))
    assert np.isfinite(loss) and np.all(np.isfinite(K.bce_with_logits_backward(1.0, cache)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_derived_gradients_at_zero(backend):
    """At z = 0: sigma'(0) = 1/4, and the logit loss has (sigma(0) - y) / N = (1/2 - y) / N."""
    K = get_backend(backend)
    _, cache = K.sigmoid_forward(np.zeros((1, 3)))
    np.testing.assert_allclose(K.sigmoid_backward(np.ones((1, 3)), cache), 0.25)
    np.testing.assert_allclose(K.sigmoid_prime(np.zeros(3)), 0.25)
    z, y = np.zeros((2, 1)), np.array([[0.0], [1.0]])
    _, cache = K.bce_with_logits_forward(z, y)
    np.testing.assert_allclose(K.bce_with_logits_backward(1.0, cache), [[0.25], [-0.25]])
    check_kernel(
        K.bce_with_logits_forward, K.bce_with_logits_backward, {"z": z, "y": y}
    ).assert_ok()
