"""A user's own activation, head or optimizer in one call.

A registered pair is gradient-checked first (a wrong one is refused, with
the report); once registered it trains exactly as the reference derivation
(:func:`backprop.nets.loss_and_grads` with :func:`backprop.optim.update`,
run step by step here) on both backends, through the NumPy fast path's
generic in-place form, and is offered by the estimator and the command line.
"""

from __future__ import annotations

import numpy as np
import pytest

import backprop
from backprop import nets, optim
from backprop.kernels import get_backend, registry

RNG = np.random.default_rng(11)
X = RNG.standard_normal((24, 3))
Y = (X[:, 0] * X[:, 1] > 0).astype(np.float64)[:, None]


def softplus_forward(xp, z):
    """softplus(z) = log(1 + e^z), as logaddexp(0, z): no overflow; caches the input."""
    return xp.logaddexp(0.0, z), z


def softplus_backward(xp, dout, z):
    """d softplus/dz = sigma(z) = (1 + tanh(z / 2)) / 2, from the cached input."""
    return dout * (0.5 * (1.0 + xp.tanh(0.5 * z)))


def wrong_backward(xp, dout, z):
    """A classic slip: the derivative applied to the output instead of the input."""
    s = xp.logaddexp(0.0, z)
    return dout * (0.5 * (1.0 + xp.tanh(0.5 * s)))


@pytest.fixture
def softplus():
    backprop.register_activation("softplus", softplus_forward, softplus_backward)
    yield "softplus"
    backprop.unregister("softplus")


def _reference(sizes, activation, output, opt, epochs, Xd, Yd):
    """Full-batch training written out with the reference derivation, on NumPy."""
    K = get_backend("numpy")
    net = nets.make_net(sizes, activation, output)
    params = nets.init_params(sizes, seed=0, dtype="float64")
    state = optim.init_state(opt, params, np)
    losses = []
    for _ in range(epochs):
        loss, _, grads = nets.loss_and_grads(K, params, Xd, Yd, net)
        losses.append(float(loss))
        params, state = optim.update(opt, params, grads, state, np)
    return params, np.array(losses)


def _assert_same(result, params, losses):
    np.testing.assert_allclose(result.losses, losses, rtol=1e-10, atol=1e-12)
    for got, ref in zip(result.params, params, strict=True):
        np.testing.assert_allclose(got.w, ref.w, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.b, ref.b, rtol=1e-10, atol=1e-12)


def test_a_registered_softplus_trains_as_the_reference_derivation(softplus, backend_name):
    params, losses = _reference(
        [3, 5, 1], softplus, "sigmoid", optim.Optimizer("sgd", 0.5), 30, X, Y
    )
    r = backprop.train_mlp(
        [3, 5, 1], X, Y, activation=softplus, lr=0.5, epochs=30, shuffle=False,
        backend=backend_name, dtype="float64",
    )  # fmt: skip
    assert r.net.activations == ("softplus",)
    _assert_same(r, params, losses)
    assert losses[-1] < losses[0]


def test_a_wrong_pair_is_refused_with_the_report():
    with pytest.raises(backprop.KernelRefused, match=r"refused.*does not match") as info:
        backprop.register_activation("softplus_bad", softplus_forward, wrong_backward)
    report = info.value.report
    assert report is not None and report.failing == ["z"]
    assert "softplus_bad" not in nets.ACTIVATIONS
    with pytest.raises(ValueError, match="activation must be one of"):
        nets.make_net([3, 4, 1], "softplus_bad")


def test_a_pair_that_cannot_run_and_bad_names_are_refused():
    def broken(xp, z):
        raise RuntimeError("boom")

    with pytest.raises(backprop.KernelRefused, match="RuntimeError: boom"):
        backprop.register_activation("broken", broken, softplus_backward)
    with pytest.raises(ValueError, match="library's own"):
        backprop.register_activation("relu", softplus_forward, softplus_backward)
    with pytest.raises(ValueError, match="identifier"):
        backprop.register_activation("soft plus", softplus_forward, softplus_backward)
    with pytest.raises(ValueError, match="backward must be callable"):
        backprop.register_activation("softplus_x", softplus_forward, None)


def test_an_in_place_form_is_checked_against_the_pair():
    from backprop.kernels.spec import InPlace

    def forward_(z, buf):
        saved = z.copy()
        np.logaddexp(0.0, z, out=z)
        return saved

    def good(dh, out, saved, scratch):
        dh *= 0.5 * (1.0 + np.tanh(0.5 * saved))

    def bad(dh, out, saved, scratch):
        dh *= 0.5 * (1.0 + np.tanh(0.5 * out))

    with pytest.raises(backprop.KernelRefused, match="in-place backward differs"):
        backprop.register_activation(
            "softplus_ip", softplus_forward, softplus_backward, inplace=InPlace(forward_, bad)
        )
    backprop.register_activation(
        "softplus_ip", softplus_forward, softplus_backward, inplace=InPlace(forward_, good)
    )
    try:
        params, losses = _reference(
            [3, 4, 1], "softplus_ip", "sigmoid", optim.Optimizer("sgd", 0.5), 10, X, Y
        )
        r = backprop.train_mlp(
            [3, 4, 1], X, Y, activation="softplus_ip", lr=0.5, epochs=10, dtype="float64"
        )
        _assert_same(r, params, losses)
    finally:
        backprop.unregister("softplus_ip")


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")  # few epochs: ConvergenceWarning
def test_the_name_works_in_the_estimator_and_the_command_line(softplus):
    from backprop.cli import build_parser

    fit = build_parser()._subparsers._group_actions[0].choices["fit"]  # type: ignore[union-attr]
    choices = next(a.choices for a in fit._actions if a.dest == "activation")
    assert "softplus" in choices
    pytest.importorskip("sklearn")
    clf = backprop.MLPClassifier(
        hidden_layer_sizes=(4,), activation="softplus", max_iter=5, random_state=0
    )
    clf.fit(X, Y[:, 0].astype(int))
    assert clf.predict(X).shape == (24,)


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")  # few epochs: ConvergenceWarning
def test_a_registered_activation_trains_the_estimators_alike_on_both_backends(softplus):
    """NumPy runs the pair's generic in-place form in scikit-learn's step, JAX the pure
    pair in the compiled derivation: the same model to 1e-10 in float64."""
    pytest.importorskip("sklearn")
    from tests.conftest import HAVE_JAX

    kw = {"hidden_layer_sizes": (5,), "activation": softplus, "max_iter": 6, "random_state": 0}
    runs = {}
    for backend in ["numpy"] + (["jax"] if HAVE_JAX else []):
        runs[backend] = (
            backprop.MLPClassifier(**kw, solver="sgd", backend=backend).fit(X, Y[:, 0] > 0),
            backprop.MLPRegressor(**kw, batch_size=8, backend=backend).fit(X, X[:, 0] * X[:, 2]),
        )
    for est in runs["numpy"]:
        assert est.loss_curve_[-1] < est.loss_curve_[0]
    for ours, theirs in zip(runs["numpy"], runs.get("jax", ()), strict=False):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                        strict=True):  # fmt: skip
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"'activation' parameter.*'softplus'"):
        backprop.MLPRegressor(activation="softplus_missing").fit(X, X[:, 0])


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_a_name_registered_again_is_compiled_again_for_the_jax_estimator():
    pytest.importorskip("sklearn")
    pytest.importorskip("jax")

    def tanh_forward(xp, z):
        t = xp.tanh(z)
        return t, t

    def tanh_backward(xp, dout, t):
        return dout * (1.0 - t * t)

    curves = []
    for forward, backward in ((softplus_forward, softplus_backward), (tanh_forward, tanh_backward)):
        backprop.register_activation("mine", forward, backward)
        try:
            for backend in ("numpy", "jax"):
                est = backprop.MLPRegressor(
                    hidden_layer_sizes=(4,), activation="mine", max_iter=3, random_state=0,
                    backend=backend,
                ).fit(X, X[:, 0] * X[:, 1])  # fmt: skip
                curves.append(est.loss_curve_)
        finally:
            backprop.unregister("mine")
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-10)
    np.testing.assert_allclose(curves[3], curves[2], rtol=1e-10)
    assert abs(curves[2][-1] - curves[0][-1]) > 1e-3  # two different functions


def half_mse_forward(xp, z, y, weights=None):
    """L = sum_i w_i (z_i - y_i)^2 / 2, w_i = 1 / N by default."""
    r = z - y
    w = 1.0 / z.size if weights is None else weights
    return (w * (r * r)).sum() / 2, (r, w)


def half_mse_backward(xp, dloss, cache):
    r, w = cache
    return dloss * w * r


def test_a_registered_head_trains_as_the_reference_derivation(backend_name):
    backprop.register_head(
        "linear", "half_mse", half_mse_forward, half_mse_backward, predict=lambda xp, z: z
    )
    try:
        Yr = X @ np.array([[1.0], [-2.0], [0.5]])
        params, losses = _reference(
            [3, 4, 1], "tanh", "linear", optim.Optimizer("sgd", 0.1), 20, X, Yr
        )
        r = backprop.train_mlp(
            [3, 4, 1], X, Yr, activation="tanh", output="linear", loss="half_mse", lr=0.1,
            epochs=20, backend=backend_name, dtype="float64",
        )  # fmt: skip
        _assert_same(r, params, losses)
        with pytest.raises(backprop.KernelRefused):
            backprop.register_head(
                "linear2", "twice_mse", half_mse_forward, lambda xp, d, c: 2 * d * c[1] * c[0],
                predict=lambda xp, z: z,
            )  # fmt: skip
    finally:
        backprop.unregister("linear")
    assert "half_mse" not in registry.KERNELS and "linear" not in registry.HEADS


def _rmsprop_init(opt, params, xp):
    return tuple(nets.Layer(xp.zeros_like(w), xp.zeros_like(b)) for w, b in params)


def _rmsprop_update(opt, params, grads, state, xp):
    new, new_state = [], []
    for (w, b), (dw, db), (sw, sb) in zip(params, grads, state, strict=True):
        sw = opt.beta2 * sw + (1 - opt.beta2) * dw * dw
        sb = opt.beta2 * sb + (1 - opt.beta2) * db * db
        new.append(
            nets.Layer(
                w - opt.lr * dw / (xp.sqrt(sw) + opt.eps), b - opt.lr * db / (xp.sqrt(sb) + opt.eps)
            )
        )
        new_state.append(nets.Layer(sw, sb))
    return tuple(new), tuple(new_state)


def test_a_registered_optimizer_trains_as_its_pure_update(backend_name):
    backprop.register_optimizer("rmsprop", _rmsprop_init, _rmsprop_update)
    try:
        opt = optim.make_optimizer("rmsprop", 0.01, beta2=0.9)
        params, losses = _reference([3, 4, 1], "relu", "sigmoid", opt, 15, X, Y)
        r = backprop.train_mlp(
            [3, 4, 1], X, Y, activation="relu", optimizer="rmsprop", lr=0.01, beta2=0.9,
            epochs=15, backend=backend_name, dtype="float64",
        )  # fmt: skip
        _assert_same(r, params, losses)

        def wrong(opt, theta, g, slots, scratch, t):
            theta -= opt.lr * g

        with pytest.raises(ValueError, match="in-place form differs"):
            backprop.register_optimizer("rmsprop2", _rmsprop_init, _rmsprop_update, inplace=wrong)
    finally:
        backprop.unregister("rmsprop")
    with pytest.raises(ValueError, match="optimizer must be one of sgd, momentum, adam"):
        optim.make_optimizer("rmsprop", 0.01)


def test_an_optimizer_s_declared_settings_decide_which_fit_flags_apply():
    """--momentum/--nesterov are refused for an optimizer that does not read them, accepted
    for a registered one that declares it does, and recorded only then."""
    from backprop.cli import _fit_conflicts, build_parser

    assert optim.get("momentum").reads == ("momentum", "nesterov")
    assert optim.get("adam").reads == ("beta1", "beta2", "eps") and optim.get("sgd").reads == ()
    with pytest.raises(ValueError, match="reads must be a sequence of names"):
        backprop.register_optimizer("heavy", _rmsprop_init, _rmsprop_update, reads=("mu",))
    backprop.register_optimizer("heavy", _rmsprop_init, _rmsprop_update, reads=("momentum",))
    try:
        parse = build_parser().parse_args
        assert _fit_conflicts(parse(["fit", "--optimizer", "heavy", "--momentum", "0.5"])) == []
        problems = _fit_conflicts(parse(["fit", "--optimizer", "sgd", "--momentum", "0.5"]))
        assert problems == [
            "--momentum applies to --optimizer momentum or heavy, not sgd (it reads only the "
            "learning rate)"
        ]
        problems = _fit_conflicts(parse(["fit", "--optimizer", "heavy", "--nesterov"]))
        assert problems == ["--nesterov needs --optimizer momentum, not heavy"]
    finally:
        backprop.unregister("heavy")


USER_MODULE = """
import backprop


def softplus_forward(xp, z):
    return xp.logaddexp(0.0, z), z


def softplus_backward(xp, dout, z):
    return dout * 0.5 * (1.0 + xp.tanh(0.5 * z))


backprop.register_activation("my_softplus", softplus_forward, softplus_backward)
"""


def test_the_command_line_imports_a_user_s_module_and_trains_its_activation(tmp_path):
    """`python -m backprop --import MODULE fit --activation NAME` in a fresh process: the
    module registers the name before the parser lists the choices; a missing module is
    one line, exit 2."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("sklearn")
    (tmp_path / "myacts.py").write_text(USER_MODULE)
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "backprop", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    fit = ["fit", "--data", "iris", "--activation", "my_softplus", "--epochs", "3", "--quiet"]
    ok = run("--import", "myacts", *fit)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "test accuracy" in ok.stdout
    unknown = run(*fit)  # without the import the name is not a choice
    assert unknown.returncode == 2 and "my_softplus" in unknown.stderr
    missing = run("--import", "no_such_module_here", *fit)
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "no_such_module_here" in missing.stderr


def test_every_head_declares_what_its_outputs_are_and_a_bad_kind_is_refused():
    """Model files and the command line read ``Head.outputs``, never the head's name."""
    from backprop.kernels.spec import HEAD_OUTPUTS, Head

    declared = {name: head.outputs for name, head in nets.HEADS.items()}
    assert declared["softmax"] == "probabilities"
    assert declared["sigmoid"] == "independent"
    assert declared["identity"] == "values"
    assert set(declared.values()) <= set(HEAD_OUTPUTS)
    with pytest.raises(ValueError, match="outputs must be one of probabilities, independent"):
        Head("h", "l", "mse", None, None, None, outputs="logits")
