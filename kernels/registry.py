"""The kernel registry: every kernel declared once.

A :class:`KernelSpec` names a kernel's forward and backward halves, its
inputs (in the forward's order), how many of them get a gradient, the
shapes its inputs take and the range each input's values are valid (and
well conditioned for finite differences) in. Everything that iterates over
kernels reads :data:`KERNELS`: :func:`kernels.get_backend` binds every
function listed here, the gradient-check suite and the property tests draw
their inputs from the declared shapes and ranges, the kernel benchmarks
time each pair at a small and a large size, and ``python -m backprop
gradcheck`` prints one row per kernel input. Adding a kernel means writing
its pair in its family's module and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kernels import activations, linear, losses


@dataclass(frozen=True)
class Domain:
    """Where an input's values are drawn from.

    ``kind``: "real" (uniform in [lo, hi]), "targets" (0/1 labels or soft
    targets in [0, 1]), "onehot" (one-hot rows), "scale" (a scalar in
    [lo, hi]). ``avoid``: points the derivative is undefined at (ReLU's kink);
    values within ``margin`` of them are moved away.
    """

    kind: str = "real"
    lo: float = -3.0
    hi: float = 3.0
    avoid: tuple[float, ...] = ()
    margin: float = 0.0


@dataclass(frozen=True)
class KernelSpec:
    """One kernel: ``forward(xp, *inputs) -> (out, cache)``, ``backward(xp, dout, cache)``.

    ``inputs``: names in the forward's argument order; ``grads``: how many of
    the first inputs the backward returns a gradient for (targets and scales
    get none); ``shapes(n, d, m)``: each input's shape for a batch of n rows,
    d inputs and m outputs; ``domains``: each input's :class:`Domain`
    (default: real values in [-3, 3]); ``extras``: further functions of the
    same family bound with the pair (``sigmoid_prime``,
    ``matmul_backward_weights``); ``formula``: forward and backward in words,
    for tables.
    """

    name: str
    family: str
    forward: Callable[..., Any]
    backward: Callable[..., Any] | None
    inputs: tuple[str, ...]
    grads: int
    shapes: Callable[[int, int, int], dict[str, tuple[int, ...]]]
    formula: str
    domains: Mapping[str, Domain] = field(default_factory=dict)
    extras: tuple[Callable[..., Any], ...] = ()

    @property
    def is_loss(self) -> bool:
        """A scalar output: the backward takes a scalar upstream gradient."""
        return self.family == "loss"

    def domain(self, name: str) -> Domain:
        return self.domains.get(name, Domain())

    def functions(self) -> tuple[Callable[..., Any], ...]:
        pair = (self.forward,) if self.backward is None else (self.forward, self.backward)
        return pair + self.extras


def _elementwise(n: int, d: int, m: int) -> dict[str, tuple[int, ...]]:
    return {"z": (n, m)}


def _prediction(pred: str) -> Callable[[int, int, int], dict[str, tuple[int, ...]]]:
    return lambda n, d, m: {pred: (n, m), "y": (n, m)}


_TARGETS = Domain("targets", 0.0, 1.0)
_SPECS = (
    KernelSpec(
        "matmul",
        "linear",
        linear.matmul_forward,
        linear.matmul_backward,
        ("x", "w"),
        2,
        lambda n, d, m: {"x": (n, d), "w": (d, m)},
        "x @ w | dx = dout @ w.T, dw = x.T @ dout",
        extras=(linear.matmul_backward_weights,),
    ),
    KernelSpec(
        "add_bias",
        "linear",
        linear.add_bias_forward,
        linear.add_bias_backward,
        ("x", "b"),
        2,
        lambda n, d, m: {"x": (n, m), "b": (m,)},
        "x + b (b added to each row) | dx = dout, db = sum over rows of dout",
    ),
    KernelSpec(
        "sigmoid",
        "activation",
        activations.sigmoid_forward,
        activations.sigmoid_backward,
        ("z",),
        1,
        _elementwise,
        "1 / (1 + e^-z) | dz = dout s (1 - s), from the cached output s",
        {"z": Domain("real", -30.0, 30.0)},
        extras=(activations.sigmoid_prime,),
    ),
    KernelSpec(
        "relu",
        "activation",
        activations.relu_forward,
        activations.relu_backward,
        ("z",),
        1,
        _elementwise,
        "max(z, 0) | dz = dout [z > 0], from the cached input z (0 at the kink)",
        {"z": Domain("real", -30.0, 30.0, avoid=(0.0,), margin=1e-3)},
    ),
    KernelSpec(
        "tanh",
        "activation",
        activations.tanh_forward,
        activations.tanh_backward,
        ("z",),
        1,
        _elementwise,
        "tanh(z) | dz = dout (1 - t^2), from the cached output t",
        {"z": Domain("real", -10.0, 10.0)},
    ),
    KernelSpec(
        "identity",
        "activation",
        activations.identity_forward,
        activations.identity_backward,
        ("z",),
        1,
        _elementwise,
        "z | dz = dout",
    ),
    KernelSpec(
        "step",
        "activation",
        activations.step_forward,
        None,
        ("z",),
        0,
        _elementwise,
        "1 if z > 0 else 0 | none (forward only: the perceptron rule)",
    ),
    KernelSpec(
        "bce",
        "loss",
        losses.bce_forward,
        losses.bce_backward,
        ("p", "y"),
        1,
        _prediction("p"),
        "-mean(y log p + (1-y) log(1-p)), p clipped to [tiny, 1 - eps/2] "
        "| dp = (p - y) / (p (1 - p)) / N",
        {"p": Domain("real", 1e-3, 1 - 1e-3), "y": _TARGETS},
    ),
    KernelSpec(
        "bce_with_logits",
        "loss",
        losses.bce_with_logits_forward,
        losses.bce_with_logits_backward,
        ("z", "y"),
        1,
        _prediction("z"),
        "mean(max(z, 0) - z y + log1p(e^-|z|)) | dz = (sigma(z) - y) / N",
        {"z": Domain("real", -100.0, 100.0), "y": _TARGETS},
    ),
    KernelSpec(
        "softmax_cross_entropy",
        "loss",
        losses.softmax_cross_entropy_forward,
        losses.softmax_cross_entropy_backward,
        ("z", "y"),
        1,
        _prediction("z"),
        "mean over rows of logsumexp(z) - y . z | dz = (softmax(z) - y) / N",
        {"z": Domain("real", -30.0, 30.0), "y": Domain("onehot")},
        extras=(losses.softmax,),
    ),
    KernelSpec(
        "mse",
        "loss",
        losses.mse_forward,
        losses.mse_backward,
        ("yhat", "y"),
        1,
        _prediction("yhat"),
        "mean((yhat - y)^2) | dyhat = 2 (yhat - y) / N",
    ),
    KernelSpec(
        "l2_penalty",
        "loss",
        losses.l2_penalty_forward,
        losses.l2_penalty_backward,
        ("w", "scale"),
        1,
        lambda n, d, m: {"w": (d, m), "scale": ()},
        "scale / 2 sum(w^2) | dw = scale w",
        {"scale": Domain("scale", 0.0, 2.0)},
    ),
)

KERNELS: dict[str, KernelSpec] = {spec.name: spec for spec in _SPECS}
"""Every kernel, by name, in the order tables list them."""

PAIRS = tuple(name for name, spec in KERNELS.items() if spec.backward is not None)
"""Kernels with a backward half: the ones gradient checks and benchmarks cover."""


def get_spec(name: str) -> KernelSpec:
    """The :class:`KernelSpec` called ``name``; ``ValueError`` listing the names otherwise."""
    try:
        return KERNELS[name]
    except KeyError:
        raise ValueError(f"unknown kernel {name!r}; kernels: {', '.join(KERNELS)}") from None


def sample_inputs(
    spec: KernelSpec,
    rng: np.random.Generator,
    n: int = 5,
    d: int = 3,
    m: int = 4,
    dtype: Any = "float64",
) -> dict[str, Any]:
    """Random inputs for ``spec`` at batch n, d inputs, m outputs, drawn from its domains.

    Returns a mapping input name -> array (a Python float for a scale),
    in the forward's argument order.
    """
    shapes = spec.shapes(n, d, m)
    out: dict[str, Any] = {}
    for name in spec.inputs:
        shape, dom = shapes[name], spec.domain(name)
        if dom.kind == "targets":
            value = rng.integers(0, 2, shape).astype(np.float64)
        elif dom.kind == "onehot":
            value = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
        elif dom.kind == "scale":
            out[name] = float(rng.uniform(dom.lo, dom.hi))
            continue
        else:
            value = rng.uniform(dom.lo, dom.hi, shape)
            for point in dom.avoid:
                near = np.abs(value - point) < dom.margin
                value = np.where(near, point + 0.5, value)
        out[name] = value.astype(dtype)
    return out
