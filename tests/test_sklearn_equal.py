"""Same arguments, same model: backprop's estimators against scikit-learn's, nothing injected.

``MLPClassifier(**sk.get_params())`` fitted on the same data gives
scikit-learn's ``loss_curve_``, ``coefs_``, ``intercepts_``, validation
scores, iteration counts and predictions to 1e-10 in float64, over a matrix
of solvers, activations, batch sizes, early stopping, learning-rate
schedules, targets (binary, multiclass, multilabel, regression, Poisson),
sample weights, sparse input, warm starts and partial_fit. float32 input
trains in float32 and matches scikit-learn's float32 run to float32
rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
import scipy.sparse as sp  # noqa: E402
from sklearn.datasets import load_digits, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from backprop import MLPClassifier, MLPRegressor  # noqa: E402

_digits = load_digits()
X = _digits.data[:240] / 16.0
LABELS = _digits.target[:240]
RTOL, ATOL = 1e-10, 1e-12


def _fit_both(theirs, ours, X, y, **fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = theirs.fit(X, y, **fit)
        b = ours.fit(X, y, **fit)
    return a, b


def _assert_same(a, b, X, rtol=RTOL, atol=ATOL):
    assert b.n_iter_ == a.n_iter_
    if hasattr(a, "loss_curve_"):
        np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=rtol, atol=atol)
        assert b.t_ == a.t_
    else:
        np.testing.assert_allclose(b.loss_, a.loss_, rtol=rtol, atol=atol)
    for name in ("validation_scores_", "best_validation_score_", "best_loss_"):
        assert hasattr(a, name) == hasattr(b, name), name
    if getattr(a, "validation_scores_", None) is not None:
        np.testing.assert_allclose(b.validation_scores_, a.validation_scores_, rtol=rtol)
        assert b.best_validation_score_ == pytest.approx(a.best_validation_score_, rel=rtol)
    for theirs, ours in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)
    assert b.out_activation_ == a.out_activation_ and b.n_layers_ == a.n_layers_
    assert b.n_outputs_ == a.n_outputs_ and b.n_features_in_ == a.n_features_in_
    if hasattr(a, "predict_proba"):
        np.testing.assert_array_equal(b.predict(X), a.predict(X))
    else:
        np.testing.assert_allclose(b.predict(X), a.predict(X), rtol=rtol, atol=atol)
    if hasattr(a, "predict_proba"):
        np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), rtol=rtol, atol=atol)


SOLVERS = {
    "adam": {"solver": "adam"},
    "sgd": {"solver": "sgd", "momentum": 0.0},
    "momentum": {"solver": "sgd", "nesterovs_momentum": False},
    "nesterov": {"solver": "sgd"},
    "invscaling": {"solver": "sgd", "learning_rate": "invscaling", "power_t": 0.3},
    "adaptive": {"solver": "sgd", "learning_rate": "adaptive", "tol": 1e-1},
    "lbfgs": {"solver": "lbfgs"},
}


@pytest.mark.parametrize("early_stopping", [False, True], ids=["all rows", "early stopping"])
@pytest.mark.parametrize("batch_size", ["auto", 50], ids=["auto", "batch 50"])
@pytest.mark.parametrize(
    "activation",
    ["relu", *(pytest.param(a, marks=pytest.mark.slow) for a in ("tanh", "logistic", "identity"))],
)
@pytest.mark.parametrize("solver", list(SOLVERS))
def test_classifier_equals_scikit_learn(solver, activation, batch_size, early_stopping):
    if solver == "lbfgs" and (batch_size != "auto" or early_stopping):
        pytest.skip("lbfgs is full batch and has no early stopping")
    params = dict(
        hidden_layer_sizes=(12,), activation=activation, batch_size=batch_size,
        learning_rate_init=0.05, max_iter=12, random_state=3, early_stopping=early_stopping,
        n_iter_no_change=3, **SOLVERS[solver],
    )  # fmt: skip
    sk = SkClassifier(**params)
    a, b = _fit_both(sk, MLPClassifier(**sk.get_params()), X, LABELS)
    _assert_same(a, b, X)


@pytest.mark.parametrize("target", ["binary", "multilabel", "strings"])
@pytest.mark.parametrize("solver", ["adam", "nesterov", "lbfgs"])
def test_binary_multilabel_and_string_targets(target, solver):
    if target == "multilabel":
        Xt, y = make_multilabel_classification(n_samples=120, n_classes=4, random_state=0)
    elif target == "strings":
        Xt, y = X, np.where(LABELS % 2 == 0, "even", "odd")
    else:
        Xt, y = X, LABELS % 2
    sk = SkClassifier((9, 7), max_iter=8, random_state=1, batch_size=32, **SOLVERS[solver])
    a, b = _fit_both(sk, MLPClassifier(**sk.get_params()), Xt, y)
    _assert_same(a, b, Xt)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("solver", ["adam", "nesterov", "lbfgs"])
def test_regressor_equals_scikit_learn(solver, early_stopping, loss):
    if solver == "lbfgs" and early_stopping:
        pytest.skip("lbfgs has no early stopping")
    y = np.stack([X[:, 10:20].sum(axis=1), X[:, 30:34].mean(axis=1)], axis=1)
    y = y[:, 0] if loss == "poisson" else y
    params = dict(
        loss=loss, hidden_layer_sizes=(10,), activation="tanh", max_iter=10,
        learning_rate_init=0.01, random_state=5, early_stopping=early_stopping,
        batch_size=40, **SOLVERS[solver],
    )  # fmt: skip
    sk = SkRegressor(**params)
    a, b = _fit_both(sk, MLPRegressor(**sk.get_params()), X, y)
    _assert_same(a, b, X)
    np.testing.assert_allclose(b.score(X, y), a.score(X, y), rtol=RTOL)


@pytest.mark.parametrize("solver", ["adam", "nesterov", "lbfgs"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_sample_weight_and_sparse_input(solver, sparse):
    sw = np.random.default_rng(0).uniform(0.2, 2.0, X.shape[0])
    Xs = sp.csr_matrix(X) if sparse else X
    sk = SkClassifier((10,), max_iter=6, random_state=2, batch_size=64, **SOLVERS[solver])
    a, b = _fit_both(sk, MLPClassifier(**sk.get_params()), Xs, LABELS, sample_weight=sw)
    _assert_same(a, b, Xs)


def test_random_state_instances_warm_start_and_partial_fit():
    kw = dict(hidden_layer_sizes=(8,), max_iter=4, warm_start=True, batch_size=32)
    a = SkClassifier(random_state=np.random.RandomState(7), **kw)
    b = MLPClassifier(random_state=np.random.RandomState(7), **kw)
    for _ in range(3):  # warm starts continue the stream and the fitted state
        a, b = _fit_both(a, b, X, LABELS)
    _assert_same(a, b, X)
    a = SkClassifier((8,), solver="sgd", random_state=0, batch_size=40)
    b = MLPClassifier((8,), solver="sgd", random_state=0, batch_size=40)
    for k in range(4):
        rows = slice(60 * k, 60 * k + 60)
        a.partial_fit(X[rows], LABELS[rows], classes=np.arange(10))
        b.partial_fit(X[rows], LABELS[rows], classes=np.arange(10))
    _assert_same(a, b, X)


def test_verbose_output_is_scikit_learns(capsys):
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0, verbose=True)
    kw.update(early_stopping=True, solver="sgd", learning_rate="adaptive", tol=10.0)
    kw.update(n_iter_no_change=1)
    _fit_both(SkClassifier(**kw), MLPClassifier(**kw), X, LABELS)
    out = capsys.readouterr().out.splitlines()
    half = len(out) // 2
    assert out[:half] == out[half:] and any("Iteration 1, loss" in line for line in out)


@pytest.mark.parametrize(
    "Theirs,Ours", [(SkClassifier, MLPClassifier), (SkRegressor, MLPRegressor)]
)
def test_float32_trains_in_float32(Theirs, Ours):
    X32 = X.astype(np.float32)
    y = LABELS if Ours is MLPClassifier else X[:, 20]
    sk = Theirs(hidden_layer_sizes=(10,), max_iter=6, random_state=0, batch_size=64)
    a, b = _fit_both(sk, Ours(**sk.get_params()), X32, y)
    assert all(c.dtype == np.float32 for c in b.coefs_ + b.intercepts_)
    _assert_same(a, b, X32, rtol=1e-4, atol=1e-6)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        forced = Ours(hidden_layer_sizes=(4,), max_iter=2, dtype="float32").fit(X, y)
    assert forced.coefs_[0].dtype == np.float32


def test_get_params_round_trip_and_every_scikit_learn_parameter():
    for Theirs, Ours in ((SkClassifier, MLPClassifier), (SkRegressor, MLPRegressor)):
        theirs, ours = Theirs().get_params(), Ours().get_params()
        assert {k: v for k, v in ours.items() if k not in ("backend", "dtype", "devices")} == theirs
        assert Ours(**Theirs(max_iter=3, alpha=0.5).get_params()).get_params()["alpha"] == 0.5
