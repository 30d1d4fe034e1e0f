"""Every fast path held to the derivation it transcribes (backprop.fast.TRANSCRIPTIONS).

For each transcription, on each backend it runs on, in float32 and float64:
the loss and every gradient equal the source's on random parameters and on
saturated ones (an output logit of +-40, hidden units pinned at 0 or 1,
weights of 30), and whole training runs follow the source's step by step.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from backprop.data import xor_data
from backprop.fast import TRANSCRIPTIONS
from backprop.kernels import get_backend, registry
from backprop.optim import OPTIMIZERS
from backprop.xor import XorParams, init_xor_params, xor_loss_and_grads, xor_step
from tests.conftest import HAVE_JAX

XOR_PATHS = [t for t in TRANSCRIPTIONS if t.source == "backprop.xor.xor_loss_and_grads"]
TOLERANCE = {"float64": 1e-12, "float32": 2e-6}


def _cases(dtype):
    """Random and saturated parameters for a 2-H-1 network."""
    cases = {f"random seed {s}, H={h}": init_xor_params(h, s, dtype) for s, h in [(0, 2), (5, 3)]}
    saturated = {
        "output logit +40 (the issue's b2 = 40)": ([[1, -1], [1, -1]], [0, 0], [[1], [1]], [40]),
        "output logit -40": ([[1, -1], [1, -1]], [0, 0], [[1], [1]], [-40]),
        "hidden units pinned at 0 and 1": ([[30, -30], [30, -30]], [5, -5], [[2], [-3]], [0.5]),
        "large weights everywhere": ([[30, 25], [-28, 31]], [-3, 2], [[-30], [29]], [1]),
    }
    for name, arrays in saturated.items():
        cases[name] = XorParams(*(np.asarray(a, dtype) for a in arrays))
    return cases


NEEDS_JAX = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
XOR_CASES = [
    pytest.param(
        t,
        backend,
        id=f"{t.module.rsplit('.', 1)[1]}-{backend}",
        marks=[NEEDS_JAX] if backend == "jax" else [],
    )
    for t in XOR_PATHS
    for backend in t.backends
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("transcription", "backend"), XOR_CASES)
def test_xor_transcription_gives_the_source_s_loss_and_every_gradient(
    transcription, backend, dtype
):
    fast = importlib.import_module(transcription.module)
    X, y = xor_data(dtype)
    K_ref, K = get_backend("numpy"), get_backend(backend)
    tol = TOLERANCE[dtype]
    for name, params in _cases(dtype).items():
        with np.errstate(over="ignore"):
            cost, grads = xor_loss_and_grads(K_ref, params, X, y)
            fast_cost, fast_grads = fast.loss_and_grads(K, params, X, y)
        np.testing.assert_allclose(fast_cost, cost, rtol=tol, err_msg=f"{name}: cost")
        for field in XorParams._fields:
            ref = np.asarray(getattr(grads, field))
            got = np.asarray(getattr(fast_grads, field))
            assert got.shape == ref.shape and got.dtype == ref.dtype, (name, field)
            scale = max(float(np.abs(ref).max()), 1e-30)
            np.testing.assert_allclose(
                got, ref, rtol=tol, atol=tol * scale, err_msg=f"{name}: d{field}"
            )


def test_the_saturated_example_has_its_true_cost_and_a_gradient_that_learns():
    """b2 = 40: the first cost is the exact 20.5, and the gradient of b2 is not 0."""
    X, y = xor_data("float32")
    params = _cases("float32")["output logit +40 (the issue's b2 = 40)"]
    cost, grads = xor_loss_and_grads(get_backend("numpy"), params, X, y)
    assert float(cost) == pytest.approx(20.5, rel=1e-6)
    # sigma(l2) = 1 on every row: db2 = mean(1 - y) = (1 + 0 + 0 + 1) / 4
    assert float(grads.b2[0]) == pytest.approx(0.5, rel=1e-6)


STACKED_CASES = [c for c in XOR_CASES if c.values[0].module == "backprop.xor.stacked"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("transcription", "backend"), STACKED_CASES)
def test_many_networks_at_once_each_match_the_source(transcription, backend, dtype):
    from backprop.xor.many import init_xor_many

    fast = importlib.import_module(transcription.module)
    X, y = xor_data(dtype)
    stacked = init_xor_many(7, hidden=3, seed=4, dtype=dtype)
    stacked = stacked._replace(w1=stacked.w1 * np.arange(1, 8, dtype=dtype)[:, None, None] * 4)
    costs, grads = fast.loss_and_grads(get_backend(backend), stacked, X, y)
    assert costs.shape == (7,)
    for i in range(7):
        one = XorParams(*(a[i] for a in stacked))
        with np.errstate(over="ignore"):
            cost, ref = xor_loss_and_grads(get_backend("numpy"), one, X, y)
        np.testing.assert_allclose(costs[i], cost, rtol=TOLERANCE[dtype])
        for field in XorParams._fields:
            np.testing.assert_allclose(
                getattr(grads, field)[i],
                getattr(ref, field),
                rtol=TOLERANCE[dtype],
                atol=TOLERANCE[dtype] * 1e-2,
            )


@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-10), ("float32", 2e-3)])
def test_training_runs_follow_the_reference_step_by_step(backend_name, dtype, rtol):
    """train_xor_manual (a transcription on either backend) against xor_step in a loop."""
    from backprop import train_xor_manual

    K = get_backend("numpy")
    X, y = xor_data(dtype)
    init = init_xor_params(2, 3, dtype)
    epochs, every = 1500, 250
    p, ref_costs = init, []
    for i in range(epochs):
        p, cost = xor_step(K, p, X, y, 0.7)
        if i % every == 0:
            ref_costs.append(cost)
    final, _ = xor_loss_and_grads(K, p, X, y)
    r = train_xor_manual(
        backend=backend_name, init=init, epochs=epochs, lr=0.7, dtype=dtype, log_every=every
    )
    np.testing.assert_allclose(r.costs, [*ref_costs, final], rtol=rtol)
    for field in XorParams._fields:
        np.testing.assert_allclose(getattr(r, field), getattr(p, field), rtol=rtol, atol=rtol)


def test_every_transcription_names_a_source_and_exposes_its_signature():
    import inspect

    for t in TRANSCRIPTIONS:
        module = importlib.import_module(t.module)
        source_module, source_name = t.source.rsplit(".", 1)
        source = getattr(importlib.import_module(source_module), source_name)
        fast = module.loss_and_grads
        assert (
            list(inspect.signature(fast).parameters)[:4]
            == list(inspect.signature(source).parameters)[:4]
        ), t.module


# --- the general network's in-place NumPy step ------------------------------------------

MLP_NETS = {
    "sigmoid hidden, sigmoid head": ([5, 7, 1], "sigmoid", "sigmoid"),
    "relu and tanh, softmax head": ([5, 9, 6, 4], ["relu", "tanh"], "softmax"),
    "identity hidden, identity head, two outputs": ([5, 4, 2], "identity", "identity"),
    "no hidden layer, softmax": ([5, 3], [], "softmax"),
    "tanh, one-unit layer below the head": ([5, 8, 1, 3], ["tanh", "sigmoid"], "softmax"),
}


def _mlp_case(sizes, output, dtype, saturated, seed=0):
    from backprop.nets import init_params

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((11, sizes[0])).astype(dtype)
    if output == "softmax":
        Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], 11)]
    elif output == "sigmoid":
        Y = rng.integers(0, 2, (11, sizes[-1])).astype(dtype)
    else:
        Y = rng.standard_normal((11, sizes[-1])).astype(dtype)
    params = init_params(sizes, seed=seed, dtype=dtype)
    if saturated:  # hidden units pinned at their limits, output logits of +-40
        params = tuple(type(p)(p.w * 30, p.b * 30) for p in params)
    return params, X, Y


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("saturated", [False, True], ids=["random", "saturated"])
@pytest.mark.parametrize("l2", [0.0, 0.05], ids=["no penalty", "L2"])
@pytest.mark.parametrize("name", list(MLP_NETS))
def test_mlp_transcription_gives_the_source_s_loss_and_every_gradient(name, l2, saturated, dtype):
    from backprop.fast import mlp_inplace
    from backprop.nets import loss_and_grads, make_net

    sizes, activation, output = MLP_NETS[name]
    net = make_net(sizes, activation, output)
    params, X, Y = _mlp_case(sizes, output, dtype, saturated)
    K = get_backend("numpy")
    with np.errstate(over="ignore"):
        loss, z, grads = loss_and_grads(K, params, X, Y, net, l2=l2)
        fast_loss, fast_z, fast_grads = mlp_inplace.loss_and_grads(K, params, X, Y, net, l2=l2)
    tol = TOLERANCE[dtype] * (50 if saturated else 1)
    np.testing.assert_allclose(fast_loss, loss, rtol=tol)
    np.testing.assert_allclose(fast_z, z, rtol=tol, atol=tol)
    for i, (g, f) in enumerate(zip(grads, fast_grads, strict=True)):
        for part in ("w", "b"):
            ref, got = getattr(g, part), getattr(f, part)
            assert got.dtype == ref.dtype
            scale = max(float(np.abs(ref).max()), 1e-30)
            np.testing.assert_allclose(
                got, ref, rtol=tol, atol=tol * scale, err_msg=f"layer {i} d{part}"
            )


@pytest.mark.parametrize(
    "settings",
    [
        {"name": "sgd", "lr": 0.3},
        {"name": "momentum", "lr": 0.1, "momentum": 0.8},
        {"name": "momentum", "lr": 0.1, "momentum": 0.8, "nesterov": True},
        {"name": "adam", "lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
    ],
    ids=["sgd", "momentum", "nesterov", "adam"],
)
def test_in_place_optimizer_steps_are_the_written_out_updates(settings):
    from backprop import optim
    from backprop.fast.mlp_inplace import InPlaceMLP
    from backprop.nets import loss_and_grads, make_net

    net = make_net([5, 9, 6, 4], ["relu", "tanh"], "softmax")
    params, X, Y = _mlp_case(net.sizes, "softmax", "float64", saturated=False)
    opt = optim.Optimizer(**settings)
    step = InPlaceMLP(net, params, opt, X.shape[0], "float64")
    K, ref, state = get_backend("numpy"), params, optim.init_state(opt, params, np)
    for _ in range(4):
        _, _, grads = loss_and_grads(K, ref, X, Y, net, l2=0.01)
        ref, state = optim.update(opt, ref, grads, state, np)
        step.loss_and_grads(X, Y, 0.01)
        step.update()
    for a, b in zip(step.params(), ref, strict=True):
        np.testing.assert_allclose(a.w, b.w, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(a.b, b.b, rtol=1e-13, atol=1e-15)


# --- every declared in-place form against its declaration's pure form -------------------
#
# The NumPy fast path runs the in-place forms; training on JAX and the reference
# derivation run the pure ones. Each in-place form is held to the pure form on
# NumPy and on JAX, at ordinary points and at extremes (|z| up to 1e4).

EXTREMES = np.array([-1e4, -745.0, -100.0, -40.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 40.0, 100.0, 1e4])


def _activation_names():
    from backprop.kernels import registry

    return registry.activations()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", _activation_names())
def test_each_activation_s_in_place_form_is_its_pure_pair(name, backend_name, dtype):
    from backprop.kernels import activations, registry

    spec = registry.activation(name)
    if spec in activations.DECLARATIONS:
        assert spec.inplace is not None, f"{name}: declare its in-place form beside the pair"
    form = spec.inplace_form()  # declared, or built from the pair: both are held to it
    rng = np.random.default_rng(3)
    z = np.concatenate([rng.uniform(-5, 5, 24), EXTREMES]).reshape(4, -1).astype(dtype)
    dh = rng.standard_normal(z.shape).astype(dtype)
    K = get_backend(backend_name)
    forward, backward = K.pair(name)
    out, cache = forward(z)
    ref = np.asarray(backward(dh, cache))
    buf, got = z.copy(), dh.copy()
    with np.errstate(over="ignore"):
        saved = form.forward(buf, np.empty_like(buf))
        form.backward(got, buf, saved, np.empty_like(buf))
    assert np.all(np.isfinite(buf)) and np.all(np.isfinite(got))
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(buf, np.asarray(out), rtol=tol, atol=tol, err_msg="forward")
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol, err_msg="backward")
    if form.factor is not None:  # the declared derivative is the backward of ones
        with np.errstate(over="ignore"):
            factor = form.factor(buf, saved, np.empty_like(buf))
        slope = np.asarray(backward(np.ones_like(dh), cache))
        np.testing.assert_allclose(factor, slope, rtol=tol, atol=tol, err_msg="factor")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_relu_in_place_is_max_with_zero_bit_for_bit_even_at_infinities(dtype):
    # the fast form's mask-and-maximum must not turn -inf into NaN (-inf * 0) or give -0.0
    from backprop.kernels import registry

    form = registry.activation("relu").inplace_form()
    z = np.array([[-np.inf, -1.0, -0.0, 0.0, 2.5, np.inf]] * 3, dtype)
    buf = z.copy()
    mask = form.forward(buf, np.empty_like(buf))
    np.testing.assert_array_equal(buf, np.maximum(z, 0))
    assert not np.signbit(buf).any()
    dh = np.ones_like(z)
    form.backward(dh, buf, mask, np.empty_like(buf))
    np.testing.assert_array_equal(dh, (z > 0).astype(dtype))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scale", [1.0, 40.0, 1e3], ids=["ordinary", "logits 40", "logits 1e3"])
@pytest.mark.parametrize("output", list(registry.HEADS))
def test_each_head_s_in_place_form_is_its_loss_kernel(output, scale, backend_name, dtype):
    from backprop.kernels import registry

    head = registry.head(output)
    assert head.inplace is not None
    rng = np.random.default_rng(4)
    z = (rng.standard_normal((9, 3)) * scale).astype(dtype)
    if head.labels is not None:
        Y = head.labels("y", rng.integers(0, 3, 9), 3, dtype)
    else:
        Y = rng.integers(0, 2, (9, 3)).astype(dtype)
    forward, backward = get_backend(backend_name).pair(head.kernel)
    loss, cache = forward(z, Y)
    dz = np.asarray(backward(1.0, cache))
    got = np.empty_like(z)
    with np.errstate(over="ignore"):
        got_loss = head.inplace(z.copy(), Y, got)
    assert np.isfinite(got_loss) and np.all(np.isfinite(got))
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(got_loss, float(loss), rtol=tol)
    np.testing.assert_allclose(got, dz, rtol=tol, atol=tol * float(np.abs(dz).max()))


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_s_in_place_form_is_its_pure_update(name, nesterov, backend_name):
    """Five steps on a flat vector with gradients from 1e-8 to 1e4: in place against pure."""
    import contextlib

    from backprop import optim
    from backprop.nets import Layer

    spec = optim.get(name)
    assert spec.inplace is not None
    opt = optim.Optimizer(name, 0.05, momentum=0.7, nesterov=nesterov, beta1=0.8, beta2=0.95)
    rng = np.random.default_rng(5)
    theta = rng.standard_normal(12)
    ctx = contextlib.nullcontext()
    if backend_name == "jax":
        import jax

        ctx = jax.enable_x64(True)
    with ctx:
        xp = get_backend(backend_name).xp
        params = (Layer(xp.asarray(theta[:8].reshape(4, 2)), xp.asarray(theta[8:])),)
        state = spec.init(opt, params, xp)
        slots, scratch = spec.inplace_state(opt, theta), [np.empty(12), np.empty(12)]
        for t in range(1, 6):
            g = rng.standard_normal(12) * 10.0 ** rng.uniform(-8, 4, 12)
            grads = (Layer(xp.asarray(g[:8].reshape(4, 2)), xp.asarray(g[8:])),)
            params, state = spec.update(opt, params, grads, state, xp)
            spec.inplace_step(opt, theta, g, slots, scratch, t)
            ref = np.concatenate([np.asarray(params[0].w).ravel(), np.asarray(params[0].b)])
            np.testing.assert_allclose(theta, ref, rtol=1e-12, atol=1e-14, err_msg=f"step {t}")


def test_the_fast_path_resolves_every_name_up_front_and_lists_the_valid_ones():
    from backprop import optim
    from backprop.fast.mlp_inplace import InPlaceMLP
    from backprop.nets import Net, init_params, make_net

    params = init_params([3, 4, 2])
    for net, opt, message in [
        (Net((3, 4, 2), ("swish",), "sigmoid"), optim.Optimizer(), "activation must be one of"),
        (Net((3, 4, 2), ("relu",), "hinge"), optim.Optimizer(), "output must be one of"),
        (Net((3, 4, 2), ("relu",), "sigmoid"), optim.Optimizer("lion"), "optimizer must be one"),
    ]:
        with pytest.raises(ValueError, match=message) as info:
            InPlaceMLP(net, params, opt, 5, "float64")
        assert "sigmoid" in str(info.value) or "sgd" in str(info.value)
    with pytest.raises(ValueError, match="relu, tanh, identity"):
        make_net([3, 4, 2], "step")  # an activation without a backward is not trainable
    with pytest.raises(ValueError, match="sgd, momentum, adam"):
        optim.make_optimizer("lion", 0.1)


def test_no_training_code_switches_on_an_activation_head_or_optimizer_name():
    """The training modules look names up in the declarations; none compares a name.

    (The pattern finds all 13 comparisons of the NumPy fast path before 0.3.0,
    and the 21 of the estimators' modules, scikit-learn's names included, before
    they read the declarations.)
    """
    import re
    from pathlib import Path

    from backprop.kernels.registry import HEADS, KERNELS

    names = {*KERNELS, *HEADS, *OPTIMIZERS, "bce", "cross_entropy"}
    names |= {"logistic", "exp", "squared_error", "poisson"}  # scikit-learn's, in the estimators
    alternatives = "|".join(sorted(names))
    pattern = re.compile(r"""(==|!=|\bin)\s*\(?\s*["'](""" + alternatives + r""")["']""")
    root = Path(__file__).resolve().parents[1] / "backprop"
    for path in [
        "nets.py", "train.py", "distributed.py", "fast/mlp_inplace.py",
        "estimator.py", "sklearn_step.py", "sklearn_jax.py",
    ]:  # fmt: skip
        source = (root / path).read_text()
        found = [m.group(0) for m in pattern.finditer(source)]
        assert not found, f"backprop/{path} compares names: {found}"
