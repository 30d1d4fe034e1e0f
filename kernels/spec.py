"""What a kernel declaration holds: :class:`KernelSpec` and :class:`Domain`.

Each family module (:mod:`backprop.kernels.linear`, ``activations``,
``losses``, ...) ends with ``DECLARATIONS``, a tuple of :class:`KernelSpec`
next to the functions they name; :mod:`backprop.kernels.registry` collects
them. The shape helpers below serve the common cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


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

    Optional, for kernels whose inputs are not all float arrays of MLP shape
    (the layer kernels): ``wrt``, the inputs the backward returns gradients
    for, in its return order, when they are not the first ``grads`` inputs
    (an embedding's ``table`` comes after its integer ``idx``); ``sample``,
    ``sample(rng, n, d, m) -> {input name: value}`` in the forward's order,
    which replaces ``shapes``/``domains`` for drawing inputs (integer
    indices, seeds, images, inputs kept off ties); ``ties``, the rule the
    backward follows where the forward is not differentiable (max pooling's
    ties), in words; ``random``, the forward draws from a seed (dropout): the
    same seed gives the same output on one backend, but NumPy's and JAX's
    generators differ, so the backends agree given the same mask, not the
    same seed.
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
    wrt: tuple[str, ...] = ()
    sample: Callable[[Any, int, int, int], dict[str, Any]] | None = None
    ties: str = ""
    random: bool = False

    @property
    def is_loss(self) -> bool:
        """A scalar output: the backward takes a scalar upstream gradient."""
        return self.family == "loss"

    def domain(self, name: str) -> Domain:
        return self.domains.get(name, Domain())

    @property
    def grad_inputs(self) -> tuple[str, ...]:
        """The inputs the backward returns a gradient for, in its return order."""
        return self.wrt or self.inputs[: self.grads]

    def bind(
        self, fn: Callable[..., Any], inputs: Mapping[str, Any]
    ) -> tuple[Callable[..., Any], dict[str, Any]]:
        """``fn`` as a function of the gradient inputs only, the others fixed.

        Returns ``(bound, values)``: ``bound(*values.values())`` calls
        ``fn`` with every input of ``inputs`` in the forward's order;
        ``values`` holds the :attr:`grad_inputs` (what a gradient check
        perturbs), and targets, scales, indices and seeds stay fixed.
        """
        wrt = self.grad_inputs
        fixed = {k: v for k, v in inputs.items() if k not in wrt}

        def bound(*diff: Any) -> Any:
            values = {**fixed, **dict(zip(wrt, diff, strict=True))}
            return fn(*(values[name] for name in self.inputs))

        bound.__name__ = getattr(fn, "__name__", "bound")
        return bound, {k: inputs[k] for k in wrt}

    def functions(self) -> tuple[Callable[..., Any], ...]:
        pair = (self.forward,) if self.backward is None else (self.forward, self.backward)
        return pair + self.extras


def elementwise(n: int, d: int, m: int) -> dict[str, tuple[int, ...]]:
    return {"z": (n, m)}


def prediction(pred: str) -> Callable[[int, int, int], dict[str, tuple[int, ...]]]:
    return lambda n, d, m: {pred: (n, m), "y": (n, m)}


TARGETS = Domain("targets", 0.0, 1.0)
"""0/1 labels or soft targets in [0, 1]."""
