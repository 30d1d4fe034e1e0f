"""Proof against a peer no one here wrote: scikit-learn's MLPClassifier.

Started from the same weights with the same batch order, train_mlp's loss
curve and final weights equal scikit-learn's to 1e-9 in float64 for every
configuration the two share. Then backprop.MLPClassifier as an estimator:
clone, Pipeline, cross_val_score, GridSearchCV, arbitrary labels. Skipped
cleanly when scikit-learn is absent (CI installs it).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLP  # noqa: E402

from backprop import MLPClassifier  # noqa: E402
from backprop.nets import init_params  # noqa: E402
from backprop.train import train_mlp  # noqa: E402
from tests.conftest import HAVE_JAX  # noqa: E402

# short fits stop at max_iter on purpose; the warning itself is tested below
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

DIGITS = sklearn.datasets.load_digits()
X = (DIGITS.data[:400] / 16.0).astype(np.float64)
LABELS = DIGITS.target[:400]
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid"}
SOLVERS = {
    "sgd": ("sgd", {"momentum": 0.0}, {}),
    "momentum": ("sgd", {"momentum": 0.9, "nesterovs_momentum": False}, {"momentum": 0.9}),
    "nesterov": (
        "sgd",
        {"momentum": 0.9, "nesterovs_momentum": True},
        {"momentum": 0.9, "nesterov": True},
    ),
    "adam": ("adam", {}, {}),
}


def _sklearn_run(init, labels, activation, solver, sk_options, alpha, epochs, batch):
    """scikit-learn's MLPClassifier from our initial weights, rows in order."""
    clf = SkMLP(
        hidden_layer_sizes=(init[0].w.shape[1],),
        activation=activation,
        solver=solver,
        alpha=alpha,
        batch_size=batch,
        learning_rate_init=0.01,
        max_iter=1,
        shuffle=False,
        n_iter_no_change=10**6,
        warm_start=True,
        random_state=0,
        **sk_options,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, labels)  # sets up classes, layer counts and the output activation
        clf.coefs_ = [layer.w.copy() for layer in init]
        clf.intercepts_ = [layer.b.copy() for layer in init]
        clf.loss_curve_ = []
        clf.max_iter = epochs
        clf.fit(X, labels)  # warm start: fresh optimizer, our weights
    return np.array(clf.loss_curve_), clf.coefs_, clf.intercepts_


@pytest.mark.parametrize("binary", [False, True], ids=["10 classes", "binary"])
@pytest.mark.parametrize("alpha", [0.0, 1e-2], ids=["alpha 0", "alpha 0.01"])
@pytest.mark.parametrize("ours", list(SOLVERS))
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_loss_curve_and_weights_equal_scikit_learn(activation, ours, alpha, binary):
    labels = LABELS % 2 if binary else LABELS
    classes = 1 if binary else 10
    sizes = [64, 24, classes]
    init = init_params(sizes, seed=1, dtype="float64", scheme="glorot")
    solver, sk_options, our_options = SOLVERS[ours]
    epochs, batch = 8, 64  # 400 rows: six batches of 64 and a short one of 16
    curve, coefs, intercepts = _sklearn_run(
        init, labels, activation, solver, sk_options, alpha, epochs, batch
    )
    r = train_mlp(
        sizes,
        X,
        labels,
        activation=ACTIVATIONS[activation],
        output="sigmoid" if binary else "softmax",
        optimizer="adam" if ours == "adam" else ("sgd" if ours == "sgd" else "momentum"),
        lr=0.01,
        alpha=alpha,
        epochs=epochs,
        batch_size=batch,
        shuffle=False,
        init=init,
        dtype="float64",
        **our_options,
    )
    assert curve.shape == r.losses.shape
    np.testing.assert_allclose(r.losses, curve, rtol=1e-9)
    for layer, w, b in zip(r.params, coefs, intercepts, strict=True):
        np.testing.assert_allclose(layer.w, w, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.b, b, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")
def test_jax_backend_equals_scikit_learn_too():
    init = init_params([64, 16, 10], seed=2, dtype="float64", scheme="glorot")
    curve, coefs, _ = _sklearn_run(init, LABELS, "tanh", "adam", {}, 1e-3, 5, 50)
    r = train_mlp(
        [64, 16, 10], X, LABELS, activation="tanh", output="softmax", optimizer="adam",
        lr=0.01, alpha=1e-3, epochs=5, batch_size=50, shuffle=False, init=init,
        dtype="float64", backend="jax",
    )  # fmt: skip
    np.testing.assert_allclose(r.losses, curve, rtol=1e-9)
    np.testing.assert_allclose(r.params[0].w, coefs[0], rtol=1e-9, atol=1e-12)


# --- the estimator --------------------------------------------------------------------


def test_estimator_learns_digits_and_speaks_scikit_learn():
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = train_test_split(
        DIGITS.data / 16.0, DIGITS.target, test_size=0.25, stratify=DIGITS.target, random_state=0
    )
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=40, random_state=0).fit(Xtr, ytr)
    assert clf.score(Xte, yte) > 0.93
    assert clf.n_iter_ == len(clf.loss_curve_) <= 40 and clf.n_features_in_ == 64
    assert [c.shape for c in clf.coefs_] == [
        (64, 64),
        (64, 10),
    ] and clf.out_activation_ == "softmax"
    proba = clf.predict_proba(Xte)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(Xte), clf.classes_[np.argmax(proba, axis=1)])


def test_string_labels_and_the_binary_case():
    y = np.where(LABELS % 2 == 0, "even", "odd")
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["even", "odd"] and clf.n_outputs_ == 1
    assert clf.predict_proba(X[:5]).shape == (5, 2) and set(clf.predict(X)) <= {"even", "odd"}
    assert clf.score(X, y) > 0.8


def test_clone_pipeline_cross_val_score_and_grid_search():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    est = MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=60, learning_rate_init=0.01, random_state=0
    )
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est
    pipe = make_pipeline(StandardScaler(), est)
    scores = cross_val_score(pipe, X[:200], LABELS[:200] % 3, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.4)
    grid = GridSearchCV(est, {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (8,)]}, cv=2)
    grid.fit(X[:200], LABELS[:200] % 3)
    assert set(grid.best_params_) == {"alpha", "hidden_layer_sizes"}


def test_early_stopping_holds_out_a_validation_set():
    clf = MLPClassifier(
        hidden_layer_sizes=(32,), early_stopping=True, max_iter=300, random_state=0,
        learning_rate_init=0.01, n_iter_no_change=5,
    ).fit(X, LABELS)  # fmt: skip
    assert clf.validation_scores_ is not None and clf.n_iter_ < 300
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.8


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"solver": "newton"}, "The 'solver' parameter of MLPClassifier must be a str among"),
        ({"activation": "gelu"}, "The 'activation' parameter of MLPClassifier must be"),
        ({"hidden_layer_sizes": (0,)}, r"hidden_layer_sizes must be > 0, got \[0\]"),
        ({"random_state": "x"}, "The 'random_state' parameter of MLPClassifier must be"),
        (
            {"max_iter": 0},
            r"The 'max_iter' parameter of MLPClassifier must be an int in the range \[1, inf\)",
        ),
        ({"learning_rate_init": -1.0}, "The 'learning_rate_init' parameter of MLPClassifier"),
        ({"n_iter_no_change": 0}, "The 'n_iter_no_change' parameter of MLPClassifier"),
        ({"validation_fraction": 1.5, "early_stopping": True}, "The 'validation_fraction' param"),
        ({"backend": "torch"}, "The 'backend' parameter of MLPClassifier must be a str among"),
        ({"devices": 2}, "devices=2 needs backend='jax'"),
    ],
)
def test_bad_settings_raise_at_fit_in_the_estimators_words(params, message):
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**{"max_iter": 2, **params}).fit(X, LABELS)


def test_unfitted_estimator_and_bad_data():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted yet"):
        MLPClassifier().predict(X)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MLPClassifier(max_iter=2).fit(X, LABELS[:10])
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier(max_iter=2).fit(X, np.linspace(0, 1, len(X)))
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, LABELS)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 64"):
        clf.predict(X[:, :3])
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    np.testing.assert_allclose(clf.predict_log_proba(X[:4]), np.log(clf.predict_proba(X[:4])))


def test_import_backprop_does_not_need_scikit_learn():
    import subprocess
    import sys

    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def block(name, *a, **k):\n"
        "    if name == 'sklearn' or name.startswith('sklearn.'):\n"
        "        raise ImportError('blocked')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = block\n"
        "import numpy as np, backprop\n"
        "X = np.random.default_rng(0).standard_normal((40, 3)); y = (X[:, 0] > 0).astype(int)\n"
        "import warnings\n"
        "warnings.simplefilter('ignore', backprop.ConvergenceWarning)\n"
        "assert issubclass(backprop.ConvergenceWarning, UserWarning)\n"
        "clf = backprop.MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y)\n"
        "clf.partial_fit(X, y)\n"
        "es = backprop.MLPClassifier((4,), max_iter=5, early_stopping=True, random_state=0)\n"
        "es.fit(X, y)\n"
        "reg = backprop.MLPRegressor(hidden_layer_sizes=(4,), solver='lbfgs', max_iter=5)\n"
        "reg.fit(X, X[:, 0])\n"
        "assert not hasattr(backprop.MLPClassifier(solver='lbfgs'), 'partial_fit')\n"
        "try:\n"
        "    backprop.MLPClassifier(max_iter=0).fit(X, y)\n"
        "except ValueError as e:\n"
        "    print(e)\n"
        "print(clf.get_params()['max_iter'], clf.predict(X[:3]).shape, reg.predict(X).shape, clf)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == (
        "The 'max_iter' parameter of MLPClassifier must be an int in the range [1, inf). Got 0 "
        "instead."
    )
    assert lines[1].startswith("5 (3,) (40,) MLPClassifier(hidden_layer_sizes=(4,)")
