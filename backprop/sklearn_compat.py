"""What :mod:`backprop.estimator` borrows from scikit-learn, with a stand-in for each
piece when scikit-learn is not installed (``import backprop`` never needs it).

With scikit-learn: its input validation (``validate_data``: dtypes, sparse
formats, feature names, messages), ``LabelBinarizer``, ``train_test_split``,
``accuracy_score``, ``r2_score``, parameter constraints and ``available_if``
are used as they are, so the estimators behave as scikit-learn's to the
message. Without it: the small versions below (a plain ``get_params`` /
``set_params`` base, a label binariser for binary, multiclass and multilabel
y, a shuffle split drawn from the same ``RandomState`` stream, accuracy and
R^2), with messages in the same words.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Set as AbcSet
from typing import Any

import numpy as np

try:
    import sklearn  # noqa: F401

    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised by a test that blocks the import
    HAVE_SKLEARN = False


def issparse(X: Any) -> bool:
    """A SciPy sparse matrix or array (without importing SciPy)."""
    return hasattr(X, "tocsr") and not isinstance(X, np.ndarray)


def safe_dot(a: Any, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a dense or sparse a, as a dense array."""
    out = a @ b
    return np.asarray(out) if not isinstance(out, np.ndarray) else out


def check_random_state(seed: Any) -> np.random.RandomState:
    """scikit-learn's ``check_random_state``: None -> NumPy's global RandomState."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")


# --- parameters -------------------------------------------------------------------------


def parameter_constraints(regressor: bool = False) -> dict:
    """scikit-learn's ``_parameter_constraints`` of its MLPs, plus backend, dtype, devices."""
    if not HAVE_SKLEARN:
        return {}
    from numbers import Integral, Real

    from sklearn.utils._param_validation import Interval, Options, StrOptions

    c: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(_ActivationNames())],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions({"numpy", "jax"})],
        "dtype": [None, StrOptions({"float32", "float64"})],
        "devices": "no_validation",
    }
    if regressor:
        c["loss"] = [StrOptions({"squared_error", "poisson"})]
    return c


class _ActivationNames(AbcSet):
    """The hidden activations the estimators accept, read at each check (a live set):
    scikit-learn's names, then every other activation registered in the library."""

    def _names(self) -> tuple[str, ...]:
        from backprop.sklearn_step import activation_names

        return activation_names()

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Any:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _from_iterable(cls, it: Any) -> frozenset:
        return frozenset(it)  # set operations (scikit-learn's deprecated - options) give sets


def check_activation(est: Any) -> None:
    """``ValueError`` in scikit-learn's words unless ``est.activation`` is an accepted name."""
    names = _ActivationNames()
    if not isinstance(est.activation, str) or est.activation not in names:
        raise ValueError(
            f"The 'activation' parameter of {type(est).__name__} must be a str among "
            f"{{{', '.join(repr(n) for n in names)}}}. Got {est.activation!r} instead."
        )


_CHOICES = {
    "solver": ("lbfgs", "sgd", "adam"),
    "learning_rate": ("constant", "invscaling", "adaptive"),
    "backend": ("numpy", "jax"),
    "loss": ("squared_error", "poisson"),
}
_INTERVALS = {  # name: (int?, low, high, low closed, high closed)
    "alpha": (False, 0, None, True, False),
    "learning_rate_init": (False, 0, None, False, False),
    "power_t": (False, 0, None, True, False),
    "max_iter": (True, 1, None, True, False),
    "tol": (False, 0, None, True, False),
    "momentum": (False, 0, 1, True, True),
    "validation_fraction": (False, 0, 1, True, False),
    "beta_1": (False, 0, 1, True, False),
    "beta_2": (False, 0, 1, True, False),
    "epsilon": (False, 0, None, False, False),
    "max_fun": (True, 1, None, True, False),
}


def validate_params(est: Any) -> None:
    """Check every constructor parameter; scikit-learn's ``_validate_params`` when installed.

    Raises ``ValueError`` (scikit-learn's ``InvalidParameterError``):
    "The 'max_iter' parameter of MLPClassifier must be an int in the range
    [1, inf). Got 0 instead."
    """
    if HAVE_SKLEARN:
        est._validate_params()
        return
    name = type(est).__name__

    def bad(param: str, what: str) -> ValueError:
        return ValueError(
            f"The {param!r} parameter of {name} must be {what}. Got {getattr(est, param)!r} "
            "instead."
        )

    params = est.get_params()
    for param, choices in _CHOICES.items():
        if param in params and params[param] not in choices:
            raise bad(param, "a str among " + str(set(choices)))
    for param, (integral, low, high, lc, hc) in _INTERVALS.items():
        v = params[param]
        kind = numbers.Integral if integral else numbers.Real
        ok = isinstance(v, kind) and not isinstance(v, bool)
        if ok:
            ok = (v >= low if lc else v > low) and (high is None or (v <= high if hc else v < high))
        if not ok:
            hi = "inf" if high is None else high
            what = f"{'an int' if integral else 'a float'} in the range "
            what += f"{'[' if lc else '('}{low}, {hi}{']' if hc else ')'}"
            raise bad(param, what)
    for param in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
        if not isinstance(params[param], (bool, np.bool_)):
            raise bad(param, "an instance of 'bool'")
    b = params["batch_size"]
    if not (b == "auto" if isinstance(b, str) else isinstance(b, numbers.Integral) and b >= 1):
        raise bad("batch_size", "a str among {'auto'} or an int in the range [1, inf)")
    n = params["n_iter_no_change"]
    if not (n == np.inf or (isinstance(n, numbers.Integral) and n >= 1)):
        raise bad("n_iter_no_change", "an int in the range [1, inf) or a float among {inf}")
    if params["dtype"] not in (None, "float32", "float64"):
        raise bad("dtype", "None or a str among {'float32', 'float64'}")
    h = params["hidden_layer_sizes"]
    if not (hasattr(h, "__iter__") or isinstance(h, numbers.Integral)):
        raise bad("hidden_layer_sizes", "an array-like or an int in the range [1, inf)")
    rs = params["random_state"]
    if not (rs is None or isinstance(rs, (numbers.Integral, np.random.RandomState))):
        raise bad("random_state", "an int, a numpy.random.RandomState instance or None")


# --- devices that survive pickling -------------------------------------------------------


class DeviceIds(tuple):
    """JAX devices as ``(platform, id)`` pairs: what a pickle stores for ``devices``."""


def devices_to_ids(devices: Any) -> Any:
    if devices is None or isinstance(devices, (int, str, DeviceIds)):
        return devices
    try:
        return DeviceIds((d.platform, int(d.id)) for d in devices)
    except (TypeError, AttributeError):
        return devices


def devices_from_ids(devices: Any) -> Any:
    if not isinstance(devices, DeviceIds):
        return devices
    try:
        import jax
    except ImportError:  # pragma: no cover
        return devices
    found = {(d.platform, d.id): d for d in jax.devices()}
    missing = [pair for pair in devices if tuple(pair) not in found]
    if missing:
        warnings.warn(
            f"devices {missing} of the pickled estimator are not in this process "
            f"({sorted(found)}); kept as (platform, id) pairs",
            UserWarning,
            stacklevel=3,
        )
        return devices
    return [found[tuple(pair)] for pair in devices]


# --- data ------------------------------------------------------------------------------


def _dtypes(est: Any) -> Any:
    if est.dtype is None:
        return (np.float64, np.float32)
    return np.dtype(est.dtype).type


def validate_X(est: Any, X: Any, reset: bool) -> Any:
    """X for predict: checked against the fit's features (names and count)."""
    if HAVE_SKLEARN:
        from sklearn.utils.validation import validate_data

        return validate_data(est, X, accept_sparse=["csr", "csc"], reset=reset)
    return _plain_X(est, X, None, reset)


def validate_X_y(est: Any, X: Any, y: Any, reset: bool, y_numeric: bool) -> tuple[Any, Any]:
    """X (n, d) in the fit's dtype and y, checked together."""
    if HAVE_SKLEARN:
        from sklearn.utils.validation import validate_data

        return validate_data(
            est, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=y_numeric,
            dtype=_dtypes(est), reset=reset,
        )  # fmt: skip
    X = _plain_X(est, X, _dtypes(est), reset)
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: {[X.shape[0], y.size]}"
        )
    if y_numeric:
        y = y.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("Input y contains NaN or infinity.")
    return X, y


def _plain_X(est: Any, X: Any, dtypes: Any, reset: bool) -> Any:
    names = getattr(X, "columns", None)
    if issparse(X):
        X = X.tocsr()
    else:
        X = np.asarray(X)
    if dtypes is None:
        target = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    elif isinstance(dtypes, tuple):
        target = X.dtype if X.dtype in dtypes else dtypes[0]
    else:
        target = dtypes
    try:
        X = X.astype(target)
    except (TypeError, ValueError) as e:
        raise ValueError(f"could not convert X to {np.dtype(target).name}: {e}") from None
    if X.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {X.ndim}D array instead; reshape your data with "
            "array.reshape(-1, 1) for a single feature or array.reshape(1, -1) for a single "
            "sample."
        )
    data = X.data if issparse(X) else X
    if not np.all(np.isfinite(data)):
        raise ValueError("Input X contains NaN or infinity.")
    if X.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required."
        )
    if reset:
        est.n_features_in_ = X.shape[1]
        if names is not None and all(isinstance(c, str) for c in names):
            est.feature_names_in_ = np.asarray(list(names), dtype=object)
        elif hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    elif X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    return X


def check_sample_weight(sample_weight: Any, X: Any) -> np.ndarray:
    if HAVE_SKLEARN:
        from sklearn.utils.validation import _check_sample_weight

        return _check_sample_weight(sample_weight, X)
    sw = np.asarray(sample_weight, dtype=X.dtype)
    if sw.ndim == 0:
        sw = np.full(X.shape[0], sw, dtype=X.dtype)
    if sw.shape != (X.shape[0],):
        raise ValueError(f"sample_weight.shape == {sw.shape}, expected {(X.shape[0],)}!")
    if not np.all(np.isfinite(sw)):
        raise ValueError("Input sample_weight contains NaN or infinity.")
    return sw


def column_or_1d(y: Any) -> np.ndarray:
    if HAVE_SKLEARN:
        from sklearn.utils.validation import column_or_1d as c

        return c(y, warn=True)
    warnings.warn(
        "A column-vector y was passed when a 1d array was expected. Please change the shape "
        "of y to (n_samples, ), for example using ravel().",
        UserWarning,
        stacklevel=3,
    )
    return np.ravel(y)


def check_is_fitted(est: Any) -> None:
    if HAVE_SKLEARN:
        from sklearn.utils.validation import check_is_fitted as c

        c(est)
        return
    if not hasattr(est, "coefs_"):
        from backprop.estimator import NotFittedError

        raise NotFittedError(
            f"This {type(est).__name__} instance is not fitted yet. Call 'fit' with appropriate "
            "arguments before using this estimator."
        )


# --- labels ----------------------------------------------------------------------------


def type_of_target(y: Any) -> str:
    if HAVE_SKLEARN:
        from sklearn.utils.multiclass import type_of_target as t

        return t(y)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        if np.all((y == 0) | (y == 1)):
            return "multilabel-indicator"
        return "multiclass-multioutput"
    y = y.ravel()
    if y.dtype.kind == "f" and np.any(y != np.round(y)):
        return "continuous"
    return "binary" if np.unique(y).shape[0] <= 2 else "multiclass"


def unique_labels(y: Any) -> np.ndarray:
    if HAVE_SKLEARN:
        from sklearn.utils.multiclass import unique_labels as u

        return u(y)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.arange(y.shape[1])
    return np.unique(y)


def partial_fit_first_call(est: Any, classes: Any) -> bool:
    """scikit-learn's ``_check_partial_fit_first_call``: sets ``classes_`` on the first call."""
    if getattr(est, "classes_", None) is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is not None:
        if getattr(est, "classes_", None) is not None:
            if not np.array_equal(est.classes_, unique_labels(classes)):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call to partial_fit, "
                    f"was: {est.classes_!r}"
                )
        else:
            est.classes_ = unique_labels(classes)
            return True
    return False


class _PlainLabelBinarizer:
    """Binary, multiclass and multilabel-indicator targets as 0/1 columns, and back."""

    def fit(self, y: Any) -> _PlainLabelBinarizer:
        self.y_type_ = type_of_target(y)
        if self.y_type_ not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(f"Unknown label type: {self.y_type_}")
        self.classes_ = unique_labels(y)
        return self

    def transform(self, y: Any) -> np.ndarray:
        y = np.asarray(y)
        if self.y_type_ == "multilabel-indicator":
            return y.astype(int)
        if self.y_type_ == "binary":
            pos = self.classes_[-1] if self.classes_.shape[0] > 1 else None
            return (y.ravel() == pos).astype(int)[:, None]
        return (y.ravel()[:, None] == self.classes_[None, :]).astype(int)

    def inverse_transform(self, Y: Any) -> np.ndarray:
        Y = np.asarray(Y)
        if self.y_type_ == "multilabel-indicator":
            return (Y > 0.5).astype(int)
        if self.y_type_ == "binary":
            if self.classes_.shape[0] == 1:
                return np.repeat(self.classes_[0], Y.shape[0])
            return self.classes_[(Y.reshape(Y.shape[0], -1)[:, -1] > 0.5).astype(int)]
        return self.classes_[np.argmax(Y, axis=1)]


def LabelBinarizer() -> Any:
    if HAVE_SKLEARN:
        from sklearn.preprocessing import LabelBinarizer as L

        return L()
    return _PlainLabelBinarizer()


# --- splitting and scores ----------------------------------------------------------------


def train_test_split(*arrays: Any, random_state: Any, test_size: float, stratify: Any) -> list:
    """scikit-learn's ``train_test_split`` (its own when installed)."""
    if HAVE_SKLEARN:
        from sklearn.model_selection import train_test_split as t

        return t(*arrays, random_state=random_state, test_size=test_size, stratify=stratify)
    n = arrays[0].shape[0]
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_train <= 0:
        raise ValueError(
            f"With n_samples={n}, test_size={test_size} and train_size=None, the resulting "
            "train set will be empty. Adjust any of the aforementioned parameters."
        )
    if stratify is None:
        perm = random_state.permutation(n)
        test, train = perm[:n_test], perm[n_test : n_test + n_train]
    else:  # per class, in proportion (scikit-learn's own rounding is not reproduced)
        keys = np.unique(np.asarray(stratify).reshape(n, -1), axis=0, return_inverse=True)[1]
        keys = keys.ravel()
        test_parts = []
        for k in np.unique(keys):
            rows = random_state.permutation(np.flatnonzero(keys == k))
            test_parts.append(rows[: max(1, round(test_size * rows.shape[0]))])
        test = np.concatenate(test_parts)
        train = np.setdiff1d(np.arange(n), test)
    out = []
    for a in arrays:
        out += [a[train], a[test]]
    return out


def accuracy_score(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    if HAVE_SKLEARN:
        from sklearn.metrics import accuracy_score as a

        return a(y_true, y_pred, sample_weight=sample_weight)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    hits = y_true == y_pred if y_true.ndim == 1 else np.all(y_true == y_pred, axis=1)
    return float(np.average(hits, weights=sample_weight))


def r2_score(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    if HAVE_SKLEARN:
        from sklearn.metrics import r2_score as r

        return r(y_true, y_pred, sample_weight=sample_weight)
    yt = np.asarray(y_true, float).reshape(len(y_true), -1)
    yp = np.asarray(y_pred, float).reshape(len(y_pred), -1)
    w = np.ones(yt.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
    num = (w[:, None] * (yt - yp) ** 2).sum(axis=0)
    den = (w[:, None] * (yt - np.average(yt, axis=0, weights=w)) ** 2).sum(axis=0)
    scores = np.where(den != 0, 1 - num / np.where(den != 0, den, 1), np.where(num == 0, 1.0, 0.0))
    return float(np.mean(scores))


# --- lbfgs ------------------------------------------------------------------------------


def scipy_needs_iprint() -> bool:
    """SciPy before 1.15 takes ``iprint`` (as scikit-learn's lbfgs options say)."""
    import scipy

    major, minor = (int(p) for p in scipy.__version__.split(".")[:2])
    return (major, minor) < (1, 15)


def check_optimize_result(result: Any, max_iter: int) -> int:
    """scikit-learn's ``_check_optimize_result("lbfgs", ...)``: iterations, and its warning."""
    from backprop.estimator import ConvergenceWarning

    n_iter = min(result.nit, max_iter)
    if result.status != 0:
        msg = (
            f"lbfgs failed to converge after {n_iter} iteration(s) (status={result.status}):\n"
            f"{result.message}\n"
        )
        if n_iter == max_iter:
            msg += (
                "\nIncrease the number of iterations to improve the convergence "
                f"(max_iter={max_iter})."
            )
        msg += (
            "\nYou might also want to scale the data as shown in:\n"
            "    https://scikit-learn.org/stable/modules/preprocessing.html"
        )
        warnings.warn(msg, ConvergenceWarning, stacklevel=4)
    return n_iter


# --- partial_fit only where the solver allows it -------------------------------------------


class _AvailableIf:
    """A method that exists only when ``check(obj)`` holds (scikit-learn's ``available_if``)."""

    def __init__(self, fn: Any, check: Any) -> None:
        self.fn, self.check = fn, check
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self.fn
        self.check(obj)  # raises AttributeError
        return self.fn.__get__(obj, owner)


def make_available_if(cls: type, name: str, check: Any) -> None:
    fn = cls.__dict__[name]
    if HAVE_SKLEARN:
        from sklearn.utils.metaestimators import available_if

        setattr(cls, name, available_if(check)(fn))
    else:
        setattr(cls, name, _AvailableIf(fn, check))


# --- the bases when scikit-learn is absent --------------------------------------------------


class BaseEstimator:
    """``get_params`` / ``set_params`` from the constructor's signature (scikit-learn's API)."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters and their current values."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Any:
        """Set constructor parameters; ``ValueError`` naming an unknown one."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. Valid "
                    f"parameters are: {valid!r}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = []
        for k, v in self.get_params().items():
            d = defaults[k].default
            same = type(v) is type(d) and (v is d or (not isinstance(v, np.ndarray) and v == d))
            if not same:
                changed.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __sklearn_tags__(self) -> Any:
        class _Tags:
            class input_tags:
                sparse = True

            class classifier_tags:
                multi_label = True

        return _Tags()


class ClassifierMixin:
    """``score``: mean accuracy."""

    _estimator_type = "classifier"

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of ``predict(X)`` against y (optionally weighted)."""
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)  # type: ignore[attr-defined]


class RegressorMixin:
    """``score``: R^2."""

    _estimator_type = "regressor"

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2 of ``predict(X)`` against y (optionally weighted)."""
        return r2_score(y, self.predict(X), sample_weight=sample_weight)  # type: ignore[attr-defined]
