"""The estimators on JAX: scikit-learn's model from the JAX derivation, and devices
that survive ``clone``, pickling and cross-validation.

``backend="jax"`` runs each epoch's batches in one compiled scan of
:func:`backprop.nets.data_loss_and_grads`; with the same arguments its
``loss_curve_``, ``coefs_`` and predictions equal scikit-learn's to 1e-9 in
float64 (the stochastic solvers to ~1e-16 per weight; L-BFGS amplifies
rounding). ``devices=jax.devices()`` on two simulated CPU devices clones,
pickles, cross-validates and trains the same model as one device.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from tests.conftest import HAVE_JAX

sklearn = pytest.importorskip("sklearn")
pytestmark = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from backprop import MLPClassifier, MLPRegressor  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_digits = load_digits()
X = _digits.data[:200] / 16.0
LABELS = _digits.target[:200]


def _fit(est, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kw)


@pytest.mark.parametrize(
    "params",
    [
        {"solver": "adam", "batch_size": 64},
        pytest.param(
            {"solver": "sgd", "learning_rate": "invscaling", "activation": "tanh"},
            marks=pytest.mark.slow,
        ),
        pytest.param(
            {
                "solver": "sgd",
                "nesterovs_momentum": False,
                "early_stopping": True,
                "batch_size": 30,
            },
            marks=pytest.mark.slow,
        ),
        pytest.param({"solver": "lbfgs", "activation": "logistic"}, marks=pytest.mark.slow),
    ],
    ids=["adam", "sgd invscaling", "momentum early stopping", "lbfgs"],
)
def test_jax_backend_equals_scikit_learn(params):
    sw = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    sk = SkClassifier(hidden_layer_sizes=(10,), max_iter=8, random_state=0, **params)
    a = _fit(sk, X, LABELS, sample_weight=sw)
    b = _fit(MLPClassifier(**sk.get_params(), backend="jax"), X, LABELS, sample_weight=sw)
    assert b.n_iter_ == a.n_iter_
    if hasattr(a, "loss_curve_"):
        np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-9)
    for theirs, ours in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-11)
    np.testing.assert_array_equal(b.predict(X), a.predict(X))


STOPPING = {
    "adaptive until the rate is too small": dict(
        solver="sgd", learning_rate="adaptive", learning_rate_init=0.1, tol=0.05,
        n_iter_no_change=2, max_iter=80, batch_size=50,
    ),
    "adam stops": dict(solver="adam", tol=0.05, n_iter_no_change=3, max_iter=40, batch_size=64),
    "invscaling to max_iter": dict(
        solver="sgd", learning_rate="invscaling", power_t=0.3, learning_rate_init=0.2,
        max_iter=25, batch_size=40,
    ),
    "no shuffle, weighted, stops": dict(
        solver="sgd", shuffle=False, momentum=0.5, tol=0.02, n_iter_no_change=2, max_iter=60,
        batch_size=200,
    ),
}  # fmt: skip


@pytest.mark.parametrize("params", STOPPING.values(), ids=STOPPING.keys())
def test_compiled_chunks_of_epochs_stop_where_scikit_learn_stops(params):
    # backend="jax" runs many epochs per compiled call with scikit-learn's epoch end in the
    # graph; the epoch count, the loss curve, the weights, the rate and the random stream
    # afterwards (rewound to the stopping epoch) must be scikit-learn's
    sw = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0])
    rs_a, rs_b = np.random.RandomState(0), np.random.RandomState(0)
    sk = SkClassifier(hidden_layer_sizes=(10,), random_state=rs_a, **params)
    a = _fit(sk, X, LABELS, sample_weight=sw)
    b = _fit(MLPClassifier(**{**sk.get_params(), "random_state": rs_b}, backend="jax"),
             X, LABELS, sample_weight=sw)  # fmt: skip
    assert a.n_iter_ < params["max_iter"] or "invscaling" in str(params)
    assert (b.n_iter_, b.t_) == (a.n_iter_, a.t_)
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-9)
    assert b.best_loss_ == pytest.approx(a.best_loss_, rel=1e-9)
    assert b._no_improvement_count == a._no_improvement_count
    assert b._optimizer.learning_rate == pytest.approx(a._optimizer.learning_rate, rel=1e-12)
    for theirs, ours in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-11)
    assert rs_b.randint(2**31) == rs_a.randint(2**31)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_chunks_equal_the_per_epoch_loop_bit_for_bit(dtype, capsys):
    # verbose=True keeps one compiled call per epoch; quiet runs many per call, with the
    # epoch's loss summed batch by batch in the graph as the host (and scikit-learn) sums it
    params = dict(hidden_layer_sizes=(10,), solver="adam", batch_size=16, max_iter=12,
                  random_state=0, backend="jax")  # fmt: skip
    Xd = X.astype(dtype)
    quiet = _fit(MLPClassifier(**params), Xd, LABELS)
    loud = _fit(MLPClassifier(**params, verbose=True), Xd, LABELS)
    assert "Iteration 12" in capsys.readouterr().out
    assert quiet.loss_curve_ == loud.loss_curve_
    for a, b in zip(quiet.coefs_ + quiet.intercepts_, loud.coefs_ + loud.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_compiled_chunks_in_float32_stop_with_the_per_epoch_loop():
    # float32 data, the epoch's end in float64 in the graph, as the NumPy loop keeps it
    X32 = X.astype(np.float32)
    params = dict(hidden_layer_sizes=(10,), solver="adam", tol=0.1, n_iter_no_change=2,
                  max_iter=50, batch_size=32, random_state=0)  # fmt: skip
    a = _fit(MLPClassifier(**params), X32, LABELS)
    b = _fit(MLPClassifier(**params, backend="jax"), X32, LABELS)
    assert a.n_iter_ < 50 and b.n_iter_ == a.n_iter_
    assert b.coefs_[0].dtype == np.float32
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-5)


@pytest.mark.slow
def test_jax_regressor_and_float32():
    Y = np.stack([X[:, 20], X[:, 30]], axis=1)
    sk = SkRegressor(hidden_layer_sizes=(8,), max_iter=6, random_state=0, batch_size=50)
    a = _fit(sk, X, Y)
    b = _fit(MLPRegressor(**sk.get_params(), backend="jax"), X, Y)
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(b.predict(X), a.predict(X), rtol=1e-9, atol=1e-12)
    c = _fit(MLPClassifier((8,), max_iter=4, random_state=0, backend="jax"), X.astype("f4"), LABELS)
    assert c.coefs_[0].dtype == np.float32
    with pytest.raises(ValueError, match="runs on backend='numpy' only"):
        MLPRegressor(loss="poisson", backend="jax", max_iter=2).fit(X, X[:, 20])


DEVICES = """
import pickle, warnings
import jax, numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from backprop import MLPClassifier
warnings.simplefilter("ignore")
X, y = load_digits(return_X_y=True)
X, y = X[:150] / 16, y[:150]
assert len(jax.devices()) == 2
est = MLPClassifier((8,), max_iter=5, random_state=0, backend="jax", devices=jax.devices(),
                    batch_size=32)
copy = clone(est)
assert copy.devices == est.devices and copy.get_params()["max_iter"] == 5
est.fit(X, y)
back = pickle.loads(pickle.dumps(est))
assert back.devices == jax.devices(), back.devices
np.testing.assert_array_equal(back.predict(X), est.predict(X))
one = MLPClassifier((8,), max_iter=5, random_state=0, backend="jax", batch_size=32).fit(X, y)
np.testing.assert_allclose(est.coefs_[0], one.coefs_[0], rtol=1e-5, atol=1e-6)
scores = cross_val_score(est, X, y, cv=2)
print("ok", scores.shape)
"""


@pytest.mark.slow
def test_devices_survive_clone_pickle_and_cross_validation():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    env["PYTHONPATH"] = ROOT
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DEVICES)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok (2,)"


def test_devices_need_the_jax_backend_and_valid_values():
    with pytest.raises(ValueError, match="needs backend='jax'"):
        MLPClassifier(devices=1, max_iter=2).fit(X, LABELS)
    with pytest.raises(ValueError, match="devices must be between 1 and"):
        MLPClassifier(devices=99, backend="jax", max_iter=2).fit(X, LABELS)
