"""Kinks, float32 losses and high curvature: the blind spots of the old bound.

Every case here came out wrong before (issue 18): correct gradients failing
at kinks and in float32, wrong ones passing at high curvature.
"""

from __future__ import annotations

import numpy as np
import pytest

from backprop.gradcheck import check_kernel, gradcheck
from backprop.kernels import get_backend
from backprop.nets import Layer, init_params, loss_and_grads, make_net
from tests.conftest import HAVE_JAX

pytestmark = pytest.mark.gradcheck

K = get_backend("numpy")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_librarys_relu_at_its_kink_and_next_to_it(dtype):
    z = np.array([[0.0, 4e-7, -4e-7, 1.3, -0.2, 0.0]])
    report = check_kernel(K.relu_forward, K.relu_backward, {"z": z}, dtype=dtype)
    assert report.ok and report.verdict == "kink", str(report)
    kinks = {k.index: k for k in report["z"].kinks}
    assert (0, 0) in kinks and (0, 5) in kinks
    k = kinks[(0, 0)]
    assert k.left == pytest.approx(0.0, abs=1e-6) and k.relation == "left slope"
    assert "= the left slope (a valid subgradient)" in str(report)
    if dtype == "float64":  # 4e-7 from the kink is resolved as the smooth point it is
        assert set(kinks) == {(0, 0), (0, 5)}


def test_a_kink_blurred_by_float32_rounding_is_neither_pass_nor_fail():
    """A float32 loss of ~1 rounds to 6e-8: the steps stop near 1e-3, where the
    kink cannot be placed at the point (others may lie within the steps too)."""
    g = np.array([0.7, -1.1, 0.4], dtype=np.float32)

    def loss_fn(p):
        return np.float32(1.0) + np.sum(K.relu_forward(p["z"].astype(np.float32))[0] * g)

    def grad_fn(p):
        return {"z": K.relu_backward(g.astype(float), p["z"])}

    report = gradcheck(loss_fn, grad_fn, {"z": np.array([0.0, 1.3, -0.2])})
    assert report.verdict == "inconclusive", str(report)
    assert "one-sided slopes differ" in report["z"].diagnosis


def test_a_relu_outside_its_slopes_fails():
    z = np.array([[0.0, 1.0, -1.0]])

    def backward_minus(dout, cache):
        return -dout * np.ones_like(cache)  # -1 at the kink: outside [0, 1] times dout

    report = check_kernel(K.relu_forward, backward_minus, {"z": z})
    assert report.verdict == "fail" and "z" in report.failing


def test_a_relu_network_with_a_zero_input_row_and_zero_biases():
    """Every hidden unit of the zero rows sits at its kink; b0 used to fail."""
    rng = np.random.default_rng(0)
    sizes = [3, 5, 4, 1]
    net = make_net(sizes, "relu", "identity")
    X = rng.standard_normal((6, 3))
    X[0] = 0.0
    y = rng.standard_normal((6, 1))
    params = init_params(sizes, seed=1, dtype="float64")
    flat = {f"{k}{i}": getattr(layer, k) for i, layer in enumerate(params) for k in ("w", "b")}
    flat = {k: (np.zeros_like(v) if k.startswith("b") else v) for k, v in flat.items()}

    def unflat(p):
        return tuple(Layer(p[f"w{i}"], p[f"b{i}"]) for i in range(len(params)))

    def loss_fn(p):
        return loss_and_grads(K, unflat(p), X, y, net)[0]

    def grad_fn(p):
        grads = loss_and_grads(K, unflat(p), X, y, net)[2]
        return {f"{k}{i}": getattr(g, k) for i, g in enumerate(grads) for k in ("w", "b")}

    report = gradcheck(loss_fn, grad_fn, flat)
    assert report.ok, str(report)
    assert report["b0"].verdict == "kink" and report["w0"].verdict == "pass"


def test_abs_near_and_at_zero_and_max_at_a_tie():
    w = np.array([1e-7, 0.0, -2.0])
    report = gradcheck(lambda p: np.sum(np.abs(p["w"])), lambda p: {"w": np.sign(p["w"])}, {"w": w})
    assert report.ok and [k.index for k in report["w"].kinks] == [(1,)]
    assert report["w"].kinks[0].relation == "between"
    wrong = gradcheck(
        lambda p: np.sum(np.abs(p["w"])),
        lambda p: {"w": np.sign(p["w"]) + 2.0 * (p["w"] == 0)},
        {"w": w},
    )
    assert wrong.verdict == "fail" and "outside" in wrong["w"].diagnosis

    def max_grad(p):
        g = np.zeros(2)
        g[np.argmax(p["w"])] = 1.0
        return {"w": g}

    tie = {"w": np.array([0.5, 0.5])}
    report = gradcheck(lambda p: np.max(p["w"]), max_grad, tie)
    assert report.ok and report.verdict == "kink"
    assert {k.relation for k in report["w"].kinks} == {"left slope", "right slope"}
    assert not gradcheck(lambda p: np.max(p["w"]), lambda p: {"w": -max_grad(p)["w"]}, tie).ok


def test_the_step_function_has_no_derivative_but_zero_is_admissible():
    """step has no backward: 0 wherever its derivative exists, a jump at 0."""
    G = np.array([0.7, -1.2, 0.4])
    z = np.array([0.0, 0.5, -0.3])

    def loss_fn(p):
        return np.sum(K.step_forward(p["z"])[0] * G)

    report = gradcheck(loss_fn, lambda p: {"z": np.zeros(3)}, {"z": z})
    assert report.ok and report["z"].kinks[0].jump and "loss jumps" in str(report)
    straight_through = gradcheck(loss_fn, lambda p: {"z": G.copy()}, {"z": z})
    assert straight_through.verdict == "fail"  # G is wrong where z != 0


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_high_curvature_with_a_large_step_cannot_pass_a_wrong_factor(factor):
    """0.5x the gradient of sum(exp(13 w)) / 13 at w = (0, 0.05) passed with eps = 0.1."""
    params = {"w": np.array([0.0, 0.05])}

    def loss_fn(p):
        return np.sum(np.exp(13 * p["w"])) / 13

    report = gradcheck(loss_fn, lambda p: {"w": factor * np.exp(13 * p["w"])}, params, eps=0.1)
    assert report.verdict == "fail"
    gradcheck(loss_fn, lambda p: {"w": np.exp(13 * p["w"])}, params, eps=0.1).assert_ok()


@pytest.mark.parametrize("factor", [1.08, 0.87])
def test_a_high_frequency_function_catches_small_factors(factor):
    params = {"w": np.linspace(-1, 1, 5)}

    def loss_fn(p):
        return np.sum(np.sin(300 * p["w"])) / 300

    assert gradcheck(loss_fn, lambda p: {"w": factor * np.cos(300 * p["w"])}, params).verdict == (
        "fail"
    )
    gradcheck(loss_fn, lambda p: {"w": np.cos(300 * p["w"])}, params).assert_ok()


def test_a_float32_numpy_loss_gets_float32_rounding():
    params = {"w": np.array([0.3, -1.2, 2.0])}

    def loss_fn(p):
        return np.sum(p["w"].astype(np.float32) ** 3)

    report = gradcheck(loss_fn, lambda p: {"w": 3 * p["w"] ** 2}, params)
    assert report.ok and report.loss_dtype == "float32" and report.rtol == 1e-2
    assert "loss values are float32" in str(report)
    assert gradcheck(loss_fn, lambda p: {"w": 3.3 * p["w"] ** 2}, params).verdict == "fail"


@pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
def test_a_jax_float32_loss_is_checked_as_float32_and_x64_is_left_alone():
    import jax
    import jax.numpy as jnp

    params = {"w": np.array([0.3, -1.2, 2.0]), "b": np.array(0.5)}

    def loss_fn(p):
        return jnp.sum(jnp.tanh(jnp.asarray(p["w"]) * jnp.asarray(p["b"])))

    def grad_fn(p):
        t = np.tanh(p["w"] * p["b"])
        return {"w": (1 - t**2) * p["b"], "b": np.sum((1 - t**2) * p["w"])}

    with jax.enable_x64(False):
        before = jax.config.jax_enable_x64
        report = gradcheck(loss_fn, grad_fn, params)
        assert jax.config.jax_enable_x64 == before
        assert report.ok and report.loss_dtype == "float32", str(report)
    with jax.enable_x64(True):  # the same check in float64, when the caller asks for it
        report = gradcheck(loss_fn, grad_fn, params)
        assert report.ok and report.loss_dtype == "float64" and report.rtol == 1e-5


def test_every_registered_kernel_at_its_declared_kinks():
    """Each kernel whose declaration names points to avoid (ReLU's 0; max-pooling
    ties and the like, as they come) is checked right at them: a kink verdict
    with a valid subgradient, or a pass, never a failure."""
    from backprop.kernels import KERNELS, PAIRS
    from backprop.kernels.registry import sample_inputs

    checked = 0
    for name in PAIRS:
        spec = KERNELS[name]
        kinked = [i for i in spec.inputs if spec.domain(i).avoid]
        if not kinked:
            continue
        inputs = sample_inputs(spec, np.random.default_rng(0), n=3, d=2, m=3)
        for i in kinked:
            x = np.array(inputs[i], dtype=float)
            flat = x.reshape(-1)
            flat[::2] = spec.domain(i).avoid[0]  # every other entry right at a kink
            inputs[i] = x
        forward, backward = getattr(K, spec.forward.__name__), getattr(K, spec.backward.__name__)
        report = check_kernel(forward, backward, inputs)
        assert report.ok and report.kinked, (name, str(report))
        checked += 1
    assert checked >= 1


@pytest.mark.slow  # a fresh process importing JAX: ~3-5 s
@pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
def test_the_same_check_twice_in_a_fresh_process_agrees_whatever_the_import_order():
    """The audit: x64 was switched on only if JAX was imported before gradcheck
    ran, so a float32 JAX loss failed on the first call and passed on the second."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = """
import numpy as np
from backprop import gradcheck

def loss_fn(p):
    import jax.numpy as jnp  # JAX first imported inside the loss
    return jnp.sum(jnp.tanh(jnp.asarray(p["w"])) ** 2)

def grad_fn(p):
    t = np.tanh(p["w"])
    return {"w": 2 * t * (1 - t**2)}

params = {"w": np.array([0.3, -1.2, 2.0, 0.05])}
first, second = (gradcheck(loss_fn, grad_fn, params) for _ in range(2))
import jax
print(first.verdict, second.verdict, first.loss_dtype, second.loss_dtype, jax.config.jax_enable_x64)
"""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert out == ["pass", "pass", "float32", "float32", "False"]
