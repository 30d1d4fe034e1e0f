"""backprop.mlp_fused.FusedStep: the in-place NumPy step must be mlp_step's twin."""

from __future__ import annotations

import numpy as np
import pytest

from backprop import gradcheck
from backprop.mlp import Layer, init_mlp, make_config, mlp_step
from backprop.mlp_fused import FusedStep
from kernels import get_backend

K = get_backend("numpy")

# (sizes, hidden activations, output, loss): every activation, every output,
# no to three hidden layers, layers of one unit (whose backward keeps w as a
# column scale) and wide ones.
ARCHITECTURES = [
    ([3, 6, 1], "sigmoid", "sigmoid", "bce"),  # X narrower: the row scale goes on X
    ([6, 3, 1], "sigmoid", "identity", "mse"),  # X wider: the row scale goes on dh
    ([3, 6, 2], "relu", "sigmoid", "bce"),
    ([3, 5, 4, 2], ["sigmoid", "relu"], "identity", "mse"),
    ([3, 5, 4, 1], ["identity", "sigmoid"], "sigmoid", "mse"),
    ([2, 1, 4, 3, 1], ["sigmoid", "sigmoid", "relu"], "sigmoid", "bce"),
    ([4, 1], [], "sigmoid", "bce"),
    # single-unit layers in a row: the pending column scale passes through
    ([3, 4, 1, 1], ["relu", "sigmoid"], "identity", "mse"),
    ([3, 2, 1, 1], ["identity", "identity"], "sigmoid", "bce"),
]


def _problem(sizes, dtype, seed=0, n=9):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    y = (rng.random((n, sizes[-1])) > 0.5).astype(dtype)
    return X, y


@pytest.mark.parametrize(("sizes", "hidden", "output", "loss"), ARCHITECTURES)
@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-12), ("float32", 1e-5)])
def test_one_step_equals_mlp_step(sizes, hidden, output, loss, dtype, rtol):
    config = make_config(sizes, hidden, output, loss)
    params = init_mlp(sizes, seed=3, dtype=dtype)
    X, y = _problem(sizes, dtype)
    ref = mlp_step(K, params, X, y, 0.5, config)
    got = FusedStep(sizes, config, len(X), dtype)(params, X, y, 0.5)
    np.testing.assert_allclose(got[1], ref[1], rtol=rtol)  # loss
    np.testing.assert_allclose(got[2], ref[2], rtol=rtol, atol=rtol)  # output
    for new_ref, new_got, g_ref, g_got in zip(ref[0], got[0], ref[3], got[3], strict=True):
        for a, b in ((new_got, new_ref), (g_got, g_ref)):
            for field in ("w", "b"):
                x, expected = getattr(a, field), getattr(b, field)
                assert x.dtype == dtype and x.shape == expected.shape
                np.testing.assert_allclose(x, expected, rtol=rtol, atol=rtol)


def test_many_steps_follow_mlp_step():
    """200 steps in float64 stay on mlp_step's trajectory (no drift from the buffers)."""
    sizes = [3, 8, 5, 1]
    config = make_config(sizes, ["sigmoid", "relu"], "sigmoid", "bce")
    X, y = _problem(sizes, "float64", n=16)
    step = FusedStep(sizes, config, len(X), "float64")
    a = b = init_mlp(sizes, seed=1, dtype="float64")
    for _ in range(200):
        a, loss_a, _, _ = mlp_step(K, a, X, y, 1.0, config)
        b, loss_b, _, _ = step(b, X, y, 1.0)
    assert loss_a < 0.6  # it trained
    np.testing.assert_allclose(loss_b, loss_a, rtol=1e-10)
    for la, lb in zip(a, b, strict=True):
        np.testing.assert_allclose(lb.w, la.w, rtol=1e-9, atol=1e-12)


@pytest.mark.gradcheck
@pytest.mark.parametrize(("sizes", "hidden", "output", "loss"), ARCHITECTURES)
def test_gradients_pass_gradcheck(sizes, hidden, output, loss):
    config = make_config(sizes, hidden, output, loss)
    X, y = _problem(sizes, "float64", seed=4)
    step = FusedStep(sizes, config, len(X), "float64")
    names = [f"{f}{i}" for i in range(len(sizes) - 1) for f in ("w", "b")]

    def layers(p):
        return tuple(Layer(p[f"w{i}"], p[f"b{i}"]) for i in range(len(sizes) - 1))

    def loss_fn(p):
        return step(layers(p), X, y, 0.0)[1]

    def grad_fn(p):
        grads = step(layers(p), X, y, 0.0)[3]
        return {f"{f}{i}": getattr(g, f) for i, g in enumerate(grads) for f in ("w", "b")}

    params = init_mlp(sizes, seed=6, dtype="float64")
    start = {name: getattr(params[int(name[1:])], name[0]) for name in names}
    report = gradcheck(loss_fn, grad_fn, start)
    assert report.ok, report


def test_returned_arrays_are_not_the_reused_buffers():
    sizes = [3, 6, 4, 1]
    config = make_config(sizes, "sigmoid", "sigmoid", "bce")
    X, y = _problem(sizes, "float64")
    step = FusedStep(sizes, config, len(X), "float64")
    params = init_mlp(sizes, seed=0, dtype="float64")
    first = step(params, X, y, 1.0)
    saved = [a.copy() for layer in (*first[0], *first[3]) for a in layer] + [first[2].copy()]
    step(first[0], 2 * X, 1 - y, 3.0)  # a different step through the same buffers
    again = [a for layer in (*first[0], *first[3]) for a in layer] + [first[2]]
    for s, a in zip(saved, again, strict=True):
        np.testing.assert_array_equal(a, s)
    for p, layer in zip(init_mlp(sizes, seed=0, dtype="float64"), params, strict=True):
        np.testing.assert_array_equal(layer.w, p.w)  # the caller's params untouched


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.zeros((5, 3)), np.zeros((9, 1)), r"X must be a float64 array of shape \(9, 3\)"),
        (np.zeros((9, 2)), np.zeros((9, 1)), r"X must be .* got shape \(9, 2\)"),
        (np.zeros((9, 3), "float32"), np.zeros((9, 1)), r"X must be .* dtype float32"),
        (np.zeros((9, 3)), np.zeros((9, 2)), r"y must be a float64 array of shape \(9, 1\)"),
        ([[0.0] * 3] * 9, np.zeros((9, 1)), r"X must be .* got shape None, dtype list"),
    ],
)
def test_data_it_was_not_built_for_is_refused(X, y, message):
    sizes = [3, 4, 1]
    step = FusedStep(sizes, make_config(sizes, "relu", "sigmoid", "bce"), 9, "float64")
    with pytest.raises(ValueError, match=message):
        step(init_mlp(sizes, dtype="float64"), X, y, 1.0)


def test_extreme_logits_stay_finite_and_warning_free():
    """Hidden pre-activations of +-1e4 (tanh form, float32) give finite results, no warnings."""
    sizes = [2, 3, 1]
    config = make_config(sizes, "sigmoid", "sigmoid", "bce")
    X = np.array([[1e4, -1e4], [-1e4, 1e4], [0.0, 0.0]], "float32")
    y = np.array([[1.0], [0.0], [1.0]], "float32")
    params = (
        Layer(np.eye(2, 3, dtype="float32"), np.zeros(3, "float32")),
        Layer(np.full((3, 1), 1e3, "float32"), np.zeros(1, "float32")),
    )
    new, loss, _, grads = FusedStep(sizes, config, 3, "float32")(params, X, y, 1.0)
    ref = mlp_step(K, params, X, y, 1.0, config)
    assert np.isfinite(loss) and all(np.isfinite(a).all() for layer in new for a in layer)
    np.testing.assert_allclose(loss, ref[1], rtol=1e-6)
    for g, r in zip(grads, ref[3], strict=True):
        np.testing.assert_allclose(g.w, r.w, rtol=1e-5, atol=1e-6)
