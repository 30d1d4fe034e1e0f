"""The layer kernels (softmax, gelu, layernorm, batchnorm, dropout, embedding,
conv2d, maxpool2d, attention): forwards against written-out references, the
routing rules (pooling ties, dropout masks, repeated embedding indices),
dtypes, extremes, input errors, both backends equal to 1e-12 in float64,
each backward equal to ``jax.vjp`` of its own forward to 1e-12, and the
JAX kernels inside ``jax.jit``, ``lax.scan`` and ``jax.vmap``.

The registry's gradient-check suite (tests/test_kernels.py,
tests/test_gradcheck_properties.py) covers each kernel at its declared
inputs; the cases below add the keyword variants (strides, padding,
overlapping pools, causal attention, the exact GELU).
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backprop.gradcheck import check_kernel
from backprop.kernels import KERNELS, get_backend
from backprop.kernels.registry import sample_inputs
from tests.conftest import HAVE_JAX

LAYERS = ("softmax", "gelu", "layernorm", "batchnorm", "dropout", "embedding")
LAYERS += ("conv2d", "maxpool2d", "attention")
needs_jax = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")


def distinct(rng, shape):
    """Values at least 0.05 apart (no ties in a pooling window)."""
    count = math.prod(shape)
    return (rng.permutation(count) * 0.05 - 0.025 * count).reshape(shape)


def u(rng, *shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape)


# name, keyword arguments, inputs (in the forward's order) from a Generator.
CASES = [
    ("softmax", {}, lambda r: {"z": u(r, 2, 3, 5, lo=-8, hi=8)}),
    ("gelu", {}, lambda r: {"z": u(r, 4, 6, lo=-5, hi=5)}),
    ("gelu", {"approximate": False}, lambda r: {"z": u(r, 4, 6, lo=-5, hi=5)}),
    ("layernorm", {}, lambda r: {"x": u(r, 2, 3, 6), "gamma": u(r, 6), "beta": u(r, 6)}),
    ("layernorm", {"eps": 1e-2}, lambda r: {"x": u(r, 4, 5), "gamma": u(r, 5), "beta": u(r, 5)}),
    ("batchnorm", {}, lambda r: {"x": u(r, 6, 4), "gamma": u(r, 4), "beta": u(r, 4)}),
    ("batchnorm", {}, lambda r: {"x": u(r, 3, 2, 4, 3), "gamma": u(r, 2), "beta": u(r, 2)}),
    ("dropout", {}, lambda r: {"x": u(r, 5, 7), "p": 0.4, "seed": 11}),
    ("embedding", {}, lambda r: {"idx": r.integers(0, 5, (3, 4)), "table": u(r, 5, 3)}),
    (
        "conv2d",
        {},
        lambda r: {"x": u(r, 2, 3, 5, 4), "w": u(r, 4, 3, 3, 2), "b": u(r, 4)},
    ),
    (
        "conv2d",
        {"stride": 2, "padding": 1},
        lambda r: {"x": u(r, 2, 2, 6, 5), "w": u(r, 3, 2, 3, 3), "b": u(r, 3)},
    ),
    (
        "conv2d",
        {"stride": 3, "padding": 2},
        lambda r: {"x": u(r, 1, 2, 5, 7), "w": u(r, 2, 2, 2, 3), "b": u(r, 2)},
    ),
    ("maxpool2d", {}, lambda r: {"x": distinct(r, (2, 3, 4, 6))}),
    ("maxpool2d", {"size": 3, "stride": 1}, lambda r: {"x": distinct(r, (1, 2, 5, 6))}),
    ("maxpool2d", {"size": 2, "stride": 3}, lambda r: {"x": distinct(r, (2, 1, 7, 8))}),
    (
        "attention",
        {},
        lambda r: {"q": u(r, 2, 3, 4, 5), "k": u(r, 2, 3, 6, 5), "v": u(r, 2, 3, 6, 3)},
    ),
    (
        "attention",
        {"causal": True},
        lambda r: {"q": u(r, 2, 5, 4), "k": u(r, 2, 5, 4), "v": u(r, 2, 5, 2)},
    ),
]
CASE_IDS = [
    f"{name}-{'-'.join(f'{k}{v}' for k, v in kw.items()) or 'default'}" for name, kw, _ in CASES
]


def bound(backend, name, kwargs, inputs):
    """(forward of the gradient inputs, backward, gradient inputs) for one case."""
    K = get_backend(backend)
    spec = KERNELS[name]
    forward = functools.partial(getattr(K, f"{name}_forward"), **kwargs)
    forward, values = spec.bind(forward, inputs)
    return forward, getattr(K, f"{name}_backward"), values


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def close(a, b, what, tol=1e-12):
    """|a - b| <= tol * max(1, max |b|), entry by entry."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    err = float(np.max(np.abs(a - b), initial=0.0))
    assert err <= tol * scale, f"{what}: max difference {err:.3g} (scale {scale:.3g})"


def run(backend, name, kwargs, inputs, seed=0):
    forward, backward, values = bound(backend, name, kwargs, inputs)
    out, cache = forward(*values.values())
    g = np.random.default_rng(seed).standard_normal(np.shape(out))
    return out, as_tuple(backward(g, cache)), g


# --- the gradient check, at every keyword variant ----------------------------------


# On JAX the same checks are slow-marked: JAX equals NumPy to 1e-12 at every case
# (test_numpy_jax_and_vjp_agree_to_1e_12), and eager JAX calls cost ~1 s per case.
CHECK_BACKENDS = ["numpy", pytest.param("jax", marks=[needs_jax, pytest.mark.slow])]


@pytest.mark.gradcheck
@pytest.mark.parametrize("backend", CHECK_BACKENDS)
@pytest.mark.parametrize(("name", "kwargs", "make"), CASES, ids=CASE_IDS)
def test_keyword_variants_match_finite_differences(backend, name, kwargs, make):
    forward, backward, values = bound(backend, name, kwargs, make(np.random.default_rng(3)))
    check_kernel(forward, backward, values).assert_ok()


# --- both backends, and jax.vjp of the kernel's own forward -------------------------


def _first_variant_default(cases, ids):
    """Each kernel's first case in the default run, its further variants marked slow."""
    seen, params = set(), []
    for case, case_id in zip(cases, ids, strict=True):
        marks = [pytest.mark.slow] if case[0] in seen else []
        seen.add(case[0])
        params.append(pytest.param(*case, id=case_id, marks=marks))
    return params


@needs_jax
@pytest.mark.parametrize(("name", "kwargs", "make"), _first_variant_default(CASES, CASE_IDS))
def test_numpy_jax_and_vjp_agree_to_1e_12(name, kwargs, make):
    import jax

    inputs = make(np.random.default_rng(5))
    out_n, grads_n, g = run("numpy", name, kwargs, inputs)
    forward, backward, values = bound("jax", name, kwargs, inputs)

    @jax.jit  # one compilation, not one per operation: eager calls are test_float32_stays_...'s
    def by_hand_and_by_vjp(g, *diff):
        out, cache = forward(*diff)
        _, vjp = jax.vjp(lambda *d: forward(*d)[0], *diff)
        return out, as_tuple(backward(g, cache)), vjp(g)

    out_j, grads_j, by_vjp = by_hand_and_by_vjp(g, *values.values())
    if KERNELS[name].random:
        # The backends draw from different generators (NumPy's PCG64, JAX's
        # threefry): same routing rule, different masks. Given NumPy's mask,
        # JAX's backward must give NumPy's gradient.
        mask = get_backend("numpy").dropout_forward(**inputs)[1]
        close(get_backend("jax").dropout_backward(g, mask), grads_n[0], "dropout, same mask")
        out_n, grads_n = out_j, grads_j  # the vjp check below runs on JAX's own mask
    close(out_j, out_n, f"{name} forward, jax vs numpy")
    for i, (a, b) in enumerate(zip(grads_j, grads_n, strict=True)):
        close(a, b, f"{name} gradient {i}, jax vs numpy")
    for i, (a, b) in enumerate(zip(grads_j, by_vjp, strict=True)):
        close(a, b, f"{name} gradient {i}, backward vs jax.vjp of the forward")


@needs_jax
@pytest.mark.slow  # several compilations per kernel: ~3-6 s each on a loaded 2-core machine
@pytest.mark.parametrize("name", LAYERS)
def test_jax_kernels_run_in_jit_scan_and_vmap(name):
    import jax
    from jax import lax

    kwargs, make = next((kw, mk) for n, kw, mk in CASES if n == name)
    rng = np.random.default_rng(8)
    two = [make(rng), make(rng)]
    spec = KERNELS[name]
    _, _, values0 = bound("jax", name, kwargs, two[0])
    fixed = {k: v for k, v in two[0].items() if k not in spec.grad_inputs}
    stacked = [np.stack([d[k] for d in two]) for k in values0]
    forward, backward, _ = bound("jax", name, kwargs, {**fixed, **values0})

    def grads(*diff):
        out, cache = forward(*diff)
        return out, as_tuple(backward(out * 0.5 + 1.0, cache))

    want = [grads(*(s[i] for s in stacked)) for i in range(2)]
    jitted = jax.jit(grads)
    by_jit = [jitted(*(s[i] for s in stacked)) for i in range(2)]
    by_vmap = jax.vmap(grads)(*stacked)
    _, by_scan = lax.scan(lambda c, xs: (c, grads(*xs)), 0.0, tuple(stacked))
    for i in range(2):
        for got in (by_jit[i], jax.tree.map(lambda a, i=i: a[i], by_vmap)):
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want[i]), strict=True):
                close(a, b, f"{name}, element {i}")
        for a, b in zip(
            jax.tree.leaves(jax.tree.map(lambda a, i=i: a[i], by_scan)),
            jax.tree.leaves(want[i]),
            strict=True,
        ):
            close(a, b, f"{name} in lax.scan, element {i}")


# --- dtypes -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs", "make"), _first_variant_default(CASES, CASE_IDS))
def test_float32_stays_float32(K, name, kwargs, make):
    inputs = {
        k: v.astype("float32") if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
        for k, v in make(np.random.default_rng(1)).items()
    }
    forward, backward, values = bound(K.name, name, kwargs, inputs)
    out, cache = forward(*values.values())
    assert out.dtype == np.float32
    for grad in as_tuple(backward(np.ones(out.shape, "float32"), cache)):
        assert grad.dtype == np.float32


def test_registry_inputs_for_the_layers_draw_integers_and_seeds():
    rng = np.random.default_rng(0)
    emb = sample_inputs(KERNELS["embedding"], rng)
    assert emb["idx"].dtype.kind == "i" and emb["table"].dtype == np.float64
    assert KERNELS["embedding"].grad_inputs == ("table",)
    drop = sample_inputs(KERNELS["dropout"], rng, dtype="float32")
    assert isinstance(drop["seed"], int) and drop["x"].dtype == np.float32
    assert KERNELS["maxpool2d"].ties and KERNELS["dropout"].ties


# --- forwards against written-out references -----------------------------------------


def test_softmax_gelu_forward(K):
    rng = np.random.default_rng(0)
    z = u(rng, 3, 4, lo=-6, hi=6)
    p, _ = K.softmax_forward(z)
    e = np.exp(z)
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-14)
    approx = 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))
    # 1 + tanh cancels in the negative tail (the tanh form's own rounding): atol there.
    np.testing.assert_allclose(K.gelu_forward(z)[0], approx, rtol=1e-14, atol=1e-15)
    exact = np.vectorize(lambda v: 0.5 * v * math.erfc(-v / math.sqrt(2)))(z)
    np.testing.assert_allclose(K.gelu_forward(z, approximate=False)[0], exact, rtol=1e-13)
    # The negative tail keeps its relative precision (1 + erf would round to 0).
    tail = K.gelu_forward(np.array([-10.0]), approximate=False)[0]
    np.testing.assert_allclose(tail, [-10 * 0.5 * math.erfc(10 / math.sqrt(2))], rtol=1e-13)


@needs_jax
def test_gelu_and_softmax_equal_jax_nn():
    import jax

    K = get_backend("jax")
    z = u(np.random.default_rng(2), 5, 7, lo=-6, hi=6)
    close(K.gelu_forward(z)[0], jax.nn.gelu(z, approximate=True), "gelu tanh")
    close(K.gelu_forward(z, approximate=False)[0], jax.nn.gelu(z, approximate=False), "gelu")
    close(K.softmax_forward(z)[0], jax.nn.softmax(z), "softmax")


def test_layernorm_and_batchnorm_forward(K):
    rng = np.random.default_rng(0)
    x, gamma, beta = u(rng, 4, 5), u(rng, 5), u(rng, 5)
    out, cache = K.layernorm_forward(x, gamma, beta)
    mu, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    np.testing.assert_allclose(out, gamma * (x - mu) / np.sqrt(var + 1e-5) + beta, rtol=1e-12)
    np.testing.assert_allclose(cache.mean, mu, rtol=1e-13)
    x4, g2, b2 = u(rng, 3, 2, 4, 5), u(rng, 2), u(rng, 2)
    out, cache = K.batchnorm_forward(x4, g2, b2, eps=1e-3)
    mu, var = x4.mean((0, 2, 3)), x4.var((0, 2, 3))
    ref = g2[:, None, None] * (x4 - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3)
    np.testing.assert_allclose(out, ref + b2[:, None, None], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(cache.mean, mu, rtol=1e-13)  # for running averages
    np.testing.assert_allclose(cache.var, var, rtol=1e-13)
    assert cache.mean.shape == cache.var.shape == (2,)


def test_batchnorm_of_one_row_and_layernorm_of_a_constant_row(K):
    """var = 0: xhat = 0 and out = beta; dx = (g - mean g) / sqrt(eps), g = dout gamma."""
    x = np.array([[3.0, -1.0, 2.0]])
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.5, -0.5, 0.25])
    out, cache = K.batchnorm_forward(x, gamma, beta)
    np.testing.assert_array_equal(out, beta[None])  # var 0: xhat 0, out beta
    dx, dgamma, dbeta = K.batchnorm_backward(np.ones((1, 3)), cache)
    np.testing.assert_array_equal(dx, 0.0)
    np.testing.assert_array_equal(dgamma, 0.0)
    np.testing.assert_array_equal(dbeta, 1.0)
    out, cache = K.layernorm_forward(np.full((2, 3), 0.1), gamma, beta)
    np.testing.assert_array_equal(out, np.stack([beta, beta]))
    dx = K.layernorm_backward(np.ones((2, 3)), cache)[0]
    np.testing.assert_allclose(dx, np.tile((gamma - gamma.mean()) / np.sqrt(1e-5), (2, 1)))


def test_dropout_mask_and_routing(K):
    x = u(np.random.default_rng(0), 200, 100)
    out, mask = K.dropout_forward(x, 0.0, 3)
    np.testing.assert_array_equal(out, x)  # p = 0 is the identity
    out, mask = K.dropout_forward(x, 0.25, 3)
    mask = np.asarray(mask)
    assert set(np.unique(mask)) == {0.0, 1 / 0.75}
    assert abs((mask == 0).mean() - 0.25) < 0.01  # 20,000 draws
    np.testing.assert_array_equal(out, x * mask)
    np.testing.assert_array_equal(K.dropout_forward(x, 0.25, 3)[1], mask)  # same seed, same mask
    assert not np.array_equal(K.dropout_forward(x, 0.25, 4)[1], mask)
    g = u(np.random.default_rng(1), 200, 100)
    dx = np.asarray(K.dropout_backward(g, mask))
    np.testing.assert_array_equal(dx[mask == 0], 0.0)  # a dropped entry gets exactly 0
    np.testing.assert_allclose(dx[mask > 0], g[mask > 0] / 0.75, rtol=1e-15)


def test_dropout_takes_each_backend_s_seeds():
    K = get_backend("numpy")
    x = np.ones((3, 4))
    rng = np.random.default_rng(0)
    a, b = K.dropout_forward(x, 0.5, rng)[1], K.dropout_forward(x, 0.5, rng)[1]
    assert not np.array_equal(a, b)  # a Generator advances
    if HAVE_JAX:
        import jax

        J = get_backend("jax")
        for seed in (jax.random.key(1), jax.random.PRNGKey(1), 1):
            np.testing.assert_array_equal(
                J.dropout_forward(x, 0.5, seed)[1], J.dropout_forward(x, 0.5, 1)[1]
            )
        with pytest.raises(TypeError, match="seed must be an int or a JAX key"):
            J.dropout_forward(x, 0.5, rng)
    with pytest.raises(TypeError, match=r"seed must be an int or a numpy\.random\.Generator"):
        K.dropout_forward(x, 0.5, "0")


def test_embedding_sums_repeated_indices(K):
    table = u(np.random.default_rng(0), 4, 3)
    idx = np.array([[1, 1, 3], [1, 0, 3]])
    out, cache = K.embedding_forward(idx, table)
    np.testing.assert_array_equal(out, table[idx])
    g = u(np.random.default_rng(1), 2, 3, 3)
    dtable = np.asarray(K.embedding_backward(g, cache))
    np.testing.assert_allclose(dtable[1], g[0, 0] + g[0, 1] + g[1, 0], rtol=1e-15)
    np.testing.assert_allclose(dtable[3], g[0, 2] + g[1, 2], rtol=1e-15)
    np.testing.assert_allclose(dtable[0], g[1, 1], rtol=1e-15)
    np.testing.assert_array_equal(dtable[2], 0.0)


def conv_reference(x, w, b, s, p):
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
    out = np.zeros((n, f, ho, wo))
    for i, j in itertools.product(range(ho), range(wo)):
        window = xp[:, :, s * i : s * i + kh, s * j : s * j + kw]
        out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


def pool_reference(x, k, s):
    """Max pooling and its routing, window by window: the first maximum (argmax) wins."""
    n, c, h, wd = x.shape
    ho, wo = (h - k) // s + 1, (wd - k) // s + 1
    out, route = np.zeros((n, c, ho, wo)), np.zeros((n, c, ho, wo, h, wd))
    for a, b, i, j in itertools.product(range(n), range(c), range(ho), range(wo)):
        window = x[a, b, s * i : s * i + k, s * j : s * j + k]
        out[a, b, i, j] = window.max()
        u_, v_ = divmod(int(np.argmax(window)), k)
        route[a, b, i, j, s * i + u_, s * j + v_] = 1.0
    return out, route


@pytest.mark.parametrize(("s", "p"), [(1, 0), (2, 1), (3, 2), (1, 3)])
def test_conv2d_forward_against_the_sum(K, s, p):
    rng = np.random.default_rng(s + p)
    x, w, b = u(rng, 2, 3, 6, 5), u(rng, 4, 3, 3, 2), u(rng, 4)
    out, _ = K.conv2d_forward(x, w, b, stride=s, padding=p)
    np.testing.assert_allclose(out, conv_reference(x, w, b, s, p), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("k", "s"), [(2, None), (3, 1), (2, 3)])
def test_maxpool2d_forward_and_tie_routing(K, k, s):
    # Values in {0, 1, 2}: most windows hold ties.
    x = np.random.default_rng(k).integers(0, 3, (2, 2, 7, 6)).astype(np.float64)
    out, cache = K.maxpool2d_forward(x, size=k, stride=s)
    ref, route = pool_reference(x, k, s or k)
    np.testing.assert_array_equal(out, ref)
    g = u(np.random.default_rng(0), *ref.shape)
    np.testing.assert_allclose(
        K.maxpool2d_backward(g, cache), np.einsum("ncij,ncijhw->nchw", g, route), rtol=1e-15
    )


def test_attention_forward_and_causal_mask(K):
    rng = np.random.default_rng(0)
    q, k, v = u(rng, 2, 4, 3), u(rng, 2, 4, 3), u(rng, 2, 4, 5)
    s = q @ k.transpose(0, 2, 1) / math.sqrt(3)
    e = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(
        K.attention_forward(q, k, v)[0], (e / e.sum(-1, keepdims=True)) @ v, rtol=1e-13
    )
    out, cache = K.attention_forward(q, k, v, causal=True)
    k2, v2 = k.copy(), v.copy()
    k2[:, 2:], v2[:, 2:] = 9.0, -9.0  # later keys cannot change query 0 and 1
    np.testing.assert_array_equal(K.attention_forward(q, k2, v2, causal=True)[0][:, :2], out[:, :2])
    np.testing.assert_array_equal(np.triu(np.asarray(cache[3])[0], 1), 0.0)


# --- extremes ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_finite_and_silent_at_the_extremes(K, dtype):
    big = float(np.finfo(dtype).max)
    z = np.array([[-big, -1e4, -10.0, 0.0, 10.0, 1e4, big]], dtype)
    for approximate in (True, False):
        out, cache = K.gelu_forward(z, approximate=approximate)
        out = np.asarray(out)
        assert np.all(np.isfinite(out)) and out[0, 5] == 1e4 and out[0, 1] == 0
        assert np.all(np.isfinite(K.gelu_backward(np.ones_like(z), cache)))
    s = np.array([[-1e4, 0.0, 1e4], [1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]], dtype)
    p, cache = K.softmax_forward(s)
    np.testing.assert_allclose(p, [[0, 0, 1], [1 / 3] * 3, [1 / 3] * 3], rtol=1e-6)
    assert np.all(np.isfinite(K.softmax_backward(np.ones_like(s), cache)))
    x = np.array([[-1e4, 0.0, 1e4], [1e4, 1e4, 1e4]], dtype)
    ones = np.ones(3, dtype)
    for fwd, bwd in (
        (K.layernorm_forward, K.layernorm_backward),
        (K.batchnorm_forward, K.batchnorm_backward),
    ):
        out, cache = fwd(x, ones, ones)
        assert np.all(np.isfinite(out))
        assert all(np.all(np.isfinite(g)) for g in bwd(np.ones_like(x), cache))
    q = np.full((1, 3, 4), 50.0, dtype)
    k = np.array([[[50.0] * 4, [-50.0] * 4, [0.0] * 4]], dtype)  # scores of +-5e3, 0
    out, cache = K.attention_forward(q, k, q, causal=True)
    assert np.all(np.isfinite(out))
    assert all(np.all(np.isfinite(g)) for g in K.attention_backward(np.ones_like(out), cache))


# --- bad input: a clear error naming the argument ------------------------------------


def _bad_inputs():
    r = np.random.default_rng(0)
    x4, w4, b = u(r, 1, 2, 4, 4), u(r, 3, 2, 3, 3), u(r, 3)
    q = u(r, 2, 3, 4)
    return [
        ("softmax", (np.zeros((2, 0)),), {}, ValueError, "z must have at least one entry"),
        ("gelu", (np.zeros(3),), {"approximate": "yes"}, TypeError, "approximate must be"),
        (
            "layernorm",
            (u(r, 2, 3), u(r, 4), u(r, 3)),
            {},
            ValueError,
            r"gamma must have shape \(3,\)",
        ),
        ("layernorm", (u(r, 2, 3), u(r, 3), u(r, 3)), {"eps": 0.0}, ValueError, "eps must be > 0"),
        ("batchnorm", (u(r, 3),), {"gamma": u(r, 3), "beta": u(r, 3)}, ValueError, "x must be"),
        ("batchnorm", (u(r, 3, 2), u(r, 2), u(r, 3)), {}, ValueError, "beta must have shape"),
        ("dropout", (u(r, 3), 1.0, 0), {}, ValueError, r"p must be in \[0, 1\)"),
        ("dropout", (u(r, 3), -0.1, 0), {}, ValueError, "p must hold values"),
        (
            "embedding",
            (np.array([0, 4]), u(r, 4, 2)),
            {},
            ValueError,
            r"idx must hold row numbers in \[0, 4\)",
        ),
        ("embedding", (np.array([-1]), u(r, 4, 2)), {}, ValueError, "idx must hold row numbers"),
        ("embedding", (np.array([0.0]), u(r, 4, 2)), {}, TypeError, "idx must be an integer array"),
        ("embedding", (np.array([0]), u(r, 4)), {}, ValueError, r"table must be \(V, D\)"),
        ("conv2d", (u(r, 2, 4, 4), w4, b), {}, ValueError, r"x must be \(N, C, H, W\)"),
        ("conv2d", (x4, u(r, 3, 1, 3, 3), b), {}, ValueError, "w must be .* C = 2 channels"),
        ("conv2d", (x4, w4, u(r, 2)), {}, ValueError, r"b must have shape \(3,\)"),
        ("conv2d", (x4, w4, b), {"stride": 0}, ValueError, "stride must be an integer >= 1"),
        ("conv2d", (x4, w4, b), {"padding": -1}, ValueError, "padding must be an integer >= 0"),
        ("conv2d", (x4, u(r, 3, 2, 5, 5), b), {}, ValueError, "smaller than the window"),
        ("maxpool2d", (x4,), {"size": 5}, ValueError, "smaller than the window"),
        ("maxpool2d", (x4,), {"stride": 1.5}, ValueError, "stride must be an integer"),
        ("attention", (q, u(r, 2, 3, 5), q), {}, ValueError, "k must have q's d = 4"),
        ("attention", (q, q, u(r, 2, 2, 4)), {}, ValueError, "v must have one row per key"),
        ("attention", (q, u(r, 3, 3, 4), q), {}, ValueError, "k must have q's leading"),
        ("attention", (q, u(r, 2, 5, 4), u(r, 2, 5, 4)), {"causal": True}, ValueError, "causal"),
        ("attention", (q, q, q), {"causal": 1}, TypeError, "causal must be True or False"),
    ]


@pytest.mark.parametrize(("name", "args", "kwargs", "error", "message"), _bad_inputs())
def test_bad_input_is_refused_naming_the_argument(K, name, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        getattr(K, f"{name}_forward")(*args, **kwargs)


def test_bad_upstream_gradient_is_refused(K):
    _, cache = K.conv2d_forward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.ones(1))
    with pytest.raises(ValueError, match=r"dout must have shape \(1, 1, 2, 2\)"):
        K.conv2d_backward(np.ones((1, 1, 3, 3)), cache)


# --- hypothesis properties (few examples: the registry suite draws many more) --------


# Each property runs on NumPy in the default run; on JAX (compiling every new
# shape, several seconds per property) it is marked slow and also compared
# with NumPy to 1e-12.
PROPERTY_BACKENDS = ["numpy", pytest.param("jax", marks=[needs_jax, pytest.mark.slow])]


def both(backend, fn):
    """``fn(K)`` on ``backend`` (and on NumPy too, for JAX); results as NumPy arrays."""
    names = ["numpy"] if backend == "numpy" else ["numpy", backend]
    return [[np.asarray(a) for a in fn(get_backend(n))] for n in names]


def agree(results, what):
    for a, b in zip(results[-1], results[0], strict=True):
        close(a, b, what)


rows_with_constants = st.integers(1, 5).flatmap(
    lambda d: hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.just(d)),
        elements=st.sampled_from([-2.0, 0.0, 0.5, 3.0]) | st.floats(-3, 3),
    )
)


@pytest.mark.parametrize("backend", PROPERTY_BACKENDS)
@settings(max_examples=10)
@given(x=rows_with_constants, which=st.sampled_from(["layernorm", "batchnorm"]))
def test_norms_on_any_rows_including_constant_ones(backend, x, which):
    d = x.shape[1]
    gamma, beta = np.linspace(0.5, 2, d), np.linspace(-1, 1, d)

    def fn(K):
        out, cache = getattr(K, f"{which}_forward")(x, gamma, beta)
        return (out, *getattr(K, f"{which}_backward")(np.ones_like(x) + x, cache))

    results = both(backend, fn)
    agree(results, which)
    out, dx = results[0][0], results[0][1]
    constant = np.all(x == x[:, :1], axis=1) if which == "layernorm" else None
    if which == "batchnorm":
        constant = np.all(x == x[:1], axis=0)  # constant columns
        assert np.all(out[:, constant] == beta[constant])
        if len(x) == 1:
            assert np.all(dx == 0)  # a batch of one: every column is constant
    else:
        assert np.all(out[constant] == beta)
        g = (np.ones_like(x) + x) * gamma
        want = (g - g.mean(axis=1, keepdims=True)) / np.sqrt(1e-5)
        np.testing.assert_allclose(dx[constant], want[constant], rtol=1e-12, atol=1e-9)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx))


@pytest.mark.parametrize("backend", PROPERTY_BACKENDS)
@settings(max_examples=10)
@given(
    x=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(2, 6), st.integers(2, 6)),
        elements=st.sampled_from([0.0, 1.0, 2.0]),
    ),
    k=st.integers(1, 2),
    s=st.integers(1, 3),
)
def test_pooling_ties_go_to_the_first_maximum(backend, x, k, s):
    out_ref, route = pool_reference(x, k, s)
    g = np.arange(1.0, out_ref.size + 1).reshape(out_ref.shape)

    def fn(K):
        out, cache = K.maxpool2d_forward(x, size=k, stride=s)
        return out, K.maxpool2d_backward(g, cache)

    for out, dx in both(backend, fn):
        np.testing.assert_array_equal(out, out_ref)
        np.testing.assert_array_equal(dx, np.einsum("ncij,ncijhw->nchw", g, route))


@pytest.mark.parametrize("backend", PROPERTY_BACKENDS)
@settings(max_examples=10)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    f=st.integers(1, 3),
    hw=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_conv2d_any_shape_stride_padding(backend, n, c, f, hw, k, s, p, seed):
    if hw[0] + 2 * p < k[0] or hw[1] + 2 * p < k[1]:
        return  # no output: refused (test_bad_input_is_refused_naming_the_argument)
    r = np.random.default_rng(seed)
    x, w, b = u(r, n, c, *hw), u(r, f, c, *k), u(r, f)
    results = both(
        backend, lambda K: (K.conv2d_forward(x, w, b, s, p)[0], *run_conv(K, x, w, b, s, p))
    )
    agree(results, "conv2d")
    np.testing.assert_allclose(results[0][0], conv_reference(x, w, b, s, p), atol=1e-12)


def run_conv(K, x, w, b, s, p):
    out, cache = K.conv2d_forward(x, w, b, stride=s, padding=p)
    return K.conv2d_backward(np.ones(out.shape) + np.asarray(out), cache)


@pytest.mark.parametrize("backend", PROPERTY_BACKENDS)
@settings(max_examples=10)
@given(
    lead=st.lists(st.integers(1, 2), max_size=2).map(tuple),
    t=st.integers(1, 5),
    extra=st.integers(0, 2),
    d=st.integers(1, 4),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_attention_any_shape(backend, lead, t, extra, d, causal, seed):
    tk = t if causal else t + extra
    r = np.random.default_rng(seed)
    q, k, v = u(r, *lead, t, d), u(r, *lead, tk, d), u(r, *lead, tk, d + 1)

    def fn(K):
        out, cache = K.attention_forward(q, k, v, causal=causal)
        return (out, *K.attention_backward(out + 1.0, cache))

    results = both(backend, fn)
    agree(results, "attention")
    assert results[0][0].shape == (*lead, t, d + 1)


@pytest.mark.parametrize("backend", PROPERTY_BACKENDS)
@settings(max_examples=10)
@given(
    idx=hnp.arrays(np.int64, hnp.array_shapes(max_dims=3, max_side=4), elements=st.integers(0, 3)),
    d=st.integers(1, 3),
)
def test_embedding_scatter_adds_every_position(backend, idx, d):
    table = np.arange(4.0 * d).reshape(4, d)
    g = np.random.default_rng(0).standard_normal((*idx.shape, d))
    want = np.zeros((4, d))
    for pos in np.ndindex(idx.shape):
        want[idx[pos]] += g[pos]

    def fn(K):
        out, cache = K.embedding_forward(idx, table)
        return out, K.embedding_backward(g, cache)

    for out, dtable in both(backend, fn):
        np.testing.assert_array_equal(out, table[idx])
        np.testing.assert_allclose(dtable, want, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("backend", PROPERTY_BACKENDS)
@settings(max_examples=10)
@given(p=st.floats(0.0, 0.9), seed=st.integers(0, 2**31), shape=hnp.array_shapes(max_side=5))
def test_dropout_routes_through_its_own_mask(backend, p, seed, shape):
    x = np.random.default_rng(seed).standard_normal(shape)
    g = np.random.default_rng(seed + 1).standard_normal(shape)
    K = get_backend(backend)
    out, mask = K.dropout_forward(x, p, seed)
    mask = np.asarray(mask)
    assert np.all((mask == 0) | np.isclose(mask, 1 / (1 - p), rtol=1e-15))
    np.testing.assert_array_equal(out, x * mask)
    np.testing.assert_array_equal(K.dropout_backward(g, mask), g * mask)


@pytest.mark.parametrize("rows", [6, 300])
def test_embedding_backward_s_numpy_routes_give_the_same_sums(monkeypatch, rows):
    """NumPy's three routes to dtable (the one-hot product; sorting, then one product with
    ones per index or numpy.add.reduceat over many indices) give the per-index sums."""
    from backprop.kernels import embedding

    K = get_backend("numpy")
    rng = np.random.default_rng(0)
    idx, table = rng.integers(0, rows, (97, 3)), u(rng, rows, 4)
    out, cache = K.embedding_forward(idx, table)
    g = u(rng, *out.shape)
    want = np.zeros_like(table)
    for i, row in zip(idx.ravel(), g.reshape(-1, 4), strict=True):
        want[i] += row
    routes = {"one-hot": (10**9, 10**9, 256), "per index": (0, 0, 10**9), "reduceat": (0, 0, 0)}
    for name, (limit, one_hot_rows, loop) in routes.items():
        monkeypatch.setattr(embedding, "_ONE_HOT_LIMIT", limit)
        monkeypatch.setattr(embedding, "_ONE_HOT_ROWS", one_hot_rows)
        monkeypatch.setattr(embedding, "_SEGMENT_LOOP", loop)
        np.testing.assert_allclose(K.embedding_backward(g, cache), want, rtol=1e-13, err_msg=name)
