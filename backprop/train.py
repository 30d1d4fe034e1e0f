"""``train_mlp``: any dense network, trained by minibatch gradient descent on
NumPy or JAX with the hand-derived gradients of :mod:`backprop.nets`.

One training step, on either backend::

    loss, z, grads = nets.loss_and_grads(K, params, X_batch, Y_batch, net,
                                         weights=row_weights, l2=alpha / n_batch)
    params, state = optim.update(opt, params, grads, state, xp)

An epoch runs the batches of one pass over the rows (reshuffled every epoch
from the run's seed unless ``shuffle=False``); a short last batch is a step
of its own, as in scikit-learn. NumPy runs the epochs in a Python loop of
the in-place transcription :mod:`backprop.fast.mlp_inplace` (tested against
the step above). JAX compiles the multi-epoch run, minibatches, validation
and early stopping included, into one ``lax.while_loop`` over the epochs up
to a bound, and runs it in chunks of about :data:`CHUNK_SECONDS`, the
carry staying on the devices: between chunks Python reports progress and
can be interrupted (:class:`TrainingInterrupted`). Both loops share one
stopping rule, one history and one validation routine. JAX minibatches have
a fixed shape, so a short last batch is padded with rows of weight 0, which change
nothing (tested: both backends agree to 1e-10 in float64). The batch order of
every epoch is drawn up front with NumPy, so both backends see the same
batches.

With ``devices`` (JAX only) each batch is split along its rows over a
:class:`jax.sharding.Mesh`; every device computes the hand-derived gradient
of its rows (each row weighted by 1 / rows in the whole batch) inside
``jax.shard_map``, ``lax.psum`` adds them, and every device applies the same
update to its replica of the parameters (see :mod:`backprop.distributed`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop import _interrupt, nets, optim
from backprop._validate import (
    check_backend,
    check_count,
    check_dtype,
    check_features,
    check_lr,
    check_memory,
    check_number,
    check_positive_int,
    check_seed,
    first_nonfinite,
)
from backprop.kernels import get_backend
from backprop.nets import Layer, Net

MONITORS = ("loss", "val_loss", "val_accuracy")
MAX_ORDER_ENTRIES = 2**28
"""Largest epochs x rows of shuffled row indices drawn up front (1 GiB of int32)."""


@dataclass(frozen=True, repr=False)
class MLPResult:
    """What :func:`train_mlp` returns; arrays are NumPy, one entry per epoch run.

    Attributes
    ----------
    params : tuple of Layer
        The final parameters (the best ones, when early stopping on a
        validation quantity restored them).
    net : Net
        The architecture.
    losses : (epochs,)
        Training loss of each epoch: the mean of its batch losses weighted by
        batch size, each taken before that batch's update (penalty included),
        as scikit-learn's ``loss_curve_``. With one batch per epoch, the loss
        at the parameters before the epoch's update.
    accuracies : (epochs,)
        Training accuracy of each epoch, from the same forward passes.
    grad_norms : (epochs, layers)
        ||dW|| of each layer, averaged over the epoch's batches.
    val_losses, val_accuracies : (epochs,) or None
        Loss (data term) and accuracy on the validation set after each epoch.
    best_epoch : int or None
        The epoch (0-based) whose parameters were kept by early stopping.
    stopped_early : bool
    backend, dtype : str
    devices : int
        Devices the batches were split over (1 without ``devices``).
    train_time, compile_time : float
        Seconds training took, compilation excluded; JAX compilation seconds.
    """

    params: tuple[Layer, ...]
    net: Net
    losses: np.ndarray
    accuracies: np.ndarray
    grad_norms: np.ndarray
    val_losses: np.ndarray | None
    val_accuracies: np.ndarray | None
    best_epoch: int | None
    stopped_early: bool
    backend: str
    dtype: str
    devices: int
    train_time: float
    compile_time: float

    @property
    def epochs(self) -> int:
        """Epochs run."""
        return int(self.losses.shape[0])

    @property
    def time_per_epoch(self) -> float:
        return self.train_time / max(self.epochs, 1)

    def __repr__(self) -> str:
        val = ""
        if self.val_losses is not None and self.epochs:
            val = (
                f", val loss {self.val_losses[-1]:.4g}, val accuracy "
                f"{self.val_accuracies[-1]:.1%}"  # type: ignore[index]
            )
        stop = f", stopped early (best epoch {self.best_epoch})" if self.stopped_early else ""
        return (
            f"MLPResult({self.net}, {self.epochs} epochs on {self.backend} {self.dtype}: "
            f"loss {self.losses[-1]:.4g}, accuracy {self.accuracies[-1]:.1%}{val}{stop}, "
            f"{self.time_per_epoch * 1e3:.3g} ms/epoch)"
        )


@dataclass(frozen=True)
class _Plan:
    """Static description of a run: everything the compiled JAX function branches on."""

    net: Net
    opt: optim.Optimizer
    epochs: int
    batch_size: int
    n_rows: int
    shuffle: bool
    alpha: float
    monitor: str | None
    patience: int
    tol: float
    has_validation: bool

    @property
    def n_batches(self) -> int:
        return -(-self.n_rows // self.batch_size)

    def batch_rows(self) -> list[int]:
        """Rows in each batch of an epoch: full batches, then the short rest."""
        b, n = self.batch_size, self.n_rows
        return [min(b, n - k * b) for k in range(self.n_batches)]

    @property
    def restores_best(self) -> bool:
        return self.monitor is not None and self.monitor.startswith("val_")


def train_mlp(
    sizes: Sequence[int],
    X: Any,
    y: Any,
    *,
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
    loss: str | None = None,
    lr: float = 1.0,
    epochs: int = 1000,
    batch_size: int | None = None,
    shuffle: bool = True,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    nesterov: bool = False,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    alpha: float = 0.0,
    validation: tuple[Any, Any] | None = None,
    early_stopping: bool = False,
    monitor: str | None = None,
    patience: int = 10,
    tol: float = 1e-4,
    seed: int = 0,
    init: Sequence[Any] | None = None,
    init_scheme: str = "uniform",
    backend: str = "numpy",
    dtype: str = "float32",
    devices: Any = None,
    progress: Callable[[int, float], None] | None = None,
) -> MLPResult:
    """Train a dense network with hand-derived gradients.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths [D0, ..., DL], e.g. ``[64, 128, 10]``.
    X : array (N, D0)
        Training inputs, finite.
    y : array
        Targets. Sigmoid output: (N, DL) or (N,) values in [0, 1]. Softmax
        output: integer labels (N,) in [0, DL) or one-hot rows (N, DL).
        Identity output: (N, DL) or (N,) real values.
    activation : str or sequence of str
        Hidden activation(s), one of ``nets.ACTIVATIONS``.
    output : str
        "sigmoid" (with BCE), "softmax" (with cross-entropy) or "identity"
        (with MSE); ``loss``, if given, must match it.
    lr : float
        Learning rate.
    epochs : int
        Most passes over the data.
    batch_size : int, optional
        Rows per step, 1 <= batch_size <= N; default: all rows (full batch).
    shuffle : bool
        Reshuffle the rows every epoch (from ``seed``); ignored with one
        batch per epoch.
    optimizer : str
        "sgd", "momentum" (``momentum``, ``nesterov``) or "adam" (``beta1``,
        ``beta2``, ``eps``), as defined in :mod:`backprop.optim`.
    alpha : float
        L2 penalty: each batch adds alpha / 2 * sum(w^2) / rows (biases
        not penalised), as scikit-learn does.
    validation : (X_val, y_val), optional
        Scored after every epoch (loss and accuracy).
    early_stopping : bool
        Stop once ``monitor`` has not improved by more than ``tol`` for more
        than ``patience`` epochs in a row (scikit-learn's rule). Monitoring
        "val_loss" or "val_accuracy" restores the best epoch's parameters;
        "loss" (the training loss) keeps the last ones.
    monitor : str, optional
        "loss", "val_loss" or "val_accuracy"; default "val_loss" with a
        validation set, else "loss".
    patience : int
        Epochs without improvement tolerated (scikit-learn's
        ``n_iter_no_change``).
    tol : float
        Smallest change that counts as an improvement.
    seed : int
        Seeds the initial parameters and the row order.
    init : sequence of (w, b), optional
        Explicit starting parameters (w (D_in, D_out), b (D_out,)).
    init_scheme : str
        "uniform", "normal" or "glorot" (see :func:`backprop.nets.init_params`).
    backend : str
        "numpy" or "jax" (the whole run compiled).
    dtype : str
        "float32" or "float64" (JAX float64 runs inside ``jax.enable_x64``).
    devices : None, int, "all" or sequence of jax.Device
        JAX only. None: one device. Otherwise data-parallel over that many
        (or those) devices; every batch is padded with rows of weight 0 to a
        multiple of the device count, so results do not depend on it.
    progress : callable(epochs_done, loss), optional
        Called after every epoch, in order, from Python. On JAX the run is
        compiled once and executed in chunks of epochs sized to about
        :data:`CHUNK_SECONDS` each; the calls for a chunk's epochs come when
        it ends. An exception it raises stops training and arrives as itself.

    Returns
    -------
    MLPResult

    Raises
    ------
    ValueError
        Naming the argument, for anything invalid: shapes, labels out of
        range, one-hot rows that do not sum to 1, NaN or infinite values,
        batch_size out of [1, N], unknown names (listing the valid ones),
        a validation set of the wrong width, devices with NumPy or more
        devices than there are, a batch smaller than the device count.
    FloatingPointError
        When the loss becomes NaN or infinite, naming the epoch and the
        likely cause.
    TrainingInterrupted
        On Ctrl-C (a ``KeyboardInterrupt`` subclass): its ``.result`` is an
        :class:`MLPResult` with the parameters and history reached so far.
        NumPy stops within a batch; JAX at the end of the running chunk of
        epochs (about :data:`CHUNK_SECONDS`), since a compiled call cannot
        be interrupted.
    """
    backend, dt = check_backend(backend), check_dtype(dtype)
    net = nets.make_net(sizes, activation, output, loss)
    if devices is not None and backend != "jax":
        raise ValueError(
            f"devices={devices!r} needs backend='jax' (data-parallel training runs on JAX's "
            "devices); the NumPy backend runs on one"
        )
    epochs, lr, seed = check_count("epochs", epochs), check_lr(lr, dt), check_seed(seed)
    opt = optim.make_optimizer(
        optimizer, lr, momentum=momentum, nesterov=nesterov, beta1=beta1, beta2=beta2, eps=eps
    )
    check_lr(eps, dt, "eps")  # Adam divides by sqrt(v) + eps: eps must not round to 0 in dt
    alpha = check_number("alpha", alpha, low=0.0, high=float(np.finfo(dt).max))
    check_number("tol", tol, low=0.0, high=float(np.finfo(dt).max))  # compared in dt on JAX
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be None or a callable(epoch, loss), got {progress!r}")
    if not isinstance(shuffle, bool):
        raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
    X = check_features("X", X, net.sizes[0], dt)
    Y = targets("y", y, net, X.shape[0], dt)
    n = _total_rows(X.shape[0], backend, devices)
    batch = _batch_size(batch_size, n)
    val = _validation_set(validation, net, dt)
    monitor, patience, tol = _stopping_rule(early_stopping, monitor, patience, tol, val)
    check_memory(net.sizes, batch, dt.itemsize, epochs)
    params = (
        nets.init_params(net.sizes, seed=seed, dtype=dt, scheme=init_scheme)
        if init is None
        else check_params(init, net.sizes, dt)
    )
    plan = _Plan(
        net, opt, epochs, batch, n, shuffle and batch < n, alpha, monitor, patience, tol,
        val is not None,
    )  # fmt: skip
    orders = _row_orders(plan, seed)

    mesh, n_devices = None, 1
    if backend == "jax":
        from backprop import distributed

        mesh = distributed.make_mesh(devices, batch)
        n_devices = 1 if mesh is None else mesh.size
    try:
        if backend == "numpy":
            run = _run_numpy(plan, params, X, Y, val, orders, progress)
        else:
            run = _run_jax(plan, params, X, Y, val, orders, progress, mesh)
    except _Interrupted as stopped:
        result = _result(stopped.run, net, epochs, backend, dt, n_devices)
        raise TrainingInterrupted(result) from None
    result = _result(run, net, epochs, backend, dt, n_devices)
    k = first_nonfinite(result.losses)
    if k is not None:
        raise FloatingPointError(_divergence_message(k, result.losses[k], lr, alpha, dt))
    if not all(np.all(np.isfinite(a)) for layer in result.params for a in layer):
        raise FloatingPointError(  # the last update's
            f"the parameters became infinite or NaN in the update of epoch {result.epochs - 1} "
            f"(lr={lr}, alpha={alpha}); training diverged - try a smaller lr"
        )
    return result


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train_mlp`: ``.result`` is the :class:`MLPResult` reached so far.

    A ``KeyboardInterrupt``, so code that does not look for it stops as
    before. ``result.params`` are the parameters when the interrupt arrived
    (on NumPy possibly partway through an epoch; on JAX at the end of the
    last compiled chunk of epochs), or the best epoch's when early stopping
    on a validation quantity had found one; the history holds every epoch
    completed. No divergence check is made on it.
    """

    def __init__(self, result: MLPResult) -> None:
        super().__init__(f"training interrupted after {result.epochs} epoch(s)")
        self.result = result


def _result(
    run: tuple[Any, ...], net: Net, epochs: int, backend: str, dt: np.dtype, n_devices: int
) -> MLPResult:
    params, hist, stop_epoch, best_epoch, train_time, compile_time = run
    return MLPResult(
        params=params,
        net=net,
        losses=hist["loss"],
        accuracies=hist["accuracy"],
        grad_norms=hist["grad_norms"],
        val_losses=hist.get("val_loss"),
        val_accuracies=hist.get("val_accuracy"),
        best_epoch=best_epoch,
        stopped_early=stop_epoch < epochs,
        backend=backend,
        dtype=dt.name,
        devices=n_devices,
        train_time=train_time,
        compile_time=compile_time,
    )


def _total_rows(n_local: int, backend: str, devices: Any) -> int:
    """Rows in the whole data set: in a multi-process run each process holds its own."""
    if backend == "jax" and devices is not None:
        from backprop import distributed

        return distributed.global_row_count(n_local)[0]
    return n_local


def _batch_size(batch_size: Any, n: int) -> int:
    if batch_size is None:
        return n
    batch = check_positive_int("batch_size", batch_size)
    if batch > n:
        raise ValueError(f"batch_size must be at most the number of rows, {n}, got {batch_size}")
    return batch


def _validation_set(validation: Any, net: Net, dt: np.dtype) -> tuple[Any, Any] | None:
    if validation is None:
        return None
    if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
        raise ValueError("validation must be a pair (X_val, y_val)")
    Xv = check_features("validation X", validation[0], net.sizes[0], dt)
    return Xv, targets("validation y", validation[1], net, Xv.shape[0], dt)


def _stopping_rule(
    early_stopping: Any, monitor: Any, patience: Any, tol: Any, val: Any
) -> tuple[str | None, int, float]:
    """(monitored quantity or None, patience, tol), each checked."""
    if not isinstance(early_stopping, bool):
        raise ValueError(f"early_stopping must be True or False, got {early_stopping!r}")
    if monitor is None:
        monitor = "val_loss" if val is not None else "loss"
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {', '.join(MONITORS)}, got {monitor!r}")
    if monitor.startswith("val_") and val is None:
        raise ValueError(f"monitor={monitor!r} needs a validation set (validation=(X, y))")
    patience = check_positive_int("patience", patience)
    tol = check_number("tol", tol, low=0.0)
    return (monitor if early_stopping else None), patience, tol


def _divergence_message(epoch: int, value: float, lr: float, alpha: float, dt: np.dtype) -> str:
    if epoch == 0:
        return (
            f"loss was already {value} in epoch 0, before training could move anything: the "
            f"initial parameters or the data overflow {dt.name} (rescale them, or use float64)"
        )
    if alpha:
        return (
            f"loss became {value} at epoch {epoch} (lr={lr}, alpha={alpha}); training diverged "
            "- try a smaller lr or alpha"
        )
    return f"loss became {value} at epoch {epoch} (lr={lr}); training diverged - try a smaller lr"


def targets(name: str, y: Any, net: Net, n_rows: int, dt: np.dtype) -> np.ndarray:
    """Targets for ``net``'s head as a (N, DL) array of ``dt``; ``ValueError`` naming ``name``.

    A head that takes class labels (softmax) turns integer labels (N,) in
    [0, DL) into one-hot rows; a (N,) vector is accepted for a one-unit
    output; then the head checks the values (softmax: one-hot rows, sigmoid:
    values in [0, 1]).
    """
    from backprop._validate import check_array

    width, head = net.sizes[-1], net.head
    a = np.asarray(y) if not isinstance(y, (str, bytes)) else y
    if head.labels is not None and getattr(a, "ndim", None) == 1 and width > 1:
        if a.shape[0] != n_rows:
            raise ValueError(f"{name} must have {n_rows} labels (one per row of X), got {a.shape}")
        a = head.labels(name, a, width, dt)
    a = check_array(name, a, dt)
    if a.ndim == 1 and width == 1:
        a = a[:, None]
    if a.shape != (n_rows, width):
        raise ValueError(
            f"{name} must have shape ({n_rows}, {width}) (one row per row of X, one column per "
            f"output unit){' or (N,)' if width == 1 else ''}, got {a.shape}"
        )
    head.check_targets(name, a)
    return a


def check_params(init: Any, sizes: Sequence[int], dt: np.dtype) -> tuple[Layer, ...]:
    """Validate explicit parameters against ``sizes``; return ``dt`` copies."""
    from backprop._validate import check_array

    if (
        isinstance(init, (str, bytes, dict))
        or not isinstance(init, Sequence)
        or len(init) != len(sizes) - 1
    ):
        raise ValueError(
            f"init must be a sequence of {len(sizes) - 1} (w, b) pairs for sizes {list(sizes)}, "
            f"got {type(init).__name__}"
        )
    layers = []
    for i, (layer, d_in, d_out) in enumerate(zip(init, sizes[:-1], sizes[1:], strict=True)):
        if not isinstance(layer, Sequence) or len(layer) != 2:
            raise ValueError(f"init[{i}] must be a (w, b) pair")
        w = check_array(f"init[{i}].w", layer[0], dt)
        b = check_array(f"init[{i}].b", layer[1], dt)
        for label, a, shape in ((f"init[{i}].w", w, (d_in, d_out)), (f"init[{i}].b", b, (d_out,))):
            if a.shape != shape:
                raise ValueError(f"{label} must have shape {shape}, got {a.shape}")
        layers.append(Layer(w, b))
    return tuple(layers)


def _row_orders(plan: _Plan, seed: int) -> np.ndarray | None:
    """Each epoch's row order, (epochs, N), from ``default_rng((seed, 1))``; None if unshuffled."""
    if not plan.shuffle:
        return None
    if plan.epochs * plan.n_rows > MAX_ORDER_ENTRIES:
        raise ValueError(
            f"epochs x rows = {plan.epochs:,} x {plan.n_rows:,} shuffled row indices would be "
            f"drawn up front, more than {MAX_ORDER_ENTRIES:,}: use fewer epochs or shuffle=False"
        )
    rng = np.random.default_rng((seed, 1))
    return np.stack([rng.permutation(plan.n_rows) for _ in range(plan.epochs)]).astype(np.int32)


def _stopping_step(xp: Any, q: Any, best_q: Any, bad: Any, plan: _Plan) -> tuple[Any, ...]:
    """scikit-learn's no-improvement rule, one epoch, on a quantity q where higher is better.

    Returns ``(improved, best_q, bad, stop)``: ``bad`` counts the epochs in a
    row that failed to beat the best by more than ``tol``; stop once it
    exceeds ``patience``. Written once, on ``xp``, without branching on
    values: the NumPy loop and the compiled JAX loop both run it.
    """
    bad = xp.where(q < best_q + plan.tol, bad + 1, 0)
    improved = q > best_q
    return improved, xp.where(improved, q, best_q), bad, bad > plan.patience


def _monitored(monitor: str, loss: Any, val_loss: Any, val_accuracy: Any) -> Any:
    """The monitored quantity, signed so that higher is better."""
    return {"loss": -loss, "val_loss": -val_loss, "val_accuracy": val_accuracy}[monitor]


def _empty_history(plan: _Plan, dt: Any, xp: Any = np) -> dict[str, Any]:
    """Per-epoch arrays, NaN until recorded: the one history both backends fill."""
    E = plan.epochs
    return {
        "loss": xp.full(E, np.nan, dt),
        "accuracy": xp.full(E, np.nan, dt),
        "grad_norms": xp.full((E, plan.net.n_layers), np.nan, dt),
        "val_loss": xp.full(E, np.nan, dt),
        "val_accuracy": xp.full(E, np.nan, dt),
    }


def _record(hist: dict[str, Any], e: Any, **values: Any) -> dict[str, Any]:
    """Epoch ``e``'s values written into the history (in place on NumPy, functionally on JAX)."""
    hist = dict(hist)
    for key, value in values.items():
        if isinstance(hist[key], np.ndarray):
            hist[key][e] = value
        else:
            hist[key] = hist[key].at[e].set(value)
    return hist


def _finish_history(plan: _Plan, hist: dict[str, Any], epochs_run: int) -> dict[str, np.ndarray]:
    """The history as NumPy arrays, cut to the epochs run, without unused validation entries."""
    out = {key: np.asarray(value)[:epochs_run] for key, value in hist.items()}
    if not plan.has_validation:
        del out["val_loss"], out["val_accuracy"]
    return out


class _Interrupted(Exception):
    """Raised by a backend's loop on Ctrl-C, carrying the run so far."""

    def __init__(self, run: tuple[Any, ...]) -> None:
        super().__init__("interrupted")
        self.run = run


def _run_numpy(
    plan: _Plan,
    params: tuple[Layer, ...],
    X: np.ndarray,
    Y: np.ndarray,
    val: tuple[np.ndarray, np.ndarray] | None,
    orders: np.ndarray | None,
    progress: Callable[[int, float], None] | None,
) -> tuple[Any, ...]:
    from backprop.fast.mlp_inplace import InPlaceMLP

    K = get_backend("numpy")
    net, E = plan.net, plan.epochs
    step = InPlaceMLP(net, params, plan.opt, plan.batch_size, X.dtype)
    hist = _empty_history(plan, X.dtype)
    best, best_q, bad, best_epoch = params, -np.inf, 0, None
    rows = plan.batch_rows()
    epochs_run = 0
    t0 = time.perf_counter()

    def result() -> tuple[Any, ...]:
        kept = best if plan.restores_best and best_epoch is not None else step.params()
        history = _finish_history(plan, hist, epochs_run)
        return kept, history, epochs_run, best_epoch, time.perf_counter() - t0, 0.0

    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for e in range(E):
                _interrupt.check()  # a Ctrl-C whose exception was dropped where it landed
                total = correct = 0.0
                norms = np.zeros(net.n_layers)
                for k, n_b in enumerate(rows):
                    start = k * plan.batch_size
                    if orders is None:
                        Xb, Yb = X[start : start + n_b], Y[start : start + n_b]
                    else:
                        idx = orders[e, start : start + n_b]
                        Xb, Yb = X[idx], Y[idx]
                    loss, z = step.loss_and_grads(Xb, Yb, plan.alpha / n_b if plan.alpha else 0.0)
                    total += loss * n_b
                    correct += float(nets.correct(np, z, Yb, net).sum())
                    norms += step.grad_norms()
                    step.update()
                vl = va = np.nan
                if val is not None:
                    vl, va = _evaluate(K, np, step.W_and_b(), *val, net)
                hist = _record(
                    hist,
                    e,
                    loss=total / plan.n_rows,
                    accuracy=correct / plan.n_rows,
                    grad_norms=norms / len(rows),
                    val_loss=vl,
                    val_accuracy=va,
                )
                epochs_run = e + 1
                if progress is not None:
                    progress(e + 1, float(hist["loss"][e]))
                if not np.isfinite(hist["loss"][e]):
                    break
                if plan.monitor is not None:
                    q = _monitored(plan.monitor, hist["loss"][e], hist["val_loss"][e], va)
                    improved, best_q, bad, stop = _stopping_step(np, q, best_q, bad, plan)
                    if improved:
                        best_epoch = e
                        if plan.restores_best:
                            best = step.params()
                    if stop:
                        break
    except KeyboardInterrupt:
        raise _Interrupted(result()) from None
    return result()


def _evaluate(
    K: Any, xp: Any, params: Any, X: Any, Y: Any, net: Net, weights: Any = None
) -> tuple[Any, Any]:
    """Data loss and accuracy of ``params`` on (X, Y): the one validation both backends run."""
    z, _ = nets.forward(K, params, X, net)
    loss, _ = K.pair(net.head.kernel)[0](z, Y, weights)
    hits = nets.correct(xp, z, Y, net)
    acc = hits.mean() if weights is None else (hits * (weights > 0)).sum() / (weights > 0).sum()
    return loss, acc


# --- JAX: the run compiled, executed in chunks of epochs ----------------------------------

CHUNK_SECONDS = 0.5
"""Wall time one compiled chunk of epochs aims at. Between chunks control returns to
Python, so a Ctrl-C takes effect (and progress is reported) within about this long."""


def _batch_layout(
    plan: _Plan, orders: np.ndarray | None, n_devices: int, dt: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (E or 1, B, W) and row weights (B, W) of every padded batch.

    B batches of W rows, W the batch size rounded up to a multiple of the
    device count; real rows weigh 1 / (rows in their batch) (divided by the
    output width for elementwise heads, as the mean over all elements is),
    padding rows weigh 0 and point at row 0.
    """
    rows = plan.batch_rows()
    width = -(-plan.batch_size // n_devices) * n_devices
    per_output = 1.0 if plan.net.head.per_row else 1.0 / plan.net.sizes[-1]
    weights = np.zeros((len(rows), width), dt)
    positions = np.zeros((len(rows), width), np.int64)
    for k, n_b in enumerate(rows):
        weights[k, :n_b] = per_output / n_b
        positions[k, :n_b] = np.arange(k * plan.batch_size, k * plan.batch_size + n_b)
    real = weights > 0
    order = np.arange(plan.n_rows)[None] if orders is None else orders
    index = np.where(real[None], order[:, positions], 0).astype(np.int32)
    return index, weights


def _start(plan: _Plan, params: tuple[Layer, ...], dt: np.dtype) -> tuple[Any, ...]:
    """The compiled loop's starting carry, on the host (placed with the data)."""
    state = optim.init_state(plan.opt, params, np)
    return (
        np.int32(0),
        params,
        state,
        (np.int32(-1), params),
        np.asarray(-np.inf, dt),
        np.int32(0),
        np.bool_(False),
        _empty_history(plan, dt),
    )


def _next_chunk(chunk: int, seconds: float, epochs: int) -> int:
    """Epochs for the next chunk: about CHUNK_SECONDS at the measured pace, growing <= 10x."""
    if not math.isfinite(CHUNK_SECONDS):
        return max(chunk, 1)
    pace = seconds / max(chunk, 1)
    target = int(CHUNK_SECONDS / pace) if pace > 0 else 10 * chunk
    return max(1, min(target, 10 * chunk, epochs))


def _run_jax(
    plan: _Plan,
    params: tuple[Layer, ...],
    X: np.ndarray,
    Y: np.ndarray,
    val: tuple[np.ndarray, np.ndarray] | None,
    orders: np.ndarray | None,
    progress: Callable[[int, float], None] | None,
    mesh: Any,
) -> tuple[Any, ...]:
    get_backend("jax")  # the ImportError that says how to install JAX
    import jax

    from backprop import distributed
    from backprop._jaxrun import compiled

    dt, E = X.dtype, plan.epochs
    n_devices = 1 if mesh is None else mesh.size
    index, weights = _batch_layout(plan, orders, n_devices, dt)
    if val is None:
        val = (X[:1], Y[:1])  # unused placeholders: the compiled function needs arrays
    x64 = dt == np.float64
    # Ctrl-C is recorded, not raised, while JAX traces, compiles and runs a chunk
    with jax.enable_x64(x64), _interrupt.deferred():
        carry, *data = distributed.place_data(
            mesh, _start(plan, params, dt), X, Y, index, weights, val
        )
        static = {"plan": plan, "mesh": mesh}

        def until(epoch: int) -> Any:
            return distributed.place_replicated(mesh, np.int32(epoch))

        run, compile_time = compiled(_jax_chunk, (carry, *data, until(E)), static, x64=x64)
        train_time, done, chunk = 0.0, 0, 1 if math.isfinite(CHUNK_SECONDS) else E

        def result() -> tuple[Any, ...]:
            e, last, _, (best_epoch, best), _, _, _, hist = carry
            kept = best if plan.restores_best and int(best_epoch) >= 0 else last
            kept = tuple(Layer(np.asarray(w), np.asarray(b)) for w, b in kept)
            found = int(best_epoch) if plan.monitor is not None and int(best_epoch) >= 0 else None
            return (
                kept,
                _finish_history(plan, hist, int(e)),
                int(e),
                found,
                train_time,
                compile_time,
            )

        try:
            while True:
                t0 = time.perf_counter()
                carry = jax.block_until_ready(run(carry, *data, until(min(E, done + chunk))))
                _interrupt.check()  # a Ctrl-C whose exception was dropped (e.g. compiling)
                seconds = time.perf_counter() - t0
                train_time += seconds
                e, stop = int(carry[0]), bool(carry[6])
                if progress is not None:  # on the host: an exception arrives as itself
                    for k, loss in enumerate(np.asarray(carry[7]["loss"][done:e]), done):
                        progress(k + 1, float(loss))
                # every process of a multi-process run must make the same calls
                chunk = distributed.agree(_next_chunk(e - done, seconds, E))
                done = e
                if stop or done >= E:
                    break
        except KeyboardInterrupt:
            raise _Interrupted(result()) from None
        return result()


def _jax_chunk(
    carry: Any,
    X: Any,
    Y: Any,
    index: Any,
    weights: Any,
    Xv: Any,
    Yv: Any,
    until: Any,
    plan: _Plan,
    mesh: Any,
) -> Any:
    """Epochs from the carry's up to ``until`` (or an early stop), compiled: one lax.while_loop."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    from backprop import distributed

    K = get_backend("jax")
    net, opt = plan.net, plan.opt
    rows = jnp.asarray(plan.batch_rows(), X.dtype)
    grad_fn = distributed.batch_gradients(
        lambda p, Xb, Yb, Wb: nets.data_loss_and_grads(K, p, Xb, Yb, net, Wb), net, mesh
    )

    def batch_step(carry: Any, k: Any) -> Any:
        params, state, Xe, Ye = carry
        loss, hits, grads = grad_fn(params, Xe[k], Ye[k], weights[k])
        if plan.alpha:
            penalty, dws = nets.l2_loss_and_grads(K, params, plan.alpha / rows[k])
            loss, grads = loss + penalty, nets.add_weight_grads(grads, dws)
        params, state = optim.update(opt, params, grads, state, jnp)
        norms = jnp.stack([jnp.sqrt(jnp.sum(g.w * g.w)) for g in grads])
        return (params, state, Xe, Ye), (loss * rows[k], hits, norms)

    # Unshuffled, every epoch sees the same batches: gather them once.
    fixed = None if plan.shuffle else distributed.gather_batches(mesh, X, Y, index[0])

    def epoch_body(carry: Any) -> Any:
        e, params, state, best, best_q, bad, stop, hist = carry
        Xe, Ye = fixed if fixed is not None else distributed.gather_batches(mesh, X, Y, index[e])
        (params, state, _, _), (losses, hits, norms) = lax.scan(
            batch_step, (params, state, Xe, Ye), jnp.arange(index.shape[1])
        )
        loss = losses.sum() / plan.n_rows
        vl = va = jnp.asarray(jnp.nan, X.dtype)
        if plan.has_validation:
            vl, va = _evaluate(K, jnp, params, Xv, Yv, net)
        hist = _record(
            hist,
            e,
            loss=loss,
            accuracy=hits.sum() / plan.n_rows,
            grad_norms=norms.mean(axis=0),
            val_loss=vl,
            val_accuracy=va,
        )
        stop = ~jnp.isfinite(loss)
        if plan.monitor is not None:
            q = _monitored(plan.monitor, loss, vl, va)
            improved, best_q, bad, no_progress = _stopping_step(jnp, q, best_q, bad, plan)
            kept = best[1]
            if plan.restores_best:
                kept = jax.tree.map(lambda a, b: jnp.where(improved, a, b), params, best[1])
            best = (jnp.where(improved, e, best[0]), kept)
            stop = stop | no_progress
        return e + 1, params, state, best, best_q, bad, stop, hist

    return lax.while_loop(lambda c: (c[0] < until) & ~c[6], epoch_body, carry)
