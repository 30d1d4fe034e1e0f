"""Networks of layers: the hand-composed gradient equals jax.grad of the same
forward, NumPy equals JAX, modes, containers, training, input errors."""

from __future__ import annotations

import numpy as np
import pytest

from backprop import models
from backprop.kernels import get_backend
from backprop.layers import (
    Activation,
    BatchNorm,
    Conv2d,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    MaxPool2d,
)
from backprop.network import Residual, count_params, leaves, rebuild, serial
from backprop.train_net import loss_and_grad, predict, train_net
from tests.conftest import HAVE_JAX

needs_jax = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
SLOW = pytest.mark.slow  # compiling a CNN's or a GPT's gradient on JAX takes 3-15 s on 2 cores

RNG = np.random.default_rng(0)
CASES = {
    # name: (network, in_shape, x, y)
    "cnn": (
        models.cnn(10, (3, 4), hidden=5),
        (1, 8, 8),
        RNG.standard_normal((6, 1, 8, 8)),
        RNG.integers(0, 10, 6),
    ),
    "gpt": (
        models.gpt(11, 5, dim=8, heads=2, blocks=2),
        (5,),
        RNG.integers(0, 11, (3, 5)),
        RNG.integers(0, 11, (3, 5)),
    ),
    "ninja": (models.ninja(11, 3, 4, 6), (3,), RNG.integers(0, 11, (7, 3)), RNG.integers(0, 11, 7)),
}


def _loss_autodiff(net, state, x, y, key):
    import jax
    import jax.numpy as jnp

    K = get_backend("jax")

    def loss(p):
        out = net.forward(K, p, state, jnp.asarray(x), True, key)[0]
        z = out.reshape(-1, out.shape[-1])
        onehot = jax.nn.one_hot(jnp.asarray(y).reshape(-1), z.shape[1], dtype=z.dtype)
        return K.softmax_cross_entropy_forward(z, onehot)[0]

    return loss


@needs_jax
@pytest.mark.parametrize(
    "name", [pytest.param("cnn", marks=SLOW), pytest.param("gpt", marks=SLOW), "ninja"]
)
def test_hand_gradient_equals_jax_grad(name):
    import jax
    import jax.numpy as jnp

    net, in_shape, x, y = CASES[name]
    params, state, _ = net.init(0, in_shape, "float64")
    params = jax.tree_util.tree_map(jnp.asarray, params)
    state = jax.tree_util.tree_map(jnp.asarray, state)
    key = jax.random.key(3)
    want = jax.jit(jax.grad(_loss_autodiff(net, state, x, y, key)))(params)

    def hand(p):
        return loss_and_grad(get_backend("jax"), net, p, state, jnp.asarray(x), y, key)

    loss, got, _ = jax.jit(hand)(params)
    got_leaves, want_leaves = leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves) == len(leaves(params))
    for g, w in zip(got_leaves, want_leaves, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=1e-10)
    assert float(loss) > 0


@needs_jax
@pytest.mark.parametrize(
    "name", [pytest.param("cnn", marks=SLOW), pytest.param("gpt", marks=SLOW), "ninja"]
)
def test_numpy_equals_jax(name):
    import jax.numpy as jnp

    net, in_shape, x, y = CASES[name]
    # Dropout draws different masks on the two backends: compare in a net without it.
    net = serial(*(layer for layer in net.layers if not isinstance(layer, Dropout)))
    params, state, _ = net.init(1, in_shape, "float64")
    ln, gn, sn = loss_and_grad(get_backend("numpy"), net, params, state, x, y, None)
    jp = rebuild(params, [jnp.asarray(a) for a in leaves(params)])
    js = rebuild(state, [jnp.asarray(a) for a in leaves(state)])
    import jax

    def run(p, s):
        return loss_and_grad(get_backend("jax"), net, p, s, jnp.asarray(x), y, None)

    lj, gj, sj = jax.jit(run)(jp, js)
    np.testing.assert_allclose(float(ln), float(lj), rtol=1e-12)
    for a, b in zip(leaves(gn) + leaves(sn), leaves(gj) + leaves(sj), strict=True):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        net.apply(params, sn, x), np.asarray(net.apply(jp, sj, jnp.asarray(x), "jax")), atol=1e-12
    )


def test_eval_mode_batchnorm_gradient_by_differences():
    # Evaluation mode has its own small derivation (an affine map); check it by differences.
    net = serial(Dense(4), BatchNorm(), Activation("tanh"), Dense(3))
    params, state, _ = net.init(0, (5,), "float64")
    state = ({}, {"mean": RNG.standard_normal(4), "var": RNG.uniform(0.5, 2, 4)}, {}, {})
    x = RNG.standard_normal((6, 5))
    K = get_backend("numpy")
    out, cache, _ = net.forward(K, params, state, x, False)
    dout = RNG.standard_normal(out.shape)
    dx, grads = net.backward(K, params, cache, dout)

    def f(p, xx):
        return float((net.forward(K, p, state, xx, False)[0] * dout).sum())

    eps = 1e-6
    arrays = leaves(params)
    for i, a in enumerate(arrays):
        for j in range(min(a.size, 3)):
            up = [b.copy() for b in arrays]
            dn = [b.copy() for b in arrays]
            up[i].flat[j] += eps
            dn[i].flat[j] -= eps
            num = (f(rebuild(params, up), x) - f(rebuild(params, dn), x)) / (2 * eps)
            assert abs(num - leaves(grads)[i].flat[j]) < 1e-7
    e = np.zeros_like(x)
    e[0, 0] = eps
    assert abs((f(params, x + e) - f(params, x - e)) / (2 * eps) - dx[0, 0]) < 1e-7


def test_modes_dropout_and_running_averages():
    net = serial(BatchNorm(momentum=0.5), Dropout(0.5))
    params, state, _ = net.init(0, (3,), "float64")
    x = RNG.standard_normal((8, 3)) * 2 + 1
    K = get_backend("numpy")
    out, _, new = net.forward(K, params, state, x, True, np.random.default_rng(0))
    assert np.any(out == 0)  # dropout on in training mode
    np.testing.assert_allclose(new[0]["mean"], 0.5 * x.mean(0))
    np.testing.assert_allclose(new[0]["var"], 0.5 + 0.5 * x.var(0))
    ev, _, same = net.forward(K, params, new, x, False)
    np.testing.assert_allclose(ev, (x - new[0]["mean"]) / np.sqrt(new[0]["var"] + 1e-5))
    assert same[0]["mean"] is new[0]["mean"]  # evaluation leaves the state alone


def test_residual_adds_the_input_and_its_gradient():
    net = serial(Residual(Dense(3), Activation("tanh")))
    params, state, _ = net.init(0, (3,), "float64")
    x = RNG.standard_normal((4, 3))
    K = get_backend("numpy")
    out, cache, _ = net.forward(K, params, state, x, True)
    inner = np.tanh(x @ params[0][0]["w"] + params[0][0]["b"])
    np.testing.assert_allclose(out, x + inner)
    dx, _ = net.backward(K, params, cache, np.ones_like(out))
    np.testing.assert_allclose(dx, 1 + (1 - inner**2) @ params[0][0]["w"].T)


def test_shapes_and_counts():
    net = models.cnn()
    params, state, out = net.init(0, (1, 8, 8), "float32")
    assert out == (10,)
    assert all(a.dtype == np.float32 for a in leaves(params) + leaves(state))
    # conv 16*1*9+16, bn 32, conv 32*16*9+32, bn 64, dense 512*10+10
    assert count_params(params) == 160 + 32 + 4640 + 64 + 5130
    gpt = models.gpt(20, 8, dim=16, heads=4, blocks=1)
    _, _, out = gpt.init(0, (8,), "float64")
    assert out == (8, 20)


def test_input_errors():
    with pytest.raises(ValueError, match=r"activation must be one of .*relu"):
        Activation("nope")
    with pytest.raises(ValueError, match="units must be an integer >= 1"):
        Dense(0)
    with pytest.raises(ValueError, match="p must be a number in"):
        Dropout(1.0)
    with pytest.raises(TypeError, match=r"layer 1 must be a backprop\.layers\.Layer"):
        serial(Dense(2), "relu")
    with pytest.raises(ValueError, match="Conv2d needs images"):
        serial(Conv2d(2)).init(0, (8,))
    with pytest.raises(ValueError, match="MaxPool2d"):
        serial(MaxPool2d(4)).init(0, (1, 2, 2))
    with pytest.raises(ValueError, match="Residual needs layers that keep the shape"):
        serial(Residual(Dense(2))).init(0, (3,))
    net = serial(Flatten(), Dense(2))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        train_net(net, np.zeros((4, 3)), np.zeros(4, int), optimizer="lion")
    with pytest.raises(ValueError, match="schedule must be one of"):
        train_net(net, np.zeros((4, 3)), np.zeros(4, int), schedule="step")
    with pytest.raises(ValueError, match="same rows"):
        train_net(net, np.zeros((4, 3)), np.zeros(5, int))
    with pytest.raises(ValueError, match="integer classes"):
        train_net(net, np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="Dropout in training mode needs a key"):
        serial(Dropout(0.1)).forward(get_backend("numpy"), ({},), ({},), np.ones((2, 2)), True)


def _blobs():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    X = rng.standard_normal((120, 1, 4, 4)) * 0.5 + y[:, None, None, None]
    return X, y


@pytest.mark.parametrize("backend", ["numpy", pytest.param("jax", marks=[needs_jax, SLOW])])
def test_train_net_learns(backend):
    X, y = _blobs()
    net = serial(Conv2d(4, 3, padding=1), BatchNorm(), Activation("relu"), MaxPool2d(2))
    net = serial(*net.layers, Dropout(0.1), Flatten(), Dense(3, gain=1.0))
    seen = []
    r = train_net(
        net,
        X,
        y,
        lr=3e-2,
        weight_decay=1e-2,
        clip_norm=1.0,
        schedule="cosine",
        epochs=8,
        batch_size=16,
        validation=(X, y),
        backend=backend,
        progress=lambda e, loss: seen.append(e),
    )
    assert seen == list(range(1, 9))
    assert r.losses[-1] < r.losses[0]
    assert r.val_accuracies[-1] > 0.9
    assert (predict(net, r.params, r.state, X).argmax(1) == y).mean() > 0.9


def test_clipping_and_weight_decay_one_step():
    # One SGD step on a linear net by hand: w' = w - lr wd w - lr g * min(1, c / |g|).
    from backprop.optim import make_optimizer
    from backprop.train_net import make_step

    K = get_backend("numpy")
    net = serial(Dense(2, gain=1.0))
    params, state, _ = net.init(0, (3,), "float64")
    x, y = RNG.standard_normal((5, 3)), RNG.integers(0, 2, 5)
    _, g, _ = loss_and_grad(K, net, params, state, x, y, None)
    norm = np.sqrt(sum((a**2).sum() for a in leaves(g)))
    c, lr, wd = 0.5 * norm, 0.1, 0.3
    step = make_step(K, net, make_optimizer("sgd", lr), wd, c)
    new, _, _, _ = step(params, state, (), lr, x, y, None)
    w, b = params[0]["w"], params[0]["b"]
    np.testing.assert_allclose(new[0]["w"], w - lr * wd * w - lr * g[0]["w"] * 0.5, rtol=1e-6)
    np.testing.assert_allclose(new[0]["b"], b - lr * g[0]["b"] * 0.5, rtol=1e-6)


def test_embedding_first_layer_has_no_input_gradient():
    net = serial(Embedding(5, 2), Flatten(), Dense(2))
    params, state, _ = net.init(0, (3,), "float64")
    K = get_backend("numpy")
    out, cache, _ = net.forward(K, params, state, np.array([[0, 1, 1]]), True)
    dx, grads = net.backward(K, params, cache, np.ones_like(out))
    assert dx is None
    assert grads[0]["table"].shape == (5, 2)
    assert np.all(grads[0]["table"][2:] == 0)


@needs_jax
@SLOW
def test_jax_step_by_step_equals_one_scan_per_epoch():
    X, y = _blobs()
    net = serial(Conv2d(2, 3), BatchNorm(), Activation("relu"), Dropout(0.2), Flatten(), Dense(3))
    kw = dict(epochs=2, batch_size=40, dtype="float64", backend="jax", weight_decay=0.1)
    a = train_net(net, X, y, compile="step", **kw)
    b = train_net(net, X, y, compile="epoch", **kw)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-12)
    for u, v in zip(leaves((a.params, a.state)), leaves((b.params, b.state)), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="compile must be one of step, epoch"):
        train_net(net, X, y, compile="all")


@needs_jax
@SLOW  # a fresh process (x64 off, as for a user): ~5 s
def test_float64_on_jax_is_float64_without_the_user_turning_x64_on():
    """train_net(dtype="float64", backend="jax") trains in float64 (equal to NumPy's to 1e-10)
    with JAX's x64 mode off, and leaves it off."""
    from tests.test_distributed import _python

    out = _python(
        """
        import jax, numpy as np
        from backprop import models
        from backprop.train_net import train_net
        rng = np.random.default_rng(0)
        X, y = rng.integers(0, 11, (40, 3)), rng.integers(0, 11, 40)
        kw = dict(epochs=3, batch_size=8, dtype="float64", validation=(X, y))
        a = train_net(models.ninja(11, 3, 4, 6), X, y, backend="jax", **kw)
        b = train_net(models.ninja(11, 3, 4, 6), X, y, backend="numpy", **kw)
        leaves = jax.tree.leaves(a.params)
        assert all(p.dtype == np.float64 for p in leaves), [p.dtype for p in leaves]
        np.testing.assert_allclose(a.losses, b.losses, rtol=1e-10)
        np.testing.assert_allclose(a.val_losses, b.val_losses, rtol=1e-10)
        for u, v in zip(leaves, jax.tree.leaves(b.params), strict=True):
            np.testing.assert_allclose(u, v, rtol=1e-8, atol=1e-12)
        print(jax.config.jax_enable_x64)
        """,
        devices=1,
    )
    assert out.split() == ["False"]
