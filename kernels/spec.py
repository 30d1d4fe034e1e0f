"""What a declaration holds: :class:`KernelSpec`, :class:`Domain`, :class:`InPlace`, :class:`Head`.

Each family module (:mod:`backprop.kernels.linear`, ``activations``,
``losses``, ...) ends with ``DECLARATIONS``, a tuple of :class:`KernelSpec`
next to the functions they name; :mod:`backprop.kernels.losses` also
declares the output heads (``HEADS``, :class:`Head`: an output activation
fused with its loss). :mod:`backprop.kernels.registry` collects them. A
kernel's declaration carries everything about it: the pure pair on ``xp``,
its in-place NumPy form for the fast path (:class:`InPlace`), its test
shapes and domains (kinks included). The shape helpers below serve the
common cases.
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
    inplace: InPlace | None = None
    """Activations: the NumPy in-place form the fast path runs (None: built from the pair)."""
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

    def inplace_form(self) -> InPlace:
        """The declared :class:`InPlace` form, or one built from the pure pair."""
        if self.backward is None:
            raise ValueError(f"kernel {self.name!r} has no backward: it cannot be trained through")
        return self.inplace or InPlace.from_pair(self.forward, self.backward)


@dataclass(frozen=True)
class InPlace:
    """An activation's in-place NumPy form, a transcription of its pure pair.

    ``forward(z, buf) -> saved`` overwrites ``z`` (N, D) with the
    activation's output and returns what the backward needs beyond that
    output (None when the output suffices: sigma' = s (1 - s),
    tanh' = 1 - t^2). ``buf`` is a float buffer of ``z``'s shape, the
    layer's own: the forward may write into it what the backward will read
    and return it as ``saved`` (ReLU keeps its mask [z > 0] there, the
    forward's product and the backward's factor); nothing else touches it
    until that backward. ``backward(dh, out, saved, scratch)`` multiplies
    the upstream gradient ``dh`` (N, D) in place by the derivative, read
    from the layer's output ``out`` (N, D) or from ``saved``; ``scratch`` is
    a float buffer of ``dh``'s shape it may overwrite. The fast path runs
    both under ``np.errstate(over="ignore")``. ``tests/test_fast.py`` holds
    every declared form to its pair.

    ``factor(out, saved, scratch) -> array``, where declared (an
    elementwise activation built with :meth:`elementwise`), is the
    derivative itself, f'(z) of ``out``'s shape (``saved`` or ``scratch``,
    never a new array), and the backward is ``dh *= factor(...)``. It lets
    a caller apply the derivative to something other than ``dh``: the
    estimators' step folds it into a product when the output is one column
    (``backprop.sklearn_step``). None: not declared.
    """

    forward: Callable[[Any, Any], Any]
    backward: Callable[[Any, Any, Any, Any], None]
    factor: Callable[[Any, Any, Any], Any] | None = None

    @staticmethod
    def elementwise(forward: Callable[[Any, Any], Any], factor: Callable[..., Any]) -> InPlace:
        """The form of an activation whose backward multiplies ``dh`` by its derivative
        ``factor(out, saved, scratch)``: the backward is derived from the factor."""

        def backward(dh: Any, out: Any, saved: Any, scratch: Any) -> None:
            dh *= factor(out, saved, scratch)

        return InPlace(forward, backward, factor)

    @staticmethod
    def from_pair(forward: Callable[..., Any], backward: Callable[..., Any]) -> InPlace:
        """The generic form: the pure pair on NumPy, its results copied into the buffers."""
        import numpy as np

        def apply(z: Any, buf: Any) -> Any:
            # a copy: a pure forward may return its input as the cache (ReLU does),
            # and the buffer z is about to be overwritten with the output
            out, cache = forward(np, z.copy())
            z[...] = out
            return cache

        def derivative(dh: Any, out: Any, saved: Any, scratch: Any) -> None:
            dh[...] = backward(np, dh, saved)

        return InPlace(apply, derivative)


@dataclass(frozen=True)
class Head:
    """An output head: the output activation, fused with the loss it trains with.

    ``name``: the output activation ("sigmoid"); ``loss``: the loss's name
    ("bce"); ``kernel``: the fused loss kernel on the logits, a
    :class:`KernelSpec` name ("bce_with_logits"), whose forward takes
    ``(z, Y, weights)``. ``per_row``: the loss is a sum over rows (weights
    (N,), the mean over rows) rather than over elements (weights (N, 1),
    the mean over every output). ``predict(xp, z)``: the output activation
    on logits (N, DL). ``correct(xp, z, Y)``: per row, whether the
    prediction matches the targets (a bool (N,)). ``check_targets(name,
    Y)``: raises ``ValueError`` naming ``name`` when the float (N, DL)
    targets hold values the loss is not defined for. ``labels(name, y,
    width, dtype)``, optional: turns a (N,) vector of class labels into
    (N, width) targets (softmax's one-hot rows), ``ValueError`` for bad
    labels. ``inplace(z, Y, dz) -> loss``: the mean loss on logits (N, DL)
    as a float, with d loss / dz written into ``dz`` (NumPy, a transcription
    of the kernel; None: the kernel's pure pair on NumPy, see
    :func:`backprop.kernels.registry.head_inplace`). ``min_units``: the
    fewest output units. ``outputs``: what ``predict`` returns, read by
    everything that turns outputs into answers (model files, the command
    line): "probabilities" (one distribution over classes per row: softmax),
    "independent" (each output its own probability of 1: sigmoid) or
    "values" (real values, no probabilities: identity).
    """

    name: str
    loss: str
    kernel: str
    predict: Callable[[Any, Any], Any]
    correct: Callable[[Any, Any, Any], Any]
    check_targets: Callable[[str, Any], None]
    labels: Callable[[str, Any, int, Any], Any] | None = None
    inplace: Callable[[Any, Any, Any], float] | None = None
    per_row: bool = False
    min_units: int = 1
    outputs: str = "values"

    def __post_init__(self) -> None:
        if self.outputs not in HEAD_OUTPUTS:
            raise ValueError(
                f"Head {self.name!r}: outputs must be one of {', '.join(HEAD_OUTPUTS)}, "
                f"got {self.outputs!r}"
            )


HEAD_OUTPUTS = ("probabilities", "independent", "values")
"""What a head's ``predict`` can return (see :class:`Head`)."""


def elementwise(n: int, d: int, m: int) -> dict[str, tuple[int, ...]]:
    return {"z": (n, m)}


def prediction(pred: str) -> Callable[[int, int, int], dict[str, tuple[int, ...]]]:
    return lambda n, d, m: {pred: (n, m), "y": (n, m)}


TARGETS = Domain("targets", 0.0, 1.0)
"""0/1 labels or soft targets in [0, 1]."""
