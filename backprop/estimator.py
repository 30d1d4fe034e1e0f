"""``MLPClassifier``: :func:`backprop.train_mlp` behind scikit-learn's estimator API.

Constructor parameters carry scikit-learn's names and meanings where they
exist (``hidden_layer_sizes``, ``activation``, ``solver``, ``alpha``,
``batch_size``, ``learning_rate_init``, ``max_iter``, ``momentum``,
``nesterovs_momentum``, ``beta_1``, ``beta_2``, ``epsilon``, ``shuffle``,
``random_state``, ``tol``, ``n_iter_no_change``, ``early_stopping``,
``validation_fraction``, ``verbose``), plus ``backend``, ``dtype`` and
``devices``. Training runs the hand-derived gradients of
:mod:`backprop.nets`; with the same initial weights and batch order it
follows scikit-learn's ``MLPClassifier`` to rounding (``tests/test_sklearn.py``).

With scikit-learn installed the class derives from its ``BaseEstimator`` and
``ClassifierMixin``, so ``clone``, ``Pipeline``, ``cross_val_score`` and
``GridSearchCV`` work as with any estimator; without it, ``get_params``,
``set_params``, ``fit``, ``predict``, ``predict_proba`` and ``score`` still
do. ``import backprop`` never needs scikit-learn.
"""

from __future__ import annotations

import inspect
import itertools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop import nets
from backprop._validate import (
    check_array,
    check_backend,
    check_dtype,
    check_memory,
    check_positive_int,
)
from backprop.nets import Layer, make_net, predict
from backprop.train import train_mlp

ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
"""scikit-learn's activation names -> this library's."""
SOLVERS = ("sgd", "adam")


class _Params:
    """``get_params`` / ``set_params`` from the constructor's signature (scikit-learn's API)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters and their current values."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> _Params:
        """Set constructor parameters; ``ValueError`` naming an unknown one."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; "
                    f"valid: {', '.join(valid)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if not (isinstance(v, type(defaults[k].default)) and v == defaults[k].default)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"


try:  # scikit-learn's own bases when it is installed: tags, clone, HTML repr, checks
    from sklearn.base import BaseEstimator, ClassifierMixin

    _BASES: tuple[type, ...] = (ClassifierMixin, BaseEstimator)
except ImportError:  # pragma: no cover - exercised by a test that blocks the import
    _BASES = (_Params,)


class MLPClassifier(*_BASES):  # type: ignore[misc]
    """A multi-layer perceptron classifier trained with hand-derived gradients.

    Parameters
    ----------
    hidden_layer_sizes : sequence of int
        Units of each hidden layer.
    activation : {"relu", "tanh", "logistic", "identity"}
        Hidden activation.
    solver : {"adam", "sgd"}
        "sgd" uses ``momentum`` (0 for plain SGD) with ``nesterovs_momentum``.
    alpha : float
        L2 penalty, alpha / 2 * sum(w^2) / batch rows.
    batch_size : int or "auto"
        Rows per step; "auto" is min(200, n_samples). Larger than the data:
        clipped, with a warning (as scikit-learn does).
    learning_rate_init : float
    max_iter : int
        Most epochs.
    shuffle : bool
        Reshuffle the rows every epoch.
    random_state : int or None
        Seeds the initial weights, the row order and the validation split;
        None draws a fresh seed at every fit.
    tol, n_iter_no_change : float, int
        Stop when the training loss (or, with ``early_stopping``, the
        validation accuracy) has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs.
    momentum, nesterovs_momentum : float, bool
    early_stopping : bool
        Hold out ``validation_fraction`` of the rows (stratified), score them
        after every epoch, stop on the rule above, keep the best weights.
    validation_fraction : float
    beta_1, beta_2, epsilon : float
        Adam's parameters.
    verbose : bool
        Print the loss of every epoch.
    backend : {"numpy", "jax"}
    dtype : {"float64", "float32"}
    devices : None, int, "all" or sequence of jax.Device
        JAX only: data-parallel training (see :func:`backprop.train_mlp`).

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
        The labels seen in ``fit``, sorted; any hashable, sortable labels.
    coefs_, intercepts_ : list of ndarray
        Each layer's weights (D_in, D_out) and biases (D_out,).
    loss_curve_ : list of float
        Training loss per epoch (scikit-learn's definition).
    n_iter_ : int
        Epochs run.
    validation_scores_, best_validation_score_ : list, float or None
        With ``early_stopping``.
    best_loss_ : float or None
    n_features_in_, n_outputs_, n_layers_, out_activation_ :
        As in scikit-learn.
    result_ : MLPResult
        The full training record.
    """

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate_init: float = 0.001,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        backend: str = "numpy",
        dtype: str = "float64",
        devices: Any = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.dtype = dtype
        self.devices = devices

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on X (n_samples, n_features) and labels y (n_samples,); returns self."""
        dt = check_dtype(self.dtype)
        check_backend(self.backend)
        X = check_array("X", X, dt, ndim=2)
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X must have shape (n_samples, n_features), got {X.shape}")
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y must be a 1-D array of {X.shape[0]} labels (one per row of X), got shape "
                f"{y.shape}"
            )
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise ValueError("y holds NaN or infinite labels")
        try:
            classes, labels = np.unique(y, return_inverse=True)
        except TypeError:  # labels that cannot be sorted together, such as 1 and "a"
            kinds = sorted({type(v).__name__ for v in y.ravel().tolist()})
            raise TypeError(
                f"y must hold labels of one sortable kind (all numbers or all strings), got a "
                f"mix of {', '.join(kinds)}"
            ) from None
        if classes.shape[0] < 2:
            raise ValueError(
                f"y must hold at least 2 classes to learn from, got {classes.tolist()}"
            )
        seed = self._seed()
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        X_train, y_train, validation = X, labels, None
        if self.early_stopping:
            X_train, y_train, X_val, y_val = _stratified_split(
                X, labels, self._validation_fraction(), seed
            )
            validation = (X_val, y_val)
        settings = self._settings(X_train.shape[0])
        binary = classes.shape[0] == 2
        sizes = [X.shape[1], *settings.pop("hidden"), 1 if binary else classes.shape[0]]
        check_memory(sizes, settings["batch_size"], dt.itemsize)  # before _init draws them
        init = self._init(sizes, seed, dt)
        progress = _print_epoch if self.verbose else None
        result = train_mlp(
            sizes,
            X_train,
            y_train,
            output="sigmoid" if binary else "softmax",
            init=init,
            seed=seed,
            validation=validation,
            progress=progress,
            backend=self.backend,
            dtype=dt.name,
            devices=self.devices,
            **settings,
        )
        self.classes_ = classes
        self.result_ = result
        self.coefs_ = [np.asarray(layer.w) for layer in result.params]
        self.intercepts_ = [np.asarray(layer.b) for layer in result.params]
        self.n_iter_ = result.epochs
        self.loss_curve_ = [float(v) for v in result.losses]
        self.loss_ = self.loss_curve_[-1]
        self.n_features_in_ = X.shape[1]
        self.n_outputs_ = sizes[-1]
        self.n_layers_ = len(sizes)
        self.out_activation_ = "logistic" if binary else "softmax"
        if self.early_stopping:
            scores = result.val_accuracies
            self.validation_scores_ = [float(v) for v in scores]  # type: ignore[union-attr]
            self.best_validation_score_ = max(self.validation_scores_)
            self.best_loss_ = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = float(np.min(result.losses))
        if not result.stopped_early and self.verbose:
            print(f"Stopping: maximum iterations ({self.max_iter}) reached.")
        return self

    def _settings(self, n_samples: int) -> dict[str, Any]:
        """train_mlp's keyword arguments from the constructor's, each checked."""
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, (int, np.integer)):
            hidden = (hidden,)
        if not isinstance(hidden, Sequence) or isinstance(hidden, str):
            raise ValueError(f"hidden_layer_sizes must be a sequence of ints, got {hidden!r}")
        hidden = [check_positive_int("each of hidden_layer_sizes", h) for h in hidden]
        # scikit-learn's names, or any of this library's (registered ones too)
        names = {**ACTIVATIONS, **{a: a for a in nets.ACTIVATIONS if a not in ACTIVATIONS}}
        if not isinstance(self.activation, str) or self.activation not in names:
            raise ValueError(
                f"activation must be one of {', '.join(names)}, got {self.activation!r}"
            )
        if self.solver not in SOLVERS:
            raise ValueError(
                f"solver must be one of {', '.join(SOLVERS)} (this library has no 'lbfgs'), "
                f"got {self.solver!r}"
            )
        if self.batch_size == "auto":
            batch = min(200, n_samples)
        else:
            batch = check_positive_int("batch_size", self.batch_size)
            if batch > n_samples:
                warnings.warn(
                    f"batch_size {batch} is larger than the {n_samples} samples: clipped",
                    UserWarning,
                    stacklevel=3,
                )
                batch = n_samples
        momentum = self.momentum
        optimizer = "adam" if self.solver == "adam" else ("momentum" if momentum else "sgd")
        return {
            "hidden": hidden,
            "activation": names[self.activation],
            "optimizer": optimizer,
            "lr": self.learning_rate_init,
            "epochs": self.max_iter,
            "batch_size": batch,
            "shuffle": self.shuffle,
            "momentum": momentum if optimizer == "momentum" else 0.9,
            "nesterov": self.nesterovs_momentum if optimizer == "momentum" else False,
            "beta1": self.beta_1,
            "beta2": self.beta_2,
            "eps": self.epsilon,
            "alpha": self.alpha,
            "early_stopping": True,
            "monitor": "val_accuracy" if self.early_stopping else "loss",
            "patience": self.n_iter_no_change,
            "tol": self.tol,
        }

    def _seed(self) -> int:
        seed = self.random_state
        if seed is None:
            return int(np.random.default_rng().integers(2**31))
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"random_state must be None or an integer >= 0, got {seed!r}")
        return int(seed)

    def _validation_fraction(self) -> float:
        f = self.validation_fraction
        if not (isinstance(f, (float, np.floating)) and 0.0 < f < 1.0):
            raise ValueError(f"validation_fraction must be a float in (0, 1), got {f!r}")
        return f

    def _init(self, sizes: list[int], seed: int, dt: np.dtype) -> tuple[Layer, ...]:
        """Glorot-uniform weights and biases, as scikit-learn draws them (its bounds, our RNG).

        U(-r, r) with r = sqrt(6 / (fan_in + fan_out)), or sqrt(2 / ...) for
        the logistic activation.
        """
        factor = 2.0 if self.activation == "logistic" else 6.0
        rng = np.random.default_rng(seed)
        layers = []
        for d_in, d_out in itertools.pairwise(sizes):
            r = np.sqrt(factor / (d_in + d_out))
            w = rng.uniform(-r, r, (d_in, d_out)).astype(dt)
            b = rng.uniform(-r, r, d_out).astype(dt)
            layers.append(Layer(w, b))
        return tuple(layers)

    def _check_fitted(self) -> None:
        if not hasattr(self, "coefs_"):
            try:
                from sklearn.exceptions import NotFittedError
            except ImportError:  # pragma: no cover
                NotFittedError = RuntimeError
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(X, y) first"
            )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``."""
        self._check_fitted()
        dt = np.dtype(self.coefs_[0].dtype)
        X = check_array("X", X, dt, ndim=2)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but this classifier was fitted with "
                f"{self.n_features_in_}"
            )
        params = tuple(Layer(w, b) for w, b in zip(self.coefs_, self.intercepts_, strict=True))
        net = self.result_.net
        p = predict(params, X, make_net(net.sizes, net.activations, net.output))
        if p.shape[1] == 1:
            return np.hstack([1 - p, p])
        return p

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, (n_samples,), from ``classes_``."""
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of ``predict(X)`` against y (optionally weighted)."""
        predicted = self.predict(X)
        y = np.asarray(y)
        if y.shape != predicted.shape:  # (N, 1) against (N,) would broadcast to (N, N)
            raise ValueError(
                f"y must be a 1-D array of {predicted.shape[0]} labels (one per row of X), got "
                f"shape {y.shape}"
            )
        hits = predicted == y
        return float(np.average(hits, weights=sample_weight))


def _print_epoch(epoch: int, loss: float) -> None:
    print(f"Iteration {epoch}, loss = {loss:.8f}")


def _stratified_split(
    X: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of every class's rows (at least one each), seeded."""
    rng = np.random.default_rng((seed, 2))
    held = []
    for k in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == k))
        take = max(1, round(fraction * rows.shape[0]))
        if take >= rows.shape[0]:
            raise ValueError(
                f"validation_fraction={fraction} leaves no training rows of class index {k}; "
                "use a smaller fraction or more data"
            )
        held.append(rows[:take])
    val = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(labels.shape[0]), val)
    if val.shape[0] < 2:
        raise ValueError("the validation set is too small: increase validation_fraction")
    return X[train], labels[train], X[val], labels[val]
