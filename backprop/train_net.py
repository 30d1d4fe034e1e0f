"""Training any network of :mod:`backprop.layers` with softmax cross-entropy.

One step, written once against the backend ``K`` and used by both backends::

    logits, cache, state = net.forward(K, params, state, xb, train=True, key)
    loss, c = K.softmax_cross_entropy_forward(logits (rows, C), onehot(yb))
    _, grads = net.backward(K, params, cache, K.softmax_cross_entropy_backward(1, c))
    grads  = grads * min(1, clip_norm / ||grads||)         (clipping by global norm)
    params = params - lr_t * weight_decay * params          (decoupled decay: AdamW)
    params, opt_state = optimizer update (backprop.optim)   (lr_t: the schedule's rate)

On JAX the step is compiled once and called per minibatch (``compile="step"``),
or a whole epoch is one compiled ``lax.scan`` of it (``compile="epoch"``; slower
on CPU, see :func:`train_net`); on NumPy the same function runs eagerly, batch
by batch. The rows of
each epoch's minibatches come from the same NumPy permutation on both
backends; dropout's masks come from a JAX key or a NumPy Generator.

With ``devices`` (JAX) the same compiled step runs data parallel: each
minibatch's rows are split over a mesh of devices
(:func:`backprop.distributed.shard_rows`), everything else is replicated,
and XLA partitions the program, so the step equals one device's.

Labels: integer classes. Logits of shape (N, C) take y (N,); logits of shape
(N, T, C) (a sequence model) take y (N, T), the loss averaging over every
position.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop import _interrupt, optim
from backprop.network import Serial, leaves, rebuild, tree_map

SCHEDULES = ("constant", "cosine")
COMPILE = ("step", "epoch")


@dataclass
class NetResult:
    """What :func:`train_net` returns.

    ``params``, ``state``: the trained containers (NumPy arrays);
    ``losses``: mean training loss per epoch; ``val_losses``,
    ``val_accuracies``: per epoch on ``validation`` (empty without);
    ``epochs``: epochs run; ``best_epoch``: the epoch whose parameters were
    kept (the last, or the best validation loss with ``patience``);
    ``time_per_epoch`` (s), ``compile_time`` (s, JAX's first epoch minus the
    others' mean; 0 on NumPy); ``devices``: how many devices each minibatch
    was split over (1 without ``devices``).
    """

    net: Serial
    params: Any
    state: Any
    losses: list[float]
    val_losses: list[float]
    val_accuracies: list[float]
    epochs: int
    best_epoch: int
    time_per_epoch: float
    compile_time: float
    backend: str
    devices: int = 1


def loss_and_grad(K: Any, net: Serial, params: Any, state: Any, x: Any, y: Any, key: Any) -> Any:
    """Mean softmax cross-entropy of ``net`` on ``(x, y)`` in training mode and its gradient.

    Returns ``(loss, grads, new_state)``; ``grads`` has ``params``' structure.
    """
    logits, cache, state = net.forward(K, params, state, x, True, key)
    z = logits.reshape(-1, logits.shape[-1])
    y1 = K.xp.asarray(y).reshape(-1)
    onehot = (y1[:, None] == K.xp.arange(z.shape[1])[None, :]).astype(z.dtype)
    loss, c = K.softmax_cross_entropy_forward(z, onehot)
    dz = K.softmax_cross_entropy_backward(1.0, c).reshape(logits.shape)
    _, grads = net.backward(K, params, cache, dz)
    return loss, grads, state


def _as_layers(arrays: list[Any], xp: Any) -> tuple[Any, ...]:
    # backprop.optim updates tuples of (w, b) pairs: one pair per array, b empty.
    from backprop.nets import Layer

    return tuple(Layer(a, xp.zeros((0,), a.dtype)) for a in arrays)


def make_step(
    K: Any,
    net: Serial,
    opt: optim.Optimizer,
    weight_decay: float,
    clip_norm: float | None,
) -> Callable[..., Any]:
    """The training step ``step(params, state, opt_state, lr, x, y, key)``.

    Returns ``(params, state, opt_state, loss)``.

    ``lr``: this step's learning rate (the schedule's); weight decay applies
    to the arrays of 2 or more axes (weights, filters, embedding tables),
    not to biases or norm scales.
    """
    xp, spec = K.xp, optim.get(opt.name)

    def step(params: Any, state: Any, opt_state: Any, lr: Any, x: Any, y: Any, key: Any) -> Any:
        loss, grads, state = loss_and_grad(K, net, params, state, x, y, key)
        g = leaves(grads)
        if clip_norm is not None:
            norm = xp.sqrt(sum((a * a).sum() for a in g))
            factor = xp.minimum(1.0, clip_norm / (norm + 1e-6)).astype(g[0].dtype)
            g = [a * factor for a in g]
        p = leaves(params)
        if weight_decay:
            p = [a - (lr * weight_decay) * a if a.ndim >= 2 else a for a in p]
        new, opt_state = spec.update(
            dataclasses.replace(opt, lr=lr), _as_layers(p, xp), _as_layers(g, xp), opt_state, xp
        )
        return rebuild(params, [layer.w for layer in new]), state, opt_state, loss

    return step


def _schedule(name: str, lr: float, done: float) -> float:
    """The learning rate when the fraction ``done`` of the run is behind."""
    if name == "constant":
        return lr
    return 0.5 * lr * (1.0 + math.cos(math.pi * min(done, 1.0)))


def evaluate(
    K: Any, net: Serial, params: Any, state: Any, X: Any, y: Any, batch: int = 512
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``net`` in evaluation mode on ``(X, y)``, in batches."""
    total, correct, count = 0.0, 0.0, 0
    fn = _eval_fn(K, net)
    for i in range(0, X.shape[0], batch):
        s, c = fn(params, state, X[i : i + batch], y[i : i + batch])
        total += float(s)
        correct += float(c)
        count += int(np.size(y[i : i + batch]))
    return total / count, correct / count


_EVAL_CACHE: dict[Any, Any] = {}


def _eval_fn(K: Any, net: Serial) -> Callable[..., Any]:
    def fn(params: Any, state: Any, x: Any, y: Any) -> Any:
        logits = net.forward(K, params, state, x, False, None)[0]
        z = logits.reshape(-1, logits.shape[-1])
        y1 = K.xp.asarray(y).reshape(-1)
        m = z.max(axis=1, keepdims=True)
        lse = m[:, 0] + K.xp.log(K.xp.exp(z - m).sum(axis=1))
        picked = K.xp.take_along_axis(z, y1[:, None], axis=1)[:, 0]
        return (lse - picked).sum(), (z.argmax(axis=1) == y1).sum()

    if K.name != "jax":
        return fn
    import jax

    key = (id(net), "eval")
    if key not in _EVAL_CACHE or _EVAL_CACHE[key][0] is not net:
        _EVAL_CACHE[key] = (net, jax.jit(fn))
    return _EVAL_CACHE[key][1]


def predict(net: Serial, params: Any, state: Any, X: Any, backend: str = "numpy") -> np.ndarray:
    """Class scores (logits) of ``net`` in evaluation mode, as a NumPy array."""
    from backprop.kernels import get_backend

    K = get_backend(backend)
    out = [
        np.asarray(net.forward(K, params, state, K.xp.asarray(X[i : i + 512]), False, None)[0])
        for i in range(0, X.shape[0], 512)
    ]
    return np.concatenate(out)


def train_net(
    net: Serial,
    X: Any,
    y: Any,
    *,
    optimizer: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
    schedule: str = "constant",
    epochs: int = 10,
    batch_size: int = 64,
    validation: tuple[Any, Any] | None = None,
    patience: int | None = None,
    steps_per_epoch: int | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    dtype: str = "float32",
    init: tuple[Any, Any] | None = None,
    backend: str = "numpy",
    compile: str = "step",
    devices: Any = None,
    progress: Callable[[int, float], Any] | None = None,
    on_epoch: Callable[[int, float, float | None, float | None], Any] | None = None,
) -> NetResult:
    """Train ``net`` with minibatches and softmax cross-entropy.

    Parameters
    ----------
    net : Serial
        From :func:`backprop.network.serial` (e.g. :func:`backprop.models.cnn`).
    X : array, shape (N, ...)
        Inputs: images (N, C, H, W), token ids (N, T), rows (N, D).
    y : integer array, shape (N,) or (N, T)
        Classes in [0, C) for the logits' last axis.
    optimizer : "sgd", "momentum" or "adam" (any of :data:`backprop.optim.OPTIMIZERS`)
    lr : float > 0
        Learning rate (the peak, with ``schedule="cosine"``).
    weight_decay : float >= 0
        Decoupled weight decay (AdamW with "adam"): ``w -= lr_t wd w`` per step
        on arrays of 2 or more axes.
    clip_norm : float > 0, optional
        Rescale the gradient to this global norm when it is longer.
    schedule : "constant" or "cosine"
        The learning rate per epoch: fixed, or ``lr (1 + cos(pi f)) / 2`` with f
        the fraction of the run behind (epochs, or time with ``time_limit``:
        whichever is further).
    epochs, batch_size : int >= 1
        Passes over the data; rows per step (the last partial batch of an epoch
        is left out; the shuffle changes which rows).
    validation : (X_val, y_val), optional
        Evaluated (evaluation mode) after every epoch.
    patience : int, optional
        Stop after this many epochs without a better validation loss and keep
        the best epoch's parameters (needs ``validation``).
    steps_per_epoch : int, optional
        Minibatches per epoch, their rows drawn at random without replacement
        within an epoch (for data too large to pass over: windows of a long
        text); default every row once, ``N // batch_size`` steps.
    time_limit : float, optional
        Seconds: stop when another epoch (as long as the last) would end past it.
    seed : int
        Seed of the initial parameters, the shuffles and the dropout masks.
    dtype : "float32" or "float64"
    init : (params, state), optional
        Start from these instead of ``net.init``.
    backend : "numpy" or "jax"
    compile : "step" or "epoch"
        JAX only. "epoch": each epoch is one compiled ``lax.scan`` over its
        minibatches. "step" (default): one compiled step, called once per
        minibatch from Python, on the same rows and keys (equal results,
        tested). XLA on CPU runs the convolutions inside a scan's loop body
        about 3x slower than the same step compiled alone (digits CNN: 0.54-0.71
        s against 0.19 s an epoch, measured on a loaded 2-core machine), so
        "step" is the default.
    devices : None, int, "all" or sequence of jax.Device
        JAX only. None: one device. Otherwise data parallel over that many
        (or those) devices of one process: the parameters, the optimizer's
        state and the layers' state (batch norm's running averages) are
        replicated on every device, and each minibatch's rows are split
        evenly over them (``batch_size`` must be a multiple of the device
        count). The compiled step is the one-device step with its minibatch
        constrained to a row-sharded layout, and XLA partitions that same
        program: the loss is the mean over the whole minibatch, batch norm
        normalises with the whole minibatch's statistics, dropout draws the
        same masks, so the results equal one device's up to the order of
        floating-point sums. Validation runs on one device (the first).
    progress : callable(epoch, loss), optional
        Called after every epoch.
    on_epoch : callable(epoch, loss, val_loss, val_accuracy), optional
        Called after every epoch with the validation numbers (None without).

    Returns
    -------
    NetResult

    Raises
    ------
    ValueError
        For an unknown optimizer, schedule or backend (listing the valid
        ones), or X and y of different lengths, or bad numbers; for
        ``devices`` with the NumPy backend, more devices than JAX has, a
        malformed device list, a ``batch_size`` smaller than the device
        count or not a multiple of it, or a multi-process run.
    """
    from backprop.kernels import BACKENDS, get_backend

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if compile not in COMPILE:
        raise ValueError(f"compile must be one of {', '.join(COMPILE)}, got {compile!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if devices is not None and backend != "jax":
        raise ValueError(
            f"devices={devices!r} needs backend='jax' (data-parallel training runs on JAX's "
            "devices); the NumPy backend runs on one"
        )
    opt = optim.make_optimizer(optimizer, lr)
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    if clip_norm is not None and not (isinstance(clip_norm, (int, float)) and clip_norm > 0):
        raise ValueError(f"clip_norm must be a number > 0 or None, got {clip_norm!r}")
    if patience is not None and validation is None:
        raise ValueError("patience needs validation data to watch")
    X, y = np.asarray(X), np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same rows, got {X.shape[0]} and {y.shape[0]}")
    if y.dtype.kind not in "iu":
        raise ValueError(f"y must hold integer classes, got dtype {y.dtype}")
    dt = np.dtype(dtype)
    if X.dtype.kind == "f":
        X = X.astype(dt)
    n = X.shape[0]
    batch_size = min(int(batch_size), n)
    steps = n // batch_size if steps_per_epoch is None else int(steps_per_epoch)
    if steps < 1 or steps * batch_size > n:
        raise ValueError(
            f"steps_per_epoch must be in [1, {n // batch_size}] ({n} rows, batches of "
            f"{batch_size}), got {steps_per_epoch!r}"
        )
    # float64 on JAX needs x64 on while the arrays are made and the step is traced
    # (without it JAX makes float32 silently): on for this run only, as train_mlp does.
    with _precision(backend, dt):
        mesh = _mesh(devices, batch_size) if backend == "jax" else None
        K = get_backend(backend)
        xp = K.xp
        if init is None:
            params, state, _ = net.init(seed, X.shape[1:], dt)
        else:
            params, state = init
        params = tree_map(xp.asarray, params)
        state = tree_map(xp.asarray, state)
        opt_state = optim.get(opt.name).init(opt, _as_layers(leaves(params), xp), xp)
        step = make_step(K, net, opt, float(weight_decay), clip_norm)
        order_rng = np.random.default_rng(seed + 1)
        if backend == "jax":
            import jax

            from backprop import distributed

            if mesh is None:
                Xd, yd = jax.numpy.asarray(X), jax.numpy.asarray(y)
            else:  # everything whole on every device; each step's rows split in `body`
                params, state, opt_state, Xd, yd = distributed.place_replicated(
                    mesh, (params, state, opt_state, X, y)
                )

            def body(carry: Any, i: Any, lr: Any, order: Any, key: Any) -> Any:
                params, state, opt_state = carry
                idx = jax.lax.dynamic_slice_in_dim(order, i * batch_size, batch_size)
                xb, yb = distributed.shard_rows(mesh, (Xd[idx], yd[idx]))
                k = jax.random.fold_in(key, i)
                params, state, opt_state, loss = step(params, state, opt_state, lr, xb, yb, k)
                return distributed.replicate(mesh, (params, state, opt_state)), loss

            def epoch_fn(
                params: Any, state: Any, opt_state: Any, lr: Any, order: Any, key: Any
            ) -> Any:
                (params, state, opt_state), losses = jax.lax.scan(
                    lambda c, i: body(c, i, lr, order, key),
                    (params, state, opt_state),
                    jax.numpy.arange(steps),
                )
                return params, state, opt_state, losses.mean()

            if compile == "epoch":
                run_epoch = jax.jit(epoch_fn)
            else:
                one = jax.jit(body)

                def run_epoch(
                    params: Any, state: Any, opt_state: Any, lr: Any, order: Any, key: Any
                ) -> Any:
                    carry, total = (params, state, opt_state), 0.0
                    for i in range(steps):
                        _interrupt.check()
                        carry, loss = one(carry, i, lr, order, key)
                        total = total + loss
                    return (*carry, total / steps)

            base_key = jax.random.key(seed)
        else:
            drop_rng = np.random.default_rng(seed + 2)
        losses: list[float] = []
        val_losses: list[float] = []
        val_accs: list[float] = []
        times: list[float] = []
        best = (math.inf, 0, params, state)
        epoch = 0
        start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            _interrupt.check()  # a Ctrl-C whose exception was dropped where it landed
            t0 = time.perf_counter()
            order = order_rng.permutation(n)[: steps * batch_size]
            done = (epoch - 1) / epochs
            if time_limit is not None:
                done = max(done, (time.perf_counter() - start) / time_limit)
            rate = _schedule(schedule, float(lr), done)
            if backend == "jax":
                with _interrupt.deferred():  # recorded, not raised, inside JAX's calls
                    params, state, opt_state, loss = run_epoch(
                        params,
                        state,
                        opt_state,
                        xp.asarray(rate, dt),
                        xp.asarray(order),
                        jax.random.fold_in(base_key, epoch),
                    )
                    loss = float(loss)
            else:
                total = 0.0
                for i in range(steps):
                    idx = order[i * batch_size : (i + 1) * batch_size]
                    params, state, opt_state, batch_loss = step(
                        params, state, opt_state, dt.type(rate), X[idx], y[idx], drop_rng
                    )
                    total += float(batch_loss)
                loss = total / steps
            times.append(time.perf_counter() - t0)
            losses.append(loss)
            if validation is not None:
                p, s = (params, state) if mesh is None else _first_device(mesh, (params, state))
                vl, va = evaluate(K, net, p, s, xp.asarray(validation[0]), validation[1])
                val_losses.append(vl)
                val_accs.append(va)
                if vl < best[0]:
                    best = (vl, epoch, params, state)
            if progress is not None:
                progress(epoch, loss)
            if on_epoch is not None:
                on_epoch(
                    epoch, loss, *((val_losses[-1], val_accs[-1]) if val_losses else (None, None))
                )
            if patience is not None and epoch - best[1] >= patience:
                break
            if time_limit is not None and time.perf_counter() - start + times[-1] > time_limit:
                break  # another epoch would end past the limit
        best_epoch = epoch
        if patience is not None:
            _, best_epoch, params, state = best
        compile_time = 0.0
        per_epoch = float(np.mean(times))
        if backend == "jax" and len(times) > 1:
            per_epoch = float(np.mean(times[1:]))
            compile_time = max(0.0, times[0] - per_epoch)
        to_np = lambda a: np.asarray(a)  # noqa: E731
        return NetResult(
            net,
            tree_map(to_np, params),
            tree_map(to_np, state),
            losses,
            val_losses,
            val_accs,
            epoch,
            best_epoch,
            per_epoch,
            compile_time,
            backend,
            1 if mesh is None else mesh.size,
        )


def _precision(backend: str, dt: np.dtype) -> Any:
    """A context with JAX's 64-bit mode on for a float64 run on JAX; else nothing."""
    if backend == "jax" and dt == np.float64:
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _mesh(devices: Any, batch_size: int) -> Any:
    """The mesh a minibatch's rows are split over (None for one device), or a ValueError."""
    if devices is None:
        return None
    from backprop import distributed

    if distributed.is_multiprocess():
        raise ValueError(
            f"devices={devices!r}: train_net splits batches over the devices of one process; "
            "it does not run across processes (jax.distributed)"
        )
    mesh = distributed.make_mesh(devices, batch_size)
    if batch_size % mesh.size:
        raise ValueError(
            f"batch_size={batch_size} is not a multiple of the {mesh.size} devices it would be "
            f"split over: every device takes the same number of rows (batch norm normalises "
            f"over exactly the minibatch, so there are no padding rows); use a multiple of "
            f"{mesh.size}"
        )
    return mesh


def _first_device(mesh: Any, tree: Any) -> Any:
    """A copy of replicated arrays on the mesh's first device alone (for evaluation)."""
    import jax

    return jax.device_put(tree, mesh.devices.flat[0])
