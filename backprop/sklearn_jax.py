"""The estimators' JAX backend: each epoch's batches in one compiled ``lax.scan``.

:mod:`backprop.estimator` keeps scikit-learn's epoch loop in Python (the
shuffle from its ``RandomState``, the loss curve, the no-improvement rule,
the learning-rate schedules, validation scores); with ``backend="jax"`` one
epoch's batches run in a single compiled call, and a quiet fit without
early stopping runs up to :func:`_chunk_capacity` epochs per call
(:func:`_compiled_chunk`: the epoch's end in the graph, the host's
statements transcribed, held to scikit-learn's by
``tests/test_sklearn_jax.py`` and scikit-learn's own tests). Each epoch:

- batch k holds rows ``order[k * B : (k + 1) * B]`` (``gen_batches``); the
  short last batch is padded with rows of weight 0;
- each row weighs ``sw / sum(sw of its batch)`` (``1 / rows`` without sample
  weights), and :func:`backprop.nets.data_loss_and_grads` gives the data
  term's gradient (the JAX derivation of every network), to which
  :func:`backprop.nets.l2_loss_and_grads` adds ``alpha / sw_sum * W``:
  scikit-learn's ``(a.T @ delta + alpha W) / sw_sum``. For the squared
  error, scikit-learn's gradient is ``p - y`` (half the MSE kernel's) and
  its loss the mean over outputs of half the squared error;
- the update is scikit-learn's SGD (momentum, Nesterov) or Adam on the flat
  parameter vector, with the learning rate an argument, so schedules do not
  recompile.

With ``devices`` the padded batch is laid out over a one-axis
:class:`jax.sharding.Mesh`, each device holding a slice of its rows; XLA
sums the per-device gradients. The losses come from the logits (the
kernels' stable forms), not from probabilities clipped at machine epsilon:
they equal scikit-learn's except where a probability is within eps of 0 or 1.
Sparse X is densified (JAX has no sparse matmul here). ``loss="poisson"``
(an exponential output, no kernel of this library) runs on NumPy only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from backprop import _interrupt, nets, sklearn_step
from backprop.nets import Layer
from backprop.sklearn_compat import issparse

_EPOCHS: dict[Any, Any] = {}
"""Compiled epochs (and L-BFGS gradients) by configuration: built once per process."""


def _net(est: Any, sizes: list[int]) -> tuple[nets.Net, sklearn_step.Output]:
    """The library's network for the estimator, and its output's row of ``sklearn_step.OUTPUTS``.

    The hidden activation and the head are read from the declarations
    (scikit-learn's names mapped by :func:`backprop.sklearn_step.kernel_name`).
    """
    out = sklearn_step.output(est.out_activation_)
    if out.head is None:
        heads = ", ".join(name for name, o in sklearn_step.OUTPUTS.items() if o.head)
        raise ValueError(
            f"loss={getattr(est, 'loss', None)!r} (output {est.out_activation_!r}) runs on "
            f"backend='numpy' only; the JAX backend has the outputs {heads}"
        )
    sklearn_step.hidden_form(est.activation)  # an unknown name raises, listing the valid ones
    return nets.make_net(sizes, sklearn_step.kernel_name(est.activation), out.head), out


def _declared(net: nets.Net) -> tuple[Any, ...]:
    """The functions ``net``'s names stand for now: part of a compiled function's key, so
    a name registered again with other functions is compiled again."""
    from backprop.kernels import registry

    acts = tuple(registry.activation(a) for a in net.activations)
    return (*((s.forward, s.backward) for s in acts), net.head)


def _mesh(devices: Any) -> Any:
    """A one-axis mesh "d" over ``devices`` (None: no mesh)."""
    if devices is None:
        return None
    import jax
    from jax.sharding import Mesh

    from backprop.sklearn_compat import DeviceIds, devices_from_ids

    available = jax.devices()
    if isinstance(devices, DeviceIds):
        devices = devices_from_ids(devices)
    if devices == "all":
        chosen = available
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices must be between 1 and the {len(available)} devices JAX sees, got "
                f"{devices}"
            )
        chosen = available[: int(devices)]
    else:
        try:
            chosen = list(devices)
        except TypeError:
            raise ValueError(
                f"devices must be None, an int, 'all' or a sequence of jax.Device, got {devices!r}"
            ) from None
        if not chosen or not all(hasattr(d, "platform") for d in chosen):
            raise ValueError(f"devices must be a non-empty sequence of jax.Device, got {devices!r}")
    return Mesh(np.array(chosen), ("d",))


def _loss_and_flat_grad(K: Any, net: nets.Net, out: sklearn_step.Output, shapes: list,
                        theta: Any, Xb: Any, Yb: Any, w: Any, scale: Any,
                        jnp: Any) -> tuple[Any, Any]:  # fmt: skip
    """scikit-learn's batch loss and gradient (flat) at ``theta``, rows weighted by w (n,)."""
    params, offset = [], 0
    n_w = sum(a * b for a, b in shapes)
    b_off = n_w
    for a, b in shapes:
        W = theta[offset : offset + a * b].reshape(a, b)
        B = theta[b_off : b_off + b]
        params.append(Layer(W, B))
        offset += a * b
        b_off += b
    weights = w if net.head.per_row else w[:, None]
    loss, _, grads = nets.data_loss_and_grads(K, params, Xb, Yb, net, weights)
    # scikit-learn's conventions on the head's kernel (squared error: delta = p - y, half
    # the kernel's gradient, and the loss halved and averaged over outputs)
    if out.loss_factor != 1.0 or out.per_output:
        loss = loss * (out.loss_factor / (net.sizes[-1] if out.per_output else 1))
    if out.grad_factor != 1.0:
        grads = tuple(Layer(out.grad_factor * g.w, out.grad_factor * g.b) for g in grads)
    penalty, dws = nets.l2_loss_and_grads(K, params, scale)
    grads = nets.add_weight_grads(grads, dws)
    flat = jnp.concatenate([g.w.ravel() for g in grads] + [g.b for g in grads])
    return loss + penalty, flat


def _sizes(step: Any) -> tuple[list[int], list[tuple[int, int]]]:
    return step.sizes, step.shapes


def gradient_function(est: Any, step: Any, rows: int) -> Any:
    """``f(X, Y, sw) -> loss`` on the whole data (L-BFGS): the gradient into ``step.grad``."""
    import jax
    import jax.numpy as jnp

    from backprop.kernels import get_backend

    K = get_backend("jax")
    sizes, shapes = _sizes(step)
    net, out = _net(est, sizes)
    x64 = step.dtype == np.float64
    alpha = float(est.alpha)

    key = ("lbfgs", net, _declared(net), out, tuple(shapes))
    if key not in _EPOCHS:  # one compiled function per architecture, reused by later fits

        def f(theta: Any, X: Any, Y: Any, w: Any, scale: Any) -> Any:
            return _loss_and_flat_grad(K, net, out, shapes, theta, X, Y, w, scale, jnp)

        _EPOCHS[key] = jax.jit(f)
    compiled = _EPOCHS[key]
    cache: dict[str, Any] = {}

    def run(X: Any, Y: Any, sw: Any) -> float:
        with jax.enable_x64(x64):
            if "data" not in cache:
                Xd = np.asarray(X.toarray() if issparse(X) else X, step.dtype)
                w = np.ones(Xd.shape[0], step.dtype) if sw is None else np.asarray(sw, step.dtype)
                sw_sum = float(w.sum())
                scale = jnp.asarray(alpha / sw_sum, step.dtype)
                cache["data"] = (
                    jnp.asarray(Xd),
                    jnp.asarray(Y, step.dtype),
                    jnp.asarray(w / sw_sum),
                    scale,
                )
            with _interrupt.deferred():  # Ctrl-C recorded while JAX compiles and runs
                # a NumPy argument: the C++ fast path
                loss, grad = compiled(step.theta, *cache["data"])
                step.grad[...] = np.asarray(grad)
            return float(loss)

    return run


def epoch_runner(est: Any, step: Any, X: Any, Y: np.ndarray, sw: Any, batch_size: int) -> Any:
    """``run(order, opt, dense) -> epoch loss``: one compiled pass over the batches."""
    import jax
    import jax.numpy as jnp

    from backprop.kernels import get_backend

    get_backend("jax")  # the ImportError that says how to install JAX
    sizes, shapes = _sizes(step)
    net, out = _net(est, sizes)
    dt = step.dtype
    x64 = dt == np.float64
    n = X.shape[0]
    mesh = _mesh(est.devices)
    n_dev = 1 if mesh is None else mesh.size
    width = -(-batch_size // n_dev) * n_dev
    n_batches = -(-n // batch_size)
    rows = np.array([min(batch_size, n - k * batch_size) for k in range(n_batches)])
    alpha = float(est.alpha)
    update, hyper = sklearn_step.SOLVERS[est.solver].pure(est)
    weights_all = np.ones(n, dt) if sw is None else np.asarray(sw, dt)

    def layout(order: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.arange(n) if order is None else order
        index = np.zeros((n_batches, width), np.int32)
        w = np.zeros((n_batches, width), dt)
        scale = np.zeros(n_batches, dt)
        for k, r in enumerate(rows):
            idx = order[k * batch_size : k * batch_size + r]
            index[k, :r] = idx
            sw_b = weights_all[idx]
            total = sw_b.sum()
            w[k, :r] = sw_b / total
            scale[k] = alpha / total
        return index, w, scale

    compiled = _compiled_epoch(net, out, tuple(shapes), update, hyper, mesh)
    Xd = np.asarray(X.toarray() if issparse(X) else X, dt)
    with jax.enable_x64(x64):
        data = (jnp.asarray(Xd), jnp.asarray(Y, dt))
    with jax.enable_x64(x64):
        fixed = None if est.shuffle else tuple(jnp.asarray(a) for a in layout(None))
    # parameters and optimizer state stay on the device between epochs; sync() copies
    # them into the step and the optimizer when the estimator reads them
    live: dict[str, Any] = {}

    def go_live(opt: Any) -> tuple[float, int]:
        """Parameters and optimizer state onto the device (first call); the epoch's rate
        and the optimizer's step count."""
        if not live:
            live["opt"] = opt
            live["theta"] = jnp.asarray(step.theta)
            live["state"] = tuple(jnp.asarray(a) for a in opt.state())
        return opt.epoch_rate(), getattr(opt, "t", 0)

    def run(order: Any, opt: Any, dense: bool) -> float:
        with jax.enable_x64(x64):
            index, w, scale = fixed if order is None else (jnp.asarray(a) for a in layout(order))
            lr, t0 = go_live(opt)
            with _interrupt.deferred():  # Ctrl-C recorded while JAX compiles and runs
                live["theta"], live["state"], losses = compiled(
                    live["theta"], live["state"], np.asarray(lr, dt), np.asarray(t0, dt), *data,
                    index, w, scale,
                )  # fmt: skip
                losses = np.asarray(losses, np.float64)
        opt.after_epoch(n_batches)
        total = 0.0  # scikit-learn's running sum, batch by batch
        for loss, r in zip(losses.tolist(), rows.tolist(), strict=True):
            total += loss * r
        return total / n

    def sync() -> None:
        if not live:
            return
        step.theta[...] = np.asarray(live["theta"])
        for mine, theirs in zip(live["opt"].state(), live["state"], strict=True):
            mine[...] = np.asarray(theirs)

    chunk_layout = _chunk_capacity(n_batches, width, est.shuffle)
    trigger, trigger_key = sklearn_step.SOLVERS[est.solver].pure_trigger(est)
    chunked = _compiled_chunk(
        net, out, tuple(shapes), update, hyper, trigger, trigger_key, mesh, est.shuffle
    )
    rows_f = np.asarray(rows, np.float64)

    def chunk(orders: Any, opt: Any, best: float, count: int, rates: np.ndarray,
              tol: float, patience: float) -> Chunk:  # fmt: skip
        """Up to ``len(rates)`` epochs (``orders``: each one's row order, or None without
        shuffling) in one compiled call; ``rates[e]``: the rate after epoch e, or NaN."""
        k = len(rates)
        padded = np.full(chunk_layout, np.nan)
        padded[:k] = rates
        with jax.enable_x64(x64):
            if orders is None:
                lay = fixed
            else:
                parts = [layout(o) for o in orders]
                blank = tuple(np.zeros_like(a) for a in parts[0])
                parts += [blank] * (chunk_layout - k)
                lay = tuple(jnp.asarray(np.stack(a)) for a in zip(*parts, strict=True))
            lr, t0 = go_live(opt)
        with jax.enable_x64(True), _interrupt.deferred():  # the epoch's end in float64
            theta, state, _, e, lr, best, count, losses, stop = chunked(
                live["theta"], live["state"], np.asarray(t0, dt), np.float64(lr),
                np.float64(best), np.int64(count), np.int32(k), np.float64(tol),
                np.float64(patience), padded, rows_f, np.float64(n), *data, *lay,
            )  # fmt: skip
            live["theta"], live["state"] = theta, state
            epochs = int(e)
            result = Chunk(
                losses=np.asarray(losses)[:epochs].tolist(),
                rate=float(lr), best=float(best), count=int(count), stopped=bool(stop),
            )  # fmt: skip
        opt.after_epoch(n_batches * epochs)
        return result

    run.sync = sync  # type: ignore[attr-defined]
    run.chunk = chunk  # type: ignore[attr-defined]
    run.capacity = chunk_layout  # type: ignore[attr-defined]
    return run


class Chunk(NamedTuple):
    """What a compiled chunk of epochs reports: each epoch's loss, the rate, the best loss
    and no-improvement count after its last epoch, and whether the rule stopped there."""

    losses: list[float]
    rate: float
    best: float
    count: int
    stopped: bool


def _chunk_capacity(n_batches: int, width: int, shuffled: bool) -> int:
    """Epochs one compiled chunk can hold: its layouts (epochs, batches, width) stay under
    2**22 row indices when each epoch has its own order."""
    if not shuffled:
        return 1024
    return int(max(1, min(256, 2**22 // (n_batches * width))))


def _epoch_function(
    net: nets.Net, out: sklearn_step.Output, shapes: tuple, update: Any, mesh: Any
) -> Any:
    """``epoch(theta, state, lr, t0, Xd, Yd, index, w, scale) -> (theta, state, t, losses)``:
    one pass over the batches (row indices ``index`` (batches, width), row weights ``w``,
    L2 scales ``scale``) as a ``lax.scan``, the solver's pure ``update`` after each."""
    import jax.numpy as jnp
    from jax import lax

    from backprop.kernels import get_backend

    K = get_backend("jax")
    shard = None
    if mesh is not None:
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        shard = NamedSharding(mesh, P("d"))

    def epoch(theta: Any, state: Any, lr: Any, t0: Any, Xd: Any, Yd: Any, index: Any, w: Any,
              scale: Any) -> Any:  # fmt: skip
        def body(carry: Any, k: Any) -> Any:
            theta, state, t = carry
            Xb, Yb, wb = Xd[index[k]], Yd[index[k]], w[k]
            if shard is not None:  # each device holds a slice of the batch's rows
                Xb = lax.with_sharding_constraint(Xb, shard)
                Yb = lax.with_sharding_constraint(Yb, shard)
                wb = lax.with_sharding_constraint(wb, shard)
            loss, g = _loss_and_flat_grad(
                K, net, out, list(shapes), theta, Xb, Yb, wb, scale[k], jnp
            )
            theta, state, t = update(jnp, theta, state, g, lr, t)  # scikit-learn's optimizer
            return (theta, state, t), loss

        steps = jnp.arange(index.shape[0], dtype=jnp.int32)
        (theta, state, t), losses = lax.scan(body, (theta, state, t0), steps)
        return theta, state, t, losses

    return epoch


def _devices_key(mesh: Any) -> Any:
    return None if mesh is None else tuple((d.platform, d.id) for d in mesh.devices.flat)


def _compiled_epoch(
    net: nets.Net, out: sklearn_step.Output, shapes: tuple, update: Any, hyper: tuple,
    mesh: Any,
) -> Any:  # fmt: skip
    """The jitted epoch for one configuration, built once per process (later fits reuse it).

    ``update``: the solver's pure update (:meth:`backprop.sklearn_step.SGDOptimizer.pure`),
    ``hyper`` the hyperparameters it closes over.
    """
    key = ("epoch", net, _declared(net), out, shapes, hyper, _devices_key(mesh))
    if key not in _EPOCHS:
        import jax

        epoch = _epoch_function(net, out, shapes, update, mesh)

        def first_three(*args: Any) -> Any:
            theta, state, _, losses = epoch(*args)
            return theta, state, losses

        _EPOCHS[key] = jax.jit(first_three)
    return _EPOCHS[key]


def _compiled_chunk(
    net: nets.Net, out: sklearn_step.Output, shapes: tuple, update: Any, hyper: tuple,
    trigger: Any, trigger_key: tuple, mesh: Any, shuffled: bool,
) -> Any:  # fmt: skip
    """Up to ``n_epochs`` epochs in one jitted ``lax.while_loop``, with scikit-learn's epoch
    end in the graph (float64, under ``jax.enable_x64``):

    - the epoch loss ``sum(batch losses * rows) / n``, summed batch by batch as
      scikit-learn (and the per-epoch runner) does;
    - the no-improvement rule on the training loss (``_update_no_improvement_count``
      without early stopping): ``count + 1`` where ``loss > best - tol``, else 0;
      ``best = loss`` where ``loss < best``;
    - the rate after the epoch, ``rates[e]`` where it is not NaN (the host's
      :meth:`~backprop.sklearn_step.SGDOptimizer.rate_after`, "invscaling");
    - where ``count > patience`` the solver's ``trigger`` (its ``pure_trigger``): stop,
      or (``learning_rate="adaptive"``) divide the rate by 5 and reset the count.

    The loop ends after ``n_epochs`` epochs or at the epoch where the rule stops;
    ``shuffled``: each epoch has its own layout (``index[e]``), else one for all.
    """
    key = ("chunk", shuffled, net, _declared(net), out, shapes, hyper, trigger_key,
           _devices_key(mesh))  # fmt: skip
    if key in _EPOCHS:
        return _EPOCHS[key]
    import jax
    import jax.numpy as jnp
    from jax import lax

    epoch = _epoch_function(net, out, shapes, update, mesh)

    def chunk(theta: Any, state: Any, t0: Any, lr: Any, best: Any, count: Any, n_epochs: Any,
              tol: Any, patience: Any, rates: Any, rows: Any, n: Any, Xd: Any, Yd: Any,
              index: Any, w: Any, scale: Any) -> Any:  # fmt: skip
        dt = theta.dtype
        losses = jnp.zeros(rates.shape, jnp.float64)

        def cond(c: Any) -> Any:
            return (c[0] < n_epochs) & ~c[-1]

        def body(c: Any) -> Any:
            e, theta, state, t, lr, best, count, losses, _ = c
            lay = (index[e], w[e], scale[e]) if shuffled else (index, w, scale)
            theta, state, t, batch = epoch(theta, state, lr.astype(dt), t, Xd, Yd, *lay)
            # scikit-learn's running sum of loss * rows, batch by batch; the products are
            # made first (the barrier keeps them from fusing into the sum as FMAs, which
            # round once where Python rounds twice)
            terms = lax.optimization_barrier(batch.astype(jnp.float64) * rows)
            total = lax.fori_loop(0, terms.shape[0], lambda k, acc: acc + terms[k], 0.0)
            loss = total / n
            losses = losses.at[e].set(loss)
            count = jnp.where(loss > best - tol, count + 1, 0)
            best = jnp.where(loss < best, loss, best)
            lr = jnp.where(jnp.isnan(rates[e]), lr, rates[e])
            fire = count > patience
            lr, stop = trigger(jnp, lr, fire)
            count = jnp.where(fire & ~stop, 0, count)
            return e + 1, theta, state, t, lr, best, count, losses, stop

        start = (jnp.int32(0), theta, state, t0, lr, best, count, losses, jnp.bool_(False))
        e, theta, state, t, lr, best, count, losses, stop = lax.while_loop(cond, body, start)
        return theta, state, t, e, lr, best, count, losses, stop

    _EPOCHS[key] = jax.jit(chunk)
    return _EPOCHS[key]
