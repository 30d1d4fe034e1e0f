"""``MLPClassifier`` and ``MLPRegressor``: drop-ins for scikit-learn's, trained
with this library's hand-derived gradients.

Every constructor parameter of scikit-learn's ``MLPClassifier`` /
``MLPRegressor`` (1.9) is here with the same name, default and meaning, plus
``backend`` ("numpy" or "jax"), ``dtype`` (None: float32 input trains in
float32, anything else in float64, as scikit-learn does; or "float32" /
"float64" to force one) and ``devices`` (JAX only).

**Same random_state, same model.** Each fit draws, from
``check_random_state(random_state)`` (a NumPy ``RandomState``) and in
scikit-learn's order, the initial weights (layer by layer ``uniform(-b, b)``
for the weights, then the biases, in float64 then cast, ``b = sqrt(6 /
(fan_in + fan_out))`` or ``sqrt(2 / ...)`` for the logistic activation), the
early-stopping split (scikit-learn's ``train_test_split``, stratified for a
single-output classifier) and each epoch's shuffle (``RandomState.shuffle``
of ``arange(n)``, applied to the previous order). The epoch loop, its
batches (``gen_batches``: a short last batch is a step of its own), the loss
(from clipped probabilities), the L2 term, the optimizers and their learning
rate schedules, the no-improvement rule, warm starts and ``partial_fit`` are
scikit-learn's, so with identical arguments in float64 ``loss_curve_``,
``coefs_`` and predictions equal scikit-learn's to rounding
(``tests/test_sklearn_equal.py``; the settings where this cannot hold are
listed in the README).

**Solvers.** "sgd" and "adam" run the in-place step of
:mod:`backprop.sklearn_step` (NumPy) or, with ``backend="jax"``, each epoch's
batches compiled into one ``lax.scan`` of :func:`backprop.nets.loss_and_grads`
(weighted rows) and the same optimizer updates; a quiet fit without early
stopping runs many epochs per compiled call, the epoch's end (loss,
no-improvement rule, rate schedule, stop) in the graph
(:meth:`_BaseMLP._run_chunks`). "lbfgs" hands the loss and
gradient to ``scipy.optimize.minimize(method="L-BFGS-B")`` with ``maxiter``,
``maxfun`` and ``gtol``, as scikit-learn does; on JAX the loss and gradient
come from the JAX derivation (one compiled call per evaluation) and the
optimizer stays SciPy's.

With scikit-learn installed the classes derive from its ``BaseEstimator``
and mixins (``clone``, pipelines, search, ``check_estimator``), and input
checks, label binarisation and the validation split are scikit-learn's own.
Without it, ``import backprop`` still works and so do the estimators, with
checks and a label binariser written here.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop import _interrupt, sklearn_step
from backprop._validate import check_memory
from backprop.sklearn_step import Step

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning, NotFittedError

    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised by a test that blocks the import
    HAVE_SKLEARN = False

    class ConvergenceWarning(UserWarning):  # type: ignore[no-redef]
        """The optimizer stopped before converging (scikit-learn's, when it is absent)."""

    class NotFittedError(ValueError, AttributeError):  # type: ignore[no-redef]
        """The estimator is used before ``fit`` (scikit-learn's, when it is absent)."""

    from backprop.sklearn_compat import (  # type: ignore[assignment]
        BaseEstimator,
        ClassifierMixin,
        RegressorMixin,
    )

from backprop import sklearn_compat as compat

STOCHASTIC_SOLVERS = tuple(sklearn_step.SOLVERS)
BACKENDS = ("numpy", "jax")


def _pack(coefs: Sequence[np.ndarray], intercepts: Sequence[np.ndarray]) -> np.ndarray:
    return np.hstack([a.ravel() for a in list(coefs) + list(intercepts)])


class _BaseMLP(BaseEstimator):  # type: ignore[misc,valid-type]
    """What the classifier and the regressor share: scikit-learn's ``BaseMultilayerPerceptron``."""

    _parameter_constraints: dict = compat.parameter_constraints()

    # --- parameters ------------------------------------------------------------------

    def _validate_all_params(self) -> None:
        compat.validate_params(self)
        if not HAVE_SKLEARN:  # scikit-learn's validation reads the live list itself
            compat.check_activation(self)
        if self.backend == "numpy" and self.devices is not None:
            raise ValueError(
                f"devices={self.devices!r} needs backend='jax' (data-parallel training runs on "
                "JAX's devices); the NumPy backend runs on one"
            )

    def _check_solver(self) -> bool:
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    # --- devices survive clone and pickle ---------------------------------------------

    def __sklearn_clone__(self) -> Any:
        """Clone as scikit-learn does, except that ``devices`` is passed on as it is.

        JAX's ``Device`` objects cannot be deep-copied or pickled; they are
        process-wide singletons, so a clone shares them.
        """
        params = self.get_params(deep=False)
        devices = params.pop("devices")
        from sklearn.base import clone

        new = type(self)(**{k: clone(v, safe=False) for k, v in params.items()}, devices=devices)
        return new

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        state = dict(state)
        state["devices"] = compat.devices_to_ids(state.get("devices"))
        state.pop("_jax_cache", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["devices"] = compat.devices_from_ids(state.get("devices"))
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:  # pragma: no cover
            self.__dict__.update(state)

    # --- the network -----------------------------------------------------------------

    def _hidden_sizes(self) -> list[int]:
        hidden = self.hidden_layer_sizes
        if not hasattr(hidden, "__iter__"):
            hidden = [hidden]
        hidden = list(hidden)
        if np.any(np.array(hidden) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        return [int(h) for h in hidden]

    def _initialize(self, y: np.ndarray, layer_units: list[int], dtype: Any) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in itertools.pairwise(layer_units):
            coef, intercept = self._init_coef(fan_in, fan_out, dtype)
            self.coefs_.append(coef)
            self.intercepts_.append(intercept)
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _init_coef(self, fan_in: int, fan_out: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        """Glorot uniform, drawn in float64 from the fit's RandomState, then cast."""
        factor = sklearn_step.glorot_factor(self.activation)
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
        intercept = self._random_state.uniform(-bound, bound, fan_out)
        return coef.astype(dtype, copy=False), intercept.astype(dtype, copy=False)

    def _forward_pass_fast(self, X: Any, check_input: bool = True) -> np.ndarray:
        """Output activations (n_samples, n_outputs) of the fitted network."""
        if check_input:
            X = compat.validate_X(self, X, reset=False)
        a = X
        last = self.n_layers_ - 2
        for i in range(self.n_layers_ - 1):
            a = compat.safe_dot(a, self.coefs_[i])
            a += self.intercepts_[i]
            if i != last:
                sklearn_step.activate_hidden(self.activation, a)
            else:
                sklearn_step.activate_output(self.out_activation_, a)
        return a

    # --- fitting ---------------------------------------------------------------------

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Fit the model to X (n_samples, n_features) and y; returns self.

        Parameters
        ----------
        X : array or SciPy sparse matrix (n_samples, n_features)
        y : array (n_samples,) or (n_samples, n_outputs)
            Class labels (classifier; an indicator matrix for multilabel) or
            real targets (regressor).
        sample_weight : array (n_samples,), optional
            Per-sample weights of the loss.
        """
        self._validate_all_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False) -> Any:
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_samples, n_features = X.shape
        if sample_weight is not None:
            sample_weight = compat.check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features, *hidden, self.n_outputs_]
        self._random_state = compat.check_random_state(self.random_state)
        if first_pass:  # refuse what cannot fit in memory before drawing the weights
            rows = min(n_samples, 200 if self.batch_size == "auto" else int(self.batch_size))
            check_memory(
                layer_units, n_samples if self.solver == "lbfgs" else rows, X.dtype.itemsize
            )
            self._initialize(y, layer_units, X.dtype)
        if self.solver in STOCHASTIC_SOLVERS:
            self._fit_stochastic(X, y, sample_weight, layer_units, incremental)
        else:
            self._fit_lbfgs(X, y, sample_weight, layer_units)
        weights = list(self.coefs_) + list(self.intercepts_)
        if not all(np.isfinite(w).all() for w in weights):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
        return self

    def _new_step(self, layer_units: list[int], dtype: Any, rows: int) -> Step:
        step = Step(layer_units, self.activation, self.out_activation_, dtype, rows)
        step.set_params(self.coefs_, self.intercepts_)
        return step

    def _gradient_function(self, step: Step, X: Any, rows: int) -> Any:
        """``f(X, Y, sw) -> loss`` for the X it was made for, the gradient into ``step.grad``."""
        if self.backend == "numpy":
            if compat.issparse(X) or not step.bias_in_product(X.shape[0]):
                return lambda Xb, Yb, sw: step.loss_and_grads(Xb, Yb, self.alpha, sw)
            Xa = step.with_ones(X)  # the bias in the first product (every call sees all of X)
            return lambda Xb, Yb, sw: step.loss_and_grads(Xa, Yb, self.alpha, sw, ones=True)
        from backprop import sklearn_jax

        return sklearn_jax.gradient_function(self, step, rows)

    def _fit_lbfgs(self, X: Any, y: np.ndarray, sample_weight: Any, layer_units: list[int]) -> None:
        """scikit-learn's L-BFGS: SciPy's L-BFGS-B on the packed parameters."""
        import scipy.optimize

        dtype = X.dtype
        step = self._new_step(layer_units, dtype, X.shape[0])
        Y = np.asarray(y, dtype)
        grad_fn = self._gradient_function(step, X, X.shape[0])

        def loss_grad(packed: np.ndarray) -> tuple[float, np.ndarray]:
            step.theta[...] = packed
            loss = grad_fn(X, Y, sample_weight)
            return loss, step.grad.astype(np.float64)

        iprint = 1 if (self.verbose is True or self.verbose >= 1) else -1
        options: dict[str, Any] = {
            "maxfun": self.max_fun,
            "maxiter": self.max_iter,
            "gtol": self.tol,
        }
        if compat.scipy_needs_iprint():
            options["iprint"] = iprint
        with np.errstate(over="ignore", invalid="ignore"):
            res = scipy.optimize.minimize(
                loss_grad,
                _pack(self.coefs_, self.intercepts_).astype(np.float64),
                method="L-BFGS-B",
                jac=True,
                options=options,
            )
        self.n_iter_ = compat.check_optimize_result(res, self.max_iter)
        self.loss_ = float(res.fun)
        step.theta[...] = res.x
        self.coefs_, self.intercepts_ = step.coefs(), step.intercepts()

    def _fit_stochastic(
        self,
        X: Any,
        y: np.ndarray,
        sample_weight: Any,
        layer_units: list[int],
        incremental: bool,
    ) -> None:
        """scikit-learn's ``_fit_stochastic``, statement for statement, on the in-place step."""
        dtype = X.dtype
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            should_stratify = self._is_classifier() and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            if sample_weight is None:
                X_train, X_val, y_train, y_val = compat.train_test_split(
                    X, y, random_state=self._random_state,
                    test_size=float(self.validation_fraction), stratify=stratify,
                )  # fmt: skip
                sw_train = sw_val = None
            else:
                X_train, X_val, y_train, y_val, sw_train, sw_val = compat.train_test_split(
                    X, y, sample_weight, random_state=self._random_state,
                    test_size=float(self.validation_fraction), stratify=stratify,
                )  # fmt: skip
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or the "
                    "size of your dataset."
                )
            if self._is_classifier():
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, sw_train = X, y, sample_weight
            X_val = y_val = sw_val = None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped",
                    stacklevel=4,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        step = self._new_step(layer_units, dtype, batch_size)
        size = step.theta.shape[0]
        opt = getattr(self, "_optimizer", None)
        if not incremental or opt is None or getattr(opt, "size", None) != size:
            opt = sklearn_step.SOLVERS[self.solver].for_estimator(self, size, dtype)
            opt.size = size
        self._optimizer = opt
        # while training, coefs_ and intercepts_ are views of the step's parameters
        self.coefs_, self.intercepts_ = step.W, step.b
        Y_train = np.asarray(y_train, dtype)
        dense = not compat.issparse(X_train)
        run_epoch = self._epoch_runner(step, X_train, Y_train, sw_train, batch_size)

        # JAX, quiet, no validation split, not partial_fit: many epochs per compiled call
        chunked = self.backend == "jax" and not (early_stopping or incremental or self.verbose)
        chunked = chunked and self.best_loss_ is not None  # (None: as scikit-learn, a TypeError)
        try:
            self.n_iter_ = 0
            if chunked:
                self._run_chunks(run_epoch, opt, sample_idx)
            for _ in range(0 if chunked else self.max_iter):
                _interrupt.check()  # a Ctrl-C whose exception was dropped where it landed
                if self.shuffle:
                    perm = np.arange(n_samples)
                    self._random_state.shuffle(perm)
                    sample_idx = sample_idx[perm]
                self.loss_ = run_epoch(sample_idx if self.shuffle else None, opt, dense)
                self.n_iter_ += 1
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                if early_stopping:
                    run_epoch.sync()  # JAX: the scored weights come back from the device
                self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
                opt.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (
                            f"Validation score did not improve more than tol={self.tol:f} "
                            f"for {self.n_iter_no_change} consecutive epochs."
                        )
                    else:
                        msg = (
                            f"Training loss did not improve more than tol={self.tol:f} for "
                            f"{self.n_iter_no_change} consecutive epochs."
                        )
                    if opt.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                        "and the optimization hasn't converged yet.",
                        ConvergenceWarning,
                        stacklevel=4,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        finally:
            run_epoch.sync()
            self.coefs_, self.intercepts_ = step.coefs(), step.intercepts()
        if early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _run_chunks(self, runner: Any, opt: Any, sample_idx: np.ndarray) -> None:
        """The epoch loop of :meth:`_fit_stochastic`, up to ``runner.capacity`` epochs per
        compiled call (:func:`backprop.sklearn_jax.epoch_runner`'s ``chunk``), each call
        sized to take about a quarter of a second so that Ctrl-C is seen soon.

        The same statements in the same order: each epoch's shuffle drawn here (the
        ``RandomState`` rewound and replayed to the stopping epoch when the rule stops
        inside a chunk), the loss, ``t_``, the no-improvement rule, the rate after the
        epoch and the solver's reaction to the rule in the graph, the loss curve and
        ``ConvergenceWarning`` here.
        """
        n_samples = sample_idx.shape[0]
        rs = self._random_state
        per_epoch = None  # seconds, measured on the previous chunk
        while self.n_iter_ < self.max_iter:
            _interrupt.check()  # a Ctrl-C whose exception was dropped where it landed
            k = min(self.max_iter - self.n_iter_, runner.capacity)
            k = 1 if per_epoch is None else max(1, min(k, int(0.25 / max(per_epoch, 1e-7))))
            orders = None
            if self.shuffle:
                before, orders = rs.get_state(), []
                for _ in range(k):
                    perm = np.arange(n_samples)
                    rs.shuffle(perm)
                    sample_idx = sample_idx[perm]
                    orders.append(sample_idx)
            # the rate after each epoch, NaN (from None) where only the stopping rule sets it
            rates = np.array([opt.rate_after(self.t_ + (j + 1) * n_samples) for j in range(k)],
                             dtype=float)  # fmt: skip
            start = time.perf_counter()
            res = runner.chunk(
                orders, opt, self.best_loss_, self._no_improvement_count, rates,
                float(self.tol), float(self.n_iter_no_change),
            )  # fmt: skip
            done = len(res.losses)  # at least one: the loop stops only after an epoch
            per_epoch = (time.perf_counter() - start) / done
            if orders is not None and done < k:  # stopped early: as if only `done` were drawn
                rs.set_state(before)
                for _ in range(done):
                    rs.shuffle(np.arange(n_samples))
            self.n_iter_ += done
            self.t_ += done * n_samples
            self.loss_curve_.extend(res.losses)
            self.loss_ = res.losses[-1]
            self.best_loss_, self._no_improvement_count = res.best, res.count
            opt.set_epoch_rate(res.rate)
            if res.stopped:
                return
        warnings.warn(
            f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
            "optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=5,
        )

    def _epoch_runner(self, step: Step, X: Any, Y: np.ndarray, sw: Any, batch_size: int) -> Any:
        """``run(order, opt, dense) -> epoch loss``: one pass of ``gen_batches``."""
        if self.backend == "jax":
            from backprop import sklearn_jax

            return sklearn_jax.epoch_runner(self, step, X, Y, sw, batch_size)
        n = X.shape[0]
        slices = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
        alpha = self.alpha
        # dense, in batches large enough: X with its ones column, the bias in the product
        ones = not compat.issparse(X) and step.bias_in_product(batch_size)
        if ones:
            X = step.with_ones(X)
        xbuf = np.empty((batch_size, X.shape[1]), X.dtype) if not compat.issparse(X) else None
        ybuf = np.empty((batch_size, Y.shape[1]), Y.dtype)
        # each batch: its rows, and the views of the buffers a shuffled batch is taken into
        batches = [
            (start, stop, None if xbuf is None else xbuf[: stop - start], ybuf[: stop - start])
            for start, stop in slices
        ]
        step_fn, theta, grad = step.loss_and_grads_quiet, step.theta, step.grad

        def run(order: Any, opt: Any, dense: bool) -> float:
            total, update = 0.0, opt.update
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                for start, stop, xb, yb in batches:
                    if order is None:
                        Xb, Yb = X[start:stop], Y[start:stop]
                        swb = None if sw is None else sw[start:stop]
                    else:
                        idx = order[start:stop]
                        Xb = X.take(idx, axis=0, out=xb) if dense else X[idx]
                        Yb = Y.take(idx, axis=0, out=yb)
                        swb = None if sw is None else sw[idx]
                    total += step_fn(Xb, Yb, alpha, swb, ones) * (stop - start)
                    update(theta, grad)
            return total / n

        run.sync = lambda: None  # type: ignore[attr-defined]  # the step holds the weights
        return run

    def _update_no_improvement_count(self, early_stopping: bool, X: Any, y: Any, sw: Any) -> None:
        if early_stopping:
            val_score = self._score(X, y, sample_weight=sw)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print(f"Validation score: {self.validation_scores_[-1]:f}")
            last = self.validation_scores_[-1]
            if last < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last > self.best_validation_score_:
                self.best_validation_score_ = last
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _score_with_function(
        self, X: Any, y: Any, sample_weight: Any, score_function: Any
    ) -> float:
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return float(score_function(y, y_pred, sample_weight=sample_weight))

    def _loss_grad_lbfgs(
        self,
        packed_coef_inter: np.ndarray,
        X: Any,
        y: Any,
        sample_weight: Any,
        activations: Any = None,
        deltas: Any = None,
        coef_grads: Any = None,
        intercept_grads: Any = None,
    ) -> tuple[float, np.ndarray]:
        """scikit-learn's private loss-and-gradient of the packed parameters (its signature).

        The buffers scikit-learn passes are accepted and not used; returns
        ``(loss, packed gradient)``.
        """
        units = [X.shape[1]] + [c.shape[1] for c in self.coefs_]
        step = Step(units, self.activation, self.out_activation_, np.float64, X.shape[0])
        step.theta[...] = packed_coef_inter
        Y = np.asarray(y, np.float64).reshape(X.shape[0], -1)
        loss = step.loss_and_grads(np.asarray(X, np.float64), Y, self.alpha, sample_weight)
        step_coefs = step.coefs()
        for i, c in enumerate(step_coefs):
            self.coefs_[i] = c
        return loss, step.grad.copy()

    def _is_classifier(self) -> bool:
        return False

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_CONSTRUCTOR_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Units of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"} or a registered name, default="relu"
        Hidden activation: scikit-learn's names, or any activation of this
        library registered under another (``backprop.register_activation``).
    solver : {"lbfgs", "sgd", "adam"}, default="adam"
        "sgd" and "adam" as scikit-learn's stochastic solvers; "lbfgs" is
        SciPy's L-BFGS-B on the loss and its hand-derived gradient (on JAX:
        the gradient from the JAX derivation, the optimizer SciPy's).
    alpha : float, default=1e-4
        L2 strength: the loss adds ``0.5 * alpha * sum(W^2) / n_batch``.
    batch_size : int or "auto", default="auto"
        Rows per step; "auto" is min(200, n_samples); larger than the data:
        clipped, with a warning.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        "sgd" only: constant; ``learning_rate_init / (t + 1) ** power_t``
        after each epoch (t: samples seen); or divided by 5 each time the
        no-improvement rule fires.
    learning_rate_init : float, default=1e-3
    power_t : float, default=0.5
    max_iter : int, default=200
        Most epochs (stochastic solvers) or iterations (lbfgs).
    shuffle : bool, default=True
        Reshuffle the rows each epoch (stochastic solvers).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the validation split and the shuffles.
    tol : float, default=1e-4
    verbose : bool or int, default=False
    warm_start : bool, default=False
        Start from the previous fit's weights (and, for a classifier, its
        classes).
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, score them each epoch,
        stop after ``n_iter_no_change`` epochs without an improvement of
        ``tol`` and keep the best weights.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's parameters.
    n_iter_no_change : int or np.inf, default=10
    max_fun : int, default=15000
        Most loss evaluations of "lbfgs".
    backend : {"numpy", "jax"}, default="numpy"
    dtype : {None, "float32", "float64"}, default=None
        None: float32 input trains in float32, other input in float64.
    devices : None, int, "all" or sequence of jax.Device, default=None
        JAX only: split every batch over these devices (data parallel).
        Survives ``clone`` and pickling (pickles store the device ids).

    Attributes
    ----------
    coefs_, intercepts_ : list of ndarray
        Each layer's weights (fan_in, fan_out) and biases (fan_out,).
    loss_ : float
    loss_curve_ : list of float
        Per epoch, the batch losses weighted by batch size (stochastic solvers).
    best_loss_ : float or None
    validation_scores_, best_validation_score_ : list, float or None
        With ``early_stopping``.
    t_ : int
        Samples seen by the stochastic solvers.
    n_iter_, n_layers_, n_outputs_ : int
    out_activation_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When X has string column names.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):  # type: ignore[misc,valid-type]
    __doc__ = (
        """A multi-layer perceptron classifier: scikit-learn's, with hand-derived gradients.

    Log loss with a softmax output (multiclass), a logistic output (binary,
    and one per label for multilabel y). ``classes_`` holds the labels.
    """
        + _CONSTRUCTOR_DOC
    )

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: Any = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: Any = 10,
        max_fun: int = 15000,
        backend: str = "numpy",
        dtype: Any = None,
        devices: Any = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype
        self.devices = devices

    loss = "log_loss"  # scikit-learn's MLPClassifier fixes its loss

    def _is_classifier(self) -> bool:
        return True

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Any]:
        X, y = compat.validate_X_y(self, X, y, reset=reset, y_numeric=False)
        if y.ndim == 2 and y.shape[1] == 1:
            y = compat.column_or_1d(y)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = compat.LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = compat.unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        return X, _binarize(self._label_binarizer, y)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> Any:
        """One epoch over X, y (stochastic solvers only); ``classes`` on the first call.

        Parameters
        ----------
        X : array or sparse matrix (n_samples, n_features)
        y : array (n_samples,) or indicator matrix (n_samples, n_labels)
        sample_weight : array (n_samples,), optional
        classes : array (n_classes,)
            Every class of the whole data, required on the first call.
        """
        self._validate_all_params()
        if compat.partial_fit_first_call(self, classes):
            self._label_binarizer = compat.LabelBinarizer()
            if compat.type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes (n_samples,), or an indicator matrix for multilabel y."""
        compat.check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        return self._score_with_function(X, y, sample_weight, compat.accuracy_score)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``."""
        compat.check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))`` (n_samples, n_classes)."""
        y_prob = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


_REGRESSION_OUTPUTS = {"squared_error": "identity", "poisson": "exp"}
"""The regressor's ``loss`` -> its output activation (a row of ``sklearn_step.OUTPUTS``)."""


class MLPRegressor(RegressorMixin, _BaseMLP):  # type: ignore[misc,valid-type]
    __doc__ = """A multi-layer perceptron regressor: scikit-learn's, with hand-derived gradients.

    ``loss="squared_error"``: identity output, loss ``0.5 *`` the mean squared
    error; ``loss="poisson"``: exponential output, half the Poisson deviance.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default="squared_error"
    """ + _CONSTRUCTOR_DOC.split("Parameters\n    ----------\n", 1)[1]

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: Any = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: Any = 10,
        max_fun: int = 15000,
        backend: str = "numpy",
        dtype: Any = None,
        devices: Any = None,
    ) -> None:
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype
        self.devices = devices

    _parameter_constraints: dict = compat.parameter_constraints(regressor=True)

    def _output_activation(self) -> str:
        return _REGRESSION_OUTPUTS[self.loss]

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Any]:
        X, y = compat.validate_X_y(self, X, y, reset=reset, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = compat.column_or_1d(y)
        return X, y

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """One epoch over X, y (stochastic solvers only)."""
        self._validate_all_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predictions (n_samples,) or (n_samples, n_outputs)."""
        compat.check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        return self._score_with_function(X, y, sample_weight, compat.r2_score)


def _binarize(lb: Any, y: Any) -> np.ndarray:
    """``lb.transform(y).astype(bool)``: for 1-D labels that are all among two or more
    classes (binary, multiclass), the same 0/1 matrix from one ``searchsorted`` (a
    twentieth of the time); anything else goes to scikit-learn's transform and its checks."""
    classes = lb.classes_
    if lb.y_type_ in ("binary", "multiclass") and np.ndim(y) == 1 and len(classes) >= 2:
        idx = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
        if np.array_equal(classes[idx], y):  # every label is one of the classes
            if len(classes) == 2:  # one column, 1 for the second class
                return (idx == 1).reshape(-1, 1)
            Y = np.zeros((len(idx), len(classes)), bool)
            Y[np.arange(len(idx)), idx] = True
            return Y
    return lb.transform(y).astype(bool)


def _only_stochastic(cls: type) -> None:
    """``partial_fit`` exists only for the stochastic solvers (``hasattr`` is False for lbfgs)."""
    compat.make_available_if(cls, "partial_fit", lambda est: est._check_solver())


_only_stochastic(MLPClassifier)  # scikit-learn's regressor keeps partial_fit for every solver

# --- kept for the command line (backprop.cli's --early-stopping) ----------------------------


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


__all__ = ["ConvergenceWarning", "MLPClassifier", "MLPRegressor", "NotFittedError"]
