"""Optimizers, one declaration each: SGD, momentum (classic or Nesterov) and
Adam, as scikit-learn's ``MLPClassifier`` defines them.

An optimizer is an :class:`OptimizerSpec` in :data:`OPTIMIZERS`: a pure
update on the parameters (a tuple of :class:`~backprop.nets.Layer`), their
gradients and a state of plain arrays, which runs on NumPy and inside
``jax.jit``, next to its in-place form on the flat parameter vector of the
NumPy fast path (:mod:`backprop.fast.mlp_inplace`):

- ``sgd``:      ``w = w - lr * dw``
- ``momentum``: ``v = mu * v - lr * dw``, then ``w = w + v``, or with
  Nesterov's correction ``w = w + mu * v - lr * dw`` (with the new ``v``)
- ``adam``:     ``m = b1 m + (1 - b1) dw``, ``v = b2 v + (1 - b2) dw^2``,
  ``w = w - lr_t m / (sqrt(v) + eps)`` with the bias corrections folded into
  the step size, ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)`` (Kingma and Ba,
  2015, section 2; ``eps`` outside the correction)

and the same for every ``b``. Adding an optimizer is one declaration here,
or :func:`register_optimizer` from outside; ``tests/test_fast.py`` holds
every in-place form to its pure update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop.nets import Layer


@dataclass(frozen=True)
class Optimizer:
    """An optimizer and its hyper-parameters (hashable: a static argument under ``jax.jit``).

    ``name``: one of :data:`OPTIMIZERS`; ``lr``: the learning rate; ``momentum``
    and ``nesterov``: for "momentum"; ``beta1``, ``beta2``, ``eps``: for
    "adam".
    """

    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


def make_optimizer(
    name: Any,
    lr: float,
    *,
    momentum: Any = 0.9,
    nesterov: Any = False,
    beta1: Any = 0.9,
    beta2: Any = 0.999,
    eps: Any = 1e-8,
) -> Optimizer:
    """Validate an optimizer's name and hyper-parameters.

    Raises
    ------
    ValueError
        For an unknown name (listing the valid ones), momentum outside
        [0, 1), beta1 or beta2 outside [0, 1), eps <= 0, or a non-bool
        nesterov.
    """
    from backprop._validate import check_number

    get(name)
    for label, value in (("momentum", momentum), ("beta1", beta1), ("beta2", beta2)):
        check_number(label, value, low=0.0)
        if not float(value) < 1.0:
            raise ValueError(f"{label} must be in [0, 1), got {value!r}")
    check_number("eps", eps, low=0.0, low_open=True)
    if not isinstance(nesterov, bool):
        raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
    return Optimizer(
        name, float(lr), float(momentum), nesterov, float(beta1), float(beta2), float(eps)
    )


def get(name: Any) -> OptimizerSpec:
    """The optimizer declared as ``name``; ``ValueError`` listing the valid names otherwise."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name]


def init_state(opt: Optimizer, params: Sequence[Layer], xp: Any) -> Any:
    """The starting state, from the declaration: () for sgd, velocities, Adam's (t, m, v)."""
    return get(opt.name).init(opt, params, xp)


def update(
    opt: Optimizer, params: Sequence[Layer], grads: Sequence[Layer], state: Any, xp: Any
) -> tuple[tuple[Layer, ...], Any]:
    """One step of ``opt``: returns ``(new params, new state)``; nothing is modified in place.

    ``xp``: the array namespace of the parameters (``numpy`` or ``jax.numpy``).
    """
    return get(opt.name).update(opt, params, grads, state, xp)


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer: its pure update and its in-place form, declared together.

    ``init(opt, params, xp) -> state`` and ``update(opt, params, grads, state,
    xp) -> (params, state)``: pure, on tuples of :class:`Layer` (``opt`` is
    the :class:`Optimizer` with the hyper-parameters). ``inplace(opt, theta,
    g, slots, scratch, t)``: the same step on the flat parameter vector
    ``theta`` (P,) from its gradient ``g`` (P,), in place; ``slots`` is a
    list of ``n_slots`` state vectors (P,), zero at the start, ``scratch``
    two vectors (P,) it may overwrite, ``t`` the step count (1 at the first
    step). None: the pure update run on the flat vector as one layer (right
    for every optimizer that treats each parameter alike). ``reads``: the
    hyper-parameters of :class:`Optimizer` the step uses besides ``lr``
    (the command line refuses a flag the chosen optimizer would ignore, and
    records only these in a model file).
    """

    name: str
    init: Callable[..., Any]
    update: Callable[..., tuple[tuple[Layer, ...], Any]]
    inplace: Callable[..., None] | None = None
    n_slots: int = 0
    reads: tuple[str, ...] = ()

    def inplace_state(self, opt: Optimizer, theta: np.ndarray) -> list[Any]:
        """The in-place form's starting state for a flat parameter vector ``theta``."""
        if self.inplace is not None:
            return [np.zeros_like(theta) for _ in range(self.n_slots)]
        return [self.init(opt, (Layer(theta, theta[:0]),), np)]

    def inplace_step(
        self,
        opt: Optimizer,
        theta: np.ndarray,
        g: np.ndarray,
        slots: list[Any],
        scratch: Sequence[np.ndarray],
        t: int,
    ) -> None:
        """One step on ``theta`` in place: the declared form, or the pure update on one layer."""
        if self.inplace is not None:
            self.inplace(opt, theta, g, slots, scratch, t)
            return
        empty = theta[:0]
        new, slots[0] = self.update(opt, (Layer(theta, empty),), (Layer(g, empty),), slots[0], np)
        theta[...] = new[0].w


def _sgd_init(opt: Optimizer, params: Sequence[Layer], xp: Any) -> Any:
    return ()


def _sgd_update(
    opt: Optimizer, params: Sequence[Layer], grads: Sequence[Layer], state: Any, xp: Any
) -> tuple[tuple[Layer, ...], Any]:
    return sgd(params, grads, opt.lr), state


def _sgd_inplace(opt: Optimizer, theta: Any, g: Any, slots: Any, scratch: Any, t: int) -> None:
    tmp = scratch[0]
    np.multiply(g, opt.lr, out=tmp)  # w = w - lr * dw
    theta -= tmp


def _zeros(params: Sequence[Layer], xp: Any) -> tuple[Layer, ...]:
    return tuple(Layer(xp.zeros_like(w), xp.zeros_like(b)) for w, b in params)


def _momentum_init(opt: Optimizer, params: Sequence[Layer], xp: Any) -> Any:
    return _zeros(params, xp)


def _momentum_update(
    opt: Optimizer, params: Sequence[Layer], grads: Sequence[Layer], state: Any, xp: Any
) -> tuple[tuple[Layer, ...], Any]:
    return momentum(params, grads, state, opt.lr, opt.momentum, opt.nesterov)


def _momentum_inplace(opt: Optimizer, theta: Any, g: Any, slots: Any, scratch: Any, t: int) -> None:
    (v,), (tmp, step) = slots, scratch
    v *= opt.momentum  # v = mu v - lr dw
    np.multiply(g, opt.lr, out=tmp)
    v -= tmp
    if opt.nesterov:  # w + (mu v - lr dw), with the new v
        np.multiply(v, opt.momentum, out=step)
        step -= tmp
        theta += step
    else:
        theta += v


def _adam_init(opt: Optimizer, params: Sequence[Layer], xp: Any) -> Any:
    return (xp.zeros((), params[0].w.dtype), _zeros(params, xp), _zeros(params, xp))


def _adam_update(
    opt: Optimizer, params: Sequence[Layer], grads: Sequence[Layer], state: Any, xp: Any
) -> tuple[tuple[Layer, ...], Any]:
    return adam(params, grads, state, opt.lr, opt.beta1, opt.beta2, opt.eps, xp)


def _adam_inplace(opt: Optimizer, theta: Any, g: Any, slots: Any, scratch: Any, t: int) -> None:
    (m, v), tmp = slots, scratch[0]
    m *= opt.beta1  # m = b1 m + (1 - b1) dw
    np.multiply(g, 1 - opt.beta1, out=tmp)
    m += tmp
    v *= opt.beta2  # v = b2 v + (1 - b2) dw^2
    np.multiply(g, g, out=tmp)
    tmp *= 1 - opt.beta2
    v += tmp
    lr_t = opt.lr * np.sqrt(1 - opt.beta2**t) / (1 - opt.beta1**t)
    np.sqrt(v, out=tmp)  # w = w - lr_t m / (sqrt(v) + eps)
    tmp += opt.eps
    np.divide(m, tmp, out=tmp)
    tmp *= lr_t
    theta -= tmp


def sgd(params: Sequence[Layer], grads: Sequence[Layer], lr: Any) -> tuple[Layer, ...]:
    """Plain gradient descent."""
    new = []
    for (w, b), (dw, db) in zip(params, grads, strict=True):
        w = w - lr * dw
        b = b - lr * db
        new.append(Layer(w, b))
    return tuple(new)


def momentum(
    params: Sequence[Layer],
    grads: Sequence[Layer],
    velocity: Sequence[Layer],
    lr: Any,
    mu: Any,
    nesterov: bool,
) -> tuple[tuple[Layer, ...], tuple[Layer, ...]]:
    """Heavy-ball momentum, or Nesterov's, in scikit-learn's form (velocity holds the step)."""
    new, new_velocity = [], []
    for (w, b), (dw, db), (vw, vb) in zip(params, grads, velocity, strict=True):
        vw = mu * vw - lr * dw
        vb = mu * vb - lr * db
        if nesterov:
            w = w + (mu * vw - lr * dw)
            b = b + (mu * vb - lr * db)
        else:
            w = w + vw
            b = b + vb
        new.append(Layer(w, b))
        new_velocity.append(Layer(vw, vb))
    return tuple(new), tuple(new_velocity)


def adam(
    params: Sequence[Layer],
    grads: Sequence[Layer],
    state: Any,
    lr: Any,
    beta1: Any,
    beta2: Any,
    eps: Any,
    xp: Any,
) -> tuple[tuple[Layer, ...], Any]:
    """Adam with the bias corrections folded into the step size."""
    t, first, second = state
    t = t + 1
    lr_t = lr * xp.sqrt(1 - beta2**t) / (1 - beta1**t)
    new, new_first, new_second = [], [], []
    for (w, b), (dw, db), (mw, mb), (vw, vb) in zip(params, grads, first, second, strict=True):
        mw = beta1 * mw + (1 - beta1) * dw
        mb = beta1 * mb + (1 - beta1) * db
        vw = beta2 * vw + (1 - beta2) * (dw * dw)
        vb = beta2 * vb + (1 - beta2) * (db * db)
        w = w - lr_t * mw / (xp.sqrt(vw) + eps)
        b = b - lr_t * mb / (xp.sqrt(vb) + eps)
        new.append(Layer(w, b))
        new_first.append(Layer(mw, mb))
        new_second.append(Layer(vw, vb))
    return tuple(new), (t, tuple(new_first), tuple(new_second))


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (
        OptimizerSpec("sgd", _sgd_init, _sgd_update, _sgd_inplace, 0),
        OptimizerSpec(
            "momentum",
            _momentum_init,
            _momentum_update,
            _momentum_inplace,
            1,
            ("momentum", "nesterov"),
        ),
        OptimizerSpec(
            "adam", _adam_init, _adam_update, _adam_inplace, 2, ("beta1", "beta2", "eps")
        ),
    )
}
"""Every optimizer, by name: the library's own, then any registered."""

BUILT_IN = frozenset(OPTIMIZERS)


def register_optimizer(
    name: str,
    init: Callable[..., Any],
    update: Callable[..., tuple[tuple[Layer, ...], Any]],
    *,
    inplace: Callable[..., None] | None = None,
    n_slots: int = 0,
    reads: Sequence[str] = (),
) -> OptimizerSpec:
    """Make ``name`` an optimizer for :func:`backprop.train_mlp` (both backends).

    Parameters
    ----------
    name : str
        A new name (the library's own cannot be replaced; registering a
        name again replaces your earlier one).
    init : callable(opt, params, xp) -> state
        The starting state for a tuple of Layer ``params`` on namespace ``xp``.
    update : callable(opt, params, grads, state, xp) -> (params, state)
        One pure step; ``opt`` carries ``lr``, ``momentum``, ``nesterov``,
        ``beta1``, ``beta2``, ``eps``. Must run in ``jax.jit`` (no branching
        on array values).
    inplace : callable(opt, theta, g, slots, scratch, t), optional
        The in-place form on the flat parameter vector (see
        :class:`OptimizerSpec`); without one the NumPy fast path runs
        ``update`` on the flat vector as one layer.
    n_slots : int
        State vectors the in-place form keeps.
    reads : sequence of str
        The hyper-parameters of ``opt`` the step uses besides ``lr``, from
        ``momentum``, ``nesterov``, ``beta1``, ``beta2``, ``eps`` (the
        command line accepts ``--momentum``/``--nesterov`` only for an
        optimizer that reads them).

    Returns
    -------
    OptimizerSpec

    Raises
    ------
    ValueError
        For a built-in or non-string name, non-callable functions, or an
        in-place form that does not reproduce ``update`` over three steps on
        a small random problem (float64, relative 1e-10).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier, got {name!r}")
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is one of the library's optimizers; choose another name")
    for label, fn in (("init", init), ("update", update)):
        if not callable(fn):
            raise ValueError(f"{label} must be callable, got {fn!r}")
    if inplace is not None and not callable(inplace):
        raise ValueError(f"inplace must be None or callable, got {inplace!r}")
    if not isinstance(n_slots, int) or n_slots < 0:
        raise ValueError(f"n_slots must be an int >= 0, got {n_slots!r}")
    settings = ("momentum", "nesterov", "beta1", "beta2", "eps")
    if isinstance(reads, str) or not all(r in settings for r in reads):
        raise ValueError(f"reads must be a sequence of names from {settings}, got {reads!r}")
    spec = OptimizerSpec(name, init, update, inplace, n_slots, tuple(reads))
    if inplace is not None:
        _check_inplace(spec)
    OPTIMIZERS[name] = spec
    return spec


def _check_inplace(spec: OptimizerSpec) -> None:
    """Three steps of the in-place form against the pure update; ValueError on a mismatch."""
    rng = np.random.default_rng(0)
    params = (Layer(rng.standard_normal((3, 2)), rng.standard_normal(2)),)
    opt = Optimizer(spec.name, 0.1)
    theta = np.concatenate([params[0].w.ravel(), params[0].b])
    slots, scratch = spec.inplace_state(opt, theta), [np.empty_like(theta) for _ in range(2)]
    state = spec.init(opt, params, np)
    for t in range(1, 4):
        g = rng.standard_normal(theta.shape)
        grads = (Layer(g[:6].reshape(3, 2), g[6:]),)
        params, state = spec.update(opt, params, grads, state, np)
        spec.inplace_step(opt, theta, g, slots, scratch, t)
        ref = np.concatenate([params[0].w.ravel(), params[0].b])
        if not np.allclose(theta, ref, rtol=1e-10, atol=1e-12):
            raise ValueError(
                f"optimizer {spec.name!r}: the in-place form differs from the pure update at "
                f"step {t} by up to {float(np.max(np.abs(theta - ref))):.3g}"
            )
