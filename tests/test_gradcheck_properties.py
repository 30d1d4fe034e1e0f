"""Property tests: every kernel's backward against finite differences on
random shapes (batch 1-24, features 1-16: the checker differences every
entry at three or more steps, so larger batches only cost time) and random
float64 values, on both backends; and three-way agreement of NumPy kernels,
JAX kernels and ``jax.grad`` of the same forward (batch 1-64).

Excluded points, on purpose: ReLU inputs within 1e-3 of its kink at 0
(central differences straddle the kink there and measure nothing), and the
step function (no derivative). BCE on probabilities draws p in
[1e-3, 1 - 1e-3]: closer to 0 or 1 the curvature 1/p^2 makes central
differences themselves inaccurate, and p at the clip bounds is tested for
finiteness separately (below, and in test_kernels.py). bce_with_logits
draws logits up to +-100.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backprop.gradcheck import check_kernel
from backprop.kernels import KERNELS, PAIRS, get_backend
from tests.conftest import HAVE_JAX

pytestmark = pytest.mark.gradcheck

BATCH = st.integers(1, 64)
FD_BATCH = st.integers(1, 24)
FEATURES = st.integers(1, 16)


def floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def off_points(lo, hi, points, margin):
    """Floats in [lo, hi], each moved to ``margin`` from any of ``points`` it is closer to.

    A map, not a filter: hypothesis draws 0 and its neighbours often, and a
    filter would reject most draws.
    """

    def away(v):
        for p in points:
            if abs(v - p) < margin:
                return p + math.copysign(margin, v - p if v != p else 1.0)
        return v

    return floats(lo, hi).map(away)


@st.composite
def kernel_inputs(draw, spec, avoid_zero=False, batch=BATCH):
    """Inputs for a registered kernel, drawn from its declared shapes and domains.

    ``avoid_zero`` keeps real inputs off 0 exactly (see the jax.grad comparison).
    """
    n, d, m = draw(batch), draw(FEATURES), draw(FEATURES)
    if spec.sample is not None:  # the kernel's own builder (images, indices, seeds)
        return spec.sample(np.random.default_rng(draw(st.integers(0, 2**32 - 1))), n, d, m)
    shapes = spec.shapes(n, d, m)
    out = {}
    for name in spec.inputs:
        dom, shape = spec.domain(name), shapes[name]
        if dom.kind == "targets":
            binary = draw(st.booleans())
            elements = st.sampled_from([0.0, 1.0]) if binary else floats(0.0, 1.0)
            out[name] = draw(hnp.arrays(np.float64, shape, elements=elements))
        elif dom.kind == "onehot":
            labels = draw(hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, shape[-1] - 1)))
            out[name] = np.eye(shape[-1])[labels]
        elif dom.kind == "scale":
            out[name] = draw(floats(dom.lo, dom.hi))
        else:
            points = (*dom.avoid, 0.0) if avoid_zero else dom.avoid
            margin = dom.margin or 1e-3
            elements = (
                off_points(dom.lo, dom.hi, points, margin) if points else floats(dom.lo, dom.hi)
            )
            out[name] = draw(hnp.arrays(np.float64, shape, elements=elements))
    return out


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def pair(backend, op, forward=None):
    """The kernel pair; on JAX, both halves jitted (forward returns its inputs as cache).

    ``forward``: the kernel's forward with its gradient-free inputs bound.
    """
    K = get_backend(backend)
    forward = forward or getattr(K, f"{op}_forward")
    backward = getattr(K, f"{op}_backward")
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
AUTODIFF_KINKS_AT_ZERO = {"sigmoid", "bce_with_logits"}

BACKENDS = ["numpy", pytest.param("jax", marks=pytest.mark.skipif(not HAVE_JAX, reason="no JAX"))]

# Each kernel's properties run twice: a quick pass of a few examples in the
# plain test run, and the hypothesis profile's full count under -m slow (the
# JAX checks compile at every new shape, which is most of their time).
QUICK_EXAMPLES = 3
DEPTHS = [
    pytest.param(QUICK_EXAMPLES, id="quick"),
    pytest.param(None, id="thorough", marks=pytest.mark.slow),
]


def _examples(check, n):
    """``check`` with ``n`` examples, or the profile's count when ``n`` is None."""
    return check if n is None else settings(max_examples=n)(check)


FD_BACKENDS = [
    "numpy",
    # JAX's backward is held to NumPy's and to jax.grad below, quickly; its own
    # finite-difference check recompiles at every shape and runs with -m slow.
    pytest.param(
        "jax",
        marks=[pytest.mark.skipif(not HAVE_JAX, reason="no JAX"), pytest.mark.slow],
    ),
]


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("backend", FD_BACKENDS)
@pytest.mark.parametrize("op", PAIRS)
def test_backward_matches_finite_differences(backend, op, depth):
    spec = KERNELS[op]

    @given(inputs=kernel_inputs(spec, batch=FD_BATCH), seed=st.integers(0, 2**16))
    def check(inputs, seed):
        # Inputs without a gradient (targets, indices, seeds) are bound, not perturbed.
        fwd, values = spec.bind(getattr(get_backend(backend), spec.forward.__name__), inputs)
        forward, backward = pair(backend, op, fwd)
        report = check_kernel(forward, backward, values, seed=seed)
        report.assert_ok()

    _examples(check, depth)()


@pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("op", PAIRS)
def test_numpy_jax_and_jax_grad_agree(op, depth):
    """Hand-derived NumPy and JAX backwards equal jax.grad of the JAX forward."""
    import jax

    Kn, Kj = get_backend("numpy"), get_backend("jax")
    forward_n, backward_n = getattr(Kn, f"{op}_forward"), getattr(Kn, f"{op}_backward")
    forward_j, backward_j = getattr(Kj, f"{op}_forward"), getattr(Kj, f"{op}_backward")
    spec = KERNELS[op]
    k = spec.grads

    strategy = kernel_inputs(spec, avoid_zero=op in AUTODIFF_KINKS_AT_ZERO)

    @given(inputs=strategy, seed=st.integers(0, 2**16))
    def check(inputs, seed):
        # Gradient-free inputs (targets, indices, seeds) are bound as constants.
        fwd_n, values = spec.bind(forward_n, inputs)
        fwd_j, _ = spec.bind(forward_j, inputs)
        args = list(values.values())

        @jax.jit
        def by_jax(g, *args):
            upstream = g if g.ndim else g.sum()
            return _as_tuple(backward_j(upstream, fwd_j(*args)[1]))

        @jax.jit
        def by_autodiff(g, *args):
            def scalar(*diff):
                return (fwd_j(*diff)[0] * g).sum()

            return jax.grad(scalar, argnums=tuple(range(k)))(*args)

        out, cache = fwd_n(*args)
        g = np.random.default_rng(seed).standard_normal(np.shape(out))
        by_numpy = _as_tuple(backward_n(g if g.ndim else float(g), cache))
        assert len(by_numpy) == k
        three = zip(values, by_numpy, by_jax(g, *args), by_autodiff(g, *args), strict=False)
        for name, a, b, c in three:
            if spec.random:  # NumPy's and JAX's generators differ: JAX against jax.grad only
                a = b
            else:
                np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13, err_msg=f"jax, {name}")
            np.testing.assert_allclose(c, a, rtol=1e-9, atol=1e-12, err_msg=f"jax.grad, {name}")

    _examples(check, depth)()


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
