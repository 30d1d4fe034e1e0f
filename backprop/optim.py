"""Optimizers, with every update written out: SGD, momentum (classic or
Nesterov) and Adam, as scikit-learn's ``MLPClassifier`` defines them.

Each optimizer is a pair of pure functions on the parameters (a tuple of
:class:`~backprop.nets.Layer`), their gradients and a state of plain arrays,
so the same code runs on NumPy and inside ``jax.jit``:

- ``sgd``:      ``w = w - lr * dw``
- ``momentum``: ``v = mu * v - lr * dw``, then ``w = w + v``, or with
  Nesterov's correction ``w = w + mu * v - lr * dw`` (with the new ``v``)
- ``adam``:     ``m = b1 m + (1 - b1) dw``, ``v = b2 v + (1 - b2) dw^2``,
  ``w = w - lr_t m / (sqrt(v) + eps)`` with the bias corrections folded into
  the step size, ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)`` (Kingma and Ba,
  2015, section 2; ``eps`` outside the correction)

and the same for every ``b``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backprop.nets import Layer

NAMES = ("sgd", "momentum", "adam")


@dataclass(frozen=True)
class Optimizer:
    """An optimizer and its hyper-parameters (hashable: a static argument under ``jax.jit``).

    ``name``: one of :data:`NAMES`; ``lr``: the learning rate; ``momentum``
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

    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"optimizer must be one of {', '.join(NAMES)}, got {name!r}")
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


def init_state(opt: Optimizer, params: Sequence[Layer], xp: Any) -> Any:
    """The optimizer's starting state: () for sgd, zero velocities, or Adam's (t, m, v)."""
    zeros = tuple(Layer(xp.zeros_like(w), xp.zeros_like(b)) for w, b in params)
    if opt.name == "sgd":
        return ()
    if opt.name == "momentum":
        return zeros
    return (xp.zeros((), params[0].w.dtype), zeros, zeros)


def update(
    opt: Optimizer, params: Sequence[Layer], grads: Sequence[Layer], state: Any, xp: Any
) -> tuple[tuple[Layer, ...], Any]:
    """One step of ``opt``: returns ``(new params, new state)``; nothing is modified in place.

    ``xp``: the array namespace of the parameters (``numpy`` or ``jax.numpy``).
    """
    if opt.name == "sgd":
        return sgd(params, grads, opt.lr), state
    if opt.name == "momentum":
        return momentum(params, grads, state, opt.lr, opt.momentum, opt.nesterov)
    return adam(params, grads, state, opt.lr, opt.beta1, opt.beta2, opt.eps, xp)


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
